//! The S3 operations. Each handler takes a routed, authenticated request and
//! returns a response or an [`S3Error`]; `server.rs` renders the errors.

pub mod access;
pub mod acl;
pub mod admin;
pub mod bucket;
mod console_cors;
pub mod copy;
pub mod cors;
mod cors_rules;
pub mod error;
pub mod headers;
pub mod ingest;
pub mod instant;
pub mod lifecycle;
pub mod list;
pub mod multipart;
pub mod object;
mod object_attributes;
mod object_checksum;
pub mod policy;
mod post_object;
mod post_policy;
pub mod probes;
pub mod tagging;
pub mod versioning;
pub mod xml;

use std::sync::Arc;

use http::{HeaderMap, Response, StatusCode};

use crate::auth::verify::VerifiedRequest;
use crate::http::body::{self, Body};
use crate::http::route::{Op, Route};
use crate::http::target::{BucketName, ObjectKey};
use crate::store::Store;
use error::{S3Error, S3ErrorCode, S3Result};

/// What every handler may use: the store and the server's settings.
pub struct AppState {
    pub store: Arc<Store>,
    pub region: String,
    /// Enables virtual-hosted-style addressing for `bucket.<domain>`.
    pub domain: Option<String>,
    pub access_key: String,
    pub secret_key: String,
    /// A request body that sends nothing for this long is abandoned with
    /// `RequestTimeout` (`serve --body-timeout`).
    pub body_timeout: std::time::Duration,
    /// Request counts, latencies, bytes, and the store's figures (`metrics.rs`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// With it, `GET /_tessera/metrics` needs `Authorization: Bearer <token>`.
    pub metrics_token: Option<String>,
    /// `https` with `--tls-cert`, else `http`: the scheme of the URLs the
    /// server writes into answers (POST Object's `Location`).
    pub scheme: &'static str,
    /// The web console's origins (`console.rs`): the S3 listener answers
    /// their CORS requests itself (`console_cors.rs`). Empty without a console.
    pub console_origins: Vec<String>,
}

/// The id the root user owns buckets as (users have 64-hex-digit ids).
pub const ROOT_ID: &str = "root";
/// The canonical id S3 gives the anonymous requester (what it writes into
/// a public-read-write bucket is owned by this id).
pub const ANONYMOUS_ID: &str = "65a011a29cdf8ec533ec3d1ccaae921c";

/// Who signed a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Principal {
    /// The server's own key pair: may do everything.
    Root,
    /// A user of `tessera user add`.
    User { name: String, canonical_id: String },
    /// An unsigned request: served only where an ACL or policy allows it.
    Anonymous,
}

impl Principal {
    /// Who, in a log line: `root`, the user's name, or `anonymous`.
    pub fn log_name(&self) -> &str {
        match self {
            Principal::Root => "root",
            Principal::User { name, .. } => name,
            Principal::Anonymous => "anonymous",
        }
    }

    /// The id that owns what this principal creates.
    pub fn id(&self) -> &str {
        match self {
            Principal::Root => ROOT_ID,
            Principal::User { canonical_id, .. } => canonical_id,
            Principal::Anonymous => ANONYMOUS_ID,
        }
    }
}

/// A request's body: the connection's, or (POST Object) the file field of
/// the form it carries.
pub type RequestBody = http_body_util::combinators::BoxBody<bytes::Bytes, BodyError>;
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// A request that has been routed and whose signature has been verified.
pub struct S3Request {
    pub parts: http::request::Parts,
    pub body: RequestBody,
    pub route: Route,
    pub auth: VerifiedRequest,
    pub principal: Principal,
    /// What `access::authorize` found (set by `dispatch`).
    pub access: access::Access,
}

impl S3Request {
    /// The routed bucket. Routing picks a bucket or object operation only
    /// when the request names one, so the error is a routing bug's guard.
    pub fn bucket(&self) -> S3Result<&BucketName> {
        self.route.bucket.as_ref().ok_or_else(|| S3Error::new(S3ErrorCode::InvalidRequest))
    }

    /// The routed key (object operations only).
    pub fn key(&self) -> S3Result<&ObjectKey> {
        self.route.key.as_ref().ok_or_else(|| S3Error::new(S3ErrorCode::InvalidRequest))
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.parts.headers
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        headers::header(&self.parts.headers, name)
    }
}

pub async fn dispatch(state: &AppState, mut req: S3Request) -> S3Result<Response<Body>> {
    if req.route.op == Op::PostObject {
        // Signed by the form it carries, and for a key the form names.
        return post_object::post(state, req).await;
    }
    req.access = access::authorize(state, &req).await?;
    match req.route.op {
        Op::ListBuckets => bucket::list_buckets(state, req).await,
        Op::CreateBucket => bucket::create(state, req).await,
        Op::DeleteBucket => bucket::delete(state, req).await,
        Op::HeadBucket => bucket::head(state, req).await,
        Op::GetBucketLocation => bucket::location(state, req).await,
        Op::GetBucketVersioning => versioning::get(state, req).await,
        Op::PutBucketVersioning => versioning::put(state, req).await,
        Op::PutObjectTagging => tagging::put_object(state, req).await,
        Op::GetObjectTagging => tagging::get_object(state, req).await,
        Op::DeleteObjectTagging => tagging::delete_object(state, req).await,
        Op::PutBucketTagging => tagging::put_bucket(state, req).await,
        Op::GetBucketTagging => tagging::get_bucket(state, req).await,
        Op::DeleteBucketTagging => tagging::delete_bucket(state, req).await,
        Op::GetBucketAcl => acl::get_bucket(state, req).await,
        Op::PutBucketAcl => acl::put_bucket(state, req).await,
        Op::GetObjectAcl => acl::get_object(state, req).await,
        Op::PutObjectAcl => acl::put_object(state, req).await,
        Op::GetBucketPolicy => policy::get(state, req).await,
        Op::PutBucketPolicy => policy::put(state, req).await,
        Op::DeleteBucketPolicy => policy::delete(state, req).await,
        Op::GetBucketCors => cors::get(state, req).await,
        Op::PutBucketCors => cors::put(state, req).await,
        Op::DeleteBucketCors => cors::delete(state, req).await,
        Op::PutBucketLifecycle => lifecycle::put(state, req).await,
        Op::GetBucketLifecycle => lifecycle::get(state, req).await,
        Op::DeleteBucketLifecycle => lifecycle::delete(state, req).await,
        Op::ListObjects => list::list_v1(state, req).await,
        Op::ListObjectsV2 => list::list_v2(state, req).await,
        Op::ListObjectVersions => list::list_versions(state, req).await,
        Op::DeleteObjects => object::delete_many(state, req).await,
        Op::PutObject => object::put(state, req).await,
        Op::PostObject => Err(S3Error::internal("POST Object is answered before authorization")),
        Op::CopyObject => copy::copy(state, req).await,
        Op::CreateMultipartUpload => multipart::create(state, req).await,
        Op::UploadPart => multipart::upload_part(state, req).await,
        Op::UploadPartCopy => copy::upload_part_copy(state, req).await,
        Op::CompleteMultipartUpload => multipart::complete(state, req).await,
        Op::AbortMultipartUpload => multipart::abort(state, req).await,
        Op::ListParts => multipart::list_parts(state, req).await,
        Op::ListMultipartUploads => multipart::list_uploads(state, req).await,
        Op::GetObject => object::get(state, req, false).await,
        Op::HeadObject => object::get(state, req, true).await,
        Op::DeleteObject => object::delete(state, req).await,
        Op::GetObjectAttributes => object_attributes::get(state, req).await,
        Op::NotImplemented(what) => {
            Err(S3Error::with_message(S3ErrorCode::NotImplemented, format!("{what} is not implemented by Tessera")))
        }
    }
}

/// A 200 with an XML document.
pub fn xml_response(doc: String) -> S3Result<Response<Body>> {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/xml")
        .body(body::full(doc))
        .map_err(S3Error::internal)
}

/// A response with no body.
pub fn empty_response(status: StatusCode) -> S3Result<Response<Body>> {
    Response::builder().status(status).body(body::empty()).map_err(S3Error::internal)
}

/// The `<Owner>` element of listings: the canonical id and the user's name.
pub fn write_owner(w: &mut xml::XmlWriter, owner: &str, directory: &acl::Directory) {
    w.start("Owner").elem("ID", owner).elem("DisplayName", directory.display_name(owner)).end("Owner");
}
