//! Wire types of the model registry (models and their versions), shared by
//! the server and the browser.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// A model: a team's named line of versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Model {
    pub id: Uuid,
    /// Team slug.
    pub team: String,
    pub name: String,
    pub description: String,
    pub tags: BTreeMap<String, String>,
    /// Email of the creator.
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>, format = DateTime))]
    pub archived_at: Option<time::OffsetDateTime>,
    pub version_count: i64,
    /// The newest version's number.
    pub latest_version: Option<i32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewModel {
    /// 1-128 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit; unique in the team.
    #[cfg_attr(feature = "ssr", schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"))]
    pub name: String,
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 2000))]
    pub description: String,
    /// Key → value, at most 20.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// Fields to change; omitted fields stay as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ModelUpdate {
    #[cfg_attr(feature = "ssr", schema(max_length = 2000))]
    pub description: Option<String>,
    /// Replaces the tags (at most 20).
    pub tags: Option<BTreeMap<String, String>>,
}

/// Filters for a team's model list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
pub struct ModelQuery {
    /// Names containing this text (case-insensitive).
    pub q: Option<String>,
    /// Only models with this tag, as `key` or `key=value`.
    pub tag: Option<String>,
    /// Include archived models.
    #[serde(default)]
    pub archived: bool,
    pub cursor: Option<String>,
    #[cfg_attr(feature = "ssr", param(minimum = 1, maximum = 200))]
    pub limit: Option<i64>,
}

/// Where a version stands, as SageMaker's `ModelApprovalStatus` names it, plus `Archived`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, sqlx::Type))]
#[cfg_attr(feature = "ssr", sqlx(type_name = "model_version_status"))]
pub enum ModelVersionStatus {
    PendingManualApproval,
    Approved,
    Rejected,
    Archived,
}

impl ModelVersionStatus {
    /// Whether a version may move from `self` to `to`: a pending version is
    /// approved or rejected, a decision can be reversed, and any version can
    /// be archived; an archived version stays archived.
    pub fn may_become(self, to: Self) -> bool {
        use ModelVersionStatus::*;
        matches!((self, to), (PendingManualApproval, Approved | Rejected) | (Approved, Rejected) | (Rejected, Approved))
            || (self != Archived && to == Archived)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingManualApproval => "PendingManualApproval",
            Self::Approved => "Approved",
            Self::Rejected => "Rejected",
            Self::Archived => "Archived",
        }
    }
}

/// One immutable version of a model: what it is made of never changes;
/// description, tags and status do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ModelVersion {
    pub id: Uuid,
    pub model_id: Uuid,
    /// The model's name.
    pub model: String,
    /// Team slug.
    pub team: String,
    /// 1, 2, 3… per model.
    pub number: i32,
    pub status: ModelVersionStatus,
    /// `training_job` or `artifact`.
    pub source: String,
    /// `s3://…/model.tar.gz` (or a folder).
    pub artifact_uri: String,
    pub image: Option<String>,
    pub framework: Option<String>,
    pub entry_point: Option<String>,
    /// The hyperparameters it was trained with.
    pub parameters: BTreeMap<String, String>,
    /// Final metrics.
    pub metrics: BTreeMap<String, f64>,
    /// The training job it came from.
    pub training_job_id: Option<Uuid>,
    /// The dataset versions its training job read (lineage).
    pub dataset_versions: Vec<Uuid>,
    pub description: String,
    pub tags: BTreeMap<String, String>,
    /// Email of who registered it.
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub created_at: time::OffsetDateTime,
}

/// Registers a version from a completed training job of the model's team:
/// its artifact, image, entry point, hyperparameters, final metrics and
/// input dataset versions are taken from the job.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewModelVersion {
    pub training_job_id: Uuid,
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 2000))]
    pub description: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// Pages through a model's versions, newest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
pub struct ModelVersionQuery {
    pub cursor: Option<String>,
    #[cfg_attr(feature = "ssr", param(minimum = 1, maximum = 200))]
    pub limit: Option<i64>,
}

/// Fields of a version to change; omitted fields stay as they are. What the
/// version is made of cannot change.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ModelVersionUpdate {
    #[cfg_attr(feature = "ssr", schema(max_length = 2000))]
    pub description: Option<String>,
    /// Replaces the tags (at most 20).
    pub tags: Option<BTreeMap<String, String>>,
}

/// A new status for a version (approvers and up).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    pub status: ModelVersionStatus,
    /// Why, kept in the audit log.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 2000))]
    pub reason: String,
}

/// An alias of a model and the version it names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Alias {
    pub alias: String,
    pub version_id: Uuid,
    /// The version's number.
    pub number: i32,
    /// A protected alias is moved or deleted only through a change request.
    pub protected: bool,
    /// Email of who set it last.
    pub updated_by: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub updated_at: time::OffsetDateTime,
}

/// Points an alias at a version of the same model (members and up; not a protected alias).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetAlias {
    pub version_id: Uuid,
    /// Why, kept in the alias history.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 2000))]
    pub reason: String,
}

/// One change of an alias: set (`from` empty), moved, or deleted (`to` empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AliasChange {
    pub id: Uuid,
    pub alias: String,
    pub from_version: Option<Uuid>,
    pub from_number: Option<i32>,
    pub to_version: Option<Uuid>,
    pub to_number: Option<i32>,
    pub reason: String,
    /// Email of who changed it.
    pub changed_by: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub changed_at: time::OffsetDateTime,
}
