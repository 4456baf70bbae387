//! `convos mirror [--dir DIR] [--rebuild]`: brings a Markdown mirror up to date once and
//! says what was written. The CLI runs it in-process when no daemon runs; the daemon
//! runs the same code under the lock its own mirror task takes, so runs never overlap.

use super::{CommandError, Context};
use crate::cli::MirrorArgs;
use crate::mirror::{Mirror, MirrorError, MirrorOptions, MirrorReport, Scope};
use crate::model::time::now_secs;
use std::io::Write;
use std::path::Path;

/// The options every mirror of this context uses: the data dir protected, the user's
/// permissions; `create_folder` for an explicit `--dir`.
pub fn options(ctx: &Context, create_folder: bool) -> MirrorOptions {
    MirrorOptions {
        data_dir: Some(ctx.paths.data_dir.clone()),
        modes: ctx.user_modes,
        create_folder,
    }
}

/// The mirror `convos mirror` works on: `--dir` (created when missing and its parent
/// exists), else the configured folder.
pub fn mirror_for(ctx: &Context, args: &MirrorArgs) -> Result<Mirror, CommandError> {
    let (dir, explicit) = match (&args.dir, &ctx.paths.mirror_dir) {
        (Some(d), _) => (d.clone(), true),
        (None, Some(d)) => (d.clone(), false),
        (None, None) => {
            return Err(CommandError::Usage(
                "no mirror folder: pass --dir DIR, or set `dir` under [mirror] in the config \
                 file (or CONVOS_MIRROR_DIR) so the daemon keeps it current"
                    .into(),
            ));
        }
    };
    Mirror::new(ctx.archive.clone(), dir, options(ctx, explicit)).map_err(|e| match e {
        // A configured folder was checked when the configuration was loaded.
        e @ MirrorError::Overlap { .. } => CommandError::Usage(e.to_string()),
        e => CommandError::Failed(e.to_string()),
    })
}

/// Runs `convos mirror`: the change feed's news (or everything, with `--rebuild`), then
/// the archive flushed (the mirror's record is durable with it) and the report printed.
pub fn run(ctx: &Context, args: &MirrorArgs, out: &mut dyn Write) -> Result<(), CommandError> {
    let mirror = mirror_for(ctx, args)?;
    let scope = if args.rebuild {
        Scope::Rebuild
    } else {
        Scope::Feed
    };
    let result = mirror.run(scope, now_secs(), &ctx.cancel);
    ctx.archive.flush()?;
    let report = result.map_err(|e| CommandError::Failed(format!("mirror not updated: {e}")))?;
    print_report(mirror.dir(), &report, out)?;
    if report.errors > 0 {
        return Err(CommandError::Failed(format!(
            "{} conversation(s) could not be mirrored (see above); the next run tries again",
            report.errors
        )));
    }
    Ok(())
}

/// What a run wrote, for people.
pub fn print_report(dir: &Path, r: &MirrorReport, out: &mut dyn Write) -> std::io::Result<()> {
    let mut parts = vec![format!("{} notes written ({} new)", r.written, r.created)];
    parts.push(format!("{} unchanged", r.unchanged));
    if r.skipped > 0 {
        parts.push(format!("{} left as they are", r.skipped));
    }
    if r.conflicts > 0 {
        parts.push(format!(
            "{} edited by you above the convos line (your versions saved in .convos/conflicts/)",
            r.conflicts
        ));
    }
    if r.errors > 0 {
        parts.push(format!("{} failed", r.errors));
    }
    parts.push(format!("{} attachments copied", r.attachments_copied));
    parts.push(
        if r.index_written {
            "index.md written"
        } else {
            "index.md unchanged"
        }
        .to_owned(),
    );
    writeln!(
        out,
        "{}: {}{}",
        dir.display(),
        parts.join(", "),
        if r.full { " (every conversation)" } else { "" }
    )?;
    for p in &r.problems {
        writeln!(out, "  {p}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_says_what_was_written_and_what_went_wrong() {
        let mut out = Vec::new();
        let r = MirrorReport {
            conversations: 5,
            written: 2,
            created: 1,
            unchanged: 3,
            conflicts: 1,
            attachments_copied: 4,
            index_written: true,
            ..MirrorReport::default()
        };
        print_report(Path::new("/v/ChatGPT"), &r, &mut out).expect("print");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "/v/ChatGPT: 2 notes written (1 new), 3 unchanged, 1 edited by you above the \
             convos line (your versions saved in .convos/conflicts/), 4 attachments copied, \
             index.md written\n"
        );
        let mut out = Vec::new();
        let r = MirrorReport {
            skipped: 1,
            errors: 1,
            full: true,
            problems: vec!["conversation c1: the note a.md is not UTF-8 text".into()],
            ..MirrorReport::default()
        };
        print_report(Path::new("/v"), &r, &mut out).expect("print");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "/v: 0 notes written (0 new), 0 unchanged, 1 left as they are, 1 failed, 0 \
             attachments copied, index.md unchanged (every conversation)\n  conversation c1: \
             the note a.md is not UTF-8 text\n"
        );
    }
}
