//! `convos status`: what the daemon is doing and what the archive holds.

use super::{CommandError, Context};
use crate::archive::{Archive, Counts};
use crate::cli::StatusArgs;
use crate::ingest::ImportReport;
use crate::model::time::{now_secs, secs_to_rfc3339};
use crate::render::terminal;
use crate::session::CredentialsStatus;
use crate::sync::SyncReport;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::PathBuf;

/// Live facts only the running daemon knows.
pub trait DaemonInfo: Send + Sync {
    /// A snapshot of the daemon's state.
    fn snapshot(&self) -> DaemonSnapshot;
    /// The daemon's search index, kept current by its indexer.
    fn search(&self) -> Option<std::sync::Arc<crate::search::LiveIndex>> {
        None
    }
}

/// The running daemon's state.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DaemonSnapshot {
    /// Process id.
    pub pid: u32,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// Next scheduled sync (RFC 3339, UTC): the `sync` job's next run.
    pub next_sync: Option<String>,
    /// Whether a sync is running now.
    pub sync_running: bool,
    /// Folders being watched.
    pub watching: Vec<String>,
    /// The time zone schedules are read in.
    #[serde(default)]
    pub timezone: Option<String>,
    /// The daemon's scheduled jobs.
    #[serde(default)]
    pub jobs: Vec<JobStatus>,
    /// The web viewer's address (no token), while the daemon serves it.
    #[serde(default)]
    pub web_url: Option<String>,
    /// Why the daemon does not serve the viewer although it is enabled.
    #[serde(default)]
    pub web_problem: Option<String>,
}

/// One of the daemon's scheduled jobs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JobStatus {
    /// `sync`, `reconcile`, `token refresh` or `rescan`.
    pub name: String,
    /// When it runs, in words (a cron schedule and its zone, an interval).
    pub schedule: String,
    /// Its next run (RFC 3339, UTC), when one is planned.
    pub next_run: Option<String>,
    /// The same moment as wall-clock time in the schedule's zone, with its offset.
    pub next_run_local: Option<String>,
    /// Whether it runs now.
    pub running: bool,
}

/// The last import, as remembered in the archive.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LastImport {
    /// When it finished (RFC 3339).
    pub at: String,
    /// One line per file.
    pub files: Vec<LastImportFile>,
}

/// One file of the last import.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LastImportFile {
    /// Path.
    pub path: String,
    /// New conversations.
    pub new: u64,
    /// Updated conversations.
    pub updated: u64,
    /// Unchanged conversations.
    pub unchanged: u64,
    /// Failed conversations.
    pub failed: u64,
    /// Skipped as already imported.
    pub skipped: bool,
    /// File-level error.
    pub error: Option<String>,
}

/// Everything `status` shows.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StatusReport {
    /// convos version.
    pub version: String,
    /// Whether a daemon is running (and answered).
    pub running: bool,
    /// The daemon's live state.
    pub daemon: Option<DaemonSnapshot>,
    /// Data directory.
    pub data_dir: String,
    /// Config file in use.
    pub config_file: Option<String>,
    /// Archive totals.
    pub counts: Counts,
    /// The last sync's report, as recorded by the sync.
    pub last_sync: Option<SyncReport>,
    /// The sync schedule (cron with seconds, in `timezone`).
    pub schedule: String,
    /// The full sync's schedule (cron with seconds, in `timezone`).
    #[serde(default)]
    pub reconcile_schedule: String,
    /// The time zone schedules are read in.
    #[serde(default)]
    pub timezone: String,
    /// Next run of the schedule from now (RFC 3339, UTC), when no daemon tells better.
    pub next_scheduled: Option<String>,
    /// The same moment as wall-clock time in `timezone`.
    #[serde(default)]
    pub next_scheduled_local: Option<String>,
    /// Credentials state (never their value).
    pub credentials: Option<CredentialsStatus>,
    /// Folders watched for exports.
    pub watch_dirs: Vec<String>,
    /// Those of `watch_dirs` that do not exist (yet): each is watched once it is created.
    #[serde(default)]
    pub watch_dirs_missing: Vec<String>,
    /// Whether the watcher is enabled.
    pub watch_enabled: bool,
    /// The last import.
    pub last_import: Option<LastImport>,
    /// Whether the daemon serves the web viewer (`[web] enabled`).
    #[serde(default)]
    pub web_enabled: bool,
    /// The configured viewer address (`[web] listen`).
    #[serde(default)]
    pub web_listen: String,
    /// The search index: its size and how far it has taken in the archive's changes.
    #[serde(default)]
    pub search_index: Option<crate::search::IndexStatus>,
    /// The Markdown mirror, when `[mirror] dir` is set.
    #[serde(default)]
    pub mirror: Option<MirrorInfo>,
}

/// The Markdown mirror's state, for `status`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MirrorInfo {
    /// The mirror folder.
    pub dir: String,
    /// Notes in it (notes you deleted are not counted); 0 before the first run.
    pub notes: u64,
    /// When a run last brought it up to date (RFC 3339, UTC).
    pub last_update: Option<String>,
    /// When the last run ended, successful or not (RFC 3339, UTC).
    pub last_run: Option<String>,
    /// Why the last run failed (the folder missing, read-only or full…), when it did.
    pub last_error: Option<String>,
}

/// The configured mirror's state, from what its last run recorded in the archive.
fn mirror_info(ctx: &Context) -> Option<MirrorInfo> {
    let dir = ctx.paths.mirror_dir.as_ref()?;
    let st = crate::mirror::status(&ctx.archive, dir)
        .unwrap_or_else(|e| {
            tracing::warn!("the mirror's status in the archive cannot be read ({e}); not shown");
            None
        })
        .unwrap_or_default();
    // To the second, as status shows every moment.
    let time = |t: Option<f64>| t.and_then(|t| secs_to_rfc3339(t.floor()));
    Some(MirrorInfo {
        dir: dir.display().to_string(),
        notes: st.notes,
        last_update: time(st.last_update),
        last_run: time(st.last_run),
        last_error: st.last_error,
    })
}

/// The mirror's lines of the human status.
fn write_mirror(m: Option<&MirrorInfo>, out: &mut dyn Write) -> std::io::Result<()> {
    let Some(m) = m else {
        return writeln!(
            out,
            "mirror:       off (set `dir` under [mirror] in the config file, or \
             CONVOS_MIRROR_DIR, to keep your conversations as Markdown notes)"
        );
    };
    match (&m.last_update, &m.last_run) {
        (Some(at), _) => writeln!(
            out,
            "mirror:       {}: {} notes, updated {at}",
            m.dir, m.notes
        )?,
        (None, Some(_)) => writeln!(out, "mirror:       {}: never brought up to date", m.dir)?,
        (None, None) => writeln!(out, "mirror:       {}: not mirrored yet", m.dir)?,
    }
    if let Some(e) = &m.last_error {
        writeln!(
            out,
            "              last run ({}) FAILED: {e}",
            m.last_run.as_deref().unwrap_or("?")
        )?;
    }
    Ok(())
}

/// Records the outcome of an import for `status`.
pub fn remember_import(archive: &Archive, report: &ImportReport) {
    if report.files.is_empty() {
        return;
    }
    let last = LastImport {
        at: secs_to_rfc3339(now_secs()).unwrap_or_default(),
        files: report
            .files
            .iter()
            .map(|f| LastImportFile {
                path: f.path.display().to_string(),
                new: f.new,
                updated: f.updated,
                unchanged: f.unchanged,
                failed: f.problems.len() as u64,
                skipped: f.already_imported.is_some(),
                error: f.error.clone(),
            })
            .collect(),
    };
    if let Err(e) = archive
        .set_state("last_import", &last)
        .and_then(|_| archive.flush())
    {
        tracing::warn!("could not record the import for `convos status`: {e}");
    }
}

/// Gathers the status report.
pub fn report(ctx: &Context) -> Result<StatusReport, CommandError> {
    let a = &ctx.archive;
    let zone = ctx.config.sync.zone();
    let next = crate::config::parse_schedule(&ctx.config.sync.schedule)
        .ok()
        .and_then(|c| zone.next_after(&c, chrono::Utc::now()));
    Ok(StatusReport {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        running: ctx.daemon.is_some(),
        daemon: ctx.daemon.as_ref().map(|d| d.snapshot()),
        data_dir: ctx.paths.data_dir.display().to_string(),
        config_file: ctx.config_file.as_ref().map(|p| p.display().to_string()),
        counts: a.counts()?,
        last_sync: saved(a, crate::sync::REPORT_KEY, "the last sync's report")?,
        schedule: ctx.config.sync.schedule.clone(),
        reconcile_schedule: ctx.config.sync.reconcile_schedule.clone(),
        timezone: zone.to_string(),
        next_scheduled: next.map(crate::model::time::rfc3339_secs),
        next_scheduled_local: next.map(|t| zone.wall_clock(t)),
        credentials: saved(a, crate::session::CREDENTIALS_KEY, "the credentials' state")?,
        watch_dirs: ctx
            .paths
            .watch_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect(),
        watch_dirs_missing: ctx
            .paths
            .watch_dirs
            .iter()
            .filter(|d| !d.is_dir())
            .map(|d| d.display().to_string())
            .collect(),
        watch_enabled: ctx.config.watch.enabled,
        last_import: a.state("last_import")?,
        web_enabled: ctx.config.web.enabled,
        web_listen: ctx.config.web.listen.to_string(),
        search_index: Some(index_status(ctx)?),
        mirror: mirror_info(ctx),
    })
}

/// The search index's state: the daemon's live one, else read from its files.
fn index_status(ctx: &Context) -> Result<crate::search::IndexStatus, CommandError> {
    if let Some(live) = ctx.daemon.as_ref().and_then(|d| d.search()) {
        return Ok(live.status());
    }
    let dir = crate::search::index_dir(&ctx.paths.data_dir);
    let (stats, last_error) = match crate::search::SearchIndex::peek(&dir) {
        Ok(s) => (s, None),
        Err(e) => (None, Some(e.to_string())),
    };
    let pending = match stats.as_ref().and_then(|s| s.mark) {
        Some(m) => Some(crate::search::pending(&ctx.archive, m).map_err(|e| {
            CommandError::Failed(format!("cannot read the archive's change feed: {e}"))
        })?),
        None => None,
    };
    Ok(crate::search::IndexStatus {
        pending,
        stats,
        feed: ctx.archive.last_change_seq()?,
        busy: false,
        last_error,
    })
}

fn describe_index(s: &crate::search::IndexStatus, daemon: bool) -> String {
    let when = if daemon {
        "the daemon is taking them in"
    } else {
        "taken in at the next `convos search`"
    };
    let mut text = match &s.stats {
        None if s.last_error.is_none() => {
            "not built yet (built at the first `convos search`, or by `convos reindex`)".to_owned()
        }
        None => "unreadable (rebuilt at the next `convos search`, or by `convos reindex`)".into(),
        Some(st) => {
            let size = format!(
                "{} messages, {:.1} MB",
                st.messages,
                st.bytes as f64 / 1_000_000.0
            );
            match (st.mark, s.pending) {
                (None, _) | (_, None) => format!("{size}, not built yet ({when})"),
                (Some(_), Some(0)) => format!("{size}, up to date"),
                (Some(_), Some(n)) => {
                    format!("{size}, {n} conversation(s) changed since it was updated ({when})")
                }
            }
        }
    };
    if s.busy {
        text.push_str(", indexing now");
    }
    if let Some(e) = &s.last_error {
        text.push_str(&format!("; last error: {e}"));
    }
    text
}

pub(super) fn run(
    ctx: &Context,
    args: &StatusArgs,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let r = report(ctx)?;
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &r).map_err(std::io::Error::from)?;
        writeln!(out)?;
        return Ok(());
    }
    print_human(&r, out)?;
    Ok(())
}

/// The human-readable status. Paths, errors and server messages in it may hold
/// anything, so the whole text has its control characters made visible.
pub fn print_human(r: &StatusReport, out: &mut dyn Write) -> std::io::Result<()> {
    let mut text = Vec::new();
    write_human(r, &mut text)?;
    out.write_all(terminal::clean(&String::from_utf8_lossy(&text)).as_bytes())
}

fn write_human(r: &StatusReport, out: &mut dyn Write) -> std::io::Result<()> {
    match &r.daemon {
        Some(d) => writeln!(
            out,
            "daemon:       running (pid {}, up {}){}",
            d.pid,
            human_duration(d.uptime_secs),
            if d.sync_running { ", syncing now" } else { "" }
        )?,
        None => writeln!(
            out,
            "daemon:       not running (start it with `convos run` or `convos service install`)"
        )?,
    }
    writeln!(out, "data dir:     {}", r.data_dir)?;
    writeln!(
        out,
        "config:       {}",
        r.config_file
            .as_deref()
            .unwrap_or("defaults (no config file)")
    )?;
    writeln!(
        out,
        "archive:      {} conversations, {} messages, {} attachments{}",
        r.counts.conversations,
        r.counts.messages,
        r.counts.attachments,
        if r.counts.deleted_remotely > 0 {
            format!(
                ", {} deleted on chatgpt.com (kept)",
                r.counts.deleted_remotely
            )
        } else {
            String::new()
        }
    )?;
    match &r.last_sync {
        Some(s) => writeln!(out, "last sync:    {}", describe_sync(s))?,
        None => writeln!(out, "last sync:    never")?,
    }
    write_schedule(r, out)?;
    writeln!(
        out,
        "credentials:  {}",
        describe_credentials(r.credentials.as_ref())
    )?;
    let missing: Vec<PathBuf> = r.watch_dirs_missing.iter().map(PathBuf::from).collect();
    let dirs: Vec<PathBuf> = r.watch_dirs.iter().map(PathBuf::from).collect();
    writeln!(
        out,
        "watching:     {}",
        describe_watch(r.watch_enabled, &dirs, |d| !missing.contains(d))
    )?;
    match &r.last_import {
        Some(li) => {
            writeln!(out, "last import:  {}", li.at)?;
            for f in &li.files {
                if f.skipped {
                    writeln!(out, "              {}: already imported, skipped", f.path)?;
                } else if let Some(e) = &f.error {
                    writeln!(out, "              {}: failed: {e}", f.path)?;
                } else {
                    writeln!(
                        out,
                        "              {}: {} new, {} updated, {} unchanged, {} failed",
                        f.path, f.new, f.updated, f.unchanged, f.failed
                    )?;
                }
            }
        }
        None => writeln!(out, "last import:  never")?,
    }
    if let Some(ix) = &r.search_index {
        writeln!(out, "search index: {}", describe_index(ix, r.running))?;
    }
    write_mirror(r.mirror.as_ref(), out)?;
    writeln!(out, "web viewer:   {}", describe_web(r))?;
    Ok(())
}

/// Where the web viewer is, or why it is not there.
fn describe_web(r: &StatusReport) -> String {
    if !r.web_enabled {
        return "off ([web] enabled = false)".to_owned();
    }
    match &r.daemon {
        Some(d) => match (&d.web_url, &d.web_problem) {
            (Some(url), _) => format!("{url} (open it with `convos web`)"),
            (None, Some(problem)) => format!("not served: {problem}"),
            (None, None) => "starting".to_owned(),
        },
        None => match r.web_listen.parse() {
            Ok(addr) => format!(
                "http://{}/ once the daemon runs",
                crate::web::browse_addr(addr)
            ),
            Err(_) => format!("{} once the daemon runs", r.web_listen),
        },
    }
}

/// The next sync and, when a daemon runs, each of its jobs with its next run in UTC
/// and in the schedules' zone.
fn write_schedule(r: &StatusReport, out: &mut dyn Write) -> std::io::Result<()> {
    let zone = if r.timezone.is_empty() {
        "UTC"
    } else {
        &r.timezone
    };
    let Some(d) = &r.daemon else {
        writeln!(
            out,
            "next sync:    when the daemon runs (schedule {}, {zone}; full sync {})",
            r.schedule, r.reconcile_schedule
        )?;
        return Ok(());
    };
    let sync_job = d.jobs.iter().find(|j| j.name == "sync");
    match (
        d.next_sync.as_deref(),
        sync_job.and_then(|j| j.next_run_local.as_deref()),
    ) {
        (Some(utc), Some(local)) => writeln!(
            out,
            "next sync:    {utc} ({local} {zone}; schedule {})",
            r.schedule
        )?,
        (Some(utc), None) => writeln!(out, "next sync:    {utc} (schedule {})", r.schedule)?,
        (None, _) => writeln!(out, "next sync:    none planned (schedule {})", r.schedule)?,
    }
    let width = d.jobs.iter().map(|j| j.name.len()).max().unwrap_or(0);
    for (i, j) in d.jobs.iter().enumerate() {
        let when = match (&j.next_run, &j.next_run_local) {
            _ if j.running => "running now".to_owned(),
            (Some(utc), Some(local)) => format!("next {utc} ({local} {zone})"),
            (Some(utc), None) => format!("next {utc}"),
            (None, _) => "not planned".to_owned(),
        };
        writeln!(
            out,
            "{}{:<width$}  {when}; {}",
            if i == 0 {
                "jobs:         "
            } else {
                "              "
            },
            j.name,
            j.schedule
        )?;
    }
    Ok(())
}

/// What the watcher watches, for `status` and the daemon's start line: the folders,
/// which of them do not exist yet, and how to choose others when none does.
pub fn describe_watch(
    enabled: bool,
    dirs: &[PathBuf],
    exists: impl Fn(&PathBuf) -> bool,
) -> String {
    const HOW: &str = "set `dirs` under [watch] in the config file, or CONVOS_WATCH_DIRS";
    if !enabled {
        return "off ([watch] enabled = false)".to_owned();
    }
    if dirs.is_empty() {
        return format!("nothing (no Downloads folder found: {HOW})");
    }
    let shown: Vec<String> = dirs
        .iter()
        .map(|d| {
            if exists(d) {
                d.display().to_string()
            } else {
                format!("{} (does not exist yet; watched once created)", d.display())
            }
        })
        .collect();
    let mut s = shown.join(", ");
    if !dirs.iter().any(exists) {
        s.push_str(&format!("; to watch another folder, {HOW}"));
    }
    s
}

/// A record saved in the archive's state, read into its type. One that does not read
/// (written by a newer convos, or damaged) is left out with a warning, so `status`
/// still shows everything else.
fn saved<T: serde::de::DeserializeOwned>(
    a: &Archive,
    key: &str,
    what: &str,
) -> Result<Option<T>, CommandError> {
    let Some(value) = a.state::<serde_json::Value>(key)? else {
        return Ok(None);
    };
    match serde_json::from_value(value) {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            tracing::warn!("{what} in the archive cannot be read ({e}); not shown");
            Ok(None)
        }
    }
}

fn describe_sync(s: &SyncReport) -> String {
    let at = if s.finished_at.is_empty() {
        "?"
    } else {
        &s.finished_at
    };
    // What the run went on without: optional parts that failed, unreadable rows.
    let mut notes = String::new();
    if !s.degraded.is_empty() {
        notes.push_str(&format!("; degraded: {}", s.degraded.join(", ")));
    }
    if s.unreadable_rows > 0 {
        notes.push_str(&format!(
            "; {} unreadable listing rows skipped",
            s.unreadable_rows
        ));
    }
    if let Some(pace) = s.pace_note() {
        notes.push_str(&format!("; {pace}"));
    }
    let line = match &s.stop {
        Some(reason) => format!(
            "{at}: FAILED: {reason} ({} new, {} updated before it)",
            s.new, s.updated
        ),
        None => format!(
            "{at}: ok, {} listed, {} new, {} updated, {} unchanged, {} failed, {} requests",
            s.listed, s.new, s.updated, s.unchanged, s.failed, s.requests
        ),
    };
    line + &notes
}

fn describe_credentials(c: Option<&CredentialsStatus>) -> String {
    let Some(c) = c else {
        return "none (run `convos auth` to sync from chatgpt.com)".into();
    };
    let mut s = c.state.to_string();
    if let Some(exp) = &c.access_token_expires {
        s.push_str(&format!(", access token expires {exp}"));
    }
    if let Some(src) = &c.source {
        s.push_str(&format!(" (from {src})"));
    }
    s
}

fn human_duration(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_report_saved_by_an_earlier_version_still_shows() {
        let a = Archive::temporary().expect("archive");
        // As versions before StopReason saved it: the reason as a message in `error`.
        let old = serde_json::json!({
            "started_at": "2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:00:05Z",
            "full": false, "listed": 2, "new": 1, "updated": 0, "unchanged": 1,
            "failed": 0, "failures": [], "deleted_remotely": 0, "flags_updated": 0,
            "attachments": 0, "attachments_failed": 0, "requests": 3, "seconds": 5.0,
            "frontier": null,
            "error": "chatgpt.com is rate limiting this account (429)",
            "degraded": ["project names unavailable (404)"]
        });
        a.set_state(crate::sync::REPORT_KEY, &old).expect("write");
        let r: SyncReport = saved(&a, crate::sync::REPORT_KEY, "the report")
            .expect("read")
            .expect("present");
        assert_eq!(
            describe_sync(&r),
            "2026-01-01T00:00:05Z: FAILED: chatgpt.com is rate limiting this account (429) \
             (1 new, 0 updated before it); degraded: project names unavailable (404)"
        );
        let json = serde_json::to_value(&r).expect("json");
        assert_eq!(
            json["error"],
            "chatgpt.com is rate limiting this account (429)"
        );
        // A record that does not read is left out, not an error of `status`.
        a.set_state(
            crate::sync::REPORT_KEY,
            &serde_json::json!({"listed": "many"}),
        )
        .expect("write");
        assert!(
            saved::<SyncReport>(&a, crate::sync::REPORT_KEY, "the report")
                .expect("read")
                .is_none()
        );
    }

    #[test]
    fn credentials_show_their_state_expiry_and_source() {
        assert_eq!(
            describe_credentials(None),
            "none (run `convos auth` to sync from chatgpt.com)"
        );
        let c = CredentialsStatus {
            state: crate::session::CredentialState::Expired,
            source: Some("firefox (default)".into()),
            access_token_expires: Some("2026-01-01T00:00:00Z".into()),
            ..CredentialsStatus::default()
        };
        assert_eq!(
            describe_credentials(Some(&c)),
            "expired, access token expires 2026-01-01T00:00:00Z (from firefox (default))"
        );
    }

    #[test]
    fn the_mirror_shows_its_folder_notes_last_update_and_error() {
        let show = |m: Option<&MirrorInfo>| {
            let mut out = Vec::new();
            write_mirror(m, &mut out).expect("write");
            String::from_utf8(out).expect("utf8")
        };
        assert!(show(None).starts_with("mirror:       off (set `dir` under [mirror]"));
        let mut m = MirrorInfo {
            dir: "/v/ChatGPT".into(),
            ..MirrorInfo::default()
        };
        assert_eq!(
            show(Some(&m)),
            "mirror:       /v/ChatGPT: not mirrored yet\n"
        );
        m.last_run = Some("2026-01-01T00:00:00Z".into());
        m.last_error = Some("the mirror folder /v/ChatGPT does not exist".into());
        assert_eq!(
            show(Some(&m)),
            "mirror:       /v/ChatGPT: never brought up to date\n              last run \
             (2026-01-01T00:00:00Z) FAILED: the mirror folder /v/ChatGPT does not exist\n"
        );
        m.notes = 12;
        m.last_update = Some("2025-12-31T00:00:00Z".into());
        assert!(
            show(Some(&m))
                .starts_with("mirror:       /v/ChatGPT: 12 notes, updated 2025-12-31T00:00:00Z\n")
        );
    }
}
