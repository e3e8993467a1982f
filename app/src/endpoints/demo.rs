//! The demo's endpoint: when the demo's first job becomes `champion` of
//! `churn` (the registry's demo step), it is deployed to the
//! endpoint `churn` of the demo team, one variant named `champion` on one
//! local process, so the demo shows a model answering requests. The
//! demo's second version (its second job's, or a later run's) joins it as
//! `challenger` with 10 % of the traffic. With
//! `capstan demo --traffic`, sample traffic keeps its charts moving.

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

/// `capstan demo --traffic`: once the demo's endpoint in `team` is in
/// service (its job trained, registered and deployed), sends it sample
/// traffic (5 requests/s of a churn row for 15 minutes) as the demo's user.
/// Gives up after 30 minutes without an endpoint in service.
pub async fn send_traffic_when_ready(ctx: crate::kernel::context::Ctx, team: String) -> Result<(), AppError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30 * 60);
    loop {
        let ready = crate::endpoints::domain::list(&ctx, &team)
            .await?
            .into_iter()
            .find(|e| e.name == ENDPOINT && e.status == "InService");
        if let Some(endpoint) = ready {
            let input = crate::endpoints::types::SampleTraffic {
                body: "24,70.5,3".into(),
                content_type: "text/csv".into(),
                rate: 5,
                seconds: 900,
            };
            let started = crate::endpoints::sample::start(&ctx, endpoint.id, input).await?;
            tracing::info!(endpoint = %endpoint.engine_name, until = %started.until, "sending the demo's sample traffic");
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(AppError::Conflict {
                field: None,
                message: "The demo's endpoint did not come into service within 30 minutes.".into(),
            });
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}
