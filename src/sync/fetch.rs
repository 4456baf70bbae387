//! Fetching and storing: one listed conversation (decide, update its flags, or fetch
//! it and store it through [`Archive::upsert`](crate::archive::Archive::upsert)), then
//! the attachments the archive is missing.

use super::walk::{ProjectName, Step};
use super::{EPSILON, FLUSH_EVERY, OUTAGE_AFTER, Optional, Run, StopReason};
use crate::api::{ApiError, ListItem};
use crate::archive::Outcome;
use crate::archive::schema::ConvRecord;
use crate::model::RawConversation;
use crate::util::{backoff, blocking};
use std::collections::HashSet;
use std::time::Duration;

/// The first wait before an attachment that failed is tried again (it doubles).
const FILE_RETRY_BASE: Duration = Duration::from_secs(86_400);
/// The longest wait between attempts at one attachment.
const FILE_RETRY_MAX: Duration = Duration::from_secs(30 * 86_400);

/// Why an attachment could not be stored.
enum DownloadError {
    /// An endpoint failed.
    Endpoint(Optional, ApiError),
    /// The archive could not store it.
    Store(String),
}

/// What a listing row says about the conversation's remote flags, to record whether or
/// not it is fetched.
struct Flags {
    is_archived: bool,
    starred: Option<bool>,
    list_time: Option<f64>,
    project: ProjectName,
}

impl Flags {
    fn apply(&self, r: &mut ConvRecord) {
        r.remote.is_archived = Some(self.is_archived);
        if self.starred.is_some() {
            r.remote.is_starred = self.starred;
        }
        if self.list_time.is_some() {
            r.remote.list_update_time = self.list_time;
        }
        match &self.project {
            ProjectName::Set(name) => r.remote.project = Some(name.clone()),
            ProjectName::Clear => r.remote.project = None,
            ProjectName::Keep => {}
        }
        r.deleted_remotely = false;
    }
}

impl Run<'_> {
    /// One listed conversation: fetched when its listing time moved (or it is new),
    /// else only its flags are brought up to date.
    pub(super) async fn item(
        &mut self,
        item: &ListItem,
        archived_listing: bool,
        in_project: Option<&str>,
    ) -> Result<Step, StopReason> {
        let a = self.archive.clone();
        let rid = item.id.clone();
        let record = blocking("reading a conversation record", move || a.record(&rid))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        let flags = Flags {
            is_archived: archived_listing || item.is_archived == Some(true),
            starred: item.is_starred,
            list_time: item.update_time.secs(),
            project: self.project_name(item, in_project).await?,
        };
        match record {
            Some(r) if !self.changed(&r, flags.list_time) => {
                self.report.unchanged += 1;
                self.update_flags(&item.id, &r, flags).await;
                Ok(Step::Skipped)
            }
            _ => self.fetch_and_store(&item.id, flags).await,
        }
    }

    /// Whether the listing time says the conversation changed since it was archived.
    /// Against the listing time seen at the last fetch when there is one; else (it came
    /// from an export) against its own update time, with the configured tolerance.
    fn changed(&self, r: &ConvRecord, listed: Option<f64>) -> bool {
        let Some(t) = listed else {
            return false;
        };
        match r.remote.list_update_time {
            Some(lt) => t > lt + EPSILON,
            None => {
                t > r.summary.update_time.unwrap_or(f64::NEG_INFINITY) + self.opts.tolerance_secs
            }
        }
    }

    /// Records the listing's flags of an unchanged conversation, when they differ.
    async fn update_flags(&mut self, id: &str, r: &ConvRecord, flags: Flags) {
        let mut updated = r.clone();
        flags.apply(&mut updated);
        if &updated == r {
            return;
        }
        let (a, rid) = (self.archive.clone(), id.to_owned());
        let ok = blocking("updating conversation flags", move || {
            a.update_remote(&rid, |r| flags.apply(r))
        })
        .await;
        match ok {
            Ok(Err(e)) => tracing::warn!("could not update flags of {id}: {e}"),
            Err(_) => {} // logged by `blocking`
            Ok(Ok(_)) => {
                if updated.remote.is_archived != r.remote.is_archived
                    || updated.remote.is_starred != r.remote.is_starred
                    || updated.remote.project != r.remote.project
                    || updated.deleted_remotely != r.deleted_remotely
                {
                    self.report.flags_updated += 1;
                }
            }
        }
    }

    /// Fetches a conversation and stores it with its flags. A failure is counted and
    /// retried next run; a run of them is an outage, which ends the run.
    async fn fetch_and_store(&mut self, id: &str, flags: Flags) -> Result<Step, StopReason> {
        let bytes = match self.client.conversation(id).await {
            Ok(b) => b,
            Err(ApiError::NotFound) => {
                tracing::warn!(
                    "conversation {id} is listed but its detail answers 404; skipped for this run"
                );
                self.fail(format!("{id}: detail not found (404)"));
                return Ok(Step::Failed);
            }
            Err(e) if e.ends_run() => return Err(e.into()),
            Err(e) => {
                tracing::warn!("conversation {id}: {e}; it will be retried next run");
                self.fail(format!("{id}: {e}"));
                self.transient_in_a_row += 1;
                if self.transient_in_a_row >= OUTAGE_AFTER {
                    // Each failure already cost several retries: the service is down.
                    tracing::warn!(
                        "{OUTAGE_AFTER} conversations in a row failed; chatgpt.com seems to be \
                         having an outage, so this run stops here"
                    );
                    return Err(StopReason::Outage {
                        failed_in_a_row: self.transient_in_a_row,
                        last_error: e.to_string(),
                    });
                }
                return Ok(Step::Failed);
            }
        };
        self.transient_in_a_row = 0;
        let a = self.archive.clone();
        let stored = blocking(
            "storing a conversation",
            move || -> Result<Outcome, String> {
                let raw = RawConversation::from_bytes(bytes).map_err(|e| e.to_string())?;
                let got = raw.id().to_owned();
                let outcome = a.upsert(raw).map_err(|e| e.to_string())?;
                a.update_remote(&got, |r| flags.apply(r))
                    .map_err(|e| e.to_string())?;
                Ok(outcome)
            },
        )
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        let outcome = match stored {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::warn!(
                    "conversation {id} could not be archived: {e}; it will be retried next run"
                );
                self.fail(format!("{id}: {e}"));
                return Ok(Step::Failed);
            }
        };
        match outcome {
            Outcome::New => self.report.new += 1,
            Outcome::Updated => self.report.updated += 1,
            Outcome::Unchanged => self.report.unchanged += 1,
        }
        if (self.report.new + self.report.updated).is_multiple_of(FLUSH_EVERY) {
            // A long backfill keeps what it fetched even if it is killed.
            let a = self.archive.clone();
            if let Ok(Err(e)) = blocking("flushing the archive", move || a.flush()).await {
                tracing::warn!("flush failed: {e}");
            }
        }
        tracing::debug!("conversation {id}: {outcome:?}");
        Ok(Step::Fetched)
    }

    /// Downloads missing attachments. The first endpoint failure (after its retries)
    /// ends this phase for the run: the rest wait for a later run rather than spending
    /// requests on an endpoint that is down.
    pub(super) async fn attachments(&mut self, now: f64) -> Result<(), StopReason> {
        let a = self.archive.clone();
        let missing = blocking("listing missing attachments", move || a.missing_files())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let mut done_files = HashSet::new();
        for (conv, file) in missing {
            if self.cancelled() {
                return Ok(());
            }
            if !done_files.insert(file.clone()) || self.backing_off(&file, now) {
                continue;
            }
            match self.download(&conv, &file).await {
                Ok(true) => {
                    self.report.attachments += 1;
                    self.state.file_failures.remove(&file);
                }
                Ok(false) => self.file_failed(&file, now),
                Err(DownloadError::Endpoint(part, e)) => {
                    tracing::debug!("attachment {file} of {conv}: {e}");
                    self.degrade(part, e)?;
                    self.file_failed(&file, now);
                    return Ok(());
                }
                Err(DownloadError::Store(e)) => {
                    tracing::warn!(
                        "attachment {file} of {conv} could not be stored: {e}; will retry later"
                    );
                    self.file_failed(&file, now);
                }
            }
        }
        Ok(())
    }

    /// Whether a file that failed before is still waiting out its backoff.
    fn backing_off(&self, file: &str, now: f64) -> bool {
        self.state.file_failures.get(file).is_some_and(|f| {
            let wait = backoff(FILE_RETRY_BASE, f.count.max(1), FILE_RETRY_MAX);
            now - f.last < wait.as_secs_f64()
        })
    }

    fn file_failed(&mut self, file: &str, now: f64) {
        self.report.attachments_failed += 1;
        let f = self.state.file_failures.entry(file.to_owned()).or_default();
        f.count += 1;
        f.last = now;
    }

    /// Downloads one attachment; `Ok(false)` when the service says it has no such file.
    async fn download(&self, conv: &str, file: &str) -> Result<bool, DownloadError> {
        let info = match self.client.file_info(file, conv).await {
            Ok(Some(info)) => info,
            Ok(None) => {
                tracing::debug!("attachment {file} of {conv} is not available on chatgpt.com");
                return Ok(false);
            }
            Err(e) => return Err(DownloadError::Endpoint(Optional::FileMetadata, e)),
        };
        let bytes = self
            .client
            .download(&info.download_url, info.mime_type.as_deref())
            .await
            .map_err(|e| DownloadError::Endpoint(Optional::FileDownloads, e))?;
        let a = self.archive.clone();
        let file = file.to_owned();
        let stored = blocking("storing an attachment", move || {
            a.store_file(
                &file,
                info.file_name.as_deref(),
                info.mime_type.as_deref(),
                &bytes[..],
            )
            .map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        stored.map(|_| true).map_err(DownloadError::Store)
    }
}
