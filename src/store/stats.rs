//! What the store holds, for `tessera stats`: objects, the bytes clients
//! wrote (logical) and the bytes kept for them (stored: each blob once,
//! however many objects, versions and parts share it, `content.rs`).
//!
//! One read snapshot walks every object, version and part, through the
//! backend-neutral lookups (`meta.rs`): the cost grows with the store
//! (about a second per million records on redb), so it is a command to
//! run, not a metric to scrape.

use std::collections::HashMap;
use std::ops::Bound;

use serde::{Deserialize, Serialize};

use super::content::{is_file, merged_into};
use super::layout::BlobId;
use super::meta::{MetaRead, UploadStart};
use super::schema::{decode, object_key, BlobSpan, ObjectRecord};
use super::{Store, StoreResult};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Current objects (the latest version of each key).
    pub objects: u64,
    /// Older versions kept by versioning (delete markers not counted).
    pub noncurrent_versions: u64,
    pub delete_markers: u64,
    /// Parts of multipart uploads not yet completed or aborted.
    pub upload_parts: u64,
    /// Their bytes.
    #[serde(default)]
    pub upload_bytes: u64,
    /// The sizes of every object, version and part, as clients wrote them.
    pub logical_bytes: u64,
    /// The bytes kept for them: each distinct blob once.
    pub stored_bytes: u64,
    pub distinct_blobs: u64,
    /// Blob files whose content is not indexed yet: background hashing
    /// (`hasher.rs`) has not reached them.
    #[serde(default)]
    pub unindexed_blobs: u64,
}

impl Stats {
    /// Logical over stored bytes: 2.0 when every byte is held twice over.
    pub fn dedup_ratio(&self) -> f64 {
        match self.stored_bytes {
            0 => 1.0,
            stored => self.logical_bytes as f64 / stored as f64,
        }
    }

    fn add(&mut self, spans: &[BlobSpan], blobs: &mut HashMap<BlobId, (u64, bool)>) {
        for span in spans.iter().filter(|s| s.has_blob()) {
            self.logical_bytes += span.size;
            blobs.insert(span.id, (span.size, is_file(span)));
        }
    }
}

impl Store {
    pub fn stats(&self) -> StoreResult<Stats> {
        self.read(|txn| {
            let (mut stats, mut blobs) = (Stats::default(), HashMap::new());
            for (bucket, _) in txn.buckets()? {
                scan_bucket(txn, &bucket, &mut stats, &mut blobs)?;
            }
            // A blob merged into another (its file a hard link to the other's,
            // `hasher.rs`) is stored once, with that other blob, while it lives.
            let mut merged = Vec::new();
            for (id, _) in blobs.iter().filter(|(_, (_, file))| *file) {
                let Some(value) = txn.blob_content(*id)? else {
                    stats.unindexed_blobs += 1;
                    continue;
                };
                match merged_into(&value) {
                    Some(holder) if blobs.contains_key(&holder) => merged.push(*id),
                    Some(_) => stats.unindexed_blobs += 1,
                    None => {}
                }
            }
            for id in &merged {
                blobs.remove(id);
            }
            stats.distinct_blobs = blobs.len() as u64;
            stats.stored_bytes = blobs.values().map(|(size, _)| size).sum();
            Ok(stats)
        })
    }
}

/// Adds one bucket's objects, versions and parts to `stats`, and their
/// blobs (size, whether a file) to `blobs`.
fn scan_bucket(
    txn: &dyn MetaRead,
    bucket: &str,
    stats: &mut Stats,
    blobs: &mut HashMap<BlobId, (u64, bool)>,
) -> StoreResult<()> {
    txn.scan_objects(bucket, Bound::Unbounded, None, BATCH, &mut |_, value| {
        let record: ObjectRecord = decode(value)?;
        stats.objects += 1;
        stats.add(&record.blobs, blobs);
        Ok(true)
    })?;
    let mut from = Vec::new();
    while let Some(key) = txn.next_versioned_key(bucket, &from)? {
        txn.scan_versions(&object_key(bucket, &key), 0, &mut |_, value| {
            let record: ObjectRecord = decode(value)?;
            match record.version.delete_marker {
                true => stats.delete_markers += 1,
                false => stats.noncurrent_versions += 1,
            }
            stats.add(&record.blobs, blobs);
            Ok(true)
        })?;
        // The smallest key after `key`.
        from = key;
        from.push(0);
    }
    for id in upload_ids(txn, bucket)? {
        for (_, part) in txn.parts(&id)? {
            stats.upload_parts += 1;
            stats.upload_bytes += part.span.size;
            stats.add(&[part.span], blobs);
        }
    }
    Ok(())
}

/// The ids of a bucket's multipart uploads.
fn upload_ids(txn: &dyn MetaRead, bucket: &str) -> StoreResult<Vec<String>> {
    let mut ids = Vec::new();
    txn.scan_uploads(bucket, UploadStart::AtKey(b""), BATCH, &mut |_, id, _| {
        ids.push(id.to_string());
        Ok(true)
    })?;
    Ok(ids)
}

/// Rows fetched at a time by a backend that fetches in batches.
const BATCH: usize = 1000;

/// One bucket's current objects (delete markers left out) and their bytes.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BucketUsage {
    pub name: String,
    pub objects: u64,
    pub bytes: u64,
}

/// Multipart uploads not yet completed or aborted, and what their parts hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UploadUsage {
    pub count: u64,
    pub parts: u64,
    pub bytes: u64,
}

impl Store {
    /// What `buckets` hold now, for the console's overview: one read
    /// transaction, range scans over these buckets' rows only (another
    /// user's buckets are never read). A bucket deleted meanwhile counts 0.
    pub fn usage(&self, buckets: &[String]) -> StoreResult<(Vec<BucketUsage>, UploadUsage)> {
        self.read(|txn| {
            let (mut out, mut uploads) = (Vec::with_capacity(buckets.len()), UploadUsage::default());
            for name in buckets {
                let mut usage = BucketUsage { name: name.clone(), ..BucketUsage::default() };
                txn.scan_objects(name, Bound::Unbounded, None, BATCH, &mut |_, value| {
                    let record: ObjectRecord = decode(value)?;
                    if !record.version.delete_marker {
                        usage.objects += 1;
                        usage.bytes += record.size;
                    }
                    Ok(true)
                })?;
                for id in upload_ids(txn, name)? {
                    uploads.count += 1;
                    for (_, part) in txn.parts(&id)? {
                        uploads.parts += 1;
                        uploads.bytes += part.span.size;
                    }
                }
                out.push(usage);
            }
            Ok((out, uploads))
        })
    }
}
