//! Wire types of teams and members.

use crate::kernel::roles::Role;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Team {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub created_at: time::OffsetDateTime,
    /// The caller's role; `None` for a site admin who is not a member.
    pub my_role: Option<Role>,
    /// IAM role this team's SageMaker jobs run as, overriding the site's
    /// `CAPSTAN_SAGEMAKER_ROLE_ARN`; `None` uses the site's. Set by site admins.
    pub sagemaker_role_arn: Option<String>,
    /// Locations outside Capstan's bucket (`s3://bucket/prefix/`) the team may
    /// name; everything else outside the bucket is refused. Set by site admins.
    pub allowed_sources: Vec<String>,
    /// IAM roles besides the team's own that its launches may name in
    /// `role_arn`. Set by site admins.
    pub allowed_role_arns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Member {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub joined_at: time::OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewTeam {
    /// `[a-z0-9-]{2,40}`, unique on this site.
    #[cfg_attr(feature = "ssr", schema(pattern = r"^[a-z0-9-]{2,40}$"))]
    pub slug: String,
    #[cfg_attr(
        feature = "ssr",
        schema(pattern = r"^[^\s\x00-\x1F\x7F-\x9F](?:[^\x00-\x1F\x7F-\x9F]{0,98}[^\s\x00-\x1F\x7F-\x9F])?$")
    )]
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TeamUpdate {
    /// New display name; absent keeps it.
    #[serde(default)]
    #[cfg_attr(
        feature = "ssr",
        schema(pattern = r"^[^\s\x00-\x1F\x7F-\x9F](?:[^\x00-\x1F\x7F-\x9F]{0,98}[^\s\x00-\x1F\x7F-\x9F])?$")
    )]
    pub name: Option<String>,
    /// IAM role ARN for this team's SageMaker jobs; an empty string clears
    /// the override (jobs then use the site's role); absent keeps it. Only
    /// site admins may change it (403 for others).
    #[serde(default)]
    pub sagemaker_role_arn: Option<String>,
    /// Replaces the team's allowed locations outside Capstan's bucket (each
    /// `s3://bucket/prefix/`); absent keeps them. Site admins only.
    #[serde(default)]
    pub allowed_sources: Option<Vec<String>>,
    /// Replaces the IAM roles besides the team's own that launches may name;
    /// absent keeps them. Site admins only.
    #[serde(default)]
    pub allowed_role_arns: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    #[cfg_attr(
        feature = "ssr",
        schema(max_length = 254, pattern = r"^[^\s@\x00-\x1F\x7F-\x9F]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")
    )]
    pub email: String,
    /// viewer, member, approver or admin.
    #[cfg_attr(feature = "ssr", schema(pattern = r"^(viewer|member|approver|admin)$"))]
    pub role: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    #[cfg_attr(feature = "ssr", schema(pattern = r"^(viewer|member|approver|admin)$"))]
    pub role: String,
}
