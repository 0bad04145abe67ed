//! Writing a body into an immutable blob, crash-safely:
//! stream into `tmp/` while hashing, fsync, let the caller verify the digests,
//! then rename into `blobs/` and fsync the folder. Only after that may a redb
//! transaction reference the blob, so nothing is visible before it is checked
//! and durable. A temp file that is never published deletes itself on drop.
//! Bodies of at most [`INLINE_MAX`] bytes never touch a file: they are stored
//! inline in the database by the very commit that makes them visible.
//!
//! Each upload has a blocking thread fed by a bounded channel (the reactor
//! only moves frames): it decodes, computes the checksums, and hands every
//! frame both to a file writer thread and to the shared MD5 engine
//! (`md5_lanes`), so the copy into the page cache and MD5, the ceiling of one
//! stream, run side by side. Memory per upload is bounded by the queues.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::PathBuf;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::digest::{DigestSpec, Digests, Hashers};
use super::layout::{fsync_dir, new_blob_id, BlobId, Layout};
use super::schema::BlobSpan;
use crate::auth::chunked::AwsChunkedDecoder;
use crate::s3::error::{S3Error, S3Result};

/// Frames in flight between the connection and the hashing thread. Frames are
/// written as they come (no extra buffer, no copy), but one frame can be up to
/// hyper's read buffer (about 400 KiB): with 2 here and 2 before the file
/// writer, 32 concurrent 1 GiB uploads peaked at 164 MiB of server RSS
/// (232 MiB with 4 and 4, 322 MiB with 8 and 8, at the same throughput).
const CHANNEL_FRAMES: usize = 2;

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

/// A small blob's bytes, to be inserted by the transaction that references it.
#[derive(Debug, Clone)]
pub struct InlineBlob {
    pub id: BlobId,
    pub bytes: Vec<u8>,
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
    pub fn in_memory(layout: &Layout, bytes: Vec<u8>, digests: Digests) -> S3Result<StagedBlob> {
        let staged = if bytes.is_empty() { Staged::Empty } else { Staged::Inline(bytes) };
        let id = new_blob_id().map_err(S3Error::internal)?;
        Ok(StagedBlob { id, layout: layout.clone(), staged, digests, trailers: Vec::new() })
    }

    /// Whether publishing is free of file work (an empty or inline body).
    pub fn is_in_memory(&self) -> bool {
        !matches!(self.staged, Staged::File(_))
    }

    /// Makes the body ready to be referenced: a file is renamed into `blobs/`
    /// and the rename made durable; a small body is handed back to be inserted
    /// inline by the same transaction as its record. Blocking.
    pub fn publish(self) -> io::Result<(BlobSpan, Option<InlineBlob>)> {
        let size = self.digests.size;
        match self.staged {
            Staged::Empty => Ok((BlobSpan::EMPTY, None)),
            Staged::Inline(bytes) => {
                let span = BlobSpan { id: self.id, size, part: 0, inline: true };
                Ok((span, Some(InlineBlob { id: self.id, bytes })))
            }
            Staged::File(mut tmp) => {
                fs::rename(&tmp.path, self.layout.blob_path(self.id))?;
                tmp.armed = false;
                fsync_dir(&self.layout.blob_dir(self.id))?;
                Ok((BlobSpan { id: self.id, size, part: 0, inline: false }, None))
            }
        }
    }
}

/// The sending end of an upload: push raw body frames, then `finish`.
pub struct BlobSink {
    tx: mpsc::Sender<Bytes>,
    task: JoinHandle<S3Result<StagedBlob>>,
}

impl BlobSink {
    /// Starts a writer thread. With a decoder, frames are aws-chunked and are
    /// decoded (and their chunk signatures checked) before hashing.
    pub fn start(layout: &Layout, spec: DigestSpec, decoder: Option<AwsChunkedDecoder>) -> BlobSink {
        let (tx, rx) = mpsc::channel(CHANNEL_FRAMES);
        let layout = layout.clone();
        let task = tokio::task::spawn_blocking(move || write_blob(layout, spec, decoder, rx));
        BlobSink { tx, task }
    }

    /// Queues one raw frame. Returns false if the writer already stopped
    /// (bad framing, I/O error): `finish` then reports why.
    pub async fn send(&self, frame: Bytes) -> bool {
        self.tx.send(frame).await.is_ok()
    }

    /// Ends the body and waits for the file to be complete and fsynced.
    pub async fn finish(self) -> S3Result<StagedBlob> {
        drop(self.tx);
        self.task.await.map_err(S3Error::internal)?
    }
}

fn write_blob(
    layout: Layout,
    spec: DigestSpec,
    mut decoder: Option<AwsChunkedDecoder>,
    mut rx: mpsc::Receiver<Bytes>,
) -> S3Result<StagedBlob> {
    let id = new_blob_id().map_err(S3Error::internal)?;
    let mut out = BlobOutput { layout: &layout, id, hashers: Hashers::new(spec), pending: Vec::new(), file: None };
    let mut decoded = Vec::new();
    while let Some(frame) = rx.blocking_recv() {
        match decoder.as_mut() {
            Some(dec) => {
                dec.push(frame, &mut decoded)?;
                for piece in decoded.drain(..) {
                    out.write(piece)?;
                }
            }
            None => out.write(frame)?,
        }
    }
    let trailers = match decoder {
        Some(dec) => dec.finish()?,
        None => Vec::new(),
    };
    let staged = out.finish()?;
    Ok(StagedBlob { id, layout: layout.clone(), staged, digests: out.hashers.finish(), trailers })
}

struct BlobOutput<'a> {
    layout: &'a Layout,
    id: BlobId,
    hashers: Hashers,
    /// The first bytes, until the body proves larger than [`INLINE_MAX`].
    pending: Vec<u8>,
    file: Option<FileWriter>,
}

impl BlobOutput<'_> {
    /// Keeps or writes a frame, then hashes it: the file writer copies it
    /// into the page cache while this thread and the MD5 engine hash it.
    fn write(&mut self, data: Bytes) -> S3Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        if self.file.is_none() && self.pending.len() + data.len() <= INLINE_MAX {
            self.pending.extend_from_slice(&data);
            self.hashers.update(&data);
            return Ok(());
        }
        if self.file.is_none() {
            let writer = FileWriter::start(self.layout.tmp_path(self.id)).map_err(S3Error::io)?;
            let pending = Bytes::from(std::mem::take(&mut self.pending));
            self.file = Some(writer);
            self.send(pending)?;
        }
        self.send(data.clone())?;
        self.hashers.update_frame(&data);
        Ok(())
    }

    /// Hands bytes to the file writer. If it stopped, its own error (a full
    /// disk is `StorageFull`, not a generic failure) is what the client gets.
    fn send(&mut self, data: Bytes) -> S3Result<()> {
        let writer = self.file.as_ref().ok_or_else(|| S3Error::internal("blob file missing"))?;
        if writer.write(data).is_ok() {
            return Ok(());
        }
        match self.file.take() {
            Some(writer) => {
                Err(S3Error::io(writer.finish().err().unwrap_or_else(|| io::Error::other("writer stopped"))))
            }
            None => Err(S3Error::internal("blob file missing")),
        }
    }

    /// Fsyncs a file body, so the later rename can only expose complete bytes.
    fn finish(&mut self) -> S3Result<Staged> {
        match self.file.take() {
            Some(writer) => writer.finish().map(Staged::File).map_err(S3Error::io),
            None if self.pending.is_empty() => Ok(Staged::Empty),
            None => Ok(Staged::Inline(std::mem::take(&mut self.pending))),
        }
    }
}

/// Frames queued between the hashing thread and the file writer (see
/// `CHANNEL_FRAMES` for the memory this bounds).
const WRITER_FRAMES: usize = 2;

/// Writes a body to its temp file on a thread of its own, so that hashing
/// (MD5 is the ceiling of one stream) and the copy into the page cache run
/// side by side instead of one after the other.
struct FileWriter {
    tx: std::sync::mpsc::SyncSender<Bytes>,
    thread: std::thread::JoinHandle<io::Result<File>>,
    tmp: TempFile,
}

impl FileWriter {
    fn start(path: std::path::PathBuf) -> io::Result<FileWriter> {
        let mut file = File::options().write(true).create_new(true).open(&path)?;
        let tmp = TempFile { path, armed: true };
        let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(WRITER_FRAMES);
        let thread = std::thread::Builder::new().name("blob-writer".into()).spawn(move || {
            let mut writeback = Writeback::default();
            for data in rx {
                file.write_all(&data)?;
                writeback.wrote(&file, data.len() as u64);
            }
            Ok(file)
        })?;
        Ok(FileWriter { tx, thread, tmp })
    }

    /// Queues bytes; fails if the writer thread stopped on an I/O error.
    fn write(&self, data: Bytes) -> io::Result<()> {
        self.tx.send(data).map_err(|_| io::Error::other("the blob writer stopped"))
    }

    /// Waits for every byte to be written, then fsyncs the file.
    fn finish(self) -> io::Result<TempFile> {
        drop(self.tx);
        let file = self.thread.join().map_err(|_| io::Error::other("the blob writer panicked"))??;
        file.sync_all()?;
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
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else { return };
    // SAFETY: plain integer arguments on a descriptor `file` keeps open.
    unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE) };
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) {}
