//! One control-plane replica: openraft over our store, a proposer that batches
//! concurrent proposals into log entries, and the leader's sweeper of expired
//! registrations. It implements [`Cluster`], which the admin API and the node-facing
//! service are written against.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openraft::error::{CheckIsLeaderError, ClientWriteError, ForwardToLeader, RaftError};
use openraft::{ChangeMembers, RaftNetworkFactory, ServerState, SnapshotPolicy};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use super::store::{self, OpenError, SmView};
use super::{Member, NodeId, Proposal, Raft, RaftGauges, TypeConfig};
use crate::batch::next_batch;
use crate::cluster::{Cluster, ClusterError, ClusterStatus};
use crate::model::{Command, CommandError, Outcome, State};

/// Timing and log-compaction settings of a replica.
#[derive(Debug, Clone)]
pub struct RaftSettings {
    pub heartbeat: Duration,
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    /// Take a snapshot (and purge the log before it) after this many entries.
    pub snapshot_every: u64,
    /// Entries kept in the log behind the snapshot, so a briefly lagging follower
    /// catches up from the log instead of a snapshot.
    pub keep_behind_snapshot: u64,
    /// How often the leader looks for expired registrations to sweep.
    pub sweep_interval: Duration,
    /// Commands per log entry at most.
    pub max_batch: usize,
    /// Log entries proposed and not yet committed at most; more proposals wait and
    /// are batched together meanwhile.
    pub max_in_flight: usize,
}

impl Default for RaftSettings {
    fn default() -> RaftSettings {
        RaftSettings {
            // openraft uses the heartbeat interval as the AppendEntries timeout too: a
            // follower busy with fsyncs under load must be able to answer within it,
            // or the leader times out and resends (latency spikes of 0.2-1 s at 150 ms).
            heartbeat: Duration::from_millis(400),
            election_timeout_min: Duration::from_millis(1200),
            election_timeout_max: Duration::from_millis(2400),
            snapshot_every: 20_000,
            keep_behind_snapshot: 2_000,
            sweep_interval: Duration::from_secs(1),
            max_batch: 512,
            max_in_flight: 4,
        }
    }
}

impl RaftSettings {
    fn openraft_config(&self) -> Result<Arc<openraft::Config>, StartError> {
        let config = openraft::Config {
            cluster_name: "tongdai".into(),
            heartbeat_interval: millis(self.heartbeat),
            election_timeout_min: millis(self.election_timeout_min),
            election_timeout_max: millis(self.election_timeout_max),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every),
            max_in_snapshot_log_to_keep: self.keep_behind_snapshot,
            purge_batch_size: (self.snapshot_every / 4).clamp(1, 256),
            max_payload_entries: 512,
            ..Default::default()
        };
        Ok(Arc::new(
            config
                .validate()
                .map_err(|e| StartError::Config(e.to_string()))?,
        ))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("invalid Raft settings: {0}")]
    Config(String),
    #[error("Raft failed to start: {0}")]
    Raft(String),
}

type Results = Vec<Result<Outcome, CommandError>>;

struct Pending {
    commands: Vec<Command>,
    reply: oneshot::Sender<Result<Results, ClusterError>>,
}

/// A running replica. Cheap to clone.
#[derive(Clone)]
pub struct Replica {
    id: NodeId,
    raft: Raft,
    view: SmView,
    proposals: mpsc::Sender<Pending>,
    gauges: watch::Receiver<RaftGauges>,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica").field("id", &self.id).finish()
    }
}

impl Replica {
    /// Opens the store in `dir` and starts Raft. A fresh replica waits to be
    /// initialized ([`Replica::initialize`]) or added to a cluster by its leader.
    pub async fn start<N>(
        id: NodeId,
        dir: &Path,
        settings: &RaftSettings,
        network: N,
    ) -> Result<Replica, StartError>
    where
        N: RaftNetworkFactory<TypeConfig>,
    {
        let (log, sm) = store::open(dir).await?;
        let view = sm.view();
        let committed = log.committed();
        let raft = Raft::new(id, settings.openraft_config()?, network, log, sm)
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?;
        let (gauges_tx, gauges) = watch::channel(RaftGauges::default());
        tokio::spawn(super::metrics::run(raft.metrics(), committed, gauges_tx));
        let (proposals, rx) = mpsc::channel(65_536);
        tokio::spawn(run_proposer(
            raft.clone(),
            rx,
            settings.max_batch,
            settings.max_in_flight,
        ));
        let replica = Replica {
            id,
            raft,
            view,
            proposals,
            gauges,
        };
        tokio::spawn(run_sweeper(replica.clone(), settings.sweep_interval));
        tokio::spawn(crate::acd_metrics::run(replica.view.clone()));
        Ok(replica)
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    pub fn view(&self) -> &SmView {
        &self.view
    }

    /// The Raft gauges this replica exports (`tongdai_control_plane_is_leader`, ...),
    /// as last published.
    pub fn gauges(&self) -> watch::Receiver<RaftGauges> {
        self.gauges.clone()
    }

    /// Waits until some replica is known as leader, up to `timeout`.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Option<NodeId> {
        let mut rx = self.raft.metrics();
        tokio::time::timeout(timeout, async {
            loop {
                if let Some(leader) = rx.borrow_and_update().current_leader {
                    return leader;
                }
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        })
        .await
        .ok()
    }

    /// Stops Raft. The store stays on disk.
    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!("raft shutdown: {e}");
        }
    }
}

/// On the leader: the highest index a majority of voters has, i.e. committed.
fn quorum_index(
    matched: &BTreeMap<NodeId, Option<openraft::LogId<NodeId>>>,
    voters: &BTreeSet<NodeId>,
) -> Option<u64> {
    let mut indexes: Vec<u64> = voters
        .iter()
        .map(|v| matched.get(v).copied().flatten().map_or(0, |l| l.index))
        .collect();
    if indexes.is_empty() {
        return None;
    }
    indexes.sort_unstable_by(|a, b| b.cmp(a));
    indexes.get(indexes.len() / 2).copied()
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn forward(f: ForwardToLeader<NodeId, Member>) -> ClusterError {
    ClusterError::NotLeader {
        leader: f.leader_id.zip(f.leader_node),
    }
}

fn write_error(e: RaftError<NodeId, ClientWriteError<NodeId, Member>>) -> ClusterError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => forward(f),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            ClusterError::Membership(e.to_string())
        }
        RaftError::Fatal(e) => ClusterError::Unavailable(e.to_string()),
    }
}

/// Takes proposals off the queue and proposes them as few log entries as the load
/// allows: up to `max_in_flight` entries are uncommitted at once; while that many are,
/// arriving proposals queue up and go out together as one entry.
async fn run_proposer(
    raft: Raft,
    mut rx: mpsc::Receiver<Pending>,
    max_batch: usize,
    max_in_flight: usize,
) {
    let permits = Arc::new(Semaphore::new(max_in_flight.max(1)));
    let mut last_stamp = 0u64;
    while let Some((batch, permit)) =
        next_batch(&mut rx, &permits, max_batch, |p: &Pending| p.commands.len()).await
    {
        let count = batch.iter().map(|p| p.commands.len()).sum();
        // The leader's clock, never running backwards across entries it stamps.
        last_stamp = last_stamp.max(now_ms());
        let mut commands = Vec::with_capacity(count);
        let mut replies = Vec::with_capacity(batch.len());
        for p in batch {
            replies.push((p.commands.len(), p.reply));
            commands.extend(p.commands);
        }
        metrics::counter!("tongdai_control_plane_log_entries_proposed_total").increment(1);
        metrics::counter!("tongdai_control_plane_commands_proposed_total")
            .increment(commands.len() as u64);
        let proposal = Proposal {
            time_ms: last_stamp,
            commands,
        };
        let proposed_at = std::time::Instant::now();
        let receiver = match raft.client_write_ff(proposal).await {
            Ok(receiver) => receiver,
            Err(fatal) => {
                let err = ClusterError::Unavailable(fatal.to_string());
                for (_, reply) in replies {
                    let _ = reply.send(Err(err.clone()));
                }
                continue;
            }
        };
        tokio::spawn(async move {
            let result = match receiver.await {
                Ok(Ok(response)) => Ok(response.data.0),
                Ok(Err(e)) => Err(write_error(RaftError::APIError(e))),
                Err(_) => Err(ClusterError::Unavailable(
                    "raft stopped before the proposal was committed".into(),
                )),
            };
            drop(permit);
            metrics::histogram!("tongdai_control_plane_commit_seconds")
                .record(proposed_at.elapsed().as_secs_f64());
            match result {
                Ok(results) => {
                    let mut results = results.into_iter();
                    for (n, reply) in replies {
                        let _ = reply.send(Ok(results.by_ref().take(n).collect()));
                    }
                }
                Err(e) => {
                    for (_, reply) in replies {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
        });
    }
}

/// On the leader, proposes `SweepExpired` when some binding has expired, `AcdTick`
/// when a queue timer is due, and `QueueNodeGone` for nodes that died holding queue calls.
async fn run_sweeper(replica: Replica, interval: Duration) {
    let mut metrics = replica.raft.metrics();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = metrics.changed() => {
                if changed.is_err() {
                    return; // raft stopped
                }
                continue;
            }
        }
        if metrics.borrow().current_leader != Some(replica.id) {
            continue;
        }
        let now = now_ms();
        if replica.view.read(|s: &State| s.acd_due(now)) {
            // Queue timers: ring timeouts, wrap-ups, waits, tiers (see model::acd).
            if let Err(e) = replica
                .propose(vec![Command::AcdTick { now_ms: now }])
                .await
            {
                tracing::debug!("ACD tick not committed: {e}");
            }
        }
        // Nodes that died holding queue callers or agents' calls: their entries go.
        let gone = replica.view.read(|s: &State| s.gone_nodes(now));
        if !gone.is_empty() {
            let commands = gone
                .into_iter()
                .map(|node| Command::QueueNodeGone { node })
                .collect();
            if let Err(e) = replica.propose(commands).await {
                tracing::debug!("removal of dead nodes' queue entries not committed: {e}");
            }
        }
        if !replica.view.read(|s: &State| s.has_expired_bindings(now)) {
            continue;
        }
        match replica
            .propose(vec![Command::SweepExpired { now_ms: now }])
            .await
        {
            Ok(results) => {
                if let Some(Ok(Outcome::Swept { removed })) = results.first() {
                    tracing::debug!(removed, "swept expired registrations");
                }
            }
            Err(e) => tracing::debug!("sweep not committed: {e}"),
        }
    }
}

impl Cluster for Replica {
    async fn propose(&self, commands: Vec<Command>) -> Result<Results, ClusterError> {
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = oneshot::channel();
        self.proposals
            .send(Pending { commands, reply })
            .await
            .map_err(|_| ClusterError::Unavailable("replica is shutting down".into()))?;
        rx.await
            .map_err(|_| ClusterError::Unavailable("replica is shutting down".into()))?
    }

    async fn linearizable(&self) -> Result<(), ClusterError> {
        match self.raft.ensure_linearizable().await {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => Err(forward(f)),
            Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(e))) => {
                Err(ClusterError::Unavailable(e.to_string()))
            }
            Err(RaftError::Fatal(e)) => Err(ClusterError::Unavailable(e.to_string())),
        }
    }

    fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        self.view.read(f)
    }

    async fn status(&self) -> ClusterStatus {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voter_ids: BTreeSet<NodeId> = membership.voter_ids().collect();
        let mut voters = Vec::new();
        let mut learners = Vec::new();
        for (id, member) in membership.nodes() {
            if voter_ids.contains(id) {
                voters.push((*id, member.clone()));
            } else {
                learners.push((*id, member.clone()));
            }
        }
        let last_log = m.last_log_index;
        let lag = m
            .replication
            .as_ref()
            .map(|r| {
                r.iter()
                    .map(|(id, matched)| {
                        let lag = match (last_log, matched) {
                            (Some(last), Some(matched)) => Some(last.saturating_sub(matched.index)),
                            _ => None,
                        };
                        (*id, lag)
                    })
                    .collect()
            })
            .unwrap_or_default();
        ClusterStatus {
            id: self.id,
            state: match m.state {
                ServerState::Leader => "leader",
                ServerState::Follower => "follower",
                ServerState::Candidate => "candidate",
                ServerState::Learner => "learner",
                ServerState::Shutdown => "shutdown",
            }
            .into(),
            term: m.current_term,
            leader: m.current_leader,
            last_applied: m.last_applied.map(|l| l.index),
            last_log_index: last_log,
            committed: m.last_applied.map(|l| l.index).max(
                m.replication
                    .as_ref()
                    .and_then(|r| quorum_index(r, &voter_ids)),
            ),
            snapshot: m.snapshot.map(|l| l.index),
            purged: m.purged.map(|l| l.index),
            voters,
            learners,
            lag,
            revision: self.view.read(|s| s.revision()),
        }
    }

    async fn add_learner(&self, id: NodeId, member: Member) -> Result<(), ClusterError> {
        self.raft
            .add_learner(id, member, true)
            .await
            .map(|_| ())
            .map_err(write_error)
    }

    async fn promote(&self, id: NodeId) -> Result<(), ClusterError> {
        let ids: BTreeSet<NodeId> = [id].into();
        self.raft
            .change_membership(ChangeMembers::AddVoterIds(ids), false)
            .await
            .map(|_| ())
            .map_err(write_error)
    }

    async fn remove(&self, id: NodeId) -> Result<(), ClusterError> {
        let ids: BTreeSet<NodeId> = [id].into();
        let is_voter = {
            let m = self.raft.metrics().borrow().clone();
            m.membership_config
                .membership()
                .voter_ids()
                .any(|v| v == id)
        };
        if is_voter {
            self.raft
                .change_membership(ChangeMembers::RemoveVoters(ids.clone()), false)
                .await
                .map_err(write_error)?;
        }
        self.raft
            .change_membership(ChangeMembers::RemoveNodes(ids), false)
            .await
            .map(|_| ())
            .map_err(write_error)
    }
}
