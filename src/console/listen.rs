//! The console's accept loop: its own listener, TLS with the S3 listener's
//! certificate when that has one, one access line per request.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderValue, Method, Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

use super::{api, reply, static_files, Console};
use crate::access_log::{self, CountedBody, Facts, Finished};
use crate::http::body::{self, Body};
use crate::tls::server::ServerTls;

/// How long a client may take to send a request head (and its TLS handshake).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long requests in flight may take after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the console until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    console: Arc<Console>,
    tls: Option<ServerTls>,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(connection(stream, peer, console.clone(), tls.clone(), graceful.watcher()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "console: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("console requests still running after the drain timeout");
    }
}

async fn connection(tcp: TcpStream, peer: SocketAddr, console: Arc<Console>, tls: Option<ServerTls>, watcher: Watcher) {
    let served = match tls {
        None => serve_http(tcp, peer, console, watcher).await,
        Some(tls) => match tls.accept(tcp, HEADER_READ_TIMEOUT, |tcp| tcp).await {
            Ok(stream) => serve_http(stream, peer, console, watcher).await,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "console: TLS handshake failed");
                return;
            }
        },
    };
    if let Err(e) = served {
        tracing::debug!(error = %e, "console connection ended with an error");
    }
}

async fn serve_http<S>(stream: S, peer: SocketAddr, console: Arc<Console>, watcher: Watcher) -> hyper::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| handle(console.clone(), peer, req));
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    watcher.watch(conn).await
}

/// A console request's body, its bytes counted for the access line.
pub type RequestBody = CountedBody<Incoming>;

/// One request: routed, answered, given the security headers, logged.
async fn handle(console: Arc<Console>, peer: SocketAddr, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let (started, in_flight) = (Instant::now(), console.app.metrics.started());
    let request_id = request_id();
    let received = Arc::new(AtomicU64::new(0));
    let req = req.map(|body| CountedBody::new(body, received.clone()));
    let is_api = req.uri().path().starts_with("/api/");
    let mut facts = Facts::default();
    let mut response = route(&console, req, &mut facts).await;
    let headers = response.headers_mut();
    headers.insert("content-security-policy", console.csp.clone());
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    let cache = if is_api { "no-store" } else { "no-cache" };
    headers.insert("cache-control", HeaderValue::from_static(cache));
    if let Ok(id) = request_id.parse() {
        headers.insert("x-request-id", id);
    }
    headers.insert("server", HeaderValue::from_static("Tessera"));
    let status = response.status().as_u16();
    let metrics = console.app.metrics.clone();
    let finished = Finished { request_id, peer, facts, status, received, started, metrics, in_flight };
    Ok(access_log::logged(response, finished))
}

async fn route(console: &Console, req: Request<RequestBody>, facts: &mut Facts) -> Response<Body> {
    let path = req.uri().path();
    if path.starts_with("/api/") {
        return api::handle(console, req, facts).await;
    }
    facts.op = Some("ConsoleAsset");
    let file = match path {
        "/" | "/index.html" => Some("index.html"),
        _ => path.strip_prefix("/assets/"),
    };
    let head = req.method() == Method::HEAD;
    match (req.method() == Method::GET || head, file.and_then(|f| static_files::get(f).map(|b| (f, b)))) {
        (true, Some((name, bytes))) => {
            let content_type = static_files::content_type(name);
            let len = bytes.len();
            let body = if head { body::empty() } else { body::full(bytes) };
            reply::with_type(http::StatusCode::OK, content_type, body, Some(len))
        }
        (false, Some(_)) => reply::text(http::StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
        (_, None) => reply::text(http::StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn request_id() -> String {
    let mut bytes = [0u8; 8];
    let _ = getrandom::getrandom(&mut bytes);
    hex::encode_upper(bytes)
}
