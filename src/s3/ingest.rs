//! Receiving request bodies: the promises a request makes about its body
//! (`Content-MD5`, `x-amz-content-sha256`, `x-amz-checksum-*` in a header or a
//! trailer, `x-amz-decoded-content-length`) are read from the headers first,
//! the body is decoded and hashed in one pass, and every promise is checked
//! before anything becomes visible.
//! Reference: <https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html>

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use http::HeaderMap;
use http_body_util::BodyExt;

use super::error::{S3Error, S3ErrorCode, S3Result};
use super::headers::header;
use super::{AppState, RequestBody, S3Request};
use crate::auth::chunked::AwsChunkedDecoder;
use crate::auth::verify::PayloadMode;
use crate::store::blob::{BlobSink, BodyDecoder, StagedBlob, INLINE_MAX};
use crate::store::digest::{ChecksumAlgorithm, DigestSpec, Digests, Hashers};
use crate::store::schema::StoredChecksum;

/// The largest single PUT S3 accepts.
pub const MAX_PUT_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// Where the flexible checksum's expected value comes from.
#[derive(Debug, Clone)]
enum ChecksumSource {
    /// `x-amz-checksum-<alg>: value` (raw digest bytes).
    Header(Vec<u8>),
    /// Named by `x-amz-trailer`, arrives after the body.
    Trailer,
    /// Nothing to verify: computed so it can be stored (S3 stores a CRC64NVME
    /// for every object that came without a checksum).
    Computed,
}

/// Whose checksum an `x-amz-checksum-<algorithm>` header gives.
#[derive(Debug, Clone, Copy)]
enum ChecksumHeaders {
    /// The request body's (PutObject, UploadPart, XML requests).
    OfBody,
    /// The object a CompleteMultipartUpload assembles: checked there.
    OfObject,
}

/// Bodies stored as files up to this size are SHA-256 hashed whatever the
/// client declared, so identical small files are stored once
/// (docs/architecture.md).
const HASHED_INLINE_MAX: u64 = 64 * 1024;

/// A body's content as its request declared it (`Promises::declared_content`).
pub struct DeclaredContent {
    pub sha256: [u8; 32],
    pub size: u64,
    pub content_md5: Option<[u8; 16]>,
    /// The checksum algorithm to store, and its value if the request gave one.
    pub checksum: (ChecksumAlgorithm, Option<Vec<u8>>),
}

/// What the request promised about its body.
pub struct Promises {
    content_md5: Option<[u8; 16]>,
    sha256: Option<[u8; 32]>,
    checksum: (ChecksumAlgorithm, ChecksumSource),
    /// The exact body size, when the request announced one.
    size: Option<u64>,
}

impl Promises {
    /// `default` is the checksum computed when the request names none: S3's
    /// CRC64NVME for objects, the upload's algorithm for parts.
    pub fn from_request(headers: &HeaderMap, payload: &PayloadMode, default: ChecksumAlgorithm) -> S3Result<Promises> {
        Promises::read(headers, payload, default, ChecksumHeaders::OfBody)
    }

    fn read(
        headers: &HeaderMap,
        payload: &PayloadMode,
        default: ChecksumAlgorithm,
        whose: ChecksumHeaders,
    ) -> S3Result<Promises> {
        let chunked = !matches!(payload, PayloadMode::Sha256(_) | PayloadMode::Unsigned);
        let size = announced_size(headers, chunked)?;
        Ok(Promises {
            content_md5: content_md5(headers)?,
            sha256: match payload {
                PayloadMode::Sha256(hash) => Some(*hash),
                _ => None,
            },
            checksum: checksum_promise(headers, default, whose)?,
            size,
        })
    }

    pub fn size(&self) -> Option<u64> {
        self.size
    }

    /// What the request declared about its content before the body, when
    /// that names the content exactly (size and SHA-256) and every promise
    /// can be checked without the body: what an instant upload needs.
    pub fn declared_content(&self) -> Option<DeclaredContent> {
        let declared_checksum = match &self.checksum.1 {
            ChecksumSource::Header(raw) => Some(raw.clone()),
            ChecksumSource::Computed => None,
            ChecksumSource::Trailer => return None,
        };
        let checksum_sha256 = declared_checksum.as_deref().filter(|_| self.checksum.0 == ChecksumAlgorithm::Sha256);
        let checksum_sha256 = checksum_sha256.and_then(|raw| <[u8; 32]>::try_from(raw).ok());
        let sha256 = match (self.sha256, checksum_sha256) {
            (Some(a), Some(b)) if a != b => return None,
            (a, b) => a.or(b)?,
        };
        Some(DeclaredContent {
            sha256,
            size: self.size?,
            content_md5: self.content_md5,
            checksum: (self.checksum.0, declared_checksum),
        })
    }

    /// What to compute while the body streams: the MD5 always, the
    /// checksum to store, and the SHA-256 when promised or when the body is
    /// stored as a file yet small enough that hashing it is cheap beside its
    /// write: the key of the unique-file table (`store/content.rs`). A
    /// SHA-256 checksum is that hash already.
    fn digest_spec(&self) -> DigestSpec {
        let small = self.size.is_some_and(|size| size as usize > INLINE_MAX && size <= HASHED_INLINE_MAX);
        let sha256 = self.sha256.is_some() || small && self.checksum.0 != ChecksumAlgorithm::Sha256;
        DigestSpec { sha256, checksum: Some(self.checksum.0) }
    }

    /// Checks every promise against what arrived. Returns the checksum to store.
    fn verify(&self, digests: &Digests, trailers: &[(String, String)]) -> S3Result<StoredChecksum> {
        if self.size.is_some_and(|size| size != digests.size) {
            return Err(S3Error::new(S3ErrorCode::IncompleteBody));
        }
        if self.content_md5.is_some_and(|md5| md5 != digests.md5) {
            return Err(S3Error::new(S3ErrorCode::BadDigest));
        }
        if self.sha256.is_some() && self.sha256 != digests.sha256 {
            return Err(S3Error::new(S3ErrorCode::XAmzContentSHA256Mismatch));
        }
        let (alg, computed) = match &digests.checksum {
            Some((alg, raw)) => (*alg, raw.as_slice()),
            None => return Err(S3Error::internal("checksum was not computed")),
        };
        let expected = match &self.checksum.1 {
            ChecksumSource::Header(raw) => Some(raw.clone()),
            ChecksumSource::Trailer => Some(trailer_value(trailers, alg)?),
            ChecksumSource::Computed => None,
        };
        if expected.is_some_and(|raw| raw != computed) {
            return Err(S3Error::with_message(
                S3ErrorCode::BadDigest,
                format!("The {} you specified did not match the calculated checksum.", alg.name()),
            ));
        }
        Ok(StoredChecksum { algorithm: alg, value: BASE64.encode(computed), composite: false })
    }
}

/// The body size the request announced: the decoded length for aws-chunked
/// bodies (the framing makes Content-Length larger, client-pitfalls.md item 7).
fn announced_size(headers: &HeaderMap, chunked: bool) -> S3Result<Option<u64>> {
    let number = |name: &str| -> S3Result<Option<u64>> {
        header(headers, name)
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| S3Error::with_message(S3ErrorCode::InvalidArgument, format!("Invalid {name}")))
            })
            .transpose()
    };
    let size = if chunked { number("x-amz-decoded-content-length")? } else { number("content-length")? };
    if size.is_some_and(|s| s > MAX_PUT_BYTES) {
        return Err(S3Error::new(S3ErrorCode::EntityTooLarge));
    }
    if size.is_none() && !chunked && headers.contains_key("transfer-encoding") {
        // AWS does not take a plain chunked upload of unknown length (client-pitfalls.md item 14).
        return Err(S3Error::new(S3ErrorCode::MissingContentLength));
    }
    Ok(size)
}

fn content_md5(headers: &HeaderMap) -> S3Result<Option<[u8; 16]>> {
    let Some(value) = header(headers, "content-md5") else { return Ok(None) };
    let raw = BASE64.decode(value.trim()).map_err(|_| S3Error::new(S3ErrorCode::InvalidDigest))?;
    raw.try_into().map(Some).map_err(|_| S3Error::new(S3ErrorCode::InvalidDigest))
}

/// Reads which checksum the client sends, and how: at most one
/// `x-amz-checksum-*` header, or a trailer named by `x-amz-trailer`.
fn checksum_promise(
    headers: &HeaderMap,
    default: ChecksumAlgorithm,
    whose: ChecksumHeaders,
) -> S3Result<(ChecksumAlgorithm, ChecksumSource)> {
    if let (ChecksumHeaders::OfBody, Some((alg, value))) = (whose, checksum_header(headers)?) {
        return Ok((alg, ChecksumSource::Header(decode_checksum(alg, value)?)));
    }
    if let Some(trailer) = header(headers, "x-amz-trailer") {
        let alg = ChecksumAlgorithm::ALL
            .into_iter()
            .find(|alg| alg.header_name().eq_ignore_ascii_case(trailer.trim()))
            .ok_or_else(|| {
                S3Error::with_message(S3ErrorCode::InvalidRequest, format!("Unsupported trailer {trailer}"))
            })?;
        return Ok((alg, ChecksumSource::Trailer));
    }
    let alg = header(headers, "x-amz-sdk-checksum-algorithm").and_then(ChecksumAlgorithm::parse);
    Ok((alg.unwrap_or(default), ChecksumSource::Computed))
}

/// The one `x-amz-checksum-<algorithm>` header, if any (two are refused).
pub fn checksum_header(headers: &HeaderMap) -> S3Result<Option<(ChecksumAlgorithm, &str)>> {
    let mut in_headers =
        ChecksumAlgorithm::ALL.into_iter().filter_map(|alg| header(headers, alg.header_name()).map(|v| (alg, v)));
    let first = in_headers.next();
    if in_headers.next().is_some() {
        return Err(S3Error::with_message(S3ErrorCode::InvalidRequest, "Expecting a single x-amz-checksum- header"));
    }
    Ok(first)
}

/// A checksum header's value as raw digest bytes; anything but base64 of
/// the algorithm's length is InvalidRequest, as S3 answers.
pub fn decode_checksum(alg: ChecksumAlgorithm, value: &str) -> S3Result<Vec<u8>> {
    BASE64.decode(value.trim()).ok().filter(|raw| raw.len() == alg.digest_len()).ok_or_else(|| {
        S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            format!("Value for {} header is invalid.", alg.header_name()),
        )
    })
}

fn trailer_value(trailers: &[(String, String)], alg: ChecksumAlgorithm) -> S3Result<Vec<u8>> {
    let value = trailers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(alg.header_name()))
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| {
            S3Error::with_message(S3ErrorCode::InvalidRequest, format!("The {} trailer is missing", alg.header_name()))
        })?;
    decode_checksum(alg, value)
}

fn decoder_for(payload: &PayloadMode) -> Option<Box<dyn BodyDecoder<S3Error>>> {
    match payload {
        PayloadMode::StreamingSigned { signer, trailer } => {
            Some(Box::new(AwsChunkedDecoder::new(Some(signer.clone()), *trailer)))
        }
        PayloadMode::StreamingUnsignedTrailer => Some(Box::new(AwsChunkedDecoder::new(None, true))),
        PayloadMode::Sha256(_) | PayloadMode::Unsigned => None,
    }
}

/// aws-chunked bodies are decoded (and their chunk signatures checked) on the
/// thread that processes the upload's batches.
impl BodyDecoder<S3Error> for AwsChunkedDecoder {
    fn decode(&mut self, frame: Bytes, out: &mut Vec<Bytes>) -> S3Result<()> {
        self.push(frame, out)
    }

    fn finish(self: Box<Self>) -> S3Result<Vec<(String, String)>> {
        AwsChunkedDecoder::finish(*self)
    }
}

/// Streams the body into a staged blob and verifies it. The blob is durable
/// but invisible: the caller publishes it and commits its metadata.
///
/// `upload_algorithm` is the checksum algorithm of the multipart upload a part
/// belongs to: the part is hashed with it, and may not declare another.
pub async fn receive_blob(
    state: &AppState,
    req: &mut S3Request,
    upload_algorithm: Option<ChecksumAlgorithm>,
) -> S3Result<(StagedBlob, StoredChecksum)> {
    let default = upload_algorithm.unwrap_or(ChecksumAlgorithm::Crc64Nvme);
    let promises = Promises::from_request(&req.parts.headers, &req.auth.payload, default)?;
    let small = promises.size().is_some_and(|size| size <= INLINE_MAX as u64);
    state.store.admit_write(small).await?;
    if upload_algorithm.is_some_and(|alg| alg != promises.checksum.0) {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            format!(
                "Checksum Type mismatch occurred, expected checksum Type: {}, actual checksum Type: {}",
                default.name().to_lowercase(),
                promises.checksum.0.name().to_lowercase()
            ),
        ));
    }
    // A body announced small enough to be stored inline is read right here:
    // no blocking thread, no file.
    if small {
        let (bytes, digests, trailers) = read_to_memory(state, req, &promises, INLINE_MAX).await?;
        let checksum = promises.verify(&digests, &trailers)?;
        return Ok((StagedBlob::in_memory(state.store.layout(), bytes, digests)?, checksum));
    }
    let mut sink = BlobSink::start(state.store.layout(), promises.digest_spec(), decoder_for(&req.auth.payload))?;
    while sink.feed(next_data(&mut req.body, state.body_timeout)).await? {}
    let staged = sink.finish().await?;
    let checksum = promises.verify(&staged.digests, &staged.trailers)?;
    Ok((staged, checksum))
}

/// Reads a small body (an XML document) into memory, refusing more than
/// `limit` bytes, with the same decoding and verification as object bodies.
pub async fn receive_small(state: &AppState, req: &mut S3Request, limit: usize) -> S3Result<Bytes> {
    receive_document(state, req, limit, ChecksumHeaders::OfBody).await
}

/// [`receive_small`] for CompleteMultipartUpload, whose `x-amz-checksum-*`
/// header is the checksum of the object it assembles, not of its XML.
pub async fn receive_complete_request(state: &AppState, req: &mut S3Request, limit: usize) -> S3Result<Bytes> {
    receive_document(state, req, limit, ChecksumHeaders::OfObject).await
}

async fn receive_document(
    state: &AppState,
    req: &mut S3Request,
    limit: usize,
    whose: ChecksumHeaders,
) -> S3Result<Bytes> {
    let promises = Promises::read(&req.parts.headers, &req.auth.payload, ChecksumAlgorithm::Crc64Nvme, whose)?;
    let (bytes, digests, trailers) = read_to_memory(state, req, &promises, limit).await?;
    promises.verify(&digests, &trailers)?;
    Ok(Bytes::from(bytes))
}

/// Decodes and hashes a whole body into memory, refusing more than `limit`
/// bytes. Returns the bytes, their digests and the trailers; the caller
/// verifies them against the promises.
async fn read_to_memory(
    state: &AppState,
    req: &mut S3Request,
    promises: &Promises,
    limit: usize,
) -> S3Result<(Vec<u8>, Digests, Vec<(String, String)>)> {
    let too_large = || S3Error::with_message(S3ErrorCode::InvalidRequest, "Request body is too large");
    if promises.size().is_some_and(|s| s > limit as u64) {
        return Err(too_large());
    }
    let mut decoder = decoder_for(&req.auth.payload);
    let mut hashers = Hashers::new(promises.digest_spec());
    let mut out = Vec::new();
    let mut pieces = Vec::new();
    while let Some(data) = next_data(&mut req.body, state.body_timeout).await? {
        match decoder.as_mut() {
            Some(dec) => dec.decode(data, &mut pieces)?,
            None => pieces.push(data),
        }
        for piece in pieces.drain(..) {
            hashers.update(&piece);
            out.extend_from_slice(&piece);
        }
        if out.len() > limit {
            return Err(too_large());
        }
    }
    let trailers = match decoder {
        Some(dec) => dec.finish()?,
        None => Vec::new(),
    };
    Ok((out, hashers.finish(), trailers))
}

/// The next data frame of a request body, `None` at its end. A client that
/// sends nothing for `idle` gets S3's `RequestTimeout`, and its connection is
/// closed: the rest of its body will not be read.
async fn next_data(body: &mut RequestBody, idle: Duration) -> S3Result<Option<Bytes>> {
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_elapsed) => return Err(S3Error::new(S3ErrorCode::RequestTimeout).with_header("connection", "close")),
            Ok(None) => return Ok(None),
            Ok(Some(frame)) => frame.map_err(|_| S3Error::new(S3ErrorCode::IncompleteBody))?,
        };
        if let Ok(data) = frame.into_data() {
            return Ok(Some(data));
        }
    }
}
