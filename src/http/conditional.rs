//! Every conditional header, evaluated in one place:
//! - GET/HEAD (and CopyObject's `x-amz-copy-source-if-*`) with S3's precedence
//!   (RFC 9110 section 13.2.2): If-Match, then If-Unmodified-Since (skipped
//!   when If-Match was given), then If-None-Match, then If-Modified-Since
//!   (skipped when If-None-Match was given);
//! - `If-Range` on a ranged GET;
//! - `If-None-Match` and `If-Match` on a write (PutObject, Complete), checked
//!   inside the commit against the current version.
//!
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

/// `If-Range`: whether to serve the requested range (else the whole current
/// object, so a resumed download never mixes two versions). An entity tag
/// must match exactly (a weak one never does); a date must equal
/// Last-Modified to the second (RFC 9110 section 13.1.5). No header: true.
pub fn if_range_holds(headers: &HeaderMap, etag: &str, modified: SystemTime) -> bool {
    let Some(value) = headers.get("if-range").and_then(|v| v.to_str().ok()).map(str::trim) else { return true };
    if value.starts_with('"') {
        return value.trim_matches('"') == etag.trim_matches('"');
    }
    match httpdate::parse_http_date(value) {
        Ok(date) => whole_seconds(date) == whole_seconds(modified),
        Err(_) => false,
    }
}

/// Which write precondition failed.
#[derive(Debug, PartialEq, Eq)]
pub enum WriteRefusal {
    /// The named condition (`If-None-Match` or `If-Match`) does not hold: 412.
    Failed(&'static str),
    /// `If-Match` on a key that does not exist: S3 answers 404 NoSuchKey.
    NoSuchKey,
}

/// `If-None-Match` (`*`: only if absent) and `If-Match` (compare and swap)
/// on a write, read from the request once and checked inside the commit,
/// so two racing writers cannot both win.
#[derive(Debug, Clone, Default)]
pub struct WriteConditions {
    if_none_match: Option<String>,
    if_match: Option<String>,
}

impl WriteConditions {
    pub fn from_headers(headers: &HeaderMap) -> WriteConditions {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        WriteConditions { if_none_match: text("if-none-match"), if_match: text("if-match") }
    }

    /// Checks the conditions against the ETag of the current version, if any.
    pub fn check(&self, current_etag: Option<&str>) -> Result<(), WriteRefusal> {
        if let (Some(list), Some(etag)) = (&self.if_none_match, current_etag) {
            if etag_matches(list, etag) {
                return Err(WriteRefusal::Failed("If-None-Match"));
            }
        }
        if let Some(list) = &self.if_match {
            let etag = current_etag.ok_or(WriteRefusal::NoSuchKey)?;
            if !etag_matches(list, etag) {
                return Err(WriteRefusal::Failed("If-Match"));
            }
        }
        Ok(())
    }
}

/// A conditional delete (DeleteObject's headers, or the `ETag`,
/// `LastModifiedTime` and `Size` of a DeleteObjects entry), checked inside
/// the delete's transaction. `If-Match` on a missing key is NoSuchKey, as on
/// a write; the time and size conditions hold for a missing key (S3 answers
/// 204 there).
/// Reference: <https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-deletes.html>
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeleteConditions {
    pub if_match: Option<String>,
    pub last_modified: Option<SystemTime>,
    pub size: Option<u64>,
}

/// The object a delete condition is checked against.
pub struct Current<'a> {
    pub etag: &'a str,
    pub last_modified: SystemTime,
    pub size: u64,
}

impl DeleteConditions {
    /// Reads DeleteObject's headers; `Err` names a header whose value is not
    /// a date or a size.
    /// A condition header that is present but not text is refused too: a
    /// safety precondition fails closed, never as if it were absent.
    pub fn from_headers(headers: &HeaderMap) -> Result<DeleteConditions, &'static str> {
        let text = |name: &'static str| -> Result<Option<&str>, &'static str> {
            headers.get(name).map(|v| v.to_str().map(str::trim).map_err(|_| name)).transpose()
        };
        let last_modified = match text(LAST_MODIFIED_HEADER)? {
            None => None,
            Some(v) => Some(parse_time(v).ok_or(LAST_MODIFIED_HEADER)?),
        };
        let size = match text(SIZE_HEADER)? {
            None => None,
            Some(v) => Some(v.parse().map_err(|_| SIZE_HEADER)?),
        };
        Ok(DeleteConditions { if_match: text("if-match")?.map(str::to_string), last_modified, size })
    }

    /// Checks the conditions against the current object, if any.
    pub fn check(&self, current: Option<Current<'_>>) -> Result<(), WriteRefusal> {
        let Some(current) = current else {
            return match self.if_match {
                Some(_) => Err(WriteRefusal::NoSuchKey),
                None => Ok(()),
            };
        };
        if self.if_match.as_deref().is_some_and(|list| !etag_matches(list, current.etag)) {
            return Err(WriteRefusal::Failed("If-Match"));
        }
        if self.last_modified.is_some_and(|t| whole_seconds(t) != whole_seconds(current.last_modified)) {
            return Err(WriteRefusal::Failed(LAST_MODIFIED_HEADER));
        }
        if self.size.is_some_and(|size| size != current.size) {
            return Err(WriteRefusal::Failed(SIZE_HEADER));
        }
        Ok(())
    }
}

const LAST_MODIFIED_HEADER: &str = "x-amz-if-match-last-modified-time";
const SIZE_HEADER: &str = "x-amz-if-match-size";

/// A timestamp as SDKs send it: an HTTP date in headers, ISO 8601 in XML.
pub fn parse_time(value: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(value).ok().or_else(|| humantime::parse_rfc3339_weak(value).ok())
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

    #[test]
    fn if_range_takes_a_strong_etag_or_the_exact_date() {
        let check = |value: &str| if_range_holds(&headers(&[("if-range", value)]), "abc", mtime());
        assert!(if_range_holds(&HeaderMap::new(), "abc", mtime()), "no header: the range is served");
        assert!(check("\"abc\""));
        assert!(!check("\"abd\""));
        assert!(!check("W/\"abc\""), "a weak tag never matches");
        assert!(check("Tue, 14 Nov 2023 22:13:20 GMT"), "Last-Modified itself");
        assert!(!check(AFTER) && !check(BEFORE), "any other date");
        assert!(!check("yesterday"), "not a date");
    }

    #[test]
    fn write_conditions() {
        let conditions = |pairs: &[(&'static str, &str)]| WriteConditions::from_headers(&headers(pairs));
        let absent = conditions(&[("if-none-match", "*")]);
        assert_eq!(absent.check(None), Ok(()));
        assert_eq!(absent.check(Some("abc")), Err(WriteRefusal::Failed("If-None-Match")));
        let swap = conditions(&[("if-match", "\"abc\"")]);
        assert_eq!(swap.check(Some("abc")), Ok(()));
        assert_eq!(swap.check(Some("abd")), Err(WriteRefusal::Failed("If-Match")));
        assert_eq!(swap.check(None), Err(WriteRefusal::NoSuchKey));
        assert_eq!(conditions(&[]).check(Some("abc")), Ok(()));
    }

    #[test]
    fn delete_conditions() {
        let t = mtime();
        let current = || Some(Current { etag: "abc", last_modified: t, size: 5 });
        let cond = |h: &[(&'static str, &str)]| DeleteConditions::from_headers(&headers(h));
        let ok = |c: Result<DeleteConditions, &str>, cur| c.ok().map(|c| c.check(cur));
        assert_eq!(ok(cond(&[("if-match", "\"abc\"")]), current()), Some(Ok(())));
        assert_eq!(ok(cond(&[("if-match", "*")]), current()), Some(Ok(())));
        assert_eq!(ok(cond(&[("if-match", "\"abd\"")]), current()), Some(Err(WriteRefusal::Failed("If-Match"))));
        assert_eq!(ok(cond(&[("if-match", "*")]), None), Some(Err(WriteRefusal::NoSuchKey)));
        assert_eq!(ok(cond(&[("x-amz-if-match-size", "5")]), current()), Some(Ok(())));
        assert_eq!(ok(cond(&[("x-amz-if-match-size", "6")]), current()), Some(Err(WriteRefusal::Failed(SIZE_HEADER))));
        assert_eq!(ok(cond(&[("x-amz-if-match-size", "6")]), None), Some(Ok(())), "a missing key is no mismatch");
        let date = httpdate::fmt_http_date(t);
        assert_eq!(ok(cond(&[("x-amz-if-match-last-modified-time", &date)]), current()), Some(Ok(())));
        let other = httpdate::fmt_http_date(t + Duration::from_secs(1));
        let failed = Some(Err(WriteRefusal::Failed(LAST_MODIFIED_HEADER)));
        assert_eq!(ok(cond(&[("x-amz-if-match-last-modified-time", &other)]), current()), failed);
        assert_eq!(cond(&[("x-amz-if-match-size", "five")]).err(), Some(SIZE_HEADER));
        assert_eq!(cond(&[("x-amz-if-match-last-modified-time", "yesterday")]).err(), Some(LAST_MODIFIED_HEADER));
        assert_eq!(parse_time("2023-11-14T22:13:20.000Z"), Some(t));
        let mut not_text = HeaderMap::new();
        if let Ok(v) = http::HeaderValue::from_bytes(b"\"\xff\"") {
            not_text.insert("if-match", v);
        }
        assert_eq!(DeleteConditions::from_headers(&not_text).err(), Some("if-match"), "fails closed");
    }
}
