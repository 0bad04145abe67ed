//! Notices a metadata database that went back in time.
//!
//! redb keeps two commit slots in its header and, when the newest one fails
//! its checksum (a flipped byte, a torn write), silently opens the previous
//! commit: acknowledged writes vanish with nothing logged. So every group
//! commit also bumps a sequence number inside the database, and the commit
//! thread writes the number it just committed into a small file beside it,
//! `commit-mark`. At start-up a database whose sequence is behind the mark
//! has lost commits that clients were told were durable, and the store
//! refuses to open unless the operator accepts the rollback.
//!
//! The mark is written after the commit is durable and without an fsync of
//! its own (one 16-byte `pwrite` per batch): a process crash keeps it (the
//! page cache survives), a power loss may leave it behind the database, which
//! can only hide a rollback, never report one that did not happen. It is
//! fsynced at clean shutdown. A torn or unreadable mark is ignored with a
//! warning.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use redb::{ReadableTable, WriteTransaction};

use crate::store::schema::STORE_META;
use crate::store::StoreError;

/// The key of the commit sequence in `STORE_META`.
const COMMIT_SEQ: &str = "commit_seq";

pub struct CommitMark {
    file: File,
}

impl CommitMark {
    /// Opens (or creates) the mark file; returns it with the sequence it holds.
    pub fn open(path: &Path) -> io::Result<(CommitMark, Option<u64>)> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        let mut bytes = [0u8; 16];
        let marked = match file.read_exact_at(&mut bytes, 0) {
            Ok(()) => decode(bytes),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => None,
            Err(e) => return Err(e),
        };
        if marked.is_none() && file.metadata()?.len() > 0 {
            tracing::warn!(path = %path.display(), "commit-mark is unreadable; it is rewritten at the next commit");
        }
        Ok((CommitMark { file }, marked))
    }

    /// Records that `seq` is committed. A failure only weakens the next
    /// start-up check, so it is logged, not returned.
    pub fn record(&self, seq: u64) {
        if let Err(e) = self.file.write_all_at(&encode(seq), 0) {
            tracing::warn!(error = %e, "could not update commit-mark");
        }
    }

    /// Makes the mark durable (clean shutdown).
    pub fn sync(&self) {
        if let Err(e) = self.file.sync_data() {
            tracing::warn!(error = %e, "could not sync commit-mark");
        }
    }
}

/// The sequence, followed by its complement, so a torn write is noticed.
fn encode(seq: u64) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&seq.to_le_bytes());
    bytes[8..].copy_from_slice(&(!seq).to_le_bytes());
    bytes
}

fn decode(bytes: [u8; 16]) -> Option<u64> {
    let (seq, check) = bytes.split_at(8);
    let seq = u64::from_le_bytes(seq.try_into().ok()?);
    let check = u64::from_le_bytes(check.try_into().ok()?);
    (check == !seq).then_some(seq)
}

/// Advances the database's commit sequence inside the batch's transaction.
pub fn bump(txn: &WriteTransaction) -> Result<u64, StoreError> {
    let mut table = txn.open_table(STORE_META)?;
    let next = table.get(COMMIT_SEQ)?.map_or(0, |v| v.value()) + 1;
    table.insert(COMMIT_SEQ, next)?;
    Ok(next)
}

/// The database's commit sequence (0 for a database that never had one).
pub fn current(db: &redb::Database) -> Result<u64, StoreError> {
    let txn = db.begin_write()?;
    let seq = txn.open_table(STORE_META)?.get(COMMIT_SEQ)?.map_or(0, |v| v.value());
    txn.abort()?;
    Ok(seq)
}

/// Refuses a database that is behind the mark, unless `accept` (the operator
/// chose to serve the older state; the mark is then moved back to it).
pub fn check(db_seq: u64, marked: Option<u64>, accept: bool) -> Result<(), StoreError> {
    match marked {
        Some(marked) if db_seq < marked && !accept => {
            Err(StoreError::RolledBack { database: db_seq, acknowledged: marked })
        }
        Some(marked) if db_seq < marked => {
            tracing::error!(
                database = db_seq,
                acknowledged = marked,
                "meta.redb is behind commit-mark: {} acknowledged commits are lost; serving the older state as asked",
                marked - db_seq
            );
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mark_round_trips_and_torn_marks_are_ignored() {
        assert_eq!(decode(encode(0)), Some(0));
        assert_eq!(decode(encode(123_456_789)), Some(123_456_789));
        let mut torn = encode(7);
        torn[9] ^= 1;
        assert_eq!(decode(torn), None);
        assert_eq!(decode([0; 16]), None);
    }

    #[test]
    fn a_database_behind_the_mark_is_refused_unless_accepted() {
        assert!(check(5, Some(5), false).is_ok());
        assert!(check(6, Some(5), false).is_ok(), "a mark behind the database (power loss) is fine");
        assert!(check(3, None, false).is_ok());
        assert!(matches!(check(4, Some(5), false), Err(StoreError::RolledBack { database: 4, acknowledged: 5 })));
        assert!(check(4, Some(5), true).is_ok());
    }
}
