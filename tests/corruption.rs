//! Issue 9 item 4, corruption on disk, against the real binary: a blob whose
//! bytes changed after it was written must never be served as good data
//! (a full GET or a Range GET either fails before its headers or is cut
//! short), and `tessera scrub` and the background scrub must report it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

mod common;

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::{pattern, Client, Req, Server, ACCESS_KEY, SECRET_KEY};
use redb::{Database, ReadableTable};
use tessera::store::layout::packed_id;
use tessera::store::schema::{BLOB_CRCS, PACK_CHUNKS};

/// Larger than one read (256 KiB): streamed.
const BIG: usize = 1024 * 1024;
/// A file blob (more than 32 KiB) read in one go, before the headers.
const MID: usize = 100 * 1024;
/// The byte flipped in the big blob: inside its fifth 64 KiB block.
const FLIP: u64 = 300_000;

fn setup() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    assert_eq!(server.client().send(Req::new("PUT", "/cor")).status, 200);
    (dir, server)
}

fn put(c: &Client, key: &str, body: &[u8]) {
    let resp = c.send(Req::new("PUT", key).body(body));
    assert_eq!(resp.status, 200, "PUT {key}: {}", resp.text());
}

/// The blob file of the given length (each test's blobs differ in size).
fn blob_file(data: &Path, len: usize) -> PathBuf {
    let mut found = Vec::new();
    for fan in fs::read_dir(data.join("blobs")).expect("blobs/").flatten() {
        for file in fs::read_dir(fan.path()).expect("fan-out folder").flatten() {
            if file.metadata().is_ok_and(|m| m.len() == len as u64) {
                found.push(file.path());
            }
        }
    }
    assert_eq!(found.len(), 1, "exactly one blob file of {len} bytes: {found:?}");
    found.remove(0)
}

fn blob_id(path: &Path) -> String {
    path.file_name().and_then(|n| n.to_str()).expect("blob file name").to_string()
}

fn flip_byte(path: &Path, offset: u64) {
    let file = OpenOptions::new().read(true).write(true).open(path).expect("open blob file");
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, offset).expect("read byte");
    file.write_all_at(&[byte[0] ^ 0x01], offset).expect("write byte");
}

/// A response read to the end of the connection, however it ended: a
/// server that aborts a body closes the connection before the announced
/// length.
struct Raw {
    status: u16,
    announced: Option<usize>,
    body: Vec<u8>,
    text: String,
}

fn get_raw(c: &Client, key: &str, range: Option<&str>) -> Raw {
    let mut req = Req::new("GET", key);
    if let Some(r) = range {
        req = req.header("range", r);
    }
    let mut stream = c.connect();
    stream.write_all(c.signed_head(&req, SystemTime::now(), 0, None).as_bytes()).expect("send request");
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    // A reset connection ends the read like a close: keep what arrived.
    while let Ok(n @ 1..) = stream.read(&mut buf) {
        raw.extend_from_slice(&buf[..n]);
    }
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        // Closed before a complete head: no response at all.
        return Raw { status: 0, announced: None, body: Vec::new(), text: String::new() };
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status");
    let announced = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok());
    let body = raw[split + 4..].to_vec();
    let text = String::from_utf8_lossy(&body[..body.len().min(400)]).to_string();
    Raw { status, announced, text, body }
}

/// What a read of corrupt bytes may do: fail before its headers (5xx, or
/// the connection closed before a head when a streamed body fails at once),
/// or stop before the announced length. Whatever bytes it sent are right.
fn assert_not_served(raw: &Raw, expected: &[u8], what: &str) {
    if raw.status == 0 {
        return;
    }
    let complete = raw.status < 300 && raw.announced == Some(raw.body.len());
    assert!(!complete, "{what}: completed with status {} and all {} bytes", raw.status, raw.body.len());
    if raw.status < 300 {
        assert!(expected.starts_with(&raw.body), "{what}: a byte sent before the cut is wrong");
    } else {
        assert_eq!(raw.status, 500, "{what}: {}", raw.text);
        assert!(raw.text.contains("<Code>InternalError</Code>"), "{what}: {}", raw.text);
    }
}

fn assert_served(raw: &Raw, status: u16, expected: &[u8], what: &str) {
    assert_eq!((raw.status, raw.announced), (status, Some(expected.len())), "{what}: {}", raw.text);
    assert!(raw.body == expected, "{what}: wrong bytes");
}

#[test]
fn a_flipped_byte_in_a_blob_file_is_never_served() {
    let (dir, server) = setup();
    let c = server.client();
    let (big, mid) = (pattern(BIG, 1), pattern(MID, 2));
    put(&c, "/cor/big", &big);
    put(&c, "/cor/mid", &mid);
    flip_byte(&blob_file(dir.path(), BIG), FLIP);
    flip_byte(&blob_file(dir.path(), MID), 50_000);

    assert_not_served(&get_raw(&c, "/cor/big", None), &big, "full GET (streamed)");
    let small = get_raw(&c, "/cor/big", Some("bytes=299000-301000"));
    assert_eq!(small.status, 500, "a small Range GET fails before its headers: {}", small.text);
    assert_not_served(&small, &big[299_000..=301_000], "small Range GET over the byte");
    let large = get_raw(&c, "/cor/big", Some("bytes=200000-999999"));
    assert_not_served(&large, &big[200_000..1_000_000], "large Range GET over the byte");
    let whole_mid = get_raw(&c, "/cor/mid", None);
    assert_eq!(whole_mid.status, 500, "a small body is checked before its headers: {}", whole_mid.text);
    assert_not_served(&whole_mid, &mid, "full GET of a small file");

    // The rest of the blob is intact and still served.
    let before = get_raw(&c, "/cor/big", Some("bytes=0-99999"));
    assert_served(&before, 206, &big[..100_000], "Range GET before the corrupt block");
    let after = get_raw(&c, "/cor/big", Some("bytes=400000-"));
    assert_served(&after, 206, &big[400_000..], "Range GET after the corrupt block");
}

/// A server whose log (stderr) goes to a file, for tests that read it.
struct LoggedServer {
    child: Child,
    addr: String,
    log: PathBuf,
}

impl LoggedServer {
    fn start(data: &Path, extra: &[&str]) -> LoggedServer {
        let log = data.with_extension("log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(extra)
            .args(common::suite_backend_args(data, extra))
            .env("TESSERA_ACCESS_KEY", ACCESS_KEY)
            .env("TESSERA_SECRET_KEY", SECRET_KEY)
            .env("TESSERA_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(File::create(&log).expect("log file"))
            .spawn()
            .expect("start tessera");
        let mut stdout = child.stdout.take().expect("stdout");
        let mut seen = Vec::new();
        let mut byte = [0u8];
        let addr = loop {
            assert_eq!(stdout.read(&mut byte).expect("read stdout"), 1, "server exited before listening");
            seen.push(byte[0]);
            let text = String::from_utf8_lossy(&seen);
            if let Some(rest) = text.strip_suffix('\n').and_then(|t| t.split("listening on http://").nth(1)) {
                break rest.trim().to_string();
            }
        };
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        LoggedServer { child, addr, log }
    }

    fn client(&self) -> Client {
        Client::new(&self.addr)
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (at most `limit`) for an error line naming `blob`.
    fn wait_for_error_about(&self, blob: &str, limit: Duration) -> Option<String> {
        let start = Instant::now();
        while start.elapsed() < limit {
            let found = self.log().lines().find(|l| l.contains("ERROR") && l.contains(blob)).map(str::to_string);
            if found.is_some() {
                return found;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for LoggedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_truncated_blob_file_is_reported_as_corruption_at_its_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = LoggedServer::start(&data, &[]);
    let c = server.client();
    assert_eq!(c.send(Req::new("PUT", "/cor")).status, 200);
    let big = pattern(BIG, 3);
    put(&c, "/cor/big", &big);
    let path = blob_file(&data, BIG);
    File::options().write(true).open(&path).expect("open").set_len(200_000).expect("truncate");

    assert_not_served(&get_raw(&c, "/cor/big", None), &big, "full GET of a truncated blob");
    let cut = get_raw(&c, "/cor/big", Some("bytes=190000-209999"));
    assert_not_served(&cut, &big[190_000..210_000], "Range GET over the end of the data");
    let line = server.wait_for_error_about(&blob_id(&path), Duration::from_secs(5));
    let line = line.unwrap_or_else(|| panic!("an error line names the blob; log:\n{}", server.log()));
    assert!(line.contains("offset=200000"), "the log names where the data ends: {line}");
    assert!(!server.log().contains("kept changing"), "a truncated blob is not a concurrent change");
    assert_served(&get_raw(&c, "/cor/big", Some("bytes=0-99999")), 206, &big[..100_000], "Range GET before the cut");
}

/// Flips one byte of the only small body, packed in a stopped server's
/// database (`store/pack.rs`; over PostgreSQL a row of `blob_bodies`);
/// returns the blob id in hex.
fn corrupt_inline_body(data: &Path) -> String {
    if common::on_postgres() {
        let sql = "UPDATE blob_bodies SET body = set_byte(body, length(body) - 1, \
                   get_byte(body, length(body) - 1) # 1) RETURNING encode(id, 'hex')";
        let mut ids = common::suite_sql(data, sql);
        assert_eq!(ids.len(), 1, "one small body: {ids:?}");
        return ids.remove(0);
    }
    let db = Database::open(data.join("meta.redb")).expect("open the database");
    let txn = db.begin_write().expect("write transaction");
    {
        let mut table = txn.open_table(PACK_CHUNKS).expect("pack table");
        let mut value = table.get(0).expect("get").expect("the first chunk").value().to_vec();
        assert!(table.get(1).expect("get").is_none(), "one small body");
        // The chunk ends with the data (after a checksum and a table of runs).
        *value.last_mut().expect("a byte") ^= 0x01;
        table.insert(0, value.as_slice()).expect("rewrite");
    }
    txn.commit().expect("commit");
    format!("{:032x}", packed_id(0))
}

#[test]
fn a_corrupted_inline_body_is_an_error() {
    let (dir, server) = setup();
    put(&server.client(), "/cor/small", &pattern(1000, 4));
    assert_eq!(server.terminate().code(), Some(0));
    corrupt_inline_body(dir.path());

    let server = Server::start(dir.path());
    let c = server.client();
    let whole = get_raw(&c, "/cor/small", None);
    assert_eq!(whole.status, 500, "{}", whole.text);
    assert_not_served(&whole, &pattern(1000, 4), "GET of a corrupt inline body");
    let part = get_raw(&c, "/cor/small", Some("bytes=500-599"));
    assert_eq!(part.status, 500, "a range of it too: {}", part.text);
}

fn scrub(data: &Path) -> (Option<i32>, String) {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["scrub", "--data"])
        .arg(data)
        .args(common::suite_meta_args(data))
        .env("TESSERA_LOG", "off")
        .output()
        .expect("run tessera scrub");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code(), text)
}

/// The report line about `blob`.
fn line_about<'a>(report: &'a str, blob: &str) -> &'a str {
    report.lines().find(|l| l.contains(blob)).unwrap_or_else(|| panic!("the report names {blob}:\n{report}"))
}

#[test]
fn scrub_reports_each_corrupt_blob_with_its_users_and_passes_a_clean_folder() {
    let (dir, server) = setup();
    let c = server.client();
    let big = pattern(BIG, 5);
    put(&c, "/cor/big", &big);
    put(&c, "/cor/small", &pattern(1000, 6));
    let copied = c.send(Req::new("PUT", "/cor/copy").header("x-amz-copy-source", "/cor/big"));
    assert_eq!(copied.status, 200, "{}", copied.text());
    let created = c.send(Req::new("POST", "/cor/mpu").query("uploads"));
    let upload = created.elements("UploadId").pop().expect("an upload id");
    let q = format!("partNumber=3&uploadId={upload}");
    assert_eq!(c.send(Req::new("PUT", "/cor/mpu").query(&q).body(&pattern(MID, 7))).status, 200);
    assert_eq!(server.terminate().code(), Some(0));

    let (code, report) = scrub(dir.path());
    assert_eq!(code, Some(0), "a clean folder:\n{report}");
    assert!(report.contains("corrupt: 0"), "{report}");

    let big_file = blob_file(dir.path(), BIG);
    flip_byte(&big_file, FLIP);
    let part_file = blob_file(dir.path(), MID);
    File::options().write(true).open(&part_file).expect("open").set_len(70_000).expect("truncate");
    let inline = corrupt_inline_body(dir.path());

    let (code, report) = scrub(dir.path());
    assert_eq!(code, Some(1), "corruption found:\n{report}");
    assert!(report.contains("corrupt: 3"), "{report}");
    let line = line_about(&report, &blob_id(&big_file));
    assert!(line.contains("offset 262144"), "the corrupt block's offset: {line}");
    assert!(line.contains("cor/big") && line.contains("cor/copy"), "both objects sharing the blob: {line}");
    let line = line_about(&report, &blob_id(&part_file));
    assert!(line.contains("offset 70000") && line.contains(&upload), "the part, where its data ends: {line}");
    let line = line_about(&report, &inline);
    assert!(line.contains("offset 0") && line.contains("cor/small"), "the inline body: {line}");
}

/// Drops every stored block checksum of a blob file, as if the files had
/// been written by a version without them (small bodies keep theirs: redb's
/// pack checks its own, and over PostgreSQL they were always written with them).
fn forget_block_checksums(data: &Path) {
    if common::on_postgres() {
        common::suite_sql(
            data,
            "DELETE FROM blob_crcs c WHERE NOT EXISTS (SELECT 1 FROM blob_bodies b WHERE b.id = c.id)",
        );
        return;
    }
    let db = Database::open(data.join("meta.redb")).expect("open the database");
    let txn = db.begin_write().expect("write transaction");
    txn.open_table(BLOB_CRCS).expect("checksum table").retain(|_, _| false).expect("clear");
    txn.commit().expect("commit");
}

#[test]
fn blobs_without_block_checksums_are_served_and_scrubbed_as_unverified() {
    let (dir, server) = setup();
    let big = pattern(BIG, 8);
    put(&server.client(), "/cor/old", &big);
    put(&server.client(), "/cor/tiny", b"tiny");
    assert_eq!(server.terminate().code(), Some(0));
    forget_block_checksums(dir.path());

    let server = Server::start(dir.path());
    let c = server.client();
    assert_served(&get_raw(&c, "/cor/old", None), 200, &big, "full GET of an unchecked blob");
    assert_served(&get_raw(&c, "/cor/old", Some("bytes=1000-1999")), 206, &big[1000..2000], "Range GET");
    assert_served(&get_raw(&c, "/cor/tiny", None), 200, b"tiny", "a small body (the pack checks its own)");
    assert_eq!(server.terminate().code(), Some(0));

    let (code, report) = scrub(dir.path());
    assert_eq!(code, Some(0), "{report}");
    assert!(report.contains("unverified: 1"), "the file; the packed body is still checked: {report}");
}

#[test]
fn the_background_scrub_logs_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = LoggedServer::start(&data, &["--scrub-interval", "1s"]);
    let c = server.client();
    assert_eq!(c.send(Req::new("PUT", "/cor")).status, 200);
    put(&c, "/cor/big", &pattern(BIG, 9));
    let path = blob_file(&data, BIG);
    flip_byte(&path, FLIP);
    // No request reads the object: only the scrub can find it.
    let line = server.wait_for_error_about(&blob_id(&path), Duration::from_secs(30));
    let line = line.unwrap_or_else(|| panic!("the scrub logs the blob; log:\n{}", server.log()));
    assert!(line.contains("262144"), "and the corrupt block's offset: {line}");
}

/// A failed request is logged once, with its request id and what went
/// wrong inside (the cause chain), not once where the error was made and
/// again, without either, where it was answered.
#[test]
fn a_server_error_is_logged_once_with_its_request_id_and_cause() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = LoggedServer::start(&data, &[]);
    let c = server.client();
    assert_eq!(c.send(Req::new("PUT", "/cor")).status, 200);
    put(&c, "/cor/mid", &pattern(MID, 12));
    flip_byte(&blob_file(&data, MID), 1000);
    let resp = c.send(Req::new("GET", "/cor/mid"));
    assert_eq!(resp.status, 500, "{}", resp.text());
    let id = resp.header("x-amz-request-id").expect("a request id").to_string();
    // Lines reach the file through the server's log writer thread, in order:
    // once the request's access line is there, so is everything before it.
    let access = format!("id={id} ");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().lines().any(|l| l.contains("tessera::access") && l.contains(&access)) {
        assert!(Instant::now() < deadline, "no access line for {id}:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = server.log();
    let failed: Vec<&str> = log.lines().filter(|l| l.contains("request failed")).collect();
    assert_eq!(failed.len(), 1, "one line for the failed request:\n{log}");
    assert!(failed[0].contains(&id), "it names the request id {id}: {}", failed[0]);
    assert!(failed[0].contains("block checksum mismatch"), "and the cause: {}", failed[0]);
    assert!(!log.contains("internal error"), "no second line where the error was made:\n{log}");
}
