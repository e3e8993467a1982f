//! Teams and their members: creating teams, renaming them, and managing who
//! belongs with which role. The last admin of a team always stays.

use crate::error::AppError;
use crate::page::Page;
use crate::roles::Role;
use crate::ui::{ConfirmButton, FieldMessage, FormError, PageHeader, Time};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Team {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub created_at: time::OffsetDateTime,
    /// The caller's role; `None` for a site admin who is not a member.
    pub my_role: Option<Role>,
    /// IAM role this team's SageMaker jobs run as, overriding the site's
    /// `CAPSTAN_SAGEMAKER_ROLE_ARN`; `None` uses the site's. Set by site admins.
    pub sagemaker_role_arn: Option<String>,
    /// Locations outside Capstan's bucket (`s3://bucket/prefix/`) the team may
    /// name; everything else outside the bucket is refused. Set by site admins.
    pub allowed_sources: Vec<String>,
    /// IAM roles besides the team's own that its launches may name in
    /// `role_arn`. Set by site admins.
    pub allowed_role_arns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Member {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub joined_at: time::OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewTeam {
    /// `[a-z0-9-]{2,40}`, unique on this site.
    pub slug: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TeamUpdate {
    /// New display name; absent keeps it.
    #[serde(default)]
    pub name: Option<String>,
    /// IAM role ARN for this team's SageMaker jobs; an empty string clears
    /// the override (jobs then use the site's role); absent keeps it. Only
    /// site admins may change it (403 for others).
    #[serde(default)]
    pub sagemaker_role_arn: Option<String>,
    /// Replaces the team's allowed locations outside Capstan's bucket (each
    /// `s3://bucket/prefix/`); absent keeps them. Site admins only.
    #[serde(default)]
    pub allowed_sources: Option<Vec<String>>,
    /// Replaces the IAM roles besides the team's own that launches may name;
    /// absent keeps them. Site admins only.
    #[serde(default)]
    pub allowed_role_arns: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    pub email: String,
    /// viewer, member, approver or admin.
    pub role: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    pub role: String,
}

#[server(prefix = "/rpc", endpoint = "list_teams")]
pub async fn list_teams(cursor: Option<String>, limit: Option<i64>) -> Result<Page<Team>, AppError> {
    let ctx = crate::state::server_ctx().await?;
    crate::state::finish(ssr::list(&ctx, cursor.as_deref(), limit).await)
}

#[server(prefix = "/rpc", endpoint = "create_team")]
pub async fn create_team(slug: String, name: String) -> Result<Team, AppError> {
    let ctx = crate::state::server_ctx().await?;
    crate::state::finish(ssr::create(&ctx, NewTeam { slug, name }).await)
}

#[server(prefix = "/rpc", endpoint = "get_team")]
pub async fn get_team(team: String) -> Result<Team, AppError> {
    let ctx = crate::state::server_ctx().await?;
    crate::state::finish(ssr::get(&ctx, &team).await)
}

#[server(prefix = "/rpc", endpoint = "update_team")]
/// `allowed_sources` is one location per line (a form's text area).
pub async fn update_team(
    team: String,
    name: Option<String>,
    sagemaker_role_arn: Option<String>,
    allowed_sources: Option<String>,
    allowed_role_arns: Option<String>,
) -> Result<Team, AppError> {
    let ctx = crate::state::server_ctx().await?;
    let lines = |text: String| text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect();
    let input = TeamUpdate {
        name,
        sagemaker_role_arn,
        allowed_sources: allowed_sources.map(lines),
        allowed_role_arns: allowed_role_arns.map(lines),
    };
    crate::state::finish(ssr::update(&ctx, &team, input).await)
}

#[server(prefix = "/rpc", endpoint = "list_members")]
pub async fn list_members(team: String, cursor: Option<String>, limit: Option<i64>) -> Result<Page<Member>, AppError> {
    let ctx = crate::state::server_ctx().await?;
    crate::state::finish(ssr::list_members(&ctx, &team, cursor.as_deref(), limit).await)
}

#[server(prefix = "/rpc", endpoint = "add_member")]
pub async fn add_member(team: String, email: String, role: String) -> Result<Member, AppError> {
    let ctx = crate::state::server_ctx().await?;
    crate::state::finish(ssr::add_member(&ctx, &team, NewMember { email, role }).await)
}

#[server(prefix = "/rpc", endpoint = "change_member_role")]
pub async fn change_member_role(team: String, user_id: Uuid, role: String) -> Result<Member, AppError> {
    let ctx = crate::state::server_ctx().await?;
    crate::state::finish(ssr::change_role(&ctx, &team, user_id, RoleChange { role }).await)
}

#[server(prefix = "/rpc", endpoint = "remove_member")]
pub async fn remove_member(team: String, user_id: Uuid) -> Result<(), AppError> {
    let ctx = crate::state::server_ctx().await?;
    crate::state::finish(ssr::remove_member(&ctx, &team, user_id).await)
}

#[component]
pub fn TeamsPage() -> impl IntoView {
    let create = ServerAction::<CreateTeam>::new();
    let err = Signal::derive(move || create.value().get().and_then(Result::err));
    let teams = Resource::new(move || create.version().get(), |_| list_teams(None, Some(200)));
    view! {
        <PageHeader title="Teams" subtitle="Teams own datasets, jobs, models and endpoints. You see the teams you belong to."/>
        <div class="grid-2">
            <section class="card">
                <h2>"Your teams"</h2>
                <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || teams.get().map(|res| match res {
                        Err(e) => view! { <crate::ui::ErrorBox error=e/> }.into_any(),
                        Ok(page) if page.items.is_empty() => view! {
                            <div class="empty">
                                <p>"You are not in any team yet. Create one to get started, or run the demo: it makes a demo team with a generated dataset and trains a model on it, so you can watch a job run within a minute."</p>
                                <crate::demo::DemoButton/>
                            </div>
                        }.into_any(),
                        Ok(page) => view! {
                            <ul class="team-list">
                                {page.items.into_iter().map(|t| view! {
                                    <li>
                                        <a href=format!("/teams/{}", t.slug)><strong>{t.name}</strong>" "<span class="muted">{t.slug.clone()}</span></a>
                                        <span class="pill">{t.my_role.map(|r| r.to_string()).unwrap_or_else(|| "site admin".into())}</span>
                                    </li>
                                }).collect_view()}
                            </ul>
                        }.into_any(),
                    })}
                </Suspense>
            </section>
            <section class="card">
                <h2>"Create a team"</h2>
                <ActionForm action=create node_ref=crate::ui::cleared_on_success(create) attr:class="stack" attr:id="create-team">
                    <FormError error=err/>
                    <label>"Slug" <input name="slug" placeholder="ml-platform" required pattern="[a-z0-9\\-]{2,40}" aria-describedby="slug-help"
                        title="2 to 40 characters: lowercase letters a–z, digits 0–9 and hyphens"/>
                        <span class="help muted" id="slug-help">"2 to 40 characters: lowercase letters a–z, digits 0–9 and hyphens (it appears in URLs and S3 paths)."</span></label>
                    <FieldMessage error=err field="slug"/>
                    <label>"Display name" <input name="name" placeholder="ML Platform" required/></label>
                    <FieldMessage error=err field="name"/>
                    <button type="submit" disabled=move || create.pending().get()>"Create team"</button>
                </ActionForm>
            </section>
        </div>
    }
}

#[component]
pub fn MembersPage() -> impl IntoView {
    use leptos_router::hooks::use_params_map;
    let params = use_params_map();
    let slug = move || params.with(|p| p.get("team").unwrap_or_default());
    let add = ServerAction::<AddMember>::new();
    let change = ServerAction::<ChangeMemberRole>::new();
    let remove = ServerAction::<RemoveMember>::new();
    let rename = ServerAction::<UpdateTeam>::new();
    // refetch after a successful save only: a refused one keeps what was typed
    let saved = move || rename.value().get().and_then(Result::ok);
    let team = Resource::new(move || (slug(), saved()), |(s, _)| get_team(s));
    let members = Resource::new(
        move || (slug(), add.version().get(), change.version().get(), remove.version().get()),
        |(s, ..)| list_members(s, None, Some(200)),
    );
    let add_err = Signal::derive(move || add.value().get().and_then(Result::err));
    let change_err = Signal::derive(move || {
        change.value().get().and_then(Result::err).or_else(|| remove.value().get().and_then(Result::err))
    });
    let rename_err = Signal::derive(move || rename.value().get().and_then(Result::err));
    let me = use_context::<crate::ui::CurrentUser>();
    let site_admin = move || me.and_then(|m| m.0.get()).and_then(Result::ok).flatten().is_some_and(|m| m.is_site_admin);
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || team.get().map(|res| match res {
                Err(e) => view! { <crate::ui::ErrorBox error=e/> }.into_any(),
                Ok(t) => {
                    let is_admin = site_admin() || t.my_role == Some(Role::Admin);
                    let slug_v = t.slug.clone();
                    view! {
                        <PageHeader title=t.name.clone() subtitle=format!("Team {} · members and roles", t.slug)/>
                        <section class="card">
                            <h2>"Members"</h2>
                            <FormError error=change_err/>
                            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                                {move || members.get().map(|res| match res {
                                    Err(e) => view! { <crate::ui::ErrorBox error=e/> }.into_any(),
                                    Ok(page) => view! {
                                        <div class="table-wrap"><table class="data" id="members">
                                            <thead><tr><th>"Name"</th><th>"Email"</th><th>"Role"</th><th>"Joined"</th>{is_admin.then(|| view! { <th></th> })}</tr></thead>
                                            <tbody>
                                            {page.items.into_iter().map(|m| {
                                                let slug_c = slug();
                                                let slug_r = slug();
                                                let role_label = format!("Role of {}", m.email);
                                                let remove_question = format!("Remove {} from the team?", m.email);
                                                view! {
                                                    <tr>
                                                        <td>{m.display_name.clone()}</td>
                                                        <td>{m.email.clone()}</td>
                                                        <td>
                                                        {if is_admin {
                                                            view! {
                                                                <ActionForm action=change attr:class="inline">
                                                                    <input type="hidden" name="team" value=slug_c/>
                                                                    <input type="hidden" name="user_id" value=m.user_id.to_string()/>
                                                                    <select name="role" aria-label=role_label>
                                                                        {Role::ALL.into_iter().map(|r| view! {
                                                                            <option value=r.as_str() selected=r == m.role>{r.as_str()}</option>
                                                                        }).collect_view()}
                                                                    </select>
                                                                    <button type="submit" class="small secondary">"Save"</button>
                                                                </ActionForm>
                                                            }.into_any()
                                                        } else {
                                                            view! { <span class="pill">{m.role.to_string()}</span> }.into_any()
                                                        }}
                                                        </td>
                                                        <td><Time at=m.joined_at/></td>
                                                        {is_admin.then(|| view! {
                                                            <td>
                                                                <ActionForm action=remove attr:class="inline">
                                                                    <input type="hidden" name="team" value=slug_r/>
                                                                    <input type="hidden" name="user_id" value=m.user_id.to_string()/>
                                                                    <ConfirmButton label="Remove" question=remove_question/>
                                                                </ActionForm>
                                                            </td>
                                                        })}
                                                    </tr>
                                                }
                                            }).collect_view()}
                                            </tbody>
                                        </table></div>
                                    }.into_any(),
                                })}
                            </Suspense>
                        </section>
                        {is_admin.then(|| { let slug_a = slug_v.clone(); let slug_n = slug_v.clone(); view! {
                            <div class="grid-2">
                            <section class="card" id="add-member">
                                <h2>"Add a member"</h2>
                                <ActionForm action=add attr:class="stack">
                                    <FormError error=add_err/>
                                    <input type="hidden" name="team" value=slug_a/>
                                    <label>"Email" <input type="email" name="email" required placeholder="colleague@example.com"/></label>
                                    <FieldMessage error=add_err field="email"/>
                                    <label>"Role"
                                        <select name="role">
                                            {Role::ALL.into_iter().map(|r| view! { <option value=r.as_str() selected=r == Role::Member>{r.as_str()}</option> }).collect_view()}
                                        </select>
                                    </label>
                                    <FieldMessage error=add_err field="role"/>
                                    <button type="submit" disabled=move || add.pending().get()>"Add member"</button>
                                </ActionForm>
                            </section>
                            <section class="card" id="team-settings">
                                <h2>"Team settings"</h2>
                                <ActionForm action=rename attr:class="stack">
                                    <FormError error=rename_err/>
                                    <input type="hidden" name="team" value=slug_n/>
                                    <label>"Display name" <input name="name" value=t.name.clone() required/></label>
                                    <FieldMessage error=rename_err field="name"/>
                                    <label>"SageMaker execution role"
                                        <input name="sagemaker_role_arn" value=t.sagemaker_role_arn.clone().unwrap_or_default()
                                            readonly=!site_admin()
                                            placeholder="arn:aws:iam::123456789012:role/SageMakerTraining"/>
                                    </label>
                                    <p class="muted">"The IAM role this team's SageMaker training jobs run as; empty uses the site's role. Only site admins change it: the role decides what the team's code may do in AWS."</p>
                                    <FieldMessage error=rename_err field="sagemaker_role_arn"/>
                                    <label>"Allowed locations outside Capstan's bucket"
                                        <textarea name="allowed_sources" rows="3" readonly=!site_admin()
                                            placeholder="s3://team-raw-data/exports/">{t.allowed_sources.join("\n")}</textarea>
                                    </label>
                                    <p class="muted">"One s3://bucket/prefix/ per line: dataset sources and training locations the team may name besides its own area of Capstan's bucket. Only site admins change them."</p>
                                    <FieldMessage error=rename_err field="allowed_sources"/>
                                    <label>"Other IAM roles launches may name"
                                        <textarea name="allowed_role_arns" rows="2" readonly=!site_admin()
                                            placeholder="arn:aws:iam::123456789012:role/GpuTraining">{t.allowed_role_arns.join("\n")}</textarea>
                                    </label>
                                    <p class="muted">"One role ARN per line, besides the execution role above, that a launch may choose. Only site admins change them."</p>
                                    <FieldMessage error=rename_err field="allowed_role_arns"/>
                                    <button type="submit" class="secondary">"Save settings"</button>
                                </ActionForm>
                            </section>
                            </div>
                        }})}
                    }.into_any()
                }
            })}
        </Suspense>
    }
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::{Member, NewMember, NewTeam, RoleChange, Team, TeamUpdate};
    use crate::audit::ssr::NewEvent;
    use crate::error::AppError;
    use crate::page::{self, Page};
    use crate::roles::{Action, Role, authorize};
    use crate::state::Ctx;
    use crate::validate::{Email, Errors, Slug, name};
    use serde_json::json;
    use uuid::Uuid;

    /// Loads a team by slug and checks the caller may take `action` on it.
    /// Returns the team and the caller's role in it.
    pub async fn load(ctx: &Ctx, slug: &str, action: Action) -> Result<(Team, Option<Role>), AppError> {
        let actor = ctx.actor()?;
        let row = sqlx::query!(
            r#"select t.team_id, t.slug, t.name, t.created_at, t.sagemaker_role_arn, t.allowed_sources,
                      t.allowed_role_arns, m.role as "role?: Role"
               from team t left join team_member m on m.team_id = t.team_id and m.user_id = $2
               where t.slug = $1"#,
            slug,
            actor.user_id,
        )
        .fetch_optional(ctx.pool())
        .await?;
        let Some(row) = row else {
            // Same answer as for a team the caller is not in.
            return Err(AppError::NotFound("Team".into()));
        };
        authorize(&actor.principal(), action, row.role)?;
        let team = Team {
            id: row.team_id,
            slug: row.slug,
            name: row.name,
            created_at: row.created_at,
            my_role: row.role,
            sagemaker_role_arn: row.sagemaker_role_arn,
            allowed_sources: row.allowed_sources,
            allowed_role_arns: row.allowed_role_arns,
        };
        Ok((team, row.role))
    }

    pub async fn list(ctx: &Ctx, cursor: Option<&str>, limit: Option<i64>) -> Result<Page<Team>, AppError> {
        let actor = ctx.actor()?;
        let limit = page::limit(limit)?;
        let after: Option<String> = page::ssr::decode(cursor)?;
        let rows = sqlx::query!(
            r#"select t.team_id, t.slug, t.name, t.created_at, t.sagemaker_role_arn, t.allowed_sources,
                      t.allowed_role_arns, m.role as "role?: Role"
               from team t left join team_member m on m.team_id = t.team_id and m.user_id = $1
               where ($2 or m.user_id is not null) and t.slug > $3
               order by t.slug
               limit $4"#,
            actor.user_id,
            actor.is_site_admin,
            after.unwrap_or_default(),
            limit + 1,
        )
        .fetch_all(ctx.pool())
        .await?;
        let items = rows
            .into_iter()
            .map(|r| Team {
                id: r.team_id,
                slug: r.slug,
                name: r.name,
                created_at: r.created_at,
                my_role: r.role,
                sagemaker_role_arn: r.sagemaker_role_arn,
                allowed_sources: r.allowed_sources,
                allowed_role_arns: r.allowed_role_arns,
            })
            .collect();
        Ok(page::ssr::build(items, limit, |t: &Team| t.slug.clone()))
    }

    pub async fn get(ctx: &Ctx, slug: &str) -> Result<Team, AppError> {
        Ok(load(ctx, slug, Action::ReadTeam).await?.0)
    }

    /// Any signed-in user may create a team and becomes its admin.
    pub async fn create(ctx: &Ctx, input: NewTeam) -> Result<Team, AppError> {
        let actor = ctx.actor()?;
        let mut errors = Errors::new();
        let slug = errors.check("slug", Slug::parse(&input.slug));
        let team_name = errors.check("name", name(&input.name, 100));
        errors.finish()?;
        let (Some(slug), Some(team_name)) = (slug, team_name) else { return Err(AppError::Internal) };
        let id = Uuid::now_v7();
        let mut tx = ctx.pool().begin().await?;
        let created_at = sqlx::query_scalar!(
            "insert into team (team_id, slug, name) values ($1, $2, $3) returning created_at",
            id,
            slug.as_str(),
            team_name,
        )
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query!("insert into team_member (team_id, user_id, role) values ($1, $2, 'admin')", id, actor.user_id)
            .execute(&mut *tx)
            .await?;
        ctx.record(
            &mut tx,
            NewEvent {
                team_id: Some(id),
                action: "team.created",
                target_type: "team",
                target_id: Some(id.to_string()),
                summary: json!({ "after": { "slug": slug.as_str(), "name": team_name } }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Team {
            id,
            slug: slug.as_str().to_owned(),
            name: team_name,
            created_at,
            my_role: Some(Role::Admin),
            sagemaker_role_arn: None,
            allowed_sources: Vec::new(),
            allowed_role_arns: Vec::new(),
        })
    }

    /// Changes the display name and/or the SageMaker role override (team
    /// admins); one audit event with what changed.
    pub async fn update(ctx: &Ctx, slug: &str, input: TeamUpdate) -> Result<Team, AppError> {
        let (team, _) = load(ctx, slug, Action::UpdateTeam).await?;
        let mut errors = Errors::new();
        let new_name = input.name.as_deref().and_then(|n| errors.check("name", name(n, 100)));
        // Some(None) clears the override
        let asked_role = input.sagemaker_role_arn.as_deref().map(str::trim);
        // Whoever picks the role picks what the team's code may do in AWS:
        // only site admins change it. An unchanged value passes, so team
        // admins can rename with the settings form (which sends both fields).
        if asked_role.is_some_and(|r| Some(r) != team.sagemaker_role_arn.as_deref().or(Some(""))) {
            crate::roles::authorize_site(&ctx.actor()?.principal(), crate::roles::SiteAction::GrantIamRoles)?;
        }
        let new_role = asked_role.and_then(|r| match r {
            "" => Some(None),
            r => errors.check("sagemaker_role_arn", crate::training::ssr::role_arn(r)).map(Some),
        });
        // the same rule: which outside data and roles a team may use is a site decision
        let bucket = &ctx.state.storage.bucket;
        let new_sources = granted_list(
            ctx,
            &mut errors,
            "allowed_sources",
            input.allowed_sources.as_ref(),
            &team.allowed_sources,
            100,
            |raw| {
                storage::S3Uri::parse(raw).and_then(|u| {
                    if u.bucket == *bucket {
                        Err(format!("{u} is in Capstan's own bucket, whose team areas need no allowing."))
                    } else {
                        Ok(u.to_string())
                    }
                })
            },
        )?;
        let new_roles = granted_list(
            ctx,
            &mut errors,
            "allowed_role_arns",
            input.allowed_role_arns.as_ref(),
            &team.allowed_role_arns,
            20,
            |raw| crate::training::ssr::role_arn(raw.trim()),
        )?;
        errors.finish()?;
        if new_name.is_none() && new_role.is_none() && new_sources.is_none() && new_roles.is_none() {
            return Err(AppError::field(
                "name",
                "Nothing to change: give a name, a sagemaker_role_arn, allowed_sources or allowed_role_arns.",
            ));
        }
        let mut tx = ctx.pool().begin().await?;
        let old = sqlx::query!(
            "select name, sagemaker_role_arn, allowed_sources, allowed_role_arns from team where team_id = $1 for update",
            team.id
        )
        .fetch_one(&mut *tx)
        .await?;
        let name_after = new_name.unwrap_or_else(|| old.name.clone());
        let role_after = new_role.unwrap_or_else(|| old.sagemaker_role_arn.clone());
        let sources_after = new_sources.unwrap_or_else(|| old.allowed_sources.clone());
        let roles_after = new_roles.unwrap_or_else(|| old.allowed_role_arns.clone());
        sqlx::query!(
            "update team set name = $2, sagemaker_role_arn = $3, allowed_sources = $4, allowed_role_arns = $5,
                    updated_at = now()
             where team_id = $1",
            team.id,
            name_after,
            role_after,
            &sources_after,
            &roles_after,
        )
        .execute(&mut *tx)
        .await?;
        ctx.record(
            &mut tx,
            NewEvent {
                team_id: Some(team.id),
                action: "team.updated",
                target_type: "team",
                target_id: Some(team.id.to_string()),
                summary: json!({
                    "before": { "name": old.name, "sagemaker_role_arn": old.sagemaker_role_arn,
                                "allowed_sources": old.allowed_sources, "allowed_role_arns": old.allowed_role_arns },
                    "after": { "name": name_after, "sagemaker_role_arn": role_after, "allowed_sources": sources_after,
                               "allowed_role_arns": roles_after },
                }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Team {
            name: name_after,
            sagemaker_role_arn: role_after,
            allowed_sources: sources_after,
            allowed_role_arns: roles_after,
            ..team
        })
    }

    /// A list only site admins grant a team (allowed sources, allowed roles):
    /// `None` when not asked or unchanged (anyone may send it back as it is,
    /// as the settings form does); otherwise each entry checked by `parse`
    /// (errors named `field[i]` when there are several) and at most `max`.
    fn granted_list(
        ctx: &Ctx,
        errors: &mut Errors,
        field: &str,
        asked: Option<&Vec<String>>,
        current: &[String],
        max: usize,
        parse: impl Fn(&str) -> Result<String, String>,
    ) -> Result<Option<Vec<String>>, AppError> {
        let Some(list) = asked.filter(|l| l.as_slice() != current) else { return Ok(None) };
        crate::roles::authorize_site(&ctx.actor()?.principal(), crate::roles::SiteAction::GrantIamRoles)?;
        let mut clean = Vec::new();
        for (i, raw) in list.iter().enumerate() {
            let name = if list.len() > 1 { format!("{field}[{i}]") } else { field.to_owned() };
            if let Some(entry) = errors.check(&name, parse(raw)) {
                clean.push(entry);
            }
        }
        if list.len() > max {
            errors.check::<()>(field, Err(format!("Allow at most {max} entries.")));
        }
        Ok(Some(clean))
    }

    pub async fn list_members(
        ctx: &Ctx,
        slug: &str,
        cursor: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Page<Member>, AppError> {
        let (team, _) = load(ctx, slug, Action::ReadTeam).await?;
        let limit = page::limit(limit)?;
        let after: Option<String> = page::ssr::decode(cursor)?;
        let items = sqlx::query!(
            r#"select u.user_id, u.email, u.display_name, m.role as "role: Role", m.created_at
               from team_member m join app_user u on u.user_id = m.user_id
               where m.team_id = $1 and u.email > $2
               order by u.email
               limit $3"#,
            team.id,
            after.unwrap_or_default(),
            limit + 1,
        )
        .fetch_all(ctx.pool())
        .await?
        .into_iter()
        .map(|r| Member {
            user_id: r.user_id,
            email: r.email,
            display_name: r.display_name,
            role: r.role,
            joined_at: r.created_at,
        })
        .collect();
        Ok(page::ssr::build(items, limit, |m: &Member| m.email.clone()))
    }

    pub async fn add_member(ctx: &Ctx, slug: &str, input: NewMember) -> Result<Member, AppError> {
        let (team, _) = load(ctx, slug, Action::ManageMembers).await?;
        let mut errors = Errors::new();
        let email = errors.check("email", Email::parse(&input.email));
        let role = errors.check("role", crate::validate::role(&input.role));
        errors.finish()?;
        let (Some(email), Some(role)) = (email, role) else { return Err(AppError::Internal) };
        let user = sqlx::query!("select user_id, email, display_name from app_user where email = $1", email.as_str())
            .fetch_optional(ctx.pool())
            .await?
            .ok_or_else(|| {
                AppError::field("email", "No account has this email. A site admin can create it on the Users page.")
            })?;
        let mut tx = ctx.pool().begin().await?;
        let joined_at = sqlx::query_scalar!(
            "insert into team_member (team_id, user_id, role) values ($1, $2, $3) returning created_at",
            team.id,
            user.user_id,
            role as Role,
        )
        .fetch_one(&mut *tx)
        .await?;
        ctx.record(
            &mut tx,
            NewEvent {
                team_id: Some(team.id),
                action: "team.member_added",
                target_type: "user",
                target_id: Some(user.user_id.to_string()),
                summary: json!({ "after": { "email": user.email, "role": role } }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Member { user_id: user.user_id, email: user.email, display_name: user.display_name, role, joined_at })
    }

    /// Locks the team's admin rows and fails if `user_id` is its last admin.
    async fn ensure_not_last_admin(tx: &mut sqlx::PgConnection, team_id: Uuid, user_id: Uuid) -> Result<(), AppError> {
        let admins = sqlx::query_scalar!(
            "select user_id from team_member where team_id = $1 and role = 'admin' for update",
            team_id
        )
        .fetch_all(&mut *tx)
        .await?;
        if admins == [user_id] {
            return Err(AppError::Conflict {
                field: Some("role".into()),
                message: "A team needs at least one admin. Make someone else admin first.".into(),
            });
        }
        Ok(())
    }

    pub async fn change_role(ctx: &Ctx, slug: &str, user_id: Uuid, input: RoleChange) -> Result<Member, AppError> {
        let (team, _) = load(ctx, slug, Action::ManageMembers).await?;
        let role = crate::validate::role(&input.role).map_err(|m| AppError::field("role", m))?;
        let mut tx = ctx.pool().begin().await?;
        if role != Role::Admin {
            ensure_not_last_admin(&mut tx, team.id, user_id).await?;
        }
        let before = sqlx::query!(
            r#"select m.role as "role: Role", m.created_at, u.email, u.display_name
               from team_member m join app_user u on u.user_id = m.user_id
               where m.team_id = $1 and m.user_id = $2 for update of m"#,
            team.id,
            user_id
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| AppError::NotFound("Member".into()))?;
        sqlx::query!(
            "update team_member set role = $3, updated_at = now() where team_id = $1 and user_id = $2",
            team.id,
            user_id,
            role as Role,
        )
        .execute(&mut *tx)
        .await?;
        ctx.record(
            &mut tx,
            NewEvent {
                team_id: Some(team.id),
                action: "team.member_role_changed",
                target_type: "user",
                target_id: Some(user_id.to_string()),
                summary: json!({ "before": { "role": before.role }, "after": { "role": role }, "email": before.email }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Member {
            user_id,
            email: before.email,
            display_name: before.display_name,
            role,
            joined_at: before.created_at,
        })
    }

    pub async fn remove_member(ctx: &Ctx, slug: &str, user_id: Uuid) -> Result<(), AppError> {
        let (team, _) = load(ctx, slug, Action::ManageMembers).await?;
        let mut tx = ctx.pool().begin().await?;
        ensure_not_last_admin(&mut tx, team.id, user_id).await?;
        let removed = sqlx::query!(
            r#"delete from team_member m using app_user u
               where m.team_id = $1 and m.user_id = $2 and u.user_id = m.user_id
               returning m.role as "role: Role", u.email"#,
            team.id,
            user_id
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| AppError::NotFound("Member".into()))?;
        ctx.record(
            &mut tx,
            NewEvent {
                team_id: Some(team.id),
                action: "team.member_removed",
                target_type: "user",
                target_id: Some(user_id.to_string()),
                summary: json!({ "before": { "email": removed.email, "role": removed.role } }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
