//! The write rules of the store run on PostgreSQL exactly as on redb: one
//! scenario of rule calls and table operations, run on both backends, must
//! observe the same things step by step; and the races that several
//! gateways bring (two conditional creates of one key, many increments of
//! one count) come out as one process over redb would have them.
//!
//! The database is `TESSERA_TEST_PG` (scripts/pg-test-cluster.sh, sourced by
//! ./test.sh). Without it the tests print why and pass, except under CI.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::store::meta::{MetaRead, MetaTxn};
use crate::store::multipart::{abort_in_txn, record_part, uploads_of_bucket};
use crate::store::pg::{migrate, MetaTarget, Pool, PoolOptions};
use crate::store::redb_meta::txn::{RedbRead, RedbTxn};
use crate::store::schema::ObjectRecord;
use crate::store::schema::{object_key, BlobSpan, PartRecord, Versioning};
use crate::store::test_support::{bucket_record, object_record, upload_record};
use crate::store::txn::{add_refs, read_object, Holder};
use crate::store::versions::{delete_latest, delete_version, put_current, VersionId};
use crate::store::Store;
use crate::store::UPLOAD_ID_LEN;

/// A schema of its own in the test cluster (dropped at the end), migrated,
/// with the runtime that drives its connections.
pub(in crate::store::pg) struct TestSchema {
    pub ctx: PgContext,
    name: String,
    pub runtime: tokio::runtime::Runtime,
}

/// Which database of the test cluster a schema is made in.
#[derive(Debug, Clone, Copy)]
enum Database {
    /// The cluster's own (`C` locale, as scripts/pg-test-cluster.sh makes it).
    Default,
    /// One created with an ICU collation, where text sorts as people read
    /// (`a` before `B`, `é` beside `e`): listings must not follow it.
    Icu,
}

const ICU_DATABASE: &str = "tessera_icu";

impl TestSchema {
    pub fn create(policy: RetryPolicy) -> Option<TestSchema> {
        TestSchema::create_in(Database::Default, policy)
    }

    fn create_in(database: Database, policy: RetryPolicy) -> Option<TestSchema> {
        let Some(url) = std::env::var("TESSERA_TEST_PG").ok().filter(|v| !v.is_empty()) else {
            assert!(std::env::var_os("CI").is_none(), "CI is set but TESSERA_TEST_PG is not: run ./test.sh");
            eprintln!("skipped: TESSERA_TEST_PG is not set (source scripts/pg-test-cluster.sh to run this test)");
            return None;
        };
        let mut base = url.split('?').next().unwrap_or_default().to_string();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("rt");
        if let Database::Icu = database {
            base = runtime.block_on(icu_database(&base));
        }
        let name = format!("r_{:016x}", new_blob_id().expect("random") as u64);
        let url = format!("{base}?sslmode=disable&options=-c%20search_path%3D{name}");
        let pool = Pool::new(MetaTarget::parse(&url, None).expect("url"), None, PoolOptions::default()).expect("pool");
        runtime.block_on(async {
            let client = pool.get().await.expect("connect");
            client.batch_execute(&format!("CREATE SCHEMA {name}")).await.expect("create schema");
            drop(client);
            migrate(&pool).await.expect("migrate");
        });
        let ctx = PgContext { pool, runtime: runtime.handle().clone(), policy };
        Some(TestSchema { ctx, name, runtime })
    }

    /// PutObject of `size` bytes at `(bucket, key)` through `store`.
    fn put(&self, store: &Arc<Store>, (bucket, key): (&str, &str), size: usize) {
        let staged = self.runtime.block_on(crate::store::test_support::stage(store, &vec![7; size]));
        let written = store.write_object((bucket, key), object_record(size), staged, |_| Ok::<_, StoreError>(()));
        self.runtime.block_on(written).expect("put");
    }
}

/// The URL (without query) of the ICU database beside the cluster's
/// database `base`, created by the first test that needs it.
async fn icu_database(base: &str) -> String {
    let connect = |url: String| async move {
        let pool = Pool::new(MetaTarget::parse(&format!("{url}?sslmode=disable"), None).expect("url"), None, {
            PoolOptions { size: 1, ..PoolOptions::default() }
        });
        pool.expect("pool").get().await.expect("connect")
    };
    let create = format!(
        "CREATE DATABASE {ICU_DATABASE} TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
    );
    match connect(base.to_string()).await.batch_execute(&create).await {
        Ok(()) => {}
        // Made by another test (42P04), or by one racing this one (23505).
        Err(e) if matches!(e.code().map(|c| c.code()), Some("42P04" | "23505")) => {}
        Err(e) => panic!("creating the ICU database: {e}"),
    }
    let (root, _) = base.rsplit_once('/').expect("a database in the URL");
    let url = format!("{root}/{ICU_DATABASE}");
    let client = connect(url.clone()).await;
    let row = client
        .query_one("SELECT datlocprovider::text, 'a' < 'B' FROM pg_database WHERE datname = current_database()", &[])
        .await
        .expect("the ICU database");
    let (provider, folded): (String, bool) = (row.get(0), row.get(1));
    assert_eq!((provider.as_str(), folded), ("i", true), "{ICU_DATABASE} does not collate text with ICU");
    url
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let drop_schema = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        let _ =
            self.ctx.runtime.block_on(async { self.ctx.pool.get().await.ok()?.batch_execute(&drop_schema).await.ok() });
    }
}

fn part(id: BlobId) -> PartRecord {
    PartRecord { span: file_span(id), md5: [0; 16], last_modified_ms: 0, checksum: None }
}

fn file_span(id: BlobId) -> BlobSpan {
    BlobSpan { id, size: 10, part: 0, inline: false }
}

/// Versions of a key, newest first, as (etag, delete marker).
fn versions_of(txn: &impl MetaRead, row: &[u8]) -> StoreResult<Vec<(String, bool)>> {
    let mut seen = Vec::new();
    txn.find_version(row, &mut |r| {
        seen.push((r.etag.clone(), r.version.delete_marker));
        false
    })?;
    Ok(seen)
}

/// Rules and operations of every kind in one transaction, with what each
/// step saw.
fn scenario(txn: &impl MetaTxn) -> StoreResult<Vec<String>> {
    let mut seen = Vec::new();
    let row = object_key("b", b"k");
    let bucket = crate::store::schema::BucketRecord { versioning: Versioning::Enabled, ..bucket_record() };
    txn.put_bucket("b", &bucket)?;
    seen.push(format!("empty bucket has objects: {}", txn.bucket_has_objects("b")?));
    let holder = Holder::OfObject { bucket: "b", owner: None };
    for (id, etag) in [(100, "e1"), (101, "e2"), (102, "e3")] {
        let mut record = crate::store::schema::ObjectRecord { etag: etag.into(), ..object_record(10) };
        record.blobs = vec![file_span(id)];
        add_refs(txn, &record.blobs, holder)?;
        let current = read_object(txn, "b", "k")?;
        let dead = put_current(txn, ("b", "k"), &mut record, current, Versioning::Enabled)?;
        seen.push(format!("put {etag}: dead {dead:?}"));
    }
    let (deleted, dead) = delete_latest(txn, ("b", "k"), read_object(txn, "b", "k")?, Versioning::Enabled)?;
    seen.push(format!("delete: marker {} dead {dead:?}", deleted.delete_marker));
    seen.push(format!("current after delete: {:?}", txn.object(&row)?.map(|r| r.etag)));
    seen.push(format!("versions: {:?}", versions_of(txn, &row)?));
    let first = txn.find_version(&row, &mut |r| r.etag == "e1")?.map(|(_, r)| r.version.seq).unwrap_or(0);
    let (_, dead) = delete_version(txn, ("b", "k"), read_object(txn, "b", "k")?, VersionId::Seq(first))?;
    seen.push(format!("delete e1 by id: dead {dead:?}, versions {:?}", versions_of(txn, &row)?));
    seen.push(format!("refs 100..=102: {:?}", [100, 101, 102].map(|id| txn.blob_refs(id).unwrap_or(99))));
    seen.push(format!("root holds 101: {}", txn.holder_refs(101, "root")?));

    let small = txn.store_small_body(b"small body")?;
    txn.set_blob_refs(small, 1)?;
    let freed = txn.release_blob(&BlobSpan { id: small, size: 10, part: 0, inline: true })?;
    txn.set_blob_refs(small, 0)?;
    seen.push(format!("small body freed as a file: {freed:?}, refs {}", txn.blob_refs(small)?));
    seen.push(format!("file blob freed: {:?}", txn.release_blob(&file_span(7))?));

    // Upload ids have one length (the per-key index relies on it).
    let (u1, u0) = (&"1".repeat(UPLOAD_ID_LEN), &"0".repeat(UPLOAD_ID_LEN));
    txn.put_upload(u1, &upload_record("b", "m"))?;
    txn.put_upload(u0, &upload_record("b", "z"))?;
    for (number, id) in [(1, 200), (1, 201), (2, 202)] {
        let (_, dead) = record_part(txn, ("b", "m", u1), number, part(id), None)?;
        seen.push(format!("part {number} as {id}: dead {dead:?}"));
    }
    let parts: Vec<(u16, BlobId)> = txn.parts(u1)?.into_iter().map(|(n, p)| (n, p.span.id)).collect();
    seen.push(format!("parts {parts:?}, uploads {:?}", upload_ids(txn, "b")?));
    let upload = txn.upload(u1)?.ok_or(StoreError::NoSuchUpload)?;
    seen.push(format!("abort: dead {:?}", abort_in_txn(txn, &upload, u1)?));
    seen.push(format!("after abort: {:?} {:?}", txn.upload(u1)?.map(|u| u.key), txn.parts(u1)?.len()));

    txn.put_content_row(&[7; 40], b"content row")?;
    txn.put_blob_content(300, b"indexed")?;
    txn.set_holder_refs(300, "alice", 2)?;
    txn.set_holder_refs(300, "bob", 1)?;
    seen.push(format!(
        "content {:?} {:?} holders {} {}",
        txn.content_row(&[7; 40])?,
        txn.blob_content(300)?,
        txn.holder_refs(300, "alice")?,
        txn.holder_refs(300, "bob")?
    ));
    txn.forget_holders(300)?;
    txn.remove_content_row(&[7; 40])?;
    let removed = txn.remove_blob_content(300)?;
    seen.push(format!("removed {removed:?}, left {:?} {}", txn.content_row(&[7; 40])?, txn.holder_refs(300, "alice")?));

    let user = crate::store::users::UserRecord {
        name: "alice".into(),
        access_key: "AKALICE".into(),
        secret_key: "secret".into(),
        canonical_id: "c".repeat(64),
        email: None,
        created_ms: 1,
    };
    txn.put_user(&user)?;
    seen.push(format!("user by key {:?}, {:?}", txn.user_of_key("AKALICE")?, txn.user("alice")?.map(|u| u.email)));
    txn.remove_user(&user)?;
    seen.push(format!("after removal {:?} {:?}", txn.user_of_key("AKALICE")?, txn.user("alice")?.is_some()));

    // Byte order, whatever a collation would say ("Zed" before "bob").
    for name in ["bob", "Zed"] {
        txn.put_user(&crate::store::users::UserRecord {
            name: name.into(),
            access_key: format!("AK{name}"),
            ..user.clone()
        })?;
    }
    txn.put_bucket("a.b", &bucket_record())?;
    txn.put_bucket("a-b", &bucket_record())?;

    let (a, b) = (txn.next_version_seq()?, txn.next_version_seq()?);
    seen.push(format!("version numbers increase: {}", b > a));
    Ok(seen)
}

/// What a later snapshot sees of the scenario's writes.
fn observe(txn: &impl MetaRead) -> StoreResult<Vec<String>> {
    let row = object_key("b", b"k");
    Ok(vec![
        format!("bucket versioning {:?}", txn.bucket("b")?.map(|b| b.versioning)),
        format!("has objects {}", txn.bucket_has_objects("b")?),
        format!("versions {:?}", versions_of(txn, &row)?),
        format!("refs {:?}", [100, 101, 102, 200, 201, 202].map(|id| txn.blob_refs(id).unwrap_or(99))),
        format!("uploads {:?}", upload_ids(txn, "b")?),
        format!("buckets {:?}", txn.buckets()?.into_iter().map(|(name, _)| name).collect::<Vec<_>>()),
        format!("users {:?}", txn.users()?.into_iter().map(|u| u.name).collect::<Vec<_>>()),
    ])
}

fn on_redb() -> (Vec<String>, Vec<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = redb::Database::create(dir.path().join("meta.redb")).expect("create");
    let txn = db.begin_write().expect("write");
    let seen = scenario(&RedbTxn(&txn)).expect("scenario on redb");
    txn.commit().expect("commit");
    let read = db.begin_read().expect("read");
    (seen, observe(&RedbRead(&read)).expect("observe on redb"))
}

#[test]
fn the_write_rules_see_the_same_on_postgres_as_on_redb() {
    let Some(schema) = TestSchema::create(RetryPolicy::default()) else { return };
    let (redb_seen, redb_observed) = on_redb();
    let pg_seen = run_blocking(&schema.ctx, Mode::Write, |txn| scenario(txn)).expect("scenario on PostgreSQL");
    let pg_observed = run_blocking(&schema.ctx, Mode::Snapshot, |txn| observe(txn)).expect("observe on PostgreSQL");
    for (step, (redb, pg)) in redb_seen.iter().zip(&pg_seen).enumerate() {
        assert_eq!(redb, pg, "step {step}");
    }
    assert_eq!(redb_seen.len(), pg_seen.len());
    assert_eq!(redb_observed, pg_observed);
    // And what they agree on is what S3 says.
    let expected = [
        "delete: marker true dead []",
        "current after delete: None",
        "versions: [(\"\", true), (\"e3\", false), (\"e2\", false), (\"e1\", false)]",
        "refs 100..=102: [0, 1, 1]",
        "part 1 as 201: dead [200]",
        "abort: dead [201, 202]",
        "version numbers increase: true",
    ];
    assert!(pg_observed.contains(&"buckets [\"a-b\", \"a.b\", \"b\"]".to_string()), "{pg_observed:?}");
    assert!(pg_observed.contains(&"users [\"Zed\", \"bob\"]".to_string()), "{pg_observed:?}");
    for line in expected {
        assert!(pg_seen.iter().any(|s| s.starts_with(line)), "{line} not in {pg_seen:#?}");
    }
}

#[test]
fn two_conditional_creates_of_one_key_give_exactly_one_winner() {
    let Some(schema) = TestSchema::create(RetryPolicy::default()) else { return };
    let row = object_key("b", b"race");
    let attempts = Arc::new(AtomicU32::new(0));
    let create = |etag: &'static str| {
        let (ctx, row, attempts) = (schema.ctx.clone(), row.clone(), attempts.clone());
        std::thread::spawn(move || {
            run_blocking(&ctx, Mode::Write, |txn| {
                attempts.fetch_add(1, Ordering::Relaxed);
                if txn.object(&row)?.is_some() {
                    return Err(StoreError::internal("exists"));
                }
                // Both look before either writes.
                std::thread::sleep(Duration::from_millis(100));
                txn.put_object(&row, &crate::store::schema::ObjectRecord { etag: etag.into(), ..object_record(1) })
            })
        })
    };
    let (a, b) = (create("a"), create("b"));
    let results = [a.join().expect("thread a"), b.join().expect("thread b")];
    let won: Vec<bool> = results.iter().map(Result::is_ok).collect();
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{results:?}");
    assert!(results.iter().any(|r| matches!(r, Err(RunError::Rejected(_)))), "{results:?}");
    assert!(attempts.load(Ordering::Relaxed) >= 3, "the loser ran again after the conflict");
    let winner = run_blocking(&schema.ctx, Mode::Snapshot, |txn| txn.object(&row)).expect("read");
    let expected = if won[0] { "a" } else { "b" };
    assert_eq!(winner.map(|r| r.etag).as_deref(), Some(expected));
}

#[test]
fn concurrent_increments_of_one_count_are_all_kept() {
    let policy = RetryPolicy { max_attempts: 1000, max_time: Duration::from_secs(60), ..RetryPolicy::default() };
    let Some(schema) = TestSchema::create(policy) else { return };
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let ctx = schema.ctx.clone();
            std::thread::spawn(move || {
                for _ in 0..10 {
                    run_blocking(&ctx, Mode::Write, |txn| txn.set_blob_refs(42, txn.blob_refs(42)? + 1))
                        .map_err(|e| format!("{e:?}"))?;
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("thread").expect("increments");
    }
    assert_eq!(run_blocking(&schema.ctx, Mode::Snapshot, |txn| txn.blob_refs(42)).expect("read"), 40);
}

// ---- the store over PostgreSQL: two gateways, one database, one folder ----

/// What a conditional write was refused for, or the store's error.
#[derive(Debug)]
enum Put {
    Exists,
    Store(#[allow(dead_code, reason = "shown by Debug when a test fails")] StoreError),
}

impl From<StoreError> for Put {
    fn from(e: StoreError) -> Self {
        Put::Store(e)
    }
}

/// PutObject of `size` bytes of `seed` at `b/k`, `If-None-Match: *` if `only_new`.
async fn put(store: &Arc<Store>, (seed, size): (u8, usize), only_new: bool) -> Result<ObjectRecord, Put> {
    let staged = crate::store::test_support::stage(store, &vec![seed; size]).await;
    let record = ObjectRecord { etag: format!("seed {seed}"), ..object_record(size) };
    let check = move |current: Option<&ObjectRecord>| match current.is_some() && only_new {
        true => Err(Put::Exists),
        false => Ok(()),
    };
    store.write_object(("b", "k"), record, staged, check).await
}

const FILE: usize = 100 * 1024;
const SMALL: usize = 1000;

#[test]
fn two_gateways_agree_on_conditional_puts_versions_and_delete_markers() {
    let Some(schema) = TestSchema::create(RetryPolicy::default()) else { return };
    let folder = tempfile::tempdir().expect("tempdir");
    let a = Store::open_postgres(folder.path(), "a", schema.ctx.clone()).expect("gateway a");
    let b = Store::open_postgres(folder.path(), "b", schema.ctx.clone()).expect("gateway b");
    assert_eq!(a.not_ready(), None, "ready: the database answers");
    a.create_bucket("b", &bucket_record()).expect("create bucket");
    assert!(matches!(b.create_bucket("b", &bucket_record()), Err(StoreError::BucketExists(_))));

    // If-None-Match: * from both gateways at once: one 200, one 412.
    let (ra, rb) = schema.runtime.block_on(async {
        let (a, b) = (a.clone(), b.clone());
        tokio::join!(
            tokio::spawn(async move { put(&a, (1, FILE), true).await }),
            tokio::spawn(async move { put(&b, (2, FILE), true).await })
        )
    });
    let results = [ra.expect("task a"), rb.expect("task b")];
    let winners: Vec<&ObjectRecord> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert!(results.iter().any(|r| matches!(r, Err(Put::Exists))), "{results:?}");
    let etag = winners[0].etag.clone();
    assert_eq!(a.get_object("b", "k").expect("a reads").etag, etag);
    assert_eq!(b.get_object("b", "k").expect("b reads").etag, etag);
    let files = folder.path().join("blobs");
    let count_files = || a.layout().all_blob_ids().expect("blob files").len();
    assert_eq!(count_files(), 1, "the loser's published file was removed ({})", files.display());

    // Versions written through one gateway, read and deleted through the other.
    b.update_bucket("b", |record| record.versioning = Versioning::Enabled).expect("enable versioning");
    let second = schema.runtime.block_on(put(&a, (3, SMALL), false)).expect("second version");
    let bytes = |store: &Store, record: &ObjectRecord| {
        let opened = store.open_range(&record.blobs, 0..record.size).expect("open");
        opened.read_small().expect("small enough to read at once").expect("read").to_vec()
    };
    assert_eq!(bytes(&b, &b.get_object("b", "k").expect("b reads")), vec![3; SMALL], "a small body, from the database");
    // A handler calls point reads from its async task: no panic, no stall.
    let from_task = {
        let b = b.clone();
        schema.runtime.block_on(async move { tokio::spawn(async move { b.get_object("b", "k") }).await })
    };
    assert_eq!(from_task.expect("task").expect("read from an async task").etag, "seed 3");
    let (first, _) = b.get_version("b", "k", Some(VersionId::of(&winners[0].version))).expect("first version");
    let seed = first.etag.as_bytes()[5] - b'0';
    assert_eq!(bytes(&b, &first), vec![seed; FILE], "a file, with its block checksums");
    assert_eq!(b.get_object("b", "k").expect("b reads the new version").etag, "seed 3");
    let deleted = b.delete_object("b", "k").expect("delete through b");
    assert!(deleted.delete_marker);
    assert!(matches!(a.get_object("b", "k"), Err(StoreError::DeleteMarker { .. })));
    let id = VersionId::of(&second.version);
    let (kept, _) = a.get_version("b", "k", Some(id)).expect("the version stays readable by id");
    assert_eq!(kept.etag, "seed 3");
    assert_eq!(count_files(), 1, "the small version is no file");
}

/// A store on each backend, each in a folder of its own (kept while the
/// last value lives).
fn both_stores(schema: &TestSchema) -> (Arc<Store>, Arc<Store>, [tempfile::TempDir; 2]) {
    let folders = [tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir")];
    let redb = schema.runtime.block_on(async { Store::open(folders[0].path()) }).expect("redb store");
    let pg = Store::open_postgres(folders[1].path(), "g", schema.ctx.clone()).expect("pg store");
    (redb, pg, folders)
}

/// Keys whose byte order differs from what a collation would say (case,
/// accents, punctuation), some under common prefixes.
const LIST_KEYS: &[&str] =
    &["Zebra", "apple", "Äpfel", "a-b", "a.b", "a/b/1", "a/b/2", "a/c", "a/d/x/y", "b", "b/", "b//c", "é", "e", "z/1"];

/// The pages of a few listings: the shape of each entry, page by page.
fn listings(store: &Store) -> Vec<String> {
    use crate::store::{ListEntry, ListQuery};
    let queries = [
        ("", None, None, 1000),
        ("", Some("/"), None, 1000),
        ("a/", Some("/"), None, 1000),
        ("", None, Some("a.b"), 4),
        ("", Some("/"), Some("a/b/1"), 2),
        ("b", Some("/"), None, 1),
    ];
    let mut seen = Vec::new();
    for (prefix, delimiter, after, max_keys) in queries {
        let mut after = after.map(str::to_string);
        loop {
            let q = ListQuery {
                prefix: prefix.into(),
                delimiter: delimiter.map(Into::into),
                after: after.clone(),
                max_keys,
            };
            let page = store.list_objects("b", &q).expect("list");
            let names: Vec<String> = page
                .entries
                .iter()
                .map(|e| match e {
                    ListEntry::Object(key, record) => format!("{key} ({})", record.size),
                    ListEntry::CommonPrefix(cp) => format!("{cp}*"),
                })
                .collect();
            seen.push(format!("{prefix:?} {delimiter:?} after {after:?}: {names:?} truncated {}", page.truncated));
            match (page.truncated, page.entries.last()) {
                (true, Some(last)) => after = Some(last.name().to_string()),
                _ => break,
            }
        }
    }
    seen
}

#[test]
fn listings_are_in_byte_order_and_page_alike_on_both_backends() {
    for database in [Database::Default, Database::Icu] {
        listings_page_alike(database);
    }
}

fn listings_page_alike(database: Database) {
    let Some(schema) = TestSchema::create_in(database, RetryPolicy::default()) else { return };
    let (redb, pg, _folders) = both_stores(&schema);
    for store in [&redb, &pg] {
        store.create_bucket("b", &bucket_record()).expect("bucket");
        for (n, key) in LIST_KEYS.iter().enumerate() {
            schema.put(store, ("b", key), n);
        }
    }
    let (on_redb, on_pg) = (listings(&redb), listings(&pg));
    assert_eq!(on_redb, on_pg, "{database:?}");
    let everything = &on_pg[0];
    assert!(everything.contains(r#"["Zebra (0)", "a-b (3)", "a.b (4)", "a/b/1 (5)""#), "{everything}");
    assert!(everything.contains(r#""e (13)", "z/1 (14)", "Äpfel (2)", "é (12)"]"#), "{everything}");
    redb.close();
}

/// The pages of ListObjectVersions, `max_keys` at a time, as (key, size,
/// latest, delete marker) or a common prefix.
fn version_pages(store: &Store, delimiter: Option<&str>, max_keys: usize) -> Vec<String> {
    use crate::store::{VersionEntry, VersionQuery};
    let (mut key_marker, mut version_marker) = (None, None);
    let mut seen = Vec::new();
    loop {
        let q = VersionQuery {
            prefix: String::new(),
            delimiter: delimiter.map(Into::into),
            key_marker: key_marker.clone(),
            version_marker,
            max_keys,
        };
        let page = store.list_versions("v", &q).expect("list versions");
        for entry in &page.entries {
            seen.push(match entry {
                VersionEntry::Version { key, record, latest } => {
                    format!("{key} {} latest {latest} marker {}", record.size, record.version.delete_marker)
                }
                VersionEntry::CommonPrefix(cp) => format!("{cp}*"),
            });
        }
        seen.push(format!("-- truncated {}", page.truncated));
        match (page.truncated, page.entries.last()) {
            (true, Some(VersionEntry::Version { key, record, .. })) => {
                (key_marker, version_marker) = (Some(key.clone()), Some(VersionId::of(&record.version)));
            }
            (true, Some(VersionEntry::CommonPrefix(cp))) => (key_marker, version_marker) = (Some(cp.clone()), None),
            _ => return seen,
        }
    }
}

#[test]
fn version_listings_page_alike_on_both_backends() {
    for database in [Database::Default, Database::Icu] {
        version_listings_page_alike(database);
    }
}

fn version_listings_page_alike(database: Database) {
    let Some(schema) = TestSchema::create_in(database, RetryPolicy::default()) else { return };
    let (redb, pg, _folders) = both_stores(&schema);
    for store in [&redb, &pg] {
        store.create_bucket("v", &bucket_record()).expect("bucket");
        // One key written before versioning: its null version stays current.
        let put = |key: &str, size: usize| schema.put(store, ("v", key), size);
        put("a/old", 1);
        store.update_bucket("v", |b| b.versioning = Versioning::Enabled).expect("versioning");
        for (key, size) in [("b", 2), ("b", 3), ("a/x", 4), ("Z", 5), ("b", 6), ("é", 7)] {
            put(key, size);
        }
        store.delete_object("v", "Z").expect("delete marker");
        store.delete_object("v", "é").expect("delete marker");
        put("é", 8);
    }
    for (delimiter, max_keys) in [(None, 1000), (None, 2), (Some("/"), 1000), (Some("/"), 1)] {
        let on_redb = version_pages(&redb, delimiter, max_keys);
        assert_eq!(on_redb, version_pages(&pg, delimiter, max_keys), "{delimiter:?} {max_keys}");
    }
    let all = version_pages(&pg, None, 1000);
    let expected = [
        "Z 0 latest true marker true",
        "Z 5 latest false marker false",
        "a/old 1 latest true marker false",
        "a/x 4 latest true marker false",
        "b 6 latest true marker false",
        "b 3 latest false marker false",
        "b 2 latest false marker false",
        "é 8 latest true marker false",
        "é 0 latest false marker true",
        "é 7 latest false marker false",
        "-- truncated false",
    ];
    assert_eq!(all, expected, "{database:?}");
    redb.close();
}

/// The pages of ListMultipartUploads, `max` at a time.
fn upload_pages(store: &Store, delimiter: Option<&str>, max: usize) -> Vec<String> {
    use crate::store::{UploadEntry, UploadQuery};
    let (mut key_marker, mut upload_id_marker) = (String::new(), None);
    let mut seen = Vec::new();
    loop {
        let q = UploadQuery {
            prefix: String::new(),
            delimiter: delimiter.map(Into::into),
            key_marker: key_marker.clone(),
            upload_id_marker: upload_id_marker.clone(),
            max,
        };
        let page = store.list_uploads("u", &q).expect("list uploads");
        for entry in &page.entries {
            seen.push(match entry {
                UploadEntry::Upload { key, upload_id, .. } => format!("{key} {upload_id}"),
                UploadEntry::CommonPrefix(cp) => format!("{cp}*"),
            });
        }
        seen.push(format!("-- truncated {}", page.truncated));
        match (page.truncated, page.entries.last()) {
            (true, Some(UploadEntry::Upload { key, upload_id, .. })) => {
                (key_marker, upload_id_marker) = (key.clone(), Some(upload_id.clone()));
            }
            (true, Some(UploadEntry::CommonPrefix(cp))) => (key_marker, upload_id_marker) = (cp.clone(), None),
            _ => return seen,
        }
    }
}

#[test]
fn upload_and_part_listings_page_alike_on_both_backends() {
    for database in [Database::Default, Database::Icu] {
        upload_and_part_listings_page_alike(database);
    }
}

fn upload_and_part_listings_page_alike(database: Database) {
    let Some(schema) = TestSchema::create_in(database, RetryPolicy::default()) else { return };
    let (redb, pg, _folders) = both_stores(&schema);
    let uploads = [("b", 'x'), ("a/1", 'c'), ("Z", 'q'), ("b", 'a'), ("a/2", 'b'), ("é", 'd'), ("b", 'm')];
    for store in [&redb, &pg] {
        store.create_bucket("u", &bucket_record()).expect("bucket");
        for (key, id) in uploads {
            store.create_upload(&id.to_string().repeat(UPLOAD_ID_LEN), &upload_record("u", key)).expect("upload");
        }
        let id = "m".repeat(UPLOAD_ID_LEN);
        for number in [3, 1, 7, 2] {
            let staged =
                schema.runtime.block_on(crate::store::test_support::stage(store, &vec![1; usize::from(number)]));
            schema.runtime.block_on(store.write_part(("u", "b", &id), number, staged, 0)).expect("part");
        }
    }
    for (delimiter, max) in [(None, 1000), (None, 2), (Some("/"), 1000), (Some("/"), 1)] {
        assert_eq!(upload_pages(&redb, delimiter, max), upload_pages(&pg, delimiter, max), "{delimiter:?} {max}");
    }
    let all = upload_pages(&pg, None, 1000);
    let short: Vec<String> = all.iter().map(|line| line.chars().take(5).collect()).collect();
    assert_eq!(short, ["Z qqq", "a/1 c", "a/2 b", "b aaa", "b mmm", "b xxx", "é ddd", "-- tr"]);
    let id = "m".repeat(UPLOAD_ID_LEN);
    for store in [&redb, &pg] {
        let first = store.list_parts("u", "b", &id, 0, 2).expect("parts");
        let numbers: Vec<(u16, u64)> = first.parts.iter().map(|(n, p)| (*n, p.span.size)).collect();
        assert_eq!((numbers, first.truncated), (vec![(1, 1), (2, 2)], true));
        let rest = store.list_parts("u", "b", &id, 2, 2).expect("parts");
        let numbers: Vec<u16> = rest.parts.iter().map(|(n, _)| *n).collect();
        assert_eq!((numbers, rest.truncated), (vec![3, 7], false));
        assert!(matches!(store.list_parts("u", "a/1", &id, 0, 2), Err(StoreError::NoSuchUpload)));
    }
    redb.close();
}

/// The ids of a bucket's uploads, in key then id order.
fn upload_ids(txn: &dyn MetaRead, bucket: &str) -> StoreResult<Vec<String>> {
    Ok(uploads_of_bucket(txn, bucket)?.into_iter().map(|(_, id)| id).collect())
}
