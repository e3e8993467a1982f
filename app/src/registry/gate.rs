//! The gate in front of every registry or endpoint change that a change request can
//! make: a direct change passes only where nothing asks for a request (a
//! protected alias, or the team's approval policy for the kind), and a
//! request's change passes once.

use crate::kernel::error::AppError;
use uuid::Uuid;

/// How a change reaches a registry target: directly (refused where a
/// protected alias or the team's policy asks for a change request), or by
/// an approved change request, applied once (see
/// [`crate::kernel::changes::first_application`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Direct,
    ChangeRequest(Uuid),
    /// A step of a running rollout of an endpoint (started directly, where
    /// no policy asked for a request).
    Rollout(Uuid),
    /// A bandit's recomputed weights for the endpoint (turned on directly
    /// where no policy asked for a request, or by an approved one).
    Bandit(Uuid),
}

impl Route {
    /// The change request that carries the change, if any: recorded in the
    /// change's audit event, where a target's history finds it.
    pub fn request(self) -> Option<Uuid> {
        match self {
            Route::Direct | Route::Rollout(_) | Route::Bandit(_) => None,
            Route::ChangeRequest(id) => Some(id),
        }
    }

    /// The rollout that makes the change, if any.
    pub fn rollout(self) -> Option<Uuid> {
        match self {
            Route::Rollout(id) => Some(id),
            _ => None,
        }
    }

    /// Whether an endpoint's bandit makes the change.
    pub fn by_bandit(self) -> bool {
        matches!(self, Route::Bandit(_))
    }
}

/// Lets the change through on its route, inside its transaction: a direct
/// change only where nothing asks for a request (`protected`, or a policy
/// of the team for `kind` covering the target: a model and maybe its
/// alias, or nothing for an endpoint kind); a request's change only the
/// first time.
pub async fn gate(
    tx: &mut sqlx::PgConnection,
    route: Route,
    team: (&str, Uuid),
    kind: &str,
    target: (Option<Uuid>, Option<&str>),
    protected: bool,
) -> Result<(), AppError> {
    use crate::kernel::changes::{first_application, requires_request};
    let (slug, team_id) = team;
    match route {
        Route::Direct if protected => Err(AppError::Conflict {
            field: None,
            message: format!(
                "alias `{}` is protected: open a change request (POST /api/v1/teams/{slug}/change-requests)",
                target.1.unwrap_or_default()
            ),
        }),
        Route::Direct => {
            if requires_request(tx, team_id, kind, target.0, target.1).await? {
                return Err(AppError::Conflict {
                    field: None,
                    message: format!(
                        "team {slug}'s approval policy covers this change ({kind}): open a change request \
                         (POST /api/v1/teams/{slug}/change-requests)"
                    ),
                });
            }
            Ok(())
        }
        Route::Rollout(_) | Route::Bandit(_) => Ok(()),
        Route::ChangeRequest(id) => {
            if first_application(tx, id).await? {
                Ok(())
            } else {
                Err(AppError::Conflict { field: None, message: format!("Change request {id} was applied already.") })
            }
        }
    }
}
