//! Every redb table and the encoding of every stored value.
//!
//! Values are postcard-encoded structs behind a one-byte format version, so a
//! layout change fails loudly instead of misreading bytes.

use redb::TableDefinition;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::layout::{BlobId, NO_BLOB};
use crate::store::digest::{BlockCrcs, ChecksumAlgorithm};

/// Bucket name -> [`BucketRecord`].
pub const BUCKETS: TableDefinition<&str, &[u8]> = TableDefinition::new("buckets_v1");
/// `object_key(bucket, key)` -> [`ObjectRecord`]. Byte order of the key is S3's
/// listing order within a bucket.
pub const OBJECTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("objects_v1");
/// Blob id -> number of object records that reference it (copies share blobs).
pub const BLOB_REFS: TableDefinition<u128, u64> = TableDefinition::new("blob_refs_v1");
/// Blobs no record references any more; their files are unlinked after the
/// commit that put them here, and the table is replayed at start-up.
pub const DEAD_BLOBS: TableDefinition<u128, ()> = TableDefinition::new("dead_blobs_v1");

/// Blob id -> bytes of a small blob, as versions before the pack
/// (`store/redb_meta/pack.rs`) stored them: still read and freed, no longer written.
pub const INLINE_BLOBS: TableDefinition<u128, &[u8]> = TableDefinition::new("inline_blobs_v1");
/// Blob id (file or [`INLINE_BLOBS`] row; the pack checks its own chunks) -> its block checksums, [`encode_block_crcs`].
/// Inserted by the transaction that first references the blob, removed by the
/// one that frees it. A blob written before this table existed has no row:
/// it is served unchecked and counted as unverified by the scrub.
/// Kept apart from the object records (which every GET, HEAD and listing
/// decodes) because a 1 GiB blob has 64 KiB of them; shared by copies.
pub const BLOB_CRCS: TableDefinition<u128, &[u8]> = TableDefinition::new("blob_crcs_v1");
/// Chunk number -> `[CRC32C of the data, little-endian][data]`; chunk `n`
/// holds bytes `n * CHUNK_DATA ..` of the pack (`store/redb_meta/pack.rs`).
pub const PACK_CHUNKS: TableDefinition<u64, &[u8]> = TableDefinition::new("pack_chunks_v1");
/// Chunk number -> how many packed blobs overlap it.
pub const PACK_LIVE: TableDefinition<u64, u32> = TableDefinition::new("pack_live_v1");
/// `chunk number << 16 | offset in the chunk` -> length: bytes of freed blobs
/// still inside a chunk that other blobs hold, cut out later (`store/redb_meta/pack.rs`).
pub const PACK_DEAD: TableDefinition<u64, u32> = TableDefinition::new("pack_dead_v1");

/// Store-wide counters: `commit_seq`, bumped by every group commit (see
/// `commit_mark.rs`); `pack_end`, the length of the pack.
pub const STORE_META: TableDefinition<&str, u64> = TableDefinition::new("store_meta_v1");
/// Upload id -> [`UploadRecord`]: multipart uploads in progress.
pub const UPLOADS: TableDefinition<&str, &[u8]> = TableDefinition::new("uploads_v1");
/// `upload_index_key(bucket, key, upload id)` -> (): uploads in ListMultipartUploads
/// order (key, then upload id, which sorts by initiation time).
pub const UPLOAD_INDEX: TableDefinition<&[u8], ()> = TableDefinition::new("upload_index_v1");
/// `part_key(upload id, part number)` -> [`PartRecord`], in part-number order.
pub const PARTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("parts_v1");

/// `object_key(bucket, key)` -> [`CompletedUpload`]: the last multipart
/// upload completed at each key, so that a Complete repeated after it
/// succeeded (its response was lost) gets the same answer while the object
/// it created is still the current one. One row per key, removed when the
/// key is deleted; a row of a key overwritten since stays (it no longer
/// matches the object) until the key's next Complete or delete.
pub const COMPLETED_UPLOADS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("completed_uploads_v1");

/// `(object_key(bucket, key), !seq)` -> [`ObjectRecord`]: the versions of a
/// key that are not its current object (noncurrent versions and delete
/// markers; `store/versions.rs`), newest first. The current version stays
/// in [`OBJECTS`], so listings of current objects never walk old versions.
pub const VERSIONS: TableDefinition<(&[u8], u64), &[u8]> = TableDefinition::new("versions_v1");

/// The unique-file table (唯一文件表): [`content_key`] (SHA-256 and size of
/// a blob's bytes) -> the live blob holding them, as `id (16 bytes BE) ‖
/// inline (1 byte) ‖ postcard (MD5, checksum)`. A new body with the same content references that blob
/// instead of being stored again (`store/content.rs`).
pub const CONTENT: TableDefinition<&[u8], &[u8]> = TableDefinition::new("content_v1");
/// Blob -> its [`content_key`], so the row above goes when the blob dies.
pub const BLOB_CONTENT: TableDefinition<u128, &[u8]> = TableDefinition::new("blob_content_v1");
/// `(blob, owner's canonical id)` -> how many references to that blob file
/// the owner's objects, versions and upload parts hold: the proof of
/// possession an instant upload asks for (`store/content.rs`).
pub const CONTENT_HOLDERS: TableDefinition<(u128, &str), u64> = TableDefinition::new("content_holders_v1");

/// User name -> `users::UserRecord`: users other than root.
pub const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users_v1");
/// Access key id -> user name.
pub const USER_KEYS: TableDefinition<&str, &str> = TableDefinition::new("user_keys_v1");

/// The format byte of records that have no newer layout.
const FORMAT_VERSION: u8 = 1;

/// A record stored behind a format byte. A type whose layout changed says
/// its current format and decodes its older ones.
pub trait Stored: Serialize + DeserializeOwned {
    const FORMAT: u8 = FORMAT_VERSION;

    /// Decodes a value written in an older `format`.
    fn decode_older(_format: u8, _bytes: &[u8]) -> Result<Self, postcard::Error> {
        Err(postcard::Error::DeserializeBadEncoding)
    }
}

pub fn upload_index_key(bucket: &str, key: &str, upload_id: &str) -> Vec<u8> {
    let mut out = object_key(bucket, key.as_bytes());
    out.push(0);
    out.extend_from_slice(upload_id.as_bytes());
    out
}

/// Part rows of one upload are contiguous and ordered by part number.
pub fn part_key(upload_id: &str, part: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(upload_id.len() + 2);
    out.extend_from_slice(upload_id.as_bytes());
    out.extend_from_slice(&part.to_be_bytes());
    out
}

/// The table key of an object: bucket, a 0 byte (never in a bucket name), key.
/// All keys of one bucket are contiguous and sorted by key bytes.
pub fn object_key(bucket: &str, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bucket.len() + 1 + key.len());
    out.extend_from_slice(bucket.as_bytes());
    out.push(0);
    out.extend_from_slice(key);
    out
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BucketRecord {
    /// The owning user's id (the root user for now; the table is ready for more).
    pub owner: String,
    pub created_ms: i64,
    pub region: String,
    /// The lifecycle configuration, if one was put.
    pub lifecycle: Option<Lifecycle>,
    pub versioning: Versioning,
    /// The bucket's tag set (PutBucketTagging); empty when it has none.
    pub tags: Tags,
    /// The bucket's ACL; `None` is `private` (the owner has full control).
    pub acl: Option<Grants>,
    /// The bucket policy, if one was put.
    pub policy: Option<Policy>,
    /// The CORS configuration, if one was put (`s3/cors.rs`).
    pub cors: Option<Cors>,
}

/// A bucket's CORS configuration: its rules in the order given, the first
/// that matches a request deciding (`s3/cors_rules.rs`). Kept parsed, not as
/// the document sent: GetBucketCors writes it out again, as S3 does.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Cors {
    pub rules: Vec<CorsRule>,
}

/// One `<CORSRule>`, checked when it was put: at most one `*` in each
/// origin and allowed header, none in exposed headers.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CorsRule {
    pub id: Option<String>,
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<CorsMethod>,
    pub allowed_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age_seconds: Option<u32>,
}

/// The methods a CORS rule may allow (S3 allows no others).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum CorsMethod {
    Get,
    Put,
    Post,
    Delete,
    Head,
}

impl CorsMethod {
    pub const ALL: [CorsMethod; 5] =
        [CorsMethod::Get, CorsMethod::Put, CorsMethod::Post, CorsMethod::Delete, CorsMethod::Head];

    pub fn as_str(self) -> &'static str {
        match self {
            CorsMethod::Get => "GET",
            CorsMethod::Put => "PUT",
            CorsMethod::Post => "POST",
            CorsMethod::Delete => "DELETE",
            CorsMethod::Head => "HEAD",
        }
    }

    /// The method named exactly so (S3 compares case-sensitively).
    pub fn parse(name: &str) -> Option<CorsMethod> {
        CorsMethod::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

/// A tag set: (key, value) pairs in the order they were given.
pub type Tags = Vec<(String, String)>;

/// A bucket's versioning state. Once enabled, versioning can be suspended
/// but never turned off, as in S3.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum Versioning {
    #[default]
    Unversioned,
    Enabled,
    Suspended,
}

/// Who an ACL grant is for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum Grantee {
    /// A user (or root), by canonical id.
    User(String),
    /// Everyone, signed or not.
    AllUsers,
    /// Every request signed by a user of this server.
    AuthenticatedUsers,
    /// S3's log-delivery group: kept and shown, it grants nothing here.
    LogDelivery,
}

/// What an ACL grant allows (S3's five permissions).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum Permission {
    FullControl,
    Read,
    Write,
    ReadAcp,
    WriteAcp,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Grant {
    pub grantee: Grantee,
    pub permission: Permission,
}

/// An access control list, in the order it was given.
pub type Grants = Vec<Grant>;

/// A bucket policy: the document as the client sent it (for GetBucketPolicy)
/// and the statements Tessera evaluates (`s3/policy.rs`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Policy {
    pub json: String,
    pub statements: Vec<Statement>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Statement {
    /// Allow, or (when false) Deny.
    pub allow: bool,
    /// The canonical ids it applies to; `None` is everyone (`"*"`).
    pub principals: Option<Vec<String>>,
    /// Action patterns (`s3:GetObject`, `s3:*`, `s3:Get*`), as written.
    pub actions: Vec<String>,
    /// Resource patterns without `arn:aws:s3:::` (`bucket`, `bucket/prefix*`).
    pub resources: Vec<String>,
}

impl Stored for BucketRecord {
    const FORMAT: u8 = 4;

    fn decode_older(format: u8, bytes: &[u8]) -> Result<Self, postcard::Error> {
        #[derive(Deserialize)]
        struct V2 {
            owner: String,
            created_ms: i64,
            region: String,
            lifecycle: Option<Lifecycle>,
            versioning: Versioning,
            tags: Tags,
        }
        #[derive(Deserialize)]
        struct LifecycleV1 {
            xml: String,
            abort_rules: Vec<AbortIncompleteRule>,
        }
        #[derive(Deserialize)]
        struct V1 {
            owner: String,
            created_ms: i64,
            region: String,
            lifecycle: Option<LifecycleV1>,
        }
        match format {
            1 => {
                let V1 { owner, created_ms, region, lifecycle } = postcard::from_bytes(bytes)?;
                let lifecycle =
                    lifecycle.map(|l| Lifecycle { xml: l.xml, abort_rules: l.abort_rules, expiry_rules: Vec::new() });
                let versioning = Versioning::Unversioned;
                let (tags, acl, policy, cors) = (Tags::new(), None, None, None);
                Ok(BucketRecord { owner, created_ms, region, lifecycle, versioning, tags, acl, policy, cors })
            }
            2 => {
                let V2 { owner, created_ms, region, lifecycle, versioning, tags } = postcard::from_bytes(bytes)?;
                let (acl, policy, cors) = (None, None, None);
                Ok(BucketRecord { owner, created_ms, region, lifecycle, versioning, tags, acl, policy, cors })
            }
            // Format 4 added `cors` last; postcard writes an absent `Option`
            // as one 0 byte, so format 3 plus that byte is format 4 without CORS.
            3 => postcard::from_bytes(&[bytes, &[0]].concat()),
            _ => Err(postcard::Error::DeserializeBadEncoding),
        }
    }
}

/// A bucket lifecycle configuration: the document as the client sent it (for
/// GetBucketLifecycleConfiguration) and the rules Tessera enforces.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Lifecycle {
    pub xml: String,
    pub abort_rules: Vec<AbortIncompleteRule>,
    /// Rules that expire objects, versions and delete markers (`store/lifecycle.rs`).
    pub expiry_rules: Vec<ExpiryRule>,
}

/// The objects a lifecycle rule applies to: all of its conditions hold.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RuleFilter {
    pub prefix: String,
    /// Tags the object must all have.
    pub tags: Tags,
    pub size_greater_than: Option<u64>,
    pub size_less_than: Option<u64>,
}

/// When `Expiration` expires current objects.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub enum ExpireAfter {
    /// Days after the object was written (rounded up to the next day boundary, as S3).
    Days(u32),
    /// From this time on (ms since the epoch; a midnight UTC).
    Date(i64),
}

/// The expiry actions of one enabled lifecycle rule.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExpiryRule {
    pub filter: RuleFilter,
    /// `Expiration` with `Days` or `Date`: the current version expires
    /// (removed, or hidden by a delete marker in a bucket with versioning).
    pub expire: Option<ExpireAfter>,
    /// `Expiration/ExpiredObjectDeleteMarker`: a delete marker left as a
    /// key's only version is removed.
    pub expired_object_delete_marker: bool,
    /// `NoncurrentVersionExpiration`: (`NoncurrentDays`,
    /// `NewerNoncurrentVersions`): a noncurrent version is removed that
    /// many days after it became noncurrent, except the newest ones kept.
    pub noncurrent: Option<(u32, u32)>,
}

/// `AbortIncompleteMultipartUpload` of one enabled rule.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AbortIncompleteRule {
    pub prefix: String,
    pub days_after_initiation: u32,
}

/// The standard headers S3 stores with an object and replays on GET/HEAD.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ContentHeaders {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    pub expires: Option<String>,
}

/// A whole-object checksum as S3 returns it in `x-amz-checksum-*`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredChecksum {
    pub algorithm: ChecksumAlgorithm,
    /// Base64 of the digest (with a `-N` suffix for composite checksums).
    pub value: String,
    /// `FULL_OBJECT` or `COMPOSITE`.
    pub composite: bool,
}

/// One contiguous piece of an object's bytes: a whole PUT body, or one part of
/// a multipart upload. A span of size 0 has no blob (id [`NO_BLOB`]). A small
/// blob (`inline`) lives in the database instead of in a file: packed
/// (`store/redb_meta/pack.rs`; its id says where), or in an [`INLINE_BLOBS`] row.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct BlobSpan {
    pub id: BlobId,
    pub size: u64,
    /// The multipart part number this span was uploaded as; 0 for a single PUT.
    pub part: u16,
    pub inline: bool,
}

impl BlobSpan {
    pub const EMPTY: BlobSpan = BlobSpan { id: NO_BLOB, size: 0, part: 0, inline: false };

    /// Whether a blob (file or inline row) backs this span: reference counted.
    pub fn has_blob(&self) -> bool {
        self.id != NO_BLOB
    }

    /// Whether a file in `blobs/` backs this span.
    pub fn has_file(&self) -> bool {
        self.has_blob() && !self.inline
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ObjectRecord {
    pub size: u64,
    /// ETag without quotes: hex MD5, or `hex-N` for multipart objects.
    pub etag: String,
    pub last_modified_ms: i64,
    pub headers: ContentHeaders,
    /// `x-amz-meta-*` pairs, names lowercased without the prefix, in order.
    pub user_meta: Vec<(String, String)>,
    pub checksum: Option<StoredChecksum>,
    /// The bytes, in order. Empty for an empty object.
    pub blobs: Vec<BlobSpan>,
    /// Which version of its key this is; set by the store when it commits.
    pub version: ObjectVersion,
    /// The object's tag set (`x-amz-tagging`, PutObjectTagging).
    pub tags: Tags,
    /// A multipart object's part checksums (base64, in part order, of the
    /// algorithm of `checksum`), for GetObjectAttributes; empty when the
    /// upload had no checksum algorithm or for a single PUT.
    pub part_checksums: Vec<String>,
    /// Who wrote it, when that is not the bucket's owner.
    pub owner: Option<String>,
    /// The object's ACL; `None` is `private` (its owner has full control).
    pub acl: Option<Grants>,
}

/// Where a record stands among the versions of its key (`store/versions.rs`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct ObjectVersion {
    /// Write order among the versions of a key; 0 for writes to a bucket
    /// that never had versioning (older than any versioned write).
    pub seq: u64,
    /// The `null` version: written while versioning was off or suspended.
    pub null: bool,
    /// A delete marker: no bytes, never the record of [`OBJECTS`].
    pub delete_marker: bool,
}

impl ObjectVersion {
    /// What a record is before the store commits it (and what records
    /// written before versioning existed are): the `null` version.
    pub const NULL: ObjectVersion = ObjectVersion { seq: 0, null: true, delete_marker: false };
}

impl Stored for ObjectRecord {
    const FORMAT: u8 = 3;

    fn decode_older(format: u8, bytes: &[u8]) -> Result<Self, postcard::Error> {
        #[derive(Deserialize)]
        struct V2 {
            size: u64,
            etag: String,
            last_modified_ms: i64,
            headers: ContentHeaders,
            user_meta: Vec<(String, String)>,
            checksum: Option<StoredChecksum>,
            blobs: Vec<BlobSpan>,
            version: ObjectVersion,
            tags: Tags,
            part_checksums: Vec<String>,
        }
        #[derive(Deserialize)]
        struct V1 {
            size: u64,
            etag: String,
            last_modified_ms: i64,
            headers: ContentHeaders,
            user_meta: Vec<(String, String)>,
            checksum: Option<StoredChecksum>,
            blobs: Vec<BlobSpan>,
        }
        match format {
            1 => {
                let V1 { size, etag, last_modified_ms, headers, user_meta, checksum, blobs } =
                    postcard::from_bytes(bytes)?;
                let (version, tags, part_checksums) = (ObjectVersion::NULL, Tags::new(), Vec::new());
                Ok(ObjectRecord {
                    size,
                    etag,
                    last_modified_ms,
                    headers,
                    user_meta,
                    checksum,
                    blobs,
                    version,
                    tags,
                    part_checksums,
                    owner: None,
                    acl: None,
                })
            }
            2 => {
                let v2: V2 = postcard::from_bytes(bytes)?;
                Ok(ObjectRecord {
                    size: v2.size,
                    etag: v2.etag,
                    last_modified_ms: v2.last_modified_ms,
                    headers: v2.headers,
                    user_meta: v2.user_meta,
                    checksum: v2.checksum,
                    blobs: v2.blobs,
                    version: v2.version,
                    tags: v2.tags,
                    part_checksums: v2.part_checksums,
                    owner: None,
                    acl: None,
                })
            }
            _ => Err(postcard::Error::DeserializeBadEncoding),
        }
    }
}

pub fn encode<T: Stored>(value: &T) -> Result<Vec<u8>, postcard::Error> {
    let mut out = vec![T::FORMAT];
    out.extend_from_slice(&postcard::to_stdvec(value)?);
    Ok(out)
}

/// Version byte of a [`BLOB_CRCS`] value.
const BLOCK_CRCS_VERSION: u8 = 1;
/// Bytes before the checksums: version, log2 of the block size.
const BLOCK_CRCS_HEADER: usize = 2;

/// `[version][log2 block size][CRC32C little-endian]*`: raw rather than
/// postcard so a reader can take the checksums of the few blocks a Range
/// GET needs by slicing, without decoding the rest.
pub fn encode_block_crcs(blocks: &BlockCrcs) -> Vec<u8> {
    let mut out = Vec::with_capacity(BLOCK_CRCS_HEADER + 4 * blocks.crcs.len());
    out.extend_from_slice(&[BLOCK_CRCS_VERSION, blocks.shift]);
    for crc in &blocks.crcs {
        out.extend_from_slice(&crc.to_le_bytes());
    }
    out
}

/// The block-size shift and the checksums of blocks `first..first + count`
/// of a [`BLOB_CRCS`] value (`None` if the value is malformed or too short).
pub fn block_crcs_slice(value: &[u8], first: u64, count: u64) -> Option<(u8, Vec<u32>)> {
    let (&[version, shift], crcs) = value.split_first_chunk::<BLOCK_CRCS_HEADER>()?;
    if version != BLOCK_CRCS_VERSION {
        return None;
    }
    let start = usize::try_from(first.checked_mul(4)?).ok()?;
    let len = usize::try_from(count.checked_mul(4)?).ok()?;
    let raw = crcs.get(start..start.checked_add(len)?)?;
    let crcs = raw.chunks_exact(4).map(|c| c.try_into().map(u32::from_le_bytes)).collect::<Result<_, _>>();
    Some((shift, crcs.ok()?))
}

/// Every checksum of a [`BLOB_CRCS`] value.
pub fn decode_block_crcs(value: &[u8]) -> Option<BlockCrcs> {
    let count = value.len().checked_sub(BLOCK_CRCS_HEADER)?;
    if count % 4 != 0 {
        return None;
    }
    let (shift, crcs) = block_crcs_slice(value, 0, (count / 4) as u64)?;
    Some(BlockCrcs { shift, crcs })
}

pub fn decode<T: Stored>(bytes: &[u8]) -> Result<T, postcard::Error> {
    match bytes.split_first() {
        Some((&format, rest)) if format == T::FORMAT => postcard::from_bytes(rest),
        Some((&format, rest)) => T::decode_older(format, rest),
        None => Err(postcard::Error::DeserializeBadEncoding),
    }
}

/// Which upload created an object (see [`COMPLETED_UPLOADS`]); the object is
/// still that one while its ETag and modification time are these.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CompletedUpload {
    pub upload_id: String,
    pub etag: String,
    pub last_modified_ms: i64,
}

impl CompletedUpload {
    /// Whether `current` is the object this upload created.
    pub fn created(&self, current: &ObjectRecord) -> bool {
        current.etag == self.etag && current.last_modified_ms == self.last_modified_ms
    }
}

impl Stored for CompletedUpload {}
impl Stored for UploadRecord {
    const FORMAT: u8 = 3;

    fn decode_older(format: u8, bytes: &[u8]) -> Result<Self, postcard::Error> {
        #[derive(Deserialize)]
        struct V2 {
            bucket: String,
            key: String,
            owner: String,
            initiated_ms: i64,
            headers: ContentHeaders,
            user_meta: Vec<(String, String)>,
            checksum_algorithm: Option<ChecksumAlgorithm>,
            full_object_checksum: bool,
            tags: Tags,
        }
        #[derive(Deserialize)]
        struct V1 {
            bucket: String,
            key: String,
            owner: String,
            initiated_ms: i64,
            headers: ContentHeaders,
            user_meta: Vec<(String, String)>,
            checksum_algorithm: Option<ChecksumAlgorithm>,
            full_object_checksum: bool,
        }
        match format {
            1 => {
                let v1: V1 = postcard::from_bytes(bytes)?;
                Ok(UploadRecord {
                    bucket: v1.bucket,
                    key: v1.key,
                    owner: v1.owner,
                    initiated_ms: v1.initiated_ms,
                    headers: v1.headers,
                    user_meta: v1.user_meta,
                    checksum_algorithm: v1.checksum_algorithm,
                    full_object_checksum: v1.full_object_checksum,
                    tags: Tags::new(),
                    acl: None,
                })
            }
            2 => {
                let v2: V2 = postcard::from_bytes(bytes)?;
                Ok(UploadRecord {
                    bucket: v2.bucket,
                    key: v2.key,
                    owner: v2.owner,
                    initiated_ms: v2.initiated_ms,
                    headers: v2.headers,
                    user_meta: v2.user_meta,
                    checksum_algorithm: v2.checksum_algorithm,
                    full_object_checksum: v2.full_object_checksum,
                    tags: v2.tags,
                    acl: None,
                })
            }
            _ => Err(postcard::Error::DeserializeBadEncoding),
        }
    }
}
impl Stored for PartRecord {}

/// A multipart upload in progress: what CreateMultipartUpload said about the
/// object-to-be.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UploadRecord {
    pub bucket: String,
    pub key: String,
    pub owner: String,
    pub initiated_ms: i64,
    pub headers: ContentHeaders,
    pub user_meta: Vec<(String, String)>,
    /// `x-amz-checksum-algorithm`, if the client chose one.
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
    /// `x-amz-checksum-type: FULL_OBJECT` (else COMPOSITE where it applies).
    pub full_object_checksum: bool,
    /// `x-amz-tagging`: the tags the object will have.
    pub tags: Tags,
    /// The ACL the object will have (`x-amz-acl`, `x-amz-grant-*`).
    pub acl: Option<Grants>,
}

/// One uploaded part.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PartRecord {
    pub span: BlobSpan,
    pub md5: [u8; 16],
    pub last_modified_ms: i64,
    /// The part's checksum (algorithm and raw digest).
    pub checksum: Option<(ChecksumAlgorithm, Vec<u8>)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records written before versioning (format 1, the layout spelled out
    /// here as it was) still decode: an object as the `null` version, a
    /// bucket as never versioned.
    #[test]
    fn format_1_records_decode_as_before_versioning_and_tags() {
        #[derive(Serialize)]
        struct ObjectV1 {
            size: u64,
            etag: String,
            last_modified_ms: i64,
            headers: ContentHeaders,
            user_meta: Vec<(String, String)>,
            checksum: Option<StoredChecksum>,
            blobs: Vec<BlobSpan>,
        }
        let span = BlobSpan { id: 7, size: 3, part: 0, inline: false };
        let old = ObjectV1 {
            size: 3,
            etag: "abc".into(),
            last_modified_ms: 42,
            headers: ContentHeaders { content_type: Some("text/plain".into()), ..Default::default() },
            user_meta: vec![("k".into(), "v".into())],
            checksum: None,
            blobs: vec![span],
        };
        let mut bytes = vec![1];
        bytes.extend(postcard::to_stdvec(&old).expect("encode"));
        let record: ObjectRecord = decode(&bytes).expect("a format-1 object decodes");
        assert_eq!((record.size, record.etag.as_str(), record.last_modified_ms), (3, "abc", 42));
        assert_eq!((record.blobs.as_slice(), record.user_meta.len()), (&[span][..], 1));
        assert_eq!(record.version, ObjectVersion::NULL);
        assert_eq!(decode::<ObjectRecord>(&encode(&record).expect("encode")).expect("round trip"), record);

        #[derive(Serialize)]
        struct BucketV1 {
            owner: String,
            created_ms: i64,
            region: String,
            lifecycle: Option<LifecycleV1>,
        }
        #[derive(Serialize)]
        struct LifecycleV1 {
            xml: String,
            abort_rules: Vec<AbortIncompleteRule>,
        }
        let rule = AbortIncompleteRule { prefix: "tmp/".into(), days_after_initiation: 3 };
        let lifecycle = Some(LifecycleV1 { xml: "<x/>".into(), abort_rules: vec![rule.clone()] });
        let old = BucketV1 { owner: "root".into(), created_ms: 5, region: "us-east-1".into(), lifecycle };
        let mut bytes = vec![1];
        bytes.extend(postcard::to_stdvec(&old).expect("encode"));
        let bucket: BucketRecord = decode(&bytes).expect("a format-1 bucket decodes");
        assert_eq!((bucket.owner.as_str(), bucket.versioning), ("root", Versioning::Unversioned));
        let lifecycle = bucket.lifecycle.clone().expect("its lifecycle");
        assert_eq!((lifecycle.abort_rules, lifecycle.expiry_rules.len()), (vec![rule], 0));
        #[derive(Serialize)]
        struct UploadV1 {
            bucket: String,
            key: String,
            owner: String,
            initiated_ms: i64,
            headers: ContentHeaders,
            user_meta: Vec<(String, String)>,
            checksum_algorithm: Option<ChecksumAlgorithm>,
            full_object_checksum: bool,
        }
        let old = UploadV1 {
            bucket: "b".into(),
            key: "k".into(),
            owner: "root".into(),
            initiated_ms: 9,
            headers: ContentHeaders::default(),
            user_meta: Vec::new(),
            checksum_algorithm: Some(ChecksumAlgorithm::Crc32),
            full_object_checksum: true,
        };
        let mut bytes = vec![1];
        bytes.extend(postcard::to_stdvec(&old).expect("encode"));
        let upload: UploadRecord = decode(&bytes).expect("a format-1 upload decodes");
        assert_eq!((upload.key.as_str(), upload.initiated_ms, upload.full_object_checksum), ("k", 9, true));
        assert_eq!((upload.checksum_algorithm, upload.tags.len()), (Some(ChecksumAlgorithm::Crc32), 0));

        let mut unknown = encode(&bucket).expect("encode");
        unknown[0] = 9;
        assert!(decode::<BucketRecord>(&unknown).is_err(), "an unknown format fails loudly");
    }

    /// Format 2 is format 3 without the trailing owner and ACL fields (and,
    /// for buckets, the policy): postcard writes each absent `Option` as one
    /// 0 byte at the end, so cutting them off gives the format-2 bytes.
    #[test]
    fn format_2_records_decode_as_owned_by_the_bucket_owner_and_private() {
        fn as_format_2<T: Stored>(value: &T, trailing_nones: usize) -> Vec<u8> {
            let mut bytes = encode(value).expect("encode");
            assert!(bytes.ends_with(&vec![0; trailing_nones]), "the new fields are last and absent");
            bytes.truncate(bytes.len() - trailing_nones);
            bytes[0] = 2;
            bytes
        }
        let object = crate::store::test_support::object_record(3);
        let decoded: ObjectRecord = decode(&as_format_2(&object, 2)).expect("a format-2 object decodes");
        assert_eq!((decoded.owner, decoded.acl), (None, None));
        assert_eq!(decoded.size, 3);
        let bucket = crate::store::test_support::bucket_record();
        let decoded: BucketRecord = decode(&as_format_2(&bucket, 3)).expect("a format-2 bucket decodes");
        assert_eq!(decoded, bucket);
        let upload = crate::store::test_support::upload_record("b", "k");
        let decoded: UploadRecord = decode(&as_format_2(&upload, 1)).expect("a format-2 upload decodes");
        assert_eq!(decoded, upload);
    }

    /// Format 3 is format 4 without the trailing `cors` (one 0 byte when
    /// absent): a bucket written before CORS decodes with none, keeping
    /// its policy and ACL.
    #[test]
    fn format_3_buckets_decode_without_cors() {
        let mut bucket = crate::store::test_support::bucket_record();
        bucket.acl = Some(vec![Grant { grantee: Grantee::AllUsers, permission: Permission::Read }]);
        bucket.policy = Some(Policy { json: "{}".into(), statements: Vec::new() });
        let mut bytes = encode(&bucket).expect("encode");
        assert_eq!(bytes.pop(), Some(0), "cors is last and absent");
        bytes[0] = 3;
        assert_eq!(decode::<BucketRecord>(&bytes).expect("a format-3 bucket decodes"), bucket);
        let rule = CorsRule {
            allowed_origins: vec!["*".into()],
            allowed_methods: vec![CorsMethod::Get],
            ..CorsRule::default()
        };
        bucket.cors = Some(Cors { rules: vec![rule] });
        let round = decode::<BucketRecord>(&encode(&bucket).expect("encode")).expect("round trip");
        assert_eq!(round, bucket);
    }

    #[test]
    fn block_crcs_round_trip_and_slice() {
        let blocks = BlockCrcs { shift: 16, crcs: vec![1, 0xdead_beef, 3] };
        let value = encode_block_crcs(&blocks);
        assert_eq!(value.len(), 2 + 12);
        assert_eq!(decode_block_crcs(&value), Some(blocks));
        assert_eq!(block_crcs_slice(&value, 1, 2), Some((16, vec![0xdead_beef, 3])));
        assert_eq!(block_crcs_slice(&value, 2, 2), None, "past the end");
        let mut other_version = value.clone();
        other_version[0] = 2;
        assert_eq!(decode_block_crcs(&other_version), None, "an unknown version fails loudly");
    }
}
