//! `tessera migrate --meta URL`, and what `tessera serve --meta URL` does
//! while the PostgreSQL backend is being built (issue 17): it connects,
//! checks the schema version, and exits non-zero saying serving over
//! PostgreSQL is not implemented yet. Nothing pretends to serve.

use std::path::PathBuf;

use clap::Args;

use crate::config::{MetaUrl, ServeConfig};

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

/// `serve --meta`: the schema is checked, then the server refuses to go on.
#[cfg(feature = "postgres")]
pub fn serve(config: &ServeConfig, meta: &MetaUrl) -> anyhow::Result<()> {
    use crate::store::pg;
    tracing::info!(meta = %meta, meta_pool = config.meta_pool, gateway_id = config.gateway_id.as_deref().unwrap_or(""), "checking the metadata database");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let version = runtime.block_on(async {
        let pool = pool(meta, config.meta_ca.as_deref(), config.meta_pool.into())?;
        pg::check_schema(&pool).await
    })?;
    anyhow::bail!(
        "serving over PostgreSQL is not implemented yet (issue 17 in progress): the schema at {meta} is at \
         version {version} and ready, but this tessera cannot serve from it; serve without --meta to use the \
         embedded redb store (docs/scale-out.md)"
    )
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
pub fn serve(_config: &ServeConfig, _meta: &MetaUrl) -> anyhow::Result<()> {
    anyhow::bail!("this tessera was built without the `postgres` feature: --meta is not available")
}
