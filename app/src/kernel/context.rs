//! The request context every domain function receives: who is calling (from
//! the session cookie or an API token), from where, under which request id;
//! and the helpers server functions use to build it and report its errors.

use crate::kernel::error::AppError;
use crate::kernel::roles::{Principal, Role};
use crate::kernel::state::AppState;
use axum::extract::FromRequestParts;
use http::request::Parts;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

pub async fn actor_by_id(pool: &PgPool, user_id: Uuid) -> Result<Option<Actor>, AppError> {
    let row =
        sqlx::query!("select user_id, email, display_name, is_site_admin from app_user where user_id = $1", user_id)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|r| Actor {
        user_id: r.user_id,
        email: r.email,
        display_name: r.display_name,
        is_site_admin: r.is_site_admin,
        token_id: None,
    }))
}

/// The user a browser session belongs to, if the session is still good:
/// signed in at the user's current session version, account not disabled.
pub async fn actor_for_session(pool: &PgPool, user_id: Uuid, version: i32) -> Result<Option<Actor>, AppError> {
    let row = sqlx::query!(
        "select user_id, email, display_name, is_site_admin from app_user
         where user_id = $1 and session_version = $2 and disabled_at is null",
        user_id,
        version
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| Actor {
        user_id: r.user_id,
        email: r.email,
        display_name: r.display_name,
        is_site_admin: r.is_site_admin,
        token_id: None,
    }))
}

/// What every token secret starts with.
pub const TOKEN_PREFIX: &str = "cap_";

/// How a token secret is stored: its SHA-256.
pub fn token_hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// How long a verified token is served from the cache before the database
/// is asked again (which also stamps its last use, at most once a minute).
/// A revoked token leaves every process's cache as soon as the revocation
/// commits (see [`crate::kernel::cache`]).
const TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// Resolves a bearer secret to its user; `None` for unknown, revoked or
/// expired tokens. A verified token is served from the cache without a
/// database round trip.
pub async fn authenticate(state: &AppState, secret: &str) -> Result<Option<Actor>, AppError> {
    if !secret.starts_with(TOKEN_PREFIX) || secret.len() > 200 {
        return Ok(None);
    }
    let hash = token_hash(secret);
    let key = format!("token:{}", hash.iter().map(|b| format!("{b:02x}")).collect::<String>());
    let now = time::OffsetDateTime::now_utc();
    if let Some((actor, expires_at)) = state.cache.get::<(Actor, Option<time::OffsetDateTime>)>(&key) {
        return Ok(expires_at.is_none_or(|e| e > now).then_some(actor));
    }
    let ticket = state.cache.ticket();
    let row = sqlx::query!(
        r#"select t.token_id, u.user_id, u.email, u.display_name, u.is_site_admin, t.expires_at,
                  (t.last_used_at is null or t.last_used_at < now() - interval '1 minute') as "stale!"
           from api_token t join app_user u on u.user_id = t.user_id
           where t.secret_hash = $1 and t.revoked_at is null and (t.expires_at is null or t.expires_at > now())
             and u.disabled_at is null"#,
        hash
    )
    .fetch_optional(&state.pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    if row.stale {
        // At most one write a minute per token keeps hot API paths read-only.
        sqlx::query!("update api_token set last_used_at = now() where token_id = $1", row.token_id)
            .execute(&state.pool)
            .await?;
    }
    let actor = Actor {
        user_id: row.user_id,
        email: row.email,
        display_name: row.display_name,
        is_site_admin: row.is_site_admin,
        token_id: Some(row.token_id),
    };
    state.cache.put(key, (actor.clone(), row.expires_at), ticket, TOKEN_TTL);
    Ok(Some(actor))
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

    /// The caller's role in team `team` (`None`: not a member), from the
    /// cache when it can (a membership change reaches every process's cache
    /// when it commits).
    pub async fn role_in(&self, team: Uuid) -> Result<Option<Role>, AppError> {
        let actor = self.actor()?;
        let key = format!("member:{team}:{}", actor.user_id);
        let cache = &self.state.cache;
        if let Some(role) = cache.get::<Option<Role>>(&key) {
            return Ok(role);
        }
        let ticket = cache.ticket();
        let role = sqlx::query_scalar!(
            r#"select role as "role: Role" from team_member where team_id = $1 and user_id = $2"#,
            team,
            actor.user_id
        )
        .fetch_optional(self.pool())
        .await?;
        cache.put(key, role, ticket, std::time::Duration::from_secs(300));
        Ok(role)
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
                Some(crate::kernel::context::authenticate(state, &secret).await?.ok_or(AppError::Unauthenticated)?)
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
                            crate::kernel::context::actor_for_session(&state.pool, a.user_id, a.version).await?
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
