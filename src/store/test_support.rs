//! What the store's own tests build again and again: a staged body, and
//! bucket, object and upload records with nothing but what the test needs.

use bytes::Bytes;

use super::blob::{BlobSink, StagedBlob};
use super::digest::DigestSpec;
use super::schema::{BucketRecord, ContentHeaders, ObjectRecord, ObjectVersion, UploadRecord};
use super::{Store, StoreError};

/// `bytes` received as an upload body (in frames of 20,000 bytes), ready to
/// be written: kept in memory if small, else a temp file.
pub async fn stage(store: &Store, bytes: &[u8]) -> StagedBlob {
    let spec = DigestSpec { sha256: false, checksum: None };
    let mut sink = BlobSink::<StoreError>::start(store.layout(), spec, None).expect("start");
    for piece in bytes.chunks(20_000) {
        let piece = Bytes::copy_from_slice(piece);
        assert!(sink.feed(async { Ok(Some(piece)) }).await.expect("feed"));
    }
    assert!(!sink.feed(async { Ok(None) }).await.expect("end"));
    sink.finish().await.expect("finish")
}

pub fn bucket_record() -> BucketRecord {
    BucketRecord {
        owner: "root".into(),
        created_ms: 0,
        region: "us-east-1".into(),
        lifecycle: None,
        versioning: Default::default(),
        tags: Vec::new(),
        acl: None,
        policy: None,
        cors: None,
    }
}

/// An object of `size` bytes, not yet pointing at any blob.
pub fn object_record(size: usize) -> ObjectRecord {
    ObjectRecord {
        size: size as u64,
        etag: "e".into(),
        last_modified_ms: 0,
        headers: ContentHeaders::default(),
        user_meta: Vec::new(),
        checksum: None,
        blobs: Vec::new(),
        version: ObjectVersion::NULL,
        tags: Vec::new(),
        part_checksums: Vec::new(),
        owner: None,
        acl: None,
    }
}

pub fn upload_record(bucket: &str, key: &str) -> UploadRecord {
    UploadRecord {
        bucket: bucket.into(),
        key: key.into(),
        owner: "root".into(),
        initiated_ms: 0,
        headers: ContentHeaders::default(),
        user_meta: Vec::new(),
        checksum_algorithm: None,
        full_object_checksum: false,
        tags: Vec::new(),
        acl: None,
    }
}
