//! Issue 9 item 3: uploads whose body stops arriving. Each one used to park a
//! blocking thread (and a writer thread) until its client went away; a few
//! hundred of them took every blocking thread, and every other client's
//! GET, PUT and listing hung.
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
use std::sync::mpsc;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};

use common::{
    connect_with_small_receive_buffer, pattern, read_response, set_soft_nofile, tmp_files, Client, Req, Server,
};

const MIB: usize = 1024 * 1024;

/// Uploads left hanging, far more than tokio's 512 blocking threads.
const STALLED: usize = 2_500;

/// Opens an upload of 2 MiB that sends its headers and `sent` body bytes, then nothing.
fn stall(c: &Client, key: &str, sent: usize) -> TcpStream {
    let body = pattern(sent, 7);
    c.send_partial(Req::new("PUT", key).body(&body), 2 * MIB)
}

/// Runs `op` on a thread and fails unless it finishes within `limit` (a late
/// thread is left behind; stopping the server ends it).
fn within(limit: Duration, what: &str, op: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let start = Instant::now();
    std::thread::spawn(move || {
        op();
        let _ = tx.send(start.elapsed());
    });
    match rx.recv_timeout(limit) {
        Ok(took) => eprintln!("{what}: {took:?}"),
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what} took over {limit:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what} failed (see its panic above)"),
    }
}

/// A client of `addr` with the test credentials, to move to another thread.
fn client_of(addr: &str) -> Client {
    Client::new(addr)
}

#[test]
fn stalled_uploads_do_not_starve_other_clients() {
    let nofile = set_soft_nofile(None);
    assert!(nofile as usize > 2 * STALLED + 200, "the hard open-files limit ({nofile}) is too low for this test");
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let c = server.client();
    assert_eq!(c.send(Req::new("PUT", "/busy")).status, 200);
    let object = pattern(MIB, 1);
    assert_eq!(c.send(Req::new("PUT", "/busy/existing").body(&object)).status, 200);
    // What a 1 MiB PUT takes here with nothing stalled: on a machine busy
    // with other work the limit below grows with it (starved clients waited
    // for more than 20 s, so the test still tells them apart).
    let started = Instant::now();
    assert_eq!(c.send(Req::new("PUT", "/busy/baseline").body(&pattern(MIB, 3))).status, 200);
    let baseline = started.elapsed();

    // Headers only for most; every fourth also sends the first 64-100 KiB,
    // enough to have a temp file and (before the fix) a writer thread.
    let stalled: Vec<TcpStream> = (0..STALLED)
        .map(|i| {
            let sent = if i % 4 == 0 { 64 * 1024 + (i % 37) * 1024 } else { 0 };
            stall(&c, &format!("/busy/stalled-{i}"), sent)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500)); // let the server take them all in

    let limit = Duration::from_secs(1).max(baseline * 20);
    eprintln!("a 1 MiB PUT alone took {baseline:?}; limit beside stalled uploads {limit:?}");
    let c = client_of(&server.addr);
    within(limit, "a 1 MiB GET beside stalled uploads", move || {
        let got = c.send(Req::new("GET", "/busy/existing"));
        assert_eq!(got.body.len(), MIB, "GET status {}", got.status);
    });
    let c = client_of(&server.addr);
    within(limit, "a 1 MiB PUT beside stalled uploads", move || {
        let body = pattern(MIB, 2);
        assert_eq!(c.send(Req::new("PUT", "/busy/fresh").body(&body)).status, 200);
    });
    let c = client_of(&server.addr);
    within(limit, "a listing beside stalled uploads", move || {
        let listed = c.send(Req::new("GET", "/busy").query("list-type=2"));
        assert_eq!(listed.elements("Key"), vec!["baseline", "existing", "fresh"]);
    });
    drop(stalled);
}

#[test]
fn stalled_body_is_aborted_after_body_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(dir.path(), &["--body-timeout", "1s"]);
    let c = server.client();
    assert_eq!(c.send(Req::new("PUT", "/slow")).status, 200);
    let start = Instant::now();
    // A large body that stopped after 100 KiB (it has a temp file), one that
    // never started, and a small (inline) one that stopped half way.
    let mut sockets = [
        stall(&c, "/slow/partial", 100 * 1024),
        stall(&c, "/slow/headers-only", 0),
        c.send_partial(Req::new("PUT", "/slow/small").body(&[7u8; 1000]), 2000),
    ];
    let deadline = Instant::now() + Duration::from_millis(800);
    while tmp_files(dir.path()) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(tmp_files(dir.path()), 1, "the partial large body is being written to a temp file");
    for socket in &mut sockets {
        socket.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let resp = read_response(socket, false);
        assert_eq!(resp.status, 400, "{}", resp.text());
        assert_eq!(resp.error_code().as_deref(), Some("RequestTimeout"));
        assert_eq!(resp.header("connection"), Some("close"));
        let mut rest = [0u8; 1];
        match socket.read(&mut rest) {
            Ok(0) => {}
            Ok(_) => panic!("data after the RequestTimeout response"),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Err(e) => panic!("the connection was not closed: {e}"),
        }
    }
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(900), "aborted before the timeout ({waited:?})");
    assert!(waited < Duration::from_secs(4), "aborted long after the 1 s timeout ({waited:?})");
    let deadline = Instant::now() + Duration::from_secs(2);
    while tmp_files(dir.path()) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(tmp_files(dir.path()), 0, "the aborted upload's temp file is removed");
    let listed = c.send(Req::new("GET", "/slow").query("list-type=2"));
    assert!(listed.elements("Key").is_empty(), "nothing of an aborted upload is visible");
}

/// The receive loop processes a partial batch when the client pauses, then
/// goes on gathering: a body that arrives in bursts, with pauses longer than
/// that wait, across the inline size and the batch size, is stored whole.
#[test]
fn body_arriving_in_bursts_is_stored_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let c = server.client();
    assert_eq!(c.send(Req::new("PUT", "/bursts")).status, 200);
    let body = pattern(3 * MIB + 12_345, 11);
    let cuts = [0, 1000, 40 * 1024, 100 * 1024, MIB + 7, 2 * MIB + 500_000, body.len()];
    let mut socket = c.send_partial(Req::new("PUT", "/bursts/obj"), body.len());
    for piece in cuts.windows(2) {
        socket.write_all(&body[piece[0]..piece[1]]).expect("write a burst");
        std::thread::sleep(Duration::from_millis(30));
    }
    let put = read_response(&mut socket, false);
    assert_eq!(put.status, 200, "{}", put.text());
    let etag = format!("\"{}\"", hex::encode(Md5::digest(&body)));
    assert_eq!(put.header("etag"), Some(etag.as_str()));
    assert!(c.send(Req::new("GET", "/bursts/obj")).body == body, "the object reads back byte for byte");
}

/// Downloads whose client stops reading: each used to park a blocking thread
/// in the reader's send until the client went away, so 600 of them (more
/// than the 512 blocking threads) hung every other client. Now the reader
/// is a task that only takes a thread for a read the client has room for.
#[test]
fn stalled_readers_do_not_starve_other_clients() {
    const READERS: usize = 600;
    let nofile = set_soft_nofile(None);
    assert!(nofile as usize > 2 * READERS + 200, "the hard open-files limit ({nofile}) is too low for this test");
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let c = server.client();
    assert_eq!(c.send(Req::new("PUT", "/reads")).status, 200);
    let big = pattern(16 * MIB, 3);
    assert_eq!(c.send(Req::new("PUT", "/reads/big").body(&big)).status, 200);
    let small = pattern(MIB, 4);
    assert_eq!(c.send(Req::new("PUT", "/reads/small").body(&small)).status, 200);
    let started = Instant::now();
    assert_eq!(c.send(Req::new("GET", "/reads/small")).body.len(), MIB);
    let baseline = started.elapsed(); // as in the test above

    // Each asks for 16 MiB and reads nothing: the server's sends fill the
    // socket buffers and then wait for a reader that never comes.
    let stalled: Vec<TcpStream> = (0..READERS)
        .map(|_| {
            let mut stream = connect_with_small_receive_buffer(&c.addr);
            let head = c.signed_head(&Req::new("GET", "/reads/big"), std::time::SystemTime::now(), 0, None);
            stream.write_all(head.as_bytes()).expect("send GET");
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_secs(4)); // let the server start every response

    let limit = Duration::from_secs(1).max(baseline * 20);
    eprintln!("a 1 MiB GET alone took {baseline:?}; limit beside stalled readers {limit:?}");
    let c = client_of(&server.addr);
    within(limit, "a listing beside stalled readers", move || {
        let listed = c.send(Req::new("GET", "/reads").query("list-type=2"));
        assert_eq!(listed.elements("Key"), vec!["big", "small"]);
    });
    let c = client_of(&server.addr);
    within(limit, "a 1 MiB GET beside stalled readers", move || {
        assert_eq!(c.send(Req::new("GET", "/reads/small")).body.len(), MIB);
    });
    drop(stalled);
}

/// A response whose client stops reading is cut off after `--body-timeout`
/// without progress, whatever produces it. Large object bodies already end
/// when their reader gives up (`stalled_readers...`); a response built in
/// memory, such as a listing of 1,000 long keys (1.4 MB, more than the
/// socket buffers hold), used to keep its connection and memory for as long
/// as the client stayed.
#[test]
fn a_response_nobody_reads_is_dropped_after_the_body_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(dir.path(), &["--body-timeout", "1s"]);
    let c = server.client();
    assert_eq!(c.send(Req::new("PUT", "/long")).status, 200);
    for i in 0..1000 {
        let key = format!("{i:04}{}", "k".repeat(1016));
        assert_eq!(c.send(Req::new("PUT", &format!("/long/{key}")).body(b"x")).status, 200);
    }
    let full = c.send(Req::new("GET", "/long").query("list-type=2&fetch-owner=true")).body.len();
    assert!(full > 1_300_000, "the listing is larger than the socket buffers ({full} bytes)");

    let mut stream = connect_with_small_receive_buffer(&c.addr);
    let listing = Req::new("GET", "/long").query("list-type=2&fetch-owner=true");
    let head = c.signed_head(&listing, std::time::SystemTime::now(), 0, None);
    stream.write_all(head.as_bytes()).expect("send the request");
    std::thread::sleep(Duration::from_secs(4)); // reads nothing, well past the timeout

    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("read timeout");
    let mut received = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match std::io::Read::read(&mut stream, &mut buf) {
            Ok(0) => break,
            Ok(n) => received += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the server kept the stalled connection open: {e} after {received} bytes"),
        }
    }
    assert!(received < full, "the response was cut short: {received} of about {full} bytes");
    assert_eq!(c.send(Req::new("GET", "/long").query("list-type=2")).status, 200, "others are served");
}
