//! Users against the real binary: `tessera user add/list/remove/rotate` on
//! a stopped server's data folder and through a running server (which honours
//! each change at once), and bucket ownership: a user lists, reads and writes
//! only their own buckets, whatever the operation, and root can do everything.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use base64::Engine;
use common::{Client, Req, Response, Server, ACCESS_KEY, SECRET_KEY};
use md5::{Digest, Md5};
use serde_json::Value;

/// Runs `tessera user ARGS --data DATA` with the root credentials in the
/// environment (used when a server runs on DATA, to sign its admin API calls).
fn tessera_user(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("user")
        .args(args)
        .arg("--data")
        .arg(data)
        .args(common::suite_meta_args(data))
        .env("TESSERA_ACCESS_KEY", ACCESS_KEY)
        .env("TESSERA_SECRET_KEY", SECRET_KEY)
        .env("TESSERA_LOG", "warn")
        .output()
        .expect("run tessera user")
}

/// `tessera user ARGS` that must succeed; returns its stdout.
fn user_ok(data: &Path, args: &[&str]) -> String {
    let out = tessera_user(data, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "tessera user {args:?} failed ({}): {stdout} {stderr}", out.status);
    stdout
}

/// `tessera user ARGS` that must fail, saying why on stderr.
fn user_fails(data: &Path, args: &[&str]) {
    let out = tessera_user(data, args);
    assert!(!out.status.success(), "tessera user {args:?} succeeded: {}", String::from_utf8_lossy(&out.stdout));
    assert!(!out.stderr.is_empty(), "tessera user {args:?} failed without a message on stderr");
}

/// `tessera user ARGS` (with `--json`) that must succeed; stdout must be
/// exactly one JSON value (serde_json refuses anything after it).
fn user_json(data: &Path, args: &[&str]) -> Value {
    let stdout = user_ok(data, args);
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("tessera user {args:?}: not one JSON value ({e}): {stdout}"))
}

/// A user's credentials, as `user add --json` and `user rotate --json` print them.
#[derive(Debug, Clone)]
struct Keys {
    access_key: String,
    secret_key: String,
    canonical_id: String,
}

fn keys_of(json: &Value) -> Keys {
    assert!(json.is_object(), "one JSON object: {json}");
    let field = |name: &str| {
        let value = json[name].as_str().unwrap_or_else(|| panic!("no string {name}: {json}"));
        assert!(!value.is_empty(), "empty {name}: {json}");
        value.to_string()
    };
    Keys {
        access_key: field("access_key_id"),
        secret_key: field("secret_access_key"),
        canonical_id: field("canonical_id"),
    }
}

/// `tessera user add NAME --json`.
fn add_user(data: &Path, name: &str) -> Keys {
    let keys = keys_of(&user_json(data, &["add", name, "--json"]));
    assert_ne!(keys.access_key, ACCESS_KEY, "a user's access key is not root's");
    assert_ne!(keys.secret_key, SECRET_KEY, "a user's secret is not root's");
    keys
}

/// A client of `server` signing with `keys`.
fn client_as(server: &Server, keys: &Keys) -> Client {
    let mut c = server.client();
    c.access_key = keys.access_key.clone();
    c.secret_key = keys.secret_key.clone();
    c
}

fn code(resp: &Response) -> String {
    resp.error_code().unwrap_or_else(|| format!("<no code, status {}>", resp.status))
}

fn content_md5(body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(body))
}

/// The `user list --json` entry named `name`.
fn listed<'a>(list: &'a Value, name: &str) -> &'a Value {
    let users = list.as_array().unwrap_or_else(|| panic!("user list --json is one JSON array: {list}"));
    users.iter().find(|u| u["name"] == name).unwrap_or_else(|| panic!("{name} not listed: {list}"))
}

fn listed_names(list: &Value) -> Vec<String> {
    let users = list.as_array().unwrap_or_else(|| panic!("user list --json is one JSON array: {list}"));
    let mut names: Vec<String> = users.iter().map(|u| u["name"].as_str().expect("a name").to_string()).collect();
    names.sort();
    names
}

#[test]
fn a_user_added_through_a_running_server_can_create_put_and_get_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());

    let stdout = user_ok(dir.path(), &["add", "alice", "--json"]);
    let json: Value = serde_json::from_str(&stdout).expect("stdout is exactly one JSON value");
    let keys = keys_of(&json);
    assert_ne!(keys.access_key, ACCESS_KEY);

    let alice = client_as(&server, &keys);
    let resp = alice.send(Req::new("PUT", "/alice-bkt"));
    assert_eq!(resp.status, 200, "CreateBucket as the new user: {}", resp.text());
    let resp = alice.send(Req::new("PUT", "/alice-bkt/hello.txt").body(b"hello from alice"));
    assert_eq!(resp.status, 200, "PutObject as the new user: {}", resp.text());
    let resp = alice.send(Req::new("GET", "/alice-bkt/hello.txt"));
    assert_eq!((resp.status, resp.body.as_slice()), (200, &b"hello from alice"[..]), "{}", resp.text());

    user_fails(dir.path(), &["add", "alice"]);
    let list = user_json(dir.path(), &["list", "--json"]);
    assert_eq!(listed(&list, "alice")["access_key_id"], keys.access_key.as_str());
    assert!(!list.to_string().contains(&keys.secret_key), "user list shows a secret: {list}");
}

/// Rotate and remove through a running server: the old secret and the
/// removed key are refused at once; users survive a restart; no secret
/// reaches the server's log.
#[test]
fn rotate_and_remove_on_a_running_server_take_effect_at_once_and_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = tempfile::tempdir().expect("tempdir");
    let log_path = logs.path().join("stderr");
    let log = std::fs::File::create(&log_path).expect("log file");
    let server = Server::try_start_with(dir.path(), &[], log).expect("server starts");

    let old = add_user(dir.path(), "alice");
    assert_eq!(client_as(&server, &old).send(Req::new("PUT", "/alice-bkt")).status, 200);
    assert_eq!(client_as(&server, &old).send(Req::new("PUT", "/alice-bkt/k").body(b"kept")).status, 200);

    let new = keys_of(&user_json(dir.path(), &["rotate", "alice", "--json"]));
    assert_eq!(new.access_key, old.access_key, "rotate keeps the access key id");
    assert_eq!(new.canonical_id, old.canonical_id, "rotate keeps the user");
    assert_ne!(new.secret_key, old.secret_key, "rotate gives a new secret");
    let resp = client_as(&server, &old).send(Req::new("GET", "/alice-bkt/k"));
    assert_eq!((resp.status, code(&resp)), (403, "SignatureDoesNotMatch".into()), "the old secret");
    let resp = client_as(&server, &new).send(Req::new("GET", "/alice-bkt/k"));
    assert_eq!((resp.status, resp.body.as_slice()), (200, &b"kept"[..]), "the new secret: {}", resp.text());

    let bob = add_user(dir.path(), "bob");
    assert_eq!(client_as(&server, &bob).send(Req::new("GET", "/")).status, 200);
    user_ok(dir.path(), &["remove", "bob"]);
    let resp = client_as(&server, &bob).send(Req::new("GET", "/"));
    assert_eq!((resp.status, code(&resp)), (403, "InvalidAccessKeyId".into()), "a removed user");
    user_fails(dir.path(), &["remove", "bob"]);
    user_fails(dir.path(), &["rotate", "bob"]);
    assert_eq!(listed_names(&user_json(dir.path(), &["list", "--json"])), ["alice"]);

    assert!(server.terminate().success(), "clean stop");
    let log = std::fs::read_to_string(&log_path).expect("read the server's stderr");
    for secret in [&old.secret_key, &new.secret_key, &bob.secret_key] {
        assert!(!log.contains(secret.as_str()), "a user's secret is in the server's log: {log}");
    }

    let server = Server::start(dir.path());
    let resp = client_as(&server, &new).send(Req::new("GET", "/alice-bkt/k"));
    assert_eq!((resp.status, resp.body.as_slice()), (200, &b"kept"[..]), "after a restart: {}", resp.text());
    let resp = client_as(&server, &old).send(Req::new("GET", "/"));
    assert_eq!((resp.status, code(&resp)), (403, "SignatureDoesNotMatch".into()), "old secret after a restart");
    let resp = client_as(&server, &bob).send(Req::new("GET", "/"));
    assert_eq!((resp.status, code(&resp)), (403, "InvalidAccessKeyId".into()), "removed user after a restart");
}

/// add/list/remove/rotate with no server running (a fresh data folder),
/// then a server started on that folder honours them.
#[test]
fn users_managed_on_a_stopped_servers_folder_are_honoured_when_it_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();

    let alice_json = user_json(data, &["add", "alice", "--email", "alice@example.com", "--json"]);
    let alice = keys_of(&alice_json);
    let bob = add_user(data, "bob");
    let carol_old = add_user(data, "carol");
    let ids = [&alice.access_key, &bob.access_key, &carol_old.access_key];
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2], "distinct access keys: {ids:?}");
    let canon = [&alice.canonical_id, &bob.canonical_id, &carol_old.canonical_id];
    assert!(canon[0] != canon[1] && canon[1] != canon[2] && canon[0] != canon[2], "distinct canonical ids");
    user_fails(data, &["add", "alice"]);
    user_fails(data, &["add", "alice", "--json"]);

    let list = user_json(data, &["list", "--json"]);
    assert_eq!(listed_names(&list), ["alice", "bob", "carol"]);
    let entry = listed(&list, "alice");
    assert_eq!(entry["access_key_id"], alice.access_key.as_str());
    assert_eq!(entry["canonical_id"], alice.canonical_id.as_str());
    assert_eq!(entry["email"], "alice@example.com");
    assert!(listed(&list, "bob")["email"].is_null(), "no email is null: {list}");
    let text = list.to_string();
    for secret in [&alice.secret_key, &bob.secret_key, &carol_old.secret_key] {
        assert!(!text.contains(secret.as_str()), "user list shows a secret: {text}");
    }
    assert!(!text.contains("secret_access_key"), "user list has a secret field: {text}");

    user_ok(data, &["remove", "bob"]);
    user_fails(data, &["remove", "bob"]);
    user_fails(data, &["rotate", "nobody"]);
    let carol = keys_of(&user_json(data, &["rotate", "carol", "--json"]));
    assert_eq!(carol.access_key, carol_old.access_key, "rotate keeps the access key id");
    assert_eq!(carol.canonical_id, carol_old.canonical_id, "rotate keeps the user");
    assert_ne!(carol.secret_key, carol_old.secret_key, "rotate gives a new secret");

    // Without --json the access key is still printed (for a person to copy).
    let plain = user_ok(data, &["add", "dave"]);
    let list = user_json(data, &["list", "--json"]);
    assert_eq!(listed_names(&list), ["alice", "carol", "dave"]);
    let dave_key = listed(&list, "dave")["access_key_id"].as_str().expect("dave's access key").to_string();
    assert!(plain.contains(&dave_key), "`user add` prints the access key: {plain}");

    let server = Server::start(data);
    let c = client_as(&server, &alice);
    assert_eq!(c.send(Req::new("PUT", "/alice-bkt")).status, 200);
    assert_eq!(c.send(Req::new("PUT", "/alice-bkt/k").body(b"offline user")).status, 200);
    assert_eq!(c.send(Req::new("GET", "/alice-bkt/k")).body, b"offline user");

    let resp = client_as(&server, &bob).send(Req::new("GET", "/"));
    assert_eq!((resp.status, code(&resp)), (403, "InvalidAccessKeyId".into()), "a removed user");
    let resp = client_as(&server, &carol_old).send(Req::new("GET", "/"));
    assert_eq!((resp.status, code(&resp)), (403, "SignatureDoesNotMatch".into()), "a rotated user's old secret");
    let resp = client_as(&server, &carol).send(Req::new("PUT", "/carol-bkt"));
    assert_eq!(resp.status, 200, "a rotated user's new secret: {}", resp.text());
}

/// Two users through a running server. A owns `a-bkt` with `obj` and an
/// upload in progress on `mp` (part 1 uploaded); B owns `b-bkt` with `bobj`
/// and an upload in progress on `mp`; root owns `root-bkt`.
struct TwoUsers {
    server: Server,
    a: Client,
    b: Client,
    a_upload: String,
    a_part_etag: String,
    b_upload: String,
    /// Last: the folder is removed after the server is stopped.
    _dir: tempfile::TempDir,
}

const A_BODY: &[u8] = b"A's object, not B's";

fn two_users() -> TwoUsers {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let a = client_as(&server, &add_user(dir.path(), "user-a"));
    let b = client_as(&server, &add_user(dir.path(), "user-b"));

    let puts: [(&Client, &str, &[u8]); 4] =
        [(&a, "/a-bkt", b""), (&a, "/a-bkt/obj", A_BODY), (&b, "/b-bkt", b""), (&b, "/b-bkt/bobj", b"B's object")];
    for (c, path, body) in puts {
        let resp = c.send(Req::new("PUT", path).body(body));
        assert_eq!(resp.status, 200, "PUT {path}: {}", resp.text());
    }
    let resp = server.client().send(Req::new("PUT", "/root-bkt"));
    assert_eq!(resp.status, 200, "root's CreateBucket: {}", resp.text());

    let create = |c: &Client, path: &str| {
        let resp = c.send(Req::new("POST", path).query("uploads"));
        assert_eq!(resp.status, 200, "CreateMultipartUpload {path}: {}", resp.text());
        resp.elements("UploadId").pop().expect("an upload id")
    };
    let a_upload = create(&a, "/a-bkt/mp");
    let b_upload = create(&b, "/b-bkt/mp");
    let q = format!("partNumber=1&uploadId={a_upload}");
    let resp = a.send(Req::new("PUT", "/a-bkt/mp").query(&q).body(b"A's part"));
    assert_eq!(resp.status, 200, "A's UploadPart: {}", resp.text());
    let a_part_etag = resp.header("etag").expect("part etag").to_string();
    TwoUsers { server, a, b, a_upload, a_part_etag, b_upload, _dir: dir }
}

fn tagging_body(key: &str, value: &str) -> Vec<u8> {
    format!("<Tagging><TagSet><Tag><Key>{key}</Key><Value>{value}</Value></Tag></TagSet></Tagging>").into_bytes()
}

/// Every bucket, object and multipart operation B can aim at A's bucket,
/// object or upload is 403 AccessDenied and changes nothing; A and root
/// still see everything as it was.
#[test]
fn a_user_can_do_nothing_to_another_users_bucket_objects_or_uploads() {
    let t = two_users();
    let (a, b) = (&t.a, &t.b);

    let versioning = b"<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
        <Status>Enabled</Status></VersioningConfiguration>";
    let lifecycle = b"<LifecycleConfiguration><Rule><ID>r</ID><Status>Enabled</Status>\
        <Filter><Prefix></Prefix></Filter><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>";
    let tags = tagging_body("owner", "b");
    let delete = b"<Delete><Object><Key>obj</Key></Object></Delete>";
    let policy =
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::a-bkt/*"}]}"#;
    let complete = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{}</ETag></Part></CompleteMultipartUpload>",
        t.a_part_etag
    );
    let a_part = format!("partNumber=1&uploadId={}", t.a_upload);
    let a_upload = format!("uploadId={}", t.a_upload);
    let b_part = format!("partNumber=1&uploadId={}", t.b_upload);

    let cases: Vec<(&str, Req)> = vec![
        ("HeadBucket", Req::new("HEAD", "/a-bkt")),
        ("ListObjects", Req::new("GET", "/a-bkt")),
        ("ListObjectsV2", Req::new("GET", "/a-bkt").query("list-type=2")),
        ("ListObjectVersions", Req::new("GET", "/a-bkt").query("versions")),
        ("GetBucketLocation", Req::new("GET", "/a-bkt").query("location")),
        ("GetBucketVersioning", Req::new("GET", "/a-bkt").query("versioning")),
        (
            "PutBucketVersioning",
            Req::new("PUT", "/a-bkt")
                .query("versioning")
                .header("content-md5", content_md5(versioning))
                .body(versioning),
        ),
        ("GetBucketAcl", Req::new("GET", "/a-bkt").query("acl")),
        ("GetBucketLifecycle", Req::new("GET", "/a-bkt").query("lifecycle")),
        (
            "PutBucketLifecycle",
            Req::new("PUT", "/a-bkt").query("lifecycle").header("content-md5", content_md5(lifecycle)).body(lifecycle),
        ),
        ("DeleteBucketLifecycle", Req::new("DELETE", "/a-bkt").query("lifecycle")),
        ("GetBucketTagging", Req::new("GET", "/a-bkt").query("tagging")),
        ("PutBucketTagging", Req::new("PUT", "/a-bkt").query("tagging").body(&tags)),
        ("DeleteBucketTagging", Req::new("DELETE", "/a-bkt").query("tagging")),
        ("ListMultipartUploads", Req::new("GET", "/a-bkt").query("uploads")),
        ("DeleteBucket", Req::new("DELETE", "/a-bkt")),
        ("PutObject over A's object", Req::new("PUT", "/a-bkt/obj").body(b"B was here")),
        ("PutObject of a new key", Req::new("PUT", "/a-bkt/new").body(b"B was here")),
        ("GetObject", Req::new("GET", "/a-bkt/obj")),
        ("GetObject with a range", Req::new("GET", "/a-bkt/obj").header("range", "bytes=0-3")),
        ("HeadObject", Req::new("HEAD", "/a-bkt/obj")),
        ("DeleteObject", Req::new("DELETE", "/a-bkt/obj")),
        (
            "DeleteObjects",
            Req::new("POST", "/a-bkt").query("delete").header("content-md5", content_md5(delete)).body(delete),
        ),
        (
            "GetObjectAttributes",
            Req::new("GET", "/a-bkt/obj").query("attributes").header("x-amz-object-attributes", "ETag"),
        ),
        ("GetObjectAcl", Req::new("GET", "/a-bkt/obj").query("acl")),
        ("PutObjectAcl", Req::new("PUT", "/a-bkt/obj").query("acl").header("x-amz-acl", "public-read")),
        ("PutBucketAcl", Req::new("PUT", "/a-bkt").query("acl").header("x-amz-acl", "public-read-write")),
        ("GetBucketPolicy", Req::new("GET", "/a-bkt").query("policy")),
        ("PutBucketPolicy", Req::new("PUT", "/a-bkt").query("policy").body(policy.as_bytes())),
        ("DeleteBucketPolicy", Req::new("DELETE", "/a-bkt").query("policy")),
        ("GetObjectTagging", Req::new("GET", "/a-bkt/obj").query("tagging")),
        ("PutObjectTagging", Req::new("PUT", "/a-bkt/obj").query("tagging").body(&tags)),
        ("DeleteObjectTagging", Req::new("DELETE", "/a-bkt/obj").query("tagging")),
        ("CreateMultipartUpload", Req::new("POST", "/a-bkt/new").query("uploads")),
        ("UploadPart to A's upload", Req::new("PUT", "/a-bkt/mp").query(&a_part).body(b"B's part")),
        ("ListParts of A's upload", Req::new("GET", "/a-bkt/mp").query(&a_upload)),
        ("AbortMultipartUpload of A's upload", Req::new("DELETE", "/a-bkt/mp").query(&a_upload)),
        (
            "CompleteMultipartUpload of A's upload",
            Req::new("POST", "/a-bkt/mp").query(&a_upload).body(complete.as_bytes()),
        ),
        (
            "CopyObject from A's bucket into B's",
            Req::new("PUT", "/b-bkt/copy").header("x-amz-copy-source", "/a-bkt/obj"),
        ),
        (
            "CopyObject from B's bucket into A's",
            Req::new("PUT", "/a-bkt/copy").header("x-amz-copy-source", "/b-bkt/bobj"),
        ),
        (
            "UploadPartCopy from A's bucket into B's upload",
            Req::new("PUT", "/b-bkt/mp").query(&b_part).header("x-amz-copy-source", "/a-bkt/obj"),
        ),
    ];
    let mut wrong = Vec::new();
    for (what, req) in cases {
        let head = req.method == "HEAD";
        let resp = b.send(req);
        // A HEAD answer has no body, so no code to read.
        let ok = resp.status == 403 && (head || resp.error_code().as_deref() == Some("AccessDenied"));
        if !ok {
            wrong.push(format!("{what}: {} {}", resp.status, code(&resp)));
        }
    }
    assert!(wrong.is_empty(), "as B on A's things, not 403 AccessDenied:\n{}", wrong.join("\n"));

    // A's bucket, object and upload are as they were.
    let resp = a.send(Req::new("GET", "/a-bkt/obj"));
    assert_eq!((resp.status, resp.body.as_slice()), (200, A_BODY), "A's object: {}", resp.text());
    let resp = a.send(Req::new("GET", "/a-bkt").query("list-type=2"));
    assert_eq!(resp.elements("Key"), ["obj"], "A's keys: {}", resp.text());
    let resp = a.send(Req::new("GET", "/a-bkt").query("uploads"));
    assert_eq!(resp.elements("UploadId"), std::slice::from_ref(&t.a_upload), "A's uploads: {}", resp.text());
    let resp = a.send(Req::new("GET", "/a-bkt/mp").query(&a_upload));
    assert_eq!(resp.status, 200, "A's ListParts: {}", resp.text());
    assert_eq!(resp.elements("PartNumber"), ["1"], "{}", resp.text());
    assert_eq!(resp.elements("ETag"), [t.a_part_etag.replace('"', "&quot;")], "A's part: {}", resp.text());
    let resp = a.send(Req::new("GET", "/a-bkt/obj").query("tagging"));
    assert_eq!((resp.status, resp.elements("Tag").len()), (200, 0), "A's object tags: {}", resp.text());
    let resp = a.send(Req::new("GET", "/a-bkt").query("tagging"));
    assert_eq!((resp.status, code(&resp)), (404, "NoSuchTagSet".into()), "A's bucket tags");
    let resp = a.send(Req::new("GET", "/a-bkt").query("lifecycle"));
    assert_eq!((resp.status, code(&resp)), (404, "NoSuchLifecycleConfiguration".into()), "A's lifecycle");
    let resp = a.send(Req::new("GET", "/a-bkt").query("versioning"));
    assert!(resp.status == 200 && resp.elements("Status").is_empty(), "A's versioning: {}", resp.text());
    let resp = a.send(Req::new("GET", "/a-bkt").query("policy"));
    assert_eq!((resp.status, code(&resp)), (404, "NoSuchBucketPolicy".into()), "A's policy");
    for acl_of in ["/a-bkt", "/a-bkt/obj"] {
        let resp = a.send(Req::new("GET", acl_of).query("acl"));
        assert_eq!((resp.status, resp.elements("Permission")), (200, vec!["FULL_CONTROL".to_string()]), "{acl_of}");
    }

    // Nothing was copied into B's bucket or upload either.
    assert_eq!(b.send(Req::new("HEAD", "/b-bkt/copy")).status, 404, "B copied A's object");
    let resp = b.send(Req::new("GET", "/b-bkt/mp").query(&format!("uploadId={}", t.b_upload)));
    assert_eq!(resp.status, 200, "B's ListParts: {}", resp.text());
    assert!(resp.elements("PartNumber").is_empty(), "B copied a part from A's object: {}", resp.text());

    // Root can read A's bucket.
    let root = t.server.client();
    let resp = root.send(Req::new("GET", "/a-bkt/obj"));
    assert_eq!((resp.status, resp.body.as_slice()), (200, A_BODY), "root reads A's object: {}", resp.text());
    let resp = root.send(Req::new("GET", "/a-bkt").query("list-type=2"));
    assert_eq!((resp.status, resp.elements("Key")), (200, vec!["obj".to_string()]), "root lists a-bkt");
}

#[test]
fn list_buckets_shows_a_user_only_their_own() {
    let t = two_users();
    let names = |c: &Client| {
        let resp = c.send(Req::new("GET", "/"));
        assert_eq!(resp.status, 200, "ListBuckets: {}", resp.text());
        resp.elements("Name")
    };
    assert_eq!(names(&t.a), ["a-bkt"]);
    assert_eq!(names(&t.b), ["b-bkt"]);
    assert!(names(&t.server.client()).contains(&"root-bkt".to_string()), "root lists its own bucket");
}

#[test]
fn presigned_urls_carry_their_signers_rights_only() {
    let t = two_users();
    let by_b = t.b.presigned_target("GET", "/a-bkt/obj", "");
    let resp = t.b.send_raw("GET", &by_b, &[], b"");
    assert_eq!((resp.status, code(&resp)), (403, "AccessDenied".into()), "B's presigned GET of A's object");
    let by_b = t.b.presigned_target("PUT", "/a-bkt/obj", "");
    let resp = t.b.send_raw("PUT", &by_b, &[], b"B was here");
    assert_eq!((resp.status, code(&resp)), (403, "AccessDenied".into()), "B's presigned PUT to A's object");

    let by_a = t.a.presigned_target("GET", "/a-bkt/obj", "");
    let resp = t.a.send_raw("GET", &by_a, &[], b"");
    assert_eq!((resp.status, resp.body.as_slice()), (200, A_BODY), "A's presigned GET: {}", resp.text());
}

#[test]
fn another_users_bucket_name_is_taken_and_a_missing_bucket_is_404_for_everyone() {
    let t = two_users();
    let resp = t.b.send(Req::new("PUT", "/a-bkt"));
    assert_eq!((resp.status, code(&resp)), (409, "BucketAlreadyExists".into()), "B creating A's bucket");
    let resp = t.a.send(Req::new("PUT", "/a-bkt"));
    assert_eq!(resp.status, 200, "A creating its own bucket again (us-east-1): {}", resp.text());
    assert_eq!(t.a.send(Req::new("GET", "/a-bkt/obj")).body, A_BODY, "recreating kept the object");

    for c in [&t.b, &t.a, &t.server.client()] {
        let resp = c.send(Req::new("GET", "/no-such-bkt"));
        assert_eq!((resp.status, code(&resp)), (404, "NoSuchBucket".into()), "{}: ListObjects", c.access_key);
        let resp = c.send(Req::new("GET", "/no-such-bkt/obj"));
        assert_eq!((resp.status, code(&resp)), (404, "NoSuchBucket".into()), "{}: GetObject", c.access_key);
        assert_eq!(c.send(Req::new("HEAD", "/no-such-bkt")).status, 404, "{}: HeadBucket", c.access_key);
    }
}

#[test]
fn an_unknown_access_key_is_invalid_access_key_id() {
    let t = two_users();
    let mut stranger = t.server.client();
    stranger.access_key = "AKIANOSUCHUSER000000".into();
    stranger.secret_key = "no/such/secret/000000000000000000000000000".into();
    for path in ["/", "/a-bkt", "/a-bkt/obj", "/no-such-bkt"] {
        let resp = stranger.send(Req::new("GET", path));
        assert_eq!((resp.status, code(&resp)), (403, "InvalidAccessKeyId".into()), "GET {path}");
    }
    let url = stranger.presigned_target("GET", "/a-bkt/obj", "");
    let resp = stranger.send_raw("GET", &url, &[], b"");
    assert_eq!((resp.status, code(&resp)), (403, "InvalidAccessKeyId".into()), "presigned GET");
}
