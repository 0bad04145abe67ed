//! Background hashing: every blob file gets its SHA-256 indexed in the
//! unique-file table, also those whose client declared none (hashing large
//! bodies inline would cost the write path more than it may spend,
//! docs/architecture.md). It runs only while no body write has been
//! admitted for a while, one blob at a time.
//!
//! A blob whose content a live blob already holds is merged into it on
//! disk: its file is replaced by a hard link to the holder's file (linked
//! under `tmp/`, renamed over it, directory fsynced), so ids, references and
//! block checksums stay as they are and the bytes are stored once. Both
//! files are read and checked against their block checksums first, so a
//! damaged copy never replaces a good one. Unlinking is paused meanwhile
//! (`backup::UnlinkGate`): neither file can go between the check that both
//! are live and the rename. A crash at any step leaves either file, with
//! the same bytes; `tmp/` is emptied at start.

use std::fs::{self, File};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::content::{self, HeldContent};
use super::digest::{ChecksumAlgorithm, DigestSpec, Digests, Hashers};
use super::layout::{fsync_dir, BlobId};
use super::read;
use super::{now_ms, Store, StoreError, StoreResult};

/// Blobs looked up per read transaction.
const BATCH: usize = 256;
/// Bytes read per step; the step between checks that the server is idle.
const CHUNK: u64 = 4 * 1024 * 1024;
/// The longest wait after a pass that found nothing to hash, when nothing
/// was written since: a pass looks at every blob's rows, about a second
/// per million blobs.
const RESCAN: Duration = Duration::from_secs(300);

/// Starts the background hasher: it works once no body write was admitted
/// for `idle`.
pub fn spawn_content_hasher(store: Arc<Store>, idle: Duration) {
    spawn_hasher_while(store, idle, RESCAN, || true, None);
}

/// Over a shared database, how a hasher learns of bodies committed through
/// other gateways (`pg/chores.rs`): a mark taken before a pass, then asked
/// whether a body was committed after it. Answers are best effort: on an
/// error a mark is `None` and a question `false` (the rescan still comes).
pub(crate) struct Elsewhere {
    pub mark: Box<dyn Fn() -> Option<f64> + Send>,
    pub written_since: Box<dyn Fn(f64) -> bool + Send>,
}

/// How often a hasher waiting for writes asks [`Elsewhere`].
const ASK_ELSEWHERE: Duration = Duration::from_secs(2);
/// The shortest time between a pass and the next one woken by writes
/// elsewhere: a busy cluster's gateways report writes at each claim
/// renewal, and a pass reads a few rows per blob.
const ELSEWHERE_GAP: Duration = Duration::from_secs(20);
/// How often a waiting hasher renews the lease `may_run` stands for (30 s).
const KEEP_LEASE_EVERY: Duration = Duration::from_secs(10);

/// How long a hasher that may not run waits before asking again.
const WAIT_TO_RUN: Duration = Duration::from_secs(2);
/// How long after a failed pass (or blob) the hasher tries again.
const AFTER_FAILURE: Duration = Duration::from_secs(5);

/// Where a call of [`hash_some`] stopped.
enum Pass {
    /// After this blob: more to look at.
    After(BlobId),
    /// At the end; every blob looked at was hashed or skipped for good.
    Done,
    /// At the end, but hashing some blob failed: try again soon.
    DoneWithFailures,
}

/// [`spawn_content_hasher`] that hashes a blob only while `may_run` says
/// so (over a shared database: while this gateway holds the hashing
/// lease, `pg/chores.rs`). It is asked before each blob. After a pass
/// that found nothing more, the next starts at a write of this process,
/// at a body committed `elsewhere` since the pass began, or after `rescan`.
pub(crate) fn spawn_hasher_while(
    store: Arc<Store>,
    idle: Duration,
    rescan: Duration,
    may_run: impl Fn() -> bool + Send + 'static,
    elsewhere: Option<Elsewhere>,
) {
    let spawned = std::thread::Builder::new().name("content-hasher".into()).spawn(move || {
        let mut after = 0;
        let mut mark = None;
        loop {
            if !may_run() {
                std::thread::sleep(WAIT_TO_RUN);
                continue;
            }
            let pass_start = now_ms();
            if after == 0 {
                // A pass from the start: what is committed after this mark, it
                // may not see. Without a mark, any write ever made wakes it.
                mark = elsewhere.as_ref().map(|e| (e.mark)().unwrap_or(0.0));
            }
            let (next, pause) = match hash_some(&store, idle, after, &may_run) {
                Ok(Pass::After(last)) => (last, Duration::from_millis(10)),
                Ok(Pass::Done) => {
                    let woken = woken_early(&may_run, elsewhere.as_ref().zip(mark));
                    store.wait_for_writes_since(pass_start, idle, rescan, woken);
                    (0, Duration::ZERO)
                }
                Ok(Pass::DoneWithFailures) => (0, AFTER_FAILURE),
                Err(e) => {
                    tracing::warn!(error = %e.chain(), "background hashing failed; retried later");
                    (after, AFTER_FAILURE)
                }
            };
            after = next;
            std::thread::sleep(pause);
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start the background hasher");
    }
}

/// While a hasher waits after a pass: whether to start the next one
/// before a write of this process or the rescan. It keeps the lease that
/// `may_run` stands for (asked every [`KEEP_LEASE_EVERY`]; lost, the wait
/// ends and the loop waits to run again), and once [`ELSEWHERE_GAP`] has
/// passed, asks whether a body was committed `elsewhere` after the mark.
fn woken_early<'a>(may_run: &'a impl Fn() -> bool, elsewhere: Option<(&'a Elsewhere, f64)>) -> impl Fn() -> bool + 'a {
    let began = std::time::Instant::now();
    let lease_kept = std::cell::Cell::new(began);
    move || {
        if lease_kept.get().elapsed() >= KEEP_LEASE_EVERY {
            lease_kept.set(std::time::Instant::now());
            if !may_run() {
                return true;
            }
        }
        match elsewhere {
            Some((e, mark)) if began.elapsed() >= ELSEWHERE_GAP => (e.written_since)(mark),
            _ => false,
        }
    }
}

/// Hashes the next unindexed blobs after `after` while the server stays
/// idle (and `may_run` says so).
fn hash_some(store: &Store, idle: Duration, after: BlobId, may_run: &impl Fn() -> bool) -> StoreResult<Pass> {
    let pending = store.unindexed_blobs(after)?;
    let mut failed = false;
    for id in &pending {
        while !store.idle_for(idle) {
            std::thread::sleep(idle.max(Duration::from_millis(50)));
        }
        if !may_run() {
            // Another gateway hashes now; this one resumes here later.
            return Ok(Pass::After(id.saturating_sub(1)));
        }
        if let Err(e) = store.index_blob(*id, || store.idle_for(idle)) {
            tracing::warn!(blob = format!("{id:032x}"), error = %e.chain(), "hashing a blob failed");
            failed = true;
        }
    }
    Ok(match (pending.last(), failed) {
        (Some(last), _) if pending.len() == BATCH => Pass::After(*last),
        (_, false) => Pass::Done,
        (_, true) => Pass::DoneWithFailures,
    })
}

/// What indexing one blob came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indexed {
    /// Freed, indexed already, or interrupted by a write: nothing done.
    Skipped,
    /// Its content is now in the unique-file table.
    Stored,
    /// Its file is now a hard link to the live blob holding the same content.
    Merged,
}

impl Store {
    /// Marks a body write: background hashing waits for the server to be idle.
    pub(super) fn note_write(&self) {
        self.last_write_ms.store(now_ms(), Ordering::Relaxed);
        self.note_change();
    }

    /// Marks a change that may leave content to hash (a write admitted or
    /// committed, a freed blob whose content a merged copy still holds).
    pub(super) fn note_change(&self) {
        self.last_change_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// When a change was last marked (ms; gateways report it, `pg/gateway.rs`).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code, reason = "gateways report it"))]
    pub(crate) fn last_change_ms(&self) -> i64 {
        self.last_change_ms.load(Ordering::Relaxed)
    }

    /// Returns once something changed after `since` (ms), here or (asked
    /// every [`ASK_ELSEWHERE`]) `elsewhere`, and the server has been idle
    /// for `idle` since; or after `rescan`.
    fn wait_for_writes_since(&self, since: i64, idle: Duration, rescan: Duration, elsewhere: impl Fn() -> bool) {
        let step = idle.clamp(Duration::from_millis(50), Duration::from_secs(1));
        let started = std::time::Instant::now();
        let (mut asked, mut changed) = (started, false);
        while started.elapsed() < rescan {
            std::thread::sleep(step);
            changed = changed || self.last_change_ms.load(Ordering::Relaxed) >= since;
            if !changed && asked.elapsed() >= ASK_ELSEWHERE {
                asked = std::time::Instant::now();
                changed = elsewhere();
            }
            if changed && self.idle_for(idle) {
                return;
            }
        }
    }

    fn idle_for(&self, idle: Duration) -> bool {
        let since = now_ms().saturating_sub(self.last_write_ms.load(Ordering::Relaxed));
        u128::try_from(since).unwrap_or(0) >= idle.as_millis()
    }

    /// Up to [`BATCH`] live blob files after `after` whose content is not
    /// indexed (`content::needs_hashing`).
    fn unindexed_blobs(&self, after: BlobId) -> StoreResult<Vec<BlobId>> {
        self.read(|txn| {
            let (mut out, mut cursor) = (Vec::new(), after);
            loop {
                let files = txn.blob_files_after(cursor, 4 * BATCH)?;
                for id in &files {
                    if content::needs_hashing(txn, *id)? {
                        out.push(*id);
                        if out.len() == BATCH {
                            return Ok(out);
                        }
                    }
                }
                match files.last() {
                    Some(last) if files.len() == 4 * BATCH => cursor = *last,
                    _ => return Ok(out),
                }
            }
        })
    }

    /// Hashes blob `id` and indexes its content, or merges it into the live
    /// blob holding the same content. `go_on` is asked between chunks read:
    /// `false` stops (the blob is tried again in a later pass). Blocking.
    pub fn index_blob(&self, id: BlobId, go_on: impl Fn() -> bool) -> StoreResult<Indexed> {
        let Some((digests, size)) = self.hash_file(id, &go_on)? else { return Ok(Indexed::Skipped) };
        let Some(sha256) = digests.sha256 else { return Ok(Indexed::Skipped) };
        let key = content::content_key(&sha256, size);
        let held = HeldContent { id, inline: false, md5: Some(digests.md5), checksum: digests.checksum };
        let holder = self.write(move |txn| {
            let pending = txn.blob_refs(id)? > 0 && content::needs_hashing(txn, id)?;
            if !pending {
                return Ok((Err(Indexed::Skipped), Vec::new()));
            }
            match content::find_live(txn, &key)? {
                Some(other) if other.id != id => Ok((Ok(other.id), Vec::new())),
                _ => {
                    content::index(txn, &key, &held)?;
                    Ok((Err(Indexed::Stored), Vec::new()))
                }
            }
        })?;
        match holder {
            Err(indexed) => Ok(indexed),
            Ok(holder) => self.merge(id, holder, &key, &go_on),
        }
    }

    /// Replaces blob `id`'s file by a hard link to `holder`'s (same
    /// content), then records the merge.
    fn merge(&self, id: BlobId, holder: BlobId, key: &[u8; 40], go_on: &impl Fn() -> bool) -> StoreResult<Indexed> {
        // Over a shared database a freed file outlives its free by the
        // unlink grace (`pg/chores.rs`), far longer than this takes.
        let _paused = self.pause_unlinking();
        if !self.read(|txn| Ok(txn.blob_refs(id)? > 0 && txn.blob_refs(holder)? > 0))? {
            return Ok(Indexed::Skipped);
        }
        // The holder's file must be intact before it replaces ours.
        if self.hash_file(holder, go_on)?.is_none() {
            return Ok(Indexed::Skipped);
        }
        let tmp = self.layout.tmp_dir().join(format!("merge-{id:032x}"));
        let _ = fs::remove_file(&tmp);
        fs::hard_link(self.layout.blob_path(holder), &tmp)?;
        fs::rename(&tmp, self.layout.blob_path(id))?;
        fsync_dir(&self.layout.blob_dir(id))?;
        let key = *key;
        self.write(move |txn| {
            if txn.blob_refs(id)? > 0 {
                content::record_merge(txn, id, &key, holder)?;
            }
            Ok(((), Vec::new()))
        })?;
        Ok(Indexed::Merged)
    }

    /// Reads a live blob file whole, checking it against its block
    /// checksums, and hashes it: `None` if it was freed, or `go_on` said stop.
    fn hash_file(&self, id: BlobId, go_on: &impl Fn() -> bool) -> StoreResult<Option<(Digests, u64)>> {
        let path = self.layout.blob_path(id);
        let Ok(file) = File::open(&path) else { return Ok(None) };
        let size = file.metadata()?.len();
        let check = match self.with_blob_source(|source| source.check(id, 0..size, size))? {
            Ok(check) => check,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut hashers = Hashers::new(DigestSpec { sha256: true, checksum: Some(ChecksumAlgorithm::Crc64Nvme) });
        let mut buf = Vec::with_capacity(CHUNK as usize);
        let mut at = 0;
        while at < size {
            if !go_on() {
                return Ok(None);
            }
            let n = CHUNK.min(size - at);
            buf.clear();
            read::read_checked(&file, id, check.as_ref(), at..at + n, &mut buf).map_err(StoreError::from)?;
            hashers.update(&buf);
            at += n;
        }
        Ok(Some((hashers.finish(), size)))
    }
}
