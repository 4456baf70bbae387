//! A streaming reader for a JSON array of conversations that yields one element's
//! bytes at a time, so a multi-gigabyte export never sits in memory. It tolerates a
//! UTF-8 BOM and, when an element is malformed, reports it and resynchronises on the
//! next conversation object so the rest of the file still imports.

use std::io::{self, BufRead};

/// Top-level keys of a conversation object: a resynchronisation candidate must begin
/// with one of them, which filters out the many `},{` junctions inside a conversation.
const CONVERSATION_KEYS: &[&str] = &[
    "title",
    "create_time",
    "update_time",
    "mapping",
    "moderation_results",
    "current_node",
    "plugin_ids",
    "conversation_id",
    "conversation_template_id",
    "gizmo_id",
    "gizmo_type",
    "is_archived",
    "is_starred",
    "safe_urls",
    "blocked_urls",
    "default_model_slug",
    "conversation_origin",
    "voice",
    "async_status",
    "disabled_tool_ids",
    "is_do_not_remember",
    "memory_scope",
    "sugar_item_id",
    "sugar_item_visible",
    "is_read_only",
    "is_temporary_chat",
    "is_study_mode",
    "atlas_mode_enabled",
    "context_scopes",
    "pinned_time",
    "workspace_id",
    "owner",
    "id",
];

/// One thing read from the array.
#[derive(Debug)]
pub enum Item {
    /// A complete, bracket-balanced element (not yet parsed).
    Element {
        /// 1-based position in the array.
        index: usize,
        /// Byte offset of its first byte.
        offset: u64,
        /// Its bytes, verbatim.
        bytes: Vec<u8>,
    },
    /// An element that could not be delimited.
    Malformed {
        /// 1-based position in the array.
        index: usize,
        /// Byte offset where it started.
        offset: u64,
        /// What went wrong.
        reason: String,
        /// Its id or title, when one could be read from its first bytes.
        hint: Option<String>,
        /// Where reading resumed with the next conversation, if it could.
        resumed_at: Option<u64>,
    },
}

/// Why the stream could not be read as an array at all.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Reading failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// Nothing but whitespace.
    #[error("the file is empty")]
    Empty,
    /// The top-level value is not an array.
    #[error("expected a JSON array of conversations, found {0}")]
    NotAnArray(&'static str),
}

#[derive(Debug)]
enum Phase {
    Start,
    Before,
    After,
    Resync(Failure),
    Done,
}

#[derive(Debug)]
struct Failure {
    index: usize,
    offset: u64,
    reason: String,
    hint: Option<String>,
}

/// The streaming array reader.
pub struct ArrayReader<R> {
    reader: R,
    replay: Vec<u8>,
    replay_pos: usize,
    offset: u64,
    index: usize,
    phase: Phase,
    max_element: usize,
    trailing: Option<String>,
    single_object: bool,
}

enum Scan {
    Complete,
    Mismatch(String),
    Eof,
    TooLarge,
}

/// Bytes that matter outside strings while scanning nested values.
static SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'"' as usize] = true;
    t[b'{' as usize] = true;
    t[b'}' as usize] = true;
    t[b'[' as usize] = true;
    t[b']' as usize] = true;
    t
};

impl<R: BufRead> ArrayReader<R> {
    /// Reads from a buffered reader; elements over `max_element` bytes are rejected.
    pub fn new(reader: R, max_element: usize) -> Self {
        Self {
            reader,
            replay: Vec::new(),
            replay_pos: 0,
            offset: 0,
            index: 0,
            phase: Phase::Start,
            max_element,
            trailing: None,
            single_object: false,
        }
    }

    /// Also accepts a file holding one conversation object instead of an array (the
    /// shape `GET /backend-api/conversation/{id}` returns); it reads as one element.
    pub fn allow_single_object(mut self) -> Self {
        self.single_object = true;
        self
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// A note about what followed the array, if anything but whitespace did.
    pub fn trailing(&self) -> Option<&str> {
        self.trailing.as_deref()
    }

    fn fill(&mut self) -> io::Result<&[u8]> {
        if self.replay_pos < self.replay.len() {
            return Ok(&self.replay[self.replay_pos..]);
        }
        if !self.replay.is_empty() {
            self.replay.clear();
            self.replay_pos = 0;
        }
        loop {
            match self.reader.fill_buf() {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        // Filled above; asking again only returns the buffer (a borrow-checker detour).
        self.reader.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.offset += n as u64;
        if self.replay_pos < self.replay.len() {
            self.replay_pos += n;
        } else {
            self.reader.consume(n);
        }
    }

    /// Pushes bytes back to be read again before the rest of the stream.
    fn unread(&mut self, bytes: &[u8]) {
        let mut rest = bytes.to_vec();
        rest.extend_from_slice(&self.replay[self.replay_pos.min(self.replay.len())..]);
        self.replay = rest;
        self.replay_pos = 0;
        self.offset -= bytes.len() as u64;
    }

    /// The next byte that is not whitespace, without consuming it.
    fn peek_significant(&mut self) -> io::Result<Option<u8>> {
        loop {
            let buf = self.fill()?;
            if buf.is_empty() {
                return Ok(None);
            }
            match buf.iter().position(|b| !b.is_ascii_whitespace()) {
                Some(i) => {
                    let b = buf[i];
                    self.consume(i);
                    return Ok(Some(b));
                }
                None => {
                    let n = buf.len();
                    self.consume(n);
                }
            }
        }
    }

    /// Skips a UTF-8 BOM at the very start.
    fn skip_bom(&mut self) -> io::Result<()> {
        let buf = self.fill()?;
        if buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
            self.consume(3);
        }
        Ok(())
    }

    /// Scans one JSON value starting at the current byte into `out`.
    fn scan_value(&mut self, out: &mut Vec<u8>) -> io::Result<Scan> {
        let mut stack: Vec<u8> = Vec::new();
        let mut in_string = false;
        let mut escape = false;
        let mut scalar = false;
        let mut started = false;
        loop {
            if out.len() > self.max_element {
                return Ok(Scan::TooLarge);
            }
            let base = self.offset;
            let buf = self.fill()?;
            if buf.is_empty() {
                // A bare scalar may end at EOF; anything open is truncated.
                return Ok(if scalar && !in_string {
                    Scan::Complete
                } else {
                    Scan::Eof
                });
            }
            let mut i = 0;
            let mut end: Option<(usize, Scan)> = None;
            if !started {
                started = true;
                match buf[0] {
                    b'{' => stack.push(b'}'),
                    b'[' => stack.push(b']'),
                    b'"' => in_string = true,
                    _ => scalar = true,
                }
                i = 1;
            }
            while i < buf.len() {
                if escape {
                    escape = false;
                    i += 1;
                    continue;
                }
                if in_string {
                    match memchr::memchr2(b'"', b'\\', &buf[i..]) {
                        None => i = buf.len(),
                        Some(j) => {
                            i += j;
                            if buf[i] == b'\\' {
                                escape = true;
                            } else {
                                in_string = false;
                                if stack.is_empty() {
                                    end = Some((i + 1, Scan::Complete));
                                    break;
                                }
                            }
                            i += 1;
                        }
                    }
                    continue;
                }
                if scalar {
                    match buf[i..].iter().position(|&b| {
                        b == b',' || b == b']' || b == b'}' || b.is_ascii_whitespace()
                    }) {
                        Some(j) => {
                            end = Some((i + j, Scan::Complete));
                            break;
                        }
                        None => {
                            i = buf.len();
                            continue;
                        }
                    }
                }
                match buf[i..].iter().position(|&b| SPECIAL[b as usize]) {
                    None => i = buf.len(),
                    Some(j) => {
                        i += j;
                        let b = buf[i];
                        match b {
                            b'"' => in_string = true,
                            b'{' => stack.push(b'}'),
                            b'[' => stack.push(b']'),
                            _ => {
                                if stack.last() != Some(&b) {
                                    end = Some((
                                        i,
                                        Scan::Mismatch(format!(
                                            "unexpected `{}` at byte {}",
                                            b as char,
                                            base + i as u64
                                        )),
                                    ));
                                    break;
                                }
                                stack.pop();
                                if stack.is_empty() {
                                    end = Some((i + 1, Scan::Complete));
                                    break;
                                }
                            }
                        }
                        i += 1;
                    }
                }
            }
            match end {
                Some((n, scan)) => {
                    out.extend_from_slice(&buf[..n]);
                    self.consume(n);
                    if out.len() > self.max_element {
                        return Ok(Scan::TooLarge);
                    }
                    return Ok(scan);
                }
                None => {
                    let n = buf.len();
                    out.extend_from_slice(&buf[..n]);
                    self.consume(n);
                }
            }
        }
    }

    /// Reads the next item; `Ok(None)` at the end of the array.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Item>, StreamError> {
        loop {
            match std::mem::replace(&mut self.phase, Phase::Done) {
                Phase::Done => return Ok(None),
                Phase::Start => {
                    self.skip_bom()?;
                    match self.peek_significant()? {
                        None => return Err(StreamError::Empty),
                        Some(b'[') => {
                            self.consume(1);
                            self.phase = Phase::Before;
                        }
                        Some(b'{') if self.single_object => {
                            self.index = 1;
                            let offset = self.offset;
                            let mut bytes = Vec::new();
                            let item = match self.scan_value(&mut bytes)? {
                                Scan::Complete => Item::Element {
                                    index: 1,
                                    offset,
                                    bytes,
                                },
                                Scan::Eof | Scan::Mismatch(_) => Item::Malformed {
                                    index: 1,
                                    offset,
                                    reason: "the conversation object is incomplete or malformed"
                                        .into(),
                                    hint: hint_of(&bytes),
                                    resumed_at: None,
                                },
                                Scan::TooLarge => Item::Malformed {
                                    index: 1,
                                    offset,
                                    reason: format!(
                                        "conversation is larger than {} MiB",
                                        self.max_element >> 20
                                    ),
                                    hint: hint_of(&bytes),
                                    resumed_at: None,
                                },
                            };
                            self.finish()?;
                            return Ok(Some(item));
                        }
                        Some(b'{') => return Err(StreamError::NotAnArray("an object")),
                        Some(b'"') => return Err(StreamError::NotAnArray("a string")),
                        Some(_) => {
                            return Err(StreamError::NotAnArray("something that is not JSON"));
                        }
                    }
                }
                Phase::Before => match self.peek_significant()? {
                    None => {
                        return Ok(Some(self.truncated(
                            self.index + 1,
                            self.offset,
                            None,
                            "the file ends before the array is closed",
                        )));
                    }
                    Some(b']') if self.index == 0 => {
                        self.consume(1);
                        self.finish()?;
                        return Ok(None);
                    }
                    Some(b',') | Some(b']') => {
                        // `[,` `,,` or `,]`: a hole; skip the stray byte and go on.
                        self.consume(1);
                        self.phase = Phase::Before;
                        if self.peek_significant()? == Some(b']') && self.index > 0 {
                            self.consume(1);
                            self.finish()?;
                            return Ok(None);
                        }
                    }
                    Some(_) => {
                        self.index += 1;
                        let offset = self.offset;
                        let mut bytes = Vec::new();
                        match self.scan_value(&mut bytes)? {
                            Scan::Complete => {
                                self.phase = Phase::After;
                                return Ok(Some(Item::Element {
                                    index: self.index,
                                    offset,
                                    bytes,
                                }));
                            }
                            Scan::Eof => {
                                let hint = hint_of(&bytes);
                                return Ok(Some(self.truncated(
                                    self.index,
                                    offset,
                                    hint,
                                    "the file ends in the middle of this conversation (an incomplete download?)",
                                )));
                            }
                            Scan::Mismatch(reason) => {
                                self.begin_resync(offset, &bytes, reason);
                            }
                            Scan::TooLarge => {
                                let reason = format!(
                                    "conversation is larger than {} MiB",
                                    self.max_element >> 20
                                );
                                self.begin_resync(offset, &bytes, reason);
                            }
                        }
                    }
                },
                Phase::After => {
                    match self.peek_significant()? {
                        None => {
                            self.trailing = Some("the file ends before the array is closed (an incomplete download?)".into());
                            return Ok(None);
                        }
                        Some(b',') => {
                            self.consume(1);
                            self.phase = Phase::Before;
                        }
                        Some(b']') => {
                            self.consume(1);
                            self.finish()?;
                            return Ok(None);
                        }
                        // A missing comma between two objects: read on.
                        Some(b'{') => self.phase = Phase::Before,
                        Some(b) => {
                            let failure = Failure {
                                index: self.index + 1,
                                offset: self.offset,
                                reason: format!("unexpected `{}` between conversations", b as char),
                                hint: None,
                            };
                            self.consume(1);
                            self.phase = Phase::Resync(failure);
                        }
                    }
                }
                Phase::Resync(failure) => {
                    match self.find_candidate()? {
                        None => {
                            return Ok(Some(Item::Malformed {
                                index: failure.index,
                                offset: failure.offset,
                                reason: failure.reason,
                                hint: failure.hint,
                                resumed_at: None,
                            }));
                        }
                        Some(start) => {
                            let mut bytes = Vec::new();
                            match self.scan_value(&mut bytes)? {
                                Scan::Complete if looks_like_conversation(&bytes) => {
                                    // Report the failure now; the candidate is read
                                    // again as a normal element next.
                                    self.unread(&bytes);
                                    self.phase = Phase::Before;
                                    return Ok(Some(Item::Malformed {
                                        index: failure.index,
                                        offset: failure.offset,
                                        reason: failure.reason,
                                        hint: failure.hint,
                                        resumed_at: Some(start),
                                    }));
                                }
                                _ => {
                                    // Not a conversation: look again just past its `{`.
                                    if bytes.len() > 1 {
                                        self.unread(&bytes[1..]);
                                    }
                                    self.phase = Phase::Resync(failure);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    fn truncated(&mut self, index: usize, offset: u64, hint: Option<String>, reason: &str) -> Item {
        self.phase = Phase::Done;
        Item::Malformed {
            index,
            offset,
            reason: reason.to_owned(),
            hint,
            resumed_at: None,
        }
    }

    fn begin_resync(&mut self, offset: u64, bytes: &[u8], reason: String) {
        let failure = Failure {
            index: self.index,
            offset,
            reason,
            hint: hint_of(bytes),
        };
        // The next conversation may already be inside what was read (a missing
        // closing bracket swallows what follows), so search it again.
        if bytes.len() > 1 {
            self.unread(&bytes[1..]);
        }
        self.phase = Phase::Resync(failure);
    }

    /// Skips to the next `,` `{` `"<conversation key>"` sequence, leaving the reader
    /// at the `{`. Returns its offset, or `None` at the end of the stream.
    fn find_candidate(&mut self) -> io::Result<Option<u64>> {
        loop {
            let buf = self.fill()?;
            if buf.is_empty() {
                return Ok(None);
            }
            let Some(comma) = memchr::memchr(b',', buf) else {
                let n = buf.len();
                self.consume(n);
                continue;
            };
            self.consume(comma + 1);
            match self.peek_significant()? {
                None => return Ok(None),
                Some(b'{') => {
                    let start = self.offset;
                    if self.first_key_is_conversation_key()? {
                        return Ok(Some(start));
                    }
                }
                Some(_) => {}
            }
        }
    }

    /// Looks (without consuming) at the first key after the `{` at the current position.
    fn first_key_is_conversation_key(&mut self) -> io::Result<bool> {
        // Gather a small look-ahead window, possibly across buffer refills.
        let mut window = Vec::new();
        loop {
            let buf = self.fill()?;
            if buf.is_empty() {
                break;
            }
            let take = buf.len().min(96 - window.len());
            window.extend_from_slice(&buf[..take]);
            let n = take;
            self.consume(n);
            if window.len() >= 96 {
                break;
            }
        }
        self.unread(&window.clone());
        let text = String::from_utf8_lossy(&window);
        let rest = text.trim_start_matches('{').trim_start();
        let Some(rest) = rest.strip_prefix('"') else {
            return Ok(false);
        };
        let key = rest.split('"').next().unwrap_or("");
        Ok(CONVERSATION_KEYS.contains(&key))
    }

    fn finish(&mut self) -> io::Result<()> {
        self.phase = Phase::Done;
        if let Some(b) = self.peek_significant()? {
            self.trailing = Some(format!(
                "unexpected `{}` after the end of the array (ignored)",
                b as char
            ));
        }
        Ok(())
    }
}

/// Whether bytes parse as an object carrying `mapping` or an id.
fn looks_like_conversation(bytes: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe {
        mapping: Option<serde::de::IgnoredAny>,
        id: Option<serde::de::IgnoredAny>,
        conversation_id: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Probe>(bytes)
        .is_ok_and(|p| p.mapping.is_some() || p.id.is_some() || p.conversation_id.is_some())
}

/// An id or title read from the first bytes of a (possibly broken) conversation.
pub fn hint_of(bytes: &[u8]) -> Option<String> {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(64 * 1024)]);
    // The earliest of these keys belongs to the conversation itself; later ones may
    // belong to whatever a broken element swallowed.
    let mut found: Vec<(usize, &str)> = ["\"conversation_id\"", "\"title\"", "\"id\""]
        .into_iter()
        .filter_map(|k| head.find(k).map(|p| (p, k)))
        .collect();
    found.sort();
    found.into_iter().find_map(|(pos, key)| {
        let rest = head[pos + key.len()..]
            .trim_start()
            .strip_prefix(':')?
            .trim_start();
        let v = rest.strip_prefix('"')?;
        let value: String = v.chars().take_while(|&c| c != '"').take(80).collect();
        (!value.is_empty()).then(|| format!("{} {value:?}", key.trim_matches('"')))
    })
}

#[cfg(test)]
mod tests;
