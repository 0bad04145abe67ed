//! Multipart upload: the operations, one big object in parts (Create, parts in
//! flight, Complete, all timed together and Complete on its own), and the
//! `--parts N` mode that times CompleteMultipartUpload over N parts made with
//! UploadPartCopy from one source object.
//! Reference: <https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html>

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use http::Method;
use md5::{Digest, Md5};

use super::body::ReqBody;
use super::client::{Error, Request};
use super::cpu::CpuMeter;
use super::ops::{check_etag, check_etag_text, Obj, Target};
use super::pattern::{phase_of, Content};
use super::report::{ms, Basis, Row};
use super::run::{run_jobs, run_once, Load};
use super::scenarios::setup_row;
use super::sigv4_path;
use super::stats::Phase;
use super::units::format_size;
use super::xml;
use super::Ctx;

impl Target {
    fn mp(&self, op: &'static str, method: Method, key: &str) -> Request {
        Request::new(op, method, &self.bucket, Some(key))
    }

    pub async fn create_upload(&self, key: &str) -> Result<String, Error> {
        let req = self.mp("CreateMultipartUpload", Method::POST, key).query("uploads", "");
        let (_, doc) = self.s3.call_doc(req).await?;
        let id = xml::texts(&doc, "UploadId").next().filter(|id| !id.is_empty());
        id.ok_or_else(|| Error::invalid("CreateMultipartUpload", "no UploadId in the reply"))
    }

    /// UploadPart of `len` bytes of `content` from `offset`; the ETag must be their MD5.
    pub async fn upload_part(&self, key: &str, id: &str, number: u64, part: Part) -> Result<u64, Error> {
        let body = ReqBody::pattern(self.pattern.clone(), part.content, part.offset, part.len);
        let req = self.mp("UploadPart", Method::PUT, key).query("partNumber", number.to_string());
        let (headers, _) = self.s3.call_doc(req.query("uploadId", id).body(body)).await?;
        check_etag("UploadPart", headers.get("etag"), &hex::encode(part.md5))?;
        Ok(part.len)
    }

    /// UploadPartCopy of the whole of `source`, whose MD5 is `md5`.
    pub async fn upload_part_copy(&self, key: &str, id: &str, number: u64, source: &Obj) -> Result<u64, Error> {
        let req = self.mp("UploadPartCopy", Method::PUT, key).query("partNumber", number.to_string());
        let req = req.query("uploadId", id).header("x-amz-copy-source", sigv4_path(&self.bucket, &source.key));
        let req = req.header("x-amz-copy-source-range", format!("bytes=0-{}", source.content.len - 1));
        let (_, doc) = self.s3.call_doc(req).await?;
        let etag = xml::texts(&doc, "ETag").next().unwrap_or_default();
        check_etag_text("UploadPartCopy", &etag, &hex::encode(source.md5))?;
        Ok(source.content.len)
    }

    /// CompleteMultipartUpload of parts 1..=N with these MD5s; the object's
    /// ETag must be `hex(md5(md5_1 || ... || md5_N))-N`.
    pub async fn complete(&self, key: &str, id: &str, md5s: &[[u8; 16]]) -> Result<u64, Error> {
        let mut doc = String::with_capacity(md5s.len() * 80 + 64);
        doc.push_str("<CompleteMultipartUpload>");
        for (i, md5) in md5s.iter().enumerate() {
            let _ = write!(doc, "<Part><PartNumber>{}</PartNumber><ETag>\"{}\"</ETag></Part>", i + 1, hex::encode(md5));
        }
        doc.push_str("</CompleteMultipartUpload>");
        let req = self.mp("CompleteMultipartUpload", Method::POST, key).query("uploadId", id);
        let (_, reply) = self.s3.call_doc(req.body(ReqBody::full(doc))).await?;
        // S3 may answer 200 and put the error in the body.
        if let Some(code) = xml::texts(&reply, "Code").next() {
            return Err(Error::invalid("CompleteMultipartUpload", format!("error in a 200 reply: {code}")));
        }
        let etag = xml::texts(&reply, "ETag").next().unwrap_or_default();
        check_etag_text("CompleteMultipartUpload", &etag, &multipart_etag(md5s))?;
        Ok(0)
    }

    pub async fn abort(&self, key: &str, id: &str) -> Result<(), Error> {
        let req = self.mp("AbortMultipartUpload", Method::DELETE, key).query("uploadId", id);
        self.s3.call_doc(req).await.map(drop)
    }
}

/// S3's multipart ETag (without quotes).
pub fn multipart_etag(md5s: &[[u8; 16]]) -> String {
    let mut hasher = Md5::new();
    for md5 in md5s {
        hasher.update(md5);
    }
    format!("{}-{}", hex::encode(hasher.finalize()), md5s.len())
}

/// One part: a window of the object's content and its MD5.
#[derive(Debug, Clone, Copy)]
pub struct Part {
    pub content: Content,
    pub offset: u64,
    pub len: u64,
    pub md5: [u8; 16],
}

pub async fn multipart(ctx: &Ctx) -> Vec<Row> {
    match ctx.settings.parts {
        Some(n) => many_parts(ctx, n).await,
        None => one_object(ctx).await,
    }
}

async fn one_object(ctx: &Ctx) -> Vec<Row> {
    let s = &ctx.settings;
    let content = Content { phase: phase_of(ctx.seed, 0), len: s.size };
    let key = ctx.key("multipart", 0);
    let spans: Vec<(u64, u64)> = (0..s.size.div_ceil(s.part_size))
        .map(|i| (i * s.part_size, s.part_size.min(s.size - i * s.part_size)))
        .collect();
    let md5s = ctx.md5s(spans.iter().map(|&(offset, len)| (content, offset, len)).collect()).await;
    let parts: Vec<Part> =
        spans.iter().zip(&md5s).map(|(&(offset, len), &md5)| Part { content, offset, len, md5 }).collect();
    let name = format!(
        "multipart {} in {} x {} c{}",
        format_size(s.size),
        parts.len(),
        format_size(s.part_size),
        s.concurrency
    );
    let meter = CpuMeter::start(s.server_pid);
    let began = Instant::now();
    let id = match ctx.target.create_upload(&key).await {
        Ok(id) => id,
        Err(e) => return vec![failed(name, e)],
    };
    let create_ms = ms(began.elapsed());
    let mut phase = upload_parts(ctx, &key, &id, parts).await;
    let completing = Instant::now();
    let completed = ctx.target.complete(&key, &id, &md5s).await;
    let complete_ms = ms(completing.elapsed());
    phase.elapsed = began.elapsed();
    phase.cpu = meter.stop();
    let ok = completed.is_ok() && phase.errors == 0;
    if let Err(e) = completed {
        phase.fail(e.to_string());
        let _ = ctx.target.abort(&key, &id).await;
    }
    let row =
        Row::new(name, phase, true, Basis::Write).note("create", create_ms, "ms").note("complete", complete_ms, "ms");
    let mut rows = vec![row];
    if ok {
        let obj = Obj { key, content, md5: [0; 16] };
        rows.extend(setup_row("multipart: read back", run_once(ctx.target.get(&obj.key, content, None)).await));
    }
    rows
}

async fn upload_parts(ctx: &Ctx, key: &str, id: &str, parts: Vec<Part>) -> Phase {
    let (target, parts) = (ctx.target.clone(), Arc::new(parts));
    let (key, id) = (Arc::new(key.to_string()), Arc::new(id.to_string()));
    let load = Load { count: parts.len() as u64, duration: None, ..ctx.load() };
    run_jobs(load, move |i| {
        let (target, parts, key, id) = (target.clone(), parts.clone(), key.clone(), id.clone());
        async move {
            let part = parts.get(i as usize).copied().ok_or_else(|| Error::invalid("UploadPart", "no such part"))?;
            target.upload_part(&key, &id, i + 1, part).await
        }
    })
    .await
}

/// N parts by UploadPartCopy of one `--part-size` object, then Complete timed alone.
async fn many_parts(ctx: &Ctx, n: u16) -> Vec<Row> {
    let s = &ctx.settings;
    let source = ctx.objects("multipart-source", 1, 1, s.part_size).await;
    let Some(source) = source.first().cloned() else { return Vec::new() };
    let mut rows = setup_row("multipart: source object", run_once(ctx.target.put(&source)).await);
    let key = ctx.key("multipart-many", 0);
    let id = match ctx.target.create_upload(&key).await {
        Ok(id) => id,
        Err(e) => return vec![failed(format!("complete {n} parts"), e)],
    };
    let copy = copy_parts(ctx, &key, &id, &source, n).await;
    let copied = copy.errors == 0;
    rows.push(Row::new(
        format!("part-copy {n} x {} c{}", format_size(s.part_size), s.concurrency),
        copy,
        true,
        Basis::None,
    ));
    let md5s = vec![source.md5; usize::from(n)];
    let complete = run_once(ctx.target.complete(&key, &id, &md5s)).await;
    let complete_ms = ms(complete.elapsed);
    let ok = copied && complete.errors == 0;
    rows.push(Row::new(format!("complete {n} parts"), complete, false, Basis::None).note(
        "complete",
        complete_ms,
        "ms",
    ));
    if !ok {
        let _ = ctx.target.abort(&key, &id).await;
        return rows;
    }
    rows.extend(setup_row("multipart: check the result", check_many(ctx, &key, &source, n).await));
    rows
}

async fn copy_parts(ctx: &Ctx, key: &str, id: &str, source: &Obj, n: u16) -> Phase {
    let (target, source) = (ctx.target.clone(), Arc::new(source.clone()));
    let (key, id) = (Arc::new(key.to_string()), Arc::new(id.to_string()));
    let load = Load { count: u64::from(n), duration: None, ..ctx.load() };
    run_jobs(load, move |i| {
        let (target, source, key, id) = (target.clone(), source.clone(), key.clone(), id.clone());
        async move { target.upload_part_copy(&key, &id, i + 1, &source).await }
    })
    .await
}

/// The assembled object is N copies of the source: check its size, and the
/// bytes of its first and last part.
async fn check_many(ctx: &Ctx, key: &str, source: &Obj, n: u16) -> Phase {
    let part = source.content.len;
    run_once(async {
        let size = ctx.target.head_size(key).await?;
        if size != part * u64::from(n) {
            return Err(Error::invalid("HeadObject", format!("size {size}, expected {}", part * u64::from(n))));
        }
        let last = part * (u64::from(n) - 1);
        ctx.target.get(key, source.content, Some((0, part))).await?;
        ctx.target.get(key, source.content.shifted(last), Some((last, part))).await
    })
    .await
}

fn failed(name: String, e: Error) -> Row {
    let mut phase = Phase::default();
    phase.fail(e.to_string());
    Row::new(name, phase, true, Basis::None)
}
