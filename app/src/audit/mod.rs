//! The audit log as users see it: the list with its filters, the chain check
//! (`verify`) and anchors. Events are written by [`crate::kernel::audit`].

#[cfg(feature = "ssr")]
pub mod domain;
pub mod pages;
pub mod rpc;
pub mod types;
