//! `/api/v1/teams/{team}/datasets` and `/api/v1/datasets/{id}`: register,
//! find, edit and archive datasets.

use super::{ApiJson, ApiPath, ApiQuery};
use app::datasets::domain;
use app::datasets::types::{Dataset, DatasetQuery, DatasetUpdate, NewDataset};
use app::kernel::context::Ctx;
use app::kernel::error::AppError;
use app::kernel::error::ssr::Problem;
use app::kernel::page::Page;
use app::kernel::state::AppState;
use axum::Json;
use http::StatusCode;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(get_one, update)).routes(routes!(archive))
}

/// The team's datasets by name; archived ones only with `archived=true`.
#[utoipa::path(get, path = "/teams/{team}/datasets", tag = "datasets",
    params(("team" = String, Path, description = "Team slug"), DatasetQuery),
    responses((status = 200, body = Page<Dataset>), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn list(
    ctx: Ctx,
    ApiPath(team): ApiPath<String>,
    ApiQuery(q): ApiQuery<DatasetQuery>,
) -> Result<Json<Page<Dataset>>, AppError> {
    Ok(Json(domain::list(&ctx, &team, q).await?))
}

/// Registers a dataset (members and up).
#[utoipa::path(post, path = "/teams/{team}/datasets", tag = "datasets",
    params(("team" = String, Path, description = "Team slug")), request_body = NewDataset,
    responses((status = 201, body = Dataset), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create(
    ctx: Ctx,
    ApiPath(team): ApiPath<String>,
    ApiJson(input): ApiJson<NewDataset>,
) -> Result<(StatusCode, Json<Dataset>), AppError> {
    Ok((StatusCode::CREATED, Json(domain::create(&ctx, &team, input).await?)))
}

/// One dataset, archived or not.
#[utoipa::path(get, path = "/datasets/{id}", tag = "datasets", params(("id" = Uuid, Path)),
    responses((status = 200, body = Dataset), (status = 404, body = Problem)))]
async fn get_one(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<Json<Dataset>, AppError> {
    Ok(Json(domain::get(&ctx, id).await?))
}

/// Changes the description or tags (members and up).
#[utoipa::path(patch, path = "/datasets/{id}", tag = "datasets", params(("id" = Uuid, Path)), request_body = DatasetUpdate,
    responses((status = 200, body = Dataset), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 422, body = Problem)))]
async fn update(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<DatasetUpdate>,
) -> Result<Json<Dataset>, AppError> {
    Ok(Json(domain::update(&ctx, id, input).await?))
}

/// Archives a dataset (team admins): hidden from lists, still resolvable.
#[utoipa::path(post, path = "/datasets/{id}/archive", tag = "datasets", params(("id" = Uuid, Path)),
    responses((status = 200, body = Dataset), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn archive(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<Json<Dataset>, AppError> {
    Ok(Json(domain::archive(&ctx, id).await?))
}
