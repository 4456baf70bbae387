//! What a sync run did, why it stopped early, and the one rendering of both, used for
//! the terminal (`convos sync`, also through the daemon) and for the log alike.

use crate::api::ApiError;
use crate::session::SessionError;
use serde::{Deserialize, Serialize};
use std::io::Write;

/// Why a run stopped before it was done. Re-authentication and backoff decide on this
/// value, never on the wording of a message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum StopReason {
    /// No credentials are stored.
    NoCredentials,
    /// The session cookie no longer yields an access token.
    SessionExpired,
    /// The access token was refused twice in a row (401), even after a fresh exchange.
    RefusedTwice,
    /// The service is rate limiting the account (429).
    RateLimited {
        /// What `Retry-After` asked for, in seconds.
        retry_after_secs: Option<u64>,
        /// When the wait ends (RFC 3339), when known.
        until: Option<String>,
    },
    /// Cloudflare's bot protection answered with a challenge instead of data.
    Cloudflare {
        /// HTTP status.
        status: u16,
        /// `Cloudflare challenge page` or `HTML page`.
        page: String,
    },
    /// Conversations kept failing one after another: the service seems to be down.
    Outage {
        /// How many failed in a row.
        failed_in_a_row: u32,
        /// The last failure.
        last_error: String,
    },
    /// An essential request (a listing, the session exchange) failed.
    Failed {
        /// What failed.
        error: String,
    },
    /// The credentials could not be read or written.
    Credentials {
        /// What failed.
        error: String,
    },
    /// Stopped at a safe point because convos is shutting down.
    Cancelled,
    /// Something in convos itself failed (a panic, caught).
    Internal {
        /// What failed.
        error: String,
    },
    /// A reason saved by an earlier version, which kept only its message.
    Recorded {
        /// The message as saved.
        message: String,
    },
}

impl StopReason {
    /// Whether the session died: new credentials (or a browser re-read) are needed.
    pub fn session_died(&self) -> bool {
        matches!(self, StopReason::SessionExpired | StopReason::RefusedTwice)
    }

    /// The error this reason came from, for its wording (one text for both).
    fn api_error(&self) -> Option<ApiError> {
        Some(match self {
            StopReason::NoCredentials => ApiError::NoCredentials,
            StopReason::SessionExpired => ApiError::SessionExpired,
            StopReason::RefusedTwice => ApiError::Unauthorized,
            StopReason::RateLimited {
                retry_after_secs, ..
            } => ApiError::RateLimited {
                retry_after: retry_after_secs.map(std::time::Duration::from_secs),
            },
            StopReason::Cloudflare { status, page } => ApiError::Challenge {
                status: *status,
                kind: if page == "HTML page" {
                    "HTML page"
                } else {
                    "Cloudflare challenge page"
                },
            },
            _ => return None,
        })
    }
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(e) = self.api_error() {
            return e.fmt(f);
        }
        match self {
            StopReason::Outage {
                failed_in_a_row,
                last_error,
            } => write!(
                f,
                "{last_error} ({failed_in_a_row} conversations in a row failed: chatgpt.com \
                 seems to be having an outage; the next run tries again)"
            ),
            StopReason::Failed { error }
            | StopReason::Credentials { error }
            | StopReason::Internal { error } => f.write_str(error),
            StopReason::Cancelled => f.write_str("interrupted by shutdown"),
            StopReason::Recorded { message } => f.write_str(message),
            _ => Ok(()),
        }
    }
}

impl From<ApiError> for StopReason {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::NoCredentials => StopReason::NoCredentials,
            ApiError::SessionExpired => StopReason::SessionExpired,
            ApiError::Unauthorized => StopReason::RefusedTwice,
            ApiError::RateLimited { retry_after } => StopReason::RateLimited {
                retry_after_secs: retry_after.map(|d| d.as_secs()),
                until: retry_after
                    .and_then(|d| chrono::TimeDelta::from_std(d).ok())
                    .and_then(|d| chrono::Utc::now().checked_add_signed(d))
                    .map(crate::model::time::rfc3339_secs),
            },
            ApiError::Challenge { status, kind } => StopReason::Cloudflare {
                status,
                page: kind.to_owned(),
            },
            ApiError::Credentials(error) => StopReason::Credentials { error },
            e => StopReason::Failed {
                error: e.to_string(),
            },
        }
    }
}

impl From<SessionError> for StopReason {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::NoCredentials => StopReason::NoCredentials,
            SessionError::DeadSession => StopReason::SessionExpired,
            SessionError::Api(e) | SessionError::NotVerified(e) => e.into(),
            SessionError::Internal(e) => StopReason::Internal {
                error: e.to_string(),
            },
            e @ (SessionError::Auth(_) | SessionError::Archive(_)) => StopReason::Credentials {
                error: e.to_string(),
            },
        }
    }
}

/// What a sync run did (also saved for `convos status`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncReport {
    /// When it started (RFC 3339).
    pub started_at: String,
    /// When it finished (RFC 3339).
    pub finished_at: String,
    /// A `--full` run.
    pub full: bool,
    /// Distinct conversations seen in listings.
    pub listed: u64,
    /// Fetched and new.
    pub new: u64,
    /// Fetched and updated.
    pub updated: u64,
    /// Not fetched (listing unchanged) or fetched and unchanged.
    pub unchanged: u64,
    /// Failed this run (retried next run).
    pub failed: u64,
    /// The first few failures.
    pub failures: Vec<String>,
    /// Newly marked deleted on chatgpt.com (`--full`).
    pub deleted_remotely: u64,
    /// Archive/star/project flags updated without a fetch.
    pub flags_updated: u64,
    /// Attachments downloaded.
    pub attachments: u64,
    /// Attachments that could not be downloaded (retried later).
    pub attachments_failed: u64,
    /// HTTP requests made.
    pub requests: u64,
    /// Wall time.
    pub seconds: f64,
    /// The normal listing's frontier after the run (RFC 3339).
    pub frontier: Option<String>,
    /// Why the run stopped early, if it did. Saved as `stop` (the reason) beside
    /// `error` (its message, all that reports of earlier versions hold).
    #[serde(flatten, with = "saved_stop")]
    pub stop: Option<StopReason>,
    /// Optional parts that failed this run, e.g. `project names unavailable (404)`; the
    /// run went on without them.
    #[serde(default)]
    pub degraded: Vec<String>,
    /// Listing rows that could not be read (skipped; the walk went on).
    #[serde(default)]
    pub unreadable_rows: u64,
    /// Where the first few of them were (listing and offset, never their content).
    #[serde(default)]
    pub unreadable: Vec<String>,
    /// Requests answered 429 (rate limited).
    #[serde(default)]
    pub rate_limited: u64,
    /// Conversations stored from batch answers.
    #[serde(default)]
    pub batched: u64,
    /// Missing attachments left for a later run (the run's budget was spent).
    #[serde(default)]
    pub attachments_left: u64,
    /// The pacing mode (`adaptive` or `fixed`).
    #[serde(default)]
    pub pacing: Option<String>,
    /// The request rate at the end of the run, requests a minute.
    #[serde(default)]
    pub rate_per_minute: Option<f64>,
    /// Changed conversations not archived yet (failed, or not got to).
    #[serde(default)]
    pub remaining: u64,
    /// The estimated time to fetch them at the current pace, seconds.
    #[serde(default)]
    pub eta_secs: Option<f64>,
}

/// A duration in words: `40 s`, `12 min`, `3 h 20 min`, `2 d 4 h`.
pub fn human_duration(secs: f64) -> String {
    let s = if secs.is_finite() {
        secs.max(0.0).round() as u64
    } else {
        u64::MAX
    };
    match s {
        s if s < 90 => format!("{s} s"),
        s if s < 3600 => format!("{} min", (s + 30) / 60),
        s if s < 48 * 3600 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        s => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// The saved form of [`SyncReport::stop`]: the reason and its message side by side, so
/// `status --json` keeps its `error` text and a report saved before reasons had a type
/// (an `error` string alone) reads as a [`StopReason::Recorded`].
mod saved_stop {
    use super::StopReason;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Fields {
        #[serde(default)]
        stop: Option<StopReason>,
        #[serde(default)]
        error: Option<String>,
    }

    pub fn serialize<S: Serializer>(stop: &Option<StopReason>, s: S) -> Result<S::Ok, S::Error> {
        Fields {
            stop: stop.clone(),
            error: stop.as_ref().map(StopReason::to_string),
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<StopReason>, D::Error> {
        let f = Fields::deserialize(d)?;
        Ok(f.stop
            .or_else(|| f.error.map(|message| StopReason::Recorded { message })))
    }
}

impl SyncReport {
    /// A report of a run that could not start or was stopped from outside.
    pub fn stopped(reason: StopReason) -> Self {
        Self {
            stop: Some(reason),
            ..Self::default()
        }
    }

    /// Whether the run failed or left conversations unfetched.
    pub fn failed(&self) -> bool {
        self.stop.is_some() || self.failed > 0
    }

    /// Whether the run ended because the session died.
    pub fn session_died(&self) -> bool {
        self.stop.as_ref().is_some_and(StopReason::session_died)
    }

    /// Whether the service declared the session expired during the run.
    pub fn session_expired(&self) -> bool {
        self.stop == Some(StopReason::SessionExpired)
    }

    /// The one-line error a failed run ends a command with.
    pub fn failure_message(&self) -> Option<String> {
        if !self.failed() {
            return None;
        }
        Some(match &self.stop {
            Some(reason) => reason.to_string(),
            None => format!(
                "{} conversations could not be fetched; they will be retried next run",
                self.failed
            ),
        })
    }

    /// The pace in words: the rate, the 429s of the run and, when conversations are
    /// left to fetch, the estimated time to finish (for the end-of-run line and
    /// `convos status`); `None` for a report without pacing facts (an older one, or a
    /// run that could not start).
    pub fn pace_note(&self) -> Option<String> {
        let rate = self.rate_per_minute?;
        let mut s = format!(
            "pacing {} requests/min ({}), {} answered 429",
            rate_words(rate),
            self.pacing.as_deref().unwrap_or("adaptive"),
            self.rate_limited
        );
        if self.remaining > 0 {
            s.push_str(&format!(
                "; backfill: {} conversations left",
                self.remaining
            ));
            if let Some(eta) = self.eta_secs {
                s.push_str(&format!(", about {} at this pace", human_duration(eta)));
            }
        }
        Some(s)
    }

    /// The report in words: a summary and the lines that detail it.
    pub fn render(&self) -> Rendered {
        let mut summary = format!(
            "{} listed, {} new, {} updated, {} unchanged, {} failed; {} attachments downloaded; {} requests in {:.1} s",
            self.listed,
            self.new,
            self.updated,
            self.unchanged,
            self.failed,
            self.attachments,
            self.requests,
            self.seconds
        );
        if let Some(pace) = self.pace_note() {
            summary.push_str("; ");
            summary.push_str(&pace);
        }
        let mut details = Vec::new();
        if self.deleted_remotely > 0 {
            details.push(format!(
                "{} conversations are no longer on chatgpt.com (kept, marked deleted_remotely)",
                self.deleted_remotely
            ));
        }
        details.extend(self.failures.iter().map(|f| format!("failed: {f}")));
        if self.unreadable_rows > 0 {
            details.push(format!(
                "{} listing rows could not be read and were skipped: {}{}",
                self.unreadable_rows,
                self.unreadable.join(", "),
                if self.unreadable_rows > self.unreadable.len() as u64 {
                    ", …"
                } else {
                    ""
                }
            ));
        }
        if self.attachments_left > 0 {
            details.push(format!(
                "{} attachments left for later runs (this run's request budget was spent)",
                self.attachments_left
            ));
        }
        details.extend(self.degraded.iter().map(|d| format!("degraded: {d}")));
        if let Some(reason) = &self.stop {
            details.push(format!("stopped: {reason}"));
        }
        Rendered {
            title: if self.full { "sync --full" } else { "sync" },
            summary,
            details,
        }
    }

    /// Writes the report for a person: the summary, then one indented line per detail.
    pub fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let r = self.render();
        writeln!(out, "{}: {}", r.title, r.summary)?;
        for d in &r.details {
            writeln!(out, "  {d}")?;
        }
        Ok(())
    }

    /// Logs the report as one line: info when the run finished, a warning when it
    /// stopped early.
    pub fn log(&self) {
        let r = self.render();
        let mut line = format!(
            "{} {}: {}; next frontier {}",
            r.title,
            if self.stop.is_some() {
                "stopped"
            } else {
                "finished"
            },
            r.summary,
            self.frontier.as_deref().unwrap_or("none")
        );
        for d in &r.details {
            line.push_str("; ");
            line.push_str(d);
        }
        match self.stop {
            Some(_) => tracing::warn!("{line}"),
            None => tracing::info!("{line}"),
        }
    }
}

/// A rate in requests a minute, with the digits that matter.
fn rate_words(per_min: f64) -> String {
    if per_min >= 10.0 {
        format!("{per_min:.0}")
    } else if per_min >= 1.0 {
        format!("{per_min:.1}")
    } else {
        format!("{per_min:.2}")
    }
}

/// A report in words.
pub struct Rendered {
    /// `sync` or `sync --full`.
    pub title: &'static str,
    /// Counts, requests and time.
    pub summary: String,
    /// Deletions, failures, skipped rows, degraded parts and why the run stopped.
    pub details: Vec<String>,
}

#[cfg(test)]
mod tests;
