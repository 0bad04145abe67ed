//! The S3 requests `cp` makes, each retried on transient failures (a lost
//! connection, a 5xx), and each reply checked: ETags against the MD5 the
//! client computed, ranges against what was asked.

use std::fmt::Write as _;
use std::future::Future;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::BodyExt;
use md5::Md5;
use sha2::{Digest, Sha256};

use super::Ctx;
use crate::bench::body::ReqBody;
use crate::bench::client::{read_doc, Error, Request};
use crate::bench::xml;

/// Tries per request; the waits between them double from [`FIRST_WAIT`]
/// (0.25 + 0.5 + 1 + 2 + 4 s: long enough for a server restart).
const ATTEMPTS: u32 = 6;
const FIRST_WAIT: Duration = Duration::from_millis(250);
/// Reported when Tessera completed an upload from content it holds.
pub const INSTANT_HEADER: &str = "x-tessera-instant-upload";

/// Runs `attempt` until it succeeds, fails for good, or runs out of tries.
pub async fn retry<T, Fut: Future<Output = Result<T, Error>>>(mut attempt: impl FnMut() -> Fut) -> Result<T, Error> {
    let mut backoff = Backoff::default();
    loop {
        match attempt().await {
            Err(e) if backoff.again(&e).await => {}
            other => return other,
        }
    }
}

/// The tries of one request so far.
struct Backoff {
    wait: Duration,
    tries: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { wait: FIRST_WAIT, tries: 1 }
    }
}

impl Backoff {
    /// Whether to try again after `e`; waits first when so.
    async fn again(&mut self, e: &Error) -> bool {
        if self.tries >= ATTEMPTS || !transient(e) {
            return false;
        }
        tracing::debug!(error = %e, "retrying");
        tokio::time::sleep(self.wait).await;
        self.wait *= 2;
        self.tries += 1;
        true
    }
}

fn transient(e: &Error) -> bool {
    match e {
        Error::Transport { .. } => true,
        Error::Status { status, .. } => *status >= 500 || *status == 408,
        Error::Invalid { .. } | Error::Handshake { .. } | Error::Endpoint(_) | Error::Tls(_) => false,
    }
}

/// Whether `e` is S3's error `code`.
pub fn is_code(e: &anyhow::Error, code: &str) -> bool {
    e.downcast_ref::<Error>().is_some_and(|e| is_status_code(e, code))
}

pub fn is_status_code(e: &Error, code: &str) -> bool {
    matches!(e, Error::Status { code: c, .. } if c == code)
}

/// One part (or a whole small file) read into memory and hashed.
pub struct Body {
    pub bytes: Bytes,
    pub sha256: [u8; 32],
}

impl Body {
    pub fn sha256_base64(&self) -> String {
        BASE64.encode(self.sha256)
    }
}

/// Reads and hashes (SHA-256) `len` bytes at `offset` off the reactor.
pub async fn read_body(file: Arc<std::fs::File>, offset: u64, len: u64) -> anyhow::Result<Body> {
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; usize::try_from(len)?];
        file.read_exact_at(&mut buf, offset)?;
        let sha256: [u8; 32] = Sha256::digest(&buf).into();
        Ok(Body { bytes: Bytes::from(buf), sha256 })
    })
    .await?
}

/// What the server answered for a body.
pub struct Stored {
    /// The ETag, unquoted.
    pub etag: String,
    /// Completed from content the server held, its body never read.
    pub instant: bool,
    /// What the client checked the stored bytes by: `sha256` (the server
    /// verified and echoed the checksum) or `etag` (the body's MD5).
    pub verified: &'static str,
}

/// PUTs `body` with its SHA-256 and `Expect: 100-continue`, and checks the
/// server stored these bytes: a server that takes `x-amz-checksum-sha256`
/// verifies the body against it (or refuses it with `BadDigest`) and echoes
/// it; one that does not is checked by its ETag, the body's MD5 (computed
/// only then: MD5 is the costliest hash here).
pub async fn put_body(ctx: &Ctx, make: impl Fn() -> Request, body: &Body) -> Result<Stored, Error> {
    let checksum = body.sha256_base64();
    let reply = retry(|| {
        let req = make().header("x-amz-checksum-sha256", checksum.clone()).body(ReqBody::full(body.bytes.clone()));
        async move {
            let op = req.op;
            let reply = ctx.s3.send_expecting_continue(req).await?;
            match reply.status {
                200 => Ok(reply),
                status => {
                    let code = xml::texts(&reply.body, "Code").next().unwrap_or_default();
                    Err(Error::Status { op, status, code })
                }
            }
        }
    })
    .await?;
    let op = "PutObject";
    let etag = header(&reply.headers, "etag").unwrap_or_default().trim().trim_matches('"').to_string();
    let verified = match header(&reply.headers, "x-amz-checksum-sha256") {
        Some(echoed) if echoed.trim() == checksum => "sha256",
        Some(echoed) => {
            return Err(Error::invalid(
                op,
                format!("integrity: the server's SHA-256 is {echoed}, the data's {checksum}"),
            ))
        }
        None => {
            let bytes = body.bytes.clone();
            let md5 = tokio::task::spawn_blocking(move || hex::encode(Md5::digest(&bytes)))
                .await
                .map_err(|e| Error::invalid(op, format!("hashing: {e}")))?;
            check_etag_text(op, &etag, &md5)?;
            "etag"
        }
    };
    Ok(Stored { etag, instant: header(&reply.headers, INSTANT_HEADER) == Some("true"), verified })
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub fn check_etag_text(op: &'static str, got: &str, want: &str) -> Result<(), Error> {
    match got.trim().trim_matches('"') == want {
        true => Ok(()),
        false => Err(Error::invalid(op, format!("integrity: the server's ETag is {got}, the data's is \"{want}\""))),
    }
}

/// A multipart object's ETag: MD5 of the parts' MD5s, `-`, their number.
pub fn multipart_etag(md5s: &[[u8; 16]]) -> String {
    let mut hasher = Md5::new();
    for md5 in md5s {
        hasher.update(md5);
    }
    format!("{}-{}", hex::encode(hasher.finalize()), md5s.len())
}

/// A composite SHA-256 checksum as S3 gives a multipart object: the
/// SHA-256 of the parts' SHA-256s, base64, `-`, their number.
pub fn composite_sha256(parts: &[[u8; 32]]) -> String {
    let mut hasher = Sha256::new();
    for sha in parts {
        hasher.update(sha);
    }
    format!("{}-{}", BASE64.encode(hasher.finalize()), parts.len())
}

/// CreateMultipartUpload asking for SHA-256 part checksums; the upload id.
pub async fn create_upload(ctx: &Ctx, bucket: &str, key: &str) -> Result<String, Error> {
    let (_, doc) = retry(|| {
        let req = Request::new("CreateMultipartUpload", Method::POST, bucket, Some(key)).query("uploads", "");
        ctx.s3.call_doc(req.header("x-amz-checksum-algorithm", "SHA256"))
    })
    .await?;
    let id = xml::texts(&doc, "UploadId").next().filter(|id| !id.is_empty());
    id.ok_or_else(|| Error::invalid("CreateMultipartUpload", "no UploadId in the reply"))
}

/// A part the server holds, as ListParts describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedPart {
    pub number: u32,
    pub etag: String,
    pub size: u64,
    pub sha256: Option<String>,
}

/// Every part of the upload, page after page.
pub async fn list_parts(ctx: &Ctx, bucket: &str, key: &str, id: &str) -> Result<Vec<ListedPart>, Error> {
    let mut parts = Vec::new();
    let mut marker = 0u32;
    loop {
        let (_, doc) = retry(|| {
            let req = Request::new("ListParts", Method::GET, bucket, Some(key)).query("uploadId", id);
            ctx.s3.call_doc(req.query("part-number-marker", marker.to_string()))
        })
        .await?;
        let page = parse_parts(&doc);
        let next = page.last().map(|p| p.number);
        parts.extend(page);
        let truncated = xml::texts(&doc, "IsTruncated").next().as_deref() == Some("true");
        match next {
            Some(next) if truncated && next > marker => marker = next,
            _ => return Ok(parts),
        }
    }
}

/// The `<Part>` elements of a ListParts reply.
pub fn parse_parts(doc: &str) -> Vec<ListedPart> {
    let one = |part: &str| {
        Some(ListedPart {
            number: xml::texts(part, "PartNumber").next()?.trim().parse().ok()?,
            etag: xml::texts(part, "ETag").next()?.trim().trim_matches('"').to_string(),
            size: xml::texts(part, "Size").next()?.trim().parse().ok()?,
            sha256: xml::texts(part, "ChecksumSHA256").next(),
        })
    };
    doc.split("<Part>").skip(1).filter_map(one).collect()
}

/// A finished part for CompleteMultipartUpload: number, hex MD5, base64 SHA-256.
pub struct CompletedPart<'a> {
    pub number: u32,
    pub etag: &'a str,
    pub sha256: &'a str,
}

/// What the object must come out as: its ETag, and its composite SHA-256
/// when the server reports one.
pub struct Expected {
    pub etag: String,
    pub sha256: String,
}

/// CompleteMultipartUpload; checks the object's ETag and checksum.
pub async fn complete(
    ctx: &Ctx,
    (bucket, key, id): (&str, &str, &str),
    parts: &[CompletedPart<'_>],
    want: &Expected,
) -> Result<&'static str, Error> {
    let mut doc = String::with_capacity(parts.len() * 140 + 64);
    doc.push_str("<CompleteMultipartUpload>");
    for p in parts {
        let _ = write!(
            doc,
            "<Part><PartNumber>{}</PartNumber><ETag>\"{}\"</ETag><ChecksumSHA256>{}</ChecksumSHA256></Part>",
            p.number, p.etag, p.sha256
        );
    }
    doc.push_str("</CompleteMultipartUpload>");
    let (_, reply) = retry(|| {
        let req = Request::new("CompleteMultipartUpload", Method::POST, bucket, Some(key)).query("uploadId", id);
        ctx.s3.call_doc(req.body(ReqBody::full(doc.clone())))
    })
    .await?;
    let op = "CompleteMultipartUpload";
    // S3 may answer 200 and put the error in the body.
    if let Some(code) = xml::texts(&reply, "Code").next() {
        return Err(Error::Status { op, status: 200, code });
    }
    let etag = xml::texts(&reply, "ETag").next().unwrap_or_default();
    check_etag_text(op, &etag, &want.etag)?;
    let sum = xml::texts(&reply, "ChecksumSHA256").next();
    match sum {
        Some(sum) if sum.trim() != want.sha256 => {
            Err(Error::invalid(op, format!("integrity: the object's SHA-256 is {sum}, the data's {}", want.sha256)))
        }
        Some(_) => Ok("etag+sha256"),
        None => Ok("etag"),
    }
}

/// AbortMultipartUpload, once: an upload left behind is reaped by the server.
pub async fn abort(ctx: &Ctx, bucket: &str, key: &str, id: &str) {
    let req = Request::new("AbortMultipartUpload", Method::DELETE, bucket, Some(key)).query("uploadId", id);
    if let Err(e) = ctx.s3.call(req).await {
        tracing::debug!(error = %e, "abort of a stale upload failed");
    }
}

/// What HeadObject tells a download.
pub struct Head {
    pub size: u64,
    /// Unquoted.
    pub etag: String,
    /// `x-amz-checksum-sha256` (base64, `-N` for a composite of N parts)
    /// when the object has one and the server gives it.
    pub sha256: Option<String>,
}

/// HeadObject, asking for the stored checksum (`x-amz-checksum-mode`).
pub async fn head(ctx: &Ctx, bucket: &str, key: &str) -> Result<Head, Error> {
    let response = retry(|| {
        let req = Request::new("HeadObject", Method::HEAD, bucket, Some(key));
        ctx.s3.call(req.header("x-amz-checksum-mode", "ENABLED"))
    })
    .await?;
    let headers = response.headers();
    let size = header(headers, "content-length").and_then(|v| v.trim().parse().ok());
    let size = size.ok_or_else(|| Error::invalid("HeadObject", "no Content-Length"))?;
    let etag = header(headers, "etag").ok_or_else(|| Error::invalid("HeadObject", "no ETag"))?;
    let etag = etag.trim().trim_matches('"').to_string();
    let sha256 = header(headers, "x-amz-checksum-sha256").map(|v| v.trim().to_string());
    Ok(Head { size, etag, sha256 })
}

/// One part of a multipart object as `HEAD ?partNumber=N` describes it:
/// its length and the object's number of parts. `None` when the server
/// does not tell (not a multipart object, or no `partNumber` support).
pub async fn head_part(ctx: &Ctx, (bucket, key): (&str, &str), etag: &str, number: u32) -> Option<(u64, u32)> {
    let response = retry(|| {
        let req = Request::new("HeadObject", Method::HEAD, bucket, Some(key)).query("partNumber", number.to_string());
        ctx.s3.call(req.header("if-match", format!("\"{etag}\"")))
    })
    .await
    .ok()?;
    let headers = response.headers();
    let len = header(headers, "content-length")?.trim().parse().ok()?;
    let count = header(headers, "x-amz-mp-parts-count")?.trim().parse().ok()?;
    Some((len, count))
}

/// What a ranged GET found.
pub enum Got {
    /// The range's bytes went to the sink.
    Bytes,
    /// The object is no longer the one with that ETag (`If-Range` failed).
    Changed,
}

/// Where a ranged GET's body goes, frame by frame, as it arrives.
pub trait RangeSink {
    /// A new attempt: the frames start again from the range's first byte.
    fn restart(&mut self) -> impl Future<Output = std::io::Result<()>>;
    /// The next frame of the range.
    fn take(&mut self, frame: Bytes) -> impl Future<Output = std::io::Result<()>>;
}

/// GET `len` bytes at `start` into `sink` if the object still has `etag`.
pub async fn get_range(
    ctx: &Ctx,
    at: (&str, &str),
    etag: &str,
    (start, len): (u64, u64),
    sink: &mut impl RangeSink,
) -> Result<Got, Error> {
    let mut backoff = Backoff::default();
    loop {
        sink.restart().await.map_err(|e| Error::invalid("GetObject", format!("writing the range: {e}")))?;
        match get_range_once(ctx, at, etag, (start, len), sink).await {
            Err(e) if backoff.again(&e).await => {}
            other => return other,
        }
    }
}

async fn get_range_once(
    ctx: &Ctx,
    (bucket, key): (&str, &str),
    etag: &str,
    (start, len): (u64, u64),
    sink: &mut impl RangeSink,
) -> Result<Got, Error> {
    let op = "GetObject";
    let end = start + len - 1;
    let req = Request::new(op, Method::GET, bucket, Some(key)).header("range", format!("bytes={start}-{end}"));
    let response = ctx.s3.send(req.header("if-range", format!("\"{etag}\""))).await?;
    match response.status() {
        StatusCode::PARTIAL_CONTENT => {}
        StatusCode::OK | StatusCode::PRECONDITION_FAILED => return Ok(Got::Changed),
        status => {
            let doc = read_doc(op, response.into_body()).await.unwrap_or_default();
            let code = xml::texts(&doc, "Code").next().unwrap_or_default();
            return Err(Error::Status { op, status: status.as_u16(), code });
        }
    }
    let range = header(response.headers(), "content-range").unwrap_or_default();
    if !range.starts_with(&format!("bytes {start}-{end}/")) {
        return Err(Error::invalid(op, format!("asked for bytes {start}-{end}, got `{range}`")));
    }
    let mut body = response.into_body();
    let mut got = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Error::Transport { op, detail: format!("reading the body: {e}") })?;
        let Ok(data) = frame.into_data() else { continue };
        got += data.len() as u64;
        if got > len {
            return Err(Error::Transport { op, detail: format!("more than the {len} bytes asked for") });
        }
        sink.take(data).await.map_err(|e| Error::invalid(op, format!("writing the range: {e}")))?;
    }
    match got == len {
        true => Ok(Got::Bytes),
        false => Err(Error::Transport { op, detail: format!("{got} bytes of {len}") }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_list_parts_and_etags() {
        let doc =
            "<ListPartsResult><PartNumberMarker>0</PartNumberMarker><NextPartNumberMarker>2</NextPartNumberMarker>\
                   <Part><PartNumber>1</PartNumber><ETag>&quot;aa&quot;</ETag><Size>5</Size>\
                   <ChecksumSHA256>c2E=</ChecksumSHA256></Part>\
                   <Part><PartNumber>2</PartNumber><ETag>\"bb\"</ETag><Size>3</Size></Part></ListPartsResult>";
        let parts = parse_parts(doc);
        assert_eq!(
            parts,
            [
                ListedPart { number: 1, etag: "aa".into(), size: 5, sha256: Some("c2E=".into()) },
                ListedPart { number: 2, etag: "bb".into(), size: 3, sha256: None },
            ]
        );
        // Two parts of 5 MiB of zeros, as S3 computes it.
        let md5: [u8; 16] = Md5::digest(vec![0u8; 5 << 20]).into();
        assert_eq!(multipart_etag(&[md5, md5]), format!("{}-2", hex::encode(Md5::digest([md5, md5].concat()))));
        assert!(check_etag_text("t", "\"ab\"", "ab").is_ok());
        assert!(check_etag_text("t", "\"ab-2\"", "ab").is_err());
    }
}
