//! `convos reindex`: rebuilds the search index from the archive. In the daemon it
//! rebuilds the index its indexer keeps (the two take turns at the writer) and reports
//! progress as lines; in a one-shot process it shows a progress bar.

use super::search::ProgressBar;
use super::{CommandError, Context};
use crate::search::{self, BuildReport, IndexOptions, Progress, SearchError, SearchIndex};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub(super) fn run(ctx: &Context, out: &mut dyn Write) -> Result<(), CommandError> {
    let started = Instant::now();
    let failed = |e: SearchError| CommandError::Failed(e.to_string());
    let report = match ctx.daemon.as_ref().and_then(|d| d.search()) {
        Some(live) => {
            // The client's terminal is not ours: progress goes out as lines.
            let mut last = Instant::now();
            let mut lines = Vec::new();
            let r = live.index().rebuild(
                &ctx.archive,
                &ctx.archive,
                &mut |p: Progress| {
                    if last.elapsed() >= Duration::from_secs(2) {
                        last = Instant::now();
                        lines.push(progress_line(p));
                    }
                },
                &ctx.cancel,
            );
            live.index().release_writer();
            for l in lines {
                writeln!(out, "{l}")?;
            }
            // Whatever was written during the build is taken in next.
            live.poke();
            r.map_err(failed)?
        }
        None => {
            let dir = search::index_dir(&ctx.paths.data_dir);
            let index = SearchIndex::open(&dir, IndexOptions::default()).map_err(failed)?;
            let mut bar = ProgressBar::new(std::io::stderr().is_terminal());
            let r = index.rebuild(
                &ctx.archive,
                &ctx.archive,
                &mut |p| bar.show(p),
                &ctx.cancel,
            );
            bar.finish();
            index.release_writer();
            r.map_err(failed)?
        }
    };
    print_report(out, &report, started.elapsed())?;
    Ok(())
}

fn progress_line(p: Progress) -> String {
    match p.total {
        Some(t) => format!("indexing: {} of {t} conversations", p.done),
        None => format!("indexing: {} conversations", p.done),
    }
}

fn print_report(out: &mut dyn Write, r: &BuildReport, took: Duration) -> std::io::Result<()> {
    writeln!(
        out,
        "search index rebuilt: {} conversations, {} messages in {:.1} s{}",
        r.indexed.conversations,
        r.indexed.messages,
        took.as_secs_f64(),
        if r.indexed.unreadable > 0 {
            format!(
                " ({} conversation(s) could not be read and were left out; see the log)",
                r.indexed.unreadable
            )
        } else {
            String::new()
        }
    )
}
