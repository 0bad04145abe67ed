//! The store on its own: lifecycle rules decide which uploads the reaper aborts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

use tessera::store::schema::{AbortIncompleteRule, BucketRecord, ContentHeaders, Lifecycle, UploadRecord};
use tessera::store::Store;

const DAY_MS: i64 = 24 * 3600 * 1000;

fn upload(key: &str, initiated_ms: i64) -> UploadRecord {
    UploadRecord {
        bucket: "life".into(),
        key: key.into(),
        owner: "root".into(),
        initiated_ms,
        headers: ContentHeaders::default(),
        user_meta: Vec::new(),
        checksum_algorithm: None,
        full_object_checksum: false,
        tags: Vec::new(),
        acl: None,
    }
}

#[test]
fn lifecycle_rules_shorten_the_upload_age_limit_by_prefix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open store");
    let bucket = BucketRecord {
        owner: "root".into(),
        created_ms: 0,
        region: "us-east-1".into(),
        lifecycle: None,
        versioning: Default::default(),
        tags: Vec::new(),
        acl: None,
        policy: None,
        cors: None,
    };
    store.create_bucket("life", &bucket).expect("bucket");
    let rule = AbortIncompleteRule { prefix: "tmp/".into(), days_after_initiation: 1 };
    store
        .update_bucket("life", move |b| {
            b.lifecycle = Some(Lifecycle {
                xml: "<LifecycleConfiguration/>".into(),
                abort_rules: vec![rule.clone()],
                expiry_rules: Vec::new(),
            })
        })
        .expect("lifecycle");
    store.create_upload("00000000000000000000000000000001", &upload("tmp/a", 0)).expect("upload");
    store.create_upload("00000000000000000000000000000002", &upload("keep/b", 0)).expect("upload");

    let week = 7 * DAY_MS;
    let expired =
        |now| store.expired_uploads(now, week).expect("scan").into_iter().map(|(_, k, _)| k).collect::<Vec<_>>();
    assert!(expired(DAY_MS - 1).is_empty(), "nothing is a day old yet");
    assert_eq!(expired(2 * DAY_MS), vec!["tmp/a"], "the rule applies to its prefix only");
    assert_eq!(expired(8 * DAY_MS).len(), 2, "the server-wide limit applies to every upload");
}
