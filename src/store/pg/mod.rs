//! PostgreSQL-compatible metadata (issue 17, docs/scale-out.md), shared by
//! several gateways. `url` reads `--meta` (password redacted wherever it is
//! shown), `tls` makes rustls connections, `pool` hands out clients,
//! `schema` and `migrate` create and check the tables, `retry` runs a
//! transaction until it commits, `txn` is the store's table operations
//! over it (`MetaTxn`), `gateway` the registry of running gateways, and
//! `chores` the background work run once across them under `lease`s
//! (`scrubbing` the scrub's part of it), and `backup` their backups and restores.

mod redact;
pub use redact::redact;

// Everything that talks to a database needs the `postgres` feature's crates.
#[cfg(feature = "postgres")]
pub mod backup;
#[cfg(feature = "postgres")]
pub mod chores;
#[cfg(feature = "postgres")]
mod error;
#[cfg(feature = "postgres")]
pub mod gateway;
#[cfg(feature = "postgres")]
mod lease;
#[cfg(feature = "postgres")]
pub mod migrate;
#[cfg(feature = "postgres")]
pub mod pool;
#[cfg(feature = "postgres")]
pub mod retry;
#[cfg(feature = "postgres")]
pub mod schema;
#[cfg(feature = "postgres")]
mod scrubbing;
#[cfg(feature = "postgres")]
pub mod tls;
#[cfg(feature = "postgres")]
pub(crate) mod txn;
#[cfg(feature = "postgres")]
pub mod url;

#[cfg(feature = "postgres")]
pub use error::{describe, PgError};
#[cfg(feature = "postgres")]
pub use migrate::{check_schema, migrate, MigrateReport};
#[cfg(feature = "postgres")]
pub use pool::{Pool, PoolOptions, PooledClient};
#[cfg(feature = "postgres")]
pub use retry::{run_serializable, RetryPolicy, RunError, Step};
#[cfg(feature = "postgres")]
pub use url::MetaTarget;

/// A blob id from its column (16 bytes, big-endian: the order of `bytea`).
#[cfg(feature = "postgres")]
fn blob_id(bytes: &[u8]) -> Option<crate::store::layout::BlobId> {
    Some(crate::store::layout::BlobId::from_be_bytes(bytes.try_into().ok()?))
}
