//! A control-plane cluster of real `tongdai control-plane` processes plus `tongdai node`
//! processes, on loopback with mutual TLS from a dev CA made for the test.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{
    ChildGuard, TempDir, free_tcp_port, free_udp_tcp_port, http_get, http_request, tongdai_bin,
};

/// The operator token every replica of a test cluster accepts.
pub const OPERATOR_TOKEN: &str = "test-operator-token-0123456789";

/// One replica process (or its stopped remains: config and data stay).
#[derive(Debug)]
pub struct ReplicaProc {
    pub id: u64,
    pub quic: SocketAddr,
    pub api: SocketAddr,
    pub data_dir: PathBuf,
    config: PathBuf,
    log: PathBuf,
    child: Option<ChildGuard>,
}

impl ReplicaProc {
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Replicas and nodes of one test.
#[derive(Debug)]
pub struct Cluster {
    pub dir: TempDir,
    certs: PathBuf,
    pub replicas: Vec<ReplicaProc>,
}

fn run_ok(args: &[&str]) {
    let out = Command::new(tongdai_bin())
        .args(args)
        .output()
        .expect("run tongdai");
    assert!(
        out.status.success(),
        "tongdai {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Cluster {
    /// `n` replicas that snapshot every `snapshot_every` entries, started and waited
    /// for until one leads.
    pub fn start(n: u64, snapshot_every: u64) -> Cluster {
        let dir = TempDir::new("cluster");
        let certs = dir.path().join("certs");
        let certs_s = certs.display().to_string();
        run_ok(&["certs", "init", "--dir", &certs_s]);
        for i in 1..=n {
            run_ok(&[
                "certs",
                "issue",
                "--name",
                &format!("replica-{i}"),
                "--role",
                "replica",
                "--dir",
                &certs_s,
            ]);
        }
        let ports: Vec<(u16, u16)> = (1..=n)
            .map(|_| (free_udp_tcp_port(), free_tcp_port()))
            .collect();
        let members = ports
            .iter()
            .enumerate()
            .map(|(i, (q, a))| format!("{}@127.0.0.1:{q}@127.0.0.1:{a}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let mut replicas = Vec::new();
        for (i, (q, a)) in ports.iter().enumerate() {
            let id = i as u64 + 1;
            let data_dir = dir.path().join(format!("replica-{id}"));
            let config = dir.path().join(format!("replica-{id}.toml"));
            std::fs::write(
                &config,
                format!(
                    "[replica]\nid = {id}\nlisten = \"127.0.0.1:{q}\"\napi_listen = \"127.0.0.1:{a}\"\n\
                     data_dir = \"{data}\"\ninitial_members = \"{members}\"\n\
                     operator_token = \"{OPERATOR_TOKEN}\"\nsnapshot_every = {snapshot_every}\n\
                     [control_plane]\ncerts_dir = \"{certs_s}\"\ncert_name = \"replica-{id}\"\n\
                     [log]\nlevel = \"info\"\n",
                    data = data_dir.display(),
                ),
            )
            .expect("write replica config");
            replicas.push(ReplicaProc {
                id,
                quic: SocketAddr::from(([127, 0, 0, 1], *q)),
                api: SocketAddr::from(([127, 0, 0, 1], *a)),
                data_dir,
                log: dir.path().join(format!("replica-{id}.log")),
                config,
                child: None,
            });
        }
        let mut cluster = Cluster {
            dir,
            certs,
            replicas,
        };
        for id in 1..=n {
            cluster.start_replica(id);
        }
        cluster.wait_for_leader(Duration::from_secs(30));
        cluster
    }

    fn replica_mut(&mut self, id: u64) -> &mut ReplicaProc {
        self.replicas
            .iter_mut()
            .find(|r| r.id == id)
            .expect("known replica")
    }

    pub fn replica(&self, id: u64) -> &ReplicaProc {
        self.replicas
            .iter()
            .find(|r| r.id == id)
            .expect("known replica")
    }

    /// Starts (or restarts) a replica process from its config and data.
    pub fn start_replica(&mut self, id: u64) {
        let r = self.replica_mut(id);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&r.log)
            .expect("log file");
        let child = Command::new(tongdai_bin())
            .arg("control-plane")
            .arg("--config")
            .arg(&r.config)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn replica");
        r.child = Some(ChildGuard(child));
        let api = r.api;
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_get(api, "/livez").is_none() {
            assert!(
                Instant::now() < deadline,
                "replica {id} did not start:\n{}",
                self.replica(id).stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9`: no chance to flush or say goodbye.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut guard) = self.replica_mut(id).child.take() {
            let _ = guard.0.kill();
            let _ = guard.0.wait();
        }
    }

    /// A replica's `/v1/cluster` view, if it answers.
    pub fn status(&self, id: u64) -> Option<Value> {
        let r = self.replica(id);
        if !r.is_running() {
            return None;
        }
        let (code, body) = http_request(r.api, "GET", "/v1/cluster", OPERATOR_TOKEN, None)?;
        (code == 200)
            .then(|| serde_json::from_str(&body).ok())
            .flatten()
    }

    /// The leader a running replica reports and that reports itself leader.
    pub fn leader(&self) -> Option<u64> {
        for r in self.replicas.iter().filter(|r| r.is_running()) {
            let Some(status) = self.status(r.id) else {
                continue;
            };
            if let Some(leader) = status["leader"].as_u64()
                && self.status(leader).is_some_and(|s| s["state"] == "leader")
            {
                return Some(leader);
            }
        }
        None
    }

    pub fn wait_for_leader(&self, within: Duration) -> u64 {
        let deadline = Instant::now() + within;
        loop {
            if let Some(l) = self.leader() {
                return l;
            }
            assert!(Instant::now() < deadline, "no leader within {within:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// An API call on the leader (retried through elections for up to 20 s).
    pub fn api(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(leader) = self.leader() {
                let api = self.replica(leader).api;
                if let Some((code, body)) = http_request(api, method, path, OPERATOR_TOKEN, body)
                    && code != 307
                    && code != 503
                {
                    return (code, body);
                }
            }
            assert!(
                Instant::now() < deadline,
                "{method} {path}: no leader answered"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The extensions with live registrations in `tenant` that replica `id` holds in
    /// its own state.
    pub fn registered_on(&self, id: u64, tenant: &str) -> Option<Vec<String>> {
        let r = self.replica(id);
        let (code, body) = http_request(
            r.api,
            "GET",
            &format!("/v1/tenants/{tenant}/registrations?local=true"),
            OPERATOR_TOKEN,
            None,
        )?;
        if code != 200 {
            return None;
        }
        let list: Value = serde_json::from_str(&body).ok()?;
        Some(
            list.as_array()?
                .iter()
                .filter_map(|b| b["extension"].as_str().map(str::to_owned))
                .collect(),
        )
    }

    /// Issues a node certificate `name` (role `node`) and returns the directory with it
    /// and the CA, for a node's control-plane client run inside the test process.
    pub fn issue_node_cert(&self, name: &str) -> PathBuf {
        let certs_s = self.certs.display().to_string();
        run_ok(&[
            "certs", "issue", "--name", name, "--role", "node", "--dir", &certs_s,
        ]);
        self.certs.clone()
    }

    /// The replicas' QUIC addresses (`host:port`), as a node is configured with them.
    pub fn replica_addrs(&self) -> Vec<String> {
        self.replicas.iter().map(|r| r.quic.to_string()).collect()
    }

    /// Issues a node certificate and starts `tongdai node` against every replica.
    pub fn start_node(&self, name: &str, realm: &str) -> NodeProc {
        let certs_s = self.certs.display().to_string();
        run_ok(&[
            "certs", "issue", "--name", name, "--role", "node", "--dir", &certs_s,
        ]);
        let sip = free_udp_tcp_port();
        let http = free_tcp_port();
        let replicas = self
            .replicas
            .iter()
            .map(|r| r.quic.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let config = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "[node]\nname = \"{name}\"\n[sip]\nlisten_udp = \"127.0.0.1:{sip}\"\n\
                 listen_tcp = \"127.0.0.1:{sip}\"\n[http]\nlisten = \"127.0.0.1:{http}\"\n\
                 [registrar]\nrealm = \"{realm}\"\nalgorithms = [\"MD5\", \"SHA-256\"]\n\
                 [control_plane]\nreplicas = \"{replicas}\"\ncerts_dir = \"{certs_s}\"\n\
                 [replica]\ndata_dir = \"{data}\"\n\
                 [log]\nlevel = \"info\"\n",
                data = self.dir.path().join(format!("{name}-data")).display(),
            ),
        )
        .expect("write node config");
        let log = self.dir.path().join(format!("{name}.log"));
        let child = Command::new(tongdai_bin())
            .arg("node")
            .arg("--config")
            .arg(&config)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn node");
        let mut node = NodeProc {
            sip: SocketAddr::from(([127, 0, 0, 1], sip)),
            http: SocketAddr::from(([127, 0, 0, 1], http)),
            log,
            child: ChildGuard(child),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_get(node.http, "/healthz").is_none_or(|(c, _)| c != 200) {
            if let Some(status) = node.child.0.try_wait().expect("poll node") {
                panic!("node {name} exited ({status}):\n{}", node.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "node {name} not healthy:\n{}",
                node.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        node
    }
}

/// A `tongdai node` process.
#[derive(Debug)]
pub struct NodeProc {
    pub sip: SocketAddr,
    pub http: SocketAddr,
    log: PathBuf,
    child: ChildGuard,
}

impl NodeProc {
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}
