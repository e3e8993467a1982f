//! Server functions of the audit log.

use crate::audit::types::{AuditEvent, AuditQuery};
use crate::kernel::error::AppError;
use crate::kernel::page::Page;
use leptos::prelude::*;

/// Lists audit events visible to the caller, newest first.
#[server(prefix = "/rpc", endpoint = "list_audit_events", output = crate::kernel::codec::Json)]
pub async fn list_audit_events(query: AuditQuery) -> Result<Page<AuditEvent>, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::audit::domain::list(&ctx, query).await)
}
