//! Crash consistency, tested (issue 12). Client threads loop over PutObject,
//! CopyObject, DeleteObjects, CreateMultipartUpload, UploadPart,
//! CompleteMultipartUpload and AbortMultipartUpload while the server is
//! killed with SIGKILL at a random moment; after each restart a model of what
//! was acknowledged (a full 2xx response) is checked:
//!
//! - every acknowledged write reads back byte-exact;
//! - a write in flight at the kill left its key whole, as before or as after,
//!   never torn; a DeleteObjects in flight left each key as before or absent;
//! - ListParts shows every acknowledged part with its ETag (a part in flight
//!   is absent, old or new), Complete of acknowledged parts builds the right
//!   bytes, and a Complete in flight is all or nothing (object and upload);
//! - ListObjectsV2 and ListMultipartUploads agree with the model.
//!
//! Each doubt is then settled by what was read. Each thread has its own keys,
//! so no two operations race on one key and at most one per thread is in
//! doubt. At the end everything is deleted and aborted; after one more restart
//! (the orphan sweep runs at start-up) no blob file is left, and `tessera
//! scrub` passes on the folder left by the last kill and on the emptied one.
//!
//! Modes: `kill_loop_ci` (`TESSERA_KILL_LOOPS` kills, default 200) and the
//! ignored `kill_loop_long` (default 2,000, more 5 MiB parts), run with
//! `cargo nextest run --run-ignored only -E 'binary(kill_loop)'`.
//! `TESSERA_KILL_SEED` replays a run's choices (bodies, operations, kill
//! delays); where a kill lands among the operations still depends on timing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

mod common;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime};

use common::{blob_files, pattern, Client, Req, Response, Server};
use md5::{Digest, Md5};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;
const BUCKET: &str = "killloop";
/// Keys per client thread (each thread has its own).
const KEYS: usize = 6;
/// Uploads in progress per client thread, at most.
const MAX_UPLOADS: usize = 3;
/// Parts are numbered 1 to this, so some parts are uploaded again.
const MAX_PART_NUMBER: usize = 6;
/// Operations a thread remembers for a failure report.
const HISTORY: usize = 5000;

struct Mode {
    name: &'static str,
    default_loops: usize,
    /// Share of parts that are 5 MiB (the least a part other than the last may be).
    big_part_percent: usize,
    threads: (usize, usize),
}

#[test]
fn kill_loop_ci() {
    kill_loop(&Mode { name: "ci", default_loops: 200, big_part_percent: 2, threads: (2, 3) });
}

#[test]
#[ignore = "long mode (2,000 kills by default): cargo nextest run --run-ignored only -E 'binary(kill_loop)'"]
fn kill_loop_long() {
    kill_loop(&Mode { name: "long", default_loops: 2000, big_part_percent: 8, threads: (3, 3) });
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

/// A piece of a body: `pattern(size, seed)`. Seeds are odd and never reused
/// (`pattern` ignores the lowest bit), so two pieces are equal only if their bytes are.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Piece {
    size: usize,
    seed: u64,
}

impl Piece {
    fn bytes(self) -> Vec<u8> {
        pattern(self.size, self.seed)
    }
}

/// An object's body: one piece for PutObject, the chosen parts for Complete.
type Body = Vec<Piece>;

fn body_len(body: &[Piece]) -> usize {
    body.iter().map(|p| p.size).sum()
}

fn body_bytes(body: &[Piece]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(body_len(body));
    for piece in body {
        bytes.extend_from_slice(&piece.bytes());
    }
    bytes
}

fn show_body(body: &[Piece]) -> String {
    let pieces: Vec<String> = body.iter().map(|p| format!("{}#{:x}", p.size, p.seed)).collect();
    format!("{} B [{}]", body_len(body), pieces.join(" + "))
}

fn show(state: &Option<Body>) -> String {
    state.as_ref().map_or_else(|| "absent".to_string(), |b| show_body(b))
}

fn same_bytes(a: &Option<Body>, b: &Option<Body>) -> bool {
    a.as_ref().map(|x| body_bytes(x)) == b.as_ref().map(|x| body_bytes(x))
}

fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Put,
    Copy,
    Delete,
    Create,
    Part,
    Complete,
    Abort,
}

const KINDS: [&str; 7] = [
    "PutObject",
    "CopyObject",
    "DeleteObjects",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
    "AbortMultipartUpload",
];

#[derive(Default, Clone)]
struct Stats {
    acked: [u64; 7],
    in_flight: [u64; 7],
    applied: [u64; 7],
    not_applied: [u64; 7],
    /// Both outcomes read the same (such as deleting an absent key).
    either: [u64; 7],
    /// A DeleteObjects in flight that removed some of its keys only.
    partial: [u64; 7],
}

impl Stats {
    fn add(&mut self, other: &Stats) {
        for i in 0..KINDS.len() {
            self.acked[i] += other.acked[i];
            self.in_flight[i] += other.in_flight[i];
            self.applied[i] += other.applied[i];
            self.not_applied[i] += other.not_applied[i];
            self.either[i] += other.either[i];
            self.partial[i] += other.partial[i];
        }
    }
}

#[derive(Clone, Debug)]
struct Part {
    piece: Piece,
    /// The MD5 in hex, without quotes.
    etag: String,
}

struct Upload {
    key: usize,
    id: String,
    parts: BTreeMap<u32, Part>,
}

/// The operation a thread had sent and got no full answer to when the server died.
enum Pending {
    /// PutObject or CopyObject.
    Write {
        kind: Kind,
        key: usize,
        body: Body,
    },
    Delete {
        keys: Vec<usize>,
    },
    Create {
        key: usize,
    },
    Part {
        upload: usize,
        number: u32,
        piece: Piece,
    },
    Complete {
        upload: usize,
        body: Body,
    },
    Abort {
        upload: usize,
    },
}

impl Pending {
    fn kind(&self) -> Kind {
        match self {
            Pending::Write { kind, .. } => *kind,
            Pending::Delete { .. } => Kind::Delete,
            Pending::Create { .. } => Kind::Create,
            Pending::Part { .. } => Kind::Part,
            Pending::Complete { .. } => Kind::Complete,
            Pending::Abort { .. } => Kind::Abort,
        }
    }
}

/// Why a request got no answer to count.
enum Failure {
    /// Not even connected: the server is gone, nothing was sent.
    NotSent,
    /// Sent (maybe in part), no full response: the server died meanwhile.
    Died,
    /// A response this harness cannot trust as complete.
    Protocol(String),
}

/// Why a thread stops.
enum Stop {
    Died,
    Unexpected(String),
}

/// Sends `req` on a new connection; Ok only with a full response. Bodies over
/// 64 KiB go as UNSIGNED-PAYLOAD (hashing them in a debug build is slow).
fn send(c: &Client, req: Req) -> Result<Response, Failure> {
    let Ok(mut stream) = TcpStream::connect(&c.addr) else { return Err(Failure::NotSent) };
    stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(|_| Failure::Died)?;
    let unsigned = (req.body.len() > 64 * KIB).then_some("UNSIGNED-PAYLOAD");
    let head = c.signed_head(&req, SystemTime::now(), req.body.len(), unsigned);
    stream.write_all(head.as_bytes()).map_err(|_| Failure::Died)?;
    // On an error here, read whatever the server answered.
    let _ = stream.write_all(req.body);
    read_response(stream, req.method == "HEAD")
}

/// One response, or Died when the connection ends before all of it arrived.
fn read_response(stream: TcpStream, head_only: bool) -> Result<Response, Failure> {
    let mut reader = BufReader::new(stream);
    let line = |reader: &mut BufReader<TcpStream>| -> Result<String, Failure> {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(_) if line.ends_with('\n') => Ok(line.trim_end().to_string()),
            _ => Err(Failure::Died),
        }
    };
    loop {
        let status_line = line(&mut reader)?;
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Failure::Protocol(format!("bad status line {status_line:?}")))?;
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
            let len = headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse::<usize>().ok());
            let Some(len) = len else {
                // A close-delimited body cut by the kill would look complete.
                return Err(Failure::Protocol(format!("HTTP {status} without a Content-Length")));
            };
            body.resize(len, 0);
            reader.read_exact(&mut body).map_err(|_| Failure::Died)?;
        }
        return Ok(Response { status, headers, body });
    }
}

/// One client thread's keys, uploads and counters: its part of the model.
struct Worker {
    t: usize,
    /// What each key certainly holds (None: absent).
    keys: Vec<Option<Body>>,
    uploads: Vec<Upload>,
    /// The operation in doubt after the kill, with its description.
    pending: Option<(Pending, String)>,
    next_seed: u64,
    rng: Rng,
    cycle: usize,
    big_part_percent: usize,
    stats: Stats,
    history: VecDeque<String>,
    unexpected: Option<String>,
}

impl Worker {
    fn new(t: usize, big_part_percent: usize) -> Worker {
        Worker {
            t,
            keys: vec![None; KEYS],
            uploads: Vec::new(),
            pending: None,
            next_seed: (t as u64 + 1) << 40,
            rng: Rng(0),
            cycle: 0,
            big_part_percent,
            stats: Stats::default(),
            history: VecDeque::new(),
            unexpected: None,
        }
    }

    fn name(&self, key: usize) -> String {
        format!("t{}/k{key}", self.t)
    }

    fn path(&self, key: usize) -> String {
        format!("/{BUCKET}/{}", self.name(key))
    }

    fn log(&mut self, text: String) {
        self.history.push_back(format!("cycle {}: {text}", self.cycle));
        if self.history.len() > HISTORY {
            self.history.pop_front();
        }
    }

    /// A failure report: `what`, then this thread's operations that name `label`.
    fn report(&self, label: &str, what: &str) -> String {
        let lines: Vec<&String> = self.history.iter().filter(|h| h.contains(label)).collect();
        let shown = &lines[lines.len().saturating_sub(40)..];
        let mut text = format!("{what}\n  last operations on {label} (cycle N = before the Nth kill):");
        for line in shown {
            let _ = write!(text, "\n    {line}");
        }
        text
    }

    fn new_piece(&mut self, size: usize) -> Piece {
        self.next_seed += 1;
        Piece { size, seed: self.next_seed * 2 + 1 }
    }

    fn object_size(&mut self) -> usize {
        match self.rng.below(100) {
            0..=4 => 0,
            5..=74 => self.rng.between(1, 40 * KIB),
            _ => self.rng.between(100 * KIB, 300 * KIB),
        }
    }

    fn part_size(&mut self) -> usize {
        if self.rng.below(100) < self.big_part_percent {
            return 5 * MIB + [0, 1, 4096][self.rng.below(3)];
        }
        match self.rng.below(100) {
            0..=79 => self.rng.between(1, 40 * KIB),
            _ => self.rng.between(100 * KIB, 300 * KIB),
        }
    }

    /// Runs operations until the server dies under it (or answers wrongly).
    fn run(&mut self, c: &Client) {
        loop {
            match self.step(c) {
                Ok(()) => {}
                Err(Stop::Died) => return,
                Err(Stop::Unexpected(why)) => {
                    self.log(format!("UNEXPECTED: {why}"));
                    self.unexpected = Some(why);
                    return;
                }
            }
        }
    }

    fn step(&mut self, c: &Client) -> Result<(), Stop> {
        let roll = self.rng.below(100);
        let completable = self.uploads.iter().any(|u| !u.parts.is_empty());
        match roll {
            _ if self.uploads.is_empty() && roll >= 60 => self.create(c),
            0..=29 => self.put(c),
            30..=41 if self.keys.iter().any(Option::is_some) => self.copy(c),
            42..=51 => self.delete(c),
            52..=59 if self.uploads.len() < MAX_UPLOADS => self.create(c),
            60..=83 => self.part(c),
            84..=92 if completable => self.complete(c),
            84..=92 => self.part(c),
            93..=99 => self.abort(c),
            _ => self.put(c),
        }
    }

    /// Sends `req` with `pending` as the operation in doubt until it is answered.
    fn exchange(&mut self, c: &Client, pending: Pending, what: &str, req: Req) -> Result<Response, Stop> {
        let kind = pending.kind();
        self.pending = Some((pending, what.to_string()));
        match send(c, req) {
            Ok(resp) => Ok(resp),
            Err(Failure::NotSent) => {
                self.pending = None;
                Err(Stop::Died)
            }
            Err(Failure::Died) => {
                self.stats.in_flight[kind as usize] += 1;
                self.log(format!("{what}: in flight at the kill"));
                Err(Stop::Died)
            }
            Err(Failure::Protocol(why)) => Err(Stop::Unexpected(format!("{what}: {why}"))),
        }
    }

    fn expect(resp: &Response, status: u16, what: &str) -> Result<(), Stop> {
        match resp.status == status {
            true => Ok(()),
            false => Err(Stop::Unexpected(format!("{what}: HTTP {} {}", resp.status, resp.text()))),
        }
    }

    /// The operation in doubt got its full answer.
    fn acked(&mut self, what: String) {
        let (pending, _) = self.pending.take().expect("an operation was pending");
        self.stats.acked[pending.kind() as usize] += 1;
        self.log(format!("{what}: acknowledged"));
    }

    fn put(&mut self, c: &Client) -> Result<(), Stop> {
        let key = self.rng.below(KEYS);
        let size = self.object_size();
        let body = vec![self.new_piece(size)];
        let bytes = body_bytes(&body);
        let (path, what) = (self.path(key), format!("PutObject [{}] <- {}", self.name(key), show_body(&body)));
        let pending = Pending::Write { kind: Kind::Put, key, body: body.clone() };
        let resp = self.exchange(c, pending, &what, Req::new("PUT", &path).body(&bytes))?;
        Self::expect(&resp, 200, &what)?;
        self.keys[key] = Some(body);
        self.acked(what);
        Ok(())
    }

    fn copy(&mut self, c: &Client) -> Result<(), Stop> {
        let present: Vec<usize> = (0..KEYS).filter(|k| self.keys[*k].is_some()).collect();
        let src = present[self.rng.below(present.len())];
        let dst = (src + 1 + self.rng.below(KEYS - 1)) % KEYS;
        let body = self.keys[src].clone().expect("a present source");
        let source = format!("/{BUCKET}/{}", self.name(src));
        let what = format!("CopyObject [{}] <- [{}] = {}", self.name(dst), self.name(src), show_body(&body));
        let path = self.path(dst);
        let pending = Pending::Write { kind: Kind::Copy, key: dst, body: body.clone() };
        let resp = self.exchange(c, pending, &what, Req::new("PUT", &path).header("x-amz-copy-source", source))?;
        Self::expect(&resp, 200, &what)?;
        if !resp.text().contains("<CopyObjectResult") {
            return Err(Stop::Unexpected(format!("{what}: 200 without a CopyObjectResult: {}", resp.text())));
        }
        self.keys[dst] = Some(body);
        self.acked(what);
        Ok(())
    }

    fn delete(&mut self, c: &Client) -> Result<(), Stop> {
        let n = self.rng.between(1, 3);
        let mut keys = Vec::new();
        while keys.len() < n {
            let key = self.rng.below(KEYS);
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        keys.sort_unstable();
        let objects: String = keys.iter().map(|k| format!("<Object><Key>{}</Key></Object>", self.name(*k))).collect();
        let xml = format!("<Delete>{objects}</Delete>");
        let names: Vec<String> = keys.iter().map(|k| format!("[{}]", self.name(*k))).collect();
        let what = format!("DeleteObjects {}", names.join(" "));
        let bucket = format!("/{BUCKET}");
        let req = Req::new("POST", &bucket).query("delete").body(xml.as_bytes());
        let resp = self.exchange(c, Pending::Delete { keys: keys.clone() }, &what, req)?;
        Self::expect(&resp, 200, &what)?;
        if resp.elements("Deleted").len() != n || !resp.elements("Error").is_empty() {
            return Err(Stop::Unexpected(format!("{what}: not every key reported deleted: {}", resp.text())));
        }
        for key in keys {
            self.keys[key] = None;
        }
        self.acked(what);
        Ok(())
    }

    fn create(&mut self, c: &Client) -> Result<(), Stop> {
        let key = self.rng.below(KEYS);
        let (path, what) = (self.path(key), format!("CreateMultipartUpload [{}]", self.name(key)));
        let resp = self.exchange(c, Pending::Create { key }, &what, Req::new("POST", &path).query("uploads"))?;
        Self::expect(&resp, 200, &what)?;
        let Some(id) = resp.elements("UploadId").pop() else {
            return Err(Stop::Unexpected(format!("{what}: no UploadId in {}", resp.text())));
        };
        self.acked(format!("{what} = upload {id}"));
        self.uploads.push(Upload { key, id, parts: BTreeMap::new() });
        Ok(())
    }

    fn part(&mut self, c: &Client) -> Result<(), Stop> {
        let upload = self.rng.below(self.uploads.len());
        let number = self.rng.between(1, MAX_PART_NUMBER) as u32;
        let size = self.part_size();
        let piece = self.new_piece(size);
        let bytes = piece.bytes();
        let (key, id) = (self.uploads[upload].key, self.uploads[upload].id.clone());
        let what = format!("UploadPart [{}] upload {id} part {number} <- {size}#{:x}", self.name(key), piece.seed);
        let (path, query) = (self.path(key), format!("partNumber={number}&uploadId={id}"));
        let req = Req::new("PUT", &path).query(&query).body(&bytes);
        let resp = self.exchange(c, Pending::Part { upload, number, piece }, &what, req)?;
        Self::expect(&resp, 200, &what)?;
        let etag = resp.header("etag").unwrap_or_default().trim_matches('"').to_string();
        if etag != md5_hex(&bytes) {
            return Err(Stop::Unexpected(format!("{what}: ETag {etag:?} is not the part's MD5")));
        }
        self.uploads[upload].parts.insert(number, Part { piece, etag });
        self.acked(what);
        Ok(())
    }

    fn complete(&mut self, c: &Client) -> Result<(), Stop> {
        let candidates: Vec<usize> = (0..self.uploads.len()).filter(|u| !self.uploads[*u].parts.is_empty()).collect();
        let upload = candidates[self.rng.below(candidates.len())];
        let numbers: Vec<u32> = self.uploads[upload].parts.keys().copied().collect();
        let last = numbers[self.rng.below(numbers.len())];
        // Every part but the last must be 5 MiB or more.
        let chosen: Vec<(u32, Part)> = self.uploads[upload]
            .parts
            .iter()
            .filter(|(n, p)| **n == last || (**n < last && p.piece.size >= 5 * MIB))
            .map(|(n, p)| (*n, p.clone()))
            .collect();
        let body: Body = chosen.iter().map(|(_, p)| p.piece).collect();
        let mut xml = String::from("<CompleteMultipartUpload>");
        for (n, part) in &chosen {
            let _ = write!(xml, "<Part><PartNumber>{n}</PartNumber><ETag>\"{}\"</ETag></Part>", part.etag);
        }
        xml.push_str("</CompleteMultipartUpload>");
        let (key, id) = (self.uploads[upload].key, self.uploads[upload].id.clone());
        let listed: Vec<u32> = chosen.iter().map(|(n, _)| *n).collect();
        let what = format!(
            "CompleteMultipartUpload [{}] upload {id} parts {listed:?} (of {numbers:?}) = {}",
            self.name(key),
            show_body(&body)
        );
        let (path, query) = (self.path(key), format!("uploadId={id}"));
        let req = Req::new("POST", &path).query(&query).body(xml.as_bytes());
        let resp = self.exchange(c, Pending::Complete { upload, body: body.clone() }, &what, req)?;
        Self::expect(&resp, 200, &what)?;
        if !resp.text().contains("<CompleteMultipartUploadResult") {
            return Err(Stop::Unexpected(format!("{what}: 200 without a result: {}", resp.text())));
        }
        self.keys[key] = Some(body);
        self.uploads.remove(upload);
        self.acked(what);
        Ok(())
    }

    fn abort(&mut self, c: &Client) -> Result<(), Stop> {
        let upload = self.rng.below(self.uploads.len());
        let (key, id) = (self.uploads[upload].key, self.uploads[upload].id.clone());
        let what = format!("AbortMultipartUpload [{}] upload {id}", self.name(key));
        let (path, query) = (self.path(key), format!("uploadId={id}"));
        let resp = self.exchange(c, Pending::Abort { upload }, &what, Req::new("DELETE", &path).query(&query))?;
        Self::expect(&resp, 204, &what)?;
        self.uploads.remove(upload);
        self.acked(what);
        Ok(())
    }

    /// Checks the restarted server against this thread's model, settles the
    /// operation in doubt by what it reads, and returns the failures found.
    /// `objects` and `listed_uploads` are the bucket's listings; this
    /// thread's uploads are taken out of `listed_uploads`.
    fn verify(
        &mut self,
        c: &Client,
        objects: &BTreeSet<String>,
        listed_uploads: &mut BTreeSet<(String, String)>,
    ) -> Vec<String> {
        let mut failures = Vec::new();
        let (pending, pending_what) = match self.pending.take() {
            Some((p, what)) => (Some(p), what),
            None => (None, String::new()),
        };
        let before = self.keys.clone();

        // Objects: each reads as one of the states it may be in.
        let mut allowed: Vec<Vec<Option<Body>>> = self.keys.iter().map(|s| vec![s.clone()]).collect();
        match &pending {
            Some(Pending::Write { key, body, .. }) => allowed[*key].push(Some(body.clone())),
            Some(Pending::Delete { keys }) => keys.iter().for_each(|k| allowed[*k].push(None)),
            Some(Pending::Complete { upload, body }) => allowed[self.uploads[*upload].key].push(Some(body.clone())),
            _ => {}
        }
        for (key, allowed) in allowed.iter().enumerate() {
            let label = format!("[{}]", self.name(key));
            let resp = c.send(Req::new("GET", &self.path(key)));
            match read_as(&resp, allowed) {
                Ok(state) => self.keys[key] = state,
                Err(why) => failures.push(self.report(&label, &format!("GET {label}: {why}"))),
            }
            let listed = objects.contains(&self.name(key));
            if listed != self.keys[key].is_some() {
                let what =
                    format!("ListObjectsV2 {} {label}, GET reads {}", listed_word(listed), show(&self.keys[key]));
                failures.push(self.report(&label, &what));
            }
        }

        // Uploads: each lists every acknowledged part with its ETag.
        let mut gone = vec![false; self.uploads.len()];
        let mut part_outcome = None;
        for (u, up) in self.uploads.iter().enumerate() {
            let label = format!("upload {}", up.id);
            let may_vanish =
                matches!(pending, Some(Pending::Complete { upload, .. } | Pending::Abort { upload }) if upload == u);
            let query = format!("uploadId={}", up.id);
            let resp = c.send(Req::new("GET", &self.path(up.key)).query(&query));
            if resp.status == 404 && may_vanish && resp.error_code().as_deref() == Some("NoSuchUpload") {
                gone[u] = true;
                continue;
            }
            if resp.status != 200 || resp.elements("IsTruncated") != ["false"] {
                let what =
                    format!("ListParts of [{}] {label}: HTTP {} {}", self.name(up.key), resp.status, resp.text());
                failures.push(self.report(&label, &what));
                continue;
            }
            let listed = parse_parts(&resp);
            let in_flight = match &pending {
                Some(Pending::Part { upload, number, piece }) if *upload == u => Some((*number, *piece)),
                _ => None,
            };
            for (n, part) in &up.parts {
                let matches = listed.get(n) == Some(&(part.etag.clone(), part.piece.size));
                if !matches && in_flight.map(|(m, _)| m) != Some(*n) {
                    let what = format!(
                        "ListParts of {label}: acknowledged part {n} (ETag {}, {} B) is listed as {:?}",
                        part.etag,
                        part.piece.size,
                        listed.get(n)
                    );
                    failures.push(self.report(&label, &what));
                }
            }
            for n in listed.keys() {
                if !up.parts.contains_key(n) && in_flight.map(|(m, _)| m) != Some(*n) {
                    let what = format!("ListParts of {label}: part {n} {:?} was never uploaded", listed[n]);
                    failures.push(self.report(&label, &what));
                }
            }
            if let Some((n, piece)) = in_flight {
                let new = (md5_hex(&piece.bytes()), piece.size);
                let old = up.parts.get(&n).map(|p| (p.etag.clone(), p.piece.size));
                let got = listed.get(&n).cloned();
                if got.as_ref() == Some(&new) {
                    part_outcome = Some((n, Part { piece, etag: new.0 }));
                } else if got != old {
                    let what = format!(
                        "ListParts of {label}: part {n} in flight is listed as {got:?}, neither the old {old:?} nor the new {new:?}"
                    );
                    failures.push(self.report(&label, &what));
                }
            }
        }

        // What became of the operation in doubt (a CreateMultipartUpload's
        // upload is looked for in the listing below).
        let outcome = pending.as_ref().map(|pending| match pending {
            Pending::Write { key, body, .. } => {
                let new = Some(body.clone());
                match same_bytes(&before[*key], &new) {
                    true => Outcome::Either,
                    false => Outcome::from(self.keys[*key] == new),
                }
            }
            Pending::Delete { keys } => {
                let present: Vec<usize> = keys.iter().copied().filter(|k| before[*k].is_some()).collect();
                let deleted = present.iter().filter(|k| self.keys[**k].is_none()).count();
                match (present.len(), deleted) {
                    (0, _) => Outcome::Either,
                    (p, d) if p == d => Outcome::Applied,
                    (_, 0) => Outcome::NotApplied,
                    _ => Outcome::Partial,
                }
            }
            Pending::Create { .. } => Outcome::NotApplied,
            Pending::Part { .. } => Outcome::from(part_outcome.is_some()),
            Pending::Complete { upload, body } => {
                let key = self.uploads[*upload].key;
                let object_new = self.keys[key].as_ref() == Some(body);
                if object_new != gone[*upload] {
                    let what = format!(
                        "{pending_what} was in flight: half done after the restart, the object is {} and the upload {}",
                        show(&self.keys[key]),
                        if gone[*upload] { "is gone" } else { "is still listed" }
                    );
                    failures.push(self.report(&format!("[{}]", self.name(key)), &what));
                }
                Outcome::from(gone[*upload])
            }
            Pending::Abort { upload } => Outcome::from(gone[*upload]),
        });
        if let (Some(Pending::Part { upload, .. }), Some((n, part))) = (&pending, part_outcome) {
            self.uploads[*upload].parts.insert(n, part);
        }
        let mut index = 0;
        self.uploads.retain(|_| {
            index += 1;
            !gone[index - 1]
        });

        // The bucket's list of uploads holds exactly this thread's (and the
        // one a CreateMultipartUpload in flight may have made).
        for up in &self.uploads {
            if !listed_uploads.remove(&(self.name(up.key), up.id.clone())) {
                let what = format!("ListMultipartUploads omits upload {} of [{}]", up.id, self.name(up.key));
                failures.push(self.report(&format!("upload {}", up.id), &what));
            }
        }
        let prefix = format!("t{}/", self.t);
        let strays: Vec<(String, String)> =
            listed_uploads.iter().filter(|(k, _)| k.starts_with(&prefix)).cloned().collect();
        for stray in &strays {
            listed_uploads.remove(stray);
        }
        let mut outcome = outcome;
        match (&pending, strays.as_slice()) {
            (Some(Pending::Create { key }), [(name, id)]) if *name == self.name(*key) => {
                let resp = c.send(Req::new("GET", &self.path(*key)).query(&format!("uploadId={id}")));
                if resp.status != 200 || !parse_parts(&resp).is_empty() {
                    let what = format!("upload {id} of {pending_what} lists: HTTP {} {}", resp.status, resp.text());
                    failures.push(self.report(&format!("[{name}]"), &what));
                }
                self.uploads.push(Upload { key: *key, id: id.clone(), parts: BTreeMap::new() });
                outcome = Some(Outcome::Applied);
                self.log(format!("after the kill: {pending_what} = upload {id}"));
            }
            (_, []) => {}
            _ => failures.push(format!("ListMultipartUploads shows uploads of t{} nobody created: {strays:?}", self.t)),
        }
        if let (Some(pending), Some(outcome)) = (&pending, outcome) {
            self.settle(pending, &pending_what, outcome);
        }
        failures
    }

    fn settle(&mut self, pending: &Pending, what: &str, outcome: Outcome) {
        let kind = pending.kind() as usize;
        let counter = match outcome {
            Outcome::Applied => &mut self.stats.applied,
            Outcome::NotApplied => &mut self.stats.not_applied,
            Outcome::Either => &mut self.stats.either,
            Outcome::Partial => &mut self.stats.partial,
        };
        counter[kind] += 1;
        self.log(format!("after the kill: {what}: {outcome:?}"));
    }
}

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Applied,
    NotApplied,
    Either,
    Partial,
}

impl From<bool> for Outcome {
    fn from(applied: bool) -> Outcome {
        if applied {
            Outcome::Applied
        } else {
            Outcome::NotApplied
        }
    }
}

fn listed_word(listed: bool) -> &'static str {
    if listed {
        "lists"
    } else {
        "omits"
    }
}

/// The state `resp` (a GET) shows, if it is one of `allowed`.
fn read_as(resp: &Response, allowed: &[Option<Body>]) -> Result<Option<Body>, String> {
    let states: Vec<String> = allowed.iter().map(show).collect();
    match resp.status {
        200 => {
            let mut diffs = Vec::new();
            for body in allowed.iter().flatten() {
                if body_len(body) != resp.body.len() {
                    continue;
                }
                let expected = body_bytes(body);
                match expected.iter().zip(&resp.body).position(|(a, b)| a != b) {
                    None => return Ok(Some(body.clone())),
                    Some(at) => diffs.push(format!("differs from {} at byte {at}", show_body(body))),
                }
            }
            Err(format!(
                "200 with {} bytes, none of the states it may be in ({}); {}",
                resp.body.len(),
                states.join(" or "),
                if diffs.is_empty() { "no state has that length".to_string() } else { diffs.join(", ") }
            ))
        }
        404 if allowed.contains(&None) && resp.error_code().as_deref() == Some("NoSuchKey") => Ok(None),
        status => Err(format!("HTTP {status} {}, the states it may be in: {}", resp.text(), states.join(" or "))),
    }
}

/// ListParts: part number -> (ETag without quotes, size).
fn parse_parts(resp: &Response) -> BTreeMap<u32, (String, usize)> {
    let text = resp.text();
    text.split("<Part>")
        .skip(1)
        .map(|block| {
            let number = child(block, "PartNumber").parse().expect("a part number");
            let etag = child(block, "ETag").replace("&quot;", "").replace('"', "");
            let size = child(block, "Size").parse().expect("a part size");
            (number, (etag, size))
        })
        .collect()
}

/// The text of the first `<name>` element in `block` ("" if none).
fn child(block: &str, name: &str) -> String {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    block.split(&open).nth(1).and_then(|s| s.split(&close).next()).unwrap_or_default().to_string()
}

fn list_objects(c: &Client) -> BTreeSet<String> {
    let resp = c.send(Req::new("GET", &format!("/{BUCKET}")).query("list-type=2"));
    assert_eq!(resp.status, 200, "ListObjectsV2: {}", resp.text());
    assert_eq!(resp.elements("IsTruncated"), ["false"], "one page holds every key");
    resp.elements("Key").into_iter().collect()
}

/// ListMultipartUploads: (key, upload id).
fn list_uploads(c: &Client) -> BTreeSet<(String, String)> {
    let resp = c.send(Req::new("GET", &format!("/{BUCKET}")).query("uploads"));
    assert_eq!(resp.status, 200, "ListMultipartUploads: {}", resp.text());
    assert_eq!(resp.elements("IsTruncated"), ["false"], "one page holds every upload");
    resp.text().split("<Upload>").skip(1).map(|block| (child(block, "Key"), child(block, "UploadId"))).collect()
}

fn start_server(data: &Path, log: &Path) -> Server {
    start_server_with(data, log, &[])
}

fn start_server_with(data: &Path, log: &Path, extra: &[&str]) -> Server {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("server log");
    Server::try_start_with(data, extra, file).unwrap_or_else(|| panic!("the server did not start:\n{}", log_tail(log)))
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    format!("server log ({}), last lines:\n{}", log.display(), lines[lines.len().saturating_sub(30)..].join("\n"))
}

fn scrub(data: &Path) -> (Option<i32>, String) {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["scrub", "--data"])
        .arg(data)
        .args(common::suite_meta_args(data))
        .env("TESSERA_LOG", "warn")
        .output()
        .expect("run tessera scrub");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code(), text)
}

/// Checks every thread's model against the restarted server.
fn verify_all(server: &Server, workers: &mut [Worker]) -> Vec<String> {
    let c = server.client();
    let objects = list_objects(&c);
    let mut uploads = list_uploads(&c);
    let mut failures = Vec::new();
    for worker in workers.iter_mut() {
        failures.extend(worker.verify(&c, &objects, &mut uploads));
    }
    let ours = |key: &str| {
        let (t, k) = key.split_once('/').unwrap_or_default();
        let t_ok = t.strip_prefix('t').and_then(|t| t.parse::<usize>().ok()).is_some_and(|t| t < workers.len());
        let k_ok = k.strip_prefix('k').and_then(|k| k.parse::<usize>().ok()).is_some_and(|k| k < KEYS);
        t_ok && k_ok
    };
    for key in objects.iter().filter(|k| !ours(k)) {
        failures.push(format!("ListObjectsV2 shows {key:?}, which no thread ever wrote"));
    }
    if !uploads.is_empty() {
        failures.push(format!("ListMultipartUploads shows uploads no thread knows: {uploads:?}"));
    }
    failures
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.trim().parse().unwrap_or_else(|_| panic!("{name}={value:?} is not a number")))
}

fn kill_loop(mode: &Mode) {
    let loops = env_number("TESSERA_KILL_LOOPS").map_or(mode.default_loops, |n| n as usize);
    let seed = env_number("TESSERA_KILL_SEED").unwrap_or_else(|| {
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).expect("clock").as_nanos() as u64;
        Rng(nanos ^ (u64::from(std::process::id()) << 32)).next()
    });
    eprintln!(
        "kill_loop {}: {loops} kills, seed {seed} (replay: TESSERA_KILL_SEED={seed} TESSERA_KILL_LOOPS={loops})",
        mode.name
    );
    let root = tempfile::tempdir().expect("tempdir");
    let (data, log) = (root.path().join("data"), root.path().join("server.log"));
    let mut rng = Rng(seed);
    let mut workers: Vec<Worker> = (0..mode.threads.1).map(|t| Worker::new(t, mode.big_part_percent)).collect();
    let started = Instant::now();

    let mut server = start_server(&data, &log);
    assert_eq!(server.client().send(Req::new("PUT", &format!("/{BUCKET}"))).status, 200);
    for cycle in 1..=loops {
        let threads = rng.between(mode.threads.0, mode.threads.1);
        let window = Duration::from_millis(rng.between(30, 300) as u64);
        let handles: Vec<_> = workers
            .drain(..threads)
            .map(|mut worker| {
                worker.cycle = cycle;
                worker.rng = Rng(seed ^ (((cycle as u64) << 8) | worker.t as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
                let client = server.client();
                std::thread::Builder::new()
                    .name(format!("kill-loop-t{}", worker.t))
                    .spawn(move || {
                        worker.run(&client);
                        worker
                    })
                    .expect("spawn a client thread")
            })
            .collect();
        sleep(window);
        server.kill9();
        let mut back: Vec<Worker> =
            handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect();
        back.append(&mut workers);
        workers = back;

        if cycle == loops {
            // The folder as the last kill left it, every object in place.
            let (code, report) = scrub(&data);
            assert_eq!(code, Some(0), "tessera scrub after the last kill (seed {seed}):\n{report}");
        }
        server = start_server(&data, &log);
        let mut failures = verify_all(&server, &mut workers);
        for worker in &mut workers {
            if let Some(why) = worker.unexpected.take() {
                failures.push(format!("t{}: {why}", worker.t));
            }
        }
        assert!(
            failures.is_empty(),
            "after kill {cycle} of {loops} (seed {seed}, {threads} threads for {window:?}):\n{}\n{}",
            failures.join("\n\n"),
            log_tail(&log)
        );
        if cycle % 50 == 0 {
            let acked: u64 = workers.iter().map(|w| w.stats.acked.iter().sum::<u64>()).sum();
            eprintln!("kill_loop: {cycle} kills, {acked} operations acknowledged, {:?}", started.elapsed());
        }
    }

    // Delete every object and abort every upload, then restart once more.
    let c = server.client();
    for worker in &workers {
        let objects: String = (0..KEYS).map(|k| format!("<Object><Key>{}</Key></Object>", worker.name(k))).collect();
        let xml = format!("<Delete>{objects}</Delete>");
        let resp = c.send(Req::new("POST", &format!("/{BUCKET}")).query("delete").body(xml.as_bytes()));
        assert_eq!(resp.status, 200, "DeleteObjects: {}", resp.text());
        assert_eq!(resp.elements("Deleted").len(), KEYS, "{}", resp.text());
    }
    for (key, id) in list_uploads(&c) {
        let resp = c.send(Req::new("DELETE", &format!("/{BUCKET}/{key}")).query(&format!("uploadId={id}")));
        assert_eq!(resp.status, 204, "AbortMultipartUpload {key} {id}: {}", resp.text());
    }
    assert!(list_objects(&c).is_empty() && list_uploads(&c).is_empty(), "everything is deleted");
    let blobs_left = blob_files(&data);
    assert!(server.terminate().success(), "SIGTERM exits 0");
    // The orphan sweep removes only files older than its start minus 2 s: the
    // last kill's orphans must be that old.
    sleep(Duration::from_millis(2500));
    // Over a shared database (TESSERA_TEST_META=postgres) a file no row names
    // is an orphan only after --orphan-grace (1 h by default).
    let orphans_after: &[&str] = match common::suite_meta_args(&data).is_empty() {
        true => &[],
        false => &["--orphan-grace", "2s"],
    };
    let server = start_server_with(&data, &log, orphans_after);
    let deadline = Instant::now() + Duration::from_secs(10);
    while blob_files(&data) > 0 && Instant::now() < deadline {
        sleep(Duration::from_millis(100));
    }
    let files: Vec<String> = std::fs::read_dir(data.join("blobs"))
        .map(|dirs| {
            dirs.flatten()
                .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
                .map(|f| f.path().display().to_string())
                .collect()
        })
        .unwrap_or_default();
    assert!(files.is_empty(), "blob files left after every object and upload was deleted (seed {seed}): {files:?}");
    assert_eq!(common::tmp_files(&data), 0, "start-up empties tmp/");
    assert!(server.terminate().success(), "SIGTERM exits 0");
    let (code, report) = scrub(&data);
    assert_eq!(code, Some(0), "tessera scrub of the emptied folder:\n{report}");

    let mut total = Stats::default();
    for worker in &workers {
        total.add(&worker.stats);
    }
    let mut acked = Vec::new();
    let mut doubts = Vec::new();
    for (i, kind) in KINDS.iter().enumerate() {
        acked.push(format!("{kind} {}", total.acked[i]));
        if total.in_flight[i] > 0 {
            doubts.push(format!(
                "{kind} {} ({} applied, {} not, {} either{})",
                total.in_flight[i],
                total.applied[i],
                total.not_applied[i],
                total.either[i],
                if total.partial[i] > 0 { format!(", {} partly", total.partial[i]) } else { String::new() }
            ));
        }
    }
    eprintln!(
        "kill_loop {}: {loops} kills in {:.1?} (seed {seed}); acknowledged: {}; in flight at a kill, settled after \
         the restart: {}; {blobs_left} blob files before the last restart, 0 after",
        mode.name,
        started.elapsed(),
        acked.join(", "),
        doubts.join(", ")
    );
}
