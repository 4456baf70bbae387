//! `convos show`: one conversation as Markdown or Export schema v1 JSON.

use super::{CommandError, Context, resolve_id};
use crate::cli::{ShowArgs, ShowFormat};
use crate::render::json;
use crate::render::markdown::{self, AttachmentLinks};
use crate::render::view::{self, AttachmentView};
use std::io::Write;

/// Links attachments to their stored bytes on disk.
struct BlobLinks<'a>(&'a crate::archive::Archive);

impl AttachmentLinks for BlobLinks<'_> {
    fn link(&self, a: &AttachmentView) -> Option<String> {
        let sha = a.sha256.as_deref()?;
        Some(self.0.blob_path(sha).display().to_string())
    }
}

pub(super) fn run(ctx: &Context, args: &ShowArgs, out: &mut dyn Write) -> Result<(), CommandError> {
    let id = resolve_id(&ctx.archive, &args.id)?;
    let stored = ctx.archive.get(&id)?.ok_or_else(|| {
        CommandError::NotFound(format!("conversation {id:?} vanished while reading"))
    })?;
    let v = view::build(&ctx.archive, &stored)?;
    match args.format {
        ShowFormat::Json => json::write_pretty(out, &v)?,
        ShowFormat::Md => {
            out.write_all(markdown::render(&v, &BlobLinks(&ctx.archive)).as_bytes())?
        }
    }
    Ok(())
}
