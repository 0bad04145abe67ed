//! Leases on background chores, so that one gateway of those sharing a
//! database runs each chore at a time (`chores.rs`). A lease is a row of
//! `leases` naming its holder (a gateway id, which `gateway.rs` makes one
//! process's) until it expires, [`LEASE_TTL`] after it was last taken by
//! the database's clock. A holder killed mid-chore loses the lease when it
//! expires, or at once when it restarts under the same id.
//!
//! Leases save duplicate work; they are not what keeps the chores safe:
//! every chore step is idempotent and checks the database first, so two
//! gateways that both believe they hold a lease (one paused past expiry)
//! do the same work twice, never harm.

use std::time::Duration;

use super::{PgError, Pool};

/// How long a lease lasts without being taken again.
pub const LEASE_TTL: Duration = Duration::from_secs(30);

const TAKE: &str = "INSERT INTO leases (name, holder, expires_at) \
     VALUES ($1, $2, now() + $3::float8 * interval '1 second') \
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
     WHERE leases.holder IS NULL OR leases.expires_at IS NULL OR leases.expires_at < now() \
     OR leases.holder = excluded.holder";
const RELEASE_ALL: &str = "UPDATE leases SET holder = NULL, expires_at = NULL WHERE holder = $1";

/// Takes or renews the lease `name` for `holder`; `false` while another
/// holder's lease runs.
pub async fn take(pool: &Pool, name: &str, holder: &str) -> Result<bool, PgError> {
    let client = pool.get().await?;
    let taken = client
        .execute(TAKE, &[&name, &holder, &LEASE_TTL.as_secs_f64()])
        .await
        .map_err(|e| PgError::query("taking a lease", &e))?;
    Ok(taken == 1)
}

/// Gives up every lease of `holder` (a gateway's clean stop).
pub async fn release_all(pool: &Pool, holder: &str) -> Result<(), PgError> {
    let client = pool.get().await?;
    client.execute(RELEASE_ALL, &[&holder]).await.map_err(|e| PgError::query("releasing leases", &e))?;
    Ok(())
}
