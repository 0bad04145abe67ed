//! Multipart uploads in the store: uploads and their parts are rows; a part's
//! bytes are one blob. Complete moves the chosen parts' blobs into the object
//! record (no byte is copied, O(parts)); unused parts, aborted uploads and
//! replaced parts drop their blob references in the same transaction.

use std::collections::HashSet;
use std::sync::Arc;

use super::blob::{NewBlob, StagedBlob};
use super::list::{common_prefix, prefix_successor, Rollup};
use super::meta::{MetaRead, MetaTxn, UploadStart};
use super::schema::{decode, object_key, BlobSpan, CompletedUpload, ObjectRecord, PartRecord, UploadRecord};
use super::txn::{add_refs, drop_refs, read_object, require_bucket, store_new_blob, Holder, NewBlobFate};
use super::{Store, StoreError, StoreResult, WriteError};
use crate::store::layout::BlobId;

/// Length of every upload id (`http::params::UPLOAD_ID_LEN`; the store only
/// splits index keys with it).
pub const UPLOAD_ID_LEN: usize = 32;

pub struct UploadQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub key_marker: String,
    pub upload_id_marker: Option<String>,
    pub max: usize,
}

pub enum UploadEntry {
    Upload { key: String, upload_id: String, record: Box<UploadRecord> },
    CommonPrefix(String),
}

pub struct UploadPage {
    pub entries: Vec<UploadEntry>,
    pub truncated: bool,
}

pub struct PartPage {
    pub upload: UploadRecord,
    pub parts: Vec<(u16, PartRecord)>,
    pub truncated: bool,
}

impl Store {
    pub fn create_upload(&self, upload_id: &str, record: &UploadRecord) -> StoreResult<()> {
        let (id, record) = (upload_id.to_string(), record.clone());
        self.write(move |txn| {
            require_bucket(txn, &record.bucket)?;
            txn.put_upload(&id, &record)?;
            Ok(((), Vec::new()))
        })
    }

    /// The upload, if it exists and belongs to `bucket/key`.
    pub fn upload(&self, bucket: &str, key: &str, upload_id: &str) -> StoreResult<UploadRecord> {
        self.read(|txn| upload_in_txn(txn, bucket, key, upload_id))
    }

    /// UploadPart's (and UploadPartCopy's) one entry: publishes `staged`
    /// and records it as part `number` of the upload, replacing (and
    /// freeing) an earlier upload of the same number. `NoSuchUpload` if the
    /// upload was completed or aborted meanwhile. A published file that does
    /// not end up committed is removed, as in [`Store::write_object`].
    pub async fn write_part(
        self: &Arc<Self>,
        (bucket, key, upload_id): (&str, &str, &str),
        number: u16,
        staged: StagedBlob,
        last_modified_ms: i64,
    ) -> StoreResult<PartRecord> {
        let (md5, checksum) = (staged.digests.md5, staged.digests.checksum.clone());
        let (mut span, new_blob, file) = self.publish(staged).await?;
        span.part = number;
        let part = PartRecord { span, md5, last_modified_ms, checksum };
        let (bucket, key, id) = (bucket.to_string(), key.to_string(), upload_id.to_string());
        let txn = move |txn: &dyn MetaTxn| {
            record_part(txn, (&bucket, &key, &id), number, part.clone(), new_blob.clone())
                .map_err(WriteError::<StoreError>::from)
        };
        let ((part, _), _) = self.commit_async(txn, self.settle(file)).await?;
        Ok(part)
    }

    /// Parts after `after`, at most `max`, in part-number order.
    pub fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        after: u16,
        max: usize,
    ) -> StoreResult<PartPage> {
        self.read(|txn| {
            let upload = upload_in_txn(txn, bucket, key, upload_id)?;
            let mut parts = txn.parts_after(upload_id, after, max.saturating_add(1))?;
            let truncated = parts.len() > max;
            parts.truncate(max);
            Ok(PartPage { upload, parts, truncated })
        })
    }

    /// Completes an upload: `build` turns the upload and all its parts into the
    /// object record (whose spans must be parts of this upload); `check` sees
    /// the current object, for conditional writes. One transaction.
    pub fn complete_upload<E, B, C>(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        build: B,
        check: C,
    ) -> Result<ObjectRecord, E>
    where
        E: From<StoreError> + Send + 'static,
        B: Fn(&UploadRecord, &[(u16, PartRecord)]) -> Result<ObjectRecord, E> + Send + 'static,
        C: Fn(Option<&ObjectRecord>) -> Result<(), E> + Send + 'static,
    {
        let (bucket, key, id) = (bucket.to_string(), key.to_string(), upload_id.to_string());
        self.write_checked(move |txn| {
            let upload = upload_in_txn(txn, &bucket, &key, &id)?;
            let versioning = super::versions::bucket_versioning(txn, &bucket)?;
            let parts = txn.parts(&id)?;
            let mut record = build(&upload, &parts).map_err(WriteError::Rejected)?;
            let current = read_object(txn, &bucket, &key)?;
            check(current.as_ref()).map_err(WriteError::Rejected)?;
            // Nothing changed so far; from here on, only storage errors.
            // The object inherits the used parts' references; the rest are dropped.
            let used: HashSet<BlobId> = record.blobs.iter().map(|s| s.id).collect();
            let unused: Vec<BlobSpan> = parts.iter().map(|(_, p)| p.span).filter(|s| !used.contains(&s.id)).collect();
            let mut dead = drop_refs(txn, &unused, Holder::Id(&upload.owner))?;
            txn.remove_parts(&id)?;
            txn.remove_upload(&id, &upload)?;
            dead.extend(super::versions::put_current(txn, (&bucket, &key), &mut record, current, versioning)?);
            remember_completed(txn, &bucket, &key, &id, &record)?;
            Ok((record, dead))
        })
    }

    /// The object a finished upload created, if it is still the current
    /// object at `bucket/key`: what a repeated Complete answers with. Read
    /// inside a write, so that the answer is durable: the batch's commit also
    /// makes durable a Complete whose own commit was in doubt (`commit.rs`),
    /// which a retry must not acknowledge before that.
    pub fn completed_upload(&self, bucket: &str, key: &str, upload_id: &str) -> StoreResult<Option<ObjectRecord>> {
        let (bucket, key, id) = (bucket.to_string(), key.to_string(), upload_id.to_string());
        self.commit(move |txn| -> Result<_, WriteError<StoreError>> { Ok(completed_by(txn, &bucket, &key, &id)?) })
    }

    /// Aborts an upload and frees every part.
    pub fn abort_upload(&self, bucket: &str, key: &str, upload_id: &str) -> StoreResult<()> {
        let (bucket, key, id) = (bucket.to_string(), key.to_string(), upload_id.to_string());
        self.write_freeing(move |txn| {
            let upload = upload_in_txn(txn, &bucket, &key, &id)?;
            Ok(((), abort_in_txn(txn, &upload, &id)?))
        })
    }

    /// Uploads of a bucket in key order, then upload-id (initiation) order.
    pub fn list_uploads(&self, bucket: &str, q: &UploadQuery) -> StoreResult<UploadPage> {
        self.read(|txn| {
            require_bucket(txn, bucket)?;
            list_uploads_in(txn, bucket, q)
        })
    }

    /// Uploads to abort at `now_ms`: older than `max_age_ms`, or than the
    /// `AbortIncompleteMultipartUpload` rule of their bucket that matches
    /// their key. Returned as (bucket, key, upload id).
    pub fn expired_uploads(&self, now_ms: i64, max_age_ms: i64) -> StoreResult<Vec<(String, String, String)>> {
        const DAY_MS: i64 = 24 * 3600 * 1000;
        self.read(|txn| {
            let mut out = Vec::new();
            for (bucket, record) in txn.buckets()? {
                let rules = record.lifecycle.map(|l| l.abort_rules).unwrap_or_default();
                txn.scan_uploads(&bucket, UploadStart::AtKey(b""), usize::MAX, &mut |_, id, value| {
                    let upload: UploadRecord = decode(value)?;
                    let rule_age = rules
                        .iter()
                        .filter(|r| upload.key.starts_with(&r.prefix))
                        .map(|r| i64::from(r.days_after_initiation) * DAY_MS)
                        .min();
                    let limit = rule_age.map_or(max_age_ms, |age| age.min(max_age_ms));
                    if now_ms - upload.initiated_ms >= limit {
                        out.push((upload.bucket, upload.key, id.to_string()));
                    }
                    Ok(true)
                })?;
            }
            Ok(out)
        })
    }
}

fn upload_in_txn(txn: &dyn MetaRead, bucket: &str, key: &str, upload_id: &str) -> StoreResult<UploadRecord> {
    let record = txn.upload(upload_id)?.ok_or(StoreError::NoSuchUpload)?;
    if record.bucket != bucket || record.key != key {
        return Err(StoreError::NoSuchUpload);
    }
    Ok(record)
}

/// Removes an upload and its parts inside `txn`; returns the freed blobs.
pub(super) fn abort_in_txn(txn: &dyn MetaTxn, upload: &UploadRecord, upload_id: &str) -> StoreResult<Vec<BlobId>> {
    let parts = txn.parts(upload_id)?;
    txn.remove_parts(upload_id)?;
    txn.remove_upload(upload_id, upload)?;
    let spans: Vec<BlobSpan> = parts.into_iter().map(|(_, p)| p.span).collect();
    drop_refs(txn, &spans, Holder::Id(&upload.owner))
}

/// The object at `bucket/key` if the upload `id` created it and it is current.
fn completed_by(txn: &dyn MetaTxn, bucket: &str, key: &str, id: &str) -> StoreResult<Option<ObjectRecord>> {
    let Some(completed) = txn.completed(&object_key(bucket, key.as_bytes()))? else { return Ok(None) };
    if completed.upload_id != id {
        return Ok(None);
    }
    Ok(read_object(txn, bucket, key)?.filter(|current| completed.created(current)))
}

/// Records which upload created the object at `bucket/key` (replacing the
/// key's previous row).
fn remember_completed(
    txn: &dyn MetaTxn,
    bucket: &str,
    key: &str,
    upload_id: &str,
    record: &ObjectRecord,
) -> StoreResult<()> {
    let completed = CompletedUpload {
        upload_id: upload_id.to_string(),
        etag: record.etag.clone(),
        last_modified_ms: record.last_modified_ms,
    };
    txn.put_completed(&object_key(bucket, key.as_bytes()), &completed)
}

/// Drops the completed-upload row of a key being deleted: a repeated
/// Complete then answers NoSuchUpload, and the table holds no row per key
/// ever deleted.
pub(super) fn forget_completed_key(txn: &dyn MetaTxn, bucket: &str, key: &str) -> StoreResult<()> {
    txn.remove_completed(&object_key(bucket, key.as_bytes()))
}

/// Every upload of a bucket, in key then id order, for DeleteBucket (S3
/// deletes a bucket with uploads in progress and discards them).
pub(super) fn uploads_of_bucket(txn: &dyn MetaRead, bucket: &str) -> StoreResult<Vec<(UploadRecord, String)>> {
    let mut out = Vec::new();
    txn.scan_uploads(bucket, UploadStart::AtKey(b""), usize::MAX, &mut |_, id, value| {
        out.push((decode(value)?, id.to_string()));
        Ok(true)
    })?;
    Ok(out)
}

pub(super) fn part_number(row_key: &[u8]) -> u16 {
    match row_key {
        [.., hi, lo] => u16::from_be_bytes([*hi, *lo]),
        _ => 0,
    }
}

/// `bucket \0 key \0 upload_id` -> (key, upload_id); the id has a fixed length.
pub(super) fn split_index_key<'a>(row: &'a [u8], bucket: &str) -> Option<(&'a str, &'a str)> {
    let rest = row.get(bucket.len() + 1..)?;
    let split = rest.len().checked_sub(UPLOAD_ID_LEN + 1)?;
    let key = std::str::from_utf8(rest.get(..split)?).ok()?;
    let id = std::str::from_utf8(rest.get(split + 1..)?).ok()?;
    Some((key, id))
}

/// One page of ListMultipartUploads, from the snapshot `txn`.
fn list_uploads_in(txn: &dyn MetaRead, bucket: &str, q: &UploadQuery) -> StoreResult<UploadPage> {
    let mut page = Rollup::new(&q.prefix, q.delimiter.as_deref(), q.max);
    page.fill(|page, resume| {
        let start = resume.map_or_else(|| uploads_start(q), ScanFrom::AtKey);
        txn.scan_uploads(bucket, start.as_start(), page.hint(), &mut |key, upload_id, value| {
            let Ok(key) = std::str::from_utf8(key) else { return Ok(true) };
            let upload = || {
                let record = Box::new(decode(value)?);
                Ok(UploadEntry::Upload { key: key.to_string(), upload_id: upload_id.to_string(), record })
            };
            page.take(key, upload, UploadEntry::CommonPrefix)
        })
    })?;
    Ok(UploadPage { entries: page.entries, truncated: page.truncated })
}

/// An owned [`UploadStart`].
enum ScanFrom {
    AtKey(Vec<u8>),
    AfterKey(Vec<u8>),
    AfterUpload(Vec<u8>, String),
}

impl ScanFrom {
    fn as_start(&self) -> UploadStart<'_> {
        match self {
            ScanFrom::AtKey(key) => UploadStart::AtKey(key),
            ScanFrom::AfterKey(key) => UploadStart::AfterKey(key),
            ScanFrom::AfterUpload(key, id) => UploadStart::AfterUpload(key, id),
        }
    }
}

/// Start of a ListMultipartUploads scan: after `upload-id-marker` within
/// `key-marker`, or after every upload of `key-marker`, or at the prefix.
fn uploads_start(q: &UploadQuery) -> ScanFrom {
    if q.key_marker.is_empty() || q.key_marker.as_str() < q.prefix.as_str() {
        return ScanFrom::AtKey(q.prefix.as_bytes().to_vec());
    }
    if let Some(cp) = common_prefix(&q.key_marker, &q.prefix, q.delimiter.as_deref()) {
        return ScanFrom::AtKey(prefix_successor(cp.as_bytes()));
    }
    let marker = q.key_marker.as_bytes().to_vec();
    match &q.upload_id_marker {
        Some(id) => ScanFrom::AfterUpload(marker, id.clone()),
        None => ScanFrom::AfterKey(marker),
    }
}

/// Stores part `number` of an upload; returns the part as stored and the
/// blobs the part it replaces leaves unreferenced.
pub(super) fn record_part(
    txn: &dyn MetaTxn,
    (bucket, key, id): (&str, &str, &str),
    number: u16,
    mut part: PartRecord,
    new_blob: Option<NewBlob>,
) -> StoreResult<((PartRecord, NewBlobFate), Vec<BlobId>)> {
    let upload = upload_in_txn(txn, bucket, key, id)?;
    let fate = store_new_blob(txn, new_blob, std::slice::from_mut(&mut part.span))?;
    let previous = txn.put_part(id, number, &part)?;
    let holder = Holder::Id(&upload.owner);
    add_refs(txn, &[part.span], holder)?;
    let dead = drop_refs(txn, &previous.map(|p| vec![p.span]).unwrap_or_default(), holder)?;
    Ok(((part, fate), dead))
}
