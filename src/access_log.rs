//! One access line per request, and the request metrics, written when the
//! response body has been sent (or dropped, when the client went away), so
//! the bytes out and the duration are what really happened.
//!
//! ```text
//! INFO tessera::access: id=… client=127.0.0.1:50412 user=root op=PutObject bucket=photos key="cat.jpg"
//!      status=200 code=- bytes_in=52341 bytes_out=0 ms=3.1
//! ```
//!
//! The key is quoted and escaped (a key may hold spaces or control
//! characters); `-` stands for what is not known (a request refused before
//! it was routed). `bytes_in` is the request body bytes the server really
//! read (an aws-chunked body counts its chunk framing too; a body refused or
//! never asked for, as with an instant upload, counts 0, whatever its
//! `content-length` said); `code` is the S3 error code of a refused request.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::Response;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;

use crate::http::body::Body;
use crate::metrics::{InFlight, Metrics};

/// What the server learned about a request while answering it.
#[derive(Debug, Default)]
pub struct Facts {
    /// The operation, once routed (`-` before).
    pub op: Option<&'static str>,
    pub bucket: Option<String>,
    pub key: Option<String>,
    /// `root`, a user's name, or `anonymous`; empty when the signature failed.
    pub user: Option<String>,
    /// The S3 error code of a refused or failed request.
    pub code: Option<&'static str>,
}

/// Who and what a request turned out to be about when only its body told
/// (POST Object's form): put in the response's extensions by the handler.
#[derive(Clone)]
pub struct LearnedFromBody {
    pub user: String,
    pub key: String,
}

impl Facts {
    pub fn learn(&mut self, learned: Option<LearnedFromBody>) {
        if let Some(learned) = learned {
            (self.user, self.key) = (Some(learned.user), Some(learned.key));
        }
    }
}

/// Everything the access line needs once the body is done.
pub struct Finished {
    pub request_id: String,
    pub peer: SocketAddr,
    pub facts: Facts,
    pub status: u16,
    pub received: Arc<AtomicU64>,
    pub started: Instant,
    pub metrics: Arc<Metrics>,
    pub in_flight: InFlight,
}

/// A request body that counts the bytes read from it into `count`: what
/// the access line and the metrics report as received.
pub struct CountedBody<B> {
    inner: B,
    count: Arc<AtomicU64>,
}

impl<B> CountedBody<B> {
    pub fn new(inner: B, count: Arc<AtomicU64>) -> Self {
        CountedBody { inner, count }
    }
}

impl<B: http_body::Body<Data = Bytes> + Unpin> http_body::Body for CountedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.count.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// `response` with a body that writes the access line and the metrics when
/// it ends.
pub fn logged(response: Response<Body>, finished: Finished) -> Response<Body> {
    response.map(|inner| LoggedBody { inner, sent: 0, finished: Some(finished) }.boxed_unsync())
}

struct LoggedBody {
    inner: Body,
    sent: u64,
    finished: Option<Finished>,
}

impl http_body::Body for LoggedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.sent += data.len() as u64;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        if let Some(done) = self.finished.take() {
            write(done, self.sent);
        }
    }
}

fn write(done: Finished, sent: u64) {
    let elapsed = done.started.elapsed();
    let f = &done.facts;
    let op = f.op.unwrap_or("-");
    let received = done.received.load(Ordering::Relaxed);
    tracing::info!(
        target: "tessera::access",
        id = %done.request_id,
        client = %done.peer,
        user = %f.user.as_deref().unwrap_or("-"),
        op = %op,
        bucket = %f.bucket.as_deref().unwrap_or("-"),
        key = ?f.key.as_deref().unwrap_or(""),
        status = done.status,
        code = %f.code.unwrap_or("-"),
        bytes_in = received,
        bytes_out = sent,
        ms = (elapsed.as_secs_f64() * 1000.0 * 10.0).round() / 10.0,
    );
    done.metrics.ended(op, done.status, elapsed, received, sent);
    drop(done.in_flight);
}
