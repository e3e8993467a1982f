//! What the registry, endpoints and the approvals capability
//! share about change requests, without importing each other:
//!
//! - the kinds of change a team's policy can cover ([`kinds`]);
//! - [`requires_request`]: whether a direct change of a target is refused
//!   because the team's policy covers it;
//! - [`first_application`]: the once-only key a domain function writes in
//!   the transaction of a change it applies for a request, so a retry after
//!   a crash finds it applied instead of applying it twice.

use sqlx::PgConnection;
use uuid::Uuid;

/// Change kinds, as stored in policies and requests.
pub mod kinds {
    /// Move (or create) an alias to another version of its model.
    pub const ALIAS_MOVE: &str = "alias.move";
    pub const ALIAS_DELETE: &str = "alias.delete";
    /// Set a model version's status to Approved or Rejected.
    pub const VERSION_STATUS: &str = "version.status";
    pub const ALIAS_PROTECT: &str = "alias.protect";
    pub const ALIAS_UNPROTECT: &str = "alias.unprotect";
    /// Create an endpoint.
    pub const ENDPOINT_CREATE: &str = "endpoint.create";
    /// Change an endpoint's variants, capacity, shadow or data capture.
    pub const ENDPOINT_UPDATE: &str = "endpoint.update";
    pub const ENDPOINT_DELETE: &str = "endpoint.delete";
    /// Change the weights of an endpoint's production variants.
    pub const ENDPOINT_WEIGHTS: &str = "endpoint.weights";
    /// Start a rollout on an endpoint (its steps then change the weights).
    pub const ENDPOINT_ROLLOUT: &str = "endpoint.rollout";
    /// Turn on (or change) an endpoint's bandit allocation: its automatic
    /// weight changes then stay within the bounds the request approved.
    pub const ENDPOINT_BANDIT: &str = "endpoint.bandit";
    pub const ALL: [&str; 11] = [
        ALIAS_MOVE,
        ALIAS_DELETE,
        VERSION_STATUS,
        ALIAS_PROTECT,
        ALIAS_UNPROTECT,
        ENDPOINT_CREATE,
        ENDPOINT_UPDATE,
        ENDPOINT_DELETE,
        ENDPOINT_WEIGHTS,
        ENDPOINT_ROLLOUT,
        ENDPOINT_BANDIT,
    ];
    /// The kinds whose target is an endpoint: a policy for one covers every
    /// endpoint of the team.
    pub fn is_endpoint(kind: &str) -> bool {
        kind.starts_with("endpoint.")
    }
}

/// Whether the team has a policy for `kind` that covers the target (the
/// model's alias, the model, or every target of the kind; an endpoint
/// kind's target has no model): then the change goes through a change
/// request.
pub async fn requires_request(
    conn: &mut PgConnection,
    team_id: Uuid,
    kind: &str,
    model_id: Option<Uuid>,
    alias: Option<&str>,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select exists(select 1 from approval_policy
                         where team_id = $1 and kind = $2
                           and (model_id is null or model_id = $3)
                           and (alias is null or alias = $4)) as "exists!""#,
        team_id,
        kind,
        model_id,
        alias
    )
    .fetch_one(conn)
    .await
}

/// The first of the endpoint kinds `kinds` that a policy of the team
/// covers, if any (a change touching several kinds asks for a request when
/// any of them is covered).
pub async fn covered_kind(
    conn: &mut PgConnection,
    team_id: Uuid,
    kinds: &[&'static str],
) -> Result<Option<&'static str>, sqlx::Error> {
    for kind in kinds {
        if requires_request(conn, team_id, kind, None, None).await? {
            return Ok(Some(kind));
        }
    }
    Ok(None)
}

/// Refuses a direct change (409) when a policy of team `team` (slug, id)
/// covers any of `kinds`, naming the covered kind and the change request
/// to open instead, of kind `request_kind`.
pub async fn refuse_when_covered(
    conn: &mut PgConnection,
    team: (&str, Uuid),
    kinds: &[&'static str],
    request_kind: &str,
) -> Result<(), crate::kernel::error::AppError> {
    let (slug, team_id) = team;
    match covered_kind(conn, team_id, kinds).await? {
        Some(kind) => Err(crate::kernel::error::AppError::Conflict {
            field: None,
            message: format!(
                "team {slug}'s approval policy covers {kind}: open a change request of kind {request_kind} \
                 (POST /api/v1/teams/{slug}/change-requests)"
            ),
        }),
        None => Ok(()),
    }
}

/// The once-only key of a change request's application.
pub fn application_key(request: Uuid) -> String {
    format!("change-request:{request}")
}

/// Records, in the transaction of the change, that `request` is being
/// applied; false when it was applied already (the caller must then write
/// nothing).
pub async fn first_application(conn: &mut PgConnection, request: Uuid) -> Result<bool, sqlx::Error> {
    let inserted =
        sqlx::query!("insert into applied_once (key) values ($1) on conflict do nothing", application_key(request))
            .execute(conn)
            .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Whether `request` has been applied (its change committed).
pub async fn applied(pool: &sqlx::PgPool, request: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select exists(select 1 from applied_once where key = $1) as "exists!""#,
        application_key(request)
    )
    .fetch_one(pool)
    .await
}

/// Aborts the process at `point` when the test-only setting
/// `CAPSTAN_FAULT_POINT` names it (the exactly-once tests kill Capstan
/// there); does nothing otherwise.
pub use serving::fault_point;
