//! Server functions of endpoints.
// a form's server function takes its fields one by one (the new-rollout form has nine)
#![allow(clippy::too_many_arguments)]

use crate::endpoints::types::{DeployChoices, Endpoint, Experiment, NewEndpoint, TestInvocation, VariantRow, Weights};
use crate::kernel::error::AppError;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use uuid::Uuid;

#[server(prefix = "/rpc", endpoint = "list_endpoints", output = crate::kernel::codec::Json)]
pub async fn list_endpoints(team: String) -> Result<Vec<Endpoint>, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::endpoints::domain::list(&ctx, &team).await)
}

#[server(prefix = "/rpc", endpoint = "get_endpoint", output = crate::kernel::codec::Json)]
pub async fn get_endpoint(id: Uuid) -> Result<Endpoint, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::endpoints::domain::get(&ctx, id).await)
}

#[server(prefix = "/rpc", endpoint = "create_endpoint", input = Json, output = crate::kernel::codec::Json)]
pub async fn create_endpoint(team: String, endpoint: NewEndpoint) -> Result<Endpoint, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(
        crate::endpoints::domain::create(&ctx, &team, endpoint, crate::registry::gate::Route::Direct).await,
    )
}

#[server(prefix = "/rpc", endpoint = "endpoint_options", output = crate::kernel::codec::Json)]
pub async fn endpoint_options(team: String) -> Result<DeployChoices, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::endpoints::domain::options(&ctx, &team).await)
}

/// The new-endpoint form: up to three production rows and a shadow row;
/// on success, on to the endpoint's page.
#[server(prefix = "/rpc", endpoint = "create_endpoint_form", output = crate::kernel::codec::Json)]
pub async fn create_endpoint_form(
    team: String,
    name: String,
    variants: Vec<VariantRow>,
    shadow: Option<VariantRow>,
) -> Result<Endpoint, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let done = async {
        let input = crate::endpoints::domain::from_form(name, variants, shadow)?;
        crate::endpoints::domain::create(&ctx, &team, input, crate::registry::gate::Route::Direct).await
    }
    .await;
    if let Ok(e) = &done {
        leptos_axum::redirect(&format!("/teams/{}/endpoints/{}", e.team, e.id));
    }
    crate::kernel::context::finish(done)
}

/// The weights editor: one weight per production variant, by name.
#[server(prefix = "/rpc", endpoint = "set_endpoint_weights_form", output = crate::kernel::codec::Json)]
pub async fn set_endpoint_weights_form(
    id: Uuid,
    variant: Vec<String>,
    weight: Vec<String>,
) -> Result<Endpoint, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let done = async {
        let weights = crate::endpoints::domain::weights_from_form(variant, weight)?;
        crate::endpoints::domain::set_weights(&ctx, id, weights, crate::registry::gate::Route::Direct).await
    }
    .await;
    crate::kernel::context::finish(done)
}

#[server(prefix = "/rpc", endpoint = "set_endpoint_weights", input = Json, output = crate::kernel::codec::Json)]
pub async fn set_endpoint_weights(id: Uuid, weights: Weights) -> Result<Endpoint, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(
        crate::endpoints::domain::set_weights(&ctx, id, weights, crate::registry::gate::Route::Direct).await,
    )
}

/// The variants editor: the production variants the endpoint should have,
/// one row each (a row without a version is removed, a new name is added,
/// a changed count changes the capacity).
#[server(prefix = "/rpc", endpoint = "update_endpoint_form", output = crate::kernel::codec::Json)]
pub async fn update_endpoint_form(
    id: Uuid,
    variants: Vec<VariantRow>,
    fleet: Option<crate::endpoints::types::FleetRow>,
) -> Result<Endpoint, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let done = async {
        let rows = crate::endpoints::domain::from_form(String::new(), variants, None)?;
        let deployment = fleet.as_ref().map(crate::endpoints::domain::fleet_from_form).transpose()?.flatten();
        let update =
            crate::endpoints::types::EndpointUpdate { variants: Some(rows.variants), deployment, ..Default::default() };
        crate::endpoints::domain::update(&ctx, id, update, crate::registry::gate::Route::Direct).await
    }
    .await;
    crate::kernel::context::finish(done)
}

#[server(prefix = "/rpc", endpoint = "update_endpoint", input = Json, output = crate::kernel::codec::Json)]
pub async fn update_endpoint(id: Uuid, update: crate::endpoints::types::EndpointUpdate) -> Result<Endpoint, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(
        crate::endpoints::domain::update(&ctx, id, update, crate::registry::gate::Route::Direct).await,
    )
}

/// The endpoint page's sample-traffic form.
#[server(prefix = "/rpc", endpoint = "send_sample_traffic", output = crate::kernel::codec::Json)]
pub async fn send_sample_traffic(
    id: Uuid,
    body: String,
    content_type: String,
    rate: String,
    seconds: String,
) -> Result<crate::endpoints::types::SampleTrafficStarted, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let mut errors = crate::kernel::validate::Errors::new();
    let rate = errors.check("rate", rate.trim().parse::<u32>().map_err(|_| "Give a whole number, 1 to 50.".into()));
    let seconds =
        errors.check("seconds", seconds.trim().parse::<u32>().map_err(|_| "Give a whole number, 1 to 900.".into()));
    let done = async {
        errors.finish()?;
        let (Some(rate), Some(seconds)) = (rate, seconds) else { return Err(AppError::Internal) };
        let input = crate::endpoints::types::SampleTraffic { body, content_type, rate, seconds };
        crate::endpoints::sample::start(&ctx, id, input).await
    }
    .await;
    crate::kernel::context::finish(done)
}

#[server(prefix = "/rpc", endpoint = "endpoint_spend", output = crate::kernel::codec::Json)]
pub async fn endpoint_spend(team: String) -> Result<crate::endpoints::types::EndpointSpend, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::endpoints::cost::month(&ctx, &team).await)
}

#[server(prefix = "/rpc", endpoint = "delete_endpoint", output = crate::kernel::codec::Json)]
pub async fn delete_endpoint(id: Uuid) -> Result<(), AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(
        crate::endpoints::domain::delete(&ctx, id, crate::registry::gate::Route::Direct).await,
    )
}

/// Sends `body` to the endpoint (pinned to `variant` when given) and shows
/// what came back and which variant answered.
#[server(prefix = "/rpc", endpoint = "test_invoke", output = crate::kernel::codec::Json)]
pub async fn test_invoke(
    id: Uuid,
    body: String,
    content_type: String,
    variant: Option<String>,
) -> Result<TestInvocation, AppError> {
    use crate::endpoints::invoke::{Failure, Invocation};
    let ctx = crate::kernel::context::server_ctx().await?;
    let engine_name = crate::endpoints::domain::engine_name(&ctx, id).await?;
    let started = std::time::Instant::now();
    let invocation = Invocation {
        body: body.into_bytes().into(),
        content_type: Some(content_type),
        accept: None,
        target_variant: variant.filter(|v| !v.is_empty()),
    };
    let done = crate::endpoints::invoke::invoke(&ctx, &engine_name, invocation).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    match done {
        Ok(invoked) => Ok(TestInvocation {
            variant: invoked.variant,
            status: invoked.answer.status,
            content_type: invoked.answer.content_type,
            body: String::from_utf8_lossy(&invoked.answer.body).into_owned(),
            latency_ms,
        }),
        Err(Failure::Model { variant, status, body }) => Ok(TestInvocation {
            variant,
            status,
            content_type: None,
            body: String::from_utf8_lossy(&body).into_owned(),
            latency_ms,
        }),
        Err(Failure::Validation(m)) => crate::kernel::context::finish(Err(AppError::BadRequest(m))),
        Err(Failure::AccessDenied(_) | Failure::UnrecognizedClient(_)) => {
            crate::kernel::context::finish(Err(AppError::Forbidden))
        }
        Err(f) => crate::kernel::context::finish(Err(AppError::Upstream(f.message()))),
    }
}

#[server(prefix = "/rpc", endpoint = "list_invoke_keys", output = crate::kernel::codec::Json)]
pub async fn list_invoke_keys(id: Uuid) -> Result<Vec<crate::endpoints::types::InvokeKey>, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::endpoints::keys::list(&ctx, id).await)
}

#[server(prefix = "/rpc", endpoint = "create_invoke_key", output = crate::kernel::codec::Json)]
pub async fn create_invoke_key(id: Uuid, name: String) -> Result<crate::endpoints::types::CreatedInvokeKey, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let input = crate::endpoints::types::NewInvokeKey { name };
    crate::kernel::context::finish(crate::endpoints::keys::create(&ctx, id, input).await)
}

#[server(prefix = "/rpc", endpoint = "revoke_invoke_key", output = crate::kernel::codec::Json)]
pub async fn revoke_invoke_key(id: Uuid, key: String) -> Result<(), AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::endpoints::keys::revoke(&ctx, id, &key).await)
}

/// The endpoint's event timeline, newest first.
#[server(prefix = "/rpc", endpoint = "endpoint_events", output = crate::kernel::codec::Json)]
pub async fn endpoint_events(id: Uuid) -> Result<Vec<crate::endpoints::types::EndpointEvent>, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::endpoints::events::list(&ctx, id).await)
}

/// The endpoint's traffic over `window` (`1h`, `24h` or `7d`) for its page.
#[server(prefix = "/rpc", endpoint = "endpoint_metrics", output = crate::kernel::codec::Json)]
pub async fn endpoint_metrics(id: Uuid, window: String) -> Result<crate::endpoints::types::EndpointMetrics, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let (span, step) = match window.as_str() {
        "24h" => (time::Duration::hours(24), 1800),
        "7d" => (time::Duration::days(7), 3 * 3600),
        _ => (time::Duration::hours(1), 60),
    };
    let to = time::OffsetDateTime::now_utc();
    crate::kernel::context::finish(
        crate::endpoints::metrics::series(&ctx, id, Some(to - span), Some(to), Some(step)).await,
    )
}

/// The endpoint's experiment (viewers); none while it has none.
#[server(prefix = "/rpc", endpoint = "get_experiment", output = crate::kernel::codec::Json)]
pub async fn get_experiment(id: Uuid) -> Result<Option<Experiment>, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::endpoints::experiment::find(&ctx, id, None).await)
}

/// The experiment's settings form (members).
#[server(prefix = "/rpc", endpoint = "set_experiment_form", output = crate::kernel::codec::Json)]
pub async fn set_experiment_form(
    id: Uuid,
    metric: String,
    kind: String,
    goal: String,
    baseline: String,
    alpha: String,
    restart: Option<String>,
) -> Result<Experiment, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let done = async {
        let alpha: f64 = alpha.trim().parse().map_err(|_| AppError::field("alpha", "Give a level such as 0.05."))?;
        let settings = crate::endpoints::types::ExperimentSettings {
            metric,
            kind,
            goal,
            baseline,
            alpha,
            restart: restart.is_some(),
        };
        crate::endpoints::experiment::set(&ctx, id, settings).await
    }
    .await;
    crate::kernel::context::finish(done)
}

/// The endpoint's rollouts, newest first (viewers).
#[server(prefix = "/rpc", endpoint = "list_rollouts", output = crate::kernel::codec::Json)]
pub async fn list_rollouts(endpoint: Uuid) -> Result<Vec<crate::endpoints::types::Rollout>, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::endpoints::rollouts::list(&ctx, endpoint).await)
}

/// A rollout (viewers).
#[server(prefix = "/rpc", endpoint = "get_rollout", output = crate::kernel::codec::Json)]
pub async fn get_rollout(id: Uuid) -> Result<crate::endpoints::types::Rollout, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::endpoints::rollouts::get(&ctx, id).await)
}

/// The new-rollout form (members): on success, on to the rollout's page.
#[server(prefix = "/rpc", endpoint = "start_rollout_form", output = crate::kernel::codec::Json)]
pub async fn start_rollout_form(
    id: Uuid,
    baseline: String,
    candidate: String,
    candidate_version_id: String,
    strategy: String,
    step_percent: String,
    interval_seconds: String,
    max_error_rate: String,
    min_requests: String,
) -> Result<crate::endpoints::types::Rollout, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let done = async {
        let input = crate::endpoints::rollouts::from_form(&crate::endpoints::types::RolloutRow {
            baseline,
            candidate,
            candidate_version_id,
            strategy,
            step_percent,
            interval_seconds,
            max_error_rate,
            min_requests,
        })?;
        crate::endpoints::rollouts::start(&ctx, id, input, crate::registry::gate::Route::Direct).await
    }
    .await;
    if let Ok(r) = &done {
        leptos_axum::redirect(&format!("/teams/{}/rollouts/{}", r.team, r.id));
    }
    crate::kernel::context::finish(done)
}

/// Promote, pause, resume or abort (members).
#[server(prefix = "/rpc", endpoint = "rollout_command", output = crate::kernel::codec::Json)]
pub async fn rollout_command(id: Uuid, command: String) -> Result<crate::endpoints::types::Rollout, AppError> {
    use crate::endpoints::rollouts::Command;
    let ctx = crate::kernel::context::server_ctx().await?;
    let what = match command.as_str() {
        "promote" => Command::Promote,
        "pause" => Command::Pause,
        "resume" => Command::Resume,
        "abort" => Command::Abort,
        _ => return Err(AppError::field("command", "Give promote, pause, resume or abort.")),
    };
    crate::kernel::context::finish(crate::endpoints::rollouts::command(&ctx, id, what).await)
}

/// The endpoint's bandit (viewers); none while it has none.
#[server(prefix = "/rpc", endpoint = "get_bandit", output = crate::kernel::codec::Json)]
pub async fn get_bandit(id: Uuid) -> Result<Option<crate::endpoints::types::Bandit>, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::endpoints::bandit::find(&ctx, id).await)
}

/// The bandit form (members): shares in percent, as the page shows them.
#[server(prefix = "/rpc", endpoint = "set_bandit_form", output = crate::kernel::codec::Json)]
pub async fn set_bandit_form(
    id: Uuid,
    metric: String,
    metric_kind: String,
    goal: String,
    interval_seconds: String,
    min_percent: String,
    max_percent: String,
) -> Result<crate::endpoints::types::Bandit, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let done = async {
        let settings = crate::endpoints::bandit::from_form(&crate::endpoints::types::BanditRow {
            metric,
            metric_kind,
            goal,
            interval_seconds,
            min_percent,
            max_percent,
        })?;
        crate::endpoints::bandit::set(&ctx, id, settings, crate::registry::gate::Route::Direct).await
    }
    .await;
    crate::kernel::context::finish(done)
}

/// Stops the bandit (members).
#[server(prefix = "/rpc", endpoint = "stop_bandit", output = crate::kernel::codec::Json)]
pub async fn stop_bandit(id: Uuid) -> Result<(), AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::endpoints::bandit::stop(&ctx, id).await)
}

/// The fault-injection switch (members): `error_percent` 0 ends it.
#[server(prefix = "/rpc", endpoint = "set_fault_form", output = crate::kernel::codec::Json)]
pub async fn set_fault_form(id: Uuid, variant: String, error_percent: String) -> Result<Endpoint, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let done = async {
        let percent = error_percent
            .trim()
            .trim_end_matches('%')
            .trim()
            .parse::<i32>()
            .map_err(|_| AppError::field("error_percent", "Give a whole percentage such as 30."))?;
        let input = crate::endpoints::types::Fault { variant, error_percent: percent };
        crate::endpoints::faults::set(&ctx, id, input).await
    }
    .await;
    crate::kernel::context::finish(done)
}

/// The endpoint's health score (viewers).
#[server(prefix = "/rpc", endpoint = "get_health", output = crate::kernel::codec::Json)]
pub async fn get_health(id: Uuid) -> Result<crate::endpoints::types::Health, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::endpoints::health::get(&ctx, id).await)
}

/// The health settings form (members).
#[server(prefix = "/rpc", endpoint = "set_health_form", output = crate::kernel::codec::Json)]
pub async fn set_health_form(
    id: Uuid,
    latency_slo_ms: String,
    threshold: String,
    auto_rollback: Option<String>,
) -> Result<crate::endpoints::types::Health, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let done = async {
        let mut errors = crate::kernel::validate::Errors::new();
        let int = |errors: &mut crate::kernel::validate::Errors, field: &str, raw: &str| {
            errors.check(field, raw.trim().parse::<i32>().map_err(|_| "Give a whole number.".to_owned()))
        };
        let slo = int(&mut errors, "latency_slo_ms", &latency_slo_ms);
        let threshold = int(&mut errors, "threshold", &threshold);
        errors.finish()?;
        let input = crate::endpoints::types::HealthSettings {
            latency_slo_ms: slo.unwrap_or_default(),
            threshold: threshold.unwrap_or_default(),
            auto_rollback: auto_rollback.is_some(),
        };
        crate::endpoints::health::set(&ctx, id, input).await
    }
    .await;
    crate::kernel::context::finish(done)
}
