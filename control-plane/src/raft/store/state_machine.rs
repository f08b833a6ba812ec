//! The state machine half of the store: the model's [`State`] in memory, persisted as
//! snapshots in redb, plus a bounded log of what changed at which revision so watch
//! streams can send deltas instead of the whole state.

use std::collections::VecDeque;
use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, LogId, RaftSnapshotBuilder, SnapshotMeta, StorageError, StoredMembership,
};
use parking_lot::RwLock;
use redb::{Database, ReadableDatabase};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{KEY_SNAPSHOT_DATA, KEY_SNAPSHOT_META, SNAPSHOT, blocking, decode, encode};
use super::{read_err, write_err};
use crate::model::{self, Command, Id, Outcome, State};
use crate::raft::{Applied, Member, NodeId, TypeConfig};

/// How many changes the delta log keeps; a watcher further behind gets a full resync.
const CHANGE_LOG_CAPACITY: usize = 100_000;

/// What a command changed, by key. Watchers re-read the current value of each key, so
/// a delta is idempotent and replaying one twice is harmless.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Change {
    Tenant(Id),
    Number(String),
    Extension {
        tenant: Id,
        ext: Id,
    },
    /// The registrations of one extension.
    Bindings {
        tenant: Id,
        ext: Id,
    },
    HuntGroup {
        tenant: Id,
        id: Id,
    },
    Queue {
        tenant: Id,
        id: Id,
    },
    Agent {
        tenant: Id,
        ext: Id,
    },
    /// Removal of expired bindings only: live bindings did not change.
    Sweep,
    /// API tokens (nodes do not cache them).
    Token,
    Trunk {
        tenant: Id,
        id: Id,
    },
    /// A request to a live call.
    CallControl {
        tenant: Id,
        call_id: String,
    },
    /// A node's load report (stored, replaced, removed or expired).
    Load(String),
    /// A request to drain a node (made or accepted).
    NodeDrain(String),
    /// Agent activity and queue statistics (nodes do not cache them).
    Acd,
    /// A click-to-call request (made or taken).
    ClickToCall(u64),
    /// A caller in a queue: joined, offered, given an exit, or gone.
    QueueEntry {
        tenant: Id,
        call_id: String,
    },
}

/// Which keys changed after a revision; see [`SmView::changes_since`].
pub type Changes = Vec<(u64, Change)>;

/// The keys a command changed; `outcome` is its result when it succeeded (a load
/// report names the other nodes' reports it expired).
fn changes_of(command: &Command, outcome: Option<&Outcome>) -> Vec<Change> {
    let ext = |tenant: &Id, ext: &Id| Change::Extension {
        tenant: tenant.clone(),
        ext: ext.clone(),
    };
    match command {
        Command::CreateTenant(t) | Command::UpdateTenant(t) => vec![Change::Tenant(t.id.clone())],
        Command::DeleteTenant { tenant } => vec![Change::Tenant(tenant.clone())],
        Command::CreateNumber(n) | Command::UpdateNumber(n) => {
            vec![Change::Number(n.digits.clone())]
        }
        Command::DeleteNumber { digits, .. } => vec![Change::Number(digits.clone())],
        Command::CreateExtension(e) | Command::UpdateExtension(e) => vec![ext(&e.tenant, &e.ext)],
        Command::DeleteExtension { tenant, ext: id } => vec![
            ext(tenant, id),
            Change::Bindings {
                tenant: tenant.clone(),
                ext: id.clone(),
            },
        ],
        Command::CreateHuntGroup(h) | Command::UpdateHuntGroup(h) => vec![Change::HuntGroup {
            tenant: h.tenant.clone(),
            id: h.id.clone(),
        }],
        Command::DeleteHuntGroup { tenant, id } => vec![Change::HuntGroup {
            tenant: tenant.clone(),
            id: id.clone(),
        }],
        Command::CreateQueue(q) | Command::UpdateQueue(q) => vec![Change::Queue {
            tenant: q.tenant.clone(),
            id: q.id.clone(),
        }],
        Command::DeleteQueue { tenant, id } => vec![Change::Queue {
            tenant: tenant.clone(),
            id: id.clone(),
        }],
        Command::CreateAgent(a) | Command::UpdateAgent(a) => vec![Change::Agent {
            tenant: a.tenant.clone(),
            ext: a.extension.clone(),
        }],
        Command::DeleteAgent { tenant, extension } => vec![Change::Agent {
            tenant: tenant.clone(),
            ext: extension.clone(),
        }],
        Command::Register(r) => vec![Change::Bindings {
            tenant: r.tenant.clone(),
            ext: r.extension.clone(),
        }],
        Command::Unregister {
            tenant, extension, ..
        } => vec![Change::Bindings {
            tenant: tenant.clone(),
            ext: extension.clone(),
        }],
        Command::SweepExpired { .. } => vec![Change::Sweep],
        Command::CreateApiToken(_) | Command::DeleteApiToken { .. } => vec![Change::Token],
        Command::CreateTrunk(t) | Command::UpdateTrunk(t) => vec![Change::Trunk {
            tenant: t.tenant.clone(),
            id: t.id.clone(),
        }],
        Command::ControlCall {
            tenant, call_id, ..
        } => vec![Change::CallControl {
            tenant: tenant.clone(),
            call_id: call_id.clone(),
        }],
        Command::DeleteTrunk { tenant, id } => vec![Change::Trunk {
            tenant: tenant.clone(),
            id: id.clone(),
        }],
        Command::QueueJoin { .. }
        | Command::QueueLeave { .. }
        | Command::QueueNodeGone { .. }
        | Command::OfferAnswered { .. }
        | Command::OfferFailed { .. }
        | Command::AgentCallEnded { .. }
        | Command::AcdTick { .. } => vec![Change::Acd],
        Command::ClickToCall { .. } => match outcome {
            Some(Outcome::ClickToCallQueued { seq }) => vec![Change::ClickToCall(*seq)],
            _ => Vec::new(),
        },
        Command::ClaimClickToCall { seq, .. } => vec![Change::ClickToCall(*seq)],
        Command::DrainNode { node } | Command::AcceptDrain { node, .. } => {
            vec![Change::NodeDrain(node.clone())]
        }
        Command::ReportLoad { node, .. } => {
            let expired = match outcome {
                Some(Outcome::LoadReported { expired }) => expired.as_slice(),
                _ => &[],
            };
            std::iter::once(node)
                .chain(expired)
                .map(|n| Change::Load(n.clone()))
                .collect()
        }
    }
}

#[derive(Debug, Default)]
struct SmData {
    state: State,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, Member>,
    /// (revision, change), oldest first.
    changes: VecDeque<(u64, Change)>,
    /// Changes at or before this revision are no longer in `changes`.
    changes_floor: u64,
}

impl SmData {
    fn reaches(&self, revision: u64) -> bool {
        (self.changes_floor..=self.state.revision()).contains(&revision)
    }
}

/// Read access to a replica's state machine, shared with the API and the node-facing
/// service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SmView {
    data: Arc<RwLock<SmData>>,
    revision: watch::Receiver<u64>,
}

impl SmView {
    /// Runs `f` on the current state.
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.data.read().state)
    }

    /// A receiver that sees every new revision.
    pub fn revisions(&self) -> watch::Receiver<u64> {
        self.revision.clone()
    }

    /// The keys changed after `revision`, oldest first, with the revision at which
    /// each changed, or `None` when the log no longer reaches back that far (the
    /// watcher must resync from a full copy).
    pub fn changes_since(&self, revision: u64) -> Option<Changes> {
        let data = self.data.read();
        if !data.reaches(revision) {
            return None;
        }
        let start = data.changes.partition_point(|(r, _)| *r <= revision);
        Some(data.changes.range(start..).cloned().collect())
    }

    /// Whether [`SmView::changes_since`] can answer for `revision` (without copying
    /// the changes).
    pub fn reaches(&self, revision: u64) -> bool {
        self.data.read().reaches(revision)
    }

    /// Runs `f` on the state together with its revision, atomically.
    pub fn read_at<R>(&self, f: impl FnOnce(&State) -> R) -> (u64, R) {
        let data = self.data.read();
        (data.state.revision(), f(&data.state))
    }
}

/// The state machine openraft drives. Cheap to clone.
#[derive(Debug, Clone)]
pub struct StateMachineStore {
    db: Arc<Database>,
    data: Arc<RwLock<SmData>>,
    revision: watch::Sender<u64>,
    /// Distinguishes snapshots built from the same log id.
    snapshot_seq: Arc<std::sync::atomic::AtomicU64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, Member>,
    data: Vec<u8>,
}

impl StateMachineStore {
    /// Restores the state from the latest snapshot in `db`, if any.
    pub(super) fn open(db: Arc<Database>) -> Result<StateMachineStore, String> {
        let mut data = SmData::default();
        if let Some(snapshot) = read_snapshot(&db).map_err(|e| e.to_string())? {
            data.state = State::restore(&snapshot.data).map_err(|e| e.to_string())?;
            data.last_applied = snapshot.meta.last_log_id;
            data.membership = snapshot.meta.last_membership;
            data.changes_floor = data.state.revision();
        }
        let (revision, _) = watch::channel(data.state.revision());
        Ok(StateMachineStore {
            db,
            data: Arc::new(RwLock::new(data)),
            revision,
            snapshot_seq: Arc::default(),
        })
    }

    pub fn view(&self) -> SmView {
        SmView {
            data: self.data.clone(),
            revision: self.revision.subscribe(),
        }
    }

    async fn save_snapshot(&self, snapshot: StoredSnapshot) -> Result<(), redb::Error> {
        let db = self.db.clone();
        let meta = encode(&snapshot.meta)?;
        blocking(move || {
            let tx = db.begin_write()?;
            {
                let mut table = tx.open_table(SNAPSHOT)?;
                table.insert(KEY_SNAPSHOT_META, meta.as_slice())?;
                table.insert(KEY_SNAPSHOT_DATA, snapshot.data.as_slice())?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }
}

fn read_snapshot(db: &Database) -> Result<Option<StoredSnapshot>, redb::Error> {
    let tx = db.begin_read()?;
    let table = tx.open_table(SNAPSHOT)?;
    let (Some(meta), Some(data)) = (table.get(KEY_SNAPSHOT_META)?, table.get(KEY_SNAPSHOT_DATA)?)
    else {
        return Ok(None);
    };
    Ok(Some(StoredSnapshot {
        meta: decode(meta.value())?,
        data: data.value().to_vec(),
    }))
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let (bytes, last_applied, membership) = {
            let data = self.data.read();
            let bytes = data
                .state
                .snapshot()
                .map_err(|e| write_err(redb::Error::Io(std::io::Error::other(e))))?;
            (bytes, data.last_applied, data.membership.clone())
        };
        let seq = self
            .snapshot_seq
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let snapshot_id = match last_applied {
            Some(id) => format!("{}-{}-{seq}", id.leader_id, id.index),
            None => format!("empty-{seq}"),
        };
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id,
        };
        self.save_snapshot(StoredSnapshot {
            meta: meta.clone(),
            data: bytes.clone(),
        })
        .await
        .map_err(write_err)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = StateMachineStore;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, Member>), StorageError<NodeId>>
    {
        let data = self.data.read();
        Ok((data.last_applied, data.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let mut out = Vec::new();
        let revision = {
            let mut guard = self.data.write();
            let data = &mut *guard;
            for entry in entries {
                data.last_applied = Some(entry.log_id);
                let applied = match entry.payload {
                    EntryPayload::Blank => Applied::default(),
                    EntryPayload::Membership(m) => {
                        data.membership = StoredMembership::new(Some(entry.log_id), m);
                        Applied::default()
                    }
                    EntryPayload::Normal(proposal) => {
                        let mut results = Vec::with_capacity(proposal.commands.len());
                        for command in proposal.commands {
                            let before = data.state.revision();
                            let entry = model::Entry {
                                time_ms: proposal.time_ms,
                                command,
                            };
                            let result = data.state.apply(&entry);
                            let after = data.state.revision();
                            if after != before {
                                let outcome = result.as_ref().ok();
                                for change in changes_of(&entry.command, outcome) {
                                    data.changes.push_back((after, change));
                                }
                            }
                            // Whatever the command was, the ACD may have moved callers
                            // (an agent logging in is offered a waiting caller).
                            let touched = data.state.take_acd_touched();
                            if after != before {
                                for (tenant, call_id) in touched.entries {
                                    data.changes
                                        .push_back((after, Change::QueueEntry { tenant, call_id }));
                                }
                                for (tenant, ext) in touched.agents {
                                    data.changes
                                        .push_back((after, Change::Agent { tenant, ext }));
                                }
                            }
                            results.push(result);
                        }
                        Applied(results)
                    }
                };
                out.push(applied);
            }
            while data.changes.len() > CHANGE_LOG_CAPACITY {
                if let Some((r, _)) = data.changes.pop_front() {
                    data.changes_floor = r;
                }
            }
            data.state.revision()
        };
        self.revision.send_if_modified(|r| {
            let changed = *r != revision;
            *r = revision;
            changed
        });
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Member>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let bytes = snapshot.into_inner();
        let state = State::restore(&bytes).map_err(|e| {
            openraft::StorageIOError::read_snapshot(
                Some(meta.signature()),
                openraft::AnyError::new(&e),
            )
        })?;
        self.save_snapshot(StoredSnapshot {
            meta: meta.clone(),
            data: bytes,
        })
        .await
        .map_err(write_err)?;
        let revision = state.revision();
        {
            let mut data = self.data.write();
            data.state = state;
            data.last_applied = meta.last_log_id;
            data.membership = meta.last_membership.clone();
            // Deltas from before the snapshot no longer describe this state.
            data.changes.clear();
            data.changes_floor = revision;
        }
        self.revision.send_replace(revision);
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let db = self.db.clone();
        let stored = blocking(move || read_snapshot(&db))
            .await
            .map_err(read_err)?;
        Ok(stored.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TenantLoad;

    /// A load report changes its own node's key and those of the reports it expired,
    /// so watchers drop expired reports too.
    #[test]
    fn a_load_report_changes_its_node_and_the_expired_ones() {
        let command = Command::ReportLoad {
            node: "node-a".into(),
            tenants: vec![TenantLoad {
                tenant: Id::new("acme").expect("valid"),
                active_calls: 1,
                attempts_per_sec: 1,
            }],
        };
        let outcome = Outcome::LoadReported {
            expired: vec!["node-b".into(), "node-c".into()],
        };
        assert_eq!(
            changes_of(&command, Some(&outcome)),
            ["node-a", "node-b", "node-c"].map(|n| Change::Load(n.into()))
        );
        assert_eq!(changes_of(&command, None), [Change::Load("node-a".into())]);
    }
}
