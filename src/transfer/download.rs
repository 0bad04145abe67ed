//! Downloads: ranged GETs in parallel into `.NAME.tessera-partial` beside
//! the target, each range written and flushed before the resume file
//! `.NAME.tessera-download` records it; checked (size, and the MD5 of a
//! single-part object against its ETag) and renamed into place at the end.
//!
//! Every GET carries `If-Range` with the ETag the download started with: a
//! replaced object answers with the whole new object instead of the range
//! (RFC 9110 section 13.1.5), and the download starts over. A resumed
//! download also starts over when HeadObject shows another ETag or size.
//! So the file is never a mix of two objects.

use std::collections::{BTreeSet, VecDeque};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use md5::{Digest, Md5};

use super::ops::{self, Got};
use super::pool;
use super::progress::{How, Progress};
use super::state::{self, DownloadState};
use super::{Ctx, Outcome};

/// Starting over more often than this means the object keeps changing.
const MAX_RESTARTS: u64 = 3;

/// The files of one download.
struct Files<'a> {
    target: &'a Path,
    partial: PathBuf,
    state: PathBuf,
}

pub async fn download(ctx: &Ctx, bucket: &str, key: &str, target: &Path) -> anyhow::Result<Outcome> {
    let files = Files {
        target,
        partial: state::beside(target, "tessera-partial"),
        state: state::beside(target, "tessera-download"),
    };
    anyhow::ensure!(!key.is_empty(), "s3://{bucket}/: name the object to download");
    let progress = Progress::new(0);
    let result = fetch_until_done(ctx, (bucket, key), &files, &progress).await;
    match result {
        Err(e) if files.state.exists() => {
            Err(e.context("the download stopped; run the same command again to resume it"))
        }
        other => other,
    }
}

async fn fetch_until_done(
    ctx: &Ctx,
    (bucket, key): (&str, &str),
    files: &Files<'_>,
    progress: &Progress,
) -> anyhow::Result<Outcome> {
    loop {
        let (size, etag) = ops::head(ctx, bucket, key).await.with_context(|| format!("s3://{bucket}/{key}"))?;
        let fresh = DownloadState {
            format: state::FORMAT,
            endpoint: ctx.endpoint.clone(),
            bucket: bucket.to_string(),
            key: key.to_string(),
            etag,
            size,
            part_size: ctx.part_size,
            done: BTreeSet::new(),
        };
        let (state, file) = open(files, fresh, progress)?;
        let job = Job { ctx, bucket, key, files, file: Arc::new(file), changed: AtomicBool::new(false) };
        let state = job.fetch(state, progress).await?;
        if job.changed.load(Ordering::SeqCst) {
            anyhow::ensure!(progress.counts().restarts < MAX_RESTARTS, "s3://{bucket}/{key} keeps changing");
            eprintln!("tessera cp: s3://{bucket}/{key} changed during the download; starting over");
            discard(files)?;
            progress.restart(0);
            continue;
        }
        if (state.done.len() as u64) < ranges(&state) {
            progress.abandon();
            eprintln!("tessera cp: paused; run the same command again to resume the download");
            return Ok(Outcome::Interrupted);
        }
        return job.finish(&state, progress).await;
    }
}

fn ranges(state: &DownloadState) -> u64 {
    state.size.div_ceil(state.part_size)
}

/// The partial file and state to go on from: the recorded ones if they
/// describe this very object (same ETag, size, part size) and the partial
/// file is there, else new ones.
fn open(files: &Files, fresh: DownloadState, progress: &Progress) -> anyhow::Result<(DownloadState, std::fs::File)> {
    progress.set_total(fresh.size);
    if let Some(old) = state::load::<DownloadState>(&files.state)? {
        let partial_ok = std::fs::metadata(&files.partial).is_ok_and(|m| m.len() == fresh.size);
        if old == (DownloadState { done: old.done.clone(), ..fresh.clone() }) && partial_ok {
            let file = std::fs::OpenOptions::new().write(true).read(true).open(&files.partial)?;
            for &range in &old.done {
                progress.part(range + 1, range_len(&old, range), How::Resumed);
            }
            return Ok((old, file));
        }
        if (&old.endpoint, &old.bucket, &old.key) == (&fresh.endpoint, &fresh.bucket, &fresh.key)
            && (&old.etag, old.size) != (&fresh.etag, fresh.size)
        {
            eprintln!("tessera cp: the object changed since the interrupted download; starting over");
            progress.restart(fresh.size);
        }
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&files.partial)
        .with_context(|| format!("creating {}", files.partial.display()))?;
    file.set_len(fresh.size)?;
    state::save(&files.state, &serde_json::to_vec(&fresh)?)?;
    Ok((fresh, file))
}

fn range_len(state: &DownloadState, range: u64) -> u64 {
    state.part_size.min(state.size.saturating_sub(range * state.part_size))
}

fn discard(files: &Files) -> anyhow::Result<()> {
    state::remove(&files.state)?;
    state::remove(&files.partial)?;
    Ok(())
}

struct Job<'a> {
    ctx: &'a Ctx,
    bucket: &'a str,
    key: &'a str,
    files: &'a Files<'a>,
    file: Arc<std::fs::File>,
    /// Set when a GET found the object replaced.
    changed: AtomicBool,
}

impl Job<'_> {
    /// Fetches the missing ranges; the state as far as it got.
    async fn fetch(&self, state: DownloadState, progress: &Progress) -> anyhow::Result<DownloadState> {
        let todo: VecDeque<u64> = (0..ranges(&state)).filter(|r| !state.done.contains(r)).collect();
        let shared = tokio::sync::Mutex::new(state);
        let share = &shared;
        pool::run(self.ctx, todo, |range| async move { self.fetch_range(share, range, progress).await }).await?;
        Ok(shared.into_inner())
    }

    /// One range: GET, write, flush, record. `Ok(false)`: the object changed.
    async fn fetch_range(
        &self,
        shared: &tokio::sync::Mutex<DownloadState>,
        range: u64,
        progress: &Progress,
    ) -> anyhow::Result<bool> {
        let (etag, start, len) = {
            let state = shared.lock().await;
            (state.etag.clone(), range * state.part_size, range_len(&state, range))
        };
        let bytes = match ops::get_range(self.ctx, (self.bucket, self.key), &etag, start, len).await? {
            Got::Bytes(bytes) => bytes,
            Got::Changed => {
                self.changed.store(true, Ordering::SeqCst);
                return Ok(false);
            }
        };
        let file = self.file.clone();
        // Flushed before the state says it is there: a crash never records unwritten bytes.
        tokio::task::spawn_blocking(move || file.write_all_at(&bytes, start).and_then(|()| file.sync_data())).await??;
        let mut state = shared.lock().await;
        state.done.insert(range);
        let json = serde_json::to_vec(&*state)?;
        let path = self.files.state.clone();
        tokio::task::spawn_blocking(move || state::save(&path, &json)).await??;
        drop(state);
        progress.part(range + 1, len, How::Sent);
        Ok(true)
    }

    /// Checks the partial file, renames it into place, removes the state.
    async fn finish(&self, state: &DownloadState, progress: &Progress) -> anyhow::Result<Outcome> {
        let (file, files, expected) = (self.file.clone(), self.files, state.clone());
        let partial = files.partial.clone();
        let checked = tokio::task::spawn_blocking(move || verify(&file, &expected)).await?;
        if let Err(e) = checked {
            discard(files)?;
            return Err(e.context(format!("{} removed; the download starts over when run again", partial.display())));
        }
        std::fs::rename(&files.partial, files.target)
            .with_context(|| format!("renaming into {}", files.target.display()))?;
        let dir = files.target.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::File::open(dir)?.sync_all()?;
        state::remove(&files.state)?;
        progress.finish(state.size, &state.etag);
        Ok(Outcome::Done)
    }
}

/// The size, and for a single-part object (an ETag of 32 hex digits) the
/// MD5; then the file is made durable. A multipart ETag (`..-N`) is not an
/// MD5 of the content: only the size is checked.
fn verify(file: &std::fs::File, state: &DownloadState) -> anyhow::Result<()> {
    let len = file.metadata()?.len();
    anyhow::ensure!(len == state.size, "integrity: {len} bytes downloaded, the object has {}", state.size);
    if state.etag.len() == 32 && state.etag.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut hasher = Md5::new();
        let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = reader.read(&mut buf)?;
            let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else { break };
            hasher.update(chunk);
        }
        let md5 = hex::encode(hasher.finalize());
        anyhow::ensure!(md5 == state.etag, "integrity: the data's MD5 is {md5}, the object's ETag \"{}\"", state.etag);
    }
    file.sync_all()?;
    Ok(())
}
