//! AWS Signature Version 2 for S3 (HMAC-SHA1), still produced by boto3's
//! `generate_presigned_url` in some configurations and by older tools.
//!
//! Reference: <https://docs.aws.amazon.com/AmazonS3/latest/userguide/RESTAuthentication.html>

use base64::Engine;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha1::{Digest, Sha1};

/// Query parameters that S3 signs as part of the canonical resource.
///
/// AWS documents the first group; the rest are the sub-resources that botocore's
/// `HmacV1Auth.QSAOfInterest` and MinIO's `resourceList` also sign, so a request
/// signed by either verifies here. Kept sorted so it can be binary-searched.
const SIGNED_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "delete",
    "encryption",
    "inventory",
    "legal-hold",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "retention",
    "select",
    "select-type",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// `StringToSign = METHOD\nContent-MD5\nContent-Type\nDate\nCanonicalizedAmzHeaders CanonicalizedResource`.
///
/// `date_or_expires` is the `Date` header, the empty string when `x-amz-date` is
/// sent (it then appears among the amz headers), or the `Expires` parameter of a
/// presigned URL. `canonical_amz_headers` ends each line with `\n` already.
pub fn string_to_sign(
    method: &str,
    content_md5: &str,
    content_type: &str,
    date_or_expires: &str,
    canonical_amz_headers: &str,
    canonical_resource: &str,
) -> String {
    format!("{method}\n{content_md5}\n{content_type}\n{date_or_expires}\n{canonical_amz_headers}{canonical_resource}")
}

/// `Base64(HMAC-SHA1(secret, string_to_sign))`.
pub fn sign(secret: &str, string_to_sign: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(hmac_sha1(secret.as_bytes(), string_to_sign.as_bytes()))
}

/// HMAC-SHA1 with the same infallible key handling as `sigv4::hmac_sha256`:
/// hash a key longer than the 64-byte block, zero-pad it (RFC 2104 section 2).
#[allow(
    clippy::indexing_slicing,
    reason = "the key is copied into a 64-byte block only when it fits, or its 20-byte digest"
)]
pub fn hmac_sha1(key: &[u8], msg: &[u8]) -> [u8; 20] {
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..20].copy_from_slice(&Sha1::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut mac = <Hmac<Sha1> as KeyInit>::new(&block.into());
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// `CanonicalizedAmzHeaders`: every `x-amz-*` header, lowercased, sorted by name,
/// values trimmed and a repeated header's values joined with `,`, one
/// `name:value\n` line each.
pub fn canonical_amz_headers(headers: &HeaderMap) -> String {
    let mut names: Vec<&str> = headers.keys().map(|k| k.as_str()).filter(|k| k.starts_with("x-amz-")).collect();
    names.sort_unstable();
    names.dedup();
    let mut out = String::new();
    for name in names {
        let values: Vec<String> =
            headers.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string()).collect();
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out
}

/// `CanonicalizedResource` for a path-style request: the raw path exactly as sent,
/// then `?` and the signed sub-resources of [`SIGNED_SUBRESOURCES`] sorted by name,
/// each `name` or `name=value` with the value percent-DECODED (as AWS and botocore
/// sign it), joined by `&`. `query` is the decoded `(name, value)` list, where a
/// parameter sent without `=` has `None` as its value.
pub fn canonical_resource(raw_path: &str, query: &[(String, Option<String>)]) -> String {
    let mut signed: Vec<&(String, Option<String>)> =
        query.iter().filter(|(name, _)| SIGNED_SUBRESOURCES.binary_search(&name.as_str()).is_ok()).collect();
    // Stable sort by name only, as botocore does, so repeated names keep their order.
    signed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::from(raw_path);
    for (i, (name, value)) in signed.into_iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(name);
        if let Some(value) = value {
            out.push('=');
            out.push_str(value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    #[test]
    fn subresources_are_sorted() {
        assert!(SIGNED_SUBRESOURCES.windows(2).all(|w| w[0] < w[1]));
    }

    /// The "Object GET" example of RESTAuthentication.html.
    #[test]
    fn aws_example_object_get() {
        let resource = canonical_resource("/awsexamplebucket1/photos/puppy.jpg", &[]);
        let sts = string_to_sign("GET", "", "", "Tue, 27 Mar 2007 19:36:42 +0000", "", &resource);
        assert_eq!(sign(SECRET, &sts), "qgk2+6Sv9/oM7G3qLEjTH1a1l1g=");
    }

    /// The "Object PUT" example; value cross-checked with Python's hmac/hashlib.
    #[test]
    fn object_put_with_content_type() {
        let sts = string_to_sign(
            "PUT",
            "",
            "image/jpeg",
            "Tue, 27 Mar 2007 21:15:45 +0000",
            "",
            "/awsexamplebucket1/photos/puppy.jpg",
        );
        assert_eq!(sign(SECRET, &sts), "iqRzw+ileNPu1fhspnRs8nOjjIA=");
    }

    #[test]
    fn resource_keeps_only_signed_subresources_sorted_and_decoded() {
        let q = vec![
            ("uploadId".to_string(), Some("a b".to_string())),
            ("prefix".to_string(), Some("x".to_string())),
            ("acl".to_string(), None),
            ("response-content-type".to_string(), Some("text/plain".to_string())),
        ];
        assert_eq!(canonical_resource("/b/k", &q), "/b/k?acl&response-content-type=text/plain&uploadId=a b");
    }

    #[test]
    fn amz_headers_sorted_lowercased_joined() {
        let mut h = HeaderMap::new();
        h.append("X-Amz-Meta-B", HeaderValue::from_static(" two "));
        h.append("x-amz-meta-a", HeaderValue::from_static("1"));
        h.append("x-amz-meta-a", HeaderValue::from_static("2"));
        h.append("content-type", HeaderValue::from_static("text/plain"));
        assert_eq!(canonical_amz_headers(&h), "x-amz-meta-a:1,2\nx-amz-meta-b:two\n");
    }
}
