//! Datasets and their versions: registering data, immutable versions with
//! manifests (scans), drift checks, browser uploads and previews.

#[cfg(feature = "ssr")]
pub mod domain;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod preview;
pub mod rpc;
pub mod types;
#[cfg(feature = "ssr")]
pub mod upload;
pub mod uploader;
#[cfg(feature = "ssr")]
pub mod versions;
