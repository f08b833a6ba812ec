//! The Raft log, vote and committed index in redb.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, LogId, OptionalSend, RaftLogReader, StorageError, Vote};
use redb::{Database, ReadableDatabase, ReadableTable};
use tokio::sync::watch;

use super::{KEY_COMMITTED, KEY_PURGED, KEY_VOTE, LOG, META, blocking, decode, encode};
use super::{read_err, write_err};
use crate::raft::{NodeId, TypeConfig};

/// The log half of the store. Cheap to clone; clones share the database (a clone is
/// also the log reader openraft's replication tasks use).
#[derive(Debug, Clone)]
pub struct LogStore {
    db: Arc<Database>,
    /// The committed index openraft last saved: the only place openraft 0.9 tells a
    /// follower's commit index (its metrics give the applied one).
    committed: Arc<watch::Sender<Option<u64>>>,
}

impl LogStore {
    pub(super) fn new(db: Arc<Database>) -> LogStore {
        LogStore {
            db,
            committed: Arc::new(watch::Sender::new(None)),
        }
    }

    /// Follows the committed log index as openraft saves it (leader and followers).
    pub fn committed(&self) -> watch::Receiver<Option<u64>> {
        self.committed.subscribe()
    }

    async fn get_meta<T>(&self, key: &'static str) -> Result<Option<T>, redb::Error>
    where
        T: serde::de::DeserializeOwned + Send + 'static,
    {
        let db = self.db.clone();
        blocking(move || {
            let tx = db.begin_read()?;
            let table = tx.open_table(META)?;
            match table.get(key)? {
                Some(v) => Ok(Some(decode(v.value())?)),
                None => Ok(None),
            }
        })
        .await
    }

    /// Writes a small record; `durable` commits with an fsync, otherwise the next
    /// durable commit (every log append is one) carries it to disk.
    async fn put_meta<T>(
        &self,
        key: &'static str,
        value: &T,
        durable: bool,
    ) -> Result<(), redb::Error>
    where
        T: serde::Serialize,
    {
        let db = self.db.clone();
        let bytes = encode(value)?;
        blocking(move || {
            let mut tx = db.begin_write()?;
            if !durable {
                tx.set_durability(redb::Durability::None)
                    .map_err(|e| redb::Error::Io(std::io::Error::other(e)))?;
            }
            tx.open_table(META)?.insert(key, bytes.as_slice())?;
            tx.commit()?;
            Ok(())
        })
        .await
    }
}

fn to_owned_bound(b: Bound<&u64>) -> Bound<u64> {
    match b {
        Bound::Included(v) => Bound::Included(*v),
        Bound::Excluded(v) => Bound::Excluded(*v),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let db = self.db.clone();
        let range = (
            to_owned_bound(range.start_bound()),
            to_owned_bound(range.end_bound()),
        );
        blocking(move || {
            let tx = db.begin_read()?;
            let table = tx.open_table(LOG)?;
            let mut out = Vec::new();
            for item in table.range::<u64>(range)? {
                let (_, v) = item?;
                out.push(decode(v.value())?);
            }
            Ok(out)
        })
        .await
        .map_err(read_err)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let last_purged: Option<LogId<NodeId>> =
            self.get_meta(KEY_PURGED).await.map_err(read_err)?;
        let db = self.db.clone();
        let last: Option<Entry<TypeConfig>> = blocking(move || {
            let tx = db.begin_read()?;
            let table = tx.open_table(LOG)?;
            match table.last()? {
                Some((_, v)) => Ok(Some(decode(v.value())?)),
                None => Ok(None),
            }
        })
        .await
        .map_err(read_err)?;
        let last_log_id = last.map(|e| e.log_id).or(last_purged);
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        // A vote must be durable before it is answered (Raft safety).
        self.put_meta(KEY_VOTE, vote, true).await.map_err(write_err)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        self.get_meta(KEY_VOTE).await.map_err(read_err)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        // Only a hint to re-apply sooner after a restart; losing the latest value just
        // means applying those entries when the leader commits again.
        self.put_meta(KEY_COMMITTED, &committed, false)
            .await
            .map_err(write_err)?;
        self.committed.send_replace(committed.map(|l| l.index));
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        let committed = self
            .get_meta::<Option<LogId<NodeId>>>(KEY_COMMITTED)
            .await
            .map_err(read_err)?
            .flatten();
        self.committed.send_replace(committed.map(|l| l.index));
        Ok(committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let encoded = entries
            .into_iter()
            .map(|e| encode(&e).map(|bytes| (e.log_id.index, bytes)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(write_err)?;
        let db = self.db.clone();
        let result = blocking(move || {
            let tx = db.begin_write()?;
            {
                let mut table = tx.open_table(LOG)?;
                for (index, bytes) in &encoded {
                    table.insert(*index, bytes.as_slice())?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await;
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(write_err(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let db = self.db.clone();
        blocking(move || {
            let tx = db.begin_write()?;
            tx.open_table(LOG)?
                .retain_in(log_id.index.., |_, _| false)?;
            tx.commit()?;
            Ok(())
        })
        .await
        .map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let db = self.db.clone();
        let purged = encode(&log_id).map_err(write_err)?;
        blocking(move || {
            let tx = db.begin_write()?;
            tx.open_table(META)?.insert(KEY_PURGED, purged.as_slice())?;
            tx.open_table(LOG)?
                .retain_in(..=log_id.index, |_, _| false)?;
            tx.commit()?;
            Ok(())
        })
        .await
        .map_err(write_err)
    }
}
