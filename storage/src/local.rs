//! Local mode's S3-compatible endpoint: `s3s` + `s3s-fs` serving a folder on
//! loopback, with CORS for the Capstan UI so browsers can upload directly.

use anyhow::Context as _;
use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode};
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{S3, S3Request, S3Response, S3Result, dto, s3_error};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// A running local endpoint; stops when [`LocalS3::stop`] is called or it is dropped.
pub struct LocalS3 {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl LocalS3 {
    /// Serves `root` as S3 on `listener`, accepting requests signed with
    /// `credentials`, and allowing browser calls from `allowed_origins`.
    pub async fn start(
        root: &Path,
        listener: TcpListener,
        credentials: (&str, &str),
        allowed_origins: Vec<String>,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root).with_context(|| format!("failed to create {}", root.display()))?;
        let fs =
            s3s_fs::FileSystem::new(root).map_err(|e| anyhow::anyhow!("failed to open {}: {e:?}", root.display()))?;
        let mut builder = S3ServiceBuilder::new(Folder { fs, root: root.to_owned() });
        builder.set_auth(s3s::auth::SimpleAuth::from_single(credentials.0, credentials.1));
        let service = builder.build();
        let origins: Vec<HeaderValue> = allowed_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
        let cors = CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::PUT, Method::POST, Method::HEAD, Method::DELETE])
            .allow_headers(tower_http::cors::Any)
            .expose_headers([http::header::ETAG]);
        let app = Router::new().fallback(handle).with_state(service).layer(cors);
        let addr = listener.local_addr().context("local S3 listener has no address")?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let server = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = server.await {
                tracing::error!(error = %e, "local S3 endpoint failed");
            }
        });
        tracing::info!(%addr, root = %root.display(), "local S3 endpoint started");
        Ok(Self { addr, stop: Some(tx), task: Some(task) })
    }

    /// `http://host:port` of the endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting requests and waits for in-flight ones.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for LocalS3 {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

async fn handle(State(service): State<S3Service>, req: Request) -> Response {
    use tower::ServiceExt as _;
    match service.oneshot(req).await {
        Ok(res) => res.map(axum::body::Body::new).into_response(),
        Err(e) => {
            tracing::error!(error = ?e, "local S3 request failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// `s3s-fs` with a listing fit for large prefixes: `s3s-fs` walks the whole
/// bucket on every ListObjectsV2 page and leaves ETags out; this walks only
/// the prefix's folder, reads metadata only for the page it returns, and
/// includes each object's ETag (drift checks compare them).
struct Folder {
    fs: s3s_fs::FileSystem,
    root: PathBuf,
}

#[async_trait::async_trait]
impl S3 for Folder {
    async fn create_bucket(
        &self,
        req: S3Request<dto::CreateBucketInput>,
    ) -> S3Result<S3Response<dto::CreateBucketOutput>> {
        self.fs.create_bucket(req).await
    }

    async fn head_bucket(&self, req: S3Request<dto::HeadBucketInput>) -> S3Result<S3Response<dto::HeadBucketOutput>> {
        self.fs.head_bucket(req).await
    }

    async fn delete_bucket(
        &self,
        req: S3Request<dto::DeleteBucketInput>,
    ) -> S3Result<S3Response<dto::DeleteBucketOutput>> {
        self.fs.delete_bucket(req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<dto::GetBucketLocationInput>,
    ) -> S3Result<S3Response<dto::GetBucketLocationOutput>> {
        self.fs.get_bucket_location(req).await
    }

    async fn list_buckets(
        &self,
        req: S3Request<dto::ListBucketsInput>,
    ) -> S3Result<S3Response<dto::ListBucketsOutput>> {
        self.fs.list_buckets(req).await
    }

    async fn copy_object(&self, req: S3Request<dto::CopyObjectInput>) -> S3Result<S3Response<dto::CopyObjectOutput>> {
        plain(&req.input.key)?;
        copied_from(&req.input.copy_source)?;
        self.fs.copy_object(req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<dto::DeleteObjectInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectOutput>> {
        plain(&req.input.key)?;
        self.fs.delete_object(req).await
    }

    async fn delete_objects(
        &self,
        req: S3Request<dto::DeleteObjectsInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectsOutput>> {
        for object in &req.input.delete.objects {
            plain(&object.key)?;
        }
        self.fs.delete_objects(req).await
    }

    async fn get_object(&self, req: S3Request<dto::GetObjectInput>) -> S3Result<S3Response<dto::GetObjectOutput>> {
        plain(&req.input.key)?;
        self.fs.get_object(req).await
    }

    async fn head_object(&self, req: S3Request<dto::HeadObjectInput>) -> S3Result<S3Response<dto::HeadObjectOutput>> {
        plain(&req.input.key)?;
        self.fs.head_object(req).await
    }

    async fn put_object(&self, req: S3Request<dto::PutObjectInput>) -> S3Result<S3Response<dto::PutObjectOutput>> {
        plain(&req.input.key)?;
        self.fs.put_object(req).await
    }

    async fn list_objects(
        &self,
        req: S3Request<dto::ListObjectsInput>,
    ) -> S3Result<S3Response<dto::ListObjectsOutput>> {
        plain(req.input.prefix.as_deref().unwrap_or_default())?;
        self.fs.list_objects(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<dto::CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::CreateMultipartUploadOutput>> {
        plain(&req.input.key)?;
        self.fs.create_multipart_upload(req).await
    }

    async fn upload_part(&self, req: S3Request<dto::UploadPartInput>) -> S3Result<S3Response<dto::UploadPartOutput>> {
        plain(&req.input.key)?;
        self.fs.upload_part(req).await
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<dto::UploadPartCopyInput>,
    ) -> S3Result<S3Response<dto::UploadPartCopyOutput>> {
        plain(&req.input.key)?;
        copied_from(&req.input.copy_source)?;
        self.fs.upload_part_copy(req).await
    }

    async fn list_parts(&self, req: S3Request<dto::ListPartsInput>) -> S3Result<S3Response<dto::ListPartsOutput>> {
        plain(&req.input.key)?;
        self.fs.list_parts(req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<dto::CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::CompleteMultipartUploadOutput>> {
        plain(&req.input.key)?;
        self.fs.complete_multipart_upload(req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<dto::AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::AbortMultipartUploadOutput>> {
        plain(&req.input.key)?;
        self.fs.abort_multipart_upload(req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<dto::ListObjectsV2Input>,
    ) -> S3Result<S3Response<dto::ListObjectsV2Output>> {
        plain(req.input.prefix.as_deref().unwrap_or_default())?;
        if req.input.delimiter.is_some() {
            return self.fs.list_objects_v2(req).await;
        }
        let input = req.input;
        let bucket_root = self.root.join(&input.bucket);
        if input.bucket.contains(['/', '\\']) || input.bucket.starts_with('.') || !bucket_root.is_dir() {
            return Err(s3_error!(NoSuchBucket));
        }
        let prefix = input.prefix.clone().unwrap_or_default();
        let after = match (input.continuation_token.as_deref(), input.start_after.as_deref()) {
            (Some(a), Some(b)) => Some(a.max(b).to_owned()),
            (a, b) => a.or(b).map(str::to_owned),
        };
        let max_keys = usize::try_from(input.max_keys.unwrap_or(1000).clamp(0, 1000)).unwrap_or(1000);
        let root = self.root.clone();
        let bucket = input.bucket.clone();
        let page = tokio::task::spawn_blocking(move || list_page(&root, &bucket, &prefix, after.as_deref(), max_keys))
            .await
            .map_err(|e| s3_error!(InternalError, "listing failed: {e}"))?
            .map_err(|e| s3_error!(InternalError, "listing failed: {e}"))?;
        let next = page.truncated.then(|| page.objects.last().and_then(|o| o.key.clone())).flatten();
        let output = dto::ListObjectsV2Output {
            key_count: Some(i32::try_from(page.objects.len()).unwrap_or(i32::MAX)),
            max_keys: Some(i32::try_from(max_keys).unwrap_or(1000)),
            is_truncated: Some(page.truncated),
            contents: (!page.objects.is_empty()).then_some(page.objects),
            continuation_token: input.continuation_token,
            next_continuation_token: next,
            name: Some(input.bucket),
            prefix: input.prefix,
            start_after: input.start_after,
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }
}

/// `s3s-fs` maps keys onto paths and resolves `..` in them, so a key or
/// prefix with dot segments could reach another team's folder (or leave the
/// root): refused here whatever the caller checked (defence in depth). A
/// trailing `/` (folder markers, prefixes) is allowed.
fn plain(key: &str) -> S3Result<()> {
    let body = key.strip_suffix('/').unwrap_or(key);
    if body.is_empty() {
        return Ok(());
    }
    crate::check_relative(body).map_err(|m| s3_error!(InvalidArgument, "the key or prefix {m}"))
}

fn copied_from(source: &dto::CopySource) -> S3Result<()> {
    match source {
        dto::CopySource::Bucket { key, .. } => plain(key),
        _ => Err(s3_error!(NotImplemented, "only bucket copy sources are served here")),
    }
}

struct ListPage {
    objects: Vec<dto::Object>,
    truncated: bool,
}

/// One page of keys under `prefix`, after `after`, in bytewise order.
fn list_page(
    root: &Path,
    bucket: &str,
    prefix: &str,
    after: Option<&str>,
    max_keys: usize,
) -> std::io::Result<ListPage> {
    let bucket_root = root.join(bucket);
    let start = match prefix.rfind('/') {
        Some(i) => bucket_root.join(&prefix[..i]),
        None => bucket_root.clone(),
    };
    let mut keys = Vec::new();
    let mut dirs = vec![start];
    while let Some(dir) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                dirs.push(entry.path());
                continue;
            }
            let path = entry.path();
            let Ok(rel) = path.strip_prefix(&bucket_root) else { continue };
            let Some(key) = rel.to_str().map(|k| k.replace(std::path::MAIN_SEPARATOR, "/")) else { continue };
            if key.starts_with(prefix) && after.is_none_or(|a| key.as_str() > a) {
                keys.push(key);
            }
        }
    }
    let truncated = keys.len() > max_keys;
    if truncated {
        keys.select_nth_unstable(max_keys);
        keys.truncate(max_keys);
    }
    keys.sort_unstable();
    let mut objects = Vec::with_capacity(keys.len());
    for key in keys {
        let meta = std::fs::metadata(bucket_root.join(&key))?;
        objects.push(dto::Object {
            e_tag: stored_etag(root, bucket, &key).map(dto::ETag::Strong),
            size: i64::try_from(meta.len()).ok(),
            last_modified: meta.modified().ok().map(dto::Timestamp::from),
            key: Some(key),
            ..Default::default()
        });
    }
    Ok(ListPage { objects, truncated })
}

/// The ETag `s3s-fs` recorded when the object was written.
fn stored_etag(root: &Path, bucket: &str, key: &str) -> Option<String> {
    use base64::Engine as _;
    let encode = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let info = root.join(format!(".bucket-{}.object-{}.internal.json", encode(bucket), encode(key)));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(info).ok()?).ok()?;
    json.get("e_tag").and_then(|v| v.as_str()).map(str::to_owned)
}
