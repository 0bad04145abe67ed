//! Every metadata write is one SERIALIZABLE transaction, run again from the
//! start when the database says another transaction got in its way, so a
//! race between gateways never reaches a client as a 500 (docs/scale-out.md).
//!
//! What is retried, and how:
//! - conflicts: 40001 (serialization failure), 40P01 (deadlock), 23505
//!   (PostgreSQL may report a concurrent insert of a key this transaction
//!   saw absent as a unique violation even at SERIALIZABLE; every insert
//!   follows a read of its key, so the retry decides again): after a
//!   jittered backoff, at most `max_attempts` times within `max_time`;
//! - a lost connection (class 08, 57P01-57P03, a closed socket) before
//!   COMMIT was sent: on a fresh client, for up to `reconnect_for` (a
//!   database restart);
//! - a lost connection after COMMIT was sent is *in doubt* (committed or
//!   not, nobody can say) and is never retried: the caller must treat the
//!   write as possibly done.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use tokio_postgres::{IsolationLevel, Transaction};

use super::{describe, PgError, Pool, PooledClient};

/// How long and how often a transaction is tried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all when the database keeps reporting conflicts.
    pub max_attempts: u32,
    /// No new attempt after a conflict once this much time has passed.
    pub max_time: Duration,
    /// How long a lost or refused connection is retried on a new one.
    pub reconnect_for: Duration,
    /// The largest pause between two attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            // Writers of one hot row (one content PUT and deleted by
            // several clients) each win about one attempt in N: 30 attempts
            // make giving up (503 SlowDown) rare even for three at once.
            max_attempts: 30,
            max_time: Duration::from_secs(10),
            reconnect_for: Duration::from_secs(5),
            max_backoff: Duration::from_millis(500),
        }
    }
}

/// How a step of the transaction's work failed: the database (classified
/// and maybe retried), or the work's own decision to stop (returned as is).
#[derive(Debug)]
pub enum Step<E> {
    Db(tokio_postgres::Error),
    Reject(E),
}

impl<E> From<tokio_postgres::Error> for Step<E> {
    fn from(e: tokio_postgres::Error) -> Self {
        Step::Db(e)
    }
}

/// Why [`run_serializable`] gave up.
#[derive(Debug, thiserror::Error)]
pub enum RunError<E> {
    /// The work rejected the request; the transaction was rolled back.
    #[error("rejected")]
    Rejected(E),
    #[error(transparent)]
    Failed(#[from] PgError),
}

/// The future the work returns, borrowing the transaction.
pub type TxnFuture<'t, T, E> = Pin<Box<dyn Future<Output = Result<T, Step<E>>> + Send + 't>>;

/// What one failed attempt means for the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Another transaction got in the way: try again.
    Conflict,
    /// The connection is gone: try again on a new one (unless COMMIT was sent).
    Connection,
    /// CockroachDB's 40003: the statement's result is unknown.
    Ambiguous,
    /// Anything else: a bug or a schema problem; retrying would not help.
    Other,
}

/// The class of a SQLSTATE (`None`: the error had none).
pub fn class_of_code(code: Option<&str>) -> Class {
    match code {
        Some("40001" | "40P01" | "23505") => Class::Conflict,
        Some("40003") => Class::Ambiguous,
        Some("57P01" | "57P02" | "57P03") => Class::Connection,
        Some(code) if code.starts_with("08") => Class::Connection,
        _ => Class::Other,
    }
}

/// The class of a driver error: a closed connection or a socket error has
/// no SQLSTATE but is a connection failure.
pub fn class_of(e: &tokio_postgres::Error) -> Class {
    let io = std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
    match e.is_closed() || io {
        true => Class::Connection,
        false => class_of_code(e.code().map(|c| c.code())),
    }
}

/// Runs `work` in a SERIALIZABLE transaction on a pooled client and
/// commits, retrying as the module says. `work` may run several times, so
/// it must do nothing but database statements through the transaction it
/// is given (no I/O of its own, no effects outside the database).
pub async fn run_serializable<T, E, F>(pool: &Pool, policy: &RetryPolicy, work: F) -> Result<T, RunError<E>>
where
    F: for<'t> Fn(&'t Transaction<'t>) -> TxnFuture<'t, T, E>,
{
    let mut attempts = Attempts::new(policy);
    loop {
        let failure = match attempt(pool, &work).await {
            Ok(value) => return Ok(value),
            Err(failure) => failure,
        };
        tokio::time::sleep(attempts.pause_after(failure)?).await;
    }
}

/// The failures of one transaction's attempts so far: how long to pause
/// before the next attempt, or why there is none.
pub(super) struct Attempts<'p> {
    policy: &'p RetryPolicy,
    started: Instant,
    conflicts: u32,
    reconnects: u32,
}

impl<'p> Attempts<'p> {
    pub(super) fn new(policy: &'p RetryPolicy) -> Self {
        Attempts { policy, started: Instant::now(), conflicts: 0, reconnects: 0 }
    }

    pub(super) fn pause_after<E>(&mut self, failure: Failure<E>) -> Result<Duration, RunError<E>> {
        let (policy, elapsed) = (self.policy, self.started.elapsed());
        match failure {
            Failure::Conflict(detail) => {
                self.conflicts += 1;
                if self.conflicts >= policy.max_attempts || elapsed >= policy.max_time {
                    return Err(PgError::Busy { attempts: self.conflicts, detail }.into());
                }
                tracing::debug!(conflicts = self.conflicts, %detail, "metadata transaction conflicted; retrying");
                Ok(backoff(self.conflicts, policy.max_backoff))
            }
            Failure::Connection(detail) => {
                self.reconnects += 1;
                if elapsed >= policy.reconnect_for {
                    return Err(PgError::Unavailable { detail }.into());
                }
                tracing::debug!(reconnects = self.reconnects, %detail, "metadata connection lost; retrying on a new one");
                // From 16 ms up: a restarting database needs a moment, not a spin.
                Ok(backoff(self.reconnects + 3, policy.max_backoff))
            }
            Failure::Stop(e) => Err(e),
        }
    }
}

/// One attempt's failure: worth another attempt, or the end.
pub(super) enum Failure<E> {
    Conflict(String),
    Connection(String),
    Stop(RunError<E>),
}

impl<E> Failure<E> {
    fn fatal(e: PgError) -> Failure<E> {
        Failure::Stop(RunError::Failed(e))
    }

    /// A client could not be had from the pool.
    pub(super) fn of_pool(e: PgError) -> Failure<E> {
        match e {
            PgError::Connect { .. } => Failure::Connection(e.to_string()),
            e => Failure::fatal(e),
        }
    }

    /// Whether the client of the attempt must not be used again: its
    /// connection failed, or it left a transaction in doubt.
    pub(super) fn spoils_client(&self) -> bool {
        matches!(self, Failure::Connection(_) | Failure::Stop(RunError::Failed(PgError::InDoubt { .. })))
    }
}

/// Where in the transaction an error came: before COMMIT was sent, a lost
/// connection means nothing committed; at COMMIT it means in doubt.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Work,
    Commit,
}

async fn attempt<T, E, F>(pool: &Pool, work: &F) -> Result<T, Failure<E>>
where
    F: for<'t> Fn(&'t Transaction<'t>) -> TxnFuture<'t, T, E>,
{
    let mut client = pool.get().await.map_err(Failure::of_pool)?;
    let result = in_transaction(&mut client, work).await;
    if result.as_ref().is_err_and(Failure::spoils_client) {
        client.discard();
    }
    result
}

async fn in_transaction<T, E, F>(client: &mut PooledClient, work: &F) -> Result<T, Failure<E>>
where
    F: for<'t> Fn(&'t Transaction<'t>) -> TxnFuture<'t, T, E>,
{
    let begin = client.build_transaction().isolation_level(IsolationLevel::Serializable).start().await;
    let txn = begin.map_err(|e| failure(&e, Phase::Work))?;
    let outcome = work(&txn).await;
    match outcome {
        Ok(value) => match txn.commit().await {
            Ok(()) => Ok(value),
            Err(e) => Err(failure(&e, Phase::Commit)),
        },
        Err(step) => {
            // A failed rollback changes nothing: the server drops the
            // transaction with the connection, and a closed client is not reused.
            let _ = txn.rollback().await;
            match step {
                Step::Reject(e) => Err(Failure::Stop(RunError::Rejected(e))),
                Step::Db(e) => Err(failure(&e, Phase::Work)),
            }
        }
    }
}

/// What a driver error in `phase` means for the transaction.
pub(super) fn failure<E>(e: &tokio_postgres::Error, phase: Phase) -> Failure<E> {
    let detail = describe(e);
    match (class_of(e), phase) {
        (Class::Conflict, _) => Failure::Conflict(detail),
        (Class::Ambiguous, Phase::Work) => Failure::Conflict(detail),
        (Class::Connection, Phase::Work) => Failure::Connection(detail),
        (Class::Connection | Class::Ambiguous, Phase::Commit) => Failure::fatal(PgError::InDoubt { detail }),
        (Class::Other, _) => Failure::fatal(PgError::query("metadata transaction", e)),
    }
}

/// A random pause in `0..2^attempt` ms (full jitter), at most `max`: two
/// gateways that conflicted do not retry in step and conflict again.
fn backoff(attempt: u32, max: Duration) -> Duration {
    let ceiling = Duration::from_millis(1u64 << attempt.min(16)).min(max);
    let mut bytes = [0u8; 8];
    let random = match getrandom::getrandom(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => u64::from(attempt),
    };
    let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX).max(1);
    Duration::from_micros(random % micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_are_classified() {
        for code in ["40001", "40P01", "23505"] {
            assert_eq!(class_of_code(Some(code)), Class::Conflict, "{code}");
        }
        for code in ["08000", "08006", "08003", "57P01", "57P02", "57P03"] {
            assert_eq!(class_of_code(Some(code)), Class::Connection, "{code}");
        }
        assert_eq!(class_of_code(Some("40003")), Class::Ambiguous);
        for code in ["42P01", "22012", "23503", "57014"] {
            assert_eq!(class_of_code(Some(code)), Class::Other, "{code}");
        }
        assert_eq!(class_of_code(None), Class::Other);
    }

    #[test]
    fn backoff_is_jittered_within_its_bounds() {
        let max = Duration::from_millis(500);
        for attempt in 1..20 {
            let ceiling = Duration::from_millis(1u64 << attempt.min(16)).min(max);
            let pauses: Vec<Duration> = (0..50).map(|_| backoff(attempt, max)).collect();
            assert!(pauses.iter().all(|p| *p < ceiling), "{attempt}: {pauses:?}");
            if attempt > 3 {
                assert!(pauses.iter().any(|p| *p != pauses[0]), "no jitter at {attempt}");
            }
        }
    }
}
