//! The integration test binary: every end-to-end test of convos lives under this one target.

mod support;

mod auth;
mod cli;
mod corpus;
mod fake_server_selftest;
mod fixtures_selftest;
mod import;
mod sync;
mod sync_smoke;
