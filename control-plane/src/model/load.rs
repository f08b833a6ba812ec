//! Per-node call load, so that a tenant's quotas hold across the whole cluster: each
//! node counts its own calls exactly and reports them through the log about once a
//! second ([`super::Command::ReportLoad`]); every node adds the others' reports to its
//! own count when it admits a call.
//!
//! Reports are soft state: the last one of each node is kept, stamped with its entry's
//! time, and dropped once it is more than [`LOAD_REPORT_TTL_MS`] older than the newest
//! report (measured in entry time only, so every replica drops the same ones). A node
//! whose load fell to zero reports once with no tenants, which removes its report.

use serde::{Deserialize, Serialize};

use super::error::{BoundedField, CommandError, TextField};
use super::id::{Id, check_text};
use super::queue::check_range;

/// Longest node name (a host name is at most 253 bytes).
pub const MAX_NODE_NAME_LEN: usize = 255;
/// Tenants in one report at most: a node with more tenants on calls at once reports
/// its busiest ones.
pub const MAX_TENANTS_PER_REPORT: usize = 4096;
/// Nodes with a report at once at most; a new node's report is refused past it
/// (reports of stopped nodes expire, so only a runaway proposer reaches it).
pub const MAX_REPORTING_NODES: usize = 1024;
/// A report this much older (entry time) than the newest one is dropped.
pub const LOAD_REPORT_TTL_MS: u64 = 10_000;

/// One tenant's calls on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantLoad {
    pub tenant: Id,
    /// Calls of the tenant through the node now.
    pub active_calls: u32,
    /// Call attempts of the tenant the node admitted in the last second.
    pub attempts_per_sec: u32,
}

impl TenantLoad {
    fn is_zero(&self) -> bool {
        self.active_calls == 0 && self.attempts_per_sec == 0
    }
}

/// A node's last report as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeLoad {
    /// The time of the entry that carried it (leader's clock, ms since the epoch).
    pub time_ms: u64,
    /// By tenant id, without all-zero entries; never empty once stored.
    pub tenants: Vec<TenantLoad>,
}

impl NodeLoad {
    /// Validates a report and puts it in stored form.
    pub(crate) fn from_report(
        node: &str,
        tenants: &[TenantLoad],
        time_ms: u64,
    ) -> Result<NodeLoad, CommandError> {
        check_text(TextField::NodeName, node, MAX_NODE_NAME_LEN)?;
        check_range(
            BoundedField::ReportTenants,
            tenants.len() as u64,
            0,
            MAX_TENANTS_PER_REPORT as u64,
        )?;
        let mut sorted: Vec<TenantLoad> = tenants.to_vec();
        sorted.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        if let Some(pair) = sorted.windows(2).find(|w| w[0].tenant == w[1].tenant) {
            return Err(CommandError::TenantReportedTwice(pair[0].tenant.clone()));
        }
        sorted.retain(|t| !t.is_zero());
        Ok(NodeLoad {
            time_ms,
            tenants: sorted,
        })
    }

    /// The load of `tenant` in this report, if any.
    pub fn tenant(&self, tenant: &Id) -> Option<&TenantLoad> {
        self.tenants
            .binary_search_by(|t| t.tenant.cmp(tenant))
            .ok()
            .map(|i| &self.tenants[i])
    }
}

impl super::State {
    /// Every node's last report, by node name.
    pub fn load_reports(&self) -> impl Iterator<Item = (&str, &NodeLoad)> {
        self.load.iter().map(|(n, l)| (n.as_str(), l))
    }

    pub fn load_report(&self, node: &str) -> Option<&NodeLoad> {
        self.load.get(node)
    }

    /// Stores `node`'s report and drops expired ones. Returns whether anything changed
    /// and the other nodes whose reports expired. On error nothing changed.
    pub(super) fn report_load(
        &mut self,
        node: &str,
        tenants: &[TenantLoad],
        now_ms: u64,
    ) -> Result<(bool, Vec<String>), CommandError> {
        let report = NodeLoad::from_report(node, tenants, now_ms)?;
        // "Newest" is the latest entry time seen among reports: a new leader whose clock
        // is behind the old one's must not keep expired reports alive, nor expire fresh
        // ones early.
        let newest = self.load.values().map(|l| l.time_ms).fold(now_ms, u64::max);
        let expired: Vec<String> = self
            .load
            .iter()
            .filter(|(n, l)| {
                n.as_str() != node && l.time_ms.saturating_add(LOAD_REPORT_TTL_MS) < newest
            })
            .map(|(n, _)| n.clone())
            .collect();
        let is_new = !self.load.contains_key(node);
        if is_new
            && !report.tenants.is_empty()
            && self.load.len() - expired.len() >= MAX_REPORTING_NODES
        {
            return Err(CommandError::TooManyReportingNodes {
                limit: MAX_REPORTING_NODES,
            });
        }
        for n in &expired {
            self.load.remove(n);
        }
        let changed = if report.tenants.is_empty() {
            self.load.remove(node).is_some()
        } else if self.load.get(node) == Some(&report) {
            false
        } else {
            self.load.insert(node.to_owned(), report);
            true
        };
        Ok((changed || !expired.is_empty(), expired))
    }
}
