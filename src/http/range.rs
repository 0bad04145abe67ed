//! The `Range` header of GetObject: parsing is separate from checking against
//! an object's length. S3 serves one range only: a malformed or multi-range
//! header is ignored and the whole object is returned (awslabs/aws-c-s3#257).
//! Reference: RFC 9110 section 14.1.2, and
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html>

use std::ops::Range;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=a-b` or `bytes=a-` (`end` inclusive).
    FromTo { start: u64, end: Option<u64> },
    /// `bytes=-n`: the last n bytes.
    Suffix(u64),
}

/// The range is outside the object: 416 `InvalidRange`.
#[derive(Debug, PartialEq, Eq)]
pub struct Unsatisfiable;

impl ByteRange {
    /// Parses a single byte range; `None` means "ignore the header".
    pub fn parse(header: &str) -> Option<ByteRange> {
        let spec = header.trim().strip_prefix("bytes=")?.trim();
        if spec.contains(',') {
            return None;
        }
        let (first, last) = spec.split_once('-')?;
        let number = |s: &str| -> Option<u64> {
            let s = s.trim();
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
        };
        match (first.trim().is_empty(), last.trim().is_empty()) {
            (true, false) => Some(ByteRange::Suffix(number(last)?)),
            (false, true) => Some(ByteRange::FromTo { start: number(first)?, end: None }),
            (false, false) => {
                let (start, end) = (number(first)?, number(last)?);
                (end >= start).then_some(ByteRange::FromTo { start, end: Some(end) })
            }
            (true, true) => None,
        }
    }

    /// The bytes to send from an object of `len` bytes (end clamped to the size).
    pub fn resolve(self, len: u64) -> Result<Range<u64>, Unsatisfiable> {
        match self {
            ByteRange::FromTo { start, .. } if start >= len => Err(Unsatisfiable),
            ByteRange::FromTo { start, end } => Ok(start..end.map_or(len, |e| e.saturating_add(1).min(len))),
            ByteRange::Suffix(0) => Err(Unsatisfiable),
            ByteRange::Suffix(_) if len == 0 => Err(Unsatisfiable),
            ByteRange::Suffix(n) => Ok(len.saturating_sub(n)..len),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(ByteRange::parse("bytes=0-99"), Some(ByteRange::FromTo { start: 0, end: Some(99) }));
        assert_eq!(ByteRange::parse("bytes=100-"), Some(ByteRange::FromTo { start: 100, end: None }));
        assert_eq!(ByteRange::parse("bytes=-5"), Some(ByteRange::Suffix(5)));
    }

    #[test]
    fn malformed_and_multi_ranges_are_ignored() {
        for h in ["bytes=5-1", "bytes=a-b", "bytes=-", "items=0-1", "bytes=0-1,3-4", "bytes=+1-2", ""] {
            assert_eq!(ByteRange::parse(h), None, "{h}");
        }
    }

    #[test]
    fn resolution_clamps_and_rejects() {
        let r = |h: &str, len| ByteRange::parse(h).map(|r| r.resolve(len));
        assert_eq!(r("bytes=0-99", 10), Some(Ok(0..10)));
        assert_eq!(r("bytes=9-", 10), Some(Ok(9..10)));
        assert_eq!(r("bytes=10-", 10), Some(Err(Unsatisfiable)));
        assert_eq!(r("bytes=-100", 10), Some(Ok(0..10)));
        assert_eq!(r("bytes=-0", 10), Some(Err(Unsatisfiable)));
        assert_eq!(r("bytes=0-0", 0), Some(Err(Unsatisfiable)));
        assert_eq!(r("bytes=-1", 0), Some(Err(Unsatisfiable)));
    }

    proptest! {
        #[test]
        fn resolved_ranges_stay_inside(start in 0u64..1000, end in 0u64..1000, len in 0u64..1000) {
            if let Some(Ok(range)) = ByteRange::parse(&format!("bytes={start}-{end}")).map(|r| r.resolve(len)) {
                prop_assert!(range.start < range.end && range.end <= len);
            }
            if let Some(Ok(range)) = ByteRange::parse(&format!("bytes=-{end}")).map(|r| r.resolve(len)) {
                prop_assert!(range.start < range.end && range.end == len);
            }
        }
    }
}
