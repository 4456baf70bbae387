//! A streaming reader for a JSON array of conversations that yields one element's
//! bytes at a time, so a multi-gigabyte export never sits in memory. It tolerates a
//! UTF-8 BOM and, when an element is malformed, reports it and resynchronises on the
//! next conversation object so the rest of the file still imports.
//!
//! Linear on any input: resynchronising is one forward pass (see `Resync`), so a
//! byte is examined a small, fixed number of times whatever the file holds.

use std::collections::VecDeque;
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

/// What a phase of [`ArrayReader::next`] produced.
enum Next {
    /// An item, or the end (`None`).
    Yield(Option<Item>),
    /// Nothing yet: go on with the phase set.
    Again,
}

#[derive(Debug)]
enum Phase {
    Start,
    Before,
    After,
    Resync(Box<Resync>),
    Done,
}

#[derive(Debug)]
struct Failure {
    index: usize,
    offset: u64,
    reason: String,
    hint: Option<String>,
}

/// A frame on a resynchronisation stack that a candidate opened (its closer is or-ed
/// with this bit).
const MARK: u8 = 0x80;
/// How far a candidate pattern (`,` `{` `"key"`) is looked for around a byte.
const LOOK: usize = 128;

/// A candidate conversation still open during resynchronisation.
#[derive(Debug)]
struct Cand {
    /// Offset of its `{`.
    start: u64,
    /// The stack's length with its frame on top.
    depth: usize,
    /// It has a top-level `mapping` key: it is shaped like a conversation.
    mapping: bool,
}

/// Resynchronisation after a malformed element, in one forward pass.
///
/// A candidate is a `,` `{` `"<conversation key>"` sequence. What follows a failure is
/// scanned once, tracking every candidate at the same time: they nest, so one bracket
/// stack serves all (a candidate completes when its frame closes, and a mismatched
/// bracket fails all that are open). A candidate seen inside a string of the open ones
/// proves those are not JSON (`"key"` after a closing quote is a syntax error), so they
/// fail there and tracking starts over at the new one: one string state serves all.
///
/// The damaged stretch (what the failed element swallowed) is mined for conversations:
/// each outermost completed candidate with a `mapping` key is one, read verbatim.
/// Reading returns to normal after the first such conversation that ends past the
/// damage, so no byte is scanned more than twice, whatever the input.
#[derive(Debug)]
struct Resync {
    /// The failure, until it is reported (with the first conversation recovered).
    failure: Option<Failure>,
    /// The first offset past the damaged stretch.
    damaged_until: u64,
    /// Bytes from `base` on, kept from the oldest still-needed offset.
    win: Vec<u8>,
    base: u64,
    /// The next byte of `win` to examine.
    pos: usize,
    in_string: bool,
    escape: bool,
    /// Where the open string started, in `win`.
    str_start: usize,
    /// Closers of the frames open since the outermost candidate (empty when none is).
    stack: Vec<u8>,
    /// Open candidates, outermost first.
    cands: VecDeque<Cand>,
    /// Conversations found inside a candidate still open (kept until it resolves):
    /// (start, end) offsets, in order, none inside another.
    found: VecDeque<(u64, u64)>,
    /// The `{` at `pos` opens a candidate.
    opening: bool,
}

impl Resync {
    fn new(failure: Failure, damaged_until: u64, win: Vec<u8>, base: u64) -> Self {
        Self {
            failure: Some(failure),
            damaged_until,
            win,
            base,
            pos: 0,
            in_string: false,
            escape: false,
            str_start: 0,
            stack: Vec::new(),
            cands: VecDeque::new(),
            found: VecDeque::new(),
            opening: false,
        }
    }

    fn at(&self, offset: u64) -> usize {
        (offset - self.base) as usize
    }

    /// Forgets everything open: tracking starts over (or looks for a candidate).
    fn reset(&mut self) {
        self.stack.clear();
        self.cands.clear();
        self.in_string = false;
        self.escape = false;
        self.opening = false;
    }
}

/// How a resynchronisation ended.
enum Ended {
    /// A conversation ended here, past the damage: read on normally.
    At(u64),
    /// The end of the stream.
    Eof,
}

/// Whether a candidate pattern starts at a `,`.
enum Pattern {
    /// Yes, with its first `{` here.
    Brace(usize),
    No,
    /// The window ends too soon to tell.
    More,
}

/// Looks for `,` ws* `{`+ ws* `"<conversation key>"` at `comma` in `win`.
fn pattern_at(win: &[u8], comma: usize, eof: bool) -> Pattern {
    let more = || if eof { Pattern::No } else { Pattern::More };
    let mut i = comma + 1;
    let limit = (comma + LOOK).min(win.len());
    while i < limit && win[i].is_ascii_whitespace() {
        i += 1;
    }
    if i >= limit {
        return if win.len() < comma + LOOK {
            more()
        } else {
            Pattern::No
        };
    }
    if win[i] != b'{' {
        return Pattern::No;
    }
    let brace = i;
    while i < limit && win[i] == b'{' {
        i += 1;
    }
    while i < limit && win[i].is_ascii_whitespace() {
        i += 1;
    }
    if i < limit && win[i] != b'"' {
        return Pattern::No;
    }
    let key_start = i + 1;
    match win[key_start.min(limit)..limit]
        .iter()
        .position(|&b| b == b'"')
    {
        Some(n) => {
            let key = &win[key_start..key_start + n];
            if CONVERSATION_KEYS.iter().any(|k| k.as_bytes() == key) {
                Pattern::Brace(brace)
            } else {
                Pattern::No
            }
        }
        None if win.len() < comma + LOOK => more(),
        None => Pattern::No,
    }
}

/// The `,` of a candidate pattern whose key's opening quote is at `quote`, if any,
/// looking back no further than `lo`.
fn pattern_comma_before(win: &[u8], quote: usize, lo: usize) -> Option<usize> {
    let lo = lo.max(quote.saturating_sub(LOOK));
    let mut i = quote;
    while i > lo && win[i - 1].is_ascii_whitespace() {
        i -= 1;
    }
    if i == lo || win[i - 1] != b'{' {
        return None;
    }
    while i > lo && win[i - 1] == b'{' {
        i -= 1;
    }
    while i > lo && win[i - 1].is_ascii_whitespace() {
        i -= 1;
    }
    (i > lo && win[i - 1] == b',').then(|| i - 1)
}

/// The streaming array reader.
///
/// `G` is told how many bytes the reader is about to hold (the element being read, a
/// stretch kept to resynchronise, elements read but not yet returned) before it holds
/// them, so a caller can bound memory by blocking there.
pub struct ArrayReader<R, G = fn(usize)> {
    reader: R,
    replay: Vec<u8>,
    replay_pos: usize,
    offset: u64,
    index: usize,
    phase: Phase,
    max_element: usize,
    trailing: Option<String>,
    single_object: bool,
    gate: G,
    scanned: u64,
    /// Items found ahead (conversations recovered while resynchronising).
    ready: VecDeque<Item>,
    ready_bytes: usize,
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

/// The same while resynchronising, where a `,` may start a candidate.
static TRACKED: [bool; 256] = {
    let mut t = SPECIAL;
    t[b',' as usize] = true;
    t
};

fn no_gate(_: usize) {}

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
            gate: no_gate,
            scanned: 0,
            ready: VecDeque::new(),
            ready_bytes: 0,
        }
    }
}

impl<R: BufRead, G: FnMut(usize)> ArrayReader<R, G> {
    /// Calls `gate` with the bytes the reader is about to hold, before it grows (see
    /// [`ArrayReader`]); it may block until that much memory is available.
    pub fn with_gate<H: FnMut(usize)>(self, gate: H) -> ArrayReader<R, H> {
        ArrayReader {
            reader: self.reader,
            replay: self.replay,
            replay_pos: self.replay_pos,
            offset: self.offset,
            index: self.index,
            phase: self.phase,
            max_element: self.max_element,
            trailing: self.trailing,
            single_object: self.single_object,
            gate,
            scanned: self.scanned,
            ready: self.ready,
            ready_bytes: self.ready_bytes,
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

    /// Bytes examined so far, counting every time one is examined again: a small
    /// multiple of the bytes consumed, whatever the input.
    pub fn bytes_scanned(&self) -> u64 {
        self.scanned
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

    /// Announces that the reader is about to hold `n` bytes besides the ready items.
    fn hold(&mut self, n: usize) {
        (self.gate)(n + self.ready_bytes);
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
            let n = end.as_ref().map_or(buf.len(), |(n, _)| *n);
            self.hold(out.len() + n);
            let buf = self.fill()?;
            out.extend_from_slice(&buf[..n]);
            self.consume(n);
            self.scanned += n as u64;
            if let Some((_, scan)) = end {
                if out.len() > self.max_element {
                    return Ok(Scan::TooLarge);
                }
                return Ok(scan);
            }
        }
    }

    /// Reads the next item; `Ok(None)` at the end of the array.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Item>, StreamError> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                if let Item::Element { bytes, .. } = &item {
                    self.ready_bytes -= bytes.len();
                }
                return Ok(Some(item));
            }
            // Each phase sets the one that follows it.
            let next = match std::mem::replace(&mut self.phase, Phase::Done) {
                Phase::Done => return Ok(None),
                Phase::Start => self.start()?,
                Phase::Before => self.before_element()?,
                Phase::After => self.after_element()?,
                Phase::Resync(rs) => self.resync_step(rs)?,
            };
            if let Next::Yield(item) = next {
                return Ok(item);
            }
        }
    }

    /// The start of the file: an array, or (when allowed) one conversation object.
    fn start(&mut self) -> Result<Next, StreamError> {
        self.skip_bom()?;
        match self.peek_significant()? {
            None => Err(StreamError::Empty),
            Some(b'[') => {
                self.consume(1);
                self.phase = Phase::Before;
                Ok(Next::Again)
            }
            Some(b'{') if self.single_object => self.single(),
            Some(b'{') => Err(StreamError::NotAnArray("an object")),
            Some(b'"') => Err(StreamError::NotAnArray("a string")),
            Some(_) => Err(StreamError::NotAnArray("something that is not JSON")),
        }
    }

    /// A file that holds one conversation object instead of an array.
    fn single(&mut self) -> Result<Next, StreamError> {
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
                reason: "the conversation object is incomplete or malformed".into(),
                hint: hint_of(&bytes),
                resumed_at: None,
            },
            Scan::TooLarge => Item::Malformed {
                index: 1,
                offset,
                reason: format!("conversation is larger than {} MiB", self.max_element >> 20),
                hint: hint_of(&bytes),
                resumed_at: None,
            },
        };
        self.finish()?;
        Ok(Next::Yield(Some(item)))
    }

    /// Before an element: the element itself, a hole (`[,` `,,` `,]`), the end, or the
    /// end of the file too early.
    fn before_element(&mut self) -> Result<Next, StreamError> {
        match self.peek_significant()? {
            None => Ok(Next::Yield(Some(self.truncated(
                self.index + 1,
                self.offset,
                None,
                "the file ends before the array is closed",
            )))),
            Some(b']') if self.index == 0 => {
                self.consume(1);
                self.finish()?;
                Ok(Next::Yield(None))
            }
            Some(b',') | Some(b']') => {
                // `[,` `,,` or `,]`: a hole; skip the stray byte and go on.
                self.consume(1);
                self.phase = Phase::Before;
                if self.peek_significant()? == Some(b']') && self.index > 0 {
                    self.consume(1);
                    self.finish()?;
                    return Ok(Next::Yield(None));
                }
                Ok(Next::Again)
            }
            Some(_) => self.element(),
        }
    }

    /// One element: complete, cut off by the end of the file, or damaged (then the
    /// reader resynchronises on the next conversation).
    fn element(&mut self) -> Result<Next, StreamError> {
        self.index += 1;
        let offset = self.offset;
        let mut bytes = Vec::new();
        match self.scan_value(&mut bytes)? {
            Scan::Complete => {
                self.phase = Phase::After;
                return Ok(Next::Yield(Some(Item::Element {
                    index: self.index,
                    offset,
                    bytes,
                })));
            }
            Scan::Eof => {
                let hint = hint_of(&bytes);
                return Ok(Next::Yield(Some(self.truncated(
                    self.index,
                    offset,
                    hint,
                    "the file ends in the middle of this conversation (an incomplete download?)",
                ))));
            }
            Scan::Mismatch(reason) => {
                // The mismatched bracket is damage too.
                let until = self.offset + 1;
                self.begin_resync(offset, bytes, reason, until);
            }
            Scan::TooLarge => {
                let reason = format!("conversation is larger than {} MiB", self.max_element >> 20);
                let until = self.offset;
                self.begin_resync(offset, bytes, reason, until);
            }
        }
        Ok(Next::Again)
    }

    /// After an element: a comma, the end of the array, a missing comma, or damage.
    fn after_element(&mut self) -> Result<Next, StreamError> {
        match self.peek_significant()? {
            None => {
                self.trailing = Some(
                    "the file ends before the array is closed (an incomplete download?)".into(),
                );
                return Ok(Next::Yield(None));
            }
            Some(b',') => {
                self.consume(1);
                self.phase = Phase::Before;
            }
            Some(b']') => {
                self.consume(1);
                self.finish()?;
                return Ok(Next::Yield(None));
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
                let base = self.offset;
                self.phase = Phase::Resync(Box::new(Resync::new(failure, base, Vec::new(), base)));
            }
        }
        Ok(Next::Again)
    }

    /// Searches on for the next conversation after damage.
    fn resync_step(&mut self, mut rs: Box<Resync>) -> Result<Next, StreamError> {
        match self.resync(&mut rs)? {
            None => self.phase = Phase::Resync(rs),
            Some(Ended::Eof) => self.phase = Phase::Done,
            Some(Ended::At(end)) => {
                // Read on normally after that conversation.
                let at = rs.at(end);
                self.unread(&rs.win[at..]);
                self.phase = Phase::After;
            }
        }
        Ok(Next::Again)
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

    /// Starts resynchronising after the element at `offset` failed; its bytes (up to
    /// where it failed) are searched again, and the damage reaches `damaged_until`.
    fn begin_resync(
        &mut self,
        offset: u64,
        mut bytes: Vec<u8>,
        reason: String,
        damaged_until: u64,
    ) {
        let failure = Failure {
            index: self.index,
            offset,
            reason,
            hint: hint_of(&bytes),
        };
        // The next conversation may already be inside what was read (a missing
        // closing bracket swallows what follows): search it again, past the first byte.
        let skip = bytes.len().min(1);
        bytes.drain(..skip);
        self.scanned += bytes.len() as u64;
        let base = offset + skip as u64;
        self.phase = Phase::Resync(Box::new(Resync::new(failure, damaged_until, bytes, base)));
    }

    /// Reads more of the stream into the window; false at its end.
    fn pull(&mut self, rs: &mut Resync) -> io::Result<bool> {
        let n = self.fill()?.len().min(256 * 1024);
        if n == 0 {
            return Ok(false);
        }
        self.hold(rs.win.len() + n);
        let buf = self.fill()?;
        rs.win.extend_from_slice(&buf[..n]);
        self.consume(n);
        self.scanned += n as u64;
        Ok(true)
    }

    /// Drops the part of the window nothing needs any more.
    fn compact(&mut self, rs: &mut Resync) {
        let mut keep = rs.base + rs.pos as u64;
        if let Some(c) = rs.cands.front() {
            keep = keep.min(c.start);
        }
        if let Some(&(s, _)) = rs.found.front() {
            keep = keep.min(s);
        }
        let drop = rs.at(keep);
        if drop >= 64 * 1024 && drop >= rs.win.len() / 2 {
            rs.win.drain(..drop);
            rs.base = keep;
            rs.pos -= drop;
            rs.str_start = rs.str_start.saturating_sub(drop);
        }
    }

    /// Looks for a candidate at the `,` at `comma`, reading more when needed.
    fn candidate_at(&mut self, rs: &mut Resync, comma: usize) -> io::Result<Option<usize>> {
        let mut eof = false;
        loop {
            match pattern_at(&rs.win, comma, eof) {
                Pattern::Brace(b) => return Ok(Some(b)),
                Pattern::No => return Ok(None),
                Pattern::More => eof = !self.pull(rs)?,
            }
        }
    }

    /// The next byte that is not whitespace from `from` on (looking no further than
    /// [`LOOK`] bytes), reading more when needed.
    fn significant_at(&mut self, rs: &mut Resync, from: usize) -> io::Result<Option<u8>> {
        let mut i = from;
        loop {
            while i < rs.win.len() && i < from + LOOK {
                if !rs.win[i].is_ascii_whitespace() {
                    return Ok(Some(rs.win[i]));
                }
                i += 1;
            }
            if i >= from + LOOK || !self.pull(rs)? {
                return Ok(None);
            }
        }
    }

    /// Queues the conversations found that start before `upto` (all when `None`),
    /// reporting the failure first if it was not yet.
    fn emit(&mut self, rs: &mut Resync, upto: Option<u64>) {
        while let Some(&(start, end)) = rs.found.front() {
            if upto.is_some_and(|u| start >= u) {
                break;
            }
            rs.found.pop_front();
            if let Some(f) = rs.failure.take() {
                self.ready.push_back(Item::Malformed {
                    index: f.index,
                    offset: f.offset,
                    reason: f.reason,
                    hint: f.hint,
                    resumed_at: Some(start),
                });
            }
            let (a, b) = (rs.at(start), rs.at(end));
            self.hold(rs.win.len() + (b - a));
            self.index += 1;
            self.ready_bytes += b - a;
            self.ready.push_back(Item::Element {
                index: self.index,
                offset: start,
                bytes: rs.win[a..b].to_vec(),
            });
        }
    }

    /// The outermost open candidate failed (and every other one with it when `all`):
    /// a conversation that began past the reported damage is reported on its own.
    fn fail_outermost(&mut self, rs: &mut Resync, reason: String, all: bool) {
        let Some(outer) = rs.cands.pop_front() else {
            return;
        };
        if rs.failure.is_none() && outer.mapping && outer.start >= rs.damaged_until {
            self.index += 1;
            let at = rs.at(outer.start);
            rs.failure = Some(Failure {
                index: self.index,
                offset: outer.start,
                reason,
                hint: hint_of(&rs.win[at..]),
            });
        }
        let here = rs.base + rs.pos as u64;
        rs.damaged_until = rs.damaged_until.max(here);
        if all || rs.cands.is_empty() {
            rs.reset();
            self.emit(rs, None);
        } else {
            // It is an ordinary frame now; what it held before the next one is final.
            rs.stack[outer.depth - 1] &= !MARK;
            let next = rs.cands.front().map(|c| c.start);
            self.emit(rs, next);
        }
    }

    /// A candidate's frame closed at `end`.
    fn complete(&mut self, rs: &mut Resync, end: u64) -> Option<Ended> {
        let c = rs.cands.pop_back()?;
        if c.mapping {
            // It holds any conversation found inside it.
            while rs.found.back().is_some_and(|&(s, _)| s > c.start) {
                rs.found.pop_back();
            }
            rs.found.push_back((c.start, end));
        }
        if !rs.cands.is_empty() {
            return None;
        }
        rs.reset();
        self.emit(rs, None);
        (c.mapping && end >= rs.damaged_until).then_some(Ended::At(end))
    }

    /// Runs the resynchronisation until it has items to return (`None`) or ends.
    fn resync(&mut self, rs: &mut Resync) -> Result<Option<Ended>, StreamError> {
        loop {
            if !self.ready.is_empty() {
                return Ok(None);
            }
            self.compact(rs);
            if rs.pos >= rs.win.len() && !self.pull(rs)? {
                while !rs.cands.is_empty() {
                    let reason = "the file ends in the middle of this conversation (an incomplete download?)";
                    self.fail_outermost(rs, reason.into(), true);
                }
                self.emit(rs, None);
                if let Some(f) = rs.failure.take() {
                    self.ready.push_back(Item::Malformed {
                        index: f.index,
                        offset: f.offset,
                        reason: f.reason,
                        hint: f.hint,
                        resumed_at: None,
                    });
                }
                return Ok(Some(Ended::Eof));
            }
            if rs.cands.is_empty() && !rs.opening {
                // Nothing open: look for the next candidate.
                match memchr::memchr(b',', &rs.win[rs.pos..]) {
                    None => rs.pos = rs.win.len(),
                    Some(j) => {
                        let comma = rs.pos + j;
                        match self.candidate_at(rs, comma)? {
                            Some(brace) => {
                                rs.reset();
                                rs.pos = brace;
                                rs.opening = true;
                            }
                            None => rs.pos = comma + 1,
                        }
                    }
                }
                continue;
            }
            if rs.escape {
                rs.escape = false;
                rs.pos += 1;
            } else if rs.in_string {
                self.track_string(rs)?;
            } else if let Some(ended) = self.track_structure(rs)? {
                return Ok(Some(ended));
            }
            if let Some(outer) = rs.cands.front()
                && rs.base + rs.pos as u64 - outer.start > self.max_element as u64
            {
                let reason = format!("conversation is larger than {} MiB", self.max_element >> 20);
                self.fail_outermost(rs, reason, false);
            }
        }
    }

    /// Inside a string of the open candidates: on to its end.
    fn track_string(&mut self, rs: &mut Resync) -> io::Result<()> {
        let Some(j) = memchr::memchr2(b'"', b'\\', &rs.win[rs.pos..]) else {
            rs.pos = rs.win.len();
            return Ok(());
        };
        let k = rs.pos + j;
        if rs.win[k] == b'\\' {
            rs.escape = true;
            rs.pos = k + 1;
            return Ok(());
        }
        let lo = rs.cands.front().map_or(0, |c| rs.at(c.start));
        if let Some(comma) = pattern_comma_before(&rs.win, k, lo)
            && let Some(brace) = self.candidate_at(rs, comma)?
        {
            // A candidate inside one of their strings: they are not JSON, so they
            // fail here and tracking starts over with it.
            let reason = format!(
                "a conversation starts inside one of its strings at byte {}",
                rs.base + brace as u64
            );
            while !rs.cands.is_empty() {
                self.fail_outermost(rs, reason.clone(), true);
            }
            self.scanned += (k - brace) as u64;
            rs.reset();
            rs.pos = brace;
            rs.opening = true;
            return Ok(());
        }
        rs.in_string = false;
        rs.pos = k + 1;
        // A top-level `mapping` key makes the innermost candidate look like a conversation.
        if rs.cands.back().is_some_and(|c| c.depth == rs.stack.len())
            && &rs.win[rs.str_start + 1..k] == b"mapping"
            && self.significant_at(rs, k + 1)? == Some(b':')
            && let Some(c) = rs.cands.back_mut()
        {
            c.mapping = true;
        }
        Ok(())
    }

    /// Outside strings: on to the next bracket, quote or comma.
    fn track_structure(&mut self, rs: &mut Resync) -> io::Result<Option<Ended>> {
        let Some(j) = rs.win[rs.pos..].iter().position(|&b| TRACKED[b as usize]) else {
            rs.pos = rs.win.len();
            return Ok(None);
        };
        let k = rs.pos + j;
        rs.pos = k + 1;
        match rs.win[k] {
            b'"' => {
                rs.in_string = true;
                rs.str_start = k;
            }
            open @ (b'{' | b'[') => {
                let close = if open == b'{' { b'}' } else { b']' };
                if std::mem::take(&mut rs.opening) {
                    rs.stack.push(close | MARK);
                    rs.cands.push_back(Cand {
                        start: rs.base + k as u64,
                        depth: rs.stack.len(),
                        mapping: false,
                    });
                } else {
                    rs.stack.push(close);
                }
            }
            b',' => {
                if let Some(brace) = self.candidate_at(rs, k)? {
                    rs.pos = brace;
                    rs.opening = true;
                }
            }
            close => match rs.stack.last() {
                Some(&top) if top & !MARK == close => {
                    rs.stack.pop();
                    if top & MARK != 0 {
                        return Ok(self.complete(rs, rs.base + k as u64 + 1));
                    }
                }
                _ => {
                    let reason = format!(
                        "unexpected `{}` at byte {}",
                        close as char,
                        rs.base + k as u64
                    );
                    while !rs.cands.is_empty() {
                        self.fail_outermost(rs, reason.clone(), true);
                    }
                }
            },
        }
        Ok(None)
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

/// An id or title read from the first bytes of a (possibly broken) conversation, as a
/// person reads it: `title "LCP指标"`, the JSON string decoded (escapes such as `\u6307`
/// become the characters they stand for), on one line, at most 80 characters.
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
        let value = json_string_prefix(rest)?;
        let shown: String = value
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .filter(|c| !c.is_control())
            .take(80)
            .collect();
        (!shown.is_empty()).then(|| format!("{} \"{shown}\"", key.trim_matches('"')))
    })
}

/// Decodes the JSON string literal `s` starts with (`"…"`, escapes and all).
fn json_string_prefix(s: &str) -> Option<String> {
    let body = s.strip_prefix('"')?;
    let mut escaped = false;
    let end = body.char_indices().find_map(|(i, c)| {
        if escaped {
            escaped = false;
            None
        } else if c == '\\' {
            escaped = true;
            None
        } else {
            (c == '"').then_some(i)
        }
    })?;
    serde_json::from_str(&s[..end + 2]).ok()
}

#[cfg(test)]
mod tests;
