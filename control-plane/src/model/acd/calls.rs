//! The ACD commands about callers and agents: join, leave, offer results, end of call,
//! presence changes.

use super::*;
use crate::model::State;
use crate::model::command::Outcome;
use crate::model::error::{BoundedField, CommandError, TextField};
use crate::model::id::{Id, check_text};
use crate::model::integrity::unknown_queue;
use crate::model::load::MAX_NODE_NAME_LEN;
use crate::model::queue::{AgentState, Queue, check_range};
use crate::model::registration::MAX_CALL_ID_LEN;

impl State {
    pub fn acd(&self) -> &Acd {
        &self.acd
    }

    /// What the ACD changed since the last call (see [`Acd::take_touched`]).
    pub fn take_acd_touched(&mut self) -> Touched {
        self.acd.take_touched()
    }

    /// A caller joins a queue: [`Outcome::QueueJoined`] with their position, or
    /// [`Outcome::QueueRedirected`] to the overflow destination when the queue is at its
    /// overflow length, full, or has nobody logged in and does not take callers then.
    pub(crate) fn queue_join(
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
        self.acd.touch_entry(tenant, call_id);
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
    pub(crate) fn queue_leave(
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
    pub(crate) fn queue_node_gone(&mut self, node: &str, now: u64) -> Result<bool, CommandError> {
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
        // Agents talking through the node: their calls ended with it.
        let talking: Vec<(Id, Id)> = self
            .acd
            .agents
            .iter()
            .filter(|(_, rt)| matches!(&rt.activity, AgentActivity::OnCall { node: n, .. } if n == node))
            .map(|(key, _)| key.clone())
            .collect();
        for (tenant, agent) in &talking {
            self.agent_call_ended(tenant, agent, 0, now)?;
        }
        Ok(!gone.is_empty() || !talking.is_empty())
    }

    /// `agent` answered offer `offer` of the caller: the caller leaves the queue, the
    /// agent is on the call, the others rung for it are free again.
    pub(crate) fn offer_answered(
        &mut self,
        tenant: &Id,
        call_id: &str,
        agent: &Id,
        offer: u64,
        now: u64,
    ) -> Result<(), CommandError> {
        self.check_offer(tenant, call_id, agent, offer)?;
        let entry = self.take_entry(tenant, call_id)?;
        let sl_ms = self
            .queue(tenant, &entry.queue)
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
            node: entry.node.clone(),
            since_ms: now,
        };
        rt.calls_answered += 1;
        self.dispatch_tenant(tenant, now);
        Ok(())
    }

    /// `agent` did not take offer `offer`: they are free again (paused when the queue
    /// says so for a no-answer) and the caller waits on at their place.
    pub(crate) fn offer_failed(
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
    pub(crate) fn agent_call_ended(
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
        agent_rt.busy_ms += talk + wrap_ms;
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

    /// Keeps the ACD in step with an agent's presence: created with the agent; logging
    /// out resets their call count; becoming available makes them idle from now.
    pub(crate) fn agent_presence_changed(
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
        rt.presence(new == AgentState::Available, now);
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

    pub(crate) fn check_offer(
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
    pub(crate) fn fail_offer(
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
        self.acd.touched.entries.insert(key.clone());
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
        if pause {
            rt.presence(false, now);
        }
        if pause && let Some(a) = self.agents.get_mut(&(tenant.clone(), agent.clone())) {
            a.state = AgentState::Paused {
                reason: NO_ANSWER_PAUSE.into(),
            };
            self.acd
                .touched
                .agents
                .insert((tenant.clone(), agent.clone()));
        }
    }

    /// Removes a caller from the queue, freeing the agents ringing for them.
    pub(crate) fn take_entry(
        &mut self,
        tenant: &Id,
        call_id: &str,
    ) -> Result<QueueEntry, CommandError> {
        let entry = self
            .acd
            .entries
            .remove(&(tenant.clone(), call_id.to_owned()))
            .ok_or_else(|| CommandError::NotQueued {
                tenant: tenant.clone(),
                call_id: call_id.to_owned(),
            })?;
        self.acd.touch_entry(tenant, call_id);
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

    pub(crate) fn queue_rt(&mut self, tenant: &Id, queue: &Id) -> &mut QueueRuntime {
        self.acd
            .queues
            .entry((tenant.clone(), queue.clone()))
            .or_default()
    }

    pub(crate) fn agent_rt(&mut self, tenant: &Id, agent: &Id, now: u64) -> &mut AgentRuntime {
        self.acd
            .agents
            .entry((tenant.clone(), agent.clone()))
            .or_insert(AgentRuntime {
                activity: AgentActivity::Idle,
                idle_since_ms: now,
                calls_answered: 0,
                busy_ms: 0,
                staffed_ms: 0,
                available_since_ms: None,
            })
    }
}
