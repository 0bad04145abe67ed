//! Tessera: an S3-compatible object storage gateway.
//!
//! Request flow: `server` accepts and authenticates (`auth`), `http::route`
//! names the operation, `s3` handles it, `store` keeps metadata in redb and
//! bytes in immutable blob files. See docs/architecture.md.

pub mod access_log;
pub mod admin;
pub mod auth;
pub mod bench;
pub mod config;
pub mod console;
pub mod error;
pub mod http;
pub mod meta_cli;
pub mod metrics;
pub mod s3;
pub mod server;
pub mod stats_cli;
pub mod store;
pub mod tls;
pub mod transfer;
pub mod user_cli;
