//! Reading the archive: the Export schema v1 view, JSON and Markdown output, and text
//! made safe for a terminal.

pub mod json;
pub mod markdown;
pub mod terminal;
pub mod view;
