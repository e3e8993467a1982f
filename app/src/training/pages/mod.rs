//! Training pages: the team's job list with this month's spend, the launch
//! form (also for clones), the job page with its timeline, cost, live log
//! stream and metric charts, the price table, and the demo button.

pub mod demo;
pub mod job;
pub mod launch;
pub mod list;
pub mod prices;

use crate::training::types::TrainingStatus;
use leptos::prelude::*;

#[component]
pub(super) fn JobStatus(status: TrainingStatus) -> impl IntoView {
    let class = match status {
        TrainingStatus::Completed => "pill ok",
        TrainingStatus::Failed => "pill danger",
        TrainingStatus::Stopped => "pill",
        _ => "pill busy",
    };
    view! { <span class=class data-status=status.as_str()>{status.as_str()}</span> }
}

pub(super) fn duration(seconds: i64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {:02}s", s / 60, s % 60),
        s => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}
