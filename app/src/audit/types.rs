//! Wire types of the audit log: one recorded event and the list's filters.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One recorded mutation, as shown to users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, sqlx::FromRow))]
pub struct AuditEvent {
    pub id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub occurred_at: time::OffsetDateTime,
    /// Who acted: an email, or the attempted email for failed logins.
    pub actor: String,
    pub actor_user_id: Option<Uuid>,
    /// Set when the actor used an API token.
    pub actor_token_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub team_slug: Option<String>,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    /// Before/after summary of the change.
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub summary: serde_json::Value,
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
}

/// A time filter as the document states it: empty (no filter), a date, or
/// an RFC 3339 time.
#[cfg(feature = "ssr")]
fn time_filter() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
    let string = || ObjectBuilder::new().schema_type(Type::String);
    AnyOfBuilder::new()
        .item(string().max_length(Some(0)))
        .item(string().format(Some(SchemaFormat::KnownFormat(KnownFormat::Date))))
        .item(string().format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))))
        .build()
        .into()
}

/// Filters for the audit list; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
pub struct AuditQuery {
    /// Team slug.
    pub team: Option<String>,
    /// Actor email.
    pub actor: Option<String>,
    /// Exact action, e.g. `team.member_added`.
    pub action: Option<String>,
    /// Earliest time, inclusive: an RFC 3339 time, or a date (its start).
    #[cfg_attr(feature = "ssr", param(schema_with = time_filter))]
    pub from: Option<String>,
    /// Latest time, exclusive: an RFC 3339 time, or a date (up to its end).
    #[cfg_attr(feature = "ssr", param(schema_with = time_filter))]
    pub to: Option<String>,
    pub cursor: Option<String>,
    #[cfg_attr(feature = "ssr", param(minimum = 1, maximum = 200))]
    pub limit: Option<i64>,
}
