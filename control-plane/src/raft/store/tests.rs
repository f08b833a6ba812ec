use openraft::StorageError;
use openraft::testing::{StoreBuilder, Suite};

use super::{LogStore, StateMachineStore};
use crate::raft::{NodeId, TypeConfig};

/// Builds a fresh store in a temporary directory; the directory lives as long as the
/// guard.
struct TempStore;

#[derive(Debug)]
struct TempDirGuard(std::path::PathBuf);

impl Drop for TempDirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn temp_dir(tag: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tongdai-store-{tag}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDirGuard> for TempStore {
    async fn build(
        &self,
    ) -> Result<(TempDirGuard, LogStore, StateMachineStore), StorageError<NodeId>> {
        let dir = temp_dir("suite");
        let (log, sm) = super::open(&dir)
            .await
            .map_err(|e| openraft::StorageIOError::write(openraft::AnyError::new(&e)))?;
        Ok((TempDirGuard(dir), log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    if let Err(e) = Suite::test_all(TempStore) {
        panic!("openraft storage suite failed: {e}");
    }
}

/// The committed index openraft saves is what the replica exports as
/// `tongdai_control_plane_committed_index`; a restarted store announces the saved one.
#[tokio::test]
async fn the_saved_committed_index_is_announced() {
    use openraft::storage::RaftLogStorage;
    use openraft::{CommittedLeaderId, LogId};

    let dir = temp_dir("committed");
    let _guard = TempDirGuard(dir.clone());
    let (mut log, _sm) = super::open(&dir).await.expect("open");
    let committed = log.committed();
    assert_eq!(*committed.borrow(), None);
    let id = LogId::new(CommittedLeaderId::new(2, 1), 17);
    log.save_committed(Some(id)).await.expect("save");
    assert_eq!(*committed.borrow(), Some(17));
    drop((log, _sm));

    let (mut log, _sm) = super::open(&dir).await.expect("reopen");
    let committed = log.committed();
    assert_eq!(log.read_committed().await.expect("read"), Some(id));
    assert_eq!(*committed.borrow(), Some(17));
}
