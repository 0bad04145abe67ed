//! Progress: a bar with bytes, rate and ETA on a terminal; otherwise quiet,
//! machine-readable lines on stdout, one per finished part and a summary:
//!
//! ```text
//! part n=3 bytes=5242880 how=sent
//! done bytes=26214400 sent=15728640 parts=5 skipped_parts=2 instant_parts=0 resumed_parts=2 restarts=0 seconds=1.20 etag=..
//! ```
//!
//! `sent` counts body bytes that went over the wire in this run (received,
//! for a download); `skipped_parts` the parts that did not: `resumed_parts`
//! (finished by an earlier run) plus `instant_parts` (held by the server,
//! answered before their body).

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

/// What became of one part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// Its bytes went over the wire.
    Sent,
    /// The server had the content: no body sent.
    Instant,
    /// An earlier run finished it.
    Resumed,
}

impl How {
    fn name(self) -> &'static str {
        match self {
            How::Sent => "sent",
            How::Instant => "instant",
            How::Resumed => "resumed",
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub sent: u64,
    pub parts: u64,
    pub instant: u64,
    pub resumed: u64,
    pub restarts: u64,
}

pub struct Progress {
    bar: Option<ProgressBar>,
    start: Instant,
    counts: Mutex<Counts>,
}

impl Progress {
    /// A bar when stdout is a terminal, else machine lines.
    pub fn new(total: u64) -> Progress {
        let bar = std::io::stdout().is_terminal().then(|| {
            let style =
                ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
            ProgressBar::new(total).with_style(style)
        });
        Progress { bar, start: Instant::now(), counts: Mutex::new(Counts::default()) }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Counts) -> R) -> R {
        f(&mut self.counts.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The object's size, once known.
    pub fn set_total(&self, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
        }
    }

    /// The object's size is known again (a restarted download).
    pub fn restart(&self, total: u64) {
        self.with(|c| *c = Counts { restarts: c.restarts + 1, ..Counts::default() });
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(0);
        }
    }

    /// Part `n` (1-based) of `bytes` is finished.
    pub fn part(&self, n: u64, bytes: u64, how: How) {
        self.with(|c| {
            c.parts += 1;
            match how {
                How::Sent => c.sent += bytes,
                How::Instant => c.instant += 1,
                How::Resumed => c.resumed += 1,
            }
        });
        match &self.bar {
            Some(bar) => bar.inc(bytes),
            None => line(&format!("part n={n} bytes={bytes} how={}", how.name())),
        }
    }

    pub fn counts(&self) -> Counts {
        self.with(|c| *c)
    }

    /// The summary line (machine) or a sentence (terminal).
    /// The summary; `verified` names what the data was checked by
    /// (`sha256`, `etag+sha256`, `etag` or `size`).
    pub fn finish(&self, bytes: u64, etag: &str, verified: &str) {
        let c = self.counts();
        let seconds = self.start.elapsed().as_secs_f64();
        let skipped = c.instant + c.resumed;
        match &self.bar {
            Some(bar) => {
                bar.finish_and_clear();
                let rate = crate::bench::units::mib_per_s(bytes, seconds);
                line(&format!(
                    "{bytes} bytes in {seconds:.1} s ({rate:.1} MiB/s); {} parts, {skipped} not sent \
                     ({} already on the server, {} resumed); ETag {etag}, checked by {verified}",
                    c.parts, c.instant, c.resumed
                ));
            }
            None => line(&format!(
                "done bytes={bytes} sent={} parts={} skipped_parts={skipped} instant_parts={} resumed_parts={} \
                 restarts={} seconds={seconds:.2} etag={etag} verified={verified}",
                c.sent, c.parts, c.instant, c.resumed, c.restarts
            )),
        }
    }

    /// Clears the bar before a message on stderr.
    pub fn abandon(&self) {
        if let Some(bar) = &self.bar {
            bar.abandon();
        }
    }
}

fn line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}
