//! convos: a lossless, always-current local archive of ChatGPT conversations.

pub mod archive;
#[cfg(feature = "browser")]
pub mod browser;
pub mod config;
pub mod logging;
pub mod model;
pub mod render;
pub mod ingest;
