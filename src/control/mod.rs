//! The local control socket's protocol, shared by the CLI ([`client`]) and the daemon
//! (whose server side is `daemon::server`). While the daemon runs it holds the archive's
//! lock, so `convos status|sync|import|list|show|search|reindex|export|mirror|auth`
//! reach it here and it runs the same handlers the CLI runs in-process otherwise.
//!
//! The client sends one JSON line (a [`ControlRequest`]) and keeps its end open; the
//! daemon answers with [`Frame`]s, `[tag: u8][len: u32 BE][payload]`: standard output
//! bytes, standard error text, and last how the command ended ([`Exit`]). A client that
//! closes its end has left: its command is stopped.

pub mod client;

use crate::cli::{ExportArgs, ExportFormat, ImportArgs, ListArgs, SearchArgs, ShowArgs};
use crate::cli::{MirrorArgs, ReindexArgs, ShowFormat, StatusArgs, SyncArgs};
use serde::{Deserialize, Serialize};
use std::io::{self, Read};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Largest request line accepted, in bytes.
pub const MAX_REQUEST: usize = 1 << 20;
/// How long a client has to send its request once connected.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A command that can run in-process or through the daemon.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Request {
    /// `convos status`
    Status(StatusArgs),
    /// `convos list`
    List(ListArgs),
    /// `convos show`
    Show(ShowArgs),
    /// `convos search`
    Search(SearchArgs),
    /// `convos export` (with an absolute output folder)
    Export(ExportArgs),
    /// `convos import` (with absolute paths)
    Import(ImportArgs),
    /// `convos sync`
    Sync(SyncArgs),
    /// `convos mirror` (with an absolute `--dir`)
    Mirror(MirrorArgs),
    /// `convos reindex`
    Reindex(ReindexArgs),
}

impl Request {
    /// Makes relative paths absolute against `cwd`, so the daemon (whose working
    /// directory differs) reads and writes what the user meant.
    pub fn absolutize(mut self, cwd: &Path) -> Self {
        match &mut self {
            Request::Import(a) => {
                for p in &mut a.paths {
                    if p.is_relative() {
                        *p = cwd.join(&*p);
                    }
                }
            }
            Request::Export(a) if a.out != "-" && Path::new(&a.out).is_relative() => {
                a.out = cwd.join(&a.out).display().to_string();
            }
            Request::Mirror(a) => {
                if let Some(d) = a.dir.as_mut().filter(|d| d.is_relative()) {
                    *d = cwd.join(&*d);
                }
            }
            _ => {}
        }
        self
    }

    /// Whether the request prints JSON, which stays exact, rather than text for people,
    /// whose control characters (from titles, messages, file names) are made visible on
    /// the way to standard output: one filter for every human output, whoever wrote it.
    pub fn prints_json(&self) -> bool {
        match self {
            Request::Status(a) => a.json,
            Request::List(a) => a.json,
            // Highlighted search output cleans each piece itself and keeps its escapes.
            Request::Search(a) => a.json || a.highlight,
            Request::Show(a) => matches!(a.format, ShowFormat::Json),
            Request::Export(a) => a.out == "-" && !matches!(a.format, ExportFormat::Md),
            Request::Import(_) | Request::Sync(_) | Request::Mirror(_) | Request::Reindex(_) => {
                false
            }
        }
    }
}

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

/// What kind of failure ended a command. The exit code follows from it, in one place
/// (`app::exit`): the daemon reports the kind, the client chooses the code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureKind {
    /// The command ran and failed.
    Failed,
    /// The command was asked for wrongly.
    Usage,
    /// The configuration is wrong.
    Config,
}

/// How a command ended: the last frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exit {
    /// What kind of failure, if the command failed.
    pub failure: Option<FailureKind>,
    /// What went wrong, if the command failed.
    pub error: Option<String>,
}

impl Exit {
    /// A command that succeeded.
    pub fn ok() -> Self {
        Exit {
            failure: None,
            error: None,
        }
    }

    /// A command that failed.
    pub fn failed(kind: FailureKind, error: impl Into<String>) -> Self {
        Exit {
            failure: Some(kind),
            error: Some(error.into()),
        }
    }
}

/// One frame of the daemon's answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// Bytes for the client's standard output.
    Stdout(Vec<u8>),
    /// Text for the client's standard error.
    Stderr(Vec<u8>),
    /// How the command ended; nothing follows.
    Exit(Exit),
}

impl Frame {
    const STDOUT: u8 = b'o';
    const STDERR: u8 = b'e';
    const EXIT: u8 = b'x';

    /// The frame's tag and payload.
    fn parts(&self) -> io::Result<(u8, std::borrow::Cow<'_, [u8]>)> {
        Ok(match self {
            Frame::Stdout(b) => (Self::STDOUT, b.into()),
            Frame::Stderr(b) => (Self::STDERR, b.into()),
            Frame::Exit(e) => (Self::EXIT, serde_json::to_vec(e)?.into()),
        })
    }

    /// Writes the frame to an async stream (the daemon's side).
    pub async fn write_to(&self, w: &mut (impl AsyncWrite + Unpin)) -> io::Result<()> {
        let (tag, payload) = self.parts()?;
        let len = u32::try_from(payload.len()).map_err(|_| io::Error::other("frame too large"))?;
        w.write_u8(tag).await?;
        w.write_u32(len).await?;
        w.write_all(&payload).await
    }

    /// Reads one frame from a blocking stream (the client's side).
    pub fn read_from(r: &mut impl Read) -> io::Result<Frame> {
        let mut head = [0u8; 5];
        r.read_exact(&mut head)?;
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut payload = vec![0u8; len];
        r.read_exact(&mut payload)?;
        match head[0] {
            Self::STDOUT => Ok(Frame::Stdout(payload)),
            Self::STDERR => Ok(Frame::Stderr(payload)),
            Self::EXIT => Ok(Frame::Exit(serde_json::from_slice(&payload)?)),
            other => Err(io::Error::other(format!(
                "unknown frame {other} from the daemon"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_read_back_as_written() {
        let frames = [
            Frame::Stdout(b"line\n".to_vec()),
            Frame::Stderr(b"warning\n".to_vec()),
            Frame::Exit(Exit::failed(FailureKind::Usage, "request too large")),
            Frame::Exit(Exit::ok()),
        ];
        let mut wire = Vec::new();
        for f in &frames {
            f.write_to(&mut wire).await.expect("write");
        }
        assert_eq!(
            &wire[..5],
            &[b'o', 0, 0, 0, 5],
            "tag, then the length big-endian"
        );
        let mut r = &wire[..];
        for f in &frames {
            assert_eq!(&Frame::read_from(&mut r).expect("read"), f);
        }
        let bad = [b'z', 0, 0, 0, 0];
        let err = Frame::read_from(&mut &bad[..]).expect_err("unknown tag");
        assert!(err.to_string().contains("unknown frame"), "{err}");
    }

    #[test]
    fn json_output_stays_exact_and_text_is_cleaned() {
        let status = |json| Request::Status(StatusArgs { json });
        assert!(status(true).prints_json());
        assert!(!status(false).prints_json());
        let export = |out: &str, format| {
            Request::Export(ExportArgs {
                format,
                out: out.into(),
            })
        };
        assert!(export("-", ExportFormat::Jsonl).prints_json());
        assert!(!export("-", ExportFormat::Md).prints_json());
        assert!(!export("dir", ExportFormat::Json).prints_json());
    }
}
