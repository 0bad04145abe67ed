//! Who may do what: the root user everything; a user only what concerns
//! their own buckets (and, for copies, a source in their own buckets).
//! Checked once per request, before the handler runs and before any body
//! byte is read. A bucket that does not exist is `NoSuchBucket` for anyone,
//! as in S3; someone else's is `AccessDenied`.

use super::error::{S3Error, S3ErrorCode, S3Result};
use super::{AppState, Principal, S3Request};
use crate::http::route::Op;
use crate::http::target::parse_copy_source;
use crate::store::StoreError;

pub fn authorize(state: &AppState, req: &S3Request) -> S3Result<()> {
    let Principal::User { canonical_id, .. } = &req.principal else { return Ok(()) };
    match req.route.op {
        // A user's own list; a bucket name another owns is refused by CreateBucket itself.
        Op::ListBuckets | Op::CreateBucket => return Ok(()),
        _ => {}
    }
    if let Some(bucket) = &req.route.bucket {
        require_owner(state, bucket, canonical_id)?;
    }
    if matches!(req.route.op, Op::CopyObject | Op::UploadPartCopy) {
        let (source, _, _) = parse_copy_source(req.header("x-amz-copy-source").unwrap_or_default())?;
        require_owner(state, &source, canonical_id)?;
    }
    Ok(())
}

/// A point read of the bucket's record (redb's cache), done here rather
/// than on a blocking thread, whose hand-off costs more.
fn require_owner(state: &AppState, bucket: &str, id: &str) -> S3Result<()> {
    match state.store.bucket(bucket) {
        Ok(record) if record.owner == id => Ok(()),
        Ok(_) => Err(S3Error::new(S3ErrorCode::AccessDenied)),
        Err(StoreError::NoSuchBucket) => {
            Err(S3Error::new(S3ErrorCode::NoSuchBucket).with_extra("BucketName", bucket.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}
