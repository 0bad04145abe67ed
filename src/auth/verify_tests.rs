//! Tests of `verify`: AWS's published requests verbatim, then requests signed
//! here as a client would, bent one way at a time.

use super::*;
use crate::auth::chunked::AwsChunkedDecoder;
use crate::auth::sigv2;
use std::time::{Duration as StdDuration, UNIX_EPOCH};

const AK: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const DATE: &str = "20130524T000000Z";
/// 2013-05-24T00:00:00Z, the time of every SigV4 example.
const EXAMPLE_EPOCH: u64 = 1_369_353_600;
const HOST: &str = "examplebucket.s3.amazonaws.com";

fn secrets(ak: &str) -> Option<String> {
    (ak == AK).then(|| SECRET.to_string())
}

fn ctx_at(region: &'static str, offset_secs: i64) -> AuthContext<'static> {
    let base = UNIX_EPOCH + StdDuration::from_secs(EXAMPLE_EPOCH);
    let now = if offset_secs >= 0 {
        base + StdDuration::from_secs(offset_secs.unsigned_abs())
    } else {
        base - StdDuration::from_secs(offset_secs.unsigned_abs())
    };
    AuthContext { region, now, secret_for: &secrets, virtual_bucket: None }
}

fn ctx() -> AuthContext<'static> {
    ctx_at("us-east-1", 0)
}

fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
    let mut b = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap().into_parts().0
}

fn err(r: S3Result<VerifiedRequest>) -> S3Error {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e,
    }
}

fn extra<'e>(e: &'e S3Error, name: &str) -> Option<&'e str> {
    e.extra.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
}

/// Signs like an SDK: every header given is signed; `signed_uri` is the
/// canonical URI the client believes in (normally the path it sends).
fn sign_v4(method: &str, signed_uri: &str, query: &[(&str, &str)], headers: &[(&str, &str)], payload: &str) -> String {
    let mut names: Vec<&str> = headers.iter().map(|(k, _)| *k).collect();
    names.sort_unstable();
    let map = parts(method, "/", headers).headers;
    let ch = sigv4::canonical_headers(&map, &names).unwrap();
    let cq = sigv4::canonical_query(query);
    let cr = sigv4::canonical_request(method, signed_uri, &cq, &ch, &names.join(";"), payload);
    let scope = sigv4::scope("20130524", "us-east-1", "s3");
    let sig = sigv4::hmac_hex(
        &sigv4::signing_key(SECRET, "20130524", "us-east-1", "s3"),
        &sigv4::string_to_sign(DATE, &scope, &cr),
    );
    format!("AWS4-HMAC-SHA256 Credential={AK}/{scope}, SignedHeaders={}, Signature={sig}", names.join(";"))
}

/// A signed GET of `uri` (path and query as sent), signing `signed_uri`.
fn signed_get(uri: &str, signed_uri: &str, query: &[(&str, &str)]) -> Parts {
    let base = [("host", HOST), ("x-amz-content-sha256", sigv4::EMPTY_SHA256_HEX), ("x-amz-date", DATE)];
    let auth = sign_v4("GET", signed_uri, query, &base, sigv4::EMPTY_SHA256_HEX);
    let mut all = base.to_vec();
    all.push(("authorization", &auth));
    parts("GET", uri, &all)
}

#[test]
fn aws_example_get_object_verbatim() {
    let p = parts(
        "GET",
        "/test.txt",
        &[
            ("host", HOST),
            ("range", "bytes=0-9"),
            ("x-amz-content-sha256", sigv4::EMPTY_SHA256_HEX),
            ("x-amz-date", DATE),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
                 SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,\
                 Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
            ),
        ],
    );
    let v = verify(&p, &ctx()).unwrap();
    assert_eq!(v.access_key, AK);
    assert!(matches!(v.payload, PayloadMode::Sha256(d) if hex::encode(d) == sigv4::EMPTY_SHA256_HEX));
}

const PRESIGNED: &str = "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256\
    &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
    &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
    &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

#[test]
fn aws_example_presigned_url_verbatim_and_expired() {
    let p = parts("GET", PRESIGNED, &[("host", HOST)]);
    let v = verify(&p, &ctx_at("us-east-1", 86_400)).unwrap();
    assert!(matches!(v.payload, PayloadMode::Unsigned));

    let e = err(verify(&p, &ctx_at("us-east-1", 86_401)));
    assert_eq!((e.code, e.message.as_str()), (S3ErrorCode::AccessDenied, "Request has expired"));
    assert_eq!(extra(&e, "X-Amz-Expires"), Some("86400"));
    assert_eq!(extra(&e, "Expires"), Some("2013-05-25T00:00:00Z"));
    assert_eq!(extra(&e, "ServerTime"), Some("2013-05-25T00:00:01Z"));
}

#[test]
fn presigned_not_yet_valid_and_bad_expires() {
    let p = parts("GET", PRESIGNED, &[("host", HOST)]);
    let e = err(verify(&p, &ctx_at("us-east-1", -16 * 60)));
    assert_eq!((e.code, e.message.as_str()), (S3ErrorCode::AccessDenied, "Request is not valid yet"));
    for bad in ["0", "604801", "abc"] {
        let uri = PRESIGNED.replace("X-Amz-Expires=86400", &format!("X-Amz-Expires={bad}"));
        let e = err(verify(&parts("GET", &uri, &[("host", HOST)]), &ctx()));
        assert_eq!(e.code, S3ErrorCode::AuthorizationQueryParametersError, "{bad}");
    }
    let uri = PRESIGNED.replace("&X-Amz-Date=20130524T000000Z", "");
    let e = err(verify(&parts("GET", &uri, &[("host", HOST)]), &ctx()));
    assert_eq!(e.code, S3ErrorCode::AuthorizationQueryParametersError);
}

#[test]
fn presigned_region_mismatch() {
    let p = parts("GET", PRESIGNED, &[("host", HOST)]);
    let e = err(verify(&p, &ctx_at("eu-west-1", 0)));
    assert_eq!(e.code, S3ErrorCode::AuthorizationQueryParametersError);
    assert_eq!(extra(&e, "Region"), Some("eu-west-1"));
}

#[test]
fn presigned_tampered_query_fails() {
    let uri = PRESIGNED.replace("/test.txt?", "/test.txt?versionId=1&");
    let e = err(verify(&parts("GET", &uri, &[("host", HOST)]), &ctx()));
    assert_eq!(e.code, S3ErrorCode::SignatureDoesNotMatch);
}

/// The headers of the sigv4-streaming.html example, whose seed signature is
/// 4f232c43...; the signer returned must then verify the example body.
#[test]
fn aws_streaming_example_end_to_end() {
    let p = parts(
        "PUT",
        "/examplebucket/chunkObject.txt",
        &[
            ("host", "s3.amazonaws.com"),
            ("x-amz-date", DATE),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "66560"),
            ("content-length", "66824"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
            ),
        ],
    );
    let v = verify(&p, &ctx()).unwrap();
    let PayloadMode::StreamingSigned { signer, trailer: false } = v.payload else {
        panic!("expected signed streaming, got {:?}", v.payload);
    };
    let mut body = Vec::new();
    for (len, sig) in [
        (65536usize, "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"),
        (1024, "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"),
        (0, "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"),
    ] {
        body.extend_from_slice(format!("{len:x};chunk-signature={sig}\r\n").as_bytes());
        body.extend(std::iter::repeat_n(b'a', len));
        body.extend_from_slice(b"\r\n");
    }
    let mut dec = AwsChunkedDecoder::new(Some(signer), false);
    let mut out = Vec::new();
    dec.push(bytes::Bytes::from(body), &mut out).unwrap();
    assert_eq!(dec.decoded_len(), 66560);
    assert!(dec.finish().unwrap().is_empty());
}

#[test]
fn self_signed_request_verifies_and_a_flipped_byte_fails() {
    let p = signed_get("/bucket/key", "/bucket/key", &[]);
    assert_eq!(verify(&p, &ctx()).unwrap().access_key, AK);

    let mut p = p;
    let auth = p.headers["authorization"].to_str().unwrap().to_string();
    let last = auth.chars().last().unwrap();
    let flipped = format!("{}{}", &auth[..auth.len() - 1], if last == '0' { '1' } else { '0' });
    p.headers.insert("authorization", HeaderValue::from_str(&flipped).unwrap());
    let e = err(verify(&p, &ctx()));
    assert_eq!(e.code, S3ErrorCode::SignatureDoesNotMatch);
    assert_eq!(extra(&e, "AWSAccessKeyId"), Some(AK));
    assert!(extra(&e, "CanonicalRequest").is_some_and(|cr| cr.starts_with("GET\n/bucket/key\n")));
}

#[test]
fn unknown_access_key() {
    let p = signed_get("/b/k", "/b/k", &[]);
    let c = AuthContext { region: "us-east-1", now: ctx().now, secret_for: &|_| None, virtual_bucket: None };
    assert_eq!(err(verify(&p, &c)).code, S3ErrorCode::InvalidAccessKeyId);
}

#[test]
fn clock_skew_either_way() {
    let p = signed_get("/b/k", "/b/k", &[]);
    assert!(verify(&p, &ctx_at("us-east-1", 15 * 60)).is_ok());
    for offset in [15 * 60 + 1, -(15 * 60 + 1)] {
        let e = err(verify(&p, &ctx_at("us-east-1", offset)));
        assert_eq!(e.code, S3ErrorCode::RequestTimeTooSkewed);
        assert_eq!(extra(&e, "RequestTime"), Some(DATE));
        assert_eq!(extra(&e, "MaxAllowedSkewMilliseconds"), Some("900000"));
        assert!(extra(&e, "ServerTime").is_some_and(|t| t.starts_with("2013-05-2") && t.ends_with('Z')));
    }
}

#[test]
fn region_mismatch_names_the_expected_region() {
    let p = signed_get("/b/k", "/b/k", &[]);
    let e = err(verify(&p, &ctx_at("eu-central-1", 0)));
    assert_eq!(e.code, S3ErrorCode::AuthorizationHeaderMalformed);
    assert_eq!(
        e.message,
        "The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-central-1'"
    );
    assert_eq!(extra(&e, "Region"), Some("eu-central-1"));
}

/// client-pitfalls.md item 9: a key `/a/+b` in bucket `bucket` is sent as
/// `/bucket//a/+b`; clients sign that path as sent, `+` literal.
#[test]
fn double_slash_and_literal_plus_in_path() {
    let p = signed_get("/bucket//a/+b", "/bucket//a/+b", &[]);
    assert!(verify(&p, &ctx()).is_ok());
}

/// A client that signs the strict encoding but sends a looser one
/// (parentheses raw, lowercase hex) verifies through the fallback.
#[test]
fn strict_encoding_fallback() {
    let p = signed_get("/bucket/x(1)%c3%a9", "/bucket/x%281%29%C3%A9", &[]);
    assert!(verify(&p, &ctx()).is_ok());
    let p = signed_get("/bucket/x(1)", "/bucket/other", &[]);
    assert_eq!(err(verify(&p, &ctx())).code, S3ErrorCode::SignatureDoesNotMatch);
}

#[test]
fn query_is_decoded_with_plus_literal() {
    let uri = "/bucket?list-type=2&prefix=a%20b+c&delimiter=%2F&acl";
    let q = [("list-type", "2"), ("prefix", "a b+c"), ("delimiter", "/"), ("acl", "")];
    assert!(verify(&signed_get(uri, "/bucket", &q), &ctx()).is_ok());
}

#[test]
fn host_from_authority_when_header_absent() {
    let mut p = signed_get("/b/k", "/b/k", &[]);
    p.headers.remove("host");
    p.uri = format!("http://{HOST}/b/k").parse().unwrap();
    assert!(verify(&p, &ctx()).is_ok());
}

#[test]
fn content_sha256_modes() {
    let cases = [
        ("UNSIGNED-PAYLOAD", None),
        ("STREAMING-UNSIGNED-PAYLOAD-TRAILER", None),
        ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", None),
        ("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", Some(S3ErrorCode::NotImplemented)),
        ("bogus", Some(S3ErrorCode::InvalidArgument)),
    ];
    for (value, expected) in cases {
        let headers = [("host", HOST), ("x-amz-content-sha256", value), ("x-amz-date", DATE)];
        let auth = sign_v4("PUT", "/b/k", &[], &headers, value);
        let mut all = headers.to_vec();
        all.push(("authorization", &auth));
        let r = verify(&parts("PUT", "/b/k", &all), &ctx());
        assert_eq!(r.as_ref().err().map(|e| e.code), expected, "{value}");
        if let Ok(v) = r {
            let ok = match value {
                "UNSIGNED-PAYLOAD" => matches!(v.payload, PayloadMode::Unsigned),
                "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => {
                    matches!(v.payload, PayloadMode::StreamingUnsignedTrailer)
                }
                _ => matches!(v.payload, PayloadMode::StreamingSigned { trailer: true, .. }),
            };
            assert!(ok, "{value}: {:?}", v.payload);
        }
    }
}

#[test]
fn missing_content_sha256_is_invalid_request() {
    let headers = [("host", HOST), ("x-amz-date", DATE)];
    let auth = sign_v4("GET", "/b/k", &[], &headers, "UNSIGNED-PAYLOAD");
    let p = parts("GET", "/b/k", &[headers[0], headers[1], ("authorization", &auth)]);
    let e = err(verify(&p, &ctx()));
    assert_eq!(e.code, S3ErrorCode::InvalidRequest);
    assert_eq!(e.message, "Missing required header for this request: x-amz-content-sha256");
}

#[test]
fn malformed_and_missing_authorization() {
    let p = parts("GET", "/b/k", &[("host", HOST)]);
    assert_eq!(err(verify(&p, &ctx())).code, S3ErrorCode::AccessDenied);

    let bad = [
        ("AWS4-HMAC-SHA256 Credential=x", S3ErrorCode::AuthorizationHeaderMalformed),
        (
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3, SignedHeaders=host, Signature=00",
            S3ErrorCode::AuthorizationHeaderMalformed,
        ),
        ("Bearer abc", S3ErrorCode::InvalidArgument),
        ("AWS nocolon", S3ErrorCode::InvalidArgument),
    ];
    for (auth, code) in bad {
        let p = parts("GET", "/b/k", &[("host", HOST), ("x-amz-date", DATE), ("authorization", auth)]);
        assert_eq!(err(verify(&p, &ctx())).code, code, "{auth}");
    }
}

#[test]
fn credential_date_must_match_request_day() {
    let mut p = signed_get("/b/k", "/b/k", &[]);
    p.headers.insert("x-amz-date", HeaderValue::from_static("20130523T235959Z"));
    let e = err(verify(&p, &ctx()));
    assert_eq!(e.code, S3ErrorCode::AuthorizationHeaderMalformed);
}

#[test]
fn header_and_presigned_together_is_rejected() {
    let mut p = signed_get("/b/k", "/b/k", &[]);
    p.uri = PRESIGNED.parse().unwrap();
    assert_eq!(err(verify(&p, &ctx())).code, S3ErrorCode::InvalidArgument);
}

const V2_EPOCH: u64 = 1_175_024_202; // Tue, 27 Mar 2007 19:36:42 GMT

fn ctx_v2(offset: u64) -> AuthContext<'static> {
    let now = UNIX_EPOCH + StdDuration::from_secs(V2_EPOCH + offset);
    AuthContext { region: "us-east-1", now, secret_for: &secrets, virtual_bucket: None }
}

/// The "Object GET" example of RESTAuthentication.html, verbatim.
#[test]
fn sigv2_aws_example_header() {
    let mut headers = vec![
        ("host", "awsexamplebucket1.s3.us-west-1.amazonaws.com"),
        ("date", "Tue, 27 Mar 2007 19:36:42 +0000"),
        ("authorization", "AWS AKIAIOSFODNN7EXAMPLE:qgk2+6Sv9/oM7G3qLEjTH1a1l1g="),
    ];
    let p = parts("GET", "/awsexamplebucket1/photos/puppy.jpg", &headers);
    let v = verify(&p, &ctx_v2(0)).unwrap();
    assert!(matches!(v.payload, PayloadMode::Unsigned));

    headers[2].1 = "AWS AKIAIOSFODNN7EXAMPLE:qgk2+6Sv9/oM7G3qLEjTH1a1l1h=";
    let p = parts("GET", "/awsexamplebucket1/photos/puppy.jpg", &headers);
    assert_eq!(err(verify(&p, &ctx_v2(0))).code, S3ErrorCode::SignatureDoesNotMatch);
    assert_eq!(err(verify(&p, &ctx_v2(3600))).code, S3ErrorCode::RequestTimeTooSkewed);
}

#[test]
fn sigv2_presigned_and_expired() {
    // Signature computed with Python's hmac/hashlib over
    // "GET\n\n\n1175139620\n/awsexamplebucket1/photos/puppy.jpg".
    let uri = "/awsexamplebucket1/photos/puppy.jpg?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE\
               &Expires=1175139620&Signature=1No4mq5ETf02z8aet9voy6gui6E%3D";
    let p = parts("GET", uri, &[("host", "s3.amazonaws.com")]);
    assert!(verify(&p, &ctx_v2(0)).is_ok());
    let e = err(verify(&p, &ctx_v2(1175139621 - V2_EPOCH)));
    assert_eq!((e.code, e.message.as_str()), (S3ErrorCode::AccessDenied, "Request has expired"));
    let e = err(verify(&parts("GET", "/b/k?Signature=x", &[]), &ctx_v2(0)));
    assert_eq!(e.code, S3ErrorCode::AccessDenied);
}

#[test]
fn sigv2_with_amz_date_subresource_and_meta() {
    let sts = sigv2::string_to_sign(
        "PUT",
        "",
        "text/plain",
        "",
        "x-amz-date:Tue, 27 Mar 2007 19:36:42 +0000\nx-amz-meta-a:1\n",
        "/b/k?partNumber=2&uploadId=u 1",
    );
    let sig = sigv2::sign(SECRET, &sts);
    let auth = format!("AWS {AK}:{sig}");
    let p = parts(
        "PUT",
        "/b/k?partNumber=2&uploadId=u%201&x-id=UploadPart",
        &[
            ("content-type", "text/plain"),
            ("x-amz-date", "Tue, 27 Mar 2007 19:36:42 +0000"),
            ("X-Amz-Meta-A", "1"),
            ("authorization", &auth),
        ],
    );
    assert!(verify(&p, &ctx_v2(0)).is_ok());
}

#[test]
fn odd_signed_header_names_do_not_panic() {
    let mut p = signed_get("/b/k", "/b/k", &[]);
    let auth = p.headers["authorization"]
        .to_str()
        .unwrap()
        .replace("SignedHeaders=host;", "SignedHeaders=Host;;bad name;\u{7f};");
    p.headers.insert("authorization", HeaderValue::from_str(&auth).unwrap_or(HeaderValue::from_static("x")));
    assert!(verify(&p, &ctx()).is_err());
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Arbitrary Authorization headers and query strings answer an error or a
        /// verified request, never a panic (a stand-in for a fuzz target).
        #[test]
        fn arbitrary_auth_and_query(
            auth in "(AWS4-HMAC-SHA256 |AWS )?[ -~]{0,120}",
            query in "[A-Za-z0-9%=&+/._-]{0,120}",
            amz_date in prop_oneof![Just(DATE.to_string()), "[ -~]{0,20}"],
            presign in any::<bool>(),
        ) {
            let q = if presign {
                format!("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=1&{query}")
            } else {
                query
            };
            let uri = format!("/b/k?{q}");
            let Ok(uri) = uri.parse::<http::Uri>() else { return Ok(()) };
            let mut p = parts("GET", "/", &[("host", HOST)]);
            p.uri = uri;
            if let Ok(v) = HeaderValue::from_str(&amz_date) {
                p.headers.insert("x-amz-date", v);
            }
            if !presign {
                if let Ok(v) = HeaderValue::from_str(&auth) {
                    p.headers.insert("authorization", v);
                }
            }
            let _ = verify(&p, &ctx());
        }
    }
}

fn headers_not_signed(e: &S3Error) -> Option<&str> {
    assert_eq!(e.code, S3ErrorCode::AccessDenied, "{e:?}");
    extra(e, "HeadersNotSigned")
}

/// Issue 9: an `x-amz-*` header that is not signed must not be obeyed, or
/// whoever holds a signed request can turn it into something else.
#[test]
fn unsigned_amz_header_is_refused_with_header_auth() {
    for (name, value) in
        [("x-amz-copy-source", "/other-bucket/payroll.csv"), ("x-amz-acl", "public-read"), ("x-amz-meta-injected", "1")]
    {
        let mut p = signed_get("/b/k", "/b/k", &[]);
        p.headers.insert(name, HeaderValue::from_static(value));
        assert_eq!(headers_not_signed(&err(verify(&p, &ctx()))), Some(name));
    }
    // Headers outside x-amz-* may stay unsigned, as SDKs leave them.
    let mut p = signed_get("/b/k", "/b/k", &[]);
    p.headers.insert("x-amzn-trace-id", HeaderValue::from_static("Root=1-abc"));
    p.headers.insert("user-agent", HeaderValue::from_static("aws-cli/2"));
    assert!(verify(&p, &ctx()).is_ok());
}

#[test]
fn host_must_be_signed() {
    let signed = [("x-amz-content-sha256", sigv4::EMPTY_SHA256_HEX), ("x-amz-date", DATE)];
    let auth = sign_v4("GET", "/b/k", &[], &signed, sigv4::EMPTY_SHA256_HEX);
    let p = parts("GET", "/b/k", &[("host", HOST), signed[0], signed[1], ("authorization", &auth)]);
    assert_eq!(headers_not_signed(&err(verify(&p, &ctx()))), Some("host"));
}

/// A presigned URL signed like an SDK: `host` plus `headers` signed, `query`
/// added to the signed query.
fn presign_v4(method: &str, path: &str, query: &[(&str, &str)], headers: &[(&str, &str)]) -> String {
    let mut names: Vec<&str> = headers.iter().map(|(k, _)| *k).chain(["host"]).collect();
    names.sort_unstable();
    let signed = names.join(";");
    let scope = sigv4::scope("20130524", "us-east-1", "s3");
    let credential = format!("{AK}/{scope}");
    let mut pairs: Vec<(&str, &str)> = vec![
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
        ("X-Amz-Credential", &credential),
        ("X-Amz-Date", DATE),
        ("X-Amz-Expires", "86400"),
        ("X-Amz-SignedHeaders", &signed),
    ];
    pairs.extend_from_slice(query);
    let mut all_headers = headers.to_vec();
    all_headers.push(("host", HOST));
    let map = parts(method, "/", &all_headers).headers;
    let ch = sigv4::canonical_headers(&map, &names).unwrap();
    let cq = sigv4::canonical_query(&pairs);
    let cr = sigv4::canonical_request(method, path, &cq, &ch, &signed, "UNSIGNED-PAYLOAD");
    let key = sigv4::signing_key(SECRET, "20130524", "us-east-1", "s3");
    let sig = sigv4::hmac_hex(&key, &sigv4::string_to_sign(DATE, &scope, &cr));
    pairs.push(("X-Amz-Signature", &sig));
    format!("{path}?{}", sigv4::canonical_query(&pairs))
}

#[test]
fn presigned_url_obeys_only_signed_amz_headers() {
    let url = presign_v4("PUT", "/b/upload.txt", &[], &[]);
    assert!(verify(&parts("PUT", &url, &[("host", HOST)]), &ctx()).is_ok());
    let copy = [("host", HOST), ("x-amz-copy-source", "/other-bucket/payroll.csv")];
    assert_eq!(headers_not_signed(&err(verify(&parts("PUT", &url, &copy), &ctx()))), Some("x-amz-copy-source"));
    let both = [("host", HOST), ("x-amz-acl", "public-read"), ("x-amz-meta-a", "1")];
    assert_eq!(headers_not_signed(&err(verify(&parts("PUT", &url, &both), &ctx()))), Some("x-amz-acl, x-amz-meta-a"));

    // An UploadPart URL cannot become an UploadPartCopy.
    let part = presign_v4("PUT", "/b/k", &[("partNumber", "1"), ("uploadId", "u1")], &[]);
    assert!(verify(&parts("PUT", &part, &copy), &ctx()).is_err());

    // Signed as a header, or carried in the signed query with the same value: obeyed.
    let signed_acl = presign_v4("PUT", "/b/k", &[], &[("x-amz-acl", "private")]);
    assert!(verify(&parts("PUT", &signed_acl, &[("host", HOST), ("x-amz-acl", "private")]), &ctx()).is_ok());
    let query_acl = presign_v4("PUT", "/b/k", &[("x-amz-acl", "private")], &[]);
    assert!(verify(&parts("PUT", &query_acl, &[("host", HOST), ("x-amz-acl", "private")]), &ctx()).is_ok());
    let e = err(verify(&parts("PUT", &query_acl, &[("host", HOST), ("x-amz-acl", "public-read")]), &ctx()));
    assert_eq!(headers_not_signed(&e), Some("x-amz-acl"));
}

/// SigV2 signs the bucket only through the canonical resource: a signature
/// for `/bucket-a/k` must not open `bucket-b.domain/bucket-a/k`.
#[test]
fn sigv2_virtual_host_bucket_is_signed() {
    let sign = |resource: &str| {
        let sts = sigv2::string_to_sign("GET", "", "", "1175139620", "", resource);
        sigv2::sign(SECRET, &sts).replace('+', "%2B").replace('/', "%2F").replace('=', "%3D")
    };
    let query = |sig: &str| format!("?AWSAccessKeyId={AK}&Expires=1175139620&Signature={sig}");
    let ctx_for = |bucket: Option<&'static str>| AuthContext { virtual_bucket: bucket, ..ctx_v2(0) };

    let path_style = format!("/bucket-a/k{}", query(&sign("/bucket-a/k")));
    assert!(verify(&parts("GET", &path_style, &[]), &ctx_for(None)).is_ok());
    let replayed = verify(&parts("GET", &path_style, &[("host", "bucket-b.example")]), &ctx_for(Some("bucket-b")));
    assert_eq!(err(replayed).code, S3ErrorCode::SignatureDoesNotMatch);

    let virtual_style = format!("/k{}", query(&sign("/bucket-b/k")));
    assert!(verify(&parts("GET", &virtual_style, &[]), &ctx_for(Some("bucket-b"))).is_ok());
}
