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
//! the chunk goes, unless it is the chunk still being filled. A blob freed
//! from a chunk that others still hold is cut out of it later: the release
//! only records the dead bytes (`PACK_DEAD`), since a delete must not need new
//! pages (deletes work on a full disk), and each append first trims one chunk
//! with dead bytes. A chunk stores its live bytes as runs (offset in the
//! chunk, bytes), so a trimmed chunk shrinks; it is removed and re-inserted
//! so redb can put it in a neighbour's leaf page (highest chunks first: a
//! re-inserted key lands in the leaf of the key after it, which is then
//! already trimmed). Positions never move, so no record has to change.

use bytes::{Bytes, BytesMut};
use redb::{ReadableTable, WriteTransaction};

use crate::store::digest::block_crc;
use crate::store::layout::{packed_id, BlobId};
use crate::store::schema::{PACK_CHUNKS, PACK_DEAD, PACK_LIVE, STORE_META};
use crate::store::StoreResult;

/// redb's page size (its default, which Tessera keeps).
const PAGE: usize = 4096;
/// What a leaf page of one entry spends besides the value: a 4-byte page
/// header, the 8-byte key and the value's 4-byte end offset (redb 2's leaf
/// layout for a fixed-width key and a variable-width value).
const LEAF_OVERHEAD: usize = 4 + 8 + 4;
/// The largest chunk value that still fits one page.
pub const CHUNK_VALUE: usize = PAGE - LEAF_OVERHEAD;
/// A chunk value: `[CRC32C of the rest, LE u32][run count, LE u16]`, then
/// each run's `[offset in the chunk, LE u16][length, LE u16]`, then the runs'
/// bytes back to back.
const CRC_BYTES: usize = 4;
const COUNT_BYTES: usize = 2;
const RUN_BYTES: usize = 4;
/// Pack bytes per chunk: what a chunk of one run holds in [`CHUNK_VALUE`].
pub const CHUNK_DATA: u64 = (CHUNK_VALUE - CRC_BYTES - COUNT_BYTES - RUN_BYTES) as u64;
/// `STORE_META` key: the length of the pack (where the next body goes).
const PACK_END: &str = "pack_end";

/// The live bytes of one chunk: runs of (offset in the chunk, bytes), in
/// offset order, never overlapping.
type Runs = Vec<(usize, Vec<u8>)>;

/// Appends `body` to the pack; returns the new blob's id. Trims one chunk
/// first, if any has dead bytes.
pub(in crate::store) fn append(txn: &WriteTransaction, body: &[u8]) -> StoreResult<BlobId> {
    trim_one(txn)?;
    let mut meta = txn.open_table(STORE_META)?;
    let mut chunks = txn.open_table(PACK_CHUNKS)?;
    let mut live = txn.open_table(PACK_LIVE)?;
    let mut start = meta.get(PACK_END)?.map_or(0, |v| v.value());
    let mut index = start / CHUNK_DATA;
    let mut at = (start % CHUNK_DATA) as usize;
    let mut runs = match at {
        0 => Runs::new(),
        _ => chunks.get(index)?.and_then(|v| owned_runs(v.value())).unwrap_or_else(|| {
            // Never rewrite a damaged chunk under a fresh checksum: its
            // blobs stay reported as corrupt, new ones start after it.
            tracing::error!(chunk = index, "the last chunk of the pack is corrupt; continuing after it");
            index += 1;
            start = index * CHUNK_DATA;
            at = 0;
            Runs::new()
        }),
    };
    let mut rest = body;
    while !rest.is_empty() {
        let (piece, later) = rest.split_at(rest.len().min(CHUNK_DATA as usize - at));
        match runs.last_mut() {
            Some((offset, bytes)) if *offset + bytes.len() == at => bytes.extend_from_slice(piece),
            _ => runs.push((at, piece.to_vec())),
        }
        chunks.insert(index, encode(&runs).as_slice())?;
        let holders = live.get(index)?.map_or(0, |v| v.value());
        live.insert(index, holders + 1)?;
        at += piece.len();
        rest = later;
        if at == CHUNK_DATA as usize {
            (index, at) = (index + 1, 0);
            runs.clear();
        }
    }
    meta.insert(PACK_END, start + body.len() as u64)?;
    Ok(packed_id(start))
}

/// Drops a freed blob's hold on its chunks: a chunk no blob holds any more
/// is removed (unless it is the one still being filled); in the others the
/// blob's bytes are recorded as dead, to be trimmed by a later append. Needs
/// no new page beyond the small tables' own.
pub(in crate::store) fn release(txn: &WriteTransaction, position: u64, size: u64) -> StoreResult<()> {
    let end = txn.open_table(STORE_META)?.get(PACK_END)?.map_or(0, |v| v.value());
    let mut chunks = txn.open_table(PACK_CHUNKS)?;
    let mut live = txn.open_table(PACK_LIVE)?;
    let mut dead = txn.open_table(PACK_DEAD)?;
    for index in chunk_numbers(position, size) {
        let holders = live.get(index)?.map_or(0, |v| v.value()).saturating_sub(1);
        let chunk_start = index * CHUNK_DATA;
        if holders == 0 && chunk_start + CHUNK_DATA <= end {
            live.remove(index)?;
            chunks.remove(index)?;
            dead.retain_in(dead_key(index, 0)..dead_key(index + 1, 0), |_, _| false)?;
            continue;
        }
        live.insert(index, holders)?;
        let from = position.max(chunk_start) - chunk_start;
        let to = (position + size).min(chunk_start + CHUNK_DATA) - chunk_start;
        dead.insert(dead_key(index, from), (to - from) as u32)?;
    }
    Ok(())
}

/// The [`PACK_DEAD`] key of dead bytes at `offset` in chunk `index`.
fn dead_key(index: u64, offset: u64) -> u64 {
    index << 16 | offset
}

/// Cuts the dead bytes out of the highest chunk that has some.
fn trim_one(txn: &WriteTransaction) -> StoreResult<()> {
    let mut dead = txn.open_table(PACK_DEAD)?;
    let Some(last) = dead.last()?.map(|(k, _)| k.value()) else {
        return Ok(());
    };
    let index = last >> 16;
    let range = dead_key(index, 0)..dead_key(index + 1, 0);
    let mut gone = Vec::new();
    for row in dead.range(range.clone())? {
        let (key, len) = row?;
        let offset = (key.value() & 0xffff) as usize;
        gone.push(offset..offset + len.value() as usize);
    }
    dead.retain_in(range, |_, _| false)?;
    let mut chunks = txn.open_table(PACK_CHUNKS)?;
    // A damaged chunk is left as it is, to be reported.
    let Some(runs) = chunks.get(index)?.and_then(|v| owned_runs(v.value())) else {
        return Ok(());
    };
    let runs = gone.into_iter().fold(runs, cut);
    // Removed, then inserted: the smaller value may join the leaf page of
    // the (already trimmed) chunk after it instead of keeping its own.
    chunks.remove(index)?;
    chunks.insert(index, encode(&runs).as_slice())?;
    Ok(())
}

/// `runs` without the bytes at offsets `gone`.
fn cut(runs: Runs, gone: std::ops::Range<usize>) -> Runs {
    let mut out = Runs::with_capacity(runs.len() + 1);
    for (offset, bytes) in runs {
        let end = offset + bytes.len();
        if end <= gone.start || offset >= gone.end {
            out.push((offset, bytes));
            continue;
        }
        if offset < gone.start {
            out.push((offset, bytes.get(..gone.start - offset).unwrap_or_default().to_vec()));
        }
        if end > gone.end {
            out.push((gone.end, bytes.get(gone.end - offset..).unwrap_or_default().to_vec()));
        }
    }
    out
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
    /// The blob's byte `offset` is in no run of its chunk.
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
        let runs = parse(value.value()).ok_or(ReadError::Mismatch { offset })?;
        let from = (at % CHUNK_DATA) as usize;
        let run = runs.iter().find(|(start, bytes)| (*start..start + bytes.len()).contains(&from));
        let Some((start, bytes)) = run else {
            return Err(ReadError::Truncated { offset });
        };
        let take = (start + bytes.len() - from).min((end - at) as usize);
        out.extend_from_slice(bytes.get(from - start..from - start + take).unwrap_or_default());
        at += take as u64;
    }
    Ok(out.freeze())
}

/// The runs of a chunk value, if it matches its checksum and is well formed.
fn parse(value: &[u8]) -> Option<Vec<(usize, &[u8])>> {
    let (crc, rest) = value.split_first_chunk::<CRC_BYTES>()?;
    if u32::from_le_bytes(*crc) != block_crc(rest) {
        return None;
    }
    let (count, rest) = rest.split_first_chunk::<COUNT_BYTES>()?;
    let (table, mut data) = rest.split_at_checked(usize::from(u16::from_le_bytes(*count)) * RUN_BYTES)?;
    let mut runs = Vec::with_capacity(table.len() / RUN_BYTES);
    let mut next_free = 0;
    for run in table.chunks_exact(RUN_BYTES) {
        let [o0, o1, l0, l1]: [u8; RUN_BYTES] = run.try_into().ok()?;
        let (offset, len) = (usize::from(u16::from_le_bytes([o0, o1])), usize::from(u16::from_le_bytes([l0, l1])));
        let (bytes, later) = data.split_at_checked(len)?;
        if offset < next_free || offset + len > CHUNK_DATA as usize {
            return None;
        }
        runs.push((offset, bytes));
        (next_free, data) = (offset + len, later);
    }
    data.is_empty().then_some(runs)
}

fn owned_runs(value: &[u8]) -> Option<Runs> {
    Some(parse(value)?.into_iter().map(|(offset, bytes)| (offset, bytes.to_vec())).collect())
}

fn encode(runs: &[(usize, Vec<u8>)]) -> Vec<u8> {
    let data: usize = runs.iter().map(|(_, b)| b.len()).sum();
    let mut out = Vec::with_capacity(CRC_BYTES + COUNT_BYTES + RUN_BYTES * runs.len() + data);
    out.extend_from_slice(&[0; CRC_BYTES]);
    // Offsets and lengths are below CHUNK_DATA, and a chunk has fewer runs.
    out.extend_from_slice(&(runs.len() as u16).to_le_bytes());
    for (offset, bytes) in runs {
        out.extend_from_slice(&(*offset as u16).to_le_bytes());
        out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    }
    for (_, bytes) in runs {
        out.extend_from_slice(bytes);
    }
    let crc = block_crc(out.get(CRC_BYTES..).unwrap_or_default());
    out.splice(..CRC_BYTES, crc.to_le_bytes());
    out
}

/// The chunks a blob of `size` bytes at `position` overlaps.
fn chunk_numbers(position: u64, size: u64) -> std::ops::RangeInclusive<u64> {
    position / CHUNK_DATA..=(position + size.max(1) - 1) / CHUNK_DATA
}

#[cfg(test)]
#[path = "pack_tests.rs"]
mod tests;
