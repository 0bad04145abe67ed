//! A soak test, bounded, on loopback: client threads of two users (alice and
//! bob) and of root mix every object operation against the real binary for
//! a fixed time, while the server's resident memory is sampled:
//!
//! - PutObject (0 B to 1 MiB, many of 4 KiB, some with `x-amz-tagging`),
//!   GetObject whole and by Range, HeadObject, CopyObject, DeleteObject,
//!   DeleteObjects, ListObjectsV2 by prefix and in pages, Put/GetObjectTagging;
//! - multipart uploads: parts out of order and uploaded again (some of
//!   5 MiB, so a Complete may join several), ListParts, Complete of a chosen
//!   subset, Abort;
//! - a versioned bucket per user: versions read by id, delete markers,
//!   versions deleted by id, ListObjectVersions;
//! - ListBuckets, and each user's attempts on the other's bucket (signed and
//!   presigned), which must be 403 AccessDenied.
//!
//! Each thread owns its keys, so its model of what they hold is exact and
//! every answer is checked against it as it arrives. The only errors allowed
//! are the ones the model predicts (NoSuchKey for a key it knows is absent,
//! AccessDenied across users, NoSuchUpload after an abort); anything else is
//! collected and fails the test with op, key, status and code. At the end
//! every object and version is read back byte-exact, every listing and
//! upload must equal the model, the uploads left are aborted, `tessera
//! scrub` checks the folder and the server's log holds no ERROR or panic.
//! Memory: the peak RSS of the last third of the load must stay within
//! max(1.5 x, +64 MiB) of the peak of the first third (the warm-up).
//!
//! `TESSERA_SOAK_SECS` sets the load time (75 s by default, about 85 s in
//! all; 600 for the long mode), `TESSERA_SOAK_SEED` replays a run's choices
//! (where requests interleave still depends on timing):
//! `TESSERA_SOAK_SECS=600 cargo nextest run --test soak --no-capture`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use common::{pattern, Client, Req, Response, Server};
use md5::{Digest, Md5};
use tessera::auth::sigv4::uri_encode;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
/// The least size of a part that is not the last one (S3's rule).
const MIN_PART: usize = 5 * MIB;
const DEFAULT_SECS: u64 = 75;
/// Client threads per user; root's threads work in root's own buckets.
const USERS: [(&str, usize); 3] = [("alice", 4), ("bob", 4), ("root", 2)];
/// Keys per thread in its user's plain bucket and in the versioned one.
const KEYS: usize = 8;
const VKEYS: usize = 3;
/// Versions and markers kept per key; older ones are deleted by version id.
const MAX_VERSIONS: usize = 5;
const MAX_UPLOADS: usize = 2;
/// Parts are numbered 1 to this, so they arrive out of order and some twice.
const MAX_PART_NUMBER: usize = 4;

#[test]
fn soak_two_users() {
    let secs = env_number("TESSERA_SOAK_SECS").unwrap_or(DEFAULT_SECS);
    let seed = env_number("TESSERA_SOAK_SEED").unwrap_or_else(|| {
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).expect("clock").as_nanos() as u64;
        Rng(nanos ^ (u64::from(std::process::id()) << 32)).next()
    });
    eprintln!("soak: {secs} s of load, seed {seed} (replay: TESSERA_SOAK_SEED={seed} TESSERA_SOAK_SECS={secs})");
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, log) = (dir.path().join("data"), dir.path().join("server.log"));
    std::fs::create_dir(&data).expect("data folder");
    let keys: Vec<Option<(String, String)>> =
        USERS.iter().map(|(name, _)| (*name != "root").then(|| add_user(&data, name))).collect();
    let file = std::fs::File::create(&log).expect("server log");
    let server = Server::try_start_with(&data, &[], file).unwrap_or_else(|| panic!("no start:\n{}", log_tail(&log)));
    let pid = server_pid(&data);
    let mut workers = workers(&server, &keys, seed);

    let load = Duration::from_secs(secs);
    let every = Duration::from_millis((secs * 1000 / 60).clamp(500, 10_000));
    let stop = AtomicBool::new(false);
    let load_started = Instant::now();
    let samples = std::thread::scope(|s| {
        let sampler = s.spawn(|| sample_rss(pid, &stop, every, load_started));
        let handles: Vec<_> = workers
            .drain(..)
            .map(|mut w| {
                s.spawn(move || {
                    w.run(load_started + load);
                    w
                })
            })
            .collect();
        workers = handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect();
        stop.store(true, Ordering::Relaxed);
        sampler.join().expect("sampler")
    });
    let load_took = load_started.elapsed();

    let mut failures: Vec<String> =
        workers.iter().filter_map(|w| w.failure.as_ref().map(|why| format!("t{} ({}): {why}", w.t, w.user))).collect();
    let memory = check_memory(&samples, load.as_secs_f64());
    if let Err(why) = &memory {
        failures.push(format!("memory: {why}"));
    }
    let rss_end = rss_kib(pid);
    let mut verified = Verified::default();
    failures.extend(verify_all(&mut workers, &mut verified));
    assert!(server.terminate().success(), "SIGTERM exits 0:\n{}", log_tail(&log));
    failures.extend(check_log(&log));
    let (code, report) = scrub(&data);
    if code != Some(0) {
        failures.push(format!("tessera scrub exited {code:?}:\n{report}"));
    }

    let summary = summary(&workers, &samples, &memory, rss_end, &verified, load_took, started.elapsed());
    eprintln!("{summary}");
    assert!(
        failures.is_empty(),
        "soak (seed {seed}, {secs} s): {} failures:\n{}\n\n{summary}\n{}",
        failures.len(),
        failures.iter().take(40).cloned().collect::<Vec<_>>().join("\n"),
        log_tail(&log)
    );
}

/// The memory check can fail: RSS that keeps climbing after the warm-up is
/// refused, a noisy plateau is not.
#[test]
fn the_memory_check_refuses_growth_after_the_warm_up() {
    let plateau: Vec<(f64, u64)> = (0..60u64).map(|i| (i as f64, 40_000 + (i % 5) * 1_000)).collect();
    assert!(check_memory(&plateau, 60.0).is_ok(), "{:?}", check_memory(&plateau, 60.0));
    let leak: Vec<(f64, u64)> = (0..60u64).map(|i| (i as f64, 40_000 + i * 2_000)).collect();
    assert!(check_memory(&leak, 60.0).is_err(), "2 MiB a second, 80 MiB over the last two thirds");
    assert!(check_memory(&plateau[..10], 60.0).is_err(), "no sample in the last third");
}

/// The client threads: each user's, on that user's buckets, created here.
fn workers(server: &Server, keys: &[Option<(String, String)>], seed: u64) -> Vec<Worker> {
    let mut workers = Vec::new();
    let mut first_thread = Vec::new();
    for (u, ((user, threads), keys)) in USERS.iter().zip(keys).enumerate() {
        let mut c = server.client();
        if let Some((access, secret)) = keys {
            (c.access_key, c.secret_key) = (access.clone(), secret.clone());
        }
        let (bucket, vbucket) = (format!("{user}-main"), format!("{user}-ver"));
        for path in [&bucket, &vbucket] {
            let resp = c.send(Req::new("PUT", &format!("/{path}")));
            assert_eq!(resp.status, 200, "{user}'s CreateBucket {path}: {}", resp.text());
        }
        let xml = "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                   <Status>Enabled</Status></VersioningConfiguration>";
        let vpath = format!("/{vbucket}");
        let req = Req::new("PUT", &vpath).query("versioning");
        let resp = c.send(req.header("content-md5", content_md5(xml.as_bytes())).body(xml.as_bytes()));
        assert_eq!(resp.status, 200, "{user}'s PutBucketVersioning: {}", resp.text());
        first_thread.push(workers.len());
        for _ in 0..*threads {
            let t = workers.len();
            let rng = Rng(seed ^ (t as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
            workers.push(Worker::new(t, u, same_keys(&c), bucket.clone(), vbucket.clone(), rng));
        }
    }
    // alice and bob try each other's bucket; root reads both.
    let threads_of = |u: usize| (first_thread[u]..first_thread[u] + USERS[u].1).collect::<Vec<_>>();
    for w in &mut workers {
        w.foreign = match w.u {
            0 => Some(("bob-main".into(), threads_of(1))),
            1 => Some(("alice-main".into(), threads_of(0))),
            _ => None,
        };
    }
    workers
}

/// A client with `c`'s address and keys (common's Client is not Clone).
fn same_keys(c: &Client) -> Client {
    let mut copy = Client::new(&c.addr);
    (copy.access_key, copy.secret_key) = (c.access_key.clone(), c.secret_key.clone());
    copy
}

/// splitmix64: small, seedable, good enough to pick operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// 0 to n - 1.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// lo to hi, both included.
    fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
}

/// A piece of a body: `pattern(size, seed)`, seeds odd and never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Piece {
    size: usize,
    seed: u64,
}

fn body_bytes(body: &[Piece]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(body_len(body));
    for piece in body {
        bytes.extend_from_slice(&pattern(piece.size, piece.seed));
    }
    bytes
}

fn body_len(body: &[Piece]) -> usize {
    body.iter().map(|p| p.size).sum()
}

fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

fn content_md5(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(bytes))
}

/// The ETag S3 gives a multipart object: the MD5 of the parts' MD5s, then `-N`.
fn multipart_etag(etags: &[String]) -> String {
    let mut md5 = Md5::new();
    for etag in etags {
        md5.update(hex::decode(etag.trim_matches('"')).expect("a hex part ETag"));
    }
    format!("\"{}-{}\"", hex::encode(md5.finalize()), etags.len())
}

type Tags = Vec<(String, String)>;

/// What the model knows a key of the plain bucket holds.
#[derive(Clone, Debug)]
struct Obj {
    body: Vec<Piece>,
    etag: String,
    tags: Tags,
}

/// One entry of a versioned key, oldest first; `body` None is a delete marker.
#[derive(Clone, Debug)]
struct Ver {
    id: String,
    body: Option<Piece>,
}

struct Upload {
    key: usize,
    id: String,
    /// Part number -> (piece, quoted ETag).
    parts: BTreeMap<usize, (Piece, String)>,
    tags: Tags,
}

/// Key `k` of thread `t`: plain, with spaces, with `&+-é"<>` and a literal
/// `%2F`, or with unicode and `//`.
fn key_name(t: usize, k: usize) -> String {
    match k % 4 {
        0 => format!("t{t}/k{k}"),
        1 => format!("t{t}/dir a/sp ace {k}"),
        2 => format!("t{t}/&+-é\"<{k}>%2F"),
        _ => format!("t{t}/ünï//ç/{k}"),
    }
}

fn vkey_name(t: usize, k: usize) -> String {
    format!("t{t}/v{k} é")
}

fn obj_path(bucket: &str, key: &str) -> String {
    format!("/{bucket}/{}", uri_encode(key, false))
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

/// The inner text of every `<name>` element of `text`, in order.
fn blocks<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    text.split(open.as_str()).skip(1).filter_map(|s| s.split(close.as_str()).next()).collect()
}

/// The unescaped text of the first `<name>` inside `block` ("" if none).
fn child(block: &str, name: &str) -> String {
    blocks(block, name).first().map(|s| xml_unescape(s)).unwrap_or_default()
}

fn tags_xml(tags: &Tags) -> String {
    let tags: String = tags
        .iter()
        .map(|(k, v)| format!("<Tag><Key>{}</Key><Value>{}</Value></Tag>", xml_escape(k), xml_escape(v)))
        .collect();
    format!("<Tagging><TagSet>{tags}</TagSet></Tagging>")
}

fn tags_header(tags: &Tags) -> String {
    tags.iter().map(|(k, v)| format!("{}={}", uri_encode(k, true), uri_encode(v, true))).collect::<Vec<_>>().join("&")
}

/// What a response must be: a status, and for an error the code.
#[derive(Clone, Copy)]
struct Want {
    status: u16,
    code: Option<&'static str>,
}

const OK: Want = Want { status: 200, code: None };
const NO_CONTENT: Want = Want { status: 204, code: None };
const PARTIAL: Want = Want { status: 206, code: None };
const NO_SUCH_KEY: Want = Want { status: 404, code: Some("NoSuchKey") };
const NO_SUCH_UPLOAD: Want = Want { status: 404, code: Some("NoSuchUpload") };
const DENIED: Want = Want { status: 403, code: Some("AccessDenied") };

fn check(ok: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(why())
    }
}

fn check_header(resp: &Response, name: &str, want: &str, what: &str) -> Result<(), String> {
    let got = resp.header(name);
    check(got == Some(want), || format!("{what}: {name} {got:?} where the model has {want:?}"))
}

fn check_body(what: &str, got: &[u8], want: &[u8]) -> Result<(), String> {
    let at = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
    check(got == want, || {
        format!(
            "{what}: {} bytes (MD5 {}) where the model has {} bytes (MD5 {}), first difference at byte {at}",
            got.len(),
            md5_hex(got),
            want.len(),
            md5_hex(want)
        )
    })
}

#[derive(Default)]
struct Tally {
    ops: BTreeMap<&'static str, u64>,
    /// "op status code" -> count, for the errors the model predicted.
    expected: BTreeMap<String, u64>,
    sent: u64,
    received: u64,
    slowest: (Duration, String),
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        for (op, n) in &other.ops {
            *self.ops.entry(*op).or_default() += n;
        }
        for (what, n) in &other.expected {
            *self.expected.entry(what.clone()).or_default() += n;
        }
        self.sent += other.sent;
        self.received += other.received;
        if other.slowest.0 > self.slowest.0 {
            self.slowest = other.slowest.clone();
        }
    }
}

/// One client thread: its user's client, its keys and their model.
struct Worker {
    t: usize,
    /// Index into USERS.
    u: usize,
    user: &'static str,
    c: Client,
    bucket: String,
    vbucket: String,
    /// The other user's plain bucket and threads (None for root).
    foreign: Option<(String, Vec<usize>)>,
    rng: Rng,
    next_seed: u64,
    keys: Vec<Option<Obj>>,
    versions: Vec<Vec<Ver>>,
    uploads: Vec<Upload>,
    tally: Tally,
    /// The first unexpected answer: the thread stops there.
    failure: Option<String>,
}

type Step = Result<(), String>;

impl Worker {
    fn new(t: usize, u: usize, c: Client, bucket: String, vbucket: String, rng: Rng) -> Worker {
        Worker {
            t,
            u,
            user: USERS[u].0,
            c,
            bucket,
            vbucket,
            foreign: None,
            rng,
            next_seed: (t as u64 + 1) << 40,
            keys: vec![None; KEYS],
            versions: vec![Vec::new(); VKEYS],
            uploads: Vec::new(),
            tally: Tally::default(),
            failure: None,
        }
    }

    fn name(&self, k: usize) -> String {
        key_name(self.t, k)
    }

    fn path(&self, k: usize) -> String {
        obj_path(&self.bucket, &self.name(k))
    }

    fn vpath(&self, k: usize) -> String {
        obj_path(&self.vbucket, &vkey_name(self.t, k))
    }

    fn new_piece(&mut self, size: usize) -> Piece {
        self.next_seed += 1;
        Piece { size, seed: self.next_seed * 2 + 1 }
    }

    fn object_size(&mut self) -> usize {
        match self.rng.below(100) {
            0..=4 => 0,
            5..=19 => 4 * KIB,
            20..=64 => self.rng.between(1, 64 * KIB),
            65..=94 => self.rng.between(64 * KIB, MIB),
            _ => MIB,
        }
    }

    fn part_size(&mut self) -> usize {
        match self.rng.below(100) {
            0..=9 => MIN_PART + self.rng.below(2) * self.rng.between(1, 64 * KIB),
            10..=59 => self.rng.between(1, 64 * KIB),
            _ => self.rng.between(64 * KIB, 512 * KIB),
        }
    }

    fn present(&self) -> Vec<usize> {
        (0..KEYS).filter(|&k| self.keys[k].is_some()).collect()
    }

    fn run(&mut self, deadline: Instant) {
        while Instant::now() < deadline {
            if let Err(why) = self.step() {
                self.failure = Some(why);
                return;
            }
        }
    }

    fn step(&mut self) -> Step {
        match self.rng.below(100) {
            0..=19 => self.put(),
            20..=29 => self.get(),
            30..=35 => self.get_range(),
            36..=39 => self.head(),
            40..=44 => self.copy(),
            45..=47 => self.delete(),
            48..=50 => self.delete_objects(),
            51..=54 => {
                let max = [1, 3, 1000][self.rng.below(3)];
                self.check_listing(max)
            }
            55..=58 => self.tagging(),
            59..=61 => self.create(),
            62..=67 => self.upload_part(),
            68..=69 => self.list_parts(),
            70..=73 => self.complete(),
            74..=75 => self.abort(),
            76..=80 => self.vput(),
            81..=85 => self.vget(),
            86..=88 => self.vdelete(),
            89..=90 => self.check_versions(),
            91..=92 => self.list_buckets(),
            _ => self.cross(),
        }
    }

    /// Sends `req` (signed, or presigned) and checks its status and error code
    /// against `want`; counts what it sent and received.
    fn request(
        &mut self,
        op: &'static str,
        what: &str,
        req: &Req,
        want: Want,
        presigned: bool,
    ) -> Result<Response, String> {
        *self.tally.ops.entry(op).or_default() += 1;
        self.tally.sent += req.body.len() as u64;
        let started = Instant::now();
        let sent = if presigned { send_presigned(&self.c, req) } else { send(&self.c, req) };
        let resp = sent.map_err(|e| format!("{op} {what}: {e}"))?;
        let took = started.elapsed();
        if took > self.tally.slowest.0 {
            self.tally.slowest = (took, format!("{op} {what}"));
        }
        self.tally.received += resp.body.len() as u64;
        let code = resp.error_code();
        // A HEAD answer has no body, so no code to read.
        let code_ok = want.code.is_none() || req.method == "HEAD" || code.as_deref() == want.code;
        if resp.status == want.status && code_ok {
            if want.status >= 300 {
                let what = format!("{op}: {} {}", want.status, want.code.unwrap_or_default());
                *self.tally.expected.entry(what).or_default() += 1;
            }
            return Ok(resp);
        }
        let mut text = resp.text();
        text.truncate(400);
        Err(format!(
            "{op} {what:?}: HTTP {} {} where {} {} was expected: {text}",
            resp.status,
            code.unwrap_or_default(),
            want.status,
            want.code.unwrap_or_default()
        ))
    }

    fn call(&mut self, op: &'static str, what: &str, req: &Req, want: Want) -> Result<Response, String> {
        self.request(op, what, req, want, false)
    }

    fn put(&mut self) -> Step {
        let k = self.rng.below(KEYS);
        let size = self.object_size();
        let piece = self.new_piece(size);
        let tags: Tags = match self.rng.below(4) {
            0 => vec![("n".into(), piece.seed.to_string()), ("src".into(), "put é&=".into())],
            _ => Vec::new(),
        };
        let (bytes, path, name) = (pattern(size, piece.seed), self.path(k), self.name(k));
        let mut req = Req::new("PUT", &path).body(&bytes);
        if !tags.is_empty() {
            req = req.header("x-amz-tagging", tags_header(&tags));
        }
        let resp = self.call("PutObject", &name, &req, OK)?;
        let etag = format!("\"{}\"", md5_hex(&bytes));
        check_header(&resp, "etag", &etag, &format!("PutObject {name:?}"))?;
        self.keys[k] = Some(Obj { body: vec![piece], etag, tags });
        Ok(())
    }

    fn get(&mut self) -> Step {
        let k = self.rng.below(KEYS);
        self.get_key(k)
    }

    /// GetObject of key `k`: the model's bytes and ETag, or NoSuchKey.
    fn get_key(&mut self, k: usize) -> Step {
        let (path, name) = (self.path(k), self.name(k));
        let Some(obj) = self.keys[k].clone() else {
            return self.call("GetObject", &name, &Req::new("GET", &path), NO_SUCH_KEY).map(drop);
        };
        let resp = self.call("GetObject", &name, &Req::new("GET", &path), OK)?;
        let what = format!("GetObject {name:?}");
        check_body(&what, &resp.body, &body_bytes(&obj.body))?;
        check_header(&resp, "etag", &obj.etag, &what)
    }

    fn get_range(&mut self) -> Step {
        let sized: Vec<usize> =
            (0..KEYS).filter(|&k| self.keys[k].as_ref().is_some_and(|o| body_len(&o.body) > 0)).collect();
        if sized.is_empty() {
            return self.put();
        }
        let k = sized[self.rng.below(sized.len())];
        let body = body_bytes(&self.keys[k].as_ref().expect("present").body);
        let len = body.len();
        let (range, first, last) = match self.rng.below(3) {
            0 => {
                let first = self.rng.below(len);
                let last = self.rng.between(first, len + 100);
                (format!("bytes={first}-{last}"), first, last.min(len - 1))
            }
            1 => {
                let first = self.rng.below(len);
                (format!("bytes={first}-"), first, len - 1)
            }
            _ => {
                let n = self.rng.between(1, len + 10);
                (format!("bytes=-{n}"), len - n.min(len), len - 1)
            }
        };
        let (path, what) = (self.path(k), format!("{:?} {range}", self.name(k)));
        let resp =
            self.call("GetObject (Range)", &what, &Req::new("GET", &path).header("range", range.clone()), PARTIAL)?;
        let what = format!("GetObject {what}");
        check_header(&resp, "content-range", &format!("bytes {first}-{last}/{len}"), &what)?;
        check_body(&what, &resp.body, &body[first..=last])
    }

    fn head(&mut self) -> Step {
        let k = self.rng.below(KEYS);
        self.head_key(k)
    }

    fn head_key(&mut self, k: usize) -> Step {
        let (path, name) = (self.path(k), self.name(k));
        let Some(obj) = self.keys[k].clone() else {
            return self.call("HeadObject", &name, &Req::new("HEAD", &path), NO_SUCH_KEY).map(drop);
        };
        let resp = self.call("HeadObject", &name, &Req::new("HEAD", &path), OK)?;
        let what = format!("HeadObject {name:?}");
        check_header(&resp, "content-length", &body_len(&obj.body).to_string(), &what)?;
        check_header(&resp, "etag", &obj.etag, &what)
    }

    fn copy(&mut self) -> Step {
        let present = self.present();
        if present.is_empty() {
            return self.put();
        }
        let src = present[self.rng.below(present.len())];
        let dst = (src + 1 + self.rng.below(KEYS - 1)) % KEYS;
        let obj = self.keys[src].clone().expect("present");
        let (source, path) = (self.path(src), self.path(dst));
        let what = format!("{:?} <- {:?}", self.name(dst), self.name(src));
        let resp = self.call("CopyObject", &what, &Req::new("PUT", &path).header("x-amz-copy-source", source), OK)?;
        let etag = resp.elements("ETag").first().map(|e| xml_unescape(e)).unwrap_or_default();
        check(resp.text().contains("<CopyObjectResult") && !etag.is_empty(), || {
            format!("CopyObject {what}: 200 without a CopyObjectResult and ETag: {}", resp.text())
        })?;
        // A copy of a single-part object keeps its MD5 as ETag.
        check(obj.etag.contains('-') || etag == obj.etag, || {
            format!("CopyObject {what}: ETag {etag} where the source has {}", obj.etag)
        })?;
        self.keys[dst] = Some(Obj { etag, ..obj });
        Ok(())
    }

    fn delete(&mut self) -> Step {
        let k = self.rng.below(KEYS);
        let (path, name) = (self.path(k), self.name(k));
        self.call("DeleteObject", &name, &Req::new("DELETE", &path), NO_CONTENT)?;
        self.keys[k] = None;
        Ok(())
    }

    fn delete_objects(&mut self) -> Step {
        let n = self.rng.between(1, 4);
        let mut keys = BTreeSet::new();
        while keys.len() < n {
            keys.insert(self.rng.below(KEYS));
        }
        let objects: String =
            keys.iter().map(|&k| format!("<Object><Key>{}</Key></Object>", xml_escape(&self.name(k)))).collect();
        let xml = format!("<Delete>{objects}</Delete>");
        let path = format!("/{}", self.bucket);
        let req = Req::new("POST", &path).query("delete").header("content-md5", content_md5(xml.as_bytes()));
        let what = format!("{:?}", keys.iter().map(|&k| self.name(k)).collect::<Vec<_>>());
        let resp = self.call("DeleteObjects", &what, &req.body(xml.as_bytes()), OK)?;
        check(blocks(&resp.text(), "Deleted").len() == n && blocks(&resp.text(), "Error").is_empty(), || {
            format!("DeleteObjects {what}: not every key reported deleted: {}", resp.text())
        })?;
        for k in keys {
            self.keys[k] = None;
        }
        Ok(())
    }

    /// ListObjectsV2 of `bucket` under `prefix`, in pages of `max`: (key, size, ETag).
    fn list_objects(&mut self, bucket: &str, prefix: &str, max: usize) -> Result<Vec<(String, u64, String)>, String> {
        let (path, what) = (format!("/{bucket}"), format!("{bucket} prefix {prefix:?} max-keys {max}"));
        let mut listed = Vec::new();
        let mut token = None::<String>;
        for _ in 0..1000 {
            let mut query = format!("list-type=2&max-keys={max}&prefix={}", uri_encode(prefix, true));
            if let Some(token) = &token {
                let _ = write!(query, "&continuation-token={}", uri_encode(token, true));
            }
            let resp = self.call("ListObjectsV2", &what, &Req::new("GET", &path).query(&query), OK)?;
            let text = resp.text();
            for entry in blocks(&text, "Contents") {
                let size = child(entry, "Size").parse().unwrap_or(u64::MAX);
                listed.push((child(entry, "Key"), size, child(entry, "ETag")));
            }
            match child(&text, "IsTruncated").as_str() {
                "false" => return Ok(listed),
                "true" if !child(&text, "NextContinuationToken").is_empty() => {
                    token = Some(child(&text, "NextContinuationToken"));
                }
                _ => return Err(format!("ListObjectsV2 {what}: no IsTruncated or token: {text}")),
            }
        }
        Err(format!("ListObjectsV2 {what}: more than 1,000 pages"))
    }

    /// ListObjectsV2 of this thread's prefix equals the model.
    fn check_listing(&mut self, max: usize) -> Step {
        let mut model: Vec<(String, u64, String)> = (0..KEYS)
            .filter_map(|k| self.keys[k].as_ref().map(|o| (self.name(k), body_len(&o.body) as u64, o.etag.clone())))
            .collect();
        model.sort();
        let (bucket, prefix) = (self.bucket.clone(), format!("t{}/", self.t));
        let listed = self.list_objects(&bucket, &prefix, max)?;
        check(listed == model, || {
            format!("ListObjectsV2 {prefix} (max-keys {max}):\n  listed {listed:?}\n  model  {model:?}")
        })
    }

    fn tagging(&mut self) -> Step {
        let k = self.rng.below(KEYS);
        if self.keys[k].is_some() && self.rng.below(2) == 0 {
            let tags: Tags =
                vec![("seed".into(), self.new_piece(0).seed.to_string()), ("thread".into(), self.t.to_string())];
            let (path, xml) = (self.path(k), tags_xml(&tags));
            let req = Req::new("PUT", &path).query("tagging").header("content-md5", content_md5(xml.as_bytes()));
            self.call("PutObjectTagging", &self.name(k), &req.body(xml.as_bytes()), OK)?;
            self.keys[k].as_mut().expect("present").tags = tags;
        }
        self.check_tags(k)
    }

    /// GetObjectTagging of key `k` equals the model (NoSuchKey if absent).
    fn check_tags(&mut self, k: usize) -> Step {
        let (path, name) = (self.path(k), self.name(k));
        let req = Req::new("GET", &path).query("tagging");
        let Some(obj) = self.keys[k].clone() else {
            return self.call("GetObjectTagging", &name, &req, NO_SUCH_KEY).map(drop);
        };
        let resp = self.call("GetObjectTagging", &name, &req, OK)?;
        let text = resp.text();
        let mut tags: Tags = blocks(&text, "Tag").iter().map(|t| (child(t, "Key"), child(t, "Value"))).collect();
        tags.sort();
        check(tags == obj.tags, || format!("GetObjectTagging {name:?}: {tags:?} where the model has {:?}", obj.tags))
    }

    fn create(&mut self) -> Step {
        if self.uploads.len() >= MAX_UPLOADS {
            return self.upload_part();
        }
        let k = self.rng.below(KEYS);
        let tags: Tags = match self.rng.below(3) {
            0 => vec![("mpu".into(), self.new_piece(0).seed.to_string())],
            _ => Vec::new(),
        };
        let path = self.path(k);
        let mut req = Req::new("POST", &path).query("uploads");
        if !tags.is_empty() {
            req = req.header("x-amz-tagging", tags_header(&tags));
        }
        let resp = self.call("CreateMultipartUpload", &self.name(k), &req, OK)?;
        let id = resp.elements("UploadId").pop().unwrap_or_default();
        check(!id.is_empty(), || format!("CreateMultipartUpload {:?}: no UploadId: {}", self.name(k), resp.text()))?;
        self.uploads.push(Upload { key: k, id, parts: BTreeMap::new(), tags });
        Ok(())
    }

    fn upload_query(&self, u: usize) -> String {
        format!("uploadId={}", uri_encode(&self.uploads[u].id, true))
    }

    fn upload_what(&self, u: usize) -> String {
        format!("{:?} upload {}", self.name(self.uploads[u].key), self.uploads[u].id)
    }

    fn upload_part(&mut self) -> Step {
        if self.uploads.is_empty() {
            return self.create();
        }
        let u = self.rng.below(self.uploads.len());
        let number = self.rng.between(1, MAX_PART_NUMBER);
        let size = self.part_size();
        let piece = self.new_piece(size);
        let bytes = pattern(size, piece.seed);
        let (path, query) = (self.path(self.uploads[u].key), format!("partNumber={number}&{}", self.upload_query(u)));
        let what = format!("{} part {number} ({size} B)", self.upload_what(u));
        let op = if self.uploads[u].parts.contains_key(&number) { "UploadPart (again)" } else { "UploadPart" };
        let resp = self.call(op, &what, &Req::new("PUT", &path).query(&query).body(&bytes), OK)?;
        let etag = format!("\"{}\"", md5_hex(&bytes));
        check_header(&resp, "etag", &etag, &format!("UploadPart {what}"))?;
        self.uploads[u].parts.insert(number, (piece, etag));
        Ok(())
    }

    fn list_parts(&mut self) -> Step {
        if self.uploads.is_empty() {
            return self.create();
        }
        let u = self.rng.below(self.uploads.len());
        self.check_parts(u)
    }

    /// ListParts of upload `u` equals the model: numbers, ETags and sizes.
    fn check_parts(&mut self, u: usize) -> Step {
        let (path, query, what) = (self.path(self.uploads[u].key), self.upload_query(u), self.upload_what(u));
        let resp = self.call("ListParts", &what, &Req::new("GET", &path).query(&query), OK)?;
        let text = resp.text();
        let listed: Vec<(String, String, String)> = blocks(&text, "Part")
            .iter()
            .map(|p| (child(p, "PartNumber"), child(p, "ETag"), child(p, "Size")))
            .collect();
        let model: Vec<(String, String, String)> = self.uploads[u]
            .parts
            .iter()
            .map(|(n, (piece, etag))| (n.to_string(), etag.clone(), piece.size.to_string()))
            .collect();
        check(listed == model, || format!("ListParts {what}:\n  listed {listed:?}\n  model  {model:?}"))
    }

    /// Completes an upload with a random last part and, before it, a random
    /// choice of its parts of at least 5 MiB.
    fn complete(&mut self) -> Step {
        let ready: Vec<usize> = (0..self.uploads.len()).filter(|&u| !self.uploads[u].parts.is_empty()).collect();
        if ready.is_empty() {
            return self.upload_part();
        }
        let u = ready[self.rng.below(ready.len())];
        let parts: Vec<(usize, (Piece, String))> = self.uploads[u].parts.clone().into_iter().collect();
        let last = self.rng.below(parts.len());
        let mut chosen: Vec<&(usize, (Piece, String))> = Vec::new();
        for part in &parts[..last] {
            if part.1 .0.size >= MIN_PART && self.rng.below(2) == 0 {
                chosen.push(part);
            }
        }
        chosen.push(&parts[last]);
        let xml: String = chosen
            .iter()
            .map(|(n, (_, etag))| format!("<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"))
            .collect();
        let xml = format!("<CompleteMultipartUpload>{xml}</CompleteMultipartUpload>");
        let numbers: Vec<usize> = chosen.iter().map(|p| p.0).collect();
        let (path, query) = (self.path(self.uploads[u].key), self.upload_query(u));
        let what = format!("{} parts {numbers:?}", self.upload_what(u));
        let resp = self.call(
            "CompleteMultipartUpload",
            &what,
            &Req::new("POST", &path).query(&query).body(xml.as_bytes()),
            OK,
        )?;
        let etag = multipart_etag(&chosen.iter().map(|p| p.1 .1.clone()).collect::<Vec<_>>());
        let got = resp.elements("ETag").first().map(|e| xml_unescape(e));
        check(got.as_deref() == Some(etag.as_str()), || {
            format!("CompleteMultipartUpload {what}: ETag {got:?} where {etag} was expected: {}", resp.text())
        })?;
        let upload = self.uploads.remove(u);
        let body = chosen.iter().map(|p| p.1 .0).collect();
        self.keys[upload.key] = Some(Obj { body, etag, tags: upload.tags });
        Ok(())
    }

    fn abort(&mut self) -> Step {
        if self.uploads.is_empty() {
            return self.create();
        }
        let u = self.rng.below(self.uploads.len());
        self.abort_upload(u)
    }

    /// Aborts upload `u`; ListParts of it is then NoSuchUpload.
    fn abort_upload(&mut self, u: usize) -> Step {
        let (path, query, what) = (self.path(self.uploads[u].key), self.upload_query(u), self.upload_what(u));
        self.call("AbortMultipartUpload", &what, &Req::new("DELETE", &path).query(&query), NO_CONTENT)?;
        self.uploads.remove(u);
        self.call("ListParts", &what, &Req::new("GET", &path).query(&query), NO_SUCH_UPLOAD).map(drop)
    }

    fn vput(&mut self) -> Step {
        let k = self.rng.below(VKEYS);
        let size = self.object_size().min(256 * KIB);
        let piece = self.new_piece(size);
        let (bytes, path, name) = (pattern(size, piece.seed), self.vpath(k), vkey_name(self.t, k));
        let resp = self.call("PutObject (versioned)", &name, &Req::new("PUT", &path).body(&bytes), OK)?;
        let what = format!("PutObject (versioned) {name:?}");
        check_header(&resp, "etag", &format!("\"{}\"", md5_hex(&bytes)), &what)?;
        let id = resp.header("x-amz-version-id").unwrap_or_default().to_string();
        let fresh = !id.is_empty() && id != "null" && self.versions[k].iter().all(|v| v.id != id);
        check(fresh, || format!("{what}: version id {id:?}, not a new one"))?;
        self.versions[k].push(Ver { id, body: Some(piece) });
        self.trim_versions(k)
    }

    fn trim_versions(&mut self, k: usize) -> Step {
        while self.versions[k].len() > MAX_VERSIONS {
            self.delete_version(k, 0)?;
        }
        Ok(())
    }

    /// DeleteObject of entry `i` of versioned key `k` by its version id.
    fn delete_version(&mut self, k: usize, i: usize) -> Step {
        let ver = self.versions[k][i].clone();
        let (path, query) = (self.vpath(k), format!("versionId={}", uri_encode(&ver.id, true)));
        let what = format!("{:?} version {}", vkey_name(self.t, k), ver.id);
        let resp = self.call("DeleteObject (version)", &what, &Req::new("DELETE", &path).query(&query), NO_CONTENT)?;
        check_header(&resp, "x-amz-version-id", &ver.id, &format!("DeleteObject {what}"))?;
        if ver.body.is_none() {
            check_header(&resp, "x-amz-delete-marker", "true", &format!("DeleteObject {what}"))?;
        }
        self.versions[k].remove(i);
        Ok(())
    }

    fn vget(&mut self) -> Step {
        let k = self.rng.below(VKEYS);
        let stored: Vec<usize> = (0..self.versions[k].len()).filter(|&i| self.versions[k][i].body.is_some()).collect();
        if !stored.is_empty() && self.rng.below(2) == 0 {
            let i = stored[self.rng.below(stored.len())];
            return self.get_version(k, i);
        }
        let (path, name) = (self.vpath(k), vkey_name(self.t, k));
        let Some(Ver { id, body: Some(piece) }) = self.versions[k].last().cloned() else {
            // No version, or the latest is a delete marker.
            return self.call("GetObject (versioned)", &name, &Req::new("GET", &path), NO_SUCH_KEY).map(drop);
        };
        let resp = self.call("GetObject (versioned)", &name, &Req::new("GET", &path), OK)?;
        let what = format!("GetObject {name:?} (latest)");
        check_header(&resp, "x-amz-version-id", &id, &what)?;
        check_body(&what, &resp.body, &body_bytes(&[piece]))
    }

    /// GetObject of entry `i` (not a marker) of versioned key `k` by version id.
    fn get_version(&mut self, k: usize, i: usize) -> Step {
        let Ver { id, body } = self.versions[k][i].clone();
        let (path, query) = (self.vpath(k), format!("versionId={}", uri_encode(&id, true)));
        let what = format!("{:?} version {id}", vkey_name(self.t, k));
        let resp = self.call("GetObject (version)", &what, &Req::new("GET", &path).query(&query), OK)?;
        let what = format!("GetObject {what}");
        check_header(&resp, "x-amz-version-id", &id, &what)?;
        check_body(&what, &resp.body, &body_bytes(&[body.expect("not a marker")]))
    }

    fn vdelete(&mut self) -> Step {
        let k = self.rng.below(VKEYS);
        if self.versions[k].is_empty() {
            return self.vput();
        }
        if self.rng.below(2) == 0 {
            let i = self.rng.below(self.versions[k].len());
            return self.delete_version(k, i);
        }
        let (path, name) = (self.vpath(k), vkey_name(self.t, k));
        let resp = self.call("DeleteObject (marker)", &name, &Req::new("DELETE", &path), NO_CONTENT)?;
        let what = format!("DeleteObject {name:?} (versioned)");
        check_header(&resp, "x-amz-delete-marker", "true", &what)?;
        let id = resp.header("x-amz-version-id").unwrap_or_default().to_string();
        let fresh = !id.is_empty() && self.versions[k].iter().all(|v| v.id != id);
        check(fresh, || format!("{what}: marker version id {id:?}, not a new one"))?;
        self.versions[k].push(Ver { id, body: None });
        self.trim_versions(k)
    }

    /// ListObjectVersions of `bucket` under `prefix`: (is a marker, key, id, is latest).
    fn list_versions(&mut self, bucket: &str, prefix: &str) -> Result<Vec<(bool, String, String, bool)>, String> {
        let (path, query) = (format!("/{bucket}"), format!("versions&prefix={}", uri_encode(prefix, true)));
        let resp = self.call(
            "ListObjectVersions",
            &format!("{bucket} {prefix:?}"),
            &Req::new("GET", &path).query(&query),
            OK,
        )?;
        let text = resp.text();
        check(child(&text, "IsTruncated") == "false", || format!("ListObjectVersions {prefix}: truncated: {text}"))?;
        let mut rest = text.as_str();
        let mut listed = Vec::new();
        loop {
            let marker = match (rest.find("<Version>"), rest.find("<DeleteMarker>")) {
                (Some(v), Some(m)) => m < v,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (None, None) => return Ok(listed),
            };
            let (open, close) =
                if marker { ("<DeleteMarker>", "</DeleteMarker>") } else { ("<Version>", "</Version>") };
            let from = &rest[rest.find(open).expect("found") + open.len()..];
            let end = from.find(close).ok_or_else(|| format!("ListObjectVersions: unclosed {open}: {text}"))?;
            let entry = &from[..end];
            listed.push((marker, child(entry, "Key"), child(entry, "VersionId"), child(entry, "IsLatest") == "true"));
            rest = &from[end + close.len()..];
        }
    }

    /// What ListObjectVersions of this thread's prefix must show: keys in
    /// order, each newest first.
    fn versions_model(&self) -> Vec<(bool, String, String, bool)> {
        let mut keys: Vec<(String, usize)> = (0..VKEYS).map(|k| (vkey_name(self.t, k), k)).collect();
        keys.sort();
        let mut model = Vec::new();
        for (name, k) in keys {
            for (i, ver) in self.versions[k].iter().rev().enumerate() {
                model.push((ver.body.is_none(), name.clone(), ver.id.clone(), i == 0));
            }
        }
        model
    }

    fn check_versions(&mut self) -> Step {
        let (bucket, prefix) = (self.vbucket.clone(), format!("t{}/", self.t));
        let listed = self.list_versions(&bucket, &prefix)?;
        let model = self.versions_model();
        check(listed == model, || format!("ListObjectVersions {prefix}:\n  listed {listed:?}\n  model  {model:?}"))
    }

    /// ListBuckets: a user sees exactly their two buckets, root at least its own.
    fn list_buckets(&mut self) -> Step {
        let resp = self.call("ListBuckets", "", &Req::new("GET", "/"), OK)?;
        let names: BTreeSet<String> = resp.elements("Name").into_iter().collect();
        let own: BTreeSet<String> = [self.bucket.clone(), self.vbucket.clone()].into();
        let ok = if self.foreign.is_some() { names == own } else { names.is_superset(&own) };
        check(ok, || format!("ListBuckets as {}: {names:?}", self.user))
    }

    /// A request on the other user's bucket, which must be refused; root
    /// instead lists a user's bucket, which it may.
    fn cross(&mut self) -> Step {
        let Some((bucket, threads)) = self.foreign.clone() else {
            let bucket = ["alice-main", "bob-main"][self.rng.below(2)];
            let query = "list-type=2&max-keys=5";
            return self
                .call(
                    "ListObjectsV2 (root, a user's bucket)",
                    bucket,
                    &Req::new("GET", &format!("/{bucket}")).query(query),
                    OK,
                )
                .map(drop);
        };
        let theirs = obj_path(&bucket, &key_name(threads[self.rng.below(threads.len())], self.rng.below(KEYS)));
        let mine = obj_path(&bucket, &format!("intruder/t{}", self.t));
        let (body, bucket_path) = (pattern(self.rng.between(0, 4 * KIB), 7), format!("/{bucket}"));
        let (op, req, presigned) = match self.rng.below(7) {
            0 => ("GetObject (other user)", Req::new("GET", &theirs), false),
            1 => ("HeadObject (other user)", Req::new("HEAD", &theirs), false),
            2 => ("PutObject (other user)", Req::new("PUT", &mine).body(&body), false),
            3 => ("DeleteObject (other user)", Req::new("DELETE", &theirs), false),
            4 => ("ListObjectsV2 (other user)", Req::new("GET", &bucket_path).query("list-type=2"), false),
            5 => ("GetObject (other user, presigned)", Req::new("GET", &theirs), true),
            _ => ("PutObject (other user, presigned)", Req::new("PUT", &mine).body(&body), true),
        };
        self.request(op, req.path, &req, DENIED, presigned).map(drop)
    }

    /// Reads back everything this thread's model holds.
    fn verify(&mut self, verified: &mut Verified) -> Vec<String> {
        let mut failures = Vec::new();
        for k in 0..KEYS {
            failures.extend(self.get_key(k).err());
            failures.extend(self.head_key(k).err());
            failures.extend(self.check_tags(k).err());
            if let Some(obj) = &self.keys[k] {
                verified.objects += 1;
                verified.bytes += body_len(&obj.body) as u64;
            }
        }
        for k in 0..VKEYS {
            for i in 0..self.versions[k].len() {
                if let Some(piece) = self.versions[k][i].body {
                    failures.extend(self.get_version(k, i).err());
                    verified.versions += 1;
                    verified.bytes += piece.size as u64;
                }
            }
        }
        failures.extend(self.check_listing(1000).err());
        failures.extend(self.check_versions().err());
        for u in 0..self.uploads.len() {
            failures.extend(self.check_parts(u).err());
            verified.uploads += 1;
        }
        failures
    }
}

#[derive(Default)]
struct Verified {
    objects: u64,
    versions: u64,
    uploads: u64,
    bytes: u64,
}

/// ListMultipartUploads of `bucket`: (key, upload id).
fn list_uploads(w: &mut Worker, bucket: &str) -> Result<BTreeSet<(String, String)>, String> {
    let path = format!("/{bucket}");
    let resp = w.call("ListMultipartUploads", bucket, &Req::new("GET", &path).query("uploads"), OK)?;
    let text = resp.text();
    check(child(&text, "IsTruncated") == "false", || format!("ListMultipartUploads {bucket}: truncated: {text}"))?;
    Ok(blocks(&text, "Upload").iter().map(|u| (child(u, "Key"), child(u, "UploadId"))).collect())
}

/// Every thread's read-back; then per user, the whole buckets against the
/// union of its threads' models (nothing else in them, no intruder's key);
/// then every upload left is aborted and none may remain. Threads that
/// failed are left out: their model is in doubt.
fn verify_all(workers: &mut [Worker], verified: &mut Verified) -> Vec<String> {
    let broken: Vec<String> = workers.iter().filter(|w| w.failure.is_some()).map(|w| format!("t{}/", w.t)).collect();
    let ours = |key: &str| !broken.iter().any(|p| key.starts_with(p.as_str()));
    let mut failures = Vec::new();
    for w in workers.iter_mut().filter(|w| w.failure.is_none()) {
        failures.extend(w.verify(verified).into_iter().map(|f| format!("t{} at the end: {f}", w.t)));
    }
    for (u, (user, _)) in USERS.iter().enumerate() {
        failures.extend(check_buckets(workers, u, &ours).err().map(|f| format!("{user} at the end: {f}")));
    }
    for w in workers.iter_mut().filter(|w| w.failure.is_none()) {
        while !w.uploads.is_empty() {
            if let Err(why) = w.abort_upload(0) {
                failures.push(format!("t{} at the end: {why}", w.t));
                break;
            }
        }
    }
    for u in 0..USERS.len() {
        let w = workers.iter_mut().find(|w| w.u == u).expect("a thread per user");
        let bucket = w.bucket.clone();
        match list_uploads(w, &bucket) {
            Ok(left) if left.iter().all(|up| !ours(&up.0)) => {}
            Ok(left) => failures.push(format!("uploads left in {bucket} after aborting every one: {left:?}")),
            Err(why) => failures.push(why),
        }
    }
    failures
}

/// User `u`'s whole buckets against the union of its threads' models: no
/// key, upload or version is there that no thread knows (an intruder's).
fn check_buckets(workers: &mut [Worker], u: usize, ours: &dyn Fn(&str) -> bool) -> Step {
    let (mut objects, mut uploads, mut vkeys) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for w in workers.iter().filter(|w| w.u == u && w.failure.is_none()) {
        objects.extend((0..KEYS).filter(|&k| w.keys[k].is_some()).map(|k| w.name(k)));
        uploads.extend(w.uploads.iter().map(|up| (w.name(up.key), up.id.clone())));
        vkeys.extend((0..VKEYS).filter(|&k| !w.versions[k].is_empty()).map(|k| vkey_name(w.t, k)));
    }
    let w = workers.iter_mut().find(|w| w.u == u).expect("a thread per user");
    let (bucket, vbucket) = (w.bucket.clone(), w.vbucket.clone());
    let listed: BTreeSet<String> =
        w.list_objects(&bucket, "", 100)?.into_iter().map(|e| e.0).filter(|k| ours(k)).collect();
    check(listed == objects, || format!("ListObjectsV2 {bucket}:\n  listed {listed:?}\n  model  {objects:?}"))?;
    let listed: BTreeSet<(String, String)> = list_uploads(w, &bucket)?.into_iter().filter(|up| ours(&up.0)).collect();
    check(listed == uploads, || format!("ListMultipartUploads {bucket}:\n  listed {listed:?}\n  model  {uploads:?}"))?;
    let listed: BTreeSet<String> =
        w.list_versions(&vbucket, "")?.into_iter().map(|e| e.1).filter(|k| ours(k)).collect();
    check(listed == vkeys, || format!("ListObjectVersions {vbucket}:\n  listed {listed:?}\n  model  {vkeys:?}"))
}

/// Sends `req` signed (SigV4) on a new connection. Bodies over 64 KiB go as
/// UNSIGNED-PAYLOAD: hashing them in a debug build is slow.
fn send(c: &Client, req: &Req) -> Result<Response, String> {
    let unsigned = (req.body.len() > 64 * KIB).then_some("UNSIGNED-PAYLOAD");
    let head = c.signed_head(req, SystemTime::now(), req.body.len(), unsigned);
    exchange(&c.addr, &head, req.body, req.method == "HEAD")
}

/// Sends `req` as a SigV4 presigned URL of `c`'s keys.
fn send_presigned(c: &Client, req: &Req) -> Result<Response, String> {
    let target = c.presigned_target(req.method, req.path, req.query);
    let head = format!(
        "{} {target} HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        req.method,
        c.addr,
        req.body.len()
    );
    exchange(&c.addr, &head, req.body, req.method == "HEAD")
}

fn exchange(addr: &str, head: &str, body: &[u8], head_only: bool) -> Result<Response, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(60))).map_err(|e| format!("timeout: {e}"))?;
    stream.write_all(head.as_bytes()).map_err(|e| format!("write the head: {e}"))?;
    // On an error here, read whatever the server answered.
    let _ = stream.write_all(body);
    read_response(stream, head_only)
}

fn read_response(stream: TcpStream, head_only: bool) -> Result<Response, String> {
    let mut reader = BufReader::new(stream);
    let line = |reader: &mut BufReader<TcpStream>| -> Result<String, String> {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(_) if line.ends_with('\n') => Ok(line.trim_end().to_string()),
            Ok(_) => Err(format!("connection closed mid-head after {line:?}")),
            Err(e) => Err(format!("read the head: {e}")),
        }
    };
    loop {
        let status_line = line(&mut reader)?;
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let mut headers = Vec::new();
        loop {
            let header = line(&mut reader)?;
            if header.is_empty() {
                break;
            }
            if let Some((n, v)) = header.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        if status == 100 {
            continue;
        }
        let mut body = Vec::new();
        if !head_only && status != 204 && status != 304 {
            match headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse::<usize>().ok()) {
                Some(len) => {
                    body.resize(len, 0);
                    reader.read_exact(&mut body).map_err(|e| format!("HTTP {status}: body cut short: {e}"))?;
                }
                None => {
                    reader.read_to_end(&mut body).map_err(|e| format!("HTTP {status}: read the body: {e}"))?;
                }
            }
        }
        return Ok(Response { status, headers, body });
    }
}

/// `tessera user add NAME --json` on the stopped server's folder: (access key, secret).
fn add_user(data: &Path, name: &str) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["user", "add", name, "--json", "--data"])
        .arg(data)
        .args(common::suite_meta_args(data))
        .env("TESSERA_LOG", "warn")
        .output()
        .expect("run tessera user add");
    assert!(out.status.success(), "tessera user add {name}: {}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let field = |f: &str| json[f].as_str().unwrap_or_else(|| panic!("no {f} in {json}")).to_string();
    (field("access_key_id"), field("secret_access_key"))
}

/// The pid of the `tessera serve` on `data`: common's Server keeps its
/// child private, so it is found by its command line.
fn server_pid(data: &Path) -> u32 {
    let data = data.as_os_str().as_encoded_bytes();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        if args.contains(&&b"serve"[..]) && args.contains(&data) {
            return pid;
        }
    }
    panic!("no tessera serve process on {}", String::from_utf8_lossy(data));
}

/// VmRSS of `pid` in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// (seconds since `since`, RSS in KiB) every `every` until `stop`.
fn sample_rss(pid: u32, stop: &AtomicBool, every: Duration, since: Instant) -> Vec<(f64, u64)> {
    let mut samples = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        if let Some(kib) = rss_kib(pid) {
            samples.push((since.elapsed().as_secs_f64(), kib));
        }
        let next = Instant::now() + every;
        while Instant::now() < next && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    samples
}

/// After warm-up (the first third of the load) memory must stop growing:
/// the peak of the last third is at most max(1.5 x, + 64 MiB) of the first's.
fn check_memory(samples: &[(f64, u64)], secs: f64) -> Result<String, String> {
    let peak = |from: f64, to: f64| samples.iter().filter(|s| s.0 >= from && s.0 < to).map(|s| s.1).max();
    let count = |from: f64, to: f64| samples.iter().filter(|s| s.0 >= from && s.0 < to).count();
    let (first, last) = (peak(0.0, secs / 3.0), peak(secs * 2.0 / 3.0, f64::MAX));
    let (Some(first), Some(last)) = (first, last) else {
        return Err(format!("too few RSS samples: {samples:?}"));
    };
    if count(0.0, secs / 3.0) < 3 || count(secs * 2.0 / 3.0, f64::MAX) < 3 {
        return Err(format!("too few RSS samples: {samples:?}"));
    }
    let limit = (first * 3 / 2).max(first + 64 * 1024);
    let line = format!(
        "peak RSS {:.1} MiB in the first third, {:.1} MiB in the last (limit {:.1} MiB)",
        first as f64 / 1024.0,
        last as f64 / 1024.0,
        limit as f64 / 1024.0
    );
    if last > limit {
        Err(format!("memory keeps growing: {line}"))
    } else {
        Ok(line)
    }
}

/// Lines of the server's log that no soak may cause: a panic or an ERROR.
fn check_log(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let bad: Vec<&str> = text.lines().filter(|l| l.contains("panicked") || l.contains("ERROR")).take(10).collect();
    if bad.is_empty() {
        Vec::new()
    } else {
        vec![format!("the server logged:\n{}", bad.join("\n"))]
    }
}

fn scrub(data: &Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["scrub", "--data"])
        .arg(data)
        .args(common::suite_meta_args(data))
        .env("TESSERA_LOG", "warn")
        .output()
        .expect("run tessera scrub");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code(), text)
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    format!("server log ({}), last lines:\n{}", log.display(), lines[lines.len().saturating_sub(30)..].join("\n"))
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.trim().parse().unwrap_or_else(|_| panic!("{name}={value:?} is not a number")))
}

fn summary(
    workers: &[Worker],
    samples: &[(f64, u64)],
    memory: &Result<String, String>,
    rss_end: Option<u64>,
    verified: &Verified,
    load: Duration,
    total: Duration,
) -> String {
    let mut tally = Tally::default();
    for w in workers {
        tally.add(&w.tally);
    }
    let ops: u64 = tally.ops.values().sum();
    let mut out = format!(
        "soak summary: {} threads, {ops} requests in {load:.1?} of load ({:.0}/s), {total:.1?} in all; \
         {:.1} MiB sent, {:.1} MiB received; slowest: {:.2?} ({})\n",
        workers.len(),
        ops as f64 / load.as_secs_f64(),
        tally.sent as f64 / MIB as f64,
        tally.received as f64 / MIB as f64,
        tally.slowest.0,
        tally.slowest.1
    );
    out.push_str("  requests per operation:\n");
    for (op, n) in &tally.ops {
        let _ = writeln!(out, "    {op:<40} {n:>7}");
    }
    out.push_str("  expected errors:\n");
    for (what, n) in &tally.expected {
        let _ = writeln!(out, "    {what:<56} {n:>7}");
    }
    let _ = writeln!(
        out,
        "  verified at the end: {} objects and {} versions byte-exact ({:.1} MiB), {} uploads' parts, then aborted",
        verified.objects,
        verified.versions,
        verified.bytes as f64 / MIB as f64,
        verified.uploads
    );
    let every = samples.get(1).map_or(0.0, |s| s.0) - samples.first().map_or(0.0, |s| s.0);
    let rss: Vec<String> = samples.iter().map(|s| format!("{:.0}", s.1 as f64 / 1024.0)).collect();
    let _ = writeln!(out, "  server RSS (MiB, every {every:.1} s): {}", rss.join(" "));
    let _ = write!(
        out,
        "  {}; after the load {:.1} MiB",
        memory.as_ref().unwrap_or_else(|e| e),
        rss_end.unwrap_or_default() as f64 / 1024.0
    );
    out
}
