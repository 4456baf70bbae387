//! convos keeps a lossless, always-current local archive of one person's ChatGPT
//! conversations.
//!
//! # Layout
//! - [`cli`]: clap definitions; [`app`]: the command-line application (dispatch)
//! - [`config`]: typed configuration, precedence, paths; [`logging`]: tracing setup
//! - [`model`]: ChatGPT data as it arrives (tolerant) and its views: times, the node
//!   tree and active branch, per-content-type text and attachments
//! - [`archive`]: persistence on sled; [`archive::Archive::upsert`] is the one door
//!   every source writes conversations through; attachments stored by content hash
//! - [`ingest`]: export ZIPs, folders and JSON files → raw conversations (streaming)
//! - [`render`]: the Export schema v1 view, JSON and Markdown
//! - [`commands`]: the handlers behind status/list/show/search/export/import, shared
//!   by the CLI and the daemon's control socket
//! - [`api`]: the chatgpt.com client: credentials, session exchange, pacing, typed errors
//! - [`sync`]: one incremental sync run (frontier, fetch what changed, attachments)
//! - [`auth_sync`]: `convos auth` and the one-shot `convos sync`
//! - [`browser`]: the session cookie from a browser's cookie store; [`browser_auth`]
//!   glues it to `auth --from-browser` and automatic re-authentication
//! - [`daemon`]: `convos run`: schedule, token refresh, folder watcher, control socket
//! - [`service`]: install/uninstall the user service (systemd/launchd)
//! - [`web`]: the local web viewer: axum routes, maud templates, access checks
//!
//! # Data flow
//! `daemon::jobs → api → sync → Archive::upsert` and
//! `daemon::watch → ingest → model::RawConversation → Archive::upsert`; `render`
//! reads the archive.

pub mod api;
pub mod app;
pub mod archive;
pub mod auth_sync;
#[cfg(feature = "browser")]
pub mod browser;
pub mod browser_auth;
pub mod cli;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod ingest;
pub mod logging;
pub mod model;
pub mod render;
pub mod service;
pub mod sync;
pub mod web;
