//! Command line, environment and the root credentials. No globals: `main`
//! builds one [`ServeConfig`] and hands it down.

use std::fs;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "tessera", version, about = "An S3-compatible object storage gateway")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the S3 API.
    Serve(ServeConfig),
    /// Measure an S3 endpoint (throughput, latency, small objects, listing) and this machine's limits.
    Bench(crate::bench::BenchArgs),
    /// Write a consistent backup of a data folder, from a running server (asked
    /// through its admin API) or a stopped one.
    Backup(crate::admin::BackupArgs),
    /// Check every blob of a stopped server's data folder against its block
    /// checksums; exits 1 if any is corrupt, 2 if the check could not run.
    Scrub(ScrubArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ScrubArgs {
    /// Data folder of a stopped server.
    #[arg(long, default_value = "./tessera-data")]
    pub data: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,
    /// Data folder: metadata database and blob files.
    #[arg(long, default_value = "./tessera-data")]
    pub data: PathBuf,
    /// The region this server answers for (SigV4 scopes must name it).
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Enables virtual-hosted-style requests for `<bucket>.<domain>`.
    #[arg(long)]
    pub domain: Option<String>,
    /// Multipart uploads older than this are aborted in the background and
    /// their parts freed (e.g. `7d`, `36h`, `90s`).
    #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
    pub abort_incomplete_after: std::time::Duration,
    /// Time between background scrub passes, which read every blob and log
    /// corruption (the first starts after this or 10 minutes, whichever is
    /// sooner); `0s` turns the background scrub off.
    #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
    pub scrub_interval: std::time::Duration,
    /// Most bytes per second the background scrub reads (e.g. `16MiB`).
    #[arg(long, default_value = "16MiB", value_parser = crate::bench::units::parse_size)]
    pub scrub_rate: u64,
    /// A request body that sends no byte for this long is abandoned with
    /// `RequestTimeout` and its connection closed, freeing all it held.
    #[arg(long, env = "TESSERA_BODY_TIMEOUT", default_value = "30s", value_parser = positive_duration)]
    pub body_timeout: std::time::Duration,
    /// Serve a metadata database found older than the commits already
    /// acknowledged to clients (after a corrupted header or a lost write),
    /// instead of refusing to start. See docs/reliability.md.
    #[arg(long)]
    pub accept_db_rollback: bool,
    /// The length of a lifecycle "day": lifecycle rules count their Days in
    /// it. One real day; tests shorten it (e.g. `2s`) to see rules applied.
    #[arg(long, default_value = "1d", value_parser = positive_duration, hide = true)]
    pub lifecycle_day: std::time::Duration,
}

/// A humantime duration (`30s`, `2m`) greater than zero.
fn positive_duration(text: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("must be greater than zero".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

/// The root user's key pair, and where it came from.
pub struct RootCredentials {
    pub access_key: String,
    pub secret_key: String,
    pub origin: &'static str,
}

/// `TESSERA_ACCESS_KEY` / `TESSERA_SECRET_KEY` if both are set; otherwise the
/// pair stored in the data folder; otherwise a new pair, stored there (0600).
pub fn root_credentials(path: &Path) -> io::Result<RootCredentials> {
    if let (Ok(access_key), Ok(secret_key)) = (std::env::var("TESSERA_ACCESS_KEY"), std::env::var("TESSERA_SECRET_KEY"))
    {
        if !access_key.is_empty() && !secret_key.is_empty() {
            return Ok(RootCredentials { access_key, secret_key, origin: "environment" });
        }
    }
    if let Ok(text) = fs::read_to_string(path) {
        let mut lines = text.lines().map(str::trim);
        if let (Some(a), Some(s)) = (lines.next(), lines.next()) {
            return Ok(RootCredentials { access_key: a.to_string(), secret_key: s.to_string(), origin: "data folder" });
        }
    }
    let creds = RootCredentials {
        access_key: random_text(20, ACCESS_ALPHABET)?,
        secret_key: random_text(40, SECRET_ALPHABET)?,
        origin: "generated",
    };
    let mut file = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    writeln!(file, "{}\n{}", creds.access_key, creds.secret_key)?;
    file.sync_all()?;
    Ok(creds)
}

const ACCESS_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

#[allow(clippy::indexing_slicing, reason = "a value modulo the alphabet length indexes the alphabet")]
fn random_text(len: usize, alphabet: &[u8]) -> io::Result<String> {
    let mut bytes = vec![0u8; len];
    getrandom::getrandom(&mut bytes).map_err(io::Error::other)?;
    // Both alphabets divide 256 unevenly only slightly (36) or not at all (64):
    // the bias of the 36-letter access key id is irrelevant, it is not a secret.
    Ok(bytes.iter().map(|b| alphabet[usize::from(*b) % alphabet.len()] as char).collect())
}
