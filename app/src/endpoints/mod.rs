//! Endpoints: a team's deployed model versions as production variants that
//! share traffic by weight, an optional shadow variant, and the gateway that
//! routes invocations to them (`invoke`).

#[cfg(feature = "ssr")]
pub mod domain;
#[cfg(feature = "ssr")]
pub mod invoke;
pub mod pages;
pub mod rpc;
pub mod types;
