//! Webhook endpoints of a team: admins create, change, disable and delete
//! them and read their delivery logs; the secret is shown once. A URL must
//! be http(s) (https in AWS mode), at most 2048 characters, and must not
//! name a loopback, private or link-local address unless the site allows it
//! (`CAPSTAN_WEBHOOKS_ALLOW_PRIVATE`): the same rule the delivery applies
//! to every address the name resolves to when it connects.

use crate::kernel::audit::NewEvent;
use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::page::{self, Page};
use crate::kernel::roles::{Action, Role, authorize_owned};
use crate::kernel::validate::Errors;
use crate::webhooks::types::{CreatedWebhook, Delivery, EVENT_TYPES, NewWebhook, Webhook, WebhookUpdate, message_id};
use base64::Engine as _;
use serde_json::json;
use uuid::Uuid;

/// A URL deliveries may go to, as far as it can be told without resolving it.
pub fn check_url(raw: &str, require_https: bool, allow_private: bool) -> Result<http::Uri, String> {
    let url = raw.trim();
    if url.chars().count() > 2048 {
        return Err("Use at most 2048 characters.".into());
    }
    let uri: http::Uri = url.parse().map_err(|_| "Give a URL such as https://hooks.example.com/capstan.".to_owned())?;
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if !require_https => {}
        Some("http") => return Err("Use https: Capstan signs deliveries, but only TLS keeps them private.".into()),
        _ => return Err("Use an http(s) URL.".into()),
    }
    let host = uri.host().ok_or_else(|| "The URL names no host.".to_owned())?;
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err("A URL with a user name or password is not allowed.".into());
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if !allow_private {
        if host.eq_ignore_ascii_case("localhost") || host.ends_with(".localhost") {
            return Err(refused_address(host));
        }
        if let Ok(ip) = host.parse::<std::net::IpAddr>()
            && !public(ip)
        {
            return Err(refused_address(host));
        }
    }
    Ok(uri)
}

pub(crate) fn refused_address(host: &str) -> String {
    format!(
        "{host} is a loopback, private or link-local address: webhooks go to public addresses only \
         (a site admin can allow private ones with CAPSTAN_WEBHOOKS_ALLOW_PRIVATE)"
    )
}

/// Whether deliveries may go to `ip` without the site's permission.
pub fn public(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // shared address space (carrier NAT)
                || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || v6.is_multicast())
        }
    }
}

fn event_types(raw: &[String]) -> Result<Vec<String>, String> {
    if raw.is_empty() || raw.len() > 50 {
        return Err("Subscribe to 1 to 50 event types (or `*` for all).".into());
    }
    for t in raw {
        if !EVENT_TYPES.contains(&t.as_str()) {
            return Err(format!("`{t}` is not an event type. Use `*` or one of: {}.", EVENT_TYPES[1..].join(", ")));
        }
    }
    let mut types = raw.to_vec();
    types.sort();
    types.dedup();
    Ok(types)
}

fn description(raw: &str) -> Result<String, String> {
    let d = raw.trim();
    if d.chars().count() > 500 { Err("Use at most 500 characters.".into()) } else { Ok(d.to_owned()) }
}

/// A new signing secret: `whsec_` and the base64 of 32 random bytes.
fn new_secret() -> String {
    use rand::RngCore as _;
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(key))
}

struct Row {
    webhook_id: Uuid,
    team: String,
    url: String,
    description: String,
    event_types: Vec<String>,
    active: bool,
    disabled_reason: Option<String>,
    failing_since: Option<time::OffsetDateTime>,
    created_at: time::OffsetDateTime,
}

impl From<Row> for Webhook {
    fn from(r: Row) -> Self {
        Self {
            id: r.webhook_id,
            team: r.team,
            url: r.url,
            description: r.description,
            event_types: r.event_types,
            active: r.active,
            disabled_reason: r.disabled_reason,
            failing_since: r.failing_since,
            created_at: r.created_at,
        }
    }
}

/// The endpoint `id` with its team, if the caller may `action` on it.
async fn load(ctx: &Ctx, id: Uuid, action: Action) -> Result<(Webhook, Uuid), AppError> {
    let actor = ctx.actor()?;
    let row = sqlx::query!(
        r#"select w.webhook_id, t.slug as team, w.url, w.description, w.event_types, w.active, w.disabled_reason,
                  w.failing_since, w.created_at, w.team_id, tm.role as "role?: Role"
           from webhook w join team t on t.team_id = w.team_id
           left join team_member tm on tm.team_id = w.team_id and tm.user_id = $2
           where w.webhook_id = $1"#,
        id,
        actor.user_id
    )
    .fetch_optional(ctx.pool())
    .await?
    .ok_or_else(|| AppError::NotFound("Webhook".into()))?;
    authorize_owned(&actor.principal(), action, row.role, "Webhook")?;
    let team_id = row.team_id;
    let hook = Row {
        webhook_id: row.webhook_id,
        team: row.team,
        url: row.url,
        description: row.description,
        event_types: row.event_types,
        active: row.active,
        disabled_reason: row.disabled_reason,
        failing_since: row.failing_since,
        created_at: row.created_at,
    };
    Ok((hook.into(), team_id))
}

pub async fn get(ctx: &Ctx, id: Uuid) -> Result<Webhook, AppError> {
    Ok(load(ctx, id, Action::UpdateTeam).await?.0)
}

/// The team's endpoints (team admins).
pub async fn list(ctx: &Ctx, team: &str) -> Result<Vec<Webhook>, AppError> {
    let (team, _) = crate::teams::domain::load(ctx, team, Action::UpdateTeam).await?;
    Ok(sqlx::query_as!(
        Row,
        r#"select w.webhook_id, t.slug as team, w.url, w.description, w.event_types, w.active, w.disabled_reason,
                  w.failing_since, w.created_at
           from webhook w join team t on t.team_id = w.team_id where w.team_id = $1 order by w.created_at"#,
        team.id
    )
    .fetch_all(ctx.pool())
    .await?
    .into_iter()
    .map(Webhook::from)
    .collect())
}

/// Adds an endpoint (team admins); its secret is in the answer, only there.
pub async fn create(ctx: &Ctx, team: &str, input: NewWebhook) -> Result<CreatedWebhook, AppError> {
    let (team, _) = crate::teams::domain::load(ctx, team, Action::UpdateTeam).await?;
    let actor = ctx.actor()?;
    let settings = &ctx.state.settings;
    let mut errors = Errors::new();
    let url =
        errors.check("url", check_url(&input.url, settings.webhooks_require_https, settings.webhooks_allow_private));
    let types = errors.check("event_types", event_types(&input.event_types));
    let desc = errors.check("description", description(&input.description));
    errors.finish()?;
    let (Some(url), Some(types), Some(desc)) = (url, types, desc) else { return Err(AppError::Internal) };
    let id = Uuid::now_v7();
    let secret = new_secret();
    let mut tx = ctx.pool().begin().await?;
    sqlx::query!(
        "insert into webhook (webhook_id, team_id, url, description, event_types, secret, created_by)
         values ($1, $2, $3, $4, $5, $6, $7)",
        id,
        team.id,
        url.to_string(),
        desc,
        &types,
        secret,
        actor.user_id
    )
    .execute(&mut *tx)
    .await?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team.id),
            action: "webhook.created",
            target_type: "webhook",
            target_id: Some(id.to_string()),
            summary: json!({ "after": { "url": url.to_string(), "event_types": types, "description": desc } }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(CreatedWebhook { webhook: get(ctx, id).await?, secret })
}

/// Changes an endpoint (team admins); `active: true` re-enables one that
/// Capstan disabled, and clears why.
pub async fn update(ctx: &Ctx, id: Uuid, input: WebhookUpdate) -> Result<Webhook, AppError> {
    let (before, team_id) = load(ctx, id, Action::UpdateTeam).await?;
    let settings = &ctx.state.settings;
    let mut errors = Errors::new();
    let url = input
        .url
        .as_deref()
        .map(|u| errors.check("url", check_url(u, settings.webhooks_require_https, settings.webhooks_allow_private)));
    let types = input.event_types.as_deref().map(|t| errors.check("event_types", event_types(t)));
    let desc = input.description.as_deref().map(|d| errors.check("description", description(d)));
    errors.finish()?;
    let url = url.flatten().map(|u| u.to_string()).unwrap_or(before.url.clone());
    let types = types.flatten().unwrap_or(before.event_types.clone());
    let desc = desc.flatten().unwrap_or(before.description.clone());
    let active = input.active.unwrap_or(before.active);
    let mut tx = ctx.pool().begin().await?;
    sqlx::query!(
        "update webhook set url = $2, event_types = $3, description = $4, active = $5,
                disabled_reason = case when $5 then null else disabled_reason end,
                failing_since = case when $5 and not active then null else failing_since end, updated_at = now()
         where webhook_id = $1",
        id,
        url,
        &types,
        desc,
        active
    )
    .execute(&mut *tx)
    .await?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team_id),
            action: "webhook.updated",
            target_type: "webhook",
            target_id: Some(id.to_string()),
            summary: json!({ "before": { "url": before.url, "event_types": before.event_types, "active": before.active },
                             "after": { "url": url, "event_types": types, "active": active } }),
        },
    )
    .await?;
    tx.commit().await?;
    get(ctx, id).await
}

/// Deletes an endpoint and its delivery log (team admins).
pub async fn delete(ctx: &Ctx, id: Uuid) -> Result<(), AppError> {
    let (before, team_id) = load(ctx, id, Action::UpdateTeam).await?;
    let mut tx = ctx.pool().begin().await?;
    sqlx::query!("delete from webhook where webhook_id = $1", id).execute(&mut *tx).await?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team_id),
            action: "webhook.deleted",
            target_type: "webhook",
            target_id: Some(id.to_string()),
            summary: json!({ "before": { "url": before.url, "event_types": before.event_types } }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The endpoint's deliveries, newest first, each with its latest attempt.
pub async fn deliveries(
    ctx: &Ctx,
    id: Uuid,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> Result<Page<Delivery>, AppError> {
    load(ctx, id, Action::UpdateTeam).await?;
    let limit = page::limit(limit)?;
    let after: Option<Uuid> = page::ssr::decode(cursor)?;
    let items = read_deliveries(ctx.pool(), id, after.unwrap_or(Uuid::max()), limit + 1).await?;
    Ok(page::ssr::build(items, limit, |d: &Delivery| d.id))
}

/// Up to `limit` deliveries of endpoint `id` older than `before`, newest first.
async fn read_deliveries(pool: &sqlx::PgPool, id: Uuid, before: Uuid, limit: i64) -> Result<Vec<Delivery>, AppError> {
    let rows = sqlx::query!(
        r#"select d.delivery_id, d.event_type, d.state, d.attempts, d.created_at, d.next_attempt_at,
                  a.status_code as "status_code?", a.latency_ms as "latency_ms?",
                  a.response_excerpt as "response_excerpt?", a.error as "error?"
           from webhook_delivery d
           left join lateral (select * from webhook_attempt x where x.delivery_id = d.delivery_id
                              order by x.attempt desc limit 1) a on true
           where d.webhook_id = $1 and d.delivery_id < $2
           order by d.delivery_id desc limit $3"#,
        id,
        before,
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Delivery {
            id: r.delivery_id,
            message_id: message_id(r.delivery_id),
            event_type: r.event_type,
            next_attempt_at: (r.state == "pending").then_some(r.next_attempt_at),
            state: r.state,
            attempts: r.attempts,
            status_code: r.status_code,
            latency_ms: r.latency_ms,
            response_excerpt: r.response_excerpt,
            error: r.error,
            created_at: r.created_at,
        })
        .collect())
}

/// Sends a delivery again, now (team admins): a delivered one as a new
/// attempt with the same `webhook-id`, a failed one back into the queue.
pub async fn redeliver(ctx: &Ctx, delivery: Uuid) -> Result<Delivery, AppError> {
    let webhook = sqlx::query_scalar!("select webhook_id from webhook_delivery where delivery_id = $1", delivery)
        .fetch_optional(ctx.pool())
        .await?
        .ok_or_else(|| AppError::NotFound("Webhook delivery".into()))?;
    load(ctx, webhook, Action::UpdateTeam).await?;
    sqlx::query!(
        "update webhook_delivery set state = 'pending', next_attempt_at = now(), lease_until = null
         where delivery_id = $1",
        delivery
    )
    .execute(ctx.pool())
    .await?;
    ctx.state.training_wake.notify_one();
    // the delivery itself, however many came after it
    let successor = Uuid::from_u128(delivery.as_u128().saturating_add(1));
    read_deliveries(ctx.pool(), webhook, successor, 1)
        .await?
        .into_iter()
        .find(|d| d.id == delivery)
        .ok_or_else(|| AppError::NotFound("Webhook delivery".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_to_private_addresses_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1/x",
            "http://localhost:8080/x",
            "http://10.1.2.3/x",
            "http://192.168.0.1/x",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/x",
            "http://[fd00::1]/x",
            "http://[::ffff:127.0.0.1]/x",
            "http://100.64.0.1/x",
            "http://0.0.0.0/x",
        ] {
            assert!(check_url(url, false, false).is_err(), "{url} must be refused");
            assert!(check_url(url, false, true).is_ok(), "{url} is allowed when the site allows private addresses");
        }
        assert!(check_url("https://hooks.example.com/capstan", true, false).is_ok());
        assert!(check_url("http://hooks.example.com/capstan", true, false).is_err(), "https in AWS mode");
        assert!(check_url("ftp://hooks.example.com/", false, false).is_err());
        assert!(check_url("https://user:pw@hooks.example.com/", false, false).is_err());
        assert!(check_url(&format!("https://example.com/{}", "a".repeat(2048)), false, false).is_err());
    }

    #[test]
    fn event_types_are_checked_and_sorted() {
        assert_eq!(event_types(&["model_alias.set".into(), "*".into()]).expect("ok"), ["*", "model_alias.set"]);
        assert!(event_types(&["model_alias.moved".into()]).is_err());
        assert!(event_types(&[]).is_err());
    }
}
