//! Personal API tokens for scripts and CI: shown once, stored as a SHA-256
//! hash, listed by prefix, revocable, optionally expiring.

#[cfg(feature = "ssr")]
pub mod domain;
pub mod pages;
pub mod rpc;
pub mod types;
