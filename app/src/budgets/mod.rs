//! Budgets: a team's monthly budget over what its training jobs and
//! endpoints cost (UTC months). Crossing its alert percentage, and then
//! 100 %, raises an audit event once a month (`budget.crossed`, delivered
//! by webhooks) and a banner on the team's pages.

#[cfg(feature = "ssr")]
pub mod check;
#[cfg(feature = "ssr")]
pub mod domain;
pub mod pages;
pub mod rpc;
pub mod types;
