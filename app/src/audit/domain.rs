//! Reading the audit log: the filtered list, the chain check (`verify`) that
//! recomputes every hash, and anchors that pin a chain head under a key.
//! Events are written by [`crate::kernel::audit`].

use crate::audit::types::{AuditEvent, AuditQuery};
use crate::kernel::audit::digest;
use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::page::{self, Page};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// The first event whose chain does not check out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub event_id: Option<Uuid>,
    pub chain_key: String,
    pub chain_seq: i64,
    pub reason: String,
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub events: u64,
    pub chains: u64,
    pub broken: Option<Broken>,
}

/// Recomputes every chain from the first event and names the first event
/// that does not match (edited, reordered, deleted or appended outside Capstan).
pub async fn verify(pool: &sqlx::PgPool) -> Result<VerifyReport, AppError> {
    use futures_util::TryStreamExt as _;
    let heads: std::collections::HashMap<String, (i64, Vec<u8>)> =
        sqlx::query!("select chain_key, last_seq, last_hash from audit_chain")
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|r| (r.chain_key, (r.last_seq, r.last_hash)))
            .collect();
    let mut rows = sqlx::query!(
        r#"select audit_event_id, occurred_at, chain_key, chain_seq, prev_hash, hash, actor_user_id,
                  actor_token_id, actor_label, team_id, action, target_type, target_id, summary,
                  request_id, client_addr
           from audit_event order by chain_key, chain_seq"#
    )
    .fetch(pool);
    let mut events = 0u64;
    let mut current: Option<(String, i64, Vec<u8>)> = None;
    let mut seen_chains: Vec<String> = Vec::new();
    let broken = |id: Option<Uuid>, key: &str, seq: i64, reason: &str| Broken {
        event_id: id,
        chain_key: key.to_owned(),
        chain_seq: seq,
        reason: reason.to_owned(),
    };
    let check_tail = |key: &str, seq: i64, hash: &[u8]| -> Option<Broken> {
        match heads.get(key) {
            Some((last_seq, last_hash)) if *last_seq == seq && last_hash.as_slice() == hash => None,
            _ => Some(broken(None, key, seq, "chain head does not match its last event (events removed or added)")),
        }
    };
    while let Some(r) = rows.try_next().await? {
        events += 1;
        let (expected_seq, expected_prev) = match &current {
            Some((key, seq, hash)) if *key == r.chain_key => (seq + 1, hash.clone()),
            other => {
                if let Some((key, seq, hash)) = other
                    && let Some(b) = check_tail(key, *seq, hash)
                {
                    return Ok(VerifyReport { events, chains: seen_chains.len() as u64, broken: Some(b) });
                }
                seen_chains.push(r.chain_key.clone());
                (1, vec![0u8; 32])
            }
        };
        let id = Some(r.audit_event_id);
        let fail = |reason: &str| broken(id, &r.chain_key, r.chain_seq, reason);
        let problem = if r.chain_seq != expected_seq {
            Some(fail("sequence gap: an earlier event is missing"))
        } else if r.prev_hash != expected_prev {
            Some(fail("previous-hash link does not match the event before it"))
        } else {
            let recomputed = digest(
                &r.prev_hash,
                &r.chain_key,
                r.chain_seq,
                r.audit_event_id,
                r.occurred_at,
                r.actor_user_id,
                r.actor_token_id,
                &r.actor_label,
                r.team_id,
                &r.action,
                &r.target_type,
                r.target_id.as_deref(),
                &r.summary,
                r.request_id.as_deref(),
                r.client_addr.as_deref(),
            );
            (recomputed != r.hash).then(|| fail("contents do not match the recorded hash (event was edited)"))
        };
        if let Some(b) = problem {
            return Ok(VerifyReport { events, chains: seen_chains.len() as u64, broken: Some(b) });
        }
        current = Some((r.chain_key, r.chain_seq, r.hash));
    }
    if let Some((key, seq, hash)) = &current
        && let Some(b) = check_tail(key, *seq, hash)
    {
        return Ok(VerifyReport { events, chains: seen_chains.len() as u64, broken: Some(b) });
    }
    if let Some(key) = heads.keys().find(|k| !seen_chains.contains(k)) {
        let b = broken(None, key, 0, "chain has a head but no events (events removed)");
        return Ok(VerifyReport { events, chains: seen_chains.len() as u64, broken: Some(b) });
    }
    Ok(VerifyReport { events, chains: seen_chains.len() as u64, broken: None })
}

/// A signed record of every chain's head at one moment, kept outside the
/// database (object store or file). Whoever can write the database can
/// recompute the chains, but not the anchor's signature (its key is not in
/// the database), so any rewrite of an event before the anchor shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// RFC 3339.
    pub created_at: String,
    pub heads: Vec<AnchorHead>,
    /// Hex HMAC-SHA256 of the above with the anchor key.
    pub mac: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnchorHead {
    pub chain_key: String,
    pub seq: i64,
    /// Hex hash of the chain's event at `seq`.
    pub hash: String,
}

fn anchor_mac(key: &[u8], created_at: &str, heads: &[AnchorHead]) -> String {
    use hmac::Mac as _;
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(key) else { return String::new() };
    mac.update(created_at.as_bytes());
    for h in heads {
        mac.update(format!("\n{}\t{}\t{}", h.chain_key, h.seq, h.hash).as_bytes());
    }
    hex::encode(mac.finalize().into_bytes())
}

/// Takes an anchor of the chains' current heads, signed with `key`.
pub async fn take_anchor(pool: &sqlx::PgPool, key: &[u8]) -> Result<Anchor, AppError> {
    let heads: Vec<AnchorHead> =
        sqlx::query!("select chain_key, last_seq, last_hash from audit_chain order by chain_key")
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|r| AnchorHead { chain_key: r.chain_key, seq: r.last_seq, hash: hex::encode(r.last_hash) })
            .collect();
    let created_at = OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(anyhow::Error::from)?;
    let mac = anchor_mac(key, &created_at, &heads);
    Ok(Anchor { created_at, heads, mac })
}

/// Checks the chains against an anchor: its signature, then that every
/// anchored event is still there with the anchored hash. (`verify` checks
/// that each chain is whole up to its head; together they show a chain
/// rewritten, even consistently, before the anchor was taken.)
pub async fn check_anchor(pool: &sqlx::PgPool, anchor: &Anchor, key: &[u8]) -> Result<Option<Broken>, AppError> {
    let expected = anchor_mac(key, &anchor.created_at, &anchor.heads);
    if !crate::accounts::domain::constant_time_eq(expected.as_bytes(), anchor.mac.as_bytes()) {
        return Ok(Some(Broken {
            event_id: None,
            chain_key: "-".into(),
            chain_seq: 0,
            reason: "the anchor's signature does not match (another key, or the anchor was edited)".into(),
        }));
    }
    for head in &anchor.heads {
        let row = sqlx::query!(
            "select audit_event_id, hash from audit_event where chain_key = $1 and chain_seq = $2",
            head.chain_key,
            head.seq
        )
        .fetch_optional(pool)
        .await?;
        let reason = match row {
            None => "the event anchored here is gone",
            Some(r) if hex::encode(&r.hash) != head.hash => {
                return Ok(Some(Broken {
                    event_id: Some(r.audit_event_id),
                    chain_key: head.chain_key.clone(),
                    chain_seq: head.seq,
                    reason: format!("the chain was rewritten before the anchor of {}", anchor.created_at),
                }));
            }
            Some(_) => continue,
        };
        return Ok(Some(Broken {
            event_id: None,
            chain_key: head.chain_key.clone(),
            chain_seq: head.seq,
            reason: reason.into(),
        }));
    }
    Ok(None)
}

/// A time filter: an RFC 3339 time, or a date (UTC). A date in `from`
/// means the start of that day; in `to` the end of it, so `from=to=`
/// one date lists that day.
pub(crate) fn parse_time(field: &str, raw: Option<&str>) -> Result<Option<OffsetDateTime>, AppError> {
    let Some(s) = raw.map(str::trim).filter(|s| !s.is_empty()) else { return Ok(None) };
    if let Ok(t) = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Ok(Some(t));
    }
    let date = time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).map_err(|_| {
        AppError::query(field, "Use a date such as 2026-01-31 or an RFC 3339 time such as 2026-01-31T09:00:00Z.")
    })?;
    let day = if field == "to" { date.next_day().unwrap_or(date) } else { date };
    Ok(Some(day.midnight().assume_utc()))
}

/// Lists events the caller may see: site admins everything, others the
/// events of their teams and their own actions.
pub async fn list(ctx: &Ctx, q: AuditQuery) -> Result<Page<AuditEvent>, AppError> {
    let actor = ctx.actor()?;
    let limit = page::limit(q.limit)?;
    let from = parse_time("from", q.from.as_deref())?;
    let to = parse_time("to", q.to.as_deref())?;
    let cursor: Option<(OffsetDateTime, Uuid)> = page::ssr::decode(q.cursor.as_deref())?;
    let team_id = match q.team.as_deref().filter(|s| !s.is_empty()) {
        Some(slug) => Some(crate::teams::domain::load(ctx, slug, crate::kernel::roles::Action::ReadTeam).await?.0.id),
        None => None,
    };
    let actor_filter = match q.actor.as_deref().filter(|s| !s.is_empty()) {
        Some(email) => {
            let email = email.trim().to_lowercase();
            match sqlx::query_scalar!("select user_id from app_user where email = $1", email)
                .fetch_optional(ctx.pool())
                .await?
            {
                Some(id) => Some(id),
                None => return Ok(Page { items: vec![], next_cursor: None }),
            }
        }
        None => None,
    };
    let my_teams: Vec<Uuid> = if actor.is_site_admin {
        vec![]
    } else {
        sqlx::query_scalar!("select team_id from team_member where user_id = $1", actor.user_id)
            .fetch_all(ctx.pool())
            .await?
    };
    // An always-present cursor keeps the keyset condition usable by the index.
    let (after_at, after_id) = cursor.unwrap_or((time::macros::datetime!(9999-12-31 0:00 UTC), Uuid::max()));
    // Built with only the filters in use (not one static query with
    // `$n is null or …` guards): each shape stays simple enough for
    // PostgreSQL to reuse a generic plan instead of re-planning every call,
    // which cost more than running the query.
    let mut sql = sqlx::QueryBuilder::<sqlx::Postgres>::new(
        "select e.audit_event_id as id, e.occurred_at, e.actor_label as actor, e.actor_user_id, \
         e.actor_token_id, e.team_id, t.slug as team_slug, e.action, e.target_type, e.target_id, e.summary, \
         e.request_id, e.client_addr \
         from audit_event e left join team t on t.team_id = e.team_id \
         where (e.occurred_at, e.audit_event_id) < (",
    );
    sql.push_bind(after_at).push(", ").push_bind(after_id).push(")");
    if let Some(team_id) = team_id {
        sql.push(" and e.team_id = ").push_bind(team_id);
    }
    if let Some(user_id) = actor_filter {
        sql.push(" and e.actor_user_id = ").push_bind(user_id);
    }
    // an action or its prefix: `training_job` finds every training_job.* event
    if let Some(action) = q.action.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let escaped: String =
            action.chars().flat_map(|c| if matches!(c, '%' | '_' | '\\') { vec!['\\', c] } else { vec![c] }).collect();
        sql.push(" and e.action like ").push_bind(format!("{escaped}%"));
    }
    if let Some(from) = from {
        sql.push(" and e.occurred_at >= ").push_bind(from);
    }
    if let Some(to) = to {
        sql.push(" and e.occurred_at < ").push_bind(to);
    }
    if !actor.is_site_admin {
        sql.push(" and (e.team_id = any(")
            .push_bind(my_teams)
            .push(") or e.actor_user_id = ")
            .push_bind(actor.user_id)
            .push(")");
    }
    sql.push(" order by e.occurred_at desc, e.audit_event_id desc limit ").push_bind(limit + 1);
    let items: Vec<AuditEvent> = sql.build_query_as().fetch_all(ctx.pool()).await?;
    Ok(page::ssr::build(items, limit, |e: &AuditEvent| (e.occurred_at, e.id)))
}

#[cfg(test)]
mod tests {
    use super::parse_time;
    use time::macros::datetime;

    #[test]
    fn time_filters_take_dates_and_times_and_name_the_field() {
        assert_eq!(parse_time("from", Some("2026-12-02")), Ok(Some(datetime!(2026-12-02 0:00 UTC))));
        // a date in `to` includes that whole day
        assert_eq!(parse_time("to", Some("2026-12-02")), Ok(Some(datetime!(2026-12-03 0:00 UTC))));
        assert_eq!(parse_time("to", Some("2026-12-02T09:30:00Z")), Ok(Some(datetime!(2026-12-02 9:30 UTC))));
        assert_eq!(parse_time("from", Some("  ")), Ok(None));
        let err = parse_time("from", Some("yesterday")).expect_err("refused");
        assert!(err.field_message("from").is_some_and(|m| m.contains("2026-01-31")), "{err:?}");
    }
}
