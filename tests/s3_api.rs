//! S3 behaviour over the wire, against the real binary: error codes and
//! statuses, authentication failures, ranges, conditionals, listings.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

mod common;

use std::io::Write;
use std::time::{Duration, SystemTime};

use base64::Engine;
use common::{pattern, read_response, Client, Req, Server};
use md5::{Digest, Md5};

fn setup() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    assert_eq!(server.client().send(Req::new("PUT", "/bkt")).status, 200);
    (dir, server)
}

fn code(resp: &common::Response) -> String {
    resp.error_code().unwrap_or_else(|| format!("<no code, status {}>", resp.status))
}

#[test]
fn authentication_failures_have_s3_codes() {
    let (_dir, server) = setup();
    let c = server.client();
    let wrong_key = Client { access_key: "NOSUCHKEY".into(), ..server.client() };
    let resp = wrong_key.send(Req::new("GET", "/"));
    assert_eq!((resp.status, code(&resp)), (403, "InvalidAccessKeyId".into()));

    let wrong_secret = Client { secret_key: "wrong".into(), ..server.client() };
    let resp = wrong_secret.send(Req::new("GET", "/"));
    assert_eq!((resp.status, code(&resp)), (403, "SignatureDoesNotMatch".into()));

    let resp = c.send_at(Req::new("GET", "/"), SystemTime::now() - Duration::from_secs(16 * 60));
    assert_eq!((resp.status, code(&resp)), (403, "RequestTimeTooSkewed".into()));
    for element in ["<RequestTime>", "<ServerTime>", "<MaxAllowedSkewMilliseconds>900000"] {
        assert!(resp.text().contains(element), "{element} missing: {}", resp.text());
    }

    let mut anonymous = c.connect();
    anonymous.write_all(b"GET /bkt HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").expect("write");
    let resp = read_response(&mut anonymous, false);
    assert_eq!((resp.status, code(&resp)), (403, "AccessDenied".into()));
}

#[test]
fn bucket_errors() {
    let (_dir, server) = setup();
    let c = server.client();
    let resp = c.send(Req::new("PUT", "/Invalid_Name"));
    assert_eq!((resp.status, code(&resp)), (400, "InvalidBucketName".into()));
    let resp = c.send(Req::new("PUT", "/bkt"));
    assert_eq!(resp.status, 200, "us-east-1 answers 200 to re-creating your own bucket, as S3");
    let resp = c.send(Req::new("GET", "/nosuchbucket").query("list-type=2"));
    assert_eq!((resp.status, code(&resp)), (404, "NoSuchBucket".into()));
    assert_eq!(c.send(Req::new("PUT", "/bkt/k").body(b"x")).status, 200);
    let resp = c.send(Req::new("DELETE", "/bkt"));
    assert_eq!((resp.status, code(&resp)), (409, "BucketNotEmpty".into()));
    let resp = c.send(Req::new("GET", "/bkt").query("location"));
    assert!(
        resp.text()
            .contains("<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"></LocationConstraint>"),
        "{}",
        resp.text()
    );
    let resp = c.send(Req::new("GET", "/bkt").query("website"));
    assert_eq!((resp.status, code(&resp)), (501, "NotImplemented".into()));
    assert_eq!(c.send(Req::new("GET", "/")).status, 200, "the server keeps serving after a 501");
}

#[test]
fn object_errors_and_digests() {
    let (_dir, server) = setup();
    let c = server.client();
    let resp = c.send(Req::new("GET", "/bkt/missing"));
    assert_eq!((resp.status, code(&resp)), (404, "NoSuchKey".into()));
    let resp = c.send(Req::new("HEAD", "/bkt/missing"));
    assert_eq!((resp.status, resp.body.len()), (404, 0), "HEAD errors have no body");

    let wrong_md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(b"other"));
    let resp = c.send(Req::new("PUT", "/bkt/k").header("content-md5", wrong_md5).body(b"data"));
    assert_eq!((resp.status, code(&resp)), (400, "BadDigest".into()));
    let resp = c.send(Req::new("PUT", "/bkt/k").header("x-amz-checksum-crc32", "AAAAAA==").body(b"data"));
    assert_eq!((resp.status, code(&resp)), (400, "BadDigest".into()));
    let resp = c.send(Req::new("GET", "/bkt/k"));
    assert_eq!(resp.status, 404, "a rejected PUT leaves nothing behind");

    let good_md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(b"data"));
    let resp = c.send(Req::new("PUT", "/bkt/k").header("content-md5", good_md5).body(b"data"));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("etag"), Some("\"8d777f385d3dfec8815d20f7496026dc\""));
}

#[test]
fn ranges_and_conditionals() {
    let (_dir, server) = setup();
    let c = server.client();
    let body = pattern(1000, 9);
    let etag = c.send(Req::new("PUT", "/bkt/r").body(&body)).header("etag").map(str::to_string).unwrap_or_default();

    let resp = c.send(Req::new("GET", "/bkt/r").header("range", "bytes=10-19"));
    assert_eq!((resp.status, resp.header("content-range")), (206, Some("bytes 10-19/1000")));
    assert_eq!(resp.body, body[10..20]);
    let resp = c.send(Req::new("GET", "/bkt/r").header("range", "bytes=-1"));
    assert_eq!(resp.body, body[999..]);
    let resp = c.send(Req::new("GET", "/bkt/r").header("range", "bytes=1000-"));
    assert_eq!((resp.status, code(&resp)), (416, "InvalidRange".into()));
    assert_eq!(resp.header("content-range"), Some("bytes */1000"));
    let resp = c.send(Req::new("GET", "/bkt/r").header("range", "bytes=0-1,5-6"));
    assert_eq!((resp.status, resp.body.len()), (200, 1000), "multi-range answers the whole object");

    let resp = c.send(Req::new("GET", "/bkt/r").header("if-none-match", etag.clone()));
    assert_eq!(resp.status, 304);
    let resp = c.send(Req::new("GET", "/bkt/r").header("if-match", "\"nope\""));
    assert_eq!((resp.status, code(&resp)), (412, "PreconditionFailed".into()));
    let resp = c.send(Req::new("GET", "/bkt/r").header("range", "bytes=0-0").header("if-range", "\"stale\""));
    assert_eq!((resp.status, resp.body.len()), (200, 1000), "a stale If-Range gets the whole object");

    let resp = c.send(Req::new("PUT", "/bkt/r").header("if-none-match", "*").body(b"x"));
    assert_eq!((resp.status, code(&resp)), (412, "PreconditionFailed".into()));
    assert_eq!(c.send(Req::new("GET", "/bkt/r")).body, body, "a failed conditional PUT changes nothing");

    assert_eq!(c.send(Req::new("PUT", "/bkt/empty")).status, 200);
    let resp = c.send(Req::new("GET", "/bkt/empty").header("range", "bytes=0-0"));
    assert_eq!(resp.status, 416, "any range of an empty object is unsatisfiable");
    let resp = c.send(Req::new("GET", "/bkt/empty").query("partNumber=1"));
    assert_eq!(resp.status, 200, "partNumber=1 of an empty object is the object");
}

#[test]
fn expect_continue_rejected_before_the_body() {
    let (_dir, server) = setup();
    let bad = Client { secret_key: "wrong".into(), ..server.client() };
    let mut stream = bad.connect();
    let head = bad.signed_head(
        &Req::new("PUT", "/bkt/big").header("expect", "100-continue"),
        SystemTime::now(),
        1 << 30,
        Some("UNSIGNED-PAYLOAD"),
    );
    stream.write_all(head.as_bytes()).expect("write head");
    let resp = read_response(&mut stream, false);
    assert_eq!((resp.status, code(&resp)), (403, "SignatureDoesNotMatch".into()), "answered without reading 1 GiB");
}

#[test]
fn listing_orders_bytes_and_rolls_up_prefixes() {
    let (_dir, server) = setup();
    let c = server.client();
    for key in ["a/1", "a/2", "b", "c/x/y", "c+d", "c d", "é"] {
        let path = format!("/bkt/{}", percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC));
        assert_eq!(c.send(Req::new("PUT", &path).body(b"1")).status, 200);
    }
    let resp = c.send(Req::new("GET", "/bkt").query("list-type=2&delimiter=%2F&encoding-type=url"));
    let text = resp.text();
    let keys: Vec<&str> = text.split("<Key>").skip(1).filter_map(|s| s.split("</Key>").next()).collect();
    assert_eq!(keys, vec!["b", "c+d", "c%2Bd", "%C3%A9"]);
    let prefixes: Vec<&str> = text.split("<Prefix>").skip(2).filter_map(|s| s.split("</Prefix>").next()).collect();
    assert_eq!(prefixes, vec!["a/", "c/"]);

    let resp = c.send(Req::new("GET", "/bkt").query("list-type=2&max-keys=2"));
    assert!(resp.text().contains("<IsTruncated>true</IsTruncated>"));
    let token =
        resp.text().split("<NextContinuationToken>").nth(1).and_then(|s| s.split('<').next()).map(str::to_string);
    let token = token.expect("a continuation token");
    let q = format!("list-type=2&max-keys=100&continuation-token={token}");
    let resp = c.send(Req::new("GET", "/bkt").query(&q));
    let text = resp.text();
    let keys: Vec<&str> = text.split("<Key>").skip(1).filter_map(|s| s.split("</Key>").next()).collect();
    assert_eq!(keys, vec!["b", "c d", "c+d", "c/x/y", "é"], "page two starts after page one");
}

#[test]
fn if_range_by_date_and_conditional_precedence() {
    let (_dir, server) = setup();
    let c = server.client();
    let body = pattern(100, 3);
    assert_eq!(c.send(Req::new("PUT", "/bkt/ir").body(&body)).status, 200);
    let head = c.send(Req::new("HEAD", "/bkt/ir"));
    let (etag, modified) = (
        head.header("etag").unwrap_or_default().to_string(),
        head.header("last-modified").unwrap_or_default().to_string(),
    );
    assert_eq!(head.header("accept-ranges"), Some("bytes"));
    assert_eq!(head.header("content-length"), Some("100"));

    let resp = c.send(Req::new("GET", "/bkt/ir").header("range", "bytes=50-").header("if-range", modified.clone()));
    assert_eq!((resp.status, resp.body.len()), (206, 50), "If-Range with the current date serves the range");
    let resp = c.send(Req::new("GET", "/bkt/ir").header("range", "bytes=50-").header("if-range", etag.clone()));
    assert_eq!(resp.status, 206);
    let resp = c.send(
        Req::new("GET", "/bkt/ir").header("range", "bytes=50-").header("if-range", "Mon, 01 Jan 2001 00:00:00 GMT"),
    );
    assert_eq!((resp.status, resp.body.len()), (200, 100), "an older date gets the whole object");
    assert!(resp.header("x-amz-checksum-crc64nvme").is_none(), "no checksum without checksum mode");

    const PAST: &str = "Mon, 01 Jan 2001 00:00:00 GMT";
    const FUTURE: &str = "Fri, 01 Jan 2100 00:00:00 GMT";
    let get = |h: &[(&'static str, &str)]| {
        let mut req = Req::new("GET", "/bkt/ir");
        for (n, v) in h {
            req = req.header(n, v.to_string());
        }
        c.send(req).status
    };
    assert_eq!(
        get(&[("if-match", &etag), ("if-unmodified-since", PAST)]),
        200,
        "If-Match true wins over If-Unmodified-Since false"
    );
    assert_eq!(
        get(&[("if-none-match", &etag), ("if-modified-since", PAST)]),
        304,
        "If-None-Match false wins over If-Modified-Since true"
    );
    assert_eq!(
        get(&[("if-none-match", "\"other\""), ("if-modified-since", FUTURE)]),
        200,
        "If-None-Match true ignores If-Modified-Since"
    );
    assert_eq!(get(&[("if-unmodified-since", PAST)]), 412);
    assert_eq!(get(&[("if-modified-since", FUTURE)]), 304);
    assert_eq!(get(&[("if-match", "\"other\""), ("if-none-match", "\"other\"")]), 412, "412 before 304");

    let ranged =
        c.send(Req::new("GET", "/bkt/ir").header("range", "bytes=0-9").header("x-amz-checksum-mode", "ENABLED"));
    assert!(
        ranged.headers.iter().all(|(n, _)| !n.starts_with("x-amz-checksum-crc")),
        "a 206 carries no whole-object checksum"
    );
    let whole = c.send(Req::new("GET", "/bkt/ir").header("x-amz-checksum-mode", "ENABLED"));
    assert!(whole.header("x-amz-checksum-crc64nvme").is_some(), "a 200 with checksum mode carries the checksum");
    let both = c.send(Req::new("GET", "/bkt/ir").query("partNumber=1").header("range", "bytes=0-1"));
    assert_eq!((both.status, code(&both)), (400, "InvalidRequest".into()));
}

#[test]
fn conditional_put_has_exactly_one_winner() {
    let (_dir, server) = setup();
    let results: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8u64)
            .map(|i| {
                let c = server.client();
                s.spawn(move || {
                    c.send(Req::new("PUT", "/bkt/once").header("if-none-match", "*").body(&pattern(1000, i))).status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).collect()
    });
    assert_eq!(results.iter().filter(|s| **s == 200).count(), 1, "exactly one creator wins: {results:?}");
    assert_eq!(results.iter().filter(|s| **s == 412).count(), 7, "the others get 412: {results:?}");
}

#[test]
fn reads_racing_overwrites_see_one_whole_version() {
    let (_dir, server) = setup();
    let versions: Vec<Vec<u8>> = (0..4u64).map(|i| pattern(300_000 + i as usize, 100 + i)).collect();
    assert_eq!(server.client().send(Req::new("PUT", "/bkt/hot").body(&versions[0])).status, 200);
    std::thread::scope(|s| {
        let writer = s.spawn(|| {
            for round in 0..20 {
                let body = &versions[round % versions.len()];
                assert_eq!(server.client().send(Req::new("PUT", "/bkt/hot").body(body)).status, 200);
            }
        });
        for _ in 0..40 {
            let got = server.client().send(Req::new("GET", "/bkt/hot"));
            assert_eq!(got.status, 200, "{}", got.text());
            assert!(versions.contains(&got.body), "a GET returns exactly one version");
        }
        assert!(writer.join().is_ok());
    });
}

#[test]
fn virtual_hosted_style_with_a_domain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(dir.path(), &["--domain", "s3.example.test"]);
    let port = server.addr.rsplit(':').next().unwrap_or_default().to_string();
    let vhost = Client { host: Some(format!("photos.s3.example.test:{port}")), ..server.client() };
    assert_eq!(vhost.send(Req::new("PUT", "/")).status, 200, "CreateBucket addressed by host");
    assert_eq!(vhost.send(Req::new("PUT", "/cat%20one.jpg").body(b"meow")).status, 200);
    assert_eq!(server.client().send(Req::new("GET", "/photos/cat%20one.jpg")).body, b"meow", "path style still works");
    let listed = vhost.send(Req::new("GET", "/").query("list-type=2"));
    assert_eq!(listed.elements("Key"), vec!["cat one.jpg"]);
}

/// Uploads share one MD5 engine (SIMD lanes): 20 concurrent PUTs of odd
/// sizes, more than the engine's lanes, while other uploads are abandoned
/// halfway, must each get the ETag of their own bytes and read back whole.
#[test]
fn concurrent_uploads_get_their_own_etags() {
    let (_dir, server) = setup();
    std::thread::scope(|s| {
        let abandoned: Vec<_> = (0..4usize)
            .map(|i| {
                let c = server.client();
                s.spawn(move || {
                    let half = pattern(1_000_003, 500 + i as u64);
                    let stream = c.send_partial(Req::new("PUT", "/bkt/abandoned").body(&half), 2_000_006);
                    std::thread::sleep(Duration::from_millis(200));
                    drop(stream);
                })
            })
            .collect();
        let uploads: Vec<_> = (0..20usize)
            .map(|i| {
                let c = server.client();
                s.spawn(move || {
                    let body = pattern(40_000 + i * 150_001, i as u64);
                    let key = format!("/bkt/upload-{i}");
                    let put = c.send(Req::new("PUT", &key).body(&body));
                    assert_eq!(put.status, 200, "{}", put.text());
                    let md5 = hex::encode(Md5::digest(&body));
                    assert_eq!(put.header("etag"), Some(format!("\"{md5}\"").as_str()), "ETag of {key}");
                    let got = c.send(Req::new("GET", &key));
                    assert!(got.status == 200 && got.body == body, "{key} reads back whole");
                })
            })
            .collect();
        for handle in uploads.into_iter().chain(abandoned) {
            assert!(handle.join().is_ok());
        }
    });
    let listed = server.client().send(Req::new("GET", "/bkt").query("list-type=2"));
    assert_eq!(listed.elements("Key").len(), 20, "abandoned uploads left no object");
}

/// Issue 9: keys with control characters were written raw into listings,
/// which XML parsers reject (and a raw CR comes back as LF: another key).
#[test]
fn listing_escapes_control_characters_in_keys() {
    let (_dir, server) = setup();
    let c = server.client();
    for key in ["/bkt/a%01b", "/bkt/c%0Dd", "/bkt/e%09f"] {
        assert_eq!(c.send(Req::new("PUT", key).body(b"x")).status, 200, "{key}");
    }
    for query in ["list-type=2", "", "uploads", "versions"] {
        let resp = c.send(Req::new("GET", "/bkt").query(query));
        if resp.status != 200 {
            continue; // not every listing is implemented; those that are must be well formed
        }
        let raw_controls: Vec<u8> = resp.body.iter().copied().filter(|&b| b < 0x20 && b != b'\n').collect();
        assert!(raw_controls.is_empty(), "?{query}: raw control bytes {raw_controls:?} in {}", resp.text());
    }
    let text = c.send(Req::new("GET", "/bkt").query("list-type=2")).text();
    for escaped in ["<Key>a&#x1;b</Key>", "<Key>c&#xD;d</Key>", "<Key>e&#x9;f</Key>"] {
        assert!(text.contains(escaped), "{escaped} missing: {text}");
    }
    let url = c.send(Req::new("GET", "/bkt").query("list-type=2&encoding-type=url")).text();
    assert!(url.contains("<Key>a%01b</Key>"), "{url}");
}

/// Conditional deletes: `If-Match`, `x-amz-if-match-size` and
/// `x-amz-if-match-last-modified-time` on DeleteObject, and the `ETag`,
/// `Size` and `LastModifiedTime` of DeleteObjects entries. A condition that
/// fails deletes nothing: 412 (or a per-key `<Error>`).
#[test]
fn conditional_deletes() {
    let (_dir, server) = setup();
    let c = server.client();
    let put = c.send(Req::new("PUT", "/bkt/k").body(b"hello"));
    let etag = put.header("etag").expect("etag").to_string();
    let modified = c.send(Req::new("HEAD", "/bkt/k")).header("last-modified").expect("last-modified").to_string();
    let delete = |headers: &[(&str, &str)]| {
        let mut req = Req::new("DELETE", "/bkt/k");
        for (name, value) in headers {
            req = req.header(name, *value);
        }
        let resp = c.send(req);
        (resp.status, resp.error_code().unwrap_or_default())
    };
    let refused = (412, "PreconditionFailed".to_string());
    assert_eq!(delete(&[("if-match", "\"0123\"")]), refused);
    assert_eq!(delete(&[("x-amz-if-match-size", "6")]), refused);
    assert_eq!(delete(&[("x-amz-if-match-last-modified-time", "Mon, 13 Nov 2023 00:00:00 GMT")]), refused);
    assert_eq!(delete(&[("x-amz-if-match-size", "five")]), (400, "InvalidArgument".into()));
    assert_eq!(c.send(Req::new("GET", "/bkt/k")).body, b"hello", "nothing was deleted");
    let all =
        [("if-match", etag.as_str()), ("x-amz-if-match-size", "5"), ("x-amz-if-match-last-modified-time", &modified)];
    assert_eq!(delete(&all), (204, String::new()));
    assert_eq!(c.send(Req::new("HEAD", "/bkt/k")).status, 404);
    assert_eq!(delete(&[("if-match", "*")]), (404, "NoSuchKey".into()), "If-Match on a missing key");
    assert_eq!(delete(&[("x-amz-if-match-size", "5")]), (204, String::new()), "a size on a missing key holds");

    let etag_a = c.send(Req::new("PUT", "/bkt/a").body(b"a")).header("etag").expect("etag").to_string();
    let etag_b = c.send(Req::new("PUT", "/bkt/b").body(b"bb")).header("etag").expect("etag").to_string();
    let xml = format!(
        "<Delete><Object><Key>a</Key><ETag>\"0123\"</ETag></Object>\
         <Object><Key>b</Key><ETag>{etag_b}</ETag><Size>2</Size></Object>\
         <Object><Key>c</Key><ETag>{etag_a}</ETag></Object></Delete>"
    );
    let resp = c.send(Req::new("POST", "/bkt").query("delete").body(xml.as_bytes()));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.elements("Deleted"), vec!["<Key>b</Key>".to_string()], "{}", resp.text());
    assert_eq!(resp.elements("Code"), vec!["PreconditionFailed".to_string(), "NoSuchKey".to_string()]);
    assert_eq!(c.send(Req::new("GET", "/bkt/a")).body, b"a", "a failed condition keeps the key");
    assert_eq!(c.send(Req::new("HEAD", "/bkt/b")).status, 404);
}

/// Outside us-east-1, S3 answers 409 BucketAlreadyOwnedByYou to re-creating
/// your own bucket (us-east-1 answers 200: see `bucket_errors`).
#[test]
fn recreating_your_own_bucket_outside_us_east_1_is_a_conflict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(dir.path(), &["--region", "eu-west-1"]);
    let c = Client { region: "eu-west-1".into(), ..server.client() };
    let config =
        b"<CreateBucketConfiguration><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>";
    assert_eq!(c.send(Req::new("PUT", "/mine").body(config)).status, 200);
    let again = c.send(Req::new("PUT", "/mine").body(config));
    assert_eq!((again.status, code(&again)), (409, "BucketAlreadyOwnedByYou".into()));
}

/// ListBuckets pages with `max-buckets` and `continuation-token`, filters by
/// `prefix` and `bucket-region`; a listing's empty `delimiter` is absent, and
/// a prefix with a newline is echoed exactly.
#[test]
fn list_buckets_pages_and_listings_echo_exactly() {
    let (_dir, server) = setup();
    let c = server.client();
    for b in ["bkt-a", "bkt-b", "other"] {
        assert_eq!(c.send(Req::new("PUT", &format!("/{b}"))).status, 200);
    }
    let first = c.send(Req::new("GET", "/").query("max-buckets=2"));
    assert_eq!(first.elements("Name"), vec!["bkt", "bkt-a"], "{}", first.text());
    let token = first.elements("ContinuationToken").pop().expect("a continuation token");
    let query = format!("max-buckets=2&continuation-token={token}");
    let second = c.send(Req::new("GET", "/").query(&query));
    assert_eq!(second.elements("Name"), vec!["bkt-b", "other"], "{}", second.text());
    assert!(second.elements("ContinuationToken").is_empty(), "the last page has no token");
    let prefixed = c.send(Req::new("GET", "/").query("prefix=bkt-&bucket-region=us-east-1"));
    assert_eq!(prefixed.elements("Name"), vec!["bkt-a", "bkt-b"]);
    assert_eq!(prefixed.elements("Prefix"), vec!["bkt-"]);
    assert!(c.send(Req::new("GET", "/").query("bucket-region=eu-west-1")).elements("Name").is_empty());
    let bad = c.send(Req::new("GET", "/").query("max-buckets=0"));
    assert_eq!((bad.status, code(&bad)), (400, "InvalidArgument".into()));

    let listing = c.send(Req::new("GET", "/bkt").query("list-type=2&delimiter=&prefix=a%0Ab"));
    assert_eq!(listing.status, 200, "{}", listing.text());
    assert!(listing.elements("Delimiter").is_empty(), "an empty delimiter is not echoed: {}", listing.text());
    assert!(listing.text().contains("<Prefix>a&#xA;b</Prefix>"), "{}", listing.text());
}

/// User metadata with non-ASCII (UTF-8) characters comes back byte for
/// byte, and several Content-Encoding values are kept as sent.
#[test]
fn metadata_and_encodings_come_back_as_sent() {
    let (_dir, server) = setup();
    let c = server.client();
    let put = Req::new("PUT", "/bkt/meta")
        .header("x-amz-meta-name", "café 日本 ü")
        .header("content-encoding", "gzip, br")
        .body(b"x");
    let put = c.send(put);
    assert_eq!(put.status, 200, "{}", put.text());
    let head = c.send(Req::new("HEAD", "/bkt/meta"));
    assert_eq!(head.header("x-amz-meta-name"), Some("café 日本 ü"));
    assert_eq!(head.header("content-encoding"), Some("gzip, br"));
}

/// A plain PutObject sent with `Transfer-Encoding: chunked` and no length:
/// S3 refuses it with 411 MissingContentLength (only aws-chunked bodies,
/// which announce x-amz-decoded-content-length, may stream), before any byte
/// is stored.
#[test]
fn a_plain_chunked_put_without_length_is_refused_as_s3_does() {
    let (_dir, server) = setup();
    let c = server.client();
    let head = c.signed_head(&Req::new("PUT", "/bkt/chunked"), SystemTime::now(), 0, Some("UNSIGNED-PAYLOAD"));
    let head = head.replace("content-length: 0\r\n", "transfer-encoding: chunked\r\n");
    let mut stream = c.connect();
    stream.write_all(head.as_bytes()).expect("write head");
    stream.write_all(b"5\r\nhello\r\n0\r\n\r\n").expect("write body");
    let resp = read_response(&mut stream, false);
    assert_eq!((resp.status, code(&resp)), (411, "MissingContentLength".into()), "{}", resp.text());
    assert_eq!(c.send(Req::new("HEAD", "/bkt/chunked")).status, 404);
}

/// An error answered to a request with a body closes the connection: the
/// body may be unread (or, with `Expect: 100-continue`, unsent), and the
/// next request on that connection must not meet it (client-pitfalls.md
/// item 13). A success, or an error to a request without a body, keeps it.
#[test]
fn an_error_to_a_request_with_a_body_closes_the_connection() {
    let (_dir, server) = setup();
    let c = server.client();
    // Requests that ask to keep the connection (the test client asks to close by default).
    let keep_alive = |req: Req, body: &[u8]| {
        let head = c.signed_head(&req, SystemTime::now(), body.len(), None).replace("connection: close\r\n", "");
        let mut stream = c.connect();
        stream.write_all(head.as_bytes()).expect("head");
        stream.write_all(body).expect("body");
        read_response(&mut stream, false)
    };
    let refused = keep_alive(Req::new("PUT", "/no-such-bucket/k").body(b"data"), b"data");
    assert_eq!(code(&refused), "NoSuchBucket");
    assert_eq!(refused.header("connection"), Some("close"));
    let stored = keep_alive(Req::new("PUT", "/bkt/k").body(b"data"), b"data");
    assert_eq!((stored.status, stored.header("connection")), (200, None), "a success keeps the connection");
    let missing = keep_alive(Req::new("GET", "/bkt/missing"), b"");
    assert_eq!((missing.status, missing.header("connection")), (404, None), "so does an error without a body");
}
