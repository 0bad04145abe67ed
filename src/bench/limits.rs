//! What this machine can do without the server, so that every result can be
//! read as a ratio: MD5 on one core (every PutObject byte is hashed with MD5,
//! and one stream's hash runs on one core) and the data disk's sequential write
//! (with the fsync a durable PUT needs) and read speed.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use md5::{Digest, Md5};

use super::pattern::splitmix64;
use super::units::mib_per_s;

/// Large enough to stream from RAM rather than cache, small enough to allocate.
const MD5_BUFFER: usize = 64 << 20;
/// I/O block for the disk test; a multiple of every O_DIRECT alignment.
const BLOCK: usize = 8 << 20;
const ALIGN: usize = 4096;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub md5_mib_s: f64,
    pub disk_write_mib_s: f64,
    pub disk_read_mib_s: f64,
    /// How the page cache was kept out of the read: "O_DIRECT" or "fadvise DONTNEED".
    pub read_method: &'static str,
}

/// Measures with `bytes` of data (rounded up to whole 8 MiB blocks) in `dir`.
pub fn measure(dir: &Path, bytes: u64) -> io::Result<Limits> {
    let md5_mib_s = md5_speed(bytes);
    let file = TempFile(dir.join(format!(".tessera-bench-{}.tmp", std::process::id())));
    let blocks = bytes.div_ceil(BLOCK as u64).max(1);
    let disk_write_mib_s = write_speed(&file.0, blocks)?;
    let (disk_read_mib_s, read_method) = read_speed(&file.0, blocks)?;
    Ok(Limits { md5_mib_s, disk_write_mib_s, disk_read_mib_s, read_method })
}

fn md5_speed(bytes: u64) -> f64 {
    let mut data = Vec::with_capacity(MD5_BUFFER);
    let mut state = 1;
    while data.len() < MD5_BUFFER {
        data.extend_from_slice(&splitmix64(&mut state).to_le_bytes());
    }
    let rounds = bytes.div_ceil(MD5_BUFFER as u64).max(1);
    let began = Instant::now();
    let mut hasher = Md5::new();
    for _ in 0..rounds {
        hasher.update(&data);
    }
    std::hint::black_box(hasher.finalize());
    mib_per_s(rounds * MD5_BUFFER as u64, began.elapsed().as_secs_f64())
}

/// Removes the test file however the measurement ends.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A BLOCK-sized buffer at an ALIGN boundary (O_DIRECT needs both), without unsafe.
struct Aligned {
    buf: Vec<u8>,
    start: usize,
}

impl Aligned {
    fn new() -> Aligned {
        let buf = vec![0u8; BLOCK + ALIGN];
        let start = buf.as_ptr().align_offset(ALIGN).min(ALIGN);
        Aligned { buf, start }
    }

    fn block(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + BLOCK]
    }
}

fn write_speed(path: &Path, blocks: u64) -> io::Result<f64> {
    let mut block = Aligned::new();
    let mut state = 2;
    for word in block.block().chunks_mut(8) {
        word.copy_from_slice(&splitmix64(&mut state).to_le_bytes()[..word.len()]);
    }
    let began = Instant::now();
    let mut file = File::create(path)?;
    for _ in 0..blocks {
        file.write_all(block.block())?;
    }
    file.sync_all()?;
    Ok(mib_per_s(blocks * BLOCK as u64, began.elapsed().as_secs_f64()))
}

/// Reads the file back past the page cache: O_DIRECT when the file system
/// allows it, otherwise after asking the kernel to drop the (clean, fsynced) pages.
fn read_speed(path: &Path, blocks: u64) -> io::Result<(f64, &'static str)> {
    let (mut file, method) = match OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(path) {
        Ok(file) => (file, "O_DIRECT"),
        Err(_) => {
            let file = File::open(path)?;
            drop_cache(&file)?;
            (file, "fadvise DONTNEED")
        }
    };
    let mut block = Aligned::new();
    let began = Instant::now();
    let mut total = 0u64;
    loop {
        let n = file.read(block.block())?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    if total != blocks * BLOCK as u64 {
        return Err(io::Error::other(format!("read {total} bytes back, wrote {}", blocks * BLOCK as u64)));
    }
    Ok((mib_per_s(total, began.elapsed().as_secs_f64()), method))
}

fn drop_cache(file: &File) -> io::Result<()> {
    // SAFETY: posix_fadvise only reads its integer arguments; the descriptor is
    // open for the duration of the call because `file` is borrowed.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    match rc {
        0 => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}
