//! The `tongdai` binary.
//!
//! - `tongdai up`: everything on this machine with a demo tenant; no config needed.
//! - `tongdai node --config FILE`: a SIP node for real deployments.
//! - `tongdai config check [--config FILE]`: validate and print the effective config.
//! - `tongdai control-plane --config FILE`: a control-plane replica.
//! - `tongdai certs init | issue`: the dev PKI for mutual TLS between replicas, nodes and
//!   admins.
//! - `tongdai ctl ...`: administer a cluster through its REST API.
//!
//! Exit codes: 0 success, 2 bad usage or configuration (only the message is printed),
//! 1 runtime failure, 130 on a second SIGINT/SIGTERM during a graceful shutdown.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::sync::Arc;
use tokio::sync::oneshot;

use tongdai_control_plane::quic::certs as pki;
use tongdai_control_plane::quic::{Identity, Role as Role_, RpcEndpoint, RpcOptions};
use tongdai_control_plane::raft::RaftSettings;
use tongdai_node::cluster::{Cache, ClusterStore, ControlPlaneClient};
use tongdai_node::config::{
    Config, ConfigWarning, DemoTenant, LoadedConfig, LogFormat, ReplicaConfig,
};
use tongdai_node::server;
use tongdai_node::telemetry::{self, Health, HealthState, HttpServer, TelemetryError};

#[derive(Debug, Parser)]
#[command(
    name = "tongdai",
    version,
    about = "tongdai: a multi-tenant SIP call-center platform",
    long_about = "tongdai: a multi-tenant SIP call-center platform.\n\n\
                  Every config key can also be set by an environment variable \
                  TONGDAI_<SECTION>_<KEY>, e.g. TONGDAI_SIP_LISTEN_UDP=0.0.0.0:5060, \
                  which overrides the file. RUST_LOG overrides [log] level."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an all-in-one node on this machine with a demo tenant (extensions 1001-1010).
    ///
    /// Needs no config: defaults plus TONGDAI_* environment variables. Prints the addresses,
    /// the extensions with their passwords and the settings for a softphone.
    Up {
        /// Optional config file to start from.
        #[arg(short, long, value_name = "FILE", env = "TONGDAI_CONFIG")]
        config: Option<PathBuf>,
        /// Control-plane replicas to run (1, 3 or 5; 3 lets you try failover).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=7))]
        replicas: u64,
    },
    /// Run a control-plane replica from a config file (`[replica]`, `[control_plane]`).
    ControlPlane {
        /// The replica's TOML config file.
        #[arg(short, long, value_name = "FILE", env = "TONGDAI_CONFIG")]
        config: PathBuf,
    },
    /// Run a SIP node from a config file (real deployments).
    Node {
        /// The node's TOML config file.
        #[arg(short, long, value_name = "FILE", env = "TONGDAI_CONFIG")]
        config: PathBuf,
    },
    /// Run only the media plane (RTP relay) with its HTTP control API: for benchmarks and
    /// for a media node driven by a B2BUA elsewhere.
    Media(Box<tongdai_node::media::control::MediaArgs>),
    /// Inspect configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Administer a cluster through its REST API (tenants, numbers, extensions, ...).
    Ctl(Box<tongdai_node::ctl::CtlArgs>),
    /// Manage the certificates of the cluster's mutual TLS (dev PKI).
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum CertsCommand {
    /// Create a cluster CA: DIR/ca.pem and DIR/ca.key. Refuses to replace an existing CA
    /// (every certificate it issued would stop working) unless --force.
    Init {
        /// Where the CA and the certificates are kept.
        #[arg(long, value_name = "DIR", env = "TONGDAI_CERTS_DIR", default_value = pki::DEFAULT_DIR)]
        dir: PathBuf,
        /// Replace an existing CA.
        #[arg(long)]
        force: bool,
    },
    /// Issue a certificate signed by the CA in DIR: DIR/NAME.pem and DIR/NAME.key.
    Issue {
        /// Who holds it (the certificate's CN), e.g. replica-1.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// What it may do: replicas serve and dial, nodes and admins only dial.
        #[arg(long, value_parser = ["replica", "node", "admin"])]
        role: String,
        /// An extra DNS name or IP address it is valid for (repeatable); localhost,
        /// 127.0.0.1, ::1 and the cluster name are always included.
        #[arg(long = "san", value_name = "DNS|IP")]
        sans: Vec<String>,
        /// Where the CA and the certificates are kept.
        #[arg(long, value_name = "DIR", env = "TONGDAI_CERTS_DIR", default_value = pki::DEFAULT_DIR)]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a config (file plus TONGDAI_* environment) and print the effective config as
    /// TOML. Exits 0 when valid, 2 with the problems otherwise. Without --config, checks the
    /// defaults plus the environment.
    Check {
        #[arg(short, long, value_name = "FILE", env = "TONGDAI_CONFIG")]
        config: Option<PathBuf>,
    },
}

/// How the process ends when it does not succeed.
#[derive(Debug)]
enum Failure {
    /// Bad configuration: the message alone is printed, exit code 2.
    Config(String),
    /// Something failed while running: exit code 1.
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure::Runtime(error)
    }
}

// mimalloc: the SIP path allocates many small strings per message; glibc malloc was a
// sixth of the node's CPU under REGISTER load (perf, loadtest/results).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version land here too, with exit code 0; usage errors with 2.
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(message)) => {
            eprintln!("{message}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(error)) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let env = process_env()?;
    match cli.command {
        Command::Up { config, replicas } => {
            let loaded = load(config.as_deref(), &env)?;
            let config = loaded.config.with_demo();
            start(config, loaded.warnings, Role::Up { replicas })
        }
        Command::Node { config } => {
            let loaded = load(Some(&config), &env)?;
            if loaded.config.control_plane.replica_addrs().is_empty() {
                return Err(Failure::Config(
                    "control_plane.replicas is empty: set the QUIC addresses of the control-plane \
                     replicas, e.g. replicas = \"10.0.0.1:7100,10.0.0.2:7100\" in [control_plane] \
                     or TONGDAI_CONTROL_PLANE_REPLICAS"
                        .into(),
                ));
            }
            start(loaded.config, loaded.warnings, Role::Node)
        }
        Command::ControlPlane { config } => {
            let loaded = load(Some(&config), &env)?;
            tongdai_node::replica::initial_members(&loaded.config.replica)
                .map_err(|e| Failure::Config(format!("{e:#}")))?;
            start(loaded.config, loaded.warnings, Role::ControlPlane)
        }
        Command::Ctl(args) => {
            tongdai_node::ctl::run(*args, &mut std::io::stdout().lock()).map_err(|e| {
                match e.exit_code() {
                    2 => Failure::Config(format!("error: {e}")),
                    _ => Failure::Runtime(e.into()),
                }
            })
        }
        Command::Config {
            command: ConfigCommand::Check { config },
        } => {
            let loaded = load(config.as_deref(), &env)?;
            for warning in &loaded.warnings {
                eprintln!("warning: {warning}");
            }
            let source = match &config {
                Some(path) => format!("defaults < {} < TONGDAI_* environment", path.display()),
                None => "defaults < TONGDAI_* environment".to_owned(),
            };
            print!(
                "# tongdai effective configuration ({source})\n\n{}",
                loaded.config.to_toml()
            );
            Ok(())
        }
        Command::Certs { command } => certs(command),
        Command::Media(args) => {
            let (config, token) =
                tongdai_node::media::control::prepare(&args).map_err(Failure::Config)?;
            let runtime = tokio::runtime::Runtime::new().map_err(|e| Failure::Runtime(e.into()))?;
            runtime
                .block_on(tongdai_node::media::control::serve(config, token, &args))
                .map_err(Failure::Runtime)
        }
    }
}

fn certs(command: CertsCommand) -> Result<(), Failure> {
    let written = match command {
        CertsCommand::Init { dir, force } => pki::init_ca(&dir, force),
        CertsCommand::Issue {
            name,
            role,
            sans,
            dir,
        } => role
            .parse()
            .and_then(|role| pki::issue(&dir, &name, role, &sans, &dir)),
    };
    match written {
        Ok(written) => {
            print!("{written}");
            Ok(())
        }
        Err(e) if e.is_usage() => Err(Failure::Config(e.to_string())),
        Err(e) => Err(Failure::Runtime(e.into())),
    }
}

fn load(path: Option<&Path>, env: &[(String, String)]) -> Result<LoadedConfig, Failure> {
    Config::load(path, env).map_err(|e| Failure::Config(e.to_string()))
}

/// The process environment as UTF-8 pairs. A `TONGDAI_*` variable that is not UTF-8 is a
/// config error (it would otherwise be silently ignored); other variables are not our business.
fn process_env() -> Result<Vec<(String, String)>, Failure> {
    let mut env = Vec::new();
    for (name, value) in std::env::vars_os() {
        let Ok(name) = name.into_string() else {
            continue;
        };
        match value.into_string() {
            Ok(value) => env.push((name, value)),
            Err(_) if name.starts_with("TONGDAI_") => {
                return Err(Failure::Config(format!(
                    "{name}: the value is not valid UTF-8 (expected text)"
                )));
            }
            Err(_) => {}
        }
    }
    Ok(env)
}

/// What this process runs.
#[derive(Debug, Clone, Copy)]
enum Role {
    /// Replicas and a node in one process, with the demo tenant.
    Up {
        replicas: u64,
    },
    Node,
    ControlPlane,
}

/// Sets up logging and the runtime, then runs until shut down.
fn start(config: Config, warnings: Vec<ConfigWarning>, role: Role) -> Result<(), Failure> {
    let rust_log = std::env::var("RUST_LOG").ok();
    telemetry::init_tracing(&config.log, rust_log.as_deref()).map_err(|e| match e {
        TelemetryError::LogFilter { .. } => Failure::Config(e.to_string()),
        other => Failure::Runtime(other.into()),
    })?;
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tongdai")
        .build()
        .context("cannot start the async runtime")?;
    let json_logs = config.log.format == LogFormat::Json;
    runtime
        .block_on(run_process(config, role))
        .inspect_err(|error| {
            // Log shippers read only JSON lines; people read the plain line main prints.
            if json_logs {
                tracing::error!("{error:#}");
            }
        })?;
    Ok(())
}

/// How long to wait for in-flight `/metrics` or `/healthz` requests once the node has stopped.
const HTTP_STOP_GRACE: Duration = Duration::from_secs(5);

async fn run_process(mut config: Config, role: Role) -> anyhow::Result<()> {
    // Catch signals before anything else so an early SIGTERM is a graceful stop too.
    let mut signals = ShutdownSignals::install().context("cannot install signal handlers")?;

    let health = Health::new();
    let metrics = telemetry::install_metrics_recorder()?;
    let upkeep = telemetry::metrics::spawn_upkeep(metrics.clone(), Duration::from_secs(5));
    let certs_dir = PathBuf::from(&config.control_plane.certs_dir);

    // The control-plane replicas this process runs.
    let replica_count = match role {
        Role::Up { replicas } => replicas,
        Role::ControlPlane => 1,
        Role::Node => 0,
    };
    if let Role::Up { .. } = role {
        let mut certs: Vec<(String, Role_)> = (1..=replica_count)
            .map(|i| (format!("replica-{i}"), Role_::Replica))
            .collect();
        certs.push((config.node.name.clone(), Role_::Node));
        certs.push(("admin".to_owned(), Role_::Admin));
        let certs: Vec<(&str, Role_)> = certs.iter().map(|(n, r)| (n.as_str(), *r)).collect();
        tongdai_control_plane::quic::ensure_dev_pki(&certs_dir, &certs).with_context(|| {
            format!("cannot set up dev certificates in {}", certs_dir.display())
        })?;
    }
    let mut replicas = Vec::new();
    let replica_configs = replica_configs(&config, role)?;
    for rc in &replica_configs {
        let cert_name = if config.control_plane.cert_name.is_empty() || replica_count > 1 {
            format!("replica-{}", rc.id)
        } else {
            config.control_plane.cert_name.clone()
        };
        let identity = Identity::from_dir(&certs_dir, &cert_name)?;
        let http = HttpServer::bind(rc.api_listen, metrics.clone(), health.clone()).await?;
        let settings = RaftSettings {
            snapshot_every: rc.snapshot_every,
            keep_behind_snapshot: (rc.snapshot_every / 10).max(1),
            ..RaftSettings::default()
        };
        let records = tongdai_node::cdr::NodeRecords::from_config(&config);
        let running =
            tongdai_node::replica::start_with_records(rc, &identity, &settings, http, records)
                .await?;
        replicas.push(running);
    }
    // Every replica of this process listens before the cluster starts electing.
    for (running, rc) in replicas.iter().zip(&replica_configs) {
        running.initialize(rc).await?;
    }
    // `tongdai up` provisions the demo tenant once its cluster has a leader. A lone
    // `tongdai control-plane` does not wait: its peers may start much later.
    // ... with a test carrier on loopback for its demo trunk (echoes audio back).
    let mut carrier = None;
    if let (Role::Up { .. }, Some(first)) = (role, replicas.first()) {
        let leader =
            tongdai_node::replica::wait_for_leader(&first.replica, Duration::from_secs(30)).await?;
        if let Some(tenant) = config.demo_tenant() {
            let leader = replicas
                .iter()
                .find(|r| r.replica.id() == leader)
                .unwrap_or(first);
            let ip = config
                .sip
                .listen_udp
                .map_or(std::net::IpAddr::from([127, 0, 0, 1]), |a| a.ip());
            let ip = if ip.is_unspecified() {
                std::net::IpAddr::from([127, 0, 0, 1])
            } else {
                ip
            };
            let started = tongdai_node::demo_carrier::start(ip)
                .await
                .context("cannot start the demo test carrier")?;
            tongdai_node::replica::provision_demo(&leader.replica, &tenant, Some(started.sip))
                .await?;
            carrier = Some(started);
        }
    }

    let result = if let Role::ControlPlane = role {
        health.set_ok();
        let signal = signals.next().await;
        tracing::info!(signal, "stopping the replica");
        Ok(())
    } else {
        if let Role::Up { .. } = role {
            config.control_plane.replicas = replicas
                .iter()
                .map(|r| r.quic_addr.to_string())
                .collect::<Vec<_>>()
                .join(",");
        }
        // Only `tongdai up` provisions the demo tenant, so only it prints the banner.
        let banner_extra = matches!(role, Role::Up { .. }).then(|| {
            up_banner_control_plane(&replicas, &config.replica.data_dir)
                + &carrier
                    .as_ref()
                    .map_or(String::new(), |c| up_banner_calls(c.sip))
        });
        run_node(config, health, metrics, signals, banner_extra).await
    };
    for replica in replicas {
        replica.stop().await;
    }
    upkeep.abort();
    result
}

/// The `[replica]` configs of the replicas this process runs: the configured one for
/// `tongdai control-plane`, `n` on consecutive ports under `tongdai up`.
fn replica_configs(config: &Config, role: Role) -> anyhow::Result<Vec<ReplicaConfig>> {
    let base = &config.replica;
    match role {
        Role::Node => Ok(Vec::new()),
        Role::ControlPlane => Ok(vec![base.clone()]),
        Role::Up { replicas } => {
            // One operator token for every replica of the process, in
            // <data_dir>/operator.token unless configured.
            let operator_token = if base.operator_token.is_empty() {
                tongdai_node::replica::token_file(Path::new(&base.data_dir))?
            } else {
                base.operator_token.clone()
            };
            if replicas == 1 {
                let mut rc = base.clone();
                rc.data_dir = format!("{}/replica-1", base.data_dir);
                rc.operator_token = operator_token;
                return Ok(vec![rc]);
            }
            if base.listen.port() == 0 || base.api_listen.port() == 0 {
                anyhow::bail!(
                    "--replicas {replicas} needs fixed ports: replica.listen and replica.api_listen \
                     are the first replica's, the others use the following ports"
                );
            }
            let at = |addr: SocketAddr, i: u64| {
                let mut a = addr;
                a.set_port(
                    addr.port()
                        .saturating_add(u16::try_from(i - 1).unwrap_or(0)),
                );
                a
            };
            let members = (1..=replicas)
                .map(|i| format!("{i}@{}@{}", at(base.listen, i), at(base.api_listen, i)))
                .collect::<Vec<_>>()
                .join(",");
            Ok((1..=replicas)
                .map(|i| ReplicaConfig {
                    id: i,
                    listen: at(base.listen, i),
                    api_listen: at(base.api_listen, i),
                    data_dir: format!("{}/replica-{i}", base.data_dir),
                    initial_members: members.clone(),
                    operator_token: operator_token.clone(),
                    snapshot_every: base.snapshot_every,
                })
                .collect())
        }
    }
}

/// Runs the SIP node (with its control-plane client) until a shutdown signal.
async fn run_node(
    config: Config,
    health: Health,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
    mut signals: ShutdownSignals,
    banner_extra: Option<String>,
) -> anyhow::Result<()> {
    let trunk_status = tongdai_node::trunk::StatusBoard::new();
    let http = HttpServer::bind(config.http.listen, metrics, health.clone())
        .await?
        .with_routes(tongdai_node::trunk::status::router(trunk_status.clone()));
    let http_addr = http.local_addr();
    let (stop_http, http_stopped) = oneshot::channel::<()>();
    let http_task = tokio::spawn(http.serve(async {
        let _ = http_stopped.await;
    }));
    tracing::info!(
        node = %config.node.name,
        %http_addr,
        "HTTP endpoint listening: /metrics, /healthz, /livez, /trunks/registrations"
    );

    // The control plane: credentials and registrations come from its watch stream.
    let certs_dir = PathBuf::from(&config.control_plane.certs_dir);
    let cert_name = if config.control_plane.cert_name.is_empty() {
        config.node.name.clone()
    } else {
        config.control_plane.cert_name.clone()
    };
    let identity = Identity::from_dir(&certs_dir, &cert_name)?;
    let endpoint = RpcEndpoint::bind_client(
        SocketAddr::from(([0, 0, 0, 0], 0)),
        &identity,
        RpcOptions::default(),
    )?;
    let addrs = config.control_plane.replica_addrs();
    let client = ControlPlaneClient::new(endpoint, &addrs, Arc::new(Cache::new()));
    let watch = tokio::spawn(client.clone().run_watch());
    let synced = async {
        loop {
            tokio::select! {
                () = client.wait_synced() => return true,
                () = tokio::time::sleep(Duration::from_secs(5)) => {
                    tracing::warn!(replicas = %addrs.join(","), "waiting for the control plane");
                }
            }
        }
    };
    let synced = tokio::select! {
        s = synced => s,
        signal = signals.next() => {
            tracing::info!(signal, "stopped before the control plane answered");
            false
        }
    };
    if !synced {
        watch.abort();
        let _ = stop_http.send(());
        return Ok(());
    }
    tracing::info!("control-plane state received");
    let drain_client = client.clone();
    let store = ClusterStore::new(client);

    // Once the SIP server reports ready, tell the operator (and the person at the terminal
    // under `tongdai up`) where everything is.
    let announce = {
        let mut ready = health.subscribe();
        let banner = banner_extra.and_then(|extra| {
            config
                .demo_tenant()
                .map(|tenant| up_banner(&config, &tenant, http_addr) + &extra)
        });
        let sip = sip_addresses(&config);
        tokio::spawn(async move {
            if ready.wait_for(|s| *s == HealthState::Ok).await.is_ok() {
                tracing::info!(%sip, "ready");
                if let Some(banner) = banner {
                    print!("{banner}");
                }
            }
        })
    };

    let shutdown = {
        let health = health.clone();
        let node = config.node.name.clone();
        async move {
            // A signal, or `tongdai ctl node drain` naming this node.
            let signal = tokio::select! {
                signal = signals.next() => signal,
                request = drain_client.cache().pending_drain(&node) => {
                    health.set_draining();
                    accept_drain(&drain_client, &node, request.seq).await;
                    "a drain request"
                }
            };
            health.set_draining();
            tracing::info!(
                signal,
                "shutting down gracefully; SIGINT or SIGTERM now exits at once"
            );
            tokio::spawn(async move {
                let signal = signals.next().await;
                eprintln!("tongdai: second {signal}, exiting without draining");
                std::process::exit(130);
            });
        }
    };

    let result = server::run(config, store, health, trunk_status, shutdown).await;

    announce.abort();
    watch.abort();
    let _ = stop_http.send(());
    match tokio::time::timeout(HTTP_STOP_GRACE, http_task).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::warn!("HTTP endpoint stopped with an error: {e}"),
        Ok(Err(e)) => tracing::warn!("HTTP endpoint task failed: {e}"),
        Err(_) => tracing::warn!("HTTP endpoint did not stop within {HTTP_STOP_GRACE:?}"),
    }
    if result.is_ok() {
        tracing::info!("stopped");
    }
    result
}

/// Tells the control plane this node took drain request `seq` (what `tongdai ctl node
/// drain` waits for). Retried for a few seconds; the drain goes on either way.
async fn accept_drain(client: &ControlPlaneClient, node: &str, seq: u64) {
    let command = || tongdai_control_plane::model::Command::AcceptDrain {
        node: node.to_owned(),
        seq,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout(Duration::from_secs(2), client.propose_one(command())).await {
            Ok(Ok((Ok(_), _))) => return,
            Ok(Ok((Err(e), _))) => {
                tracing::warn!(seq, "drain request not acknowledged: {e}");
                return;
            }
            Ok(Err(e)) => tracing::debug!(seq, "drain acknowledgement not committed: {e}"),
            Err(_) => tracing::debug!(seq, "drain acknowledgement not committed within 2 s"),
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                seq,
                "could not acknowledge the drain request; draining anyway"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The calls part of the `tongdai up` banner: what the demo tenant can dial.
fn up_banner_calls(carrier: SocketAddr) -> String {
    let d = tongdai_node::replica::DEMO;
    let mut out = String::new();
    let _ = writeln!(out, "\nCalls (demo tenant):");
    let _ = writeln!(
        out,
        "  {}      toll-free number -> hunt group `{}` (ring all: {})",
        d.toll_free, d.hunt_group, d.hunt_members
    );
    let _ = writeln!(
        out,
        "  <ext>         another extension, e.g. 1002: an internal call (never leaves the node)"
    );
    let _ = writeln!(
        out,
        "  0912345678    any outside number: leaves by trunk `{}` to the test carrier at {carrier},",
        d.trunk
    );
    let _ = writeln!(
        out,
        "                which answers and echoes your audio back (caller ID {})",
        d.did
    );
    out
}

/// The control-plane part of the `tongdai up` banner.
fn up_banner_control_plane(
    replicas: &[tongdai_node::replica::RunningReplica],
    data_dir: &str,
) -> String {
    let mut out = String::new();
    let Some(first) = replicas.first() else {
        return out;
    };
    let _ = writeln!(
        out,
        "\nControl plane ({} replica{}):",
        replicas.len(),
        if replicas.len() == 1 { "" } else { "s" }
    );
    for r in replicas {
        let _ = writeln!(
            out,
            "  replica {}  API http://{}  QUIC {}",
            r.replica.id(),
            r.api_addr,
            r.quic_addr
        );
    }
    let token_file = Path::new(data_dir).join("operator.token");
    let token = if token_file.exists() {
        format!("TONGDAI_TOKEN_FILE={}", token_file.display())
    } else {
        "TONGDAI_TOKEN=<replica.operator_token>".to_owned()
    };
    let _ = writeln!(
        out,
        "  Admin      {token} tongdai ctl --api http://{} cluster status",
        first.api_addr
    );
    out
}

/// SIGINT and SIGTERM (Ctrl-C only, off Unix).
#[derive(Debug)]
struct ShutdownSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(ShutdownSignals {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(ShutdownSignals {})
        }
    }

    /// Waits for the next signal and returns its name.
    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => "SIGINT",
                _ = self.terminate.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            // If Ctrl-C cannot be watched there is nothing to wait for; never resolve.
            match tokio::signal::ctrl_c().await {
                Ok(()) => "Ctrl-C",
                Err(_) => std::future::pending().await,
            }
        }
    }
}

fn sip_addresses(config: &Config) -> String {
    let mut parts = Vec::new();
    if let Some(udp) = config.sip.listen_udp {
        parts.push(format!("udp {udp}"));
    }
    if let Some(tcp) = config.sip.listen_tcp {
        parts.push(format!("tcp {tcp}"));
    }
    parts.join(", ")
}

/// More extensions than this with derivable passwords are summarized, not listed.
const MAX_LISTED_EXTENSIONS: usize = 20;

/// What `tongdai up` prints once the node is ready: where to point a softphone and with which
/// credentials.
fn up_banner(config: &Config, tenant: &DemoTenant, http_addr: SocketAddr) -> String {
    let mut out = String::new();
    let version = env!("CARGO_PKG_VERSION");
    let _ = writeln!(
        out,
        "\ntongdai {version} is up (node {})\n",
        config.node.name
    );
    let _ = writeln!(out, "  SIP        {}", sip_addresses(config));
    let _ = writeln!(
        out,
        "  HTTP       http://{http_addr}/metrics  http://{http_addr}/healthz"
    );
    let _ = writeln!(out, "  Domain     {}", tenant.realm);
    let _ = writeln!(
        out,
        "  Realm      {}  (digest authentication)",
        config.registrar.realm
    );

    let random = config
        .demo
        .as_ref()
        .is_some_and(|demo| demo.passwords_are_random());
    let width = tenant
        .extensions
        .iter()
        .map(|u| u.extension.len())
        .max()
        .unwrap_or(0)
        .max("Extension".len());
    let _ = writeln!(out, "\n  {:<width$}  Password", "Extension");
    let listed = if random || tenant.extensions.len() <= MAX_LISTED_EXTENSIONS {
        tenant.extensions.len()
    } else {
        MAX_LISTED_EXTENSIONS / 2
    };
    for user in &tenant.extensions[..listed] {
        let _ = writeln!(out, "  {:<width$}  {}", user.extension, user.password);
    }
    if listed < tenant.extensions.len() {
        let _ = writeln!(
            out,
            "  ... {} more, up to {} (password = prefix + extension)",
            tenant.extensions.len() - listed,
            tenant
                .extensions
                .last()
                .map_or("", |u| u.extension.as_str())
        );
    }

    let server = config
        .sip
        .listen_udp
        .or(config.sip.listen_tcp)
        .map(|addr| {
            if addr.ip().is_unspecified() {
                format!("<this machine's IP>:{}", addr.port())
            } else {
                addr.to_string()
            }
        })
        .unwrap_or_default();
    let transports = match (config.sip.listen_udp, config.sip.listen_tcp) {
        (Some(_), Some(_)) => "UDP or TCP",
        (Some(_), None) => "UDP",
        _ => "TCP",
    };
    let example = tenant
        .extensions
        .first()
        .map_or("1001", |u| u.extension.as_str());
    let _ = writeln!(
        out,
        "\nSoftphone settings (Linphone, MicroSIP, Zoiper, baresip, ...):"
    );
    let _ = writeln!(
        out,
        "  Username / auth user   the extension, e.g. {example}"
    );
    let _ = writeln!(out, "  Password               from the table above");
    let _ = writeln!(out, "  Domain                 {}", tenant.realm);
    let _ = writeln!(out, "  Proxy / server         {server}");
    let _ = writeln!(out, "  Transport              {transports}");
    let _ = writeln!(
        out,
        "  Identity               sip:{example}@{}",
        tenant.realm
    );
    if config.registrar.algorithms.len() > 1 {
        let _ = writeln!(
            out,
            "  Digest                 SHA-256 and MD5 challenges; baresip 1.0 (Debian 12) gives up\n\
             \x20                        on the SHA-256 one: for it set TONGDAI_REGISTRAR_ALGORITHMS=MD5"
        );
    }
    if random {
        let _ = writeln!(
            out,
            "\nPasswords are random on every start; set TONGDAI_DEMO_PASSWORD_PREFIX=<prefix> \
             for fixed ones (<prefix><extension>)."
        );
    }
    let _ = writeln!(out, "Press Ctrl-C to stop.");
    out
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("tongdai").chain(args.iter().copied()))
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn node_requires_a_config_file() {
        // TONGDAI_CONFIG could supply it; the test environment does not set it.
        if std::env::var_os("TONGDAI_CONFIG").is_none() {
            let err = parse(&["node"]).expect_err("missing --config");
            assert_eq!(err.exit_code(), 2);
        }
        let cli = parse(&["node", "--config", "/etc/tongdai/node.toml"]).expect("valid");
        assert!(
            matches!(cli.command, Command::Node { config } if config == Path::new("/etc/tongdai/node.toml"))
        );
    }

    #[test]
    fn up_and_config_check_parse() {
        assert!(matches!(
            parse(&["up"]).expect("valid").command,
            Command::Up { .. }
        ));
        let cli = parse(&["config", "check", "-c", "x.toml"]).expect("valid");
        assert!(matches!(
            cli.command,
            Command::Config { command: ConfigCommand::Check { config: Some(path) } } if path == Path::new("x.toml")
        ));
        assert_eq!(parse(&["bogus"]).expect_err("unknown").exit_code(), 2);
        assert_eq!(parse(&["--version"]).expect_err("version").exit_code(), 0);
    }

    #[test]
    fn up_banner_lists_extensions_and_softphone_settings() {
        let config = Config::load(
            None,
            &[
                ("TONGDAI_DEMO_PASSWORD_PREFIX".to_owned(), "pw".to_owned()),
                (
                    "TONGDAI_SIP_LISTEN_UDP".to_owned(),
                    "0.0.0.0:5060".to_owned(),
                ),
                ("TONGDAI_SIP_LISTEN_TCP".to_owned(), "off".to_owned()),
            ],
        )
        .expect("valid")
        .config
        .with_demo();
        let tenant = config.demo_tenant().expect("demo");
        let banner = up_banner(&config, &tenant, SocketAddr::from(([127, 0, 0, 1], 9060)));
        assert!(banner.contains("SIP        udp 0.0.0.0:5060\n"), "{banner}");
        assert!(banner.contains("http://127.0.0.1:9060/metrics"), "{banner}");
        assert!(banner.contains("1001       pw1001"), "{banner}");
        assert!(banner.contains("1010       pw1010"), "{banner}");
        assert!(
            banner.contains("Proxy / server         <this machine's IP>:5060"),
            "{banner}"
        );
        assert!(banner.contains("Transport              UDP\n"), "{banner}");
        assert!(
            banner.contains("Identity               sip:1001@tongdai"),
            "{banner}"
        );
        assert!(!banner.contains("random"), "{banner}");
    }

    #[test]
    fn up_banner_shows_random_passwords_and_how_to_fix_them() {
        let config = Config::default().with_demo();
        let tenant = config.demo_tenant().expect("demo");
        let banner = up_banner(&config, &tenant, SocketAddr::from(([127, 0, 0, 1], 9060)));
        for user in &tenant.extensions {
            assert!(banner.contains(&user.password), "{banner}");
        }
        assert!(banner.contains("TONGDAI_DEMO_PASSWORD_PREFIX"), "{banner}");
        assert!(
            banner.contains("Transport              UDP or TCP"),
            "{banner}"
        );
    }

    #[test]
    fn many_derivable_extensions_are_summarized() {
        let config = Config::load(
            None,
            &[
                ("TONGDAI_DEMO_PASSWORD_PREFIX".to_owned(), "pw".to_owned()),
                ("TONGDAI_DEMO_COUNT".to_owned(), "1000".to_owned()),
            ],
        )
        .expect("valid")
        .config;
        let tenant = config.demo_tenant().expect("demo");
        let banner = up_banner(&config, &tenant, SocketAddr::from(([127, 0, 0, 1], 9060)));
        assert!(banner.contains("... 990 more, up to 2000"), "{banner}");
        assert!(banner.lines().count() < 40, "{banner}");
    }
}
