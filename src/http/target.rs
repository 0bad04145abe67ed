//! The names a request points at, decoded and checked once at the edge.
//!
//! A [`BucketName`] or an [`ObjectKey`] can only be made here, from a request
//! path, a virtual host or an `x-amz-copy-source` header, so a handler that
//! holds one knows it is valid UTF-8 and (for keys) within S3's length limit.
//! Whether a bucket name is acceptable for a *new* bucket is a stricter rule
//! ([`BucketName::valid_for_new_bucket`]): existing buckets are looked up by
//! any name, as S3 does, and answered NoSuchBucket.

use std::fmt;
use std::ops::Deref;

use percent_encoding::percent_decode_str;

use crate::error::{S3Error, S3ErrorCode, S3Result};

/// Longest key S3 accepts, in UTF-8 bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// A bucket name as the request gave it (percent-decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketName(String);

/// An object key, percent-decoded exactly: `+` stays `+`, `//` and a leading
/// `/` are kept. Never empty, at most [`MAX_KEY_BYTES`] bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectKey(String);

impl BucketName {
    /// Decodes a path segment or a virtual-host label.
    pub fn decode(raw: &str) -> S3Result<BucketName> {
        let name = percent_decode_str(raw).decode_utf8().map_err(|_| S3Error::new(S3ErrorCode::InvalidBucketName))?;
        Ok(BucketName(name.into_owned()))
    }

    /// The bucket label of a virtual-hosted Host header, taken as it is.
    pub fn from_host_label(label: String) -> BucketName {
        BucketName(label)
    }

    /// S3's naming rules for new buckets.
    /// Reference: <https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html>
    pub fn valid_for_new_bucket(&self) -> bool {
        let name = self.0.as_str();
        let bytes = name.as_bytes();
        let allowed = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-';
        let edge = |c: Option<&u8>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        (3..=63).contains(&bytes.len())
            && bytes.iter().copied().all(allowed)
            && edge(bytes.first())
            && edge(bytes.last())
            && !name.contains("..")
            && !name.contains(".-")
            && !name.contains("-.")
            && name.parse::<std::net::Ipv4Addr>().is_err()
            && !name.starts_with("xn--")
            && !name.starts_with("sthree-")
            && !name.ends_with("-s3alias")
            && !name.ends_with("--ol-s3")
    }
}

impl ObjectKey {
    /// Decodes the key part of a path; `None` when there is no key.
    pub fn decode(raw: &str) -> S3Result<Option<ObjectKey>> {
        if raw.is_empty() {
            return Ok(None);
        }
        let key = percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| S3Error::with_message(S3ErrorCode::InvalidArgument, "Object key is not valid UTF-8"))?;
        ObjectKey::checked(key.into_owned()).map(Some)
    }

    /// A key named by a form field (POST Object), not a path.
    pub fn from_form(key: String) -> S3Result<ObjectKey> {
        if key.is_empty() {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "User key must have a length greater than 0.",
            ));
        }
        ObjectKey::checked(key)
    }

    fn checked(key: String) -> S3Result<ObjectKey> {
        if key.len() > MAX_KEY_BYTES {
            return Err(S3Error::new(S3ErrorCode::KeyTooLongError));
        }
        Ok(ObjectKey(key))
    }
}

/// `x-amz-copy-source`: `[/]bucket/key[?versionId=id]`, URL-encoded; the
/// version id is returned as sent (`s3::versioning` parses it).
pub fn parse_copy_source(raw: &str) -> S3Result<(BucketName, ObjectKey, Option<String>)> {
    let invalid = || {
        S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
        )
    };
    let (path, version) = match raw.split_once("?versionId=") {
        Some((path, version)) => (path, Some(version)),
        None => (raw, None),
    };
    if version.is_some_and(str::is_empty) {
        return Err(S3Error::with_message(S3ErrorCode::InvalidArgument, "Invalid version id specified"));
    }
    let decoded = percent_decode_str(path).decode_utf8().map_err(|_| invalid())?;
    let trimmed = decoded.strip_prefix('/').unwrap_or(&decoded);
    let (bucket, key) = trimmed.split_once('/').ok_or_else(invalid)?;
    if bucket.is_empty() || key.is_empty() {
        return Err(invalid());
    }
    let version = version.map(str::to_string);
    Ok((BucketName(bucket.to_string()), ObjectKey::checked(key.to_string())?, version))
}

macro_rules! reads_as_str {
    ($($t:ty),*) => {$(
        impl Deref for $t {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<$t> for String {
            fn from(name: $t) -> String {
                name.0
            }
        }

        impl From<&$t> for String {
            fn from(name: &$t) -> String {
                name.0.clone()
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}
reads_as_str!(BucketName, ObjectKey);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_for_new_buckets() {
        let valid = |s: &str| BucketName(s.to_string()).valid_for_new_bucket();
        for good in ["abc", "my-bucket.data", "a1b", "123"] {
            assert!(valid(good), "{good}");
        }
        for bad in ["ab", "Abc", "a_b", "-ab", "ab-", "a..b", "192.168.1.1", "xn--abc", &"a".repeat(64), "abc-s3alias"]
        {
            assert!(!valid(bad), "{bad}");
        }
    }

    #[test]
    fn keys_are_decoded_exactly_and_limited() {
        let key = ObjectKey::decode("a%2Bb+c%20d//e").ok().flatten();
        assert_eq!(key.as_deref(), Some("a+b+c d//e"));
        assert!(matches!(ObjectKey::decode(""), Ok(None)));
        let longest = "k".repeat(MAX_KEY_BYTES);
        assert!(ObjectKey::decode(&longest).is_ok());
        let too_long = ObjectKey::decode(&format!("{longest}k")).err().map(|e| e.code);
        assert_eq!(too_long, Some(S3ErrorCode::KeyTooLongError));
        let not_utf8 = ObjectKey::decode("%FF").err().map(|e| e.code);
        assert_eq!(not_utf8, Some(S3ErrorCode::InvalidArgument));
    }

    #[test]
    fn copy_source_forms() {
        let ok = |s: &str| parse_copy_source(s).ok().map(|(b, k, _)| (b.to_string(), k.to_string()));
        let pair = |b: &str, k: &str| Some((b.to_string(), k.to_string()));
        assert_eq!(ok("b/k"), pair("b", "k"));
        assert_eq!(ok("/b/dir/a%20b%2Bc"), pair("b", "dir/a b+c"));
        assert_eq!(ok("/b//lead"), pair("b", "/lead"));
        assert_eq!(ok("b/k?versionId=null"), pair("b", "k"));
        assert_eq!(ok("b"), None);
        assert_eq!(ok("b/"), None);
        assert_eq!(ok("b/k?versionId="), None);
        let version = |s: &str| parse_copy_source(s).ok().and_then(|(_, _, v)| v);
        assert_eq!(version("b/k?versionId=0000000000000001").as_deref(), Some("0000000000000001"));
        let long = format!("b/{}", "k".repeat(MAX_KEY_BYTES + 1));
        assert_eq!(parse_copy_source(&long).err().map(|e| e.code), Some(S3ErrorCode::KeyTooLongError));
    }
}
