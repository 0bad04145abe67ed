//! A minimal S3 client for the benchmark: SigV4 header authentication built
//! from the server's own pure functions (`auth::sigv4`), over hyper's pooled
//! keep-alive HTTP/1.1 client with TCP_NODELAY.
//!
//! The path and query sent are exactly the strings that are signed: the path is
//! `UriEncode`d once (slashes kept) and the query is the canonical query itself,
//! so no re-encoding on either side can make them disagree.
//! Reference: <https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html>

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use time::macros::format_description;
use time::OffsetDateTime;

use super::body::ReqBody;
use crate::auth::sigv4;

const SERVICE: &str = "s3";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// Error documents and listings are small; a 1,000-key page is about 250 KiB.
pub const MAX_DOC: usize = 8 * 1024 * 1024;

/// Why one request failed. Counted and reported, never a panic.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op}: connection: {detail}")]
    Transport { op: &'static str, detail: String },
    #[error("{op}: HTTP {status} {code}")]
    Status { op: &'static str, status: u16, code: String },
    #[error("{op}: {detail}")]
    Invalid { op: &'static str, detail: String },
    #[error("endpoint: {0}")]
    Endpoint(String),
}

impl Error {
    pub fn invalid(op: &'static str, detail: impl Into<String>) -> Error {
        Error::Invalid { op, detail: detail.into() }
    }
}

/// One request before signing. Names of `headers` are lowercase.
pub struct Request {
    pub op: &'static str,
    pub method: Method,
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    pub headers: Vec<(&'static str, String)>,
    pub body: ReqBody,
}

impl Request {
    /// `bucket` and `key` are raw; the path is encoded here, once.
    pub fn new(op: &'static str, method: Method, bucket: &str, key: Option<&str>) -> Request {
        let mut path = format!("/{}", sigv4::uri_encode(bucket, true));
        if let Some(key) = key {
            path.push('/');
            path.push_str(&sigv4::uri_encode(key, false));
        }
        Request { op, method, path, query: Vec::new(), headers: Vec::new(), body: ReqBody::Empty }
    }

    pub fn query(mut self, name: &'static str, value: impl Into<String>) -> Request {
        self.query.push((name, value.into()));
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Request {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, body: ReqBody) -> Request {
        self.body = body;
        self
    }
}

pub struct S3 {
    http: Client<HttpConnector, ReqBody>,
    /// `http://host:port`, no trailing slash.
    base: String,
    host: String,
    access_key: String,
    secret_key: String,
    region: String,
    /// The signing key changes once a day; derive it once per date.
    key: Mutex<(String, [u8; 32])>,
}

impl S3 {
    pub fn new(endpoint: &str, access_key: &str, secret_key: &str, region: &str) -> Result<S3, Error> {
        let uri: http::Uri = endpoint.parse().map_err(|e| Error::Endpoint(format!("`{endpoint}`: {e}")))?;
        if uri.scheme_str() != Some("http") {
            return Err(Error::Endpoint(format!("`{endpoint}`: only http:// endpoints are supported")));
        }
        let host = uri.authority().map(|a| a.to_string()).ok_or_else(|| Error::Endpoint("no host".into()))?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(60)).build(connector);
        Ok(S3 {
            http,
            base: format!("http://{host}"),
            host,
            access_key: access_key.to_string(),
            secret_key: secret_key.to_string(),
            region: region.to_string(),
            key: Mutex::new((String::new(), [0; 32])),
        })
    }

    /// Signs and sends; any status comes back.
    pub async fn send(&self, req: Request) -> Result<Response<Incoming>, Error> {
        let op = req.op;
        let request = self.sign(req)?;
        self.http.request(request).await.map_err(|e| Error::Transport { op, detail: error_chain(&e) })
    }

    /// Sends and requires a 2xx; otherwise reads the error document's `<Code>`.
    pub async fn call(&self, req: Request) -> Result<Response<Incoming>, Error> {
        let op = req.op;
        let response = self.send(req).await?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let doc = read_doc(op, response.into_body()).await.unwrap_or_default();
        let code = super::xml::texts(&doc, "Code").next().unwrap_or_default();
        Err(Error::Status { op, status, code })
    }

    /// [`S3::call`], then the whole (small) body as text.
    pub async fn call_doc(&self, req: Request) -> Result<(HeaderMap, String), Error> {
        let op = req.op;
        let (parts, body) = self.call(req).await?.into_parts();
        Ok((parts.headers, read_doc(op, body).await?))
    }

    fn signing_key(&self, date: &str) -> [u8; 32] {
        let mut cache = self.key.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.0 != date {
            *cache = (date.to_string(), sigv4::signing_key(&self.secret_key, date, &self.region, SERVICE));
        }
        cache.1
    }

    /// The request as sent: every header it carries is signed.
    fn sign(&self, req: Request) -> Result<http::Request<ReqBody>, Error> {
        let op = req.op;
        let bad = |e: &dyn std::fmt::Display| Error::invalid(op, format!("building the request: {e}"));
        let amz_date = OffsetDateTime::now_utc()
            .format(format_description!("[year][month][day]T[hour][minute][second]Z"))
            .map_err(|e| bad(&e))?;
        let mut headers = HeaderMap::new();
        let fixed =
            [("host", self.host.as_str()), ("x-amz-content-sha256", UNSIGNED_PAYLOAD), ("x-amz-date", &amz_date)];
        for (name, value) in fixed.into_iter().chain(req.headers.iter().map(|(n, v)| (*n, v.as_str()))) {
            let value = HeaderValue::from_str(value).map_err(|e| bad(&e))?;
            headers.insert(HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(&e))?, value);
        }
        let query = sigv4::canonical_query(&req.query);
        let auth = self.authorization(&req, &query, &headers, &amz_date);
        headers.insert(http::header::AUTHORIZATION, HeaderValue::from_str(&auth).map_err(|e| bad(&e))?);
        if !matches!(req.method, Method::GET | Method::HEAD | Method::DELETE) || !req.body.is_empty() {
            headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(req.body.len()));
        }
        let uri = match query.is_empty() {
            true => format!("{}{}", self.base, req.path),
            false => format!("{}{}?{query}", self.base, req.path),
        };
        let mut request = http::Request::builder().method(req.method).uri(uri).body(req.body).map_err(|e| bad(&e))?;
        *request.headers_mut() = headers;
        Ok(request)
    }

    /// `AWS4-HMAC-SHA256 Credential=.., SignedHeaders=.., Signature=..` over all of `headers`.
    fn authorization(&self, req: &Request, query: &str, headers: &HeaderMap, amz_date: &str) -> String {
        let date = amz_date.get(..8).unwrap_or_default();
        let mut names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        let signed = names.join(";");
        let canonical_headers = sigv4::canonical_headers(headers, &names).unwrap_or_default();
        let method = req.method.as_str();
        let canonical =
            sigv4::canonical_request(method, &req.path, query, &canonical_headers, &signed, UNSIGNED_PAYLOAD);
        let scope = sigv4::scope(date, &self.region, SERVICE);
        let signature = sigv4::hmac_hex(&self.signing_key(date), &sigv4::string_to_sign(amz_date, &scope, &canonical));
        format!(
            "{} Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
            sigv4::ALGORITHM,
            self.access_key
        )
    }
}

/// Reads a whole small body (error documents, listings, multipart replies).
pub async fn read_doc(op: &'static str, body: Incoming) -> Result<String, Error> {
    let bytes: Bytes = Limited::new(body, MAX_DOC)
        .collect()
        .await
        .map_err(|e| Error::Transport { op, detail: format!("reading the reply: {e}") })?
        .to_bytes();
    String::from_utf8(bytes.to_vec()).map_err(|_| Error::invalid(op, "reply is not UTF-8"))
}

/// `Display` of an error and its sources: hyper's top-level messages are vague.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
