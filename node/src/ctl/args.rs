//! The command line of `tongdai ctl`: one subcommand group per resource.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

/// `tongdai ctl`: administer a tongdai cluster through its REST API.
#[derive(Debug, Args)]
#[command(
    about = "Administer a cluster through its REST admin API",
    long_about = "Administer a cluster through its REST admin API.\n\n\
                  Any replica will do: followers redirect to the leader. Tables by default, \
                  the API's JSON with --json. Exit codes: 0 success, 1 the API refused or could \
                  not be reached (its message is printed), 2 bad usage."
)]
pub struct CtlArgs {
    /// The admin API of any replica.
    #[arg(
        long,
        global = true,
        env = "TONGDAI_API",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL"
    )]
    pub api: String,
    /// Bearer token: the operator's or a tenant's.
    #[arg(long, global = true, env = "TONGDAI_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the token (used when --token is not given).
    #[arg(long, global = true, env = "TONGDAI_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Print the API's JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// The tenant, for tenant-scoped commands.
    #[arg(short, long, global = true, env = "TONGDAI_TENANT")]
    pub tenant: Option<String>,
    #[command(subcommand)]
    pub command: Resource,
}

#[derive(Debug, Subcommand)]
pub enum Resource {
    /// Tenants and their quotas.
    #[command(subcommand)]
    Tenant(TenantCmd),
    /// Numbers (DIDs) of a tenant and where they route.
    #[command(subcommand)]
    Number(NumberCmd),
    /// Extensions (phones) of a tenant.
    #[command(subcommand)]
    Extension(ExtensionCmd),
    /// Hunt groups of a tenant.
    #[command(subcommand)]
    HuntGroup(HuntGroupCmd),
    /// ACD queues of a tenant.
    #[command(subcommand)]
    Queue(QueueCmd),
    /// Agents of a tenant.
    #[command(subcommand)]
    Agent(AgentCmd),
    /// Carrier trunks of a tenant.
    #[command(subcommand)]
    Trunk(TrunkCmd),
    /// API tokens of a tenant (operator only).
    #[command(subcommand)]
    Token(TokenCmd),
    /// Live registrations.
    #[command(subcommand)]
    Registration(RegistrationCmd),
    /// The control plane's Raft group.
    #[command(subcommand)]
    Cluster(ClusterCmd),
    /// SIP nodes: drain one.
    #[command(subcommand)]
    Node(super::nodes::NodeCmd),
    /// Call detail records of a tenant.
    #[command(subcommand)]
    Cdr(super::records::CdrCmd),
    /// Call recordings of a tenant.
    #[command(subcommand)]
    Recording(super::records::RecordingCmd),
}

#[derive(Debug, Subcommand)]
pub enum TenantCmd {
    List,
    Get {
        id: String,
    },
    /// Creates a tenant (operator only).
    Create {
        id: String,
        #[arg(long)]
        name: String,
        #[command(flatten)]
        quotas: QuotaArgs,
        #[command(flatten)]
        calls: CallArgs,
    },
    /// Changes the given fields, keeps the others.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        quotas: QuotaArgs,
        #[command(flatten)]
        calls: CallArgs,
        #[command(flatten)]
        clear: CallClearArgs,
    },
    Delete {
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct QuotaArgs {
    /// Concurrent calls at most (create default: 100).
    #[arg(long)]
    pub max_calls: Option<u32>,
    /// Call attempts per second at most (create default: 10).
    #[arg(long)]
    pub max_call_rate: Option<u32>,
    /// Live registrations at most (create default: 100).
    #[arg(long)]
    pub max_registrations: Option<u32>,
}

// A tenant's call settings. (Not a doc comment: clap would take it for the about of
// the commands that flatten it.)
#[derive(Debug, Args)]
pub struct CallArgs {
    /// Codecs allowed, in order of preference, comma-separated (default:
    /// pcmu,pcma,telephone_event).
    #[arg(long, value_enum, value_delimiter = ',', num_args = 1..)]
    pub codecs: Option<Vec<CodecArg>>,
    /// Pass other codecs through when both sides offer them.
    #[arg(long)]
    pub allow_other_codecs: bool,
    /// Whether calls are recorded (default: on_demand).
    #[arg(long, value_enum)]
    pub recording: Option<RecordingArg>,
    /// The trunk outbound calls leave by.
    #[arg(long, value_name = "TRUNK")]
    pub outbound_trunk: Option<String>,
    /// Caller ID of outbound calls: one of the tenant's geographic numbers (1800 and
    /// 1900 numbers are inbound only).
    #[arg(long, value_name = "DIGITS")]
    pub caller_id: Option<String>,
}

// Clearing call settings on update.
#[derive(Debug, Args)]
pub struct CallClearArgs {
    /// Stop passing other codecs through.
    #[arg(long, conflicts_with = "allow_other_codecs")]
    pub no_other_codecs: bool,
    /// No outbound trunk any more.
    #[arg(long, conflicts_with = "outbound_trunk")]
    pub no_outbound_trunk: bool,
    /// No caller ID any more.
    #[arg(long, conflicts_with = "caller_id")]
    pub no_caller_id: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CodecArg {
    Pcmu,
    Pcma,
    #[value(name = "telephone_event", alias = "telephone-event")]
    TelephoneEvent,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RecordingArg {
    Always,
    Never,
    #[value(name = "on_demand", alias = "on-demand")]
    OnDemand,
}

#[derive(Debug, Subcommand)]
pub enum NumberCmd {
    List,
    Get {
        digits: String,
    },
    /// Allocates a number (operator only); the kind follows from the digits.
    Create {
        digits: String,
        /// Where calls go: extension:ID, hunt-group:ID, queue:ID, ivr:ID, external:NUMBER.
        #[arg(long, value_parser = destination)]
        dest: Value,
        /// Tariff band, for 1900 numbers.
        #[arg(long)]
        tariff_band: Option<String>,
        /// Record calls to this number so, whatever the tenant's policy.
        #[arg(long, value_enum)]
        recording: Option<RecordingArg>,
    },
    Update {
        digits: String,
        #[arg(long, value_parser = destination)]
        dest: Option<Value>,
        #[arg(long)]
        tariff_band: Option<String>,
        #[arg(long, value_enum)]
        recording: Option<RecordingArg>,
        /// Follow the tenant's recording policy again.
        #[arg(long, conflicts_with = "recording")]
        tenant_recording: bool,
    },
    Delete {
        digits: String,
    },
}

// Credentials of an extension: a password or both HA1s. (Not a doc comment: clap would
// take it for the about of the commands that flatten it.)
#[derive(Debug, Args)]
pub struct CredentialArgs {
    /// SIP password (8-128 characters); only its HA1s are stored.
    #[arg(long, conflicts_with_all = ["password_stdin", "ha1_md5", "ha1_sha256"])]
    pub password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long, conflicts_with_all = ["ha1_md5", "ha1_sha256"])]
    pub password_stdin: bool,
    /// Precomputed MD5(ext:realm:password); the realm is the tenant id.
    #[arg(long, requires = "ha1_sha256")]
    pub ha1_md5: Option<String>,
    /// Precomputed SHA-256(ext:realm:password).
    #[arg(long, requires = "ha1_md5")]
    pub ha1_sha256: Option<String>,
}

#[derive(Debug, Args)]
pub struct ForwardArgs {
    /// Forward to this mobile number (with --forward-when).
    #[arg(long, requires = "forward_when")]
    pub forward: Option<String>,
    /// When to forward, comma-separated.
    #[arg(long, value_delimiter = ',', requires = "forward")]
    pub forward_when: Vec<ForwardWhen>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ForwardWhen {
    Unregistered,
    NoAnswer,
    Busy,
    Always,
}

#[derive(Debug, Subcommand)]
pub enum ExtensionCmd {
    List,
    Get {
        ext: String,
    },
    /// Creates an extension; needs --password, --password-stdin or both HA1s.
    Create {
        ext: String,
        /// Display name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        credentials: CredentialArgs,
        #[command(flatten)]
        forward: ForwardArgs,
    },
    /// Changes the given fields; credentials stay unless new ones are given.
    Update {
        ext: String,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        credentials: CredentialArgs,
        #[command(flatten)]
        forward: ForwardArgs,
        /// Stop forwarding to a mobile.
        #[arg(long, conflicts_with = "forward")]
        no_forward: bool,
    },
    Delete {
        ext: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RingStrategy {
    RingAll,
    Sequential,
}

#[derive(Debug, Subcommand)]
pub enum HuntGroupCmd {
    List,
    Get {
        id: String,
    },
    Create {
        id: String,
        /// Extensions in hunting order, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        members: Vec<String>,
        #[arg(long, value_enum, default_value = "sequential")]
        strategy: RingStrategy,
        #[arg(long, default_value_t = 20)]
        ring_secs: u32,
        /// Where unanswered calls go: extension:ID, hunt-group:ID, queue:ID, ivr:ID,
        /// external:NUMBER.
        #[arg(long, value_parser = destination)]
        no_answer: Value,
    },
    Update {
        id: String,
        #[arg(long, value_delimiter = ',')]
        members: Option<Vec<String>>,
        #[arg(long, value_enum)]
        strategy: Option<RingStrategy>,
        #[arg(long)]
        ring_secs: Option<u32>,
        #[arg(long, value_parser = destination)]
        no_answer: Option<Value>,
    },
    Delete {
        id: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum QueueStrategy {
    RingAll,
    LongestIdle,
    LeastCalls,
    RoundRobin,
    TopDown,
    Random,
    SkillsBased,
}

/// Queue settings beside name, strategy, max wait and length; unset ones keep their
/// value (update) or the API's default (create).
#[derive(Debug, Args)]
pub struct QueueArgs {
    /// A member agent as EXT or EXT:PENALTY (0-9); repeat in member order. Replaces the
    /// member list.
    #[arg(long = "member", value_parser = queue_member)]
    pub members: Vec<Value>,
    /// Remove every member.
    #[arg(long, conflicts_with = "members")]
    pub no_members: bool,
    /// Seconds one offer rings (5-300).
    #[arg(long)]
    pub ring_secs: Option<u32>,
    /// After-call work in seconds (0-3600).
    #[arg(long)]
    pub wrap_up_secs: Option<u32>,
    /// Whether callers join while no member is logged in.
    #[arg(long)]
    pub join_empty: Option<bool>,
    /// Each this many seconds of waiting opens the next penalty tier (0: all at once).
    #[arg(long)]
    pub tier_widen_secs: Option<u32>,
    /// Pause an agent who lets an offer ring out.
    #[arg(long)]
    pub auto_pause_no_answer: Option<bool>,
    /// T of the service level in seconds.
    #[arg(long)]
    pub service_level_secs: Option<u32>,
    /// The skill skills-based ranks agents by.
    #[arg(long)]
    pub skill: Option<String>,
    /// Overflow destination as KIND:VALUE (e.g. queue:backup, external:0281234567).
    #[arg(long, value_parser = destination)]
    pub overflow: Option<Value>,
    /// Callers arriving while this many wait overflow (0 = never).
    #[arg(long, requires = "overflow", default_value_t = 0)]
    pub overflow_at_len: u32,
    /// Callers who waited this long overflow (0 = never).
    #[arg(long, requires = "overflow", default_value_t = 0)]
    pub overflow_after_secs: u32,
    /// Remove the overflow.
    #[arg(long, conflicts_with = "overflow")]
    pub no_overflow: bool,
    /// A VIP caller as NUMBER=PRIORITY (1-9, higher served first); repeat for more.
    /// Replaces the VIP list.
    #[arg(long = "vip", value_parser = vip_caller)]
    pub vip_callers: Vec<(String, u8)>,
    /// Remove every VIP caller.
    #[arg(long, conflicts_with = "vip_callers")]
    pub no_vip: bool,
    /// The key (0-9, * or #) a waiting caller presses to be called back.
    #[arg(long)]
    pub callback_digit: Option<char>,
    /// Turn callbacks off.
    #[arg(long, conflicts_with = "callback_digit")]
    pub no_callback: bool,
    /// Whether waiting callers hear their position and expected wait.
    #[arg(long)]
    pub announce: Option<bool>,
    /// Repeat the announcement every this many seconds (0: at entry only; 15-3600).
    #[arg(long)]
    pub announce_every_secs: Option<u32>,
    /// The announcements' voice: en or vi.
    #[arg(long, value_parser = ["en", "vi"])]
    pub announce_language: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum QueueCmd {
    List,
    Get {
        id: String,
    },
    Create {
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_enum, default_value = "longest-idle")]
        strategy: QueueStrategy,
        #[arg(long, default_value_t = 300)]
        max_wait_secs: u32,
        #[arg(long, default_value_t = 50)]
        max_len: u32,
        #[command(flatten)]
        settings: QueueArgs,
    },
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, value_enum)]
        strategy: Option<QueueStrategy>,
        #[arg(long)]
        max_wait_secs: Option<u32>,
        #[arg(long)]
        max_len: Option<u32>,
        #[command(flatten)]
        settings: QueueArgs,
    },
    Delete {
        id: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AgentState {
    LoggedOut,
    Available,
    Paused,
}

#[derive(Debug, Subcommand)]
pub enum AgentCmd {
    List,
    Get {
        extension: String,
    },
    Create {
        extension: String,
        #[arg(long, value_enum, default_value = "logged-out")]
        state: AgentState,
        /// Why, with --state paused.
        #[arg(long)]
        pause_reason: Option<String>,
        /// A skill and its level 0-100, e.g. --skill english=80; repeatable.
        #[arg(long = "skill", value_parser = skill)]
        skills: Vec<(String, u8)>,
    },
    /// Changes the given fields; --skill replaces all skills.
    Update {
        extension: String,
        #[arg(long, value_enum)]
        state: Option<AgentState>,
        #[arg(long)]
        pause_reason: Option<String>,
        #[arg(long = "skill", value_parser = skill)]
        skills: Vec<(String, u8)>,
        /// Remove every skill.
        #[arg(long, conflicts_with = "skills")]
        no_skills: bool,
    },
    Delete {
        extension: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TransportArg {
    Udp,
    Tcp,
    Tls,
}

// A trunk's outbound registration. (Not a doc comment, as above.)
#[derive(Debug, Args)]
pub struct RegistrationArgs {
    /// Register with the carrier as this user (with --register-domain and a password).
    #[arg(long, value_name = "USER")]
    pub register_user: Option<String>,
    /// The registrar's domain, e.g. sip.carrier.example.
    #[arg(long, value_name = "DOMAIN")]
    pub register_domain: Option<String>,
    /// The registration password (stored for the digest answer, never shown).
    #[arg(
        long,
        value_name = "PASSWORD",
        conflicts_with = "register_password_stdin"
    )]
    pub register_password: Option<String>,
    /// Read the registration password from the first line of standard input.
    #[arg(long)]
    pub register_password_stdin: bool,
    /// Registration expiry, 60-3600 seconds (default 600).
    #[arg(long, value_name = "SECS")]
    pub register_expires: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub enum TrunkCmd {
    List,
    Get {
        id: String,
    },
    /// Creates a trunk; --trust is for the operator only.
    Create {
        id: String,
        /// Where calls to the carrier go: IP:port, [IPv6]:port or host:port.
        #[arg(long)]
        address: String,
        #[arg(long, value_enum, default_value = "udp")]
        transport: TransportArg,
        /// Sources trusted as this trunk's (IP, IP:port or CIDR), comma-separated.
        #[arg(long, value_delimiter = ',', value_name = "SOURCES")]
        trust: Vec<String>,
        /// Calls at once through the trunk; 0 disables it.
        #[arg(long, default_value_t = 100)]
        max_calls: u32,
        /// Trunk tried when this one answers 5xx or not at all.
        #[arg(long, value_name = "TRUNK")]
        failover: Option<String>,
        #[command(flatten)]
        registration: RegistrationArgs,
    },
    /// Changes the given fields; --trust replaces the trusted sources.
    Update {
        id: String,
        #[arg(long)]
        address: Option<String>,
        #[arg(long, value_enum)]
        transport: Option<TransportArg>,
        #[arg(long, value_delimiter = ',', value_name = "SOURCES")]
        trust: Vec<String>,
        /// Trust no source any more.
        #[arg(long, conflicts_with = "trust")]
        no_trust: bool,
        #[arg(long)]
        max_calls: Option<u32>,
        #[arg(long, value_name = "TRUNK")]
        failover: Option<String>,
        /// No failover trunk any more.
        #[arg(long, conflicts_with = "failover")]
        no_failover: bool,
        #[command(flatten)]
        registration: RegistrationArgs,
        /// Stop registering with the carrier.
        #[arg(long, conflicts_with_all = ["register_user", "register_domain", "register_password", "register_password_stdin", "register_expires"])]
        no_registration: bool,
    },
    Delete {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Creates a token and prints it, once.
    Create {
        id: String,
    },
    List,
    Revoke {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RegistrationCmd {
    /// Every tenant's (operator), or one tenant's with --tenant.
    List,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCmd {
    /// Leader, term, log indexes and members with their lag.
    Status,
    /// Adds a replica as a learner; returns once it caught up.
    AddLearner {
        id: u64,
        /// host:port of its Raft endpoint.
        #[arg(long)]
        raft_addr: String,
        /// host:port of its admin API.
        #[arg(long)]
        api_addr: String,
    },
    /// Makes a learner a voter.
    Promote { id: u64 },
    /// Removes a voter or learner.
    Remove { id: u64 },
}

/// `kind:value` to the API's destination JSON.
pub fn destination(spec: &str) -> Result<Value, String> {
    let (kind, value) = spec
        .split_once(':')
        .filter(|(_, v)| !v.is_empty())
        .ok_or_else(|| format!("{spec:?}: expected KIND:VALUE, e.g. extension:1001"))?;
    Ok(match kind {
        "extension" => json!({"type": "extension", "id": value}),
        "hunt-group" | "hunt_group" => json!({"type": "hunt_group", "id": value}),
        "queue" => json!({"type": "queue", "id": value}),
        "ivr" => json!({"type": "ivr", "id": value}),
        "external" => json!({"type": "external", "number": value}),
        other => {
            return Err(format!(
                "{other:?}: the kind is extension, hunt-group, queue, ivr or external"
            ));
        }
    })
}

/// `name=level`.
fn skill(spec: &str) -> Result<(String, u8), String> {
    let (name, level) = spec
        .split_once('=')
        .ok_or_else(|| format!("{spec:?}: expected NAME=LEVEL, e.g. english=80"))?;
    let level = level
        .parse()
        .map_err(|_| format!("{level:?}: the level is a number 0-100"))?;
    Ok((name.to_owned(), level))
}

/// `NUMBER=PRIORITY`.
fn vip_caller(spec: &str) -> Result<(String, u8), String> {
    let (number, priority) = spec
        .split_once('=')
        .ok_or_else(|| format!("{spec:?}: expected NUMBER=PRIORITY, e.g. 0909123456=5"))?;
    let priority = priority
        .parse()
        .map_err(|_| format!("{priority:?}: the priority is a number 1-9"))?;
    Ok((number.to_owned(), priority))
}

/// `EXT` or `EXT:PENALTY`.
fn queue_member(spec: &str) -> Result<Value, String> {
    let (ext, penalty) = match spec.split_once(':') {
        Some((ext, p)) => (
            ext,
            p.parse::<u8>()
                .map_err(|_| format!("{p:?}: the penalty is a number 0-9"))?,
        ),
        None => (spec, 0),
    };
    if ext.is_empty() {
        return Err(format!(
            "{spec:?}: expected EXT or EXT:PENALTY, e.g. 1001:1"
        ));
    }
    Ok(json!({"extension": ext, "penalty": penalty}))
}
