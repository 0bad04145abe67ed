//! Issue 9, item 2: a full disk wedged the database until restart. Once a
//! group commit failed with ENOSPC, redb answered every later write (deletes
//! included) with "Previous I/O error occurred. Please close and re-open the
//! database", as HTTP 500, so space could not even be freed through the API.
//!
//! The real binary runs on a small tmpfs this test mounts itself (root only):
//! writes that do not fit get 507 `StorageFull` (large bodies in `tmp/`, a
//! multipart part, small bodies in the metadata commit), DeleteObjects, a
//! DELETE and AbortMultipartUpload then free space, and writes work again,
//! all without a restart; every acknowledged object reads back byte-exact and
//! `tmp/` holds no leftovers.
//!
//! In the PostgreSQL run the server is a gateway whose shared blob folder is
//! the small filesystem: small bodies are rows of the database, so they are
//! still accepted on a full folder, and freed files go after the suite's
//! 1 s `--unlink-grace`, so writes work again a moment after the deletes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{on_postgres, pattern, skip_unless_redb, Client, Req, Response, Server};

const FS_MIB: u32 = 24;
const BIG: usize = 1024 * 1024;
/// Below the 32 KiB inline limit: stored in the metadata database.
const SMALL: usize = 30 * 1024;

/// A tmpfs mounted for this test, unmounted on drop (even when the test fails).
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(name: &str, size_mib: u32) -> Tmpfs {
        let dir = std::env::temp_dir().join(format!("tessera-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount -t tmpfs failed");
        Tmpfs { dir }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(&self.dir).status().is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn code(resp: &Response) -> (u16, String) {
    (resp.status, resp.error_code().unwrap_or_default())
}

fn assert_storage_full(resp: &Response, what: &str) {
    assert_eq!(code(resp), (507, "StorageFull".to_string()), "{what}: {}", resp.text());
    assert!(resp.text().contains("storage is full"), "{what}: the message says why: {}", resp.text());
}

/// PUTs `size`-byte objects `prefix-N` until one is refused; returns the refusal.
fn fill(c: &Client, prefix: &str, size: usize, max: usize, stored: &mut BTreeMap<String, Vec<u8>>) -> Response {
    for i in 0..max {
        let key = format!("/full/{prefix}-{i}");
        let body = pattern(size, (stored.len() + 1) as u64 * 7919 + i as u64);
        let resp = c.send(Req::new("PUT", &key).body(&body));
        if resp.status != 200 {
            return resp;
        }
        stored.insert(key, body);
    }
    panic!("{max} PUTs of {size} bytes all fit in a {FS_MIB} MiB filesystem");
}

/// DeleteObjects of `/full/...` paths; every key must be reported deleted.
fn delete_objects(c: &Client, paths: &[String]) {
    let xml: String = paths.iter().map(|k| format!("<Object><Key>{}</Key></Object>", &k[6..])).collect();
    let xml = format!("<Delete>{xml}</Delete>");
    let deleted = c.send(Req::new("POST", "/full").query("delete").body(xml.as_bytes()));
    assert_eq!(deleted.status, 200, "DeleteObjects on a full disk: {}", deleted.text());
    assert_eq!(deleted.elements("Deleted").len(), paths.len(), "{}", deleted.text());
    assert!(deleted.elements("Error").is_empty(), "{}", deleted.text());
}

fn assert_all_read_back(c: &Client, stored: &BTreeMap<String, Vec<u8>>) {
    for (key, body) in stored {
        let resp = c.send(Req::new("GET", key));
        assert_eq!(resp.status, 200, "GET {key}: {}", resp.text());
        assert!(resp.body == *body, "{key} reads back byte-exact");
    }
}

fn tmp_entries(data: &Path) -> Vec<String> {
    let entries = std::fs::read_dir(common::tmp_dir(data)).expect("tmp/");
    entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()
}

#[test]
fn full_disk_refuses_writes_with_507_and_deletes_free_space_without_restart() {
    if !is_root() {
        eprintln!("\n*** SKIPPED full_disk_refuses_writes...: needs root to mount a tmpfs ***\n");
        return;
    }
    let fs = Tmpfs::mount("disk-full", FS_MIB);
    let server = Server::start(&fs.dir);
    let c = server.client();
    let mut stored = BTreeMap::new();
    assert_eq!(c.send(Req::new("PUT", "/full")).status, 200);
    let upload = c.send(Req::new("POST", "/full/mpu").query("uploads"));
    let upload_id = upload.elements("UploadId").pop().expect("an upload id");

    // Large bodies until one does not fit (ENOSPC while writing into tmp/ or at its fsync).
    let refused = fill(&c, "big", BIG, 4 * FS_MIB as usize, &mut stored);
    assert_storage_full(&refused, "a large PUT on a full disk");
    assert!(stored.len() >= 4, "large objects were stored before the disk filled");
    let part_query = format!("partNumber=1&uploadId={upload_id}");
    let part = c.send(Req::new("PUT", "/full/mpu").query(&part_query).body(&pattern(BIG, 99)));
    assert_storage_full(&part, "UploadPart on a full disk");

    if on_postgres() {
        // A gateway that joins the full folder starts in full mode (no room
        // for its reserve): large bodies are refused before they start;
        // small ones are rows of the database, elsewhere, and accepted.
        let args = [
            common::suite_meta_args(&fs.dir),
            ["--gateway-id", "joined", "--console", "off"].map(String::from).to_vec(),
        ];
        let args: Vec<&str> = args.iter().flatten().map(String::as_str).collect();
        let joined = Server::start_with(&fs.dir, &args);
        let j = joined.client();
        for i in 0..20 {
            let (key, body) = (format!("/full/small-{i}"), pattern(SMALL, 500 + i));
            let resp = j.send(Req::new("PUT", &key).body(&body));
            assert_eq!(resp.status, 200, "a small PUT on a full blob folder over PostgreSQL: {}", resp.text());
            stored.insert(key, body);
        }
        assert_storage_full(&j.send(Req::new("PUT", "/full/big-x").body(&pattern(BIG, 3))), "a large PUT in full mode");
    } else {
        // Small bodies live in the metadata database: ENOSPC in its commit.
        let refused = fill(&c, "small", SMALL, 4000, &mut stored);
        assert_storage_full(&refused, "a small PUT on a full disk");
        let again = c.send(Req::new("PUT", "/full/small-again").body(&pattern(SMALL, 5)));
        assert_storage_full(&again, "a small PUT after the failed commit");
    }

    // Reads keep working.
    let (first, body) = stored.iter().next().expect("an object");
    assert!(c.send(Req::new("GET", first)).body == *body, "GET on a full disk");

    // Free space through the API, without a restart.
    let big_keys: Vec<String> = stored.keys().filter(|k| k.contains("/big-")).cloned().collect();
    let doomed: Vec<String> = big_keys.iter().take(big_keys.len() / 2).cloned().collect();
    delete_objects(&c, &doomed);
    let single = big_keys.last().expect("a big key").clone();
    assert_eq!(c.send(Req::new("DELETE", &single)).status, 204, "DELETE on a full disk");
    let abort = c.send(Req::new("DELETE", "/full/mpu").query(&format!("uploadId={upload_id}")));
    assert_eq!(abort.status, 204, "AbortMultipartUpload on a full disk: {}", abort.text());
    for key in doomed.iter().chain([&single]) {
        stored.remove(key);
        assert_eq!(code(&c.send(Req::new("GET", key))), (404, "NoSuchKey".to_string()));
    }

    // Writes work again, large and small (over PostgreSQL once the freed
    // files are unlinked, after the grace period).
    let patience = if on_postgres() { Duration::from_secs(20) } else { Duration::ZERO };
    for (key, body) in [("/full/big-after", pattern(BIG, 11)), ("/full/small-after", pattern(SMALL, 12))] {
        let started = Instant::now();
        let resp = loop {
            let resp = c.send(Req::new("PUT", key).body(&body));
            if resp.status == 200 || started.elapsed() >= patience {
                break resp;
            }
            std::thread::sleep(Duration::from_millis(250));
        };
        assert_eq!(resp.status, 200, "PUT {key} after freeing space: {}", resp.text());
        stored.insert(key.to_string(), body);
    }

    assert_all_read_back(&c, &stored);
    assert_eq!(tmp_entries(&fs.dir), Vec::<String>::new(), "no leftovers in tmp/");
    drop(server);
}

/// Small objects live inside the database file, which redb only trims at its
/// end: deleting them must still make room for new writes (the database is
/// compacted), not leave the store refusing every write forever.
#[test]
fn deleting_small_objects_on_a_full_disk_makes_room_for_writes() {
    if skip_unless_redb("small bodies fill meta.redb, in the data folder") {
        return;
    }
    if !is_root() {
        eprintln!("\n*** SKIPPED deleting_small_objects...: needs root to mount a tmpfs ***\n");
        return;
    }
    let fs = Tmpfs::mount("disk-full-inline", 16);
    let server = Server::start(&fs.dir);
    let c = server.client();
    let mut stored = BTreeMap::new();
    assert_eq!(c.send(Req::new("PUT", "/full")).status, 200);

    let refused = fill(&c, "small", SMALL, 4000, &mut stored);
    assert_storage_full(&refused, "a small PUT on a full disk");
    let doomed: Vec<String> = stored.keys().step_by(2).cloned().collect();
    delete_objects(&c, &doomed);
    for key in &doomed {
        stored.remove(key);
    }

    let body = pattern(SMALL, 77);
    let resp = c.send(Req::new("PUT", "/full/after").body(&body));
    assert_eq!(resp.status, 200, "PUT after deleting small objects: {}", resp.text());
    stored.insert("/full/after".to_string(), body);
    assert_all_read_back(&c, &stored);
    assert_eq!(tmp_entries(&fs.dir), Vec::<String>::new(), "no leftovers in tmp/");
    drop(server);
}
