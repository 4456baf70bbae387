//! convos: a lossless, always-current local archive of ChatGPT conversations.

pub mod archive;
#[cfg(feature = "browser")]
pub mod browser;
pub mod model;
