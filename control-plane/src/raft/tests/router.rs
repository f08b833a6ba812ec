//! An in-memory network for Raft tests, after openraft's own test router: replicas in
//! one process call each other's `Raft` directly, and the router can cut links
//! (partitions), drop a fraction of messages and delay them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use parking_lot::Mutex;
use rand::Rng;

use crate::raft::{Member, NodeId, Raft, TypeConfig};

#[derive(Default)]
struct Links {
    rafts: BTreeMap<NodeId, Raft>,
    /// Directed links that deliver nothing.
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Fraction of messages lost, 0.0..=1.0.
    drop_rate: f64,
    /// Each message is delayed by a uniform random time up to this.
    max_delay: Duration,
}

/// The shared in-memory network. Cheap to clone.
#[derive(Clone, Default)]
pub struct Router {
    links: Arc<Mutex<Links>>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Router")
    }
}

impl Router {
    pub fn register(&self, id: NodeId, raft: Raft) {
        self.links.lock().rafts.insert(id, raft);
    }

    /// Removes a replica, as if its process died.
    pub fn unregister(&self, id: NodeId) {
        self.links.lock().rafts.remove(&id);
    }

    /// Splits the replicas into groups that only reach members of their own group.
    pub fn partition(&self, groups: &[&[NodeId]]) {
        let mut links = self.links.lock();
        links.cut.clear();
        for (i, a) in groups.iter().enumerate() {
            for (j, b) in groups.iter().enumerate() {
                if i != j {
                    for x in *a {
                        for y in *b {
                            links.cut.insert((*x, *y));
                        }
                    }
                }
            }
        }
    }

    pub fn heal(&self) {
        self.links.lock().cut.clear();
    }

    pub fn set_loss(&self, drop_rate: f64, max_delay: Duration) {
        let mut links = self.links.lock();
        links.drop_rate = drop_rate;
        links.max_delay = max_delay;
    }

    pub fn network(&self, from: NodeId) -> RouterNetwork {
        RouterNetwork {
            from,
            router: self.clone(),
        }
    }

    /// The target's Raft if the message gets through, after its delay.
    async fn deliver(&self, from: NodeId, to: NodeId) -> Result<Raft, NetworkError> {
        let (raft, delay) = {
            let links = self.links.lock();
            let lost = links.cut.contains(&(from, to))
                || (links.drop_rate > 0.0 && rand::rng().random_bool(links.drop_rate));
            let raft = links.rafts.get(&to).cloned();
            let delay = if links.max_delay.is_zero() {
                Duration::ZERO
            } else {
                links.max_delay.mul_f64(rand::rng().random_range(0.0..1.0))
            };
            match raft {
                Some(raft) if !lost => (raft, delay),
                _ => {
                    return Err(NetworkError::new(&std::io::Error::other(format!(
                        "{from} -> {to}: message lost"
                    ))));
                }
            }
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok(raft)
    }
}

/// One replica's view of the router.
#[derive(Clone)]
pub struct RouterNetwork {
    from: NodeId,
    router: Router,
}

impl RaftNetworkFactory<TypeConfig> for RouterNetwork {
    type Network = RouterConnection;

    async fn new_client(&mut self, target: NodeId, _node: &Member) -> RouterConnection {
        RouterConnection {
            from: self.from,
            to: target,
            router: self.router.clone(),
        }
    }
}

pub struct RouterConnection {
    from: NodeId,
    to: NodeId,
    router: Router,
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, Member, RaftError<NodeId, E>>>;

fn remote<E: std::error::Error>(
    to: NodeId,
    e: RaftError<NodeId, E>,
) -> RPCError<NodeId, Member, RaftError<NodeId, E>> {
    RPCError::RemoteError(RemoteError::new(to, e))
}

impl RaftNetwork<TypeConfig> for RouterConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        let raft = self.router.deliver(self.from, self.to).await?;
        let response = raft
            .append_entries(rpc)
            .await
            .map_err(|e| remote(self.to, e))?;
        // The reply crosses the network too.
        self.router.deliver(self.to, self.from).await?;
        Ok(response)
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        let raft = self.router.deliver(self.from, self.to).await?;
        let response = raft
            .install_snapshot(rpc)
            .await
            .map_err(|e| remote(self.to, e))?;
        self.router.deliver(self.to, self.from).await?;
        Ok(response)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        let raft = self.router.deliver(self.from, self.to).await?;
        let response = raft.vote(rpc).await.map_err(|e| remote(self.to, e))?;
        self.router.deliver(self.to, self.from).await?;
        Ok(response)
    }
}
