//! The audit recorder: one event per mutation, written in the mutation's own
//! transaction and hash-chained per team so tampering shows up in `verify`.
//!
//! Chain design: one chain per team plus one site-wide chain (logins, users,
//! tokens). Appending takes a row lock on the chain's head row only, so writers
//! in different teams never wait on each other, and each event is sealed the
//! moment it commits (no window in which a fresh event is unprotected).

use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
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

    /// Appends `event`, attributed to this request's caller, at `head` (see [`append`]).
    pub(crate) async fn append(
        &self,
        conn: &mut PgConnection,
        head: Head,
        event: NewEvent<'_>,
    ) -> Result<Uuid, AppError> {
        let (actor, meta) = self.audit();
        append(conn, head, &actor, &meta, event).await
    }
}

/// How many chains a team's events are spread over. Appending locks a
/// chain's head until the transaction commits, so one chain per team let
/// only one of the team's writes commit at a time; spread by target, the
/// team's writes to different targets commit side by side, while the
/// events of one target stay in one chain, in order.
pub(crate) const TEAM_CHAINS: u64 = 8;

/// The chain an event joins: the site's, or one of its team's
/// (`team:<id>:<0‥7>`, by target; databases from before the spread also
/// hold a `team:<id>` chain, which stays as it was).
pub(crate) fn chain_key(team_id: Option<Uuid>, target_type: &str, target_id: Option<&str>) -> String {
    let Some(team) = team_id else { return "site".to_owned() };
    // FNV-1a: stable across builds and platforms (the key is stored)
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in target_type.bytes().chain([b':']).chain(target_id.unwrap_or_default().bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("team:{team}:{}", hash % TEAM_CHAINS)
}

/// The bytes hashed for one event: a JSON array with every recorded field.
#[allow(clippy::too_many_arguments)]
pub(crate) fn digest(
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

/// The hash a chain starts from.
pub(crate) const GENESIS: [u8; 32] = [0; 32];

/// A chain's head taken for one event: its row stays locked until the
/// transaction ends, so the chain's events are appended one at a time.
pub(crate) struct Head {
    key: String,
    seq: i64,
    prev_hash: Vec<u8>,
}

impl Head {
    /// The head as taking it answered (the chain row's `last_seq` and
    /// `last_hash` after the upsert of [`take_head`]).
    pub(crate) fn taken(key: String, last_seq: i64, last_hash: Vec<u8>) -> Self {
        let prev_hash = if last_seq == 1 { GENESIS.to_vec() } else { last_hash };
        Self { key, seq: last_seq, prev_hash }
    }
}

/// Takes the head of chain `key`. A writer that saves a round trip by
/// taking it in a statement of its own (the model-version registration)
/// runs this same upsert; keep them alike.
pub(crate) async fn take_head(conn: &mut PgConnection, key: String) -> Result<Head, AppError> {
    let head = sqlx::query!(
        r#"insert into audit_chain (chain_key, last_seq, last_hash) values ($1, 1, $2)
           on conflict (chain_key) do update set last_seq = audit_chain.last_seq + 1
           returning last_seq, last_hash"#,
        key,
        &GENESIS[..],
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(Head::taken(key, head.last_seq, head.last_hash))
}

/// Appends one event to its chain inside the caller's transaction.
pub async fn record(
    conn: &mut PgConnection,
    actor: &AuditActor,
    meta: &AuditMeta,
    event: NewEvent<'_>,
) -> Result<Uuid, AppError> {
    let head = take_head(conn, chain_key(event.team_id, event.target_type, event.target_id.as_deref())).await?;
    append(conn, head, actor, meta, event).await
}

/// Appends `event` at `head`, taken for it in the same transaction from
/// its chain (see [`chain_key`]).
pub(crate) async fn append(
    conn: &mut PgConnection,
    head: Head,
    actor: &AuditActor,
    meta: &AuditMeta,
    event: NewEvent<'_>,
) -> Result<Uuid, AppError> {
    let Head { key, seq, prev_hash } = head;
    // Postgres keeps microseconds; hash exactly what will be stored.
    let now = OffsetDateTime::now_utc();
    let occurred_at = now.replace_nanosecond(now.nanosecond() / 1000 * 1000).unwrap_or(now);
    let id = Uuid::now_v7();
    let hash = digest(
        &prev_hash,
        &key,
        seq,
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
    // the event and the chain's new head in one round trip
    sqlx::query!(
        r#"with event as (
               insert into audit_event (audit_event_id, occurred_at, chain_key, chain_seq, prev_hash, hash,
                   actor_user_id, actor_token_id, actor_label, team_id, action, target_type, target_id,
                   summary, request_id, client_addr)
               values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16))
           update audit_chain set last_hash = $6 where chain_key = $3"#,
        id,
        occurred_at,
        key,
        seq,
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
    Ok(id)
}

/// Capstan itself, as the actor of a worker's events.
pub fn system() -> (AuditActor, AuditMeta) {
    (
        AuditActor { user_id: None, token_id: None, label: "capstan".into() },
        AuditMeta { request_id: None, client_addr: None },
    )
}
