//! `/api/v1/teams/{team}/models`, `/api/v1/models/{id}` and
//! `/api/v1/model-versions/{id}`: the model registry's models and versions.

use super::{ApiJson, ApiPath, ApiQuery};
use app::kernel::context::Ctx;
use app::kernel::error::AppError;
use app::kernel::error::ssr::Problem;
use app::kernel::page::Page;
use app::kernel::state::AppState;
use app::registry::gate::Route;
use app::registry::search::{self, Scope};
use app::registry::types::{
    Alias, AliasChange, CardUpdate, Comparison, ImportGroup, Imported, Lineage, Model, ModelCard, ModelQuery,
    ModelUpdate, ModelVersion, ModelVersionUpdate, NewModel, NewModelVersion, PackageGroup, PackageSync, SetAlias,
    StatusChange, TargetChange, VersionSearch,
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
        .routes(routes!(search_versions))
        .routes(routes!(compare))
        .routes(routes!(get_version, update_version))
        .routes(routes!(set_status))
        .routes(routes!(lineage))
        .routes(routes!(get_card, set_card))
        .routes(routes!(download))
        .routes(routes!(list_aliases))
        .routes(routes!(resolve_alias, set_alias, delete_alias))
        .routes(routes!(resolve_alias_by_name))
        .routes(routes!(alias_history))
        .routes(routes!(alias_changes))
        .routes(routes!(version_changes))
        .routes(routes!(protect_alias))
        .routes(routes!(unprotect_alias))
        .routes(routes!(package_sync))
        .routes(routes!(package_groups))
        .routes(routes!(import_group))
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

/// The model's versions, newest first, or as `order_by` says; `filter`
/// narrows them as in the team-wide search (`GET /teams/{team}/model-versions`).
#[utoipa::path(get, path = "/models/{id}/versions", tag = "registry", params(("id" = Uuid, Path), VersionSearch),
    responses((status = 200, body = Page<ModelVersion>), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn list_versions(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<VersionSearch>,
) -> Result<Json<Page<ModelVersion>>, AppError> {
    Ok(Json(search::search(&ctx, Scope::Model(id), q).await?))
}

/// Searches the team's versions of every model. `filter` takes comparisons
/// of `metrics.<name>`, `params.<name>`, `tags.<key>`, `status`,
/// `created_at`, `number`, `model`, `source`, `artifact_uri` and `run_id`
/// (`= != < <= > >= like ilike`) joined by `and`, `or` and parentheses, e.g.
/// `metrics.auc > 0.9 and params.C = '1.0'`; a syntax error answers 400
/// naming the position and what was expected there. `order_by` is
/// `metrics.<name>`, `created_at` or `number`, then `asc` or `desc`
/// (versions without the metric come last).
#[utoipa::path(get, path = "/teams/{team}/model-versions", tag = "registry",
    params(("team" = String, Path, description = "Team slug"), VersionSearch),
    responses((status = 200, body = Page<ModelVersion>), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn search_versions(
    ctx: Ctx,
    ApiPath(team): ApiPath<String>,
    ApiQuery(q): ApiQuery<VersionSearch>,
) -> Result<Json<Page<ModelVersion>>, AppError> {
    Ok(Json(search::search(&ctx, Scope::Team(&team), q).await?))
}

/// 2 to 5 versions of the team's models side by side (`ids`, comma
/// separated): the best value of each metric, each version's training-job
/// metric series for overlaid charts, and each version's lineage.
#[utoipa::path(get, path = "/teams/{team}/model-versions/compare", tag = "registry",
    params(("team" = String, Path, description = "Team slug"), CompareQuery),
    responses((status = 200, body = Comparison), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn compare(
    ctx: Ctx,
    ApiPath(team): ApiPath<String>,
    ApiQuery(q): ApiQuery<CompareQuery>,
) -> Result<Json<Comparison>, AppError> {
    let ids = app::registry::compare::ids(&[q.ids])?;
    Ok(Json(app::registry::compare::compare(&ctx, &team, &ids).await?))
}

/// Which versions to compare.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct CompareQuery {
    /// 2 to 5 version ids, comma separated
    #[param(
        pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(,[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}){1,4}$"
    )]
    ids: String,
}

/// Registers the model's next version (members and up), either from a
/// completed training job of the team (`training_job_id`: its artifact,
/// image, entry point, hyperparameters, final metrics and input dataset
/// versions come with it) or from an artifact that exists in S3
/// (`artifact_uri` of a `model.tar.gz` or a folder, checked with HEAD or a
/// listing; `image`, `framework`, `parameters` and `metrics` given here).
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

/// Where the version came from: dataset versions → training job → version,
/// or artifact → version, as nodes (each with its page) and edges.
#[utoipa::path(get, path = "/model-versions/{id}/lineage", tag = "registry", params(("id" = Uuid, Path)),
    responses((status = 200, body = Lineage), (status = 404, body = Problem)))]
async fn lineage(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<Json<Lineage>, AppError> {
    Ok(Json(app::registry::lineage::of_version(&ctx, id).await?))
}

/// Where SageMaker's copy of the version stands (AWS mode): its Model
/// Package, the approval status SageMaker holds, and whether a change is
/// still on its way. 404 when nothing mirrors the version (local mode).
#[utoipa::path(get, path = "/model-versions/{id}/sagemaker", tag = "registry", params(("id" = Uuid, Path)),
    responses((status = 200, body = PackageSync), (status = 404, body = Problem)))]
async fn package_sync(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<Json<PackageSync>, AppError> {
    app::registry::packages::sync_state(&ctx, id)
        .await?
        .map(Json)
        .ok_or_else(|| AppError::NotFound("SageMaker model package of this version".into()))
}

/// The AWS account's Model Package Groups, each with the Capstan model that
/// mirrors it (team admins; AWS mode only: 409 in local mode).
#[utoipa::path(get, path = "/teams/{team}/sagemaker/model-package-groups", tag = "registry",
    params(("team" = String, Path, description = "Team slug")),
    responses((status = 200, body = Vec<PackageGroup>), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 502, body = Problem)))]
async fn package_groups(ctx: Ctx, ApiPath(team): ApiPath<String>) -> Result<Json<Vec<PackageGroup>>, AppError> {
    Ok(Json(app::registry::packages::groups(&ctx, &team).await?))
}

/// Imports a Model Package Group of the account as a new model of the team
/// (team admins; AWS mode only): one version per package whose artifact
/// the team may reach, with its approval status; the others are listed in
/// `skipped`.
#[utoipa::path(post, path = "/teams/{team}/models/import", tag = "registry",
    params(("team" = String, Path, description = "Team slug")), request_body = ImportGroup,
    responses((status = 201, body = Imported), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem), (status = 502, body = Problem)))]
async fn import_group(
    ctx: Ctx,
    ApiPath(team): ApiPath<String>,
    ApiJson(input): ApiJson<ImportGroup>,
) -> Result<(StatusCode, Json<Imported>), AppError> {
    Ok((StatusCode::CREATED, Json(app::registry::packages::import(&ctx, &team, input).await?)))
}

/// A version's model card: its markdown, the same rendered safely (no
/// script, no raw HTML, no remote images), and its signature.
#[utoipa::path(get, path = "/model-versions/{id}/card", tag = "registry", params(("id" = Uuid, Path)),
    responses((status = 200, body = ModelCard), (status = 404, body = Problem)))]
async fn get_card(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<Json<ModelCard>, AppError> {
    Ok(Json(app::registry::card::get(&ctx, id).await?))
}

/// Replaces a version's model card (markdown, at most 256 KiB) and signature
/// (members and up); audited.
#[utoipa::path(put, path = "/model-versions/{id}/card", tag = "registry", params(("id" = Uuid, Path)),
    request_body = CardUpdate,
    responses((status = 200, body = ModelCard), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 422, body = Problem)))]
async fn set_card(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<CardUpdate>,
) -> Result<Json<ModelCard>, AppError> {
    Ok(Json(app::registry::card::set(&ctx, id, input).await?))
}

/// Downloads a version's artifact: redirects to a link to the object that
/// works for an hour. A folder artifact has no single file: it answers 409
/// naming the folder, to copy with an S3 client.
#[utoipa::path(get, path = "/model-versions/{id}/download", tag = "registry", params(("id" = Uuid, Path)),
    responses((status = 303, description = "To a presigned link to the artifact"), (status = 404, body = Problem),
              (status = 409, body = Problem)))]
async fn download(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<axum::response::Redirect, AppError> {
    Ok(axum::response::Redirect::to(&versions::download_url(&ctx, id).await?))
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

/// The version an alias names, with the model named by its team and name
/// (what a serving script knows: `ml/churn@champion`).
#[utoipa::path(get, path = "/teams/{team}/models/{name}/aliases/{alias}", tag = "registry",
    params(("team" = String, Path, description = "Team slug"),
           ("name" = String, Path, pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"),
           ("alias" = String, Path, pattern = r"^[a-z][a-z0-9-]{0,39}$")),
    responses((status = 200, body = ModelVersion), (status = 404, body = Problem)))]
async fn resolve_alias_by_name(
    ctx: Ctx,
    ApiPath((team, name, alias)): ApiPath<(String, String, String)>,
) -> Result<Json<ModelVersion>, AppError> {
    Ok(Json(aliases::resolve_by_name(&ctx, &team, &name, &alias).await?))
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

/// Every change of an alias read from the team's audit log, newest first
/// (at most 200): sets, moves, deletes and protection, who made each, when
/// it was applied, and the change request (title, author, approvers) that
/// carried it.
#[utoipa::path(get, path = "/models/{id}/aliases/{alias}/changes", tag = "registry",
    params(("id" = Uuid, Path), ("alias" = String, Path, pattern = r"^[a-z][a-z0-9-]{0,39}$")),
    responses((status = 200, body = Vec<TargetChange>), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn alias_changes(
    ctx: Ctx,
    ApiPath((id, alias)): ApiPath<(Uuid, String)>,
) -> Result<Json<Vec<TargetChange>>, AppError> {
    Ok(Json(app::registry::history::of_alias(&ctx, id, &alias).await?))
}

/// Every change of a model version read from the team's audit log, newest
/// first (at most 200): its registration, edits, status decisions, and the
/// aliases that came to name it or left it, each with who, when, and the
/// change request that carried it.
#[utoipa::path(get, path = "/model-versions/{id}/changes", tag = "registry", params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<TargetChange>), (status = 404, body = Problem)))]
async fn version_changes(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<Json<Vec<TargetChange>>, AppError> {
    Ok(Json(app::registry::history::of_version(&ctx, id).await?))
}

/// Protects an alias (team admins): it is then moved or deleted only
/// through a change request.
#[utoipa::path(post, path = "/models/{id}/aliases/{alias}/protect", tag = "registry",
    params(("id" = Uuid, Path), ("alias" = String, Path, pattern = r"^[a-z][a-z0-9-]{0,39}$")),
    responses((status = 200, body = Alias), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn protect_alias(ctx: Ctx, ApiPath((id, alias)): ApiPath<(Uuid, String)>) -> Result<Json<Alias>, AppError> {
    Ok(Json(aliases::protect(&ctx, id, &alias, true, Route::Direct).await?))
}

/// Lifts an alias's protection (team admins).
#[utoipa::path(post, path = "/models/{id}/aliases/{alias}/unprotect", tag = "registry",
    params(("id" = Uuid, Path), ("alias" = String, Path, pattern = r"^[a-z][a-z0-9-]{0,39}$")),
    responses((status = 200, body = Alias), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn unprotect_alias(ctx: Ctx, ApiPath((id, alias)): ApiPath<(Uuid, String)>) -> Result<Json<Alias>, AppError> {
    Ok(Json(aliases::protect(&ctx, id, &alias, false, Route::Direct).await?))
}
