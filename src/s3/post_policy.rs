//! POST Object's policy document and form signature: who signed the form
//! (SigV4 or SigV2 over the base64 policy), and whether the form keeps to
//! the policy's expiration and conditions.
//! Reference: <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html>

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::Value;
use subtle::ConstantTimeEq;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::error::{S3Error, S3ErrorCode, S3Result};
use super::{AppState, Principal};
use crate::auth::{sigv2, sigv4};

/// The form's fields before the file, names lowercased (S3 matches them
/// without regard to case), values as sent.
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Fields no condition has to name.
fn exempt(name: &str) -> bool {
    matches!(name, "policy" | "x-amz-signature" | "signature" | "awsaccesskeyid" | "file")
        || name.starts_with("x-ignore-")
}

/// One condition of a policy, with its JSON text for error messages.
#[derive(Debug, PartialEq)]
enum Condition {
    Eq { field: String, value: String, text: String },
    StartsWith { field: String, prefix: String, text: String },
    LengthRange { min: u64, max: u64 },
}

/// A decoded policy document.
#[derive(Debug)]
pub struct Policy {
    expiration: OffsetDateTime,
    conditions: Vec<Condition>,
}

/// Who signed the form, and the policy it must keep to; an unsigned form
/// is anonymous and has none.
pub struct Signer {
    pub principal: Principal,
    pub policy: Option<Policy>,
}

fn invalid_policy(why: &str) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidPolicyDocument, format!("Invalid Policy: {why}"))
}

fn against_policy(why: String) -> S3Error {
    S3Error::with_message(S3ErrorCode::AccessDenied, format!("Invalid according to Policy: {why}"))
}

fn missing_field(name: &str) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidArgument, format!("Bucket POST must contain a field named '{name}'."))
}

/// Verifies the form's signature over its policy. No policy and no
/// signature: an anonymous upload, allowed only where the bucket's ACL or
/// policy lets anyone write.
pub async fn authenticate(state: &AppState, fields: &Fields) -> S3Result<Signer> {
    let Some(policy_b64) = fields.get("policy") else {
        if fields.get("x-amz-signature").or(fields.get("signature")).is_some() {
            return Err(missing_field("policy"));
        }
        return Ok(Signer { principal: Principal::Anonymous, policy: None });
    };
    let (principal, signed) = match fields.get("awsaccesskeyid") {
        Some(access_key) => verify_v2(state, fields, access_key, policy_b64).await?,
        None => {
            let credential = fields.get("x-amz-credential").ok_or_else(|| missing_field("x-amz-credential"))?;
            verify_v4(state, fields, credential, policy_b64).await?
        }
    };
    if !signed {
        return Err(S3Error::new(S3ErrorCode::SignatureDoesNotMatch));
    }
    Ok(Signer { principal, policy: Some(Policy::decode(policy_b64)?) })
}

/// Whose an access key is, and its secret: one lookup.
async fn key_owner(state: &AppState, access_key: &str) -> S3Result<(Principal, String)> {
    if access_key == state.access_key {
        return Ok((Principal::Root, state.secret_key.clone()));
    }
    match state.store.lookup(|s| s.user_by_key(access_key)).await? {
        Some(user) => Ok((Principal::User { name: user.name, canonical_id: user.canonical_id }, user.secret_key)),
        None => Err(S3Error::new(S3ErrorCode::InvalidAccessKeyId)),
    }
}

/// `x-amz-signature` = hex HMAC-SHA256 of the base64 policy with the
/// SigV4 signing key of `x-amz-credential`'s scope. The signer, and
/// whether the signature holds.
async fn verify_v4(
    state: &AppState,
    fields: &Fields,
    credential: &str,
    policy_b64: &str,
) -> S3Result<(Principal, bool)> {
    let algorithm = fields.get("x-amz-algorithm").ok_or_else(|| missing_field("x-amz-algorithm"))?;
    if algorithm != "AWS4-HMAC-SHA256" {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            format!("the x-amz-algorithm '{algorithm}' is not supported; use AWS4-HMAC-SHA256"),
        ));
    }
    let signature = fields.get("x-amz-signature").ok_or_else(|| missing_field("x-amz-signature"))?;
    let malformed = || S3Error::with_message(S3ErrorCode::InvalidArgument, "x-amz-credential is malformed");
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key, date, region, service, "aws4_request"] = parts.as_slice() else { return Err(malformed()) };
    if *service != "s3" {
        return Err(malformed());
    }
    if *region != state.region {
        let message = format!("the region '{region}' is wrong; expecting '{}'", state.region);
        return Err(S3Error::with_message(S3ErrorCode::InvalidArgument, message).with_extra("Region", &state.region));
    }
    let (principal, secret) = key_owner(state, access_key).await?;
    let key = sigv4::signing_key(&secret, date, region, service);
    let computed = sigv4::hmac_sha256(&key, policy_b64.as_bytes());
    Ok((principal, sigv4::decode_signature(signature).is_some_and(|given| bool::from(computed.ct_eq(&given)))))
}

/// `signature` = base64 HMAC-SHA1 of the base64 policy with the secret.
async fn verify_v2(
    state: &AppState,
    fields: &Fields,
    access_key: &str,
    policy_b64: &str,
) -> S3Result<(Principal, bool)> {
    let signature = fields.get("signature").ok_or_else(|| missing_field("Signature"))?;
    let (principal, secret) = key_owner(state, access_key).await?;
    let computed = sigv2::hmac_sha1(secret.as_bytes(), policy_b64.as_bytes());
    Ok((principal, BASE64.decode(signature.trim()).is_ok_and(|given| bool::from(computed.as_slice().ct_eq(&given)))))
}

impl Policy {
    pub fn decode(policy_b64: &str) -> S3Result<Policy> {
        let json = BASE64.decode(policy_b64.trim()).map_err(|_| invalid_policy("Invalid 'Base64' encoding."))?;
        let doc: Value = serde_json::from_slice(&json).map_err(|_| invalid_policy("Invalid JSON."))?;
        let expiration = doc.get("expiration").ok_or_else(|| invalid_policy("Policy missing expiration."))?;
        let expiration = expiration
            .as_str()
            .and_then(|text| OffsetDateTime::parse(text, &Rfc3339).ok())
            .ok_or_else(|| invalid_policy("Invalid 'expiration' value."))?;
        let conditions = doc.get("conditions").and_then(Value::as_array);
        let conditions = conditions.ok_or_else(|| invalid_policy("Policy missing conditions."))?;
        let conditions = conditions.iter().map(Condition::decode).collect::<S3Result<_>>()?;
        Ok(Policy { expiration, conditions })
    }

    /// The form against the expiration and every condition (but the
    /// length range, which the file is held to as it streams), and every
    /// field but the exempt ones named by a condition.
    pub fn check(&self, fields: &Fields, bucket: &str, now: OffsetDateTime) -> S3Result<()> {
        if now > self.expiration {
            return Err(against_policy("Policy expired.".into()));
        }
        let value_of = |field: &str| match field {
            "bucket" => Some(bucket),
            _ => fields.get(field),
        };
        for condition in &self.conditions {
            let holds = match condition {
                Condition::Eq { field, value, .. } => value_of(field).unwrap_or_default() == value,
                Condition::StartsWith { field, prefix, .. } => starts_with(field, value_of(field), prefix),
                Condition::LengthRange { .. } => true,
            };
            if !holds {
                return Err(against_policy(format!("Policy Condition failed: {}", condition.text())));
            }
        }
        let named = |name: &str| self.conditions.iter().any(|c| c.field() == Some(name));
        let extra: Vec<&str> = fields.0.iter().map(|(n, _)| n.as_str()).filter(|n| !exempt(n) && !named(n)).collect();
        match extra.is_empty() {
            true => Ok(()),
            false => Err(against_policy(format!("Extra input fields: {}", extra.join(", ")))),
        }
    }

    /// The `content-length-range` the file must keep to, if any.
    pub fn length_range(&self) -> Option<(u64, u64)> {
        self.conditions.iter().find_map(|c| match c {
            Condition::LengthRange { min, max } => Some((*min, *max)),
            _ => None,
        })
    }
}

/// `starts-with` on `Content-Type` holds for each of a comma-separated
/// list of types; a missing field starts with nothing but "".
fn starts_with(field: &str, value: Option<&str>, prefix: &str) -> bool {
    match (field, value) {
        (_, None) => prefix.is_empty(),
        ("content-type", Some(value)) => value.split(',').all(|v| v.trim().starts_with(prefix)),
        (_, Some(value)) => value.starts_with(prefix),
    }
}

impl Condition {
    fn decode(item: &Value) -> S3Result<Condition> {
        let text = item.to_string();
        let bad = || invalid_policy(&format!("Invalid Policy: Invalid Simple-Condition: {text}"));
        if let Some(object) = item.as_object() {
            let mut entries = object.iter();
            let (Some((field, value)), None) = (entries.next(), entries.next()) else { return Err(bad()) };
            let value = value.as_str().ok_or_else(bad)?.to_string();
            return Ok(Condition::Eq { field: field.to_ascii_lowercase(), value, text });
        }
        let items = item.as_array().ok_or_else(bad)?;
        let op = items.first().and_then(Value::as_str).map(str::to_ascii_lowercase);
        match (op.as_deref(), items.get(1), items.get(2), items.len()) {
            (Some("content-length-range"), Some(min), Some(max), 3) => {
                let bound = |v: &Value| v.as_u64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()));
                let (min, max) = (bound(min).ok_or_else(bad)?, bound(max).ok_or_else(bad)?);
                Ok(Condition::LengthRange { min, max })
            }
            (Some(op @ ("eq" | "starts-with")), Some(field), Some(value), 3) => {
                let field = field.as_str().and_then(|f| f.strip_prefix('$')).ok_or_else(bad)?.to_ascii_lowercase();
                let value = value.as_str().ok_or_else(bad)?.to_string();
                Ok(match op {
                    "eq" => Condition::Eq { field, value, text },
                    _ => Condition::StartsWith { field, prefix: value, text },
                })
            }
            _ => Err(bad()),
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Condition::Eq { field, .. } | Condition::StartsWith { field, .. } => Some(field),
            Condition::LengthRange { .. } => None,
        }
    }

    fn text(&self) -> &str {
        match self {
            Condition::Eq { text, .. } | Condition::StartsWith { text, .. } => text,
            Condition::LengthRange { .. } => "content-length-range",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> S3Result<Policy> {
        Policy::decode(&BASE64.encode(json))
    }

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        Fields(pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect())
    }

    const FUTURE: &str = r#""expiration": "2099-01-01T00:00:00.000Z""#;

    #[test]
    fn conditions_hold_or_name_what_failed() {
        let p = policy(&format!(
            r#"{{{FUTURE}, "conditions": [{{"bucket": "b"}}, ["starts-with", "$key", "up/"],
                ["content-length-range", 1, 100], ["eq", "$Content-Type", "text/plain"], {{"acl": "private"}}]}}"#
        ))
        .unwrap();
        let now = OffsetDateTime::now_utc();
        let good = fields(&[("key", "up/a"), ("content-type", "text/plain"), ("acl", "private"), ("policy", "x")]);
        assert!(p.check(&good, "b", now).is_ok());
        assert_eq!(p.length_range(), Some((1, 100)));
        let e = p.check(&good, "other", now).unwrap_err();
        assert!(e.message.contains(r#"{"bucket":"b"}"#), "{}", e.message);
        let wrong_key = fields(&[("key", "down/a"), ("content-type", "text/plain"), ("acl", "private")]);
        assert!(p.check(&wrong_key, "b", now).unwrap_err().message.contains("starts-with"));
        let extra =
            fields(&[("key", "up/a"), ("content-type", "text/plain"), ("acl", "private"), ("x-amz-meta-a", "1")]);
        assert!(p.check(&extra, "b", now).unwrap_err().message.contains("Extra input fields: x-amz-meta-a"));
        let ignored =
            fields(&[("key", "up/a"), ("content-type", "text/plain"), ("acl", "private"), ("x-ignore-me", "1")]);
        assert!(p.check(&ignored, "b", now).is_ok());
    }

    #[test]
    fn an_expired_or_malformed_policy_is_refused() {
        let old = policy(r#"{"expiration": "2001-01-01T00:00:00Z", "conditions": []}"#).unwrap();
        let e = old.check(&fields(&[]), "b", OffsetDateTime::now_utc()).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (S3ErrorCode::AccessDenied, "Invalid according to Policy: Policy expired.")
        );
        for bad in [
            "not json",
            r#"{"conditions": []}"#,
            r#"{"expiration": "tomorrow", "conditions": []}"#,
            &format!(r#"{{{FUTURE}}}"#),
            &format!(r#"{{{FUTURE}, "conditions": [["eq", "key", "a"]]}}"#),
            &format!(r#"{{{FUTURE}, "conditions": [{{"a": "1", "b": "2"}}]}}"#),
            &format!(r#"{{{FUTURE}, "conditions": [["content-length-range", "x", 2]]}}"#),
        ] {
            assert_eq!(policy(bad).unwrap_err().code, S3ErrorCode::InvalidPolicyDocument, "{bad}");
        }
        assert_eq!(Policy::decode("%%%").unwrap_err().code, S3ErrorCode::InvalidPolicyDocument);
    }

    #[test]
    fn content_type_starts_with_holds_for_every_listed_type() {
        assert!(starts_with("content-type", Some("image/png, image/jpeg"), "image/"));
        assert!(!starts_with("content-type", Some("image/png, text/html"), "image/"));
        assert!(starts_with("key", None, ""));
        assert!(!starts_with("key", None, "a"));
    }
}
