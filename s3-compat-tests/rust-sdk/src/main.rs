//! Tessera S3 compatibility scenario driven by aws-sdk-rust.
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
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, MetadataDirective, ObjectIdentifier};
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
    let b = bucket.as_str();

    c.step("buckets: create, errors, list, location");
    c.ok(&format!("CreateBucket {b}"), client.create_bucket().bucket(b).send().await);
    c.ok(&format!("HeadBucket {b}"), client.head_bucket().bucket(b).send().await);
    c.err_code(
        &format!("CreateBucket {bad_bucket} fails with InvalidBucketName"),
        client.create_bucket().bucket(&bad_bucket).send().await,
        "InvalidBucketName",
    );
    c.err_code(
        &format!("CreateBucket {b} again fails with BucketAlreadyOwnedByYou"),
        client.create_bucket().bucket(b).send().await,
        "BucketAlreadyOwnedByYou",
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
    let encoded_src: String = hostile_src
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (byte as char).to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect();
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

    println!();
    if c.failed.is_empty() {
        println!("aws-sdk-rust: all {} checks passed", c.total);
    } else {
        println!("aws-sdk-rust: {} of {} checks FAILED:", c.failed.len(), c.total);
        for f in &c.failed {
            println!("  - {f}");
        }
        std::process::exit(1);
    }
}
