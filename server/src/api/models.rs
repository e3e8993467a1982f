//! `/api/v1/teams/{team}/models`, `/api/v1/models/{id}` and
//! `/api/v1/model-versions/{id}`: the model registry's models and versions.

use super::{ApiJson, ApiPath, ApiQuery};
use app::kernel::context::Ctx;
use app::kernel::error::AppError;
use app::kernel::error::ssr::Problem;
use app::kernel::page::Page;
use app::kernel::state::AppState;
use app::registry::aliases::Route;
use app::registry::types::{
    Alias, AliasChange, Model, ModelQuery, ModelUpdate, ModelVersion, ModelVersionQuery, ModelVersionUpdate, NewModel,
    NewModelVersion, SetAlias, StatusChange,
};
use app::registry::{aliases, domain, versions};
use axum::Json;
use http::StatusCode;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update))
        .routes(routes!(archive))
        .routes(routes!(list_versions, register))
        .routes(routes!(get_version, update_version))
        .routes(routes!(set_status))
        .routes(routes!(list_aliases))
        .routes(routes!(resolve_alias, set_alias, delete_alias))
        .routes(routes!(alias_history))
        .routes(routes!(protect_alias))
        .routes(routes!(unprotect_alias))
}

/// The team's models by name; `q` searches names, `tag` filters by tag.
#[utoipa::path(get, path = "/teams/{team}/models", tag = "registry",
    params(("team" = String, Path, description = "Team slug"), ModelQuery),
    responses((status = 200, body = Page<Model>), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn list(
    ctx: Ctx,
    ApiPath(team): ApiPath<String>,
    ApiQuery(q): ApiQuery<ModelQuery>,
) -> Result<Json<Page<Model>>, AppError> {
    Ok(Json(domain::list(&ctx, &team, q).await?))
}

/// Creates a model (members and up).
#[utoipa::path(post, path = "/teams/{team}/models", tag = "registry",
    params(("team" = String, Path, description = "Team slug")), request_body = NewModel,
    responses((status = 201, body = Model), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create(
    ctx: Ctx,
    ApiPath(team): ApiPath<String>,
    ApiJson(input): ApiJson<NewModel>,
) -> Result<(StatusCode, Json<Model>), AppError> {
    Ok((StatusCode::CREATED, Json(domain::create(&ctx, &team, input).await?)))
}

/// One model, archived or not.
#[utoipa::path(get, path = "/models/{id}", tag = "registry", params(("id" = Uuid, Path)),
    responses((status = 200, body = Model), (status = 404, body = Problem)))]
async fn get_one(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<Json<Model>, AppError> {
    Ok(Json(domain::get(&ctx, id).await?))
}

/// Changes the description or tags (members and up).
#[utoipa::path(patch, path = "/models/{id}", tag = "registry", params(("id" = Uuid, Path)), request_body = ModelUpdate,
    responses((status = 200, body = Model), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 422, body = Problem)))]
async fn update(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<ModelUpdate>,
) -> Result<Json<Model>, AppError> {
    Ok(Json(domain::update(&ctx, id, input).await?))
}

/// Archives a model (team admins): hidden from lists, still resolvable.
#[utoipa::path(post, path = "/models/{id}/archive", tag = "registry", params(("id" = Uuid, Path)),
    responses((status = 200, body = Model), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn archive(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<Json<Model>, AppError> {
    Ok(Json(domain::archive(&ctx, id).await?))
}

/// The model's versions, newest first.
#[utoipa::path(get, path = "/models/{id}/versions", tag = "registry", params(("id" = Uuid, Path), ModelVersionQuery),
    responses((status = 200, body = Page<ModelVersion>), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn list_versions(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<ModelVersionQuery>,
) -> Result<Json<Page<ModelVersion>>, AppError> {
    Ok(Json(versions::list(&ctx, id, q).await?))
}

/// Registers a completed training job of the team as the model's next
/// version (members and up): its artifact, image, entry point,
/// hyperparameters, final metrics and input dataset versions come with it.
#[utoipa::path(post, path = "/models/{id}/versions", tag = "registry", params(("id" = Uuid, Path)),
    request_body = NewModelVersion,
    responses((status = 201, body = ModelVersion), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn register(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<NewModelVersion>,
) -> Result<(StatusCode, Json<ModelVersion>), AppError> {
    Ok((StatusCode::CREATED, Json(versions::register(&ctx, id, input).await?)))
}

/// One model version with its lineage (training job, dataset versions).
#[utoipa::path(get, path = "/model-versions/{id}", tag = "registry", params(("id" = Uuid, Path)),
    responses((status = 200, body = ModelVersion), (status = 404, body = Problem)))]
async fn get_version(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<Json<ModelVersion>, AppError> {
    Ok(Json(versions::get(&ctx, id).await?))
}

/// Changes a version's description or tags (members and up). What the
/// version is made of (artifact, lineage, parameters, metrics) never changes.
#[utoipa::path(patch, path = "/model-versions/{id}", tag = "registry", params(("id" = Uuid, Path)),
    request_body = ModelVersionUpdate,
    responses((status = 200, body = ModelVersion), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 422, body = Problem)))]
async fn update_version(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<ModelVersionUpdate>,
) -> Result<Json<ModelVersion>, AppError> {
    Ok(Json(versions::update(&ctx, id, input).await?))
}

/// Sets a version's status (approvers and up), following SageMaker's
/// `ModelApprovalStatus`: a pending version is approved or rejected, a
/// decision can be reversed, any version can be archived, an archived one
/// stays archived (409 otherwise).
#[utoipa::path(post, path = "/model-versions/{id}/status", tag = "registry", params(("id" = Uuid, Path)),
    request_body = StatusChange,
    responses((status = 200, body = ModelVersion), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn set_status(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<StatusChange>,
) -> Result<Json<ModelVersion>, AppError> {
    Ok(Json(versions::set_status(&ctx, id, input).await?))
}

/// The model's aliases and the versions they name.
#[utoipa::path(get, path = "/models/{id}/aliases", tag = "registry", params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<Alias>), (status = 404, body = Problem)))]
async fn list_aliases(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<Json<Vec<Alias>>, AppError> {
    Ok(Json(aliases::list(&ctx, id).await?))
}

/// The version an alias names.
#[utoipa::path(get, path = "/models/{id}/aliases/{alias}", tag = "registry",
    params(("id" = Uuid, Path), ("alias" = String, Path, pattern = r"^[a-z][a-z0-9-]{0,39}$")),
    responses((status = 200, body = ModelVersion), (status = 404, body = Problem)))]
async fn resolve_alias(
    ctx: Ctx,
    ApiPath((id, alias)): ApiPath<(Uuid, String)>,
) -> Result<Json<ModelVersion>, AppError> {
    Ok(Json(aliases::resolve(&ctx, id, &alias).await?))
}

/// Points an alias at a version of this model, creating or moving it
/// (members and up); the move is kept in the alias history. A protected
/// alias answers 409: it moves only through a change request.
#[utoipa::path(put, path = "/models/{id}/aliases/{alias}", tag = "registry",
    params(("id" = Uuid, Path), ("alias" = String, Path, pattern = r"^[a-z][a-z0-9-]{0,39}$")),
    request_body = SetAlias,
    responses((status = 200, body = Alias), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn set_alias(
    ctx: Ctx,
    ApiPath((id, alias)): ApiPath<(Uuid, String)>,
    ApiJson(input): ApiJson<SetAlias>,
) -> Result<Json<Alias>, AppError> {
    Ok(Json(aliases::set(&ctx, id, &alias, input, Route::Direct).await?))
}

/// Deletes an alias (members and up); a protected alias answers 409.
#[utoipa::path(delete, path = "/models/{id}/aliases/{alias}", tag = "registry",
    params(("id" = Uuid, Path), ("alias" = String, Path, pattern = r"^[a-z][a-z0-9-]{0,39}$")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem)))]
async fn delete_alias(ctx: Ctx, ApiPath((id, alias)): ApiPath<(Uuid, String)>) -> Result<StatusCode, AppError> {
    aliases::delete(&ctx, id, &alias, Route::Direct).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every set, move and delete of an alias, newest first: who, when, from → to, why.
#[utoipa::path(get, path = "/models/{id}/aliases/{alias}/history", tag = "registry",
    params(("id" = Uuid, Path), ("alias" = String, Path, pattern = r"^[a-z][a-z0-9-]{0,39}$"), super::PageParams),
    responses((status = 200, body = Page<AliasChange>), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn alias_history(
    ctx: Ctx,
    ApiPath((id, alias)): ApiPath<(Uuid, String)>,
    ApiQuery(page): ApiQuery<super::PageParams>,
) -> Result<Json<Page<AliasChange>>, AppError> {
    Ok(Json(aliases::history(&ctx, id, &alias, page.cursor.as_deref(), page.limit).await?))
}

/// Protects an alias (team admins): it is then moved or deleted only
/// through a change request.
#[utoipa::path(post, path = "/models/{id}/aliases/{alias}/protect", tag = "registry",
    params(("id" = Uuid, Path), ("alias" = String, Path, pattern = r"^[a-z][a-z0-9-]{0,39}$")),
    responses((status = 200, body = Alias), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn protect_alias(ctx: Ctx, ApiPath((id, alias)): ApiPath<(Uuid, String)>) -> Result<Json<Alias>, AppError> {
    Ok(Json(aliases::protect(&ctx, id, &alias, true).await?))
}

/// Lifts an alias's protection (team admins).
#[utoipa::path(post, path = "/models/{id}/aliases/{alias}/unprotect", tag = "registry",
    params(("id" = Uuid, Path), ("alias" = String, Path, pattern = r"^[a-z][a-z0-9-]{0,39}$")),
    responses((status = 200, body = Alias), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn unprotect_alias(ctx: Ctx, ApiPath((id, alias)): ApiPath<(Uuid, String)>) -> Result<Json<Alias>, AppError> {
    Ok(Json(aliases::protect(&ctx, id, &alias, false).await?))
}
