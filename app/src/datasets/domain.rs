//! Datasets: named, team-owned collections of training data. A dataset is
//! created by members, found by name or tag, and archived by admins (archived
//! datasets leave lists but stay resolvable).

use crate::datasets::types::{Dataset, DatasetQuery, DatasetUpdate, NewDataset};
use crate::kernel::audit::NewEvent;
use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::page::{self, Page};
use crate::kernel::roles::{Action, Role, authorize_owned};
use crate::kernel::validate::{Errors, resource_name, tags};
use serde_json::json;
use uuid::Uuid;

fn description(raw: &str) -> Result<String, String> {
    let d = raw.trim();
    if d.chars().count() > 2000 { Err("Use at most 2000 characters.".into()) } else { Ok(d.to_owned()) }
}

/// Loads a dataset with its team's id and checks `action` against the caller's role.
async fn load(ctx: &Ctx, id: Uuid, action: Action) -> Result<(Dataset, Uuid), AppError> {
    let actor = ctx.actor()?;
    let row = sqlx::query!(
        r#"select d.dataset_id, d.team_id, t.slug, d.name, d.description, d.tags, u.email as created_by,
                  d.created_at, d.archived_at, m.role as "role?: Role",
                  (select count(*) from dataset_version v where v.dataset_id = d.dataset_id) as "version_count!",
                  (select max(number) from dataset_version v where v.dataset_id = d.dataset_id and v.status = 'ready')
                    as latest_version
           from dataset d join team t on t.team_id = d.team_id join app_user u on u.user_id = d.created_by
           left join team_member m on m.team_id = d.team_id and m.user_id = $2
           where d.dataset_id = $1"#,
        id,
        actor.user_id,
    )
    .fetch_optional(ctx.pool())
    .await?
    .ok_or_else(|| AppError::NotFound("Dataset".into()))?;
    authorize_owned(&actor.principal(), action, row.role, "Dataset")?;
    let dataset = Dataset {
        id: row.dataset_id,
        team: row.slug,
        name: row.name,
        description: row.description,
        tags: row.tags,
        created_by: row.created_by,
        created_at: row.created_at,
        archived_at: row.archived_at,
        version_count: row.version_count,
        latest_version: row.latest_version,
    };
    Ok((dataset, row.team_id))
}

pub async fn get(ctx: &Ctx, id: Uuid) -> Result<Dataset, AppError> {
    Ok(load(ctx, id, Action::ReadTeam).await?.0)
}

pub async fn list(ctx: &Ctx, team: &str, q: DatasetQuery) -> Result<Page<Dataset>, AppError> {
    let (team, _) = crate::teams::domain::load(ctx, team, Action::ReadTeam).await?;
    let limit = page::limit(q.limit)?;
    let after: Option<String> = page::ssr::decode(q.cursor.as_deref())?;
    let search = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_lowercase);
    let items = sqlx::query_as!(
        Dataset,
        r#"select d.dataset_id as id, t.slug as team, d.name, d.description, d.tags, u.email as created_by,
                  d.created_at, d.archived_at,
                  (select count(*) from dataset_version v where v.dataset_id = d.dataset_id) as "version_count!",
                  (select max(number) from dataset_version v where v.dataset_id = d.dataset_id and v.status = 'ready')
                    as latest_version
           from dataset d join team t on t.team_id = d.team_id join app_user u on u.user_id = d.created_by
           where d.team_id = $1 and d.name > $2 and ($3 or d.archived_at is null)
             and ($4::text is null or strpos(d.name, $4) > 0 or $4 = any(d.tags))
           order by d.name limit $5"#,
        team.id,
        after.unwrap_or_default(),
        q.archived,
        search,
        limit + 1,
    )
    .fetch_all(ctx.pool())
    .await?;
    Ok(page::ssr::build(items, limit, |d: &Dataset| d.name.clone()))
}

pub async fn create(ctx: &Ctx, team: &str, input: NewDataset) -> Result<Dataset, AppError> {
    let (team, _) = crate::teams::domain::load(ctx, team, Action::Contribute).await?;
    let actor = ctx.actor()?;
    let mut errors = Errors::new();
    let name = errors.check("name", resource_name(&input.name));
    let desc = errors.check("description", description(&input.description));
    let tag_list = errors.check("tags", tags(&input.tags));
    errors.finish()?;
    let (Some(name), Some(desc), Some(tag_list)) = (name, desc, tag_list) else { return Err(AppError::Internal) };
    let id = Uuid::now_v7();
    let mut tx = ctx.pool().begin().await?;
    sqlx::query!(
        "insert into dataset (dataset_id, team_id, name, description, tags, created_by) values ($1, $2, $3, $4, $5, $6)",
        id,
        team.id,
        name,
        desc,
        &tag_list,
        actor.user_id,
    )
    .execute(&mut *tx)
    .await?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team.id),
            action: "dataset.created",
            target_type: "dataset",
            target_id: Some(id.to_string()),
            summary: json!({ "after": { "name": name, "tags": tag_list } }),
        },
    )
    .await?;
    tx.commit().await?;
    get(ctx, id).await
}

pub async fn update(ctx: &Ctx, id: Uuid, input: DatasetUpdate) -> Result<Dataset, AppError> {
    let (_, team_id) = load(ctx, id, Action::Contribute).await?;
    let mut errors = Errors::new();
    let desc = input.description.as_deref().map(|d| errors.check("description", description(d)));
    let tag_list = input.tags.as_deref().map(|t| errors.check("tags", tags(t)));
    errors.finish()?;
    let mut tx = ctx.pool().begin().await?;
    // the row as it is now, locked, so the audit's "before" is exact under concurrent edits
    let before = sqlx::query!("select description, tags from dataset where dataset_id = $1 for update", id)
        .fetch_one(&mut *tx)
        .await?;
    let desc = desc.flatten().unwrap_or_else(|| before.description.clone());
    let tag_list = tag_list.flatten().unwrap_or_else(|| before.tags.clone());
    sqlx::query!(
        "update dataset set description = $2, tags = $3, updated_at = now() where dataset_id = $1",
        id,
        desc,
        &tag_list
    )
    .execute(&mut *tx)
    .await?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team_id),
            action: "dataset.updated",
            target_type: "dataset",
            target_id: Some(id.to_string()),
            summary: json!({ "before": { "description": before.description, "tags": before.tags },
                             "after": { "description": desc, "tags": tag_list } }),
        },
    )
    .await?;
    tx.commit().await?;
    get(ctx, id).await
}

pub async fn archive(ctx: &Ctx, id: Uuid) -> Result<Dataset, AppError> {
    let (before, team_id) = load(ctx, id, Action::Archive).await?;
    let mut tx = ctx.pool().begin().await?;
    let archived = sqlx::query!(
        "update dataset set archived_at = now(), updated_at = now() where dataset_id = $1 and archived_at is null",
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
            action: "dataset.archived",
            target_type: "dataset",
            target_id: Some(id.to_string()),
            summary: json!({ "name": before.name }),
        },
    )
    .await?;
    tx.commit().await?;
    get(ctx, id).await
}
