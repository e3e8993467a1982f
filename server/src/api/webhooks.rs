//! `/api/v1/teams/{team}/webhooks`, `/api/v1/webhooks/{id}` and
//! `/api/v1/webhook-deliveries/{id}/redeliver`: a team's webhook endpoints
//! and their delivery logs (team admins).

use super::{ApiJson, ApiPath, ApiQuery};
use app::kernel::context::Ctx;
use app::kernel::error::AppError;
use app::kernel::error::ssr::Problem;
use app::kernel::page::Page;
use app::kernel::state::AppState;
use app::webhooks::domain;
use app::webhooks::types::{CreatedWebhook, Delivery, NewWebhook, Webhook, WebhookUpdate};
use axum::Json;
use http::StatusCode;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, delete))
        .routes(routes!(deliveries))
        .routes(routes!(redeliver))
}

/// The team's webhook endpoints.
#[utoipa::path(get, path = "/teams/{team}/webhooks", tag = "webhooks",
    params(("team" = String, Path, description = "Team slug")),
    responses((status = 200, body = Vec<Webhook>), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn list(ctx: Ctx, ApiPath(team): ApiPath<String>) -> Result<Json<Vec<Webhook>>, AppError> {
    Ok(Json(domain::list(&ctx, &team).await?))
}

/// Adds an endpoint. The answer holds its `whsec_…` signing secret: the
/// only time it is shown.
#[utoipa::path(post, path = "/teams/{team}/webhooks", tag = "webhooks",
    params(("team" = String, Path, description = "Team slug")), request_body = NewWebhook,
    responses((status = 201, body = CreatedWebhook), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 422, body = Problem)))]
async fn create(
    ctx: Ctx,
    ApiPath(team): ApiPath<String>,
    ApiJson(input): ApiJson<NewWebhook>,
) -> Result<(StatusCode, Json<CreatedWebhook>), AppError> {
    Ok((StatusCode::CREATED, Json(domain::create(&ctx, &team, input).await?)))
}

#[utoipa::path(get, path = "/webhooks/{id}", tag = "webhooks", params(("id" = Uuid, Path)),
    responses((status = 200, body = Webhook), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_one(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<Json<Webhook>, AppError> {
    Ok(Json(domain::get(&ctx, id).await?))
}

/// Changes an endpoint; `active: true` re-enables one Capstan disabled.
#[utoipa::path(patch, path = "/webhooks/{id}", tag = "webhooks", params(("id" = Uuid, Path)),
    request_body = WebhookUpdate,
    responses((status = 200, body = Webhook), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 422, body = Problem)))]
async fn update(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<WebhookUpdate>,
) -> Result<Json<Webhook>, AppError> {
    Ok(Json(domain::update(&ctx, id, input).await?))
}

#[utoipa::path(delete, path = "/webhooks/{id}", tag = "webhooks", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn delete(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<StatusCode, AppError> {
    domain::delete(&ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The endpoint's deliveries, newest first, each with its latest attempt
/// (status code, latency, the start of the answer).
#[utoipa::path(get, path = "/webhooks/{id}/deliveries", tag = "webhooks", params(("id" = Uuid, Path), super::PageParams),
    responses((status = 200, body = Page<Delivery>), (status = 400, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)))]
async fn deliveries(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<super::PageParams>,
) -> Result<Json<Page<Delivery>>, AppError> {
    Ok(Json(domain::deliveries(&ctx, id, q.cursor.as_deref(), q.limit).await?))
}

/// Sends a delivery again now, with the same `webhook-id`.
#[utoipa::path(post, path = "/webhook-deliveries/{id}/redeliver", tag = "webhooks", params(("id" = Uuid, Path)),
    responses((status = 200, body = Delivery), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn redeliver(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<Json<Delivery>, AppError> {
    Ok(Json(domain::redeliver(&ctx, id).await?))
}
