//! Dispatch: offering waiting callers to eligible agents.

use super::*;
use crate::model::State;
use crate::model::id::Id;
use crate::model::queue::{AgentState, Queue};

impl State {
    /// Offers waiting callers of every queue of `tenant` to eligible agents, queue by
    /// queue in id order, callers in service order. Returns whether any offer was made.
    pub(crate) fn dispatch_tenant(&mut self, tenant: &Id, now: u64) -> bool {
        let queues: Vec<Queue> = self.queues(tenant).cloned().collect();
        let mut offered = false;
        for queue in queues {
            offered |= self.dispatch(&queue, now);
        }
        offered
    }

    fn dispatch(&mut self, queue: &Queue, now: u64) -> bool {
        let tenant = &queue.tenant;
        let Some(rt) = self.acd.queue_runtime(tenant, &queue.id) else {
            return false;
        };
        let mut offered = false;
        // The members free now, found once: each caller takes from them in turn, so a
        // dispatch costs members + callers, not members x callers (a long queue with every
        // agent busy is the peak-hour case).
        let mut free = self.free_members(queue);
        if free.is_empty() {
            return false;
        }
        let waiting: Vec<String> = rt.order.values().cloned().collect();
        for call_id in waiting {
            if free.is_empty() {
                break;
            }
            let Some(entry) = self.acd.entry(tenant, &call_id) else {
                continue;
            };
            if entry.offer.is_some() {
                continue;
            }
            let tier = open_tier(queue, entry, now);
            let mut candidates: Vec<strategy::Candidate> = free
                .iter()
                .filter(|(penalty, _)| u64::from(*penalty) <= tier)
                .map(|(_, c)| c.clone())
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
            free.retain(|(_, c)| !agents.contains(&c.extension));
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
            self.acd.touch_entry(tenant, &call_id);
            if let Some(e) = self.acd.entries.get_mut(&(tenant.clone(), call_id)) {
                e.offer = Some(Offer {
                    seq: offer,
                    agents,
                    at_ms: now,
                });
            }
            offered = true;
        }
        offered
    }

    /// The queue's members who could take a call now (presence available, idle), with
    /// their penalty, in member order.
    pub(crate) fn free_members(&self, queue: &Queue) -> Vec<(u8, strategy::Candidate)> {
        let tenant = &queue.tenant;
        queue
            .members
            .iter()
            .enumerate()
            .filter_map(|(index, m)| {
                let agent = self.agent(tenant, &m.extension)?;
                // An agent the ACD has not seen act yet is idle since forever.
                let rt = self.acd.agent_runtime(tenant, &m.extension);
                let idle = rt.is_none_or(|rt| rt.activity == AgentActivity::Idle);
                (agent.state == AgentState::Available && idle).then(|| {
                    let candidate = strategy::Candidate {
                        extension: m.extension.clone(),
                        index,
                        idle_since_ms: rt.map_or(0, |rt| rt.idle_since_ms),
                        calls_answered: rt.map_or(0, |rt| rt.calls_answered),
                        skill_level: queue
                            .skill
                            .as_ref()
                            .and_then(|s| agent.skills.get(s).copied())
                            .unwrap_or(0),
                    };
                    (m.penalty, candidate)
                })
            })
            .collect()
    }
}

/// The highest penalty tier open to `entry` at `now`: one more each `tier_widen_secs` of
/// waiting (all of them when the queue does not widen).
pub(crate) fn open_tier(queue: &Queue, entry: &QueueEntry, now: u64) -> u64 {
    let waited = now.saturating_sub(entry.joined_at_ms);
    match queue.tier_widen_secs {
        0 => u64::MAX,
        secs => waited / (u64::from(secs) * 1000),
    }
}
