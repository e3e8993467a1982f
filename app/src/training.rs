//! Training jobs: launched by members on dataset versions of their team, run
//! by SageMaker or the local runner (the same script either way), watched
//! through status, logs and metrics, stopped, cloned and costed.
//!
//! A launch writes the job row (`requested`) and its audit event in one
//! transaction before any engine call; [`crate::training_engine`] then
//! creates the job, reconciles status, and reads logs.

use crate::error::AppError;
use crate::page::Page;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MetricDefinition {
    pub name: String,
    /// A regular expression whose first capture group is the value, e.g. `loss=([0-9.]+)`.
    pub regex: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChannelInput {
    /// The channel name the script sees (`SM_CHANNEL_<NAME>`): a letter or `_`, then letters, digits, `_`.
    pub name: String,
    /// A ready dataset version of the job's team.
    pub version_id: Uuid,
}

fn default_count() -> i32 {
    1
}
fn default_volume() -> i32 {
    30
}
fn default_runtime() -> i32 {
    3600
}

/// What a launch asks for. In local mode only script mode runs; in AWS mode
/// either a container image, or script mode with a framework image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LaunchRequest {
    /// 1-50 letters, digits and hyphens; unique in the team.
    pub name: String,
    /// A container image URI (ECR), for a custom training image.
    #[serde(default)]
    pub image: Option<String>,
    /// Script mode: the script to run, relative to the source folder (e.g. `train.py`).
    #[serde(default)]
    pub entry_point: Option<String>,
    /// Script mode: the uploaded source folder (`s3://…/sourcedir.tar.gz`, see training-sources).
    #[serde(default)]
    pub source_uri: Option<String>,
    /// Script mode in AWS mode: a key of the framework image table (e.g. `sklearn-1.2`).
    #[serde(default)]
    pub framework: Option<String>,
    pub instance_type: String,
    #[serde(default = "default_count")]
    pub instance_count: i32,
    #[serde(default = "default_volume")]
    pub volume_gb: i32,
    #[serde(default = "default_runtime")]
    pub max_runtime_seconds: i32,
    /// Managed spot training.
    #[serde(default)]
    pub spot: bool,
    /// Spot: the longest to wait for capacity plus run; at least `max_runtime_seconds`.
    #[serde(default)]
    pub max_wait_seconds: Option<i32>,
    /// Spot: where checkpoints are kept (`s3://…/`).
    #[serde(default)]
    pub checkpoint_uri: Option<String>,
    #[serde(default)]
    pub hyperparameters: Vec<KeyValue>,
    #[serde(default)]
    pub metric_definitions: Vec<MetricDefinition>,
    #[serde(default)]
    pub channels: Vec<ChannelInput>,
    /// Where the artifact goes; defaults to `s3://<capstan bucket>/jobs/<team>/`.
    #[serde(default)]
    pub output_uri: Option<String>,
    #[serde(default)]
    pub tags: Vec<KeyValue>,
    /// AWS mode: the IAM role the job runs as (defaults to the team's, then the configured one).
    #[serde(default)]
    pub role_arn: Option<String>,
}

impl Default for LaunchRequest {
    fn default() -> Self {
        Self {
            name: String::new(),
            image: None,
            entry_point: None,
            source_uri: None,
            framework: None,
            instance_type: "ml.m5.large".into(),
            instance_count: 1,
            volume_gb: 30,
            max_runtime_seconds: 3600,
            spot: false,
            max_wait_seconds: None,
            checkpoint_uri: None,
            hyperparameters: Vec::new(),
            metric_definitions: Vec::new(),
            channels: Vec::new(),
            output_uri: None,
            tags: Vec::new(),
            role_arn: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct JobChannel {
    pub name: String,
    pub version_id: Uuid,
    pub dataset_id: Uuid,
    pub dataset: String,
    pub version: i32,
    pub uri: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Transition {
    pub status: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub start: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option", default)]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>, format = DateTime))]
    pub end: Option<time::OffsetDateTime>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct FinalMetric {
    pub name: String,
    pub value: f64,
}

/// Cost in USD from the price table (per instance-hour × instances).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Cost {
    /// Price of one instance-hour when launched; none if the type is not in the table.
    pub usd_per_hour: Option<f64>,
    /// instances × price × max runtime.
    pub worst_case_usd: Option<f64>,
    /// While running: instances × price × time since start.
    pub accrued_usd: Option<f64>,
    /// When finished: instances × price × billable seconds.
    pub actual_usd: Option<f64>,
    /// Spot: 1 − billable / training time.
    pub spot_savings: Option<f64>,
}

impl Cost {
    /// What the job has cost so far (actual when finished, accrued while running).
    pub fn so_far(&self) -> Option<f64> {
        self.actual_usd.or(self.accrued_usd)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TrainingJob {
    pub id: Uuid,
    pub team: String,
    pub name: String,
    /// The job's name in SageMaker (or the local runner).
    pub engine_name: String,
    /// `sagemaker` or `local`.
    pub backend: String,
    /// requested, starting, downloading, training, uploading, stopping, completed, failed, stopped
    pub status: String,
    pub secondary_status: Option<String>,
    pub failure_reason: Option<String>,
    pub error_code: Option<String>,
    /// The last transient error while Capstan retries (e.g. throttling).
    pub last_error: Option<String>,
    /// The launch request, as entered (clone starts from it).
    pub request: LaunchRequest,
    pub region: String,
    pub output_uri: String,
    pub artifact_uri: Option<String>,
    pub channels: Vec<JobChannel>,
    pub transitions: Vec<Transition>,
    pub final_metrics: Vec<FinalMetric>,
    pub billable_seconds: Option<i64>,
    pub training_seconds: Option<i64>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>, format = DateTime))]
    pub training_started_at: Option<time::OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>, format = DateTime))]
    pub training_ended_at: Option<time::OffsetDateTime>,
    pub cost: Cost,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub created_at: time::OffsetDateTime,
    /// Log lines stored so far.
    pub log_lines: i64,
}

impl TrainingJob {
    pub fn is_final(&self) -> bool {
        is_final(&self.status)
    }
}

pub fn is_final(status: &str) -> bool {
    matches!(status, "completed" | "failed" | "stopped")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TrainingJobSummary {
    pub id: Uuid,
    pub name: String,
    pub backend: String,
    pub status: String,
    pub instance_type: String,
    pub instance_count: i32,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub created_at: time::OffsetDateTime,
    /// Seconds from training start to end (or to now while running).
    pub duration_seconds: Option<i64>,
    pub cost: Cost,
}

/// Filters for a team's job list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
pub struct JobQuery {
    /// Only jobs with this status (`running` means any not finished).
    pub status: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MonthCost {
    /// `YYYY-MM` (UTC).
    pub month: String,
    /// Actual cost of jobs finished this month plus what running jobs have accrued.
    pub total_usd: f64,
    pub jobs: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LogLine {
    pub seq: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub at: time::OffsetDateTime,
    /// stdout, stderr, capstan (the runner's own messages) or the SageMaker host.
    pub stream: String,
    pub text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
pub struct LogQuery {
    /// Only lines containing this text (case-insensitive).
    pub q: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MetricPoint {
    /// The log line it was read from.
    pub seq: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub at: time::OffsetDateTime,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MetricSeries {
    pub name: String,
    pub points: Vec<MetricPoint>,
}

/// A framework image for script mode in AWS mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Framework {
    pub key: String,
    pub label: String,
    pub image: String,
}

/// What the launch form needs to know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LaunchOptions {
    /// `local` or `sagemaker`.
    pub backend: String,
    pub region: String,
    /// Instance types of the price table with their USD per hour.
    pub instance_types: Vec<(String, f64)>,
    pub frameworks: Vec<Framework>,
    /// The role jobs run as unless the form names another.
    pub default_role_arn: Option<String>,
    pub default_output_uri: String,
    /// Ready dataset versions of the team, newest first: (version id, "dataset v3").
    pub versions: Vec<(Uuid, String)>,
}

/// A source folder stored for script mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SourceArchive {
    /// `s3://…/sourcedir.tar.gz`, content-addressed (the same files give the same URI).
    pub source_uri: String,
    pub files: Vec<String>,
    pub bytes: i64,
}

/// The worst-case cost the form shows: instances × price × max runtime.
pub fn worst_case(usd_per_hour: f64, count: i32, max_runtime_seconds: i32) -> f64 {
    f64::from(count) * usd_per_hour * f64::from(max_runtime_seconds) / 3600.0
}

/// Formats USD for people: cents, or tenths of a cent below a dollar.
pub fn usd(amount: f64) -> String {
    if amount < 1.0 { format!("${amount:.3}") } else { format!("${amount:.2}") }
}

#[leptos::server(prefix = "/rpc", endpoint = "launch_training", input = Json)]
pub async fn launch_training(team: String, request: LaunchRequest) -> Result<TrainingJob, AppError> {
    let ctx = crate::state::server_ctx().await?;
    crate::state::finish(ssr::launch(&ctx, &team, request).await)
}

#[leptos::server(prefix = "/rpc", endpoint = "list_training_jobs")]
pub async fn list_training_jobs(
    team: String,
    status: Option<String>,
    cursor: Option<String>,
) -> Result<Page<TrainingJobSummary>, AppError> {
    let ctx = crate::state::server_ctx().await?;
    crate::state::finish(ssr::list(&ctx, &team, JobQuery { status, cursor, limit: None }).await)
}

#[leptos::server(prefix = "/rpc", endpoint = "training_month_cost")]
pub async fn training_month_cost(team: String) -> Result<MonthCost, AppError> {
    let ctx = crate::state::server_ctx().await?;
    crate::state::finish(ssr::month_cost(&ctx, &team).await)
}

#[leptos::server(prefix = "/rpc", endpoint = "get_training_job")]
pub async fn get_training_job(id: Uuid) -> Result<TrainingJob, AppError> {
    let ctx = crate::state::server_ctx().await?;
    crate::state::finish(ssr::get(&ctx, id).await)
}

#[leptos::server(prefix = "/rpc", endpoint = "stop_training_job")]
pub async fn stop_training_job(id: Uuid) -> Result<TrainingJob, AppError> {
    let ctx = crate::state::server_ctx().await?;
    crate::state::finish(ssr::stop(&ctx, id).await)
}

#[leptos::server(prefix = "/rpc", endpoint = "training_metrics")]
pub async fn training_metrics(id: Uuid) -> Result<Vec<MetricSeries>, AppError> {
    let ctx = crate::state::server_ctx().await?;
    crate::state::finish(ssr::metrics(&ctx, id).await)
}

/// The last lines of a job's log, for the job page as the server renders it
/// (the browser then follows the live stream).
#[leptos::server(prefix = "/rpc", endpoint = "training_log_tail")]
pub async fn training_log_tail(id: Uuid) -> Result<Vec<LogLine>, AppError> {
    let ctx = crate::state::server_ctx().await?;
    crate::state::finish(ssr::log_tail(&ctx, id, LOG_TAIL_LINES).await)
}

/// How many log lines the job page shows before the live stream takes over.
pub const LOG_TAIL_LINES: i64 = 200;

/// Checks one metric regex as the launch would (the launch form calls this
/// as soon as a regex is entered, so a typo shows before submitting).
#[leptos::server(prefix = "/rpc", endpoint = "check_metric_regex")]
pub async fn check_metric_regex(team: String, regex: String) -> Result<(), AppError> {
    let ctx = crate::state::server_ctx().await?;
    crate::state::finish(ssr::check_metric_regex(&ctx, &team, &regex).await)
}

#[leptos::server(prefix = "/rpc", endpoint = "launch_options")]
pub async fn get_launch_options(team: String) -> Result<LaunchOptions, AppError> {
    let ctx = crate::state::server_ctx().await?;
    crate::state::finish(ssr::options(&ctx, &team).await)
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::*;
    use crate::audit::ssr::NewEvent;
    use crate::error::FieldError;
    use crate::roles::{Action, Role, authorize_owned};
    use crate::state::{AppState, Ctx};
    use serde_json::json;
    use std::collections::{BTreeMap, HashSet};
    use storage::S3Uri;
    use time::OffsetDateTime;

    const FRAMEWORKS: &str = include_str!("../data/framework-images.json");

    pub fn frameworks(region: &str) -> Vec<Framework> {
        #[derive(serde::Deserialize)]
        struct File {
            frameworks: Vec<Framework>,
        }
        let file: File = serde_json::from_str(FRAMEWORKS)
            .unwrap_or_else(|e| panic!("app/data/framework-images.json is invalid: {e}"));
        file.frameworks.into_iter().map(|f| Framework { image: f.image.replace("{region}", region), ..f }).collect()
    }

    /// The engine name: the job name and the last 12 hex digits of its id
    /// (random in a v7 UUID), so it is unique, stable across retries, and
    /// legal for SageMaker (≤ 63 characters).
    pub fn engine_name(name: &str, id: Uuid) -> String {
        let hex = id.simple().to_string();
        format!("{name}-{}", &hex[hex.len() - 12..])
    }

    fn job_name(raw: &str) -> Result<String, String> {
        let n = raw.trim();
        if n.len() <= 50 && training::is_legal_job_name(n) {
            Ok(n.to_owned())
        } else {
            Err("Use 1-50 letters, digits and hyphens, starting and ending with a letter or digit.".into())
        }
    }

    /// ECR image URIs: `<account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repo>[:tag|@sha256:…]`.
    pub fn image_uri(raw: &str) -> Result<String, String> {
        let bad =
            || "Use an ECR image URI like 123456789012.dkr.ecr.us-east-1.amazonaws.com/my-training:latest.".to_owned();
        let uri = raw.trim();
        let (host, path) = uri.split_once('/').ok_or_else(bad)?;
        let parts: Vec<&str> = host.split('.').collect();
        let host_ok = parts.len() >= 6
            && parts[0].len() == 12
            && parts[0].bytes().all(|b| b.is_ascii_digit())
            && parts[1] == "dkr"
            && parts[2] == "ecr"
            && !parts[3].is_empty()
            && (host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn"));
        let (repo, reference) = match path.split_once('@') {
            Some((repo, digest)) => (repo, Some(digest)),
            None => match path.rsplit_once(':') {
                Some((repo, tag)) => (repo, Some(tag)),
                None => (path, None),
            },
        };
        let repo_ok = !repo.is_empty()
            && repo.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b));
        let reference_ok = reference.is_none_or(|r| {
            !r.is_empty() && r.len() <= 128 && r.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b))
        });
        if host_ok && repo_ok && reference_ok { Ok(uri.to_owned()) } else { Err(bad()) }
    }

    /// An IAM role ARN (also the team setting's check).
    pub fn role_arn(raw: &str) -> Result<String, String> {
        let arn = raw.trim();
        let ok = arn.starts_with("arn:aws")
            && arn.split(':').nth(2) == Some("iam")
            && arn.split(':').nth(4).is_some_and(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
            && arn.split(':').nth(5).is_some_and(|r| r.starts_with("role/") && r.len() > 5);
        if ok {
            Ok(arn.to_owned())
        } else {
            Err("Use an IAM role ARN like arn:aws:iam::123456789012:role/SageMakerTraining.".into())
        }
    }

    fn entry_point(raw: &str) -> Result<String, String> {
        let e = raw.trim().trim_start_matches("./");
        let ok = !e.is_empty()
            && e.len() <= 256
            && storage::check_relative(e).is_ok()
            && (e.ends_with(".py") || e.ends_with(".sh"));
        if ok {
            Ok(e.to_owned())
        } else {
            Err("Name a .py (or .sh) file inside the source folder, like train.py.".into())
        }
    }

    fn channel_name(raw: &str) -> Result<String, String> {
        let n = raw.trim();
        let mut bytes = n.bytes();
        let ok = n.len() <= 64
            && bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if ok {
            Ok(n.to_owned())
        } else {
            Err(format!(
                "`{n}` is not a valid channel name: use a letter or _, then letters, digits or _ (like train)."
            ))
        }
    }

    /// A compiled metric regex with a capture group for the value.
    pub fn metric_regex(raw: &str) -> Result<regex::Regex, String> {
        let re = regex::Regex::new(raw).map_err(|e| format!("The regex does not compile: {e}"))?;
        if re.captures_len() < 2 {
            return Err("Add a capture group for the value, like loss=([0-9.]+).".into());
        }
        Ok(re)
    }

    /// Parses `s3://bucket/key` of one object.
    fn object_uri(raw: &str) -> Result<(String, String), String> {
        let one_file = || "Use an s3://bucket/key URI of one file.".to_owned();
        let raw = raw.trim();
        if raw.ends_with('/') {
            return Err(one_file());
        }
        // the same rules as every location: a valid bucket, no dot segments
        let uri = S3Uri::parse(raw)?;
        match uri.prefix.strip_suffix('/') {
            Some(key) if !key.is_empty() => Ok((uri.bucket, key.to_owned())),
            _ => Err(one_file()),
        }
    }

    /// Validated pieces of a launch.
    struct Checked {
        name: String,
        spec: training::JobSpec,
        channels: Vec<(String, Uuid, String)>,
        usd_per_hour: Option<f64>,
    }

    /// The launch form's live check of one metric regex (members only: it is
    /// part of launching).
    pub async fn check_metric_regex(ctx: &Ctx, team: &str, regex: &str) -> Result<(), AppError> {
        crate::teams::ssr::load(ctx, team, Action::Contribute).await?;
        metric_regex(regex).map(drop).map_err(|m| AppError::field("regex", m))
    }

    pub async fn options(ctx: &Ctx, team: &str) -> Result<LaunchOptions, AppError> {
        let (team, _) = crate::teams::ssr::load(ctx, team, Action::ReadTeam).await?;
        let state = &ctx.state;
        let region = state.settings.region.clone();
        let instance_types = sqlx::query!(
            "select instance_type, usd_per_hour from instance_price where region = $1 order by usd_per_hour, instance_type",
            region
        )
        .fetch_all(ctx.pool())
        .await?
        .into_iter()
        .map(|r| (r.instance_type, r.usd_per_hour))
        .collect();
        let team_role = sqlx::query_scalar!("select sagemaker_role_arn from team where team_id = $1", team.id)
            .fetch_one(ctx.pool())
            .await?;
        let versions = sqlx::query!(
            r#"select v.version_id, d.name, v.number from dataset_version v join dataset d on d.dataset_id = v.dataset_id
               where v.team_id = $1 and v.status = 'ready' and d.archived_at is null
               order by v.created_at desc limit 200"#,
            team.id
        )
        .fetch_all(ctx.pool())
        .await?
        .into_iter()
        .map(|r| (r.version_id, format!("{} v{}", r.name, r.number)))
        .collect();
        Ok(LaunchOptions {
            backend: state.training.kind().to_owned(),
            frameworks: frameworks(&region),
            region,
            instance_types,
            default_role_arn: team_role.or_else(|| state.settings.sagemaker_role_arn.clone()),
            default_output_uri: format!("s3://{}/jobs/{}/", state.storage.bucket, team.slug),
            versions,
        })
    }

    /// Checks every field; all errors at once, nothing written.
    async fn check(ctx: &Ctx, owner: &crate::teams::Team, id: Uuid, r: &LaunchRequest) -> Result<Checked, AppError> {
        let (team_id, team) = (owner.id, owner.slug.as_str());
        let state = &ctx.state;
        let local = state.training.kind() == "local";
        let region = state.settings.region.clone();
        let mut errors = crate::validate::Errors::new();
        let name = errors.check("name", job_name(&r.name));
        let image =
            r.image.as_deref().filter(|s| !s.trim().is_empty()).and_then(|i| errors.check("image", image_uri(i)));
        let entry = r
            .entry_point
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .and_then(|e| errors.check("entry_point", entry_point(e)));
        let source = r.source_uri.as_deref().filter(|s| !s.trim().is_empty());
        let mut framework_image = None;
        if local {
            if entry.is_none() && r.entry_point.as_deref().is_none_or(|e| e.trim().is_empty()) {
                errors.check::<()>(
                    "entry_point",
                    Err("The local runner runs script mode: give an entry point and a source folder.".into()),
                );
            }
        } else if entry.is_some() {
            match r.framework.as_deref().filter(|f| !f.is_empty()) {
                Some(key) => match frameworks(&region).into_iter().find(|f| f.key == key) {
                    Some(f) => framework_image = Some(f.image),
                    None => {
                        errors.check::<()>("framework", Err(format!("Unknown framework {key}.")));
                    }
                },
                None if image.is_none() => {
                    errors.check::<()>("framework", Err("Choose a framework image for script mode.".into()));
                }
                None => {}
            }
        } else if image.is_none() && r.image.as_deref().is_none_or(|i| i.trim().is_empty()) {
            errors.check::<()>("image", Err("Give a container image URI, or an entry point for script mode.".into()));
        }
        if entry.is_some() && source.is_none() {
            errors.check::<()>("source_uri", Err("Upload the source folder that holds the entry point.".into()));
        }
        let price = crate::prices::ssr::price(ctx.pool(), &region, r.instance_type.trim()).await?;
        if price.is_none() {
            errors.check::<()>(
                "instance_type",
                Err(format!(
                    "{} is not in the price table for {region}; pick a listed type or ask a site admin to add it.",
                    r.instance_type.trim()
                )),
            );
        }
        if r.instance_count < 1 {
            errors.check::<()>("instance_count", Err("Use at least 1 instance.".into()));
        } else if r.instance_count > 100 {
            errors.check::<()>("instance_count", Err("Use at most 100 instances.".into()));
        } else if local && r.instance_count != 1 {
            errors.check::<()>("instance_count", Err("The local runner runs one instance.".into()));
        }
        if !(1..=16384).contains(&r.volume_gb) {
            errors.check::<()>("volume_gb", Err("Use a volume of 1 to 16384 GB.".into()));
        }
        if !(1..=28 * 24 * 3600).contains(&r.max_runtime_seconds) {
            errors.check::<()>("max_runtime_seconds", Err("Use 1 second to 28 days.".into()));
        }
        let mut spot = None;
        if r.spot {
            match r.max_wait_seconds {
                Some(w) if w >= r.max_runtime_seconds => {
                    let checkpoint = r
                        .checkpoint_uri
                        .as_deref()
                        .filter(|c| !c.trim().is_empty())
                        .and_then(|c| {
                            let uri = S3Uri::parse(c).and_then(|u| {
                                crate::versions::ssr::reachable(&state.storage.bucket, owner, &u).map(|()| u)
                            });
                            errors.check("checkpoint_uri", uri)
                        })
                        .map(|u| u.to_string());
                    spot = Some(training::Spot { max_wait_seconds: w, checkpoint_uri: checkpoint });
                }
                Some(_) => {
                    errors.check::<()>("max_wait_seconds", Err("Max wait must be at least the max runtime.".into()));
                }
                None => {
                    errors.check::<()>(
                        "max_wait_seconds",
                        Err("Spot training needs a max wait (at least the max runtime).".into()),
                    );
                }
            }
        }
        let mut hps = BTreeMap::new();
        for (i, kv) in r.hyperparameters.iter().enumerate() {
            let key = kv.key.trim();
            let field = format!("hyperparameters[{i}].key");
            if key.is_empty() {
                errors.check::<()>(&field, Err("Give the hyperparameter a name.".into()));
            } else if key.len() > 256 || kv.value.len() > 2500 {
                errors.check::<()>(&field, Err("Use at most 256 characters for names and 2500 for values.".into()));
            } else if hps.insert(key.to_owned(), kv.value.clone()).is_some() {
                errors.check::<()>(&field, Err(format!("`{key}` is given twice.")));
            }
        }
        let mut metric_defs = Vec::new();
        let mut metric_names = HashSet::new();
        for (i, m) in r.metric_definitions.iter().enumerate() {
            let mname = m.name.trim();
            if mname.is_empty() || mname.len() > 255 {
                errors.check::<()>(
                    &format!("metric_definitions[{i}].name"),
                    Err("Give the metric a name (up to 255 characters).".into()),
                );
            } else if !metric_names.insert(mname.to_owned()) {
                errors
                    .check::<()>(&format!("metric_definitions[{i}].name"), Err(format!("`{mname}` is defined twice.")));
            }
            if errors.check(&format!("metric_definitions[{i}].regex"), metric_regex(&m.regex)).is_some() {
                metric_defs.push(training::MetricDefinition { name: mname.to_owned(), regex: m.regex.clone() });
            }
        }
        if r.metric_definitions.len() > 40 {
            errors.check::<()>("metric_definitions", Err("Use at most 40 metric definitions.".into()));
        }
        let mut tags = BTreeMap::new();
        for (i, kv) in r.tags.iter().enumerate() {
            let key = kv.key.trim();
            let field = format!("tags[{i}].key");
            if key.is_empty() || key.len() > 128 || kv.value.len() > 256 {
                errors.check::<()>(&field, Err("Use a key of 1-128 and a value of up to 256 characters.".into()));
            } else if key.starts_with("aws:") || key.starts_with("capstan:") {
                errors.check::<()>(&field, Err("Keys starting with aws: or capstan: are reserved.".into()));
            } else if tags.insert(key.to_owned(), kv.value.clone()).is_some() {
                errors.check::<()>(&field, Err(format!("`{key}` is given twice.")));
            }
        }
        let output = match r.output_uri.as_deref().filter(|o| !o.trim().is_empty()) {
            None => Some(format!("s3://{}/jobs/{team}/", state.storage.bucket)),
            Some(o) => errors
                .check(
                    "output_uri",
                    S3Uri::parse(o)
                        .and_then(|u| crate::versions::ssr::reachable(&state.storage.bucket, owner, &u).map(|()| u)),
                )
                .map(|u| u.to_string()),
        };
        let role = if local {
            None
        } else {
            let team_role = sqlx::query_scalar!("select sagemaker_role_arn from team where team_id = $1", team_id)
                .fetch_one(ctx.pool())
                .await?;
            // The role is the team's (set by a site admin) or the site's:
            // naming another would let a member run code with its rights.
            let granted = team_role.or_else(|| state.settings.sagemaker_role_arn.clone());
            let named = r.role_arn.as_deref().map(str::trim).filter(|s| !s.is_empty());
            match (named, granted) {
                // another role only if a site admin put it on the team's list
                (Some(named), _) if owner.allowed_role_arns.iter().any(|a| a == named) => {
                    errors.check("role_arn", role_arn(named))
                }
                (Some(named), granted) if granted.as_deref() != Some(named) => {
                    errors.check::<()>(
                        "role_arn",
                        Err("This team's jobs run as the IAM role a site admin set for it (or one of the roles a \
                             site admin allowed it); leave role_arn empty or name one of those."
                            .into()),
                    );
                    None
                }
                (_, Some(arn)) => errors.check("role_arn", role_arn(&arn)),
                (_, None) => {
                    errors.check::<()>(
                        "role_arn",
                        Err("No IAM role is set for this team's SageMaker jobs: a site admin sets one in the team's \
                             settings (or CAPSTAN_SAGEMAKER_ROLE_ARN for the whole site)."
                            .into()),
                    );
                    None
                }
            }
        };
        // Channels: names, then versions of this team that are ready.
        let mut channels = Vec::new();
        let mut seen = HashSet::new();
        for (i, c) in r.channels.iter().enumerate() {
            let Some(cname) = errors.check(&format!("channels[{i}].name"), channel_name(&c.name)) else { continue };
            if !seen.insert(cname.clone()) {
                errors.check::<()>(&format!("channels[{i}].name"), Err(format!("The channel {cname} is given twice.")));
                continue;
            }
            let version = sqlx::query!(
                r#"select v.team_id, v.status::text as "status!", v.bucket, v.prefix, v.number, d.name
                   from dataset_version v join dataset d on d.dataset_id = v.dataset_id where v.version_id = $1"#,
                c.version_id
            )
            .fetch_optional(ctx.pool())
            .await?;
            match version {
                Some(v) if v.team_id == team_id => {
                    if v.status == "ready" {
                        channels.push((cname, c.version_id, format!("s3://{}/{}", v.bucket, v.prefix)));
                    } else {
                        errors.check::<()>(
                            &format!("channels[{i}].version_id"),
                            Err(format!("{} v{} is {}; use a ready version.", v.name, v.number, v.status)),
                        );
                    }
                }
                // Another team's version is not there, as far as this caller knows.
                _ => return Err(AppError::NotFound("Dataset version".into())),
            }
        }
        errors.finish()?;
        // The source archive must exist, be ours, and hold the entry point.
        let script = match (entry.clone(), source) {
            (Some(entry), Some(source)) => {
                let (bucket, key) = object_uri(source).map_err(|m| AppError::field("source_uri", m))?;
                let as_prefix = S3Uri { bucket: bucket.clone(), prefix: key.clone() };
                crate::versions::ssr::reachable(&state.storage.bucket, owner, &as_prefix)
                    .map_err(|m| AppError::field("source_uri", m))?;
                let files = archive_files(state, &bucket, &key).await.map_err(|m| AppError::field("source_uri", m))?;
                if !files.iter().any(|f| f == &entry) {
                    let mut shown: Vec<&str> =
                        files.iter().map(String::as_str).filter(|f| f.ends_with(".py")).take(8).collect();
                    if shown.is_empty() {
                        shown = files.iter().map(String::as_str).take(8).collect();
                    }
                    return Err(AppError::field(
                        "entry_point",
                        format!("{entry} is not in the source folder (it has: {}).", shown.join(", ")),
                    ));
                }
                Some(training::Script { entry_point: entry, source_uri: source.trim().to_owned() })
            }
            _ => None,
        };
        let (Some(name), Some(output)) = (name, output) else { return Err(AppError::Internal) };
        let spec = training::JobSpec {
            name: engine_name(&name, id),
            job_id: id.to_string(),
            image: image.or(framework_image),
            script,
            instance_type: r.instance_type.trim().to_owned(),
            instance_count: r.instance_count,
            volume_gb: r.volume_gb,
            max_runtime_seconds: r.max_runtime_seconds,
            spot,
            hyperparameters: hps,
            metric_definitions: metric_defs,
            channels: channels
                .iter()
                .map(|(n, _, uri)| training::Channel { name: n.clone(), uri: uri.clone() })
                .collect(),
            output_uri: output,
            tags,
            role_arn: role,
            region,
            team: team_id.to_string(),
        };
        Ok(Checked { name, spec, channels, usd_per_hour: price })
    }

    /// The file names in a `.tar.gz` source archive (at most 64 MiB read).
    async fn archive_files(state: &AppState, bucket: &str, key: &str) -> Result<Vec<String>, String> {
        let head = state
            .storage
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| format!("s3://{bucket}/{key}: {}", storage::S3Failure::from(e)))?;
        let size = u64::try_from(head.content_length().unwrap_or(0)).unwrap_or(0);
        if size > 64 << 20 {
            return Err("The source archive is over 64 MiB; keep data in datasets, not in the source folder.".into());
        }
        let bytes = storage::read_range(&state.storage.client, bucket, key, 0, size)
            .await
            .map_err(|e| format!("s3://{bucket}/{key}: {e}"))?;
        tokio::task::spawn_blocking(move || training::archive::list(&bytes).map_err(|e| e.to_string()))
            .await
            .map_err(|_| "The source archive could not be read.".to_owned())?
    }

    pub async fn launch(ctx: &Ctx, team: &str, request: LaunchRequest) -> Result<TrainingJob, AppError> {
        let (team, _) = crate::teams::ssr::load(ctx, team, Action::Contribute).await?;
        let actor = ctx.actor()?;
        let id = Uuid::now_v7();
        let checked = check(ctx, &team, id, &request).await?;
        let spec = &checked.spec;
        let mut tx = ctx.pool().begin().await?;
        sqlx::query!(
            "insert into training_job (job_id, team_id, name, engine_name, backend, request, spec, instance_type,
                 instance_count, max_runtime_seconds, spot, region, usd_per_hour, output_uri, created_by)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            id,
            team.id,
            checked.name,
            spec.name,
            ctx.state.training.kind(),
            serde_json::to_value(&request).map_err(anyhow::Error::from)?,
            serde_json::to_value(spec).map_err(anyhow::Error::from)?,
            spec.instance_type,
            spec.instance_count,
            spec.max_runtime_seconds,
            spec.spot.is_some(),
            spec.region,
            checked.usd_per_hour,
            spec.output_uri,
            actor.user_id,
        )
        .execute(&mut *tx)
        .await?;
        for (name, version_id, uri) in &checked.channels {
            sqlx::query!(
                "insert into training_job_channel (job_id, name, version_id, uri) values ($1, $2, $3, $4)",
                id,
                name,
                version_id,
                uri
            )
            .execute(&mut *tx)
            .await?;
        }
        ctx.record(
            &mut tx,
            NewEvent {
                team_id: Some(team.id),
                action: "training_job.launched",
                target_type: "training_job",
                target_id: Some(id.to_string()),
                summary: json!({ "name": checked.name, "engine_name": spec.name, "backend": ctx.state.training.kind(),
                                 "instance_type": spec.instance_type, "instance_count": spec.instance_count,
                                 "channels": checked.channels.iter().map(|(n, v, _)| json!({"name": n, "version_id": v})).collect::<Vec<_>>() }),
            },
        )
        .await?;
        tx.commit().await?;
        ctx.state.training_wake.notify_one();
        get(ctx, id).await
    }

    /// Loads a job with its team and the caller's role, checking `action`.
    async fn load(ctx: &Ctx, id: Uuid, action: Action) -> Result<(TrainingJob, Uuid), AppError> {
        let actor = ctx.actor()?;
        let row = sqlx::query!(
            r#"select j.job_id, j.team_id, t.slug, j.name, j.engine_name, j.backend, j.status::text as "status!",
                      j.secondary_status, j.failure_reason, j.error_code, j.last_error, j.request, j.region,
                      j.usd_per_hour, j.instance_count, j.max_runtime_seconds, j.spot,
                      j.output_uri, j.artifact_uri, j.transitions, j.final_metrics, j.billable_seconds,
                      j.training_seconds, j.training_started_at, j.training_ended_at, u.email as created_by,
                      j.created_at, j.log_seq, m.role as "role?: Role"
               from training_job j join team t on t.team_id = j.team_id join app_user u on u.user_id = j.created_by
               left join team_member m on m.team_id = j.team_id and m.user_id = $2
               where j.job_id = $1"#,
            id,
            actor.user_id
        )
        .fetch_optional(ctx.pool())
        .await?
        .ok_or_else(|| AppError::NotFound("Training job".into()))?;
        authorize_owned(&actor.principal(), action, row.role, "Training job")?;
        let channels = sqlx::query_as!(
            JobChannel,
            r#"select c.name, c.version_id, d.dataset_id, d.name as dataset, v.number as version, c.uri
               from training_job_channel c join dataset_version v on v.version_id = c.version_id
               join dataset d on d.dataset_id = v.dataset_id where c.job_id = $1 order by c.name"#,
            id
        )
        .fetch_all(ctx.pool())
        .await?;
        let request: LaunchRequest = serde_json::from_value(row.request).map_err(anyhow::Error::from)?;
        let final_metrics: BTreeMap<String, f64> = serde_json::from_value(row.final_metrics).unwrap_or_default();
        let cost = cost(
            &row.status,
            row.usd_per_hour,
            row.instance_count,
            row.max_runtime_seconds,
            row.spot,
            row.training_started_at,
            row.billable_seconds,
            row.training_seconds,
        );
        let job = TrainingJob {
            id: row.job_id,
            team: row.slug,
            name: row.name,
            engine_name: row.engine_name,
            backend: row.backend,
            status: row.status,
            secondary_status: row.secondary_status,
            failure_reason: row.failure_reason,
            error_code: row.error_code,
            last_error: row.last_error,
            request,
            region: row.region,
            output_uri: row.output_uri,
            artifact_uri: row.artifact_uri,
            channels,
            transitions: serde_json::from_value(row.transitions).unwrap_or_default(),
            final_metrics: final_metrics.into_iter().map(|(name, value)| FinalMetric { name, value }).collect(),
            billable_seconds: row.billable_seconds,
            training_seconds: row.training_seconds,
            training_started_at: row.training_started_at,
            training_ended_at: row.training_ended_at,
            cost,
            created_by: row.created_by,
            created_at: row.created_at,
            log_lines: row.log_seq,
        };
        Ok((job, row.team_id))
    }

    /// Cost from the launch price, the runtime limits and the times reported.
    #[allow(clippy::too_many_arguments)]
    pub fn cost(
        status: &str,
        usd_per_hour: Option<f64>,
        count: i32,
        max_runtime_seconds: i32,
        spot: bool,
        started: Option<OffsetDateTime>,
        billable_seconds: Option<i64>,
        training_seconds: Option<i64>,
    ) -> Cost {
        let Some(price) = usd_per_hour else { return Cost::default() };
        let per_second = price * f64::from(count) / 3600.0;
        let finished = is_final(status);
        let accrued = (!finished && status != "requested")
            .then(|| started.map(|s| (OffsetDateTime::now_utc() - s).whole_seconds().max(0) as f64 * per_second))
            .flatten();
        let actual = finished.then(|| billable_seconds.map_or(0.0, |b| b as f64 * per_second));
        let savings = match (spot, billable_seconds, training_seconds) {
            (true, Some(b), Some(t)) if t > 0 => Some(1.0 - b as f64 / t as f64),
            _ => None,
        };
        Cost {
            usd_per_hour: Some(price),
            worst_case_usd: Some(worst_case(price, count, max_runtime_seconds)),
            accrued_usd: accrued,
            actual_usd: actual,
            spot_savings: savings,
        }
    }

    pub async fn get(ctx: &Ctx, id: Uuid) -> Result<TrainingJob, AppError> {
        Ok(load(ctx, id, Action::ReadTeam).await?.0)
    }

    pub async fn list(ctx: &Ctx, team: &str, q: JobQuery) -> Result<Page<TrainingJobSummary>, AppError> {
        let (team, _) = crate::teams::ssr::load(ctx, team, Action::ReadTeam).await?;
        let limit = crate::page::limit(q.limit)?;
        let status = q.status.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        const STATUSES: [&str; 10] = [
            "requested",
            "starting",
            "downloading",
            "training",
            "uploading",
            "stopping",
            "completed",
            "failed",
            "stopped",
            "running",
        ];
        if let Some(s) = &status
            && !STATUSES.contains(&s.as_str())
        {
            return Err(AppError::query("status", format!("Use one of: {}.", STATUSES.join(", "))));
        }
        let after: Option<(OffsetDateTime, Uuid)> = crate::page::ssr::decode(q.cursor.as_deref())?;
        let (after_at, after_id) =
            after.unwrap_or((OffsetDateTime::now_utc() + time::Duration::days(36500), Uuid::max()));
        let rows = sqlx::query!(
            r#"select j.job_id, j.name, j.backend, j.status::text as "status!", j.instance_type, j.instance_count,
                      j.max_runtime_seconds, j.spot, j.usd_per_hour, j.training_started_at, j.training_ended_at,
                      j.billable_seconds, j.training_seconds, u.email as created_by, j.created_at
               from training_job j join app_user u on u.user_id = j.created_by
               where j.team_id = $1 and (j.created_at, j.job_id) < ($2, $3)
                 and ($4::text is null
                      or ($4 = 'running' and j.status not in ('completed', 'failed', 'stopped'))
                      or j.status::text = $4)
               order by j.created_at desc, j.job_id desc limit $5"#,
            team.id,
            after_at,
            after_id,
            status,
            limit + 1
        )
        .fetch_all(ctx.pool())
        .await?;
        let now = OffsetDateTime::now_utc();
        let items = rows
            .into_iter()
            .map(|r| TrainingJobSummary {
                cost: cost(
                    &r.status,
                    r.usd_per_hour,
                    r.instance_count,
                    r.max_runtime_seconds,
                    r.spot,
                    r.training_started_at,
                    r.billable_seconds,
                    r.training_seconds,
                ),
                duration_seconds: r
                    .training_started_at
                    .map(|s| (r.training_ended_at.unwrap_or(now) - s).whole_seconds()),
                id: r.job_id,
                name: r.name,
                backend: r.backend,
                status: r.status,
                instance_type: r.instance_type,
                instance_count: r.instance_count,
                created_by: r.created_by,
                created_at: r.created_at,
            })
            .collect();
        Ok(crate::page::ssr::build(items, limit, |j: &TrainingJobSummary| (j.created_at, j.id)))
    }

    /// This month's spend: finished jobs' actual cost plus running jobs' accrual.
    pub async fn month_cost(ctx: &Ctx, team: &str) -> Result<MonthCost, AppError> {
        let (team, _) = crate::teams::ssr::load(ctx, team, Action::ReadTeam).await?;
        let now = OffsetDateTime::now_utc();
        let month_start = now.replace_day(1).map_err(anyhow::Error::from)?.replace_time(time::Time::MIDNIGHT);
        let rows = sqlx::query!(
            r#"select j.status::text as "status!", j.usd_per_hour, j.instance_count, j.max_runtime_seconds, j.spot,
                      j.training_started_at, j.billable_seconds, j.training_seconds
               from training_job j
               where j.team_id = $1 and (j.training_ended_at >= $2 or j.status not in ('completed', 'failed', 'stopped'))"#,
            team.id,
            month_start
        )
        .fetch_all(ctx.pool())
        .await?;
        let total = rows
            .iter()
            .filter_map(|r| {
                cost(
                    &r.status,
                    r.usd_per_hour,
                    r.instance_count,
                    r.max_runtime_seconds,
                    r.spot,
                    r.training_started_at,
                    r.billable_seconds,
                    r.training_seconds,
                )
                .so_far()
            })
            .sum();
        Ok(MonthCost {
            month: format!("{}-{:02}", now.year(), u8::from(now.month())),
            total_usd: total,
            jobs: i64::try_from(rows.len()).unwrap_or(i64::MAX),
        })
    }

    pub async fn stop(ctx: &Ctx, id: Uuid) -> Result<TrainingJob, AppError> {
        let (job, team_id) = load(ctx, id, Action::Contribute).await?;
        let actor = ctx.actor()?;
        if job.is_final() {
            return Err(AppError::Conflict { field: None, message: format!("The job is {} already.", job.status) });
        }
        let mut tx = ctx.pool().begin().await?;
        // Not launched yet: it never will be. Otherwise ask the engine.
        let stopped_before_launch = sqlx::query!(
            "update training_job set status = 'stopped', secondary_status = 'Stopped', stop_requested_by = $2,
                 failure_reason = null, logs_done = true, updated_at = now()
             where job_id = $1 and status = 'requested'",
            id,
            actor.user_id
        )
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !stopped_before_launch {
            sqlx::query!(
                "update training_job set status = 'stopping', stop_requested_by = $2, updated_at = now()
                 where job_id = $1 and status not in ('completed', 'failed', 'stopped')",
                id,
                actor.user_id
            )
            .execute(&mut *tx)
            .await?;
        }
        ctx.record(
            &mut tx,
            NewEvent {
                team_id: Some(team_id),
                action: "training_job.stop_requested",
                target_type: "training_job",
                target_id: Some(id.to_string()),
                summary: json!({ "name": job.name, "status_before": job.status }),
            },
        )
        .await?;
        tx.commit().await?;
        if !stopped_before_launch && let Err(e) = ctx.state.training.stop(&job.engine_name).await {
            // The reconciler retries stopping jobs; show why it has not stopped yet.
            tracing::warn!(job = %id, error = %e, "stop call failed; will retry");
            sqlx::query!("update training_job set last_error = $2 where job_id = $1", id, e.to_string())
                .execute(ctx.pool())
                .await?;
        }
        ctx.state.training_wake.notify_one();
        get(ctx, id).await
    }

    pub async fn logs(ctx: &Ctx, id: Uuid, q: LogQuery) -> Result<Page<LogLine>, AppError> {
        load(ctx, id, Action::ReadTeam).await?;
        let limit = match q.limit {
            None => 500,
            Some(n) if (1..=5000).contains(&n) => n,
            Some(_) => return Err(AppError::query("limit", "Use a limit from 1 to 5000.")),
        };
        let after: i64 = crate::page::ssr::decode(q.cursor.as_deref())?.unwrap_or(0);
        let search = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        let items = lines_after(ctx.pool(), id, after, search.as_deref(), limit + 1).await?;
        Ok(crate::page::ssr::build(items, limit, |l: &LogLine| l.seq))
    }

    /// The last `limit` stored log lines, oldest first.
    pub async fn log_tail(ctx: &Ctx, id: Uuid, limit: i64) -> Result<Vec<LogLine>, AppError> {
        load(ctx, id, Action::ReadTeam).await?;
        let mut lines = sqlx::query_as!(
            LogLine,
            r#"select seq, at, stream, line as text from training_log
               where job_id = $1 order by seq desc limit $2"#,
            id,
            limit
        )
        .fetch_all(ctx.pool())
        .await?;
        lines.reverse();
        Ok(lines)
    }

    /// Stored log lines after `seq`, optionally only those containing `search`.
    pub async fn lines_after(
        pool: &sqlx::PgPool,
        id: Uuid,
        seq: i64,
        search: Option<&str>,
        limit: i64,
    ) -> Result<Vec<LogLine>, AppError> {
        Ok(sqlx::query_as!(
            LogLine,
            r#"select seq, at, stream, line as text from training_log
               where job_id = $1 and seq > $2 and ($3::text is null or strpos(lower(line), lower($3)) > 0)
               order by seq limit $4"#,
            id,
            seq,
            search,
            limit
        )
        .fetch_all(pool)
        .await?)
    }

    /// Checks that the caller may read job `id` (for the log stream).
    pub async fn authorize_read(ctx: &Ctx, id: Uuid) -> Result<TrainingJob, AppError> {
        get(ctx, id).await
    }

    /// The job's status and how many log lines it has, for the log stream.
    pub async fn progress(pool: &sqlx::PgPool, id: Uuid) -> Result<(String, bool), AppError> {
        let row =
            sqlx::query!(r#"select status::text as "status!", logs_done from training_job where job_id = $1"#, id)
                .fetch_one(pool)
                .await?;
        Ok((row.status, row.logs_done))
    }

    pub async fn metrics(ctx: &Ctx, id: Uuid) -> Result<Vec<MetricSeries>, AppError> {
        load(ctx, id, Action::ReadTeam).await?;
        let rows =
            sqlx::query!("select name, seq, at, value from training_metric where job_id = $1 order by name, seq", id)
                .fetch_all(ctx.pool())
                .await?;
        let mut series: Vec<MetricSeries> = Vec::new();
        for r in rows {
            if series.last().is_none_or(|s| s.name != r.name) {
                series.push(MetricSeries { name: r.name.clone(), points: Vec::new() });
            }
            if let Some(s) = series.last_mut() {
                s.points.push(MetricPoint { seq: r.seq, at: r.at, value: r.value });
            }
        }
        Ok(series)
    }

    /// Stores a script-mode source folder as a content-addressed
    /// `sourcedir.tar.gz` in the team's area of Capstan's bucket.
    pub async fn store_source(ctx: &Ctx, team: &str, files: Vec<(String, Vec<u8>)>) -> Result<SourceArchive, AppError> {
        use sha2::Digest as _;
        let (team, _) = crate::teams::ssr::load(ctx, team, Action::Contribute).await?;
        let mut errors = Vec::new();
        if files.is_empty() {
            errors.push(FieldError::new("files", "Choose the files of the source folder."));
        }
        let mut seen = HashSet::new();
        let mut clean = Vec::new();
        for (i, (path, body)) in files.into_iter().enumerate() {
            let p = path.trim().trim_start_matches("./").to_owned();
            let ok = p.len() <= 512 && storage::check_relative(&p).is_ok();
            if !ok {
                errors.push(FieldError::new(&format!("files[{i}]"), format!("`{path}` is not a relative file path.")));
            } else if !seen.insert(p.clone()) {
                errors.push(FieldError::new(&format!("files[{i}]"), format!("`{p}` is given twice.")));
            } else {
                clean.push((p, body));
            }
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        clean.sort();
        // A deterministic archive (fixed times and modes) so equal folders share one URI.
        let (archive, names, bytes) =
            tokio::task::spawn_blocking(move || -> anyhow::Result<(Vec<u8>, Vec<String>, i64)> {
                let mut tar =
                    tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()));
                let mut total = 0i64;
                for (path, body) in &clean {
                    let mut header = tar::Header::new_gnu();
                    header.set_size(body.len() as u64);
                    header.set_mode(0o644);
                    header.set_mtime(0);
                    header.set_cksum();
                    tar.append_data(&mut header, path, &body[..])?;
                    total += i64::try_from(body.len()).unwrap_or(i64::MAX);
                }
                let gz = tar.into_inner()?.finish()?;
                Ok((gz, clean.into_iter().map(|(p, _)| p).collect(), total))
            })
            .await
            .map_err(anyhow::Error::from)??;
        let digest = hex::encode(sha2::Sha256::digest(&archive));
        let key = format!("jobs/{}/sources/{}/sourcedir.tar.gz", team.slug, &digest[..32]);
        let storage = &ctx.state.storage;
        storage
            .client
            .put_object()
            .bucket(&storage.bucket)
            .key(&key)
            .body(archive.into())
            .send()
            .await
            .map_err(|e| AppError::Transport(storage::S3Failure::from(e).to_string()))?;
        Ok(SourceArchive { source_uri: format!("s3://{}/{key}", storage.bucket), files: names, bytes })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn engine_names_are_legal_and_stable() {
            let id = Uuid::now_v7();
            let long = "a".repeat(50);
            let name = engine_name(&long, id);
            assert_eq!(name.len(), 63);
            assert!(training::is_legal_job_name(&name));
            assert_eq!(name, engine_name(&long, id));
        }

        #[test]
        fn field_checks() {
            assert!(image_uri("123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1.0").is_ok());
            assert!(image_uri("123456789012.dkr.ecr.us-east-1.amazonaws.com/train@sha256:abc").is_ok());
            assert!(image_uri("docker.io/library/python:3").is_err());
            assert!(image_uri("not an image").is_err());
            assert!(metric_regex("loss=([0-9.]+)").is_ok());
            assert!(metric_regex("loss=[0-9.]+").is_err());
            assert!(metric_regex("loss=(").is_err());
            assert!(channel_name("train").is_ok() && channel_name("_x1").is_ok());
            assert!(channel_name("1train").is_err() && channel_name("tr-ain").is_err());
            assert!(entry_point("src/train.py").is_ok());
            assert!(entry_point("../train.py").is_err() && entry_point("/abs.py").is_err());
            assert!(role_arn("arn:aws:iam::123456789012:role/SageMaker").is_ok());
            assert!(role_arn("arn:aws:iam::123:role/x").is_err());
        }

        #[test]
        fn costs() {
            let c = cost("completed", Some(3.6), 2, 7200, true, None, Some(600), Some(1000));
            assert!((c.actual_usd.unwrap_or_default() - 1.2).abs() < 1e-9);
            assert!((c.worst_case_usd.unwrap_or_default() - 14.4).abs() < 1e-9);
            assert!((c.spot_savings.unwrap_or_default() - 0.4).abs() < 1e-9);
            let running = cost(
                "training",
                Some(3.6),
                1,
                7200,
                false,
                Some(OffsetDateTime::now_utc() - time::Duration::seconds(100)),
                None,
                None,
            );
            assert!(running.accrued_usd.unwrap_or_default() >= 0.099);
            assert!(running.actual_usd.is_none());
        }
    }
}
