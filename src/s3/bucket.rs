//! Bucket operations: create, delete, head, list, location, versioning, ACL.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::{Response, StatusCode};

use super::error::{S3Error, S3ErrorCode, S3Result};
use super::headers::now_ms;
use super::ingest::receive_small;
use super::xml::{self, XmlWriter};
use super::{empty_response, write_owner, xml_response, AppState, S3Request};
use crate::http::body::Body;

use crate::store::schema::BucketRecord;

/// CreateBucketConfiguration is a few hundred bytes; anything larger is abuse.
const MAX_CONFIG_BYTES: usize = 64 * 1024;

/// Most buckets one ListBuckets page may be asked for.
const MAX_BUCKETS_PER_PAGE: usize = 10_000;

/// ListBuckets, with the 2024 paging: `max-buckets`, `continuation-token`
/// (opaque to clients: the last name listed, base64), `prefix` and
/// `bucket-region`. Without `max-buckets` every bucket is listed at once.
pub async fn list_buckets(state: &AppState, req: S3Request) -> S3Result<Response<Body>> {
    let owner = req.principal.id().to_string();
    let page = BucketPage::from_query(&req)?;
    // Root sees every bucket; a user, their own.
    let only = (req.principal != super::Principal::Root).then(|| owner.clone());
    let buckets = state.store.run(move |s| s.list_buckets(only.as_deref())).await?;
    let directory = super::acl::Directory::load(state).await?;
    let mut listed = buckets
        .iter()
        .filter(|(name, record)| {
            name.starts_with(page.prefix.as_str())
                && page.region.as_ref().is_none_or(|r| *r == record.region)
                && page.after.as_ref().is_none_or(|after| name.as_str() > after.as_str())
        })
        .peekable();
    let mut w = XmlWriter::new("ListAllMyBucketsResult");
    w.start("Buckets");
    let mut last = None;
    for (name, record) in listed.by_ref().take(page.max) {
        w.start("Bucket")
            .elem("Name", name)
            .elem("CreationDate", &xml::iso8601(record.created_ms))
            .elem("BucketRegion", &record.region)
            .end("Bucket");
        last = Some(name);
    }
    w.end("Buckets");
    write_owner(&mut w, &owner, &directory);
    if let (Some(last), true) = (last, listed.peek().is_some()) {
        w.elem("ContinuationToken", &URL_SAFE_NO_PAD.encode(last));
    }
    if !page.prefix.is_empty() {
        w.elem("Prefix", &page.prefix);
    }
    xml_response(w.finish("ListAllMyBucketsResult"))
}

/// The paging parameters of a ListBuckets request.
struct BucketPage {
    max: usize,
    after: Option<String>,
    prefix: String,
    region: Option<String>,
}

impl BucketPage {
    fn from_query(req: &S3Request) -> S3Result<BucketPage> {
        let q = &req.route.query;
        let invalid = |what: &str| S3Error::with_message(S3ErrorCode::InvalidArgument, what.to_string());
        let max = match q.get("max-buckets") {
            None => usize::MAX,
            Some(v) => v
                .parse()
                .ok()
                .filter(|n| (1..=MAX_BUCKETS_PER_PAGE).contains(n))
                .ok_or_else(|| invalid("max-buckets must be an integer from 1 to 10000"))?,
        };
        let after = match q.get("continuation-token") {
            None => None,
            Some(token) => Some(
                URL_SAFE_NO_PAD
                    .decode(token)
                    .ok()
                    .and_then(|raw| String::from_utf8(raw).ok())
                    .ok_or_else(|| invalid("The continuation token provided is incorrect"))?,
            ),
        };
        Ok(BucketPage {
            max,
            after,
            prefix: q.get("prefix").unwrap_or_default().to_string(),
            region: q.get("bucket-region").map(str::to_string),
        })
    }
}

pub async fn create(state: &AppState, mut req: S3Request) -> S3Result<Response<Body>> {
    let bucket = req.bucket()?.clone();
    if !bucket.valid_for_new_bucket() {
        return Err(S3Error::new(S3ErrorCode::InvalidBucketName).with_extra("BucketName", bucket));
    }
    let body = receive_small(state, &mut req, MAX_CONFIG_BYTES).await?;
    check_location(&body, &state.region)?;
    let owner = req.principal.id().to_string();
    let acl = super::acl::from_headers(state, req.headers()).await?.map(|r| r.resolve(&owner, &owner));
    let record = BucketRecord {
        owner,
        created_ms: now_ms(),
        region: state.region.clone(),
        lifecycle: None,
        versioning: Default::default(),
        tags: Vec::new(),
        acl,
        policy: None,
        cors: None,
    };
    let name = bucket.clone();
    let owner = record.owner.clone();
    let created = state.store.run(move |s| s.create_bucket(&name, &record)).await;
    match created {
        Err(crate::store::StoreError::BucketExists(existing)) if existing != owner => {
            Err(S3Error::new(S3ErrorCode::BucketAlreadyExists).with_extra("BucketName", bucket))
        }
        // S3 keeps us-east-1's legacy answer to re-creating your own bucket:
        // 200; every other region answers 409 BucketAlreadyOwnedByYou.
        Err(crate::store::StoreError::BucketExists(_)) if state.region == "us-east-1" => Response::builder()
            .status(StatusCode::OK)
            .header("location", format!("/{bucket}"))
            .body(crate::http::body::empty())
            .map_err(S3Error::internal),
        Err(e) => Err(S3Error::from(e).with_extra("BucketName", bucket)),
        Ok(()) => Response::builder()
            .status(StatusCode::OK)
            .header("location", format!("/{bucket}"))
            .body(crate::http::body::empty())
            .map_err(S3Error::internal),
    }
}

/// Accepts an optional CreateBucketConfiguration; its LocationConstraint must
/// name this server's region (empty or absent means us-east-1, as in S3).
fn check_location(body: &[u8], region: &str) -> S3Result<()> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let doc = xml::parse(body)?;
    let constraint = doc.child_text("LocationConstraint").map(str::trim).unwrap_or("");
    let requested = if constraint.is_empty() { "us-east-1" } else { constraint };
    if requested != region {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            format!("The specified location-constraint is not valid: this server serves region {region}"),
        )
        .with_extra("ArgumentName", "LocationConstraint")
        .with_extra("ArgumentValue", constraint));
    }
    Ok(())
}

pub async fn delete(state: &AppState, req: S3Request) -> S3Result<Response<Body>> {
    let bucket = req.bucket()?.clone();
    let name = bucket.clone();
    state
        .store
        .run(move |s| s.delete_bucket(&name))
        .await
        .map_err(|e| S3Error::from(e).with_extra("BucketName", bucket))?;
    empty_response(StatusCode::NO_CONTENT)
}

pub async fn head(state: &AppState, req: S3Request) -> S3Result<Response<Body>> {
    let record = existing(state, &req).await?;
    Response::builder()
        .status(StatusCode::OK)
        .header("x-amz-bucket-region", record.region)
        .body(crate::http::body::empty())
        .map_err(S3Error::internal)
}

/// GetBucketLocation: an empty constraint means us-east-1 (client-pitfalls.md item 15).
pub async fn location(state: &AppState, req: S3Request) -> S3Result<Response<Body>> {
    let record = existing(state, &req).await?;
    let mut w = XmlWriter::new("LocationConstraint");
    w.text(if record.region == "us-east-1" { "" } else { &record.region });
    xml_response(w.finish("LocationConstraint"))
}

pub(super) async fn existing(state: &AppState, req: &S3Request) -> S3Result<BucketRecord> {
    let bucket = req.bucket()?.clone();
    let name = bucket.clone();
    state.store.run(move |s| s.bucket(&name)).await.map_err(|e| S3Error::from(e).with_extra("BucketName", bucket))
}
