//! Reading the archive: the Export schema v1 view, JSON and Markdown output, safe file
//! names for exports, and text made safe for a terminal.

pub mod filename;
pub mod json;
pub mod markdown;
pub mod terminal;
pub mod view;
