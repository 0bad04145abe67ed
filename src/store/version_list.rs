//! ListObjectVersions: every version of every key, keys ascending and each
//! key's versions newest first, as S3 orders them. A key's current object
//! is in [`OBJECTS`] and its other versions in [`VERSIONS`]
//! (`versions.rs`): the listing walks both tables key by key, seeking to
//! each next key, and past each common prefix as `list.rs` does.

use redb::{ReadOnlyTable, ReadTransaction};

use super::list::{common_prefix, prefix_successor};
use super::meta::MetaRead;
use super::redb_meta::txn::RedbRead;
use super::schema::{decode, object_key, ObjectRecord, OBJECTS, VERSIONS};
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

type Objects = ReadOnlyTable<&'static [u8], &'static [u8]>;
type Versions = ReadOnlyTable<(&'static [u8], u64), &'static [u8]>;

/// One page of the versions of `bucket`, from one snapshot.
pub fn list_versions(txn: &ReadTransaction, bucket: &str, q: &VersionQuery) -> StoreResult<VersionPage> {
    let (objects, versions) = (&txn.open_table(OBJECTS)?, &txn.open_table(VERSIONS)?);
    let mut page = VersionPage { entries: Vec::new(), truncated: false };
    let row_start = bucket.len() + 1;
    let delimiter = q.delimiter.as_deref();
    let bucket_rows = object_key(bucket, b"");
    let (mut cursor, mut skip_through) = start(&RedbRead(txn), bucket, q)?;
    while let Some(row) = next_key(objects, versions, &cursor)? {
        if !row.starts_with(&bucket_rows) {
            break;
        }
        let key = String::from_utf8_lossy(row.get(row_start..).unwrap_or_default()).into_owned();
        if !key.starts_with(q.prefix.as_str()) {
            break;
        }
        if let Some(cp) = common_prefix(&key, &q.prefix, delimiter) {
            if page.entries.len() == q.max_keys {
                page.truncated = true;
                break;
            }
            page.entries.push(VersionEntry::CommonPrefix(cp.to_string()));
            cursor = object_key(bucket, &prefix_successor(cp.as_bytes()));
            continue;
        }
        if !versions_of(objects, versions, (&row, &key), skip_through.take(), &mut page, q.max_keys)? {
            break;
        }
        cursor = successor(&row);
    }
    Ok(page)
}

/// The first row to look at, and, when the listing resumes inside a key's
/// versions, the inverted seq of the last version already listed.
fn start(txn: &dyn MetaRead, bucket: &str, q: &VersionQuery) -> StoreResult<(Vec<u8>, Option<u64>)> {
    let prefix_start = object_key(bucket, q.prefix.as_bytes());
    let Some(marker) = q.key_marker.as_deref().filter(|m| *m >= q.prefix.as_str()) else {
        return Ok((prefix_start, None));
    };
    if let Some(cp) = common_prefix(marker, &q.prefix, q.delimiter.as_deref()) {
        return Ok((object_key(bucket, &prefix_successor(cp.as_bytes())), None));
    }
    let row = object_key(bucket, marker.as_bytes());
    let Some(id) = q.version_marker else { return Ok((successor(&row), None)) };
    match inverted_seq_of(txn, &row, id)? {
        Some(position) => Ok((row, Some(position))),
        // A version no longer there: resume after the whole key, as S3 does
        // with an unknown marker.
        None => Ok((successor(&row), None)),
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

/// The smallest row key greater than `row`.
fn successor(row: &[u8]) -> Vec<u8> {
    let mut next = row.to_vec();
    next.push(0);
    next
}

/// The smallest key at or after `cursor` in either table.
fn next_key(objects: &Objects, versions: &Versions, cursor: &[u8]) -> StoreResult<Option<Vec<u8>>> {
    let current = match objects.range::<&[u8]>(cursor..)?.next() {
        Some(entry) => Some(entry?.0.value().to_vec()),
        None => None,
    };
    let noncurrent = match versions.range::<(&[u8], u64)>((cursor, 0)..)?.next() {
        Some(entry) => Some(entry?.0.value().0.to_vec()),
        None => None,
    };
    Ok(match (current, noncurrent) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}

/// Adds the versions of one key, newest first, after the one at
/// `after` (an inverted seq; 0 is the current object) if resuming. Returns
/// false once the page is full (and marks it truncated if more remain).
fn versions_of(
    objects: &Objects,
    versions: &Versions,
    (row, key): (&[u8], &str),
    after: Option<u64>,
    page: &mut VersionPage,
    max: usize,
) -> StoreResult<bool> {
    let mut latest = true;
    if let Some(current) = objects.get(row)? {
        if after.is_none() {
            if page.entries.len() == max {
                page.truncated = true;
                return Ok(false);
            }
            let record = Box::new(decode(current.value())?);
            page.entries.push(VersionEntry::Version { key: key.to_string(), record, latest: true });
        }
        latest = false;
    }
    let from = after.map_or(0, |a| a.saturating_add(1));
    if after == Some(u64::MAX) {
        return Ok(true);
    }
    for entry in versions.range::<(&[u8], u64)>((row, from)..=(row, u64::MAX))? {
        let (_, value) = entry?;
        if page.entries.len() == max {
            page.truncated = true;
            return Ok(false);
        }
        let record = Box::new(decode::<ObjectRecord>(value.value())?);
        // Resuming inside a key: the newest version was listed before.
        let is_latest = latest && after.is_none();
        page.entries.push(VersionEntry::Version { key: key.to_string(), record, latest: is_latest });
        latest = false;
    }
    Ok(true)
}
