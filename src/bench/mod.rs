//! `tessera bench`: load an S3 endpoint, check every byte and ETag it returns,
//! and report MiB/s, ops/s, p50/p99 latency and errors, beside this machine's
//! own limits (MD5 on one core, disk write and read) measured in the same run.
//!
//! The client must not be the bottleneck: connections are pooled and kept
//! alive, bodies are zero-copy slices of one shared keystream ([`pattern`]),
//! reads are checked with `memcmp` as they arrive, and every expected MD5 is
//! computed before the clock starts. See docs/performance.md.

pub(crate) mod body;
pub(crate) mod client;
mod cpu;
mod dedup;
mod limits;
mod multipart;
mod ops;
mod pattern;
mod report;
mod run;
mod scenarios;
mod settings;
mod stats;
pub(crate) mod units;
pub(crate) mod xml;

use std::sync::Arc;

pub use settings::{BenchArgs, Scenario};

use self::client::S3;
use self::ops::{Obj, Target, MAX_BATCH};
use self::pattern::{phase_of, Content, Pattern};
use self::report::Row;
use self::run::Load;
use self::settings::Settings;
use self::stats::Phase;

/// Data for the machine-limit measurements.
const LIMIT_BYTES: u64 = 1 << 30;

/// Why the benchmark could not run at all (request failures are counted instead).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Args(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Client(#[from] client::Error),
}

/// Everything a scenario needs.
pub struct Ctx {
    pub target: Arc<Target>,
    /// Every key of this run starts with it: `tessera-bench-<run id>/`.
    pub prefix: String,
    pub seed: u64,
    pub settings: Settings,
}

impl Ctx {
    fn key(&self, group: &str, i: u64) -> String {
        format!("{}{group}/{i:08}", self.prefix)
    }

    /// The timed load: `--concurrency`, `--count`, `--duration`.
    fn load(&self) -> Load {
        let s = &self.settings;
        Load { concurrency: s.concurrency, count: s.count, duration: s.duration, server_pid: s.server_pid }
    }

    /// Set-up load: the same concurrency, never cut short.
    fn load_all(&self) -> Load {
        Load { duration: None, ..self.load() }
    }

    /// Objects `first..first + count` of `group`, MD5s included.
    async fn objects(&self, group: &str, first: u64, count: u64, size: u64) -> Arc<Vec<Obj>> {
        let contents: Vec<Content> =
            (first..first + count).map(|i| Content { phase: phase_of(self.seed, i), len: size }).collect();
        let md5s = self.md5s(contents.iter().map(|&c| (c, 0, size)).collect()).await;
        let objs = contents.into_iter().zip(md5s).zip(first..);
        Arc::new(objs.map(|((content, md5), i)| Obj { key: self.key(group, i), content, md5 }).collect())
    }

    /// MD5 of each `(content, offset, len)`, spread over every core, off the reactor.
    async fn md5s(&self, spans: Vec<(Content, u64, u64)>) -> Vec<[u8; 16]> {
        let pattern = self.target.pattern.clone();
        let again = spans.clone();
        let compute = move || {
            let threads = std::thread::available_parallelism().map_or(1, usize::from);
            let per_thread = spans.len().div_ceil(threads).max(1);
            let hash = |part: &[(Content, u64, u64)]| -> Vec<[u8; 16]> {
                part.iter().map(|(c, offset, len)| pattern.md5(c.phase, *offset, *len)).collect()
            };
            std::thread::scope(|scope| {
                let workers: Vec<_> = spans.chunks(per_thread).map(|part| (part, scope.spawn(|| hash(part)))).collect();
                workers.into_iter().flat_map(|(part, w)| w.join().unwrap_or_else(|_| hash(part))).collect()
            })
        };
        match tokio::task::spawn_blocking(compute).await {
            Ok(md5s) => md5s,
            // Only if the pool is gone: hash here rather than lose an object.
            Err(_) => again.iter().map(|(c, offset, len)| self.target.pattern.md5(c.phase, *offset, *len)).collect(),
        }
    }
}

/// The raw path `/bucket/key` as sent and signed (for `x-amz-copy-source`).
fn sigv4_path(bucket: &str, key: &str) -> String {
    format!("/{}/{}", crate::auth::sigv4::uri_encode(bucket, true), crate::auth::sigv4::uri_encode(key, false))
}

/// Runs the benchmark; `Ok(false)` when any request failed or any byte differed.
pub fn run(args: BenchArgs) -> Result<bool, BenchError> {
    let settings = Settings::resolve(&args).map_err(BenchError::Args)?;
    let limits = if args.no_limits {
        None
    } else {
        eprintln!("measuring machine limits in {} ...", args.disk_dir.display());
        Some(limits::measure(&args.disk_dir, LIMIT_BYTES)?)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut rows = runtime.block_on(run_scenario(&args, settings))?;
    let ok = rows.iter().all(|r| r.phase.errors == 0);
    let out = match args.json {
        true => report::json(&mut rows, limits.as_ref()),
        false => report::table(&mut rows, limits.as_ref()),
    };
    print!("{out}");
    Ok(ok)
}

async fn run_scenario(args: &BenchArgs, settings: Settings) -> Result<Vec<Row>, BenchError> {
    let s3 = S3::new(&args.endpoint, &args.access_key, &args.secret_key, &args.region)?;
    let run_id = hex::encode(random_bytes::<4>()?);
    let seed = u64::from_le_bytes(random_bytes::<8>()?);
    let fresh = args.bucket.is_none();
    let bucket = args.bucket.clone().unwrap_or_else(|| format!("tessera-bench-{run_id}"));
    let target = Arc::new(Target { s3, pattern: Arc::new(Pattern::new(seed)), bucket });
    target.create_bucket().await?;
    if settings.versioning {
        target.enable_versioning().await?;
    }
    let ctx = Ctx { target, prefix: format!("tessera-bench-{run_id}/"), seed, settings };
    eprintln!("{} on {} in bucket {} ...", args.scenario.name(), args.endpoint, ctx.target.bucket);
    let mut rows = match args.scenario {
        Scenario::Put => scenarios::put(&ctx).await,
        Scenario::Get => scenarios::get(&ctx).await,
        Scenario::Range => scenarios::range(&ctx).await,
        Scenario::Multipart => multipart::multipart(&ctx).await,
        Scenario::Small => scenarios::small(&ctx).await,
        Scenario::List => scenarios::list(&ctx).await,
        Scenario::Delete => scenarios::delete(&ctx).await,
        Scenario::Dedup => dedup::dedup(&ctx).await,
    };
    rows.extend(cleanup(&ctx, fresh).await);
    Ok(rows)
}

/// Deletes every key of this run, and the bucket if this run created it.
async fn cleanup(ctx: &Ctx, delete_bucket: bool) -> Vec<Row> {
    let began = std::time::Instant::now();
    let mut phase = Phase::default();
    let listed = match ctx.settings.versioning {
        true => ctx.target.list_versions(&ctx.prefix).await.map(|v| v.into_iter().map(|(k, v)| (k, Some(v))).collect()),
        false => ctx.target.list_all(&ctx.prefix).await.map(|keys| keys.into_iter().map(|k| (k, None)).collect()),
    };
    match listed {
        Ok(keys) => {
            let keys: Vec<(String, Option<String>)> = keys;
            for batch in keys.chunks(MAX_BATCH) {
                if let Err(e) = ctx.target.delete_versions(batch).await {
                    phase.fail(e.to_string());
                }
            }
        }
        Err(e) => phase.fail(e.to_string()),
    }
    if delete_bucket && phase.errors == 0 {
        if let Err(e) = ctx.target.delete_bucket().await {
            phase.fail(e.to_string());
        }
    }
    phase.elapsed = began.elapsed();
    scenarios::setup_row("clean-up", phase)
}

fn random_bytes<const N: usize>() -> Result<[u8; N], BenchError> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|e| BenchError::Io(std::io::Error::other(e)))?;
    Ok(bytes)
}
