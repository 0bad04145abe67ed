//! The scenarios other than multipart: what is set up (not timed), what is
//! timed, and the rows they report.

use std::sync::Arc;
use std::time::Instant;

use super::client::Error;
use super::cpu::CpuMeter;
use super::ops::{Obj, MAX_BATCH};
use super::pattern::splitmix64;
use super::report::{ms, Basis, Row};
use super::run::{run_jobs, run_once, Load};
use super::stats::Phase;
use super::units::format_size;
use super::Ctx;

/// Full listings timed in the list scenario; the median is reported.
const LIST_PASSES: usize = 5;

pub async fn put(ctx: &Ctx) -> Vec<Row> {
    let s = &ctx.settings;
    let objs = ctx.objects("put", 0, s.count, s.size).await;
    let phase = upload(ctx, objs, ctx.load()).await;
    vec![Row::new(format!("put {} x {} c{}", s.count, format_size(s.size), s.concurrency), phase, true, Basis::Write)]
}

pub async fn get(ctx: &Ctx) -> Vec<Row> {
    let s = &ctx.settings;
    let objs = ctx.objects("get", 0, s.count, s.size).await;
    let mut rows = setup_row("get: upload", upload(ctx, objs.clone(), ctx.load_all()).await);
    let phase = download(ctx, objs, ctx.load()).await;
    let name = format!("get {} x {} c{}", s.count, format_size(s.size), s.concurrency);
    rows.push(Row::new(name, phase, true, Basis::DiskRead));
    rows
}

pub async fn range(ctx: &Ctx) -> Vec<Row> {
    let s = &ctx.settings;
    let objs = ctx.objects("range", 0, 1, s.size).await;
    let Some(obj) = objs.first().cloned() else { return Vec::new() };
    let mut rows = setup_row("range: upload", run_once(ctx.target.put(&obj)).await);
    let (target, seed, len) = (ctx.target.clone(), ctx.seed, s.range_size);
    let span = s.size - len + 1;
    let obj = Arc::new(obj);
    let phase = run_jobs(ctx.load(), move |i| {
        let (target, obj) = (target.clone(), obj.clone());
        let mut state = seed ^ i;
        let start = splitmix64(&mut state) % span;
        async move { target.get(&obj.key, obj.content, Some((start, len))).await }
    })
    .await;
    let name = format!("range {} of {} c{}", format_size(len), format_size(s.size), s.concurrency);
    rows.push(Row::new(name, phase, true, Basis::DiskRead));
    rows
}

pub async fn small(ctx: &Ctx) -> Vec<Row> {
    let s = &ctx.settings;
    let objs = ctx.objects("small", 0, s.count, s.size).await;
    let what = format!("{} x {} c{}", s.count, format_size(s.size), s.concurrency);
    let put = upload(ctx, objs.clone(), ctx.load()).await;
    let get = download(ctx, objs, ctx.load()).await;
    vec![
        Row::new(format!("small put {what}"), put, false, Basis::None),
        Row::new(format!("small get {what}"), get, false, Basis::None),
    ]
}

pub async fn list(ctx: &Ctx) -> Vec<Row> {
    let s = &ctx.settings;
    let objs = ctx.objects("list", 0, s.count, s.size).await;
    let mut rows = Vec::new();
    // Every key written `versions` times: all but the last become noncurrent.
    for _ in 0..s.versions {
        rows.extend(setup_row("list: create keys", upload(ctx, objs.clone(), ctx.load_all()).await));
    }
    let prefix = format!("{}list/", ctx.prefix);
    let mut phase = Phase::default();
    let meter = CpuMeter::start(s.server_pid);
    let mut passes = Vec::new();
    for _ in 0..LIST_PASSES {
        let began = Instant::now();
        if let Err(e) = list_pass(ctx, &prefix, &objs, &mut phase).await {
            phase.fail(e.to_string());
        }
        passes.push(ms(began.elapsed()));
        phase.elapsed += began.elapsed();
    }
    phase.cpu = meter.stop();
    passes.sort_by(f64::total_cmp);
    let median = passes.get(passes.len() / 2).copied().unwrap_or_default();
    let best = passes.first().copied().unwrap_or_default();
    let pages = s.count.div_ceil(MAX_BATCH as u64).max(1);
    let name = match s.versions {
        1 => format!("list {} keys, {pages} pages of {MAX_BATCH}", s.count),
        n => format!("list {} keys x {n} versions, {pages} pages of {MAX_BATCH}", s.count),
    };
    let row = Row::new(name, phase, false, Basis::None).note("full listing, median", median, "ms");
    rows.push(row.note("full listing, best", best, "ms"));
    rows
}

/// One full listing, page by page; every key must be there, in order.
async fn list_pass(ctx: &Ctx, prefix: &str, objs: &[Obj], phase: &mut Phase) -> Result<(), Error> {
    let mut token: Option<String> = None;
    let mut seen = 0usize;
    loop {
        let began = Instant::now();
        let page = ctx.target.list_page(prefix, token.as_deref(), MAX_BATCH).await?;
        phase.latencies.record(began.elapsed());
        phase.ops += 1;
        for key in &page.keys {
            if objs.get(seen).map(|o| &o.key) != Some(key) {
                return Err(Error::invalid("ListObjectsV2", format!("unexpected key {key} at position {seen}")));
            }
            seen += 1;
        }
        match page.next {
            Some(next) => token = Some(next),
            None if seen == objs.len() => return Ok(()),
            None => return Err(Error::invalid("ListObjectsV2", format!("{seen} keys of {}", objs.len()))),
        }
    }
}

pub async fn delete(ctx: &Ctx) -> Vec<Row> {
    let s = &ctx.settings;
    let what = format!("{} x {} c{}", s.count, format_size(s.size), s.concurrency);
    let objs = ctx.objects("delete", 0, s.count, s.size).await;
    let mut rows = setup_row("delete: create", upload(ctx, objs.clone(), ctx.load_all()).await);
    let target = ctx.target.clone();
    let one = objs.clone();
    let phase = run_jobs(ctx.load(), move |i| {
        let (target, objs) = (target.clone(), one.clone());
        async move { target.delete(&key_of(&objs, i)?.key).await.map(|()| 0) }
    })
    .await;
    rows.push(Row::new(format!("delete {what}"), phase, false, Basis::None));
    let objs = ctx.objects("delete", s.count, s.count, s.size).await;
    rows.extend(setup_row("delete: create again", upload(ctx, objs.clone(), ctx.load_all()).await));
    let batches: Vec<Vec<String>> = objs.chunks(MAX_BATCH).map(|c| c.iter().map(|o| o.key.clone()).collect()).collect();
    let (target, batches) = (ctx.target.clone(), Arc::new(batches));
    let load = Load { count: batches.len() as u64, ..ctx.load() };
    let phase = run_jobs(load, move |i| {
        let (target, batches) = (target.clone(), batches.clone());
        async move {
            let keys = batches.get(i as usize).ok_or_else(|| Error::invalid("DeleteObjects", "no such batch"))?;
            target.delete_batch(keys).await.map(|()| 0)
        }
    })
    .await;
    let keys_per_s = s.count as f64 / phase.elapsed.as_secs_f64().max(1e-9);
    let row = Row::new(format!("delete-batch {what}"), phase, false, Basis::None);
    rows.push(row.note("keys per second, 1,000 per request", keys_per_s, "keys/s"));
    rows.extend(setup_row("delete: all gone", check_empty(ctx, "delete/").await));
    rows
}

async fn check_empty(ctx: &Ctx, group: &str) -> Phase {
    let prefix = format!("{}{group}", ctx.prefix);
    run_once(async {
        match ctx.target.list_all(&prefix).await?.len() {
            0 => Ok(0),
            n => Err(Error::invalid("ListObjectsV2", format!("{n} keys left after deleting them all"))),
        }
    })
    .await
}

/// A row for an untimed set-up phase, only when it failed: the failure must
/// still count, or a broken set-up would look like a fast benchmark.
pub fn setup_row(name: &str, phase: Phase) -> Vec<Row> {
    match phase.errors {
        0 => Vec::new(),
        _ => vec![Row::new(format!("{name} (set-up, not timed)"), phase, false, Basis::None)],
    }
}

fn key_of(objs: &[Obj], i: u64) -> Result<&Obj, Error> {
    objs.get(i as usize).ok_or_else(|| Error::invalid("bench", format!("no object {i}")))
}

/// PutObject of every object, `load.concurrency` at a time.
pub async fn upload(ctx: &Ctx, objs: Arc<Vec<Obj>>, load: Load) -> Phase {
    let target = ctx.target.clone();
    let load = Load { count: objs.len() as u64, ..load };
    run_jobs(load, move |i| {
        let (target, objs) = (target.clone(), objs.clone());
        async move { target.put(key_of(&objs, i)?).await }
    })
    .await
}

/// GetObject of every object, each byte checked.
pub async fn download(ctx: &Ctx, objs: Arc<Vec<Obj>>, load: Load) -> Phase {
    let target = ctx.target.clone();
    let load = Load { count: objs.len() as u64, ..load };
    run_jobs(load, move |i| {
        let (target, objs) = (target.clone(), objs.clone());
        async move {
            let obj = key_of(&objs, i)?;
            target.get(&obj.key, obj.content, None).await
        }
    })
    .await
}
