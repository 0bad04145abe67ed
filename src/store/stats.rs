//! What the store holds, for `tessera stats`: objects, the bytes clients
//! wrote (logical) and the bytes kept for them (stored: each blob once,
//! however many objects, versions and parts share it, `content.rs`).
//!
//! One read transaction walks every object, version and part: the cost
//! grows with the store (about a second per million records), so it is a
//! command to run, not a metric to scrape.

use std::collections::HashMap;

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::content::{is_file, merged_into};
use super::layout::BlobId;
use super::list::bucket_bounds;
use super::multipart::split_index_key;
use super::schema::{
    decode, part_key, BlobSpan, ObjectRecord, PartRecord, BLOB_CONTENT, OBJECTS, PARTS, UPLOAD_INDEX, VERSIONS,
};
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
        let txn = self.db()?.begin_read()?;
        let (mut stats, mut blobs) = (Stats::default(), HashMap::new());
        for row in txn.open_table(OBJECTS)?.iter()? {
            let record: ObjectRecord = decode(row?.1.value())?;
            stats.objects += 1;
            stats.add(&record.blobs, &mut blobs);
        }
        for row in txn.open_table(VERSIONS)?.iter()? {
            let record: ObjectRecord = decode(row?.1.value())?;
            match record.version.delete_marker {
                true => stats.delete_markers += 1,
                false => stats.noncurrent_versions += 1,
            }
            stats.add(&record.blobs, &mut blobs);
        }
        for row in txn.open_table(PARTS)?.iter()? {
            let part: PartRecord = decode(row?.1.value())?;
            stats.upload_parts += 1;
            stats.upload_bytes += part.span.size;
            stats.add(&[part.span], &mut blobs);
        }
        // A blob merged into another (its file a hard link to the other's,
        // `hasher.rs`) is stored once, with that other blob, while it lives.
        let indexed = txn.open_table(BLOB_CONTENT)?;
        let mut merged = Vec::new();
        for (id, _) in blobs.iter().filter(|(_, (_, file))| *file) {
            let Some(value) = indexed.get(*id)? else {
                stats.unindexed_blobs += 1;
                continue;
            };
            match merged_into(value.value()) {
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
    }
}

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
        let txn = self.db()?.begin_read()?;
        let (objects, index, parts) = (txn.open_table(OBJECTS)?, txn.open_table(UPLOAD_INDEX)?, txn.open_table(PARTS)?);
        let (mut out, mut uploads) = (Vec::with_capacity(buckets.len()), UploadUsage::default());
        for name in buckets {
            let (lo, hi) = bucket_bounds(name);
            let mut usage = BucketUsage { name: name.clone(), ..BucketUsage::default() };
            for row in objects.range::<&[u8]>(lo.as_slice()..hi.as_slice())? {
                let record: ObjectRecord = decode(row?.1.value())?;
                if !record.version.delete_marker {
                    usage.objects += 1;
                    usage.bytes += record.size;
                }
            }
            for row in index.range::<&[u8]>(lo.as_slice()..hi.as_slice())? {
                let row = row?.0;
                let Some((_, id)) = split_index_key(row.value(), name) else { continue };
                uploads.count += 1;
                let (first, last) = (part_key(id, 0), part_key(id, u16::MAX));
                for part in parts.range::<&[u8]>(first.as_slice()..=last.as_slice())? {
                    let part: PartRecord = decode(part?.1.value())?;
                    uploads.parts += 1;
                    uploads.bytes += part.span.size;
                }
            }
            out.push(usage);
        }
        Ok((out, uploads))
    }
}
