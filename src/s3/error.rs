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
            StoreError::NoSuchVersion => S3Error::new(S3ErrorCode::NoSuchVersion),
            StoreError::UserExists => S3Error::new(S3ErrorCode::EntityAlreadyExists),
            StoreError::NoSuchUser => S3Error::new(S3ErrorCode::NoSuchEntity),
            StoreError::DeleteMarker { version_id, last_modified_ms, requested } => {
                let e = match requested {
                    true => S3Error::new(S3ErrorCode::MethodNotAllowed).with_header("allow", "DELETE"),
                    false => S3Error::new(S3ErrorCode::NoSuchKey),
                };
                e.with_header("x-amz-delete-marker", "true")
                    .with_header("x-amz-version-id", version_id.to_string())
                    .with_header("last-modified", super::headers::http_date(last_modified_ms))
            }
            StoreError::StorageFull => S3Error::new(S3ErrorCode::StorageFull),
            StoreError::Unavailable => S3Error::new(S3ErrorCode::ServiceUnavailable),
            StoreError::Busy => S3Error::new(S3ErrorCode::SlowDown),
            e @ (StoreError::Internal { .. }
            | StoreError::RolledBack { .. }
            | StoreError::InUse(_)
            | StoreError::SharedFolder(_)) => S3Error::internal(e),
        }
    }
}
