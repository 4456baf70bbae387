//! Fetching and storing what the walk queued: ten conversations a request through the
//! batch endpoint where the service offers it (its answer stored item by item through
//! [`Archive::upsert`](crate::archive::Archive::upsert), exactly as sent), one by one
//! otherwise and for whatever a batch answer left out; then the attachments the archive
//! is missing, with the request budget that is left.

use super::walk::ProjectName;
use super::{BATCH_RETRY_SECS, EPSILON, FLUSH_EVERY, OUTAGE_AFTER, Optional, Run, StopReason};
use crate::api::{ApiError, BATCH_MAX, BatchAnswer};
use crate::archive::schema::ConvRecord;
use crate::archive::{Archive, Outcome};
use crate::model::RawConversation;
use crate::util::{backoff, blocking};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

/// The first wait before an attachment that failed is tried again (it doubles).
const FILE_RETRY_BASE: Duration = Duration::from_secs(86_400);
/// The longest wait between attempts at one attachment.
const FILE_RETRY_MAX: Duration = Duration::from_secs(30 * 86_400);
/// Requests one attachment costs (where it is, then its bytes).
const REQUESTS_PER_FILE: f64 = 2.0;

/// Why an attachment could not be stored.
enum DownloadError {
    /// An endpoint failed.
    Endpoint(Optional, ApiError),
    /// The archive could not store it.
    Store(String),
}

/// What a listing row says about the conversation's remote flags, to record whether or
/// not it is fetched.
#[derive(Clone, Debug)]
pub(super) struct Flags {
    pub(super) is_archived: bool,
    pub(super) starred: Option<bool>,
    pub(super) list_time: Option<f64>,
    pub(super) project: ProjectName,
}

impl Flags {
    pub(super) fn apply(&self, r: &mut ConvRecord) {
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

/// A listed conversation that changed, waiting to be fetched.
#[derive(Clone, Debug)]
pub(super) struct Pending {
    pub(super) id: String,
    pub(super) flags: Flags,
}

/// What became of one item of a batch answer.
enum Item {
    /// Stored.
    Stored(String, Outcome),
    /// Could not be used (the reason, for the log); its id, when it had one.
    Unusable(Option<String>, String),
    /// Not one of the ids asked for (the service sends deleted conversations too).
    Unasked(String),
    /// Stored, but much older than its listing: confirmed by a detail fetch.
    Stale(String),
}

/// Stores a conversation with the listing's flags (blocking).
fn store(archive: &Archive, raw: RawConversation, flags: &Flags) -> Result<Outcome, String> {
    let id = raw.id().to_owned();
    let outcome = archive.upsert(raw).map_err(|e| e.to_string())?;
    archive
        .update_remote(&id, |r| flags.apply(r))
        .map_err(|e| e.to_string())?;
    Ok(outcome)
}

impl Run<'_> {
    /// Whether the listing time says the conversation changed since it was archived.
    /// Against the listing time seen at the last fetch when there is one; else (it came
    /// from an export) against its own update time, with the configured tolerance.
    pub(super) fn changed(&self, r: &ConvRecord, listed: Option<f64>) -> bool {
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
    pub(super) async fn update_flags(&mut self, id: &str, r: &ConvRecord, flags: Flags) {
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

    /// Whether batch requests are worth trying: the service was not found lacking the
    /// endpoint in the last day.
    fn batch_usable(&self) -> bool {
        self.state
            .batch_unavailable_until
            .is_none_or(|until| until <= self.now)
    }

    /// Fetches everything queued, newest first: in batches of up to ten while two or
    /// more are left and the service offers batches, else one by one. Stops at a safe
    /// point when asked; what is left is fetched by a later run.
    pub(super) async fn fetch_queue(&mut self) -> Result<(), StopReason> {
        let mut queue: VecDeque<Pending> = std::mem::take(&mut self.queue).into();
        while !queue.is_empty() {
            if self.cancelled() {
                return Ok(());
            }
            if queue.len() >= 2 && self.batch_usable() {
                let n = queue.len().min(BATCH_MAX);
                let chunk: Vec<Pending> = queue.drain(..n).collect();
                self.fetch_batch(chunk).await?;
            } else if let Some(p) = queue.pop_front() {
                self.fetch_single(p).await?;
            }
        }
        Ok(())
    }

    /// One batch request; the conversations it does not bring are fetched one by one.
    async fn fetch_batch(&mut self, chunk: Vec<Pending>) -> Result<(), StopReason> {
        let ids: Vec<String> = chunk.iter().map(|p| p.id.clone()).collect();
        let items = match self.client.conversations_batch(&ids).await {
            Ok(BatchAnswer::Items(items)) => items,
            Ok(BatchAnswer::Unsupported(why)) => {
                self.state.batch_unavailable_until = Some(self.now + BATCH_RETRY_SECS);
                tracing::info!(
                    "chatgpt.com does not offer POST /backend-api/conversations/batch here \
                     (it answered {why}); fetching conversations one by one, and trying \
                     batches again in 24 hours"
                );
                return self.fetch_each(chunk).await;
            }
            Err(e) if e.ends_run() => return Err(e.into()),
            Err(e) => {
                tracing::warn!(
                    "a batch request for {} conversations failed ({e}); fetching them one by one",
                    ids.len()
                );
                return self.fetch_each(chunk).await;
            }
        };
        self.transient_in_a_row = 0;
        let flags: HashMap<String, Flags> = chunk
            .iter()
            .map(|p| (p.id.clone(), p.flags.clone()))
            .collect();
        let a = self.archive.clone();
        let tolerance = self.opts.tolerance_secs;
        let stored = blocking("storing a batch of conversations", move || {
            let mut done: HashSet<String> = HashSet::new();
            let mut out = Vec::new();
            for (i, item) in items.into_iter().enumerate() {
                let bytes = item.get().as_bytes().to_vec();
                drop(item);
                let raw = match RawConversation::from_bytes(bytes) {
                    Ok(raw) => raw,
                    Err(e) => {
                        out.push(Item::Unusable(None, format!("item {i}: {e}")));
                        continue;
                    }
                };
                let id = raw.id().to_owned();
                let Some(f) = flags.get(&id) else {
                    out.push(Item::Unasked(id));
                    continue;
                };
                if !done.insert(id.clone()) {
                    continue;
                }
                // Batch times of older chats can lag the listing's: an item much older
                // than its listing is kept, without the listing time (so a later run
                // still sees it as changed), and confirmed by a detail fetch.
                let stale = matches!(
                    (f.list_time, raw.summary().update_time),
                    (Some(listed), Some(sent)) if sent + tolerance < listed
                );
                let kept = if stale {
                    Flags {
                        list_time: None,
                        ..f.clone()
                    }
                } else {
                    f.clone()
                };
                match store(&a, raw, &kept) {
                    Ok(_) if stale => out.push(Item::Stale(id)),
                    Ok(outcome) => out.push(Item::Stored(id, outcome)),
                    Err(e) => {
                        done.remove(&id);
                        out.push(Item::Unusable(Some(id), e));
                    }
                }
            }
            out
        })
        .await;
        let items = match stored {
            Ok(x) => x,
            Err(e) => {
                return Err(StopReason::Internal {
                    error: e.to_string(),
                });
            }
        };
        let mut got: HashSet<String> = HashSet::new();
        for item in items {
            match item {
                Item::Stored(id, outcome) => {
                    got.insert(id.clone());
                    self.report.batched += 1;
                    self.settle(&id, outcome).await;
                }
                Item::Unusable(id, why) => tracing::warn!(
                    "the batch answer's {} could not be archived ({why}); {}",
                    id.as_deref()
                        .map_or_else(|| "item".to_owned(), |id| format!("copy of {id}")),
                    "a conversation it should have brought is fetched on its own"
                ),
                Item::Unasked(id) => tracing::debug!(
                    "the batch answer also held {id}, which was not asked for; ignored"
                ),
                Item::Stale(id) => tracing::debug!(
                    "the batch copy of {id} is older than its listing; fetching its detail"
                ),
            }
        }
        let rest: Vec<Pending> = chunk.into_iter().filter(|p| !got.contains(&p.id)).collect();
        if !rest.is_empty() {
            tracing::debug!(
                "{} of {} conversations fetched one by one after a batch",
                rest.len(),
                ids.len()
            );
        }
        self.fetch_each(rest).await
    }

    async fn fetch_each(&mut self, pending: Vec<Pending>) -> Result<(), StopReason> {
        for p in pending {
            if self.cancelled() {
                return Ok(());
            }
            self.fetch_single(p).await?;
        }
        Ok(())
    }

    /// Fetches one conversation and stores it with its flags. A failure is counted and
    /// retried next run; a run of them is an outage, which ends the run.
    async fn fetch_single(&mut self, p: Pending) -> Result<(), StopReason> {
        let id = p.id.as_str();
        let bytes = match self.client.conversation(id).await {
            Ok(b) => b,
            Err(ApiError::NotFound) => {
                tracing::warn!(
                    "conversation {id} is listed but its detail answers 404; skipped for this run"
                );
                self.fail(format!("{id}: detail not found (404)"));
                return Ok(());
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
                return Ok(());
            }
        };
        self.transient_in_a_row = 0;
        let a = self.archive.clone();
        let flags = p.flags;
        let stored = blocking("storing a conversation", move || {
            let raw = RawConversation::from_bytes(bytes).map_err(|e| e.to_string())?;
            store(&a, raw, &flags)
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        match stored {
            Ok(outcome) => self.settle(id, outcome).await,
            Err(e) => {
                tracing::warn!(
                    "conversation {id} could not be archived: {e}; it will be retried next run"
                );
                self.fail(format!("{id}: {e}"));
            }
        }
        Ok(())
    }

    /// Counts a stored conversation, which the frontier may now pass.
    async fn settle(&mut self, id: &str, outcome: Outcome) {
        self.unsettled.remove(id);
        match outcome {
            Outcome::New => self.report.new += 1,
            Outcome::Updated => self.report.updated += 1,
            Outcome::Unchanged => self.report.unchanged += 1,
        }
        tracing::debug!("conversation {id}: {outcome:?}");
        self.unflushed += 1;
        if self.unflushed >= FLUSH_EVERY {
            // A long backfill keeps what it fetched even if it is killed.
            self.unflushed = 0;
            let a = self.archive.clone();
            if let Ok(Err(e)) = blocking("flushing the archive", move || a.flush()).await {
                tracing::warn!("flush failed: {e}");
            }
        }
    }

    /// Downloads missing attachments once every conversation is fetched, voice
    /// recordings first (they expire on chatgpt.com about six months after they were
    /// made). Attachments only use the budget that is left, and then the pace for at
    /// most [`SyncOptions::attachment_wait`](super::SyncOptions::attachment_wait):
    /// the rest wait for a later run. The first endpoint failure (after its retries)
    /// ends this phase for the run too.
    pub(super) async fn attachments(&mut self) -> Result<(), StopReason> {
        let a = self.archive.clone();
        let missing = blocking("listing missing attachments", move || ordered_missing(&a))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let mut done_files = HashSet::new();
        let now = self.now;
        let mut left = 0u64;
        let mut out_of_budget = false;
        let started = tokio::time::Instant::now();
        for (conv, file) in missing {
            if self.cancelled() {
                return Ok(());
            }
            if !done_files.insert(file.clone()) || self.backing_off(&file, now) {
                continue;
            }
            if !out_of_budget && self.client.pacer().budget() < REQUESTS_PER_FILE {
                // Spent: wait for the pace only within this run's allowance.
                let wait = self.client.pacer().eta(REQUESTS_PER_FILE as u64);
                out_of_budget = started.elapsed().saturating_add(wait) > self.opts.attachment_wait;
            }
            if out_of_budget {
                left += 1;
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
        if left > 0 {
            tracing::info!(
                "{left} attachments wait for a later run: this run's request budget is spent"
            );
        }
        self.report.attachments_left = left;
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

/// Missing attachments as (conversation, file) pairs, voice recordings first, oldest
/// first among them (the soonest to expire), then the others as the archive lists them
/// (blocking).
fn ordered_missing(a: &Archive) -> Result<Vec<(String, String)>, crate::archive::ArchiveError> {
    let missing = a.missing_files()?;
    let mut audio: Vec<(f64, String, String)> = Vec::new();
    let mut checked: HashMap<String, HashSet<String>> = HashMap::new();
    let mut rest = Vec::new();
    for (conv, file) in missing {
        if !checked.contains_key(&conv) {
            let found = audio_files(a, &conv);
            checked.insert(conv.clone(), found);
        }
        if checked.get(&conv).is_some_and(|ids| ids.contains(&file)) {
            let made = a
                .record(&conv)
                .ok()
                .flatten()
                .and_then(|r| r.summary.create_time)
                .unwrap_or(f64::MAX);
            audio.push((made, conv, file));
        } else {
            rest.push((conv, file));
        }
    }
    audio.sort_by(|x, y| x.0.total_cmp(&y.0));
    Ok(audio
        .into_iter()
        .map(|(_, c, f)| (c, f))
        .chain(rest)
        .collect())
}

/// The file ids of a conversation's voice recordings (audio asset pointers).
fn audio_files(a: &Archive, conv: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    let Ok(Some(stored)) = a.get(conv) else {
        return out;
    };
    let has_audio = |b: &[u8]| memchr::memmem::find(b, b"audio_asset_pointer").is_some();
    if !has_audio(&stored.raw) && !stored.extra.as_deref().is_some_and(has_audio) {
        return out;
    }
    let Ok(parsed) = stored.parse() else {
        return out;
    };
    for node in parsed.nodes() {
        let Some(m) = &node.message else { continue };
        let content = m.content();
        for att in crate::model::content::attachments(&content, &m.meta()) {
            let audio = att.kind == "audio_asset_pointer"
                || att
                    .mime_type
                    .as_deref()
                    .is_some_and(|t| t.starts_with("audio/"));
            if audio {
                out.insert(att.file_id);
            }
        }
    }
    out
}
