//! The unique-file table (issue 13, first part): a body stored as a file
//! whose SHA-256 is known (declared by the client, as this test client's
//! signed `x-amz-content-sha256` does, or hashed because it is at most
//! 64 KiB) and equals the content of a live blob is stored once, across
//! keys, buckets, users and parts; every copy reads back byte-exact; freeing
//! the last reference frees the bytes; `tessera stats` reports it, offline
//! and from a running server. (Bodies of at most 32 KiB are packed into the
//! database and not deduplicated: docs/architecture.md.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

mod common;

use common::{
    assert_reads, blob_files, blob_inodes, field, md5_etag, pattern, put_unsigned, stats, user_client,
    wait_for_blob_files, Client, Req, Server,
};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

fn put(c: &Client, path: &str, body: &[u8]) -> String {
    let resp = c.send(Req::new("PUT", path).body(body));
    assert_eq!(resp.status, 200, "PUT {path}: {}", resp.text());
    resp.header("etag").expect("etag").to_string()
}

#[test]
fn identical_bodies_are_stored_once_across_keys_buckets_and_users() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let root = server.client();
    let alice = user_client(&server, &data, "alice");
    for (c, bucket) in [(&root, "/aaa"), (&root, "/bbb"), (&alice, "/ccc")] {
        assert_eq!(c.send(Req::new("PUT", bucket)).status, 200);
    }
    let body = pattern(200 * KIB, 1);
    for (c, path) in [(&root, "/aaa/k1"), (&root, "/aaa/k2"), (&root, "/bbb/k3"), (&alice, "/ccc/k4")] {
        assert_eq!(put(c, path, &body), md5_etag(&body), "{path}: the ETag of the bytes");
    }
    wait_for_blob_files(&data, 1);
    let s = stats(&data);
    assert_eq!((field(&s, "objects"), field(&s, "distinct_blobs")), (4, 1), "{s}");
    assert_eq!((field(&s, "logical_bytes"), field(&s, "stored_bytes")), (4 * 200 * 1024, 200 * 1024), "{s}");
    assert_eq!(s["dedup_ratio"].as_f64(), Some(4.0), "{s}");

    // Each copy is a whole object of its own: deleting some leaves the rest.
    for path in ["/aaa/k1", "/aaa/k2", "/bbb/k3"] {
        assert_eq!(root.send(Req::new("DELETE", path)).status, 204);
    }
    assert_reads(&alice, "/ccc/k4", &body);
    assert_eq!(blob_files(&data), 1, "the bytes stay while an object holds them");
    // Another body is another blob; the last delete frees the shared one.
    put(&alice, "/ccc/other", &pattern(200 * KIB, 2));
    assert_eq!(alice.send(Req::new("DELETE", "/ccc/k4")).status, 204);
    wait_for_blob_files(&data, 1);
    assert_reads(&alice, "/ccc/other", &pattern(200 * KIB, 2));
    server.terminate();

    // Offline, the same figures come from the folder.
    let s = stats(&data);
    assert_eq!((field(&s, "objects"), field(&s, "stored_bytes")), (1, 200 * 1024), "{s}");
}

#[test]
fn small_files_are_shared_without_a_declared_hash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let c = server.client();
    assert_eq!(c.send(Req::new("PUT", "/small")).status, 200);
    let body = pattern(48 * KIB, 3);
    // UNSIGNED-PAYLOAD: the server hashes small bodies itself.
    for i in 0..20 {
        let path = format!("/small/k{i}");
        let mut stream = c.connect();
        let req = Req::new("PUT", &path).body(&body);
        let head = c.signed_head(&req, std::time::SystemTime::now(), body.len(), Some("UNSIGNED-PAYLOAD"));
        std::io::Write::write_all(&mut stream, head.as_bytes()).expect("head");
        std::io::Write::write_all(&mut stream, &body).expect("body");
        let resp = common::read_response(&mut stream, false);
        assert_eq!(resp.status, 200, "{path}: {}", resp.text());
    }
    put(&c, "/small/different", &pattern(48 * KIB, 4));
    wait_for_blob_files(dir.path(), 2);
    server.terminate();
    let s = stats(dir.path());
    assert_eq!((field(&s, "objects"), field(&s, "distinct_blobs")), (21, 2), "{s}");
    assert_eq!(field(&s, "stored_bytes"), 2 * 48 * 1024, "{s}");
    let server = Server::start(dir.path());
    let c = server.client();
    for i in [0, 7, 19] {
        assert_reads(&c, &format!("/small/k{i}"), &body);
    }
}

fn upload_file(c: &Client, path: &str, parts: &[&[u8]]) -> String {
    let resp = c.send(Req::new("POST", path).query("uploads"));
    assert_eq!(resp.status, 200, "{}", resp.text());
    let id = resp.elements("UploadId").remove(0);
    let mut xml = String::from("<CompleteMultipartUpload>");
    for (n, part) in parts.iter().enumerate() {
        let q = format!("partNumber={}&uploadId={id}", n + 1);
        let resp = c.send(Req::new("PUT", path).query(&q).body(part));
        assert_eq!(resp.status, 200, "part {}: {}", n + 1, resp.text());
        let etag = resp.header("etag").expect("etag");
        xml.push_str(&format!("<Part><PartNumber>{}</PartNumber><ETag>{etag}</ETag></Part>", n + 1));
    }
    xml.push_str("</CompleteMultipartUpload>");
    let resp = c.send(Req::new("POST", path).query(&format!("uploadId={id}")).body(xml.as_bytes()));
    assert_eq!(resp.status, 200, "complete: {}", resp.text());
    resp.elements("ETag").remove(0)
}

#[test]
fn a_file_uploaded_again_in_parts_shares_every_part() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let c = server.client();
    assert_eq!(c.send(Req::new("PUT", "/mpu")).status, 200);
    let (a, b, tail) = (pattern(5 * MIB, 5), pattern(5 * MIB, 6), pattern(100 * KIB, 7));
    let first = upload_file(&c, "/mpu/one", &[&a, &b, &tail]);
    let files = blob_files(dir.path());
    assert_eq!(files, 3, "three distinct parts");
    let second = upload_file(&c, "/mpu/two", &[&a, &b, &tail]);
    assert_eq!(first, second, "the same parts give the same multipart ETag");
    wait_for_blob_files(dir.path(), 3);
    // A part repeated within one upload is held once too.
    upload_file(&c, "/mpu/three", &[&b, &b, &tail]);
    wait_for_blob_files(dir.path(), 3);
    let whole: Vec<u8> = [&a[..], &b[..], &tail[..]].concat();
    assert_reads(&c, "/mpu/one", &whole);
    assert_reads(&c, "/mpu/two", &whole);
    assert_reads(&c, "/mpu/three", &[&b[..], &b[..], &tail[..]].concat());
    for key in ["/mpu/one", "/mpu/two", "/mpu/three"] {
        assert_eq!(c.send(Req::new("DELETE", key)).status, 204);
    }
    wait_for_blob_files(dir.path(), 0);
}

/// A blob freed by a committed delete is never shared again: the next write
/// of the same bytes stores them anew, and survives a restart.
#[test]
fn freed_content_is_stored_again_not_resurrected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let c = server.client();
    assert_eq!(c.send(Req::new("PUT", "/fff")).status, 200);
    let body = pattern(300 * KIB, 8);
    for round in 0..20 {
        let key = format!("/fff/k{round}");
        put(&c, &key, &body);
        assert_eq!(c.send(Req::new("DELETE", &key)).status, 204);
    }
    put(&c, "/fff/last", &body);
    wait_for_blob_files(dir.path(), 1);
    server.terminate();
    let server = Server::start(dir.path());
    assert_reads(&server.client(), "/fff/last", &body);
}

/// Writers and deleters of the same content race: every acknowledged object
/// reads back whole, and once all are deleted no byte is left.
#[test]
fn concurrent_writes_and_deletes_of_one_content_lose_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let c = server.client();
    assert_eq!(c.send(Req::new("PUT", "/race")).status, 200);
    let body = pattern(150 * KIB, 9);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (c, body) = (server.client(), body.clone());
            std::thread::spawn(move || {
                for i in 0..40 {
                    let key = format!("/race/t{t}-{}", i % 3);
                    put(&c, &key, &body);
                    if i % 2 == 1 {
                        assert_eq!(c.send(Req::new("DELETE", &key)).status, 204);
                    } else {
                        assert_reads(&c, &key, &body);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let resp = c.send(Req::new("GET", "/race").query("list-type=2"));
    for key in resp.elements("Key") {
        assert_reads(&c, &format!("/race/{key}"), &body);
        assert_eq!(c.send(Req::new("DELETE", &format!("/race/{key}"))).status, 204);
    }
    wait_for_blob_files(dir.path(), 0);
}

/// Waits until `tessera stats` (through the running server) reports every
/// blob hashed and `want` stored bytes.
fn wait_for_hashing(data: &std::path::Path, want: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let s = stats(data);
        let (stored, waiting) = (field(&s, "stored_bytes"), field(&s, "unindexed_blobs"));
        if (stored, waiting) == (want, 0) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{stored} bytes stored, {waiting} blobs not hashed: want {want}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Large bodies sent without a SHA-256 are stored as they come, then hashed
/// once the server is idle: copies become hard links to one file (stored
/// once), the content is indexed (a later upload shares it, instantly if
/// it waits for 100 Continue), and deleting the copies in any order keeps
/// the rest whole and finally frees every byte.
#[test]
fn unsigned_bodies_are_hashed_when_idle_and_stored_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let server = Server::start_with(data, &["--hash-after-idle", "200ms"]);
    let c = server.client();
    assert_eq!(c.send(Req::new("PUT", "/bgh")).status, 200);
    let body = pattern(3 * MIB, 20);
    for key in ["/bgh/a", "/bgh/b", "/bgh/c"] {
        put_unsigned(&c, key, &body);
    }
    put_unsigned(&c, "/bgh/other", &pattern(MIB, 21));
    wait_for_hashing(data, 4 * MIB as u64);
    assert_eq!((blob_files(data), blob_inodes(data)), (4, 2), "three names, one file, and the other body");
    for key in ["/bgh/a", "/bgh/b", "/bgh/c"] {
        assert_reads(&c, key, &body);
    }
    let (resp, sent) = c.send_expecting_continue(Req::new("PUT", "/bgh/d").body(&body), None);
    assert_eq!((resp.status, sent, resp.header("x-tessera-instant-upload")), (200, false, Some("true")));
    // Deleting in any order: the others keep their bytes, re-indexed.
    for key in ["/bgh/b", "/bgh/a", "/bgh/d"] {
        assert_eq!(c.send(Req::new("DELETE", key)).status, 204);
        assert_reads(&c, "/bgh/c", &body);
        wait_for_hashing(data, 4 * MIB as u64);
    }
    assert_eq!(blob_inodes(data), 2);
    let (resp, sent) = c.send_expecting_continue(Req::new("PUT", "/bgh/e").body(&body), None);
    assert_eq!((resp.status, sent), (200, false), "still indexed after its first holders went");
    server.terminate();
    let server = Server::start(data);
    let c = server.client();
    let other = pattern(MIB, 21);
    for (key, bytes) in [("/bgh/c", &body), ("/bgh/e", &body), ("/bgh/other", &other)] {
        assert_reads(&c, key, bytes);
        assert_eq!(c.send(Req::new("DELETE", key)).status, 204);
    }
    wait_for_blob_files(data, 0);
}

/// A copy damaged on disk is never hashed into the index nor merged: the
/// intact copy keeps its own file and reads back byte-exact.
#[test]
fn a_damaged_copy_is_not_merged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let body = pattern(2 * MIB, 22);
    let server = Server::start_with(data, &["--hash-after-idle", "0s"]);
    let c = server.client();
    assert_eq!(c.send(Req::new("PUT", "/dmg")).status, 200);
    put_unsigned(&c, "/dmg/bad", &body);
    let bad_file = newest_blob_file(data);
    put_unsigned(&c, "/dmg/good", &body);
    server.terminate();
    let mut damaged = std::fs::read(&bad_file).expect("read");
    damaged[MIB] ^= 0x40;
    std::fs::write(&bad_file, &damaged).expect("damage");
    let server = Server::start_with(data, &["--hash-after-idle", "100ms"]);
    let c = server.client();
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!((blob_files(data), blob_inodes(data)), (2, 2), "nothing merged");
    assert_reads(&c, "/dmg/good", &body);
    assert_eq!(std::fs::read(&bad_file).expect("read"), damaged, "the damaged file is left for scrub to report");
}

fn newest_blob_file(data: &std::path::Path) -> std::path::PathBuf {
    let mut files: Vec<(std::time::SystemTime, std::path::PathBuf)> = Vec::new();
    for dir in std::fs::read_dir(data.join("blobs")).expect("blobs").flatten() {
        for file in std::fs::read_dir(dir.path()).expect("dir").flatten() {
            files.push((file.metadata().expect("meta").modified().expect("mtime"), file.path()));
        }
    }
    files.sort();
    files.pop().expect("a blob file").1
}
