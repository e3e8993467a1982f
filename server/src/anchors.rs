//! Audit anchors kept outside the database: in AWS mode in Capstan's bucket
//! under `audit-anchors/`, in local mode in `$CAPSTAN_DATA_DIR/audit-anchors/`
//! (or any file named on the command line). Names sort by time, so the
//! newest is last. The key that signs them comes from
//! `CAPSTAN_AUDIT_ANCHOR_KEY`.

use anyhow::Context as _;
use app::audit::domain::Anchor;
use std::path::{Path, PathBuf};
use storage::Storage;

const PREFIX: &str = "audit-anchors/";

/// Where anchors are kept.
pub enum AnchorStore {
    Folder(PathBuf),
    Bucket(Storage),
}

impl AnchorStore {
    /// The bucket in AWS mode, `$CAPSTAN_DATA_DIR/audit-anchors` in local mode.
    pub fn for_mode(config: &crate::config::Config, storage: &Storage) -> Self {
        if config.mode == crate::config::Mode::Aws {
            Self::Bucket(storage.clone())
        } else {
            Self::Folder(config.data_dir.join("audit-anchors"))
        }
    }

    /// Stores `anchor`; returns where.
    pub async fn save(&self, anchor: &Anchor) -> anyhow::Result<String> {
        let name = format!("{}.json", anchor.created_at.replace(':', "-"));
        let body = serde_json::to_vec_pretty(anchor)?;
        match self {
            Self::Folder(dir) => {
                std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
                let path = dir.join(name);
                std::fs::write(&path, body).with_context(|| format!("failed to write {}", path.display()))?;
                Ok(path.display().to_string())
            }
            Self::Bucket(storage) => {
                let key = format!("{PREFIX}{name}");
                storage
                    .client
                    .put_object()
                    .bucket(&storage.bucket)
                    .key(&key)
                    .content_type("application/json")
                    .body(body.into())
                    .send()
                    .await
                    .map_err(|e| anyhow::anyhow!("{}", storage::S3Failure::from(e)))
                    .with_context(|| format!("failed to store the audit anchor at s3://{}/{key}", storage.bucket))?;
                Ok(format!("s3://{}/{key}", storage.bucket))
            }
        }
    }

    /// The newest anchor kept here, if any.
    pub async fn latest(&self) -> anyhow::Result<Option<Anchor>> {
        match self {
            Self::Folder(dir) => {
                let Ok(entries) = std::fs::read_dir(dir) else { return Ok(None) };
                let newest = entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .max();
                newest.map(|p| read_file(&p)).transpose()
            }
            Self::Bucket(storage) => {
                let mut newest: Option<String> = None;
                storage::list_prefix(&storage.client, &storage.bucket, PREFIX, |page| {
                    for object in page {
                        if newest.as_deref().is_none_or(|n| object.key.as_str() > n) {
                            newest = Some(object.key);
                        }
                    }
                })
                .await
                .map_err(|e| anyhow::anyhow!("{}", storage::S3Failure::from(e)))
                .context("failed to list the audit anchors")?;
                let Some(key) = newest else { return Ok(None) };
                let out = storage
                    .client
                    .get_object()
                    .bucket(&storage.bucket)
                    .key(&key)
                    .send()
                    .await
                    .map_err(|e| anyhow::anyhow!("{}", storage::S3Failure::from(e)))
                    .with_context(|| format!("failed to read {key}"))?;
                let bytes = out.body.collect().await.context("failed to read the anchor")?.into_bytes();
                Ok(Some(serde_json::from_slice(&bytes).with_context(|| format!("{key} is not an audit anchor"))?))
            }
        }
    }
}

/// Reads an anchor file.
pub fn read_file(path: &Path) -> anyhow::Result<Anchor> {
    let text = std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("{} is not an audit anchor", path.display()))
}
