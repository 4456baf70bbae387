//! Text for people: conversation content with its control characters made visible.
//!
//! Titles, messages, file names and server answers are hostile until escaped: an ESC in a
//! title (`ESC ] 52 ;` writes the clipboard, `ESC [ … H` moves the cursor) would be run by
//! the terminal that shows it. Human output replaces every control character (Unicode
//! `Cc`: C0, DEL, C1) with a visible stand-in: the C0 control pictures (`␛` for ESC,
//! `␇` for BEL…), `␡` for DEL and `�` for C1. JSON output needs none of this (serde
//! escapes C0 in strings) and stays exact.

use std::borrow::Cow;
use std::io::{self, Write};

/// The visible stand-in for a control character.
fn stand_in(c: char) -> char {
    match c as u32 {
        n @ 0..=0x1f => char::from_u32(0x2400 + n).unwrap_or('\u{fffd}'),
        0x7f => '\u{2421}',
        _ => '\u{fffd}',
    }
}

/// Text for a document (Markdown, a multi-line report): keeps `\n` and `\t`, turns
/// `\r\n` into `\n`, and replaces every other control character with a stand-in.
pub fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\t' => out.push(c),
            '\r' if chars.peek() == Some(&'\n') => {}
            c if c.is_control() => out.push(stand_in(c)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Text for one line (a title in a listing, a log value): line breaks and tabs become
/// spaces, every other control character a stand-in.
pub fn line(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| match c {
                '\n' | '\r' | '\t' => ' ',
                c if c.is_control() => stand_in(c),
                c => c,
            })
            .collect(),
    )
}

/// A writer that applies [`clean`] to a byte stream, for human output whose pieces are
/// written by many hands (reports, the daemon's forwarded output). Invalid UTF-8 passes
/// through untouched; a C1 control (`0xC2 0x80..=0x9F`) or `\r\n` split across two
/// writes is still recognised. Call [`CleanWriter::finish`] at the end.
pub struct CleanWriter<W: Write> {
    inner: W,
    /// Off for output that must stay exact (JSON): bytes pass through.
    active: bool,
    /// A `\r` or `0xC2` waiting for the next byte to decide what it is.
    held: Option<u8>,
    buf: Vec<u8>,
}

impl<W: Write> CleanWriter<W> {
    /// Wraps `inner`, cleaning when `active`.
    pub fn new(inner: W, active: bool) -> Self {
        Self {
            inner,
            active,
            held: None,
            buf: Vec::new(),
        }
    }

    fn push_stand_in(&mut self, c: u32) {
        let mut tmp = [0u8; 4];
        let c = char::from_u32(c).map_or('\u{fffd}', stand_in);
        self.buf
            .extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
    }

    /// Resolves a held byte given the byte after it (`None` at the end of the stream);
    /// returns whether `next` was consumed.
    fn resolve(&mut self, next: Option<u8>) -> bool {
        match (self.held.take(), next) {
            (Some(b'\r'), Some(b'\n')) => {
                self.buf.push(b'\n');
                true
            }
            (Some(b'\r'), _) => {
                self.push_stand_in(0x0d);
                false
            }
            (Some(0xc2), Some(n @ 0x80..=0x9f)) => {
                self.push_stand_in(u32::from(n));
                true
            }
            (Some(b), _) => {
                self.buf.push(b);
                false
            }
            (None, _) => false,
        }
    }
}

/// Whether a byte may need replacing (or the next byte to decide).
fn special(b: u8) -> bool {
    (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7f || b == 0xc2
}

impl<W: Write> Write for CleanWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if !self.active {
            return self.inner.write(data);
        }
        if self.held.is_none() && !data.iter().copied().any(special) {
            self.inner.write_all(data)?;
            return Ok(data.len());
        }
        let mut rest = data;
        if self.held.is_some()
            && let Some((&first, tail)) = rest.split_first()
            && self.resolve(Some(first))
        {
            rest = tail;
        }
        let mut i = 0;
        while i < rest.len() {
            let b = rest[i];
            match b {
                b'\r' | 0xc2 => {
                    self.held = Some(b);
                    if let Some(&next) = rest.get(i + 1)
                        && self.resolve(Some(next))
                    {
                        i += 1;
                    }
                }
                b'\n' | b'\t' => self.buf.push(b),
                0x00..=0x1f | 0x7f => self.push_stand_in(u32::from(b)),
                _ => self.buf.push(b),
            }
            i += 1;
        }
        self.flush_buf()?;
        Ok(data.len())
    }

    /// Flushes what is decided; a byte held for the next one stays held (see `finish`).
    fn flush(&mut self) -> io::Result<()> {
        self.flush_buf()?;
        self.inner.flush()
    }
}

impl<W: Write> CleanWriter<W> {
    fn flush_buf(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.inner.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Writes out a byte still held at the end of the stream and flushes.
    pub fn finish(mut self) -> io::Result<W> {
        self.resolve(None);
        self.flush()?;
        Ok(self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVIL: &str = "a\u{1b}]52;c;ZXZpbA==\u{7}b\u{1b}[2J\u{1b}[1;1Hc\u{9b}31md\u{7f}";

    #[test]
    fn clean_makes_controls_visible_and_keeps_lines() {
        assert_eq!(clean(EVIL), "a␛]52;c;ZXZpbA==␇b␛[2J␛[1;1Hc\u{fffd}31md␡");
        assert_eq!(clean("one\r\ntwo\tthree\rfour\n"), "one\ntwo\tthree␍four\n");
        assert!(matches!(clean("plain\ttext\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn line_keeps_everything_on_one_line() {
        assert_eq!(line("a\nb\r\nc\td\u{1b}[0m"), "a b  c d␛[0m");
        assert!(matches!(line("plain é ✓"), Cow::Borrowed(_)));
    }

    /// Writes `text` through a [`CleanWriter`] in pieces of `size` bytes.
    fn through_writer(text: &[u8], size: usize) -> Vec<u8> {
        let mut w = CleanWriter::new(Vec::new(), true);
        for piece in text.chunks(size) {
            w.write_all(piece).expect("write");
        }
        w.finish().expect("finish")
    }

    #[test]
    fn the_writer_equals_clean_however_the_stream_is_split() {
        let text = format!("{EVIL}\r\nline é°\r\u{85}end\r");
        let expected = clean(&text).into_owned();
        for size in 1..=text.len() {
            assert_eq!(
                String::from_utf8(through_writer(text.as_bytes(), size)).expect("utf-8"),
                expected,
                "pieces of {size}"
            );
        }
    }

    #[test]
    fn the_writer_passes_invalid_utf8_unchanged() {
        let odd = [0xff, 0xc2, 0x41, 0xc2];
        assert_eq!(through_writer(&odd, 1), odd);
    }

    #[test]
    fn an_inactive_writer_passes_everything() {
        let mut w = CleanWriter::new(Vec::new(), false);
        w.write_all(EVIL.as_bytes()).expect("write");
        assert_eq!(w.finish().expect("finish"), EVIL.as_bytes());
    }
}
