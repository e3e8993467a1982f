//! The local runner: runs a script-mode job on this machine the way
//! SageMaker's training toolkit runs it in a container. Each job gets a
//! working directory laid out like `/opt/ml`:
//!
//! ```text
//! <root>/jobs/<name>/
//!   state.json                  what `describe` answers (survives restarts)
//!   logs.jsonl                  captured stdout/stderr and runner messages
//!   code/                       sourcedir.tar.gz unpacked; the working directory
//!   input/config/hyperparameters.json, resourceconfig.json, inputdataconfig.json
//!   input/data/<channel>/       the channel's objects, downloaded from S3
//!   model/                      SM_MODEL_DIR, packed as model.tar.gz when done
//!   output/data/                SM_OUTPUT_DATA_DIR, packed as output.tar.gz
//! ```
//!
//! The entry point runs as `python <entry_point> --<name> <value> …` with the
//! `SM_*` environment of the toolkit. A `requirements.txt` is installed into
//! a virtual environment cached by the file's hash. At most `max_jobs` run at
//! once; the rest wait for a slot. Stop sends SIGTERM to the script's process
//! group, then SIGKILL after the grace period.
//!
//! A job's script dies with the Capstan process that runs it. When another
//! process (or this one, restarted) is asked to create a job whose folder a
//! dead process left unfinished, it clears the folder and runs the job again;
//! the log cursor names the run, so readers start the new run's log afresh.

use crate::{Backend, BackendError, Description, JobSpec, LogChunk, LogLine, Page, Summary, Transition};
use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
use tokio::sync::{Semaphore, watch};

use crate::sandbox::HOST;

/// How many stderr lines a failure reason quotes.
const FAILURE_TAIL: usize = 12;

#[derive(Clone, Debug)]
pub struct LocalConfig {
    /// Holds `jobs/` and `venvs/`.
    pub root: PathBuf,
    /// Where scripts run (and virtual environments are built), with the
    /// Python interpreter that runs them.
    pub sandbox: crate::sandbox::Sandbox,
    /// Jobs running at once; more wait in a queue.
    pub max_jobs: usize,
    /// Time between SIGTERM and SIGKILL when a job is stopped.
    pub stop_grace: Duration,
}

pub struct LocalRunner {
    inner: Arc<Inner>,
}

struct Inner {
    config: LocalConfig,
    s3: storage::aws_sdk_s3::Client,
    slots: Semaphore,
    /// Jobs this process runs: name → stop signal.
    running: Mutex<HashMap<String, watch::Sender<bool>>>,
    venvs: crate::venv::Venvs,
}

/// What `state.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    job_id: String,
    /// Tells one run of the job from a later one in the same folder.
    #[serde(default)]
    run: String,
    #[serde(with = "time::serde::rfc3339")]
    created: OffsetDateTime,
    description: Description,
}

impl LocalRunner {
    pub fn new(config: LocalConfig, s3: storage::aws_sdk_s3::Client) -> Self {
        let slots = Semaphore::new(config.max_jobs.max(1));
        let venvs = crate::venv::Venvs::new(config.root.join("venvs"), config.sandbox.clone());
        Self { inner: Arc::new(Inner { config, s3, slots, running: Mutex::new(HashMap::new()), venvs }) }
    }

    /// The working directory of job `name`.
    pub fn job_dir(&self, name: &str) -> PathBuf {
        self.inner.job_dir(name)
    }
}

impl Inner {
    fn job_dir(&self, name: &str) -> PathBuf {
        self.config.root.join("jobs").join(name)
    }

    fn load(&self, name: &str) -> Result<State, BackendError> {
        if !crate::is_legal_job_name(name) {
            return Err(BackendError::NotFound(name.to_owned()));
        }
        let text = std::fs::read_to_string(self.job_dir(name).join("state.json"))
            .map_err(|_| BackendError::NotFound(name.to_owned()))?;
        serde_json::from_str(&text).map_err(|e| local_error(format!("state of {name} unreadable: {e}")))
    }

    fn save(&self, state: &State) -> Result<(), BackendError> {
        let dir = self.job_dir(&state.description.name);
        let tmp = dir.join("state.json.tmp");
        let text = serde_json::to_vec_pretty(state).map_err(|e| local_error(e.to_string()))?;
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, dir.join("state.json")))
            .map_err(|e| local_error(format!("cannot write the state of {}: {e}", state.description.name)))
    }

    /// Whether the folder of job `name` is what a dead process left of the
    /// same job: not running here and not finished (or never written).
    fn is_leftover(&self, name: &str, job_id: &str) -> bool {
        let ours = self.running.lock().map(|r| r.contains_key(name)).unwrap_or(true);
        if ours {
            return false;
        }
        match self.load(name) {
            Ok(state) => {
                state.job_id == job_id
                    && !matches!(state.description.status.as_str(), "Completed" | "Failed" | "Stopped")
            }
            Err(_) => true,
        }
    }

    /// Applies `change` to the saved state (read, modify, write).
    fn update(&self, name: &str, change: impl FnOnce(&mut Description)) {
        match self.load(name) {
            Ok(mut state) => {
                change(&mut state.description);
                state.description.last_modified = OffsetDateTime::now_utc();
                if let Err(e) = self.save(&state) {
                    tracing::error!(job = name, error = %e, "cannot save local job state");
                }
            }
            Err(e) => tracing::error!(job = name, error = %e, "cannot load local job state"),
        }
    }

    /// Moves the job to a new secondary status, closing the previous one.
    fn transition(&self, name: &str, status: &str, secondary: &str, message: &str) {
        let now = OffsetDateTime::now_utc();
        self.update(name, |d| {
            if let Some(last) = d.transitions.last_mut()
                && last.end.is_none()
            {
                last.end = Some(now);
            }
            d.transitions.push(Transition {
                status: secondary.to_owned(),
                start: now,
                end: None,
                message: message.to_owned(),
            });
            d.status = status.to_owned();
            d.secondary_status = secondary.to_owned();
        });
    }
}

fn local_error(message: String) -> BackendError {
    BackendError::Aws { code: "LocalRunnerError".into(), message }
}

/// Appends log lines to `logs.jsonl`.
#[derive(Clone)]
struct LogSink {
    file: Arc<tokio::sync::Mutex<tokio::fs::File>>,
}

/// A job log's lines written by Capstan itself (not the script).
struct CapstanLines<'a>(&'a LogSink);

impl crate::venv::Progress for CapstanLines<'_> {
    async fn line(&self, text: &str) {
        self.0.line("capstan", text).await;
    }
}

impl LogSink {
    async fn open(path: &Path) -> anyhow::Result<Self> {
        let file = tokio::fs::OpenOptions::new().create(true).append(true).open(path).await?;
        Ok(Self { file: Arc::new(tokio::sync::Mutex::new(file)) })
    }

    async fn line(&self, stream: &str, text: &str) {
        let line = LogLine { at: OffsetDateTime::now_utc(), stream: stream.to_owned(), text: text.to_owned() };
        let Ok(mut json) = serde_json::to_vec(&line) else { return };
        json.push(b'\n');
        let mut file = self.file.lock().await;
        if let Err(e) = file.write_all(&json).await {
            tracing::warn!(error = %e, "cannot append to a job log");
        }
    }
}

/// How the script run ended.
enum Outcome {
    Exited(i32),
    Stopped,
    TimedOut,
}

#[async_trait::async_trait]
impl Backend for LocalRunner {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn free_slots(&self) -> Option<usize> {
        let running = self.inner.running.lock().map(|r| r.len()).unwrap_or(usize::MAX);
        Some(self.inner.config.max_jobs.max(1).saturating_sub(running))
    }

    fn outlives_process(&self) -> bool {
        false
    }

    async fn create(&self, spec: &JobSpec) -> Result<(), BackendError> {
        if !crate::is_legal_job_name(&spec.name) {
            return Err(BackendError::Aws { code: "ValidationException".into(), message: "bad job name".into() });
        }
        let dir = self.inner.job_dir(&spec.name);
        std::fs::create_dir_all(dir.parent().unwrap_or(&dir)).map_err(|e| local_error(e.to_string()))?;
        // Creating the directory is the atomic "name taken" check.
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if !self.inner.is_leftover(&spec.name, &spec.job_id) {
                    return Err(BackendError::AlreadyExists(spec.name.clone()));
                }
                // The process that ran it died with its script: run it again.
                std::fs::remove_dir_all(&dir)
                    .and_then(|()| std::fs::create_dir(&dir))
                    .map_err(|e| local_error(format!("cannot clear {}: {e}", dir.display())))?;
            }
            Err(e) => return Err(local_error(format!("cannot create {}: {e}", dir.display()))),
        }
        let now = OffsetDateTime::now_utc();
        let (stop_tx, stop_rx) = watch::channel(false);
        if let Ok(mut running) = self.inner.running.lock() {
            running.insert(spec.name.clone(), stop_tx);
        }
        let state = State {
            job_id: spec.job_id.clone(),
            run: now.unix_timestamp_nanos().to_string(),
            created: now,
            description: Description {
                name: spec.name.clone(),
                status: "InProgress".into(),
                secondary_status: "Starting".into(),
                failure_reason: None,
                transitions: vec![Transition {
                    status: "Starting".into(),
                    start: now,
                    end: None,
                    message: "Waiting for a free local training slot".into(),
                }],
                artifact_uri: None,
                billable_seconds: None,
                training_seconds: None,
                training_start: None,
                training_end: None,
                final_metrics: Vec::new(),
                last_modified: now,
            },
        };
        std::fs::write(dir.join("spec.json"), serde_json::to_vec_pretty(spec).unwrap_or_default())
            .map_err(|e| local_error(e.to_string()))?;
        self.inner.save(&state)?;
        let inner = self.inner.clone();
        let spec = spec.clone();
        tokio::spawn(async move {
            let name = spec.name.clone();
            run(&inner, spec, stop_rx).await;
            if let Ok(mut running) = inner.running.lock() {
                running.remove(&name);
            }
        });
        Ok(())
    }

    async fn job_id_tag(&self, name: &str) -> Result<Option<String>, BackendError> {
        Ok(Some(self.inner.load(name)?.job_id))
    }

    async fn describe(&self, name: &str) -> Result<Description, BackendError> {
        let mut state = self.inner.load(name)?;
        let ours = self.inner.running.lock().map(|r| r.contains_key(name)).unwrap_or(false);
        if !ours && matches!(state.description.status.as_str(), "InProgress" | "Stopping") {
            // The process that ran it is gone (Capstan restarted): the script
            // died with it. Say so instead of showing it running forever.
            let now = OffsetDateTime::now_utc();
            let d = &mut state.description;
            if let Some(last) = d.transitions.last_mut()
                && last.end.is_none()
            {
                last.end = Some(now);
            }
            d.status = "Failed".into();
            d.secondary_status = "Failed".into();
            d.failure_reason = Some(
                "Interrupted: Capstan stopped while this job was running on the local runner. Clone it to run it again."
                    .into(),
            );
            d.training_end = Some(now);
            d.last_modified = now;
            self.inner.save(&state)?;
        }
        Ok(state.description)
    }

    async fn list(&self, created_after: OffsetDateTime, next_token: Option<String>) -> Result<Page, BackendError> {
        let dir = self.inner.config.root.join("jobs");
        let mut states = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Ok(state) = self.inner.load(&name)
                    && state.created > created_after
                {
                    states.push(state);
                }
            }
        }
        states.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.description.name.cmp(&b.description.name)));
        let start: usize = next_token.as_deref().and_then(|t| t.parse().ok()).unwrap_or(0);
        let page_size = crate::sagemaker::PAGE_SIZE as usize;
        let jobs = states
            .iter()
            .skip(start)
            .take(page_size)
            .map(|s| Summary {
                name: s.description.name.clone(),
                status: s.description.status.clone(),
                secondary_status: Some(s.description.secondary_status.clone()),
                created: s.created,
                last_modified: s.description.last_modified,
            })
            .collect();
        let next = start + page_size;
        Ok(Page { jobs, next_token: (next < states.len()).then(|| next.to_string()) })
    }

    async fn stop(&self, name: &str) -> Result<(), BackendError> {
        let state = self.inner.load(name)?;
        let sender = self.inner.running.lock().ok().and_then(|r| r.get(name).cloned());
        match sender {
            Some(tx) if state.description.status == "InProgress" => {
                self.inner.transition(name, "Stopping", "Stopping", "Stopping the training job");
                let _ = tx.send(true);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    async fn logs(&self, name: &str, cursor: Option<&str>) -> Result<LogChunk, BackendError> {
        use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
        let state = self.inner.load(name)?;
        // `<run>:<offset>`; a cursor of an earlier run starts this run's log from the top
        // (a plain offset is a cursor from before runs were named)
        let offset: u64 = match cursor.map(|c| (c, c.split_once(':'))) {
            Some((_, Some((run, offset)))) if run == state.run => offset.parse().unwrap_or(0),
            Some((plain, None)) => plain.parse().unwrap_or(0),
            _ => 0,
        };
        let cursor_at = |offset: u64| Some(format!("{}:{offset}", state.run));
        let path = self.inner.job_dir(name).join("logs.jsonl");
        let Ok(mut file) = tokio::fs::File::open(&path).await else {
            return Ok(LogChunk { lines: Vec::new(), cursor: cursor_at(offset) });
        };
        file.seek(std::io::SeekFrom::Start(offset)).await.map_err(|e| local_error(e.to_string()))?;
        let mut buf = Vec::new();
        file.take(1 << 20).read_to_end(&mut buf).await.map_err(|e| local_error(e.to_string()))?;
        // Only whole lines: a line still being written is read next time.
        let complete = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let lines = buf[..complete]
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(|l| serde_json::from_slice::<LogLine>(l).ok())
            .collect();
        Ok(LogChunk { lines, cursor: cursor_at(offset + complete as u64) })
    }
}

/// Runs one job to its end, recording every step in `state.json`.
async fn run(inner: &Arc<Inner>, spec: JobSpec, mut stop: watch::Receiver<bool>) {
    let name = spec.name.clone();
    let dir = inner.job_dir(&name);
    let log = match LogSink::open(&dir.join("logs.jsonl")).await {
        Ok(log) => log,
        Err(e) => {
            fail(inner, &name, &format!("InternalError: cannot open the job log: {e}"));
            return;
        }
    };
    if inner.slots.available_permits() == 0 {
        log.line(
            "capstan",
            &format!(
                "Queued: {} local job(s) may run at once (CAPSTAN_LOCAL_MAX_JOBS); waiting for a free slot",
                inner.config.max_jobs
            ),
        )
        .await;
    }
    let permit = tokio::select! {
        permit = inner.slots.acquire() => permit,
        () = stopped(&mut stop) => {
            finish_stopped(inner, &name, "Stopped", "The job was stopped before it started");
            return;
        }
    };
    let Ok(_permit) = permit else { return };
    let started = OffsetDateTime::now_utc();
    inner.transition(&name, "InProgress", "Downloading", "Downloading input data and the training code");
    inner.update(&name, |d| d.training_start = Some(started));
    let prepared = tokio::select! {
        prepared = prepare(inner, &spec, &dir, &log) => prepared,
        () = stopped(&mut stop) => {
            finish_stopped(inner, &name, "Stopped", "The job was stopped while downloading");
            return;
        }
    };
    let venv = match prepared {
        Ok(venv) => venv,
        Err(e) => {
            log.line("capstan", &format!("{e:#}")).await;
            fail_timed(inner, &name, started, &format!("ClientError: {e:#}"));
            return;
        }
    };
    inner.transition(&name, "InProgress", "Training", "Training in progress");
    let (outcome, tail) = match execute(inner, &spec, &dir, venv.as_deref(), &log, &mut stop).await {
        Ok(result) => result,
        Err(e) => {
            log.line("capstan", &format!("{e:#}")).await;
            fail_timed(inner, &name, started, &format!("AlgorithmError: cannot start the script: {e:#}"));
            return;
        }
    };
    match outcome {
        Outcome::Exited(0) => {
            inner.transition(&name, "InProgress", "Uploading", "Uploading the model artifact");
            match upload_outputs(inner, &spec, &dir).await {
                Ok(artifact) => {
                    log.line("capstan", &format!("Model artifact uploaded to {artifact}")).await;
                    let end = OffsetDateTime::now_utc();
                    inner.transition(&name, "Completed", "Completed", "Training job completed");
                    inner.update(&name, |d| {
                        close_last(d, end);
                        d.artifact_uri = Some(artifact);
                        d.training_end = Some(end);
                        let seconds = elapsed(started, end);
                        d.billable_seconds = Some(seconds);
                        d.training_seconds = Some(seconds);
                    });
                }
                Err(e) => {
                    log.line("capstan", &format!("{e:#}")).await;
                    fail_timed(inner, &name, started, &format!("ClientError: uploading the model failed: {e:#}"));
                }
            }
        }
        Outcome::Exited(code) => {
            let mut reason = format!("AlgorithmError: the script exited with code {code}");
            if !tail.is_empty() {
                reason.push_str(". Last lines of stderr:\n");
                reason.push_str(&tail.into_iter().collect::<Vec<_>>().join("\n"));
            }
            fail_timed(inner, &name, started, &reason);
        }
        Outcome::Stopped => finish_timed(inner, &name, started, "Stopped", "The job was stopped"),
        Outcome::TimedOut => {
            log.line("capstan", "The job exceeded its maximum runtime and was stopped").await;
            finish_timed(inner, &name, started, "MaxRuntimeExceeded", "The job exceeded its maximum runtime")
        }
    }
}

fn elapsed(from: OffsetDateTime, to: OffsetDateTime) -> i64 {
    (to - from).whole_seconds().max(1)
}

fn close_last(d: &mut Description, at: OffsetDateTime) {
    if let Some(last) = d.transitions.last_mut()
        && last.end.is_none()
    {
        last.end = Some(at);
    }
}

fn fail(inner: &Inner, name: &str, reason: &str) {
    inner.transition(name, "Failed", "Failed", "Training job failed");
    inner.update(name, |d| {
        close_last(d, OffsetDateTime::now_utc());
        d.failure_reason = Some(reason.to_owned());
    });
}

fn fail_timed(inner: &Inner, name: &str, started: OffsetDateTime, reason: &str) {
    fail(inner, name, reason);
    record_times(inner, name, started);
}

fn finish_stopped(inner: &Inner, name: &str, secondary: &str, message: &str) {
    inner.transition(name, "Stopped", secondary, message);
    inner.update(name, |d| close_last(d, OffsetDateTime::now_utc()));
}

fn finish_timed(inner: &Inner, name: &str, started: OffsetDateTime, secondary: &str, message: &str) {
    finish_stopped(inner, name, secondary, message);
    record_times(inner, name, started);
}

fn record_times(inner: &Inner, name: &str, started: OffsetDateTime) {
    let end = OffsetDateTime::now_utc();
    inner.update(name, |d| {
        d.training_end = Some(end);
        d.billable_seconds = Some(elapsed(started, end));
        d.training_seconds = Some(elapsed(started, end));
    });
}

/// Downloads code and channels, writes the config files, and prepares the
/// interpreter (a cached virtual environment when there is a requirements.txt).
/// Downloads the code and channels and writes the config files; returns the
/// virtual environment to run in, if the code has a `requirements.txt`.
async fn prepare(inner: &Inner, spec: &JobSpec, dir: &Path, log: &LogSink) -> anyhow::Result<Option<PathBuf>> {
    let script = spec.script.as_ref().context("the local runner runs script mode only (no entry point given)")?;
    let code = dir.join("code");
    let config = dir.join("input/config");
    for folder in [&code, &config, &dir.join("model"), &dir.join("output/data")] {
        tokio::fs::create_dir_all(folder).await.with_context(|| format!("cannot create {}", folder.display()))?;
    }
    log.line("capstan", &format!("Downloading the training code from {}", script.source_uri)).await;
    let archive = download_object(&inner.s3, &script.source_uri).await?;
    let target = code.clone();
    tokio::task::spawn_blocking(move || crate::archive::unpack(&archive, &target)).await??;
    anyhow::ensure!(
        code.join(&script.entry_point).is_file(),
        "the entry point {} is not in the source archive",
        script.entry_point
    );
    for channel in &spec.channels {
        let into = dir.join("input/data").join(&channel.name);
        let (files, bytes) = download_prefix(&inner.s3, &channel.uri, &into).await?;
        log.line("capstan", &format!("Channel {}: {files} file(s), {bytes} bytes from {}", channel.name, channel.uri))
            .await;
    }
    let channels: BTreeMap<&str, serde_json::Value> = spec
        .channels
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                serde_json::json!({"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}),
            )
        })
        .collect();
    let files = [
        ("hyperparameters.json", serde_json::to_vec_pretty(&spec.hyperparameters)?),
        (
            "resourceconfig.json",
            serde_json::to_vec_pretty(
                &serde_json::json!({"current_host": HOST, "hosts": [HOST], "network_interface_name": "lo"}),
            )?,
        ),
        ("inputdataconfig.json", serde_json::to_vec_pretty(&channels)?),
    ];
    for (file, body) in files {
        tokio::fs::write(config.join(file), body).await?;
    }
    let requirements = code.join("requirements.txt");
    if requirements.is_file() {
        return inner.venvs.get(&spec.team, &requirements, &CapstanLines(log)).await.map(Some);
    }
    Ok(None)
}

/// Runs the entry point until it exits, is stopped or runs out of time.
/// Returns the outcome and the last stderr lines.
async fn execute(
    inner: &Inner,
    spec: &JobSpec,
    dir: &Path,
    venv: Option<&Path>,
    log: &LogSink,
    stop: &mut watch::Receiver<bool>,
) -> anyhow::Result<(Outcome, VecDeque<String>)> {
    let script = spec.script.as_ref().context("no entry point")?;
    let path = |p: &str| dir.join(p).to_string_lossy().into_owned();
    let channel_names: Vec<&str> = spec.channels.iter().map(|c| c.name.as_str()).collect();
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let sandbox = &inner.config.sandbox;
    let (python, bin) = match venv {
        Some(venv) => (venv.join("bin/python"), venv.join("bin")),
        None => {
            let python = sandbox.python().executable.clone();
            let bin = python.parent().map(Path::to_path_buf).unwrap_or_default();
            (python, bin)
        }
    };
    // The job folder's own files (state.json, logs.jsonl) stay outside: a
    // script that could rewrite them could claim any status or artifact.
    let (workdir, model, output, input) = (dir.join("code"), dir.join("model"), dir.join("output"), dir.join("input"));
    let mut read_only = vec![input.as_path()];
    read_only.extend(venv);
    let mounts = crate::sandbox::Mounts {
        writable: vec![&workdir, &model, &output],
        read_only,
        network: false,
        workdir: &workdir,
    };
    let mut command = tokio::process::Command::from(sandbox.command(&python.to_string_lossy(), &mounts));
    command
        .arg(&script.entry_point)
        .env("PATH", format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display()))
        .env("HOME", "/tmp")
        .env("LANG", "C.UTF-8")
        .env("PYTHONUNBUFFERED", "1")
        .env("SM_MODEL_DIR", path("model"))
        .env("SM_INPUT_DIR", path("input"))
        .env("SM_INPUT_DATA_DIR", path("input/data"))
        .env("SM_INPUT_CONFIG_DIR", path("input/config"))
        .env("SM_OUTPUT_DIR", path("output"))
        .env("SM_OUTPUT_DATA_DIR", path("output/data"))
        .env("SM_CHANNELS", serde_json::to_string(&channel_names)?)
        .env("SM_HPS", serde_json::to_string(&spec.hyperparameters)?)
        .env("SM_NUM_CPUS", cpus.to_string())
        .env("SM_NUM_GPUS", "0")
        .env("SM_HOSTS", serde_json::to_string(&[HOST])?)
        .env("SM_CURRENT_HOST", HOST)
        .env("SM_USER_ENTRY_POINT", &script.entry_point)
        .env("SM_MODULE_DIR", &script.source_uri)
        .env("SM_TRAINING_JOB_NAME", &spec.name)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    for channel in &spec.channels {
        command
            .env(format!("SM_CHANNEL_{}", channel.name.to_uppercase()), path(&format!("input/data/{}", channel.name)));
    }
    for (key, value) in &spec.hyperparameters {
        command.env(format!("SM_HP_{}", key.to_uppercase()), value);
        command.arg(format!("--{key}")).arg(value);
    }
    let mut child = command.spawn().with_context(|| format!("cannot run {}", python.display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let stderr = child.stderr.take().context("no stderr")?;
    let out_task = tokio::spawn(pump(stdout, "stdout", log.clone(), None));
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let err_task = tokio::spawn(pump(stderr, "stderr", log.clone(), Some(tail.clone())));
    let deadline = tokio::time::sleep(Duration::from_secs(u64::try_from(spec.max_runtime_seconds).unwrap_or(0)));
    tokio::pin!(deadline);
    let outcome = tokio::select! {
        status = child.wait() => Outcome::Exited(status?.code().unwrap_or(-1)),
        () = stopped(stop) => {
            sandbox.terminate(&mut child, inner.config.stop_grace).await;
            Outcome::Stopped
        }
        () = &mut deadline => {
            sandbox.terminate(&mut child, inner.config.stop_grace).await;
            Outcome::TimedOut
        }
    };
    let _ = out_task.await;
    let _ = err_task.await;
    let tail = tail.lock().map(|t| t.clone()).unwrap_or_default();
    Ok((outcome, tail))
}

/// Resolves once a stop was requested (never, if the sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Copies a child's output into the log, line by line, keeping the last
/// lines when `tail` is given.
async fn pump(
    reader: impl tokio::io::AsyncRead + Unpin,
    stream: &'static str,
    log: LogSink,
    tail: Option<Arc<Mutex<VecDeque<String>>>>,
) {
    let mut lines = tokio::io::BufReader::new(reader).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        log.line(stream, &line).await;
        if let Some(tail) = &tail
            && let Ok(mut tail) = tail.lock()
        {
            if tail.len() == FAILURE_TAIL {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    }
}

fn parse_uri(uri: &str) -> anyhow::Result<(String, String)> {
    let rest = uri.strip_prefix("s3://").with_context(|| format!("{uri} is not an s3:// URI"))?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    Ok((bucket.to_owned(), key.to_owned()))
}

pub async fn download_object(s3: &storage::aws_sdk_s3::Client, uri: &str) -> anyhow::Result<bytes::Bytes> {
    let (bucket, key) = parse_uri(uri)?;
    let out = s3
        .get_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", storage::S3Failure::from(e)))
        .with_context(|| format!("cannot read {uri}"))?;
    Ok(out.body.collect().await.with_context(|| format!("cannot read {uri}"))?.into_bytes())
}

/// Downloads every object under `uri` into `into`, keeping relative paths.
pub async fn download_prefix(s3: &storage::aws_sdk_s3::Client, uri: &str, into: &Path) -> anyhow::Result<(u64, u64)> {
    let (bucket, prefix) = parse_uri(uri)?;
    let mut objects = Vec::new();
    storage::list_prefix(s3, &bucket, &prefix, |page| objects.extend(page))
        .await
        .map_err(|e| anyhow::anyhow!("{}", storage::S3Failure::from(e)))
        .with_context(|| format!("cannot list {uri}"))?;
    tokio::fs::create_dir_all(into).await?;
    let (mut files, mut bytes) = (0, 0);
    for object in objects {
        let relative = object.key.strip_prefix(&prefix).unwrap_or(&object.key);
        if relative.is_empty() || relative.ends_with('/') {
            continue;
        }
        anyhow::ensure!(
            storage::check_relative(relative).is_ok(),
            "the object key {} cannot be a file path",
            object.key
        );
        let target = into.join(relative);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        let out = s3
            .get_object()
            .bucket(&bucket)
            .key(&object.key)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", storage::S3Failure::from(e)))
            .with_context(|| format!("cannot read s3://{bucket}/{}", object.key))?;
        let mut body = out.body.into_async_read();
        let mut file = tokio::fs::File::create(&target).await?;
        bytes += tokio::io::copy(&mut body, &mut file).await?;
        file.flush().await?;
        files += 1;
    }
    Ok((files, bytes))
}

/// Packs the contents of `folder` into a `.tar.gz` at `target`.
pub fn pack(folder: &Path, target: &Path) -> anyhow::Result<()> {
    let file = std::fs::File::create(target)?;
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(file, flate2::Compression::default()));
    tar.follow_symlinks(false);
    tar.append_dir_all(".", folder)?;
    tar.into_inner()?.finish()?;
    Ok(())
}

/// Packs `model/` (and `output/data/` when not empty) and uploads them where
/// SageMaker puts them: `<output>/<name>/output/model.tar.gz`.
async fn upload_outputs(inner: &Inner, spec: &JobSpec, dir: &Path) -> anyhow::Result<String> {
    let (bucket, prefix) = parse_uri(&spec.output_uri)?;
    let prefix = if prefix.is_empty() || prefix.ends_with('/') { prefix } else { format!("{prefix}/") };
    let mut uploads = vec![("model", "model.tar.gz")];
    let has_output = std::fs::read_dir(dir.join("output/data")).map(|mut d| d.next().is_some()).unwrap_or(false);
    if has_output {
        uploads.push(("output/data", "output.tar.gz"));
    }
    let mut artifact = String::new();
    for (folder, file) in uploads {
        let archive = dir.join(file);
        let (source, target) = (dir.join(folder), archive.clone());
        tokio::task::spawn_blocking(move || pack(&source, &target)).await??;
        let key = format!("{prefix}{}/output/{file}", spec.name);
        let body = storage::aws_sdk_s3::primitives::ByteStream::from_path(&archive).await?;
        inner
            .s3
            .put_object()
            .bucket(&bucket)
            .key(&key)
            .body(body)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", storage::S3Failure::from(e)))
            .with_context(|| format!("cannot write s3://{bucket}/{key}"))?;
        if file == "model.tar.gz" {
            artifact = format!("s3://{bucket}/{key}");
        }
    }
    Ok(artifact)
}
