//! Test support: runs the real `tessera` binary on 127.0.0.1 and talks to it
//! with a minimal SigV4-signing HTTP/1.1 client over a plain TCP socket, so a
//! test can also stop mid-body or kill the server at any moment.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]
#![allow(dead_code)]

#[cfg(feature = "postgres")]
pub mod pg;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use sha2::{Digest, Sha256};
use tessera::auth::sigv4;

pub const ACCESS_KEY: &str = "TESTACCESSKEY0000001";
pub const SECRET_KEY: &str = "test/secret/key/0000000000000000000000000";
pub const REGION: &str = "us-east-1";

/// A running `tessera serve` with its own data folder.
pub struct Server {
    child: Child,
    pub addr: String,
    pub data: PathBuf,
}

impl Server {
    pub fn start(data: &Path) -> Server {
        Server::start_with(data, &[])
    }

    /// Starts with extra `serve` flags.
    pub fn start_with(data: &Path, extra: &[&str]) -> Server {
        Server::try_start_with(data, extra, Stdio::inherit()).expect("server exited before listening")
    }

    /// Starts with extra `serve` flags and stderr going to `stderr`; None if
    /// the server exits before listening (its reason is then in `stderr`).
    pub fn try_start_with(data: &Path, extra: &[&str], stderr: impl Into<Stdio>) -> Option<Server> {
        Server::try_start_on("127.0.0.1:0", data, extra, stderr)
    }

    /// Starts listening on `listen` (a fixed address lets a restarted server
    /// be found where its clients left it; see [`free_addr`]).
    pub fn start_on(listen: &str, data: &Path) -> Server {
        Server::try_start_on(listen, data, &[], Stdio::inherit()).expect("server exited before listening")
    }

    pub fn try_start_on(listen: &str, data: &Path, extra: &[&str], stderr: impl Into<Stdio>) -> Option<Server> {
        Server::try_start_with_env(listen, data, extra, &[], stderr)
    }

    /// [`Server::try_start_on`] with extra environment variables (which may
    /// replace the defaults, `TESSERA_LOG=warn` for one).
    pub fn try_start_with_env(
        listen: &str,
        data: &Path,
        extra: &[&str],
        env: &[(&str, &Path)],
        stderr: impl Into<Stdio>,
    ) -> Option<Server> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["serve", "--listen", listen, "--data"])
            .arg(data)
            .args(extra)
            .args(suite_backend_args(data, extra))
            .env("TESSERA_ACCESS_KEY", ACCESS_KEY)
            .env("TESSERA_SECRET_KEY", SECRET_KEY)
            .env("TESSERA_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start tessera");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => match line.split("listening on ").nth(1) {
                    // `http://ADDR`, or `https://ADDR` with --tls-cert.
                    Some(url) => break url.trim().split("://").last().unwrap_or_default().to_string(),
                    None => continue,
                },
                _ => {
                    let _ = child.wait();
                    return None;
                }
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Some(Server { child, addr, data: data.to_path_buf() })
    }

    pub fn client(&self) -> Client {
        Client::new(&self.addr)
    }

    /// The server's process id (to read its CPU time from /proc, or send it a signal).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A client of this server signing with `other`'s keys.
    pub fn client_as(&self, other: &Client) -> Client {
        Client { addr: self.addr.clone(), ..other.clone() }
    }

    /// `kill -9`: no chance to flush or clean anything.
    pub fn kill9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }

    /// SIGTERM, then wait for the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("send SIGTERM");
        self.child.wait().expect("wait")
    }
}

/// The suite's backend: with `TESSERA_TEST_META=postgres` every server a
/// test starts (but those given `--meta` by the test itself) is a gateway
/// over a schema of its own in the cluster of `TESSERA_TEST_PG`, with a
/// 1 s `--unlink-grace` so freed files go about as soon as on redb. A data
/// folder keeps its schema across restarts within the test (the schemas
/// go with the throw-away cluster).
pub fn suite_backend_args(data: &Path, extra: &[&str]) -> Vec<String> {
    if extra.contains(&"--meta") {
        return Vec::new();
    }
    match suite_meta_args(data) {
        meta if meta.is_empty() => meta,
        meta => [meta, ["--gateway-id", SUITE_GATEWAY, "--unlink-grace", "1s"].map(str::to_string).to_vec()].concat(),
    }
}

/// The gateway id of the suite's servers over PostgreSQL.
const SUITE_GATEWAY: &str = "suite";

/// The temp folder of the suite's servers on `data` (uploads in progress):
/// `tmp/`, or over PostgreSQL their gateway's own, `gateways/suite/tmp/`.
pub fn tmp_dir(data: &Path) -> PathBuf {
    match on_postgres() {
        true => data.join("gateways").join(SUITE_GATEWAY).join("tmp"),
        false => data.join("tmp"),
    }
}

/// Whether this run's servers keep their metadata in PostgreSQL
/// (`TESSERA_TEST_META=postgres`) rather than in the data folder's `meta.redb`.
pub fn on_postgres() -> bool {
    std::env::var("TESSERA_TEST_META").as_deref() == Ok("postgres")
}

/// For a test of redb itself (its file, its header, its repair, its pages):
/// the PostgreSQL run has nothing of it to test. Says so and returns true
/// there, so the test returns; false on redb.
pub fn skip_unless_redb(what: &str) -> bool {
    let skip = on_postgres();
    if skip {
        eprintln!("not run over PostgreSQL (no meta.redb): {what}");
    }
    skip
}

/// Under `TESSERA_TEST_META=postgres`, `--meta URL` of the schema of the
/// data folder `data` (made at first use): what servers on that folder
/// use, and administration commands given it reach the same users and
/// stats, whether a server runs or not. Empty otherwise.
#[cfg(feature = "postgres")]
pub fn suite_meta_args(data: &Path) -> Vec<String> {
    static SCHEMAS: std::sync::Mutex<Vec<(PathBuf, String)>> = std::sync::Mutex::new(Vec::new());
    if !on_postgres() {
        return Vec::new();
    }
    let mut schemas = SCHEMAS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let url = match schemas.iter().find(|(folder, _)| folder == data) {
        Some((_, url)) => url.clone(),
        None => {
            let url = pg::Db::new().expect("TESSERA_TEST_META=postgres needs TESSERA_TEST_PG").keep();
            pg::migrate(&url);
            schemas.push((data.to_path_buf(), url.clone()));
            url
        }
    };
    vec!["--meta".to_string(), url]
}

#[cfg(not(feature = "postgres"))]
pub fn suite_meta_args(_data: &Path) -> Vec<String> {
    assert!(std::env::var_os("TESSERA_TEST_META").is_none(), "TESSERA_TEST_META needs the `postgres` feature");
    Vec::new()
}

/// Under the PostgreSQL run, runs `sql` in the schema of the servers on
/// `data` (a test's edit of their stored state); the first column of each
/// row it returns, as text.
#[cfg(feature = "postgres")]
pub fn suite_sql(data: &Path, sql: &str) -> Vec<String> {
    let meta = suite_meta_args(data);
    let url = meta.get(1).expect("suite_sql is for the PostgreSQL run (TESSERA_TEST_META=postgres)");
    pg::query_texts(url, sql)
}

#[cfg(not(feature = "postgres"))]
pub fn suite_sql(_data: &Path, _sql: &str) -> Vec<String> {
    panic!("suite_sql needs the `postgres` feature")
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `<Code>` of an S3 error body.
    pub fn error_code(&self) -> Option<String> {
        self.elements("Code").into_iter().next()
    }

    /// The text of every `<name>` element of the body, in order.
    pub fn elements(&self, name: &str) -> Vec<String> {
        let (open, close) = (format!("<{name}>"), format!("</{name}>"));
        let text = self.text();
        text.split(&open).skip(1).filter_map(|s| s.split(&close).next()).map(str::to_string).collect()
    }
}

#[derive(Clone)]
pub struct Client {
    pub addr: String,
    pub access_key: String,
    pub secret_key: String,
    /// The Host header to send (default: `addr`), for virtual-hosted style.
    pub host: Option<String>,
    /// The region requests are signed for (the server's `--region`).
    pub region: String,
}

impl Client {
    /// A client of the server at `addr` with the test credentials.
    pub fn new(addr: &str) -> Client {
        Client {
            addr: addr.to_string(),
            access_key: ACCESS_KEY.into(),
            secret_key: SECRET_KEY.into(),
            host: None,
            region: REGION.into(),
        }
    }
}

/// A request to send: `path` is raw (already percent-encoded), `query` raw too.
pub struct Req<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: Vec<(&'a str, String)>,
    pub body: &'a [u8],
}

impl<'a> Req<'a> {
    pub fn new(method: &'a str, path: &'a str) -> Req<'a> {
        Req { method, path, query: "", headers: Vec::new(), body: b"" }
    }
    pub fn query(mut self, q: &'a str) -> Self {
        self.query = q;
        self
    }
    pub fn header(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    pub fn body(mut self, body: &'a [u8]) -> Self {
        self.body = body;
        self
    }
}

pub fn amz_date(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).expect("clock").as_secs() as i64;
    let dt = time::OffsetDateTime::from_unix_timestamp(secs).expect("time");
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

impl Client {
    /// Builds the signed request head (SigV4, payload hashed) for `req` at time `t`.
    /// `payload_hash` defaults to the SHA-256 of `req.body`.
    pub fn signed_head(&self, req: &Req, t: SystemTime, declared_len: usize, payload_hash: Option<&str>) -> String {
        let date = amz_date(t);
        let payload_hash = payload_hash.map_or_else(|| hex::encode(Sha256::digest(req.body)), str::to_string);
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), self.host.clone().unwrap_or_else(|| self.addr.clone())),
            ("x-amz-content-sha256".into(), payload_hash.clone()),
            ("x-amz-date".into(), date.clone()),
        ];
        for (n, v) in &req.headers {
            headers.push((n.to_ascii_lowercase(), v.clone()));
        }
        headers.sort();
        let signed: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
        let signed_list = signed.join(";");
        let canonical_headers: String = headers.iter().map(|(n, v)| format!("{n}:{}\n", v.trim())).collect();
        let pairs: Vec<(String, String)> = req
            .query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                let dec = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
                (dec(k), dec(v))
            })
            .collect();
        let canonical_query = sigv4::canonical_query(&pairs);
        let creq = sigv4::canonical_request(
            req.method,
            req.path,
            &canonical_query,
            &canonical_headers,
            &signed_list,
            &payload_hash,
        );
        let scope = format!("{}/{}/s3/aws4_request", &date[..8], self.region);
        let sts = sigv4::string_to_sign(&date, &scope, &creq);
        let key = sigv4::signing_key(&self.secret_key, &date[..8], &self.region, "s3");
        let signature = sigv4::hmac_hex(&key, &sts);
        let target = if req.query.is_empty() { req.path.to_string() } else { format!("{}?{}", req.path, req.query) };
        let mut head = format!("{} {target} HTTP/1.1\r\n", req.method);
        for (n, v) in &headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str(&format!(
            "authorization: AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_list}, Signature={signature}\r\n",
            self.access_key
        ));
        head.push_str(&format!("content-length: {declared_len}\r\nconnection: close\r\n\r\n"));
        head
    }

    pub fn send(&self, req: Req) -> Response {
        self.send_at(req, SystemTime::now())
    }

    pub fn send_at(&self, req: Req, t: SystemTime) -> Response {
        let mut stream = self.connect();
        let head = self.signed_head(&req, t, req.body.len(), None);
        stream.write_all(head.as_bytes()).expect("write head");
        // A server may answer an error before reading the body and close the
        // connection (as S3 does): the answer is still there to read.
        let _ = stream.write_all(req.body);
        read_response(&mut stream, req.method == "HEAD")
    }

    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(&self.addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        stream
    }

    /// A SigV4 presigned target (`path?query`) for `method path`, valid for an
    /// hour, signing `host` only (what SDKs do by default). `query` (raw,
    /// already encoded) joins the signed query.
    pub fn presigned_target(&self, method: &str, path: &str, query: &str) -> String {
        let date = amz_date(SystemTime::now());
        let scope = format!("{}/{}/s3/aws4_request", &date[..8], self.region);
        let credential = format!("{}/{scope}", self.access_key);
        let dec = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
        let mut pairs: Vec<(String, String)> = vec![
            ("X-Amz-Algorithm".into(), "AWS4-HMAC-SHA256".into()),
            ("X-Amz-Credential".into(), credential),
            ("X-Amz-Date".into(), date.clone()),
            ("X-Amz-Expires".into(), "3600".into()),
            ("X-Amz-SignedHeaders".into(), "host".into()),
        ];
        for p in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            pairs.push((dec(k), dec(v)));
        }
        let host = self.host.clone().unwrap_or_else(|| self.addr.clone());
        let creq = sigv4::canonical_request(
            method,
            path,
            &sigv4::canonical_query(&pairs),
            &format!("host:{host}\n"),
            "host",
            "UNSIGNED-PAYLOAD",
        );
        let key = sigv4::signing_key(&self.secret_key, &date[..8], &self.region, "s3");
        pairs.push(("X-Amz-Signature".into(), sigv4::hmac_hex(&key, &sigv4::string_to_sign(&date, &scope, &creq))));
        format!("{path}?{}", sigv4::canonical_query(&pairs))
    }

    /// Sends `method target` with exactly `headers` (plus host, length and
    /// `connection: close`) and `body`: for presigned targets and forged requests.
    pub fn send_raw(&self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        let mut stream = self.connect();
        let host = self.host.clone().unwrap_or_else(|| self.addr.clone());
        let mut head = format!("{method} {target} HTTP/1.1\r\nhost: {host}\r\n");
        for (n, v) in headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n", body.len()));
        stream.write_all(head.as_bytes()).expect("write head");
        let _ = stream.write_all(body);
        read_response(&mut stream, method == "HEAD")
    }

    /// Sends the signed head of `req` declaring `declared_len` body bytes and
    /// only `req.body` of them; returns the open socket.
    pub fn send_partial(&self, req: Req, declared_len: usize) -> TcpStream {
        let mut stream = self.connect();
        let head = self.signed_head(&req, SystemTime::now(), declared_len, Some("UNSIGNED-PAYLOAD"));
        stream.write_all(head.as_bytes()).expect("write head");
        stream.write_all(req.body).expect("write body");
        stream.flush().expect("flush");
        stream
    }
}

/// Reads one HTTP/1.1 response (Content-Length or close-delimited body).
pub fn read_response(stream: &mut TcpStream, head_only: bool) -> Response {
    let mut reader = BufReader::new(stream);
    let (mut status, mut headers) = read_head(&mut reader);
    while status == 100 {
        (status, headers) = read_head(&mut reader);
    }
    let body = read_body(&mut reader, status, &headers, head_only);
    Response { status, headers, body }
}

fn read_head(reader: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let mut status_line = String::new();
    reader.read_line(&mut status_line).expect("status line");
    let status = status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status");
    (status, read_headers(reader))
}

fn read_body(reader: &mut impl BufRead, status: u16, headers: &[(String, String)], head_only: bool) -> Vec<u8> {
    let mut body = Vec::new();
    if !head_only && status != 204 && status != 304 {
        let len = headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse::<usize>().ok());
        match len {
            Some(len) => {
                body.resize(len, 0);
                reader.read_exact(&mut body).expect("body");
            }
            None => {
                reader.read_to_end(&mut body).expect("body");
            }
        }
    }
    body
}

impl Client {
    /// Sends `req` as a client that waits for `100 Continue` before its body
    /// (`Expect: 100-continue`, signed). Returns the final response and
    /// whether the body was sent: not if the server answered at once.
    pub fn send_expecting_continue(&self, req: Req, payload_hash: Option<&str>) -> (Response, bool) {
        let mut stream = self.connect();
        let req = req.header("expect", "100-continue");
        let head = self.signed_head(&req, SystemTime::now(), req.body.len(), payload_hash);
        stream.write_all(head.as_bytes()).expect("write head");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let (status, headers) = read_head(&mut reader);
        if status != 100 {
            let body = read_body(&mut reader, status, &headers, false);
            return (Response { status, headers, body }, false);
        }
        let _ = stream.write_all(req.body);
        let (status, headers) = read_head(&mut reader);
        let body = read_body(&mut reader, status, &headers, false);
        (Response { status, headers, body }, true)
    }
}

fn read_headers(reader: &mut impl BufRead) -> Vec<(String, String)> {
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("header line");
        let line = line.trim_end();
        if line.is_empty() {
            return headers;
        }
        if let Some((n, v)) = line.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    // Distinct seeds give distinct bytes (identical bodies would be stored
    // once, which tests counting blob files must not meet by accident).
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Sets this process's soft open-files limit to `soft`, or to the hard limit
/// with None (a server started afterwards inherits it); returns the new soft limit.
pub fn set_soft_nofile(soft: Option<u64>) -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = soft.unwrap_or(limit.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    limit.rlim_cur
}

/// Number of blob files in a data folder.
pub fn blob_files(data: &Path) -> usize {
    let count = |dir: &Path| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    std::fs::read_dir(data.join("blobs")).map(|d| d.flatten().map(|f| count(&f.path())).sum()).unwrap_or(0)
}

/// The paths of the blob files in a data folder.
pub fn blob_paths(data: &Path) -> Vec<PathBuf> {
    let entries = |dir: &Path| std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path());
    entries(&data.join("blobs")).flat_map(|fan| entries(&fan).collect::<Vec<_>>()).collect()
}

/// Runs the `tessera` binary (a subcommand taking `--data`) as root; its
/// stdout. `user` and `stats` get the suite's `--meta` (if any).
pub fn tessera(data: &Path, args: &[&str]) -> String {
    let meta = match args.first() {
        Some(&"user" | &"stats") if !args.contains(&"--meta") => suite_meta_args(data),
        _ => Vec::new(),
    };
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .arg("--data")
        .arg(data)
        .args(meta)
        .env("TESSERA_ACCESS_KEY", ACCESS_KEY)
        .env("TESSERA_SECRET_KEY", SECRET_KEY)
        .env("TESSERA_LOG", "warn")
        .output()
        .expect("run tessera");
    assert!(out.status.success(), "tessera {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Files in the temp folders of `data`: its own `tmp/`, and each gateway's
/// under `gateways/` (over PostgreSQL).
pub fn tmp_files(data: &Path) -> usize {
    let count = |dir: &Path| std::fs::read_dir(dir.join("tmp")).map(|d| d.count()).unwrap_or(0);
    let gateways = std::fs::read_dir(data.join("gateways")).into_iter().flatten().flatten();
    count(data) + gateways.map(|gateway| count(&gateway.path())).sum::<usize>()
}

/// The `server-info` file of the one server running on `data`: in the
/// folder itself, or in the gateway's own folder under `gateways/` (over
/// PostgreSQL, `TESSERA_TEST_META=postgres`).
pub fn server_info(data: &Path) -> String {
    let mut places = vec![data.join("server-info")];
    if let Ok(gateways) = std::fs::read_dir(data.join("gateways")) {
        places.extend(gateways.flatten().map(|gateway| gateway.path().join("server-info")));
    }
    let found: Vec<String> = places.iter().filter_map(|path| std::fs::read_to_string(path).ok()).collect();
    assert_eq!(found.len(), 1, "one server-info under {}: {found:?}", data.display());
    found.into_iter().next().unwrap_or_default()
}

pub fn stats(data: &Path) -> Value {
    serde_json::from_str(&tessera(data, &["stats", "--json"])).expect("one JSON object")
}

pub fn field(stats: &Value, name: &str) -> u64 {
    stats[name].as_u64().unwrap_or_else(|| panic!("{name} in {stats}"))
}

/// A client signing as a user added (offline) with `tessera user add`.
pub fn user_client(server: &Server, data: &Path, name: &str) -> Client {
    let keys: Value = serde_json::from_str(&tessera(data, &["user", "add", name, "--json"])).expect("json");
    let mut client = server.client();
    client.access_key = keys["access_key_id"].as_str().expect("key").to_string();
    client.secret_key = keys["secret_access_key"].as_str().expect("secret").to_string();
    client
}

/// Blob files are unlinked in the background after the commit that frees them.
pub fn wait_for_blob_files(data: &Path, want: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while blob_files(data) != want {
        assert!(Instant::now() < deadline, "{} blob files, want {want}", blob_files(data));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// GETs `path` and asserts it is exactly `body`.
pub fn assert_reads(c: &Client, path: &str, body: &[u8]) {
    let resp = c.send(Req::new("GET", path));
    assert_eq!(resp.status, 200, "GET {path}: {}", resp.text());
    assert!(resp.body == body, "GET {path}: {} bytes, not the {} written", resp.body.len(), body.len());
}

/// Starts a multipart upload of `key` (`/bucket/key`); returns its id.
pub fn create_upload(c: &Client, key: &str) -> String {
    let resp = c.send(Req::new("POST", key).query("uploads"));
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.elements("UploadId").pop().expect("an upload id")
}

/// Sends part `n` of upload `id`, whatever the answer.
pub fn upload_part(c: &Client, key: &str, id: &str, n: u32, body: &[u8]) -> Response {
    c.send(Req::new("PUT", key).query(&format!("partNumber={n}&uploadId={id}")).body(body))
}

/// Sends part `n` of upload `id`; returns its ETag.
pub fn part_etag(c: &Client, key: &str, id: &str, n: u32, body: &[u8]) -> String {
    let resp = upload_part(c, key, id, n, body);
    assert_eq!(resp.status, 200, "part {n}: {}", resp.text());
    resp.header("etag").expect("part etag").to_string()
}

/// CompleteMultipartUpload of upload `id` with `(part number, ETag)`s.
pub fn complete(c: &Client, key: &str, id: &str, parts: &[(u32, &str)]) -> Response {
    let parts: String =
        parts.iter().map(|(n, etag)| format!("<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>")).collect();
    let xml = format!("<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>");
    c.send(Req::new("POST", key).query(&format!("uploadId={id}")).body(xml.as_bytes()))
}

/// PUTs `body` with `UNSIGNED-PAYLOAD`: the server is told no SHA-256.
pub fn put_unsigned(c: &Client, path: &str, body: &[u8]) {
    let mut stream = c.connect();
    let req = Req::new("PUT", path).body(body);
    let head = c.signed_head(&req, std::time::SystemTime::now(), body.len(), Some("UNSIGNED-PAYLOAD"));
    std::io::Write::write_all(&mut stream, head.as_bytes()).expect("head");
    std::io::Write::write_all(&mut stream, body).expect("body");
    let resp = read_response(&mut stream, false);
    assert_eq!(resp.status, 200, "{path}: {}", resp.text());
}

/// Distinct files (inodes) under `blobs/`.
pub fn blob_inodes(data: &std::path::Path) -> usize {
    use std::os::unix::fs::MetadataExt;
    let mut inodes = std::collections::HashSet::new();
    for dir in std::fs::read_dir(data.join("blobs")).expect("blobs").flatten() {
        for file in std::fs::read_dir(dir.path()).expect("dir").flatten() {
            inodes.insert(file.metadata().expect("metadata").ino());
        }
    }
    inodes.len()
}

/// The quoted ETag of a single-PUT body: its MD5.
pub fn md5_etag(body: &[u8]) -> String {
    format!("\"{}\"", hex::encode(md5::Md5::digest(body)))
}

/// A loopback address no one listens on now (the port is free once the probe closes).
pub fn free_addr() -> String {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a probe");
    probe.local_addr().expect("probe address").to_string()
}

/// A connection whose receive buffer is set small before it connects, so the
/// window it advertises stays small: 600 non-reading clients at the default
/// sizes made the server's kernel queue about 3 MB each (1.7 GB in all), past
/// `net.ipv4.tcp_mem`'s pressure mark, which slows every connection on the
/// machine for seconds, server or not.
pub fn connect_with_small_receive_buffer(addr: &str) -> TcpStream {
    use std::os::fd::FromRawFd;
    let addr: std::net::SocketAddrV4 = addr.parse().expect("an IPv4 address");
    let size: libc::c_int = 16 * 1024;
    let sockaddr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(*addr.ip()).to_be() },
        sin_zero: [0; 8],
    };
    // SAFETY: a new socket is configured and connected with structs we own,
    // whose sizes are passed; on success the descriptor is handed to TcpStream,
    // which closes it.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        let rc = libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, (&size as *const libc::c_int).cast(), len);
        assert_eq!(rc, 0, "setsockopt SO_RCVBUF");
        let sa_len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let rc = libc::connect(fd, (&sockaddr as *const libc::sockaddr_in).cast(), sa_len);
        assert_eq!(rc, 0, "connect: {}", std::io::Error::last_os_error());
        TcpStream::from_raw_fd(fd)
    }
}
