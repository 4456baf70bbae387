//! Reading the archive: the Export schema v1 view, JSON and Markdown output.

pub mod json;
pub mod markdown;
pub mod view;
