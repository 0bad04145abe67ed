//! Every digest of a body, computed in one pass over its bytes: the MD5 that
//! makes the ETag, the SHA-256 that `x-amz-content-sha256` may promise, and the
//! flexible checksum (`x-amz-checksum-*`) the client asked for, and the
//! CRC32C of every block that lets reads and scrubs detect a corrupted blob.
//! Reference: <https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html>

use base64::Engine;
use bytes::Bytes;
use crc_fast::{CrcAlgorithm, Digest as CrcDigest};
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

use super::md5_lanes::LaneMd5;

/// The five flexible-checksum algorithms S3 supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    pub const ALL: [ChecksumAlgorithm; 5] = [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32c,
        ChecksumAlgorithm::Crc64Nvme,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
    ];

    /// Parses the name used in `x-amz-sdk-checksum-algorithm` (`CRC32`, `crc64nvme`...).
    pub fn parse(name: &str) -> Option<ChecksumAlgorithm> {
        Self::ALL.into_iter().find(|alg| alg.name().eq_ignore_ascii_case(name))
    }

    /// The upper-case name S3 uses in XML and `x-amz-checksum-algorithm`.
    pub fn name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "CRC32",
            ChecksumAlgorithm::Crc32c => "CRC32C",
            ChecksumAlgorithm::Crc64Nvme => "CRC64NVME",
            ChecksumAlgorithm::Sha1 => "SHA1",
            ChecksumAlgorithm::Sha256 => "SHA256",
        }
    }

    /// The header carrying this checksum, e.g. `x-amz-checksum-crc32`.
    pub fn header_name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "x-amz-checksum-crc32",
            ChecksumAlgorithm::Crc32c => "x-amz-checksum-crc32c",
            ChecksumAlgorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
            ChecksumAlgorithm::Sha1 => "x-amz-checksum-sha1",
            ChecksumAlgorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// The `<ChecksumCRC32>`-style XML element name.
    pub fn xml_name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "ChecksumCRC32",
            ChecksumAlgorithm::Crc32c => "ChecksumCRC32C",
            ChecksumAlgorithm::Crc64Nvme => "ChecksumCRC64NVME",
            ChecksumAlgorithm::Sha1 => "ChecksumSHA1",
            ChecksumAlgorithm::Sha256 => "ChecksumSHA256",
        }
    }

    /// Length of the raw digest; a header value must decode to exactly this.
    pub fn digest_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c => 4,
            ChecksumAlgorithm::Crc64Nvme => 8,
            ChecksumAlgorithm::Sha1 => 20,
            ChecksumAlgorithm::Sha256 => 32,
        }
    }
}

enum ChecksumHasher {
    Crc(CrcDigest, usize),
    Sha1(Sha1),
    Sha256(Sha256),
}

impl ChecksumHasher {
    fn new(alg: ChecksumAlgorithm) -> ChecksumHasher {
        match alg {
            ChecksumAlgorithm::Crc32 => ChecksumHasher::Crc(CrcDigest::new(CrcAlgorithm::Crc32IsoHdlc), 4),
            ChecksumAlgorithm::Crc32c => ChecksumHasher::Crc(CrcDigest::new(CrcAlgorithm::Crc32Iscsi), 4),
            ChecksumAlgorithm::Crc64Nvme => ChecksumHasher::Crc(CrcDigest::new(CrcAlgorithm::Crc64Nvme), 8),
            ChecksumAlgorithm::Sha1 => ChecksumHasher::Sha1(Sha1::new()),
            ChecksumAlgorithm::Sha256 => ChecksumHasher::Sha256(Sha256::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            ChecksumHasher::Crc(d, _) => d.update(data),
            ChecksumHasher::Sha1(h) => h.update(data),
            ChecksumHasher::Sha256(h) => h.update(data),
        }
    }

    #[allow(clippy::indexing_slicing, reason = "len is 4 or 8, the CRC width, never more than the u64 bytes")]
    fn finish(self) -> Vec<u8> {
        match self {
            ChecksumHasher::Crc(d, len) => {
                let value = d.finalize().to_be_bytes();
                value[value.len() - len..].to_vec()
            }
            ChecksumHasher::Sha1(h) => h.finalize().to_vec(),
            ChecksumHasher::Sha256(h) => h.finalize().to_vec(),
        }
    }
}

/// What to compute besides the MD5, decided from the request headers.
#[derive(Debug, Clone, Copy, Default)]
pub struct DigestSpec {
    /// `x-amz-content-sha256` promised a hex digest of the body.
    pub sha256: bool,
    pub checksum: Option<ChecksumAlgorithm>,
}

/// The running hashes of one body.
pub struct Hashers {
    md5: LaneMd5,
    rest: OtherHashers,
}

/// Everything but the MD5: computed on the upload's own thread.
struct OtherHashers {
    sha256: Option<Sha256>,
    checksum: Option<(ChecksumAlgorithm, ChecksumHasher)>,
    blocks: BlockHasher,
    size: u64,
}

impl OtherHashers {
    fn update(&mut self, data: &[u8]) {
        if let Some(h) = &mut self.sha256 {
            h.update(data);
        }
        if let Some((_, h)) = &mut self.checksum {
            h.update(data);
        }
        self.blocks.update(data);
        self.size += data.len() as u64;
    }
}

/// log2 of [`BLOCK_SIZE`].
pub const BLOCK_SHIFT: u8 = 16;
/// Every blob carries the CRC32C of each 64 KiB block (the last one may be
/// shorter). The size bounds what a Range GET must read beyond the asked
/// bytes to check them (at most one block before and one after: 128 KiB);
/// the checksums cost 4 bytes per block, 64 KiB per GiB of data, small
/// enough to be one database value per blob. 4 KiB blocks would cost 1 MiB
/// per GiB; 1 MiB blocks would make a 1 KiB Range GET read 2 MiB.
pub const BLOCK_SIZE: u64 = 1 << BLOCK_SHIFT;

/// The CRC32C (CRC-32/ISCSI: hardware-accelerated, and not the CRC32 a
/// client may send, so the two never share a blind spot) of every block of
/// one blob, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockCrcs {
    pub shift: u8,
    pub crcs: Vec<u32>,
}

impl BlockCrcs {
    /// The block checksums of bytes already in memory.
    pub fn of(data: &[u8]) -> BlockCrcs {
        let mut h = BlockHasher::default();
        h.update(data);
        h.finish()
    }

    pub fn block_size(&self) -> u64 {
        1 << self.shift
    }
}

/// The CRC32C of one block.
pub fn block_crc(data: &[u8]) -> u32 {
    crc_fast::crc32_iscsi(data)
}

/// Computes [`BlockCrcs`] from a body that arrives in pieces of any size.
struct BlockHasher {
    /// The CRC of the block being filled, when it is not empty.
    partial: CrcDigest,
    filled: u64,
    crcs: Vec<u32>,
}

impl Default for BlockHasher {
    fn default() -> BlockHasher {
        BlockHasher { partial: CrcDigest::new(CrcAlgorithm::Crc32Iscsi), filled: 0, crcs: Vec::new() }
    }
}

impl BlockHasher {
    fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let take = (BLOCK_SIZE - self.filled).min(data.len() as u64) as usize;
            let (head, rest) = data.split_at(take);
            if self.filled == 0 && take as u64 == BLOCK_SIZE {
                // A whole block in one piece (the usual case): no state to carry.
                self.crcs.push(block_crc(head));
            } else {
                self.partial.update(head);
                self.filled += take as u64;
                if self.filled == BLOCK_SIZE {
                    self.crcs.push(self.partial.finalize_reset() as u32);
                    self.filled = 0;
                }
            }
            data = rest;
        }
    }

    fn finish(mut self) -> BlockCrcs {
        if self.filled > 0 {
            self.crcs.push(self.partial.finalize() as u32);
        }
        BlockCrcs { shift: BLOCK_SHIFT, crcs: self.crcs }
    }
}

/// The finished digests of one body.
#[derive(Debug, Clone)]
pub struct Digests {
    pub md5: [u8; 16],
    pub sha256: Option<[u8; 32]>,
    pub checksum: Option<(ChecksumAlgorithm, Vec<u8>)>,
    /// Checked on every read of the stored blob (see `read.rs`).
    pub blocks: BlockCrcs,
    pub size: u64,
}

impl Digests {
    /// The SHA-256 of the bytes, if it was computed: asked for, or the
    /// body's checksum algorithm.
    pub fn content_sha256(&self) -> Option<[u8; 32]> {
        match &self.checksum {
            Some((ChecksumAlgorithm::Sha256, raw)) => raw.as_slice().try_into().ok(),
            _ => self.sha256,
        }
    }
}

impl Hashers {
    pub fn new(spec: DigestSpec) -> Hashers {
        let rest = OtherHashers {
            sha256: spec.sha256.then(Sha256::new),
            checksum: spec.checksum.map(|alg| (alg, ChecksumHasher::new(alg))),
            blocks: BlockHasher::default(),
            size: 0,
        };
        Hashers { md5: LaneMd5::default(), rest }
    }

    /// Hashes a small piece on the calling thread.
    pub fn update(&mut self, data: &[u8]) {
        self.md5.update(data);
        self.rest.update(data);
    }

    /// Hashes a frame of a streamed body: its MD5 is queued for the shared
    /// engine (batched with other uploads') while this thread computes the rest.
    pub fn update_frame(&mut self, data: &Bytes) {
        self.md5.push(data.clone());
        self.rest.update(data);
    }

    pub fn finish(self) -> Digests {
        let OtherHashers { sha256, checksum, blocks, size } = self.rest;
        Digests {
            md5: self.md5.finalize(),
            sha256: sha256.map(|h| h.finalize().into()),
            checksum: checksum.map(|(alg, h)| (alg, h.finish())),
            blocks: blocks.finish(),
            size,
        }
    }
}

impl Digests {
    /// The checksum's value as it travels in headers.
    pub fn checksum_base64(&self) -> Option<(ChecksumAlgorithm, String)> {
        self.checksum.as_ref().map(|(alg, raw)| (*alg, base64::engine::general_purpose::STANDARD.encode(raw)))
    }
}

/// The checksum of a multipart object, from its parts' raw checksums in order.
/// COMPOSITE: the checksum of the concatenated part checksums (S3 appends `-N`).
/// FULL_OBJECT: the CRC of the whole byte stream, combined from the part CRCs
/// and sizes without reading any byte; `None` for SHA (no such combination).
/// Reference: <https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html#large-object-checksums>
pub fn combine_parts(alg: ChecksumAlgorithm, parts: &[(&[u8], u64)], full_object: bool) -> Option<Vec<u8>> {
    if !full_object {
        let mut hasher = ChecksumHasher::new(alg);
        for (raw, _) in parts {
            hasher.update(raw);
        }
        return Some(hasher.finish());
    }
    let (crc_alg, len) = match alg {
        ChecksumAlgorithm::Crc32 => (CrcAlgorithm::Crc32IsoHdlc, 4),
        ChecksumAlgorithm::Crc32c => (CrcAlgorithm::Crc32Iscsi, 4),
        ChecksumAlgorithm::Crc64Nvme => (CrcAlgorithm::Crc64Nvme, 8),
        ChecksumAlgorithm::Sha1 | ChecksumAlgorithm::Sha256 => return None,
    };
    let mut shifts = ShiftCache::new(crc_alg, parts.iter().map(|(_, size)| *size));
    let mut combined: Option<u64> = None;
    for (raw, size) in parts {
        let mut be = [0u8; 8];
        be.get_mut(8 - raw.len()..)?.copy_from_slice(raw);
        let crc = u64::from_be_bytes(be);
        combined = Some(match combined {
            None => crc,
            Some(acc) => shifts.combine(acc, crc, *size),
        });
    }
    let value = combined.unwrap_or_else(|| CrcDigest::new(crc_alg).finalize()).to_be_bytes();
    value.get(8 - len..).map(<[u8]>::to_vec)
}

/// Parts sizes seen at least this often get a precomputed [`Shift`].
const SHIFT_MIN_PARTS: usize = 128;

/// `checksum_combine` costs O(log len) matrix products, about 66 us for a
/// 5 MiB part here: 0.66 s for the 10,000 parts of a maximal upload. But
/// `combine(acc, crc, len) = T_len(acc) ^ crc ^ k_len` with `T_len` linear
/// over GF(2) (a CRC is affine in its input bits), and almost every part of
/// an upload has the same size. So for a size shared by many parts, `T_len`
/// and `k_len` are read once off `checksum_combine` itself (65 calls) and
/// each combine becomes at most 64 XORs.
struct ShiftCache {
    alg: CrcAlgorithm,
    shifts: std::collections::HashMap<u64, Shift>,
}

impl ShiftCache {
    fn new(alg: CrcAlgorithm, sizes: impl Iterator<Item = u64>) -> ShiftCache {
        let mut counts = std::collections::HashMap::<u64, usize>::new();
        for size in sizes {
            *counts.entry(size).or_default() += 1;
        }
        let shifts = counts
            .into_iter()
            .filter(|&(_, count)| count >= SHIFT_MIN_PARTS)
            .map(|(size, _)| (size, Shift::new(alg, size)))
            .collect();
        ShiftCache { alg, shifts }
    }

    /// The CRC of A followed by B, from `acc` = crc(A), `crc` = crc(B), `len` = |B|.
    fn combine(&mut self, acc: u64, crc: u64, len: u64) -> u64 {
        match self.shifts.get(&len) {
            Some(shift) => shift.apply(acc) ^ crc,
            None => crc_fast::checksum_combine(self.alg, acc, crc, len),
        }
    }
}

/// `acc -> combine(acc, 0, len)` for one `len`, as a GF(2) affine map.
struct Shift {
    columns: [u64; 64],
    constant: u64,
}

impl Shift {
    fn new(alg: CrcAlgorithm, len: u64) -> Shift {
        let constant = crc_fast::checksum_combine(alg, 0, 0, len);
        let columns = std::array::from_fn(|bit| crc_fast::checksum_combine(alg, 1 << bit, 0, len) ^ constant);
        Shift { columns, constant }
    }

    #[allow(clippy::indexing_slicing, reason = "trailing_zeros of a non-zero u64 is below 64, the column count")]
    fn apply(&self, acc: u64) -> u64 {
        let mut out = self.constant;
        let mut bits = acc;
        while bits != 0 {
            out ^= self.columns[bits.trailing_zeros() as usize];
            bits &= bits - 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precomputed_shifts_combine_like_checksum_combine() {
        // 300 parts of one size (cached shift) and a few of others (direct).
        let sizes: Vec<u64> = (0..300).map(|_| 5 << 20).chain([1, 4097, 5 << 20]).collect();
        for alg in [CrcAlgorithm::Crc32IsoHdlc, CrcAlgorithm::Crc32Iscsi, CrcAlgorithm::Crc64Nvme] {
            let mask = if alg == CrcAlgorithm::Crc64Nvme { u64::MAX } else { u64::from(u32::MAX) };
            let crcs: Vec<u64> =
                (0..sizes.len() as u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) & mask).collect();
            let mut cache = ShiftCache::new(alg, sizes.iter().copied());
            assert_eq!(cache.shifts.len(), 1);
            let (mut fast, mut slow) = (crcs[0], crcs[0]);
            for (crc, len) in crcs.iter().zip(&sizes).skip(1) {
                fast = cache.combine(fast, *crc, *len);
                slow = crc_fast::checksum_combine(alg, slow, *crc, *len);
                assert_eq!(fast, slow, "{alg:?}");
            }
        }
    }

    fn checksum_of(alg: ChecksumAlgorithm, data: &[u8]) -> String {
        let mut h = Hashers::new(DigestSpec { sha256: false, checksum: Some(alg) });
        h.update(data);
        h.finish().checksum_base64().map(|(_, v)| v).unwrap_or_default()
    }

    /// Values from `aws s3api put-object --checksum-algorithm X` of "hello world"
    /// as documented by AWS and cross-checked with Python's zlib / crcmod.
    #[test]
    fn known_checksums_of_hello_world() {
        let data = b"hello world";
        assert_eq!(checksum_of(ChecksumAlgorithm::Crc32, data), "DUoRhQ==");
        assert_eq!(checksum_of(ChecksumAlgorithm::Crc32c, data), "yZRlqg==");
        assert_eq!(checksum_of(ChecksumAlgorithm::Crc64Nvme, data), "jSnVw/bqjr4=");
        assert_eq!(checksum_of(ChecksumAlgorithm::Sha1, data), "Kq5sNclPz7QV2+lfQIuc6R7oRu0=");
        assert_eq!(checksum_of(ChecksumAlgorithm::Sha256, data), "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=");
    }

    fn raw(alg: ChecksumAlgorithm, data: &[u8]) -> Vec<u8> {
        let mut h = Hashers::new(DigestSpec { sha256: false, checksum: Some(alg) });
        h.update(data);
        h.finish().checksum.map(|(_, v)| v).unwrap_or_default()
    }

    #[test]
    fn full_object_crc_combines_parts_exactly() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let (a, b, c) = (&data[..40_000], &data[40_000..40_001], &data[40_001..]);
        for alg in [ChecksumAlgorithm::Crc32, ChecksumAlgorithm::Crc32c, ChecksumAlgorithm::Crc64Nvme] {
            let parts = [raw(alg, a), raw(alg, b), raw(alg, c)];
            let sized: Vec<(&[u8], u64)> =
                parts.iter().zip([a, b, c]).map(|(p, d)| (p.as_slice(), d.len() as u64)).collect();
            assert_eq!(combine_parts(alg, &sized, true), Some(raw(alg, &data)), "{alg:?}");
        }
    }

    #[test]
    fn composite_is_checksum_of_checksums() {
        let (p1, p2) = (raw(ChecksumAlgorithm::Sha256, b"a"), raw(ChecksumAlgorithm::Sha256, b"b"));
        let joined = [p1.clone(), p2.clone()].concat();
        let parts = [(p1.as_slice(), 1), (p2.as_slice(), 1)];
        assert_eq!(
            combine_parts(ChecksumAlgorithm::Sha256, &parts, false),
            Some(raw(ChecksumAlgorithm::Sha256, &joined))
        );
        assert_eq!(combine_parts(ChecksumAlgorithm::Sha1, &parts, true), None);
    }

    /// However the body is cut into frames, the blocks are the same.
    #[test]
    fn block_crcs_do_not_depend_on_frame_boundaries() {
        let data: Vec<u8> = (0..3 * BLOCK_SIZE as u32 + 1234).map(|i| (i * 7 % 253) as u8).collect();
        let expected: Vec<u32> = data.chunks(BLOCK_SIZE as usize).map(block_crc).collect();
        assert_eq!(expected.len(), 4);
        for frame in [1usize, 1000, 65_535, 65_536, 65_537, 200_000, data.len()] {
            let mut h = Hashers::new(DigestSpec::default());
            for piece in data.chunks(frame) {
                h.update_frame(&Bytes::copy_from_slice(piece));
            }
            let blocks = h.finish().blocks;
            assert_eq!((blocks.shift, &blocks.crcs), (BLOCK_SHIFT, &expected), "frames of {frame}");
        }
        assert_eq!(BlockCrcs::of(&data).crcs, expected);
        assert_eq!(BlockCrcs::of(b"").crcs, Vec::<u32>::new());
        // CRC-32/ISCSI check value from the CRC catalogue.
        assert_eq!(block_crc(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn md5_and_size_always_computed() {
        let mut h = Hashers::new(DigestSpec::default());
        h.update(b"");
        let d = h.finish();
        assert_eq!(hex::encode(d.md5), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(d.size, 0);
    }
}
