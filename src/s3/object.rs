//! Object operations: put, get, head, delete (one and many), copy, ACL.

use std::ops::Range;

use bytes::Bytes;
use http::{Response, StatusCode};

use super::error::{S3Error, S3ErrorCode, S3Result};
use super::headers::{self, checksum_headers, content_headers, now_ms, object_headers, quoted, system_time, user_meta};
use super::ingest::{receive_blob, receive_small};
use super::xml::{self, XmlWriter};
use super::{tagging, versioning};
use super::{xml_response, AppState, S3Request};
use crate::http::body::{self, Body};
use crate::http::conditional::{self, Current, DeleteConditions, Outcome, WriteConditions, WriteRefusal};
use crate::http::range::ByteRange;
use crate::store::schema::{BlobSpan, ObjectRecord, ObjectVersion};
use crate::store::{Deleted, OpenError, Store, VersionId};

/// DeleteObjects takes at most 1000 keys; 1000 keys of 1 KiB fit in 2 MiB.
const MAX_DELETE_BODY: usize = 2 * 1024 * 1024;
const MAX_DELETE_KEYS: usize = 1000;

pub async fn put(state: &AppState, mut req: S3Request) -> S3Result<Response<Body>> {
    let (bucket, key) = (req.bucket()?.clone(), req.key()?.clone());
    // `access::authorize` found the bucket before any body byte was read.
    let (owner, acl) = super::acl::for_new_object(state, &req).await?;
    let mut record = ObjectRecord {
        size: 0,
        etag: String::new(),
        last_modified_ms: 0,
        headers: content_headers(req.headers()),
        user_meta: user_meta(req.headers())?,
        checksum: None,
        blobs: Vec::new(),
        version: ObjectVersion::NULL,
        tags: tagging::from_header(&req)?,
        part_checksums: Vec::new(),
        owner,
        acl,
    };
    let conditions = WriteConditions::from_headers(req.headers());
    if let Some(answered) = super::instant::put(state, &req, record.clone(), &conditions).await? {
        return Ok(answered);
    }
    let (staged, checksum) = receive_blob(state, &mut req, None).await?;
    record.size = staged.digests.size;
    record.etag = hex::encode(staged.digests.md5);
    record.checksum = Some(checksum);
    record.last_modified_ms = now_ms();
    // The store publishes the body and commits the record, the write
    // conditions checked in the same transaction (or removes the body again).
    let check = move |current: Option<&ObjectRecord>| write_check(&conditions, current);
    let record = state.store.write_object((&bucket, &key), record, staged, check).await?;
    let mut b = Response::builder().status(StatusCode::OK).header("etag", quoted(&record.etag));
    b = versioning::header(b, versioning::of_write(&record));
    if let Some(sum) = &record.checksum {
        b = b.header(sum.algorithm.header_name(), &sum.value).header("x-amz-checksum-type", "FULL_OBJECT");
    }
    b.body(body::empty()).map_err(S3Error::internal)
}

/// The write preconditions of a request (`http::conditional`), as S3 errors.
pub(crate) fn write_check(conditions: &WriteConditions, current: Option<&ObjectRecord>) -> S3Result<()> {
    conditions.check(current.map(|c| c.etag.as_str())).map_err(refused)
}

/// A failed write or delete precondition as S3 answers it.
fn refused(refusal: WriteRefusal) -> S3Error {
    match refusal {
        WriteRefusal::Failed(condition) => {
            S3Error::new(S3ErrorCode::PreconditionFailed).with_extra("Condition", condition)
        }
        WriteRefusal::NoSuchKey => S3Error::new(S3ErrorCode::NoSuchKey),
    }
}

/// A NoSuchKey error names the key, as S3's does.
pub(super) fn with_key(e: S3Error, req: &S3Request) -> S3Error {
    match (e.code, req.key()) {
        (S3ErrorCode::NoSuchKey, Ok(key)) => e.with_extra("Key", key.to_string()),
        _ => e,
    }
}

/// The object (or the version `versionId` names) a read request is about,
/// and the `x-amz-version-id` to answer with.
pub(super) async fn load(state: &AppState, req: &S3Request) -> S3Result<(ObjectRecord, Option<VersionId>)> {
    let (record, id, _) = load_reading(state, req, false).await?;
    Ok((record, id))
}

/// [`load`], and with `small_body` the bytes of an object held wholly in
/// small bodies, read in the same lookup (`Store::get_version_reading`).
/// What reading them found is told only to a requester the object allows.
async fn load_reading(
    state: &AppState,
    req: &S3Request,
    small_body: bool,
) -> S3Result<(ObjectRecord, Option<VersionId>, Option<Bytes>)> {
    let (bucket, key) = (req.bucket()?, req.key()?);
    let version = versioning::requested(req)?;
    let found = state.store.lookup(|s| s.get_version_reading(bucket, key, version, small_body)).await;
    let (record, bucket_versioning, body) = found.map_err(|e| req.access.hide_missing(with_key(e.into(), req)))?;
    req.access.check_object(&req.principal, &record)?;
    let id = versioning::of_read(&record, bucket_versioning);
    // A body gone (NotFound) is left to the read of the span, which retries.
    let body = match body {
        Some(Err(e)) if e.kind() != std::io::ErrorKind::NotFound => return Err(S3Error::internal(e)),
        Some(Err(_)) | None => None,
        Some(Ok(bytes)) => Some(bytes),
    };
    Ok((record, id, body))
}

/// GetObject and HeadObject: conditional headers, then `partNumber` or
/// `Range` (with `If-Range`), then the headers and, for GET, the bytes.
/// A concurrent overwrite or delete may unlink the blobs between reading the
/// record and opening them: the object changed, so it is looked up again.
pub async fn get(state: &AppState, req: S3Request, head_only: bool) -> S3Result<Response<Body>> {
    const ATTEMPTS: usize = 3;
    // A whole GET of a small object reads its bytes with its record.
    let whole = !head_only && req.header("range").is_none() && req.route.params.part_number.is_none();
    for _ in 0..ATTEMPTS {
        let (record, version, small) = load_reading(state, &req, whole).await?;
        let (head, span) = match prepare(&req, &record, version)? {
            Prepared::Answer(response) => return Ok(response),
            Prepared::Send(head, span) => (head, span),
        };
        if head_only || span.is_empty() {
            return head.body(body::empty()).map_err(S3Error::internal);
        }
        if let Some(bytes) = small.filter(|bytes| span == (0..bytes.len() as u64)) {
            return head.body(body::full(bytes)).map_err(S3Error::internal);
        }
        if let Some(content) = open_content(state, record.blobs, span).await? {
            return head.body(content).map_err(S3Error::internal);
        }
    }
    Err(S3Error::internal("the object kept changing while being read"))
}

enum Prepared {
    /// A complete answer without content (304).
    Answer(Response<Body>),
    /// The response head and the bytes of the object to send.
    Send(http::response::Builder, Range<u64>),
}

fn prepare(req: &S3Request, record: &ObjectRecord, version: Option<VersionId>) -> S3Result<Prepared> {
    match conditional::evaluate(req.headers(), &record.etag, system_time(record.last_modified_ms)) {
        Outcome::Proceed => {}
        Outcome::NotModified => return not_modified(record).map(Prepared::Answer),
        Outcome::PreconditionFailed => {
            return Err(S3Error::new(S3ErrorCode::PreconditionFailed).with_extra("Condition", "If-Match"))
        }
    }
    let (range, parts_count) = match req.route.params.part_number {
        Some(number) => part_range(req, record, number)?,
        None => (requested_range(req, record)?, None),
    };
    let span = range.clone().unwrap_or(0..record.size);
    let mut b = versioning::header(object_headers(Response::builder(), record, &req.route.query), version);
    b = checksum_headers(b, record, req.headers(), range.is_none()).header("content-length", span.end - span.start);
    if let Some(count) = parts_count {
        b = b.header("x-amz-mp-parts-count", count);
    }
    b = match &range {
        Some(r) => b
            .status(StatusCode::PARTIAL_CONTENT)
            .header("content-range", format!("bytes {}-{}/{}", r.start, r.end.saturating_sub(1), record.size)),
        None => b.status(StatusCode::OK),
    };
    Ok(Prepared::Send(b, span))
}

/// Opens the bytes `span` of an object; `None` if a blob is gone (the object
/// was replaced or deleted meanwhile). Small reads are done at once, larger
/// ones stream from a reader thread.
async fn open_content(state: &AppState, blobs: Vec<BlobSpan>, span: Range<u64>) -> S3Result<Option<Body>> {
    let in_database = blobs.iter().all(|b| b.inline);
    let stall = state.body_timeout;
    let open = move |s: &Store| match s.open_range(&blobs, span) {
        Ok(opened) => match opened.read_small() {
            Some(bytes) => bytes.map(|b| Some(body::full(b))).map_err(S3Error::internal),
            None => Ok(Some(body::from_channel(opened.stream(stall)))),
        },
        Err(OpenError::Gone) => Ok(None),
        Err(OpenError::Read(e)) => Err(S3Error::internal(e)),
        Err(OpenError::Store(e)) => Err(e.into()),
    };
    // Inline bodies (at most 32 KiB each) are database reads, done where
    // the database answers them best; files are opened and read on a
    // blocking thread.
    match in_database {
        true => state.store.lookup(open).await,
        false => state.store.run(open).await,
    }
}

fn not_modified(record: &ObjectRecord) -> S3Result<Response<Body>> {
    Response::builder()
        .status(StatusCode::NOT_MODIFIED)
        .header("etag", quoted(&record.etag))
        .header("last-modified", headers::http_date(record.last_modified_ms))
        .body(body::empty())
        .map_err(S3Error::internal)
}

/// `partNumber=N`: the bytes of part N of a multipart object (with the parts
/// count), or the whole object for part 1 of a single-PUT object. A part
/// number is the one it was uploaded as; Complete may have left gaps.
fn part_range(req: &S3Request, record: &ObjectRecord, number: u16) -> S3Result<(Option<Range<u64>>, Option<usize>)> {
    if req.header("range").is_some() {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "Cannot specify both Range header and partNumber query parameter",
        ));
    }
    let parts_count = record.blobs.iter().filter(|s| s.part > 0).count();
    if parts_count == 0 {
        return match number {
            1 => Ok((None, None)),
            _ => Err(S3Error::new(S3ErrorCode::InvalidPartNumber)),
        };
    }
    let mut start = 0;
    for span in &record.blobs {
        if span.part == number {
            return Ok((Some(start..start + span.size), Some(parts_count)));
        }
        start += span.size;
    }
    Err(S3Error::new(S3ErrorCode::InvalidPartNumber))
}

/// The byte range to serve, or `None` for the whole object.
fn requested_range(req: &S3Request, record: &ObjectRecord) -> S3Result<Option<Range<u64>>> {
    let Some(range) = req.header("range").and_then(ByteRange::parse) else { return Ok(None) };
    if !conditional::if_range_holds(req.headers(), &record.etag, system_time(record.last_modified_ms)) {
        return Ok(None);
    }
    range.resolve(record.size).map(Some).map_err(|_| {
        S3Error::new(S3ErrorCode::InvalidRange)
            .with_header("content-range", format!("bytes */{}", record.size))
            .with_extra("ActualObjectSize", record.size.to_string())
            .with_extra("RangeRequested", req.header("range").unwrap_or_default().to_string())
    })
}

/// DeleteObject, conditional with `If-Match`, `x-amz-if-match-last-modified-time`
/// and `x-amz-if-match-size` (checked inside the delete's transaction).
pub async fn delete(state: &AppState, req: S3Request) -> S3Result<Response<Body>> {
    let (bucket, key) = (req.bucket()?.clone(), req.key()?.clone());
    let conditions = DeleteConditions::from_headers(req.headers())
        .map_err(|header| S3Error::with_message(S3ErrorCode::InvalidArgument, format!("Invalid value for {header}")))?;
    let version = versioning::requested(&req)?;
    let mut outcomes = state
        .store
        .run(move |s| {
            let keys = vec![(key.to_string(), version)];
            s.delete_objects_checked(&bucket, keys, move |_, c| delete_check(&conditions, c))
        })
        .await?;
    let deleted = outcomes.pop().unwrap_or(Err(S3Error::internal("a delete without an outcome")))?;
    let mut b = versioning::header(Response::builder().status(StatusCode::NO_CONTENT), deleted.version_id);
    if deleted.delete_marker {
        b = b.header("x-amz-delete-marker", "true");
    }
    b.body(body::empty()).map_err(S3Error::internal)
}

/// The delete preconditions of one key (`http::conditional`), as S3 errors.
fn delete_check(conditions: &DeleteConditions, current: Option<&ObjectRecord>) -> S3Result<()> {
    let current =
        current.map(|c| Current { etag: &c.etag, last_modified: system_time(c.last_modified_ms), size: c.size });
    conditions.check(current).map_err(refused)
}

/// One `<Object>` of a DeleteObjects request.
struct DeleteEntry {
    key: String,
    /// The version id as sent, and as parsed.
    version: Option<String>,
    version_id: S3Result<Option<VersionId>>,
    conditions: DeleteConditions,
}

fn delete_entries(doc: &xml::Element) -> S3Result<Vec<DeleteEntry>> {
    let mut entries = Vec::new();
    for o in doc.children_named("Object") {
        let text = |name: &str| o.child_text(name).map(str::trim);
        let last_modified = match text("LastModifiedTime") {
            None => None,
            Some(v) => Some(conditional::parse_time(v).ok_or_else(|| S3Error::new(S3ErrorCode::MalformedXML))?),
        };
        let size = match text("Size") {
            None => None,
            Some(v) => Some(v.parse().map_err(|_| S3Error::new(S3ErrorCode::MalformedXML))?),
        };
        let version = o.child_text("VersionId").map(str::to_string);
        entries.push(DeleteEntry {
            key: o.child_text("Key").unwrap_or_default().to_string(),
            version_id: version.as_deref().map(versioning::parse).transpose(),
            version,
            conditions: DeleteConditions { if_match: text("ETag").map(str::to_string), last_modified, size },
        });
    }
    if entries.is_empty() || entries.len() > MAX_DELETE_KEYS || entries.iter().any(|e| e.key.is_empty()) {
        return Err(S3Error::new(S3ErrorCode::MalformedXML));
    }
    Ok(entries)
}

/// DeleteObjects: up to 1000 keys in one transaction. Missing keys count as
/// deleted; a key whose conditions fail gets an `<Error>` entry and stays.
pub async fn delete_many(state: &AppState, mut req: S3Request) -> S3Result<Response<Body>> {
    let bucket = req.bucket()?.clone();
    let doc = xml::parse(&receive_small(state, &mut req, MAX_DELETE_BODY).await?)?;
    if doc.name != "Delete" {
        return Err(S3Error::new(S3ErrorCode::MalformedXML));
    }
    let quiet = doc.child_text("Quiet").is_some_and(|q| q.trim().eq_ignore_ascii_case("true"));
    let mut entries = delete_entries(&doc)?;
    for entry in &mut entries {
        let versioned = !matches!(entry.version_id, Ok(None));
        if !req.access.may_delete(&req.principal, &entry.key, versioned) {
            entry.version_id = Err(S3Error::new(S3ErrorCode::AccessDenied));
        }
    }
    // Entries with a malformed version id, or that the bucket's policy
    // refuses, get their error without a lookup.
    let valid: Vec<&DeleteEntry> = entries.iter().filter(|e| e.version_id.is_ok()).collect();
    let keys = valid.iter().map(|e| (e.key.clone(), e.version_id.clone().ok().flatten())).collect();
    let conditions: Vec<DeleteConditions> = valid.iter().map(|e| e.conditions.clone()).collect();
    let check = move |i: usize, current: Option<&ObjectRecord>| match conditions.get(i) {
        Some(c) => delete_check(c, current),
        None => Ok(()),
    };
    let mut outcomes = state.store.run(move |s| s.delete_objects_checked(&bucket, keys, check)).await?.into_iter();
    let mut w = XmlWriter::new("DeleteResult");
    for entry in &entries {
        let outcome = match &entry.version_id {
            Ok(_) => outcomes.next().unwrap_or(Err(S3Error::internal("a delete without an outcome"))),
            Err(e) => Err(e.clone()),
        };
        match outcome {
            Ok(_) if quiet => {}
            Ok(deleted) => write_deleted(&mut w, entry, deleted),
            Err(e) => {
                w.start("Error").elem("Key", &entry.key).opt("VersionId", entry.version.as_deref());
                w.elem("Code", e.code.as_str()).elem("Message", &e.message).end("Error");
            }
        }
    }
    xml_response(w.finish("DeleteResult"))
}

/// A `<Deleted>` entry: the version removed, or the delete marker written
/// or removed, as S3 reports them.
fn write_deleted(w: &mut XmlWriter, entry: &DeleteEntry, deleted: Deleted) {
    w.start("Deleted").elem("Key", &entry.key).opt("VersionId", entry.version.as_deref());
    if deleted.delete_marker {
        let marker = deleted.version_id.map(|id| id.to_string());
        w.elem("DeleteMarker", "true").opt("DeleteMarkerVersionId", marker.as_deref());
    }
    w.end("Deleted");
}
