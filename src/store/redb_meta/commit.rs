//! Group commit: every metadata write of the process goes through one writer
//! thread, which runs all the writes waiting at that moment in one redb
//! transaction and pays one commit (one fsync) for all of them. redb allows a
//! single writer anyway; batching turns N concurrent small PUTs from N
//! serialized fsyncs into a few.
//!
//! Contract for a write: it says how it failed ([`WriteError`]). A rejection
//! (no such bucket, precondition failed...) must be returned before the write
//! changes anything, so the other writes of the batch still commit. A storage
//! failure may leave half of the write in the transaction: it aborts the
//! whole batch.
//!
//! A failed commit poisons redb's `Database` (see `dbslot.rs`): the thread
//! then reopens it before the next batch, after freeing the reserve if the
//! disk was full (`space.rs`), so the store recovers without a restart.
//!
//! A failed commit is not always undone. redb writes the new header before
//! its one fsync: when only the fsync fails, the reopened database shows the
//! commit, which is then visible but not known to be durable. Its writes are
//! answered with an error all the same, and told [`Settled::InDoubt`], so
//! they neither undo it (remove a published file the commit references) nor
//! act on it (unlink the blobs it freed, which a power loss could bring
//! back): the next start's sweeps finish either way.

use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};

use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use redb::WriteTransaction;

use crate::store::commit_mark::{self, CommitMark};
use crate::store::dbslot::DbSlot;
use crate::store::layout::BlobId;
use crate::store::schema::DEAD_BLOBS;
use crate::store::space::Space;
use crate::store::StoreError;

/// Largest number of writes committed together.
const MAX_BATCH: usize = 256;

/// How a write failed inside its transaction. `E` is the caller's error.
#[derive(Debug)]
pub enum WriteError<E> {
    /// Refused before it changed anything (a failed precondition, no such
    /// bucket...): the other writes of its batch still commit.
    Rejected(E),
    /// A storage failure: the transaction may hold half of this write, so
    /// its whole batch is aborted.
    Failed(StoreError),
}

impl<E: From<StoreError>> From<StoreError> for WriteError<E> {
    /// The store's own errors say which kind they are.
    fn from(e: StoreError) -> Self {
        match e.is_storage_failure() {
            true => WriteError::Failed(e),
            false => WriteError::Rejected(e.into()),
        }
    }
}

impl<E: From<StoreError>> WriteError<E> {
    /// The error the caller sees.
    pub fn into_inner(self) -> E {
        match self {
            WriteError::Rejected(e) => e,
            WriteError::Failed(e) => e.into(),
        }
    }
}

/// How a write's batch ended, as its `settle` callback is told.
#[derive(Debug)]
pub enum Settled<T> {
    /// Committed and durable; the write's value.
    Committed(T),
    /// Nothing of the write is in the database.
    RolledBack,
    /// The commit failed but is, or may be, in the database (see the module
    /// notes): keep what it references, free nothing it released.
    InDoubt,
}

/// How a batch ended.
#[derive(Debug, Clone)]
enum BatchEnd {
    Committed,
    RolledBack(StoreError),
    InDoubt(StoreError),
}

/// What a job hands back after running inside the transaction: a callback
/// told how the batch ended, and whether the job poisoned the batch. A job
/// given an error instead of a transaction (no transaction could begin)
/// just reports it.
type Finish = Box<dyn FnOnce(BatchEnd) + Send>;
type Job = Box<dyn FnOnce(Result<&WriteTransaction, &StoreError>) -> (Finish, bool) + Send>;

/// A write as the commit thread runs it.
pub trait WriteFn<T, E>: FnOnce(&WriteTransaction) -> Result<T, WriteError<E>> + Send + 'static {}
impl<T, E, F: FnOnce(&WriteTransaction) -> Result<T, WriteError<E>> + Send + 'static> WriteFn<T, E> for F {}

/// What the commit thread is asked to do: a write, or (on a full disk) a
/// compaction, whose requester waits until its sender is dropped.
enum Msg {
    Write(Job),
    Compact(SyncSender<()>),
    /// Commit what is queued, then end the thread (clean shutdown).
    Stop(SyncSender<()>),
}

/// What the group-commit thread measures (served as metrics).
pub struct CommitMetrics {
    /// Writes per commit.
    pub batch_writes: Histogram,
    /// Seconds per commit, fsync included.
    pub seconds: Histogram,
}

impl Default for CommitMetrics {
    fn default() -> Self {
        CommitMetrics {
            batch_writes: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
        }
    }
}

pub struct Committer {
    jobs: Mutex<Sender<Msg>>,
    pub metrics: Arc<CommitMetrics>,
    /// Dead blobs whose files are unlinked; their rows go in the next batch.
    forgotten: Arc<Mutex<Vec<BlobId>>>,
}

impl Committer {
    pub fn start(db: Arc<DbSlot>, space: Arc<Space>, mark: Arc<CommitMark>) -> std::io::Result<Committer> {
        let (tx, rx) = mpsc::channel::<Msg>();
        let forgotten = Arc::new(Mutex::new(Vec::new()));
        let pending = forgotten.clone();
        let metrics = Arc::new(CommitMetrics::default());
        let observed = metrics.clone();
        let thread = move || run(&Target { db, space, mark, metrics: observed }, &rx, &pending);
        std::thread::Builder::new().name("group-commit".into()).spawn(thread)?;
        Ok(Committer { jobs: Mutex::new(tx), metrics, forgotten })
    }

    /// Runs `f` in the next batch; returns its result once the batch is durable.
    /// Blocks the calling thread.
    pub fn execute<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: WriteFn<T, E>,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply_tx, reply_rx): (SyncSender<Result<T, E>>, _) = mpsc::sync_channel(1);
        self.submit(
            f,
            |_: Settled<&T>| {},
            move |outcome| {
                let _ = reply_tx.send(outcome);
            },
        )?;
        reply_rx.recv().unwrap_or_else(|_| Err(stopped().into()))
    }

    /// [`Committer::execute`] for async callers: the commit thread wakes the
    /// task itself, with no blocking thread in between. `settle` is told how
    /// the write ended ([`Settled`]) on the commit thread, even if the caller
    /// has gone away meanwhile (a dropped request): what must follow a
    /// commit, or be undone without one, is done there.
    pub async fn execute_async<T, E, F, S>(&self, f: F, settle: S) -> Result<T, E>
    where
        F: WriteFn<T, E>,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        S: FnOnce(Settled<&T>) + Send + 'static,
    {
        let (reply_tx, reply_rx) = tokio::sync::oneshot::channel();
        self.submit(f, settle, move |outcome| {
            let _ = reply_tx.send(outcome);
        })?;
        reply_rx.await.unwrap_or_else(|_| Err(stopped().into()))
    }

    /// Queues `f` for the next batch; `settle` and then `reply` get its
    /// outcome once the batch committed (or failed). A job that cannot be
    /// queued is dropped unrun, `settle` with it.
    fn submit<T, E, F, S, R>(&self, f: F, settle: S, reply: R) -> Result<(), E>
    where
        F: WriteFn<T, E>,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        S: FnOnce(Settled<&T>) + Send + 'static,
        R: FnOnce(Result<T, E>) + Send + 'static,
    {
        let job: Job = Box::new(move |txn| {
            let result = match txn {
                Ok(txn) => f(txn),
                Err(e) => Err(WriteError::Failed(e.clone())),
            };
            let poisoned = matches!(&result, Err(WriteError::Failed(_)));
            let result = result.map_err(WriteError::into_inner);
            let finish: Finish = Box::new(move |end| {
                let outcome = match (end, result) {
                    (BatchEnd::Committed, Ok(value)) => {
                        settle(Settled::Committed(&value));
                        Ok(value)
                    }
                    (BatchEnd::InDoubt(e), Ok(_)) => {
                        settle(Settled::InDoubt);
                        Err(e.into())
                    }
                    (BatchEnd::RolledBack(e), Ok(_)) => {
                        settle(Settled::RolledBack);
                        Err(e.into())
                    }
                    (_, Err(e)) => {
                        settle(Settled::RolledBack);
                        Err(e)
                    }
                };
                reply(outcome)
            });
            (finish, poisoned)
        });
        self.send(Msg::Write(job)).map_err(E::from)
    }

    fn send(&self, msg: Msg) -> Result<(), StoreError> {
        let sent = self.jobs.lock().map_err(|_| StoreError::internal("commit queue poisoned"))?.send(msg);
        sent.map_err(|_| stopped())
    }

    /// Compacts the database between two batches and waits for it (see
    /// `dbslot::compact`). Blocks the calling thread.
    pub fn compact(&self) {
        let (done_tx, done_rx) = mpsc::sync_channel(0);
        if self.send(Msg::Compact(done_tx)).is_ok() {
            let _ = done_rx.recv();
        }
    }

    /// Commits the writes already queued, then stops the commit thread and
    /// waits for it, so nothing holds the database any more. Later writes
    /// fail with "the commit thread stopped". Blocks the calling thread.
    pub fn stop(&self) {
        let (done_tx, done_rx) = mpsc::sync_channel(0);
        if self.send(Msg::Stop(done_tx)).is_ok() {
            let _ = done_rx.recv();
        }
    }

    /// Records blobs whose files are gone: their dead-table rows are removed
    /// in the next batch (a crash before that only replays the unlink).
    pub fn forget(&self, ids: Vec<BlobId>) {
        if let Ok(mut pending) = self.forgotten.lock() {
            pending.extend(ids);
        }
    }
}

/// What the commit thread writes to: the database, reopened after a failure,
/// and the reserve it frees when the disk is full.
struct Target {
    db: Arc<DbSlot>,
    space: Arc<Space>,
    mark: Arc<CommitMark>,
    metrics: Arc<CommitMetrics>,
}

fn run(target: &Target, rx: &Receiver<Msg>, forgotten: &Mutex<Vec<BlobId>>) {
    while let Ok(first) = rx.recv() {
        let (mut jobs, mut compactions, mut stop) = (Vec::new(), Vec::new(), None);
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Write(job) => jobs.push(job),
                Msg::Compact(done) => compactions.push(done),
                Msg::Stop(done) => stop = Some(done),
            }
            if jobs.len() < MAX_BATCH && stop.is_none() {
                next = rx.try_recv().ok();
            }
        }
        if !jobs.is_empty() {
            commit_batch(target, jobs, forgotten);
        }
        if !compactions.is_empty() {
            compact(target);
        }
        if stop.is_some() {
            // Dropping `done` wakes the waiter; jobs still queued are dropped
            // with the receiver, and their callers learn the thread stopped.
            return;
        }
    }
}

/// Compacts the database so the pages freed by deletes go back to the
/// filesystem. A failure only leaves the disk as full as it was (an I/O
/// error poisons the database: the next batch reopens it).
fn compact(target: &Target) {
    let started = std::time::Instant::now();
    match target.db.exclusive(crate::store::dbslot::compact) {
        Ok(Ok(_)) => tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "metadata database compacted"),
        Ok(Err(e)) => tracing::warn!(error = %e, "compacting the metadata database failed"),
        Err(e) => tracing::warn!(error = %e.chain(), "could not compact the metadata database"),
    }
}

fn commit_batch(target: &Target, jobs: Vec<Job>, forgotten: &Mutex<Vec<BlobId>>) {
    let txn = match begin(target) {
        Ok(txn) => txn,
        Err(e) => {
            tracing::error!(error = %e.chain(), "cannot begin a metadata transaction");
            for job in jobs {
                job(Err(&e)).0(BatchEnd::RolledBack(e.clone()));
            }
            return;
        }
    };
    let forgotten_ids = forgotten.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default();
    if let Err(e) = remove_dead_rows(&txn, &forgotten_ids) {
        tracing::warn!(error = %e.chain(), "could not drop freed blob rows; replayed at next start");
    }
    let mut finishers = Vec::with_capacity(jobs.len());
    let mut poisoned = false;
    for job in jobs {
        let (finish, poison) = job(Ok(&txn));
        poisoned |= poison;
        finishers.push(finish);
    }
    let started = std::time::Instant::now();
    let end = if poisoned {
        let _ = txn.abort();
        heal(target);
        BatchEnd::RolledBack(StoreError::internal("another write of the same commit failed"))
    } else {
        commit(target, txn)
    };
    target.metrics.seconds.observe(started.elapsed().as_secs_f64());
    target.metrics.batch_writes.observe(finishers.len() as f64);
    for finish in finishers {
        finish(end.clone());
    }
}

/// Commits the batch under the next commit sequence number; after a failed
/// commit, that number tells whether the reopened database holds it.
fn commit(target: &Target, txn: WriteTransaction) -> BatchEnd {
    let seq = commit_mark::bump(&txn);
    match txn.commit() {
        Ok(()) => {
            target.space.committed();
            match seq {
                Ok(seq) => target.mark.record(seq),
                Err(e) => tracing::warn!(error = %e.chain(), "could not advance the commit sequence"),
            }
            BatchEnd::Committed
        }
        Err(e) => {
            let error = failed_commit(target, e);
            let now = target.db.get().and_then(|db| commit_mark::current(&db));
            match (seq, now) {
                (Ok(seq), Ok(now)) if now != seq => BatchEnd::RolledBack(error),
                _ => {
                    tracing::error!("the failed commit may be in the database: its writes were answered with errors");
                    BatchEnd::InDoubt(error)
                }
            }
        }
    }
}

/// Begins the batch's transaction. A database poisoned by an earlier I/O
/// error (or left closed by a reopen that failed) is reopened first.
fn begin(target: &Target) -> Result<WriteTransaction, StoreError> {
    let first = target.db.get().and_then(|db| Ok(db.begin_write()?));
    match first {
        Ok(txn) => Ok(txn),
        Err(StoreError::Unavailable) => {
            recover(target)?;
            Ok(target.db.get()?.begin_write()?)
        }
        Err(e) => Err(e),
    }
}

/// A job failed on a storage error, which may have come from redb's own file
/// I/O and poisoned the database: find out now and reopen, rather than let
/// readers fail until the next write comes.
fn heal(target: &Target) {
    let probe = target.db.get().and_then(|db| Ok(db.begin_write()?));
    if matches!(probe, Err(StoreError::Unavailable)) {
        if let Err(e) = recover(target) {
            tracing::error!(error = %e.chain(), "reopening the metadata database failed; retried at the next write");
        }
    }
}

/// A commit failed: redb has poisoned the database. Frees the reserve if the
/// disk is full, then reopens, so the next batch (a delete, typically) runs
/// on a sound database with room to commit.
fn failed_commit(target: &Target, e: redb::CommitError) -> StoreError {
    let error = StoreError::from(e);
    tracing::error!(error = %error.chain(), "metadata commit failed; reopening the database");
    if let Err(e) = recover_after(target, &error) {
        tracing::error!(error = %e.chain(), "reopening the metadata database failed; retried at the next write");
    }
    error
}

fn recover_after(target: &Target, error: &StoreError) -> Result<(), StoreError> {
    if matches!(error, StoreError::StorageFull) {
        target.space.enter_full_mode();
    }
    recover(target)
}

fn recover(target: &Target) -> Result<(), StoreError> {
    if !target.db.is_closed() {
        // Poisoned by an I/O error we did not see (a failed read, a job's
        // write): it may have been a full disk too; freeing the reserve is
        // what lets the deletes that follow commit.
        if target.space.free_is_low() {
            target.space.enter_full_mode();
        }
    }
    target.db.reopen()
}

fn stopped() -> StoreError {
    StoreError::internal("the commit thread stopped")
}

fn remove_dead_rows(txn: &WriteTransaction, ids: &[BlobId]) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut table = txn.open_table(DEAD_BLOBS)?;
    for id in ids {
        table.remove(*id)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

    use super::*;
    use crate::store::schema::BUCKETS;
    use crate::store::{Store, StoreResult};

    fn insert(txn: &WriteTransaction, name: &str) -> Result<(), StoreError> {
        txn.open_table(BUCKETS)?.insert(name, b"row".as_slice())?;
        Ok(())
    }

    fn has_row(store: &Store, name: &str) -> bool {
        let txn = store.db().expect("db").begin_read().expect("read");
        txn.open_table(BUCKETS).expect("table").get(name).expect("get").is_some()
    }

    /// Runs `jobs` in one batch: a first job holds the commit thread until
    /// all of them are queued behind it. Returns each job's outcome.
    type TestJob = fn(&WriteTransaction) -> Result<(), WriteError<StoreError>>;

    fn one_batch(store: &Arc<Store>, jobs: Vec<TestJob>) -> Vec<StoreResult<()>> {
        let holder = {
            let store = store.clone();
            thread::spawn(move || {
                store.committer().execute(|_| {
                    thread::sleep(Duration::from_millis(300));
                    Ok::<_, WriteError<StoreError>>(())
                })
            })
        };
        thread::sleep(Duration::from_millis(50));
        let queued: Vec<_> = jobs
            .into_iter()
            .map(|job| {
                let store = store.clone();
                thread::spawn(move || store.committer().execute(job))
            })
            .collect();
        holder.join().expect("holder").expect("the holding job commits");
        queued.into_iter().map(|t| t.join().expect("job thread")).collect()
    }

    #[test]
    fn a_rejected_write_spares_its_batch_and_a_failed_one_aborts_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::open(dir.path()).expect("open"));

        let outcomes = one_batch(
            &store,
            vec![|txn| Ok(insert(txn, "kept")?), |_| Err(WriteError::Rejected(StoreError::NoSuchKey))],
        );
        assert!(outcomes[0].is_ok(), "{:?}", outcomes[0]);
        assert!(matches!(outcomes[1], Err(StoreError::NoSuchKey)), "the rejection comes back as it was");
        assert!(has_row(&store, "kept"), "a rejection does not abort the others");

        let outcomes = one_batch(
            &store,
            vec![|txn| Ok(insert(txn, "innocent")?), |txn| {
                insert(txn, "half")?;
                Err(WriteError::Failed(StoreError::internal("disk on fire")))
            }],
        );
        assert!(outcomes.iter().all(Result::is_err), "{outcomes:?}");
        assert!(!has_row(&store, "innocent") && !has_row(&store, "half"), "the whole batch was aborted");

        // The store's own errors classify themselves.
        assert!(matches!(WriteError::<StoreError>::from(StoreError::NoSuchBucket), WriteError::Rejected(_)));
        assert!(matches!(WriteError::<StoreError>::from(StoreError::StorageFull), WriteError::Failed(_)));
        store.close();
    }
}
