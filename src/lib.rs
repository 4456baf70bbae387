//! convos keeps a lossless, always-current local archive of one person's ChatGPT
//! conversations.
//!
//! # Layout
//! One concept per module; imports run one way, top to bottom, and no two top-level
//! modules import each other.
//! - [`app`]: the command-line application: dispatch, `AppError`, every exit code
//!   ([`app::exit`]), one file per command family; nothing imports it but `main.rs`
//! - [`daemon`]: `convos run`, the composition root (nothing imports it): `jobs` (one
//!   tokio-cron-scheduler for sync, reconcile, token refresh and rescan, in the local
//!   time zone), `sync_runs` (running syncs, re-authentication, backoff),
//!   `mirror_runs` (the Markdown mirror kept current from the change feed), `index`
//!   (the search index's indexer, woken by the change feed), the folder watcher, the
//!   control socket's server
//! - [`control`]: the local socket protocol shared by CLI and daemon: `Request`,
//!   `Frame`, and the client side
//! - [`commands`]: the handlers behind status/list/show/search/reindex/export/import/
//!   mirror, shared by the CLI and the daemon
//! - [`sync`]: the sync engine: walk the listings and the frontier, fetch what
//!   changed, attachments; `SyncReport` and `StopReason`
//! - [`session`]: credentials: load, verify, store, adopt, browser re-authentication
//! - [`api`]: the chatgpt.com client: requests, typed errors, pacing
//! - [`browser`]: cookie stores: Firefox, the Chromium family, Safari
//! - [`ingest`]: export ZIPs, folders and JSON files → raw conversations (streaming)
//! - [`render`]: views of the archive: the Export schema v1, JSON, Markdown, file
//!   names, terminal-safe text
//! - [`search`]: the full-text index (tantivy), a derived store that catches up from
//!   the archive's change feed
//! - [`archive`]: persistence on sled; [`archive::Archive::upsert`] is the one door
//!   every source writes conversations through; attachments stored by content hash
//! - [`web`]: the local web viewer: axum routes, maud templates, access checks
//! - [`mirror`]: the Markdown mirror, a derived store: one note per conversation in a
//!   folder (an Obsidian vault), updated incrementally, keeping what the user adds
//! - [`model`]: ChatGPT data as it arrives (tolerant): times, the node tree and active
//!   branch, per-content-type text and attachments
//! - [`cli`]: clap definitions; [`config`]: typed configuration, precedence, paths;
//!   [`logging`]: tracing setup; [`service`]: the user service (systemd/launchd);
//!   [`util`]: helpers that own no concept (hex, backoff, blocking work)
//!
//! # Data flow
//! `daemon::jobs → sync → (session, api) → Archive::upsert` and
//! `daemon::watch → ingest → model::RawConversation → Archive::upsert`; after a write,
//! `daemon::mirror_runs → mirror` and `daemon::index → search` catch up from the
//! archive's change feed; `render` and `commands` read the archive.

pub mod api;
pub mod app;
pub mod archive;
#[cfg(feature = "browser")]
pub mod browser;
pub mod cli;
pub mod commands;
pub mod config;
pub mod control;
pub mod daemon;
pub mod ingest;
pub mod logging;
pub mod mirror;
pub mod model;
pub mod render;
pub mod search;
pub mod service;
pub mod session;
pub mod sync;
pub mod util;
pub mod web;
