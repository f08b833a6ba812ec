//! The ACD's timers, advanced only by [`Command::AcdTick`] with the leader's clock.

use super::*;
use crate::model::State;
use crate::model::error::CommandError;
use crate::model::id::Id;
use crate::model::load::LOAD_REPORT_TTL_MS;
use crate::model::queue::Queue;

impl State {
    /// The timers at `now_ms` (the leader's clock, never later than the entry's): wrap-ups
    /// that ended, offers that rang out, callers past their maximum wait or overflow wait,
    /// tiers that opened. Returns whether anything changed.
    pub(crate) fn acd_tick(&mut self, now_ms: u64, entry_time: u64) -> Result<bool, CommandError> {
        if now_ms > entry_time {
            return Err(CommandError::TickInFuture {
                now_ms,
                entry_time_ms: entry_time,
            });
        }
        let mut changed = false;
        for rt in self.acd.agents.values_mut() {
            if let AgentActivity::WrapUp { until_ms } = rt.activity
                && until_ms <= now_ms
            {
                rt.activity = AgentActivity::Idle;
                rt.idle_since_ms = until_ms;
                changed = true;
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
                if rang_out(&queue, offer, now_ms) {
                    changed = true;
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
            if let Some(exit) = exit_due(&queue, &e, now_ms) {
                changed = true;
                let rt = self.queue_rt(&e.tenant, &e.queue);
                rt.order.remove(&(MAX_PRIORITY - e.priority, e.seq));
                match exit {
                    QueueExit::Timeout => rt.stats.timed_out += 1,
                    QueueExit::Overflow(_) => rt.stats.overflowed += 1,
                }
                self.acd.touch_entry(&e.tenant, &e.call_id);
                if let Some(stored) = self
                    .acd
                    .entries
                    .get_mut(&(e.tenant.clone(), e.call_id.clone()))
                {
                    stored.exit = Some(exit);
                }
            }
        }
        // Each tenant with queue activity once (the keys are per queue).
        let tenants: std::collections::BTreeSet<Id> =
            self.acd.queues.keys().map(|(t, _)| t.clone()).collect();
        for tenant in tenants {
            changed |= self.dispatch_tenant(&tenant, now_ms);
        }
        Ok(changed)
    }

    /// Whether an [`Command::AcdTick`] at `now` would change anything: a wrap-up over, an
    /// offer rung out, a caller at their maximum or overflow wait, or a caller who could be
    /// offered now (a tier opened). The leader proposes a tick only then.
    pub fn acd_due(&self, now: u64) -> bool {
        let wrap_up_over =
            self.acd.agents.values().any(
                |rt| matches!(rt.activity, AgentActivity::WrapUp { until_ms } if until_ms <= now),
            );
        if wrap_up_over {
            return true;
        }
        // Per queue, the lowest penalty among its free members (none free: `None`): a
        // caller could be offered when that tier is open to them. Found once per queue, so
        // this costs members + callers (it runs every sweep on the leader).
        let mut lowest_free: BTreeMap<(&Id, &Id), Option<u8>> = BTreeMap::new();
        self.acd.entries.values().any(|e| {
            let Some(queue) = self.queue(&e.tenant, &e.queue) else {
                return false;
            };
            match &e.offer {
                Some(offer) => rang_out(queue, offer, now),
                None if e.exit.is_some() => false,
                None => {
                    let lowest = *lowest_free
                        .entry((&e.tenant, &e.queue))
                        .or_insert_with(|| self.free_members(queue).iter().map(|(p, _)| *p).min());
                    exit_due(queue, e, now).is_some()
                        || lowest.is_some_and(|p| {
                            u64::from(p) <= super::dispatch::open_tier(queue, e, now)
                        })
                }
            }
        })
    }
}

/// Whether `offer` rang the queue's `ring_secs` by `now`.
fn rang_out(queue: &Queue, offer: &Offer, now: u64) -> bool {
    offer.at_ms + u64::from(queue.ring_secs) * 1000 <= now
}

/// Where a waiting caller goes at `now`, if their wait is over: the overflow after its
/// wait, else away at the queue's maximum wait.
fn exit_due(queue: &Queue, e: &QueueEntry, now: u64) -> Option<QueueExit> {
    let waited = now.saturating_sub(e.joined_at_ms);
    let secs = |s: u32| u64::from(s) * 1000;
    match &queue.overflow {
        Some(o) if o.after_wait_secs > 0 && waited >= secs(o.after_wait_secs) => {
            Some(QueueExit::Overflow(o.destination.clone()))
        }
        _ if waited >= secs(queue.max_wait_secs) => Some(QueueExit::Timeout),
        _ => None,
    }
}

impl State {
    /// Nodes that hold queue callers or agents' queue calls but have not shown a sign of
    /// life for [`LOAD_REPORT_TTL_MS`] at `now` (the leader's clock): a node with calls
    /// reports its load every second, so its last report, or the newest of its callers'
    /// arrivals and its agents' answers, is when it was last alive. The leader proposes
    /// [`Command::QueueNodeGone`] for each.
    pub fn gone_nodes(&self, now: u64) -> Vec<String> {
        let mut last_seen: BTreeMap<&str, u64> = BTreeMap::new();
        for e in self.acd.entries.values() {
            let at = last_seen.entry(e.node.as_str()).or_default();
            *at = (*at).max(e.joined_at_ms);
        }
        for rt in self.acd.agents.values() {
            if let AgentActivity::OnCall { node, since_ms, .. } = &rt.activity {
                let at = last_seen.entry(node.as_str()).or_default();
                *at = (*at).max(*since_ms);
            }
        }
        last_seen
            .into_iter()
            .filter(|(node, at)| {
                let report = self.load_report(node).map_or(0, |l| l.time_ms);
                (*at).max(report).saturating_add(LOAD_REPORT_TTL_MS) < now
            })
            .map(|(node, _)| node.to_owned())
            .collect()
    }
}
