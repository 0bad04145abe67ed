//! The embedded metadata backend: one redb file in the data folder.
//!
//! What only a single process over its own database file needs lives here:
//! the group committer (`commit.rs`), the commit sequence kept beside the
//! file (`commit_mark.rs`), the slot that reopens the database after a
//! failed commit (`dbslot.rs`), small bodies packed into the database
//! (`pack.rs`) and online backups of the file (`backup.rs`). The S3
//! semantics written against its tables are still in the parent module.

pub(super) mod backup;
pub(super) mod commit;
pub(super) mod commit_mark;
pub(super) mod dbslot;
#[cfg(test)]
pub(super) mod faults;
pub mod pack;
pub(super) mod txn;

pub use backup::backup_offline;

use std::path::Path;

use redb::Database;

use super::schema::{self, BLOB_REFS, BUCKETS, DEAD_BLOBS, OBJECTS};
use super::{content, StoreError, StoreResult};
use dbslot::DbSlot;

/// Opens the database, creates missing tables and reads its commit sequence.
/// redb asserts (panics) on some damaged pages instead of returning an error:
/// a damaged file then stops the start with an error naming it, not a bare panic.
pub(super) fn open_database(path: &Path) -> StoreResult<(DbSlot, u64)> {
    let opened = std::panic::catch_unwind(|| {
        let db = DbSlot::open(path.to_path_buf())?;
        init_tables(&*db.get()?)?;
        let seq = commit_mark::current(&*db.get()?)?;
        Ok((db, seq))
    });
    let damaged = |cause: Box<dyn std::error::Error + Send + Sync>| {
        let context = format!(
            "{} cannot be read; if it is damaged, restore it from a backup (docs/reliability.md)",
            path.display()
        );
        StoreError::caused(context, cause)
    };
    match opened {
        Ok(Ok(opened)) => Ok(opened),
        Ok(Err(e @ StoreError::Internal { .. })) => Err(damaged(e.into())),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(damaged("redb panicked while reading it".into())),
    }
}

fn init_tables(db: &Database) -> StoreResult<()> {
    let txn = db.begin_write()?;
    txn.open_table(BUCKETS)?;
    txn.open_table(OBJECTS)?;
    txn.open_table(BLOB_REFS)?;
    txn.open_table(DEAD_BLOBS)?;
    txn.open_table(schema::UPLOADS)?;
    txn.open_table(schema::UPLOAD_INDEX)?;
    txn.open_table(schema::PARTS)?;
    txn.open_table(schema::COMPLETED_UPLOADS)?;
    txn.open_table(schema::INLINE_BLOBS)?;
    txn.open_table(schema::BLOB_CRCS)?;
    txn.open_table(schema::STORE_META)?;
    txn.open_table(schema::PACK_CHUNKS)?;
    txn.open_table(schema::PACK_LIVE)?;
    txn.open_table(schema::PACK_DEAD)?;
    txn.open_table(schema::VERSIONS)?;
    txn.open_table(schema::USERS)?;
    txn.open_table(schema::USER_KEYS)?;
    txn.open_table(schema::CONTENT)?;
    txn.open_table(schema::BLOB_CONTENT)?;
    txn.open_table(schema::CONTENT_HOLDERS)?;
    txn.commit()?;
    content::count_existing_holders(db)
}
