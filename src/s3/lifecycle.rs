//! Bucket lifecycle configuration, limited to what Tessera enforces:
//! `AbortIncompleteMultipartUpload` rules (applied by the stale-upload reaper).
//! A configuration with any other action is refused with `NotImplemented`
//! rather than stored and silently ignored.
//! Reference: <https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketLifecycleConfiguration.html>

use http::{Response, StatusCode};

use super::bucket::existing;
use super::error::{S3Error, S3ErrorCode, S3Result};
use super::ingest::receive_small;
use super::xml::{self, Element};
use super::{empty_response, xml_response, AppState, S3Request};
use crate::http::body::Body;
use crate::store::schema::{AbortIncompleteRule, Lifecycle};

const MAX_LIFECYCLE_BODY: usize = 256 * 1024;
/// S3 allows at most 1,000 rules per configuration.
const MAX_RULES: usize = 1000;

pub async fn put(state: &AppState, mut req: S3Request) -> S3Result<Response<Body>> {
    let bucket = req.bucket()?.clone();
    let body = receive_small(state, &mut req, MAX_LIFECYCLE_BODY).await?;
    let doc = xml::parse(&body)?;
    let abort_rules = parse_rules(&doc)?;
    let xml = String::from_utf8(body.to_vec()).map_err(|_| S3Error::new(S3ErrorCode::MalformedXML))?;
    let lifecycle = Lifecycle { xml, abort_rules };
    state.store.run(move |s| s.update_bucket(&bucket, move |b| b.lifecycle = Some(lifecycle))).await?;
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

/// The enabled `AbortIncompleteMultipartUpload` rules of a configuration.
fn parse_rules(doc: &Element) -> S3Result<Vec<AbortIncompleteRule>> {
    if doc.name != "LifecycleConfiguration" {
        return Err(S3Error::new(S3ErrorCode::MalformedXML));
    }
    let rules: Vec<&Element> = doc.children_named("Rule").collect();
    if rules.is_empty() || rules.len() > MAX_RULES {
        return Err(S3Error::new(S3ErrorCode::MalformedXML));
    }
    let mut out = Vec::new();
    for rule in rules {
        if let Some(parsed) = parse_rule(rule)? {
            out.push(parsed);
        }
    }
    Ok(out)
}

fn parse_rule(rule: &Element) -> S3Result<Option<AbortIncompleteRule>> {
    const KNOWN: [&str; 6] = ["ID", "Status", "Filter", "Prefix", "AbortIncompleteMultipartUpload", "Priority"];
    if let Some(other) = rule.children.iter().find(|c| !KNOWN.contains(&c.name.as_str())) {
        return Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            format!(
                "Lifecycle action {} is not implemented by Tessera; only AbortIncompleteMultipartUpload is",
                other.name
            ),
        ));
    }
    let enabled = match rule.child_text("Status").map(str::trim) {
        Some("Enabled") => true,
        Some("Disabled") => false,
        _ => return Err(S3Error::new(S3ErrorCode::MalformedXML)),
    };
    let abort = rule.child("AbortIncompleteMultipartUpload").ok_or_else(|| {
        S3Error::with_message(S3ErrorCode::InvalidRequest, "At least one action needs to be specified in a rule")
    })?;
    let days = abort
        .child_text("DaysAfterInitiation")
        .and_then(|d| d.trim().parse::<u32>().ok())
        .filter(|d| *d > 0)
        .ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a positive integer",
            )
        })?;
    Ok(enabled.then(|| AbortIncompleteRule { prefix: rule_prefix(rule).to_string(), days_after_initiation: days }))
}

/// The rule's key prefix: `Filter/Prefix`, `Filter/And/Prefix` or the legacy `Prefix`.
fn rule_prefix(rule: &Element) -> &str {
    let filter = rule.child("Filter");
    filter
        .and_then(|f| f.child_text("Prefix"))
        .or_else(|| filter.and_then(|f| f.child("And")).and_then(|a| a.child_text("Prefix")))
        .or_else(|| rule.child_text("Prefix"))
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(doc: &str) -> S3Result<Vec<AbortIncompleteRule>> {
        parse_rules(&xml::parse(doc.as_bytes())?)
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
        let doc = "<LifecycleConfiguration><Rule><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>";
        assert_eq!(rules(doc).err().map(|e| e.code), Some(S3ErrorCode::NotImplemented));
        let zero = "<LifecycleConfiguration><Rule><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>0</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule></LifecycleConfiguration>";
        assert_eq!(rules(zero).err().map(|e| e.code), Some(S3ErrorCode::InvalidArgument));
    }
}
