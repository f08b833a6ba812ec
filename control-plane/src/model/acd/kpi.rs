//! Live KPIs of a queue, computed from the state at a given time (read-only).

use serde::{Deserialize, Serialize};

use super::{AgentActivity, QueueStats};
use crate::model::State;
use crate::model::id::Id;
use crate::model::queue::AgentState;

/// Members of a queue by what they are doing. An agent counts once: presence first
/// (logged out, paused), then activity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentCounts {
    pub logged_out: u32,
    pub paused: u32,
    pub available: u32,
    pub ringing: u32,
    pub on_call: u32,
    pub wrap_up: u32,
}

/// A queue's KPIs at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueKpis {
    pub calls_waiting: u32,
    pub longest_wait_ms: u64,
    pub agents: AgentCounts,
    /// Answered within `service_level_secs` / answered; `None` before the first answer.
    pub service_level: Option<f64>,
    /// Average speed of answer: mean wait of answered callers.
    pub asa_ms: Option<u64>,
    /// Average handle time: (talk + wrap-up) / handled calls (hold is part of talk).
    pub aht_ms: Option<u64>,
    /// Abandoned / (answered + abandoned).
    pub abandon_rate: Option<f64>,
    /// The members' time on queue calls and wrap-up / their time with presence
    /// `available`, since the state began (an agent's time counts for every queue they
    /// serve).
    pub occupancy: Option<f64>,
    /// The counters the ratios come from.
    pub stats: QueueStats,
}

impl State {
    /// `None` for an unknown queue.
    pub fn queue_kpis(&self, tenant: &Id, queue: &Id, now: u64) -> Option<QueueKpis> {
        let q = self.queue(tenant, queue)?;
        let stats = self
            .acd
            .queue_runtime(tenant, queue)
            .map(|rt| rt.stats.clone())
            .unwrap_or_default();
        let mut calls_waiting = 0;
        let mut longest_wait_ms = 0;
        for e in self.acd.waiting(tenant, queue) {
            calls_waiting += 1;
            longest_wait_ms = longest_wait_ms.max(now.saturating_sub(e.joined_at_ms));
        }
        let mut agents = AgentCounts::default();
        let (mut busy, mut staffed) = (0u64, 0u64);
        for m in &q.members {
            if let Some(rt) = self.acd.agent_runtime(tenant, &m.extension) {
                busy += rt.busy_ms_at(now);
                staffed += rt.staffed_ms_at(now);
            }
            let Some(agent) = self.agent(tenant, &m.extension) else {
                continue;
            };
            let activity = self
                .acd
                .agent_runtime(tenant, &m.extension)
                .map(|rt| &rt.activity);
            let slot = match (&agent.state, activity) {
                (AgentState::LoggedOut, _) => &mut agents.logged_out,
                (AgentState::Paused { .. }, _) => &mut agents.paused,
                (_, Some(AgentActivity::Ringing { .. })) => &mut agents.ringing,
                (_, Some(AgentActivity::OnCall { .. })) => &mut agents.on_call,
                (_, Some(AgentActivity::WrapUp { .. })) => &mut agents.wrap_up,
                _ => &mut agents.available,
            };
            *slot += 1;
        }
        let ratio = |num: u64, den: u64| (den > 0).then(|| num as f64 / den as f64);
        let mean = |sum: u64, n: u64| (n > 0).then(|| sum / n);
        Some(QueueKpis {
            calls_waiting,
            longest_wait_ms,
            agents,
            service_level: ratio(stats.answered_within_service_level, stats.answered),
            asa_ms: mean(stats.answered_wait_ms, stats.answered),
            aht_ms: mean(stats.talk_ms + stats.wrap_up_ms, stats.handled),
            abandon_rate: ratio(stats.abandoned, stats.answered + stats.abandoned),
            occupancy: ratio(busy, staffed),
            stats,
        })
    }
}
