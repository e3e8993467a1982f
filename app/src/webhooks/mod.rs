//! Webhooks: per-team endpoints that receive every event of the team they
//! subscribe to (the audit log's actions), signed by the Standard Webhooks
//! scheme, delivered at least once from an outbox with retries, with a
//! delivery log per endpoint.

#[cfg(feature = "ssr")]
pub mod deliver;
#[cfg(feature = "ssr")]
pub mod domain;
pub mod pages;
pub mod rpc;
pub mod types;
