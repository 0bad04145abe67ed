//! `tessera backup` of a redb data folder, taken while the server runs (or,
//! offline, of a stopped server's folder); what both backends share is in
//! `store/backup.rs`.
//!
//! What it writes into `OUT/`, and nothing else (no orphan, no temp file, no
//! credentials): `meta.redb`, every table copied from ONE redb read
//! transaction (a snapshot: exactly the commits before it began), and every
//! blob file that snapshot references, hard-linked when `OUT` is on the same
//! filesystem (blob files never change once written, so a link is a copy)
//! and copied otherwise, then fsynced. The database is written under
//! `OUT/tmp/` and renamed to `OUT/meta.redb` last, after every blob is
//! durable: a folder holding a `meta.redb` is a complete backup.
//!
//! Concurrent deletes: a blob file is unlinked after the commit that drops
//! its last reference, so a delete committed after the snapshot could unlink
//! a blob the snapshot references before it is copied. While a backup runs,
//! unlinking is therefore paused ([`UnlinkGate`]): the freed blobs stay in
//! the dead-blob table (the freeing commit put them there) and the end of the
//! backup replays that table, as start-up does. The pause begins before the
//! snapshot's read transaction, so every commit that can free a blob of the
//! snapshot (it commits after the snapshot began) finds the gate closed. The
//! orphan sweep unlinks through the same gate: after such a delete, a blob
//! of the snapshot looks unreferenced to it too. A backup holds the read
//! transaction only while copying tables, not while copying blob files.

use std::fs;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use redb::{Database, Key, ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition, Value};

use crate::store::backup::{copy_blobs, discard_partial, prepare_out, BackupError, BackupReport};
use crate::store::layout::{fsync_dir, packed_position, BlobId, Layout};
use crate::store::schema;
use crate::store::{Store, StoreError, StoreResult};

/// Rows copied per destination transaction: bounds the dirty pages redb keeps
/// in memory whatever the size of the database (inline bodies included).
const BATCH_BYTES: usize = 32 * 1024 * 1024;
/// redb's page cache for the backup's own database (see `dbslot.rs`).
const CACHE_BYTES: usize = 16 * 1024 * 1024;

/// Pauses blob unlinking while backups run (see the module comment).
#[derive(Default)]
pub(in crate::store) struct UnlinkGate {
    backups: Mutex<usize>,
}

impl UnlinkGate {
    /// Whether blob files may be unlinked now. A `false` leaves the dead-blob
    /// rows in place; the last backup to end replays them.
    pub(in crate::store) fn open(&self) -> bool {
        self.backups.lock().map(|n| *n == 0).unwrap_or(false)
    }

    fn pause(&self) {
        if let Ok(mut n) = self.backups.lock() {
            *n += 1;
        }
    }

    /// Returns whether this was the last backup running.
    fn resume(&self) -> bool {
        match self.backups.lock() {
            Ok(mut n) => {
                *n = n.saturating_sub(1);
                *n == 0
            }
            Err(_) => false,
        }
    }
}

/// Closes the gate for the life of one backup (or merge of blob files,
/// `hasher.rs`); reopening it replays the dead-blob table, even when the
/// work failed.
pub(in crate::store) struct Paused<'a>(&'a Store);

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        // Over PostgreSQL freed files wait in the database for a chore, not here.
        if self.0.unlink_gate.resume() && matches!(self.0.meta, crate::store::Meta::Redb { .. }) {
            if let Err(e) = self.0.unlink_dead_blobs() {
                tracing::warn!(error = %e.chain(), "freeing blobs deferred by a backup failed; retried at next start");
            }
        }
    }
}

impl Store {
    /// Pauses blob unlinking until the guard is dropped.
    pub(in crate::store) fn pause_unlinking(&self) -> Paused<'_> {
        self.unlink_gate.pause();
        Paused(self)
    }

    /// [`Store::backup`] of a store over redb. Blocking.
    pub(in crate::store) fn backup_redb(&self, out: &Path) -> Result<BackupReport, BackupError> {
        let started = Instant::now();
        let dst = prepare_out(out, self.layout.root())?;
        let _paused = self.pause_unlinking();
        let written = match self.db().and_then(|db| Ok(db.begin_read()?)) {
            Ok(snapshot) => write_backup(snapshot, &self.layout, &dst, started),
            Err(e) => Err(e.into()),
        };
        written.inspect_err(|_| discard_partial(&dst))
    }
}

/// Backs up the folder of a stopped server: opens `meta.redb` itself, which
/// holds redb's file lock, so no server can start and write meanwhile.
/// [`BackupError::Locked`] if a running server holds the database.
pub fn backup_offline(data: &Path, out: &Path) -> Result<BackupReport, BackupError> {
    let started = Instant::now();
    let src = Layout::existing(data);
    if !src.db_path().is_file() {
        return Err(BackupError::Refused(format!("{} holds no meta.redb", data.display())));
    }
    let db = match Database::builder().set_cache_size(CACHE_BYTES).open(src.db_path()) {
        Ok(db) => db,
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => return Err(BackupError::Locked),
        Err(e) => return Err(StoreError::from(e).into()),
    };
    let dst = prepare_out(out, data)?;
    let written = match db.begin_read() {
        Ok(snapshot) => write_backup(snapshot, &src, &dst, started),
        Err(e) => Err(StoreError::from(e).into()),
    };
    written.inspect_err(|_| discard_partial(&dst))
}

/// The whole backup from an open snapshot: tables, blobs, then the rename
/// that completes it. The snapshot is dropped once the tables are copied.
fn write_backup(
    snapshot: ReadTransaction,
    src: &Layout,
    dst: &Layout,
    started: Instant,
) -> Result<BackupReport, BackupError> {
    let partial = dst.tmp_dir().join("meta.redb");
    crate::store::dbslot::owner_only(&partial)?;
    let db = Database::builder().set_cache_size(CACHE_BYTES).create(&partial).map_err(StoreError::from)?;
    copy_tables(&snapshot, &db)?;
    drop(snapshot);
    let (objects, blob_ids) = referenced_files(&db)?;
    drop(db);
    let mut report = BackupReport { objects, blobs: 0, linked: 0, bytes: 0, seconds: 0.0 };
    copy_blobs(src, dst, &blob_ids, &mut report)?;
    fs::File::open(&partial)?.sync_all()?;
    report.bytes += fs::metadata(&partial)?.len();
    fs::rename(&partial, dst.db_path())?;
    fsync_dir(dst.root())?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Copies every table of `schema.rs` into `dst`. A table missing from this
/// list fails the test `every_table_of_the_schema_is_copied`.
fn copy_tables(src: &ReadTransaction, dst: &Database) -> StoreResult<()> {
    copy_table(src, dst, schema::BUCKETS)?;
    copy_table(src, dst, schema::OBJECTS)?;
    copy_table(src, dst, schema::BLOB_REFS)?;
    copy_table(src, dst, schema::DEAD_BLOBS)?;
    copy_table(src, dst, schema::INLINE_BLOBS)?;
    copy_table(src, dst, schema::BLOB_CRCS)?;
    copy_table(src, dst, schema::PACK_CHUNKS)?;
    copy_table(src, dst, schema::PACK_LIVE)?;
    copy_table(src, dst, schema::PACK_DEAD)?;
    copy_table(src, dst, schema::STORE_META)?;
    copy_table(src, dst, schema::UPLOADS)?;
    copy_table(src, dst, schema::UPLOAD_INDEX)?;
    copy_table(src, dst, schema::PARTS)?;
    copy_table(src, dst, schema::COMPLETED_UPLOADS)?;
    copy_table(src, dst, schema::VERSIONS)?;
    copy_table(src, dst, schema::USERS)?;
    copy_table(src, dst, schema::USER_KEYS)?;
    copy_table(src, dst, schema::CONTENT)?;
    copy_table(src, dst, schema::BLOB_CONTENT)?;
    copy_table(src, dst, schema::CONTENT_HOLDERS)?;
    // The last commit is durable (redb's default), and with it every earlier one.
    dst.begin_write()?.commit()?;
    Ok(())
}

/// Copies one table row by row, whatever its key and value types, in
/// transactions of at most [`BATCH_BYTES`] that need not be durable: the
/// file only counts once renamed into place after the final durable commit.
/// The destination table is created even when the source has none.
fn copy_table<K: Key + 'static, V: Value + 'static>(
    src: &ReadTransaction,
    dst: &Database,
    def: TableDefinition<K, V>,
) -> StoreResult<()> {
    let table = match src.open_table(def) {
        Ok(table) => Some(table),
        Err(redb::TableError::TableDoesNotExist(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let mut rows = table.as_ref().map(|t| t.iter()).transpose()?;
    loop {
        let mut txn = dst.begin_write()?;
        txn.set_durability(redb::Durability::None);
        let more = {
            let mut out = txn.open_table(def)?;
            match rows.as_mut() {
                Some(rows) => copy_batch(rows, &mut out)?,
                None => false,
            }
        };
        txn.commit()?;
        if !more {
            return Ok(());
        }
    }
}

/// Copies rows until [`BATCH_BYTES`] are written; returns whether rows remain.
fn copy_batch<K: Key + 'static, V: Value + 'static>(
    rows: &mut redb::Range<'_, K, V>,
    out: &mut redb::Table<'_, K, V>,
) -> StoreResult<bool> {
    let mut bytes = 0;
    for row in rows.by_ref() {
        let (k, v) = row?;
        let (k, v) = (k.value(), v.value());
        bytes += K::as_bytes(&k).as_ref().len() + V::as_bytes(&v).as_ref().len();
        out.insert(k, v)?;
        if bytes >= BATCH_BYTES {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The number of objects and the blob files (not inline blobs) the copied
/// snapshot references: every reference is counted in `blob_refs`.
fn referenced_files(db: &Database) -> StoreResult<(u64, Vec<BlobId>)> {
    let txn = db.begin_read()?;
    let objects = txn.open_table(schema::OBJECTS)?.len()?;
    let inline = txn.open_table(schema::INLINE_BLOBS)?;
    let mut files = Vec::new();
    for row in txn.open_table(schema::BLOB_REFS)?.iter()? {
        let id = row?.0.value();
        if packed_position(id).is_none() && inline.get(id)?.is_none() {
            files.push(id);
        }
    }
    Ok((objects, files))
}

#[cfg(test)]
mod tests {
    use redb::{MultimapTableHandle, TableHandle};

    use super::*;

    /// Every `TableDefinition::new("name")` written in schema.rs.
    fn schema_tables() -> Vec<String> {
        let source = include_str!("../schema.rs");
        let names: Vec<String> = source
            .split("TableDefinition::new(\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .map(str::to_string)
            .collect();
        assert!(names.len() >= 9, "schema.rs parsing found only {names:?}");
        names
    }

    fn tables(db: &Database) -> (Vec<String>, Vec<String>) {
        let txn = db.begin_read().expect("read");
        let mut plain: Vec<String> = txn.list_tables().expect("list").map(|t| t.name().to_string()).collect();
        let mut multi: Vec<String> = txn.list_multimap_tables().expect("list").map(|t| t.name().to_string()).collect();
        plain.sort();
        multi.sort();
        (plain, multi)
    }

    #[test]
    fn every_table_of_the_schema_is_copied() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (data, out) = (dir.path().join("data"), dir.path().join("out"));
        let store = Store::open(&data).expect("open");
        store.backup(&out).expect("backup");
        store.close();
        let source = Database::open(data.join("meta.redb")).expect("source");
        let copy = Database::open(out.join("meta.redb")).expect("copy");
        let (src_tables, src_multi) = tables(&source);
        let (copied, copied_multi) = tables(&copy);
        for name in schema_tables().iter().chain(&src_tables) {
            assert!(copied.contains(name), "table {name} is not copied by backup::copy_tables");
        }
        assert_eq!(src_multi, copied_multi, "multimap tables are not copied");
    }
}
