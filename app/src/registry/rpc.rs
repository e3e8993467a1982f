//! Server functions of the model registry.

use crate::kernel::error::AppError;
use crate::kernel::page::Page;
use crate::registry::types::{Alias, Model, ModelQuery, ModelVersion, ModelVersionStatus};
#[cfg(feature = "ssr")]
use crate::registry::types::{ModelVersionQuery, NewModel, NewModelVersion, StatusChange};
use leptos::prelude::*;
use uuid::Uuid;

#[server(prefix = "/rpc", endpoint = "list_models")]
pub async fn list_models(team: String, query: ModelQuery) -> Result<Page<Model>, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::registry::domain::list(&ctx, &team, query).await)
}

#[server(prefix = "/rpc", endpoint = "create_model")]
pub async fn create_model(team: String, name: String, description: String) -> Result<Model, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let input = NewModel { name, description, tags: Default::default() };
    crate::kernel::context::finish(crate::registry::domain::create(&ctx, &team, input).await)
}

#[server(prefix = "/rpc", endpoint = "get_model")]
pub async fn get_model(id: Uuid) -> Result<Model, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::registry::domain::get(&ctx, id).await)
}

/// A model's versions, newest first, from `cursor` on.
#[server(prefix = "/rpc", endpoint = "list_model_versions")]
pub async fn list_model_versions(id: Uuid, cursor: Option<String>) -> Result<Page<ModelVersion>, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let query = ModelVersionQuery { cursor, limit: None };
    crate::kernel::context::finish(crate::registry::versions::list(&ctx, id, query).await)
}

/// Registers a completed training job as the next version of the team's
/// model `model` (by name), creating the model if the team has none of
/// that name: the one click on a job's page.
#[server(prefix = "/rpc", endpoint = "register_job")]
pub async fn register_job(team: String, model: String, job: Uuid) -> Result<ModelVersion, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let input = NewModelVersion { training_job_id: job, ..Default::default() };
    crate::kernel::context::finish(crate::registry::versions::register_by_name(&ctx, &team, &model, input).await)
}

/// Approves, rejects or archives a version (approvers and up).
#[server(prefix = "/rpc", endpoint = "set_version_status")]
pub async fn set_version_status(id: Uuid, status: ModelVersionStatus) -> Result<ModelVersion, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let change = StatusChange { status, reason: String::new() };
    crate::kernel::context::finish(crate::registry::versions::set_status(&ctx, id, change).await)
}

#[server(prefix = "/rpc", endpoint = "list_aliases")]
pub async fn list_aliases(id: Uuid) -> Result<Vec<Alias>, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::registry::aliases::list(&ctx, id).await)
}

/// Points `alias` of model `model` at `version` (members and up; not a protected alias).
#[server(prefix = "/rpc", endpoint = "point_alias")]
pub async fn point_alias(model: Uuid, alias: String, version: Uuid) -> Result<Alias, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let input = crate::registry::types::SetAlias { version_id: version, reason: String::new() };
    let route = crate::registry::aliases::Route::Direct;
    crate::kernel::context::finish(crate::registry::aliases::set(&ctx, model, alias.trim(), input, route).await)
}
