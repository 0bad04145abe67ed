//! Request timestamps: parsing the forms clients send, and the 15-minute window.
//!
//! SigV4 takes `x-amz-date` in ISO 8601 basic form (`20130524T000000Z`) or else
//! `Date` (RFC 1123); SigV2 usually sends RFC 1123 in either header.
//! The skew error carries `RequestTime`, `ServerTime` and
//! `MaxAllowedSkewMilliseconds` so that SDKs can correct their clock
//! (<https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html>,
//! versitygw#1514).

use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use time::format_description::well_known::Rfc2822;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::error::{S3Error, S3ErrorCode, S3Result};

/// How far a request time may be from ours, either way.
pub(crate) const MAX_SKEW: Duration = Duration::minutes(15);
const MAX_SKEW_MILLIS: &str = "900000";

const AMZ_DATE: &[BorrowedFormatItem<'_>] = format_description!("[year][month][day]T[hour][minute][second]Z");
const ISO8601: &[BorrowedFormatItem<'_>] = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

/// A request time as sent and as understood.
#[derive(Debug, Clone)]
pub(crate) struct RequestTime {
    /// The header value exactly as sent, echoed in `RequestTime`.
    pub sent: String,
    pub at: OffsetDateTime,
    /// `yyyymmddThhmmssZ`, the form used in the SigV4 string to sign.
    pub amz_date: String,
    /// Whether it came from `x-amz-date` rather than `Date`.
    pub from_amz_header: bool,
}

/// Reads `x-amz-date`, else `Date`. Missing or unreadable is `AccessDenied`, as S3 answers.
pub(crate) fn request_time(headers: &HeaderMap) -> S3Result<RequestTime> {
    let (sent, from_amz_header) = match headers.get("x-amz-date") {
        Some(v) => (v, true),
        None => (headers.get(http::header::DATE).ok_or_else(no_date)?, false),
    };
    let sent = sent.to_str().map_err(|_| no_date())?.trim().to_string();
    let at = parse_any(&sent).ok_or_else(no_date)?;
    let amz_date = format_amz_date(at);
    Ok(RequestTime { sent, at, amz_date, from_amz_header })
}

/// [`request_time`], then [`check_skew`] against the server clock `now`.
pub(crate) fn checked_request_time(headers: &HeaderMap, now: SystemTime) -> S3Result<RequestTime> {
    let time = request_time(headers)?;
    check_skew(&time, server_now(now)?)?;
    Ok(time)
}

/// Parses the ISO 8601 basic form `yyyymmddThhmmssZ` strictly.
pub(crate) fn parse_amz_date(s: &str) -> Option<OffsetDateTime> {
    if s.len() != 16 {
        return None;
    }
    PrimitiveDateTime::parse(s, AMZ_DATE).ok().map(|t| t.assume_utc())
}

/// ISO 8601 basic first, then the HTTP date forms (RFC 1123 with `GMT`,
/// RFC 850, asctime), then RFC 2822 with a numeric zone (`+0000`), which the
/// SigV2 examples and some SigV2 clients send.
fn parse_any(s: &str) -> Option<OffsetDateTime> {
    parse_amz_date(s)
        .or_else(|| {
            let t = httpdate::parse_http_date(s).ok()?;
            let secs = t.duration_since(UNIX_EPOCH).ok()?.as_secs();
            OffsetDateTime::from_unix_timestamp(i64::try_from(secs).ok()?).ok()
        })
        .or_else(|| OffsetDateTime::parse(s, &Rfc2822).ok())
        .and_then(|t| t.checked_to_offset(UtcOffset::UTC))
}

/// The server clock as an `OffsetDateTime`; a clock before 1970 or past year
/// 9999 is an internal fault, not the client's.
pub(crate) fn server_now(now: SystemTime) -> S3Result<OffsetDateTime> {
    let secs = now.duration_since(UNIX_EPOCH).map_err(S3Error::internal)?.as_secs();
    let secs = i64::try_from(secs).map_err(S3Error::internal)?;
    OffsetDateTime::from_unix_timestamp(secs).map_err(S3Error::internal)
}

pub(crate) fn format_amz_date(t: OffsetDateTime) -> String {
    t.format(AMZ_DATE).unwrap_or_default()
}

/// `2026-11-25T14:05:05Z`, the form of `ServerTime` and `Expires` in S3 errors.
pub(crate) fn format_iso8601(t: OffsetDateTime) -> String {
    t.format(ISO8601).unwrap_or_default()
}

/// `RequestTimeTooSkewed` unless `time` is within [`MAX_SKEW`] of `now`.
pub(crate) fn check_skew(time: &RequestTime, now: OffsetDateTime) -> S3Result<()> {
    if (time.at - now).abs() <= MAX_SKEW {
        return Ok(());
    }
    Err(S3Error::new(S3ErrorCode::RequestTimeTooSkewed)
        .with_extra("RequestTime", time.sent.clone())
        .with_extra("ServerTime", format_iso8601(now))
        .with_extra("MaxAllowedSkewMilliseconds", MAX_SKEW_MILLIS))
}

fn no_date() -> S3Error {
    S3Error::with_message(S3ErrorCode::AccessDenied, "AWS authentication requires a valid Date or x-amz-date header")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn parses_both_forms_to_the_same_instant() {
        let a = parse_any("20130524T000000Z");
        let b = parse_any("Fri, 24 May 2013 00:00:00 GMT");
        assert!(a.is_some());
        assert_eq!(a, b);
        assert_eq!(a.map(format_iso8601).as_deref(), Some("2013-05-24T00:00:00Z"));
        assert_eq!(parse_any("Fri, 24 May 2013 02:00:00 +0200"), a);
        assert_eq!(parse_amz_date("20130524T000000"), None);
        assert_eq!(parse_amz_date("2013052AT000000Z"), None);
    }

    #[test]
    fn prefers_x_amz_date_and_reports_skew() {
        let mut h = HeaderMap::new();
        h.insert("date", HeaderValue::from_static("Fri, 24 May 2013 00:00:00 GMT"));
        h.insert("x-amz-date", HeaderValue::from_static("20130524T001600Z"));
        let t = request_time(&h).unwrap();
        assert!(t.from_amz_header);
        assert_eq!(t.amz_date, "20130524T001600Z");
        let now = parse_any("20130524T000000Z").unwrap();
        let err = check_skew(&t, now).unwrap_err();
        assert_eq!(err.code, S3ErrorCode::RequestTimeTooSkewed);
        assert_eq!(err.extra[0], ("RequestTime", "20130524T001600Z".to_string()));
        assert_eq!(err.extra[1], ("ServerTime", "2013-05-24T00:00:00Z".to_string()));
        assert_eq!(err.extra[2], ("MaxAllowedSkewMilliseconds", "900000".to_string()));
        assert!(check_skew(&t, now + Duration::minutes(1)).is_ok());
    }

    #[test]
    fn missing_date_is_access_denied() {
        let err = request_time(&HeaderMap::new()).err().map(|e| e.code);
        assert_eq!(err, Some(S3ErrorCode::AccessDenied));
    }
}
