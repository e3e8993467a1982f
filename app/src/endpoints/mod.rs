//! Endpoints: a team's deployed model versions as production variants that
//! share traffic by weight, an optional shadow variant, and the gateway that
//! routes invocations to them (`invoke`).

#[cfg(feature = "ssr")]
pub mod bandit;
#[cfg(feature = "ssr")]
pub mod capture;
#[cfg(feature = "ssr")]
pub mod cost;
#[cfg(feature = "ssr")]
pub mod demo;
#[cfg(feature = "ssr")]
pub mod deploy;
#[cfg(feature = "ssr")]
pub mod domain;
#[cfg(feature = "ssr")]
pub mod events;
#[cfg(feature = "ssr")]
pub mod experiment;
#[cfg(feature = "ssr")]
pub mod faults;
#[cfg(feature = "ssr")]
pub mod health;
#[cfg(feature = "ssr")]
pub mod invoke;
#[cfg(feature = "ssr")]
pub mod keys;
#[cfg(feature = "ssr")]
pub mod metrics;
#[cfg(feature = "ssr")]
pub mod outcomes;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod rollouts;
#[cfg(feature = "ssr")]
pub mod routes;
pub mod rpc;
#[cfg(feature = "ssr")]
pub mod sample;
#[cfg(feature = "ssr")]
pub mod stats;
#[cfg(feature = "ssr")]
pub mod thompson;
pub mod types;
