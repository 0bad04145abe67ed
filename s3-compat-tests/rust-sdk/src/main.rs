//! Tessera S3 compatibility scenario driven by aws-sdk-rust.
//!
//! `tessera-compat-rust-sdk` runs the round trip; `tessera-compat-rust-sdk multipart`
//! runs the low-level multipart scenario (see `multipart` below).
//!
//! Environment: ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, FILES_DIR
//! (the payloads made by lib.sh), TEST_BUCKET, BAD_BUCKET. Prints one line per
//! check and exits 1 if any check failed.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::PathBuf;

use aws_config::BehaviorVersion;
use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, MetadataDirective, ObjectIdentifier};
use aws_sdk_s3::Client;
use md5::Md5;
use sha2::{Digest, Sha256};

const SIZE_FILES: [&str; 5] = ["empty.bin", "one.bin", "5mib-minus-1.bin", "5mib.bin", "20mib.bin"];

const HOSTILE_KEYS: [&str; 9] = [
    "hostile/with space.txt",
    "hostile/é/日本語.txt",
    "hostile/plus+sign.txt",
    "hostile/percent%20literal.txt",
    "hostile/amp&ersand.txt",
    "hostile/quote\".txt",
    "hostile/a//b.txt",
    "/leading-slash.txt",
    "../x",
];

const MARKER_KEY: &str = "dir/";

#[derive(Default)]
struct Checks {
    total: usize,
    failed: Vec<String>,
}

impl Checks {
    fn step(&self, what: &str) {
        println!("\n== {what}");
    }

    fn check(&mut self, ok: bool, what: &str, detail: impl FnOnce() -> String) -> bool {
        self.total += 1;
        if ok {
            println!("  ok    {what}");
        } else {
            println!("  FAIL  {what}");
            for line in detail().lines() {
                println!("        {line}");
            }
            self.failed.push(what.to_string());
        }
        ok
    }

    fn eq<T: PartialEq + Debug>(&mut self, what: &str, actual: T, expected: T) -> bool {
        let ok = actual == expected;
        self.check(ok, what, || format!("expected: {expected:?}\nactual:   {actual:?}"))
    }

    /// Unwraps an SDK result, recording a failed check on error.
    fn ok<T, E: Debug>(&mut self, what: &str, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(v) => {
                self.check(true, what, String::new);
                Some(v)
            }
            Err(e) => {
                self.check(false, what, || format!("{e:#?}"));
                None
            }
        }
    }

    /// Prints the verdict; exits 1 if any check failed.
    fn finish(&self) {
        println!();
        if self.failed.is_empty() {
            println!("aws-sdk-rust: all {} checks passed", self.total);
            return;
        }
        println!("aws-sdk-rust: {} of {} checks FAILED:", self.failed.len(), self.total);
        for f in &self.failed {
            println!("  - {f}");
        }
        std::process::exit(1);
    }

    /// The request must fail with this S3 error code.
    fn err_code<T: Debug, E: ProvideErrorMetadata + Debug>(&mut self, what: &str, result: Result<T, E>, code: &str) {
        match result {
            Ok(v) => {
                self.check(false, what, || format!("expected {code}, got success: {v:?}"));
            }
            Err(e) => {
                let actual = e.code().map(str::to_string);
                self.check(actual.as_deref() == Some(code), what, || {
                    format!("expected code {code}, got {actual:?}\n{e:#?}")
                });
            }
        }
    }
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn quoted_md5(data: &[u8]) -> String {
    format!("\"{}\"", hex::encode(Md5::digest(data)))
}

fn hostile_content(key: &str) -> Vec<u8> {
    format!("key:{key}\n").into_bytes()
}

fn sorted_bytes(mut keys: Vec<String>) -> Vec<String> {
    keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    keys
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

struct Listing {
    keys: Vec<String>,
    prefixes: Vec<String>,
    sizes: BTreeMap<String, i64>,
}

/// ListObjectsV2, following continuation tokens.
async fn list_v2(
    client: &Client,
    bucket: &str,
    prefix: Option<&str>,
    delimiter: Option<&str>,
    page_size: Option<i32>,
) -> Result<Listing, String> {
    let mut listing = Listing { keys: vec![], prefixes: vec![], sizes: BTreeMap::new() };
    let mut token: Option<String> = None;
    for _ in 0..1000 {
        let out = client
            .list_objects_v2()
            .bucket(bucket)
            .set_prefix(prefix.map(str::to_string))
            .set_delimiter(delimiter.map(str::to_string))
            .set_max_keys(page_size)
            .set_continuation_token(token.clone())
            .send()
            .await
            .map_err(|e| format!("{e:#?}"))?;
        for o in out.contents() {
            let key = o.key().unwrap_or_default().to_string();
            listing.sizes.insert(key.clone(), o.size().unwrap_or(-1));
            listing.keys.push(key);
        }
        for p in out.common_prefixes() {
            listing.prefixes.push(p.prefix().unwrap_or_default().to_string());
        }
        if out.is_truncated() != Some(true) {
            return Ok(listing);
        }
        token = out.next_continuation_token().map(str::to_string);
        if token.is_none() {
            return Err("IsTruncated without NextContinuationToken".into());
        }
    }
    Err("more than 1000 pages".into())
}

async fn get_bytes(
    client: &Client,
    bucket: &str,
    key: &str,
    range: Option<&str>,
) -> Result<(Vec<u8>, Option<String>, Option<i64>), String> {
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_range(range.map(str::to_string))
        .send()
        .await
        .map_err(|e| format!("{e:#?}"))?;
    let content_range = out.content_range().map(str::to_string);
    let length = out.content_length();
    let body = out.body.collect().await.map_err(|e| format!("{e:#?}"))?.into_bytes().to_vec();
    Ok((body, content_range, length))
}

#[tokio::main]
async fn main() {
    let endpoint = std::env::var("ENDPOINT").expect("ENDPOINT");
    let access = std::env::var("AWS_ACCESS_KEY_ID").expect("AWS_ACCESS_KEY_ID");
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").expect("AWS_SECRET_ACCESS_KEY");
    let files = PathBuf::from(std::env::var("FILES_DIR").expect("FILES_DIR"));
    let bucket = std::env::var("TEST_BUCKET").unwrap_or_else(|_| "compat".into());
    let bad_bucket = std::env::var("BAD_BUCKET").unwrap_or_else(|_| "Bad_Bucket".into());

    let sdk_config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&endpoint)
        .credentials_provider(Credentials::new(access, secret, None, None, "tessera-compat"))
        .load()
        .await;
    let config = aws_sdk_s3::config::Builder::from(&sdk_config).force_path_style(true).build();
    let client = Client::from_conf(config);
    let mut c = Checks::default();
    match std::env::args().nth(1).as_deref() {
        None => round_trip(&client, &mut c, &files, &bucket, &bad_bucket).await,
        Some("multipart") => multipart(&client, &mut c, &files, &bucket).await,
        Some(other) => panic!("unknown mode {other:?}: expected no argument or 'multipart'"),
    }
    c.finish();
}

/// The round trip every client scenario makes (README.md, "Scenarios").
async fn round_trip(client: &Client, c: &mut Checks, files: &std::path::Path, bucket: &str, bad_bucket: &str) {
    let client = client.clone();
    let bucket = bucket.to_string();
    let b = bucket.as_str();

    c.step("buckets: create, errors, list, location");
    c.ok(&format!("CreateBucket {b}"), client.create_bucket().bucket(b).send().await);
    c.ok(&format!("HeadBucket {b}"), client.head_bucket().bucket(b).send().await);
    c.err_code(
        &format!("CreateBucket {bad_bucket} fails with InvalidBucketName"),
        client.create_bucket().bucket(bad_bucket).send().await,
        "InvalidBucketName",
    );
    c.ok(
        &format!("CreateBucket {b} again succeeds (us-east-1's answer for your own bucket, as S3)"),
        client.create_bucket().bucket(b).send().await,
    );
    if let Some(out) = c.ok("ListBuckets", client.list_buckets().send().await) {
        let names: Vec<_> = out.buckets().iter().filter_map(|b| b.name().map(str::to_string)).collect();
        c.eq("bucket names", names, vec![bucket.clone()]);
    }
    if let Some(out) = c.ok("GetBucketLocation", client.get_bucket_location().bucket(b).send().await) {
        let loc = out.location_constraint().map(|l| l.as_str().to_string()).unwrap_or_default();
        c.eq("LocationConstraint is empty for us-east-1", loc.as_str(), "");
    }

    c.step("PutObject: 0 B, 1 B, 5 MiB - 1, 5 MiB, 20 MiB (from files: aws-chunked + CRC32 trailer)");
    let mut expected: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for name in SIZE_FILES {
        let path = files.join(name);
        let data = std::fs::read(&path).expect("read test file");
        let key = format!("sizes/{name}");
        let body = ByteStream::from_path(&path).await.expect("ByteStream");
        if let Some(out) = c.ok(
            &format!("PutObject {key} ({} B)", data.len()),
            client.put_object().bucket(b).key(&key).body(body).send().await,
        ) {
            c.eq(
                &format!("ETag of {key} is the quoted MD5"),
                out.e_tag().unwrap_or_default().to_string(),
                quoted_md5(&data),
            );
        }
        expected.insert(key, data);
    }

    c.step("PutObject with content type and metadata (in-memory body)");
    let top = std::fs::read(files.join("top.txt")).expect("top.txt");
    c.ok(
        "PutObject top.txt with Content-Type and x-amz-meta-*",
        client
            .put_object()
            .bucket(b)
            .key("top.txt")
            .body(ByteStream::from(top.clone()))
            .content_type("text/plain; charset=utf-8")
            .metadata("color", "blue")
            .metadata("purpose", "compat test")
            .send()
            .await,
    );
    expected.insert("top.txt".into(), top.clone());

    c.step("PutObject: hostile keys and a directory marker");
    for key in HOSTILE_KEYS {
        let data = hostile_content(key);
        if let Some(out) = c.ok(
            &format!("PutObject key [{key}]"),
            client.put_object().bucket(b).key(key).body(ByteStream::from(data.clone())).send().await,
        ) {
            c.eq(&format!("ETag of [{key}]"), out.e_tag().unwrap_or_default().to_string(), quoted_md5(&data));
        }
        expected.insert(key.to_string(), data);
    }
    c.ok(
        "PutObject directory marker [dir/] (empty body)",
        client.put_object().bucket(b).key(MARKER_KEY).body(ByteStream::from_static(b"")).send().await,
    );
    expected.insert(MARKER_KEY.into(), vec![]);

    c.step("HeadObject: sizes, ETags, content type, metadata");
    for (key, data) in &expected {
        if let Some(out) = c.ok(&format!("HeadObject [{key}]"), client.head_object().bucket(b).key(key).send().await) {
            c.eq(&format!("ContentLength of [{key}]"), out.content_length(), Some(data.len() as i64));
            c.eq(&format!("ETag of [{key}]"), out.e_tag().unwrap_or_default().to_string(), quoted_md5(data));
        }
    }
    if let Some(out) = c.ok("HeadObject top.txt (metadata)", client.head_object().bucket(b).key("top.txt").send().await)
    {
        c.eq("ContentType of top.txt", out.content_type(), Some("text/plain; charset=utf-8"));
        let meta: BTreeMap<String, String> = out.metadata().cloned().unwrap_or_default().into_iter().collect();
        c.eq(
            "Metadata of top.txt",
            meta,
            BTreeMap::from([
                ("color".to_string(), "blue".to_string()),
                ("purpose".to_string(), "compat test".to_string()),
            ]),
        );
    }

    c.step("ListObjectsV2: exact keys, sizes, prefixes, delimiters, paging");
    let all_keys = sorted_bytes(expected.keys().cloned().collect());
    let cases: Vec<(&str, Option<&str>, Option<&str>, Option<i32>, Vec<String>, Vec<String>)> = vec![
        ("all keys", None, None, None, all_keys.clone(), vec![]),
        ("all keys, paged by 2", None, None, Some(2), all_keys.clone(), vec![]),
        (
            "delimiter / at the root",
            None,
            Some("/"),
            None,
            strings(&["top.txt"]),
            strings(&["../", "/", "dir/", "hostile/", "sizes/"]),
        ),
        (
            "delimiter / at the root, paged by 2",
            None,
            Some("/"),
            Some(2),
            strings(&["top.txt"]),
            strings(&["../", "/", "dir/", "hostile/", "sizes/"]),
        ),
        (
            "prefix hostile/ delimiter /",
            Some("hostile/"),
            Some("/"),
            None,
            strings(&[
                "hostile/amp&ersand.txt",
                "hostile/percent%20literal.txt",
                "hostile/plus+sign.txt",
                "hostile/quote\".txt",
                "hostile/with space.txt",
            ]),
            strings(&["hostile/a/", "hostile/é/"]),
        ),
        ("prefix hostile/a/ delimiter /", Some("hostile/a/"), Some("/"), None, vec![], strings(&["hostile/a//"])),
        (
            "prefix hostile/é/ (unicode prefix)",
            Some("hostile/é/"),
            None,
            None,
            strings(&["hostile/é/日本語.txt"]),
            vec![],
        ),
        ("prefix dir/ delimiter / (the marker itself)", Some("dir/"), Some("/"), None, strings(&["dir/"]), vec![]),
        (
            "prefix sizes/",
            Some("sizes/"),
            None,
            None,
            strings(&[
                "sizes/20mib.bin",
                "sizes/5mib-minus-1.bin",
                "sizes/5mib.bin",
                "sizes/empty.bin",
                "sizes/one.bin",
            ]),
            vec![],
        ),
        ("prefix nothing/ (no match)", Some("nothing/"), None, None, vec![], vec![]),
    ];
    for (label, prefix, delimiter, page, keys, prefixes) in cases {
        let result = list_v2(&client, b, prefix, delimiter, page).await;
        if let Some(listing) = c.ok(&format!("ListObjectsV2 {label}"), result) {
            c.eq(&format!("{label}: keys"), listing.keys, keys);
            c.eq(&format!("{label}: common prefixes"), listing.prefixes, prefixes);
            if label == "all keys" {
                let sizes: BTreeMap<String, i64> = expected.iter().map(|(k, v)| (k.clone(), v.len() as i64)).collect();
                c.eq("all keys: sizes", listing.sizes, sizes);
            }
        }
    }

    c.step("GetObject: every object, SHA-256 compared with the source");
    for (key, data) in &expected {
        if let Some((body, _, _)) = c.ok(&format!("GetObject [{key}]"), get_bytes(&client, b, key, None).await) {
            c.eq(&format!("[{key}] sha256 ({} B)", data.len()), sha256_hex(&body), sha256_hex(data));
        }
    }
    if let Some(out) = c.ok("GetObject top.txt (headers)", client.get_object().bucket(b).key("top.txt").send().await) {
        c.eq("GET Content-Type of top.txt", out.content_type(), Some("text/plain; charset=utf-8"));
        c.eq(
            "GET metadata color of top.txt",
            out.metadata().and_then(|m| m.get("color")).cloned(),
            Some("blue".to_string()),
        );
    }

    c.step("GetObject with Range");
    let big = expected["sizes/20mib.bin"].clone();
    let total = big.len();
    for (range, first, last) in [
        ("bytes=1048576-2097151", 1048576usize, 2097151usize),
        ("bytes=0-0", 0, 0),
        ("bytes=-100", total - 100, total - 1),
        ("bytes=20971000-", 20971000, total - 1),
        ("bytes=20971000-99999999", 20971000, total - 1),
    ] {
        if let Some((body, content_range, length)) = c.ok(
            &format!("GetObject sizes/20mib.bin Range {range}"),
            get_bytes(&client, b, "sizes/20mib.bin", Some(range)).await,
        ) {
            c.eq(&format!("{range}: bytes"), sha256_hex(&body), sha256_hex(&big[first..=last]));
            c.eq(&format!("{range}: Content-Range"), content_range, Some(format!("bytes {first}-{last}/{total}")));
            c.eq(&format!("{range}: Content-Length"), length, Some((last - first + 1) as i64));
        }
    }
    c.err_code(
        "Range bytes=0-0 on the empty object fails with InvalidRange",
        client.get_object().bucket(b).key("sizes/empty.bin").range("bytes=0-0").send().await,
        "InvalidRange",
    );
    c.err_code(
        "Range beyond the end fails with InvalidRange",
        client.get_object().bucket(b).key("sizes/one.bin").range("bytes=5-10").send().await,
        "InvalidRange",
    );

    c.step("CopyObject: bytes, ETag, metadata (COPY and REPLACE), hostile source key");
    if let Some(out) = c.ok(
        "CopyObject sizes/5mib.bin -> copies/5mib.bin",
        client.copy_object().bucket(b).key("copies/5mib.bin").copy_source(format!("{b}/sizes/5mib.bin")).send().await,
    ) {
        c.eq(
            "copy result ETag",
            out.copy_object_result().and_then(|r| r.e_tag()).map(str::to_string),
            Some(quoted_md5(&expected["sizes/5mib.bin"])),
        );
    }
    if let Some((body, _, _)) = c.ok("GetObject copies/5mib.bin", get_bytes(&client, b, "copies/5mib.bin", None).await)
    {
        c.eq("copy has the source's bytes", sha256_hex(&body), sha256_hex(&expected["sizes/5mib.bin"]));
    }
    c.ok(
        "CopyObject top.txt -> copies/top.txt (metadata directive COPY)",
        client.copy_object().bucket(b).key("copies/top.txt").copy_source(format!("{b}/top.txt")).send().await,
    );
    if let Some(out) =
        c.ok("HeadObject copies/top.txt", client.head_object().bucket(b).key("copies/top.txt").send().await)
    {
        c.eq("copied ContentType", out.content_type(), Some("text/plain; charset=utf-8"));
        c.eq(
            "copied metadata purpose",
            out.metadata().and_then(|m| m.get("purpose")).cloned(),
            Some("compat test".to_string()),
        );
    }
    c.ok(
        "CopyObject top.txt -> copies/top-replaced.txt (metadata directive REPLACE)",
        client
            .copy_object()
            .bucket(b)
            .key("copies/top-replaced.txt")
            .copy_source(format!("{b}/top.txt"))
            .metadata_directive(MetadataDirective::Replace)
            .content_type("application/x-tessera-test")
            .metadata("color", "green")
            .send()
            .await,
    );
    if let Some(out) = c.ok(
        "HeadObject copies/top-replaced.txt",
        client.head_object().bucket(b).key("copies/top-replaced.txt").send().await,
    ) {
        c.eq("replaced ContentType", out.content_type(), Some("application/x-tessera-test"));
        let meta: BTreeMap<String, String> = out.metadata().cloned().unwrap_or_default().into_iter().collect();
        c.eq("replaced Metadata", meta, BTreeMap::from([("color".to_string(), "green".to_string())]));
    }
    // The SDK sends x-amz-copy-source as given: URL-encode the key, as AWS documents.
    let hostile_src = "hostile/é/日本語.txt";
    let hostile_dst = "copies/é 日本 + copy.txt";
    let encoded_src = url_encode_key(hostile_src);
    c.ok(
        &format!("CopyObject [{hostile_src}] -> [{hostile_dst}]"),
        client.copy_object().bucket(b).key(hostile_dst).copy_source(format!("{b}/{encoded_src}")).send().await,
    );
    if let Some((body, _, _)) =
        c.ok(&format!("GetObject [{hostile_dst}]"), get_bytes(&client, b, hostile_dst, None).await)
    {
        c.eq("hostile copy has the source's bytes", body, hostile_content(hostile_src));
    }

    c.step("delete: bucket not empty, single, missing key, batch, bucket");
    c.err_code(
        "DeleteBucket of a non-empty bucket fails with BucketNotEmpty",
        client.delete_bucket().bucket(b).send().await,
        "BucketNotEmpty",
    );
    c.ok("DeleteObject top.txt", client.delete_object().bucket(b).key("top.txt").send().await);
    c.err_code(
        "GetObject top.txt after delete fails with NoSuchKey",
        client.get_object().bucket(b).key("top.txt").send().await,
        "NoSuchKey",
    );
    match client.head_object().bucket(b).key("top.txt").send().await {
        Ok(_) => {
            c.check(false, "HeadObject top.txt after delete: 404", || "it succeeded".into());
        }
        Err(e) => {
            let status = e.raw_response().map(|r| r.status().as_u16());
            c.eq("HeadObject top.txt after delete: 404", status, Some(404));
        }
    }
    c.ok("DeleteObject of a missing key succeeds", client.delete_object().bucket(b).key("no/such/key").send().await);
    let mut remaining: Vec<String> = expected.keys().filter(|k| k.as_str() != "top.txt").cloned().collect();
    remaining.extend(strings(&["copies/5mib.bin", "copies/top.txt", "copies/top-replaced.txt", hostile_dst]));
    let remaining = sorted_bytes(remaining);
    let objects: Vec<ObjectIdentifier> =
        remaining.iter().map(|k| ObjectIdentifier::builder().key(k).build().expect("key")).collect();
    let delete = Delete::builder().set_objects(Some(objects)).quiet(false).build().expect("delete");
    if let Some(out) = c.ok(
        &format!("DeleteObjects of the {} remaining keys", remaining.len()),
        client.delete_objects().bucket(b).delete(delete).send().await,
    ) {
        let deleted = sorted_bytes(out.deleted().iter().filter_map(|d| d.key().map(str::to_string)).collect());
        c.eq("DeleteObjects: every key reported Deleted", deleted, remaining.clone());
        c.eq("DeleteObjects: no Errors", out.errors().len(), 0);
    }
    if let Some(listing) = c.ok("ListObjectsV2 after deleting everything", list_v2(&client, b, None, None, None).await)
    {
        c.eq("no key left", listing.keys, Vec::<String>::new());
    }
    c.ok(&format!("DeleteBucket {b}"), client.delete_bucket().bucket(b).send().await);
    match client.head_bucket().bucket(b).send().await {
        Ok(_) => {
            c.check(false, "HeadBucket after delete: 404", || "it succeeded".into());
        }
        Err(e) => {
            let status = e.raw_response().map(|r| r.status().as_u16());
            c.eq("HeadBucket after delete: 404", status, Some(404));
        }
    }
}

fn multipart_etag(parts: &[&[u8]]) -> String {
    let mut joined = Vec::new();
    for p in parts {
        joined.extend_from_slice(&Md5::digest(p));
    }
    format!("\"{}-{}\"", hex::encode(Md5::digest(&joined)), parts.len())
}

/// Every part of an upload, following ListParts' NextPartNumberMarker with `page` parts a page.
async fn list_all_parts(
    client: &Client,
    bucket: &str,
    key: &str,
    id: &str,
    page: i32,
) -> Result<(Vec<(i32, i64, String)>, usize), String> {
    let (mut parts, mut pages, mut marker) = (vec![], 0, None::<String>);
    for _ in 0..100 {
        let out = client
            .list_parts()
            .bucket(bucket)
            .key(key)
            .upload_id(id)
            .max_parts(page)
            .set_part_number_marker(marker.clone())
            .send()
            .await
            .map_err(|e| format!("{e:#?}"))?;
        pages += 1;
        for p in out.parts() {
            parts.push((
                p.part_number().unwrap_or(-1),
                p.size().unwrap_or(-1),
                p.e_tag().unwrap_or_default().to_string(),
            ));
        }
        if out.is_truncated() != Some(true) {
            return Ok((parts, pages));
        }
        marker = out.next_part_number_marker().map(str::to_string);
    }
    Err("more than 100 pages".into())
}

/// Low-level multipart: Create, UploadPart (file slices: aws-chunked + CRC32
/// trailer; and an in-memory body), ListParts paged, ListMultipartUploads,
/// Complete, GET/HEAD with partNumber and Range, UploadPartCopy, Abort.
async fn multipart(client: &Client, c: &mut Checks, files: &std::path::Path, b: &str) {
    const MIB: usize = 1024 * 1024;
    let src_path = files.join("20mib.bin");
    let src = std::fs::read(&src_path).expect("20mib.bin");
    let key = "rust/é multipart+parts.bin";
    // Parts 1 and 2 are 5 MiB file slices, part 3 is 3 MiB + 777 B from memory.
    let slices: [&[u8]; 3] = [&src[..5 * MIB], &src[5 * MIB..10 * MIB], &src[10 * MIB..13 * MIB + 777]];
    let whole: Vec<u8> = slices.concat();

    c.step("CreateMultipartUpload, ListMultipartUploads");
    c.ok(&format!("CreateBucket {b}"), client.create_bucket().bucket(b).send().await);
    let created = c.ok(
        &format!("CreateMultipartUpload [{key}] with Content-Type and metadata"),
        client
            .create_multipart_upload()
            .bucket(b)
            .key(key)
            .content_type("application/x-rust-parts")
            .metadata("sdk", "rust")
            .send()
            .await,
    );
    let id = created.and_then(|o| o.upload_id().map(str::to_string)).unwrap_or_default();
    println!("  UploadId {id}");
    if let Some(out) = c.ok("ListMultipartUploads", client.list_multipart_uploads().bucket(b).send().await) {
        let ups: Vec<(String, String)> = out
            .uploads()
            .iter()
            .map(|u| (u.key().unwrap_or_default().to_string(), u.upload_id().unwrap_or_default().to_string()))
            .collect();
        c.eq("the upload is listed", ups, vec![(key.to_string(), id.clone())]);
    }

    c.step("UploadPart 3, 1, 2 (file slices stream as aws-chunked with a CRC32 trailer)");
    for number in [3usize, 1, 2] {
        let data = slices[number - 1];
        let body = if number == 3 {
            ByteStream::from(data.to_vec())
        } else {
            ByteStream::read_from()
                .path(&src_path)
                .offset(((number - 1) * 5 * MIB) as u64)
                .length(Length::Exact(data.len() as u64))
                .build()
                .await
                .expect("file slice")
        };
        if let Some(out) = c.ok(
            &format!("UploadPart {number} ({} B)", data.len()),
            client.upload_part().bucket(b).key(key).upload_id(&id).part_number(number as i32).body(body).send().await,
        ) {
            c.eq(&format!("part {number} ETag"), out.e_tag().unwrap_or_default().to_string(), quoted_md5(data));
            c.check(out.checksum_crc32().is_some(), &format!("part {number} CRC32 echoed"), || format!("{out:?}"));
        }
    }

    c.step("ListParts paged by 2 (part-number-marker), Complete");
    let want: Vec<(i32, i64, String)> =
        (0..3).map(|i| (i as i32 + 1, slices[i].len() as i64, quoted_md5(slices[i]))).collect();
    if let Some((parts, pages)) = c.ok("ListParts paged by 2", list_all_parts(client, b, key, &id, 2).await) {
        c.eq("parts: numbers, sizes, ETags", parts, want.clone());
        c.eq("2 pages", pages, 2);
    }
    let completed = CompletedMultipartUpload::builder()
        .set_parts(Some(
            want.iter().map(|(n, _, etag)| CompletedPart::builder().part_number(*n).e_tag(etag).build()).collect(),
        ))
        .build();
    if let Some(out) = c.ok(
        "CompleteMultipartUpload",
        client
            .complete_multipart_upload()
            .bucket(b)
            .key(key)
            .upload_id(&id)
            .multipart_upload(completed.clone())
            .send()
            .await,
    ) {
        c.eq("Complete ETag = md5(part MD5s)-3", out.e_tag().unwrap_or_default().to_string(), multipart_etag(&slices));
    }
    // A retry of a Complete that succeeded answers the same result, as S3 does.
    if let Some(out) = c.ok(
        "Complete again (a retry) succeeds",
        client.complete_multipart_upload().bucket(b).key(key).upload_id(&id).multipart_upload(completed).send().await,
    ) {
        c.eq("the retry's ETag", out.e_tag().unwrap_or_default().to_string(), multipart_etag(&slices));
    }
    if let Some(out) =
        c.ok("ListMultipartUploads after complete", client.list_multipart_uploads().bucket(b).send().await)
    {
        c.eq("no upload left", out.uploads().len(), 0);
    }

    c.step("GetObject / HeadObject: whole, partNumber, Range across parts");
    if let Some((body, _, _)) = c.ok("GetObject (whole)", get_bytes(client, b, key, None).await) {
        c.eq("object = part 1 + part 2 + part 3 (sha256)", sha256_hex(&body), sha256_hex(&whole));
    }
    if let Some(out) = c.ok("HeadObject", client.head_object().bucket(b).key(key).send().await) {
        c.eq("ContentLength", out.content_length(), Some(whole.len() as i64));
        c.eq("ContentType", out.content_type(), Some("application/x-rust-parts"));
        c.eq("metadata sdk", out.metadata().and_then(|m| m.get("sdk")).cloned(), Some("rust".to_string()));
    }
    if let Some(out) =
        c.ok("HeadObject partNumber=3", client.head_object().bucket(b).key(key).part_number(3).send().await)
    {
        c.eq("part 3: ContentLength", out.content_length(), Some(slices[2].len() as i64));
        c.eq("part 3: PartsCount", out.parts_count(), Some(3));
    }
    match client.get_object().bucket(b).key(key).part_number(2).send().await {
        Ok(out) => {
            c.check(true, "GetObject partNumber=2", String::new);
            c.eq("part 2: PartsCount", out.parts_count(), Some(3));
            c.eq(
                "part 2: Content-Range",
                out.content_range().map(str::to_string),
                Some(format!("bytes {}-{}/{}", 5 * MIB, 10 * MIB - 1, whole.len())),
            );
            let body = out.body.collect().await.map(|d| d.into_bytes().to_vec()).unwrap_or_default();
            c.eq("part 2: bytes", sha256_hex(&body), sha256_hex(slices[1]));
        }
        Err(e) => {
            c.check(false, "GetObject partNumber=2", || format!("{e:#?}"));
        }
    }
    let (first, last) = (5 * MIB - 3, 10 * MIB + 2);
    let range = format!("bytes={first}-{last}");
    if let Some((body, content_range, _)) =
        c.ok(&format!("GetObject Range {range} (parts 1 to 3)"), get_bytes(client, b, key, Some(&range)).await)
    {
        c.eq("range bytes", sha256_hex(&body), sha256_hex(&whole[first..=last]));
        c.eq("range Content-Range", content_range, Some(format!("bytes {first}-{last}/{}", whole.len())));
    }

    c.step("UploadPartCopy with a source range, then Complete");
    let copy_key = "rust/copied.bin";
    let id2 = c
        .ok(
            "CreateMultipartUpload rust/copied.bin",
            client.create_multipart_upload().bucket(b).key(copy_key).send().await,
        )
        .and_then(|o| o.upload_id().map(str::to_string))
        .unwrap_or_default();
    // x-amz-copy-source is sent as given: URL-encode the key, as AWS documents.
    let encoded = url_encode_key(key);
    let (cf, cl) = (4 * MIB, 9 * MIB + 99);
    let mut etags = vec![];
    if let Some(out) = c.ok(
        &format!("UploadPartCopy part 1 <- [{key}] bytes={cf}-{cl}"),
        client
            .upload_part_copy()
            .bucket(b)
            .key(copy_key)
            .upload_id(&id2)
            .part_number(1)
            .copy_source(format!("{b}/{encoded}"))
            .copy_source_range(format!("bytes={cf}-{cl}"))
            .send()
            .await,
    ) {
        let etag = out.copy_part_result().and_then(|r| r.e_tag()).unwrap_or_default().to_string();
        c.eq("copied part ETag = MD5 of the range", etag.clone(), quoted_md5(&whole[cf..=cl]));
        etags.push(etag);
    }
    if let Some(out) = c.ok(
        "UploadPart 2 (in memory, 10 B)",
        client
            .upload_part()
            .bucket(b)
            .key(copy_key)
            .upload_id(&id2)
            .part_number(2)
            .body(ByteStream::from_static(b"0123456789"))
            .send()
            .await,
    ) {
        etags.push(out.e_tag().unwrap_or_default().to_string());
    }
    let parts = etags
        .iter()
        .enumerate()
        .map(|(i, e)| CompletedPart::builder().part_number(i as i32 + 1).e_tag(e).build())
        .collect();
    c.ok(
        "CompleteMultipartUpload rust/copied.bin",
        client
            .complete_multipart_upload()
            .bucket(b)
            .key(copy_key)
            .upload_id(&id2)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await,
    );
    if let Some((body, _, _)) = c.ok("GetObject rust/copied.bin", get_bytes(client, b, copy_key, None).await) {
        let mut want = whole[cf..=cl].to_vec();
        want.extend_from_slice(b"0123456789");
        c.eq("copied range + uploaded part (sha256)", sha256_hex(&body), sha256_hex(&want));
    }

    c.step("AbortMultipartUpload: the upload disappears, NoSuchUpload afterwards");
    let akey = "rust/aborted.bin";
    let id3 = c
        .ok("CreateMultipartUpload rust/aborted.bin", client.create_multipart_upload().bucket(b).key(akey).send().await)
        .and_then(|o| o.upload_id().map(str::to_string))
        .unwrap_or_default();
    c.ok(
        "UploadPart 1",
        client
            .upload_part()
            .bucket(b)
            .key(akey)
            .upload_id(&id3)
            .part_number(1)
            .body(ByteStream::from(slices[0].to_vec()))
            .send()
            .await,
    );
    c.ok("AbortMultipartUpload", client.abort_multipart_upload().bucket(b).key(akey).upload_id(&id3).send().await);
    if let Some(out) = c.ok("ListMultipartUploads after abort", client.list_multipart_uploads().bucket(b).send().await)
    {
        c.eq("no upload left", out.uploads().len(), 0);
    }
    c.err_code(
        "ListParts after abort fails with NoSuchUpload",
        client.list_parts().bucket(b).key(akey).upload_id(&id3).send().await,
        "NoSuchUpload",
    );
    c.err_code(
        "UploadPart after abort fails with NoSuchUpload",
        client
            .upload_part()
            .bucket(b)
            .key(akey)
            .upload_id(&id3)
            .part_number(2)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
        "NoSuchUpload",
    );
    c.err_code(
        "AbortMultipartUpload again fails with NoSuchUpload",
        client.abort_multipart_upload().bucket(b).key(akey).upload_id(&id3).send().await,
        "NoSuchUpload",
    );
    c.err_code(
        "GetObject rust/aborted.bin fails with NoSuchKey",
        client.get_object().bucket(b).key(akey).send().await,
        "NoSuchKey",
    );

    c.step("cleanup");
    for k in [key, copy_key] {
        c.ok(&format!("DeleteObject [{k}]"), client.delete_object().bucket(b).key(k).send().await);
    }
    c.ok(&format!("DeleteBucket {b}"), client.delete_bucket().bucket(b).send().await);
}

/// A key as x-amz-copy-source wants it: percent-encoded but for unreserved
/// characters and '/'. The SDK sends that header as given.
fn url_encode_key(key: &str) -> String {
    key.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (byte as char).to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect()
}
