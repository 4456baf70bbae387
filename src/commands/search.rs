//! `convos search`: ranked full-text search from the search index (see
//! [`crate::search`]). The query and filters are checked first (a bad one is a usage
//! error, never a scan). Inside the daemon the index is the one its indexer keeps
//! current; in a one-shot process the index first catches up with the archive's change
//! feed (what `convos import` or `sync` wrote since), then answers.

use super::{CommandError, Context};
use crate::cli::SearchArgs;
use crate::render::terminal;
use crate::search::{
    self, Filters, Hit, IndexOptions, Progress, Query, QueryError, SearchError, SearchIndex,
    SearchRequest,
};
use std::io::{IsTerminal, Write};
use std::time::Duration;

/// How long a query in the daemon waits for its indexer to take in recent writes.
const DAEMON_WAIT: Duration = Duration::from_secs(5);

/// Bold on, bold off (highlighted matches on a terminal).
const BOLD: (&str, &str) = ("\x1b[1m", "\x1b[22m");

pub(super) fn run(
    ctx: &Context,
    args: &SearchArgs,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let req = request(args).map_err(|e| CommandError::Usage(e.to_string()))?;
    let live = ctx.daemon.as_ref().and_then(|d| d.search());
    let (hits, behind) = match live {
        Some(live) => {
            let behind = live.prepare_query(DAEMON_WAIT).map_err(failed)?;
            (
                live.index().search(&ctx.archive, &req).map_err(failed)?,
                behind,
            )
        }
        None => {
            let index = open_current(ctx)?;
            (index.search(&ctx.archive, &req).map_err(failed)?, Some(0))
        }
    };
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &hits).map_err(std::io::Error::from)?;
        writeln!(out)?;
        return Ok(());
    }
    if hits.is_empty() {
        writeln!(
            out,
            "no conversation matches {}",
            terminal::line(&req.query.to_string())
        )?;
    }
    for h in &hits {
        write_hit(out, h, args.highlight)?;
    }
    match behind {
        Some(0) => {}
        Some(n) => writeln!(
            out,
            "(the search index is still taking in {n} changed conversation(s); search again \
             shortly for complete results)"
        )?,
        None => writeln!(
            out,
            "(the search index is still being built from the archive; search again shortly \
             for complete results)"
        )?,
    }
    Ok(())
}

/// The search the arguments ask for, checked.
pub(crate) fn request(args: &SearchArgs) -> Result<SearchRequest, QueryError> {
    let query = Query::from_args(&args.query)?;
    let filters = Filters {
        role: args.role.as_deref().map(str::parse).transpose()?,
        project: args.project.clone(),
        model: args.model.clone(),
        archived: match (args.archived, args.no_archived) {
            (true, _) => Some(true),
            (false, true) => Some(false),
            (false, false) => None,
        },
        deleted: args.deleted.then_some(true),
        ..Filters::default()
    }
    .with_dates(args.since.as_deref(), args.until.as_deref())?;
    Ok(SearchRequest {
        query,
        filters,
        limit: args.limit,
    })
}

/// A search failure: a usage error for a bad query, else a failure.
fn failed(e: SearchError) -> CommandError {
    if e.is_usage() {
        CommandError::Usage(e.to_string())
    } else {
        CommandError::Failed(e.to_string())
    }
}

/// Opens the index in this (one-shot) process and brings it up to date with the
/// archive's change feed, with a progress bar on a terminal when there is much to do.
/// When another process is writing the index, searches what it has.
fn open_current(ctx: &Context) -> Result<SearchIndex, CommandError> {
    let dir = search::index_dir(&ctx.paths.data_dir);
    let index = SearchIndex::open(&dir, IndexOptions::default()).map_err(failed)?;
    let mut bar = ProgressBar::new(std::io::stderr().is_terminal());
    match index.catch_up(
        &ctx.archive,
        &ctx.archive,
        &mut |p| bar.show(p),
        &ctx.cancel,
    ) {
        Ok(_) => {}
        Err(SearchError::Busy(_)) => {
            tracing::warn!(
                "the search index is being updated by another convos process; searching what it holds"
            );
        }
        Err(e) => return Err(failed(e)),
    }
    bar.finish();
    index.release_writer();
    Ok(index)
}

/// A progress bar on standard error for indexing in a one-shot command; a log line
/// every few seconds otherwise.
pub(crate) struct ProgressBar {
    bar: Option<indicatif::ProgressBar>,
    last_log: std::time::Instant,
}

impl ProgressBar {
    /// A bar when `terminal`, else periodic log lines.
    pub(crate) fn new(terminal: bool) -> Self {
        let bar = terminal.then(|| {
            let bar = indicatif::ProgressBar::hidden();
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:30}] {pos}/{len} conversations ({per_sec}, {eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message("indexing");
            bar
        });
        Self {
            bar,
            last_log: std::time::Instant::now(),
        }
    }

    /// Shows a progress report.
    pub(crate) fn show(&mut self, p: Progress) {
        match &self.bar {
            Some(bar) => {
                if bar.is_hidden() && p.done >= 50 {
                    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                }
                match p.total {
                    Some(t) => bar.set_length(t),
                    None => bar.set_length(p.done),
                }
                bar.set_position(p.done);
            }
            None if self.last_log.elapsed() >= Duration::from_secs(5) => {
                self.last_log = std::time::Instant::now();
                match p.total {
                    Some(t) => tracing::info!("indexing: {} of {t} conversations", p.done),
                    None => tracing::info!("indexing: {} conversations", p.done),
                }
            }
            None => {}
        }
    }

    /// Removes the bar.
    pub(crate) fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// One line per conversation: date, id, title, then the best message's snippet (its
/// matches in bold on a terminal). Every piece from the conversation is cleaned of
/// control characters here, since highlighted output bypasses the output filter.
fn write_hit(out: &mut dyn Write, h: &Hit, highlight: bool) -> std::io::Result<()> {
    let date = h
        .update_time
        .as_deref()
        .map_or("", |t| t.get(..10).unwrap_or(t));
    let title = h.title.as_deref().unwrap_or("(untitled)");
    write!(
        out,
        "{}  {}  {}",
        terminal::line(date),
        terminal::line(&h.id),
        terminal::line(title)
    )?;
    if !h.snippet.is_empty() {
        let role = h
            .role
            .as_deref()
            .map(|r| format!("{r}: "))
            .unwrap_or_default();
        write!(out, "  — {}", terminal::line(&role))?;
        write_snippet(out, h, highlight)?;
    }
    writeln!(out)
}

fn write_snippet(out: &mut dyn Write, h: &Hit, highlight: bool) -> std::io::Result<()> {
    if !highlight {
        return write!(out, "{}", terminal::line(&h.snippet));
    }
    let s = &h.snippet;
    let mut at = 0;
    for r in &h.highlights {
        let (Some(before), Some(word)) = (s.get(at..r.start), s.get(r.start..r.end)) else {
            continue;
        };
        write!(
            out,
            "{}{}{}{}",
            terminal::line(before),
            BOLD.0,
            terminal::line(word),
            BOLD.1
        )?;
        at = r.end;
    }
    write!(out, "{}", terminal::line(s.get(at..).unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(title: &str, snippet: &str, highlights: Vec<std::ops::Range<usize>>) -> Hit {
        Hit {
            id: "c1".into(),
            title: Some(title.into()),
            update_time: Some("2025-01-02T03:04:05Z".into()),
            score: 1.0,
            message_id: Some("m1".into()),
            role: Some("user".into()),
            snippet: snippet.into(),
            highlights,
            node_id: None,
            on_active_branch: true,
        }
    }

    fn shown(h: &Hit, highlight: bool) -> String {
        let mut out = Vec::new();
        write_hit(&mut out, h, highlight).expect("write");
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn matches_are_bold_on_a_terminal_and_content_controls_are_not_sent() {
        let h = hit(
            "Evil\x1b[2J\ntitle",
            "a walrus and \x1b[31mred\x1b[0m walrus",
            vec![2..8, 26..32],
        );
        assert_eq!(
            shown(&h, true),
            "2025-01-02  c1  Evil␛[2J title  — user: a \x1b[1mwalrus\x1b[22m and ␛[31mred␛[0m \
             \x1b[1mwalrus\x1b[22m\n"
        );
        assert_eq!(
            shown(&h, false),
            "2025-01-02  c1  Evil␛[2J title  — user: a walrus and ␛[31mred␛[0m walrus\n"
        );
    }

    #[test]
    fn arguments_become_a_checked_request() {
        let args = |f: &dyn Fn(&mut SearchArgs)| {
            let mut a = SearchArgs {
                query: vec!["walrus".into()],
                json: false,
                limit: 5,
                role: None,
                since: None,
                until: None,
                project: None,
                model: None,
                archived: false,
                no_archived: false,
                deleted: false,
                highlight: false,
            };
            f(&mut a);
            request(&a)
        };
        let r = args(&|a| {
            a.no_archived = true;
            a.deleted = true;
            a.role = Some("Tool".into());
        })
        .expect("request");
        assert_eq!(r.limit, 5);
        assert_eq!(r.filters.archived, Some(false));
        assert_eq!(r.filters.deleted, Some(true));
        assert_eq!(r.filters.role, Some(search::Role::Tool));
        assert!(matches!(
            args(&|a| a.since = Some("soon".into())),
            Err(QueryError::BadDate { .. })
        ));
        assert!(matches!(
            args(&|a| a.query = vec!["\"open".into()]),
            Err(QueryError::UnbalancedQuote)
        ));
    }
}
