//! `tessera backup`: a consistent, self-contained copy of a data folder's
//! metadata and of every blob file it references, taken while the server
//! runs. This module is what both backends share: the output folder (empty
//! or new, never inside the data folder), the blob files (hard-linked when
//! on the same filesystem: they never change once written; copied and
//! fsynced otherwise), the report, and emptying a failed backup's folder.
//! How each backend takes its snapshot and writes its metadata:
//! `redb_meta/backup.rs` (a `meta.redb`, servable as it is) and
//! `pg/backup.rs` (the tables dumped from one snapshot, which `tessera
//! restore` loads into an empty database).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::store::layout::{fsync_dir, BlobId, Layout};
use crate::store::{Store, StoreError, StoreResult};

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupReport {
    pub objects: u64,
    /// Blob files written (hard-linked or copied).
    pub blobs: u64,
    /// Of those, how many are hard links.
    pub linked: u64,
    /// Bytes of the blob files and of `meta.redb`.
    pub bytes: u64,
    pub seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The output folder is unusable (not empty, inside the data folder...).
    #[error("{0}")]
    Refused(String),
    /// Offline backup: a running server holds `meta.redb`.
    #[error("a running server holds the metadata database")]
    Locked,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The metadata database of gateways (`pg/backup.rs`) failed.
    #[cfg(feature = "postgres")]
    #[error(transparent)]
    Database(#[from] crate::store::pg::PgError),
}

impl From<std::io::Error> for BackupError {
    fn from(e: std::io::Error) -> Self {
        BackupError::Store(e.into())
    }
}

/// The fewest `--meta-pool` connections of a gateway that backs up through
/// its admin endpoint: the backup's two (its snapshot, its hold), and the
/// two the gateway keeps for its claim and leases.
#[cfg(feature = "postgres")]
const GATEWAY_BACKUP_POOL: usize = 4;

impl Store {
    /// Writes a consistent backup of the running store into `out`. Blocking.
    pub fn backup(&self, out: &Path) -> Result<BackupReport, BackupError> {
        match &self.meta {
            super::Meta::Redb { .. } => self.backup_redb(out),
            #[cfg(feature = "postgres")]
            super::Meta::Postgres { ctx, .. } => super::pg::backup::backup(self, ctx, out),
        }
    }

    /// [`Store::backup`] for a running server (the admin endpoint), on a
    /// blocking thread. It takes no request turn (`backend.rs`): it may run
    /// for hours, mostly copying files, and must not hold a slot that S3
    /// requests wait for.
    pub async fn backup_beside_requests(self: &Arc<Self>, out: PathBuf) -> Result<BackupReport, BackupError> {
        #[cfg(feature = "postgres")]
        if let super::Meta::Postgres { ctx, .. } = &self.meta {
            if ctx.pool.size() < GATEWAY_BACKUP_POOL {
                return Err(BackupError::Refused(format!(
                    "a backup through a gateway takes 2 of its --meta-pool connections, and it has {}: \
                     give it at least {GATEWAY_BACKUP_POOL}, or run `tessera backup --meta` beside it",
                    ctx.pool.size()
                )));
            }
        }
        let store = self.clone();
        super::off_reactor(move || store.backup(&out)).await
    }
}

/// Empties the output folder of a failed backup, so that it can be retried
/// there. Everything in it is ours: it was empty or absent at the start.
/// The folder itself stays (it may be a mount point).
pub(super) fn discard_partial(dst: &Layout) {
    let Ok(entries) = fs::read_dir(dst.root()) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let removed = match entry.file_type().map(|t| t.is_dir()) {
            Ok(true) => fs::remove_dir_all(&path),
            _ => fs::remove_file(&path),
        };
        if let Err(e) = removed {
            tracing::warn!(path = %path.display(), error = %e, "could not remove part of a failed backup");
        }
    }
}

/// Refuses an existing non-empty `out` and one inside the data folder (the
/// backup would copy itself into the next one), then creates its layout.
pub(super) fn prepare_out(out: &Path, data: &Path) -> Result<Layout, BackupError> {
    let refuse = |why: &str| Err(BackupError::Refused(format!("{}: {why}", out.display())));
    match fs::read_dir(out).map(|mut entries| entries.next().is_some()) {
        Ok(true) => return refuse("exists and is not empty"),
        Ok(false) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return refuse(&e.to_string()),
    }
    let data = fs::canonicalize(data)?;
    if let Some(parent) = out.parent().and_then(|p| fs::canonicalize(p).ok()) {
        if parent.starts_with(&data) {
            return refuse("is inside the data folder");
        }
    }
    fs::create_dir_all(out)?;
    Ok(Layout::create(out)?)
}

/// Links (or copies) each blob file, then fsyncs the folders it wrote into.
pub(super) fn copy_blobs(src: &Layout, dst: &Layout, ids: &[BlobId], report: &mut BackupReport) -> StoreResult<()> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for &id in ids {
        let (from, to) = (src.blob_path(id), dst.blob_path(id));
        report.bytes += link_or_copy(&from, &to, &mut report.linked)
            .map_err(|e| StoreError::caused(format!("backing up blob {}", from.display()), e))?;
        report.blobs += 1;
        let dir = dst.blob_dir(id);
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    for dir in &dirs {
        fsync_dir(dir)?;
    }
    Ok(())
}

/// A hard link when the filesystem allows it (the source file is already
/// durable), else a copy, fsynced. A missing source is an error: the
/// snapshot references it, so the backup would not be complete.
pub(super) fn link_or_copy(from: &Path, to: &Path, linked: &mut u64) -> std::io::Result<u64> {
    let len = fs::metadata(from)?.len();
    match fs::hard_link(from, to) {
        Ok(()) => *linked += 1,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(e),
        Err(_) => {
            fs::copy(from, to)?;
            fs::File::open(to)?.sync_all()?;
        }
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Across filesystems (/dev/shm is tmpfs here) the blob is copied, else linked.
    #[test]
    fn blobs_are_linked_on_one_filesystem_and_copied_across() {
        use std::os::unix::fs::MetadataExt;
        let src = tempfile::tempdir().expect("tempdir");
        let from = src.path().join("blob");
        fs::write(&from, b"immutable bytes").expect("write");
        let shm = Path::new("/dev/shm");
        let across =
            shm.is_dir() && fs::metadata(shm).map(|m| m.dev()).ok() != fs::metadata(&from).map(|m| m.dev()).ok();
        let dst = if across { tempfile::tempdir_in(shm) } else { tempfile::tempdir() }.expect("tempdir");
        let (to, mut linked) = (dst.path().join("blob"), 0);
        assert_eq!(link_or_copy(&from, &to, &mut linked).expect("link or copy"), 15);
        assert_eq!(fs::read(&to).expect("read"), b"immutable bytes");
        assert_eq!(linked, u64::from(!across), "across filesystems: {across}");
        let same = src.path().join("linked");
        link_or_copy(&from, &same, &mut linked).expect("link");
        assert_eq!(fs::metadata(&same).expect("stat").ino(), fs::metadata(&from).expect("stat").ino());
        assert!(link_or_copy(&src.path().join("gone"), &src.path().join("x"), &mut linked).is_err());
    }

    #[test]
    fn refuses_a_non_empty_out_and_one_inside_the_data_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let store = Store::open(&data).expect("open");
        let full = dir.path().join("full");
        fs::create_dir(&full).expect("mkdir");
        fs::write(full.join("x"), b"x").expect("write");
        assert!(matches!(store.backup(&full), Err(BackupError::Refused(_))));
        assert!(matches!(store.backup(&data.join("inside")), Err(BackupError::Refused(_))));
        store.close();
    }
}
