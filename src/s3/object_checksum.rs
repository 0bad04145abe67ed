//! A multipart object's checksum: built from its parts' checksums when it is
//! completed, and checked against what the CompleteMultipartUpload request
//! claims in `x-amz-checksum-<algorithm>` and `x-amz-checksum-type`.
//!
//! On Complete those headers describe the object, never the XML body:
//! a FULL_OBJECT CRC of all the bytes, or a COMPOSITE value (the checksum of
//! the parts' checksums, optionally followed by `-<part count>`). A value
//! that is not base64 of the algorithm's length is InvalidRequest; a value or
//! type that does not match the object is BadDigest, and nothing is created.
//! Reference: <https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html>

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use http::HeaderMap;

use super::error::{S3Error, S3ErrorCode, S3Result};
use super::headers::{checksum_type_name, header};
use super::ingest::{checksum_header, decode_checksum};
use crate::store::digest::{combine_parts, ChecksumAlgorithm};
use crate::store::schema::{PartRecord, StoredChecksum, UploadRecord};

/// What a CompleteMultipartUpload request claims about the object.
#[derive(Debug, Default)]
pub struct Claims {
    checksum: Option<ChecksumClaim>,
    /// `x-amz-checksum-type`: `true` for FULL_OBJECT, `false` for COMPOSITE.
    full_object: Option<bool>,
}

#[derive(Debug)]
struct ChecksumClaim {
    algorithm: ChecksumAlgorithm,
    raw: Vec<u8>,
    /// The `-N` suffix of a composite value, if given.
    parts: Option<usize>,
}

impl Claims {
    /// Reads the claims; malformed values are refused before any work.
    pub fn from_headers(headers: &HeaderMap) -> S3Result<Claims> {
        let full_object = match header(headers, "x-amz-checksum-type") {
            None => None,
            Some(v) if v.eq_ignore_ascii_case("FULL_OBJECT") => Some(true),
            Some(v) if v.eq_ignore_ascii_case("COMPOSITE") => Some(false),
            Some(_) => {
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidRequest,
                    "Value for x-amz-checksum-type header is invalid.",
                ))
            }
        };
        let checksum = match checksum_header(headers)? {
            None => None,
            Some((algorithm, value)) => {
                let (value, parts) = split_part_count(value.trim());
                Some(ChecksumClaim { algorithm, raw: decode_checksum(algorithm, value)?, parts })
            }
        };
        Ok(Claims { checksum, full_object })
    }

    /// Checks the claims against the object about to be created from `parts`
    /// (whose stored checksum is `object`).
    pub fn check(&self, object: Option<&StoredChecksum>, parts: &[&PartRecord]) -> S3Result<()> {
        if let (Some(claimed), Some(object)) = (self.full_object, object) {
            if claimed == object.composite {
                let mode = checksum_type_name(!object.composite);
                return Err(S3Error::with_message(
                    S3ErrorCode::BadDigest,
                    format!("The upload was created using the {mode} checksum mode. The complete request must use the same checksum mode."),
                ));
            }
        }
        let Some(claim) = &self.checksum else { return Ok(()) };
        let same_algorithm = object.filter(|o| o.algorithm == claim.algorithm);
        // A `-N` count only belongs to a COMPOSITE value.
        let wrong_form = same_algorithm.is_some_and(|o| claim.parts.is_some() && !o.composite);
        let actual = match same_algorithm {
            Some(object) => stored_raw(object),
            None => computed_raw(claim, parts),
        };
        let Some(actual) = actual else {
            let expected = object.map_or("null", |o| o.algorithm.name());
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                format!(
                    "Checksum Type mismatch occurred, expected checksum Type: {}, actual checksum Type: {}",
                    expected.to_ascii_lowercase(),
                    claim.algorithm.name().to_ascii_lowercase()
                ),
            ));
        };
        if actual != claim.raw || wrong_form || claim.parts.is_some_and(|n| n != parts.len()) {
            return Err(S3Error::with_message(
                S3ErrorCode::BadDigest,
                format!("The {} you specified did not match the calculated checksum.", claim.algorithm.name()),
            ));
        }
        Ok(())
    }
}

/// The object's checksum from its parts': the upload's algorithm and type, or
/// a FULL_OBJECT CRC64NVME when the upload chose none (parts default to it).
pub fn object_checksum(upload: &UploadRecord, parts: &[&PartRecord]) -> Option<StoredChecksum> {
    let alg = upload.checksum_algorithm.unwrap_or(ChecksumAlgorithm::Crc64Nvme);
    let full_object = upload.full_object_checksum || upload.checksum_algorithm.is_none();
    let combined = combine_parts(alg, &part_checksums(parts, alg)?, full_object)?;
    let mut value = BASE64.encode(combined);
    if !full_object {
        value = format!("{value}-{}", parts.len());
    }
    Some(StoredChecksum { algorithm: alg, value, composite: !full_object })
}

/// Each part's raw checksum in `alg` with its size; `None` if a part lacks one.
fn part_checksums<'a>(parts: &[&'a PartRecord], alg: ChecksumAlgorithm) -> Option<Vec<(&'a [u8], u64)>> {
    parts
        .iter()
        .map(|p| p.checksum.as_ref().filter(|(a, _)| *a == alg).map(|(_, raw)| (raw.as_slice(), p.span.size)))
        .collect()
}

/// The digest bytes of a stored checksum (without a composite's `-N`).
fn stored_raw(object: &StoredChecksum) -> Option<Vec<u8>> {
    BASE64.decode(split_part_count(&object.value).0).ok()
}

/// The claimed algorithm's value computed from the parts, when they all
/// carry that algorithm: a composite if the claim has `-N` or the algorithm
/// has no full-object form (SHA), else the full-object CRC.
fn computed_raw(claim: &ChecksumClaim, parts: &[&PartRecord]) -> Option<Vec<u8>> {
    let sha = matches!(claim.algorithm, ChecksumAlgorithm::Sha1 | ChecksumAlgorithm::Sha256);
    let full_object = claim.parts.is_none() && !sha;
    combine_parts(claim.algorithm, &part_checksums(parts, claim.algorithm)?, full_object)
}

/// `value-N` -> (`value`, `Some(N)`); base64 has no `-`, so any `-` starts the count.
pub(super) fn split_part_count(value: &str) -> (&str, Option<usize>) {
    match value.rsplit_once('-') {
        Some((base, count)) => match count.parse() {
            Ok(n) => (base, Some(n)),
            Err(_) => (value, None),
        },
        None => (value, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_counts_are_split_from_composite_values() {
        assert_eq!(split_part_count("AAAAAA==-3"), ("AAAAAA==", Some(3)));
        assert_eq!(split_part_count("AAAAAA=="), ("AAAAAA==", None));
        assert_eq!(split_part_count("AAAAAA==-x"), ("AAAAAA==-x", None));
    }

    #[test]
    fn malformed_claims_are_invalid_requests() {
        let claims = |name: &str, value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                http::HeaderValue::from_str(value).expect("value"),
            );
            Claims::from_headers(&headers).err().map(|e| e.code)
        };
        assert_eq!(claims("x-amz-checksum-crc32", "not base64!"), Some(S3ErrorCode::InvalidRequest));
        assert_eq!(claims("x-amz-checksum-crc32", "AAAAAAAA"), Some(S3ErrorCode::InvalidRequest), "6 bytes");
        assert_eq!(claims("x-amz-checksum-type", "WHOLE"), Some(S3ErrorCode::InvalidRequest));
        assert_eq!(claims("x-amz-checksum-crc32", "AAAAAA==-2"), None);
        assert_eq!(claims("x-amz-checksum-type", "full_object"), None);
    }
}
