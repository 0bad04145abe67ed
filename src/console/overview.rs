//! `GET /api/overview`: the buckets the user owns (root: all) with their
//! current objects and bytes, the unfinished uploads in them, and, for
//! root only, what `tessera stats` reports for the whole server. A user
//! learns nothing of other users' buckets, not even the server's totals.

use http::StatusCode;
use serde_json::json;

use super::api::Identity;
use super::reply::{self, ApiError, ApiResult};
use super::Console;
use crate::store::stats::{BucketUsage, Stats, UploadUsage};
use crate::store::StoreError;

/// How long a request waits for the walk another one is running.
const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

pub async fn handle(console: &Console, who: &Identity) -> ApiResult {
    // One walk at a time: each reads every object row of the buckets, and
    // many at once would hold the store's blocking threads.
    let busy = || ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the overview is busy; try again");
    let permit = tokio::time::timeout(WAIT, console.overview_walks.acquire()).await.map_err(|_| busy())?;
    let _permit = permit.map_err(|_| busy())?;
    let owner = who.canonical_id.clone();
    let root = who.is_root();
    let walk = move |s: &crate::store::Store| -> Result<_, StoreError> {
        let names: Vec<String> = s.list_buckets(owner.as_deref())?.into_iter().map(|(name, _)| name).collect();
        let (buckets, uploads) = s.usage(&names)?;
        let stats = if root { Some(s.stats()?) } else { None };
        Ok((buckets, uploads, stats))
    };
    let (buckets, uploads, stats) =
        console.app.store.run(walk).await.map_err(|e: StoreError| ApiError::internal(crate::store::Chain(&e)))?;
    Ok(reply::json(StatusCode::OK, &document(&buckets, &uploads, stats.as_ref())))
}

fn document(buckets: &[BucketUsage], uploads: &UploadUsage, stats: Option<&Stats>) -> serde_json::Value {
    let storage = match stats {
        Some(stats) => json!({
            "logical_bytes": stats.logical_bytes,
            "stored_bytes": stats.stored_bytes,
            "dedup_ratio": stats.dedup_ratio(),
        }),
        None => json!({
            "logical_bytes": buckets.iter().map(|b| b.bytes).sum::<u64>(),
            "stored_bytes": null,
            "dedup_ratio": null,
        }),
    };
    json!({ "buckets": buckets, "uploads": uploads, "storage": storage })
}
