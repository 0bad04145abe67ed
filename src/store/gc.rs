//! The background sweep for orphaned blob files: a crash between a blob's
//! rename and the commit that references it leaves a file nothing points to.
//! It runs after start-up so serving never waits for it, and only considers
//! files older than the sweep itself, so in-flight uploads are never touched.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::Store;

/// Aborts multipart uploads older than `max_age` (or than their bucket's
/// lifecycle rule), forever, on its own thread. It checks four times per
/// `max_age` (at least every second, at most every ten minutes).
pub fn spawn_upload_reaper(store: Arc<Store>, max_age: Duration) {
    let period = upload_expiry_period(max_age);
    let spawned = std::thread::Builder::new().name("upload-reaper".into()).spawn(move || loop {
        std::thread::sleep(period);
        upload_expiry_pass(&store, max_age);
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start the stale upload reaper");
    }
}

/// How often uploads older than `max_age` are looked for.
pub(crate) fn upload_expiry_period(max_age: Duration) -> Duration {
    (max_age / 4).clamp(Duration::from_secs(1), Duration::from_secs(600))
}

/// One pass of the upload reaper; logs what it did. Blocking.
pub(crate) fn upload_expiry_pass(store: &Store, max_age: Duration) {
    if let Err(e) = reap_uploads(store, max_age) {
        tracing::warn!(error = %e.chain(), "aborting stale uploads failed");
    }
}

fn reap_uploads(store: &Store, max_age: Duration) -> Result<(), super::StoreError> {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let now_ms = i64::try_from(now.as_millis()).unwrap_or(i64::MAX);
    let max_age_ms = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
    for (bucket, key, id) in store.expired_uploads(now_ms, max_age_ms)? {
        match store.abort_upload(&bucket, &key, &id) {
            Ok(()) => tracing::info!(%bucket, %key, upload_id = %id, "aborted stale multipart upload"),
            // Completed or aborted by a client (or another gateway) meanwhile.
            Err(super::StoreError::NoSuchUpload) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Applies the buckets' lifecycle expiry rules (`lifecycle.rs`), forever, on
/// its own thread, 24 times per lifecycle day (at least every second, at
/// most every ten minutes). `day` is one real day except in tests.
pub fn spawn_lifecycle_reaper(store: Arc<Store>, day: Duration) {
    let period = lifecycle_period(day);
    let spawned = std::thread::Builder::new().name("lifecycle".into()).spawn(move || loop {
        std::thread::sleep(period);
        lifecycle_pass(&store, day);
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start the lifecycle reaper");
    }
}

/// How often lifecycle rules are applied, for a lifecycle day of `day`.
pub(crate) fn lifecycle_period(day: Duration) -> Duration {
    (day / 24).clamp(Duration::from_secs(1), Duration::from_secs(600))
}

/// One lifecycle pass; logs what it did. Blocking.
pub(crate) fn lifecycle_pass(store: &Store, day: Duration) {
    let day_ms = i64::try_from(day.as_millis()).unwrap_or(i64::MAX).max(1);
    match store.apply_lifecycle(super::now_ms(), day_ms) {
        Ok(report) if report == super::ExpiryReport::default() => {}
        Ok(report) => tracing::info!(
            expired = report.expired,
            markers_removed = report.markers_removed,
            noncurrent_removed = report.noncurrent_removed,
            "lifecycle rules applied"
        ),
        Err(e) => tracing::warn!(error = %e.chain(), "applying lifecycle rules failed"),
    }
}

pub fn spawn_orphan_sweep(store: Arc<Store>) {
    let started = SystemTime::now();
    let spawned = std::thread::Builder::new().name("orphan-sweep".into()).spawn(move || match sweep(&store, started) {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "removed orphaned blob files"),
        Err(e) => tracing::warn!(error = %e.chain(), "orphan sweep failed"),
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start the orphan sweep");
    }
}

/// How much older than the sweep a file must be. File times come from the
/// kernel's coarse clock, a few ms behind `SystemTime::now`: a body written
/// just after start-up must never look older than the sweep, or its file
/// could be removed while its commit is on the way.
const MTIME_SLACK: Duration = Duration::from_secs(2);

fn sweep(store: &Store, started: SystemTime) -> Result<usize, super::StoreError> {
    let started = started.checked_sub(MTIME_SLACK).unwrap_or(SystemTime::UNIX_EPOCH);
    let mut removed = 0;
    for id in store.layout().all_blob_ids()? {
        let path = store.layout().blob_path(id);
        let Ok(modified) = path.metadata().and_then(|m| m.modified()) else { continue };
        // A backup may still copy a blob deleted since its snapshot (backup.rs).
        if modified < started && !store.blob_is_referenced(id)? && store.unlink_gate.open() {
            std::fs::remove_file(&path)?;
            removed += 1;
        }
    }
    Ok(removed)
}
