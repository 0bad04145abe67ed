//! Group commit: every metadata write of the process goes through one writer
//! thread, which runs all the writes waiting at that moment in one redb
//! transaction and pays one commit (one fsync) for all of them. redb allows a
//! single writer anyway; batching turns N concurrent small PUTs from N
//! serialized fsyncs into a few.
//!
//! Contract for a write: a *logical* error (no such bucket, precondition
//! failed...) must be returned before the write changes anything, so the other
//! writes of the batch can still commit. A storage error (one that
//! [`Poison::poisons_batch`]) aborts the whole batch.

use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};

use redb::{Database, WriteTransaction};

use super::layout::BlobId;
use super::schema::DEAD_BLOBS;
use super::StoreError;

/// Largest number of writes committed together.
const MAX_BATCH: usize = 256;

/// Whether an error means the transaction may hold half of a write.
pub trait Poison {
    fn poisons_batch(&self) -> bool;
}

impl Poison for StoreError {
    fn poisons_batch(&self) -> bool {
        matches!(self, StoreError::Internal(_))
    }
}

/// What a job hands back after running inside the transaction: a callback
/// told whether the batch committed, and whether the job poisoned the batch.
type Finish = Box<dyn FnOnce(bool) + Send>;
type Job = Box<dyn FnOnce(&WriteTransaction) -> (Finish, bool) + Send>;

pub struct Committer {
    jobs: Mutex<Sender<Job>>,
    /// Dead blobs whose files are unlinked; their rows go in the next batch.
    forgotten: Arc<Mutex<Vec<BlobId>>>,
}

impl Committer {
    pub fn start(db: Arc<Database>) -> std::io::Result<Committer> {
        let (tx, rx) = mpsc::channel::<Job>();
        let forgotten = Arc::new(Mutex::new(Vec::new()));
        let pending = forgotten.clone();
        std::thread::Builder::new().name("group-commit".into()).spawn(move || run(&db, &rx, &pending))?;
        Ok(Committer { jobs: Mutex::new(tx), forgotten })
    }

    /// Runs `f` in the next batch; returns its result once the batch is durable.
    /// Blocks the calling thread.
    pub fn execute<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&WriteTransaction) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Poison + Send + 'static,
    {
        let (reply_tx, reply_rx): (SyncSender<Result<T, E>>, _) = mpsc::sync_channel(1);
        self.submit(f, move |outcome| {
            let _ = reply_tx.send(outcome);
        })?;
        reply_rx.recv().unwrap_or_else(|_| Err(stopped().into()))
    }

    /// [`Committer::execute`] for async callers: the commit thread wakes the
    /// task itself, with no blocking thread in between.
    pub async fn execute_async<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&WriteTransaction) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Poison + Send + 'static,
    {
        let (reply_tx, reply_rx) = tokio::sync::oneshot::channel();
        self.submit(f, move |outcome| {
            let _ = reply_tx.send(outcome);
        })?;
        reply_rx.await.unwrap_or_else(|_| Err(stopped().into()))
    }

    /// Queues `f` for the next batch; `reply` gets its outcome once the batch
    /// committed (or failed).
    fn submit<T, E, F, R>(&self, f: F, reply: R) -> Result<(), E>
    where
        F: FnOnce(&WriteTransaction) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Poison + Send + 'static,
        R: FnOnce(Result<T, E>) + Send + 'static,
    {
        let job: Job = Box::new(move |txn| {
            let result = f(txn);
            let poisoned = matches!(&result, Err(e) if e.poisons_batch());
            let finish: Finish = Box::new(move |committed| {
                reply(match (committed, result) {
                    (true, result) | (false, result @ Err(_)) => result,
                    (false, Ok(_)) => Err(StoreError::Internal("the metadata commit failed".into()).into()),
                })
            });
            (finish, poisoned)
        });
        let sent = self.jobs.lock().map_err(|_| StoreError::Internal("commit queue poisoned".into()))?.send(job);
        sent.map_err(|_| stopped().into())
    }

    /// Records blobs whose files are gone: their dead-table rows are removed
    /// in the next batch (a crash before that only replays the unlink).
    pub fn forget(&self, ids: Vec<BlobId>) {
        if let Ok(mut pending) = self.forgotten.lock() {
            pending.extend(ids);
        }
    }
}

fn run(db: &Database, rx: &Receiver<Job>, forgotten: &Mutex<Vec<BlobId>>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        commit_batch(db, jobs, forgotten);
    }
}

fn commit_batch(db: &Database, jobs: Vec<Job>, forgotten: &Mutex<Vec<BlobId>>) {
    let txn = match db.begin_write() {
        Ok(txn) => txn,
        Err(e) => {
            // Dropping the jobs drops their reply channels: each caller gets an error.
            tracing::error!(error = %e, "cannot begin a metadata transaction");
            return;
        }
    };
    let forgotten_ids = forgotten.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default();
    if let Err(e) = remove_dead_rows(&txn, &forgotten_ids) {
        tracing::warn!(error = %e, "could not drop freed blob rows; replayed at next start");
    }
    let mut finishers = Vec::with_capacity(jobs.len());
    let mut poisoned = false;
    for job in jobs {
        let (finish, poison) = job(&txn);
        poisoned |= poison;
        finishers.push(finish);
    }
    let committed = if poisoned {
        let _ = txn.abort();
        false
    } else {
        match txn.commit() {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "metadata commit failed");
                false
            }
        }
    };
    for finish in finishers {
        finish(committed);
    }
}

fn stopped() -> StoreError {
    StoreError::Internal("the commit thread stopped".into())
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
