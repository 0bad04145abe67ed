//! `tessera cp` (issue 14) against a real server: instant upload of content
//! already held, resume after a SIGKILL, a server restart, a Ctrl-C, and
//! downloads resumed or restarted when the object changed.
//!
//! Files are 24 to 30 MiB with 5 MiB parts (not the 200 MiB of a real
//! transfer) to keep the suite fast; the client is slowed down with its
//! hidden `TESSERA_CP_TEST_PART_DELAY` so a test can interrupt it half-way,
//! after the resume file shows finished parts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{assert_reads, field, pattern, stats, Req, Server, ACCESS_KEY, REGION, SECRET_KEY};
use sha1::{Digest, Sha1};

const MIB: usize = 1 << 20;
const PART: &str = "5MiB";
const DELAY: &str = "400ms";

/// A `tessera cp` for `server` with the test keys, HOME in `home` (no real
/// `~/.aws` is read; upload resume files go to `home/.local/state/tessera`).
fn cp(addr: &str, home: &Path, args: &[&str]) -> Command {
    tessera(addr, home, &[&["cp", "--part-size", PART], args].concat())
}

/// `tessera ARGS` with the environment of [`cp`].
fn tessera(addr: &str, home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.args(args)
        .env("HOME", home)
        .env_remove("XDG_STATE_HOME")
        .env_remove("AWS_PROFILE")
        .env_remove("TESSERA_CP_TEST_PART_DELAY")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", REGION)
        .env("AWS_ENDPOINT_URL", format!("http://{addr}"))
        .env("TESSERA_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// The same, slowed to one part at a time with a pause before each.
fn slow_cp(addr: &str, home: &Path, args: &[&str]) -> Child {
    let mut cmd = cp(addr, home, &[&["--concurrency", "1"], args].concat());
    cmd.env("TESSERA_CP_TEST_PART_DELAY", DELAY).spawn().expect("start tessera cp")
}

/// Runs to success; the fields of its summary line.
fn run_ok(mut cmd: Command) -> HashMap<String, String> {
    summary(&expect_success(cmd.output().expect("run tessera cp")))
}

fn expect_success(out: Output) -> Output {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tessera cp failed ({}): {err}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

/// `done k=v ...`, the last line of a run whose stdout is not a terminal.
fn summary(out: &Output) -> HashMap<String, String> {
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let line = stdout.lines().rev().find(|l| l.starts_with("done ")).unwrap_or_else(|| panic!("no summary: {stdout}"));
    line.split_whitespace().skip(1).map(|kv| kv.split_once('=').unwrap()).map(|(k, v)| (k.into(), v.into())).collect()
}

fn num(summary: &HashMap<String, String>, name: &str) -> u64 {
    summary[name].parse().unwrap_or_else(|_| panic!("{name} in {summary:?}"))
}

fn write_file(dir: &Path, name: &str, len: usize, seed: u64) -> (PathBuf, Vec<u8>) {
    let data = pattern(len, seed);
    let path = dir.join(name);
    std::fs::write(&path, &data).unwrap();
    (path, data)
}

fn sha1(data: &[u8]) -> String {
    hex::encode(Sha1::digest(data))
}

fn make_bucket(server: &Server, bucket: &str) {
    let resp = server.client().send(Req::new("PUT", &format!("/{bucket}")));
    assert_eq!(resp.status, 200, "{}", resp.text());
}

/// The upload resume files under `home`, parsed.
fn upload_states(home: &Path) -> Vec<serde_json::Value> {
    let dir = home.join(".local/state/tessera/uploads");
    let files = std::fs::read_dir(dir).into_iter().flatten().flatten();
    let json = files.filter(|f| f.path().extension().is_some_and(|e| e == "json"));
    json.filter_map(|f| serde_json::from_slice(&std::fs::read(f.path()).ok()?).ok()).collect()
}

fn finished_parts(home: &Path) -> usize {
    upload_states(home).iter().map(|s| s["parts"].as_object().map_or(0, |p| p.len())).max().unwrap_or(0)
}

/// Waits until `done()` reaches `want` (or fails if the child exits first).
fn wait_for(child: &mut Child, want: usize, done: impl Fn() -> usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = done();
        if now >= want {
            return now;
        }
        assert!(child.try_wait().unwrap().is_none(), "tessera cp ended before {want} parts were done");
        assert!(Instant::now() < deadline, "{now} of {want} parts after 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill9(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Downloads `s3://bkt/key` with `cp` and returns its bytes.
fn download(addr: &str, home: &Path, key: &str) -> Vec<u8> {
    let target = home.join(format!("downloaded-{}", key.replace('/', "_")));
    run_ok(cp(addr, home, &[&format!("s3://bkt/{key}"), target.to_str().unwrap()]));
    std::fs::read(target).unwrap()
}

#[test]
fn the_same_file_uploaded_again_sends_no_part_body() {
    let (dir, home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = Server::start(dir.path());
    make_bucket(&server, "bkt");
    let (big, data) = write_file(home.path(), "big.bin", 24 * MIB, 1);
    let (small, small_data) = write_file(home.path(), "small.bin", MIB + 7, 2);
    let first = run_ok(cp(&server.addr, home.path(), &[big.to_str().unwrap(), "s3://bkt/one"]));
    assert_eq!((num(&first, "parts"), num(&first, "sent"), num(&first, "skipped_parts")), (5, 24 * MIB as u64, 0));
    run_ok(cp(&server.addr, home.path(), &[small.to_str().unwrap(), "s3://bkt/small-one"]));
    let before = field(&stats(dir.path()), "stored_bytes");

    let second = run_ok(cp(&server.addr, home.path(), &[big.to_str().unwrap(), "s3://bkt/two"]));
    assert_eq!((num(&second, "sent"), num(&second, "skipped_parts"), num(&second, "instant_parts")), (0, 5, 5));
    assert_eq!(second["etag"], first["etag"], "{second:?}");
    let small_again = run_ok(cp(&server.addr, home.path(), &[small.to_str().unwrap(), "s3://bkt/small-two"]));
    assert_eq!((num(&small_again, "sent"), num(&small_again, "instant_parts")), (0, 1));
    assert_eq!(field(&stats(dir.path()), "stored_bytes"), before, "the second uploads stored nothing new");

    let c = server.client();
    for (key, body) in [("one", &data), ("two", &data), ("small-one", &small_data), ("small-two", &small_data)] {
        assert_reads(&c, &format!("/bkt/{key}"), body);
    }
    assert!(upload_states(home.path()).is_empty(), "a completed upload leaves no resume file");
}

/// Kills the client after `at_least` parts; reruns it; checks the object
/// and that the parts finished before the kill were not sent again.
fn resume_after_kill(addr: &str, home: &Path, source: &Path, data: &[u8], key: &str, finished: usize) {
    let rerun = run_ok(cp(addr, home, &[source.to_str().unwrap(), &format!("s3://bkt/{key}")]));
    let resumed = num(&rerun, "resumed_parts");
    assert!(resumed >= finished as u64, "{finished} parts were finished at the interruption: {rerun:?}");
    let part = 5 * MIB as u64;
    assert!(num(&rerun, "sent") <= data.len() as u64 - resumed * part, "resumed parts were sent again: {rerun:?}");
    assert_eq!(sha1(&download(addr, home, key)), sha1(data));
    assert!(upload_states(home).is_empty(), "a completed upload leaves no resume file");
}

#[test]
fn an_upload_killed_half_way_resumes_without_resending_finished_parts() {
    let (dir, home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = Server::start(dir.path());
    make_bucket(&server, "bkt");
    let (source, data) = write_file(home.path(), "f.bin", 30 * MIB, 3);
    let mut child = slow_cp(&server.addr, home.path(), &[source.to_str().unwrap(), "s3://bkt/k"]);
    let finished = wait_for(&mut child, 2, || finished_parts(home.path()));
    kill9(child);
    assert!(finished_parts(home.path()) < 6, "killed before the end");
    resume_after_kill(&server.addr, home.path(), &source, &data, "k", finished);
}

#[test]
fn an_upload_resumes_after_the_server_restarted() {
    let (dir, home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let addr = common::free_addr();
    let server = Server::start_on(&addr, dir.path());
    make_bucket(&server, "bkt");
    let (source, data) = write_file(home.path(), "f.bin", 30 * MIB, 4);
    let mut child = slow_cp(&addr, home.path(), &[source.to_str().unwrap(), "s3://bkt/k"]);
    let finished = wait_for(&mut child, 2, || finished_parts(home.path()));
    kill9(child);
    assert!(server.terminate().success());
    let _server = Server::start_on(&addr, dir.path());
    resume_after_kill(&addr, home.path(), &source, &data, "k", finished);
}

#[test]
fn an_upload_rides_out_a_server_restart_in_its_middle() {
    let (dir, home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let addr = common::free_addr();
    let server = Server::start_on(&addr, dir.path());
    make_bucket(&server, "bkt");
    let (source, data) = write_file(home.path(), "f.bin", 30 * MIB, 5);
    let mut child = slow_cp(&addr, home.path(), &[source.to_str().unwrap(), "s3://bkt/k"]);
    wait_for(&mut child, 2, || finished_parts(home.path()));
    assert!(server.terminate().success());
    // Down for longer than the pause between parts: the client meets a closed port.
    std::thread::sleep(Duration::from_millis(1000));
    let server = Server::start_on(&addr, dir.path());
    expect_success(child.wait_with_output().unwrap());
    assert_reads(&server.client(), "/bkt/k", &data);
}

/// The download's resume file beside `target`, parsed.
fn ranges_done(target: &Path) -> usize {
    let state = target.with_file_name(format!(".{}.tessera-download", target.file_name().unwrap().to_str().unwrap()));
    let json: Option<serde_json::Value> = std::fs::read(state).ok().and_then(|b| serde_json::from_slice(&b).ok());
    json.and_then(|j| j["done"].as_object().map(|done| done.len())).unwrap_or(0)
}

/// Starts a slow download to `target` and kills it after 2 ranges.
fn interrupted_download(addr: &str, home: &Path, target: &Path) -> usize {
    let mut child = slow_cp(addr, home, &["s3://bkt/k", target.to_str().unwrap()]);
    let done = wait_for(&mut child, 2, || ranges_done(target));
    kill9(child);
    assert!(!target.exists(), "nothing at the target before the download is complete");
    done
}

#[test]
fn a_download_resumes_and_restarts_when_the_object_was_replaced() {
    let (dir, home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = Server::start(dir.path());
    make_bucket(&server, "bkt");
    let (first, first_data) = write_file(home.path(), "first.bin", 30 * MIB, 6);
    run_ok(cp(&server.addr, home.path(), &[first.to_str().unwrap(), "s3://bkt/k"]));

    let target = home.path().join("got.bin");
    let done = interrupted_download(&server.addr, home.path(), &target);
    let rerun = run_ok(cp(&server.addr, home.path(), &["s3://bkt/k", target.to_str().unwrap()]));
    assert!(num(&rerun, "resumed_parts") >= done as u64, "{rerun:?}");
    assert!(num(&rerun, "sent") <= (30 * MIB - done * 5 * MIB) as u64, "{rerun:?}");
    assert_eq!(sha1(&std::fs::read(&target).unwrap()), sha1(&first_data));
    let leftovers: Vec<_> = std::fs::read_dir(home.path()).unwrap().flatten().map(|f| f.file_name()).collect();
    assert!(!leftovers.iter().any(|n| n.to_string_lossy().contains("tessera-")), "{leftovers:?}");

    // Replaced while the download is paused: the rerun starts over.
    let target = home.path().join("got-again.bin");
    interrupted_download(&server.addr, home.path(), &target);
    // Same size, so only the ETag tells the objects apart.
    let (second, second_data) = write_file(home.path(), "second.bin", 30 * MIB, 7);
    run_ok(cp(&server.addr, home.path(), &[second.to_str().unwrap(), "s3://bkt/k"]));
    let rerun = run_ok(cp(&server.addr, home.path(), &["s3://bkt/k", target.to_str().unwrap()]));
    assert_eq!((num(&rerun, "restarts"), num(&rerun, "resumed_parts")), (1, 0), "{rerun:?}");
    assert_eq!(rerun["verified"], "sha256", "uploaded by tessera cp: a composite SHA-256");
    assert_eq!(sha1(&std::fs::read(&target).unwrap()), sha1(&second_data), "the new object, never a mix");
}

#[test]
fn ctrl_c_pauses_an_upload_and_the_same_command_resumes_it() {
    let (dir, home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = Server::start(dir.path());
    make_bucket(&server, "bkt");
    let (source, data) = write_file(home.path(), "f.bin", 30 * MIB, 8);
    let mut child = slow_cp(&server.addr, home.path(), &[source.to_str().unwrap(), "s3://bkt/k"]);
    wait_for(&mut child, 1, || finished_parts(home.path()));
    let sigint = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(sigint.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("run the same command again to resume"), "{stderr}");
    let finished = finished_parts(home.path());
    assert!((1..6).contains(&finished), "{finished} parts recorded at the pause");
    resume_after_kill(&server.addr, home.path(), &source, &data, "k", finished);
}

/// A multipart upload of `pieces` (any sizes) made with the raw client,
/// with SHA-256 part checksums (a composite object checksum) if `sha256`.
fn upload_in_parts(server: &Server, path: &str, pieces: &[&[u8]], sha256: bool) {
    use base64::Engine;
    let c = server.client();
    let mut create = Req::new("POST", path).query("uploads");
    if sha256 {
        create = create.header("x-amz-checksum-algorithm", "SHA256");
    }
    let resp = c.send(create);
    let upload = resp.elements("UploadId").pop().unwrap_or_else(|| panic!("{}", resp.text()));
    let mut done = String::from("<CompleteMultipartUpload>");
    for (i, piece) in pieces.iter().enumerate() {
        let q = format!("partNumber={}&uploadId={upload}", i + 1);
        let sum = base64::engine::general_purpose::STANDARD.encode(<sha2::Sha256 as Digest>::digest(piece));
        let mut part = Req::new("PUT", path).query(&q).body(piece);
        if sha256 {
            part = part.header("x-amz-checksum-sha256", sum.clone());
        }
        let resp = c.send(part);
        assert_eq!(resp.status, 200, "{}", resp.text());
        let etag = resp.header("etag").unwrap().to_string();
        let sum = if sha256 { format!("<ChecksumSHA256>{sum}</ChecksumSHA256>") } else { String::new() };
        done.push_str(&format!("<Part><PartNumber>{}</PartNumber><ETag>{etag}</ETag>{sum}</Part>", i + 1));
    }
    done.push_str("</CompleteMultipartUpload>");
    let q = format!("uploadId={upload}");
    let resp = c.send(Req::new("POST", path).query(&q).body(done.as_bytes()));
    assert_eq!(resp.status, 200, "{}", resp.text());
}

#[test]
fn a_download_checks_the_etag_of_parts_of_any_size_and_refetches_ranges_changed_while_paused() {
    let (dir, home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = Server::start(dir.path());
    make_bucket(&server, "bkt");
    let data = pattern(17 * MIB + 3, 9);
    let (a, rest) = data.split_at(7 * MIB);
    let (b, c) = rest.split_at(5 * MIB);
    upload_in_parts(&server, "/bkt/uneven", &[a, b, c], false);
    let got = download(&server.addr, home.path(), "uneven");
    assert_eq!(sha1(&got), sha1(&data), "parts of 7, 5 and 5 MiB + 3 B");
    // With a composite SHA-256 the ranges (7 MiB each) are not the parts:
    // their SHA-256s cannot give it, and the ETag is checked instead.
    upload_in_parts(&server, "/bkt/uneven-sha", &[a, b, c], true);
    let target = home.path().join("uneven-sha");
    let out = run_ok(cp(&server.addr, home.path(), &["s3://bkt/uneven-sha", target.to_str().unwrap()]));
    assert_eq!(out["verified"], "etag", "{out:?}");
    assert_eq!(sha1(&std::fs::read(&target).unwrap()), sha1(&data));

    // Aligned ranges (5 MiB parts): a range changed on disk while paused is fetched again.
    let (source, data) = write_file(home.path(), "f.bin", 30 * MIB, 10);
    run_ok(cp(&server.addr, home.path(), &[source.to_str().unwrap(), "s3://bkt/k"]));
    let target = home.path().join("got.bin");
    let done = interrupted_download(&server.addr, home.path(), &target);
    let partial = home.path().join(".got.bin.tessera-partial");
    let mut bytes = std::fs::read(&partial).unwrap();
    bytes[100] ^= 1; // range 0 is done: the first range fetched
    std::fs::write(&partial, bytes).unwrap();
    let rerun = run_ok(cp(&server.addr, home.path(), &["s3://bkt/k", target.to_str().unwrap()]));
    assert_eq!(num(&rerun, "resumed_parts"), done as u64 - 1, "{rerun:?}");
    assert_eq!(sha1(&std::fs::read(&target).unwrap()), sha1(&data));
}

/// Forwards connections to `to`, flipping one bit of the replies: in the
/// first connection whose replies pass `flip_at` bytes (inside a body, past
/// the heads), once in all.
fn corrupting_proxy(to: String, flip_at: usize) -> String {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let flipped = Arc::new(AtomicBool::new(false));
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let server = std::net::TcpStream::connect(&to).unwrap();
            let (mut up_from, mut up_to) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || std::io::copy(&mut up_from, &mut up_to));
            let (mut down_from, mut down_to, flipped) = (server, client, flipped.clone());
            std::thread::spawn(move || {
                let (mut seen, mut buf) = (0usize, vec![0u8; 64 * 1024]);
                while let Ok(len) = down_from.read(&mut buf) {
                    if len == 0 {
                        break;
                    }
                    if (seen..seen + len).contains(&flip_at) && !flipped.swap(true, Ordering::SeqCst) {
                        buf[flip_at - seen] ^= 1;
                    }
                    seen += len;
                    if down_to.write_all(&buf[..len]).is_err() {
                        break;
                    }
                }
                let _ = down_to.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    addr
}

#[test]
fn a_download_corrupted_in_transit_fails_loudly_and_leaves_no_file() {
    let (dir, home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = Server::start(dir.path());
    make_bucket(&server, "bkt");
    // Checked by the ETag (MD5) unless the object has SHA-256 part checksums.
    for (key, pieces, checked_by) in [("single", 1, "etag"), ("multi", 3, "etag"), ("multi-sha", 3, "sha256")] {
        let data = pattern(15 * MIB, 11);
        let thirds: &[&[u8]] = &[&data[..5 * MIB], &data[5 * MIB..10 * MIB], &data[10 * MIB..]];
        match pieces {
            1 => assert_eq!(server.client().send(Req::new("PUT", "/bkt/single").body(&data)).status, 200),
            _ => upload_in_parts(&server, &format!("/bkt/{key}"), thirds, checked_by == "sha256"),
        }
        let proxy = corrupting_proxy(server.addr.clone(), MIB);
        let target = home.path().join(key);
        let out = cp(&proxy, home.path(), &[&format!("s3://bkt/{key}"), target.to_str().unwrap()]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{key}: a corrupted download must fail: {stderr}");
        assert!(stderr.contains("integrity"), "{key}: {stderr}");
        let left: Vec<_> = std::fs::read_dir(home.path()).unwrap().flatten().map(|f| f.file_name()).collect();
        assert!(!left.iter().any(|n| n.to_string_lossy().contains(key)), "{key}: {left:?}");
        // Through a clean connection the same command succeeds.
        let target = home.path().join(key);
        let out = run_ok(cp(&server.addr, home.path(), &[&format!("s3://bkt/{key}"), target.to_str().unwrap()]));
        assert_eq!(out["verified"], checked_by, "{key}: {out:?}");
        assert_eq!(sha1(&std::fs::read(&target).unwrap()), sha1(&data));
    }
}

/// Runs a `tessera` companion command (`ls`, `mb`, `rm`) to success; its stdout.
fn companion(addr: &str, home: &Path, args: &[&str]) -> String {
    let out = tessera(addr, home, args).output().unwrap();
    String::from_utf8(expect_success(out).stdout).unwrap()
}

#[test]
fn folders_go_up_and_come_back_and_ls_mb_rm_manage_them() {
    let (dir, home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = Server::start(dir.path());
    let addr = server.addr.clone();
    assert!(companion(&addr, home.path(), &["mb", "s3://tree"]).contains("make_bucket: tree"));
    let src = home.path().join("src");
    std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
    let files = [("a.txt", pattern(10, 1)), ("sub/b.bin", pattern(12 * MIB, 2)), ("sub/deeper/c", Vec::new())];
    for (name, data) in &files {
        std::fs::write(src.join(name), data).unwrap();
    }
    run_ok(cp(&addr, home.path(), &["--recursive", src.to_str().unwrap(), "s3://tree/backup"]));

    let top = companion(&addr, home.path(), &["ls", "s3://tree/backup/"]);
    assert!(top.contains("PRE backup/sub/") && top.contains(" 10 backup/a.txt"), "{top}");
    let all = companion(&addr, home.path(), &["ls", "--recursive", "s3://tree/backup"]);
    let keys: Vec<&str> = all.lines().filter_map(|l| l.split_whitespace().last()).collect();
    assert_eq!(keys, ["backup/a.txt", "backup/sub/b.bin", "backup/sub/deeper/c"], "{all}");
    assert!(companion(&addr, home.path(), &["ls"]).contains(" tree"));

    // A hostile key must not write outside the target folder.
    let c = server.client();
    assert_eq!(c.send(Req::new("PUT", "/tree/backup/..%2F..%2Fescaped").body(b"x")).status, 200);
    let out = home.path().join("out/inner");
    run_ok(cp(&addr, home.path(), &["--recursive", "s3://tree/backup/", out.to_str().unwrap()]));
    for (name, data) in &files {
        assert_eq!(std::fs::read(out.join(name)).unwrap(), *data, "{name}");
    }
    assert!(!home.path().join("escaped").exists() && !home.path().join("out/escaped").exists());

    let removed = companion(&addr, home.path(), &["rm", "--recursive", "s3://tree/backup"]);
    assert_eq!(removed.lines().count(), 4, "{removed}");
    assert_eq!(companion(&addr, home.path(), &["ls", "--recursive", "s3://tree"]), "");
    assert_eq!(c.send(Req::new("DELETE", "/tree")).status, 204, "the bucket is empty");
}

#[test]
fn an_upload_the_server_no_longer_has_starts_over_cleanly() {
    let (dir, home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = Server::start(dir.path());
    make_bucket(&server, "bkt");
    let (source, data) = write_file(home.path(), "f.bin", 30 * MIB, 12);
    let mut child = slow_cp(&server.addr, home.path(), &[source.to_str().unwrap(), "s3://bkt/k"]);
    wait_for(&mut child, 2, || finished_parts(home.path()));
    kill9(child);
    let upload = upload_states(home.path())[0]["upload_id"].as_str().unwrap().to_string();
    let c = server.client();
    let q = format!("uploadId={upload}");
    assert_eq!(c.send(Req::new("DELETE", "/bkt/k").query(&q)).status, 204, "aborted behind the client's back");

    let out =
        expect_success(cp(&server.addr, home.path(), &[source.to_str().unwrap(), "s3://bkt/k"]).output().unwrap());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no longer has the upload; starting over"), "{stderr}");
    let rerun = summary(&out);
    assert_eq!((num(&rerun, "resumed_parts"), num(&rerun, "sent")), (0, 30 * MIB as u64), "{rerun:?}");
    assert_reads(&c, "/bkt/k", &data);
    assert!(upload_states(home.path()).is_empty());
}

#[test]
fn paths_relative_to_the_current_folder_work_both_ways() {
    let (dir, home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = Server::start(dir.path());
    make_bucket(&server, "bkt");
    let (_, data) = write_file(home.path(), "rel.bin", 12 * MIB, 13);
    let mut up = cp(&server.addr, home.path(), &["rel.bin", "s3://bkt/rel"]);
    up.current_dir(home.path());
    run_ok(up);
    let mut down = cp(&server.addr, home.path(), &["s3://bkt/rel", "back.bin"]);
    down.current_dir(home.path());
    run_ok(down);
    assert_eq!(sha1(&std::fs::read(home.path().join("back.bin")).unwrap()), sha1(&data));
}
