//! Lifecycle expiry rules applied by the real server's background reaper,
//! with a lifecycle day shortened to two seconds (`--lifecycle-day 2s`):
//! Expiration by days with prefix, tag and size filters, current versions
//! hidden by delete markers on a versioned bucket, noncurrent versions
//! beyond the newest ones kept, and lone delete markers removed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

mod common;

use std::time::{Duration, Instant};

use common::{Client, Req, Server};

fn server(dir: &tempfile::TempDir) -> Server {
    let server = Server::start_with(dir.path(), &["--lifecycle-day", "2s"]);
    assert_eq!(server.client().send(Req::new("PUT", "/bkt")).status, 200);
    server
}

fn put_lifecycle(c: &Client, rules: &str) {
    let body = format!("<LifecycleConfiguration>{rules}</LifecycleConfiguration>");
    let resp = c.send(Req::new("PUT", "/bkt").query("lifecycle").body(body.as_bytes()));
    assert_eq!(resp.status, 200, "PutBucketLifecycleConfiguration: {}", resp.text());
}

/// Waits (at most 20 lifecycle days) until `done` holds.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(40);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not done after 40 s");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn status(c: &Client, path: &str) -> u16 {
    c.send(Req::new("HEAD", path)).status
}

/// (key, version id, is a delete marker) of every version, in listing order.
fn versions(c: &Client) -> Vec<(String, String, bool)> {
    let text = c.send(Req::new("GET", "/bkt").query("versions")).text();
    let field = |entry: &str, name: &str| {
        let open = format!("<{name}>");
        entry.split(&open).nth(1).and_then(|s| s.split('<').next()).unwrap_or_default().to_string()
    };
    let mut out = Vec::new();
    for (i, _) in text.match_indices('<') {
        let rest = &text[i..];
        let marker = rest.starts_with("<DeleteMarker>");
        if marker || rest.starts_with("<Version>") {
            let entry = rest.split(if marker { "</DeleteMarker>" } else { "</Version>" }).next().unwrap_or_default();
            out.push((field(entry, "Key"), field(entry, "VersionId"), marker));
        }
    }
    out
}

#[test]
fn expiration_days_removes_only_the_objects_its_filter_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(&dir);
    let c = server.client();
    c.send(Req::new("PUT", "/bkt/logs/tagged").header("x-amz-tagging", "t=1").body(b"0123456789"));
    c.send(Req::new("PUT", "/bkt/logs/untagged").body(b"0123456789"));
    c.send(Req::new("PUT", "/bkt/logs/small").header("x-amz-tagging", "t=1").body(b"0"));
    c.send(Req::new("PUT", "/bkt/keep/tagged").header("x-amz-tagging", "t=1").body(b"0123456789"));
    put_lifecycle(
        &c,
        "<Rule><ID>logs</ID><Status>Enabled</Status><Filter><And><Prefix>logs/</Prefix>\
         <Tag><Key>t</Key><Value>1</Value></Tag><ObjectSizeGreaterThan>5</ObjectSizeGreaterThan></And></Filter>\
         <Expiration><Days>1</Days></Expiration></Rule>",
    );
    eventually("logs/tagged expires", || status(&c, "/bkt/logs/tagged") == 404);
    // Two more lifecycle days: what the filter does not name stays.
    std::thread::sleep(Duration::from_secs(4));
    for kept in ["/bkt/logs/untagged", "/bkt/logs/small", "/bkt/keep/tagged"] {
        assert_eq!(status(&c, kept), 200, "{kept} does not match the rule");
    }
}

#[test]
fn on_a_versioned_bucket_rules_write_markers_and_trim_old_versions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(&dir);
    let c = server.client();
    let on = b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
    assert_eq!(c.send(Req::new("PUT", "/bkt").query("versioning").body(on)).status, 200);
    for body in [b"cur", b"c2!"] {
        c.send(Req::new("PUT", "/bkt/cur/k").body(body));
    }
    for body in [b"v1", b"v2", b"v3"] {
        c.send(Req::new("PUT", "/bkt/nc/k").body(body));
    }
    let lone = c.send(Req::new("DELETE", "/bkt/dm/gone"));
    assert_eq!(lone.header("x-amz-delete-marker"), Some("true"), "a marker with no version behind it");
    put_lifecycle(
        &c,
        "<Rule><Status>Enabled</Status><Filter><Prefix>cur/</Prefix></Filter><Expiration><Days>1</Days></Expiration></Rule>\
         <Rule><Status>Enabled</Status><Filter><Prefix>nc/</Prefix></Filter><NoncurrentVersionExpiration>\
         <NoncurrentDays>1</NoncurrentDays><NewerNoncurrentVersions>1</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule>\
         <Rule><Status>Enabled</Status><Filter><Prefix>dm/</Prefix></Filter>\
         <Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>",
    );
    let of = |key: &str| versions(&c).into_iter().filter(|(k, _, _)| k == key).map(|(_, _, m)| m).collect::<Vec<_>>();
    eventually("cur/k gets a delete marker", || of("cur/k") == vec![true, false, false]);
    eventually("nc/k keeps its current and one noncurrent version", || of("nc/k").len() == 2);
    eventually("the lone marker dm/gone is removed", || of("dm/gone").is_empty());
    assert_eq!(c.send(Req::new("GET", "/bkt/nc/k")).body, b"v3");
    let listed = versions(&c);
    let nc: Vec<&(String, String, bool)> = listed.iter().filter(|(k, _, _)| k == "nc/k").collect();
    let second = c.send(Req::new("GET", "/bkt/nc/k").query(&format!("versionId={}", nc[1].1)));
    assert_eq!(second.body, b"v2", "the newest noncurrent version is the one kept");
    let hidden = c.send(Req::new("GET", "/bkt/cur/k"));
    assert_eq!((hidden.status, hidden.header("x-amz-delete-marker")), (404, Some("true")));
}
