//! Datasets: named, team-owned collections of training data. A dataset is
//! created by members, found by name or tag, and archived by admins (archived
//! datasets leave lists but stay resolvable). Versions (immutable S3
//! snapshots with manifests) build on this.

use crate::error::AppError;
use crate::page::Page;
use crate::roles::Role;
use crate::ui::{ConfirmButton, FieldMessage, FormError, PageHeader, Time};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Dataset {
    pub id: Uuid,
    pub team: String,
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    /// Email of the creator.
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>, format = DateTime))]
    pub archived_at: Option<time::OffsetDateTime>,
    /// Versions of any status.
    pub version_count: i64,
    /// The newest ready version's number.
    pub latest_version: Option<i32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewDataset {
    /// 1-100 of `a-z 0-9 . _ -`, unique in the team.
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Fields to change; omitted fields stay as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DatasetUpdate {
    pub description: Option<String>,
    pub tags: Option<Vec<String>>,
}

/// Filters for a team's dataset list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
pub struct DatasetQuery {
    /// Matches names containing this text, or this exact tag.
    pub q: Option<String>,
    /// Include archived datasets.
    #[serde(default)]
    pub archived: bool,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// Tags as typed in the form: one string, comma-separated.
#[cfg(feature = "ssr")]
fn split_tags(raw: &str) -> Vec<String> {
    raw.split(',').map(str::to_owned).collect()
}

#[server(prefix = "/rpc", endpoint = "list_datasets")]
pub async fn list_datasets(team: String, query: DatasetQuery) -> Result<Page<Dataset>, AppError> {
    let ctx = crate::state::server_ctx().await?;
    crate::state::finish(ssr::list(&ctx, &team, query).await)
}

/// `tags` is comma-separated, as typed in the form.
#[server(prefix = "/rpc", endpoint = "create_dataset")]
pub async fn create_dataset(
    team: String,
    name: String,
    description: String,
    tags: String,
) -> Result<Dataset, AppError> {
    let ctx = crate::state::server_ctx().await?;
    crate::state::finish(ssr::create(&ctx, &team, NewDataset { name, description, tags: split_tags(&tags) }).await)
}

#[server(prefix = "/rpc", endpoint = "get_dataset")]
pub async fn get_dataset(id: Uuid) -> Result<Dataset, AppError> {
    let ctx = crate::state::server_ctx().await?;
    crate::state::finish(ssr::get(&ctx, id).await)
}

#[server(prefix = "/rpc", endpoint = "update_dataset")]
pub async fn update_dataset(id: Uuid, description: String, tags: String) -> Result<Dataset, AppError> {
    let ctx = crate::state::server_ctx().await?;
    let update = DatasetUpdate { description: Some(description), tags: Some(split_tags(&tags)) };
    crate::state::finish(ssr::update(&ctx, id, update).await)
}

#[server(prefix = "/rpc", endpoint = "archive_dataset")]
pub async fn archive_dataset(id: Uuid) -> Result<Dataset, AppError> {
    let ctx = crate::state::server_ctx().await?;
    crate::state::finish(ssr::archive(&ctx, id).await)
}

#[component]
pub fn DatasetsPage() -> impl IntoView {
    use leptos_router::hooks::{use_params_map, use_query_map};
    let params = use_params_map();
    let query = use_query_map();
    let team = move || params.with(|p| p.get("team").unwrap_or_default());
    let create = ServerAction::<CreateDataset>::new();
    let archive = ServerAction::<ArchiveDataset>::new();
    let err = Signal::derive(move || create.value().get().and_then(Result::err));
    let archive_err = Signal::derive(move || archive.value().get().and_then(Result::err));
    let filter = move || {
        let q = query.get();
        DatasetQuery {
            q: q.get("q").filter(|v| !v.is_empty()),
            archived: q.get("archived").is_some_and(|v| v == "on"),
            cursor: q.get("cursor").filter(|v| !v.is_empty()),
            limit: None,
        }
    };
    let datasets = Resource::new(
        move || (team(), filter(), create.version().get(), archive.version().get()),
        |(t, f, ..)| list_datasets(t, f),
    );
    let team_info = Resource::new(team, crate::teams::get_team);
    let q_value = move || query.with(|q| q.get("q").unwrap_or_default());
    view! {
        <PageHeader title="Datasets" subtitle="The data this team trains on. Members register datasets; admins archive them."/>
        <div class="grid-2 wide-left">
            <section class="card">
                <form method="get" class="filters">
                    <label>"Search" <input name="q" placeholder="name or tag" value=q_value/></label>
                    <label class="check"><input type="checkbox" name="archived"/>" include archived"</label>
                    <button type="submit" class="secondary">"Search"</button>
                </form>
                <FormError error=archive_err/>
                <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || {
                        let can_archive = team_info.get().and_then(Result::ok).is_some_and(|t| t.my_role.is_none_or(|r| r == Role::Admin));
                        datasets.get().map(|res| match res {
                            Err(e) => view! { <crate::ui::ErrorBox error=e/> }.into_any(),
                            Ok(page) if page.items.is_empty() => view! { <p class="empty">"No datasets yet."</p> }.into_any(),
                            Ok(page) => view! {
                                <div class="table-wrap"><table class="data" id="datasets">
                                    <thead><tr><th>"Name"</th><th>"Tags"</th><th>"Versions"</th><th>"Created"</th><th></th></tr></thead>
                                    <tbody>
                                    {page.items.into_iter().map(|d| view! {
                                        <tr class:revoked=d.archived_at.is_some()>
                                            <td><a href=format!("/teams/{}/datasets/{}", d.team, d.id)><strong>{d.name.clone()}</strong></a><br/><span class="muted">{d.description.clone()}</span></td>
                                            <td>{d.tags.iter().map(|t| view! { <span class="pill">{t.clone()}</span> }).collect_view()}</td>
                                            <td class="versions">{d.version_count}{d.latest_version.map(|n| view! { <br/><span class="muted">{format!("latest ready v{n}")}</span> })}</td>
                                            <td><Time at=d.created_at/><br/><span class="muted">{d.created_by.clone()}</span></td>
                                            <td>{(can_archive && d.archived_at.is_none()).then(|| view! {
                                                <ActionForm action=archive attr:class="inline">
                                                    <input type="hidden" name="id" value=d.id.to_string()/>
                                                    <ConfirmButton label="Archive" question=format!("Archive dataset {}?", d.name)/>
                                                </ActionForm>
                                            })}</td>
                                        </tr>
                                    }).collect_view()}
                                    </tbody>
                                </table></div>
                                {page.next_cursor.map(|c| {
                                    let q = query.with(|q| q.get("q")).unwrap_or_default();
                                    let archived = if filter().archived { "&archived=on" } else { "" };
                                    view! { <p><a href=format!("?q={}{archived}&cursor={c}", crate::dataset_pages::encode(&q))>"Next page →"</a></p> }
                                })}
                            }.into_any(),
                        })
                    }}
                </Suspense>
            </section>
            <section class="card">
                <h2>"Register a dataset"</h2>
                <ActionForm action=create node_ref=crate::ui::cleared_on_success(create) attr:class="stack" attr:id="create-dataset">
                    <FormError error=err/>
                    <input type="hidden" name="team" value=team/>
                    <label>"Name" <input name="name" placeholder="churn-events" required/></label>
                    <FieldMessage error=err field="name"/>
                    <label>"Description" <input name="description" placeholder="What the data is and where it comes from"/></label>
                    <FieldMessage error=err field="description"/>
                    <label>"Tags (comma-separated)" <input name="tags" placeholder="tabular, churn"/></label>
                    <FieldMessage error=err field="tags"/>
                    <button type="submit" disabled=move || create.pending().get()>"Register dataset"</button>
                </ActionForm>
            </section>
        </div>
    }
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::{Dataset, DatasetQuery, DatasetUpdate, NewDataset};
    use crate::audit::ssr::NewEvent;
    use crate::error::AppError;
    use crate::page::{self, Page};
    use crate::roles::{Action, Role, authorize_owned};
    use crate::state::Ctx;
    use crate::validate::{Errors, resource_name, tags};
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
        let (team, _) = crate::teams::ssr::load(ctx, team, Action::ReadTeam).await?;
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
        let (team, _) = crate::teams::ssr::load(ctx, team, Action::Contribute).await?;
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
}
