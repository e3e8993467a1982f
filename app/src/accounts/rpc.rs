//! Server functions of accounts: who am I, sign-in and sign-out, setup,
//! password changes, and the site admins' user management.

use crate::accounts::types::{Me, User};
#[cfg(feature = "ssr")]
use crate::accounts::types::{NewUserRequest, UserUpdate};
use crate::kernel::error::AppError;
use crate::kernel::page::Page;
use leptos::prelude::*;
use uuid::Uuid;

/// The current user, or `None` when nobody is signed in.
#[server(prefix = "/rpc", endpoint = "get_me", output = crate::kernel::codec::Json)]
pub async fn get_me() -> Result<Option<Me>, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    Ok(ctx.actor.as_ref().map(crate::accounts::domain::me))
}

/// Whether the first-run setup is still open (no user exists yet).
#[server(prefix = "/rpc", endpoint = "setup_open", output = crate::kernel::codec::Json)]
pub async fn setup_open() -> Result<bool, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    Ok(ctx.state.setup_token.lock().map(|t| t.is_some()).unwrap_or(false))
}

#[server(prefix = "/rpc", endpoint = "login", output = crate::kernel::codec::Json)]
pub async fn login(email: String, password: String) -> Result<(), AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let session = crate::kernel::context::server_session()?;
    let result = crate::accounts::domain::login(&ctx, &session, &email, &password).await;
    if result.is_ok() {
        leptos_axum::redirect("/");
    }
    crate::kernel::context::finish(result)
}

#[server(prefix = "/rpc", endpoint = "logout", output = crate::kernel::codec::Json)]
pub async fn logout() -> Result<(), AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let session = crate::kernel::context::server_session()?;
    let result = crate::accounts::domain::logout(&ctx, &session).await;
    if result.is_ok() {
        leptos_axum::redirect("/login");
    }
    crate::kernel::context::finish(result)
}

/// Creates the first (site admin) account with the token printed at start-up.
#[server(prefix = "/rpc", endpoint = "setup", output = crate::kernel::codec::Json)]
pub async fn setup(token: String, email: String, display_name: String, password: String) -> Result<(), AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let session = crate::kernel::context::server_session()?;
    let result = crate::accounts::domain::setup(&ctx, &session, &token, &email, &display_name, &password).await;
    if result.is_ok() {
        leptos_axum::redirect("/");
    }
    crate::kernel::context::finish(result)
}

#[server(prefix = "/rpc", endpoint = "change_password", output = crate::kernel::codec::Json)]
pub async fn change_password(current_password: String, new_password: String) -> Result<(), AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let session = crate::kernel::context::server_session()?;
    crate::kernel::context::finish(
        crate::accounts::domain::change_password(&ctx, &session, &current_password, &new_password).await,
    )
}

/// Ends all of the caller's browser sessions, this one included.
#[server(prefix = "/rpc", endpoint = "sign_out_everywhere", output = crate::kernel::codec::Json)]
pub async fn sign_out_everywhere() -> Result<(), AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let session = crate::kernel::context::server_session()?;
    let result = crate::accounts::domain::sign_out_everywhere(&ctx, &session).await;
    if result.is_ok() {
        leptos_axum::redirect("/login");
    }
    crate::kernel::context::finish(result)
}

#[server(prefix = "/rpc", endpoint = "list_users", output = crate::kernel::codec::Json)]
pub async fn list_users(cursor: Option<String>, limit: Option<i64>) -> Result<Page<User>, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::accounts::users::list(&ctx, cursor.as_deref(), limit).await)
}

/// `is_site_admin` is a checkbox: present ("on") means yes.
#[server(prefix = "/rpc", endpoint = "create_user", output = crate::kernel::codec::Json)]
pub async fn create_user(
    email: String,
    display_name: String,
    password: String,
    is_site_admin: Option<String>,
) -> Result<User, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let input = NewUserRequest { email, display_name, password, is_site_admin: is_site_admin.is_some() };
    crate::kernel::context::finish(crate::accounts::users::create(&ctx, input).await)
}

/// `disabled` is "true" or "false" (a form's hidden field).
#[server(prefix = "/rpc", endpoint = "set_user_disabled", output = crate::kernel::codec::Json)]
pub async fn set_user_disabled(user_id: Uuid, disabled: String) -> Result<User, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let result = async {
        let disabled = disabled.parse().map_err(|_| AppError::field("disabled", "Use true or false."))?;
        crate::accounts::users::update(&ctx, user_id, UserUpdate { disabled }).await
    }
    .await;
    crate::kernel::context::finish(result)
}
