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
            e @ (StoreError::Internal { .. } | StoreError::RolledBack { .. }) => S3Error::internal(e),
        }
    }
}
