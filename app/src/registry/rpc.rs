//! Server functions of the model registry.

use crate::kernel::error::AppError;
use crate::kernel::page::Page;
use crate::registry::types::{
    Alias, Comparison, Imported, Lineage, Model, ModelCard, ModelQuery, ModelVersion, ModelVersionStatus, PackageGroup,
    PackageSync, TargetChange,
};
#[cfg(feature = "ssr")]
use crate::registry::types::{NewModel, NewModelVersion, StatusChange, VersionSearch};
use leptos::prelude::*;
use uuid::Uuid;

#[server(prefix = "/rpc", endpoint = "list_models", output = crate::kernel::codec::Json)]
pub async fn list_models(team: String, query: ModelQuery) -> Result<Page<Model>, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::registry::domain::list(&ctx, &team, query).await)
}

#[server(prefix = "/rpc", endpoint = "create_model", output = crate::kernel::codec::Json)]
pub async fn create_model(team: String, name: String, description: String) -> Result<Model, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let input = NewModel { name, description, tags: Default::default() };
    crate::kernel::context::finish(crate::registry::domain::create(&ctx, &team, input).await)
}

#[server(prefix = "/rpc", endpoint = "get_model", output = crate::kernel::codec::Json)]
pub async fn get_model(id: Uuid) -> Result<Model, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::registry::domain::get(&ctx, id).await)
}

/// A model's versions, newest first or in `order_by` order, from `cursor` on.
#[server(prefix = "/rpc", endpoint = "list_model_versions", output = crate::kernel::codec::Json)]
pub async fn list_model_versions(
    id: Uuid,
    order_by: Option<String>,
    cursor: Option<String>,
) -> Result<Page<ModelVersion>, AppError> {
    use crate::registry::search::{Scope, search};
    let ctx = crate::kernel::context::server_ctx().await?;
    let query = VersionSearch { order_by, cursor, ..Default::default() };
    crate::kernel::context::finish(search(&ctx, Scope::Model(id), query).await)
}

/// The team's versions matching `filter`, in `order_by` order, from `cursor` on.
#[server(prefix = "/rpc", endpoint = "search_versions", output = crate::kernel::codec::Json)]
pub async fn search_versions(
    team: String,
    filter: Option<String>,
    order_by: Option<String>,
    cursor: Option<String>,
) -> Result<Page<ModelVersion>, AppError> {
    use crate::registry::search::{Scope, search};
    let ctx = crate::kernel::context::server_ctx().await?;
    let query = VersionSearch { filter, order_by, cursor, limit: None };
    crate::kernel::context::finish(search(&ctx, Scope::Team(&team), query).await)
}

#[server(prefix = "/rpc", endpoint = "get_model_version", output = crate::kernel::codec::Json)]
pub async fn get_model_version(id: Uuid) -> Result<ModelVersion, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::registry::versions::get(&ctx, id).await)
}

/// Where a version came from: dataset versions → training job → version.
#[server(prefix = "/rpc", endpoint = "version_lineage", output = crate::kernel::codec::Json)]
pub async fn version_lineage(id: Uuid) -> Result<Lineage, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::registry::lineage::of_version(&ctx, id).await)
}

/// Every change of a version and of the aliases that named it, from the audit log.
#[server(prefix = "/rpc", endpoint = "version_changes", output = crate::kernel::codec::Json)]
pub async fn version_changes(id: Uuid) -> Result<Vec<TargetChange>, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::registry::history::of_version(&ctx, id).await)
}

/// Every change of alias `alias` of model `model`, from the audit log.
#[server(prefix = "/rpc", endpoint = "alias_changes", output = crate::kernel::codec::Json)]
pub async fn alias_changes(model: Uuid, alias: String) -> Result<Vec<TargetChange>, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::registry::history::of_alias(&ctx, model, &alias).await)
}

#[server(prefix = "/rpc", endpoint = "get_card", output = crate::kernel::codec::Json)]
pub async fn get_card(id: Uuid) -> Result<ModelCard, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::registry::card::get(&ctx, id).await)
}

/// Saves a version's card; `signature` is its JSON (`{"inputs": […], "outputs": […]}`) or empty.
#[server(prefix = "/rpc", endpoint = "save_card", output = crate::kernel::codec::Json)]
pub async fn save_card(id: Uuid, markdown: String, signature: String) -> Result<ModelCard, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let signature = match signature.trim() {
        "" => Ok(None),
        raw => serde_json::from_str(raw).map(Some).map_err(|e| {
            AppError::field(
                "signature",
                format!("Give the signature as JSON {{\"inputs\": […], \"outputs\": […]}}: {e}"),
            )
        }),
    };
    let result = match signature {
        Ok(signature) => {
            let update = crate::registry::types::CardUpdate { markdown, signature };
            crate::registry::card::set(&ctx, id, update).await
        }
        Err(e) => Err(e),
    };
    crate::kernel::context::finish(result)
}

/// The card as it will look, for the editor's live preview (signed-in callers).
#[server(prefix = "/rpc", endpoint = "preview_card", output = crate::kernel::codec::Json)]
pub async fn preview_card(markdown: String) -> Result<String, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let result = match ctx.actor() {
        Err(e) => Err(e),
        Ok(_) if markdown.chars().count() > crate::registry::types::CARD_MAX_CHARS => {
            Err(AppError::field("markdown", "A card holds at most 256 Ki characters."))
        }
        Ok(_) => Ok(crate::registry::card::render(&markdown)),
    };
    crate::kernel::context::finish(result)
}

/// 2 to 5 versions of the team side by side; `ids` comma separated.
#[server(prefix = "/rpc", endpoint = "compare_versions", output = crate::kernel::codec::Json)]
pub async fn compare_versions(team: String, ids: String) -> Result<Comparison, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let result = match crate::registry::compare::ids(&[ids]) {
        Ok(ids) => crate::registry::compare::compare(&ctx, &team, &ids).await,
        Err(e) => Err(e),
    };
    crate::kernel::context::finish(result)
}

/// Registers an artifact in S3 (a model.tar.gz or a folder) as the model's
/// next version; `image` is optional.
#[server(prefix = "/rpc", endpoint = "register_artifact", output = crate::kernel::codec::Json)]
pub async fn register_artifact(
    model: Uuid,
    artifact_uri: String,
    image: String,
    description: String,
) -> Result<ModelVersion, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let image = Some(image.trim().to_owned()).filter(|i| !i.is_empty());
    let input = NewModelVersion { artifact_uri: Some(artifact_uri), image, description, ..Default::default() };
    crate::kernel::context::finish(crate::registry::versions::register(&ctx, model, input).await)
}

/// Registers a completed training job as the next version of the team's
/// model `model` (by name), creating the model if the team has none of
/// that name: the one click on a job's page.
#[server(prefix = "/rpc", endpoint = "register_job", output = crate::kernel::codec::Json)]
pub async fn register_job(team: String, model: String, job: Uuid) -> Result<ModelVersion, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let input = NewModelVersion { training_job_id: Some(job), ..Default::default() };
    crate::kernel::context::finish(crate::registry::versions::register_by_name(&ctx, &team, &model, input).await)
}

/// Approves, rejects or archives a version (approvers and up).
#[server(prefix = "/rpc", endpoint = "set_version_status", output = crate::kernel::codec::Json)]
pub async fn set_version_status(id: Uuid, status: ModelVersionStatus) -> Result<ModelVersion, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let change = StatusChange { status, reason: String::new() };
    crate::kernel::context::finish(crate::registry::versions::set_status(&ctx, id, change).await)
}

#[server(prefix = "/rpc", endpoint = "list_aliases", output = crate::kernel::codec::Json)]
pub async fn list_aliases(id: Uuid) -> Result<Vec<Alias>, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::registry::aliases::list(&ctx, id).await)
}

/// Points `alias` of model `model` at `version` (members and up; not a protected alias).
#[server(prefix = "/rpc", endpoint = "point_alias", output = crate::kernel::codec::Json)]
pub async fn point_alias(model: Uuid, alias: String, version: Uuid) -> Result<Alias, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let input = crate::registry::types::SetAlias { version_id: version, reason: String::new() };
    let route = crate::registry::gate::Route::Direct;
    crate::kernel::context::finish(crate::registry::aliases::set(&ctx, model, alias.trim(), input, route).await)
}

/// Where SageMaker's copy of a version stands (AWS mode); `None` when nothing mirrors it.
#[server(prefix = "/rpc", endpoint = "version_package", output = crate::kernel::codec::Json)]
pub async fn version_package(id: Uuid) -> Result<Option<PackageSync>, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::registry::packages::sync_state(&ctx, id).await)
}

/// The AWS account's Model Package Groups (team admins); `None` in local
/// mode, where there is no SageMaker to import from.
#[server(prefix = "/rpc", endpoint = "package_groups", output = crate::kernel::codec::Json)]
pub async fn package_groups(team: String) -> Result<Option<Vec<PackageGroup>>, AppError> {
    use crate::kernel::roles::Action;
    let ctx = crate::kernel::context::server_ctx().await?;
    let result = match crate::teams::domain::load(&ctx, &team, Action::Archive).await {
        Err(e) => Err(e),
        Ok(_) if ctx.state.packages.is_none() => Ok(None),
        Ok(_) => crate::registry::packages::groups(&ctx, &team).await.map(Some),
    };
    crate::kernel::context::finish(result)
}

/// Imports a Model Package Group as a new model of the team (team admins,
/// AWS mode); `name` empty keeps the group's name.
#[server(prefix = "/rpc", endpoint = "import_group", output = crate::kernel::codec::Json)]
pub async fn import_group(team: String, group: String, name: String) -> Result<Imported, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let name = Some(name.trim().to_owned()).filter(|n| !n.is_empty());
    let input = crate::registry::types::ImportGroup { group, name };
    crate::kernel::context::finish(crate::registry::packages::import(&ctx, &team, input).await)
}
