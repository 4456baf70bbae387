//! The local control socket. While the daemon runs it holds the archive's lock, so
//! `convos status|sync|import|list|show|search|export|auth` reach it here and it runs
//! the same handlers the CLI runs in-process otherwise.
//!
//! Protocol: the client sends one JSON line (a [`ControlRequest`]); the daemon answers
//! with frames `[tag: u8][len: u32 BE][payload]`: `o` standard output bytes, `e`
//! standard error text, `x` the end (JSON [`ExitFrame`]).

use super::Daemon;
use crate::commands::{self, Request};
use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

/// Largest request line accepted.
const MAX_REQUEST: usize = 1 << 20;

/// What a client asks the daemon.
#[derive(Clone, Serialize, Deserialize)]
pub enum ControlRequest {
    /// A reading, importing or sync command.
    Command(Request),
    /// New session cookies to verify and store (from `convos auth`).
    Auth(AuthPayload),
}

impl std::fmt::Debug for ControlRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ControlRequest::Command(r) => f.debug_tuple("Command").field(r).finish(),
            ControlRequest::Auth(_) => f.write_str("Auth(<redacted>)"),
        }
    }
}

/// Cookies for the daemon to verify and store. Carried only over the private (0600)
/// socket; never logged.
#[derive(Clone, Serialize, Deserialize)]
pub struct AuthPayload {
    /// Cookie name/value pairs.
    pub cookies: Vec<(String, String)>,
    /// Where they came from.
    pub source: String,
    /// The browser choice to remember for re-authentication, if any.
    pub browser: Option<String>,
}

/// The last frame: how the command ended.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExitFrame {
    /// Process exit code for the client.
    pub code: u8,
    /// Error message, if the command failed.
    pub error: Option<String>,
}

/// Sends frames from a blocking handler to the socket writer task.
struct FrameWriter {
    tx: tokio::sync::mpsc::Sender<(u8, Vec<u8>)>,
}

impl Write for FrameWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx
            .blocking_send((b'o', buf.to_vec()))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

async fn write_frame(
    stream: &mut (impl AsyncWriteExt + Unpin),
    tag: u8,
    payload: &[u8],
) -> io::Result<()> {
    let len = u32::try_from(payload.len()).map_err(|_| io::Error::other("frame too large"))?;
    stream.write_u8(tag).await?;
    stream.write_u32(len).await?;
    stream.write_all(payload).await
}

/// Binds the socket (0600, parent 0700), replacing a stale one: the caller holds the
/// data dir lock, so no other daemon can own it.
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        if dir.file_name().is_some_and(|n| n == "convos") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(listener)
}

/// Serves clients until the daemon shuts down.
pub async fn serve(daemon: Arc<Daemon>, listener: UnixListener) {
    loop {
        tokio::select! {
            _ = daemon.shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let d = daemon.clone();
                    daemon.tracker.spawn(async move {
                        if let Err(e) = handle(d, stream).await {
                            tracing::debug!("control client: {e}");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("control socket: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
            }
        }
    }
}

async fn handle(daemon: Arc<Daemon>, stream: UnixStream) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_REQUEST as u64));
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let req: ControlRequest = match serde_json::from_str(&line) {
        Ok(r) => r,
        Err(e) => {
            let exit = ExitFrame {
                code: 2,
                error: Some(format!("bad request: {e}")),
            };
            return write_frame(&mut write, b'x', &serde_json::to_vec(&exit)?).await;
        }
    };
    tracing::debug!("control request: {req:?}");
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(u8, Vec<u8>)>(64);
    let worker = {
        let daemon = daemon.clone();
        tokio::spawn(async move { run_request(daemon, req, tx).await })
    };
    while let Some((tag, payload)) = rx.recv().await {
        if write_frame(&mut write, tag, &payload).await.is_err() {
            // The client left: the handler sees a broken pipe and stops.
            break;
        }
    }
    let exit = match worker.await {
        // Give back what a big listing or export allocated: the daemon idles next.
        Ok(e) => {
            super::trim_heap();
            e
        }
        Err(e) => ExitFrame {
            code: 1,
            error: Some(format!("the daemon's handler failed: {e}")),
        },
    };
    write_frame(&mut write, b'x', &serde_json::to_vec(&exit)?).await?;
    write.shutdown().await
}

async fn run_request(
    daemon: Arc<Daemon>,
    req: ControlRequest,
    tx: tokio::sync::mpsc::Sender<(u8, Vec<u8>)>,
) -> ExitFrame {
    let done = |r: Result<(), String>| match r {
        Ok(()) => ExitFrame {
            code: 0,
            error: None,
        },
        Err(e) => ExitFrame {
            code: 1,
            error: Some(e),
        },
    };
    match req {
        ControlRequest::Command(Request::Sync(args)) => {
            let report = daemon.sync_now(args.full).await;
            let mut text = Vec::new();
            let _ = crate::auth_sync::print_sync_report(&report, &mut text);
            let _ = tx.send((b'o', text)).await;
            done(if report.failed() {
                Err(report.error.clone().unwrap_or_else(|| {
                    format!(
                        "{} conversations could not be fetched; they will be retried next run",
                        report.failed
                    )
                }))
            } else {
                Ok(())
            })
        }
        ControlRequest::Auth(payload) => done(daemon.authenticate(payload).await.map(|msg| {
            let _ = tx.try_send((b'o', format!("{msg}\n").into_bytes()));
        })),
        ControlRequest::Command(req) => {
            let is_import = matches!(req, Request::Import(_));
            let _guard = if is_import {
                Some(daemon.import_lock.lock().await)
            } else {
                None
            };
            let ctx = daemon.ctx.clone();
            let result = tokio::task::spawn_blocking(move || {
                // Handlers write in small pieces; one frame per piece would cost a
                // syscall each (a 10,000-line listing took 2 s instead of 0.1 s).
                let mut out = io::BufWriter::with_capacity(64 * 1024, FrameWriter { tx });
                let r = commands::handle(&ctx, &req, &mut out);
                match out.flush() {
                    Ok(()) => r,
                    Err(e) => r.and(Err(e.into())),
                }
            })
            .await;
            match result {
                Ok(Ok(())) => done(Ok(())),
                Ok(Err(e)) => done(Err(e.to_string())),
                Err(e) => done(Err(format!("the daemon's handler failed: {e}"))),
            }
        }
    }
}

/// Sends a request to a running daemon. `Ok(None)` when no daemon answers on the
/// socket (the caller then runs the command in-process); otherwise the exit frame,
/// after copying the daemon's output to `out`.
pub fn call(
    socket: &Path,
    req: &ControlRequest,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<Option<ExitFrame>> {
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
        let mut head = [0u8; 5];
        if let Err(e) = stream.read_exact(&mut head) {
            return Err(io::Error::new(
                e.kind(),
                format!("the daemon closed the connection early: {e}"),
            ));
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload)?;
        match head[0] {
            b'o' => out.write_all(&payload)?,
            b'e' => err.write_all(
                crate::render::terminal::clean(&String::from_utf8_lossy(&payload)).as_bytes(),
            )?,
            b'x' => {
                out.flush()?;
                let exit: ExitFrame = serde_json::from_slice(&payload)?;
                return Ok(Some(exit));
            }
            other => {
                return Err(io::Error::other(format!(
                    "unknown frame {other} from the daemon"
                )));
            }
        }
    }
}
