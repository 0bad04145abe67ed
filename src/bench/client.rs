//! A minimal S3 client for the benchmark: SigV4 header authentication built
//! from the server's own pure functions (`auth::sigv4`), over hyper's pooled
//! keep-alive HTTP/1.1 client with TCP_NODELAY, over TLS for `https://`
//! endpoints (`tls::client` says which certificates are trusted).
//!
//! The path and query sent are exactly the strings that are signed: the path is
//! `UriEncode`d once (slashes kept) and the query is the canonical query itself,
//! so no re-encoding on either side can make them disagree.
//!
//! Uploads that must wait for `100 Continue` before their body (instant
//! upload) go over a raw connection instead: hyper's client sends the body at
//! once whatever `Expect` says.
//! Reference: <https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html>

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::ServerName;
use time::macros::format_description;
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::TlsConnector;

use super::body::ReqBody;
use crate::auth::sigv4;
use crate::tls::client::Trust;
use crate::tls::TlsError;

const SERVICE: &str = "s3";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// Error documents and listings are small; a 1,000-key page is about 250 KiB.
pub const MAX_DOC: usize = 8 * 1024 * 1024;

/// Why one request failed. Counted and reported, never a panic.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op}: connection: {detail}")]
    Transport { op: &'static str, detail: String },
    /// TLS refused the connection while it was being made (an untrusted
    /// certificate, no common protocol, an alert from the server): trying
    /// again cannot help. A connection lost during the handshake is
    /// `Transport`, and retried.
    #[error("{op}: TLS handshake: {detail}")]
    Handshake { op: &'static str, detail: String },
    #[error("{op}: HTTP {status} {code}")]
    Status { op: &'static str, status: u16, code: String },
    #[error("{op}: {detail}")]
    Invalid { op: &'static str, detail: String },
    #[error("endpoint: {0}")]
    Endpoint(String),
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
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
    http: Client<HttpsConnector<HttpConnector>, ReqBody>,
    /// `http(s)://host:port`, no trailing slash.
    base: String,
    /// For raw connections to an `https://` endpoint: the TLS client and the
    /// name the server's certificate must carry.
    raw_tls: Option<(TlsConnector, ServerName<'static>)>,
    host: String,
    access_key: String,
    secret_key: String,
    region: String,
    /// The signing key changes once a day; derive it once per date.
    key: Mutex<(String, [u8; 32])>,
}

impl S3 {
    /// A client of `endpoint` (`http://` or `https://`); an `https://` one
    /// trusts the CAs of `AWS_CA_BUNDLE`, else the system's.
    pub fn new(endpoint: &str, access_key: &str, secret_key: &str, region: &str) -> Result<S3, Error> {
        S3::with_trust(endpoint, access_key, secret_key, region, &Trust::Roots)
    }

    /// A client of `endpoint` whose TLS, if `https://`, accepts `trust`.
    pub fn with_trust(
        endpoint: &str,
        access_key: &str,
        secret_key: &str,
        region: &str,
        trust: &Trust,
    ) -> Result<S3, Error> {
        let uri: http::Uri = endpoint.parse().map_err(|e| Error::Endpoint(format!("`{endpoint}`: {e}")))?;
        let tls = match uri.scheme_str() {
            Some("http") => None,
            Some("https") => Some(crate::tls::client::config(trust)?),
            _ => {
                return Err(Error::Endpoint(format!("`{endpoint}`: only http:// and https:// endpoints are supported")))
            }
        };
        let host = uri.authority().map(|a| a.to_string()).ok_or_else(|| Error::Endpoint("no host".into()))?;
        let raw_tls = match &tls {
            Some(config) => Some((TlsConnector::from(Arc::new(config.clone())), server_name(&uri)?)),
            None => None,
        };
        let config = match tls {
            Some(config) => config,
            None => crate::tls::client::refusing()?,
        };
        Ok(S3 {
            http: pooled_client(config),
            base: format!("{}://{host}", if raw_tls.is_some() { "https" } else { "http" }),
            raw_tls,
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
        self.http.request(request).await.map_err(|e| {
            let detail = error_chain(&e);
            match e.is_connect() && is_tls_failure(&e) {
                true => Error::Handshake { op, detail },
                false => Error::Transport { op, detail },
            }
        })
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
        let (headers, target) = self.signed_head(&req)?;
        let uri = format!("{}{target}", self.base);
        let request = http::Request::builder().method(req.method).uri(uri).body(req.body);
        let mut request = request.map_err(|e| Error::invalid(req.op, format!("building the request: {e}")))?;
        *request.headers_mut() = headers;
        Ok(request)
    }

    /// The head of `req`: every header it carries, signed, then
    /// `Authorization` and `Content-Length`; and the request target (path and
    /// query) exactly as signed. Shared by hyper's requests and raw ones.
    fn signed_head(&self, req: &Request) -> Result<(HeaderMap, String), Error> {
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
        let auth = self.authorization(req, &query, &headers, &amz_date);
        headers.insert(http::header::AUTHORIZATION, HeaderValue::from_str(&auth).map_err(|e| bad(&e))?);
        if !matches!(req.method, Method::GET | Method::HEAD | Method::DELETE) || !req.body.is_empty() {
            headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(req.body.len()));
        }
        let target = match query.is_empty() {
            true => req.path.clone(),
            false => format!("{}?{query}", req.path),
        };
        Ok((headers, target))
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

/// hyper's pooled keep-alive client with TCP_NODELAY, speaking TLS with
/// `tls` to `https://` URIs (HTTP/1.1 only, as the server).
fn pooled_client(tls: rustls::ClientConfig) -> Client<HttpsConnector<HttpConnector>, ReqBody> {
    let mut tcp = HttpConnector::new();
    tcp.set_nodelay(true);
    // `https://` URIs pass through it to the TLS layer above.
    tcp.enforce_http(false);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp);
    Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(60)).build(connector)
}

/// The name the certificate of `uri`'s host must carry.
fn server_name(uri: &http::Uri) -> Result<ServerName<'static>, Error> {
    let host = uri.host().ok_or_else(|| Error::Endpoint("no host".into()))?;
    Ok(crate::tls::client::server_name(host)?)
}

/// A reply read off a raw connection by [`S3::send_expecting_continue`].
#[derive(Debug)]
pub struct RawReply {
    pub status: u16,
    pub headers: HeaderMap,
    /// Whether the server asked for the body with `100 Continue` (it was then sent).
    pub continued: bool,
    /// The reply's body, when it has a `Content-Length` (an error document).
    pub body: String,
}

impl S3 {
    /// Sends `req` signed with `Expect: 100-continue` on a fresh connection and
    /// waits for the server's word before the body, as hyper's client does not:
    /// after `100 Continue` the body follows; a final status ends the request
    /// with the body never sent. The connection is then dropped, since the
    /// server cannot know whether a body still follows on it.
    pub async fn send_expecting_continue(&self, req: Request) -> Result<RawReply, Error> {
        let op = req.op;
        let req = req.header("expect", "100-continue");
        let (headers, target) = self.signed_head(&req)?;
        let conn = RawConn::open(op, &self.host, self.raw_tls.as_ref()).await?;
        conn.put_expecting_continue(&raw_head(req.method.as_str(), &target, &headers), req.body).await
    }
}

/// How long a PUT waits for `100 Continue` before sending its body anyway
/// (botocore waits one second too).
const CONTINUE_WAIT: Duration = Duration::from_secs(1);
/// A response head larger than this is refused.
const MAX_HEAD: usize = 64 * 1024;
/// How long to wait for a response head: a server that never answers is a
/// failure, not a hung benchmark.
const HEAD_WAIT: Duration = Duration::from_secs(60);

/// `METHOD target HTTP/1.1`, the headers, the blank line.
fn raw_head(method: &str, target: &str, headers: &HeaderMap) -> Vec<u8> {
    let mut head = format!("{method} {target} HTTP/1.1\r\n").into_bytes();
    for (name, value) in headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// A byte stream a raw connection runs over: TCP, or TLS over TCP.
trait RawStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send> RawStream for S {}

/// One raw HTTP/1.1 connection, and what was read off it but not used yet.
struct RawConn {
    op: &'static str,
    stream: Box<dyn RawStream>,
    buf: Vec<u8>,
}

impl RawConn {
    /// Connects to `host`, with a TLS handshake when `tls` is given.
    async fn open(
        op: &'static str,
        host: &str,
        tls: Option<&(TlsConnector, ServerName<'static>)>,
    ) -> Result<RawConn, Error> {
        let tcp = tokio::net::TcpStream::connect(host).await.map_err(|e| transport(op, "connecting", &e))?;
        tcp.set_nodelay(true).map_err(|e| transport(op, "TCP_NODELAY", &e))?;
        let stream: Box<dyn RawStream> = match tls {
            None => Box::new(tcp),
            Some((connector, name)) => {
                let handshake = connector.connect(name.clone(), tcp).await.map_err(|e| match is_tls_failure(&e) {
                    true => Error::Handshake { op, detail: error_chain(&e) },
                    false => transport(op, "TLS handshake", &e),
                });
                Box::new(handshake?)
            }
        };
        Ok(RawConn { op, stream, buf: Vec::new() })
    }

    /// Sends `head`, then `body` once the server answers `100 Continue`
    /// (or stays silent for [`CONTINUE_WAIT`]), and reads the final reply.
    async fn put_expecting_continue(mut self, head: &[u8], body: ReqBody) -> Result<RawReply, Error> {
        self.write(head).await?;
        // A server silent for a while gets the body anyway (RFC 9110 section
        // 10.1.1): some never send 100 Continue. `read_head` is cancel-safe.
        let (mut status, mut headers) = match tokio::time::timeout(CONTINUE_WAIT, self.read_head()).await {
            Ok(head) => head?,
            Err(_) => (100, HeaderMap::new()),
        };
        let continued = status == 100;
        if continued {
            self.write_body(body).await?;
            while status == 100 {
                (status, headers) = self.read_head().await?;
            }
        }
        let body = self.read_body(&headers).await?;
        Ok(RawReply { status, headers, continued, body })
    }

    /// Writes `bytes` and flushes them. The flush matters over TLS: when the
    /// socket is full, the TLS stream takes the last bytes into its own
    /// buffer and reports them written; unflushed, they stay there while
    /// this side waits for a reply and the server for the end of the body.
    async fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let sent = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        sent.await.map_err(|e| transport(self.op, "sending", &e))
    }

    /// The body, frame by frame: the zero-copy slices of the pattern.
    async fn write_body(&mut self, mut body: ReqBody) -> Result<(), Error> {
        while let Some(frame) = body.frame().await {
            let frame = match frame {
                Ok(frame) => frame,
                Err(never) => match never {},
            };
            if let Ok(data) = frame.into_data() {
                self.write(&data).await?;
            }
        }
        Ok(())
    }

    /// Reads up to the blank line that ends a response head, and parses it.
    async fn read_head(&mut self) -> Result<(u16, HeaderMap), Error> {
        let op = self.op;
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..end + 4).collect();
                return parse_head(op, head.get(..end).unwrap_or_default());
            }
            if self.buf.len() > MAX_HEAD {
                return Err(Error::invalid(op, format!("response head over {MAX_HEAD} bytes")));
            }
            self.buf.reserve(4096);
            let read = tokio::time::timeout(HEAD_WAIT, self.stream.read_buf(&mut self.buf)).await;
            match read {
                Err(_) => return Err(Error::Transport { op, detail: format!("no response in {HEAD_WAIT:?}") }),
                Ok(Err(e)) => return Err(transport(op, "reading the response", &e)),
                Ok(Ok(0)) => return Err(Error::Transport { op, detail: "closed before a response".into() }),
                Ok(Ok(_)) => {}
            }
        }
    }

    /// The body of a reply with a `Content-Length` (up to [`MAX_DOC`]); none otherwise.
    async fn read_body(&mut self, headers: &HeaderMap) -> Result<String, Error> {
        let op = self.op;
        let length = headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok());
        let length: usize = length.and_then(|v| v.trim().parse().ok()).unwrap_or(0);
        if length > MAX_DOC {
            return Err(Error::invalid(op, format!("a {length}-byte reply body")));
        }
        while self.buf.len() < length {
            self.buf.reserve(length - self.buf.len());
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) => return Err(Error::Transport { op, detail: "closed in the reply body".into() }),
                Ok(_) => {}
                Err(e) => return Err(transport(op, "reading the reply body", &e)),
            }
        }
        let body = self.buf.get(..length).unwrap_or_default();
        String::from_utf8(body.to_vec()).map_err(|_| Error::invalid(op, "reply is not UTF-8"))
    }
}

fn transport(op: &'static str, what: &str, e: &std::io::Error) -> Error {
    Error::Transport { op, detail: format!("{what}: {e}") }
}

/// `HTTP/1.x NNN reason`, then `name: value` lines (RFC 9112 sections 4 and 5).
fn parse_head(op: &'static str, head: &[u8]) -> Result<(u16, HeaderMap), Error> {
    let bad = |what: &str| Error::invalid(op, format!("malformed response head: {what}"));
    let text = std::str::from_utf8(head).map_err(|_| bad("not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let mut status_line = lines.next().unwrap_or_default().splitn(3, ' ');
    if !status_line.next().is_some_and(|version| version.starts_with("HTTP/1.")) {
        return Err(bad("no HTTP/1.x status line"));
    }
    let status = status_line.next().and_then(|code| code.parse::<u16>().ok());
    let status = status.filter(|code| (100..600).contains(code)).ok_or_else(|| bad("no status code"))?;
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').ok_or_else(|| bad("a header line without a colon"))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad("a header name"))?;
        let value = HeaderValue::from_str(value.trim()).map_err(|_| bad("a header value"))?;
        headers.append(name, value);
    }
    Ok((status, headers))
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

/// Whether `e` or one of its sources is a TLS failure. An `io::Error`
/// (tokio-rustls wraps rustls's error in one, hyper-rustls that in
/// another) is looked inside, since its `source` skips what it wraps.
fn is_tls_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    if e.is::<rustls::Error>() {
        return true;
    }
    let next = match e.downcast_ref::<std::io::Error>() {
        Some(io) => io.get_ref().map(|inner| inner as &(dyn std::error::Error + 'static)),
        None => e.source(),
    };
    next.is_some_and(is_tls_failure)
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::bench::pattern::{Content, Pattern};

    #[test]
    fn parses_a_response_head() {
        let head = b"HTTP/1.1 200 OK\r\nETag: \"abc\"\r\nx-a:  b \r\nx-a: c";
        let (status, headers) = parse_head("t", head).unwrap();
        assert_eq!(status, 200);
        assert_eq!(headers.get("etag").unwrap(), "\"abc\"");
        assert_eq!(headers.get_all("x-a").iter().collect::<Vec<_>>(), ["b", "c"]);
        assert_eq!(parse_head("t", b"HTTP/1.1 100 Continue").unwrap().0, 100);
        assert!(parse_head("t", b"SPDY 200 OK").is_err());
        assert!(parse_head("t", b"HTTP/1.1 20x OK").is_err());
        assert!(parse_head("t", b"HTTP/1.1 200 OK\r\nno colon").is_err());
    }

    /// A one-request server: reads the head, then either answers at once
    /// (`instant`) or sends `100 Continue`, reads `len` body bytes and answers.
    async fn fake_server(instant: bool, len: usize) -> (String, tokio::task::JoinHandle<(String, usize)>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move { serve_one(listener.accept().await.unwrap().0, instant, len).await });
        (host, task)
    }

    /// [`fake_server`]'s side of one connection: the request head it read
    /// and how many body bytes came.
    async fn serve_one(mut s: impl AsyncRead + AsyncWrite + Unpin, instant: bool, len: usize) -> (String, usize) {
        let mut buf = Vec::new();
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut chunk = [0u8; 1024];
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the client closed before the end of the head");
            buf.extend_from_slice(&chunk[..n]);
        }
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8(buf[..end].to_vec()).unwrap();
        let mut got = buf.len() - end;
        if !instant {
            s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.unwrap();
            s.flush().await.unwrap();
            let mut chunk = vec![0u8; 65536];
            while got < len {
                let n = s.read(&mut chunk).await.unwrap();
                assert!(n > 0, "the client closed after {got} body bytes of {len}");
                got += n;
            }
        }
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\netag: \"x\"\r\n\r\nbody").await.unwrap();
        s.flush().await.unwrap();
        (head, got)
    }

    async fn exchange(instant: bool) -> (RawReply, String, usize) {
        let len = 3 * 256 * 1024 + 5;
        let (host, server) = fake_server(instant, len).await;
        let s3 = S3::new(&format!("http://{host}"), "AK", "SK", "us-east-1").unwrap();
        let pattern = Arc::new(Pattern::new(1));
        let body = ReqBody::pattern(pattern, Content { phase: 3, len: len as u64 }, 0, len as u64);
        let req = Request::new("PutObject", Method::PUT, "b", Some("k")).body(body);
        let reply = s3.send_expecting_continue(req).await.unwrap();
        let (head, got) = server.await.unwrap();
        (reply, head, got)
    }

    #[tokio::test]
    async fn the_body_follows_100_continue_only() {
        let (reply, head, got) = exchange(false).await;
        assert!(head.starts_with("PUT /b/k HTTP/1.1\r\n"), "{head}");
        assert!(head.contains("expect: 100-continue\r\n") && head.contains("content-length: 786437\r\n"), "{head}");
        assert!(head.contains("SignedHeaders=expect;host;x-amz-content-sha256;x-amz-date,"), "{head}");
        assert_eq!((reply.status, reply.continued, got, reply.body.as_str()), (200, true, 786_437, "body"));
        assert_eq!(reply.headers.get("etag").unwrap(), "\"x\"");
        let (reply, _, got) = exchange(true).await;
        assert_eq!((reply.status, reply.continued, got, reply.body.as_str()), (200, false, 0, "body"));
    }

    /// A body sent over TLS through a transport that takes 4 KiB at a time
    /// (a socket that is full: the server reads slower than the client
    /// writes) reaches the server whole. The TLS stream keeps what the
    /// socket did not take; without a flush its last bytes never left, and
    /// `tessera cp` waited for a reply while the server waited for them
    /// (RequestTimeout after `--body-timeout`).
    #[tokio::test(start_paused = true)]
    async fn a_tls_body_reaches_the_server_whole_through_a_full_socket() {
        let (server, der) = tls_server();
        let client = crate::tls::client::config(&Trust::Pinned(der)).unwrap();
        let (near, far) = tokio::io::duplex(4096);
        let len = 1024 * 1024 + 5;
        let server = tokio::spawn(async move {
            let tls = tokio_rustls::TlsAcceptor::from(Arc::new(server)).accept(far).await.unwrap();
            serve_one(tls, false, len).await
        });
        let name = ServerName::try_from("localhost").unwrap();
        let tls = TlsConnector::from(Arc::new(client)).connect(name, near).await.unwrap();
        let conn = RawConn { op: "PutObject", stream: Box::new(tls), buf: Vec::new() };
        let body = ReqBody::pattern(Arc::new(Pattern::new(1)), Content { phase: 3, len: len as u64 }, 0, len as u64);
        let head = b"PUT /b/k HTTP/1.1\r\nexpect: 100-continue\r\n\r\n";
        let reply = tokio::time::timeout(Duration::from_secs(20), conn.put_expecting_continue(head, body)).await;
        let reply = reply.expect("the server answers once the whole body is there").unwrap();
        assert_eq!((reply.status, reply.continued, reply.body.as_str()), (200, true, "body"));
        assert_eq!(server.await.unwrap().1, len);
    }

    /// A TLS server config for `localhost` with a fresh self-signed
    /// certificate, and that certificate.
    fn tls_server() -> (rustls::ServerConfig, rustls_pki_types::CertificateDer<'static>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap().self_signed(&key).unwrap();
        let der = cert.der().clone();
        let secret = rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![der.clone()], secret)
            .unwrap();
        (config, der)
    }

    /// Opens a raw TLS connection to a listener whose one connection is
    /// handled by `serve`; the error, if any.
    async fn open_tls(
        pinned: rustls_pki_types::CertificateDer<'static>,
        serve: impl FnOnce(tokio::net::TcpStream) + Send + 'static,
    ) -> Option<Error> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { serve(listener.accept().await.unwrap().0) });
        let client = crate::tls::client::config(&Trust::Pinned(pinned)).unwrap();
        let tls = (TlsConnector::from(Arc::new(client)), ServerName::try_from("localhost").unwrap());
        RawConn::open("PutObject", &host, Some(&tls)).await.err()
    }

    /// A certificate the client does not trust is a handshake failure (not
    /// retried); a connection the server drops during the handshake is a
    /// transport error (retried).
    #[tokio::test]
    async fn only_a_refused_tls_handshake_is_final() {
        let (server, _) = tls_server();
        let (_, other) = tls_server();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let refused = open_tls(other, move |tcp| {
            tokio::spawn(async move { acceptor.accept(tcp).await.err() });
        });
        let refused = refused.await.expect("an untrusted certificate fails");
        assert!(matches!(refused, Error::Handshake { .. }), "{refused}");
        assert!(refused.to_string().contains("certificate"), "{refused}");

        let (_, der) = tls_server();
        let dropped = open_tls(der, drop).await.expect("a dropped connection fails");
        assert!(matches!(dropped, Error::Transport { .. }), "{dropped}");
    }
}
