//! The demo's endpoint: when the demo's first job becomes `champion` of
//! `churn` (the registry's demo step), it is deployed to the
//! endpoint `churn` of the demo team, one variant named `champion` on one
//! local process, so the demo shows a model answering requests. The
//! demo's second version (its second job's, or a later run's) joins it as
//! `challenger` with 10 % of the traffic. With `capstan demo --traffic`,
//! simulated customers keep its charts moving and report conversions, so
//! its experiment fills in.

use crate::endpoints::types::{NewEndpoint, NewVariant};
use crate::kernel::error::AppError;
use crate::kernel::state::AppState;

/// The demo endpoint's name.
pub const ENDPOINT: &str = "churn";

/// Registers the demo's finished jobs and deploys each new champion;
/// returns what it registered.
pub async fn step(state: &AppState) -> Result<Vec<crate::registry::demo::Registered>, AppError> {
    let registered = crate::registry::demo::register_finished(state).await?;
    for r in registered.iter().filter(|r| r.champion) {
        let input = NewEndpoint {
            name: ENDPOINT.into(),
            variants: vec![NewVariant {
                name: "champion".into(),
                version_id: r.version_id,
                instance_type: "ml.m5.large".into(),
                instance_count: 1,
                weight: 1.0,
            }],
            shadow: None,
            capture_percent: None,
        };
        match crate::endpoints::domain::create(&r.ctx, &r.team, input, crate::registry::gate::Route::Direct).await {
            // already there (an earlier demo), or the demo's runner may only read
            Ok(_) | Err(AppError::Conflict { .. } | AppError::Forbidden) => {}
            Err(e) => return Err(e),
        }
    }
    for r in registered.iter().filter(|r| !r.champion) {
        add_challenger(r).await?;
    }
    Ok(registered)
}

/// A demo version that is not champion joins the demo endpoint as
/// `challenger` with 10 % of the traffic, while the endpoint serves the
/// champion alone.
async fn add_challenger(r: &crate::registry::demo::Registered) -> Result<(), AppError> {
    let endpoints = match crate::endpoints::domain::list(&r.ctx, &r.team).await {
        Ok(list) => list,
        Err(AppError::Forbidden | AppError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    let Some(endpoint) = endpoints.into_iter().find(|e| e.name == ENDPOINT) else { return Ok(()) };
    let [champion] = endpoint.variants.as_slice() else { return Ok(()) };
    if champion.name != "champion" || champion.version_id == r.version_id {
        return Ok(());
    }
    let variant = |name: &str, version_id, weight| NewVariant {
        name: name.into(),
        version_id,
        instance_type: champion.instance_type.clone(),
        instance_count: 1,
        weight,
    };
    let update = crate::endpoints::types::EndpointUpdate {
        variants: Some(vec![
            NewVariant { instance_count: champion.instance_count, ..variant("champion", champion.version_id, 9.0) },
            variant("challenger", r.version_id, 1.0),
        ]),
        ..Default::default()
    };
    match crate::endpoints::domain::update(&r.ctx, endpoint.id, update, crate::registry::gate::Route::Direct).await {
        Ok(_) | Err(AppError::Forbidden | AppError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// How the demo's simulated customers convert after each variant's answer.
fn conversion_rate(variant: &str) -> f64 {
    if variant == "challenger" { 0.13 } else { 0.10 }
}

/// Requests per second of the demo's traffic, and for how long.
const DEMO_RATE: u64 = 10;
const DEMO_SECONDS: u64 = 15 * 60;

/// `capstan demo --traffic`: once the demo's endpoint in `team` is in
/// service (its job trained, registered and deployed), sets its experiment
/// (metric `conversion`, binary, baseline `champion`) unless it has one,
/// and sends it 10 requests/s of a churn row for 15 minutes as the demo's
/// user, through the gateway's own path, reporting each invocation's
/// outcome as a simulated customer would: a conversion after 10 % of the
/// champion's answers and 13 % of the challenger's. The experiment page
/// fills in within a minute of the challenger joining; a canary rollout of
/// the challenger can be started on the rollouts page, and the fault switch
/// there (`PUT …/faults`) makes it fail so its guardrails roll it back.
/// Gives up after 30 minutes without an endpoint in service.
pub async fn send_traffic_when_ready(ctx: crate::kernel::context::Ctx, team: String) -> Result<(), AppError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30 * 60);
    let endpoint = loop {
        let ready = crate::endpoints::domain::list(&ctx, &team)
            .await?
            .into_iter()
            .find(|e| e.name == ENDPOINT && e.status == "InService");
        if let Some(endpoint) = ready {
            break endpoint;
        }
        if std::time::Instant::now() > deadline {
            return Err(AppError::Conflict {
                field: None,
                message: "The demo's endpoint did not come into service within 30 minutes.".into(),
            });
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    };
    if crate::endpoints::experiment::find(&ctx, endpoint.id, None).await?.is_none() {
        let settings = crate::endpoints::types::ExperimentSettings {
            metric: "conversion".into(),
            kind: "binary".into(),
            goal: "increase".into(),
            baseline: "champion".into(),
            alpha: 0.05,
            restart: false,
        };
        crate::endpoints::experiment::set(&ctx, endpoint.id, settings).await?;
    }
    tracing::info!(endpoint = %endpoint.engine_name, rate = DEMO_RATE, seconds = DEMO_SECONDS,
                   "sending the demo's traffic, with outcomes");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<crate::endpoints::types::Outcome>();
    // outcomes go in once a second, in one batch
    let reporter = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let mut batch = Vec::new();
            let mut every_second = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tokio::select! {
                    got = rx.recv() => match got {
                        Some(o) => {
                            batch.push(o);
                            if batch.len() < crate::endpoints::outcomes::MAX_BATCH {
                                continue;
                            }
                        }
                        None => {
                            report(&ctx, endpoint.id, &mut batch).await;
                            break;
                        }
                    },
                    _ = every_second.tick() => {}
                }
                report(&ctx, endpoint.id, &mut batch).await;
            }
        })
    };
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(1000 / DEMO_RATE));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let end = tokio::time::Instant::now() + std::time::Duration::from_secs(DEMO_SECONDS);
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
    while tokio::time::Instant::now() < end {
        tick.tick().await;
        let Ok(slot) = slots.clone().try_acquire_owned() else { continue };
        let (ctx, name, tx) = (ctx.clone(), endpoint.engine_name.clone(), tx.clone());
        tokio::spawn(async move {
            let invocation = crate::endpoints::invoke::Invocation {
                body: bytes::Bytes::from_static(b"24,70.5,3"),
                content_type: Some("text/csv".into()),
                accept: None,
                target_variant: None,
            };
            if let Ok(done) = crate::endpoints::invoke::invoke(&ctx, &name, invocation).await {
                use rand::Rng as _;
                let converted = rand::rng().random::<f64>() < conversion_rate(&done.variant);
                let request_id = uuid::Uuid::now_v7().to_string();
                let _ = tx.send(crate::endpoints::types::Outcome {
                    request_id: crate::endpoints::outcomes::invocation_id(&request_id, &done.variant),
                    metric: "conversion".into(),
                    value: f64::from(u8::from(converted)),
                    variant: None,
                });
            }
            drop(slot);
        });
    }
    drop(tx);
    let _ = reporter.await;
    Ok(())
}

/// Reports the demo's outcomes gathered so far.
async fn report(ctx: &crate::kernel::context::Ctx, id: uuid::Uuid, batch: &mut Vec<crate::endpoints::types::Outcome>) {
    if batch.is_empty() {
        return;
    }
    let input = crate::endpoints::types::Outcomes::Batch { outcomes: std::mem::take(batch) };
    if let Err(e) = crate::endpoints::outcomes::record(ctx, id, input).await {
        tracing::warn!(error = %e, "could not report the demo's outcomes");
    }
}
