//! Why the state machine refused a command. Every variant names the exact failure and
//! the entity involved, so the admin API can turn it into a 4xx naming the field.

use serde::{Deserialize, Serialize};

use super::calls::Codec;
use super::id::Id;
use super::number::NumberKind;

/// A free-text field, for [`CommandError::InvalidText`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TextField {
    TenantName,
    DisplayName,
    QueueName,
    PauseReason,
    CallId,
    Contact,
    ContactParams,
    Source,
    TrunkUsername,
    TrunkPassword,
    /// A node's name in a load report or a drain request.
    NodeName,
    /// A queued caller's number.
    Caller,
}

/// A tenant quota, for [`CommandError::QuotaOutOfBounds`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum QuotaKind {
    MaxConcurrentCalls,
    MaxCallAttemptsPerSec,
    MaxRegistrations,
}

/// A bounded numeric field other than quotas, for [`CommandError::OutOfBounds`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BoundedField {
    RingSecs,
    HuntGroupMembers,
    MaxWaitSecs,
    MaxQueueLen,
    SkillLevel,
    Skills,
    Expires,
    Q,
    TrustedSources,
    TrunkMaxCalls,
    TrunkRegistrationExpires,
    /// Tenants in one load report.
    ReportTenants,
    QueueMembers,
    Penalty,
    OfferRingSecs,
    WrapUpSecs,
    TierWidenSecs,
    ServiceLevelSecs,
    OverflowAtLen,
    OverflowAfterWaitSecs,
    QueuePriority,
    /// Entries of a queue's VIP list, and their priorities.
    VipCallers,
    AnnounceEverySecs,
}

/// HA1 digest algorithm, for [`CommandError::InvalidHa1`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ha1Algorithm {
    Md5,
    Sha256,
}

/// Something that refers to an extension, hunt group or queue and so prevents its
/// deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reference {
    /// A number routes to it.
    NumberDestination(String),
    /// A hunt group rings it.
    HuntGroupMember(Id),
    /// A hunt group sends unanswered calls to it.
    HuntGroupNoAnswer(Id),
    /// An agent logs in on it.
    Agent(Id),
    /// The tenant's outbound calls leave by it (`calls.outbound_trunk`).
    OutboundTrunk,
    /// This trunk fails over to it.
    TrunkFailover(Id),
    /// The tenant presents it as caller ID (`calls.caller_id`).
    CallerId,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum CommandError {
    #[error(
        "invalid id {value:?}: use 1-64 characters of a-z, 0-9, '-', '_', '.', starting with a letter or digit"
    )]
    InvalidId { value: String },
    #[error("{field:?} must be 1-{max_len} bytes without control characters")]
    InvalidText { field: TextField, max_len: usize },

    #[error("unknown tenant {0}")]
    UnknownTenant(Id),
    #[error("tenant {0} already exists")]
    TenantExists(Id),
    #[error("quota {quota:?} = {value} is over the limit {max}")]
    QuotaOutOfBounds {
        quota: QuotaKind,
        value: u32,
        max: u32,
    },
    #[error(
        "tenant {tenant} still has {numbers} numbers, {extensions} extensions, {hunt_groups} hunt groups, {queues} queues, {agents} agents and {trunks} trunks: delete them first"
    )]
    TenantNotEmpty {
        tenant: Id,
        numbers: usize,
        extensions: usize,
        hunt_groups: usize,
        queues: usize,
        agents: usize,
        trunks: usize,
    },

    #[error("the codec list is empty: allow at least one codec")]
    NoCodecs,
    #[error("codec {0:?} is listed twice")]
    DuplicateCodec(Codec),
    #[error("{0:?} is not a number: the caller ID is the digits of one of the tenant's numbers")]
    InvalidCallerId(String),
    #[error("caller ID {number} is not a number of tenant {tenant}")]
    UnknownCallerId { tenant: Id, number: String },
    #[error(
        "number {number} is {kind:?}: 1800 and 1900 numbers are inbound only and cannot be presented as caller ID; use a geographic number"
    )]
    CallerIdInboundOnly { number: String, kind: NumberKind },
    #[error("tenant {0}'s recording policy is `never`: calls of this tenant are not recorded")]
    RecordingNever(Id),
    #[error("number {number} is still used by {used_by:?}")]
    NumberInUse {
        number: String,
        used_by: Vec<Reference>,
    },

    #[error("{number:?} is not a valid {kind:?} number: {}", kind.rule())]
    InvalidNumber { number: String, kind: NumberKind },
    #[error(
        "{0:?} is not a valid external number: digits with an optional leading '+', 3-15 digits"
    )]
    InvalidExternalNumber(String),
    #[error("VIP caller {0:?} is not a phone number (an optional + and 3-15 digits)")]
    InvalidVipCaller(String),
    #[error("callback digit {0:?} is not a phone key (0-9, * or #)")]
    InvalidCallbackDigit(char),
    #[error("no click-to-call request {0} (they expire after a minute)")]
    UnknownClickToCall(u64),
    #[error("click-to-call request {seq} was taken by node {node}")]
    ClickToCallTaken { seq: u64, node: String },
    #[error("number {0} already exists")]
    NumberExists(String),
    #[error("number {number} belongs to another tenant ({owner})")]
    NumberOwnedByOtherTenant { number: String, owner: Id },
    #[error("unknown number {0}")]
    UnknownNumber(String),
    #[error("number {0} is premium rate (1900) and needs a tariff band")]
    MissingTariffBand(String),
    #[error("number {number} is {kind:?}: only premium-rate (1900) numbers have a tariff band")]
    UnexpectedTariffBand { number: String, kind: NumberKind },

    #[error("unknown extension {extension} in tenant {tenant}")]
    UnknownExtension { tenant: Id, extension: Id },
    #[error("extension {extension} already exists in tenant {tenant}")]
    ExtensionExists { tenant: Id, extension: Id },
    #[error("HA1 {algorithm:?} must be {expected_len} lowercase hex digits")]
    InvalidHa1 {
        algorithm: Ha1Algorithm,
        expected_len: usize,
    },
    #[error("forward-to-mobile needs at least one condition")]
    NoForwardCondition,
    #[error("extension {extension} of tenant {tenant} is still used by {used_by:?}")]
    ExtensionInUse {
        tenant: Id,
        extension: Id,
        used_by: Vec<Reference>,
    },

    #[error("unknown hunt group {id} in tenant {tenant}")]
    UnknownHuntGroup { tenant: Id, id: Id },
    #[error("hunt group {id} already exists in tenant {tenant}")]
    HuntGroupExists { tenant: Id, id: Id },
    #[error("hunt group {0} has no members")]
    EmptyHuntGroup(Id),
    #[error("hunt group {group} lists member {member} twice")]
    DuplicateMember { group: Id, member: Id },
    #[error(
        "hunt group {0} sends unanswered calls back to itself (directly or through other hunt groups)"
    )]
    HuntGroupLoop(Id),
    #[error("hunt group {id} of tenant {tenant} is still used by {used_by:?}")]
    HuntGroupInUse {
        tenant: Id,
        id: Id,
        used_by: Vec<Reference>,
    },

    #[error("unknown queue {id} in tenant {tenant}")]
    UnknownQueue { tenant: Id, id: Id },
    #[error("queue {id} already exists in tenant {tenant}")]
    QueueExists { tenant: Id, id: Id },
    #[error("queue {id} of tenant {tenant} is still used by {used_by:?}")]
    QueueInUse {
        tenant: Id,
        id: Id,
        used_by: Vec<Reference>,
    },

    #[error("unknown trunk {id} in tenant {tenant}")]
    UnknownTrunk { tenant: Id, id: Id },
    #[error("trunk {id} already exists in tenant {tenant}")]
    TrunkExists { tenant: Id, id: Id },
    #[error("trunk address {value:?} is not valid: {reason}")]
    InvalidTrunkAddress { value: String, reason: String },
    #[error("trusted source {value:?} is not valid: {reason}")]
    InvalidTrustedSource {
        /// Its position in `trusted_sources`.
        index: usize,
        value: String,
        reason: String,
    },
    #[error(
        "trusted source {source_addr} is already trusted by trunk {trunk} of tenant {tenant}: a source may belong to one trunk only, or its calls' tenant would be ambiguous"
    )]
    TrustedSourceInUse {
        /// Its position in `trusted_sources`.
        index: usize,
        source_addr: String,
        tenant: Id,
        trunk: Id,
    },
    #[error(
        "{0:?} is not a valid registrar domain: a DNS name (sip.carrier.example) or an IPv4 address"
    )]
    InvalidTrunkDomain(String),
    #[error(
        "trunk {0} fails over to itself (directly or through other trunks): a call would be retried forever"
    )]
    TrunkFailoverLoop(Id),
    #[error("trunk {id} of tenant {tenant} is still used by {used_by:?}")]
    TrunkInUse {
        tenant: Id,
        id: Id,
        used_by: Vec<Reference>,
    },

    #[error("unknown agent on extension {extension} in tenant {tenant}")]
    UnknownAgent { tenant: Id, extension: Id },
    #[error("an agent on extension {extension} already exists in tenant {tenant}")]
    AgentExists { tenant: Id, extension: Id },

    #[error("unknown API token {id} in tenant {tenant}")]
    UnknownApiToken { tenant: Id, id: Id },
    #[error("API token {id} already exists in tenant {tenant}")]
    ApiTokenExists { tenant: Id, id: Id },
    #[error("API token hash must be 64 lowercase hex digits (SHA-256)")]
    InvalidApiTokenHash,
    #[error("another API token has the same hash")]
    ApiTokenHashInUse,

    #[error("{field:?} = {value} is outside {min}..={max}")]
    OutOfBounds {
        field: BoundedField,
        value: u64,
        min: u64,
        max: u64,
    },

    #[error("out-of-order REGISTER: Call-ID {call_id:?} already has CSeq >= {cseq}")]
    StaleCseq { call_id: String, cseq: u32 },
    #[error("too many contacts for extension {extension} (limit {limit})")]
    TooManyContacts { extension: Id, limit: usize },
    #[error("tenant {tenant} is at its registration quota ({limit})")]
    RegistrationQuotaExceeded { tenant: Id, limit: u32 },
    #[error("sweep time {now_ms} is later than the entry's time {entry_time_ms}")]
    SweepInFuture { now_ms: u64, entry_time_ms: u64 },

    #[error("the load report lists tenant {0} twice")]
    TenantReportedTwice(Id),
    #[error("{limit} nodes already report load: a new node's report is refused until one expires")]
    TooManyReportingNodes { limit: usize },

    #[error(
        "node {node} has no drain request numbered {seq} (a newer request replaced it, or it lapsed)"
    )]
    UnknownDrainRequest { node: String, seq: u64 },
    #[error("{limit} drain requests are pending or recent: wait a minute for old ones to lapse")]
    TooManyDrainRequests { limit: usize },

    #[error("agent {member} is listed twice in queue {queue}")]
    DuplicateQueueMember { queue: Id, member: Id },
    #[error("queue {queue} still has {waiting} callers: wait until they are served or gone")]
    QueueHasCallers { queue: Id, waiting: usize },
    #[error("queue {0} cannot overflow to itself")]
    QueueOverflowLoop(Id),
    #[error(
        "agent {extension} of tenant {tenant} still serves queues {queues:?}: remove it from them first"
    )]
    AgentInUse {
        tenant: Id,
        extension: Id,
        queues: Vec<Id>,
    },
    #[error("queue {queue} is full ({max_len} callers waiting)")]
    QueueFull { queue: Id, max_len: u32 },
    #[error("queue {0} has no agent logged in and does not take callers then")]
    QueueEmpty(Id),
    #[error("call {call_id} of tenant {tenant} is already in a queue")]
    AlreadyQueued { tenant: Id, call_id: String },
    #[error("call {call_id} of tenant {tenant} is not in a queue")]
    NotQueued { tenant: Id, call_id: String },
    #[error("call {call_id} has no offer numbered {offer} to agent {agent}")]
    UnknownOffer {
        call_id: String,
        agent: Id,
        offer: u64,
    },
    #[error("agent {extension} of tenant {tenant} is not on a queue call")]
    NotOnQueueCall { tenant: Id, extension: Id },
    #[error("ACD tick time {now_ms} is later than the entry's time {entry_time_ms}")]
    TickInFuture { now_ms: u64, entry_time_ms: u64 },
}
