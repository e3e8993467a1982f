//! Site administration of accounts: site admins list users and create
//! accounts for colleagues (who then sign in and change their password).

use crate::error::AppError;
use crate::page::Page;
use crate::ui::{FieldMessage, FormError, PageHeader, Time};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub is_site_admin: bool,
    /// Disabled accounts cannot sign in; their sessions and tokens stop working.
    pub disabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub created_at: time::OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    /// `true` disables the account at once (sign-in, sessions, tokens);
    /// `false` enables it again.
    pub disabled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewUserRequest {
    pub email: String,
    pub display_name: String,
    /// At least 12 characters; share it with the user, who can change it on the Account page.
    pub password: String,
    #[serde(default)]
    pub is_site_admin: bool,
}

#[server(prefix = "/rpc", endpoint = "list_users")]
pub async fn list_users(cursor: Option<String>, limit: Option<i64>) -> Result<Page<User>, AppError> {
    let ctx = crate::state::server_ctx().await?;
    crate::state::finish(ssr::list(&ctx, cursor.as_deref(), limit).await)
}

/// `is_site_admin` is a checkbox: present ("on") means yes.
#[server(prefix = "/rpc", endpoint = "create_user")]
pub async fn create_user(
    email: String,
    display_name: String,
    password: String,
    is_site_admin: Option<String>,
) -> Result<User, AppError> {
    let ctx = crate::state::server_ctx().await?;
    let input = NewUserRequest { email, display_name, password, is_site_admin: is_site_admin.is_some() };
    crate::state::finish(ssr::create(&ctx, input).await)
}

/// `disabled` is "true" or "false" (a form's hidden field).
#[server(prefix = "/rpc", endpoint = "set_user_disabled")]
pub async fn set_user_disabled(user_id: Uuid, disabled: String) -> Result<User, AppError> {
    let ctx = crate::state::server_ctx().await?;
    let result = async {
        let disabled = disabled.parse().map_err(|_| AppError::field("disabled", "Use true or false."))?;
        ssr::update(&ctx, user_id, UserUpdate { disabled }).await
    }
    .await;
    crate::state::finish(result)
}

#[component]
pub fn UsersPage() -> impl IntoView {
    let create = ServerAction::<CreateUser>::new();
    let toggle = ServerAction::<SetUserDisabled>::new();
    let err = Signal::derive(move || create.value().get().and_then(Result::err));
    let toggle_err = Signal::derive(move || toggle.value().get().and_then(Result::err));
    let created = move || create.value().get().and_then(Result::ok);
    let users =
        Resource::new(move || (create.version().get(), toggle.version().get()), |_| list_users(None, Some(200)));
    view! {
        <PageHeader title="Users" subtitle="Accounts on this Capstan. Team admins add existing accounts to their teams."/>
        <div class="grid-2">
            <section class="card">
                <h2>"Accounts"</h2>
                <FormError error=toggle_err/>
                <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || users.get().map(|res| match res {
                        Err(e) => view! { <crate::ui::ErrorBox error=e/> }.into_any(),
                        Ok(page) => view! {
                            <div class="table-wrap"><table class="data" id="users">
                                <thead><tr><th>"Name"</th><th>"Email"</th><th>"Created"</th><th></th><th></th></tr></thead>
                                <tbody>
                                {page.items.into_iter().map(|u| view! {
                                    <tr>
                                        <td>{u.display_name}</td>
                                        <td>{u.email}</td>
                                        <td><Time at=u.created_at/></td>
                                        <td>
                                            {u.is_site_admin.then(|| view! { <span class="pill">"site admin"</span> })}
                                            {u.disabled.then(|| view! { <span class="pill danger">"disabled"</span> })}
                                        </td>
                                        <td>
                                            <ActionForm action=toggle attr:class="inline">
                                                <input type="hidden" name="user_id" value=u.id.to_string()/>
                                                <input type="hidden" name="disabled" value=(!u.disabled).to_string()/>
                                                <button type="submit" class="link">{if u.disabled { "Enable" } else { "Disable" }}</button>
                                            </ActionForm>
                                        </td>
                                    </tr>
                                }).collect_view()}
                                </tbody>
                            </table></div>
                        }.into_any(),
                    })}
                </Suspense>
            </section>
            <section class="card">
                <h2>"Create an account"</h2>
                <ActionForm action=create node_ref=crate::ui::cleared_on_success(create) attr:class="stack" attr:id="create-user">
                    <FormError error=err/>
                    {move || created().map(|u| view! { <p class="success">"Created "{u.email}". Share the password with them privately."</p> })}
                    <label>"Email" <input type="email" name="email" required/></label>
                    <FieldMessage error=err field="email"/>
                    <label>"Name" <input name="display_name" required/></label>
                    <FieldMessage error=err field="display_name"/>
                    <label>"Initial password (at least 12 characters)" <input type="password" name="password" autocomplete="new-password" required minlength="12"/></label>
                    <FieldMessage error=err field="password"/>
                    <label class="check"><input type="checkbox" name="is_site_admin"/>" Site administrator"</label>
                    <button type="submit" disabled=move || create.pending().get()>"Create account"</button>
                </ActionForm>
            </section>
        </div>
    }
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::{NewUserRequest, User, UserUpdate};
    use crate::accounts::ssr::{NewUser, create_user};
    use crate::audit::ssr::NewEvent;
    use crate::error::AppError;
    use crate::page::{self, Page};
    use crate::roles::{SiteAction, authorize_site};
    use crate::state::Ctx;

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
}
