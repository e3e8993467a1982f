//! The model registry: models, their numbered immutable versions registered
//! from training jobs, their lineage, and aliases naming versions.

#[cfg(feature = "ssr")]
pub mod aliases;
#[cfg(feature = "ssr")]
pub mod demo;
#[cfg(feature = "ssr")]
pub mod domain;
pub mod pages;
pub mod rpc;
pub mod types;
#[cfg(feature = "ssr")]
pub mod versions;
