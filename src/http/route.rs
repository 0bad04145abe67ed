//! Request -> operation. Pure: the only place that knows S3's URL shapes.
//! Path-style always; virtual-hosted style when a domain is configured.
//! Reference: <https://docs.aws.amazon.com/AmazonS3/latest/userguide/VirtualHosting.html>

use super::params::Params;
use super::target::{BucketName, ObjectKey};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use http::Method;

/// Every operation the router can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    ListBuckets,
    CreateBucket,
    DeleteBucket,
    HeadBucket,
    GetBucketLocation,
    GetBucketVersioning,
    PutBucketVersioning,
    GetBucketAcl,
    PutBucketLifecycle,
    GetBucketLifecycle,
    DeleteBucketLifecycle,
    ListObjects,
    ListObjectsV2,
    ListObjectVersions,
    DeleteObjects,
    PutObject,
    /// A browser form upload (`POST /bucket`, `multipart/form-data`).
    PostObject,
    CopyObject,
    GetObject,
    HeadObject,
    DeleteObject,
    GetObjectAcl,
    GetObjectAttributes,
    CreateMultipartUpload,
    UploadPart,
    UploadPartCopy,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,
    ListMultipartUploads,
    PutObjectTagging,
    GetObjectTagging,
    DeleteObjectTagging,
    PutBucketTagging,
    GetBucketTagging,
    DeleteBucketTagging,
    PutBucketAcl,
    PutObjectAcl,
    GetBucketPolicy,
    PutBucketPolicy,
    DeleteBucketPolicy,
    GetBucketCors,
    PutBucketCors,
    DeleteBucketCors,
    /// Recognised but not implemented: answered with `NotImplemented` (501).
    NotImplemented(&'static str),
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::ListBuckets => "ListBuckets",
            Op::CreateBucket => "CreateBucket",
            Op::DeleteBucket => "DeleteBucket",
            Op::HeadBucket => "HeadBucket",
            Op::GetBucketLocation => "GetBucketLocation",
            Op::GetBucketVersioning => "GetBucketVersioning",
            Op::PutBucketVersioning => "PutBucketVersioning",
            Op::GetBucketAcl => "GetBucketAcl",
            Op::PutBucketLifecycle => "PutBucketLifecycleConfiguration",
            Op::GetBucketLifecycle => "GetBucketLifecycleConfiguration",
            Op::DeleteBucketLifecycle => "DeleteBucketLifecycle",
            Op::ListObjects => "ListObjects",
            Op::ListObjectsV2 => "ListObjectsV2",
            Op::ListObjectVersions => "ListObjectVersions",
            Op::DeleteObjects => "DeleteObjects",
            Op::PutObject => "PutObject",
            Op::PostObject => "PostObject",
            Op::CopyObject => "CopyObject",
            Op::GetObject => "GetObject",
            Op::HeadObject => "HeadObject",
            Op::DeleteObject => "DeleteObject",
            Op::GetObjectAcl => "GetObjectAcl",
            Op::GetObjectAttributes => "GetObjectAttributes",
            Op::CreateMultipartUpload => "CreateMultipartUpload",
            Op::UploadPart => "UploadPart",
            Op::UploadPartCopy => "UploadPartCopy",
            Op::CompleteMultipartUpload => "CompleteMultipartUpload",
            Op::AbortMultipartUpload => "AbortMultipartUpload",
            Op::ListParts => "ListParts",
            Op::ListMultipartUploads => "ListMultipartUploads",
            Op::PutObjectTagging => "PutObjectTagging",
            Op::GetObjectTagging => "GetObjectTagging",
            Op::DeleteObjectTagging => "DeleteObjectTagging",
            Op::PutBucketTagging => "PutBucketTagging",
            Op::GetBucketTagging => "GetBucketTagging",
            Op::DeleteBucketTagging => "DeleteBucketTagging",
            Op::PutBucketAcl => "PutBucketAcl",
            Op::PutObjectAcl => "PutObjectAcl",
            Op::GetBucketPolicy => "GetBucketPolicy",
            Op::PutBucketPolicy => "PutBucketPolicy",
            Op::DeleteBucketPolicy => "DeleteBucketPolicy",
            Op::GetBucketCors => "GetBucketCors",
            Op::PutBucketCors => "PutBucketCors",
            Op::DeleteBucketCors => "DeleteBucketCors",
            Op::NotImplemented(name) => name,
        }
    }
}

/// Decoded query parameters, in the order sent.
#[derive(Debug, Clone, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        Query(
            form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }
}

/// Where a request points and what it asks for.
#[derive(Debug, Clone)]
pub struct Route {
    pub bucket: Option<BucketName>,
    pub key: Option<ObjectKey>,
    pub query: Query,
    pub op: Op,
    /// The operation's typed query parameters (`params.rs`).
    pub params: Params,
}

/// Routes a request. `domain` enables virtual-hosted style for `bucket.domain`.
pub fn route(
    method: &Method,
    host: Option<&str>,
    raw_path: &str,
    raw_query: Option<&str>,
    has_copy_source: bool,
    domain: Option<&str>,
) -> S3Result<Route> {
    let query = Query::parse(raw_query);
    let (bucket, key) = split_target(host, raw_path, domain)?;
    let op = match (&bucket, &key) {
        (None, _) => service_op(method),
        (Some(_), None) => bucket_op(method, &query),
        (Some(_), Some(_)) => object_op(method, &query, has_copy_source),
    }?;
    let params = Params::parse(op, &query)?;
    Ok(Route { bucket, key, query, op, params })
}

/// Splits the target into bucket and key, decoding the key exactly: `+` stays
/// `+`, `//` and a leading `/` in the key are kept. Also used before
/// routing, by CORS, which needs the bucket of any request, even a refused one.
pub fn split_target(
    host: Option<&str>,
    raw_path: &str,
    domain: Option<&str>,
) -> S3Result<(Option<BucketName>, Option<ObjectKey>)> {
    let path = raw_path.strip_prefix('/').unwrap_or(raw_path);
    if let Some(bucket) = virtual_host_bucket(host, domain) {
        return Ok((Some(BucketName::from_host_label(bucket)), ObjectKey::decode(path)?));
    }
    let (bucket, key) = match path.split_once('/') {
        Some((b, k)) => (b, k),
        None => (path, ""),
    };
    if bucket.is_empty() {
        return Ok((None, None));
    }
    Ok((Some(BucketName::decode(bucket)?), ObjectKey::decode(key)?))
}

/// The bucket of a virtual-hosted request: `bucket.domain[:port]` in Host.
pub fn virtual_host_bucket(host: Option<&str>, domain: Option<&str>) -> Option<String> {
    let domain = domain?;
    let host = host?;
    let host =
        host.rsplit_once(':').filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit())).map_or(host, |(h, _)| h);
    let bucket = host.strip_suffix(domain)?.strip_suffix('.')?;
    (!bucket.is_empty()).then(|| bucket.to_string())
}

fn service_op(method: &Method) -> S3Result<Op> {
    match *method {
        Method::GET => Ok(Op::ListBuckets),
        _ => Err(S3Error::new(S3ErrorCode::MethodNotAllowed)),
    }
}

/// Bucket sub-resources we know S3 has but Tessera does not serve yet.
const UNSUPPORTED_BUCKET_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "analytics",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "website",
];

/// Bucket sub-resources holding a configuration that is got, put and
/// deleted: `(sub-resource, [GET, PUT, DELETE])`.
const BUCKET_CONFIGURATIONS: &[(&str, [Op; 3])] = &[
    ("lifecycle", [Op::GetBucketLifecycle, Op::PutBucketLifecycle, Op::DeleteBucketLifecycle]),
    ("tagging", [Op::GetBucketTagging, Op::PutBucketTagging, Op::DeleteBucketTagging]),
    ("policy", [Op::GetBucketPolicy, Op::PutBucketPolicy, Op::DeleteBucketPolicy]),
    ("cors", [Op::GetBucketCors, Op::PutBucketCors, Op::DeleteBucketCors]),
];

fn bucket_op(method: &Method, q: &Query) -> S3Result<Op> {
    if let Some((_, [get, put, delete])) = BUCKET_CONFIGURATIONS.iter().find(|(sub, _)| q.has(sub)) {
        return match *method {
            Method::GET => Ok(*get),
            Method::PUT => Ok(*put),
            Method::DELETE => Ok(*delete),
            _ => Err(S3Error::new(S3ErrorCode::MethodNotAllowed)),
        };
    }
    if let Some(sub) = UNSUPPORTED_BUCKET_SUBRESOURCES.iter().find(|s| q.has(s)) {
        return Ok(Op::NotImplemented(sub));
    }
    let op = match *method {
        Method::GET if q.has("location") => Op::GetBucketLocation,
        Method::GET if q.has("versioning") => Op::GetBucketVersioning,
        Method::GET if q.has("acl") => Op::GetBucketAcl,
        Method::GET if q.has("versions") => Op::ListObjectVersions,
        Method::GET if q.has("uploads") => Op::ListMultipartUploads,
        Method::GET if q.get("list-type") == Some("2") => Op::ListObjectsV2,
        Method::GET => Op::ListObjects,
        Method::HEAD => Op::HeadBucket,
        Method::PUT if q.has("versioning") => Op::PutBucketVersioning,
        Method::PUT if q.has("acl") => Op::PutBucketAcl,
        Method::PUT => Op::CreateBucket,
        Method::DELETE => Op::DeleteBucket,
        Method::POST if q.has("delete") => Op::DeleteObjects,
        Method::POST => Op::PostObject,
        _ => return Err(S3Error::new(S3ErrorCode::MethodNotAllowed)),
    };
    Ok(op)
}

fn object_op(method: &Method, q: &Query, has_copy_source: bool) -> S3Result<Op> {
    let multipart = q.has("uploadId") || q.has("uploads");
    let op = match *method {
        Method::GET if q.has("tagging") => Op::GetObjectTagging,
        Method::PUT if q.has("tagging") => Op::PutObjectTagging,
        Method::DELETE if q.has("tagging") => Op::DeleteObjectTagging,
        _ if q.has("tagging") => return Err(S3Error::new(S3ErrorCode::MethodNotAllowed)),
        Method::GET if q.has("attributes") => Op::GetObjectAttributes,
        _ if q.has("retention") || q.has("legal-hold") => Op::NotImplemented("ObjectLock"),
        _ if q.has("restore") || q.has("select") || q.has("attributes") || q.has("torrent") => {
            Op::NotImplemented("ObjectExtras")
        }
        Method::PUT if q.has("acl") => Op::PutObjectAcl,
        Method::PUT if multipart && has_copy_source => Op::UploadPartCopy,
        Method::PUT if multipart => Op::UploadPart,
        Method::PUT if has_copy_source => Op::CopyObject,
        Method::PUT => Op::PutObject,
        Method::GET if q.has("acl") => Op::GetObjectAcl,
        Method::GET if multipart => Op::ListParts,
        Method::GET => Op::GetObject,
        Method::HEAD => Op::HeadObject,
        Method::DELETE if multipart => Op::AbortMultipartUpload,
        Method::DELETE => Op::DeleteObject,
        Method::POST if q.has("uploads") => Op::CreateMultipartUpload,
        Method::POST if q.has("uploadId") => Op::CompleteMultipartUpload,
        _ => return Err(S3Error::new(S3ErrorCode::MethodNotAllowed)),
    };
    Ok(op)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(method: Method, path: &str, query: Option<&str>) -> Route {
        match route(&method, Some("localhost:9000"), path, query, false, None) {
            Ok(route) => route,
            Err(e) => panic!("route failed: {e}"),
        }
    }

    #[test]
    fn keys_are_decoded_exactly() {
        let route = r(Method::GET, "/b//a+b%20c/%2E%2E/x", None);
        assert_eq!(route.bucket.as_deref(), Some("b"));
        assert_eq!(route.key.as_deref(), Some("/a+b c/../x"));
        assert_eq!(route.op, Op::GetObject);
    }

    #[test]
    fn bucket_operations() {
        assert_eq!(r(Method::GET, "/", None).op, Op::ListBuckets);
        assert_eq!(r(Method::GET, "/b", Some("location")).op, Op::GetBucketLocation);
        assert_eq!(r(Method::GET, "/b/", Some("list-type=2&prefix=a")).op, Op::ListObjectsV2);
        assert_eq!(r(Method::GET, "/b", None).op, Op::ListObjects);
        assert_eq!(r(Method::POST, "/b", Some("delete")).op, Op::DeleteObjects);
        assert_eq!(r(Method::GET, "/b", Some("cors")).op, Op::GetBucketCors);
        assert_eq!(r(Method::GET, "/b", Some("website")).op, Op::NotImplemented("website"));
    }

    #[test]
    fn virtual_hosted_style() {
        let route = route(&Method::GET, Some("photos.example.com:9000"), "/a/b.jpg", None, false, Some("example.com"));
        let route = route.ok();
        assert_eq!(route.as_ref().and_then(|r| r.bucket.as_deref()), Some("photos"));
        assert_eq!(route.as_ref().and_then(|r| r.key.as_deref()), Some("a/b.jpg"));
    }

    #[test]
    fn overlong_key_rejected() {
        let path = format!("/b/{}", "k".repeat(1025));
        let err = route(&Method::GET, None, &path, None, false, None).err().map(|e| e.code);
        assert_eq!(err, Some(S3ErrorCode::KeyTooLongError));
    }

    /// Every operation, in the request forms of the S3 API reference
    /// (<https://docs.aws.amazon.com/AmazonS3/latest/API/API_Operations_Amazon_Simple_Storage_Service.html>),
    /// with the `x-id` parameter SDKs add, path-style and virtual-hosted.
    /// `(method, target after the bucket, query, x-amz-copy-source present, expected)`.
    const TABLE: &[(&str, &str, &str, bool, Op)] = &[
        ("PUT", "", "", false, Op::CreateBucket),
        ("DELETE", "", "", false, Op::DeleteBucket),
        ("HEAD", "", "", false, Op::HeadBucket),
        ("GET", "", "location", false, Op::GetBucketLocation),
        ("GET", "", "versioning", false, Op::GetBucketVersioning),
        ("GET", "", "acl", false, Op::GetBucketAcl),
        ("PUT", "", "lifecycle", false, Op::PutBucketLifecycle),
        ("GET", "", "lifecycle", false, Op::GetBucketLifecycle),
        ("DELETE", "", "lifecycle", false, Op::DeleteBucketLifecycle),
        ("GET", "", "delimiter=%2F&encoding-type=url&marker=a&max-keys=2&prefix=p", false, Op::ListObjects),
        ("GET", "", "list-type=2&continuation-token=t&fetch-owner=true&start-after=a", false, Op::ListObjectsV2),
        ("GET", "", "versions&key-marker=k&version-id-marker=v", false, Op::ListObjectVersions),
        ("GET", "", "uploads&key-marker=k&upload-id-marker=u&max-uploads=5", false, Op::ListMultipartUploads),
        ("POST", "", "delete", false, Op::DeleteObjects),
        ("POST", "", "", false, Op::PostObject),
        ("PUT", "/dir/key.txt", "x-id=PutObject", false, Op::PutObject),
        ("PUT", "/dir/key.txt", "x-id=CopyObject", true, Op::CopyObject),
        ("GET", "/dir/key.txt", "x-id=GetObject&partNumber=1&versionId=v", false, Op::GetObject),
        ("HEAD", "/dir/key.txt", "partNumber=2", false, Op::HeadObject),
        ("DELETE", "/dir/key.txt", "x-id=DeleteObject", false, Op::DeleteObject),
        ("GET", "/dir/key.txt", "acl", false, Op::GetObjectAcl),
        ("GET", "/dir/key.txt", "attributes", false, Op::GetObjectAttributes),
        ("POST", "/dir/key.txt", "uploads&x-id=CreateMultipartUpload", false, Op::CreateMultipartUpload),
        (
            "PUT",
            "/dir/key.txt",
            "partNumber=3&uploadId=0123456789abcdef0123456789abcdef&x-id=UploadPart",
            false,
            Op::UploadPart,
        ),
        (
            "PUT",
            "/dir/key.txt",
            "partNumber=3&uploadId=0123456789abcdef0123456789abcdef&x-id=UploadPartCopy",
            true,
            Op::UploadPartCopy,
        ),
        (
            "POST",
            "/dir/key.txt",
            "uploadId=0123456789abcdef0123456789abcdef&x-id=CompleteMultipartUpload",
            false,
            Op::CompleteMultipartUpload,
        ),
        (
            "DELETE",
            "/dir/key.txt",
            "uploadId=0123456789abcdef0123456789abcdef&x-id=AbortMultipartUpload",
            false,
            Op::AbortMultipartUpload,
        ),
        (
            "GET",
            "/dir/key.txt",
            "uploadId=0123456789abcdef0123456789abcdef&max-parts=2&part-number-marker=1&x-id=ListParts",
            false,
            Op::ListParts,
        ),
        ("PUT", "", "website", false, Op::NotImplemented("website")),
        ("GET", "", "cors", false, Op::GetBucketCors),
        ("PUT", "", "cors", false, Op::PutBucketCors),
        ("DELETE", "", "cors", false, Op::DeleteBucketCors),
        ("PUT", "", "versioning", false, Op::PutBucketVersioning),
        ("PUT", "/dir/key.txt", "tagging&versionId=v", false, Op::PutObjectTagging),
        ("GET", "/dir/key.txt", "tagging", false, Op::GetObjectTagging),
        ("DELETE", "/dir/key.txt", "tagging", false, Op::DeleteObjectTagging),
        ("PUT", "", "tagging", false, Op::PutBucketTagging),
        ("GET", "", "tagging", false, Op::GetBucketTagging),
        ("DELETE", "", "tagging", false, Op::DeleteBucketTagging),
        ("PUT", "/dir/key.txt", "acl", false, Op::PutObjectAcl),
        ("PUT", "", "acl", false, Op::PutBucketAcl),
        ("GET", "", "policy", false, Op::GetBucketPolicy),
        ("PUT", "", "policy", false, Op::PutBucketPolicy),
        ("DELETE", "", "policy", false, Op::DeleteBucketPolicy),
    ];

    /// Fails to compile when an operation is added without a row above.
    fn ordinal(op: Op) -> usize {
        match op {
            Op::ListBuckets => 0,
            Op::CreateBucket => 1,
            Op::DeleteBucket => 2,
            Op::HeadBucket => 3,
            Op::GetBucketLocation => 4,
            Op::GetBucketVersioning => 5,
            Op::GetBucketAcl => 6,
            Op::PutBucketLifecycle => 7,
            Op::GetBucketLifecycle => 8,
            Op::DeleteBucketLifecycle => 9,
            Op::ListObjects => 10,
            Op::ListObjectsV2 => 11,
            Op::ListObjectVersions => 12,
            Op::DeleteObjects => 13,
            Op::PutObject => 14,
            Op::CopyObject => 15,
            Op::GetObject => 16,
            Op::HeadObject => 17,
            Op::DeleteObject => 18,
            Op::GetObjectAcl => 19,
            Op::GetObjectAttributes => 20,
            Op::CreateMultipartUpload => 21,
            Op::UploadPart => 22,
            Op::UploadPartCopy => 23,
            Op::CompleteMultipartUpload => 24,
            Op::AbortMultipartUpload => 25,
            Op::ListParts => 26,
            Op::ListMultipartUploads => 27,
            Op::PutBucketVersioning => 28,
            Op::PutObjectTagging => 29,
            Op::GetObjectTagging => 30,
            Op::DeleteObjectTagging => 31,
            Op::PutBucketTagging => 32,
            Op::GetBucketTagging => 33,
            Op::DeleteBucketTagging => 34,
            Op::PutBucketAcl => 35,
            Op::PutObjectAcl => 36,
            Op::GetBucketPolicy => 37,
            Op::PutBucketPolicy => 38,
            Op::DeleteBucketPolicy => 39,
            Op::GetBucketCors => 40,
            Op::PutBucketCors => 41,
            Op::DeleteBucketCors => 42,
            Op::NotImplemented(_) => 43,
            Op::PostObject => 44,
        }
    }

    #[test]
    fn routing_table_covers_every_operation_in_both_styles() {
        let mut seen = [false; 45];
        seen[ordinal(r(Method::GET, "/", None).op)] = true;
        for &(method, target, query, copy, expected) in TABLE {
            let method: Method = method.parse().unwrap_or(Method::OPTIONS);
            let query = (!query.is_empty()).then_some(query);
            let path_style = route(&method, Some("localhost"), &format!("/bkt{target}"), query, copy, None);
            let host = route(
                &method,
                Some("bkt.s3.test:9000"),
                &format!("/{}", target.trim_start_matches('/')),
                query,
                copy,
                Some("s3.test"),
            );
            for (style, routed) in [("path", path_style), ("virtual", host)] {
                let routed = routed.unwrap_or_else(|e| panic!("{method} {target}?{query:?} ({style}): {e}"));
                assert_eq!(routed.op, expected, "{method} {target}?{query:?} ({style})");
                assert_eq!(routed.bucket.as_deref(), Some("bkt"), "{style}");
                let key = target.strip_prefix('/');
                assert_eq!(routed.key.as_deref(), key, "{style}");
            }
            seen[ordinal(expected)] = true;
        }
        let missing: Vec<usize> = (0..seen.len()).filter(|&i| !seen[i]).collect();
        assert!(missing.is_empty(), "operations without a row: {missing:?}");
    }

    #[test]
    fn methods_an_operation_does_not_have_are_refused() {
        for (method, path, query) in [
            ("POST", "/", None),
            ("PATCH", "/bkt", None),
            ("POST", "/bkt/k", None),
            ("POST", "/bkt", Some("lifecycle")),
            ("POST", "/bkt", Some("cors")),
        ] {
            let method: Method = method.parse().unwrap_or(Method::OPTIONS);
            let err = route(&method, None, path, query, false, None).err().map(|e| e.code);
            assert_eq!(err, Some(S3ErrorCode::MethodNotAllowed), "{method} {path}");
        }
    }
}
