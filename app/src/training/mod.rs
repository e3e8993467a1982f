//! Training jobs: launched by members on dataset versions of their team, run
//! by SageMaker or the local runner, watched through status, logs and metrics,
//! stopped, cloned and costed; the price table and the demo.

#[cfg(feature = "ssr")]
pub mod demo;
#[cfg(feature = "ssr")]
pub mod engine;
#[cfg(feature = "ssr")]
pub mod jobs;
#[cfg(feature = "ssr")]
pub mod launch;
#[cfg(feature = "ssr")]
pub mod logs;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod prices;
pub mod rpc;
pub mod types;
#[cfg(feature = "ssr")]
pub mod validate;
