//! Export schema v1 as JSON: one object per conversation (`show --format json`), a
//! streamed array (`export --format json`) or one object per line (`jsonl`).

use super::view::ConversationView;
use std::io::{self, Write};

/// Writes one conversation as pretty JSON followed by a newline.
pub fn write_pretty(out: &mut dyn Write, view: &ConversationView) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, view)?;
    out.write_all(b"\n")
}

/// Writes one conversation as a single line of JSON.
pub fn write_line(out: &mut dyn Write, view: &ConversationView) -> io::Result<()> {
    serde_json::to_writer(&mut *out, view)?;
    out.write_all(b"\n")
}

/// Streams a JSON array one element at a time, so exports never hold every
/// conversation in memory.
pub struct ArrayWriter<'w> {
    out: &'w mut dyn Write,
    first: bool,
}

impl<'w> ArrayWriter<'w> {
    /// Opens the array.
    pub fn new(out: &'w mut dyn Write) -> io::Result<Self> {
        out.write_all(b"[")?;
        Ok(Self { out, first: true })
    }

    /// Writes one element.
    pub fn push(&mut self, view: &ConversationView) -> io::Result<()> {
        self.out
            .write_all(if self.first { b"\n" } else { b",\n" })?;
        self.first = false;
        serde_json::to_writer(&mut *self.out, view)?;
        Ok(())
    }

    /// Closes the array.
    pub fn finish(self) -> io::Result<()> {
        self.out
            .write_all(if self.first { b"]\n" } else { b"\n]\n" })
    }
}
