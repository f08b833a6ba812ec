//! The node's connection to the control plane: proposals go to the Raft leader (found
//! by asking any replica and following its answer), and a watch stream from any
//! replica keeps the [`Cache`] current, resuming from the cache's revision after a
//! reconnect.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tongdai_control_plane::batch::next_batch;
use tongdai_control_plane::cluster::ClusterError;
use tongdai_control_plane::model::{Command, CommandError, Outcome};
use tongdai_control_plane::quic::{Client, RpcEndpoint, RpcError};
use tongdai_control_plane::wire::{Request, Response, WatchEvent};

use super::Cache;

/// How long one proposal attempt may take before the node tries another replica.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between attempts when no replica knows a leader (an election is running).
const RETRY_PAUSE: Duration = Duration::from_millis(50);
/// Longest pause between watch reconnection attempts.
const MAX_WATCH_BACKOFF: Duration = Duration::from_secs(2);

/// Why a proposal did not commit.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProposeError {
    #[error("no replica committed the proposal within {0:?}: {1}")]
    Unavailable(Duration, String),
}

/// What a committed proposal produced.
#[derive(Debug, Clone)]
pub struct Committed {
    /// One result per command.
    pub results: Vec<Result<Outcome, CommandError>>,
    /// An earlier attempt failed after the request left (timeout, lost connection),
    /// so it may have been committed too, before the attempt that produced `results`.
    pub maybe_applied_before: bool,
}

/// Proposes commands to the leader and watches for changes. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ControlPlaneClient {
    inner: Arc<Inner>,
}

/// One command waiting to go out in a batch, and where its result goes.
type Queued = (
    Command,
    oneshot::Sender<Result<(Result<Outcome, CommandError>, bool), ProposeError>>,
);

/// Commands per batched proposal at most, and batches in flight at most.
const MAX_BATCH: usize = 256;
const MAX_BATCHES_IN_FLIGHT: usize = 4;

#[derive(Debug)]
struct Inner {
    endpoint: RpcEndpoint,
    /// Single commands from concurrent callers, sent to the leader together.
    queue: mpsc::Sender<Queued>,
    /// Replica addresses from the config, plus leaders learned from answers.
    replicas: Mutex<Vec<Client>>,
    /// Index into `replicas` of the last known leader.
    leader: Mutex<usize>,
    cache: Arc<Cache>,
    /// Becomes true once the cache holds a full copy.
    synced: watch::Sender<bool>,
}

impl ControlPlaneClient {
    /// A client for the replicas at `addrs` (`host:port` of their QUIC listeners).
    /// Call within a tokio runtime: it starts the task that batches proposals.
    pub fn new(endpoint: RpcEndpoint, addrs: &[String], cache: Arc<Cache>) -> ControlPlaneClient {
        let replicas = addrs.iter().map(|a| endpoint.client(a.clone())).collect();
        let (queue, rx) = mpsc::channel(65_536);
        let client = ControlPlaneClient {
            inner: Arc::new(Inner {
                endpoint,
                queue,
                replicas: Mutex::new(replicas),
                leader: Mutex::new(0),
                cache,
                synced: watch::channel(false).0,
            }),
        };
        // The task holds a weak handle so dropping every client ends it.
        tokio::spawn(run_batcher(Arc::downgrade(&client.inner), rx));
        client
    }

    /// Commits one command, batched with whatever other callers propose meanwhile
    /// (one QUIC call and one log entry for many REGISTERs under load). Returns its
    /// result and whether an earlier attempt may have applied it already.
    pub async fn propose_one(
        &self,
        command: Command,
    ) -> Result<(Result<Outcome, CommandError>, bool), ProposeError> {
        let (tx, rx) = oneshot::channel();
        let closed = || ProposeError::Unavailable(Duration::ZERO, "the node is stopping".into());
        self.inner
            .queue
            .send((command, tx))
            .await
            .map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }

    pub fn cache(&self) -> &Arc<Cache> {
        &self.inner.cache
    }

    /// Resolves once the cache holds a full copy of the control plane's state.
    pub async fn wait_synced(&self) {
        let mut rx = self.inner.synced.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    fn client_at(&self, i: usize) -> (usize, Client) {
        let replicas = self.inner.replicas.lock();
        let i = i % replicas.len().max(1);
        (i, replicas[i].clone())
    }

    /// The index of the replica at `addr`, adding it if it is new.
    fn index_of(&self, addr: &str) -> usize {
        let mut replicas = self.inner.replicas.lock();
        if let Some(i) = replicas.iter().position(|c| c.target() == addr) {
            return i;
        }
        replicas.push(self.inner.endpoint.client(addr.to_owned()));
        replicas.len() - 1
    }

    /// Commits `commands` as one log entry and returns one result per command. Follows
    /// leader changes and retries through elections until `deadline` passes.
    ///
    /// A retry after a lost answer may apply a command twice; commands the node sends
    /// (REGISTERs) are refused the second time (same Call-ID and CSeq), never doubled,
    /// and [`Committed::maybe_applied_before`] tells the caller that happened.
    pub async fn propose(
        &self,
        commands: Vec<Command>,
        deadline: Duration,
    ) -> Result<Committed, ProposeError> {
        let start = Instant::now();
        let mut ambiguous = false;
        let mut target = *self.inner.leader.lock();
        let mut last_error = String::from("no replica configured");
        let request = Request::Propose(commands);
        while start.elapsed() < deadline {
            let (i, client) = self.client_at(target);
            let timeout = ATTEMPT_TIMEOUT.min(deadline.saturating_sub(start.elapsed()));
            match client.call::<Request, Response>(&request, timeout).await {
                Ok(Response::Proposed(Ok(results))) => {
                    *self.inner.leader.lock() = i;
                    return Ok(Committed {
                        results,
                        maybe_applied_before: ambiguous,
                    });
                }
                Ok(Response::Proposed(Err(ClusterError::NotLeader {
                    leader: Some((_, member)),
                }))) => {
                    last_error = format!("{} is not the leader", client.target());
                    target = self.index_of(&member.raft_addr);
                    *self.inner.leader.lock() = target;
                    continue;
                }
                Ok(Response::Proposed(Err(e))) => {
                    last_error = format!("{}: {e}", client.target());
                }
                Ok(other) => {
                    last_error = format!("{} answered {other:?}", client.target());
                }
                Err(e) => {
                    // The request may have reached the leader before the failure.
                    ambiguous |= matches!(e, RpcError::Timeout(_) | RpcError::Closed(_));
                    last_error = format!("{}: {e}", client.target());
                }
            }
            target = i + 1;
            tokio::time::sleep(RETRY_PAUSE.min(deadline.saturating_sub(start.elapsed()))).await;
        }
        Err(ProposeError::Unavailable(deadline, last_error))
    }

    /// Keeps the cache current until the task is aborted: watches one replica, and
    /// on any failure the next, resuming from the cache's revision.
    pub async fn run_watch(self) {
        let mut i = 0usize;
        let mut backoff = Duration::from_millis(20);
        loop {
            let (idx, client) = self.client_at(i);
            let from_revision = self.inner.cache.revision();
            match client
                .subscribe::<Request, WatchEvent>(&Request::Watch { from_revision })
                .await
            {
                Ok(mut events) => {
                    while let Some(event) = events.next().await {
                        match event {
                            Ok(event) => {
                                if self.inner.cache.apply(event) {
                                    self.inner.synced.send_replace(true);
                                }
                                backoff = Duration::from_millis(20);
                            }
                            Err(e) => {
                                tracing::info!(replica = client.target(), "watch ended: {e}");
                                break;
                            }
                        }
                    }
                }
                Err(e) => log_watch_error(client.target(), &e),
            }
            i = idx + 1;
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_WATCH_BACKOFF);
        }
    }
}

/// How long a batch may take to commit, elections included.
const BATCH_DEADLINE: Duration = Duration::from_secs(8);

/// Sends queued commands in batches: while `MAX_BATCHES_IN_FLIGHT` are waiting for
/// their commit, new commands queue up and leave together.
async fn run_batcher(inner: std::sync::Weak<Inner>, mut rx: mpsc::Receiver<Queued>) {
    let permits = Arc::new(Semaphore::new(MAX_BATCHES_IN_FLIGHT));
    while let Some((batch, permit)) = next_batch(&mut rx, &permits, MAX_BATCH, |_| 1).await {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let client = ControlPlaneClient { inner };
        tokio::spawn(async move {
            let (commands, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            let outcome = client.propose(commands, BATCH_DEADLINE).await;
            drop(permit);
            match outcome {
                Ok(committed) => {
                    let mut results = committed.results.into_iter();
                    for reply in replies {
                        let result = results.next().map_or_else(
                            || {
                                Err(ProposeError::Unavailable(
                                    Duration::ZERO,
                                    "the replica returned fewer results than commands".into(),
                                ))
                            },
                            |r| Ok((r, committed.maybe_applied_before)),
                        );
                        let _ = reply.send(result);
                    }
                }
                Err(e) => {
                    for reply in replies {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
        });
    }
}

fn log_watch_error(target: &str, e: &RpcError) {
    tracing::info!(replica = target, "cannot watch: {e}");
}
