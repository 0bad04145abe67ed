//! Bucket CORS (issue 15) against the real server: the `?cors` operations
//! with boto3, aws-cli v2 and a raw client, who may use them, the
//! unauthenticated preflight in every case S3 distinguishes, and the CORS
//! headers on actual responses, errors included. The browser itself is
//! `s3-compat-tests/scenarios/cors-browser.sh`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use base64::Engine;
use common::{Client, Req, Response, Server};
use md5::Digest;

/// Three rules: a site (exact origin and a wildcard one) that reads and
/// writes with some headers; anyone reads; any localhost port POSTs with any header.
const RULES: &str = "<CORSConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
    <CORSRule><ID>site</ID><AllowedOrigin>https://app.example.com</AllowedOrigin>\
    <AllowedOrigin>https://*.example.com</AllowedOrigin><AllowedMethod>GET</AllowedMethod>\
    <AllowedMethod>PUT</AllowedMethod><AllowedMethod>HEAD</AllowedMethod><AllowedHeader>content-type</AllowedHeader>\
    <AllowedHeader>x-amz-*</AllowedHeader><ExposeHeader>ETag</ExposeHeader><ExposeHeader>x-amz-request-id</ExposeHeader>\
    <MaxAgeSeconds>600</MaxAgeSeconds></CORSRule>\
    <CORSRule><ID>public</ID><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>\
    <CORSRule><AllowedOrigin>http://localhost:*</AllowedOrigin><AllowedMethod>POST</AllowedMethod>\
    <AllowedHeader>*</AllowedHeader></CORSRule></CORSConfiguration>";
const VARY: &str = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method";
const NOT_ALLOWED: &str = "CORSResponse: This CORS request is not allowed. This is usually because the evalution \
                           of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers \
                           are not whitelisted by the resource&apos;s CORS spec.";

fn put_cors(c: &Client, bucket: &str, doc: &str) -> Response {
    c.send(Req::new("PUT", bucket).query("cors").body(doc.as_bytes()))
}

/// A server with bucket `web` (the rules above, object `page.txt`) and
/// bucket `plain` (no rules, object `page.txt`).
fn world() -> (tempfile::TempDir, Server, Client) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let c = server.client();
    for bucket in ["/web", "/plain"] {
        assert_eq!(c.send(Req::new("PUT", bucket)).status, 200);
        let put = c.send(Req::new("PUT", &format!("{bucket}/page.txt")).body(b"hello"));
        assert_eq!(put.status, 200);
    }
    let resp = put_cors(&c, "/web", RULES);
    assert_eq!(resp.status, 200, "PutBucketCors: {}", resp.text());
    (dir, server, c)
}

/// An unsigned OPTIONS with the CORS request headers given.
fn preflight(c: &Client, target: &str, origin: Option<&str>, method: Option<&str>, headers: Option<&str>) -> Response {
    let mut sent = Vec::new();
    for (name, value) in
        [("origin", origin), ("access-control-request-method", method), ("access-control-request-headers", headers)]
    {
        if let Some(value) = value {
            sent.push((name, value));
        }
    }
    c.send_raw("OPTIONS", target, &sent, b"")
}

/// Every `access-control-*` and `vary` header, in the order received.
fn cors_headers(resp: &Response) -> Vec<(String, String)> {
    let wanted = |n: &str| n.starts_with("access-control-") || n == "vary";
    resp.headers.iter().filter(|(n, _)| wanted(n)).cloned().collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
}

fn assert_error(resp: &Response, status: u16, code: &str, what: &str) {
    assert_eq!((resp.status, resp.error_code().as_deref()), (status, Some(code)), "{what}: {}", resp.text());
}

fn assert_forbidden(resp: &Response, message: &str, method: &str, resource: &str, what: &str) {
    assert_error(resp, 403, "AccessForbidden", what);
    assert_eq!(resp.elements("Message"), [message], "{what}");
    assert_eq!((resp.elements("Method"), resp.elements("ResourceType")), (vec![method.into()], vec![resource.into()]));
    assert!(cors_headers(resp).is_empty(), "{what}: a refused preflight allows nothing: {:?}", resp.headers);
}

#[test]
fn preflights_are_answered_from_the_first_matching_rule() {
    let (_dir, _server, c) = world();
    let site =
        preflight(&c, "/web/page.txt", Some("https://app.example.com"), Some("PUT"), Some("Content-Type, X-Amz-Date"));
    assert_eq!(site.status, 200, "{}", site.text());
    let want = pairs(&[
        ("access-control-allow-origin", "https://app.example.com"),
        ("access-control-allow-methods", "GET, PUT, HEAD"),
        ("access-control-allow-headers", "content-type, x-amz-date"),
        ("access-control-expose-headers", "ETag, x-amz-request-id"),
        ("access-control-max-age", "600"),
        ("access-control-allow-credentials", "true"),
        ("vary", VARY),
    ]);
    assert_eq!(cors_headers(&site), want);
    assert_eq!(site.body.len(), 0);

    let wildcard = preflight(&c, "/web/page.txt", Some("https://shop.example.com"), Some("HEAD"), None);
    assert_eq!(wildcard.status, 200);
    assert_eq!(wildcard.header("access-control-allow-origin"), Some("https://shop.example.com"));
    assert_eq!(wildcard.header("access-control-allow-headers"), None, "none asked for");

    // Only the `*` rule allows another origin: `*` is answered, without credentials.
    let public = preflight(&c, "/web/page.txt", Some("https://other.org"), Some("GET"), None);
    assert_eq!(
        cors_headers(&public),
        pairs(&[("access-control-allow-origin", "*"), ("access-control-allow-methods", "GET"), ("vary", VARY)])
    );
    // The site rule does not allow this header; no later rule allows GET with it for this origin.
    let localhost = preflight(&c, "/web", Some("http://localhost:5173"), Some("POST"), Some("authorization,x-custom"));
    assert_eq!(localhost.status, 200, "{}", localhost.text());
    assert_eq!(localhost.header("access-control-allow-headers"), Some("authorization, x-custom"));
}

#[test]
fn preflights_no_rule_allows_are_refused_as_s3_refuses_them() {
    let (_dir, _server, c) = world();
    let origin = Some("https://app.example.com");
    let evil = preflight(&c, "/web/page.txt", Some("https://evil.com"), Some("PUT"), None);
    assert_forbidden(&evil, NOT_ALLOWED, "PUT", "OBJECT", "an origin no rule allows for PUT");
    let case = preflight(&c, "/web/page.txt", Some("https://app.Example.com"), Some("PUT"), None);
    assert_forbidden(&case, NOT_ALLOWED, "PUT", "OBJECT", "origins compare case-sensitively");
    let method = preflight(&c, "/web/page.txt", origin, Some("DELETE"), None);
    assert_forbidden(&method, NOT_ALLOWED, "DELETE", "OBJECT", "a method no rule allows");
    let header = preflight(&c, "/web/page.txt", origin, Some("PUT"), Some("content-type, authorization"));
    assert_forbidden(&header, NOT_ALLOWED, "PUT", "OBJECT", "a header no rule allows");
    let bucket = preflight(&c, "/web", Some("https://evil.com"), Some("PUT"), None);
    assert_forbidden(&bucket, NOT_ALLOWED, "PUT", "BUCKET", "on the bucket");

    let none = preflight(&c, "/plain/page.txt", origin, Some("GET"), None);
    assert_forbidden(&none, "CORSResponse: CORS is not enabled for this bucket.", "GET", "OBJECT", "no configuration");
    let missing = preflight(&c, "/no-such-bucket/k", origin, Some("GET"), None);
    assert_error(&missing, 403, "AccessForbidden", "a missing bucket");
    assert_eq!(missing.elements("Message"), ["CORSResponse: Bucket not found"]);

    let no_origin = preflight(&c, "/web/page.txt", None, Some("GET"), None);
    assert_error(&no_origin, 400, "BadRequest", "no Origin");
    assert_eq!(no_origin.elements("Message"), ["Insufficient information. Origin request header needed."]);
    let no_method = preflight(&c, "/web/page.txt", origin, None, None);
    assert_error(&no_method, 400, "BadRequest", "no Access-Control-Request-Method");
    assert_eq!(no_method.elements("Message"), ["Invalid Access-Control-Request-Method: null"]);
    let patch = preflight(&c, "/web/page.txt", origin, Some("PATCH"), None);
    assert_eq!(patch.elements("Message"), ["Invalid Access-Control-Request-Method: PATCH"]);
    let service = preflight(&c, "/", origin, Some("GET"), None);
    assert_error(&service, 400, "BadRequest", "a preflight that names no bucket");
}

/// A preflight is never signed and never does anything but answer: not
/// the operation its query names, not with the body it carries.
#[test]
fn a_preflight_runs_no_operation_and_reads_no_body() {
    let (_dir, _server, c) = world();
    let origin = Some("http://localhost:8080");
    for (target, method) in [("/web/new.txt?uploads", "POST"), ("/web?delete", "POST"), ("/web/page.txt", "POST")] {
        let resp = preflight(&c, target, origin, Some(method), None);
        assert_eq!(resp.status, 200, "{target}: {}", resp.text());
    }
    let uploads = c.send(Req::new("GET", "/web").query("uploads"));
    assert!(uploads.elements("UploadId").is_empty(), "no upload was started: {}", uploads.text());
    assert_eq!(c.send(Req::new("GET", "/web/page.txt")).body, b"hello", "nothing was deleted");

    // With a body, on a connection the client would keep: answered, body
    // unread, and the connection closed so the body is not taken for a request.
    let mut stream = c.connect();
    let head = format!(
        "OPTIONS /web/body.txt HTTP/1.1\r\nhost: {}\r\norigin: http://localhost:1\r\n\
         access-control-request-method: POST\r\ncontent-length: 20\r\n\r\nGET /web HTTP/1.1\r\n\r\n",
        c.addr
    );
    stream.write_all(head.as_bytes()).unwrap();
    let resp = common::read_response(&mut stream, false);
    assert_eq!((resp.status, resp.header("connection")), (200, Some("close")));
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(rest.is_empty(), "the body was not answered as a request: {}", String::from_utf8_lossy(&rest));
    assert_eq!(c.send(Req::new("HEAD", "/web/body.txt")).status, 404, "nothing was written");
}

#[test]
fn hostile_preflights_get_an_answer() {
    let (_dir, _server, c) = world();
    let origin = Some("http://localhost:3000");
    let many: Vec<String> = (0..300).map(|i| format!("x-h{i}")).collect();
    let resp = preflight(&c, "/web/k", origin, Some("POST"), Some(&many.join(",")));
    assert_forbidden(&resp, NOT_ALLOWED, "POST", "OBJECT", "more header names than anyone needs");
    let long: Vec<String> = (0..200).map(|i| format!("x-{i}-{}", "a".repeat(200))).collect();
    let resp = preflight(&c, "/web/k", origin, Some("POST"), Some(&long.join(", ")));
    assert_eq!(resp.status, 200, "200 names of 200 bytes, all allowed by `*`");
    assert_eq!(resp.header("access-control-allow-headers").map(str::len), Some(long.join(", ").len()));
    let bad_name = preflight(&c, "/web/k", origin, Some("POST"), Some("x-ok, bad name"));
    assert_forbidden(&bad_name, NOT_ALLOWED, "POST", "OBJECT", "a name that is no header name");
    let empty_names = preflight(&c, "/web/k", origin, Some("POST"), Some(" , ,"));
    assert_eq!((empty_names.status, empty_names.header("access-control-allow-headers")), (200, None));

    for odd in ["null", "https://\u{e9}t\u{e9}.example.com", "https://a.example.com/../x", "https://x\"<>'.example.com"]
    {
        let resp = preflight(&c, "/web/k", Some(odd), Some("GET"), None);
        assert_eq!(resp.status, 200, "{odd}: {}", resp.text());
        let want = if odd.ends_with(".example.com") { odd } else { "*" };
        assert_eq!(resp.header("access-control-allow-origin"), Some(want), "{odd}");
    }
    // A request head far beyond what hyper takes is refused, and the server goes on.
    let mut stream = c.connect();
    let huge = format!(
        "OPTIONS /web/k HTTP/1.1\r\nhost: {}\r\norigin: http://localhost:1\r\naccess-control-request-method: POST\r\n\
         access-control-request-headers: {}\r\n\r\n",
        c.addr,
        "x,".repeat(1 << 20)
    );
    let _ = stream.write_all(huge.as_bytes());
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    assert!(answer.is_empty() || answer.starts_with(b"HTTP/1.1 4"), "{}", String::from_utf8_lossy(&answer));
    assert_eq!(preflight(&c, "/web/k", origin, Some("POST"), None).status, 200, "still serving");
}

#[test]
fn preflights_work_virtual_hosted_style() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--domain", "s3.example.test"]);
    let mut c = server.client();
    assert_eq!(c.send(Req::new("PUT", "/site")).status, 200);
    assert_eq!(put_cors(&c, "/site", RULES).status, 200);
    c.host = Some("site.s3.example.test".into());
    let object = preflight(&c, "/a/b.txt", Some("https://app.example.com"), Some("PUT"), None);
    assert_eq!((object.status, object.header("access-control-allow-origin")), (200, Some("https://app.example.com")));
    let bucket = preflight(&c, "/", Some("https://evil.com"), Some("PUT"), None);
    assert_forbidden(&bucket, NOT_ALLOWED, "PUT", "BUCKET", "virtual-hosted bucket");
}

/// The headers an actual request from `https://app.example.com` gets.
fn site_headers() -> Vec<(String, String)> {
    pairs(&[
        ("access-control-allow-origin", "https://app.example.com"),
        ("access-control-allow-methods", "GET, PUT, HEAD"),
        ("access-control-expose-headers", "ETag, x-amz-request-id"),
        ("access-control-max-age", "600"),
        ("access-control-allow-credentials", "true"),
        ("vary", VARY),
    ])
}

#[test]
fn actual_responses_carry_the_rules_headers_errors_included() {
    let (_dir, _server, c) = world();
    let site = "https://app.example.com";
    let get = c.send(Req::new("GET", "/web/page.txt").header("origin", site));
    assert_eq!((get.status, cors_headers(&get)), (200, site_headers()), "a 200 GET");
    let missing = c.send(Req::new("GET", "/web/nope.txt").header("origin", site));
    assert_error(&missing, 404, "NoSuchKey", "a missing key");
    assert_eq!(cors_headers(&missing), site_headers(), "a 404");
    let anonymous = c.send_raw("GET", "/web/page.txt", &[("origin", site)], b"");
    assert_error(&anonymous, 403, "AccessDenied", "anonymous GET of a private object");
    assert_eq!(cors_headers(&anonymous), site_headers(), "a 403");
    let mut forger = c.clone();
    forger.secret_key = "not-the-secret-key-000000000000000000000".into();
    let forged = forger.send(Req::new("GET", "/web/page.txt").header("origin", site));
    assert_error(&forged, 403, "SignatureDoesNotMatch", "a wrong signature");
    assert_eq!(cors_headers(&forged), site_headers(), "a signature error");
    let head = c.send(Req::new("HEAD", "/web/page.txt").header("origin", site));
    assert_eq!((head.status, cors_headers(&head)), (200, site_headers()), "HEAD");
    let put = c.send(Req::new("PUT", "/web/up.txt").header("origin", "https://x.example.com").body(b"up"));
    assert_eq!((put.status, put.header("access-control-allow-origin")), (200, Some("https://x.example.com")));

    let public = c.send(Req::new("GET", "/web/page.txt").header("origin", "https://other.org"));
    let want = pairs(&[("access-control-allow-origin", "*"), ("access-control-allow-methods", "GET"), ("vary", VARY)]);
    assert_eq!(cors_headers(&public), want, "the `*` rule");
    let refused = c.send(Req::new("DELETE", "/web/up.txt").header("origin", site));
    assert_eq!((refused.status, cors_headers(&refused)), (204, pairs(&[("vary", VARY)])), "no rule allows DELETE");
    let without = c.send(Req::new("GET", "/web/page.txt"));
    assert!(cors_headers(&without).is_empty(), "no Origin, no CORS headers: {:?}", without.headers);
    let plain = c.send(Req::new("GET", "/plain/page.txt").header("origin", site));
    assert!(cors_headers(&plain).is_empty(), "a bucket without rules: {:?}", plain.headers);
    let no_bucket = c.send(Req::new("GET", "/nope/page.txt").header("origin", site));
    assert_error(&no_bucket, 404, "NoSuchBucket", "a missing bucket");
    assert!(cors_headers(&no_bucket).is_empty());
}

#[test]
fn configurations_are_checked_and_only_the_owner_changes_them() {
    let (dir, server, c) = world();
    let get = c.send(Req::new("GET", "/plain").query("cors"));
    assert_error(&get, 404, "NoSuchCORSConfiguration", "GetBucketCors without a configuration");
    assert_eq!(get.elements("BucketName"), ["plain"]);
    let minimal = "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin>\
                   <AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>";
    let refused = [
        ("not xml", "{\"CORSRules\": []}".to_string(), "MalformedXML"),
        ("no rule", "<CORSConfiguration/>".to_string(), "MalformedXML"),
        (
            "101 rules",
            format!(
                "<CORSConfiguration>{}</CORSConfiguration>",
                "<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>".repeat(101)
            ),
            "MalformedXML",
        ),
        ("PATCH", minimal.replace("GET", "PATCH"), "InvalidRequest"),
        ("two wildcards", minimal.replace(">*<", ">https://*.*<"), "InvalidRequest"),
    ];
    for (what, doc, code) in refused {
        assert_error(&put_cors(&c, "/plain", &doc), 400, code, what);
    }
    assert_error(&c.send(Req::new("GET", "/plain").query("cors")), 404, "NoSuchCORSConfiguration", "nothing was set");

    let md5 = |body: &[u8]| base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body));
    let wrong =
        c.send(Req::new("PUT", "/plain").query("cors").header("content-md5", md5(b"x")).body(minimal.as_bytes()));
    assert_error(&wrong, 400, "BadDigest", "a Content-MD5 of another body");
    let right = c.send(Req::new("PUT", "/plain").query("cors").header("content-md5", md5(minimal.as_bytes())));
    assert_eq!(right.status, 400, "a Content-MD5 of a body not sent");
    let right = c.send(
        Req::new("PUT", "/plain").query("cors").header("content-md5", md5(minimal.as_bytes())).body(minimal.as_bytes()),
    );
    assert_eq!(right.status, 200, "{}", right.text());

    let alice = common::user_client(&server, dir.path(), "alice");
    let denied = put_cors(&alice, "/plain", minimal);
    assert_error(&denied, 403, "AccessDenied", "PutBucketCors by another user");
    assert_error(&alice.send(Req::new("GET", "/web").query("cors")), 403, "AccessDenied", "GetBucketCors by another");
    assert_error(&alice.send(Req::new("DELETE", "/web").query("cors")), 403, "AccessDenied", "DeleteBucketCors");
    let anonymous = c.send_raw("PUT", "/plain?cors", &[], minimal.as_bytes());
    assert_error(&anonymous, 403, "AccessDenied", "anonymous PutBucketCors");
    assert_eq!(alice.send(Req::new("PUT", "/alices")).status, 200);
    assert_eq!(put_cors(&alice, "/alices", minimal).status, 200, "a user sets their own bucket's rules");

    // A policy may grant the CORS actions to another user.
    let policy = r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"alice"},"Action":["s3:GetBucketCORS","s3:PutBucketCORS"],"Resource":"arn:aws:s3:::web"}]}"#;
    assert_eq!(c.send(Req::new("PUT", "/web").query("policy").body(policy.as_bytes())).status, 204);
    assert_eq!(alice.send(Req::new("GET", "/web").query("cors")).status, 200, "granted by the policy");
    assert_eq!(alice.send(Req::new("DELETE", "/web").query("cors")).status, 204);
    assert_error(&c.send(Req::new("GET", "/web").query("cors")), 404, "NoSuchCORSConfiguration", "deleted");
}

/// A bucket deleted and created again has no rules of its old self.
#[test]
fn rules_go_with_their_bucket() {
    let (_dir, _server, c) = world();
    assert_eq!(c.send(Req::new("DELETE", "/web/page.txt")).status, 204);
    assert_eq!(c.send(Req::new("DELETE", "/web")).status, 204);
    assert_eq!(c.send(Req::new("PUT", "/web")).status, 200);
    let get = c.send(Req::new("GET", "/web").query("cors"));
    assert_error(&get, 404, "NoSuchCORSConfiguration", "a new bucket of an old name");
    let resp = preflight(&c, "/web/k", Some("https://app.example.com"), Some("GET"), None);
    assert_eq!(resp.elements("Message"), ["CORSResponse: CORS is not enabled for this bucket."]);
}

/// boto3's round trip, then aws-cli v2's, each reading what the other wrote.
#[test]
fn boto3_and_aws_cli_put_get_and_delete_rules() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let endpoint = format!("http://{}", server.addr);
    let out = Command::new("python3")
        .args(["-c", BOTO3_ROUND_TRIP, &endpoint])
        .env("AWS_ACCESS_KEY_ID", common::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", common::SECRET_KEY)
        .env_remove("AWS_CA_BUNDLE")
        .stderr(Stdio::inherit())
        .output()
        .expect("python3 with boto3");
    assert!(out.status.success(), "boto3: {}", String::from_utf8_lossy(&out.stdout));

    let aws = |args: &[&str]| {
        let config = dir.path().join("aws-config");
        std::fs::write(&config, "[default]\nregion = us-east-1\n").unwrap();
        Command::new("/usr/bin/aws")
            .args(["--endpoint-url", &endpoint, "s3api"])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", common::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", common::SECRET_KEY)
            .env("AWS_CONFIG_FILE", &config)
            .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
            .env_remove("AWS_CA_BUNDLE")
            .env_remove("AWS_PROFILE")
            .output()
            .expect("aws-cli v2 at /usr/bin/aws")
    };
    let got = aws(&["get-bucket-cors", "--bucket", "boto"]);
    let text = String::from_utf8_lossy(&got.stdout);
    assert!(got.status.success() && text.contains("https://*.example.com"), "aws reads boto3's rules: {text}");
    let rules = r#"{"CORSRules":[{"AllowedOrigins":["http://localhost:*"],"AllowedMethods":["PUT","POST"],"AllowedHeaders":["*"],"ExposeHeaders":["ETag"],"MaxAgeSeconds":60}]}"#;
    let put = aws(&["put-bucket-cors", "--bucket", "boto", "--cors-configuration", rules]);
    assert!(put.status.success(), "aws put-bucket-cors: {}", String::from_utf8_lossy(&put.stderr));
    let got = aws(&["get-bucket-cors", "--bucket", "boto"]);
    let json: serde_json::Value = serde_json::from_slice(&got.stdout).expect("aws prints JSON");
    let want: serde_json::Value = serde_json::from_str(rules).unwrap();
    assert_eq!(json, want, "aws-cli v2 round trip");
    let resp = preflight(&server.client(), "/boto/k", Some("http://localhost:1234"), Some("PUT"), Some("x-amz-date"));
    assert_eq!(resp.header("access-control-max-age"), Some("60"));
    assert!(aws(&["delete-bucket-cors", "--bucket", "boto"]).status.success());
    let gone = aws(&["get-bucket-cors", "--bucket", "boto"]);
    assert!(String::from_utf8_lossy(&gone.stderr).contains("NoSuchCORSConfiguration"), "deleted");
}

/// Creates bucket `boto`, puts rules, reads them back equal, deletes them,
/// sees NoSuchCORSConfiguration, and leaves a configuration for aws-cli.
const BOTO3_ROUND_TRIP: &str = r#"
import sys, boto3, botocore
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1")
s3.create_bucket(Bucket="boto")
rules = [
    {"ID": "site", "AllowedHeaders": ["content-type", "x-amz-*"], "AllowedMethods": ["GET", "PUT", "HEAD"],
     "AllowedOrigins": ["https://app.example.com", "https://*.example.com"], "ExposeHeaders": ["ETag"],
     "MaxAgeSeconds": 3000},
    {"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]},
]
s3.put_bucket_cors(Bucket="boto", CORSConfiguration={"CORSRules": rules})
got = s3.get_bucket_cors(Bucket="boto")["CORSRules"]
assert got == rules, got
s3.delete_bucket_cors(Bucket="boto")
try:
    s3.get_bucket_cors(Bucket="boto")
    raise SystemExit("GetBucketCors after DeleteBucketCors succeeded")
except botocore.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "NoSuchCORSConfiguration", e.response
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 404
try:
    s3.put_bucket_cors(Bucket="boto", CORSConfiguration={"CORSRules": [{"AllowedMethods": ["PATCH"], "AllowedOrigins": ["*"]}]})
    raise SystemExit("PATCH was accepted")
except botocore.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "InvalidRequest", e.response
s3.put_bucket_cors(Bucket="boto", CORSConfiguration={"CORSRules": rules})
print("boto3 round trip ok")
"#;

/// Server CPU time of a process, from /proc (user + system, in clock ticks).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    ticks as f64 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// The server's CPU time per anonymous 4 KiB GET over one keep-alive
/// connection, without and with an `Origin` header (a bucket with rules),
/// alternated: printed, not asserted (timings of a debug build on a shared
/// machine). `cargo nextest run --test cors --run-ignored only --no-capture`;
/// docs/performance.md has the figures.
#[test]
#[ignore = "a measurement, not a check"]
fn measure_the_cost_of_an_origin_header() {
    let (_dir, server, c) = world();
    let public = c.send(Req::new("PUT", "/web/public.bin").header("x-amz-acl", "public-read").body(&[7u8; 4096]));
    assert_eq!(public.status, 200);
    let mut stream = c.connect();
    let mut time = |origin: &str, n: u32| {
        let head = format!("GET /web/public.bin HTTP/1.1\r\nhost: {}\r\n{origin}\r\n", c.addr);
        let before = cpu_seconds(server.pid());
        for _ in 0..n {
            stream.write_all(head.as_bytes()).unwrap();
            let resp = common::read_response(&mut stream, false);
            assert_eq!((resp.status, resp.body.len()), (200, 4096));
            assert_eq!(resp.header("access-control-allow-origin").is_some(), !origin.is_empty());
        }
        (cpu_seconds(server.pid()) - before) / f64::from(n) * 1e6
    };
    time("", 200);
    for round in 0..4 {
        let without = time("", 3000);
        let with = time("origin: https://app.example.com\r\n", 3000);
        println!("round {round}: server CPU per GET {without:.0} us without Origin, {with:.0} us with");
    }
}
