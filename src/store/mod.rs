//! The metadata store and blob files: the only API handlers see.
//!
//! Every method is one logical transaction and is blocking: handlers call them
//! through [`Store::run`], which moves the work off the reactor. Writes go
//! through the group committer (`commit.rs`): concurrent writes share one
//! redb commit. redb is used nowhere else in the crate, so another backend can
//! replace this module.

#![cfg_attr(
    not(feature = "postgres"),
    allow(irrefutable_let_patterns, reason = "without PostgreSQL, redb is the only `Meta`")
)]

mod backend;
mod backup;
pub mod blob;
mod content;
mod error;
mod redb_meta;
use backend::Meta;
pub use backup::{BackupError, BackupReport};
use commit_mark::CommitMark;
pub use error::{Chain, OpenError, StoreError, StoreResult};
#[cfg(test)]
use redb_meta::faults;
pub use redb_meta::{backup_offline, pack};
use redb_meta::{commit, commit_mark, dbslot};
pub mod digest;
pub(crate) mod gc;
mod hasher;
pub mod instant;
pub use gc::{spawn_lifecycle_reaper, spawn_upload_reaper};
pub use hasher::{spawn_content_hasher, Indexed};
pub use scrub::spawn_scrubber;
pub mod layout;
mod lifecycle;
pub use lifecycle::ExpiryReport;
mod list;
mod meta;
use meta::MetaTxn;
pub mod md5_lanes;
mod multipart;
pub mod read;
pub mod schema;
pub mod scrub;
// PostgreSQL metadata shared by several gateways (issue 17, docs/scale-out.md).
pub mod pg;
mod space;
pub mod stats;
pub use stats::Stats;
mod txn;
mod version_list;
pub use version_list::{VersionEntry, VersionPage, VersionQuery};
pub mod users;
pub mod versions;

pub use content::HeldContent;
pub use versions::{Deleted, VersionId};

use std::fs;
use std::path::Path;
use std::sync::Arc;

use redb::ReadableTable;

use blob::{NewBlob, PublishedFile, StagedBlob};
use commit::Committer;
pub use commit::{CommitMetrics, Settled, WriteError};
use layout::{BlobId, Layout};
pub use list::{ListEntry, ListPage, ListQuery};
pub use multipart::{PartPage, UploadEntry, UploadPage, UploadQuery, UPLOAD_ID_LEN};
use schema::{object_key, BlobSpan, BucketRecord, ObjectRecord, BLOB_REFS, DEAD_BLOBS};
use space::Space;
use txn::{add_refs, read_object, require_bucket, store_new_blob, Holder, NewBlobFate};
use versions::bucket_versioning;

/// The data folder's layout at `root` (for the gateway `gateway` of
/// several sharing it), created if missing.
fn create_layout(root: &Path, gateway: Option<&str>) -> StoreResult<Layout> {
    let created = match gateway {
        Some(id) => Layout::create_for_gateway(root, id),
        None => Layout::create(root),
    };
    created.map_err(|e| StoreError::caused(format!("creating {}", root.display()), e))
}

/// Removes what a previous run of this process left in its `tmp/`: bodies
/// of writes that were never acknowledged.
fn empty_tmp(layout: &Layout) -> StoreResult<()> {
    for entry in fs::read_dir(layout.tmp_dir())? {
        fs::remove_file(entry?.path())?;
    }
    Ok(())
}

/// Milliseconds since the Unix epoch: the store's (and S3's) timestamps.
pub fn now_ms() -> i64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub struct Store {
    /// Where the metadata is, and how writes reach it (`backend.rs`).
    meta: Meta,
    layout: Layout,
    space: Arc<Space>,
    /// Closed while a backup runs: freed blob files wait (see `backup.rs`).
    unlink_gate: redb_meta::backup::UnlinkGate,
    /// When a body write was last admitted (ms): background hashing waits
    /// for the server to be idle (`hasher.rs`).
    last_write_ms: std::sync::atomic::AtomicI64,
    /// When a body was last written or a blob freed (ms): either may leave
    /// content to hash, and wakes the background hasher.
    last_change_ms: std::sync::atomic::AtomicI64,
}

impl Store {
    /// Opens (or creates) the data folder: empties `tmp/`, replays the dead-blob
    /// table, and starts the group committer and the orphan sweep.
    pub fn open(root: &Path) -> StoreResult<Arc<Store>> {
        Store::open_with(root, false)
    }

    /// [`Store::open`]; with `accept_rollback`, a database found behind the
    /// commits already acknowledged (see `commit_mark.rs`) is served anyway.
    pub fn open_with(root: &Path, accept_rollback: bool) -> StoreResult<Arc<Store>> {
        if Layout::existing(root).is_shared_by_gateways() {
            return Err(StoreError::SharedFolder(root.display().to_string()));
        }
        let layout = create_layout(root, None)?;
        // The database's lock first: a second server started on this folder
        // must stop here, before it empties the first one's `tmp/`.
        let (db, db_seq) = redb_meta::open_database(&layout.db_path())?;
        empty_tmp(&layout)?;
        let space = Arc::new(Space::open(&layout)?);
        let db = Arc::new(db);
        let (mark, marked) = CommitMark::open(&layout.commit_mark_path())?;
        commit_mark::check(db_seq, marked, accept_rollback)?;
        let mark = Arc::new(mark);
        let committer = Committer::start(db.clone(), space.clone(), mark.clone())?;
        let store = Store::assemble(Meta::Redb { db, committer, mark }, layout, space);
        store.unlink_dead_blobs()?;
        gc::spawn_orphan_sweep(store.clone());
        Ok(store)
    }

    /// A store over `meta`, whichever backend it is.
    fn assemble(meta: Meta, layout: Layout, space: Arc<Space>) -> Arc<Store> {
        let (last_write_ms, last_change_ms) = (now_ms().into(), now_ms().into());
        let unlink_gate = Default::default();
        Arc::new(Store { meta, layout, space, unlink_gate, last_write_ms, last_change_ms })
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Clean shutdown: commits what is queued, stops the commit thread and
    /// closes the database, so the next start does not repair it (repairing
    /// took 1.1-1.3 s at 515 MiB). Call once no request runs any more. Blocking.
    pub fn close(&self) {
        let Meta::Redb { db, committer, mark } = &self.meta else { return };
        committer.stop();
        mark.sync();
        if db.close() {
            tracing::info!("metadata database closed cleanly");
        } else {
            tracing::warn!("a reader kept the metadata database open; the next start will check it");
        }
    }

    /// Refuses, before any byte is received, a write that adds data while
    /// the disk is full (see `space.rs`). Costs one atomic load unless full.
    /// A `small` body (announced at most `INLINE_MAX` bytes) is packed into
    /// the database, so it may still fit ([`Store::small_bodies_fit`]).
    pub async fn admit_write(self: &Arc<Self>, small: bool) -> StoreResult<()> {
        self.note_write();
        match self.space.check() {
            Ok(()) => Ok(()),
            Err(_) => self.run(move |s| s.admit(small)).await,
        }
    }

    /// [`Space::admit`], after compacting the database if deletes since the
    /// last try may have freed pages only inside it (small objects). redb
    /// gives pages back to the filesystem only from the end of its file, so
    /// deleting small objects may free room only inside the database: a small
    /// body is then admitted if the database keeps at least the reserve's
    /// size free besides (so deletes can still commit). Blocking.
    fn admit(&self, small: bool) -> StoreResult<()> {
        let refused = match self.space.admit() {
            Err(StoreError::StorageFull) if self.space.take_compaction_due() => {
                if let Meta::Redb { committer, .. } = &self.meta {
                    committer.compact();
                }
                self.space.admit()
            }
            other => other,
        };
        match refused {
            Err(StoreError::StorageFull) if small && self.small_bodies_fit()? => Ok(()),
            other => other,
        }
    }

    /// Whether small bodies still fit although the data folder is full:
    /// over redb they go into the database file's own free pages, if it
    /// keeps at least the reserve's size free besides; over PostgreSQL they
    /// are rows of a database elsewhere, and its disk is its own business.
    fn small_bodies_fit(&self) -> StoreResult<bool> {
        match &self.meta {
            Meta::Redb { .. } => Ok(self.spare_database_bytes()? >= self.space.reserve_bytes()),
            #[cfg(feature = "postgres")]
            Meta::Postgres { .. } => Ok(true),
        }
    }

    /// Bytes of the database file that are on disk but in no page in use:
    /// what redb can reuse without growing the file.
    fn spare_database_bytes(&self) -> StoreResult<u64> {
        use std::os::unix::fs::MetadataExt;
        // A write transaction only for its statistics: aborted, never committed.
        let txn = self.db()?.begin_write()?;
        let stats = txn.stats()?;
        txn.abort()?;
        let on_disk = fs::metadata(self.layout.db_path())?.blocks() * 512;
        Ok(on_disk.saturating_sub(stats.allocated_pages() * stats.page_size() as u64))
    }

    /// Runs blocking store work off the async reactor, once it has its turn
    /// (over PostgreSQL a bounded number run at once: `backend.rs`, `Turns`).
    pub async fn run<T, E, F>(self: &Arc<Self>, f: F) -> Result<T, E>
    where
        F: FnOnce(&Store) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let turn = self.turn().await?;
        let store = self.clone();
        off_reactor(move || {
            let _turn = turn;
            f(&store)
        })
        .await
    }

    /// Short store work a request waits for (a point read), done in place:
    /// redb answers from its cache, cheaper than a hand-off to a blocking
    /// thread; over PostgreSQL, once it has its turn, the worker's other
    /// tasks are handed to another thread while it waits (`block_in_place`),
    /// so the turns bound the threads that wait so.
    pub async fn lookup<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Store) -> Result<T, E>,
        E: From<StoreError>,
    {
        if self.reads_in_place() {
            return f(self);
        }
        let _turn = self.turn().await?;
        tokio::task::block_in_place(|| f(self))
    }

    /// Runs a write that adds data in the next group commit (refused on a
    /// full disk), then frees the blobs it reported dead.
    fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: Fn(&dyn MetaTxn) -> StoreResult<(T, Vec<BlobId>)> + Send + 'static,
        T: Send + 'static,
    {
        self.write_checked(move |txn| Ok(f(txn)?))
    }

    /// [`Store::write`] of a write that raises the caller's own errors
    /// (preconditions): those are rejections, the store's say what they are.
    fn write_checked<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: Fn(&dyn MetaTxn) -> Result<(T, Vec<BlobId>), WriteError<E>> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.admit(false)?;
        self.commit_freeing(f)
    }

    /// Runs a write in the next group commit, even on a full disk (deletes
    /// must work there), then frees the blobs it reported dead (their rows
    /// are already in the dead-blob table of that commit).
    fn write_freeing<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: Fn(&dyn MetaTxn) -> StoreResult<(T, Vec<BlobId>)> + Send + 'static,
        T: Send + 'static,
    {
        self.commit_freeing(move |txn| Ok(f(txn)?))
    }

    /// Free bytes of the data folder's file system (for an unprivileged writer).
    pub fn disk_free(&self) -> std::io::Result<u64> {
        self.space.free_bytes()
    }

    /// Why the store cannot take writes now, if it cannot: the database
    /// unavailable (being reopened), the data folder not writable, or the
    /// disk full. For the readiness probe; touches the disk (a probe file).
    pub fn not_ready(&self) -> Option<String> {
        if let Err(e) = self.read(|txn| txn.bucket("")) {
            return Some(format!("metadata database: {e}"));
        }
        if self.space.is_full() {
            return Some("the disk is full: writes are refused until space is freed".into());
        }
        if self.space.free_is_low() {
            let reserve = self.space.reserve_bytes();
            return Some(format!("less than {reserve} bytes free (the reserve kept for deletes)"));
        }
        let probe = self.layout.tmp_dir().join(".ready-probe");
        let written = fs::write(&probe, b"ok").and_then(|()| fs::remove_file(&probe));
        if let Err(e) = written {
            return Some(format!("data folder {} not writable: {e}", self.layout.root().display()));
        }
        None
    }

    fn commit_freeing<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: Fn(&dyn MetaTxn) -> Result<(T, Vec<BlobId>), WriteError<E>> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (value, dead) = self.commit(f)?;
        self.free_blobs(dead);
        Ok(value)
    }

    // ---- buckets ----

    pub fn create_bucket(&self, name: &str, record: &BucketRecord) -> StoreResult<()> {
        let (name, record) = (name.to_string(), record.clone());
        self.write(move |txn| {
            if let Some(existing) = txn.bucket(&name)? {
                return Err(StoreError::BucketExists(existing.owner));
            }
            txn.put_bucket(&name, &record)?;
            Ok(((), Vec::new()))
        })
    }

    pub fn bucket(&self, name: &str) -> StoreResult<BucketRecord> {
        self.read(|txn| txn.bucket(name)?.ok_or(StoreError::NoSuchBucket))
    }

    /// All buckets owned by `owner` (every bucket with `None`), sorted by name.
    pub fn list_buckets(&self, owner: Option<&str>) -> StoreResult<Vec<(String, BucketRecord)>> {
        let mut buckets = self.read(|txn| txn.buckets())?;
        buckets.retain(|(_, record)| owner.is_none_or(|owner| record.owner == owner));
        Ok(buckets)
    }

    /// Changes a bucket's record (its lifecycle, versioning or tags) in one
    /// write; `NoSuchBucket` if it does not exist.
    pub fn update_bucket<F>(&self, name: &str, change: F) -> StoreResult<()>
    where
        F: Fn(&mut BucketRecord) + Send + 'static,
    {
        let name = name.to_string();
        self.write(move |txn| {
            let mut record = txn.bucket(&name)?.ok_or(StoreError::NoSuchBucket)?;
            change(&mut record);
            txn.put_bucket(&name, &record)?;
            Ok(((), Vec::new()))
        })
    }

    /// Deletes an empty bucket. Uploads in progress do not keep it alive: they
    /// are aborted in the same transaction, as S3 does.
    pub fn delete_bucket(&self, name: &str) -> StoreResult<()> {
        let name = name.to_string();
        self.write_freeing(move |txn| {
            require_bucket(txn, &name)?;
            if txn.bucket_has_objects(&name)? {
                return Err(StoreError::BucketNotEmpty);
            }
            let mut dead = Vec::new();
            for (upload, id) in multipart::uploads_of_bucket(txn, &name)? {
                dead.extend(multipart::abort_in_txn(txn, &upload, &id)?);
            }
            txn.remove_completed_of_bucket(&name)?;
            txn.remove_bucket(&name)?;
            Ok(((), dead))
        })
    }

    // ---- objects ----

    /// The current object at `bucket/key`.
    pub fn get_object(&self, bucket: &str, key: &str) -> StoreResult<ObjectRecord> {
        self.get_version(bucket, key, None).map(|(record, _)| record)
    }

    /// The current object at `bucket/key`, or with `version` that version;
    /// with the bucket's versioning state. A delete marker (the latest
    /// version, or the one asked for) is [`StoreError::DeleteMarker`].
    pub fn get_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<VersionId>,
    ) -> StoreResult<(ObjectRecord, schema::Versioning)> {
        self.read(|txn| {
            let versioning = bucket_versioning(txn, bucket)?;
            Ok((versions::read_version(txn, (bucket, key), version)?, versioning))
        })
    }

    /// [`Store::get_version`], and with `small_body` the bytes of an object
    /// held wholly in small bodies in the database, from the same snapshot:
    /// a whole GET of a small object then reads once (over PostgreSQL, one
    /// transaction instead of two). `None` for an object with a file, an
    /// empty one or a large one; an error is what reading found (a checksum
    /// that does not match).
    pub fn get_version_reading(
        &self,
        bucket: &str,
        key: &str,
        version: Option<VersionId>,
        small_body: bool,
    ) -> StoreResult<(ObjectRecord, schema::Versioning, Option<std::io::Result<bytes::Bytes>>)> {
        self.read_with_blobs(|txn, blobs| {
            let versioning = bucket_versioning(txn, bucket)?;
            let record = versions::read_version(txn, (bucket, key), version)?;
            let body = small_body.then(|| self.small_body(&record, blobs)).flatten();
            Ok((record, versioning, body))
        })
    }

    /// The bytes of `record` if they are all small bodies (inline spans)
    /// and few enough to read at once.
    fn small_body(&self, record: &ObjectRecord, blobs: &dyn read::BlobSource) -> Option<std::io::Result<bytes::Bytes>> {
        if record.size == 0 || !record.blobs.iter().all(|span| span.inline) {
            return None;
        }
        match read::open(&self.layout, &record.blobs, 0..record.size, blobs) {
            Ok(opened) => opened.read_small(),
            Err(e) => Some(Err(e)),
        }
    }

    /// Changes a version of an object (the current one without `version`)
    /// in place, as tagging does: no new version is made. A delete marker
    /// cannot be changed (`StoreError::DeleteMarker`). Returns the record
    /// as changed.
    pub fn update_object<E, F>(
        &self,
        bucket: &str,
        key: &str,
        version: Option<VersionId>,
        change: F,
    ) -> Result<ObjectRecord, E>
    where
        E: From<StoreError> + Send + 'static,
        F: Fn(&mut ObjectRecord) -> Result<(), E> + Send + 'static,
    {
        let (bucket, key) = (bucket.to_string(), key.to_string());
        self.write_checked(move |txn| {
            require_bucket(txn, &bucket)?;
            Ok((versions::update_version(txn, (&bucket, &key), version, &change)?, Vec::new()))
        })
    }

    /// PutObject's one entry: publishes `staged` (a file is renamed into
    /// `blobs/` and the rename made durable, a small body is packed by the
    /// commit), points `record` at it and commits it as the object at
    /// `bucket/key`, replacing (and freeing) any previous version. `check`
    /// sees the current version inside the same transaction, so conditional
    /// writes (`If-None-Match: *`) are atomic. A published file that does
    /// not end up committed is removed, on every path: a failed commit, a
    /// failed publish, a request dropped at any await (see `PublishedFile`);
    /// only a commit in doubt (its fsync failed, `commit.rs`) keeps it, since
    /// the database may reference it.
    ///
    /// Blobs the write frees are unlinked in the background.
    pub async fn write_object<E, C>(
        self: &Arc<Self>,
        (bucket, key): (&str, &str),
        mut record: ObjectRecord,
        staged: StagedBlob,
        check: C,
    ) -> Result<ObjectRecord, E>
    where
        E: From<StoreError> + Send + 'static,
        C: Fn(Option<&ObjectRecord>) -> Result<(), E> + Send + 'static,
    {
        let (span, new_blob, file) = self.publish(staged).await?;
        record.blobs = if span.has_blob() { vec![span] } else { Vec::new() };
        let (bucket, key) = (bucket.to_string(), key.to_string());
        let txn = move |txn: &dyn MetaTxn| -> Result<WithNewBlob<ObjectRecord>, WriteError<E>> {
            let versioning = bucket_versioning(txn, &bucket)?;
            let current = read_object(txn, &bucket, &key)?;
            check(current.as_ref()).map_err(WriteError::Rejected)?;
            let mut record = record.clone();
            let fate = store_new_blob(txn, new_blob.clone(), &mut record.blobs)?;
            add_refs(txn, &record.blobs, Holder::OfObject { bucket: &bucket, owner: record.owner.as_deref() })?;
            let dead = versions::put_current(txn, (&bucket, &key), &mut record, current, versioning)?;
            Ok(((record, fate), dead))
        };
        let ((record, _), _) = self.commit_async(txn, self.settle(file)).await?;
        Ok(record)
    }

    /// Publishes a staged body (`StagedBlob::publish`), on a blocking thread
    /// if it is a file. A new file is refused while the disk is full (the
    /// body was admitted before full mode began); a small body was admitted
    /// by [`Store::admit_write`] and fails at its commit if it cannot fit.
    async fn publish(self: &Arc<Self>, staged: StagedBlob) -> StoreResult<(BlobSpan, Option<NewBlob>, PublishedFile)> {
        match staged.is_in_memory() {
            true => Ok(staged.publish()?),
            false => {
                self.space.check()?;
                // File system work only: no turn (those are for the database).
                off_reactor(move || Ok(staged.publish()?)).await
            }
        }
    }

    /// What follows a write's commit, run by the commit thread even if the
    /// request is gone: if it committed, its published file stays and the
    /// blobs it freed are unlinked (on a blocking thread); if it was rolled
    /// back, the file is removed (the guard's drop). A commit in doubt keeps
    /// the file and frees nothing: the next start's sweeps settle it (the
    /// orphan sweep removes the file if the commit is not there, the
    /// dead-blob replay unlinks what it freed if it is). Call from within
    /// the runtime.
    /// A body whose content was held already (`NewBlobFate::Shared`) is
    /// referenced by no one: its file goes as if rolled back.
    fn settle<T>(self: &Arc<Self>, file: PublishedFile) -> impl FnOnce(Settled<&WithNewBlob<T>>) + Send + 'static {
        let (store, runtime) = (self.clone(), tokio::runtime::Handle::try_current());
        move |end| match end {
            Settled::Committed(((_, fate), dead)) => {
                match fate {
                    NewBlobFate::Stored => {
                        file.keep();
                        // Other gateways' hashers learn of it through this one's claim (`pg/gateway.rs`).
                        store.note_change();
                    }
                    NewBlobFate::Shared => drop(file),
                }
                let dead = dead.clone();
                match (dead.is_empty(), runtime) {
                    (true, _) => {}
                    (false, Ok(runtime)) => drop(runtime.spawn_blocking(move || store.free_blobs(dead))),
                    (false, Err(_)) => store.free_blobs(dead),
                }
            }
            Settled::InDoubt => {
                file.keep();
                store.note_change();
            }
            Settled::RolledBack => drop(file),
        }
    }

    /// Deletes an object (its latest version: see [`Store::delete_objects_checked`]);
    /// deleting a missing key succeeds, as in S3.
    pub fn delete_object(&self, bucket: &str, key: &str) -> StoreResult<Deleted> {
        let mut outcomes = self.delete_objects(bucket, vec![(key.to_string(), None)])?;
        outcomes.pop().unwrap_or(Ok(Deleted { version_id: None, delete_marker: false }))
    }

    /// Deletes keys of one bucket in one transaction (DeleteObjects).
    pub fn delete_objects(
        &self,
        bucket: &str,
        keys: Vec<(String, Option<VersionId>)>,
    ) -> StoreResult<Vec<StoreResult<Deleted>>> {
        self.delete_objects_checked::<StoreError, _>(bucket, keys, |_, _| Ok(()))
    }

    /// Deletes keys of one bucket in one transaction, each only if `check`
    /// (given the key's index and the record it would delete: the current
    /// object, or the version named; `None` if absent) allows it:
    /// conditional deletes are atomic with the delete. Without a version id,
    /// a bucket with versioning gets a delete marker (`versions.rs`); with
    /// one, that version is removed for good. Returns each key's outcome in
    /// order; a refused key is left as it is.
    pub fn delete_objects_checked<E, C>(
        &self,
        bucket: &str,
        keys: Vec<(String, Option<VersionId>)>,
        check: C,
    ) -> Result<Vec<Result<Deleted, E>>, E>
    where
        E: From<StoreError> + Send + 'static,
        C: Fn(usize, Option<&ObjectRecord>) -> Result<(), E> + Send + 'static,
    {
        let bucket = bucket.to_string();
        self.commit_freeing(move |txn| {
            let versioning = bucket_versioning(txn, &bucket)?;
            let (mut dead, mut outcomes) = (Vec::new(), Vec::with_capacity(keys.len()));
            for (i, (key, version)) in keys.iter().enumerate() {
                let current = read_object(txn, &bucket, key)?;
                let target = match (version, &current) {
                    (None, _) => current.clone(),
                    (Some(id), Some(c)) if VersionId::of(&c.version) == *id => current.clone(),
                    (Some(id), _) => {
                        let row = object_key(&bucket, key.as_bytes());
                        versions::noncurrent(txn, &row, *id)?
                    }
                };
                if let Err(refused) = check(i, target.as_ref()) {
                    outcomes.push(Err(refused));
                    continue;
                }
                let (deleted, freed) = match version {
                    None => versions::delete_latest(txn, (&bucket, key), current, versioning)?,
                    Some(id) => versions::delete_version(txn, (&bucket, key), current, *id)?,
                };
                if read_object(txn, &bucket, key)?.is_none() {
                    multipart::forget_completed_key(txn, &bucket, key)?;
                }
                dead.extend(freed);
                outcomes.push(Ok(deleted));
            }
            Ok((outcomes, dead))
        })
    }

    /// Copies an object by sharing its blobs (no bytes are copied). `make`
    /// builds the destination record from the source inside the transaction,
    /// so `x-amz-copy-source-if-*` checks see exactly what is copied.
    /// `src` names a version of the source (its current object without one).
    pub fn copy_object<E, M>(
        &self,
        src: (&str, &str, Option<VersionId>),
        dst: (&str, &str),
        make: M,
    ) -> Result<(ObjectRecord, ObjectRecord), E>
    where
        E: From<StoreError> + Send + 'static,
        M: Fn(&ObjectRecord) -> Result<ObjectRecord, E> + Send + 'static,
    {
        let (src_bucket, src_key, src_version) = (src.0.to_string(), src.1.to_string(), src.2);
        let (dst_bucket, dst_key) = (dst.0.to_string(), dst.1.to_string());
        self.write_checked(move |txn| {
            require_bucket(txn, &src_bucket)?;
            let versioning = bucket_versioning(txn, &dst_bucket)?;
            let source = versions::read_version(txn, (&src_bucket, &src_key), src_version)?;
            let mut record = make(&source).map_err(WriteError::Rejected)?;
            add_refs(txn, &record.blobs, Holder::OfObject { bucket: &dst_bucket, owner: record.owner.as_deref() })?;
            let current = read_object(txn, &dst_bucket, &dst_key)?;
            let dead = versions::put_current(txn, (&dst_bucket, &dst_key), &mut record, current, versioning)?;
            Ok(((source, record), dead))
        })
    }

    /// Opens the bytes `range` of an object made of `spans` (see `read.rs`).
    pub fn open_range(&self, spans: &[BlobSpan], range: std::ops::Range<u64>) -> Result<read::OpenObject, OpenError> {
        let opened = self.with_blob_source(|source| read::open(&self.layout, spans, range.clone(), source));
        opened.map_err(OpenError::Store)?.map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => OpenError::Gone,
            _ => OpenError::Read(e),
        })
    }

    pub fn list_objects(&self, bucket: &str, query: &ListQuery) -> StoreResult<ListPage> {
        self.read(|txn| {
            require_bucket(txn, bucket)?;
            list::list(txn, bucket, query)
        })
    }

    /// ListObjectVersions: one page of the versions of `bucket`.
    pub fn list_versions(&self, bucket: &str, query: &VersionQuery) -> StoreResult<VersionPage> {
        self.read(|txn| {
            require_bucket(txn, bucket)?;
            version_list::list_versions(txn, bucket, query)
        })
    }

    // ---- blob garbage ----

    /// Unlinks blob files that a committed transaction recorded as dead; their
    /// rows leave the dead-blob table in a later commit. A crash in between is
    /// harmless: start-up replays the table.
    fn free_blobs(&self, dead: Vec<BlobId>) {
        if !dead.is_empty() {
            self.note_change();
        }
        if self.shares_blobs() {
            return;
        }
        // During a backup the rows stay; its end replays the table.
        if dead.is_empty() || !self.unlink_gate.open() {
            return;
        }
        for id in &dead {
            match fs::remove_file(self.layout.blob_path(*id)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    tracing::warn!(error = %e, "unlinking a freed blob failed; retried at next start");
                    return;
                }
                _ => {}
            }
        }
        if let Meta::Redb { committer, .. } = &self.meta {
            committer.forget(dead);
        }
    }

    fn unlink_dead_blobs(&self) -> StoreResult<()> {
        let dead: Vec<BlobId> = {
            let txn = self.db()?.begin_read()?;
            let table = txn.open_table(DEAD_BLOBS)?;
            let ids: Result<Vec<_>, _> = table.iter()?.map(|e| e.map(|(k, _)| k.value())).collect();
            ids?
        };
        self.free_blobs(dead);
        Ok(())
    }

    /// Whether any record references the blob (for the orphan sweep).
    fn blob_is_referenced(&self, id: BlobId) -> StoreResult<bool> {
        let txn = self.db()?.begin_read()?;
        Ok(txn.open_table(BLOB_REFS)?.get(id)?.is_some())
    }
}

/// What a write that may store a new blob commits: its result, the new
/// blob's fate, and the blobs it freed.
type WithNewBlob<T> = ((T, NewBlobFate), Vec<BlobId>);

#[cfg(test)]
#[path = "write_tests.rs"]
mod write_tests;

#[cfg(test)]
mod test_support;

#[cfg(test)]
#[path = "model_tests.rs"]
mod model_tests;

#[cfg(test)]
#[path = "versions_tests.rs"]
mod versions_tests;

/// Runs blocking work on tokio's blocking threads; a job that panicked is
/// the store's error.
async fn off_reactor<T, E, F>(f: F) -> Result<T, E>
where
    F: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) => Err(StoreError::caused("store thread", e).into()),
    }
}
