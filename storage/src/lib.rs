//! Object storage for Capstan: one S3 code path (`aws-sdk-s3`) for both modes.
//! In AWS mode the client uses the default credential chain; in local mode it
//! talks to [`local::LocalS3`], an S3-compatible endpoint on loopback backed by
//! a folder, so presigned URLs, multipart uploads and listings behave alike.

#[cfg(any(test, feature = "test-support"))]
pub mod emulator;
pub mod local;

pub use aws_config;
pub use aws_sdk_s3;

use anyhow::Context as _;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};

/// How to reach S3.
#[derive(Clone)]
pub struct S3Config {
    /// A custom endpoint (local mode, an S3-compatible store, an emulator);
    /// `None` means AWS itself.
    pub endpoint: Option<String>,
    /// `None` means the default region chain.
    pub region: Option<String>,
    /// Static credentials; `None` means the default AWS credential chain.
    pub credentials: Option<(String, String)>,
    /// Path-style addressing (`endpoint/bucket/key`), needed by most non-AWS stores.
    pub force_path_style: bool,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("credentials", &self.credentials.as_ref().map(|_| "***"))
            .field("force_path_style", &self.force_path_style)
            .finish()
    }
}

/// The shared AWS settings (region, credentials, and `endpoint` when given):
/// every AWS client Capstan builds starts from this.
pub async fn sdk_config(
    region: Option<&str>,
    credentials: Option<&(String, String)>,
    endpoint: Option<&str>,
) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(Region::new(region.to_owned()));
    }
    if let Some((key, secret)) = credentials {
        loader = loader.credentials_provider(Credentials::new(key, secret, None, None, "capstan-static"));
    }
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// Builds an S3 client from `config`.
pub async fn client(config: &S3Config) -> Client {
    let shared = sdk_config(config.region.as_deref(), config.credentials.as_ref(), config.endpoint.as_deref()).await;
    let conf = aws_sdk_s3::config::Builder::from(&shared).force_path_style(config.force_path_style).build();
    Client::from_conf(conf)
}

/// Creates `bucket` unless it exists already.
pub async fn ensure_bucket(client: &Client, bucket: &str) -> anyhow::Result<()> {
    if client.head_bucket().bucket(bucket).send().await.is_ok() {
        return Ok(());
    }
    match client.create_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(()),
        Err(e) => {
            let code = e.as_service_error().and_then(aws_sdk_s3::error::ProvideErrorMetadata::code).map(str::to_owned);
            match code.as_deref() {
                Some("BucketAlreadyOwnedByYou") => Ok(()),
                _ => Err(anyhow::Error::new(e)).with_context(|| format!("failed to create bucket {bucket}")),
            }
        }
    }
}

/// A location given as `s3://bucket/prefix/`. The prefix is treated as a
/// folder: a missing trailing `/` is added, so `s3://b/data` means `data/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Uri {
    pub bucket: String,
    pub prefix: String,
}

impl S3Uri {
    /// Parses and normalises `raw`; the error says what is wrong with it.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let rest = raw.strip_prefix("s3://").ok_or("Use the form s3://bucket/prefix/.")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !valid_bucket {
            return Err(format!(
                "\"{bucket}\" is not a valid bucket name (3-63 characters: a-z, 0-9, dots and hyphens)."
            ));
        }
        if prefix.len() > 900 {
            return Err("The prefix must be at most 900 bytes.".into());
        }
        if !prefix.is_empty() {
            check_relative(prefix.strip_suffix('/').unwrap_or(prefix)).map_err(|m| format!("The prefix {m}"))?;
        }
        let prefix = if prefix.is_empty() || prefix.ends_with('/') { prefix.to_owned() } else { format!("{prefix}/") };
        Ok(Self { bucket: bucket.to_owned(), prefix })
    }
}

/// Checks a relative path (an object key, a prefix without its trailing `/`,
/// a file inside an uploaded folder): folders separated by `/`, none of them
/// empty, `.` or `..`, no backslash or control character. Team areas are
/// folders of one bucket, so a dot segment would step from one into another;
/// every key or path Capstan accepts from a user goes through here.
pub fn check_relative(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("must not be empty.");
    }
    if path.starts_with('/') {
        return Err("must be relative (not start with /).");
    }
    if path.contains('\\') || path.chars().any(char::is_control) {
        return Err("must not contain backslashes or control characters.");
    }
    if path.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Err("must not contain empty, \".\" or \"..\" segments.");
    }
    Ok(())
}

impl std::fmt::Display for S3Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// An S3 call that failed: the AWS error code (or the kind of transport
/// failure) and its message, for showing to users.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct S3Failure {
    pub code: String,
    pub message: String,
}

impl<E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static>
    From<aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>> for S3Failure
{
    fn from(err: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Self {
        use aws_sdk_s3::error::SdkError;
        match &err {
            SdkError::ServiceError(service) => {
                let e = service.err();
                // HEAD responses carry no body, so no code: name the status instead.
                let status = match service.raw().status().as_u16() {
                    404 => "NotFound".to_owned(),
                    403 => "AccessDenied".to_owned(),
                    other => format!("HTTP{other}"),
                };
                Self {
                    code: e.code().map_or_else(|| status.clone(), str::to_owned),
                    message: e.message().map_or_else(|| format!("the request failed ({status})"), str::to_owned),
                }
            }
            SdkError::TimeoutError(_) => Self { code: "Timeout".into(), message: "S3 did not answer in time".into() },
            SdkError::DispatchFailure(_) => Self {
                code: "ConnectionFailed".into(),
                message: aws_smithy_types::error::display::DisplayErrorContext(&err).to_string(),
            },
            other => Self {
                code: "RequestFailed".into(),
                message: aws_smithy_types::error::display::DisplayErrorContext(other).to_string(),
            },
        }
    }
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    format!("{scheme}://{host}")
}

/// Percent-encodes a key for the `x-amz-copy-source` header (slashes kept).
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// When a server-side copy switches to multipart copy, and the part size it uses.
#[derive(Debug, Clone, Copy)]
pub struct CopyPlan {
    pub single_copy_limit: i64,
    pub part_size: i64,
}

impl Default for CopyPlan {
    /// S3 copies at most 5 GiB in one CopyObject call.
    fn default() -> Self {
        Self { single_copy_limit: 5 * 1024 * 1024 * 1024, part_size: 512 * 1024 * 1024 }
    }
}

/// A copied object: its new ETag and modification time (Unix seconds).
#[derive(Debug, Clone)]
pub struct Copied {
    pub etag: String,
    pub last_modified: Option<i64>,
}

/// Copies one object server-side (the data never passes through Capstan),
/// with multipart copy above `plan.single_copy_limit`.
pub async fn copy_object(
    client: &Client,
    from: (&str, &str),
    size: i64,
    to: (&str, &str),
    plan: CopyPlan,
) -> Result<Copied, S3Failure> {
    let source = format!("{}/{}", from.0, encode_key(from.1));
    if size <= plan.single_copy_limit {
        let out = client.copy_object().copy_source(&source).bucket(to.0).key(to.1).send().await?;
        let result = out.copy_object_result();
        return Ok(Copied {
            etag: result.and_then(|r| r.e_tag()).unwrap_or_default().trim_matches('"').to_owned(),
            last_modified: result.and_then(|r| r.last_modified()).map(aws_smithy_types::DateTime::secs),
        });
    }
    let upload = client.create_multipart_upload().bucket(to.0).key(to.1).send().await?;
    let upload_id = upload.upload_id().unwrap_or_default().to_owned();
    let result = copy_parts(client, &source, size, to, &upload_id, plan.part_size).await;
    match result {
        Ok(parts) => {
            let done = client
                .complete_multipart_upload()
                .bucket(to.0)
                .key(to.1)
                .upload_id(&upload_id)
                .multipart_upload(aws_sdk_s3::types::CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                .send()
                .await?;
            let head = client.head_object().bucket(to.0).key(to.1).send().await?;
            Ok(Copied {
                etag: done.e_tag().unwrap_or_default().trim_matches('"').to_owned(),
                last_modified: head.last_modified().map(aws_smithy_types::DateTime::secs),
            })
        }
        Err(e) => {
            let _ = client.abort_multipart_upload().bucket(to.0).key(to.1).upload_id(&upload_id).send().await;
            Err(e)
        }
    }
}

async fn copy_parts(
    client: &Client,
    source: &str,
    size: i64,
    to: (&str, &str),
    upload_id: &str,
    part_size: i64,
) -> Result<Vec<aws_sdk_s3::types::CompletedPart>, S3Failure> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut number = 1;
    while start < size {
        let end = (start + part_size).min(size) - 1;
        let out = client
            .upload_part_copy()
            .copy_source(source)
            .copy_source_range(format!("bytes={start}-{end}"))
            .bucket(to.0)
            .key(to.1)
            .upload_id(upload_id)
            .part_number(number)
            .send()
            .await?;
        let etag = out.copy_part_result().and_then(|r| r.e_tag()).unwrap_or_default().to_owned();
        parts.push(aws_sdk_s3::types::CompletedPart::builder().part_number(number).e_tag(etag).build());
        start = end + 1;
        number += 1;
    }
    Ok(parts)
}

/// Reads bytes `start..start+len` of an object (a ranged GET).
pub async fn read_range(
    client: &Client,
    bucket: &str,
    key: &str,
    start: u64,
    len: u64,
) -> Result<bytes::Bytes, S3Failure> {
    if len == 0 {
        return Ok(bytes::Bytes::new());
    }
    let out =
        client.get_object().bucket(bucket).key(key).range(format!("bytes={start}-{}", start + len - 1)).send().await?;
    let data = out.body.collect().await.map_err(|e| S3Failure { code: "ReadFailed".into(), message: e.to_string() })?;
    Ok(data.into_bytes())
}

/// One object in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: i64,
    pub etag: String,
    /// Seconds since the Unix epoch.
    pub last_modified: Option<i64>,
}

/// Lists every object under `prefix` (all pages), calling `on_page` after each
/// page so callers can record progress. Returns the number of list calls made.
pub async fn list_prefix(
    client: &Client,
    bucket: &str,
    prefix: &str,
    mut on_page: impl FnMut(Vec<ObjectInfo>),
) -> Result<u64, aws_sdk_s3::error::SdkError<aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Error>> {
    let mut pages = client.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
    let mut calls = 0;
    while let Some(page) = pages.next().await {
        let page = page?;
        calls += 1;
        let objects = page
            .contents()
            .iter()
            .map(|o| ObjectInfo {
                key: o.key().unwrap_or_default().to_owned(),
                size: o.size().unwrap_or_default(),
                etag: o.e_tag().unwrap_or_default().trim_matches('"').to_owned(),
                last_modified: o.last_modified().map(aws_smithy_types::DateTime::secs),
            })
            .collect();
        on_page(objects);
    }
    Ok(calls)
}

/// The managed bucket and the clients to reach it: one for server-side
/// calls, one whose endpoint is what browsers use (for presigned URLs).
#[derive(Clone, Debug)]
pub struct Storage {
    pub client: Client,
    presign: Client,
    pub bucket: String,
    browser_origin: String,
}

impl Storage {
    /// Builds the clients; `public_endpoint` replaces the endpoint in presigned
    /// URLs when browsers reach the store under another address.
    pub async fn new(config: &S3Config, public_endpoint: Option<&str>, bucket: &str) -> Self {
        let server_side = client(config).await;
        let presign = match public_endpoint {
            Some(endpoint) => client(&S3Config { endpoint: Some(endpoint.to_owned()), ..config.clone() }).await,
            None => server_side.clone(),
        };
        let endpoint = public_endpoint.map(str::to_owned).or_else(|| config.endpoint.clone());
        let browser_origin = endpoint.map_or_else(|| "https://*.amazonaws.com".to_owned(), |e| origin_of(&e));
        Self { client: server_side, presign, bucket: bucket.to_owned(), browser_origin }
    }

    /// The origin browsers send presigned requests to (for the pages'
    /// Content-Security-Policy `connect-src`).
    pub fn browser_origin(&self) -> &str {
        &self.browser_origin
    }

    /// The client whose presigned URLs browsers can open.
    pub fn presigner(&self) -> &Client {
        &self.presign
    }

    /// Whether the bucket answers (used by readiness checks).
    pub async fn reachable(&self) -> bool {
        self.client.head_bucket().bucket(&self.bucket).send().await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_normalise_to_folders() {
        let uri = S3Uri::parse(" s3://capstan/datasets/ml/churn ").expect("valid");
        assert_eq!((uri.bucket.as_str(), uri.prefix.as_str()), ("capstan", "datasets/ml/churn/"));
        assert_eq!(S3Uri::parse("s3://capstan").expect("valid").prefix, "");
        assert!(S3Uri::parse("https://capstan/x").is_err());
        assert!(S3Uri::parse("s3://Capstan/x").is_err());
    }

    /// Each of these named another team's area (or the whole bucket) from
    /// inside one's own before dot segments were refused.
    #[test]
    fn dot_segments_and_odd_separators_are_refused() {
        for raw in [
            "s3://capstan/datasets/mine/../victim/",
            "s3://capstan/jobs/mine/../../",
            "s3://capstan/datasets/mine/./x/",
            "s3://capstan/datasets/mine/..",
            "s3://capstan/datasets//victim/",
            "s3://capstan//datasets/",
            "s3://capstan/datasets\\victim/",
            "s3://capstan/datasets/mine\u{0}/",
        ] {
            assert!(S3Uri::parse(raw).is_err(), "{raw} should be refused");
        }
        assert!(S3Uri::parse("s3://capstan/datasets/mine/v1.2/..data/").is_ok(), "dots inside names are fine");
    }

    #[test]
    fn relative_paths() {
        assert!(check_relative("a/b.csv").is_ok());
        for bad in ["", "/a", "a//b", "a/./b", "../a", "a/..", "a\\b", "a\u{7}b", "a/"] {
            assert!(check_relative(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
