//! `tessera backup` and `tessera restore` of gateways sharing a
//! PostgreSQL-compatible database (docs/scale-out.md). What both backends
//! share (the output folder, the blob files, the report) is in
//! `store/backup.rs`.
//!
//! What a backup writes into `OUT/`: `metadata/<table>.copy`, each table
//! in COPY's text format, all read in ONE `REPEATABLE READ` transaction (a
//! snapshot: exactly the commits before it began); then every blob file
//! the snapshot's `blobs` rows name (bodies kept in `blob_bodies` are rows
//! already); then `metadata/manifest`, last (temp file, fsync, rename): a
//! folder holding it is a complete backup. Left out: the schema row (the
//! manifest names the version), `gateways` and `leases` (who runs what
//! now) and `dead_blobs` (files already freed, which the backup does not
//! hold). `tessera restore` loads the tables into an empty database, and
//! the backup folder is then the gateways' data folder.
//!
//! Concurrent deletes: a blob freed after the snapshot began is unlinked
//! by whichever gateway collects freed blobs, `--unlink-grace` after it
//! was freed; a backup still copying then would miss its file. So a backup
//! first commits a hold, a row of `leases` named `backup/...` that expires
//! [`HOLD_TTL`] after it was last renewed (every [`HOLD_RENEW`] while the
//! backup runs); while an unexpired hold exists, the collection unlinks
//! nothing ([`NO_BACKUP_HOLD`], `chores.rs`), as redb's unlink gate does on
//! one node. A collection pass that read no hold before it was committed
//! unlinks only blobs freed `--unlink-grace` before that pass, so freed
//! before the snapshot, which therefore does not name them. The orphan
//! sweep needs no check: a blob freed after the snapshot stays in
//! `dead_blobs` until the collection unlinks it. A hold's renewals stop
//! when its process dies; its unlinking resumes `HOLD_TTL` later.

use std::fs;
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio_postgres::{IsolationLevel, Transaction};

use super::schema::{SCHEMA_VERSION, TABLES_V1};
use super::txn::{wait, PgContext};
use super::{blob_id, PgError, Pool};
use crate::store::backup::{copy_blobs, discard_partial, prepare_out, BackupError, BackupReport};
use crate::store::layout::{fsync_dir, new_blob_id, packed_position, BlobId, Layout};
use crate::store::Store;

/// The tables a backup leaves out (see the module comment).
pub const LEFT_OUT: &[&str] = &["tessera_schema", "gateways", "leases", "dead_blobs"];

/// The tables a backup copies: every other table, in creation order, which
/// is the order `tessera restore` loads them (a new table is backed up
/// unless it is added to [`LEFT_OUT`]).
pub fn backed_up() -> Vec<&'static str> {
    TABLES_V1.iter().copied().filter(|table| !LEFT_OUT.contains(table)).collect()
}

/// The folder of `OUT` the tables and the manifest go to.
pub const METADATA_DIR: &str = "metadata";
const MANIFEST: &str = "manifest";
/// The manifest's first line.
const MANIFEST_HEADER: &str = "tessera backup of PostgreSQL metadata";

/// How long a backup's hold lasts without being renewed.
pub const HOLD_TTL: Duration = Duration::from_secs(60);
/// How often a running backup renews its hold.
const HOLD_RENEW: Duration = Duration::from_secs(15);
/// The SQL condition under which freed blob files may be unlinked: no
/// backup holds them (`chores.rs`).
pub(super) const NO_BACKUP_HOLD: &str =
    "NOT EXISTS (SELECT 1 FROM leases WHERE substr(name, 1, 7) = 'backup/' AND expires_at > now())";

/// Bytes sent per message of a restore's COPY.
const RESTORE_CHUNK: usize = 256 * 1024;

/// [`Store::backup`] of a store over PostgreSQL. Blocking.
pub(crate) fn backup(store: &Store, ctx: &PgContext, out: &Path) -> Result<BackupReport, BackupError> {
    let started = Instant::now();
    let dst = prepare_out(out, store.layout().root())?;
    let written = write_backup(ctx, store.layout(), &dst, started);
    written.inspect_err(|_| discard_partial(&dst))
}

fn write_backup(ctx: &PgContext, src: &Layout, dst: &Layout, started: Instant) -> Result<BackupReport, BackupError> {
    let hold = Hold::take(ctx)?;
    let written = write_under_hold(ctx, src, dst, started);
    hold.release(ctx);
    written
}

fn write_under_hold(
    ctx: &PgContext,
    src: &Layout,
    dst: &Layout,
    started: Instant,
) -> Result<BackupReport, BackupError> {
    let dir = dst.root().join(METADATA_DIR);
    fs::create_dir(&dir)?;
    let snapshot = wait(&ctx.runtime, dump_tables(&ctx.pool, &dir))?;
    let mut report = BackupReport { objects: snapshot.objects, blobs: 0, linked: 0, bytes: 0, seconds: 0.0 };
    copy_blobs(src, dst, &snapshot.files, &mut report)?;
    report.bytes += snapshot.tables.iter().map(|t| t.bytes).sum::<u64>();
    snapshot.write_manifest(&dir)?;
    fsync_dir(dst.root())?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// One table's dump.
#[derive(Debug, Clone, PartialEq)]
struct TableDump {
    name: String,
    rows: u64,
    bytes: u64,
}

/// What one snapshot held, besides the rows in the dump files.
#[derive(Debug, Default, PartialEq)]
struct Snapshot {
    tables: Vec<TableDump>,
    objects: u64,
    /// The sequence behind version ids (0: never used).
    version_seq: i64,
    /// The blob files its rows name.
    files: Vec<BlobId>,
}

/// Dumps every table of [`backed_up`] into `dir` from one snapshot.
async fn dump_tables(pool: &Pool, dir: &Path) -> Result<Snapshot, BackupError> {
    let mut client = pool.get().await?;
    let txn = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(|e| PgError::query("starting the backup's snapshot", &e))?;
    let mut snapshot = Snapshot::default();
    for name in backed_up() {
        let (rows, bytes) = dump_table(&txn, name, &dir.join(format!("{name}.copy"))).await?;
        snapshot.tables.push(TableDump { name: name.to_string(), rows, bytes });
    }
    let read = |what| move |e: tokio_postgres::Error| PgError::query(what, &e);
    let objects = txn.query_one("SELECT count(*) FROM objects", &[]).await.map_err(read("counting objects"))?;
    snapshot.objects = u64::try_from(objects.get::<_, i64>(0)).unwrap_or(0);
    let seq = txn
        .query_one("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM version_seq", &[])
        .await
        .map_err(read("reading version_seq"))?;
    snapshot.version_seq = seq.get(0);
    snapshot.files = blob_files(&txn).await?;
    txn.commit().await.map_err(read("ending the backup's snapshot"))?;
    Ok(snapshot)
}

/// The blob files the snapshot's rows name: every blob whose body is not
/// a row. Streamed, so memory holds 16 bytes per file, not a driver row.
async fn blob_files(txn: &Transaction<'_>) -> Result<Vec<BlobId>, BackupError> {
    const FILES: &str =
        "SELECT id FROM blobs WHERE NOT EXISTS (SELECT 1 FROM blob_bodies WHERE blob_bodies.id = blobs.id)";
    let failed = |e: tokio_postgres::Error| PgError::query("listing blob files", &e);
    let rows = txn.query_raw(FILES, std::iter::empty::<i32>()).await.map_err(failed)?;
    let mut rows = std::pin::pin!(rows);
    let mut files = Vec::new();
    while let Some(row) = rows.next().await {
        let row = row.map_err(failed)?;
        let id = row.try_get::<_, &[u8]>(0).map_err(failed)?;
        files.extend(blob_id(id).filter(|id| packed_position(*id).is_none()));
    }
    Ok(files)
}

/// Streams `COPY table TO STDOUT` into `path` (owner-only: `users` holds
/// secrets) and fsyncs it; its rows and bytes.
async fn dump_table(txn: &Transaction<'_>, table: &str, path: &Path) -> Result<(u64, u64), BackupError> {
    let failed = |e: tokio_postgres::Error| PgError::query("copying a table out", &e);
    let stream = txn.copy_out(&format!("COPY {table} TO STDOUT")).await.map_err(failed)?;
    let mut stream = std::pin::pin!(stream);
    let file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    let mut file = BufWriter::new(file);
    let (mut rows, mut bytes) = (0u64, 0u64);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(failed)?;
        // In the text format a row ends with a newline, and a newline in a value is escaped.
        rows += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        bytes += chunk.len() as u64;
        file.write_all(&chunk)?;
    }
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok((rows, bytes))
}

impl Snapshot {
    fn manifest(&self) -> String {
        let mut text = format!("{MANIFEST_HEADER}\nschema_version {SCHEMA_VERSION}\n");
        text.push_str(&format!("version_seq {}\nobjects {}\n", self.version_seq, self.objects));
        for t in &self.tables {
            text.push_str(&format!("table {} {} {}\n", t.name, t.rows, t.bytes));
        }
        text
    }

    /// Writes the manifest into `dir` durably, after the dumps it names
    /// (each fsynced by [`dump_table`]; the folder's fsync makes their names
    /// durable before the manifest's).
    fn write_manifest(&self, dir: &Path) -> std::io::Result<()> {
        fsync_dir(dir)?;
        let tmp = dir.join(format!("{MANIFEST}.tmp"));
        let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        file.write_all(self.manifest().as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, dir.join(MANIFEST))?;
        fsync_dir(dir)
    }

    /// Reads a manifest; `None` if it is not one this build wrote.
    fn parse_manifest(text: &str) -> Option<(i32, Snapshot)> {
        let mut lines = text.lines();
        if lines.next()? != MANIFEST_HEADER {
            return None;
        }
        let (mut schema_version, mut snapshot) = (None, Snapshot::default());
        for line in lines {
            let words: Vec<&str> = line.split(' ').collect();
            match words.as_slice() {
                ["schema_version", v] => schema_version = Some(v.parse().ok()?),
                ["version_seq", v] => snapshot.version_seq = v.parse().ok()?,
                ["objects", v] => snapshot.objects = v.parse().ok()?,
                ["table", name, rows, bytes] => snapshot.tables.push(TableDump {
                    name: name.to_string(),
                    rows: rows.parse().ok()?,
                    bytes: bytes.parse().ok()?,
                }),
                _ => return None,
            }
        }
        Some((schema_version?, snapshot))
    }
}

/// A backup's hold on unlinking (see the module comment): committed when
/// taken, renewed by a task on the store's runtime, deleted when released.
struct Hold {
    name: String,
    renewer: tokio::task::JoinHandle<()>,
}

impl Hold {
    /// Takes a hold, and forgets the expired holds of backups that died.
    fn take(ctx: &PgContext) -> Result<Hold, BackupError> {
        const TAKE: &str = "INSERT INTO leases (name, holder, expires_at) \
             VALUES ($1, $2, now() + $3::float8 * interval '1 second')";
        const FORGET_EXPIRED: &str = "DELETE FROM leases WHERE substr(name, 1, 7) = 'backup/' AND expires_at < now()";
        let name = format!("backup/{:032x}", new_blob_id()?);
        let holder = format!("tessera backup (pid {})", std::process::id());
        wait(&ctx.runtime, async {
            let client = ctx.pool.get().await?;
            client
                .execute(FORGET_EXPIRED, &[])
                .await
                .map_err(|e| PgError::query("forgetting expired backup holds", &e))?;
            client
                .execute(TAKE, &[&name, &holder, &HOLD_TTL.as_secs_f64()])
                .await
                .map_err(|e| PgError::query("taking the backup's hold on unlinking", &e))
        })?;
        let renewer = ctx.runtime.spawn(renew(ctx.pool.clone(), name.clone()));
        Ok(Hold { name, renewer })
    }

    /// Deletes the hold (best effort: otherwise it expires).
    fn release(self, ctx: &PgContext) {
        self.renewer.abort();
        let released = wait(&ctx.runtime, async {
            let client = ctx.pool.get().await?;
            client
                .execute("DELETE FROM leases WHERE name = $1", &[&self.name])
                .await
                .map_err(|e| PgError::query("releasing the backup's hold", &e))
        });
        if let Err(e) = released {
            tracing::warn!(error = %e, "could not release a backup's hold; unlinking resumes when it expires");
        }
    }
}

impl Drop for Hold {
    /// Stops renewing in any case: a hold not released expires.
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

/// Renews the hold `name` every [`HOLD_RENEW`] until aborted.
async fn renew(pool: Pool, name: String) {
    const RENEW: &str = "UPDATE leases SET expires_at = now() + $2::float8 * interval '1 second' WHERE name = $1";
    loop {
        tokio::time::sleep(HOLD_RENEW).await;
        let renewed = match pool.get().await {
            Ok(client) => {
                client.execute(RENEW, &[&name, &HOLD_TTL.as_secs_f64()]).await.map_err(|e| super::describe(&e))
            }
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = renewed {
            tracing::warn!(error = %e, "could not renew a backup's hold; if it expires, a blob unlinked meanwhile fails the backup");
        }
    }
}

/// What `tessera restore` loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreReport {
    pub tables: usize,
    pub rows: u64,
    pub objects: u64,
}

/// `tessera restore`: loads the backup in `from` into the database of
/// `pool`, which must hold no Tessera data and run no gateway; creates or
/// upgrades its schema first (`tessera migrate`). One transaction: a
/// restore cut short leaves the database empty.
pub async fn restore(pool: &Pool, from: &Path) -> Result<RestoreReport, BackupError> {
    let dir = from.join(METADATA_DIR);
    let snapshot = read_manifest(from, &dir)?;
    super::migrate(pool).await?;
    let mut client = pool.get().await?;
    let txn = client
        .build_transaction()
        .isolation_level(IsolationLevel::Serializable)
        .start()
        .await
        .map_err(|e| PgError::query("starting the restore", &e))?;
    refuse_unless_empty(&txn).await?;
    forget_what_ran_before(&txn).await?;
    let mut rows = 0;
    for table in &snapshot.tables {
        rows += load_table(&txn, table, &dir.join(format!("{}.copy", table.name))).await?;
    }
    if snapshot.version_seq > 0 {
        txn.execute("SELECT setval('version_seq', $1)", &[&snapshot.version_seq])
            .await
            .map_err(|e| PgError::query("restoring version_seq", &e))?;
    }
    txn.commit().await.map_err(|e| PgError::query("committing the restore", &e))?;
    Ok(RestoreReport { tables: snapshot.tables.len(), rows, objects: snapshot.objects })
}

/// The manifest of the complete backup in `from`, naming every table of
/// [`backed_up`] and written by a build of this schema version.
fn read_manifest(from: &Path, dir: &Path) -> Result<Snapshot, BackupError> {
    let refuse = |why: String| BackupError::Refused(format!("{}: {why}", from.display()));
    let text = match fs::read_to_string(dir.join(MANIFEST)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && from.join("meta.redb").is_file() => {
            return Err(refuse(
                "a backup of a server over redb, which needs no restore: serve it with \
                 `tessera serve --data` (or copy it into place)"
                    .into(),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(refuse(format!(
                "no {METADATA_DIR}/{MANIFEST}: not a complete backup (an interrupted one has none)"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let (version, snapshot) =
        Snapshot::parse_manifest(&text).ok_or_else(|| refuse(format!("{METADATA_DIR}/{MANIFEST} is damaged")))?;
    if version != SCHEMA_VERSION {
        return Err(refuse(format!(
            "written at schema version {version}; this tessera restores version {SCHEMA_VERSION} only"
        )));
    }
    let named: Vec<&str> = snapshot.tables.iter().map(|t| t.name.as_str()).collect();
    let expected = backed_up();
    if named != expected {
        return Err(refuse(format!("{METADATA_DIR}/{MANIFEST} names the tables {named:?}, not {expected:?}")));
    }
    Ok(snapshot)
}

/// A restore goes into a database that no gateway runs on and that holds
/// no bucket, object, user or upload: it never mixes two namespaces.
async fn refuse_unless_empty(txn: &Transaction<'_>) -> Result<(), BackupError> {
    let read = |e: tokio_postgres::Error| PgError::query("checking that the database is empty", &e);
    let running = txn.query("SELECT id FROM gateways WHERE expires_at > now()", &[]).await.map_err(read)?;
    if let Some(row) = running.first() {
        let id: String = row.get(0);
        return Err(BackupError::Refused(format!(
            "gateway {id} is running on this database: stop every gateway first"
        )));
    }
    for table in backed_up() {
        let found = txn.query_opt(&format!("SELECT 1 FROM {table} LIMIT 1"), &[]).await.map_err(read)?;
        if found.is_some() {
            return Err(BackupError::Refused(format!(
                "the database already holds rows of `{table}`: restore into an empty one (a new database or schema)"
            )));
        }
    }
    Ok(())
}

/// Clears what the database's earlier gateways left: freed blobs (their
/// ids could name files of the backup, which the collection would then
/// unlink) and leases (chores' cursors, expired holds).
async fn forget_what_ran_before(txn: &Transaction<'_>) -> Result<(), BackupError> {
    let failed = |e: tokio_postgres::Error| PgError::query("clearing dead_blobs and leases", &e);
    txn.batch_execute("DELETE FROM dead_blobs; DELETE FROM leases").await.map_err(failed)?;
    Ok(())
}

/// Streams the dump `path` into `table` with `COPY FROM STDIN`; checks it
/// holds the rows the manifest counted.
async fn load_table(txn: &Transaction<'_>, table: &TableDump, path: &Path) -> Result<u64, BackupError> {
    let failed = |e: tokio_postgres::Error| PgError::query("copying a table in", &e);
    let sink = txn.copy_in::<_, Bytes>(&format!("COPY {} FROM STDIN", table.name)).await.map_err(failed)?;
    let mut sink = std::pin::pin!(sink);
    let mut file = fs::File::open(path)?;
    loop {
        let mut chunk = Vec::with_capacity(RESTORE_CHUNK);
        if Read::by_ref(&mut file).take(RESTORE_CHUNK as u64).read_to_end(&mut chunk)? == 0 {
            break;
        }
        sink.send(Bytes::from(chunk)).await.map_err(failed)?;
    }
    let rows = sink.as_mut().finish().await.map_err(failed)?;
    if rows != table.rows {
        return Err(BackupError::Refused(format!(
            "{} holds {rows} rows of `{}`, the manifest {}: the backup is damaged",
            path.display(),
            table.name,
            table.rows
        )));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::pg::chores::freed_due;
    use crate::store::pg::txn::rule_tests::TestSchema;
    use crate::store::pg::RetryPolicy;

    #[test]
    fn tables_left_out_exist_and_the_rest_are_backed_up() {
        for table in LEFT_OUT {
            assert!(TABLES_V1.contains(table), "{table} is left out but is no table");
        }
        assert_eq!(backed_up().len() + LEFT_OUT.len(), TABLES_V1.len());
        assert!(backed_up().contains(&"users") && !backed_up().contains(&"leases"));
    }

    #[test]
    fn a_manifest_reads_back_as_written_and_a_damaged_one_not_at_all() {
        let tables = backed_up().into_iter().map(|name| TableDump { name: name.into(), rows: 3, bytes: 70 }).collect();
        let snapshot = Snapshot { tables, objects: 12, version_seq: 99, files: Vec::new() };
        let text = snapshot.manifest();
        assert_eq!(Snapshot::parse_manifest(&text), Some((SCHEMA_VERSION, snapshot)));
        assert_eq!(Snapshot::parse_manifest(&text.replace("table users 3", "table users x")), None);
        assert_eq!(Snapshot::parse_manifest(&text.replacen("tessera", "other", 1)), None);
        assert_eq!(Snapshot::parse_manifest(&text.replace("schema_version 1\n", "")), None);
    }

    /// The collection of freed blobs unlinks nothing while a backup holds
    /// them, and resumes once the hold is released or has expired.
    #[test]
    fn freed_blobs_wait_while_a_backup_holds_them() {
        let Some(schema) = TestSchema::create(RetryPolicy::default()) else { return };
        let ctx = &schema.ctx;
        let sql =
            |q: &str| schema.runtime.block_on(async { ctx.pool.get().await.expect("client").batch_execute(q).await });
        sql("INSERT INTO dead_blobs (id, freed_at) VALUES ('\\x000000000000000000000000000000aa', now() - interval '1 hour')")
            .expect("insert");
        let due = || schema.runtime.block_on(freed_due(&ctx.pool, Duration::ZERO)).expect("freed blobs due").len();
        assert_eq!(due(), 1, "a blob freed an hour ago is due");
        let hold = Hold::take(ctx).expect("hold");
        assert_eq!(due(), 0, "nothing is unlinked while a backup holds unlinking");
        hold.release(ctx);
        assert_eq!(due(), 1, "a released hold holds nothing");
        let _dead = Hold::take(ctx).expect("hold");
        sql("UPDATE leases SET expires_at = now() - interval '1 second' WHERE substr(name, 1, 7) = 'backup/'")
            .expect("expire");
        assert_eq!(due(), 1, "an expired hold (its backup died) holds nothing");
    }
}
