//! Scrubbing: reading every blob (files and inline bodies) and checking it
//! against the block checksums stored when it was written, to find
//! corruption before a client asks for the bytes. `tessera scrub` runs one
//! pass over a stopped server's data folder; a running server runs slow,
//! rate-limited passes in the background ([`spawn_scrubber`]).
//!
//! The blobs are found through what references them (object records, then
//! the parts of uploads in progress), so a corrupt blob is reported with
//! its users. The walk reads the tables in small batches, one short read
//! transaction each, and never holds a transaction while reading a file: a
//! pass may last hours on a running server, and a long-lived read
//! transaction would keep redb from reusing the pages written meanwhile.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redb::{Database, TableDefinition};

use super::layout::{packed_position, BlobId, Layout};
use super::read::{self, checked_inline, BlobSource, BlockCheck, Corruption, Damage, Snapshot};
use super::schema::{decode, BlobSpan, ObjectRecord, PartRecord, BLOB_REFS, OBJECTS, PARTS, VERSIONS};
use super::versions::VersionId;
use super::{Store, StoreError, StoreResult};

/// Rows read per read transaction.
const BATCH: usize = 256;
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
    Scrubber::new(&db, &layout, None).run()
}

/// Runs a scrub pass every `interval` (the first one `interval` or ten
/// minutes after start, whichever is sooner), reading at most `rate` bytes
/// per second, on a thread of its own. Corruption is logged at error level.
pub fn spawn_scrubber(store: Arc<Store>, interval: Duration, rate: u64) {
    let first = interval.min(Duration::from_secs(600));
    let spawned = std::thread::Builder::new().name("scrub".into()).spawn(move || {
        std::thread::sleep(first);
        loop {
            let pass = store.db().and_then(|db| Scrubber::new(&db, &store.layout, Some(rate)).run());
            match pass {
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

fn log_pass(report: &ScrubReport) {
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

struct Scrubber<'a> {
    db: &'a Database,
    layout: &'a Layout,
    pace: Pace,
    report: ScrubReport,
    /// Verdicts of blobs with more than one user (copies), so each is read
    /// once: `Some(i)` is `report.corrupt[i]`.
    shared: HashMap<BlobId, Option<usize>>,
}

/// A table whose rows name blobs: key and value bytes.
type RowTable = TableDefinition<'static, &'static [u8], &'static [u8]>;

impl<'a> Scrubber<'a> {
    fn new(db: &'a Database, layout: &'a Layout, rate: Option<u64>) -> Scrubber<'a> {
        let pace = Pace { rate, started: Instant::now(), bytes: 0 };
        Scrubber { db, layout, pace, report: ScrubReport::default(), shared: HashMap::new() }
    }

    fn run(mut self) -> StoreResult<ScrubReport> {
        self.walk(OBJECTS, |key, value| {
            let record: ObjectRecord = decode(value)?;
            Ok((object_name(key), record.blobs))
        })?;
        self.walk(PARTS, |key, value| {
            let part: PartRecord = decode(value)?;
            Ok((part_name(key), vec![part.span]))
        })?;
        self.walk_versions()?;
        Ok(self.report)
    }

    /// Checks the blobs of noncurrent versions, `BATCH` rows per read transaction.
    fn walk_versions(&mut self) -> StoreResult<()> {
        let mut after: Option<(Vec<u8>, u64)> = None;
        loop {
            let rows = {
                let txn = self.db.begin_read()?;
                let table = txn.open_table(VERSIONS)?;
                let start = after.as_ref().map_or(Bound::Unbounded, |(k, s)| Bound::Excluded((k.as_slice(), *s)));
                let mut rows = Vec::new();
                for row in table.range::<(&[u8], u64)>((start, Bound::Unbounded))?.take(BATCH) {
                    let (k, v) = row?;
                    let (key, seq) = k.value();
                    rows.push((key.to_vec(), seq, decode::<ObjectRecord>(v.value())?));
                }
                rows
            };
            let Some((last, seq, _)) = rows.last() else { return Ok(()) };
            after = Some((last.clone(), *seq));
            for (key, _, record) in &rows {
                let user = format!("{} version {}", object_name(key), VersionId::of(&record.version));
                for span in record.blobs.iter().filter(|s| s.has_blob()) {
                    self.check_span(span, &user)?;
                }
            }
        }
    }

    /// Checks the blobs of every row of `table`, `BATCH` rows per read transaction.
    fn walk<F>(&mut self, table: RowTable, spans_of: F) -> StoreResult<()>
    where
        F: Fn(&[u8], &[u8]) -> StoreResult<(String, Vec<BlobSpan>)>,
    {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let rows = self.batch(table, after.as_deref())?;
            let Some((last, _)) = rows.last() else { return Ok(()) };
            after = Some(last.clone());
            for (key, value) in &rows {
                let (user, spans) = spans_of(key, value)?;
                for span in spans.iter().filter(|s| s.has_blob()) {
                    self.check_span(span, &user)?;
                }
            }
        }
    }

    fn batch(&self, table: RowTable, after: Option<&[u8]>) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(table)?;
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut rows = Vec::new();
        for row in table.range::<&[u8]>((start, Bound::Unbounded))?.take(BATCH) {
            let (k, v) = row?;
            rows.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(rows)
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
        let snapshot = Snapshot(self.db.begin_read()?);
        let Some(users) = snapshot.0.open_table(BLOB_REFS)?.get(span.id)?.map(|v| v.value()) else {
            return Ok(None);
        };
        self.report.blobs += 1;
        self.report.bytes += span.size;
        // The pack checks its own chunks; files and older inline rows have
        // block checksums, or none (written before they existed).
        let packed = packed_position(span.id).is_some();
        let check = match packed {
            true => None,
            false => match snapshot.check(span.id, 0..span.size, span.size) {
                Ok(check) => check,
                Err(e) => return corruption_or(e, users),
            },
        };
        if check.is_none() && !packed {
            self.report.unverified += 1;
        }
        if span.inline {
            self.report.inline += 1;
            return match checked_inline(span, &snapshot) {
                Ok(_) => Ok(Some((users, None))),
                Err(e) => corruption_or(e, users),
            };
        }
        self.report.files += 1;
        drop(snapshot);
        match self.read_file(span, check.as_ref()) {
            Ok(()) => Ok(Some((users, None))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => self.missing(span, users),
            Err(e) => corruption_or(e, users),
        }
    }

    /// Reads a whole blob file, checking every block, at the scrub's pace.
    fn read_file(&mut self, span: &BlobSpan, check: Option<&BlockCheck>) -> std::io::Result<()> {
        let file = File::open(self.layout.blob_path(span.id))?;
        let mut buf = Vec::with_capacity(CHUNK as usize);
        let mut pos = 0;
        while pos < span.size {
            let n = CHUNK.min(span.size - pos);
            buf.clear();
            read::read_checked(&file, span.id, check, pos..pos + n, &mut buf)?;
            self.pace.spent(n);
            pos += n;
        }
        Ok(())
    }

    /// A file gone while still referenced is lost data; gone because the
    /// blob was freed since the snapshot is not.
    fn missing(&self, span: &BlobSpan, users: u64) -> StoreResult<Option<(u64, Option<Corruption>)>> {
        let txn = self.db.begin_read()?;
        if txn.open_table(BLOB_REFS)?.get(span.id)?.is_none() {
            return Ok(None);
        }
        Ok(Some((users, Some(Corruption::new(span.id, 0, Damage::Missing)))))
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

/// `object bucket/key` from an objects-table key (`bucket \0 key`).
fn object_name(row: &[u8]) -> String {
    let text = String::from_utf8_lossy(row);
    match text.split_once('\0') {
        Some((bucket, key)) => format!("object {bucket}/{key}"),
        None => format!("object {text}"),
    }
}

/// `part N of upload ID` from a parts-table key (`upload id ++ u16 BE`).
fn part_name(row: &[u8]) -> String {
    match row.split_last_chunk::<2>() {
        Some((id, number)) => {
            format!("part {} of upload {}", u16::from_be_bytes(*number), String::from_utf8_lossy(id))
        }
        None => format!("part row {}", hex::encode(row)),
    }
}
