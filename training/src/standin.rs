//! A SageMaker API stand-in on loopback, for tests and benchmarks of what
//! moto does not model: jobs that stay in progress until told otherwise,
//! `ResourceInUse` for a repeated name, StopTrainingJob, ListTags, throttling,
//! and a count of every call. It speaks the same JSON protocol as SageMaker
//! (`X-Amz-Target: SageMaker.<Operation>`), so the real SDK client talks to it.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
struct Job {
    request: Value,
    status: String,
    secondary: String,
    failure_reason: Option<String>,
    created: f64,
    modified: f64,
    transitions: Vec<Value>,
}

#[derive(Default)]
struct World {
    jobs: BTreeMap<String, Job>,
    calls: HashMap<String, u64>,
    /// Calls still to answer with ThrottlingException.
    throttle: u32,
    /// Notified after the next CreateTrainingJob is recorded; that call then
    /// never answers (as if the caller died before reading the reply).
    hold_create: Option<tokio::sync::oneshot::Sender<()>>,
    /// An error (code, message) to answer the next CreateTrainingJob with.
    fail_create: Option<(String, String)>,
}

pub struct StandIn {
    /// `http://127.0.0.1:<port>`
    pub url: String,
    world: Arc<Mutex<World>>,
    server: tokio::task::JoinHandle<()>,
}

fn now() -> f64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as f64 / 1e9
}

impl StandIn {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let world = Arc::new(Mutex::new(World::default()));
        let shared = world.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: axum::body::Bytes| {
            let world = shared.clone();
            async move { handle(world, headers, body).await }
        });
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, world, server })
    }

    fn with<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        let mut world = self.world.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut world)
    }

    /// Calls of `operation` (e.g. `CreateTrainingJob`) so far.
    pub fn calls(&self, operation: &str) -> u64 {
        self.with(|w| w.calls.get(operation).copied().unwrap_or(0))
    }

    /// All calls so far.
    pub fn total_calls(&self) -> u64 {
        self.with(|w| w.calls.values().sum())
    }

    pub fn reset_calls(&self) {
        self.with(|w| w.calls.clear());
    }

    pub fn job_names(&self) -> Vec<String> {
        self.with(|w| w.jobs.keys().cloned().collect())
    }

    /// The CreateTrainingJob request a job was made from.
    pub fn request(&self, name: &str) -> Option<Value> {
        self.with(|w| w.jobs.get(name).map(|j| j.request.clone()))
    }

    /// Moves a job along, as SageMaker would (a transition is recorded).
    pub fn set_status(&self, name: &str, status: &str, secondary: &str, failure_reason: Option<&str>) {
        self.with(|w| {
            if let Some(job) = w.jobs.get_mut(name) {
                let t = now();
                if let Some(last) = job.transitions.last_mut() {
                    last["EndTime"] = json!(t);
                }
                job.transitions.push(
                    json!({"Status": secondary, "StartTime": t, "StatusMessage": format!("{secondary} (stand-in)")}),
                );
                job.status = status.to_owned();
                job.secondary = secondary.to_owned();
                job.failure_reason = failure_reason.map(str::to_owned);
                job.modified = t;
            }
        });
    }

    /// Answers the next `n` calls with ThrottlingException.
    pub fn throttle(&self, n: u32) {
        self.with(|w| w.throttle = n);
    }

    /// The next CreateTrainingJob fails with this AWS error code and message
    /// (e.g. ResourceLimitExceeded) and creates nothing.
    pub fn fail_next_create(&self, code: &str, message: &str) {
        self.with(|w| w.fail_create = Some((code.to_owned(), message.to_owned())));
    }

    /// The next CreateTrainingJob is recorded and then never answered; the
    /// receiver fires once it is recorded.
    pub fn hold_next_create(&self) -> tokio::sync::oneshot::Receiver<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.with(|w| w.hold_create = Some(tx));
        rx
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn error(code: &str, message: &str) -> Response {
    (StatusCode::BAD_REQUEST, [("x-amzn-errortype", code)], axum::Json(json!({"__type": code, "message": message})))
        .into_response()
}

fn arn(name: &str) -> String {
    format!("arn:aws:sagemaker:us-east-1:000000000000:training-job/{name}")
}

async fn handle(world: Arc<Mutex<World>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let operation = target.strip_prefix("SageMaker.").unwrap_or(target).to_owned();
    let input: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut held = None;
    let response = {
        let mut w = world.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *w.calls.entry(operation.clone()).or_default() += 1;
        if w.throttle > 0 {
            w.throttle -= 1;
            return error("ThrottlingException", "Rate exceeded");
        }
        let name = input["TrainingJobName"].as_str().unwrap_or_default().to_owned();
        match operation.as_str() {
            "CreateTrainingJob" => {
                if let Some((code, message)) = w.fail_create.take() {
                    error(&code, &message)
                } else if w.jobs.contains_key(&name) {
                    error("ResourceInUse", &format!("Training job {name} already exists"))
                } else {
                    let t = now();
                    w.jobs.insert(
                        name.clone(),
                        Job {
                            request: input.clone(),
                            status: "InProgress".into(),
                            secondary: "Starting".into(),
                            failure_reason: None,
                            created: t,
                            modified: t,
                            transitions: vec![json!({"Status": "Starting", "StartTime": t, "StatusMessage": "Launching requested ML instances (stand-in)"})],
                        },
                    );
                    held = w.hold_create.take();
                    axum::Json(json!({"TrainingJobArn": arn(&name)})).into_response()
                }
            }
            "DescribeTrainingJob" => match w.jobs.get(&name) {
                None => error("ValidationException", &format!("Requested resource not found: {name}")),
                Some(job) => {
                    let r = &job.request;
                    let output =
                        r["OutputDataConfig"]["S3OutputPath"].as_str().unwrap_or_default().trim_end_matches('/');
                    let mut out = json!({
                        "TrainingJobName": name,
                        "TrainingJobArn": arn(&name),
                        "TrainingJobStatus": job.status,
                        "SecondaryStatus": job.secondary,
                        "CreationTime": job.created,
                        "LastModifiedTime": job.modified,
                        "AlgorithmSpecification": r["AlgorithmSpecification"],
                        "ResourceConfig": r["ResourceConfig"],
                        "StoppingCondition": r["StoppingCondition"],
                        "HyperParameters": r["HyperParameters"],
                        "ModelArtifacts": {"S3ModelArtifacts": format!("{output}/{name}/output/model.tar.gz")},
                        "SecondaryStatusTransitions": job.transitions,
                        "EnableManagedSpotTraining": r["EnableManagedSpotTraining"].as_bool().unwrap_or(false),
                    });
                    if let Some(reason) = &job.failure_reason {
                        out["FailureReason"] = json!(reason);
                    }
                    if matches!(job.status.as_str(), "Completed" | "Stopped" | "Failed") {
                        let seconds = (job.modified - job.created).max(1.0).round() as i64;
                        out["TrainingStartTime"] = json!(job.created);
                        out["TrainingEndTime"] = json!(job.modified);
                        out["TrainingTimeInSeconds"] = json!(seconds);
                        let spot = r["EnableManagedSpotTraining"].as_bool().unwrap_or(false);
                        out["BillableTimeInSeconds"] = json!(if spot { (seconds * 3 + 9) / 10 } else { seconds });
                    }
                    axum::Json(out).into_response()
                }
            },
            "ListTrainingJobs" => {
                let after = input["CreationTimeAfter"].as_f64().unwrap_or(0.0);
                let max = input["MaxResults"].as_u64().unwrap_or(10).clamp(1, 100) as usize;
                let start: usize = input["NextToken"].as_str().and_then(|t| t.parse().ok()).unwrap_or(0);
                let mut jobs: Vec<(&String, &Job)> = w.jobs.iter().filter(|(_, j)| j.created > after).collect();
                jobs.sort_by(|a, b| a.1.created.total_cmp(&b.1.created).then_with(|| a.0.cmp(b.0)));
                let page: Vec<Value> = jobs
                    .iter()
                    .skip(start)
                    .take(max)
                    .map(|(name, j)| {
                        json!({
                            "TrainingJobName": name,
                            "TrainingJobArn": arn(name),
                            "CreationTime": j.created,
                            "LastModifiedTime": j.modified,
                            "TrainingJobStatus": j.status,
                            "SecondaryStatus": j.secondary,
                        })
                    })
                    .collect();
                let mut out = json!({"TrainingJobSummaries": page});
                if start + max < jobs.len() {
                    out["NextToken"] = json!((start + max).to_string());
                }
                axum::Json(out).into_response()
            }
            "StopTrainingJob" => match w.jobs.get_mut(&name) {
                None => error("ValidationException", &format!("Requested resource not found: {name}")),
                Some(job) if job.status != "InProgress" => {
                    error("ValidationException", &format!("The job {name} is not in progress"))
                }
                Some(job) => {
                    let t = now();
                    job.status = "Stopped".into();
                    job.secondary = "Stopped".into();
                    job.modified = t;
                    job.transitions.push(json!({"Status": "Stopped", "StartTime": t, "EndTime": t, "StatusMessage": "Stopped (stand-in)"}));
                    axum::Json(json!({})).into_response()
                }
            },
            "ListTags" => {
                let arn_in = input["ResourceArn"].as_str().unwrap_or_default();
                let job = w.jobs.iter().find(|(n, _)| arn(n) == arn_in).map(|(_, j)| j);
                match job {
                    None => error("ValidationException", "Requested resource not found"),
                    Some(job) => axum::Json(json!({"Tags": job.request["Tags"].clone()})).into_response(),
                }
            }
            other => error("UnknownOperationException", &format!("the stand-in does not implement {other}")),
        }
    };
    if let Some(tx) = held {
        let _ = tx.send(());
        // Never answer: the caller is meant to die waiting.
        std::future::pending::<()>().await;
    }
    response
}
