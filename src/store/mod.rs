//! The metadata store and blob files: the only API handlers see.
//!
//! Every method is one redb transaction and is blocking: handlers call them
//! through [`Store::run`], which moves the work off the reactor. redb is used
//! nowhere else in the crate, so another backend can replace this module.

pub mod blob;
pub mod digest;
mod gc;
pub use gc::spawn_upload_reaper;
pub mod layout;
mod list;
mod multipart;
pub mod read;
pub mod schema;

use std::fs;
use std::path::Path;
use std::sync::Arc;

use redb::{Database, Durability, ReadableTable, ReadableTableMetadata, WriteTransaction};

use layout::{BlobId, Layout};
pub use list::{ListEntry, ListPage, ListQuery};
pub use multipart::{PartPage, UploadEntry, UploadPage, UploadQuery, UPLOAD_ID_LEN};
use schema::{
    decode, encode, object_key, BlobSpan, BucketRecord, ObjectRecord, BLOB_REFS, BUCKETS, DEAD_BLOBS, OBJECTS,
};

/// Failures of the store, free of any HTTP meaning (`s3::error` maps them).
#[derive(Debug, thiserror::Error)]
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
    #[error("storage failure: {0}")]
    Internal(String),
}

macro_rules! internal_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::Internal(e.to_string()) }
        }
    )*};
}
internal_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    std::io::Error,
    postcard::Error
);

pub type StoreResult<T> = Result<T, StoreError>;

pub struct Store {
    db: Database,
    layout: Layout,
}

impl Store {
    /// Opens (or creates) the data folder: empties `tmp/`, replays the dead-blob
    /// table, and starts the background sweep for orphaned blob files.
    pub fn open(root: &Path) -> StoreResult<Arc<Store>> {
        let layout = Layout::create(root)?;
        for entry in fs::read_dir(layout.tmp_dir())? {
            fs::remove_file(entry?.path())?;
        }
        let db = Database::create(layout.db_path())?;
        let store = Arc::new(Store { db, layout });
        store.init_tables()?;
        store.unlink_dead_blobs()?;
        gc::spawn_orphan_sweep(store.clone());
        Ok(store)
    }

    fn init_tables(&self) -> StoreResult<()> {
        let txn = self.db.begin_write()?;
        txn.open_table(BUCKETS)?;
        txn.open_table(OBJECTS)?;
        txn.open_table(BLOB_REFS)?;
        txn.open_table(DEAD_BLOBS)?;
        txn.open_table(schema::UPLOADS)?;
        txn.open_table(schema::UPLOAD_INDEX)?;
        txn.open_table(schema::PARTS)?;
        txn.commit()?;
        Ok(())
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Runs blocking store work off the async reactor.
    pub async fn run<T, E, F>(self: &Arc<Self>, f: F) -> Result<T, E>
    where
        F: FnOnce(&Store) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let store = self.clone();
        match tokio::task::spawn_blocking(move || f(&store)).await {
            Ok(result) => result,
            Err(e) => Err(StoreError::Internal(e.to_string()).into()),
        }
    }

    // ---- buckets ----

    pub fn create_bucket(&self, name: &str, record: &BucketRecord) -> StoreResult<()> {
        let txn = self.db.begin_write()?;
        {
            let mut buckets = txn.open_table(BUCKETS)?;
            if let Some(existing) = buckets.get(name)? {
                let existing: BucketRecord = decode(existing.value())?;
                return Err(StoreError::BucketExists(existing.owner));
            }
            buckets.insert(name, encode(record)?.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    pub fn bucket(&self, name: &str) -> StoreResult<BucketRecord> {
        let txn = self.db.begin_read()?;
        let buckets = txn.open_table(BUCKETS)?;
        let value = buckets.get(name)?.ok_or(StoreError::NoSuchBucket)?;
        Ok(decode(value.value())?)
    }

    /// All buckets owned by `owner`, sorted by name.
    pub fn list_buckets(&self, owner: &str) -> StoreResult<Vec<(String, BucketRecord)>> {
        let txn = self.db.begin_read()?;
        let buckets = txn.open_table(BUCKETS)?;
        let mut out = Vec::new();
        for entry in buckets.iter()? {
            let (name, value) = entry?;
            let record: BucketRecord = decode(value.value())?;
            if record.owner == owner {
                out.push((name.value().to_string(), record));
            }
        }
        Ok(out)
    }

    /// Deletes an empty bucket. Uploads in progress do not keep it alive: they
    /// are aborted in the same transaction, as S3 does.
    /// Replaces (or removes, with `None`) a bucket's lifecycle configuration.
    pub fn set_lifecycle(&self, name: &str, lifecycle: Option<schema::Lifecycle>) -> StoreResult<()> {
        let txn = self.db.begin_write()?;
        {
            let mut buckets = txn.open_table(BUCKETS)?;
            let current = buckets.get(name)?.map(|v| v.value().to_vec()).ok_or(StoreError::NoSuchBucket)?;
            let mut record: BucketRecord = decode(&current)?;
            record.lifecycle = lifecycle;
            buckets.insert(name, encode(&record)?.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    pub fn delete_bucket(&self, name: &str) -> StoreResult<()> {
        let txn = self.db.begin_write()?;
        let mut dead = Vec::new();
        for (upload, id) in multipart::uploads_of_bucket(&txn, name)? {
            dead.extend(multipart::abort_in_txn(&txn, &upload, &id)?);
        }
        {
            let mut buckets = txn.open_table(BUCKETS)?;
            if buckets.get(name)?.is_none() {
                return Err(StoreError::NoSuchBucket);
            }
            let objects = txn.open_table(OBJECTS)?;
            let (lo, hi) = list::bucket_bounds(name);
            if objects.range(lo.as_slice()..hi.as_slice())?.next().is_some() {
                return Err(StoreError::BucketNotEmpty);
            }
            buckets.remove(name)?;
        }
        txn.commit()?;
        self.free_blobs(dead);
        Ok(())
    }

    // ---- objects ----

    pub fn get_object(&self, bucket: &str, key: &str) -> StoreResult<ObjectRecord> {
        let txn = self.db.begin_read()?;
        if txn.open_table(BUCKETS)?.get(bucket)?.is_none() {
            return Err(StoreError::NoSuchBucket);
        }
        let objects = txn.open_table(OBJECTS)?;
        let value = objects.get(object_key(bucket, key.as_bytes()).as_slice())?.ok_or(StoreError::NoSuchKey)?;
        Ok(decode(value.value())?)
    }

    /// Makes `record` the object at `bucket/key`, replacing (and freeing) any
    /// previous version. `check` sees the current version inside the same
    /// transaction, so conditional writes (`If-None-Match: *`) are atomic.
    pub fn put_object<E: From<StoreError>>(
        &self,
        bucket: &str,
        key: &str,
        record: &ObjectRecord,
        check: impl FnOnce(Option<&ObjectRecord>) -> Result<(), E>,
    ) -> Result<(), E> {
        let txn = self.db.begin_write().map_err(StoreError::from)?;
        let dead = (|| -> Result<Vec<BlobId>, E> {
            require_bucket(&txn, bucket)?;
            let current = read_object(&txn, bucket, key)?;
            check(current.as_ref())?;
            add_refs(&txn, &record.blobs)?;
            Ok(replace_object(&txn, bucket, key, Some(record), current)?)
        })()?;
        txn.commit().map_err(StoreError::from)?;
        self.free_blobs(dead);
        Ok(())
    }

    /// Deletes an object; deleting a missing key succeeds, as in S3.
    pub fn delete_object(&self, bucket: &str, key: &str) -> StoreResult<()> {
        let txn = self.db.begin_write()?;
        require_bucket(&txn, bucket)?;
        let current = read_object(&txn, bucket, key)?;
        if current.is_none() {
            return Ok(());
        }
        let dead = replace_object(&txn, bucket, key, None, current)?;
        txn.commit()?;
        self.free_blobs(dead);
        Ok(())
    }

    /// Deletes many keys of one bucket in one transaction (DeleteObjects).
    pub fn delete_objects(&self, bucket: &str, keys: &[String]) -> StoreResult<()> {
        let txn = self.db.begin_write()?;
        require_bucket(&txn, bucket)?;
        let mut dead = Vec::new();
        for key in keys {
            if let Some(current) = read_object(&txn, bucket, key)? {
                dead.extend(replace_object(&txn, bucket, key, None, Some(current))?);
            }
        }
        txn.commit()?;
        self.free_blobs(dead);
        Ok(())
    }

    /// Removes published blobs whose commit failed: nothing references them.
    pub fn discard_blobs(&self, spans: &[BlobSpan]) {
        for span in spans.iter().filter(|s| s.has_file()) {
            if let Err(e) = fs::remove_file(self.layout.blob_path(span.id)) {
                tracing::warn!(error = %e, "could not remove an unused blob; the orphan sweep will");
            }
        }
    }

    /// Copies an object by sharing its blobs (no bytes are copied). `make`
    /// builds the destination record from the source inside the transaction,
    /// so `x-amz-copy-source-if-*` checks see exactly what is copied.
    pub fn copy_object<E: From<StoreError>>(
        &self,
        src: (&str, &str),
        dst: (&str, &str),
        make: impl FnOnce(&ObjectRecord) -> Result<ObjectRecord, E>,
    ) -> Result<ObjectRecord, E> {
        let txn = self.db.begin_write().map_err(StoreError::from)?;
        let (record, dead) = (|| -> Result<(ObjectRecord, Vec<BlobId>), E> {
            require_bucket(&txn, src.0)?;
            require_bucket(&txn, dst.0)?;
            let source = read_object(&txn, src.0, src.1)?.ok_or(StoreError::NoSuchKey)?;
            let record = make(&source)?;
            add_refs(&txn, &record.blobs)?;
            let current = read_object(&txn, dst.0, dst.1)?;
            let dead = replace_object(&txn, dst.0, dst.1, Some(&record), current)?;
            Ok((record, dead))
        })()?;
        txn.commit().map_err(StoreError::from)?;
        self.free_blobs(dead);
        Ok(record)
    }

    pub fn list_objects(&self, bucket: &str, query: &ListQuery) -> StoreResult<ListPage> {
        let txn = self.db.begin_read()?;
        if txn.open_table(BUCKETS)?.get(bucket)?.is_none() {
            return Err(StoreError::NoSuchBucket);
        }
        list::list(&txn.open_table(OBJECTS)?, bucket, query)
    }

    // ---- blob garbage ----

    /// Unlinks blob files that a committed transaction recorded as dead, then
    /// forgets them. A crash in between is harmless: start-up replays the table.
    fn free_blobs(&self, dead: Vec<BlobId>) {
        if dead.is_empty() {
            return;
        }
        if let Err(e) = self.unlink_and_forget(&dead) {
            tracing::warn!(error = %e, "freeing blobs failed; retried at next start");
        }
    }

    fn unlink_and_forget(&self, dead: &[BlobId]) -> StoreResult<()> {
        for id in dead {
            match fs::remove_file(self.layout.blob_path(*id)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        let mut txn = self.db.begin_write()?;
        // Losing this commit in a crash only means the unlink is replayed.
        txn.set_durability(Durability::None);
        {
            let mut table = txn.open_table(DEAD_BLOBS)?;
            for id in dead {
                table.remove(*id)?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    fn unlink_dead_blobs(&self) -> StoreResult<()> {
        let dead: Vec<BlobId> = {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(DEAD_BLOBS)?;
            let ids: Result<Vec<_>, _> = table.iter()?.map(|e| e.map(|(k, _)| k.value())).collect();
            ids?
        };
        self.unlink_and_forget(&dead)
    }

    /// Whether any record references the blob (for the orphan sweep).
    fn blob_is_referenced(&self, id: BlobId) -> StoreResult<bool> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(BLOB_REFS)?.get(id)?.is_some())
    }

    /// Number of referenced blobs, for tests and diagnostics.
    pub fn referenced_blob_count(&self) -> StoreResult<u64> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(BLOB_REFS)?.len()?)
    }
}

fn require_bucket(txn: &WriteTransaction, bucket: &str) -> StoreResult<()> {
    match txn.open_table(BUCKETS)?.get(bucket)? {
        Some(_) => Ok(()),
        None => Err(StoreError::NoSuchBucket),
    }
}

fn read_object(txn: &WriteTransaction, bucket: &str, key: &str) -> StoreResult<Option<ObjectRecord>> {
    let objects = txn.open_table(OBJECTS)?;
    let value = objects.get(object_key(bucket, key.as_bytes()).as_slice())?;
    Ok(match value {
        Some(v) => Some(decode(v.value())?),
        None => None,
    })
}

/// Counts one more reference to each span's blob.
fn add_refs(txn: &WriteTransaction, spans: &[BlobSpan]) -> StoreResult<()> {
    let mut refs = txn.open_table(BLOB_REFS)?;
    for span in spans.iter().filter(|s| s.has_file()) {
        let count = refs.get(span.id)?.map(|v| v.value()).unwrap_or(0);
        refs.insert(span.id, count + 1)?;
    }
    Ok(())
}

/// Writes (or removes, with `None`) the object row and drops the references of
/// the version it replaces. Returns blobs no longer referenced, already
/// recorded in the dead-blob table of this transaction.
fn replace_object(
    txn: &WriteTransaction,
    bucket: &str,
    key: &str,
    record: Option<&ObjectRecord>,
    previous: Option<ObjectRecord>,
) -> StoreResult<Vec<BlobId>> {
    let row = object_key(bucket, key.as_bytes());
    {
        let mut objects = txn.open_table(OBJECTS)?;
        match record {
            Some(r) => objects.insert(row.as_slice(), encode(r)?.as_slice())?,
            None => objects.remove(row.as_slice())?,
        };
    }
    drop_refs(txn, &previous.map(|p| p.blobs).unwrap_or_default())
}

/// Drops one reference to each span's blob; returns the blobs now unreferenced,
/// recorded in the dead-blob table of this transaction.
fn drop_refs(txn: &WriteTransaction, spans: &[BlobSpan]) -> StoreResult<Vec<BlobId>> {
    let mut dead = Vec::new();
    let mut refs = txn.open_table(BLOB_REFS)?;
    let mut dead_table = txn.open_table(DEAD_BLOBS)?;
    for span in spans.iter().filter(|s| s.has_file()) {
        let count = refs.get(span.id)?.map(|v| v.value()).unwrap_or(0);
        if count > 1 {
            refs.insert(span.id, count - 1)?;
        } else {
            refs.remove(span.id)?;
            dead_table.insert(span.id, ())?;
            dead.push(span.id);
        }
    }
    Ok(dead)
}
