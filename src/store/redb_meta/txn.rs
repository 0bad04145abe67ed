//! [`MetaTxn`] over a redb write transaction, and [`MetaRead`] over it and
//! over a read transaction (a snapshot): each operation opens the table it
//! needs and encodes or decodes the records of `schema.rs`. Both kinds of
//! transaction open tables with the same call, so the lookups are written
//! once (`read_operations!`) for both.

use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::pack;
use crate::store::layout::{packed_position, BlobId};
use std::ops::Bound;

use crate::store::list::{as_slice_bound, bucket_bounds};
use crate::store::meta::{MetaRead, MetaTxn, RowVisitor, UploadStart, UploadVisitor, VersionVisitor};
use crate::store::schema::{
    decode, encode, object_key, part_key, upload_index_key, BlobSpan, BucketRecord, CompletedUpload, ObjectRecord,
    PartRecord, UploadRecord, BLOB_CONTENT, BLOB_CRCS, BLOB_REFS, BUCKETS, COMPLETED_UPLOADS, CONTENT, CONTENT_HOLDERS,
    DEAD_BLOBS, INLINE_BLOBS, OBJECTS, PARTS, STORE_META, UPLOADS, UPLOAD_INDEX, USERS, USER_KEYS, VERSIONS,
};
use crate::store::users::UserRecord;
use crate::store::StoreResult;

/// The [`STORE_META`] counter that orders versions.
const SEQ_COUNTER: &str = "version_seq";

/// One redb write transaction, seen as [`MetaTxn`].
pub(crate) struct RedbTxn<'a>(pub &'a WriteTransaction);

/// One redb read transaction (a consistent snapshot), seen as [`MetaRead`].
pub(crate) struct RedbRead<'a>(pub &'a ReadTransaction);

fn decoded<T: crate::store::schema::Stored>(value: Option<redb::AccessGuard<'_, &[u8]>>) -> StoreResult<Option<T>> {
    Ok(match value {
        Some(v) => Some(decode(v.value())?),
        None => None,
    })
}

/// The [`MetaRead`] operations of a transaction type `$txn` whose `.0`
/// opens tables (`ReadTransaction` and `WriteTransaction` both do).
macro_rules! read_operations {
    ($txn:ty) => {
        impl MetaRead for $txn {
            fn bucket(&self, name: &str) -> StoreResult<Option<BucketRecord>> {
                decoded(self.0.open_table(BUCKETS)?.get(name)?)
            }

            fn buckets(&self) -> StoreResult<Vec<(String, BucketRecord)>> {
                let mut out = Vec::new();
                for entry in self.0.open_table(BUCKETS)?.iter()? {
                    let (name, value) = entry?;
                    out.push((name.value().to_string(), decode(value.value())?));
                }
                Ok(out)
            }

            fn bucket_has_objects(&self, bucket: &str) -> StoreResult<bool> {
                let (lo, hi) = bucket_bounds(bucket);
                if self.0.open_table(OBJECTS)?.range(lo.as_slice()..hi.as_slice())?.next().is_some() {
                    return Ok(true);
                }
                let versions = self.0.open_table(VERSIONS)?;
                let found = versions.range((lo.as_slice(), 0)..(hi.as_slice(), 0))?.next().is_some();
                Ok(found)
            }

            fn object(&self, row: &[u8]) -> StoreResult<Option<ObjectRecord>> {
                decoded(self.0.open_table(OBJECTS)?.get(row)?)
            }

            fn scan_objects(
                &self,
                bucket: &str,
                start: Bound<&[u8]>,
                end: Option<&[u8]>,
                _hint: usize,
                visit: &mut RowVisitor,
            ) -> StoreResult<()> {
                let lo = match start {
                    Bound::Included(key) => Bound::Included(object_key(bucket, key)),
                    Bound::Excluded(key) => Bound::Excluded(object_key(bucket, key)),
                    Bound::Unbounded => Bound::Included(object_key(bucket, b"")),
                };
                let hi = end.map_or_else(|| bucket_bounds(bucket).1, |end| object_key(bucket, end));
                let table = self.0.open_table(OBJECTS)?;
                for row in table.range::<&[u8]>((as_slice_bound(&lo), Bound::Excluded(hi.as_slice())))? {
                    let (row_key, value) = row?;
                    if !visit(row_key.value().get(bucket.len() + 1..).unwrap_or_default(), value.value())? {
                        break;
                    }
                }
                Ok(())
            }

            fn version(&self, row: &[u8], inverted_seq: u64) -> StoreResult<Option<ObjectRecord>> {
                decoded(self.0.open_table(VERSIONS)?.get((row, inverted_seq))?)
            }

            fn scan_versions(&self, row: &[u8], from: u64, visit: &mut VersionVisitor) -> StoreResult<()> {
                let versions = self.0.open_table(VERSIONS)?;
                for entry in versions.range((row, from)..=(row, u64::MAX))? {
                    let (k, v) = entry?;
                    if !visit(k.value().1, v.value())? {
                        break;
                    }
                }
                Ok(())
            }

            fn next_versioned_key(&self, bucket: &str, from: &[u8]) -> StoreResult<Option<Vec<u8>>> {
                let versions = self.0.open_table(VERSIONS)?;
                let first = versions.range::<(&[u8], u64)>((object_key(bucket, from).as_slice(), 0)..)?.next();
                let Some(entry) = first else { return Ok(None) };
                let row = entry?.0.value().0.to_vec();
                Ok(row.strip_prefix(object_key(bucket, b"").as_slice()).map(<[u8]>::to_vec))
            }

            fn blob_refs(&self, id: BlobId) -> StoreResult<u64> {
                Ok(self.0.open_table(BLOB_REFS)?.get(id)?.map(|v| v.value()).unwrap_or(0))
            }

            fn blob_files_after(&self, after: BlobId, limit: usize) -> StoreResult<Vec<BlobId>> {
                let (refs, inline) = (self.0.open_table(BLOB_REFS)?, self.0.open_table(INLINE_BLOBS)?);
                let mut out = Vec::new();
                if after == BlobId::MAX {
                    return Ok(out);
                }
                for row in refs.range(after + 1..)? {
                    let id = row?.0.value();
                    if packed_position(id).is_none() && inline.get(id)?.is_none() {
                        out.push(id);
                        if out.len() == limit {
                            break;
                        }
                    }
                }
                Ok(out)
            }

            fn content_row(&self, key: &[u8; 40]) -> StoreResult<Option<Vec<u8>>> {
                Ok(self.0.open_table(CONTENT)?.get(key.as_slice())?.map(|v| v.value().to_vec()))
            }

            fn blob_content(&self, id: BlobId) -> StoreResult<Option<Vec<u8>>> {
                Ok(self.0.open_table(BLOB_CONTENT)?.get(id)?.map(|v| v.value().to_vec()))
            }

            fn holder_refs(&self, id: BlobId, owner: &str) -> StoreResult<u64> {
                Ok(self.0.open_table(CONTENT_HOLDERS)?.get((id, owner))?.map(|v| v.value()).unwrap_or(0))
            }

            fn upload(&self, id: &str) -> StoreResult<Option<UploadRecord>> {
                decoded(self.0.open_table(UPLOADS)?.get(id)?)
            }

            fn parts_after(&self, upload_id: &str, after: u16, limit: usize) -> StoreResult<Vec<(u16, PartRecord)>> {
                let table = self.0.open_table(PARTS)?;
                let (lo, hi) = (part_key(upload_id, after), part_key(upload_id, u16::MAX));
                let mut parts = Vec::new();
                for row in table.range::<&[u8]>((Bound::Excluded(lo.as_slice()), Bound::Included(hi.as_slice())))? {
                    if parts.len() == limit {
                        break;
                    }
                    let (k, v) = row?;
                    parts.push((crate::store::multipart::part_number(k.value()), decode(v.value())?));
                }
                Ok(parts)
            }

            fn scan_uploads(
                &self,
                bucket: &str,
                start: UploadStart,
                _hint: usize,
                visit: &mut UploadVisitor,
            ) -> StoreResult<()> {
                let lo = match start {
                    UploadStart::AtKey(key) => Bound::Included(object_key(bucket, key)),
                    // Past `key \0 <any upload id>`.
                    UploadStart::AfterKey(key) => Bound::Included([object_key(bucket, key).as_slice(), &[1]].concat()),
                    UploadStart::AfterUpload(key, id) => {
                        let key = std::str::from_utf8(key).unwrap_or_default();
                        Bound::Excluded(upload_index_key(bucket, key, id))
                    }
                };
                let (_, bucket_end) = bucket_bounds(bucket);
                let (index, uploads) = (self.0.open_table(UPLOAD_INDEX)?, self.0.open_table(UPLOADS)?);
                for row in index.range::<&[u8]>((as_slice_bound(&lo), Bound::Excluded(bucket_end.as_slice())))? {
                    let (row_key, _) = row?;
                    let Some((key, id)) = crate::store::multipart::split_index_key(row_key.value(), bucket) else {
                        continue;
                    };
                    let Some(value) = uploads.get(id)? else { continue };
                    if !visit(key.as_bytes(), id, value.value())? {
                        break;
                    }
                }
                Ok(())
            }

            fn completed(&self, row: &[u8]) -> StoreResult<Option<CompletedUpload>> {
                decoded(self.0.open_table(COMPLETED_UPLOADS)?.get(row)?)
            }

            fn user(&self, name: &str) -> StoreResult<Option<UserRecord>> {
                decoded(self.0.open_table(USERS)?.get(name)?)
            }

            fn users(&self) -> StoreResult<Vec<UserRecord>> {
                let mut out = Vec::new();
                for entry in self.0.open_table(USERS)?.iter()? {
                    out.push(decode(entry?.1.value())?);
                }
                Ok(out)
            }

            fn user_of_key(&self, access_key: &str) -> StoreResult<Option<String>> {
                Ok(self.0.open_table(USER_KEYS)?.get(access_key)?.map(|v| v.value().to_string()))
            }
        }
    };
}

read_operations!(RedbTxn<'_>);
read_operations!(RedbRead<'_>);

impl MetaTxn for RedbTxn<'_> {
    fn put_bucket(&self, name: &str, record: &BucketRecord) -> StoreResult<()> {
        self.0.open_table(BUCKETS)?.insert(name, encode(record)?.as_slice())?;
        Ok(())
    }

    fn remove_bucket(&self, name: &str) -> StoreResult<()> {
        self.0.open_table(BUCKETS)?.remove(name)?;
        Ok(())
    }

    fn put_object(&self, row: &[u8], record: &ObjectRecord) -> StoreResult<()> {
        self.0.open_table(OBJECTS)?.insert(row, encode(record)?.as_slice())?;
        Ok(())
    }

    fn remove_object(&self, row: &[u8]) -> StoreResult<()> {
        self.0.open_table(OBJECTS)?.remove(row)?;
        Ok(())
    }

    fn put_version(&self, row: &[u8], inverted_seq: u64, record: &ObjectRecord) -> StoreResult<()> {
        self.0.open_table(VERSIONS)?.insert((row, inverted_seq), encode(record)?.as_slice())?;
        Ok(())
    }

    fn remove_version(&self, row: &[u8], inverted_seq: u64) -> StoreResult<()> {
        self.0.open_table(VERSIONS)?.remove((row, inverted_seq))?;
        Ok(())
    }

    fn next_version_seq(&self) -> StoreResult<u64> {
        let mut meta = self.0.open_table(STORE_META)?;
        let seq = meta.get(SEQ_COUNTER)?.map(|v| v.value()).unwrap_or(0) + 1;
        meta.insert(SEQ_COUNTER, seq)?;
        Ok(seq)
    }

    fn set_blob_refs(&self, id: BlobId, count: u64) -> StoreResult<()> {
        let mut refs = self.0.open_table(BLOB_REFS)?;
        match count {
            0 => refs.remove(id)?,
            n => refs.insert(id, n)?,
        };
        Ok(())
    }

    fn put_block_crcs(&self, id: BlobId, crcs: &[u8]) -> StoreResult<()> {
        self.0.open_table(BLOB_CRCS)?.insert(id, crcs)?;
        Ok(())
    }

    fn store_small_body(&self, body: &[u8]) -> StoreResult<BlobId> {
        pack::append(self.0, body)
    }

    fn release_blob(&self, span: &BlobSpan) -> StoreResult<Option<BlobId>> {
        if let Some(position) = packed_position(span.id) {
            pack::release(self.0, position, span.size)?;
            return Ok(None);
        }
        self.0.open_table(BLOB_CRCS)?.remove(span.id)?;
        if span.inline {
            self.0.open_table(INLINE_BLOBS)?.remove(span.id)?;
            return Ok(None);
        }
        self.0.open_table(DEAD_BLOBS)?.insert(span.id, ())?;
        Ok(Some(span.id))
    }

    fn put_content_row(&self, key: &[u8; 40], row: &[u8]) -> StoreResult<()> {
        self.0.open_table(CONTENT)?.insert(key.as_slice(), row)?;
        Ok(())
    }

    fn remove_content_row(&self, key: &[u8]) -> StoreResult<()> {
        self.0.open_table(CONTENT)?.remove(key)?;
        Ok(())
    }

    fn put_blob_content(&self, id: BlobId, value: &[u8]) -> StoreResult<()> {
        self.0.open_table(BLOB_CONTENT)?.insert(id, value)?;
        Ok(())
    }

    fn remove_blob_content(&self, id: BlobId) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.0.open_table(BLOB_CONTENT)?.remove(id)?.map(|v| v.value().to_vec()))
    }

    fn set_holder_refs(&self, id: BlobId, owner: &str, count: u64) -> StoreResult<()> {
        let mut holders = self.0.open_table(CONTENT_HOLDERS)?;
        match count {
            0 => holders.remove((id, owner))?,
            n => holders.insert((id, owner), n)?,
        };
        Ok(())
    }

    fn forget_holders(&self, id: BlobId) -> StoreResult<()> {
        let mut holders = self.0.open_table(CONTENT_HOLDERS)?;
        if !holders.is_empty()? {
            holders.retain_in((id, "")..(id + 1, ""), |_, _| false)?;
        }
        Ok(())
    }

    fn put_upload(&self, id: &str, record: &UploadRecord) -> StoreResult<()> {
        self.0.open_table(UPLOADS)?.insert(id, encode(record)?.as_slice())?;
        let index_row = upload_index_key(&record.bucket, &record.key, id);
        self.0.open_table(UPLOAD_INDEX)?.insert(index_row.as_slice(), ())?;
        Ok(())
    }

    fn remove_upload(&self, id: &str, record: &UploadRecord) -> StoreResult<()> {
        self.0.open_table(UPLOADS)?.remove(id)?;
        let index_row = upload_index_key(&record.bucket, &record.key, id);
        self.0.open_table(UPLOAD_INDEX)?.remove(index_row.as_slice())?;
        Ok(())
    }

    fn put_part(&self, upload_id: &str, number: u16, part: &PartRecord) -> StoreResult<Option<PartRecord>> {
        let row = part_key(upload_id, number);
        decoded(self.0.open_table(PARTS)?.insert(row.as_slice(), encode(part)?.as_slice())?)
    }

    fn remove_parts(&self, upload_id: &str) -> StoreResult<()> {
        let (lo, hi) = (part_key(upload_id, 0), part_key(upload_id, u16::MAX));
        self.0.open_table(PARTS)?.retain_in::<&[u8], _>(lo.as_slice()..=hi.as_slice(), |_, _| false)?;
        Ok(())
    }

    fn put_completed(&self, row: &[u8], completed: &CompletedUpload) -> StoreResult<()> {
        self.0.open_table(COMPLETED_UPLOADS)?.insert(row, encode(completed)?.as_slice())?;
        Ok(())
    }

    fn remove_completed(&self, row: &[u8]) -> StoreResult<()> {
        self.0.open_table(COMPLETED_UPLOADS)?.remove(row)?;
        Ok(())
    }

    fn remove_completed_of_bucket(&self, bucket: &str) -> StoreResult<()> {
        let (lo, hi) = bucket_bounds(bucket);
        self.0.open_table(COMPLETED_UPLOADS)?.retain_in::<&[u8], _>(lo.as_slice()..hi.as_slice(), |_, _| false)?;
        Ok(())
    }

    fn put_user(&self, user: &UserRecord) -> StoreResult<()> {
        self.0.open_table(USERS)?.insert(user.name.as_str(), encode(user)?.as_slice())?;
        self.0.open_table(USER_KEYS)?.insert(user.access_key.as_str(), user.name.as_str())?;
        Ok(())
    }

    fn remove_user(&self, user: &UserRecord) -> StoreResult<()> {
        self.0.open_table(USERS)?.remove(user.name.as_str())?;
        self.0.open_table(USER_KEYS)?.remove(user.access_key.as_str())?;
        Ok(())
    }
}
