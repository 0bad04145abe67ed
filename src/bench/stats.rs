//! Latency samples and what one timed phase measured.

use std::time::Duration;

use super::cpu::CpuUse;

/// Every operation's latency, kept whole: a few hundred thousand samples at most,
/// and exact percentiles beat a histogram's buckets at this size.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    samples: Vec<Duration>,
    sorted: bool,
}

impl Latencies {
    pub fn record(&mut self, d: Duration) {
        self.samples.push(d);
        self.sorted = false;
    }

    pub fn merge(&mut self, other: Latencies) {
        self.samples.extend(other.samples);
        self.sorted = false;
    }

    /// Nearest-rank percentile: the smallest sample with at least `p` percent of
    /// the samples at or below it. `p` in (0, 100]; None without samples.
    pub fn percentile(&mut self, p: f64) -> Option<Duration> {
        if !self.sorted {
            self.samples.sort_unstable();
            self.sorted = true;
        }
        let n = self.samples.len();
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        self.samples.get(rank.clamp(1, n.max(1)) - 1).copied()
    }
}

/// What one timed phase did: successes, bytes moved, failures, wall time.
#[derive(Debug, Default)]
pub struct Phase {
    pub ops: u64,
    pub bytes: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub latencies: Latencies,
    /// The first few error messages, to print.
    pub messages: Vec<String>,
    /// CPU used meanwhile by the client and the server (timed phases only).
    pub cpu: CpuUse,
}

/// How many error messages a phase keeps.
pub const MAX_MESSAGES: usize = 5;

impl Phase {
    pub fn fail(&mut self, message: String) {
        self.errors += 1;
        if self.messages.len() < MAX_MESSAGES {
            self.messages.push(message);
        }
    }

    /// Adds another worker's counts (the wall time is the caller's).
    pub fn absorb(&mut self, other: Phase) {
        self.ops += other.ops;
        self.bytes += other.bytes;
        self.errors += other.errors;
        self.latencies.merge(other.latencies);
        for m in other.messages {
            if self.messages.len() < MAX_MESSAGES {
                self.messages.push(m);
            }
        }
    }

    pub fn ops_per_s(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.ops as f64 / secs
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn nearest_rank() {
        let mut l = Latencies::default();
        // Recorded out of order on purpose: percentiles must sort.
        for n in (1..=100).rev() {
            l.record(ms(n));
        }
        assert_eq!(l.percentile(50.0), Some(ms(50)));
        assert_eq!(l.percentile(99.0), Some(ms(99)));
        assert_eq!(l.percentile(100.0), Some(ms(100)));
        assert_eq!(l.percentile(0.1), Some(ms(1)));
    }

    #[test]
    fn small_and_empty() {
        let mut l = Latencies::default();
        assert_eq!(l.percentile(50.0), None);
        l.record(ms(7));
        assert_eq!(l.percentile(50.0), Some(ms(7)));
        assert_eq!(l.percentile(99.0), Some(ms(7)));
        l.record(ms(3));
        // Two samples: p50 is the lower one, p99 the upper one.
        assert_eq!(l.percentile(50.0), Some(ms(3)));
        assert_eq!(l.percentile(99.0), Some(ms(7)));
    }

    #[test]
    fn merge_and_absorb() {
        let mut a = Phase::default();
        let mut b = Phase::default();
        a.latencies.record(ms(10));
        b.latencies.record(ms(1));
        b.ops = 2;
        b.bytes = 5;
        for i in 0..10 {
            b.fail(format!("e{i}"));
        }
        a.absorb(b);
        assert_eq!((a.ops, a.bytes, a.errors, a.messages.len()), (2, 5, 10, MAX_MESSAGES));
        assert_eq!(a.latencies.percentile(50.0), Some(ms(1)));
        a.elapsed = Duration::from_secs(2);
        assert!((a.ops_per_s() - 1.0).abs() < 1e-9);
    }
}
