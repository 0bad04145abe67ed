//! How store failures become S3 errors: the one place that maps them.

pub use crate::error::{S3Error, S3ErrorCode, S3Result};

impl From<crate::store::StoreError> for S3Error {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            StoreError::NoSuchBucket => S3Error::new(S3ErrorCode::NoSuchBucket),
            StoreError::BucketExists(_) => S3Error::new(S3ErrorCode::BucketAlreadyOwnedByYou),
            StoreError::BucketNotEmpty => S3Error::new(S3ErrorCode::BucketNotEmpty),
            StoreError::NoSuchKey => S3Error::new(S3ErrorCode::NoSuchKey),
            StoreError::NoSuchUpload => S3Error::new(S3ErrorCode::NoSuchUpload),
            StoreError::StorageFull => S3Error::new(S3ErrorCode::StorageFull),
            StoreError::Unavailable => S3Error::new(S3ErrorCode::ServiceUnavailable),
            e @ (StoreError::Internal(_) | StoreError::RolledBack { .. }) => S3Error::internal(e),
        }
    }
}

impl S3Error {
    /// A failed file operation: a full disk is the client's `StorageFull`
    /// (507, which SDKs do not retry), anything else an internal error.
    pub fn io(e: std::io::Error) -> Self {
        match crate::store::is_disk_full(&e) {
            true => S3Error::new(S3ErrorCode::StorageFull),
            false => S3Error::internal(e),
        }
    }
}
