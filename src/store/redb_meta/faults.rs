//! Test builds only: the database file behind a backend whose fsyncs can be
//! made to fail, to test what the store does when a commit's fsync fails.
//!
//! redb writes a commit's header before its one fsync (1-phase commit), so
//! a failed fsync leaves a commit that the reopened database may show
//! although the write was answered with an error. Faults are armed per
//! database path, so tests running in parallel threads do not meet.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use redb::backends::FileBackend;
use redb::{DatabaseError, StorageBackend};

/// Database path -> how many of its next fsyncs fail.
static FAILING_SYNCS: Mutex<BTreeMap<PathBuf, u32>> = Mutex::new(BTreeMap::new());

/// Makes the next `count` fsyncs of the database at `path` fail.
pub fn fail_syncs(path: &Path, count: u32) {
    if let Ok(mut armed) = FAILING_SYNCS.lock() {
        armed.insert(path.to_path_buf(), count);
    }
}

/// Takes one armed failure for `path`, if any is left.
fn take_failure(path: &Path) -> bool {
    let Ok(mut armed) = FAILING_SYNCS.lock() else { return false };
    match armed.get_mut(path) {
        Some(left) if *left > 0 => {
            *left -= 1;
            true
        }
        _ => false,
    }
}

#[derive(Debug)]
pub struct FaultyFile {
    inner: FileBackend,
    path: PathBuf,
}

impl FaultyFile {
    /// Opens (or creates) the file as `redb::Builder::create` does.
    pub fn open(path: &Path) -> Result<FaultyFile, DatabaseError> {
        let file: File = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        Ok(FaultyFile { inner: FileBackend::new(file)?, path: path.to_path_buf() })
    }
}

impl StorageBackend for FaultyFile {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn read(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.inner.read(offset, len)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }

    fn sync_data(&self, eventual: bool) -> io::Result<()> {
        match take_failure(&self.path) {
            true => Err(io::Error::other("injected fsync failure")),
            false => self.inner.sync_data(eventual),
        }
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.inner.write(offset, data)
    }
}
