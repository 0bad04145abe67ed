//! The registry of gateways sharing one metadata database: each running
//! gateway holds a row of `gateways` under its id, renewed while it runs.
//! The id names the gateway's own folder (`DATA/gateways/<id>/`, see
//! `layout.rs`), whose `tmp/` it empties at start: the claim makes sure no
//! running gateway uses that folder meanwhile.
//!
//! A claim expires [`CLAIM_TTL`] after its last renewal, measured by the
//! database's clock (gateways' clocks may disagree). A gateway restarted
//! after a crash on the same machine takes its id back at once when the
//! process that held it is gone; on another machine it waits for expiry.

use std::time::Duration;

use super::{PgError, Pool};

/// How long a claim lasts without renewal.
pub const CLAIM_TTL: Duration = Duration::from_secs(30);
/// How often a running gateway renews its claim.
pub const RENEW_EVERY: Duration = Duration::from_secs(10);

/// A gateway's hold on its id: what identifies this process's claim.
#[derive(Debug, Clone)]
pub struct Claim {
    id: String,
    host: String,
    pid: i32,
}

/// Why a gateway could not take its id.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error(
        "gateway id {id} is in use by the running gateway on {host} (process {pid}) until {expires} at the \
         latest: give this one another --gateway-id"
    )]
    InUse { id: String, host: String, pid: i32, expires: String },
    #[error("gateway id {id} changed hands while this gateway claimed it: start it again")]
    Contended { id: String },
    #[error(transparent)]
    Db(#[from] PgError),
}

/// The default id of a gateway: this machine's name and the port it
/// listens on (two gateways of one machine cannot share a port).
pub fn default_id(port: u16) -> String {
    let host: String = this_host().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let host = host.get(..host.len().min(56)).unwrap_or("gateway");
    format!("{host}-{port}")
}

fn this_host() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    match name.trim() {
        "" => "localhost".to_string(),
        name => name.to_string(),
    }
}

const CLAIM: &str = "INSERT INTO gateways (id, host, pid, started_at, expires_at) \
     VALUES ($1, $2, $3, now(), now() + $4::float8 * interval '1 second') \
     ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, started_at = excluded.started_at, \
     expires_at = excluded.expires_at WHERE gateways.expires_at < now()";
const TAKE_OVER: &str = "UPDATE gateways SET pid = $3, started_at = now(), \
     expires_at = now() + $4::float8 * interval '1 second' WHERE id = $1 AND host = $2 AND pid = $5";
const HOLDER: &str = "SELECT host, pid, expires_at::text FROM gateways WHERE id = $1";
/// `$5`: whether this gateway committed a body since its last renewal;
/// then `last_write_at` becomes now, after that commit, by the database's
/// clock (what other gateways' hashers compare with, `chores.rs`).
const RENEW: &str = "UPDATE gateways SET expires_at = now() + $4::float8 * interval '1 second', \
     last_write_at = CASE WHEN $5::bool THEN now() ELSE last_write_at END \
     WHERE id = $1 AND host = $2 AND pid = $3";
const RELEASE: &str = "DELETE FROM gateways WHERE id = $1 AND host = $2 AND pid = $3";

/// Takes the id `id` for this process: free, expired, or held by a process
/// of this machine that is gone (a gateway killed and restarted).
pub async fn claim(pool: &Pool, id: &str) -> Result<Claim, ClaimError> {
    let claim = Claim { id: id.to_string(), host: this_host(), pid: i32::try_from(std::process::id()).unwrap_or(0) };
    let ttl = CLAIM_TTL.as_secs_f64();
    let client = pool.get().await?;
    // Twice: a holder that releases the id between the claim and the
    // reading of the holder leaves a free id behind it.
    for _ in 0..2 {
        let claimed = client
            .execute(CLAIM, &[&claim.id, &claim.host, &claim.pid, &ttl])
            .await
            .map_err(|e| PgError::query("claiming the gateway id", &e))?;
        if claimed == 1 {
            return Ok(claim);
        }
        let holder =
            client.query_opt(HOLDER, &[&claim.id]).await.map_err(|e| PgError::query("reading the gateway id", &e))?;
        let Some(holder) = holder else { continue };
        // Nullable columns: a hand-edited row must not panic the start.
        let read = |e| PgError::query("reading the gateway id", &e);
        let host: Option<String> = holder.try_get(0).map_err(read)?;
        let pid: Option<i32> = holder.try_get(1).map_err(read)?;
        let expires: Option<String> = holder.try_get(2).map_err(read)?;
        let (host, pid, expires) = (host.unwrap_or_default(), pid.unwrap_or(0), expires.unwrap_or_default());
        if host != claim.host || process_runs(pid) {
            return Err(ClaimError::InUse { id: claim.id, host, pid, expires });
        }
        let taken = client
            .execute(TAKE_OVER, &[&claim.id, &claim.host, &claim.pid, &ttl, &pid])
            .await
            .map_err(|e| PgError::query("taking over the gateway id", &e))?;
        if taken == 1 {
            tracing::info!(gateway_id = %claim.id, old_pid = pid, "took over the gateway id of a process that is gone");
            return Ok(claim);
        }
        // Another process took it over first: look again.
    }
    Err(ClaimError::Contended { id: claim.id })
}

impl Claim {
    /// The gateway id claimed.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Whether a process of this machine runs under `pid`.
fn process_runs(pid: i32) -> bool {
    pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Extends the claim; `false` if another process has taken the id since
/// (this one's claim expired meanwhile, say while the database was away).
/// `wrote`: a body was committed through this gateway since the last renewal.
pub async fn renew(pool: &Pool, claim: &Claim, wrote: bool) -> Result<bool, PgError> {
    let ttl = CLAIM_TTL.as_secs_f64();
    let client = pool.get().await?;
    let renewed = client
        .execute(RENEW, &[&claim.id, &claim.host, &claim.pid, &ttl, &wrote])
        .await
        .map_err(|e| PgError::query("renewing the gateway id", &e))?;
    Ok(renewed == 1)
}

/// Gives the id up (clean stop): another gateway may take it at once.
pub async fn release(pool: &Pool, claim: &Claim) -> Result<(), PgError> {
    let client = pool.get().await?;
    client
        .execute(RELEASE, &[&claim.id, &claim.host, &claim.pid])
        .await
        .map_err(|e| PgError::query("releasing the gateway id", &e))?;
    Ok(())
}

/// Renews the claim every [`RENEW_EVERY`] until it is lost to another
/// process; then returns, and the gateway must stop using its folder.
/// A database that does not answer is retried: the claim stays this
/// process's until another one takes it. Each renewal also says whether
/// `last_change_ms` (the store's last committed body, ms) moved since the
/// last renewal that got through.
pub async fn keep(pool: Pool, claim: Claim, last_change_ms: impl Fn() -> i64) {
    let mut reported = last_change_ms();
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        let changed = last_change_ms();
        match renew(&pool, &claim, changed != reported).await {
            Ok(true) => reported = changed,
            Ok(false) => {
                tracing::error!(gateway_id = %claim.id, "another process took this gateway's id: stopping");
                return;
            }
            Err(e) => tracing::warn!(gateway_id = %claim.id, error = %e, "could not renew the gateway id; retrying"),
        }
    }
}
