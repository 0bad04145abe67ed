//! `tessera migrate --meta URL`, the other commands' `--meta` (scrub,
//! user, stats), and how `tessera serve --meta URL` opens
//! its store: it checks the schema version, claims the gateway's id in the
//! database (`store::pg::gateway`), then opens the shared data folder in
//! the gateway's own place (docs/scale-out.md).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;

use crate::config::{MetaUrl, ServeConfig};
use crate::store::scrub::ScrubReport;
use crate::store::Store;

#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// The metadata database: `postgres://USER[:PASSWORD]@HOST:PORT/DB`.
    #[arg(long, env = "TESSERA_META", hide_env_values = true, value_name = "URL", value_parser = crate::config::parse_meta_url)]
    pub meta: MetaUrl,
    /// PEM file of the CAs that sign the database's certificate (default:
    /// the system's CAs).
    #[arg(long, value_name = "FILE")]
    pub meta_ca: Option<PathBuf>,
}

/// Creates or upgrades the schema and prints what it found and did.
#[cfg(feature = "postgres")]
pub fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    use crate::store::pg;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let report = runtime.block_on(async {
        let pool = pool(&args.meta, args.meta_ca.as_deref(), 1)?;
        pg::migrate(&pool).await
    })?;
    println!("{report}");
    Ok(())
}

/// `tessera scrub --meta URL --data DIR`: one pass over the blobs the
/// database names, in the shared folder `data`, beside running gateways
/// (it only reads).
pub fn scrub(meta: &MetaUrl, ca: Option<&Path>, data: &Path) -> anyhow::Result<ScrubReport> {
    if !data.join("blobs").is_dir() {
        anyhow::bail!("not a blob folder of gateways (no blobs/ in it)");
    }
    with_metadata_store(meta, ca, data, |store| Ok(crate::store::scrub::scrub_pass(store, store.layout(), None)?))
}

/// `tessera backup --meta URL --data DIR`: the tables and the blob files
/// of gateways, beside them (`store/pg/backup.rs`).
pub fn backup(
    meta: &MetaUrl,
    ca: Option<&Path>,
    data: &Path,
    out: &Path,
) -> anyhow::Result<crate::store::BackupReport> {
    if !data.join("blobs").is_dir() {
        anyhow::bail!("{} is not a blob folder of gateways (no blobs/ in it)", data.display());
    }
    with_metadata_store(meta, ca, data, |store| Ok(store.backup(out)?))
}

#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// The database to load the backup into: it must hold no Tessera data
    /// and run no gateway; its schema is created if missing.
    #[arg(long, env = "TESSERA_META", hide_env_values = true, value_name = "URL", value_parser = crate::config::parse_meta_url)]
    pub meta: MetaUrl,
    /// PEM file of the CAs that sign the database's certificate (default:
    /// the system's CAs).
    #[arg(long, value_name = "FILE")]
    pub meta_ca: Option<PathBuf>,
    /// The folder `tessera backup --meta` wrote. It holds the blob files:
    /// serve it afterwards (`tessera serve --meta URL --data BACKUP`), or
    /// move it where the gateways' folder goes.
    #[arg(long, value_name = "BACKUP")]
    pub from: PathBuf,
}

/// `tessera restore`: loads a backup of gateways into an empty database.
#[cfg(feature = "postgres")]
pub fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    use crate::store::pg;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let report = runtime.block_on(async {
        let pool = pool(&args.meta, args.meta_ca.as_deref(), 1)?;
        anyhow::Ok(pg::backup::restore(&pool, &args.from).await?)
    })?;
    println!(
        "Restored {} into the database at {}: {} tables, {} rows, {} objects. Serve it: \
         tessera serve --meta URL --data {}",
        args.from.display(),
        args.meta,
        report.tables,
        report.rows,
        report.objects,
        args.from.display()
    );
    Ok(())
}

#[cfg(not(feature = "postgres"))]
pub fn restore(_args: RestoreArgs) -> anyhow::Result<()> {
    anyhow::bail!("this tessera was built without the `postgres` feature: `tessera restore` is not available")
}

/// Runs `f` on a store over the database `meta` that only reads and
/// changes metadata (`tessera user`, `tessera stats` and `tessera scrub`
/// with `--meta`) or copies it (`tessera backup --meta`), on a runtime of
/// its own, with two connections (a backup's snapshot and its hold).
#[cfg(feature = "postgres")]
pub fn with_metadata_store<T>(
    meta: &MetaUrl,
    ca: Option<&Path>,
    data: &Path,
    f: impl FnOnce(&Store) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    use crate::store::pg::{self, txn::PgContext, RetryPolicy};
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let pool = runtime.block_on(async {
        let pool = pool(meta, ca, 2)?;
        pg::check_schema(&pool).await.map(|_| pool)
    })?;
    let ctx = PgContext { pool, runtime: runtime.handle().clone(), policy: RetryPolicy::default() };
    f(&Store::open_postgres_metadata(data, ctx))
}

/// A store over a shared metadata database, and this gateway's claim on
/// its id there.
pub struct Gateway {
    pub store: Arc<Store>,
    #[cfg(feature = "postgres")]
    pool: crate::store::pg::Pool,
    #[cfg(feature = "postgres")]
    claim: crate::store::pg::gateway::Claim,
    #[cfg(feature = "postgres")]
    chores: crate::store::pg::chores::Running,
}

/// `serve --meta`: checks the schema, claims the gateway id (`--gateway-id`,
/// or this machine's name and `port`), and opens the store. Call from
/// within the server's multi-threaded runtime: the store's statements run
/// on it.
#[cfg(feature = "postgres")]
pub async fn open_gateway(config: &ServeConfig, meta: &MetaUrl, port: u16) -> anyhow::Result<Gateway> {
    use crate::store::pg::{self, chores, gateway, txn::PgContext, RetryPolicy};
    use anyhow::Context;
    let id = config.gateway_id.clone().unwrap_or_else(|| gateway::default_id(port));
    tracing::info!(meta = %meta, meta_pool = config.meta_pool, gateway_id = %id, "checking the metadata database");
    let pool = pool(meta, config.meta_ca.as_deref(), config.meta_pool.into())?;
    let version = pg::check_schema(&pool).await?;
    let claim = gateway::claim(&pool, &id).await?;
    tracing::info!(schema_version = version, gateway_id = %id, "gateway id claimed");
    let ctx =
        PgContext { pool: pool.clone(), runtime: tokio::runtime::Handle::current(), policy: RetryPolicy::default() };
    let (data, gateway_id) = (config.data.clone(), id.clone());
    let opened = tokio::task::spawn_blocking(move || Store::open_postgres(&data, &gateway_id, ctx)).await?;
    let store = opened.with_context(|| format!("opening data folder {}", config.data.display()))?;
    let settings = chores::ChoreSettings {
        unlink_grace: config.unlink_grace,
        orphan_grace: config.orphan_grace,
        abort_incomplete_after: config.abort_incomplete_after,
        lifecycle_day: config.lifecycle_day,
        hash_after_idle: config.hash_after_idle,
        scrub_interval: config.scrub_interval,
        scrub_rate: config.scrub_rate,
    };
    let chores = chores::spawn(store.clone(), pool.clone(), &id, settings);
    Ok(Gateway { store, pool, claim, chores })
}

#[cfg(feature = "postgres")]
impl Gateway {
    /// The id this gateway claimed.
    pub fn id(&self) -> &str {
        self.claim.id()
    }

    /// Resolves if another process takes this gateway's id (its claim
    /// expired): the gateway must then stop.
    pub async fn lost(&self) {
        let store = self.store.clone();
        crate::store::pg::gateway::keep(self.pool.clone(), self.claim.clone(), move || store.last_change_ms()).await
    }

    /// Stops the background chores and gives the id up at a clean stop.
    pub async fn release(&self) {
        if let Err(e) = self.chores.stop().await {
            tracing::warn!(gateway_id = %self.id(), error = %e, "could not release the chores' leases");
        }
        if let Err(e) = crate::store::pg::gateway::release(&self.pool, &self.claim).await {
            tracing::warn!(gateway_id = %self.id(), error = %e, "could not release the gateway id");
        }
    }
}

#[cfg(feature = "postgres")]
fn pool(
    meta: &MetaUrl,
    ca: Option<&std::path::Path>,
    size: usize,
) -> Result<crate::store::pg::Pool, crate::store::pg::PgError> {
    use crate::store::pg::{MetaTarget, Pool, PoolOptions};
    let target = MetaTarget::from_env(&meta.0)?;
    Pool::new(target, ca, PoolOptions { size, ..PoolOptions::default() })
}

#[cfg(not(feature = "postgres"))]
pub fn migrate(_args: MigrateArgs) -> anyhow::Result<()> {
    anyhow::bail!("this tessera was built without the `postgres` feature: `tessera migrate` is not available")
}

#[cfg(not(feature = "postgres"))]
pub fn with_metadata_store<T>(
    _meta: &MetaUrl,
    _ca: Option<&Path>,
    _data: &Path,
    _f: impl FnOnce(&Store) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    anyhow::bail!("this tessera was built without the `postgres` feature: --meta is not available")
}

#[cfg(not(feature = "postgres"))]
pub async fn open_gateway(_config: &ServeConfig, _meta: &MetaUrl, _port: u16) -> anyhow::Result<Gateway> {
    anyhow::bail!("this tessera was built without the `postgres` feature: --meta is not available")
}

#[cfg(not(feature = "postgres"))]
impl Gateway {
    pub async fn lost(&self) {
        std::future::pending().await
    }

    pub async fn release(&self) {}
}
