//! Training backends for Capstan. One interface ([`Backend`]) with two
//! implementations: [`sagemaker::SageMaker`] (CreateTrainingJob and friends,
//! CloudWatch Logs) and [`local::LocalRunner`], which runs the same training
//! script on this machine following SageMaker's script-mode contract. The
//! database, queueing and reconciliation live in the app; this crate only
//! talks to the engines.
//!
//! [`standin::StandIn`] is a small SageMaker API stand-in for tests and
//! benchmarks of what the emulator (moto) lacks: StopTrainingJob, jobs that
//! stay in progress, "already exists" on a repeated name, call counting.

pub mod archive;
pub mod local;
pub mod packages;
pub mod sagemaker;
pub mod sandbox;
#[cfg(any(test, feature = "test-support"))]
pub mod standin;
pub mod venv;

pub use aws_sdk_sagemaker;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// The tag that marks a SageMaker job as Capstan's, holding the job's id.
pub const JOB_ID_TAG: &str = "capstan:job-id";

/// What to run: everything the engine needs, already validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// The engine-side name (SageMaker-legal, unique).
    pub name: String,
    /// Capstan's id for the job, tagged onto it so "already exists" can be
    /// told apart from someone else's job of the same name.
    pub job_id: String,
    /// Container image: the user's own, or the framework image for script mode.
    pub image: Option<String>,
    /// Script mode: run `entry_point` from the source archive.
    pub script: Option<Script>,
    pub instance_type: String,
    pub instance_count: i32,
    pub volume_gb: i32,
    pub max_runtime_seconds: i32,
    pub spot: Option<Spot>,
    pub hyperparameters: BTreeMap<String, String>,
    pub metric_definitions: Vec<MetricDefinition>,
    pub channels: Vec<Channel>,
    /// `s3://bucket/prefix/`: the artifact lands at `<output>/<name>/output/model.tar.gz`.
    pub output_uri: String,
    pub tags: BTreeMap<String, String>,
    pub role_arn: Option<String>,
    pub region: String,
    /// The owning team's id: the local runner keeps caches (virtual
    /// environments) per team, never shared across teams.
    #[serde(default)]
    pub team: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Script {
    pub entry_point: String,
    /// `s3://…/sourcedir.tar.gz`
    pub source_uri: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spot {
    pub max_wait_seconds: i32,
    pub checkpoint_uri: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricDefinition {
    pub name: String,
    pub regex: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    pub name: String,
    /// `s3://bucket/prefix/`
    pub uri: String,
}

/// Where a job is, in Capstan's terms (SageMaker's primary status refined
/// by its secondary status). The app maps it onto its job status
/// (`TrainingStatus`), which holds the one rule for what is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Starting,
    Downloading,
    Training,
    Uploading,
    Stopping,
    Completed,
    Failed,
    Stopped,
}

impl Phase {
    /// Maps SageMaker's `TrainingJobStatus` + `SecondaryStatus`.
    pub fn from_sagemaker(status: &str, secondary: &str) -> Self {
        match status {
            "Completed" => Self::Completed,
            "Failed" => Self::Failed,
            "Stopping" => Self::Stopping,
            "Stopped" => Self::Stopped,
            _ => match secondary {
                "Downloading" | "DownloadingTrainingImage" => Self::Downloading,
                "Training" => Self::Training,
                "Uploading" => Self::Uploading,
                "Stopping" => Self::Stopping,
                _ => Self::Starting,
            },
        }
    }
}

/// One secondary-status transition (SageMaker's `SecondaryStatusTransitions`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub status: String,
    #[serde(with = "time::serde::rfc3339")]
    pub start: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub end: Option<OffsetDateTime>,
    pub message: String,
}

/// A job's state as the engine reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Description {
    pub name: String,
    /// SageMaker's primary status: InProgress, Completed, Failed, Stopping, Stopped.
    pub status: String,
    pub secondary_status: String,
    pub failure_reason: Option<String>,
    pub transitions: Vec<Transition>,
    pub artifact_uri: Option<String>,
    pub billable_seconds: Option<i64>,
    pub training_seconds: Option<i64>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub training_start: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub training_end: Option<OffsetDateTime>,
    /// SageMaker's `FinalMetricDataList` (name, value).
    pub final_metrics: Vec<(String, f64)>,
    #[serde(with = "time::serde::rfc3339")]
    pub last_modified: OffsetDateTime,
}

impl Description {
    pub fn phase(&self) -> Phase {
        Phase::from_sagemaker(&self.status, &self.secondary_status)
    }
}

/// One row of a job listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub name: String,
    pub status: String,
    pub secondary_status: Option<String>,
    pub created: OffsetDateTime,
    pub last_modified: OffsetDateTime,
}

/// One page of a listing; `next_token` continues it.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub jobs: Vec<Summary>,
    pub next_token: Option<String>,
}

/// A log line from the job's container (or the local runner).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub stream: String,
    pub text: String,
}

/// New log lines and the opaque cursor to read on from.
#[derive(Debug, Clone, Default)]
pub struct LogChunk {
    pub lines: Vec<LogLine>,
    pub cursor: Option<String>,
}

/// Why a backend call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    #[error("a job named {0} already exists")]
    AlreadyExists(String),
    #[error("no job named {0}")]
    NotFound(String),
    /// The engine asked us to slow down; retry later.
    #[error("{code}: {message}")]
    Throttled { code: String, message: String },
    /// Any other engine error, with the AWS error code.
    #[error("{code}: {message}")]
    Aws { code: String, message: String },
}

impl BackendError {
    pub fn code(&self) -> &str {
        match self {
            Self::AlreadyExists(_) => "ResourceInUse",
            Self::NotFound(_) => "ResourceNotFound",
            Self::Throttled { code, .. } | Self::Aws { code, .. } => code,
        }
    }

    /// Whether retrying the same call later can succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Throttled { .. } => true,
            Self::Aws { code, .. } => {
                matches!(code.as_str(), "ConnectionFailed" | "Timeout" | "InternalFailure" | "ServiceUnavailable")
            }
            _ => false,
        }
    }
}

/// A training engine.
#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    /// `"sagemaker"` or `"local"`.
    fn kind(&self) -> &'static str;
    /// How many more jobs this engine takes now; `None` when it queues
    /// them itself (SageMaker). A local runner takes only what it can run,
    /// so the jobs spread over the Capstan processes sharing a database.
    fn free_slots(&self) -> Option<usize> {
        None
    }
    /// Whether a job lives on when the Capstan process that launched it
    /// dies (SageMaker), or dies with it (the local runner).
    fn outlives_process(&self) -> bool {
        true
    }
    /// Creates the job; [`BackendError::AlreadyExists`] when the name is taken.
    async fn create(&self, spec: &JobSpec) -> Result<(), BackendError>;
    /// The `capstan:job-id` tag of an existing job (to tell whether it is ours).
    async fn job_id_tag(&self, name: &str) -> Result<Option<String>, BackendError>;
    async fn describe(&self, name: &str) -> Result<Description, BackendError>;
    /// Jobs created after `created_after`, oldest first, one page at a time.
    async fn list(&self, created_after: OffsetDateTime, next_token: Option<String>) -> Result<Page, BackendError>;
    async fn stop(&self, name: &str) -> Result<(), BackendError>;
    /// Log lines after `cursor` (all from the start when `None`).
    async fn logs(&self, name: &str, cursor: Option<&str>) -> Result<LogChunk, BackendError>;
}

/// Whether `name` is a legal SageMaker job name: 1–63 letters, digits and
/// hyphens, starting with a letter or digit, no `--` runs at the end.
pub fn is_legal_job_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_follow_sagemaker_statuses() {
        assert_eq!(Phase::from_sagemaker("InProgress", "LaunchingMLInstances"), Phase::Starting);
        assert_eq!(Phase::from_sagemaker("InProgress", "DownloadingTrainingImage"), Phase::Downloading);
        assert_eq!(Phase::from_sagemaker("InProgress", "Training"), Phase::Training);
        assert_eq!(Phase::from_sagemaker("InProgress", "Uploading"), Phase::Uploading);
        assert_eq!(Phase::from_sagemaker("Stopping", "Stopping"), Phase::Stopping);
        assert_eq!(Phase::from_sagemaker("Stopped", "MaxRuntimeExceeded"), Phase::Stopped);
        assert_eq!(Phase::from_sagemaker("Failed", "Failed"), Phase::Failed);
    }

    #[test]
    fn job_names() {
        assert!(is_legal_job_name("churn-model-0193ab12cd34"));
        assert!(!is_legal_job_name("-lead"));
        assert!(!is_legal_job_name("trail-"));
        assert!(!is_legal_job_name("under_score"));
        assert!(!is_legal_job_name(&"a".repeat(64)));
    }
}
