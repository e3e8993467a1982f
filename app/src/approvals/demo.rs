//! The demo's approval policy: once the demo's job is version 1 of `churn`
//! and `champion` names it (the registry's demo), the demo team gets the
//! policy "moving `champion` of `churn` needs 1 approval by an approver",
//! shown on its policies page, which the demo's second user (an approver,
//! made by the training demo) can give.

use crate::approvals::types::Policy;
use crate::kernel::changes::kinds;
use crate::kernel::error::AppError;
use crate::kernel::roles::Role;
use crate::kernel::state::AppState;

/// Registers the demo's finished jobs and deploys them (the endpoints'
/// demo step), then puts the policy on each model whose `champion` this
/// step set; returns how many jobs were registered. The demo worker runs it.
pub async fn step(state: &AppState) -> Result<usize, AppError> {
    let registered = crate::endpoints::demo::step(state).await?;
    for r in registered.iter().filter(|r| r.champion) {
        let mut policies = crate::approvals::policies::get(&r.ctx, &r.team).await?;
        let ours = |p: &Policy| {
            p.kind == kinds::ALIAS_MOVE
                && p.model_id == Some(r.model_id)
                && p.alias.as_deref() == Some(crate::registry::demo::ALIAS)
        };
        if policies.policies.iter().any(ours) {
            continue;
        }
        policies.policies.push(Policy {
            kind: kinds::ALIAS_MOVE.into(),
            model_id: Some(r.model_id),
            alias: Some(crate::registry::demo::ALIAS.into()),
            approvals_required: 1,
            min_role: Role::Approver,
            require_admin: false,
            expires_after_hours: 168,
        });
        match crate::approvals::policies::put(&r.ctx, &r.team, policies).await {
            // only team admins set policies: a demo run by a member keeps the default rule
            Ok(_) | Err(AppError::Forbidden) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(registered.len())
}
