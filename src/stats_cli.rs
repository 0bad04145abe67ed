//! `tessera stats`: what the store holds (`store/stats.rs`), read from a
//! stopped server's data folder, or asked of the running server that holds
//! it (its admin API, as `tessera user` does), or with `--meta` from the
//! database of gateways.

use clap::Args;
use http::Method;

use crate::admin::{ask_server, DataFolder};
use crate::s3::admin::STATS_PATH;
use crate::store::stats::Stats;

#[derive(Debug, Clone, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub at: DataFolder,
    /// Print one JSON object (the fields of the text form, and `dedup_ratio`).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: StatsArgs) -> anyhow::Result<()> {
    let at = &args.at;
    let stats: Stats = match at.server()? {
        Some(info) => serde_json::from_str(&ask_server(&at.data, &info, Method::GET, STATS_PATH, &[])?)?,
        None => at.offline(|s| Ok(s.stats()?))?,
    };
    let ratio = stats.dedup_ratio();
    if args.json {
        let mut doc = serde_json::to_value(&stats)?;
        if let Some(fields) = doc.as_object_mut() {
            fields.insert("dedup_ratio".into(), serde_json::json!(ratio));
        }
        println!("{doc}");
    } else {
        println!("objects:             {}", stats.objects);
        println!("noncurrent versions: {}", stats.noncurrent_versions);
        println!("delete markers:      {}", stats.delete_markers);
        println!("upload parts:        {}", stats.upload_parts);
        println!("logical bytes:       {}", stats.logical_bytes);
        println!("stored bytes:        {}", stats.stored_bytes);
        println!("distinct blobs:      {}", stats.distinct_blobs);
        println!("awaiting hashing:    {}", stats.unindexed_blobs);
        println!("dedup ratio:         {ratio:.3}");
    }
    Ok(())
}
