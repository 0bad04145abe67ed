//! What this machine can do without the server, so that every result can be
//! read as a ratio: MD5 on one core (every PutObject byte is hashed with MD5,
//! and one stream's hash runs on one core) and the data disk's sequential write
//! (with the fsync a durable PUT needs) and read speed.
//!
//! MD5 is measured with two implementations: `md5-many`, the one the server
//! uses (the fastest single stream we have, so ratios are taken against it),
//! and the RustCrypto `md-5` crate, for comparison with other servers.

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
    /// One stream of `md5-many` on one core: the ratio basis.
    pub md5_mib_s: f64,
    /// One stream of the `md-5` crate on one core.
    pub md5_crate_mib_s: f64,
    pub disk_write_mib_s: f64,
    pub disk_read_mib_s: f64,
    /// How the page cache was kept out of the read: "O_DIRECT" or "fadvise DONTNEED".
    pub read_method: &'static str,
    /// Median time to overwrite 4 KiB in place and fdatasync it, in microseconds:
    /// the floor of a durable commit. With `c` small PUTs in flight sharing each
    /// group commit, `c / commit latency` bounds the small-PUT rate.
    pub fsync_p50_us: f64,
    pub fsync_p99_us: f64,
}

/// Measures with `bytes` of data (rounded up to whole 8 MiB blocks) in `dir`.
pub fn measure(dir: &Path, bytes: u64) -> io::Result<Limits> {
    let data = md5_input();
    let rounds = bytes.div_ceil(MD5_BUFFER as u64).max(1);
    let md5_mib_s = md5_speed(rounds, || {
        let mut state = md5_many::Md5State::new();
        (0..rounds).for_each(|_| state.update(&data));
        state.finalize()
    });
    let md5_crate_mib_s = md5_speed(rounds, || {
        let mut hasher = Md5::new();
        (0..rounds).for_each(|_| hasher.update(&data));
        hasher.finalize().into()
    });
    let file = TempFile(dir.join(format!(".tessera-bench-{}.tmp", std::process::id())));
    let blocks = bytes.div_ceil(BLOCK as u64).max(1);
    let disk_write_mib_s = write_speed(&file.0, blocks)?;
    let (disk_read_mib_s, read_method) = read_speed(&file.0, blocks)?;
    let (fsync_p50_us, fsync_p99_us) = fsync_latency(&file.0)?;
    Ok(Limits {
        md5_mib_s,
        md5_crate_mib_s,
        disk_write_mib_s,
        disk_read_mib_s,
        read_method,
        fsync_p50_us,
        fsync_p99_us,
    })
}

fn md5_input() -> Vec<u8> {
    let mut data = Vec::with_capacity(MD5_BUFFER);
    let mut state = 1;
    while data.len() < MD5_BUFFER {
        data.extend_from_slice(&splitmix64(&mut state).to_le_bytes());
    }
    data
}

/// MiB/s of `hash`, which hashes the MD5 buffer `rounds` times.
fn md5_speed(rounds: u64, hash: impl FnOnce() -> [u8; 16]) -> f64 {
    let began = Instant::now();
    std::hint::black_box(hash());
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

    #[allow(clippy::indexing_slicing, reason = "start <= ALIGN and the buffer holds BLOCK + ALIGN bytes")]
    fn block(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + BLOCK]
    }
}

#[allow(clippy::indexing_slicing, reason = "chunks_mut(8) yields at most 8 bytes, the length of a u64")]
fn write_speed(path: &Path, blocks: u64) -> io::Result<f64> {
    let mut block = Aligned::new();
    let mut state = 2;
    for word in block.block().chunks_mut(8) {
        word.copy_from_slice(&splitmix64(&mut state).to_le_bytes()[..word.len()]);
    }
    let began = Instant::now();
    let mut file = File::create(path)?;
    for i in 0..blocks {
        file.write_all(block.block())?;
        start_writeback(&file, i * BLOCK as u64);
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

/// Durable 4 KiB overwrites measured one by one.
const FSYNC_ROUNDS: usize = 200;

/// Median and 99th percentile of "write 4 KiB in place, fdatasync", in
/// microseconds (the file is the one just written and read, so no block is
/// allocated: the figure is the device's flush latency, as a commit pays it).
fn fsync_latency(path: &Path) -> io::Result<(f64, f64)> {
    use std::os::unix::fs::FileExt;
    let file = OpenOptions::new().write(true).open(path)?;
    let page = [7u8; ALIGN];
    let mut micros = Vec::with_capacity(FSYNC_ROUNDS);
    for i in 0..FSYNC_ROUNDS {
        let began = Instant::now();
        file.write_all_at(&page, (i * ALIGN) as u64)?;
        file.sync_data()?;
        micros.push(began.elapsed().as_secs_f64() * 1e6);
    }
    micros.sort_by(f64::total_cmp);
    let at = |q: f64| micros.get(((micros.len() - 1) as f64 * q).round() as usize).copied().unwrap_or(0.0);
    Ok((at(0.5), at(0.99)))
}

/// Starts writing the block just written out while the next is copied, as
/// the server does: the figure is then the disk's, not the sum of a memory
/// copy and a disk write done one after the other.
fn start_writeback(file: &File, offset: u64) {
    // SAFETY: plain integer arguments on a descriptor `file` keeps open. A
    // hint: its failure only makes the measurement more pessimistic.
    unsafe { libc::sync_file_range(file.as_raw_fd(), offset as i64, BLOCK as i64, libc::SYNC_FILE_RANGE_WRITE) };
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
