//! Multipart upload against the real binary: S3's errors, the ETag formula,
//! freeing of part files, races, the crash-and-resume scenario, stale uploads.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

mod common;

use std::time::Duration;

use common::{
    blob_files, complete, create_upload, part_etag, pattern, upload_part, wait_for_blob_files, Client, Req, Response,
    Server,
};
use md5::{Digest, Md5};
use sha1::Sha1;

const MIB: usize = 1024 * 1024;

fn setup() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    assert_eq!(server.client().send(Req::new("PUT", "/mpu")).status, 200);
    (dir, server)
}

fn code(resp: &Response) -> (u16, String) {
    (resp.status, resp.error_code().unwrap_or_default())
}

#[test]
fn complete_builds_the_object_with_s3s_etag_and_frees_unused_parts() {
    let (dir, server) = setup();
    let c = server.client();
    let id = create_upload(&c, "/mpu/obj");
    // The small last part is stored inline in the database, the others as files.
    let bodies = [pattern(5 * MIB, 1), pattern(5 * MIB, 2), pattern(5 * MIB, 3), pattern(1234, 4)];
    let etags: Vec<String> = bodies.iter().zip(1..).map(|(b, n)| part_etag(&c, "/mpu/obj", &id, n, b)).collect();
    assert_eq!(blob_files(dir.path()), 3);
    // Parts 1, 3 and 4: a gap is allowed; part 2 is left out and freed.
    // ETags with and without quotes are both accepted.
    let unquoted = etags[2].trim_matches('"').to_string();
    let resp = complete(&c, "/mpu/obj", &id, &[(1, &etags[0]), (3, &unquoted), (4, &etags[3])]);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let mut md5s = Md5::new();
    for i in [0, 2, 3] {
        md5s.update(Md5::digest(&bodies[i]));
    }
    let expected_etag = format!("\"{}-3\"", hex::encode(md5s.finalize()));
    assert_eq!(resp.elements("ETag"), vec![expected_etag.replace('"', "&quot;")]);
    // The unused part is freed (in the background), no byte was copied.
    wait_for_blob_files(dir.path(), 2);

    let whole = [bodies[0].as_slice(), &bodies[2], &bodies[3]].concat();
    let got = c.send(Req::new("GET", "/mpu/obj"));
    assert_eq!(got.header("etag"), Some(expected_etag.as_str()));
    assert!(got.body == whole, "object bytes are parts 1, 3, 4 in order");

    let part3 = c.send(Req::new("GET", "/mpu/obj").query("partNumber=3"));
    assert_eq!((part3.status, part3.header("x-amz-mp-parts-count")), (206, Some("3")));
    assert!(part3.body == bodies[2]);
    let across = c.send(Req::new("GET", "/mpu/obj").header("range", format!("bytes={}-{}", 5 * MIB - 10, 5 * MIB + 9)));
    assert_eq!(across.body, whole[5 * MIB - 10..5 * MIB + 10], "a range spans part boundaries");
    let tail = c.send(Req::new("GET", "/mpu/obj").header("range", format!("bytes={}-", 10 * MIB - 5)));
    assert_eq!(tail.body, whole[10 * MIB - 5..], "a range into the inline last part");

    assert_eq!(code(&complete(&c, "/mpu/obj", &id, &[(1, &etags[0])])), (404, "NoSuchUpload".into()));
}

#[test]
fn multipart_errors_have_s3_codes() {
    let (_dir, server) = setup();
    let c = server.client();
    let id = create_upload(&c, "/mpu/e");
    let small = part_etag(&c, "/mpu/e", &id, 1, b"tiny");
    let big = part_etag(&c, "/mpu/e", &id, 2, &pattern(5 * MIB, 5));

    assert_eq!(code(&upload_part(&c, "/mpu/e", &id, 0, b"x")).1, "InvalidArgument");
    assert_eq!(code(&upload_part(&c, "/mpu/e", &id, 10001, b"x")).1, "InvalidArgument");
    let bogus = "0123456789abcdef0123456789abcdef";
    assert_eq!(code(&upload_part(&c, "/mpu/e", bogus, 1, b"x")), (404, "NoSuchUpload".into()));
    assert_eq!(code(&upload_part(&c, "/mpu/other", &id, 1, b"x")), (404, "NoSuchUpload".into()));

    assert_eq!(code(&complete(&c, "/mpu/e", &id, &[(2, &big), (1, &small)])), (400, "InvalidPartOrder".into()));
    assert_eq!(code(&complete(&c, "/mpu/e", &id, &[(1, &small), (1, &small)])), (400, "InvalidPartOrder".into()));
    assert_eq!(code(&complete(&c, "/mpu/e", &id, &[(1, &big)])), (400, "InvalidPart".into()));
    assert_eq!(code(&complete(&c, "/mpu/e", &id, &[(7, &big)])), (400, "InvalidPart".into()));
    assert_eq!(code(&complete(&c, "/mpu/e", &id, &[(1, &small), (2, &big)])), (400, "EntityTooSmall".into()));
    assert_eq!(code(&complete(&c, "/mpu/e", &id, &[])), (400, "MalformedXML".into()));
    // Still intact after every failed Complete.
    assert_eq!(complete(&c, "/mpu/e", &id, &[(2, &big)]).status, 200);
}

#[test]
fn list_parts_pages_by_marker_without_repeats() {
    let (_dir, server) = setup();
    let c = server.client();
    let id = create_upload(&c, "/mpu/l");
    for n in [1, 2, 3, 5, 8] {
        part_etag(&c, "/mpu/l", &id, n, format!("part {n}").as_bytes());
    }
    let mut seen = Vec::new();
    let mut marker = 0;
    loop {
        let q = format!("uploadId={id}&max-parts=2&part-number-marker={marker}");
        let resp = c.send(Req::new("GET", "/mpu/l").query(&q));
        let numbers: Vec<u32> = resp.elements("PartNumber").iter().filter_map(|n| n.parse().ok()).collect();
        seen.extend(numbers);
        if resp.elements("IsTruncated") != ["true"] {
            break;
        }
        marker = resp.elements("NextPartNumberMarker")[0].parse().expect("marker");
    }
    assert_eq!(seen, vec![1, 2, 3, 5, 8]);

    let resp = c.send(Req::new("GET", "/mpu").query("uploads"));
    assert_eq!(resp.elements("UploadId"), vec![id.clone()]);
    assert_eq!(c.send(Req::new("DELETE", "/mpu/l").query(&format!("uploadId={id}"))).status, 204);
    assert!(c.send(Req::new("GET", "/mpu").query("uploads")).elements("UploadId").is_empty());
}

#[test]
fn same_part_twice_at_once_keeps_one_and_frees_the_other() {
    let (dir, server) = setup();
    let c = server.client();
    let id = create_upload(&c, "/mpu/race");
    let (a, b) = (pattern(5 * MIB, 10), pattern(5 * MIB, 11));
    std::thread::scope(|s| {
        let ta = s.spawn(|| upload_part(&server.client(), "/mpu/race", &id, 1, &a).status);
        let tb = s.spawn(|| upload_part(&server.client(), "/mpu/race", &id, 1, &b).status);
        assert_eq!((ta.join().ok(), tb.join().ok()), (Some(200), Some(200)));
    });
    let listed = c.send(Req::new("GET", "/mpu/race").query(&format!("uploadId={id}")));
    let etags = listed.elements("ETag");
    assert_eq!(etags.len(), 1, "one part 1");
    let winner = etags[0].replace("&quot;", "");
    let winner_body = if winner == hex::encode(Md5::digest(&a)) { &a } else { &b };
    wait_for_blob_files(dir.path(), 1); // the losing body is freed
    assert_eq!(complete(&c, "/mpu/race", &id, &[(1, &winner)]).status, 200);
    assert!(c.send(Req::new("GET", "/mpu/race")).body == *winner_body);
}

#[test]
fn complete_racing_abort_is_all_or_nothing() {
    for round in 0..5 {
        let (dir, server) = setup();
        let c = server.client();
        let id = create_upload(&c, "/mpu/ca");
        let body = pattern(5 * MIB, 20 + round);
        let etag = part_etag(&c, "/mpu/ca", &id, 1, &body);
        let (done, aborted) = std::thread::scope(|s| {
            let t1 = s.spawn(|| complete(&server.client(), "/mpu/ca", &id, &[(1, &etag)]).status);
            let t2 =
                s.spawn(|| server.client().send(Req::new("DELETE", "/mpu/ca").query(&format!("uploadId={id}"))).status);
            (t1.join().unwrap_or(0), t2.join().unwrap_or(0))
        });
        let got = c.send(Req::new("GET", "/mpu/ca"));
        match (done, aborted) {
            (200, 404) => {
                assert!(got.body == body, "completed whole");
                wait_for_blob_files(dir.path(), 1);
            }
            (404, 204) => {
                assert_eq!(got.status, 404, "aborted whole");
                wait_for_blob_files(dir.path(), 0);
            }
            other => panic!("complete/abort answered {other:?}: exactly one must win"),
        }
    }
}

#[test]
fn upload_resumes_after_kill9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source: Vec<u8> = pattern(17 * MIB + 3, 42);
    let chunks: Vec<&[u8]> = source.chunks(5 * MIB).collect();
    let server = Server::start(dir.path());
    let c = server.client();
    assert_eq!(c.send(Req::new("PUT", "/mpu")).status, 200);
    let id = create_upload(&c, "/mpu/resume");
    let e1 = part_etag(&c, "/mpu/resume", &id, 1, chunks[0]);
    let e2 = part_etag(&c, "/mpu/resume", &id, 2, chunks[1]);
    // Part 3 is cut off by the crash.
    let q = format!("partNumber=3&uploadId={id}");
    let _socket = c.send_partial(Req::new("PUT", "/mpu/resume").query(&q).body(&chunks[2][..MIB]), chunks[2].len());
    std::thread::sleep(Duration::from_millis(300));
    server.kill9();

    let server = Server::start(dir.path());
    let c = server.client();
    assert_eq!(c.send(Req::new("GET", "/mpu").query("uploads")).elements("UploadId"), vec![id.clone()]);
    let listed = c.send(Req::new("GET", "/mpu/resume").query(&format!("uploadId={id}")));
    assert_eq!(listed.elements("PartNumber"), vec!["1", "2"], "acknowledged parts survive, the torn one is absent");
    assert_eq!(listed.elements("Size"), vec![(5 * MIB).to_string(), (5 * MIB).to_string()]);
    assert_eq!(listed.elements("ETag"), vec![e1.replace('"', "&quot;"), e2.replace('"', "&quot;")]);
    let e3 = part_etag(&c, "/mpu/resume", &id, 3, chunks[2]);
    let e4 = part_etag(&c, "/mpu/resume", &id, 4, chunks[3]);
    let resp = complete(&c, "/mpu/resume", &id, &[(1, &e1), (2, &e2), (3, &e3), (4, &e4)]);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let got = c.send(Req::new("GET", "/mpu/resume"));
    assert_eq!(
        hex::encode(Sha1::digest(&got.body)),
        hex::encode(Sha1::digest(&source)),
        "SHA-1 of the download equals the source's"
    );
}

#[test]
fn delete_bucket_discards_uploads_in_progress() {
    let (dir, server) = setup();
    let c = server.client();
    let id = create_upload(&c, "/mpu/pending");
    part_etag(&c, "/mpu/pending", &id, 1, &pattern(100_000, 50));
    assert_eq!(blob_files(dir.path()), 1);
    assert_eq!(c.send(Req::new("DELETE", "/mpu")).status, 204);
    wait_for_blob_files(dir.path(), 0); // no orphaned part files
}

#[test]
fn stale_uploads_are_aborted_in_the_background() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(dir.path(), &["--abort-incomplete-after", "1s"]);
    let c = server.client();
    assert_eq!(c.send(Req::new("PUT", "/mpu")).status, 200);
    let id = create_upload(&c, "/mpu/stale");
    part_etag(&c, "/mpu/stale", &id, 1, &pattern(100_000, 51));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while blob_files(dir.path()) > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(blob_files(dir.path()), 0, "the stale upload's part is freed");
    assert!(c.send(Req::new("GET", "/mpu").query("uploads")).elements("UploadId").is_empty());
}

#[test]
fn lifecycle_abort_rules_round_trip_and_other_actions_are_refused() {
    let (_dir, server) = setup();
    let c = server.client();
    let missing = c.send(Req::new("GET", "/mpu").query("lifecycle"));
    assert_eq!(code(&missing), (404, "NoSuchLifecycleConfiguration".into()));
    let rule = "<LifecycleConfiguration><Rule><ID>tidy</ID><Filter><Prefix></Prefix></Filter><Status>Enabled</Status>\
                <AbortIncompleteMultipartUpload><DaysAfterInitiation>2</DaysAfterInitiation></AbortIncompleteMultipartUpload>\
                </Rule></LifecycleConfiguration>";
    assert_eq!(c.send(Req::new("PUT", "/mpu").query("lifecycle").body(rule.as_bytes())).status, 200);
    assert_eq!(c.send(Req::new("GET", "/mpu").query("lifecycle")).elements("DaysAfterInitiation"), vec!["2"]);
    let transition = "<LifecycleConfiguration><Rule><Filter/><Status>Enabled</Status><Transition><Days>1</Days><StorageClass>GLACIER</StorageClass></Transition></Rule></LifecycleConfiguration>";
    let refused = c.send(Req::new("PUT", "/mpu").query("lifecycle").body(transition.as_bytes()));
    assert_eq!(code(&refused), (501, "NotImplemented".into()));
    assert_eq!(c.send(Req::new("DELETE", "/mpu").query("lifecycle")).status, 204);
    assert_eq!(c.send(Req::new("GET", "/mpu").query("lifecycle")).status, 404);
}

#[test]
fn parts_racing_complete_leave_no_orphans() {
    let (dir, server) = setup();
    let c = server.client();
    let id = create_upload(&c, "/mpu/late");
    let first = pattern(5 * MIB, 30);
    let etag = part_etag(&c, "/mpu/late", &id, 1, &first);
    let late = pattern(MIB, 31);
    let server = &server;
    let (completed, late_statuses) = std::thread::scope(|s| {
        let uploads: Vec<_> = (2..6u32)
            .map(|n| {
                let (late, id) = (&late, &id);
                s.spawn(move || upload_part(&server.client(), "/mpu/late", id, n, late).status)
            })
            .collect();
        let done = complete(&server.client(), "/mpu/late", &id, &[(1, &etag)]).status;
        (done, uploads.into_iter().map(|h| h.join().unwrap_or(0)).collect::<Vec<_>>())
    });
    assert_eq!(completed, 200);
    assert!(
        late_statuses.iter().all(|s| *s == 200 || *s == 404),
        "a racing part either lands before Complete or gets NoSuchUpload: {late_statuses:?}"
    );
    assert!(c.send(Req::new("GET", "/mpu/late")).body == first, "the object is exactly the completed part");
    wait_for_blob_files(dir.path(), 1); // parts that lost the race or were left out are freed
}

/// The CRC32 of `bytes`, as S3 writes it in a header (base64, big-endian).
fn crc32_b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(crc32_raw(bytes))
}

fn complete_with(c: &Client, key: &str, id: &str, parts: &[(u32, &str)], headers: &[(&str, &str)]) -> Response {
    let mut xml = String::from("<CompleteMultipartUpload>");
    for (n, etag) in parts {
        xml.push_str(&format!("<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"));
    }
    xml.push_str("</CompleteMultipartUpload>");
    let q = format!("uploadId={id}");
    let mut req = Req::new("POST", key).query(&q).body(xml.as_bytes());
    for (name, value) in headers {
        req = req.header(name, *value);
    }
    c.send(req)
}

/// On Complete, `x-amz-checksum-<alg>` is the object's checksum (not the XML
/// body's): a correct FULL_OBJECT CRC32 completes, a wrong one or a wrong
/// checksum type is BadDigest and creates nothing, a malformed value is
/// InvalidRequest; a COMPOSITE value may carry its `-N` suffix.
#[test]
fn complete_checks_the_object_checksum_the_request_claims() {
    let (_dir, server) = setup();
    let c = server.client();
    let (first, second) = (pattern(5 * MIB, 3), pattern(MIB, 4));
    let whole: Vec<u8> = [first.as_slice(), second.as_slice()].concat();

    let key = "/mpu/full";
    let create = c.send(
        Req::new("POST", key)
            .query("uploads")
            .header("x-amz-checksum-algorithm", "CRC32")
            .header("x-amz-checksum-type", "FULL_OBJECT"),
    );
    assert_eq!(create.status, 200, "{}", create.text());
    let id = create.elements("UploadId").pop().expect("upload id");
    let e1 = part_etag(&c, key, &id, 1, &first);
    let e2 = part_etag(&c, key, &id, 2, &second);
    let parts = [(1, e1.as_str()), (2, e2.as_str())];

    let wrong = complete_with(&c, key, &id, &parts, &[("x-amz-checksum-crc32", &crc32_b64(b"other"))]);
    assert_eq!(code(&wrong), (400, "BadDigest".into()), "{}", wrong.text());
    let malformed = complete_with(&c, key, &id, &parts, &[("x-amz-checksum-crc32", "not-base64")]);
    assert_eq!(code(&malformed), (400, "InvalidRequest".into()), "{}", malformed.text());
    let counted = format!("{}-2", crc32_b64(&whole));
    let with_count = complete_with(&c, key, &id, &parts, &[("x-amz-checksum-crc32", &counted)]);
    assert_eq!(code(&with_count), (400, "BadDigest".into()), "a -N count on a FULL_OBJECT value");
    let mode = complete_with(&c, key, &id, &parts, &[("x-amz-checksum-type", "COMPOSITE")]);
    assert_eq!(code(&mode), (400, "BadDigest".into()), "{}", mode.text());
    assert_eq!(c.send(Req::new("HEAD", key)).status, 404, "a refused Complete creates nothing");

    let full = crc32_b64(&whole);
    let headers = [("x-amz-checksum-crc32", full.as_str()), ("x-amz-checksum-type", "FULL_OBJECT")];
    let done = complete_with(&c, key, &id, &parts, &headers);
    assert_eq!(done.status, 200, "the right full-object CRC32 completes: {}", done.text());
    assert_eq!(done.elements("ChecksumCRC32"), vec![full.clone()]);
    assert_eq!(done.elements("ChecksumType"), vec!["FULL_OBJECT".to_string()]);

    // COMPOSITE (CRC32's default): the CRC32 of the parts' CRC32s, "-2".
    let key = "/mpu/composite";
    let create = c.send(Req::new("POST", key).query("uploads").header("x-amz-checksum-algorithm", "CRC32"));
    let id = create.elements("UploadId").pop().expect("upload id");
    let e1 = part_etag(&c, key, &id, 1, &first);
    let e2 = part_etag(&c, key, &id, 2, &second);
    let raw_parts: Vec<u8> = [crc32_raw(&first), crc32_raw(&second)].concat();
    let composite = format!("{}-2", crc32_b64(&raw_parts));
    let done = complete_with(&c, key, &id, &[(1, &e1), (2, &e2)], &[("x-amz-checksum-crc32", &composite)]);
    assert_eq!(done.status, 200, "{}", done.text());
    assert_eq!(done.elements("ChecksumCRC32"), vec![composite]);
}

fn crc32_raw(bytes: &[u8]) -> [u8; 4] {
    (crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32IsoHdlc, bytes) as u32).to_be_bytes()
}

/// An SDK repeats a Complete whose response was lost: S3 answers 200 with
/// the same ETag while the object that upload created is the current one,
/// and NoSuchUpload once it was overwritten (or for an upload never completed).
#[test]
fn a_repeated_complete_gets_the_same_answer_while_its_object_is_current() {
    let (_dir, server) = setup();
    let c = server.client();
    let key = "/mpu/retried";
    let id = create_upload(&c, key);
    let body = pattern(MIB, 9);
    let etag = part_etag(&c, key, &id, 1, &body);
    let first = complete(&c, key, &id, &[(1, &etag)]);
    assert_eq!(first.status, 200, "{}", first.text());
    let again = complete(&c, key, &id, &[(1, &etag)]);
    assert_eq!(again.status, 200, "the repeat succeeds: {}", again.text());
    for element in ["ETag", "Location", "Bucket", "Key", "ChecksumCRC64NVME"] {
        assert_eq!(again.elements(element), first.elements(element), "{element}");
    }
    assert_eq!(c.send(Req::new("GET", key)).body, body, "the object is untouched");

    let other = create_upload(&c, key);
    let never = complete(&c, key, &"0".repeat(id.len()), &[(1, &etag)]);
    assert_eq!(code(&never).1, "NoSuchUpload", "{}", never.text());
    assert_eq!(c.send(Req::new("PUT", key).body(b"overwritten")).status, 200);
    let stale = complete(&c, key, &id, &[(1, &etag)]);
    assert_eq!(code(&stale), (404, "NoSuchUpload".into()), "the object is no longer the upload's: {}", stale.text());
    assert_eq!(c.send(Req::new("DELETE", key).query(&format!("uploadId={other}"))).status, 204);
}

/// GetObjectAttributes: the attributes asked for, parts paged for a
/// multipart object, none for a single PUT; a missing or unknown attribute
/// list is InvalidArgument.
#[test]
fn object_attributes_of_simple_and_multipart_objects() {
    let (_dir, server) = setup();
    let c = server.client();
    let attributes = |key: &str, list: &str, extra: &[(&str, &str)]| {
        let mut req = Req::new("GET", key).query("attributes").header("x-amz-object-attributes", list);
        for (name, value) in extra {
            req = req.header(name, *value);
        }
        c.send(req)
    };
    let simple = c.send(Req::new("PUT", "/mpu/simple").body(b"hello"));
    let etag = simple.header("etag").expect("etag").trim_matches('"').to_string();
    let resp = attributes("/mpu/simple", "ETag,ObjectSize,StorageClass,Checksum,ObjectParts", &[]);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.elements("ETag"), vec![etag], "the ETag without quotes");
    assert_eq!(resp.elements("ObjectSize"), vec!["5"]);
    assert_eq!(resp.elements("StorageClass"), vec!["STANDARD"]);
    assert_eq!(resp.elements("ChecksumType"), vec!["FULL_OBJECT"]);
    assert_eq!(resp.elements("ChecksumCRC64NVME").len(), 1);
    assert!(resp.elements("ObjectParts").is_empty(), "a single PUT has no parts");

    let key = "/mpu/three";
    let id = create_upload(&c, key);
    let bodies = [pattern(5 * MIB, 1), pattern(5 * MIB, 2), pattern(MIB, 3)];
    let etags: Vec<String> = (1..=3).map(|n| part_etag(&c, key, &id, n, &bodies[n as usize - 1])).collect();
    let parts: Vec<(u32, &str)> = etags.iter().enumerate().map(|(i, e)| (i as u32 + 1, e.as_str())).collect();
    assert_eq!(complete(&c, key, &id, &parts).status, 200);
    let first = attributes(key, "ObjectParts", &[("x-amz-max-parts", "2")]);
    assert_eq!(
        first.elements("PartsCount"),
        vec!["3"],
        "TotalPartsCount, named PartsCount on the wire: {}",
        first.text()
    );
    assert_eq!(first.elements("PartNumber"), vec!["1", "2"]);
    assert_eq!(first.elements("Size"), vec![(5 * MIB).to_string(), (5 * MIB).to_string()]);
    assert_eq!(first.elements("IsTruncated"), vec!["true"]);
    assert_eq!(first.elements("NextPartNumberMarker"), vec!["2"]);
    assert!(first.elements("ETag").is_empty(), "only what was asked for");
    let rest = attributes(key, "ObjectParts", &[("x-amz-max-parts", "2"), ("x-amz-part-number-marker", "2")]);
    assert_eq!(rest.elements("PartNumber"), vec!["3"]);
    assert_eq!(rest.elements("IsTruncated"), vec!["false"]);
    assert!(rest.elements("NextPartNumberMarker").is_empty(), "only a truncated list has a next marker");

    let unknown = attributes(key, "Colour", &[]);
    assert_eq!(code(&unknown), (400, "InvalidArgument".into()));
    let none = c.send(Req::new("GET", key).query("attributes"));
    assert_eq!(code(&none), (400, "InvalidArgument".into()));
    assert_eq!(code(&attributes("/mpu/missing", "ETag", &[])), (404, "NoSuchKey".into()));
}

/// GetObjectAttributes lists each part's checksum for an upload that chose
/// an algorithm, and answers for the version `versionId` names.
#[test]
fn object_attributes_list_part_checksums_and_take_a_version_id() {
    let (_dir, server) = setup();
    let c = server.client();
    let on = b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
    assert_eq!(c.send(Req::new("PUT", "/mpu").query("versioning").body(on)).status, 200);
    let key = "/mpu/summed";
    let create = c.send(Req::new("POST", key).query("uploads").header("x-amz-checksum-algorithm", "CRC32"));
    let id = create.elements("UploadId").pop().expect("upload id");
    let (first, second) = (pattern(5 * MIB, 7), pattern(1000, 8));
    let e1 = part_etag(&c, key, &id, 1, &first);
    let e2 = part_etag(&c, key, &id, 2, &second);
    let done = complete(&c, key, &id, &[(1, &e1), (2, &e2)]);
    assert_eq!(done.status, 200, "{}", done.text());
    let version = done.header("x-amz-version-id").expect("a version id").to_string();
    let attributes = |query: &str| {
        c.send(Req::new("GET", key).query(query).header("x-amz-object-attributes", "ObjectParts,ObjectSize"))
    };
    let resp = attributes("attributes");
    assert_eq!(resp.elements("ChecksumCRC32"), vec![crc32_b64(&first), crc32_b64(&second)], "{}", resp.text());
    assert_eq!(c.send(Req::new("PUT", key).body(b"newer")).status, 200);
    let old = attributes(&format!("attributes&versionId={version}"));
    assert_eq!(old.header("x-amz-version-id"), Some(version.as_str()));
    assert_eq!(old.elements("ObjectSize"), vec![(5 * MIB + 1000).to_string()], "the version asked for");
    assert_eq!(attributes("attributes").elements("ObjectSize"), vec!["5"], "the current version");
}
