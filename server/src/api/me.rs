//! `GET /api/v1/me`: who the caller is.

use app::accounts::types::Me;
use app::kernel::context::Ctx;
use app::kernel::error::AppError;
use app::kernel::state::AppState;
use axum::Json;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_me))
}

/// The authenticated user.
#[utoipa::path(get, path = "/me", tag = "me",
    responses((status = 200, body = Me), (status = 401, body = app::kernel::error::ssr::Problem)))]
async fn get_me(ctx: Ctx) -> Result<Json<Me>, AppError> {
    Ok(Json(app::accounts::domain::me(ctx.actor()?)))
}
