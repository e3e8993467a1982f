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
    /// Reverse proxies whose `X-Forwarded-For` / `Forwarded` headers name the
    /// client; from anyone else those headers are ignored.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// A browser session ends this long after sign-in, however active.
    pub session_max_age: time::Duration,
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
    /// Live streams (server-sent events) open per user, to cap them.
    pub open_streams: Arc<Mutex<std::collections::HashMap<Uuid, usize>>>,
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

/// The session key holding [`SessionAuth`]. (Sessions from before it held
/// only a user id under `user_id`; they are simply signed out.)
pub const SESSION_AUTH_KEY: &str = "auth";

/// Who a browser session is signed in as, and since when.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SessionAuth {
    pub user_id: Uuid,
    /// The user's `session_version` at sign-in: bumping it ends the session.
    pub version: i32,
    /// Unix seconds of the sign-in, for the absolute lifetime.
    pub signed_in_at: i64,
}

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
        let peer = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|ci| ci.0.ip());
        let client_addr = match peer {
            Some(peer) => client_ip(peer, &parts.headers, &state.settings.trusted_proxies).to_string(),
            None => "local".to_owned(),
        };

        let actor = match credentials(&parts.headers) {
            Credentials::Bearer(secret) => {
                Some(crate::tokens::ssr::authenticate(&state.pool, &secret).await?.ok_or(AppError::Unauthenticated)?)
            }
            // Basic or Negotiate from a proxy in front: browsers add those to
            // cross-site posts too, so they never stand in for the cookie.
            Credentials::Other => None,
            Credentials::None => match parts.extensions.get::<tower_sessions::Session>() {
                Some(session) => {
                    let auth: Option<SessionAuth> = session.get(SESSION_AUTH_KEY).await.map_err(|e| {
                        tracing::error!(error = %e, "session store failed");
                        AppError::Internal
                    })?;
                    let now = time::OffsetDateTime::now_utc().unix_timestamp();
                    match auth {
                        Some(a) if now - a.signed_in_at < state.settings.session_max_age.whole_seconds() => {
                            crate::accounts::ssr::actor_for_session(&state.pool, a.user_id, a.version).await?
                        }
                        _ => None,
                    }
                }
                None => None,
            },
        };
        Ok(Self { state: state.clone(), actor, request_id, client_addr })
    }
}

/// The client's address: the peer's, unless the peer is a trusted proxy;
/// then the nearest address in `X-Forwarded-For` (or `Forwarded: for=`)
/// that is not itself a trusted proxy. Entries further left are written by
/// the client and could be anything, so they are never taken.
pub fn client_ip(peer: std::net::IpAddr, headers: &http::HeaderMap, trusted: &[std::net::IpAddr]) -> std::net::IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let mut hops: Vec<std::net::IpAddr> = Vec::new();
    for value in headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()) {
        hops.extend(value.split(',').filter_map(|h| h.trim().parse::<std::net::IpAddr>().ok()));
    }
    if hops.is_empty() {
        for value in headers.get_all(http::header::FORWARDED).iter().filter_map(|v| v.to_str().ok()) {
            for part in value.split([',', ';']) {
                if let Some((key, addr)) = part.trim().split_once('=')
                    && key.trim().eq_ignore_ascii_case("for")
                {
                    let addr = addr.trim().trim_matches('"');
                    let addr = addr.strip_prefix('[').and_then(|a| a.split_once(']')).map_or(addr, |(a, _)| a);
                    if let Ok(ip) = addr.parse() {
                        hops.push(ip);
                    } else if let Ok(sock) = addr.parse::<std::net::SocketAddr>() {
                        hops.push(sock.ip());
                    }
                }
            }
        }
    }
    hops.into_iter().rev().find(|ip| !trusted.contains(ip)).unwrap_or(peer)
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

#[cfg(test)]
mod tests {
    use super::client_ip;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-forwarded-for", "6.6.6.6, 203.0.113.7".parse().expect("header"));
        let proxy = ip("10.0.0.2");
        // from a stranger the header is ignored
        assert_eq!(client_ip(ip("198.51.100.1"), &headers, &[proxy]), ip("198.51.100.1"));
        // through the proxy: the hop it saw, not what the client wrote before it
        assert_eq!(client_ip(proxy, &headers, &[proxy]), ip("203.0.113.7"));
        // two trusted proxies in a row are both skipped
        headers.insert("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.0.0.3".parse().expect("header"));
        assert_eq!(client_ip(proxy, &headers, &[proxy, ip("10.0.0.3")]), ip("203.0.113.7"));
        let mut forwarded = http::HeaderMap::new();
        forwarded.insert(http::header::FORWARDED, "for=\"[2001:db8::1]:4711\";proto=https".parse().expect("header"));
        assert_eq!(client_ip(proxy, &forwarded, &[proxy]), ip("2001:db8::1"));
        assert_eq!(client_ip(proxy, &http::HeaderMap::new(), &[proxy]), proxy, "no header: the proxy itself");
    }
}
