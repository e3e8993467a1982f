//! Server functions of datasets, versions, uploads and previews.

use crate::datasets::types::{
    Check, Dataset, DatasetQuery, DatasetVersion, Drift, ManifestEntry, PartUrl, Preview, UploadFile, UploadStarted,
    UploadedFile,
};
#[cfg(feature = "ssr")]
use crate::datasets::types::{
    DatasetUpdate, DriftQuery, ManifestQuery, NewDataset, NewUpload, NewVersion, PartsRequest, PreviewQuery,
    UploadCompletion, VersionQuery,
};
use crate::kernel::error::AppError;
use crate::kernel::page::Page;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use uuid::Uuid;

/// Tags as typed in the form: one string, comma-separated.
#[cfg(feature = "ssr")]
fn split_tags(raw: &str) -> Vec<String> {
    raw.split(',').map(str::to_owned).collect()
}

#[server(prefix = "/rpc", endpoint = "list_datasets", output = crate::kernel::codec::Json)]
pub async fn list_datasets(team: String, query: DatasetQuery) -> Result<Page<Dataset>, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::datasets::domain::list(&ctx, &team, query).await)
}

/// `tags` is comma-separated, as typed in the form.
#[server(prefix = "/rpc", endpoint = "create_dataset", output = crate::kernel::codec::Json)]
pub async fn create_dataset(
    team: String,
    name: String,
    description: String,
    tags: String,
) -> Result<Dataset, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(
        crate::datasets::domain::create(&ctx, &team, NewDataset { name, description, tags: split_tags(&tags) }).await,
    )
}

#[server(prefix = "/rpc", endpoint = "get_dataset", output = crate::kernel::codec::Json)]
pub async fn get_dataset(id: Uuid) -> Result<Dataset, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::datasets::domain::get(&ctx, id).await)
}

#[server(prefix = "/rpc", endpoint = "update_dataset", output = crate::kernel::codec::Json)]
pub async fn update_dataset(id: Uuid, description: String, tags: String) -> Result<Dataset, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let update = DatasetUpdate { description: Some(description), tags: Some(split_tags(&tags)) };
    crate::kernel::context::finish(crate::datasets::domain::update(&ctx, id, update).await)
}

#[server(prefix = "/rpc", endpoint = "archive_dataset", output = crate::kernel::codec::Json)]
pub async fn archive_dataset(id: Uuid) -> Result<Dataset, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::datasets::domain::archive(&ctx, id).await)
}

#[leptos::server(prefix = "/rpc", endpoint = "list_versions")]
pub async fn list_versions(dataset_id: Uuid, cursor: Option<String>) -> Result<Page<DatasetVersion>, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(
        crate::datasets::versions::list(&ctx, dataset_id, VersionQuery { cursor, limit: None }).await,
    )
}

#[leptos::server(prefix = "/rpc", endpoint = "get_version")]
pub async fn get_version(id: Uuid) -> Result<DatasetVersion, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::datasets::versions::get(&ctx, id).await)
}

/// `snapshot` is a checkbox: present ("on") means copy.
#[leptos::server(prefix = "/rpc", endpoint = "create_version")]
pub async fn create_version(
    dataset_id: Uuid,
    source_uri: String,
    snapshot: Option<String>,
) -> Result<DatasetVersion, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(
        crate::datasets::versions::create(&ctx, dataset_id, NewVersion { source_uri, snapshot: snapshot.is_some() })
            .await,
    )
}

#[leptos::server(prefix = "/rpc", endpoint = "list_manifest")]
pub async fn list_manifest(
    id: Uuid,
    prefix: Option<String>,
    cursor: Option<String>,
) -> Result<Page<ManifestEntry>, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(
        crate::datasets::versions::manifest(&ctx, id, ManifestQuery { prefix, cursor, limit: None }).await,
    )
}

#[leptos::server(prefix = "/rpc", endpoint = "verify_version")]
pub async fn verify_version(id: Uuid) -> Result<Check, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::datasets::versions::verify(&ctx, id).await)
}

#[leptos::server(prefix = "/rpc", endpoint = "latest_check")]
pub async fn latest_check(id: Uuid) -> Result<Option<Check>, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::datasets::versions::latest_check(&ctx, id).await)
}

#[leptos::server(prefix = "/rpc", endpoint = "list_drift")]
pub async fn list_drift(id: Uuid, cursor: Option<String>) -> Result<Page<Drift>, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(
        crate::datasets::versions::drift(&ctx, id, DriftQuery { check: None, cursor, limit: None }).await,
    )
}

/// Deletes a version (team admins). Refused while it is in progress or
/// while anything (a training job, a model) references it.
#[leptos::server(prefix = "/rpc", endpoint = "delete_version")]
pub async fn delete_version(id: Uuid) -> Result<(), AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::datasets::versions::delete(&ctx, id).await)
}

#[leptos::server(prefix = "/rpc", endpoint = "start_upload", input = Json)]
pub async fn start_upload(dataset_id: Uuid, files: Vec<UploadFile>) -> Result<UploadStarted, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::datasets::upload::start(&ctx, dataset_id, NewUpload { files }).await)
}

#[leptos::server(prefix = "/rpc", endpoint = "presign_parts", input = Json)]
pub async fn presign_parts(version_id: Uuid, path: String, parts: Vec<i32>) -> Result<Vec<PartUrl>, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(
        crate::datasets::upload::presign(&ctx, version_id, PartsRequest { path, parts }).await,
    )
}

#[leptos::server(prefix = "/rpc", endpoint = "complete_upload", input = Json)]
pub async fn complete_upload(version_id: Uuid, files: Vec<UploadedFile>) -> Result<DatasetVersion, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(
        crate::datasets::upload::complete(&ctx, version_id, UploadCompletion { files }).await,
    )
}

#[leptos::server(prefix = "/rpc", endpoint = "abort_upload", input = Json)]
pub async fn abort_upload(version_id: Uuid) -> Result<DatasetVersion, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::datasets::upload::abort(&ctx, version_id).await)
}

#[leptos::server(prefix = "/rpc", endpoint = "preview_object")]
pub async fn preview_object(id: uuid::Uuid, key: String) -> Result<Preview, crate::kernel::error::AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::datasets::preview::preview(&ctx, id, PreviewQuery { key, rows: None }).await)
}
