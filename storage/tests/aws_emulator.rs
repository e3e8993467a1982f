//! The same S3 code against an AWS API emulator (`moto_server`, as AWS mode
//! would use it with `CAPSTAN_S3_ENDPOINT`): bucket creation, paged listing,
//! and presigned URLs. The test command installs moto; set `MOTO_SERVER` to
//! its path if it is not on `PATH`.

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use storage::emulator::Moto;
use storage::{Storage, ensure_bucket, list_prefix};

#[tokio::test]
async fn aws_mode_code_path_against_the_emulator() {
    let moto = Moto::start().await;
    let config = moto.config();
    let storage = Storage::new(&config, None, "capstan-aws").await;
    assert!(!storage.reachable().await, "the bucket does not exist yet");
    ensure_bucket(&storage.client, "capstan-aws").await.expect("create bucket");
    assert!(storage.reachable().await);

    let mut puts = tokio::task::JoinSet::new();
    for i in 0..1_001 {
        let c = storage.client.clone();
        puts.spawn(async move {
            c.put_object()
                .bucket("capstan-aws")
                .key(format!("prefix/{i:04}.json"))
                .body(ByteStream::from(format!("{{\"i\":{i}}}\n").into_bytes()))
                .send()
                .await
                .expect("put");
        });
    }
    while puts.join_next().await.is_some() {}
    let mut total = 0usize;
    let mut bytes = 0i64;
    let calls = list_prefix(&storage.client, "capstan-aws", "prefix/", |page| {
        total += page.len();
        bytes += page.iter().map(|o| o.size).sum::<i64>();
        assert!(page.iter().all(|o| !o.etag.is_empty() && !o.etag.contains('"')));
    })
    .await
    .expect("list");
    assert_eq!(total, 1_001);
    assert_eq!(calls, 2);
    assert!(bytes > 1_001 * 8);

    let url = storage
        .presigner()
        .get_object()
        .bucket("capstan-aws")
        .key("prefix/0007.json")
        .presigned(PresigningConfig::expires_in(std::time::Duration::from_secs(60)).expect("config"))
        .await
        .expect("presign")
        .uri()
        .to_owned();
    assert!(url.starts_with(&moto.url) && url.contains("X-Amz-Signature="), "{url}");

    let missing = list_prefix(&storage.client, "no-such-bucket", "", |_| {}).await;
    assert!(missing.is_err(), "listing a missing bucket is an error, not an empty list");
}
