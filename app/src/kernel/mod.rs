//! The kernel: what every capability shares and nothing else. It imports no
//! capability (checked by `scripts/check-imports.sh`).
//!
//! - [`error`]: the one error type, with its HTTP status and problem+json body
//! - [`roles`]: team roles and the one authorization rule
//! - [`page`]: keyset pagination
//! - [`validate`]: validated newtypes and field checks
//! - [`chart`]: line charts of metric values by step
//! - [`codec`]: the output encoding of every server function
//! - [`form`]: forms that call a server function (`FormAction`, `Form`)
//! - [`format`]: how numbers, bytes, money and query values are written
//! - [`widgets`]: the shared UI pieces (page header, form errors, times, buttons)
//! - `state`, `context`, `audit`, `cache` (server only): the application
//!   state, the request context with session and token authentication, the
//!   audit recorder every mutation writes through, and the in-process cache
//!   of hot reads that database notifications keep coherent across processes,
//!   and (`changes`) what capabilities share about change requests: kinds,
//!   whether a team's policy covers a target, and once-only application

pub mod chart;
pub mod codec;
pub mod error;
pub mod form;
pub mod format;
pub mod page;
pub mod roles;
pub mod validate;
pub mod widgets;

#[cfg(feature = "ssr")]
pub mod audit;
#[cfg(feature = "ssr")]
pub mod cache;
#[cfg(feature = "ssr")]
pub mod changes;
#[cfg(feature = "ssr")]
pub mod context;
#[cfg(feature = "ssr")]
pub mod state;
