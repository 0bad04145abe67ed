//! Hostile requests against the real binary: what a holder of one signed
//! request must not be able to turn it into (issue 9, item 1).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

mod common;

use common::{Req, Response, Server};

fn code(resp: &Response) -> String {
    resp.error_code().unwrap_or_else(|| format!("<no code, status {}>", resp.status))
}

/// A presigned PUT URL plus an unsigned `x-amz-copy-source` header used to
/// become a server-side copy of any object into the URL's key; a presigned
/// UploadPart the same through UploadPartCopy; metadata and ACLs could be
/// injected. Each is refused with AccessDenied and changes nothing.
#[test]
fn presigned_urls_obey_only_signed_headers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let c = server.client();
    for bucket in ["/other-bucket", "/pub"] {
        assert_eq!(c.send(Req::new("PUT", bucket)).status, 200);
    }
    let secret = b"name,salary\nalice,1000000\n";
    assert_eq!(c.send(Req::new("PUT", "/other-bucket/payroll.csv").body(secret)).status, 200);

    let put_url = c.presigned_target("PUT", "/pub/upload.txt", "");
    for forged in [
        ("x-amz-copy-source", "/other-bucket/payroll.csv"),
        ("x-amz-meta-injected", "yes"),
        ("x-amz-acl", "public-read-write"),
    ] {
        let resp = c.send_raw("PUT", &put_url, &[forged], b"");
        assert_eq!((resp.status, code(&resp)), (403, "AccessDenied".into()), "{forged:?}");
        assert!(resp.text().contains(&format!("<HeadersNotSigned>{}</HeadersNotSigned>", forged.0)), "{}", resp.text());
        assert_eq!(c.send(Req::new("HEAD", "/pub/upload.txt")).status, 404, "{forged:?} left an object");
    }
    // The URL itself still works, and unsigned headers outside x-amz-* are fine.
    let resp = c.send_raw("PUT", &put_url, &[("x-amzn-trace-id", "Root=1-0")], b"mine");
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(c.send(Req::new("GET", "/pub/upload.txt")).body, b"mine");

    let init = c.send(Req::new("POST", "/pub/big").query("uploads"));
    let upload_id = init.elements("UploadId").pop().expect("upload id");
    let part_url = c.presigned_target("PUT", "/pub/big", &format!("partNumber=1&uploadId={upload_id}"));
    let resp = c.send_raw("PUT", &part_url, &[("x-amz-copy-source", "/other-bucket/payroll.csv")], b"");
    assert_eq!((resp.status, code(&resp)), (403, "AccessDenied".into()));
    let parts = c.send(Req::new("GET", "/pub/big").query(&format!("uploadId={upload_id}")));
    assert!(parts.elements("PartNumber").is_empty(), "a part was copied: {}", parts.text());
}

/// A header-signed request whose SignedHeaders leave out `host` (so it could
/// be replayed against another host name), or that carries an unsigned
/// `x-amz-*` header, is refused.
#[test]
fn header_signed_requests_must_sign_host_and_amz_headers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let c = server.client();
    assert_eq!(c.send(Req::new("PUT", "/bkt")).status, 200);

    let head = c.signed_head(&Req::new("PUT", "/bkt/k"), std::time::SystemTime::now(), 0, None);
    let forged = head.replacen("\r\n", "\r\nx-amz-copy-source: /bkt/other\r\n", 1);
    let resp = send_head(&c, &forged);
    assert_eq!((resp.status, code(&resp)), (403, "AccessDenied".into()), "{}", resp.text());

    let without_host = sign_without_host(&c);
    let resp = send_head(&c, &without_host);
    assert_eq!((resp.status, code(&resp)), (403, "AccessDenied".into()), "{}", resp.text());
    assert!(resp.text().contains("<HeadersNotSigned>host</HeadersNotSigned>"), "{}", resp.text());
}

fn send_head(c: &common::Client, head: &str) -> Response {
    use std::io::Write;
    let mut stream = c.connect();
    stream.write_all(head.as_bytes()).expect("write");
    common::read_response(&mut stream, false)
}

/// A valid SigV4 GET of the bucket listing that signs only the two x-amz headers.
fn sign_without_host(c: &common::Client) -> String {
    use tessera::auth::sigv4;
    let date = common::amz_date(std::time::SystemTime::now());
    let scope = format!("{}/{}/s3/aws4_request", &date[..8], common::REGION);
    let empty = sigv4::EMPTY_SHA256_HEX;
    let headers = format!("x-amz-content-sha256:{empty}\nx-amz-date:{date}\n");
    let signed = "x-amz-content-sha256;x-amz-date";
    let creq = sigv4::canonical_request("GET", "/bkt", "", &headers, signed, empty);
    let key = sigv4::signing_key(&c.secret_key, &date[..8], common::REGION, "s3");
    let sig = sigv4::hmac_hex(&key, &sigv4::string_to_sign(&date, &scope, &creq));
    format!(
        "GET /bkt HTTP/1.1\r\nhost: {}\r\nx-amz-content-sha256: {empty}\r\nx-amz-date: {date}\r\n\
         authorization: AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={sig}\r\n\
         connection: close\r\n\r\n",
        c.addr, c.access_key
    )
}
