//! Where endpoints run: one trait, [`Serving`], that Capstan's endpoints
//! capability and its gateway call, with two implementations: the local one
//! ([`local::LocalServing`]) starts each variant's inference server as
//! sandboxed processes on this machine, following SageMaker's inference
//! contract (`GET /ping`, `POST /invocations`, the model unpacked where
//! `SM_MODEL_DIR` says); the SageMaker one ([`sagemaker::SageMakerServing`])
//! deploys real-time endpoints and invokes them through SageMaker Runtime.

pub mod capture;
pub mod cloudwatch;
pub mod local;
pub mod sagemaker;
#[cfg(any(test, feature = "test-support"))]
pub mod standin;
pub mod traffic;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

/// SageMaker Runtime's limit on a request or an answer body (6 MB).
pub const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

/// A variant whose model or size changed keeps its previous processes
/// serving until the new ones are healthy; they are reported under
/// ordinals from here (and do not count towards the endpoint being in service).
pub const RETIRING_ORDINAL: u32 = 1000;

/// Aborts the process at `point` when the test-only setting
/// `CAPSTAN_FAULT_POINT` names it (the crash-safety tests kill Capstan
/// there); does nothing otherwise.
pub fn fault_point(point: &str) {
    if std::env::var("CAPSTAN_FAULT_POINT").is_ok_and(|p| p == point) {
        eprintln!("fault point {point}: aborting");
        std::process::abort();
    }
}

/// One variant of an endpoint as the backend deploys it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantSpec {
    pub name: String,
    /// The version's `model.tar.gz`.
    pub model_uri: String,
    /// The training job's source archive (`sourcedir.tar.gz`), when the
    /// version came from a job: the inference code is looked for there when
    /// the model archive has no `code/inference.py`.
    pub code_uri: Option<String>,
    /// The inference image (SageMaker).
    pub image: Option<String>,
    pub instance_type: String,
    pub instance_count: u32,
    pub weight: f64,
    /// The shadow variant, with the percentage of requests it receives a
    /// copy of (`None`: a production variant).
    pub shadow_percent: Option<u32>,
}

/// What an endpoint should be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointSpec {
    /// The engine name: unique on the site, legal on SageMaker.
    pub name: String,
    /// The owning team's id, for its cached virtual environments.
    pub team: String,
    /// The owning team's slug: its area of the bucket (data capture).
    pub team_slug: String,
    /// The IAM role SageMaker runs the models as (the team's own, when it
    /// has one; else the site's).
    pub role: Option<String>,
    /// Data capture: the percentage of requests and answers written to the
    /// team's area of the bucket.
    pub capture_percent: Option<u32>,
    pub variants: Vec<VariantSpec>,
    /// AWS mode: how SageMaker shifts traffic to the new fleet when this
    /// spec replaces one (`UpdateEndpoint`'s `DeploymentConfig`); `None`:
    /// SageMaker's default, all at once. The local backend has no fleets.
    #[serde(default)]
    pub blue_green: Option<BlueGreen>,
}

/// SageMaker's blue/green update of an endpoint's fleet under the same
/// variant names: traffic shifted from the old fleet to the new one all at
/// once, by a canary, or linearly, with a baking period after each shift,
/// and rolled back when one of the CloudWatch alarms goes off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlueGreen {
    pub traffic: FleetTraffic,
    /// The baking period after each shift (`WaitIntervalInSeconds`).
    pub wait_seconds: u32,
    /// How long the old fleet is kept after the last shift.
    pub termination_wait_seconds: u32,
    /// CloudWatch alarms that roll the update back (`AutoRollbackConfiguration`).
    pub alarms: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum FleetTraffic {
    AllAtOnce,
    /// The percentage of the new fleet's capacity turned on first.
    Canary(u32),
    /// The percentage of capacity shifted at each step.
    Linear(u32),
}

impl EndpointSpec {
    pub fn production(&self) -> impl Iterator<Item = &VariantSpec> {
        self.variants.iter().filter(|v| v.shadow_percent.is_none())
    }

    pub fn shadow(&self) -> Option<&VariantSpec> {
        self.variants.iter().find(|v| v.shadow_percent.is_some())
    }
}

/// Whether Capstan's gateway copies requests to the shadow variant itself.
/// SageMaker copies them on its own (`ShadowProductionVariants`) only beside
/// exactly one production variant; with several, or in local mode, the
/// gateway does, for the traffic that goes through it.
pub fn gateway_copies_shadow(backend: &str, production_variants: usize) -> bool {
    backend != "sagemaker" || production_variants != 1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InstanceStatus {
    /// Started, not yet answering `/ping`.
    Starting,
    /// Answers `/ping`: takes traffic.
    Healthy,
    /// Running but failing its health checks: no traffic; restarted soon.
    Unhealthy,
    /// Exited; restarted after a back-off.
    Crashed,
    Stopped,
}

impl InstanceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "Starting",
            Self::Healthy => "Healthy",
            Self::Unhealthy => "Unhealthy",
            Self::Crashed => "Crashed",
            Self::Stopped => "Stopped",
        }
    }
}

/// One serving process of a variant, as last seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    pub variant: String,
    pub ordinal: u32,
    /// Where it listens (loopback).
    pub address: Option<SocketAddr>,
    pub status: InstanceStatus,
    pub restarts: u32,
    /// Why it is not healthy (the end of its output), or what it is doing.
    pub message: Option<String>,
}

/// An invocation, as the gateway passes it on.
#[derive(Debug, Clone)]
pub struct Request {
    pub body: Bytes,
    pub content_type: Option<String>,
    pub accept: Option<String>,
}

/// The model's answer, whatever its status.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
    pub content_type: Option<String>,
}

/// Where an invocation goes: an endpoint's variant, and in local mode the
/// process the gateway picked.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub endpoint: &'a str,
    pub variant: &'a str,
    pub address: Option<SocketAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// No process of the variant can take the request.
    #[error("{0}")]
    Unavailable(String),
    #[error("the model did not answer within {0:?}")]
    Timeout(Duration),
    /// The answer was larger than SageMaker allows.
    #[error("the model's answer is larger than 6 MB")]
    TooLarge,
}

/// What the backend itself says of an endpoint (SageMaker's
/// DescribeEndpoint), where it keeps a status of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct Described {
    /// One of Capstan's endpoint statuses: `Creating`, `InService`,
    /// `Updating`, `RollingBack`, `Failed`, `Deleting`.
    pub status: &'static str,
    pub reason: Option<String>,
    /// The instances of each variant, as counted by the backend.
    pub instances: Vec<Instance>,
}

/// One minute of one variant as the backend's own metrics count it
/// (SageMaker: CloudWatch; see [`cloudwatch`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VariantMinute {
    pub variant: String,
    /// The minute's start, in seconds since the epoch.
    pub minute: i64,
    pub invocations: f64,
    pub errors_4xx: f64,
    pub errors_5xx: f64,
    /// Model latency percentiles in milliseconds, when the backend has them.
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// The instances' average CPU use, in percent of one vCPU (SageMaker's
    /// `CPUUtilization`: 0 to 100 × vCPUs), when the backend has it.
    pub cpu_percent: Option<f64>,
    /// The instances' average memory use, in percent, when the backend has it.
    pub memory_percent: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServingError {
    /// The endpoint is changing (creating, updating): asked again later.
    #[error("{0}")]
    Busy(String),
    /// The endpoint cannot be deployed as asked (no inference code, an
    /// unreadable artifact): the reason is shown to the user.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

#[async_trait::async_trait]
pub trait Serving: Send + Sync {
    /// Brings endpoint `spec.name` to `spec`: starts what is missing,
    /// replaces variants whose model or size changed, stops variants that
    /// are gone. Calling it again with the same spec changes nothing.
    async fn deploy(&self, spec: &EndpointSpec) -> Result<(), ServingError>;

    /// Stops and removes endpoint `name` (nothing when it does not exist).
    async fn remove(&self, name: &str) -> Result<(), ServingError>;

    /// Stops the processes of endpoint `name` in this process, leaving the
    /// endpoint itself as it is (this process stops serving).
    fn stop(&self, name: &str);

    /// The processes of endpoint `name` (local mode; empty on SageMaker).
    fn instances(&self, name: &str) -> Vec<Instance>;

    /// Names of the endpoints this backend runs.
    fn running(&self) -> Vec<String>;

    /// The backend's own view of endpoint `name`, when it keeps one
    /// (SageMaker: status, failure reason, instance counts); `None` when the
    /// status follows from [`Serving::instances`] (local mode).
    async fn describe(&self, _name: &str) -> Result<Option<Described>, ServingError> {
        Ok(None)
    }

    /// The backend's own per-minute figures of `variants` of endpoint
    /// `name` from minute `since` to minute `until` (seconds since the
    /// epoch): SageMaker's CloudWatch metrics. Empty where the backend
    /// keeps none (local mode: the gateway sees every request).
    async fn variant_metrics(
        &self,
        _name: &str,
        _variants: &[String],
        _since: i64,
        _until: i64,
    ) -> Result<Vec<VariantMinute>, ServingError> {
        Ok(Vec::new())
    }

    /// The state (`OK`, `ALARM`, `INSUFFICIENT_DATA`) of each of the
    /// backend's alarms `names` that exists (SageMaker: CloudWatch metric
    /// alarms). Empty where the backend has none (local mode).
    async fn alarm_states(&self, _names: &[String]) -> Result<Vec<(String, String)>, ServingError> {
        Ok(Vec::new())
    }

    /// Sends `request` to `target` and returns the model's answer.
    async fn invoke(&self, target: &Target<'_>, request: Request, timeout: Duration) -> Result<Answer, InvokeError>;
}
