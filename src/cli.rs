//! Command-line definitions (clap derive). The command set is a contract shared with
//! the README and DESIGN.md.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// convos keeps a complete, lossless local archive of your ChatGPT conversations.
#[derive(Debug, Parser)]
#[command(
    name = "convos",
    version,
    about,
    long_about = "convos keeps a complete, lossless, always-current local archive of your ChatGPT \
conversations: every branch, image and tool call, safe from deleted chats and expiring tokens.\n\n\
Run `convos run` as a background service (see `convos service install`) to sync from chatgpt.com \
on a schedule and import any data-export ZIP that lands in your Downloads folder; read the archive \
with `convos list`, `show`, `search` and `export`, or in your browser with `convos web`.",
    after_help = "Exit codes: 0 ok, 1 failure, 2 usage error, 78 bad configuration."
)]
pub struct Cli {
    /// Config file (default: the platform config dir's convos/config.toml)
    #[arg(long, global = true, env = "CONVOS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the archive and credentials live (default: the platform data dir)
    #[arg(long, global = true, env = "CONVOS_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// More log output (-v debug, -vv trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less log output (-q warnings only, -qq errors only)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,
    /// What to do
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// `-v` minus `-q`.
    pub fn verbosity(&self) -> i8 {
        self.verbose.min(4) as i8 - self.quiet.min(4) as i8
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground: scheduled syncs (in local time unless `[sync]
    /// timezone` says otherwise), a weekly full sync, Downloads watcher, the Markdown
    /// mirror (`[mirror] dir`), control socket
    Run,
    /// Sync from chatgpt.com once, then exit (through the daemon when it runs)
    Sync(SyncArgs),
    /// Import export ZIPs, unpacked export folders or JSON files
    Import(ImportArgs),
    /// Store and verify the chatgpt.com session token
    Auth(AuthArgs),
    /// Show the daemon's state and jobs (next runs in UTC and local time), last sync and
    /// import, counts, token expiry, paths, the Markdown mirror
    Status(StatusArgs),
    /// List conversations, newest update first
    List(ListArgs),
    /// Show one conversation (by id or unique id prefix)
    Show(ShowArgs),
    /// Search conversation titles and message text (ranked, from the search index)
    Search(SearchArgs),
    /// Rebuild the search index from the archive (it is kept current by itself; this
    /// starts it over)
    Reindex(ReindexArgs),
    /// Export the archive as Markdown, JSON or JSON lines
    Export(ExportArgs),
    /// Bring the Markdown mirror (a folder of notes, e.g. in an Obsidian vault) up to
    /// date once (through the daemon when it runs; the daemon also keeps it current)
    ///
    /// Without --dir, the folder of `[mirror] dir` (or CONVOS_MIRROR_DIR). One note per
    /// conversation, named once and never renamed, an index.md, and the attachments.
    /// What you write below a note's convos line, and properties you add, are kept; if
    /// you edit the part above it, your version is saved in .convos/conflicts/ before
    /// the note is rewritten. Notes you delete stay deleted until --rebuild.
    Mirror(MirrorArgs),
    /// Open the daemon's local web viewer in the browser (read-only; on
    /// 127.0.0.1:8642 unless `[web] listen` says otherwise)
    Web(WebArgs),
    /// Install, remove or inspect the background service (systemd user unit / launchd agent)
    Service(ServiceArgs),
}

/// `convos web`
#[derive(Debug, Args, Clone)]
pub struct WebArgs {
    /// Print the viewer's address (with its access token: keep it to yourself) instead
    /// of opening a browser
    #[arg(long)]
    pub print_url: bool,
}

/// `convos sync`
#[derive(Debug, Args, Clone, serde::Serialize, serde::Deserialize)]
pub struct SyncArgs {
    /// Walk every listing to the end now (the weekly reconcile job does this too), fetch
    /// what changed, and mark conversations absent from every listing whose detail
    /// answers 404 as deleted_remotely (they are kept)
    #[arg(long)]
    pub full: bool,
}

/// `convos import`
#[derive(Debug, Args, Clone, serde::Serialize, serde::Deserialize)]
pub struct ImportArgs {
    /// ZIP files, unpacked export folders, conversations*.json files, or JSON files
    /// holding one conversation
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Import even files whose contents were imported before
    #[arg(long)]
    pub force: bool,
}

/// `convos auth`
#[derive(Debug, Args, Clone)]
pub struct AuthArgs {
    /// Read the token from standard input without prompting (for scripts)
    #[arg(long, conflicts_with = "from_browser")]
    pub token_stdin: bool,
    /// Read the session cookie from a browser's cookie store: auto, firefox, chrome,
    /// chromium, brave, edge or safari
    #[arg(long, value_name = "BROWSER", num_args = 0..=1, default_missing_value = "auto")]
    pub from_browser: Option<String>,
}

/// `convos status`
#[derive(Debug, Args, Clone, serde::Serialize, serde::Deserialize)]
pub struct StatusArgs {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// `convos list`
#[derive(Debug, Args, Clone, serde::Serialize, serde::Deserialize)]
pub struct ListArgs {
    /// Print one JSON array of {id, title, update_time, message_count}
    #[arg(long)]
    pub json: bool,
    /// Show at most this many
    #[arg(long, short = 'n', value_name = "N")]
    pub limit: Option<usize>,
}

/// `convos show`
#[derive(Debug, Args, Clone, serde::Serialize, serde::Deserialize)]
pub struct ShowArgs {
    /// Conversation id, or a unique prefix of one
    pub id: String,
    /// Output format
    #[arg(long, value_enum, default_value_t = ShowFormat::Md)]
    pub format: ShowFormat,
}

/// Formats of `show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
pub enum ShowFormat {
    /// Markdown
    Md,
    /// Export schema v1 JSON
    Json,
}

/// `convos search`
#[derive(Debug, Args, Clone, serde::Serialize, serde::Deserialize)]
#[command(
    after_help = "Query syntax: every word must appear (in any form: case and accents \
are ignored); \"exact phrase\" in quotes (an argument with spaces is a phrase too); -word \
excludes (write it after `--`, as in `convos search fox -- -evening`); word* matches words \
that start so. \
Results are ranked (BM25; matches in the title rank higher), one line per conversation with \
its best message. Dates are YYYY, YYYY-MM, YYYY-MM-DD (UTC) or RFC 3339 times."
)]
pub struct SearchArgs {
    /// Words to find, all in one message: "exact phrases" (or one argument with spaces),
    /// -excluded (after `--`), prefix*
    #[arg(required = true, value_name = "WORDS")]
    pub query: Vec<String>,
    /// Print one JSON array of {id, title, update_time, score, message_id, role, snippet}
    #[arg(long)]
    pub json: bool,
    /// Show at most this many conversations
    #[arg(long, short = 'n', value_name = "N", default_value_t = 20)]
    pub limit: usize,
    /// Only messages of this role: user, assistant or tool
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
    /// Only messages written on or after this date
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Only messages written up to this date (inclusive: --until 2024-05 includes May)
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    /// Only conversations of this project (its name)
    #[arg(long, value_name = "NAME")]
    pub project: Option<String>,
    /// Only conversations or messages of this model (e.g. gpt-4o)
    #[arg(long, value_name = "SLUG")]
    pub model: Option<String>,
    /// Only archived conversations
    #[arg(long, conflicts_with = "no_archived")]
    pub archived: bool,
    /// Only conversations that are not archived
    #[arg(long)]
    pub no_archived: bool,
    /// Only conversations deleted on chatgpt.com (kept in the archive)
    #[arg(long)]
    pub deleted: bool,
    /// Highlight matches with terminal escapes (set when standard output is a terminal)
    #[arg(skip)]
    #[serde(default)]
    pub highlight: bool,
}

/// `convos reindex`
#[derive(Debug, Args, Clone, serde::Serialize, serde::Deserialize)]
pub struct ReindexArgs {}

/// `convos export`
#[derive(Debug, Args, Clone, serde::Serialize, serde::Deserialize)]
pub struct ExportArgs {
    /// Output format: md (one file per conversation, attachments beside), json (one
    /// array), jsonl (one conversation per line)
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Output folder, or - for standard output
    #[arg(long, value_name = "DIR|-", default_value = "-")]
    pub out: String,
}

/// Formats of `export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
pub enum ExportFormat {
    /// Markdown files
    Md,
    /// One JSON array
    Json,
    /// JSON lines
    Jsonl,
}

/// `convos mirror`
#[derive(Debug, Args, Clone, serde::Serialize, serde::Deserialize)]
pub struct MirrorArgs {
    /// Mirror into this folder (created if its parent exists) instead of `[mirror] dir`
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Check every note and attachment on disk: recreate notes you deleted, rewrite
    /// index.md (your notes below the convos line and your properties are still kept)
    #[arg(long)]
    pub rebuild: bool,
}

/// `convos service`
#[derive(Debug, Args, Clone)]
pub struct ServiceArgs {
    /// What to do
    #[arg(value_enum)]
    pub action: ServiceAction,
    /// Print the files and commands instead of acting
    #[arg(long)]
    pub dry_run: bool,
}

/// Service actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServiceAction {
    /// Write the service file, enable and start it
    Install,
    /// Stop, disable and remove it
    Uninstall,
    /// Show whether it is installed and running
    Status,
}
