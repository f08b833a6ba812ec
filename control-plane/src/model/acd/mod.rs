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

mod strategy;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::State;
use super::command::Outcome;
use super::error::{BoundedField, CommandError, TextField};
use super::id::{Id, check_text};
use super::integrity::unknown_queue;
use super::load::MAX_NODE_NAME_LEN;
use super::number::Destination;
use super::queue::{AgentState, Queue, check_range};
use super::registration::MAX_CALL_ID_LEN;

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
}

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
}

impl State {
    pub fn acd(&self) -> &Acd {
        &self.acd
    }

    /// A caller joins a queue: [`Outcome::QueueJoined`] with their position, or
    /// [`Outcome::QueueRedirected`] to the overflow destination when the queue is at its
    /// overflow length, full, or has nobody logged in and does not take callers then.
    pub(super) fn queue_join(
        &mut self,
        a: &QueueArrival,
        now: u64,
    ) -> Result<Outcome, CommandError> {
        let QueueArrival {
            tenant,
            queue: queue_id,
            call_id,
            node,
            caller,
            priority,
        } = a;
        let priority = *priority;
        check_text(TextField::CallId, call_id, MAX_CALL_ID_LEN)?;
        check_text(TextField::NodeName, node, MAX_NODE_NAME_LEN)?;
        if !caller.is_empty() {
            check_text(TextField::Caller, caller, MAX_CALLER_LEN)?;
        }
        check_range(
            BoundedField::QueuePriority,
            priority.into(),
            0,
            MAX_PRIORITY.into(),
        )?;
        let queue = self
            .queues
            .get(&(tenant.clone(), queue_id.clone()))
            .ok_or_else(|| unknown_queue(tenant, queue_id))?
            .clone();
        let key = (tenant.clone(), call_id.to_owned());
        if self.acd.entries.contains_key(&key) {
            return Err(CommandError::AlreadyQueued {
                tenant: tenant.clone(),
                call_id: call_id.to_owned(),
            });
        }
        let waiting = self
            .acd
            .queue_runtime(tenant, queue_id)
            .map_or(0, |rt| rt.order.len());
        let logged_in = queue.members.iter().any(|m| {
            self.agent(tenant, &m.extension)
                .is_some_and(|a| a.state != AgentState::LoggedOut)
        });
        let overflow = queue.overflow.as_ref().map(|o| o.destination.clone());
        let refusal = if !logged_in && !queue.join_empty {
            Some(CommandError::QueueEmpty(queue_id.clone()))
        } else if waiting >= queue.max_len as usize
            || queue
                .overflow
                .as_ref()
                .is_some_and(|o| o.at_len > 0 && waiting >= o.at_len as usize)
        {
            Some(CommandError::QueueFull {
                queue: queue_id.clone(),
                max_len: queue.max_len,
            })
        } else {
            None
        };
        if let Some(refusal) = refusal {
            let Some(destination) = overflow else {
                return Err(refusal);
            };
            self.queue_rt(tenant, queue_id).stats.overflowed += 1;
            return Ok(Outcome::QueueRedirected { destination });
        }
        self.acd.arrivals += 1;
        let seq = self.acd.arrivals;
        self.acd.entries.insert(
            key,
            QueueEntry {
                tenant: tenant.clone(),
                queue: queue_id.clone(),
                call_id: call_id.to_owned(),
                node: node.to_owned(),
                caller: caller.to_owned(),
                priority,
                seq,
                joined_at_ms: now,
                offer: None,
                declined: Vec::new(),
                exit: None,
            },
        );
        let rt = self.queue_rt(tenant, queue_id);
        rt.order
            .insert((MAX_PRIORITY - priority, seq), call_id.to_owned());
        rt.stats.joined += 1;
        self.dispatch_tenant(tenant, now);
        let position = self
            .acd
            .waiting(tenant, queue_id)
            .position(|e| e.seq == seq)
            .map_or(0, |i| i as u32 + 1);
        Ok(Outcome::QueueJoined {
            position,
            expected_wait_secs: self.expected_wait_secs(tenant, &queue, position),
        })
    }

    /// Expected wait of the caller at `position` (1-based; 0 = being offered): `position`
    /// callers are served `serving` at a time, each taking the recent handle time, so
    /// `ceil(position / serving) * recent handle time`, where `serving` counts members
    /// whose presence is available. `None` until the queue handled a call, or when
    /// nobody is available.
    pub fn expected_wait_secs(&self, tenant: &Id, queue: &Queue, position: u32) -> Option<u32> {
        if position == 0 {
            return Some(0);
        }
        let handle = self.acd.queue_runtime(tenant, &queue.id)?.recent_handle_ms;
        let serving = queue
            .members
            .iter()
            .filter(|m| {
                self.agent(tenant, &m.extension)
                    .is_some_and(|a| a.state == AgentState::Available)
            })
            .count() as u64;
        if handle == 0 || serving == 0 {
            return None;
        }
        let rounds = u64::from(position).div_ceil(serving);
        Some(u32::try_from(rounds * handle / 1000).unwrap_or(u32::MAX))
    }

    /// The caller left the queue (hung up, or was moved after its exit was set).
    pub(super) fn queue_leave(
        &mut self,
        tenant: &Id,
        call_id: &str,
        reason: LeaveReason,
        now: u64,
    ) -> Result<(), CommandError> {
        let entry = self.take_entry(tenant, call_id)?;
        if entry.exit.is_none() && reason == LeaveReason::Abandoned {
            self.queue_rt(tenant, &entry.queue).stats.abandoned += 1;
        }
        self.dispatch_tenant(tenant, now);
        Ok(())
    }

    /// The callers held by `node` are gone with it.
    pub(super) fn queue_node_gone(&mut self, node: &str, now: u64) -> Result<bool, CommandError> {
        check_text(TextField::NodeName, node, MAX_NODE_NAME_LEN)?;
        let gone: Vec<(Id, String)> = self
            .acd
            .entries
            .values()
            .filter(|e| e.node == node)
            .map(|e| (e.tenant.clone(), e.call_id.clone()))
            .collect();
        for (tenant, call_id) in &gone {
            self.queue_leave(tenant, call_id, LeaveReason::Abandoned, now)?;
        }
        Ok(!gone.is_empty())
    }

    /// `agent` answered offer `offer` of the caller: the caller leaves the queue, the
    /// agent is on the call, the others rung for it are free again.
    pub(super) fn offer_answered(
        &mut self,
        tenant: &Id,
        call_id: &str,
        agent: &Id,
        offer: u64,
        now: u64,
    ) -> Result<(), CommandError> {
        self.check_offer(tenant, call_id, agent, offer)?;
        let entry = self.take_entry(tenant, call_id)?;
        let queue = self
            .queues
            .get(&(tenant.clone(), entry.queue.clone()))
            .cloned();
        let sl_ms = queue
            .as_ref()
            .map_or(0, |q| u64::from(q.service_level_secs) * 1000);
        let wait = now.saturating_sub(entry.joined_at_ms);
        let stats = &mut self.queue_rt(tenant, &entry.queue).stats;
        stats.answered += 1;
        stats.answered_wait_ms += wait;
        if wait <= sl_ms {
            stats.answered_within_service_level += 1;
        }
        let rt = self.agent_rt(tenant, agent, now);
        rt.activity = AgentActivity::OnCall {
            queue: entry.queue.clone(),
            call_id: call_id.to_owned(),
            since_ms: now,
        };
        rt.calls_answered += 1;
        self.dispatch_tenant(tenant, now);
        Ok(())
    }

    /// `agent` did not take offer `offer`: they are free again (paused when the queue
    /// says so for a no-answer) and the caller waits on at their place.
    pub(super) fn offer_failed(
        &mut self,
        tenant: &Id,
        call_id: &str,
        agent: &Id,
        offer: u64,
        failure: OfferFailure,
        now: u64,
    ) -> Result<(), CommandError> {
        self.check_offer(tenant, call_id, agent, offer)?;
        self.fail_offer(tenant, call_id, agent, failure, now);
        self.dispatch_tenant(tenant, now);
        Ok(())
    }

    /// The agent's queue call ended: wrap-up for the queue's `wrap_up_secs`.
    pub(super) fn agent_call_ended(
        &mut self,
        tenant: &Id,
        agent: &Id,
        hold_ms: u64,
        now: u64,
    ) -> Result<(), CommandError> {
        let not_on_call = || CommandError::NotOnQueueCall {
            tenant: tenant.clone(),
            extension: agent.clone(),
        };
        let Some(AgentActivity::OnCall {
            queue, since_ms, ..
        }) = self
            .acd
            .agent_runtime(tenant, agent)
            .map(|rt| rt.activity.clone())
        else {
            return Err(not_on_call());
        };
        let wrap_ms = self
            .queues
            .get(&(tenant.clone(), queue.clone()))
            .map_or(0, |q| u64::from(q.wrap_up_secs) * 1000);
        let talk = now.saturating_sub(since_ms);
        let rt = self.queue_rt(tenant, &queue);
        rt.stats.handled += 1;
        rt.stats.talk_ms += talk;
        rt.stats.hold_ms += hold_ms.min(talk);
        rt.stats.wrap_up_ms += wrap_ms;
        let handle = talk + wrap_ms;
        rt.recent_handle_ms = if rt.recent_handle_ms == 0 {
            handle
        } else {
            (rt.recent_handle_ms * 4 + handle) / 5
        };
        let agent_rt = self.agent_rt(tenant, agent, now);
        if wrap_ms == 0 {
            agent_rt.activity = AgentActivity::Idle;
            agent_rt.idle_since_ms = now;
        } else {
            agent_rt.activity = AgentActivity::WrapUp {
                until_ms: now + wrap_ms,
            };
        }
        self.dispatch_tenant(tenant, now);
        Ok(())
    }

    /// The timers at `now_ms` (the leader's clock, never later than the entry's): wrap-ups
    /// that ended, offers that rang out, callers past their maximum wait or overflow wait,
    /// tiers that opened. Returns whether anything changed.
    pub(super) fn acd_tick(&mut self, now_ms: u64, entry_time: u64) -> Result<bool, CommandError> {
        if now_ms > entry_time {
            return Err(CommandError::TickInFuture {
                now_ms,
                entry_time_ms: entry_time,
            });
        }
        let before = self.acd.clone();
        for rt in self.acd.agents.values_mut() {
            if let AgentActivity::WrapUp { until_ms } = rt.activity
                && until_ms <= now_ms
            {
                rt.activity = AgentActivity::Idle;
                rt.idle_since_ms = until_ms;
            }
        }
        let entries: Vec<QueueEntry> = self.acd.entries.values().cloned().collect();
        for e in entries {
            let Some(queue) = self
                .queues
                .get(&(e.tenant.clone(), e.queue.clone()))
                .cloned()
            else {
                continue;
            };
            if let Some(offer) = &e.offer {
                if offer.at_ms + u64::from(queue.ring_secs) * 1000 <= now_ms {
                    for agent in &offer.agents {
                        self.fail_offer(
                            &e.tenant,
                            &e.call_id,
                            agent,
                            OfferFailure::NoAnswer,
                            now_ms,
                        );
                    }
                }
                continue;
            }
            if e.exit.is_some() {
                continue;
            }
            let waited = now_ms.saturating_sub(e.joined_at_ms);
            let exit = match &queue.overflow {
                Some(o)
                    if o.after_wait_secs > 0 && waited >= u64::from(o.after_wait_secs) * 1000 =>
                {
                    Some(QueueExit::Overflow(o.destination.clone()))
                }
                _ if waited >= u64::from(queue.max_wait_secs) * 1000 => Some(QueueExit::Timeout),
                _ => None,
            };
            if let Some(exit) = exit {
                let rt = self.queue_rt(&e.tenant, &e.queue);
                rt.order.remove(&(MAX_PRIORITY - e.priority, e.seq));
                match exit {
                    QueueExit::Timeout => rt.stats.timed_out += 1,
                    QueueExit::Overflow(_) => rt.stats.overflowed += 1,
                }
                if let Some(stored) = self
                    .acd
                    .entries
                    .get_mut(&(e.tenant.clone(), e.call_id.clone()))
                {
                    stored.exit = Some(exit);
                }
            }
        }
        let tenants: Vec<Id> = self.acd.queues.keys().map(|(t, _)| t.clone()).collect();
        for tenant in tenants {
            self.dispatch_tenant(&tenant, now_ms);
        }
        Ok(self.acd != before)
    }

    /// Keeps the ACD in step with an agent's presence: created with the agent; logging
    /// out resets their call count; becoming available makes them idle from now.
    pub(super) fn agent_presence_changed(
        &mut self,
        tenant: &Id,
        agent: &Id,
        old: Option<&AgentState>,
        now: u64,
    ) {
        let new = self.agent(tenant, agent).map(|a| a.state.clone());
        let key = (tenant.clone(), agent.clone());
        let Some(new) = new else {
            self.acd.agents.remove(&key);
            return;
        };
        let rt = self.agent_rt(tenant, agent, now);
        if new == AgentState::LoggedOut && old != Some(&AgentState::LoggedOut) {
            rt.calls_answered = 0;
        }
        if new == AgentState::Available
            && old != Some(&AgentState::Available)
            && rt.activity == AgentActivity::Idle
        {
            rt.idle_since_ms = now;
        }
        self.dispatch_tenant(tenant, now);
    }

    fn check_offer(
        &self,
        tenant: &Id,
        call_id: &str,
        agent: &Id,
        offer: u64,
    ) -> Result<(), CommandError> {
        let entry = self
            .acd
            .entry(tenant, call_id)
            .ok_or_else(|| CommandError::NotQueued {
                tenant: tenant.clone(),
                call_id: call_id.to_owned(),
            })?;
        match &entry.offer {
            Some(o) if o.seq == offer && o.agents.contains(agent) => Ok(()),
            _ => Err(CommandError::UnknownOffer {
                call_id: call_id.to_owned(),
                agent: agent.clone(),
                offer,
            }),
        }
    }

    /// Takes `agent` out of the caller's offer (after [`Self::check_offer`] or a ring
    /// timeout); the agent is free again, or paused for a no-answer when the queue says so.
    fn fail_offer(
        &mut self,
        tenant: &Id,
        call_id: &str,
        agent: &Id,
        failure: OfferFailure,
        now: u64,
    ) {
        let key = (tenant.clone(), call_id.to_owned());
        let Some(entry) = self.acd.entries.get_mut(&key) else {
            return;
        };
        if let Some(offer) = &mut entry.offer {
            offer.agents.retain(|a| a != agent);
            if offer.agents.is_empty() {
                entry.offer = None;
            }
        }
        if !entry.declined.contains(agent) {
            entry.declined.push(agent.clone());
        }
        let queue = entry.queue.clone();
        let pause = failure == OfferFailure::NoAnswer
            && self
                .queues
                .get(&(tenant.clone(), queue))
                .is_some_and(|q| q.auto_pause_no_answer);
        let rt = self.agent_rt(tenant, agent, now);
        rt.activity = AgentActivity::Idle;
        rt.idle_since_ms = now;
        if pause && let Some(a) = self.agents.get_mut(&(tenant.clone(), agent.clone())) {
            a.state = AgentState::Paused {
                reason: NO_ANSWER_PAUSE.into(),
            };
        }
    }

    /// Removes a caller from the queue, freeing the agents ringing for them.
    fn take_entry(&mut self, tenant: &Id, call_id: &str) -> Result<QueueEntry, CommandError> {
        let entry = self
            .acd
            .entries
            .remove(&(tenant.clone(), call_id.to_owned()))
            .ok_or_else(|| CommandError::NotQueued {
                tenant: tenant.clone(),
                call_id: call_id.to_owned(),
            })?;
        if let Some(rt) = self
            .acd
            .queues
            .get_mut(&(tenant.clone(), entry.queue.clone()))
        {
            rt.order.remove(&(MAX_PRIORITY - entry.priority, entry.seq));
        }
        for agent in entry.offer.iter().flat_map(|o| &o.agents) {
            if let Some(rt) = self.acd.agents.get_mut(&(tenant.clone(), agent.clone())) {
                rt.activity = AgentActivity::Idle;
            }
        }
        Ok(entry)
    }

    fn queue_rt(&mut self, tenant: &Id, queue: &Id) -> &mut QueueRuntime {
        self.acd
            .queues
            .entry((tenant.clone(), queue.clone()))
            .or_default()
    }

    fn agent_rt(&mut self, tenant: &Id, agent: &Id, now: u64) -> &mut AgentRuntime {
        self.acd
            .agents
            .entry((tenant.clone(), agent.clone()))
            .or_insert(AgentRuntime {
                activity: AgentActivity::Idle,
                idle_since_ms: now,
                calls_answered: 0,
            })
    }

    /// After a queue's configuration changed: its members may be new.
    pub(super) fn dispatch_queue_of(&mut self, tenant: &Id, now: u64) {
        self.dispatch_tenant(tenant, now);
    }

    /// Offers waiting callers of every queue of `tenant` to eligible agents, queue by
    /// queue in id order, callers in service order.
    fn dispatch_tenant(&mut self, tenant: &Id, now: u64) {
        let queues: Vec<Queue> = self.queues(tenant).cloned().collect();
        for queue in queues {
            self.dispatch(&queue, now);
        }
    }

    fn dispatch(&mut self, queue: &Queue, now: u64) {
        let tenant = &queue.tenant;
        let Some(rt) = self.acd.queue_runtime(tenant, &queue.id) else {
            return;
        };
        let waiting: Vec<String> = rt.order.values().cloned().collect();
        for call_id in waiting {
            let Some(entry) = self.acd.entry(tenant, &call_id) else {
                continue;
            };
            if entry.offer.is_some() {
                continue;
            }
            let waited = now.saturating_sub(entry.joined_at_ms);
            let open_tier = match queue.tier_widen_secs {
                0 => u64::MAX,
                secs => waited / (u64::from(secs) * 1000),
            };
            let mut candidates: Vec<strategy::Candidate> = queue
                .members
                .iter()
                .enumerate()
                .filter(|(_, m)| u64::from(m.penalty) <= open_tier)
                .filter_map(|(index, m)| {
                    let agent = self.agent(tenant, &m.extension)?;
                    let rt = self.acd.agent_runtime(tenant, &m.extension)?;
                    (agent.state == AgentState::Available && rt.activity == AgentActivity::Idle)
                        .then(|| strategy::Candidate {
                            extension: m.extension.clone(),
                            index,
                            idle_since_ms: rt.idle_since_ms,
                            calls_answered: rt.calls_answered,
                            skill_level: queue
                                .skill
                                .as_ref()
                                .and_then(|s| agent.skills.get(s).copied())
                                .unwrap_or(0),
                        })
                })
                .collect();
            if candidates.is_empty() {
                continue;
            }
            if candidates
                .iter()
                .any(|c| !entry.declined.contains(&c.extension))
            {
                candidates.retain(|c| !entry.declined.contains(&c.extension));
            }
            let seq = entry.seq;
            let last = self
                .acd
                .queue_runtime(tenant, &queue.id)
                .and_then(|rt| rt.last_offered);
            let agents = strategy::pick(
                queue.strategy,
                &candidates,
                last,
                queue.members.len(),
                seq ^ self.acd.offers.rotate_left(32),
            );
            self.acd.offers += 1;
            let offer = self.acd.offers;
            for agent in &agents {
                self.agent_rt(tenant, agent, now).activity = AgentActivity::Ringing {
                    call_id: call_id.clone(),
                    offer,
                };
            }
            let last_index = agents
                .last()
                .and_then(|a| queue.members.iter().position(|m| &m.extension == a));
            self.queue_rt(tenant, &queue.id).last_offered = last_index;
            if let Some(e) = self.acd.entries.get_mut(&(tenant.clone(), call_id)) {
                e.offer = Some(Offer {
                    seq: offer,
                    agents,
                    at_ms: now,
                });
            }
        }
    }
}
