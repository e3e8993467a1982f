//! The audit log: one event per mutation, written in the mutation's own
//! transaction and hash-chained per team so tampering shows up in `verify`.
//!
//! Chain design: one chain per team plus one site-wide chain (logins, users,
//! tokens). Appending takes a row lock on the chain's head row only, so writers
//! in different teams never wait on each other, and each event is sealed the
//! moment it commits (no window in which a fresh event is unprotected).

use crate::error::AppError;
use crate::page::Page;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One recorded mutation, as shown to users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, sqlx::FromRow))]
pub struct AuditEvent {
    pub id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub occurred_at: time::OffsetDateTime,
    /// Who acted: an email, or the attempted email for failed logins.
    pub actor: String,
    pub actor_user_id: Option<Uuid>,
    /// Set when the actor used an API token.
    pub actor_token_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub team_slug: Option<String>,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    /// Before/after summary of the change.
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub summary: serde_json::Value,
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
}

/// Filters for the audit list; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
pub struct AuditQuery {
    /// Team slug.
    pub team: Option<String>,
    /// Actor email.
    pub actor: Option<String>,
    /// Exact action, e.g. `team.member_added`.
    pub action: Option<String>,
    /// Earliest time (RFC 3339), inclusive.
    pub from: Option<String>,
    /// Latest time (RFC 3339), exclusive.
    pub to: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// Lists audit events visible to the caller, newest first.
#[server(prefix = "/rpc", endpoint = "list_audit_events")]
pub async fn list_audit_events(query: AuditQuery) -> Result<Page<AuditEvent>, AppError> {
    let ctx = crate::state::server_ctx().await?;
    crate::state::finish(ssr::list(&ctx, query).await)
}

/// The distinguishing end of an id (`…3f9a1c2e`); UUID v7 ids share their
/// time-ordered start with every event of the same moment.
fn short_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 12 {
        id.to_owned()
    } else {
        format!("…{}", chars[chars.len() - 8..].iter().collect::<String>())
    }
}

#[component]
pub fn AuditPage() -> impl IntoView {
    use leptos_router::hooks::use_query_map;
    let query = use_query_map();
    let filter = move || {
        let q = query.get();
        let get = |k: &str| q.get(k).filter(|v| !v.is_empty());
        AuditQuery {
            team: get("team"),
            actor: get("actor"),
            action: get("action"),
            from: get("from"),
            to: get("to"),
            cursor: get("cursor"),
            limit: None,
        }
    };
    let events = Resource::new(filter, list_audit_events);
    let value = move |k: &'static str| query.with(|q| q.get(k).unwrap_or_default());
    view! {
        <crate::ui::PageHeader title="Audit log" subtitle="Every change, who made it, and when. Each team's events are hash-chained."/>
        <form method="get" class="filters">
            <label>"Team" <input name="team" placeholder="team slug" value=move || value("team")/></label>
            <label>"Actor" <input name="actor" type="email" placeholder="email" value=move || value("actor")/></label>
            <label>"Action" <input name="action" placeholder="team.created or training_job" title="An action, or the start of one" value=move || value("action")/></label>
            <label>"From" <input name="from" placeholder="2026-01-01" title="A date (UTC) or an RFC 3339 time" value=move || value("from")/></label>
            <label>"To (inclusive)" <input name="to" placeholder="2026-12-31" title="A date (UTC, the whole day counts) or an RFC 3339 time" value=move || value("to")/></label>
            <input type="hidden" name="trail" value=""/>
            <button type="submit">"Filter"</button>
        </form>
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || events.get().map(|res| match res {
                Err(e) => view! { <crate::ui::ErrorBox error=e/> }.into_any(),
                Ok(page) if page.items.is_empty() => view! { <p class="empty">"No events match."</p> }.into_any(),
                Ok(page) => {
                    // `trail` remembers the cursors of the newer pages, so a reader can go back
                    let here = query.with_untracked(|q| q.get("cursor").unwrap_or_default());
                    let trail = query.with_untracked(|q| q.get("trail").unwrap_or_default());
                    let with = |cursor: &str, trail: &str| {
                        let mut q = query.get_untracked();
                        q.replace("cursor", cursor.to_owned());
                        q.replace("trail", trail.to_owned());
                        format!("?{}", q.to_query_string().trim_start_matches('?'))
                    };
                    let next = page.next_cursor.clone().map(|c| {
                        let deeper = if here.is_empty() && trail.is_empty() { "-".to_owned() } else { format!("{trail}.{}", if here.is_empty() { "-" } else { &here }) };
                        with(&c, deeper.trim_start_matches('.'))
                    });
                    let newer = (!here.is_empty()).then(|| {
                        let (rest, last) = trail.rsplit_once('.').unwrap_or(("", trail.as_str()));
                        with(if last == "-" { "" } else { last }, rest)
                    });
                    let newest = (!here.is_empty()).then(|| with("", ""));
                    view! {
                        <div class="table-wrap">
                        <table class="data audit-table">
                            <thead><tr><th>"Time"</th><th>"Actor"</th><th>"Team"</th><th>"Action"</th><th>"Target"</th><th>"Change"</th></tr></thead>
                            <tbody>
                            {page.items.into_iter().map(|e| view! {
                                <tr>
                                    <td class="nowrap"><crate::ui::Time at=e.occurred_at/></td>
                                    <td>{e.actor}{e.actor_token_id.map(|_| view! { <span class="pill">"token"</span> })}</td>
                                    <td>{e.team_slug.unwrap_or_else(|| "—".into())}</td>
                                    <td><code>{e.action}</code></td>
                                    <td>{e.target_type}" "{e.target_id.map(|id| {
                                        // ids are time-ordered: their end tells them apart
                                        let short = short_id(&id);
                                        view! { <span class="muted target-id" title=id.clone() data-id=id>{short}</span> }
                                    })}</td>
                                    <td>{
                                        let summary = e.summary.to_string();
                                        let full = summary.clone();
                                        view! { <code class="summary" title=full>{summary}</code> }
                                    }</td>
                                </tr>
                            }).collect_view()}
                            </tbody>
                        </table>
                        </div>
                        <p class="pager">
                            {newest.map(|href| view! { <a href=href class="button secondary">"⇤ Newest"</a>" " })}
                            {newer.map(|href| view! { <a href=href class="button secondary" data-testid="newer">"← Newer events"</a>" " })}
                            {next.map(|href| view! { <a href=href class="button secondary" data-testid="older">"Older events →"</a> })}
                        </p>
                    }.into_any()
                }
            })}
        </Suspense>
    }
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::{AuditEvent, AuditQuery};
    use crate::error::AppError;
    use crate::page::{self, Page};
    use crate::state::Ctx;
    use serde::{Deserialize, Serialize};
    use serde_json::{Value, json};
    use sha2::{Digest, Sha256};
    use sqlx::PgConnection;
    use time::OffsetDateTime;
    use uuid::Uuid;

    /// Who an event is attributed to.
    #[derive(Debug, Clone)]
    pub struct AuditActor {
        pub user_id: Option<Uuid>,
        pub token_id: Option<Uuid>,
        pub label: String,
    }

    /// Where the request came from.
    #[derive(Debug, Clone, Default)]
    pub struct AuditMeta {
        pub request_id: Option<String>,
        pub client_addr: Option<String>,
    }

    /// What happened.
    #[derive(Debug, Clone)]
    pub struct NewEvent<'a> {
        pub team_id: Option<Uuid>,
        pub action: &'a str,
        pub target_type: &'a str,
        pub target_id: Option<String>,
        pub summary: Value,
    }

    impl Ctx {
        /// The audit attribution and request metadata of this request.
        pub fn audit(&self) -> (AuditActor, AuditMeta) {
            let actor = match &self.actor {
                Some(a) => AuditActor { user_id: Some(a.user_id), token_id: a.token_id, label: a.email.clone() },
                None => AuditActor { user_id: None, token_id: None, label: "anonymous".into() },
            };
            (actor, AuditMeta { request_id: self.request_id.clone(), client_addr: Some(self.client_addr.clone()) })
        }
    }

    impl Ctx {
        /// Appends `event`, attributed to this request's caller, in `conn`'s transaction.
        pub async fn record(&self, conn: &mut PgConnection, event: NewEvent<'_>) -> Result<Uuid, AppError> {
            let (actor, meta) = self.audit();
            record(conn, &actor, &meta, event).await
        }
    }

    fn chain_key(team_id: Option<Uuid>) -> String {
        team_id.map_or_else(|| "site".to_owned(), |t| format!("team:{t}"))
    }

    /// The bytes hashed for one event: a JSON array with every recorded field.
    #[allow(clippy::too_many_arguments)]
    fn digest(
        prev_hash: &[u8],
        chain_key: &str,
        chain_seq: i64,
        id: Uuid,
        occurred_at: OffsetDateTime,
        actor_user_id: Option<Uuid>,
        actor_token_id: Option<Uuid>,
        actor_label: &str,
        team_id: Option<Uuid>,
        action: &str,
        target_type: &str,
        target_id: Option<&str>,
        summary: &Value,
        request_id: Option<&str>,
        client_addr: Option<&str>,
    ) -> Vec<u8> {
        let at = occurred_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        let canonical = json!([
            hex::encode(prev_hash),
            chain_key,
            chain_seq,
            id,
            at,
            actor_user_id,
            actor_token_id,
            actor_label,
            team_id,
            action,
            target_type,
            target_id,
            summary,
            request_id,
            client_addr
        ]);
        Sha256::digest(serde_json::to_vec(&canonical).unwrap_or_default()).to_vec()
    }

    /// Appends one event to its chain inside the caller's transaction.
    pub async fn record(
        conn: &mut PgConnection,
        actor: &AuditActor,
        meta: &AuditMeta,
        event: NewEvent<'_>,
    ) -> Result<Uuid, AppError> {
        let key = chain_key(event.team_id);
        // Postgres keeps microseconds; hash exactly what will be stored.
        let now = OffsetDateTime::now_utc();
        let occurred_at = now.replace_nanosecond(now.nanosecond() / 1000 * 1000).unwrap_or(now);
        let id = Uuid::now_v7();
        let head = sqlx::query!(
            r#"insert into audit_chain (chain_key, last_seq, last_hash) values ($1, 1, $2)
               on conflict (chain_key) do update set last_seq = audit_chain.last_seq + 1
               returning last_seq, last_hash"#,
            key,
            &[0u8; 32][..],
        )
        .fetch_one(&mut *conn)
        .await?;
        let prev_hash = if head.last_seq == 1 { vec![0u8; 32] } else { head.last_hash };
        let hash = digest(
            &prev_hash,
            &key,
            head.last_seq,
            id,
            occurred_at,
            actor.user_id,
            actor.token_id,
            &actor.label,
            event.team_id,
            event.action,
            event.target_type,
            event.target_id.as_deref(),
            &event.summary,
            meta.request_id.as_deref(),
            meta.client_addr.as_deref(),
        );
        sqlx::query!(
            r#"insert into audit_event (audit_event_id, occurred_at, chain_key, chain_seq, prev_hash, hash,
                   actor_user_id, actor_token_id, actor_label, team_id, action, target_type, target_id,
                   summary, request_id, client_addr)
               values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"#,
            id,
            occurred_at,
            key,
            head.last_seq,
            prev_hash,
            hash,
            actor.user_id,
            actor.token_id,
            actor.label,
            event.team_id,
            event.action,
            event.target_type,
            event.target_id,
            event.summary,
            meta.request_id,
            meta.client_addr,
        )
        .execute(&mut *conn)
        .await?;
        sqlx::query!("update audit_chain set last_hash = $2 where chain_key = $1", key, hash)
            .execute(&mut *conn)
            .await?;
        Ok(id)
    }

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
        if !crate::accounts::ssr::constant_time_eq(expected.as_bytes(), anchor.mac.as_bytes()) {
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
            Some(slug) => Some(crate::teams::ssr::load(ctx, slug, crate::roles::Action::ReadTeam).await?.0.id),
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
            let escaped: String = action
                .chars()
                .flat_map(|c| if matches!(c, '%' | '_' | '\\') { vec!['\\', c] } else { vec![c] })
                .collect();
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
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::ssr::parse_time;
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

    #[test]
    fn short_ids_show_the_distinguishing_end() {
        assert_eq!(super::short_id("019ae0f1-7c2b-7d3e-9a51-3f9a1c2e4b6d"), "…1c2e4b6d");
        assert_eq!(super::short_id("ml.m5.large"), "ml.m5.large");
    }
}
