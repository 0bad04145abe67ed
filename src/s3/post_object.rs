//! POST Object: a browser uploads a file straight to a bucket with an HTML
//! form (`multipart/form-data`) that a web app signed beforehand (boto3's
//! `generate_presigned_post`, the JS SDK's `createPresignedPost`).
//!
//! The fields before `file` are read into memory (bounded); the form's
//! signature and policy decide who writes and what (`post_policy`); the
//! fields become the headers of a PutObject for the key the form names,
//! which is authorized as any PutObject and streams the file field to disk
//! through the same ingest as a PUT body. Fields after the file are
//! ignored, as S3 does.
//! Reference: <https://docs.aws.amazon.com/AmazonS3/latest/API/RESTObjectPOST.html>

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;

use super::error::{S3Error, S3ErrorCode, S3Result};
use super::ingest::MAX_PUT_BYTES;
use super::post_policy::{authenticate, Fields, Policy};
use super::xml::XmlWriter;
use super::{access, AppState, BodyError, RequestBody, S3Request};
use crate::access_log::LearnedFromBody;
use crate::auth::verify::VerifiedRequest;
use crate::http::body::{self, Body};
use crate::http::route::{Op, Route};
use crate::http::target::ObjectKey;

/// The fields before the file, all together (S3 allows 20 KB of policy).
const MAX_FIELDS_BYTES: u64 = 256 * 1024;
const MAX_FIELDS: usize = 256;

/// Fields that become the object's headers under their own name.
const HEADER_FIELDS: [&str; 6] =
    ["content-type", "cache-control", "content-disposition", "content-encoding", "content-language", "expires"];

pub async fn post(state: &AppState, mut req: S3Request) -> S3Result<Response<Body>> {
    let bucket = req.bucket()?.to_string();
    let host = req.header("host").unwrap_or("localhost").to_string();
    let boundary = boundary(req.headers())?;
    let body = std::mem::replace(&mut req.body, empty());
    let mut form = multer::Multipart::with_constraints(body.into_data_stream(), boundary, constraints());
    let (mut fields, file) = read_fields(&mut form, state.body_timeout).await?;
    let signer = authenticate(state, &fields).await?;
    // The policy's conditions hold for the key as it will be stored.
    let key_field = fields.0.iter_mut().find(|(name, _)| name == "key").ok_or_else(|| missing("key"))?;
    key_field.1 = key_field.1.replace("${filename}", file.file_name().unwrap_or_default());
    let key = key_field.1.clone();
    if let Some(policy) = &signer.policy {
        policy.check(&fields, &bucket, time::OffsetDateTime::now_utc())?;
    }
    let verdict = Arc::new(AtomicU8::new(WITHIN));
    let range = signer.policy.as_ref().and_then(Policy::length_range).unwrap_or((0, MAX_PUT_BYTES));
    req.parts.headers = object_headers(&fields)?;
    req.route = Route {
        bucket: req.route.bucket.take(),
        key: Some(ObjectKey::from_form(key.clone())?),
        query: Default::default(),
        op: Op::PutObject,
        params: Default::default(),
    };
    let learned = LearnedFromBody { user: signer.principal.log_name().to_string(), key: key.clone() };
    req.principal = signer.principal;
    req.auth = VerifiedRequest::anonymous();
    req.body = file_body(file, range, verdict.clone());
    req.access = access::authorize(state, &req).await?;
    let stored = super::object::put(state, req).await.map_err(|e| match verdict.load(Ordering::SeqCst) {
        TOO_LARGE => S3Error::new(S3ErrorCode::EntityTooLarge),
        TOO_SMALL => S3Error::new(S3ErrorCode::EntityTooSmall),
        _ => e,
    })?;
    let mut answered = answer(&fields, &ObjectUrl { scheme: state.scheme, host, bucket, key }, stored)?;
    answered.extensions_mut().insert(learned);
    Ok(answered)
}

fn missing(name: &str) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidArgument, format!("Bucket POST must contain a field named '{name}'."))
}

fn malformed() -> S3Error {
    S3Error::new(S3ErrorCode::MalformedPOSTRequest)
}

fn empty() -> RequestBody {
    http_body_util::Empty::new().map_err(|never| match never {}).boxed()
}

/// The form's boundary; anything but `multipart/form-data` is not a form.
fn boundary(headers: &HeaderMap) -> S3Result<String> {
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.trim_start().to_ascii_lowercase().starts_with("multipart/form-data") {
        return Err(S3Error::with_message(
            S3ErrorCode::PreconditionFailed,
            "Bucket POST must be of the enclosure-type multipart/form-data",
        )
        .with_extra("Condition", "Bucket POST must be of the enclosure-type multipart/form-data"));
    }
    multer::parse_boundary(content_type).map_err(|_| malformed())
}

fn constraints() -> multer::Constraints {
    let limits = multer::SizeLimit::new().whole_stream(u64::MAX).per_field(u64::MAX);
    multer::Constraints::new().size_limit(limits)
}

/// The fields up to the file, and the file field, its data unread. Field
/// names are lowercased: S3 matches them without regard to case.
async fn read_fields(
    form: &mut multer::Multipart<'static>,
    idle: Duration,
) -> S3Result<(Fields, multer::Field<'static>)> {
    let mut fields = Vec::new();
    let mut total = 0u64;
    loop {
        let next = tokio::time::timeout(idle, form.next_field()).await.map_err(|_| timeout())?;
        let Some(field) = next.map_err(|_| malformed())? else {
            let message = "POST requires exactly one file upload per request.";
            return Err(S3Error::with_message(S3ErrorCode::InvalidArgument, message));
        };
        let name = field.name().unwrap_or_default().to_ascii_lowercase();
        if name == "file" {
            return Ok((Fields(fields), field));
        }
        let value = read_value(field, idle, MAX_FIELDS_BYTES - total).await?;
        total += value.len() as u64;
        if fields.len() == MAX_FIELDS {
            return Err(S3Error::with_message(S3ErrorCode::InvalidArgument, "Too many form fields"));
        }
        fields.push((name, value));
    }
}

/// A field's value as text, refusing more than `room` bytes.
async fn read_value(mut field: multer::Field<'static>, idle: Duration, room: u64) -> S3Result<String> {
    let mut value = Vec::new();
    while let Some(chunk) =
        tokio::time::timeout(idle, field.chunk()).await.map_err(|_| timeout())?.map_err(|_| malformed())?
    {
        value.extend_from_slice(&chunk);
        if value.len() as u64 > room {
            let message = "Your POST request fields preceeding the upload file were too large.";
            return Err(S3Error::with_message(S3ErrorCode::MaxPostPreDataLengthExceededError, message));
        }
    }
    String::from_utf8(value).map_err(|_| malformed())
}

fn timeout() -> S3Error {
    S3Error::new(S3ErrorCode::RequestTimeout).with_header("connection", "close")
}

/// The PutObject headers the fields give: content headers, `x-amz-meta-*`,
/// checksums, and `acl` as `x-amz-acl`.
fn object_headers(fields: &Fields) -> S3Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    for (name, value) in &fields.0 {
        let header = match name.as_str() {
            "acl" => "x-amz-acl",
            "tagging" => {
                let message = "the tagging field of POST Object is not supported by Tessera";
                return Err(S3Error::with_message(S3ErrorCode::NotImplemented, message));
            }
            n if HEADER_FIELDS.contains(&n) || n.starts_with("x-amz-meta-") || n.starts_with("x-amz-checksum-") => n,
            "x-amz-storage-class" | "x-amz-website-redirect-location" => name.as_str(),
            _ => continue,
        };
        let bad = || S3Error::with_message(S3ErrorCode::InvalidArgument, format!("the field {name} is not valid"));
        let header = HeaderName::from_bytes(header.as_bytes()).map_err(|_| bad())?;
        headers.append(header, HeaderValue::from_str(value).map_err(|_| bad())?);
    }
    Ok(headers)
}

/// Where the file stands against the policy's length range.
const WITHIN: u8 = 0;
const TOO_LARGE: u8 = 1;
const TOO_SMALL: u8 = 2;

/// The file field as the PutObject body, held to `(min, max)` bytes: a
/// file that passes `max` ends the body with an error at once (nothing of
/// it is kept); one that ends short of `min` ends it with an error too.
/// `verdict` tells the caller which.
fn file_body(field: multer::Field<'static>, (min, max): (u64, u64), verdict: Arc<AtomicU8>) -> RequestBody {
    let frames = futures_util::stream::unfold(Some((field, 0u64)), move |state| {
        let verdict = verdict.clone();
        async move {
            let (mut field, seen) = state?;
            let refuse = |what: u8| {
                verdict.store(what, Ordering::SeqCst);
                let e: BodyError = "the file is outside the policy's content-length-range".into();
                Some((Err(e), None))
            };
            match field.chunk().await {
                Ok(Some(chunk)) if seen + chunk.len() as u64 > max => refuse(TOO_LARGE),
                Ok(Some(chunk)) => {
                    let seen = seen + chunk.len() as u64;
                    Some((Ok(Frame::data(chunk)), Some((field, seen))))
                }
                Ok(None) if seen < min => refuse(TOO_SMALL),
                Ok(None) => None,
                Err(e) => Some((Err(e.into()), None)),
            }
        }
    });
    BodyExt::boxed(StreamBody::new(frames))
}

/// S3's answer to a form upload: the redirect the form asks for, else the
/// status it asks for (201 with a `PostResponse` document), else 204; with
/// the object's ETag and URL either way.
fn answer(fields: &Fields, object: &ObjectUrl, stored: Response<Body>) -> S3Result<Response<Body>> {
    let etag = stored.headers().get("etag").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let mut b = Response::builder().header("etag", &etag);
    for name in ["x-amz-version-id", "x-amz-checksum-type"] {
        if let Some(value) = stored.headers().get(name) {
            b = b.header(name, value);
        }
    }
    let redirect = fields.get("success_action_redirect").or(fields.get("redirect"));
    if let Some(url) = redirect.filter(|u| u.starts_with("http://") || u.starts_with("https://")) {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("bucket", &object.bucket)
            .append_pair("key", &object.key)
            .append_pair("etag", &etag)
            .finish();
        let joint = if url.contains('?') { '&' } else { '?' };
        let to = format!("{url}{joint}{query}");
        return b.status(StatusCode::SEE_OTHER).header("location", to).body(body::empty()).map_err(S3Error::internal);
    }
    let b = b.header("location", object.to_string());
    match fields.get("success_action_status") {
        Some("200") => b.status(StatusCode::OK).body(body::empty()),
        Some("201") => {
            let mut w = XmlWriter::new("PostResponse");
            w.elem("Location", &object.to_string()).elem("Bucket", &object.bucket).elem("Key", &object.key);
            w.elem("ETag", &etag);
            let doc = w.finish("PostResponse");
            b.status(StatusCode::CREATED).header("content-type", "application/xml").body(body::full(doc))
        }
        _ => b.status(StatusCode::NO_CONTENT).body(body::empty()),
    }
    .map_err(S3Error::internal)
}

/// The URL of a stored object, as the request reached the server.
struct ObjectUrl {
    scheme: &'static str,
    host: String,
    bucket: String,
    key: String,
}

impl std::fmt::Display for ObjectUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = crate::auth::sigv4::uri_encode(&self.key, false);
        write!(f, "{}://{}/{}/{key}", self.scheme, self.host, self.bucket)
    }
}
