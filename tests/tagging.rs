//! Object and bucket tagging over the wire, against the real binary:
//! `x-amz-tagging` on PUT, CreateMultipartUpload and CopyObject, the
//! `?tagging` operations, S3's limits, and tags of one version.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

mod common;

use common::{Client, Req, Response, Server};

fn setup() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    assert_eq!(server.client().send(Req::new("PUT", "/bkt")).status, 200);
    (dir, server)
}

fn tagging_body(tags: &[(&str, &str)]) -> Vec<u8> {
    let tags: String = tags.iter().map(|(k, v)| format!("<Tag><Key>{k}</Key><Value>{v}</Value></Tag>")).collect();
    format!("<Tagging><TagSet>{tags}</TagSet></Tagging>").into_bytes()
}

/// The (key, value) pairs of a GetObjectTagging or GetBucketTagging answer, sorted.
fn tags_of(resp: &Response) -> Vec<(String, String)> {
    assert_eq!(resp.status, 200, "{}", resp.text());
    let mut tags: Vec<(String, String)> = resp.elements("Key").into_iter().zip(resp.elements("Value")).collect();
    tags.sort();
    tags
}

fn pairs(tags: &[(&str, &str)]) -> Vec<(String, String)> {
    tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn get_tags(c: &Client, path: &str) -> Vec<(String, String)> {
    tags_of(&c.send(Req::new("GET", path).query("tagging")))
}

#[test]
fn tags_sent_with_a_put_are_read_back_and_counted_on_head() {
    let (_dir, server) = setup();
    let c = server.client();
    let put = c.send(Req::new("PUT", "/bkt/k").header("x-amz-tagging", "a=1&b=two%20words").body(b"data"));
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(get_tags(&c, "/bkt/k"), pairs(&[("a", "1"), ("b", "two words")]));
    let head = c.send(Req::new("HEAD", "/bkt/k"));
    assert_eq!(head.header("x-amz-tagging-count"), Some("2"));
    let untagged = c.send(Req::new("PUT", "/bkt/plain").body(b"x"));
    assert_eq!(untagged.status, 200);
    assert_eq!(c.send(Req::new("GET", "/bkt/plain")).header("x-amz-tagging-count"), None);
    assert_eq!(get_tags(&c, "/bkt/plain"), Vec::new(), "an untagged object has an empty tag set");
}

#[test]
fn put_object_tagging_replaces_the_set_and_delete_empties_it() {
    let (_dir, server) = setup();
    let c = server.client();
    c.send(Req::new("PUT", "/bkt/k").header("x-amz-tagging", "old=1").body(b"data"));
    let etag = c.send(Req::new("HEAD", "/bkt/k")).header("etag").map(str::to_string);
    let body = tagging_body(&[("x", "1"), ("y", "2"), ("z", "3")]);
    let put = c.send(Req::new("PUT", "/bkt/k").query("tagging").body(&body));
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(get_tags(&c, "/bkt/k"), pairs(&[("x", "1"), ("y", "2"), ("z", "3")]));
    let head = c.send(Req::new("HEAD", "/bkt/k"));
    assert_eq!((head.header("x-amz-tagging-count"), head.header("etag").map(str::to_string)), (Some("3"), etag));
    let deleted = c.send(Req::new("DELETE", "/bkt/k").query("tagging"));
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    assert_eq!(get_tags(&c, "/bkt/k"), Vec::new());
    assert_eq!(c.send(Req::new("HEAD", "/bkt/k")).header("x-amz-tagging-count"), None);
    assert_eq!(c.send(Req::new("GET", "/bkt/k")).body, b"data", "tagging leaves the bytes alone");
}

#[test]
fn tag_sets_beyond_s3s_limits_are_refused_with_invalid_tag() {
    let (_dir, server) = setup();
    let c = server.client();
    c.send(Req::new("PUT", "/bkt/k").body(b"data"));
    let refused = |body: Vec<u8>| {
        let resp = c.send(Req::new("PUT", "/bkt/k").query("tagging").body(&body));
        (resp.status, resp.error_code())
    };
    let invalid = (400, Some("InvalidTag".to_string()));
    let eleven: Vec<(String, String)> = (0..11).map(|i| (format!("k{i}"), "v".to_string())).collect();
    let eleven: Vec<(&str, &str)> = eleven.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(refused(tagging_body(&eleven)), invalid, "11 tags");
    assert_eq!(refused(tagging_body(&eleven[..10])).0, 200, "10 tags are allowed");
    assert_eq!(refused(tagging_body(&[("d", "1"), ("d", "2")])), invalid, "a key twice");
    assert_eq!(refused(tagging_body(&[(&"k".repeat(129), "v")])), invalid, "a 129-character key");
    assert_eq!(refused(tagging_body(&[("k", &"v".repeat(257))])), invalid, "a 257-character value");
    assert_eq!(refused(tagging_body(&[(&"k".repeat(128), &"v".repeat(256))])).0, 200, "the longest allowed");
    let header = c.send(Req::new("PUT", "/bkt/h").header("x-amz-tagging", "a=1&a=2").body(b"x"));
    assert_eq!((header.status, header.error_code()), invalid, "x-amz-tagging with a key twice");
    assert_eq!(c.send(Req::new("GET", "/bkt/h")).status, 404, "the refused PUT stored nothing");
    assert_eq!(refused(b"<Tagging><TagSet><Tag>".to_vec()).0, 400, "malformed XML");
}

#[test]
fn copies_keep_their_sources_tags_unless_told_to_replace_them() {
    let (_dir, server) = setup();
    let c = server.client();
    c.send(Req::new("PUT", "/bkt/src").header("x-amz-tagging", "a=1").body(b"data"));
    let copy = c.send(Req::new("PUT", "/bkt/kept").header("x-amz-copy-source", "/bkt/src"));
    assert_eq!(copy.status, 200, "{}", copy.text());
    assert_eq!(get_tags(&c, "/bkt/kept"), pairs(&[("a", "1")]));
    let replaced = c.send(
        Req::new("PUT", "/bkt/replaced")
            .header("x-amz-copy-source", "/bkt/src")
            .header("x-amz-tagging-directive", "REPLACE")
            .header("x-amz-tagging", "c=3"),
    );
    assert_eq!(replaced.status, 200, "{}", replaced.text());
    assert_eq!(get_tags(&c, "/bkt/replaced"), pairs(&[("c", "3")]));
    let bad = c.send(
        Req::new("PUT", "/bkt/bad").header("x-amz-copy-source", "/bkt/src").header("x-amz-tagging-directive", "MOVE"),
    );
    assert_eq!((bad.status, bad.error_code().as_deref()), (400, Some("InvalidArgument")));
}

#[test]
fn a_multipart_upload_gets_the_tags_it_was_created_with() {
    let (_dir, server) = setup();
    let c = server.client();
    let created = c.send(Req::new("POST", "/bkt/mp").query("uploads").header("x-amz-tagging", "m=1"));
    let id = created.elements("UploadId").pop().expect("upload id");
    let part_query = format!("partNumber=1&uploadId={id}");
    let part = c.send(Req::new("PUT", "/bkt/mp").query(&part_query).body(b"part one"));
    let etag = part.header("etag").expect("etag").to_string();
    let complete = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
    );
    let done = c.send(Req::new("POST", "/bkt/mp").query(&format!("uploadId={id}")).body(complete.as_bytes()));
    assert_eq!(done.status, 200, "{}", done.text());
    assert_eq!(get_tags(&c, "/bkt/mp"), pairs(&[("m", "1")]));
}

#[test]
fn tagging_one_version_leaves_the_others_and_makes_no_new_version() {
    let (_dir, server) = setup();
    let c = server.client();
    let on = b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
    assert_eq!(c.send(Req::new("PUT", "/bkt").query("versioning").body(on)).status, 200);
    let v1 = c.send(Req::new("PUT", "/bkt/k").header("x-amz-tagging", "v=1").body(b"one"));
    let v1 = v1.header("x-amz-version-id").expect("version").to_string();
    c.send(Req::new("PUT", "/bkt/k").header("x-amz-tagging", "v=2").body(b"two"));
    let q = format!("tagging&versionId={v1}");
    let put = c.send(Req::new("PUT", "/bkt/k").query(&q).body(&tagging_body(&[("old", "yes")])));
    assert_eq!((put.status, put.header("x-amz-version-id")), (200, Some(v1.as_str())), "{}", put.text());
    assert_eq!(tags_of(&c.send(Req::new("GET", "/bkt/k").query(&q))), pairs(&[("old", "yes")]));
    assert_eq!(get_tags(&c, "/bkt/k"), pairs(&[("v", "2")]), "the current version keeps its tags");
    let versions = c.send(Req::new("GET", "/bkt").query("versions"));
    assert_eq!(versions.elements("VersionId").len(), 2, "no version was added: {}", versions.text());
    let marker = c.send(Req::new("DELETE", "/bkt/k"));
    assert_eq!(marker.header("x-amz-delete-marker"), Some("true"));
    let hidden = c.send(Req::new("GET", "/bkt/k").query("tagging"));
    assert_eq!((hidden.status, hidden.error_code().as_deref()), (404, Some("NoSuchKey")));
    let marker_id = marker.header("x-amz-version-id").expect("marker id");
    let of_marker = c.send(
        Req::new("PUT", "/bkt/k").query(&format!("tagging&versionId={marker_id}")).body(&tagging_body(&[("a", "b")])),
    );
    assert_eq!(of_marker.status, 405, "a delete marker has no tags: {}", of_marker.text());
}

#[test]
fn bucket_tags_are_put_read_and_deleted_and_missing_ones_are_no_such_tag_set() {
    let (_dir, server) = setup();
    let c = server.client();
    let none = c.send(Req::new("GET", "/bkt").query("tagging"));
    assert_eq!((none.status, none.error_code().as_deref()), (404, Some("NoSuchTagSet")));
    let put = c.send(Req::new("PUT", "/bkt").query("tagging").body(&tagging_body(&[("team", "storage")])));
    assert_eq!(put.status, 204, "{}", put.text());
    assert_eq!(get_tags(&c, "/bkt"), pairs(&[("team", "storage")]));
    assert_eq!(c.send(Req::new("DELETE", "/bkt").query("tagging")).status, 204);
    assert_eq!(c.send(Req::new("GET", "/bkt").query("tagging")).error_code().as_deref(), Some("NoSuchTagSet"));
    let missing = c.send(Req::new("PUT", "/bkt/missing").query("tagging").body(&tagging_body(&[("a", "b")])));
    assert_eq!((missing.status, missing.error_code().as_deref()), (404, Some("NoSuchKey")));
}
