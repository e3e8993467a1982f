//! Wire types of webhooks, shared by the server and the browser.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The event types an endpoint can subscribe to: the audit log's actions of
/// a team (and `*` for all of them).
pub const EVENT_TYPES: &[&str] = &[
    "*",
    "change_request.opened",
    "change_request.edited",
    "change_request.approved",
    "change_request.rejected",
    "change_request.withdrawn",
    "change_request.applied",
    "change_request.failed",
    "change_request.expired",
    "change_request.stale",
    "approval_policies.updated",
    "training_job.launched",
    "training_job.stop_requested",
    "training_job.completed",
    "training_job.failed",
    "training_job.stopped",
    "dataset.created",
    "dataset.updated",
    "dataset.archived",
    "dataset_version.created",
    "dataset_version.deleted",
    "dataset_version.uploaded",
    "dataset_version.verified",
    "model.created",
    "model.updated",
    "model.renamed",
    "model.archived",
    "model.deleted",
    "model.imported",
    "model_version.registered",
    "model_version.updated",
    "model_version.status_changed",
    "model_version.card_updated",
    "model_version.deleted",
    "model_alias.set",
    "model_alias.deleted",
    "model_alias.protected",
    "model_alias.unprotected",
    "endpoint.created",
    "endpoint.updated",
    "endpoint.weights_changed",
    "endpoint.sample_traffic",
    "endpoint.deleted",
    "endpoint.in_service",
    "endpoint.failed",
    "endpoint.invoke_key_created",
    "endpoint.invoke_key_revoked",
    "endpoint.experiment_set",
    "endpoint.rollout_started",
    "endpoint.rollout_stepped",
    "endpoint.rollout_promoted",
    "endpoint.rollout_paused",
    "endpoint.rollout_resumed",
    "endpoint.rollout_completed",
    "endpoint.rollout_rolled_back",
    "endpoint.rollout_aborted",
    "endpoint.bandit_set",
    "endpoint.bandit_stopped",
    "endpoint.fault_set",
    "endpoint.health_set",
    "endpoint.health_low",
    "endpoint.health_recovered",
    "budget.set",
    "budget.removed",
    "budget.crossed",
    "webhook.created",
    "webhook.updated",
    "webhook.deleted",
];

/// An endpoint (its secret is shown once, when created).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Webhook {
    pub id: Uuid,
    /// Team slug.
    pub team: String,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub active: bool,
    /// Why Capstan disabled it (deliveries failed for 24 hours).
    pub disabled_reason: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>, format = DateTime))]
    pub failing_since: Option<time::OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub created_at: time::OffsetDateTime,
}

/// A new endpoint, with its signing secret: shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CreatedWebhook {
    pub webhook: Webhook,
    /// `whsec_…`: verify deliveries with it (any Standard Webhooks library).
    pub secret: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// https (http only in local mode), at most 2048 characters.
    #[cfg_attr(feature = "ssr", schema(min_length = 1, max_length = 2048))]
    pub url: String,
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 500))]
    pub description: String,
    /// Event types (see the list in the README), or `*`.
    #[cfg_attr(feature = "ssr", schema(min_items = 1, max_items = 50))]
    pub event_types: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WebhookUpdate {
    #[cfg_attr(feature = "ssr", schema(min_length = 1, max_length = 2048))]
    pub url: Option<String>,
    #[cfg_attr(feature = "ssr", schema(max_length = 500))]
    pub description: Option<String>,
    #[cfg_attr(feature = "ssr", schema(min_items = 1, max_items = 50))]
    pub event_types: Option<Vec<String>>,
    /// Re-enables a disabled endpoint (or pauses one).
    pub active: Option<bool>,
}

/// One event sent to one endpoint, with its latest attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Delivery {
    pub id: Uuid,
    /// The `webhook-id` header: the same on every attempt.
    pub message_id: String,
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: i32,
    pub status_code: Option<i32>,
    pub latency_ms: Option<i32>,
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>, format = DateTime))]
    pub next_attempt_at: Option<time::OffsetDateTime>,
}

/// The `webhook-id` of a delivery.
pub fn message_id(delivery: Uuid) -> String {
    format!("msg_{}", delivery.simple())
}
