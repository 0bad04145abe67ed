//! The store against a model: random sequences of puts (empty, packed and
//! file bodies), overwrites, copies, deletes, parts, completes and aborts,
//! with injected failures (a batch aborted by a failing write, a commit
//! whose fsync fails, a crash between a blob's rename and its commit) and
//! restarts. After every step:
//! every object reads back as the model says, reference counts equal the
//! references the records hold, every referenced file exists, no file is
//! left that nothing references (once the orphan sweep ran), and each chunk
//! of the pack is counted as held by exactly the packed blobs over it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use redb::{Key, ReadTransaction, ReadableTable, TableDefinition, Value};

use super::layout::packed_position;
use super::pack::CHUNK_DATA;
use super::schema::{
    decode, ObjectRecord, PartRecord, UploadRecord, Versioning, BLOB_REFS, CONTENT_HOLDERS, DEAD_BLOBS, OBJECTS,
    PACK_LIVE, PARTS, VERSIONS,
};
use super::test_support::{bucket_record, object_record, stage, upload_record};
use super::versions::delete_latest;
use super::{faults, Store, StoreError, WriteError};

const KEYS: u8 = 4;
const UPLOAD: &str = "00000000000000000000000000000001";

#[derive(Debug, Clone)]
enum Op {
    Put {
        key: u8,
        size: usize,
        seed: u8,
    },
    Copy {
        from: u8,
        to: u8,
    },
    Delete {
        keys: Vec<u8>,
    },
    Part {
        number: u16,
        size: usize,
        seed: u8,
    },
    Complete,
    Abort,
    /// A write that changes things, then fails: its batch is aborted.
    FailedBatch,
    /// A put whose commit's fsync fails: answered with an error, and after
    /// the database is reopened the key holds either the old or the new body.
    FailedSync {
        key: u8,
        size: usize,
        seed: u8,
    },
    /// A body published (renamed into `blobs/`), then the process dies
    /// before its commit; the store restarts.
    CrashAfterPublish {
        size: usize,
    },
    Restart,
}

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![Just(0), 1..3000usize, 3000..32 * 1024usize, 33 * 1024..90 * 1024usize]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..KEYS, size(), any::<u8>()).prop_map(|(key, size, seed)| Op::Put { key, size, seed }),
        2 => (0..KEYS, 0..KEYS).prop_map(|(from, to)| Op::Copy { from, to }),
        2 => prop::collection::vec(0..KEYS, 1..3).prop_map(|keys| Op::Delete { keys }),
        3 => (1..4u16, size(), any::<u8>()).prop_map(|(number, size, seed)| Op::Part { number, size, seed }),
        1 => Just(Op::Complete),
        1 => Just(Op::Abort),
        1 => Just(Op::FailedBatch),
        2 => (0..KEYS, size(), any::<u8>()).prop_map(|(key, size, seed)| Op::FailedSync { key, size, seed }),
        1 => size().prop_map(|size| Op::CrashAfterPublish { size }),
        1 => Just(Op::Restart),
    ]
}

#[derive(Default)]
struct Model {
    objects: BTreeMap<String, Vec<u8>>,
    /// The upload in progress, if any: its parts.
    upload: Option<BTreeMap<u16, Vec<u8>>>,
}

pub(super) fn key(k: u8) -> String {
    format!("k{k}")
}

pub(super) fn body(size: usize, seed: u8) -> Vec<u8> {
    (0..size).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)).collect()
}

async fn apply(store: &mut Arc<Store>, dir: &Path, model: &mut Model, op: Op) {
    match op {
        Op::Put { key: k, size, seed } => {
            let bytes = body(size, seed);
            let staged = stage(store, &bytes).await;
            store
                .write_object::<StoreError, _>(("b", &key(k)), object_record(size), staged, |_| Ok(()))
                .await
                .expect("put");
            model.objects.insert(key(k), bytes);
        }
        Op::Copy { from, to } => {
            let copied =
                store.copy_object::<StoreError, _>(("b", &key(from), None), ("b", &key(to)), |src| Ok(src.clone()));
            match model.objects.get(&key(from)).cloned() {
                Some(bytes) => {
                    copied.expect("copy");
                    model.objects.insert(key(to), bytes);
                }
                None => assert!(matches!(copied, Err(StoreError::NoSuchKey)), "{copied:?}"),
            }
        }
        Op::Delete { keys } => {
            store.delete_objects("b", keys.iter().map(|k| (key(*k), None)).collect()).expect("delete");
            keys.iter().for_each(|k| drop(model.objects.remove(&key(*k))));
        }
        Op::Part { number, size, seed } => {
            if model.upload.is_none() {
                store.create_upload(UPLOAD, &upload_record("b", "mpu")).expect("create upload");
                model.upload = Some(BTreeMap::new());
            }
            let bytes = body(size, seed);
            let staged = stage(store, &bytes).await;
            store.write_part(("b", "mpu", UPLOAD), number, staged, 0).await.expect("part");
            model.upload.get_or_insert_with(BTreeMap::new).insert(number, bytes);
        }
        Op::Complete => {
            let build = |_: &UploadRecord, parts: &[(u16, PartRecord)]| {
                let mut rec = object_record(parts.iter().map(|(_, p)| p.span.size as usize).sum());
                rec.blobs = parts.iter().map(|(_, p)| p.span).filter(|s| s.has_blob()).collect();
                Ok::<_, StoreError>(rec)
            };
            let completed = store.complete_upload("b", "mpu", UPLOAD, build, |_| Ok(()));
            match model.upload.take() {
                Some(parts) => {
                    completed.expect("complete");
                    model.objects.insert("mpu".into(), parts.into_values().flatten().collect());
                }
                None => assert!(matches!(completed, Err(StoreError::NoSuchUpload)), "{completed:?}"),
            }
        }
        Op::Abort => {
            let aborted = store.abort_upload("b", "mpu", UPLOAD);
            match model.upload.take() {
                Some(_) => aborted.expect("abort"),
                None => assert!(matches!(aborted, Err(StoreError::NoSuchUpload)), "{aborted:?}"),
            }
        }
        Op::FailedBatch => {
            let failed = store.commit(|txn| {
                for k in 0..KEYS {
                    let unversioned = Versioning::Unversioned;
                    delete_latest(txn, ("b", &key(k)), None, unversioned).map_err(WriteError::<StoreError>::from)?;
                }
                Err::<(), WriteError<StoreError>>(WriteError::Failed(StoreError::internal("injected")))
            });
            assert!(failed.is_err());
        }
        Op::FailedSync { key: k, size, seed } => {
            let (name, bytes) = (key(k), body(size, seed));
            let staged = stage(store, &bytes).await;
            faults::fail_syncs(&store.layout().db_path(), 1);
            let put = store.write_object::<StoreError, _>(("b", &name), object_record(size), staged, |_| Ok(()));
            assert!(put.await.is_err(), "a put whose commit was not made durable must not succeed");
            let now = stored(store, &name);
            if now.as_ref() == Some(&bytes) {
                model.objects.insert(name, bytes);
            } else {
                assert_eq!(now.as_ref(), model.objects.get(&name), "{name} is neither its old nor its new body");
            }
        }
        Op::CrashAfterPublish { size } => {
            let staged = stage(store, &body(size, 1)).await;
            let (span, _, file) = staged.publish().expect("publish");
            // The process dies here: nothing removes the file.
            std::mem::forget(file);
            if span.has_file() {
                let old = SystemTime::now() - Duration::from_secs(3600);
                let path = store.layout().blob_path(span.id);
                std::fs::File::options().write(true).open(path).expect("blob").set_modified(old).expect("mtime");
            }
            restart(store, dir).await;
        }
        Op::Restart => restart(store, dir).await,
    }
}

/// What `b/name` reads back as, `None` if there is no such object.
fn stored(store: &Store, name: &str) -> Option<Vec<u8>> {
    let rec = store.get_object("b", name).ok()?;
    let opened = store.open_range(&rec.blobs, 0..rec.size).unwrap_or_else(|e| panic!("{name}: {e}"));
    match opened.read_small() {
        Some(read) => Some(read.unwrap_or_else(|e| panic!("{name}: {e}")).to_vec()),
        None => Some(Vec::new()),
    }
}

async fn restart(store: &mut Arc<Store>, dir: &Path) {
    store.close();
    *store = Store::open(dir).expect("reopen");
}

/// Checks the store against the model and its own invariants; waits a
/// little for background work (unlinks, the orphan sweep) to end.
async fn check(store: &Arc<Store>, model: &Model) -> Result<(), TestCaseError> {
    for (name, bytes) in &model.objects {
        let rec = store.get_object("b", name).map_err(|e| TestCaseError::fail(format!("{name}: {e}")))?;
        prop_assert_eq!(rec.size, bytes.len() as u64, "{}", name);
        let opened =
            store.open_range(&rec.blobs, 0..rec.size).map_err(|e| TestCaseError::fail(format!("{name}: {e}")))?;
        let read = match opened.read_small() {
            Some(read) => read.map_err(|e| TestCaseError::fail(format!("{name}: {e}")))?.to_vec(),
            None => Vec::new(),
        };
        prop_assert!(read == *bytes || rec.size == 0, "{} reads back", name);
    }
    for k in 0..KEYS {
        if !model.objects.contains_key(&key(k)) {
            prop_assert!(matches!(store.get_object("b", &key(k)), Err(StoreError::NoSuchKey)), "{} is gone", key(k));
        }
    }
    let mut last = String::new();
    for _ in 0..100 {
        match references_match(store) {
            Ok(()) => return Ok(()),
            Err(why) => last = why,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(TestCaseError::fail(last))
}

/// Every row of a table, each turned into a `T` by `f`.
fn rows<K: Key + 'static, V: Value + 'static, T>(
    txn: &ReadTransaction,
    table: TableDefinition<K, V>,
    f: impl for<'a> Fn(K::SelfType<'a>, V::SelfType<'a>) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    let table = txn.open_table(table).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for row in table.iter().map_err(|e| e.to_string())? {
        let (k, v) = row.map_err(|e| e.to_string())?;
        out.push(f(k.value(), v.value())?);
    }
    Ok(out)
}

pub(super) fn references_match(store: &Store) -> Result<(), String> {
    let txn = store.db().map_err(|e| e.to_string())?.begin_read().map_err(|e| e.to_string())?;
    let decoded = |e: postcard::Error| e.to_string();
    let objects = rows(&txn, OBJECTS, |_, v| Ok(decode::<ObjectRecord>(v).map_err(decoded)?.blobs))?;
    let parts = rows(&txn, PARTS, |_, v| Ok(decode::<PartRecord>(v).map_err(decoded)?.span))?;
    let versions = rows(&txn, VERSIONS, |_, v| Ok(decode::<ObjectRecord>(v).map_err(decoded)?.blobs))?;
    let mut held: HashMap<u128, u64> = HashMap::new();
    let mut sizes = HashMap::new();
    for span in objects.into_iter().chain(versions).flatten().chain(parts).filter(|s| s.has_blob()) {
        *held.entry(span.id).or_default() += 1;
        sizes.insert(span.id, span.size);
    }
    let refs: HashMap<u128, u64> = rows(&txn, BLOB_REFS, |k, v| Ok((k, v)))?.into_iter().collect();
    if refs != held {
        return Err(format!("reference counts {refs:x?} but records hold {held:x?}"));
    }
    holders_match(&txn)?;
    let dead: HashSet<u128> = rows(&txn, DEAD_BLOBS, |k, ()| Ok(k))?.into_iter().collect();
    let files: HashSet<u128> = store.layout().all_blob_ids().map_err(|e| e.to_string())?.into_iter().collect();
    let referenced_files: HashSet<u128> = held.keys().copied().filter(|id| packed_position(*id).is_none()).collect();
    if let Some(missing) = referenced_files.difference(&files).next() {
        return Err(format!("blob {missing:x} is referenced but its file is gone"));
    }
    if let Some(orphan) = files.iter().find(|f| !referenced_files.contains(f) && !dead.contains(f)) {
        return Err(format!("file {orphan:x} is referenced by nothing"));
    }
    let mut holders: BTreeMap<u64, u32> = BTreeMap::new();
    for (id, size) in sizes.iter().filter_map(|(id, size)| Some((packed_position(*id)?, *size))) {
        for chunk in id / CHUNK_DATA..=(id + size - 1) / CHUNK_DATA {
            *holders.entry(chunk).or_default() += 1;
        }
    }
    let live: BTreeMap<u64, u32> =
        rows(&txn, PACK_LIVE, |k, v| Ok((k, v)))?.into_iter().filter(|(_, n)| *n > 0).collect();
    if live != holders {
        return Err(format!("pack chunks counted as held {live:?}, held by {holders:?}"));
    }
    Ok(())
}

/// Every file blob's references are counted as held by their owner, here
/// always root (the bucket's owner, who starts every upload).
fn holders_match(txn: &ReadTransaction) -> Result<(), String> {
    let decoded = |e: postcard::Error| e.to_string();
    let objects = rows(txn, OBJECTS, |_, v| decode::<ObjectRecord>(v).map_err(decoded))?;
    let versions = rows(txn, VERSIONS, |_, v| decode::<ObjectRecord>(v).map_err(decoded))?;
    let mut expected: HashMap<(u128, String), u64> = HashMap::new();
    for record in objects.into_iter().chain(versions) {
        let owner = record.owner.unwrap_or_else(|| "root".into());
        for span in record.blobs.iter().filter(|s| super::content::is_file(s)) {
            *expected.entry((span.id, owner.clone())).or_default() += 1;
        }
    }
    let parts = rows(txn, PARTS, |_, v| Ok(decode::<PartRecord>(v).map_err(decoded)?.span))?;
    for span in parts.iter().filter(|s| super::content::is_file(s)) {
        *expected.entry((span.id, "root".into())).or_default() += 1;
    }
    let counted: HashMap<(u128, String), u64> =
        rows(txn, CONTENT_HOLDERS, |(id, owner), n| Ok(((id, owner.to_string()), n)))?.into_iter().collect();
    match counted == expected {
        true => Ok(()),
        false => Err(format!("holders counted {counted:x?} but records hold {expected:x?}")),
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path()).expect("open");
        store.create_bucket("b", &bucket_record()).expect("bucket");
        let mut model = Model::default();
        for (step, op) in ops.into_iter().enumerate() {
            let what = format!("{op:?}");
            apply(&mut store, dir.path(), &mut model, op).await;
            check(&store, &model).await.map_err(|e| TestCaseError::fail(format!("after step {step} ({what}): {e}")))?;
        }
        store.close();
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn the_store_keeps_to_its_model(ops in prop::collection::vec(op(), 1..40)) {
        run(ops)?;
    }
}
