//! CopyObject and UploadPartCopy: the source named by `x-amz-copy-source`,
//! checked with the `x-amz-copy-source-if-*` headers.
//! CopyObject shares the source's blobs (no byte moves); UploadPartCopy copies
//! a byte range into a new part blob, since a part is one blob of its own.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use http::Response;

use super::error::{S3Error, S3ErrorCode, S3Result};
use super::headers::{content_headers, now_ms, quoted, system_time, user_meta};
use super::versioning;
use super::xml::{self, XmlWriter};
use super::{xml_response, AppState, S3Request};
use crate::http::body::Body;
use crate::http::conditional::{self, Outcome};
use crate::http::target::{parse_copy_source, BucketName, ObjectKey};
use crate::store::blob::BlobSink;
use crate::store::digest::{ChecksumAlgorithm, DigestSpec};
use crate::store::read::OpenObject;
use crate::store::schema::ObjectRecord;
use crate::store::OpenError;
use crate::store::VersionId;

/// The largest source CopyObject accepts; larger objects need UploadPartCopy.
const MAX_COPY_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// CopyObject: the destination shares the source's blobs, no bytes move.
pub async fn copy(state: &AppState, req: S3Request) -> S3Result<Response<Body>> {
    let (dst_bucket, dst_key) = (req.bucket()?.clone(), req.key()?.clone());
    let (src_bucket, src_key, src_version) = copy_source(&req)?;
    let replace = match req.header("x-amz-metadata-directive").unwrap_or("COPY") {
        "COPY" => false,
        "REPLACE" => true,
        other => {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                format!("Unknown metadata directive {other}"),
            ))
        }
    };
    if !replace && src_version.is_none() && (&src_bucket, &src_key) == (&dst_bucket, &dst_key) {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    let new_tags = match req.header("x-amz-tagging-directive").unwrap_or("COPY") {
        "COPY" => None,
        "REPLACE" => Some(super::tagging::from_header(&req)?),
        other => {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                format!("Unknown tagging directive {other}"),
            ))
        }
    };
    let new_headers = content_headers(req.headers());
    let new_meta = user_meta(req.headers())?;
    let request_headers = req.headers().clone();
    // The copy is the requester's, with the ACL its headers ask for, never the source's.
    let (owner, acl) = super::acl::for_new_object(state, &req).await?;
    let (access, principal) = (req.access.clone(), req.principal.clone());
    let (source, record) = state
        .store
        .run(move |s| {
            s.copy_object((&src_bucket, &src_key, src_version), (&dst_bucket, &dst_key), move |source| {
                access.check_source(&principal, source)?;
                check_copy_source(&request_headers, source)?;
                let mut record = ObjectRecord { owner: owner.clone(), acl: acl.clone(), ..source.clone() };
                record.last_modified_ms = now_ms();
                if replace {
                    record.headers = new_headers.clone();
                    record.user_meta = new_meta.clone();
                }
                if let Some(tags) = &new_tags {
                    record.tags = tags.clone();
                }
                Ok::<_, S3Error>(record)
            })
        })
        .await
        .map_err(|e| copy_source_error(req.access.hide_missing_source(e)))?;
    let mut w = XmlWriter::new("CopyObjectResult");
    w.elem("LastModified", &xml::iso8601(record.last_modified_ms)).elem("ETag", &quoted(&record.etag));
    if let Some(sum) = &record.checksum {
        w.elem(sum.algorithm.xml_name(), &sum.value);
    }
    let mut response = xml_response(w.finish("CopyObjectResult"))?;
    versioning::add_header(&mut response, versioning::of_write(&record));
    add_source_version(&mut response, &source, src_version);
    Ok(response)
}

/// `x-amz-copy-source`: bucket, key and the version asked for, if any.
fn copy_source(req: &S3Request) -> S3Result<(BucketName, ObjectKey, Option<VersionId>)> {
    let (bucket, key, version) = parse_copy_source(req.header("x-amz-copy-source").unwrap_or_default())?;
    Ok((bucket, key, version.as_deref().map(versioning::parse).transpose()?))
}

/// A copy source that is a delete marker: named by its version id, S3
/// refuses the request (400); as the latest version, the key is missing.
fn copy_source_error(e: S3Error) -> S3Error {
    match e.code {
        S3ErrorCode::MethodNotAllowed => S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "The source of a copy request may not specifically refer to a delete marker by version id.",
        ),
        _ => e,
    }
}

/// `x-amz-copy-source-version-id`: the version copied, when the source
/// bucket has versioning (or one was named).
fn add_source_version(response: &mut Response<Body>, source: &ObjectRecord, asked: Option<VersionId>) {
    let id = match (asked, source.version.seq) {
        (Some(id), _) => Some(id),
        (None, 0) => None,
        (None, _) => Some(VersionId::of(&source.version)),
    };
    versioning::add_named_header(response, "x-amz-copy-source-version-id", id);
}

fn check_copy_source(headers: &http::HeaderMap, source: &ObjectRecord) -> S3Result<()> {
    if source.size > MAX_COPY_BYTES {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "The specified copy source is larger than the maximum allowable size for a copy source: 5368709120",
        ));
    }
    let names = [
        "x-amz-copy-source-if-match",
        "x-amz-copy-source-if-unmodified-since",
        "x-amz-copy-source-if-none-match",
        "x-amz-copy-source-if-modified-since",
    ];
    match conditional::evaluate_with(headers, names, &source.etag, system_time(source.last_modified_ms)) {
        Outcome::Proceed => Ok(()),
        // CopyObject answers 412 where GET would answer 304.
        Outcome::NotModified | Outcome::PreconditionFailed => Err(S3Error::new(S3ErrorCode::PreconditionFailed)),
    }
}

/// `x-amz-copy-source-range: bytes=first-last`, both inclusive and inside the source.
fn copy_range(req: &S3Request, size: u64) -> S3Result<std::ops::Range<u64>> {
    let Some(value) = req.header("x-amz-copy-source-range") else { return Ok(0..size) };
    let invalid = || {
        S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy",
        )
    };
    let (first, last) = value.trim().strip_prefix("bytes=").and_then(|r| r.split_once('-')).ok_or_else(invalid)?;
    let (first, last): (u64, u64) =
        (first.trim().parse().map_err(|_| invalid())?, last.trim().parse().map_err(|_| invalid())?);
    if first > last {
        return Err(invalid());
    }
    if last >= size {
        return Err(S3Error::with_message(S3ErrorCode::InvalidRange, "The requested range is not satisfiable")
            .with_extra("ActualObjectSize", size.to_string())
            .with_extra("RangeRequested", value.to_string()));
    }
    Ok(first..last + 1)
}

/// Opens the source range of an UploadPartCopy. A concurrent overwrite or
/// delete may free the source's blobs between reading its record and
/// opening them: the source is then looked up again, as GetObject does.
async fn open_copy_source(state: &AppState, req: &S3Request) -> S3Result<OpenObject> {
    const ATTEMPTS: usize = 3;
    let (src_bucket, src_key, src_version) = copy_source(req)?;
    for _ in 0..ATTEMPTS {
        let (b, k) = (src_bucket.clone(), src_key.clone());
        let read = state.store.run(move |s| s.get_version(&b, &k, src_version)).await;
        let (source, _) = read.map_err(|e| copy_source_error(req.access.hide_missing_source(e.into())))?;
        req.access.check_source(&req.principal, &source)?;
        check_copy_source(req.headers(), &source)?;
        let range = copy_range(req, source.size)?;
        let opened = state.store.run(move |s| Ok::<_, S3Error>(s.open_range(&source.blobs, range))).await?;
        match opened {
            Ok(opened) => return Ok(opened),
            Err(OpenError::Gone) => continue,
            Err(OpenError::Read(e)) => return Err(S3Error::internal(e)),
            Err(OpenError::Store(e)) => return Err(e.into()),
        }
    }
    Err(S3Error::internal("the copy source kept changing while being read"))
}

/// UploadPartCopy: a range of an existing object becomes a part.
pub async fn upload_part_copy(state: &AppState, req: S3Request) -> S3Result<Response<Body>> {
    let number = req.route.params.part_number()?;
    let (bucket, key, id, upload) = super::multipart::load_upload(state, &req).await?;
    state.store.admit_write(false).await?;
    let alg = upload.checksum_algorithm.unwrap_or(ChecksumAlgorithm::Crc64Nvme);
    let opened = open_copy_source(state, &req).await?;
    let mut sink = BlobSink::start(state.store.layout(), DigestSpec { sha256: false, checksum: Some(alg) }, None)?;
    let mut chunks = opened.stream(state.body_timeout);
    while sink.feed(async { chunks.recv().await.transpose().map_err(S3Error::internal) }).await? {}
    let staged = sink.finish().await?;
    let part = state.store.write_part((&bucket, &key, &id), number, staged, now_ms()).await?;
    let mut w = XmlWriter::new("CopyPartResult");
    w.elem("LastModified", &xml::iso8601(part.last_modified_ms)).elem("ETag", &quoted(&hex::encode(part.md5)));
    if let (Some((alg, raw)), Some(_)) = (&part.checksum, upload.checksum_algorithm) {
        w.elem(alg.xml_name(), &BASE64.encode(raw));
    }
    xml_response(w.finish("CopyPartResult"))
}
