//! Versioning against a model: random sequences of versioning changes,
//! puts, copies, deletes with and without a version id (some of versions
//! long gone) and restarts. After every step, each key's versions listed
//! by the store are exactly the model's (ids, delete markers, order, which
//! is latest), every version reads back its own bytes, the latest version
//! answers GET as S3 does, and the reference counts and blob files match
//! the records (`model_tests::references_match`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use redb::ReadableTableMetadata;

use super::model_tests::{body, key, references_match};
use super::schema::{Versioning, VERSIONS};
use super::test_support::{bucket_record, object_record, stage};
use super::versions::VersionId;
use super::{Store, StoreError, VersionEntry, VersionQuery};

const KEYS: u8 = 3;

#[derive(Debug, Clone)]
enum Op {
    SetVersioning(Versioning),
    Put {
        key: u8,
        size: usize,
        seed: u8,
    },
    Copy {
        from: u8,
        to: u8,
    },
    DeleteLatest {
        key: u8,
    },
    /// Deletes the `pick`-th id ever issued (it may be gone, or another key's).
    DeleteVersion {
        key: u8,
        pick: usize,
    },
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    let size = prop_oneof![Just(0), 1..3000usize, 33 * 1024..40 * 1024usize];
    let state = prop_oneof![Just(Versioning::Enabled), Just(Versioning::Suspended)];
    prop_oneof![
        1 => state.prop_map(Op::SetVersioning),
        6 => (0..KEYS, size, any::<u8>()).prop_map(|(key, size, seed)| Op::Put { key, size, seed }),
        1 => (0..KEYS, 0..KEYS).prop_map(|(from, to)| Op::Copy { from, to }),
        3 => (0..KEYS).prop_map(|key| Op::DeleteLatest { key }),
        4 => (0..KEYS, any::<usize>()).prop_map(|(key, pick)| Op::DeleteVersion { key, pick }),
        1 => Just(Op::Restart),
    ]
}

/// One version as the model knows it: `None` bytes for a delete marker.
#[derive(Debug, Clone, PartialEq)]
struct Version {
    id: VersionId,
    bytes: Option<Vec<u8>>,
}

#[derive(Default)]
struct Model {
    state: Versioning,
    /// Each key's versions, newest first.
    keys: BTreeMap<String, Vec<Version>>,
    /// Every version id the store has answered with.
    issued: Vec<VersionId>,
}

impl Model {
    /// A new latest version: the `null` one replaces the key's previous `null`.
    fn push(&mut self, key: &str, version: Version) {
        let versions = self.keys.entry(key.to_string()).or_default();
        if version.id == VersionId::Null {
            versions.retain(|v| v.id != VersionId::Null);
        }
        self.issued.push(version.id);
        versions.insert(0, version);
    }

    fn latest(&self, key: &str) -> Option<&Version> {
        self.keys.get(key).and_then(|v| v.first())
    }
}

async fn apply(store: &mut Arc<Store>, dir: &Path, model: &mut Model, op: Op) {
    match op {
        Op::SetVersioning(state) => {
            store.update_bucket("b", move |b| b.versioning = state).expect("set versioning");
            model.state = state;
        }
        Op::Put { key: k, size, seed } => {
            let bytes = body(size, seed);
            let staged = stage(store, &bytes).await;
            let written = store
                .write_object::<StoreError, _>(("b", &key(k)), object_record(size), staged, |_| Ok(()))
                .await
                .expect("put");
            model.push(&key(k), Version { id: VersionId::of(&written.version), bytes: Some(bytes) });
        }
        Op::Copy { from, to } => {
            let copied =
                store.copy_object::<StoreError, _>(("b", &key(from), None), ("b", &key(to)), |src| Ok(src.clone()));
            match model.latest(&key(from)).and_then(|v| v.bytes.clone()) {
                Some(bytes) => {
                    let (_, written) = copied.expect("copy");
                    model.push(&key(to), Version { id: VersionId::of(&written.version), bytes: Some(bytes) });
                }
                None => assert!(
                    matches!(copied, Err(StoreError::NoSuchKey | StoreError::DeleteMarker { .. })),
                    "{copied:?}"
                ),
            }
        }
        Op::DeleteLatest { key: k } => {
            let deleted = store.delete_object("b", &key(k)).expect("delete");
            match (model.state, deleted.version_id) {
                (Versioning::Unversioned, None) => drop(model.keys.remove(&key(k))),
                (Versioning::Unversioned, Some(id)) => panic!("a bucket without versioning answered version {id}"),
                (_, id) => {
                    assert!(deleted.delete_marker, "a versioned delete writes a marker");
                    let id = id.expect("a marker has a version id");
                    model.push(&key(k), Version { id, bytes: None });
                }
            }
        }
        Op::DeleteVersion { key: k, pick } => {
            let Some(&id) = model.issued.get(pick % model.issued.len().max(1)) else { return };
            let deleted = store.delete_objects("b", vec![(key(k), Some(id))]).expect("delete version");
            let outcome = deleted.into_iter().next().expect("one outcome").expect("deleted");
            let versions = model.keys.entry(key(k)).or_default();
            let was_marker = versions.iter().any(|v| v.id == id && v.bytes.is_none());
            versions.retain(|v| v.id != id);
            assert_eq!(outcome.delete_marker, was_marker, "x-amz-delete-marker of deleting {id}");
        }
        Op::Restart => {
            store.close();
            *store = Store::open(dir).expect("reopen");
        }
    }
}

/// The bytes of a version, as a GET with its id reads them. A whole GET
/// reads a small object's bytes with its record: those must be the same.
fn read_version(store: &Store, name: &str, id: VersionId) -> Result<Vec<u8>, StoreError> {
    let (record, _) = store.get_version("b", name, Some(id))?;
    let opened = store.open_range(&record.blobs, 0..record.size).unwrap_or_else(|e| panic!("{name}: {e}"));
    let bytes = match opened.read_small() {
        Some(read) => read.unwrap_or_else(|e| panic!("{name}: {e}")).to_vec(),
        None => Vec::new(),
    };
    let (_, _, with_record) = store.get_version_reading("b", name, Some(id), true)?;
    let all_small = record.size > 0 && record.blobs.iter().all(|span| span.inline);
    match with_record {
        Some(read) => assert_eq!(read.unwrap_or_else(|e| panic!("{name}: {e}")), bytes, "{name}: read with its record"),
        None => assert!(!all_small, "{name}: a small object's bytes come with its record"),
    }
    Ok(bytes)
}

/// Every version of every key, as the store lists them: (key, id, marker, latest).
fn listed(store: &Store) -> Vec<(String, VersionId, bool, bool)> {
    let query = VersionQuery {
        prefix: String::new(),
        delimiter: None,
        key_marker: None,
        version_marker: None,
        max_keys: 10_000,
    };
    let page = store.list_versions("b", &query).expect("list versions");
    assert!(!page.truncated);
    page.entries
        .into_iter()
        .filter_map(|e| match e {
            VersionEntry::Version { key, record, latest } => {
                Some((key, VersionId::of(&record.version), record.version.delete_marker, latest))
            }
            VersionEntry::CommonPrefix(_) => None,
        })
        .collect()
}

fn check(store: &Store, model: &Model) -> Result<(), TestCaseError> {
    let expected: Vec<(String, VersionId, bool, bool)> = model
        .keys
        .iter()
        .flat_map(|(k, versions)| {
            versions.iter().enumerate().map(move |(i, v)| (k.clone(), v.id, v.bytes.is_none(), i == 0))
        })
        .collect();
    prop_assert_eq!(listed(store), expected);
    for (name, versions) in &model.keys {
        for v in versions {
            match (&v.bytes, read_version(store, name, v.id)) {
                (Some(bytes), Ok(read)) => prop_assert!(read == *bytes, "{} {} reads back", name, v.id),
                (None, Err(StoreError::DeleteMarker { requested: true, .. })) => {}
                (want, got) => prop_assert!(false, "{} {}: want {:?}, got {:?}", name, v.id, want.is_some(), got),
            }
        }
    }
    for k in 0..KEYS {
        let current = store.get_object("b", &key(k));
        match model.latest(&key(k)) {
            Some(Version { bytes: Some(bytes), .. }) => {
                prop_assert_eq!(current.map(|r| r.size).ok(), Some(bytes.len() as u64), "{}", key(k))
            }
            Some(Version { bytes: None, .. }) => {
                prop_assert!(matches!(current, Err(StoreError::DeleteMarker { requested: false, .. })), "{}", key(k))
            }
            None => prop_assert!(matches!(current, Err(StoreError::NoSuchKey)), "{} {:?}", key(k), current),
        }
    }
    // Freed files are unlinked in the background: wait for them a little.
    let mut last = String::new();
    for _ in 0..100 {
        match references_match(store) {
            Ok(()) => return Ok(()),
            Err(why) => last = why,
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err(TestCaseError::fail(last))
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
            check(&store, &model).map_err(|e| TestCaseError::fail(format!("after step {step} ({what}): {e}")))?;
        }
        let txn = store.db().expect("db").begin_read().expect("read");
        let rows = txn.open_table(VERSIONS).expect("versions").len().expect("len");
        let noncurrent: usize = model.keys.values().map(|v| v.len()).sum();
        prop_assert!(rows as usize <= noncurrent, "no stray version rows");
        store.close();
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 300, ..ProptestConfig::default() })]

    #[test]
    fn versions_keep_to_their_model(ops in prop::collection::vec(op(), 1..40)) {
        run(ops)?;
    }
}
