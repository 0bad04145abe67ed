//! Instant upload (秒传) with the protocol clients already speak: a
//! PutObject or UploadPart that sends `Expect: 100-continue` and declares
//! its content's SHA-256 (a hex `x-amz-content-sha256` or an
//! `x-amz-checksum-sha256`) and size before the body is answered at once
//! with the final 200 when the requester already holds that content
//! (`store/instant.rs`); the body is never asked for. Otherwise the handler
//! goes on as usual: hyper sends `100 Continue` when it first reads the body.
//!
//! The answer is the one the bytes would have given (ETag, checksum, version
//! id), plus [`INSTANT_HEADER`], and `connection: close`: the client was told
//! nothing about its body, so the next bytes on the connection could be
//! either that body or its next request. Closing is the one clean way on.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use http::{HeaderMap, Response, StatusCode};

use super::error::{S3Error, S3Result};
use super::headers::{now_ms, quoted};
use super::ingest::Promises;
use super::object::write_check;
use super::{versioning, AppState, Principal, S3Request};
use crate::http::body::{self, Body};
use crate::http::conditional::WriteConditions;
use crate::store::digest::ChecksumAlgorithm;
use crate::store::instant::Requester;
use crate::store::schema::{BlobSpan, ObjectRecord, PartRecord, StoredChecksum};
use crate::store::HeldContent;

/// Says that an upload completed without its body: for tools and tests.
pub const INSTANT_HEADER: &str = "x-tessera-instant-upload";

/// Held content that answers a request exactly as its body would.
struct Found {
    sha256: [u8; 32],
    size: u64,
    held: HeldContent,
    md5: [u8; 16],
    checksum: (ChecksumAlgorithm, Vec<u8>),
}

impl Found {
    fn stored_checksum(&self) -> StoredChecksum {
        StoredChecksum { algorithm: self.checksum.0, value: BASE64.encode(&self.checksum.1), composite: false }
    }
}

/// PutObject: commits `record` from held content and answers, or `None`
/// when the body must be read.
pub async fn put(
    state: &AppState,
    req: &S3Request,
    mut record: ObjectRecord,
    conditions: &WriteConditions,
) -> S3Result<Option<Response<Body>>> {
    let Some(found) = find(state, req, ChecksumAlgorithm::Crc64Nvme).await? else { return Ok(None) };
    let (bucket, key) = (req.bucket()?.clone(), req.key()?.clone());
    record.size = found.size;
    record.etag = hex::encode(found.md5);
    record.checksum = Some(found.stored_checksum());
    record.last_modified_ms = now_ms();
    let (conditions, requester) = (conditions.clone(), requester_id(&req.principal));
    let written = state
        .store
        .run(move |s| {
            let content = (found.sha256, &found.held);
            let check = move |current: Option<&ObjectRecord>| write_check(&conditions, current);
            s.write_object_held::<S3Error, _>((&bucket, &key), record, content, requester.as_requester(), check)
        })
        .await?;
    let Some(record) = written else { return Ok(None) };
    let mut b = Response::builder().status(StatusCode::OK).header("etag", quoted(&record.etag));
    b = versioning::header(b, versioning::of_write(&record));
    if let Some(sum) = &record.checksum {
        b = b.header(sum.algorithm.header_name(), &sum.value).header("x-amz-checksum-type", "FULL_OBJECT");
    }
    instant(b)
}

/// UploadPart of an upload with `upload_algorithm`: stores part `number`
/// from held content and answers, or `None` when the body must be read.
pub async fn upload_part(
    state: &AppState,
    req: &S3Request,
    (bucket, key, id): (&str, &str, &str),
    number: u16,
    upload_algorithm: Option<ChecksumAlgorithm>,
) -> S3Result<Option<Response<Body>>> {
    let default = upload_algorithm.unwrap_or(ChecksumAlgorithm::Crc64Nvme);
    let Some(found) = find(state, req, default).await? else { return Ok(None) };
    if upload_algorithm.is_some_and(|alg| alg != found.checksum.0) {
        return Ok(None); // refused as usual, with the body read
    }
    let span = BlobSpan { id: found.held.id, size: found.size, part: number, inline: found.held.inline };
    let checksum = found.stored_checksum();
    let part = PartRecord { span, md5: found.md5, last_modified_ms: now_ms(), checksum: Some(found.checksum) };
    let (bucket, key, id, requester) =
        (bucket.to_string(), key.to_string(), id.to_string(), requester_id(&req.principal));
    let sha256 = found.sha256;
    let written = state
        .store
        .run(move |s| s.write_part_held((&bucket, &key, &id), number, part, sha256, requester.as_requester()))
        .await?;
    let Some(part) = written else { return Ok(None) };
    let b = Response::builder().status(StatusCode::OK).header("etag", quoted(&hex::encode(part.md5)));
    instant(b.header(checksum.algorithm.header_name(), checksum.value))
}

fn instant(b: http::response::Builder) -> S3Result<Option<Response<Body>>> {
    let b = b.header(INSTANT_HEADER, "true").header("connection", "close");
    b.body(body::empty()).map(Some).map_err(S3Error::internal)
}

/// The held content this request may be completed from: it waits for
/// `100 Continue`, declares size and SHA-256, is signed by a user who holds
/// the content (or root), and every promise it makes (Content-MD5, the
/// checksum) holds for that content. `default` is the checksum stored when
/// the request names none.
async fn find(state: &AppState, req: &S3Request, default: ChecksumAlgorithm) -> S3Result<Option<Found>> {
    if !expects_continue(req.headers()) || matches!(req.principal, Principal::Anonymous) {
        return Ok(None);
    }
    let promises = Promises::from_request(req.headers(), &req.auth.payload, default)?;
    let Some(declared) = promises.declared_content() else { return Ok(None) };
    let requester = requester_id(&req.principal);
    let held =
        state.store.lookup(|s| s.held_content(&declared.sha256, declared.size, requester.as_requester())).await?;
    let Some((held, md5)) = held.and_then(|h| h.md5.map(|md5| (h, md5))) else { return Ok(None) };
    if declared.content_md5.is_some_and(|promised| promised != md5) {
        return Ok(None);
    }
    let checksum = match declared.checksum {
        (ChecksumAlgorithm::Sha256, _) => (ChecksumAlgorithm::Sha256, declared.sha256.to_vec()),
        (alg, promised) => match &held.checksum {
            Some((held_alg, raw)) if *held_alg == alg && promised.is_none_or(|p| p == *raw) => (alg, raw.clone()),
            _ => return Ok(None),
        },
    };
    Ok(Some(Found { sha256: declared.sha256, size: declared.size, held, md5, checksum }))
}

fn expects_continue(headers: &HeaderMap) -> bool {
    headers.get("expect").and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"))
}

/// The requester as the store sees it, owned so it can cross to a store thread.
struct RequesterId(Option<String>);

fn requester_id(principal: &Principal) -> RequesterId {
    match principal {
        Principal::Root => RequesterId(None),
        other => RequesterId(Some(other.id().to_string())),
    }
}

impl RequesterId {
    fn as_requester(&self) -> Requester<'_> {
        match &self.0 {
            None => Requester::Root,
            Some(id) => Requester::User(id),
        }
    }
}
