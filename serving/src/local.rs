//! The local serving runner. Each variant gets a folder
//!
//! ```text
//! <root>/<endpoint>/<variant>-<fingerprint>/
//!   model/               the version's model.tar.gz unpacked (SM_MODEL_DIR)
//!   code/                the inference code (the model's code/ or the job's source archive)
//!   instance-<n>.log     what each process printed, since its last start
//! ```
//!
//! and `instance_count` processes, each started in the sandbox with a
//! listening socket on 127.0.0.1 as its standard input (the sandbox has no
//! network of its own): Capstan's shim (`shim.py`) serves the script-mode
//! handlers on it, or starts the entry point's own server inside the
//! sandbox and relays to it. A process takes traffic once it answers
//! `/ping`; one that exits or fails three health checks in a row is
//! restarted after a back-off (1 s, doubling, at most 30 s).

use crate::{Answer, EndpointSpec, Instance, InstanceStatus, InvokeError, Request, ServingError, Target, VariantSpec};
use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use training::sandbox::{Mounts, Sandbox};

const SHIM: &str = include_str!("shim.py");

/// How long a new process may take to answer `/ping`.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// Time between health checks of a healthy process.
const HEALTH_EVERY: Duration = Duration::from_secs(2);
/// Failed health checks in a row before a process is restarted.
const HEALTH_FAILURES: u32 = 3;
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub struct LocalServingConfig {
    /// Holds one folder per endpoint and the shim.
    pub root: PathBuf,
    pub sandbox: Sandbox,
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub struct LocalServing {
    inner: Arc<Inner>,
}

struct Inner {
    config: LocalServingConfig,
    s3: storage::aws_sdk_s3::Client,
    http: HttpClient,
    shim: PathBuf,
    /// virtual environments for inference code with a requirements.txt
    venvs: training::venv::Venvs,
    /// endpoint → variant → its processes
    endpoints: Mutex<HashMap<String, HashMap<String, Running>>>,
}

struct Running {
    fingerprint: String,
    stop: watch::Sender<bool>,
    instances: Vec<Arc<Mutex<Instance>>>,
    /// The variant's previous processes (an earlier model or size): they
    /// keep serving until these are all healthy, then drain and stop.
    retiring: Option<Box<Running>>,
    /// Set once this (retiring) variant takes no new traffic: its processes
    /// are reported stopped so the gateways drop them, then they stop.
    draining: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl LocalServing {
    pub fn new(config: LocalServingConfig, s3: storage::aws_sdk_s3::Client) -> anyhow::Result<Self> {
        let shim_dir = config.root.join("shim");
        std::fs::create_dir_all(&shim_dir).with_context(|| format!("cannot create {}", shim_dir.display()))?;
        let shim = shim_dir.join("capstan_serve.py");
        std::fs::write(&shim, SHIM).with_context(|| format!("cannot write {}", shim.display()))?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .build(connector);
        // `.venvs`: no engine name starts with a dot, so no endpoint's folder
        let venvs = training::venv::Venvs::new(config.root.join(".venvs"), config.sandbox.clone());
        Ok(Self { inner: Arc::new(Inner { config, s3, http, shim, venvs, endpoints: Mutex::new(HashMap::new()) }) })
    }
}

/// What makes a variant's processes different: a change restarts them.
fn fingerprint(v: &VariantSpec) -> String {
    use sha2::Digest as _;
    let text = format!("{}\n{}\n{}", v.model_uri, v.code_uri.as_deref().unwrap_or(""), v.instance_count);
    hex::encode(&sha2::Sha256::digest(text.as_bytes())[..8])
}

fn legal_folder(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !name.starts_with('-')
}

#[async_trait::async_trait]
impl crate::Serving for LocalServing {
    async fn deploy(&self, spec: &EndpointSpec) -> Result<(), ServingError> {
        let inner = &self.inner;
        if !legal_folder(&spec.name) || spec.variants.iter().any(|v| !legal_folder(&v.name)) {
            return Err(ServingError::Invalid(format!("{} is not a legal endpoint or variant name", spec.name)));
        }
        let wanted: HashMap<&str, (&VariantSpec, String)> =
            spec.variants.iter().map(|v| (v.name.as_str(), (v, fingerprint(v)))).collect();
        // variants that are gone stop; a variant that changed keeps its
        // processes serving until its new ones are healthy (blue/green)
        let mut previous: HashMap<String, Running> = HashMap::new();
        {
            let mut all = inner.endpoints.lock().map_err(|_| anyhow::anyhow!("serving state poisoned"))?;
            let running = all.entry(spec.name.clone()).or_default();
            let names: Vec<String> = running.keys().cloned().collect();
            for name in names {
                let changed = match wanted.get(name.as_str()) {
                    None => true,
                    Some((_, fp)) => running.get(&name).is_some_and(|r| r.fingerprint != *fp),
                };
                if !changed {
                    continue;
                }
                let Some(mut old) = running.remove(&name) else { continue };
                if wanted.contains_key(name.as_str()) {
                    // a variant changed twice before its new processes were
                    // healthy: the ones that last served keep serving
                    let serving = old.retiring.take().map_or(old, |older| *older);
                    previous.insert(name, serving);
                } else {
                    // gone from the routes already; requests in flight finish
                    tokio::spawn(async move {
                        tokio::time::sleep(DRAIN).await;
                        drop(old);
                    });
                }
            }
        }
        for (name, (variant, fp)) in &wanted {
            let present = inner
                .endpoints
                .lock()
                .map_err(|_| anyhow::anyhow!("serving state poisoned"))?
                .get(&spec.name)
                .is_some_and(|r| r.contains_key(*name));
            if present {
                continue;
            }
            let dir = inner.config.root.join(&spec.name).join(format!("{name}-{fp}"));
            let Prepared { program, venv } = prepare(inner, &spec.team, variant, &dir).await?;
            let (stop, _) = watch::channel(false);
            let instances: Vec<_> = (0..variant.instance_count.max(1))
                .map(|ordinal| {
                    Arc::new(Mutex::new(Instance {
                        variant: (*name).to_owned(),
                        ordinal,
                        address: None,
                        status: InstanceStatus::Starting,
                        restarts: 0,
                        message: None,
                    }))
                })
                .collect();
            for state in &instances {
                let process = Process {
                    inner: inner.clone(),
                    dir: dir.clone(),
                    program: program.clone(),
                    venv: venv.clone(),
                    state: state.clone(),
                    stop: stop.subscribe(),
                };
                tokio::spawn(process.supervise());
            }
            let retiring = previous.remove(*name).map(|mut old| {
                old.draining = false;
                Box::new(old)
            });
            if retiring.is_some() {
                tokio::spawn(retire_when_ready(inner.clone(), spec.name.clone(), (*name).to_owned(), fp.clone()));
            }
            let running = Running { fingerprint: fp.clone(), stop, instances, retiring, draining: false };
            inner
                .endpoints
                .lock()
                .map_err(|_| anyhow::anyhow!("serving state poisoned"))?
                .entry(spec.name.clone())
                .or_default()
                .insert((*name).to_owned(), running);
        }
        // folders of earlier fingerprints are left for the next clean-up
        Ok(())
    }

    async fn remove(&self, name: &str) -> Result<(), ServingError> {
        let removed = self.inner.endpoints.lock().map_err(|_| anyhow::anyhow!("serving state poisoned"))?.remove(name);
        drop(removed);
        if legal_folder(name) {
            let dir = self.inner.config.root.join(name);
            // give the processes their grace period before their folder goes
            tokio::time::sleep(Duration::from_millis(200)).await;
            let _ = tokio::fs::remove_dir_all(&dir).await;
        }
        Ok(())
    }

    fn stop(&self, name: &str) {
        let removed = self.inner.endpoints.lock().ok().and_then(|mut all| all.remove(name));
        drop(removed);
    }

    fn instances(&self, name: &str) -> Vec<Instance> {
        let Ok(all) = self.inner.endpoints.lock() else { return Vec::new() };
        let mut out: Vec<Instance> = Vec::new();
        for r in all.get(name).into_iter().flat_map(|variants| variants.values()) {
            out.extend(r.instances.iter().filter_map(|i| i.lock().ok().map(|i| i.clone())));
            // the previous processes, under ordinals of their own
            for old in r.retiring.iter() {
                out.extend(old.instances.iter().filter_map(|i| {
                    let mut i = i.lock().ok()?.clone();
                    i.ordinal += crate::RETIRING_ORDINAL;
                    if old.draining {
                        i.status = InstanceStatus::Stopped;
                        i.message = Some("replaced: draining".into());
                    }
                    Some(i)
                }));
            }
        }
        out.sort_by(|a, b| (&a.variant, a.ordinal).cmp(&(&b.variant, b.ordinal)));
        out
    }

    fn running(&self) -> Vec<String> {
        self.inner.endpoints.lock().map(|all| all.keys().cloned().collect()).unwrap_or_default()
    }

    async fn invoke(&self, target: &Target<'_>, request: Request, timeout: Duration) -> Result<Answer, InvokeError> {
        let address = target
            .address
            .ok_or_else(|| InvokeError::Unavailable(format!("variant {} has no healthy instance", target.variant)))?;
        post(&self.inner.http, address, request, timeout).await
    }
}

/// How long a replaced variant's processes are reported stopped before they
/// stop: time for every gateway to hear of it and for requests in flight.
const DRAIN: Duration = Duration::from_secs(5);

/// Retires the previous processes of variant `variant` (fingerprint `fp`)
/// once its new processes are all healthy: they are reported stopped (the
/// gateways stop sending them requests), then stopped after [`DRAIN`]. When
/// the new processes keep crashing, the previous ones keep serving.
async fn retire_when_ready(inner: Arc<Inner>, endpoint: String, variant: String, fp: String) {
    let with = |f: &mut dyn FnMut(&mut Running) -> bool| -> Option<bool> {
        let mut all = inner.endpoints.lock().ok()?;
        let r = all.get_mut(&endpoint)?.get_mut(&variant)?;
        (r.fingerprint == fp && r.retiring.is_some()).then(|| f(r))
    };
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let ready = with(&mut |r| {
            let ready = r.instances.iter().all(|i| i.lock().is_ok_and(|i| i.status == InstanceStatus::Healthy));
            if let (true, Some(old)) = (ready, r.retiring.as_mut()) {
                old.draining = true;
            }
            ready
        });
        match ready {
            None => return,
            Some(false) => continue,
            Some(true) => break,
        }
    }
    tokio::time::sleep(DRAIN).await;
    // dropped outside the lock: that stops the processes
    let mut old = None;
    with(&mut |r| {
        old = r.retiring.take();
        true
    });
    drop(old);
}

/// Sends an invocation to one process.
pub async fn post(
    http: &HttpClient,
    address: SocketAddr,
    request: Request,
    timeout: Duration,
) -> Result<Answer, InvokeError> {
    let mut builder = http::Request::post(format!("http://{address}/invocations"));
    if let Some(ct) = &request.content_type {
        builder = builder.header(http::header::CONTENT_TYPE, ct);
    }
    if let Some(accept) = &request.accept {
        builder = builder.header(http::header::ACCEPT, accept);
    }
    let req = builder.body(Full::new(request.body)).map_err(|e| InvokeError::Unavailable(e.to_string()))?;
    let work = async {
        let res = http.request(req).await.map_err(|e| InvokeError::Unavailable(format!("the model's server: {e}")))?;
        let status = res.status().as_u16();
        let content_type =
            res.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = Limited::new(res.into_body(), crate::MAX_PAYLOAD)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    InvokeError::TooLarge
                } else {
                    InvokeError::Unavailable(format!("the model's server: {e}"))
                }
            })?
            .to_bytes();
        Ok(Answer { status, body, content_type })
    };
    tokio::time::timeout(timeout, work).await.map_err(|_| InvokeError::Timeout(timeout))?
}

/// What a variant's processes run.
struct Prepared {
    /// The entry point (`SAGEMAKER_PROGRAM`).
    program: String,
    /// The virtual environment with the code's `requirements.txt`, if it has one.
    venv: Option<PathBuf>,
}

/// Downloads and unpacks a variant's model and code into `dir` (once per
/// fingerprint) and installs the code's `requirements.txt` into the team's
/// cached virtual environment, as SageMaker's framework containers do.
async fn prepare(inner: &Inner, team: &str, variant: &VariantSpec, dir: &Path) -> Result<Prepared, ServingError> {
    let ready = dir.join(".ready");
    let program = match tokio::fs::read_to_string(&ready).await {
        Ok(program) => program,
        Err(_) => unpack(inner, variant, dir).await?,
    };
    let requirements = dir.join("code/requirements.txt");
    let venv = if requirements.is_file() {
        let log = InstallLog::default();
        let venv = inner.venvs.get(team, &requirements, &log).await.map_err(|e| {
            let lines = log.lines.lock().map(|l| Vec::from(l.clone()).join("\n")).unwrap_or_default();
            ServingError::Invalid(format!("{e:#}\n{lines}"))
        })?;
        Some(venv)
    } else {
        None
    };
    Ok(Prepared { program, venv })
}

/// The last lines of a requirements installation, for its error message.
#[derive(Default)]
struct InstallLog {
    lines: Mutex<std::collections::VecDeque<String>>,
}

impl training::venv::Progress for InstallLog {
    async fn line(&self, text: &str) {
        tracing::info!(target: "capstan::serving", "{text}");
        if let Ok(mut lines) = self.lines.lock() {
            if lines.len() == 20 {
                lines.pop_front();
            }
            lines.push_back(text.to_owned());
        }
    }
}

/// Downloads and unpacks a variant's model and code into `dir`; returns the
/// entry point to serve.
async fn unpack(inner: &Inner, variant: &VariantSpec, dir: &Path) -> Result<String, ServingError> {
    let ready = dir.join(".ready");
    let _ = tokio::fs::remove_dir_all(dir).await;
    let (model, code) = (dir.join("model"), dir.join("code"));
    tokio::fs::create_dir_all(&model).await.with_context(|| format!("cannot create {}", model.display()))?;
    if !variant.model_uri.ends_with(".tar.gz") {
        return Err(ServingError::Invalid(format!(
            "the local runner serves a model.tar.gz; {} is not one",
            variant.model_uri
        )));
    }
    let archive = training::local::download_object(&inner.s3, &variant.model_uri)
        .await
        .map_err(|e| ServingError::Invalid(format!("{e:#}")))?;
    let into = model.clone();
    tokio::task::spawn_blocking(move || training::archive::unpack(&archive, &into))
        .await
        .context("unpacking the model")?
        .map_err(|e| ServingError::Invalid(format!("the model archive {}: {e}", variant.model_uri)))?;
    let (code, program) = if model.join("code/inference.py").is_file() {
        (model.join("code"), "inference.py".to_owned())
    } else if let Some(uri) = &variant.code_uri {
        tokio::fs::create_dir_all(&code).await.context("cannot create the code folder")?;
        let archive = training::local::download_object(&inner.s3, uri)
            .await
            .map_err(|e| ServingError::Invalid(format!("{e:#}")))?;
        let into = code.clone();
        tokio::task::spawn_blocking(move || training::archive::unpack(&archive, &into))
            .await
            .context("unpacking the code")?
            .map_err(|e| ServingError::Invalid(format!("the source archive {uri}: {e}")))?;
        let program = ["inference.py", "serve.py"].into_iter().find(|p| code.join(p).is_file()).ok_or_else(|| {
            ServingError::Invalid(
                "no inference code: put inference.py (with model_fn) or serve.py in the training job's source, \
                 or code/inference.py in model.tar.gz"
                    .into(),
            )
        })?;
        (code, program.to_owned())
    } else {
        return Err(ServingError::Invalid(
            "no inference code: this version's model.tar.gz has no code/inference.py".into(),
        ));
    };
    if code != dir.join("code") {
        // one place for the code, whichever archive it came from
        let _ = tokio::fs::symlink(&code, dir.join("code")).await;
    }
    tokio::fs::write(&ready, &program).await.context("cannot mark the variant ready")?;
    Ok(program)
}

/// One serving process and its supervision.
struct Process {
    inner: Arc<Inner>,
    dir: PathBuf,
    program: String,
    venv: Option<PathBuf>,
    state: Arc<Mutex<Instance>>,
    stop: watch::Receiver<bool>,
}

enum Ended {
    Stopped,
    Failed(String),
}

impl Process {
    fn set(&self, f: impl FnOnce(&mut Instance)) {
        if let Ok(mut state) = self.state.lock() {
            f(&mut state);
        }
    }

    fn ordinal(&self) -> u32 {
        self.state.lock().map(|s| s.ordinal).unwrap_or_default()
    }

    async fn supervise(mut self) {
        let mut backoff = Duration::from_secs(1);
        loop {
            if *self.stop.borrow() {
                break;
            }
            match self.run_once().await {
                Ended::Stopped => break,
                Ended::Failed(message) => {
                    tracing::warn!(dir = %self.dir.display(), %message, "a serving process failed; restarting");
                    self.set(|s| {
                        s.status = InstanceStatus::Crashed;
                        s.restarts += 1;
                        s.message = Some(message);
                    });
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.stop.changed() => break,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            if self.state.lock().is_ok_and(|s| s.status == InstanceStatus::Healthy) {
                backoff = Duration::from_secs(1);
            }
        }
        self.set(|s| {
            s.status = InstanceStatus::Stopped;
            s.address = None;
        });
    }

    /// Starts the process and watches it until it exits, fails its health
    /// checks or is stopped.
    async fn run_once(&mut self) -> Ended {
        let started = match self.start() {
            Ok(started) => started,
            Err(e) => return Ended::Failed(format!("{e:#}")),
        };
        let (mut child, address, log) = started;
        self.set(|s| {
            s.status = InstanceStatus::Starting;
            s.address = Some(address);
            s.message = None;
        });
        let sandbox = self.inner.config.sandbox.clone();
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        let mut healthy = false;
        let mut failures = 0;
        loop {
            let wait = if healthy { HEALTH_EVERY } else { Duration::from_millis(100) };
            tokio::select! {
                status = child.wait() => {
                    let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
                    return Ended::Failed(format!("exited ({status}): {}", tail(&log)));
                }
                _ = self.stop.changed() => {
                    sandbox.terminate(&mut child, Duration::from_secs(5)).await;
                    return Ended::Stopped;
                }
                () = tokio::time::sleep(wait) => {}
            }
            let ok = ping(&self.inner.http, address).await;
            match (ok, healthy) {
                (true, false) => {
                    healthy = true;
                    failures = 0;
                    self.set(|s| {
                        s.status = InstanceStatus::Healthy;
                        s.message = None;
                    });
                }
                (true, true) => {
                    if failures > 0 {
                        self.set(|s| s.status = InstanceStatus::Healthy);
                    }
                    failures = 0;
                }
                (false, false) if tokio::time::Instant::now() > deadline => {
                    sandbox.terminate(&mut child, Duration::from_secs(2)).await;
                    return Ended::Failed(format!(
                        "did not answer GET /ping within {} s: {}",
                        START_TIMEOUT.as_secs(),
                        tail(&log)
                    ));
                }
                (false, false) => {}
                (false, true) => {
                    failures += 1;
                    self.set(|s| s.status = InstanceStatus::Unhealthy);
                    if failures >= HEALTH_FAILURES {
                        sandbox.terminate(&mut child, Duration::from_secs(2)).await;
                        return Ended::Failed(format!("failed {failures} health checks in a row"));
                    }
                }
            }
        }
    }

    fn start(&self) -> anyhow::Result<(tokio::process::Child, SocketAddr, PathBuf)> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot open a port for the model")?;
        let address = listener.local_addr()?;
        // the port the entry point's own server listens on (inside the
        // sandbox's network; unsandboxed, a free one of this machine)
        let inner_port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = self.dir.join(format!("instance-{}.log", self.ordinal()));
        let out = std::fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let (model, code) = (self.dir.join("model"), self.dir.join("code"));
        let code = std::fs::canonicalize(&code).unwrap_or(code);
        let shim_dir = self.inner.shim.parent().map(Path::to_path_buf).unwrap_or_default();
        let sandbox = &self.inner.config.sandbox;
        let mut read_only: Vec<&Path> = vec![&model, &code, &shim_dir];
        read_only.extend(self.venv.as_deref());
        let mounts = Mounts { writable: vec![], read_only, network: false, workdir: &code };
        let (python, path) = match &self.venv {
            Some(venv) => {
                (venv.join("bin/python"), format!("{}:/usr/local/bin:/usr/bin:/bin", venv.join("bin").display()))
            }
            None => (sandbox.python().executable.clone(), "/usr/local/bin:/usr/bin:/bin".to_owned()),
        };
        let python = python.to_string_lossy().into_owned();
        let mut command = sandbox.command(&python, &mounts);
        command
            .arg(&self.inner.shim)
            .env("SM_MODEL_DIR", &model)
            .env("SAGEMAKER_PROGRAM", &self.program)
            .env("SAGEMAKER_SUBMIT_DIRECTORY", &code)
            .env("SAGEMAKER_BIND_TO_PORT", inner_port.to_string())
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("HOME", "/tmp")
            .env("PATH", path)
            .stdin(std::process::Stdio::from(std::os::fd::OwnedFd::from(listener)))
            .stdout(out.try_clone()?)
            .stderr(out);
        let child = tokio::process::Command::from(command)
            .kill_on_drop(true)
            .spawn()
            .context("cannot start the model's server")?;
        Ok((child, address, log))
    }
}

async fn ping(http: &HttpClient, address: SocketAddr) -> bool {
    let Ok(req) = http::Request::get(format!("http://{address}/ping")).body(Full::new(Bytes::new())) else {
        return false;
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), http.request(req)).await,
        Ok(Ok(res)) if res.status().is_success()
    )
}

/// The last lines a process printed.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(8);
    let tail = lines[start..].join("\n");
    if tail.is_empty() { "it printed nothing".into() } else { tail }
}
