//! Raft RPCs between replicas over QUIC with mutual TLS ([`crate::quic`]).

use std::collections::HashMap;
use std::sync::Arc;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use parking_lot::Mutex;

use super::{Member, NodeId, TypeConfig};
use crate::quic::{Client, RpcEndpoint, RpcError};
use crate::wire::{Request, Response};

/// Dials other replicas from this replica's endpoint. One [`Client`] (one QUIC
/// connection, reconnected as needed) per peer address.
#[derive(Debug, Clone)]
pub struct QuicNetwork {
    id: NodeId,
    endpoint: RpcEndpoint,
    clients: Arc<Mutex<HashMap<String, Client>>>,
}

impl QuicNetwork {
    pub fn new(id: NodeId, endpoint: RpcEndpoint) -> QuicNetwork {
        QuicNetwork {
            id,
            endpoint,
            clients: Arc::default(),
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for QuicNetwork {
    type Network = QuicConnection;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> QuicConnection {
        let client = self
            .clients
            .lock()
            .entry(node.raft_addr.clone())
            .or_insert_with(|| self.endpoint.client(node.raft_addr.clone()))
            .clone();
        QuicConnection {
            from: self.id,
            target,
            client,
        }
    }
}

/// One peer, as openraft's replication task sees it.
#[derive(Debug)]
pub struct QuicConnection {
    from: NodeId,
    target: NodeId,
    client: Client,
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, Member, RaftError<NodeId, E>>>;

impl QuicConnection {
    async fn call<E: std::error::Error>(
        &self,
        request: &Request,
        option: &RPCOption,
    ) -> Result<Response, RPCError<NodeId, Member, RaftError<NodeId, E>>> {
        let ttl = option.hard_ttl();
        match self.client.call::<Request, Response>(request, ttl).await {
            Ok(response) => Ok(response),
            Err(RpcError::Timeout(_)) => Err(RPCError::Timeout(Timeout {
                action: openraft::network::RPCTypes::AppendEntries,
                id: self.from,
                target: self.target,
                timeout: ttl,
            })),
            Err(e @ (RpcError::Connect { .. } | RpcError::Refused { .. })) => {
                Err(RPCError::Unreachable(Unreachable::new(&e)))
            }
            Err(e) => Err(RPCError::Network(NetworkError::new(&e))),
        }
    }

    fn unexpected<E: std::error::Error>(
        &self,
        response: Response,
    ) -> RPCError<NodeId, Member, RaftError<NodeId, E>> {
        let what = match response {
            Response::Forbidden(why) => format!("replica {} refused: {why}", self.target),
            other => format!("replica {} answered {other:?}", self.target),
        };
        RPCError::Network(NetworkError::new(&std::io::Error::other(what)))
    }
}

fn remote<E: std::error::Error>(
    target: NodeId,
    e: RaftError<NodeId, E>,
) -> RPCError<NodeId, Member, RaftError<NodeId, E>> {
    RPCError::RemoteError(RemoteError::new(target, e))
}

impl RaftNetwork<TypeConfig> for QuicConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        match self.call(&Request::AppendEntries(rpc), &option).await? {
            Response::AppendEntries(r) => r.map_err(|e| remote(self.target, e)),
            other => Err(self.unexpected(other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        match self.call(&Request::InstallSnapshot(rpc), &option).await? {
            Response::InstallSnapshot(r) => r.map_err(|e| remote(self.target, e)),
            other => Err(self.unexpected(other)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        match self.call(&Request::Vote(rpc), &option).await? {
            Response::Vote(r) => r.map_err(|e| remote(self.target, e)),
            other => Err(self.unexpected(other)),
        }
    }
}
