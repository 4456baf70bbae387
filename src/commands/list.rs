//! `convos list`: conversations newest update first, read through the update index.

use super::{CommandError, Context};
use crate::cli::ListArgs;
use crate::model::time::secs_to_rfc3339;
use crate::render::terminal;
use serde::Serialize;
use std::io::Write;

/// One line of `list --json`.
#[derive(Serialize)]
struct Row<'a> {
    id: &'a str,
    title: Option<&'a str>,
    update_time: Option<String>,
    message_count: u32,
}

pub(super) fn run(ctx: &Context, args: &ListArgs, out: &mut dyn Write) -> Result<(), CommandError> {
    let limit = args.limit.unwrap_or(usize::MAX);
    if args.json {
        out.write_all(b"[")?;
        for (i, rec) in ctx.archive.iter_newest_first().take(limit).enumerate() {
            let rec = rec?;
            let s = &rec.summary;
            out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
            serde_json::to_writer(
                &mut *out,
                &Row {
                    id: &s.id,
                    title: s.title.as_deref(),
                    update_time: s.update_time.and_then(secs_to_rfc3339),
                    message_count: s.message_count,
                },
            )
            .map_err(std::io::Error::from)?;
        }
        out.write_all(b"\n]\n")?;
        return Ok(());
    }
    let mut any = false;
    for rec in ctx.archive.iter_newest_first().take(limit) {
        let rec = rec?;
        let s = &rec.summary;
        any = true;
        let when = s
            .update_time
            .and_then(|t| chrono::DateTime::from_timestamp(t as i64, 0))
            .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_else(|| "-".repeat(16));
        let mut flags = String::new();
        if rec.deleted_remotely {
            flags.push_str(" [deleted on chatgpt.com]");
        }
        if rec.is_archived() {
            flags.push_str(" [archived]");
        }
        // Ids and titles come from the conversation: one line each, no raw controls.
        writeln!(
            out,
            "{when}  {:>5} msgs  {}  {}{flags}",
            s.message_count,
            terminal::line(&s.id),
            terminal::line(s.title.as_deref().unwrap_or("(untitled)"))
        )?;
    }
    if !any {
        writeln!(
            out,
            "The archive is empty. Import a ChatGPT data export with `convos import FILE.zip`, or \
             run `convos auth` then `convos sync`."
        )?;
    }
    Ok(())
}
