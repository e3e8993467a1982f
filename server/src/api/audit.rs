//! `GET /api/v1/audit-events`: the audit log, filtered and paginated.

use super::ApiQuery;
use app::audit::domain;
use app::audit::types::{AuditEvent, AuditQuery};
use app::kernel::context::Ctx;
use app::kernel::error::AppError;
use app::kernel::error::ssr::Problem;
use app::kernel::page::Page;
use app::kernel::state::AppState;
use axum::Json;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// Audit events visible to the caller, newest first: site admins see all,
/// others the events of their teams and their own actions.
#[utoipa::path(get, path = "/audit-events", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Page<AuditEvent>), (status = 400, body = Problem), (status = 404, body = Problem),
              (status = 422, body = Problem)))]
async fn list(ctx: Ctx, ApiQuery(q): ApiQuery<AuditQuery>) -> Result<Json<Page<AuditEvent>>, AppError> {
    Ok(Json(domain::list(&ctx, q).await?))
}
