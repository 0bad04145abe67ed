//! Bucket versioning: where each version of a key lives, and how writes and
//! deletes move versions between the two tables that hold them.
//!
//! The current version of a key, when it is an object, is its row in
//! [`OBJECTS`], exactly as in a bucket without versioning: GET, HEAD and the
//! listings of current objects read that table only, however many old
//! versions lie behind. Every other version (noncurrent versions and delete
//! markers, a latest one included) is a row of [`VERSIONS`] keyed
//! `(key, !seq)`, so a key's versions are contiguous and newest first.
//!
//! Invariant: a key without an [`OBJECTS`] row but with [`VERSIONS`] rows
//! has a delete marker as its newest row (its latest version). Removing a
//! version keeps it by promoting the newest remaining one when it is not a
//! marker.
//!
//! Versions share blobs through the reference counts of `txn.rs`: moving a
//! version between the tables keeps its references; removing one for good
//! drops them.

use std::fmt;

use super::commit::WriteError;
use super::layout::BlobId;
use super::meta::{MetaRead, MetaTxn};
use super::schema::{object_key, ObjectRecord, ObjectVersion, Versioning};
use super::txn::{drop_refs, Holder};
use super::{StoreError, StoreResult};

/// A version id as S3 clients see it: `null`, or an opaque id (here the
/// version's sequence number, 16 hex digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionId {
    Null,
    Seq(u64),
}

impl VersionId {
    pub fn of(version: &ObjectVersion) -> VersionId {
        match version.null {
            true => VersionId::Null,
            false => VersionId::Seq(version.seq),
        }
    }

    /// Parses a `versionId` parameter; `None` if it cannot be one of ours.
    pub fn parse(text: &str) -> Option<VersionId> {
        match text {
            "null" => Some(VersionId::Null),
            _ if text.len() == 16 && text.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) => {
                u64::from_str_radix(text, 16).ok().map(VersionId::Seq)
            }
            _ => None,
        }
    }

    fn matches(&self, version: &ObjectVersion) -> bool {
        VersionId::of(version) == *self
    }
}

impl fmt::Display for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionId::Null => f.write_str("null"),
            VersionId::Seq(seq) => write!(f, "{seq:016x}"),
        }
    }
}

/// What a delete did, for the response's `x-amz-version-id` and
/// `x-amz-delete-marker`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deleted {
    /// The version removed, or the delete marker written; `None` in a bucket
    /// that never had versioning.
    pub version_id: Option<VersionId>,
    /// A delete marker was written or removed.
    pub delete_marker: bool,
}

/// A bucket's versioning state; fails with `NoSuchBucket`.
pub(super) fn bucket_versioning(txn: &dyn MetaRead, bucket: &str) -> StoreResult<Versioning> {
    Ok(txn.bucket(bucket)?.ok_or(StoreError::NoSuchBucket)?.versioning)
}

/// The version a write to a bucket in state `versioning` creates. A bucket
/// that never had versioning writes seq 0: its one version per key is older
/// than any version written once versioning is enabled.
fn new_version(txn: &dyn MetaTxn, versioning: Versioning, delete_marker: bool) -> StoreResult<ObjectVersion> {
    if versioning == Versioning::Unversioned {
        return Ok(ObjectVersion { delete_marker, ..ObjectVersion::NULL });
    }
    let seq = txn.next_version_seq()?;
    Ok(ObjectVersion { seq, null: versioning == Versioning::Suspended, delete_marker })
}

/// Commits `record` as the current version of `bucket/key`, whose current
/// object is `current`: the previous current version is kept as a
/// noncurrent one, or replaced if both are the `null` version. Returns
/// the blobs no longer referenced.
pub(super) fn put_current(
    txn: &dyn MetaTxn,
    (bucket, key): (&str, &str),
    record: &mut ObjectRecord,
    current: Option<ObjectRecord>,
    versioning: Versioning,
) -> StoreResult<Vec<BlobId>> {
    record.version = new_version(txn, versioning, false)?;
    let row = object_key(bucket, key.as_bytes());
    let dead = make_room(txn, (bucket, &row), current, record.version)?;
    txn.put_object(&row, record)?;
    Ok(dead)
}

/// DeleteObject without a version id: removes the current object in a
/// bucket without versioning, else writes a delete marker as the latest
/// version (with version id `null` while versioning is suspended).
pub(super) fn delete_latest(
    txn: &dyn MetaTxn,
    (bucket, key): (&str, &str),
    current: Option<ObjectRecord>,
    versioning: Versioning,
) -> StoreResult<(Deleted, Vec<BlobId>)> {
    let row = object_key(bucket, key.as_bytes());
    if versioning == Versioning::Unversioned {
        txn.remove_object(&row)?;
        let dead = match current {
            Some(current) => drop_refs(txn, &current.blobs, held_by(bucket, &current))?,
            None => Vec::new(),
        };
        return Ok((Deleted { version_id: None, delete_marker: false }, dead));
    }
    let version = new_version(txn, versioning, true)?;
    let had_current = current.is_some();
    let dead = make_room(txn, (bucket, &row), current, version)?;
    if had_current {
        txn.remove_object(&row)?;
    }
    let marker = ObjectRecord {
        size: 0,
        etag: String::new(),
        last_modified_ms: crate::store::now_ms(),
        headers: Default::default(),
        user_meta: Vec::new(),
        checksum: None,
        blobs: Vec::new(),
        version,
        tags: Vec::new(),
        part_checksums: Vec::new(),
        owner: None,
        acl: None,
    };
    txn.put_version(&row, !version.seq, &marker)?;
    Ok((Deleted { version_id: Some(VersionId::of(&version)), delete_marker: true }, dead))
}

/// Before `incoming` becomes the latest version of the key `row`: the
/// current object becomes noncurrent, and a `null` incoming version
/// replaces the key's previous `null` version wherever it is.
fn make_room(
    txn: &dyn MetaTxn,
    (bucket, row): (&str, &[u8]),
    current: Option<ObjectRecord>,
    incoming: ObjectVersion,
) -> StoreResult<Vec<BlobId>> {
    let mut dead = Vec::new();
    let mut null_found = false;
    if let Some(current) = current {
        match current.version.null && incoming.null {
            true => {
                null_found = true;
                dead.extend(drop_refs(txn, &current.blobs, held_by(bucket, &current))?);
            }
            false => {
                txn.put_version(row, !current.version.seq, &current)?;
            }
        }
    }
    if incoming.null && !null_found && incoming.seq != 0 {
        if let Some(old) = take_noncurrent(txn, row, VersionId::Null)? {
            dead.extend(drop_refs(txn, &old.blobs, held_by(bucket, &old))?);
        }
    }
    Ok(dead)
}

/// DeleteObject with a version id: removes that version (object or delete
/// marker) for good; the newest remaining version becomes the latest.
/// Deleting a version that does not exist succeeds and removes nothing, as
/// in S3.
pub(super) fn delete_version(
    txn: &dyn MetaTxn,
    (bucket, key): (&str, &str),
    current: Option<ObjectRecord>,
    id: VersionId,
) -> StoreResult<(Deleted, Vec<BlobId>)> {
    let row = object_key(bucket, key.as_bytes());
    let (removed, current_stays) = match current {
        Some(current) if id.matches(&current.version) => {
            txn.remove_object(&row)?;
            (Some(current), false)
        }
        Some(_) => (take_noncurrent(txn, &row, id)?, true),
        None => (take_noncurrent(txn, &row, id)?, false),
    };
    let deleted = Deleted { version_id: Some(id), delete_marker: removed.as_ref().is_some_and(is_marker) };
    let Some(removed) = removed else { return Ok((deleted, Vec::new())) };
    if !current_stays {
        promote_newest(txn, &row)?;
    }
    Ok((deleted, drop_refs(txn, &removed.blobs, held_by(bucket, &removed))?))
}

/// Who holds the blobs of a version of an object in `bucket`.
fn held_by<'a>(bucket: &'a str, record: &'a ObjectRecord) -> Holder<'a> {
    Holder::OfObject { bucket, owner: record.owner.as_deref() }
}

fn is_marker(record: &ObjectRecord) -> bool {
    record.version.delete_marker
}

/// Makes the newest noncurrent version of a key without a current object
/// current again, unless it is a delete marker (which stays the latest).
fn promote_newest(txn: &dyn MetaTxn, row: &[u8]) -> StoreResult<()> {
    let newest = txn.find_version(row, &mut |_| true)?;
    let Some((inverted_seq, record)) = newest.filter(|(_, r)| !is_marker(r)) else { return Ok(()) };
    txn.remove_version(row, inverted_seq)?;
    txn.put_object(row, &record)
}

/// Removes a noncurrent version (or delete marker) of the key `row` from
/// [`VERSIONS`] and returns it.
fn take_noncurrent(txn: &dyn MetaTxn, row: &[u8], id: VersionId) -> StoreResult<Option<ObjectRecord>> {
    let Some((inverted_seq, record)) = find_noncurrent(txn, row, id)? else { return Ok(None) };
    txn.remove_version(row, inverted_seq)?;
    Ok(Some(record))
}

/// A noncurrent version of the key `row` and its [`VERSIONS`] key. A
/// numbered version is one lookup; the `null` version is found by walking
/// the key's versions (a key has at most one).
pub(super) fn find_noncurrent(
    txn: &dyn MetaRead,
    row: &[u8],
    id: VersionId,
) -> StoreResult<Option<(u64, ObjectRecord)>> {
    match id {
        VersionId::Seq(seq) => Ok(txn.version(row, !seq)?.filter(|r| !r.version.null).map(|r| (!seq, r))),
        VersionId::Null => txn.find_version(row, &mut |r| r.version.null),
    }
}

/// The latest version of a key without a current object: a delete marker,
/// if the key has versions at all; with its [`VERSIONS`] key.
fn latest_marker(txn: &dyn MetaRead, row: &[u8]) -> StoreResult<Option<(u64, ObjectRecord)>> {
    Ok(txn.find_version(row, &mut |_| true)?.filter(|(_, r)| is_marker(r)))
}

/// The version `id` of a key, or its current object without one, in a
/// read or a write transaction: what GET and a copy read. A delete marker
/// is [`StoreError::DeleteMarker`]; no such version, `NoSuchVersion`.
pub(super) fn read_version(
    txn: &dyn MetaRead,
    (bucket, key): (&str, &str),
    id: Option<VersionId>,
) -> StoreResult<ObjectRecord> {
    let row = object_key(bucket, key.as_bytes());
    let found = match (id, txn.object(&row)?) {
        (None, Some(current)) => return Ok(current),
        (Some(id), Some(current)) if id.matches(&current.version) => return Ok(current),
        (None, None) => latest_marker(txn, &row)?,
        (Some(id), _) => find_noncurrent(txn, &row, id)?,
    };
    resolve(found.map(|(_, r)| r), id)
}

/// What a lookup of version `asked` (the latest without one) found: the
/// record, a delete marker's error, or the right "not found".
pub(super) fn resolve(found: Option<ObjectRecord>, asked: Option<VersionId>) -> StoreResult<ObjectRecord> {
    match found {
        Some(record) if is_marker(&record) => Err(StoreError::DeleteMarker {
            version_id: VersionId::of(&record.version),
            last_modified_ms: record.last_modified_ms,
            requested: asked.is_some(),
        }),
        Some(record) => Ok(record),
        None if asked.is_some() => Err(StoreError::NoSuchVersion),
        None => Err(StoreError::NoSuchKey),
    }
}

/// The noncurrent version (or delete marker) `id` of the key `row`.
pub(super) fn noncurrent(txn: &dyn MetaTxn, row: &[u8], id: VersionId) -> StoreResult<Option<ObjectRecord>> {
    Ok(find_noncurrent(txn, row, id)?.map(|(_, record)| record))
}

/// Changes the version `id` of a key (its current object without one) in
/// place, wherever it is stored; returns it as changed. `change` may refuse.
pub(super) fn update_version<E, F>(
    txn: &dyn MetaTxn,
    (bucket, key): (&str, &str),
    id: Option<VersionId>,
    change: &F,
) -> Result<ObjectRecord, WriteError<E>>
where
    E: From<StoreError>,
    F: Fn(&mut ObjectRecord) -> Result<(), E>,
{
    let row = object_key(bucket, key.as_bytes());
    let (place, mut record) = locate(txn, (bucket, key), &row, id)?;
    change(&mut record).map_err(WriteError::Rejected)?;
    store_back(txn, &row, place, &record)?;
    Ok(record)
}

fn store_back(txn: &dyn MetaTxn, row: &[u8], place: Place, record: &ObjectRecord) -> StoreResult<()> {
    match place {
        Place::Current => txn.put_object(row, record),
        Place::Noncurrent(inverted_seq) => txn.put_version(row, inverted_seq, record),
    }
}

/// Where a version's record is stored.
enum Place {
    Current,
    /// In [`VERSIONS`], under this inverted sequence number.
    Noncurrent(u64),
}

/// The version `id` of a key (its current object without one), and where
/// it is; a delete marker cannot be changed.
fn locate(
    txn: &dyn MetaTxn,
    (bucket, key): (&str, &str),
    row: &[u8],
    id: Option<VersionId>,
) -> StoreResult<(Place, ObjectRecord)> {
    let current = super::txn::read_object(txn, bucket, key)?;
    if let Some(current) = current.filter(|c| id.is_none_or(|id| id.matches(&c.version))) {
        return Ok((Place::Current, current));
    }
    let found = match id {
        Some(id) => find_noncurrent(txn, row, id)?,
        None => latest_marker(txn, row)?,
    };
    match found {
        Some((inverted_seq, record)) if !is_marker(&record) => Ok((Place::Noncurrent(inverted_seq), record)),
        other => Err(resolve(other.map(|(_, r)| r), id).err().unwrap_or(StoreError::NoSuchKey)),
    }
}
