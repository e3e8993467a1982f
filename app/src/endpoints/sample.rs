//! Sample traffic: the endpoint page's *Send sample traffic* and `capstan
//! demo --traffic` send a steady stream of one payload through the gateway's
//! own path, as the member who asked, so the endpoint's charts and metrics
//! come alive without writing a client. It runs in the background of the
//! process that was asked and stops by itself; one stream per endpoint.

use crate::endpoints::invoke::{Invocation, invoke};
use crate::endpoints::types::{SampleTraffic, SampleTrafficStarted};
use crate::kernel::audit::NewEvent;
use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::roles::Action;
use crate::kernel::validate::Errors;
use bytes::Bytes;
use serde_json::json;
use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// Endpoints this process sends sample traffic to now.
static SENDING: LazyLock<Mutex<HashSet<Uuid>>> = LazyLock::new(Default::default);

/// At most this many sample requests wait for an answer at once (a slow
/// model gets fewer requests, not a pile-up).
const IN_FLIGHT: usize = 32;

/// Removes the endpoint from [`SENDING`] when the stream ends, however it ends.
struct Sending(Uuid);

impl Drop for Sending {
    fn drop(&mut self) {
        if let Ok(mut sending) = SENDING.lock() {
            sending.remove(&self.0);
        }
    }
}

/// Starts sending `input.rate` requests per second to endpoint `id` for
/// `input.seconds` (members: invoking needs the member role); answers at once.
pub async fn start(ctx: &Ctx, id: Uuid, input: SampleTraffic) -> Result<SampleTrafficStarted, AppError> {
    let (endpoint, team_id) = crate::endpoints::domain::load(ctx, id, Action::Contribute).await?;
    let mut errors = Errors::new();
    if input.body.trim().is_empty() || input.body.len() > 64 * 1024 {
        errors.push("body", "Give a request body of 1 byte to 64 KB.");
    }
    if input.content_type.trim().is_empty() || input.content_type.len() > 200 {
        errors.push("content_type", "Give a content type such as text/csv.");
    }
    if !(1..=50).contains(&input.rate) {
        errors.push("rate", "Send 1 to 50 requests per second.");
    }
    if !(1..=900).contains(&input.seconds) {
        errors.push("seconds", "Send for 1 to 900 seconds.");
    }
    errors.finish()?;
    if endpoint.status == "Deleting" {
        return Err(AppError::Conflict { field: None, message: "The endpoint is being deleted.".into() });
    }
    let sending = {
        let mut all = SENDING.lock().map_err(|_| AppError::Internal)?;
        if !all.insert(id) {
            return Err(AppError::Conflict {
                field: None,
                message: "Sample traffic is already being sent to this endpoint; it stops by itself.".into(),
            });
        }
        Sending(id)
    };
    let until = time::OffsetDateTime::now_utc() + Duration::from_secs(u64::from(input.seconds));
    let mut tx = ctx.pool().begin().await?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team_id),
            action: "endpoint.sample_traffic",
            target_type: "endpoint",
            target_id: Some(id.to_string()),
            summary: json!({ "after": { "rate": input.rate, "seconds": input.seconds,
                                        "content_type": input.content_type } }),
        },
    )
    .await?;
    tx.commit().await?;
    let ctx = ctx.clone();
    let (rate, seconds) = (input.rate, input.seconds);
    let body = Bytes::from(input.body);
    let content_type = input.content_type;
    tokio::spawn(async move {
        let _sending = sending;
        let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let end = tokio::time::Instant::now() + Duration::from_secs(u64::from(seconds));
        while tokio::time::Instant::now() < end {
            tick.tick().await;
            let Ok(slot) = slots.clone().try_acquire_owned() else { continue };
            let (ctx, name) = (ctx.clone(), endpoint.engine_name.clone());
            let invocation = Invocation {
                body: body.clone(),
                content_type: Some(content_type.clone()),
                accept: None,
                target_variant: None,
            };
            tokio::spawn(async move {
                // counted in the endpoint's metrics like any other request
                let _ = invoke(&ctx, &name, invocation).await;
                drop(slot);
            });
        }
    });
    Ok(SampleTrafficStarted { rate, seconds, until })
}
