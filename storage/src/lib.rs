//! Object storage for Capstan: one S3 code path (`aws-sdk-s3`) for both modes.
//! In AWS mode the client uses the default credential chain; in local mode it
//! talks to [`local::LocalS3`], an S3-compatible endpoint on loopback backed by
//! a folder, so presigned URLs, multipart uploads and listings behave alike.

pub mod local;

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

/// Builds an S3 client from `config`.
pub async fn client(config: &S3Config) -> Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &config.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some((key, secret)) = &config.credentials {
        loader = loader.credentials_provider(Credentials::new(key, secret, None, None, "capstan-static"));
    }
    if let Some(endpoint) = &config.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    let shared = loader.load().await;
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
        Self { client: server_side, presign, bucket: bucket.to_owned() }
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
