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

use redb::{ReadableTable, WriteTransaction};

use super::layout::BlobId;
use super::schema::{BLOB_CONTENT, BLOB_REFS, CONTENT};
use super::StoreResult;

/// The key of [`CONTENT`]: SHA-256, then the size big-endian.
pub fn content_key(sha256: &[u8; 32], size: u64) -> [u8; 40] {
    let mut key = [0u8; 40];
    let (hash, len) = key.split_at_mut(32);
    hash.copy_from_slice(sha256);
    len.copy_from_slice(&size.to_be_bytes());
    key
}

fn encode_holder(id: BlobId, inline: bool) -> [u8; 17] {
    let mut value = [0u8; 17];
    let (raw_id, flag) = value.split_at_mut(16);
    raw_id.copy_from_slice(&id.to_be_bytes());
    flag.copy_from_slice(&[u8::from(inline)]);
    value
}

fn decode_holder(value: &[u8]) -> Option<(BlobId, bool)> {
    let (raw_id, flag) = value.split_first_chunk::<16>()?;
    Some((BlobId::from_be_bytes(*raw_id), flag.first() == Some(&1)))
}

/// The live blob holding `key`'s content, and whether it is inline: one
/// with references in this transaction.
pub(super) fn find_live(txn: &WriteTransaction, key: &[u8; 40]) -> StoreResult<Option<(BlobId, bool)>> {
    let Some(holder) = txn.open_table(CONTENT)?.get(key.as_slice())?.and_then(|v| decode_holder(v.value())) else {
        return Ok(None);
    };
    let live = txn.open_table(BLOB_REFS)?.get(holder.0)?.is_some_and(|count| count.value() > 0);
    Ok(live.then_some(holder))
}

/// Indexes a new blob (unless its content is indexed already).
pub(super) fn insert(txn: &WriteTransaction, key: &[u8; 40], id: BlobId, inline: bool) -> StoreResult<()> {
    let mut content = txn.open_table(CONTENT)?;
    if content.get(key.as_slice())?.is_none() {
        content.insert(key.as_slice(), encode_holder(id, inline).as_slice())?;
        txn.open_table(BLOB_CONTENT)?.insert(id, key.as_slice())?;
    }
    Ok(())
}

/// Removes the rows of a blob whose last reference was dropped.
pub(super) fn forget(txn: &WriteTransaction, id: BlobId) -> StoreResult<()> {
    let Some(key) = txn.open_table(BLOB_CONTENT)?.remove(id)?.map(|k| k.value().to_vec()) else {
        return Ok(());
    };
    let mut content = txn.open_table(CONTENT)?;
    let names_it = content.get(key.as_slice())?.and_then(|v| decode_holder(v.value())).is_some_and(|(h, _)| h == id);
    if names_it {
        content.remove(key.as_slice())?;
    }
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
        assert_eq!(decode_holder(&encode_holder(id, true)), Some((id, true)));
        assert_eq!(decode_holder(&encode_holder(id, false)), Some((id, false)));
        assert_eq!(decode_holder(&[1, 2, 3]), None, "a short value is no holder");
    }
}
