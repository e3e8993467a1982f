//! Site administration of accounts: site admins list users, create accounts
//! for colleagues (who then sign in and change their password) and disable them.

use crate::accounts::domain::NewUser;
use crate::accounts::domain::create_user;
use crate::accounts::types::{NewUserRequest, User, UserUpdate};
use crate::kernel::audit::NewEvent;
use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::page::{self, Page};
use crate::kernel::roles::{SiteAction, authorize_site};

pub async fn list(ctx: &Ctx, cursor: Option<&str>, limit: Option<i64>) -> Result<Page<User>, AppError> {
    authorize_site(&ctx.actor()?.principal(), SiteAction::ManageUsers)?;
    let limit = page::limit(limit)?;
    let after: Option<String> = page::ssr::decode(cursor)?;
    let items = sqlx::query_as!(
        User,
        r#"select user_id as id, email, display_name, is_site_admin, disabled_at is not null as "disabled!", created_at
           from app_user where email > $1 order by email limit $2"#,
        after.unwrap_or_default(),
        limit + 1,
    )
    .fetch_all(ctx.pool())
    .await?;
    Ok(page::ssr::build(items, limit, |u: &User| u.email.clone()))
}

pub async fn create(ctx: &Ctx, input: NewUserRequest) -> Result<User, AppError> {
    authorize_site(&ctx.actor()?.principal(), SiteAction::ManageUsers)?;
    let parsed = NewUser::parse(&input.email, &input.display_name, &input.password, input.is_site_admin)?;
    let (actor, meta) = ctx.audit();
    let id = create_user(ctx.pool(), &actor, &meta, parsed).await?;
    get(ctx, id).await
}

async fn get(ctx: &Ctx, id: uuid::Uuid) -> Result<User, AppError> {
    sqlx::query_as!(
        User,
        r#"select user_id as id, email, display_name, is_site_admin, disabled_at is not null as "disabled!", created_at
           from app_user where user_id = $1"#,
        id
    )
    .fetch_optional(ctx.pool())
    .await?
    .ok_or_else(|| AppError::NotFound("User".into()))
}

/// Disables or enables an account (site admins, never their own): a
/// disabled account's sessions and tokens stop working at once.
pub async fn update(ctx: &Ctx, id: uuid::Uuid, input: UserUpdate) -> Result<User, AppError> {
    let actor = ctx.actor()?;
    authorize_site(&actor.principal(), SiteAction::ManageUsers)?;
    if id == actor.user_id && input.disabled {
        return Err(AppError::field("disabled", "You cannot disable your own account."));
    }
    let mut tx = ctx.pool().begin().await?;
    let before = sqlx::query_scalar!(
        r#"select disabled_at is not null as "disabled!" from app_user where user_id = $1 for update"#,
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| AppError::NotFound("User".into()))?;
    if before != input.disabled {
        sqlx::query!(
            "update app_user set disabled_at = case when $2 then now() end, updated_at = now() where user_id = $1",
            id,
            input.disabled
        )
        .execute(&mut *tx)
        .await?;
        ctx.record(
            &mut tx,
            NewEvent {
                team_id: None,
                action: if input.disabled { "user.disabled" } else { "user.enabled" },
                target_type: "user",
                target_id: Some(id.to_string()),
                summary: serde_json::json!({ "before": { "disabled": before }, "after": { "disabled": input.disabled } }),
            },
        )
        .await?;
    }
    tx.commit().await?;
    get(ctx, id).await
}
