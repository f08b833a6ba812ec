//! What the admin API and the node-facing service need from a replica, as a trait so
//! the API can be exercised over any implementation of it.
//!
//! [`crate::raft`]'s replica implements it over a real Raft group: `propose` goes
//! through the leader's log, `read` reads the local state machine after `linearizable`
//! confirmed leadership when freshness matters.

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::model::{Command, CommandError, Outcome, State};
use crate::raft::{Member, NodeId};

/// Why a proposal, a linearizable read or a membership change did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ClusterError {
    /// This replica is not the leader. `leader` is who is, when known; the caller
    /// retries there (the API answers 307 with the leader's API address).
    #[error("this replica is not the leader; the leader is {}", leader.as_ref().map(|(id, m)| format!("{id} ({})", m.api_addr)).unwrap_or_else(|| "unknown (election in progress)".into()))]
    NotLeader { leader: Option<(NodeId, Member)> },
    /// No quorum, shutting down, a storage failure: retry later.
    #[error("cluster unavailable: {0}")]
    Unavailable(String),
    /// A membership change that cannot be made (unknown node, would remove the last
    /// voter, ...).
    #[error("membership change refused: {0}")]
    Membership(String),
}

/// The state of the Raft group as one replica sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// The replica answering.
    pub id: NodeId,
    pub state: String,
    pub term: u64,
    pub leader: Option<NodeId>,
    /// Index of the last log entry applied to this replica's state machine.
    pub last_applied: Option<u64>,
    /// Index of the last log entry this replica has.
    pub last_log_index: Option<u64>,
    /// Index of the last committed entry this replica knows of.
    pub committed: Option<u64>,
    /// Last index covered by this replica's latest snapshot.
    pub snapshot: Option<u64>,
    /// Entries up to this index were purged from the log.
    pub purged: Option<u64>,
    pub voters: Vec<(NodeId, Member)>,
    pub learners: Vec<(NodeId, Member)>,
    /// On the leader: each member's replication lag in log entries (None when nothing
    /// has been acknowledged yet). Empty on followers.
    pub lag: Vec<(NodeId, Option<u64>)>,
    /// State-machine revision (bumped by every change).
    pub revision: u64,
}

/// A replica as seen by the API.
pub trait Cluster: Clone + Send + Sync + 'static {
    /// Proposes commands as one log entry; resolves when it is committed and applied,
    /// with one result per command.
    fn propose(
        &self,
        commands: Vec<Command>,
    ) -> impl Future<Output = Result<Vec<Result<Outcome, CommandError>>, ClusterError>> + Send;

    /// Resolves when a read of the local state is linearizable (this replica is the
    /// leader and has applied everything committed before the call).
    fn linearizable(&self) -> impl Future<Output = Result<(), ClusterError>> + Send;

    /// Runs `f` on the local state machine.
    fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R;

    fn status(&self) -> impl Future<Output = ClusterStatus> + Send;

    /// Adds a non-voting member that starts receiving the log; resolves when it caught up.
    fn add_learner(
        &self,
        id: NodeId,
        member: Member,
    ) -> impl Future<Output = Result<(), ClusterError>> + Send;

    /// Makes a learner a voter.
    fn promote(&self, id: NodeId) -> impl Future<Output = Result<(), ClusterError>> + Send;

    /// Removes a voter or learner.
    fn remove(&self, id: NodeId) -> impl Future<Output = Result<(), ClusterError>> + Send;
}
