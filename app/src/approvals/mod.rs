//! Approvals: change requests that a team's policy puts in front of
//! protected registry changes (alias moves and deletes, version decisions,
//! protecting aliases), one state machine for them, and the worker that
//! applies approved ones exactly once.

#[cfg(feature = "ssr")]
pub mod apply;
#[cfg(feature = "ssr")]
pub mod demo;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod policies;
#[cfg(feature = "ssr")]
pub mod requests;
pub mod rpc;
pub mod types;
