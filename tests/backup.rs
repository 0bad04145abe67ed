//! `tessera backup` against the real binary: a backup taken while the server
//! runs under PUT/DELETE load, and one of a stopped server's folder, are each
//! served by `tessera serve --data BACKUP` with every object byte-exact; the
//! admin endpoint answers only to root signatures. In the PostgreSQL run the
//! servers are gateways: `tessera backup --meta` copies their tables and
//! files beside them, and `tessera restore` loads the tables into a new
//! database before the backup folder is served.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{blob_files, on_postgres, pattern, suite_meta_args, Client, Req, Server, ACCESS_KEY, SECRET_KEY};
use md5::{Digest, Md5};

/// Bodies above this live in blob files, not in the database (store/blob.rs).
const INLINE_MAX: usize = 32 * 1024;
const CHURN_KEYS: usize = 600;
const CHURN_SIZE: usize = 40 * 1024;

/// Every MD5 a key was ever written with, recorded before the PUT is sent.
type Written = Arc<Mutex<HashMap<String, HashSet<String>>>>;

fn md5_hex(body: &[u8]) -> String {
    hex::encode(Md5::digest(body))
}

fn put(client: &Client, key: &str, body: &[u8]) {
    let resp = client.send(Req::new("PUT", &format!("/bkt/{key}")).body(body));
    assert_eq!(resp.status, 200, "PUT {key}: {}", resp.text());
}

/// Runs `tessera backup` with the root credentials in the environment.
fn run_backup(data: &Path, out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["backup", "--data"])
        .arg(data)
        .arg("--out")
        .arg(out)
        .args(suite_meta_args(data))
        .env("TESSERA_ACCESS_KEY", ACCESS_KEY)
        .env("TESSERA_SECRET_KEY", SECRET_KEY)
        .env("TESSERA_LOG", "warn")
        .output()
        .expect("run tessera backup")
}

fn backup_ok(data: &Path, out: &Path) -> String {
    let output = run_backup(data, out);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "backup failed: {stdout} {}", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// A server on the backup `out`: over PostgreSQL, once `tessera restore`
/// has loaded its tables into the (empty) database of that folder.
///
/// The database first gets what earlier gateways of it could have left: a
/// freed-blob row naming each of the backup's files. The restore must clear
/// them, else the collection unlinks the files (1 s grace): the server is
/// given 3 s for it before it is returned.
fn serve_backup(out: &Path) -> Server {
    if !on_postgres() {
        return Server::start(out);
    }
    let stale: Vec<String> = common::blob_paths(out)
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(|id| format!("('\\x{id}', now() - interval '1 day')")))
        .collect();
    assert!(!stale.is_empty(), "the backup holds blob files");
    common::suite_sql(out, &format!("INSERT INTO dead_blobs (id, freed_at) VALUES {}", stale.join(", ")));
    let output = restore(out, out);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "restore failed: {stdout} {}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("Restored"), "{stdout}");
    let server = Server::start(out);
    std::thread::sleep(Duration::from_secs(3));
    server
}

/// `tessera restore --from BACKUP` into the database of the suite's
/// servers on `data`.
fn restore(backup: &Path, data: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["restore", "--from"])
        .arg(backup)
        .args(suite_meta_args(data))
        .env("TESSERA_LOG", "warn")
        .output()
        .expect("run tessera restore")
}

trait StderrText {
    fn stderr_text(&self) -> String;
}

impl StderrText for Output {
    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// The file whose presence says a backup is complete.
fn completed_by(out: &Path) -> PathBuf {
    match on_postgres() {
        true => out.join("metadata").join("manifest"),
        false => out.join("meta.redb"),
    }
}

/// How `tessera backup` says it took a backup of a running server.
fn taken_while_running() -> &'static str {
    if on_postgres() {
        "from the database at"
    } else {
        "by the server at"
    }
}

/// Every (key, size) of bucket `bkt` (fewer than 1,000 keys: one page).
fn list(client: &Client) -> Vec<(String, u64)> {
    let resp = client.send(Req::new("GET", "/bkt").query("list-type=2"));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.elements("IsTruncated"), ["false"]);
    let sizes = resp.elements("Size").into_iter().map(|s| s.parse().expect("size"));
    resp.elements("Key").into_iter().zip(sizes).collect()
}

/// Reads every listed object of `server` back and checks it against its ETag
/// and the bodies ever written under its key; returns the keys listed.
/// `part_files`: blob files of multipart uploads in progress.
fn check_every_object(
    server: &Server,
    written: &HashMap<String, HashSet<String>>,
    part_files: usize,
) -> HashSet<String> {
    let client = server.client();
    let listed = list(&client);
    for (key, size) in &listed {
        let resp = client.send(Req::new("GET", &format!("/bkt/{key}")));
        assert_eq!(resp.status, 200, "GET {key} from the backup (dangling reference?): {}", resp.text());
        assert_eq!(resp.body.len() as u64, *size, "{key}");
        let md5 = md5_hex(&resp.body);
        assert_eq!(resp.header("etag"), Some(format!("\"{md5}\"").as_str()), "{key}: body does not match its ETag");
        assert!(written[key].contains(&md5), "{key}: the backup holds bytes never written");
    }
    let file_backed = listed.iter().filter(|(_, size)| *size > INLINE_MAX as u64).count();
    assert_eq!(
        blob_files(&server.data),
        file_backed + part_files,
        "the backup holds exactly the blob files it references"
    );
    listed.into_iter().map(|(key, _)| key).collect()
}

/// Objects never touched by the load: small (inline) and large (files).
fn write_stable(client: &Client, written: &Written) -> Vec<String> {
    let mut keys = Vec::new();
    for i in 0..40 {
        let key = format!("stable/{i:03}");
        let size = if i % 2 == 0 { 1000 + i } else { 100 * 1024 + i };
        let body = pattern(size, 1000 + i as u64);
        written.lock().expect("lock").entry(key.clone()).or_default().insert(md5_hex(&body));
        put(client, &key, &body);
        keys.push(key);
    }
    keys
}

/// The keys the load works on, written from 4 threads (group commits).
fn write_churn(server: &Server, written: &Written) {
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let (client, written) = (server.client(), written.clone());
            std::thread::spawn(move || {
                for i in (t..CHURN_KEYS).step_by(4) {
                    let key = format!("churn/{i:04}");
                    let body = pattern(CHURN_SIZE, i as u64);
                    written.lock().expect("lock").entry(key.clone()).or_default().insert(md5_hex(&body));
                    put(&client, &key, &body);
                }
            })
        })
        .collect();
    writers.into_iter().for_each(|w| w.join().expect("writer"));
}

/// Overwrites and deletes churn keys until `stop`, from 3 threads.
fn start_load(server: &Server, written: &Written, stop: &Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<usize>> {
    (0..3)
        .map(|t| {
            let (client, written, stop) = (server.client(), written.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut ops = 0;
                while !stop.load(Ordering::Relaxed) {
                    let i = (ops * 3 + t) % CHURN_KEYS;
                    let key = format!("churn/{i:04}");
                    if ops % 2 == 0 {
                        let resp = client.send(Req::new("DELETE", &format!("/bkt/{key}")));
                        assert_eq!(resp.status, 204, "DELETE {key}: {}", resp.text());
                    } else {
                        let body = pattern(CHURN_SIZE, (ops * 7 + t) as u64 + 1_000_000);
                        written.lock().expect("lock").entry(key.clone()).or_default().insert(md5_hex(&body));
                        put(&client, &key, &body);
                    }
                    ops += 1;
                }
                ops
            })
        })
        .collect()
}

/// A running server with a bucket and the objects of [`write_stable`], and
/// where its backup goes.
struct Setup {
    dir: tempfile::TempDir,
    data: PathBuf,
    out: PathBuf,
    server: Server,
    client: Client,
    written: Written,
    stable: Vec<String>,
}

impl Setup {
    fn start() -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let (data, out) = (dir.path().join("data"), dir.path().join("backup"));
        let server = Server::start(&data);
        let client = server.client();
        assert_eq!(client.send(Req::new("PUT", "/bkt")).status, 200);
        let written: Written = Arc::default();
        let stable = write_stable(&client, &written);
        Setup { dir, data, out, server, client, written, stable }
    }
}

#[test]
fn backup_of_a_running_server_under_put_delete_load_is_complete_and_consistent() {
    let Setup { dir: _dir, data, out, server, client, written, stable } = Setup::start();
    write_churn(&server, &written);

    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(&server, &written, &stop);
    std::thread::sleep(Duration::from_millis(300));
    let report = backup_ok(&data, &out);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let ops: usize = load.into_iter().map(|h| h.join().expect("load thread")).sum();
    assert!(report.contains(taken_while_running()), "{report}");
    assert!(ops > 10, "the load ran ({ops} operations)");

    // Blobs freed during the backup were deferred, not leaked: they go once it ends.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let live = list(&client).iter().filter(|(_, size)| *size > INLINE_MAX as u64).count();
        if blob_files(&data) == live {
            break;
        }
        assert!(Instant::now() < deadline, "{} blob files for {live} objects after the backup", blob_files(&data));
        std::thread::sleep(Duration::from_millis(100));
    }
    server.terminate();

    let restored = serve_backup(&out);
    let keys = check_every_object(&restored, &written.lock().expect("lock"), 0);
    for key in &stable {
        assert!(keys.contains(key), "{key}, acknowledged before the backup, is missing from it");
    }
}

#[test]
fn backup_of_a_stopped_servers_folder_is_served_whole() {
    let Setup { dir, data, out, server, client, written, stable } = Setup::start();
    let resp = client.send(Req::new("POST", "/bkt/upload").query("uploads"));
    let upload_id = resp.elements("UploadId").pop().expect("upload id");
    let part = pattern(64 * 1024, 7);
    let query = format!("partNumber=1&uploadId={upload_id}");
    assert_eq!(client.send(Req::new("PUT", "/bkt/upload").query(&query).body(&part)).status, 200);
    // The server's own folder: the data folder, or over PostgreSQL its gateway's.
    let own = common::tmp_dir(&data).parent().expect("own folder").to_path_buf();
    assert!(own.join("server-info").is_file(), "a running server announces itself");
    assert!(server.terminate().success());
    assert!(!own.join("server-info").exists(), "a clean stop removes server-info");

    let report = backup_ok(&data, &out);
    let how = if on_postgres() { "from the database at" } else { "offline" };
    assert!(report.contains(how) && report.contains("40 objects"), "{report}");
    // A non-empty --out is refused, and left alone.
    let again = run_backup(&data, &out);
    assert!(!again.status.success(), "a second backup into the same folder must be refused");
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    // A referenced blob file gone (damage): the backup fails, naming it, and
    // leaves its folder empty for a retry.
    let damaged = dir.path().join("damaged");
    let blob = std::fs::read_dir(out.join("blobs"))
        .expect("blobs")
        .flatten()
        .find_map(|fan| std::fs::read_dir(fan.path()).expect("fan").flatten().next())
        .expect("a blob file");
    let fan = blob.path().parent().and_then(|p| p.file_name()).expect("fan").to_owned();
    std::fs::remove_file(data.join("blobs").join(fan).join(blob.file_name())).expect("remove");
    let failed = run_backup(&data, &damaged);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success() && stderr.contains(&*blob.file_name().to_string_lossy()), "{stderr}");
    assert_eq!(std::fs::read_dir(&damaged).map(|d| d.count()).unwrap_or(0), 0, "a failed backup is emptied");

    let restored = serve_backup(&out);
    if on_postgres() {
        let again = restore(&out, &out);
        assert!(!again.status.success() && again.stderr_text().contains("is running"), "{}", again.stderr_text());
        let incomplete = restore(&damaged, &dir.path().join("fresh"));
        assert!(!incomplete.status.success() && incomplete.stderr_text().contains("not a complete backup"));
    }
    let keys = check_every_object(&restored, &written.lock().expect("lock"), 1);
    assert_eq!(keys, stable.into_iter().collect::<HashSet<_>>());
    let parts = restored.client().send(Req::new("GET", "/bkt/upload").query(&format!("uploadId={upload_id}")));
    assert_eq!(parts.status, 200, "{}", parts.text());
    assert_eq!(parts.elements("ETag"), [format!("&quot;{}&quot;", md5_hex(&part))], "{}", parts.text());
}

#[test]
fn admin_endpoint_refuses_unsigned_and_wrongly_signed_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, out) = (dir.path().join("data"), dir.path().join("backup"));
    let server = Server::start(&data);
    let query = format!("out={}", out.display().to_string().replace('/', "%2F"));
    let target = format!("/_tessera/admin/backup?{query}");

    let unsigned = server.client().send_raw("POST", &target, &[], b"");
    let wrong_secret = Client { secret_key: "wrong/secret".into(), ..server.client() };
    let bad_signature = wrong_secret.send(Req::new("POST", "/_tessera/admin/backup").query(&query));
    let unknown_key = Client { access_key: "SOMEONEELSE000000000".into(), ..server.client() };
    let unknown = unknown_key.send(Req::new("POST", "/_tessera/admin/backup").query(&query));
    for (resp, code) in
        [(&unsigned, "AccessDenied"), (&bad_signature, "SignatureDoesNotMatch"), (&unknown, "InvalidAccessKeyId")]
    {
        assert_eq!(resp.status, 403, "{}", resp.text());
        assert_eq!(resp.header("content-type"), Some("application/xml"));
        assert_eq!(resp.error_code().as_deref(), Some(code), "{}", resp.text());
    }
    assert!(!out.exists(), "a refused request wrote nothing");

    let root = server.client().send(Req::new("POST", "/_tessera/admin/backup").query(&query));
    assert_eq!(root.status, 200, "{}", root.text());
    assert!(completed_by(&out).is_file());
}
