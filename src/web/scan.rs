//! A [`SearchProvider`] over the archive itself, with what `convos search` uses: every
//! word must appear in the title or the visible messages (case-insensitive), newest
//! first. It stands in until the full-text index answers `/?q=`; the daemon picks the
//! provider in one place (`daemon/web.rs`).

use super::search::{SearchError, SearchHit, SearchProvider, SearchQuery, SearchResults};
use crate::archive::Archive;
use crate::archive::schema::ConvRecord;
use crate::commands::search as scan;

/// Searches by reading the archive.
#[derive(Clone, Debug)]
pub struct ScanSearch {
    archive: Archive,
}

impl ScanSearch {
    /// A provider over `archive`.
    pub fn new(archive: Archive) -> Self {
        Self { archive }
    }
}

impl SearchProvider for ScanSearch {
    fn search(&self, q: &SearchQuery) -> Result<SearchResults, SearchError> {
        let terms = scan::terms(std::slice::from_ref(&q.text));
        if terms.is_empty() {
            return Err(SearchError::BadQuery("type at least one word".into()));
        }
        let keep = |rec: &ConvRecord| {
            q.project
                .as_deref()
                .is_none_or(|p| rec.remote.project.as_deref() == Some(p))
                && q.archived.is_none_or(|a| rec.is_archived() == a)
                && q.deleted.is_none_or(|d| rec.deleted_remotely == d)
        };
        // One more than the page holds tells whether another page follows.
        let want = q.offset.saturating_add(q.limit).saturating_add(1);
        let found = scan::find(&self.archive, &terms, &keep, want)
            .map_err(|e| SearchError::Unavailable(e.to_string()))?;
        let more = found.len() > q.offset.saturating_add(q.limit);
        let hits: Vec<SearchHit> = found
            .into_iter()
            .skip(q.offset)
            .take(q.limit)
            .map(|h| {
                let snippet = h.snippets.into_iter().next().unwrap_or_default();
                SearchHit {
                    highlights: highlights(&snippet, &terms),
                    conversation_id: h.id,
                    title: h.title,
                    update_time: h.update_time,
                    message_id: h.node,
                    role: h.role,
                    snippet,
                    score: 0.0,
                }
            })
            .collect();
        // Counting every match would read the whole archive; say how many are known.
        let total = (!more).then_some(q.offset + hits.len());
        Ok(SearchResults { hits, total })
    }
}

/// Byte ranges of `snippet` where a term occurs, ignoring ASCII case (other letters
/// must match as typed, so ranges stay on character boundaries).
fn highlights(snippet: &str, terms: &[String]) -> Vec<std::ops::Range<usize>> {
    let lower = snippet.to_ascii_lowercase();
    let mut out: Vec<std::ops::Range<usize>> = Vec::new();
    for t in terms {
        let t = t.to_ascii_lowercase();
        let mut from = 0;
        while let Some(p) = lower[from..].find(&t) {
            let start = from + p;
            out.push(start..start + t.len());
            from = start + t.len().max(1);
        }
    }
    out.sort_by_key(|r| r.start);
    out.dedup_by(|b, a| b.start < a.end);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlights_mark_every_term_once() {
        let h = highlights(
            "Porto has the better PORTO views",
            &["porto".into(), "the".into()],
        );
        assert_eq!(h, vec![0..5, 10..13, 21..26]);
        assert!(
            highlights("café", &["é".into()])
                .iter()
                .all(|r| "café".is_char_boundary(r.start))
        );
    }
}
