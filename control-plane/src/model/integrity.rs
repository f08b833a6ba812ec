//! Referential integrity inside a tenant: what a destination, member or agent may
//! point at, and what may be deleted while something still points at it.

use super::State;
use super::error::{CommandError, Reference};
use super::hunt_group::HuntGroup;
use super::id::Id;
use super::number::{Destination, check_external_number};

impl State {
    /// Following no-answer destinations from `h` through other hunt groups must not
    /// come back to `h`: a call would hunt forever.
    pub(super) fn check_no_answer_chain(&self, h: &HuntGroup) -> Result<(), CommandError> {
        let mut dest = &h.no_answer;
        // Each step visits another hunt group; more steps than groups means a cycle
        // not through `h`, which the earlier insertions already ruled out.
        for _ in 0..=self.hunt_groups.len() {
            let Destination::HuntGroup(next) = dest else {
                return Ok(());
            };
            if next == &h.id {
                return Err(CommandError::HuntGroupLoop(h.id.clone()));
            }
            match self.hunt_groups.get(&(h.tenant.clone(), next.clone())) {
                Some(g) => dest = &g.no_answer,
                None => return Ok(()),
            }
        }
        Err(CommandError::HuntGroupLoop(h.id.clone()))
    }

    pub(super) fn delete_tenant(&mut self, tenant: &Id) -> Result<(), CommandError> {
        self.require_tenant(tenant)?;
        let numbers = self
            .numbers
            .values()
            .filter(|n| &n.tenant == tenant)
            .count();
        let extensions = self.scoped(&self.extensions, tenant).count();
        let hunt_groups = self.scoped(&self.hunt_groups, tenant).count();
        let queues = self.scoped(&self.queues, tenant).count();
        let agents = self.scoped(&self.agents, tenant).count();
        let trunks = self.scoped(&self.trunks, tenant).count();
        if numbers + extensions + hunt_groups + queues + agents + trunks > 0 {
            return Err(CommandError::TenantNotEmpty {
                tenant: tenant.clone(),
                numbers,
                extensions,
                hunt_groups,
                queues,
                agents,
                trunks,
            });
        }
        self.tenants.remove(tenant);
        let tokens: Vec<_> = self
            .scoped(&self.api_tokens, tenant)
            .map(|(k, _)| k.clone())
            .collect();
        for key in tokens {
            self.api_tokens.remove(&key);
        }
        Ok(())
    }

    pub(super) fn delete_extension(&mut self, tenant: &Id, ext: &Id) -> Result<(), CommandError> {
        self.require_extension(tenant, ext)?;
        let mut used_by = self.references(tenant, &Destination::Extension(ext.clone()));
        for h in self.scoped(&self.hunt_groups, tenant).map(|(_, h)| h) {
            if h.members.contains(ext) {
                used_by.push(Reference::HuntGroupMember(h.id.clone()));
            }
        }
        if self.agents.contains_key(&(tenant.clone(), ext.clone())) {
            used_by.push(Reference::Agent(ext.clone()));
        }
        if !used_by.is_empty() {
            return Err(CommandError::ExtensionInUse {
                tenant: tenant.clone(),
                extension: ext.clone(),
                used_by,
            });
        }
        let key = (tenant.clone(), ext.clone());
        self.extensions.remove(&key);
        self.set_bindings(key, Vec::new());
        Ok(())
    }

    pub(super) fn delete_hunt_group(&mut self, tenant: &Id, id: &Id) -> Result<(), CommandError> {
        let key = (tenant.clone(), id.clone());
        if !self.hunt_groups.contains_key(&key) {
            return Err(unknown_hunt_group(tenant, id));
        }
        let used_by = self.references(tenant, &Destination::HuntGroup(id.clone()));
        if !used_by.is_empty() {
            return Err(CommandError::HuntGroupInUse {
                tenant: tenant.clone(),
                id: id.clone(),
                used_by,
            });
        }
        self.hunt_groups.remove(&key);
        Ok(())
    }

    pub(super) fn delete_queue(&mut self, tenant: &Id, id: &Id) -> Result<(), CommandError> {
        let key = (tenant.clone(), id.clone());
        if !self.queues.contains_key(&key) {
            return Err(unknown_queue(tenant, id));
        }
        let waiting = self
            .acd
            .entries()
            .filter(|e| &e.tenant == tenant && &e.queue == id)
            .count();
        if waiting > 0 {
            return Err(CommandError::QueueHasCallers {
                queue: id.clone(),
                waiting,
            });
        }
        let used_by = self.references(tenant, &Destination::Queue(id.clone()));
        if !used_by.is_empty() {
            return Err(CommandError::QueueInUse {
                tenant: tenant.clone(),
                id: id.clone(),
                used_by,
            });
        }
        self.queues.remove(&key);
        Ok(())
    }

    /// Numbers and hunt groups of `tenant` whose destination is `target`.
    pub(super) fn references(&self, tenant: &Id, target: &Destination) -> Vec<Reference> {
        let numbers = self
            .numbers
            .values()
            .filter(|n| &n.tenant == tenant && &n.destination == target)
            .map(|n| Reference::NumberDestination(n.digits.clone()));
        let groups = self
            .scoped(&self.hunt_groups, tenant)
            .filter(|(_, h)| &h.no_answer == target)
            .map(|(_, h)| Reference::HuntGroupNoAnswer(h.id.clone()));
        numbers.chain(groups).collect()
    }

    /// A destination must name something of the same tenant.
    pub(super) fn check_destination(
        &self,
        tenant: &Id,
        dest: &Destination,
    ) -> Result<(), CommandError> {
        let key = |id: &Id| (tenant.clone(), id.clone());
        match dest {
            Destination::Extension(id) => self.require_extension(tenant, id),
            Destination::HuntGroup(id) if !self.hunt_groups.contains_key(&key(id)) => {
                Err(unknown_hunt_group(tenant, id))
            }
            Destination::Queue(id) if !self.queues.contains_key(&key(id)) => {
                Err(unknown_queue(tenant, id))
            }
            Destination::External(number) => check_external_number(number),
            Destination::HuntGroup(_) | Destination::Queue(_) | Destination::Ivr(_) => Ok(()),
        }
    }

    pub(super) fn require_tenant(&self, tenant: &Id) -> Result<(), CommandError> {
        if self.tenants.contains_key(tenant) {
            Ok(())
        } else {
            Err(CommandError::UnknownTenant(tenant.clone()))
        }
    }

    pub(super) fn require_extension(&self, tenant: &Id, ext: &Id) -> Result<(), CommandError> {
        self.require_tenant(tenant)?;
        if self.extensions.contains_key(&(tenant.clone(), ext.clone())) {
            Ok(())
        } else {
            Err(unknown_extension(tenant, ext))
        }
    }
}

pub(super) fn unknown_extension(tenant: &Id, ext: &Id) -> CommandError {
    CommandError::UnknownExtension {
        tenant: tenant.clone(),
        extension: ext.clone(),
    }
}

pub(super) fn unknown_hunt_group(tenant: &Id, id: &Id) -> CommandError {
    CommandError::UnknownHuntGroup {
        tenant: tenant.clone(),
        id: id.clone(),
    }
}

pub(super) fn unknown_queue(tenant: &Id, id: &Id) -> CommandError {
    CommandError::UnknownQueue {
        tenant: tenant.clone(),
        id: id.clone(),
    }
}

impl State {
    /// A queue's members are agents of its tenant; its overflow goes somewhere that exists.
    pub(super) fn check_queue_refs(&self, q: &super::Queue) -> Result<(), CommandError> {
        for m in &q.members {
            if !self
                .agents
                .contains_key(&(q.tenant.clone(), m.extension.clone()))
            {
                return Err(CommandError::UnknownAgent {
                    tenant: q.tenant.clone(),
                    extension: m.extension.clone(),
                });
            }
        }
        if let Some(o) = &q.overflow {
            self.check_destination(&q.tenant, &o.destination)?;
        }
        Ok(())
    }

    /// Refused while the agent serves a queue.
    pub(super) fn delete_agent(&mut self, tenant: &Id, extension: &Id) -> Result<(), CommandError> {
        let key = (tenant.clone(), extension.clone());
        if !self.agents.contains_key(&key) {
            return Err(CommandError::UnknownAgent {
                tenant: tenant.clone(),
                extension: extension.clone(),
            });
        }
        let queues: Vec<Id> = self
            .queues(tenant)
            .filter(|q| q.member(extension).is_some())
            .map(|q| q.id.clone())
            .collect();
        if !queues.is_empty() {
            return Err(CommandError::AgentInUse {
                tenant: tenant.clone(),
                extension: extension.clone(),
                queues,
            });
        }
        self.agents.remove(&key);
        Ok(())
    }
}
