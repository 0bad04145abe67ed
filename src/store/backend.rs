//! Which metadata backend a [`Store`] runs on, and the funnels through
//! which its reads and writes reach it: [`Store::read`] (a consistent
//! snapshot), [`Store::with_blob_source`] (what GET reads besides blob
//! files), [`Store::commit`] and [`Store::commit_async`] (one write
//! transaction). The rules the funnels run take `&dyn MetaRead` or
//! `&dyn MetaTxn`, so they are the same on every backend.
//!
//! The embedded backend batches writes in its group committer; the shared
//! one (issue 17, docs/scale-out.md) runs each write as a SERIALIZABLE
//! transaction on a blocking thread, again from the start after a
//! conflict, so write callbacks are `Fn` and must have no effect outside
//! the transaction. Over PostgreSQL, request work that waits for the
//! database takes a turn first ([`Turns`]), so waiting parks no thread.
//! Reads of redb tables that have not moved behind
//! [`MetaRead`] (the full-disk check of spare pages, the sweeps of one
//! node) find no redb database in a store over PostgreSQL and answer
//! `Unavailable`; a backup has a way of its own on each backend
//! (`backup.rs`).

use std::io;
use std::sync::Arc;

use redb::WriteTransaction;

use super::commit::{CommitMetrics, Committer, Settled, WriteError};
use super::commit_mark::CommitMark;
use super::dbslot::DbSlot;
use super::meta::{MetaRead, MetaTxn};
use super::read::{BlobSource, Snapshot};
use super::redb_meta::txn::{RedbRead, RedbTxn};
use super::{Store, StoreError, StoreResult};

pub(super) enum Meta {
    /// The embedded redb file: writes go through its group committer, and
    /// the commit mark beside it records what was acknowledged.
    Redb { db: Arc<DbSlot>, committer: Committer, mark: Arc<CommitMark> },
    /// A shared PostgreSQL-compatible database. Each write is a batch of
    /// one in the commit metrics.
    #[cfg(feature = "postgres")]
    Postgres { ctx: super::pg::txn::PgContext, metrics: Arc<CommitMetrics>, turns: Turns },
}

/// Over PostgreSQL, request work that waits for the database runs on a
/// blocking thread (its rules are synchronous). At most as many such jobs
/// as the pool has connections, less [`SPARE_CONNECTIONS`], run at once;
/// the others wait for a turn as tasks, so thousands of requests waiting
/// for the database park no thread (issue 9: waiting never parks a
/// blocking thread) and cannot take all of tokio's blocking threads.
#[cfg(feature = "postgres")]
pub(super) struct Turns {
    permits: Arc<tokio::sync::Semaphore>,
    /// How long a job waits for its turn before it is refused as
    /// `Unavailable` (503): the pool's own wait for a connection.
    wait: std::time::Duration,
}

/// Connections of the pool that requests leave to the gateway's own
/// work (renewing its claim and leases, the chores), so that requests
/// stuck on a slow statement cannot keep the claim from being renewed.
#[cfg(feature = "postgres")]
const SPARE_CONNECTIONS: usize = 2;

#[cfg(feature = "postgres")]
impl Turns {
    fn for_pool(ctx: &super::pg::txn::PgContext) -> Turns {
        let turns = ctx.pool.size().saturating_sub(SPARE_CONNECTIONS).max(1);
        let permits = Arc::new(tokio::sync::Semaphore::new(turns));
        Turns { permits, wait: ctx.pool.acquire_timeout() }
    }

    async fn take(&self) -> StoreResult<tokio::sync::OwnedSemaphorePermit> {
        match tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_closed)) => Err(StoreError::Unavailable),
            Err(_elapsed) => {
                tracing::warn!(waited = ?self.wait, "no turn for a metadata request: the database is slow or busy");
                Err(StoreError::Unavailable)
            }
        }
    }
}

/// A turn to run blocking store work; over redb there is no limit.
pub(super) struct Turn {
    #[cfg(feature = "postgres")]
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Store {
    /// A store whose metadata is in the PostgreSQL database of `ctx` (its
    /// schema checked already) and whose blobs are in the folder `root`,
    /// shared with other gateways. This gateway's own files are in
    /// `gateways/<gateway>/` (`layout.rs`): its `tmp/` is emptied now, so
    /// the caller must hold the id's claim (`pg::gateway`). No sweep runs
    /// over the shared folder (they need the coordination of issue 17's
    /// later steps).
    #[cfg(feature = "postgres")]
    pub(crate) fn open_postgres(
        root: &std::path::Path,
        gateway: &str,
        ctx: super::pg::txn::PgContext,
    ) -> StoreResult<Arc<Store>> {
        let layout = super::create_layout(root, Some(gateway))?;
        super::empty_tmp(&layout)?;
        let space = Arc::new(super::space::Space::open(&layout)?);
        let turns = Turns::for_pool(&ctx);
        Ok(Store::assemble(Meta::Postgres { ctx, metrics: Default::default(), turns }, layout, space))
    }

    /// A store over the PostgreSQL database of `ctx` for a command that
    /// changes or reads only metadata (`tessera user`, `tessera stats`
    /// with `--meta`): no gateway id, nothing created or emptied in the
    /// shared folder `root`. Bodies must not be written through it.
    #[cfg(feature = "postgres")]
    pub(crate) fn open_postgres_metadata(root: &std::path::Path, ctx: super::pg::txn::PgContext) -> Arc<Store> {
        let layout = super::layout::Layout::existing(root);
        let space = Arc::new(super::space::Space::without_reserve(&layout));
        let turns = Turns::for_pool(&ctx);
        Store::assemble(Meta::Postgres { ctx, metrics: Default::default(), turns }, layout, space)
    }

    /// Waits (as a task) for a turn to run blocking store work: see [`Turns`].
    pub(super) async fn turn(&self) -> StoreResult<Turn> {
        match &self.meta {
            Meta::Redb { .. } => Ok(Turn {
                #[cfg(feature = "postgres")]
                _permit: None,
            }),
            #[cfg(feature = "postgres")]
            Meta::Postgres { turns, .. } => Ok(Turn { _permit: Some(turns.take().await?) }),
        }
    }

    /// Whether a point read of the metadata is cheapest done in place, on
    /// the reactor: redb answers from its cache (the hand-off to a blocking
    /// thread costs more), a database over the network does not.
    pub(super) fn reads_in_place(&self) -> bool {
        matches!(self.meta, Meta::Redb { .. })
    }

    /// The redb database (never one being reopened, see `dbslot.rs`); a
    /// store over PostgreSQL has none and answers `Unavailable`.
    pub(super) fn db(&self) -> StoreResult<Arc<redb::Database>> {
        match &self.meta {
            Meta::Redb { db, .. } => db.get(),
            #[cfg(feature = "postgres")]
            Meta::Postgres { .. } => Err(StoreError::Unavailable),
        }
    }

    /// Runs `f` on a consistent snapshot of the metadata.
    pub(super) fn read<T>(&self, f: impl Fn(&dyn MetaRead) -> StoreResult<T>) -> StoreResult<T> {
        match &self.meta {
            Meta::Redb { db, .. } => f(&RedbRead(&db.get()?.begin_read()?)),
            #[cfg(feature = "postgres")]
            Meta::Postgres { ctx, .. } => pg_snapshot(ctx, |txn| f(txn)).and_then(|read| read),
        }
    }

    /// Runs `f` with what the metadata says of blobs (small bodies, block
    /// checksums), from one snapshot. The outer error is the metadata's,
    /// the inner one what `f` found of the blobs.
    pub(super) fn with_blob_source<T>(
        &self,
        f: impl Fn(&dyn BlobSource) -> io::Result<T>,
    ) -> StoreResult<io::Result<T>> {
        match &self.meta {
            Meta::Redb { db, .. } => Ok(f(&Snapshot(db.get()?.begin_read()?))),
            #[cfg(feature = "postgres")]
            Meta::Postgres { ctx, .. } => pg_snapshot(ctx, |txn| f(txn)),
        }
    }

    /// [`Self::read`] and [`Self::with_blob_source`] in one snapshot: a
    /// record and the small bodies it names, read together (over
    /// PostgreSQL one transaction instead of two).
    pub(super) fn read_with_blobs<T>(
        &self,
        f: impl Fn(&dyn MetaRead, &dyn BlobSource) -> StoreResult<T>,
    ) -> StoreResult<T> {
        match &self.meta {
            Meta::Redb { db, .. } => {
                let snapshot = Snapshot(db.get()?.begin_read()?);
                f(&RedbRead(&snapshot.0), &snapshot)
            }
            #[cfg(feature = "postgres")]
            Meta::Postgres { ctx, .. } => pg_snapshot(ctx, |txn| f(txn, txn)).and_then(|read| read),
        }
    }

    /// Runs `f` as one write transaction and commits it. Blocking.
    pub(super) fn commit<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: Fn(&dyn MetaTxn) -> Result<T, WriteError<E>> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        match &self.meta {
            Meta::Redb { committer, .. } => committer.execute(move |txn: &WriteTransaction| f(&RedbTxn(txn))),
            #[cfg(feature = "postgres")]
            Meta::Postgres { ctx, metrics, .. } => {
                use super::pg::txn::Written;
                match timed_write(ctx, metrics, f) {
                    Written::Committed(value) => Ok(value),
                    Written::RolledBack(e) | Written::InDoubt(e) => Err(e),
                }
            }
        }
    }

    /// [`Store::commit`] for async callers; `settle` is told how the write
    /// ended, even if the caller has gone away meanwhile (see `commit.rs`).
    pub(super) async fn commit_async<T, E, F, S>(self: &Arc<Self>, f: F, settle: S) -> Result<T, E>
    where
        F: Fn(&dyn MetaTxn) -> Result<T, WriteError<E>> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        S: FnOnce(Settled<&T>) + Send + 'static,
    {
        match &self.meta {
            Meta::Redb { committer, .. } => {
                committer.execute_async(move |txn: &WriteTransaction| f(&RedbTxn(txn)), settle).await
            }
            #[cfg(feature = "postgres")]
            Meta::Postgres { ctx, metrics, turns } => {
                use super::pg::txn::Written;
                let (ctx, metrics) = (ctx.clone(), metrics.clone());
                // A request dropped while it waits for its turn wrote nothing:
                // `settle` is dropped uncalled, as a rolled-back write drops it.
                let turn = turns.take().await?;
                // A blocking task runs to its end even if the request is dropped,
                // so `settle` always runs.
                let written = tokio::task::spawn_blocking(move || {
                    let _turn = turn;
                    let written = timed_write(&ctx, &metrics, f);
                    match &written {
                        Written::Committed(value) => settle(Settled::Committed(value)),
                        Written::RolledBack(_) => settle(Settled::RolledBack),
                        Written::InDoubt(_) => settle(Settled::InDoubt),
                    }
                    written
                });
                match written.await {
                    Ok(Written::Committed(value)) => Ok(value),
                    Ok(Written::RolledBack(e) | Written::InDoubt(e)) => Err(e),
                    Err(e) => Err(StoreError::caused("store thread", e).into()),
                }
            }
        }
    }

    /// The group committer, for tests of its batches.
    #[cfg(test)]
    #[allow(clippy::panic, reason = "test code")]
    pub(super) fn committer(&self) -> &Committer {
        match &self.meta {
            Meta::Redb { committer, .. } => committer,
            #[cfg(feature = "postgres")]
            Meta::Postgres { .. } => panic!("a store over PostgreSQL has no group committer"),
        }
    }

    /// What the writes measure (served as metrics).
    pub fn commit_metrics(&self) -> &Arc<CommitMetrics> {
        match &self.meta {
            Meta::Redb { committer, .. } => &committer.metrics,
            #[cfg(feature = "postgres")]
            Meta::Postgres { metrics, .. } => metrics,
        }
    }

    /// Whether blob files are shared with other gateways, which may still be
    /// reading a blob this one freed: freed files then wait for the garbage
    /// collection with its grace period (not built yet: they stay).
    pub(super) fn shares_blobs(&self) -> bool {
        !matches!(self.meta, Meta::Redb { .. })
    }
}

/// [`pg::txn::write`](super::pg::txn::write), counted in the commit metrics.
#[cfg(feature = "postgres")]
fn timed_write<T, E: From<StoreError>>(
    ctx: &super::pg::txn::PgContext,
    metrics: &CommitMetrics,
    f: impl Fn(&dyn MetaTxn) -> Result<T, WriteError<E>>,
) -> super::pg::txn::Written<T, E> {
    let started = std::time::Instant::now();
    let written = super::pg::txn::write(ctx, f);
    metrics.batch_writes.observe(1.0);
    metrics.seconds.observe(started.elapsed().as_secs_f64());
    written
}

/// Runs `f` on one snapshot of the shared metadata database. The outer
/// error says why the database could not be read, the inner one is `f`'s.
#[cfg(feature = "postgres")]
fn pg_snapshot<T, E>(
    ctx: &super::pg::txn::PgContext,
    f: impl Fn(&super::pg::txn::PgTxn) -> Result<T, E>,
) -> StoreResult<Result<T, E>> {
    use super::pg::txn::{run_blocking, Mode};
    match run_blocking(ctx, Mode::Snapshot, f) {
        Ok(value) => Ok(Ok(value)),
        Err(super::pg::RunError::Rejected(e)) => Ok(Err(e)),
        Err(super::pg::RunError::Failed(e)) => Err(snapshot_failed(e)),
    }
}

/// Why a snapshot of a shared metadata database could not be read.
#[cfg(feature = "postgres")]
fn snapshot_failed(e: super::pg::PgError) -> StoreError {
    use super::pg::PgError;
    tracing::warn!(error = %e, "metadata read failed");
    match e {
        PgError::Unavailable { .. } | PgError::Connect { .. } | PgError::PoolTimeout(_) => StoreError::Unavailable,
        e => StoreError::caused("metadata database", e),
    }
}
