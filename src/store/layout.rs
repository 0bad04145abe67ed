//! Every name Tessera uses on disk, and the directory fsync that makes a rename
//! durable. Nothing else in the crate builds a path inside the data folder.
//!
//! ```text
//! DATA/
//!   meta.redb        every table (see schema.rs)
//!   blobs/ab/<id>    immutable bodies, `ab` = first byte of the id in hex
//!   tmp/<id>         files being written; anything here at start-up is garbage
//!   reserve          space held back for the database on a full disk (space.rs)
//!   gateways/<id>/   with a shared metadata database (docs/scale-out.md), each
//!                    gateway's own `tmp/`, `reserve` and `server-info`, so one
//!                    gateway's start-up clean-up never touches another's files
//! ```
//! One level of 256 fan-out folders keeps each folder small (4,000 files per
//! folder at a million blobs) while letting start-up create them all once.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// A blob's identity: 128 random bits, never reused, never derived from a key.
pub type BlobId = u128;

#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
    /// The folder of this process's own files: the root, or with a shared
    /// metadata database, `gateways/<id>`.
    own: PathBuf,
}

impl Layout {
    /// Creates the folder structure if missing and fsyncs what it created.
    pub fn create(root: &Path) -> io::Result<Layout> {
        Layout::existing(root).created()
    }

    /// [`Layout::create`] for the gateway `id` of several sharing `root`.
    pub fn create_for_gateway(root: &Path, id: &str) -> io::Result<Layout> {
        let layout = Layout { root: root.to_path_buf(), own: Layout::gateway_dir(root, id) };
        layout.created()
    }

    /// The folder of gateway `id`'s own files (see the module doc).
    fn gateway_dir(root: &Path, id: &str) -> PathBuf {
        root.join("gateways").join(id)
    }

    fn created(self) -> io::Result<Layout> {
        fs::create_dir_all(self.tmp_dir())?;
        let blobs = self.root.join("blobs");
        fs::create_dir_all(&blobs)?;
        for fan in 0..=255u8 {
            // Gateways started at once on a new shared folder race here: a
            // folder another one just made is as good as one made here.
            match fs::create_dir(blobs.join(format!("{fan:02x}"))) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
        }
        fsync_dir(&blobs)?;
        fsync_dir(&self.root)?;
        Ok(self)
    }

    /// The layout of a folder as it is, creating nothing (offline backup, scrub).
    pub fn existing(root: &Path) -> Layout {
        Layout { root: root.to_path_buf(), own: root.to_path_buf() }
    }

    /// Whether the folder is the blob folder of gateways sharing a metadata
    /// database, so not a one-node folder: it has gateways' folders and no
    /// redb database.
    pub fn is_shared_by_gateways(&self) -> bool {
        self.root.join("gateways").is_dir() && !self.db_path().exists()
    }

    /// Where a running server announces its address (see `admin.rs`).
    pub fn server_info_path(&self) -> PathBuf {
        self.own.join("server-info")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The reserve file (see `space.rs`), and where it is written before its rename.
    pub fn reserve_path(&self) -> PathBuf {
        self.own.join("reserve")
    }

    pub fn reserve_tmp_path(&self) -> PathBuf {
        self.tmp_dir().join("reserve")
    }

    pub fn db_path(&self) -> PathBuf {
        self.root.join("meta.redb")
    }

    /// The last commit sequence acknowledged (see `commit_mark.rs`).
    pub fn commit_mark_path(&self) -> PathBuf {
        self.root.join("commit-mark")
    }

    pub fn credentials_path(&self) -> PathBuf {
        self.root.join("root-credentials")
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.own.join("tmp")
    }

    pub fn tmp_path(&self, id: BlobId) -> PathBuf {
        self.tmp_dir().join(format!("{id:032x}"))
    }

    pub fn blob_dir(&self, id: BlobId) -> PathBuf {
        self.root.join("blobs").join(format!("{:02x}", (id >> 120) as u8))
    }

    pub fn blob_path(&self, id: BlobId) -> PathBuf {
        self.blob_dir(id).join(format!("{id:032x}"))
    }

    /// Every blob file currently on disk, for the background orphan sweep.
    pub fn all_blob_ids(&self) -> io::Result<Vec<BlobId>> {
        let mut ids = Vec::new();
        for fan in fs::read_dir(self.root.join("blobs"))? {
            for entry in fs::read_dir(fan?.path())? {
                let name = entry?.file_name();
                if let Some(id) = name.to_str().and_then(|n| u128::from_str_radix(n, 16).ok()) {
                    ids.push(id);
                }
            }
        }
        Ok(ids)
    }
}

/// The id of "no file": an empty body or part has no blob.
pub const NO_BLOB: BlobId = 0;

/// The top 64 bits of every packed blob's id (`store/redb_meta/pack.rs`), "tsrpack"
/// in ASCII; the low 64 bits are the blob's position in the pack. Random ids
/// never have them, so one table of reference counts serves both kinds.
const PACKED_TAG: u64 = 0x7473_7270_6163_6b00;

/// The id of the packed blob at `position` in the pack.
pub fn packed_id(position: u64) -> BlobId {
    (u128::from(PACKED_TAG) << 64) | u128::from(position)
}

/// The position in the pack of a packed blob; `None` for a file (or an
/// inline row of an older version).
pub fn packed_position(id: BlobId) -> Option<u64> {
    ((id >> 64) as u64 == PACKED_TAG).then_some(id as u64)
}

/// A fresh random blob id (never [`NO_BLOB`], never a packed blob's).
pub fn new_blob_id() -> io::Result<BlobId> {
    loop {
        let mut bytes = [0u8; 16];
        getrandom::getrandom(&mut bytes).map_err(io::Error::other)?;
        let id = u128::from_be_bytes(bytes);
        if id != NO_BLOB && packed_position(id).is_none() {
            return Ok(id);
        }
    }
}

/// Makes the creation, rename or removal of entries in `dir` durable: without it
/// a power loss can forget a rename even though the file's data was synced.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateways_creating_one_layout_at_once_all_succeed() {
        for round in 0..20 {
            let root = tempfile::tempdir().unwrap();
            let starts: Vec<_> = (0..4)
                .map(|gateway| {
                    let root = root.path().to_path_buf();
                    std::thread::spawn(move || Layout::create_for_gateway(&root, &format!("g{gateway}")).map(|_| ()))
                })
                .collect();
            for start in starts {
                let made = start.join().unwrap();
                assert!(made.is_ok(), "round {round}: {made:?}");
            }
            assert!(root.path().join("blobs/ff").is_dir());
        }
    }
}
