//! Instant upload (秒传): a write that references content the store holds
//! already, decided from the SHA-256 and size a request declares before
//! its body, so the body is never sent (`s3/instant.rs` speaks the HTTP side).
//!
//! A hash alone is no proof of possession: the content must be held by the
//! requester, that is referenced by one of their own objects, versions or
//! upload parts (`content.rs` counts holders per owner). Root may read
//! everything, so root needs no such reference. Both facts are read before
//! the answer is chosen and checked again in the transaction that adds the
//! reference, which fails over to an ordinary upload if the content was
//! freed, or its last held copy deleted, in between.

use super::content::{self, HeldContent};
use super::meta::MetaTxn;
use super::schema::{BlobSpan, ObjectRecord, PartRecord};
use super::txn::{add_refs, read_object, Holder};
use super::versions::{self, bucket_versioning};
use super::{Store, StoreError, StoreResult, WriteError};

/// Who asks for an instant upload.
#[derive(Debug, Clone, Copy)]
pub enum Requester<'a> {
    /// May read everything: any held content will do.
    Root,
    /// Must hold the content: a canonical id.
    User(&'a str),
}

impl Store {
    /// The live blob with this SHA-256 and size, if `requester` may use it.
    pub fn held_content(&self, sha256: &[u8; 32], size: u64, requester: Requester) -> StoreResult<Option<HeldContent>> {
        self.read(|txn| {
            let Some(held) = content::find_live(txn, &content::content_key(sha256, size))? else {
                return Ok(None);
            };
            let allowed = match requester {
                Requester::Root => true,
                Requester::User(id) => content::holds(txn, held.id, id)?,
            };
            Ok(allowed.then_some(held))
        })
    }

    /// Commits `record` as the object `bucket/key`, referencing the held
    /// blob `held` (as found by [`Store::held_content`]), with the write
    /// conditions of `check`. `Ok(None)` if that blob no longer holds the
    /// content for `requester`: nothing was written.
    pub fn write_object_held<E, C>(
        &self,
        (bucket, key): (&str, &str),
        mut record: ObjectRecord,
        (sha256, held): ([u8; 32], &HeldContent),
        requester: Requester,
        check: C,
    ) -> Result<Option<ObjectRecord>, E>
    where
        E: From<StoreError> + Send + 'static,
        C: Fn(Option<&ObjectRecord>) -> Result<(), E> + Send + 'static,
    {
        let (bucket, key, requester) = (bucket.to_string(), key.to_string(), requester.to_owned());
        record.blobs = vec![BlobSpan { id: held.id, size: record.size, part: 0, inline: held.inline }];
        self.write_checked(move |txn| {
            let versioning = bucket_versioning(txn, &bucket)?;
            let current = read_object(txn, &bucket, &key)?;
            check(current.as_ref()).map_err(WriteError::Rejected)?;
            let mut record = record.clone();
            if !still_held(txn, &sha256, &record.blobs[..], requester.as_deref())? {
                return Ok((None, Vec::new()));
            }
            add_refs(txn, &record.blobs, Holder::OfObject { bucket: &bucket, owner: record.owner.as_deref() })?;
            let dead = versions::put_current(txn, (&bucket, &key), &mut record, current, versioning)?;
            Ok((Some(record), dead))
        })
    }

    /// Stores part `number` of an upload as a reference to the held blob
    /// of `part.span`. `Ok(None)` if that blob no longer holds the content
    /// for `requester`: nothing was written.
    pub fn write_part_held(
        &self,
        (bucket, key, upload_id): (&str, &str, &str),
        number: u16,
        part: PartRecord,
        sha256: [u8; 32],
        requester: Requester,
    ) -> StoreResult<Option<PartRecord>> {
        let (bucket, key, id, requester) =
            (bucket.to_string(), key.to_string(), upload_id.to_string(), requester.to_owned());
        self.write(move |txn| {
            if !still_held(txn, &sha256, &[part.span], requester.as_deref())? {
                return Ok((None, Vec::new()));
            }
            let ((part, _), dead) =
                super::multipart::record_part(txn, (&bucket, &key, &id), number, part.clone(), None)?;
            Ok((Some(part), dead))
        })
    }
}

/// Whether the content `sha256` is still held by the blob of `spans`, and by
/// `requester` (a canonical id; `None` is root).
fn still_held(txn: &dyn MetaTxn, sha256: &[u8; 32], spans: &[BlobSpan], requester: Option<&str>) -> StoreResult<bool> {
    let [span] = spans else { return Ok(false) };
    let live = content::find_live(txn, &content::content_key(sha256, span.size))?;
    if live.is_none_or(|held| held.id != span.id) {
        return Ok(false);
    }
    match requester {
        None => Ok(true),
        Some(id) => content::holds(txn, span.id, id),
    }
}

impl Requester<'_> {
    /// An owned copy, for a transaction closure: `None` is root.
    fn to_owned(self) -> Option<String> {
        match self {
            Requester::Root => None,
            Requester::User(id) => Some(id.to_string()),
        }
    }
}
