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
use super::schema::{decode, BlobSpan, ObjectRecord, PartRecord, BLOB_CONTENT, OBJECTS, PARTS, VERSIONS};
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
