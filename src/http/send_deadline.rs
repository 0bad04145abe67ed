//! A connection whose writes may wait only so long for the client: a client
//! that stops reading a response (its receive window stays shut) keeps the
//! server's send pending. After `limit` without any byte taken, the write
//! fails with `TimedOut`, hyper drops the connection, and the response's
//! reader and open file go with it. The same limit as a stalled upload body
//! (`--body-timeout`).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

pub struct SendDeadline<S> {
    inner: S,
    limit: Duration,
    /// Armed when a write first finds the socket full; cleared by progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> SendDeadline<S> {
    pub fn new(inner: S, limit: Duration) -> Self {
        SendDeadline { inner, limit, stalled: None }
    }

    /// Passes `result` on, clearing the deadline on progress; on `Pending`,
    /// fails once the client has taken nothing for `limit`.
    fn watch<T>(&mut self, cx: &mut Context<'_>, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.stalled = None;
            return result;
        }
        let limit = self.limit;
        let deadline = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client took no response bytes for {limit:?}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SendDeadline<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SendDeadline<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A peer that never reads: the write fails after the limit, not before.
    #[tokio::test(start_paused = true)]
    async fn a_write_nobody_takes_fails_after_the_limit() {
        let (near, _far) = tokio::io::duplex(1024);
        let mut conn = SendDeadline::new(near, Duration::from_secs(30));
        let started = tokio::time::Instant::now();
        let result = conn.write_all(&[0u8; 4096]).await;
        assert_eq!(result.err().map(|e| e.kind()), Some(io::ErrorKind::TimedOut));
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }

    /// A slow reader that keeps taking bytes is never cut off.
    #[tokio::test(start_paused = true)]
    async fn progress_resets_the_deadline() {
        let (near, mut far) = tokio::io::duplex(1024);
        let mut conn = SendDeadline::new(near, Duration::from_secs(30));
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let mut total = 0;
            while total < 8192 {
                tokio::time::sleep(Duration::from_secs(20)).await;
                total += tokio::io::AsyncReadExt::read(&mut far, &mut buf).await.unwrap_or(0);
            }
            total
        });
        conn.write_all(&[0u8; 8192]).await.expect("a slow but steady reader is served");
        assert!(reader.await.unwrap_or(0) >= 8192);
    }
}
