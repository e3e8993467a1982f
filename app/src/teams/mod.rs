//! Teams and their members: creating teams, renaming them, and managing who
//! belongs with which role. The last admin of a team always stays.

#[cfg(feature = "ssr")]
pub mod domain;
pub mod pages;
pub mod rpc;
pub mod types;
