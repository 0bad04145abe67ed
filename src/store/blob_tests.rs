//! Tests of the upload pipeline on its own: bodies cut into frames anywhere,
//! client pauses that make a partial batch go to the blocking thread, a
//! decoded body cut across batches, and abandoned uploads.

use std::time::Duration;

use bytes::Bytes;
use md5::{Digest, Md5};
use sha2::Sha256;

use super::{BlobSink, BodyDecoder, Staged, StagedBlob};
use crate::store::digest::{ChecksumAlgorithm, DigestSpec};
use crate::store::layout::Layout;
use crate::store::{StoreError, StoreResult};

const SPEC: DigestSpec = DigestSpec { sha256: true, checksum: Some(ChecksumAlgorithm::Crc32) };

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 977) as u8).collect()
}

/// Cuts `body` at `cuts` (offsets, ascending, clamped to the length).
fn frames(body: &[u8], cuts: &[usize]) -> Vec<Bytes> {
    let mut edges: Vec<usize> = cuts.iter().map(|&c| c.min(body.len())).collect();
    edges.insert(0, 0);
    edges.push(body.len());
    edges.windows(2).map(|w| Bytes::copy_from_slice(&body[w[0]..w[1]])).collect()
}

/// Feeds the frames, the client pausing (longer than the batch linger)
/// before every frame whose index is in `pauses`.
async fn receive(
    layout: &Layout,
    frames: Vec<Bytes>,
    pauses: &[usize],
    decoder: Option<Box<dyn BodyDecoder<StoreError>>>,
) -> StoreResult<StagedBlob> {
    let mut sink = BlobSink::start(layout, SPEC, decoder)?;
    for (i, frame) in frames.into_iter().enumerate() {
        let pause = pauses.contains(&i);
        let next = async move {
            if pause {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(Some(frame))
        };
        assert!(sink.feed(next).await?);
    }
    assert!(!sink.feed(async { Ok(None) }).await?);
    sink.finish().await
}

fn check_digests(staged: &StagedBlob, body: &[u8]) {
    assert_eq!(staged.digests.size, body.len() as u64);
    assert_eq!(staged.digests.md5, <[u8; 16]>::from(Md5::digest(body)));
    assert_eq!(staged.digests.sha256, Some(<[u8; 32]>::from(Sha256::digest(body))));
    let crc = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32IsoHdlc, body) as u32;
    assert_eq!(staged.digests.checksum, Some((ChecksumAlgorithm::Crc32, crc.to_be_bytes().to_vec())));
}

fn file_bytes(layout: &Layout, staged: StagedBlob) -> Vec<u8> {
    assert!(matches!(staged.staged, Staged::File(_)), "a body over the inline size is a file");
    let id = staged.id;
    let (_, _, file) = staged.publish().expect("publish");
    file.keep();
    std::fs::read(layout.blob_path(id)).expect("read the blob")
}

fn tmp_files(layout: &Layout) -> usize {
    std::fs::read_dir(layout.tmp_dir()).map(|d| d.count()).unwrap_or(0)
}

#[tokio::test]
async fn body_cut_anywhere_with_pauses_is_written_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = Layout::create(dir.path()).expect("layout");
    let body = data(3 * 1024 * 1024 + 123);
    // Around the inline size (32 KiB), single bytes, the 1 MiB batch size.
    let cuts = [1, 2, 7, 32 * 1024 - 1, 32 * 1024 + 1, 100_000, 700_000, 1024 * 1024, 1024 * 1024 + 1, 2_500_000];
    let staged = receive(&layout, frames(&body, &cuts), &[1, 4, 6, 9], None).await.expect("receive");
    check_digests(&staged, &body);
    assert!(file_bytes(&layout, staged) == body, "the file holds the body byte for byte");
    assert_eq!(tmp_files(&layout), 0);
}

#[tokio::test]
async fn small_body_with_pauses_stays_inline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = Layout::create(dir.path()).expect("layout");
    let body = data(20_000);
    let staged = receive(&layout, frames(&body, &[10, 5000, 19_999]), &[1, 2, 3], None).await.expect("receive");
    check_digests(&staged, &body);
    match &staged.staged {
        Staged::Inline(bytes) => assert!(*bytes == body),
        _ => panic!("a 20,000-byte body is kept for inline storage"),
    }
    assert_eq!(tmp_files(&layout), 0, "no temp file for an inline body");
}

/// A stand-in for aws-chunked: every byte is sent twice, and the body ends
/// with a trailer line. Its state (half a pair) crosses frame boundaries,
/// as a chunk header does.
#[derive(Default)]
struct Doubled {
    half: Option<u8>,
}

impl BodyDecoder<StoreError> for Doubled {
    fn decode(&mut self, frame: Bytes, out: &mut Vec<Bytes>) -> StoreResult<()> {
        let mut piece = Vec::with_capacity(frame.len() / 2 + 1);
        for byte in frame {
            match self.half.take() {
                Some(first) if first == byte => piece.push(byte),
                Some(_) => return Err(StoreError::internal("not a pair")),
                None => self.half = Some(byte),
            }
        }
        out.push(Bytes::from(piece));
        Ok(())
    }

    fn finish(self: Box<Self>) -> StoreResult<Vec<(String, String)>> {
        match self.half {
            None => Ok(vec![("x-trailer".to_string(), "done".to_string())]),
            Some(_) => Err(StoreError::internal("the body ends inside a pair")),
        }
    }
}

#[tokio::test]
async fn decoded_body_is_decoded_across_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = Layout::create(dir.path()).expect("layout");
    let payload = data(2 * 1024 * 1024 + 999);
    let body: Vec<u8> = payload.iter().flat_map(|&b| [b, b]).collect();
    // Odd cuts fall inside a pair.
    let cuts = [3, 65_541, 70_000, 1_100_001, 2_000_000, body.len() - 11];
    let staged =
        receive(&layout, frames(&body, &cuts), &[1, 3, 6], Some(Box::new(Doubled::default()))).await.expect("receive");
    check_digests(&staged, &payload);
    assert_eq!(staged.trailers, vec![("x-trailer".to_string(), "done".to_string())]);
    assert!(file_bytes(&layout, staged) == payload);
}

#[tokio::test]
async fn a_decoder_error_ends_the_upload_and_leaves_no_temp_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = Layout::create(dir.path()).expect("layout");
    let mut body: Vec<u8> = data(300_000).iter().flat_map(|&b| [b, b]).collect();
    body[500_001] ^= 1;
    let result = receive(&layout, frames(&body, &[100_000, 400_000]), &[], Some(Box::new(Doubled::default()))).await;
    assert!(
        matches!(result, Err(StoreError::Internal { ref context, .. }) if context == "not a pair"),
        "{:?}",
        result.err()
    );
    for _ in 0..100 {
        if tmp_files(&layout) == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the failed upload's temp file is still there");
}

#[tokio::test]
async fn abandoned_upload_leaves_no_temp_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = Layout::create(dir.path()).expect("layout");
    let mut sink = BlobSink::<StoreError>::start(&layout, SPEC, None).expect("start");
    assert!(sink.feed(async { Ok(Some(Bytes::from(data(200_000)))) }).await.expect("feed"));
    // The client goes silent: the partial batch goes to the temp file, then
    // the source gives up (as the body timeout does).
    let stalled = async {
        for _ in 0..200 {
            if tmp_files(&layout) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err(StoreError::Unavailable)
    };
    let err = sink.feed(stalled).await.expect_err("the source's error ends the upload");
    assert!(matches!(err, StoreError::Unavailable), "the source's own error comes back: {err}");
    assert_eq!(tmp_files(&layout), 1, "the paused partial batch went to its temp file");
    drop(sink);
    for _ in 0..100 {
        if tmp_files(&layout) == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the abandoned upload's temp file is still there");
}

#[tokio::test]
async fn many_tiny_frames_are_written_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = Layout::create(dir.path()).expect("layout");
    let body = data(150_001);
    let cuts: Vec<usize> = (1..3000).map(|i| i * 50).collect();
    let staged = receive(&layout, frames(&body, &cuts), &[700], None).await.expect("receive");
    check_digests(&staged, &body);
    assert!(file_bytes(&layout, staged) == body);
}
