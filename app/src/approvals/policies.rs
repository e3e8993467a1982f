//! A team's approval policies: which kinds of change (optionally on one
//! model, or one model's alias; an endpoint kind on every endpoint of the
//! team) need a change request, and whose approval.
//! Readers of the team see them; admins replace them as a whole, audited
//! with before and after.

use crate::approvals::types::{Policies, Policy};
use crate::kernel::audit::NewEvent;
use crate::kernel::changes::kinds;
use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::roles::{Action, Role};
use crate::kernel::validate::Errors;
use serde_json::json;
use uuid::Uuid;

pub async fn get(ctx: &Ctx, team: &str) -> Result<Policies, AppError> {
    let (team, _) = crate::teams::domain::load(ctx, team, Action::ReadTeam).await?;
    current(ctx.pool(), team.id).await
}

async fn current(pool: &sqlx::PgPool, team_id: Uuid) -> Result<Policies, AppError> {
    let policies = sqlx::query_as!(
        Policy,
        r#"select kind, model_id, alias, approvals_required, min_role as "min_role: Role", require_admin,
                  expires_after_hours
           from approval_policy where team_id = $1 order by kind, model_id nulls first, alias nulls first"#,
        team_id
    )
    .fetch_all(pool)
    .await?;
    Ok(Policies { policies })
}

/// Replaces the team's policies (team admins). Each is checked, field by
/// field (`policies[2].approvals_required`); a refusal writes nothing.
pub async fn put(ctx: &Ctx, team: &str, input: Policies) -> Result<Policies, AppError> {
    let (team, _) = crate::teams::domain::load(ctx, team, Action::UpdateTeam).await?;
    let actor = ctx.actor()?;
    let mut errors = Errors::new();
    let mut seen = std::collections::HashSet::new();
    for (i, p) in input.policies.iter().enumerate() {
        let field = |f: &str| format!("policies[{i}].{f}");
        if !kinds::ALL.contains(&p.kind.as_str()) {
            errors.push(&field("kind"), format!("Use one of {}.", kinds::ALL.join(", ")));
        }
        if !(1..=10).contains(&p.approvals_required) {
            errors.push(&field("approvals_required"), "Require 1 to 10 approvals.");
        }
        if !(1..=2160).contains(&p.expires_after_hours) {
            errors.push(&field("expires_after_hours"), "Use 1 hour to 90 days (2160 hours).");
        }
        if p.min_role == Role::Viewer {
            errors.push(&field("min_role"), "Viewers do not review: use member, approver or admin.");
        }
        if kinds::is_endpoint(&p.kind) && p.model_id.is_some() {
            errors.push(&field("model_id"), "An endpoint kind covers every endpoint of the team: leave model_id out.");
        }
        if p.alias.is_some() && p.model_id.is_none() {
            errors.push(&field("alias"), "An alias belongs to a model: give model_id too.");
        }
        if let Some(alias) = &p.alias
            && let Err(m) = crate::registry::aliases::alias_name(alias)
        {
            errors.push(&field("alias"), m);
        }
        if !seen.insert((p.kind.clone(), p.model_id, p.alias.clone())) {
            errors.push(&field("kind"), "Another policy covers the same kind and target.");
        }
    }
    errors.finish()?;
    let mut tx = ctx.pool().begin().await?;
    for (i, p) in input.policies.iter().enumerate() {
        if let Some(model) = p.model_id {
            let ours = sqlx::query_scalar!(
                r#"select exists(select 1 from model where model_id = $1 and team_id = $2) as "e!""#,
                model,
                team.id
            )
            .fetch_one(&mut *tx)
            .await?;
            if !ours {
                return Err(AppError::field(&format!("policies[{i}].model_id"), "No model of this team has this id."));
            }
        }
    }
    let before = current(ctx.pool(), team.id).await?;
    sqlx::query!("delete from approval_policy where team_id = $1", team.id).execute(&mut *tx).await?;
    for p in &input.policies {
        sqlx::query!(
            "insert into approval_policy (policy_id, team_id, kind, model_id, alias, approvals_required, min_role,
                                          require_admin, expires_after_hours, updated_by)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            Uuid::now_v7(),
            team.id,
            p.kind,
            p.model_id,
            p.alias,
            p.approvals_required,
            p.min_role as Role,
            p.require_admin,
            p.expires_after_hours,
            actor.user_id
        )
        .execute(&mut *tx)
        .await?;
    }
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team.id),
            action: "approval_policies.updated",
            target_type: "team",
            target_id: Some(team.id.to_string()),
            summary: json!({ "before": before, "after": input }),
        },
    )
    .await?;
    tx.commit().await?;
    current(ctx.pool(), team.id).await
}
