//! Scrubbing: reading every blob (files and inline bodies) and checking it
//! against the block checksums stored when it was written, to find
//! corruption before a client asks for the bytes. `tessera scrub` runs one
//! pass over a data folder (a stopped server's, or a shared one through
//! its metadata database); a running server runs slow, rate-limited passes
//! in the background ([`spawn_scrubber`]; over a shared database, one
//! gateway at a time under a lease, `pg/scrubbing.rs`).
//!
//! The blobs are found through what references them, bucket by bucket:
//! current objects, noncurrent versions, then the parts of uploads in
//! progress, so a corrupt blob is reported with its users. The walk reads
//! through [`MetaRead`], the same on every backend, a batch per snapshot,
//! and never holds a snapshot while reading a file: a pass may last hours
//! on a running server, and a long-lived read transaction would keep redb
//! from reusing the pages written meanwhile. Where the walk is between
//! batches is a [`Position`], which a pass interrupted on one gateway
//! resumes from on another.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redb::Database;
use serde::{Deserialize, Serialize};

use super::layout::{packed_position, BlobId, Layout};
use super::meta::{MetaRead, UploadStart};
use super::read::{self, checked_inline, BlobSource, BlockCheck, Corruption, Damage, Snapshot};
use super::redb_meta::txn::RedbRead;
use super::schema::{decode, object_key, BlobSpan, ObjectRecord};
use super::versions::VersionId;
use super::{Store, StoreError, StoreResult};

/// Rows read per snapshot (few in tests, so that they cross batches).
const BATCH: usize = if cfg!(test) { 4 } else { 256 };
/// Uploads read per snapshot (the parts of each in batches of their own).
const UPLOADS: usize = if cfg!(test) { 3 } else { 16 };
/// Bytes read from a blob file at a time.
const CHUNK: u64 = 512 * 1024;

/// What one pass found.
#[derive(Debug, Default)]
pub struct ScrubReport {
    /// Distinct blobs checked, and how many were files and inline bodies.
    pub blobs: u64,
    pub files: u64,
    pub inline: u64,
    pub bytes: u64,
    /// Blobs written before block checksums existed: read (a short or
    /// unreadable file is still found) but their bytes cannot be checked.
    pub unverified: u64,
    pub corrupt: Vec<CorruptBlob>,
}

/// A corrupt blob and what uses it.
#[derive(Debug)]
pub struct CorruptBlob {
    pub found: Corruption,
    pub inline: bool,
    /// `object bucket/key` or `part N of upload ID`, in walk order.
    pub users: Vec<String>,
}

impl fmt::Display for ScrubReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "checked {} blobs ({} files, {} inline), {} bytes",
            self.blobs, self.files, self.inline, self.bytes
        )?;
        writeln!(f, "unverified: {} (written before block checksums: read, not checked)", self.unverified)?;
        writeln!(f, "corrupt: {}", self.corrupt.len())?;
        for bad in &self.corrupt {
            let Corruption { blob, offset, damage } = bad.found;
            let kind = if bad.inline { "inline" } else { "file" };
            writeln!(f, "  blob {blob:032x} ({kind}) at offset {offset}: {damage}; used by {}", bad.users.join(", "))?;
        }
        Ok(())
    }
}

/// What a pass reads the metadata through, a snapshot per call: a store
/// (either backend, also one opened for `tessera scrub --meta`) or a
/// stopped server's redb file.
pub(crate) trait ScrubSource {
    /// Runs `f` on one snapshot of the metadata.
    fn read<T>(&self, f: impl Fn(&dyn MetaRead) -> StoreResult<T>) -> StoreResult<T>;
    /// Runs `f` on one snapshot's view of blobs (small bodies, block
    /// checksums); the outer error is the metadata's, the inner one `f`'s.
    fn blobs<T>(&self, f: impl Fn(&dyn BlobSource) -> io::Result<T>) -> StoreResult<io::Result<T>>;
}

impl ScrubSource for Store {
    fn read<T>(&self, f: impl Fn(&dyn MetaRead) -> StoreResult<T>) -> StoreResult<T> {
        Store::read(self, f)
    }

    fn blobs<T>(&self, f: impl Fn(&dyn BlobSource) -> io::Result<T>) -> StoreResult<io::Result<T>> {
        self.with_blob_source(f)
    }
}

impl ScrubSource for Database {
    fn read<T>(&self, f: impl Fn(&dyn MetaRead) -> StoreResult<T>) -> StoreResult<T> {
        f(&RedbRead(&self.begin_read()?))
    }

    fn blobs<T>(&self, f: impl Fn(&dyn BlobSource) -> io::Result<T>) -> StoreResult<io::Result<T>> {
        Ok(f(&Snapshot(self.begin_read()?)))
    }
}

/// One pass over the data folder of a stopped server. Fails if a server
/// has the database open (redb locks the file).
pub fn scrub_folder(root: &Path) -> StoreResult<ScrubReport> {
    let layout = Layout::existing(root);
    if !layout.db_path().is_file() {
        return Err(StoreError::internal(format!("{} is not a data folder (no meta.redb)", root.display())));
    }
    let db = Database::open(layout.db_path()).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => {
            StoreError::internal("the database is in use: stop the server first")
        }
        e => e.into(),
    })?;
    scrub_pass(&db, &layout, None)
}

/// One whole pass over the blobs `source` names, in the folder of `layout`,
/// at most `rate` bytes per second.
pub(crate) fn scrub_pass(source: &impl ScrubSource, layout: &Layout, rate: Option<u64>) -> StoreResult<ScrubReport> {
    let mut scrubber = Scrubber::new(source, layout, rate, Box::new(|| true));
    let mut at = Position::start();
    while let Stepped::Next(next) = scrubber.step(&at)? {
        at = next;
    }
    Ok(scrubber.into_report())
}

/// Runs a scrub pass every `interval` (the first one `interval` or ten
/// minutes after start, whichever is sooner), reading at most `rate` bytes
/// per second, on a thread of its own. Corruption is logged at error level.
pub fn spawn_scrubber(store: Arc<Store>, interval: Duration, rate: u64) {
    let spawned = std::thread::Builder::new().name("scrub".into()).spawn(move || {
        std::thread::sleep(first_pass_after(interval));
        loop {
            match scrub_pass(&*store, &store.layout, Some(rate)) {
                Ok(report) => log_pass(&report),
                Err(e) => tracing::warn!(error = %e.chain(), "scrub pass failed"),
            }
            std::thread::sleep(interval);
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start the background scrub");
    }
}

/// When a server's first background pass starts: a short interval is a
/// test's, a long one should not leave a new server unscrubbed for days.
pub(crate) fn first_pass_after(interval: Duration) -> Duration {
    interval.min(Duration::from_secs(600))
}

/// Logs each corrupt blob at error level, then what the pass read.
pub(crate) fn log_pass(report: &ScrubReport) {
    for bad in &report.corrupt {
        tracing::error!(users = %bad.users.join(", "), "scrub: {}", bad.found);
    }
    tracing::info!(
        blobs = report.blobs,
        bytes = report.bytes,
        unverified = report.unverified,
        corrupt = report.corrupt.len(),
        "scrub pass done"
    );
}

/// Where a pass is, between two batches. The walk goes through buckets in
/// name (byte) order, and in each through its current objects, its
/// noncurrent versions, then its uploads' parts. A pass over a shared
/// database keeps it there (`pg/scrubbing.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Position {
    bucket: String,
    step: Step,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Step {
    /// The current objects after this key (`None`: from the first).
    Objects(Option<Vec<u8>>),
    /// The noncurrent versions of keys from `key` on, of `key` itself from
    /// inverted sequence number `from` on.
    Versions { key: Vec<u8>, from: u64 },
    /// The uploads after this one (key, upload id); `None`: from the first.
    Uploads(Option<(Vec<u8>, String)>),
    /// Done with the bucket: the first bucket after it is next.
    Done,
}

impl Position {
    /// Before the first bucket (names are never empty).
    pub(crate) fn start() -> Position {
        Position { bucket: String::new(), step: Step::Done }
    }
}

/// Where [`Scrubber::step`] left the pass.
pub(crate) enum Stepped {
    /// At a batch boundary: the next batch starts here.
    Next(Position),
    /// The pass is over.
    End,
    /// Told to stop mid-batch: the batch is to be done again.
    Interrupted,
}

/// A pass, a batch ([`Scrubber::step`]) at a time.
pub(crate) struct Scrubber<'a, S: ScrubSource> {
    source: &'a S,
    layout: &'a Layout,
    pace: Pace,
    report: ScrubReport,
    /// Verdicts of blobs with more than one user (copies), so each is read
    /// once: `Some(i)` is `report.corrupt[i]`.
    shared: HashMap<BlobId, Option<usize>>,
    /// Asked before each blob and each chunk of a file: false stops the pass.
    go_on: Box<dyn FnMut() -> bool + 'a>,
    interrupted: bool,
    /// The bucket names, read once per scrubber (a bucket made later waits
    /// for the next pass): not again at each bucket.
    buckets: Option<Vec<String>>,
}

impl<'a, S: ScrubSource> Scrubber<'a, S> {
    pub(crate) fn new(
        source: &'a S,
        layout: &'a Layout,
        rate: Option<u64>,
        go_on: Box<dyn FnMut() -> bool + 'a>,
    ) -> Scrubber<'a, S> {
        let pace = Pace { rate, started: Instant::now(), bytes: 0 };
        let report = ScrubReport::default();
        let shared = HashMap::new();
        Scrubber { source, layout, pace, report, shared, go_on, interrupted: false, buckets: None }
    }

    /// What the batches so far found.
    pub(crate) fn into_report(self) -> ScrubReport {
        self.report
    }

    /// Checks the blobs of one batch of rows from `at` on.
    pub(crate) fn step(&mut self, at: &Position) -> StoreResult<Stepped> {
        let bucket = at.bucket.as_str();
        let step = match &at.step {
            Step::Done => {
                let next = self.next_bucket(bucket)?;
                return Ok(
                    next.map_or(Stepped::End, |bucket| Stepped::Next(Position { bucket, step: Step::Objects(None) }))
                );
            }
            Step::Objects(after) => self.objects(bucket, after.as_deref())?,
            Step::Versions { key, from } => self.versions(bucket, key, *from)?,
            Step::Uploads(after) => self.uploads(bucket, after.as_ref())?,
        };
        Ok(match self.interrupted {
            true => Stepped::Interrupted,
            false => Stepped::Next(Position { bucket: bucket.to_string(), step }),
        })
    }

    fn next_bucket(&mut self, after: &str) -> StoreResult<Option<String>> {
        if self.buckets.is_none() {
            let buckets = self.source.read(|meta| meta.buckets())?;
            self.buckets = Some(buckets.into_iter().map(|(name, _)| name).collect());
        }
        Ok(self.buckets.iter().flatten().find(|name| name.as_str() > after).cloned())
    }

    /// A batch of current objects after `after`.
    fn objects(&mut self, bucket: &str, after: Option<&[u8]>) -> StoreResult<Step> {
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let rows = self.source.read(|meta| {
            let mut rows = Vec::new();
            meta.scan_objects(bucket, start, None, BATCH, &mut |key, value| {
                rows.push((key.to_vec(), decode::<ObjectRecord>(value)?));
                Ok(rows.len() < BATCH)
            })?;
            Ok(rows)
        })?;
        for (key, record) in &rows {
            self.check_spans(&record.blobs, &format!("object {bucket}/{}", String::from_utf8_lossy(key)))?;
        }
        Ok(match rows.last() {
            Some((last, _)) if rows.len() == BATCH => Step::Objects(Some(last.clone())),
            _ => Step::Versions { key: Vec::new(), from: 0 },
        })
    }

    /// A batch of noncurrent versions, from version `from` of `key` on.
    fn versions(&mut self, bucket: &str, key: &[u8], from: u64) -> StoreResult<Step> {
        let (rows, next) = self.source.read(|meta| {
            let mut rows: Vec<(Vec<u8>, ObjectRecord)> = Vec::new();
            let (mut key, mut from) = (key.to_vec(), from);
            while let Some(found) = meta.next_versioned_key(bucket, &key)? {
                if found != key {
                    from = 0;
                }
                let mut last = None;
                meta.scan_versions(&object_key(bucket, &found), from, &mut |inverted_seq, value| {
                    rows.push((found.clone(), decode(value)?));
                    last = Some(inverted_seq);
                    Ok(rows.len() < BATCH)
                })?;
                if rows.len() == BATCH {
                    let next = match last.and_then(|seq| seq.checked_add(1)) {
                        Some(from) => Step::Versions { key: found, from },
                        None => Step::Versions { key: key_after(&found), from: 0 },
                    };
                    return Ok((rows, next));
                }
                (key, from) = (key_after(&found), 0);
            }
            Ok((rows, Step::Uploads(None)))
        })?;
        for (key, record) in &rows {
            let user =
                format!("object {bucket}/{} version {}", String::from_utf8_lossy(key), VersionId::of(&record.version));
            self.check_spans(&record.blobs, &user)?;
        }
        Ok(next)
    }

    /// A batch of uploads after `after`, with all their parts.
    fn uploads(&mut self, bucket: &str, after: Option<&(Vec<u8>, String)>) -> StoreResult<Step> {
        let start = match after {
            Some((key, id)) => UploadStart::AfterUpload(key, id),
            None => UploadStart::AtKey(b""),
        };
        let uploads = self.source.read(|meta| {
            let mut found = Vec::new();
            meta.scan_uploads(bucket, start, UPLOADS, &mut |key, id, _| {
                found.push((key.to_vec(), id.to_string()));
                Ok(found.len() < UPLOADS)
            })?;
            Ok(found)
        })?;
        for (_, id) in &uploads {
            self.upload_parts(id)?;
        }
        Ok(match uploads.last() {
            Some(last) if uploads.len() == UPLOADS => Step::Uploads(Some(last.clone())),
            _ => Step::Done,
        })
    }

    fn upload_parts(&mut self, upload: &str) -> StoreResult<()> {
        let mut after = 0;
        loop {
            let parts = self.source.read(|meta| meta.parts_after(upload, after, BATCH))?;
            for (number, part) in &parts {
                self.check_spans(std::slice::from_ref(&part.span), &format!("part {number} of upload {upload}"))?;
            }
            match parts.last() {
                Some((number, _)) if parts.len() == BATCH && !self.interrupted => after = *number,
                _ => return Ok(()),
            }
        }
    }

    /// Checks the blobs of one user, unless told to stop.
    fn check_spans(&mut self, spans: &[BlobSpan], user: &str) -> StoreResult<()> {
        for span in spans.iter().filter(|s| s.has_blob()) {
            if self.interrupted || !(self.go_on)() {
                self.interrupted = true;
                return Ok(());
            }
            self.check_span(span, user)?;
        }
        Ok(())
    }

    /// Checks a span's blob unless it was checked already; records `user`
    /// if the blob is corrupt.
    fn check_span(&mut self, span: &BlobSpan, user: &str) -> StoreResult<()> {
        if let Some(verdict) = self.shared.get(&span.id) {
            if let Some(bad) = verdict.and_then(|i| self.report.corrupt.get_mut(i)) {
                bad.users.push(user.to_string());
            }
            return Ok(());
        }
        let Some((users, outcome)) = self.check_blob(span)? else { return Ok(()) };
        let verdict = match outcome {
            Some(found) => {
                let users = vec![user.to_string()];
                self.report.corrupt.push(CorruptBlob { found, inline: span.inline, users });
                Some(self.report.corrupt.len() - 1)
            }
            None => None,
        };
        if users > 1 {
            self.shared.insert(span.id, verdict);
        }
        Ok(())
    }

    /// Reads one blob: `None` if it was freed meanwhile (a running server),
    /// else its number of users and the corruption found, if any.
    fn check_blob(&mut self, span: &BlobSpan) -> StoreResult<Option<(u64, Option<Corruption>)>> {
        let users = self.source.read(|meta| meta.blob_refs(span.id))?;
        if users == 0 {
            return Ok(None);
        }
        // The pack checks its own chunks; files and older inline rows have
        // block checksums, or none (written before they existed). Inline
        // bytes are checked in the snapshot that holds them.
        let packed = packed_position(span.id).is_some();
        let checked = self.source.blobs(|source| {
            let check = match packed {
                true => None,
                false => source.check(span.id, 0..span.size, span.size)?,
            };
            if span.inline {
                checked_inline(span, source)?;
            }
            Ok(check)
        })?;
        let check = match checked {
            Ok(check) => check,
            // Freed since `users` was read, or a small body lost.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let found = self.missing(span, users)?;
                if found.is_some() {
                    self.count(span, true);
                }
                return Ok(found);
            }
            Err(e) => {
                self.count(span, true);
                return corruption_or(e, users);
            }
        };
        self.count(span, check.is_some() || packed);
        if span.inline {
            return Ok(Some((users, None)));
        }
        match self.read_file(span, check.as_ref()) {
            Ok(()) => Ok(Some((users, None))),
            // Told to stop halfway: no verdict.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.missing(span, users),
            Err(e) => corruption_or(e, users),
        }
    }

    /// Counts a blob looked at in the report.
    fn count(&mut self, span: &BlobSpan, verifiable: bool) {
        self.report.blobs += 1;
        self.report.bytes += span.size;
        match span.inline {
            true => self.report.inline += 1,
            false => self.report.files += 1,
        }
        if !verifiable {
            self.report.unverified += 1;
        }
    }

    /// Reads a whole blob file, checking every block, at the scrub's pace.
    fn read_file(&mut self, span: &BlobSpan, check: Option<&BlockCheck>) -> io::Result<()> {
        let file = File::open(self.layout.blob_path(span.id))?;
        let mut buf = Vec::with_capacity(CHUNK as usize);
        let mut pos = 0;
        while pos < span.size {
            if !(self.go_on)() {
                self.interrupted = true;
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = CHUNK.min(span.size - pos);
            buf.clear();
            read::read_checked(&file, span.id, check, pos..pos + n, &mut buf)?;
            self.pace.spent(n);
            pos += n;
        }
        Ok(())
    }

    /// A file (or small body) gone while still referenced is lost data;
    /// gone because the blob was freed since the snapshot is not.
    fn missing(&self, span: &BlobSpan, users: u64) -> StoreResult<Option<(u64, Option<Corruption>)>> {
        if self.source.read(|meta| meta.blob_refs(span.id))? == 0 {
            return Ok(None);
        }
        Ok(Some((users, Some(Corruption::new(span.id, 0, Damage::Missing)))))
    }
}

/// The smallest key after `key` in byte order.
fn key_after(key: &[u8]) -> Vec<u8> {
    [key, &[0]].concat()
}

/// Spreads reads over time: at most `rate` bytes per second on average.
struct Pace {
    rate: Option<u64>,
    started: Instant,
    bytes: u64,
}

impl Pace {
    fn spent(&mut self, bytes: u64) {
        self.bytes += bytes;
        let Some(rate) = self.rate.filter(|r| *r > 0) else { return };
        let due = Duration::from_secs_f64(self.bytes as f64 / rate as f64);
        if let Some(ahead) = due.checked_sub(self.started.elapsed()) {
            std::thread::sleep(ahead);
        }
    }
}

/// The corruption an error reports, or the error itself (an I/O failure is
/// not a verdict on the data).
fn corruption_or(e: std::io::Error, users: u64) -> StoreResult<Option<(u64, Option<Corruption>)>> {
    match Corruption::of(&e) {
        Some(found) => Ok(Some((users, Some(found)))),
        None => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::Versioning;
    use crate::store::test_support::{bucket_record, object_record, stage, upload_record};
    use crate::store::UPLOAD_ID_LEN;

    /// Buckets with more objects, versions, uploads and parts than a batch
    /// holds; returns how many distinct blobs they have.
    async fn fill(store: &Arc<Store>) -> u64 {
        let mut blobs = 0;
        let mut seed = 0u8;
        let mut body = || {
            seed += 1;
            vec![seed; 100 + usize::from(seed)]
        };
        for bucket in ["b1", "b2", "b3"] {
            store.create_bucket(bucket, &bucket_record()).expect("bucket");
        }
        for n in 0..9 {
            let staged = stage(store, &body()).await;
            store
                .write_object::<StoreError, _>(("b1", &format!("k{n}")), object_record(0), staged, |_| Ok(()))
                .await
                .expect("put");
            blobs += 1;
        }
        // A blob file (after the first batch of `b1`), read in chunks.
        let staged = stage(store, &vec![7u8; 3 * CHUNK as usize / 2]).await;
        store.write_object::<StoreError, _>(("b1", "z-file"), object_record(0), staged, |_| Ok(())).await.expect("put");
        blobs += 1;
        store.update_bucket("b2", |b| b.versioning = Versioning::Enabled).expect("versioning");
        for (key, versions) in [("a", 6), ("b", 1), ("c", 5)] {
            for _ in 0..versions {
                let staged = stage(store, &body()).await;
                store
                    .write_object::<StoreError, _>(("b2", key), object_record(0), staged, |_| Ok(()))
                    .await
                    .expect("put");
                blobs += 1;
            }
        }
        for n in 0..7u8 {
            let id = format!("{n}").repeat(UPLOAD_ID_LEN);
            store.create_upload(&id, &upload_record("b3", &format!("u{n}"))).expect("upload");
            for number in 1..=u16::from(n % 6) {
                let staged = stage(store, &body()).await;
                store.write_part(("b3", &format!("u{n}"), &id), number, staged, 0).await.expect("part");
                blobs += 1;
            }
        }
        blobs
    }

    #[test]
    fn a_pass_resumed_at_every_batch_checks_every_blob_once() {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let blobs = runtime.block_on(fill(&store));

        let whole = scrub_pass(&*store, store.layout(), None).expect("pass");
        assert_eq!((whole.blobs, whole.files, whole.corrupt.len()), (blobs, 1, 0), "{whole}");

        // A new scrubber for each batch, from the position the last one
        // left, as when gateways take turns.
        let (mut at, mut checked, mut batches) = (Position::start(), 0, 0);
        let mut steps = Vec::new();
        loop {
            let mut scrubber = Scrubber::new(&*store, store.layout(), None, Box::new(|| true));
            let stepped = scrubber.step(&at).expect("step");
            checked += scrubber.into_report().blobs;
            match stepped {
                Stepped::Next(next) => at = next,
                Stepped::End => break,
                Stepped::Interrupted => panic!("nothing stops this pass"),
            }
            steps.push(format!("{}:{:?}", at.bucket, at.step));
            batches += 1;
        }
        assert_eq!(checked, blobs, "every blob once, in {batches} batches: {steps:#?}");
        assert!(batches > 15, "{steps:#?}");
        store.close();
    }

    #[test]
    fn a_pass_told_to_stop_ends_its_batch_unfinished() {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        runtime.block_on(fill(&store));
        let mut allowed = 2;
        let go_on = Box::new(move || {
            allowed -= 1;
            allowed >= 0
        });
        let mut scrubber = Scrubber::new(&*store, store.layout(), None, go_on);
        let Stepped::Next(first) = scrubber.step(&Position::start()).expect("step") else { panic!("a bucket") };
        assert!(matches!(scrubber.step(&first).expect("step"), Stepped::Interrupted));
        assert_eq!(scrubber.into_report().blobs, 2, "the blobs checked before the stop");
    }
}
