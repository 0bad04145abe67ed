//! Downloads: ranged GETs in parallel into `.NAME.tessera-partial` beside
//! the target, each range written before the resume file
//! `.NAME.tessera-download` records it (with its digest); checked and
//! renamed into place at the end.
//!
//! The check: an object with a composite SHA-256 checksum (as `tessera cp`
//! and the SDKs upload them) is fetched in ranges that are its parts (their
//! size from `HEAD ?partNumber=1`, up to [`MAX_ALIGNED_RANGE`]), each
//! range's SHA-256 kept, and the SHA-256 of those must be the object's
//! checksum. Otherwise the ETag: a single-part object's is the MD5 of its
//! bytes; a multipart object's is the MD5 of its parts' MD5s, `-`, their
//! number, so the ranges' MD5s give it without reading the file again.
//! Parts of unequal sizes are found with one HEAD per part and the file
//! re-read; a server that does not describe parts leaves only the size
//! checked, and `cp` says so.
//!
//! Every GET carries `If-Range` with the ETag the download started with: a
//! replaced object answers with the whole new object instead of the range
//! (RFC 9110 section 13.1.5), and the download starts over. A resumed
//! download also starts over when HeadObject shows another ETag or size.
//! So the file is never a mix of two objects.

use std::collections::{BTreeMap, VecDeque};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use base64::Engine;
use bytes::Bytes;
use md5::{Digest, Md5};

use super::ops::{self, Got};
use super::pool;
use super::progress::{How, Progress};
use super::state::{self, DownloadState, RangeDigest};
use super::{Ctx, Outcome};
use crate::store::md5_lanes::LaneMd5;

/// Starting over more often than this means the object keeps changing.
const MAX_RESTARTS: u64 = 3;
/// The largest object part fetched as one range (memory: this times
/// `--concurrency`); larger parts are fetched in `--part-size` ranges.
const MAX_ALIGNED_RANGE: u64 = 64 << 20;

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
        let head = ops::head(ctx, bucket, key).await.with_context(|| format!("s3://{bucket}/{key}"))?;
        let part_size = range_size(ctx, (bucket, key), &head.etag).await;
        let mut fresh = DownloadState {
            format: state::FORMAT,
            endpoint: ctx.endpoint.clone(),
            bucket: bucket.to_string(),
            key: key.to_string(),
            etag: head.etag,
            size: head.size,
            part_size,
            sha256: head.sha256,
            digest: RangeDigest::Md5,
            done: BTreeMap::new(),
        };
        fresh.digest = range_digest(&fresh);
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

/// The object's part size when it is a multipart object of parts no
/// larger than [`MAX_ALIGNED_RANGE`], else `--part-size`.
async fn range_size(ctx: &Ctx, at: (&str, &str), etag: &str) -> u64 {
    if parts_in_etag(etag).is_none() {
        return ctx.part_size;
    }
    match ops::head_part(ctx, at, etag, 1).await {
        Some((len, _)) if (1..=MAX_ALIGNED_RANGE).contains(&len) => len,
        _ => ctx.part_size,
    }
}

/// SHA-256 when the ranges' SHA-256s give the object's checksum: one per
/// part of a composite (if the parts are of equal size, [`Job::check`]
/// finds out), or the one range of a whole-object checksum. SHA-256 runs
/// twice as fast as MD5 on CPUs with SHA extensions, and the check is
/// stronger; MD5 otherwise, for the ETag.
fn range_digest(state: &DownloadState) -> RangeDigest {
    let Some(sum) = &state.sha256 else { return RangeDigest::Md5 };
    let parts = match sum.split_once('-') {
        Some((_, parts)) => parts.parse().ok(),
        None => Some(1),
    };
    match parts == Some(ranges(state)) {
        true => RangeDigest::Sha256,
        false => RangeDigest::Md5,
    }
}

/// `N` of a multipart ETag `<32 hex>-N`.
fn parts_in_etag(etag: &str) -> Option<u32> {
    let (md5, parts) = etag.split_once('-')?;
    is_md5(md5).then_some(())?;
    parts.parse().ok()
}

fn is_md5(etag: &str) -> bool {
    etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit())
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
            let old = still_there(&file, old)?;
            for &range in old.done.keys() {
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
    state::save(&files.state, &serde_json::to_vec(&fresh)?, state::Flush::No)?;
    Ok((fresh, file))
}

/// The state without the ranges whose bytes in the partial file no longer
/// have the digest recorded for them (the file was changed while paused):
/// those are fetched again. The final check trusts the recorded digests.
fn still_there(file: &std::fs::File, mut state: DownloadState) -> anyhow::Result<DownloadState> {
    let mut buf = Vec::new();
    let mut changed = Vec::new();
    for (&range, digest) in &state.done {
        buf.resize(usize::try_from(range_len(&state, range))?, 0);
        file.read_exact_at(&mut buf, range * state.part_size)?;
        if state.digest.hex_of(&buf) != *digest {
            changed.push(range);
        }
    }
    if !changed.is_empty() {
        eprintln!("tessera cp: {} finished ranges changed on disk while paused; fetching them again", changed.len());
    }
    for range in changed {
        state.done.remove(&range);
    }
    Ok(state)
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
        let todo: VecDeque<u64> = (0..ranges(&state)).filter(|r| !state.done.contains_key(r)).collect();
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
        let (etag, start, len, digest) = {
            let state = shared.lock().await;
            (state.etag.clone(), range * state.part_size, range_len(&state, range), state.digest)
        };
        let mut writer = RangeWriter::new(self.file.clone(), start, digest);
        if let Got::Changed =
            ops::get_range(self.ctx, (self.bucket, self.key), &etag, (start, len), &mut writer).await?
        {
            self.changed.store(true, Ordering::SeqCst);
            return Ok(false);
        }
        let hex = writer.finish().await?;
        if self.ctx.fsync {
            // Writeback starts now, so the one fsync at the end has little
            // left to wait for.
            let file = self.file.clone();
            tokio::task::spawn_blocking(move || crate::store::blob::start_writeback(&file, start, len)).await?;
        }
        let mut state = shared.lock().await;
        state.done.insert(range, hex);
        let json = serde_json::to_vec(&*state)?;
        let path = self.files.state.clone();
        tokio::task::spawn_blocking(move || state::save(&path, &json, state::Flush::No)).await??;
        drop(state);
        progress.part(range + 1, len, How::Sent);
        Ok(true)
    }

    /// Checks the partial file, renames it into place, removes the state.
    async fn finish(&self, state: &DownloadState, progress: &Progress) -> anyhow::Result<Outcome> {
        let partial = &self.files.partial;
        let verified = match self.check(state).await {
            Ok(Checked::Checksum) => "sha256",
            Ok(Checked::Etag) => "etag",
            Ok(Checked::SizeOnly) => {
                eprintln!("tessera cp: the server does not describe the object's parts: only its size was checked");
                "size"
            }
            Err(e) => {
                discard(self.files)?;
                let again = format!("{} removed; the download starts over when run again", partial.display());
                return Err(e.context(again));
            }
        };
        if self.ctx.fsync {
            let file = self.file.clone();
            tokio::task::spawn_blocking(move || file.sync_all()).await??;
        }
        std::fs::rename(partial, self.files.target)
            .with_context(|| format!("renaming into {}", self.files.target.display()))?;
        if self.ctx.fsync {
            let dir = self.files.target.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            std::fs::File::open(dir)?.sync_all()?;
        }
        state::remove(&self.files.state)?;
        progress.finish(state.size, &state.etag, verified);
        Ok(Outcome::Done)
    }

    /// The size, then the content against the SHA-256 checksum or the ETag
    /// (see the module doc).
    async fn check(&self, state: &DownloadState) -> anyhow::Result<Checked> {
        let len = self.file.metadata()?.len();
        anyhow::ensure!(len == state.size, "integrity: {len} bytes downloaded, the object has {}", state.size);
        if state.digest == RangeDigest::Sha256 && state.sha256 == Some(checksum_of_ranges(state)?) {
            return Ok(Checked::Checksum);
        }
        // Without SHA-256 ranges, or with parts of unequal sizes (or bad
        // bytes): the ETag, from the ranges' MD5s or the file read again.
        let from_ranges = state.digest == RangeDigest::Md5;
        let etag = state.etag.as_str();
        let md5s = || state.done.values().map(|m| hex_md5(m)).collect::<anyhow::Result<Vec<_>>>();
        let got = if is_md5(etag) {
            match (from_ranges, state.done.len()) {
                (true, 1) => md5s()?.first().map(hex::encode).unwrap_or_default(),
                _ => hex::encode(self.md5s_of(vec![state.size]).await?.concat()),
            }
        } else if let Some(parts) = parts_in_etag(etag) {
            let aligned = from_ranges && u64::from(parts) == ranges(state);
            match aligned.then(|| md5s().map(|m| ops::multipart_etag(&m))).transpose()? {
                Some(got) if got == etag => got,
                _ => match self.part_lens(state, parts).await {
                    Some(lens) => ops::multipart_etag(&self.md5s_of(lens).await?),
                    None => return Ok(Checked::SizeOnly),
                },
            }
        } else {
            return Ok(Checked::SizeOnly);
        };
        anyhow::ensure!(got == etag, "integrity: the data gives the ETag \"{got}\", the object's is \"{etag}\"");
        Ok(Checked::Etag)
    }

    /// Every part's length, one HEAD each; `None` if the server does not
    /// tell or the lengths do not add up to the object's size.
    async fn part_lens(&self, state: &DownloadState, parts: u32) -> Option<Vec<u64>> {
        let mut lens = Vec::with_capacity(usize::try_from(parts).ok()?);
        for number in 1..=parts {
            let (len, count) = ops::head_part(self.ctx, (self.bucket, self.key), &state.etag, number).await?;
            (count == parts).then_some(())?;
            lens.push(len);
        }
        (lens.iter().sum::<u64>() == state.size).then_some(lens)
    }

    /// The MD5s of consecutive pieces of the file, of lengths `lens`.
    async fn md5s_of(&self, lens: Vec<u64>) -> anyhow::Result<Vec<[u8; 16]>> {
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; 1 << 20];
            let mut offset = 0u64;
            lens.iter()
                .map(|&len| {
                    let mut hasher = Md5::new();
                    let mut left = len;
                    while left > 0 {
                        let n = usize::try_from(left.min(buf.len() as u64))?;
                        let chunk = buf.get_mut(..n).unwrap_or_default();
                        file.read_exact_at(chunk, offset)?;
                        hasher.update(&*chunk);
                        (offset, left) = (offset + n as u64, left - n as u64);
                    }
                    Ok(hasher.finalize().into())
                })
                .collect()
        })
        .await?
    }
}

/// How far [`Job::check`] could check a download.
enum Checked {
    Checksum,
    Etag,
    SizeOnly,
}

/// Bytes gathered before they go to the blocking pool to be written.
const BATCH: usize = 1 << 20;

/// One range's frames written to the partial file and hashed, in batches
/// of about [`BATCH`] on the blocking pool, one batch in flight while the
/// next arrives: the range is never held whole (nor copied into one
/// buffer), and the hashing of the ranges in flight spreads over the cores
/// while the transfer task only moves frames. Not flushed: a resumed
/// download checks every range it finds recorded against its digest
/// (`still_there`), so a range lost in a crash is fetched again.
struct RangeWriter {
    file: Arc<std::fs::File>,
    digest: RangeDigest,
    /// Where the batch goes in the file.
    at: u64,
    batch: Vec<Bytes>,
    batch_len: usize,
    /// `None` while a batch holds it.
    hasher: Option<RangeHasher>,
    in_flight: Option<tokio::task::JoinHandle<std::io::Result<RangeHasher>>>,
    start: u64,
}

impl RangeWriter {
    fn new(file: Arc<std::fs::File>, start: u64, digest: RangeDigest) -> Self {
        let hasher = Some(RangeHasher::new(digest));
        RangeWriter { file, digest, at: start, batch: Vec::new(), batch_len: 0, hasher, in_flight: None, start }
    }

    /// Waits for the batch in flight; the hasher is back after it.
    async fn settle(&mut self) -> std::io::Result<()> {
        if let Some(job) = self.in_flight.take() {
            self.hasher = Some(job.await.map_err(std::io::Error::other)??);
        }
        Ok(())
    }

    /// Sends the gathered frames off to be written and hashed.
    async fn flush(&mut self) -> std::io::Result<()> {
        self.settle().await?;
        if self.batch.is_empty() {
            return Ok(());
        }
        let Some(mut hasher) = self.hasher.take() else { return Ok(()) };
        let (file, at, batch) = (self.file.clone(), self.at, std::mem::take(&mut self.batch));
        self.at += std::mem::take(&mut self.batch_len) as u64;
        self.in_flight = Some(tokio::task::spawn_blocking(move || {
            let mut offset = at;
            for frame in &batch {
                hasher.update(frame.clone());
                file.write_all_at(frame, offset)?;
                offset += frame.len() as u64;
            }
            Ok(hasher)
        }));
        Ok(())
    }

    /// The hex digest of the whole range, once every byte is written.
    async fn finish(mut self) -> std::io::Result<String> {
        self.flush().await?;
        self.settle().await?;
        Ok(self.hasher.map(RangeHasher::finish).unwrap_or_default())
    }
}

impl ops::RangeSink for RangeWriter {
    async fn restart(&mut self) -> std::io::Result<()> {
        self.settle().await?;
        (self.at, self.batch, self.batch_len) = (self.start, Vec::new(), 0);
        self.hasher = Some(RangeHasher::new(self.digest));
        Ok(())
    }

    async fn take(&mut self, frame: Bytes) -> std::io::Result<()> {
        self.batch_len += frame.len();
        self.batch.push(frame);
        match self.batch_len >= BATCH {
            true => self.flush().await,
            false => Ok(()),
        }
    }
}

/// A range's running digest. MD5 goes to the server's shared engine, which
/// hashes the ranges in flight side by side in SIMD lanes
/// (`store/md5_lanes.rs`) while the batch is written.
enum RangeHasher {
    Md5(LaneMd5),
    Sha256(sha2::Sha256),
}

impl RangeHasher {
    fn new(digest: RangeDigest) -> Self {
        match digest {
            RangeDigest::Md5 => RangeHasher::Md5(LaneMd5::default()),
            RangeDigest::Sha256 => RangeHasher::Sha256(sha2::Sha256::default()),
        }
    }

    fn update(&mut self, frame: Bytes) {
        match self {
            RangeHasher::Md5(md5) => md5.push(frame),
            RangeHasher::Sha256(sha) => sha2::Digest::update(sha, &frame),
        }
    }

    fn finish(self) -> String {
        match self {
            RangeHasher::Md5(md5) => hex::encode(md5.finalize()),
            RangeHasher::Sha256(sha) => hex::encode(sha2::Digest::finalize(sha)),
        }
    }
}

/// The object checksum the ranges' SHA-256s give: composite (`-N`), or the
/// one range's own when the object's checksum is whole-object.
fn checksum_of_ranges(state: &DownloadState) -> anyhow::Result<String> {
    let shas = state.done.values().map(|hex| {
        let mut sha = [0u8; 32];
        hex::decode_to_slice(hex, &mut sha).context("a range SHA-256 in the resume file")?;
        Ok(sha)
    });
    let shas = shas.collect::<anyhow::Result<Vec<[u8; 32]>>>()?;
    let composite = state.sha256.as_ref().is_some_and(|sum| sum.contains('-'));
    Ok(match (composite, shas.as_slice()) {
        (false, [one]) => base64::engine::general_purpose::STANDARD.encode(one),
        _ => ops::composite_sha256(&shas),
    })
}

fn hex_md5(text: &str) -> anyhow::Result<[u8; 16]> {
    let mut md5 = [0u8; 16];
    hex::decode_to_slice(text, &mut md5).context("a range MD5 in the resume file")?;
    Ok(md5)
}
