//! convos: a lossless, always-current local archive of ChatGPT conversations.

#[cfg(feature = "browser")]
pub mod browser;
