//! Resume files: what an interrupted transfer had finished, rewritten
//! atomically (temp file, rename) after every part, so a kill at any moment
//! leaves the previous or the next version, never a torn one; an upload's
//! is also fsynced (the parts it names are acknowledged by the server). JSON, with a format version: a file of another version, or one
//! that does not parse, is ignored and the transfer starts over.
//!
//! - An upload's file is `<state home>/uploads/<hash>.json` (see
//!   [`super::state_home`]), the hash naming endpoint, bucket, key and the
//!   source's absolute path: the source's folder may be read-only.
//! - A download's file is `.NAME.tessera-download` beside the target, next
//!   to the partial file `.NAME.tessera-partial` it describes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const FORMAT: u32 = 2;

/// A multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadState {
    pub format: u32,
    pub endpoint: String,
    pub bucket: String,
    pub key: String,
    pub source: Fingerprint,
    pub part_size: u64,
    pub upload_id: String,
    /// Part number -> what the server answered for it.
    pub parts: BTreeMap<u32, DonePart>,
}

/// A source file as it was when the upload started: any change restarts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub size: u64,
    pub mtime_s: i64,
    pub mtime_ns: i64,
}

/// A part the server acknowledged: its ETag (hex MD5) and SHA-256 (base64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DonePart {
    pub etag: String,
    pub sha256: String,
}

/// A download in progress into its partial file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadState {
    pub format: u32,
    pub endpoint: String,
    pub bucket: String,
    pub key: String,
    /// The object's ETag and size when the download started: `If-Range`
    /// sends the ETag, so a replaced object is never mixed into the file.
    pub etag: String,
    pub size: u64,
    pub part_size: u64,
    /// The object's SHA-256 checksum when the server gave one (base64,
    /// `-N` for a composite of N parts).
    #[serde(default)]
    pub sha256: Option<String>,
    /// What `done` records of each range.
    #[serde(default)]
    pub digest: RangeDigest,
    /// The ranges written to the partial file: index -> the hex digest of
    /// the range's bytes.
    pub done: BTreeMap<u64, String>,
}

/// The hash a download keeps of each range: SHA-256 when the ranges are
/// the parts of an object with a composite SHA-256 checksum (or the one
/// range of an object with a whole-object one), so the ranges' hashes give
/// that checksum; else MD5, which gives the ETag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RangeDigest {
    #[default]
    Md5,
    Sha256,
}

impl RangeDigest {
    pub fn hex_of(self, bytes: &[u8]) -> String {
        match self {
            RangeDigest::Md5 => hex::encode(md5::Md5::digest(bytes)),
            RangeDigest::Sha256 => hex::encode(Sha256::digest(bytes)),
        }
    }
}

/// The upload resume file for these ends of a copy.
pub fn upload_path(home: &Path, endpoint: &str, bucket: &str, key: &str, source: &Path) -> PathBuf {
    let mut hasher = Sha256::new();
    for field in [endpoint.as_bytes(), bucket.as_bytes(), key.as_bytes(), source.as_os_str().as_encoded_bytes()] {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field);
    }
    let hash = hex::encode(hasher.finalize());
    home.join("uploads").join(format!("{}.json", hash.get(..32).unwrap_or(&hash)))
}

/// `.NAME.<suffix>` beside `target`.
pub fn beside(target: &Path, suffix: &str) -> PathBuf {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    target.with_file_name(format!(".{name}.{suffix}"))
}

/// The state at `path`, or `None` when there is none (or none usable).
pub fn load<T: DeserializeOwned + HasFormat>(path: &Path) -> std::io::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(serde_json::from_slice::<T>(&bytes).ok().filter(|s| s.format() == FORMAT)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub trait HasFormat {
    fn format(&self) -> u32;
}

impl HasFormat for UploadState {
    fn format(&self) -> u32 {
        self.format
    }
}

impl HasFormat for DownloadState {
    fn format(&self) -> u32 {
        self.format
    }
}

/// Whether a save waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// fsync the file and its folder: the state survives a power loss.
    Yes,
    /// Rename only: a crash leaves the old or the new file, a power loss
    /// maybe neither (the transfer then starts over). For states whose
    /// records are checked again when resumed (downloads).
    No,
}

/// Replaces `path` with `bytes`: temp file, rename (with `Flush::Yes`, the
/// file fsynced before and the folder after).
pub fn save(path: &Path, bytes: &[u8], flush: Flush) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    if flush == Flush::Yes {
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    match flush {
        Flush::Yes => std::fs::File::open(dir)?.sync_all(),
        Flush::No => Ok(()),
    }
}

/// Removes a resume file; one already gone is fine.
pub fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_ignores_other_formats() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b.json");
        assert_eq!(load::<UploadState>(&path).unwrap(), None);
        let mut state = UploadState {
            format: FORMAT,
            endpoint: "http://h".into(),
            bucket: "bkt".into(),
            key: "k".into(),
            source: Fingerprint { size: 7, mtime_s: 1, mtime_ns: 2 },
            part_size: 5 << 20,
            upload_id: "id".into(),
            parts: BTreeMap::from([(3, DonePart { etag: "e".into(), sha256: "s".into() })]),
        };
        save(&path, &serde_json::to_vec(&state).unwrap(), Flush::Yes).unwrap();
        assert_eq!(load::<UploadState>(&path).unwrap(), Some(state.clone()));
        state.format = FORMAT + 1;
        save(&path, &serde_json::to_vec(&state).unwrap(), Flush::Yes).unwrap();
        assert_eq!(load::<UploadState>(&path).unwrap(), None);
        save(&path, b"{not json", Flush::No).unwrap();
        assert_eq!(load::<UploadState>(&path).unwrap(), None);
        assert_eq!(beside(Path::new("/d/f.bin"), "x"), Path::new("/d/.f.bin.x"));
    }
}
