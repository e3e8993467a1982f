//! Budget types, shared by the server and the browser.

use serde::{Deserialize, Serialize};

/// A team's monthly budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Budget {
    /// USD per UTC month, over training and endpoints.
    pub monthly_usd: f64,
    /// The first alert, in percent of the budget (the second is at 100 %).
    pub alert_percent: i32,
    pub updated_by: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub updated_at: time::OffsetDateTime,
}

/// What team admins set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BudgetInput {
    /// USD per month, above 0.
    #[cfg_attr(feature = "ssr", schema(exclusive_minimum = 0, maximum = 1e12))]
    pub monthly_usd: f64,
    /// 1-100 (default 80).
    #[serde(default = "default_alert_percent")]
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 100))]
    pub alert_percent: i32,
}

fn default_alert_percent() -> i32 {
    80
}

/// Where the team stands this month.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BudgetStatus {
    /// `YYYY-MM` (UTC).
    pub month: String,
    pub budget: Option<Budget>,
    pub training_usd: f64,
    pub endpoints_usd: f64,
    pub spent_usd: f64,
    /// Spent, in percent of the budget.
    pub percent: Option<f64>,
    /// `alert` (past the alert percentage) or `exceeded` (past 100 %).
    pub level: Option<String>,
}

/// The level `spent` reaches against `budget` (`monthly`, alert percent).
pub fn level(spent: f64, monthly: f64, alert_percent: i32) -> Option<&'static str> {
    if spent >= monthly {
        Some("exceeded")
    } else if spent >= monthly * f64::from(alert_percent) / 100.0 {
        Some("alert")
    } else {
        None
    }
}

impl BudgetStatus {
    /// "2026-12: $12.00 of $100.00 spent (12 %): training $4.00, endpoints $8.00".
    pub fn summary(&self) -> String {
        use crate::kernel::format::usd;
        let parts = format!("training {}, endpoints {}", usd(self.training_usd), usd(self.endpoints_usd));
        match (&self.budget, self.percent) {
            (Some(b), Some(p)) => {
                format!("{}: {} of {} spent ({p:.0} %): {parts}", self.month, usd(self.spent_usd), usd(b.monthly_usd))
            }
            _ => format!("{}: {} spent: {parts}", self.month, usd(self.spent_usd)),
        }
    }
}
