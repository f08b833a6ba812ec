//! Requests to drain a node (`tongdai ctl node drain NODE`): the named node stops taking
//! new calls, keeps its live calls until they end (or its grace period passes), ships its
//! records and exits. Nodes are not members of the state machine; like call-control
//! requests these entries are messages carried to every node by the watch stream.
//!
//! A request is **pending** until the node it names takes it and says so
//! ([`super::Command::AcceptDrain`]); then it is **accepted**. A node acts only on a
//! pending request, once: a node restarted after a drain sees its old request accepted
//! and serves normally. Requests are dropped [`NODE_DRAIN_TTL_MS`] after their last
//! change (entry time, deterministically): a request for a node that is not running
//! lapses instead of draining whatever starts later under that name.

use serde::{Deserialize, Serialize};

use super::error::{CommandError, TextField};
use super::id::check_text;
use super::load::MAX_NODE_NAME_LEN;

/// How long a request stays in the state after it was made or accepted.
pub const NODE_DRAIN_TTL_MS: u64 = 60_000;
/// Requests at once at most (one per node name; expired ones make room).
pub const MAX_NODE_DRAINS: usize = 1024;

/// One request, as stored and sent to nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeDrain {
    pub node: String,
    /// Increases with every request, cluster-wide: a node accepts a request by its number.
    pub seq: u64,
    /// The entry time of the request.
    pub requested_at_ms: u64,
    /// The entry time of the node's acceptance; `None` while pending.
    pub accepted_at_ms: Option<u64>,
}

impl NodeDrain {
    pub fn is_pending(&self) -> bool {
        self.accepted_at_ms.is_none()
    }

    /// Whether the request is [`NODE_DRAIN_TTL_MS`] past its last change at `now_ms`.
    fn lapsed(&self, now_ms: u64) -> bool {
        let last_change = self.accepted_at_ms.unwrap_or(self.requested_at_ms);
        last_change.saturating_add(NODE_DRAIN_TTL_MS) <= now_ms
    }
}

impl super::State {
    pub fn node_drain(&self, node: &str) -> Option<&NodeDrain> {
        self.node_drains.get(node)
    }

    pub fn node_drains(&self) -> impl Iterator<Item = &NodeDrain> {
        self.node_drains.values()
    }

    /// A new pending request for `node` (replacing any earlier one).
    pub(super) fn request_drain(&mut self, node: &str, now_ms: u64) -> Result<(), CommandError> {
        check_text(TextField::NodeName, node, MAX_NODE_NAME_LEN)?;
        let live = || self.node_drains.values().filter(|d| !d.lapsed(now_ms));
        if !live().any(|d| d.node == node) && live().count() >= MAX_NODE_DRAINS {
            return Err(CommandError::TooManyDrainRequests {
                limit: MAX_NODE_DRAINS,
            });
        }
        self.node_drain_seq += 1;
        self.node_drains.insert(
            node.to_owned(),
            NodeDrain {
                node: node.to_owned(),
                seq: self.node_drain_seq,
                requested_at_ms: now_ms,
                accepted_at_ms: None,
            },
        );
        Ok(())
    }

    /// The node took request `seq`. Returns whether anything changed (accepting an
    /// accepted request again changes nothing); refused when `node` has no request
    /// numbered `seq` (a newer one replaced it, or it lapsed).
    pub(super) fn accept_drain(
        &mut self,
        node: &str,
        seq: u64,
        now_ms: u64,
    ) -> Result<bool, CommandError> {
        let unknown = || CommandError::UnknownDrainRequest {
            node: node.chars().take(MAX_NODE_NAME_LEN).collect(),
            seq,
        };
        let request = self
            .node_drains
            .get_mut(node)
            .filter(|d| d.seq == seq && !d.lapsed(now_ms))
            .ok_or_else(unknown)?;
        if request.accepted_at_ms.is_some() {
            return Ok(false);
        }
        request.accepted_at_ms = Some(now_ms);
        Ok(true)
    }

    /// Drops requests whose last change is [`NODE_DRAIN_TTL_MS`] old.
    pub(super) fn expire_node_drains(&mut self, now_ms: u64) {
        if !self.node_drains.is_empty() {
            self.node_drains.retain(|_, d| !d.lapsed(now_ms));
        }
    }
}
