//! ACLs as S3 has them: canned ACLs (`x-amz-acl`), grant headers
//! (`x-amz-grant-*`) and the `AccessControlPolicy` document; how they are
//! shown; and whom a grant lets in. The operations that set and show them
//! are at the end. Who may call which operation is `access.rs`.
//!
//! A resource's owner always has full control, whatever its list says; an
//! absent list (`None`) is `private`: the owner alone.

use std::collections::HashMap;

use http::{HeaderMap, Response, StatusCode};

use super::error::{S3Error, S3ErrorCode, S3Result};
use super::headers::header;
use super::ingest::receive_small;
use super::xml::{self, Element, XmlWriter};
use super::{empty_response, xml_response, AppState, Principal, S3Request, ANONYMOUS_ID, ROOT_ID};
use crate::http::body::Body;
use crate::store::schema::{Grant, Grantee, Grants, ObjectRecord, Permission};

pub const ALL_USERS_URI: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
pub const AUTHENTICATED_USERS_URI: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
pub const LOG_DELIVERY_URI: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";

/// An AccessControlPolicy document is small; 64 KiB is far more than 100 grants.
const MAX_ACL_BODY: usize = 64 * 1024;
/// S3 allows at most 100 grants in one ACL.
const MAX_GRANTS: usize = 100;

/// The grant headers and the permission each gives.
const GRANT_HEADERS: [(&str, Permission); 5] = [
    ("x-amz-grant-read", Permission::Read),
    ("x-amz-grant-write", Permission::Write),
    ("x-amz-grant-read-acp", Permission::ReadAcp),
    ("x-amz-grant-write-acp", Permission::WriteAcp),
    ("x-amz-grant-full-control", Permission::FullControl),
];

/// Whether `who` has `wanted` on a resource owned by `owner` with `grants`.
/// FULL_CONTROL includes every permission. The anonymous requester owns nothing.
pub fn allows(grants: Option<&Grants>, owner: &str, who: &Principal, wanted: Permission) -> bool {
    let anonymous = *who == Principal::Anonymous;
    if !anonymous && who.id() == owner {
        return true;
    }
    grants.into_iter().flatten().any(|grant| {
        (grant.permission == wanted || grant.permission == Permission::FullControl)
            && match &grant.grantee {
                Grantee::User(id) => !anonymous && who.id() == id,
                Grantee::AllUsers => true,
                Grantee::AuthenticatedUsers => !anonymous,
                Grantee::LogDelivery => false,
            }
    })
}

/// An ACL a request asks for, before it is applied to a resource: a canned
/// ACL depends on the resource's owner (and, for objects, the bucket's).
#[derive(Debug, Clone, PartialEq)]
pub enum Requested {
    Canned(Canned),
    Grants(Grants),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canned {
    Private,
    PublicRead,
    PublicReadWrite,
    AuthenticatedRead,
    BucketOwnerRead,
    BucketOwnerFullControl,
    LogDeliveryWrite,
}

impl Canned {
    fn parse(name: &str) -> S3Result<Canned> {
        Ok(match name.trim() {
            "private" => Canned::Private,
            "public-read" => Canned::PublicRead,
            "public-read-write" => Canned::PublicReadWrite,
            "authenticated-read" => Canned::AuthenticatedRead,
            "bucket-owner-read" => Canned::BucketOwnerRead,
            "bucket-owner-full-control" => Canned::BucketOwnerFullControl,
            "log-delivery-write" => Canned::LogDeliveryWrite,
            other => {
                return Err(S3Error::with_message(S3ErrorCode::InvalidArgument, format!("Invalid canned ACL {other}"))
                    .with_extra("ArgumentName", "x-amz-acl")
                    .with_extra("ArgumentValue", other.to_string()))
            }
        })
    }

    /// The grants this canned ACL stands for on a resource of `owner` in a
    /// bucket of `bucket_owner`.
    fn grants(self, owner: &str, bucket_owner: &str) -> Grants {
        let grant = |grantee, permission| Grant { grantee, permission };
        let mut grants = vec![grant(Grantee::User(owner.to_string()), Permission::FullControl)];
        let bucket_owner_gets = |permission| grant(Grantee::User(bucket_owner.to_string()), permission);
        match self {
            Canned::Private => {}
            Canned::PublicRead => grants.push(grant(Grantee::AllUsers, Permission::Read)),
            Canned::PublicReadWrite => {
                grants.push(grant(Grantee::AllUsers, Permission::Read));
                grants.push(grant(Grantee::AllUsers, Permission::Write));
            }
            Canned::AuthenticatedRead => grants.push(grant(Grantee::AuthenticatedUsers, Permission::Read)),
            Canned::BucketOwnerRead if owner != bucket_owner => grants.push(bucket_owner_gets(Permission::Read)),
            Canned::BucketOwnerFullControl if owner != bucket_owner => {
                grants.push(bucket_owner_gets(Permission::FullControl))
            }
            Canned::BucketOwnerRead | Canned::BucketOwnerFullControl => {}
            Canned::LogDeliveryWrite => {
                grants.push(grant(Grantee::LogDelivery, Permission::Write));
                grants.push(grant(Grantee::LogDelivery, Permission::ReadAcp));
            }
        }
        grants
    }
}

impl Requested {
    /// The grants for a resource of `owner` in a bucket of `bucket_owner`.
    pub fn resolve(self, owner: &str, bucket_owner: &str) -> Grants {
        match self {
            Requested::Canned(canned) => canned.grants(owner, bucket_owner),
            Requested::Grants(grants) => grants,
        }
    }
}

/// The users grants may name: ids, e-mail addresses and display names.
pub struct Directory {
    names: HashMap<String, String>,
    emails: HashMap<String, String>,
}

impl Directory {
    pub async fn load(state: &AppState) -> S3Result<Directory> {
        let users = state.store.run(|s| s.users()).await?;
        let mut names = HashMap::from([(ROOT_ID.to_string(), ROOT_ID.to_string())]);
        let mut emails = HashMap::new();
        for user in users {
            if let Some(email) = &user.email {
                emails.insert(email.to_ascii_lowercase(), user.canonical_id.clone());
            }
            names.insert(user.canonical_id, user.name);
        }
        Ok(Directory { names, emails })
    }

    /// The display name S3 shows beside a canonical id.
    pub fn display_name<'a>(&'a self, id: &'a str) -> &'a str {
        match id {
            ANONYMOUS_ID => "anonymous",
            _ => self.names.get(id).map_or(id, String::as_str),
        }
    }

    /// The canonical id of a user named by id or by name.
    pub fn resolve(&self, id_or_name: &str) -> Option<String> {
        match self.names.contains_key(id_or_name) {
            true => Some(id_or_name.to_string()),
            false => self.names.iter().find(|(_, name)| *name == id_or_name).map(|(id, _)| id.clone()),
        }
    }

    /// A directory of (canonical id, name, e-mail) triples (tests and fuzzing).
    pub fn from_pairs(users: &[(&str, &str, Option<&str>)]) -> Directory {
        let names = users.iter().map(|(id, name, _)| (id.to_string(), name.to_string())).collect();
        let emails = users.iter().filter_map(|(id, _, email)| Some(((*email)?.to_string(), id.to_string()))).collect();
        Directory { names, emails }
    }

    fn user(&self, id: &str) -> S3Result<Grantee> {
        match self.names.contains_key(id) {
            true => Ok(Grantee::User(id.to_string())),
            false => Err(S3Error::with_message(S3ErrorCode::InvalidArgument, "Invalid id")
                .with_extra("ArgumentName", "CanonicalUser/ID")
                .with_extra("ArgumentValue", id.to_string())),
        }
    }

    fn by_email(&self, email: &str) -> S3Result<Grantee> {
        match self.emails.get(&email.to_ascii_lowercase()) {
            Some(id) => Ok(Grantee::User(id.clone())),
            None => Err(S3Error::new(S3ErrorCode::UnresolvableGrantByEmailAddress)
                .with_extra("EmailAddress", email.to_string())),
        }
    }
}

fn group(uri: &str) -> S3Result<Grantee> {
    match uri {
        ALL_USERS_URI => Ok(Grantee::AllUsers),
        AUTHENTICATED_USERS_URI => Ok(Grantee::AuthenticatedUsers),
        LOG_DELIVERY_URI => Ok(Grantee::LogDelivery),
        other => Err(S3Error::with_message(S3ErrorCode::InvalidArgument, "Invalid group uri")
            .with_extra("ArgumentName", "Group/URI")
            .with_extra("ArgumentValue", other.to_string())),
    }
}

/// Whether a request carries an ACL in its headers.
pub fn in_headers(headers: &HeaderMap) -> bool {
    headers.contains_key("x-amz-acl") || GRANT_HEADERS.iter().any(|(name, _)| headers.contains_key(*name))
}

/// The ACL a write's headers ask for (`None` without any: `private`).
/// Both a canned ACL and grant headers is an error, as in S3.
pub async fn from_headers(state: &AppState, headers: &HeaderMap) -> S3Result<Option<Requested>> {
    let canned = header(headers, "x-amz-acl");
    let has_grants = GRANT_HEADERS.iter().any(|(name, _)| headers.contains_key(*name));
    match (canned, has_grants) {
        (None, false) => Ok(None),
        (Some(_), true) => Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "Specifying both Canned ACLs and Header Grants is not allowed",
        )),
        (Some(name), false) => Ok(Some(Requested::Canned(Canned::parse(name)?))),
        (None, true) => {
            let directory = Directory::load(state).await?;
            let mut grants = Grants::new();
            for (name, permission) in GRANT_HEADERS {
                for value in headers.get_all(name) {
                    let value = value.to_str().map_err(|_| bad_grant_header(name))?;
                    for grantee in parse_grantees(value, &directory, name)? {
                        grants.push(Grant { grantee, permission });
                    }
                }
            }
            check_count(&grants)?;
            Ok(Some(Requested::Grants(grants)))
        }
    }
}

fn bad_grant_header(name: &str) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidArgument, format!("Unreadable {name} header"))
        .with_extra("ArgumentName", name.to_string())
}

/// `id="…", uri="…", emailAddress="…"`: grantees separated by commas.
pub fn parse_grantees(value: &str, directory: &Directory, name: &str) -> S3Result<Vec<Grantee>> {
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        let (kind, who) = item.split_once('=').ok_or_else(|| bad_grant_header(name))?;
        let who = who.trim().trim_matches('"');
        out.push(match kind.trim().to_ascii_lowercase().as_str() {
            "id" => directory.user(who)?,
            "uri" => group(who)?,
            "emailaddress" => directory.by_email(who)?,
            _ => return Err(bad_grant_header(name)),
        });
    }
    Ok(out)
}

fn check_count(grants: &Grants) -> S3Result<()> {
    match grants.len() <= MAX_GRANTS {
        true => Ok(()),
        false => Err(S3Error::with_message(S3ErrorCode::MalformedACLError, "An ACL may have at most 100 grants")),
    }
}

/// An `AccessControlPolicy` document. Its `Owner`, when given, must be the
/// resource's: an ACL cannot give a resource away.
pub fn from_document(doc: &Element, owner: &str, directory: &Directory) -> S3Result<Grants> {
    let malformed = || S3Error::new(S3ErrorCode::MalformedACLError);
    if doc.name != "AccessControlPolicy" {
        return Err(malformed());
    }
    if let Some(id) = doc.child("Owner").and_then(|o| o.child_text("ID")) {
        if id.trim() != owner {
            return Err(S3Error::with_message(S3ErrorCode::AccessDenied, "The Owner of an ACL cannot be changed"));
        }
    }
    let list = doc.child("AccessControlList").ok_or_else(malformed)?;
    let mut grants = Grants::new();
    for grant in list.children_named("Grant") {
        let grantee = grant.child("Grantee").ok_or_else(malformed)?;
        let grantee = match (grantee.child_text("ID"), grantee.child_text("URI"), grantee.child_text("EmailAddress")) {
            (Some(id), None, None) => directory.user(id.trim())?,
            (None, Some(uri), None) => group(uri.trim())?,
            (None, None, Some(email)) => directory.by_email(email.trim())?,
            _ => return Err(malformed()),
        };
        let permission = match grant.child_text("Permission").map(str::trim) {
            Some("FULL_CONTROL") => Permission::FullControl,
            Some("READ") => Permission::Read,
            Some("WRITE") => Permission::Write,
            Some("READ_ACP") => Permission::ReadAcp,
            Some("WRITE_ACP") => Permission::WriteAcp,
            _ => return Err(malformed()),
        };
        grants.push(Grant { grantee, permission });
    }
    check_count(&grants)?;
    Ok(grants)
}

/// The `AccessControlPolicy` document GetBucketAcl and GetObjectAcl answer.
pub fn render(owner: &str, grants: Option<&Grants>, directory: &Directory) -> String {
    let private;
    let grants = match grants {
        Some(grants) => grants,
        None => {
            private = Canned::Private.grants(owner, owner);
            &private
        }
    };
    let mut w = XmlWriter::new("AccessControlPolicy");
    w.start("Owner").elem("ID", owner).elem("DisplayName", directory.display_name(owner)).end("Owner");
    w.start("AccessControlList");
    for grant in grants {
        w.start("Grant");
        let (kind, id, uri) = match &grant.grantee {
            Grantee::User(id) => ("CanonicalUser", Some(id.as_str()), None),
            Grantee::AllUsers => ("Group", None, Some(ALL_USERS_URI)),
            Grantee::AuthenticatedUsers => ("Group", None, Some(AUTHENTICATED_USERS_URI)),
            Grantee::LogDelivery => ("Group", None, Some(LOG_DELIVERY_URI)),
        };
        w.raw(&format!("<Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"{kind}\">"));
        if let Some(id) = id {
            w.elem("ID", id).elem("DisplayName", directory.display_name(id));
        }
        w.opt("URI", uri);
        w.end("Grantee").elem("Permission", permission_name(grant.permission)).end("Grant");
    }
    w.end("AccessControlList");
    w.finish("AccessControlPolicy")
}

fn permission_name(permission: Permission) -> &'static str {
    match permission {
        Permission::FullControl => "FULL_CONTROL",
        Permission::Read => "READ",
        Permission::Write => "WRITE",
        Permission::ReadAcp => "READ_ACP",
        Permission::WriteAcp => "WRITE_ACP",
    }
}

/// The ACL a PutBucketAcl or PutObjectAcl asks for: its headers, or else
/// its body (not both).
async fn requested_for_put(state: &AppState, req: &mut S3Request) -> S3Result<PutAcl> {
    let from_headers = from_headers(state, req.headers()).await?;
    let body = receive_small(state, req, MAX_ACL_BODY).await?;
    match (from_headers, body.is_empty()) {
        (Some(requested), true) => Ok(PutAcl::Requested(requested)),
        (Some(_), false) => Err(S3Error::with_message(
            S3ErrorCode::UnexpectedContent,
            "This request does not support content when ACL headers are given",
        )),
        (None, true) => Err(S3Error::new(S3ErrorCode::MissingSecurityHeader)),
        (None, false) => {
            let doc = xml::parse(&body).map_err(|_| S3Error::new(S3ErrorCode::MalformedACLError))?;
            Ok(PutAcl::Document(doc, Directory::load(state).await?))
        }
    }
}

/// A put ACL before it meets the resource (whose owner a document checks).
enum PutAcl {
    Requested(Requested),
    Document(Element, Directory),
}

impl PutAcl {
    fn grants(&self, owner: &str, bucket_owner: &str) -> S3Result<Grants> {
        match self {
            PutAcl::Requested(requested) => Ok(requested.clone().resolve(owner, bucket_owner)),
            PutAcl::Document(doc, directory) => from_document(doc, owner, directory),
        }
    }
}

/// GetBucketAcl.
pub async fn get_bucket(state: &AppState, req: S3Request) -> S3Result<Response<Body>> {
    let bucket = req.bucket()?.clone();
    let record = state.store.run(move |s| s.bucket(&bucket)).await?;
    let directory = Directory::load(state).await?;
    xml_response(render(&record.owner, record.acl.as_ref(), &directory))
}

/// PutBucketAcl: a canned ACL, grant headers or a document replace the list.
pub async fn put_bucket(state: &AppState, mut req: S3Request) -> S3Result<Response<Body>> {
    let bucket = req.bucket()?.clone();
    let owner = state.store.lookup(|s| s.bucket(&bucket)).await?.owner;
    let grants = requested_for_put(state, &mut req).await?.grants(&owner, &owner)?;
    state.store.run(move |s| s.update_bucket(&bucket, move |b| b.acl = Some(grants.clone()))).await?;
    empty_response(StatusCode::OK)
}

/// GetObjectAcl (of the version `versionId` names, or the current one).
pub async fn get_object(state: &AppState, req: S3Request) -> S3Result<Response<Body>> {
    let (record, version) = super::object::load(state, &req).await?;
    let directory = Directory::load(state).await?;
    let owner = req.access.object_owner(&record);
    let mut response = xml_response(render(owner, record.acl.as_ref(), &directory))?;
    super::versioning::add_header(&mut response, version);
    Ok(response)
}

/// PutObjectAcl: checked before the body is read or a grantee looked up
/// (so no one without WRITE_ACP learns which ids or addresses exist), then
/// checked again and changed in one transaction, on the version the request
/// names, so a concurrent overwrite cannot take the new ACL.
pub async fn put_object(state: &AppState, mut req: S3Request) -> S3Result<Response<Body>> {
    super::object::load(state, &req).await?;
    let put = requested_for_put(state, &mut req).await?;
    let (bucket, key) = (req.bucket()?.clone(), req.key()?.clone());
    let version = super::versioning::requested(&req)?;
    let access = req.access.clone();
    let principal = req.principal.clone();
    let record = state
        .store
        .run(move |s| {
            s.update_object(&bucket, &key, version, move |record: &mut ObjectRecord| {
                access.check_object(&principal, record)?;
                record.acl = Some(put.grants(access.object_owner(record), access.bucket_owner())?);
                Ok::<_, S3Error>(())
            })
        })
        .await
        .map_err(|e| req.access.hide_missing(super::object::with_key(e, &req)))?;
    let mut response = empty_response(StatusCode::OK)?;
    super::versioning::add_header(&mut response, version.or_else(|| super::versioning::of_write(&record)));
    Ok(response)
}

/// The owner id and ACL a new object gets from a write by `req`: the
/// writer owns it (recorded only when that is not the bucket's owner).
pub async fn for_new_object(state: &AppState, req: &S3Request) -> S3Result<(Option<String>, Option<Grants>)> {
    let writer = req.principal.id();
    let bucket_owner = req.access.bucket_owner();
    let owner = (writer != bucket_owner).then(|| writer.to_string());
    let acl = from_headers(state, req.headers()).await?.map(|r| r.resolve(writer, bucket_owner));
    Ok((owner, acl))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> Principal {
        Principal::User { name: id.into(), canonical_id: id.into() }
    }

    #[test]
    fn canned_acls_grant_what_s3_documents() {
        let read = |canned: Canned, who: &Principal| allows(Some(&canned.grants("o", "b")), "o", who, Permission::Read);
        let (owner, other, bucket_owner) = (user("o"), user("x"), user("b"));
        for canned in [Canned::Private, Canned::PublicRead, Canned::AuthenticatedRead, Canned::BucketOwnerRead] {
            assert!(read(canned, &owner), "{canned:?}: the owner reads");
        }
        assert!(!read(Canned::Private, &other) && !read(Canned::Private, &Principal::Anonymous));
        assert!(read(Canned::PublicRead, &Principal::Anonymous) && read(Canned::PublicRead, &other));
        assert!(read(Canned::AuthenticatedRead, &other) && !read(Canned::AuthenticatedRead, &Principal::Anonymous));
        assert!(read(Canned::BucketOwnerRead, &bucket_owner) && !read(Canned::BucketOwnerRead, &other));
        let write =
            allows(Some(&Canned::PublicReadWrite.grants("o", "o")), "o", &Principal::Anonymous, Permission::Write);
        assert!(write, "public-read-write lets anyone write");
        let acp =
            allows(Some(&Canned::BucketOwnerFullControl.grants("o", "b")), "o", &bucket_owner, Permission::WriteAcp);
        assert!(acp, "full control includes WRITE_ACP");
        assert_eq!(Canned::BucketOwnerRead.grants("o", "o").len(), 1, "no second grant to the same owner");
    }

    #[test]
    fn the_anonymous_requester_owns_nothing() {
        assert!(!allows(None, ANONYMOUS_ID, &Principal::Anonymous, Permission::Read));
        assert!(allows(None, "o", &user("o"), Permission::WriteAcp), "an owner needs no grant");
    }

    #[test]
    fn grant_headers_and_documents_parse() {
        let directory = Directory::from_pairs(&[("id1", "alice", Some("a@example.com"))]);
        let got = parse_grantees(
            &format!("id=\"id1\", uri=\"{ALL_USERS_URI}\", emailAddress=\"A@example.com\""),
            &directory,
            "x-amz-grant-read",
        )
        .expect("parses");
        assert_eq!(got, vec![Grantee::User("id1".into()), Grantee::AllUsers, Grantee::User("id1".into())]);
        let e = parse_grantees("id=\"nobody\"", &directory, "x-amz-grant-read").expect_err("unknown id");
        assert_eq!(e.code, S3ErrorCode::InvalidArgument);
        let e = parse_grantees("emailAddress=\"z@example.com\"", &directory, "h").expect_err("unknown email");
        assert_eq!(e.code, S3ErrorCode::UnresolvableGrantByEmailAddress);

        let doc = format!(
            "<AccessControlPolicy><Owner><ID>id1</ID></Owner><AccessControlList>\
             <Grant><Grantee><URI>{AUTHENTICATED_USERS_URI}</URI></Grantee><Permission>READ</Permission></Grant>\
             </AccessControlList></AccessControlPolicy>"
        );
        let doc = xml::parse(doc.as_bytes()).expect("xml");
        let grants = from_document(&doc, "id1", &directory).expect("a document");
        assert_eq!(grants, vec![Grant { grantee: Grantee::AuthenticatedUsers, permission: Permission::Read }]);
        let e = from_document(&doc, "someone-else", &directory).expect_err("another owner");
        assert_eq!(e.code, S3ErrorCode::AccessDenied);
        let shown = render("id1", Some(&grants), &directory);
        assert!(shown.contains("<DisplayName>alice</DisplayName>") && shown.contains(AUTHENTICATED_USERS_URI));
    }
}
