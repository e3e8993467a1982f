//! Wire types of training: launch requests, jobs with their timeline, cost
//! and metrics, log lines, launch options, and the price table.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct InstancePrice {
    pub instance_type: String,
    pub usd_per_hour: f64,
    /// Who last edited the price (none: as seeded from the data file).
    pub edited_by: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>, format = DateTime))]
    pub edited_at: Option<time::OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PriceTable {
    pub region: String,
    /// Where the seeded prices come from, and when they were taken.
    pub source: String,
    pub as_of: String,
    pub prices: Vec<InstancePrice>,
}

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
    #[cfg_attr(feature = "ssr", schema(max_length = 50, pattern = r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$"))]
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
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 100))]
    pub instance_count: i32,
    #[serde(default = "default_volume")]
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 16384))]
    pub volume_gb: i32,
    #[serde(default = "default_runtime")]
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 2419200))]
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

/// What running the demo made: its training job, a second job with other
/// hyperparameters (its version becomes the challenger beside the first
/// one's champion), and the demo's second user when this run created it
/// (the password is shown only here, once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Demo {
    pub job: TrainingJob,
    pub challenger: TrainingJob,
    pub reviewer: Option<DemoReviewer>,
}

/// The demo's second user, an approver of the demo team.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoReviewer {
    pub email: String,
    pub password: String,
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
    pub status: TrainingStatus,
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
        self.status.is_final()
    }
}

/// Where a training job is: SageMaker's statuses, lowercase, plus
/// `requested` (written, not yet created on the engine) and `stopping`.
/// The database has the same enum (`training_status`); its
/// `training_status_is_final` is the same rule as [`Self::is_final`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, sqlx::Type))]
#[cfg_attr(feature = "ssr", sqlx(type_name = "training_status", rename_all = "lowercase"))]
pub enum TrainingStatus {
    Requested,
    Starting,
    Downloading,
    Training,
    Uploading,
    Stopping,
    Completed,
    Failed,
    Stopped,
}

impl TrainingStatus {
    pub const ALL: [Self; 9] = [
        Self::Requested,
        Self::Starting,
        Self::Downloading,
        Self::Training,
        Self::Uploading,
        Self::Stopping,
        Self::Completed,
        Self::Failed,
        Self::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Starting => "starting",
            Self::Downloading => "downloading",
            Self::Training => "training",
            Self::Uploading => "uploading",
            Self::Stopping => "stopping",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Stopped => "stopped",
        }
    }

    /// Finished: nothing more will happen to the job (its logs may still be read).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Stopped)
    }
}

impl std::fmt::Display for TrainingStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TrainingStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|v| v.as_str() == s).ok_or_else(|| format!("`{s}` is not a training status"))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TrainingJobSummary {
    pub id: Uuid,
    pub name: String,
    pub backend: String,
    pub status: TrainingStatus,
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
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
pub struct JobQuery {
    /// Only jobs with this status (`running` means any not finished).
    pub status: Option<String>,
    pub cursor: Option<String>,
    #[cfg_attr(feature = "ssr", param(minimum = 1, maximum = 200))]
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
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
pub struct LogQuery {
    /// Only lines containing this text (case-insensitive).
    pub q: Option<String>,
    pub cursor: Option<String>,
    #[cfg_attr(feature = "ssr", param(minimum = 1, maximum = 5000))]
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
