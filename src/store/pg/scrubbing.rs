//! The background scrub over a shared database (`scrub.rs` walks and
//! checks): one pass every `--scrub-interval` across all the gateways, run
//! by the holder of the `scrub` lease. The holder saves where the pass is
//! (a [`Position`]) in the lease's `cursor` after each batch, which also
//! renews the lease; during long files it renews every [`RENEW`]. A holder
//! killed mid-pass loses the lease when it expires, and whichever gateway
//! takes it next resumes from the last saved batch. When a pass ends, the
//! cursor says when, so the other gateways wait out the interval too.
//!
//! Each gateway logs the corruption its own part of a pass found, at error
//! level, as on one node.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{lease, PgError, Pool};
use crate::store::scrub::{self, Position, Scrubber, Stepped};
use crate::store::{now_ms, Store};

/// The lease's name.
const SCRUB: &str = "scrub";
/// How often a gateway asks whether a pass is due (or was left by a
/// gateway that died).
const POLL: Duration = Duration::from_secs(60);
/// How often a pass renews its lease while reading, well within
/// [`lease::LEASE_TTL`].
const RENEW: Duration = Duration::from_secs(10);

/// What the lease's cursor holds: a tag byte, then the value (a
/// [`Position`] in postcard: a change to its fields needs a new tag).
#[derive(Debug, PartialEq)]
enum Cursor {
    /// A pass is under way; its next batch starts here.
    Pass(Position),
    /// The last pass ended then (ms since the epoch, the ending gateway's clock).
    Finished { at_ms: i64 },
}

impl Cursor {
    fn encode(&self) -> Vec<u8> {
        match self {
            // Owned strings and byte vectors always encode.
            Cursor::Pass(at) => [b"P".as_slice(), &postcard::to_allocvec(at).unwrap_or_default()].concat(),
            Cursor::Finished { at_ms } => [b"F".as_slice(), &at_ms.to_be_bytes()].concat(),
        }
    }

    /// `None` for anything else (a pass then starts from the beginning).
    fn decode(bytes: &[u8]) -> Option<Cursor> {
        match bytes.split_first()? {
            (b'P', rest) => postcard::from_bytes(rest).ok().map(Cursor::Pass),
            (b'F', rest) => Some(Cursor::Finished { at_ms: i64::from_be_bytes(rest.try_into().ok()?) }),
            _ => None,
        }
    }
}

/// The scrub lease as its own thread uses it: blocking calls on the
/// gateway's runtime.
struct ScrubLease {
    runtime: tokio::runtime::Handle,
    pool: Pool,
    holder: String,
    stopped: Arc<AtomicBool>,
    renewed: Cell<Instant>,
}

impl ScrubLease {
    fn take(&self) -> Result<bool, PgError> {
        let taken = self.runtime.block_on(lease::take(&self.pool, SCRUB, &self.holder))?;
        self.renewed.set(Instant::now());
        Ok(taken)
    }

    /// Whether the pass may go on: not once the gateway stops or the lease
    /// is lost (renewed every [`RENEW`]).
    fn keep(&self) -> bool {
        if self.stopped.load(Ordering::Relaxed) {
            return false;
        }
        if self.renewed.get().elapsed() < RENEW {
            return true;
        }
        self.take().unwrap_or_else(|e| {
            tracing::warn!(chore = SCRUB, error = %e, "could not renew the chore's lease");
            false
        })
    }

    fn cursor(&self) -> Result<Option<Cursor>, PgError> {
        let saved = self.runtime.block_on(lease::cursor(&self.pool, SCRUB))?;
        Ok(saved.as_deref().and_then(Cursor::decode))
    }

    /// Saves the cursor and renews the lease; `false` if it was lost.
    fn save(&self, cursor: &Cursor) -> Result<bool, PgError> {
        let saved = self.runtime.block_on(lease::save_cursor(&self.pool, SCRUB, &self.holder, &cursor.encode()))?;
        self.renewed.set(Instant::now());
        Ok(saved)
    }
}

/// Starts the scrub thread of the gateway `holder`: it first asks after
/// `interval` or ten minutes, whichever is sooner, as on one node.
pub(super) fn spawn(
    store: Arc<Store>,
    pool: Pool,
    holder: &str,
    interval: Duration,
    rate: u64,
    stopped: Arc<AtomicBool>,
) {
    let renewed = Cell::new(Instant::now());
    let runtime = tokio::runtime::Handle::current();
    let holder = holder.to_string();
    let spawned = std::thread::Builder::new().name("scrub".into()).spawn(move || {
        let lease = ScrubLease { runtime, pool, holder, stopped, renewed };
        std::thread::sleep(scrub::first_pass_after(interval));
        while !lease.stopped.load(Ordering::Relaxed) {
            if let Err(e) = scrub_if_due(&store, &lease, interval, rate) {
                tracing::warn!(chore = SCRUB, error = %format!("{e:#}"), "background scrub failed; resumed later");
            }
            std::thread::sleep(interval.min(POLL));
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start the background scrub");
    }
}

/// Runs (or resumes) a pass if this gateway gets the lease and none ended
/// within `interval`; stops at the end, or when the lease is lost.
fn scrub_if_due(store: &Store, lease: &ScrubLease, interval: Duration, rate: u64) -> anyhow::Result<()> {
    if !lease.take()? {
        return Ok(());
    }
    let at = match lease.cursor()? {
        Some(Cursor::Finished { at_ms }) if now_ms().saturating_sub(at_ms) < interval_ms(interval) => return Ok(()),
        Some(Cursor::Pass(at)) => at,
        _ => Position::start(),
    };
    tracing::info!(chore = SCRUB, resumed = at != Position::start(), "scrub pass starts");
    let mut scrubber = Scrubber::new(store, store.layout(), Some(rate), Box::new(|| lease.keep()));
    let walked = walk(&mut scrubber, lease, at);
    // What this gateway found is logged even if the pass stopped early.
    scrub::log_pass(&scrubber.into_report());
    walked
}

/// Steps through the pass from `at`, saving the cursor after each batch.
fn walk(scrubber: &mut Scrubber<Store>, lease: &ScrubLease, mut at: Position) -> anyhow::Result<()> {
    loop {
        match scrubber.step(&at)? {
            Stepped::Next(next) => {
                if !lease.save(&Cursor::Pass(next.clone()))? {
                    return Ok(());
                }
                at = next;
            }
            Stepped::End => {
                lease.save(&Cursor::Finished { at_ms: now_ms() })?;
                return Ok(());
            }
            Stepped::Interrupted => return Ok(()),
        }
    }
}

fn interval_ms(interval: Duration) -> i64 {
    i64::try_from(interval.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_back_and_unknown_bytes_start_over() {
        for cursor in [Cursor::Pass(Position::start()), Cursor::Finished { at_ms: 1_700_000_000_000 }] {
            assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        }
        assert_eq!(Cursor::decode(b""), None);
        assert_eq!(Cursor::decode(b"F123"), None, "a time of the wrong length");
        assert_eq!(Cursor::decode(b"P\x09junk"), None, "not a position");
    }
}
