//! Running a query: BM25 over the message text (which holds the title), filters that
//! do not score, title matches and adjacent query words boosted by rescoring the best
//! conversations, one hit per conversation (its best message), conversation-level
//! exclusions, and snippets cut from the archive.

use super::build::message_text;
use super::index::SearchIndex;
use super::query::{Element, Filters, Query};
use super::schema::Fields;
use super::{SearchError, tokenize};
use crate::archive::{Archive, ArchiveError};
use crate::model::time::secs_to_rfc3339;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::{Bound, Range};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::StrColumn;
use tantivy::query::{
    BooleanQuery, BoostQuery, ConstScoreQuery, EmptyQuery, Occur, PhrasePrefixQuery, PhraseQuery,
    Query as TQuery, RangeQuery, TermQuery, TermSetQuery, Weight,
};
use tantivy::schema::{Field, IndexRecordOption, Term, Value};
use tantivy::snippet::{SnippetGenerator, collapse_overlapped_ranges};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{
    DateTime, DocAddress, DocId, Score, Searcher, SegmentOrdinal, SegmentReader, TantivyDocument,
};

/// How much more a title match weighs than a match in a message.
const TITLE_BOOST: Score = 2.0;
/// Extra weight of a message holding the query's words next to each other.
const PROXIMITY_BOOST: Score = 1.5;
/// Words apart that still count as "next to each other".
const PROXIMITY_SLOP: u32 = 2;
/// Terms a `prefix*` expands to, at most (the first in term order).
const PREFIX_EXPANSIONS: u32 = 200;
/// Conversations (at least) that the title and proximity boosts rescore.
const RESCORE_WINDOW: usize = 100;
/// Characters of a snippet.
const SNIPPET_CHARS: usize = 160;
/// The most results one search returns.
pub const MAX_LIMIT: usize = 10_000;

/// A search: what to find, under which conditions, and how many conversations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchRequest {
    /// The parsed query.
    pub query: Query,
    /// Conditions on the messages.
    pub filters: Filters,
    /// Conversations to return, at most (capped at 10,000).
    pub limit: usize,
}

/// One conversation found: its best message and a snippet of it. Serializes to the
/// `--json` shape `{id, title, update_time, score, message_id, role, snippet}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    /// Conversation id.
    pub id: String,
    /// Its title.
    pub title: Option<String>,
    /// Its update time, RFC 3339 UTC.
    pub update_time: Option<String>,
    /// BM25 score of the best message (higher is better).
    pub score: f32,
    /// The best message's id (`None` when only the title matched an empty
    /// conversation).
    pub message_id: Option<String>,
    /// The best message's role.
    pub role: Option<String>,
    /// Plain text around the match, on one line.
    pub snippet: String,
    /// Byte ranges of `snippet` that matched, for highlighting.
    #[serde(skip)]
    pub highlights: Vec<Range<usize>>,
    /// The best message's node id.
    #[serde(skip)]
    pub node_id: Option<String>,
    /// Whether the best message is on the active branch.
    #[serde(skip)]
    pub on_active_branch: bool,
}

impl SearchIndex {
    /// Runs a search, best conversation first. Titles, update times and snippets come
    /// from `archive` (the index does not store message text), so they show the
    /// conversation as it is now.
    pub fn search(&self, archive: &Archive, req: &SearchRequest) -> Result<Vec<Hit>, SearchError> {
        let limit = req.limit.min(MAX_LIMIT);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let searcher = self.searcher()?;
        let fields = *self.fields();
        // tantivy trusts its files; a damaged one can panic deep inside a query. The
        // index is derived data: report it damaged rather than take the process down.
        let run = std::panic::AssertUnwindSafe(|| run(&searcher, &fields, archive, req, limit));
        match std::panic::catch_unwind(run) {
            Ok(r) => r.map_err(|e| match e {
                Failure::Tantivy(e) => super::index::index_err(self.dir(), e),
                Failure::Archive(e) => SearchError::Archive(e),
            }),
            Err(panic) => {
                let detail = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "a query failed".to_owned());
                Err(SearchError::Damaged {
                    dir: self.dir().to_path_buf(),
                    detail,
                })
            }
        }
    }
}

enum Failure {
    Tantivy(tantivy::TantivyError),
    Archive(ArchiveError),
}

impl From<ArchiveError> for Failure {
    fn from(e: ArchiveError) -> Self {
        Failure::Archive(e)
    }
}

impl From<tantivy::TantivyError> for Failure {
    fn from(e: tantivy::TantivyError) -> Self {
        Failure::Tantivy(e)
    }
}

fn run(
    searcher: &Searcher,
    fields: &Fields,
    archive: &Archive,
    req: &SearchRequest,
    limit: usize,
) -> Result<Vec<Hit>, Failure> {
    let plan = Plan::new(fields, &req.query, &req.filters);
    let exclusions = exclusion_query(fields, &req.query);
    // Excluding is per conversation: a conversation whose other messages hold an
    // excluded word is dropped after grouping, so ask for more when that happens.
    let mut want = limit;
    let groups = loop {
        let (mut groups, full) = best_conversations(searcher, fields, &plan, want)?;
        let before = groups.len();
        if let Some(ex) = &exclusions
            && !groups.is_empty()
        {
            let excluded = conversations_matching(searcher, fields, ex, &groups)?;
            groups.retain(|g| !excluded.contains(&g.conv_id));
        }
        if groups.len() >= limit || !full || before == groups.len() || want >= MAX_LIMIT * 4 {
            break groups;
        }
        want = (want * 4).min(MAX_LIMIT * 4);
    };
    let snippets = Snippets::new(searcher, fields, &req.query)?;
    let mut hits = Vec::with_capacity(limit);
    for g in groups.into_iter().take(limit) {
        let doc: TantivyDocument = searcher.doc(g.address)?;
        let node_id = first_str(&doc, fields.node_id).map(str::to_owned);
        let (title, update_time, text) = match archive.get(&g.conv_id) {
            Ok(Some(stored)) => {
                let s = &stored.record.summary;
                let text = node_id
                    .as_deref()
                    .and_then(|n| message_text(&stored, n))
                    .unwrap_or_default();
                (
                    s.title.clone(),
                    s.update_time.or(s.create_time).and_then(secs_to_rfc3339),
                    text,
                )
            }
            // The index is ahead of this archive (or behind a damaged record):
            // still a hit, without the details.
            Ok(None) | Err(ArchiveError::Corrupt(_) | ArchiveError::Model { .. }) => {
                (None, None, String::new())
            }
            Err(e) => return Err(e.into()),
        };
        let (snippet, highlights) = snippets.cut(&text);
        hits.push(Hit {
            id: g.conv_id,
            title,
            update_time,
            score: g.score,
            message_id: first_str(&doc, fields.message_id).map(str::to_owned),
            role: first_str(&doc, fields.role).map(str::to_owned),
            snippet,
            highlights,
            node_id,
            on_active_branch: doc
                .get_first(fields.active)
                .and_then(|v| v.as_bool())
                .unwrap_or(true),
        });
    }
    Ok(hits)
}

fn first_str(doc: &TantivyDocument, field: Field) -> Option<&str> {
    doc.get_first(field).and_then(|v| v.as_str())
}

/// An element searched in one field.
fn element_in(field: Field, e: &Element) -> Box<dyn TQuery> {
    let term = |t: &str| Term::from_field_text(field, t);
    match e {
        Element::Term(t) => Box::new(TermQuery::new(term(t), IndexRecordOption::WithFreqs)),
        Element::Phrase(ts) if ts.len() > 1 => Box::new(PhraseQuery::new_with_offset(
            ts.iter().map(|(p, t)| (*p, term(t))).collect(),
        )),
        Element::Phrase(ts) => Box::new(TermQuery::new(
            term(ts.first().map_or("", |(_, t)| t.as_str())),
            IndexRecordOption::WithFreqs,
        )),
        // Only a hand-made (deserialized) query has no terms; match nothing.
        Element::Prefix(ts) if ts.is_empty() => Box::new(EmptyQuery),
        Element::Prefix(ts) => {
            let mut q =
                PhrasePrefixQuery::new_with_offset(ts.iter().map(|(p, t)| (*p, term(t))).collect());
            q.set_max_expansions(PREFIX_EXPANSIONS);
            Box::new(q)
        }
    }
}

/// A query in parts: what a message must match (its words in the message text,
/// which holds the title too, scored by BM25; and the filters, which do not score),
/// the same words in the title alone, and what only adds to the score: title matches
/// and words standing together.
struct Plan {
    must: Vec<Box<dyn TQuery>>,
    in_title: Vec<Box<dyn TQuery>>,
    boosts: Vec<Box<dyn TQuery>>,
}

impl Plan {
    fn new(fields: &Fields, q: &Query, f: &Filters) -> Plan {
        let mut must: Vec<Box<dyn TQuery>> = q
            .include()
            .iter()
            .map(|e| element_in(fields.text, e))
            .collect();
        // Exclusions are not `MustNot` clauses here: they apply to whole conversations
        // (see `conversations_matching`), and tantivy 0.27's exclusion scorer seeks a
        // finished phrase scorer backwards (a debug assertion, and unspecified otherwise).
        let mut in_title: Vec<Box<dyn TQuery>> = q
            .include()
            .iter()
            .map(|e| element_in(fields.title, e))
            .collect();
        for filter in filter_queries(fields, f) {
            let filter: Box<dyn TQuery> = Box::new(ConstScoreQuery::new(filter, 0.0));
            in_title.push(filter.box_clone());
            must.push(filter);
        }
        let mut boosts: Vec<Box<dyn TQuery>> = q
            .include()
            .iter()
            .map(|e| {
                Box::new(BoostQuery::new(element_in(fields.title, e), TITLE_BOOST))
                    as Box<dyn TQuery>
            })
            .collect();
        // Words typed one after the other rank higher where they stand together.
        let words: Vec<&str> = q
            .include()
            .iter()
            .filter_map(|e| match e {
                Element::Term(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        if words.len() > 1 {
            let terms = words
                .iter()
                .enumerate()
                .map(|(i, t)| (i, Term::from_field_text(fields.text, t)))
                .collect();
            boosts.push(Box::new(BoostQuery::new(
                Box::new(PhraseQuery::new_with_offset_and_slop(terms, PROXIMITY_SLOP)),
                PROXIMITY_BOOST,
            )));
        }
        Plan {
            must,
            in_title,
            boosts,
        }
    }

    /// The query that finds matches.
    fn matching(&self) -> BooleanQuery {
        all_of(&self.must)
    }

    /// The query that finds matches whose title holds every word.
    fn title_matching(&self) -> BooleanQuery {
        all_of(&self.in_title)
    }

    /// The query that rescores the messages of these conversations: the matching
    /// one plus the boosts. Each boost is intersected with the conversations itself:
    /// an optional clause on its own is sought from document to document, and a
    /// phrase seeking its next match reads positions all the way through the words'
    /// common documents, where intersected it looks at the candidates only.
    fn rescoring(&self, fields: &Fields, groups: &[Group]) -> BooleanQuery {
        // A union of term lists rather than a `TermSetQuery`, which walks the whole
        // id dictionary and fills a bitset of every document, per segment and clause.
        let ids = groups
            .iter()
            .map(|g| {
                let id = Term::from_field_text(fields.conv_id, &g.conv_id);
                let q: Box<dyn TQuery> = Box::new(TermQuery::new(id, IndexRecordOption::Basic));
                (Occur::Should, q)
            })
            .collect();
        let only: Box<dyn TQuery> =
            Box::new(ConstScoreQuery::new(Box::new(BooleanQuery::new(ids)), 0.0));
        let mut clauses: Vec<(Occur, Box<dyn TQuery>)> = vec![(Occur::Must, only.box_clone())];
        clauses.extend(self.must.iter().map(|q| (Occur::Must, q.box_clone())));
        for b in &self.boosts {
            let within = BooleanQuery::new(vec![
                (Occur::Must, only.box_clone()),
                (Occur::Must, b.box_clone()),
            ]);
            clauses.push((Occur::Should, Box::new(within)));
        }
        BooleanQuery::new(clauses)
    }
}

fn all_of(queries: &[Box<dyn TQuery>]) -> BooleanQuery {
    BooleanQuery::new(
        queries
            .iter()
            .map(|q| (Occur::Must, q.box_clone()))
            .collect(),
    )
}

/// The best `want` conversations, and whether there may be more. Matching runs on
/// the message text alone (an intersection of plain term lists, the fastest query
/// there is); the boosts, which read a second field or word positions, then rescore
/// the best conversations found (a window of at least [`RESCORE_WINDOW`], plus as
/// many whose titles hold the words), as search engines' rescoring does.
fn best_conversations(
    searcher: &Searcher,
    fields: &Fields,
    plan: &Plan,
    want: usize,
) -> Result<(Vec<Group>, bool), Failure> {
    let collector = BestPerConversation {
        limit: want.max(RESCORE_WINDOW),
        field: fields.conv_id,
    };
    let (mut first, full) = searcher.search(&plan.matching(), &collector)?;
    if first.is_empty() {
        return Ok((first, full));
    }
    // Conversations whose title holds the words are candidates even when their
    // messages score lower than the window's.
    let (titled, _) = searcher.search(&plan.title_matching(), &collector)?;
    let known: HashSet<String> = first.iter().map(|g| g.conv_id.clone()).collect();
    first.extend(titled.into_iter().filter(|g| !known.contains(&g.conv_id)));
    let collector = BestPerConversation {
        limit: want,
        field: fields.conv_id,
    };
    let (rescored, _) = searcher.search(&plan.rescoring(fields, &first), &collector)?;
    Ok((rescored, full || first.len() > want))
}

fn keyword(field: Field, value: &str) -> Box<dyn TQuery> {
    let mut analyzer = tokenize::keyword_analyzer();
    let folded = tokenize::terms(&mut analyzer, value)
        .into_iter()
        .next()
        .map(|(_, t)| t)
        .unwrap_or_default();
    Box::new(TermQuery::new(
        Term::from_field_text(field, &folded),
        IndexRecordOption::Basic,
    ))
}

fn filter_queries(fields: &Fields, f: &Filters) -> Vec<Box<dyn TQuery>> {
    let mut out: Vec<Box<dyn TQuery>> = Vec::new();
    if let Some(role) = f.role {
        out.push(Box::new(TermQuery::new(
            Term::from_field_text(fields.role, role.as_str()),
            IndexRecordOption::Basic,
        )));
    }
    let date = |s: i64| Term::from_field_date(fields.time, DateTime::from_timestamp_secs(s));
    if f.since.is_some() || f.until.is_some() {
        out.push(Box::new(RangeQuery::new(
            f.since
                .map_or(Bound::Unbounded, |s| Bound::Included(date(s))),
            f.until
                .map_or(Bound::Unbounded, |u| Bound::Excluded(date(u))),
        )));
    }
    if let Some(p) = &f.project {
        out.push(keyword(fields.project, p));
    }
    if let Some(m) = &f.model {
        out.push(keyword(fields.model, m));
    }
    if let Some(a) = f.archived {
        out.push(Box::new(TermQuery::new(
            Term::from_field_bool(fields.archived, a),
            IndexRecordOption::Basic,
        )));
    }
    if let Some(d) = f.deleted {
        out.push(Box::new(TermQuery::new(
            Term::from_field_bool(fields.deleted, d),
            IndexRecordOption::Basic,
        )));
    }
    out
}

/// Matches a message holding any excluded element.
fn exclusion_query(fields: &Fields, q: &Query) -> Option<BooleanQuery> {
    if q.exclude().is_empty() {
        return None;
    }
    Some(BooleanQuery::new(
        q.exclude()
            .iter()
            .map(|e| (Occur::Should, element_in(fields.text, e)))
            .collect(),
    ))
}

/// Which of the grouped conversations hold an excluded element in any message.
fn conversations_matching(
    searcher: &Searcher,
    fields: &Fields,
    exclusions: &BooleanQuery,
    groups: &[Group],
) -> Result<HashSet<String>, Failure> {
    let ids = groups
        .iter()
        .map(|g| Term::from_field_text(fields.conv_id, &g.conv_id));
    let q = BooleanQuery::new(vec![
        (Occur::Must, Box::new(TermSetQuery::new(ids))),
        (Occur::Must, Box::new(exclusions.clone())),
    ]);
    let collector = BestPerConversation {
        limit: groups.len(),
        field: fields.conv_id,
    };
    let (found, _) = searcher.search(&q, &collector)?;
    Ok(found.into_iter().map(|g| g.conv_id).collect())
}

/// A conversation's best message.
#[derive(Clone, Debug)]
struct Group {
    conv_id: String,
    score: Score,
    address: DocAddress,
}

/// Collects the best `limit` conversations by their best message's score. Per
/// segment this is exact: a conversation in the global top `limit` is in the top
/// `limit` of the segment holding its best message (each one above it there is a
/// distinct conversation scoring higher). The fruit says whether `limit` was reached.
struct BestPerConversation {
    limit: usize,
    field: Field,
}

struct SegmentBest {
    column: Option<StrColumn>,
    segment: SegmentOrdinal,
    limit: usize,
    /// (term ordinal of the conversation id, best score, its document).
    entries: Vec<(u64, Score, DocId)>,
    /// Where each conversation is in `entries`.
    slots: HashMap<u64, usize>,
    /// The entry with the lowest score, once `entries` is full.
    lowest: usize,
    threshold: Score,
}

impl SegmentBest {
    /// Offers a document; returns the score a document must beat to matter now.
    fn push(&mut self, doc: DocId, score: Score) -> Score {
        let Some(ord) = self.column.as_ref().and_then(|c| c.ords().first(doc)) else {
            return self.threshold;
        };
        if let Some(&i) = self.slots.get(&ord) {
            if score > self.entries[i].1 {
                self.entries[i] = (ord, score, doc);
                if self.entries.len() == self.limit && i == self.lowest {
                    self.find_lowest();
                }
            }
            return self.threshold;
        }
        if self.entries.len() < self.limit {
            self.slots.insert(ord, self.entries.len());
            self.entries.push((ord, score, doc));
            if self.entries.len() == self.limit {
                self.find_lowest();
            }
        } else {
            let i = self.lowest;
            self.slots.remove(&self.entries[i].0);
            self.slots.insert(ord, i);
            self.entries[i] = (ord, score, doc);
            self.find_lowest();
        }
        self.threshold
    }

    /// Finds the lowest entry of a full set; its score becomes the threshold.
    fn find_lowest(&mut self) {
        let mut lowest = 0;
        for (i, e) in self.entries.iter().enumerate() {
            if e.1 < self.entries[lowest].1 {
                lowest = i;
            }
        }
        self.lowest = lowest;
        self.threshold = self.entries.get(lowest).map_or(Score::MIN, |e| e.1);
    }
}

impl SegmentCollector for SegmentBest {
    type Fruit = (Vec<Group>, bool);

    fn collect(&mut self, doc: DocId, score: Score) {
        if score > self.threshold || self.entries.len() < self.limit {
            self.push(doc, score);
        }
    }

    fn harvest(self) -> (Vec<Group>, bool) {
        let full = self.entries.len() >= self.limit;
        let mut out = Vec::with_capacity(self.entries.len());
        let mut buf = String::new();
        for (ord, score, doc) in self.entries {
            let Some(col) = &self.column else { break };
            if col.ord_to_str(ord, &mut buf).unwrap_or(false) {
                out.push(Group {
                    conv_id: buf.clone(),
                    score,
                    address: DocAddress::new(self.segment, doc),
                });
            }
        }
        (out, full)
    }
}

impl Collector for BestPerConversation {
    type Fruit = (Vec<Group>, bool);
    type Child = SegmentBest;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentBest> {
        let name = reader.schema().get_field_name(self.field).to_owned();
        Ok(SegmentBest {
            column: reader.fast_fields().str(&name)?,
            segment,
            limit: self.limit.max(1),
            entries: Vec::new(),
            slots: HashMap::new(),
            lowest: 0,
            threshold: Score::MIN,
        })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, fruits: Vec<(Vec<Group>, bool)>) -> tantivy::Result<Self::Fruit> {
        let mut full = false;
        let mut best: HashMap<String, Group> = HashMap::new();
        for (groups, f) in fruits {
            full |= f;
            for g in groups {
                match best.get_mut(&g.conv_id) {
                    Some(b) if b.score >= g.score => {}
                    Some(b) => *b = g,
                    None => {
                        best.insert(g.conv_id.clone(), g);
                    }
                }
            }
        }
        let mut out: Vec<Group> = best.into_values().collect();
        // Ties go to the conversation id, so results are stable.
        out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.conv_id.cmp(&b.conv_id)));
        full |= out.len() > self.limit;
        out.truncate(self.limit);
        Ok((out, full))
    }

    // Scores through `for_each_pruning`, so disjunctions skip blocks that cannot beat
    // the current threshold (block-max WAND), as tantivy's own top-k collector does.
    fn collect_segment(
        &self,
        weight: &dyn Weight,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<(Vec<Group>, bool)> {
        let mut seg = self.for_segment(segment, reader)?;
        let alive = reader.alive_bitset();
        weight.for_each_pruning(Score::MIN, reader, &mut |doc, score| {
            if alive.is_some_and(|a| a.is_deleted(doc)) {
                return seg.threshold;
            }
            seg.push(doc, score)
        })?;
        Ok(seg.harvest())
    }
}

/// Cuts snippets around the query's terms.
struct Snippets {
    terms: BTreeMap<String, Score>,
    prefixes: Vec<String>,
    field: Field,
    analyzer: TextAnalyzer,
}

impl Snippets {
    fn new(searcher: &Searcher, fields: &Fields, q: &Query) -> Result<Snippets, Failure> {
        let mut terms = BTreeMap::new();
        let mut prefixes = Vec::new();
        for e in q.include() {
            let all: Vec<&str> = e.terms().collect();
            let (whole, prefix) = match e {
                Element::Prefix(_) => match all.split_last() {
                    Some((p, rest)) => (rest.to_vec(), Some(*p)),
                    None => (Vec::new(), None),
                },
                _ => (all, None),
            };
            for t in whole {
                // Rarer terms make better snippets, as tantivy's own generator weighs them.
                let df = searcher.doc_freq(&Term::from_field_text(fields.text, t))?;
                terms.insert(t.to_owned(), 1.0 / (1.0 + df as Score));
            }
            prefixes.extend(prefix.map(str::to_owned));
        }
        Ok(Snippets {
            terms,
            prefixes,
            field: fields.text,
            analyzer: tokenize::text_analyzer(),
        })
    }

    /// The snippet of `text` on one line, with the byte ranges to highlight.
    fn cut(&self, text: &str) -> (String, Vec<Range<usize>>) {
        let mut terms = self.terms.clone();
        if !self.prefixes.is_empty() {
            let mut analyzer = self.analyzer.clone();
            for (_, t) in tokenize::terms(&mut analyzer, text) {
                if self.prefixes.iter().any(|p| t.starts_with(p.as_str())) {
                    terms.entry(t).or_insert(0.5);
                }
            }
        }
        let generator =
            SnippetGenerator::new(terms, tokenize::text_analyzer(), self.field, SNIPPET_CHARS);
        let snippet = generator.snippet(text);
        let (fragment, base, ranges) = if snippet.is_empty() {
            // Only the title matched: show how the message begins.
            let end = text
                .char_indices()
                .nth(SNIPPET_CHARS)
                .map_or(text.len(), |(i, _)| i);
            (&text[..end], 0, Vec::new())
        } else {
            let r = snippet.fragment_range();
            (
                snippet.fragment(),
                r.start,
                collapse_overlapped_ranges(snippet.highlighted()),
            )
        };
        one_line(text, fragment, base, &ranges)
    }
}

/// Collapses whitespace runs to single spaces and marks cut ends with `…`, moving the
/// highlight ranges along.
fn one_line(
    text: &str,
    fragment: &str,
    base: usize,
    ranges: &[Range<usize>],
) -> (String, Vec<Range<usize>>) {
    let mut out = String::with_capacity(fragment.len() + 8);
    let cut_start = base > 0 && !text[..base.min(text.len())].trim().is_empty();
    let cut_end = !text
        .get(base + fragment.len()..)
        .unwrap_or("")
        .trim()
        .is_empty();
    if cut_start {
        out.push('…');
    }
    // Map each fragment byte offset to the output offset.
    let mut map = vec![0usize; fragment.len() + 1];
    let mut last_space = true;
    let lead = out.len();
    for (i, c) in fragment.char_indices() {
        map[i..i + c.len_utf8()].fill(out.len());
        if c.is_whitespace() {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = false;
        }
    }
    map[fragment.len()] = out.len();
    let trimmed = out.trim_end().len();
    out.truncate(trimmed.max(lead));
    let highlights = ranges
        .iter()
        .filter(|r| r.end <= fragment.len() && r.start < r.end)
        .map(|r| map[r.start].min(out.len())..map[r.end].min(out.len()))
        .filter(|r| r.start < r.end)
        .collect();
    if cut_end {
        out.push('…');
    }
    (out, highlights)
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn snippets_are_one_line_and_highlights_follow() {
        let text = "intro\n\nthe  quick\n brown fox";
        let fragment = &text[7..];
        // "quick" and "fox" in fragment coordinates.
        let (s, h) = one_line(text, fragment, 7, &[5..10, 18..21]);
        assert_eq!(s, "…the quick brown fox");
        let shown: Vec<&str> = h.iter().map(|r| &s[r.clone()]).collect();
        assert_eq!(shown, ["quick", "fox"]);
        let fox = 2..5;
        let (s, h) = one_line("a fox and more", "a fox", 0, std::slice::from_ref(&fox));
        assert_eq!(s, "a fox…");
        assert_eq!(&s[h[0].clone()], "fox");
    }
}
