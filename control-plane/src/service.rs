//! What a replica serves over QUIC: Raft RPCs from other replicas, and proposals and
//! watch streams from nodes.

use std::sync::Arc;
use std::time::Duration;

use crate::cluster::Cluster;
use crate::quic::{Peer, Reply, ReplyStream, Role, Service};
use crate::raft::Replica;
use crate::raft::store::SmView;
use crate::wire::{MAX_ITEMS_PER_EVENT, Request, Response, WatchEvent, full_copy, item_for};

/// How long a watch for a revision this replica has not reached yet waits for it
/// before sending a full copy instead.
const CATCH_UP_WAIT: Duration = Duration::from_secs(2);

/// The replica's QUIC service.
#[derive(Debug)]
pub struct ReplicaService {
    replica: Replica,
}

impl ReplicaService {
    pub fn new(replica: Replica) -> Arc<ReplicaService> {
        Arc::new(ReplicaService { replica })
    }

    async fn watch(&self, from: Option<u64>, reply: Reply) {
        let view = self.replica.view().clone();
        let mut revisions = view.revisions();
        let mut stream = reply.stream::<WatchEvent>();
        // A node that saw a revision this replica has not applied yet waits a moment
        // for it; failing that it gets a full copy (never an older state's delta).
        if let Some(from) = from {
            let _ = tokio::time::timeout(CATCH_UP_WAIT, revisions.wait_for(|r| *r >= from)).await;
        }
        let mut at = match from.filter(|r| view.reaches(*r)) {
            Some(r) => r,
            None => match send_reset(&view, &mut stream).await {
                Some(revision) => revision,
                None => return,
            },
        };
        loop {
            match view.changes_since(at) {
                Some(changes) if !changes.is_empty() => {
                    for chunk in changes.chunks(MAX_ITEMS_PER_EVENT) {
                        let revision = chunk.last().map_or(at, |(r, _)| *r);
                        let items = view.read(|state| {
                            chunk
                                .iter()
                                .filter_map(|(_, change)| item_for(state, change))
                                .collect()
                        });
                        if stream
                            .send(&WatchEvent::Delta { revision, items })
                            .await
                            .is_err()
                        {
                            return;
                        }
                        at = revision;
                    }
                }
                Some(_) => {}
                None => {
                    // Fell behind the change log (or a snapshot replaced the state).
                    match send_reset(&view, &mut stream).await {
                        Some(revision) => at = revision,
                        None => return,
                    }
                }
            }
            tokio::select! {
                changed = revisions.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                () = stream.closed() => return,
            }
        }
    }
}

/// Sends a full copy; its revision, or `None` when the watcher is gone.
async fn send_reset(view: &SmView, stream: &mut ReplyStream<WatchEvent>) -> Option<u64> {
    let (revision, mut items) = view.read_at(full_copy);
    let mut rest = items.split_off(items.len().min(MAX_ITEMS_PER_EVENT));
    let first = WatchEvent::Reset {
        revision,
        items,
        complete: rest.is_empty(),
    };
    stream.send(&first).await.ok()?;
    while !rest.is_empty() {
        let later = rest.split_off(rest.len().min(MAX_ITEMS_PER_EVENT));
        let chunk = WatchEvent::More {
            items: rest,
            complete: later.is_empty(),
        };
        stream.send(&chunk).await.ok()?;
        rest = later;
    }
    Some(revision)
}

impl Service for ReplicaService {
    type Request = Request;

    async fn handle(&self, peer: &Peer, request: Request, reply: Reply) {
        let raft = self.replica.raft();
        let response = match request {
            Request::AppendEntries(_) | Request::Vote(_) | Request::InstallSnapshot(_)
                if peer.role != Role::Replica =>
            {
                Response::Forbidden(format!(
                    "Raft RPCs need a replica certificate; {} has the {} role",
                    peer.name,
                    peer.role.as_str()
                ))
            }
            Request::AppendEntries(rpc) => Response::AppendEntries(raft.append_entries(rpc).await),
            Request::Vote(rpc) => Response::Vote(raft.vote(rpc).await),
            Request::InstallSnapshot(rpc) => {
                Response::InstallSnapshot(raft.install_snapshot(rpc).await)
            }
            Request::Propose(commands) => Response::Proposed(self.replica.propose(commands).await),
            Request::Watch { from_revision } => {
                self.watch(from_revision, reply).await;
                return;
            }
        };
        if let Err(e) = reply.send_one(&response).await {
            tracing::debug!(peer = %peer.name, "reply not delivered: {e}");
        }
    }
}
