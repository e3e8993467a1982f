//! Server-side application state: the pool, the settings, storage, the
//! training backend, and the counters of open live streams.

use crate::kernel::error::AppError;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use sqlx::PgPool;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Tunables the domain needs (the server's config fills them in).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Failed logins allowed per account and per client address in `login_window`.
    pub login_max_failures: i64,
    pub login_window: time::Duration,
    /// The AWS region jobs run in (and whose prices apply).
    pub region: String,
    /// The IAM role SageMaker jobs run as, unless the team sets its own.
    pub sagemaker_role_arn: Option<String>,
    /// Reverse proxies whose `X-Forwarded-For` / `Forwarded` headers name the
    /// client; from anyone else those headers are ignored.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// A browser session ends this long after sign-in, however active.
    pub session_max_age: time::Duration,
    /// Webhooks may go to loopback, private and link-local addresses.
    pub webhooks_allow_private: bool,
    /// Webhook URLs must be https (AWS mode).
    pub webhooks_require_https: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            login_max_failures: 10,
            login_window: time::Duration::minutes(15),
            region: "us-east-1".into(),
            sagemaker_role_arn: None,
            trusted_proxies: Vec::new(),
            session_max_age: time::Duration::days(7),
            webhooks_allow_private: false,
            webhooks_require_https: false,
        }
    }
}

/// Everything handlers and server functions share; cheap to clone.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub pool: PgPool,
    /// Shared, as everything here: the gateway clones the state a few times
    /// per invocation.
    #[from_ref(skip)]
    pub leptos_options: Arc<LeptosOptions>,
    pub settings: Arc<Settings>,
    /// The one-time setup token, present only while no user exists.
    pub setup_token: Arc<Mutex<Option<String>>>,
    /// Capstan's bucket (local endpoint or AWS S3).
    pub storage: Arc<storage::Storage>,
    /// Where training jobs run: SageMaker or the local runner.
    pub training: Arc<dyn training::Backend>,
    /// Wakes the training worker (a job was launched or stopped).
    pub training_wake: Arc<tokio::sync::Notify>,
    /// SageMaker's model registry, which the registry mirrors in AWS mode
    /// (`None` in local mode).
    pub packages: Option<Arc<dyn training::packages::ModelPackages>>,
    /// Where endpoints run: the local serving runner or SageMaker (`None`
    /// in a process that serves no endpoints, such as a CLI command).
    pub serving: Option<Arc<dyn serving::Serving>>,
    /// Wakes the serving worker (an endpoint was created, changed or deleted).
    #[from_ref(skip)]
    pub serving_wake: Arc<tokio::sync::Notify>,
    /// Wakes the rollouts' worker (a rollout started or commanded).
    #[from_ref(skip)]
    pub rollouts_wake: Arc<tokio::sync::Notify>,
    /// What this process's gateway saw, per endpoint variant and minute,
    /// until the traffic worker adds it to the rollups.
    pub traffic: Arc<serving::traffic::Recorder>,
    /// Data capture of endpoints the gateway serves itself, until the
    /// traffic worker writes it to the bucket.
    pub captures: Arc<serving::capture::Captures>,
    /// Live streams (server-sent events) open per user, to cap them.
    pub open_streams: Arc<Mutex<std::collections::HashMap<Uuid, usize>>>,
    /// This process, as the owner of the work leases it holds (several
    /// processes may share one database).
    pub instance: Uuid,
    /// Hot reads (verified tokens, memberships, aliases), invalidated on
    /// every process by database notifications.
    pub cache: Arc<crate::kernel::cache::Cache>,
}

/// Leptos' handlers take the options from the state.
impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        (*state.leptos_options).clone()
    }
}

/// One open live stream of a user, counted in [`AppState::open_streams`]
/// until it is dropped (the client went away or the stream ended).
pub struct StreamSlot {
    streams: Arc<Mutex<std::collections::HashMap<Uuid, usize>>>,
    user: Uuid,
}

impl AppState {
    /// Takes one of a user's `max` live stream slots; `RateLimited` when all
    /// are in use.
    pub fn stream_slot(&self, user: Uuid, max: usize) -> Result<StreamSlot, AppError> {
        let mut open = self.open_streams.lock().map_err(|_| AppError::Internal)?;
        let n = open.entry(user).or_default();
        if *n >= max {
            return Err(AppError::RateLimited { retry_after_secs: 10 });
        }
        *n += 1;
        Ok(StreamSlot { streams: self.open_streams.clone(), user })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.streams.lock()
            && let Some(n) = open.get_mut(&self.user)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.user);
            }
        }
    }
}
