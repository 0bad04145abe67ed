//! Prometheus metrics, served at `GET /_tessera/metrics` (see
//! docs/operations.md for every name). prometheus-client keeps each metric
//! as atomics in its own registry (no global state); the server updates
//! them as requests end, and the figures that are not events (stored and
//! logical bytes, unfinished uploads, free disk space) are read when scraped.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::store::{Stats, Store};

/// The store's figures are recomputed at most this often: computing them
/// walks every record (`store/stats.rs`, about a second per million).
const STATS_MAX_AGE: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpStatus {
    op: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabel {
    op: &'static str,
}

/// Every metric of the server.
pub struct Metrics {
    registry: Registry,
    requests: Family<OpStatus, Counter>,
    seconds: Family<OpLabel, Histogram>,
    received: Family<OpLabel, Counter>,
    sent: Family<OpLabel, Counter>,
    in_flight: Gauge,
    store: StoreGauges,
    /// When the store's figures were last computed, and by whom.
    refreshed: Mutex<Option<Instant>>,
}

/// The figures read from the store when scraped.
#[derive(Default)]
struct StoreGauges {
    logical: Gauge,
    stored: Gauge,
    objects: Gauge,
    upload_parts: Gauge,
    upload_bytes: Gauge,
    free: Gauge,
}

fn latency_buckets() -> Histogram {
    // 0.5 ms to about 33 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 17))
}

impl Metrics {
    /// The registry with the server's metrics and the store's commit metrics.
    pub fn new(store: &Store) -> Metrics {
        let mut registry = Registry::with_prefix("tessera");
        let requests = Family::<OpStatus, Counter>::default();
        registry.register("requests", "Requests answered, by S3 operation and HTTP status", requests.clone());
        let seconds = Family::<OpLabel, Histogram>::new_with_constructor(latency_buckets as fn() -> Histogram);
        registry.register_with_unit(
            "request_duration",
            "Time from the request's head to the end of its response, by operation",
            Unit::Seconds,
            seconds.clone(),
        );
        let received = Family::<OpLabel, Counter>::default();
        registry.register_with_unit("received", "Request body bytes received", Unit::Bytes, received.clone());
        let sent = Family::<OpLabel, Counter>::default();
        registry.register_with_unit("sent", "Response body bytes sent", Unit::Bytes, sent.clone());
        let in_flight = Gauge::default();
        registry.register("requests_in_flight", "Requests being answered now", in_flight.clone());
        let commits = store.commit_metrics();
        registry.register("commit_batch_writes", "Writes per group commit", commits.batch_writes.clone());
        registry.register_with_unit(
            "commit_duration",
            "Time of one group commit, fsync included",
            Unit::Seconds,
            commits.seconds.clone(),
        );
        let store_gauges = StoreGauges::default();
        let g = &store_gauges;
        let gauges = [
            ("logical_bytes", "Bytes of every object, version and part, as clients wrote them", &g.logical),
            ("stored_bytes", "Bytes kept for them: each distinct blob once", &g.stored),
            ("objects", "Current objects", &g.objects),
            ("upload_parts", "Parts of multipart uploads not completed or aborted", &g.upload_parts),
            ("upload_bytes", "Bytes held by multipart uploads not completed or aborted", &g.upload_bytes),
            ("disk_free_bytes", "Free space of the data folder's file system", &g.free),
        ];
        for (name, help, gauge) in gauges {
            registry.register(name, format!("{help} (refreshed at most every minute)"), gauge.clone());
        }
        Metrics {
            registry,
            requests,
            seconds,
            received,
            sent,
            in_flight,
            store: store_gauges,
            refreshed: Mutex::new(None),
        }
    }

    /// A request started; the guard counts it in flight until dropped.
    pub fn started(self: &Arc<Self>) -> InFlight {
        self.in_flight.inc();
        InFlight(self.clone())
    }

    /// A request ended.
    pub fn ended(&self, op: &'static str, status: u16, elapsed: Duration, received: u64, sent: u64) {
        self.requests.get_or_create(&OpStatus { op, status }).inc();
        let label = OpLabel { op };
        self.seconds.get_or_create(&label).observe(elapsed.as_secs_f64());
        self.received.get_or_create(&label).inc_by(received);
        self.sent.get_or_create(&label).inc_by(sent);
    }

    /// The OpenMetrics text of every metric, the store's figures refreshed
    /// first if they are older than [`STATS_MAX_AGE`]. Blocks: call it off
    /// the async reactor.
    pub fn render(&self, store: &Store) -> String {
        self.refresh(store);
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::warn!(error = %e, "encoding the metrics failed");
        }
        text
    }

    fn refresh(&self, store: &Store) {
        let mut refreshed = self.refreshed.lock().unwrap_or_else(PoisonError::into_inner);
        if let Ok(free) = store.disk_free() {
            self.store.free.set(clamp(free));
        }
        if refreshed.is_some_and(|at| at.elapsed() < STATS_MAX_AGE) {
            return;
        }
        match store.stats() {
            Ok(stats) => {
                self.set_store(&stats);
                *refreshed = Some(Instant::now());
            }
            Err(e) => tracing::warn!(error = %e.chain(), "reading the store's figures for the metrics failed"),
        }
    }

    fn set_store(&self, stats: &Stats) {
        let g = &self.store;
        g.logical.set(clamp(stats.logical_bytes));
        g.stored.set(clamp(stats.stored_bytes));
        g.objects.set(clamp(stats.objects));
        g.upload_parts.set(clamp(stats.upload_parts));
        g.upload_bytes.set(clamp(stats.upload_bytes));
    }
}

fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A request in flight; dropping it ends that.
pub struct InFlight(Arc<Metrics>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}
