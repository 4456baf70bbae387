//! Markdown rendering (work in progress).
