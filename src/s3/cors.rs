//! Bucket CORS, so that web pages on other origins can use a bucket (with
//! presigned URLs, for example):
//!
//! - PutBucketCors, GetBucketCors, DeleteBucketCors (`?cors`, the bucket's
//!   owner), the rules kept on the bucket's record (`cors_rules.rs` parses
//!   and matches them);
//! - the preflight `OPTIONS` a browser sends before a cross-origin request,
//!   answered from the bucket's rules without a signature (a browser never
//!   signs one): it reads nothing but the bucket's record and runs nothing else;
//! - the CORS headers of the first matching rule on every response to a
//!   request with an `Origin` header, errors included (a page must be able to
//!   read a 403 or 404 to report it).
//!
//! References: <https://docs.aws.amazon.com/AmazonS3/latest/API/RESTOPTIONSobject.html>,
//! <https://docs.aws.amazon.com/AmazonS3/latest/userguide/cors.html>.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};

use super::error::{S3Error, S3ErrorCode, S3Result};
use super::ingest::receive_small;
use super::{console_cors, cors_rules};
use super::{empty_response, xml_response, AppState, S3Request};
use crate::http::body::{self, Body};
use crate::http::route::split_target;
use crate::http::target::BucketName;
use crate::store::schema::{Cors, CorsMethod, CorsRule};
use crate::store::StoreError;

/// S3's limit on a CORS configuration document.
const MAX_CORS_BODY: usize = 64 * 1024;
/// The most header names a preflight may ask for. Browsers ask for the
/// few non-safelisted headers a request carries; the cap keeps matching
/// them against up to 64 KiB of rules cheap whatever a client sends.
pub const MAX_REQUESTED_HEADERS: usize = 256;
/// The access log's and the metrics' name for a preflight.
pub const PREFLIGHT_OP: &str = "Preflight";
/// What every CORS answer depends on, for caches between the browser and here.
const VARY: &str = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method";

/// PutBucketCors: replaces the configuration (200, as S3).
pub async fn put(state: &AppState, mut req: S3Request) -> S3Result<Response<Body>> {
    let bucket = req.bucket()?.clone();
    let body = receive_small(state, &mut req, MAX_CORS_BODY).await?;
    let cors = cors_rules::parse(&body)?;
    state.store.run(move |s| s.update_bucket(&bucket, move |b| b.cors = Some(cors.clone()))).await?;
    empty_response(StatusCode::OK)
}

/// GetBucketCors: `NoSuchCORSConfiguration` for a bucket without one.
pub async fn get(state: &AppState, req: S3Request) -> S3Result<Response<Body>> {
    let record = super::bucket::existing(state, &req).await?;
    match record.cors {
        Some(cors) => xml_response(cors_rules::to_xml(&cors)),
        None => Err(S3Error::new(S3ErrorCode::NoSuchCORSConfiguration).with_extra("BucketName", req.bucket()?)),
    }
}

/// DeleteBucketCors: 204 whether or not there was one, as S3.
pub async fn delete(state: &AppState, req: S3Request) -> S3Result<Response<Body>> {
    let bucket = req.bucket()?.clone();
    state.store.run(move |s| s.update_bucket(&bucket, |b| b.cors = None)).await?;
    empty_response(StatusCode::NO_CONTENT)
}

fn bad_request(message: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::BadRequest, message)
}

/// A preflight (`OPTIONS` on a bucket or object), checked in S3's order:
/// the `Origin` (400 without), the `Access-Control-Request-Method` (400
/// unless one of the five methods), the bucket (403 when missing or without
/// CORS), then the rules (200 with the first match's headers, else 403).
pub async fn preflight(state: &AppState, parts: &http::request::Parts) -> S3Result<Response<Body>> {
    let headers = &parts.headers;
    if let Some(origin) = console_cors::console_origin(&state.console_origins, headers) {
        return Ok(console_cors::preflight(&origin, headers));
    }
    let origin =
        origin_of(headers).ok_or_else(|| bad_request("Insufficient information. Origin request header needed."))?;
    let method = requested_method(headers)?;
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let (bucket, key) = split_target(host, parts.uri.path(), state.domain.as_deref())?;
    let bucket = bucket.ok_or_else(|| bad_request("A CORS preflight request must name a bucket."))?;
    let resource = if key.is_some() { "OBJECT" } else { "BUCKET" };
    let forbidden = |message: &str| {
        S3Error::with_message(S3ErrorCode::AccessForbidden, message)
            .with_extra("Method", method.as_str())
            .with_extra("ResourceType", resource)
    };
    let cors = preflight_rules(state, &bucket, forbidden).await?;
    let requested =
        requested_headers(headers).ok_or_else(|| forbidden(S3ErrorCode::AccessForbidden.default_message()))?;
    let rule = cors_rules::find(&cors, origin.as_bytes(), method, &requested)
        .ok_or_else(|| forbidden(S3ErrorCode::AccessForbidden.default_message()))?;
    let mut response = Response::builder().status(StatusCode::OK).body(body::empty()).map_err(S3Error::internal)?;
    add_rule_headers(response.headers_mut(), rule, origin, &requested);
    Ok(response)
}

/// The bucket's rules, or S3's refusal of a preflight to a bucket that does
/// not exist or has none.
async fn preflight_rules(state: &AppState, bucket: &str, forbidden: impl Fn(&str) -> S3Error) -> S3Result<Cors> {
    match bucket_cors(state, bucket).await {
        Ok(Some(cors)) => Ok(cors),
        Ok(None) => Err(forbidden("CORSResponse: CORS is not enabled for this bucket.")),
        Err(StoreError::NoSuchBucket) => {
            Err(S3Error::with_message(S3ErrorCode::AccessForbidden, "CORSResponse: Bucket not found"))
        }
        Err(e) => Err(e.into()),
    }
}

/// A non-empty `Origin` header.
fn origin_of(headers: &HeaderMap) -> Option<&HeaderValue> {
    headers.get(header::ORIGIN).filter(|o| !o.is_empty())
}

/// The method a preflight asks for, one of the five S3 allows.
fn requested_method(headers: &HeaderMap) -> S3Result<CorsMethod> {
    let raw = headers.get(header::ACCESS_CONTROL_REQUEST_METHOD).map(|m| String::from_utf8_lossy(m.as_bytes()));
    match raw {
        None => Err(bad_request("Invalid Access-Control-Request-Method: null")),
        Some(name) => CorsMethod::parse(&name)
            .ok_or_else(|| bad_request(format!("Invalid Access-Control-Request-Method: {name}"))),
    }
}

/// The header names of `Access-Control-Request-Headers` (every such line),
/// trimmed and in lowercase, as S3 echoes them. None when a name is not a
/// header name or there are more than [`MAX_REQUESTED_HEADERS`]: no rule
/// allows such a request.
fn requested_headers(headers: &HeaderMap) -> Option<Vec<String>> {
    let mut names = Vec::new();
    for line in headers.get_all(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        for name in line.as_bytes().split(|&b| b == b',').map(<[u8]>::trim_ascii).filter(|n| !n.is_empty()) {
            let name = HeaderName::from_bytes(name).ok()?;
            if names.len() == MAX_REQUESTED_HEADERS {
                return None;
            }
            names.push(name.as_str().to_string());
        }
    }
    Some(names)
}

/// The bucket's CORS configuration: one point read of its record
/// ([`Store::lookup`](crate::store::Store::lookup)).
async fn bucket_cors(state: &AppState, bucket: &str) -> Result<Option<Cors>, StoreError> {
    state.store.lookup(|s| s.bucket(bucket)).await.map(|record| record.cors)
}

/// The headers S3 answers with from `rule`, in S3's order. `requested` is
/// what a preflight asked for (none on an actual request). A rule with the
/// origin `*` allows any origin without credentials, so its answer is `*`;
/// any other rule names the origin and allows credentials.
fn add_rule_headers(out: &mut HeaderMap, rule: &CorsRule, origin: &HeaderValue, requested: &[String]) {
    let any_origin = rule.allowed_origins.iter().any(|o| o == "*");
    let allow_origin = if any_origin { HeaderValue::from_static("*") } else { origin.clone() };
    out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
    let methods: Vec<&str> = rule.allowed_methods.iter().map(|m| m.as_str()).collect();
    set_list(out, header::ACCESS_CONTROL_ALLOW_METHODS, &methods);
    set_list(out, header::ACCESS_CONTROL_ALLOW_HEADERS, requested);
    set_list(out, header::ACCESS_CONTROL_EXPOSE_HEADERS, &rule.expose_headers);
    if let Some(seconds) = rule.max_age_seconds {
        out.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(seconds));
    }
    if !any_origin {
        out.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    }
    out.append(header::VARY, HeaderValue::from_static(VARY));
}

/// `name: a, b, c`, unless the list is empty. The values were checked to be
/// sendable when the rule was put; one that is not is left out, not a panic.
fn set_list(out: &mut HeaderMap, name: HeaderName, values: &[impl AsRef<str>]) {
    let joined = values.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(", ");
    if let (false, Ok(value)) = (joined.is_empty(), HeaderValue::from_str(&joined)) {
        out.insert(name, value);
    }
}

/// An actual (not preflight) request with an `Origin`: what its response
/// needs to get the CORS headers of its bucket's rules.
/// The CORS headers a response gets: the web console's fixed answer for
/// its own origins, whatever the bucket's rules (`console_cors.rs`), else
/// the bucket's rules.
pub enum Answer {
    Console(HeaderValue),
    Bucket(Actual),
}

impl Answer {
    /// Taken from the request's head before it is handled; None when no
    /// CORS header is due (see [`Actual::of`]).
    pub fn of<B>(req: &Request<B>, state: &AppState) -> Option<Answer> {
        match console_cors::console_origin(&state.console_origins, req.headers()) {
            Some(origin) => (req.method() != Method::OPTIONS).then_some(Answer::Console(origin)),
            None => Actual::of(req, state.domain.as_deref()).map(Answer::Bucket),
        }
    }

    pub async fn add_headers(self, state: &AppState, response: &mut Response<Body>) {
        match self {
            Answer::Console(origin) => console_cors::add_headers(&origin, response.headers_mut()),
            Answer::Bucket(actual) => actual.add_headers(state, response).await,
        }
    }
}

/// The bucket's CORS answer to an actual (not preflight) request.
pub struct Actual {
    origin: HeaderValue,
    /// None for a method no rule can allow (its response gets only `Vary`).
    method: Option<CorsMethod>,
    bucket: BucketName,
}

impl Actual {
    /// Taken from the request's head before it is handled. Costs one header
    /// lookup for a request without `Origin` (most: every non-browser client),
    /// and gives None for it, for a preflight (which answers for itself) and
    /// for a request that names no bucket.
    pub fn of<B>(req: &Request<B>, domain: Option<&str>) -> Option<Actual> {
        let origin = origin_of(req.headers())?.clone();
        if req.method() == Method::OPTIONS {
            return None;
        }
        let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok());
        let (bucket, _) = split_target(host, req.uri().path(), domain).ok()?;
        Some(Actual { origin, method: CorsMethod::parse(req.method().as_str()), bucket: bucket? })
    }

    /// Adds the headers of the first rule that allows the origin and method,
    /// whatever the response (errors too), and `Vary` whenever the bucket
    /// has rules, so that a cache never serves one origin's answer to
    /// another. A bucket that does not exist or cannot be read adds nothing.
    pub async fn add_headers(self, state: &AppState, response: &mut Response<Body>) {
        let cors = match bucket_cors(state, &self.bucket).await {
            Ok(Some(cors)) => cors,
            Ok(None) | Err(StoreError::NoSuchBucket) => return,
            Err(e) => {
                tracing::debug!(error = %crate::store::Chain(&e), "reading the bucket's CORS rules failed");
                return;
            }
        };
        let rule = self.method.and_then(|m| cors_rules::find(&cors, self.origin.as_bytes(), m, &[]));
        match rule {
            Some(rule) => add_rule_headers(response.headers_mut(), rule, &self.origin, &[]),
            None => {
                response.headers_mut().append(header::VARY, HeaderValue::from_static(VARY));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().method(method).uri(path).header("host", "localhost:9000");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("a valid request")
    }

    #[test]
    fn only_requests_with_an_origin_to_a_bucket_need_cors_headers() {
        let of = |method, path, headers: &[(&str, &str)]| Actual::of(&request(method, path, headers), None);
        assert!(of("GET", "/b/k", &[]).is_none(), "no Origin: nothing to read");
        assert!(of("GET", "/b/k", &[("origin", "")]).is_none(), "an empty Origin");
        assert!(of("OPTIONS", "/b/k", &[("origin", "https://a")]).is_none(), "a preflight answers itself");
        assert!(of("GET", "/", &[("origin", "https://a")]).is_none(), "no bucket");
        let actual = of("PATCH", "/b/k", &[("origin", "https://a")]).expect("a bucket and an origin");
        assert_eq!((actual.bucket.as_ref(), actual.method), ("b", None));
        let actual = of("PUT", "/b", &[("origin", "https://a")]).expect("a bucket and an origin");
        assert_eq!(actual.method, Some(CorsMethod::Put));
    }

    #[test]
    fn requested_headers_are_trimmed_lowercased_and_capped() {
        let headers = |lines: &[&str]| {
            let mut map = HeaderMap::new();
            for line in lines {
                map.append(header::ACCESS_CONTROL_REQUEST_HEADERS, HeaderValue::from_str(line).expect("value"));
            }
            requested_headers(&map)
        };
        assert_eq!(headers(&[]), Some(vec![]));
        assert_eq!(
            headers(&["Content-Type ,X-Amz-Date", " , ", "x-amz-meta-A"]).map(|h| h.join(",")).as_deref(),
            Some("content-type,x-amz-date,x-amz-meta-a")
        );
        assert_eq!(headers(&["bad name"]), None, "not a header name");
        let names: Vec<String> = (0..=MAX_REQUESTED_HEADERS).map(|i| format!("h{i}")).collect();
        assert_eq!(headers(&[&names.join(",")]), None, "one name too many");
        assert_eq!(headers(&[&names[1..].join(",")]).map(|h| h.len()), Some(MAX_REQUESTED_HEADERS));
    }

    #[test]
    fn a_rule_answers_with_s3s_headers_in_s3s_order() {
        let rule = CorsRule {
            allowed_origins: vec!["https://*.example.com".into()],
            allowed_methods: vec![CorsMethod::Get, CorsMethod::Put],
            expose_headers: vec!["ETag".into()],
            max_age_seconds: Some(0),
            ..CorsRule::default()
        };
        let mut out = HeaderMap::new();
        let origin = HeaderValue::from_static("https://a.example.com");
        add_rule_headers(&mut out, &rule, &origin, &["content-type".to_string()]);
        let got: Vec<(&str, &str)> = out.iter().map(|(n, v)| (n.as_str(), v.to_str().unwrap_or("?"))).collect();
        assert_eq!(
            got,
            [
                ("access-control-allow-origin", "https://a.example.com"),
                ("access-control-allow-methods", "GET, PUT"),
                ("access-control-allow-headers", "content-type"),
                ("access-control-expose-headers", "ETag"),
                ("access-control-max-age", "0"),
                ("access-control-allow-credentials", "true"),
                ("vary", VARY),
            ]
        );
        let any = CorsRule { allowed_origins: vec!["https://x".into(), "*".into()], ..rule };
        let mut out = HeaderMap::new();
        add_rule_headers(&mut out, &any, &origin, &[]);
        assert_eq!(out.get(header::ACCESS_CONTROL_ALLOW_ORIGIN), Some(&HeaderValue::from_static("*")));
        assert!(!out.contains_key(header::ACCESS_CONTROL_ALLOW_CREDENTIALS), "no credentials with `*`");
        assert!(!out.contains_key(header::ACCESS_CONTROL_ALLOW_HEADERS), "none asked for");
    }
}
