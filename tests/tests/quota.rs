//! Cluster-wide tenant quotas through a real control plane: 3 `tongdai control-plane`
//! processes over QUIC with mutual TLS, and two nodes run in this process (each its own
//! node certificate, control-plane client, watch-fed cache, admission and load
//! reporter: the parts of `tongdai node` that enforce quotas). Each node sees the
//! other's calls through Raft and the two hold a tenant's concurrent-call limit
//! together; a node that stops reporting stops counting.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde_json::Value;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use tongdai_control_plane::model::{Id, Quotas};
use tongdai_control_plane::quic::{Identity, RpcEndpoint, RpcOptions};
use tongdai_node::b2bua::quota::{Admission, Refusal, load_source};
use tongdai_node::cluster::{Cache, ControlPlaneClient, OthersLoad, spawn_load_reporter};
use tongdai_tests::cluster::Cluster;
use tongdai_tests::wait_until;

const TENANT: &str = "acme";
const MAX_CALLS: u32 = 4;

fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    u64::try_from(since.as_millis()).expect("fits")
}

/// A node's quota machinery, its tasks aborted on drop.
struct Node {
    name: String,
    client: ControlPlaneClient,
    admission: Arc<Mutex<Admission>>,
    reporter: JoinHandle<()>,
    watch: JoinHandle<()>,
}

impl Node {
    fn start(rt: &Runtime, cluster: &Cluster, name: &str) -> Node {
        let certs = cluster.issue_node_cert(name);
        let _enter = rt.enter();
        let identity = Identity::from_dir(&certs, name).expect("node certificate");
        let endpoint =
            RpcEndpoint::bind_client(([127, 0, 0, 1], 0).into(), &identity, RpcOptions::default())
                .expect("QUIC client endpoint");
        let client =
            ControlPlaneClient::new(endpoint, &cluster.replica_addrs(), Arc::new(Cache::new()));
        let watch = rt.spawn(client.clone().run_watch());
        rt.block_on(tokio::time::timeout(
            Duration::from_secs(30),
            client.wait_synced(),
        ))
        .expect("the node's cache got a full copy");
        let admission = Arc::new(Mutex::new(Admission::new()));
        let reporter = spawn_load_reporter(
            client.clone(),
            name.to_owned(),
            load_source(admission.clone()),
        );
        Node {
            name: name.to_owned(),
            client,
            admission,
            reporter,
            watch,
        }
    }

    fn others(&self) -> OthersLoad {
        let tenant = Id::new(TENANT).expect("valid");
        self.client
            .cache()
            .others_load(&tenant, &self.name, now_ms())
    }

    /// What the B2BUA does at call setup: the tenant's quotas from the cache, the
    /// others' load from the cache, this node's count.
    fn admit(&self) -> Result<(), Refusal> {
        let tenant = Id::new(TENANT).expect("valid");
        let quotas: Quotas = self
            .client
            .cache()
            .tenant(&tenant)
            .expect("tenant in the cache")
            .quotas;
        self.admission
            .lock()
            .admit(&tenant, &quotas, self.others(), Instant::now())
    }

    fn release(&self) {
        self.admission
            .lock()
            .release(&Id::new(TENANT).expect("valid"));
    }

    /// Waits until the other nodes' calls of the tenant, as this node sees them, are
    /// `active_calls` on `nodes` nodes.
    #[track_caller]
    fn wait_for_others(&self, active_calls: u32, nodes: u32, within: Duration) {
        let seen = wait_until(within, || {
            let o = self.others();
            (o.active_calls, o.nodes) == (active_calls, nodes)
        });
        assert!(
            seen,
            "{} never saw {active_calls} calls on {nodes} other nodes; it sees {:?}",
            self.name,
            self.others()
        );
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.reporter.abort();
        self.watch.abort();
    }
}

#[test]
fn two_nodes_hold_a_tenants_call_quota_together_through_the_control_plane() {
    let cluster = Cluster::start(3, 20_000);
    let (code, body) = cluster.api(
        "POST",
        "/v1/tenants",
        Some(&format!(
            r#"{{"id":"{TENANT}","name":"ACME","quotas":{{"max_concurrent_calls":{MAX_CALLS},"max_call_attempts_per_sec":100,"max_registrations":10}}}}"#
        )),
    );
    assert_eq!(code, 201, "create tenant: {body}");
    let rt = Runtime::new().expect("tokio runtime");
    let a = Node::start(&rt, &cluster, "node-a");
    let b = Node::start(&rt, &cluster, "node-b");
    let tenant = Id::new(TENANT).expect("valid");
    for node in [&a, &b] {
        assert!(
            wait_until(Duration::from_secs(10), || node
                .client
                .cache()
                .tenant(&tenant)
                .is_some()),
            "{} never saw the tenant",
            node.name
        );
    }

    // Node A takes three calls; B learns of them through the log and takes the
    // fourth, then refuses a fifth.
    for _ in 0..3 {
        a.admit().expect("A has room");
    }
    b.wait_for_others(3, 1, Duration::from_secs(15));
    b.admit().expect("the fourth call fits");
    assert_eq!(b.admit(), Err(Refusal::Concurrent { limit: MAX_CALLS }));
    a.wait_for_others(1, 1, Duration::from_secs(15));
    assert_eq!(a.admit(), Err(Refusal::Concurrent { limit: MAX_CALLS }));

    // The operator sees the same through the API.
    let summed = wait_until(Duration::from_secs(15), || {
        let (code, body) = cluster.api("GET", "/v1/cluster/load", None);
        let load: Value = serde_json::from_str(&body).unwrap_or_default();
        code == 200
            && load["tenants"][0]["tenant"] == TENANT
            && load["tenants"][0]["active_calls"] == MAX_CALLS
            && load["nodes"].as_array().map(Vec::len) == Some(2)
    });
    assert!(
        summed,
        "GET /v1/cluster/load: {:?}",
        cluster.api("GET", "/v1/cluster/load", None)
    );

    // Two of A's calls end: B has room for two more.
    a.release();
    a.release();
    b.wait_for_others(1, 1, Duration::from_secs(15));
    b.admit().expect("room after A's calls ended");
    b.admit().expect("room after A's calls ended");
    assert_eq!(b.admit(), Err(Refusal::Concurrent { limit: MAX_CALLS }));

    // A's last call ends: its idle report removes it, and B no longer counts it.
    a.release();
    b.wait_for_others(0, 0, Duration::from_secs(15));

    // A takes a call and then stops reporting (a node that died with calls): B keeps
    // counting the call only while A's last report is fresh.
    a.admit().expect("A has room");
    b.wait_for_others(1, 1, Duration::from_secs(15));
    a.reporter.abort();
    b.wait_for_others(0, 0, Duration::from_secs(15));
    b.admit().expect("a silent node's calls no longer count");
}
