//! Bucket versioning as clients see it: PutBucketVersioning,
//! GetBucketVersioning, the `versionId` parameter and the `x-amz-version-id`
//! header. Where versions live and how they move: `store/versions.rs`.
//! Reference: <https://docs.aws.amazon.com/AmazonS3/latest/userguide/Versioning.html>

use http::{Response, StatusCode};

use super::bucket::existing;
use super::error::{S3Error, S3ErrorCode, S3Result};
use super::ingest::receive_small;
use super::xml::{self, XmlWriter};
use super::{empty_response, xml_response, AppState, S3Request};
use crate::http::body::Body;
use crate::store::schema::{BucketRecord, ObjectRecord, Versioning};
use crate::store::VersionId;

const MAX_VERSIONING_BODY: usize = 16 * 1024;

/// PutBucketVersioning: `Enabled` or `Suspended`. MFA delete needs an MFA
/// device Tessera does not have: refused rather than ignored.
pub async fn put(state: &AppState, mut req: S3Request) -> S3Result<Response<Body>> {
    let bucket = req.bucket()?.clone();
    let doc = xml::parse(&receive_small(state, &mut req, MAX_VERSIONING_BODY).await?)?;
    if doc.name != "VersioningConfiguration" {
        return Err(S3Error::new(S3ErrorCode::MalformedXML));
    }
    match doc.child_text("MfaDelete").map(str::trim) {
        None | Some("Disabled") => {}
        Some("Enabled") => {
            return Err(S3Error::with_message(S3ErrorCode::NotImplemented, "MFA delete is not supported"))
        }
        Some(_) => return Err(S3Error::new(S3ErrorCode::MalformedXML)),
    }
    let asked = match doc.child_text("Status").map(str::trim) {
        Some("Enabled") => Some(Versioning::Enabled),
        Some("Suspended") => Some(Versioning::Suspended),
        // No status: nothing to change, as S3 answers it.
        None => None,
        Some(_) => return Err(S3Error::new(S3ErrorCode::MalformedXML)),
    };
    let change = move |b: &mut BucketRecord| b.versioning = asked.unwrap_or(b.versioning);
    state.store.run(move |s| s.update_bucket(&bucket, change)).await?;
    empty_response(StatusCode::OK)
}

/// GetBucketVersioning: no `Status` for a bucket that never had versioning.
pub async fn get(state: &AppState, req: S3Request) -> S3Result<Response<Body>> {
    let record = existing(state, &req).await?;
    let mut w = XmlWriter::new("VersioningConfiguration");
    let status = match record.versioning {
        Versioning::Unversioned => None,
        Versioning::Enabled => Some("Enabled"),
        Versioning::Suspended => Some("Suspended"),
    };
    w.opt("Status", status);
    xml_response(w.finish("VersioningConfiguration"))
}

/// A version id a client sent (`versionId`, a copy source's, a listing's
/// marker). One that cannot be Tessera's is InvalidArgument, as S3 answers.
pub fn parse(text: &str) -> S3Result<VersionId> {
    VersionId::parse(text)
        .ok_or_else(|| S3Error::with_message(S3ErrorCode::InvalidArgument, "Invalid version id specified"))
}

/// The request's `versionId` parameter, if any.
pub fn requested(req: &S3Request) -> S3Result<Option<VersionId>> {
    req.route.query.get("versionId").map(parse).transpose()
}

/// The `x-amz-version-id` of a record read from a bucket in state
/// `versioning`: none while the bucket never had versioning.
pub fn of_read(record: &ObjectRecord, versioning: Versioning) -> Option<VersionId> {
    (versioning != Versioning::Unversioned).then(|| VersionId::of(&record.version))
}

/// The `x-amz-version-id` of a record just written: none for a `null`
/// version (versioning off or suspended), as AWS answers PutObject, CopyObject
/// and CompleteMultipartUpload then, though GET and HEAD of it say `null`.
pub fn of_write(record: &ObjectRecord) -> Option<VersionId> {
    (!record.version.null).then(|| VersionId::of(&record.version))
}

/// Adds `x-amz-version-id` to a finished response when there is one.
pub fn add_header(response: &mut Response<Body>, id: Option<VersionId>) {
    add_named_header(response, "x-amz-version-id", id);
}

/// Adds the version id header `name` (such as `x-amz-copy-source-version-id`) when there is one.
pub fn add_named_header(response: &mut Response<Body>, name: &'static str, id: Option<VersionId>) {
    if let Some(value) = id.and_then(|id| http::HeaderValue::from_str(&id.to_string()).ok()) {
        response.headers_mut().insert(name, value);
    }
}

/// Adds `x-amz-version-id` when there is one.
pub fn header(b: http::response::Builder, id: Option<VersionId>) -> http::response::Builder {
    match id {
        Some(id) => b.header("x-amz-version-id", id.to_string()),
        None => b,
    }
}
