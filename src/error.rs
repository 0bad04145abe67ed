//! The S3 error vocabulary, shared by every layer that answers a client
//! (`http`, `auth`, `s3`): every code is declared once, with its HTTP status
//! and default message, so the code and the status can never drift apart.
//! How store failures become S3 errors is `s3::error`'s business.
//! Reference: <https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html>

use std::sync::Arc;

use http::StatusCode;

macro_rules! s3_codes {
    ($($code:ident => $status:ident, $msg:literal;)*) => {
        /// An S3 error code, as it appears in `<Code>` of the error XML.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum S3ErrorCode { $($code),* }

        impl S3ErrorCode {
            pub fn as_str(self) -> &'static str {
                match self { $(S3ErrorCode::$code => stringify!($code)),* }
            }
            pub fn status(self) -> StatusCode {
                match self { $(S3ErrorCode::$code => StatusCode::$status),* }
            }
            pub fn default_message(self) -> &'static str {
                match self { $(S3ErrorCode::$code => $msg),* }
            }
        }
    };
}

s3_codes! {
    AccessDenied => FORBIDDEN, "Access Denied";
    // S3's words, its misspelling included: clients and tests match on them.
    AccessForbidden => FORBIDDEN, "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.";
    AuthorizationHeaderMalformed => BAD_REQUEST, "The authorization header is malformed.";
    AuthorizationQueryParametersError => BAD_REQUEST, "Error parsing the X-Amz-Credential parameter.";
    BadRequest => BAD_REQUEST, "Bad Request";
    BadDigest => BAD_REQUEST, "The Content-MD5 or checksum value that you specified did not match what the server received.";
    BucketAlreadyExists => CONFLICT, "The requested bucket name is not available.";
    BucketAlreadyOwnedByYou => CONFLICT, "Your previous request to create the named bucket succeeded and you already own it.";
    BucketNotEmpty => CONFLICT, "The bucket you tried to delete is not empty.";
    EntityTooLarge => BAD_REQUEST, "Your proposed upload exceeds the maximum allowed object size.";
    EntityTooSmall => BAD_REQUEST, "Your proposed upload is smaller than the minimum allowed object size.";
    IncompleteBody => BAD_REQUEST, "You did not provide the number of bytes specified by the Content-Length HTTP header.";
    InternalError => INTERNAL_SERVER_ERROR, "We encountered an internal error. Please try again.";
    InvalidAccessKeyId => FORBIDDEN, "The AWS access key ID you provided does not exist in our records.";
    InvalidArgument => BAD_REQUEST, "Invalid Argument";
    InvalidBucketName => BAD_REQUEST, "The specified bucket is not valid.";
    InvalidDigest => BAD_REQUEST, "The Content-MD5 or checksum value you specified is not valid.";
    InvalidPart => BAD_REQUEST, "One or more of the specified parts could not be found.";
    InvalidPartNumber => RANGE_NOT_SATISFIABLE, "The requested partnumber is not satisfiable";
    InvalidPartOrder => BAD_REQUEST, "The list of parts was not in ascending order.";
    InvalidRange => RANGE_NOT_SATISFIABLE, "The requested range is not satisfiable";
    InvalidRequest => BAD_REQUEST, "Invalid Request";
    KeyTooLongError => BAD_REQUEST, "Your key is too long";
    InvalidTag => BAD_REQUEST, "The tag provided was not a valid tag.";
    NoSuchTagSet => NOT_FOUND, "The TagSet does not exist";
    MalformedACLError => BAD_REQUEST, "The XML you provided was not well-formed or did not validate against our published schema.";
    MaxPostPreDataLengthExceededError => BAD_REQUEST, "Your POST request fields preceding the upload file were too large.";
    MalformedPOSTRequest => BAD_REQUEST, "The body of your POST request is not well-formed multipart/form-data.";
    InvalidPolicyDocument => BAD_REQUEST, "The content of the form does not meet the conditions specified in the policy document.";
    MalformedPolicy => BAD_REQUEST, "Policies must be valid JSON and the first byte must be '{'";
    UnresolvableGrantByEmailAddress => BAD_REQUEST, "The email address you provided does not match any account on record.";
    UnexpectedContent => BAD_REQUEST, "This request does not support content";
    NoSuchBucketPolicy => NOT_FOUND, "The bucket policy does not exist";
    MalformedXML => BAD_REQUEST, "The XML you provided was not well-formed or did not validate against our published schema.";
    MetadataTooLarge => BAD_REQUEST, "Your metadata headers exceed the maximum allowed metadata size.";
    MethodNotAllowed => METHOD_NOT_ALLOWED, "The specified method is not allowed against this resource.";
    MissingContentLength => LENGTH_REQUIRED, "You must provide the Content-Length HTTP header.";
    MissingSecurityHeader => BAD_REQUEST, "Your request is missing a required header.";
    NoSuchBucket => NOT_FOUND, "The specified bucket does not exist";
    NoSuchKey => NOT_FOUND, "The specified key does not exist.";
    NoSuchVersion => NOT_FOUND, "The specified version does not exist.";
    NoSuchEntity => NOT_FOUND, "The user with that name cannot be found.";
    EntityAlreadyExists => CONFLICT, "A user with that name already exists.";
    NoSuchUpload => NOT_FOUND, "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.";
    NoSuchLifecycleConfiguration => NOT_FOUND, "The lifecycle configuration does not exist";
    NoSuchCORSConfiguration => NOT_FOUND, "The CORS configuration does not exist";
    NotImplemented => NOT_IMPLEMENTED, "A header or query you provided implies functionality that is not implemented.";
    NotModified => NOT_MODIFIED, "Not Modified";
    PreconditionFailed => PRECONDITION_FAILED, "At least one of the pre-conditions you specified did not hold";
    RequestTimeout => BAD_REQUEST, "Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed.";
    RequestTimeTooSkewed => FORBIDDEN, "The difference between the request time and the server's time is too large.";
    ServiceUnavailable => SERVICE_UNAVAILABLE, "Service is unable to handle request. Please retry.";
    SlowDown => SERVICE_UNAVAILABLE, "Please reduce your request rate.";
    SignatureDoesNotMatch => FORBIDDEN, "The request signature we calculated does not match the signature you provided. Check your key and signing method.";
    StorageFull => INSUFFICIENT_STORAGE, "The storage is full. Delete objects (or abort multipart uploads) to free space, then retry.";
    XAmzContentSHA256Mismatch => BAD_REQUEST, "The provided 'x-amz-content-sha256' header does not match what was computed.";
    ExpiredToken => BAD_REQUEST, "The provided token has expired.";
}

/// An S3 error ready to be rendered: code, human message and optional extra
/// elements (for example `RequestTime` and `ServerTime` of `RequestTimeTooSkewed`).
#[derive(Debug, Clone)]
pub struct S3Error {
    pub code: S3ErrorCode,
    pub message: String,
    /// Extra `<Name>value</Name>` elements placed inside `<Error>`.
    pub extra: Vec<(&'static str, String)>,
    /// Extra response headers (for example `Content-Range` on `InvalidRange`).
    pub headers: Vec<(&'static str, String)>,
    /// What went wrong inside, for the log only (never sent to the client):
    /// the failure with its source chain. The server logs it once, with the
    /// request id, when it answers.
    pub cause: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl S3Error {
    pub fn new(code: S3ErrorCode) -> Self {
        S3Error {
            code,
            message: code.default_message().to_string(),
            extra: Vec::new(),
            headers: Vec::new(),
            cause: None,
        }
    }

    pub fn with_message(code: S3ErrorCode, message: impl Into<String>) -> Self {
        S3Error { message: message.into(), ..S3Error::new(code) }
    }

    /// Adds an element to the error body, e.g. `BucketName` or `Key`.
    pub fn with_extra(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.extra.push((name, value.into()));
        self
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// An internal failure: the client sees `InternalError`, the log its
    /// cause (and the cause's sources).
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        S3Error::new(S3ErrorCode::InternalError).with_cause(cause)
    }

    /// Keeps `cause` for the log.
    pub fn with_cause(mut self, cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        self.cause = Some(Arc::from(cause.into()));
        self
    }

    /// The cause and each of its sources, `: `-separated, for the log.
    pub fn cause_chain(&self) -> Option<String> {
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(self.cause.as_deref()?);
        let mut out = Vec::new();
        while let Some(e) = next {
            out.push(e.to_string());
            next = e.source();
        }
        Some(out.join(": "))
    }
}

impl From<S3ErrorCode> for S3Error {
    fn from(code: S3ErrorCode) -> Self {
        S3Error::new(code)
    }
}

impl std::fmt::Display for S3Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for S3Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

pub type S3Result<T> = Result<T, S3Error>;
