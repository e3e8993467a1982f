//! A team's budget: read with where the month stands (viewers), set and
//! removed by team admins, audited.

use crate::budgets::types::{Budget, BudgetInput, BudgetStatus, level};
use crate::kernel::audit::NewEvent;
use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::roles::Action;
use crate::kernel::validate::Errors;
use serde_json::json;
use uuid::Uuid;

async fn budget_of(pool: &sqlx::PgPool, team_id: Uuid) -> Result<Option<Budget>, AppError> {
    Ok(sqlx::query!(
        "select b.monthly_usd, b.alert_percent, u.email as updated_by, b.updated_at
         from team_budget b join app_user u on u.user_id = b.updated_by where b.team_id = $1",
        team_id
    )
    .fetch_optional(pool)
    .await?
    .map(|r| Budget {
        monthly_usd: r.monthly_usd,
        alert_percent: r.alert_percent,
        updated_by: r.updated_by,
        updated_at: r.updated_at,
    }))
}

/// The team's budget and this month's spend (training and endpoints), as
/// the banner and the budget page show it; no authorization.
pub async fn status_of(pool: &sqlx::PgPool, team_id: Uuid) -> Result<BudgetStatus, AppError> {
    let budget = budget_of(pool, team_id).await?;
    let spend = crate::endpoints::cost::team_month(pool, team_id).await?;
    let spent = spend.training_usd + spend.endpoints_usd;
    let (percent, level) = match &budget {
        Some(b) => {
            (Some(spent / b.monthly_usd * 100.0), level(spent, b.monthly_usd, b.alert_percent).map(str::to_owned))
        }
        None => (None, None),
    };
    Ok(BudgetStatus {
        month: spend.month,
        budget,
        training_usd: spend.training_usd,
        endpoints_usd: spend.endpoints_usd,
        spent_usd: spent,
        percent,
        level,
    })
}

/// The team's budget and month (viewers).
pub async fn status(ctx: &Ctx, team: &str) -> Result<BudgetStatus, AppError> {
    let (team, _) = crate::teams::domain::load(ctx, team, Action::ReadTeam).await?;
    status_of(ctx.pool(), team.id).await
}

/// Sets the team's budget (admins).
pub async fn set(ctx: &Ctx, team: &str, input: BudgetInput) -> Result<BudgetStatus, AppError> {
    let (team, _) = crate::teams::domain::load(ctx, team, Action::UpdateTeam).await?;
    let actor = ctx.actor()?;
    let mut errors = Errors::new();
    if !(input.monthly_usd.is_finite() && input.monthly_usd > 0.0 && input.monthly_usd <= 1e12) {
        errors.push("monthly_usd", "Give a monthly budget in USD above 0.");
    }
    if !(1..=100).contains(&input.alert_percent) {
        errors.push("alert_percent", "Alert at 1 to 100 percent of the budget.");
    }
    errors.finish()?;
    let before = budget_of(ctx.pool(), team.id).await?;
    let mut tx = ctx.pool().begin().await?;
    sqlx::query!(
        "insert into team_budget (team_id, monthly_usd, alert_percent, updated_by) values ($1, $2, $3, $4)
         on conflict (team_id) do update set monthly_usd = excluded.monthly_usd,
             alert_percent = excluded.alert_percent, updated_by = excluded.updated_by, updated_at = now()",
        team.id,
        input.monthly_usd,
        input.alert_percent,
        actor.user_id
    )
    .execute(&mut *tx)
    .await?;
    // a new budget may be crossed again this month: its alerts start afresh
    sqlx::query!(
        "delete from budget_alert where team_id = $1 and month = to_char(now() at time zone 'utc', 'YYYY-MM')",
        team.id
    )
    .execute(&mut *tx)
    .await?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team.id),
            action: "budget.set",
            target_type: "team",
            target_id: Some(team.id.to_string()),
            summary: json!({
                "before": before.map(|b| json!({"monthly_usd": b.monthly_usd, "alert_percent": b.alert_percent})),
                "after": {"monthly_usd": input.monthly_usd, "alert_percent": input.alert_percent},
            }),
        },
    )
    .await?;
    tx.commit().await?;
    status_of(ctx.pool(), team.id).await
}

/// Removes the team's budget (admins); nothing when there is none.
pub async fn remove(ctx: &Ctx, team: &str) -> Result<(), AppError> {
    let (team, _) = crate::teams::domain::load(ctx, team, Action::UpdateTeam).await?;
    let Some(before) = budget_of(ctx.pool(), team.id).await? else { return Ok(()) };
    let mut tx = ctx.pool().begin().await?;
    sqlx::query!("delete from team_budget where team_id = $1", team.id).execute(&mut *tx).await?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team.id),
            action: "budget.removed",
            target_type: "team",
            target_id: Some(team.id.to_string()),
            summary: json!({ "before": {"monthly_usd": before.monthly_usd, "alert_percent": before.alert_percent} }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
