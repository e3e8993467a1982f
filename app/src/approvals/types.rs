//! Wire types of change requests and approval policies, shared by the
//! server and the browser, and the one state machine of a request
//! ([`next`]): the domain, the API and the pages all ask it.

use crate::kernel::roles::Role;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A request's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ssr", derive(sqlx::Type, utoipa::ToSchema))]
#[cfg_attr(feature = "ssr", sqlx(type_name = "change_request_state", rename_all = "lowercase"))]
pub enum State {
    Open,
    Approved,
    Applying,
    Applied,
    Failed,
    Rejected,
    Withdrawn,
    Expired,
    Stale,
}

/// What can happen to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    /// An eligible reviewer approves (short of the quorum).
    Approve,
    /// The approval that reaches the quorum.
    Quorum,
    /// An eligible reviewer rejects: final.
    Reject,
    /// The author withdraws.
    Withdraw,
    /// The author edits (approvals given so far stop counting).
    Edit,
    /// The expiry passed while open.
    Expire,
    /// The target changed since the request was proposed.
    Invalidate,
    /// The worker starts applying.
    Apply,
    /// The change was applied.
    Succeed,
    /// The change could not be applied.
    Fail,
}

impl State {
    pub const ALL: [State; 9] = [
        State::Open,
        State::Approved,
        State::Applying,
        State::Applied,
        State::Failed,
        State::Rejected,
        State::Withdrawn,
        State::Expired,
        State::Stale,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Approved => "approved",
            State::Applying => "applying",
            State::Applied => "applied",
            State::Failed => "failed",
            State::Rejected => "rejected",
            State::Withdrawn => "withdrawn",
            State::Expired => "expired",
            State::Stale => "stale",
        }
    }

    /// No event leaves it.
    pub fn is_final(self) -> bool {
        Event::ALL.iter().all(|e| next(self, *e).is_err())
    }
}

impl Event {
    pub const ALL: [Event; 10] = [
        Event::Approve,
        Event::Quorum,
        Event::Reject,
        Event::Withdraw,
        Event::Edit,
        Event::Expire,
        Event::Invalidate,
        Event::Apply,
        Event::Succeed,
        Event::Fail,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::Approve => "approve",
            Event::Quorum => "quorum",
            Event::Reject => "reject",
            Event::Withdraw => "withdraw",
            Event::Edit => "edit",
            Event::Expire => "expire",
            Event::Invalidate => "invalidate",
            Event::Apply => "apply",
            Event::Succeed => "succeed",
            Event::Fail => "fail",
        }
    }
}

/// The state machine, as one table: the state `event` leads to from
/// `state`, or why it cannot happen there. A rejection is final: the author
/// opens a new request.
pub fn next(state: State, event: Event) -> Result<State, String> {
    use Event as E;
    use State as S;
    match (state, event) {
        (S::Open, E::Approve | E::Edit) => Ok(S::Open),
        (S::Open, E::Quorum) => Ok(S::Approved),
        (S::Open, E::Reject) => Ok(S::Rejected),
        (S::Open, E::Withdraw) => Ok(S::Withdrawn),
        (S::Open, E::Expire) => Ok(S::Expired),
        (S::Open | S::Approved, E::Invalidate) => Ok(S::Stale),
        (S::Approved, E::Apply) => Ok(S::Applying),
        (S::Applying, E::Succeed) => Ok(S::Applied),
        (S::Applying, E::Fail) => Ok(S::Failed),
        (S::Applying, E::Invalidate) => Ok(S::Stale),
        (state, event) => Err(format!("A request that is {} cannot {}.", state.as_str(), verb(event))),
    }
}

fn verb(event: Event) -> &'static str {
    match event {
        Event::Approve | Event::Quorum => "be approved",
        Event::Reject => "be rejected",
        Event::Withdraw => "be withdrawn",
        Event::Edit => "be edited",
        Event::Expire => "expire",
        Event::Invalidate => "become stale",
        Event::Apply => "be applied",
        Event::Succeed => "succeed",
        Event::Fail => "fail",
    }
}

/// The change a request proposes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", deny_unknown_fields)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum Change {
    /// Point `alias` of `model_id` at `version_id`.
    #[serde(rename = "alias.move")]
    AliasMove { model_id: Uuid, alias: String, version_id: Uuid },
    #[serde(rename = "alias.delete")]
    AliasDelete { model_id: Uuid, alias: String },
    /// Approve or reject a model version.
    #[serde(rename = "version.status")]
    VersionStatus { version_id: Uuid, status: crate::registry::types::ModelVersionStatus },
    #[serde(rename = "alias.protect")]
    AliasProtect { model_id: Uuid, alias: String },
    #[serde(rename = "alias.unprotect")]
    AliasUnprotect { model_id: Uuid, alias: String },
    /// Create an endpoint in the request's team.
    #[serde(rename = "endpoint.create")]
    EndpointCreate { endpoint: crate::endpoints::types::NewEndpoint },
    /// Change an endpoint's variants, capacity, shadow or data capture.
    #[serde(rename = "endpoint.update")]
    EndpointUpdate { endpoint_id: Uuid, update: crate::endpoints::types::EndpointUpdate },
    #[serde(rename = "endpoint.delete")]
    EndpointDelete { endpoint_id: Uuid },
    /// Set the weights of production variants (variants not named keep theirs).
    #[serde(rename = "endpoint.weights")]
    EndpointWeights {
        endpoint_id: Uuid,
        #[cfg_attr(feature = "ssr", schema(min_items = 1, max_items = 10))]
        weights: Vec<crate::endpoints::types::VariantWeight>,
    },
    /// Start a rollout (as `POST /endpoints/{id}/rollouts`).
    #[serde(rename = "endpoint.rollout")]
    EndpointRollout { endpoint_id: Uuid, rollout: crate::endpoints::types::NewRollout },
    /// Turn on (or change) the endpoint's bandit allocation (as `PUT
    /// /endpoints/{id}/bandit`): its weight changes then keep within these bounds.
    #[serde(rename = "endpoint.bandit")]
    EndpointBandit { endpoint_id: Uuid, bandit: crate::endpoints::types::BanditSettings },
}

impl Change {
    pub fn kind(&self) -> &'static str {
        match self {
            Change::AliasMove { .. } => "alias.move",
            Change::AliasDelete { .. } => "alias.delete",
            Change::VersionStatus { .. } => "version.status",
            Change::AliasProtect { .. } => "alias.protect",
            Change::AliasUnprotect { .. } => "alias.unprotect",
            Change::EndpointCreate { .. } => "endpoint.create",
            Change::EndpointUpdate { .. } => "endpoint.update",
            Change::EndpointDelete { .. } => "endpoint.delete",
            Change::EndpointWeights { .. } => "endpoint.weights",
            Change::EndpointRollout { .. } => "endpoint.rollout",
            Change::EndpointBandit { .. } => "endpoint.bandit",
        }
    }

    /// The endpoint it changes (none for the endpoint it creates, or a registry change).
    pub fn endpoint_id(&self) -> Option<Uuid> {
        match self {
            Change::EndpointUpdate { endpoint_id, .. }
            | Change::EndpointDelete { endpoint_id }
            | Change::EndpointWeights { endpoint_id, .. }
            | Change::EndpointRollout { endpoint_id, .. }
            | Change::EndpointBandit { endpoint_id, .. } => Some(*endpoint_id),
            _ => None,
        }
    }
}

/// One variant in an endpoint change's split, before and after: its weight
/// (none where it is not a production variant on that side).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SplitRow {
    pub variant: String,
    /// `model vN` of the version it serves (after the change, where it changes).
    pub version: String,
    pub before: Option<f64>,
    pub after: Option<f64>,
}

/// One version as a diff shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct VersionRef {
    pub id: Uuid,
    pub number: i32,
    pub status: crate::registry::types::ModelVersionStatus,
    pub metrics: std::collections::BTreeMap<String, f64>,
}

/// What a request changes, before → after, for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Diff {
    /// `team/model`, and the alias where there is one.
    pub target: String,
    pub before: String,
    pub after: String,
    /// The versions involved (an alias move: from and to), metrics side by side.
    pub versions: Vec<VersionRef>,
    /// An endpoint change: the production variants' weights before and after
    /// (shares are weight / sum of weights); empty for registry changes.
    #[serde(default)]
    pub split: Vec<SplitRow>,
}

/// Who decided, on which revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Review {
    pub reviewer: String,
    pub role: Role,
    /// `approve` or `reject`.
    pub decision: String,
    pub comment: String,
    pub revision: i32,
    /// Counts toward the quorum (the current revision, an eligible reviewer).
    pub counts: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub at: time::OffsetDateTime,
}

/// One step of a request's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TimelineEntry {
    /// Email of who acted; none for Capstan's worker.
    pub actor: Option<String>,
    pub action: String,
    pub to_state: Option<State>,
    pub comment: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub at: time::OffsetDateTime,
}

/// The rule a request must meet, as it was when proposed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Rule {
    pub approvals_required: i32,
    pub min_role: Role,
    pub require_admin: bool,
}

/// A change request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ChangeRequest {
    pub id: Uuid,
    /// Team slug.
    pub team: String,
    pub change: Change,
    pub title: String,
    pub justification: String,
    /// Email of the author.
    pub author: String,
    pub state: State,
    pub rule: Rule,
    /// Approvals that count now.
    pub approvals: i32,
    pub revision: i32,
    pub diff: Diff,
    pub reviews: Vec<Review>,
    pub timeline: Vec<TimelineEntry>,
    /// Why applying failed, or why it went stale.
    pub error: Option<String>,
    /// Whether the caller may approve or reject it now.
    pub can_review: bool,
    /// Emails of who may still approve (open requests): members with the
    /// rule's role or above, other than the author, undecided on this revision.
    pub waiting_on: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub expires_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>, format = DateTime))]
    pub applied_at: Option<time::OffsetDateTime>,
}

/// A request as lists show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RequestSummary {
    pub id: Uuid,
    pub team: String,
    pub kind: String,
    pub title: String,
    pub author: String,
    pub state: State,
    pub approvals: i32,
    pub approvals_required: i32,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub created_at: time::OffsetDateTime,
}

/// A new request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    pub change: Change,
    #[cfg_attr(feature = "ssr", schema(min_length = 1, max_length = 200))]
    pub title: String,
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 10000))]
    pub justification: String,
}

/// An edit of an open request (its author): what is given changes, and the
/// approvals given so far stop counting.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RequestEdit {
    pub change: Option<Change>,
    #[cfg_attr(feature = "ssr", schema(min_length = 1, max_length = 200))]
    pub title: Option<String>,
    #[cfg_attr(feature = "ssr", schema(max_length = 10000))]
    pub justification: Option<String>,
}

/// A reviewer's comment with an approval or rejection, or the author's with a withdrawal.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Decision {
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 10000))]
    pub comment: String,
}

/// Which requests a list shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
pub struct RequestQuery {
    pub state: Option<State>,
    pub kind: Option<String>,
    /// Email of the author.
    pub author: Option<String>,
    /// Only the open requests the caller may approve and has not decided on.
    #[serde(default)]
    pub needs_my_review: bool,
    /// Only the caller's own requests.
    #[serde(default)]
    pub mine: bool,
    pub cursor: Option<String>,
    #[cfg_attr(feature = "ssr", param(minimum = 1, maximum = 200))]
    pub limit: Option<i64>,
}

/// A team's policy for one kind of change (optionally one model's alias).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// `alias.move`, `alias.delete`, `version.status`, `alias.protect`,
    /// `alias.unprotect`, `endpoint.create`, `endpoint.update`,
    /// `endpoint.delete` or `endpoint.weights` (an endpoint kind covers
    /// every endpoint of the team: no model_id or alias).
    pub kind: String,
    /// Only this model's targets.
    #[serde(default)]
    pub model_id: Option<Uuid>,
    /// Only this alias of `model_id`.
    #[serde(default)]
    pub alias: Option<String>,
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 10))]
    pub approvals_required: i32,
    /// Approvers need at least this role in the team.
    pub min_role: Role,
    /// At least one approver is an admin.
    #[serde(default)]
    pub require_admin: bool,
    /// An open request expires after this many hours (at most 90 days).
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 2160))]
    pub expires_after_hours: i32,
}

/// A team's policies, replaced as a whole.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Policies {
    pub policies: Vec<Policy>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every state × every event: the moves the issue names, and nothing else.
    #[test]
    fn the_state_machine_walks_every_state_and_event() {
        use Event as E;
        use State as S;
        let allowed = [
            (S::Open, E::Approve, S::Open),
            (S::Open, E::Edit, S::Open),
            (S::Open, E::Quorum, S::Approved),
            (S::Open, E::Reject, S::Rejected),
            (S::Open, E::Withdraw, S::Withdrawn),
            (S::Open, E::Expire, S::Expired),
            (S::Open, E::Invalidate, S::Stale),
            (S::Approved, E::Invalidate, S::Stale),
            (S::Approved, E::Apply, S::Applying),
            (S::Applying, E::Succeed, S::Applied),
            (S::Applying, E::Fail, S::Failed),
            (S::Applying, E::Invalidate, S::Stale),
        ];
        let mut walked = 0;
        for state in State::ALL {
            for event in Event::ALL {
                walked += 1;
                let want = allowed.iter().find(|(s, e, _)| *s == state && *e == event).map(|(_, _, to)| *to);
                match (next(state, event), want) {
                    (Ok(to), Some(want)) => assert_eq!(to, want, "{state:?} × {event:?}"),
                    (Err(message), None) => {
                        assert!(message.contains(state.as_str()), "the refusal names the state: {message}")
                    }
                    (got, want) => panic!("{state:?} × {event:?}: got {got:?}, want {want:?}"),
                }
            }
        }
        assert_eq!(walked, 90);
        let finals: Vec<State> = State::ALL.into_iter().filter(|s| s.is_final()).collect();
        assert_eq!(finals, [S::Applied, S::Failed, S::Rejected, S::Withdrawn, S::Expired, S::Stale]);
    }

    #[test]
    fn changes_carry_their_kind_on_the_wire() {
        let id = Uuid::nil();
        let change = Change::AliasMove { model_id: id, alias: "champion".into(), version_id: id };
        let wire = serde_json::to_value(&change).expect("json");
        assert_eq!(wire["kind"], "alias.move");
        assert_eq!(serde_json::from_value::<Change>(wire).expect("back"), change);
        let unknown = serde_json::json!({"kind": "alias.rename", "model_id": id, "alias": "x"});
        assert!(serde_json::from_value::<Change>(unknown).is_err());
    }
}
