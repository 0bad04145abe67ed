//! Deterministic object content that costs nothing to send or check.
//!
//! Every object is a window onto one endless keystream of period [`PERIOD`]:
//! object `i` starts at phase `phase_of(seed, i)`, so its byte at offset `o` is
//! `keystream[(phase + o) % PERIOD]`. One buffer of `PERIOD + CHUNK` bytes holds
//! every window of up to [`CHUNK`] bytes contiguously, so request bodies are
//! zero-copy slices of it and a GET is checked with `memcmp` against it: no
//! object is ever allocated whole and no byte is generated per request.
//!
//! Why a prime period: offsets that a buggy server might confuse (a multiple of a
//! power-of-two block or part size) never map a window onto itself, and distinct
//! objects start at distinct phases, so a wrong object or a wrong offset fails.

use bytes::Bytes;
use md5::{Digest, Md5};
use sha2::Sha256;

/// 2^20 - 3, the largest prime below 1 MiB.
pub const PERIOD: usize = 1_048_573;
/// The largest slice handed out or compared at once.
pub const CHUNK: usize = 256 * 1024;
/// Spreads object phases over the period; any value not divisible by PERIOD
/// gives distinct phases for the first PERIOD objects.
const STRIDE: u64 = 0x9E37_79B9;

/// The keystream, plus its first CHUNK bytes again so that windows can wrap.
pub struct Pattern {
    buf: Bytes,
}

/// One object's content: where it starts in the keystream and how long it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Content {
    pub phase: usize,
    pub len: u64,
}

impl Content {
    /// The same bytes seen `by` bytes further on: the returned content's byte at
    /// `o + by` is this content's byte at `o` (a part copied to a later offset).
    pub fn shifted(self, by: u64) -> Content {
        let p = PERIOD as u64;
        Content { phase: ((self.phase as u64 % p + p - by % p) % p) as usize, len: self.len }
    }
}

/// The phase of object `index` in a run seeded with `seed`.
pub fn phase_of(seed: u64, index: u64) -> usize {
    let p = PERIOD as u64;
    ((seed % p + (index % p) * (STRIDE % p)) % p) as usize
}

/// splitmix64: a tiny, fast, well-mixed generator (Steele, Lea, Flood 2014).
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Pattern {
    pub fn new(seed: u64) -> Pattern {
        let mut buf = Vec::with_capacity(PERIOD + CHUNK + 8);
        let mut state = seed;
        while buf.len() < PERIOD {
            buf.extend_from_slice(&splitmix64(&mut state).to_le_bytes());
        }
        buf.truncate(PERIOD);
        buf.extend_from_within(..CHUNK);
        Pattern { buf: Bytes::from(buf) }
    }

    fn start(phase: usize, offset: u64) -> usize {
        let p = PERIOD as u64;
        ((phase as u64 % p + offset % p) % p) as usize
    }

    /// Up to CHUNK bytes of the object at `phase`, from `offset`, without copying.
    pub fn chunk(&self, phase: usize, offset: u64, len: usize) -> Bytes {
        let start = Pattern::start(phase, offset);
        self.buf.slice(start..start + len.min(CHUNK))
    }

    /// Checks `data` against the object at `phase` from `offset`. On a mismatch,
    /// returns the object offset of the first wrong byte.
    pub fn check(&self, phase: usize, offset: u64, data: &[u8]) -> Result<(), u64> {
        let mut done = 0usize;
        for piece in data.chunks(CHUNK) {
            let at = offset + done as u64;
            let start = Pattern::start(phase, at);
            let expected = self.buf.get(start..start + piece.len()).unwrap_or_default();
            if piece != expected {
                let wrong = piece.iter().zip(expected).position(|(a, b)| a != b).unwrap_or(0);
                return Err(at + wrong as u64);
            }
            done += piece.len();
        }
        Ok(())
    }

    /// MD5 of `len` bytes of the object at `phase` from `offset`.
    pub fn md5(&self, phase: usize, offset: u64, len: u64) -> [u8; 16] {
        self.digest::<Md5>(phase, offset, len).into()
    }

    /// SHA-256 of `len` bytes of the object at `phase` from `offset`: the
    /// content key that dedup and instant upload look held content up by.
    pub fn sha256(&self, phase: usize, offset: u64, len: u64) -> [u8; 32] {
        self.digest::<Sha256>(phase, offset, len).into()
    }

    fn digest<D: Digest>(&self, phase: usize, offset: u64, len: u64) -> md5::digest::Output<D> {
        let mut hasher = D::new();
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(CHUNK as u64) as usize;
            hasher.update(self.chunk(phase, offset + done, n));
            done += n as u64;
        }
        hasher.finalize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keystream byte at `k`, computed from scratch: the reference that the
    /// shared buffer must reproduce.
    fn keystream_byte(seed: u64, k: usize) -> u8 {
        let mut state = seed;
        let mut word = 0;
        for _ in 0..=k / 8 {
            word = splitmix64(&mut state);
        }
        word.to_le_bytes()[k % 8]
    }

    fn expected(seed: u64, phase: usize, offset: u64, len: usize) -> Vec<u8> {
        (0..len as u64)
            .map(|i| keystream_byte(seed, (phase + ((offset + i) % PERIOD as u64) as usize) % PERIOD))
            .collect()
    }

    #[test]
    fn period_is_prime() {
        let n = PERIOD as u64;
        assert!((2..).take_while(|d| d * d <= n).all(|d| !n.is_multiple_of(d)));
    }

    #[test]
    fn chunks_match_the_reference_across_the_wrap() {
        let p = Pattern::new(42);
        for (phase, offset) in [(0, 0), (5, 100), (PERIOD - 3, 0), (7, PERIOD as u64 - 10), (1, 5 * PERIOD as u64 + 1)]
        {
            let got = p.chunk(phase, offset, 40);
            assert_eq!(&got[..], &expected(42, phase, offset, 40)[..], "phase {phase} offset {offset}");
            assert_eq!(p.check(phase, offset, &got), Ok(()));
        }
        assert_eq!(p.chunk(0, 0, CHUNK * 4).len(), CHUNK);
    }

    #[test]
    fn check_finds_the_first_wrong_byte() {
        let p = Pattern::new(7);
        let phase = phase_of(7, 3);
        let offset = PERIOD as u64 - 1000;
        let mut data: Vec<u8> = Vec::new();
        while data.len() < 3 * CHUNK {
            let b = p.chunk(phase, offset + data.len() as u64, CHUNK);
            data.extend_from_slice(&b);
        }
        assert_eq!(p.check(phase, offset, &data), Ok(()));
        data[CHUNK + 17] ^= 1;
        assert_eq!(p.check(phase, offset, &data), Err(offset + CHUNK as u64 + 17));
        // The same bytes are wrong for a neighbouring object and a shifted offset.
        data[CHUNK + 17] ^= 1;
        assert!(p.check(phase_of(7, 4), offset, &data).is_err());
        assert!(p.check(phase, offset + 1, &data).is_err());
        assert!(p.check(phase, offset + (1 << 20), &data).is_err());
    }

    #[test]
    fn shifted_content_reads_the_same_bytes_later() {
        let p = Pattern::new(3);
        let c = Content { phase: 17, len: 100 };
        for by in [0, 1, 5 << 20, PERIOD as u64, 3 * PERIOD as u64 + 2] {
            assert_eq!(p.chunk(c.shifted(by).phase, by, 64), p.chunk(c.phase, 0, 64), "by {by}");
        }
    }

    #[test]
    fn phases_are_distinct_and_md5_covers_the_object() {
        let phases: std::collections::HashSet<usize> = (0..10_000).map(|i| phase_of(1, i)).collect();
        assert_eq!(phases.len(), 10_000);
        let p = Pattern::new(9);
        let whole = expected(9, 11, 0, 3000);
        let direct: [u8; 16] = Md5::digest(&whole).into();
        assert_eq!(p.md5(11, 0, 3000), direct);
        assert_ne!(p.md5(12, 0, 3000), direct);
        let sha: [u8; 32] = Sha256::digest(&whole).into();
        assert_eq!(p.sha256(11, 0, 3000), sha);
    }
}
