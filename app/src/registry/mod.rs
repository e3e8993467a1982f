//! The model registry: models, their numbered immutable versions registered
//! from training jobs, their lineage, and aliases naming versions.

#[cfg(feature = "ssr")]
pub mod aliases;
#[cfg(feature = "ssr")]
pub mod card;
#[cfg(feature = "ssr")]
pub mod compare;
#[cfg(feature = "ssr")]
pub mod demo;
#[cfg(feature = "ssr")]
pub mod domain;
#[cfg(feature = "ssr")]
pub mod filter;
#[cfg(feature = "ssr")]
pub mod gate;
#[cfg(feature = "ssr")]
pub mod history;
#[cfg(feature = "ssr")]
pub mod lineage;
#[cfg(feature = "ssr")]
pub mod mlflow;
#[cfg(feature = "ssr")]
pub mod packages;
pub mod pages;
pub mod rpc;
#[cfg(feature = "ssr")]
pub mod search;
pub mod types;
#[cfg(feature = "ssr")]
pub mod versions;
