//! `/api/v1/teams/{team}/approval-policies`, `/api/v1/teams/{team}/change-requests`
//! and `/api/v1/change-requests/{id}`: change requests and the policies that
//! ask for them.

use super::{ApiJson, ApiPath, ApiQuery};
use app::approvals::types::{ChangeRequest, Decision, NewRequest, Policies, RequestEdit, RequestQuery, RequestSummary};
use app::approvals::{policies, requests};
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
    OpenApiRouter::new()
        .routes(routes!(get_policies, put_policies))
        .routes(routes!(list, create))
        .routes(routes!(get_one, edit))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(withdraw))
}

/// The team's approval policies: which kinds of change need a change
/// request, and whose approval (readers of the team).
#[utoipa::path(get, path = "/teams/{team}/approval-policies", tag = "approvals",
    params(("team" = String, Path, description = "Team slug")),
    responses((status = 200, body = Policies), (status = 404, body = Problem)))]
async fn get_policies(ctx: Ctx, ApiPath(team): ApiPath<String>) -> Result<Json<Policies>, AppError> {
    Ok(Json(policies::get(&ctx, &team).await?))
}

/// Replaces the team's approval policies (team admins). A kind without a
/// policy applies directly, except on a protected alias (1 approver). An
/// endpoint kind (`endpoint.create`, `endpoint.update`, `endpoint.delete`,
/// `endpoint.weights`) covers every endpoint of the team: no `model_id`.
#[utoipa::path(put, path = "/teams/{team}/approval-policies", tag = "approvals",
    params(("team" = String, Path, description = "Team slug")), request_body = Policies,
    responses((status = 200, body = Policies), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 422, body = Problem)))]
async fn put_policies(
    ctx: Ctx,
    ApiPath(team): ApiPath<String>,
    ApiJson(input): ApiJson<Policies>,
) -> Result<Json<Policies>, AppError> {
    Ok(Json(policies::put(&ctx, &team, input).await?))
}

/// The team's change requests, newest first; `needs_my_review` keeps the
/// open ones the caller may still decide on.
#[utoipa::path(get, path = "/teams/{team}/change-requests", tag = "approvals",
    params(("team" = String, Path, description = "Team slug"), RequestQuery),
    responses((status = 200, body = Page<RequestSummary>), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn list(
    ctx: Ctx,
    ApiPath(team): ApiPath<String>,
    ApiQuery(q): ApiQuery<RequestQuery>,
) -> Result<Json<Page<RequestSummary>>, AppError> {
    Ok(Json(requests::list(&ctx, &team, q).await?))
}

/// Proposes a change (members and up): its target must be the team's, and
/// it must change something. The rule it must meet is the team's policy
/// when proposed.
#[utoipa::path(post, path = "/teams/{team}/change-requests", tag = "approvals",
    params(("team" = String, Path, description = "Team slug")), request_body = NewRequest,
    responses((status = 201, body = ChangeRequest), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 422, body = Problem)))]
async fn create(
    ctx: Ctx,
    ApiPath(team): ApiPath<String>,
    ApiJson(input): ApiJson<NewRequest>,
) -> Result<(StatusCode, Json<ChangeRequest>), AppError> {
    Ok((StatusCode::CREATED, Json(requests::create(&ctx, &team, input).await?)))
}

/// One request with its diff, rule, reviews and timeline.
#[utoipa::path(get, path = "/change-requests/{id}", tag = "approvals", params(("id" = Uuid, Path)),
    responses((status = 200, body = ChangeRequest), (status = 404, body = Problem)))]
async fn get_one(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<Json<ChangeRequest>, AppError> {
    Ok(Json(requests::get(&ctx, id).await?))
}

/// Edits an open request (its author); approvals given so far stop counting.
#[utoipa::path(patch, path = "/change-requests/{id}", tag = "approvals", params(("id" = Uuid, Path)),
    request_body = RequestEdit,
    responses((status = 200, body = ChangeRequest), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn edit(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<RequestEdit>,
) -> Result<Json<ChangeRequest>, AppError> {
    Ok(Json(requests::edit(&ctx, id, input).await?))
}

/// Approves (an eligible reviewer other than the author; twice counts
/// once). The approval that reaches the quorum queues the change, which
/// Capstan applies exactly once.
#[utoipa::path(post, path = "/change-requests/{id}/approve", tag = "approvals", params(("id" = Uuid, Path)),
    request_body = Decision,
    responses((status = 200, body = ChangeRequest), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn approve(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<Decision>,
) -> Result<Json<ChangeRequest>, AppError> {
    Ok(Json(requests::approve(&ctx, id, input).await?))
}

/// Rejects (an eligible reviewer other than the author): final.
#[utoipa::path(post, path = "/change-requests/{id}/reject", tag = "approvals", params(("id" = Uuid, Path)),
    request_body = Decision,
    responses((status = 200, body = ChangeRequest), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn reject(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<Decision>,
) -> Result<Json<ChangeRequest>, AppError> {
    Ok(Json(requests::reject(&ctx, id, input).await?))
}

/// Withdraws an open request (its author, or a team admin).
#[utoipa::path(post, path = "/change-requests/{id}/withdraw", tag = "approvals", params(("id" = Uuid, Path)),
    request_body = Decision,
    responses((status = 200, body = ChangeRequest), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn withdraw(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<Decision>,
) -> Result<Json<ChangeRequest>, AppError> {
    Ok(Json(requests::withdraw(&ctx, id, input).await?))
}
