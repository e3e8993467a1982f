//! `/api/v1/tokens`: the caller's own API tokens.

use super::{ApiJson, ApiPath, ApiQuery, PageParams};
use app::kernel::context::Ctx;
use app::kernel::error::AppError;
use app::kernel::error::ssr::Problem;
use app::kernel::page::Page;
use app::kernel::state::AppState;
use app::tokens::domain;
use app::tokens::types::{ApiToken, CreatedToken, NewToken};
use axum::Json;
use http::StatusCode;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(revoke))
}

/// Your tokens, newest first. Secrets are never listed.
#[utoipa::path(get, path = "/tokens", tag = "tokens", params(PageParams),
    responses((status = 200, body = Page<ApiToken>), (status = 401, body = Problem)))]
async fn list(ctx: Ctx, ApiQuery(p): ApiQuery<PageParams>) -> Result<Json<Page<ApiToken>>, AppError> {
    Ok(Json(domain::list(&ctx, p.cursor.as_deref(), p.limit).await?))
}

/// Creates a token; the response holds its secret, shown this once.
#[utoipa::path(post, path = "/tokens", tag = "tokens", request_body = NewToken,
    responses((status = 201, body = CreatedToken), (status = 422, body = Problem)))]
async fn create(ctx: Ctx, ApiJson(input): ApiJson<NewToken>) -> Result<(StatusCode, Json<CreatedToken>), AppError> {
    let expires_at = domain::parse_expiry(input.expires_at.as_deref())?;
    Ok((StatusCode::CREATED, Json(domain::create(&ctx, &input.name, expires_at).await?)))
}

/// Revokes one of your tokens; it stops working at once.
#[utoipa::path(delete, path = "/tokens/{token_id}", tag = "tokens", params(("token_id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
async fn revoke(ctx: Ctx, ApiPath(token_id): ApiPath<Uuid>) -> Result<StatusCode, AppError> {
    domain::revoke(&ctx, token_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
