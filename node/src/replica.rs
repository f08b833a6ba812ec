//! Running a control-plane replica in this process: its QUIC endpoint (Raft RPCs and
//! nodes), the Raft replica over the redb store, and the HTTP admin API. Used by
//! `tongdai control-plane` and `tongdai up`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::time::Duration;

use anyhow::{Context, bail};
use tongdai_control_plane::api::{self, AuthConfig};
use tongdai_control_plane::quic::{Identity, RpcEndpoint, RpcOptions, serve};
use tongdai_control_plane::raft::network::QuicNetwork;
use tongdai_control_plane::raft::{Member, NodeId, RaftSettings, Replica};
use tongdai_control_plane::service::ReplicaService;

use crate::config::ReplicaConfig;

/// A replica running in this process.
#[derive(Debug)]
pub struct RunningReplica {
    pub replica: Replica,
    pub endpoint: RpcEndpoint,
    /// Where nodes and peers reach it (QUIC).
    pub quic_addr: SocketAddr,
    /// Where the admin API listens.
    pub api_addr: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningReplica {
    /// Stops serving and stops Raft; the data stays on disk.
    pub async fn stop(self) {
        for task in &self.tasks {
            task.abort();
        }
        self.endpoint.close();
        self.replica.shutdown().await;
    }
}

/// `replica.initial_members`, parsed and checked to list this replica (empty: this
/// replica alone).
pub fn initial_members(config: &ReplicaConfig) -> anyhow::Result<BTreeMap<NodeId, Member>> {
    let members = parse_members(&config.initial_members)?;
    if !members.is_empty() && !members.contains_key(&config.id) {
        bail!(
            "replica.initial_members does not list this replica's id {} (replica.id)",
            config.id
        );
    }
    Ok(members)
}

/// Parses `id@quic_addr@api_addr,...`.
fn parse_members(text: &str) -> anyhow::Result<BTreeMap<NodeId, Member>> {
    let mut members = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let fields: Vec<&str> = part.split('@').collect();
        let [id, raft_addr, api_addr] = fields[..] else {
            bail!(
                "replica.initial_members: {part:?} is not id@quic_addr@api_addr \
                 (e.g. 1@127.0.0.1:7100@127.0.0.1:8080)"
            );
        };
        let id: NodeId = id
            .parse()
            .with_context(|| format!("replica.initial_members: {id:?} is not a replica id"))?;
        members.insert(
            id,
            Member {
                raft_addr: raft_addr.to_owned(),
                api_addr: api_addr.to_owned(),
            },
        );
    }
    Ok(members)
}

/// The operator token: from the config, else from `<data_dir>/operator.token`,
/// generated there on first start (mode 0600).
fn operator_token(config: &ReplicaConfig, data_dir: &Path) -> anyhow::Result<String> {
    if !config.operator_token.is_empty() {
        return Ok(config.operator_token.clone());
    }
    token_file(data_dir)
}

/// The token in `<dir>/operator.token`, generated there (mode 0600) if absent.
pub fn token_file(data_dir: &Path) -> anyhow::Result<String> {
    let file = data_dir.join("operator.token");
    if let Ok(text) = std::fs::read_to_string(&file) {
        return Ok(text.trim().to_owned());
    }
    let token = hex::encode(rand::random::<[u8; 24]>());
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    write_private(&file, &token)?;
    Ok(token)
}

fn write_private(file: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(file)
        .with_context(|| format!("cannot write {}", file.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", file.display()))
}

/// Starts a replica: binds its QUIC and HTTP listeners, opens its store and starts
/// Raft, and initializes a new cluster when it is the lowest-id initial member.
pub async fn start(
    config: &ReplicaConfig,
    identity: &Identity,
    settings: &RaftSettings,
    http: crate::telemetry::HttpServer,
) -> anyhow::Result<RunningReplica> {
    start_with_records(config, identity, settings, http, None).await
}

/// As [`start`], with the admin API serving CDRs and recordings from `records`
/// ([`crate::cdr::NodeRecords::from_config`]).
pub async fn start_with_records(
    config: &ReplicaConfig,
    identity: &Identity,
    settings: &RaftSettings,
    http: crate::telemetry::HttpServer,
    records: Option<std::sync::Arc<dyn api::records::Records>>,
) -> anyhow::Result<RunningReplica> {
    let data_dir = PathBuf::from(&config.data_dir);
    let endpoint = RpcEndpoint::bind(config.listen, identity, RpcOptions::default())
        .with_context(|| format!("cannot listen on {} (replica.listen)", config.listen))?;
    let quic_addr = endpoint.local_addr();
    let api_addr = http.local_addr();
    let network = QuicNetwork::new(config.id, endpoint.clone());
    let replica = Replica::start(config.id, &data_dir.join("raft"), settings, network)
        .await
        .with_context(|| format!("cannot start replica {}", config.id))?;
    let token = operator_token(config, &data_dir)?;
    let auth = AuthConfig::with_operator_token(&token)
        .map_err(|e| anyhow::anyhow!("replica.operator_token: {e}"))?;

    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(serve(
        endpoint.clone(),
        ReplicaService::new(replica.clone()),
    )));
    let http = http.with_routes(api::router_with_records(replica.clone(), auth, records));
    tasks.push(tokio::spawn(async move {
        if let Err(e) = http.serve(std::future::pending()).await {
            tracing::error!("admin API stopped: {e}");
        }
    }));

    tracing::info!(id = config.id, %quic_addr, %api_addr, "control-plane replica running");
    Ok(RunningReplica {
        replica,
        endpoint,
        quic_addr,
        api_addr,
        tasks,
    })
}

impl RunningReplica {
    /// Starts a new cluster when this replica is the lowest-id initial member (or the
    /// only one) and the cluster does not exist yet; a no-op on restarts.
    pub async fn initialize(&self, config: &ReplicaConfig) -> anyhow::Result<()> {
        let (quic_addr, api_addr) = (self.quic_addr, self.api_addr);
        let replica = &self.replica;
        let mut members = initial_members(config)?;
        if members.is_empty() {
            members.insert(
                config.id,
                Member {
                    raft_addr: quic_addr.to_string(),
                    api_addr: api_addr.to_string(),
                },
            );
        }
        let lowest = members.keys().next() == Some(&config.id);
        // A restart finds its cluster in the store; initializing again would only be
        // refused (and logged as an error by openraft).
        let fresh = !replica.raft().is_initialized().await.unwrap_or(true);
        if lowest
            && fresh
            && let Err(e) = replica.raft().initialize(members).await
        {
            // Already initialized (a restart) is the normal case.
            tracing::debug!("initialize: {e}");
        }
        Ok(())
    }
}

/// Waits until the replica knows a leader.
pub async fn wait_for_leader(replica: &Replica, timeout: Duration) -> anyhow::Result<NodeId> {
    replica
        .wait_for_leader(timeout)
        .await
        .with_context(|| format!("no Raft leader elected within {timeout:?}"))
}

/// Creates the demo tenant and its extensions in the control plane, or updates their
/// passwords when they exist (so the banner's passwords are the ones that work).
/// What `tongdai up` provisions for calls besides the extensions.
#[derive(Debug, Clone, Copy)]
pub struct DemoCallPlan {
    pub toll_free: &'static str,
    pub did: &'static str,
    pub hunt_group: &'static str,
    /// For the banner.
    pub hunt_members: &'static str,
    pub trunk: &'static str,
}

pub const DEMO: DemoCallPlan = DemoCallPlan {
    toll_free: "18001000",
    did: "02873000000",
    hunt_group: "support",
    hunt_members: "the first three extensions",
    trunk: "test-carrier",
};

pub async fn provision_demo(
    replica: &Replica,
    tenant: &crate::config::DemoTenant,
    carrier: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    use crate::sip::auth::{Algorithm, ha1};
    use tongdai_control_plane::cluster::Cluster;
    use tongdai_control_plane::model::{
        CallSettings, Command, CommandError, Extension, Id, Quotas, Tenant,
    };

    let id = Id::new(&tenant.realm)
        .map_err(|e| anyhow::anyhow!("demo.realm {:?} cannot be a tenant id: {e}", tenant.realm))?;
    let count = u32::try_from(tenant.extensions.len()).unwrap_or(u32::MAX);
    let create = Command::CreateTenant(Tenant {
        id: id.clone(),
        name: "Demo".into(),
        quotas: Quotas {
            max_concurrent_calls: 1_000,
            max_call_attempts_per_sec: 1_000,
            max_registrations: count.saturating_mul(2).clamp(100, 1_000_000),
        },
        calls: CallSettings::default(),
    });
    let results = replica
        .propose(vec![create])
        .await
        .context("cannot create the demo tenant")?;
    match results.first() {
        Some(Ok(_) | Err(CommandError::TenantExists(_))) => {}
        Some(Err(e)) => bail!("cannot create the demo tenant: {e}"),
        None => bail!("cannot create the demo tenant: no result"),
    }
    for chunk in tenant.extensions.chunks(500) {
        let mut extensions = Vec::with_capacity(chunk.len());
        for user in chunk {
            extensions.push(Extension {
                tenant: id.clone(),
                ext: Id::new(&user.extension)
                    .map_err(|e| anyhow::anyhow!("demo extension {:?}: {e}", user.extension))?,
                display_name: format!("Demo {}", user.extension),
                ha1_md5: ha1(
                    Algorithm::Md5,
                    &user.extension,
                    &tenant.realm,
                    &user.password,
                ),
                ha1_sha256: ha1(
                    Algorithm::Sha256,
                    &user.extension,
                    &tenant.realm,
                    &user.password,
                ),
                forward_to_mobile: None,
            });
        }
        let creates = extensions
            .iter()
            .cloned()
            .map(Command::CreateExtension)
            .collect();
        let results = replica
            .propose(creates)
            .await
            .context("cannot create demo extensions")?;
        let mut updates = Vec::new();
        for (ext, result) in extensions.into_iter().zip(results) {
            match result {
                Ok(_) => {}
                Err(CommandError::ExtensionExists { .. }) => {
                    updates.push(Command::UpdateExtension(ext));
                }
                Err(e) => bail!("cannot create demo extension {}: {e}", ext.ext),
            }
        }
        if !updates.is_empty() {
            for result in replica
                .propose(updates)
                .await
                .context("cannot update demo extensions")?
            {
                if let Err(e) = result {
                    bail!("cannot update a demo extension: {e}");
                }
            }
        }
    }
    if let Some(carrier) = carrier {
        provision_demo_calls(replica, &id, tenant, carrier).await?;
    }
    Ok(())
}

/// The demo call plan: a trunk to the test carrier, a DID as caller ID, the toll-free
/// number ringing a hunt group of the first three extensions. Existing entries are kept.
async fn provision_demo_calls(
    replica: &Replica,
    tenant: &tongdai_control_plane::model::Id,
    demo: &crate::config::DemoTenant,
    carrier: std::net::SocketAddr,
) -> anyhow::Result<()> {
    use tongdai_control_plane::cluster::Cluster;
    use tongdai_control_plane::model::{
        Command, CommandError, Destination, HuntGroup, Id, Number, NumberKind, RingStrategy,
        Transport, Trunk,
    };
    let id = |s: &str| Id::new(s).map_err(|e| anyhow::anyhow!("demo id {s:?}: {e}"));
    let members: Vec<Id> = demo
        .extensions
        .iter()
        .take(3)
        .map(|u| id(&u.extension))
        .collect::<Result<_, _>>()?;
    let Some(first) = members.first().cloned() else {
        return Ok(());
    };
    let trunk = Trunk {
        tenant: tenant.clone(),
        id: id(DEMO.trunk)?,
        address: carrier.to_string(),
        transport: Transport::Udp,
        trusted_sources: Vec::new(),
        registration: None,
        max_concurrent_calls: 100,
        failover: None,
    };
    let commands = vec![
        Command::CreateTrunk(Box::new(trunk.clone())),
        Command::CreateNumber(Number {
            digits: DEMO.did.into(),
            kind: NumberKind::Geographic,
            tenant: tenant.clone(),
            tariff_band: None,
            destination: Destination::Extension(first.clone()),
            recording: None,
        }),
        Command::CreateHuntGroup(HuntGroup {
            tenant: tenant.clone(),
            id: id(DEMO.hunt_group)?,
            members,
            strategy: RingStrategy::RingAll,
            ring_secs: 20,
            no_answer: Destination::Extension(first),
        }),
        Command::CreateNumber(Number {
            digits: DEMO.toll_free.into(),
            kind: NumberKind::TollFree1800,
            tenant: tenant.clone(),
            tariff_band: None,
            destination: Destination::HuntGroup(id(DEMO.hunt_group)?),
            recording: None,
        }),
    ];
    let results = replica
        .propose(commands)
        .await
        .context("cannot create the demo call plan")?;
    for result in results {
        match result {
            Ok(_)
            | Err(
                CommandError::TrunkExists { .. }
                | CommandError::NumberExists(_)
                | CommandError::HuntGroupExists { .. },
            ) => {}
            Err(e) => bail!("cannot create the demo call plan: {e}"),
        }
    }
    // The trunk's address changes with every start (the carrier takes a free port).
    let trunk_update = Command::UpdateTrunk(Box::new(trunk));
    let tenant_now = replica
        .read(|s| s.tenant(tenant).cloned())
        .ok_or_else(|| anyhow::anyhow!("the demo tenant vanished"))?;
    let mut updated = tenant_now.clone();
    if updated.calls.outbound_trunk.is_none() {
        updated.calls.outbound_trunk = Some(id(DEMO.trunk)?);
    }
    if updated.calls.caller_id.is_none() {
        updated.calls.caller_id = Some(DEMO.did.into());
    }
    let mut commands = vec![trunk_update];
    if updated != tenant_now {
        commands.push(Command::UpdateTenant(updated));
    }
    for result in replica
        .propose(commands)
        .await
        .context("cannot point the demo tenant at its trunk")?
    {
        if let Err(e) = result {
            bail!("cannot point the demo tenant at its trunk: {e}");
        }
    }
    Ok(())
}
