//! The budget check (`workers::budgets`, every minute, any process): for
//! each team with a budget, this month's spend against it; crossing the
//! alert percentage, then 100 %, records an alert once a month and level
//! (`budget_alert`) with an audit event `budget.crossed` in the same
//! transaction, which webhooks deliver. Two processes checking at once
//! raise it once (the alert's key).

use crate::kernel::audit::NewEvent;
use crate::kernel::error::AppError;
use serde_json::json;

/// Checks every budgeted team; returns how many alerts it raised.
pub async fn run(pool: &sqlx::PgPool) -> Result<usize, AppError> {
    let budgets = sqlx::query!("select team_id from team_budget").fetch_all(pool).await?;
    let mut raised = 0;
    for b in budgets {
        let status = crate::budgets::domain::status_of(pool, b.team_id).await?;
        let Some(budget) = &status.budget else { continue };
        let levels: &[&str] = match status.level.as_deref() {
            Some("exceeded") => &["alert", "exceeded"],
            Some("alert") => &["alert"],
            _ => &[],
        };
        for &level in levels {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query!(
                "insert into budget_alert (team_id, month, level, spent_usd, monthly_usd) values ($1, $2, $3, $4, $5)
                 on conflict do nothing",
                b.team_id,
                status.month,
                level,
                status.spent_usd,
                budget.monthly_usd
            )
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                continue;
            }
            let (actor, meta) = crate::kernel::audit::system();
            crate::kernel::audit::record(
                &mut tx,
                &actor,
                &meta,
                NewEvent {
                    team_id: Some(b.team_id),
                    action: "budget.crossed",
                    target_type: "team",
                    target_id: Some(b.team_id.to_string()),
                    summary: json!({
                        "level": level, "month": status.month, "spent_usd": status.spent_usd,
                        "training_usd": status.training_usd, "endpoints_usd": status.endpoints_usd,
                        "monthly_usd": budget.monthly_usd, "alert_percent": budget.alert_percent,
                    }),
                },
            )
            .await?;
            tx.commit().await?;
            raised += 1;
        }
    }
    Ok(raised)
}
