//! The web console's server side (issue 16) against the real binary: its
//! listener and assets, sign-in and the cookie session, CSRF and origin
//! checks, presigned URLs that the S3 listener accepts (and refuses where
//! it must), the overview, and the console's CORS on the S3 listener. The
//! page itself is tested in a browser by `s3-compat-tests/scenarios/console-browser.sh`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::{free_addr, user_client, Client, Response, Server, ACCESS_KEY, SECRET_KEY};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// A server with its console on a free loopback port.
struct World {
    _dir: tempfile::TempDir,
    server: Server,
    console: Client,
}

fn world() -> World {
    world_with(&[])
}

fn world_with(extra: &[&str]) -> World {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let mut args = vec!["--console", &addr];
    args.extend_from_slice(extra);
    let server = Server::start_with(dir.path(), &args);
    World { _dir: dir, server, console: Client::new(&addr) }
}

/// A signed-in console session: its cookie header and CSRF token.
struct Session {
    cookie: String,
    csrf: String,
    doc: Value,
}

impl World {
    fn sign_in(&self, access_key: &str, secret_key: &str) -> Response {
        let body = json!({ "access_key": access_key, "secret_key": secret_key }).to_string();
        self.console.send_raw("POST", "/api/session", &[("content-type", "application/json")], body.as_bytes())
    }

    fn session(&self, access_key: &str, secret_key: &str) -> Session {
        let resp = self.sign_in(access_key, secret_key);
        assert_eq!(resp.status, 200, "sign-in: {}", resp.text());
        let set_cookie = resp.header("set-cookie").expect("a cookie");
        let cookie = set_cookie.split(';').next().unwrap().to_string();
        let doc: Value = serde_json::from_slice(&resp.body).unwrap();
        Session { cookie, csrf: doc["csrf_token"].as_str().unwrap().to_string(), doc }
    }

    fn origin(&self) -> String {
        format!("http://{}", self.console.addr)
    }

    /// A JSON API call with the session's cookie and CSRF token.
    fn api(&self, s: &Session, method: &str, path: &str, body: &Value) -> Response {
        let body = body.to_string();
        let headers = [("cookie", s.cookie.as_str()), ("x-tessera-csrf", s.csrf.as_str())];
        self.console.send_raw(method, path, &headers, if method == "GET" { b"" } else { body.as_bytes() })
    }

    /// Presigned URLs for `requests`, as targets (`/bucket/key?...`) on the S3 listener.
    fn presign(&self, s: &Session, requests: Value) -> Vec<String> {
        let resp = self.api(s, "POST", "/api/presign", &json!({ "requests": requests }));
        assert_eq!(resp.status, 200, "presign: {}", resp.text());
        let doc: Value = serde_json::from_slice(&resp.body).unwrap();
        let prefix = format!("http://{}", self.server.addr);
        let urls = doc["urls"].as_array().unwrap();
        urls.iter().map(|u| u.as_str().unwrap().strip_prefix(&prefix).expect("the S3 endpoint").to_string()).collect()
    }

    /// Sends one presigned request to the S3 listener.
    fn s3(&self, target: &str, method: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        self.server.client().send_raw(method, target, headers, body)
    }

    fn overview(&self, s: &Session) -> Value {
        let resp = self.api(s, "GET", "/api/overview", &Value::Null);
        assert_eq!(resp.status, 200, "overview: {}", resp.text());
        serde_json::from_slice(&resp.body).unwrap()
    }
}

fn user_keys(c: &Client) -> (String, String) {
    (c.access_key.clone(), c.secret_key.clone())
}

#[test]
fn sign_in_as_root_and_as_a_user_then_sign_out() {
    let w = world();
    let root = w.session(ACCESS_KEY, SECRET_KEY);
    assert_eq!(root.doc["user"], "root");
    assert_eq!(root.doc["root"], true);
    assert_eq!(root.doc["access_key"], ACCESS_KEY);
    assert_eq!(root.doc["endpoint"], format!("http://{}", w.server.addr));
    assert_eq!(root.doc["region"], "us-east-1");
    assert!(!root.doc.to_string().contains(SECRET_KEY), "the secret never goes back");
    let id = root.cookie.strip_prefix("tessera_console=").unwrap();
    assert!(id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()), "256 random bits: {id}");

    let resp = w.sign_in(ACCESS_KEY, SECRET_KEY);
    let set_cookie = resp.header("set-cookie").unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(flag), "{flag} in {set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "not over plain HTTP");
    assert_eq!(resp.header("cache-control"), Some("no-store"));

    let again = w.console.send_raw("GET", "/api/session", &[("cookie", &root.cookie)], b"");
    assert_eq!(again.status, 200);
    let doc: Value = serde_json::from_slice(&again.body).unwrap();
    assert_eq!((doc["user"].clone(), doc["csrf_token"].clone()), (json!("root"), json!(root.csrf)));

    let alice = user_client(&w.server, &w.server.data, "alice");
    let (key, secret) = user_keys(&alice);
    let user = w.session(&key, &secret);
    assert_eq!((user.doc["user"].clone(), user.doc["root"].clone()), (json!("alice"), json!(false)));

    let started = Instant::now();
    let wrong = w.sign_in(&key, "not-the-secret");
    assert_eq!(wrong.status, 401, "{}", wrong.text());
    assert!(started.elapsed() >= Duration::from_millis(500), "a failed sign-in is slowed down");
    assert!(wrong.header("set-cookie").is_none());
    let doc: Value = serde_json::from_slice(&wrong.body).unwrap();
    assert!(doc["error"].is_string());
    assert_eq!(w.sign_in("NOSUCHKEY", SECRET_KEY).status, 401);

    let none = w.console.send_raw("GET", "/api/session", &[], b"");
    assert_eq!(none.status, 401);
    let forged = w.console.send_raw("GET", "/api/session", &[("cookie", "tessera_console=00ff")], b"");
    assert_eq!(forged.status, 401);

    // Sign-out needs the CSRF token like any other change.
    let no_csrf = w.console.send_raw("DELETE", "/api/session", &[("cookie", &user.cookie)], b"");
    assert_eq!(no_csrf.status, 403);
    let out = w.api(&user, "DELETE", "/api/session", &Value::Null);
    assert_eq!(out.status, 204);
    assert!(out.header("set-cookie").is_some_and(|c| c.contains("Max-Age=0")));
    assert_eq!(w.console.send_raw("GET", "/api/session", &[("cookie", &user.cookie)], b"").status, 401);
    assert_eq!(w.api(&user, "GET", "/api/overview", &Value::Null).status, 401);
    // Root's session is another one and lives on.
    assert_eq!(w.api(&root, "GET", "/api/overview", &Value::Null).status, 200);

    // A new secret (`tessera user rotate`) or a removed user ends the sessions.
    let again = w.session(&key, &secret);
    common::tessera(&w.server.data, &["user", "rotate", "alice"]);
    assert_eq!(w.api(&again, "GET", "/api/overview", &Value::Null).status, 401, "secret rotated");
    let bob = user_client(&w.server, &w.server.data, "bob");
    let bobs = w.session(&bob.access_key, &bob.secret_key);
    common::tessera(&w.server.data, &["user", "remove", "bob"]);
    assert_eq!(w.api(&bobs, "GET", "/api/overview", &Value::Null).status, 401, "user removed");
}

#[test]
fn changes_need_the_csrf_token_and_the_consoles_own_origin() {
    let w = world();
    let s = w.session(ACCESS_KEY, SECRET_KEY);
    let body = json!({ "requests": [{ "method": "GET", "bucket": "photos", "key": "a" }] }).to_string();
    let send = |headers: &[(&str, &str)]| w.console.send_raw("POST", "/api/presign", headers, body.as_bytes());
    let cookie = ("cookie", s.cookie.as_str());
    let missing = send(&[cookie]);
    assert_eq!(missing.status, 403, "{}", missing.text());
    assert!(serde_json::from_slice::<Value>(&missing.body).unwrap()["error"].is_string());
    assert_eq!(send(&[cookie, ("x-tessera-csrf", "0".repeat(64).as_str())]).status, 403, "wrong token");
    let csrf = ("x-tessera-csrf", s.csrf.as_str());
    assert_eq!(send(&[cookie, csrf, ("origin", "http://evil.example")]).status, 403, "foreign origin");
    assert_eq!(send(&[cookie, csrf, ("origin", &w.origin())]).status, 200, "own origin");
    assert_eq!(send(&[cookie, csrf]).status, 200, "no origin (same-origin GET-like fetches send none)");
    assert_eq!(send(&[("cookie", "tessera_console=abc"), csrf]).status, 401, "unknown session");

    let keys = json!({ "access_key": ACCESS_KEY, "secret_key": SECRET_KEY }).to_string();
    let foreign = w.console.send_raw("POST", "/api/session", &[("origin", "http://evil.example")], keys.as_bytes());
    assert_eq!(foreign.status, 403, "sign-in from another origin");
    let own = w.console.send_raw("POST", "/api/session", &[("origin", &w.origin())], keys.as_bytes());
    assert_eq!(own.status, 200);

    let big = vec![b' '; 65 * 1024];
    let resp = w.console.send_raw("POST", "/api/session", &[], &big);
    assert_eq!(resp.status, 413, "JSON bodies are limited to 64 KiB");
}

#[test]
fn presigned_urls_put_get_and_multipart_round_trip() {
    let w = world();
    let s = w.session(ACCESS_KEY, SECRET_KEY);
    let bucket = w.presign(&s, json!([{ "method": "PUT", "bucket": "photos" }]));
    assert_eq!(w.s3(&bucket[0], "PUT", &[], b"").status, 200);

    let body = common::pattern(100_000, 7);
    let key = "dir/a b&+é\".bin";
    let urls = w.presign(
        &s,
        json!([
            { "method": "PUT", "bucket": "photos", "key": key, "headers": { "content-type": "application/x-test" } },
            { "method": "GET", "bucket": "photos", "key": key, "expires": 60 },
            { "method": "HEAD", "bucket": "photos", "key": key },
        ]),
    );
    let put = w.s3(&urls[0], "PUT", &[("content-type", "application/x-test")], &body);
    assert_eq!(put.status, 200, "{}", put.text());
    assert!(urls[1].contains("X-Amz-Expires=60"));
    let get = w.s3(&urls[1], "GET", &[], b"");
    assert_eq!(get.status, 200);
    assert!(get.body == body, "the bytes round-trip");
    assert_eq!(get.header("content-type"), Some("application/x-test"));
    assert_eq!(w.s3(&urls[2], "HEAD", &[], b"").status, 200);
    let wrong_type = w.s3(&urls[0], "PUT", &[("content-type", "text/plain")], &body);
    assert_eq!(wrong_type.status, 403, "a signed header's value is fixed");

    // A header not listed when presigning is refused.
    let unlisted = w.s3(&urls[0], "PUT", &[("content-type", "application/x-test"), ("x-amz-meta-sneaky", "1")], &body);
    assert_eq!(unlisted.status, 403, "{}", unlisted.text());
    assert_eq!(unlisted.error_code().as_deref(), Some("AccessDenied"));

    multipart(&w, &s);
}

/// Create, one part with a signed SHA-256 checksum, ListParts, Complete, GET.
fn multipart(w: &World, s: &Session) {
    let key = "big.bin";
    let sha = [("x-amz-checksum-algorithm", "SHA256")];
    let create = w.presign(
        s,
        json!([{ "method": "POST", "bucket": "photos", "key": key, "query": { "uploads": "" },
                 "headers": { "x-amz-checksum-algorithm": "SHA256" } }]),
    );
    let created = w.s3(&create[0], "POST", &sha, b"");
    assert_eq!(created.status, 200, "{}", created.text());
    let upload_id = created.elements("UploadId").remove(0);

    let part = common::pattern(300_000, 9);
    let checksum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&part));
    let urls = w.presign(
        s,
        json!([
            { "method": "PUT", "bucket": "photos", "key": key,
              "query": { "partNumber": "1", "uploadId": upload_id },
              "headers": { "x-amz-checksum-sha256": checksum } },
            { "method": "GET", "bucket": "photos", "key": key, "query": { "uploadId": upload_id } },
            { "method": "POST", "bucket": "photos", "key": key, "query": { "uploadId": upload_id } },
            { "method": "GET", "bucket": "photos", "key": key },
        ]),
    );
    let bad = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"other"));
    let refused = w.s3(&urls[0], "PUT", &[("x-amz-checksum-sha256", &bad)], &part);
    assert_eq!(refused.status, 403, "another checksum than the one signed");
    let uploaded = w.s3(&urls[0], "PUT", &[("x-amz-checksum-sha256", &checksum)], &part);
    assert_eq!(uploaded.status, 200, "{}", uploaded.text());
    let etag = uploaded.header("etag").unwrap().to_string();

    let listed = w.s3(&urls[1], "GET", &[], b"");
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert_eq!(listed.elements("PartNumber"), ["1"]);
    assert_eq!(listed.elements("ChecksumSHA256"), std::slice::from_ref(&checksum));

    let doc = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag>\
         <ChecksumSHA256>{checksum}</ChecksumSHA256></Part></CompleteMultipartUpload>"
    );
    let completed = w.s3(&urls[2], "POST", &[], doc.as_bytes());
    assert_eq!(completed.status, 200, "{}", completed.text());
    let got = w.s3(&urls[3], "GET", &[], b"");
    assert!(got.status == 200 && got.body == part, "the multipart object reads back");
}

#[test]
fn presign_requests_are_checked() {
    let w = world();
    let s = w.session(ACCESS_KEY, SECRET_KEY);
    let refused = |request: Value| {
        let resp = w.api(&s, "POST", "/api/presign", &json!({ "requests": [request] }));
        assert_eq!(resp.status, 400, "{request}: {}", resp.text());
    };
    refused(json!({ "method": "PATCH", "bucket": "photos" }));
    refused(json!({ "method": "GET", "bucket": "", "key": "k" }));
    refused(json!({ "method": "GET", "bucket": "_tessera" }));
    refused(json!({ "method": "GET", "bucket": "photos", "expires": 0 }));
    refused(json!({ "method": "GET", "bucket": "photos", "expires": 604_801 }));
    refused(json!({ "method": "GET", "bucket": "photos", "query": { "X-Amz-Signature": "x" } }));
    refused(json!({ "method": "GET", "bucket": "photos", "headers": { "host": "elsewhere" } }));
    let many: Vec<Value> = (0..1001).map(|_| json!({ "method": "GET", "bucket": "photos" })).collect();
    let resp = w.api(&s, "POST", "/api/presign", &json!({ "requests": many }));
    assert_eq!(resp.status, 400, "at most 1000");
}

#[test]
fn a_users_urls_reach_only_what_the_user_may_and_the_overview_shows_only_theirs() {
    let w = world();
    let alice = user_client(&w.server, &w.server.data, "alice");
    let bob = user_client(&w.server, &w.server.data, "bob");
    let (a, b) = (w.session(&alice.access_key, &alice.secret_key), w.session(&bob.access_key, &bob.secret_key));
    let root = w.session(ACCESS_KEY, SECRET_KEY);

    let urls = w.presign(
        &a,
        json!([
            { "method": "PUT", "bucket": "alice-files" },
            { "method": "PUT", "bucket": "alice-files", "key": "one" },
            { "method": "PUT", "bucket": "alice-files", "key": "two" },
            { "method": "POST", "bucket": "alice-files", "key": "three", "query": { "uploads": "" } },
        ]),
    );
    assert_eq!(w.s3(&urls[0], "PUT", &[], b"").status, 200);
    assert_eq!(w.s3(&urls[1], "PUT", &[], &[1u8; 1000]).status, 200);
    assert_eq!(w.s3(&urls[2], "PUT", &[], &[2u8; 234]).status, 200);
    let created = w.s3(&urls[3], "POST", &[], b"");
    let upload_id = created.elements("UploadId").remove(0);
    let part = w.presign(
        &a,
        json!([{ "method": "PUT", "bucket": "alice-files", "key": "three",
                 "query": { "partNumber": "1", "uploadId": upload_id } }]),
    );
    assert_eq!(w.s3(&part[0], "PUT", &[], &[3u8; 4096]).status, 200);
    let root_bucket = w.presign(&root, json!([{ "method": "PUT", "bucket": "root-stuff" }]));
    assert_eq!(w.s3(&root_bucket[0], "PUT", &[], b"").status, 200);

    // ListBuckets (no bucket): each sees their own.
    for (session, want) in [(&a, vec!["alice-files"]), (&b, vec![]), (&root, vec!["alice-files", "root-stuff"])] {
        let list = w.presign(session, json!([{ "method": "GET", "bucket": "" }]));
        let listed = w.s3(&list[0], "GET", &[], b"");
        assert_eq!(listed.status, 200, "{}", listed.text());
        assert_eq!(listed.elements("Name"), want);
    }

    let theft = w.presign(&b, json!([{ "method": "GET", "bucket": "alice-files", "key": "one" }]));
    let stolen = w.s3(&theft[0], "GET", &[], b"");
    assert_eq!(stolen.status, 403, "bob cannot read alice's private object");
    assert_eq!(stolen.error_code().as_deref(), Some("AccessDenied"));

    let mine = w.overview(&a);
    assert_eq!(mine["buckets"], json!([{ "name": "alice-files", "objects": 2, "bytes": 1234 }]));
    assert_eq!(mine["uploads"], json!({ "count": 1, "parts": 1, "bytes": 4096 }));
    assert_eq!(mine["storage"]["logical_bytes"], 1234);
    assert!(mine["storage"]["stored_bytes"].is_null(), "no server-wide figure for a user: {mine}");
    let bobs = w.overview(&b);
    assert_eq!(bobs["buckets"], json!([]));
    assert_eq!(bobs["uploads"], json!({ "count": 0, "parts": 0, "bytes": 0 }));
    let all = w.overview(&root);
    let names: Vec<&str> = all["buckets"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alice-files", "root-stuff"]);
    assert_eq!(all["storage"]["logical_bytes"], 1234 + 4096);
    assert_eq!(all["storage"]["stored_bytes"], 1234 + 4096);
    assert_eq!(all["storage"]["dedup_ratio"], 1.0);
}

#[test]
fn the_s3_listener_answers_the_consoles_cors_and_only_its() {
    let w = world();
    let c = w.server.client();
    let s = w.session(ACCESS_KEY, SECRET_KEY);
    let urls = w.presign(
        &s,
        json!([{ "method": "PUT", "bucket": "photos" }, { "method": "GET", "bucket": "photos", "key": "x" }]),
    );
    assert_eq!(w.s3(&urls[0], "PUT", &[], b"").status, 200);
    let port = w.console.addr.rsplit(':').next().unwrap().to_string();
    for origin in [w.origin(), format!("http://localhost:{port}")] {
        let resp = c.send_raw(
            "OPTIONS",
            "/photos/x",
            &[
                ("origin", &origin),
                ("access-control-request-method", "PUT"),
                ("access-control-request-headers", "content-type,x-amz-checksum-sha256"),
            ],
            b"",
        );
        assert_eq!(resp.status, 200, "{origin}: {}", resp.text());
        assert_eq!(resp.header("access-control-allow-origin"), Some(origin.as_str()));
        assert!(resp.header("access-control-allow-methods").is_some_and(|m| m.contains("DELETE")));
        assert_eq!(resp.header("access-control-allow-headers"), Some("content-type,x-amz-checksum-sha256"));
        assert_eq!(resp.header("access-control-max-age"), Some("600"));
    }
    let other = c.send_raw(
        "OPTIONS",
        "/photos/x",
        &[("origin", "http://evil.example"), ("access-control-request-method", "PUT")],
        b"",
    );
    assert_eq!(other.status, 403, "a bucket without rules refuses other origins");
    assert!(other.header("access-control-allow-origin").is_none());

    // Actual responses, errors included, expose what the page reads.
    let missing = w.s3(&urls[1], "GET", &[("origin", &w.origin())], b"");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("access-control-allow-origin"), Some(w.origin().as_str()));
    let exposed = missing.header("access-control-expose-headers").unwrap();
    for name in ["ETag", "x-amz-version-id", "x-amz-checksum-sha256", "content-range", "x-tessera-instant-upload"] {
        assert!(exposed.contains(name), "{name} in {exposed}");
    }
    let foreign = w.s3(&urls[1], "GET", &[("origin", "http://evil.example")], b"");
    assert!(foreign.header("access-control-allow-origin").is_none());
}

#[test]
fn assets_are_served_with_their_types_and_the_security_headers() {
    let w = world();
    let index = w.console.send_raw("GET", "/", &[], b"");
    assert_eq!(index.status, 200);
    assert_eq!(index.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = index.header("content-security-policy").unwrap();
    assert_eq!(
        csp,
        format!(
            "default-src 'self'; connect-src 'self' http://{}; img-src 'self' data: blob:; style-src 'self'; \
             script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
            w.server.addr
        )
    );
    assert_eq!(index.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(index.header("referrer-policy"), Some("no-referrer"));
    let html = index.text();
    let script = html.split("src=\"").nth(1).and_then(|s| s.split('"').next()).expect("index.html loads a script");
    let js = w.console.send_raw("GET", &format!("/{}", script.trim_start_matches('/')), &[], b"");
    assert_eq!(js.status, 200, "{script}");
    assert_eq!(js.header("content-type"), Some("text/javascript; charset=utf-8"));
    assert!(js.header("content-security-policy").is_some());
    for path in ["/assets/../Cargo.toml", "/assets/", "/nothing", "/photos/key"] {
        assert_eq!(w.console.send_raw("GET", path, &[], b"").status, 404, "{path}");
    }
    let api = w.console.send_raw("GET", "/api/session", &[], b"");
    assert_eq!(api.header("cache-control"), Some("no-store"));
    assert!(api.header("content-security-policy").is_some());
}

#[test]
fn console_off_binds_nothing_and_a_busy_console_address_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--listen", "127.0.0.1:0", "--console", "off", "--data"])
        .arg(dir.path())
        .env("TESSERA_ACCESS_KEY", ACCESS_KEY)
        .env("TESSERA_SECRET_KEY", SECRET_KEY)
        .env("TESSERA_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.contains("listening on");
        banner.push(line);
        if done {
            break;
        }
    }
    let listening = listening_sockets(child.id());
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    banner.extend(lines.map(Result::unwrap));
    child.wait().unwrap();
    assert!(!banner.iter().any(|l| l.contains("Console")), "{banner:?}");
    assert_eq!(listening, 1, "the S3 listener only");

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();
    let data = tempfile::tempdir().unwrap();
    let started = Server::try_start_with(data.path(), &["--console", &busy_addr], Stdio::null());
    assert!(started.is_none(), "a named console address must be free");
    assert_eq!(std::fs::read_dir(data.path()).unwrap().count(), 0, "nothing written to the data folder");
}

/// How many listening TCP sockets process `pid` holds: its socket inodes
/// (`/proc/PID/fd`) found among the listening rows of `/proc/net/tcp{,6}`.
fn listening_sockets(pid: u32) -> usize {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().into_owned();
            Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let mut count = 0;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for row in text.lines().skip(1) {
            let fields: Vec<&str> = row.split_whitespace().collect();
            if fields.get(3) == Some(&"0A") && fields.get(9).is_some_and(|i| inodes.iter().any(|n| n == i)) {
                count += 1;
            }
        }
    }
    count
}

/// With --tls-cert the console speaks HTTPS too, with the same certificate,
/// its cookie is `Secure`, and the page is told of an https:// endpoint.
#[test]
fn the_console_serves_https_when_the_s3_listener_does() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let console = free_addr();
    let args =
        ["--tls-cert", cert_file.to_str().unwrap(), "--tls-key", key_file.to_str().unwrap(), "--console", &console];
    let server = Server::start_with(&dir.path().join("data"), &args);
    let keys = json!({ "access_key": ACCESS_KEY, "secret_key": SECRET_KEY }).to_string();
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "20", "--cacert", cert_file.to_str().unwrap(), "-X", "POST", "--data", &keys])
        .arg(format!("https://{console}/api/session"))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success() && text.starts_with("HTTP/1.1 200"), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let cookie = text.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie:")).expect("a cookie");
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(text.contains(&format!("\"endpoint\":\"https://{}\"", server.addr)), "{text}");
    let plain = Client::new(&console).send_raw("GET", "/", &[], b"");
    assert_eq!(plain.status, 400, "plain HTTP to the TLS console");
}

/// Failed sign-ins wait their delay one after another, server-wide, so
/// guesses sent in parallel are not answered faster than one by one.
#[test]
fn failed_sign_ins_wait_in_turn() {
    let w = world();
    let started = Instant::now();
    std::thread::scope(|scope| {
        let tries: Vec<_> = (0..3).map(|_| scope.spawn(|| w.sign_in(ACCESS_KEY, "wrong").status)).collect();
        for t in tries {
            assert_eq!(t.join().unwrap(), 401);
        }
    });
    assert!(started.elapsed() >= Duration::from_millis(3 * 650), "{:?}", started.elapsed());
    let fast = Instant::now();
    w.session(ACCESS_KEY, SECRET_KEY);
    assert!(fast.elapsed() < Duration::from_millis(500), "a right secret never waits");
}

/// Behind a reverse proxy: the page is told the S3 URL given, the API takes
/// the proxy's origin, and the S3 listener answers that origin's CORS.
#[test]
fn a_reverse_proxys_urls_are_taken_from_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let proxy = "https://console.example.com";
    let args = ["--console", &addr, "--console-s3-url", "https://s3.example.com/", "--console-origin", proxy];
    let server = Server::start_with(dir.path(), &args);
    let w = World { _dir: dir, server, console: Client::new(&addr) };
    let keys = json!({ "access_key": ACCESS_KEY, "secret_key": SECRET_KEY }).to_string();
    let resp = w.console.send_raw("POST", "/api/session", &[("origin", proxy)], keys.as_bytes());
    assert_eq!(resp.status, 200, "{}", resp.text());
    let doc: Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(doc["endpoint"], "https://s3.example.com");
    let csp = resp.header("content-security-policy").unwrap();
    assert!(csp.contains("connect-src 'self' https://s3.example.com;"), "{csp}");
    let preflight = w.server.client().send_raw(
        "OPTIONS",
        "/photos/x",
        &[("origin", proxy), ("access-control-request-method", "PUT")],
        b"",
    );
    assert_eq!(preflight.status, 200);
    assert_eq!(preflight.header("access-control-allow-origin"), Some(proxy));
}

/// A JSON body that stops coming is given up after `--body-timeout`.
#[test]
fn a_trickled_json_body_times_out() {
    use std::io::Write;
    let w = world_with(&["--body-timeout", "1s"]);
    let mut stream = w.console.connect();
    let head =
        format!("POST /api/session HTTP/1.1\r\nhost: {}\r\ncontent-length: 100\r\n\r\n{{\"access", w.console.addr);
    stream.write_all(head.as_bytes()).unwrap();
    let started = Instant::now();
    let resp = common::read_response(&mut stream, false);
    assert_eq!(resp.status, 408, "{}", resp.text());
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Noncurrent versions and delete markers are not current objects.
#[test]
fn the_overview_counts_current_versions_only() {
    let w = world();
    let s = w.session(ACCESS_KEY, SECRET_KEY);
    let urls = w.presign(
        &s,
        json!([
            { "method": "PUT", "bucket": "versioned" },
            { "method": "PUT", "bucket": "versioned", "query": { "versioning": "" } },
            { "method": "PUT", "bucket": "versioned", "key": "k" },
            { "method": "DELETE", "bucket": "versioned", "key": "k" },
            { "method": "PUT", "bucket": "versioned", "key": "kept" },
        ]),
    );
    let enable = b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
    let statuses: Vec<u16> = [
        w.s3(&urls[0], "PUT", &[], b"").status,
        w.s3(&urls[1], "PUT", &[], enable).status,
        w.s3(&urls[2], "PUT", &[], &[1u8; 100]).status,
        w.s3(&urls[2], "PUT", &[], &[2u8; 50]).status,
        w.s3(&urls[3], "DELETE", &[], b"").status,
        w.s3(&urls[4], "PUT", &[], &[3u8; 7]).status,
    ]
    .into();
    assert_eq!(statuses, [200, 200, 200, 200, 204, 200]);
    let doc = w.overview(&s);
    assert_eq!(doc["buckets"], json!([{ "name": "versioned", "objects": 1, "bytes": 7 }]));
    assert_eq!(doc["storage"]["logical_bytes"], 157, "the whole store counts every version");
}

/// A page on another origin cannot steer the console: a name rebound to
/// this address (DNS rebinding) is refused, a second session cookie planted
/// beside the real one (cookies ignore ports) signs the request out, and
/// the costly overview needs the CSRF token like every change.
#[test]
fn rebound_names_planted_cookies_and_cross_site_overviews_are_refused() {
    let w = world();
    let s = w.session(ACCESS_KEY, SECRET_KEY);
    let mut rebound = Client::new(&w.console.addr);
    rebound.host = Some(format!("evil.example:{}", w.console.addr.rsplit(':').next().unwrap()));
    let keys = json!({ "access_key": ACCESS_KEY, "secret_key": SECRET_KEY }).to_string();
    let origin = format!("http://{}", rebound.host.as_deref().unwrap());
    let resp = rebound.send_raw("POST", "/api/session", &[("origin", origin.as_str())], keys.as_bytes());
    assert_eq!(resp.status, 421, "a rebound host name: {}", resp.text());
    let resp = rebound.send_raw("GET", "/api/session", &[("cookie", s.cookie.as_str())], b"");
    assert_eq!(resp.status, 421, "also for reads");
    let mut by_name = Client::new(&w.console.addr);
    by_name.host = Some(format!("localhost:{}", w.console.addr.rsplit(':').next().unwrap()));
    assert_eq!(by_name.send_raw("GET", "/api/session", &[("cookie", s.cookie.as_str())], b"").status, 200, "localhost");

    let other = w.session(ACCESS_KEY, SECRET_KEY);
    let planted = format!("{}; {}", other.cookie, s.cookie);
    let resp = w.console.send_raw("GET", "/api/session", &[("cookie", planted.as_str())], b"");
    assert_eq!(resp.status, 401, "two session cookies: neither is trusted");
    assert_eq!(w.console.send_raw("GET", "/api/session", &[("cookie", s.cookie.as_str())], b"").status, 200);

    let resp = w.console.send_raw("GET", "/api/overview", &[("cookie", s.cookie.as_str())], b"");
    assert_eq!(resp.status, 403, "an overview without the CSRF token: {}", resp.text());
    w.overview(&s);
}

/// Sign-ins wait in a bounded queue: past it they are refused at once
/// (429), and a right secret still gets in once the queue has drained.
#[test]
fn a_crowd_of_wrong_sign_ins_is_refused_past_the_queue() {
    let w = world();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let tries: Vec<_> = (0..24).map(|_| scope.spawn(|| w.sign_in(ACCESS_KEY, "wrong").status)).collect();
        tries.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let refused = statuses.iter().filter(|&&s| s == 429).count();
    assert!(refused >= 24 - 17, "at most 16 wait and one is checked: {statuses:?}");
    assert!(statuses.iter().all(|&s| s == 401 || s == 429), "{statuses:?}");
    w.session(ACCESS_KEY, SECRET_KEY);
}
