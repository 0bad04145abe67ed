//! Deduplication and instant upload (秒传): what it costs to upload content
//! the server already holds.
//!
//! One content of `--size` is uploaded first (not timed), declaring its
//! SHA-256, so the server keys its blob by it. Then, timed:
//! - `--count` PutObjects of that content through the pooled client: the
//!   server still reads, hashes and verifies every byte, then shares the blob
//!   instead of keeping a second copy (compare with `put` of the same shape);
//! - `--count` PutObjects of it that wait for `100 Continue`: the server
//!   answers at once from the content it holds and the body is never sent;
//! - one such upload of a held 1 GiB, against the time its normal PUT took.
//!
//! Every upload declares `x-amz-checksum-sha256`: it names the content for
//! the server and, being the content key, matches whatever the held content
//! was stored with, so an instant answer is always possible.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use base64::Engine as _;
use http::{HeaderMap, Method};

use super::body::ReqBody;
use super::client::{Error, Request};
use super::ops::{check_etag, Obj, Target};
use super::pattern::{phase_of, Content};
use super::report::{ms, Basis, Row};
use super::run::{run_jobs, run_once, Load};
use super::scenarios::setup_row;
use super::stats::Phase;
use super::units::format_size;
use super::xml;
use super::Ctx;

/// The big held content of the last row: large enough that sending it would
/// take seconds, so an instant answer shows as the ratio it is.
const HELD_SIZE: u64 = 1 << 30;
const CHECKSUM: &str = "x-amz-checksum-sha256";
/// The server's mark on an upload answered without its body.
const INSTANT: &str = crate::s3::instant::INSTANT_HEADER;

/// One content with the digests an upload of it declares and must get back.
#[derive(Debug, Clone)]
struct Held {
    content: Content,
    md5: [u8; 16],
    /// Base64, as `x-amz-checksum-sha256` carries it.
    sha256: String,
}

/// How an upload that waited for `100 Continue` went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Upload {
    /// Answered before the body: it was never sent.
    Instant,
    /// The server asked for the body and read it.
    Sent,
}

impl Target {
    /// PutObject through the pooled client, declaring the content's SHA-256.
    async fn put_declared(&self, obj: &Obj, sha256: &str) -> Result<u64, Error> {
        let body = ReqBody::pattern(self.pattern.clone(), obj.content, 0, obj.content.len);
        let req = Request::new("PutObject", Method::PUT, &self.bucket, Some(&obj.key)).header(CHECKSUM, sha256);
        let (headers, _) = self.s3.call_doc(req.body(body)).await?;
        check_sums("PutObject", &headers, obj, sha256)?;
        Ok(obj.content.len)
    }

    /// PutObject declaring size and SHA-256 that waits for `100 Continue`:
    /// the body is sent only when the server asks for it.
    async fn put_instant(&self, obj: &Obj, sha256: &str) -> Result<Upload, Error> {
        let op = "PutObject (Expect: 100-continue)";
        let body = ReqBody::pattern(self.pattern.clone(), obj.content, 0, obj.content.len);
        let req = Request::new(op, Method::PUT, &self.bucket, Some(&obj.key)).header(CHECKSUM, sha256);
        let reply = self.s3.send_expecting_continue(req.body(body)).await?;
        if !(200..300).contains(&reply.status) {
            let code = xml::texts(&reply.body, "Code").next().unwrap_or_default();
            return Err(Error::Status { op, status: reply.status, code });
        }
        check_sums(op, &reply.headers, obj, sha256)?;
        let marked = reply.headers.get(INSTANT).is_some_and(|v| v == "true");
        match (reply.continued, marked) {
            (false, true) => Ok(Upload::Instant),
            (true, false) => Ok(Upload::Sent),
            (true, true) => Err(Error::invalid(op, format!("{INSTANT} on an upload whose body was read"))),
            (false, false) => Err(Error::invalid(op, format!("a 2xx before 100 Continue without {INSTANT}"))),
        }
    }
}

/// The ETag must be the content's MD5 and the checksum the SHA-256 declared:
/// an instant answer must be the one the bytes would have given.
fn check_sums(op: &'static str, headers: &HeaderMap, obj: &Obj, sha256: &str) -> Result<(), Error> {
    check_etag(op, headers.get("etag"), &hex::encode(obj.md5))?;
    let got = headers.get(CHECKSUM).and_then(|v| v.to_str().ok()).unwrap_or_default();
    match got == sha256 {
        true => Ok(()),
        false => Err(Error::invalid(op, format!("{CHECKSUM} `{got}` instead of `{sha256}`"))),
    }
}

pub async fn dedup(ctx: &Ctx) -> Vec<Row> {
    let s = &ctx.settings;
    let what = format!("{} x {} c{}", s.count, format_size(s.size), s.concurrency);
    let held = digests(ctx, Content { phase: phase_of(ctx.seed, 0), len: s.size }).await;
    let seed = copies(ctx, "dedup-seed", 1, &held);
    let mut rows = setup_row("dedup: upload the content", put_all(ctx, seed, &held, ctx.load_all()).await);
    let phase = put_all(ctx, copies(ctx, "dedup", s.count, &held), &held, ctx.load()).await;
    rows.push(Row::new(format!("dedup put {what}"), phase, true, Basis::Write));
    let objs = copies(ctx, "instant", s.count, &held);
    let (phase, instant) = instant_puts(ctx, objs.clone(), &held).await;
    let row = Row::new(format!("instant put {what}"), phase, false, Basis::None);
    rows.push(row.note("instant", instant as f64, "uploads"));
    rows.extend(setup_row("instant: read back", read_back(ctx, &objs).await));
    rows.extend(held_big(ctx).await);
    rows
}

/// MD5 and SHA-256 of `content`, on two cores at once, off the reactor.
async fn digests(ctx: &Ctx, content: Content) -> Held {
    let pattern = ctx.target.pattern.clone();
    let (phase, len) = (content.phase, content.len);
    let compute = move || {
        std::thread::scope(|scope| {
            let md5 = scope.spawn(|| pattern.md5(phase, 0, len));
            let sha256 = pattern.sha256(phase, 0, len);
            (md5.join().unwrap_or_else(|_| pattern.md5(phase, 0, len)), sha256)
        })
    };
    let (md5, sha256) = match tokio::task::spawn_blocking(compute).await {
        Ok(sums) => sums,
        // Only if the pool is gone: hash here rather than lose the row.
        Err(_) => (ctx.target.pattern.md5(phase, 0, len), ctx.target.pattern.sha256(phase, 0, len)),
    };
    Held { content, md5, sha256: base64::engine::general_purpose::STANDARD.encode(sha256) }
}

/// `count` objects of `group`, each with the held content.
fn copies(ctx: &Ctx, group: &str, count: u64, held: &Held) -> Arc<Vec<Obj>> {
    let obj = |i| Obj { key: ctx.key(group, i), content: held.content, md5: held.md5 };
    Arc::new((0..count).map(obj).collect())
}

fn obj_of(objs: &[Obj], i: u64) -> Result<&Obj, Error> {
    objs.get(i as usize).ok_or_else(|| Error::invalid("bench", format!("no object {i}")))
}

/// PutObject of every object through the pooled client, declaring the SHA-256.
async fn put_all(ctx: &Ctx, objs: Arc<Vec<Obj>>, held: &Held, load: Load) -> Phase {
    let (target, sha256) = (ctx.target.clone(), Arc::new(held.sha256.clone()));
    let load = Load { count: objs.len() as u64, ..load };
    run_jobs(load, move |i| {
        let (target, objs, sha256) = (target.clone(), objs.clone(), sha256.clone());
        async move { target.put_declared(obj_of(&objs, i)?, &sha256).await }
    })
    .await
}

/// Instant uploads of every object; returns how many were instant. An
/// upload whose body the server asked for is a failure of the row: the
/// content was held, so it should have been answered at once.
async fn instant_puts(ctx: &Ctx, objs: Arc<Vec<Obj>>, held: &Held) -> (Phase, u64) {
    let (target, sha256) = (ctx.target.clone(), Arc::new(held.sha256.clone()));
    let instant = Arc::new(AtomicU64::new(0));
    let counted = instant.clone();
    let load = Load { count: objs.len() as u64, ..ctx.load() };
    let phase = run_jobs(load, move |i| {
        let (target, objs, sha256, counted) = (target.clone(), objs.clone(), sha256.clone(), counted.clone());
        async move { instant_put(&target, obj_of(&objs, i)?, &sha256, &counted).await }
    })
    .await;
    (phase, instant.load(Ordering::Relaxed))
}

/// One upload that must be instant; no body bytes moved when it is.
async fn instant_put(target: &Target, obj: &Obj, sha256: &str, instant: &AtomicU64) -> Result<u64, Error> {
    match target.put_instant(obj, sha256).await? {
        Upload::Instant => {
            instant.fetch_add(1, Ordering::Relaxed);
            Ok(0)
        }
        Upload::Sent => Err(Error::invalid("PutObject", "not instant: the server asked for the body of held content")),
    }
}

/// GetObject of the first instant copy, every byte checked: an object made
/// without its body must still read back as that body.
async fn read_back(ctx: &Ctx, objs: &[Obj]) -> Phase {
    let Some(obj) = objs.first() else { return Phase::default() };
    run_once(ctx.target.get(&obj.key, obj.content, None)).await
}

/// A held [`HELD_SIZE`]: its normal PUT (set-up, timed for the note), then
/// one instant upload of it.
async fn held_big(ctx: &Ctx) -> Vec<Row> {
    let held = digests(ctx, Content { phase: phase_of(ctx.seed, 1), len: HELD_SIZE }).await;
    let seed = copies(ctx, "held-seed", 1, &held);
    let normal = put_all(ctx, seed, &held, ctx.load_all()).await;
    let normal_ms = ms(normal.elapsed);
    let big = format_size(HELD_SIZE);
    let mut rows = setup_row(&format!("instant: upload the {big}"), normal);
    let copy = copies(ctx, "held-instant", 1, &held);
    let counted = AtomicU64::new(0);
    let phase = match copy.first() {
        Some(obj) => run_once(instant_put(&ctx.target, obj, &held.sha256, &counted)).await,
        None => Phase::default(),
    };
    let row = Row::new(format!("instant put of a held {big}"), phase, false, Basis::None);
    rows.push(row.note("its normal PUT in set-up", normal_ms, "ms"));
    if let Some(obj) = copy.first() {
        rows.extend(setup_row(&format!("instant: size of the {big} copy"), size_check(ctx, obj).await));
    }
    rows
}

/// HeadObject of an instant copy: the size it was declared with.
async fn size_check(ctx: &Ctx, obj: &Obj) -> Phase {
    run_once(async {
        match ctx.target.head_size(&obj.key).await? {
            n if n == obj.content.len => Ok(0),
            n => Err(Error::invalid("HeadObject", format!("{n} bytes instead of {}", obj.content.len))),
        }
    })
    .await
}
