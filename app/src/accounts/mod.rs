//! Accounts: first-run setup, sign-in and sign-out, one's own password and
//! sessions, and (for site admins) the user list.

#[cfg(feature = "ssr")]
pub mod domain;
pub mod pages;
pub mod rpc;
pub mod types;
#[cfg(feature = "ssr")]
pub mod users;
