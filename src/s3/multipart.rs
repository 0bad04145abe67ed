//! Multipart upload: Create, UploadPart, UploadPartCopy, Complete, Abort,
//! ListParts and ListMultipartUploads, with S3's limits and errors.
//! Reference: <https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html>

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use http::{Response, StatusCode};
use md5::{Digest, Md5};

use super::acl::Directory;
use super::error::{S3Error, S3ErrorCode, S3Result};
use super::headers::{checksum_type_name, content_headers, now_ms, quoted, user_meta};
use super::ingest::{receive_blob, receive_complete_request};
use super::list::Encoder;
use super::object::write_check;
use super::object_checksum::{object_checksum, Claims};
use super::xml::{self, iso8601, XmlWriter};
use super::{empty_response, write_owner, xml_response, AppState, S3Request};
use crate::http::body::{self, Body};
use crate::http::conditional::WriteConditions;
use crate::http::params::UPLOAD_ID_LEN;
use crate::http::target::{BucketName, ObjectKey};
use crate::store::digest::ChecksumAlgorithm;
use crate::store::schema::{BlobSpan, ObjectRecord, ObjectVersion, PartRecord, UploadRecord};
use crate::store::{UploadEntry, UploadQuery};

// The ids made here, accepted by routing and indexed by the store have one length.
const _: () = assert!(UPLOAD_ID_LEN == crate::store::UPLOAD_ID_LEN);

/// Every part but the last must be at least this large.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// 10,000 `<Part>` elements with checksums fit comfortably.
const MAX_COMPLETE_BODY: usize = 4 * 1024 * 1024;
const MAX_LISTED: usize = 1000;

/// A new upload id: 12 hex digits of milliseconds then 20 random hex digits,
/// so ids sort by initiation time (ListMultipartUploads order).
fn new_upload_id() -> S3Result<String> {
    let mut random = [0u8; 10];
    getrandom::getrandom(&mut random).map_err(S3Error::internal)?;
    let id = format!("{:012x}{}", now_ms() & 0xFFFF_FFFF_FFFF, hex::encode(random));
    debug_assert_eq!(id.len(), UPLOAD_ID_LEN);
    Ok(id)
}

fn upload_id(req: &S3Request) -> S3Result<String> {
    req.route.params.upload_id().map(str::to_string)
}

/// The checksum algorithm and type chosen at Create. CRC64NVME only exists
/// as FULL_OBJECT, SHA only as COMPOSITE (client-pitfalls.md item 5).
fn checksum_choice(req: &S3Request) -> S3Result<(Option<ChecksumAlgorithm>, bool)> {
    let alg = match req.header("x-amz-checksum-algorithm") {
        Some(name) => Some(ChecksumAlgorithm::parse(name).ok_or_else(|| {
            S3Error::with_message(S3ErrorCode::InvalidRequest, format!("Checksum algorithm {name} is not supported"))
        })?),
        None => None,
    };
    let kind = req.header("x-amz-checksum-type").map(str::to_ascii_uppercase);
    let full_object = match (alg, kind.as_deref()) {
        (None, Some(_)) => {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.",
            ))
        }
        (Some(ChecksumAlgorithm::Crc64Nvme), None | Some("FULL_OBJECT")) => true,
        (Some(ChecksumAlgorithm::Sha1 | ChecksumAlgorithm::Sha256), None | Some("COMPOSITE")) => false,
        (Some(ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c), Some("FULL_OBJECT")) => true,
        (Some(ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c), None | Some("COMPOSITE")) => false,
        (None, None) => false,
        (Some(alg), Some(kind)) => {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                format!(
                    "The {kind} checksum type cannot be used with the {} checksum algorithm.",
                    alg.name().to_lowercase()
                ),
            ))
        }
    };
    Ok((alg, full_object))
}

pub async fn create(state: &AppState, req: S3Request) -> S3Result<Response<Body>> {
    let (bucket, key) = (req.bucket()?.clone(), req.key()?.clone());
    let (checksum_algorithm, full_object_checksum) = checksum_choice(&req)?;
    let record = UploadRecord {
        bucket: bucket.to_string(),
        key: key.to_string(),
        owner: req.principal.id().to_string(),
        initiated_ms: now_ms(),
        headers: content_headers(req.headers()),
        user_meta: user_meta(req.headers())?,
        checksum_algorithm,
        full_object_checksum,
        tags: super::tagging::from_header(&req)?,
        acl: super::acl::for_new_object(state, &req).await?.1,
    };
    let id = new_upload_id()?;
    let upload_id = id.clone();
    state.store.run(move |s| s.create_upload(&upload_id, &record)).await?;
    let mut w = XmlWriter::new("InitiateMultipartUploadResult");
    w.elem("Bucket", &bucket).elem("Key", &key).elem("UploadId", &id);
    let mut response = xml_response(w.finish("InitiateMultipartUploadResult"))?;
    if let Some(alg) = checksum_algorithm {
        let headers = response.headers_mut();
        headers.insert("x-amz-checksum-algorithm", http::HeaderValue::from_static(alg.name()));
        headers.insert("x-amz-checksum-type", http::HeaderValue::from_static(checksum_type_name(full_object_checksum)));
    }
    Ok(response)
}

pub(super) async fn load_upload(
    state: &AppState,
    req: &S3Request,
) -> S3Result<(BucketName, ObjectKey, String, UploadRecord)> {
    let (bucket, key, id) = (req.bucket()?.clone(), req.key()?.clone(), upload_id(req)?);
    let (b, k, i) = (bucket.clone(), key.clone(), id.clone());
    let upload = state
        .store
        .run(move |s| s.upload(&b, &k, &i))
        .await
        .map_err(|e| S3Error::from(e).with_extra("UploadId", id.clone()))?;
    may_continue(req, &upload.owner)?;
    Ok((bucket, key, id, upload))
}

/// Only whoever started an upload uploads its parts and completes it; the
/// bucket's owner may also list its parts and abort it (`access.rs`).
fn may_continue(req: &S3Request, initiator: &str) -> S3Result<()> {
    match req.access.may_continue_upload(&req.principal, req.route.op, initiator) {
        true => Ok(()),
        false => Err(S3Error::new(S3ErrorCode::AccessDenied)),
    }
}

pub async fn upload_part(state: &AppState, mut req: S3Request) -> S3Result<Response<Body>> {
    let number = req.route.params.part_number()?;
    let (bucket, key, id, upload) = load_upload(state, &req).await?;
    let held = super::instant::upload_part(state, &req, (&bucket, &key, &id), number, upload.checksum_algorithm);
    if let Some(answered) = held.await? {
        return Ok(answered);
    }
    let (staged, checksum) = receive_blob(state, &mut req, upload.checksum_algorithm).await?;
    let part = state.store.write_part((&bucket, &key, &id), number, staged, now_ms()).await?;
    Response::builder()
        .status(StatusCode::OK)
        .header("etag", quoted(&hex::encode(part.md5)))
        .header(checksum.algorithm.header_name(), checksum.value)
        .body(body::empty())
        .map_err(S3Error::internal)
}

pub async fn abort(state: &AppState, req: S3Request) -> S3Result<Response<Body>> {
    // Who started an upload never changes: checking first is not a race.
    let (bucket, key, id, _) = load_upload(state, &req).await?;
    state.store.run(move |s| s.abort_upload(&bucket, &key, &id)).await?;
    empty_response(StatusCode::NO_CONTENT)
}

/// One `<Part>` of a CompleteMultipartUpload request.
struct RequestedPart {
    number: u16,
    etag: String,
    /// The part checksum the client expects, base64, for the upload's algorithm.
    checksum: Option<String>,
}

fn parse_complete(body: &[u8], alg: Option<ChecksumAlgorithm>) -> S3Result<Vec<RequestedPart>> {
    let doc = xml::parse(body)?;
    if doc.name != "CompleteMultipartUpload" {
        return Err(S3Error::new(S3ErrorCode::MalformedXML));
    }
    let mut parts = Vec::new();
    for part in doc.children_named("Part") {
        let number = part.child_text("PartNumber").and_then(|n| n.trim().parse::<u16>().ok());
        let etag = part.child_text("ETag");
        let (Some(number), Some(etag)) = (number, etag) else { return Err(S3Error::new(S3ErrorCode::MalformedXML)) };
        let checksum = alg.and_then(|a| part.child_text(a.xml_name())).map(|v| v.trim().to_string());
        parts.push(RequestedPart { number, etag: etag.trim().trim_matches('"').to_string(), checksum });
    }
    if parts.is_empty() {
        return Err(S3Error::with_message(S3ErrorCode::MalformedXML, "You must specify at least one part"));
    }
    Ok(parts)
}

/// Checks the requested parts against the uploaded ones and builds the object:
/// parts ascend (gaps allowed), each matches an uploaded ETag (and checksum),
/// each but the last is at least 5 MiB.
fn assemble(
    upload: &UploadRecord,
    uploaded: &[(u16, PartRecord)],
    requested: &[RequestedPart],
    claims: &Claims,
) -> S3Result<ObjectRecord> {
    if requested.windows(2).any(|pair| matches!(pair, [a, b] if b.number <= a.number)) {
        return Err(S3Error::new(S3ErrorCode::InvalidPartOrder));
    }
    let mut chosen: Vec<&PartRecord> = Vec::with_capacity(requested.len());
    for (i, want) in requested.iter().enumerate() {
        let invalid = || {
            S3Error::new(S3ErrorCode::InvalidPart)
                .with_extra("PartNumber", want.number.to_string())
                .with_extra("ETag", want.etag.clone())
        };
        let part = uploaded
            .binary_search_by_key(&want.number, |(n, _)| *n)
            .ok()
            .and_then(|i| uploaded.get(i))
            .map(|(_, p)| p)
            .ok_or_else(invalid)?;
        if hex::encode(part.md5) != want.etag.to_ascii_lowercase() {
            return Err(invalid());
        }
        if let (Some(expected), Some((_, raw))) = (&want.checksum, &part.checksum) {
            if *expected != BASE64.encode(raw) {
                return Err(invalid());
            }
        }
        if i + 1 < requested.len() && part.span.size < MIN_PART_SIZE {
            return Err(S3Error::new(S3ErrorCode::EntityTooSmall)
                .with_extra("ProposedSize", part.span.size.to_string())
                .with_extra("MinSizeAllowed", MIN_PART_SIZE.to_string())
                .with_extra("PartNumber", want.number.to_string())
                .with_extra("ETag", want.etag.clone()));
        }
        chosen.push(part);
    }
    let checksum = object_checksum(upload, &chosen);
    // Every part has one when the upload chose an algorithm (UploadPart computes it).
    let part_checksums: Vec<String> = match chosen.iter().map(|p| p.checksum.as_ref()).collect::<Option<Vec<_>>>() {
        Some(sums) if upload.checksum_algorithm.is_some() => sums.iter().map(|(_, raw)| BASE64.encode(raw)).collect(),
        _ => Vec::new(),
    };
    claims.check(checksum.as_ref(), &chosen)?;
    let blobs: Vec<BlobSpan> = chosen.iter().map(|p| p.span).collect();
    Ok(ObjectRecord {
        size: blobs.iter().map(|s| s.size).sum(),
        etag: multipart_etag(chosen.iter().map(|p| p.md5)),
        last_modified_ms: now_ms(),
        headers: upload.headers.clone(),
        user_meta: upload.user_meta.clone(),
        checksum,
        blobs,
        version: ObjectVersion::NULL,
        tags: upload.tags.clone(),
        part_checksums,
        owner: None,
        acl: upload.acl.clone(),
    })
}

pub async fn complete(state: &AppState, mut req: S3Request) -> S3Result<Response<Body>> {
    let claims = Claims::from_headers(req.headers())?;
    let upload = match load_upload(state, &req).await {
        Ok((_, _, _, upload)) => Ok(upload),
        Err(e) if e.code == S3ErrorCode::NoSuchUpload => Err(e),
        Err(e) => return Err(e),
    };
    let body = receive_complete_request(state, &mut req, MAX_COMPLETE_BODY).await?;
    let completed = match upload {
        Ok(upload) => apply_complete(state, &req, &upload, &body, claims).await,
        Err(e) => Err(e),
    };
    // Gone before the request or during it (an identical Complete won).
    let record = match completed {
        Err(e) if e.code == S3ErrorCode::NoSuchUpload => already_completed(state, &req, &body).await?,
        other => other?,
    };
    let (bucket, key) = (req.bucket()?, req.key()?);
    let host = req.header("host").unwrap_or("localhost");
    let mut w = XmlWriter::new("CompleteMultipartUploadResult");
    w.elem("Location", &format!("http://{host}/{bucket}/{}", crate::auth::sigv4::uri_encode(key, false)))
        .elem("Bucket", bucket)
        .elem("Key", key)
        .elem("ETag", &quoted(&record.etag));
    if let Some(sum) = &record.checksum {
        w.elem(sum.algorithm.xml_name(), &sum.value).elem("ChecksumType", checksum_type_name(!sum.composite));
    }
    let mut response = xml_response(w.finish("CompleteMultipartUploadResult"))?;
    super::versioning::add_header(&mut response, super::versioning::of_write(&record));
    Ok(response)
}

/// Completes `upload` as the request asks: checks the listed parts, the
/// claimed checksum and the write conditions, and commits the object, all in
/// one transaction.
async fn apply_complete(
    state: &AppState,
    req: &S3Request,
    upload: &UploadRecord,
    body: &[u8],
    claims: Claims,
) -> S3Result<ObjectRecord> {
    let requested = parse_complete(body, upload.checksum_algorithm)?;
    let conditions = WriteConditions::from_headers(req.headers());
    let (bucket, key, id) = (req.bucket()?.clone(), req.key()?.clone(), upload_id(req)?);
    // The object is its initiator's, recorded when not the bucket's owner.
    let owner = (req.access.bucket_owner.as_deref() != Some(upload.owner.as_str())).then(|| upload.owner.clone());
    let assemble = move |upload: &UploadRecord, uploaded: &[(u16, PartRecord)]| {
        assemble(upload, uploaded, &requested, &claims).map(|record| ObjectRecord { owner: owner.clone(), ..record })
    };
    state
        .store
        .run(move |s| s.complete_upload(&bucket, &key, &id, assemble, move |current| write_check(&conditions, current)))
        .await
}

/// A Complete repeated after the upload was completed (the SDK retries
/// when the first response was lost): S3 answers with the same result while
/// the object that upload created is the current one, if the request lists
/// the same parts (its ETag, `md5(part md5s)-N`, is the object's); else
/// NoSuchUpload.
async fn already_completed(state: &AppState, req: &S3Request, body: &[u8]) -> S3Result<ObjectRecord> {
    let (bucket, key, id) = (req.bucket()?.clone(), req.key()?.clone(), upload_id(req)?);
    let gone = S3Error::new(S3ErrorCode::NoSuchUpload).with_extra("UploadId", id.clone());
    let listed_md5s = |parts: Vec<RequestedPart>| -> Option<Vec<Vec<u8>>> {
        parts.iter().map(|p| hex::decode(&p.etag).ok()).collect()
    };
    let listed_etag = parse_complete(body, None).ok().and_then(listed_md5s).map(multipart_etag);
    let record = state.store.run(move |s| s.completed_upload(&bucket, &key, &id)).await?;
    record.filter(|r| listed_etag.as_deref() == Some(r.etag.as_str())).ok_or(gone)
}

/// A multipart object's ETag, `md5(part md5s)-N`, from its parts' MD5s.
fn multipart_etag<M: AsRef<[u8]>>(md5s: impl IntoIterator<Item = M>) -> String {
    let (mut hasher, mut count) = (Md5::new(), 0);
    for md5 in md5s {
        hasher.update(md5);
        count += 1;
    }
    format!("{}-{count}", hex::encode(hasher.finalize()))
}

pub async fn list_parts(state: &AppState, req: S3Request) -> S3Result<Response<Body>> {
    let (bucket, key, id) = (req.bucket()?.clone(), req.key()?.clone(), upload_id(&req)?);
    let max = req.route.params.max.map_or(MAX_LISTED, |n| n.min(MAX_LISTED));
    let marker = req.route.params.part_number_marker;
    let (b, k, i) = (bucket.clone(), key.clone(), id.clone());
    let page = state.store.run(move |s| s.list_parts(&b, &k, &i, marker, max)).await?;
    may_continue(&req, &page.upload.owner)?;
    let directory = Directory::load(state).await?;
    let mut w = XmlWriter::new("ListPartsResult");
    w.elem("Bucket", &bucket).elem("Key", &key).elem("UploadId", &id);
    w.elem("PartNumberMarker", &marker.to_string());
    if let Some((last, _)) = page.parts.last() {
        w.elem("NextPartNumberMarker", &last.to_string());
    }
    w.elem("MaxParts", &max.to_string()).elem("IsTruncated", &page.truncated.to_string());
    write_initiator(&mut w, &page.upload.owner, &directory);
    w.elem("StorageClass", "STANDARD");
    if let Some(alg) = page.upload.checksum_algorithm {
        w.elem("ChecksumAlgorithm", alg.name())
            .elem("ChecksumType", checksum_type_name(page.upload.full_object_checksum));
    }
    for (number, part) in &page.parts {
        w.start("Part")
            .elem("PartNumber", &number.to_string())
            .elem("LastModified", &iso8601(part.last_modified_ms))
            .elem("ETag", &quoted(&hex::encode(part.md5)))
            .elem("Size", &part.span.size.to_string());
        if let (Some((alg, raw)), Some(_)) = (&part.checksum, page.upload.checksum_algorithm) {
            w.elem(alg.xml_name(), &BASE64.encode(raw));
        }
        w.end("Part");
    }
    xml_response(w.finish("ListPartsResult"))
}

fn write_initiator(w: &mut XmlWriter, owner: &str, directory: &Directory) {
    let name = directory.display_name(owner);
    w.start("Initiator").elem("ID", owner).elem("DisplayName", name).end("Initiator");
    write_owner(w, owner, directory);
}

pub async fn list_uploads(state: &AppState, req: S3Request) -> S3Result<Response<Body>> {
    let bucket = req.bucket()?.clone();
    let q = &req.route.query;
    let enc = Encoder::from_query(q)?;
    let query = UploadQuery {
        prefix: q.get("prefix").unwrap_or_default().to_string(),
        delimiter: q.get("delimiter").filter(|d| !d.is_empty()).map(str::to_string),
        key_marker: q.get("key-marker").unwrap_or_default().to_string(),
        upload_id_marker: q.get("upload-id-marker").filter(|m| !m.is_empty()).map(str::to_string),
        max: req.route.params.max.map_or(MAX_LISTED, |n| n.min(MAX_LISTED)),
    };
    let (prefix, key_marker, max) = (query.prefix.clone(), query.key_marker.clone(), query.max);
    let b = bucket.clone();
    let page = state
        .store
        .run(move |s| s.list_uploads(&b, &query))
        .await
        .map_err(|e| S3Error::from(e).with_extra("BucketName", bucket.clone()))?;
    let mut w = XmlWriter::new("ListMultipartUploadsResult");
    w.elem("Bucket", &bucket)
        .elem("KeyMarker", &enc.apply(&key_marker))
        .elem("UploadIdMarker", q.get("upload-id-marker").unwrap_or_default());
    if page.truncated {
        let (next_key, next_id) = match page.entries.last() {
            Some(UploadEntry::Upload { key, upload_id, .. }) => (key.as_str(), upload_id.as_str()),
            Some(UploadEntry::CommonPrefix(p)) => (p.as_str(), ""),
            None => ("", ""),
        };
        w.elem("NextKeyMarker", &enc.apply(next_key)).elem("NextUploadIdMarker", next_id);
    }
    w.elem("Prefix", &enc.apply(&prefix));
    if let Some(d) = q.get("delimiter").filter(|d| !d.is_empty()) {
        w.elem("Delimiter", &enc.apply(d));
    }
    w.elem("MaxUploads", &max.to_string()).elem("IsTruncated", &page.truncated.to_string());
    let directory = Directory::load(state).await?;
    enc.write_type(&mut w);
    for entry in &page.entries {
        if let UploadEntry::Upload { key, upload_id, record } = entry {
            w.start("Upload").elem("Key", &enc.apply(key)).elem("UploadId", upload_id);
            write_initiator(&mut w, &record.owner, &directory);
            w.elem("StorageClass", "STANDARD").elem("Initiated", &iso8601(record.initiated_ms));
            if let Some(alg) = record.checksum_algorithm {
                w.elem("ChecksumAlgorithm", alg.name())
                    .elem("ChecksumType", checksum_type_name(record.full_object_checksum));
            }
            w.end("Upload");
        }
    }
    for entry in &page.entries {
        if let UploadEntry::CommonPrefix(p) = entry {
            w.start("CommonPrefixes").elem("Prefix", &enc.apply(p)).end("CommonPrefixes");
        }
    }
    xml_response(w.finish("ListMultipartUploadsResult"))
}
