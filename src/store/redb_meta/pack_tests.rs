//! The pack against a real redb file: positions, chunk boundaries, release,
//! checks, and the space a packed body costs.

use std::os::unix::fs::MetadataExt;

use redb::{Database, ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::*;
use crate::store::layout::packed_position;
use crate::store::schema::PACK_DEAD;

fn db(dir: &tempfile::TempDir) -> Database {
    Database::create(dir.path().join("pack.redb")).expect("create")
}

fn write<T>(db: &Database, f: impl FnOnce(&WriteTransaction) -> T) -> T {
    let txn = db.begin_write().expect("begin");
    let out = f(&txn);
    txn.commit().expect("commit");
    out
}

fn body(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fn read_back(db: &Database, id: BlobId, size: usize) -> Result<Bytes, ReadError> {
    let txn = db.begin_read().expect("read");
    let chunks = txn.open_table(PACK_CHUNKS).expect("chunks");
    read(&chunks, packed_position(id).expect("a packed id"), size as u64)
}

#[test]
fn bodies_are_packed_back_to_back_across_chunk_boundaries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db(&dir);
    let sizes = [1, 4096, 2 * CHUNK_DATA as usize - 4097, 10_000, 32 * 1024, 3];
    let mut placed = Vec::new();
    let mut expect_at = 0u64;
    for (seed, &size) in sizes.iter().enumerate() {
        let data = body(size, seed as u8);
        let id = write(&db, |t| append(t, &data).expect("append"));
        assert_eq!(packed_position(id), Some(expect_at), "bodies follow each other");
        expect_at += size as u64;
        placed.push((id, data));
    }
    for (id, data) in &placed {
        assert_eq!(read_back(&db, *id, data.len()).expect("read").as_ref(), data.as_slice());
    }
}

#[test]
fn a_chunk_goes_when_its_last_blob_is_released_but_the_tail_stays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db(&dir);
    let a = write(&db, |t| append(t, &body(3000, 1)).expect("append"));
    let b = write(&db, |t| append(t, &body(3000, 2)).expect("append"));
    let count = |db: &Database| db.begin_read().expect("r").open_table(PACK_CHUNKS).expect("t").len().expect("len");
    assert_eq!(count(&db), 2, "6000 bytes span two chunks");
    write(&db, |t| release(t, packed_position(a).expect("a"), 3000).expect("release"));
    assert_eq!(count(&db), 2, "chunk 0 still holds part of b");
    write(&db, |t| release(t, packed_position(b).expect("b"), 3000).expect("release"));
    assert_eq!(count(&db), 1, "chunk 0 is gone; chunk 1 is still being filled");
    assert!(matches!(read_back(&db, a, 3000), Err(ReadError::Missing)));
    let c = write(&db, |t| append(t, &body(5000, 3)).expect("append"));
    assert_eq!(packed_position(c), Some(6000), "positions are never reused");
    assert_eq!(read_back(&db, c, 5000).expect("read").as_ref(), body(5000, 3).as_slice());
    write(&db, |t| release(t, packed_position(c).expect("c"), 5000).expect("release"));
    assert_eq!(count(&db), 1, "only the tail chunk (partly filled) is left");
}

#[test]
fn a_changed_byte_is_a_mismatch_and_a_corrupt_tail_is_never_rewritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db(&dir);
    let a = write(&db, |t| append(t, &body(100, 1)).expect("append"));
    write(&db, |t| {
        let mut chunks = t.open_table(PACK_CHUNKS).expect("chunks");
        let mut value = chunks.get(0).expect("get").expect("chunk 0").value().to_vec();
        *value.last_mut().expect("a byte") ^= 1;
        chunks.insert(0, value.as_slice()).expect("insert");
    });
    assert!(matches!(read_back(&db, a, 100), Err(ReadError::Mismatch { offset: 0 })));
    let b = write(&db, |t| append(t, &body(100, 2)).expect("append"));
    assert_eq!(packed_position(b), Some(CHUNK_DATA), "the next body starts after the damaged chunk");
    assert_eq!(read_back(&db, b, 100).expect("read").as_ref(), body(100, 2).as_slice());
    assert!(matches!(read_back(&db, a, 100), Err(ReadError::Mismatch { .. })), "still reported");
}

/// What a 4 KiB body costs: redb's pages in use, and the blocks the file
/// holds on disk (its length is larger: redb extends it sparsely, ahead).
#[test]
fn a_packed_body_costs_about_its_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db(&dir);
    let count = 2000u64;
    // One body per transaction: the worst case for the tail chunk.
    for i in 0..count {
        write(&db, |t| append(t, &body(4096, i as u8)).expect("append"));
    }
    let bytes = (count * 4096) as f64;
    let txn = db.begin_write().expect("begin");
    let stats = txn.stats().expect("stats");
    let pages = (stats.allocated_pages() * stats.page_size() as u64) as f64;
    assert!(pages / bytes < 1.05, "redb pages in use: {:.3}x ({stats:?})", pages / bytes);
    txn.abort().expect("abort");
    drop(db);
    let on_disk = std::fs::metadata(dir.path().join("pack.redb")).expect("stat").blocks() * 512;
    assert!((on_disk as f64) / bytes < 1.3, "blocks on disk: {:.3}x", on_disk as f64 / bytes);
}

fn pages_in_use(db: &Database) -> u64 {
    let txn = db.begin_write().expect("begin");
    let pages = txn.stats().expect("stats").allocated_pages();
    txn.abort().expect("abort");
    pages
}

#[test]
fn a_blob_freed_from_a_shared_chunk_is_cut_out_by_later_appends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db(&dir);
    let bodies: Vec<Vec<u8>> = (0..5).map(|i| body(1000, i)).collect();
    let ids: Vec<BlobId> = write(&db, |t| bodies.iter().map(|b| append(t, b).expect("append")).collect());
    // Chunk 0 holds bodies 0-3 and the start of 4; free 1, then 4 (which spills into chunk 1).
    for gone in [1, 4] {
        write(&db, |t| release(t, packed_position(ids[gone]).expect("packed"), 1000).expect("release"));
    }
    let dead_rows = |db: &Database| db.begin_read().expect("r").open_table(PACK_DEAD).expect("t").len().expect("len");
    assert_eq!(dead_rows(&db), 3, "a release only records dead bytes: one run for body 1, two for body 4");
    assert!(read_back(&db, ids[1], 1000).is_ok(), "not cut yet");
    // Each append trims one chunk, the highest first.
    let more: Vec<BlobId> = (0..2).map(|i| write(&db, |t| append(t, &body(2000, 9 + i)).expect("append"))).collect();
    assert_eq!(dead_rows(&db), 0, "both chunks trimmed");
    assert!(matches!(read_back(&db, ids[1], 1000), Err(ReadError::Truncated { offset: 0 })), "its bytes are gone");
    assert!(matches!(read_back(&db, ids[4], 1000), Err(ReadError::Truncated { offset: 0 })));
    for keep in [0, 2, 3] {
        assert_eq!(read_back(&db, ids[keep], 1000).expect("read").as_ref(), bodies[keep].as_slice(), "body {keep}");
    }
    for (i, id) in more.iter().enumerate() {
        assert_eq!(read_back(&db, *id, 2000).expect("read").as_ref(), body(2000, 9 + i as u8).as_slice());
    }
}

#[test]
fn a_release_needs_no_new_chunk_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db(&dir);
    let ids: Vec<BlobId> = write(&db, |t| (0..400).map(|i| append(t, &body(1000, i as u8)).expect("append")).collect());
    write(&db, |_| ());
    write(&db, |_| ());
    let before = pages_in_use(&db);
    write(&db, |t| {
        ids.iter().step_by(2).for_each(|id| release(t, packed_position(*id).expect("p"), 1000).expect("release"))
    });
    write(&db, |_| ());
    write(&db, |_| ());
    assert!(
        pages_in_use(&db) <= before + 2,
        "freeing half the bodies wrote no chunk: {before} -> {}",
        pages_in_use(&db)
    );
}

fn tiny_bodies(db: &Database) -> Vec<BlobId> {
    (0..40u8)
        .flat_map(|batch| {
            write(db, |t| (0..100).map(|i| append(t, &body(100, batch ^ i)).expect("append")).collect::<Vec<_>>())
        })
        .collect()
}

/// Frees every blob but one in ten, `one_txn` in one transaction or else one
/// per transaction in a shuffled order, then appends enough to trim every
/// chunk; returns pages in use before and after.
fn free_nine_in_ten(db: &Database, ids: &[BlobId], one_txn: bool) -> (u64, u64) {
    let full = pages_in_use(db);
    let mut doomed: Vec<BlobId> = ids.iter().enumerate().filter(|(i, _)| i % 10 != 0).map(|(_, id)| *id).collect();
    let release_one =
        |t: &WriteTransaction, id: BlobId| release(t, packed_position(id).expect("packed"), 100).expect("release");
    if one_txn {
        write(db, |t| doomed.iter().for_each(|id| release_one(t, *id)));
    } else {
        let mut x = 12345u64;
        for i in (1..doomed.len()).rev() {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            doomed.swap(i, (x >> 33) as usize % (i + 1));
        }
        doomed.iter().for_each(|id| write(db, |t| release_one(t, *id)));
    }
    // Later writes trim the chunks, one each.
    for _ in 0..ids.len() / 10 {
        write(db, |t| append(t, b"x").expect("append"));
    }
    // Pages freed by a commit are reusable once later commits have run.
    write(db, |_| ());
    write(db, |_| ());
    (full, pages_in_use(db))
}

/// Deleting most of many tiny bodies gives their pages back, though every
/// chunk keeps a few live ones: cut chunks shrink and share leaf pages.
#[test]
fn freeing_most_tiny_bodies_frees_most_pages() {
    for one_txn in [true, false] {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = db(&dir);
        let ids = tiny_bodies(&db);
        let (full, after) = free_nine_in_ten(&db, &ids, one_txn);
        assert!(after * 3 < full, "pages in use: {full} with every body, {after} with one in ten (one txn: {one_txn})");
        for id in ids.iter().step_by(10) {
            assert_eq!(read_back(&db, *id, 100).expect("read").len(), 100);
        }
    }
}
