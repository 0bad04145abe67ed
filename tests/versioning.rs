//! S3 bucket versioning over the wire, against the real binary:
//! Put/GetBucketVersioning, version ids on PUT/GET/HEAD/DELETE, delete
//! markers, ListObjectVersions, Suspended buckets, DeleteObjects and
//! CopyObject by version, and the blob files versions share.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

mod common;

use base64::Engine;
use common::{blob_files, pattern, Client, Req, Response, Server};
use md5::{Digest, Md5};

/// A server with an empty, never versioned bucket `bkt`.
fn setup() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    assert_eq!(server.client().send(Req::new("PUT", "/bkt")).status, 200);
    (dir, server)
}

/// A server whose bucket `bkt` has versioning Enabled.
fn versioned() -> (tempfile::TempDir, Server) {
    let (dir, server) = setup();
    set_versioning(&server.client(), "Enabled");
    (dir, server)
}

/// A version id or marker for a query string.
fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn code(resp: &Response) -> String {
    resp.error_code().unwrap_or_else(|| format!("<no code, status {}>", resp.status))
}

fn content_md5(body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(body))
}

fn versioning_xml(inner: &str) -> String {
    format!(
        "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{inner}</VersioningConfiguration>"
    )
}

/// PutBucketVersioning of `bkt` with the raw `body`.
fn put_versioning(c: &Client, body: &str) -> Response {
    let req = Req::new("PUT", "/bkt").query("versioning").header("content-md5", content_md5(body.as_bytes()));
    c.send(req.body(body.as_bytes()))
}

fn set_versioning(c: &Client, status: &str) {
    let resp = put_versioning(c, &versioning_xml(&format!("<Status>{status}</Status>")));
    assert_eq!(resp.status, 200, "PutBucketVersioning {status}: {}", resp.text());
}

/// The `<Status>` elements of GetBucketVersioning of `bkt`.
fn versioning_status(c: &Client) -> Vec<String> {
    let resp = c.send(Req::new("GET", "/bkt").query("versioning"));
    assert_eq!(resp.status, 200, "GetBucketVersioning: {}", resp.text());
    resp.elements("Status")
}

/// PUT `body` at `path`; returns the `x-amz-version-id` it answered.
fn put_version(c: &Client, path: &str, body: &[u8]) -> String {
    let resp = c.send(Req::new("PUT", path).body(body));
    assert_eq!(resp.status, 200, "PUT {path}: {}", resp.text());
    resp.header("x-amz-version-id").expect("a PUT to a versioned bucket answers x-amz-version-id").to_string()
}

/// PUT `body` at `path`; returns the `x-amz-version-id` it answered, if any.
fn put_unversioned(c: &Client, path: &str, body: &[u8]) -> Option<String> {
    let resp = c.send(Req::new("PUT", path).body(body));
    assert_eq!(resp.status, 200, "PUT {path}: {}", resp.text());
    resp.header("x-amz-version-id").map(str::to_string)
}

/// `method path?versionId=version` (the id percent-encoded).
fn at_version(c: &Client, method: &str, path: &str, version: &str) -> Response {
    let query = format!("versionId={}", enc(version));
    c.send(Req::new(method, path).query(&query))
}

/// DELETE without a version id; returns the delete marker's version id.
fn delete_to_marker(c: &Client, path: &str) -> String {
    let resp = c.send(Req::new("DELETE", path));
    assert_eq!(resp.status, 204, "DELETE {path}: {}", resp.text());
    assert_eq!(resp.header("x-amz-delete-marker"), Some("true"), "DELETE {path} writes a delete marker");
    resp.header("x-amz-version-id").expect("the delete marker's version id").to_string()
}

/// DeleteObjects on `bkt` with `objects` (the `<Object>` elements).
fn delete_objects(c: &Client, objects: &str) -> Response {
    let xml = format!("<Delete>{objects}</Delete>");
    let req = Req::new("POST", "/bkt").query("delete").header("content-md5", content_md5(xml.as_bytes()));
    let resp = c.send(req.body(xml.as_bytes()));
    assert_eq!(resp.status, 200, "DeleteObjects: {}", resp.text());
    resp
}

/// The text of the first `<name>` element inside `block`.
fn child(block: &str, name: &str) -> Option<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let start = block.find(&open)? + open.len();
    let len = block[start..].find(&close)?;
    Some(block[start..start + len].to_string())
}

/// One `<Version>` or `<DeleteMarker>` of a ListVersionsResult.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    marker: bool,
    key: String,
    version: String,
    latest: bool,
}

fn version(key: &str, version: &str, latest: bool) -> Listed {
    Listed { marker: false, key: key.into(), version: version.into(), latest }
}

fn marker(key: &str, version: &str, latest: bool) -> Listed {
    Listed { marker: true, key: key.into(), version: version.into(), latest }
}

/// The versions and delete markers of a ListVersionsResult, in order.
fn listed(resp: &Response) -> Vec<Listed> {
    let text = resp.text();
    let mut rest = text.as_str();
    let mut out = Vec::new();
    loop {
        let (at, is_marker) = match (rest.find("<Version>"), rest.find("<DeleteMarker>")) {
            (Some(v), Some(m)) if m < v => (m, true),
            (Some(v), _) => (v, false),
            (None, Some(m)) => (m, true),
            (None, None) => return out,
        };
        let close = if is_marker { "</DeleteMarker>" } else { "</Version>" };
        let from = &rest[at..];
        let end = from.find(close).expect("a closed entry");
        let block = &from[..end];
        out.push(Listed {
            marker: is_marker,
            key: child(block, "Key").unwrap_or_default(),
            version: child(block, "VersionId").unwrap_or_default(),
            latest: child(block, "IsLatest").as_deref() == Some("true"),
        });
        rest = &from[end + close.len()..];
    }
}

/// ListObjectVersions of `bkt` with `extra` query parameters (raw).
fn list_versions(c: &Client, extra: &str) -> Response {
    let query = if extra.is_empty() { "versions".to_string() } else { format!("versions&{extra}") };
    let resp = c.send(Req::new("GET", "/bkt").query(&query));
    assert_eq!(resp.status, 200, "ListObjectVersions ?{query}: {}", resp.text());
    resp
}

#[test]
fn a_fresh_bucket_has_no_versioning_status_until_one_is_set() {
    let (_dir, server) = setup();
    let c = server.client();
    assert!(versioning_status(&c).is_empty(), "a bucket that never had versioning has no <Status>");
    set_versioning(&c, "Enabled");
    assert_eq!(versioning_status(&c), vec!["Enabled"]);
    set_versioning(&c, "Suspended");
    assert_eq!(versioning_status(&c), vec!["Suspended"]);
}

#[test]
fn enabling_mfa_delete_is_not_implemented_and_changes_nothing() {
    let (_dir, server) = setup();
    let c = server.client();
    let resp = put_versioning(&c, &versioning_xml("<Status>Enabled</Status><MfaDelete>Enabled</MfaDelete>"));
    assert_eq!((resp.status, code(&resp)), (501, "NotImplemented".into()));
    assert!(versioning_status(&c).is_empty(), "the refused configuration was not applied");
}

#[test]
fn a_malformed_or_unknown_versioning_configuration_is_refused() {
    let (_dir, server) = setup();
    let c = server.client();
    let resp = put_versioning(&c, "<VersioningConfiguration><Status>Enabled</Status>");
    assert_eq!((resp.status, code(&resp)), (400, "MalformedXML".into()), "an unclosed document");
    let resp = put_versioning(&c, &versioning_xml("<Status>Sometimes</Status>"));
    assert_eq!(resp.status, 400, "a Status other than Enabled or Suspended: {}", resp.text());
    assert!(versioning_status(&c).is_empty(), "neither was applied");
}

#[test]
fn each_put_gets_its_own_version_id_and_every_version_stays_readable() {
    let (_dir, server) = versioned();
    let c = server.client();
    let bodies: [&[u8]; 3] = [b"first", b"second", b"third"];
    let ids: Vec<String> = bodies.iter().map(|body| put_version(&c, "/bkt/k", body)).collect();
    assert!(ids.iter().all(|id| !id.is_empty() && id != "null"), "real version ids: {ids:?}");
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2], "distinct version ids: {ids:?}");
    for (id, body) in ids.iter().zip(bodies) {
        let got = at_version(&c, "GET", "/bkt/k", id);
        assert_eq!((got.status, got.body.as_slice()), (200, body), "GET ?versionId={id}");
        assert_eq!(got.header("x-amz-version-id"), Some(id.as_str()));
        let head = at_version(&c, "HEAD", "/bkt/k", id);
        assert_eq!(head.status, 200, "HEAD ?versionId={id}");
        assert_eq!(head.header("x-amz-version-id"), Some(id.as_str()));
        assert_eq!(head.header("content-length"), Some(body.len().to_string().as_str()));
    }
    let latest = c.send(Req::new("GET", "/bkt/k"));
    assert_eq!(latest.body, b"third", "a GET without versionId reads the newest version");
    assert_eq!(latest.header("x-amz-version-id"), Some(ids[2].as_str()));
}

#[test]
fn an_object_written_before_versioning_is_the_null_version() {
    let (_dir, server) = setup();
    let c = server.client();
    assert_eq!(c.send(Req::new("PUT", "/bkt/k").body(b"old")).status, 200);
    set_versioning(&c, "Enabled");
    let got = c.send(Req::new("GET", "/bkt/k"));
    assert_eq!((got.body.as_slice(), got.header("x-amz-version-id")), (&b"old"[..], Some("null")));
    assert_eq!(c.send(Req::new("HEAD", "/bkt/k")).header("x-amz-version-id"), Some("null"));

    let new = put_version(&c, "/bkt/k", b"new");
    assert_ne!(new, "null", "a PUT to an Enabled bucket makes a real version");
    let null = at_version(&c, "GET", "/bkt/k", "null");
    assert_eq!((null.status, null.body.as_slice()), (200, &b"old"[..]), "?versionId=null still reads the old bytes");
    assert_eq!(null.header("x-amz-version-id"), Some("null"));
    assert_eq!(at_version(&c, "HEAD", "/bkt/k", "null").header("x-amz-version-id"), Some("null"));
}

#[test]
fn a_delete_without_version_id_writes_a_marker_and_hides_the_key() {
    let (_dir, server) = versioned();
    let c = server.client();
    let v1 = put_version(&c, "/bkt/k", b"one");
    let dm = delete_to_marker(&c, "/bkt/k");
    assert_ne!(dm, v1, "the marker is a new version");
    let got = c.send(Req::new("GET", "/bkt/k"));
    assert_eq!((got.status, code(&got)), (404, "NoSuchKey".into()));
    assert_eq!(got.header("x-amz-delete-marker"), Some("true"));
    let head = c.send(Req::new("HEAD", "/bkt/k"));
    assert_eq!((head.status, head.header("x-amz-delete-marker")), (404, Some("true")));
    assert_eq!(at_version(&c, "GET", "/bkt/k", &v1).body, b"one", "the hidden version is still there");
    let listed_v2 = c.send(Req::new("GET", "/bkt").query("list-type=2"));
    assert!(listed_v2.elements("Key").is_empty(), "ListObjectsV2 hides the key: {}", listed_v2.text());
}

#[test]
fn reading_a_delete_marker_by_version_id_is_method_not_allowed() {
    let (_dir, server) = versioned();
    let c = server.client();
    put_version(&c, "/bkt/k", b"one");
    let dm = delete_to_marker(&c, "/bkt/k");
    let got = at_version(&c, "GET", "/bkt/k", &dm);
    assert_eq!((got.status, code(&got)), (405, "MethodNotAllowed".into()));
    assert_eq!(got.header("x-amz-delete-marker"), Some("true"));
    let head = at_version(&c, "HEAD", "/bkt/k", &dm);
    assert_eq!((head.status, head.header("x-amz-delete-marker")), (405, Some("true")));
}

#[test]
fn deleting_the_delete_marker_by_version_id_brings_the_previous_version_back() {
    let (_dir, server) = versioned();
    let c = server.client();
    let v1 = put_version(&c, "/bkt/k", b"one");
    let dm = delete_to_marker(&c, "/bkt/k");
    let resp = at_version(&c, "DELETE", "/bkt/k", &dm);
    assert_eq!(resp.status, 204, "{}", resp.text());
    assert_eq!(resp.header("x-amz-delete-marker"), Some("true"), "the version deleted was a marker");
    assert_eq!(resp.header("x-amz-version-id"), Some(dm.as_str()));
    let got = c.send(Req::new("GET", "/bkt/k"));
    assert_eq!((got.status, got.body.as_slice()), (200, &b"one"[..]));
    assert_eq!(got.header("x-amz-version-id"), Some(v1.as_str()));
}

#[test]
fn deleting_the_current_version_by_id_removes_it_for_good_and_the_previous_one_becomes_current() {
    let (_dir, server) = versioned();
    let c = server.client();
    let v1 = put_version(&c, "/bkt/k", b"one");
    let v2 = put_version(&c, "/bkt/k", b"two");
    let resp = at_version(&c, "DELETE", "/bkt/k", &v2);
    assert_eq!(resp.status, 204, "{}", resp.text());
    assert_eq!(resp.header("x-amz-version-id"), Some(v2.as_str()));
    assert_ne!(resp.header("x-amz-delete-marker"), Some("true"), "no marker is written");
    let got = c.send(Req::new("GET", "/bkt/k"));
    assert_eq!((got.status, got.body.as_slice()), (200, &b"one"[..]));
    assert_eq!(got.header("x-amz-version-id"), Some(v1.as_str()));
    let gone = at_version(&c, "GET", "/bkt/k", &v2);
    assert_eq!((gone.status, code(&gone)), (404, "NoSuchVersion".into()));
    assert_eq!(listed(&list_versions(&c, "")), vec![version("k", &v1, true)]);
}

#[test]
fn deleting_an_unknown_version_of_an_existing_key_succeeds_and_changes_nothing() {
    let (_dir, server) = versioned();
    let c = server.client();
    let va = put_version(&c, "/bkt/a", b"a");
    let vb = put_version(&c, "/bkt/b", b"b");
    let resp = at_version(&c, "DELETE", "/bkt/a", &vb);
    assert_eq!(resp.status, 204, "{}", resp.text());
    assert_eq!(c.send(Req::new("GET", "/bkt/a")).body, b"a");
    assert_eq!(at_version(&c, "GET", "/bkt/b", &vb).body, b"b", "b's version was not touched");
    assert_eq!(listed(&list_versions(&c, "")), vec![version("a", &va, true), version("b", &vb, true)]);
}

#[test]
fn a_malformed_version_id_is_invalid_and_an_unknown_one_is_no_such_version() {
    let (_dir, server) = versioned();
    let c = server.client();
    put_version(&c, "/bkt/a", b"a");
    let vb = put_version(&c, "/bkt/b", b"b");
    let resp = c.send(Req::new("GET", "/bkt/a").query("versionId=zz%20"));
    assert_eq!((resp.status, code(&resp)), (400, "InvalidArgument".into()));
    let resp = at_version(&c, "GET", "/bkt/a", &vb);
    assert_eq!((resp.status, code(&resp)), (404, "NoSuchVersion".into()), "b's version id is no version of a");
    assert_eq!(at_version(&c, "HEAD", "/bkt/a", &vb).status, 404);
}

#[test]
fn listing_versions_orders_keys_ascending_and_each_key_newest_first() {
    let (_dir, server) = versioned();
    let c = server.client();
    let a1 = put_version(&c, "/bkt/a", b"a1");
    let b1 = put_version(&c, "/bkt/b", b"b1");
    let a2 = put_version(&c, "/bkt/a", b"a2");
    let c1 = put_version(&c, "/bkt/c", b"c1");
    let a_dm = delete_to_marker(&c, "/bkt/a");
    let resp = list_versions(&c, "");
    assert!(resp.text().contains("<ListVersionsResult"), "{}", resp.text());
    assert_eq!(resp.elements("IsTruncated"), vec!["false"]);
    assert_eq!(
        listed(&resp),
        vec![
            marker("a", &a_dm, true),
            version("a", &a2, false),
            version("a", &a1, false),
            version("b", &b1, true),
            version("c", &c1, true),
        ],
        "{}",
        resp.text()
    );
}

#[test]
fn listing_versions_honours_prefix_and_delimiter() {
    let (_dir, server) = versioned();
    let c = server.client();
    let x1 = put_version(&c, "/bkt/dir/x", b"x1");
    let x2 = put_version(&c, "/bkt/dir/x", b"x2");
    put_version(&c, "/bkt/dir/y", b"y1");
    let y_dm = delete_to_marker(&c, "/bkt/dir/y");
    let top = put_version(&c, "/bkt/top", b"t");

    let by_prefix = listed(&list_versions(&c, "prefix=dir%2Fx"));
    assert_eq!(by_prefix, vec![version("dir/x", &x2, true), version("dir/x", &x1, false)]);
    let under_dir = listed(&list_versions(&c, "prefix=dir%2F"));
    assert_eq!(under_dir.len(), 4, "{under_dir:?}");
    assert!(under_dir.contains(&marker("dir/y", &y_dm, true)), "{under_dir:?}");

    let rolled = list_versions(&c, "delimiter=%2F");
    assert_eq!(listed(&rolled), vec![version("top", &top, true)], "{}", rolled.text());
    let prefixes: Vec<Option<String>> = rolled.elements("CommonPrefixes").iter().map(|p| child(p, "Prefix")).collect();
    assert_eq!(prefixes, vec![Some("dir/".to_string())], "{}", rolled.text());
}

#[test]
fn paging_versions_one_at_a_time_yields_the_same_sequence_as_one_listing() {
    let (_dir, server) = setup();
    let c = server.client();
    assert_eq!(c.send(Req::new("PUT", "/bkt/a").body(b"null")).status, 200);
    set_versioning(&c, "Enabled");
    put_version(&c, "/bkt/a", b"a1");
    put_version(&c, "/bkt/b", b"b1");
    put_version(&c, "/bkt/b", b"b2");
    delete_to_marker(&c, "/bkt/b");
    put_version(&c, "/bkt/c", b"c1");

    let whole = list_versions(&c, "");
    let all = listed(&whole);
    assert_eq!(all.len(), 6, "{}", whole.text());
    assert!(all.iter().any(|v| v.key == "a" && v.version == "null" && !v.latest), "{all:?}");

    let mut paged = Vec::new();
    let mut query = "max-keys=1".to_string();
    for _ in 0..all.len() + 2 {
        let page = list_versions(&c, &query);
        let entries = listed(&page);
        assert_eq!(entries.len(), 1, "max-keys=1 gives one entry: {}", page.text());
        paged.extend(entries);
        if page.elements("IsTruncated") == vec!["false"] {
            break;
        }
        assert_eq!(page.elements("IsTruncated"), vec!["true"], "{}", page.text());
        let next_key = child(&page.text(), "NextKeyMarker").expect("a truncated page has NextKeyMarker");
        let next_version = child(&page.text(), "NextVersionIdMarker").expect("and NextVersionIdMarker");
        query = format!("max-keys=1&key-marker={}&version-id-marker={}", enc(&next_key), enc(&next_version));
    }
    assert_eq!(paged, all, "max-keys=1 pages following the Next markers");
}

#[test]
fn list_objects_shows_one_entry_per_key_and_skips_keys_whose_latest_version_is_a_marker() {
    let (_dir, server) = versioned();
    let c = server.client();
    put_version(&c, "/bkt/a", b"a1");
    put_version(&c, "/bkt/a", b"a2");
    put_version(&c, "/bkt/b", b"b1");
    delete_to_marker(&c, "/bkt/b");
    let v2 = c.send(Req::new("GET", "/bkt").query("list-type=2"));
    assert_eq!(v2.elements("Key"), vec!["a"], "{}", v2.text());
    assert_eq!(v2.elements("Size"), vec!["2"]);
    assert_eq!(v2.elements("KeyCount"), vec!["1"]);
    let v1 = c.send(Req::new("GET", "/bkt"));
    assert_eq!(v1.elements("Key"), vec!["a"], "ListObjects (v1) too: {}", v1.text());
}

#[test]
fn suspended_versioning_writes_null_versions_that_replace_each_other() {
    let (_dir, server) = versioned();
    let c = server.client();
    let v1 = put_version(&c, "/bkt/k", b"real");
    set_versioning(&c, "Suspended");
    // AWS answers a PUT to a suspended bucket without x-amz-version-id
    // (its PutObject "versioning suspended" example); reads then say `null`.
    assert_eq!(put_unversioned(&c, "/bkt/k", b"first null"), None);
    assert_eq!(put_unversioned(&c, "/bkt/k", b"second null"), None);
    let null = at_version(&c, "GET", "/bkt/k", "null");
    assert_eq!((null.status, null.body.as_slice()), (200, &b"second null"[..]), "the second replaced the first");
    let got = c.send(Req::new("GET", "/bkt/k"));
    assert_eq!((got.body.as_slice(), got.header("x-amz-version-id")), (&b"second null"[..], Some("null")));
    assert_eq!(at_version(&c, "GET", "/bkt/k", &v1).body, b"real", "the version written while Enabled stays");
    assert_eq!(listed(&list_versions(&c, "")), vec![version("k", "null", true), version("k", &v1, false)]);
}

#[test]
fn a_delete_on_a_suspended_bucket_writes_a_null_marker_over_the_null_version() {
    let (_dir, server) = versioned();
    let c = server.client();
    let v1 = put_version(&c, "/bkt/k", b"real");
    set_versioning(&c, "Suspended");
    assert_eq!(put_unversioned(&c, "/bkt/k", b"null body"), None);
    assert_eq!(delete_to_marker(&c, "/bkt/k"), "null", "the marker is the null version");
    let null = at_version(&c, "GET", "/bkt/k", "null");
    assert_eq!(null.status, 405, "?versionId=null is now the marker: {}", null.text());
    assert_eq!(listed(&list_versions(&c, "")), vec![marker("k", "null", true), version("k", &v1, false)]);
}

#[test]
fn delete_objects_echoes_version_ids_and_reports_new_delete_markers() {
    let (_dir, server) = versioned();
    let c = server.client();
    let a1 = put_version(&c, "/bkt/a", b"a1");
    let a2 = put_version(&c, "/bkt/a", b"a2");
    put_version(&c, "/bkt/b", b"b1");
    let resp = delete_objects(
        &c,
        &format!("<Object><Key>a</Key><VersionId>{a1}</VersionId></Object><Object><Key>b</Key></Object>"),
    );
    let deleted = resp.elements("Deleted");
    assert_eq!(deleted.len(), 2, "{}", resp.text());
    assert!(resp.elements("Error").is_empty(), "{}", resp.text());
    let entry = |key: &str| {
        deleted.iter().find(|d| child(d, "Key").as_deref() == Some(key)).cloned().expect("a <Deleted> per key")
    };
    assert_eq!(child(&entry("a"), "VersionId"), Some(a1.clone()), "the version id is echoed");
    assert_ne!(child(&entry("a"), "DeleteMarker").as_deref(), Some("true"));
    assert_eq!(child(&entry("b"), "DeleteMarker").as_deref(), Some("true"), "{}", resp.text());
    let b_dm = child(&entry("b"), "DeleteMarkerVersionId").expect("the new marker's version id");

    let gone = at_version(&c, "GET", "/bkt/a", &a1);
    assert_eq!((gone.status, code(&gone)), (404, "NoSuchVersion".into()));
    let a = c.send(Req::new("GET", "/bkt/a"));
    assert_eq!((a.body.as_slice(), a.header("x-amz-version-id")), (&b"a2"[..], Some(a2.as_str())));
    assert_eq!(c.send(Req::new("GET", "/bkt/b")).header("x-amz-delete-marker"), Some("true"));
    assert_eq!(at_version(&c, "GET", "/bkt/b", &b_dm).status, 405, "b's latest version is the reported marker");
}

#[test]
fn copying_an_old_version_copies_its_bytes_and_reports_both_version_ids() {
    let (_dir, server) = versioned();
    let c = server.client();
    let s1 = put_version(&c, "/bkt/src", b"one");
    let s2 = put_version(&c, "/bkt/src", b"two");
    let copy = c.send(Req::new("PUT", "/bkt/dst").header("x-amz-copy-source", format!("/bkt/src?versionId={s1}")));
    assert_eq!(copy.status, 200, "{}", copy.text());
    assert_eq!(copy.header("x-amz-copy-source-version-id"), Some(s1.as_str()));
    let new = copy.header("x-amz-version-id").expect("the copy's own version id").to_string();
    assert!(new != s1 && new != s2 && new != "null", "a new version: {new}");
    let got = c.send(Req::new("GET", "/bkt/dst"));
    assert_eq!((got.body.as_slice(), got.header("x-amz-version-id")), (&b"one"[..], Some(new.as_str())));
}

#[test]
fn a_bucket_holding_only_old_versions_or_markers_is_not_empty() {
    let (_dir, server) = versioned();
    let c = server.client();
    let v1 = put_version(&c, "/bkt/k", b"one");
    let dm = delete_to_marker(&c, "/bkt/k");
    let resp = c.send(Req::new("DELETE", "/bkt"));
    assert_eq!((resp.status, code(&resp)), (409, "BucketNotEmpty".into()), "a noncurrent version and a marker");
    assert_eq!(at_version(&c, "DELETE", "/bkt/k", &v1).status, 204);
    let resp = c.send(Req::new("DELETE", "/bkt"));
    assert_eq!((resp.status, code(&resp)), (409, "BucketNotEmpty".into()), "a lone delete marker");
    assert_eq!(at_version(&c, "DELETE", "/bkt/k", &dm).status, 204);
    let resp = c.send(Req::new("DELETE", "/bkt"));
    assert_eq!(resp.status, 204, "every version deleted by id: {}", resp.text());
}

#[test]
fn versions_keep_their_blob_files_until_each_is_deleted_by_id() {
    let (_dir, server) = versioned();
    let c = server.client();
    let before = blob_files(&server.data);
    let ids: Vec<String> = (0..3).map(|i| put_version(&c, "/bkt/big", &pattern(200 * 1024, 40 + i))).collect();
    assert_eq!(blob_files(&server.data), before + 3, "one blob file per version");
    let dm = delete_to_marker(&c, "/bkt/big");
    assert_eq!(blob_files(&server.data), before + 3, "a delete marker frees no blob file");
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(at_version(&c, "GET", "/bkt/big", id).body, pattern(200 * 1024, 40 + i as u64));
    }
    for (deleted, id) in ids.iter().enumerate() {
        assert_eq!(at_version(&c, "DELETE", "/bkt/big", id).status, 204);
        let expected = before + 2 - deleted;
        common::wait_for_blob_files(&server.data, expected);
    }
    assert_eq!(at_version(&c, "DELETE", "/bkt/big", &dm).status, 204);
    assert_eq!(blob_files(&server.data), before);
}

#[test]
fn an_unversioned_bucket_has_no_version_ids_and_lists_each_object_once_as_null() {
    let (_dir, server) = setup();
    let c = server.client();
    for (path, body) in [("/bkt/a", &b"a1"[..]), ("/bkt/a", &b"a2"[..]), ("/bkt/b", &b"b"[..]), ("/bkt/c", &b"c"[..])] {
        let put = c.send(Req::new("PUT", path).body(body));
        assert_eq!((put.status, put.header("x-amz-version-id")), (200, None), "PUT {path}");
    }
    assert_eq!(c.send(Req::new("GET", "/bkt/a")).header("x-amz-version-id"), None);
    assert_eq!(c.send(Req::new("HEAD", "/bkt/a")).header("x-amz-version-id"), None);
    let deleted = c.send(Req::new("DELETE", "/bkt/c"));
    assert_eq!((deleted.status, deleted.header("x-amz-delete-marker")), (204, None), "a delete writes no marker");
    assert_eq!(listed(&list_versions(&c, "")), vec![version("a", "null", true), version("b", "null", true)]);
}

#[test]
fn conditional_writes_on_a_versioned_bucket_look_at_the_latest_version() {
    let (_dir, server) = versioned();
    let c = server.client();
    let first = c.send(Req::new("PUT", "/bkt/k").body(b"one"));
    let old_etag = first.header("etag").expect("etag").to_string();
    let second = c.send(Req::new("PUT", "/bkt/k").body(b"two"));
    let etag = second.header("etag").expect("etag").to_string();
    let stale = c.send(Req::new("PUT", "/bkt/k").header("if-match", old_etag.as_str()).body(b"three"));
    assert_eq!(stale.status, 412, "If-Match names an older version: {}", stale.text());
    let current = c.send(Req::new("PUT", "/bkt/k").header("if-match", etag.as_str()).body(b"three"));
    assert_eq!(current.status, 200, "If-Match of the latest version: {}", current.text());
    let exists = c.send(Req::new("PUT", "/bkt/k").header("if-none-match", "*").body(b"four"));
    assert_eq!(exists.status, 412, "If-None-Match: * while a version is current");
    delete_to_marker(&c, "/bkt/k");
    let after_marker = c.send(Req::new("PUT", "/bkt/k").header("if-none-match", "*").body(b"five"));
    assert_eq!(after_marker.status, 200, "a delete marker counts as no object: {}", after_marker.text());
    let versions = c.send(Req::new("GET", "/bkt").query("versions"));
    assert_eq!(versions.elements("VersionId").len(), 5, "three objects, a marker, and the new one");
}
