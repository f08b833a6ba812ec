//! Messages between replicas, and between nodes and replicas, carried as postcard
//! frames over QUIC with mutual TLS.
//!
//! Replicas send each other Raft RPCs. Nodes propose commands (REGISTERs become
//! `Command::Register`) and keep a local cache of what they need fed by a watch
//! stream: a [`WatchEvent::Reset`] with a full copy, then [`WatchEvent::Delta`]s with
//! the current value of every key that changed. Revisions are the state machine's, the
//! same on every replica, so a node that reconnects to another replica resumes from
//! the revision it has.

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};

use crate::cluster::ClusterError;
use crate::model::{
    Agent, Binding, CallControl, ClickToCall, Command, CommandError, Extension, HuntGroup, Id,
    NodeDrain, NodeLoad, Number, Outcome, Queue, QueueEntry, State, Tenant, Trunk,
};
use crate::raft::store::Change;
use crate::raft::{NodeId, TypeConfig};

/// A request to a replica.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// Raft: only from peers whose certificate has the `replica` role.
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// Commit commands as one log entry (the leader batches concurrent ones further).
    Propose(Vec<Command>),
    /// Opens a stream of [`WatchEvent`]s, starting after `from_revision` (a full copy
    /// first when `None`, or when the replica's change log no longer reaches back).
    Watch {
        from_revision: Option<u64>,
    },
}

/// The answer to a unary [`Request`].
#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    Proposed(Result<Vec<Result<Outcome, CommandError>>, ClusterError>),
    /// The request is not allowed for the caller's certificate role.
    Forbidden(String),
}

/// One event of a watch stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WatchEvent {
    /// Everything a node caches, as of `revision`; replaces the node's cache. A large
    /// copy comes in chunks: `complete` is false while [`WatchEvent::More`] follows.
    Reset {
        revision: u64,
        items: Vec<Item>,
        complete: bool,
    },
    /// The next chunk of a full copy.
    More { items: Vec<Item>, complete: bool },
    /// Current values of the keys that changed, bringing the cache to `revision`.
    Delta { revision: u64, items: Vec<Item> },
}

/// The current value of one key; `None` means it was deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Item {
    Tenant(Id, Option<Tenant>),
    Number(String, Option<Number>),
    Extension {
        tenant: Id,
        ext: Id,
        value: Option<Extension>,
    },
    /// Every stored binding of an extension (expired ones included until swept; the
    /// node filters by expiry). Empty when it has none.
    Bindings {
        tenant: Id,
        ext: Id,
        bindings: Vec<Binding>,
    },
    HuntGroup {
        tenant: Id,
        id: Id,
        value: Option<HuntGroup>,
    },
    Queue {
        tenant: Id,
        id: Id,
        value: Option<Queue>,
    },
    Agent {
        tenant: Id,
        ext: Id,
        value: Option<Agent>,
    },
    /// A carrier trunk, with its registration password (the node registers with it).
    Trunk {
        tenant: Id,
        id: Id,
        value: Option<Trunk>,
    },
    /// A request to a live call; the node holding the call acts on it once (by `seq`).
    CallControl {
        tenant: Id,
        call_id: String,
        value: Option<CallControl>,
    },
    /// A node's last load report; `None` once it was removed or expired.
    Load {
        node: String,
        load: Option<NodeLoad>,
    },
    /// A request to drain a node; the node it names acts on it once, while pending.
    NodeDrain {
        node: String,
        value: Option<NodeDrain>,
    },
    /// A click-to-call request; a node that sees it untaken claims it. Not cached.
    ClickToCall {
        seq: u64,
        value: Option<ClickToCall>,
    },
    /// A caller in a queue (the node holding it rings the agents it is offered);
    /// `None` once it left.
    QueueEntry {
        tenant: Id,
        call_id: String,
        value: Option<QueueEntry>,
    },
}

/// The current value of the key a change names; `None` for changes nodes do not
/// cache (sweeps: bindings carry their expiry, nodes drop expired ones themselves).
pub fn item_for(state: &State, change: &Change) -> Option<Item> {
    Some(match change {
        Change::Tenant(id) => Item::Tenant(id.clone(), state.tenant(id).cloned()),
        Change::Number(d) => Item::Number(d.clone(), state.number(d).cloned()),
        Change::Extension { tenant, ext } => Item::Extension {
            tenant: tenant.clone(),
            ext: ext.clone(),
            value: state.extension(tenant, ext).cloned(),
        },
        Change::Bindings { tenant, ext } => Item::Bindings {
            tenant: tenant.clone(),
            ext: ext.clone(),
            bindings: state.stored_bindings(tenant, ext).to_vec(),
        },
        Change::HuntGroup { tenant, id } => Item::HuntGroup {
            tenant: tenant.clone(),
            id: id.clone(),
            value: state.hunt_group(tenant, id).cloned(),
        },
        Change::Queue { tenant, id } => Item::Queue {
            tenant: tenant.clone(),
            id: id.clone(),
            value: state.queue(tenant, id).cloned(),
        },
        Change::Agent { tenant, ext } => Item::Agent {
            tenant: tenant.clone(),
            ext: ext.clone(),
            value: state.agent(tenant, ext).cloned(),
        },
        Change::Trunk { tenant, id } => Item::Trunk {
            tenant: tenant.clone(),
            id: id.clone(),
            value: state.trunk(tenant, id).cloned(),
        },
        Change::CallControl { tenant, call_id } => Item::CallControl {
            tenant: tenant.clone(),
            call_id: call_id.clone(),
            value: state.call_control(tenant, call_id).cloned(),
        },
        Change::Load(node) => Item::Load {
            node: node.clone(),
            load: state.load_report(node).cloned(),
        },
        Change::NodeDrain(node) => Item::NodeDrain {
            node: node.clone(),
            value: state.node_drain(node).cloned(),
        },
        Change::ClickToCall(seq) => Item::ClickToCall {
            seq: *seq,
            value: state.click_to_call_request(*seq).cloned(),
        },
        Change::QueueEntry { tenant, call_id } => Item::QueueEntry {
            tenant: tenant.clone(),
            call_id: call_id.clone(),
            value: state.acd().entry(tenant, call_id).cloned(),
        },
        Change::Sweep | Change::Token | Change::Acd => return None,
    })
}

/// Items per watch event at most, so one event stays a modest QUIC frame whatever the
/// size of the state.
pub const MAX_ITEMS_PER_EVENT: usize = 10_000;

/// Everything nodes cache, as items.
pub fn full_copy(state: &State) -> Vec<Item> {
    let mut items = Vec::new();
    for t in state.tenants() {
        items.push(Item::Tenant(t.id.clone(), Some(t.clone())));
        for e in state.extensions(&t.id) {
            items.push(Item::Extension {
                tenant: t.id.clone(),
                ext: e.ext.clone(),
                value: Some(e.clone()),
            });
            let bindings = state.stored_bindings(&t.id, &e.ext);
            if !bindings.is_empty() {
                items.push(Item::Bindings {
                    tenant: t.id.clone(),
                    ext: e.ext.clone(),
                    bindings: bindings.to_vec(),
                });
            }
        }
        for h in state.hunt_groups(&t.id) {
            items.push(Item::HuntGroup {
                tenant: t.id.clone(),
                id: h.id.clone(),
                value: Some(h.clone()),
            });
        }
        for q in state.queues(&t.id) {
            items.push(Item::Queue {
                tenant: t.id.clone(),
                id: q.id.clone(),
                value: Some(q.clone()),
            });
        }
        for a in state.agents(&t.id) {
            items.push(Item::Agent {
                tenant: t.id.clone(),
                ext: a.extension.clone(),
                value: Some(a.clone()),
            });
        }
        for trunk in state.trunks(&t.id) {
            items.push(Item::Trunk {
                tenant: t.id.clone(),
                id: trunk.id.clone(),
                value: Some(trunk.clone()),
            });
        }
    }
    for n in state.numbers() {
        items.push(Item::Number(n.digits.clone(), Some(n.clone())));
    }
    for c in state.call_controls() {
        items.push(Item::CallControl {
            tenant: c.tenant.clone(),
            call_id: c.call_id.clone(),
            value: Some(c.clone()),
        });
    }
    for (node, load) in state.load_reports() {
        items.push(Item::Load {
            node: node.to_owned(),
            load: Some(load.clone()),
        });
    }
    for d in state.node_drains() {
        items.push(Item::NodeDrain {
            node: d.node.clone(),
            value: Some(d.clone()),
        });
    }
    for c in state.click_to_call_requests() {
        items.push(Item::ClickToCall {
            seq: c.seq,
            value: Some(c.clone()),
        });
    }
    for e in state.acd().entries() {
        items.push(Item::QueueEntry {
            tenant: e.tenant.clone(),
            call_id: e.call_id.clone(),
            value: Some(e.clone()),
        });
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        CallSettings, Entry, LOAD_REPORT_TTL_MS, Quotas, TenantLoad, Transport, TrunkRegistration,
    };

    fn id(s: &str) -> Id {
        Id::new(s).expect("valid")
    }

    /// Trunks reach nodes in full copies and as deltas, registration password
    /// included (the node registers with the carrier).
    #[test]
    fn trunks_are_watched() {
        let mut state = State::new();
        let trunk = Trunk {
            tenant: id("acme"),
            id: id("viettel"),
            address: "203.0.113.7:5060".into(),
            transport: Transport::Udp,
            trusted_sources: vec!["203.0.113.0/24".into()],
            registration: Some(TrunkRegistration {
                username: "acme".into(),
                password: "carrier-secret".into(),
                domain: "sip.viettel.example".into(),
                expires_secs: 600,
            }),
            max_concurrent_calls: 30,
            failover: None,
        };
        for command in [
            Command::CreateTenant(Tenant {
                id: id("acme"),
                name: "ACME".into(),
                quotas: Quotas {
                    max_concurrent_calls: 1,
                    max_call_attempts_per_sec: 1,
                    max_registrations: 1,
                },
                calls: CallSettings::default(),
            }),
            Command::CreateTrunk(Box::new(trunk.clone())),
        ] {
            state
                .apply(&Entry {
                    time_ms: 0,
                    command,
                })
                .expect("applies");
        }
        let item = Item::Trunk {
            tenant: id("acme"),
            id: id("viettel"),
            value: Some(trunk),
        };
        assert!(full_copy(&state).contains(&item));
        let change = Change::Trunk {
            tenant: id("acme"),
            id: id("viettel"),
        };
        assert_eq!(item_for(&state, &change), Some(item));
        state
            .apply(&Entry {
                time_ms: 0,
                command: Command::DeleteTrunk {
                    tenant: id("acme"),
                    id: id("viettel"),
                },
            })
            .expect("deleted");
        assert_eq!(
            item_for(&state, &change),
            Some(Item::Trunk {
                tenant: id("acme"),
                id: id("viettel"),
                value: None,
            })
        );
    }

    /// Load reports reach nodes in full copies and as deltas, and an expired one as
    /// its removal.
    #[test]
    fn load_reports_are_watched() {
        let mut state = State::new();
        let report = |node: &str, time_ms: u64| Entry {
            time_ms,
            command: Command::ReportLoad {
                node: node.into(),
                tenants: vec![TenantLoad {
                    tenant: id("acme"),
                    active_calls: 3,
                    attempts_per_sec: 1,
                }],
            },
        };
        state.apply(&report("node-a", 1_000)).expect("applies");
        let item = Item::Load {
            node: "node-a".into(),
            load: state.load_report("node-a").cloned(),
        };
        assert!(matches!(&item, Item::Load { load: Some(l), .. } if l.time_ms == 1_000));
        assert!(full_copy(&state).contains(&item));
        let change = Change::Load("node-a".into());
        assert_eq!(item_for(&state, &change), Some(item));
        state
            .apply(&report("node-b", 1_001 + LOAD_REPORT_TTL_MS))
            .expect("applies");
        assert_eq!(
            item_for(&state, &change),
            Some(Item::Load {
                node: "node-a".into(),
                load: None,
            })
        );
    }
}
