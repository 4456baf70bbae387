//! Walking the listings, before anything is fetched: the normal listing newest first
//! down to the frontier (plus an overlap), the archived listing whole, the project
//! sidebar and each project's own listing. A walk only lists: changed conversations
//! are queued (see [`super::fetch`]), unchanged ones have their flags brought up to
//! date. Pages come seconds apart, so they barely shift under the walk; they still
//! overlap by a couple of rows, and a page that starts past every row seen (rows
//! above it moved away meanwhile) is read again from further up. The frontier moves
//! at the end of the run, past what was archived.

use super::fetch::Pending;
use super::{EPSILON, Optional, PAGE, REPORT_LIST_MAX, REREAD_AFTER, Run, StopReason};
use crate::api::{ListItem, Listing, Project};
use crate::util::blocking;

/// Rows each page repeats of the one before (offsets shift while paging).
const PAGE_OVERLAP: usize = 2;
/// Times a walk steps back after a page that starts past every row seen, before it
/// gives up on being complete.
const MAX_STEPS_BACK: u32 = 3;

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

/// Where a listed conversation was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Source {
    /// The normal listing (its frontier must not pass what is not archived).
    Normal,
    /// The archived listing.
    Archived,
    /// A project's own listing.
    Project,
}

impl Run<'_> {
    /// Whether every listing was read whole, so what none showed may really be gone.
    pub(super) fn walk_complete(&self) -> bool {
        self.normal.complete
            && (!self.opts.archived || self.archived.complete)
            && self.report.unreadable_rows == 0
            && !self.cancelled()
            && !(self.opts.projects
                && (!self.projects_complete
                    || self.degraded.contains(&Optional::ProjectNames)
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

    /// Walks one listing newest first: the normal one down to its frontier (plus the
    /// overlap), or to its end on a full run or when there is no frontier; the archived
    /// one always to its end (archiving moves no `update_time`, so a frontier would
    /// hide it). Lists only: what changed is queued.
    pub(super) async fn walk(&mut self, listing: Listing) -> Result<(), StopReason> {
        let frontier = match listing {
            Listing::Normal if !self.opts.full => self.state.normal_frontier,
            _ => None,
        };
        let (name, source) = match listing {
            Listing::Normal => ("normal listing", Source::Normal),
            Listing::Archived => ("archived listing", Source::Archived),
        };
        let mut offset = 0u64;
        let mut below = 0u32;
        let mut steps_back = 0u32;
        let mut walked = super::Walked::default();
        let mut sure = true;
        loop {
            if self.cancelled() {
                break;
            }
            let page = self.client.list(listing, offset, PAGE).await?;
            if offset == 0 && listing == Listing::Normal {
                self.first_page_at = Some(tokio::time::Instant::now());
            }
            if let Some(total) = page.total {
                tracing::debug!(
                    "{name} at offset {offset}: {} rows, total {total} (a hint)",
                    page.rows
                );
            }
            let starts_unseen = offset > 0
                && !page.items.is_empty()
                && !page
                    .items
                    .iter()
                    .take(PAGE_OVERLAP)
                    .any(|i| self.seen.contains_key(&i.id));
            if starts_unseen {
                // Rows above moved away since the last page (archived, deleted): more
                // than the overlap absorbs, so some may have been jumped over.
                if steps_back < MAX_STEPS_BACK {
                    steps_back += 1;
                    tracing::debug!(
                        "the {name} shifted under the walk at offset {offset}; reading again \
                         from further up"
                    );
                    offset = offset.saturating_sub(u64::from(PAGE / 2));
                    continue;
                }
                tracing::warn!(
                    "the {name} keeps shifting under the walk; this run cannot be sure it \
                     saw every conversation, so it keeps its frontier"
                );
                sure = false;
            }
            // Page by the rows the server sent, not by the rows that could be read.
            let n = page.rows;
            let unreadable = self.note_unreadable(name, offset, &page.unreadable);
            walked.unreadable += unreadable as u64;
            let mut fresh = unreadable;
            for item in page.items {
                let t = item.update_time.secs();
                if self.seen.contains_key(&item.id) {
                    continue;
                }
                self.seen.insert(item.id.clone(), t);
                fresh += 1;
                if let (Some(f), Some(t)) = (frontier, t)
                    && t <= f
                {
                    below += 1;
                }
                self.report.listed += 1;
                if self.cancelled() {
                    break;
                }
                self.consider(&item, source, None).await?;
            }
            if n < PAGE as usize || (frontier.is_some() && below >= self.opts.overlap.max(1)) {
                walked.complete = sure && !self.cancelled();
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
            offset += (n - PAGE_OVERLAP.min(n)) as u64;
        }
        match listing {
            Listing::Normal => self.normal = walked,
            Listing::Archived => self.archived = walked,
        }
        Ok(())
    }

    /// One listed conversation: queued when its listing time moved (or it is new),
    /// else only its flags are brought up to date.
    pub(super) async fn consider(
        &mut self,
        item: &ListItem,
        source: Source,
        in_project: Option<&str>,
    ) -> Result<(), StopReason> {
        let a = self.archive.clone();
        let rid = item.id.clone();
        let record = blocking("reading a conversation record", move || a.record(&rid))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        let list_time = item.update_time.secs();
        if source == Source::Normal
            && let Some(t) = list_time
        {
            self.normal_newest = Some(self.normal_newest.map_or(t, |n: f64| n.max(t)));
        }
        let flags = super::fetch::Flags {
            is_archived: source == Source::Archived || item.is_archived == Some(true),
            starred: item.is_starred,
            list_time,
            project: self.project_name(item, in_project).await?,
        };
        match record {
            Some(r) if !self.changed(&r, list_time) => {
                self.report.unchanged += 1;
                self.update_flags(&item.id, &r, flags).await;
            }
            _ => {
                self.unsettled.insert(item.id.clone());
                if source == Source::Normal
                    && let Some(t) = list_time
                {
                    self.unsettled_normal.insert(item.id.clone(), t);
                }
                self.queue.push(Pending {
                    id: item.id.clone(),
                    flags,
                });
            }
        }
        Ok(())
    }

    /// Reads the normal listing's first page again at the end of a long run: what
    /// changed meanwhile moved to its top. Anything new there is fetched now.
    pub(super) async fn reread(&mut self) -> Result<(), StopReason> {
        if !self.normal.complete || self.cancelled() {
            return Ok(());
        }
        let Some(at) = self.first_page_at else {
            return Ok(());
        };
        if at.elapsed() < REREAD_AFTER {
            return Ok(());
        }
        let page = self.client.list(Listing::Normal, 0, PAGE).await?;
        self.note_unreadable("normal listing", 0, &page.unreadable);
        let mut moved = 0;
        for item in page.items {
            let t = item.update_time.secs();
            match self.seen.get(&item.id) {
                Some(before) if *before == t => continue,
                Some(_) => {}
                None => self.report.listed += 1,
            }
            moved += 1;
            self.seen.insert(item.id.clone(), t);
            self.consider(&item, Source::Normal, None).await?;
        }
        if moved > 0 {
            tracing::info!(
                "{moved} conversations changed on chatgpt.com during this run; fetching them now"
            );
        }
        self.fetch_queue().await
    }

    /// Moves the normal listing's frontier at the end of a run: it advances (to the
    /// newest listing time seen) only after a complete walk whose every changed
    /// conversation was archived. Otherwise it never moves forward, and it moves back
    /// to just below a conversation that is not archived yet, should one be older.
    pub(super) fn advance_frontier(&mut self) {
        let oldest = self
            .unsettled_normal
            .iter()
            .filter(|(id, _)| self.unsettled.contains(*id))
            .map(|(_, t)| *t)
            .reduce(f64::min);
        let old = self.state.normal_frontier;
        self.state.normal_frontier = match (self.normal.complete, oldest, old) {
            (true, None, Some(o)) => Some(self.normal_newest.map_or(o, |n| o.max(n))),
            (true, None, None) => self.normal_newest,
            (_, Some(f), Some(o)) => Some(o.min(f - EPSILON)),
            (_, _, o) => o,
        };
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

    /// Walks each project's own listing (listing only: what changed is queued).
    /// Incomplete (a failed sidebar or listing) leaves `projects_walked` unset, so the
    /// next run walks them again and fills in names.
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
                    if self.seen.contains_key(&item.id) {
                        continue;
                    }
                    self.seen.insert(item.id.clone(), item.update_time.secs());
                    self.report.listed += 1;
                    self.consider(&item, Source::Project, Some(&p.id)).await?;
                }
                if !cursor.advance(next) {
                    break;
                }
            }
        }
        self.projects_complete = true;
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
