//! Conditional GET/HEAD headers with S3's precedence (RFC 9110 section 13.2.2):
//! If-Match, then If-Unmodified-Since (skipped when If-Match was given), then
//! If-None-Match, then If-Modified-Since (skipped when If-None-Match was given).
//! Reference: <https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html>

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Proceed,
    /// 304 Not Modified.
    NotModified,
    /// 412 PreconditionFailed.
    PreconditionFailed,
}

/// Does an `If-Match`-style list (`"a", "b"`, `*`, weak tags) name `etag`?
pub fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.trim_start_matches("W/").trim_matches('"') == etag.trim_matches('"')
    })
}

/// Whole seconds since the epoch: HTTP dates have no finer resolution.
fn whole_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs()
}

fn header_date(headers: &HeaderMap, name: &str) -> Option<u64> {
    let value = headers.get(name)?.to_str().ok()?;
    httpdate::parse_http_date(value).ok().map(whole_seconds)
}

/// Evaluates the conditional headers for an object with this ETag and mtime,
/// using the given header names (`if-match`, or `x-amz-copy-source-if-match`...).
pub fn evaluate_with(headers: &HeaderMap, names: [&str; 4], etag: &str, modified: SystemTime) -> Outcome {
    let [if_match, if_unmodified, if_none_match, if_modified] = names;
    let modified = whole_seconds(modified);
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match text(if_match) {
        Some(list) if !etag_matches(list, etag) => return Outcome::PreconditionFailed,
        Some(_) => {}
        None => {
            if header_date(headers, if_unmodified).is_some_and(|since| modified > since) {
                return Outcome::PreconditionFailed;
            }
        }
    }
    match text(if_none_match) {
        Some(list) if etag_matches(list, etag) => Outcome::NotModified,
        Some(_) => Outcome::Proceed,
        None if header_date(headers, if_modified).is_some_and(|since| modified <= since) => Outcome::NotModified,
        None => Outcome::Proceed,
    }
}

/// The plain GET/HEAD conditional headers.
pub fn evaluate(headers: &HeaderMap, etag: &str, modified: SystemTime) -> Outcome {
    evaluate_with(headers, ["if-match", "if-unmodified-since", "if-none-match", "if-modified-since"], etag, modified)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            if let Ok(v) = value.parse() {
                map.insert(*name, v);
            }
        }
        map
    }

    const ETAG: &str = "\"abc\"";
    fn mtime() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }
    const BEFORE: &str = "Mon, 13 Nov 2023 00:00:00 GMT";
    const AFTER: &str = "Thu, 16 Nov 2023 00:00:00 GMT";

    #[test]
    fn if_match_true_overrides_unmodified_since_false() {
        let h = headers(&[("if-match", "\"abc\""), ("if-unmodified-since", BEFORE)]);
        assert_eq!(evaluate(&h, ETAG, mtime()), Outcome::Proceed);
    }

    #[test]
    fn if_none_match_false_and_modified_since_true_is_304() {
        let h = headers(&[("if-none-match", "\"abc\""), ("if-modified-since", BEFORE)]);
        assert_eq!(evaluate(&h, ETAG, mtime()), Outcome::NotModified);
    }

    #[test]
    fn single_conditions() {
        assert_eq!(evaluate(&headers(&[("if-match", "\"x\"")]), ETAG, mtime()), Outcome::PreconditionFailed);
        assert_eq!(evaluate(&headers(&[("if-match", "*")]), ETAG, mtime()), Outcome::Proceed);
        assert_eq!(evaluate(&headers(&[("if-unmodified-since", BEFORE)]), ETAG, mtime()), Outcome::PreconditionFailed);
        assert_eq!(evaluate(&headers(&[("if-unmodified-since", AFTER)]), ETAG, mtime()), Outcome::Proceed);
        assert_eq!(evaluate(&headers(&[("if-none-match", "abc")]), ETAG, mtime()), Outcome::NotModified);
        assert_eq!(evaluate(&headers(&[("if-modified-since", AFTER)]), ETAG, mtime()), Outcome::NotModified);
        assert_eq!(evaluate(&headers(&[("if-modified-since", BEFORE)]), ETAG, mtime()), Outcome::Proceed);
    }
}
