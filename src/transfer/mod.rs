//! `tessera cp`: copy one file to or from any S3 endpoint, resumably.
//!
//! Uploads go in one PutObject up to `--part-size`, else as a multipart
//! upload whose parts travel in parallel; downloads are ranged GETs in
//! parallel into a temp file beside the target, renamed into place at the
//! end. Both keep a resume file ([`state`]) after every finished part, so an
//! interrupted run (Ctrl-C, a kill, a lost server) resumes when the same
//! command runs again, and both check the result against the ETag.
//!
//! Every part is hashed (SHA-256) before it is sent, and the SHA-256 goes
//! out as `x-amz-checksum-sha256` with `Expect: 100-continue`: the server
//! verifies the body against it, and a Tessera server completes a part it
//! already holds for this user without its body (instant upload,
//! `s3/instant.rs`); any other S3 server simply asks for the body.
//!
//! The S3 client is the benchmark's (`bench::client`): SigV4 over hyper,
//! plus the raw HTTP/1.1 PUT that really waits for `100 Continue`.

mod companions;
mod creds;
mod download;
mod location;
mod ops;
mod pool;
mod progress;
pub mod state;
mod tree;
mod upload;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

pub use companions::{EndpointArgs, LsArgs, MbArgs, RmArgs};
pub use creds::{profile_keys, Credentials};
pub use location::Location;

use crate::bench::client::S3;

/// S3's smallest part (but the last) and largest part.
/// Reference: <https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html>
const MIN_PART: u64 = 5 << 20;
const MAX_PART: u64 = 5 << 30;
/// S3's most parts in one upload.
pub const MAX_PARTS: u64 = 10_000;
/// The exit status of a run paused by Ctrl-C (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: i32 = 130;

#[derive(Debug, Clone, Args)]
pub struct CpArgs {
    /// What to copy: a local file, or `s3://bucket/key`.
    pub source: String,
    /// Where to: `s3://bucket/key` (a key ending in `/` takes the file's
    /// name), or a local file or folder.
    pub dest: String,
    /// Copy a folder to a prefix (`DIR s3://bucket/prefix/`), or every
    /// object under a prefix to a folder, one file after the other.
    #[arg(long)]
    pub recursive: bool,
    #[command(flatten)]
    pub remote: EndpointArgs,
    /// Bytes per part of a multipart upload, and per ranged GET of a
    /// download (`8MiB`, `8M`, `16777216`; 5 MiB to 5 GiB). Larger uploads
    /// go in parts, smaller in one PutObject.
    #[arg(long, default_value = "8MiB", value_parser = parse_part_size)]
    pub part_size: u64,
    /// Parts in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Downloads: flush the file to disk (fsync) before renaming it into
    /// place and returning, so it survives a power loss. Off by default,
    /// as in cp, curl, aws-cli and rclone: the disk's write speed then
    /// bounds the download.
    #[arg(long)]
    pub fsync: bool,
    /// Tests only: wait this long before each part, so a test can interrupt
    /// a transfer half-way.
    #[arg(long, env = "TESSERA_CP_TEST_PART_DELAY", hide = true, value_parser = humantime::parse_duration)]
    pub test_part_delay: Option<Duration>,
}

fn parse_part_size(text: &str) -> Result<u64, String> {
    let size = crate::bench::units::parse_size(text)?;
    if !(MIN_PART..=MAX_PART).contains(&size) {
        return Err(format!("{size} bytes: a part is 5 MiB to 5 GiB"));
    }
    Ok(size)
}

/// How a run ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Paused by Ctrl-C; the resume file is saved.
    Interrupted,
}

/// What every transfer needs: the client, where it points, the options and
/// the pause flag.
pub struct Ctx {
    pub s3: S3,
    pub endpoint: String,
    pub part_size: u64,
    pub concurrency: usize,
    pub part_delay: Option<Duration>,
    /// Downloads are flushed to disk before they are renamed into place.
    pub fsync: bool,
    /// Set by Ctrl-C: start no new part.
    pub stop: Arc<AtomicBool>,
}

impl Ctx {
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// Runs `tessera cp`. A pause is not an error: it ends in [`Outcome::Interrupted`].
pub fn run(args: CpArgs) -> anyhow::Result<Outcome> {
    let (source, dest) = (Location::parse(&args.source)?, Location::parse(&args.dest)?);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let (s3, endpoint) = connect(&args.remote)?;
        let stop = Arc::new(AtomicBool::new(false));
        tokio::spawn(pause_on_ctrl_c(stop.clone()));
        let ctx = Ctx {
            s3,
            endpoint,
            part_size: args.part_size,
            concurrency: usize::from(args.concurrency),
            part_delay: args.test_part_delay,
            fsync: args.fsync,
            stop,
        };
        match (source, dest, args.recursive) {
            (Location::Local(path), Location::Remote { bucket, key }, false) => {
                let key = location::key_for(&key, &path)?;
                upload::upload(&ctx, &path, &bucket, &key).await
            }
            (Location::Remote { bucket, key }, Location::Local(path), false) => {
                let path = location::target_for(path, &key);
                download::download(&ctx, &bucket, &key, &path).await
            }
            (Location::Local(dir), Location::Remote { bucket, key }, true) => {
                tree::upload_tree(&ctx, &dir, &bucket, &key).await
            }
            (Location::Remote { bucket, key }, Location::Local(dir), true) => {
                tree::download_tree(&ctx, &bucket, &key, &dir).await
            }
            _ => anyhow::bail!("copy a local file to s3://bucket/key, or s3://bucket/key to a local file"),
        }
    })
}

/// The client for `--endpoint` (no trailing `/`) with the usual AWS credentials.
fn connect(remote: &EndpointArgs) -> anyhow::Result<(S3, String)> {
    let creds = Credentials::resolve()?;
    let endpoint = remote.endpoint.trim_end_matches('/').to_string();
    let s3 = S3::new(&endpoint, &creds.access_key, &creds.secret_key, &creds.region)?;
    Ok((s3, endpoint))
}

/// `tessera ls`, `mb` and `rm`.
#[derive(Debug, Clone)]
pub enum Companion {
    Ls(LsArgs),
    Mb(MbArgs),
    Rm(RmArgs),
}

/// Runs `tessera ls`, `mb` or `rm`.
pub fn run_companion(command: Companion) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let remote = match &command {
            Companion::Ls(args) => &args.remote,
            Companion::Mb(args) => &args.remote,
            Companion::Rm(args) => &args.remote,
        };
        let (s3, _) = connect(remote)?;
        match &command {
            Companion::Ls(args) => companions::ls(&s3, args).await,
            Companion::Mb(args) => companions::mb(&s3, args).await,
            Companion::Rm(args) => companions::rm(&s3, args).await,
        }
    })
}

/// The first Ctrl-C asks every worker to start no new part; the parts in
/// flight finish and are recorded. A second one quits at once: the resume
/// file is rewritten atomically after every part, so it is never torn.
async fn pause_on_ctrl_c(stop: Arc<AtomicBool>) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    stop.store(true, Ordering::SeqCst);
    eprintln!("tessera cp: pausing after the parts in flight (Ctrl-C again to quit at once)");
    if tokio::signal::ctrl_c().await.is_ok() {
        eprintln!("tessera cp: stopped; run the same command again to resume");
        std::process::exit(EXIT_INTERRUPTED);
    }
}

/// Where resume files live: `$XDG_STATE_HOME/tessera`, else
/// `~/.local/state/tessera` (the XDG base directory default).
pub fn state_home() -> anyhow::Result<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("XDG_STATE_HOME") {
        return Ok(dir.join("tessera"));
    }
    let home = var("HOME").context("neither XDG_STATE_HOME nor HOME is set: no place for resume files")?;
    Ok(home.join(".local/state/tessera"))
}
