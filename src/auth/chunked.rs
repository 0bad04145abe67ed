//! Decoder for `Content-Encoding: aws-chunked` bodies, signed or not, with or
//! without trailers.
//!
//! Wire format (<https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html>,
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming-trailers.html>):
//!
//! ```text
//! hex-size[;chunk-signature=sig]\r\n <data> \r\n      (repeated)
//! 0[;chunk-signature=sig]\r\n                          (final chunk)
//! name:value\r\n ... [x-amz-trailer-signature:sig\r\n] (trailer modes only)
//! \r\n
//! ```
//!
//! The decoder is a push state machine: the body may arrive split anywhere, data
//! is handed out as zero-copy slices of the input and never accumulated, and only
//! header and trailer lines are buffered (bounded by [`MAX_LINE`] and
//! [`MAX_TRAILER_SECTION`]). Signed chunk data is hashed incrementally.
//!
//! Data is emitted before its chunk signature is checked (the signature can only
//! be checked once the whole chunk is in). So a caller must treat any error from
//! [`AwsChunkedDecoder::push`] or [`AwsChunkedDecoder::finish`] as the failure of
//! the whole upload, and publish nothing before `finish` returns `Ok`.
//!
//! Errors: a body that ends early is `IncompleteBody`; malformed framing (a size
//! that is not hex, a line over 4 KiB, missing CRLF after data, bytes after the
//! end) is `InvalidRequest`, since the client sent something that is not
//! aws-chunked at all; a wrong or missing signature is `SignatureDoesNotMatch`.

use bytes::Bytes;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::auth::sigv4;
use crate::error::{S3Error, S3ErrorCode, S3Result};

/// Longest chunk-header or trailer line accepted, CRLF included. A signed header
/// is about 90 bytes; the bound only stops a client from making us buffer.
pub const MAX_LINE: usize = 4096;

/// Most bytes accepted for the whole trailer section.
pub const MAX_TRAILER_SECTION: usize = 16 * 1024;

/// Chunk sizes are at most 16 hex digits (`u64`).
const MAX_SIZE_DIGITS: usize = 16;

const TRAILER_SIGNATURE: &str = "x-amz-trailer-signature";

/// State for verifying chained chunk signatures: each chunk's signature covers
/// the previous one, starting from the seed signature of the request.
#[derive(Clone)]
pub struct ChunkSigner {
    signing_key: [u8; 32],
    amz_date: String,
    scope: String,
    prev_signature: String,
}

impl std::fmt::Debug for ChunkSigner {
    /// Leaves the signing key out, so the signer can sit in logged structures.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkSigner")
            .field("amz_date", &self.amz_date)
            .field("scope", &self.scope)
            .field("prev_signature", &self.prev_signature)
            .finish_non_exhaustive()
    }
}

impl ChunkSigner {
    /// `seed_signature` is the verified signature of the request headers, in hex.
    pub fn new(
        signing_key: [u8; 32],
        amz_date: impl Into<String>,
        scope: impl Into<String>,
        seed_signature: impl Into<String>,
    ) -> Self {
        ChunkSigner {
            signing_key,
            amz_date: amz_date.into(),
            scope: scope.into(),
            prev_signature: seed_signature.into(),
        }
    }

    /// Signature of one chunk whose data hashes to `data_sha256_hex`.
    fn chunk_signature(&self, data_sha256_hex: &str) -> [u8; 32] {
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{}\n{}",
            self.amz_date,
            self.scope,
            self.prev_signature,
            sigv4::EMPTY_SHA256_HEX,
            data_sha256_hex
        );
        sigv4::hmac_sha256(&self.signing_key, sts.as_bytes())
    }

    /// Signature of the trailer section whose canonical form hashes to `trailers_sha256_hex`.
    fn trailer_signature(&self, trailers_sha256_hex: &str) -> [u8; 32] {
        let sts = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{}",
            self.amz_date, self.scope, self.prev_signature, trailers_sha256_hex
        );
        sigv4::hmac_sha256(&self.signing_key, sts.as_bytes())
    }

    /// Compares in constant time and, on success, chains to the next signature.
    fn check_and_advance(&mut self, expected: [u8; 32], provided: &str) -> S3Result<()> {
        let given = sigv4::decode_signature(provided);
        if !given.is_some_and(|given| bool::from(given.ct_eq(&expected))) {
            return Err(S3Error::new(S3ErrorCode::SignatureDoesNotMatch));
        }
        self.prev_signature = hex::encode(expected);
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a `hex-size[;ext]` line.
    Header,
    /// Passing chunk data through.
    Data { remaining: u64 },
    /// Expecting the `\r` (or a bare `\n`) that closes the data.
    DataCr,
    /// Expecting the `\n` that closes the data.
    DataLf,
    /// After the final chunk: trailer lines up to an empty line.
    Trailers,
    /// The terminating empty line was seen.
    Done,
}

/// Decodes an aws-chunked body pushed in arbitrary pieces.
#[derive(Debug)]
pub struct AwsChunkedDecoder {
    signer: Option<ChunkSigner>,
    expect_trailer: bool,
    state: State,
    line: Vec<u8>,
    chunk_hash: Sha256,
    chunk_signature: Option<String>,
    trailers: Vec<(String, String)>,
    trailer_signature: Option<String>,
    trailer_bytes: usize,
    decoded_len: u64,
}

impl AwsChunkedDecoder {
    /// `signer`: `Some` for `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`;
    /// `expect_trailer`: true for the `-TRAILER` modes. Trailers sent when they
    /// are not expected are refused, so a caller never sees unsigned trailers
    /// it did not ask for.
    pub fn new(signer: Option<ChunkSigner>, expect_trailer: bool) -> Self {
        AwsChunkedDecoder {
            signer,
            expect_trailer,
            state: State::Header,
            line: Vec::new(),
            chunk_hash: Sha256::new(),
            chunk_signature: None,
            trailers: Vec::new(),
            trailer_signature: None,
            trailer_bytes: 0,
            decoded_len: 0,
        }
    }

    /// Payload bytes decoded so far: the object size once `finish` succeeds, to
    /// compare with `x-amz-decoded-content-length`.
    pub fn decoded_len(&self) -> u64 {
        self.decoded_len
    }

    /// Feeds raw body bytes (any split, even 1 byte at a time). Decoded payload
    /// is appended to `out` as zero-copy slices of `input`.
    pub fn push(&mut self, input: Bytes, out: &mut Vec<Bytes>) -> S3Result<()> {
        let mut input = input;
        while !input.is_empty() {
            match self.state {
                State::Header => self.step_header(&mut input)?,
                State::Data { remaining } => self.step_data(&mut input, remaining, out)?,
                State::DataCr | State::DataLf => self.step_crlf(&mut input)?,
                State::Trailers => self.step_trailers(&mut input)?,
                State::Done => step_done(&mut input)?,
            }
        }
        Ok(())
    }

    /// End of the raw body. Fails with `IncompleteBody` unless the final chunk
    /// (and, in trailer modes, the trailer section) was seen. The empty line that
    /// ends the trailer section may be missing at EOF, and so may the CRLF of the
    /// last trailer line. Returns the trailers as (lowercase name, value).
    pub fn finish(mut self) -> S3Result<Vec<(String, String)>> {
        match self.state {
            State::Done => {}
            State::Trailers => {
                if !self.line.is_empty() {
                    let line = std::mem::take(&mut self.line);
                    self.on_trailer_line(strip_eol(&line))?;
                }
                if self.state != State::Done {
                    self.finish_trailers()?;
                }
            }
            _ => return Err(incomplete()),
        }
        Ok(self.trailers)
    }

    fn step_header(&mut self, input: &mut Bytes) -> S3Result<()> {
        if !take_line(&mut self.line, input, MAX_LINE)? {
            return Ok(());
        }
        let line = std::mem::take(&mut self.line);
        let result = self.on_header(strip_eol(&line));
        self.line = line;
        self.line.clear();
        result
    }

    fn on_header(&mut self, line: &[u8]) -> S3Result<()> {
        let header = ChunkHeader::parse(line)?;
        if self.signer.is_some() && header.signature.is_none() {
            return Err(S3Error::with_message(
                S3ErrorCode::SignatureDoesNotMatch,
                "A chunk of a signed aws-chunked body has no chunk-signature.",
            ));
        }
        self.chunk_signature = header.signature;
        self.chunk_hash = Sha256::new();
        if header.size == 0 {
            self.verify_chunk()?;
            self.state = State::Trailers;
        } else {
            self.state = State::Data { remaining: header.size };
        }
        Ok(())
    }

    fn step_data(&mut self, input: &mut Bytes, remaining: u64, out: &mut Vec<Bytes>) -> S3Result<()> {
        let n = usize::try_from(remaining).map_or(input.len(), |r| r.min(input.len()));
        let piece = input.split_to(n);
        if self.signer.is_some() {
            self.chunk_hash.update(&piece);
        }
        // n <= remaining and n <= usize::MAX, so neither operation can overflow.
        let taken = n as u64;
        self.decoded_len = self.decoded_len.saturating_add(taken);
        let remaining = remaining - taken;
        out.push(piece);
        if remaining == 0 {
            self.verify_chunk()?;
            self.state = State::DataCr;
        } else {
            self.state = State::Data { remaining };
        }
        Ok(())
    }

    fn step_crlf(&mut self, input: &mut Bytes) -> S3Result<()> {
        let byte = input.split_to(1);
        self.state = match (self.state, byte.first()) {
            (State::DataCr, Some(b'\r')) => State::DataLf,
            (State::DataCr | State::DataLf, Some(b'\n')) => State::Header,
            _ => return Err(malformed("chunk data is not followed by CRLF")),
        };
        Ok(())
    }

    /// Checks the signature of the chunk just completed (no-op when unsigned).
    fn verify_chunk(&mut self) -> S3Result<()> {
        let Some(signer) = self.signer.as_mut() else {
            return Ok(());
        };
        let hash = std::mem::replace(&mut self.chunk_hash, Sha256::new());
        let expected = signer.chunk_signature(&hex::encode(hash.finalize()));
        let provided = self.chunk_signature.take().unwrap_or_default();
        signer.check_and_advance(expected, &provided)
    }

    fn step_trailers(&mut self, input: &mut Bytes) -> S3Result<()> {
        let budget = MAX_TRAILER_SECTION.saturating_sub(self.trailer_bytes);
        let before = input.len();
        let complete = take_line(&mut self.line, input, budget.min(MAX_LINE))?;
        self.trailer_bytes += before - input.len();
        if !complete {
            return Ok(());
        }
        let line = std::mem::take(&mut self.line);
        let result = self.on_trailer_line(strip_eol(&line));
        self.line = line;
        self.line.clear();
        result
    }

    fn on_trailer_line(&mut self, line: &[u8]) -> S3Result<()> {
        if line.is_empty() {
            // Lenient: in trailer modes, a blank line before any trailer (some
            // clients end the final chunk with CRLF) is skipped; EOF then ends.
            let nothing_yet = self.trailers.is_empty() && self.trailer_signature.is_none();
            if self.expect_trailer && nothing_yet {
                return Ok(());
            }
            return self.finish_trailers();
        }
        if !self.expect_trailer {
            return Err(malformed("trailers sent without a trailer payload mode"));
        }
        let (name, value) = parse_trailer(line)?;
        if name == TRAILER_SIGNATURE {
            if self.trailer_signature.replace(value).is_some() {
                return Err(malformed("repeated x-amz-trailer-signature"));
            }
        } else {
            self.trailers.push((name, value));
        }
        Ok(())
    }

    /// Ends the trailer section, checking the trailer signature in signed modes.
    fn finish_trailers(&mut self) -> S3Result<()> {
        self.state = State::Done;
        let Some(signer) = self.signer.as_mut() else {
            return Ok(());
        };
        if self.trailers.is_empty() && self.trailer_signature.is_none() {
            return Ok(());
        }
        let Some(provided) = self.trailer_signature.as_deref() else {
            return Err(S3Error::with_message(
                S3ErrorCode::SignatureDoesNotMatch,
                "The trailers of a signed aws-chunked body have no x-amz-trailer-signature.",
            ));
        };
        let mut canonical = String::new();
        for (name, value) in &self.trailers {
            canonical.push_str(name);
            canonical.push(':');
            canonical.push_str(value);
            canonical.push('\n');
        }
        let expected = signer.trailer_signature(&sigv4::sha256_hex(canonical.as_bytes()));
        signer.check_and_advance(expected, provided)
    }
}

/// After the end, only stray line breaks are tolerated.
fn step_done(input: &mut Bytes) -> S3Result<()> {
    if input.iter().all(|b| matches!(b, b'\r' | b'\n')) {
        input.clear();
        Ok(())
    } else {
        Err(malformed("data after the end of the aws-chunked body"))
    }
}

/// A parsed `hex-size[;name=value]*` line.
struct ChunkHeader {
    size: u64,
    signature: Option<String>,
}

impl ChunkHeader {
    fn parse(line: &[u8]) -> S3Result<Self> {
        let line = std::str::from_utf8(line).map_err(|_| malformed("chunk header is not ASCII"))?;
        let mut parts = line.split(';');
        let size_text = parts.next().unwrap_or_default().trim();
        let size = parse_hex_size(size_text)?;
        let signature = parts
            .filter_map(|ext| ext.split_once('='))
            .find(|(name, _)| name.trim() == "chunk-signature")
            .map(|(_, value)| value.trim().to_string());
        Ok(ChunkHeader { size, signature })
    }
}

fn parse_hex_size(text: &str) -> S3Result<u64> {
    let valid = !text.is_empty() && text.len() <= MAX_SIZE_DIGITS && text.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid {
        return Err(malformed("chunk size is not a hexadecimal number"));
    }
    u64::from_str_radix(text, 16).map_err(|_| malformed("chunk size is not a hexadecimal number"))
}

/// Splits `name:value`, lowercasing the name and trimming both.
fn parse_trailer(line: &[u8]) -> S3Result<(String, String)> {
    let line = std::str::from_utf8(line).map_err(|_| malformed("trailer is not UTF-8"))?;
    let (name, value) = line.split_once(':').ok_or_else(|| malformed("trailer line has no ':'"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(malformed("trailer line has an empty name"));
    }
    Ok((name.to_ascii_lowercase(), value.trim().to_string()))
}

/// Moves bytes up to and including the next `\n` from `input` into `line`.
/// Returns true when `line` now holds a whole line. Fails once `line` would
/// exceed `limit` bytes, so a client cannot make us buffer without bound.
fn take_line(line: &mut Vec<u8>, input: &mut Bytes, limit: usize) -> S3Result<bool> {
    let (take, complete) = match input.iter().position(|&b| b == b'\n') {
        Some(i) => (i + 1, true),
        None => (input.len(), false),
    };
    if line.len().saturating_add(take) > limit {
        return Err(malformed("aws-chunked header or trailer line is too long"));
    }
    line.extend_from_slice(&input.split_to(take));
    Ok(complete)
}

/// Drops the line ending: `\n` and an optional `\r` before it.
fn strip_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn malformed(what: &str) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidRequest, format!("Malformed aws-chunked body: {what}."))
}

fn incomplete() -> S3Error {
    S3Error::with_message(S3ErrorCode::IncompleteBody, "The aws-chunked body ended before its final chunk or trailers.")
}

#[cfg(test)]
#[path = "chunked_tests.rs"]
mod tests;
