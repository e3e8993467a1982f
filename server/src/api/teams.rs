//! `/api/v1/teams`: list, create, get and update teams.

use super::{ApiJson, ApiPath, ApiQuery, PageParams};
use app::kernel::context::Ctx;
use app::kernel::error::AppError;
use app::kernel::error::ssr::Problem;
use app::kernel::page::Page;
use app::kernel::state::AppState;
use app::teams::domain;
use app::teams::types::{NewTeam, Team, TeamUpdate};
use axum::Json;
use http::StatusCode;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(get_one, update))
}

/// Teams the caller belongs to (site admins: all teams), by slug.
#[utoipa::path(get, path = "/teams", tag = "teams", params(PageParams),
    responses((status = 200, body = Page<Team>), (status = 400, body = Problem), (status = 401, body = Problem)))]
async fn list(ctx: Ctx, ApiQuery(p): ApiQuery<PageParams>) -> Result<Json<Page<Team>>, AppError> {
    Ok(Json(domain::list(&ctx, p.cursor.as_deref(), p.limit).await?))
}

/// Creates a team; the caller becomes its admin.
#[utoipa::path(post, path = "/teams", tag = "teams", request_body = NewTeam,
    responses((status = 201, body = Team), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create(ctx: Ctx, ApiJson(input): ApiJson<NewTeam>) -> Result<(StatusCode, Json<Team>), AppError> {
    Ok((StatusCode::CREATED, Json(domain::create(&ctx, input).await?)))
}

/// One team, by slug.
#[utoipa::path(get, path = "/teams/{team}", tag = "teams", params(("team" = String, Path, description = "Team slug")),
    responses((status = 200, body = Team), (status = 404, body = Problem)))]
async fn get_one(ctx: Ctx, ApiPath(team): ApiPath<String>) -> Result<Json<Team>, AppError> {
    Ok(Json(domain::get(&ctx, &team).await?))
}

/// Changes a team's display name and/or the IAM role its SageMaker jobs run
/// as (an empty `sagemaker_role_arn` clears the override); team admins.
#[utoipa::path(patch, path = "/teams/{team}", tag = "teams", params(("team" = String, Path, description = "Team slug")),
    request_body = TeamUpdate,
    responses((status = 200, body = Team), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update(
    ctx: Ctx,
    ApiPath(team): ApiPath<String>,
    ApiJson(input): ApiJson<TeamUpdate>,
) -> Result<Json<Team>, AppError> {
    Ok(Json(domain::update(&ctx, &team, input).await?))
}
