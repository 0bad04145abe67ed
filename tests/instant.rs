//! Instant upload (秒传, issue 13): a PutObject or UploadPart that waits
//! for `100 Continue` and declares its content's SHA-256 is answered at once,
//! its body never sent, when the requester already holds that content; the
//! answer is the one the bytes would give. Anyone else sends the body (and
//! the content is still stored once). Races with the last delete and
//! SIGKILLs lose nothing and leave nothing behind.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use common::{
    assert_reads, blob_files, field, md5_etag, pattern, stats, user_client, wait_for_blob_files, Client, Req, Response,
    Server,
};
use md5::{Digest, Md5};
use sha2::Sha256;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
const INSTANT: &str = "x-tessera-instant-upload";

/// A PUT that waits for `100 Continue`; the payload hash is the body's
/// SHA-256 unless given.
fn put_waiting(c: &Client, req: Req) -> (Response, bool) {
    c.send_expecting_continue(req, None)
}

/// Asserts the upload was answered at once, as the bytes would have been.
fn assert_instant(path: &str, (resp, body_sent): &(Response, bool), body: &[u8]) {
    assert_eq!(resp.status, 200, "{path}: {}", resp.text());
    assert!(!body_sent, "{path}: the server asked for the body");
    assert_eq!(resp.header(INSTANT), Some("true"), "{path}: says it was instant");
    assert_eq!(resp.header("connection"), Some("close"), "{path}: the connection is closed cleanly");
    assert_eq!(resp.header("etag"), Some(md5_etag(body).as_str()), "{path}: the ETag of the bytes");
}

/// Asserts the server read the body (`100 Continue`) and stored it.
fn assert_received(path: &str, (resp, body_sent): &(Response, bool)) {
    assert_eq!(resp.status, 200, "{path}: {}", resp.text());
    assert!(body_sent, "{path}: answered without the body");
    assert_eq!(resp.header(INSTANT), None, "{path}");
}

/// `tessera_received_bytes_total` of PutObject: the body bytes the server read.
fn received_by_put_object(server: &Server) -> f64 {
    let page = Client::new(&server.addr).send_raw("GET", "/_tessera/metrics", &[], b"").text();
    let series = r#"tessera_received_bytes_total{op="PutObject"} "#;
    let line = page.lines().find(|l| l.starts_with(series)).unwrap_or_else(|| panic!("{series} in:\n{page}"));
    line[series.len()..].trim().parse().unwrap()
}

fn stored_and_logical(data: &Path) -> (u64, u64) {
    let s = stats(data);
    (field(&s, "stored_bytes"), field(&s, "logical_bytes"))
}

#[test]
fn a_second_upload_of_held_content_is_answered_without_its_body() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let alice = user_client(&server, dir.path(), "alice");
    assert_eq!(alice.send(Req::new("PUT", "/photos")).status, 200);
    let body = pattern(MIB, 11);
    let first = put_waiting(&alice, Req::new("PUT", "/photos/one").body(&body));
    assert_received("one", &first);
    let second = put_waiting(&alice, Req::new("PUT", "/photos/two").body(&body));
    assert_instant("two", &second, &body);
    assert_eq!(received_by_put_object(&server), MIB as f64, "only the first body was received");
    let crc = "x-amz-checksum-crc64nvme";
    assert_eq!(second.0.header(crc), first.0.header(crc), "the checksum of the bytes");
    assert!(second.0.header(crc).is_some());
    assert_reads(&alice, "/photos/two", &body);
    assert_eq!(stored_and_logical(dir.path()), (MIB as u64, 2 * MIB as u64), "stored once");

    // Declared by x-amz-checksum-sha256 (payload unsigned): the same.
    let sha = BASE64.encode(Sha256::digest(&body));
    let req = Req::new("PUT", "/photos/three").header("x-amz-checksum-sha256", sha.clone()).body(&body);
    let third = alice.send_expecting_continue(req, Some("UNSIGNED-PAYLOAD"));
    assert_instant("three", &third, &body);
    assert_eq!(third.0.header("x-amz-checksum-sha256"), Some(sha.as_str()));
    let attrs =
        alice.send(Req::new("GET", "/photos/three").query("attributes").header("x-amz-object-attributes", "Checksum"));
    assert_eq!(attrs.elements("ChecksumSHA256"), [sha], "{}", attrs.text());

    // A versioned bucket: the answer names the new version.
    let versioning = b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
    assert_eq!(alice.send(Req::new("PUT", "/photos").query("versioning").body(versioning)).status, 200);
    let fourth = put_waiting(&alice, Req::new("PUT", "/photos/one").body(&body));
    assert_instant("one again", &fourth, &body);
    let version = fourth.0.header("x-amz-version-id").expect("a version id").to_string();
    let resp = alice.send(Req::new("GET", "/photos/one").query(&format!("versionId={version}")));
    assert!(resp.status == 200 && resp.body == body, "the version reads back: {}", resp.status);

    // A client that does not wait sends its body; it is still stored once.
    let resp = alice.send(Req::new("PUT", "/photos/five").body(&body));
    assert_eq!((resp.status, resp.header(INSTANT)), (200, None));
    assert_eq!(stored_and_logical(dir.path()).0, MIB as u64);
    wait_for_blob_files(dir.path(), 1);
}

#[test]
fn promises_the_held_content_does_not_keep_are_not_instant() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let c = server.client();
    assert_eq!(c.send(Req::new("PUT", "/docs")).status, 200);
    let body = pattern(300 * KIB, 12);
    assert_received("held", &put_waiting(&c, Req::new("PUT", "/docs/held").body(&body)));

    let wrong_md5 = BASE64.encode(Md5::digest(b"something else"));
    let (resp, sent) = put_waiting(&c, Req::new("PUT", "/docs/md5").header("content-md5", wrong_md5).body(&body));
    assert!(sent, "a Content-MD5 that is not the content's: the body is read");
    assert_eq!(resp.error_code().as_deref(), Some("BadDigest"));

    // Another checksum algorithm than the stored one: read, checked, shared.
    let sha1 = BASE64.encode(sha1::Sha1::digest(&body));
    let sent = put_waiting(&c, Req::new("PUT", "/docs/sha1").header("x-amz-checksum-sha1", sha1).body(&body));
    assert_received("sha1", &sent);
    let wrong_sha1 = BASE64.encode(sha1::Sha1::digest(b"x"));
    let (resp, sent) =
        put_waiting(&c, Req::new("PUT", "/docs/bad").header("x-amz-checksum-sha1", wrong_sha1).body(&body));
    assert!(sent && resp.status == 400, "{}", resp.text());

    // The hash of held content with another size names other content.
    let hash = hex::encode(Sha256::digest(&body));
    let short = &body[..body.len() - 1];
    let (resp, sent) = c.send_expecting_continue(Req::new("PUT", "/docs/short").body(short), Some(&hash));
    assert!(sent, "another size: the body is read");
    assert_eq!(resp.error_code().as_deref(), Some("XAmzContentSHA256Mismatch"));
    assert_eq!(c.send(Req::new("HEAD", "/docs/short")).status, 404);
    assert_eq!(stored_and_logical(dir.path()), (300 * KIB as u64, 2 * 300 * KIB as u64));
}

#[test]
fn only_a_user_who_holds_the_content_gets_it_instantly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let server = Server::start(data);
    let (root, alice, bob, carol) = (
        server.client(),
        user_client(&server, data, "alice"),
        user_client(&server, data, "bob"),
        user_client(&server, data, "carol"),
    );
    for (c, bucket) in [(&alice, "/alice-b"), (&bob, "/bob-b"), (&carol, "/carol-b")] {
        assert_eq!(c.send(Req::new("PUT", bucket)).status, 200);
    }
    let body = pattern(2 * MIB, 13);
    assert_received("alice", &put_waiting(&alice, Req::new("PUT", "/alice-b/x").body(&body)));
    // Knowing the hash is not holding the bytes: bob sends them.
    assert_received("bob", &put_waiting(&bob, Req::new("PUT", "/bob-b/x").body(&body)));
    assert_eq!(stored_and_logical(data), (2 * MIB as u64, 4 * MIB as u64), "bob's copy is stored once");
    // Now bob holds them.
    assert_instant("bob again", &put_waiting(&bob, Req::new("PUT", "/bob-b/y").body(&body)), &body);
    assert_received("carol", &put_waiting(&carol, Req::new("PUT", "/carol-b/x").body(&body)));

    // Bob deletes his copies: he no longer holds the content, carol does.
    for key in ["/bob-b/x", "/bob-b/y"] {
        assert_eq!(bob.send(Req::new("DELETE", key)).status, 204);
    }
    assert_received("bob after deleting", &put_waiting(&bob, Req::new("PUT", "/bob-b/z").body(&body)));
    // Root may read every object: it holds everything.
    assert_instant("root", &put_waiting(&root, Req::new("PUT", "/alice-b/by-root").body(&body)), &body);
    assert_reads(&alice, "/alice-b/x", &body);
    assert_eq!(stored_and_logical(data).0, 2 * MIB as u64);
    for (c, key) in [(&alice, "/alice-b/x"), (&root, "/alice-b/by-root"), (&bob, "/bob-b/z"), (&carol, "/carol-b/x")] {
        assert_eq!(c.send(Req::new("DELETE", key)).status, 204);
    }
    wait_for_blob_files(data, 0);
    // Freed content is no longer held by anyone.
    assert_received("alice after all", &put_waiting(&alice, Req::new("PUT", "/alice-b/x").body(&body)));
}

/// Uploads `parts` as one multipart upload, each part waiting for `100
/// Continue`; returns whether each part's body was sent, and the
/// multipart ETag.
fn upload_waiting(c: &Client, path: &str, parts: &[&[u8]], create: Req) -> (Vec<bool>, String) {
    let resp = c.send(create);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let id = resp.elements("UploadId").remove(0);
    let mut sent = Vec::new();
    let mut xml = String::from("<CompleteMultipartUpload>");
    for (n, part) in parts.iter().enumerate() {
        let q = format!("partNumber={}&uploadId={id}", n + 1);
        let (resp, body_sent) = put_waiting(c, Req::new("PUT", path).query(&q).body(part));
        assert_eq!(resp.status, 200, "part {}: {}", n + 1, resp.text());
        assert_eq!(resp.header("etag"), Some(md5_etag(part).as_str()), "part {}", n + 1);
        assert_eq!(resp.header(INSTANT).is_some(), !body_sent, "part {}", n + 1);
        sent.push(body_sent);
        xml.push_str(&format!("<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>", n + 1, md5_etag(part)));
    }
    xml.push_str("</CompleteMultipartUpload>");
    let resp = c.send(Req::new("POST", path).query(&format!("uploadId={id}")).body(xml.as_bytes()));
    assert_eq!(resp.status, 200, "complete: {}", resp.text());
    (sent, resp.elements("ETag").remove(0))
}

#[test]
fn parts_already_held_are_not_sent_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let alice = user_client(&server, dir.path(), "alice");
    assert_eq!(alice.send(Req::new("PUT", "/big")).status, 200);
    let (a, b, tail) = (pattern(5 * MIB, 14), pattern(5 * MIB, 15), pattern(100 * KIB, 16));
    let parts: [&[u8]; 3] = [&a, &b, &tail];
    let create = |path| Req::new("POST", path).query("uploads");
    let (sent, first) = upload_waiting(&alice, "/big/one", &parts, create("/big/one"));
    assert_eq!(sent, [true, true, true]);
    let (sent, second) = upload_waiting(&alice, "/big/two", &parts, create("/big/two"));
    assert_eq!(sent, [false, false, false], "every part was held");
    assert_eq!(first, second, "the same multipart ETag");
    let whole = [&a[..], &b[..], &tail[..]].concat();
    assert_reads(&alice, "/big/two", &whole);

    // Resuming with another tool: only the part the server lacks is sent;
    // an upload with the SHA-256 algorithm answers with that checksum.
    let other = pattern(5 * MIB, 17);
    let create_sha = create("/big/three").header("x-amz-checksum-algorithm", "SHA256");
    let (sent, _) = upload_waiting(&alice, "/big/three", &[&a, &other, &tail], create_sha);
    assert_eq!(sent, [false, true, false]);
    assert_reads(&alice, "/big/three", &[&a[..], &other[..], &tail[..]].concat());
    let (stored, logical) = stored_and_logical(dir.path());
    assert_eq!((stored, logical), ((15 * MIB + 100 * KIB) as u64, 3 * whole.len() as u64));
    for key in ["/big/one", "/big/two", "/big/three"] {
        assert_eq!(alice.send(Req::new("DELETE", key)).status, 204);
    }
    wait_for_blob_files(dir.path(), 0);
}

/// Two writers upload one content under two keys while a third deletes
/// them: an instant upload racing the last delete of its content either
/// references it before the delete frees it or reads the body. Every
/// acknowledged object reads back; deleting all of them frees every byte.
#[test]
fn instant_uploads_racing_the_last_delete_lose_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let c = server.client();
    assert_eq!(c.send(Req::new("PUT", "/race")).status, 200);
    let body = Arc::new(pattern(256 * KIB, 18));
    let stop = Arc::new(AtomicBool::new(false));
    let instant = Arc::new(Mutex::new(0));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (c, body, stop, instant) = (c.clone(), body.clone(), stop.clone(), instant.clone());
            std::thread::spawn(move || {
                for i in 0..150 {
                    let path = format!("/race/k{}", (i + w) % 3);
                    let (resp, sent) = put_waiting(&c, Req::new("PUT", &path).body(&body));
                    assert_eq!(resp.status, 200, "{path}: {}", resp.text());
                    *instant.lock().unwrap() += usize::from(!sent);
                }
                stop.store(true, Ordering::SeqCst);
            })
        })
        .collect();
    let deleter = {
        let (c, stop) = (c.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                assert_eq!(c.send(Req::new("DELETE", &format!("/race/k{}", i % 3))).status, 204);
                i += 1;
            }
        })
    };
    writers.into_iter().for_each(|w| w.join().expect("writer"));
    deleter.join().expect("deleter");
    assert!(*instant.lock().unwrap() > 0, "some uploads found the content held");
    for k in 0..3 {
        let resp = c.send(Req::new("GET", &format!("/race/k{k}")));
        assert!(resp.status == 404 || resp.body == *body, "k{k}: {} and {} bytes", resp.status, resp.body.len());
    }
    for k in 0..3 {
        assert_eq!(c.send(Req::new("DELETE", &format!("/race/k{k}"))).status, 204);
    }
    wait_for_blob_files(dir.path(), 0);
}

/// SIGKILL while instant uploads and deletes run: after each restart,
/// every acknowledged upload reads back byte-exact; in the end, deleting
/// everything leaves no blob file.
#[test]
fn instant_uploads_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let body = Arc::new(pattern(200 * KIB, 19));
    let mut acknowledged: Vec<String> = Vec::new();
    for round in 0..5 {
        let server = Server::start(dir.path());
        let c = server.client();
        if round == 0 {
            assert_eq!(c.send(Req::new("PUT", "/kill")).status, 200);
            assert_received("seed", &put_waiting(&c, Req::new("PUT", "/kill/seed").body(&body)));
        }
        for key in &acknowledged {
            assert_reads(&c, key, &body);
        }
        let done = Arc::new(Mutex::new(Vec::new()));
        let worker = {
            let (c, body, done) = (c.clone(), body.clone(), done.clone());
            std::thread::spawn(move || {
                for i in 0.. {
                    let path = format!("/kill/r{round}-{i}");
                    let Some((resp, _)) = try_put_waiting(&c, &path, &body) else { return };
                    if resp.status == 200 {
                        done.lock().unwrap().push(path);
                    }
                }
            })
        };
        std::thread::sleep(Duration::from_millis(300 + 100 * round));
        server.kill9();
        worker.join().expect("worker");
        acknowledged.extend(done.lock().unwrap().drain(..));
    }
    let server = Server::start(dir.path());
    let c = server.client();
    assert!(acknowledged.len() > 10, "only {} uploads acknowledged", acknowledged.len());
    for key in acknowledged.iter().chain(["/kill/seed".to_string()].iter()) {
        assert_reads(&c, key, &body);
        assert_eq!(c.send(Req::new("DELETE", key)).status, 204);
    }
    // Uploads cut by a kill left nothing either (the start's sweeps).
    let listed = c.send(Req::new("GET", "/kill"));
    for key in listed.elements("Key") {
        assert_eq!(c.send(Req::new("DELETE", &format!("/kill/{key}"))).status, 204);
    }
    wait_for_blob_files(dir.path(), 0);
    assert_eq!(blob_files(dir.path()), 0);
}

/// [`put_waiting`] that gives `None` once the server is gone.
fn try_put_waiting(c: &Client, path: &str, body: &[u8]) -> Option<(Response, bool)> {
    let (c, path, body) = (c.clone(), path.to_string(), body.to_vec());
    std::thread::spawn(move || put_waiting(&c, Req::new("PUT", &path).body(&body))).join().ok()
}
