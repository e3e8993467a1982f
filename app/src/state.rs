//! Server-side application state and the request context every domain
//! function receives: who is calling, from where, under which request id.

use crate::error::AppError;
use crate::roles::Principal;
use axum::extract::{FromRef, FromRequestParts};
use http::request::Parts;
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
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            login_max_failures: 10,
            login_window: time::Duration::minutes(15),
            region: "us-east-1".into(),
            sagemaker_role_arn: None,
        }
    }
}

/// Everything handlers and server functions share; cheap to clone.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub pool: PgPool,
    pub leptos_options: LeptosOptions,
    pub settings: Arc<Settings>,
    /// The one-time setup token, present only while no user exists.
    pub setup_token: Arc<Mutex<Option<String>>>,
    /// Capstan's bucket (local endpoint or AWS S3).
    pub storage: storage::Storage,
    /// Where training jobs run: SageMaker or the local runner.
    pub training: Arc<dyn training::Backend>,
    /// Wakes the training worker (a job was launched or stopped).
    pub training_wake: Arc<tokio::sync::Notify>,
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub is_site_admin: bool,
    /// Set when the call was authenticated with an API token.
    pub token_id: Option<Uuid>,
}

impl Actor {
    pub fn principal(&self) -> Principal {
        Principal { is_site_admin: self.is_site_admin }
    }
}

/// The session key holding the signed-in user's id.
pub const SESSION_USER_KEY: &str = "user_id";

/// Per-request context: state, caller (if any) and what the audit log records.
#[derive(Clone)]
pub struct Ctx {
    pub state: AppState,
    pub actor: Option<Actor>,
    pub request_id: Option<String>,
    pub client_addr: String,
}

impl Ctx {
    pub fn pool(&self) -> &PgPool {
        &self.state.pool
    }

    /// The caller, or `Unauthenticated`.
    pub fn actor(&self) -> Result<&Actor, AppError> {
        self.actor.as_ref().ok_or(AppError::Unauthenticated)
    }

    /// Builds the context from request parts: a bearer token wins over the
    /// session cookie; a bad bearer token is an error, never a fallback.
    pub async fn from_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let request_id = parts.headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let client_addr = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|ci| ci.0.ip().to_string())
            .unwrap_or_else(|| "local".to_owned());

        let actor = match credentials(&parts.headers) {
            Credentials::Bearer(secret) => {
                Some(crate::tokens::ssr::authenticate(&state.pool, &secret).await?.ok_or(AppError::Unauthenticated)?)
            }
            // Basic or Negotiate from a proxy in front: browsers add those to
            // cross-site posts too, so they never stand in for the cookie.
            Credentials::Other => None,
            Credentials::None => match parts.extensions.get::<tower_sessions::Session>() {
                Some(session) => {
                    let user_id: Option<Uuid> = session.get(SESSION_USER_KEY).await.map_err(|e| {
                        tracing::error!(error = %e, "session store failed");
                        AppError::Internal
                    })?;
                    match user_id {
                        Some(id) => crate::accounts::ssr::actor_by_id(&state.pool, id).await?,
                        None => None,
                    }
                }
                None => None,
            },
        };
        Ok(Self { state: state.clone(), actor, request_id, client_addr })
    }
}

/// What a request's `Authorization` header carries.
#[derive(Debug, PartialEq, Eq)]
pub enum Credentials {
    /// No header: the session cookie (if any) says who is calling.
    None,
    /// `Bearer <secret>` (scheme case-insensitive): an API token, which no
    /// browser sends by itself, so it needs no CSRF check.
    Bearer(String),
    /// Any other scheme: neither a token nor a reason to trust the cookie.
    Other,
}

/// Reads the `Authorization` header; the CSRF check and authentication use
/// this one reading so they cannot disagree about what a request carries.
pub fn credentials(headers: &http::HeaderMap) -> Credentials {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else { return Credentials::None };
    match value.to_str().ok().and_then(|v| v.trim().split_once(' ')) {
        Some((scheme, secret)) if scheme.eq_ignore_ascii_case("bearer") => {
            Credentials::Bearer(secret.trim().to_owned())
        }
        _ => Credentials::Other,
    }
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ctx::from_parts(parts, state).await
    }
}

/// The context of the server function being run.
pub async fn server_ctx() -> Result<Ctx, AppError> {
    use leptos::prelude::use_context;
    let state = use_context::<AppState>().ok_or_else(|| {
        tracing::error!("AppState missing from server function context");
        AppError::Internal
    })?;
    let mut parts = use_context::<Parts>().ok_or(AppError::Internal)?;
    Ctx::from_parts(&mut parts, &state).await
}

/// The session of the server function being run.
pub fn server_session() -> Result<tower_sessions::Session, AppError> {
    use leptos::prelude::use_context;
    use_context::<Parts>().and_then(|p| p.extensions.get::<tower_sessions::Session>().cloned()).ok_or_else(|| {
        tracing::error!("session layer missing");
        AppError::Internal
    })
}

/// Sets the HTTP status of a server function's response from its error, so
/// plain clients see 4xx/5xx and not a blanket 500.
pub fn finish<T>(result: Result<T, AppError>) -> Result<T, AppError> {
    if let Err(err) = &result
        && let Some(opts) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>()
        && let Ok(status) = http::StatusCode::from_u16(err.status())
    {
        opts.set_status(status);
    }
    result
}
