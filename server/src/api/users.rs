//! `/api/v1/users`: accounts on this site (site admins only).

use super::{ApiJson, ApiPath, ApiQuery, PageParams};
use app::accounts::types::{NewUserRequest, User, UserUpdate};
use app::accounts::users;
use app::kernel::context::Ctx;
use app::kernel::error::AppError;
use app::kernel::error::ssr::Problem;
use app::kernel::page::Page;
use app::kernel::state::AppState;
use axum::Json;
use http::StatusCode;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(update))
}

/// All accounts, by email (site admins).
#[utoipa::path(get, path = "/users", tag = "users", params(PageParams),
    responses((status = 200, body = Page<User>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn list(ctx: Ctx, ApiQuery(p): ApiQuery<PageParams>) -> Result<Json<Page<User>>, AppError> {
    Ok(Json(users::list(&ctx, p.cursor.as_deref(), p.limit).await?))
}

/// Creates an account (site admins). Team admins can then add it to teams.
#[utoipa::path(post, path = "/users", tag = "users", request_body = NewUserRequest,
    responses((status = 201, body = User), (status = 403, body = Problem), (status = 409, body = Problem),
              (status = 422, body = Problem)))]
async fn create(ctx: Ctx, ApiJson(input): ApiJson<NewUserRequest>) -> Result<(StatusCode, Json<User>), AppError> {
    Ok((StatusCode::CREATED, Json(users::create(&ctx, input).await?)))
}

/// Disables or enables an account (site admins; not their own). A disabled
/// account cannot sign in, and its sessions and tokens stop working at once.
#[utoipa::path(patch, path = "/users/{id}", tag = "users", params(("id" = uuid::Uuid, Path)), request_body = UserUpdate,
    responses((status = 200, body = User), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update(
    ctx: Ctx,
    ApiPath(id): ApiPath<uuid::Uuid>,
    ApiJson(input): ApiJson<UserUpdate>,
) -> Result<Json<User>, AppError> {
    Ok(Json(users::update(&ctx, id, input).await?))
}
