//! Bucket lifecycle configuration, limited to what Tessera enforces:
//! `AbortIncompleteMultipartUpload` (applied by the stale-upload reaper),
//! `Expiration` (Days, Date, ExpiredObjectDeleteMarker) and
//! `NoncurrentVersionExpiration`, with filters by prefix, tags and size
//! (applied by the lifecycle reaper, `store/lifecycle.rs`). Transitions
//! (Tessera has one storage class) are refused with `NotImplemented` rather
//! than stored and silently ignored.
//! Reference: <https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketLifecycleConfiguration.html>

use http::{Response, StatusCode};

use super::bucket::existing;
use super::error::{S3Error, S3ErrorCode, S3Result};
use super::ingest::receive_small;
use super::xml::{self, Element};
use super::{empty_response, xml_response, AppState, S3Request};
use crate::http::body::Body;
use crate::store::schema::{AbortIncompleteRule, ExpireAfter, ExpiryRule, Lifecycle, RuleFilter};

const MAX_LIFECYCLE_BODY: usize = 256 * 1024;
/// S3 allows at most 1,000 rules per configuration.
const MAX_RULES: usize = 1000;

pub async fn put(state: &AppState, mut req: S3Request) -> S3Result<Response<Body>> {
    let bucket = req.bucket()?.clone();
    let body = receive_small(state, &mut req, MAX_LIFECYCLE_BODY).await?;
    let doc = xml::parse(&body)?;
    let rules = parse_rules(&doc)?;
    let xml = String::from_utf8(body.to_vec()).map_err(|_| S3Error::new(S3ErrorCode::MalformedXML))?;
    let lifecycle = Lifecycle { xml, abort_rules: rules.abort, expiry_rules: rules.expiry };
    state.store.run(move |s| s.update_bucket(&bucket, move |b| b.lifecycle = Some(lifecycle.clone()))).await?;
    empty_response(StatusCode::OK)
}

pub async fn get(state: &AppState, req: S3Request) -> S3Result<Response<Body>> {
    let record = existing(state, &req).await?;
    match record.lifecycle {
        Some(lifecycle) => xml_response(lifecycle.xml),
        None => Err(S3Error::new(S3ErrorCode::NoSuchLifecycleConfiguration).with_extra("BucketName", req.bucket()?)),
    }
}

pub async fn delete(state: &AppState, req: S3Request) -> S3Result<Response<Body>> {
    let bucket = req.bucket()?.clone();
    state.store.run(move |s| s.update_bucket(&bucket, |b| b.lifecycle = None)).await?;
    empty_response(StatusCode::NO_CONTENT)
}

/// The rules of a configuration that Tessera enforces (enabled ones).
#[derive(Debug, Default, PartialEq)]
struct Rules {
    abort: Vec<AbortIncompleteRule>,
    expiry: Vec<ExpiryRule>,
}

fn parse_rules(doc: &Element) -> S3Result<Rules> {
    if doc.name != "LifecycleConfiguration" {
        return Err(S3Error::new(S3ErrorCode::MalformedXML));
    }
    let rules: Vec<&Element> = doc.children_named("Rule").collect();
    if rules.is_empty() || rules.len() > MAX_RULES {
        return Err(S3Error::new(S3ErrorCode::MalformedXML));
    }
    let mut out = Rules::default();
    for rule in rules {
        parse_rule(rule, &mut out)?;
    }
    Ok(out)
}

fn invalid_argument(message: &str) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidArgument, message)
}

/// A positive whole number of days.
fn positive(element: &Element, name: &str, action: &str) -> S3Result<Option<u32>> {
    match element.child_text(name).map(str::trim) {
        None => Ok(None),
        Some(text) => match text.parse::<u32>() {
            Ok(days) if days > 0 => Ok(Some(days)),
            _ => Err(invalid_argument(&format!("'{name}' for {action} action must be a positive integer"))),
        },
    }
}

fn parse_rule(rule: &Element, out: &mut Rules) -> S3Result<()> {
    const KNOWN: [&str; 8] = [
        "ID",
        "Status",
        "Filter",
        "Prefix",
        "Priority",
        "AbortIncompleteMultipartUpload",
        "Expiration",
        "NoncurrentVersionExpiration",
    ];
    if let Some(other) = rule.children.iter().find(|c| !KNOWN.contains(&c.name.as_str())) {
        return Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            format!("Lifecycle action {} is not implemented by Tessera (it has one storage class)", other.name),
        ));
    }
    let enabled = match rule.child_text("Status").map(str::trim) {
        Some("Enabled") => true,
        Some("Disabled") => false,
        _ => return Err(S3Error::new(S3ErrorCode::MalformedXML)),
    };
    let filter = parse_filter(rule)?;
    let abort = match rule.child("AbortIncompleteMultipartUpload") {
        Some(a) => Some(positive(a, "DaysAfterInitiation", "AbortIncompleteMultipartUpload")?.ok_or_else(|| {
            invalid_argument(
                "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a positive integer",
            )
        })?),
        None => None,
    };
    if abort.is_some()
        && (!filter.tags.is_empty() || filter.size_greater_than.is_some() || filter.size_less_than.is_some())
    {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "Tag-based filter cannot be used with AbortIncompleteMultipartUpload action",
        ));
    }
    let expiry = parse_expiry(rule, filter.clone())?;
    if abort.is_none() && expiry.is_none() {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "At least one action needs to be specified in a rule",
        ));
    }
    if enabled {
        if let Some(days) = abort {
            out.abort.push(AbortIncompleteRule { prefix: filter.prefix, days_after_initiation: days });
        }
        out.expiry.extend(expiry);
    }
    Ok(())
}

/// `Expiration` and `NoncurrentVersionExpiration`, if the rule has either.
fn parse_expiry(rule: &Element, filter: RuleFilter) -> S3Result<Option<ExpiryRule>> {
    let mut parsed = ExpiryRule { filter, expire: None, expired_object_delete_marker: false, noncurrent: None };
    if let Some(e) = rule.child("Expiration") {
        let days = positive(e, "Days", "Expiration")?;
        let date = e.child_text("Date").map(|d| parse_date(d.trim())).transpose()?;
        let marker = match e.child_text("ExpiredObjectDeleteMarker").map(str::trim) {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(S3Error::new(S3ErrorCode::MalformedXML)),
        };
        parsed.expire = match (days, date) {
            (Some(days), None) => Some(ExpireAfter::Days(days)),
            (None, Some(date)) => Some(ExpireAfter::Date(date)),
            (None, None) => None,
            (Some(_), Some(_)) => return Err(S3Error::new(S3ErrorCode::MalformedXML)),
        };
        // S3: ExpiredObjectDeleteMarker cannot be specified with Days or Date.
        if (parsed.expire.is_some() && marker) || (parsed.expire.is_none() && !marker) {
            return Err(S3Error::new(S3ErrorCode::MalformedXML));
        }
        parsed.expired_object_delete_marker = marker;
    }
    if let Some(n) = rule.child("NoncurrentVersionExpiration") {
        let days = positive(n, "NoncurrentDays", "NoncurrentVersionExpiration")?.ok_or_else(|| {
            invalid_argument("'NoncurrentDays' for NoncurrentVersionExpiration action must be a positive integer")
        })?;
        let keep = match n.child_text("NewerNoncurrentVersions").map(str::trim) {
            None => 0,
            Some(text) => text.parse::<u32>().ok().filter(|k| (1..=100).contains(k)).ok_or_else(|| {
                invalid_argument(
                    "'NewerNoncurrentVersions' for NoncurrentVersionExpiration action must be between 1 and 100",
                )
            })?,
        };
        parsed.noncurrent = Some((days, keep));
    }
    Ok((parsed.expire.is_some() || parsed.expired_object_delete_marker || parsed.noncurrent.is_some())
        .then_some(parsed))
}

/// An `Expiration/Date`: ISO 8601, at midnight UTC as S3 requires.
fn parse_date(text: &str) -> S3Result<i64> {
    let time = humantime::parse_rfc3339_weak(text.trim_end_matches('Z'))
        .map_err(|_| invalid_argument("Invalid date in Expiration action"))?;
    let ms = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| invalid_argument("Invalid date in Expiration action"))?;
    let ms = i64::try_from(ms.as_millis()).map_err(|_| invalid_argument("Invalid date in Expiration action"))?;
    match ms % 86_400_000 {
        0 => Ok(ms),
        _ => Err(invalid_argument("'Date' must be at midnight GMT")),
    }
}

/// The rule's filter: `Filter` with `Prefix`, `Tag`, `ObjectSizeGreaterThan`,
/// `ObjectSizeLessThan` or an `And` of them, or the legacy rule-level `Prefix`.
fn parse_filter(rule: &Element) -> S3Result<RuleFilter> {
    let mut filter =
        RuleFilter { prefix: rule.child_text("Prefix").unwrap_or_default().to_string(), ..Default::default() };
    let Some(f) = rule.child("Filter") else { return Ok(filter) };
    let conditions = f.child("And").unwrap_or(f);
    if let Some(prefix) = conditions.child_text("Prefix") {
        filter.prefix = prefix.to_string();
    }
    for tag in conditions.children_named("Tag") {
        let key = tag.child_text("Key").ok_or_else(|| S3Error::new(S3ErrorCode::MalformedXML))?;
        filter.tags.push((key.to_string(), tag.child_text("Value").unwrap_or_default().to_string()));
    }
    let size = |name: &str| -> S3Result<Option<u64>> {
        conditions
            .child_text(name)
            .map(|v| v.trim().parse::<u64>().map_err(|_| S3Error::new(S3ErrorCode::MalformedXML)))
            .transpose()
    };
    filter.size_greater_than = size("ObjectSizeGreaterThan")?;
    filter.size_less_than = size("ObjectSizeLessThan")?;
    if let (Some(min), Some(max)) = (filter.size_greater_than, filter.size_less_than) {
        if min >= max {
            return Err(invalid_argument("ObjectSizeGreaterThan must be less than ObjectSizeLessThan"));
        }
    }
    Ok(filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(doc: &str) -> S3Result<Vec<AbortIncompleteRule>> {
        parse_rules(&xml::parse(doc.as_bytes())?).map(|r| r.abort)
    }

    fn expiry(rule: &str) -> S3Result<Vec<ExpiryRule>> {
        let doc =
            format!("<LifecycleConfiguration><Rule><Status>Enabled</Status>{rule}</Rule></LifecycleConfiguration>");
        parse_rules(&xml::parse(doc.as_bytes())?).map(|r| r.expiry)
    }

    #[test]
    fn expiry_rules_are_parsed_with_their_filters() {
        let rule = "<Filter><And><Prefix>logs/</Prefix><Tag><Key>t</Key><Value>1</Value></Tag>\
                    <ObjectSizeGreaterThan>10</ObjectSizeGreaterThan></And></Filter>\
                    <Expiration><Days>30</Days></Expiration>\
                    <NoncurrentVersionExpiration><NoncurrentDays>7</NoncurrentDays><NewerNoncurrentVersions>2</NewerNoncurrentVersions></NoncurrentVersionExpiration>";
        let filter = RuleFilter {
            prefix: "logs/".into(),
            tags: vec![("t".into(), "1".into())],
            size_greater_than: Some(10),
            size_less_than: None,
        };
        let want = ExpiryRule {
            filter,
            expire: Some(ExpireAfter::Days(30)),
            expired_object_delete_marker: false,
            noncurrent: Some((7, 2)),
        };
        assert_eq!(expiry(rule).ok(), Some(vec![want]));
        let dated = expiry("<Expiration><Date>2030-01-01T00:00:00.000Z</Date></Expiration>").ok();
        assert_eq!(dated.and_then(|r| r.first().and_then(|r| r.expire)), Some(ExpireAfter::Date(1_893_456_000_000)));
        let markers =
            expiry("<Filter/><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>");
        assert_eq!(markers.ok().map(|r| r.iter().map(|r| r.expired_object_delete_marker).collect()), Some(vec![true]));
    }

    #[test]
    fn malformed_expiry_rules_are_refused() {
        let code = |rule: &str| expiry(rule).err().map(|e| e.code);
        assert_eq!(code("<Expiration><Days>0</Days></Expiration>"), Some(S3ErrorCode::InvalidArgument));
        assert_eq!(
            code("<Expiration><Date>2030-01-01T12:00:00Z</Date></Expiration>"),
            Some(S3ErrorCode::InvalidArgument)
        );
        assert_eq!(
            code("<Expiration><Days>1</Days><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>"),
            Some(S3ErrorCode::MalformedXML)
        );
        assert_eq!(
            code("<Transition><Days>1</Days><StorageClass>GLACIER</StorageClass></Transition>"),
            Some(S3ErrorCode::NotImplemented)
        );
        assert_eq!(
            code("<NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays><NewerNoncurrentVersions>101</NewerNoncurrentVersions></NoncurrentVersionExpiration>"),
            Some(S3ErrorCode::InvalidArgument)
        );
        assert_eq!(
            code("<Filter><Tag><Key>a</Key><Value>b</Value></Tag></Filter><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload>"),
            Some(S3ErrorCode::InvalidRequest)
        );
    }

    #[test]
    fn abort_rules_are_parsed() {
        let doc = "<LifecycleConfiguration><Rule><ID>a</ID><Filter><Prefix>tmp/</Prefix></Filter><Status>Enabled</Status>\
                   <AbortIncompleteMultipartUpload><DaysAfterInitiation>3</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>\
                   <Rule><Filter/><Status>Disabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>\
                   </LifecycleConfiguration>";
        let parsed = rules(doc).ok();
        assert_eq!(parsed, Some(vec![AbortIncompleteRule { prefix: "tmp/".into(), days_after_initiation: 3 }]));
    }

    #[test]
    fn other_actions_are_refused_not_ignored() {
        let doc = "<LifecycleConfiguration><Rule><Filter/><Status>Enabled</Status><Transition><Days>1</Days></Transition></Rule></LifecycleConfiguration>";
        assert_eq!(rules(doc).err().map(|e| e.code), Some(S3ErrorCode::NotImplemented));
        let zero = "<LifecycleConfiguration><Rule><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>0</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule></LifecycleConfiguration>";
        assert_eq!(rules(zero).err().map(|e| e.code), Some(S3ErrorCode::InvalidArgument));
    }
}
