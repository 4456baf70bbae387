//! Keeping the index current: archived conversations → documents (one per visible
//! message, on every branch), batches of changed conversations committed with the
//! change feed's high-water mark, and full builds.

use super::SearchError;
use super::index::SearchIndex;
use super::schema::Fields;
use crate::archive::{Archive, ArchiveError, StoredConversation};
use crate::model::citations;
use crate::model::content::Content;
use std::sync::atomic::{AtomicBool, Ordering};
use tantivy::schema::Term;
use tantivy::{DateTime, IndexWriter, TantivyDocument};

/// Where the index learns which conversations changed: the archive's change feed
/// (sequence number → conversation id, each conversation at its latest number).
pub trait ChangeFeed {
    /// The newest sequence number (0 when nothing was ever recorded).
    fn last_seq(&self) -> Result<u64, ArchiveError>;
    /// Up to `limit` entries with a sequence number above `after`, in order.
    fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<(u64, String)>, ArchiveError>;
}

/// A feed that never reports a change: an index kept by full builds and explicit
/// [`SearchIndex::update`] calls only.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoFeed;

impl ChangeFeed for NoFeed {
    fn last_seq(&self) -> Result<u64, ArchiveError> {
        Ok(0)
    }
    fn changes_since(&self, _: u64, _: usize) -> Result<Vec<(u64, String)>, ArchiveError> {
        Ok(Vec::new())
    }
}

/// The archive's own change feed (see `Archive::changes_since`).
impl ChangeFeed for Archive {
    fn last_seq(&self) -> Result<u64, ArchiveError> {
        self.last_change_seq()
    }
    fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<(u64, String)>, ArchiveError> {
        Archive::changes_since(self, after).take(limit).collect()
    }
}

/// Which kind of work a [`Progress`] report is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Indexing the whole archive.
    Build,
    /// Indexing conversations the change feed names.
    Update,
}

/// Progress of indexing, reported after each conversation of a build and each batch
/// of an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Build or update.
    pub stage: Stage,
    /// Conversations done.
    pub done: u64,
    /// Conversations to do, when known.
    pub total: Option<u64>,
}

/// What an update did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpdateReport {
    /// Conversations (re)indexed.
    pub conversations: u64,
    /// Message documents written.
    pub messages: u64,
    /// Conversations no longer in the archive (their documents removed).
    pub missing: u64,
    /// Conversations that could not be read (logged and left out).
    pub unreadable: u64,
}

/// What a build or catch-up did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildReport {
    /// Whether the whole archive was indexed.
    pub full_build: bool,
    /// Totals.
    pub indexed: UpdateReport,
    /// The high-water mark committed last.
    pub mark: u64,
}

impl UpdateReport {
    fn add(&mut self, other: &UpdateReport) {
        self.conversations += other.conversations;
        self.messages += other.messages;
        self.missing += other.missing;
        self.unreadable += other.unreadable;
    }
}

impl SearchIndex {
    /// Re-indexes these conversations in one commit: their documents are replaced by
    /// the archive's current ones (or removed when the archive no longer has them).
    /// The commit records `mark` as the high-water mark (`None` keeps the current one).
    pub fn update(
        &self,
        archive: &Archive,
        ids: &[String],
        mark: Option<u64>,
    ) -> Result<UpdateReport, SearchError> {
        let mark = match mark {
            Some(m) => Some(m),
            None => self.mark()?,
        };
        let fields = *self.fields();
        self.with_writer(self.options().writer_threads, |w| {
            let mut report = UpdateReport::default();
            for id in ids {
                w.delete_term(Term::from_field_text(fields.conv_id, id));
                add_conversation(self.dir(), w, &fields, archive, id, &mut report)?;
            }
            self.commit(w, mark)?;
            Ok(report)
        })
    }

    /// Indexes the whole archive from scratch, in one commit: until it is done the
    /// previous commit stays searchable. The feed's newest sequence number is taken
    /// before the scan and committed as the mark, so writes during the build are
    /// picked up by the next [`Self::catch_up`]. Stops without committing when
    /// `cancel` is set.
    pub fn rebuild(
        &self,
        archive: &Archive,
        feed: &dyn ChangeFeed,
        progress: &mut dyn FnMut(Progress),
        cancel: &AtomicBool,
    ) -> Result<BuildReport, SearchError> {
        let mark = feed.last_seq()?;
        let total = archive.len() as u64;
        let fields = *self.fields();
        let started = std::time::Instant::now();
        let indexed = self.with_writer(self.options().build_threads, |w| {
            w.delete_all_documents()
                .map_err(|e| super::index::index_err(self.dir(), e))?;
            let mut report = UpdateReport::default();
            for rec in archive.iter_newest_first() {
                if cancel.load(Ordering::Relaxed) {
                    return Err(SearchError::Cancelled);
                }
                let id = rec?.summary.id;
                add_conversation(self.dir(), w, &fields, archive, &id, &mut report)?;
                progress(Progress {
                    stage: Stage::Build,
                    done: report.conversations + report.missing + report.unreadable,
                    total: Some(total),
                });
            }
            self.commit(w, Some(mark))?;
            Ok(report)
        })?;
        tracing::info!(
            "search index built: {} conversations, {} messages in {:.1} s",
            indexed.conversations,
            indexed.messages,
            started.elapsed().as_secs_f64()
        );
        Ok(BuildReport {
            full_build: true,
            indexed,
            mark,
        })
    }

    /// Brings the index up to date: a full build when it has no mark (new, started
    /// over, or an interrupted build), then the conversations the feed lists after
    /// the mark, a batch per commit. Keeps the writer; call
    /// [`Self::release_writer`] when idle.
    pub fn catch_up(
        &self,
        archive: &Archive,
        feed: &dyn ChangeFeed,
        progress: &mut dyn FnMut(Progress),
        cancel: &AtomicBool,
    ) -> Result<BuildReport, SearchError> {
        let mut report = match self.mark()? {
            Some(mark) => BuildReport {
                mark,
                ..BuildReport::default()
            },
            None => self.rebuild(archive, feed, progress, cancel)?,
        };
        let mut done = 0u64;
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Err(SearchError::Cancelled);
            }
            let batch = feed.changes_since(report.mark, self.options().batch.max(1))?;
            let Some(&(last, _)) = batch.last() else {
                break;
            };
            let mut ids: Vec<String> = batch.into_iter().map(|(_, id)| id).collect();
            ids.sort_unstable();
            ids.dedup();
            let r = self.update(archive, &ids, Some(last))?;
            report.indexed.add(&r);
            report.mark = last;
            done += ids.len() as u64;
            progress(Progress {
                stage: Stage::Update,
                done,
                total: None,
            });
        }
        Ok(report)
    }
}

/// Adds a conversation's documents. A conversation that cannot be read is logged and
/// left out; only a failing archive or index stops the batch.
fn add_conversation(
    dir: &std::path::Path,
    w: &IndexWriter,
    fields: &Fields,
    archive: &Archive,
    id: &str,
    report: &mut UpdateReport,
) -> Result<(), SearchError> {
    let stored = match archive.get(id) {
        Ok(Some(s)) => s,
        Ok(None) => {
            report.missing += 1;
            return Ok(());
        }
        Err(e @ (ArchiveError::Corrupt(_) | ArchiveError::Model { .. })) => {
            tracing::warn!("conversation {id} is left out of the search index: {e}");
            report.unreadable += 1;
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let docs = match documents(fields, &stored) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!("conversation {id} is left out of the search index: {e}");
            report.unreadable += 1;
            return Ok(());
        }
    };
    report.conversations += 1;
    report.messages += docs.len() as u64;
    for d in docs {
        w.add_document(d)
            .map_err(|e| super::index::index_err(dir, e))?;
    }
    Ok(())
}

/// The text the index holds for a message: the text a reader sees (Export schema v1
/// `text`) and its thought summaries.
pub(crate) fn searchable_text(content: &Content<'_>) -> String {
    let mut text = without_citation_markers(content.text());
    for s in content.thoughts.iter().filter_map(|t| t.summary.as_deref()) {
        if !s.is_empty() {
            text.push('\n');
            text.push_str(s);
        }
    }
    text
}

/// `text` without 2025+ citation markers (`U+E200 cite U+E202 turn0search0 U+E201`):
/// they are no words a reader sees, and would show in snippets as `citeturn0search0`.
/// An `entity` marker keeps the name the UI shows in its place.
fn without_citation_markers(text: String) -> String {
    match citations::map_markers(&text, |inner| {
        citations::entity_name(inner).unwrap_or_default()
    }) {
        // An unclosed marker: keep what follows, only the bracket goes.
        Some(mapped) => mapped.replace(citations::MARK_START, ""),
        None => text,
    }
}

/// The searchable text of one message of a stored conversation, by node id.
pub(crate) fn message_text(stored: &StoredConversation, node_id: &str) -> Option<String> {
    let conv = stored.parse().ok()?;
    let node = conv.nodes().iter().find(|n| n.key.as_ref() == node_id)?;
    let m = node.message.as_ref()?;
    Some(searchable_text(&m.content()))
}

/// The documents of a conversation: one per visible message with something to find,
/// on every branch (visible as in Export schema v1: a node with a message that is not
/// `is_visually_hidden_from_conversation`). A conversation with none gets one
/// document for its title alone, so it can still be found by it.
pub(crate) fn documents(
    fields: &Fields,
    stored: &StoredConversation,
) -> Result<Vec<TantivyDocument>, ArchiveError> {
    let conv = stored.parse()?;
    let record = &stored.record;
    let summary = &record.summary;
    let nodes = conv.nodes();
    let mut active = vec![false; nodes.len()];
    for i in conv.active_branch() {
        active[i] = true;
    }
    let default_model = conv.default_model_slug.as_deref().filter(|s| !s.is_empty());
    let conv_time = summary.update_time.or(summary.create_time);
    let title = summary.title.as_deref().filter(|t| !t.trim().is_empty());
    let common = |doc: &mut TantivyDocument| {
        doc.add_text(fields.conv_id, &summary.id);
        if let Some(t) = title {
            doc.add_text(fields.title, t);
        }
        if let Some(p) = &record.remote.project {
            doc.add_text(fields.project, p);
        }
        if let Some(m) = &summary.model {
            doc.add_text(fields.model, m);
        }
        doc.add_bool(fields.archived, record.is_archived());
        doc.add_bool(fields.deleted, record.deleted_remotely);
    };
    let mut docs = Vec::new();
    for (node, on_active) in nodes.iter().zip(active) {
        let Some(m) = &node.message else { continue };
        let meta = m.meta();
        if meta.hidden() {
            continue;
        }
        let content = m.content();
        let mut text = searchable_text(&content);
        if text.trim().is_empty() {
            continue;
        }
        // The title is part of every message's text, so a query matches on one field
        // (the title field only adds to the score of title matches).
        if let Some(t) = title {
            text.insert_str(0, "\n\n");
            text.insert_str(0, t);
        }
        let role = m.role();
        let mut doc = TantivyDocument::new();
        common(&mut doc);
        doc.add_text(fields.message_id, m.id.as_deref().unwrap_or(&node.key));
        doc.add_text(fields.node_id, &node.key);
        doc.add_text(fields.role, role);
        doc.add_text(fields.content_type, content.kind());
        doc.add_text(fields.text, &text);
        add_time(&mut doc, fields, m.create_time.secs().or(conv_time));
        let model = meta
            .model_slug
            .as_deref()
            .or(default_model.filter(|_| role == "assistant"));
        if let Some(model) = model.filter(|s| Some(*s) != summary.model.as_deref()) {
            doc.add_text(fields.model, model);
        }
        doc.add_bool(fields.active, on_active);
        docs.push(doc);
    }
    if docs.is_empty()
        && summary
            .title
            .as_deref()
            .is_some_and(|t| !t.trim().is_empty())
    {
        let mut doc = TantivyDocument::new();
        common(&mut doc);
        if let Some(t) = title {
            doc.add_text(fields.text, t);
        }
        add_time(&mut doc, fields, conv_time);
        doc.add_bool(fields.active, true);
        docs.push(doc);
    }
    Ok(docs)
}

fn add_time(doc: &mut TantivyDocument, fields: &Fields, secs: Option<f64>) {
    if let Some(s) = secs.filter(|s| s.is_finite()) {
        doc.add_date(fields.time, DateTime::from_timestamp_secs(s as i64));
    }
}

#[cfg(test)]
mod tests {
    use super::without_citation_markers;

    #[test]
    fn citation_markers_are_not_searchable_text() {
        let t = "Stay in Positano.\u{E200}cite\u{E202}turn0search0\u{E202}turn1news2\u{E201} Then Ravello.";
        assert_eq!(
            without_citation_markers(t.to_owned()),
            "Stay in Positano. Then Ravello."
        );
        assert_eq!(without_citation_markers("plain".to_owned()), "plain");
        assert_eq!(
            without_citation_markers(
                "See \u{E200}entity\u{E202}[\"city\",\"Paris\",{}]\u{E201} first.".to_owned()
            ),
            "See Paris first."
        );
        assert_eq!(
            without_citation_markers("a \u{E200}cite unclosed".to_owned()),
            "a cite unclosed"
        );
    }
}
