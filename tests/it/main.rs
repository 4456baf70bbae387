//! The integration test binary: every end-to-end test of convos lives under this one target.

mod support;

mod archive_format;
mod auth;
mod cli;
mod corpus;
mod daemon;
mod fake_server_selftest;
mod fixtures_selftest;
mod import;
mod mirror;
mod mirror_daemon;
mod reauth;
mod render;
mod search;
mod search_cli;
mod service;
mod sync;
mod sync_batch;
mod sync_pace;
mod sync_reconcile;
mod sync_smoke;
mod watch;
mod web;
mod web_browser;
mod web_daemon;
