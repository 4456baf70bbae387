//! The integration test binary: every end-to-end test of convos lives under this one target.

mod support;

mod cli;
mod corpus;
mod daemon;
mod fake_server_selftest;
mod fixtures_selftest;
mod import;
mod sync_smoke;
mod watch;
