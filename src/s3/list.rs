//! ListObjects (v1), ListObjectsV2 and ListObjectVersions.
//! References: <https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html>,
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectVersions.html>

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::Response;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::acl::Directory;
use super::error::{S3Error, S3ErrorCode, S3Result};
use super::versioning;
use super::xml::XmlWriter;
use super::{write_owner, xml_response, AppState, S3Request};
use crate::http::body::Body;
use crate::http::route::Query;
use crate::store::schema::ObjectRecord;
use crate::store::{ListEntry, ListPage, ListQuery, VersionEntry, VersionId, VersionQuery};

const MAX_KEYS: usize = 1000;

/// What `encoding-type=url` leaves alone; a space is then turned into `+`.
const URL_ENCODE: &AsciiSet =
    &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/').remove(b' ');

/// Encodes listing text when the client asked for `encoding-type=url`:
/// space -> `+`, `+` -> `%2B`, as S3 does (client-pitfalls.md item 10).
pub(crate) struct Encoder(bool);

impl Encoder {
    pub(crate) fn from_query(q: &Query) -> S3Result<Encoder> {
        match q.get("encoding-type") {
            None => Ok(Encoder(false)),
            Some(t) if t.eq_ignore_ascii_case("url") => Ok(Encoder(true)),
            Some(_) => {
                Err(S3Error::with_message(S3ErrorCode::InvalidArgument, "Invalid Encoding Method specified in Request"))
            }
        }
    }

    pub(crate) fn apply(&self, text: &str) -> String {
        if self.0 {
            utf8_percent_encode(text, URL_ENCODE).to_string().replace(' ', "+")
        } else {
            text.to_string()
        }
    }

    pub(crate) fn write_type(&self, w: &mut XmlWriter) {
        if self.0 {
            w.elem("EncodingType", "url");
        }
    }
}

/// The page size asked for (routing parsed it), capped at S3's 1000.
fn max_keys(req: &S3Request) -> usize {
    req.route.params.max.map_or(MAX_KEYS, |n| n.min(MAX_KEYS))
}

async fn scan(state: &AppState, req: &S3Request, query: ListQuery) -> S3Result<ListPage> {
    let bucket = req.bucket()?.clone();
    let name = bucket.clone();
    state
        .store
        .run(move |s| s.list_objects(&name, &query))
        .await
        .map_err(|e| S3Error::from(e).with_extra("BucketName", bucket))
}

fn write_common(w: &mut XmlWriter, req: &S3Request, enc: &Encoder, prefix: &str, max: usize) -> S3Result<()> {
    w.elem("Name", req.bucket()?).elem("Prefix", &enc.apply(prefix)).elem("MaxKeys", &max.to_string());
    if let Some(d) = req.route.query.get("delimiter").filter(|d| !d.is_empty()) {
        w.elem("Delimiter", &enc.apply(d));
    }
    enc.write_type(w);
    Ok(())
}

/// What listings need to show objects' owners.
struct Owners {
    /// The owner of objects that record none: the bucket's.
    bucket_owner: String,
    directory: Directory,
}

impl Owners {
    async fn load(state: &AppState, req: &S3Request) -> S3Result<Owners> {
        let bucket_owner = req.access.bucket_owner.clone().unwrap_or_else(|| req.principal.id().to_string());
        Ok(Owners { bucket_owner, directory: Directory::load(state).await? })
    }

    fn write(&self, w: &mut XmlWriter, record: &ObjectRecord) {
        write_owner(w, record.owner.as_deref().unwrap_or(&self.bucket_owner), &self.directory);
    }
}

fn write_object(w: &mut XmlWriter, enc: &Encoder, key: &str, record: &ObjectRecord, owners: Option<&Owners>) {
    w.start("Contents")
        .elem("Key", &enc.apply(key))
        .elem_time("LastModified", record.last_modified_ms)
        .elem_etag("ETag", &record.etag)
        .elem_u64("Size", record.size);
    if let Some(sum) = &record.checksum {
        w.elem("ChecksumAlgorithm", sum.algorithm.name())
            .elem("ChecksumType", super::headers::checksum_type_name(!sum.composite));
    }
    w.elem("StorageClass", "STANDARD");
    if let Some(owners) = owners {
        owners.write(w, record);
    }
    w.end("Contents");
}

fn write_prefixes(w: &mut XmlWriter, enc: &Encoder, page: &ListPage) {
    for entry in &page.entries {
        if let ListEntry::CommonPrefix(p) = entry {
            w.start("CommonPrefixes").elem("Prefix", &enc.apply(p)).end("CommonPrefixes");
        }
    }
}

fn list_query(q: &Query, after: Option<String>, max_keys: usize) -> ListQuery {
    ListQuery {
        prefix: q.get("prefix").unwrap_or_default().to_string(),
        delimiter: q.get("delimiter").filter(|d| !d.is_empty()).map(str::to_string),
        after,
        max_keys,
    }
}

/// Where the next page starts, when this one is truncated.
fn next_marker(page: &ListPage) -> Option<&str> {
    page.truncated.then(|| page.entries.last().map(ListEntry::name)).flatten()
}

pub async fn list_v2(state: &AppState, req: S3Request) -> S3Result<Response<Body>> {
    let q = &req.route.query;
    let enc = Encoder::from_query(q)?;
    let max = max_keys(&req);
    let token = q.get("continuation-token");
    let after = match token {
        Some(t) => Some(decode_token(t)?),
        None => q.get("start-after").map(str::to_string),
    };
    let query = list_query(q, after, max);
    let prefix = query.prefix.clone();
    let page = scan(state, &req, query).await?;
    let owners = match q.get("fetch-owner") == Some("true") {
        true => Some(Owners::load(state, &req).await?),
        false => None,
    };
    let mut w = XmlWriter::new("ListBucketResult");
    write_common(&mut w, &req, &enc, &prefix, max)?;
    w.elem("KeyCount", &page.entries.len().to_string()).elem("IsTruncated", &page.truncated.to_string());
    w.opt("ContinuationToken", token);
    if let Some(next) = next_marker(&page) {
        w.elem("NextContinuationToken", &URL_SAFE_NO_PAD.encode(next));
    }
    if let Some(start_after) = q.get("start-after") {
        w.elem("StartAfter", &enc.apply(start_after));
    }
    for entry in &page.entries {
        if let ListEntry::Object(key, record) = entry {
            write_object(&mut w, &enc, key, record, owners.as_ref());
        }
    }
    write_prefixes(&mut w, &enc, &page);
    xml_response(w.finish("ListBucketResult"))
}

fn decode_token(token: &str) -> S3Result<String> {
    URL_SAFE_NO_PAD.decode(token).ok().and_then(|raw| String::from_utf8(raw).ok()).ok_or_else(|| {
        S3Error::with_message(S3ErrorCode::InvalidArgument, "The continuation token provided is incorrect")
    })
}

pub async fn list_v1(state: &AppState, req: S3Request) -> S3Result<Response<Body>> {
    let q = &req.route.query;
    let enc = Encoder::from_query(q)?;
    let max = max_keys(&req);
    let marker = q.get("marker").unwrap_or_default().to_string();
    let query = list_query(q, (!marker.is_empty()).then(|| marker.clone()), max);
    let prefix = query.prefix.clone();
    let page = scan(state, &req, query).await?;
    let owners = Owners::load(state, &req).await?;
    let mut w = XmlWriter::new("ListBucketResult");
    write_common(&mut w, &req, &enc, &prefix, max)?;
    w.elem("Marker", &enc.apply(&marker)).elem("IsTruncated", &page.truncated.to_string());
    if let Some(next) = next_marker(&page) {
        w.elem("NextMarker", &enc.apply(next));
    }
    for entry in &page.entries {
        if let ListEntry::Object(key, record) = entry {
            write_object(&mut w, &enc, key, record, Some(&owners));
        }
    }
    write_prefixes(&mut w, &enc, &page);
    xml_response(w.finish("ListBucketResult"))
}

/// ListObjectVersions: versions and delete markers, keys ascending and each
/// key's versions newest first (a bucket that never had versioning lists
/// each object once, as version `null`).
pub async fn list_versions(state: &AppState, req: S3Request) -> S3Result<Response<Body>> {
    let q = &req.route.query;
    let enc = Encoder::from_query(q)?;
    let max = max_keys(&req);
    let key_marker = q.get("key-marker").unwrap_or_default().to_string();
    let version_marker = q.get("version-id-marker").filter(|v| !v.is_empty());
    if version_marker.is_some() && key_marker.is_empty() {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "A version-id marker cannot be specified without a key marker.",
        ));
    }
    let query = VersionQuery {
        prefix: q.get("prefix").unwrap_or_default().to_string(),
        delimiter: q.get("delimiter").filter(|d| !d.is_empty()).map(str::to_string),
        key_marker: (!key_marker.is_empty()).then(|| key_marker.clone()),
        version_marker: version_marker.map(versioning::parse).transpose()?,
        max_keys: max,
    };
    let prefix = query.prefix.clone();
    let bucket = req.bucket()?.clone();
    let name = bucket.clone();
    let page = state
        .store
        .run(move |s| s.list_versions(&name, &query))
        .await
        .map_err(|e| S3Error::from(e).with_extra("BucketName", bucket))?;
    let owners = Owners::load(state, &req).await?;
    let mut w = XmlWriter::new("ListVersionsResult");
    write_common(&mut w, &req, &enc, &prefix, max)?;
    w.elem("KeyMarker", &enc.apply(&key_marker))
        .elem("VersionIdMarker", version_marker.unwrap_or_default())
        .elem("IsTruncated", &page.truncated.to_string());
    if let (true, Some(last)) = (page.truncated, page.entries.last()) {
        let (key, version) = match last {
            VersionEntry::Version { key, record, .. } => (key.as_str(), Some(VersionId::of(&record.version))),
            VersionEntry::CommonPrefix(p) => (p.as_str(), None),
        };
        w.elem("NextKeyMarker", &enc.apply(key));
        w.opt("NextVersionIdMarker", version.map(|v| v.to_string()).as_deref());
    }
    for entry in &page.entries {
        if let VersionEntry::Version { key, record, latest } = entry {
            write_version(&mut w, &enc, (key, record, *latest), &owners);
        }
    }
    for entry in &page.entries {
        if let VersionEntry::CommonPrefix(p) = entry {
            w.start("CommonPrefixes").elem("Prefix", &enc.apply(p)).end("CommonPrefixes");
        }
    }
    xml_response(w.finish("ListVersionsResult"))
}

/// A `<Version>` or `<DeleteMarker>` entry.
fn write_version(
    w: &mut XmlWriter,
    enc: &Encoder,
    (key, record, latest): (&str, &ObjectRecord, bool),
    owners: &Owners,
) {
    let element = if record.version.delete_marker { "DeleteMarker" } else { "Version" };
    w.start(element)
        .elem("Key", &enc.apply(key))
        .elem("VersionId", &VersionId::of(&record.version).to_string())
        .elem("IsLatest", &latest.to_string())
        .elem_time("LastModified", record.last_modified_ms);
    if !record.version.delete_marker {
        w.elem_etag("ETag", &record.etag).elem_u64("Size", record.size);
        if let Some(sum) = &record.checksum {
            w.elem("ChecksumAlgorithm", sum.algorithm.name())
                .elem("ChecksumType", super::headers::checksum_type_name(!sum.composite));
        }
        w.elem("StorageClass", "STANDARD");
    }
    owners.write(w, record);
    w.end(element);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_matches_s3() {
        let enc = Encoder(true);
        assert_eq!(enc.apply("a b+c/d%e&é"), "a+b%2Bc/d%25e%26%C3%A9");
        assert_eq!(Encoder(false).apply("a b"), "a b");
    }
}
