//! What trunks and call settings may point at, and what may not be deleted while they
//! do: a tenant's outbound trunk and caller ID, a trunk's failover, and trusted
//! sources that must each belong to one trunk across every tenant (a call from a
//! source two trunks trusted would have no one tenant).

use super::State;
use super::calls::CallSettings;
use super::error::{CommandError, Reference};
use super::id::Id;
use super::number::NumberKind;
use super::trunk::Trunk;

impl State {
    /// The outbound trunk is one of the tenant's; the caller ID is a geographic number
    /// of the tenant's.
    pub(super) fn check_call_settings(
        &self,
        tenant: &Id,
        calls: &CallSettings,
    ) -> Result<(), CommandError> {
        if let Some(trunk) = &calls.outbound_trunk
            && !self.trunks.contains_key(&(tenant.clone(), trunk.clone()))
        {
            return Err(unknown_trunk(tenant, trunk));
        }
        if let Some(digits) = &calls.caller_id {
            match self.numbers.get(digits) {
                Some(n) if &n.tenant == tenant => {
                    if n.kind != NumberKind::Geographic {
                        return Err(CommandError::CallerIdInboundOnly {
                            number: digits.clone(),
                            kind: n.kind,
                        });
                    }
                }
                // Another tenant's number answers as an unknown one: a tenant must not
                // learn which numbers others hold.
                _ => {
                    return Err(CommandError::UnknownCallerId {
                        tenant: tenant.clone(),
                        number: digits.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// A number may not be released while its tenant presents it as caller ID.
    pub(super) fn check_number_unused(
        &self,
        tenant: &Id,
        digits: &str,
    ) -> Result<(), CommandError> {
        let used = self
            .tenants
            .get(tenant)
            .is_some_and(|t| t.calls.caller_id.as_deref() == Some(digits));
        if used {
            return Err(CommandError::NumberInUse {
                number: digits.to_owned(),
                used_by: vec![Reference::CallerId],
            });
        }
        Ok(())
    }

    pub(super) fn put_trunk(&mut self, t: &Trunk, create: bool) -> Result<(), CommandError> {
        t.validate()?;
        self.require_tenant(&t.tenant)?;
        let key = (t.tenant.clone(), t.id.clone());
        match (create, self.trunks.contains_key(&key)) {
            (true, true) => {
                return Err(CommandError::TrunkExists {
                    tenant: t.tenant.clone(),
                    id: t.id.clone(),
                });
            }
            (false, false) => return Err(unknown_trunk(&t.tenant, &t.id)),
            _ => {}
        }
        for (index, source) in t.trusted_sources.iter().enumerate() {
            // Stored sources are canonical, so one source has one spelling.
            let owner = self
                .trunks
                .iter()
                .find(|(k, other)| **k != key && other.trusted_sources.contains(source));
            if let Some(((tenant, trunk), _)) = owner {
                return Err(CommandError::TrustedSourceInUse {
                    index,
                    source_addr: source.clone(),
                    tenant: tenant.clone(),
                    trunk: trunk.clone(),
                });
            }
        }
        self.check_failover_chain(t)?;
        self.trunks.insert(key, t.clone());
        Ok(())
    }

    /// The failover trunk exists in the same tenant, and following failovers from it
    /// never comes back to `t`.
    fn check_failover_chain(&self, t: &Trunk) -> Result<(), CommandError> {
        let Some(first) = &t.failover else {
            return Ok(());
        };
        if !self.trunks.contains_key(&(t.tenant.clone(), first.clone())) {
            return Err(unknown_trunk(&t.tenant, first));
        }
        let mut next = Some(first);
        // Each step visits another trunk; more steps than trunks means a cycle not
        // through `t`, which earlier writes already ruled out.
        for _ in 0..=self.trunks.len() {
            let Some(id) = next else {
                return Ok(());
            };
            if id == &t.id {
                return Err(CommandError::TrunkFailoverLoop(t.id.clone()));
            }
            next = self
                .trunks
                .get(&(t.tenant.clone(), id.clone()))
                .and_then(|o| o.failover.as_ref());
        }
        Err(CommandError::TrunkFailoverLoop(t.id.clone()))
    }

    pub(super) fn delete_trunk(&mut self, tenant: &Id, id: &Id) -> Result<(), CommandError> {
        self.require_tenant(tenant)?;
        let key = (tenant.clone(), id.clone());
        if !self.trunks.contains_key(&key) {
            return Err(unknown_trunk(tenant, id));
        }
        let mut used_by = Vec::new();
        if self
            .tenants
            .get(tenant)
            .is_some_and(|t| t.calls.outbound_trunk.as_ref() == Some(id))
        {
            used_by.push(Reference::OutboundTrunk);
        }
        for other in self.scoped(&self.trunks, tenant).map(|(_, t)| t) {
            if other.failover.as_ref() == Some(id) {
                used_by.push(Reference::TrunkFailover(other.id.clone()));
            }
        }
        if !used_by.is_empty() {
            return Err(CommandError::TrunkInUse {
                tenant: tenant.clone(),
                id: id.clone(),
                used_by,
            });
        }
        self.trunks.remove(&key);
        Ok(())
    }
}

pub(super) fn unknown_trunk(tenant: &Id, id: &Id) -> CommandError {
    CommandError::UnknownTrunk {
        tenant: tenant.clone(),
        id: id.clone(),
    }
}
