//! Steps shared by write transactions: lookups and reference counting.
//! Every function here runs inside a caller's transaction and commits nothing.

use super::blob::NewBlob;
use super::content;
use super::layout::BlobId;
use super::meta::{MetaRead, MetaTxn};
use super::schema::{encode_block_crcs, object_key, BlobSpan, ObjectRecord};
use super::{StoreError, StoreResult};

pub(super) fn require_bucket(txn: &dyn MetaRead, bucket: &str) -> StoreResult<()> {
    match txn.bucket(bucket)? {
        Some(_) => Ok(()),
        None => Err(StoreError::NoSuchBucket),
    }
}

pub(super) fn read_object(txn: &dyn MetaRead, bucket: &str, key: &str) -> StoreResult<Option<ObjectRecord>> {
    txn.object(&object_key(bucket, key.as_bytes()))
}

/// Whose references a write adds or drops (`content.rs` counts them per
/// owner): an object's owner, or the initiator of an upload.
#[derive(Debug, Clone, Copy)]
pub(super) enum Holder<'a> {
    /// A canonical id (an upload's initiator).
    Id(&'a str),
    /// An object of `bucket`: its `owner`, else the bucket's owner.
    OfObject { bucket: &'a str, owner: Option<&'a str> },
}

impl Holder<'_> {
    fn resolve(self, txn: &dyn MetaTxn) -> StoreResult<String> {
        match self {
            Holder::Id(id) | Holder::OfObject { owner: Some(id), .. } => Ok(id.to_string()),
            Holder::OfObject { bucket, owner: None } => Ok(txn.bucket(bucket)?.ok_or(StoreError::NoSuchBucket)?.owner),
        }
    }
}

/// Counts `holder`'s references to the file blobs of `spans`, reading the
/// bucket's owner only if there is one.
fn count_holders(txn: &dyn MetaTxn, spans: &[BlobSpan], holder: Holder, delta: i64) -> StoreResult<()> {
    if spans.iter().any(content::is_file) {
        content::count_holders(txn, spans, &holder.resolve(txn)?, delta)?;
    }
    Ok(())
}

/// Counts one more reference to each span's blob, held by `holder`.
pub(super) fn add_refs(txn: &dyn MetaTxn, spans: &[BlobSpan], holder: Holder) -> StoreResult<()> {
    count_holders(txn, spans, holder, 1)?;
    for span in spans.iter().filter(|s| s.has_blob()) {
        txn.set_blob_refs(span.id, txn.blob_refs(span.id)? + 1)?;
    }
    Ok(())
}

/// Drops one reference of `holder` to each span's blob; returns the blobs
/// now unreferenced, recorded in the dead-blob table of this transaction.
pub(super) fn drop_refs(txn: &dyn MetaTxn, spans: &[BlobSpan], holder: Holder) -> StoreResult<Vec<BlobId>> {
    count_holders(txn, spans, holder, -1)?;
    let mut dead = Vec::new();
    for span in spans.iter().filter(|s| s.has_blob()) {
        let count = txn.blob_refs(span.id)?;
        if count > 1 {
            txn.set_blob_refs(span.id, count - 1)?;
            continue;
        }
        txn.set_blob_refs(span.id, 0)?;
        content::forget(txn, span.id)?;
        dead.extend(txn.release_blob(span)?);
    }
    Ok(dead)
}

/// Whether a new blob was stored, or its content was already held by a
/// live blob that the write references instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NewBlobFate {
    /// No new blob, or stored as a new blob.
    Stored,
    /// Held already: a published file of it is unreferenced and must go.
    Shared,
}

/// Stores what a new blob needs besides its references: a file's block
/// checksums, or a small body's bytes, appended to the pack. A packed body
/// gets its id here (its position in the pack), and `spans` naming the blob
/// by its provisional id are updated to it. A body whose content a live
/// blob holds already (the unique-file table, `content.rs`) is not stored:
/// `spans` are pointed at that blob.
pub(super) fn store_new_blob(
    txn: &dyn MetaTxn,
    blob: Option<NewBlob>,
    spans: &mut [BlobSpan],
) -> StoreResult<NewBlobFate> {
    let Some(blob) = blob else {
        return Ok(NewBlobFate::Stored);
    };
    // Packed bodies are not indexed: their rows, at random places of the
    // table, would cost a 4 KiB PUT's commit more pages (docs/architecture.md).
    let key = blob.sha256.filter(|_| blob.inline.is_none()).map(|sha| content::content_key(&sha, blob.size));
    if let Some(held) = key.map(|key| content::find_live(txn, &key)).transpose()?.flatten() {
        spans.iter_mut().filter(|s| s.id == blob.id).for_each(|s| (s.id, s.inline) = (held.id, held.inline));
        return Ok(NewBlobFate::Shared);
    }
    let id = match &blob.inline {
        Some(bytes) => {
            let id = txn.store_small_body(bytes)?;
            spans.iter_mut().filter(|s| s.id == blob.id).for_each(|s| s.id = id);
            id
        }
        None => {
            txn.put_block_crcs(blob.id, &encode_block_crcs(&blob.blocks))?;
            blob.id
        }
    };
    if let Some(key) = key {
        content::insert(txn, &key, id, &blob)?;
    }
    Ok(NewBlobFate::Stored)
}
