//! Wire types of accounts: the signed-in user and the site admins' view of
//! users; [`CurrentUser`] is how pages inside the layout read the caller.

use crate::kernel::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The signed-in user, as the UI and `GET /api/v1/me` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Me {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub is_site_admin: bool,
    /// Set when this request was authenticated with an API token.
    pub token_id: Option<Uuid>,
}

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
    #[cfg_attr(
        feature = "ssr",
        schema(max_length = 254, pattern = r"^[^\s@\x00-\x1F\x7F-\x9F]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")
    )]
    pub email: String,
    #[cfg_attr(
        feature = "ssr",
        schema(pattern = r"^[^\s\x00-\x1F\x7F-\x9F](?:[^\x00-\x1F\x7F-\x9F]{0,98}[^\s\x00-\x1F\x7F-\x9F])?$")
    )]
    pub display_name: String,
    /// At least 12 characters; share it with the user, who can change it on the Account page.
    #[cfg_attr(
        feature = "ssr",
        schema(min_length = 12, max_length = 1024, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")
    )]
    pub password: String,
    #[serde(default)]
    pub is_site_admin: bool,
}

/// The signed-in user (`None` for visitors), as a load every page inside the
/// layout can read (inside a `Suspense`).
#[derive(Debug, Clone, Copy)]
pub struct CurrentUser(pub Resource<Result<Option<Me>, AppError>>);
