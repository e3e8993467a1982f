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
    /// Alias → the number of the version it names.
    #[serde(default)]
    pub aliases: BTreeMap<String, i32>,
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

/// Registers a version either from a completed training job of the model's
/// team (its artifact, image, entry point, hyperparameters, final metrics and
/// input dataset versions are taken from the job) or from an artifact that
/// already exists in S3 (a `model.tar.gz` or a folder), with the image,
/// parameters and metrics given here. Give exactly one of `training_job_id`
/// and `artifact_uri`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewModelVersion {
    #[serde(default)]
    pub training_job_id: Option<Uuid>,
    /// `s3://bucket/key/model.tar.gz` or `s3://bucket/folder/`, in the team's
    /// area of Capstan's bucket or a location a site admin allowed for it.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 1024))]
    pub artifact_uri: Option<String>,
    /// The inference image (an ECR URI), for an artifact.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 255))]
    pub image: Option<String>,
    /// The framework the artifact was made with (`sklearn`, `pytorch` …), for an artifact.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 64))]
    pub framework: Option<String>,
    /// Parameters the artifact was trained with, for an artifact.
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    /// Final metrics of the artifact (finite numbers), for an artifact.
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 2000))]
    pub description: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// Searches the team's versions: `filter` in the registry's filter language
/// (`metrics.auc > 0.9 and params.C = '1.0'`), `order_by` a metric, the
/// creation time or the number, ascending or descending.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
pub struct VersionSearch {
    /// `metrics.<name>`, `params.<name>`, `tags.<key>`, `status`, `created_at`,
    /// `number`, `model`, `source`, `artifact_uri`, `run_id`, compared with
    /// `= != < <= > >= like ilike`, joined by `and`, `or` and parentheses.
    #[cfg_attr(feature = "ssr", param(max_length = 4000))]
    pub filter: Option<String>,
    /// `metrics.<name>`, `created_at` or `number`, then `asc` or `desc`
    /// (default `created_at desc`).
    #[cfg_attr(feature = "ssr", param(max_length = 300))]
    pub order_by: Option<String>,
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

/// The change request that carried a change, as the audit log tells it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RequestRef {
    pub id: Uuid,
    pub title: String,
    /// Email of who asked.
    pub author: String,
    /// Emails of the approvals that counted (those after its last edit).
    pub approvers: Vec<String>,
}

/// One change of a registry target (an alias, a model version), read from
/// the team's audit log: what changed, who made it, when it was applied,
/// and the change request that carried it, if one did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TargetChange {
    /// The audit event's id.
    pub id: Uuid,
    /// The audit action, e.g. `model_alias.set`, `model_version.status_changed`.
    pub action: String,
    /// The change in words, e.g. `champion: v3 → v5`.
    pub what: String,
    /// Who made it: an email, or `capstan` for the system.
    pub by: String,
    pub reason: Option<String>,
    pub request: Option<RequestRef>,
    /// When it was applied.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub at: time::OffsetDateTime,
}

/// What a node of a lineage graph stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LineageKind {
    DatasetVersion,
    TrainingJob,
    Artifact,
    ModelVersion,
    /// An endpoint's variant serving the version.
    Endpoint,
}

/// One thing a model version came from (or the version itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LineageNode {
    /// `<kind>:<id>`, unique in the graph
    pub id: String,
    pub kind: LineageKind,
    /// What people call it: `churn v2`, `churn-lr`, `churn v1 (model)`
    pub label: String,
    /// A second line: a status, a location
    pub detail: String,
    /// Its page in Capstan, if it has one
    pub url: Option<String>,
}

/// `from` went into `to`; `label` says how (a channel name, `trained`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LineageEdge {
    pub from: String,
    pub to: String,
    pub label: String,
}

/// Where a model version came from and where it serves: dataset versions →
/// training job → model version (or artifact → model version) → the
/// endpoints' variants that serve it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Lineage {
    pub nodes: Vec<LineageNode>,
    pub edges: Vec<LineageEdge>,
}

/// 2 to 5 versions side by side: the versions in the order asked, which one
/// has the best value of each metric, the metric series of their training
/// jobs (for overlaid charts) and their lineage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Comparison {
    pub versions: Vec<ModelVersion>,
    /// metric name → the version with the best value (highest, or lowest
    /// for the names in `lower_is_better`)
    pub best: BTreeMap<String, Uuid>,
    /// metrics where lower is better: losses, errors, latencies
    pub lower_is_better: Vec<String>,
    /// each version's training-job metric series, in `versions` order
    /// (empty for a version registered from an artifact)
    pub series: Vec<Vec<crate::training::types::MetricSeries>>,
    /// each version's lineage, in `versions` order
    pub lineages: Vec<Lineage>,
}

/// Whether lower values of metric `name` are better (losses, errors,
/// latencies); higher is better otherwise.
pub fn lower_is_better(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("loss")
        || n.contains("error")
        || n.split(|c: char| !c.is_ascii_alphanumeric()).any(|part| {
            ["err", "rmse", "mse", "mae", "mape", "latency", "perplexity", "wer", "cost", "p50", "p90", "p99"]
                .contains(&part)
        })
}

/// The most a model card may hold, in characters (256 Ki).
pub const CARD_MAX_CHARS: usize = 256 * 1024;

/// What a new model card starts from.
pub const CARD_TEMPLATE: &str = "## Intended use\n\nWhat the model predicts, for whom, and the decisions it supports.\n\n\
## Limitations\n\nWhere it is known to fail: data it has not seen, populations it underserves, drift to watch.\n\n\
## Evaluation\n\nThe data it was evaluated on, the metrics, and how they compare with the baseline.\n\n\
## Ethical considerations\n\nRisks of harm, fairness checks done, and who to ask before using it elsewhere.\n";

/// One named, typed column of a signature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SignatureField {
    #[cfg_attr(feature = "ssr", schema(min_length = 1, max_length = 250))]
    pub name: String,
    /// `double`, `long`, `string`, `boolean`, a tensor type …
    #[serde(rename = "type")]
    #[cfg_attr(feature = "ssr", schema(pattern = r"^[A-Za-z0-9_\-\[\](), ]{1,64}$"))]
    pub kind: String,
    #[serde(default)]
    pub optional: bool,
}

/// What a version takes in and gives out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Signature {
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_items = 250))]
    pub inputs: Vec<SignatureField>,
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_items = 250))]
    pub outputs: Vec<SignatureField>,
}

/// A version's model card: its markdown, the same rendered safely (no
/// script, no raw HTML, no remote images), and its signature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ModelCard {
    pub markdown: String,
    pub html: String,
    pub signature: Option<Signature>,
    pub updated_by: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>, format = DateTime))]
    pub updated_at: Option<time::OffsetDateTime>,
}

/// A new model card: markdown of at most 256 Ki characters, and optionally a signature.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CardUpdate {
    #[cfg_attr(feature = "ssr", schema(max_length = 262144))]
    pub markdown: String,
    #[serde(default)]
    pub signature: Option<Signature>,
}

/// Where SageMaker's copy of a version stands (AWS mode): its Model Package
/// in the model's Model Package Group, and whether the last status change
/// reached it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PackageSync {
    /// The Model Package Group of the version's model.
    pub group: String,
    /// The version's Model Package, once created.
    pub package_arn: Option<String>,
    /// The approval status SageMaker holds (an archived version is `Rejected` there).
    pub synced_status: Option<ModelVersionStatus>,
    /// A creation or status change has not reached SageMaker yet.
    pub pending: bool,
    /// Why the last attempt failed; it is retried with a growing delay.
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>, format = DateTime))]
    pub synced_at: Option<time::OffsetDateTime>,
}

/// A Model Package Group of the AWS account, as the import list shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PackageGroup {
    pub name: String,
    pub arn: String,
    pub description: Option<String>,
    /// The Capstan model that already mirrors it (`team/model`), if any.
    pub model: Option<String>,
}

/// Which Model Package Group to import into a team, as which model.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ImportGroup {
    #[cfg_attr(feature = "ssr", schema(min_length = 1, max_length = 63))]
    pub group: String,
    /// The model's name; the group's name when left out.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"))]
    pub name: Option<String>,
}

/// What an import made: the model, its versions (one per package, oldest
/// first) and the packages left out, each with the reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Imported {
    pub model: Model,
    pub versions: i32,
    pub skipped: Vec<String>,
}
