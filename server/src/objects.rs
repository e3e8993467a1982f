//! Object storage wiring: in local mode, start the private S3 endpoint under
//! the data directory (credentials generated once and kept there) and create
//! the bucket; in AWS mode, use the default credential chain and region.

use crate::config::Config;
use anyhow::Context as _;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use storage::local::LocalS3;
use storage::{S3Config, Storage};

/// Connects to the configured object store; the endpoint is returned too
/// when this process serves it (local mode), so it can be stopped.
pub async fn connect(config: &Config) -> anyhow::Result<(Storage, Option<LocalS3>)> {
    if config.mode == crate::config::Mode::Aws {
        let s3 = S3Config {
            endpoint: config.s3_endpoint.clone(),
            region: None,
            credentials: None,
            force_path_style: config.s3_endpoint.is_some(),
        };
        let storage = Storage::new(&s3, config.s3_public_url.as_deref(), &config.s3_bucket).await;
        if !storage.reachable().await {
            tracing::warn!(bucket = %config.s3_bucket, "the S3 bucket does not answer; check CAPSTAN_S3_BUCKET and AWS credentials");
        }
        return Ok((storage, None));
    }
    let root = config.data_dir.join("s3");
    std::fs::create_dir_all(&root).with_context(|| format!("failed to create {}", root.display()))?;
    let (key, secret) = local_credentials(&root.join("credentials"))?;
    let listener = tokio::net::TcpListener::bind(config.local_s3_addr)
        .await
        .with_context(|| format!("failed to listen on {} (CAPSTAN_LOCAL_S3_ADDR)", config.local_s3_addr))?;
    let origins = browser_origins(config.public_origin());
    let local = LocalS3::start(&root.join("data"), listener, (&key, &secret), origins).await?;
    let s3 = S3Config {
        endpoint: Some(local.endpoint()),
        region: Some("us-east-1".into()),
        credentials: Some((key, secret)),
        force_path_style: true,
    };
    let storage = Storage::new(&s3, config.s3_public_url.as_deref(), &config.s3_bucket).await;
    storage::ensure_bucket(&storage.client, &config.s3_bucket).await?;
    Ok((storage, Some(local)))
}

/// The UI origins the local endpoint accepts browser calls from: the public
/// origin, and for a loopback address its `localhost` twin (and back), since
/// people type either.
fn browser_origins(public: Option<String>) -> Vec<String> {
    let Some(origin) = public else { return Vec::new() };
    let twin = if origin.contains("://127.0.0.1") {
        Some(origin.replacen("://127.0.0.1", "://localhost", 1))
    } else if origin.contains("://localhost") {
        Some(origin.replacen("://localhost", "://127.0.0.1", 1))
    } else {
        None
    };
    std::iter::once(origin).chain(twin).collect()
}

/// Reads the local endpoint's key pair, creating it (mode 0600) on first run.
fn local_credentials(path: &Path) -> anyhow::Result<(String, String)> {
    if let Ok(text) = std::fs::read_to_string(path)
        && let Some((key, secret)) = text.trim().split_once(':')
    {
        return Ok((key.to_owned(), secret.to_owned()));
    }
    let key = format!("capstan{}", random_hex(6));
    let secret = random_hex(20);
    write_private(path, &format!("{key}:{secret}"))?;
    Ok((key, secret))
}

/// Writes `text` (and a newline) to a file only its owner may read.
pub(crate) fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("failed to write {}", path.display()))?;
    file.write_all(format!("{text}\n").as_bytes())?;
    Ok(())
}

/// A random secret of `bytes` bytes (hex) kept in `path` (mode 0600),
/// created on first use.
pub(crate) fn secret_file(path: &Path, bytes: usize) -> anyhow::Result<String> {
    if let Ok(text) = std::fs::read_to_string(path)
        && !text.trim().is_empty()
    {
        return Ok(text.trim().to_owned());
    }
    let secret = random_hex(bytes);
    write_private(path, &secret)?;
    Ok(secret)
}

fn random_hex(bytes: usize) -> String {
    use rand::RngCore as _;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_origins_come_in_pairs() {
        assert_eq!(
            super::browser_origins(Some("http://127.0.0.1:3000".into())),
            ["http://127.0.0.1:3000", "http://localhost:3000"]
        );
        assert_eq!(super::browser_origins(Some("https://capstan.example.com".into())), ["https://capstan.example.com"]);
        assert!(super::browser_origins(None).is_empty());
    }
}
