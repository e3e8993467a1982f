//! The delivery worker: sends pending deliveries, signed as the Standard
//! Webhooks specification says, at least once.
//!
//! - Headers `webhook-id` (the same on every attempt of a delivery),
//!   `webhook-timestamp` (seconds, of this attempt) and `webhook-signature:
//!   v1,<base64 of HMAC-SHA256 over "<id>.<timestamp>.<body>">`, keyed with
//!   the base64-decoded part of the endpoint's `whsec_` secret.
//! - A 2xx answer within 10 seconds delivers; anything else is retried
//!   after 5 s, 10 s, 20 s … (at most an hour apart) until a day has passed,
//!   then the delivery is `failed`. An endpoint whose deliveries have failed
//!   without a success for 24 hours is disabled, with the reason.
//! - Redirects are not followed. Every address the URL's host resolves to
//!   is checked when connecting (not only when the URL was saved), so a name
//!   that later points into the deployment's network is refused too.
//!
//! Each delivery is claimed with a lease, so several Capstan processes share
//! the work without sending one delivery twice at once.

use crate::kernel::error::AppError;
use crate::kernel::state::AppState;
use crate::webhooks::domain::{check_url, public, refused_address};
use crate::webhooks::types::message_id;
use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long one attempt may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The signature of a delivery: `v1,<base64 HMAC-SHA256>`.
pub fn sign(secret: &str, message_id: &str, timestamp: i64, body: &str) -> Result<String, String> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .map_err(|e| format!("the endpoint's secret is not base64: {e}"))?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).map_err(|e| e.to_string())?;
    mac.update(format!("{message_id}.{timestamp}.{body}").as_bytes());
    Ok(format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())))
}

/// A resolver that drops the addresses deliveries may not go to.
#[derive(Clone)]
struct Guarded {
    allow_private: bool,
}

impl tower_service::Service<Name> for Guarded {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow = self.allow_private;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let usable: Vec<SocketAddr> = found.into_iter().filter(|a| allow || public(a.ip())).collect();
            if usable.is_empty() {
                return Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, refused_address(name.as_str())));
            }
            Ok(usable.into_iter())
        })
    }
}

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector<Guarded>>, Full<Bytes>>;

fn client(allow_private: bool) -> Result<&'static HttpClient, String> {
    static STRICT: OnceLock<Result<HttpClient, String>> = OnceLock::new();
    static OPEN: OnceLock<Result<HttpClient, String>> = OnceLock::new();
    let cell = if allow_private { &OPEN } else { &STRICT };
    cell.get_or_init(|| {
        let mut http = HttpConnector::new_with_resolver(Guarded { allow_private });
        http.enforce_http(false);
        http.set_connect_timeout(Some(TIMEOUT));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
            .map_err(|e| format!("no TLS roots: {e}"))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Client::builder(hyper_util::rt::TokioExecutor::new()).build(https))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// What one attempt found.
struct Outcome {
    status: Option<u16>,
    latency_ms: i32,
    excerpt: String,
    error: Option<String>,
}

impl Outcome {
    fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

async fn attempt(state: &AppState, url: &str, secret: &str, id: &str, body: &str) -> Outcome {
    let started = Instant::now();
    let done = |status: Option<u16>, excerpt: String, error: Option<String>| Outcome {
        status,
        latency_ms: i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX),
        excerpt,
        error,
    };
    let settings = &state.settings;
    // the rules may have changed since the URL was saved
    let uri = match check_url(url, settings.webhooks_require_https, settings.webhooks_allow_private) {
        Ok(uri) => uri,
        Err(e) => return done(None, String::new(), Some(e)),
    };
    let client = match client(settings.webhooks_allow_private) {
        Ok(c) => c,
        Err(e) => return done(None, String::new(), Some(e)),
    };
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let signature = match sign(secret, id, timestamp, body) {
        Ok(s) => s,
        Err(e) => return done(None, String::new(), Some(e)),
    };
    let request = http::Request::post(uri)
        .header("content-type", "application/json")
        .header("user-agent", "Capstan-Webhooks/1")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(Full::new(Bytes::from(body.to_owned())));
    let request = match request {
        Ok(r) => r,
        Err(e) => return done(None, String::new(), Some(e.to_string())),
    };
    let answer = tokio::time::timeout(TIMEOUT, async {
        let response = client.request(request).await.map_err(|e| {
            // the connector's own error (a refused address, say) is the useful part
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text = s.to_string();
                source = s.source();
            }
            text
        })?;
        let status = response.status().as_u16();
        let body = http_body_util::Limited::new(response.into_body(), 64 * 1024)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let excerpt: String = String::from_utf8_lossy(&body).chars().take(500).collect();
        Ok::<_, String>((status, excerpt))
    })
    .await;
    match answer {
        Ok(Ok((status, excerpt))) => done(Some(status), excerpt, None),
        Ok(Err(e)) => done(None, String::new(), Some(e)),
        Err(_) => done(None, String::new(), Some(format!("no answer within {} seconds", TIMEOUT.as_secs()))),
    }
}

struct Due {
    delivery_id: Uuid,
    webhook_id: Uuid,
    payload: serde_json::Value,
    attempts: i32,
    url: String,
    secret: String,
    active: bool,
}

/// Sends the due deliveries no live process holds; returns how many were
/// delivered.
pub async fn deliver_due(state: &AppState) -> Result<usize, AppError> {
    let due = sqlx::query_as!(
        Due,
        r#"with claimed as (
               update webhook_delivery set lease_owner = $1, lease_until = now() + interval '1 minute'
               where delivery_id in (
                   select delivery_id from webhook_delivery
                   where state = 'pending' and next_attempt_at <= now()
                     and (lease_until is null or lease_until < now())
                   order by next_attempt_at limit 20 for update skip locked)
               returning delivery_id, webhook_id, payload, attempts)
           select c.delivery_id as "delivery_id!", c.webhook_id as "webhook_id!", c.payload as "payload!",
                  c.attempts as "attempts!", w.url, w.secret, w.active
           from claimed c join webhook w on w.webhook_id = c.webhook_id"#,
        state.instance
    )
    .fetch_all(&state.pool)
    .await?;
    let mut delivered = 0;
    for d in due {
        if !d.active {
            sqlx::query!(
                "update webhook_delivery set state = 'failed', lease_until = null where delivery_id = $1",
                d.delivery_id
            )
            .execute(&state.pool)
            .await?;
            continue;
        }
        let id = message_id(d.delivery_id);
        let body = d.payload.to_string();
        let outcome = attempt(state, &d.url, &d.secret, &id, &body).await;
        let number = d.attempts + 1;
        let mut tx = state.pool.begin().await?;
        sqlx::query!(
            "insert into webhook_attempt (delivery_id, attempt, status_code, latency_ms, response_excerpt, error)
             values ($1, $2, $3, $4, $5, $6)",
            d.delivery_id,
            number,
            outcome.status.map(i32::from),
            outcome.latency_ms,
            outcome.excerpt,
            outcome.error
        )
        .execute(&mut *tx)
        .await?;
        if outcome.ok() {
            sqlx::query!(
                "update webhook_delivery set state = 'delivered', attempts = $2, delivered_at = now(), lease_until = null
                 where delivery_id = $1",
                d.delivery_id,
                number
            )
            .execute(&mut *tx)
            .await?;
            sqlx::query!("update webhook set failing_since = null where webhook_id = $1", d.webhook_id)
                .execute(&mut *tx)
                .await?;
            delivered += 1;
        } else {
            let why =
                outcome.error.clone().unwrap_or_else(|| format!("answered {}", outcome.status.unwrap_or_default()));
            // 5 s, 10 s, 20 s … at most an hour apart, for a day
            let delay = (5.0 * 2f64.powi(d.attempts.clamp(0, 20))).min(3600.0);
            sqlx::query!(
                "update webhook_delivery
                 set attempts = $2, lease_until = null, next_attempt_at = now() + make_interval(secs => $3),
                     state = case when created_at < now() - interval '24 hours' then 'failed' else 'pending' end
                 where delivery_id = $1",
                d.delivery_id,
                number,
                delay
            )
            .execute(&mut *tx)
            .await?;
            let reason = format!("Deliveries failed for 24 hours; the last: {why}");
            sqlx::query!(
                "update webhook set failing_since = coalesce(failing_since, now()),
                        active = case when failing_since < now() - interval '24 hours' then false else active end,
                        disabled_reason = case when failing_since < now() - interval '24 hours'
                                               then $2 else disabled_reason end
                 where webhook_id = $1",
                d.webhook_id,
                reason
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
    }
    Ok(delivered)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification.
    #[test]
    fn signatures_follow_the_standard_webhooks_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        let signature = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).expect("sign");
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
