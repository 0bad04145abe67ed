//! The store's write entries when the request goes away: an object or part
//! write dropped at any point (while its body is published, while its commit
//! is queued or running) leaves no blob file that nothing references and no
//! reference to a file that is gone.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use std::future::Future;

use redb::ReadableTable;

use super::blob::StagedBlob;
use super::layout::packed_position;
use super::schema::BLOB_REFS;
use super::test_support::{bucket_record, object_record, stage, upload_record};
use super::{Store, StoreError, StoreResult};

const FILE_BODY: usize = 100 * 1024;

async fn staged(store: &Store, seed: u8) -> StagedBlob {
    stage(store, &vec![seed; FILE_BODY]).await
}

/// Blob files on disk, and file blobs the database references.
fn files_and_references(store: &Store) -> (HashSet<u128>, HashSet<u128>) {
    let files: HashSet<u128> = store.layout().all_blob_ids().expect("list blobs").into_iter().collect();
    let txn = store.db().expect("db").begin_read().expect("read");
    let refs = txn.open_table(BLOB_REFS).expect("refs");
    let referenced = refs
        .iter()
        .expect("iterate")
        .map(|row| row.expect("row").0.value())
        .filter(|id| packed_position(*id).is_none())
        .collect();
    (files, referenced)
}

/// Waits for the background work of dropped writes (queued commits, file
/// removals) to end, then checks that files and references match.
async fn assert_no_orphan_and_no_dangling(store: &Arc<Store>, what: &str) {
    let mut last = (HashSet::new(), HashSet::new());
    for _ in 0..200 {
        // A write queued behind every dropped one: their commits are done.
        let sync = store.clone();
        tokio::task::spawn_blocking(move || sync.create_bucket("sync", &bucket_record()))
            .await
            .expect("join")
            .or_else(|e| if matches!(e, StoreError::BucketExists(_)) { Ok(()) } else { Err(e) })
            .expect("a write after the dropped ones");
        last = files_and_references(store);
        if last.0 == last.1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (files, referenced) = last;
    let orphans: Vec<_> = files.difference(&referenced).collect();
    let dangling: Vec<_> = referenced.difference(&files).collect();
    panic!("{what}: orphan files {orphans:x?}, references to missing files {dangling:x?}");
}

/// A store in a temporary folder with bucket `b` and an upload to `b/big`.
fn store_with_upload() -> (tempfile::TempDir, Arc<Store>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    store.create_bucket("b", &bucket_record()).expect("bucket");
    let id = "0".repeat(super::UPLOAD_ID_LEN);
    store.create_upload(&id, &upload_record("b", "big")).expect("upload");
    (dir, store, id)
}

/// Where a write's future is dropped. Counting polls gives drops at each of
/// the write's suspension points whatever the machine's speed (on a fast
/// disk every timed write may finish before tokio's 1 ms timer fires); the
/// timed points land in publishing, in the queue and in the commit when the
/// disk is slower.
#[derive(Clone, Copy)]
enum CancelPoint {
    BeforeFirstPoll,
    AfterPendingPolls(u32),
    After(Duration),
}

fn cancel_points() -> impl Iterator<Item = CancelPoint> {
    let polls = (1..=4).map(CancelPoint::AfterPendingPolls);
    let timed = (0..36u64).map(|i| CancelPoint::After(Duration::from_micros(i * 150)));
    std::iter::once(CancelPoint::BeforeFirstPoll).chain(polls).chain(timed)
}

/// Polls `write` until it ends or has answered Pending `limit` times.
async fn poll_at_most<F: Future>(write: F, limit: u32) -> Option<F::Output> {
    let mut write = std::pin::pin!(write);
    let mut pending = 0;
    std::future::poll_fn(|cx| match write.as_mut().poll(cx) {
        std::task::Poll::Ready(output) => std::task::Poll::Ready(Some(output)),
        std::task::Poll::Pending => {
            pending += 1;
            if pending >= limit {
                std::task::Poll::Ready(None)
            } else {
                std::task::Poll::Pending
            }
        }
    })
    .await
}

/// How many writes finished and how many were dropped unfinished.
#[derive(Default)]
struct Outcomes {
    done: usize,
    dropped: usize,
}

impl Outcomes {
    /// Runs `write` until it ends or `point` has passed, then drops it.
    async fn run<T>(&mut self, point: CancelPoint, write: impl Future<Output = StoreResult<T>>) {
        let finished = match point {
            CancelPoint::BeforeFirstPoll => None,
            CancelPoint::AfterPendingPolls(limit) => poll_at_most(write, limit).await,
            CancelPoint::After(delay) => tokio::select! {
                result = write => Some(result),
                () = tokio::time::sleep(delay) => None,
            },
        };
        match finished {
            Some(result) => {
                result.expect("write");
                self.done += 1;
            }
            None => self.dropped += 1,
        }
    }

    /// Drops before the first poll and after the first Pending always
    /// happen; at least one more must too, or the test proves little.
    fn assert_both_happened(&self) {
        let (done, dropped) = (self.done, self.dropped);
        assert!(done > 0 && dropped > 2, "some writes finished ({done}) and some were dropped ({dropped})");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_write_dropped_at_any_point_leaves_files_and_references_matching() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(dir.path()).expect("open"));
    store.create_bucket("b", &bucket_record()).expect("bucket");
    let mut outcomes = Outcomes::default();
    for (i, point) in cancel_points().enumerate() {
        let body = staged(&store, i as u8).await;
        let key = format!("k{}", i % 7); // overwrites free earlier versions too
        let record = object_record(FILE_BODY);
        outcomes.run(point, store.write_object::<StoreError, _>(("b", &key), record, body, |_| Ok(()))).await;
    }
    outcomes.assert_both_happened();
    assert_no_orphan_and_no_dangling(&store, "object writes").await;
    store.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_write_dropped_at_any_point_leaves_files_and_references_matching() {
    let (_dir, store, id) = store_with_upload();
    let mut outcomes = Outcomes::default();
    for (i, point) in cancel_points().enumerate() {
        let body = staged(&store, i as u8).await;
        let number = (i % 5) as u16 + 1; // replaced parts free earlier blobs too
        outcomes.run(point, store.write_part(("b", "big", &id), number, body, 0)).await;
    }
    outcomes.assert_both_happened();
    assert_no_orphan_and_no_dangling(&store, "part writes").await;
    // A part written after its upload is gone is refused and removed.
    store.abort_upload("b", "big", &id).expect("abort");
    let late = store.write_part(("b", "big", &id), 1, staged(&store, 99).await, 0).await;
    assert!(matches!(late, Err(StoreError::NoSuchUpload)), "{late:?}");
    assert_no_orphan_and_no_dangling(&store, "a part of an aborted upload").await;
    store.close();
}

/// redb writes the header before its fsync: a commit whose fsync fails is
/// in the reopened database. Its write is answered with an error, but the
/// body file it references must stay, and the object it replaced must not
/// be unlinked (a power loss could bring the old record back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_commit_fsync_fails_keeps_what_the_database_may_reference() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(dir.path()).expect("open"));
    store.create_bucket("b", &bucket_record()).expect("bucket");
    let old =
        store.write_object::<StoreError, _>(("b", "k"), object_record(FILE_BODY), staged(&store, 1).await, |_| Ok(()));
    let old = old.await.expect("first version");

    super::faults::fail_syncs(&store.layout().db_path(), 1);
    let body = staged(&store, 2).await;
    let failed = store.write_object::<StoreError, _>(("b", "k"), object_record(FILE_BODY), body, |_| Ok(())).await;
    assert!(failed.is_err(), "a write that was not made durable is not acknowledged");

    let now = store.get_object("b", "k").expect("the key after the failed commit");
    assert_ne!(now.blobs, old.blobs, "the failed commit is in the reopened database");
    let read = store.open_range(&now.blobs, 0..now.size).expect("its body file is still there");
    let bytes = read.read_small().expect("small").expect("read");
    assert!(bytes.iter().all(|b| *b == 2) && bytes.len() == FILE_BODY);
    let old_file = store.layout().blob_path(old.blobs[0].id);
    assert!(old_file.exists(), "what the failed commit freed waits for the next start");

    store.close();
    let store = Arc::new(Store::open(dir.path()).expect("reopen"));
    for _ in 0..200 {
        if !old_file.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!old_file.exists(), "the next start unlinks what the commit freed");
    assert_no_orphan_and_no_dangling(&store, "after the restart").await;
    store.close();
}

/// A Complete whose commit fsync failed is in doubt: visible, not known to
/// be durable. A repeated Complete may be answered from it only after a
/// commit of its own, which makes it durable (or fails).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_complete_is_answered_only_after_a_durable_commit() {
    let (_dir, store, id) = store_with_upload();
    store.write_part(("b", "big", &id), 1, staged(&store, 1).await, 0).await.expect("part");
    let build = |_: &super::schema::UploadRecord, parts: &[(u16, super::schema::PartRecord)]| {
        let mut record = object_record(FILE_BODY);
        record.blobs = parts.iter().map(|(_, p)| p.span).collect();
        Ok::<_, StoreError>(record)
    };
    super::faults::fail_syncs(&store.layout().db_path(), 1);
    let first = store.complete_upload("b", "big", &id, build, |_| Ok(()));
    assert!(first.is_err(), "the first Complete's commit was not made durable");

    let seq = |store: &Store| super::commit_mark::current(&store.db().expect("db")).expect("sequence");
    let in_doubt = seq(&store);
    let again = store.completed_upload("b", "big", &id).expect("lookup");
    assert!(again.is_some(), "the in-doubt Complete is what the key holds");
    assert!(seq(&store) > in_doubt, "the repeat was answered after a commit of its own");
    store.close();
}
