//! Access control against the real binary, as S3 documents it: canned ACLs,
//! `x-amz-grant-*` headers and `AccessControlPolicy` documents on buckets and
//! objects, object ownership (the writer owns what it writes), bucket
//! policies (Allow, Deny, `"*"`, users), multipart uploads, copies,
//! presigned URLs, and anonymous (unsigned) requests.
//!
//! Every test starts its own server on a folder where three users were
//! added before it started: alice, bob (with an e-mail address, for grants
//! by e-mail) and carol. Root is the server's own key pair; anonymous
//! requests carry no `Authorization` header and no presigned parameters.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

mod common;

use std::path::Path;
use std::process::Command;

use base64::Engine;
use common::{pattern, Client, Req, Response, Server, ACCESS_KEY, SECRET_KEY};
use md5::{Digest, Md5};
use serde_json::Value;

/// The canonical id S3 gives the anonymous requester.
const ANONYMOUS_ID: &str = "65a011a29cdf8ec533ec3d1ccaae921c";
const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
const BOB_EMAIL: &str = "bob@example.com";

// ---------------------------------------------------------------------------
// Setup: a server, three users, root and an anonymous client.
// ---------------------------------------------------------------------------

/// A user as `tessera user add --json` prints it.
struct User {
    access_key: String,
    secret_key: String,
    id: String,
}

/// `tessera user add NAME [--email E] --json` on a stopped server's folder.
fn add_user(data: &Path, name: &str, email: Option<&str>) -> User {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.args(["user", "add", name, "--json", "--data"]).arg(data).args(common::suite_meta_args(data));
    if let Some(email) = email {
        cmd.args(["--email", email]);
    }
    let out = cmd
        .env("TESSERA_ACCESS_KEY", ACCESS_KEY)
        .env("TESSERA_SECRET_KEY", SECRET_KEY)
        .env("TESSERA_LOG", "warn")
        .output()
        .expect("run tessera user add");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "user add {name}: {stdout} {}", String::from_utf8_lossy(&out.stderr));
    let json: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("user add {name} --json ({e}): {stdout}"));
    let field = |f: &str| json[f].as_str().unwrap_or_else(|| panic!("no {f} in {json}")).to_string();
    User { access_key: field("access_key_id"), secret_key: field("secret_access_key"), id: field("canonical_id") }
}

struct World {
    /// Stopped when the world is dropped.
    _server: Server,
    root: Client,
    alice: Client,
    bob: Client,
    carol: Client,
    /// Sends unsigned requests only (through `send_raw`, which adds no
    /// `Authorization` header); its keys are blanked so it cannot sign.
    anonymous: Client,
    alice_id: String,
    bob_id: String,
    carol_id: String,
    /// Last: the folder is removed after the server is stopped.
    _dir: tempfile::TempDir,
}

fn world() -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let alice = add_user(dir.path(), "alice", None);
    let bob = add_user(dir.path(), "bob", Some(BOB_EMAIL));
    let carol = add_user(dir.path(), "carol", None);
    let server = Server::start(dir.path());
    let client_as = |user: &User| {
        let mut c = server.client();
        c.access_key = user.access_key.clone();
        c.secret_key = user.secret_key.clone();
        c
    };
    let (alice_c, bob_c, carol_c) = (client_as(&alice), client_as(&bob), client_as(&carol));
    let mut anonymous = server.client();
    anonymous.access_key.clear();
    anonymous.secret_key.clear();
    World {
        root: server.client(),
        alice: alice_c,
        bob: bob_c,
        carol: carol_c,
        anonymous,
        alice_id: alice.id,
        bob_id: bob.id,
        carol_id: carol.id,
        _server: server,
        _dir: dir,
    }
}

impl World {
    /// An unsigned request: exactly `headers`, plus host, length and close.
    fn anon(&self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        assert!(
            !target.contains("X-Amz-Signature")
                && !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("authorization")),
            "an anonymous request carries no signature: {target} {headers:?}"
        );
        self.anonymous.send_raw(method, target, headers, body)
    }

    /// CreateBucket by `owner` with `headers` (an ACL), which must succeed.
    fn create_bucket(&self, owner: &Client, bucket: &str, headers: &[(&str, &str)]) {
        let path = format!("/{bucket}");
        let resp = call(owner, "PUT", &path, "", headers, b"");
        ok(&resp, &format!("CreateBucket {bucket} {headers:?}"));
    }

    /// PutObject by `c` with `headers`, which must succeed.
    fn put(&self, c: &Client, path: &str, body: &[u8], headers: &[(&str, &str)]) {
        let resp = call(c, "PUT", path, "", headers, body);
        ok(&resp, &format!("PutObject {path} {headers:?}"));
    }
}

/// A signed request by `c`.
fn call(c: &Client, method: &str, path: &str, query: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut req = Req::new(method, path).query(query).body(body);
    for (name, value) in headers {
        req = req.header(name, *value);
    }
    c.send(req)
}

fn get(c: &Client, path: &str) -> Response {
    c.send(Req::new("GET", path))
}

/// `id="<canonical id>"`, as a grant header names a user.
fn id_grant(id: &str) -> String {
    format!("id=\"{id}\"")
}

// ---------------------------------------------------------------------------
// Assertions: status, S3 error code, bytes.
// ---------------------------------------------------------------------------

fn code(resp: &Response) -> String {
    resp.error_code().unwrap_or_else(|| format!("<no code, status {}>", resp.status))
}

#[track_caller]
fn ok(resp: &Response, what: &str) {
    assert!((200..300).contains(&resp.status), "{what}: {} {}", resp.status, resp.text());
}

#[track_caller]
fn status(resp: &Response, want: u16, what: &str) {
    assert_eq!(resp.status, want, "{what}: {}", resp.text());
}

/// An S3 error: status and `<Code>`.
#[track_caller]
fn error(resp: &Response, want: u16, want_code: &str, what: &str) {
    assert_eq!((resp.status, code(resp).as_str()), (want, want_code), "{what}: {}", resp.text());
}

#[track_caller]
fn denied(resp: &Response, what: &str) {
    error(resp, 403, "AccessDenied", what);
}

/// A 200 whose body is exactly `want`.
#[track_caller]
fn bytes(resp: &Response, want: &[u8], what: &str) {
    assert_eq!(resp.status, 200, "{what}: {}", resp.text());
    assert!(resp.body == want, "{what}: {} bytes, not the {} put", resp.body.len(), want.len());
}

/// The text of the first `<name>` element of `text`.
fn between(text: &str, name: &str) -> Option<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    text.split_once(&open)?.1.split_once(&close).map(|(inner, _)| inner.to_string())
}

/// The blocks `<name>…</name>` of `text` (elements with no attributes).
fn blocks(text: &str, name: &str) -> Vec<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    text.split(&open).skip(1).filter_map(|s| s.split_once(&close).map(|(inner, _)| inner.to_string())).collect()
}

/// An `AccessControlPolicy` answer: the owner and the grants.
#[derive(Debug)]
struct Acl {
    owner: String,
    owner_name: String,
    /// (canonical id or group URI, permission), sorted.
    grants: Vec<(String, String)>,
    /// (canonical id, display name) of each user grantee.
    names: Vec<(String, String)>,
}

#[track_caller]
fn acl_of(resp: &Response, what: &str) -> Acl {
    assert_eq!(resp.status, 200, "{what}: {}", resp.text());
    let text = resp.text();
    assert!(text.contains("<AccessControlPolicy"), "{what}: not an AccessControlPolicy: {text}");
    let owner = between(&text, "Owner").unwrap_or_else(|| panic!("{what}: no Owner: {text}"));
    let mut grants = Vec::new();
    let mut names = Vec::new();
    for grant in blocks(&text, "Grant") {
        let permission = between(&grant, "Permission").unwrap_or_default();
        match (between(&grant, "ID"), between(&grant, "URI")) {
            (Some(id), None) => {
                names.push((id.clone(), between(&grant, "DisplayName").unwrap_or_default()));
                grants.push((id, permission));
            }
            (None, Some(uri)) => grants.push((uri, permission)),
            _ => panic!("{what}: a grant with neither ID nor URI, or both: {grant}"),
        }
    }
    grants.sort();
    Acl {
        owner: between(&owner, "ID").unwrap_or_default(),
        owner_name: between(&owner, "DisplayName").unwrap_or_default(),
        grants,
        names,
    }
}

/// Expected grants, sorted as [`Acl::grants`].
fn grants(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = list.iter().map(|(w, p)| (w.to_string(), p.to_string())).collect();
    v.sort();
    v
}

/// An `AccessControlPolicy` document; a grantee is a group URI
/// (`http://…`), an e-mail address (with `@`) or a canonical id.
fn acl_doc(owner: &str, list: &[(&str, &str)]) -> String {
    const XSI: &str = "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"";
    let mut body = String::new();
    for (who, permission) in list {
        let grantee = if who.starts_with("http://") {
            format!("<Grantee {XSI} xsi:type=\"Group\"><URI>{who}</URI></Grantee>")
        } else if who.contains('@') {
            format!("<Grantee {XSI} xsi:type=\"AmazonCustomerByEmail\"><EmailAddress>{who}</EmailAddress></Grantee>")
        } else {
            format!("<Grantee {XSI} xsi:type=\"CanonicalUser\"><ID>{who}</ID></Grantee>")
        };
        body.push_str(&format!("<Grant>{grantee}<Permission>{permission}</Permission></Grant>"));
    }
    format!(
        "<AccessControlPolicy xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Owner><ID>{owner}</ID></Owner>\
         <AccessControlList>{body}</AccessControlList></AccessControlPolicy>"
    )
}

/// (key, owner id) of each `<Contents>` of a listing.
fn listed_owners(resp: &Response) -> Vec<(String, String)> {
    assert_eq!(resp.status, 200, "listing: {}", resp.text());
    blocks(&resp.text(), "Contents")
        .iter()
        .map(|c| {
            let owner = between(c, "Owner").unwrap_or_default();
            (between(c, "Key").unwrap_or_default(), between(&owner, "ID").unwrap_or_default())
        })
        .collect()
}

fn listed_keys(c: &Client, bucket: &str) -> Vec<String> {
    let resp = c.send(Req::new("GET", &format!("/{bucket}")).query("list-type=2"));
    assert_eq!(resp.status, 200, "ListObjectsV2 {bucket}: {}", resp.text());
    resp.elements("Key")
}

fn content_md5(body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(body))
}

fn tagging_body(key: &str, value: &str) -> Vec<u8> {
    format!("<Tagging><TagSet><Tag><Key>{key}</Key><Value>{value}</Value></Tag></TagSet></Tagging>").into_bytes()
}

/// CreateMultipartUpload by `c`; the upload id.
fn start_upload(c: &Client, path: &str, headers: &[(&str, &str)]) -> String {
    let resp = call(c, "POST", path, "uploads", headers, b"");
    assert_eq!(resp.status, 200, "CreateMultipartUpload {path}: {}", resp.text());
    resp.elements("UploadId").pop().expect("an upload id")
}

fn complete_body(etags: &[&str]) -> String {
    let parts: String = etags
        .iter()
        .enumerate()
        .map(|(i, etag)| format!("<Part><PartNumber>{}</PartNumber><ETag>{etag}</ETag></Part>", i + 1))
        .collect();
    format!("<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>")
}

// ---------------------------------------------------------------------------
// 1. Canned ACLs on CreateBucket; what anonymous may do at bucket level.
// ---------------------------------------------------------------------------

#[test]
fn canned_bucket_acls_decide_anonymous_listing_and_anonymous_is_refused_account_operations() {
    let w = world();
    w.create_bucket(&w.alice, "pub-bkt", &[("x-amz-acl", "public-read")]);
    w.create_bucket(&w.alice, "priv-bkt", &[]);
    w.create_bucket(&w.alice, "auth-bkt", &[("x-amz-acl", "authenticated-read")]);
    for bucket in ["pub-bkt", "priv-bkt", "auth-bkt"] {
        w.put(&w.alice, &format!("/{bucket}/k"), b"alice's", &[]);
    }

    let resp = w.anon("GET", "/pub-bkt?list-type=2", &[], b"");
    assert_eq!((resp.status, resp.elements("Key")), (200, vec!["k".to_string()]), "anonymous lists public-read");
    status(&w.anon("HEAD", "/pub-bkt", &[], b""), 200, "anonymous HeadBucket of public-read");
    status(&w.anon("GET", "/pub-bkt", &[], b""), 200, "anonymous ListObjects (v1) of public-read");
    denied(&w.anon("GET", "/priv-bkt?list-type=2", &[], b""), "anonymous lists a private bucket");
    denied(&w.anon("GET", "/priv-bkt", &[], b""), "anonymous ListObjects (v1) of a private bucket");
    status(&w.anon("HEAD", "/priv-bkt", &[], b""), 403, "anonymous HeadBucket of a private bucket");
    error(&w.anon("GET", "/no-such-bkt?list-type=2", &[], b""), 404, "NoSuchBucket", "anonymous, missing bucket");
    error(&w.anon("GET", "/no-such-bkt/k", &[], b""), 404, "NoSuchBucket", "anonymous GET in a missing bucket");

    // authenticated-read: any signed user lists, anonymous does not.
    assert_eq!(listed_keys(&w.bob, "auth-bkt"), ["k"], "bob lists authenticated-read");
    denied(&w.anon("GET", "/auth-bkt?list-type=2", &[], b""), "anonymous lists authenticated-read");
    denied(&call(&w.bob, "GET", "/priv-bkt", "list-type=2", &[], b""), "bob lists alice's private bucket");

    // public-read lists; it does not let anyone write, nor see or change the ACL.
    denied(&w.anon("PUT", "/pub-bkt/new", &[], b"anonymous"), "anonymous PUT into public-read");
    denied(&call(&w.bob, "PUT", "/pub-bkt/new", "", &[], b"bob"), "bob PUT into public-read");
    denied(&w.anon("GET", "/pub-bkt?acl", &[], b""), "anonymous GetBucketAcl of public-read");
    denied(&w.anon("PUT", "/pub-bkt?acl", &[("x-amz-acl", "public-read-write")], b""), "anonymous PutBucketAcl");
    denied(&w.anon("GET", "/pub-bkt?policy", &[], b""), "anonymous GetBucketPolicy");
    denied(&w.anon("GET", "/pub-bkt?versioning", &[], b""), "anonymous GetBucketVersioning");
    denied(&w.anon("DELETE", "/pub-bkt", &[], b""), "anonymous DeleteBucket");
    assert_eq!(listed_keys(&w.alice, "pub-bkt"), ["k"], "nothing was written into pub-bkt");

    // GetBucketAcl shows what the canned ACLs stand for.
    let acl = acl_of(&call(&w.alice, "GET", "/pub-bkt", "acl", &[], b""), "GetBucketAcl public-read");
    assert_eq!((acl.owner.as_str(), acl.owner_name.as_str()), (w.alice_id.as_str(), "alice"), "{acl:?}");
    assert_eq!(acl.grants, grants(&[(&w.alice_id, "FULL_CONTROL"), (ALL_USERS, "READ")]), "public-read");
    let acl = acl_of(&call(&w.alice, "GET", "/priv-bkt", "acl", &[], b""), "GetBucketAcl private");
    assert_eq!(acl.grants, grants(&[(&w.alice_id, "FULL_CONTROL")]), "private");
    let acl = acl_of(&call(&w.alice, "GET", "/auth-bkt", "acl", &[], b""), "GetBucketAcl authenticated-read");
    assert_eq!(acl.grants, grants(&[(&w.alice_id, "FULL_CONTROL"), (AUTHENTICATED_USERS, "READ")]));
    let resp = call(&w.alice, "PUT", "/bad-acl-bkt", "", &[("x-amz-acl", "world-writable")], b"");
    error(&resp, 400, "InvalidArgument", "CreateBucket with an unknown canned ACL");
    status(&call(&w.alice, "HEAD", "/bad-acl-bkt", "", &[], b""), 404, "not created");

    // No account-level operation is anonymous.
    denied(&w.anon("GET", "/", &[], b""), "anonymous ListBuckets");
    denied(&w.anon("PUT", "/anon-bkt", &[], b""), "anonymous CreateBucket");
    denied(&w.anon("PUT", "/anon-bkt", &[("x-amz-acl", "public-read-write")], b""), "anonymous CreateBucket (ACL)");
    status(&call(&w.root, "HEAD", "/anon-bkt", "", &[], b""), 404, "the anonymous CreateBucket created nothing");
    denied(&w.anon("GET", "/_tessera/admin/users", &[], b""), "anonymous admin API: list users");
    denied(&w.anon("POST", "/_tessera/admin/users?name=mallory", &[], b""), "anonymous admin API: add a user");
    denied(&w.anon("POST", "/_tessera/admin/backup?out=/tmp/x", &[], b""), "anonymous admin API: backup");
    denied(&call(&w.alice, "GET", "/_tessera/admin/users", "", &[], b""), "a user's admin API request");
    let users = call(&w.root, "GET", "/_tessera/admin/users", "", &[], b"");
    assert_eq!(users.status, 200, "root lists users: {}", users.text());
    assert!(users.text().contains("carol") && !users.text().contains("mallory"), "users: {}", users.text());

    // A signed user's ListBuckets shows their own buckets only.
    let resp = get(&w.alice, "/");
    assert_eq!(
        (resp.status, resp.elements("Name")),
        (200, vec!["auth-bkt".into(), "priv-bkt".into(), "pub-bkt".into()])
    );
    let resp = get(&w.bob, "/");
    assert_eq!((resp.status, resp.elements("Name")), (200, Vec::<String>::new()), "bob owns no bucket");
}

// ---------------------------------------------------------------------------
// 2. Object ACLs on PutObject; missing keys reveal nothing without READ.
// ---------------------------------------------------------------------------

#[test]
fn public_read_objects_are_served_to_anonymous_and_missing_keys_leak_only_where_listing_is_allowed() {
    let w = world();
    w.create_bucket(&w.alice, "priv-bkt", &[]);
    w.create_bucket(&w.alice, "pub-bkt", &[("x-amz-acl", "public-read")]);
    let body = pattern(70_000, 7); // larger than an inline body: served from a file
    w.put(&w.alice, "/priv-bkt/public.bin", &body, &[("x-amz-acl", "public-read")]);
    w.put(&w.alice, "/priv-bkt/small.txt", b"small and public", &[("x-amz-acl", "public-read")]);
    w.put(&w.alice, "/pub-bkt/private.txt", b"alice only", &[]);

    bytes(&w.anon("GET", "/priv-bkt/public.bin", &[], b""), &body, "anonymous GET of a public-read object");
    bytes(&w.anon("GET", "/priv-bkt/small.txt", &[], b""), b"small and public", "anonymous GET, inline body");
    let resp = w.anon("GET", "/priv-bkt/public.bin", &[("range", "bytes=10-19")], b"");
    assert_eq!((resp.status, resp.body.as_slice()), (206, &body[10..20]), "anonymous ranged GET");
    let head = w.anon("HEAD", "/priv-bkt/public.bin", &[], b"");
    status(&head, 200, "anonymous HEAD of a public-read object");
    assert_eq!(head.header("content-length"), Some("70000"), "HEAD's length");
    bytes(&get(&w.carol, "/priv-bkt/public.bin"), &body, "another user reads a public-read object");

    // A private object in a public-read bucket: listing is not reading.
    denied(&w.anon("GET", "/pub-bkt/private.txt", &[], b""), "anonymous GET of a private object");
    status(&w.anon("HEAD", "/pub-bkt/private.txt", &[], b""), 403, "anonymous HEAD of a private object");
    denied(&get(&w.bob, "/pub-bkt/private.txt"), "bob GET of a private object in a public-read bucket");
    let resp = w.anon("GET", "/pub-bkt/private.txt?attributes", &[("x-amz-object-attributes", "ETag")], b"");
    denied(&resp, "anonymous GetObjectAttributes of a private object");
    denied(&w.anon("GET", "/pub-bkt/private.txt?tagging", &[], b""), "anonymous GetObjectTagging, private object");
    denied(&w.anon("GET", "/priv-bkt/public.bin?acl", &[], b""), "public-read gives READ, not READ_ACP");

    // Missing keys: NoSuchKey for who may list, AccessDenied for who may not.
    error(&w.anon("GET", "/pub-bkt/missing", &[], b""), 404, "NoSuchKey", "anonymous, missing key, public-read");
    status(&w.anon("HEAD", "/pub-bkt/missing", &[], b""), 404, "anonymous HEAD, missing key, public-read");
    denied(&w.anon("GET", "/priv-bkt/missing", &[], b""), "anonymous, missing key, private bucket");
    status(&w.anon("HEAD", "/priv-bkt/missing", &[], b""), 403, "anonymous HEAD, missing key, private bucket");
    denied(&get(&w.bob, "/priv-bkt/missing"), "bob, missing key in alice's private bucket");
    denied(&w.anon("GET", "/priv-bkt/missing?acl", &[], b""), "anonymous GetObjectAcl of a missing key");
    denied(&w.anon("GET", "/priv-bkt/missing?tagging", &[], b""), "anonymous GetObjectTagging of a missing key");
    error(&get(&w.alice, "/priv-bkt/missing"), 404, "NoSuchKey", "the owner, missing key");

    // Reading is not writing or deleting.
    denied(&w.anon("PUT", "/priv-bkt/public.bin", &[], b"overwritten"), "anonymous overwrite of a public object");
    denied(&w.anon("DELETE", "/priv-bkt/public.bin", &[], b""), "anonymous DELETE of a public object");
    denied(&call(&w.bob, "DELETE", "/priv-bkt/public.bin", "", &[], b""), "bob DELETE of a public object");
    let resp = w.anon("PUT", "/priv-bkt/public.bin?acl", &[("x-amz-acl", "public-read-write")], b"");
    denied(&resp, "anonymous PutObjectAcl of a public-read object");
    bytes(&get(&w.alice, "/priv-bkt/public.bin"), &body, "the public object is unchanged");
    let acl = acl_of(&call(&w.alice, "GET", "/priv-bkt/public.bin", "acl", &[], b""), "GetObjectAcl");
    assert_eq!(acl.owner, w.alice_id);
    assert_eq!(acl.grants, grants(&[(&w.alice_id, "FULL_CONTROL"), (ALL_USERS, "READ")]), "public-read object");
}

// ---------------------------------------------------------------------------
// 3. authenticated-read objects; public-read-write and object ownership.
// ---------------------------------------------------------------------------

#[test]
fn authenticated_read_objects_and_objects_written_anonymously_into_a_public_read_write_bucket() {
    let w = world();
    w.create_bucket(&w.alice, "shared", &[]);
    w.put(&w.alice, "/shared/auth.txt", b"for signed users", &[("x-amz-acl", "authenticated-read")]);
    bytes(&get(&w.bob, "/shared/auth.txt"), b"for signed users", "bob reads authenticated-read");
    bytes(&get(&w.carol, "/shared/auth.txt"), b"for signed users", "carol reads authenticated-read");
    denied(&w.anon("GET", "/shared/auth.txt", &[], b""), "anonymous GET of authenticated-read");
    status(&w.anon("HEAD", "/shared/auth.txt", &[], b""), 403, "anonymous HEAD of authenticated-read");
    denied(&call(&w.bob, "GET", "/shared/auth.txt", "acl", &[], b""), "authenticated-read gives no READ_ACP");

    w.create_bucket(&w.alice, "open", &[("x-amz-acl", "public-read-write")]);
    let resp = w.anon("PUT", "/open/anon.txt", &[], b"written by nobody");
    status(&resp, 200, "anonymous PUT into public-read-write");
    let resp = w.anon("PUT", "/open/anon-bofc.txt", &[("x-amz-acl", "bucket-owner-full-control")], b"given");
    status(&resp, 200, "anonymous PUT into public-read-write with bucket-owner-full-control");
    assert_eq!(
        w.anon("GET", "/open?list-type=2", &[], b"").elements("Key"),
        ["anon-bofc.txt", "anon.txt"],
        "public-read-write lists for anonymous"
    );

    // The anonymous writer owns it.
    let owners = listed_owners(&call(&w.alice, "GET", "/open", "list-type=2&fetch-owner=true", &[], b""));
    assert_eq!(
        owners,
        [("anon-bofc.txt".to_string(), ANONYMOUS_ID.to_string()), ("anon.txt".to_string(), ANONYMOUS_ID.to_string())],
        "ListObjectsV2 fetch-owner"
    );
    let acl = acl_of(&call(&w.root, "GET", "/open/anon.txt", "acl", &[], b""), "root's GetObjectAcl");
    assert_eq!(acl.owner, ANONYMOUS_ID, "{acl:?}");
    assert_eq!(acl.grants, grants(&[(ANONYMOUS_ID, "FULL_CONTROL")]), "{acl:?}");
    let acl = acl_of(&call(&w.root, "GET", "/open/anon-bofc.txt", "acl", &[], b""), "root's GetObjectAcl");
    assert_eq!(acl.grants, grants(&[(ANONYMOUS_ID, "FULL_CONTROL"), (&w.alice_id, "FULL_CONTROL")]), "{acl:?}");

    // Classic object ownership: the bucket's owner cannot read what another
    // wrote without a grant, but may delete it.
    denied(&get(&w.alice, "/open/anon.txt"), "alice GET of the anonymous object");
    status(&call(&w.alice, "HEAD", "/open/anon.txt", "", &[], b""), 403, "alice HEAD of the anonymous object");
    denied(&call(&w.alice, "GET", "/open/anon.txt", "acl", &[], b""), "alice GetObjectAcl of the anonymous object");
    let resp = call(&w.alice, "PUT", "/open/anon.txt", "acl", &[("x-amz-acl", "public-read")], b"");
    denied(&resp, "alice PutObjectAcl of the anonymous object");
    bytes(&get(&w.alice, "/open/anon-bofc.txt"), b"given", "bucket-owner-full-control lets alice read");
    bytes(&get(&w.root, "/open/anon.txt"), b"written by nobody", "root reads the anonymous object");
    status(&call(&w.alice, "DELETE", "/open/anon.txt", "", &[], b""), 204, "alice deletes the anonymous object");
    error(&get(&w.alice, "/open/anon.txt"), 404, "NoSuchKey", "deleted");

    // public-read-write lets anonymous delete too (WRITE on the bucket).
    status(&w.anon("DELETE", "/open/anon-bofc.txt", &[], b""), 204, "anonymous DELETE in public-read-write");
    assert_eq!(listed_keys(&w.alice, "open"), Vec::<String>::new(), "all gone");
}

// ---------------------------------------------------------------------------
// 4. Grant headers (id, emailAddress) and their errors.
// ---------------------------------------------------------------------------

#[test]
fn grant_headers_give_users_write_and_bucket_owner_read_gives_the_bucket_owner_read() {
    let w = world();
    w.create_bucket(&w.alice, "grants", &[]);
    let bob_grant = id_grant(&w.bob_id);
    let resp = call(&w.alice, "PUT", "/grants", "acl", &[("x-amz-grant-write", &bob_grant)], b"");
    status(&resp, 200, "PutBucketAcl x-amz-grant-write");
    let acl = acl_of(&call(&w.alice, "GET", "/grants", "acl", &[], b""), "GetBucketAcl");
    assert_eq!(acl.grants, grants(&[(&w.bob_id, "WRITE")]), "exactly the grants the headers name: {acl:?}");
    assert_eq!(acl.names, [(w.bob_id.clone(), "bob".to_string())]);

    w.put(&w.bob, "/grants/bor.txt", b"bob, readable by alice", &[("x-amz-acl", "bucket-owner-read")]);
    w.put(&w.bob, "/grants/plain.txt", b"bob only", &[]);
    bytes(&get(&w.alice, "/grants/bor.txt"), b"bob, readable by alice", "bucket-owner-read: alice reads");
    denied(&get(&w.alice, "/grants/plain.txt"), "no bucket-owner-read: alice may not read bob's object");
    bytes(&get(&w.bob, "/grants/plain.txt"), b"bob only", "bob reads his own object");
    denied(&get(&w.carol, "/grants/bor.txt"), "carol reads bob's bucket-owner-read object");
    denied(&call(&w.carol, "PUT", "/grants/carol.txt", "", &[], b"c"), "carol has no WRITE");
    denied(&call(&w.bob, "GET", "/grants", "list-type=2", &[], b""), "WRITE does not list");
    assert_eq!(listed_keys(&w.alice, "grants"), ["bor.txt", "plain.txt"], "alice lists bob's objects");

    let acl = acl_of(&call(&w.bob, "GET", "/grants/bor.txt", "acl", &[], b""), "bob's GetObjectAcl");
    assert_eq!((acl.owner.as_str(), acl.owner_name.as_str()), (w.bob_id.as_str(), "bob"), "{acl:?}");
    assert_eq!(acl.grants, grants(&[(&w.bob_id, "FULL_CONTROL"), (&w.alice_id, "READ")]), "bucket-owner-read");
    let acl = acl_of(&call(&w.bob, "GET", "/grants/plain.txt", "acl", &[], b""), "bob's GetObjectAcl");
    assert_eq!((acl.owner.as_str(), acl.grants), (w.bob_id.as_str(), grants(&[(&w.bob_id, "FULL_CONTROL")])));
    denied(&call(&w.alice, "GET", "/grants/bor.txt", "acl", &[], b""), "READ is not READ_ACP, even for alice");
    let resp = call(&w.alice, "PUT", "/grants/plain.txt", "acl", &[("x-amz-acl", "bucket-owner-full-control")], b"");
    denied(&resp, "alice cannot grant herself bob's object");
    status(&call(&w.alice, "DELETE", "/grants/plain.txt", "", &[], b""), 204, "but she may delete it");

    // By e-mail address (any case): replaces the ACL; bob may now list but not write.
    let by_email = format!("emailAddress=\"{}\"", BOB_EMAIL.to_uppercase());
    let resp = call(&w.alice, "PUT", "/grants", "acl", &[("x-amz-grant-read", &by_email)], b"");
    status(&resp, 200, "PutBucketAcl x-amz-grant-read by e-mail");
    assert_eq!(listed_keys(&w.bob, "grants"), ["bor.txt"], "bob lists after the e-mail grant");
    denied(&call(&w.bob, "PUT", "/grants/after.txt", "", &[], b"b"), "the new ACL replaced bob's WRITE");
    let acl = acl_of(&call(&w.alice, "GET", "/grants", "acl", &[], b""), "GetBucketAcl");
    assert_eq!(acl.grants, grants(&[(&w.bob_id, "READ")]), "{acl:?}");

    // Several grantees and headers at once.
    let both = format!("{}, {}", id_grant(&w.bob_id), id_grant(&w.carol_id));
    let full = id_grant(&w.alice_id);
    let resp = call(
        &w.alice,
        "PUT",
        "/grants",
        "acl",
        &[
            ("x-amz-grant-write", &both),
            ("x-amz-grant-read", &format!("uri=\"{ALL_USERS}\"")),
            ("x-amz-grant-full-control", &full),
        ],
        b"",
    );
    status(&resp, 200, "PutBucketAcl with three grant headers");
    let acl = acl_of(&call(&w.alice, "GET", "/grants", "acl", &[], b""), "GetBucketAcl");
    let want = [(&*w.alice_id, "FULL_CONTROL"), (&w.bob_id, "WRITE"), (&w.carol_id, "WRITE"), (ALL_USERS, "READ")];
    assert_eq!(acl.grants, grants(&want), "{acl:?}");
    w.put(&w.carol, "/grants/carol.txt", b"carol", &[]);
    assert_eq!(w.anon("GET", "/grants?list-type=2", &[], b"").elements("Key"), ["bor.txt", "carol.txt"]);

    // Errors leave the ACL as it was.
    let unknown_email = "emailAddress=\"nobody@example.com\"";
    let resp = call(&w.alice, "PUT", "/grants", "acl", &[("x-amz-grant-read", unknown_email)], b"");
    error(&resp, 400, "UnresolvableGrantByEmailAddress", "PutBucketAcl, unknown e-mail");
    let unknown_id = id_grant(&"0".repeat(64));
    let resp = call(&w.alice, "PUT", "/grants", "acl", &[("x-amz-grant-read", &unknown_id)], b"");
    error(&resp, 400, "InvalidArgument", "PutBucketAcl, unknown canonical id");
    let resp =
        call(&w.alice, "PUT", "/grants", "acl", &[("x-amz-acl", "private"), ("x-amz-grant-read", &bob_grant)], b"");
    error(&resp, 400, "InvalidRequest", "PutBucketAcl, canned ACL and grant header");
    let resp =
        call(&w.alice, "PUT", "/grants", "acl", &[("x-amz-grant-read", "uri=\"http://example.com/group\"")], b"");
    error(&resp, 400, "InvalidArgument", "PutBucketAcl, unknown group");
    let acl = acl_of(&call(&w.alice, "GET", "/grants", "acl", &[], b""), "GetBucketAcl after errors");
    assert_eq!(acl.grants, grants(&want), "unchanged: {acl:?}");

    // The same errors on PutObject and CreateBucket; nothing is written.
    let resp = call(&w.bob, "PUT", "/grants/e1", "", &[("x-amz-grant-read", unknown_email)], b"x");
    error(&resp, 400, "UnresolvableGrantByEmailAddress", "PutObject, unknown e-mail");
    let resp = call(&w.bob, "PUT", "/grants/e2", "", &[("x-amz-grant-read", &unknown_id)], b"x");
    error(&resp, 400, "InvalidArgument", "PutObject, unknown id");
    let resp =
        call(&w.bob, "PUT", "/grants/e3", "", &[("x-amz-acl", "public-read"), ("x-amz-grant-read", &bob_grant)], b"x");
    error(&resp, 400, "InvalidRequest", "PutObject, canned ACL and grant header");
    let resp = call(&w.bob, "PUT", "/bob-bkt", "", &[("x-amz-grant-read", unknown_email)], b"");
    error(&resp, 400, "UnresolvableGrantByEmailAddress", "CreateBucket, unknown e-mail");
    error(&call(&w.bob, "GET", "/bob-bkt", "list-type=2", &[], b""), 404, "NoSuchBucket", "not created");
    assert_eq!(listed_keys(&w.alice, "grants"), ["bor.txt", "carol.txt"], "no object was written");

    // Grant headers on PutObject.
    let carol_read = id_grant(&w.carol_id);
    w.put(&w.bob, "/grants/for-carol.txt", b"to carol", &[("x-amz-grant-read", &carol_read)]);
    bytes(&get(&w.carol, "/grants/for-carol.txt"), b"to carol", "carol's READ grant on the object");
    denied(&get(&w.alice, "/grants/for-carol.txt"), "alice has no grant on it");
    let acl = acl_of(&call(&w.bob, "GET", "/grants/for-carol.txt", "acl", &[], b""), "GetObjectAcl");
    assert_eq!(acl.grants, grants(&[(&w.carol_id, "READ")]), "exactly the grants the headers name: {acl:?}");
    bytes(&get(&w.bob, "/grants/for-carol.txt"), b"to carol", "its owner reads it whatever the grants");
}

// ---------------------------------------------------------------------------
// 5. AccessControlPolicy documents on PutBucketAcl.
// ---------------------------------------------------------------------------

#[test]
fn access_control_policy_documents_set_bucket_acls_and_cannot_change_the_owner() {
    let w = world();
    w.create_bucket(&w.alice, "docs", &[]);
    w.put(&w.alice, "/docs/k", b"v", &[]);
    denied(&call(&w.bob, "GET", "/docs", "list-type=2", &[], b""), "bob before the grant");

    let doc = acl_doc(&w.alice_id, &[(&w.alice_id, "FULL_CONTROL"), (&w.bob_id, "READ")]);
    status(&call(&w.alice, "PUT", "/docs", "acl", &[], doc.as_bytes()), 200, "PutBucketAcl with a document");
    assert_eq!(listed_keys(&w.bob, "docs"), ["k"], "bob lists with READ");
    denied(&call(&w.carol, "GET", "/docs", "list-type=2", &[], b""), "carol has no grant");
    let acl = acl_of(&call(&w.alice, "GET", "/docs", "acl", &[], b""), "GetBucketAcl");
    assert_eq!((acl.owner.as_str(), acl.owner_name.as_str()), (w.alice_id.as_str(), "alice"), "{acl:?}");
    assert_eq!(acl.grants, grants(&[(&w.alice_id, "FULL_CONTROL"), (&w.bob_id, "READ")]), "{acl:?}");
    let mut names = acl.names.clone();
    names.sort();
    let mut want = vec![(w.alice_id.clone(), "alice".to_string()), (w.bob_id.clone(), "bob".to_string())];
    want.sort();
    assert_eq!(names, want, "grantees' DisplayNames");
    denied(&call(&w.bob, "GET", "/docs", "acl", &[], b""), "READ is not READ_ACP");
    denied(&call(&w.carol, "GET", "/docs", "acl", &[], b""), "carol's GetBucketAcl");
    denied(&call(&w.carol, "PUT", "/docs", "acl", &[], doc.as_bytes()), "carol's PutBucketAcl (no WRITE_ACP)");
    let resp = call(&w.carol, "PUT", "/docs", "acl", &[("x-amz-acl", "public-read-write")], b"");
    denied(&resp, "carol's canned PutBucketAcl");

    // The document may not name another owner.
    for other in [&w.bob_id, &w.carol_id, &"root".to_string()] {
        let doc = acl_doc(other, &[(other, "FULL_CONTROL")]);
        denied(&call(&w.alice, "PUT", "/docs", "acl", &[], doc.as_bytes()), "a document naming another Owner");
    }
    // Malformed documents.
    let malformed: [(&str, String); 5] = [
        ("not XML", "<AccessControlPolicy><AccessControlList><Grant>".to_string()),
        ("another root element", "<Policy><AccessControlList/></Policy>".to_string()),
        (
            "no AccessControlList",
            format!("<AccessControlPolicy><Owner><ID>{}</ID></Owner></AccessControlPolicy>", w.alice_id),
        ),
        ("an unknown permission", acl_doc(&w.alice_id, &[(&w.bob_id, "EVERYTHING")])),
        (
            "a grantee with no ID, URI or address",
            format!(
                "<AccessControlPolicy><Owner><ID>{}</ID></Owner><AccessControlList><Grant><Grantee/>\
                 <Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>",
                w.alice_id
            ),
        ),
    ];
    for (what, doc) in &malformed {
        error(&call(&w.alice, "PUT", "/docs", "acl", &[], doc.as_bytes()), 400, "MalformedACLError", what);
    }
    let doc = acl_doc(&w.alice_id, &[("nobody@example.com", "READ")]);
    let resp = call(&w.alice, "PUT", "/docs", "acl", &[], doc.as_bytes());
    error(&resp, 400, "UnresolvableGrantByEmailAddress", "a document granting an unknown e-mail");
    let doc = acl_doc(&w.alice_id, &[(&"f".repeat(64), "READ")]);
    error(&call(&w.alice, "PUT", "/docs", "acl", &[], doc.as_bytes()), 400, "InvalidArgument", "an unknown id");
    let doc = acl_doc(&w.alice_id, &[(&w.bob_id, "READ")]);
    let resp = call(&w.alice, "PUT", "/docs", "acl", &[("x-amz-acl", "private")], doc.as_bytes());
    error(&resp, 400, "UnexpectedContent", "a document and a canned ACL header");
    let resp = call(&w.alice, "PUT", "/docs", "acl", &[], b"");
    error(&resp, 400, "MissingSecurityHeader", "PutBucketAcl with neither");

    // None of them changed anything.
    let acl = acl_of(&call(&w.alice, "GET", "/docs", "acl", &[], b""), "GetBucketAcl after refusals");
    assert_eq!(acl.grants, grants(&[(&w.alice_id, "FULL_CONTROL"), (&w.bob_id, "READ")]), "{acl:?}");
    assert_eq!(acl.owner, w.alice_id);

    // READ_ACP and WRITE_ACP by document; grantee by e-mail; groups.
    let doc = acl_doc(&w.alice_id, &[(BOB_EMAIL, "READ_ACP"), (&w.carol_id, "WRITE_ACP"), (ALL_USERS, "READ")]);
    status(&call(&w.alice, "PUT", "/docs", "acl", &[], doc.as_bytes()), 200, "second document");
    let acl = acl_of(&call(&w.bob, "GET", "/docs", "acl", &[], b""), "bob's GetBucketAcl with READ_ACP");
    assert_eq!(acl.grants, grants(&[(&w.bob_id, "READ_ACP"), (&w.carol_id, "WRITE_ACP"), (ALL_USERS, "READ")]));
    denied(&call(&w.carol, "GET", "/docs", "acl", &[], b""), "WRITE_ACP is not READ_ACP");
    let doc = acl_doc(&w.alice_id, &[(&w.carol_id, "WRITE_ACP"), (&w.carol_id, "READ")]);
    status(&call(&w.carol, "PUT", "/docs", "acl", &[], doc.as_bytes()), 200, "carol's PutBucketAcl with WRITE_ACP");
    assert_eq!(listed_keys(&w.carol, "docs"), ["k"], "carol gave herself READ");
    denied(&w.anon("GET", "/docs?list-type=2", &[], b""), "AllUsers READ is gone");
    denied(&call(&w.bob, "GET", "/docs", "acl", &[], b""), "bob's READ_ACP is gone");
    let acl = acl_of(&call(&w.alice, "GET", "/docs", "acl", &[], b""), "GetBucketAcl");
    assert_eq!(acl.owner, w.alice_id, "a grantee's PutBucketAcl does not change the owner");
    // The owner keeps full control whatever the list says.
    assert_eq!(listed_keys(&w.alice, "docs"), ["k"]);
    status(&call(&w.alice, "PUT", "/docs", "acl", &[("x-amz-acl", "private")], b""), 200, "alice resets");
    denied(&call(&w.carol, "PUT", "/docs", "acl", &[("x-amz-acl", "public-read")], b""), "carol's WRITE_ACP is gone");
}

// ---------------------------------------------------------------------------
// 6. PutObjectAcl and GetObjectAcl; tagging by a reader.
// ---------------------------------------------------------------------------

#[test]
fn object_acls_are_set_and_shown_by_who_holds_write_acp_and_read_acp() {
    let w = world();
    w.create_bucket(&w.alice, "objs", &[]);
    w.put(&w.alice, "/objs/o.txt", b"alice's object", &[("x-amz-tagging", "team=a")]);

    // Canned.
    let resp = call(&w.alice, "PUT", "/objs/o.txt", "acl", &[("x-amz-acl", "public-read")], b"");
    status(&resp, 200, "PutObjectAcl public-read");
    bytes(&w.anon("GET", "/objs/o.txt", &[], b""), b"alice's object", "anonymous after public-read");
    status(&call(&w.alice, "PUT", "/objs/o.txt", "acl", &[("x-amz-acl", "private")], b""), 200, "back to private");
    denied(&w.anon("GET", "/objs/o.txt", &[], b""), "anonymous after private");
    let acl = acl_of(&call(&w.alice, "GET", "/objs/o.txt", "acl", &[], b""), "GetObjectAcl");
    assert_eq!(acl.grants, grants(&[(&w.alice_id, "FULL_CONTROL")]), "private: {acl:?}");
    let resp = call(&w.alice, "PUT", "/objs/o.txt", "acl", &[("x-amz-acl", "everyone")], b"");
    error(&resp, 400, "InvalidArgument", "an unknown canned ACL");

    // READ_ACP: bob may see the ACL, not the object, not change the ACL.
    let resp = call(&w.alice, "PUT", "/objs/o.txt", "acl", &[("x-amz-grant-read-acp", &id_grant(&w.bob_id))], b"");
    status(&resp, 200, "PutObjectAcl x-amz-grant-read-acp");
    let acl = acl_of(&call(&w.bob, "GET", "/objs/o.txt", "acl", &[], b""), "bob's GetObjectAcl with READ_ACP");
    assert_eq!((acl.owner.as_str(), acl.owner_name.as_str()), (w.alice_id.as_str(), "alice"));
    assert_eq!(acl.grants, grants(&[(&w.bob_id, "READ_ACP")]), "{acl:?}");
    denied(&get(&w.bob, "/objs/o.txt"), "READ_ACP is not READ");
    denied(
        &call(&w.bob, "PUT", "/objs/o.txt", "acl", &[("x-amz-acl", "public-read")], b""),
        "READ_ACP is not WRITE_ACP",
    );
    denied(&call(&w.carol, "GET", "/objs/o.txt", "acl", &[], b""), "carol's GetObjectAcl");
    denied(&call(&w.carol, "PUT", "/objs/o.txt", "acl", &[("x-amz-acl", "public-read")], b""), "carol's PutObjectAcl");

    // WRITE_ACP (and READ): bob changes the ACL; the owner stays alice.
    let (bob_id, bob_email) = (id_grant(&w.bob_id), format!("emailAddress=\"{BOB_EMAIL}\""));
    let headers = [("x-amz-grant-write-acp", bob_id.as_str()), ("x-amz-grant-read", bob_email.as_str())];
    status(&call(&w.alice, "PUT", "/objs/o.txt", "acl", &headers, b""), 200, "PutObjectAcl WRITE_ACP and READ");
    bytes(&get(&w.bob, "/objs/o.txt"), b"alice's object", "bob's READ grant by e-mail");
    denied(&call(&w.bob, "GET", "/objs/o.txt", "acl", &[], b""), "WRITE_ACP is not READ_ACP");
    let resp = call(&w.bob, "PUT", "/objs/o.txt", "acl", &[("x-amz-acl", "public-read")], b"");
    status(&resp, 200, "bob's PutObjectAcl with WRITE_ACP");
    bytes(&w.anon("GET", "/objs/o.txt", &[], b""), b"alice's object", "anonymous after bob's public-read");
    let acl = acl_of(&call(&w.alice, "GET", "/objs/o.txt", "acl", &[], b""), "GetObjectAcl");
    assert_eq!(acl.owner, w.alice_id, "a canned ACL by a grantee keeps the owner: {acl:?}");
    assert_eq!(acl.grants, grants(&[(&w.alice_id, "FULL_CONTROL"), (ALL_USERS, "READ")]), "{acl:?}");
    let resp = call(&w.bob, "PUT", "/objs/o.txt", "acl", &[("x-amz-acl", "public-read-write")], b"");
    denied(&resp, "bob's WRITE_ACP went with the ACL he replaced");

    // A document on an object.
    let doc = acl_doc(&w.alice_id, &[(&w.alice_id, "FULL_CONTROL"), (AUTHENTICATED_USERS, "READ")]);
    status(&call(&w.alice, "PUT", "/objs/o.txt", "acl", &[], doc.as_bytes()), 200, "PutObjectAcl document");
    bytes(&get(&w.carol, "/objs/o.txt"), b"alice's object", "AuthenticatedUsers READ: carol");
    denied(&w.anon("GET", "/objs/o.txt", &[], b""), "AuthenticatedUsers READ: not anonymous");
    let doc = acl_doc(&w.bob_id, &[(&w.bob_id, "FULL_CONTROL")]);
    denied(&call(&w.alice, "PUT", "/objs/o.txt", "acl", &[], doc.as_bytes()), "an object document naming bob as Owner");
    let resp = call(&w.alice, "PUT", "/objs/o.txt", "acl", &[], b"<AccessControlPolicy><Owner>");
    error(&resp, 400, "MalformedACLError", "a malformed object document");
    let resp = call(&w.alice, "PUT", "/objs/missing", "acl", &[("x-amz-acl", "public-read")], b"");
    error(&resp, 404, "NoSuchKey", "the owner's PutObjectAcl of a missing key");
    let resp = call(&w.alice, "GET", "/objs/missing", "acl", &[], b"");
    error(&resp, 404, "NoSuchKey", "the owner's GetObjectAcl of a missing key");

    // Tagging: a reader reads tags, only the owner changes them.
    let resp = call(&w.alice, "PUT", "/objs/o.txt", "acl", &[("x-amz-grant-read", &id_grant(&w.bob_id))], b"");
    status(&resp, 200, "PutObjectAcl READ to bob");
    let resp = call(&w.bob, "GET", "/objs/o.txt", "tagging", &[], b"");
    assert_eq!((resp.status, resp.elements("Value")), (200, vec!["a".to_string()]), "bob's GetObjectTagging");
    let tags = tagging_body("team", "b");
    denied(&call(&w.bob, "PUT", "/objs/o.txt", "tagging", &[], &tags), "bob's PutObjectTagging with READ only");
    denied(&call(&w.bob, "DELETE", "/objs/o.txt", "tagging", &[], b""), "bob's DeleteObjectTagging");
    denied(&call(&w.carol, "GET", "/objs/o.txt", "tagging", &[], b""), "carol's GetObjectTagging without READ");
    denied(&call(&w.carol, "PUT", "/objs/o.txt", "tagging", &[], &tags), "carol's PutObjectTagging");
    let resp = call(&w.alice, "GET", "/objs/o.txt", "tagging", &[], b"");
    assert_eq!(resp.elements("Value"), ["a"], "tags unchanged: {}", resp.text());
    status(&call(&w.alice, "PUT", "/objs/o.txt", "tagging", &[], &tags), 200, "the owner's PutObjectTagging");
    let resp = call(&w.bob, "GET", "/objs/o.txt", "tagging", &[], b"");
    assert_eq!(resp.elements("Value"), ["b"], "bob sees the new tags: {}", resp.text());
    // An object ACL is the object's: an overwrite by the owner starts private again.
    w.put(&w.alice, "/objs/o.txt", b"new bytes", &[]);
    denied(&get(&w.bob, "/objs/o.txt"), "bob's grant was on the replaced object");
}

// ---------------------------------------------------------------------------
// 7. Multipart uploads belong to their initiator and the bucket's owner.
// ---------------------------------------------------------------------------

#[test]
fn another_writer_cannot_touch_an_upload_and_the_buckets_owner_lists_and_aborts_it() {
    let w = world();
    w.create_bucket(&w.alice, "mpu", &[]);
    let writers = format!("{}, {}", id_grant(&w.bob_id), id_grant(&w.carol_id));
    // carol may also list, so her ListParts is refused for not being the
    // initiator, not for lacking READ.
    let carol_read = id_grant(&w.carol_id);
    let resp = call(
        &w.alice,
        "PUT",
        "/mpu",
        "acl",
        &[("x-amz-grant-write", &writers), ("x-amz-grant-read", &carol_read)],
        b"",
    );
    status(&resp, 200, "PutBucketAcl: WRITE to bob and carol, READ to carol");

    let upload = start_upload(&w.bob, "/mpu/big", &[]);
    let part1 = format!("partNumber=1&uploadId={upload}");
    let resp = call(&w.bob, "PUT", "/mpu/big", &part1, &[], b"bob's part");
    status(&resp, 200, "bob's UploadPart");
    let etag = resp.header("etag").expect("etag").to_string();
    let only_upload = format!("uploadId={upload}");
    let complete = complete_body(&[&etag]);

    let part2 = format!("partNumber=2&uploadId={upload}");
    denied(&call(&w.carol, "PUT", "/mpu/big", &part2, &[], b"carol's part"), "carol's UploadPart to bob's upload");
    denied(&call(&w.carol, "PUT", "/mpu/big", &part1, &[], b"carol's part"), "carol overwriting bob's part");
    denied(&call(&w.carol, "GET", "/mpu/big", &only_upload, &[], b""), "carol's ListParts of bob's upload");
    denied(&call(&w.carol, "POST", "/mpu/big", &only_upload, &[], complete.as_bytes()), "carol's Complete");
    denied(&call(&w.carol, "DELETE", "/mpu/big", &only_upload, &[], b""), "carol's Abort");
    denied(&w.anon("PUT", &format!("/mpu/big?{part2}"), &[], b"anonymous part"), "anonymous UploadPart");
    denied(&w.anon("DELETE", &format!("/mpu/big?{only_upload}"), &[], b""), "anonymous Abort");
    denied(&w.anon("GET", "/mpu?uploads", &[], b""), "anonymous ListMultipartUploads");
    let resp = call(&w.carol, "GET", "/mpu", "uploads", &[], b"");
    assert_eq!((resp.status, resp.elements("UploadId")), (200, vec![upload.clone()]), "carol with READ lists uploads");

    // The bucket's owner lists the parts: bob's one part, unchanged.
    let resp = call(&w.alice, "GET", "/mpu/big", &only_upload, &[], b"");
    assert_eq!(resp.status, 200, "alice's ListParts of bob's upload: {}", resp.text());
    assert_eq!(resp.elements("PartNumber"), ["1"], "{}", resp.text());
    assert_eq!(resp.elements("Size"), ["10"], "bob's part, not carol's: {}", resp.text());
    let initiator = between(&resp.text(), "Initiator").unwrap_or_default();
    assert_eq!(between(&initiator, "ID"), Some(w.bob_id.clone()), "the Initiator is bob: {}", resp.text());
    status(&call(&w.alice, "DELETE", "/mpu/big", &only_upload, &[], b""), 204, "alice aborts bob's upload");
    let resp = call(&w.alice, "GET", "/mpu/big", &only_upload, &[], b"");
    error(&resp, 404, "NoSuchUpload", "the aborted upload");
    status(&call(&w.root, "HEAD", "/mpu/big", "", &[], b""), 404, "no object");

    // Completed by its initiator, the object is the initiator's, with the
    // ACL asked for when the upload started.
    let upload = start_upload(&w.bob, "/mpu/done", &[("x-amz-acl", "bucket-owner-read")]);
    let part1 = format!("partNumber=1&uploadId={upload}");
    let resp = call(&w.bob, "PUT", "/mpu/done", &part1, &[], b"assembled");
    let etag = resp.header("etag").expect("etag").to_string();
    let only_upload = format!("uploadId={upload}");
    denied(
        &call(&w.carol, "POST", "/mpu/done", &only_upload, &[], complete_body(&[&etag]).as_bytes()),
        "carol completes",
    );
    let resp = call(&w.bob, "POST", "/mpu/done", &only_upload, &[], complete_body(&[&etag]).as_bytes());
    status(&resp, 200, "bob completes his upload");
    bytes(&get(&w.bob, "/mpu/done"), b"assembled", "bob reads his object");
    bytes(&get(&w.alice, "/mpu/done"), b"assembled", "bucket-owner-read from CreateMultipartUpload");
    denied(&get(&w.carol, "/mpu/done"), "carol's READ on the bucket is not READ on bob's object");
    let acl = acl_of(&call(&w.bob, "GET", "/mpu/done", "acl", &[], b""), "GetObjectAcl of the completed object");
    assert_eq!(acl.owner, w.bob_id, "{acl:?}");
    assert_eq!(acl.grants, grants(&[(&w.bob_id, "FULL_CONTROL"), (&w.alice_id, "READ")]), "{acl:?}");

    // Without an ACL header it is bob's alone.
    let upload = start_upload(&w.bob, "/mpu/mine", &[]);
    let resp = call(&w.bob, "PUT", "/mpu/mine", &format!("partNumber=1&uploadId={upload}"), &[], b"bob's");
    let etag = resp.header("etag").expect("etag").to_string();
    let resp =
        call(&w.bob, "POST", "/mpu/mine", &format!("uploadId={upload}"), &[], complete_body(&[&etag]).as_bytes());
    status(&resp, 200, "bob completes");
    denied(&get(&w.alice, "/mpu/mine"), "alice may not read bob's multipart object");
}

// ---------------------------------------------------------------------------
// 8. CopyObject and UploadPartCopy need READ on the source.
// ---------------------------------------------------------------------------

#[test]
fn copies_need_read_on_the_source_and_belong_to_the_copier() {
    let w = world();
    w.create_bucket(&w.alice, "src", &[]);
    w.create_bucket(&w.bob, "dst", &[]);
    let body = pattern(50_000, 3);
    w.put(&w.alice, "/src/secret.bin", &body, &[]);
    let source = [("x-amz-copy-source", "/src/secret.bin")];

    denied(&call(&w.bob, "PUT", "/dst/copy", "", &source, b""), "bob copies alice's private object");
    status(&call(&w.bob, "HEAD", "/dst/copy", "", &[], b""), 404, "no copy was made");
    let upload = start_upload(&w.bob, "/dst/mp", &[]);
    let part1 = format!("partNumber=1&uploadId={upload}");
    denied(&call(&w.bob, "PUT", "/dst/mp", &part1, &source, b""), "bob's UploadPartCopy of alice's private object");
    let ranged = [source[0], ("x-amz-copy-source-range", "bytes=0-99")];
    denied(&call(&w.bob, "PUT", "/dst/mp", &part1, &ranged, b""), "bob's ranged UploadPartCopy");
    let resp = call(&w.bob, "GET", "/dst/mp", &format!("uploadId={upload}"), &[], b"");
    assert_eq!((resp.status, resp.elements("PartNumber")), (200, Vec::<String>::new()), "no part: {}", resp.text());
    // Into alice's bucket with no WRITE there: refused whatever the source.
    w.put(&w.bob, "/dst/bobs.txt", b"bob's", &[]);
    let resp = call(&w.bob, "PUT", "/src/from-bob", "", &[("x-amz-copy-source", "/dst/bobs.txt")], b"");
    denied(&resp, "bob copies into alice's bucket");

    // Once the source is public-read, the copies succeed.
    let resp = call(&w.alice, "PUT", "/src/secret.bin", "acl", &[("x-amz-acl", "public-read")], b"");
    status(&resp, 200, "PutObjectAcl public-read on the source");
    let resp = call(&w.bob, "PUT", "/dst/copy", "", &source, b"");
    status(&resp, 200, "bob copies the public-read object");
    assert_eq!(resp.elements("ETag").len(), 1, "a CopyObjectResult: {}", resp.text());
    bytes(&get(&w.bob, "/dst/copy"), &body, "the copy's bytes");
    let acl = acl_of(&call(&w.bob, "GET", "/dst/copy", "acl", &[], b""), "GetObjectAcl of the copy");
    assert_eq!(acl.owner, w.bob_id, "the copy is bob's: {acl:?}");
    assert_eq!(acl.grants, grants(&[(&w.bob_id, "FULL_CONTROL")]), "the copy is private, not public-read: {acl:?}");
    denied(&w.anon("GET", "/dst/copy", &[], b""), "anonymous GET of the copy");
    denied(&get(&w.alice, "/dst/copy"), "alice GET of bob's copy");
    let resp = call(&w.bob, "PUT", "/dst/public-copy", "", &[source[0], ("x-amz-acl", "public-read")], b"");
    status(&resp, 200, "a copy with its own canned ACL");
    bytes(&w.anon("GET", "/dst/public-copy", &[], b""), &body, "anonymous GET of the public-read copy");

    let resp = call(&w.bob, "PUT", "/dst/mp", &part1, &ranged, b"");
    status(&resp, 200, "bob's UploadPartCopy of the public-read object");
    let etag = between(&resp.text(), "ETag").expect("a CopyPartResult ETag").replace("&quot;", "\"");
    let resp = call(&w.bob, "POST", "/dst/mp", &format!("uploadId={upload}"), &[], complete_body(&[&etag]).as_bytes());
    status(&resp, 200, "bob completes the upload of the copied part");
    bytes(&get(&w.bob, "/dst/mp"), &body[..100], "the copied part's bytes");
    denied(&w.anon("GET", "/dst/mp", &[], b""), "anonymous GET of the part copy");

    // Back to private: copies are refused again; the copies made stay bob's.
    status(&call(&w.alice, "PUT", "/src/secret.bin", "acl", &[("x-amz-acl", "private")], b""), 200, "private");
    denied(&call(&w.bob, "PUT", "/dst/copy2", "", &source, b""), "bob copies after private again");
    bytes(&get(&w.bob, "/dst/copy"), &body, "bob's copy is his");
}

// ---------------------------------------------------------------------------
// 9. Bucket policies.
// ---------------------------------------------------------------------------

#[test]
fn bucket_policies_allow_and_deny_and_are_refused_when_tessera_cannot_evaluate_them() {
    let w = world();
    w.create_bucket(&w.alice, "pol", &[]);
    for key in ["public/x", "private/x", "secret.txt", "other.txt"] {
        w.put(&w.alice, &format!("/pol/{key}"), format!("body of {key}").as_bytes(), &[]);
    }
    // bob: READ and WRITE on the bucket, READ on the two top-level objects.
    let bob = id_grant(&w.bob_id);
    let resp = call(&w.alice, "PUT", "/pol", "acl", &[("x-amz-grant-read", &bob), ("x-amz-grant-write", &bob)], b"");
    status(&resp, 200, "bucket ACL for bob");
    for key in ["secret.txt", "other.txt"] {
        let resp = call(&w.alice, "PUT", &format!("/pol/{key}"), "acl", &[("x-amz-grant-read", &bob)], b"");
        status(&resp, 200, "object ACL for bob");
    }
    bytes(&get(&w.bob, "/pol/secret.txt"), b"body of secret.txt", "bob's grant, before any policy");
    error(&call(&w.alice, "GET", "/pol", "policy", &[], b""), 404, "NoSuchBucketPolicy", "no policy yet");

    let policy = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::pol/public/*"},
    {"Sid": "NoSecretsForBob", "Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::123456789012:user/bob"}, "Action": "s3:*", "Resource": "arn:aws:s3:::pol/secret*"},
    {"Sid": "Drop", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["s3:PutObject"], "Resource": ["arn:aws:s3:::pol/upload/*"]}
  ]
}"#;
    status(&call(&w.alice, "PUT", "/pol", "policy", &[], policy.as_bytes()), 204, "PutBucketPolicy");
    let resp = call(&w.alice, "GET", "/pol", "policy", &[], b"");
    assert_eq!(resp.status, 200, "GetBucketPolicy: {}", resp.text());
    assert_eq!(resp.text(), policy, "GetBucketPolicy returns the document as put");
    assert!(resp.header("content-type").is_some_and(|t| t.starts_with("application/json")), "{:?}", resp.headers);

    // Allow "*" on public/*: anonymous reads there, nowhere else.
    bytes(&w.anon("GET", "/pol/public/x", &[], b""), b"body of public/x", "anonymous GET allowed by the policy");
    status(&w.anon("HEAD", "/pol/public/x", &[], b""), 200, "anonymous HEAD allowed by the policy");
    denied(&w.anon("GET", "/pol/private/x", &[], b""), "anonymous GET outside the policy");
    denied(&w.anon("GET", "/pol/other.txt", &[], b""), "anonymous GET outside the policy");
    denied(&w.anon("GET", "/pol?list-type=2", &[], b""), "the policy does not allow listing");
    denied(&w.anon("GET", "/pol/public/x?acl", &[], b""), "s3:GetObject is not s3:GetObjectAcl");
    denied(&w.anon("PUT", "/pol/public/y", &[], b"no"), "s3:GetObject is not s3:PutObject");
    bytes(&get(&w.carol, "/pol/public/x"), b"body of public/x", "\"*\" includes signed users");

    // Deny for bob wins over his ACL grants, on the denied keys only.
    denied(&get(&w.bob, "/pol/secret.txt"), "Deny wins over bob's object READ grant");
    status(&call(&w.bob, "HEAD", "/pol/secret.txt", "", &[], b""), 403, "Deny: HEAD");
    denied(&call(&w.bob, "PUT", "/pol/secret-new", "", &[], b"b"), "Deny wins over bob's bucket WRITE grant");
    denied(&call(&w.bob, "DELETE", "/pol/secret.txt", "", &[], b""), "Deny: DELETE");
    denied(&call(&w.bob, "GET", "/pol/secret.txt", "tagging", &[], b""), "Deny: tagging");
    bytes(&get(&w.bob, "/pol/other.txt"), b"body of other.txt", "bob's grant outside the Deny");
    w.put(&w.bob, "/pol/other-new", b"b", &[]);
    assert!(listed_keys(&w.bob, "pol").contains(&"secret.txt".to_string()), "listing is not denied");
    bytes(&get(&w.alice, "/pol/secret.txt"), b"body of secret.txt", "the Deny names bob only");

    // Allow "*" s3:PutObject on upload/*: anonymous writes there only.
    status(&w.anon("PUT", "/pol/upload/a", &[], b"dropped"), 200, "anonymous PUT allowed by the policy");
    denied(&w.anon("PUT", "/pol/elsewhere/a", &[], b"dropped"), "anonymous PUT outside the policy");
    denied(&w.anon("PUT", "/pol/upload", &[], b"dropped"), "upload/* does not match upload");
    let acl = acl_of(&call(&w.root, "GET", "/pol/upload/a", "acl", &[], b""), "GetObjectAcl");
    assert_eq!(acl.owner, ANONYMOUS_ID, "the anonymous writer owns it: {acl:?}");
    bytes(&get(&w.root, "/pol/upload/a"), b"dropped", "root reads it");
    let keys = listed_keys(&w.alice, "pol");
    assert!(keys.contains(&"upload/a".to_string()) && !keys.iter().any(|k| k.starts_with("elsewhere")), "{keys:?}");

    // Only the owner manages the policy, whatever bob's ACL grants.
    let grab = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::pol/*"}]}"#;
    denied(&call(&w.bob, "PUT", "/pol", "policy", &[], grab.as_bytes()), "bob's PutBucketPolicy");
    denied(&call(&w.bob, "GET", "/pol", "policy", &[], b""), "bob's GetBucketPolicy");
    denied(&call(&w.bob, "DELETE", "/pol", "policy", &[], b""), "bob's DeleteBucketPolicy");
    denied(&w.anon("PUT", "/pol?policy", &[], grab.as_bytes()), "anonymous PutBucketPolicy");
    denied(&w.anon("DELETE", "/pol?policy", &[], b""), "anonymous DeleteBucketPolicy");
    assert_eq!(call(&w.alice, "GET", "/pol", "policy", &[], b"").text(), policy, "the policy is unchanged");

    // Policies Tessera cannot evaluate are refused, and the one in force stays.
    let refused = [
        (
            "a Condition",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pol/*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#,
        ),
        (
            "another bucket's resource",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other-bucket/*"}]}"#,
        ),
        (
            "an unknown action",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:PutReplicationConfiguration","Resource":"arn:aws:s3:::pol"}]}"#,
        ),
        (
            "NotPrincipal",
            r#"{"Statement":[{"Effect":"Deny","NotPrincipal":{"AWS":"alice"},"Action":"s3:*","Resource":"arn:aws:s3:::pol/*"}]}"#,
        ),
        (
            "an unknown user",
            r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/mallory"},"Action":"s3:*","Resource":"arn:aws:s3:::pol/*"}]}"#,
        ),
        ("not JSON", "Version: 2012-10-17"),
    ];
    for (what, doc) in refused {
        error(&call(&w.alice, "PUT", "/pol", "policy", &[], doc.as_bytes()), 400, "MalformedPolicy", what);
    }
    assert_eq!(call(&w.alice, "GET", "/pol", "policy", &[], b"").text(), policy, "the policy is unchanged");

    // DeleteBucketPolicy: the ACLs decide again.
    status(&call(&w.alice, "DELETE", "/pol", "policy", &[], b""), 204, "DeleteBucketPolicy");
    error(&call(&w.alice, "GET", "/pol", "policy", &[], b""), 404, "NoSuchBucketPolicy", "after the delete");
    status(&call(&w.alice, "DELETE", "/pol", "policy", &[], b""), 204, "DeleteBucketPolicy again");
    denied(&w.anon("GET", "/pol/public/x", &[], b""), "anonymous without the policy");
    denied(&w.anon("PUT", "/pol/upload/b", &[], b"dropped"), "anonymous PUT without the policy");
    bytes(&get(&w.bob, "/pol/secret.txt"), b"body of secret.txt", "bob's grant without the Deny");

    // A Deny applies to the bucket's owner too; a user named by canonical id.
    let own = format!(
        r#"{{"Statement":[{{"Effect":"Deny","Principal":{{"CanonicalUser":"{}"}},"Action":"s3:GetObject","Resource":"arn:aws:s3:::pol/secret*"}}]}}"#,
        w.alice_id
    );
    status(&call(&w.alice, "PUT", "/pol", "policy", &[], own.as_bytes()), 204, "a Deny for the owner");
    denied(&get(&w.alice, "/pol/secret.txt"), "a Deny applies to the bucket's owner");
    bytes(&get(&w.alice, "/pol/other.txt"), b"body of other.txt", "outside the Deny");
    bytes(&get(&w.root, "/pol/secret.txt"), b"body of secret.txt", "root is not denied");
    status(&call(&w.alice, "DELETE", "/pol", "policy", &[], b""), 204, "the owner may still delete the policy");

    // Allow by user name to a user with no ACL grant at all.
    let carol_list = r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"carol"},"Action":["s3:ListBucket","s3:GetObject"],"Resource":["arn:aws:s3:::pol","arn:aws:s3:::pol/private/*"]}]}"#;
    status(&call(&w.alice, "PUT", "/pol", "policy", &[], carol_list.as_bytes()), 204, "an Allow for carol");
    assert!(listed_keys(&w.carol, "pol").contains(&"private/x".to_string()), "carol lists by the policy");
    bytes(&get(&w.carol, "/pol/private/x"), b"body of private/x", "carol reads by the policy");
    denied(&get(&w.carol, "/pol/other.txt"), "carol outside the policy");
    error(&get(&w.carol, "/pol/private/missing"), 404, "NoSuchKey", "carol may list: a missing key is NoSuchKey");
}

// ---------------------------------------------------------------------------
// 10. DeleteObjects judged key by key against the policy.
// ---------------------------------------------------------------------------

#[test]
fn delete_objects_deletes_only_the_keys_the_policy_allows() {
    let w = world();
    w.create_bucket(&w.alice, "del", &[]);
    let all = ["tmp/a", "tmp/b", "keep/c", "d"];
    for key in all {
        w.put(&w.alice, &format!("/del/{key}"), b"x", &[]);
    }
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"s3:DeleteObject","Resource":"arn:aws:s3:::del/tmp/*"}]}"#;
    status(&call(&w.alice, "PUT", "/del", "policy", &[], policy.as_bytes()), 204, "PutBucketPolicy");

    let delete = |c: &Client, keys: &[&str], quiet: bool| {
        let objects: String = keys.iter().map(|k| format!("<Object><Key>{k}</Key></Object>")).collect();
        let body = format!("<Delete><Quiet>{quiet}</Quiet>{objects}</Delete>");
        let resp =
            call(c, "POST", "/del", "delete", &[("content-md5", &content_md5(body.as_bytes()))], body.as_bytes());
        assert_eq!(resp.status, 200, "DeleteObjects: {}", resp.text());
        let deleted: Vec<String> = blocks(&resp.text(), "Deleted").iter().filter_map(|d| between(d, "Key")).collect();
        let errors: Vec<(String, String)> = blocks(&resp.text(), "Error")
            .iter()
            .map(|e| (between(e, "Key").unwrap_or_default(), between(e, "Code").unwrap_or_default()))
            .collect();
        (deleted, errors)
    };
    let denied_keys =
        |keys: &[&str]| keys.iter().map(|k| (k.to_string(), "AccessDenied".to_string())).collect::<Vec<_>>();

    // carol: nothing allowed; every key is refused and stays.
    let (deleted, errors) = delete(&w.carol, &all, false);
    assert_eq!((deleted, errors), (Vec::<String>::new(), denied_keys(&all)), "carol's DeleteObjects");
    assert_eq!(listed_keys(&w.alice, "del"), ["d", "keep/c", "tmp/a", "tmp/b"]);

    // bob: the tmp/ keys go, the others get AccessDenied entries and stay.
    let (deleted, errors) = delete(&w.bob, &all, false);
    assert_eq!(deleted, ["tmp/a", "tmp/b"], "bob's deleted keys");
    assert_eq!(errors, denied_keys(&["keep/c", "d"]), "bob's refused keys");
    assert_eq!(listed_keys(&w.alice, "del"), ["d", "keep/c"], "the refused keys still exist");
    bytes(&get(&w.alice, "/del/keep/c"), b"x", "keep/c intact");

    // Quiet: only the errors are reported.
    w.put(&w.alice, "/del/tmp/q", b"x", &[]);
    let (deleted, errors) = delete(&w.bob, &["tmp/q", "d"], true);
    assert_eq!((deleted, errors), (Vec::<String>::new(), denied_keys(&["d"])), "quiet DeleteObjects");
    assert_eq!(listed_keys(&w.alice, "del"), ["d", "keep/c"]);

    // DeleteObject of one key follows the same rule.
    denied(&call(&w.bob, "DELETE", "/del/d", "", &[], b""), "bob's DeleteObject outside tmp/");
    w.put(&w.alice, "/del/tmp/one", b"x", &[]);
    status(&call(&w.bob, "DELETE", "/del/tmp/one", "", &[], b""), 204, "bob's DeleteObject in tmp/");
    // The policy allows deleting, not reading or writing.
    denied(&call(&w.bob, "PUT", "/del/tmp/new", "", &[], b"b"), "s3:DeleteObject is not s3:PutObject");
    denied(&get(&w.bob, "/del/keep/c"), "s3:DeleteObject is not s3:GetObject");

    // The owner deletes everything (owner and ACL where the policy is silent).
    let (deleted, errors) = delete(&w.alice, &["d", "keep/c"], false);
    assert_eq!((deleted, errors), (vec!["d".to_string(), "keep/c".to_string()], Vec::new()), "alice's DeleteObjects");
    assert_eq!(listed_keys(&w.alice, "del"), Vec::<String>::new());
}

// ---------------------------------------------------------------------------
// 11. Presigned URLs carry their signer's rights.
// ---------------------------------------------------------------------------

#[test]
fn presigned_urls_carry_the_signers_rights() {
    let w = world();
    w.create_bucket(&w.alice, "pre", &[]);
    w.put(&w.alice, "/pre/private.txt", b"alice's private bytes", &[]);

    let by_bob = w.bob.presigned_target("GET", "/pre/private.txt", "");
    denied(&w.anonymous.send_raw("GET", &by_bob, &[], b""), "bob's presigned GET of alice's private object");
    let by_alice = w.alice.presigned_target("GET", "/pre/private.txt", "");
    bytes(&w.anonymous.send_raw("GET", &by_alice, &[], b""), b"alice's private bytes", "alice's presigned GET");
    denied(&w.anon("GET", "/pre/private.txt", &[], b""), "the same object unsigned");

    // bob's URL works once bob is granted READ, and its missing key is hidden as for bob.
    let resp = call(&w.alice, "PUT", "/pre/private.txt", "acl", &[("x-amz-grant-read", &id_grant(&w.bob_id))], b"");
    status(&resp, 200, "grant bob READ");
    bytes(&w.anonymous.send_raw("GET", &by_bob, &[], b""), b"alice's private bytes", "bob's presigned GET with READ");
    let by_bob = w.bob.presigned_target("GET", "/pre/missing", "");
    denied(&w.anonymous.send_raw("GET", &by_bob, &[], b""), "bob's presigned GET of a missing key (no list)");
    let by_bob = w.bob.presigned_target("PUT", "/pre/private.txt", "");
    denied(&w.anonymous.send_raw("PUT", &by_bob, &[], b"bob"), "bob's presigned PUT without WRITE");
    let by_alice = w.alice.presigned_target("PUT", "/pre/new.txt", "");
    status(&w.anonymous.send_raw("PUT", &by_alice, &[], b"via URL"), 200, "alice's presigned PUT");
    bytes(&get(&w.alice, "/pre/new.txt"), b"via URL", "written by alice's URL");
    let acl = acl_of(&call(&w.alice, "GET", "/pre/new.txt", "acl", &[], b""), "GetObjectAcl");
    assert_eq!(acl.owner, w.alice_id, "an object written through alice's URL is alice's");
}

// ---------------------------------------------------------------------------
// 12. Root can do everything.
// ---------------------------------------------------------------------------

#[test]
fn root_reads_and_writes_everything_whatever_the_acls_and_policies() {
    let w = world();
    let root = &w.root;
    w.create_bucket(&w.alice, "abk", &[]);
    let write = id_grant(&w.bob_id);
    status(&call(&w.alice, "PUT", "/abk", "acl", &[("x-amz-grant-write", &write)], b""), 200, "bob may write");
    w.put(&w.alice, "/abk/alice.txt", b"alice's", &[]);
    w.put(&w.bob, "/abk/bob.txt", b"bob's", &[]);
    w.create_bucket(&w.bob, "bbk", &[("x-amz-acl", "public-read-write")]);
    status(&w.anon("PUT", "/bbk/anon.txt", &[], b"anonymous"), 200, "anonymous writes into bb");
    let upload = start_upload(&w.bob, "/abk/mp", &[]);
    let deny_all =
        r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::abk/*"}]}"#;
    status(&call(&w.alice, "PUT", "/abk", "policy", &[], deny_all.as_bytes()), 204, "a Deny for everyone");
    denied(&get(&w.alice, "/abk/alice.txt"), "the Deny refuses alice");

    // Reads: objects of every owner, whatever the ACLs and policy.
    bytes(&get(root, "/abk/alice.txt"), b"alice's", "root reads alice's object");
    bytes(&get(root, "/abk/bob.txt"), b"bob's", "root reads bob's object in alice's bucket");
    bytes(&get(root, "/bbk/anon.txt"), b"anonymous", "root reads the anonymous object");
    status(&call(root, "HEAD", "/abk/bob.txt", "", &[], b""), 200, "root's HEAD");
    let acl = acl_of(&call(root, "GET", "/abk/bob.txt", "acl", &[], b""), "root's GetObjectAcl");
    assert_eq!(acl.owner, w.bob_id);
    let acl = acl_of(&call(root, "GET", "/bbk/anon.txt", "acl", &[], b""), "root's GetObjectAcl");
    assert_eq!((acl.owner.as_str(), acl.owner_name.as_str()), (ANONYMOUS_ID, "anonymous"));
    let acl = acl_of(&call(root, "GET", "/abk", "acl", &[], b""), "root's GetBucketAcl");
    assert_eq!(acl.owner, w.alice_id);
    assert_eq!(listed_keys(root, "abk"), ["alice.txt", "bob.txt"]);
    let resp = call(root, "GET", "/", "", &[], b"");
    assert_eq!(resp.elements("Name"), ["abk", "bbk"], "root's ListBuckets shows every bucket");
    let resp = call(root, "GET", "/abk", "policy", &[], b"");
    assert_eq!((resp.status, resp.text()), (200, deny_all.to_string()), "root's GetBucketPolicy");
    let resp = call(root, "GET", "/abk/bob.txt", "tagging", &[], b"");
    status(&resp, 200, "root's GetObjectTagging");

    // Writes.
    w.put(root, "/abk/root.txt", b"root's", &[]);
    bytes(&get(root, "/abk/root.txt"), b"root's", "root reads what it wrote");
    status(
        &call(root, "PUT", "/abk/bob.txt", "tagging", &[], &tagging_body("by", "root")),
        200,
        "root tags bob's object",
    );
    let resp = call(root, "PUT", "/abk/bob.txt", "acl", &[("x-amz-acl", "public-read")], b"");
    status(&resp, 200, "root's PutObjectAcl of bob's object");
    let acl = acl_of(&call(root, "GET", "/abk/bob.txt", "acl", &[], b""), "GetObjectAcl");
    assert_eq!(acl.owner, w.bob_id, "root's PutObjectAcl keeps the owner: {acl:?}");
    assert_eq!(acl.grants, grants(&[(&w.bob_id, "FULL_CONTROL"), (ALL_USERS, "READ")]), "{acl:?}");
    let resp = call(root, "PUT", "/bbk", "acl", &[("x-amz-acl", "private")], b"");
    status(&resp, 200, "root's PutBucketAcl of bob's bucket");
    denied(&w.anon("GET", "/bbk?list-type=2", &[], b""), "bb is private now");
    let resp = call(root, "GET", "/abk/mp", &format!("uploadId={upload}"), &[], b"");
    status(&resp, 200, "root's ListParts of bob's upload");
    status(&call(root, "DELETE", "/abk/mp", &format!("uploadId={upload}"), &[], b""), 204, "root aborts bob's upload");
    status(&call(root, "DELETE", "/abk/bob.txt", "", &[], b""), 204, "root deletes bob's object");
    status(&call(root, "DELETE", "/bbk/anon.txt", "", &[], b""), 204, "root deletes the anonymous object");
    let copy = [("x-amz-copy-source", "/abk/alice.txt")];
    status(&call(root, "PUT", "/bbk/copied", "", &copy, b""), 200, "root copies from a denied source");
    bytes(&get(root, "/bbk/copied"), b"alice's", "root's copy");
    status(&call(root, "DELETE", "/abk", "policy", &[], b""), 204, "root's DeleteBucketPolicy");
    bytes(&get(&w.alice, "/abk/alice.txt"), b"alice's", "alice reads again");
    let resp = call(root, "PUT", "/abk", "policy", &[], deny_all.as_bytes());
    status(&resp, 204, "root's PutBucketPolicy");
    status(&call(root, "DELETE", "/abk", "policy", &[], b""), 204, "root's DeleteBucketPolicy");
}

// ---------------------------------------------------------------------------
// Where Tessera answers otherwise than S3 documents (found by the tests
// above; each test asserts S3's documented answer).
// ---------------------------------------------------------------------------

/// S3 (GetObject, "Permissions"): a requester without s3:ListBucket gets
/// 403 AccessDenied for a missing key, whatever allowed the read; only with
/// s3:ListBucket is it 404 NoSuchKey. docs/security.md promises the same.
#[test]
fn a_missing_key_is_access_denied_to_a_reader_who_may_not_list() {
    let w = world();
    w.create_bucket(&w.alice, "pol", &[]);
    w.put(&w.alice, "/pol/public/x", b"public", &[]);
    let policy = format!(
        r#"{{"Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pol/public/*"}},
        {{"Effect":"Allow","Principal":{{"AWS":"{}"}},"Action":"s3:GetObject","Resource":"arn:aws:s3:::pol/*"}}]}}"#,
        w.bob_id
    );
    status(&call(&w.alice, "PUT", "/pol", "policy", &[], policy.as_bytes()), 204, "PutBucketPolicy");
    bytes(&w.anon("GET", "/pol/public/x", &[], b""), b"public", "the policy lets anonymous read public/*");
    denied(&w.anon("GET", "/pol?list-type=2", &[], b""), "but not list");
    denied(&w.anon("GET", "/pol/public/missing", &[], b""), "anonymous GET of a missing key under the policy");
    status(&w.anon("HEAD", "/pol/public/missing", &[], b""), 403, "anonymous HEAD of a missing key under the policy");
    denied(&get(&w.bob, "/pol/missing"), "bob (GetObject by policy, no ListBucket), missing key");
}

/// docs/security.md: "Someone who may not list a bucket gets 403
/// AccessDenied, not 404 NoSuchKey, for a key that does not exist, so keys
/// cannot be probed." A copy source and PutObjectAcl's key reveal it.
#[test]
fn copies_and_put_object_acl_do_not_reveal_whether_a_key_exists() {
    let w = world();
    w.create_bucket(&w.alice, "src", &[]);
    w.put(&w.alice, "/src/exists", b"alice's", &[]);
    w.create_bucket(&w.bob, "dst", &[]);
    let upload = start_upload(&w.bob, "/dst/mp", &[]);
    let part1 = format!("partNumber=1&uploadId={upload}");
    for key in ["exists", "missing"] {
        let source = format!("/src/{key}");
        let resp = call(&w.bob, "PUT", "/dst/copy", "", &[("x-amz-copy-source", &source)], b"");
        denied(&resp, &format!("bob's CopyObject from {source}"));
        let resp = call(&w.bob, "PUT", "/dst/mp", &part1, &[("x-amz-copy-source", &source)], b"");
        denied(&resp, &format!("bob's UploadPartCopy from {source}"));
        let target = format!("/src/{key}?acl");
        denied(
            &w.anon("PUT", &target, &[("x-amz-acl", "public-read")], b""),
            &format!("anonymous PutObjectAcl {target}"),
        );
        let resp = call(&w.bob, "PUT", &format!("/src/{key}"), "acl", &[("x-amz-acl", "public-read")], b"");
        denied(&resp, &format!("bob's PutObjectAcl of /src/{key}"));
    }
}

/// PutObjectAcl resolves its grantees before it checks the requester's
/// permission: anyone, even anonymous, learns which e-mail addresses and
/// canonical ids are users from 400 (unknown) versus 403 (known). S3
/// refuses a requester without WRITE_ACP with 403 whatever the grants say.
#[test]
fn put_object_acl_refuses_a_requester_without_write_acp_before_resolving_grantees() {
    let w = world();
    w.create_bucket(&w.alice, "bkt", &[]);
    w.put(&w.alice, "/bkt/k", b"alice's", &[]);
    let known = format!("emailAddress=\"{BOB_EMAIL}\"");
    denied(&w.anon("PUT", "/bkt/k?acl", &[("x-amz-grant-read", &known)], b""), "a known e-mail");
    let unknown = "emailAddress=\"nobody@example.com\"";
    denied(&w.anon("PUT", "/bkt/k?acl", &[("x-amz-grant-read", unknown)], b""), "an unknown e-mail");
    let unknown_id = id_grant(&"0".repeat(64));
    denied(&w.anon("PUT", "/bkt/k?acl", &[("x-amz-grant-read", &unknown_id)], b""), "an unknown id");
    denied(&call(&w.carol, "PUT", "/bkt/k", "acl", &[("x-amz-grant-read", unknown)], b""), "carol, unknown e-mail");
    let doc = acl_doc(&w.alice_id, &[("nobody@example.com", "READ")]);
    denied(&call(&w.carol, "PUT", "/bkt/k", "acl", &[], doc.as_bytes()), "carol, a document with an unknown e-mail");
}

/// S3 "Multipart upload API and permissions", List Parts: "The initiator of
/// the multipart upload has the permission to list parts of the specific
/// multipart upload" -- bob, who may write to alice's bucket but not list
/// it, lists the parts of the upload he started.
#[test]
fn the_initiator_may_list_the_parts_of_its_own_upload() {
    let w = world();
    w.create_bucket(&w.alice, "mpu", &[]);
    let resp = call(&w.alice, "PUT", "/mpu", "acl", &[("x-amz-grant-write", &id_grant(&w.bob_id))], b"");
    status(&resp, 200, "WRITE to bob");
    let upload = start_upload(&w.bob, "/mpu/k", &[]);
    status(&call(&w.bob, "PUT", "/mpu/k", &format!("partNumber=1&uploadId={upload}"), &[], b"part"), 200, "part");
    let resp = call(&w.bob, "GET", "/mpu/k", &format!("uploadId={upload}"), &[], b"");
    assert_eq!((resp.status, resp.elements("PartNumber")), (200, vec!["1".to_string()]), "{}", resp.text());
}

/// S3 "Multipart upload API and permissions": "Only the initiator of a
/// multipart upload can upload parts" and "Only the initiator of a
/// multipart upload can complete that multipart upload"; the bucket's owner
/// may list and abort it. Tessera lets alice put her bytes into bob's upload
/// and complete it: the object then holds alice's bytes, is owned by bob, and
/// alice cannot read it.
#[test]
fn only_the_initiator_uploads_parts_to_and_completes_an_upload() {
    let w = world();
    w.create_bucket(&w.alice, "mpu", &[]);
    let resp = call(&w.alice, "PUT", "/mpu", "acl", &[("x-amz-grant-write", &id_grant(&w.bob_id))], b"");
    status(&resp, 200, "WRITE to bob");
    let upload = start_upload(&w.bob, "/mpu/k", &[]);
    let part1 = format!("partNumber=1&uploadId={upload}");
    let resp = call(&w.bob, "PUT", "/mpu/k", &part1, &[], b"bob's part");
    let etag = resp.header("etag").expect("etag").to_string();
    let part2 = format!("partNumber=2&uploadId={upload}");
    denied(&call(&w.alice, "PUT", "/mpu/k", &part2, &[], b"alice's part"), "alice's UploadPart to bob's upload");
    let only = format!("uploadId={upload}");
    let resp = call(&w.alice, "POST", "/mpu/k", &only, &[], complete_body(&[&etag]).as_bytes());
    denied(&resp, "alice completes bob's upload");
    // Bob may not list the bucket (WRITE only), so only its owner sees the 404.
    status(&call(&w.alice, "HEAD", "/mpu/k", "", &[], b""), 404, "no object");
}
