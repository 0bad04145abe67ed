//! Who may do what. Checked once per request, before the handler runs and
//! before any body byte is read, from the bucket's owner, ACL and policy:
//!
//! - the root user may do everything;
//! - a bucket's policy decides first: an explicit Deny refuses (even the
//!   bucket's owner), an Allow permits;
//! - else the owner may do everything with their bucket, and others what
//!   the bucket's ACL grants (READ lists, WRITE creates, overwrites and
//!   deletes objects, READ_ACP and WRITE_ACP show and change the ACL);
//! - reading an object, its ACL or its tags is decided by the object's own
//!   ACL: the handler checks the very record it serves
//!   ([`Access::check_object`]), so a concurrent overwrite cannot slip
//!   another owner's object past the check;
//! - a multipart upload is continued, completed, listed or aborted only by
//!   whoever started it or the bucket's owner (`multipart.rs`).
//!
//! A bucket that does not exist is `NoSuchBucket` for anyone, as in S3.

use super::acl;
use super::error::{S3Error, S3ErrorCode, S3Result};
use super::policy::{self, Verdict};
use super::{AppState, Principal, S3Request};
use crate::http::route::{Op, Route};
use crate::http::target::parse_copy_source;
use crate::store::schema::{BucketRecord, ObjectRecord, Permission, Policy};
use crate::store::StoreError;

/// What [`authorize`] found, for the handler: the bucket's owner, and what
/// is still to be checked against the object records it reads.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// The owner of the routed bucket, when the request needed it.
    pub bucket_owner: Option<String>,
    /// What the object must grant the requester; `None` when the policy
    /// or the requester's role already allowed the request.
    pub object_need: Option<Permission>,
    /// The same for the source object of a copy.
    pub source_need: Option<Permission>,
    /// The source bucket's owner, for a copy.
    pub source_owner: Option<String>,
    /// Whether the requester may list the source bucket of a copy.
    pub source_may_list: bool,
    /// Whether the requester may list the bucket: if not, a missing key is
    /// AccessDenied rather than NoSuchKey, so as not to reveal it.
    pub may_list: bool,
    /// DeleteObjects judges each key against the bucket's policy.
    delete_rule: Option<DeleteRule>,
}

#[derive(Debug, Clone)]
struct DeleteRule {
    policy: Policy,
    bucket: String,
    /// Whether the bucket's owner or ACL allow deleting where the policy is silent.
    fallback: bool,
}

/// What an operation needs where the policy is silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Any signed requester (ListBuckets, CreateBucket).
    Signed,
    /// The bucket's owner.
    Owner,
    /// A permission on the bucket.
    Bucket(Permission),
    /// A permission on the object (checked by the handler).
    Object(Permission),
}

/// The S3 action an operation is (as policies name it) and what it needs.
fn requirement(route: &Route, versioned: bool) -> (&'static str, Need) {
    use Permission::*;
    let pick = |plain, version| if versioned { version } else { plain };
    match route.op {
        Op::ListBuckets => ("s3:ListAllMyBuckets", Need::Signed),
        Op::CreateBucket => ("s3:CreateBucket", Need::Signed),
        Op::DeleteBucket => ("s3:DeleteBucket", Need::Owner),
        Op::HeadBucket | Op::ListObjects | Op::ListObjectsV2 => ("s3:ListBucket", Need::Bucket(Read)),
        Op::ListObjectVersions => ("s3:ListBucketVersions", Need::Bucket(Read)),
        Op::ListMultipartUploads => ("s3:ListBucketMultipartUploads", Need::Bucket(Read)),
        Op::GetBucketLocation => ("s3:GetBucketLocation", Need::Owner),
        Op::GetBucketVersioning => ("s3:GetBucketVersioning", Need::Owner),
        Op::PutBucketVersioning => ("s3:PutBucketVersioning", Need::Owner),
        Op::GetBucketTagging => ("s3:GetBucketTagging", Need::Owner),
        Op::PutBucketTagging | Op::DeleteBucketTagging => ("s3:PutBucketTagging", Need::Owner),
        Op::GetBucketLifecycle => ("s3:GetLifecycleConfiguration", Need::Owner),
        Op::PutBucketLifecycle | Op::DeleteBucketLifecycle => ("s3:PutLifecycleConfiguration", Need::Owner),
        Op::GetBucketPolicy => ("s3:GetBucketPolicy", Need::Owner),
        Op::PutBucketPolicy => ("s3:PutBucketPolicy", Need::Owner),
        Op::DeleteBucketPolicy => ("s3:DeleteBucketPolicy", Need::Owner),
        Op::GetBucketCors => ("s3:GetBucketCORS", Need::Owner),
        // S3 has no action of its own for deleting a CORS configuration.
        Op::PutBucketCors | Op::DeleteBucketCors => ("s3:PutBucketCORS", Need::Owner),
        Op::GetBucketAcl => ("s3:GetBucketAcl", Need::Bucket(ReadAcp)),
        Op::PutBucketAcl => ("s3:PutBucketAcl", Need::Bucket(WriteAcp)),
        Op::PutObject | Op::PostObject | Op::CopyObject | Op::CreateMultipartUpload => {
            ("s3:PutObject", Need::Bucket(Write))
        }
        Op::UploadPart | Op::UploadPartCopy | Op::CompleteMultipartUpload => ("s3:PutObject", Need::Bucket(Write)),
        Op::AbortMultipartUpload => ("s3:AbortMultipartUpload", Need::Bucket(Write)),
        // Whoever may write may have started the upload; `may_continue_upload` decides.
        Op::ListParts => ("s3:ListMultipartUploadParts", Need::Bucket(Write)),
        Op::DeleteObject => (pick("s3:DeleteObject", "s3:DeleteObjectVersion"), Need::Bucket(Write)),
        Op::DeleteObjects => ("s3:DeleteObject", Need::Bucket(Write)),
        Op::GetObject | Op::HeadObject => (pick("s3:GetObject", "s3:GetObjectVersion"), Need::Object(Read)),
        Op::GetObjectAttributes => ("s3:GetObjectAttributes", Need::Object(Read)),
        Op::GetObjectAcl => ("s3:GetObjectAcl", Need::Object(ReadAcp)),
        Op::PutObjectAcl => ("s3:PutObjectAcl", Need::Object(WriteAcp)),
        Op::GetObjectTagging => ("s3:GetObjectTagging", Need::Object(Read)),
        // Changing an object's tags is its owner's, as in S3.
        Op::PutObjectTagging => ("s3:PutObjectTagging", Need::Object(FullControl)),
        Op::DeleteObjectTagging => ("s3:DeleteObjectTagging", Need::Object(FullControl)),
        Op::NotImplemented(_) => ("", Need::Owner),
    }
}

/// Decides a request, or says what its handler must still check.
pub async fn authorize(state: &AppState, req: &S3Request) -> S3Result<Access> {
    let route = &req.route;
    let versioned = req.route.query.has("versionId");
    let (action, need) = requirement(route, versioned);
    let bucket = match &route.bucket {
        Some(bucket) if need != Need::Signed => bucket,
        // ListBuckets and CreateBucket: any signed requester.
        _ if req.principal == Principal::Anonymous => return Err(denied()),
        _ => return Ok(Access::default()),
    };
    if req.principal == Principal::Root && !needs_owner_as_root(route.op) {
        return Ok(Access { may_list: true, source_may_list: true, ..Access::default() });
    }
    let record = bucket_record(state, bucket).await?;
    let resource = match &route.key {
        Some(key) => format!("{bucket}/{key}"),
        None => bucket.to_string(),
    };
    let delete_rule = match route.op {
        Op::DeleteObjects => delete_rule(&req.principal, &record, bucket),
        _ => None,
    };
    let mut access = match decide(&req.principal, &record, action, &resource, need) {
        // A policy may allow deleting some keys only: DeleteObjects judges each.
        Err(_) if delete_rule.is_some() => Access { bucket_owner: Some(record.owner.clone()), ..Access::default() },
        decided => decided?,
    };
    access.delete_rule = delete_rule;
    if matches!(route.op, Op::CopyObject | Op::UploadPartCopy) {
        let (source, key, version) = parse_copy_source(req.header("x-amz-copy-source").unwrap_or_default())?;
        let source_record = bucket_record(state, &source).await?;
        let action = if version.is_some() { "s3:GetObjectVersion" } else { "s3:GetObject" };
        let resource = format!("{source}/{key}");
        let source_access = decide(&req.principal, &source_record, action, &resource, Need::Object(Permission::Read))?;
        access.source_need = source_access.object_need;
        access.source_owner = Some(source_record.owner);
        access.source_may_list = source_access.may_list;
    }
    Ok(access)
}

/// Writes that record who owns the new object, and listings and ACLs that
/// show owners, need the bucket's owner even when the root user asks.
fn needs_owner_as_root(op: Op) -> bool {
    matches!(
        op,
        Op::PutObject
            | Op::CopyObject
            | Op::CreateMultipartUpload
            | Op::CompleteMultipartUpload
            | Op::ListObjects
            | Op::ListObjectsV2
            | Op::ListObjectVersions
            | Op::GetObjectAcl
            | Op::PutObjectAcl
    )
}

fn denied() -> S3Error {
    S3Error::new(S3ErrorCode::AccessDenied)
}

/// The bucket's policy, then its owner and ACL.
fn decide(who: &Principal, bucket: &BucketRecord, action: &str, resource: &str, need: Need) -> S3Result<Access> {
    let owner = *who != Principal::Anonymous && who.id() == bucket.owner || *who == Principal::Root;
    let may_list = owner
        || match policy::evaluate(bucket.policy.as_ref(), who, "s3:ListBucket", bucket_of(resource)) {
            Verdict::Allow => true,
            Verdict::Deny => false,
            Verdict::Silent => acl::allows(bucket.acl.as_ref(), &bucket.owner, who, Permission::Read),
        };
    let access = Access { bucket_owner: Some(bucket.owner.clone()), may_list, ..Access::default() };
    let verdict = match who {
        Principal::Root => Verdict::Allow,
        _ => policy::evaluate(bucket.policy.as_ref(), who, action, resource),
    };
    match (verdict, need) {
        (Verdict::Deny, _) => Err(denied()),
        (Verdict::Allow, _) => Ok(access),
        (Verdict::Silent, Need::Object(permission)) => Ok(Access { object_need: Some(permission), ..access }),
        (Verdict::Silent, _) if owner => Ok(access),
        (Verdict::Silent, Need::Bucket(permission))
            if acl::allows(bucket.acl.as_ref(), &bucket.owner, who, permission) =>
        {
            Ok(access)
        }
        (Verdict::Silent, _) => Err(denied()),
    }
}

fn bucket_of(resource: &str) -> &str {
    resource.split_once('/').map_or(resource, |(bucket, _)| bucket)
}

/// DeleteObjects of a bucket with a policy: each key is judged.
fn delete_rule(who: &Principal, bucket: &BucketRecord, name: &str) -> Option<DeleteRule> {
    let (Some(policy), false) = (&bucket.policy, *who == Principal::Root) else { return None };
    let fallback = acl::allows(bucket.acl.as_ref(), &bucket.owner, who, Permission::Write);
    Some(DeleteRule { policy: policy.clone(), bucket: name.to_string(), fallback })
}

/// A point read of the bucket's record ([`Store::lookup`](crate::store::Store::lookup)).
async fn bucket_record(state: &AppState, bucket: &str) -> S3Result<BucketRecord> {
    match state.store.lookup(|s| s.bucket(bucket)).await {
        Ok(record) => Ok(record),
        Err(StoreError::NoSuchBucket) => {
            Err(S3Error::new(S3ErrorCode::NoSuchBucket).with_extra("BucketName", bucket.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

impl Access {
    /// Whether the object (or version) `record` lets `who` do what the
    /// request needs.
    pub fn check_object(&self, who: &Principal, record: &ObjectRecord) -> S3Result<()> {
        self.check(self.object_need, self.bucket_owner.as_deref(), who, record)
    }

    /// The same for the source object of a copy.
    pub fn check_source(&self, who: &Principal, record: &ObjectRecord) -> S3Result<()> {
        self.check(self.source_need, self.source_owner.as_deref(), who, record)
    }

    fn check(
        &self,
        need: Option<Permission>,
        bucket_owner: Option<&str>,
        who: &Principal,
        record: &ObjectRecord,
    ) -> S3Result<()> {
        let Some(need) = need else { return Ok(()) };
        match acl::allows(record.acl.as_ref(), owner_of(record, bucket_owner), who, need) {
            true => Ok(()),
            false => Err(denied()),
        }
    }

    /// The routed bucket's owner (root's id when the request did not need it).
    pub fn bucket_owner(&self) -> &str {
        self.bucket_owner.as_deref().unwrap_or(super::ROOT_ID)
    }

    /// Who owns an object of the routed bucket: its writer, recorded when
    /// that was not the bucket's owner, else the bucket's owner.
    pub fn object_owner<'a>(&'a self, record: &'a ObjectRecord) -> &'a str {
        owner_of(record, self.bucket_owner.as_deref())
    }

    /// What a failed object lookup answers: someone who may not list the
    /// bucket learns nothing about which keys (or versions) exist.
    pub fn hide_missing(&self, e: S3Error) -> S3Error {
        hide_unless(self.may_list, e)
    }

    /// The same for the source of a copy.
    pub fn hide_missing_source(&self, e: S3Error) -> S3Error {
        hide_unless(self.source_may_list, e)
    }

    /// Whether DeleteObjects may delete `key` (the request as a whole was
    /// allowed by [`authorize`] or is judged here key by key).
    pub fn may_delete(&self, who: &Principal, key: &str, versioned: bool) -> bool {
        let Some(rule) = &self.delete_rule else { return true };
        let action = if versioned { "s3:DeleteObjectVersion" } else { "s3:DeleteObject" };
        match policy::evaluate(Some(&rule.policy), who, action, &format!("{}/{key}", rule.bucket)) {
            Verdict::Allow => true,
            Verdict::Deny => false,
            Verdict::Silent => rule.fallback,
        }
    }

    /// Whether `who` may do `op` on a multipart upload `initiator` started:
    /// only the initiator uploads parts and completes; the bucket's owner
    /// may also list its parts and abort it (S3's rule).
    pub fn may_continue_upload(&self, who: &Principal, op: Op, initiator: &str) -> bool {
        let bucket_owner = *who != Principal::Anonymous && self.bucket_owner.as_deref() == Some(who.id());
        *who == Principal::Root
            || who.id() == initiator
            || bucket_owner && matches!(op, Op::ListParts | Op::AbortMultipartUpload)
    }
}

fn owner_of<'a>(record: &'a ObjectRecord, bucket_owner: Option<&'a str>) -> &'a str {
    record.owner.as_deref().or(bucket_owner).unwrap_or(super::ROOT_ID)
}

fn hide_unless(may_list: bool, e: S3Error) -> S3Error {
    let reveals = matches!(e.code, S3ErrorCode::NoSuchKey | S3ErrorCode::NoSuchVersion | S3ErrorCode::MethodNotAllowed);
    match reveals && !may_list {
        true => denied(),
        false => e,
    }
}
