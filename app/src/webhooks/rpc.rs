//! Server functions of webhooks (team admins).

use crate::kernel::error::AppError;
use crate::kernel::page::Page;
use crate::webhooks::types::{CreatedWebhook, Delivery, Webhook};
use leptos::prelude::*;
use uuid::Uuid;

#[server(prefix = "/rpc", endpoint = "list_webhooks", output = crate::kernel::codec::Json)]
pub async fn list_webhooks(team: String) -> Result<Vec<Webhook>, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::webhooks::domain::list(&ctx, &team).await)
}

/// Adds an endpoint; `event_types` comma or space separated (`*` for all).
#[server(prefix = "/rpc", endpoint = "create_webhook", output = crate::kernel::codec::Json)]
pub async fn create_webhook(
    team: String,
    url: String,
    description: String,
    event_types: String,
) -> Result<CreatedWebhook, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let event_types =
        event_types.split([',', ' ', '\n']).map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect();
    let input = crate::webhooks::types::NewWebhook { url, description, event_types };
    crate::kernel::context::finish(crate::webhooks::domain::create(&ctx, &team, input).await)
}

#[server(prefix = "/rpc", endpoint = "set_webhook_active", output = crate::kernel::codec::Json)]
pub async fn set_webhook_active(id: Uuid, active: bool) -> Result<Webhook, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let input = crate::webhooks::types::WebhookUpdate { active: Some(active), ..Default::default() };
    crate::kernel::context::finish(crate::webhooks::domain::update(&ctx, id, input).await)
}

#[server(prefix = "/rpc", endpoint = "get_webhook", output = crate::kernel::codec::Json)]
pub async fn get_webhook(id: Uuid) -> Result<Webhook, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::webhooks::domain::get(&ctx, id).await)
}

#[server(prefix = "/rpc", endpoint = "webhook_deliveries", output = crate::kernel::codec::Json)]
pub async fn webhook_deliveries(id: Uuid, cursor: Option<String>) -> Result<Page<Delivery>, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::webhooks::domain::deliveries(&ctx, id, cursor.as_deref(), None).await)
}

#[server(prefix = "/rpc", endpoint = "redeliver_webhook", output = crate::kernel::codec::Json)]
pub async fn redeliver_webhook(delivery: Uuid) -> Result<Delivery, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::webhooks::domain::redeliver(&ctx, delivery).await)
}
