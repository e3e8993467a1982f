//! Local mode's private PostgreSQL cluster: created on first run under the
//! data directory, started with a Unix socket only (no TCP port), reused if
//! already running, and stopped on shutdown if this process started it.

use anyhow::{Context as _, bail};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct LocalPostgres {
    bin: PathBuf,
    /// The `capstan` role's password (scram-sha-256), kept in
    /// `postgres/password` (mode 0600, Capstan's own user).
    password: String,
    pgdata: PathBuf,
    socket_dir: PathBuf,
    log_file: PathBuf,
    /// When Capstan runs as root, PostgreSQL runs as this (uid, gid).
    run_as: Option<(u32, u32)>,
    started_here: bool,
}

const DB_NAME: &str = "capstan";
const DB_USER: &str = "capstan";

/// Finds a folder holding `initdb` and `pg_ctl`.
fn find_bin(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = explicit {
        anyhow::ensure!(dir.join("pg_ctl").exists(), "CAPSTAN_PG_BIN {} has no pg_ctl", dir.display());
        return Ok(dir.to_owned());
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    // Highest version first.
    candidates.sort_by_key(|p| {
        std::cmp::Reverse(
            p.parent()
                .and_then(|v| v.file_name())
                .and_then(|v| v.to_str())
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0),
        )
    });
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    candidates.into_iter().find(|d| d.join("initdb").exists() && d.join("pg_ctl").exists()).context(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install the `postgresql` package, \
             set CAPSTAN_PG_BIN, or set DATABASE_URL to use an existing server",
    )
}

impl LocalPostgres {
    /// Makes sure the cluster under `data_dir` exists and runs.
    pub async fn ensure_running(data_dir: &Path, bin: Option<&Path>) -> anyhow::Result<Self> {
        let mut pg = Self::locate(data_dir, bin)?;
        pg.init_and_start().await?;
        Ok(pg)
    }

    /// Works out the cluster's folders and owner without starting anything.
    pub fn locate(data_dir: &Path, bin: Option<&Path>) -> anyhow::Result<Self> {
        let bin = find_bin(bin)?;
        let fresh = !data_dir.exists();
        std::fs::create_dir_all(data_dir).with_context(|| format!("failed to create {}", data_dir.display()))?;
        let data_dir = data_dir.canonicalize().context("failed to resolve the data directory")?;
        let root = data_dir.join("postgres");
        let pgdata = root.join("data");
        let mut socket_dir = root.join("run");
        // Unix socket paths are limited to ~107 bytes.
        if socket_dir.as_os_str().len() > 80 {
            let digest = fnv_hex(socket_dir.to_string_lossy().as_bytes());
            socket_dir = std::env::temp_dir().join(format!("capstan-pg-{}", &digest[..12]));
        }
        let run_as = if nix::unistd::geteuid().is_root() {
            let user =
                nix::unistd::User::from_name("postgres").context("failed to look up the `postgres` user")?.context(
                    "PostgreSQL refuses to run as root and there is no `postgres` user; \
                     install the `postgresql` package or run Capstan as another user",
                )?;
            Some((user.uid.as_raw(), user.gid.as_raw()))
        } else {
            None
        };
        // Nobody else lists a data directory Capstan made; the postgres user
        // (when Capstan runs as root) only passes through it to its own
        // folder. A folder the user named that already existed keeps its mode.
        if fresh {
            std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o711))
                .with_context(|| format!("failed to restrict {}", data_dir.display()))?;
        }
        for dir in [&root, &socket_dir] {
            std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("failed to restrict {}", dir.display()))?;
            if let Some((uid, gid)) = run_as {
                std::os::unix::fs::chown(dir, Some(uid), Some(gid))
                    .with_context(|| format!("failed to hand {} to the postgres user", dir.display()))?;
            }
        }
        // Kept beside the cluster's folder (not in it: when Capstan runs as
        // root, that folder belongs to the postgres user).
        let password = crate::objects::secret_file(&data_dir.join("postgres-password"), 24)?;
        Ok(Self { bin, password, log_file: root.join("postgres.log"), pgdata, socket_dir, run_as, started_here: false })
    }

    async fn init_and_start(&mut self) -> anyhow::Result<()> {
        let pg = self;
        let root = pg.pgdata.parent().map(Path::to_owned).unwrap_or_default();
        if !pg.pgdata.join("PG_VERSION").exists() {
            tracing::info!(pgdata = %pg.pgdata.display(), "creating the private PostgreSQL cluster");
            // initdb reads the password from a file, as the postgres user
            // when Capstan runs as root; the file is gone once it has.
            let pwfile = root.join("initdb-password");
            crate::objects::write_private(&pwfile, &pg.password)?;
            if let Some((uid, gid)) = pg.run_as {
                std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid))
                    .with_context(|| format!("failed to hand {} to the postgres user", pwfile.display()))?;
            }
            let pwfile_arg = format!("--pwfile={}", pwfile.display());
            let made = pg.run(
                "initdb",
                &[
                    "-D".as_ref(),
                    pg.pgdata.as_os_str(),
                    "-U".as_ref(),
                    DB_USER.as_ref(),
                    "--auth=scram-sha-256".as_ref(),
                    pwfile_arg.as_ref(),
                    "-E".as_ref(),
                    "UTF8".as_ref(),
                    "--locale=C".as_ref(),
                ],
            );
            let _ = std::fs::remove_file(&pwfile);
            made.map_err(|e| {
                e.context(format!(
                    "initdb failed (if running as root, the postgres user must be able to reach {})",
                    root.display()
                ))
            })?;
        }
        if !pg.is_running() {
            let opts = format!("-k {} -c listen_addresses=''", pg.socket_dir.display());
            pg.run(
                "pg_ctl",
                &[
                    "-D".as_ref(),
                    pg.pgdata.as_os_str(),
                    "-l".as_ref(),
                    pg.log_file.as_os_str(),
                    "-o".as_ref(),
                    opts.as_ref(),
                    "-w".as_ref(),
                    "-t".as_ref(),
                    "60".as_ref(),
                    "start".as_ref(),
                ],
            )
            .with_context(|| format!("PostgreSQL did not start; see {}", pg.log_file.display()))?;
            pg.started_here = true;
            tracing::info!(socket = %pg.socket_dir.display(), "private PostgreSQL started");
        } else if pg.owner_gone() {
            // Left running by a Capstan that died without stopping it: ours now,
            // so it stops with this process like one it started.
            pg.started_here = true;
            tracing::info!(socket = %pg.socket_dir.display(), "adopting the private PostgreSQL a stopped Capstan left running");
        } else {
            tracing::info!(socket = %pg.socket_dir.display(), "reusing the running private PostgreSQL");
        }
        if pg.started_here {
            let owner = root.join("owner.pid");
            std::fs::write(&owner, std::process::id().to_string())
                .with_context(|| format!("failed to write {}", owner.display()))?;
        }
        pg.require_password().await?;
        pg.ensure_database().await
    }

    /// Clusters made before passwords (`--auth=trust`) get the password and a
    /// `pg_hba.conf` that demands it, then reload; a no-op afterwards.
    async fn require_password(&self) -> anyhow::Result<()> {
        use sqlx::Connection as _;
        let hba = self.pgdata.join("pg_hba.conf");
        let current = std::fs::read_to_string(&hba).with_context(|| format!("failed to read {}", hba.display()))?;
        if !current.lines().any(|l| l.split_whitespace().last() == Some("trust")) {
            return Ok(());
        }
        tracing::info!("the private PostgreSQL accepted connections without a password: setting one");
        let trusted = format!("postgres://{DB_USER}@localhost/postgres?host={}", self.socket_dir.display());
        let mut conn =
            sqlx::PgConnection::connect(&trusted).await.context("failed to connect to the private PostgreSQL")?;
        sqlx::query(&format!("alter role {DB_USER} password '{}'", self.password)).execute(&mut conn).await?;
        conn.close().await?;
        std::fs::write(
            &hba,
            "# Written by Capstan: every connection needs the password.\nlocal all all scram-sha-256\n",
        )
        .with_context(|| format!("failed to write {}", hba.display()))?;
        self.run("pg_ctl", &["-D".as_ref(), self.pgdata.as_os_str(), "reload".as_ref()])
    }

    /// Whether the Capstan that started the running cluster has exited.
    /// Clusters started by `capstan db start` (no owner file) are left to it.
    fn owner_gone(&self) -> bool {
        let owner = self.pgdata.parent().map(|r| r.join("owner.pid")).unwrap_or_default();
        match std::fs::read_to_string(owner).ok().and_then(|p| p.trim().parse::<u32>().ok()) {
            Some(pid) => pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists(),
            None => false,
        }
    }

    fn is_running(&self) -> bool {
        self.command("pg_ctl")
            .arg("-D")
            .arg(&self.pgdata)
            .arg("status")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        // The postgres user may not be able to enter the caller's directory.
        cmd.current_dir(self.pgdata.parent().unwrap_or(Path::new("/")));
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    fn run(&self, program: &str, args: &[&std::ffi::OsStr]) -> anyhow::Result<()> {
        let out = self.command(program).args(args).output().with_context(|| format!("failed to run {program}"))?;
        if !out.status.success() {
            bail!("{program} failed: {}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
        }
        Ok(())
    }

    /// The URL of the `capstan` database over the private socket.
    pub fn url(&self) -> String {
        self.url_for(DB_NAME)
    }

    fn url_for(&self, db: &str) -> String {
        format!("postgres://{DB_USER}:{}@localhost/{db}?host={}", self.password, self.socket_dir.display())
    }

    async fn ensure_database(&self) -> anyhow::Result<()> {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&self.url_for("postgres"))
            .await
            .context("failed to connect to the private PostgreSQL")?;
        let exists: bool = sqlx::query_scalar("select exists(select 1 from pg_database where datname = $1)")
            .bind(DB_NAME)
            .fetch_one(&mut conn)
            .await?;
        if !exists {
            sqlx::query(&format!("create database {DB_NAME}")).execute(&mut conn).await?;
        }
        conn.close().await?;
        Ok(())
    }

    /// Leaves the cluster running for good (`capstan db start`): no process
    /// owns it, so no later `serve` adopts or stops it.
    pub fn release(&mut self) {
        self.started_here = false;
        let _ = std::fs::remove_file(self.pgdata.parent().unwrap_or(Path::new("/")).join("owner.pid"));
    }

    /// Stops the cluster if this process started it (or if `force`).
    pub fn stop(&self, force: bool) -> anyhow::Result<()> {
        if !(self.started_here || force) || !self.is_running() {
            return Ok(());
        }
        self.run(
            "pg_ctl",
            &["-D".as_ref(), self.pgdata.as_os_str(), "-m".as_ref(), "fast".as_ref(), "-w".as_ref(), "stop".as_ref()],
        )?;
        let _ = std::fs::remove_file(self.pgdata.parent().unwrap_or(Path::new("/")).join("owner.pid"));
        tracing::info!("private PostgreSQL stopped");
        Ok(())
    }
}

fn fnv_hex(bytes: &[u8]) -> String {
    // A tiny FNV-1a is enough to name a temp folder; no crypto needed.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}
