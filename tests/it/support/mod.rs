//! Shared test support: a fixture generator for exports and a fake chatgpt.com server.
#![allow(dead_code)]

pub mod cli;
pub mod daemon_env;
pub mod fake_server;
pub mod fixtures;
pub mod sync_env;
pub mod tmpfs;
