//! The Raft layer: openraft's type configuration, the redb-backed log and state-machine
//! store, and the network that carries Raft RPCs between replicas.
//!
//! One log entry carries a [`Proposal`]: a batch of [`Command`]s stamped once with the
//! leader's clock. Batching is how a burst of REGISTERs from many phones becomes one
//! durable write instead of one per packet; each command in the batch still succeeds or
//! fails on its own ([`Applied`]).

use std::fmt;
use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::model::{Command, CommandError, Outcome};

pub mod metrics;
pub mod network;
mod replica;
pub mod store;

#[cfg(test)]
mod tests;

pub use metrics::RaftGauges;
pub use replica::{RaftSettings, Replica, StartError};

/// A replica's id in the Raft group.
pub type NodeId = u64;

/// One log entry's application data: commands proposed together, stamped with the
/// leader's clock (milliseconds since the Unix epoch) when it proposed them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub time_ms: u64,
    pub commands: Vec<Command>,
}

/// What applying a [`Proposal`] produced: one result per command, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied(pub Vec<Result<Outcome, CommandError>>);

/// How to reach a replica: its Raft/node-facing QUIC address and its HTTP admin API
/// address, both `host:port`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub raft_addr: String,
    pub api_addr: String,
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "raft={} api={}", self.raft_addr, self.api_addr)
    }
}

openraft::declare_raft_types!(
    /// openraft's type configuration for tongdai.
    pub TypeConfig:
        D = Proposal,
        R = Applied,
        NodeId = NodeId,
        Node = Member,
        SnapshotData = Cursor<Vec<u8>>,
);

/// The running Raft instance of one replica.
pub type Raft = openraft::Raft<TypeConfig>;
