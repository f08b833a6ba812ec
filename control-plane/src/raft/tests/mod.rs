//! Raft groups of in-process replicas over the in-memory [`router::Router`]: real
//! openraft, real redb stores in temporary directories, a network that can partition,
//! lose and delay messages.

mod router;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use router::Router;

use crate::cluster::{Cluster, ClusterError};
use crate::model::{CallSettings, Command, Id, Outcome, Quotas, Tenant};
use crate::raft::store::tests::temp_dir;
use crate::raft::{Member, NodeId, RaftSettings, Replica};

const DEADLINE: Duration = Duration::from_secs(20);

fn settings() -> RaftSettings {
    RaftSettings {
        heartbeat: Duration::from_millis(50),
        election_timeout_min: Duration::from_millis(200),
        election_timeout_max: Duration::from_millis(400),
        ..RaftSettings::default()
    }
}

fn member(id: NodeId) -> Member {
    Member {
        raft_addr: format!("replica-{id}"),
        api_addr: format!("127.0.0.1:{}", 8000 + id),
    }
}

fn tenant(name: &str) -> Command {
    Command::CreateTenant(Tenant {
        id: Id::new(name).expect("valid id"),
        name: name.to_uppercase(),
        quotas: Quotas {
            max_concurrent_calls: 10,
            max_call_attempts_per_sec: 5,
            max_registrations: 100,
        },
        calls: CallSettings::default(),
    })
}

fn is_leader(replica: &Replica) -> bool {
    replica.raft().metrics().borrow().state == openraft::ServerState::Leader
}

struct TestCluster {
    router: Router,
    settings: RaftSettings,
    replicas: BTreeMap<NodeId, Replica>,
    dirs: BTreeMap<NodeId, PathBuf>,
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for dir in self.dirs.values() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl TestCluster {
    /// `n` replicas, initialized as one group with all of them voters.
    async fn new(n: u64, settings: RaftSettings) -> TestCluster {
        let mut cluster = TestCluster {
            router: Router::default(),
            settings,
            replicas: BTreeMap::new(),
            dirs: BTreeMap::new(),
        };
        for id in 1..=n {
            cluster.dirs.insert(id, temp_dir("raft"));
            cluster.start(id).await;
        }
        let members: BTreeMap<NodeId, Member> = (1..=n).map(|id| (id, member(id))).collect();
        cluster.replicas[&1]
            .raft()
            .initialize(members)
            .await
            .expect("initialize");
        cluster
    }

    async fn start(&mut self, id: NodeId) {
        let dir = self.dirs[&id].clone();
        let replica = Replica::start(id, &dir, &self.settings, self.router.network(id))
            .await
            .expect("replica starts");
        self.router.register(id, replica.raft().clone());
        self.replicas.insert(id, replica);
    }

    async fn stop(&mut self, id: NodeId) {
        self.router.unregister(id);
        if let Some(replica) = self.replicas.remove(&id) {
            replica.shutdown().await;
        }
    }

    /// The leader as seen by a majority of running replicas, waiting for one.
    async fn leader(&self) -> NodeId {
        let start = Instant::now();
        loop {
            let mut votes: BTreeMap<NodeId, usize> = BTreeMap::new();
            for r in self.replicas.values() {
                if let Some(l) = r.raft().metrics().borrow().current_leader {
                    *votes.entry(l).or_default() += 1;
                }
            }
            let majority = votes
                .iter()
                .find(|(l, n)| **n * 2 > self.replicas.len() && self.replicas.contains_key(l));
            if let Some((&l, _)) = majority.filter(|(l, _)| is_leader(&self.replicas[l])) {
                return l;
            }
            assert!(start.elapsed() < DEADLINE, "no leader within {DEADLINE:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Proposes through whoever leads, retrying through elections until `DEADLINE`.
    async fn propose(
        &self,
        commands: Vec<Command>,
    ) -> Vec<Result<Outcome, crate::model::CommandError>> {
        let start = Instant::now();
        loop {
            let leader = self.leader().await;
            let attempt = tokio::time::timeout(
                Duration::from_secs(2),
                self.replicas[&leader].propose(commands.clone()),
            )
            .await;
            match attempt {
                Ok(Ok(results)) => return results,
                Ok(Err(ClusterError::NotLeader { .. } | ClusterError::Unavailable(_))) | Err(_) => {
                }
                Ok(Err(e)) => panic!("proposal failed: {e}"),
            }
            assert!(
                start.elapsed() < DEADLINE,
                "proposal not committed within {DEADLINE:?}"
            );
        }
    }

    /// Waits until every running replica applied the same log index and holds the
    /// same state, and returns that state's snapshot bytes.
    async fn converged(&self) -> Vec<u8> {
        let start = Instant::now();
        loop {
            let applied: Vec<_> = self
                .replicas
                .values()
                .map(|r| r.raft().metrics().borrow().last_applied)
                .collect();
            let states: Vec<_> = self
                .replicas
                .values()
                .map(|r| r.view().read(|s| s.snapshot().expect("snapshot")))
                .collect();
            if applied.windows(2).all(|w| w[0] == w[1]) && states.windows(2).all(|w| w[0] == w[1]) {
                return states.into_iter().next().expect("a replica");
            }
            assert!(
                start.elapsed() < DEADLINE,
                "replicas did not converge: applied {applied:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn has_tenant(&self, id: NodeId, name: &str) -> bool {
        let tenant = Id::new(name).expect("valid id");
        self.replicas[&id]
            .view()
            .read(|s| s.tenant(&tenant).is_some())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_apply_the_same_state() {
    let cluster = TestCluster::new(3, settings()).await;
    for i in 0..20 {
        let results = cluster.propose(vec![tenant(&format!("t{i}"))]).await;
        assert_eq!(results, vec![Ok(Outcome::Done)]);
    }
    // A refused command is reported, and changes nothing anywhere.
    let results = cluster.propose(vec![tenant("t0"), tenant("t20")]).await;
    assert!(
        results[0].is_err(),
        "duplicate tenant accepted: {results:?}"
    );
    assert_eq!(results[1], Ok(Outcome::Done));
    cluster.converged().await;
    for id in 1..=3 {
        assert!(cluster.has_tenant(id, "t20"));
        assert_eq!(
            cluster.replicas[&id].view().read(|s| s.tenants().count()),
            21
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minority_cannot_commit_and_healing_converges() {
    let cluster = TestCluster::new(3, settings()).await;
    cluster.propose(vec![tenant("before")]).await;
    let old = cluster.leader().await;
    let rest: Vec<NodeId> = (1..=3).filter(|id| *id != old).collect();
    cluster.router.partition(&[&[old], &rest]);

    // The isolated leader cannot commit.
    let isolated = tokio::time::timeout(
        Duration::from_secs(2),
        cluster.replicas[&old].propose(vec![tenant("minority")]),
    )
    .await;
    assert!(
        !matches!(isolated, Ok(Ok(_))),
        "a minority committed: {isolated:?}"
    );

    // The majority elects a leader of its own and commits.
    let start = Instant::now();
    let new = loop {
        let l = cluster.replicas[&rest[0]]
            .raft()
            .metrics()
            .borrow()
            .current_leader;
        if let Some(l) = l.filter(|l| *l != old && is_leader(&cluster.replicas[l])) {
            break l;
        }
        assert!(start.elapsed() < DEADLINE, "majority elected no leader");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let results = cluster.replicas[&new]
        .propose(vec![tenant("majority")])
        .await
        .expect("majority commits");
    assert_eq!(results, vec![Ok(Outcome::Done)]);

    cluster.router.heal();
    cluster.converged().await;
    for id in 1..=3 {
        assert!(
            cluster.has_tenant(id, "majority"),
            "replica {id} lacks the majority's write"
        );
        assert!(
            !cluster.has_tenant(id, "minority"),
            "replica {id} kept an uncommitted write"
        );
        assert!(cluster.has_tenant(id, "before"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lossy_delayed_network_still_commits_everything() {
    let cluster = TestCluster::new(3, settings()).await;
    cluster.router.set_loss(0.15, Duration::from_millis(15));
    for i in 0..60 {
        let results = cluster.propose(vec![tenant(&format!("lossy{i}"))]).await;
        // A retry after a lost reply may find its own earlier attempt committed.
        assert!(
            matches!(
                results[0],
                Ok(Outcome::Done) | Err(crate::model::CommandError::TenantExists(_))
            ),
            "{results:?}"
        );
    }
    cluster.router.set_loss(0.0, Duration::ZERO);
    cluster.converged().await;
    for id in 1..=3 {
        for i in 0..60 {
            assert!(cluster.has_tenant(id, &format!("lossy{i}")));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_proposals_are_batched_into_few_entries() {
    let cluster = TestCluster::new(3, settings()).await;
    let leader = cluster.leader().await;
    let replica = cluster.replicas[&leader].clone();
    let before = replica
        .raft()
        .metrics()
        .borrow()
        .last_log_index
        .unwrap_or(0);
    let tasks: Vec<_> = (0..500)
        .map(|i| {
            let replica = replica.clone();
            tokio::spawn(async move { replica.propose(vec![tenant(&format!("b{i}"))]).await })
        })
        .collect();
    for task in tasks {
        let results = task.await.expect("task").expect("committed");
        assert_eq!(results, vec![Ok(Outcome::Done)]);
    }
    let entries = replica
        .raft()
        .metrics()
        .borrow()
        .last_log_index
        .unwrap_or(0)
        - before;
    assert!(
        entries <= 250,
        "500 concurrent proposals took {entries} log entries; they should be batched"
    );
    assert_eq!(replica.view().read(|s| s.tenants().count()), 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_purge_the_log_and_a_new_member_catches_up_from_one() {
    let settings = RaftSettings {
        snapshot_every: 40,
        keep_behind_snapshot: 5,
        ..settings()
    };
    let mut cluster = TestCluster::new(3, settings).await;
    for i in 0..150 {
        cluster.propose(vec![tenant(&format!("s{i}"))]).await;
    }
    let leader = cluster.leader().await;
    let start = Instant::now();
    while cluster.replicas[&leader]
        .raft()
        .metrics()
        .borrow()
        .purged
        .is_none()
    {
        assert!(
            start.elapsed() < DEADLINE,
            "log never purged: {:?}",
            cluster.replicas[&leader].raft().metrics().borrow()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A replica with an empty data directory joins and gets the state by snapshot.
    cluster.dirs.insert(4, temp_dir("raft"));
    cluster.start(4).await;
    cluster.replicas[&leader]
        .add_learner(4, member(4))
        .await
        .expect("learner added");
    cluster.converged().await;
    let joined = cluster.replicas[&4].raft().metrics().borrow().clone();
    assert!(
        joined.snapshot.is_some(),
        "the new member did not install a snapshot"
    );
    assert!(cluster.has_tenant(4, "s0") && cluster.has_tenant(4, "s149"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_every_replica_keeps_all_state() {
    let mut cluster = TestCluster::new(3, settings()).await;
    for i in 0..30 {
        cluster.propose(vec![tenant(&format!("r{i}"))]).await;
    }
    let before = cluster.converged().await;
    for id in 1..=3 {
        cluster.stop(id).await;
    }
    for id in 1..=3 {
        cluster.start(id).await;
    }
    assert_eq!(
        cluster.converged().await,
        before,
        "state changed across restart"
    );
    // And the restarted group still takes writes.
    assert_eq!(
        cluster.propose(vec![tenant("after")]).await,
        vec![Ok(Outcome::Done)]
    );
    cluster.converged().await;
    assert!(cluster.has_tenant(2, "after") && cluster.has_tenant(3, "r29"));
}

/// Waits until `replica`'s exported gauges satisfy `ok`, and returns them.
async fn gauges_until(
    replica: &Replica,
    what: &str,
    ok: impl FnMut(&crate::raft::RaftGauges) -> bool,
) -> crate::raft::RaftGauges {
    let mut rx = replica.gauges();
    match tokio::time::timeout(DEADLINE, rx.wait_for(ok)).await {
        Ok(Ok(g)) => *g,
        _ => panic!(
            "replica {}: {what} not seen within {DEADLINE:?}; gauges {:?}, raft {}",
            replica.id(),
            *replica.gauges().borrow(),
            *replica.raft().metrics().borrow()
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_raft_gauges_follow_leadership_commits_and_a_stopped_leader() {
    let mut cluster = TestCluster::new(3, settings()).await;
    for i in 0..10 {
        cluster.propose(vec![tenant(&format!("g{i}"))]).await;
    }
    cluster.converged().await;
    let leader = cluster.leader().await;
    let (term, applied) = {
        let m = cluster.replicas[&leader].raft().metrics().borrow().clone();
        (m.current_term, m.last_applied.expect("applied").index)
    };
    assert!(term >= 1 && applied >= 10, "term {term}, applied {applied}");
    // Every replica converges on the leader's term and log; followers learn the commit
    // index from the leader's next message.
    for (id, replica) in &cluster.replicas {
        let g = gauges_until(replica, "the leader's term and log", |g| {
            g.term == term && g.applied_index == applied && g.committed_index == applied
        })
        .await;
        assert_eq!(g.is_leader, *id == leader, "replica {id}: {g:?}");
    }

    // The leader stops: it exports that it no longer leads, and the new leader leads in
    // a later term with the whole log committed.
    let old = cluster.replicas[&leader].clone();
    cluster.stop(leader).await;
    gauges_until(&old, "not leading once stopped", |g| !g.is_leader).await;
    let new = cluster.leader().await;
    assert_ne!(new, leader);
    let g = gauges_until(&cluster.replicas[&new], "leading in a later term", |g| {
        g.is_leader && g.term > term
    })
    .await;
    assert!(g.committed_index >= applied, "{g:?}");
    assert!(g.applied_index <= g.committed_index, "{g:?}");
    let follower = cluster
        .replicas
        .values()
        .find(|r| r.id() != new)
        .expect("a follower");
    let f = gauges_until(follower, "following in the new term", |f| {
        f.term == g.term && !f.is_leader
    })
    .await;
    assert!(f.applied_index <= f.committed_index, "{f:?}");
}
