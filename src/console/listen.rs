//! The console's accept loop: its own listener, TLS with the S3 listener's
//! certificate when that has one, one access line per request.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use http::{HeaderValue, Method, Request, Response};
use hyper::body::Incoming;
use tokio::net::TcpListener;

use super::{api, reply, static_files, Console};
use crate::access_log::{self, CountedBody, Facts, Finished};
use crate::http::body::{self, Body};
use crate::server::{accept_loop, request_id, Accept};
use crate::tls::server::ServerTls;

/// Serves the console until `shutdown` resolves, then lets requests in
/// flight finish (the S3 listener's accept loop, `server::accept_loop`).
pub async fn serve(
    listener: TcpListener,
    console: Arc<Console>,
    tls: Option<ServerTls>,
    shutdown: impl Future<Output = ()>,
) {
    let body_timeout = console.app.body_timeout;
    let handler = move |peer, req| handle(console.clone(), peer, req);
    accept_loop(listener, Accept { tls, body_timeout, name: "console" }, shutdown, handler).await;
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
