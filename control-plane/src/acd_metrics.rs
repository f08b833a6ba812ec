//! The contact-center gauges each replica exports from its copy of the state, every
//! [`EXPORT_EVERY`]: per queue the callers waiting, the longest wait, the service level
//! and the queue's call counters; per tenant the agents by state. Every replica holds
//! the same state, so dashboards aggregate with `max by (tenant, queue)`. Labels are
//! bounded by the configured tenants and queues (a deleted queue's series read 0).

use std::collections::BTreeSet;
use std::time::Duration;

use crate::model::{AgentActivity, AgentState, Id, State};
use crate::raft::store::SmView;

pub const EXPORT_EVERY: Duration = Duration::from_secs(2);

const AGENT_STATES: [&str; 6] = [
    "logged_out",
    "paused",
    "available",
    "ringing",
    "on_call",
    "wrap_up",
];

/// One export's values: (tenant, queue) -> gauges, tenant -> agents by state.
#[derive(Debug, Default, PartialEq)]
pub struct QueueGauges {
    pub queues: Vec<QueueRow>,
    /// (tenant, counts in [`AGENT_STATES`] order).
    pub agents: Vec<(Id, [u32; 6])>,
}

#[derive(Debug, PartialEq)]
pub struct QueueRow {
    pub tenant: Id,
    pub queue: Id,
    pub waiting: u32,
    pub longest_wait_secs: f64,
    /// `None` before the queue's first answered call.
    pub service_level: Option<f64>,
    /// joined, answered, abandoned, timed_out, overflowed.
    pub calls: [u64; 5],
}

const OUTCOMES: [&str; 5] = ["joined", "answered", "abandoned", "timed_out", "overflowed"];

/// What to export from `state` at `now_ms` (sans-IO).
pub fn gauges(state: &State, now_ms: u64) -> QueueGauges {
    let mut out = QueueGauges::default();
    for t in state.tenants() {
        for q in state.queues(&t.id) {
            let Some(k) = state.queue_kpis(&t.id, &q.id, now_ms) else {
                continue;
            };
            out.queues.push(QueueRow {
                tenant: t.id.clone(),
                queue: q.id.clone(),
                waiting: k.calls_waiting,
                longest_wait_secs: k.longest_wait_ms as f64 / 1000.0,
                service_level: k.service_level,
                calls: [
                    k.stats.joined,
                    k.stats.answered,
                    k.stats.abandoned,
                    k.stats.timed_out,
                    k.stats.overflowed,
                ],
            });
        }
        let mut counts = [0u32; 6];
        for a in state.agents(&t.id) {
            let activity = state
                .acd()
                .agent_runtime(&t.id, &a.extension)
                .map(|rt| &rt.activity);
            let i = match (&a.state, activity) {
                (AgentState::LoggedOut, _) => 0,
                (AgentState::Paused { .. }, _) => 1,
                (_, Some(AgentActivity::Ringing { .. })) => 3,
                (_, Some(AgentActivity::OnCall { .. })) => 4,
                (_, Some(AgentActivity::WrapUp { .. })) => 5,
                _ => 2,
            };
            counts[i] += 1;
        }
        out.agents.push((t.id.clone(), counts));
    }
    out
}

/// Exports [`gauges`] every [`EXPORT_EVERY`] until the runtime stops.
pub async fn run(view: SmView) {
    let mut seen_queues: BTreeSet<(Id, Id)> = BTreeSet::new();
    let mut seen_tenants: BTreeSet<Id> = BTreeSet::new();
    let mut tick = tokio::time::interval(EXPORT_EVERY);
    loop {
        tick.tick().await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let g = view.read(|s| gauges(s, now));
        let mut queues = BTreeSet::new();
        for row in &g.queues {
            let labels = [
                ("tenant", row.tenant.as_str().to_owned()),
                ("queue", row.queue.as_str().to_owned()),
            ];
            metrics::gauge!("tongdai_queue_calls_waiting", &labels).set(f64::from(row.waiting));
            metrics::gauge!("tongdai_queue_longest_wait_seconds", &labels)
                .set(row.longest_wait_secs);
            if let Some(sl) = row.service_level {
                metrics::gauge!("tongdai_queue_service_level_ratio", &labels).set(sl);
            }
            for (outcome, n) in OUTCOMES.iter().zip(row.calls) {
                metrics::counter!(
                    "tongdai_queue_calls_total",
                    "tenant" => row.tenant.as_str().to_owned(),
                    "queue" => row.queue.as_str().to_owned(),
                    "outcome" => *outcome
                )
                .absolute(n);
            }
            queues.insert((row.tenant.clone(), row.queue.clone()));
        }
        for (tenant, queue) in seen_queues.difference(&queues) {
            let labels = [
                ("tenant", tenant.as_str().to_owned()),
                ("queue", queue.as_str().to_owned()),
            ];
            metrics::gauge!("tongdai_queue_calls_waiting", &labels).set(0.0);
            metrics::gauge!("tongdai_queue_longest_wait_seconds", &labels).set(0.0);
        }
        seen_queues = queues;
        let mut tenants = BTreeSet::new();
        for (tenant, counts) in &g.agents {
            for (state, n) in AGENT_STATES.iter().zip(counts) {
                metrics::gauge!(
                    "tongdai_agents",
                    "tenant" => tenant.as_str().to_owned(),
                    "state" => *state
                )
                .set(f64::from(*n));
            }
            tenants.insert(tenant.clone());
        }
        for tenant in seen_tenants.difference(&tenants) {
            for state in AGENT_STATES {
                metrics::gauge!("tongdai_agents", "tenant" => tenant.as_str().to_owned(), "state" => state)
                    .set(0.0);
            }
        }
        seen_tenants = tenants;
    }
}
