//! The unauthenticated endpoints under `/_tessera/` (no bucket name can
//! begin with `_`), for load balancers, orchestrators and Prometheus:
//!
//! - `GET /_tessera/health/live`: 200 while the process serves requests.
//! - `GET /_tessera/health/ready`: 200 when the store takes writes (the
//!   database open, the data folder writable, free space above the reserve),
//!   else 503 with the reason.
//! - `GET /_tessera/metrics`: Prometheus metrics (`metrics.rs`); with
//!   `--metrics-token`, only for `Authorization: Bearer <token>`.
//!
//! `HEAD` works as `GET` without the body. These and CORS preflights
//! (`cors.rs`) are the only requests answered without a signature besides
//! what ACLs and policies allow.

use http::request::Parts;
use http::{Method, Response, StatusCode};
use subtle::ConstantTimeEq;

use super::error::{S3Error, S3ErrorCode, S3Result};
use super::AppState;
use crate::http::body::{self, Body};

pub const LIVE_PATH: &str = "/_tessera/health/live";
pub const READY_PATH: &str = "/_tessera/health/ready";
pub const METRICS_PATH: &str = "/_tessera/metrics";
/// Prometheus's text format, as prometheus-client writes it.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The probe `parts` asks for, if it is one: its operation name (for the
/// access log and metrics).
pub fn probe_op(parts: &Parts) -> Option<&'static str> {
    if parts.method != Method::GET && parts.method != Method::HEAD {
        return None;
    }
    match parts.uri.path() {
        LIVE_PATH => Some("HealthLive"),
        READY_PATH => Some("HealthReady"),
        METRICS_PATH => Some("Metrics"),
        _ => None,
    }
}

/// Answers the probe `op` (see [`probe_op`]).
pub async fn answer(state: &AppState, parts: &Parts, op: &'static str) -> S3Result<Response<Body>> {
    let head = parts.method == Method::HEAD;
    match op {
        "HealthLive" => text(StatusCode::OK, "live\n".into(), "text/plain", head),
        "HealthReady" => {
            // Through a turn, as requests are: a crowd of probes while the
            // database is slow must not take a thread each.
            let why = state.store.run(|s| Ok::<_, S3Error>(s.not_ready())).await?;
            match why {
                None => text(StatusCode::OK, "ready\n".into(), "text/plain", head),
                Some(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n"), "text/plain", head),
            }
        }
        _ => {
            authorize_metrics(state, parts)?;
            let metrics = state.metrics.clone();
            let page = state.store.run(move |s| Ok::<_, S3Error>(metrics.render(s))).await?;
            text(StatusCode::OK, page, OPENMETRICS, head)
        }
    }
}

/// With `--metrics-token`, the request must carry `Authorization: Bearer
/// <token>` (compared in constant time).
fn authorize_metrics(state: &AppState, parts: &Parts) -> S3Result<()> {
    let Some(token) = &state.metrics_token else { return Ok(()) };
    let given = parts.headers.get("authorization").and_then(|v| v.to_str().ok());
    let bearer = given.and_then(|v| v.strip_prefix("Bearer ")).unwrap_or_default();
    match bool::from(bearer.as_bytes().ct_eq(token.as_bytes())) {
        true => Ok(()),
        false => Err(S3Error::with_message(S3ErrorCode::AccessDenied, "The metrics need the bearer token")),
    }
}

fn text(status: StatusCode, page: String, content_type: &str, head: bool) -> S3Result<Response<Body>> {
    let builder = Response::builder().status(status).header("content-type", content_type);
    let builder = builder.header("content-length", page.len()).header("cache-control", "no-store");
    let body = if head { body::empty() } else { body::full(page) };
    builder.body(body).map_err(S3Error::internal)
}
