//! ListObjectVersions: every version of every key, keys ascending and each
//! key's versions newest first, as S3 orders them. A key's current object
//! is in the object table and its other versions in the version table
//! (`versions.rs`): the listing walks both key by key, seeking to each next
//! key, and past each common prefix as `list.rs` does, on any backend.

use std::ops::Bound;

use super::list::{common_prefix, prefix_successor};
use super::meta::MetaRead;
use super::schema::{decode, object_key, ObjectRecord};
use super::versions::VersionId;
use super::StoreResult;

pub struct VersionQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// `key-marker`: start after this key...
    pub key_marker: Option<String>,
    /// ...or, with `version-id-marker`, after this version of it.
    pub version_marker: Option<VersionId>,
    pub max_keys: usize,
}

pub enum VersionEntry {
    Version { key: String, record: Box<ObjectRecord>, latest: bool },
    CommonPrefix(String),
}

pub struct VersionPage {
    pub entries: Vec<VersionEntry>,
    pub truncated: bool,
}

/// One page of the versions of `bucket`, from the snapshot `txn`.
pub fn list_versions(txn: &dyn MetaRead, bucket: &str, q: &VersionQuery) -> StoreResult<VersionPage> {
    let mut page = VersionPage { entries: Vec::new(), truncated: false };
    let delimiter = q.delimiter.as_deref();
    let (mut cursor, mut skip_through) = start(txn, bucket, q)?;
    while let Some(key_bytes) = next_key(txn, bucket, &cursor)? {
        let key = String::from_utf8_lossy(&key_bytes).into_owned();
        if !key.starts_with(q.prefix.as_str()) {
            break;
        }
        if let Some(cp) = common_prefix(&key, &q.prefix, delimiter) {
            if page.entries.len() == q.max_keys {
                page.truncated = true;
                break;
            }
            page.entries.push(VersionEntry::CommonPrefix(cp.to_string()));
            cursor = prefix_successor(cp.as_bytes());
            continue;
        }
        let row = object_key(bucket, &key_bytes);
        if !versions_of(txn, (&row, &key), skip_through.take(), &mut page, q.max_keys)? {
            break;
        }
        cursor = successor(&key_bytes);
    }
    Ok(page)
}

/// The first key to look at, and, when the listing resumes inside a key's
/// versions, the inverted seq of the last version already listed.
fn start(txn: &dyn MetaRead, bucket: &str, q: &VersionQuery) -> StoreResult<(Vec<u8>, Option<u64>)> {
    let prefix_start = q.prefix.as_bytes().to_vec();
    let Some(marker) = q.key_marker.as_deref().filter(|m| *m >= q.prefix.as_str()) else {
        return Ok((prefix_start, None));
    };
    if let Some(cp) = common_prefix(marker, &q.prefix, q.delimiter.as_deref()) {
        return Ok((prefix_successor(cp.as_bytes()), None));
    }
    let after_marker = successor(marker.as_bytes());
    let Some(id) = q.version_marker else { return Ok((after_marker, None)) };
    match inverted_seq_of(txn, &object_key(bucket, marker.as_bytes()), id)? {
        Some(position) => Ok((marker.as_bytes().to_vec(), Some(position))),
        // A version no longer there: resume after the whole key, as S3 does
        // with an unknown marker.
        None => Ok((after_marker, None)),
    }
}

/// Where version `id` of the key `row` sorts among its versions: its
/// [`VERSIONS`](super::schema::VERSIONS) key, or 0 (before every noncurrent
/// version) for the current object.
fn inverted_seq_of(txn: &dyn MetaRead, row: &[u8], id: VersionId) -> StoreResult<Option<u64>> {
    if txn.object(row)?.is_some_and(|current| VersionId::of(&current.version) == id) {
        return Ok(Some(0));
    }
    Ok(super::versions::find_noncurrent(txn, row, id)?.map(|(inverted, _)| inverted))
}

/// The smallest key greater than `key`.
fn successor(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

/// The smallest key at or after `cursor` with a current or a noncurrent version.
fn next_key(txn: &dyn MetaRead, bucket: &str, cursor: &[u8]) -> StoreResult<Option<Vec<u8>>> {
    let mut current = None;
    txn.scan_objects(bucket, Bound::Included(cursor), None, 1, &mut |key, _| {
        current = Some(key.to_vec());
        Ok(false)
    })?;
    let noncurrent = txn.next_versioned_key(bucket, cursor)?;
    Ok(match (current, noncurrent) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}

/// Adds the versions of one key, newest first, after the one at
/// `after` (an inverted seq; 0 is the current object) if resuming. Returns
/// false once the page is full (and marks it truncated if more remain).
fn versions_of(
    txn: &dyn MetaRead,
    (row, key): (&[u8], &str),
    after: Option<u64>,
    page: &mut VersionPage,
    max: usize,
) -> StoreResult<bool> {
    let mut latest = true;
    if let Some(current) = txn.object(row)? {
        if after.is_none() {
            if page.entries.len() == max {
                page.truncated = true;
                return Ok(false);
            }
            page.entries.push(VersionEntry::Version { key: key.to_string(), record: Box::new(current), latest: true });
        }
        latest = false;
    }
    if after == Some(u64::MAX) {
        return Ok(true);
    }
    let from = after.map_or(0, |a| a.saturating_add(1));
    let mut room = true;
    txn.scan_versions(row, from, &mut |_, value| {
        if page.entries.len() == max {
            page.truncated = true;
            room = false;
            return Ok(false);
        }
        let record = Box::new(decode::<ObjectRecord>(value)?);
        // Resuming inside a key: the newest version was listed before.
        let is_latest = latest && after.is_none();
        page.entries.push(VersionEntry::Version { key: key.to_string(), record, latest: is_latest });
        latest = false;
        Ok(true)
    })?;
    Ok(room)
}
