//! Where user code runs in local mode: training scripts here, inference
//! servers later. Each run sees only what it needs through bubblewrap
//! (`bwrap`): its own folder (writable), the Python installation and the
//! system libraries (read-only), nothing of Capstan's data directory, no
//! network unless asked for (installing requirements), its own PID, user,
//! network and IPC namespaces, an unprivileged uid, no capabilities, and it
//! dies with Capstan.
//!
//! Without bubblewrap, local mode refuses to start unless a setting allows
//! unsandboxed runs on a single-user machine (documented as unsafe).

use anyhow::Context as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The uid and gid user code runs as inside the sandbox ("nobody").
pub const SANDBOX_UID: u32 = 65534;

/// The single host name a sandboxed process runs as (SageMaker's first host).
pub const HOST: &str = "algo-1";

/// The interpreter that runs scripts, resolved once: `python3` on `PATH` is
/// often a shim (pyenv) that cannot work inside a sandbox.
#[derive(Clone, Debug)]
pub struct Python {
    /// The real executable (`sys.executable`, symlinks resolved).
    pub executable: PathBuf,
    /// The installation's prefix (`sys.base_prefix`), mounted read-only.
    pub prefix: PathBuf,
}

impl Python {
    /// Asks `program` where it lives.
    pub fn resolve(program: &str) -> anyhow::Result<Self> {
        let out = std::process::Command::new(program)
            .args(["-c", "import os, sys; print(os.path.realpath(sys.executable)); print(sys.base_prefix)"])
            .stdin(std::process::Stdio::null())
            .output()
            .with_context(|| format!("cannot run {program} (set CAPSTAN_PYTHON to a Python 3 interpreter)"))?;
        anyhow::ensure!(out.status.success(), "{program} failed: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).context("python printed a path that is not UTF-8")?;
        let mut lines = text.lines();
        let (Some(executable), Some(prefix)) = (lines.next(), lines.next()) else {
            anyhow::bail!("{program} did not say where it is installed");
        };
        Ok(Self { executable: executable.into(), prefix: prefix.into() })
    }
}

/// How user code is started.
#[derive(Clone, Debug)]
pub enum Sandbox {
    /// In a bubblewrap sandbox.
    Bwrap { bwrap: PathBuf, python: Python },
    /// As Capstan's own OS user with everything Capstan can reach: only when
    /// `CAPSTAN_ALLOW_UNSANDBOXED_JOBS` says so, on a single-user machine.
    Unsandboxed { python: Python },
}

/// What one run may see besides the system and Python.
pub struct Mounts<'a> {
    /// Folders it may write (its job folder; a virtual environment being built).
    pub writable: Vec<&'a Path>,
    /// Folders it may read (a finished virtual environment).
    pub read_only: Vec<&'a Path>,
    /// Whether it reaches the network (only to install requirements).
    pub network: bool,
    /// Its working directory.
    pub workdir: &'a Path,
}

impl Sandbox {
    /// Finds bubblewrap and proves it can start a sandbox here; without it,
    /// an error that says what to do, unless `allow_unsandboxed`.
    pub fn detect(python: &str, allow_unsandboxed: bool) -> anyhow::Result<Self> {
        let python = Python::resolve(python)?;
        if allow_unsandboxed {
            tracing::warn!(
                "CAPSTAN_ALLOW_UNSANDBOXED_JOBS is set: training scripts run as Capstan's own user and can read \
                 and change everything Capstan can (use only on a single-user machine)"
            );
            return Ok(Self::Unsandboxed { python });
        }
        let bwrap = ["/usr/bin/bwrap", "/usr/local/bin/bwrap", "/bin/bwrap"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .context(
                "local mode runs training scripts in a bubblewrap sandbox, and bwrap is not installed: \
                 install it (`apt install bubblewrap`, or run scripts/setup.sh), or set \
                 CAPSTAN_ALLOW_UNSANDBOXED_JOBS=true on a single-user machine (unsafe: scripts can then read \
                 and change all of Capstan's data)",
            )?;
        let sandbox = Self::Bwrap { bwrap, python };
        let probe = tempfile_dir()?;
        let out = sandbox
            .command(
                &sandbox.python().executable.to_string_lossy(),
                &Mounts { writable: vec![&probe], read_only: vec![], network: false, workdir: &probe },
            )
            .args(["-c", "import os; print(os.getuid())"])
            .output();
        let _ = std::fs::remove_dir_all(&probe);
        let out = out.context("cannot run bwrap")?;
        anyhow::ensure!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == SANDBOX_UID.to_string(),
            "bubblewrap cannot start a sandbox on this machine ({}): user namespaces may be disabled \
             (sysctl kernel.unprivileged_userns_clone) or Python is unusable inside it",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(sandbox)
    }

    pub fn python(&self) -> &Python {
        match self {
            Self::Bwrap { python, .. } | Self::Unsandboxed { python } => python,
        }
    }

    /// Whether user code is isolated.
    pub fn is_sandboxed(&self) -> bool {
        matches!(self, Self::Bwrap { .. })
    }

    /// A command that runs `program` inside the sandbox with `mounts`. The
    /// caller adds arguments and environment (the environment is cleared).
    pub fn command(&self, program: &str, mounts: &Mounts) -> std::process::Command {
        match self {
            Self::Unsandboxed { .. } => {
                let mut c = std::process::Command::new(program);
                c.current_dir(mounts.workdir).env_clear().process_group(0);
                c
            }
            Self::Bwrap { bwrap, python } => {
                let mut c = std::process::Command::new(bwrap);
                c.env_clear().process_group(0);
                c.args(["--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]);
                c.args(["--uid", &SANDBOX_UID.to_string(), "--gid", &SANDBOX_UID.to_string(), "--hostname"]);
                c.arg(HOST);
                if mounts.network {
                    c.arg("--share-net");
                }
                c.args(["--ro-bind", "/usr", "/usr", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]);
                // Merged-/usr systems link these into /usr; older ones have real folders.
                for top in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
                    match std::fs::read_link(top) {
                        Ok(target) => {
                            c.arg("--symlink").arg(target).arg(top);
                        }
                        Err(_) if Path::new(top).is_dir() => {
                            c.args(["--ro-bind", top, top]);
                        }
                        Err(_) => {}
                    }
                }
                let mut etc = vec!["/etc/ld.so.cache", "/etc/alternatives", "/etc/localtime", "/etc/ssl"];
                if mounts.network {
                    etc.extend(["/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/ca-certificates"]);
                }
                for path in etc {
                    c.args(["--ro-bind-try", path, path]);
                }
                if !python.prefix.starts_with("/usr") {
                    c.arg("--ro-bind").arg(&python.prefix).arg(&python.prefix);
                }
                for path in &mounts.read_only {
                    c.arg("--ro-bind").arg(path).arg(path);
                }
                for path in &mounts.writable {
                    c.arg("--bind").arg(path).arg(path);
                }
                c.arg("--chdir").arg(mounts.workdir).arg("--").arg(program);
                c
            }
        }
    }

    /// Stops a run started by [`Sandbox::command`]: SIGTERM to the user's
    /// processes, then, after `grace`, SIGKILL to all of them.
    pub async fn terminate(&self, child: &mut tokio::process::Child, grace: Duration) {
        use nix::sys::signal::{Signal, kill, killpg};
        use nix::unistd::Pid;
        let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) else { return };
        match self {
            Self::Unsandboxed { .. } => {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGTERM);
            }
            // bwrap itself dies on SIGTERM and takes the sandbox with it at
            // once, so the grace period goes to the processes inside: every
            // descendant of bwrap (its init inside ignores SIGTERM).
            Self::Bwrap { .. } => {
                for descendant in descendants(pid) {
                    let _ = kill(Pid::from_raw(descendant), Signal::SIGTERM);
                }
            }
        }
        if tokio::time::timeout(grace, child.wait()).await.is_err() {
            // SIGKILL to bwrap ends its PID namespace, and everything in it.
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = child.wait().await;
        }
    }
}

/// Every process below `root` in the process tree, read from `/proc`.
fn descendants(root: i32) -> Vec<i32> {
    let mut parents: Vec<(i32, i32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            // "pid (comm) state ppid …": comm may hold spaces and parentheses.
            let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok());
            if let Some(ppid) = ppid {
                parents.push((pid, ppid));
            }
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(parents.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    found.remove(0);
    found
}

/// A fresh folder for the start-up probe.
fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("capstan-sandbox-probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    #[test]
    fn descendants_of_a_process_are_found() {
        let mut child = std::process::Command::new("sh").args(["-c", "sleep 5 & wait"]).spawn().expect("spawn sh");
        let pid = i32::try_from(child.id()).expect("pid");
        let mut found = Vec::new();
        for _ in 0..50 {
            found = super::descendants(pid);
            if !found.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(found.len(), 1, "the sleep below sh: {found:?}");
        let _ = child.kill();
        let _ = child.wait();
    }
}
