//! Several `tessera serve --meta` processes over one PostgreSQL database and
//! one blob folder (issue 17, docs/scale-out.md): what one gateway writes,
//! another serves; races sent to two gateways keep S3's guarantees; each
//! gateway's id and temp folder are its own.
//!
//! Needs `TESSERA_TEST_PG` (see tests/common/pg.rs); without it every test
//! says why and passes, except under CI, where it fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

mod common;

use std::path::Path;

use common::pg::{migrate, Db};
use common::{complete, create_upload, part_etag, pattern, Client, Req, Response, Server};
use md5::{Digest, Md5};

const MIB: usize = 1024 * 1024;

/// A gateway named `id` over the database `url` and the folder `data`.
fn gateway(data: &Path, url: &str, id: &str) -> Server {
    gateway_with(data, url, id, &[])
}

/// [`gateway`] with more options.
fn gateway_with(data: &Path, url: &str, id: &str, more: &[&str]) -> Server {
    let args = [&["--meta", url, "--gateway-id", id, "--console", "off"], more].concat();
    Server::start_with(data, &args)
}

/// A migrated schema, a shared folder and two gateways on them.
fn two_gateways() -> Option<(Db, tempfile::TempDir, Server, Server)> {
    two_gateways_with(&[])
}

/// [`two_gateways`], "a" and "b", both started with options `more`.
fn two_gateways_with(more: &[&str]) -> Option<(Db, tempfile::TempDir, Server, Server)> {
    let db = Db::new()?;
    migrate(&db.url());
    let data = tempfile::tempdir().unwrap();
    let a = gateway_with(data.path(), &db.url(), "a", more);
    let b = gateway_with(data.path(), &db.url(), "b", more);
    Some((db, data, a, b))
}

fn put(c: &Client, path: &str, body: &[u8]) -> Response {
    let resp = c.send(Req::new("PUT", path).body(body));
    assert_eq!(resp.status, 200, "PUT {path}: {}", resp.text());
    resp
}

fn get(c: &Client, path: &str) -> Response {
    c.send(Req::new("GET", path))
}

#[test]
fn what_one_gateway_writes_the_other_serves() {
    let Some((_db, data, a, b)) = two_gateways() else { return };
    let (ca, cb) = (a.client(), b.client());
    assert_eq!(ca.send(Req::new("PUT", "/shared")).status, 200);
    let (small, big) = (pattern(1000, 1), pattern(3 * MIB, 2));
    let etag = put(&ca, "/shared/small", &small).header("etag").map(str::to_string);
    put(&ca, "/shared/dir/big", &big);

    let got = get(&cb, "/shared/small");
    assert_eq!((got.status, got.header("etag").map(str::to_string)), (200, etag), "{}", got.text());
    assert!(got.body == small, "a small body written through a reads the same through b");
    assert!(get(&cb, "/shared/dir/big").body == big, "a file body written through a reads the same through b");
    let ranged = cb.send(Req::new("GET", "/shared/dir/big").header("range", "bytes=1000-1999"));
    assert_eq!((ranged.status, ranged.body.as_slice()), (206, &big[1000..2000]));
    let listed = cb.send(Req::new("GET", "/shared").query("list-type=2"));
    assert_eq!(listed.elements("Key"), ["dir/big", "small"]);

    assert_eq!(cb.send(Req::new("DELETE", "/shared/small")).status, 204);
    assert_eq!(get(&ca, "/shared/small").status, 404, "a delete through b is seen through a");

    // Each gateway has its own folder in the shared one, and no redb file.
    for id in ["a", "b"] {
        let own = data.path().join("gateways").join(id);
        assert!(own.join("tmp").is_dir() && own.join("server-info").is_file(), "{}", own.display());
    }
    assert!(!data.path().join("meta.redb").exists(), "a gateway over PostgreSQL made a redb file");
    assert!(a.terminate().success() && b.terminate().success(), "SIGTERM exits 0");
}

#[test]
fn parts_of_one_upload_go_to_both_gateways() {
    let Some((_db, _data, a, b)) = two_gateways() else { return };
    let (ca, cb) = (a.client(), b.client());
    assert_eq!(ca.send(Req::new("PUT", "/mpu")).status, 200);
    let id = create_upload(&ca, "/mpu/file");
    let bodies = [pattern(5 * MIB, 3), pattern(5 * MIB, 4), pattern(MIB, 5)];
    // Parts 3 and 1 through b, part 2 through a, out of order.
    let e3 = part_etag(&cb, "/mpu/file", &id, 3, &bodies[2]);
    let e1 = part_etag(&cb, "/mpu/file", &id, 1, &bodies[0]);
    let e2 = part_etag(&ca, "/mpu/file", &id, 2, &bodies[1]);
    let listed = ca.send(Req::new("GET", "/mpu/file").query(&format!("uploadId={id}")));
    assert_eq!(listed.elements("PartNumber"), ["1", "2", "3"], "a lists the parts b received");
    let done = complete(&cb, "/mpu/file", &id, &[(1, e1.as_str()), (2, e2.as_str()), (3, e3.as_str())]);
    assert_eq!(done.status, 200, "{}", done.text());
    let mut md5s = Md5::new();
    for body in &bodies {
        md5s.update(Md5::digest(body));
    }
    let etag = format!("\"{}-3\"", hex::encode(md5s.finalize()));
    let got = get(&ca, "/mpu/file");
    assert_eq!(got.header("etag"), Some(etag.as_str()));
    assert!(got.body == bodies.concat(), "the object read through a is the three parts in order");

    // Complete through one gateway racing Abort through the other: one wins whole.
    let id = create_upload(&ca, "/mpu/race");
    let e1 = part_etag(&ca, "/mpu/race", &id, 1, &bodies[2]);
    let (done, aborted) = std::thread::scope(|s| {
        let done = s.spawn(|| complete(&a.client(), "/mpu/race", &id, &[(1, e1.as_str())]).status);
        let abort =
            s.spawn(|| b.client().send(Req::new("DELETE", "/mpu/race").query(&format!("uploadId={id}"))).status);
        (done.join().unwrap(), abort.join().unwrap())
    });
    let got = get(&cb, "/mpu/race");
    match (done, aborted) {
        (200, 404) => assert!(got.body == bodies[2], "completed whole"),
        (404, 204) => assert_eq!(got.status, 404, "aborted whole"),
        other => panic!("complete/abort answered {other:?}: exactly one must win"),
    }
}

#[test]
fn conditional_writes_sent_to_two_gateways_have_one_winner() {
    let Some((_db, _data, a, b)) = two_gateways() else { return };
    assert_eq!(a.client().send(Req::new("PUT", "/cond")).status, 200);
    for round in 0..5u64 {
        let key = format!("/cond/k{round}");
        let (body_a, body_b) = (pattern(100_000, 10 + 2 * round), pattern(100_000, 11 + 2 * round));
        let create = |server: &Server, body: &[u8]| {
            server.client().send(Req::new("PUT", &key).header("if-none-match", "*").body(body)).status
        };
        let (sa, sb) = std::thread::scope(|s| {
            let ta = s.spawn(|| create(&a, &body_a));
            let tb = s.spawn(|| create(&b, &body_b));
            (ta.join().unwrap(), tb.join().unwrap())
        });
        let got = get(&b.client(), &key).body;
        match (sa, sb) {
            (200, 412) => assert!(got == body_a, "round {round}: a won, its body is stored"),
            (412, 200) => assert!(got == body_b, "round {round}: b won, its body is stored"),
            other => panic!("round {round}: If-None-Match: * through two gateways answered {other:?}"),
        }
    }
    // If-Match: a compare-and-swap on an ETag read through the other gateway.
    let first = put(&a.client(), "/cond/cas", b"one").header("etag").unwrap().to_string();
    let swap = |c: &Client, body: &[u8]| c.send(Req::new("PUT", "/cond/cas").header("if-match", &first).body(body));
    assert_eq!(swap(&b.client(), b"two").status, 200);
    assert_eq!(swap(&a.client(), b"three").status, 412, "the ETag changed through b");
    assert_eq!(get(&a.client(), "/cond/cas").body, b"two");
}

/// The first column of what `sql` selects, as text.
fn column(db: &Db, sql: &str) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let rows = db.client().await.query(sql, &[]).await.unwrap();
        rows.iter().map(|r| r.get(0)).collect()
    })
}

/// The ids in the gateway registry.
fn registered(db: &Db) -> Vec<String> {
    column(db, "SELECT id FROM gateways ORDER BY id")
}

#[test]
fn a_gateway_id_is_one_process_s_and_its_temp_folder_its_own() {
    let Some(db) = Db::new() else { return };
    migrate(&db.url());
    let data = tempfile::tempdir().unwrap();
    let one = gateway(data.path(), &db.url(), "one");
    let two = gateway(data.path(), &db.url(), "two");
    assert_eq!(registered(&db), ["one", "two"]);
    assert_eq!(one.client().send(Req::new("PUT", "/ids")).status, 200);
    put(&one.client(), "/ids/k", &pattern(200_000, 20));

    // A second process with the same id is refused, naming the holder.
    let log = data.path().join("refused.log");
    let refused = Server::try_start_with(
        data.path(),
        &["--meta", &db.url(), "--gateway-id", "one", "--console", "off"],
        std::fs::File::create(&log).unwrap(),
    );
    assert!(refused.is_none(), "a second gateway 'one' started");
    let stderr = std::fs::read_to_string(&log).unwrap();
    let holder = format!("process {}", one.pid());
    assert!(stderr.contains("gateway id one is in use by the running gateway") && stderr.contains(&holder), "{stderr}");

    // Killed, then started again at once: the id is taken back (its process
    // is gone), its own leftovers are removed, another gateway's stay.
    let own_tmp = Path::new(data.path()).join("gateways/one/tmp");
    let other_tmp = Path::new(data.path()).join("gateways/two/tmp");
    std::fs::write(own_tmp.join("0123456789abcdef0123456789abcdef"), b"left by a write cut short").unwrap();
    std::fs::write(other_tmp.join("fedcba9876543210fedcba9876543210"), b"a write in progress").unwrap();
    one.kill9();
    let one = gateway(data.path(), &db.url(), "one");
    assert_eq!(std::fs::read_dir(&own_tmp).unwrap().count(), 0, "the restarted gateway empties its own tmp/");
    assert_eq!(std::fs::read_dir(&other_tmp).unwrap().count(), 1, "and leaves another gateway's alone");
    assert!(get(&two.client(), "/ids/k").body == pattern(200_000, 20), "the acknowledged PUT survived kill -9");

    // A clean stop gives the id up.
    assert!(one.terminate().success());
    assert_eq!(registered(&db), ["two"]);
    assert!(two.terminate().success());
    assert_eq!(registered(&db), Vec::<String>::new());

    // Without --meta the shared folder is refused, not given a redb file
    // that would serve an empty namespace beside the gateways'.
    let log = data.path().join("embedded.log");
    let embedded = Server::try_start_with(data.path(), &["--console", "off"], std::fs::File::create(&log).unwrap());
    assert!(embedded.is_none(), "a redb server started on a folder shared by gateways");
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(stderr.contains("is shared by gateways over a metadata database"), "{stderr}");
    assert!(!data.path().join("meta.redb").exists());
}

#[test]
fn users_and_their_rights_are_the_same_on_every_gateway() {
    let Some((_db, data, a, b)) = two_gateways() else { return };
    // `tessera user add` on the shared folder asks a running gateway, not
    // one killed with kill -9 that left its server-info behind.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    for n in 0..3 {
        // Ids sorting before "a", tried first.
        let dead = data.path().join("gateways").join(format!("0-dead{n}"));
        std::fs::create_dir_all(&dead).unwrap();
        std::fs::write(dead.join("server-info"), format!("listen={closed}\nregion=us-east-1\npid=1\n")).unwrap();
    }
    let alice_on_a = common::user_client(&a, data.path(), "alice");
    let alice_on_b = b.client_as(&alice_on_a);
    assert_eq!(alice_on_a.send(Req::new("PUT", "/alices")).status, 200);
    put(&alice_on_b, "/alices/note", b"mine");
    let bob_on_b = b.client_as(&common::user_client(&b, data.path(), "bob"));
    let refused = bob_on_b.send(Req::new("GET", "/alices/note"));
    assert_eq!((refused.status, refused.error_code().as_deref()), (403, Some("AccessDenied")));
    assert_eq!(get(&alice_on_a, "/alices/note").body, b"mine");
    // A user removed through a is refused by b at its next request.
    common::tessera(data.path(), &["user", "remove", "alice"]);
    let gone = alice_on_b.send(Req::new("GET", "/alices/note"));
    assert_eq!((gone.status, gone.error_code().as_deref()), (403, Some("InvalidAccessKeyId")));
}

#[test]
fn users_and_stats_are_reached_through_the_database_with_no_gateway_running() {
    let Some(db) = Db::new() else { return };
    migrate(&db.url());
    let data = tempfile::tempdir().unwrap();
    let url = db.url();
    let admin = |args: &[&str]| common::tessera(data.path(), &[args, &["--meta", &url]].concat());
    // Before any gateway ever ran on the folder.
    let keys: serde_json::Value = serde_json::from_str(&admin(&["user", "add", "dana", "--json"])).unwrap();
    let a = gateway(data.path(), &url, "a");
    let mut dana = a.client();
    dana.access_key = keys["access_key_id"].as_str().unwrap().to_string();
    dana.secret_key = keys["secret_access_key"].as_str().unwrap().to_string();
    assert_eq!(dana.send(Req::new("PUT", "/danas")).status, 200);
    put(&dana, "/danas/one", &pattern(MIB, 90));
    assert!(a.terminate().success());

    assert!(admin(&["user", "list"]).starts_with("dana\t"), "the user is listed");
    let stats: serde_json::Value = serde_json::from_str(&admin(&["stats", "--json"])).unwrap();
    assert_eq!((common::field(&stats, "objects"), common::field(&stats, "logical_bytes")), (1, MIB as u64));
    admin(&["user", "remove", "dana"]);
    let b = gateway(data.path(), &url, "b");
    let gone = b.client_as(&dana).send(Req::new("GET", "/danas/one"));
    assert_eq!((gone.status, gone.error_code().as_deref()), (403, Some("InvalidAccessKeyId")));
    assert!(!data.path().join("meta.redb").exists(), "no redb database was made in the shared folder");
}

#[test]
fn a_gateway_killed_mid_upload_loses_nothing_acknowledged() {
    let Some((db, data, a, b)) = two_gateways() else { return };
    let (ca, cb) = (a.client(), b.client());
    assert_eq!(ca.send(Req::new("PUT", "/kill")).status, 200);
    let old = pattern(2 * MIB, 30);
    put(&ca, "/kill/obj", &old);
    let id = create_upload(&ca, "/kill/mpu");
    let first = pattern(5 * MIB, 31);
    let e1 = part_etag(&ca, "/kill/mpu", &id, 1, &first);
    // Half of a new body for the object, then the gateway dies.
    let new = pattern(2 * MIB, 32);
    let _cut = ca.send_partial(Req::new("PUT", "/kill/obj").body(&new[..MIB]), 2 * MIB);
    std::thread::sleep(std::time::Duration::from_millis(300));
    a.kill9();

    // The other gateway serves on: the old object whole, the upload's
    // acknowledged part, completed through it.
    assert!(get(&cb, "/kill/obj").body == old, "the cut PUT left the old object, byte for byte");
    let last = pattern(MIB, 33);
    let e2 = part_etag(&cb, "/kill/mpu", &id, 2, &last);
    let done = complete(&cb, "/kill/mpu", &id, &[(1, e1.as_str()), (2, e2.as_str())]);
    assert_eq!(done.status, 200, "{}", done.text());
    assert!(get(&cb, "/kill/mpu").body == [first, last].concat());
    // Restarted, the killed gateway serves the same namespace again.
    let a = gateway(data.path(), &db.url(), "a");
    assert!(get(&a.client(), "/kill/obj").body == old);
    assert_eq!(std::fs::read_dir(data.path().join("gateways/a/tmp")).unwrap().count(), 0, "its tmp/ is emptied");
}

/// The holder of the lease on the chore `name`, if it runs.
fn lease_holder(db: &Db, name: &str) -> Option<String> {
    column(db, &format!("SELECT holder FROM leases WHERE name = '{name}' AND expires_at > now()")).pop()
}

fn dead_blob_rows(db: &Db) -> usize {
    column(db, "SELECT count(*)::text FROM dead_blobs").pop().unwrap().parse().unwrap()
}

/// Waits (up to `secs`) until `done` holds.
fn eventually(secs: u64, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{what}: not done after {secs} s");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn freed_blob_files_outlive_the_grace_period_then_one_gateway_unlinks_them() {
    let Some((db, data, a, b)) = two_gateways_with(&["--unlink-grace", "3s"]) else { return };
    let (ca, cb) = (a.client(), b.client());
    assert_eq!(ca.send(Req::new("PUT", "/freed")).status, 200);
    let (first, second) = (pattern(3 * MIB, 40), pattern(2 * MIB, 41));
    put(&ca, "/freed/overwritten", &first);
    put(&ca, "/freed/deleted", &pattern(3 * MIB, 42));
    assert_eq!(common::blob_files(data.path()), 2);

    // An overwrite through b and a delete through a free two files; both
    // stay through the grace period (a GET elsewhere may still read them).
    // (The grace runs from the database's time of the freeing statement,
    // after `freeing`.)
    let freeing = std::time::Instant::now();
    put(&cb, "/freed/overwritten", &second);
    assert_eq!(ca.send(Req::new("DELETE", "/freed/deleted")).status, 204);
    assert_eq!(dead_blob_rows(&db), 2);
    std::thread::sleep(std::time::Duration::from_secs(2).saturating_sub(freeing.elapsed()));
    let files = common::blob_files(data.path());
    if freeing.elapsed() < std::time::Duration::from_secs(3) {
        assert_eq!(files, 3, "a freed file was unlinked within the grace period");
    }

    eventually(20, "the freed files are unlinked", || common::blob_files(data.path()) == 1);
    assert!(freeing.elapsed() >= std::time::Duration::from_secs(3), "unlinked before the grace period ended");
    assert_eq!(dead_blob_rows(&db), 0, "the rows of unlinked files are forgotten");
    assert!(get(&cb, "/freed/overwritten").body == second && get(&ca, "/freed/overwritten").body == second);
    assert_eq!(get(&cb, "/freed/deleted").status, 404);
    // One gateway held the chore.
    let holder = lease_holder(&db, "freed-blobs");
    assert!(matches!(holder.as_deref(), Some("a" | "b")), "lease holder {holder:?}");
    // A clean stop gives the leases up.
    let holder = holder.unwrap();
    let (stopping, staying) = if holder == "a" { (a, b) } else { (b, a) };
    assert!(stopping.terminate().success());
    assert_eq!(column(&db, &format!("SELECT name FROM leases WHERE holder = '{holder}'")), Vec::<String>::new());
    drop(staying);
}

#[test]
fn a_gateway_killed_holding_the_collection_lease_hands_it_over() {
    let Some((db, data, a, b)) = two_gateways_with(&["--unlink-grace", "1s"]) else { return };
    let mut gateways = [Some(a), Some(b)];
    let c = gateways[0].as_ref().unwrap().client();
    assert_eq!(c.send(Req::new("PUT", "/freed")).status, 200);
    for n in 0..20 {
        put(&c, &format!("/freed/{n}"), &pattern(100_000, n));
    }
    let mut holder = None;
    eventually(10, "a gateway takes the collection lease", || {
        holder = lease_holder(&db, "freed-blobs");
        holder.is_some()
    });
    let holder = holder.unwrap();
    let (dead, alive) = if holder == "a" { (0, 1) } else { (1, 0) };
    gateways[dead].take().unwrap().kill9();

    // The files freed after the holder died are unlinked by the other
    // gateway once the dead one's lease expires (30 s).
    let c = gateways[alive].as_ref().unwrap().client();
    for n in 0..10 {
        assert_eq!(c.send(Req::new("DELETE", &format!("/freed/{n}"))).status, 204);
    }
    eventually(45, "the other gateway unlinks the freed files", || common::blob_files(data.path()) == 10);
    let survivor = if holder == "a" { "b" } else { "a" };
    assert_eq!(lease_holder(&db, "freed-blobs").as_deref(), Some(survivor));
    assert_eq!(dead_blob_rows(&db), 0);
    for n in 10..20 {
        common::assert_reads(&c, &format!("/freed/{n}"), &pattern(100_000, n));
    }
}

#[test]
fn orphaned_blob_files_are_unlinked_and_every_named_one_kept() {
    let Some((db, data, a, _b)) = two_gateways_with(&["--orphan-grace", "8s"]) else { return };
    let c = a.client();
    assert_eq!(c.send(Req::new("PUT", "/orphans")).status, 200);
    let body = pattern(MIB, 50);
    put(&c, "/orphans/kept", &body);
    let kept = common::blob_paths(data.path()).pop().unwrap();
    // What a gateway killed between a file's rename and its commit leaves,
    // an hour ago; and one of a commit still on its way.
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let orphan = data.path().join("blobs/00/000000000000000000000000000000ab");
    let fresh = data.path().join("blobs/00/000000000000000000000000000000cd");
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    for (path, modified) in [(&orphan, Some(hour_ago)), (&fresh, None), (&kept, Some(hour_ago))] {
        if !path.exists() {
            std::fs::write(path, b"orphaned").unwrap();
        }
        if let Some(modified) = modified {
            std::fs::File::options().write(true).open(path).unwrap().set_modified(modified).unwrap();
        }
    }
    eventually(10, "the old orphan is unlinked", || !orphan.exists());
    assert!(fresh.exists(), "a file younger than --orphan-grace was unlinked");
    assert!(kept.exists(), "an object's file was unlinked");
    common::assert_reads(&c, "/orphans/kept", &body);
    assert!(lease_holder(&db, "orphaned-blobs").is_some());
}

#[test]
fn stale_uploads_and_lifecycle_rules_are_applied_across_gateways() {
    let Some((db, data, a, b)) =
        two_gateways_with(&["--abort-incomplete-after", "2s", "--lifecycle-day", "2s", "--unlink-grace", "1s"])
    else {
        return;
    };
    let (ca, cb) = (a.client(), b.client());
    assert_eq!(ca.send(Req::new("PUT", "/chores")).status, 200);
    let id = create_upload(&ca, "/chores/mpu");
    part_etag(&ca, "/chores/mpu", &id, 1, &pattern(MIB, 60));
    let rule = "<LifecycleConfiguration><Rule><ID>tmp</ID><Status>Enabled</Status><Filter><Prefix>tmp/</Prefix>\
                </Filter><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>";
    let set = cb.send(Req::new("PUT", "/chores").query("lifecycle").body(rule.as_bytes()));
    assert_eq!(set.status, 200, "{}", set.text());
    put(&ca, "/chores/tmp/old", &pattern(MIB, 61));
    put(&ca, "/chores/keep", b"kept");

    let uploads = || cb.send(Req::new("GET", "/chores").query("uploads")).elements("UploadId");
    eventually(20, "the stale upload is aborted", || uploads().is_empty());
    eventually(20, "the rule expires tmp/old", || get(&cb, "/chores/tmp/old").status == 404);
    assert_eq!(get(&ca, "/chores/keep").body, b"kept");
    // The part's and the expired object's files go after the grace period.
    common::wait_for_blob_files(data.path(), 0);
    for chore in ["stale-uploads", "lifecycle"] {
        assert!(matches!(lease_holder(&db, chore).as_deref(), Some("a" | "b")), "{chore}");
    }
}

#[test]
fn copies_written_through_two_gateways_are_hashed_once_and_stored_once() {
    let Some((db, data, a, b)) = two_gateways_with(&["--hash-after-idle", "300ms"]) else { return };
    let (ca, cb) = (a.client(), b.client());
    assert_eq!(ca.send(Req::new("PUT", "/hashed")).status, 200);
    // Sent without a SHA-256: stored as they come, two files.
    let body = pattern(3 * MIB, 70);
    common::put_unsigned(&ca, "/hashed/through-a", &body);
    common::put_unsigned(&cb, "/hashed/through-b", &body);
    assert_eq!(common::blob_inodes(data.path()), 2);

    // One gateway hashes both and links one file to the other.
    eventually(60, "both copies hashed and merged", || {
        let stats = common::stats(data.path());
        (common::field(&stats, "stored_bytes"), common::field(&stats, "unindexed_blobs")) == (3 * MIB as u64, 0)
    });
    assert_eq!((common::blob_files(data.path()), common::blob_inodes(data.path())), (2, 1));
    assert!(matches!(lease_holder(&db, "content-hashing").as_deref(), Some("a" | "b")));
    common::assert_reads(&cb, "/hashed/through-a", &body);
    common::assert_reads(&ca, "/hashed/through-b", &body);
    // The content is indexed: a third copy through either is instant.
    let (resp, sent) = cb.send_expecting_continue(Req::new("PUT", "/hashed/third").body(&body), None);
    assert_eq!((resp.status, sent), (200, false), "{}", resp.text());

    // A copy committed through the gateway that does not hash, after the
    // hasher's last pass: that gateway says so in its row at its next claim
    // renewal (10 s), and the hasher, which asks every 2 s once 20 s have
    // passed since its last pass, hashes and merges it well before its
    // 10-minute rescan.
    let holder = lease_holder(&db, "content-hashing").expect("a gateway holds the hashing lease");
    let other = if holder == "a" { "b" } else { "a" };
    let last_write =
        |id: &str| column(&db, &format!("SELECT coalesce(last_write_at::text, '') FROM gateways WHERE id = '{id}'"));
    let before = last_write(other);
    common::put_unsigned(if other == "a" { &ca } else { &cb }, "/hashed/fourth", &body);
    eventually(15, "the writing gateway's row says it wrote", || last_write(other) != before);
    eventually(45, "the copy written through the other gateway hashed and merged", || {
        let stats = common::stats(data.path());
        (common::field(&stats, "unindexed_blobs"), common::blob_inodes(data.path())) == (0, 1)
    });
    assert_eq!(common::blob_files(data.path()), 3, "three files (through-a, through-b, fourth), one inode");
}

/// What [`two_logged_gateways`] run on.
struct Logged {
    db: Db,
    data: tempfile::TempDir,
    logs: tempfile::TempDir,
}

impl Logged {
    /// The log of gateway `id`.
    fn log(&self, id: &str) -> std::path::PathBuf {
        self.logs.path().join(format!("{id}.log"))
    }
}

/// [`two_gateways_with`], each logging at info level to its own file.
fn two_logged_gateways(more: &[&str]) -> Option<(Logged, Server, Server)> {
    let db = Db::new()?;
    migrate(&db.url());
    let on = Logged { db, data: tempfile::tempdir().unwrap(), logs: tempfile::tempdir().unwrap() };
    let url = on.db.url();
    let start = |id: &str| {
        let args = [&["--meta", &url, "--gateway-id", id, "--console", "off"], more].concat();
        let info = [("TESSERA_LOG", Path::new("info"))];
        let stderr = std::fs::File::create(on.log(id)).unwrap();
        Server::try_start_with_env("127.0.0.1:0", on.data.path(), &args, &info, stderr).expect("the gateway starts")
    };
    let (a, b) = (start("a"), start("b"));
    Some((on, a, b))
}

/// Flips one bit of the byte at `offset` of a file.
fn flip_byte(path: &Path, offset: u64) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, offset).unwrap();
    file.write_all_at(&[byte[0] ^ 0x01], offset).unwrap();
}

/// The one blob file of `len` bytes in the shared folder, and its id.
fn blob_file_of_len(data: &Path, len: usize) -> (std::path::PathBuf, String) {
    let found: Vec<_> = common::blob_paths(data)
        .into_iter()
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() == len as u64))
        .collect();
    assert_eq!(found.len(), 1, "one blob file of {len} bytes: {found:?}");
    let id = found[0].file_name().unwrap().to_string_lossy().into_owned();
    (found[0].clone(), id)
}

/// `tessera scrub --meta URL --data DATA`: exit code and report.
fn scrub_shared(url: &str, data: &Path) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["scrub", "--meta", url, "--data"])
        .arg(data)
        .env("TESSERA_LOG", "off")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code(), text)
}

/// Waits (up to `secs`) for a line of the log at `log` with every one of `words`.
fn log_line(log: &Path, words: &[&str], secs: u64) -> String {
    let mut found = None;
    eventually(secs, &format!("a log line with {words:?} in {}", log.display()), || {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        found = text.lines().find(|l| words.iter().all(|w| l.contains(w))).map(str::to_string);
        found.is_some()
    });
    found.unwrap()
}

#[test]
fn one_gateway_scrubs_and_tessera_scrub_checks_the_shared_folder_beside_them() {
    let Some((on, a, b)) = two_logged_gateways(&["--scrub-interval", "1s"]) else { return };
    let (db, data) = (&on.db, &on.data);
    let (ca, cb) = (a.client(), b.client());
    assert_eq!(ca.send(Req::new("PUT", "/scrubbed")).status, 200);
    put(&ca, "/scrubbed/big", &pattern(3 * MIB, 80));
    put(&cb, "/scrubbed/small", &pattern(1000, 81));
    let upload = create_upload(&cb, "/scrubbed/parts");
    part_etag(&ca, "/scrubbed/parts", &upload, 2, &pattern(MIB, 82));

    let (code, report) = scrub_shared(&db.url(), data.path());
    assert_eq!(code, Some(0), "a clean folder:\n{report}");
    assert!(report.contains("checked 3 blobs (2 files, 1 inline)") && report.contains("corrupt: 0"), "{report}");

    // A changed byte in a file, and in a small body kept in the database.
    let (big, big_id) = blob_file_of_len(data.path(), 3 * MIB);
    flip_byte(&big, 300_000);
    let changed =
        column(db, "UPDATE blob_bodies SET body = set_byte(body, 99, get_byte(body, 99) # 1) RETURNING 'changed'");
    assert_eq!(changed, ["changed"]);
    let (code, report) = scrub_shared(&db.url(), data.path());
    assert_eq!(code, Some(1), "corruption found:\n{report}");
    assert!(report.contains("corrupt: 2"), "{report}");
    let line = report.lines().find(|l| l.contains(&big_id)).unwrap_or_else(|| panic!("names the file:\n{report}"));
    assert!(line.contains("offset 262144") && line.contains("scrubbed/big"), "{line}");
    let line = report.lines().find(|l| l.contains("(inline)")).unwrap_or_else(|| panic!("the body:\n{report}"));
    assert!(line.contains("scrubbed/small"), "{line}");

    // The background scrub finds it too, on the gateway holding its lease
    // only; nothing was read through either gateway.
    let mut holder = None;
    eventually(30, "a gateway holds the scrub lease", || {
        holder = lease_holder(db, "scrub");
        holder.is_some()
    });
    let holder = holder.unwrap();
    let other = if holder == "a" { "b" } else { "a" };
    let line = log_line(&on.log(&holder), &["ERROR", &big_id], 30);
    assert!(line.contains("262144"), "{line}");
    log_line(&on.log(&holder), &["scrub pass done", "corrupt=2"], 30);
    let other_log = std::fs::read_to_string(on.log(other)).unwrap();
    assert!(!other_log.contains("scrub pass"), "the scrub runs on one gateway:\n{other_log}");
}

#[test]
fn a_scrub_pass_cut_by_kill_9_is_resumed_by_another_gateway() {
    // At 512 KiB/s, each 2 MiB object takes about four seconds to check.
    let more = ["--scrub-interval", "1s", "--scrub-rate", "512KiB"];
    let Some((on, a, b)) = two_logged_gateways(&more) else { return };
    let (db, data) = (&on.db, &on.data);
    let mut gateways = [Some(a), Some(b)];
    let c = gateways[0].as_ref().unwrap().client();
    for n in 1..=3 {
        assert_eq!(c.send(Req::new("PUT", &format!("/resume-{n}"))).status, 200);
        put(&c, &format!("/resume-{n}/obj"), &pattern(2 * MIB + n, n as u64));
    }
    let (third, third_id) = blob_file_of_len(data.path(), 2 * MIB + 3);

    // Killed once its pass is in the second bucket (the saved cursor names it).
    eventually(60, "the scrub reaches the second bucket", || scrub_cursor(db).windows(8).any(|w| w == b"resume-2"));
    let holder = lease_holder(db, "scrub").unwrap();
    let (dead, survivor) = if holder == "a" { (0, "b") } else { (1, "a") };
    gateways[dead].take().unwrap().kill9();
    flip_byte(&third, MIB as u64);

    // The other gateway takes the lease once it expires (30 s), goes on from
    // the second bucket (it checks fewer than the three objects) and finds
    // the damage in the third.
    let started = log_line(&on.log(survivor), &["scrub pass starts"], 60);
    assert!(started.contains("resumed=true"), "{started}");
    let done = log_line(&on.log(survivor), &["scrub pass done"], 60);
    let checked = ["blobs=1 ", "blobs=2 "].iter().any(|n| done.contains(n));
    assert!(done.contains("corrupt=1") && checked, "one or two of the three objects: {done}");
    log_line(&on.log(survivor), &["ERROR", &third_id], 1);
}

/// The scrub lease's saved cursor (empty if none).
fn scrub_cursor(db: &Db) -> Vec<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let rows = db.client().await.query("SELECT cursor FROM leases WHERE name = 'scrub'", &[]).await.unwrap();
        rows.first().and_then(|r| r.get::<_, Option<Vec<u8>>>(0)).unwrap_or_default()
    })
}

/// The number of threads of process `pid`.
fn threads_of(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find_map(|l| l.strip_prefix("Threads:")).unwrap();
    line.trim().parse().unwrap()
}

/// How many statements wait for a lock in the test's cluster.
fn waiting_for_locks(db: &Db) -> usize {
    column(db, "SELECT count(*)::text FROM pg_locks WHERE NOT granted").pop().unwrap().parse().unwrap()
}

/// Issue 9's rule on the shared backend: requests waiting for a slow
/// database wait as tasks, not on parked threads. While a transaction of
/// the test holds exclusive locks on the users and buckets tables, 800 GETs
/// arrive: half signed by a user (whose key is looked up), half by root
/// (whose GET reads the bucket's record). At most the turns (the pool's 16
/// less 2) wait on blocking threads; each used to park one, up to tokio's
/// 512, and then the gateway answered nothing. The liveness probe answers
/// at once; once the locks go, every GET gets its object.
#[test]
fn requests_waiting_for_a_locked_database_park_no_thread() {
    const WAITING: usize = 800;
    let Some(db) = Db::new() else { return };
    migrate(&db.url());
    let nofile = common::set_soft_nofile(None);
    assert!(nofile as usize > WAITING + 200, "the hard open-files limit ({nofile}) is too low for this test");
    let data = tempfile::tempdir().unwrap();
    let a = gateway(data.path(), &db.url(), "a");
    let (root, alice) = (a.client(), common::user_client(&a, data.path(), "alice"));
    assert_eq!(alice.send(Req::new("PUT", "/slow")).status, 200);
    let object = pattern(100 * 1024, 5);
    put(&alice, "/slow/obj", &object);
    let before = threads_of(a.pid());

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let locker = runtime.block_on(db.client());
    runtime.block_on(locker.batch_execute("BEGIN; LOCK TABLE users, buckets IN ACCESS EXCLUSIVE MODE")).unwrap();
    let mut waiting: Vec<std::net::TcpStream> =
        (0..WAITING).map(|n| [&root, &alice][n % 2].send_partial(Req::new("GET", "/slow/obj"), 0)).collect();
    // Every turn's statement is stuck behind the locks (other tests' add to
    // the count, never take from it), and the last requests are taken in.
    eventually(20, "statements wait for the test's locks", || waiting_for_locks(&db) >= 14);
    std::thread::sleep(std::time::Duration::from_secs(1));
    let during = threads_of(a.pid());
    let (tx, rx) = std::sync::mpsc::channel();
    let (probe, started) = (a.client(), std::time::Instant::now());
    std::thread::spawn(move || tx.send(probe.send(Req::new("GET", "/_tessera/health/live")).status));
    let live = rx.recv_timeout(std::time::Duration::from_secs(5)).ok();
    let probe_took = started.elapsed();
    eprintln!("threads: {before} before, {during} with {WAITING} requests waiting; probe {live:?} in {probe_took:?}");
    runtime.block_on(locker.batch_execute("ROLLBACK")).unwrap();

    assert!(during <= before + 14 + 8, "{during} threads with {WAITING} requests waiting (from {before})");
    assert_eq!(live, Some(200), "the liveness probe answers beside them");
    assert!(probe_took < std::time::Duration::from_secs(2), "the liveness probe took {probe_took:?}");
    for (n, stream) in waiting.iter_mut().enumerate() {
        let got = common::read_response(stream, false);
        assert_eq!(got.status, 200, "GET {n} once the locks went: {}", got.text());
        assert!(got.body == object, "GET {n}: the object's bytes");
    }
}
