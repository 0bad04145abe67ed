//! Writing a body into an immutable blob, crash-safely:
//! stream into `tmp/` while hashing, fsync, let the caller verify the digests,
//! then rename into `blobs/` and fsync the folder. Only after that may a redb
//! transaction reference the blob, so nothing is visible before it is checked
//! and durable. A temp file that is never published deletes itself on drop.
//! Bodies of at most [`INLINE_MAX`] bytes never touch a file: they are packed
//! into the database by the very commit that makes them visible (`pack.rs`).
//!
//! The connection's task owns the receive loop (and its idle timeout): it
//! gathers frames into batches of up to [`BATCH_BYTES`] and hands each batch,
//! with the upload's state (decoder, hashers, file), to a blocking thread,
//! which gives the state back. One batch is processed while the next is
//! gathered. No thread waits for the network: a silent client costs a parked
//! task, not a thread (a thread per upload let a few hundred stalled uploads
//! take every blocking thread and starve all other clients, issue 9). The
//! blocking side hands each frame to the shared MD5 engine (`md5_lanes`), so
//! MD5, the ceiling of one stream, runs beside the checksums and the copy into
//! the page cache.

use std::fs::{self, File};
use std::future::Future;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinHandle;

use super::digest::{BlockCrcs, ChecksumAlgorithm, DigestSpec, Digests, Hashers};
use super::layout::{fsync_dir, new_blob_id, BlobId, Layout};
use super::schema::BlobSpan;
use super::{StoreError, StoreResult};

/// Turns the frames of a request body into the blob's bytes, on the blocking
/// thread that processes the upload's batches (aws-chunked decoding checks
/// a signature per chunk: work to keep off the reactor). What the encoding
/// is belongs to the layers above; the store only calls it. `E` is the
/// caller's error type, handed back as it is.
pub trait BodyDecoder<E>: Send {
    /// Decodes one raw frame, appending the payload pieces to `out`.
    fn decode(&mut self, frame: Bytes, out: &mut Vec<Bytes>) -> Result<(), E>;
    /// Ends the body; returns its trailing headers, `(lowercase name, value)`.
    fn finish(self: Box<Self>) -> Result<Vec<(String, String)>, E>;
}

/// The most body bytes gathered before they are handed to a blocking thread.
/// One batch is gathered while the previous one is processed, so an upload
/// holds at most about twice this (the frames the MD5 engine has queued are
/// shared with the batch): large enough that handing a batch over costs
/// nothing next to hashing it (about 1.3 ms of MD5 per MiB), small enough
/// that 32 concurrent uploads hold 64 MiB.
const BATCH_BYTES: usize = 1024 * 1024;

/// The most frames in a batch, whatever their size: a client sending
/// aws-chunked bodies over HTTP chunked transfer with tiny chunks would
/// otherwise make a 1 MiB batch hold a million frames.
const BATCH_FRAMES: usize = 256;

/// How long a partial batch waits for more frames before it is processed
/// anyway: a slow or stalled client's bytes go to the file instead of
/// sitting in memory, and the few ms bound how often a trickling client
/// makes us hand work to a thread.
const LINGER: Duration = Duration::from_millis(5);

/// A file in `tmp/` that is removed when dropped, unless published.
struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Bodies up to this size stay in memory and are stored inline in the
/// database, committed with the record that references them.
pub const INLINE_MAX: usize = 32 * 1024;

/// Where a staged body is.
enum Staged {
    Empty,
    /// A small body, kept in memory until it is committed inline.
    Inline(Vec<u8>),
    /// A written and fsynced file in `tmp/`.
    File(TempFile),
}

/// The rows a new blob needs, inserted by the transaction that first
/// references it: its block checksums and, for a small body, its bytes.
#[derive(Debug, Clone)]
pub struct NewBlob {
    pub id: BlobId,
    pub blocks: BlockCrcs,
    /// The bytes of a small blob stored inline; `None` for a file.
    pub inline: Option<Vec<u8>>,
    /// The SHA-256 of its bytes, when known: its key in the unique-file
    /// table (`content.rs`).
    pub sha256: Option<[u8; 32]>,
    pub size: u64,
    /// Its MD5 and flexible checksum, kept in the unique-file table so an
    /// instant upload can answer with what the bytes would have given.
    pub md5: [u8; 16],
    pub checksum: Option<(ChecksumAlgorithm, Vec<u8>)>,
}

/// A body received, hashed and (for files) fsynced, but not yet visible anywhere.
pub struct StagedBlob {
    id: BlobId,
    layout: Layout,
    staged: Staged,
    pub digests: Digests,
    /// Trailing headers of an aws-chunked body, `(lowercase name, value)`.
    pub trailers: Vec<(String, String)>,
}

impl StagedBlob {
    /// A small body already read and hashed in memory: it will be stored inline.
    pub fn in_memory(layout: &Layout, bytes: Vec<u8>, digests: Digests) -> StoreResult<StagedBlob> {
        let staged = if bytes.is_empty() { Staged::Empty } else { Staged::Inline(bytes) };
        let id = new_blob_id()?;
        Ok(StagedBlob { id, layout: layout.clone(), staged, digests, trailers: Vec::new() })
    }

    /// Whether publishing is free of file work (an empty or inline body).
    pub fn is_in_memory(&self) -> bool {
        !matches!(self.staged, Staged::File(_))
    }

    /// Makes the body ready to be referenced: a file is renamed into `blobs/`
    /// and the rename made durable; the block checksums (and a small body,
    /// to be packed) are handed back to be inserted by the same transaction
    /// as its record. The guard removes the file again unless told the
    /// commit that references it succeeded. Blocking.
    pub(super) fn publish(self) -> io::Result<(BlobSpan, Option<NewBlob>, PublishedFile)> {
        let sha256 = self.digests.content_sha256();
        let (md5, checksum) = (self.digests.md5, self.digests.checksum);
        let (id, size, blocks) = (self.id, self.digests.size, self.digests.blocks);
        let nothing = PublishedFile { path: None };
        match self.staged {
            Staged::Empty => Ok((BlobSpan::EMPTY, None, nothing)),
            Staged::Inline(bytes) => {
                let span = BlobSpan { id, size, part: 0, inline: true };
                Ok((span, Some(NewBlob { id, blocks, inline: Some(bytes), sha256, size, md5, checksum }), nothing))
            }
            Staged::File(mut tmp) => {
                let path = self.layout.blob_path(id);
                fs::rename(&tmp.path, &path)?;
                tmp.armed = false;
                let guard = PublishedFile { path: Some(path) };
                fsync_dir(&self.layout.blob_dir(id))?;
                let span = BlobSpan { id, size, part: 0, inline: false };
                Ok((span, Some(NewBlob { id, blocks, inline: None, sha256, size, md5, checksum }), guard))
            }
        }
    }
}

/// A blob file in `blobs/` that no committed record references yet. Dropped
/// without [`PublishedFile::keep`] (the commit failed, the request was
/// dropped before its commit was queued, publishing failed after the
/// rename), it removes the file, on a blocking thread when in a runtime.
#[must_use = "dropping it removes the published file"]
pub struct PublishedFile {
    path: Option<PathBuf>,
}

impl PublishedFile {
    /// The commit that references the file succeeded: it stays.
    pub fn keep(mut self) {
        self.path = None;
    }
}

impl Drop for PublishedFile {
    fn drop(&mut self) {
        let Some(path) = self.path.take() else { return };
        let remove = move || {
            if let Err(e) = fs::remove_file(&path) {
                tracing::warn!(error = %e, path = %path.display(), "could not remove an unused blob; the orphan sweep will");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(remove)),
            Err(_) => remove(),
        }
    }
}

/// The receiving end of an upload, driven by the connection's task: feed it
/// raw body frames with [`BlobSink::feed`], then [`BlobSink::finish`]. `E` is
/// the caller's error type: errors of the frame source and of the decoder
/// come back as they were raised, the store's own through `From`.
pub struct BlobSink<E: 'static> {
    /// The upload's state while no batch is being processed.
    idle: Option<Box<BlobWriter<E>>>,
    /// The batch being processed on a blocking thread; it gives the state back.
    busy: Option<Busy<E>>,
    batch: Vec<Bytes>,
    batch_bytes: usize,
}

type Busy<E> = JoinHandle<Result<Box<BlobWriter<E>>, E>>;

impl<E: From<StoreError> + Send + 'static> BlobSink<E> {
    /// A new upload; nothing runs until there are bytes to process. With a
    /// decoder, frames are decoded (aws-chunked: and their chunk signatures
    /// checked) before hashing.
    pub fn start(layout: &Layout, spec: DigestSpec, decoder: Option<Box<dyn BodyDecoder<E>>>) -> Result<Self, E> {
        let out = BlobOutput {
            layout: layout.clone(),
            id: new_blob_id().map_err(StoreError::from)?,
            hashers: Hashers::new(spec),
            pending: Vec::new(),
            file: None,
        };
        let writer = BlobWriter { decoder, decoded: Vec::new(), out };
        Ok(BlobSink { idle: Some(Box::new(writer)), busy: None, batch: Vec::new(), batch_bytes: 0 })
    }

    /// Waits for `next`, the next raw frame (`None` at the end of the body),
    /// and takes it in. Meanwhile the batch in flight may come back, and a
    /// partial batch that waited [`LINGER`] is processed. Returns false at the
    /// end of the body; an error from `next` (a timeout, a broken connection)
    /// or from processing ends the upload.
    pub async fn feed(&mut self, next: impl Future<Output = Result<Option<Bytes>, E>>) -> Result<bool, E> {
        tokio::pin!(next);
        loop {
            let lingering = self.busy.is_none() && self.batch_bytes > 0;
            tokio::select! {
                biased;
                item = &mut next => {
                    let Some(frame) = item? else { return Ok(false) };
                    self.push(frame).await?;
                    return Ok(true);
                }
                back = landed(&mut self.busy) => {
                    self.busy = None;
                    self.idle = Some(back?);
                }
                () = tokio::time::sleep(LINGER), if lingering => self.dispatch()?,
            }
        }
    }

    /// Ends the body: processes what is left and fsyncs the file.
    pub async fn finish(mut self) -> Result<StagedBlob, E> {
        self.land().await?;
        let writer = self.idle.take().ok_or_else(state_lost)?;
        let batch = std::mem::take(&mut self.batch);
        match tokio::task::spawn_blocking(move || writer.finish(batch)).await {
            Ok(result) => result,
            Err(e) => Err(StoreError::caused("upload thread", e).into()),
        }
    }

    async fn push(&mut self, frame: Bytes) -> Result<(), E> {
        if frame.is_empty() {
            return Ok(());
        }
        self.batch_bytes += frame.len();
        self.batch.push(frame);
        if self.batch_bytes >= BATCH_BYTES || self.batch.len() >= BATCH_FRAMES {
            self.land().await?;
            self.dispatch()?;
        }
        Ok(())
    }

    /// Waits for the batch in flight, if any, to give the state back.
    async fn land(&mut self) -> Result<(), E> {
        if self.busy.is_some() {
            let back = landed(&mut self.busy).await;
            self.busy = None;
            self.idle = Some(back?);
        }
        Ok(())
    }

    /// Hands the gathered batch and the state to a blocking thread.
    fn dispatch(&mut self) -> Result<(), E> {
        let mut writer = self.idle.take().ok_or_else(state_lost)?;
        let batch = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        self.busy = Some(tokio::task::spawn_blocking(move || {
            writer.write_batch(batch)?;
            Ok(writer)
        }));
        Ok(())
    }
}

/// The state the batch in flight gives back; never resolves if none is.
async fn landed<E: From<StoreError>>(busy: &mut Option<Busy<E>>) -> Result<Box<BlobWriter<E>>, E> {
    match busy {
        Some(job) => job.await.map_err(|e| StoreError::caused("upload thread", e))?,
        None => std::future::pending().await,
    }
}

fn state_lost() -> StoreError {
    StoreError::internal("upload state lost")
}

impl<E: 'static> Drop for BlobSink<E> {
    /// An abandoned upload (timeout, error, client gone): its temp file is
    /// closed and unlinked on a blocking thread, not on the reactor. A batch
    /// still in flight does the same when it ends.
    fn drop(&mut self) {
        let Some(writer) = self.idle.take() else { return };
        if writer.out.file.is_none() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn_blocking(move || drop(writer));
        }
    }
}

/// One upload's state, moved to a blocking thread with each batch.
struct BlobWriter<E> {
    decoder: Option<Box<dyn BodyDecoder<E>>>,
    /// The decoder's output, kept to reuse its allocation.
    decoded: Vec<Bytes>,
    out: BlobOutput,
}

impl<E: From<StoreError>> BlobWriter<E> {
    fn write_batch(&mut self, batch: Vec<Bytes>) -> Result<(), E> {
        for frame in batch {
            match self.decoder.as_mut() {
                Some(dec) => {
                    dec.decode(frame, &mut self.decoded)?;
                    for piece in self.decoded.drain(..) {
                        self.out.write(piece)?;
                    }
                }
                None => self.out.write(frame)?,
            }
        }
        Ok(())
    }

    /// Processes the last batch, checks the trailer, fsyncs the file.
    fn finish(mut self: Box<Self>, batch: Vec<Bytes>) -> Result<StagedBlob, E> {
        self.write_batch(batch)?;
        let trailers = match self.decoder.take() {
            Some(dec) => dec.finish()?,
            None => Vec::new(),
        };
        let staged = self.out.finish()?;
        let BlobOutput { layout, id, hashers, .. } = self.out;
        Ok(StagedBlob { id, layout, staged, digests: hashers.finish(), trailers })
    }
}

struct BlobOutput {
    layout: Layout,
    id: BlobId,
    hashers: Hashers,
    /// The first bytes, until the body proves larger than [`INLINE_MAX`].
    pending: Vec<u8>,
    file: Option<TempWriter>,
}

impl BlobOutput {
    /// Keeps or writes a frame and hashes it: its MD5 is queued for the
    /// shared engine first, so the engine hashes while this thread computes
    /// the other checksums and copies the frame into the page cache.
    fn write(&mut self, data: Bytes) -> StoreResult<()> {
        if data.is_empty() {
            return Ok(());
        }
        if self.file.is_none() && self.pending.len() + data.len() <= INLINE_MAX {
            self.pending.extend_from_slice(&data);
            self.hashers.update(&data);
            return Ok(());
        }
        let file = match &mut self.file {
            Some(file) => file,
            None => {
                let mut file = TempWriter::create(self.layout.tmp_path(self.id))?;
                file.write(&std::mem::take(&mut self.pending))?;
                self.file.insert(file)
            }
        };
        self.hashers.update_frame(&data);
        Ok(file.write(&data)?)
    }

    /// Fsyncs a file body, so the later rename can only expose complete bytes.
    fn finish(&mut self) -> StoreResult<Staged> {
        match self.file.take() {
            Some(file) => Ok(file.finish().map(Staged::File)?),
            None if self.pending.is_empty() => Ok(Staged::Empty),
            None => Ok(Staged::Inline(std::mem::take(&mut self.pending))),
        }
    }
}

/// A body's temp file being written, with early writeback.
struct TempWriter {
    file: File,
    tmp: TempFile,
    writeback: Writeback,
}

impl TempWriter {
    fn create(path: PathBuf) -> io::Result<TempWriter> {
        let file = File::options().write(true).create_new(true).open(&path)?;
        Ok(TempWriter { file, tmp: TempFile { path, armed: true }, writeback: Writeback::default() })
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)?;
        self.writeback.wrote(&self.file, data.len() as u64);
        Ok(())
    }

    /// Fsyncs the file: only complete, durable bytes may be renamed into place.
    fn finish(self) -> io::Result<TempFile> {
        self.file.sync_all()?;
        Ok(self.tmp)
    }
}

/// Dirty bytes after which the writer asks the kernel to start writing them
/// out. Without it a body sits in the page cache until the final fsync, which
/// then waits for all of it: the disk idles while the body arrives and the
/// client waits while the disk works. (RocksDB's `bytes_per_sync` does the same.)
const WRITEBACK_BYTES: u64 = 4 * 1024 * 1024;

/// Starts writeback of a file's bytes as they are written, so the final
/// fsync only waits for the last few MiB.
#[derive(Default)]
struct Writeback {
    written: u64,
    started: u64,
}

impl Writeback {
    fn wrote(&mut self, file: &File, len: u64) {
        self.written += len;
        if self.written - self.started >= WRITEBACK_BYTES {
            start_writeback(file, self.started, self.written - self.started);
            self.started = self.written;
        }
    }
}

/// `sync_file_range(SYNC_FILE_RANGE_WRITE)`: queue the range for writing and
/// return. A hint only (durability still comes from the fsync), so failure
/// is ignored.
#[cfg(target_os = "linux")]
pub fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else { return };
    // SAFETY: plain integer arguments on a descriptor `file` keeps open.
    unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE) };
}

#[cfg(not(target_os = "linux"))]
pub fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

#[cfg(test)]
#[path = "blob_tests.rs"]
mod tests;
