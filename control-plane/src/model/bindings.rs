//! The state's side of registrations: applying a REGISTER under the tenant's quota,
//! sweeping expired bindings, and keeping the per-tenant count of stored bindings in
//! step with the bindings themselves.

use std::collections::BTreeMap;

use super::command::Outcome;
use super::error::CommandError;
use super::id::Id;
use super::registration::{self, Binding, RegisterRequest};
use super::{Scoped, State};

impl State {
    /// The bindings after the REGISTER, and whether anything changed (a query without
    /// contacts changes nothing unless it drops expired bindings).
    pub(super) fn register(
        &mut self,
        req: &RegisterRequest,
        now: u64,
    ) -> Result<(Outcome, bool), CommandError> {
        req.validate()?;
        self.require_extension(&req.tenant, &req.extension)?;
        let limit = self
            .tenants
            .get(&req.tenant)
            .map_or(0, |t| t.quotas.max_registrations);
        let key = (req.tenant.clone(), req.extension.clone());
        let current = self.bindings.get(&key).map(Vec::as_slice).unwrap_or(&[]);
        let live_here = current.iter().filter(|b| b.is_live(now)).count();
        let next = registration::updated(current, req, now)?;
        let stored_elsewhere = self
            .stored_binding_count(&req.tenant)
            .saturating_sub(current.len());
        // Only growth is refused: a tenant over a lowered quota can still refresh.
        // Stored bindings bound live ones from above, so the scan for live ones is
        // needed only near the quota.
        if next.len() > live_here && stored_elsewhere + next.len() > limit as usize {
            let live_tenant: usize = self
                .scoped(&self.bindings, &req.tenant)
                .map(|(_, v)| v.iter().filter(|b| b.is_live(now)).count())
                .sum();
            let after = live_tenant - live_here + next.len();
            if after > limit as usize {
                return Err(CommandError::RegistrationQuotaExceeded {
                    tenant: req.tenant.clone(),
                    limit,
                });
            }
        }
        let changed = next.as_slice() != current;
        if changed {
            self.set_bindings(key, next.clone());
        }
        Ok((Outcome::Bindings(next), changed))
    }

    /// Replaces an extension's bindings, keeping `stored_bindings` in step; the only
    /// way bindings change besides [`State::sweep`].
    pub(super) fn set_bindings(&mut self, key: Scoped, next: Vec<Binding>) {
        let tenant = key.0.clone();
        let old = if next.is_empty() {
            self.bindings.remove(&key)
        } else {
            let new = next.len();
            let old = self.bindings.insert(key, next);
            *self.stored_bindings.entry(tenant.clone()).or_default() += new;
            old
        };
        if let Some(old) = old {
            self.uncount_bindings(&tenant, old.len());
        }
    }

    fn uncount_bindings(&mut self, tenant: &Id, n: usize) {
        if let Some(count) = self.stored_bindings.get_mut(tenant) {
            *count = count.saturating_sub(n);
            if *count == 0 {
                self.stored_bindings.remove(tenant);
            }
        }
    }

    pub(super) fn count_stored_bindings(&self) -> BTreeMap<Id, usize> {
        let mut counts = BTreeMap::new();
        for ((tenant, _), list) in &self.bindings {
            *counts.entry(tenant.clone()).or_default() += list.len();
        }
        counts
    }

    pub(super) fn sweep(&mut self, now_ms: u64) -> usize {
        let mut removed_by_tenant: BTreeMap<Id, usize> = BTreeMap::new();
        self.bindings.retain(|(tenant, _), list| {
            let before = list.len();
            list.retain(|b| b.is_live(now_ms));
            if list.len() < before {
                *removed_by_tenant.entry(tenant.clone()).or_default() += before - list.len();
            }
            !list.is_empty()
        });
        let mut removed = 0;
        for (tenant, n) in removed_by_tenant {
            self.uncount_bindings(&tenant, n);
            removed += n;
        }
        removed
    }
}
