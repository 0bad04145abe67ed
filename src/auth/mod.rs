//! Request authentication: AWS Signature Version 4 (header and presigned URL),
//! Signature Version 2 (header and presigned URL), and the aws-chunked body
//! decoder that checks SigV4 chunk signatures.
//!
//! [`verify::verify`] is the only entry point a request needs; the pure signing
//! functions are public so that tests and tools can sign as a client would.

pub mod chunked;
pub mod sigv2;
pub mod sigv4;
pub mod verify;

mod clock;
mod query;
mod verify_v2;

pub use chunked::{AwsChunkedDecoder, ChunkSigner};
pub use verify::{verify, AuthContext, PayloadMode, VerifiedRequest};
