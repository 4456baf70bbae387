//! Keeping flags and deletions right without a manual `--full`: every run notices
//! conversations unarchived below the frontier (the archived listing is walked whole,
//! so an archived conversation it no longer shows, and no other listing showed this
//! run, is not archived any more), and a full run reconciles: whatever no listing
//! showed is asked for once, and only a 404 marks it `deleted_remotely`. A batch answer
//! proves nothing (it returns deleted conversations), and a listing can leave out a
//! conversation that still exists.

use super::{Run, StopReason};
use crate::api::ApiError;
use crate::archive::{ArchiveError, Outcome};
use crate::model::RawConversation;
use crate::util::blocking;
use std::collections::HashSet;

impl Run<'_> {
    /// Marks archived conversations that the whole archived listing no longer shows, and
    /// no other listing showed this run, as not archived (they were unarchived, which
    /// moves no `update_time`). Only after the archived listing was read whole.
    pub(super) async fn note_unarchived(&mut self) {
        if !self.archived.complete || self.archived.unreadable > 0 || self.cancelled() {
            return;
        }
        let a = self.archive.clone();
        let seen: HashSet<String> = self.seen.keys().cloned().collect();
        let flipped = blocking(
            "noting unarchived conversations",
            move || -> Result<u64, ArchiveError> {
                let ids: Vec<String> = a
                    .iter_newest_first()
                    .filter_map(Result::ok)
                    .filter(|r| r.is_archived() && !r.deleted_remotely)
                    .map(|r| r.summary.id)
                    .filter(|id| !seen.contains(id))
                    .collect();
                for id in &ids {
                    a.update_remote(id, |r| r.remote.is_archived = Some(false))?;
                    tracing::info!(
                        "conversation {id} is no longer in the archived listing: marked not archived"
                    );
                }
                Ok(ids.len() as u64)
            },
        )
        .await;
        match flipped {
            Ok(Ok(n)) => self.report.flags_updated += n,
            Ok(Err(e)) => tracing::warn!("could not note unarchived conversations: {e}"),
            Err(_) => {} // logged by `blocking`
        }
    }

    /// After a complete walk of every listing: asks for each archived conversation that
    /// none of them showed (and that is not marked deleted yet) once, by its detail. A
    /// 404 marks it `deleted_remotely` (it is kept); a conversation that answers is
    /// stored as it is now. Archived conversations are left alone when the archived
    /// listing is not walked (`[sync] archived = false`).
    pub(super) async fn reconcile(&mut self) -> Result<(), StopReason> {
        let a = self.archive.clone();
        let seen: HashSet<String> = self.seen.keys().cloned().collect();
        let with_archived = self.opts.archived;
        let absent = blocking("finding conversations no listing showed", move || {
            a.iter_newest_first()
                .filter_map(Result::ok)
                .filter(|r| !r.deleted_remotely && !seen.contains(&r.summary.id))
                .filter(|r| with_archived || !r.is_archived())
                .map(|r| r.summary.id)
                .collect::<Vec<String>>()
        })
        .await
        .unwrap_or_default();
        if !absent.is_empty() {
            tracing::info!(
                "{} archived conversations are in no listing; asking chatgpt.com for each",
                absent.len()
            );
        }
        for id in absent {
            if self.cancelled() {
                return Ok(());
            }
            match self.client.conversation(&id).await {
                Err(ApiError::NotFound) => self.mark_deleted(&id).await,
                Ok(bytes) => self.still_there(&id, bytes).await,
                Err(e) if e.ends_run() => return Err(e.into()),
                Err(e) => tracing::warn!(
                    "could not check whether conversation {id} still exists ({e}); not marked \
                     deleted, asked again by the next reconciliation"
                ),
            }
        }
        Ok(())
    }

    async fn mark_deleted(&mut self, id: &str) {
        let (a, rid) = (self.archive.clone(), id.to_owned());
        let marked = blocking("marking a deleted conversation", move || {
            a.update_remote(&rid, |r| r.deleted_remotely = true)
        })
        .await;
        match marked {
            Ok(Ok(_)) => {
                self.report.deleted_remotely += 1;
                tracing::info!(
                    "conversation {id} is no longer on chatgpt.com (in no listing, and its \
                     detail answers 404); kept and marked deleted_remotely"
                );
            }
            Ok(Err(e)) => tracing::warn!("could not mark {id} deleted: {e}"),
            Err(_) => {} // logged by `blocking`
        }
    }

    /// A conversation no listing showed but whose detail answers: stored as it is now,
    /// its archived flag taken from the detail.
    async fn still_there(&mut self, id: &str, bytes: Vec<u8>) {
        let a = self.archive.clone();
        let stored = blocking(
            "storing a conversation",
            move || -> Result<Outcome, String> {
                let raw = RawConversation::from_bytes(bytes).map_err(|e| e.to_string())?;
                let (got, archived) = (raw.id().to_owned(), raw.summary().is_archived);
                let outcome = a.upsert(raw).map_err(|e| e.to_string())?;
                if let Some(archived) = archived {
                    a.update_remote(&got, |r| r.remote.is_archived = Some(archived))
                        .map_err(|e| e.to_string())?;
                }
                Ok(outcome)
            },
        )
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        match stored {
            Ok(outcome) => {
                tracing::info!(
                    "conversation {id} is in no listing but its detail answers: still on \
                     chatgpt.com ({outcome:?})"
                );
                match outcome {
                    Outcome::New => self.report.new += 1,
                    Outcome::Updated => self.report.updated += 1,
                    Outcome::Unchanged => {}
                }
            }
            Err(e) => tracing::warn!("conversation {id} could not be archived: {e}"),
        }
    }
}
