//! The background work of gateways sharing one database and one blob
//! folder, each chore run by one gateway at a time under a lease
//! (`lease.rs`):
//!
//! - freed blobs: a write that frees a blob file records it in
//!   `dead_blobs`; the file is unlinked only once it has been dead for
//!   `--unlink-grace`, since a GET on another gateway may have read the
//!   metadata before the free and open the file after it, and never while
//!   a backup holds unlinking (`backup.rs`);
//! - orphaned blobs: a gateway that dies between a blob file's rename and
//!   the commit that references it leaves a file no row names; files older
//!   than `--orphan-grace` that neither `blobs` nor `dead_blobs` know are
//!   unlinked;
//! - stale uploads and lifecycle rules, as on one node (`gc.rs`);
//! - background hashing of blob files into the unique-file table
//!   (`hasher.rs`), on its own thread while its gateway holds the lease and
//!   has admitted no body write for `--hash-after-idle`;
//! - the scrub (`scrubbing.rs`), on its own thread too, resumed where it
//!   stopped by whichever gateway takes its lease next.
//!
//! Every step is idempotent, and the database row goes last: a gateway
//! killed mid-chore leaves work that the next holder of the lease redoes.

use std::collections::HashSet;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{blob_id, lease, PgError, Pool};
use crate::store::layout::BlobId;
use crate::store::Store;
use crate::store::{gc, hasher};

/// Blob ids handled per statement.
const BATCH: usize = 500;

/// How long chores wait: the options of `tessera serve` they follow.
#[derive(Debug, Clone, Copy)]
pub struct ChoreSettings {
    /// How long a freed blob file outlives the write that freed it.
    pub unlink_grace: Duration,
    /// How old a blob file no row names must be to be unlinked.
    pub orphan_grace: Duration,
    /// Multipart uploads older than this are aborted.
    pub abort_incomplete_after: Duration,
    /// The length of a lifecycle day.
    pub lifecycle_day: Duration,
    /// Background hashing starts after this long without a body write on
    /// this gateway; zero: never.
    pub hash_after_idle: Duration,
    /// Time between scrub passes; zero: never.
    pub scrub_interval: Duration,
    /// Most bytes per second a scrub pass reads.
    pub scrub_rate: u64,
}

/// The lease of background hashing (its own thread, not a [`Chore`]).
const HASHING: &str = "content-hashing";
/// The longest the hashing gateway waits between passes when no body was
/// committed since its last pass began: here, or through other gateways,
/// which say so in their `gateways` row (`last_write_at`, set at the claim
/// renewal after a commit, `gateway.rs`). A pass reads a few rows per
/// blob, so an idle cluster does not rescan more often than this. The
/// holder renews its lease (30 s) every few seconds meanwhile.
const HASHING_RESCAN: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy)]
enum Chore {
    FreedBlobs,
    OrphanedBlobs,
    StaleUploads,
    Lifecycle,
}

impl Chore {
    const ALL: [Chore; 4] = [Chore::FreedBlobs, Chore::OrphanedBlobs, Chore::StaleUploads, Chore::Lifecycle];

    /// The name of its lease.
    fn name(self) -> &'static str {
        match self {
            Chore::FreedBlobs => "freed-blobs",
            Chore::OrphanedBlobs => "orphaned-blobs",
            Chore::StaleUploads => "stale-uploads",
            Chore::Lifecycle => "lifecycle",
        }
    }

    /// How often the lease holder runs it.
    fn period(self, settings: &ChoreSettings) -> Duration {
        let within = |d: Duration, most: u64| d.clamp(Duration::from_secs(1), Duration::from_secs(most));
        match self {
            Chore::FreedBlobs => within(settings.unlink_grace / 4, 60),
            Chore::OrphanedBlobs => within(settings.orphan_grace / 4, 3600),
            Chore::StaleUploads => gc::upload_expiry_period(settings.abort_incomplete_after),
            Chore::Lifecycle => gc::lifecycle_period(settings.lifecycle_day),
        }
    }
}

/// What the chores of one gateway share.
struct Chores {
    store: Arc<Store>,
    pool: Pool,
    /// This gateway's id: the holder of the leases it takes.
    holder: String,
    settings: ChoreSettings,
}

/// The running chores of one gateway.
pub struct Running {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Tells the hashing and scrub threads to stop taking their leases.
    stopped: Arc<AtomicBool>,
    chores: Arc<Chores>,
}

/// Starts every chore on the current runtime, for the gateway `holder`.
pub fn spawn(store: Arc<Store>, pool: Pool, holder: &str, settings: ChoreSettings) -> Running {
    let stopped = Arc::new(AtomicBool::new(false));
    if !settings.hash_after_idle.is_zero() {
        let may_hash = leased_while(&pool, holder, &stopped);
        let elsewhere = writes_elsewhere(&pool);
        hasher::spawn_hasher_while(store.clone(), settings.hash_after_idle, HASHING_RESCAN, may_hash, Some(elsewhere));
    }
    if !settings.scrub_interval.is_zero() {
        let (interval, rate) = (settings.scrub_interval, settings.scrub_rate);
        super::scrubbing::spawn(store.clone(), pool.clone(), holder, interval, rate, stopped.clone());
    }
    let chores = Arc::new(Chores { store, pool, holder: holder.to_string(), settings });
    let tasks = Chore::ALL.into_iter().map(|chore| tokio::spawn(chores.clone().run(chore))).collect();
    Running { tasks, stopped, chores }
}

/// Whether this gateway holds (takes or renews) the hashing lease, asked
/// from the hasher's own thread; never once `stopped`.
fn leased_while(pool: &Pool, holder: &str, stopped: &Arc<AtomicBool>) -> impl Fn() -> bool + Send + 'static {
    let (runtime, pool, holder, stopped) =
        (tokio::runtime::Handle::current(), pool.clone(), holder.to_string(), stopped.clone());
    move || {
        if stopped.load(Ordering::Relaxed) {
            return false;
        }
        match runtime.block_on(lease::take(&pool, HASHING, &holder)) {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(chore = HASHING, error = %e, "could not take the chore's lease");
                false
            }
        }
    }
}

/// How the hasher learns of bodies committed through any gateway: a mark
/// is the database's clock (seconds), and a gateway's `last_write_at`
/// after it means a body committed after it. Asked from the hasher's own
/// thread. A gateway stopped or killed before its renewal reported a
/// commit leaves it to the rescan.
fn writes_elsewhere(pool: &Pool) -> hasher::Elsewhere {
    const NOW: &str = "SELECT extract(epoch FROM now())::float8";
    // A second of margin: on CockroachDB or YugabyteDB the mark and a
    // renewal may read the clocks of two nodes (at most one extra pass).
    const SINCE: &str =
        "SELECT EXISTS (SELECT 1 FROM gateways WHERE extract(epoch FROM last_write_at)::float8 > $1::float8 - 1.0)";
    let (pool_for_mark, runtime) = (pool.clone(), tokio::runtime::Handle::current());
    let mark = move || runtime.block_on(ask_for_writes(&pool_for_mark, NOW, &[]))?.try_get(0).ok();
    let (pool, runtime) = (pool.clone(), tokio::runtime::Handle::current());
    let written_since = move |at: f64| {
        let row = runtime.block_on(ask_for_writes(&pool, SINCE, &[&at]));
        row.and_then(|row| row.try_get(0).ok()).unwrap_or(false)
    };
    hasher::Elsewhere { mark: Box::new(mark), written_since: Box::new(written_since) }
}

/// The one row `sql` returns; `None` on an error, logged at debug level
/// (asked every few seconds: the hasher's rescan still comes).
async fn ask_for_writes(
    pool: &Pool,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Option<tokio_postgres::Row> {
    let asked = async {
        let client = pool.get().await?;
        client.query_one(sql, params).await.map_err(|e| PgError::query("asking for writes", &e))
    };
    asked.await.inspect_err(|e| tracing::debug!(error = %e, "hashing: could not ask for writes")).ok()
}

impl Running {
    /// Stops the chores and gives their leases up (a clean stop), so
    /// another gateway takes them over at once. A step cut short is
    /// redone by the next holder.
    pub async fn stop(&self) -> Result<(), PgError> {
        self.stopped.store(true, Ordering::Relaxed);
        for task in &self.tasks {
            task.abort();
        }
        lease::release_all(&self.chores.pool, &self.chores.holder).await
    }
}

impl Chores {
    async fn run(self: Arc<Self>, chore: Chore) {
        let period = chore.period(&self.settings);
        loop {
            tokio::time::sleep(period).await;
            match self.leased(chore).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(chore = chore.name(), error = %e, "could not take the chore's lease");
                    continue;
                }
            }
            if let Err(e) = self.pass(chore).await {
                tracing::warn!(chore = chore.name(), error = %format!("{e:#}"), "background chore failed");
            }
        }
    }

    /// Takes or renews the chore's lease.
    async fn leased(&self, chore: Chore) -> Result<bool, PgError> {
        lease::take(&self.pool, chore.name(), &self.holder).await
    }

    async fn pass(&self, chore: Chore) -> anyhow::Result<()> {
        let store = self.store.clone();
        let settings = self.settings;
        match chore {
            Chore::FreedBlobs => self.unlink_freed(chore).await,
            Chore::OrphanedBlobs => self.unlink_orphans(chore).await,
            Chore::StaleUploads => {
                let expire = move || gc::upload_expiry_pass(&store, settings.abort_incomplete_after);
                Ok(tokio::task::spawn_blocking(expire).await?)
            }
            Chore::Lifecycle => {
                let apply = move || gc::lifecycle_pass(&store, settings.lifecycle_day);
                Ok(tokio::task::spawn_blocking(apply).await?)
            }
        }
    }

    /// Unlinks the files of blobs freed at least `unlink_grace` ago, a
    /// batch at a time, then forgets their rows.
    async fn unlink_freed(&self, chore: Chore) -> anyhow::Result<()> {
        let mut unlinked = 0;
        loop {
            let due = freed_due(&self.pool, self.settings.unlink_grace).await?;
            let (store, full) = (self.store.clone(), due.len() == BATCH);
            let (removed, failed) = tokio::task::spawn_blocking(move || unlink(&store, &due)).await?;
            self.forget_freed(&removed).await?;
            unlinked += removed.len();
            if let Some(e) = failed {
                return Err(anyhow::Error::new(e).context(format!("unlinking a freed blob file ({unlinked} unlinked)")));
            }
            if !full || !self.leased(chore).await? {
                break;
            }
        }
        if unlinked > 0 {
            tracing::info!(unlinked, "unlinked freed blob files");
        }
        Ok(())
    }

    async fn forget_freed(&self, ids: &[BlobId]) -> Result<(), PgError> {
        if ids.is_empty() {
            return Ok(());
        }
        let client = self.pool.get().await?;
        client
            .execute("DELETE FROM dead_blobs WHERE id = ANY($1)", &[&id_params(ids)])
            .await
            .map_err(|e| PgError::query("forgetting freed blobs", &e))?;
        Ok(())
    }

    /// Unlinks blob files older than `orphan_grace` that no row names.
    async fn unlink_orphans(&self, chore: Chore) -> anyhow::Result<()> {
        let store = self.store.clone();
        let grace = self.settings.orphan_grace;
        let old = tokio::task::spawn_blocking(move || blob_files_older_than(&store, grace)).await??;
        let mut unlinked = 0;
        for chunk in old.chunks(BATCH) {
            let known = self.known_blobs(chunk).await?;
            let orphans: Vec<BlobId> = chunk.iter().copied().filter(|id| !known.contains(id)).collect();
            let store = self.store.clone();
            let (removed, failed) = tokio::task::spawn_blocking(move || unlink(&store, &orphans)).await?;
            unlinked += removed.len();
            if let Some(e) = failed {
                return Err(anyhow::Error::new(e).context("unlinking an orphaned blob file"));
            }
            if !self.leased(chore).await? {
                break;
            }
        }
        if unlinked > 0 {
            tracing::info!(unlinked, "unlinked orphaned blob files");
        }
        Ok(())
    }

    /// Which of `ids` a row of `blobs` or `dead_blobs` names.
    async fn known_blobs(&self, ids: &[BlobId]) -> Result<HashSet<BlobId>, PgError> {
        const KNOWN: &str =
            "SELECT id FROM blobs WHERE id = ANY($1) UNION ALL SELECT id FROM dead_blobs WHERE id = ANY($1)";
        let client = self.pool.get().await?;
        let rows = client.query(KNOWN, &[&id_params(ids)]).await.map_err(|e| PgError::query("reading blobs", &e))?;
        Ok(rows.iter().filter_map(|row| blob_id(row.get(0))).collect())
    }
}

/// Up to [`BATCH`] blobs freed at least `grace` ago, none while a backup
/// holds unlinking (`backup.rs`).
pub(super) async fn freed_due(pool: &Pool, grace: Duration) -> Result<Vec<BlobId>, PgError> {
    let due = format!(
        "SELECT id FROM dead_blobs WHERE freed_at < now() - $1::float8 * interval '1 second' AND {} \
         ORDER BY id LIMIT $2",
        super::backup::NO_BACKUP_HOLD
    );
    let client = pool.get().await?;
    let limit = i64::try_from(BATCH).unwrap_or(i64::MAX);
    let rows = client
        .query(&due, &[&grace.as_secs_f64(), &limit])
        .await
        .map_err(|e| PgError::query("reading freed blobs", &e))?;
    Ok(rows.iter().filter_map(|row| blob_id(row.get(0))).collect())
}

/// Unlinks the files of `ids` (one already gone counts as unlinked);
/// stops at the first failure. Blocking.
fn unlink(store: &Store, ids: &[BlobId]) -> (Vec<BlobId>, Option<io::Error>) {
    let mut removed = Vec::with_capacity(ids.len());
    for id in ids {
        match std::fs::remove_file(store.layout().blob_path(*id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return (removed, Some(e)),
            _ => removed.push(*id),
        }
    }
    (removed, None)
}

/// The blob files last modified more than `grace` ago. Blocking.
fn blob_files_older_than(store: &Store, grace: Duration) -> io::Result<Vec<BlobId>> {
    let before = SystemTime::now().checked_sub(grace).unwrap_or(SystemTime::UNIX_EPOCH);
    let layout = store.layout();
    let old = |id: &BlobId| layout.blob_path(*id).metadata().and_then(|m| m.modified()).is_ok_and(|m| m < before);
    Ok(layout.all_blob_ids()?.into_iter().filter(old).collect())
}

fn id_params(ids: &[BlobId]) -> Vec<Vec<u8>> {
    ids.iter().map(|id| id.to_be_bytes().to_vec()).collect()
}
