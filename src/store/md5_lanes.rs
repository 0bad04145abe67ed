//! MD5 for many uploads at once on one core.
//!
//! MD5 is the ceiling of an upload: every byte must go through it for the
//! ETag, and one stream cannot be split (each 64-byte block depends on the
//! previous one). Independent streams can share one core though: SIMD lanes
//! hash 8 (AVX2) or 16 (AVX-512) streams in the time scalar code hashes about
//! one and a half. So large frames of every upload are handed to one engine
//! thread, which hashes whatever uploads are waiting side by side, in rounds of
//! at most [`ROUND_BYTES`] per lane so that a newly arriving upload joins the
//! batch quickly. One upload alone is hashed with the scalar code, which is
//! what it would get on its own thread. Measured on this 2-core machine
//! (docs/performance.md): one stream 772 MiB/s, four streams together
//! 2,379 MiB/s on one core, versus 595 MiB/s per core for the `md-5` crate.
//!
//! The engine never owns a caller's only copy of its state: if it ever stops
//! (a panic), callers hash their frame themselves and nothing is lost.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};

use bytes::Bytes;
use md5_many::{Md5Many, Md5State};

/// Frames shorter than this are hashed by the caller: the hand-off to the
/// engine and back costs more than batching saves.
pub const SHARED_MIN_BYTES: usize = 16 * 1024;

/// The most one lane hashes before the batch is formed again (about 0.1 ms
/// for 8 lanes), which bounds how long a newly arriving upload waits.
const ROUND_BYTES: usize = 64 * 1024;

/// The widest batch: AVX-512's native width, or two AVX2 groups.
const MAX_LANES: usize = 16;

/// Frames one upload may have queued for hashing. More than one keeps the
/// engine busy while the upload's thread fetches the next frame; the frames
/// are shared with the file writer, so this adds little memory.
const MAX_QUEUED: usize = 4;

/// A running MD5 whose large frames are hashed by the shared engine, batched
/// with other uploads', while the caller goes on.
pub struct LaneMd5 {
    lane: Arc<Lane>,
}

impl Default for LaneMd5 {
    fn default() -> Self {
        LaneMd5 { lane: Arc::new(Lane::default()) }
    }
}

impl LaneMd5 {
    /// Hashes `data` on the calling thread, after any queued frame.
    pub fn update(&mut self, data: &[u8]) {
        self.lane.wait_idle().state.update(data);
    }

    /// Queues a frame for the engine (small frames, or without an engine: hashed
    /// here). Waits only if the upload already has [`MAX_QUEUED`] frames queued.
    pub fn push(&mut self, frame: Bytes) {
        let Some(engine) = engine().filter(|_| frame.len() >= SHARED_MIN_BYTES) else {
            return self.update(&frame);
        };
        let mut inner = lock(&self.lane.inner);
        while inner.frames.len() >= MAX_QUEUED && !inner.orphaned {
            inner = self.lane.changed.wait(inner).unwrap_or_else(PoisonError::into_inner);
        }
        inner.frames.push_back(frame);
        let enqueue = !inner.in_engine && !inner.orphaned;
        inner.in_engine |= enqueue;
        drop(inner);
        if enqueue {
            engine.enqueue(self.lane.clone());
        }
    }

    /// Waits for every queued frame, then finishes the digest.
    pub fn finalize(&self) -> [u8; 16] {
        self.lane.wait_idle().state.finalize()
    }
}

impl Drop for LaneMd5 {
    /// An abandoned upload: the engine drops its frames unhashed.
    fn drop(&mut self) {
        let mut inner = lock(&self.lane.inner);
        inner.frames.clear();
        inner.offset = 0;
    }
}

/// One upload's MD5 state and the frames it still has to hash.
#[derive(Default)]
struct Lane {
    inner: Mutex<LaneInner>,
    /// Signalled whenever the engine consumed a frame or gave the lane back.
    changed: Condvar,
}

#[derive(Default)]
struct LaneInner {
    state: Md5State,
    frames: VecDeque<Bytes>,
    /// Bytes of the front frame already hashed.
    offset: usize,
    /// In the engine's queue or batch; only the engine clears it.
    in_engine: bool,
    /// The engine stopped: the owner hashes what is left itself.
    orphaned: bool,
}

impl LaneInner {
    /// Hashes whatever is queued on the calling thread.
    #[allow(clippy::indexing_slicing, reason = "offset is at most the frame length (Work keeps it so)")]
    fn hash_queued(&mut self) {
        while let Some(frame) = self.frames.pop_front() {
            self.state.update(&frame[self.offset..]);
            self.offset = 0;
        }
    }
}

impl Lane {
    /// Locks the lane once no frame is queued, so its state is current.
    fn wait_idle(&self) -> MutexGuard<'_, LaneInner> {
        let mut inner = lock(&self.inner);
        while !inner.frames.is_empty() {
            if inner.orphaned {
                inner.hash_queued();
                break;
            }
            inner = self.changed.wait(inner).unwrap_or_else(PoisonError::into_inner);
        }
        inner
    }
}

/// The queue between uploads and the engine thread.
struct Engine {
    /// Lanes with frames to hash, not yet in the engine's batch.
    queue: Mutex<Vec<Arc<Lane>>>,
    wake: Condvar,
    /// Set (under the queue's lock) when the engine thread stopped: callers
    /// hash on their own.
    stopped: AtomicBool,
}

/// The process-wide engine, started on first use; `None` if its thread could
/// not be started or has stopped.
fn engine() -> Option<&'static Engine> {
    static ENGINE: OnceLock<Option<&'static Engine>> = OnceLock::new();
    let engine = (*ENGINE.get_or_init(Engine::start))?;
    (!engine.stopped.load(Ordering::Relaxed)).then_some(engine)
}

impl Engine {
    fn start() -> Option<&'static Engine> {
        let engine = Engine { queue: Mutex::default(), wake: Condvar::new(), stopped: AtomicBool::new(false) };
        let engine: &'static Engine = Box::leak(Box::new(engine));
        let spawned = std::thread::Builder::new().name("md5-lanes".into()).spawn(move || engine.run());
        spawned.ok().map(|_| engine)
    }

    fn enqueue(&self, lane: Arc<Lane>) {
        let mut queue = lock(&self.queue);
        if self.stopped.load(Ordering::Relaxed) {
            drop(queue);
            return orphan(&lane);
        }
        queue.push(lane);
        drop(queue);
        self.wake.notify_one();
    }

    fn run(&self) {
        let simd = Md5Many::new();
        let mut active: Vec<Arc<Lane>> = Vec::with_capacity(MAX_LANES);
        loop {
            self.take_waiting(&mut active);
            if catch_unwind(AssertUnwindSafe(|| hash_round(simd, &mut active))).is_err() {
                return self.stop(active);
            }
        }
    }

    /// Fills free lanes from the queue, sleeping while there is nothing to do.
    /// With more uploads than lanes, the batch goes to the back of the queue
    /// after every round (round robin), so no upload waits for others to end.
    fn take_waiting(&self, active: &mut Vec<Arc<Lane>>) {
        let mut queue = lock(&self.queue);
        while active.is_empty() && queue.is_empty() {
            queue = self.wake.wait(queue).unwrap_or_else(PoisonError::into_inner);
        }
        if active.len() == MAX_LANES && !queue.is_empty() {
            queue.extend(active.drain(..));
        }
        let take = queue.len().min(MAX_LANES - active.len());
        active.extend(queue.drain(..take));
    }

    /// After a panic: every owner, now and later, hashes on its own thread.
    fn stop(&self, active: Vec<Arc<Lane>>) {
        let mut queue = lock(&self.queue);
        self.stopped.store(true, Ordering::Relaxed);
        let waiting = std::mem::take(&mut *queue);
        drop(queue);
        for lane in active.iter().chain(&waiting) {
            orphan(lane);
        }
    }
}

fn orphan(lane: &Lane) {
    let mut inner = lock(&lane.inner);
    inner.orphaned = true;
    inner.in_engine = false;
    drop(inner);
    lane.changed.notify_all();
}

/// One lane's share of a round: its state and the bytes it will hash.
struct Work {
    state: Md5State,
    frame: Bytes,
    offset: usize,
}

/// Hashes the same number of bytes of every active lane's front frame: the
/// least any lane has left, at most [`ROUND_BYTES`]. Then hands each lane its
/// new state, and gives back lanes with nothing left. Unused SIMD lanes
/// repeat the first lane (their results are dropped), which keeps the batch on
/// the full-width kernel.
fn hash_round(simd: Md5Many, active: &mut Vec<Arc<Lane>>) {
    let mut work: Vec<Work> = active.iter().map(|lane| snapshot(lane)).collect();
    let len = work.iter().map(|w| w.frame.len() - w.offset).min().unwrap_or(0).min(ROUND_BYTES);
    hash_work(simd, &mut work, len);
    let mut stays = active.iter().zip(work).map(|(lane, w)| write_back(lane, w, len)).collect::<Vec<_>>().into_iter();
    active.retain(|_| stays.next().unwrap_or(false));
}

fn snapshot(lane: &Lane) -> Work {
    let inner = lock(&lane.inner);
    match inner.frames.front() {
        Some(frame) => Work { state: inner.state, frame: frame.clone(), offset: inner.offset.min(frame.len()) },
        None => Work { state: inner.state, frame: Bytes::new(), offset: 0 },
    }
}

#[allow(
    clippy::indexing_slicing,
    reason = "hot path: len is the least any lane holds past its offset, and the engine never activates more than MAX_LANES lanes"
)]
fn hash_work(simd: Md5Many, work: &mut [Work], len: usize) {
    if len == 0 {
        return;
    }
    if let [w] = work {
        return w.state.update(&w.frame[w.offset..w.offset + len]);
    }
    let width = if work.len() <= 8 { 8 } else { MAX_LANES };
    let mut states = [work[0].state; MAX_LANES];
    let mut inputs: [&[u8]; MAX_LANES] = [&work[0].frame[work[0].offset..work[0].offset + len]; MAX_LANES];
    for (i, w) in work.iter().enumerate() {
        states[i] = w.state;
        inputs[i] = &w.frame[w.offset..w.offset + len];
    }
    simd.update_many(&mut states[..width], &inputs[..width]);
    for (w, state) in work.iter_mut().zip(states) {
        w.state = state;
    }
}

/// Stores a lane's new state; returns whether it stays in the batch.
fn write_back(lane: &Lane, work: Work, len: usize) -> bool {
    let mut inner = lock(&lane.inner);
    // The owner may have dropped its frames (an abandoned upload) meanwhile.
    if !inner.frames.is_empty() {
        inner.state = work.state;
        inner.offset += len;
        if inner.frames.front().is_some_and(|front| inner.offset == front.len()) {
            inner.frames.pop_front();
            inner.offset = 0;
        }
    }
    let stays = !inner.frames.is_empty();
    inner.in_engine = stays;
    drop(inner);
    lane.changed.notify_all();
    stays
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::{Digest, Md5};
    use proptest::prelude::*;

    fn reference(data: &[u8]) -> [u8; 16] {
        Md5::digest(data).into()
    }

    fn pattern(len: usize, seed: u8) -> Bytes {
        (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed ^ (i >> 9) as u8)).collect::<Vec<_>>().into()
    }

    /// Hashes `data` split at the given frame sizes, large frames on the engine.
    fn hash_in_frames(data: &Bytes, frames: &[usize]) -> [u8; 16] {
        let mut md5 = LaneMd5::default();
        let mut at = 0;
        for &size in frames.iter().cycle() {
            if at == data.len() {
                break;
            }
            let end = (at + size.max(1)).min(data.len());
            md5.push(data.slice(at..end));
            at = end;
        }
        md5.finalize()
    }

    #[test]
    fn known_digests() {
        let empty = LaneMd5::default().finalize();
        assert_eq!(hex::encode(empty), "d41d8cd98f00b204e9800998ecf8427e");
        let mut fox = LaneMd5::default();
        fox.update(b"The quick ");
        fox.push(Bytes::from(vec![b'x'; 20_000]));
        fox.update(b"brown fox");
        fox.push(Bytes::from(vec![b'y'; 30_000]));
        let mut expected = b"The quick ".to_vec();
        expected.extend([b'x'; 20_000]);
        expected.extend(b"brown fox");
        expected.extend([b'y'; 30_000]);
        assert_eq!(fox.finalize(), reference(&expected));
    }

    #[test]
    fn many_uploads_at_once_match_md5() {
        // 24 threads (more than the lanes, so the batch rotates) with frame
        // sizes that are not multiples of 64, so the lanes are misaligned and
        // join and leave the batch at odd points.
        let handles: Vec<_> = (0..24u8)
            .map(|seed| {
                std::thread::spawn(move || {
                    let data = pattern(2 * 1024 * 1024 + seed as usize * 4099, seed);
                    let frames = [17_000 + seed as usize * 1000, 70_001, 16_384, 300];
                    (hash_in_frames(&data, &frames), reference(&data))
                })
            })
            .collect();
        for handle in handles {
            let (got, want) = handle.join().expect("hashing thread");
            assert_eq!(got, want);
        }
    }

    #[test]
    fn batched_rounds_match_md5() {
        // Called directly, so every width is exercised whatever the timing:
        // 2 and 5 lanes (padded to 8), 13 lanes (16), frames of odd sizes.
        for count in [2usize, 5, 13] {
            let data: Vec<Bytes> = (0..count).map(|i| pattern(200_000 + i * 7_777, i as u8)).collect();
            let lanes: Vec<Arc<Lane>> = data
                .iter()
                .map(|d| {
                    let lane = Arc::new(Lane::default());
                    let mut inner = lock(&lane.inner);
                    inner.frames.extend([d.slice(..70_001), d.slice(70_001..)]);
                    drop(inner);
                    lane
                })
                .collect();
            let mut active = lanes.clone();
            while !active.is_empty() {
                hash_round(Md5Many::new(), &mut active);
            }
            for (lane, d) in lanes.iter().zip(&data) {
                assert_eq!(lock(&lane.inner).state.finalize(), reference(d));
            }
        }
    }

    #[test]
    fn an_abandoned_upload_leaves_the_batch() {
        let data = pattern(2 * ROUND_BYTES + 2, 3);
        let md5 = LaneMd5::default();
        lock(&md5.lane.inner).frames.extend([data.slice(..ROUND_BYTES + 1), data.slice(ROUND_BYTES + 1..)]);
        let mut active = vec![md5.lane.clone()];
        hash_round(Md5Many::new(), &mut active);
        assert_eq!(lock(&md5.lane.inner).offset, ROUND_BYTES);
        let lane = md5.lane.clone();
        drop(md5);
        hash_round(Md5Many::new(), &mut active);
        assert!(active.is_empty());
        assert!(!lock(&lane.inner).in_engine);
    }

    #[test]
    fn an_orphaned_lane_is_finished_by_its_owner() {
        let data = pattern(100_000, 9);
        let md5 = LaneMd5::default();
        lock(&md5.lane.inner).frames.extend([data.slice(..50_000), data.slice(50_000..)]);
        orphan(&md5.lane);
        assert_eq!(md5.finalize(), reference(&data));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_split_matches_md5(len in 0usize..300_000, frames in prop::collection::vec(1usize..100_000, 1..6), seed: u8) {
            let data = pattern(len, seed);
            prop_assert_eq!(hash_in_frames(&data, &frames), reference(&data));
        }
    }
}
