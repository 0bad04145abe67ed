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
const CURSOR: &str = "SELECT cursor FROM leases WHERE name = $1";
/// Saving renews: a chore saves its place after each batch.
const SAVE_CURSOR: &str = "UPDATE leases SET cursor = $3, expires_at = now() + $4::float8 * interval '1 second' \
     WHERE name = $1 AND holder = $2";
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

/// Where the chore of lease `name` left off (whoever held it), if it saved
/// a place.
pub async fn cursor(pool: &Pool, name: &str) -> Result<Option<Vec<u8>>, PgError> {
    let client = pool.get().await?;
    let row = client.query_opt(CURSOR, &[&name]).await.map_err(|e| PgError::query("reading a lease's cursor", &e))?;
    match row {
        Some(row) => row.try_get(0).map_err(|e| PgError::query("reading a lease's cursor", &e)),
        None => Ok(None),
    }
}

/// Saves where `holder`'s chore is and renews its lease; `false` if the
/// lease is no longer `holder`'s (nothing saved).
pub async fn save_cursor(pool: &Pool, name: &str, holder: &str, cursor: &[u8]) -> Result<bool, PgError> {
    let client = pool.get().await?;
    let saved = client
        .execute(SAVE_CURSOR, &[&name, &holder, &cursor, &LEASE_TTL.as_secs_f64()])
        .await
        .map_err(|e| PgError::query("saving a lease's cursor", &e))?;
    Ok(saved == 1)
}
