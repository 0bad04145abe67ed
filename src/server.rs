//! The accept loop, graceful shutdown, the per-request span and id, and the one
//! place where an [`S3Error`] becomes S3's XML error response.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::{Method, Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};

use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tracing::Instrument;

use crate::access_log::{self, CountedBody, Facts, Finished};
use crate::auth::verify::{is_unsigned, verify, AuthContext, VerifiedRequest};
use crate::http::body::{self, Body};
use crate::http::route::{route, virtual_host_bucket};
use crate::http::send_deadline::SendDeadline;
use crate::s3::admin;
use crate::s3::cors;
use crate::s3::error::{S3Error, S3ErrorCode, S3Result};
use crate::s3::probes::{self, probe_op};
use crate::s3::xml::XmlWriter;
use crate::s3::{dispatch, AppState, Principal, S3Request};
use crate::store::users::UserRecord;
use crate::tls::server::ServerTls;

/// How long requests in flight may take to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client may take to send a request head, and on a TLS
/// connection its handshake too.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The kernel send buffer of a connection (Linux doubles it for bookkeeping).
/// Left to autotuning, a client that asks for a large object and does not
/// read gets up to 4 MiB (`net.ipv4.tcp_wmem`) queued in the server's kernel:
/// 600 of them put the machine's TCP memory past `net.ipv4.tcp_mem`'s
/// pressure mark, which slows every connection. Fixed at this size, the
/// same 600 hold a third as much; docs/reliability.md has the cost.
const SEND_BUFFER: usize = 512 * 1024;

/// Serves S3 until `shutdown` resolves, then stops accepting and lets
/// requests in flight finish. With `tls`, every connection is TLS
/// (`--tls-cert`).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    tls: Option<ServerTls>,
    shutdown: impl Future<Output = ()>,
) {
    let body_timeout = state.body_timeout;
    let handler = move |peer, req| handle(state.clone(), peer, req);
    accept_loop(listener, Accept { tls, body_timeout, name: "S3" }, shutdown, handler).await;
}

/// How a listener's connections are accepted.
pub struct Accept {
    /// TLS on every connection, or plain HTTP.
    pub tls: Option<ServerTls>,
    /// How long a client may leave a response unread (`--body-timeout`).
    pub body_timeout: Duration,
    /// The listener's name in log lines.
    pub name: &'static str,
}

/// The accept loop of every listener (S3 and the console): each connection
/// in its own task, served by `handler`, until `shutdown` resolves; then it
/// stops accepting and lets requests in flight finish.
pub async fn accept_loop<H, F>(listener: TcpListener, accept: Accept, shutdown: impl Future<Output = ()>, handler: H)
where
    H: Fn(SocketAddr, Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<Body>, Infallible>> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // A 4 KiB response must not wait for the client's delayed ACK.
                    let _ = stream.set_nodelay(true);
                    let _ = socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER);
                    let (tls, limit, watcher) = (accept.tls.clone(), accept.body_timeout, graceful.watcher());
                    tokio::spawn(connection(stream, peer, (tls, limit), watcher, handler.clone()));
                }
                Err(e) => {
                    tracing::warn!(listener = accept.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!(listener = accept.name, "requests still running after the drain timeout");
    }
}

/// One connection, in its own task: the TLS handshake (so a slow one never
/// holds up the accept loop), then HTTP/1.1. The send deadline sits on the
/// socket, under TLS: what it watches is whether the client takes bytes off
/// the wire, which only the socket shows (rustls buffers plaintext and would
/// report a stalled client late), and it then covers every byte TLS writes
/// too, handshake and alerts included.
async fn connection<H, F>(
    tcp: TcpStream,
    peer: SocketAddr,
    (tls, limit): (Option<ServerTls>, Duration),
    watcher: Watcher,
    handler: H,
) where
    H: Fn(SocketAddr, Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Result<Response<Body>, Infallible>> + Send + 'static,
{
    let with_deadline = move |tcp| SendDeadline::new(tcp, limit);
    let served = match tls {
        None => serve_http(with_deadline(tcp), peer, watcher, handler).await,
        Some(tls) => match tls.accept(tcp, HEADER_READ_TIMEOUT, with_deadline).await {
            Ok(stream) => serve_http(stream, peer, watcher, handler).await,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
        },
    };
    if let Err(e) = served {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// HTTP/1.1 on one connection, plain or TLS, until it closes or a graceful
/// shutdown has let its request in flight finish.
async fn serve_http<S, H, F>(stream: S, peer: SocketAddr, watcher: Watcher, handler: H) -> hyper::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(SocketAddr, Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Result<Response<Body>, Infallible>> + Send + 'static,
{
    let service = service_fn(move |req| handler(peer, req));
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    watcher.watch(conn).await
}

async fn handle(state: Arc<AppState>, peer: SocketAddr, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let (started, in_flight) = (Instant::now(), state.metrics.started());
    let request_id = request_id();
    let span = tracing::info_span!(
        "request",
        id = %request_id,
        method = %req.method(),
        path = %req.uri().path(),
        op = tracing::field::Empty
    );
    let is_head = req.method() == Method::HEAD;
    let is_preflight = req.method() == Method::OPTIONS;
    let cors = cors::Answer::of(&req, &state);
    let resource = req.uri().path().to_string();
    let close_after = empty_body_expecting_continue(&req);
    let has_body = announces_body(&req);
    let received = Arc::new(AtomicU64::new(0));
    let mut facts = Facts::default();
    let mut response = match process(&state, req, &mut facts, received.clone()).instrument(span.clone()).await {
        Ok(mut response) => {
            facts.learn(response.extensions_mut().remove());
            response
        }
        Err(e) => {
            facts.code = Some(e.code.as_str());
            span.in_scope(|| error_response(&e, &resource, &request_id, is_head))
        }
    };
    if let Some(cors) = cors {
        cors.add_headers(&state, &mut response).await;
    }
    // An error may come before the body was read (or, with `Expect:
    // 100-continue`, before the client sent it), and a preflight never reads
    // one: closing the connection leaves no half-sent body for the next
    // request on it to trip over.
    let close_after = close_after || (has_body && (response.status().as_u16() >= 400 || is_preflight));
    if let Ok(id) = request_id.parse() {
        response.headers_mut().insert("x-amz-request-id", id);
    }
    response.headers_mut().insert("server", http::HeaderValue::from_static("Tessera"));
    if close_after {
        response.headers_mut().insert("connection", http::HeaderValue::from_static("close"));
    }
    let status = response.status().as_u16();
    let metrics = state.metrics.clone();
    let finished = Finished { request_id, peer, facts, status, received, started, metrics, in_flight };
    Ok(access_log::logged(response, finished))
}

/// `Expect: 100-continue` with an empty body: hyper rightly answers without a
/// `100 Continue`, but botocore then misreads the next response on the same
/// connection (boto/botocore#3755, client-pitfalls.md item 13) and stalls until the
/// idle timeout. Closing that connection makes the client open a fresh one.
fn empty_body_expecting_continue(req: &Request<Incoming>) -> bool {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
        && header("content-length").is_some_and(|v| v.trim() == "0")
}

/// Whether the request says a body follows (a non-zero length, or chunked).
fn announces_body(req: &Request<Incoming>) -> bool {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    header("transfer-encoding").is_some() || header("content-length").is_some_and(|v| v.trim() != "0")
}

/// Authenticates from the headers alone, before any body byte is read: with
/// `Expect: 100-continue`, hyper sends `100 Continue` only when the handler
/// starts reading the body, so a rejected client never uploads it.
async fn process(
    state: &AppState,
    req: Request<Incoming>,
    facts: &mut Facts,
    received: Arc<AtomicU64>,
) -> S3Result<Response<Body>> {
    let (parts, body) = req.into_parts();
    let host = parts.headers.get("host").and_then(|h| h.to_str().ok());
    let virtual_bucket = virtual_host_bucket(host, state.domain.as_deref());
    if parts.method == Method::OPTIONS {
        facts.op = Some(cors::PREFLIGHT_OP);
        return cors::preflight(state, &parts).await;
    }
    if let Some(op) = probe_op(&parts).filter(|_| virtual_bucket.is_none()) {
        facts.op = Some(op);
        return probes::answer(state, &parts, op).await;
    }
    let anonymous = is_unsigned(&parts);
    let (auth, user) = match anonymous {
        true => (VerifiedRequest::anonymous(), None),
        false => authenticate(state, &parts, virtual_bucket.as_deref()).await?,
    };
    let principal = match (auth.access_key == state.access_key, user) {
        _ if anonymous => Principal::Anonymous,
        (true, _) => Principal::Root,
        (false, Some(user)) if user.access_key == auth.access_key => {
            Principal::User { name: user.name, canonical_id: user.canonical_id }
        }
        (false, _) => return Err(S3Error::new(S3ErrorCode::InvalidAccessKeyId)),
    };
    facts.user = Some(principal.log_name().to_string());
    if virtual_bucket.is_none() && admin::is_admin_path(parts.uri.path()) {
        facts.op = Some("Admin");
        return admin::handle(state, &parts, &principal).await;
    }
    let has_copy_source = parts.headers.contains_key("x-amz-copy-source");
    let route =
        route(&parts.method, host, parts.uri.path(), parts.uri.query(), has_copy_source, state.domain.as_deref())?;
    facts.op = Some(route.op.name());
    tracing::Span::current().record("op", route.op.name());
    facts.bucket = route.bucket.as_deref().map(str::to_string);
    facts.key = route.key.as_deref().map(str::to_string);
    let body = CountedBody::new(body, received);
    let body = http_body_util::BodyExt::boxed(http_body_util::BodyExt::map_err(body, Into::into));
    dispatch(state, S3Request { parts, body, route, auth, principal, access: Default::default() }).await
}

/// Verifies a signed request, and finds the user whose secret signed it
/// (none for the root key): one database lookup per request.
///
/// `verify` asks for a secret synchronously, but a user's secret may have
/// to be awaited from a database over the network. So a first pass learns
/// which access key the request claims (everything `verify` checks before
/// it needs the secret, the format and the clock, answers the same on
/// both passes), the user is looked up, and a second pass verifies with
/// their secret. A root-signed request needs one pass.
async fn authenticate(
    state: &AppState,
    parts: &http::request::Parts,
    virtual_bucket: Option<&str>,
) -> S3Result<(VerifiedRequest, Option<UserRecord>)> {
    let claimed: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    let first_pass = |access_key: &str| match access_key == state.access_key {
        true => Some(state.secret_key.clone()),
        false => {
            *claimed.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(access_key.to_string());
            None
        }
    };
    let now = SystemTime::now();
    let ctx = AuthContext { region: &state.region, now, secret_for: &first_pass, virtual_bucket };
    let refused = match verify(parts, &ctx) {
        Ok(auth) => return Ok((auth, None)),
        Err(refused) => refused,
    };
    let Some(access_key) = claimed.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take() else {
        return Err(refused);
    };
    let user = state.store.lookup(|s| s.user_by_key(&access_key)).await.map_err(|e| {
        tracing::warn!(error = %crate::store::Chain(&e), "looking up an access key failed");
        S3Error::from(e)
    })?;
    let secret = user.as_ref().map(|user| (user.access_key.clone(), user.secret_key.clone()));
    let second_pass = |access_key: &str| match &secret {
        Some((key, secret)) if key == access_key => Some(secret.clone()),
        _ => None,
    };
    let ctx = AuthContext { region: &state.region, now, secret_for: &second_pass, virtual_bucket };
    Ok((verify(parts, &ctx)?, user))
}

/// S3's error document. HEAD answers carry no body.
/// Reference: <https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html>
fn error_response(e: &S3Error, resource: &str, request_id: &str, is_head: bool) -> Response<Body> {
    let status = e.code.status();
    // The one log line of a failed request (the caller enters its span, so
    // it carries the request id): server errors with their cause chain.
    match (status.is_server_error(), e.cause_chain()) {
        (true, Some(cause)) => tracing::error!(code = e.code.as_str(), %cause, "request failed"),
        (true, None) => tracing::warn!(code = e.code.as_str(), "request failed"),
        (false, _) => tracing::debug!(code = e.code.as_str(), "request refused"),
    }
    let mut w = XmlWriter::bare("Error");
    w.elem("Code", e.code.as_str()).elem("Message", &e.message);
    for (name, value) in &e.extra {
        w.elem(name, value);
    }
    w.elem("Resource", resource).elem("RequestId", request_id).elem("HostId", request_id);
    let doc = w.finish("Error");
    let mut builder = Response::builder().status(status);
    for (name, value) in &e.headers {
        builder = builder.header(*name, value);
    }
    let response = if is_head || e.code == S3ErrorCode::NotModified {
        builder.body(body::empty())
    } else {
        builder.header("content-type", "application/xml").body(body::full(doc))
    };
    response.unwrap_or_else(|_| Response::new(body::empty()))
}

/// A new request id: 16 hex digits, random.
pub fn request_id() -> String {
    let mut bytes = [0u8; 8];
    let _ = getrandom::getrandom(&mut bytes);
    hex::encode_upper(bytes)
}
