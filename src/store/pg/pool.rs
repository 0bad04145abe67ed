//! A small pool of metadata database connections: at most `--meta-pool`
//! clients in use at once (a semaphore), idle ones kept in a list, new ones
//! made only when none is idle (lazily: a pool that is never used never
//! connects). A client whose connection has closed is dropped instead of
//! being handed out or kept, so a database restart costs each pooled
//! client one failed use at most (and `retry` retries that on a new one).
//! Our own (~100 lines) rather than deadpool-postgres: the reconnect
//! behaviour has to be spelled out for the retry rules anyway.

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::Client;

use super::tls::Connector;
use super::{MetaTarget, PgError};

/// The default of `--meta-pool`.
pub const DEFAULT_SIZE: usize = 16;

/// How large the pool is and how long a caller waits for a free client.
#[derive(Debug, Clone, Copy)]
pub struct PoolOptions {
    pub size: usize,
    pub acquire_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions { size: DEFAULT_SIZE, acquire_timeout: Duration::from_secs(30) }
    }
}

/// Connections to one metadata database; cheap to clone.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    target: MetaTarget,
    connector: Connector,
    idle: Mutex<Vec<Client>>,
    permits: Arc<Semaphore>,
    size: usize,
    acquire_timeout: Duration,
}

impl Pool {
    /// A pool for `target`, TLS as its `sslmode` says with the CAs of `ca`
    /// (else the system's). Connects nothing yet.
    pub fn new(target: MetaTarget, ca: Option<&Path>, options: PoolOptions) -> Result<Pool, PgError> {
        let connector = Connector::for_target(&target, ca)?;
        let inner = Inner {
            target,
            connector,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(options.size.max(1))),
            size: options.size.max(1),
            acquire_timeout: options.acquire_timeout,
        };
        Ok(Pool { inner: Arc::new(inner) })
    }

    /// The database, for messages (password redacted).
    pub fn target(&self) -> &MetaTarget {
        &self.inner.target
    }

    /// How many clients may be in use at once (`--meta-pool`).
    pub fn size(&self) -> usize {
        self.inner.size
    }

    /// How long [`Pool::get`] waits for a free client.
    pub fn acquire_timeout(&self) -> Duration {
        self.inner.acquire_timeout
    }

    /// A client: an idle open one, else a new connection. Waits while the
    /// pool's every client is in use, at most the acquire timeout.
    pub async fn get(&self) -> Result<PooledClient, PgError> {
        let wait = self.inner.acquire_timeout;
        let permit = tokio::time::timeout(wait, self.inner.permits.clone().acquire_owned())
            .await
            .map_err(|_| PgError::PoolTimeout(wait))?
            .map_err(|_| PgError::PoolTimeout(wait))?;
        let client = match self.take_idle() {
            Some(client) => client,
            None => self.inner.connector.connect(&self.inner.target).await?,
        };
        Ok(PooledClient { client: Some(client), pool: self.inner.clone(), broken: false, _permit: permit })
    }

    /// The number of idle clients kept (for tests and metrics).
    pub fn idle(&self) -> usize {
        self.inner.idle.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    fn take_idle(&self) -> Option<Client> {
        let mut idle = self.inner.idle.lock().unwrap_or_else(PoisonError::into_inner);
        // Closed ones (server restarted, connection killed) are dropped here.
        std::iter::from_fn(|| idle.pop()).find(|client| !client.is_closed())
    }
}

/// A client on loan from the [`Pool`]; back to it when dropped, unless
/// its connection closed or [`PooledClient::discard`] was called.
pub struct PooledClient {
    client: Option<Client>,
    pool: Arc<Inner>,
    broken: bool,
    _permit: OwnedSemaphorePermit,
}

impl PooledClient {
    /// Do not return this client to the pool: its connection failed in a
    /// way that leaves its state unknown.
    pub fn discard(&mut self) {
        self.broken = true;
    }
}

impl Deref for PooledClient {
    type Target = Client;

    #[allow(clippy::unwrap_used, reason = "the client is taken only in drop")]
    fn deref(&self) -> &Client {
        self.client.as_ref().unwrap()
    }
}

impl DerefMut for PooledClient {
    #[allow(clippy::unwrap_used, reason = "the client is taken only in drop")]
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().unwrap()
    }
}

impl Drop for PooledClient {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            if !self.broken && !client.is_closed() {
                self.pool.idle.lock().unwrap_or_else(PoisonError::into_inner).push(client);
            }
        }
    }
}
