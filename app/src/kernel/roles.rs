//! Roles and the one authorization rule every REST handler and server
//! function goes through before it touches anything.

use crate::kernel::error::AppError;
use serde::{Deserialize, Serialize};

/// A member's role in a team, ordered by what it allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ssr", derive(sqlx::Type, utoipa::ToSchema))]
#[cfg_attr(feature = "ssr", sqlx(type_name = "team_role", rename_all = "lowercase"))]
pub enum Role {
    Viewer,
    Member,
    Approver,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Member, Role::Approver, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim())
            .ok_or_else(|| "Choose one of: viewer, member, approver, admin.".to_owned())
    }
}

/// What a caller wants to do with a team or something it owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// See the team, its members and its audit trail.
    ReadTeam,
    /// Rename the team.
    UpdateTeam,
    /// Add, remove and change the roles of members.
    ManageMembers,
    /// Create or edit the team's work (datasets, and later jobs and models).
    Contribute,
    /// Archive what the team owns.
    Archive,
    /// Decide on what needs a reviewer (a model version's status).
    Approve,
}

impl Action {
    /// The lowest role allowed to take this action.
    pub fn min_role(self) -> Role {
        match self {
            Action::ReadTeam => Role::Viewer,
            Action::Contribute => Role::Member,
            Action::Approve => Role::Approver,
            Action::UpdateTeam | Action::ManageMembers | Action::Archive => Role::Admin,
        }
    }
}

/// What a caller wants to do that belongs to no team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteAction {
    /// List and create accounts.
    ManageUsers,
    /// Edit the instance price table.
    ManagePrices,
    /// Choose the IAM role a team's SageMaker jobs run as: whoever picks the
    /// role picks what the team's code may do in AWS.
    GrantIamRoles,
}

/// Who is calling: the facts the authorization rule needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub is_site_admin: bool,
}

/// Decides whether a caller with `role` in the owning team (or none) may take
/// `action`. Non-members learn nothing: they get `NotFound`, not `Forbidden`.
pub fn authorize(principal: &Principal, action: Action, role: Option<Role>) -> Result<(), AppError> {
    if principal.is_site_admin {
        return Ok(());
    }
    match role {
        None => Err(AppError::NotFound("Team".into())),
        Some(role) if role >= action.min_role() => Ok(()),
        Some(_) => Err(AppError::Forbidden),
    }
}

/// [`authorize`] for a resource owned by a team: outsiders are told the
/// resource (`what`, e.g. "Dataset") does not exist.
pub fn authorize_owned(principal: &Principal, action: Action, role: Option<Role>, what: &str) -> Result<(), AppError> {
    authorize(principal, action, role).map_err(|e| match e {
        AppError::NotFound(_) => AppError::NotFound(what.to_owned()),
        other => other,
    })
}

/// Decides site-wide actions: only site admins may take them.
pub fn authorize_site(principal: &Principal, action: SiteAction) -> Result<(), AppError> {
    match action {
        SiteAction::ManageUsers | SiteAction::ManagePrices | SiteAction::GrantIamRoles if principal.is_site_admin => {
            Ok(())
        }
        SiteAction::ManageUsers | SiteAction::ManagePrices | SiteAction::GrantIamRoles => Err(AppError::Forbidden),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Viewer < Role::Member && Role::Member < Role::Approver && Role::Approver < Role::Admin);
        assert_eq!("approver".parse::<Role>(), Ok(Role::Approver));
        assert!("owner".parse::<Role>().is_err());
    }

    #[test]
    fn rule_table() {
        let user = Principal { is_site_admin: false };
        let site = Principal { is_site_admin: true };
        assert_eq!(authorize(&user, Action::ReadTeam, None), Err(AppError::NotFound("Team".into())));
        assert_eq!(authorize(&user, Action::ReadTeam, Some(Role::Viewer)), Ok(()));
        assert_eq!(authorize(&user, Action::ManageMembers, Some(Role::Approver)), Err(AppError::Forbidden));
        assert_eq!(authorize(&user, Action::ManageMembers, Some(Role::Admin)), Ok(()));
        assert_eq!(authorize(&site, Action::ManageMembers, None), Ok(()));
        assert_eq!(authorize_site(&user, SiteAction::ManageUsers), Err(AppError::Forbidden));
        assert_eq!(authorize_site(&site, SiteAction::ManageUsers), Ok(()));
    }
}
