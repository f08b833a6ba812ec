//! The node's share in cluster-wide quotas: a task that reports this node's calls per
//! tenant to the control plane about once a second ([`Command::ReportLoad`]), and what
//! the other nodes reported ([`OthersLoad`], summed by [`super::Cache::others_load`]).
//!
//! A node reports while it has calls or recent attempts, and once more when it has
//! none left (which removes its report); an idle node sends nothing. Reports are soft
//! state: a failed one is logged at debug level and the next second's replaces it.

use std::time::Duration;

use tokio::task::JoinHandle;
use tongdai_control_plane::model::{Command, MAX_TENANTS_PER_REPORT, TenantLoad};

use super::ControlPlaneClient;

/// Reports older than this by the node's clock are not counted: the reporter stopped
/// (or lost the control plane), and its calls may be gone.
pub const FRESH_MS: u64 = 5_000;
/// How often a node reports.
pub const REPORT_EVERY: Duration = Duration::from_secs(1);
/// How long one report may take to commit before the next one replaces it.
const REPORT_TIMEOUT: Duration = Duration::from_secs(2);

/// What the other nodes reported for one tenant, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OthersLoad {
    /// Their calls of the tenant now.
    pub active_calls: u32,
    /// Their admitted attempts of the tenant in the last second.
    pub attempts_per_sec: u32,
    /// How many of them report the tenant (for an even share of its attempt rate).
    pub nodes: u32,
}

/// Every [`REPORT_EVERY`], proposes `source()`'s load as `node_name`'s report; skips a
/// second when the load is zero and the last committed report was zero too. Never
/// fails: errors are logged at debug level and the task runs until aborted (or the
/// runtime stops).
pub fn spawn_load_reporter(
    client: ControlPlaneClient,
    node_name: String,
    source: impl Fn() -> Vec<TenantLoad> + Send + Sync + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(REPORT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Whether the control plane holds a report of ours: unknown at start (a
        // restarted node may have left one), so the first idle second reports once.
        let mut reported = true;
        loop {
            tick.tick().await;
            let tenants = report_entries(source());
            if tenants.is_empty() && !reported {
                continue;
            }
            let idle = tenants.is_empty();
            let command = Command::ReportLoad {
                node: node_name.clone(),
                tenants,
            };
            match tokio::time::timeout(REPORT_TIMEOUT, client.propose_one(command)).await {
                Ok(Ok((Ok(_), _))) => reported = !idle,
                Ok(Ok((Err(e), _))) => {
                    tracing::debug!(node = %node_name, "load report refused: {e}");
                }
                Ok(Err(e)) => tracing::debug!(node = %node_name, "load report not committed: {e}"),
                Err(_) => tracing::debug!(
                    node = %node_name,
                    "load report not committed within {REPORT_TIMEOUT:?}"
                ),
            }
        }
    })
}

/// The entries worth reporting: no idle tenants, and at most
/// [`MAX_TENANTS_PER_REPORT`], the busiest first (by active calls, then attempts).
fn report_entries(mut tenants: Vec<TenantLoad>) -> Vec<TenantLoad> {
    tenants.retain(|t| t.active_calls > 0 || t.attempts_per_sec > 0);
    if tenants.len() > MAX_TENANTS_PER_REPORT {
        tracing::warn!(
            tenants = tenants.len(),
            "more tenants on calls than one load report carries; reporting the busiest {MAX_TENANTS_PER_REPORT}"
        );
        tenants.sort_by_key(|t| std::cmp::Reverse((t.active_calls, t.attempts_per_sec)));
        tenants.truncate(MAX_TENANTS_PER_REPORT);
    }
    tenants
}

#[cfg(test)]
mod tests {
    use tongdai_control_plane::model::Id;

    use super::*;

    fn load(tenant: &str, active_calls: u32, attempts_per_sec: u32) -> TenantLoad {
        TenantLoad {
            tenant: Id::new(tenant).expect("valid"),
            active_calls,
            attempts_per_sec,
        }
    }

    #[test]
    fn reports_leave_out_idle_tenants_and_keep_the_busiest() {
        assert_eq!(
            report_entries(vec![load("a", 0, 0), load("b", 0, 2), load("c", 1, 0)]),
            [load("b", 0, 2), load("c", 1, 0)]
        );
        let many: Vec<TenantLoad> = (0..MAX_TENANTS_PER_REPORT as u32 + 10)
            .map(|i| load(&format!("t{i}"), i, 1))
            .collect();
        let kept = report_entries(many);
        assert_eq!(kept.len(), MAX_TENANTS_PER_REPORT);
        assert!(kept.iter().all(|t| t.active_calls >= 10));
    }
}
