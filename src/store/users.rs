//! Users other than root: their key pairs and canonical ids, kept in the
//! metadata database (`meta.redb`, owner-only permissions) so that a change
//! is one transaction and a running server sees it at its next request.
//! The secret is needed in clear to check SigV4 signatures, as in S3.

use serde::{Deserialize, Serialize};

use super::schema::Stored;
use super::{Store, StoreError, StoreResult};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UserRecord {
    pub name: String,
    pub access_key: String,
    pub secret_key: String,
    /// The id ACL grants and bucket owners name (64 hex digits, as S3's).
    pub canonical_id: String,
    pub email: Option<String>,
    pub created_ms: i64,
}

impl Stored for UserRecord {}

/// IAM's rule for user names: 1-64 of letters, digits and `+=,.@_-`.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

impl Store {
    /// Adds a user; `UserExists` if the name (or, improbably, the key) is taken.
    pub fn add_user(&self, user: UserRecord) -> StoreResult<UserRecord> {
        self.write(move |txn| {
            if txn.user(&user.name)?.is_some() || txn.user_of_key(&user.access_key)?.is_some() {
                return Err(StoreError::UserExists);
            }
            txn.put_user(&user)?;
            Ok((user.clone(), Vec::new()))
        })
    }

    /// Every user, by name.
    pub fn users(&self) -> StoreResult<Vec<UserRecord>> {
        self.read(|txn| txn.users())
    }

    /// The user an access key belongs to, if any: one point read per request.
    pub fn user_by_key(&self, access_key: &str) -> StoreResult<Option<UserRecord>> {
        self.read(|txn| match txn.user_of_key(access_key)? {
            Some(name) => txn.user(&name),
            None => Ok(None),
        })
    }

    /// Removes a user; their key is refused from the next request on. Their
    /// buckets stay, owned by their canonical id (root can still reach them).
    pub fn remove_user(&self, name: &str) -> StoreResult<UserRecord> {
        let name = name.to_string();
        self.write(move |txn| {
            let user = txn.user(&name)?.ok_or(StoreError::NoSuchUser)?;
            txn.remove_user(&user)?;
            Ok((user, Vec::new()))
        })
    }

    /// Gives a user a new secret; the old one is refused from the next request on.
    pub fn set_user_secret(&self, name: &str, secret_key: String) -> StoreResult<UserRecord> {
        let name = name.to_string();
        self.write(move |txn| {
            let mut user = txn.user(&name)?.ok_or(StoreError::NoSuchUser)?;
            user.secret_key = secret_key.clone();
            txn.put_user(&user)?;
            Ok((user, Vec::new()))
        })
    }
}
