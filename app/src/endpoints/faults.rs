//! Fault injection, a switch for demos and staging: the gateway answers a
//! share of the invocations routed to a production variant with a model
//! error (`ModelError`, the model's status 500) instead of calling it, and
//! counts it as the model's error — so a rollout's guardrails can be seen
//! to roll a candidate back without breaking a model. Only for endpoints
//! whose team has no approval policy over endpoint changes: where changes
//! need review, nobody may break traffic with a switch. Audited
//! (`endpoint.fault_set`); kept by variant name across variant changes.

use crate::endpoints::types::{Endpoint, Fault};
use crate::kernel::audit::NewEvent;
use crate::kernel::changes::kinds;
use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::roles::Action;
use crate::kernel::validate::Errors;
use serde_json::json;
use uuid::Uuid;

/// Sets (or, at 0 %, ends) the fault on one production variant (members
/// and up); the endpoint as it is then.
pub async fn set(ctx: &Ctx, id: Uuid, input: Fault) -> Result<Endpoint, AppError> {
    let (endpoint, team_id) = crate::endpoints::domain::load(ctx, id, Action::Contribute).await?;
    let mut errors = Errors::new();
    let variant = endpoint.variants.iter().find(|v| v.name == input.variant);
    if variant.is_none() {
        let names: Vec<String> = endpoint.variants.iter().map(|v| format!("`{}`", v.name)).collect();
        errors.push("variant", format!("Name a production variant of the endpoint ({}).", names.join(", ")));
    }
    if !(0..=100).contains(&input.error_percent) {
        errors.push("error_percent", "Give 0 to 100 %.");
    }
    errors.finish()?;
    let before = variant.and_then(|v| v.fault_percent).unwrap_or(0);
    let actor = ctx.actor()?;
    let mut tx = ctx.pool().begin().await?;
    let covering = [kinds::ENDPOINT_UPDATE, kinds::ENDPOINT_WEIGHTS];
    if let Some(kind) = crate::kernel::changes::covered_kind(&mut tx, team_id, &covering).await? {
        return Err(AppError::Conflict {
            field: None,
            message: format!(
                "team {}'s approval policy covers {kind}: fault injection is only for endpoints of teams whose \
                 changes need no review (demos, staging).",
                endpoint.team
            ),
        });
    }
    if input.error_percent == 0 {
        sqlx::query!("delete from endpoint_fault where endpoint_id = $1 and variant = $2", id, input.variant)
            .execute(&mut *tx)
            .await?;
    } else {
        sqlx::query!(
            "insert into endpoint_fault (endpoint_id, variant, error_percent, set_by) values ($1, $2, $3, $4)
             on conflict (endpoint_id, variant) do update set error_percent = $3, set_by = $4, set_at = now()",
            id,
            input.variant,
            input.error_percent,
            actor.user_id
        )
        .execute(&mut *tx)
        .await?;
    }
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team_id),
            action: "endpoint.fault_set",
            target_type: "endpoint",
            target_id: Some(id.to_string()),
            summary: json!({ "variant": input.variant, "before": { "error_percent": before },
                             "after": { "error_percent": input.error_percent } }),
        },
    )
    .await?;
    tx.commit().await?;
    crate::endpoints::domain::route_changed(ctx, &endpoint.engine_name);
    crate::endpoints::domain::get(ctx, id).await
}
