//! `convos export`: the whole archive as Markdown files (attachments beside them),
//! one JSON array, or JSON lines; to a folder or standard output. Streams one
//! conversation at a time.

use super::{CommandError, Context};
use crate::archive::Archive;
use crate::cli::{ExportArgs, ExportFormat};
use crate::render::filename;
use crate::render::json;
use crate::render::markdown::{self, AttachmentLinks};
use crate::render::view::{self, AttachmentView, ConversationView};
use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Links attachments copied into `<out>/attachments/`.
struct CopiedLinks<'a> {
    archive: &'a Archive,
    dir: PathBuf,
    copied: std::cell::Cell<u64>,
    failed: std::cell::RefCell<Vec<String>>,
}

impl AttachmentLinks for CopiedLinks<'_> {
    fn link(&self, a: &AttachmentView) -> Option<String> {
        let sha = a.sha256.as_deref()?;
        let name = filename::attachment_file_name(a);
        let dest = self.dir.join(&name);
        let src = self.archive.blob_path(sha);
        let fresh =
            fs::metadata(&dest).ok().map(|m| m.len()) != fs::metadata(&src).ok().map(|m| m.len());
        if fresh {
            if let Err(e) = fs::create_dir_all(&self.dir).and_then(|_| fs::copy(&src, &dest)) {
                self.failed
                    .borrow_mut()
                    .push(format!("{}: {e}", dest.display()));
                return None;
            }
            self.copied.set(self.copied.get() + 1);
        }
        Some(format!("attachments/{name}"))
    }
}

/// Links attachments to their stored bytes (for Markdown on standard output).
struct BlobLinks<'a>(&'a Archive);

impl AttachmentLinks for BlobLinks<'_> {
    fn link(&self, a: &AttachmentView) -> Option<String> {
        Some(self.0.blob_path(a.sha256.as_deref()?).display().to_string())
    }
}

/// Every conversation's view, newest first; unreadable ones are logged and skipped.
fn views(archive: &Archive) -> impl Iterator<Item = Result<ConversationView, CommandError>> + '_ {
    archive.iter_newest_first().filter_map(move |rec| {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => return Some(Err(e.into())),
        };
        let stored = match archive.get(&rec.summary.id) {
            Ok(Some(s)) => s,
            Ok(None) => return None,
            Err(e) => return Some(Err(e.into())),
        };
        match view::build(archive, &stored) {
            Ok(v) => Some(Ok(v)),
            Err(e) => {
                tracing::warn!("conversation {} cannot be exported: {e}", rec.summary.id);
                None
            }
        }
    })
}

pub(super) fn run(
    ctx: &Context,
    args: &ExportArgs,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    if args.out == "-" {
        return to_stdout(&ctx.archive, args.format, out);
    }
    let dir = Path::new(&args.out);
    fs::create_dir_all(dir).map_err(|e| {
        CommandError::Failed(format!(
            "cannot create the export folder {}: {e}",
            dir.display()
        ))
    })?;
    let failures = match args.format {
        ExportFormat::Json | ExportFormat::Jsonl => {
            json_file(&ctx.archive, args.format, dir, out)?;
            Vec::new()
        }
        ExportFormat::Md => markdown_files(&ctx.archive, dir, out)?,
    };
    if !failures.is_empty() {
        for f in &failures {
            writeln!(out, "  failed: {f}")?;
        }
        return Err(CommandError::Failed(format!(
            "{} files could not be written",
            failures.len()
        )));
    }
    Ok(())
}

/// Writes every conversation to standard output: one JSON array, JSON lines, or
/// Markdown documents one after another (attachments linked to the stored bytes).
fn to_stdout(
    archive: &Archive,
    format: ExportFormat,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    match format {
        ExportFormat::Json => {
            let mut w = json::ArrayWriter::new(out)?;
            for v in views(archive) {
                w.push(&v?)?;
            }
            w.finish()?;
        }
        ExportFormat::Jsonl => {
            for v in views(archive) {
                json::write_line(out, &v?)?;
            }
        }
        ExportFormat::Md => {
            let links = BlobLinks(archive);
            for (i, v) in views(archive).enumerate() {
                if i > 0 {
                    out.write_all(b"\n\n")?;
                }
                out.write_all(markdown::render(&v?, &links).as_bytes())?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// Writes `conversations.json` (one array) or `conversations.jsonl` into `dir`.
fn json_file(
    archive: &Archive,
    format: ExportFormat,
    dir: &Path,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let name = if format == ExportFormat::Json {
        "conversations.json"
    } else {
        "conversations.jsonl"
    };
    let path = dir.join(name);
    let file = File::create(&path)
        .map_err(|e| CommandError::Failed(format!("cannot write {}: {e}", path.display())))?;
    let mut w = BufWriter::new(file);
    let mut count = 0u64;
    if format == ExportFormat::Json {
        let mut a = json::ArrayWriter::new(&mut w)?;
        for v in views(archive) {
            a.push(&v?)?;
            count += 1;
        }
        a.finish()?;
    } else {
        for v in views(archive) {
            json::write_line(&mut w, &v?)?;
            count += 1;
        }
    }
    w.flush()?;
    writeln!(out, "exported {count} conversations to {}", path.display())?;
    Ok(())
}

/// Writes one Markdown file per conversation into `dir`, with the attachments copied
/// into `dir/attachments/`; returns the files that could not be written.
fn markdown_files(
    archive: &Archive,
    dir: &Path,
    out: &mut dyn Write,
) -> Result<Vec<String>, CommandError> {
    let links = CopiedLinks {
        archive,
        dir: dir.join("attachments"),
        copied: std::cell::Cell::new(0),
        failed: std::cell::RefCell::new(Vec::new()),
    };
    let mut taken = HashSet::new();
    let mut failures = Vec::new();
    let mut count = 0u64;
    for v in views(archive) {
        let v = v?;
        let path = dir.join(filename::file_name(&v, &mut taken));
        if let Err(e) = fs::write(&path, markdown::render(&v, &links)) {
            failures.push(format!("{}: {e}", path.display()));
            continue;
        }
        count += 1;
    }
    failures.extend(links.failed.into_inner());
    writeln!(
        out,
        "exported {count} conversations to {} ({} attachments copied)",
        dir.display(),
        links.copied.get()
    )?;
    Ok(failures)
}
