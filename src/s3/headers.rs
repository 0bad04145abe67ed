//! Object headers in and out: the content headers and `x-amz-meta-*` S3 stores
//! with an object, and the headers every GET/HEAD answers with.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::response::Builder;
use http::HeaderMap;

use super::error::{S3Error, S3ErrorCode, S3Result};
use crate::http::route::Query;
use crate::store::schema::{ContentHeaders, ObjectRecord};

/// S3's limit on the user-defined metadata of one object.
const MAX_USER_META_BYTES: usize = 2048;
const META_PREFIX: &str = "x-amz-meta-";

pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The content headers of a write. `aws-chunked` is transfer framing, not a
/// property of the object, so it is stripped from Content-Encoding
/// (client-pitfalls.md item 4); other encodings are kept.
pub fn content_headers(headers: &HeaderMap) -> ContentHeaders {
    let get = |name| header(headers, name).map(str::to_string);
    ContentHeaders {
        content_type: get("content-type"),
        content_encoding: content_encoding(headers),
        content_disposition: get("content-disposition"),
        content_language: get("content-language"),
        cache_control: get("cache-control"),
        expires: get("expires"),
    }
}

/// Every Content-Encoding line of the request (joined with `, `, as HTTP
/// combines repeated headers), kept exactly as sent unless it names
/// `aws-chunked`, which is removed. A line that is not text is dropped.
fn content_encoding(headers: &HeaderMap) -> Option<String> {
    let lines: Vec<&str> = headers.get_all("content-encoding").iter().filter_map(|v| v.to_str().ok()).collect();
    let value = lines.join(", ");
    let is_chunked = |t: &str| t.trim().eq_ignore_ascii_case("aws-chunked");
    if !value.split(',').any(is_chunked) {
        return (!value.trim().is_empty()).then_some(value);
    }
    let kept: Vec<&str> = value.split(',').map(str::trim).filter(|t| !t.is_empty() && !is_chunked(t)).collect();
    (!kept.is_empty()).then(|| kept.join(", "))
}

/// `x-amz-meta-*` headers, names lowercased without the prefix.
pub fn user_meta(headers: &HeaderMap) -> S3Result<Vec<(String, String)>> {
    let mut meta = Vec::new();
    let mut size = 0;
    for (name, value) in headers {
        if let Some(short) = name.as_str().strip_prefix(META_PREFIX) {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            size += short.len() + value.len();
            meta.push((short.to_string(), value));
        }
    }
    if size > MAX_USER_META_BYTES {
        return Err(S3Error::new(S3ErrorCode::MetadataTooLarge));
    }
    Ok(meta)
}

pub fn system_time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

pub use crate::store::now_ms;

/// The last instant an HTTP date can spell (httpdate panics past it).
const LAST_HTTP_DATE_MS: i64 = 253_402_300_799_000;

/// An HTTP date; a time past year 9999 (a clock gone wrong) is written as
/// the last one that can be spelled rather than panicking.
pub fn http_date(ms: i64) -> String {
    httpdate::fmt_http_date(system_time(ms.min(LAST_HTTP_DATE_MS)))
}

pub fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

/// Headers of a GET/HEAD answer about `record`. `response-*` query parameters
/// override the stored content headers, as S3 allows for signed requests.
pub fn object_headers(mut b: Builder, record: &ObjectRecord, query: &Query) -> Builder {
    let h = &record.headers;
    let pick = |param: &str, stored: &Option<String>| query.get(param).map(str::to_string).or_else(|| stored.clone());
    let content_type = pick("response-content-type", &h.content_type).unwrap_or_else(|| "binary/octet-stream".into());
    b = b
        .header("etag", quoted(&record.etag))
        .header("last-modified", http_date(record.last_modified_ms))
        .header("accept-ranges", "bytes")
        .header("content-type", content_type);
    let optional = [
        ("content-encoding", pick("response-content-encoding", &h.content_encoding)),
        ("content-disposition", pick("response-content-disposition", &h.content_disposition)),
        ("content-language", pick("response-content-language", &h.content_language)),
        ("cache-control", pick("response-cache-control", &h.cache_control)),
        ("expires", pick("response-expires", &h.expires)),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            b = b.header(name, value);
        }
    }
    for (name, value) in &record.user_meta {
        b = b.header(format!("{META_PREFIX}{name}"), value);
    }
    if !record.tags.is_empty() {
        b = b.header("x-amz-tagging-count", record.tags.len());
    }
    b
}

/// `x-amz-checksum-type` / `ChecksumType` for a checksum of either kind.
pub fn checksum_type_name(full_object: bool) -> &'static str {
    if full_object {
        "FULL_OBJECT"
    } else {
        "COMPOSITE"
    }
}

/// Adds the stored checksum when the client asked for it with
/// `x-amz-checksum-mode: ENABLED`. Never on a partial response: the client
/// would check a range against the whole object's value (client-pitfalls.md item 6).
pub fn checksum_headers(mut b: Builder, record: &ObjectRecord, headers: &HeaderMap, whole_object: bool) -> Builder {
    let enabled = header(headers, "x-amz-checksum-mode").is_some_and(|v| v.eq_ignore_ascii_case("enabled"));
    if let (true, true, Some(sum)) = (enabled, whole_object, &record.checksum) {
        b = b
            .header(sum.algorithm.header_name(), &sum.value)
            .header("x-amz-checksum-type", checksum_type_name(!sum.composite));
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoding_of(lines: &[&str]) -> Option<String> {
        let mut h = HeaderMap::new();
        for line in lines {
            if let Ok(v) = line.parse() {
                h.append("content-encoding", v);
            }
        }
        content_encoding(&h)
    }

    #[test]
    fn aws_chunked_is_stripped_from_content_encoding() {
        assert_eq!(encoding_of(&["aws-chunked"]), None);
        assert_eq!(encoding_of(&["aws-chunked,gzip"]), Some("gzip".into()));
        assert_eq!(encoding_of(&["gzip, aws-chunked"]), Some("gzip".into()));
        assert_eq!(encoding_of(&["gzip, br, aws-chunked"]), Some("gzip, br".into()));
        assert_eq!(encoding_of(&["aws-chunked", "gzip"]), Some("gzip".into()));
    }

    #[test]
    fn other_content_encodings_are_kept_as_sent() {
        assert_eq!(encoding_of(&["gzip, br"]), Some("gzip, br".into()));
        assert_eq!(encoding_of(&["gzip", "identity"]), Some("gzip, identity".into()));
        assert_eq!(encoding_of(&[]), None);
    }

    #[test]
    fn user_meta_limit() {
        let mut h = HeaderMap::new();
        if let Ok(v) = "x".repeat(3000).parse() {
            h.insert("x-amz-meta-big", v);
        }
        assert_eq!(user_meta(&h).err().map(|e| e.code), Some(S3ErrorCode::MetadataTooLarge));
    }
}
