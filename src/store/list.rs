//! Listing: range scans over the current objects in key byte order (S3's
//! order), on any backend (`MetaRead::scan_objects`). With a delimiter, each
//! common prefix costs one seek past all its keys instead of a walk through
//! them.

use std::ops::Bound;

use super::meta::MetaRead;
use super::schema::{decode, object_key, ObjectRecord};
use super::StoreResult;

pub struct ListQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// Exclusive start: `start-after`, `marker` or a continuation token.
    pub after: Option<String>,
    pub max_keys: usize,
}

pub enum ListEntry {
    Object(String, Box<ObjectRecord>),
    CommonPrefix(String),
}

impl ListEntry {
    /// The key or prefix: where the next page starts.
    pub fn name(&self) -> &str {
        match self {
            ListEntry::Object(key, _) | ListEntry::CommonPrefix(key) => key,
        }
    }
}

pub struct ListPage {
    pub entries: Vec<ListEntry>,
    pub truncated: bool,
}

/// The table range holding every object of `bucket`.
pub fn bucket_bounds(bucket: &str) -> (Vec<u8>, Vec<u8>) {
    let lo = object_key(bucket, b"");
    let mut hi = lo.clone();
    if let Some(last) = hi.last_mut() {
        *last = 1; // the separator 0 becomes 1: just past every key of the bucket
    }
    (lo, hi)
}

/// The smallest byte string greater than every string starting with `prefix`.
/// UTF-8 never contains 0xFF, so incrementing the last byte suffices.
pub(super) fn prefix_successor(prefix: &[u8]) -> Vec<u8> {
    let mut out = prefix.to_vec();
    while let Some(last) = out.pop() {
        if last < 0xFF {
            out.push(last + 1);
            break;
        }
    }
    out
}

/// The common prefix `key` rolls up into, if any.
pub(super) fn common_prefix<'k>(key: &'k str, prefix: &str, delimiter: Option<&str>) -> Option<&'k str> {
    let delimiter = delimiter.filter(|d| !d.is_empty())?;
    let rest = key.get(prefix.len()..)?;
    rest.find(delimiter).and_then(|i| key.get(..prefix.len() + i + delimiter.len()))
}

/// One page of ListObjects, from the snapshot `txn`.
pub fn list(txn: &dyn MetaRead, bucket: &str, q: &ListQuery) -> StoreResult<ListPage> {
    let delimiter = q.delimiter.as_deref();
    let end = Some(prefix_successor(q.prefix.as_bytes())).filter(|end| !end.is_empty());
    // Without a delimiter the page takes the rows in a row; with one, a
    // common prefix ends the scan after its first key.
    let hint = if delimiter.is_some() { 64 } else { q.max_keys + 1 };
    let mut start = initial_bound(q);
    let mut page = ListPage { entries: Vec::new(), truncated: false };
    if q.max_keys == 0 {
        return Ok(page);
    }
    loop {
        let mut reseek = None;
        txn.scan_objects(bucket, as_slice_bound(&start), end.as_deref(), hint, &mut |key, value| {
            let Ok(key) = std::str::from_utf8(key) else { return Ok(true) };
            if page.entries.len() == q.max_keys {
                page.truncated = true;
                return Ok(false);
            }
            if let Some(cp) = common_prefix(key, &q.prefix, delimiter) {
                page.entries.push(ListEntry::CommonPrefix(cp.to_string()));
                reseek = Some(Bound::Included(prefix_successor(cp.as_bytes())));
                return Ok(false);
            }
            page.entries.push(ListEntry::Object(key.to_string(), Box::new(decode(value)?)));
            Ok(true)
        })?;
        match reseek {
            Some(next) if !page.truncated => start = next,
            _ => return Ok(page),
        }
    }
}

/// Where the scan starts (keys without the bucket): at the prefix, or just
/// after the marker. A marker inside a common prefix skips that whole
/// prefix: it sorts before the marker, so S3 has already returned it.
fn initial_bound(q: &ListQuery) -> Bound<Vec<u8>> {
    let prefix_start = Bound::Included(q.prefix.as_bytes().to_vec());
    let Some(after) = q.after.as_deref().filter(|a| *a >= q.prefix.as_str()) else {
        return prefix_start;
    };
    match common_prefix(after, &q.prefix, q.delimiter.as_deref()) {
        Some(cp) => Bound::Included(prefix_successor(cp.as_bytes())),
        None => Bound::Excluded(after.as_bytes().to_vec()),
    }
}

pub(super) fn as_slice_bound(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(v) => Bound::Included(v.as_slice()),
        Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_skips_whole_prefix() {
        assert_eq!(prefix_successor(b"a/"), b"a0".to_vec());
        assert!(b"a/zzz".as_slice() < prefix_successor(b"a/").as_slice());
    }

    #[test]
    fn common_prefix_after_prefix_only() {
        assert_eq!(common_prefix("a/b/c", "a/", Some("/")), Some("a/b/"));
        assert_eq!(common_prefix("a/b", "a/", Some("/")), None);
        assert_eq!(common_prefix("a/b", "", None), None);
        assert_eq!(common_prefix("x--y--z", "", Some("--")), Some("x--"));
    }
}
