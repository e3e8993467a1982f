//! Personal API tokens for scripts and CI: shown once, stored as a SHA-256
//! hash, listed by prefix, revocable, optionally expiring, never outliving the
//! token that created them.

use crate::kernel::audit::{AuditActor, AuditMeta, NewEvent, record};
use crate::kernel::context::{Actor, Ctx};
use crate::kernel::context::{TOKEN_PREFIX, token_hash};
use crate::kernel::error::AppError;
use crate::kernel::page::{self, Page};
use crate::tokens::types::{ApiToken, CreatedToken};
use rand::RngCore as _;
use serde_json::json;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

pub async fn list(ctx: &Ctx, cursor: Option<&str>, limit: Option<i64>) -> Result<Page<ApiToken>, AppError> {
    let actor = ctx.actor()?;
    let limit = page::limit(limit)?;
    let (after_at, after_id): (OffsetDateTime, Uuid) =
        page::ssr::decode(cursor)?.unwrap_or((time::macros::datetime!(9999-12-31 0:00 UTC), Uuid::max()));
    let items = sqlx::query_as!(
        ApiToken,
        r#"select token_id as id, name, prefix, created_at, last_used_at, expires_at, revoked_at
           from api_token where user_id = $1 and (created_at, token_id) < ($2, $3)
           order by created_at desc, token_id desc limit $4"#,
        actor.user_id,
        after_at,
        after_id,
        limit + 1,
    )
    .fetch_all(ctx.pool())
    .await?;
    Ok(page::ssr::build(items, limit, |t: &ApiToken| (t.created_at, t.id)))
}

/// Validates an expiry given as RFC 3339 text (REST) into a time; `null` or
/// no field means no expiry, anything else must be a time.
pub fn parse_expiry(raw: Option<&str>) -> Result<Option<OffsetDateTime>, AppError> {
    raw.map(|s| {
        OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map_err(|_| AppError::field("expires_at", "Use an RFC 3339 time such as 2027-01-31T00:00:00Z."))
    })
    .transpose()
}

/// Creates a token for the caller (or, from the CLI, for `owner`).
/// Creates a token for the caller.
pub async fn create(ctx: &Ctx, name: &str, expires_at: Option<OffsetDateTime>) -> Result<CreatedToken, AppError> {
    // A token may mint tokens, but none that outlives it: a leaked
    // short-lived token must not become a permanent one.
    let expires_at = match ctx.actor()?.token_id {
        Some(creator) => {
            let creator_expiry = sqlx::query_scalar!("select expires_at from api_token where token_id = $1", creator)
                .fetch_one(ctx.pool())
                .await?;
            match (expires_at, creator_expiry) {
                (Some(asked), Some(cap)) => Some(asked.min(cap)),
                (asked, cap) => asked.or(cap),
            }
        }
        None => expires_at,
    };
    let (audit_actor, meta) = ctx.audit();
    create_for(ctx.pool(), ctx.actor()?, &audit_actor, &meta, name, expires_at).await
}

/// Creates a token for `actor` (the CLI's path, where there is no request).
pub async fn create_for(
    pool: &PgPool,
    actor: &Actor,
    audit_actor: &AuditActor,
    meta: &AuditMeta,
    name: &str,
    expires_at: Option<OffsetDateTime>,
) -> Result<CreatedToken, AppError> {
    let name = crate::kernel::validate::name(name, 100).map_err(|m| AppError::field("name", m))?;
    if let Some(at) = expires_at
        && at <= OffsetDateTime::now_utc()
    {
        return Err(AppError::field("expires_at", "The expiry must be in the future."));
    }
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
    let prefix: String = secret.chars().take(TOKEN_PREFIX.len() + 6).collect();
    let id = Uuid::now_v7();
    let mut tx = pool.begin().await?;
    let token = sqlx::query_as!(
        ApiToken,
        r#"insert into api_token (token_id, user_id, name, prefix, secret_hash, expires_at)
           values ($1, $2, $3, $4, $5, $6)
           returning token_id as id, name, prefix, created_at, last_used_at, expires_at, revoked_at"#,
        id,
        actor.user_id,
        name,
        prefix,
        token_hash(&secret),
        expires_at,
    )
    .fetch_one(&mut *tx)
    .await?;
    record(
        &mut tx,
        audit_actor,
        meta,
        NewEvent {
            team_id: None,
            action: "token.created",
            target_type: "api_token",
            target_id: Some(id.to_string()),
            summary: json!({ "after": { "name": token.name, "prefix": token.prefix,
                "expires_at": expires_at.map(|t| t.unix_timestamp()) } }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(CreatedToken { token, secret })
}

/// Revokes one of the caller's own tokens; others' tokens are not found.
pub async fn revoke(ctx: &Ctx, token_id: Uuid) -> Result<(), AppError> {
    let actor = ctx.actor()?;
    let mut tx = ctx.pool().begin().await?;
    let row = sqlx::query!(
        "update api_token set revoked_at = coalesce(revoked_at, now())
         where token_id = $1 and user_id = $2 returning name",
        token_id,
        actor.user_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| AppError::NotFound("Token".into()))?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: None,
            action: "token.revoked",
            target_type: "api_token",
            target_id: Some(token_id.to_string()),
            summary: json!({ "name": row.name }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
