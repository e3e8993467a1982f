//! Wire types of endpoints, shared by the server and the browser.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// At most this many production variants on one endpoint (SageMaker's limit).
pub const MAX_VARIANTS: usize = 10;

/// An endpoint with its variants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Endpoint {
    pub id: Uuid,
    /// Team slug.
    pub team: String,
    pub name: String,
    /// The name SageMaker Runtime clients use (`EndpointName`): unique on
    /// the site, `<team>-<name>`; the gateway serves
    /// `POST /endpoints/{engine_name}/invocations`.
    pub engine_name: String,
    /// `local` or `sagemaker`.
    pub backend: String,
    /// `Creating`, `InService`, `Updating`, `RollingBack`, `Failed` or `Deleting`.
    pub status: String,
    pub failure_reason: Option<String>,
    /// Production variants, in the order given.
    pub variants: Vec<Variant>,
    pub shadow: Option<Variant>,
    /// Data capture sampling percentage, if on.
    pub capture_percent: Option<i32>,
    /// AWS mode: how SageMaker replaces the fleet for the last update, when
    /// the update asked for a blue/green deployment.
    #[serde(default)]
    pub deployment: Option<FleetDeployment>,
    /// The changes of it (`endpoint.update`, `endpoint.delete`,
    /// `endpoint.weights`, `endpoint.rollout`, `endpoint.bandit`) that the
    /// team's approval policy sends through a change request.
    #[serde(default)]
    pub needs_request: Vec<String>,
    /// What it costs: instance-hours × the price table.
    pub cost: EndpointCost,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub updated_at: time::OffsetDateTime,
}

/// A variant: one model version on its own instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Variant {
    pub name: String,
    pub version_id: Uuid,
    pub model_id: Uuid,
    pub model: String,
    pub version: i32,
    pub instance_type: String,
    pub instance_count: i32,
    pub weight: f64,
    /// weight / sum of the production weights (0 for the shadow).
    pub share: f64,
    /// The shadow's sampling percentage.
    pub shadow_percent: Option<i32>,
    /// What it costs per hour now (instance count × price); none when its
    /// instance type has no price.
    pub usd_per_hour: Option<f64>,
    /// What it cost this month (UTC), under this name.
    pub month_usd: f64,
    /// Local mode: its processes.
    pub instances: Vec<Instance>,
    /// Fault injection: the share (%) of its invocations the gateway
    /// answers with a model error instead of calling it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_percent: Option<i32>,
}

/// An endpoint's cost (USD): instance-hours of its variants × their prices.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct EndpointCost {
    /// The rate now, all variants together.
    pub usd_per_hour: f64,
    /// Since midnight (UTC).
    pub today_usd: f64,
    /// Since the first of the month (UTC).
    pub month_usd: f64,
    /// Since it was created.
    pub total_usd: f64,
    /// A variant runs on an instance type without a price (not counted).
    pub unpriced: bool,
}

/// A team's spend this month (UTC): endpoints, per endpoint and per model
/// version, and training beside it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct EndpointSpend {
    /// `YYYY-MM`.
    pub month: String,
    pub endpoints_usd: f64,
    /// Training jobs this month (as the training list shows it).
    pub training_usd: f64,
    /// Deleted endpoints included; most expensive first.
    pub by_endpoint: Vec<NamedSpend>,
    pub by_version: Vec<VersionSpend>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NamedSpend {
    pub name: String,
    pub usd: f64,
}

/// What serving one model version cost this month, over every endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct VersionSpend {
    /// None when the version was deleted since.
    pub version_id: Option<Uuid>,
    /// `model vN`.
    pub label: String,
    pub usd: f64,
}

/// One process of a variant (local mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Instance {
    pub ordinal: i32,
    /// `Starting`, `Healthy`, `Unhealthy`, `Crashed` or `Stopped`.
    pub status: String,
    pub restarts: i32,
    pub message: Option<String>,
    /// A process of the variant's previous version or size, serving until
    /// the new processes are healthy.
    pub previous: bool,
}

/// A new endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// 1-63 letters, digits and hyphens, starting and ending with a letter or
    /// digit; unique in the team; with the team slug at most 63 characters.
    #[cfg_attr(feature = "ssr", schema(pattern = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"))]
    pub name: String,
    /// 1-10 production variants.
    #[cfg_attr(feature = "ssr", schema(min_items = 1, max_items = 10))]
    pub variants: Vec<NewVariant>,
    #[serde(default)]
    pub shadow: Option<NewShadow>,
    /// Data capture sampling percentage (1-100), to the team's area of the bucket.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 100))]
    pub capture_percent: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewVariant {
    /// 1-63 letters, digits and hyphens; unique in the endpoint.
    #[cfg_attr(feature = "ssr", schema(pattern = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"))]
    pub name: String,
    /// A model version of the team (not archived or rejected).
    pub version_id: Uuid,
    /// An instance type of the price table, e.g. `ml.m5.large`.
    #[cfg_attr(feature = "ssr", schema(min_length = 1, max_length = 64))]
    pub instance_type: String,
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 10))]
    pub instance_count: i32,
    /// ≥ 0; the share is weight / sum of weights.
    #[cfg_attr(feature = "ssr", schema(minimum = 0))]
    pub weight: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewShadow {
    #[cfg_attr(feature = "ssr", schema(pattern = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"))]
    pub name: String,
    pub version_id: Uuid,
    #[cfg_attr(feature = "ssr", schema(min_length = 1, max_length = 64))]
    pub instance_type: String,
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 10))]
    pub instance_count: i32,
    /// The share of requests copied to the shadow, 1-100.
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 100))]
    pub percent: i32,
}

/// Changes to an endpoint; what is left out stays as it is. The variants
/// given replace the production variants: a variant named as before keeps
/// its processes unless its version, instance type or count changes, a new
/// name is added, a name left out is removed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EndpointUpdate {
    /// The production variants the endpoint should have, 1-10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ssr", schema(min_items = 1, max_items = 10))]
    pub variants: Option<Vec<NewVariant>>,
    /// The shadow variant; `null` removes it.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<NewShadow>, nullable))]
    pub shadow: Option<Option<NewShadow>>,
    /// Data capture sampling percentage (1-100); `null` stops capturing.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<i32>, nullable, minimum = 1, maximum = 100))]
    pub capture_percent: Option<Option<i32>>,
    /// AWS mode: how SageMaker replaces the fleet for this update (its
    /// blue/green `DeploymentConfig`); only for an update that keeps the
    /// production variants' names. Left out: all at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<FleetDeployment>,
}

/// SageMaker's blue/green replacement of an endpoint's fleet (AWS mode):
/// SageMaker starts a new fleet for the update, shifts the traffic of each
/// variant from the old fleet to the new one — all at once, a canary first,
/// or in linear steps — waits `wait_seconds` after each shift, and shifts
/// it all back when one of the alarms goes off. It moves traffic between
/// fleets of the same variant, never between variants: to move traffic
/// from one model version to another, start a rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FleetDeployment {
    /// `all_at_once`, `canary` or `linear`.
    #[cfg_attr(feature = "ssr", schema(example = "canary"))]
    pub traffic: String,
    /// `canary`: the share of the new fleet's capacity turned on first,
    /// 1-50 %; `linear`: the share shifted at each step, 10-50 %.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 50))]
    pub step_percent: Option<i32>,
    /// The baking period after each shift, 0-3 600 s.
    #[serde(default = "default_bake")]
    #[cfg_attr(feature = "ssr", schema(minimum = 0, maximum = 3600, default = 300))]
    pub wait_seconds: i32,
    /// How long the old fleet is kept after the last shift, 0-3 600 s.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(minimum = 0, maximum = 3600))]
    pub termination_wait_seconds: i32,
    /// CloudWatch alarms (up to 10, by name) that roll the update back.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_items = 10))]
    pub alarm_names: Vec<String>,
}

fn default_bake() -> i32 {
    300
}

/// A field that is present (`null` included): `Some`; serde leaves an
/// absent one at its default, `None`.
fn present<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// New weights of production variants; variants not named keep theirs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Weights {
    #[cfg_attr(feature = "ssr", schema(min_items = 1, max_items = 10))]
    pub weights: Vec<VariantWeight>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VariantWeight {
    #[cfg_attr(feature = "ssr", schema(min_length = 1, max_length = 63))]
    pub variant: String,
    #[cfg_attr(feature = "ssr", schema(minimum = 0))]
    pub weight: f64,
}

/// A steady stream of one payload to an endpoint, sent by Capstan itself
/// through the gateway's path, to see the endpoint under traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SampleTraffic {
    /// The request body, as the model expects it (at most 64 KB).
    #[cfg_attr(feature = "ssr", schema(min_length = 1, max_length = 65536))]
    pub body: String,
    #[serde(default = "default_content_type")]
    #[cfg_attr(feature = "ssr", schema(min_length = 1, max_length = 200))]
    pub content_type: String,
    /// Requests per second, 1-50.
    #[serde(default = "default_rate")]
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 50))]
    pub rate: u32,
    /// For how long, 1-900 seconds.
    #[serde(default = "default_seconds")]
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 900))]
    pub seconds: u32,
}

fn default_content_type() -> String {
    "text/csv".into()
}
fn default_rate() -> u32 {
    10
}
fn default_seconds() -> u32 {
    60
}

/// Sample traffic that started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SampleTrafficStarted {
    pub rate: u32,
    pub seconds: u32,
    /// When it stops.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub until: time::OffsetDateTime,
}

/// What the invoke panel sends and shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestInvocation {
    /// The variant that answered.
    pub variant: String,
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
    pub latency_ms: f64,
}

/// The share of each weight in `weights` (all zero when they sum to zero).
pub fn shares(weights: &[f64]) -> Vec<f64> {
    let total: f64 = weights.iter().filter(|w| w.is_finite() && **w > 0.0).sum();
    weights.iter().map(|w| if total > 0.0 && w.is_finite() && *w > 0.0 { w / total } else { 0.0 }).collect()
}

/// The weights where a rollout from `baseline` to `candidate` ends, from
/// the weights `split` now: the candidate holds the pair's weight (added
/// last when the split lacks it), the baseline none, the others theirs.
pub fn rollout_end(split: &[(String, f64)], baseline: &str, candidate: &str) -> Vec<(String, f64)> {
    let pair: f64 = split.iter().filter(|(n, _)| n == baseline || n == candidate).map(|(_, w)| w).sum();
    let mut end: Vec<(String, f64)> = split
        .iter()
        .map(|(n, w)| {
            let w = if n == baseline {
                0.0
            } else if n == candidate {
                pair
            } else {
                *w
            };
            (n.clone(), w)
        })
        .collect();
    if !end.iter().any(|(n, _)| n == candidate) {
        end.push((candidate.to_owned(), pair));
    }
    end
}

/// What the new-endpoint form offers: the team's deployable versions and
/// the instance types of the price table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeployChoices {
    pub versions: Vec<VersionChoice>,
    pub instance_types: Vec<String>,
    /// The team's approval policy covers `endpoint.create`: a new endpoint is a change request.
    pub needs_request: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionChoice {
    pub id: Uuid,
    /// `churn v3 · champion · Approved`
    pub label: String,
}

/// The start-a-rollout form, as typed (the rollouts page posts it to start
/// one, or hands it to a change request where the team's policy covers it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RolloutRow {
    pub baseline: String,
    pub candidate: String,
    /// Empty: the candidate is an existing variant.
    pub candidate_version_id: String,
    pub strategy: String,
    pub step_percent: String,
    pub interval_seconds: String,
    /// Percent.
    pub max_error_rate: String,
    pub min_requests: String,
}

/// The bandit form, as typed: shares in percent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BanditRow {
    pub metric: String,
    /// `binary` or `real`.
    pub metric_kind: String,
    pub goal: String,
    pub interval_seconds: String,
    pub min_percent: String,
    pub max_percent: String,
}

/// The variants editor's blue/green fields (AWS mode), as typed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FleetRow {
    /// Empty: SageMaker's default (all at once, no alarms).
    #[serde(default)]
    pub traffic: String,
    #[serde(default)]
    pub step_percent: String,
    #[serde(default)]
    pub wait_seconds: String,
    /// Alarm names, separated by commas.
    #[serde(default)]
    pub alarm_names: String,
}

/// One row of the new-endpoint form, as typed (rows without a version are
/// left out).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VariantRow {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub version_id: String,
    #[serde(default)]
    pub instance_type: String,
    #[serde(default)]
    pub instance_count: String,
    /// The weight, or for the shadow the sampling percentage.
    #[serde(default)]
    pub weight: String,
}

/// One event of an endpoint's timeline (from the audit log).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct EndpointEvent {
    /// The audit event's id.
    pub id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub at: time::OffsetDateTime,
    /// Who: a user's email, a token's name, or `capstan` for the serving worker.
    pub by: String,
    /// The audit action, e.g. `endpoint.weights_changed`.
    pub action: String,
    /// What changed, in words.
    pub text: String,
}

/// A key for invoking one endpoint with AWS Signature Version 4 (the AWS
/// SDKs' SageMaker Runtime clients).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct InvokeKey {
    /// The access key id (`AKCP…`).
    pub id: String,
    pub endpoint_id: Uuid,
    pub name: String,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>, format = DateTime))]
    pub revoked_at: Option<time::OffsetDateTime>,
}

/// A new key with its secret: shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CreatedInvokeKey {
    pub key: InvokeKey,
    /// The secret access key: configure it with the id in the SDK's credentials.
    pub secret_access_key: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewInvokeKey {
    /// What the key is for (1-100 characters).
    #[cfg_attr(feature = "ssr", schema(min_length = 1, max_length = 100))]
    pub name: String,
}

/// An endpoint's traffic over a window, per variant, one point per step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct EndpointMetrics {
    pub step_seconds: i64,
    /// The start of each step (RFC 3339).
    pub at: Vec<String>,
    pub variants: Vec<VariantSeries>,
}

/// One variant's series (the shadow's too, with its agreement).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct VariantSeries {
    pub variant: String,
    pub requests: Vec<u64>,
    pub requests_per_second: Vec<f64>,
    /// (4xx + 5xx + model errors) / requests; 0 without requests.
    pub error_rate: Vec<f64>,
    /// Latency quantiles in ms (the upper bound of the histogram bucket); null without requests.
    pub p50_ms: Vec<Option<f64>>,
    pub p95_ms: Vec<Option<f64>>,
    pub p99_ms: Vec<Option<f64>>,
    /// The share of shadow answers equal to production's; null without shadow requests.
    pub shadow_agreement: Vec<Option<f64>>,
}

/// The window of `GET /endpoints/{id}/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct MetricsQuery {
    /// RFC 3339; default `to` minus one hour.
    #[cfg_attr(feature = "ssr", param(format = DateTime))]
    pub from: Option<String>,
    /// RFC 3339; default now.
    #[cfg_attr(feature = "ssr", param(format = DateTime))]
    pub to: Option<String>,
    /// Seconds per point, whole minutes (60-86400); default 60.
    #[cfg_attr(feature = "ssr", param(minimum = 60, maximum = 86400, multiple_of = 60))]
    pub step: Option<i64>,
}

/// An outcome of one invocation: a value of a named metric (1 or 0 for a
/// conversion, any number for revenue or a rating), joined to the variant
/// that served it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// The invocation's id, from the gateway's `x-capstan-invocation-id`
    /// answer header (`<request id>.<variant>`: the variant comes from it);
    /// or any id of the caller's own (1-200 characters) with `variant` given.
    #[cfg_attr(feature = "ssr", schema(min_length = 1, max_length = 200))]
    pub request_id: String,
    /// The metric's name: 1-64 letters, digits, `_`, `.`, `:`, `-`.
    pub metric: String,
    /// A finite number.
    pub value: f64,
    /// The production variant that served the invocation, for an invocation
    /// that did not pass through Capstan's gateway (SageMaker Runtime's
    /// `X-Amzn-Invoked-Production-Variant`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// `POST /endpoints/{id}/outcomes`: one outcome, or a batch of up to 1 000.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum Outcomes {
    Batch {
        #[cfg_attr(feature = "ssr", schema(min_items = 1, max_items = 1000))]
        outcomes: Vec<Outcome>,
    },
    One(Outcome),
}

/// The batch form of `POST /endpoints/{id}/outcomes`, as the API document
/// shows it (one outcome alone is taken too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OutcomeBatch {
    #[cfg_attr(feature = "ssr", schema(min_items = 1, max_items = 1000))]
    pub outcomes: Vec<Outcome>,
}

/// A batch when the body has `outcomes`, else one outcome: read so that a
/// bad field is named (`outcomes[3]: missing field metric`), not lost in
/// "matched no variant".
impl<'de> Deserialize<'de> for Outcomes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let body = serde_json::Value::deserialize(deserializer)?;
        match body {
            serde_json::Value::Object(mut fields) if fields.contains_key("outcomes") => {
                if let Some(extra) = fields.keys().find(|k| *k != "outcomes") {
                    return Err(D::Error::custom(format!("unknown field `{extra}` beside `outcomes`")));
                }
                let list = match fields.remove("outcomes") {
                    Some(serde_json::Value::Array(list)) => list,
                    _ => return Err(D::Error::custom("`outcomes` must be a list")),
                };
                let outcomes = list
                    .into_iter()
                    .enumerate()
                    .map(|(i, o)| {
                        serde_json::from_value(o).map_err(|e| D::Error::custom(format!("outcomes[{i}]: {e}")))
                    })
                    .collect::<Result<Vec<Outcome>, D::Error>>()?;
                Ok(Outcomes::Batch { outcomes })
            }
            other => serde_json::from_value(other).map(Outcomes::One).map_err(D::Error::custom),
        }
    }
}

/// What became of a batch of outcomes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct OutcomesAccepted {
    /// Outcomes recorded now.
    pub accepted: u64,
    /// Outcomes already recorded for the same request and metric (left as they were).
    pub duplicates: u64,
}

/// The settings of an endpoint's experiment (`PUT /endpoints/{id}/experiment`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ExperimentSettings {
    /// The metric that decides (as outcomes name it).
    pub metric: String,
    /// `binary`: a rate per invocation (an invocation without an outcome
    /// counts 0); `real`: the mean of the outcomes reported.
    pub kind: String,
    /// `increase` (default) or `decrease`: which way is better.
    #[serde(default = "default_goal")]
    pub goal: String,
    /// The production variant the others are compared with.
    pub baseline: String,
    /// The chance of calling a difference where there is none, however
    /// often the result is looked at (0.001-0.2; default 0.05).
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// Start counting again from now (default: keep the start).
    #[serde(default)]
    pub restart: bool,
}

fn default_goal() -> String {
    "increase".into()
}

fn default_alpha() -> f64 {
    0.05
}

/// An endpoint's experiment: its settings, and the analysis of the window
/// since the split last changed (or the experiment started, if later).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Experiment {
    pub endpoint_id: Uuid,
    pub metric: String,
    pub kind: String,
    pub goal: String,
    pub baseline: String,
    pub alpha: f64,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub started_at: time::OffsetDateTime,
    /// The window analysed: from the later of the start and the split's last
    /// change (whole minutes) to `as_of`.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub window_from: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub as_of: time::OffsetDateTime,
    /// The baseline first, then the other production variants.
    pub variants: Vec<ExperimentVariant>,
    /// Sample-ratio mismatch: the chi-square test of the invocations each
    /// variant served against the split's weights (1 while a bandit sets
    /// the weights: the split moves by design).
    pub srm_p_value: f64,
    /// `srm_p_value` < 0.001: the split is not what it should be, and the
    /// comparison cannot be trusted until the cause is found.
    pub srm_warning: bool,
    /// Whether a bandit sets the weights (`…/bandit`).
    pub bandit: bool,
    /// In words: `significant: <variant> better`, `significant: <variant>
    /// worse`, `keep running`, or why there is nothing to judge yet.
    pub verdict: String,
}

/// One variant in an experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ExperimentVariant {
    pub variant: String,
    /// Its weight in the split now.
    pub weight: f64,
    /// Invocations it served in the window.
    pub invocations: u64,
    /// Units of the metric: invocations for a binary metric, outcomes for a real one.
    pub units: u64,
    /// The rate (binary) or mean (real).
    pub mean: f64,
    /// Against the baseline (none for the baseline itself).
    pub lift: Option<LiftInterval>,
    /// `better`, `worse` or `inconclusive` (the baseline: `baseline`).
    pub status: String,
    /// The always-valid interval of the lift over time (one point per
    /// minute of the window, at most 120 points).
    pub history: Vec<LiftPoint>,
}

/// A relative lift over the baseline, `(mean − baseline mean) / baseline
/// mean`, with its always-valid interval at the experiment's α.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LiftInterval {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
    /// Always-valid p-value.
    pub p_value: f64,
}

/// The lift as it stood at the end of one minute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LiftPoint {
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub at: time::OffsetDateTime,
    pub units: u64,
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
}

/// `GET /endpoints/{id}/experiment`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct ExperimentQuery {
    /// RFC 3339: the analysis as it stood then; default now.
    #[cfg_attr(feature = "ssr", param(format = DateTime))]
    pub as_of: Option<String>,
}

/// `POST /endpoints/{id}/rollouts`: move the traffic of `baseline` to
/// `candidate` step by step, watched by guardrails.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewRollout {
    /// The production variant the traffic comes from.
    pub baseline: String,
    /// The production variant it goes to. Give `candidate_version_id` to
    /// have the rollout add it (weight 0, the baseline's instances) first.
    pub candidate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate_version_id: Option<Uuid>,
    /// `canary` (step_percent for interval_seconds, then 100 %), `linear`
    /// (step_percent more every interval_seconds) or `manual` (step_percent
    /// more each time someone promotes).
    pub strategy: String,
    /// 1-50; default 10.
    #[serde(default = "default_step_percent")]
    pub step_percent: i32,
    /// 0-3600; default 300.
    #[serde(default = "default_interval")]
    pub interval_seconds: i32,
    #[serde(default)]
    pub guardrails: Guardrails,
}

fn default_step_percent() -> i32 {
    10
}

fn default_interval() -> i32 {
    300
}

/// What each step is judged by, over the window since it began. A step is
/// judged once the candidate has served `min_requests`; a failed check
/// sends the traffic back to the baseline at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields, default)]
pub struct Guardrails {
    /// The candidate's error rate (server errors and model errors per
    /// request) may not pass this (0-1; default 0.05).
    pub max_error_rate: f64,
    /// Nor this many times the baseline's (taken as at least 0.5 %); default 2.
    pub max_error_ratio: f64,
    /// The candidate's p99 latency may not pass this many times the
    /// baseline's (taken as at least 25 ms); default 1.5.
    pub max_p99_ratio: f64,
    /// Requests the candidate must serve in a step before it is judged; default 50.
    pub min_requests: i64,
    /// An outcome metric (as reported to `…/outcomes`) on which the
    /// candidate may not be significantly worse than the baseline (the
    /// always-valid test of the experiment, higher is better).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome_metric: Option<String>,
    /// AWS mode: CloudWatch metric alarms (up to 10, by name) watched during
    /// each step; one in `ALARM` rolls the candidate back, however few
    /// requests it has served.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alarm_names: Vec<String>,
}

impl Default for Guardrails {
    fn default() -> Self {
        Self {
            max_error_rate: 0.05,
            max_error_ratio: 2.0,
            max_p99_ratio: 1.5,
            min_requests: 50,
            outcome_metric: None,
            alarm_names: Vec::new(),
        }
    }
}

/// A rollout, its steps so far and the steps planned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Rollout {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    /// Team slug.
    pub team: String,
    /// The endpoint's name.
    pub endpoint: String,
    pub baseline: String,
    pub candidate: String,
    pub strategy: String,
    pub step_percent: i32,
    pub interval_seconds: i32,
    pub guardrails: Guardrails,
    /// `running`, `paused`, `completed`, `rolled_back` or `aborted`.
    pub state: String,
    /// The candidate's share of the baseline's and candidate's traffic now.
    pub percent: i32,
    /// The shares the steps take the candidate to, in order.
    pub planned: Vec<i32>,
    pub steps: Vec<RolloutStep>,
    /// Why it rolled back (with the figures), or was aborted.
    pub reason: Option<String>,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>, format = DateTime))]
    pub finished_at: Option<time::OffsetDateTime>,
}

/// One step of a rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RolloutStep {
    pub seq: i32,
    pub percent: i32,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub started_at: time::OffsetDateTime,
    /// Who took it: a user's email, or `capstan`.
    pub started_by: String,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>, format = DateTime))]
    pub ended_at: Option<time::OffsetDateTime>,
    /// `passed`, `failed`, `aborted`, `rolled_back`, or none while it runs.
    pub result: Option<String>,
    /// The guardrails' figures when it was last judged.
    pub checks: Vec<GuardrailCheck>,
}

/// One guardrail's figure in a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct GuardrailCheck {
    /// `error_rate`, `error_ratio`, `p99_ratio`, `min_requests` or `outcome`.
    pub name: String,
    /// The figure, when there is one yet.
    pub value: Option<f64>,
    pub limit: f64,
    /// `pass`, `fail` or `waiting` (too few requests to judge).
    pub status: String,
    /// In words, with the figures.
    pub text: String,
}

/// `PUT /endpoints/{id}/bandit`: let Thompson sampling on an outcome
/// metric set the production weights, recomputed every interval, each
/// variant's share kept within `[min_share, max_share]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BanditSettings {
    /// The metric the variants are judged by (as outcomes name it).
    pub metric: String,
    /// `binary` (a rate per invocation: Beta–Bernoulli) or `real` (the
    /// mean of the outcomes: Normal).
    pub kind: String,
    /// `increase` (default) or `decrease`: which way is better.
    #[serde(default = "default_goal")]
    pub goal: String,
    /// 1-86400; default 300.
    #[serde(default = "default_interval")]
    pub interval_seconds: i32,
    /// The least share of the traffic a variant keeps (0-0.5; default 0.05).
    #[serde(default = "default_min_share")]
    pub min_share: f64,
    /// The most share a variant is given (0.5-1; default 0.9).
    #[serde(default = "default_max_share")]
    pub max_share: f64,
}

fn default_min_share() -> f64 {
    0.05
}

fn default_max_share() -> f64 {
    0.9
}

/// An endpoint's bandit allocation: its settings, the standing change
/// request it runs under, and each variant's figures at the last run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Bandit {
    pub endpoint_id: Uuid,
    /// As set (`PUT …/bandit`).
    pub settings: BanditSettings,
    /// The approved change request that turned it on, when the team's
    /// policy asked for one; its weight changes keep within its bounds.
    pub request_id: Option<Uuid>,
    pub started_by: String,
    /// Outcomes count from here on.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub started_at: time::OffsetDateTime,
    /// When the weights are next recomputed.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub next_at: time::OffsetDateTime,
    /// The runs, newest first (the last 50).
    pub runs: Vec<BanditRun>,
}

/// One recomputation of the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BanditRun {
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub at: time::OffsetDateTime,
    /// Whether the weights changed (a change under a point is not made).
    pub changed: bool,
    pub variants: Vec<BanditVariant>,
}

/// One variant in a bandit run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BanditVariant {
    pub variant: String,
    /// Units of the metric since the bandit started.
    pub units: u64,
    /// The rate (binary) or mean (real).
    pub mean: f64,
    /// The chance that it is the best variant, by Thompson sampling.
    pub chance_best: f64,
    /// The share of the traffic it was given (its weight).
    pub share: f64,
}

/// `PUT /endpoints/{id}/faults`: have the gateway answer `error_percent` %
/// of the invocations routed to `variant` with a model error instead of
/// calling it (0 ends it) — to see a rollout's guardrails at work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// A production variant of the endpoint.
    pub variant: String,
    /// 0-100.
    pub error_percent: i32,
}

/// `PUT /endpoints/{id}/health`: what the health score is judged against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct HealthSettings {
    /// The p99 latency the endpoint should keep under (ms, 1-600000; default 1000).
    #[serde(default = "default_slo")]
    pub latency_slo_ms: i32,
    /// Below this score (1-100; default 85) the endpoint alerts.
    #[serde(default = "default_threshold")]
    pub threshold: i32,
    /// Below the threshold, roll back the endpoint's last rollout (live, or
    /// completed within a day). Default off.
    #[serde(default)]
    pub auto_rollback: bool,
}

fn default_slo() -> i32 {
    1000
}

fn default_threshold() -> i32 {
    85
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self { latency_slo_ms: default_slo(), threshold: default_threshold(), auto_rollback: false }
    }
}

/// An endpoint's health: the score now, its parts, and its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Health {
    pub endpoint_id: Uuid,
    /// 0-100: the parts that could be judged, by their weights; none
    /// without traffic in the window.
    pub score: Option<f64>,
    /// Whether the score is under the threshold.
    pub below: bool,
    /// The minutes the parts look back over.
    pub window_minutes: i64,
    pub parts: Vec<HealthPart>,
    pub settings: HealthSettings,
    /// One point a minute, oldest first (the last day, at most 120 points).
    pub history: Vec<HealthPoint>,
}

/// One part of the health score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct HealthPart {
    /// `errors`, `latency`, `drift` or `capacity`.
    pub name: String,
    /// Its weight in the score (the known parts' weights are shared out again).
    pub weight: f64,
    /// 0-100; none when it cannot be judged (no traffic, no captured data, …).
    pub score: Option<f64>,
    /// The figure it is judged by (error rate, p99 ms, PSI, healthy share).
    pub value: Option<f64>,
    /// In words, with the figures.
    pub text: String,
}

/// The score as it was recorded one minute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct HealthPoint {
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub at: time::OffsetDateTime,
    pub score: Option<f64>,
}
