//! Reading an object's bytes: the blob files are opened up front (so a
//! concurrent delete, which only unlinks, cannot cut a response short), then a
//! blocking thread streams the requested range in large positioned reads
//! through a small bounded channel. Memory per reader: a few buffers.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use super::layout::Layout;
use super::schema::BlobSpan;

const READ_CHUNK: u64 = 256 * 1024;
const CHANNEL_CHUNKS: usize = 4;

/// One open blob and the part of it to send.
struct Piece {
    file: File,
    offset: u64,
    len: u64,
}

/// The open files behind one ranged read of an object.
pub struct OpenObject {
    pieces: Vec<Piece>,
}

/// Opens the blobs that hold `range` of an object made of `spans`.
/// Blocking: call off the reactor.
pub fn open(layout: &Layout, spans: &[BlobSpan], range: Range<u64>) -> io::Result<OpenObject> {
    let mut pieces = Vec::new();
    let mut blob_start = 0u64;
    for span in spans {
        let blob_end = blob_start + span.size;
        let start = range.start.max(blob_start);
        let end = range.end.min(blob_end);
        if start < end {
            let file = File::open(layout.blob_path(span.id))?;
            pieces.push(Piece { file, offset: start - blob_start, len: end - start });
        }
        blob_start = blob_end;
    }
    Ok(OpenObject { pieces })
}

/// Reads up to this size are done in one go on the opening thread.
const SMALL_READ: u64 = 256 * 1024;

impl OpenObject {
    /// The whole content at once, if it is small (`None` otherwise): saves a
    /// thread hand-off and a channel per small GET. Blocking.
    pub fn read_small(&self) -> Option<io::Result<Bytes>> {
        let total: u64 = self.pieces.iter().map(|p| p.len).sum();
        if total > SMALL_READ {
            return None;
        }
        let mut buf = BytesMut::zeroed(total as usize);
        let mut at = 0usize;
        for piece in &self.pieces {
            let end = at + piece.len as usize;
            let Some(slot) = buf.get_mut(at..end) else { return Some(Err(io::Error::other("piece out of bounds"))) };
            if let Err(e) = piece.file.read_exact_at(slot, piece.offset) {
                return Some(Err(e));
            }
            at = end;
        }
        Some(Ok(buf.freeze()))
    }

    /// Streams the pieces from a blocking thread. The thread stops as soon as
    /// the receiver is dropped (client gone).
    pub fn stream(self) -> mpsc::Receiver<io::Result<Bytes>> {
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        tokio::task::spawn_blocking(move || {
            for piece in self.pieces {
                if let Err(e) = send_piece(&piece, &tx) {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        });
        rx
    }
}

fn send_piece(piece: &Piece, tx: &mpsc::Sender<io::Result<Bytes>>) -> io::Result<()> {
    let mut pos = piece.offset;
    let end = piece.offset + piece.len;
    while pos < end {
        let n = READ_CHUNK.min(end - pos) as usize;
        let mut buf = BytesMut::zeroed(n);
        piece.file.read_exact_at(&mut buf, pos)?;
        if tx.blocking_send(Ok(buf.freeze())).is_err() {
            return Ok(()); // the client went away
        }
        pos += n as u64;
    }
    Ok(())
}
