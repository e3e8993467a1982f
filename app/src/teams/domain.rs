//! Teams and their members on the server: creating teams, settings (some only
//! site admins grant), and managing who belongs with which role. The last
//! admin of a team always stays.

use crate::kernel::audit::NewEvent;
use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::page::{self, Page};
use crate::kernel::roles::{Action, Role, authorize};
use crate::kernel::validate::{Email, Errors, Slug, name};
use crate::teams::types::{Member, NewMember, NewTeam, RoleChange, Team, TeamUpdate};
use serde_json::json;
use uuid::Uuid;

/// Loads a team by slug (or by id: both address a team in URLs) and checks
/// the caller may take `action` on it. Returns the team and the caller's
/// role in it.
pub async fn load(ctx: &Ctx, slug: &str, action: Action) -> Result<(Team, Option<Role>), AppError> {
    let actor = ctx.actor()?;
    let row = sqlx::query!(
        r#"select t.team_id, t.slug, t.name, t.created_at, t.sagemaker_role_arn, t.allowed_sources,
                  t.allowed_role_arns, m.role as "role?: Role"
           from team t left join team_member m on m.team_id = t.team_id and m.user_id = $2
           where t.slug = $1 or t.team_id::text = $1"#,
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
    membership_changed(ctx, id, actor.user_id);
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
        crate::kernel::roles::authorize_site(
            &ctx.actor()?.principal(),
            crate::kernel::roles::SiteAction::GrantIamRoles,
        )?;
    }
    let new_role = asked_role.and_then(|r| match r {
        "" => Some(None),
        r => errors.check("sagemaker_role_arn", crate::kernel::validate::role_arn(r)).map(Some),
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
        |raw| crate::kernel::validate::role_arn(raw.trim()),
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
    crate::kernel::roles::authorize_site(&ctx.actor()?.principal(), crate::kernel::roles::SiteAction::GrantIamRoles)?;
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
    let role = errors.check("role", crate::kernel::validate::role(&input.role));
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
    membership_changed(ctx, team.id, user.user_id);
    Ok(Member { user_id: user.user_id, email: user.email, display_name: user.display_name, role, joined_at })
}

/// Drops this process's cached view of `user`'s membership in `team` at
/// once after the change committed (other processes drop it when the
/// database's notification arrives), so the next request reads the change.
fn membership_changed(ctx: &Ctx, team: Uuid, user: Uuid) {
    ctx.state.cache.invalidate(&format!("member:{team}:{user}"));
    ctx.state.cache.invalidate(&format!("teams-of:{user}"));
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
    let role = crate::kernel::validate::role(&input.role).map_err(|m| AppError::field("role", m))?;
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
    membership_changed(ctx, team.id, user_id);
    Ok(Member { user_id, email: before.email, display_name: before.display_name, role, joined_at: before.created_at })
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
    membership_changed(ctx, team.id, user_id);
    Ok(())
}
