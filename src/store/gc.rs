//! The background sweep for orphaned blob files: a crash between a blob's
//! rename and the commit that references it leaves a file nothing points to.
//! It runs after start-up so serving never waits for it, and only considers
//! files older than the sweep itself, so in-flight uploads are never touched.

use std::sync::Arc;
use std::time::SystemTime;

use super::Store;

pub fn spawn_orphan_sweep(store: Arc<Store>) {
    let started = SystemTime::now();
    let spawned = std::thread::Builder::new().name("orphan-sweep".into()).spawn(move || match sweep(&store, started) {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "removed orphaned blob files"),
        Err(e) => tracing::warn!(error = %e, "orphan sweep failed"),
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start the orphan sweep");
    }
}

fn sweep(store: &Store, started: SystemTime) -> Result<usize, super::StoreError> {
    let mut removed = 0;
    for id in store.layout().all_blob_ids()? {
        let path = store.layout().blob_path(id);
        let Ok(modified) = path.metadata().and_then(|m| m.modified()) else { continue };
        if modified < started && !store.blob_is_referenced(id)? {
            std::fs::remove_file(&path)?;
            removed += 1;
        }
    }
    Ok(removed)
}
