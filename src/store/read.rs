//! Reading an object's bytes: the blobs are opened up front (so a concurrent
//! delete, which only unlinks, cannot cut a response short; inline blobs are
//! copied out of the database), then small reads are done at once and larger
//! ones stream in large positioned reads, each done on a blocking thread once
//! the small bounded channel to the connection has room for it. Memory per reader: a few buffers, recycled
//! through a small pool (see [`ReadBuffer`]).
//!
//! Every byte served is checked first: reads are widened to whole blocks and
//! each block's CRC32C is compared with the one stored when the blob was
//! written (`digest::BLOCK_SIZE`). A mismatch, or a file shorter than its
//! blob, is a [`Corruption`]: logged, and returned as an `InvalidData` error,
//! so a small read fails before any header is sent and a stream ends early
//! (the client sees a cut transfer, never wrong bytes presented as complete).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use redb::ReadTransaction;
use tokio::sync::mpsc;

use super::digest::block_crc;
use super::layout::packed_position;
use super::layout::{BlobId, Layout};
use super::pack::{self, ReadError};
use super::schema::{block_crcs_slice, BlobSpan, BLOB_CRCS, BLOB_REFS, INLINE_BLOBS, PACK_CHUNKS};

/// Reads of 512 KiB, two queued per reader: the same memory per reader as
/// 256 KiB x 4, half the hand-offs (GET 64 x 16 MiB: 0.39-0.70 -> 0.37-0.39
/// server CPU-seconds per GiB over three runs each). A multiple of every
/// accepted block size, so each read of a widened range starts on a block.
const READ_CHUNK: u64 = 512 * 1024;
const CHANNEL_CHUNKS: usize = 2;
/// Reads up to this size are done in one go on the opening thread.
const SMALL_READ: u64 = 256 * 1024;
/// Block sizes a reader accepts: 4 KiB to [`READ_CHUNK`].
const BLOCK_SHIFTS: std::ops::RangeInclusive<u8> = 12..=19;

/// What is wrong with a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// The block starting at the offset does not match its checksum.
    Mismatch,
    /// The blob ends at the offset, before its recorded size.
    Truncated,
    /// The blob is referenced but its file (or a chunk of the pack) is gone.
    Missing,
    /// Its stored block checksums cannot be read.
    BadChecksums,
}

/// A blob whose bytes are not the ones written, found at `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("blob {blob:032x} is corrupt at offset {offset}: {damage}")]
pub struct Corruption {
    pub blob: BlobId,
    pub offset: u64,
    pub damage: Damage,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Damage::Mismatch => "block checksum mismatch",
            Damage::Truncated => "the data ends before the blob's size",
            Damage::Missing => "its data is missing",
            Damage::BadChecksums => "its block checksums are unreadable",
        })
    }
}

impl Corruption {
    /// A corruption just found: logged at error level (data was lost).
    pub fn new(blob: BlobId, offset: u64, damage: Damage) -> Corruption {
        tracing::error!(blob = %format_args!("{blob:032x}"), offset, "corrupt blob: {damage}");
        Corruption { blob, offset, damage }
    }

    /// The corruption an I/O error of this module carries, if any.
    pub fn of(e: &io::Error) -> Option<Corruption> {
        e.get_ref().and_then(|inner| inner.downcast_ref::<Corruption>()).copied()
    }
}

/// Logs a corruption and makes it an error.
fn corrupt(blob: BlobId, offset: u64, damage: Damage) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, Corruption::new(blob, offset, damage))
}

/// The stored checksums of the blocks of one blob that a read covers.
#[derive(Debug, Clone)]
pub struct BlockCheck {
    blob: BlobId,
    shift: u8,
    /// Index of the block whose checksum is `crcs[0]`.
    first: u64,
    crcs: Vec<u32>,
}

impl BlockCheck {
    /// The checks for bytes `range` of a blob of `size` bytes, from its
    /// stored value (`schema::encode_block_crcs`).
    pub fn from_value(blob: BlobId, value: &[u8], range: Range<u64>, size: u64) -> io::Result<BlockCheck> {
        let at = range.start;
        let bad = || corrupt(blob, at, Damage::BadChecksums);
        let shift = *value.get(1).ok_or_else(bad)?;
        if !BLOCK_SHIFTS.contains(&shift) {
            return Err(bad());
        }
        let wide = widen(shift, range, size);
        let (first, last) = (wide.start >> shift, wide.end.div_ceil(1 << shift));
        let (_, crcs) = block_crcs_slice(value, first, last - first).ok_or_else(bad)?;
        Ok(BlockCheck { blob, shift, first, crcs })
    }

    /// Compares `data`, which starts at `pos` (on a block boundary) and ends
    /// on one or at the end of the blob, with the stored checksums.
    fn verify(&self, pos: u64, data: &[u8]) -> io::Result<()> {
        let size = 1usize << self.shift;
        for (i, block) in data.chunks(size).enumerate() {
            let offset = pos + (i * size) as u64;
            let stored = (offset >> self.shift).checked_sub(self.first).and_then(|k| self.crcs.get(k as usize));
            if stored != Some(&block_crc(block)) {
                return Err(corrupt(self.blob, offset, Damage::Mismatch));
            }
        }
        Ok(())
    }
}

/// `range` grown to whole blocks of `1 << shift` bytes (the last block of a
/// blob of `size` bytes ends at `size`).
fn widen(shift: u8, range: Range<u64>, size: u64) -> Range<u64> {
    let mask = (1u64 << shift) - 1;
    let end = range.end.checked_add(mask).map_or(size, |e| e & !mask).min(size);
    (range.start & !mask)..end.max(range.end)
}

/// Where [`open`] finds what is not in the blob files.
pub trait BlobSource {
    /// The bytes of an inline blob of an older version ([`INLINE_BLOBS`]);
    /// `NotFound` if the blob is gone.
    fn inline(&self, id: BlobId) -> io::Result<Bytes>;
    /// The `size` bytes of the packed blob `id` at `position` in the pack,
    /// checked; `NotFound` if the blob is gone.
    fn packed(&self, id: BlobId, position: u64, size: u64) -> io::Result<Bytes>;
    /// The checks for bytes `range` of a blob of `size` bytes: `None` for a
    /// blob written before block checksums existed; `NotFound` if it is gone.
    fn check(&self, id: BlobId, range: Range<u64>, size: u64) -> io::Result<Option<BlockCheck>>;
}

/// A database snapshot as a [`BlobSource`]. Opening the blobs inside the
/// snapshot that names them keeps "gone" (a concurrent delete) apart from
/// "never had checksums" (a blob from an older version).
pub struct Snapshot(pub ReadTransaction);

impl BlobSource for Snapshot {
    fn inline(&self, id: BlobId) -> io::Result<Bytes> {
        let table = self.0.open_table(INLINE_BLOBS).map_err(io::Error::other)?;
        let value = table.get(id).map_err(io::Error::other)?.ok_or_else(not_found)?;
        Ok(Bytes::copy_from_slice(value.value()))
    }

    fn packed(&self, id: BlobId, position: u64, size: u64) -> io::Result<Bytes> {
        let chunks = self.0.open_table(PACK_CHUNKS).map_err(io::Error::other)?;
        match pack::read(&chunks, position, size) {
            Ok(bytes) => Ok(bytes),
            Err(ReadError::Mismatch { offset }) => Err(corrupt(id, offset, Damage::Mismatch)),
            Err(ReadError::Truncated { offset }) => Err(corrupt(id, offset, Damage::Truncated)),
            Err(ReadError::Db(e)) => Err(io::Error::other(e)),
            // A chunk of a blob still referenced is lost; else the blob was freed.
            Err(ReadError::Missing) => match self.0.open_table(BLOB_REFS).map_err(io::Error::other)?.get(id) {
                Ok(Some(_)) => Err(corrupt(id, 0, Damage::Missing)),
                Ok(None) => Err(not_found()),
                Err(e) => Err(io::Error::other(e)),
            },
        }
    }

    fn check(&self, id: BlobId, range: Range<u64>, size: u64) -> io::Result<Option<BlockCheck>> {
        match self.0.open_table(BLOB_CRCS) {
            Ok(table) => {
                if let Some(value) = table.get(id).map_err(io::Error::other)? {
                    return BlockCheck::from_value(id, value.value(), range, size).map(Some);
                }
            }
            // A data folder of a version before block checksums, not yet served.
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(io::Error::other(e)),
        }
        let refs = self.0.open_table(BLOB_REFS).map_err(io::Error::other)?;
        match refs.get(id).map_err(io::Error::other)? {
            Some(_) => Ok(None),
            None => Err(not_found()),
        }
    }
}

fn not_found() -> io::Error {
    io::Error::from(io::ErrorKind::NotFound)
}

/// One opened blob and the part of it to send.
enum Piece {
    File {
        file: File,
        check: Option<BlockCheck>,
        blob: BlobId,
        /// What is read: `want` widened to whole blocks when checked.
        read: Range<u64>,
        /// What is sent, offsets in the blob.
        want: Range<u64>,
    },
    Memory(Bytes),
}

impl Piece {
    fn len(&self) -> u64 {
        match self {
            Piece::File { want, .. } => want.end - want.start,
            Piece::Memory(bytes) => bytes.len() as u64,
        }
    }
}

/// The opened blobs behind one ranged read of an object.
pub struct OpenObject {
    pieces: Vec<Piece>,
}

/// Opens the blobs that hold `range` of an object made of `spans`; `source`
/// gives their checksums and the bytes of inline blobs. Inline bytes are
/// checked here, files as they are read. Blocking: call off the reactor.
pub fn open(layout: &Layout, spans: &[BlobSpan], range: Range<u64>, source: &dyn BlobSource) -> io::Result<OpenObject> {
    let mut pieces = Vec::new();
    let mut blob_start = 0u64;
    for span in spans {
        let blob_end = blob_start + span.size;
        let (start, end) = (range.start.max(blob_start), range.end.min(blob_end));
        if start < end {
            let want = (start - blob_start)..(end - blob_start);
            pieces.push(if span.inline {
                let bytes = checked_inline(span, source)?;
                let slice = bytes.get(want.start as usize..want.end as usize).map(|s| bytes.slice_ref(s));
                Piece::Memory(slice.ok_or_else(|| corrupt(span.id, bytes.len() as u64, Damage::Truncated))?)
            } else {
                let check = source.check(span.id, want.clone(), span.size)?;
                let read = match &check {
                    Some(c) => widen(c.shift, want.clone(), span.size),
                    None => want.clone(),
                };
                let file = File::open(layout.blob_path(span.id))?;
                Piece::File { file, check, blob: span.id, read, want }
            });
        }
        blob_start = blob_end;
    }
    Ok(OpenObject { pieces })
}

/// The whole of an inline blob, checked against its size and checksums.
pub fn checked_inline(span: &BlobSpan, source: &dyn BlobSource) -> io::Result<Bytes> {
    if let Some(position) = packed_position(span.id) {
        return source.packed(span.id, position, span.size);
    }
    let bytes = source.inline(span.id)?;
    if (bytes.len() as u64) < span.size {
        return Err(corrupt(span.id, bytes.len() as u64, Damage::Truncated));
    }
    if let Some(check) = source.check(span.id, 0..span.size, span.size)? {
        check.verify(0, bytes.get(..span.size as usize).unwrap_or_default())?;
    }
    Ok(bytes)
}

impl OpenObject {
    /// The whole content at once, if it is small (`None` otherwise): saves a
    /// thread hand-off and a channel per small GET, and is checked before
    /// any header is sent. Blocking.
    pub fn read_small(&self) -> Option<io::Result<Bytes>> {
        let total: u64 = self.pieces.iter().map(Piece::len).sum();
        if total > SMALL_READ {
            return None;
        }
        Some(match self.pieces.as_slice() {
            [Piece::Memory(bytes)] => Ok(bytes.clone()),
            [piece @ Piece::File { .. }] => read_piece(piece),
            pieces => read_pieces(pieces),
        })
    }

    /// Streams the pieces. A task reads the next chunk on a blocking thread
    /// only once the channel has room for it, so a client that stops reading
    /// parks no thread, only this task (a thread parked per stalled reader let
    /// a few hundred non-reading clients exhaust the blocking pool and hang
    /// everyone). A client that takes no chunk for `stall` is given up on: the
    /// stream ends early and the files are closed. The stream also ends when
    /// the receiver is dropped (client gone); an error ends it.
    pub fn stream(self, stall: Duration) -> mpsc::Receiver<io::Result<Bytes>> {
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        let cursor = Cursor { pieces: self.pieces.into_iter(), current: None };
        tokio::spawn(feed(cursor, tx, stall));
        rx
    }
}

/// How long a reader thread waits for the client to make room before it
/// hands the stream back to its task: long enough that a client that keeps
/// reading never costs a thread hand-off per chunk, short enough that a
/// stalled one holds the thread only that long.
const LINGER: Duration = Duration::from_millis(5);

type Chunks = mpsc::Sender<io::Result<Bytes>>;

/// What a reader thread hands back.
enum Pause {
    /// The client is slow: wait for room without a thread, then go on.
    Wait(Cursor),
    /// Everything was sent, the client went away, or an error was sent.
    Done,
}

/// Waits (on no thread) until the client has room, then reads on a blocking
/// thread for as long as the client keeps taking chunks.
async fn feed(mut cursor: Cursor, tx: Chunks, stall: Duration) {
    loop {
        let permit = match tokio::time::timeout(stall, tx.clone().reserve_owned()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_closed)) => return,
            Err(_elapsed) => {
                tracing::info!(stall_s = stall.as_secs(), "client stopped reading a response; abandoned");
                return;
            }
        };
        let handle = tokio::runtime::Handle::current();
        let job = tokio::task::spawn_blocking(move || read_while_taken(cursor, permit, &handle));
        match job.await {
            Ok(Pause::Wait(back)) => cursor = back,
            Ok(Pause::Done) | Err(_) => return,
        }
    }
}

/// Reads and sends chunks while the client makes room within [`LINGER`].
/// Blocking.
fn read_while_taken(
    mut cursor: Cursor,
    mut permit: mpsc::OwnedPermit<io::Result<Bytes>>,
    handle: &tokio::runtime::Handle,
) -> Pause {
    loop {
        let Some(chunk) = cursor.next_chunk() else { return Pause::Done };
        let failed = chunk.is_err();
        let tx = permit.send(chunk);
        if failed {
            return Pause::Done;
        }
        permit = match tx.try_reserve_owned() {
            Ok(permit) => permit,
            Err(mpsc::error::TrySendError::Closed(_)) => return Pause::Done,
            Err(mpsc::error::TrySendError::Full(tx)) => {
                match handle.block_on(tokio::time::timeout(LINGER, tx.reserve_owned())) {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(_closed)) => return Pause::Done,
                    Err(_slow) => return Pause::Wait(cursor),
                }
            }
        };
    }
}

/// Where a stream is: the pieces left, and the file piece being read.
struct Cursor {
    pieces: std::vec::IntoIter<Piece>,
    /// A file piece and the next offset to read in it.
    current: Option<(Piece, u64)>,
}

impl Cursor {
    /// The next chunk to send, read and checked; None at the end. Blocking.
    fn next_chunk(&mut self) -> Option<io::Result<Bytes>> {
        loop {
            if let Some((Piece::File { file, check, blob, read, want }, pos)) = &mut self.current {
                if *pos < read.end {
                    let n = READ_CHUNK.min(read.end - *pos);
                    let mut buf = ReadBuffer::take();
                    let at = *pos;
                    *pos += n;
                    return Some(read_checked(file, *blob, check.as_ref(), at..at + n, &mut buf.0).map(|()| {
                        let (lo, hi) = (want.start.max(at) - at, want.end.min(at + n) - at);
                        Bytes::from_owner(buf).slice(lo as usize..hi as usize)
                    }));
                }
            }
            match self.pieces.next()? {
                Piece::Memory(bytes) => return Some(Ok(bytes)),
                piece @ Piece::File { .. } => {
                    let start = match &piece {
                        Piece::File { read, .. } => read.start,
                        Piece::Memory(_) => 0,
                    };
                    self.current = Some((piece, start));
                }
            }
        }
    }
}

/// One small piece, in a pooled buffer (no copy beyond the read).
fn read_piece(piece: &Piece) -> io::Result<Bytes> {
    let Piece::File { file, check, blob, read, want } = piece else {
        return Err(io::Error::other("not a file piece"));
    };
    let mut buf = ReadBuffer::take();
    read_checked(file, *blob, check.as_ref(), read.clone(), &mut buf.0)?;
    let lo = (want.start - read.start) as usize;
    Ok(Bytes::from_owner(buf).slice(lo..lo + (want.end - want.start) as usize))
}

/// Several small pieces, copied into one buffer.
fn read_pieces(pieces: &[Piece]) -> io::Result<Bytes> {
    let mut out = ReadBuffer::take();
    for piece in pieces {
        match piece {
            Piece::Memory(bytes) => out.0.extend_from_slice(bytes),
            Piece::File { .. } => out.0.extend_from_slice(&read_piece(piece)?),
        }
    }
    Ok(Bytes::from_owner(out))
}

/// Appends bytes `range` of a blob file to `buf` and checks them: a short
/// file is corrupt (its size is recorded), not a mere I/O error.
pub(super) fn read_checked(
    file: &File,
    blob: BlobId,
    check: Option<&BlockCheck>,
    range: Range<u64>,
    buf: &mut Vec<u8>,
) -> io::Result<()> {
    let start = buf.len();
    let read = append_from(file, range.start, range.end - range.start, buf)?;
    if read < range.end - range.start {
        return Err(corrupt(blob, range.start + read, Damage::Truncated));
    }
    match (check, buf.get(start..)) {
        (Some(check), Some(data)) => check.verify(range.start, data),
        _ => Ok(()),
    }
}

/// Appends up to `len` bytes of `file` from `offset` to `buf`; returns how
/// many there were. Reading into the vector's spare capacity avoids
/// zero-filling every buffer first.
fn append_from(mut file: &File, offset: u64, len: u64, buf: &mut Vec<u8>) -> io::Result<u64> {
    file.seek(SeekFrom::Start(offset))?;
    Ok(file.take(len).read_to_end(buf)? as u64)
}

/// Read buffers kept for reuse, at most [`POOL_BUFFERS`] of them (8 MiB).
/// Without the pool every chunk was a fresh allocation that the
/// allocator gave back to the kernel once sent: ranged reads spent a fifth
/// of their CPU on page faults, zeroing and unmapping those pages.
static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
const POOL_BUFFERS: usize = 16;

/// A [`READ_CHUNK`]-sized buffer that goes back to the pool when the last
/// `Bytes` made from it (by `Bytes::from_owner`) is dropped, after the send.
struct ReadBuffer(Vec<u8>);

impl ReadBuffer {
    fn take() -> ReadBuffer {
        let pooled = POOL.lock().unwrap_or_else(PoisonError::into_inner).pop();
        ReadBuffer(pooled.unwrap_or_else(|| Vec::with_capacity(READ_CHUNK as usize)))
    }
}

impl AsRef<[u8]> for ReadBuffer {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for ReadBuffer {
    fn drop(&mut self) {
        let mut buf = std::mem::take(&mut self.0);
        buf.clear();
        let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < POOL_BUFFERS && buf.capacity() == READ_CHUNK as usize {
            pool.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::digest::{BlockCrcs, BLOCK_SHIFT, BLOCK_SIZE};
    use crate::store::schema::encode_block_crcs;

    #[test]
    fn reads_widen_to_whole_blocks_within_the_blob() {
        let b = BLOCK_SIZE;
        assert_eq!(widen(BLOCK_SHIFT, 0..1, 10 * b), 0..b);
        assert_eq!(widen(BLOCK_SHIFT, b..2 * b, 10 * b), b..2 * b);
        assert_eq!(widen(BLOCK_SHIFT, b + 1..3 * b - 1, 10 * b), b..3 * b);
        assert_eq!(widen(BLOCK_SHIFT, 9 * b + 5..9 * b + 7, 9 * b + 100), 9 * b..9 * b + 100);
    }

    #[test]
    fn a_check_covers_the_widened_blocks_and_finds_the_changed_one() {
        let data: Vec<u8> = (0..5 * BLOCK_SIZE as u32 + 10).map(|i| (i % 251) as u8).collect();
        let size = data.len() as u64;
        let value = encode_block_crcs(&BlockCrcs::of(&data));
        let check = BlockCheck::from_value(7, &value, 2 * BLOCK_SIZE + 3..4 * BLOCK_SIZE + 1, size).expect("check");
        assert_eq!((check.first, check.crcs.len()), (2, 3));
        let (start, end) = (2 * BLOCK_SIZE as usize, 5 * BLOCK_SIZE as usize);
        assert!(check.verify(2 * BLOCK_SIZE, &data[start..end]).is_ok());
        let mut bad = data[start..end].to_vec();
        bad[BLOCK_SIZE as usize + 9] ^= 1;
        let found = check.verify(2 * BLOCK_SIZE, &bad).err().as_ref().and_then(Corruption::of);
        assert_eq!(found, Some(Corruption { blob: 7, offset: 3 * BLOCK_SIZE, damage: Damage::Mismatch }));
        assert!(BlockCheck::from_value(7, &value[..value.len() - 4], 0..size, size).is_err(), "too few checksums");
    }
}
