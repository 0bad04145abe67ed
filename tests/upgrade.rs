//! Data folders written by earlier versions keep working: small bodies
//! stored as rows of `inline_blobs_v1` (before the pack, `store/pack.rs`)
//! are still read, checked and freed; bucket records from before CORS
//! (format 3) keep their settings.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

mod common;

use std::path::Path;

use common::{pattern, Req, Server};
use redb::{Database, ReadableTable, ReadableTableMetadata};
use tessera::store::digest::BlockCrcs;
use tessera::store::schema::{
    decode, encode, encode_block_crcs, object_key, ObjectRecord, BLOB_CRCS, BLOB_REFS, BUCKETS, CONTENT,
    CONTENT_HOLDERS, INLINE_BLOBS, OBJECTS, PACK_CHUNKS, PACK_LIVE, STORE_META,
};

const LEGACY_ID: u128 = 0x1234_5678_9abc_def0_1234_5678_9abc_def0;

/// Rewrites the packed body of `bucket/key` the way versions before the
/// pack stored it: a row of its own under a random id, with its checksums.
fn unpack_to_legacy_row(data: &Path, bucket: &str, key: &str, body: &[u8]) {
    let db = Database::open(data.join("meta.redb")).expect("open the database");
    let txn = db.begin_write().expect("write transaction");
    {
        let row = object_key(bucket, key.as_bytes());
        let mut objects = txn.open_table(OBJECTS).expect("objects");
        let mut record: ObjectRecord =
            decode(objects.get(row.as_slice()).unwrap().expect("the object").value()).unwrap();
        let packed = record.blobs[0].id;
        record.blobs[0].id = LEGACY_ID;
        objects.insert(row.as_slice(), encode(&record).unwrap().as_slice()).unwrap();
        let mut refs = txn.open_table(BLOB_REFS).unwrap();
        refs.remove(packed).unwrap().expect("the packed blob's reference");
        refs.insert(LEGACY_ID, 1).unwrap();
        txn.open_table(INLINE_BLOBS).unwrap().insert(LEGACY_ID, body).unwrap();
        let blocks = BlockCrcs { shift: 16, crcs: vec![tessera::store::digest::block_crc(body)] };
        txn.open_table(BLOB_CRCS).unwrap().insert(LEGACY_ID, encode_block_crcs(&blocks).as_slice()).unwrap();
        txn.open_table(PACK_CHUNKS).unwrap().retain(|_, _| false).unwrap();
        txn.open_table(PACK_LIVE).unwrap().retain(|_, _| false).unwrap();
    }
    txn.commit().expect("commit");
}

fn legacy_rows(data: &Path) -> (u64, u64) {
    let db = Database::open(data.join("meta.redb")).expect("open the database");
    let txn = db.begin_read().unwrap();
    (txn.open_table(INLINE_BLOBS).unwrap().len().unwrap(), txn.open_table(BLOB_CRCS).unwrap().len().unwrap())
}

#[test]
fn small_bodies_of_an_older_layout_are_read_and_freed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let body = pattern(3000, 42);
    let server = Server::start(dir.path());
    let c = server.client();
    assert_eq!(c.send(Req::new("PUT", "/old")).status, 200);
    assert_eq!(c.send(Req::new("PUT", "/old/small").body(&body)).status, 200);
    assert_eq!(server.terminate().code(), Some(0));
    unpack_to_legacy_row(dir.path(), "old", "small", &body);
    assert_eq!(legacy_rows(dir.path()), (1, 1));

    let server = Server::start(dir.path());
    let c = server.client();
    let got = c.send(Req::new("GET", "/old/small"));
    assert_eq!(got.status, 200, "{}", got.text());
    assert!(got.body == body, "the old row reads back byte-exact");
    let range = c.send(Req::new("GET", "/old/small").header("range", "bytes=100-199"));
    assert_eq!(range.status, 206);
    assert!(range.body == body[100..200], "and a range of it");
    assert_eq!(c.send(Req::new("DELETE", "/old/small")).status, 204);
    assert_eq!(server.terminate().code(), Some(0));
    assert_eq!(legacy_rows(dir.path()), (0, 0), "deleting the object frees the old row and its checksums");
}

/// Rewrites the unique-file table as the first version of issue 13 left
/// it: no holder counts, and (with `strip_digests`) content rows without
/// MD5 and checksum.
fn to_first_content_format(data: &Path, strip_digests: bool) {
    let db = Database::open(data.join("meta.redb")).expect("open the database");
    let txn = db.begin_write().expect("write transaction");
    {
        let mut holders = txn.open_table(CONTENT_HOLDERS).expect("holders");
        assert!(holders.len().unwrap() > 0, "holders were counted");
        holders.retain(|_, _| false).unwrap();
        txn.open_table(STORE_META).unwrap().remove("content_holders_counted").unwrap().expect("the flag");
        let mut content = txn.open_table(CONTENT).unwrap();
        let rows: Vec<(Vec<u8>, Vec<u8>)> = content
            .iter()
            .unwrap()
            .map(|r| r.unwrap())
            .map(|(k, v)| (k.value().to_vec(), v.value().to_vec()))
            .collect();
        for (key, value) in rows.iter().filter(|_| strip_digests) {
            content.insert(key.as_slice(), &value[..17]).unwrap();
        }
    }
    txn.commit().expect("commit");
}

/// Content stored before instant upload existed: holders are counted at
/// the first start, and rows without an MD5 are hashed again in the
/// background, after which the owner's uploads of it are instant.
#[test]
fn content_stored_before_instant_upload_becomes_instant() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let body = pattern(200 * 1024, 30);
    let server = Server::start(data);
    let alice = common::user_client(&server, data, "alice");
    assert_eq!(alice.send(Req::new("PUT", "/old")).status, 200);
    assert_eq!(alice.send(Req::new("PUT", "/old/a").body(&body)).status, 200);
    server.terminate();

    to_first_content_format(data, false);
    let server = Server::start_with(data, &["--hash-after-idle", "0s"]);
    let alice = server.client_as(&alice);
    let (resp, sent) = alice.send_expecting_continue(Req::new("PUT", "/old/b").body(&body), None);
    assert_eq!((resp.status, sent), (200, false), "holders counted at start: {}", resp.text());
    server.terminate();

    to_first_content_format(data, true);
    let server = Server::start_with(data, &["--hash-after-idle", "100ms"]);
    let alice = server.client_as(&alice);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    for i in 0.. {
        let key = format!("/old/c{i}");
        let (resp, sent) = alice.send_expecting_continue(Req::new("PUT", &key).body(&body), None);
        assert_eq!(resp.status, 200, "{}", resp.text());
        if !sent {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the old row was never hashed again");
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    common::assert_reads(&alice, "/old/a", &body);
}

/// Rewrites bucket `name`'s record in the layout before CORS (format 3:
/// format 4 without its last field, an absent `cors` being one 0 byte).
fn to_bucket_format_3(data: &Path, name: &str) {
    let db = Database::open(data.join("meta.redb")).expect("open the database");
    let txn = db.begin_write().expect("write transaction");
    {
        let mut buckets = txn.open_table(BUCKETS).expect("buckets");
        let mut bytes = buckets.get(name).unwrap().expect("the bucket").value().to_vec();
        assert_eq!((bytes[0], bytes.pop()), (4, Some(0)), "a format-4 record without CORS");
        bytes[0] = 3;
        buckets.insert(name, bytes.as_slice()).unwrap();
    }
    txn.commit().expect("commit");
}

/// Buckets written before CORS keep their policy and tags, have no CORS
/// configuration, and take one.
#[test]
fn buckets_from_before_cors_keep_their_settings_and_take_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let c = server.client();
    assert_eq!(c.send(Req::new("PUT", "/old")).status, 200);
    let policy =
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::old/*"}]}"#;
    assert_eq!(c.send(Req::new("PUT", "/old").query("policy").body(policy.as_bytes())).status, 204);
    assert_eq!(server.terminate().code(), Some(0));
    to_bucket_format_3(dir.path(), "old");

    let server = Server::start(dir.path());
    let c = server.client();
    let got = c.send(Req::new("GET", "/old").query("policy"));
    assert_eq!((got.status, got.text()), (200, policy.to_string()), "the policy survived");
    assert_eq!(c.send(Req::new("GET", "/old").query("cors")).error_code().as_deref(), Some("NoSuchCORSConfiguration"));
    let rules = "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>\
                 </CORSRule></CORSConfiguration>";
    assert_eq!(c.send(Req::new("PUT", "/old").query("cors").body(rules.as_bytes())).status, 200);
    assert_eq!(server.terminate().code(), Some(0));

    let server = Server::start(dir.path());
    let got = server.client().send(Req::new("GET", "/old").query("cors"));
    assert_eq!(got.status, 200, "{}", got.text());
    assert!(got.text().contains("<AllowedOrigin>*</AllowedOrigin>"), "{}", got.text());
}
