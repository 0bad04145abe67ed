//! SigV2 verification: `Authorization: AWS AKID:signature` and presigned URLs
//! with `AWSAccessKeyId`, `Signature` and `Expires`.
//! Both carry an unsigned payload.
//!
//! Reference: <https://docs.aws.amazon.com/AmazonS3/latest/userguide/RESTAuthentication.html>
//! The canonical resource is the raw path as sent, preceded by the bucket for
//! virtual-hosted requests (`bucket.domain`), as S3 defines it.

use std::borrow::Cow;

use base64::Engine;
use http::request::Parts;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::auth::clock;
use crate::auth::query::RawQuery;
use crate::auth::sigv2;
use crate::auth::verify::{lookup_secret, signature_mismatch, AuthContext, PayloadMode, VerifiedRequest};
use crate::error::{S3Error, S3ErrorCode, S3Result};

/// `Authorization: AWS AKID:signature` (the part after `AWS ` is `rest`).
pub(crate) fn header(parts: &Parts, ctx: &AuthContext, query: &RawQuery, rest: &str) -> S3Result<VerifiedRequest> {
    let (access_key, signature) =
        rest.trim().split_once(':').filter(|(ak, sig)| !ak.is_empty() && !sig.is_empty()).ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature",
            )
            .with_extra("ArgumentName", "Authorization")
        })?;
    let time = clock::checked_request_time(&parts.headers, ctx.now)?;
    let secret = lookup_secret(ctx, access_key)?;
    let date_header = header_str(parts, "date");
    // With x-amz-date the Date slot is empty (it is signed among the amz
    // headers); a client that also signed its Date header is accepted too.
    let date_slots: Vec<&str> = if time.from_amz_header && !date_header.is_empty() {
        vec!["", date_header]
    } else if time.from_amz_header {
        vec![""]
    } else {
        vec![date_header]
    };
    check(parts, ctx, query, &secret, access_key, signature, &date_slots)?;
    Ok(verified(access_key))
}

/// A presigned SigV2 URL: `?AWSAccessKeyId=..&Expires=<epoch seconds>&Signature=..`.
pub(crate) fn presigned(parts: &Parts, ctx: &AuthContext, query: &RawQuery) -> S3Result<VerifiedRequest> {
    let (access_key, signature, expires) =
        match (query.get("AWSAccessKeyId"), query.get("Signature"), query.get("Expires")) {
            (Some(ak), Some(sig), Some(exp)) if !ak.is_empty() && !sig.is_empty() => (ak, sig, exp),
            _ => {
                return Err(S3Error::with_message(
                    S3ErrorCode::AccessDenied,
                    "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters",
                ))
            }
        };
    let deadline =
        expires.parse::<i64>().ok().and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok()).ok_or_else(
            || {
                S3Error::with_message(
                    S3ErrorCode::AccessDenied,
                    format!("Invalid date (should be seconds since epoch): {expires}"),
                )
            },
        )?;
    let now = clock::server_now(ctx.now)?;
    if now > deadline {
        return Err(S3Error::with_message(S3ErrorCode::AccessDenied, "Request has expired")
            .with_extra("Expires", clock::format_iso8601(deadline))
            .with_extra("ServerTime", clock::format_iso8601(now)));
    }
    let secret = lookup_secret(ctx, access_key)?;
    check(parts, ctx, query, &secret, access_key, signature, &[expires])?;
    Ok(verified(access_key))
}

fn verified(access_key: &str) -> VerifiedRequest {
    VerifiedRequest { access_key: access_key.to_string(), payload: PayloadMode::Unsigned }
}

/// Recomputes the signature for each candidate Date slot and compares it in
/// constant time with the one provided.
fn check(
    parts: &Parts,
    ctx: &AuthContext,
    query: &RawQuery,
    secret: &str,
    access_key: &str,
    provided: &str,
    date_slots: &[&str],
) -> S3Result<()> {
    let provided_raw = base64::engine::general_purpose::STANDARD.decode(provided.trim()).unwrap_or_default();
    let amz_headers = sigv2::canonical_amz_headers(&parts.headers);
    let path = match ctx.virtual_bucket {
        Some(bucket) => Cow::Owned(format!("/{bucket}{}", parts.uri.path())),
        None => Cow::Borrowed(parts.uri.path()),
    };
    let resource = sigv2::canonical_resource(&path, &query.pairs_v2());
    let mut first_sts = None;
    for date in date_slots {
        let sts = sigv2::string_to_sign(
            parts.method.as_str(),
            header_str(parts, "content-md5"),
            header_str(parts, "content-type"),
            date,
            &amz_headers,
            &resource,
        );
        let computed = sigv2::hmac_sha1(secret.as_bytes(), sts.as_bytes());
        if bool::from(computed.as_slice().ct_eq(provided_raw.as_slice())) {
            return Ok(());
        }
        first_sts.get_or_insert(sts);
    }
    Err(signature_mismatch(access_key, provided, first_sts.unwrap_or_default()))
}

/// A header as text, trimmed, or "" when absent or not text.
fn header_str<'p>(parts: &'p Parts, name: &str) -> &'p str {
    parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or("")
}
