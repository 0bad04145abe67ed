//! The unique-file table (唯一文件表): content stored once. A blob whose
//! SHA-256 is known is indexed by `(SHA-256, size)`; a new body with the
//! same content, found in the transaction that would commit it, references
//! the indexed blob instead, and its own copy is dropped after the commit.
//!
//! Crash safety is the write path's own: the reference is added in the
//! transaction that makes the object or part visible, and only a blob with
//! references in that same transaction is shared, so a blob being freed
//! (its last reference dropped by a committed transaction) is never
//! resurrected. The row goes in the transaction that drops the blob's last
//! reference (`txn::drop_refs`), so it never names a dead or reused blob.
//!
//! Which bodies are hashed: those whose SHA-256 the client declared (a hex
//! `x-amz-content-sha256` or `x-amz-checksum-sha256`, verified anyway) and
//! small ones (`ingest.rs`); hashing every large body inline would cost more
//! CPU than the write path may spend (docs/architecture.md).

use std::collections::HashMap;

use redb::ReadableTable;

use super::blob::NewBlob;
use super::digest::ChecksumAlgorithm;
use super::layout::{packed_position, BlobId};
use super::meta::{MetaRead, MetaTxn};
use super::schema::{
    decode, BlobSpan, BucketRecord, ObjectRecord, PartRecord, UploadRecord, BUCKETS, CONTENT_HOLDERS, OBJECTS, PARTS,
    STORE_META, UPLOADS, VERSIONS,
};
use super::StoreResult;

/// The key of [`CONTENT`](super::schema::CONTENT): SHA-256, then the size big-endian.
pub fn content_key(sha256: &[u8; 32], size: u64) -> [u8; 40] {
    let mut key = [0u8; 40];
    let (hash, len) = key.split_at_mut(32);
    hash.copy_from_slice(sha256);
    len.copy_from_slice(&size.to_be_bytes());
    key
}

/// What the unique-file table knows of a blob: where it is, and the
/// digests a request for the same bytes would be answered with.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldContent {
    pub id: BlobId,
    pub inline: bool,
    /// `None` in rows written before instant upload existed.
    pub md5: Option<[u8; 16]>,
    /// The flexible checksum the blob was stored with.
    pub checksum: Option<(ChecksumAlgorithm, Vec<u8>)>,
}

/// A row is `id (16 bytes BE) ‖ inline (1 byte)`, then the postcard of
/// `(md5, checksum)` (absent in the rows of format 1).
fn encode_row(held: &HeldContent) -> StoreResult<Vec<u8>> {
    let mut value = held.id.to_be_bytes().to_vec();
    value.push(u8::from(held.inline));
    value.extend_from_slice(&postcard::to_allocvec(&(held.md5, &held.checksum))?);
    Ok(value)
}

fn decode_row(value: &[u8]) -> Option<HeldContent> {
    let (raw_id, rest) = value.split_first_chunk::<16>()?;
    let (flag, digests) = rest.split_first()?;
    let (md5, checksum) = match digests.is_empty() {
        true => (None, None),
        false => postcard::from_bytes(digests).ok()?,
    };
    Some(HeldContent { id: BlobId::from_be_bytes(*raw_id), inline: *flag == 1, md5, checksum })
}

/// The live blob holding `key`'s content: one with references in this
/// transaction (or snapshot, for deciding before a body is read).
pub(super) fn find_live(txn: &dyn MetaRead, key: &[u8; 40]) -> StoreResult<Option<HeldContent>> {
    let Some(held) = txn.content_row(key)?.and_then(|row| decode_row(&row)) else {
        return Ok(None);
    };
    Ok((txn.blob_refs(held.id)? > 0).then_some(held))
}

/// Indexes a new blob (unless its content is indexed already).
pub(super) fn insert(txn: &dyn MetaTxn, key: &[u8; 40], id: BlobId, blob: &NewBlob) -> StoreResult<()> {
    if txn.content_row(key)?.is_none() {
        let held =
            HeldContent { id, inline: blob.inline.is_some(), md5: Some(blob.md5), checksum: blob.checksum.clone() };
        txn.put_content_row(key, &encode_row(&held)?)?;
        txn.put_blob_content(id, key)?;
    }
    Ok(())
}

/// Indexes `held`'s blob under `key` (background hashing: the blob is
/// live and no live blob holds the content).
pub(super) fn index(txn: &dyn MetaTxn, key: &[u8; 40], held: &HeldContent) -> StoreResult<()> {
    txn.put_content_row(key, &encode_row(held)?)?;
    txn.put_blob_content(held.id, key)
}

/// Records that blob `id`'s file is now a hard link to `holder`'s, which
/// holds the content `key` (`hasher.rs`): `key ‖ holder` in [`BLOB_CONTENT`](super::schema::BLOB_CONTENT).
pub(super) fn record_merge(txn: &dyn MetaTxn, id: BlobId, key: &[u8; 40], holder: BlobId) -> StoreResult<()> {
    let mut value = key.to_vec();
    value.extend_from_slice(&holder.to_be_bytes());
    txn.put_blob_content(id, &value)
}

/// The blob whose file a merged blob's file is a hard link to, from its
/// [`BLOB_CONTENT`](super::schema::BLOB_CONTENT) value; `None` for a blob indexed under its own id.
pub fn merged_into(value: &[u8]) -> Option<BlobId> {
    value.get(40..56).and_then(|raw| raw.try_into().ok()).map(BlobId::from_be_bytes)
}

/// The content key a [`BLOB_CONTENT`](super::schema::BLOB_CONTENT) value starts with.
fn indexed_key(value: &[u8]) -> Option<&[u8; 40]> {
    value.get(..40).and_then(|key| key.try_into().ok())
}

/// Whether the live blob file `id` needs (background) hashing: its content
/// is not indexed, was indexed before rows kept the MD5, or its file was
/// merged into a blob since freed (`hasher.rs`).
pub(super) fn needs_hashing(txn: &dyn MetaRead, id: BlobId) -> StoreResult<bool> {
    let Some(value) = txn.blob_content(id)? else { return Ok(true) };
    if let Some(holder) = merged_into(&value) {
        return Ok(txn.blob_refs(holder)? == 0);
    }
    let row = match indexed_key(&value) {
        Some(key) => txn.content_row(key)?.and_then(|row| decode_row(&row)),
        None => None,
    };
    Ok(row.is_none_or(|held| held.id == id && held.md5.is_none()))
}

/// Removes the rows of a blob whose last reference was dropped.
pub(super) fn forget(txn: &dyn MetaTxn, id: BlobId) -> StoreResult<()> {
    txn.forget_holders(id)?;
    let Some(value) = txn.remove_blob_content(id)? else {
        return Ok(());
    };
    let Some(key) = indexed_key(&value) else {
        return Ok(());
    };
    let names_it = txn.content_row(key)?.and_then(|row| decode_row(&row)).is_some_and(|h| h.id == id);
    if names_it {
        txn.remove_content_row(key)?;
    }
    Ok(())
}

/// Whether a span's blob is a file: the blobs whose holders are counted
/// (packed and inline bodies are never indexed).
pub(super) fn is_file(span: &BlobSpan) -> bool {
    span.has_blob() && !span.inline && packed_position(span.id).is_none()
}

/// Counts `delta` references of `owner` to each file blob of `spans`: who
/// holds a blob, the proof of possession an instant upload asks for.
pub(super) fn count_holders(txn: &dyn MetaTxn, spans: &[BlobSpan], owner: &str, delta: i64) -> StoreResult<()> {
    for span in spans.iter().filter(|s| is_file(s)) {
        let count = txn.holder_refs(span.id, owner)?;
        txn.set_holder_refs(span.id, owner, count.saturating_add_signed(delta))?;
    }
    Ok(())
}

/// Whether `owner` holds a reference to the blob `id`.
pub(super) fn holds(txn: &dyn MetaRead, id: BlobId, owner: &str) -> StoreResult<bool> {
    Ok(txn.holder_refs(id, owner)? > 0)
}

/// The [`STORE_META`] row saying holders are counted (data folders written
/// before `content_holders_v1` get them counted once, at start).
const HOLDERS_COUNTED: &str = "content_holders_counted";

/// Counts the holders of every blob file from the records, once per data
/// folder: one pass over objects, versions and parts, then never again.
pub(super) fn count_existing_holders(db: &redb::Database) -> StoreResult<()> {
    let txn = db.begin_write()?;
    if txn.open_table(STORE_META)?.get(HOLDERS_COUNTED)?.is_some() {
        return Ok(());
    }
    let mut counts: HashMap<(BlobId, String), u64> = HashMap::new();
    let mut add = |spans: &[BlobSpan], owner: &str| {
        for span in spans.iter().filter(|s| is_file(s)) {
            *counts.entry((span.id, owner.to_string())).or_default() += 1;
        }
    };
    let mut bucket_owners = HashMap::new();
    for row in txn.open_table(BUCKETS)?.iter()? {
        let (name, value) = row?;
        bucket_owners.insert(name.value().to_string(), decode::<BucketRecord>(value.value())?.owner);
    }
    let owner_of = |row_key: &[u8], record: &ObjectRecord| -> String {
        let bucket = row_key.split(|b| *b == 0).next().unwrap_or_default();
        let bucket_owner = || bucket_owners.get(String::from_utf8_lossy(bucket).as_ref()).cloned();
        record.owner.clone().or_else(bucket_owner).unwrap_or_default()
    };
    for row in txn.open_table(OBJECTS)?.iter()? {
        let (key, value) = row?;
        let record: ObjectRecord = decode(value.value())?;
        add(&record.blobs, &owner_of(key.value(), &record));
    }
    for row in txn.open_table(VERSIONS)?.iter()? {
        let (key, value) = row?;
        let record: ObjectRecord = decode(value.value())?;
        add(&record.blobs, &owner_of(key.value().0, &record));
    }
    let uploads = txn.open_table(UPLOADS)?;
    for row in txn.open_table(PARTS)?.iter()? {
        let (key, value) = row?;
        let upload_id = key.value().get(..key.value().len().saturating_sub(2)).unwrap_or_default();
        let upload = uploads.get(String::from_utf8_lossy(upload_id).as_ref())?.map(|v| v.value().to_vec());
        let owner = upload.map(|u| decode::<UploadRecord>(&u).map(|u| u.owner)).transpose()?.unwrap_or_default();
        add(&[decode::<PartRecord>(value.value())?.span], &owner);
    }
    drop(uploads);
    let mut holders = txn.open_table(CONTENT_HOLDERS)?;
    holders.retain(|_, _| false)?;
    for ((id, owner), count) in counts {
        holders.insert((id, owner.as_str()), count)?;
    }
    drop(holders);
    txn.open_table(STORE_META)?.insert(HOLDERS_COUNTED, 1)?;
    txn.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_holders_round_trip() {
        let key = content_key(&[7; 32], 0x0102);
        assert_eq!((&key[..32], &key[32..]), (&[7u8; 32][..], &[0, 0, 0, 0, 0, 0, 1, 2][..]));
        let id: BlobId = 0xdead_beef_0000_0001_u128 << 64 | 5;
        let held = HeldContent {
            id,
            inline: false,
            md5: Some([3; 16]),
            checksum: Some((ChecksumAlgorithm::Crc32, vec![1, 2, 3, 4])),
        };
        assert_eq!(decode_row(&encode_row(&held).unwrap()), Some(held));
        let mut format_1 = id.to_be_bytes().to_vec();
        format_1.push(1);
        let old = HeldContent { id, inline: true, md5: None, checksum: None };
        assert_eq!(decode_row(&format_1), Some(old), "rows of format 1 have no digests");
        assert_eq!(decode_row(&[1, 2, 3]), None, "a short value is no row");
    }
}
