//! Registry pages: the team's models (search, new model), a model's page
//! (aliases, versions sortable by metric, registering an artifact), a
//! version's page (lineage graph, metrics, parameters, artifact, status),
//! an alias's page (what it names, its history from the audit log), the
//! team-wide version search, the comparison of 2 to 5 versions, and the
//! form that registers a completed training job, shown on the job's page.

pub mod alias;
pub mod card;
pub mod compare;
pub mod history;
pub mod import;
pub mod lineage;
pub mod model;
pub mod models;
pub mod register;
pub mod search;
pub mod version;

use crate::registry::types::ModelVersionStatus;

/// The pill class of a version's status.
pub(crate) fn status_class(status: ModelVersionStatus) -> &'static str {
    match status {
        ModelVersionStatus::Approved => "pill ok",
        ModelVersionStatus::Rejected => "pill danger",
        ModelVersionStatus::Archived => "pill",
        ModelVersionStatus::PendingManualApproval => "pill busy",
    }
}
