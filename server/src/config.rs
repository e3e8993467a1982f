//! Typed configuration from flags and environment variables. Every variable
//! is documented in `.env.example`; secrets are wrapped so they never print.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// A value that must never appear in logs or `--help` defaults.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

#[derive(Debug, Parser)]
#[command(name = "capstan", version, about = "Capstan: a self-hostable control plane for ML teams on AWS.")]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Where local mode keeps its private PostgreSQL cluster and other state.
    #[arg(long, env = "CAPSTAN_DATA_DIR", default_value = ".capstan", global = true)]
    pub data_dir: PathBuf,

    /// PostgreSQL to use instead of the private local cluster.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<Secret>,

    /// Address the web server listens on.
    #[arg(long, env = "CAPSTAN_ADDR", default_value = "127.0.0.1:3000", global = true)]
    pub addr: SocketAddr,

    /// The URL users reach Capstan at (used for links, cookie `Secure` and
    /// the CSRF origin check). Defaults to http://<CAPSTAN_ADDR>.
    #[arg(long, env = "CAPSTAN_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// Folder with the compiled site (wasm, JS, CSS) made by scripts/build.sh.
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site", global = true)]
    pub site_root: PathBuf,

    /// Folder with PostgreSQL server binaries (initdb, pg_ctl); found automatically if unset.
    #[arg(long, env = "CAPSTAN_PG_BIN", global = true)]
    pub pg_bin: Option<PathBuf>,

    /// Sign a browser session out after this many minutes without a request.
    #[arg(long, env = "CAPSTAN_SESSION_IDLE_MINUTES", default_value_t = 720, global = true)]
    pub session_idle_minutes: i64,

    /// Failed sign-ins allowed per account and per client address in the window.
    #[arg(long, env = "CAPSTAN_LOGIN_MAX_FAILURES", default_value_t = 10, global = true)]
    pub login_max_failures: i64,

    /// The window for counting failed sign-ins, in minutes.
    #[arg(long, env = "CAPSTAN_LOGIN_WINDOW_MINUTES", default_value_t = 15, global = true)]
    pub login_window_minutes: i64,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "CAPSTAN_MAX_BODY_BYTES", default_value_t = 2 * 1024 * 1024, global = true)]
    pub max_body_bytes: usize,

    /// Requests running longer than this are cut off with 408.
    #[arg(long, env = "CAPSTAN_REQUEST_TIMEOUT_SECS", default_value_t = 30, global = true)]
    pub request_timeout_secs: u64,

    /// Largest number of database connections in the pool.
    #[arg(long, env = "CAPSTAN_DB_MAX_CONNECTIONS", default_value_t = 16, global = true)]
    pub db_max_connections: u32,

    /// `local` (no AWS account: private S3 endpoint, local runners) or `aws`.
    #[arg(long, env = "CAPSTAN_MODE", value_enum, default_value_t = Mode::Local, global = true)]
    pub mode: Mode,

    /// The bucket Capstan keeps its data in (created in local mode).
    #[arg(long, env = "CAPSTAN_S3_BUCKET", default_value = "capstan", global = true)]
    pub s3_bucket: String,

    /// AWS mode: an S3-compatible endpoint to use instead of AWS S3.
    #[arg(long, env = "CAPSTAN_S3_ENDPOINT", global = true)]
    pub s3_endpoint: Option<String>,

    /// The S3 endpoint as browsers reach it, for presigned upload and download
    /// URLs (defaults to the endpoint Capstan itself uses).
    #[arg(long, env = "CAPSTAN_S3_PUBLIC_URL", global = true)]
    pub s3_public_url: Option<String>,

    /// Local mode: where the private S3 endpoint listens.
    #[arg(long, env = "CAPSTAN_LOCAL_S3_ADDR", default_value = "127.0.0.1:3900", global = true)]
    pub local_s3_addr: SocketAddr,

    /// AWS region for SageMaker and the price table (AWS mode: also the SDK's
    /// region; defaults to AWS_REGION, then us-east-1).
    #[arg(long, env = "CAPSTAN_REGION", global = true)]
    pub region: Option<String>,

    /// AWS mode: the IAM role SageMaker training jobs run as (teams may set their own).
    #[arg(long, env = "CAPSTAN_SAGEMAKER_ROLE_ARN", global = true)]
    pub sagemaker_role_arn: Option<String>,

    /// AWS mode: a SageMaker API endpoint to use instead of AWS's (an emulator).
    #[arg(long, env = "CAPSTAN_SAGEMAKER_ENDPOINT", global = true)]
    pub sagemaker_endpoint: Option<String>,

    /// AWS mode: a SageMaker Runtime endpoint (InvokeEndpoint) to use instead
    /// of AWS's; defaults to `CAPSTAN_SAGEMAKER_ENDPOINT` when that is set.
    #[arg(long, env = "CAPSTAN_SAGEMAKER_RUNTIME_ENDPOINT", global = true)]
    pub sagemaker_runtime_endpoint: Option<String>,

    /// AWS mode: a CloudWatch Logs endpoint to use instead of AWS's (an emulator).
    #[arg(long, env = "CAPSTAN_LOGS_ENDPOINT", global = true)]
    pub logs_endpoint: Option<String>,

    /// AWS mode: a CloudWatch endpoint (the endpoints' variant metrics) to
    /// use instead of AWS's; defaults to `CAPSTAN_SAGEMAKER_ENDPOINT` when that is set.
    #[arg(long, env = "CAPSTAN_CLOUDWATCH_ENDPOINT", global = true)]
    pub cloudwatch_endpoint: Option<String>,

    /// Seconds between training status and log polls (default: 2 in local mode, 10 in AWS mode).
    #[arg(long, env = "CAPSTAN_TRAINING_POLL_SECS", global = true)]
    pub training_poll_secs: Option<u64>,

    /// Local mode: training jobs running at once; more wait in a queue.
    #[arg(long, env = "CAPSTAN_LOCAL_MAX_JOBS", default_value_t = 1, global = true)]
    pub local_max_jobs: usize,

    /// Local mode: the Python interpreter that runs training scripts.
    #[arg(long, env = "CAPSTAN_PYTHON", default_value = "python3", global = true)]
    pub python: String,

    /// Signs audit anchors (HMAC-SHA256); keep it outside the database. With
    /// it set, `capstan serve` anchors the audit chains every
    /// CAPSTAN_AUDIT_ANCHOR_MINUTES and `audit verify` checks against them.
    #[arg(long, env = "CAPSTAN_AUDIT_ANCHOR_KEY", hide_env_values = true, global = true)]
    pub audit_anchor_key: Option<Secret>,

    /// Minutes between automatic audit anchors (with CAPSTAN_AUDIT_ANCHOR_KEY).
    #[arg(long, env = "CAPSTAN_AUDIT_ANCHOR_MINUTES", default_value_t = 60, global = true)]
    pub audit_anchor_minutes: u64,

    /// When set, `/metrics` answers only `Authorization: Bearer <this token>`
    /// (for a Prometheus scraper); unset, it is open like `/healthz`.
    #[arg(long, env = "CAPSTAN_METRICS_TOKEN", hide_env_values = true, global = true)]
    pub metrics_token: Option<Secret>,

    /// Browser sessions end this many days after sign-in, however active.
    #[arg(long, env = "CAPSTAN_SESSION_MAX_DAYS", default_value_t = 7, global = true)]
    pub session_max_days: i64,

    /// Reverse proxies (comma-separated IP addresses) whose X-Forwarded-For or
    /// Forwarded headers name the client, for sign-in limits and the audit log.
    #[arg(long, env = "CAPSTAN_TRUSTED_PROXIES", value_delimiter = ',', global = true)]
    pub trusted_proxies: Vec<std::net::IpAddr>,

    /// Local mode: run training scripts without the bubblewrap sandbox, as
    /// Capstan's own OS user. UNSAFE: a script can then read and change all of
    /// Capstan's data (database, object files, credentials). Only for a
    /// single-user machine without bubblewrap.
    #[arg(long, env = "CAPSTAN_ALLOW_UNSANDBOXED_JOBS", default_value_t = false, global = true)]
    pub allow_unsandboxed_jobs: bool,

    /// Webhooks may be delivered to loopback, private and link-local
    /// addresses (a receiver inside the deployment's own network). Off by
    /// default: a team admin must not reach the deployment's internal
    /// services through a webhook URL.
    #[arg(long, env = "CAPSTAN_WEBHOOKS_ALLOW_PRIVATE", default_value_t = false, global = true)]
    pub webhooks_allow_private: bool,

    /// Local mode: seconds between SIGTERM and SIGKILL when a job is stopped.
    #[arg(long, env = "CAPSTAN_LOCAL_STOP_GRACE_SECS", default_value_t = 10, global = true)]
    pub local_stop_grace_secs: u64,

    /// Log output: `text` for people, `json` for log shippers.
    #[arg(long, env = "CAPSTAN_LOG_FORMAT", default_value = "text", global = true)]
    pub log_format: String,
}

impl Config {
    /// The public base URL without a trailing slash.
    pub fn public_url(&self) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("http://{}", self.addr)).trim_end_matches('/').to_owned()
    }

    /// `scheme://host[:port]` of the public URL, as browsers send it in `Origin`.
    pub fn public_origin(&self) -> Option<String> {
        let url = self.public_url();
        let (scheme, rest) = url.split_once("://")?;
        let host = rest.split('/').next()?;
        Some(format!("{scheme}://{host}"))
    }

    pub fn region(&self) -> String {
        self.region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "us-east-1".into())
    }

    pub fn training_poll(&self) -> std::time::Duration {
        let default = if self.mode == Mode::Aws { 10 } else { 2 };
        std::time::Duration::from_secs(self.training_poll_secs.unwrap_or(default).max(1))
    }

    pub fn secure_cookies(&self) -> bool {
        self.public_url().starts_with("https://")
    }

    /// Makes the data directory and the site root absolute, once, at start-up:
    /// relative paths would otherwise mean different places to code that
    /// runs in another working directory (training scripts run in their job's folder).
    pub fn resolve_paths(&mut self) -> anyhow::Result<()> {
        use anyhow::Context as _;
        self.data_dir = std::path::absolute(&self.data_dir)
            .with_context(|| format!("failed to resolve CAPSTAN_DATA_DIR {}", self.data_dir.display()))?;
        self.site_root = std::path::absolute(&self.site_root)
            .with_context(|| format!("failed to resolve LEPTOS_SITE_ROOT {}", self.site_root.display()))?;
        Ok(())
    }

    /// Checks values clap cannot; fails fast with the variable's name.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.session_idle_minutes > 0, "CAPSTAN_SESSION_IDLE_MINUTES must be positive");
        anyhow::ensure!(self.session_max_days > 0, "CAPSTAN_SESSION_MAX_DAYS must be positive");
        anyhow::ensure!(self.login_max_failures > 0, "CAPSTAN_LOGIN_MAX_FAILURES must be positive");
        anyhow::ensure!(self.login_window_minutes > 0, "CAPSTAN_LOGIN_WINDOW_MINUTES must be positive");
        anyhow::ensure!(self.request_timeout_secs > 0, "CAPSTAN_REQUEST_TIMEOUT_SECS must be positive");
        anyhow::ensure!(self.local_max_jobs > 0, "CAPSTAN_LOCAL_MAX_JOBS must be positive");
        anyhow::ensure!(
            matches!(self.log_format.as_str(), "text" | "json"),
            "CAPSTAN_LOG_FORMAT must be `text` or `json`"
        );
        if let Some(url) = &self.public_url {
            anyhow::ensure!(
                url.starts_with("http://") || url.starts_with("https://"),
                "CAPSTAN_PUBLIC_URL must start with http:// or https://"
            );
        }
        Ok(())
    }
}

/// Where Capstan keeps data and runs work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// No AWS account: a private S3 endpoint and local runners.
    Local,
    /// S3 and SageMaker in an AWS account.
    Aws,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage user accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Inspect the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Create a demo team with a generated dataset and launch a training job on it.
    Demo {
        /// Whose demo: an account's email (default: the first site admin).
        #[arg(long)]
        email: Option<String>,
        /// Once the demo's endpoint serves, send it sample traffic (5 requests/s for 15 minutes).
        #[arg(long)]
        traffic: bool,
    },
    /// Control the private local PostgreSQL cluster (local mode only).
    #[command(subcommand)]
    Db(DbCommand),
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account. The password is read from stdin, or prompted for on a terminal.
    Create {
        /// The new account's email address (its sign-in name).
        #[arg(long)]
        email: String,
        /// Display name; defaults to the part of the email before `@`.
        #[arg(long)]
        name: Option<String>,
        /// Make the account a site administrator.
        #[arg(long)]
        site_admin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for a user and print its secret once.
    Create {
        /// Whose token: the user's email address.
        #[arg(long)]
        email: String,
        /// A name to recognise the token by, e.g. `ci-pipeline`.
        #[arg(long)]
        name: String,
        /// Lifetime such as `30d`, `12h` or `90m`; no expiry if omitted.
        #[arg(long)]
        expires_in: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute every hash chain and check it against the newest anchor (or
    /// `--anchor FILE`); exits 1 and names the first broken event if any.
    Verify {
        /// An anchor file written by `audit anchor --out` (default: the newest in the bucket).
        #[arg(long)]
        anchor: Option<std::path::PathBuf>,
    },
    /// Sign the chains' current heads with CAPSTAN_AUDIT_ANCHOR_KEY and store
    /// them outside the database (the bucket, or `--out FILE`).
    Anchor {
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Start the private cluster (if needed) and print its connection URL.
    Start,
    /// Stop the private cluster.
    Stop,
}

/// Parses `30d`, `12h`, `90m` or `45s` into a duration.
pub fn parse_duration(raw: &str) -> Result<time::Duration, String> {
    let raw = raw.trim();
    let (num, unit) = raw.split_at(raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len()));
    let n: i64 = num.parse().map_err(|_| format!("`{raw}` is not a duration like 30d, 12h or 90m"))?;
    if n <= 0 {
        return Err("the duration must be positive".into());
    }
    match unit {
        "d" => Ok(time::Duration::days(n)),
        "h" => Ok(time::Duration::hours(n)),
        "m" => Ok(time::Duration::minutes(n)),
        "s" => Ok(time::Duration::seconds(n)),
        _ => Err(format!("`{raw}` is not a duration like 30d, 12h or 90m")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30d"), Ok(time::Duration::days(30)));
        assert_eq!(parse_duration("12h"), Ok(time::Duration::hours(12)));
        assert!(parse_duration("0d").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("5w").is_err());
    }

    #[test]
    fn secret_does_not_print() {
        let s: Secret = "postgres://u:hunter2@h/db".parse().expect("infallible");
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn public_url_defaults_to_addr() {
        let cli = Cli::parse_from(["capstan", "--addr", "127.0.0.1:4000"]);
        assert_eq!(cli.config.public_url(), "http://127.0.0.1:4000");
        assert!(!cli.config.secure_cookies());
        let cli = Cli::parse_from(["capstan", "--public-url", "https://capstan.example.com/"]);
        assert_eq!(cli.config.public_url(), "https://capstan.example.com");
        assert_eq!(cli.config.public_origin().as_deref(), Some("https://capstan.example.com"));
        let cli = Cli::parse_from(["capstan", "--public-url", "https://example.com:8443/capstan"]);
        assert_eq!(cli.config.public_origin().as_deref(), Some("https://example.com:8443"));
        assert!(cli.config.secure_cookies());
    }
}
