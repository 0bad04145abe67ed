//! The one open redb `Database`, and its replacement after an I/O error.
//!
//! redb 2 poisons a `Database` on the first failed read, write, `set_len` or
//! fsync of its file (`CheckedBackend::io_failed` in
//! `tree_store/page_store/cached_file.rs`): from then on every `begin_write`
//! *and* every read answers `StorageError::PreviousIo` ("Please close and
//! re-open the database"). The failed commit itself left nothing visible (the
//! header still points at the last good commit) and set the file's
//! recovery flag, so a fresh open repairs the allocator state and serves the
//! last committed data. Only a new open clears the poison, and redb refuses a
//! second open of the same file while any handle of the old one is alive
//! (`flock`, `DatabaseAlreadyOpen`), read transactions included.
//!
//! So the slot holds an `Option<Arc<Database>>`: a request clones the `Arc`
//! under a short read lock and never waits on a reopen. [`DbSlot::reopen`]
//! empties the slot (requests then get [`StoreError::Unavailable`], a
//! retryable 503), waits for the last handle of the old instance to go away
//! (its readers finish or fail with `PreviousIo`), opens the file again and
//! fills the slot. Nobody ever sees a half-opened database.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use redb::{Database, DatabaseError};

use crate::store::StoreError;

/// redb's page cache. Its default (1 GiB) would keep every inline body read or
/// written in memory; metadata pages are small, and the OS page cache still
/// holds the file. This bounds the server's memory.
const DB_CACHE_BYTES: usize = 16 * 1024 * 1024;

/// How long a reopen waits for readers of the old instance (they are short:
/// no store method keeps a read transaction beyond its own return).
const REOPEN_WAIT: Duration = Duration::from_secs(10);

pub struct DbSlot {
    path: PathBuf,
    current: RwLock<Option<Arc<Database>>>,
}

impl DbSlot {
    pub fn open(path: PathBuf) -> Result<DbSlot, StoreError> {
        let db = open_db(&path).map_err(|e| match e {
            DatabaseError::DatabaseAlreadyOpen => StoreError::InUse(path.display().to_string()),
            e => StoreError::caused("cannot open it", e),
        })?;
        Ok(DbSlot { path, current: RwLock::new(Some(Arc::new(db))) })
    }

    /// The open database, or `Unavailable` while it is being reopened.
    pub fn get(&self) -> Result<Arc<Database>, StoreError> {
        let current = self.current.read().map_err(|_| StoreError::Unavailable)?;
        current.clone().ok_or(StoreError::Unavailable)
    }

    /// Closes the poisoned instance and opens the file again. Called only by
    /// the commit thread, the single writer, so two reopens never race.
    pub fn reopen(&self) -> Result<(), StoreError> {
        let old = self.current.write().map_err(|_| StoreError::Unavailable)?.take();
        drop(old);
        let started = Instant::now();
        let db = loop {
            match open_db(&self.path) {
                Ok(db) => break db,
                // Some request still holds the old instance: it is about to finish.
                Err(DatabaseError::DatabaseAlreadyOpen) if started.elapsed() < REOPEN_WAIT => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => return Err(e.into()),
            }
        };
        *self.current.write().map_err(|_| StoreError::Unavailable)? = Some(Arc::new(db));
        tracing::warn!(elapsed_ms = started.elapsed().as_millis() as u64, "metadata database reopened");
        Ok(())
    }

    /// Runs `f` with the database to itself, for compaction (which needs
    /// `&mut Database` and no live read transaction). Requests meanwhile get
    /// `Unavailable`; gives up (leaving the database open) if some request
    /// keeps its handle for longer than [`REOPEN_WAIT`].
    pub fn exclusive<T>(&self, f: impl FnOnce(&mut Database) -> T) -> Result<T, StoreError> {
        let shared =
            self.current.write().map_err(|_| StoreError::Unavailable)?.take().ok_or(StoreError::Unavailable)?;
        let mut db = match sole_owner(shared) {
            Ok(db) => db,
            Err(still_shared) => {
                *self.current.write().map_err(|_| StoreError::Unavailable)? = Some(still_shared);
                return Err(StoreError::Unavailable);
            }
        };
        let out = f(&mut db);
        *self.current.write().map_err(|_| StoreError::Unavailable)? = Some(Arc::new(db));
        Ok(out)
    }

    /// Closes the database for good (clean shutdown): empties the slot, waits
    /// for the last reader of the instance, and drops it, which lets redb
    /// record a clean close so the next start needs no repair. Returns false
    /// if some reader kept its handle past [`REOPEN_WAIT`] (the next start
    /// then repairs, as after a crash).
    pub fn close(&self) -> bool {
        let Ok(Some(shared)) = self.current.write().map(|mut slot| slot.take()) else { return true };
        sole_owner(shared).is_ok()
    }

    /// Whether the slot is empty (a reopen failed and must be retried).
    pub fn is_closed(&self) -> bool {
        self.current.read().map(|c| c.is_none()).unwrap_or(true)
    }
}

/// The database itself once no request holds a handle to it any more
/// (they are short), or the shared handle back after [`REOPEN_WAIT`].
fn sole_owner(mut shared: Arc<Database>) -> Result<Database, Arc<Database>> {
    let started = Instant::now();
    loop {
        match Arc::try_unwrap(shared) {
            Ok(db) => return Ok(db),
            Err(still_shared) if started.elapsed() < REOPEN_WAIT => {
                shared = still_shared;
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(still_shared) => return Err(still_shared),
        }
    }
}

/// Gives the free pages of the file back to the filesystem: redb only trims
/// free pages at the end of its file, so deleting small (inline) objects alone
/// would never make room on a full disk. Waits briefly for read
/// transactions still open on the instance.
pub fn compact(db: &mut Database) -> Result<bool, redb::CompactionError> {
    let started = Instant::now();
    loop {
        match db.compact() {
            Err(redb::CompactionError::TransactionInProgress) if started.elapsed() < REOPEN_WAIT => {
                std::thread::sleep(Duration::from_millis(2));
            }
            other => return other,
        }
    }
}

/// Test builds open the file through `faults::FaultyFile`, the same file
/// backend with fsyncs a test can make fail. The file holds users' secrets:
/// owner-only, whatever the umask.
fn open_db(path: &std::path::Path) -> Result<Database, DatabaseError> {
    owner_only(path)?;
    let mut builder = Database::builder();
    builder.set_cache_size(DB_CACHE_BYTES);
    #[cfg(test)]
    return builder.create_with_backend(crate::store::faults::FaultyFile::open(path)?);
    #[cfg(not(test))]
    builder.create(path)
}

/// Creates `path` if missing and makes it readable and writable by its owner only.
pub(in crate::store) fn owner_only(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}
