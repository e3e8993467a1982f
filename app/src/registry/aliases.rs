//! Aliases: a model's names for one of its versions (`champion`,
//! `challenger`, `staging`). Members set, move and delete them; every change
//! is kept in the alias history (who, when, from → to, why) and audited.
//! Admins protect an alias: a protected alias is not moved or deleted
//! directly (409): an approved change request does it, through the same
//! functions with [`Route::ChangeRequest`]. A team's approval policy can
//! put the same gate in front of unprotected aliases and of protecting.

use crate::kernel::audit::NewEvent;
use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::page::{self, Page};
use crate::kernel::roles::{Action, authorize_owned};
use crate::registry::domain::description;
use crate::registry::gate::{Route, gate};
use crate::registry::types::{Alias, AliasChange, ModelVersion, SetAlias};
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

/// An alias name: a lowercase letter, then up to 39 lowercase letters, digits and hyphens.
pub fn alias_name(raw: &str) -> Result<String, String> {
    let ok = (1..=40).contains(&raw.len())
        && raw.starts_with(|c: char| c.is_ascii_lowercase())
        && raw.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(raw.to_owned())
    } else {
        Err("Use 1 to 40 characters: lowercase letters, digits and '-', starting with a letter.".into())
    }
}

/// The model's aliases by name.
pub async fn list(ctx: &Ctx, model: Uuid) -> Result<Vec<Alias>, AppError> {
    crate::registry::domain::load(ctx, model, Action::ReadTeam).await?;
    Ok(sqlx::query_as!(
        Alias,
        r#"select a.alias, a.version_id, v.number, a.protected, u.email as updated_by, a.updated_at
           from model_alias a join model_version v on v.version_id = a.version_id
           join app_user u on u.user_id = a.updated_by
           where a.model_id = $1 order by a.alias"#,
        model
    )
    .fetch_all(ctx.pool())
    .await?)
}

/// How long a resolved alias is served from the cache at most (a move
/// reaches every process's cache as soon as it commits; this bounds a lost
/// notification).
const ALIAS_TTL: Duration = Duration::from_secs(300);

/// The version an alias names: the hottest read of the registry, served
/// from the cache (with the caller's membership) without a database round
/// trip while nothing changed.
pub async fn resolve(ctx: &Ctx, model: Uuid, alias: &str) -> Result<ModelVersion, AppError> {
    let actor = ctx.actor()?;
    let cache = &ctx.state.cache;
    let key = format!("alias:{model}:{alias}");
    if let Some((version, team_id)) = cache.get::<(ModelVersion, Uuid)>(&key) {
        authorize_owned(&actor.principal(), Action::ReadTeam, ctx.role_in(team_id).await?, "Model")?;
        return Ok(version);
    }
    let ticket = cache.ticket();
    let (_, team_id) = crate::registry::domain::load(ctx, model, Action::ReadTeam).await?;
    let version =
        sqlx::query_scalar!("select version_id from model_alias where model_id = $1 and alias = $2", model, alias)
            .fetch_optional(ctx.pool())
            .await?
            .ok_or_else(|| AppError::NotFound("Alias".into()))?;
    let version = crate::registry::versions::get(ctx, version).await?;
    cache.put(key, (version.clone(), team_id), ticket, ALIAS_TTL);
    Ok(version)
}

/// The version `alias` names of the team's model `name` (the team by slug or id).
pub async fn resolve_by_name(ctx: &Ctx, team: &str, name: &str, alias: &str) -> Result<ModelVersion, AppError> {
    ctx.actor()?;
    let cache = &ctx.state.cache;
    let key = format!("model-name:{team}:{name}");
    let model = match cache.get::<Uuid>(&key) {
        Some(model) => model,
        None => {
            let ticket = cache.ticket();
            // an unknown team and an unknown model read the same; resolve() checks the caller
            let model = sqlx::query_scalar!(
                "select m.model_id from model m join team t on t.team_id = m.team_id
                 where (t.slug = $1 or t.team_id::text = $1) and m.name = $2",
                team,
                name
            )
            .fetch_optional(ctx.pool())
            .await?
            .ok_or_else(|| AppError::NotFound("Model".into()))?;
            cache.put(key, model, ticket, ALIAS_TTL);
            model
        }
    };
    resolve(ctx, model, alias).await
}

/// Points `alias` at a version of the same model, creating or moving it
/// (members and up). A protected alias moves only by change request.
pub async fn set(ctx: &Ctx, model: Uuid, alias: &str, input: SetAlias, route: Route) -> Result<Alias, AppError> {
    let (model_row, team_id) = crate::registry::domain::load(ctx, model, Action::Contribute).await?;
    let actor = ctx.actor()?;
    let name = alias_name(alias).map_err(|m| AppError::field("alias", m))?;
    let reason = description(&input.reason).map_err(|m| AppError::field("reason", m))?;
    let number = sqlx::query_scalar!(
        "select number from model_version where version_id = $1 and model_id = $2",
        input.version_id,
        model
    )
    .fetch_optional(ctx.pool())
    .await?
    .ok_or_else(|| AppError::field("version_id", "Name a version of this model."))?;
    let mut tx = ctx.pool().begin().await?;
    // one change of the model's aliases at a time: the history stays in order
    sqlx::query!("select model_id from model where model_id = $1 for update", model).fetch_one(&mut *tx).await?;
    let before =
        sqlx::query!("select version_id, protected from model_alias where model_id = $1 and alias = $2", model, name)
            .fetch_optional(&mut *tx)
            .await?;
    let protected = before.as_ref().is_some_and(|b| b.protected);
    let kind = crate::kernel::changes::kinds::ALIAS_MOVE;
    gate(&mut tx, route, (&model_row.team, team_id), kind, (Some(model), Some(&name)), protected).await?;
    let from = before.as_ref().map(|b| b.version_id);
    sqlx::query!(
        "insert into model_alias (model_id, alias, version_id, updated_by) values ($1, $2, $3, $4)
         on conflict (model_id, alias) do update set version_id = $3, updated_by = $4, updated_at = now()",
        model,
        name,
        input.version_id,
        actor.user_id
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "insert into model_alias_history (event_id, model_id, alias, from_version, to_version, reason, changed_by)
         values ($1, $2, $3, $4, $5, $6, $7)",
        Uuid::now_v7(),
        model,
        name,
        from,
        input.version_id,
        reason,
        actor.user_id
    )
    .execute(&mut *tx)
    .await?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team_id),
            action: "model_alias.set",
            target_type: "model",
            target_id: Some(model.to_string()),
            summary: json!({ "model": model_row.name, "alias": name, "before": from, "after": input.version_id,
                             "number": number, "reason": reason, "request": route.request() }),
        },
    )
    .await?;
    tx.commit().await?;
    crate::registry::domain::pages_changed(ctx, team_id);
    // this process reads its own write at once; the others on notification
    ctx.state.cache.invalidate(&format!("alias:{model}:{name}"));
    ctx.state.cache.invalidate(&format!("aliases-of:{model}:"));
    one(ctx, model, &name).await
}

/// Deletes `alias` (members and up). A protected alias goes only by change request.
pub async fn delete(ctx: &Ctx, model: Uuid, alias: &str, route: Route) -> Result<(), AppError> {
    let (model_row, team_id) = crate::registry::domain::load(ctx, model, Action::Contribute).await?;
    let actor = ctx.actor()?;
    let mut tx = ctx.pool().begin().await?;
    sqlx::query!("select model_id from model where model_id = $1 for update", model).fetch_one(&mut *tx).await?;
    let before =
        sqlx::query!("select version_id, protected from model_alias where model_id = $1 and alias = $2", model, alias)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| AppError::NotFound("Alias".into()))?;
    let kind = crate::kernel::changes::kinds::ALIAS_DELETE;
    gate(&mut tx, route, (&model_row.team, team_id), kind, (Some(model), Some(alias)), before.protected).await?;
    sqlx::query!("delete from model_alias where model_id = $1 and alias = $2", model, alias).execute(&mut *tx).await?;
    sqlx::query!(
        "insert into model_alias_history (event_id, model_id, alias, from_version, to_version, changed_by)
         values ($1, $2, $3, $4, null, $5)",
        Uuid::now_v7(),
        model,
        alias,
        before.version_id,
        actor.user_id
    )
    .execute(&mut *tx)
    .await?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team_id),
            action: "model_alias.deleted",
            target_type: "model",
            target_id: Some(model.to_string()),
            summary: json!({ "model": model_row.name, "alias": alias, "before": before.version_id,
                             "request": route.request() }),
        },
    )
    .await?;
    tx.commit().await?;
    crate::registry::domain::pages_changed(ctx, team_id);
    ctx.state.cache.invalidate(&format!("alias:{model}:{alias}"));
    ctx.state.cache.invalidate(&format!("aliases-of:{model}:"));
    Ok(())
}

/// Marks `alias` protected or not (team admins; by change request where
/// the team's policy covers it).
pub async fn protect(ctx: &Ctx, model: Uuid, alias: &str, protected: bool, route: Route) -> Result<Alias, AppError> {
    let (model_row, team_id) = crate::registry::domain::load(ctx, model, Action::UpdateTeam).await?;
    let mut tx = ctx.pool().begin().await?;
    use crate::kernel::changes::kinds::{ALIAS_PROTECT, ALIAS_UNPROTECT};
    let kind = if protected { ALIAS_PROTECT } else { ALIAS_UNPROTECT };
    gate(&mut tx, route, (&model_row.team, team_id), kind, (Some(model), Some(alias)), false).await?;
    let changed = sqlx::query!(
        "update model_alias set protected = $3 where model_id = $1 and alias = $2 and protected <> $3",
        model,
        alias,
        protected
    )
    .execute(&mut *tx)
    .await?;
    if changed.rows_affected() == 1 {
        ctx.record(
            &mut tx,
            NewEvent {
                team_id: Some(team_id),
                action: if protected { "model_alias.protected" } else { "model_alias.unprotected" },
                target_type: "model",
                target_id: Some(model.to_string()),
                summary: json!({ "model": model_row.name, "alias": alias, "request": route.request() }),
            },
        )
        .await?;
    }
    tx.commit().await?;
    crate::registry::domain::pages_changed(ctx, team_id);
    one(ctx, model, alias).await
}

async fn one(ctx: &Ctx, model: Uuid, alias: &str) -> Result<Alias, AppError> {
    sqlx::query_as!(
        Alias,
        r#"select a.alias, a.version_id, v.number, a.protected, u.email as updated_by, a.updated_at
           from model_alias a join model_version v on v.version_id = a.version_id
           join app_user u on u.user_id = a.updated_by
           where a.model_id = $1 and a.alias = $2"#,
        model,
        alias
    )
    .fetch_optional(ctx.pool())
    .await?
    .ok_or_else(|| AppError::NotFound("Alias".into()))
}

/// Every change of `alias`, newest first.
pub async fn history(
    ctx: &Ctx,
    model: Uuid,
    alias: &str,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> Result<Page<AliasChange>, AppError> {
    crate::registry::domain::load(ctx, model, Action::ReadTeam).await?;
    let limit = page::limit(limit)?;
    let after: Option<Uuid> = page::ssr::decode(cursor)?;
    let items = sqlx::query_as!(
        AliasChange,
        r#"select h.event_id as id, h.alias, h.from_version, f.number as "from_number?", h.to_version,
                  t.number as "to_number?", h.reason, u.email as changed_by, h.changed_at
           from model_alias_history h join app_user u on u.user_id = h.changed_by
           left join model_version f on f.version_id = h.from_version
           left join model_version t on t.version_id = h.to_version
           where h.model_id = $1 and h.alias = $2 and h.event_id < $3
           order by h.event_id desc limit $4"#,
        model,
        alias,
        after.unwrap_or(Uuid::max()),
        limit + 1
    )
    .fetch_all(ctx.pool())
    .await?;
    Ok(page::ssr::build(items, limit, |c: &AliasChange| c.id))
}
