//! Bucket policies, for the common cases: `Allow` and `Deny` statements for
//! everyone (`"*"`) or named users, on S3 actions (wildcards allowed) and
//! on the bucket or key patterns of its own bucket. Anything Tessera does
//! not evaluate (`Condition`, `NotAction`, `NotPrincipal`, `NotResource`,
//! actions it has no operation for, other buckets) is refused when the
//! policy is put, never silently ignored.
//!
//! Evaluation is S3's: an explicit Deny wins, then an Allow, else the ACLs
//! decide (`access.rs`).

use http::{Response, StatusCode};
use serde_json::{Map, Value};

use super::acl::Directory;
use super::error::{S3Error, S3ErrorCode, S3Result};
use super::ingest::receive_small;
use super::{empty_response, AppState, Principal, S3Request};
use crate::http::body::{self, Body};
use crate::store::schema::{Policy, Statement};

/// S3's limit on a bucket policy's size.
const MAX_POLICY_BYTES: usize = 20 * 1024;

/// The actions Tessera has operations for (`access::requirement`). A
/// policy's action patterns must each match at least one of them.
pub const ACTIONS: &[&str] = &[
    "s3:AbortMultipartUpload",
    "s3:CreateBucket",
    "s3:DeleteBucket",
    "s3:DeleteBucketPolicy",
    "s3:DeleteObject",
    "s3:DeleteObjectTagging",
    "s3:DeleteObjectVersion",
    "s3:GetBucketAcl",
    "s3:GetBucketCORS",
    "s3:GetBucketLocation",
    "s3:GetBucketPolicy",
    "s3:GetBucketTagging",
    "s3:GetBucketVersioning",
    "s3:GetLifecycleConfiguration",
    "s3:GetObject",
    "s3:GetObjectAcl",
    "s3:GetObjectAttributes",
    "s3:GetObjectTagging",
    "s3:GetObjectVersion",
    "s3:ListAllMyBuckets",
    "s3:ListBucket",
    "s3:ListBucketMultipartUploads",
    "s3:ListBucketVersions",
    "s3:ListMultipartUploadParts",
    "s3:PutBucketAcl",
    "s3:PutBucketCORS",
    "s3:PutBucketPolicy",
    "s3:PutBucketTagging",
    "s3:PutBucketVersioning",
    "s3:PutLifecycleConfiguration",
    "s3:PutObject",
    "s3:PutObjectAcl",
    "s3:PutObjectTagging",
];

const ARN_PREFIX: &str = "arn:aws:s3:::";

/// What a policy says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny,
    /// No statement applies: the ACLs decide.
    Silent,
}

/// What `policy` says about `who` doing `action` on `resource` (`bucket`
/// or `bucket/key`, without the ARN prefix).
pub fn evaluate(policy: Option<&Policy>, who: &Principal, action: &str, resource: &str) -> Verdict {
    let mut verdict = Verdict::Silent;
    for statement in policy.map(|p| p.statements.as_slice()).unwrap_or_default() {
        if applies(statement, who, action, resource) {
            if !statement.allow {
                return Verdict::Deny;
            }
            verdict = Verdict::Allow;
        }
    }
    verdict
}

fn applies(statement: &Statement, who: &Principal, action: &str, resource: &str) -> bool {
    let principal = match &statement.principals {
        None => true,
        Some(ids) => *who != Principal::Anonymous && ids.iter().any(|id| id == who.id()),
    };
    principal
        && statement.actions.iter().any(|pattern| glob(&pattern.to_ascii_lowercase(), &action.to_ascii_lowercase()))
        && statement.resources.iter().any(|pattern| glob(pattern, resource))
}

/// Matches IAM's wildcards: `*` any run of characters, `?` any one.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and where in `text` it began to match.
    let mut star: Option<(usize, usize)> = None;
    while let Some(&c) = t.get(ti) {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&want) if want == '?' || want == c => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.iter().skip(pi).all(|&c| c == '*')
}

fn malformed(message: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::MalformedPolicy, message)
}

/// Parses and checks a policy for `bucket`; user names and ARNs in
/// principals are resolved to canonical ids now.
pub fn parse(json: &str, bucket: &str, directory: &Directory) -> S3Result<Policy> {
    let doc: Value = serde_json::from_str(json).map_err(|e| malformed(format!("Policies must be valid JSON: {e}")))?;
    let doc = doc.as_object().ok_or_else(|| malformed("A policy must be a JSON object"))?;
    for key in doc.keys() {
        if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
            return Err(malformed(format!("Unknown field {key}")));
        }
    }
    if let Some(version) = doc.get("Version") {
        if !matches!(version.as_str(), Some("2012-10-17" | "2008-10-17")) {
            return Err(malformed("The policy Version must be 2012-10-17 or 2008-10-17"));
        }
    }
    let statements = match doc.get("Statement") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => return Err(malformed("Missing required field Statement")),
    };
    if statements.is_empty() {
        return Err(malformed("Missing required field Statement"));
    }
    let statements = statements
        .into_iter()
        .map(|s| statement(s.as_object().ok_or_else(|| malformed("A Statement must be an object"))?, bucket, directory))
        .collect::<S3Result<_>>()?;
    Ok(Policy { json: json.to_string(), statements })
}

fn statement(s: &Map<String, Value>, bucket: &str, directory: &Directory) -> S3Result<Statement> {
    for key in s.keys() {
        match key.as_str() {
            "Sid" | "Effect" | "Principal" | "Action" | "Resource" => {}
            "Condition" | "NotAction" | "NotPrincipal" | "NotResource" => {
                return Err(malformed(format!("Tessera does not evaluate {key}; this policy cannot be set")))
            }
            other => return Err(malformed(format!("Unknown field {other}"))),
        }
    }
    let allow = match s.get("Effect").and_then(Value::as_str) {
        Some("Allow") => true,
        Some("Deny") => false,
        _ => return Err(malformed("Invalid effect: the Effect must be Allow or Deny")),
    };
    let principals =
        principals(s.get("Principal").ok_or_else(|| malformed("Missing required field Principal"))?, directory)?;
    let actions = strings(s.get("Action"), "Action")?;
    for action in &actions {
        let pattern = action.to_ascii_lowercase();
        if !ACTIONS.iter().any(|known| glob(&pattern, &known.to_ascii_lowercase())) {
            return Err(malformed(format!("Policy has invalid action {action}")));
        }
    }
    let resources = strings(s.get("Resource"), "Resource")?
        .into_iter()
        .map(|r| resource(&r, bucket))
        .collect::<S3Result<Vec<_>>>()?;
    Ok(Statement { allow, principals, actions, resources })
}

/// A string or a non-empty list of strings.
fn strings(value: Option<&Value>, field: &str) -> S3Result<Vec<String>> {
    let list: Vec<String> = match value {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(items)) => {
            items.iter().map(|v| v.as_str().map(str::to_string)).collect::<Option<_>>().unwrap_or_default()
        }
        _ => Vec::new(),
    };
    match list.is_empty() {
        true => Err(malformed(format!("Missing or invalid field {field}"))),
        false => Ok(list),
    }
}

/// `"*"`, `{"AWS": "*"}` (everyone, signed or not), or users by canonical
/// id, name or IAM-style ARN (`arn:aws:iam::…:user/NAME`), `{"CanonicalUser": id}`.
fn principals(value: &Value, directory: &Directory) -> S3Result<Option<Vec<String>>> {
    if value.as_str() == Some("*") {
        return Ok(None);
    }
    let map = value.as_object().ok_or_else(|| malformed("Invalid principal in policy"))?;
    let mut ids = Vec::new();
    for (kind, who) in map {
        if !matches!(kind.as_str(), "AWS" | "CanonicalUser") {
            return Err(malformed(format!("Invalid principal in policy: {kind}")));
        }
        for name in strings(Some(who), "Principal")? {
            if name == "*" {
                return Ok(None);
            }
            let user = name.rsplit_once(":user/").map_or(name.as_str(), |(_, user)| user);
            let id =
                directory.resolve(user).ok_or_else(|| malformed(format!("Invalid principal in policy: {name}")))?;
            ids.push(id);
        }
    }
    Ok(Some(ids))
}

/// `arn:aws:s3:::bucket[/key-pattern]`, which must be of this bucket.
fn resource(arn: &str, bucket: &str) -> S3Result<String> {
    let invalid = || malformed(format!("Policy has invalid resource {arn}"));
    let rest = arn.strip_prefix(ARN_PREFIX).ok_or_else(invalid)?;
    let bucket_part = rest.split_once('/').map_or(rest, |(b, _)| b);
    match glob(bucket_part, bucket) {
        true => Ok(rest.to_string()),
        false => Err(invalid()),
    }
}

/// PutBucketPolicy.
pub async fn put(state: &AppState, mut req: S3Request) -> S3Result<Response<Body>> {
    let bucket = req.bucket()?.clone();
    let body = receive_small(state, &mut req, MAX_POLICY_BYTES).await?;
    let json = std::str::from_utf8(&body).map_err(|_| malformed("Policies must be UTF-8 JSON"))?;
    let policy = parse(json, &bucket, &Directory::load(state).await?)?;
    state.store.run(move |s| s.update_bucket(&bucket, move |b| b.policy = Some(policy.clone()))).await?;
    empty_response(StatusCode::NO_CONTENT)
}

/// GetBucketPolicy: the document as it was put.
pub async fn get(state: &AppState, req: S3Request) -> S3Result<Response<Body>> {
    let bucket = req.bucket()?.clone();
    let name = bucket.clone();
    let record = state.store.run(move |s| s.bucket(&name)).await?;
    let policy = record
        .policy
        .ok_or_else(|| S3Error::new(S3ErrorCode::NoSuchBucketPolicy).with_extra("BucketName", bucket.to_string()))?;
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(body::full(policy.json))
        .map_err(S3Error::internal)
}

/// DeleteBucketPolicy: 204 whether or not there was one, as S3.
pub async fn delete(state: &AppState, req: S3Request) -> S3Result<Response<Body>> {
    let bucket = req.bucket()?.clone();
    state.store.run(move |s| s.update_bucket(&bucket, |b| b.policy = None)).await?;
    empty_response(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory() -> Directory {
        Directory::from_pairs(&[("id-alice", "alice", None)])
    }

    fn alice() -> Principal {
        Principal::User { name: "alice".into(), canonical_id: "id-alice".into() }
    }

    #[test]
    fn globs_match_as_iam_does() {
        assert!(glob("s3:get*", "s3:getobject") && glob("*", "") && glob("b/a?c*", "b/abc/d"));
        assert!(!glob("b/pub/*", "b/private/x") && !glob("s3:get*", "s3:putobject") && !glob("a", "ab"));
        assert!(glob("*a*b", "xxaxxb") && !glob("*a*b", "xxaxxbc"));
    }

    #[test]
    fn deny_wins_and_principals_and_prefixes_count() {
        let json = r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/pub/*"},
            {"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::123:user/alice"},"Action":"s3:*","Resource":"arn:aws:s3:::b/pub/secret*"},
            {"Effect":"Allow","Principal":{"AWS":["id-alice"]},"Action":["s3:ListBucket"],"Resource":["arn:aws:s3:::b"]}]}"#;
        let policy = parse(json, "b", &directory()).expect("valid");
        let p = Some(&policy);
        assert_eq!(evaluate(p, &Principal::Anonymous, "s3:GetObject", "b/pub/a"), Verdict::Allow);
        assert_eq!(evaluate(p, &Principal::Anonymous, "s3:GetObject", "b/other"), Verdict::Silent);
        assert_eq!(evaluate(p, &Principal::Anonymous, "s3:PutObject", "b/pub/a"), Verdict::Silent);
        assert_eq!(evaluate(p, &alice(), "s3:GetObject", "b/pub/secret.txt"), Verdict::Deny);
        assert_eq!(evaluate(p, &Principal::Anonymous, "s3:ListBucket", "b"), Verdict::Silent);
        assert_eq!(evaluate(p, &alice(), "s3:ListBucket", "b"), Verdict::Allow);
    }

    #[test]
    fn what_is_not_evaluated_is_refused() {
        let refused = [
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*","Condition":{"IpAddress":{"aws:SourceIp":"1.2.3.4/32"}}}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other/*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:PutReplicationConfiguration","Resource":"arn:aws:s3:::b"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"nobody"},"Action":"s3:*","Resource":"arn:aws:s3:::b"}]}"#,
            r#"{"Statement":[{"Effect":"Maybe","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::b"}]}"#,
            r#"{"Statement":[]}"#,
            r#"not json"#,
        ];
        for json in refused {
            let e = parse(json, "b", &directory()).expect_err(json);
            assert_eq!(e.code, S3ErrorCode::MalformedPolicy, "{json}");
        }
    }
}
