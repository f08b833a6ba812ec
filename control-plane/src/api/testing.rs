//! An in-memory [`Cluster`] for tests of the API and its clients: one `State` behind a
//! lock, commands applied at once with the system clock. It can pretend to be a
//! follower (answering `NotLeader`) or to have lost quorum. [`TestServer`] serves the
//! API over it on a loopback port.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::records::Records;
use super::{AuthConfig, router_with_records};

use crate::cluster::{Cluster, ClusterError, ClusterStatus};
use crate::model::{Command, CommandError, Entry, Outcome, State};
use crate::raft::{Member, NodeId};

/// What the fake replica answers to proposals and linearizable reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Leader,
    /// Answers `NotLeader` naming this leader (or none).
    Follower(Option<(NodeId, Member)>),
    /// Answers `Unavailable`.
    Unavailable,
}

#[derive(Debug)]
struct Inner {
    state: State,
    role: Role,
    members: Vec<(NodeId, Member, bool)>,
}

/// A single-process stand-in for a Raft replica. Clones share the state.
#[derive(Debug, Clone)]
pub struct MemoryCluster {
    id: NodeId,
    inner: Arc<Mutex<Inner>>,
}

impl Default for MemoryCluster {
    fn default() -> Self {
        MemoryCluster::new()
    }
}

impl MemoryCluster {
    /// A leader with an empty state and itself (node 1) as the only voter.
    pub fn new() -> MemoryCluster {
        MemoryCluster {
            id: 1,
            inner: Arc::new(Mutex::new(Inner {
                state: State::new(),
                role: Role::Leader,
                members: vec![(1, Member::default(), true)],
            })),
        }
    }

    /// Another replica (`id`) over the same state, as if fully replicated, in `role`.
    pub fn replica(&self, id: NodeId, role: Role) -> MemoryCluster {
        let inner = self.inner.lock();
        MemoryCluster {
            id,
            inner: Arc::new(Mutex::new(Inner {
                state: inner.state.clone(),
                role,
                members: inner.members.clone(),
            })),
        }
    }

    pub fn set_role(&self, role: Role) {
        self.inner.lock().role = role;
    }

    /// A copy of the current state.
    pub fn state(&self) -> State {
        self.inner.lock().state.clone()
    }

    /// Applies a command directly (test setup), bypassing the role.
    pub fn apply(&self, command: Command) -> Result<Outcome, CommandError> {
        self.inner.lock().state.apply(&Entry {
            time_ms: now_ms(),
            command,
        })
    }

    fn check_leader(&self) -> Result<(), ClusterError> {
        match &self.inner.lock().role {
            Role::Leader => Ok(()),
            Role::Follower(leader) => Err(ClusterError::NotLeader {
                leader: leader.clone(),
            }),
            Role::Unavailable => Err(ClusterError::Unavailable("no quorum (test)".into())),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Cluster for MemoryCluster {
    async fn propose(
        &self,
        commands: Vec<Command>,
    ) -> Result<Vec<Result<Outcome, CommandError>>, ClusterError> {
        self.check_leader()?;
        let time_ms = now_ms();
        let mut inner = self.inner.lock();
        Ok(commands
            .into_iter()
            .map(|command| inner.state.apply(&Entry { time_ms, command }))
            .collect())
    }

    async fn linearizable(&self) -> Result<(), ClusterError> {
        self.check_leader()
    }

    fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.inner.lock().state)
    }

    async fn status(&self) -> ClusterStatus {
        let inner = self.inner.lock();
        let (state, leader) = match &inner.role {
            Role::Leader => ("Leader", Some(self.id)),
            Role::Follower(l) => ("Follower", l.as_ref().map(|(id, _)| *id)),
            Role::Unavailable => ("Candidate", None),
        };
        let pick = |voter: bool| {
            inner
                .members
                .iter()
                .filter(|(_, _, v)| *v == voter)
                .map(|(id, m, _)| (*id, m.clone()))
                .collect()
        };
        let revision = inner.state.revision();
        ClusterStatus {
            id: self.id,
            state: state.into(),
            term: 1,
            leader,
            last_applied: Some(revision),
            last_log_index: Some(revision),
            committed: Some(revision),
            snapshot: None,
            purged: None,
            voters: pick(true),
            learners: pick(false),
            lag: if leader == Some(self.id) {
                inner
                    .members
                    .iter()
                    .map(|(id, _, _)| (*id, Some(0)))
                    .collect()
            } else {
                Vec::new()
            },
            revision,
        }
    }

    async fn add_learner(&self, id: NodeId, member: Member) -> Result<(), ClusterError> {
        self.check_leader()?;
        let mut inner = self.inner.lock();
        if inner.members.iter().any(|(n, _, _)| *n == id) {
            return Err(ClusterError::Membership(format!(
                "node {id} is already a member"
            )));
        }
        inner.members.push((id, member, false));
        Ok(())
    }

    async fn promote(&self, id: NodeId) -> Result<(), ClusterError> {
        self.check_leader()?;
        let mut inner = self.inner.lock();
        match inner.members.iter_mut().find(|(n, _, _)| *n == id) {
            Some((_, _, voter)) => {
                *voter = true;
                Ok(())
            }
            None => Err(ClusterError::Membership(format!(
                "node {id} is not a learner"
            ))),
        }
    }

    async fn remove(&self, id: NodeId) -> Result<(), ClusterError> {
        self.check_leader()?;
        let mut inner = self.inner.lock();
        let voters = inner.members.iter().filter(|(_, _, v)| *v).count();
        match inner.members.iter().position(|(n, _, _)| *n == id) {
            Some(i) if inner.members[i].2 && voters == 1 => Err(ClusterError::Membership(
                "cannot remove the last voter".into(),
            )),
            Some(i) => {
                inner.members.remove(i);
                Ok(())
            }
            None => Err(ClusterError::Membership(format!(
                "node {id} is not a member"
            ))),
        }
    }
}

/// The API over a [`MemoryCluster`] on `127.0.0.1:<ephemeral port>`, in a thread of
/// its own (so blocking clients can be tested from the test's thread); stopped when
/// dropped.
#[derive(Debug)]
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    pub fn start(cluster: MemoryCluster, auth: AuthConfig) -> io::Result<TestServer> {
        TestServer::start_with_records(cluster, auth, None)
    }

    /// As [`TestServer::start`], serving CDRs and recordings from `records`.
    pub fn start_with_records(
        cluster: MemoryCluster,
        auth: AuthConfig,
        records: Option<Arc<dyn Records>>,
    ) -> io::Result<TestServer> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                // Not a graceful shutdown: the runtime's end drops open connections, so
                // the join in `drop` never waits for a client.
                tokio::select! {
                    _ = axum::serve(listener, router_with_records(cluster, auth, records)).into_future() => {}
                    _ = stopped => {}
                }
            });
        });
        Ok(TestServer {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
