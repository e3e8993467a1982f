//! `/api/v1/teams/{team}/members`: who is in a team, with which role.

use super::{ApiJson, ApiPath, ApiQuery, PageParams};
use app::kernel::context::Ctx;
use app::kernel::error::AppError;
use app::kernel::error::ssr::Problem;
use app::kernel::page::Page;
use app::kernel::state::AppState;
use app::teams::domain;
use app::teams::types::{Member, NewMember, RoleChange};
use axum::Json;
use http::StatusCode;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, add)).routes(routes!(change_role, remove))
}

/// Members of a team, by email.
#[utoipa::path(get, path = "/teams/{team}/members", tag = "teams",
    params(("team" = String, Path, description = "Team slug"), PageParams),
    responses((status = 200, body = Page<Member>), (status = 404, body = Problem)))]
async fn list(
    ctx: Ctx,
    ApiPath(team): ApiPath<String>,
    ApiQuery(p): ApiQuery<PageParams>,
) -> Result<Json<Page<Member>>, AppError> {
    Ok(Json(domain::list_members(&ctx, &team, p.cursor.as_deref(), p.limit).await?))
}

/// Adds an existing user to the team (team admins).
#[utoipa::path(post, path = "/teams/{team}/members", tag = "teams",
    params(("team" = String, Path, description = "Team slug")), request_body = NewMember,
    responses((status = 201, body = Member), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn add(
    ctx: Ctx,
    ApiPath(team): ApiPath<String>,
    ApiJson(input): ApiJson<NewMember>,
) -> Result<(StatusCode, Json<Member>), AppError> {
    Ok((StatusCode::CREATED, Json(domain::add_member(&ctx, &team, input).await?)))
}

/// Changes a member's role (team admins). The last admin cannot be demoted.
#[utoipa::path(patch, path = "/teams/{team}/members/{user_id}", tag = "teams",
    params(("team" = String, Path, description = "Team slug"), ("user_id" = Uuid, Path)), request_body = RoleChange,
    responses((status = 200, body = Member), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn change_role(
    ctx: Ctx,
    ApiPath((team, user_id)): ApiPath<(String, Uuid)>,
    ApiJson(input): ApiJson<RoleChange>,
) -> Result<Json<Member>, AppError> {
    Ok(Json(domain::change_role(&ctx, &team, user_id, input).await?))
}

/// Removes a member (team admins). The last admin cannot be removed.
#[utoipa::path(delete, path = "/teams/{team}/members/{user_id}", tag = "teams",
    params(("team" = String, Path, description = "Team slug"), ("user_id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn remove(ctx: Ctx, ApiPath((team, user_id)): ApiPath<(String, Uuid)>) -> Result<StatusCode, AppError> {
    domain::remove_member(&ctx, &team, user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
