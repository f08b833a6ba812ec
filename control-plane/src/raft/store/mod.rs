//! Durable storage for one replica, in a single redb file (`raft.redb` in the data
//! directory): the Raft log, the vote, the committed index and the latest state-machine
//! snapshot. Every write commits with redb's `Durability::Immediate` (fsync) before
//! openraft is told it happened, so an acknowledged entry survives `kill -9`.
//!
//! The state machine itself lives in memory ([`StateMachineStore`]) and is persisted as
//! snapshots: on start it is restored from the latest snapshot, and openraft re-applies
//! the committed log entries after it (the committed index is saved, so this happens
//! before the replica serves anything). Snapshots are taken every
//! [`crate::raft::RaftSettings::snapshot_every`] entries and the log before them is
//! purged, so neither the log nor the file grows without bound.

mod log;
mod state_machine;

#[cfg(test)]
pub(crate) mod tests;

use std::path::Path;
use std::sync::Arc;

use openraft::{AnyError, StorageError, StorageIOError};
use redb::{Database, TableDefinition};

pub use log::LogStore;
pub use state_machine::{Change, Changes, SmView, StateMachineStore};

use super::NodeId;

/// Log entries by index, postcard-encoded `openraft::Entry<TypeConfig>`.
const LOG: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("log");
/// Small records: the vote, the committed and last purged log ids.
const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
/// The latest snapshot: `meta` and `data`.
const SNAPSHOT: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("snapshot");

const KEY_VOTE: &str = "vote";
const KEY_COMMITTED: &str = "committed";
const KEY_PURGED: &str = "purged";
const KEY_SNAPSHOT_META: &str = "meta";
const KEY_SNAPSHOT_DATA: &str = "data";

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create data directory {dir}: {source}")]
    CreateDir { dir: String, source: std::io::Error },
    #[error("cannot open {file}: {source} (is another tongdai process using this data directory?)")]
    Database { file: String, source: redb::Error },
    #[error("{file} holds a snapshot that cannot be read: {reason}")]
    CorruptSnapshot { file: String, reason: String },
}

/// Opens (creating if needed) the store in `dir` and returns its two halves.
pub async fn open(dir: &Path) -> Result<(LogStore, StateMachineStore), OpenError> {
    std::fs::create_dir_all(dir).map_err(|source| OpenError::CreateDir {
        dir: dir.display().to_string(),
        source,
    })?;
    let file = dir.join("raft.redb");
    let db = {
        let file = file.clone();
        tokio::task::spawn_blocking(move || open_db(&file))
            .await
            .map_err(|e| OpenError::Database {
                file: file_name(dir),
                source: redb::Error::Io(std::io::Error::other(e)),
            })?
    }
    .map_err(|source| OpenError::Database {
        file: file.display().to_string(),
        source,
    })?;
    let db = Arc::new(db);
    let sm = StateMachineStore::open(db.clone()).map_err(|reason| OpenError::CorruptSnapshot {
        file: file.display().to_string(),
        reason,
    })?;
    Ok((LogStore::new(db), sm))
}

fn file_name(dir: &Path) -> String {
    dir.join("raft.redb").display().to_string()
}

fn open_db(file: &Path) -> Result<Database, redb::Error> {
    let db = Database::create(file)?;
    // Create the tables so read transactions never meet a missing one.
    let tx = db.begin_write()?;
    tx.open_table(LOG)?;
    tx.open_table(META)?;
    tx.open_table(SNAPSHOT)?;
    tx.commit()?;
    Ok(db)
}

/// Runs blocking redb work off the async runtime.
async fn blocking<T, F>(f: F) -> Result<T, redb::Error>
where
    F: FnOnce() -> Result<T, redb::Error> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) => Err(redb::Error::Io(std::io::Error::other(e))),
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, redb::Error> {
    postcard::to_allocvec(value).map_err(|e| redb::Error::Io(std::io::Error::other(e)))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, redb::Error> {
    postcard::from_bytes(bytes)
        .map_err(|e| redb::Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

fn read_err(e: redb::Error) -> StorageError<NodeId> {
    StorageIOError::read(AnyError::new(&e)).into()
}

fn write_err(e: redb::Error) -> StorageError<NodeId> {
    StorageIOError::write(AnyError::new(&e)).into()
}
