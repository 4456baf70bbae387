//! The control socket's server side: accepts the CLI's connections, reads one request
//! each, runs it with the same handlers the CLI runs in-process, and streams the output
//! back as [`Frame`]s (the protocol is in [`crate::control`]). A client that closes its
//! end has left: its command is stopped (a reader at its next write, an import at a
//! safe point).
//!
//! The socket is 0600 in a 0700 folder; as defence in depth only peers running as the
//! daemon's own user are served, a request must arrive within [`REQUEST_TIMEOUT`] and fit
//! in [`MAX_REQUEST`] bytes.

use super::Daemon;
use crate::commands;
use crate::control::{
    ControlRequest, Exit, FailureKind, Frame, MAX_REQUEST, REQUEST_TIMEOUT, Request,
};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

/// Output frames (of up to 64 KiB) queued for a client before the handler waits for it.
const QUEUED_FRAMES: usize = 16;

/// Sends frames from a blocking handler to the socket writer task.
struct FrameWriter {
    tx: mpsc::Sender<Frame>,
}

impl Write for FrameWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx
            .blocking_send(Frame::Stdout(buf.to_vec()))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
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
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    loop {
        tokio::select! {
            _ = daemon.shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    if let Err(who) = check_peer(&stream, uid) {
                        tracing::warn!(
                            "refused a control connection from {who}: the socket serves only \
                             its owner (uid {uid})"
                        );
                        continue;
                    }
                    let d = daemon.clone();
                    daemon.tracker.spawn(async move {
                        if let Err(e) = handle(d, stream).await {
                            tracing::debug!("control client: {e}");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("control socket: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
}

/// Accepts a peer only when it runs as `uid` (`SO_PEERCRED` on Linux, `getpeereid` on
/// macOS); otherwise says who it is.
fn check_peer(stream: &UnixStream, uid: u32) -> Result<(), String> {
    match stream.peer_cred() {
        Ok(cred) if cred.uid() == uid => Ok(()),
        Ok(cred) => Err(match cred.pid() {
            Some(pid) => format!("uid {} (pid {pid})", cred.uid()),
            None => format!("uid {}", cred.uid()),
        }),
        Err(e) => Err(format!("a peer whose user cannot be read ({e})")),
    }
}

/// Why a request could not be read.
#[derive(Debug, thiserror::Error)]
enum BadRequest {
    #[error("no request within {} s of connecting", REQUEST_TIMEOUT.as_secs())]
    Timeout,
    #[error("request too large (more than {MAX_REQUEST} bytes)")]
    TooLarge,
    #[error("the client hung up before its request was complete")]
    Incomplete,
    #[error("bad request: {0}")]
    Json(#[from] serde_json::Error),
    #[error("cannot read the request: {0}")]
    Io(#[from] io::Error),
}

/// Reads the request line: at most [`MAX_REQUEST`] bytes, within [`REQUEST_TIMEOUT`].
async fn read_request(r: &mut (impl AsyncBufRead + Unpin)) -> Result<ControlRequest, BadRequest> {
    let mut line = Vec::new();
    let mut limited = (&mut *r).take(MAX_REQUEST as u64 + 1);
    tokio::time::timeout(REQUEST_TIMEOUT, limited.read_until(b'\n', &mut line))
        .await
        .map_err(|_| BadRequest::Timeout)??;
    if line.last() != Some(&b'\n') {
        return Err(if line.len() > MAX_REQUEST {
            BadRequest::TooLarge
        } else {
            BadRequest::Incomplete
        });
    }
    Ok(serde_json::from_slice(&line)?)
}

/// Resolves when the client has closed its end (it sends nothing after its request;
/// anything it does send is ignored).
async fn client_left(r: &mut (impl AsyncRead + Unpin)) {
    let mut scratch = [0u8; 512];
    while let Ok(n) = r.read(&mut scratch).await {
        if n == 0 {
            return;
        }
    }
}

/// How forwarding a command's output ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// The command finished and all its output was sent.
    Done,
    /// The client closed its end or stopped accepting data.
    ClientGone,
    /// The daemon is stopping; `between_frames` when no frame was cut short.
    ShuttingDown { between_frames: bool },
}

/// Copies the command's frames to the client until the command ends, the client leaves
/// or the daemon shuts down: a client that does not read (a paused pager) holds the
/// handler only until then.
async fn forward(
    daemon: &Daemon,
    reader: &mut (impl AsyncRead + Unpin),
    write: &mut (impl AsyncWriteExt + Unpin),
    rx: &mut mpsc::Receiver<Frame>,
) -> Ended {
    loop {
        let frame = tokio::select! {
            frame = rx.recv() => frame,
            () = client_left(reader) => return Ended::ClientGone,
            () = daemon.shutdown.cancelled() => {
                return Ended::ShuttingDown { between_frames: true };
            }
        };
        let Some(frame) = frame else {
            return Ended::Done;
        };
        tokio::select! {
            written = frame.write_to(write) => {
                if written.is_err() {
                    return Ended::ClientGone;
                }
            }
            () = client_left(reader) => return Ended::ClientGone,
            () = daemon.shutdown.cancelled() => {
                return Ended::ShuttingDown { between_frames: false };
            }
        }
    }
}

async fn handle(daemon: Arc<Daemon>, stream: UnixStream) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let req = tokio::select! {
        () = daemon.shutdown.cancelled() => return Ok(()),
        req = read_request(&mut reader) => req,
    };
    let req = match req {
        Ok(r) => r,
        Err(BadRequest::Incomplete) => return Ok(()),
        Err(e) => {
            tracing::debug!("control client: {e}");
            let exit = Exit::failed(FailureKind::Usage, e.to_string());
            return Frame::Exit(exit).write_to(&mut write).await;
        }
    };
    tracing::debug!("control request: {req:?}");
    let cancel = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = mpsc::channel::<Frame>(QUEUED_FRAMES);
    let worker = {
        let (daemon, cancel) = (daemon.clone(), cancel.clone());
        tokio::spawn(async move { run_request(daemon, req, tx, cancel).await })
    };
    let ended = forward(&daemon, &mut reader, &mut write, &mut rx).await;
    if ended != Ended::Done {
        // Nobody will read the rest: an import stops at its next safe point, and a
        // handler still writing gets a broken pipe as soon as the queue is gone (it
        // would otherwise wait for room in it for ever).
        cancel.store(true, Ordering::Relaxed);
        drop(rx);
    }
    let exit = match worker.await {
        Ok(e) => e,
        Err(e) => Exit::failed(
            FailureKind::Failed,
            format!("the daemon's handler failed: {e}"),
        ),
    };
    // Give back what a big listing or export allocated: the daemon idles next.
    super::trim_heap();
    match ended {
        Ended::Done => {
            Frame::Exit(exit).write_to(&mut write).await?;
            write.shutdown().await
        }
        Ended::ClientGone => {
            tracing::debug!("control client left before its command finished; stopped it");
            Ok(())
        }
        Ended::ShuttingDown { between_frames } => {
            if between_frames {
                let exit = Frame::Exit(Exit::failed(
                    FailureKind::Failed,
                    "the daemon stopped before the command finished; run it again",
                ));
                // A client that does not read must not hold up the shutdown.
                let _ = tokio::time::timeout(Duration::from_millis(500), exit.write_to(&mut write))
                    .await;
            }
            Ok(())
        }
    }
}

async fn run_request(
    daemon: Arc<Daemon>,
    req: ControlRequest,
    tx: mpsc::Sender<Frame>,
    cancel: Arc<AtomicBool>,
) -> Exit {
    match req {
        ControlRequest::Command(Request::Sync(args)) => {
            let report = daemon
                .sync_now(args.full, || {
                    let note = "a sync is running; this one starts when it ends\n";
                    let _ = tx.try_send(Frame::Stderr(note.into()));
                })
                .await;
            let mut text = Vec::new();
            let _ = report.write_to(&mut text);
            let _ = tx.send(Frame::Stdout(text)).await;
            match report.failure_message() {
                Some(message) => Exit::failed(FailureKind::Failed, message),
                None => Exit::ok(),
            }
        }
        ControlRequest::Auth(payload) => match daemon.authenticate(payload).await {
            Ok(msg) => {
                let _ = tx.try_send(Frame::Stdout(format!("{msg}\n").into_bytes()));
                Exit::ok()
            }
            Err(e) => Exit::failed(FailureKind::Failed, e.to_string()),
        },
        ControlRequest::Command(req) => {
            if matches!(req, Request::Status(_)) {
                // The jobs' next runs, fresh from the scheduler.
                super::jobs::refresh_view(&daemon).await;
            }
            let is_import = matches!(req, Request::Import(_));
            let _guard = if is_import {
                Some(daemon.import_lock.lock().await)
            } else {
                None
            };
            // `convos mirror` never runs alongside the daemon's own mirror run.
            let _mirror = match req {
                Request::Mirror(_) => Some(daemon.mirror_runs.lock().await),
                _ => None,
            };
            // This request's own stop flag: set when its client leaves or the daemon stops.
            let mut ctx = daemon.ctx.clone();
            ctx.cancel = cancel;
            let result = crate::util::blocking("running a command", move || {
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
                Ok(Ok(())) => Exit::ok(),
                Ok(Err(e)) => Exit::failed(e.kind(), e.to_string()),
                Err(e) => Exit::failed(
                    FailureKind::Failed,
                    format!("the daemon's handler failed: {e}"),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uid() -> u32 {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() }
    }

    #[tokio::test]
    async fn only_peers_of_our_own_user_are_served() {
        let (ours, _theirs) = UnixStream::pair().expect("socket pair");
        assert_eq!(check_peer(&ours, uid()), Ok(()));
        let refused = check_peer(&ours, uid().wrapping_add(1)).expect_err("another uid");
        assert!(
            refused.starts_with(&format!("uid {} (pid {}", uid(), std::process::id())),
            "{refused}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_sends_nothing_times_out() {
        let (_client, server) = tokio::io::duplex(64);
        let err = read_request(&mut BufReader::new(server))
            .await
            .expect_err("no request");
        assert!(matches!(err, BadRequest::Timeout), "{err}");
        // A request sent slowly, byte by byte, is held to the same limit.
        let (mut client, server) = tokio::io::duplex(64);
        tokio::spawn(async move {
            loop {
                if client.write_all(b" ").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        let err = read_request(&mut BufReader::new(server))
            .await
            .expect_err("too slow");
        assert!(matches!(err, BadRequest::Timeout), "{err}");
    }

    #[tokio::test]
    async fn requests_are_limited_in_size_and_must_be_complete() {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let writer = tokio::spawn(async move {
            let big = vec![b' '; MAX_REQUEST + 100];
            let _ = client.write_all(&big).await;
            let _ = client.write_all(b"\n").await;
            client
        });
        let err = read_request(&mut BufReader::new(server))
            .await
            .expect_err("too large");
        assert!(matches!(err, BadRequest::TooLarge), "{err}");
        drop(writer);

        let (mut client, server) = tokio::io::duplex(1024);
        client.write_all(b"{\"Command\":").await.expect("write");
        drop(client);
        let err = read_request(&mut BufReader::new(server))
            .await
            .expect_err("hung up");
        assert!(matches!(err, BadRequest::Incomplete), "{err}");

        let (mut client, server) = tokio::io::duplex(1024);
        let mut line = serde_json::to_vec(&ControlRequest::Command(Request::Status(
            crate::cli::StatusArgs { json: true },
        )))
        .expect("json");
        line.push(b'\n');
        client.write_all(&line).await.expect("write");
        let req = read_request(&mut BufReader::new(server))
            .await
            .expect("request");
        assert!(
            matches!(req, ControlRequest::Command(Request::Status(ref a)) if a.json),
            "{req:?}"
        );
    }
}
