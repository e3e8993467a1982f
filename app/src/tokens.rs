//! Personal API tokens for scripts and CI: shown once, stored as a SHA-256
//! hash, listed by prefix, revocable, optionally expiring.

use crate::error::AppError;
use crate::page::Page;
use crate::ui::{ConfirmButton, FieldMessage, FormError, PageHeader, Time};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ApiToken {
    pub id: Uuid,
    pub name: String,
    /// The first characters of the secret, to tell tokens apart.
    pub prefix: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>, format = DateTime))]
    pub last_used_at: Option<time::OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>, format = DateTime))]
    pub expires_at: Option<time::OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>, format = DateTime))]
    pub revoked_at: Option<time::OffsetDateTime>,
}

/// A freshly created token: the only time the secret is ever returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CreatedToken {
    pub token: ApiToken,
    /// Send as `Authorization: Bearer <secret>`. Not shown again.
    pub secret: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// 1 to 100 characters.
    pub name: String,
    /// RFC 3339 time in the future; omit for a token that does not expire.
    pub expires_at: Option<String>,
}

#[server(prefix = "/rpc", endpoint = "list_tokens")]
pub async fn list_tokens(cursor: Option<String>, limit: Option<i64>) -> Result<Page<ApiToken>, AppError> {
    let ctx = crate::state::server_ctx().await?;
    crate::state::finish(ssr::list(&ctx, cursor.as_deref(), limit).await)
}

/// Creates a token; `expires_in_days` empty or 0 means no expiry.
#[server(prefix = "/rpc", endpoint = "create_token")]
pub async fn create_token(name: String, expires_in_days: Option<String>) -> Result<CreatedToken, AppError> {
    let ctx = crate::state::server_ctx().await?;
    let result = async {
        let expires_at = match expires_in_days.as_deref().map(str::trim).filter(|s| !s.is_empty() && *s != "0") {
            None => None,
            Some(days) => {
                let days: i64 =
                    days.parse().ok().filter(|d| (1..=3650).contains(d)).ok_or_else(|| {
                        AppError::field("expires_in_days", "Use a whole number of days from 1 to 3650.")
                    })?;
                Some(time::OffsetDateTime::now_utc() + time::Duration::days(days))
            }
        };
        ssr::create(&ctx, &name, expires_at).await
    }
    .await;
    crate::state::finish(result)
}

#[server(prefix = "/rpc", endpoint = "revoke_token")]
pub async fn revoke_token(token_id: Uuid) -> Result<(), AppError> {
    let ctx = crate::state::server_ctx().await?;
    crate::state::finish(ssr::revoke(&ctx, token_id).await)
}

#[component]
pub fn TokensPage() -> impl IntoView {
    let create = ServerAction::<CreateToken>::new();
    let revoke = ServerAction::<RevokeToken>::new();
    let err = Signal::derive(move || create.value().get().and_then(Result::err));
    let revoke_err = Signal::derive(move || revoke.value().get().and_then(Result::err));
    let tokens =
        Resource::new(move || (create.version().get(), revoke.version().get()), |_| list_tokens(None, Some(200)));
    let created = move || create.value().get().and_then(Result::ok);
    view! {
        <PageHeader title="API tokens" subtitle="Tokens act as you in scripts and CI: send them as Authorization: Bearer <token>."/>
        <Show when=move || created().is_some()>
            {move || created().map(|c| view! {
                <section class="card secret-card" id="new-token">
                    <h2>"Copy your new token now"</h2>
                    <p>"This is the only time it is shown. Store it in your secret manager."</p>
                    <div class="secret-row">
                        <code id="token-secret">{c.secret.clone()}</code>
                        <crate::ui::CopyButton text=c.secret.clone()/>
                    </div>
                </section>
            })}
        </Show>
        <div class="grid-2">
            <section class="card">
                <h2>"Your tokens"</h2>
                <FormError error=revoke_err/>
                <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || tokens.get().map(|res| match res {
                        Err(e) => view! { <crate::ui::ErrorBox error=e/> }.into_any(),
                        Ok(page) if page.items.is_empty() => view! { <p class="empty">"No tokens yet."</p> }.into_any(),
                        Ok(page) => view! {
                            <div class="table-wrap"><table class="data" id="tokens">
                                <thead><tr><th>"Name"</th><th>"Prefix"</th><th>"Created"</th><th>"Last used"</th><th>"Expires"</th><th></th></tr></thead>
                                <tbody>
                                {page.items.into_iter().map(|t| view! {
                                    <tr class:revoked=t.revoked_at.is_some()>
                                        <td>{t.name.clone()}</td>
                                        <td><code>{t.prefix.clone()}"…"</code></td>
                                        <td><Time at=t.created_at/></td>
                                        <td>{t.last_used_at.map(|at| view! { <Time at=at/> }.into_any()).unwrap_or_else(|| view! { <span class="muted">"never"</span> }.into_any())}</td>
                                        <td>{t.expires_at.map(|at| view! { <Time at=at/> }.into_any()).unwrap_or_else(|| view! { <span class="muted">"never"</span> }.into_any())}</td>
                                        <td>{if t.revoked_at.is_some() {
                                            view! { <span class="pill danger">"revoked"</span> }.into_any()
                                        } else {
                                            view! {
                                                <ActionForm action=revoke attr:class="inline">
                                                    <input type="hidden" name="token_id" value=t.id.to_string()/>
                                                    <ConfirmButton label="Revoke" question=format!("Revoke token {}? Scripts using it will stop working.", t.name)/>
                                                </ActionForm>
                                            }.into_any()
                                        }}</td>
                                    </tr>
                                }).collect_view()}
                                </tbody>
                            </table></div>
                        }.into_any(),
                    })}
                </Suspense>
            </section>
            <section class="card">
                <h2>"Create a token"</h2>
                <ActionForm action=create node_ref=crate::ui::cleared_on_success(create) attr:class="stack" attr:id="create-token">
                    <FormError error=err/>
                    <label>"Name" <input name="name" placeholder="ci-pipeline" required maxlength="100"/></label>
                    <FieldMessage error=err field="name"/>
                    <label>"Expires"
                        <select name="expires_in_days">
                            <option value="30">"in 30 days"</option>
                            <option value="90" selected>"in 90 days"</option>
                            <option value="365">"in a year"</option>
                            <option value="0">"never"</option>
                        </select>
                    </label>
                    <FieldMessage error=err field="expires_in_days"/>
                    <FieldMessage error=err field="expires_at"/>
                    <button type="submit" disabled=move || create.pending().get()>"Create token"</button>
                </ActionForm>
            </section>
        </div>
    }
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::{ApiToken, CreatedToken};
    use crate::audit::ssr::{AuditActor, AuditMeta, NewEvent, record};
    use crate::error::AppError;
    use crate::page::{self, Page};
    use crate::state::{Actor, Ctx};
    use rand::RngCore as _;
    use serde_json::json;
    use sha2::{Digest, Sha256};
    use sqlx::PgPool;
    use time::OffsetDateTime;
    use uuid::Uuid;

    const TOKEN_PREFIX: &str = "cap_";

    fn hash(secret: &str) -> Vec<u8> {
        Sha256::digest(secret.as_bytes()).to_vec()
    }

    /// Resolves a bearer secret to its user; `None` for unknown, revoked or
    /// expired tokens.
    pub async fn authenticate(pool: &PgPool, secret: &str) -> Result<Option<Actor>, AppError> {
        if !secret.starts_with(TOKEN_PREFIX) || secret.len() > 200 {
            return Ok(None);
        }
        let row = sqlx::query!(
            r#"select t.token_id, u.user_id, u.email, u.display_name, u.is_site_admin,
                      (t.last_used_at is null or t.last_used_at < now() - interval '1 minute') as "stale!"
               from api_token t join app_user u on u.user_id = t.user_id
               where t.secret_hash = $1 and t.revoked_at is null and (t.expires_at is null or t.expires_at > now())
                 and u.disabled_at is null"#,
            hash(secret)
        )
        .fetch_optional(pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        if row.stale {
            // At most one write a minute per token keeps hot API paths read-only.
            sqlx::query!("update api_token set last_used_at = now() where token_id = $1", row.token_id)
                .execute(pool)
                .await?;
        }
        Ok(Some(Actor {
            user_id: row.user_id,
            email: row.email,
            display_name: row.display_name,
            is_site_admin: row.is_site_admin,
            token_id: Some(row.token_id),
        }))
    }

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

    /// Validates an expiry given as RFC 3339 text (REST) into a time.
    pub fn parse_expiry(raw: Option<&str>) -> Result<Option<OffsetDateTime>, AppError> {
        raw.map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
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
                let creator_expiry =
                    sqlx::query_scalar!("select expires_at from api_token where token_id = $1", creator)
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
        let name = crate::validate::name(name, 100).map_err(|m| AppError::field("name", m))?;
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
            hash(&secret),
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
}
