//! The ACD: callers waiting in queues and the agents they are offered, decided inside the
//! state machine so a queue is one queue across the whole cluster and no two nodes can
//! offer one agent two calls.
//!
//! A node holding a caller proposes [`Command::QueueJoin`]; the entry gets a cluster-wide
//! arrival number, so callers are served by priority (higher first), then in arrival
//! order, whichever node they came through. After every command that can free an agent
//! or add a caller, the queues of the tenant are **dispatched**: each waiting caller, in
//! service order, is offered to the agent(s) the queue's strategy picks among its
//! eligible members (presence available, idle, penalty tier open). The node holding the
//! caller rings the agent and reports the result ([`Command::OfferAnswered`],
//! [`Command::OfferFailed`]); the end of the agent's call starts their wrap-up
//! ([`Command::AgentCallEnded`]). Timers (ring timeout, wrap-up end, maximum wait,
//! overflow after a wait, tiers opening) advance only through [`Command::AcdTick`], which
//! the leader proposes with its clock, so replicas never read their own.
//!
//! An agent's presence (`logged_out`, `available`, `paused`) is [`Agent::state`], set by
//! the agent or a supervisor; what they are doing (idle, ringing, on a queue call, in
//! wrap-up) is their [`AgentActivity`], set by the ACD alone.

mod calls;
mod dispatch;
mod kpi;
mod strategy;
mod timers;

pub use kpi::{AgentCounts, QueueKpis};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::id::Id;
use super::number::Destination;

pub const MAX_PRIORITY: u8 = 9;
pub const MAX_CALLER_LEN: usize = 64;
/// The reason an agent is paused with when they let an offer ring out.
pub const NO_ANSWER_PAUSE: &str = "no answer";

/// A caller in a queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntry {
    pub tenant: Id,
    pub queue: Id,
    /// The caller's (A-leg) Call-ID.
    pub call_id: String,
    /// The node holding the caller (it rings the agents and moves the call).
    pub node: String,
    /// The caller's number, for announcements and screen pops.
    pub caller: String,
    /// 0..=9, higher served first (VIP callers).
    pub priority: u8,
    /// Arrival order, cluster-wide.
    pub seq: u64,
    pub joined_at_ms: u64,
    /// The agents ringing for this caller now.
    pub offer: Option<Offer>,
    /// Agents who did not take this caller's offer: offered again only when nobody else
    /// is eligible.
    pub declined: Vec<Id>,
    /// Set when the queue gives up on the caller; the node moves the call (hangs up, or
    /// sends it to the overflow destination) and then proposes [`Command::QueueLeave`].
    pub exit: Option<QueueExit>,
}

/// An offer of a caller to one agent (or to several, for `RingAll`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// Cluster-wide number: results name the offer they answer.
    pub seq: u64,
    pub agents: Vec<Id>,
    pub at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueExit {
    /// The caller waited `max_wait_secs`.
    Timeout,
    /// The caller waited the overflow's `after_wait_secs`: go to the destination.
    Overflow(Destination),
}

/// What an agent is doing, as the ACD sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgentActivity {
    Idle,
    Ringing {
        call_id: String,
        offer: u64,
    },
    OnCall {
        queue: Id,
        call_id: String,
        /// The node holding the call (its calls are gone with it).
        node: String,
        since_ms: u64,
    },
    WrapUp {
        until_ms: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRuntime {
    pub activity: AgentActivity,
    /// Since when the agent has had nothing to do (longest-idle order).
    pub idle_since_ms: u64,
    /// Queue calls answered since they last logged in (least-calls order).
    pub calls_answered: u64,
    /// Time on queue calls and in their wrap-up, closed segments (a wrap-up is counted
    /// whole when it starts; [`AgentRuntime::busy_ms_at`] takes off what is still ahead).
    pub busy_ms: u64,
    /// Time with presence `available` (staffed), closed segments.
    pub staffed_ms: u64,
    /// Since when the presence is `available`, while it is.
    pub available_since_ms: Option<u64>,
}

impl AgentRuntime {
    /// Busy time up to `now`, the open call or wrap-up included.
    pub fn busy_ms_at(&self, now: u64) -> u64 {
        match self.activity {
            AgentActivity::OnCall { since_ms, .. } => self.busy_ms + now.saturating_sub(since_ms),
            AgentActivity::WrapUp { until_ms } => {
                self.busy_ms.saturating_sub(until_ms.saturating_sub(now))
            }
            _ => self.busy_ms,
        }
    }

    /// Staffed time up to `now`, the open segment included.
    pub fn staffed_ms_at(&self, now: u64) -> u64 {
        self.staffed_ms
            + self
                .available_since_ms
                .map_or(0, |since| now.saturating_sub(since))
    }

    /// Accounts a presence change for the staffed time.
    pub(crate) fn presence(&mut self, available: bool, now: u64) {
        match (self.available_since_ms, available) {
            (None, true) => self.available_since_ms = Some(now),
            (Some(since), false) => {
                self.staffed_ms += now.saturating_sub(since);
                self.available_since_ms = None;
            }
            _ => {}
        }
    }
}

/// Counters per queue, since the queue was created (the KPIs are computed from them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStats {
    pub joined: u64,
    pub answered: u64,
    pub answered_within_service_level: u64,
    pub abandoned: u64,
    pub timed_out: u64,
    pub overflowed: u64,
    /// Sum of the waits of answered callers (ASA = this / answered).
    pub answered_wait_ms: u64,
    /// Calls whose agent hung up (handled), and their talk, hold and wrap-up time.
    pub handled: u64,
    pub talk_ms: u64,
    pub hold_ms: u64,
    pub wrap_up_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRuntime {
    /// Waiting callers (not exited) in service order: (9 - priority, arrival) -> Call-ID.
    pub order: BTreeMap<(u8, u64), String>,
    /// Member index of the last agent offered a call (round-robin memory).
    pub last_offered: Option<usize>,
    pub stats: QueueStats,
    /// Recent handle time (talk + wrap-up), an exponential moving average with weight
    /// 1/5 for each new call; 0 until a call was handled.
    pub recent_handle_ms: u64,
}

/// A caller arriving at a queue ([`Command::QueueJoin`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueArrival {
    pub tenant: Id,
    pub queue: Id,
    /// The caller's (A-leg) Call-ID.
    pub call_id: String,
    /// The node holding the caller.
    pub node: String,
    /// The caller's number (may be empty).
    pub caller: String,
    /// 0..=9, higher served first.
    pub priority: u8,
}

/// How a caller left the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaveReason {
    /// The caller hung up while waiting.
    Abandoned,
    /// The node moved the call after the queue set its exit (timeout, overflow).
    Moved,
}

/// Why an offer failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OfferFailure {
    NoAnswer,
    Busy,
    Refused,
    Unreachable,
}

/// The ACD's part of the state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acd {
    /// By (tenant, Call-ID).
    entries: BTreeMap<(Id, String), QueueEntry>,
    /// By (tenant, queue); created with the queue's first caller.
    queues: BTreeMap<(Id, Id), QueueRuntime>,
    /// By (tenant, extension); created with the agent.
    agents: BTreeMap<(Id, Id), AgentRuntime>,
    arrivals: u64,
    offers: u64,
    /// What the commands applied since the last [`Acd::take_touched`] changed, for the
    /// watch stream (not part of the state).
    #[serde(skip)]
    touched: Touched,
}

/// Keys the ACD changed: queue entries (by tenant and Call-ID) and agents whose presence
/// it set (auto-pause). Transient bookkeeping beside the state: equal whatever it holds,
/// never serialized.
#[derive(Debug, Clone, Default)]
pub struct Touched {
    pub entries: std::collections::BTreeSet<(Id, String)>,
    pub agents: std::collections::BTreeSet<(Id, Id)>,
}

impl PartialEq for Touched {
    fn eq(&self, _: &Touched) -> bool {
        true
    }
}

impl Eq for Touched {}

impl Acd {
    pub fn entry(&self, tenant: &Id, call_id: &str) -> Option<&QueueEntry> {
        self.entries.get(&(tenant.clone(), call_id.to_owned()))
    }

    pub fn entries(&self) -> impl Iterator<Item = &QueueEntry> {
        self.entries.values()
    }

    /// The waiting callers of a queue in service order (exited ones excluded).
    pub fn waiting<'a>(&'a self, tenant: &Id, queue: &Id) -> impl Iterator<Item = &'a QueueEntry> {
        let tenant = tenant.clone();
        self.queues
            .get(&(tenant.clone(), queue.clone()))
            .into_iter()
            .flat_map(|rt| rt.order.values())
            .filter_map(move |call_id| self.entries.get(&(tenant.clone(), call_id.clone())))
    }

    pub fn queue_runtime(&self, tenant: &Id, queue: &Id) -> Option<&QueueRuntime> {
        self.queues.get(&(tenant.clone(), queue.clone()))
    }

    pub fn agent_runtime(&self, tenant: &Id, extension: &Id) -> Option<&AgentRuntime> {
        self.agents.get(&(tenant.clone(), extension.clone()))
    }

    pub fn agent_runtimes(&self) -> impl Iterator<Item = (&(Id, Id), &AgentRuntime)> {
        self.agents.iter()
    }

    /// What changed since the last call (queue entries, auto-paused agents).
    pub fn take_touched(&mut self) -> Touched {
        std::mem::take(&mut self.touched)
    }

    pub(crate) fn touch_entry(&mut self, tenant: &Id, call_id: &str) {
        self.touched
            .entries
            .insert((tenant.clone(), call_id.to_owned()));
    }
}
