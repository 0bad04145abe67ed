//! Surviving a full disk: a reserve file held back for the metadata database.
//!
//! redb is copy-on-write: even a delete writes new pages before the old ones
//! are freed, so on a disk with no free block at all, nothing could ever be
//! deleted again. The data folder therefore holds `reserve`, a file of
//! [`Space::size`] zero bytes written at start-up. When a metadata commit fails
//! for lack of space, the store enters *full mode*: it deletes the reserve
//! (its blocks become free for the deletes that follow) and refuses every
//! write that adds data before it starts (`StorageFull`, HTTP 507). Deletes
//! are never refused. Once the filesystem has room for the reserve and as
//! much again, the next write re-creates the reserve and leaves full mode.
//!
//! A blob file that does not fit (ENOSPC in `tmp/` or at its fsync) does not
//! enter full mode: its temp file is removed, which gives the space back.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use super::layout::{fsync_dir, Layout};
use super::StoreError;

/// Bounds of the reserve: 1/32 of the filesystem, at least 1 MiB, at most
/// 64 MiB (ample for a DeleteObjects of 1,000 keys, whose copied pages are a
/// few MiB even in a large database).
const RESERVE_MIN: u64 = 1024 * 1024;
const RESERVE_MAX: u64 = 64 * 1024 * 1024;

/// Whether an I/O error means the filesystem (or the user's quota) is full.
pub fn is_full(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded)
}

pub struct Space {
    root: PathBuf,
    reserve: PathBuf,
    reserve_tmp: PathBuf,
    size: u64,
    full: AtomicBool,
    /// A commit (a delete, in full mode) succeeded since the last compaction.
    compaction_due: AtomicBool,
    /// Serializes re-creating the reserve.
    refill: Mutex<()>,
}

impl Space {
    /// The space of a process that writes no data (an administration
    /// command over a shared metadata database): no reserve file is made.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code, reason = "used by the postgres backend only"))]
    pub fn without_reserve(layout: &Layout) -> Space {
        Space {
            root: layout.root().to_path_buf(),
            reserve: layout.reserve_path(),
            reserve_tmp: layout.reserve_tmp_path(),
            size: 0,
            full: AtomicBool::new(false),
            compaction_due: AtomicBool::new(false),
            refill: Mutex::new(()),
        }
    }

    /// Sizes the reserve from the filesystem and writes it if missing; a disk
    /// without room for it and as much again starts in full mode.
    pub fn open(layout: &Layout) -> io::Result<Space> {
        let root = layout.root().to_path_buf();
        let size = (fs_stats(&root)?.total / 32).clamp(RESERVE_MIN, RESERVE_MAX);
        let space = Space {
            root,
            reserve: layout.reserve_path(),
            reserve_tmp: layout.reserve_tmp_path(),
            size,
            full: AtomicBool::new(false),
            compaction_due: AtomicBool::new(false),
            refill: Mutex::new(()),
        };
        let present = fs::metadata(&space.reserve).is_ok_and(|m| m.len() == size);
        if !present {
            // Restarted in full mode (the reserve spent): stay there, as
            // [`Space::admit`] would, so the free bytes stay for deletes.
            match fs_stats(&space.root)?.free >= 2 * size {
                true => space.write_reserve()?,
                false => space.enter_full_mode(),
            }
        }
        Ok(space)
    }

    /// A metadata commit found no space: free the reserve for the deletes to
    /// come, and refuse new data until there is room again.
    pub fn enter_full_mode(&self) {
        if !self.full.swap(true, Ordering::AcqRel) {
            tracing::warn!("storage full: refusing new data until space is freed; deletes still work");
        }
        match fs::remove_file(&self.reserve) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => tracing::error!(error = %e, "cannot free the reserve"),
            _ => {}
        }
    }

    /// Notes a successful metadata commit: in full mode it was a delete, whose
    /// freed pages a compaction can give back to the filesystem.
    pub fn committed(&self) {
        if self.full.load(Ordering::Acquire) {
            self.compaction_due.store(true, Ordering::Release);
        }
    }

    /// Whether a write refused in full mode should compact the database and
    /// ask again: only if something was deleted since the last compaction
    /// (so retried writes never compact in a loop).
    pub fn take_compaction_due(&self) -> bool {
        self.full.load(Ordering::Acquire) && self.compaction_due.swap(false, Ordering::AcqRel)
    }

    /// Lets a write that adds data start, or refuses it with `StorageFull`
    /// while in full mode. Leaving full mode re-creates the reserve, so this
    /// may block on file I/O: call it off the reactor.
    pub fn admit(&self) -> Result<(), StoreError> {
        if !self.full.load(Ordering::Acquire) {
            return Ok(());
        }
        let _one = self.refill.lock().map_err(|_| StoreError::StorageFull)?;
        if !self.full.load(Ordering::Acquire) {
            return Ok(());
        }
        let free = fs_stats(&self.root).map(|s| s.free).unwrap_or(0);
        if free < 2 * self.size {
            return Err(StoreError::StorageFull);
        }
        match self.write_reserve() {
            Ok(()) => {
                self.full.store(false, Ordering::Release);
                tracing::info!("space is back: reserve re-created, accepting writes again");
                Ok(())
            }
            Err(e) if is_full(&e) => Err(StoreError::StorageFull),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether less than the reserve's size is free: a failed database write
    /// that did not say why was then most likely a full disk.
    pub fn free_is_low(&self) -> bool {
        fs_stats(&self.root).is_ok_and(|s| s.free < self.size)
    }

    /// Free bytes of the file system, for an unprivileged writer.
    pub fn free_bytes(&self) -> io::Result<u64> {
        fs_stats(&self.root).map(|s| s.free)
    }

    /// Whether writes are refused for want of space (full mode).
    pub fn is_full(&self) -> bool {
        self.full.load(Ordering::Acquire)
    }

    /// The size of the reserve: the room kept for deletes to commit.
    pub fn reserve_bytes(&self) -> u64 {
        self.size
    }

    /// The cheap form of [`Space::admit`], for async callers: refuses while
    /// in full mode without touching the disk.
    pub fn check(&self) -> Result<(), StoreError> {
        match self.full.load(Ordering::Acquire) {
            true => Err(StoreError::StorageFull),
            false => Ok(()),
        }
    }

    /// Writes the reserve under a temporary name, fsyncs it and renames it,
    /// so a reserve cut short by ENOSPC never stays behind.
    fn write_reserve(&self) -> io::Result<()> {
        let tmp = &self.reserve_tmp;
        let result = write_zeros(tmp, self.size).and_then(|()| fs::rename(tmp, &self.reserve));
        if result.is_err() {
            let _ = fs::remove_file(tmp);
        }
        result?;
        fsync_dir(&self.root)
    }
}

/// Blocks really taken from the filesystem, not a sparse file: only taken
/// blocks can be given back. `fallocate` takes them without writing (a
/// 64 MiB reserve costs no I/O at a first start); where the filesystem
/// cannot, zero bytes are written.
fn write_zeros(path: &std::path::Path, size: u64) -> io::Result<()> {
    let mut file = File::create(path)?;
    if !allocate(&file, size)? {
        let chunk = vec![0u8; 1024 * 1024];
        let mut left = size;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            file.write_all(chunk.get(..n).unwrap_or(&chunk))?;
            left -= n as u64;
        }
    }
    file.sync_all()
}

/// `fallocate(2)`: Ok(false) when the filesystem does not support it.
#[cfg(target_os = "linux")]
fn allocate(file: &File, size: u64) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    let len = libc::off_t::try_from(size).map_err(io::Error::other)?;
    // SAFETY: plain integer arguments on a descriptor `file` keeps open.
    match unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) } {
        0 => Ok(true),
        _ => match io::Error::last_os_error() {
            e if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(false),
            e => Err(e),
        },
    }
}

#[cfg(not(target_os = "linux"))]
fn allocate(_file: &File, _size: u64) -> io::Result<bool> {
    Ok(false)
}

struct FsStats {
    total: u64,
    /// Bytes an unprivileged writer may still use (`f_bavail`).
    free: u64,
}

#[cfg(unix)]
fn fs_stats(dir: &std::path::Path) -> io::Result<FsStats> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: an all-zero statvfs is a valid value of this plain C struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `statvfs` only writes into the struct we own; `path` is NUL-terminated.
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let frsize = st.f_frsize as u64;
    Ok(FsStats { total: st.f_blocks as u64 * frsize, free: st.f_bavail as u64 * frsize })
}

#[cfg(not(unix))]
fn fs_stats(_dir: &std::path::Path) -> io::Result<FsStats> {
    Ok(FsStats { total: RESERVE_MIN * 32, free: u64::MAX })
}
