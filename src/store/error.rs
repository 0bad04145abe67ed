//! The store's errors, free of any HTTP meaning (`s3::error` maps them).
//!
//! A storage failure keeps what failed underneath it as its `source`, so the
//! log line (and the command line's message) shows the whole chain: what the
//! store was doing, then the I/O or database error that stopped it.

use std::error::Error;
use std::sync::Arc;

use super::space;

/// What failed underneath a storage failure. Shared, because one failed
/// group commit is reported to every write of the batch.
pub type Cause = Arc<dyn Error + Send + Sync>;

/// Failures of the store. `Clone` so that a failed batch can answer each of
/// its writes.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("no such bucket")]
    NoSuchBucket,
    #[error("bucket exists, owned by {0}")]
    BucketExists(String),
    #[error("bucket not empty")]
    BucketNotEmpty,
    #[error("no such key")]
    NoSuchKey,
    #[error("no such upload")]
    NoSuchUpload,
    #[error("a user with that name exists")]
    UserExists,
    #[error("no such user")]
    NoSuchUser,
    /// A version id that is not (or no longer) a version of the key.
    #[error("no such version")]
    NoSuchVersion,
    /// The version read is a delete marker: the key's latest version
    /// (`requested` false), or the version named.
    #[error("delete marker")]
    DeleteMarker { version_id: super::VersionId, last_modified_ms: i64, requested: bool },
    /// The filesystem (or quota) is full: nothing was written.
    #[error("storage full")]
    StorageFull,
    /// The metadata database is being reopened after an I/O error, or a
    /// shared one cannot be reached: retry.
    #[error("metadata store temporarily unavailable")]
    Unavailable,
    /// A shared metadata database kept refusing the write as conflicting
    /// with other gateways' writes: retry later.
    #[error("metadata store busy with conflicting writes")]
    Busy,
    /// The disk or the database failed. `context` says what the store was
    /// doing; `cause` is the error underneath, when there is one.
    #[error("storage failure: {context}")]
    Internal {
        context: String,
        #[source]
        cause: Option<Cause>,
    },
    /// At start-up: another process holds the database's lock.
    #[error("{0} is in use: another Tessera is probably running on this data folder")]
    InUse(String),
    /// At start-up without `--meta`: the folder is shared by gateways over a
    /// metadata database, so a redb file created there would serve an empty
    /// namespace beside theirs.
    #[error(
        "{0} is shared by gateways over a metadata database (it has gateways/ and no meta.redb): serve it \
         with --meta URL (docs/scale-out.md)"
    )]
    SharedFolder(String),
    /// At start-up: the database is older than commits already acknowledged.
    #[error(
        "meta.redb is at commit {database} but commit {acknowledged} was acknowledged to clients: the database \
         went back in time (a corrupted header or a lost write) and acknowledged writes are missing. Restore \
         meta.redb from a backup, or start with --accept-db-rollback to serve the older state (docs/reliability.md)"
    )]
    RolledBack { database: u64, acknowledged: u64 },
}

/// Why [`Store::open_range`](super::Store::open_range) could not open an
/// object's bytes.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A blob of the record is gone: the object was replaced or deleted
    /// since its record was read. Read the record again.
    #[error("the object changed while it was opened")]
    Gone,
    /// Corruption (see `read::Corruption`) or an I/O failure.
    #[error("reading the object failed")]
    Read(#[source] std::io::Error),
    #[error(transparent)]
    Store(StoreError),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Displays an error followed by each of its sources, `: `-separated: what a
/// log line needs (`StoreError`'s own text names only what the store was
/// doing).
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

impl StoreError {
    /// This error with its causes, for a log line.
    pub fn chain(&self) -> Chain<'_> {
        Chain(self)
    }

    /// The kind of the I/O error underneath, if that is what failed.
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            StoreError::Internal { cause: Some(cause), .. } => cause.downcast_ref::<std::io::Error>().map(|e| e.kind()),
            _ => None,
        }
    }

    /// A storage failure with nothing underneath (a broken invariant, a
    /// stopped thread).
    pub fn internal(context: impl Into<String>) -> Self {
        StoreError::Internal { context: context.into(), cause: None }
    }

    /// A storage failure while doing `context`, because of `cause`.
    pub fn caused(context: impl Into<String>, cause: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        StoreError::Internal { context: context.into(), cause: Some(Arc::from(cause.into())) }
    }

    /// Whether the store failed (the disk, the database), rather than
    /// refused: a write that fails so may be half done in its transaction.
    pub fn is_storage_failure(&self) -> bool {
        matches!(
            self,
            StoreError::Internal { .. } | StoreError::StorageFull | StoreError::Unavailable | StoreError::Busy
        )
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        match space::is_full(&e) {
            true => StoreError::StorageFull,
            false => StoreError::caused("I/O", e),
        }
    }
}

impl From<redb::StorageError> for StoreError {
    /// A full disk keeps its meaning; `PreviousIo` means an earlier failure
    /// poisoned the database, which the commit thread is reopening.
    fn from(e: redb::StorageError) -> Self {
        match e {
            redb::StorageError::Io(io) => io.into(),
            redb::StorageError::PreviousIo => StoreError::Unavailable,
            other => StoreError::caused("database", other),
        }
    }
}

/// redb's other error types wrap a `StorageError` for their I/O failures.
macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                match e.into() {
                    redb::Error::Io(io) => io.into(),
                    redb::Error::PreviousIo => StoreError::Unavailable,
                    other => StoreError::caused("database", other),
                }
            }
        }
    )*};
}
storage_from!(redb::Error, redb::DatabaseError, redb::TransactionError, redb::TableError, redb::CommitError);

impl From<postcard::Error> for StoreError {
    fn from(e: postcard::Error) -> Self {
        StoreError::caused("decoding a record", e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The log and the command line print the chain: the I/O error under a
    /// storage failure must be reachable through `source`.
    #[test]
    fn a_storage_failure_keeps_its_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "blobs/ab is read-only");
        let e = StoreError::from(io);
        assert_eq!(e.to_string(), "storage failure: I/O");
        let source = e.source().map(|s| s.to_string());
        assert_eq!(source.as_deref(), Some("blobs/ab is read-only"));
        assert!(e.is_storage_failure());
        assert!(StoreError::internal("x").source().is_none());
        assert_eq!(e.chain().to_string(), "storage failure: I/O: blobs/ab is read-only");
    }

    #[test]
    fn a_full_disk_is_not_a_failure_of_the_store() {
        let full = std::io::Error::from_raw_os_error(28);
        assert!(matches!(StoreError::from(full), StoreError::StorageFull));
    }
}
