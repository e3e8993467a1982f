//! Models: a team's named lines of versions. Members create and edit them,
//! viewers find them by name or tag, admins archive them (archived models
//! leave lists but stay resolvable).

use crate::kernel::audit::NewEvent;
use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::page::{self, Page};
use crate::kernel::roles::{Action, Role, authorize_owned};
use crate::kernel::validate::Errors;
use crate::registry::types::{Model, ModelQuery, ModelUpdate, NewModel};
use serde_json::json;
use std::collections::BTreeMap;
use uuid::Uuid;

/// A model name: 1-128 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
pub fn model_name(raw: &str) -> Result<String, String> {
    let ok = (1..=128).contains(&raw.len())
        && raw.starts_with(|c: char| c.is_ascii_alphanumeric())
        && raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(raw.to_owned())
    } else {
        Err("Use 1 to 128 characters: letters, digits, '.', '_' and '-', starting with a letter or digit.".into())
    }
}

/// A description: at most 2000 characters, trimmed.
pub fn description(raw: &str) -> Result<String, String> {
    let d = raw.trim();
    if d.chars().count() > 2000 { Err("Use at most 2000 characters.".into()) } else { Ok(d.to_owned()) }
}

/// Key → value tags: at most 20, keys of 1-128 characters, values of at most 512.
pub fn key_value_tags(raw: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, String> {
    if raw.len() > 20 {
        return Err("Use at most 20 tags.".into());
    }
    for (key, value) in raw {
        if key.is_empty() || key.chars().count() > 128 || key.chars().any(char::is_control) {
            return Err(format!("Tag key {key:?} is not allowed: 1 to 128 characters, no control characters."));
        }
        if value.chars().count() > 512 {
            return Err(format!("The value of tag {key:?} is too long: at most 512 characters."));
        }
    }
    Ok(raw.clone())
}

fn tags_of(v: serde_json::Value) -> BTreeMap<String, String> {
    serde_json::from_value(v).unwrap_or_default()
}

/// Loads a model with its team's id and checks `action` against the caller's role.
pub async fn load(ctx: &Ctx, id: Uuid, action: Action) -> Result<(Model, Uuid), AppError> {
    let actor = ctx.actor()?;
    let row = sqlx::query!(
        r#"select m.model_id, m.team_id, t.slug, m.name, m.description, m.tags, u.email as created_by,
                  m.created_at, m.archived_at, tm.role as "role?: Role",
                  m.version_count::int8 as "version_count!",
                  (select max(number) from model_version v where v.model_id = m.model_id) as latest_version,
                  coalesce((select jsonb_object_agg(a.alias, av.number) from model_alias a
                            join model_version av on av.version_id = a.version_id where a.model_id = m.model_id),
                           '{}') as "aliases!"
           from model m join team t on t.team_id = m.team_id join app_user u on u.user_id = m.created_by
           left join team_member tm on tm.team_id = m.team_id and tm.user_id = $2
           where m.model_id = $1"#,
        id,
        actor.user_id,
    )
    .fetch_optional(ctx.pool())
    .await?
    .ok_or_else(|| AppError::NotFound("Model".into()))?;
    authorize_owned(&actor.principal(), action, row.role, "Model")?;
    let model = Model {
        id: row.model_id,
        team: row.slug,
        name: row.name,
        description: row.description,
        tags: tags_of(row.tags),
        created_by: row.created_by,
        created_at: row.created_at,
        archived_at: row.archived_at,
        version_count: row.version_count,
        latest_version: row.latest_version,
        aliases: serde_json::from_value(row.aliases).unwrap_or_default(),
    };
    Ok((model, row.team_id))
}

/// What a write to a model's versions needs of it: who owns it and its name.
#[derive(Debug, Clone)]
pub(crate) struct ModelRef {
    pub id: Uuid,
    pub team_id: Uuid,
    /// Team slug (never changes).
    pub team: String,
    pub name: String,
}

/// The model `id` for a caller allowed `action` in its team, like [`load`]
/// but without the model's lists: from the cache when it can (a model's
/// rename or delete announces `model-name:`; the caller's role is cached
/// apart, see [`Ctx::role_in`]), so a registration reads nothing before
/// it writes.
pub(crate) async fn identify(ctx: &Ctx, id: Uuid, action: Action) -> Result<ModelRef, AppError> {
    let actor = ctx.actor()?;
    let load = async {
        let row = sqlx::query!(
            "select m.team_id, t.slug, m.name from model m join team t on t.team_id = m.team_id
             where m.model_id = $1",
            id
        )
        .fetch_optional(ctx.pool())
        .await?
        .ok_or_else(|| AppError::NotFound("Model".into()))?;
        Ok::<_, AppError>(ModelRef { id, team_id: row.team_id, team: row.slug, name: row.name })
    };
    let key = format!("model-name:id:{id}");
    let model = ctx.state.cache.get_or_load(key, std::time::Duration::from_secs(300), load).await?;
    authorize_owned(&actor.principal(), action, ctx.role_in(model.team_id).await?, "Model")?;
    Ok(model)
}

pub async fn get(ctx: &Ctx, id: Uuid) -> Result<Model, AppError> {
    Ok(load(ctx, id, Action::ReadTeam).await?.0)
}

/// The team's models by name, filtered by name and tag.
pub async fn list(ctx: &Ctx, team: &str, q: ModelQuery) -> Result<Page<Model>, AppError> {
    let (team, _) = crate::teams::domain::load(ctx, team, Action::ReadTeam).await?;
    // a page the caller may read comes from the cache when it can: any
    // change of the team's models, versions or aliases announces `page:<team>:`
    let cache = &ctx.state.cache;
    let key = format!("{}{}:models:{}", crate::kernel::cache::PAGE_PREFIX, team.id, serde_json::json!(q));
    cache.get_or_load(key, PAGE_TTL, list_uncached(ctx, team.id, q)).await
}

/// How long a page of a list is served from the cache at most (a change
/// of the team's registry drops it at once; this bounds a lost
/// notification, and an account's email shown as creator).
pub(crate) const PAGE_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// Drops this process's cached pages of `team`'s lists at once after a
/// change committed (other processes drop them when the database's
/// notification arrives), so a writer reads its own write.
pub(crate) fn pages_changed(ctx: &Ctx, team: Uuid) {
    ctx.state.cache.invalidate(&format!("{}{team}:", crate::kernel::cache::PAGE_PREFIX));
}

/// Announces a new version's pages after its commit: to this process at
/// once, to the others shortly after (see [`crate::kernel::cache::Cache::changed`];
/// the registration's own transaction does not notify, so that
/// registrations commit side by side; see migration `registration_notify`).
pub(crate) fn versions_added(ctx: &Ctx, team: Uuid) {
    ctx.state.cache.changed(&format!("{}{team}:", crate::kernel::cache::PAGE_PREFIX));
}

async fn list_uncached(ctx: &Ctx, team_id: Uuid, q: ModelQuery) -> Result<Page<Model>, AppError> {
    let limit = page::limit(q.limit)?;
    let after: Option<String> = page::ssr::decode(q.cursor.as_deref())?;
    let search = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_lowercase);
    let (tag_key, tag_value) = match q.tag.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(tag) => match tag.split_once('=') {
            Some((k, v)) => (Some(k.to_owned()), Some(v.to_owned())),
            None => (Some(tag.to_owned()), None),
        },
        None => (None, None),
    };
    let rows = sqlx::query!(
        r#"select m.model_id, t.slug, m.name, m.description, m.tags, u.email as created_by,
                  m.created_at, m.archived_at,
                  m.version_count::int8 as "version_count!",
                  (select max(number) from model_version v where v.model_id = m.model_id) as latest_version,
                  coalesce((select jsonb_object_agg(a.alias, av.number) from model_alias a
                            join model_version av on av.version_id = a.version_id where a.model_id = m.model_id),
                           '{}') as "aliases!"
           from model m join team t on t.team_id = m.team_id join app_user u on u.user_id = m.created_by
           where m.team_id = $1 and m.name > $2 and ($3 or m.archived_at is null)
             and ($4::text is null or strpos(lower(m.name), $4) > 0)
             and ($5::text is null or m.tags ? $5)
             and ($6::text is null or m.tags ->> $5 = $6)
           order by m.name limit $7"#,
        team_id,
        after.unwrap_or_default(),
        q.archived,
        search,
        tag_key,
        tag_value,
        limit + 1,
    )
    .fetch_all(ctx.pool())
    .await?;
    let items = rows
        .into_iter()
        .map(|r| Model {
            id: r.model_id,
            team: r.slug,
            name: r.name,
            description: r.description,
            tags: tags_of(r.tags),
            created_by: r.created_by,
            created_at: r.created_at,
            archived_at: r.archived_at,
            version_count: r.version_count,
            latest_version: r.latest_version,
            aliases: serde_json::from_value(r.aliases).unwrap_or_default(),
        })
        .collect();
    Ok(page::ssr::build(items, limit, |m: &Model| m.name.clone()))
}

/// Creates a model (members and up).
pub async fn create(ctx: &Ctx, team: &str, input: NewModel) -> Result<Model, AppError> {
    let (team, _) = crate::teams::domain::load(ctx, team, Action::Contribute).await?;
    let actor = ctx.actor()?;
    let mut errors = Errors::new();
    let name = errors.check("name", model_name(&input.name));
    let desc = errors.check("description", description(&input.description));
    let tags = errors.check("tags", key_value_tags(&input.tags));
    errors.finish()?;
    let (Some(name), Some(desc), Some(tags)) = (name, desc, tags) else { return Err(AppError::Internal) };
    let id = Uuid::now_v7();
    let mut tx = ctx.pool().begin().await?;
    sqlx::query!(
        "insert into model (model_id, team_id, name, description, tags, created_by) values ($1, $2, $3, $4, $5, $6)",
        id,
        team.id,
        name,
        desc,
        json!(tags),
        actor.user_id,
    )
    .execute(&mut *tx)
    .await?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team.id),
            action: "model.created",
            target_type: "model",
            target_id: Some(id.to_string()),
            summary: json!({ "after": { "name": name, "description": desc, "tags": tags } }),
        },
    )
    .await?;
    tx.commit().await?;
    crate::registry::domain::pages_changed(ctx, team.id);
    get(ctx, id).await
}

/// Changes a model's description or tags (members and up).
pub async fn update(ctx: &Ctx, id: Uuid, input: ModelUpdate) -> Result<Model, AppError> {
    let (_, team_id) = load(ctx, id, Action::Contribute).await?;
    let mut errors = Errors::new();
    let desc = input.description.as_deref().map(|d| errors.check("description", description(d)));
    let tags = input.tags.as_ref().map(|t| errors.check("tags", key_value_tags(t)));
    errors.finish()?;
    let mut tx = ctx.pool().begin().await?;
    // the row as it is now, locked, so the audit's "before" is exact under concurrent edits
    let before = sqlx::query!("select description, tags from model where model_id = $1 for update", id)
        .fetch_one(&mut *tx)
        .await?;
    let new_desc = desc.flatten().unwrap_or_else(|| before.description.clone());
    let new_tags = tags.flatten().map_or_else(|| before.tags.clone(), |t| json!(t));
    sqlx::query!(
        "update model set description = $2, tags = $3, updated_at = now() where model_id = $1",
        id,
        new_desc,
        new_tags
    )
    .execute(&mut *tx)
    .await?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team_id),
            action: "model.updated",
            target_type: "model",
            target_id: Some(id.to_string()),
            summary: json!({
                "before": { "description": before.description, "tags": before.tags },
                "after": { "description": new_desc, "tags": new_tags },
            }),
        },
    )
    .await?;
    tx.commit().await?;
    crate::registry::domain::pages_changed(ctx, team_id);
    get(ctx, id).await
}

/// Archives a model (team admins): it leaves lists, its versions stay.
pub async fn archive(ctx: &Ctx, id: Uuid) -> Result<Model, AppError> {
    let (before, team_id) = load(ctx, id, Action::Archive).await?;
    let mut tx = ctx.pool().begin().await?;
    let archived = sqlx::query!(
        "update model set archived_at = now(), updated_at = now() where model_id = $1 and archived_at is null",
        id
    )
    .execute(&mut *tx)
    .await?;
    if archived.rows_affected() == 0 {
        return get(ctx, id).await; // archived already
    }
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team_id),
            action: "model.archived",
            target_type: "model",
            target_id: Some(id.to_string()),
            summary: json!({ "name": before.name }),
        },
    )
    .await?;
    tx.commit().await?;
    crate::registry::domain::pages_changed(ctx, team_id);
    get(ctx, id).await
}

/// Renames a model (members and up); the new name follows the same rules
/// and must be free in the team.
pub async fn rename(ctx: &Ctx, id: Uuid, new_name: &str) -> Result<Model, AppError> {
    let (before, team_id) = load(ctx, id, Action::Contribute).await?;
    let name = model_name(new_name).map_err(|m| AppError::field("name", m))?;
    let mut tx = ctx.pool().begin().await?;
    sqlx::query!("update model set name = $2, updated_at = now() where model_id = $1", id, name)
        .execute(&mut *tx)
        .await?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team_id),
            action: "model.renamed",
            target_type: "model",
            target_id: Some(id.to_string()),
            summary: json!({ "before": { "name": before.name }, "after": { "name": name } }),
        },
    )
    .await?;
    tx.commit().await?;
    crate::registry::domain::pages_changed(ctx, team_id);
    ctx.state.cache.invalidate("model-name:");
    // cached versions carry the model's name
    ctx.state.cache.invalidate("version:");
    get(ctx, id).await
}

/// Deletes a model with its versions, aliases and their history (team
/// admins). Training jobs and dataset versions stay.
pub async fn delete(ctx: &Ctx, id: Uuid) -> Result<(), AppError> {
    let (before, team_id) = load(ctx, id, Action::Archive).await?;
    let mut tx = ctx.pool().begin().await?;
    sqlx::query!("delete from model where model_id = $1", id).execute(&mut *tx).await?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team_id),
            action: "model.deleted",
            target_type: "model",
            target_id: Some(id.to_string()),
            summary: json!({ "before": { "name": before.name, "versions": before.version_count } }),
        },
    )
    .await?;
    tx.commit().await?;
    crate::registry::domain::pages_changed(ctx, team_id);
    ctx.state.cache.invalidate("model-name:");
    ctx.state.cache.invalidate(&format!("alias:{id}:"));
    ctx.state.cache.invalidate(&format!("aliases-of:{id}:"));
    ctx.state.cache.invalidate(&format!("version-number:{id}:"));
    ctx.state.cache.invalidate("version:");
    Ok(())
}
