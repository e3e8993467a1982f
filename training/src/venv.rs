//! Virtual environments for user code that comes with a `requirements.txt`
//! (training scripts, and the inference code of endpoints in local mode, as
//! SageMaker's framework containers install it): one per team and distinct
//! requirements file, built once and reused.
//!
//! An environment is built inside the sandbox, with network to download
//! packages but seeing only the new environment and the requirements file,
//! so packages that run code while installing run it there; a team's
//! environments are never used by another team.

use anyhow::Context as _;
use std::future::Future;
use std::path::{Path, PathBuf};

use crate::sandbox::{Mounts, Sandbox};

/// Where the progress of an installation is written (a job's log, a
/// variant's).
pub trait Progress: Sync {
    fn line(&self, text: &str) -> impl Future<Output = ()> + Send;
}

/// The cache of virtual environments under one folder.
pub struct Venvs {
    root: PathBuf,
    sandbox: Sandbox,
    /// One installation at a time: two jobs with the same requirements wait
    /// for one environment rather than building it twice.
    building: tokio::sync::Mutex<()>,
}

impl Venvs {
    /// Environments go to `<root>/<team>/<hash of the requirements>/`.
    pub fn new(root: PathBuf, sandbox: Sandbox) -> Self {
        Self { root, sandbox, building: tokio::sync::Mutex::new(()) }
    }

    /// The environment of `team` with `requirements` installed, built now
    /// unless it already is.
    pub async fn get(&self, team: &str, requirements: &Path, log: &impl Progress) -> anyhow::Result<PathBuf> {
        use sha2::Digest as _;
        let text = tokio::fs::read(requirements).await?;
        let hash = hex::encode(sha2::Sha256::digest(&text));
        let team = if team.is_empty() { "_" } else { team };
        anyhow::ensure!(
            storage::check_relative(team).is_ok() && !team.contains('/'),
            "the team id {team} is not a folder name"
        );
        let venv = self.root.join(team).join(&hash[..16]);
        let _guard = self.building.lock().await;
        if venv.join(".ready").is_file() {
            log.line(&format!("Using the cached virtual environment for requirements.txt ({})", &hash[..16])).await;
            return Ok(venv);
        }
        log.line("Installing requirements.txt into a new virtual environment").await;
        let _ = tokio::fs::remove_dir_all(&venv).await;
        tokio::fs::create_dir_all(&venv).await.with_context(|| format!("cannot create {}", venv.display()))?;
        let reqs = requirements.parent().context("requirements.txt has no folder")?;
        let mounts = Mounts { writable: vec![&venv], read_only: vec![reqs], network: true, workdir: &venv };
        let base = self.sandbox.python().executable.to_string_lossy().into_owned();
        let venv_arg = venv.to_string_lossy().into_owned();
        let mut create = self.sandbox.command(&base, &mounts);
        create.args(["-m", "venv", &venv_arg]);
        run_logged(create, log).await.context("creating the virtual environment failed")?;
        let python = venv.join("bin/python").to_string_lossy().into_owned();
        let mut install = self.sandbox.command(&python, &mounts);
        install.args(["-m", "pip", "install", "--disable-pip-version-check", "--no-cache-dir", "-r"]).arg(requirements);
        install.env("HOME", "/tmp").env("PATH", "/usr/local/bin:/usr/bin:/bin");
        for proxy in ["HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"] {
            if let Ok(value) = std::env::var(proxy) {
                install.env(proxy, value);
            }
        }
        run_logged(install, log).await.context("installing requirements.txt failed")?;
        tokio::fs::write(venv.join(".ready"), b"").await?;
        Ok(venv)
    }
}

/// Runs a helper command, copying its output into `log`.
async fn run_logged(command: std::process::Command, log: &impl Progress) -> anyhow::Result<()> {
    let mut command = tokio::process::Command::from(command);
    let program = command.as_std().get_program().to_string_lossy().into_owned();
    let out = command
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("cannot run {program}"))?;
    for line in String::from_utf8_lossy(&out.stdout).lines().chain(String::from_utf8_lossy(&out.stderr).lines()) {
        log.line(line).await;
    }
    anyhow::ensure!(out.status.success(), "it exited with {}", out.status);
    Ok(())
}
