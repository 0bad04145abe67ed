//! The load driver: `concurrency` workers take job numbers from one counter
//! until `count` jobs have started or the duration cap has passed.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::client::Error;
use super::cpu::CpuMeter;
use super::stats::Phase;

/// How much load: jobs in flight, jobs in all, and an optional time cap.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub concurrency: usize,
    pub count: u64,
    pub duration: Option<Duration>,
    /// The server's process id, to measure its CPU time (same machine only).
    pub server_pid: Option<u32>,
}

/// Runs jobs `0..count`; each job returns the bytes it moved. Timed from the
/// first start to the last finish; every failure is counted, none stops the run.
pub async fn run_jobs<F, Fut>(load: Load, job: F) -> Phase
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<u64, Error>> + Send + 'static,
{
    let job = Arc::new(job);
    let next = Arc::new(AtomicU64::new(0));
    let meter = CpuMeter::start(load.server_pid);
    let start = Instant::now();
    let deadline = load.duration.map(|d| start + d);
    let mut workers = JoinSet::new();
    for _ in 0..load.concurrency.max(1) {
        let (job, next) = (job.clone(), next.clone());
        workers.spawn(async move {
            let mut phase = Phase::default();
            while deadline.is_none_or(|d| Instant::now() < d) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= load.count {
                    break;
                }
                let began = Instant::now();
                match job(i).await {
                    Ok(bytes) => {
                        phase.latencies.record(began.elapsed());
                        phase.ops += 1;
                        phase.bytes += bytes;
                    }
                    Err(e) => phase.fail(e.to_string()),
                }
            }
            phase
        });
    }
    let mut total = Phase::default();
    while let Some(worker) = workers.join_next().await {
        match worker {
            Ok(phase) => total.absorb(phase),
            Err(e) => total.fail(format!("worker stopped: {e}")),
        }
    }
    total.elapsed = start.elapsed();
    total.cpu = meter.stop();
    total
}

/// Times one future as a phase of one operation.
pub async fn run_once<Fut>(fut: Fut) -> Phase
where
    Fut: Future<Output = Result<u64, Error>>,
{
    let began = Instant::now();
    let mut phase = Phase::default();
    match fut.await {
        Ok(bytes) => {
            phase.latencies.record(began.elapsed());
            phase.ops = 1;
            phase.bytes = bytes;
        }
        Err(e) => phase.fail(e.to_string()),
    }
    phase.elapsed = began.elapsed();
    phase
}
