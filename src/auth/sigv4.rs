//! AWS Signature Version 4 as pure functions: canonical request, string to sign,
//! signing key. No I/O and no request types beyond `http::HeaderMap`, so every
//! step can be checked against the examples AWS publishes.
//!
//! References:
//! - <https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html>
//! - <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html>
//! - <https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html>

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName};
use sha2::{Digest, Sha256};

/// The only SigV4 algorithm we implement (SigV4a's ECDSA variant is not).
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Hex SHA-256 of the empty string, used for empty bodies and in chunk signatures.
pub const EMPTY_SHA256_HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// HMAC-SHA256 block size; keys are padded to it (see [`hmac_sha256`]).
const SHA256_BLOCK: usize = 64;

/// Percent-encodes per the SigV4 `UriEncode` rules: the unreserved characters
/// `A-Za-z0-9-_.~` are kept, every other byte of the UTF-8 form becomes `%XX`
/// with uppercase hex. `/` is kept when `encode_slash` is false (object key paths).
///
/// Why not `percent-encoding`'s sets: AWS's rule is exactly this one and differs
/// from RFC 3986 path encoding (for example `+`, `=`, `$` must be encoded).
pub fn uri_encode(s: &str, encode_slash: bool) -> String {
    uri_encode_bytes(s.as_bytes(), encode_slash)
}

/// [`uri_encode`] over raw bytes, for decoded query values that need not be UTF-8.
#[allow(clippy::indexing_slicing, reason = "a nibble (0..16) indexes the 16-byte HEX table")]
pub fn uri_encode_bytes(bytes: &[u8], encode_slash: bool) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        let keep = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || (b == b'/' && !encode_slash);
        if keep {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// Builds `CanonicalQueryString` from DECODED query pairs: each name and value is
/// [`uri_encode`]d (slash included), the pairs are sorted by encoded name and then
/// by encoded value, and joined as `name=value` with `&`. A parameter sent without
/// `=` takes an empty value (`?lifecycle` gives `lifecycle=`).
///
/// For presigned URLs the caller leaves out `X-Amz-Signature` before calling.
/// Generic over the pair types so that decoded bytes that are not UTF-8 still
/// re-encode to what the client signed; `&[(String, String)]` works as is.
pub fn canonical_query<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> String {
    let mut encoded: Vec<(String, String)> =
        pairs.iter().map(|(k, v)| (uri_encode_bytes(k.as_ref(), true), uri_encode_bytes(v.as_ref(), true))).collect();
    encoded.sort();
    let mut out = String::new();
    for (i, (k, v)) in encoded.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Builds `CanonicalHeaders`: for each name of `signed` (lowercase, in the order
/// given, which SigV4 requires to be sorted), `name:value\n` where the value is
/// trimmed with internal runs of spaces and tabs collapsed to one space, and the
/// values of a repeated header are joined with `,`.
///
/// Returns `None` when a signed header is absent from the request: the signature
/// cannot match and the caller answers an error. `host` is an ordinary header in
/// HTTP/1.1; a caller serving HTTP/2 must put `:authority` in as `host` first.
/// Values that are not UTF-8 are converted lossily (such a signature would not match).
pub fn canonical_headers(headers: &HeaderMap, signed: &[&str]) -> Option<String> {
    let mut out = String::new();
    for name in signed {
        let name = name.to_ascii_lowercase();
        let mut values = headers.get_all(name.as_str()).iter().peekable();
        values.peek()?;
        out.push_str(&name);
        out.push(':');
        for (i, value) in values.enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_trimmed(&mut out, &String::from_utf8_lossy(value.as_bytes()));
        }
        out.push('\n');
    }
    Some(out)
}

/// Appends `value` with SigV4's `Trimall`: no leading or trailing whitespace,
/// and each internal run of whitespace replaced by one space.
fn push_trimmed(out: &mut String, value: &str) {
    for (i, word) in value.split_ascii_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
}

/// Joins the canonical request. `canonical_headers` is the output of
/// [`canonical_headers`] (each line already ends in `\n`), so the blank line that
/// SigV4 puts before `SignedHeaders` comes from the join.
pub fn canonical_request(
    method: &str,
    canonical_uri: &str,
    canonical_query: &str,
    canonical_headers: &str,
    signed_headers: &str,
    payload_hash: &str,
) -> String {
    [method, canonical_uri, canonical_query, canonical_headers, signed_headers, payload_hash].join("\n")
}

/// Derives the signing key: `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
pub fn signing_key(secret: &str, yyyymmdd: &str, region: &str, service: &str) -> [u8; 32] {
    let k_secret = format!("AWS4{secret}");
    let k_date = hmac_sha256(k_secret.as_bytes(), yyyymmdd.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

/// The credential scope `yyyymmdd/region/service/aws4_request`.
pub fn scope(yyyymmdd: &str, region: &str, service: &str) -> String {
    format!("{yyyymmdd}/{region}/{service}/aws4_request")
}

/// `AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hex(sha256(canonical_request))}`.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", sha256_hex(canonical_request.as_bytes()))
}

/// Lowercase hex of `HMAC-SHA256(key, msg)`: the signature of a string to sign.
pub fn hmac_hex(key: &[u8], msg: &str) -> String {
    hex::encode(hmac_sha256(key, msg.as_bytes()))
}

/// Lowercase hex SHA-256, the form SigV4 uses for payload and request hashes.
/// A signature as sent: exactly 64 lowercase hex digits, as SigV4 defines it.
/// Uppercase is refused, so a signature has one spelling only.
pub fn decode_signature(text: &str) -> Option<[u8; 32]> {
    let lower_hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
    if text.len() != 64 || !text.as_bytes().iter().all(lower_hex) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok().map(|()| out)
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// HMAC-SHA256 without a fallible constructor on the request path.
///
/// `Hmac::new_from_slice` returns a `Result` that cannot fail for HMAC; instead of
/// unwrapping it we do what HMAC does to a key (RFC 2104 section 2): hash it when
/// longer than a block, then zero-pad it to the block size. The padded key gives
/// the same MAC and fits the infallible `KeyInit::new`.
#[allow(
    clippy::indexing_slicing,
    reason = "the key is copied into a 64-byte block only when it fits, or its 32-byte digest"
)]
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut block = [0u8; SHA256_BLOCK];
    if key.len() > SHA256_BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut mac = <Hmac<Sha256> as KeyInit>::new(&block.into());
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// What a presigned URL (query-string authentication) is made of.
pub struct Presign<'a> {
    pub method: &'a str,
    /// The path as it will be sent, already [`uri_encode`]d (`/bucket/key`).
    pub path: &'a str,
    /// Further query parameters (`partNumber`, `uploadId`...), decoded.
    pub query: &'a [(String, String)],
    /// The headers the client will send, `host` (the endpoint's authority)
    /// among them: every one is signed.
    pub headers: &'a HeaderMap,
    pub access_key: &'a str,
    pub secret: &'a str,
    pub region: &'a str,
    /// `yyyymmddThhmmssZ`.
    pub amz_date: &'a str,
    /// Seconds the URL stays valid (SigV4 allows 1 to 604800).
    pub expires: u32,
}

/// The query string of a presigned URL for `p` (`X-Amz-Signature` last, as
/// in AWS's example), with `UNSIGNED-PAYLOAD`: the body is not known when
/// the URL is made. Every header of `p.headers` is in `SignedHeaders`, so a
/// client that sends another value is refused.
/// Reference: <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html>
pub fn presign(p: &Presign) -> String {
    let date = p.amz_date.get(..8).unwrap_or(p.amz_date);
    let scope = scope(date, p.region, "s3");
    let mut names: Vec<&str> = p.headers.keys().map(HeaderName::as_str).collect();
    names.sort_unstable();
    let signed = names.join(";");
    let canonical = canonical_headers(p.headers, &names).unwrap_or_default();
    let mut pairs: Vec<(String, String)> = vec![
        ("X-Amz-Algorithm".into(), ALGORITHM.into()),
        ("X-Amz-Credential".into(), format!("{}/{scope}", p.access_key)),
        ("X-Amz-Date".into(), p.amz_date.into()),
        ("X-Amz-Expires".into(), p.expires.to_string()),
        ("X-Amz-SignedHeaders".into(), signed.clone()),
    ];
    pairs.extend(p.query.iter().cloned());
    let query = canonical_query(&pairs);
    let request = canonical_request(p.method, p.path, &query, &canonical, &signed, "UNSIGNED-PAYLOAD");
    let key = signing_key(p.secret, date, p.region, "s3");
    format!("{query}&X-Amz-Signature={}", hmac_hex(&key, &string_to_sign(p.amz_date, &scope, &request)))
}

#[cfg(test)]
mod tests {
    //! Vectors from the AWS documentation pages cited in the module doc.
    use super::*;
    use http::HeaderValue;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const DATE: &str = "20130524T000000Z";

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_static(v));
        }
        map
    }

    fn sign(method: &str, uri: &str, query: &str, hdrs: &HeaderMap, signed: &[&str], payload: &str) -> String {
        let ch = canonical_headers(hdrs, signed).unwrap_or_default();
        let cr = canonical_request(method, uri, query, &ch, &signed.join(";"), payload);
        let sts = string_to_sign(DATE, &scope("20130524", "us-east-1", "s3"), &cr);
        hmac_hex(&signing_key(SECRET, "20130524", "us-east-1", "s3"), &sts)
    }

    #[test]
    fn uri_encode_rules() {
        assert_eq!(uri_encode("a b+c/d~e", false), "a%20b%2Bc/d~e");
        assert_eq!(uri_encode("a/b", true), "a%2Fb");
        assert_eq!(uri_encode("é$", true), "%C3%A9%24");
    }

    #[test]
    fn canonical_query_sorts_and_encodes() {
        let pairs = vec![
            ("prefix".to_string(), "J".to_string()),
            ("max-keys".to_string(), "2".to_string()),
            ("a".to_string(), "x y".to_string()),
            ("a".to_string(), "b".to_string()),
        ];
        assert_eq!(canonical_query(&pairs), "a=b&a=x%20y&max-keys=2&prefix=J");
    }

    #[test]
    fn canonical_headers_trims_and_joins() {
        let mut h = headers(&[("x-amz-meta-a", "  one   two  "), ("x-amz-meta-b", "1")]);
        h.append("x-amz-meta-b", HeaderValue::from_static(" 2 "));
        assert_eq!(
            canonical_headers(&h, &["x-amz-meta-a", "x-amz-meta-b"]).as_deref(),
            Some("x-amz-meta-a:one two\nx-amz-meta-b:1,2\n")
        );
        assert_eq!(canonical_headers(&h, &["host"]), None);
    }

    #[test]
    fn hmac_long_key_matches_rfc4231_case6() {
        // RFC 4231 test case 6: 131-byte key, longer than the block size.
        let key = [0xaau8; 131];
        let mac = hmac_sha256(&key, b"Test Using Larger Than Block-Size Key - Hash Key First");
        assert_eq!(hex::encode(mac), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    }

    #[test]
    fn aws_example_get_object() {
        let h = headers(&[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256_HEX),
            ("x-amz-date", DATE),
        ]);
        let signed = ["host", "range", "x-amz-content-sha256", "x-amz-date"];
        assert_eq!(
            sign("GET", "/test.txt", "", &h, &signed, EMPTY_SHA256_HEX),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn aws_example_put_object() {
        let payload = sha256_hex(b"Welcome to Amazon S3.");
        let h = headers(&[
            ("date", "Fri, 24 May 2013 00:00:00 GMT"),
            ("host", "examplebucket.s3.amazonaws.com"),
            ("x-amz-content-sha256", "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"),
            ("x-amz-date", DATE),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ]);
        let signed = ["date", "host", "x-amz-content-sha256", "x-amz-date", "x-amz-storage-class"];
        let uri = format!("/{}", uri_encode("test$file.text", false));
        assert_eq!(uri, "/test%24file.text");
        assert_eq!(
            sign("PUT", &uri, "", &h, &signed, &payload),
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
        );
    }

    #[test]
    fn aws_example_get_bucket_lifecycle() {
        let h = headers(&[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("x-amz-content-sha256", EMPTY_SHA256_HEX),
            ("x-amz-date", DATE),
        ]);
        let query = canonical_query(&[("lifecycle", "")]);
        let signed = ["host", "x-amz-content-sha256", "x-amz-date"];
        assert_eq!(
            sign("GET", "/", &query, &h, &signed, EMPTY_SHA256_HEX),
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
        );
    }

    #[test]
    fn aws_example_list_objects() {
        let h = headers(&[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("x-amz-content-sha256", EMPTY_SHA256_HEX),
            ("x-amz-date", DATE),
        ]);
        let query = canonical_query(&[("prefix", "J"), ("max-keys", "2")]);
        assert_eq!(query, "max-keys=2&prefix=J");
        let signed = ["host", "x-amz-content-sha256", "x-amz-date"];
        assert_eq!(
            sign("GET", "/", &query, &h, &signed, EMPTY_SHA256_HEX),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        );
    }

    #[test]
    fn aws_example_presigned_url() {
        let h = headers(&[("host", "examplebucket.s3.amazonaws.com")]);
        let query = canonical_query(&[
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            ("X-Amz-Credential", "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"),
            ("X-Amz-Date", DATE),
            ("X-Amz-Expires", "86400"),
            ("X-Amz-SignedHeaders", "host"),
        ]);
        assert_eq!(
            sign("GET", "/test.txt", &query, &h, &["host"], "UNSIGNED-PAYLOAD"),
            "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
    }

    /// The whole URL of AWS's query-string example (GET examplebucket/test.txt).
    #[test]
    fn aws_example_presign() {
        let host = headers(&[("host", "examplebucket.s3.amazonaws.com")]);
        let p = Presign {
            method: "GET",
            path: "/test.txt",
            query: &[],
            headers: &host,
            access_key: "AKIAIOSFODNN7EXAMPLE",
            secret: SECRET,
            region: "us-east-1",
            amz_date: DATE,
            expires: 86400,
        };
        assert_eq!(
            presign(&p),
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2F\
             aws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=\
             aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
        let more = headers(&[("host", "examplebucket.s3.amazonaws.com"), ("Content-Type", " text/plain ")]);
        let query = [("partNumber".to_string(), "1".to_string())];
        let signed = presign(&Presign { headers: &more, query: &query, ..p });
        assert!(signed.contains("X-Amz-SignedHeaders=content-type%3Bhost&"), "{signed}");
        assert!(signed.contains("&partNumber=1&"), "{signed}");
    }

    #[test]
    fn aws_example_streaming_seed_signature() {
        let h = headers(&[
            ("content-encoding", "aws-chunked"),
            ("content-length", "66824"),
            ("host", "s3.amazonaws.com"),
            ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
            ("x-amz-date", DATE),
            ("x-amz-decoded-content-length", "66560"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ]);
        let signed = [
            "content-encoding",
            "content-length",
            "host",
            "x-amz-content-sha256",
            "x-amz-date",
            "x-amz-decoded-content-length",
            "x-amz-storage-class",
        ];
        assert_eq!(
            sign("PUT", "/examplebucket/chunkObject.txt", "", &h, &signed, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
            "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
        );
    }

    #[test]
    fn only_lowercase_hex_signatures_decode() {
        let lower = "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
        assert!(decode_signature(lower).is_some());
        assert!(decode_signature(&lower.to_uppercase()).is_none());
        assert!(decode_signature(&lower[1..]).is_none());
    }
}
