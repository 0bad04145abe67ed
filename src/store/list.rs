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
    let end = Some(prefix_successor(q.prefix.as_bytes())).filter(|end| !end.is_empty());
    if q.max_keys == 0 {
        return Ok(ListPage { entries: Vec::new(), truncated: false });
    }
    let mut page = Rollup::new(&q.prefix, q.delimiter.as_deref(), q.max_keys);
    page.fill(|page, resume| {
        let start = resume.map_or_else(|| initial_bound(q), Bound::Included);
        txn.scan_objects(bucket, as_slice_bound(&start), end.as_deref(), page.hint(), &mut |key, value| {
            let Ok(key) = std::str::from_utf8(key) else { return Ok(true) };
            page.take(key, || Ok(ListEntry::Object(key.to_string(), Box::new(decode(value)?))), ListEntry::CommonPrefix)
        })
    })?;
    Ok(ListPage { entries: page.entries, truncated: page.truncated })
}

/// A page of a listing in key order where, with a delimiter, the keys
/// sharing a common prefix roll up into one entry: the scan stops at the
/// first such key and resumes just past the prefix (one seek instead of a
/// walk through its keys). ListObjects and ListMultipartUploads page so.
pub(super) struct Rollup<'q, E> {
    prefix: &'q str,
    delimiter: Option<&'q str>,
    max: usize,
    pub entries: Vec<E>,
    pub truncated: bool,
    /// Where the scan resumes after rolling up a prefix.
    resume: Option<Vec<u8>>,
}

impl<'q, E> Rollup<'q, E> {
    pub fn new(prefix: &'q str, delimiter: Option<&'q str>, max: usize) -> Self {
        Rollup { prefix, delimiter, max, entries: Vec::new(), truncated: false, resume: None }
    }

    /// How many rows a scan should fetch first: without a delimiter the
    /// page takes them in a row; with one, a common prefix may end it soon.
    pub fn hint(&self) -> usize {
        if self.delimiter.is_some() {
            64
        } else {
            self.max.saturating_add(1)
        }
    }

    /// Runs `scan` (given where to resume: `None` the first time) until the
    /// page is full or the keys run out.
    pub fn fill(&mut self, mut scan: impl FnMut(&mut Self, Option<Vec<u8>>) -> StoreResult<()>) -> StoreResult<()> {
        let mut resume = None;
        loop {
            scan(self, resume)?;
            resume = self.resume.take();
            if resume.is_none() || self.truncated {
                return Ok(());
            }
        }
    }

    /// Takes the scanned `key` into the page: the entry `entry` makes, or
    /// the common prefix it rolls up into. Whether the scan goes on.
    pub fn take(
        &mut self,
        key: &str,
        entry: impl FnOnce() -> StoreResult<E>,
        rolled_up: impl FnOnce(String) -> E,
    ) -> StoreResult<bool> {
        if !key.starts_with(self.prefix) {
            return Ok(false);
        }
        if self.entries.len() == self.max {
            self.truncated = true;
            return Ok(false);
        }
        if let Some(cp) = common_prefix(key, self.prefix, self.delimiter) {
            self.resume = Some(prefix_successor(cp.as_bytes()));
            self.entries.push(rolled_up(cp.to_string()));
            return Ok(false);
        }
        self.entries.push(entry()?);
        Ok(true)
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
