//! GetObjectAttributes (`GET /key?attributes`): the attributes named in
//! `x-amz-object-attributes` (ETag, Checksum, ObjectParts, StorageClass,
//! ObjectSize) without the body. Parts page with `x-amz-max-parts` and
//! `x-amz-part-number-marker`.
//! Reference: <https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObjectAttributes.html>
//! Parts carry their checksums when the upload chose an algorithm (S3 lists
//! parts only for such objects; Tessera lists them always). `versionId`
//! names a version.

use http::{Response, StatusCode};

use super::error::{S3Error, S3ErrorCode, S3Result};
use super::headers::{checksum_type_name, header, http_date};
use super::object::load;
use super::object_checksum::split_part_count;
use super::xml::XmlWriter;
use super::{AppState, S3Request};
use crate::http::body::{self, Body};
use crate::store::schema::ObjectRecord;

/// Most parts one answer lists (S3's default and maximum).
const MAX_PARTS: usize = 1000;

/// Which attributes the request asks for.
#[derive(Debug, Default, PartialEq)]
struct Wanted {
    etag: bool,
    checksum: bool,
    parts: bool,
    storage_class: bool,
    size: bool,
}

impl Wanted {
    fn from_headers(req: &S3Request) -> S3Result<Wanted> {
        let invalid = |what: &str| S3Error::with_message(S3ErrorCode::InvalidArgument, what.to_string());
        let list = header(req.headers(), "x-amz-object-attributes")
            .ok_or_else(|| invalid("The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty"))?;
        let mut wanted = Wanted::default();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "ETag" => wanted.etag = true,
                "Checksum" => wanted.checksum = true,
                "ObjectParts" => wanted.parts = true,
                "StorageClass" => wanted.storage_class = true,
                "ObjectSize" => wanted.size = true,
                _ => return Err(invalid("Invalid attribute name specified.")),
            }
        }
        if wanted == Wanted::default() {
            return Err(invalid("The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty"));
        }
        Ok(wanted)
    }
}

pub async fn get(state: &AppState, req: S3Request) -> S3Result<Response<Body>> {
    let wanted = Wanted::from_headers(&req)?;
    let number = |name: &str, default: usize| -> S3Result<usize> {
        match header(req.headers(), name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| S3Error::with_message(S3ErrorCode::InvalidArgument, format!("Invalid {name}"))),
        }
    };
    let max_parts = number("x-amz-max-parts", MAX_PARTS)?.min(MAX_PARTS);
    let marker = number("x-amz-part-number-marker", 0)?;
    let (record, version) = load(state, &req).await?;
    let mut w = XmlWriter::new("GetObjectAttributesResponse");
    if wanted.etag {
        w.elem("ETag", &record.etag);
    }
    if let (true, Some(sum)) = (wanted.checksum, &record.checksum) {
        w.start("Checksum")
            .elem(sum.algorithm.xml_name(), split_part_count(&sum.value).0)
            .elem("ChecksumType", checksum_type_name(!sum.composite))
            .end("Checksum");
    }
    if wanted.parts {
        write_parts(&mut w, &record, marker, max_parts);
    }
    if wanted.storage_class {
        w.elem("StorageClass", "STANDARD");
    }
    if wanted.size {
        w.elem_u64("ObjectSize", record.size);
    }
    super::versioning::header(Response::builder(), version)
        .status(StatusCode::OK)
        .header("content-type", "application/xml")
        .header("last-modified", http_date(record.last_modified_ms))
        .body(body::full(w.finish("GetObjectAttributesResponse")))
        .map_err(S3Error::internal)
}

/// `ObjectParts` of a multipart object (nothing for a single PUT, as S3):
/// the parts after `marker`, at most `max`.
fn write_parts(w: &mut XmlWriter, record: &ObjectRecord, marker: usize, max: usize) {
    // Part checksums are in part order, one per part (or none at all).
    let sums = record.part_checksums.iter().map(Some).chain(std::iter::repeat(None));
    let parts: Vec<(u16, u64, Option<&String>)> =
        record.blobs.iter().filter(|s| s.part > 0).zip(sums).map(|(s, sum)| (s.part, s.size, sum)).collect();
    if parts.is_empty() {
        return;
    }
    let after: Vec<&(u16, u64, Option<&String>)> = parts.iter().filter(|(n, _, _)| usize::from(*n) > marker).collect();
    let page = after.get(..max).unwrap_or(after.as_slice());
    let truncated = after.len() > page.len();
    // The API calls it TotalPartsCount; on the wire it is PartsCount.
    w.start("ObjectParts").elem_u64("PartsCount", parts.len() as u64);
    w.elem_u64("PartNumberMarker", marker as u64);
    if let (true, Some((last, _, _))) = (truncated, page.last()) {
        w.elem_u64("NextPartNumberMarker", u64::from(*last));
    }
    w.elem_u64("MaxParts", max as u64).elem("IsTruncated", &truncated.to_string());
    let checksum_name = record.checksum.as_ref().map(|sum| sum.algorithm.xml_name());
    for (number, size, sum) in page {
        w.start("Part").elem_u64("PartNumber", u64::from(*number)).elem_u64("Size", *size);
        if let (Some(name), Some(value)) = (checksum_name, sum) {
            w.elem(name, value);
        }
        w.end("Part");
    }
    w.end("ObjectParts");
}
