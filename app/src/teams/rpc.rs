//! Server functions of teams and members.

use crate::kernel::error::AppError;
use crate::kernel::page::Page;
use crate::teams::types::{Member, Team};
#[cfg(feature = "ssr")]
use crate::teams::types::{NewMember, NewTeam, RoleChange, TeamUpdate};
use leptos::prelude::*;
use uuid::Uuid;

#[server(prefix = "/rpc", endpoint = "list_teams", output = crate::kernel::codec::Json)]
pub async fn list_teams(cursor: Option<String>, limit: Option<i64>) -> Result<Page<Team>, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::teams::domain::list(&ctx, cursor.as_deref(), limit).await)
}

#[server(prefix = "/rpc", endpoint = "create_team", output = crate::kernel::codec::Json)]
pub async fn create_team(slug: String, name: String) -> Result<Team, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::teams::domain::create(&ctx, NewTeam { slug, name }).await)
}

#[server(prefix = "/rpc", endpoint = "get_team", output = crate::kernel::codec::Json)]
pub async fn get_team(team: String) -> Result<Team, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::teams::domain::get(&ctx, &team).await)
}

#[server(prefix = "/rpc", endpoint = "update_team", output = crate::kernel::codec::Json)]
/// `allowed_sources` is one location per line (a form's text area).
pub async fn update_team(
    team: String,
    name: Option<String>,
    sagemaker_role_arn: Option<String>,
    allowed_sources: Option<String>,
    allowed_role_arns: Option<String>,
) -> Result<Team, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let lines = |text: String| text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect();
    let input = TeamUpdate {
        name,
        sagemaker_role_arn,
        allowed_sources: allowed_sources.map(lines),
        allowed_role_arns: allowed_role_arns.map(lines),
    };
    crate::kernel::context::finish(crate::teams::domain::update(&ctx, &team, input).await)
}

#[server(prefix = "/rpc", endpoint = "list_members", output = crate::kernel::codec::Json)]
pub async fn list_members(team: String, cursor: Option<String>, limit: Option<i64>) -> Result<Page<Member>, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::teams::domain::list_members(&ctx, &team, cursor.as_deref(), limit).await)
}

#[server(prefix = "/rpc", endpoint = "add_member", output = crate::kernel::codec::Json)]
pub async fn add_member(team: String, email: String, role: String) -> Result<Member, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::teams::domain::add_member(&ctx, &team, NewMember { email, role }).await)
}

#[server(prefix = "/rpc", endpoint = "change_member_role", output = crate::kernel::codec::Json)]
pub async fn change_member_role(team: String, user_id: Uuid, role: String) -> Result<Member, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::teams::domain::change_role(&ctx, &team, user_id, RoleChange { role }).await)
}

#[server(prefix = "/rpc", endpoint = "remove_member", output = crate::kernel::codec::Json)]
pub async fn remove_member(team: String, user_id: Uuid) -> Result<(), AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::teams::domain::remove_member(&ctx, &team, user_id).await)
}
