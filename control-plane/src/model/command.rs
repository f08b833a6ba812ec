//! What the Raft log carries: one [`Entry`] per proposal, stamped with the leader's
//! clock so every replica applies it at the same time.

use serde::{Deserialize, Serialize};

use super::extension::Extension;
use super::hunt_group::HuntGroup;
use super::id::Id;
use super::load::TenantLoad;
use super::number::Number;
use super::queue::{Agent, Queue};
use super::registration::{Binding, RegisterRequest};
use super::tenant::Tenant;
use super::token::ApiToken;
use super::trunk::Trunk;

/// One log entry for the state machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Milliseconds since the Unix epoch, stamped by the leader when it proposed the
    /// entry. Replicas never read their own clock while applying.
    pub time_ms: u64,
    pub command: Command,
}

/// A change to the state. `Create*` refuses an existing id, `Update*` an unknown one;
/// both carry the whole entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    CreateTenant(Tenant),
    UpdateTenant(Tenant),
    /// Refused while the tenant still owns anything but API tokens, which go with it
    /// (a tenant re-created under the same id must not inherit them).
    DeleteTenant {
        tenant: Id,
    },

    CreateNumber(Number),
    /// Same tenant only: a number never moves between tenants by update.
    UpdateNumber(Number),
    /// Only by the owning tenant; refused while the tenant presents it as caller ID.
    DeleteNumber {
        tenant: Id,
        digits: String,
    },

    CreateExtension(Extension),
    UpdateExtension(Extension),
    /// Refused while a number, hunt group or agent uses it; drops its bindings.
    DeleteExtension {
        tenant: Id,
        ext: Id,
    },

    CreateHuntGroup(HuntGroup),
    UpdateHuntGroup(HuntGroup),
    DeleteHuntGroup {
        tenant: Id,
        id: Id,
    },

    CreateQueue(Queue),
    UpdateQueue(Queue),
    DeleteQueue {
        tenant: Id,
        id: Id,
    },

    CreateAgent(Agent),
    UpdateAgent(Agent),
    DeleteAgent {
        tenant: Id,
        extension: Id,
    },

    /// Refused when the id exists in the tenant or the hash is any token's already.
    CreateApiToken(ApiToken),
    DeleteApiToken {
        tenant: Id,
        id: Id,
    },

    /// A REGISTER with contacts (refresh, add, or remove with expires 0).
    Register(RegisterRequest),
    /// `Contact: *`, `Expires: 0`: remove every binding of the extension.
    Unregister {
        tenant: Id,
        extension: Id,
        call_id: String,
        cseq: u32,
    },
    /// Removes every binding with `expires_at_ms <= now_ms`. Proposed by the leader;
    /// `now_ms` may not be later than the entry's own time.
    SweepExpired {
        now_ms: u64,
    },

    /// Refused when a trusted source is any other trunk's already (in any tenant), or
    /// the failover trunk is unknown in the tenant or leads back to this one.
    /// Boxed: a trunk is the largest entity, and every command would pay its size.
    CreateTrunk(Box<Trunk>),
    UpdateTrunk(Box<Trunk>),
    /// Refused while the tenant's `calls.outbound_trunk` or another trunk's
    /// `failover` names it.
    DeleteTrunk {
        tenant: Id,
        id: Id,
    },

    /// A request to the node holding the call (see [`super::CallControl`]). Refused when
    /// it would record and the tenant's recording policy is `never`.
    ControlCall {
        tenant: Id,
        call_id: String,
        action: super::CallAction,
    },

    /// A node's calls per tenant now; replaces its previous report (no tenants: removes
    /// it). Proposed by each node about once a second while it has calls. Every
    /// report also drops the reports older than [`super::LOAD_REPORT_TTL_MS`] (entry
    /// time). Refused: a bad node name, more than [`super::MAX_TENANTS_PER_REPORT`]
    /// tenants, a tenant listed twice.
    ReportLoad {
        node: String,
        tenants: Vec<TenantLoad>,
    },

    /// Asks the node named `node` to drain (see [`super::NodeDrain`]); replaces an
    /// earlier request for it. Refused: a bad node name, too many recent requests.
    DrainNode {
        node: String,
    },
    /// Proposed by the node that took drain request `seq`. Refused when `node` has no
    /// request numbered `seq`; accepting twice changes nothing.
    AcceptDrain {
        node: String,
        seq: u64,
    },

    /// A caller enters a queue (see [`super::acd`]): [`Outcome::QueueJoined`], or
    /// [`Outcome::QueueRedirected`] to the queue's overflow. Refused: unknown queue, a
    /// Call-ID already queued, a full queue or one with nobody logged in (`join_empty`
    /// off) without an overflow, bad text or priority.
    /// Boxed: the largest ACD command, and every command would pay its size.
    QueueJoin(Box<super::QueueArrival>),
    /// Click-to-call: ring `agent`, then dial `number` ([`super::ClickToCall`]):
    /// [`Outcome::ClickToCallQueued`]. Refused: unknown extension, a number that is not
    /// a phone number.
    ClickToCall {
        tenant: Id,
        agent: Id,
        number: String,
    },
    /// A node takes a click-to-call request; refused when another took it.
    ClaimClickToCall {
        seq: u64,
        node: String,
    },
    /// The caller left the queue. Refused when the call is not queued.
    QueueLeave {
        tenant: Id,
        call_id: String,
        reason: super::LeaveReason,
    },
    /// The callers queued through `node` are gone (the node died).
    QueueNodeGone {
        node: String,
    },
    /// `agent` answered offer `offer`. Refused when that offer is not theirs (any more):
    /// another agent answered first, or it rang out.
    OfferAnswered {
        tenant: Id,
        call_id: String,
        agent: Id,
        offer: u64,
    },
    /// `agent` did not take offer `offer`.
    OfferFailed {
        tenant: Id,
        call_id: String,
        agent: Id,
        offer: u64,
        failure: super::OfferFailure,
    },
    /// The agent's queue call ended (`hold_ms` of it on hold): wrap-up starts.
    AgentCallEnded {
        tenant: Id,
        agent: Id,
        hold_ms: u64,
    },
    /// The ACD's timers at `now_ms` (proposed by the leader; not later than the entry).
    AcdTick {
        now_ms: u64,
    },
}

/// What a successful command produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The change was made.
    Done,
    /// The extension's live bindings after a `Register` or `Unregister` (what the
    /// REGISTER's 200 OK lists).
    Bindings(Vec<Binding>),
    /// How many bindings a sweep removed.
    Swept { removed: usize },
    /// A load report was stored; the other nodes whose reports it expired.
    LoadReported { expired: Vec<String> },
    /// The caller is queued at `position` (1-based; 0 = already being offered), with
    /// the expected wait when it can be estimated (see `State::expected_wait_secs`).
    QueueJoined {
        position: u32,
        expected_wait_secs: Option<u32>,
    },
    /// The caller did not join: the queue sends them to its overflow destination.
    QueueRedirected { destination: super::Destination },
    /// A click-to-call request was recorded under this number.
    ClickToCallQueued { seq: u64 },
}
