//! Server functions of API tokens.

use crate::kernel::error::AppError;
use crate::kernel::page::Page;
use crate::tokens::types::{ApiToken, CreatedToken};
use leptos::prelude::*;
use uuid::Uuid;

#[server(prefix = "/rpc", endpoint = "list_tokens", output = crate::kernel::codec::Json)]
pub async fn list_tokens(cursor: Option<String>, limit: Option<i64>) -> Result<Page<ApiToken>, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::tokens::domain::list(&ctx, cursor.as_deref(), limit).await)
}

/// Creates a token; `expires_in_days` empty or 0 means no expiry.
#[server(prefix = "/rpc", endpoint = "create_token", output = crate::kernel::codec::Json)]
pub async fn create_token(name: String, expires_in_days: Option<String>) -> Result<CreatedToken, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let result = async {
        let expires_at = match expires_in_days.as_deref().map(str::trim).filter(|s| !s.is_empty() && *s != "0") {
            None => None,
            Some(days) => {
                let days: i64 =
                    days.parse().ok().filter(|d| (1..=3650).contains(d)).ok_or_else(|| {
                        AppError::field("expires_in_days", "Use a whole number of days from 1 to 3650.")
                    })?;
                Some(time::OffsetDateTime::now_utc() + time::Duration::days(days))
            }
        };
        crate::tokens::domain::create(&ctx, &name, expires_at).await
    }
    .await;
    crate::kernel::context::finish(result)
}

#[server(prefix = "/rpc", endpoint = "revoke_token", output = crate::kernel::codec::Json)]
pub async fn revoke_token(token_id: Uuid) -> Result<(), AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::tokens::domain::revoke(&ctx, token_id).await)
}
