//! The gate every request goes through: finds which authentication the request
//! uses (SigV4 header, SigV4 presigned URL, SigV2 header, SigV2 presigned URL),
//! checks it, and returns a [`VerifiedRequest`] that proves it ran.
//!
//! References:
//! - <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-auth-using-authorization-header.html>
//! - <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html>
//! - <https://docs.aws.amazon.com/AmazonS3/latest/userguide/RESTAuthentication.html>

use std::borrow::Cow;
use std::time::SystemTime;

use http::request::Parts;
use http::{HeaderMap, HeaderValue};
use percent_encoding::percent_decode_str;
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

use crate::auth::chunked::ChunkSigner;
use crate::auth::clock;
use crate::auth::query::RawQuery;
use crate::auth::{sigv4, verify_v2};
use crate::error::{S3Error, S3ErrorCode, S3Result};

/// What the server knows that a signature check needs.
pub struct AuthContext<'a> {
    pub region: &'a str,
    pub now: SystemTime,
    /// The bucket named by the Host header of a virtual-hosted request
    /// (`bucket.domain`). SigV2 signs the bucket only through its canonical
    /// resource, so it must be part of it, or a signature made for
    /// `/bucket-a/key` could be replayed against `bucket-b.domain/bucket-a/key`.
    pub virtual_bucket: Option<&'a str>,
    /// Returns the secret key for an access key, or None if unknown.
    pub secret_for: &'a (dyn Fn(&str) -> Option<String> + Sync),
}

/// How the request body is protected, from `x-amz-content-sha256`.
#[derive(Debug, Clone)]
pub enum PayloadMode {
    /// x-amz-content-sha256 is a hex digest: the body must hash to it (caller checks, reply XAmzContentSHA256Mismatch).
    Sha256([u8; 32]),
    /// UNSIGNED-PAYLOAD (also presigned URLs, SigV2 requests).
    Unsigned,
    /// STREAMING-AWS4-HMAC-SHA256-PAYLOAD (trailer=false) or ...-PAYLOAD-TRAILER (trailer=true).
    StreamingSigned { signer: ChunkSigner, trailer: bool },
    /// STREAMING-UNSIGNED-PAYLOAD-TRAILER
    StreamingUnsignedTrailer,
}

/// Proof that a request was authenticated, and by whom.
#[derive(Debug, Clone)]
pub struct VerifiedRequest {
    pub access_key: String,
    pub payload: PayloadMode,
}

const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
const SERVICE: &str = "s3";
/// SigV4 presigned URLs live at most seven days.
const MAX_PRESIGNED_EXPIRES: i64 = 604_800;

impl VerifiedRequest {
    /// What an unsigned request is: no one, with a body taken as sent.
    pub fn anonymous() -> VerifiedRequest {
        VerifiedRequest { access_key: String::new(), payload: PayloadMode::Unsigned }
    }
}

/// Which presigned-URL parameters a query carries: (SigV4's, SigV2's).
fn presign_params(query: &RawQuery) -> (bool, bool) {
    let presign_v4 = ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature"].iter().any(|name| query.contains(name));
    let presign_v2 = query.contains("AWSAccessKeyId") || query.contains("Signature");
    (presign_v4, presign_v2)
}

/// Whether a request carries no signature at all (no `Authorization`
/// header, no presigned-URL parameter): an anonymous request.
pub fn is_unsigned(parts: &Parts) -> bool {
    let query = RawQuery::parse(parts.uri.query().unwrap_or(""));
    !parts.headers.contains_key(http::header::AUTHORIZATION) && presign_params(&query) == (false, false)
}

/// Authenticates `parts`. Every malformed input answers an S3 error; nothing
/// panics. An unsigned request is `AccessDenied` here: the server lets it
/// through as anonymous ([`is_unsigned`]) only to operations that allow it.
pub fn verify(parts: &Parts, ctx: &AuthContext) -> S3Result<VerifiedRequest> {
    let query = RawQuery::parse(parts.uri.query().unwrap_or(""));
    let (presign_v4, presign_v2) = presign_params(&query);
    let Some(auth) = parts.headers.get(http::header::AUTHORIZATION) else {
        return match (presign_v4, presign_v2) {
            (true, _) => verify_v4_presigned(parts, ctx, &query),
            (false, true) => verify_v2::presigned(parts, ctx, &query),
            (false, false) => Err(S3Error::new(S3ErrorCode::AccessDenied)),
        };
    };
    if presign_v4 || presign_v2 {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, \
             Signature query string parameter or the Authorization header should be specified",
        )
        .with_extra("ArgumentName", "Authorization"));
    }
    let auth = auth.to_str().map_err(|_| unsupported_authorization(""))?;
    if let Some(rest) = auth.strip_prefix(sigv4::ALGORITHM) {
        if rest.starts_with(char::is_whitespace) {
            return verify_v4_header(parts, ctx, &query, rest);
        }
    }
    if let Some(rest) = auth.strip_prefix("AWS ") {
        return verify_v2::header(parts, ctx, &query, rest);
    }
    Err(unsupported_authorization(auth))
}

fn unsupported_authorization(value: &str) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidArgument, "Unsupported Authorization Type")
        .with_extra("ArgumentName", "Authorization")
        .with_extra("ArgumentValue", value)
}

/// `Authorization: AWS4-HMAC-SHA256 Credential=.., SignedHeaders=.., Signature=..`.
fn verify_v4_header(parts: &Parts, ctx: &AuthContext, query: &RawQuery, auth: &str) -> S3Result<VerifiedRequest> {
    let auth = V4Authorization::parse(auth)?;
    let time = clock::checked_request_time(&parts.headers, ctx.now)?;
    let cred = Credential::parse(auth.credential, CredentialSource::Header)?;
    cred.check(&time.amz_date, ctx.region, CredentialSource::Header)?;
    let secret = lookup_secret(ctx, cred.access_key)?;
    require_signed_headers(&parts.headers, auth.signed_headers, None)?;
    let payload_hash = content_sha256_header(&parts.headers)?;
    let content = ContentSha256::parse(payload_hash)?;
    let check = V4Check {
        access_key: cred.access_key,
        key: sigv4::signing_key(&secret, cred.date, cred.region, SERVICE),
        amz_date: &time.amz_date,
        scope: sigv4::scope(cred.date, cred.region, SERVICE),
        canonical_query: query.canonical_v4(None),
        signed_headers: auth.signed_headers,
        payload_hash,
        provided: auth.signature,
    };
    let seed = check.run(parts)?;
    Ok(VerifiedRequest {
        access_key: cred.access_key.to_string(),
        payload: content.into_mode(|| ChunkSigner::new(check.key, &time.amz_date, &check.scope, seed)),
    })
}

/// A presigned SigV4 URL: `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`,
/// `X-Amz-Expires`, `X-Amz-SignedHeaders`, `X-Amz-Signature`.
fn verify_v4_presigned(parts: &Parts, ctx: &AuthContext, query: &RawQuery) -> S3Result<VerifiedRequest> {
    let p = PresignedParams::parse(query)?;
    let cred = Credential::parse(p.credential, CredentialSource::Query)?;
    cred.check(p.amz_date, ctx.region, CredentialSource::Query)?;
    check_presigned_window(p.date, p.expires, clock::server_now(ctx.now)?)?;
    let secret = lookup_secret(ctx, cred.access_key)?;
    require_signed_headers(&parts.headers, p.signed_headers, Some(query))?;
    // A presigned URL does not know its body, unless the signer pinned a hash.
    let payload_hash = query.get("X-Amz-Content-Sha256").unwrap_or(UNSIGNED_PAYLOAD);
    let payload = match ContentSha256::parse(payload_hash)? {
        ContentSha256::Digest(d) => PayloadMode::Sha256(d),
        ContentSha256::Unsigned => PayloadMode::Unsigned,
        _ => return Err(invalid_content_sha256(payload_hash)),
    };
    let check = V4Check {
        access_key: cred.access_key,
        key: sigv4::signing_key(&secret, cred.date, cred.region, SERVICE),
        amz_date: p.amz_date,
        scope: sigv4::scope(cred.date, cred.region, SERVICE),
        canonical_query: query.canonical_v4(Some("X-Amz-Signature")),
        signed_headers: p.signed_headers,
        payload_hash,
        provided: p.signature,
    };
    check.run(parts)?;
    Ok(VerifiedRequest { access_key: cred.access_key.to_string(), payload })
}

/// Expired (`now > date + expires`) or dated more than 15 minutes ahead: `AccessDenied`.
fn check_presigned_window(date: OffsetDateTime, expires: i64, now: OffsetDateTime) -> S3Result<()> {
    if date - now > clock::MAX_SKEW {
        return Err(S3Error::with_message(S3ErrorCode::AccessDenied, "Request is not valid yet"));
    }
    let end = date.checked_add(Duration::seconds(expires)).ok_or_else(|| query_error("X-Amz-Date is out of range"))?;
    if now > end {
        return Err(S3Error::with_message(S3ErrorCode::AccessDenied, "Request has expired")
            .with_extra("X-Amz-Expires", expires.to_string())
            .with_extra("Expires", clock::format_iso8601(end))
            .with_extra("ServerTime", clock::format_iso8601(now)));
    }
    Ok(())
}

/// S3 obeys only what was signed: `host` must be in SignedHeaders (otherwise a
/// signature made for one bucket's host name could be replayed against
/// another's), and so must every `x-amz-*` header present, since those change
/// what a request does (`x-amz-copy-source` turns a PUT into a copy of another
/// object, `x-amz-acl` and `x-amz-meta-*` change what is stored). A presigned
/// URL may instead carry such a header in its signed query, with the same
/// value. Anything else is `AccessDenied` before any work is done, as S3
/// answers it ("There were headers present in the request which were not
/// signed", with a `HeadersNotSigned` element).
fn require_signed_headers(headers: &HeaderMap, signed_headers: &str, query: Option<&RawQuery>) -> S3Result<()> {
    let signed: Vec<&str> = signed_headers.split(';').map(str::trim).collect();
    let is_signed = |name: &str| signed.iter().any(|s| s.eq_ignore_ascii_case(name));
    let in_signed_query = |name: &str, value: &HeaderValue| {
        query.and_then(|q| q.get(name)).is_some_and(|v| v.as_bytes() == value.as_bytes())
    };
    let mut missing: Vec<&str> = Vec::new();
    if !is_signed("host") {
        missing.push("host");
    }
    for (name, value) in headers {
        let name = name.as_str();
        let unsigned = name.starts_with("x-amz-") && !is_signed(name) && !in_signed_query(name, value);
        if unsigned && !missing.contains(&name) {
            missing.push(name);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(S3Error::with_message(
        S3ErrorCode::AccessDenied,
        "There were headers present in the request which were not signed",
    )
    .with_extra("HeadersNotSigned", missing.join(", ")))
}

pub(crate) fn lookup_secret(ctx: &AuthContext, access_key: &str) -> S3Result<String> {
    (ctx.secret_for)(access_key)
        .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidAccessKeyId).with_extra("AWSAccessKeyId", access_key))
}

/// The parts of a SigV4 `Authorization` header.
struct V4Authorization<'a> {
    credential: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

impl<'a> V4Authorization<'a> {
    /// Parses `Credential=.., SignedHeaders=.., Signature=..` (after the algorithm),
    /// lenient about spaces around the commas.
    fn parse(s: &'a str) -> S3Result<Self> {
        let (mut credential, mut signed_headers, mut signature) = (None, None, None);
        for part in s.split(',') {
            match part.trim().split_once('=') {
                Some(("Credential", v)) => credential = Some(v.trim()),
                Some(("SignedHeaders", v)) => signed_headers = Some(v.trim()),
                Some(("Signature", v)) => signature = Some(v.trim()),
                _ => {}
            }
        }
        match (credential, signed_headers, signature) {
            (Some(credential), Some(signed_headers), Some(signature)) if !signed_headers.is_empty() => {
                Ok(V4Authorization { credential, signed_headers, signature })
            }
            _ => Err(S3Error::with_message(
                S3ErrorCode::AuthorizationHeaderMalformed,
                "The authorization header is malformed; it must contain Credential, SignedHeaders and Signature.",
            )),
        }
    }
}

/// The `X-Amz-*` parameters of a presigned SigV4 URL.
struct PresignedParams<'a> {
    credential: &'a str,
    amz_date: &'a str,
    date: OffsetDateTime,
    expires: i64,
    signed_headers: &'a str,
    signature: &'a str,
}

impl<'a> PresignedParams<'a> {
    fn parse(q: &'a RawQuery) -> S3Result<Self> {
        let get = |name| q.get(name).filter(|v| !v.is_empty());
        let missing = || {
            query_error(
                "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, \
                 X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
            )
        };
        let algorithm = get("X-Amz-Algorithm").ok_or_else(missing)?;
        let (credential, amz_date, expires, signed_headers, signature) = match (
            get("X-Amz-Credential"),
            get("X-Amz-Date"),
            get("X-Amz-Expires"),
            get("X-Amz-SignedHeaders"),
            get("X-Amz-Signature"),
        ) {
            (Some(c), Some(d), Some(e), Some(h), Some(s)) => (c, d, e, h, s),
            _ => return Err(missing()),
        };
        if algorithm != sigv4::ALGORITHM {
            return Err(query_error("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\""));
        }
        let date = clock::parse_amz_date(amz_date)
            .ok_or_else(|| query_error("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\""))?;
        let expires = parse_expires(expires)?;
        Ok(PresignedParams { credential, amz_date, date, expires, signed_headers, signature })
    }
}

fn parse_expires(s: &str) -> S3Result<i64> {
    let n: i64 = s.parse().map_err(|_| query_error("X-Amz-Expires should be a number"))?;
    if n < 1 {
        return Err(query_error("X-Amz-Expires must be non-negative"));
    }
    if n > MAX_PRESIGNED_EXPIRES {
        return Err(query_error("X-Amz-Expires must be less than a week (in seconds) that is 604800"));
    }
    Ok(n)
}

fn query_error(message: &str) -> S3Error {
    S3Error::with_message(S3ErrorCode::AuthorizationQueryParametersError, message)
}

/// Where the credential came from; S3 words and codes its errors differently.
#[derive(Clone, Copy)]
enum CredentialSource {
    Header,
    Query,
}

impl CredentialSource {
    fn error(self, detail: &str) -> S3Error {
        match self {
            CredentialSource::Header => S3Error::with_message(
                S3ErrorCode::AuthorizationHeaderMalformed,
                format!("The authorization header is malformed; {detail}"),
            ),
            CredentialSource::Query => S3Error::with_message(
                S3ErrorCode::AuthorizationQueryParametersError,
                format!("Error parsing the X-Amz-Credential parameter; {detail}"),
            ),
        }
    }
}

/// `AKID/yyyymmdd/region/service/aws4_request`.
struct Credential<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
}

impl<'a> Credential<'a> {
    fn parse(s: &'a str, source: CredentialSource) -> S3Result<Self> {
        // From the right, so the fixed fields are found whatever the key contains.
        let mut it = s.rsplitn(5, '/');
        match (it.next(), it.next(), it.next(), it.next(), it.next()) {
            (Some("aws4_request"), Some(service), Some(region), Some(date), Some(access_key))
                if !access_key.is_empty() =>
            {
                Ok(Credential { access_key, date, region, service })
            }
            _ => Err(source.error(
                "the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".",
            )),
        }
    }

    /// The scope must name the request's day, our region and `s3`.
    fn check(&self, amz_date: &str, region: &str, source: CredentialSource) -> S3Result<()> {
        if amz_date.get(..8) != Some(self.date) {
            return Err(source.error("Invalid credential date. Date is not the same as X-Amz-Date."));
        }
        if self.region != region {
            let detail = format!("the region '{}' is wrong; expecting '{region}'", self.region);
            return Err(source.error(&detail).with_extra("Region", region));
        }
        if self.service != SERVICE {
            let detail = format!("incorrect service '{}'. This endpoint belongs to 's3'.", self.service);
            return Err(source.error(&detail));
        }
        Ok(())
    }
}

/// The meaning of an `x-amz-content-sha256` value.
enum ContentSha256 {
    Digest([u8; 32]),
    Unsigned,
    Streaming { trailer: bool },
    StreamingUnsignedTrailer,
}

impl ContentSha256 {
    /// SigV4a streaming (ECDSA) is a real AWS mode we do not implement:
    /// `NotImplemented`. Anything else unknown is the client's mistake:
    /// `InvalidArgument`, as S3 answers.
    fn parse(v: &str) -> S3Result<Self> {
        match v {
            UNSIGNED_PAYLOAD => Ok(ContentSha256::Unsigned),
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" => Ok(ContentSha256::Streaming { trailer: false }),
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => Ok(ContentSha256::Streaming { trailer: true }),
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => Ok(ContentSha256::StreamingUnsignedTrailer),
            "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD" | "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER" => {
                Err(S3Error::with_message(
                    S3ErrorCode::NotImplemented,
                    "SigV4a (ECDSA) streaming payloads are not supported.",
                ))
            }
            _ => {
                let mut digest = [0u8; 32];
                hex::decode_to_slice(v, &mut digest).map_err(|_| invalid_content_sha256(v))?;
                Ok(ContentSha256::Digest(digest))
            }
        }
    }

    fn into_mode(self, signer: impl FnOnce() -> ChunkSigner) -> PayloadMode {
        match self {
            ContentSha256::Digest(d) => PayloadMode::Sha256(d),
            ContentSha256::Unsigned => PayloadMode::Unsigned,
            ContentSha256::Streaming { trailer } => PayloadMode::StreamingSigned { signer: signer(), trailer },
            ContentSha256::StreamingUnsignedTrailer => PayloadMode::StreamingUnsignedTrailer,
        }
    }
}

/// `x-amz-content-sha256`, which AWS requires with header authentication.
fn content_sha256_header(headers: &HeaderMap) -> S3Result<&str> {
    let value = headers.get("x-amz-content-sha256").ok_or_else(|| {
        S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "Missing required header for this request: x-amz-content-sha256",
        )
    })?;
    value.to_str().map_err(|_| invalid_content_sha256(""))
}

fn invalid_content_sha256(value: &str) -> S3Error {
    S3Error::with_message(
        S3ErrorCode::InvalidArgument,
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, \
         STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.",
    )
    .with_extra("ArgumentName", "x-amz-content-sha256")
    .with_extra("ArgumentValue", value)
}

/// Everything needed to recompute a SigV4 signature except the canonical URI.
struct V4Check<'a> {
    access_key: &'a str,
    key: [u8; 32],
    amz_date: &'a str,
    scope: String,
    canonical_query: String,
    signed_headers: &'a str,
    payload_hash: &'a str,
    provided: &'a str,
}

impl V4Check<'_> {
    /// Checks the signature and returns it in hex (the seed of a chunked body).
    ///
    /// The canonical URI is first the raw path exactly as sent: S3 does not
    /// normalise it, so keys with `//`, a leading `/` or a literal `+` verify
    /// (client-pitfalls.md item 9). Only if that fails, the strict re-encoding
    /// `uri_encode(percent_decode(path))` is tried, for clients that sign the
    /// strict form but send a looser one.
    fn run(&self, parts: &Parts) -> S3Result<String> {
        let signed: Vec<&str> = self.signed_headers.split(';').map(str::trim).collect();
        let headers = with_host(parts, &signed);
        let canonical_headers = sigv4::canonical_headers(&headers, &signed).ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::SignatureDoesNotMatch,
                "A header listed in SignedHeaders is missing from the request.",
            )
        })?;
        let provided = sigv4::decode_signature(self.provided);
        let provided_ok = provided.is_some();
        let provided = provided.unwrap_or([0u8; 32]);
        let raw = parts.uri.path();
        let strict = sigv4::uri_encode_bytes(&percent_decode_str(raw).collect::<Vec<u8>>(), false);
        let mut first_attempt = None;
        for uri in [raw, strict.as_str()] {
            if first_attempt.is_some() && uri == raw {
                continue;
            }
            let cr = self.canonical_request(parts.method.as_str(), uri, &canonical_headers);
            let sts = sigv4::string_to_sign(self.amz_date, &self.scope, &cr);
            let computed = sigv4::hmac_sha256(&self.key, sts.as_bytes());
            if provided_ok && bool::from(computed.ct_eq(&provided)) {
                return Ok(hex::encode(computed));
            }
            first_attempt.get_or_insert((cr, sts));
        }
        let (cr, sts) = first_attempt.unwrap_or_default();
        Err(signature_mismatch(self.access_key, self.provided, sts).with_extra("CanonicalRequest", cr))
    }

    fn canonical_request(&self, method: &str, uri: &str, canonical_headers: &str) -> String {
        sigv4::canonical_request(
            method,
            uri,
            &self.canonical_query,
            canonical_headers,
            self.signed_headers,
            self.payload_hash,
        )
    }
}

/// `SignatureDoesNotMatch` with the elements S3 adds so a client can debug its
/// signer (none of them is secret).
pub(crate) fn signature_mismatch(access_key: &str, provided: &str, string_to_sign: String) -> S3Error {
    S3Error::new(S3ErrorCode::SignatureDoesNotMatch)
        .with_extra("AWSAccessKeyId", access_key)
        .with_extra("StringToSign", string_to_sign)
        .with_extra("SignatureProvided", provided)
}

/// The request headers, plus `host` from the URI authority when `host` is
/// signed but absent (HTTP/2 carries it as `:authority`).
fn with_host<'p>(parts: &'p Parts, signed: &[&str]) -> Cow<'p, HeaderMap> {
    let wants_host = signed.iter().any(|h| h.eq_ignore_ascii_case("host"));
    if !wants_host || parts.headers.contains_key(http::header::HOST) {
        return Cow::Borrowed(&parts.headers);
    }
    let authority = parts.uri.authority().map(|a| a.as_str());
    match authority.and_then(|a| HeaderValue::from_str(a).ok()) {
        Some(value) => {
            let mut headers = parts.headers.clone();
            headers.insert(http::header::HOST, value);
            Cow::Owned(headers)
        }
        None => Cow::Borrowed(&parts.headers),
    }
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
