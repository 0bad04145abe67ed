//! Issue 9 item 3: `serve` raises its open-files soft limit to the hard
//! limit at start-up. Started under a soft limit of 256 (a common default is
//! 1,024), a server that kept it could not accept a new connection once a
//! few hundred uploads were in flight (each holds a socket and a temp file).
//! A test binary of its own: the limit is changed for the whole process.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use common::{pattern, set_soft_nofile, Client, Req, Server};

const LOW_SOFT_LIMIT: u64 = 256;
const UPLOADS: usize = 400;

/// `Client::send_partial`, but failing within seconds when the server stops
/// accepting (a full accept queue makes `connect` retry for minutes).
fn start_upload(c: &Client, path: &str, body: &[u8], declared: usize) -> TcpStream {
    let addr = c.addr.parse().expect("server address");
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("connecting for upload {path}: {e} (the server stopped accepting)"));
    let head = c.signed_head(&Req::new("PUT", path), SystemTime::now(), declared, Some("UNSIGNED-PAYLOAD"));
    stream.write_all(head.as_bytes()).expect("write head");
    stream.write_all(body).expect("write body");
    stream
}

#[test]
fn server_started_under_a_low_soft_limit_serves_beyond_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The server inherits the low soft limit; this process raises its own back.
    set_soft_nofile(Some(LOW_SOFT_LIMIT));
    let server = Server::start(dir.path());
    set_soft_nofile(None);
    let c = server.client();
    assert_eq!(c.send(Req::new("PUT", "/fds")).status, 200);

    // Uploads past the inline size: a socket and a temp file each on the server.
    let body = pattern(40 * 1024, 3);
    let uploads: Vec<TcpStream> =
        (0..UPLOADS).map(|i| start_upload(&c, &format!("/fds/up-{i}"), &body, 1024 * 1024)).collect();
    std::thread::sleep(Duration::from_millis(500));

    let (tx, rx) = mpsc::channel();
    let addr = server.addr.clone();
    std::thread::spawn(move || {
        let c = Client::new(&addr);
        let _ = tx.send(c.send(Req::new("GET", "/fds").query("list-type=2")).status);
    });
    let status = rx.recv_timeout(Duration::from_secs(2));
    assert_eq!(status, Ok(200), "a listing beside {UPLOADS} uploads, server started with soft limit {LOW_SOFT_LIMIT}");
    drop(uploads);
}
