//! Server functions of budgets.

use crate::budgets::types::BudgetStatus;
use crate::kernel::error::AppError;
use leptos::prelude::*;

#[server(prefix = "/rpc", endpoint = "get_budget", output = crate::kernel::codec::Json)]
pub async fn get_budget(team: String) -> Result<BudgetStatus, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::budgets::domain::status(&ctx, &team).await)
}

/// The budget form: a monthly amount and the alert percentage (admins).
#[server(prefix = "/rpc", endpoint = "set_budget_form", output = crate::kernel::codec::Json)]
pub async fn set_budget_form(
    team: String,
    monthly_usd: String,
    alert_percent: String,
) -> Result<BudgetStatus, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let mut errors = crate::kernel::validate::Errors::new();
    let monthly = errors.check(
        "monthly_usd",
        monthly_usd
            .trim()
            .trim_start_matches('$')
            .parse::<f64>()
            .map_err(|_| "Give an amount in USD, e.g. 500.".into()),
    );
    let percent = errors.check(
        "alert_percent",
        alert_percent.trim().trim_end_matches('%').parse::<i32>().map_err(|_| "Give a whole percentage.".into()),
    );
    let done = async {
        errors.finish()?;
        let (Some(monthly_usd), Some(alert_percent)) = (monthly, percent) else { return Err(AppError::Internal) };
        let input = crate::budgets::types::BudgetInput { monthly_usd, alert_percent };
        crate::budgets::domain::set(&ctx, &team, input).await
    }
    .await;
    crate::kernel::context::finish(done)
}

#[server(prefix = "/rpc", endpoint = "remove_budget", output = crate::kernel::codec::Json)]
pub async fn remove_budget(team: String) -> Result<(), AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::budgets::domain::remove(&ctx, &team).await)
}
