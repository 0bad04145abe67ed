//! Object and bucket tagging: the `x-amz-tagging` header, the `?tagging`
//! operations and S3's limits on tag sets.
//! Reference: <https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-tagging.html>

use http::{Response, StatusCode};
use percent_encoding::percent_decode_str;

use super::bucket::existing;
use super::error::{S3Error, S3ErrorCode, S3Result};
use super::ingest::receive_small;
use super::xml::{self, XmlWriter};
use super::{empty_response, xml_response, AppState, S3Request};
use crate::http::body::Body;
use crate::store::schema::{ObjectRecord, Tags};
use crate::store::VersionId;

/// At most 10 tags on an object, 50 on a bucket.
pub const MAX_OBJECT_TAGS: usize = 10;
const MAX_BUCKET_TAGS: usize = 50;
/// Key and value lengths, in Unicode characters.
const MAX_KEY_CHARS: usize = 128;
const MAX_VALUE_CHARS: usize = 256;
const MAX_TAGGING_BODY: usize = 64 * 1024;
/// S3's message for an `x-amz-tagging` header it cannot read.
const BAD_HEADER: &str = "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters \
                          without tag name duplicates.";

fn invalid(message: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidTag, message)
}

/// Checks a tag set against S3's limits: count, lengths, unique keys.
fn check(tags: &Tags, max: usize) -> S3Result<()> {
    if tags.len() > max {
        return Err(invalid(format!("Object tags cannot be greater than {max}")));
    }
    for (i, (key, value)) in tags.iter().enumerate() {
        if key.is_empty() || key.chars().count() > MAX_KEY_CHARS {
            return Err(invalid("The TagKey you have provided is invalid"));
        }
        if value.chars().count() > MAX_VALUE_CHARS {
            return Err(invalid("The TagValue you have provided is invalid"));
        }
        if tags.iter().take(i).any(|(k, _)| k == key) {
            return Err(invalid("Cannot provide multiple Tags with the same key"));
        }
    }
    Ok(())
}

/// `x-amz-tagging: k1=v1&k2=v2` (URL-encoded, `+` a literal `+` as in
/// every query Tessera reads), checked; empty without the header.
pub fn from_header(req: &S3Request) -> S3Result<Tags> {
    let Some(raw) = req.header("x-amz-tagging") else { return Ok(Tags::new()) };
    let decode = |s: &str| percent_decode_str(s).decode_utf8().map(|c| c.into_owned()).map_err(|_| invalid(BAD_HEADER));
    let mut tags = Tags::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        tags.push((decode(key)?, decode(value)?));
    }
    check(&tags, MAX_OBJECT_TAGS)?;
    Ok(tags)
}

/// A `<Tagging><TagSet><Tag><Key/><Value/></Tag>...</TagSet></Tagging>` body.
async fn receive_tags(state: &AppState, req: &mut S3Request, max: usize) -> S3Result<Tags> {
    let doc = xml::parse(&receive_small(state, req, MAX_TAGGING_BODY).await?)?;
    let tag_set = match doc.name.as_str() {
        "Tagging" => doc.child("TagSet").ok_or_else(|| S3Error::new(S3ErrorCode::MalformedXML))?,
        _ => return Err(S3Error::new(S3ErrorCode::MalformedXML)),
    };
    let mut tags = Tags::new();
    for tag in tag_set.children_named("Tag") {
        let key = tag.child_text("Key").ok_or_else(|| S3Error::new(S3ErrorCode::MalformedXML))?;
        tags.push((key.to_string(), tag.child_text("Value").unwrap_or_default().to_string()));
    }
    check(&tags, max)?;
    Ok(tags)
}

fn tagging_xml(tags: &Tags) -> String {
    let mut w = XmlWriter::new("Tagging");
    w.start("TagSet");
    for (key, value) in tags {
        w.start("Tag").elem("Key", key).elem("Value", value).end("Tag");
    }
    w.end("TagSet");
    w.finish("Tagging")
}

/// PutObjectTagging: replaces the tag set of the object (or of the
/// version `versionId` names) in place; no new version is made.
pub async fn put_object(state: &AppState, mut req: S3Request) -> S3Result<Response<Body>> {
    // Refuse before reading the body; checked again where the tags change.
    super::object::load(state, &req).await?;
    let tags = receive_tags(state, &mut req, MAX_OBJECT_TAGS).await?;
    set_object_tags(state, req, tags, StatusCode::OK).await
}

/// DeleteObjectTagging: empties the tag set.
pub async fn delete_object(state: &AppState, req: S3Request) -> S3Result<Response<Body>> {
    set_object_tags(state, req, Tags::new(), StatusCode::NO_CONTENT).await
}

async fn set_object_tags(state: &AppState, req: S3Request, tags: Tags, status: StatusCode) -> S3Result<Response<Body>> {
    let (bucket, key) = (req.bucket()?.clone(), req.key()?.clone());
    let version = super::versioning::requested(&req)?;
    let (access, principal) = (req.access.clone(), req.principal.clone());
    let change = move |record: &mut ObjectRecord| {
        access.check_object(&principal, record)?;
        record.tags = tags.clone();
        Ok::<_, S3Error>(())
    };
    let record = state
        .store
        .run(move |s| s.update_object(&bucket, &key, version, change))
        .await
        .map_err(|e| req.access.hide_missing(super::object::with_key(e, &req)))?;
    let b = Response::builder().status(status);
    super::versioning::header(b, tagged_version(&record, version))
        .body(crate::http::body::empty())
        .map_err(S3Error::internal)
}

/// The version id a tagging response names: the one asked for, or the
/// version changed when it is not the `null` one of an unversioned bucket.
fn tagged_version(record: &ObjectRecord, asked: Option<VersionId>) -> Option<VersionId> {
    asked.or_else(|| super::versioning::of_write(record))
}

/// GetObjectTagging: the tag set, empty when there is none.
pub async fn get_object(state: &AppState, req: S3Request) -> S3Result<Response<Body>> {
    let (record, version) = super::object::load(state, &req).await?;
    let mut response = xml_response(tagging_xml(&record.tags))?;
    super::versioning::add_header(&mut response, version);
    Ok(response)
}

pub async fn put_bucket(state: &AppState, mut req: S3Request) -> S3Result<Response<Body>> {
    let bucket = req.bucket()?.clone();
    let tags = receive_tags(state, &mut req, MAX_BUCKET_TAGS).await?;
    state.store.run(move |s| s.update_bucket(&bucket, move |b| b.tags = tags.clone())).await?;
    empty_response(StatusCode::NO_CONTENT)
}

/// GetBucketTagging: NoSuchTagSet for a bucket without tags, as S3 answers.
pub async fn get_bucket(state: &AppState, req: S3Request) -> S3Result<Response<Body>> {
    let record = existing(state, &req).await?;
    match record.tags.is_empty() {
        true => Err(S3Error::new(S3ErrorCode::NoSuchTagSet).with_extra("BucketName", req.bucket()?)),
        false => xml_response(tagging_xml(&record.tags)),
    }
}

pub async fn delete_bucket(state: &AppState, req: S3Request) -> S3Result<Response<Body>> {
    let bucket = req.bucket()?.clone();
    state.store.run(move |s| s.update_bucket(&bucket, |b| b.tags = Tags::new())).await?;
    empty_response(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn limits_are_s3s() {
        let ten: Tags = (0..10).map(|i| (format!("k{i}"), "v".into())).collect();
        assert!(check(&ten, MAX_OBJECT_TAGS).is_ok());
        let eleven: Tags = (0..11).map(|i| (format!("k{i}"), "v".into())).collect();
        let code = |t: &Tags| check(t, MAX_OBJECT_TAGS).err().map(|e| e.code);
        assert_eq!(code(&eleven), Some(S3ErrorCode::InvalidTag));
        assert!(
            check(&tags(&[(&"é".repeat(128), &"ü".repeat(256))]), MAX_OBJECT_TAGS).is_ok(),
            "characters, not bytes"
        );
        assert_eq!(code(&tags(&[(&"k".repeat(129), "v")])), Some(S3ErrorCode::InvalidTag));
        assert_eq!(code(&tags(&[("k", &"v".repeat(257))])), Some(S3ErrorCode::InvalidTag));
        assert_eq!(code(&tags(&[("k", "1"), ("k", "2")])), Some(S3ErrorCode::InvalidTag));
        assert_eq!(code(&tags(&[("", "v")])), Some(S3ErrorCode::InvalidTag));
    }
}
