//! [`MetaTxn`] over one PostgreSQL transaction, so the write rules of the
//! store (versions, reference counts, the unique-file table, multipart)
//! run unchanged on a shared database; and [`run_blocking`], which runs
//! such rules in a SERIALIZABLE transaction until it commits.
//!
//! The rules are synchronous and run on a blocking thread (as they do over
//! redb), so each operation waits for its statement ([`wait`]). A statement is sent typed (`query_typed`): one round trip,
//! no prepared statement to keep per connection.
//!
//! Rows mirror the redb tables (`pg/schema.rs`): an object's row key
//! (`bucket`, 0, `key`) is split into the two key columns; blob ids are 16
//! big-endian bytes; a version's inverted sequence number is stored with
//! its top bit flipped, so a signed `bigint` sorts it as redb does.
//!
//! The first database error of an attempt is kept: from then on the
//! transaction is aborted, whatever the rules made of the error, and the
//! runner decides from it whether to run the rules again (a conflict, a
//! lost connection) or to give up.

use std::cell::RefCell;
use std::io;
use std::ops::{Bound, Range};

use tokio::runtime::Handle;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{IsolationLevel, Row, Transaction};

use super::retry::{failure, Attempts, Failure, Phase};
use super::{describe, PgError, Pool, RetryPolicy, RunError};
use crate::store::digest::BlockCrcs;
use crate::store::layout::{new_blob_id, packed_position, BlobId};
use crate::store::meta::{MetaRead, MetaTxn, RowVisitor, UploadStart, UploadVisitor, VersionVisitor};
use crate::store::read::{BlobSource, BlockCheck};
use crate::store::schema::{
    decode, encode, encode_block_crcs, BlobSpan, BucketRecord, CompletedUpload, ObjectRecord, PartRecord, Stored,
    UploadRecord,
};
use crate::store::users::UserRecord;
use crate::store::{StoreError, StoreResult, WriteError};

/// Where metadata transactions run: the pool, the runtime whose tasks
/// drive the connections, and how conflicts are retried.
#[derive(Clone)]
pub(crate) struct PgContext {
    pub pool: Pool,
    pub runtime: Handle,
    pub policy: RetryPolicy,
}

/// What a transaction may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Reads and writes, SERIALIZABLE.
    Write,
    /// Reads of one consistent snapshot (REPEATABLE READ, READ ONLY: never
    /// a serialization failure on PostgreSQL).
    Snapshot,
}

/// Runs `work` in one transaction of `mode` and commits, again from the
/// start after a conflict or a lost connection (`retry.rs` says how often).
/// `work` must have no effect outside the transaction. An error of `work`
/// itself (the database did not fail) rolls back and is returned as
/// [`RunError::Rejected`]. Blocking: call it from a blocking thread.
pub(crate) fn run_blocking<T, E>(
    ctx: &PgContext,
    mode: Mode,
    work: impl Fn(&PgTxn) -> Result<T, E>,
) -> Result<T, RunError<E>> {
    let mut attempts = Attempts::new(&ctx.policy);
    loop {
        let failure = match attempt(ctx, mode, &work) {
            Ok(value) => return Ok(value),
            Err(failure) => failure,
        };
        std::thread::sleep(attempts.pause_after(failure)?);
    }
}

/// Waits for a statement's future, driven by the runtime's tasks that own
/// the connections. Works from a blocking thread, a thread outside the
/// runtime, and an async task of the multi-threaded runtime: there
/// `block_in_place` first hands the worker's other tasks to another thread
/// (but each such wait parks a thread: requests reach the database through
/// a turn on a blocking thread instead, `backend.rs`). Panics on a
/// current-thread runtime, which the server does not use.
pub(super) fn wait<F: std::future::Future>(runtime: &Handle, future: F) -> F::Output {
    tokio::task::block_in_place(|| runtime.block_on(future))
}

fn attempt<T, E>(ctx: &PgContext, mode: Mode, work: &impl Fn(&PgTxn) -> Result<T, E>) -> Result<T, Failure<E>> {
    let mut client = wait(&ctx.runtime, ctx.pool.get()).map_err(Failure::of_pool)?;
    let isolation = match mode {
        Mode::Write => IsolationLevel::Serializable,
        Mode::Snapshot => IsolationLevel::RepeatableRead,
    };
    let begin = client.build_transaction().isolation_level(isolation).read_only(mode == Mode::Snapshot).start();
    let result = match wait(&ctx.runtime, begin) {
        Ok(txn) => in_transaction(PgTxn { txn, runtime: &ctx.runtime, failed: RefCell::new(None) }, work),
        Err(e) => Err(failure(&e, Phase::Work)),
    };
    if result.as_ref().is_err_and(Failure::spoils_client) {
        client.discard();
    }
    result
}

fn in_transaction<T, E>(pg: PgTxn, work: &impl Fn(&PgTxn) -> Result<T, E>) -> Result<T, Failure<E>> {
    let outcome = work(&pg);
    if let Some(e) = pg.failed.take() {
        return Err(failure(&e, Phase::Work));
    }
    let PgTxn { txn, runtime, .. } = pg;
    match outcome {
        Ok(value) => match wait(runtime, txn.commit()) {
            Ok(()) => Ok(value),
            Err(e) => Err(failure(&e, Phase::Commit)),
        },
        Err(rejected) => {
            // A failed rollback changes nothing: the server drops the
            // transaction with the connection, and a closed client is not reused.
            let _ = wait(runtime, txn.rollback());
            Err(Failure::Stop(RunError::Rejected(rejected)))
        }
    }
}

/// How a store write on PostgreSQL ended.
pub(crate) enum Written<T, E> {
    Committed(T),
    /// Nothing of it was committed.
    RolledBack(E),
    /// The connection failed after COMMIT was sent: committed or not.
    InDoubt(E),
}

/// Runs a store write (the rules of `Store::commit`) in one SERIALIZABLE
/// transaction, and says how it ended with the store's own errors: a write
/// that kept conflicting is `Busy` (503 SlowDown), an unreachable database
/// `Unavailable` (503).
pub(crate) fn write<T, E: From<StoreError>>(
    ctx: &PgContext,
    work: impl Fn(&dyn MetaTxn) -> Result<T, WriteError<E>>,
) -> Written<T, E> {
    let failed = match run_blocking(ctx, Mode::Write, |txn| work(txn)) {
        Ok(value) => return Written::Committed(value),
        Err(RunError::Rejected(WriteError::Rejected(e))) => return Written::RolledBack(e),
        Err(RunError::Rejected(WriteError::Failed(e))) => return Written::RolledBack(e.into()),
        Err(RunError::Failed(failed)) => failed,
    };
    tracing::warn!(error = %failed, "metadata write failed");
    match failed {
        e @ PgError::InDoubt { .. } => Written::InDoubt(StoreError::caused("metadata commit", e).into()),
        PgError::Busy { .. } => Written::RolledBack(StoreError::Busy.into()),
        PgError::Unavailable { .. } | PgError::Connect { .. } | PgError::PoolTimeout(_) => {
            Written::RolledBack(StoreError::Unavailable.into())
        }
        e => Written::RolledBack(StoreError::caused("metadata database", e).into()),
    }
}

/// One PostgreSQL transaction, seen as [`MetaTxn`] (and, in a snapshot
/// transaction, as [`MetaRead`]).
pub(crate) struct PgTxn<'c> {
    txn: Transaction<'c>,
    runtime: &'c Handle,
    /// The first database error: the transaction is aborted from then on.
    failed: RefCell<Option<tokio_postgres::Error>>,
}

/// A statement parameter with its SQL type.
enum Param<'p> {
    Bytea(&'p [u8]),
    Text(&'p str),
    Int8(i64),
    Int4(i32),
}

impl Param<'_> {
    fn typed(&self) -> (&(dyn ToSql + Sync), Type) {
        match self {
            Param::Bytea(v) => (v, Type::BYTEA),
            Param::Text(v) => (v, Type::TEXT),
            Param::Int8(v) => (v, Type::INT8),
            Param::Int4(v) => (v, Type::INT4),
        }
    }
}

use Param::{Bytea, Int4, Int8, Text};

impl PgTxn<'_> {
    fn query(&self, sql: &str, params: &[Param]) -> StoreResult<Vec<Row>> {
        let typed: Vec<(&(dyn ToSql + Sync), Type)> = params.iter().map(Param::typed).collect();
        wait(self.runtime, self.txn.query_typed(sql, &typed)).map_err(|e| self.fail(e))
    }

    fn execute(&self, sql: &str, params: &[Param]) -> StoreResult<()> {
        self.query(sql, params).map(drop)
    }

    /// The first row's columns, if there is a row.
    fn one(&self, sql: &str, params: &[Param]) -> StoreResult<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    fn record<T: Stored>(&self, sql: &str, params: &[Param]) -> StoreResult<Option<T>> {
        self.one(sql, params)?.map(|row| Ok(decode(&column::<Vec<u8>>(&row, 0)?)?)).transpose()
    }

    fn count(&self, sql: &str, params: &[Param]) -> StoreResult<u64> {
        let refs = self.one(sql, params)?.map(|row| column::<i64>(&row, 0)).transpose()?;
        Ok(refs.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
    }

    /// Stores `record` at an object row of a table keyed by (bucket, key).
    fn put_keyed(&self, table: &'static str, row: &[u8], record: &[u8]) -> StoreResult<()> {
        let (bucket, key) = split_row(row)?;
        let sql = format!(
            "INSERT INTO {table} (bucket, key, record) VALUES ($1, $2, $3) \
             ON CONFLICT (bucket, key) DO UPDATE SET record = excluded.record"
        );
        self.execute(&sql, &[Bytea(bucket), Bytea(key), Bytea(record)])
    }

    fn remove_keyed(&self, table: &'static str, row: &[u8]) -> StoreResult<()> {
        let (bucket, key) = split_row(row)?;
        self.execute(&format!("DELETE FROM {table} WHERE bucket = $1 AND key = $2"), &[Bytea(bucket), Bytea(key)])
    }

    fn fail(&self, e: tokio_postgres::Error) -> StoreError {
        let error = StoreError::caused("metadata database", describe(&e));
        self.failed.borrow_mut().get_or_insert(e);
        error
    }
}

fn column<'r, T: tokio_postgres::types::FromSql<'r>>(row: &'r Row, index: usize) -> StoreResult<T> {
    row.try_get(index).map_err(|e| StoreError::caused("metadata database: reading a column", e))
}

/// An object's row key, `bucket` 0 `key`, as its two key columns.
fn split_row(row: &[u8]) -> StoreResult<(&[u8], &[u8])> {
    let mut halves = row.splitn(2, |b| *b == 0);
    match (halves.next(), halves.next()) {
        (Some(bucket), Some(key)) => Ok((bucket, key)),
        _ => Err(StoreError::internal("an object row without a bucket")),
    }
}

/// A u64 in a signed `bigint` that sorts as the u64 does.
fn ordered(value: u64) -> i64 {
    (value ^ (1 << 63)) as i64
}

fn unordered(value: i64) -> u64 {
    (value as u64) ^ (1 << 63)
}

fn count_param(count: u64) -> StoreResult<i64> {
    i64::try_from(count).map_err(|_| StoreError::internal("a reference count beyond bigint"))
}

impl MetaRead for PgTxn<'_> {
    fn bucket(&self, name: &str) -> StoreResult<Option<BucketRecord>> {
        self.record("SELECT record FROM buckets WHERE name = $1", &[Bytea(name.as_bytes())])
    }

    fn buckets(&self) -> StoreResult<Vec<(String, BucketRecord)>> {
        let bucket = |row: &Row| -> StoreResult<(String, BucketRecord)> {
            let name =
                String::from_utf8(column(row, 0)?).map_err(|_| StoreError::internal("a bucket name not UTF-8"))?;
            Ok((name, decode(&column::<Vec<u8>>(row, 1)?)?))
        };
        self.query("SELECT name, record FROM buckets ORDER BY name", &[])?.iter().map(bucket).collect()
    }

    fn bucket_has_objects(&self, bucket: &str) -> StoreResult<bool> {
        let sql = "SELECT 1 FROM objects WHERE bucket = $1 UNION ALL SELECT 1 FROM versions WHERE bucket = $1 LIMIT 1";
        Ok(self.one(sql, &[Bytea(bucket.as_bytes())])?.is_some())
    }

    fn object(&self, row: &[u8]) -> StoreResult<Option<ObjectRecord>> {
        let (bucket, key) = split_row(row)?;
        self.record("SELECT record FROM objects WHERE bucket = $1 AND key = $2", &[Bytea(bucket), Bytea(key)])
    }

    /// In batches of `hint` rows (at most 1,000), each a range scan from
    /// the last key seen: `bytea` keys compare as bytes under any collation.
    fn scan_objects(
        &self,
        bucket: &str,
        start: Bound<&[u8]>,
        end: Option<&[u8]>,
        hint: usize,
        visit: &mut RowVisitor,
    ) -> StoreResult<()> {
        let limit = hint.clamp(1, 1000);
        let end_clause = if end.is_some() { " AND key < $3" } else { "" };
        let mut start = start.map(<[u8]>::to_vec);
        loop {
            let (op, from) = match &start {
                Bound::Included(key) => (">=", key.as_slice()),
                Bound::Excluded(key) => (">", key.as_slice()),
                Bound::Unbounded => (">=", &b""[..]),
            };
            let sql = format!(
                "SELECT key, record FROM objects WHERE bucket = $1 AND key {op} $2{end_clause} ORDER BY key LIMIT {limit}"
            );
            let mut params = vec![Bytea(bucket.as_bytes()), Bytea(from)];
            params.extend(end.map(Bytea));
            let rows = self.query(&sql, &params)?;
            for row in &rows {
                if !visit(&column::<Vec<u8>>(row, 0)?, &column::<Vec<u8>>(row, 1)?)? {
                    return Ok(());
                }
            }
            match rows.last() {
                Some(last) if rows.len() == limit => start = Bound::Excluded(column(last, 0)?),
                _ => return Ok(()),
            }
        }
    }

    fn version(&self, row: &[u8], inverted_seq: u64) -> StoreResult<Option<ObjectRecord>> {
        let (bucket, key) = split_row(row)?;
        let sql = "SELECT record FROM versions WHERE bucket = $1 AND key = $2 AND seq = $3";
        self.record(sql, &[Bytea(bucket), Bytea(key), Int8(ordered(inverted_seq))])
    }

    /// In batches of 64 versions, each a range scan from the last one seen.
    fn scan_versions(&self, row: &[u8], from: u64, visit: &mut VersionVisitor) -> StoreResult<()> {
        const BATCH: usize = 64;
        let (bucket, key) = split_row(row)?;
        let (mut op, mut from) = (">=", ordered(from));
        loop {
            let sql = format!(
                "SELECT seq, record FROM versions WHERE bucket = $1 AND key = $2 AND seq {op} $3 ORDER BY seq LIMIT {BATCH}"
            );
            let rows = self.query(&sql, &[Bytea(bucket), Bytea(key), Int8(from)])?;
            for row in &rows {
                from = column(row, 0)?;
                if !visit(unordered(from), &column::<Vec<u8>>(row, 1)?)? {
                    return Ok(());
                }
            }
            if rows.len() < BATCH {
                return Ok(());
            }
            op = ">";
        }
    }

    fn next_versioned_key(&self, bucket: &str, from: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        let sql = "SELECT key FROM versions WHERE bucket = $1 AND key >= $2 ORDER BY key LIMIT 1";
        let row = self.one(sql, &[Bytea(bucket.as_bytes()), Bytea(from)])?;
        row.map(|row| column(&row, 0)).transpose()
    }

    fn blob_refs(&self, id: BlobId) -> StoreResult<u64> {
        self.count("SELECT refs FROM blobs WHERE id = $1", &[Bytea(&id.to_be_bytes())])
    }

    /// Small bodies are counted in `blobs` too: those with a row of
    /// `blob_bodies` are left out.
    fn blob_files_after(&self, after: BlobId, limit: usize) -> StoreResult<Vec<BlobId>> {
        let sql = "SELECT b.id FROM blobs b WHERE b.id > $1 \
                   AND NOT EXISTS (SELECT 1 FROM blob_bodies s WHERE s.id = b.id) ORDER BY b.id LIMIT $2";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.query(sql, &[Bytea(&after.to_be_bytes()), Int8(limit)])?;
        rows.iter()
            .map(|row| {
                let bytes: Vec<u8> = column(row, 0)?;
                super::blob_id(&bytes).ok_or_else(|| StoreError::internal("a blob id not 16 bytes long"))
            })
            .collect()
    }

    fn content_row(&self, key: &[u8; 40]) -> StoreResult<Option<Vec<u8>>> {
        let row = self.one("SELECT value FROM content WHERE key = $1", &[Bytea(key)])?;
        row.map(|row| column(&row, 0)).transpose()
    }

    fn blob_content(&self, id: BlobId) -> StoreResult<Option<Vec<u8>>> {
        let row = self.one("SELECT value FROM blob_content WHERE blob = $1", &[Bytea(&id.to_be_bytes())])?;
        row.map(|row| column(&row, 0)).transpose()
    }

    fn holder_refs(&self, id: BlobId, owner: &str) -> StoreResult<u64> {
        let sql = "SELECT refs FROM content_holders WHERE blob = $1 AND owner = $2";
        self.count(sql, &[Bytea(&id.to_be_bytes()), Text(owner)])
    }

    fn upload(&self, id: &str) -> StoreResult<Option<UploadRecord>> {
        self.record("SELECT record FROM uploads WHERE id = $1", &[Bytea(id.as_bytes())])
    }

    fn parts_after(&self, upload_id: &str, after: u16, limit: usize) -> StoreResult<Vec<(u16, PartRecord)>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = "SELECT part, record FROM parts WHERE upload = $1 AND part > $2 ORDER BY part LIMIT $3";
        let rows = self.query(sql, &[Bytea(upload_id.as_bytes()), Int4(i32::from(after)), Int8(limit)])?;
        let part = |row: &Row| -> StoreResult<(u16, PartRecord)> {
            let number = u16::try_from(column::<i32>(row, 0)?).map_err(|_| StoreError::internal("a part number"))?;
            Ok((number, decode(&column::<Vec<u8>>(row, 1)?)?))
        };
        rows.iter().map(part).collect()
    }

    /// In batches of `hint` uploads (at most 1,000), each from the last seen.
    fn scan_uploads(
        &self,
        bucket: &str,
        start: UploadStart,
        hint: usize,
        visit: &mut UploadVisitor,
    ) -> StoreResult<()> {
        let limit = hint.clamp(1, 1000);
        let select = "SELECT key, id, record FROM uploads WHERE bucket = $1 AND";
        let order = format!("ORDER BY key, id LIMIT {limit}");
        let (mut last_key, mut last_id): (Vec<u8>, Vec<u8>);
        let mut start = start;
        loop {
            let rows = match start {
                UploadStart::AtKey(key) => {
                    self.query(&format!("{select} key >= $2 {order}"), &[Bytea(bucket.as_bytes()), Bytea(key)])
                }
                UploadStart::AfterKey(key) => {
                    self.query(&format!("{select} key > $2 {order}"), &[Bytea(bucket.as_bytes()), Bytea(key)])
                }
                UploadStart::AfterUpload(key, id) => {
                    let params = [Bytea(bucket.as_bytes()), Bytea(key), Bytea(id.as_bytes())];
                    self.query(&format!("{select} (key, id) > ($2, $3) {order}"), &params)
                }
            }?;
            for row in &rows {
                let id =
                    String::from_utf8(column(row, 1)?).map_err(|_| StoreError::internal("an upload id not UTF-8"))?;
                if !visit(&column::<Vec<u8>>(row, 0)?, &id, &column::<Vec<u8>>(row, 2)?)? {
                    return Ok(());
                }
            }
            let Some(last) = rows.last().filter(|_| rows.len() == limit) else { return Ok(()) };
            (last_key, last_id) = (column(last, 0)?, column(last, 1)?);
            let id = std::str::from_utf8(&last_id).map_err(|_| StoreError::internal("an upload id not UTF-8"))?;
            start = UploadStart::AfterUpload(&last_key, id);
        }
    }

    fn completed(&self, row: &[u8]) -> StoreResult<Option<CompletedUpload>> {
        let (bucket, key) = split_row(row)?;
        let sql = "SELECT record FROM completed_uploads WHERE bucket = $1 AND key = $2";
        self.record(sql, &[Bytea(bucket), Bytea(key)])
    }

    fn user(&self, name: &str) -> StoreResult<Option<UserRecord>> {
        self.record("SELECT record FROM users WHERE name = $1", &[Text(name)])
    }

    /// Sorted here: `ORDER BY` a `text` column follows the database's
    /// collation, not the bytes.
    fn users(&self) -> StoreResult<Vec<UserRecord>> {
        let rows = self.query("SELECT record FROM users", &[])?;
        let mut users: Vec<UserRecord> =
            rows.iter().map(|row| Ok(decode(&column::<Vec<u8>>(row, 0)?)?)).collect::<StoreResult<_>>()?;
        users.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(users)
    }

    fn user_of_key(&self, access_key: &str) -> StoreResult<Option<String>> {
        let row = self.one("SELECT name FROM users WHERE access_key = $1", &[Text(access_key)])?;
        row.map(|row| column(&row, 0)).transpose()
    }
}

/// What GET reads besides blob files: small bodies (rows of `blob_bodies`)
/// and the block checksums of files, from the snapshot that named them.
impl BlobSource for PgTxn<'_> {
    fn inline(&self, id: BlobId) -> io::Result<bytes::Bytes> {
        let row = self.one("SELECT body FROM blob_bodies WHERE id = $1", &[Bytea(&id.to_be_bytes())]);
        let body: Vec<u8> =
            column(&row.map_err(io::Error::other)?.ok_or_else(not_found)?, 0).map_err(io::Error::other)?;
        Ok(bytes::Bytes::from(body))
    }

    fn packed(&self, id: BlobId, _position: u64, _size: u64) -> io::Result<bytes::Bytes> {
        Err(io::Error::other(format!("blob {id:032x}: a packed blob id in the PostgreSQL metadata")))
    }

    fn check(&self, id: BlobId, range: Range<u64>, size: u64) -> io::Result<Option<BlockCheck>> {
        let row = self.one("SELECT crcs FROM blob_crcs WHERE id = $1", &[Bytea(&id.to_be_bytes())]);
        if let Some(row) = row.map_err(io::Error::other)? {
            let crcs: Vec<u8> = column(&row, 0).map_err(io::Error::other)?;
            return BlockCheck::from_value(id, &crcs, range, size).map(Some);
        }
        match self.blob_refs(id).map_err(io::Error::other)? {
            0 => Err(not_found()),
            _ => Ok(None),
        }
    }
}

fn not_found() -> io::Error {
    io::Error::from(io::ErrorKind::NotFound)
}

impl MetaTxn for PgTxn<'_> {
    fn put_bucket(&self, name: &str, record: &BucketRecord) -> StoreResult<()> {
        let sql = "INSERT INTO buckets (name, record) VALUES ($1, $2) \
                   ON CONFLICT (name) DO UPDATE SET record = excluded.record";
        self.execute(sql, &[Bytea(name.as_bytes()), Bytea(&encode(record)?)])
    }

    fn remove_bucket(&self, name: &str) -> StoreResult<()> {
        self.execute("DELETE FROM buckets WHERE name = $1", &[Bytea(name.as_bytes())])
    }

    fn put_object(&self, row: &[u8], record: &ObjectRecord) -> StoreResult<()> {
        self.put_keyed("objects", row, &encode(record)?)
    }

    fn remove_object(&self, row: &[u8]) -> StoreResult<()> {
        self.remove_keyed("objects", row)
    }

    fn put_version(&self, row: &[u8], inverted_seq: u64, record: &ObjectRecord) -> StoreResult<()> {
        let (bucket, key) = split_row(row)?;
        let sql = "INSERT INTO versions (bucket, key, seq, record) VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (bucket, key, seq) DO UPDATE SET record = excluded.record";
        self.execute(sql, &[Bytea(bucket), Bytea(key), Int8(ordered(inverted_seq)), Bytea(&encode(record)?)])
    }

    fn remove_version(&self, row: &[u8], inverted_seq: u64) -> StoreResult<()> {
        let (bucket, key) = split_row(row)?;
        let sql = "DELETE FROM versions WHERE bucket = $1 AND key = $2 AND seq = $3";
        self.execute(sql, &[Bytea(bucket), Bytea(key), Int8(ordered(inverted_seq))])
    }

    /// A sequence is not transactional: a rolled back or retried write
    /// leaves a gap, which changes nothing (versions only need the order).
    fn next_version_seq(&self) -> StoreResult<u64> {
        let row = self.one("SELECT nextval('version_seq')", &[])?;
        let value = row.map(|row| column::<i64>(&row, 0)).transpose()?;
        value.and_then(|v| u64::try_from(v).ok()).ok_or_else(|| StoreError::internal("version_seq gave no number"))
    }

    fn set_blob_refs(&self, id: BlobId, count: u64) -> StoreResult<()> {
        let id = id.to_be_bytes();
        match count {
            0 => self.execute("DELETE FROM blobs WHERE id = $1", &[Bytea(&id)]),
            n => {
                let sql =
                    "INSERT INTO blobs (id, refs) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET refs = excluded.refs";
                self.execute(sql, &[Bytea(&id), Int8(count_param(n)?)])
            }
        }
    }

    fn put_block_crcs(&self, id: BlobId, crcs: &[u8]) -> StoreResult<()> {
        let sql =
            "INSERT INTO blob_crcs (id, crcs) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET crcs = excluded.crcs";
        self.execute(sql, &[Bytea(&id.to_be_bytes()), Bytea(crcs)])
    }

    /// Small bodies are rows of `blob_bodies` under a fresh random id (the
    /// span stays `inline`): every gateway reads them from the database.
    fn store_small_body(&self, body: &[u8]) -> StoreResult<BlobId> {
        let id = new_blob_id()?;
        // With its block checksums (GET and scrub check small bodies as
        // they check files), in one round trip.
        // (CockroachDB wants a data-modifying WITH to return its rows.)
        let sql = "WITH body AS (INSERT INTO blob_bodies (id, body) VALUES ($1, $2) RETURNING id) \
                   INSERT INTO blob_crcs (id, crcs) SELECT id, $3 FROM body";
        let crcs = encode_block_crcs(&BlockCrcs::of(body));
        self.execute(sql, &[Bytea(&id.to_be_bytes()), Bytea(body), Bytea(&crcs)])?;
        Ok(id)
    }

    fn release_blob(&self, span: &BlobSpan) -> StoreResult<Option<BlobId>> {
        if packed_position(span.id).is_some() {
            return Err(StoreError::internal("a packed blob id in the PostgreSQL metadata"));
        }
        let id = span.id.to_be_bytes();
        self.execute("DELETE FROM blob_crcs WHERE id = $1", &[Bytea(&id)])?;
        if span.inline {
            self.execute("DELETE FROM blob_bodies WHERE id = $1", &[Bytea(&id)])?;
            return Ok(None);
        }
        // The statement's time, not the transaction's start (`now()`): the
        // unlink grace runs from as near the commit as SQL can say.
        let sql = "INSERT INTO dead_blobs (id, freed_at) VALUES ($1, clock_timestamp()) ON CONFLICT (id) DO NOTHING";
        self.execute(sql, &[Bytea(&id)])?;
        Ok(Some(span.id))
    }

    fn put_content_row(&self, key: &[u8; 40], row: &[u8]) -> StoreResult<()> {
        let sql =
            "INSERT INTO content (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value";
        self.execute(sql, &[Bytea(key), Bytea(row)])
    }

    fn remove_content_row(&self, key: &[u8]) -> StoreResult<()> {
        self.execute("DELETE FROM content WHERE key = $1", &[Bytea(key)])
    }

    fn put_blob_content(&self, id: BlobId, value: &[u8]) -> StoreResult<()> {
        let sql = "INSERT INTO blob_content (blob, value) VALUES ($1, $2) \
                   ON CONFLICT (blob) DO UPDATE SET value = excluded.value";
        self.execute(sql, &[Bytea(&id.to_be_bytes()), Bytea(value)])
    }

    fn remove_blob_content(&self, id: BlobId) -> StoreResult<Option<Vec<u8>>> {
        let row = self.one("DELETE FROM blob_content WHERE blob = $1 RETURNING value", &[Bytea(&id.to_be_bytes())])?;
        row.map(|row| column(&row, 0)).transpose()
    }

    fn set_holder_refs(&self, id: BlobId, owner: &str, count: u64) -> StoreResult<()> {
        let id = id.to_be_bytes();
        match count {
            0 => self.execute("DELETE FROM content_holders WHERE blob = $1 AND owner = $2", &[Bytea(&id), Text(owner)]),
            n => {
                let sql = "INSERT INTO content_holders (blob, owner, refs) VALUES ($1, $2, $3) \
                           ON CONFLICT (blob, owner) DO UPDATE SET refs = excluded.refs";
                self.execute(sql, &[Bytea(&id), Text(owner), Int8(count_param(n)?)])
            }
        }
    }

    fn forget_holders(&self, id: BlobId) -> StoreResult<()> {
        self.execute("DELETE FROM content_holders WHERE blob = $1", &[Bytea(&id.to_be_bytes())])
    }

    fn put_upload(&self, id: &str, record: &UploadRecord) -> StoreResult<()> {
        let sql = "INSERT INTO uploads (id, bucket, key, initiated_ms, record) VALUES ($1, $2, $3, $4, $5) \
                   ON CONFLICT (id) DO UPDATE SET record = excluded.record";
        let (bucket, key) = (record.bucket.as_bytes(), record.key.as_bytes());
        let params =
            [Bytea(id.as_bytes()), Bytea(bucket), Bytea(key), Int8(record.initiated_ms), Bytea(&encode(record)?)];
        self.execute(sql, &params)
    }

    fn remove_upload(&self, id: &str, _record: &UploadRecord) -> StoreResult<()> {
        self.execute("DELETE FROM uploads WHERE id = $1", &[Bytea(id.as_bytes())])
    }

    fn put_part(&self, upload_id: &str, number: u16, part: &PartRecord) -> StoreResult<Option<PartRecord>> {
        let params = [Bytea(upload_id.as_bytes()), Int4(i32::from(number))];
        let replaced = self.record("SELECT record FROM parts WHERE upload = $1 AND part = $2", &params)?;
        let sql = "INSERT INTO parts (upload, part, record) VALUES ($1, $2, $3) \
                   ON CONFLICT (upload, part) DO UPDATE SET record = excluded.record";
        self.execute(sql, &[Bytea(upload_id.as_bytes()), Int4(i32::from(number)), Bytea(&encode(part)?)])?;
        Ok(replaced)
    }

    fn remove_parts(&self, upload_id: &str) -> StoreResult<()> {
        self.execute("DELETE FROM parts WHERE upload = $1", &[Bytea(upload_id.as_bytes())])
    }

    fn put_completed(&self, row: &[u8], completed: &CompletedUpload) -> StoreResult<()> {
        self.put_keyed("completed_uploads", row, &encode(completed)?)
    }

    fn remove_completed(&self, row: &[u8]) -> StoreResult<()> {
        self.remove_keyed("completed_uploads", row)
    }

    fn remove_completed_of_bucket(&self, bucket: &str) -> StoreResult<()> {
        self.execute("DELETE FROM completed_uploads WHERE bucket = $1", &[Bytea(bucket.as_bytes())])
    }

    fn put_user(&self, user: &UserRecord) -> StoreResult<()> {
        let sql = "INSERT INTO users (name, access_key, record) VALUES ($1, $2, $3) \
                   ON CONFLICT (name) DO UPDATE SET access_key = excluded.access_key, record = excluded.record";
        self.execute(sql, &[Text(&user.name), Text(&user.access_key), Bytea(&encode(user)?)])
    }

    fn remove_user(&self, user: &UserRecord) -> StoreResult<()> {
        self.execute("DELETE FROM users WHERE name = $1", &[Text(&user.name)])
    }
}

#[cfg(test)]
#[path = "txn_tests.rs"]
pub(super) mod rule_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_sequence_numbers_sort_as_unsigned() {
        let values = [0u64, 1, 1 << 62, (1 << 63) - 1, 1 << 63, u64::MAX - 1, u64::MAX];
        for pair in values.windows(2) {
            assert!(ordered(pair[0]) < ordered(pair[1]), "{pair:?}");
        }
        for value in values {
            assert_eq!(unordered(ordered(value)), value);
        }
    }

    #[test]
    fn an_object_row_splits_at_its_first_zero() {
        let row = crate::store::schema::object_key("b", b"k\0with zero");
        assert_eq!(split_row(&row).ok(), Some((&b"b"[..], &b"k\0with zero"[..])));
        assert!(split_row(b"no zero").is_err());
    }
}
