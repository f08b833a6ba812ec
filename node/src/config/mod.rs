//! Node configuration: one TOML file per process, every key overridable by an environment
//! variable, and no file at all needed for `tongdai up`.
//!
//! # Sources and precedence
//! Built-in defaults, then the TOML file (if any), then environment variables named
//! `TONGDAI_<SECTION>_<KEY>` (e.g. `TONGDAI_SIP_LISTEN_UDP=0.0.0.0:5060`). The environment
//! is passed in as a slice rather than read here, so tests and embedders say exactly what it
//! holds (and nothing ever calls `std::env::set_var`).
//!
//! Environment values are text: integers in decimal, booleans as `true`/`false` (also
//! `1`/`0`, `yes`/`no`, `on`/`off`), socket addresses as `IP:port`, lists comma-separated
//! (`TONGDAI_REGISTRAR_ALGORITHMS=SHA-256,MD5`). Setting any `TONGDAI_DEMO_*` variable
//! enables the `[demo]` section.
//!
//! # Strictness
//! An unknown section or key in the file is an error (a typo must not silently fall back to a
//! default), and so is any value of the wrong type or out of range; every message names the
//! key as written (`sip.listen_udp`) or the environment variable that set it. An unknown
//! `TONGDAI_*` environment variable is only a [`ConfigWarning`]: orchestrators inject
//! variables we do not control (a Kubernetes Service called `tongdai` yields
//! `TONGDAI_SERVICE_HOST`, `TONGDAI_PORT_5060_UDP`, ... in every pod), and refusing to start
//! over those would make the env override unusable. The known Kubernetes patterns and
//! `TONGDAI_CONFIG` (the CLI's `--config`) are ignored without a warning.
//!
//! # Keys
//! ```toml
//! [node]
//! name = "<hostname>"            # this node's name in logs, metrics and the cluster
//! [sip]
//! listen_udp = "127.0.0.1:5060"  # "" or "off" disables the listener
//! listen_tcp = "127.0.0.1:5060"
//! max_message_size = 65535       # bytes; larger messages are rejected
//! udp_recv_buffer = 4194304      # SO_RCVBUF / SO_SNDBUF requested, bytes
//! udp_send_buffer = 4194304
//! udp_workers = <cores>          # UDP receive tasks (one SO_REUSEPORT socket each)
//! reuse_port = true
//! tcp_idle_timeout_secs = 300
//! max_tcp_connections = 10000
//! max_transactions = 500000   # held at once (RFC 3261 keeps each ~32 s over UDP); past it: 503
//! [registrar]
//! realm = "tongdai"              # digest realm in challenges
//! min_expires = 60               # shorter requests get 423 Interval Too Brief
//! max_expires = 3600
//! default_expires = 3600
//! nonce_lifetime_secs = 300
//! algorithms = ["SHA-256", "MD5"]  # challenges offered, in this order
//! [http]
//! listen = "127.0.0.1:9060"      # GET /metrics, /healthz, /livez
//! [log]
//! level = "info"                 # or directives, e.g. "info,tongdai_node::sip=debug"; RUST_LOG wins
//! format = "text"                # text | json
//! [media]
//! rtp_ports = "30000-39999"      # RTP/RTCP ports of the relay
//! bind = ""                      # IPv4 to bind media on; "" = the IP of sip.listen_udp
//! advertise = ""                 # IPv4 written in SDP (1:1 NAT); "" = bind
//! workers = 0                    # relay threads; 0 = one per core
//! rtp_timeout_secs = 60          # hang up after this much silence from both sides; 0 = never
//! spool_dir = "<replica.data_dir>/spool/recordings"  # recordings in progress; "off" = no recording
//! recordings_dir = "<replica.data_dir>/recordings"   # finished recordings (a local directory)
//! [calls]
//! min_session_expires = 90       # RFC 4028 Min-SE; shorter Session-Expires gets 422
//! drain_grace_secs = 300         # on SIGTERM: new calls get 503, live ones may last this long
//! [demo]                         # optional: a demo tenant's extensions
//! realm = "tongdai"
//! first_extension = 1001
//! count = 10
//! password_prefix = ""           # empty: random passwords; else prefix + extension number
//! [cdr]                          # call detail records: spool and store (see `records.rs`)
//! [records]                      # what the admin API serves: CDRs and recordings
//! ```

mod demo;
mod error;
mod keys;
mod load;
mod records;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use demo::{DemoTenant, DemoUser, PasswordSeed, RANDOM_PASSWORD_LEN};
pub use error::{ConfigError, ConfigWarning, Origin};
pub use records::{CdrConfig, RecordsConfig};

/// The whole configuration of one `tongdai node` process.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub node: NodeConfig,
    pub sip: SipConfig,
    pub registrar: RegistrarConfig,
    pub http: HttpConfig,
    pub log: LogConfig,
    pub control_plane: ControlPlaneConfig,
    pub replica: ReplicaConfig,
    pub media: MediaSection,
    pub calls: CallsConfig,
    pub cdr: CdrConfig,
    pub records: RecordsConfig,
    /// Present when the demo tenant should be provisioned (always under `tongdai up`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub demo: Option<DemoConfig>,
}

/// `[node]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// This node's name; defaults to the host name.
    pub name: String,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig { name: hostname() }
    }
}

/// `[sip]`: transports and their limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// UDP listen address; `None` when disabled (`"off"`).
    #[serde(with = "listen_addr")]
    pub listen_udp: Option<SocketAddr>,
    /// TCP listen address; `None` when disabled (`"off"`).
    #[serde(with = "listen_addr")]
    pub listen_tcp: Option<SocketAddr>,
    pub max_message_size: usize,
    pub udp_recv_buffer: usize,
    pub udp_send_buffer: usize,
    pub udp_workers: usize,
    pub reuse_port: bool,
    pub tcp_idle_timeout_secs: u64,
    pub max_tcp_connections: usize,
    /// Server and client transactions held at once; a non-INVITE one is kept 64*T1
    /// (32 s) over UDP after its answer, so this bounds sustained requests/s at about
    /// `max_transactions / 32`. Each costs about 1 KiB. Past it new requests get 503.
    pub max_transactions: usize,
}

impl Default for SipConfig {
    fn default() -> Self {
        let local = SocketAddr::from(([127, 0, 0, 1], 5060));
        SipConfig {
            listen_udp: Some(local),
            listen_tcp: Some(local),
            max_message_size: 65535,
            udp_recv_buffer: 4 << 20,
            udp_send_buffer: 4 << 20,
            udp_workers: std::thread::available_parallelism().map_or(1, usize::from),
            reuse_port: true,
            tcp_idle_timeout_secs: 300,
            max_tcp_connections: 10_000,
            max_transactions: 500_000,
        }
    }
}

impl SipConfig {
    pub fn tcp_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.tcp_idle_timeout_secs)
    }
}

/// `[registrar]`: REGISTER handling and digest challenges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrarConfig {
    pub realm: String,
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
    pub nonce_lifetime_secs: u64,
    /// Digest algorithms offered in challenges, one `WWW-Authenticate` each, in this order.
    pub algorithms: Vec<DigestAlgorithm>,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            realm: "tongdai".to_owned(),
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            nonce_lifetime_secs: 300,
            algorithms: vec![DigestAlgorithm::Sha256, DigestAlgorithm::Md5],
        }
    }
}

impl RegistrarConfig {
    pub fn nonce_lifetime(&self) -> Duration {
        Duration::from_secs(self.nonce_lifetime_secs)
    }
}

/// A digest authentication algorithm (RFC 7616 / RFC 8760 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DigestAlgorithm {
    #[serde(rename = "SHA-256")]
    Sha256,
    #[serde(rename = "SHA-512-256")]
    Sha512_256,
    #[serde(rename = "MD5")]
    Md5,
}

impl DigestAlgorithm {
    pub const ALL: [DigestAlgorithm; 3] = [
        DigestAlgorithm::Sha256,
        DigestAlgorithm::Sha512_256,
        DigestAlgorithm::Md5,
    ];

    /// The name as it appears in `algorithm=` parameters.
    pub fn as_str(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "SHA-256",
            DigestAlgorithm::Sha512_256 => "SHA-512-256",
            DigestAlgorithm::Md5 => "MD5",
        }
    }

    /// Parses a name, ignoring ASCII case (RFC 7616 tokens are case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(name))
    }
}

/// `[http]`: the operations endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address of the HTTP server for `/metrics` and `/healthz`; port 0 picks a free port.
    pub listen: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9060)),
        }
    }
}

/// `[media]`: the node's media relay (RTP anchored for every call).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaSection {
    /// RTP/RTCP port range, `first-last`.
    pub rtp_ports: String,
    /// IPv4 address media sockets bind; empty: the IP of `sip.listen_udp`.
    pub bind: String,
    /// IPv4 address written in SDP (1:1 NAT); empty: the bind address.
    pub advertise: String,
    /// Relay worker threads; 0 = one per core.
    pub workers: usize,
    /// Silence from both sides after which a call is hung up; 0 = never.
    pub rtp_timeout_secs: u64,
    /// Where recordings are written while in progress; `off` (or empty): recording off.
    /// Defaults under `replica.data_dir`.
    pub spool_dir: String,
    /// The recordings store (a local directory).
    pub recordings_dir: String,
}

impl Default for MediaSection {
    fn default() -> Self {
        MediaSection {
            rtp_ports: "30000-39999".to_owned(),
            bind: String::new(),
            advertise: String::new(),
            workers: 0,
            rtp_timeout_secs: 60,
            spool_dir: String::new(),
            recordings_dir: String::new(),
        }
    }
}

/// `[calls]`: the B2BUA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallsConfig {
    /// Shortest session interval accepted (RFC 4028 Min-SE); shorter requests get 422.
    pub min_session_expires: u32,
    /// On SIGTERM, how long live calls may go on before they are hung up.
    pub drain_grace_secs: u64,
}

impl Default for CallsConfig {
    fn default() -> Self {
        CallsConfig {
            min_session_expires: 90,
            drain_grace_secs: 300,
        }
    }
}

/// `[control_plane]`: how a node (and a replica) reaches the control plane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlPlaneConfig {
    /// QUIC addresses (`host:port`) of the replicas, comma-separated; any subset will
    /// do, the node finds the leader by itself. Required by `tongdai node`.
    pub replicas: String,
    /// Directory with `ca.pem` and this process's `<cert_name>.pem`/`.key`
    /// (`tongdai certs init | issue`).
    pub certs_dir: String,
    /// Which certificate in `certs_dir` this process presents; defaults to the node
    /// name (or `replica-<id>` for a replica).
    pub cert_name: String,
}

impl Default for ControlPlaneConfig {
    fn default() -> Self {
        ControlPlaneConfig {
            replicas: String::new(),
            certs_dir: "tongdai-certs".to_owned(),
            cert_name: String::new(),
        }
    }
}

impl ControlPlaneConfig {
    /// The replica addresses, trimmed, empty ones dropped.
    pub fn replica_addrs(&self) -> Vec<String> {
        self.replicas
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// `[replica]`: a control-plane replica (`tongdai control-plane`, `tongdai up`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicaConfig {
    /// This replica's Raft id, unique in the cluster.
    pub id: u64,
    /// QUIC listener for Raft and nodes.
    pub listen: SocketAddr,
    /// HTTP listener for the admin API (`/v1`, `/openapi.json`), `/metrics`, `/healthz`.
    pub api_listen: SocketAddr,
    /// Where the log, snapshots and the operator token live.
    pub data_dir: String,
    /// The members a brand-new cluster starts with, `id@quic_addr@api_addr`
    /// comma-separated; empty means this replica alone. Ignored once the data
    /// directory holds a cluster. The lowest id initializes the cluster.
    pub initial_members: String,
    /// The operator's API token; empty means generate one into
    /// `<data_dir>/operator.token` on first start.
    pub operator_token: String,
    /// Take a snapshot and purge the log before it every this many entries.
    pub snapshot_every: u64,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        ReplicaConfig {
            id: 1,
            listen: SocketAddr::from(([127, 0, 0, 1], 7100)),
            api_listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: "tongdai-data".to_owned(),
            initial_members: String::new(),
            operator_token: String::new(),
            snapshot_every: 20_000,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A level or `tracing-subscriber` filter directives; `RUST_LOG` overrides it.
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// `[demo]`: a generated demo tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoConfig {
    /// The SIP domain the demo extensions belong to.
    pub realm: String,
    pub first_extension: u32,
    pub count: u32,
    /// Empty: random passwords (printed at startup). Otherwise password = prefix + extension.
    pub password_prefix: String,
    /// Where random passwords come from; drawn once per config so they are stable.
    #[serde(skip)]
    pub password_seed: PasswordSeed,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            realm: "tongdai".to_owned(),
            first_extension: 1001,
            count: 10,
            password_prefix: String::new(),
            password_seed: PasswordSeed::default(),
        }
    }
}

impl DemoConfig {
    /// True when passwords are generated at random and must be shown to the user.
    pub fn passwords_are_random(&self) -> bool {
        self.password_prefix.is_empty()
    }
}

/// A validated configuration and the warnings collected while loading it. Warnings are
/// returned rather than logged because logging is set up from the config.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: Config,
    pub warnings: Vec<ConfigWarning>,
}

impl Config {
    /// Loads the config: defaults, then `path` (if given), then `TONGDAI_*` entries of `env`.
    /// Pass `std::env::vars()` (collected) in production and an explicit list in tests.
    pub fn load(
        path: Option<&Path>,
        env: &[(String, String)],
    ) -> Result<LoadedConfig, ConfigError> {
        match path {
            None => load::from_sources(None, env),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
                    path: path.to_owned(),
                    error,
                })?;
                load::from_sources(Some((&path.display().to_string(), &text)), env)
            }
        }
    }

    /// Like [`Config::load`] with the file's text given directly.
    pub fn from_toml_str(
        text: &str,
        env: &[(String, String)],
    ) -> Result<LoadedConfig, ConfigError> {
        load::from_sources(Some(("<string>", text)), env)
    }

    /// Checks a config built in code the same way a loaded one is checked.
    pub fn validate(&self) -> Result<(), ConfigError> {
        load::validate(self, &BTreeMap::new())
    }

    /// Enables the demo tenant with default settings unless it is configured already.
    pub fn with_demo(mut self) -> Self {
        if self.demo.is_none() {
            self.demo = Some(DemoConfig::default());
        }
        self
    }

    /// The demo tenant, if `[demo]` is enabled. Calling this again on the same config (or a
    /// clone) gives the same passwords.
    pub fn demo_tenant(&self) -> Option<DemoTenant> {
        self.demo.as_ref().map(demo::build)
    }

    /// The demo tenant's users; empty when `[demo]` is not enabled.
    pub fn demo_users(&self) -> Vec<DemoUser> {
        self.demo_tenant()
            .map(|tenant| tenant.extensions)
            .unwrap_or_default()
    }

    /// The effective configuration as TOML, every key spelled out.
    pub fn to_toml(&self) -> String {
        // Every field is a string, integer, bool or list of strings: serialization cannot fail.
        toml::to_string(self).expect("config types always serialize to TOML")
    }
}

/// The host name, for the default node name.
fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|name| name.trim().to_owned())
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| "tongdai".to_owned())
}

/// `Option<SocketAddr>` as a string, `"off"` for `None`.
mod listen_addr {
    use std::net::SocketAddr;

    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(addr: &Option<SocketAddr>, s: S) -> Result<S::Ok, S::Error> {
        match addr {
            Some(addr) => s.collect_str(addr),
            None => s.serialize_str("off"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
        let text = String::deserialize(d)?;
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        trimmed.parse().map(Some).map_err(|_| {
            D::Error::custom(format!(
                "{text:?} is not a socket address (expected IP:port or \"off\")"
            ))
        })
    }
}

#[cfg(test)]
mod tests;
