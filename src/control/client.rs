//! The CLI's side of the control socket: when a daemon answers, a command runs there
//! (it holds the archive) and its output is copied here.

use super::{ControlRequest, Exit, FailureKind, Frame};
use crate::render::terminal::{self, CleanWriter};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// How a command the daemon ran ended.
#[derive(Debug, PartialEq)]
pub enum Reply {
    /// It succeeded (or our reader went away, which ends it quietly: `| head`).
    Done,
    /// It failed.
    Failed {
        /// What kind of failure.
        kind: FailureKind,
        /// What went wrong.
        message: String,
    },
}

/// The daemon's socket exists but the exchange broke.
#[derive(Debug, thiserror::Error)]
#[error("the running daemon did not answer on {}: {source}", socket.display())]
pub struct NoAnswer {
    /// The socket.
    pub socket: PathBuf,
    /// What broke.
    pub source: io::Error,
}

/// Sends a request to a running daemon. `Ok(None)` when no daemon answers on the
/// socket (the caller then runs the command in-process); otherwise the exit frame,
/// after copying the daemon's output to `out` and its messages to `err`.
pub fn call(
    socket: &Path,
    req: &ControlRequest,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<Option<Exit>> {
    use std::io::Write as _;
    let mut stream = match std::os::unix::net::UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let mut line = serde_json::to_vec(req)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    loop {
        let frame = Frame::read_from(&mut stream).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => io::Error::new(
                e.kind(),
                format!("the daemon closed the connection early: {e}"),
            ),
            _ => e,
        })?;
        match frame {
            Frame::Stdout(bytes) => out.write_all(&bytes)?,
            Frame::Stderr(text) => {
                err.write_all(terminal::clean(&String::from_utf8_lossy(&text)).as_bytes())?
            }
            Frame::Exit(exit) => {
                out.flush()?;
                return Ok(Some(exit));
            }
        }
    }
}

/// Runs a request through the running daemon, if one answers on `socket`, with its
/// output on our standard output (text for people has its control characters made
/// visible; JSON stays exact). `Ok(None)` when no daemon runs.
pub fn via_daemon(socket: &Path, req: &ControlRequest) -> Result<Option<Reply>, NoAnswer> {
    let exact = matches!(req, ControlRequest::Command(r) if r.prints_json());
    let mut out = CleanWriter::new(io::stdout(), !exact);
    let mut err = io::stderr();
    let called = call(socket, req, &mut out, &mut err)
        // A byte held back at the very end (a lone `\r`) is written now.
        .and_then(|exit| out.finish().map(|_| exit));
    match called {
        Ok(None) => Ok(None),
        Ok(Some(Exit { failure: None, .. })) => Ok(Some(Reply::Done)),
        Ok(Some(Exit {
            failure: Some(kind),
            error,
        })) => Ok(Some(Reply::Failed {
            kind,
            message: error.unwrap_or_else(|| "the daemon reported a failure".into()),
        })),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Some(Reply::Done)),
        Err(source) => Err(NoAnswer {
            socket: socket.to_path_buf(),
            source,
        }),
    }
}
