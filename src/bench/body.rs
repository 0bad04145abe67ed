//! The request body: nothing, a small document, or a window of the pattern
//! streamed in zero-copy slices.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::pattern::{Content, Pattern, CHUNK};

pub enum ReqBody {
    Empty,
    Full(Option<Bytes>),
    Stream(PatternStream),
}

/// `len` bytes of an object's content from `offset`, sent CHUNK at a time.
pub struct PatternStream {
    pattern: Arc<Pattern>,
    phase: usize,
    offset: u64,
    end: u64,
}

impl ReqBody {
    pub fn full(bytes: impl Into<Bytes>) -> ReqBody {
        ReqBody::Full(Some(bytes.into()))
    }

    /// The bytes `offset..offset + len` of `content` (a part or a whole object).
    pub fn pattern(pattern: Arc<Pattern>, content: Content, offset: u64, len: u64) -> ReqBody {
        ReqBody::Stream(PatternStream { pattern, phase: content.phase, offset, end: offset + len })
    }

    pub fn len(&self) -> u64 {
        match self {
            ReqBody::Empty => 0,
            ReqBody::Full(b) => b.as_ref().map_or(0, |b| b.len() as u64),
            ReqBody::Stream(s) => s.end - s.offset,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let frame = match self.get_mut() {
            ReqBody::Empty => None,
            ReqBody::Full(b) => b.take(),
            ReqBody::Stream(s) if s.offset < s.end => {
                let n = (s.end - s.offset).min(CHUNK as u64) as usize;
                let chunk = s.pattern.chunk(s.phase, s.offset, n);
                s.offset += n as u64;
                Some(chunk)
            }
            ReqBody::Stream(_) => None,
        };
        Poll::Ready(frame.map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len())
    }
}
