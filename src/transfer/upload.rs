//! Uploads: one PutObject up to the part size, else a resumable multipart
//! upload with parts in parallel.
//!
//! Resuming: the resume file names the upload and the parts acknowledged.
//! The server is asked (ListParts) which parts it really has; a part counts
//! as done only if the server lists it with the ETag and SHA-256 recorded
//! for it and the expected size. The rest are sent (or completed instantly
//! by a Tessera server that holds them). A source whose size or mtime
//! changed, another part size, or an upload the server no longer knows
//! (`NoSuchUpload`) start a new upload.

use std::collections::{BTreeMap, VecDeque};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use http::Method;

use super::ops::{self, CompletedPart};
use super::pool;
use super::progress::{How, Progress};
use super::state::{self, DonePart, Fingerprint, UploadState};
use super::{Ctx, Outcome, MAX_PARTS};
use crate::bench::client::{Error, Request};

/// The source file, open, and what it looked like when opened.
struct Source {
    file: Arc<std::fs::File>,
    print: Fingerprint,
}

pub async fn upload(ctx: &Ctx, path: &Path, bucket: &str, key: &str) -> anyhow::Result<Outcome> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let meta = file.metadata()?;
    anyhow::ensure!(meta.is_file(), "{} is not a file", path.display());
    let print = Fingerprint { size: meta.len(), mtime_s: meta.mtime(), mtime_ns: meta.mtime_nsec() };
    let source = Source { file: Arc::new(file), print };
    let progress = Progress::new(print.size);
    if print.size <= ctx.part_size {
        return put_whole(ctx, &source, (bucket, key), &progress).await;
    }
    let parts = print.size.div_ceil(ctx.part_size);
    anyhow::ensure!(parts <= MAX_PARTS, "{parts} parts: S3 allows {MAX_PARTS}; choose a larger --part-size");
    let absolute = std::fs::canonicalize(path)?;
    let state_path = state::upload_path(&super::state_home()?, &ctx.endpoint, bucket, key, &absolute);
    let job = Job { ctx, bucket, key, source, state_path, parts: parts_u32(parts)? };
    job.run(&progress).await
}

fn parts_u32(parts: u64) -> anyhow::Result<u32> {
    Ok(u32::try_from(parts)?)
}

/// A file no larger than a part: one PutObject, its ETag checked.
async fn put_whole(
    ctx: &Ctx,
    source: &Source,
    (bucket, key): (&str, &str),
    progress: &Progress,
) -> anyhow::Result<Outcome> {
    let body = ops::read_body(source.file.clone(), 0, source.print.size).await?;
    let stored = ops::put_body(ctx, || Request::new("PutObject", Method::PUT, bucket, Some(key)), &body).await?;
    progress.part(1, source.print.size, if stored.instant { How::Instant } else { How::Sent });
    progress.finish(source.print.size, &stored.etag, stored.verified);
    Ok(Outcome::Done)
}

/// One multipart upload of one source.
struct Job<'a> {
    ctx: &'a Ctx,
    bucket: &'a str,
    key: &'a str,
    source: Source,
    state_path: PathBuf,
    parts: u32,
}

impl Job<'_> {
    /// Resumes or starts the upload; starts over once if the server lost it.
    async fn run(&self, progress: &Progress) -> anyhow::Result<Outcome> {
        let mut fresh_tries = 0;
        loop {
            let state = self.resume_or_start().await?;
            match self.send_parts(state, progress).await {
                Err(e) if ops::is_code(&e, "NoSuchUpload") && fresh_tries == 0 => {
                    eprintln!("tessera cp: the server no longer has the upload; starting over");
                    state::remove(&self.state_path)?;
                    progress.restart(self.source.print.size);
                    fresh_tries += 1;
                }
                Err(e) if self.state_path.exists() => {
                    return Err(e.context("the upload stopped; run the same command again to resume it"))
                }
                other => return other,
            }
        }
    }

    fn fresh(&self, upload_id: String) -> UploadState {
        UploadState {
            format: state::FORMAT,
            endpoint: self.ctx.endpoint.clone(),
            bucket: self.bucket.to_string(),
            key: self.key.to_string(),
            source: self.source.print,
            part_size: self.ctx.part_size,
            upload_id,
            parts: BTreeMap::new(),
        }
    }

    /// The state to go on from: the resume file's, reconciled with the
    /// server's parts, or a new upload.
    async fn resume_or_start(&self) -> anyhow::Result<UploadState> {
        if let Some(old) = state::load::<UploadState>(&self.state_path)? {
            let expected = UploadState { parts: old.parts.clone(), ..self.fresh(old.upload_id.clone()) };
            if old == expected {
                match ops::list_parts(self.ctx, self.bucket, self.key, &old.upload_id).await {
                    Ok(listed) => return self.reconciled(old, &listed).await,
                    Err(e) if ops::is_status_code(&e, "NoSuchUpload") => {
                        eprintln!("tessera cp: the server no longer has the upload; starting over");
                    }
                    Err(e) => return Err(e.into()),
                }
            } else {
                eprintln!("tessera cp: the source or --part-size changed since the interrupted upload; starting over");
                ops::abort(self.ctx, &old.bucket, &old.key, &old.upload_id).await;
            }
        }
        let id = ops::create_upload(self.ctx, self.bucket, self.key).await?;
        let state = self.fresh(id);
        self.save(&state).await?;
        Ok(state)
    }

    /// Keeps the recorded parts the server lists with the same ETag,
    /// SHA-256 (when it lists checksums) and the size they must have.
    async fn reconciled(&self, mut state: UploadState, listed: &[ops::ListedPart]) -> anyhow::Result<UploadState> {
        let listed: BTreeMap<u32, &ops::ListedPart> = listed.iter().map(|p| (p.number, p)).collect();
        state.parts.retain(|number, done| {
            listed.get(number).is_some_and(|p| {
                p.etag == done.etag
                    && p.sha256.as_ref().is_none_or(|s| *s == done.sha256)
                    && p.size == self.part_len(*number)
            })
        });
        self.save(&state).await?;
        Ok(state)
    }

    fn part_len(&self, number: u32) -> u64 {
        let start = u64::from(number - 1) * self.ctx.part_size;
        self.ctx.part_size.min(self.source.print.size.saturating_sub(start))
    }

    async fn save(&self, state: &UploadState) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec(state)?;
        let path = self.state_path.clone();
        tokio::task::spawn_blocking(move || state::save(&path, &bytes, state::Flush::Yes)).await??;
        Ok(())
    }

    /// Sends the missing parts, `concurrency` at a time, then completes.
    async fn send_parts(&self, state: UploadState, progress: &Progress) -> anyhow::Result<Outcome> {
        for number in state.parts.keys() {
            progress.part(u64::from(*number), self.part_len(*number), How::Resumed);
        }
        let todo: VecDeque<u64> = (1..=self.parts).filter(|n| !state.parts.contains_key(n)).map(u64::from).collect();
        let shared = Shared { state: tokio::sync::Mutex::new(state) };
        let share = &shared;
        let results = pool::run(self.ctx, todo, |n| async move {
            self.send_part(share, parts_u32(n)?, progress).await.map(|()| true)
        })
        .await;
        let state = shared.state.into_inner();
        results?;
        if state.parts.len() < self.parts as usize {
            progress.abandon();
            eprintln!(
                "tessera cp: paused with {} of {} parts uploaded; run the same command again to resume",
                state.parts.len(),
                self.parts
            );
            return Ok(Outcome::Interrupted);
        }
        self.complete(&state, progress).await
    }

    async fn send_part(&self, shared: &Shared, number: u32, progress: &Progress) -> anyhow::Result<()> {
        let (offset, len) = (u64::from(number - 1) * self.ctx.part_size, self.part_len(number));
        let body = ops::read_body(self.source.file.clone(), offset, len).await?;
        let id = shared.state.lock().await.upload_id.clone();
        let make = || {
            Request::new("UploadPart", Method::PUT, self.bucket, Some(self.key))
                .query("partNumber", number.to_string())
                .query("uploadId", id.clone())
        };
        let stored = ops::put_body(self.ctx, make, &body).await?;
        let mut state = shared.state.lock().await;
        state.parts.insert(number, DonePart { etag: stored.etag, sha256: body.sha256_base64() });
        self.save(&state).await?;
        drop(state);
        progress.part(u64::from(number), len, if stored.instant { How::Instant } else { How::Sent });
        Ok(())
    }

    /// CompleteMultipartUpload with every part; the object's ETag must be
    /// the one the parts' ETags give, and its SHA-256 (when the server
    /// reports it) the one the parts' SHA-256s give. The resume file goes
    /// only then.
    async fn complete(&self, state: &UploadState, progress: &Progress) -> anyhow::Result<Outcome> {
        let mut md5s = Vec::with_capacity(state.parts.len());
        let mut shas = Vec::with_capacity(state.parts.len());
        let mut parts = Vec::with_capacity(state.parts.len());
        for (number, done) in &state.parts {
            let mut md5 = [0u8; 16];
            hex::decode_to_slice(&done.etag, &mut md5).context("a part ETag that is not an MD5")?;
            md5s.push(md5);
            let sha = BASE64.decode(&done.sha256).ok().and_then(|s| <[u8; 32]>::try_from(s).ok());
            shas.push(sha.context("a part SHA-256 in the resume file")?);
            parts.push(CompletedPart { number: *number, etag: &done.etag, sha256: &done.sha256 });
        }
        let want = ops::Expected { etag: ops::multipart_etag(&md5s), sha256: ops::composite_sha256(&shas) };
        let completed = ops::complete(self.ctx, (self.bucket, self.key, &state.upload_id), &parts, &want).await;
        if let Err(e @ Error::Invalid { .. }) = completed {
            // The object exists now, and is not the source: nothing to resume.
            state::remove(&self.state_path)?;
            let object = format!("s3://{}/{}", self.bucket, self.key);
            return Err(anyhow::Error::new(e).context(format!("{object} does not match the source: upload it again")));
        }
        let verified = completed?;
        state::remove(&self.state_path)?;
        progress.finish(self.source.print.size, &want.etag, verified);
        Ok(Outcome::Done)
    }
}

/// What the workers share: the resume state, behind an async lock held
/// while the file is rewritten, so saves never race.
struct Shared {
    state: tokio::sync::Mutex<UploadState>,
}
