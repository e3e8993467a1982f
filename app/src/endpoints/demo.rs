//! The demo's endpoint: when the demo's first job becomes `champion` of
//! `churn` (the registry's and approvals' demo steps), it is deployed to the
//! endpoint `churn` of the demo team, one variant named `champion` on one
//! local process, so the demo shows a model answering requests.

use crate::endpoints::types::{NewEndpoint, NewVariant};
use crate::kernel::error::AppError;
use crate::kernel::state::AppState;

/// The demo endpoint's name.
pub const ENDPOINT: &str = "churn";

/// Registers the demo's finished jobs (with the demo's policy) and deploys
/// each new champion; returns how many jobs were registered.
pub async fn step(state: &AppState) -> Result<usize, AppError> {
    let registered = crate::approvals::demo::step(state).await?;
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
        match crate::endpoints::domain::create(&r.ctx, &r.team, input).await {
            // already there (an earlier demo), or the demo's runner may only read
            Ok(_) | Err(AppError::Conflict { .. } | AppError::Forbidden) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(registered.len())
}
