//! Server functions of training: launch and its options, jobs, cost, logs,
//! metrics, prices, and the demo.

use crate::kernel::error::AppError;
#[cfg(feature = "ssr")]
use crate::training::types::JobQuery;
use crate::training::types::{
    InstancePrice, LaunchOptions, LaunchRequest, LogLine, MetricSeries, MonthCost, PriceTable, TrainingJob,
    TrainingJobSummary,
};
use leptos::prelude::*;

use crate::kernel::page::Page;
use leptos::server_fn::codec::Json;
use uuid::Uuid;

#[leptos::server(prefix = "/rpc", endpoint = "create_demo")]
pub async fn create_demo() -> Result<crate::training::types::Demo, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::training::demo::create(&ctx).await)
}

#[server(prefix = "/rpc", endpoint = "get_prices", output = crate::kernel::codec::Json)]
pub async fn get_prices() -> Result<PriceTable, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::training::prices::table(&ctx).await)
}

#[server(prefix = "/rpc", endpoint = "set_price", output = crate::kernel::codec::Json)]
pub async fn set_price(instance_type: String, usd_per_hour: String) -> Result<InstancePrice, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::training::prices::set(&ctx, &instance_type, &usd_per_hour).await)
}

#[server(prefix = "/rpc", endpoint = "delete_price", output = crate::kernel::codec::Json)]
pub async fn delete_price(instance_type: String) -> Result<(), AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::training::prices::delete(&ctx, &instance_type).await)
}

#[leptos::server(prefix = "/rpc", endpoint = "launch_training", input = Json)]
pub async fn launch_training(team: String, request: LaunchRequest) -> Result<TrainingJob, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::training::launch::launch(&ctx, &team, request).await)
}

#[leptos::server(prefix = "/rpc", endpoint = "list_training_jobs")]
pub async fn list_training_jobs(
    team: String,
    status: Option<String>,
    cursor: Option<String>,
) -> Result<Page<TrainingJobSummary>, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(
        crate::training::jobs::list(&ctx, &team, JobQuery { status, cursor, limit: None }).await,
    )
}

#[leptos::server(prefix = "/rpc", endpoint = "training_month_cost")]
pub async fn training_month_cost(team: String) -> Result<MonthCost, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::training::jobs::month_cost(&ctx, &team).await)
}

#[leptos::server(prefix = "/rpc", endpoint = "get_training_job")]
pub async fn get_training_job(id: Uuid) -> Result<TrainingJob, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::training::jobs::get(&ctx, id).await)
}

#[leptos::server(prefix = "/rpc", endpoint = "stop_training_job")]
pub async fn stop_training_job(id: Uuid) -> Result<TrainingJob, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::training::jobs::stop(&ctx, id).await)
}

#[leptos::server(prefix = "/rpc", endpoint = "training_metrics")]
pub async fn training_metrics(id: Uuid) -> Result<Vec<MetricSeries>, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::training::jobs::metrics(&ctx, id).await)
}

/// The last lines of a job's log, for the job page as the server renders it
/// (the browser then follows the live stream).
#[leptos::server(prefix = "/rpc", endpoint = "training_log_tail")]
pub async fn training_log_tail(id: Uuid) -> Result<Vec<LogLine>, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::training::logs::log_tail(&ctx, id, LOG_TAIL_LINES).await)
}

/// How many log lines the job page shows before the live stream takes over.
pub const LOG_TAIL_LINES: i64 = 200;

/// Checks one metric regex as the launch would (the launch form calls this
/// as soon as a regex is entered, so a typo shows before submitting).
#[leptos::server(prefix = "/rpc", endpoint = "check_metric_regex")]
pub async fn check_metric_regex(team: String, regex: String) -> Result<(), AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::training::launch::check_metric_regex(&ctx, &team, &regex).await)
}

#[leptos::server(prefix = "/rpc", endpoint = "launch_options")]
pub async fn get_launch_options(team: String) -> Result<LaunchOptions, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::training::launch::options(&ctx, &team).await)
}
