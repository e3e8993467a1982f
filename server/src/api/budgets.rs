//! `/api/v1/teams/{team}/budget`: a team's monthly budget over training and
//! endpoints, and where the month stands.

use super::{ApiJson, ApiPath};
use app::budgets::types::{BudgetInput, BudgetStatus};
use app::kernel::context::Ctx;
use app::kernel::error::AppError;
use app::kernel::error::ssr::Problem;
use app::kernel::state::AppState;
use axum::Json;
use http::StatusCode;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_budget, put_budget, delete_budget))
}

/// The team's budget (if any) and this month's spend on training and
/// endpoints against it (viewers). `level` is `alert` past the alert
/// percentage and `exceeded` past 100 %.
#[utoipa::path(get, path = "/teams/{team}/budget", tag = "budgets",
    params(("team" = String, Path, description = "Team slug")),
    responses((status = 200, body = BudgetStatus), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_budget(ctx: Ctx, ApiPath(team): ApiPath<String>) -> Result<Json<BudgetStatus>, AppError> {
    Ok(Json(app::budgets::domain::status(&ctx, &team).await?))
}

/// Sets the team's monthly budget (admins). Crossing `alert_percent` of it,
/// then 100 %, raises the event `budget.crossed` once a month each (webhooks
/// deliver it) and a banner on the team's pages. A new budget's alerts start
/// afresh.
#[utoipa::path(put, path = "/teams/{team}/budget", tag = "budgets",
    params(("team" = String, Path, description = "Team slug")), request_body = BudgetInput,
    responses((status = 200, body = BudgetStatus), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 422, body = Problem)))]
async fn put_budget(
    ctx: Ctx,
    ApiPath(team): ApiPath<String>,
    ApiJson(input): ApiJson<BudgetInput>,
) -> Result<Json<BudgetStatus>, AppError> {
    Ok(Json(app::budgets::domain::set(&ctx, &team, input).await?))
}

/// Removes the team's budget (admins).
#[utoipa::path(delete, path = "/teams/{team}/budget", tag = "budgets",
    params(("team" = String, Path, description = "Team slug")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn delete_budget(ctx: Ctx, ApiPath(team): ApiPath<String>) -> Result<StatusCode, AppError> {
    app::budgets::domain::remove(&ctx, &team).await?;
    Ok(StatusCode::NO_CONTENT)
}
