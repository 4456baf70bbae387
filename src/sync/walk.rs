//! Walking the listings: the normal and archived listings newest first down to the
//! frontier (plus an overlap), the project sidebar and each project's own listing, and
//! on a full run the deletions that only a complete walk can see.

use super::{EPSILON, Optional, PAGE, REPORT_LIST_MAX, Run, StopReason};
use crate::api::{ListItem, Listing, Project};
use crate::archive::ArchiveError;
use crate::util::blocking;

/// What a listing row says about a conversation's project name.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum ProjectName {
    /// In this project.
    Set(String),
    /// In no project (the row names no project gizmo).
    Clear,
    /// Unknown: the row does not say, or the project's name is not known (yet).
    Keep,
}

/// What happened to one listed conversation.
pub(super) enum Step {
    /// Fetched and stored.
    Fetched,
    /// Unchanged, not fetched.
    Skipped,
    /// Could not be fetched or stored this run.
    Failed,
}

/// A cursor-paged endpoint's position (the project sidebar and project listings page
/// this way, not by offset).
#[derive(Default)]
struct Cursor(Option<String>);

impl Cursor {
    fn get(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// Moves on to the cursor a page named; `false` when there is no next page (none
    /// named, or the same one again, which would go round for ever).
    fn advance(&mut self, next: Option<String>) -> bool {
        match next {
            Some(c) if Some(&c) != self.0.as_ref() => {
                self.0 = Some(c);
                true
            }
            _ => false,
        }
    }
}

impl Run<'_> {
    /// Whether every listing was read whole, so what was not seen is really gone.
    pub(super) fn walk_complete(&self) -> bool {
        self.report.unreadable_rows == 0
            && !(self.opts.projects
                && (self.degraded.contains(&Optional::ProjectNames)
                    || self.degraded.contains(&Optional::ProjectListings)))
    }

    /// Counts unreadable rows of a page starting at `offset` of `listing`, once each.
    fn note_unreadable(&mut self, listing: &str, offset: u64, rows: &[usize]) -> usize {
        let mut new = 0;
        for &i in rows {
            let at = offset + i as u64;
            if !self.unreadable_seen.insert((listing.to_owned(), at)) {
                continue;
            }
            new += 1;
            self.report.unreadable_rows += 1;
            let place = format!("{listing} at offset {at}");
            tracing::warn!(
                "the row of the {place} could not be read (no conversation id); skipped, the \
                 walk goes on"
            );
            if self.report.unreadable.len() < REPORT_LIST_MAX {
                self.report.unreadable.push(place);
            }
        }
        new
    }

    fn frontier(&self, listing: Listing) -> Option<f64> {
        match listing {
            Listing::Normal => self.state.normal_frontier,
            Listing::Archived => self.state.archived_frontier,
        }
    }

    /// Walks one listing newest first, down to its frontier (plus the overlap) or, on a
    /// full run, to its end; then moves the frontier past what was archived.
    pub(super) async fn walk(&mut self, listing: Listing) -> Result<(), StopReason> {
        let frontier = if self.opts.full {
            None
        } else {
            self.frontier(listing)
        };
        let name = match listing {
            Listing::Normal => "normal listing",
            Listing::Archived => "archived listing",
        };
        let mut offset = 0u64;
        let mut below = 0u32;
        let mut newest_ok: Option<f64> = None;
        let mut oldest_failed: Option<f64> = None;
        loop {
            if self.cancelled() {
                return Ok(());
            }
            let page = self.client.list(listing, offset, PAGE).await?;
            // Page by the rows the server sent, not by the rows that could be read.
            let n = page.rows;
            let mut fresh = self.note_unreadable(name, offset, &page.unreadable);
            for item in page.items {
                let t = item.update_time.secs();
                if !self.seen.insert(item.id.clone()) {
                    continue;
                }
                fresh += 1;
                if let (Some(f), Some(t)) = (frontier, t)
                    && t <= f
                {
                    below += 1;
                }
                self.report.listed += 1;
                if self.cancelled() {
                    return Ok(());
                }
                match self.item(&item, listing == Listing::Archived, None).await? {
                    Step::Failed => {
                        if let Some(t) = t {
                            oldest_failed = Some(oldest_failed.map_or(t, |o: f64| o.min(t)));
                        }
                    }
                    Step::Fetched | Step::Skipped => {
                        if let Some(t) = t {
                            newest_ok = Some(newest_ok.map_or(t, |o: f64| o.max(t)));
                        }
                    }
                }
            }
            if n < PAGE as usize || (frontier.is_some() && below >= self.opts.overlap.max(1)) {
                break;
            }
            if fresh == 0 {
                // A full page of nothing new: the server is not paging (it ignores the
                // offset), and asking on would go round for ever.
                tracing::warn!(
                    "the {name} answered offset {offset} with rows already seen; stopping its walk here"
                );
                break;
            }
            // Offsets shift while paging: a conversation archived or deleted meanwhile
            // moves everything after it up, so a page that starts right after this one
            // would skip whatever crossed the boundary. Overlap the pages; `seen` drops
            // the repeats.
            offset += (n as u64).saturating_sub(u64::from(self.opts.overlap.min(PAGE / 2)));
        }
        self.advance_frontier(listing, oldest_failed, newest_ok);
        Ok(())
    }

    /// Advances a listing's frontier only past what was archived: a failure holds it
    /// just below the oldest failure, so the next run lists that again.
    fn advance_frontier(
        &mut self,
        listing: Listing,
        oldest_failed: Option<f64>,
        newest_ok: Option<f64>,
    ) {
        let new = match (oldest_failed, self.frontier(listing), newest_ok) {
            (Some(f), _, _) => Some(f - EPSILON),
            (None, Some(o), Some(n)) => Some(o.max(n)),
            (None, o, n) => o.or(n),
        };
        match listing {
            Listing::Normal => self.state.normal_frontier = new,
            Listing::Archived => self.state.archived_frontier = new,
        }
    }

    /// Every page of the project sidebar (asked once per run), with the names
    /// remembered; `None` when the sidebar failed (a degraded part).
    async fn sidebar(&mut self) -> Result<Option<Vec<Project>>, StopReason> {
        if let Some(projects) = &self.sidebar {
            return Ok(Some(projects.clone()));
        }
        if self.degraded.contains(&Optional::ProjectNames) {
            return Ok(None);
        }
        let mut cursor = Cursor::default();
        let mut projects = Vec::new();
        loop {
            match self.client.projects(cursor.get()).await {
                Ok((page, next)) => {
                    projects.extend(page);
                    if !cursor.advance(next) {
                        break;
                    }
                }
                Err(e) => {
                    self.degrade(Optional::ProjectNames, e)?;
                    return Ok(None);
                }
            }
        }
        for p in &projects {
            self.state.projects.insert(p.id.clone(), p.name.clone());
        }
        self.sidebar = Some(projects.clone());
        Ok(Some(projects))
    }

    /// Walks each project's own listing. Incomplete (a failed sidebar or listing) leaves
    /// `projects_walked` unset, so the next run walks them again and fills in names.
    pub(super) async fn walk_projects(&mut self) -> Result<(), StopReason> {
        let Some(projects) = self.sidebar().await? else {
            return Ok(());
        };
        for p in projects {
            let name = format!("listing of project {}", p.id);
            let mut cursor = Cursor::default();
            let mut offset = 0u64;
            loop {
                if self.cancelled() {
                    return Ok(());
                }
                let (page, next) =
                    match self.client.project_conversations(&p.id, cursor.get()).await {
                        Ok(answer) => answer,
                        Err(e) => {
                            self.degrade(Optional::ProjectListings, e)?;
                            return Ok(());
                        }
                    };
                self.note_unreadable(&name, offset, &page.unreadable);
                offset += page.rows as u64;
                for item in page.items {
                    if !self.seen.insert(item.id.clone()) {
                        continue;
                    }
                    self.report.listed += 1;
                    self.item(&item, false, Some(&p.id)).await?;
                }
                if !cursor.advance(next) {
                    break;
                }
            }
        }
        self.state.projects_walked = true;
        Ok(())
    }

    /// The project name for a listing item (`in_project`: the project whose own listing
    /// showed it), asking the sidebar once per run when an unknown project appears.
    pub(super) async fn project_name(
        &mut self,
        item: &ListItem,
        in_project: Option<&str>,
    ) -> Result<ProjectName, StopReason> {
        let gizmo = in_project.or(item.gizmo_id.as_deref());
        let Some(g) = gizmo.filter(|g| g.starts_with("g-p-")) else {
            // A row that names no project gizmo (none, or a custom GPT's) is in no
            // project; one that does not carry `gizmo_id` at all says nothing.
            return Ok(if item.gizmo_listed || gizmo.is_some() {
                ProjectName::Clear
            } else {
                ProjectName::Keep
            });
        };
        if !self.state.projects.contains_key(g)
            && self.opts.projects
            && self.sidebar().await?.is_some()
        {
            // Remember an id the sidebar does not list as nameless, so it is asked
            // once; after a failed sidebar nothing is remembered and a later run asks.
            self.state.projects.entry(g.to_owned()).or_default();
        }
        Ok(match self.state.projects.get(g).filter(|n| !n.is_empty()) {
            Some(n) => ProjectName::Set(n.clone()),
            None => ProjectName::Keep,
        })
    }

    /// Marks what a complete walk did not see as deleted on chatgpt.com (kept in the
    /// archive), and clears the mark of what is back.
    pub(super) async fn mark_deletions(&mut self) {
        let a = self.archive.clone();
        let seen = std::mem::take(&mut self.seen);
        let marked = blocking("marking deleted conversations", move || -> Result<u64, ArchiveError> {
            let mut marked = 0;
            let ids: Vec<(String, bool)> = a
                .iter_newest_first()
                .filter_map(Result::ok)
                .map(|r| (r.summary.id.clone(), r.deleted_remotely))
                .collect();
            for (id, deleted) in ids {
                let gone = !seen.contains(&id);
                if gone != deleted {
                    a.update_remote(&id, |r| r.deleted_remotely = gone)?;
                    if gone {
                        tracing::info!("conversation {id} is no longer on chatgpt.com; kept and marked deleted_remotely");
                        marked += 1;
                    }
                }
            }
            Ok(marked)
        })
        .await;
        match marked {
            Ok(Ok(n)) => self.report.deleted_remotely = n,
            Ok(Err(e)) => tracing::warn!("could not mark deleted conversations: {e}"),
            Err(_) => {} // logged by `blocking`
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cursor;

    #[test]
    fn a_cursor_stops_when_none_is_named_or_the_same_comes_back() {
        let mut c = Cursor::default();
        assert_eq!(c.get(), None);
        assert!(c.advance(Some("2".into())));
        assert_eq!(c.get(), Some("2"));
        assert!(!c.advance(Some("2".into())), "the same cursor again");
        assert!(!c.advance(None));
        assert!(c.advance(Some("3".into())));
    }
}
