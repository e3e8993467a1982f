//! `/api/v1/teams/{team}/endpoints` and `/api/v1/endpoints/{id}`: a team's
//! endpoints, their variants and traffic weights. Invocations go through
//! the gateway (`server/src/gateway.rs`).

use super::{ApiJson, ApiPath, ApiQuery};
use app::endpoints::domain;
use app::endpoints::rollouts::Command;
use app::endpoints::types::{
    Bandit, BanditSettings, CreatedInvokeKey, Endpoint, EndpointEvent, EndpointMetrics, EndpointSpend, EndpointUpdate,
    Experiment, ExperimentQuery, ExperimentSettings, Fault, Health, HealthSettings, InvokeKey, MetricsQuery,
    NewEndpoint, NewInvokeKey, NewRollout, OutcomeBatch, Outcomes, OutcomesAccepted, Rollout, SampleTraffic,
    SampleTrafficStarted, Weights,
};
use app::kernel::context::Ctx;
use app::kernel::error::AppError;
use app::kernel::error::ssr::Problem;
use app::kernel::state::AppState;
use app::registry::gate::Route;
use axum::Json;
use http::StatusCode;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, delete))
        .routes(routes!(set_weights))
        .routes(routes!(set_fault))
        .routes(routes!(health, set_health))
        .routes(routes!(metrics))
        .routes(routes!(events))
        .routes(routes!(sample_traffic))
        .routes(routes!(spend))
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
        .routes(routes!(outcomes))
        .routes(routes!(experiment, set_experiment))
        .routes(routes!(bandit, set_bandit, stop_bandit))
        .routes(routes!(list_rollouts, start_rollout))
        .routes(routes!(get_rollout))
        .routes(routes!(promote_rollout))
        .routes(routes!(pause_rollout))
        .routes(routes!(resume_rollout))
        .routes(routes!(abort_rollout))
}

/// The team's endpoints (viewers), by name.
#[utoipa::path(get, path = "/teams/{team}/endpoints", tag = "endpoints",
    params(("team" = String, Path, description = "Team slug")),
    responses((status = 200, body = Vec<Endpoint>), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn list(ctx: Ctx, ApiPath(team): ApiPath<String>) -> Result<Json<Vec<Endpoint>>, AppError> {
    Ok(Json(domain::list(&ctx, &team).await?))
}

/// Creates an endpoint (members): 1-10 production variants, each a model
/// version of the team with a weight, and optionally a shadow variant. It
/// starts `Creating`; Capstan deploys it in the background. Where the
/// team's approval policy covers `endpoint.create`, this answers 409: open a
/// change request (`POST /teams/{team}/change-requests`) instead.
#[utoipa::path(post, path = "/teams/{team}/endpoints", tag = "endpoints",
    params(("team" = String, Path, description = "Team slug")), request_body = NewEndpoint,
    responses((status = 201, body = Endpoint), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create(
    ctx: Ctx,
    ApiPath(team): ApiPath<String>,
    ApiJson(input): ApiJson<NewEndpoint>,
) -> Result<(StatusCode, Json<Endpoint>), AppError> {
    Ok((StatusCode::CREATED, Json(domain::create(&ctx, &team, input, Route::Direct).await?)))
}

#[utoipa::path(get, path = "/endpoints/{id}", tag = "endpoints", params(("id" = Uuid, Path)),
    responses((status = 200, body = Endpoint), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_one(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<Json<Endpoint>, AppError> {
    Ok(Json(domain::get(&ctx, id).await?))
}

/// What the team's endpoints cost this month (viewers): in all, per
/// endpoint (deleted ones too) and per model version, with the month's
/// training beside it. Instance-hours × the price table; in local mode,
/// what the same endpoints would cost on SageMaker.
#[utoipa::path(get, path = "/teams/{team}/endpoint-spend", tag = "endpoints",
    params(("team" = String, Path, description = "Team slug")),
    responses((status = 200, body = EndpointSpend), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn spend(ctx: Ctx, ApiPath(team): ApiPath<String>) -> Result<Json<EndpointSpend>, AppError> {
    Ok(Json(app::endpoints::cost::month(&ctx, &team).await?))
}

/// Changes an endpoint (members): `variants` replaces the production
/// variants (a variant named as before keeps its processes unless its
/// version, instance type or count changes; new names are added; names left
/// out are removed), `shadow` sets or (with `null`) removes the shadow,
/// `capture_percent` the data capture. Fields left out stay as they are.
/// The endpoint is `Updating` until the new variants take traffic. Where
/// the team's approval policy covers `endpoint.update`: 409, open a change
/// request instead.
#[utoipa::path(patch, path = "/endpoints/{id}", tag = "endpoints", params(("id" = Uuid, Path)),
    request_body = EndpointUpdate,
    responses((status = 200, body = Endpoint), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn update(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<EndpointUpdate>,
) -> Result<Json<Endpoint>, AppError> {
    Ok(Json(domain::update(&ctx, id, input, Route::Direct).await?))
}

/// Deletes an endpoint (admins): it stops taking traffic at once; its
/// processes (or SageMaker resources) are removed in the background. Where
/// the team's approval policy covers `endpoint.delete`: 409, open a change
/// request instead.
#[utoipa::path(delete, path = "/endpoints/{id}", tag = "endpoints", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem)))]
async fn delete(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<StatusCode, AppError> {
    domain::delete(&ctx, id, Route::Direct).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets the weights of production variants (members); variants not named
/// keep theirs. The gateway routes by the new weights once this answers.
/// Where the team's approval policy covers `endpoint.weights`: 409, open a
/// change request instead.
#[utoipa::path(put, path = "/endpoints/{id}/weights", tag = "endpoints", params(("id" = Uuid, Path)),
    request_body = Weights,
    responses((status = 200, body = Endpoint), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn set_weights(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<Weights>,
) -> Result<Json<Endpoint>, AppError> {
    Ok(Json(domain::set_weights(&ctx, id, input, Route::Direct).await?))
}

/// Sends sample traffic (members): `rate` requests per second of `body`
/// for `seconds`, through the gateway's path as the caller, counted in the
/// endpoint's metrics like any other request. Answers at once; one stream
/// per endpoint at a time (409 while one runs).
#[utoipa::path(post, path = "/endpoints/{id}/sample-traffic", tag = "endpoints", params(("id" = Uuid, Path)),
    request_body = SampleTraffic,
    responses((status = 202, body = SampleTrafficStarted), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn sample_traffic(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<SampleTraffic>,
) -> Result<(StatusCode, Json<SampleTrafficStarted>), AppError> {
    Ok((StatusCode::ACCEPTED, Json(app::endpoints::sample::start(&ctx, id, input).await?)))
}

/// The endpoint's event timeline, newest first (viewers): created,
/// variants changed, weights changed, in service, failed, invoke keys,
/// sample traffic — who, when and what changed, from the audit log.
#[utoipa::path(get, path = "/endpoints/{id}/events", tag = "endpoints", params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<EndpointEvent>), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn events(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<Json<Vec<EndpointEvent>>, AppError> {
    Ok(Json(app::endpoints::events::list(&ctx, id).await?))
}

/// The endpoint's invoke keys, newest first (members; never the secrets).
#[utoipa::path(get, path = "/endpoints/{id}/invoke-keys", tag = "endpoints", params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<InvokeKey>), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn list_keys(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<Json<Vec<InvokeKey>>, AppError> {
    Ok(Json(app::endpoints::keys::list(&ctx, id).await?))
}

/// A key for invoking this endpoint with AWS Signature Version 4 (members):
/// configure the SDK with its id and secret, region any, and Capstan's URL
/// as the endpoint URL. The secret is in this answer only.
#[utoipa::path(post, path = "/endpoints/{id}/invoke-keys", tag = "endpoints", params(("id" = Uuid, Path)),
    request_body = NewInvokeKey,
    responses((status = 201, body = CreatedInvokeKey), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 422, body = Problem)))]
async fn create_key(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<NewInvokeKey>,
) -> Result<(StatusCode, Json<CreatedInvokeKey>), AppError> {
    Ok((StatusCode::CREATED, Json(app::endpoints::keys::create(&ctx, id, input).await?)))
}

/// Revokes a key (members): its signatures are refused at once.
#[utoipa::path(delete, path = "/endpoints/{id}/invoke-keys/{key}", tag = "endpoints",
    params(("id" = Uuid, Path), ("key" = String, Path, description = "The access key id", pattern = r"^AKCP[A-Z0-9]{16}$")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn revoke_key(ctx: Ctx, ApiPath((id, key)): ApiPath<(Uuid, String)>) -> Result<StatusCode, AppError> {
    app::endpoints::keys::revoke(&ctx, id, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The endpoint's traffic per variant (viewers): requests per second, error
/// rate, p50/p95/p99 latency and the shadow's agreement, one point per
/// `step` from `from` to `to` (default: the last hour by minute). In AWS
/// mode, minutes that CloudWatch has counted show its figures (every
/// invocation, also those sent to SageMaker Runtime directly).
#[utoipa::path(get, path = "/endpoints/{id}/metrics", tag = "endpoints", params(("id" = Uuid, Path), MetricsQuery),
    responses((status = 200, body = EndpointMetrics), (status = 400, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)))]
async fn metrics(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<MetricsQuery>,
) -> Result<Json<EndpointMetrics>, AppError> {
    // who may read it first: an outsider learns nothing from the window's errors
    app::endpoints::domain::get(&ctx, id).await?;
    let (from, to) = (rfc3339("from", q.from.as_deref())?, rfc3339("to", q.to.as_deref())?);
    Ok(Json(app::endpoints::metrics::series(&ctx, id, from, to, q.step).await?))
}

/// A time of the query string, if given.
fn rfc3339(field: &str, raw: Option<&str>) -> Result<Option<time::OffsetDateTime>, AppError> {
    raw.map(|r| {
        time::OffsetDateTime::parse(r, &time::format_description::well_known::Rfc3339).map_err(|_| {
            AppError::InvalidQuery(vec![app::kernel::error::FieldError::new(
                field,
                "Give an RFC 3339 time such as 2026-12-03T12:00:00Z.",
            )])
        })
    })
    .transpose()
}

/// Records outcomes of invocations (members): one, or a batch of up to
/// 1 000 (`{"outcomes": […]}`). Each names the invocation by the gateway's
/// `x-capstan-invocation-id` answer header (the variant comes from it), or
/// by an id of its own with the `variant` that served it. A second report
/// of the same request and metric is counted as a duplicate and changes
/// nothing. One refused outcome refuses the batch (nothing written).
#[utoipa::path(post, path = "/endpoints/{id}/outcomes", tag = "experiments", params(("id" = Uuid, Path)),
    request_body(content = OutcomeBatch, description = "A batch of 1 to 1 000 outcomes; one outcome alone (an `Outcome` object) is taken too."),
    responses((status = 200, body = OutcomesAccepted), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 422, body = Problem)))]
async fn outcomes(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<Outcomes>,
) -> Result<Json<OutcomesAccepted>, AppError> {
    Ok(Json(app::endpoints::outcomes::record(&ctx, id, input).await?))
}

/// The endpoint's experiment (viewers): per production variant its
/// invocations, units, rate or mean, and its lift over the baseline with an
/// always-valid interval (valid however often it is looked at), the
/// sample-ratio-mismatch check, and a verdict; over the window since the
/// split last changed, as it stood at `as_of`.
#[utoipa::path(get, path = "/endpoints/{id}/experiment", tag = "experiments",
    params(("id" = Uuid, Path), ExperimentQuery),
    responses((status = 200, body = Experiment), (status = 400, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)))]
async fn experiment(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<ExperimentQuery>,
) -> Result<Json<Experiment>, AppError> {
    let as_of = rfc3339("as_of", q.as_of.as_deref())?;
    Ok(Json(app::endpoints::experiment::get(&ctx, id, as_of).await?))
}

/// Starts or changes the endpoint's experiment (members): the metric that
/// decides, how it is read, which way is better, the baseline, α.
#[utoipa::path(put, path = "/endpoints/{id}/experiment", tag = "experiments", params(("id" = Uuid, Path)),
    request_body = ExperimentSettings,
    responses((status = 200, body = Experiment), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 422, body = Problem)))]
async fn set_experiment(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<ExperimentSettings>,
) -> Result<Json<Experiment>, AppError> {
    Ok(Json(app::endpoints::experiment::set(&ctx, id, input).await?))
}

/// Fault injection (members), a switch for demos and staging: the gateway
/// answers `error_percent` % of the invocations routed to `variant` with a
/// model error (424 `ModelError`, the model's status 500) instead of calling
/// it, counted as the model's error, so a rollout's guardrails can be seen
/// to roll a candidate back; 0 ends it. 409 where the team's approval policy
/// covers `endpoint.update` or `endpoint.weights`.
#[utoipa::path(put, path = "/endpoints/{id}/faults", tag = "endpoints", params(("id" = Uuid, Path)),
    request_body = Fault,
    responses((status = 200, body = Endpoint), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn set_fault(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<Fault>,
) -> Result<Json<Endpoint>, AppError> {
    Ok(Json(app::endpoints::faults::set(&ctx, id, input).await?))
}

/// The endpoint's health score (viewers): a composite 0-100 of its error
/// rate (weight 40), its p99 latency against its SLO (30), the drift of its
/// captured requests from its model's training data (20, population
/// stability index) and its healthy capacity (10) over the last 15 minutes,
/// each part with its figure; and the score recorded each minute of the
/// last day.
#[utoipa::path(get, path = "/endpoints/{id}/health", tag = "endpoints", params(("id" = Uuid, Path)),
    responses((status = 200, body = Health), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn health(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<Json<Health>, AppError> {
    Ok(Json(app::endpoints::health::get(&ctx, id).await?))
}

/// Sets what the health score is judged against (members): the latency
/// SLO, the threshold below which the endpoint alerts (`endpoint.health_low`,
/// to the team's webhooks), and whether it then rolls back its last rollout.
#[utoipa::path(put, path = "/endpoints/{id}/health", tag = "endpoints", params(("id" = Uuid, Path)),
    request_body = HealthSettings,
    responses((status = 200, body = Health), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 422, body = Problem)))]
async fn set_health(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<HealthSettings>,
) -> Result<Json<Health>, AppError> {
    Ok(Json(app::endpoints::health::set(&ctx, id, input).await?))
}

/// The endpoint's bandit allocation (viewers): its settings, the change
/// request it runs under, and its last runs (per variant: units, mean,
/// chance of being best, share given).
#[utoipa::path(get, path = "/endpoints/{id}/bandit", tag = "experiments", params(("id" = Uuid, Path)),
    responses((status = 200, body = Bandit), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn bandit(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<Json<Bandit>, AppError> {
    Ok(Json(app::endpoints::bandit::get(&ctx, id).await?))
}

/// Turns on (or changes) bandit allocation (members): every
/// `interval_seconds` the production weights are set by Thompson sampling
/// on the metric's outcomes since it started (Beta-Bernoulli for a binary
/// metric, Normal for a real one), each variant kept between `min_share`
/// and `max_share`; each change audited as `endpoint.weights_changed` by
/// `capstan (bandit)`. 409 while a rollout is under way, on an endpoint
/// with one production variant, or where the team's approval policy covers
/// `endpoint.bandit` or `endpoint.weights` (open a change request of kind
/// `endpoint.bandit`). While it runs, rollouts and direct weight changes
/// are refused.
#[utoipa::path(put, path = "/endpoints/{id}/bandit", tag = "experiments", params(("id" = Uuid, Path)),
    request_body = BanditSettings,
    responses((status = 200, body = Bandit), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn set_bandit(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<BanditSettings>,
) -> Result<Json<Bandit>, AppError> {
    Ok(Json(app::endpoints::bandit::set(&ctx, id, input, Route::Direct).await?))
}

/// Stops the bandit (members; no approval needed): the weights stay as they are.
#[utoipa::path(delete, path = "/endpoints/{id}/bandit", tag = "experiments", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn stop_bandit(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<StatusCode, AppError> {
    app::endpoints::bandit::stop(&ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts a rollout (members): the traffic of `baseline` moves to
/// `candidate` by `strategy`, each step watched by the guardrails; a failed
/// guardrail sends it back to the baseline. Give `candidate_version_id` to
/// add the candidate (weight 0, the baseline's instances) first. 409 while
/// another rollout of the endpoint is under way, or where the team's
/// approval policy covers `endpoint.weights`.
#[utoipa::path(post, path = "/endpoints/{id}/rollouts", tag = "rollouts", params(("id" = Uuid, Path)),
    request_body = NewRollout,
    responses((status = 201, body = Rollout), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn start_rollout(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<NewRollout>,
) -> Result<(StatusCode, Json<Rollout>), AppError> {
    Ok((StatusCode::CREATED, Json(app::endpoints::rollouts::start(&ctx, id, input, Route::Direct).await?)))
}

/// The endpoint's rollouts, newest first (viewers; the last 50).
#[utoipa::path(get, path = "/endpoints/{id}/rollouts", tag = "rollouts", params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<Rollout>), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn list_rollouts(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<Json<Vec<Rollout>>, AppError> {
    Ok(Json(app::endpoints::rollouts::list(&ctx, id).await?))
}

/// A rollout: its steps (who took each, the guardrails' figures, passed or
/// failed), the steps planned, and why it rolled back (viewers).
#[utoipa::path(get, path = "/rollouts/{id}", tag = "rollouts", params(("id" = Uuid, Path)),
    responses((status = 200, body = Rollout), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_rollout(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<Json<Rollout>, AppError> {
    Ok(Json(app::endpoints::rollouts::get(&ctx, id).await?))
}

/// Takes the next step now (members): a manual rollout's way on; for the
/// others it skips the rest of the wait.
#[utoipa::path(post, path = "/rollouts/{id}/promote", tag = "rollouts", params(("id" = Uuid, Path)),
    responses((status = 200, body = Rollout), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem)))]
async fn promote_rollout(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<Json<Rollout>, AppError> {
    Ok(Json(app::endpoints::rollouts::command(&ctx, id, Command::Promote).await?))
}

/// Takes no further steps until resumed (members); the guardrails still
/// watch, and roll back on a breach.
#[utoipa::path(post, path = "/rollouts/{id}/pause", tag = "rollouts", params(("id" = Uuid, Path)),
    responses((status = 200, body = Rollout), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem)))]
async fn pause_rollout(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<Json<Rollout>, AppError> {
    Ok(Json(app::endpoints::rollouts::command(&ctx, id, Command::Pause).await?))
}

/// Goes on with a paused rollout (members).
#[utoipa::path(post, path = "/rollouts/{id}/resume", tag = "rollouts", params(("id" = Uuid, Path)),
    responses((status = 200, body = Rollout), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem)))]
async fn resume_rollout(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<Json<Rollout>, AppError> {
    Ok(Json(app::endpoints::rollouts::command(&ctx, id, Command::Resume).await?))
}

/// Sends the traffic back to the baseline and ends the rollout (members;
/// needs no approval).
#[utoipa::path(post, path = "/rollouts/{id}/abort", tag = "rollouts", params(("id" = Uuid, Path)),
    responses((status = 200, body = Rollout), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem)))]
async fn abort_rollout(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<Json<Rollout>, AppError> {
    Ok(Json(app::endpoints::rollouts::command(&ctx, id, Command::Abort).await?))
}
