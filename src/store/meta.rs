//! The boundary between the S3 semantics of the store and the database
//! that keeps its records.
//!
//! The rules of writes (versions, reference counts, the unique-file table,
//! multipart uploads) are written once, against [`MetaTxn`]: the table
//! operations one write transaction makes. The embedded backend implements
//! it over a redb write transaction (`redb_meta/txn.rs`); a backend over a
//! shared SQL database (issue 17) implements the same operations, so the
//! rules and their tests are shared. Rules take `&dyn MetaTxn`, so one
//! store callback serves every backend (a closure cannot be generic); an
//! indirect call is small next to the table operation it makes.
//!
//! Reads ([`MetaRead`]) are implemented by a write transaction and by a
//! read-only snapshot alike, so a rule that only looks (the lookup of a
//! version, the held content of an instant upload) is written once for
//! both. Every method runs inside the caller's transaction and commits
//! nothing.
//! Records cross the boundary decoded; keys are the byte strings of
//! `schema.rs` (an object's row is `schema::object_key`), whose byte order
//! is the listing order on every backend.

use std::ops::Bound;

use super::layout::BlobId;
use super::schema::{decode, BlobSpan, BucketRecord, CompletedUpload, ObjectRecord, PartRecord, UploadRecord};
use super::users::UserRecord;
use super::StoreResult;

/// Sees one row of a scan (its key and encoded record); false stops it.
pub(crate) type RowVisitor<'v> = dyn FnMut(&[u8], &[u8]) -> StoreResult<bool> + 'v;

/// Sees one version of a key (its inverted sequence number and encoded
/// record); false stops the scan.
pub(crate) type VersionVisitor<'v> = dyn FnMut(u64, &[u8]) -> StoreResult<bool> + 'v;

/// Sees one upload (its key, id and encoded record); false stops the scan.
pub(crate) type UploadVisitor<'v> = dyn FnMut(&[u8], &str, &[u8]) -> StoreResult<bool> + 'v;

/// Where a scan of a bucket's uploads starts (keys without the bucket).
#[derive(Debug, Clone, Copy)]
pub(crate) enum UploadStart<'a> {
    /// At the first upload of the first key at or after this one.
    AtKey(&'a [u8]),
    /// After every upload of this key.
    AfterKey(&'a [u8]),
    /// After this upload of this key.
    AfterUpload(&'a [u8], &'a str),
}

/// The lookups of one transaction, read-only or not.
pub(crate) trait MetaRead {
    fn bucket(&self, name: &str) -> StoreResult<Option<BucketRecord>>;
    /// Every bucket, by name (in byte order).
    fn buckets(&self) -> StoreResult<Vec<(String, BucketRecord)>>;
    /// Whether the bucket has a current object or a version of one.
    fn bucket_has_objects(&self, bucket: &str) -> StoreResult<bool>;
    /// The current object of a key.
    fn object(&self, row: &[u8]) -> StoreResult<Option<ObjectRecord>>;
    /// Visits the current objects of `bucket` whose keys are in
    /// `start..end` (`end` exclusive; `None`: to the bucket's end), in key
    /// byte order, with each key and encoded record, until `visit` returns
    /// false. `hint`: how many the caller expects to take (a backend that
    /// fetches in batches fetches that many first).
    fn scan_objects(
        &self,
        bucket: &str,
        start: Bound<&[u8]>,
        end: Option<&[u8]>,
        hint: usize,
        visit: &mut RowVisitor,
    ) -> StoreResult<()>;
    /// A noncurrent version (or delete marker), by inverted sequence number.
    fn version(&self, row: &[u8], inverted_seq: u64) -> StoreResult<Option<ObjectRecord>>;
    /// Visits the noncurrent versions (and delete markers) of the key
    /// `row`, newest first, from inverted sequence number `from` on, with
    /// each one's number and encoded record, until `visit` returns false.
    fn scan_versions(&self, row: &[u8], from: u64, visit: &mut VersionVisitor) -> StoreResult<()>;
    /// The smallest key at or after `from` with a noncurrent version in `bucket`.
    fn next_versioned_key(&self, bucket: &str, from: &[u8]) -> StoreResult<Option<Vec<u8>>>;
    /// The first noncurrent version of a key, newest first, that `wanted`
    /// accepts, with its inverted sequence number.
    fn find_version(
        &self,
        row: &[u8],
        wanted: &mut dyn FnMut(&ObjectRecord) -> bool,
    ) -> StoreResult<Option<(u64, ObjectRecord)>> {
        let mut found = None;
        self.scan_versions(row, 0, &mut |inverted_seq, value| {
            let record: ObjectRecord = decode(value)?;
            match wanted(&record) {
                true => {
                    found = Some((inverted_seq, record));
                    Ok(false)
                }
                false => Ok(true),
            }
        })?;
        Ok(found)
    }
    /// How many records reference the blob (0 if none).
    fn blob_refs(&self, id: BlobId) -> StoreResult<u64>;
    /// At most `limit` referenced blobs stored as files (not packed, not
    /// in the database) with ids above `after`, in id order.
    fn blob_files_after(&self, after: BlobId, limit: usize) -> StoreResult<Vec<BlobId>>;
    fn content_row(&self, key: &[u8; 40]) -> StoreResult<Option<Vec<u8>>>;
    /// Which content a blob is indexed under (and, merged, into which blob).
    fn blob_content(&self, id: BlobId) -> StoreResult<Option<Vec<u8>>>;
    /// How many references to the blob `owner` holds.
    fn holder_refs(&self, id: BlobId, owner: &str) -> StoreResult<u64>;
    fn upload(&self, id: &str) -> StoreResult<Option<UploadRecord>>;
    /// At most `limit` parts of an upload numbered above `after`, in
    /// part-number order.
    fn parts_after(&self, upload_id: &str, after: u16, limit: usize) -> StoreResult<Vec<(u16, PartRecord)>>;
    /// Every part of an upload, in part-number order.
    fn parts(&self, upload_id: &str) -> StoreResult<Vec<(u16, PartRecord)>> {
        self.parts_after(upload_id, 0, usize::MAX)
    }
    /// Visits the uploads of `bucket` from `start` on, in key then upload
    /// id order, with each key, id and encoded record, until `visit`
    /// returns false. `hint` as in [`MetaRead::scan_objects`].
    fn scan_uploads(&self, bucket: &str, start: UploadStart, hint: usize, visit: &mut UploadVisitor)
        -> StoreResult<()>;
    /// Which upload created the current object of a key (`multipart.rs`).
    fn completed(&self, row: &[u8]) -> StoreResult<Option<CompletedUpload>>;
    fn user(&self, name: &str) -> StoreResult<Option<UserRecord>>;
    /// Every user, by name (in byte order).
    fn users(&self) -> StoreResult<Vec<UserRecord>>;
    /// The name of the user an access key belongs to.
    fn user_of_key(&self, access_key: &str) -> StoreResult<Option<String>>;
}

/// The table operations of one write transaction.
pub(crate) trait MetaTxn: MetaRead {
    fn put_bucket(&self, name: &str, record: &BucketRecord) -> StoreResult<()>;
    fn remove_bucket(&self, name: &str) -> StoreResult<()>;
    fn put_object(&self, row: &[u8], record: &ObjectRecord) -> StoreResult<()>;
    fn remove_object(&self, row: &[u8]) -> StoreResult<()>;
    fn put_version(&self, row: &[u8], inverted_seq: u64, record: &ObjectRecord) -> StoreResult<()>;
    fn remove_version(&self, row: &[u8], inverted_seq: u64) -> StoreResult<()>;
    /// The next number of the counter that orders versions (from 1).
    fn next_version_seq(&self) -> StoreResult<u64>;
    /// Sets the count; 0 removes the row.
    fn set_blob_refs(&self, id: BlobId, count: u64) -> StoreResult<()>;
    /// The block checksums of a new blob file.
    fn put_block_crcs(&self, id: BlobId, crcs: &[u8]) -> StoreResult<()>;
    /// Stores a small body in the database; returns the blob id it gets.
    fn store_small_body(&self, body: &[u8]) -> StoreResult<BlobId>;
    /// Frees what stores a blob that lost its last reference. A blob file
    /// is returned: the caller unlinks it once the transaction committed
    /// (it is recorded as dead in this transaction, for crash recovery).
    fn release_blob(&self, span: &BlobSpan) -> StoreResult<Option<BlobId>>;
    fn put_content_row(&self, key: &[u8; 40], row: &[u8]) -> StoreResult<()>;
    fn remove_content_row(&self, key: &[u8]) -> StoreResult<()>;
    fn put_blob_content(&self, id: BlobId, value: &[u8]) -> StoreResult<()>;
    fn remove_blob_content(&self, id: BlobId) -> StoreResult<Option<Vec<u8>>>;
    /// Sets the count; 0 removes the row.
    fn set_holder_refs(&self, id: BlobId, owner: &str, count: u64) -> StoreResult<()>;
    /// Removes every holder row of the blob.
    fn forget_holders(&self, id: BlobId) -> StoreResult<()>;
    /// Stores an upload and its row in the per-key index.
    fn put_upload(&self, id: &str, record: &UploadRecord) -> StoreResult<()>;
    /// Removes an upload and its index row (its parts stay).
    fn remove_upload(&self, id: &str, record: &UploadRecord) -> StoreResult<()>;
    /// Stores a part; returns the part of that number it replaced.
    fn put_part(&self, upload_id: &str, number: u16, part: &PartRecord) -> StoreResult<Option<PartRecord>>;
    fn remove_parts(&self, upload_id: &str) -> StoreResult<()>;
    fn put_completed(&self, row: &[u8], completed: &CompletedUpload) -> StoreResult<()>;
    fn remove_completed(&self, row: &[u8]) -> StoreResult<()>;
    fn remove_completed_of_bucket(&self, bucket: &str) -> StoreResult<()>;
    /// Stores a user and the row from its access key to its name.
    fn put_user(&self, user: &UserRecord) -> StoreResult<()>;
    /// Removes a user and its access key's row.
    fn remove_user(&self, user: &UserRecord) -> StoreResult<()>;
}
