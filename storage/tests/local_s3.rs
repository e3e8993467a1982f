//! The local endpoint speaks real S3: the SDK lists across pages, round-trips
//! objects, presigned URLs work for a plain HTTP client, and CORS lets the UI
//! origin in (and nobody else).

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use storage::{S3Config, client, ensure_bucket, list_prefix, local::LocalS3};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

const KEY: &str = "local-access";
const SECRET: &str = "local-secret-key";
const UI: &str = "http://127.0.0.1:3000";

async fn start() -> (LocalS3, aws_sdk_s3::Client, tempdir::Dir) {
    let dir = tempdir::Dir::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let s3 = LocalS3::start(&dir.0, listener, (KEY, SECRET), vec![UI.to_owned()]).await.expect("start");
    let config = S3Config {
        endpoint: Some(s3.endpoint()),
        region: Some("us-east-1".into()),
        credentials: Some((KEY.into(), SECRET.into())),
        force_path_style: true,
    };
    let c = client(&config).await;
    ensure_bucket(&c, "capstan").await.expect("bucket");
    ensure_bucket(&c, "capstan").await.expect("creating it twice is fine");
    (s3, c, dir)
}

/// Sends a raw HTTP/1.1 request and returns the whole response as text.
async fn raw(endpoint: &str, request: String) -> String {
    let addr = endpoint.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn listing_pages_through_every_object() {
    let (_s3, c, _dir) = start().await;
    let mut puts = tokio::task::JoinSet::new();
    for i in 0..1_050 {
        let c = c.clone();
        puts.spawn(async move {
            c.put_object()
                .bucket("capstan")
                .key(format!("data/part-{i:05}.csv"))
                .body(ByteStream::from(format!("id,value\n{i},{}\n", i * 2).into_bytes()))
                .send()
                .await
                .expect("put");
        });
    }
    while puts.join_next().await.is_some() {}
    c.put_object().bucket("capstan").key("other/x.csv").body(ByteStream::from_static(b"x")).send().await.expect("put");

    let mut keys = Vec::new();
    let calls =
        list_prefix(&c, "capstan", "data/", |page| keys.extend(page.into_iter().map(|o| o.key))).await.expect("list");
    assert_eq!(keys.len(), 1_050);
    assert_eq!(calls, 2, "1 050 keys at 1 000 per page is two list calls");
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "keys come back in order");
    assert!(!keys.iter().any(|k| k.starts_with("other/")));
}

#[tokio::test]
async fn objects_round_trip_and_presigned_urls_work() {
    let (s3, c, _dir) = start().await;
    c.put_object()
        .bucket("capstan")
        .key("a/b.txt")
        .body(ByteStream::from_static(b"hello s3"))
        .send()
        .await
        .expect("put");
    let got = c.get_object().bucket("capstan").key("a/b.txt").send().await.expect("get");
    assert_eq!(got.body.collect().await.expect("body").into_bytes().as_ref(), b"hello s3");

    let presigned = c
        .get_object()
        .bucket("capstan")
        .key("a/b.txt")
        .presigned(PresigningConfig::expires_in(std::time::Duration::from_secs(60)).expect("config"))
        .await
        .expect("presign");
    let url = presigned.uri().to_owned();
    let path = url.trim_start_matches(&s3.endpoint()).to_owned();
    let host = s3.endpoint().trim_start_matches("http://").to_owned();
    let res = raw(&s3.endpoint(), format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")).await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    assert!(res.ends_with("hello s3"), "{res}");

    // Unsigned requests are refused.
    let res =
        raw(&s3.endpoint(), format!("GET /capstan/a/b.txt HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"))
            .await;
    assert!(res.starts_with("HTTP/1.1 403"), "{res}");
}

#[tokio::test]
async fn cors_allows_only_the_ui_origin() {
    let (s3, _c, _dir) = start().await;
    let host = s3.endpoint().trim_start_matches("http://").to_owned();
    let preflight = |origin: &str| {
        format!(
            "OPTIONS /capstan/up/file.bin HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\n\
             Access-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers: content-type\r\nConnection: close\r\n\r\n"
        )
    };
    let ok = raw(&s3.endpoint(), preflight(UI)).await.to_lowercase();
    assert!(ok.contains(&format!("access-control-allow-origin: {UI}")), "{ok}");
    let other = raw(&s3.endpoint(), preflight("http://evil.example")).await.to_lowercase();
    assert!(!other.contains("access-control-allow-origin"), "{other}");
}

mod tempdir {
    /// A temporary folder removed on drop.
    pub struct Dir(pub std::path::PathBuf);

    impl Dir {
        pub fn new() -> Self {
            let n: u64 =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
            let p = std::env::temp_dir().join(format!("capstan-s3-test-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&p).expect("temp dir");
            Self(p)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[tokio::test]
async fn large_objects_are_copied_in_parts() {
    let (_s3, c, _dir) = start().await;
    let body: Vec<u8> = (0..12 * 1024 * 1024_u32).map(|i| (i % 253) as u8).collect();
    c.put_object()
        .bucket("capstan")
        .key("src/big file.bin")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .expect("put");
    // a 12 MiB object above an 8 MiB single-copy limit: three 5 MiB-or-less parts
    let plan = storage::CopyPlan { single_copy_limit: 8 * 1024 * 1024, part_size: 5 * 1024 * 1024 };
    let copied =
        storage::copy_object(&c, ("capstan", "src/big file.bin"), 12 * 1024 * 1024, ("capstan", "dst/big.bin"), plan)
            .await
            .expect("copy");
    assert!(copied.etag.ends_with("-3"), "a multipart ETag names its part count: {}", copied.etag);
    let got = c.get_object().bucket("capstan").key("dst/big.bin").send().await.expect("get");
    let bytes = got.body.collect().await.expect("body").into_bytes();
    assert!(bytes.as_ref() == body.as_slice(), "the copy is byte-identical");
    // small objects take one CopyObject call and keep their ETag
    c.put_object()
        .bucket("capstan")
        .key("src/small.csv")
        .body(ByteStream::from_static(b"a\n1\n"))
        .send()
        .await
        .expect("put");
    let small = storage::copy_object(&c, ("capstan", "src/small.csv"), 4, ("capstan", "dst/small.csv"), plan)
        .await
        .expect("copy");
    let head = c.head_object().bucket("capstan").key("src/small.csv").send().await.expect("head");
    assert_eq!(Some(small.etag.as_str()), head.e_tag().map(|e| e.trim_matches('"')));
    let missing =
        storage::copy_object(&c, ("capstan", "src/none"), 4, ("capstan", "dst/none"), plan).await.expect_err("missing");
    assert_eq!(missing.code, "NoSuchKey");
}

/// The endpoint itself refuses dot segments, whatever its caller checked:
/// `s3s-fs` would resolve them into another team's folder or out of the root.
#[tokio::test]
async fn dot_segments_never_reach_the_folder() {
    let (_s3, c, dir) = start().await;
    c.put_object()
        .bucket("capstan")
        .key("datasets/victim/secret.csv")
        .body(ByteStream::from_static(b"secret"))
        .send()
        .await
        .expect("put");
    let get = c.get_object().bucket("capstan").key("datasets/mine/../victim/secret.csv").send().await;
    assert!(get.is_err(), "a read through .. is refused");
    let put = c
        .put_object()
        .bucket("capstan")
        .key("datasets/mine/../victim/planted.csv")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert!(put.is_err(), "a write through .. is refused");
    let copy = c
        .copy_object()
        .bucket("capstan")
        .key("datasets/mine/copy.csv")
        .copy_source("capstan/datasets/mine/../victim/secret.csv")
        .send()
        .await;
    assert!(copy.is_err(), "a copy from .. is refused");
    let del = c.delete_object().bucket("capstan").key("datasets/mine/../victim/secret.csv").send().await;
    assert!(del.is_err(), "a delete through .. is refused");
    let list = c.list_objects_v2().bucket("capstan").prefix("jobs/mine/../../").send().await;
    assert!(list.is_err(), "a listing through .. is refused");
    assert!(dir.0.join("capstan/datasets/victim/secret.csv").is_file(), "the victim's object is still there");
    assert!(!dir.0.join("capstan/datasets/victim/planted.csv").exists());
    assert!(!dir.0.join("capstan/datasets/mine/copy.csv").exists());
}
