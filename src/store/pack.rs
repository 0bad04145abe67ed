//! Small bodies packed into the database, a few per 4 KiB page.
//!
//! A body of at most `INLINE_MAX` bytes never becomes a file: the transaction
//! that commits its record appends its bytes to one byte stream, the *pack*,
//! kept in `PACK_CHUNKS` as chunks of [`CHUNK_DATA`] bytes. Each chunk is
//! the only entry of one 4 KiB leaf page (its value, a CRC32C and the data,
//! is [`CHUNK_VALUE`] bytes: the page minus redb's leaf header, key and value
//! length), and chunks are appended at the end of the tree. So:
//! - a small PUT's bytes go to disk in the fsync of the group commit that
//!   makes its record durable: data and metadata cost one flush;
//! - a body costs about its size on disk. Before, a 4 KiB body was a row of
//!   its own keyed by a random id: 4 KiB do not fit beside a key in a 4 KiB
//!   page, so each took an 8 KiB page, and every insert rewrote random leaves
//!   of three tables.
//!
//! A packed blob's id is its position in the pack ([`packed_id`]), so its
//! reference count is appended at the end of `BLOB_REFS` too. `PACK_LIVE`
//! counts the packed blobs that overlap each chunk; when the last one goes,
//! the chunk goes, unless it is the chunk still being filled. A chunk lives as
//! long as one of its blobs does: after deletes, a chunk may hold dead bytes
//! beside live ones (no compaction yet; docs/performance.md says what that
//! costs).

use bytes::{Bytes, BytesMut};
use redb::{ReadableTable, WriteTransaction};

use super::digest::block_crc;
use super::layout::{packed_id, BlobId};
use super::schema::{PACK_CHUNKS, PACK_LIVE, STORE_META};
use super::StoreResult;

/// redb's page size (its default, which Tessera keeps).
const PAGE: usize = 4096;
/// What a leaf page of one entry spends besides the value: a 4-byte page
/// header, the 8-byte key and the value's 4-byte end offset (redb 2's leaf
/// layout for a fixed-width key and a variable-width value).
const LEAF_OVERHEAD: usize = 4 + 8 + 4;
/// The largest chunk value that still fits one page.
pub const CHUNK_VALUE: usize = PAGE - LEAF_OVERHEAD;
const CRC_BYTES: usize = 4;
/// Pack bytes per chunk.
pub const CHUNK_DATA: u64 = (CHUNK_VALUE - CRC_BYTES) as u64;
/// `STORE_META` key: the length of the pack (where the next body goes).
const PACK_END: &str = "pack_end";

/// Appends `body` to the pack; returns the new blob's id.
pub(super) fn append(txn: &WriteTransaction, body: &[u8]) -> StoreResult<BlobId> {
    let mut meta = txn.open_table(STORE_META)?;
    let mut chunks = txn.open_table(PACK_CHUNKS)?;
    let mut live = txn.open_table(PACK_LIVE)?;
    let mut start = meta.get(PACK_END)?.map_or(0, |v| v.value());
    let mut index = start / CHUNK_DATA;
    let mut value = Vec::with_capacity(CHUNK_VALUE);
    value.extend_from_slice(&[0; CRC_BYTES]);
    let filled = (start % CHUNK_DATA) as usize;
    if filled > 0 {
        let tail =
            chunks.get(index)?.and_then(|v| checked(v.value()).and_then(|d| d.get(..filled)).map(<[u8]>::to_vec));
        match tail {
            Some(data) => value.extend_from_slice(&data),
            None => {
                // Never rewrite a damaged chunk under a fresh checksum: its
                // blobs stay reported as corrupt, new ones start further on.
                tracing::error!(chunk = index, "the last chunk of the pack is corrupt; continuing after it");
                index += 1;
                start = index * CHUNK_DATA;
                value.truncate(CRC_BYTES);
            }
        }
    }
    let mut rest = body;
    while !rest.is_empty() {
        let (now, later) = rest.split_at(rest.len().min(CHUNK_VALUE - value.len()));
        value.extend_from_slice(now);
        rest = later;
        let crc = block_crc(value.get(CRC_BYTES..).unwrap_or_default());
        value.splice(..CRC_BYTES, crc.to_le_bytes());
        chunks.insert(index, value.as_slice())?;
        let holders = live.get(index)?.map_or(0, |v| v.value());
        live.insert(index, holders + 1)?;
        if value.len() == CHUNK_VALUE {
            index += 1;
            value.truncate(CRC_BYTES);
        }
    }
    meta.insert(PACK_END, start + body.len() as u64)?;
    Ok(packed_id(start))
}

/// Drops a freed blob's hold on its chunks; removes the chunks no blob
/// holds, except the one still being filled.
pub(super) fn release(txn: &WriteTransaction, position: u64, size: u64) -> StoreResult<()> {
    let end = txn.open_table(STORE_META)?.get(PACK_END)?.map_or(0, |v| v.value());
    let mut chunks = txn.open_table(PACK_CHUNKS)?;
    let mut live = txn.open_table(PACK_LIVE)?;
    for index in chunk_numbers(position, size) {
        let holders = live.get(index)?.map_or(0, |v| v.value()).saturating_sub(1);
        let full = (index + 1) * CHUNK_DATA <= end;
        if holders == 0 && full {
            live.remove(index)?;
            chunks.remove(index)?;
        } else {
            live.insert(index, holders)?;
        }
    }
    Ok(())
}

/// Why [`read`] could not return a blob's bytes.
#[derive(Debug)]
pub enum ReadError {
    /// A chunk is gone: the blob was freed, or the chunk lost.
    Missing,
    /// The chunk holding the blob's byte `offset` does not match its checksum.
    Mismatch {
        offset: u64,
    },
    /// The pack ends at the blob's byte `offset`, before its size.
    Truncated {
        offset: u64,
    },
    Db(redb::StorageError),
}

/// The `size` bytes of the packed blob at `position`, every chunk they come
/// from checked against its CRC32C.
pub fn read(chunks: &impl ReadableTable<u64, &'static [u8]>, position: u64, size: u64) -> Result<Bytes, ReadError> {
    let mut out = BytesMut::with_capacity(usize::try_from(size).unwrap_or(0));
    let end = position + size;
    let mut at = position;
    while at < end {
        let offset = at - position;
        let value = chunks.get(at / CHUNK_DATA).map_err(ReadError::Db)?.ok_or(ReadError::Missing)?;
        let data = checked(value.value()).ok_or(ReadError::Mismatch { offset })?;
        let from = (at % CHUNK_DATA) as usize;
        let to = data.len().min(from + (end - at) as usize);
        match data.get(from..to) {
            Some(piece) if !piece.is_empty() => out.extend_from_slice(piece),
            _ => return Err(ReadError::Truncated { offset }),
        }
        at += (to - from) as u64;
    }
    Ok(out.freeze())
}

/// The data of a chunk value, if it matches its checksum.
fn checked(value: &[u8]) -> Option<&[u8]> {
    let (crc, data) = value.split_first_chunk::<CRC_BYTES>()?;
    (u32::from_le_bytes(*crc) == block_crc(data)).then_some(data)
}

/// The chunks a blob of `size` bytes at `position` overlaps.
fn chunk_numbers(position: u64, size: u64) -> std::ops::RangeInclusive<u64> {
    position / CHUNK_DATA..=(position + size.max(1) - 1) / CHUNK_DATA
}

#[cfg(test)]
#[path = "pack_tests.rs"]
mod tests;
