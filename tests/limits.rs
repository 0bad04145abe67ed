//! Hostile input over the wire, against the real binary (issue 12): request
//! bodies and header blocks over their caps, sizes a body does not keep,
//! keys that are not UTF-8, too long, or look like paths, and presigned URLs
//! that expired or were bent. What tests/security.rs, tests/s3_api.rs and
//! tests/users.rs already check (unsigned headers on a presigned URL, another
//! user's presigned URL, an unknown access key) is not repeated here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, SystemTime};

use common::{amz_date, blob_files, pattern, read_response, Client, Req, Response, Server};
use tessera::auth::sigv4;

const MIB: usize = 1024 * 1024;
const GIB: u64 = 1024 * 1024 * 1024;

/// A server whose data folder is `dir/data` (so that anything written
/// outside it shows up in `dir`), with an empty bucket `bkt`.
fn setup() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("data folder");
    let server = Server::start(&data);
    assert_eq!(server.client().send(Req::new("PUT", "/bkt")).status, 200);
    (dir, server)
}

fn code(resp: &Response) -> (u16, String) {
    (resp.status, resp.error_code().unwrap_or_else(|| format!("<no code: {}>", resp.text())))
}

fn code_of(status: u16, code: &str) -> (u16, String) {
    (status, code.to_string())
}

/// The signed head of `req` without `connection: close`, so that closing is
/// the server's own choice.
fn keep_alive_head(c: &Client, req: &Req, declared: usize, payload: Option<&str>) -> String {
    c.signed_head(req, SystemTime::now(), declared, payload).replace("connection: close\r\n", "")
}

/// Whether the server closed the connection (EOF or reset) within 10 s.
fn closed(stream: &mut TcpStream) -> bool {
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    match stream.read(&mut [0u8; 1]) {
        Ok(0) => true,
        Err(e) => matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe),
        Ok(_) => false,
    }
}

/// The status of the first response line the server sends, without consuming it.
fn first_status(stream: &TcpStream) -> u16 {
    let mut buf = [0u8; 12];
    loop {
        let n = stream.peek(&mut buf).expect("peek");
        if n >= 12 || n == 0 {
            let line = String::from_utf8_lossy(&buf[..n]).into_owned();
            return line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status line");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What a server answered to a head sent alone: the first status it sent
/// (100 if it asked for the body), its answer, and whether it then closed.
struct Answer {
    first: u16,
    resp: Response,
    closed: bool,
}

/// Sends a head announcing a body with `Expect: 100-continue` and no body.
fn send_head_only(c: &Client, head: &str) -> Answer {
    let mut stream = c.connect();
    stream.write_all(head.as_bytes()).expect("write head");
    let first = first_status(&stream);
    if first == 100 {
        return Answer { first, resp: Response { status: 100, headers: Vec::new(), body: Vec::new() }, closed: false };
    }
    let resp = read_response(&mut stream, false);
    let closed = closed(&mut stream);
    Answer { first, resp, closed }
}

/// Sends `head` and then `body` from another thread while reading the
/// answer, so a server that answers before reading everything is heard.
/// Returns the answer and, for an error, whether the server then closed.
fn send_streaming(c: &Client, head: String, body: Vec<u8>) -> (Response, bool) {
    let mut stream = c.connect();
    let mut writer = stream.try_clone().expect("clone");
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(head.as_bytes());
        let _ = writer.write_all(&body);
    });
    let resp = read_response(&mut stream, false);
    // Only an error is expected to close the connection (waiting to see a
    // kept one stay open would cost the whole timeout).
    let closed = resp.status >= 400 && closed(&mut stream);
    sender.join().expect("sender");
    (resp, closed)
}

/// `Req` with `Expect: 100-continue`, announcing `declared` bytes.
fn expecting<'a>(method: &'a str, path: &'a str, query: &'a str) -> Req<'a> {
    Req::new(method, path).query(query).header("expect", "100-continue")
}

/// An aws-chunked body without chunk signatures (STREAMING-UNSIGNED-PAYLOAD-TRAILER, no trailer).
fn aws_chunked_unsigned(data: &[u8], chunk: usize) -> Vec<u8> {
    let mut body = Vec::new();
    for piece in data.chunks(chunk) {
        body.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        body.extend_from_slice(piece);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    body
}

/// An aws-chunked body with chunk signatures chained from `seed`
/// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD), as the SDKs send it.
fn aws_chunked_signed(c: &Client, date: &str, seed: &str, data: &[u8], chunk: usize) -> Vec<u8> {
    let scope = format!("{}/{}/s3/aws4_request", &date[..8], c.region);
    let key = sigv4::signing_key(&c.secret_key, &date[..8], &c.region, "s3");
    let mut prev = seed.to_string();
    let mut body = Vec::new();
    for piece in data.chunks(chunk).chain([&[][..]]) {
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{date}\n{scope}\n{prev}\n{}\n{}",
            sigv4::EMPTY_SHA256_HEX,
            sigv4::sha256_hex(piece)
        );
        prev = sigv4::hmac_hex(&key, &sts);
        body.extend_from_slice(format!("{:x};chunk-signature={prev}\r\n", piece.len()).as_bytes());
        body.extend_from_slice(piece);
        body.extend_from_slice(b"\r\n");
    }
    body
}

/// A signed aws-chunked PUT of `data` to `path` that announces
/// `x-amz-decoded-content-length: declared`. Returns the answer and whether
/// the server closed the connection after it.
fn put_signed_chunked(c: &Client, path: &str, data: &[u8], declared: u64) -> (Response, bool) {
    let now = SystemTime::now();
    let date = amz_date(now);
    let mode = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
    let declared = declared.to_string();
    let req = Req::new("PUT", path)
        .header("content-encoding", "aws-chunked")
        .header("x-amz-decoded-content-length", declared.clone());
    // The signatures have a fixed length: any seed gives the body's length.
    let len = aws_chunked_signed(c, &date, sigv4::EMPTY_SHA256_HEX, data, 8192).len();
    let head = c.signed_head(&req, now, len, Some(mode)).replace("connection: close\r\n", "");
    let seed = head.split("Signature=").nth(1).and_then(|s| s.split("\r\n").next()).expect("seed").to_string();
    send_streaming(c, head, aws_chunked_signed(c, &date, &seed, data, 8192))
}

fn files_named(dir: &Path, name: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == name) {
            found.push(path.clone());
        }
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(files_named(&path, name));
        }
    }
    found
}

fn tmp_files(data: &Path) -> usize {
    std::fs::read_dir(data.join("tmp")).map(|d| d.count()).unwrap_or(0)
}

fn listed_keys(c: &Client) -> Vec<String> {
    let resp = c.send(Req::new("GET", "/bkt").query("list-type=2&encoding-type=url"));
    assert_eq!(resp.status, 200, "{}", resp.text());
    let decode = |k: &String| percent_encoding::percent_decode_str(k).decode_utf8_lossy().into_owned();
    resp.elements("Key").iter().map(decode).collect()
}

// ---------------------------------------------------------------------------
// XML bodies over their caps

/// A DeleteObjects document of exactly `len` bytes (a comment pads it).
fn delete_doc(keys: &[&str], len: usize) -> Vec<u8> {
    let mut doc = String::from("<Delete>");
    for key in keys {
        doc.push_str(&format!("<Object><Key>{key}</Key></Object>"));
    }
    doc.push_str("<!--");
    let tail = "--></Delete>";
    let pad = len.checked_sub(doc.len() + tail.len()).expect("room for the padding");
    doc.push_str(&"x".repeat(pad));
    doc.push_str(tail);
    assert_eq!(doc.len(), len);
    doc.into_bytes()
}

/// DeleteObjects takes a document of 2 MiB (1000 keys of 1 KiB fit); one byte
/// more is refused, whether the length is announced (then before the body is
/// sent) or only found while reading, and the connection is closed. Nothing
/// is deleted by a refused request.
#[test]
fn delete_objects_takes_2_mib_and_refuses_one_byte_more() {
    let (_dir, server) = setup();
    let c = server.client();
    for key in ["a", "b"] {
        assert_eq!(c.send(Req::new("PUT", &format!("/bkt/{key}")).body(b"x")).status, 200);
    }

    let over = 2 * MIB + 1;
    let head = keep_alive_head(&c, &expecting("POST", "/bkt", "delete"), over, Some("UNSIGNED-PAYLOAD"));
    let answer = send_head_only(&c, &head);
    assert_eq!(answer.first, 400, "refused before asking for the body");
    assert_eq!(code(&answer.resp), code_of(400, "InvalidRequest"), "{}", answer.resp.text());
    assert_eq!(answer.resp.header("connection"), Some("close"));
    assert!(answer.closed, "the connection is closed after the refusal");

    // No announced size (aws-chunked without x-amz-decoded-content-length):
    // refused once 2 MiB have been read.
    let body = aws_chunked_unsigned(&delete_doc(&["a"], over), 64 * 1024);
    let req = Req::new("POST", "/bkt").query("delete").header("content-encoding", "aws-chunked");
    let head = keep_alive_head(&c, &req, body.len(), Some("STREAMING-UNSIGNED-PAYLOAD-TRAILER"));
    let (resp, was_closed) = send_streaming(&c, head, body);
    assert_eq!(code(&resp), code_of(400, "InvalidRequest"), "{}", resp.text());
    assert!(was_closed, "the connection is closed after the refusal");
    assert_eq!(listed_keys(&c), ["a", "b"], "a refused DeleteObjects deletes nothing");

    let resp = c.send(Req::new("POST", "/bkt").query("delete").body(&delete_doc(&["a"], 2 * MIB)));
    assert_eq!(resp.status, 200, "exactly 2 MiB is taken: {}", resp.text());
    assert_eq!(listed_keys(&c), ["b"]);
}

/// CompleteMultipartUpload's document is capped at 4 MiB (10,000 parts);
/// over it the request is refused and the upload is left as it was.
#[test]
fn complete_multipart_upload_over_4_mib_is_refused_and_the_upload_kept() {
    let (_dir, server) = setup();
    let c = server.client();
    let init = c.send(Req::new("POST", "/bkt/mpu").query("uploads"));
    let id = init.elements("UploadId").pop().expect("upload id");
    let query = format!("uploadId={id}");
    assert_eq!(c.send(Req::new("PUT", "/bkt/mpu").query(&format!("partNumber=1&{query}")).body(b"part")).status, 200);

    let head = keep_alive_head(&c, &expecting("POST", "/bkt/mpu", &query), 4 * MIB + 1, Some("UNSIGNED-PAYLOAD"));
    let answer = send_head_only(&c, &head);
    assert_eq!(answer.first, 400, "refused before asking for the body");
    assert_eq!(code(&answer.resp), code_of(400, "InvalidRequest"), "{}", answer.resp.text());
    assert!(answer.closed);

    let mut doc = b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part>".to_vec();
    doc.resize(4 * MIB + 1, b' ');
    let body = aws_chunked_unsigned(&doc, 256 * 1024);
    let req = Req::new("POST", "/bkt/mpu").query(&query).header("content-encoding", "aws-chunked");
    let head = keep_alive_head(&c, &req, body.len(), Some("STREAMING-UNSIGNED-PAYLOAD-TRAILER"));
    let (resp, was_closed) = send_streaming(&c, head, body);
    assert_eq!(code(&resp), code_of(400, "InvalidRequest"), "{}", resp.text());
    assert!(was_closed);

    let parts = c.send(Req::new("GET", "/bkt/mpu").query(&query));
    assert_eq!((parts.status, parts.elements("PartNumber")), (200, vec!["1".to_string()]), "the upload is untouched");
    assert_eq!(c.send(Req::new("HEAD", "/bkt/mpu")).status, 404);
}

/// Every other XML request has its own cap; each refuses one byte more
/// before the body is sent, and changes nothing.
#[test]
fn other_xml_bodies_over_their_caps_are_refused_before_the_body() {
    let (_dir, server) = setup();
    let c = server.client();
    assert_eq!(c.send(Req::new("PUT", "/bkt/k").body(b"x")).status, 200);
    let cases: [(&str, &str, &str, usize); 6] = [
        ("PUT", "/bkt/k", "tagging", 64 * 1024),
        ("PUT", "/bkt", "tagging", 64 * 1024),
        ("PUT", "/bkt", "lifecycle", 256 * 1024),
        ("PUT", "/bkt", "versioning", 16 * 1024),
        ("PUT", "/newbkt", "", 64 * 1024),
        ("POST", "/bkt", "delete", 2 * MIB),
    ];
    for (method, path, query, cap) in cases {
        let head = keep_alive_head(&c, &expecting(method, path, query), cap + 1, Some("UNSIGNED-PAYLOAD"));
        let answer = send_head_only(&c, &head);
        let what = format!("{method} {path}?{query} with {} bytes", cap + 1);
        assert_eq!(answer.first, 400, "{what}: refused before asking for the body");
        assert_eq!(code(&answer.resp), code_of(400, "InvalidRequest"), "{what}: {}", answer.resp.text());
        assert!(answer.closed, "{what}: connection kept open");
    }
    assert_eq!(c.send(Req::new("HEAD", "/newbkt")).status, 404, "no bucket was created");
    assert_eq!(code(&c.send(Req::new("GET", "/bkt").query("tagging"))), code_of(404, "NoSuchTagSet"));
    let versioning = c.send(Req::new("GET", "/bkt").query("versioning"));
    assert!(versioning.elements("Status").is_empty(), "{}", versioning.text());
}

// ---------------------------------------------------------------------------
// Header blocks

/// A header block larger than the server buffers (about 400 KiB: hyper's
/// default), with more than 100 header lines, or a request line of 512 KiB
/// is refused with 431 and the connection closed; the server goes on serving.
#[test]
fn an_oversized_header_block_is_refused_and_the_server_keeps_serving() {
    let (_dir, server) = setup();
    let c = server.client();
    let big = format!("GET /bkt HTTP/1.1\r\nhost: {}\r\nx-pad: {}\r\n\r\n", c.addr, "a".repeat(512 * 1024));
    let many: String = (0..150).map(|i| format!("x-pad-{i}: {i}\r\n")).collect();
    let many = format!("GET /bkt HTTP/1.1\r\nhost: {}\r\n{many}\r\n", c.addr);
    let long_target = format!("GET /bkt/{} HTTP/1.1\r\nhost: {}\r\n\r\n", "k".repeat(512 * 1024), c.addr);
    for (what, head) in [("a 512 KiB header", big), ("150 headers", many), ("a 512 KiB target", long_target)] {
        let (resp, was_closed) = send_streaming(&c, head, Vec::new());
        // hyper's own answer, without an S3 body (S3 answers 400
        // RequestHeaderSectionTooLarge past 8 KiB of headers).
        assert_eq!(resp.status, 431, "{what}: {}", resp.text());
        assert_eq!(resp.header("connection"), Some("close"), "{what}");
        assert!(was_closed, "{what}: connection kept open");
        assert_eq!(c.send(Req::new("GET", "/")).status, 200, "{what}: the server stopped serving");
    }
}

// ---------------------------------------------------------------------------
// Sizes

/// A PUT (or UploadPart) announcing more than 5 GiB, as Content-Length or
/// as x-amz-decoded-content-length, is EntityTooLarge before its body is
/// sent; exactly 5 GiB is asked for its body.
#[test]
fn a_put_announcing_more_than_5_gib_is_entity_too_large_before_the_body() {
    let (dir, server) = setup();
    let c = server.client();
    let over = usize::try_from(5 * GIB + 1).expect("64-bit");
    let init = c.send(Req::new("POST", "/bkt/mpu").query("uploads"));
    let part_query = format!("partNumber=1&uploadId={}", init.elements("UploadId").pop().expect("upload id"));

    let plain = keep_alive_head(&c, &expecting("PUT", "/bkt/big", ""), over, Some("UNSIGNED-PAYLOAD"));
    let part = keep_alive_head(&c, &expecting("PUT", "/bkt/mpu", &part_query), over, Some("UNSIGNED-PAYLOAD"));
    let decoded = (5 * GIB + 1).to_string();
    let chunked_req = expecting("PUT", "/bkt/big", "")
        .header("content-encoding", "aws-chunked")
        .header("x-amz-decoded-content-length", decoded);
    let chunked = keep_alive_head(&c, &chunked_req, 1000, Some("STREAMING-UNSIGNED-PAYLOAD-TRAILER"));
    for (what, head) in [("PutObject", plain), ("UploadPart", part), ("aws-chunked PutObject", chunked)] {
        let answer = send_head_only(&c, &head);
        assert_eq!(answer.first, 400, "{what}: refused before asking for the body");
        assert_eq!(code(&answer.resp), code_of(400, "EntityTooLarge"), "{what}: {}", answer.resp.text());
        assert!(answer.closed, "{what}: connection kept open");
    }

    let exactly = usize::try_from(5 * GIB).expect("64-bit");
    let head = keep_alive_head(&c, &expecting("PUT", "/bkt/big", ""), exactly, Some("UNSIGNED-PAYLOAD"));
    assert_eq!(send_head_only(&c, &head).first, 100, "5 GiB is within the limit: the body is asked for");
    // That upload was dropped at once: nothing of it stays.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while tmp_files(&dir.path().join("data")) > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(tmp_files(&dir.path().join("data")), 0, "the dropped upload's temp file is removed");
    assert_eq!(c.send(Req::new("HEAD", "/bkt/big")).status, 404);
}

/// A signed aws-chunked body that decodes to more or fewer bytes than its
/// x-amz-decoded-content-length says is IncompleteBody, stored nowhere, and
/// the connection is closed; small (kept in the database) and large (a blob
/// file) bodies alike. The same body with the right length is stored.
#[test]
fn a_decoded_content_length_that_does_not_match_the_body_is_refused() {
    let (dir, server) = setup();
    let c = server.client();
    let data_dir = dir.path().join("data");
    for len in [10usize, 100 * 1024] {
        let data = pattern(len, len as u64);
        for declared in [len as u64 - 1, len as u64 + 1] {
            let (resp, was_closed) = put_signed_chunked(&c, "/bkt/sized", &data, declared);
            let what = format!("{len} bytes declared as {declared}");
            assert_eq!(code(&resp), code_of(400, "IncompleteBody"), "{what}: {}", resp.text());
            assert!(was_closed, "{what}: connection kept open");
            assert_eq!(c.send(Req::new("HEAD", "/bkt/sized")).status, 404, "{what}: stored");
        }
        assert_eq!(blob_files(&data_dir), 0, "a refused body left a blob file");
        let (resp, _) = put_signed_chunked(&c, "/bkt/sized", &data, len as u64);
        assert_eq!(resp.status, 200, "{len} bytes declared right: {}", resp.text());
        assert_eq!(c.send(Req::new("GET", "/bkt/sized")).body, data);
        assert_eq!(c.send(Req::new("DELETE", "/bkt/sized")).status, 204);
    }
}

// ---------------------------------------------------------------------------
// Keys

/// A path whose key does not decode to UTF-8 (a stray byte, an overlong
/// form, a surrogate, past U+10FFFF, a cut sequence) is refused, whatever
/// the operation, and nothing is stored; a bucket name likewise.
#[test]
fn keys_that_are_not_utf8_are_refused() {
    let (_dir, server) = setup();
    let c = server.client();
    for raw in ["%FF", "a%FFb", "%C0%AF", "%ED%A0%80", "%F4%90%80%80", "%E2%82", "%80"] {
        let path = format!("/bkt/{raw}");
        let resp = c.send(Req::new("PUT", &path).body(b"data"));
        assert_eq!(code(&resp), code_of(400, "InvalidArgument"), "PUT {raw}: {}", resp.text());
        assert_eq!(resp.header("connection"), Some("close"), "PUT {raw}");
        let resp = c.send(Req::new("GET", &path));
        assert_eq!(code(&resp), code_of(400, "InvalidArgument"), "GET {raw}: {}", resp.text());
        let resp = c.send(Req::new("POST", &path).query("uploads"));
        assert_eq!(code(&resp), code_of(400, "InvalidArgument"), "CreateMultipartUpload {raw}");
    }
    let resp = c.send(Req::new("PUT", "/bkt/copy").header("x-amz-copy-source", "/bkt/%FF"));
    assert_eq!(code(&resp), code_of(400, "InvalidArgument"), "copy source: {}", resp.text());
    let resp = c.send(Req::new("PUT", "/b%FFkt"));
    assert_eq!(code(&resp), code_of(400, "InvalidBucketName"), "{}", resp.text());
    assert!(listed_keys(&c).is_empty(), "nothing was stored");
}

/// Keys that look like paths are plain bytes: stored, listed and read back
/// exactly as sent, never normalised (`a/../b` is not `b`), and no file is
/// made outside the data folder, nor any file named after a key.
#[test]
fn dot_segments_are_plain_key_bytes_and_never_reach_the_filesystem() {
    let (dir, server) = setup();
    let c = server.client();
    let tmp_x_before = Path::new("/tmp/x").exists();
    let keys =
        ["../../etc/passwd", "a/../b", "..", ".", "./x", "a/./b", "/abs", "..\\..\\win", "../../../../../../tmp/x"];
    let body = |i: usize| pattern(if i.is_multiple_of(2) { 40 * 1024 } else { 100 }, i as u64);
    for (i, key) in keys.iter().enumerate() {
        let path = format!("/bkt/{}", sigv4::uri_encode(key, false));
        let resp = c.send(Req::new("PUT", &path).body(&body(i)));
        assert_eq!(resp.status, 200, "PUT {key}: {}", resp.text());
    }
    for (i, key) in keys.iter().enumerate() {
        let path = format!("/bkt/{}", sigv4::uri_encode(key, false));
        let resp = c.send(Req::new("GET", &path));
        assert_eq!((resp.status, resp.body == body(i)), (200, true), "GET {key}");
        // The fully encoded form names the same key.
        let encoded = format!("/bkt/{}", sigv4::uri_encode(key, true));
        assert_eq!(c.send(Req::new("HEAD", &encoded)).status, 200, "HEAD {encoded}");
    }
    let mut expected: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    expected.sort();
    assert_eq!(listed_keys(&c), expected);
    for never in ["/bkt/b", "/bkt/x", "/bkt/etc/passwd", "/bkt/tmp/x"] {
        assert_eq!(c.send(Req::new("GET", never)).status, 404, "{never} was made by normalising a key");
    }

    let outside: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(outside, ["data"], "files outside the data folder");
    for name in ["passwd", "x", "b", "win", "..\\..\\win"] {
        assert!(files_named(dir.path(), name).is_empty(), "a file named {name}: {:?}", files_named(dir.path(), name));
    }
    assert!(tmp_x_before || !Path::new("/tmp/x").exists(), "/tmp/x appeared");
}

/// S3 keys are at most 1024 bytes of UTF-8 (bytes, not characters): such a
/// key is stored, listed and read; one byte more is KeyTooLongError for
/// every operation that names it.
#[test]
fn keys_of_1024_bytes_are_accepted_and_1025_are_key_too_long() {
    let (_dir, server) = setup();
    let c = server.client();
    let longest_ascii = "k".repeat(1024);
    let longest_utf8 = "é".repeat(512);
    for key in [&longest_ascii, &longest_utf8] {
        let path = format!("/bkt/{}", sigv4::uri_encode(key, false));
        assert_eq!(c.send(Req::new("PUT", &path).body(b"long")).status, 200);
        assert_eq!(c.send(Req::new("GET", &path)).body, b"long");
    }
    let mut listed = listed_keys(&c);
    listed.sort();
    assert_eq!(listed, [longest_ascii.clone(), longest_utf8.clone()]);

    let too_long = [format!("{longest_ascii}k"), format!("{longest_utf8}a"), format!("{}é", "k".repeat(1023))];
    for key in &too_long {
        assert_eq!(key.len(), 1025);
        let path = format!("/bkt/{}", sigv4::uri_encode(key, false));
        for req in [
            Req::new("PUT", &path).body(b"x"),
            Req::new("GET", &path),
            Req::new("POST", &path).query("uploads"),
            Req::new("PUT", &path)
                .header("x-amz-copy-source", format!("/bkt/{}", sigv4::uri_encode(&longest_ascii, false))),
        ] {
            let what = format!("{} {}...", req.method, &path[..20]);
            let resp = c.send(req);
            assert_eq!(code(&resp), code_of(400, "KeyTooLongError"), "{what}: {}", resp.text());
        }
        let source = format!("/bkt/{}", sigv4::uri_encode(key, false));
        let resp = c.send(Req::new("PUT", "/bkt/copy").header("x-amz-copy-source", source));
        assert_eq!(code(&resp), code_of(400, "KeyTooLongError"), "copy source: {}", resp.text());
    }
    assert_eq!(listed_keys(&c).len(), 2, "nothing else was stored");
}

// ---------------------------------------------------------------------------
// Presigned URLs

/// A SigV4 presigned target for `method path`, dated `at`, valid `expires`
/// seconds, signing `host` and `signed` headers; `query` (raw) is signed too.
fn presign(
    c: &Client,
    method: &str,
    path: &str,
    query: &str,
    at: SystemTime,
    expires: u64,
    signed: &[(&str, &str)],
) -> String {
    let date = amz_date(at);
    let scope = format!("{}/{}/s3/aws4_request", &date[..8], c.region);
    let mut headers: Vec<(String, String)> = vec![("host".into(), c.addr.clone())];
    headers.extend(signed.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    headers.sort();
    let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    let signed_list = names.join(";");
    let canonical_headers: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let dec = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    let mut pairs: Vec<(String, String)> = vec![
        ("X-Amz-Algorithm".into(), "AWS4-HMAC-SHA256".into()),
        ("X-Amz-Credential".into(), format!("{}/{scope}", c.access_key)),
        ("X-Amz-Date".into(), date.clone()),
        ("X-Amz-Expires".into(), expires.to_string()),
        ("X-Amz-SignedHeaders".into(), signed_list.clone()),
    ];
    for p in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        pairs.push((dec(k), dec(v)));
    }
    let creq = sigv4::canonical_request(
        method,
        path,
        &sigv4::canonical_query(&pairs),
        &canonical_headers,
        &signed_list,
        "UNSIGNED-PAYLOAD",
    );
    let key = sigv4::signing_key(&c.secret_key, &date[..8], &c.region, "s3");
    pairs.push(("X-Amz-Signature".into(), sigv4::hmac_hex(&key, &sigv4::string_to_sign(&date, &scope, &creq))));
    format!("{path}?{}", sigv4::canonical_query(&pairs))
}

/// Replaces the value of query parameter `name` in `target`.
fn with_param(target: &str, name: &str, value: &str) -> String {
    let (path, query) = target.split_once('?').expect("a query");
    let pairs: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if k == name => format!("{k}={value}"),
            _ => p.to_string(),
        })
        .collect();
    assert_ne!(pairs.join("&"), query, "{name} not in {target}");
    format!("{path}?{}", pairs.join("&"))
}

/// A presigned URL works until `X-Amz-Date + X-Amz-Expires`, then is
/// AccessDenied ("Request has expired"); one dated more than 15 minutes
/// ahead is not valid yet; one asking for more than 7 days is refused.
#[test]
fn presigned_urls_expire() {
    let (_dir, server) = setup();
    let c = server.client();
    assert_eq!(c.send(Req::new("PUT", "/bkt/obj").body(b"secret")).status, 200);
    let now = SystemTime::now();

    let fresh = presign(&c, "GET", "/bkt/obj", "", now - Duration::from_secs(1800), 3600, &[]);
    let resp = c.send_raw("GET", &fresh, &[], b"");
    assert_eq!((resp.status, resp.body.as_slice()), (200, &b"secret"[..]), "{}", resp.text());

    let expired = presign(&c, "GET", "/bkt/obj", "", now - Duration::from_secs(7200), 3600, &[]);
    let resp = c.send_raw("GET", &expired, &[], b"");
    assert_eq!(code(&resp), code_of(403, "AccessDenied"), "{}", resp.text());
    assert!(resp.text().contains("Request has expired"), "{}", resp.text());
    let just_expired = presign(&c, "GET", "/bkt/obj", "", now - Duration::from_secs(62), 60, &[]);
    assert_eq!(code(&c.send_raw("GET", &just_expired, &[], b"")), code_of(403, "AccessDenied"));
    let resp =
        c.send_raw("PUT", &presign(&c, "PUT", "/bkt/obj", "", now - Duration::from_secs(7200), 3600, &[]), &[], b"new");
    assert_eq!(code(&resp), code_of(403, "AccessDenied"), "expired PUT: {}", resp.text());

    let future = presign(&c, "GET", "/bkt/obj", "", now + Duration::from_secs(3600), 3600, &[]);
    let resp = c.send_raw("GET", &future, &[], b"");
    assert_eq!(code(&resp), code_of(403, "AccessDenied"), "dated an hour ahead: {}", resp.text());

    let too_long = presign(&c, "GET", "/bkt/obj", "", now, 604_801, &[]);
    let resp = c.send_raw("GET", &too_long, &[], b"");
    assert_eq!(code(&resp), code_of(400, "AuthorizationQueryParametersError"), "{}", resp.text());
    assert_eq!(c.send(Req::new("GET", "/bkt/obj")).body, b"secret", "nothing was written");
}

/// A presigned URL is for one method, one key and one query: used with
/// another method, for another key or bucket, with a parameter added,
/// changed or dropped, or with a bent signature, it is refused
/// (SignatureDoesNotMatch; AccessDenied, InvalidAccessKeyId or
/// AuthorizationQueryParametersError where S3 answers those) and changes nothing.
#[test]
fn a_presigned_url_cannot_be_bent_to_another_request() {
    let (_dir, server) = setup();
    let c = server.client();
    assert_eq!(c.send(Req::new("PUT", "/other")).status, 200);
    for path in ["/bkt/obj", "/bkt/victim", "/other/obj"] {
        assert_eq!(c.send(Req::new("PUT", path).body(b"original")).status, 200);
    }
    let now = SystemTime::now();
    let get = presign(&c, "GET", "/bkt/obj", "", now, 3600, &[]);
    let put = presign(&c, "PUT", "/bkt/upload", "", now, 3600, &[]);
    let typed = presign(&c, "GET", "/bkt/obj", "response-content-type=text%2Fplain", now, 3600, &[]);
    assert_eq!(c.send_raw("GET", &get, &[], b"").status, 200, "the URL itself works");
    assert_eq!(c.send_raw("GET", &get, &[], b"").status, 200, "and works again: S3 allows reuse until it expires");
    assert_eq!(c.send_raw("GET", &typed, &[], b"").header("content-type"), Some("text/plain"));

    let mismatch = code_of(403, "SignatureDoesNotMatch");
    let cases: Vec<(&str, &str, String, (u16, String))> = vec![
        ("method GET -> DELETE", "DELETE", get.clone(), mismatch.clone()),
        ("method GET -> PUT", "PUT", get.clone(), mismatch.clone()),
        ("method GET -> HEAD", "HEAD", get.clone(), code_of(403, "(no body)")),
        ("method PUT -> POST", "POST", put.clone(), mismatch.clone()),
        ("key obj -> victim", "GET", get.replacen("/bkt/obj", "/bkt/victim", 1), mismatch.clone()),
        ("PUT reused for another key", "PUT", put.replacen("/bkt/upload", "/bkt/victim", 1), mismatch.clone()),
        ("bucket bkt -> other", "GET", get.replacen("/bkt/obj", "/other/obj", 1), mismatch.clone()),
        ("key with a trailing slash", "GET", get.replacen("/bkt/obj", "/bkt/obj/", 1), mismatch.clone()),
        ("key encoded to another key", "GET", get.replacen("/bkt/obj", "/bkt/ob%6A%2F", 1), mismatch.clone()),
        ("parameter added: acl", "GET", format!("{get}&acl"), mismatch.clone()),
        ("parameter added: tagging (PUT becomes PutObjectTagging)", "PUT", format!("{put}&tagging"), mismatch.clone()),
        ("parameter added: versionId", "GET", format!("{get}&versionId=null"), mismatch.clone()),
        (
            "parameter added: response-content-type",
            "GET",
            format!("{get}&response-content-type=text%2Fhtml"),
            mismatch.clone(),
        ),
        (
            "parameter changed: response-content-type",
            "GET",
            with_param(&typed, "response-content-type", "text%2Fhtml"),
            mismatch.clone(),
        ),
        (
            "parameter dropped: response-content-type",
            "GET",
            typed.replace("&response-content-type=text%2Fplain", ""),
            mismatch.clone(),
        ),
        ("X-Amz-Expires changed", "GET", with_param(&get, "X-Amz-Expires", "604800"), mismatch.clone()),
        (
            "X-Amz-Date changed by a second",
            "GET",
            with_param(&get, "X-Amz-Date", &amz_date(now - Duration::from_secs(1))),
            mismatch.clone(),
        ),
        (
            "X-Amz-Credential with another key",
            "GET",
            get.replacen(&c.access_key, "AKIAOTHERACCESSKEY00", 1),
            code_of(403, "InvalidAccessKeyId"),
        ),
        ("X-Amz-Signature bent", "GET", bend_signature(&get), mismatch.clone()),
        (
            "X-Amz-Signature dropped",
            "GET",
            drop_param(&get, "X-Amz-Signature"),
            code_of(400, "AuthorizationQueryParametersError"),
        ),
        (
            "X-Amz-Algorithm changed",
            "GET",
            with_param(&get, "X-Amz-Algorithm", "AWS4-HMAC-SHA1"),
            code_of(400, "AuthorizationQueryParametersError"),
        ),
    ];
    for (what, method, target, expected) in cases {
        let resp = c.send_raw(method, &target, &[], if method == "PUT" { b"forged" } else { b"" });
        match method {
            // A HEAD answer has no body to carry a code.
            "HEAD" => assert_eq!(resp.status, 403, "{what}"),
            _ => assert_eq!(code(&resp), expected, "{what}: {target}: {}", resp.text()),
        }
    }
    for path in ["/bkt/obj", "/bkt/victim", "/other/obj"] {
        assert_eq!(c.send(Req::new("GET", path)).body, b"original", "{path} was changed");
    }
    assert_eq!(c.send(Req::new("HEAD", "/bkt/upload")).status, 404);
    assert!(c.send(Req::new("GET", "/bkt/obj").query("tagging")).elements("Tag").is_empty());
}

fn bend_signature(target: &str) -> String {
    let (rest, sig) = target.rsplit_once("X-Amz-Signature=").expect("signature");
    let mut sig: Vec<u8> = sig.bytes().collect();
    sig[10] = if sig[10] == b'0' { b'1' } else { b'0' };
    format!("{rest}X-Amz-Signature={}", String::from_utf8(sig).unwrap())
}

fn drop_param(target: &str, name: &str) -> String {
    let (path, query) = target.split_once('?').expect("a query");
    let kept: Vec<&str> = query.split('&').filter(|p| !p.starts_with(&format!("{name}="))).collect();
    format!("{path}?{}", kept.join("&"))
}

/// Headers a presigned URL signs must come with the signed values, and its
/// X-Amz-SignedHeaders cannot be changed: adding a name, dropping one, or
/// leaving out host is refused.
#[test]
fn presigned_signed_headers_cannot_be_changed() {
    let (_dir, server) = setup();
    let c = server.client();
    assert_eq!(c.send(Req::new("PUT", "/bkt/obj").body(b"0123456789")).status, 200);
    let now = SystemTime::now();
    let ranged = presign(&c, "GET", "/bkt/obj", "", now, 3600, &[("range", "bytes=0-1")]);
    let resp = c.send_raw("GET", &ranged, &[("range", "bytes=0-1")], b"");
    assert_eq!((resp.status, resp.body.as_slice()), (206, &b"01"[..]), "{}", resp.text());

    let get = presign(&c, "GET", "/bkt/obj", "", now, 3600, &[]);
    let mismatch = code_of(403, "SignatureDoesNotMatch");
    type Case<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, (u16, String));
    let cases: Vec<Case> = vec![
        ("signed range sent with another value", ranged.clone(), vec![("range", "bytes=0-9")], mismatch.clone()),
        ("signed range not sent", ranged.clone(), vec![], mismatch.clone()),
        (
            "range dropped from SignedHeaders",
            with_param(&ranged, "X-Amz-SignedHeaders", "host"),
            vec![("range", "bytes=0-9")],
            mismatch.clone(),
        ),
        (
            "range added to SignedHeaders",
            with_param(&get, "X-Amz-SignedHeaders", "host%3Brange"),
            vec![("range", "bytes=0-1")],
            mismatch.clone(),
        ),
        (
            "absent header added to SignedHeaders",
            with_param(&get, "X-Amz-SignedHeaders", "host%3Bx-amz-date"),
            vec![],
            mismatch.clone(),
        ),
        (
            "host left out of SignedHeaders",
            with_param(&get, "X-Amz-SignedHeaders", "range"),
            vec![("range", "bytes=0-1")],
            code_of(403, "AccessDenied"),
        ),
        (
            "SignedHeaders emptied",
            with_param(&get, "X-Amz-SignedHeaders", ""),
            vec![],
            code_of(400, "AuthorizationQueryParametersError"),
        ),
    ];
    for (what, target, headers, expected) in cases {
        let resp = c.send_raw("GET", &target, &headers, b"");
        assert_eq!(code(&resp), expected, "{what}: {target}: {}", resp.text());
    }
}
