//! The node's local copy of what it needs from the control plane, fed by a watch
//! stream ([`WatchEvent`]s): tenants, extensions with their HA1 credentials,
//! registration bindings, numbers, hunt groups, queues and agents. Lookups on the SIP
//! hot path read it without a network round trip.

use std::collections::HashMap;

use parking_lot::RwLock;
use tongdai_control_plane::model::{
    Agent, Binding, Extension, HuntGroup, Id, Number, Queue, Tenant,
};
use tongdai_control_plane::wire::{Item, WatchEvent};

type Key = (Id, Id);

#[derive(Debug, Default)]
struct Inner {
    revision: Option<u64>,
    tenants: HashMap<Id, Tenant>,
    numbers: HashMap<String, Number>,
    extensions: HashMap<Key, Extension>,
    bindings: HashMap<Key, Vec<Binding>>,
    hunt_groups: HashMap<Key, HuntGroup>,
    queues: HashMap<Key, Queue>,
    agents: HashMap<Key, Agent>,
    /// Bindings held, expired ones included until the leader's sweep removes them.
    stored_bindings: usize,
    /// The revision of a full copy still arriving in chunks; `revision` stays `None`
    /// until it is complete, so a watch cut off halfway asks for a full copy again.
    pending_revision: Option<u64>,
}

impl Inner {
    fn put(&mut self, item: Item) {
        fn set<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, k: K, v: Option<V>) {
            match v {
                Some(v) => {
                    map.insert(k, v);
                }
                None => {
                    map.remove(&k);
                }
            }
        }
        match item {
            Item::Tenant(id, v) => set(&mut self.tenants, id, v),
            Item::Number(d, v) => set(&mut self.numbers, d, v),
            Item::Extension { tenant, ext, value } => {
                set(&mut self.extensions, (tenant, ext), value)
            }
            Item::Bindings {
                tenant,
                ext,
                bindings,
            } => {
                let key = (tenant, ext);
                let before = self.bindings.get(&key).map_or(0, Vec::len);
                self.stored_bindings = self.stored_bindings - before + bindings.len();
                set(
                    &mut self.bindings,
                    key,
                    (!bindings.is_empty()).then_some(bindings),
                );
            }
            Item::HuntGroup { tenant, id, value } => {
                set(&mut self.hunt_groups, (tenant, id), value)
            }
            Item::Queue { tenant, id, value } => set(&mut self.queues, (tenant, id), value),
            Item::Agent { tenant, ext, value } => set(&mut self.agents, (tenant, ext), value),
        }
    }
}

/// The cache. Shared by the registrar and the watch task.
#[derive(Debug, Default)]
pub struct Cache {
    inner: RwLock<Inner>,
}

impl Cache {
    pub fn new() -> Cache {
        Cache::default()
    }

    /// The revision the cache is at; `None` before the first full copy arrived.
    pub fn revision(&self) -> Option<u64> {
        self.inner.read().revision
    }

    /// Applies one watch event and returns whether the cache now holds a complete
    /// copy (false in the middle of a chunked reset). A delta older than what the
    /// cache holds only re-sends current values, so applying it is harmless.
    pub fn apply(&self, event: WatchEvent) -> bool {
        let mut inner = self.inner.write();
        match event {
            WatchEvent::Reset {
                revision,
                items,
                complete,
            } => {
                *inner = Inner::default();
                for item in items {
                    inner.put(item);
                }
                if complete {
                    inner.revision = Some(revision);
                } else {
                    inner.pending_revision = Some(revision);
                }
                complete
            }
            WatchEvent::More { items, complete } => {
                for item in items {
                    inner.put(item);
                }
                if complete {
                    inner.revision = inner.pending_revision.take();
                }
                complete && inner.revision.is_some()
            }
            WatchEvent::Delta { revision, items } => {
                for item in items {
                    inner.put(item);
                }
                inner.revision = Some(inner.revision.map_or(revision, |r| r.max(revision)));
                true
            }
        }
    }

    /// Records bindings the node just had committed (the REGISTER's own result), so a
    /// lookup right after sees them even before the watch stream delivers them.
    pub fn put_bindings(&self, tenant: &Id, ext: &Id, bindings: Vec<Binding>) {
        self.inner.write().put(Item::Bindings {
            tenant: tenant.clone(),
            ext: ext.clone(),
            bindings,
        });
    }

    pub fn has_tenant(&self, id: &str) -> bool {
        Id::new(id).is_ok_and(|id| self.inner.read().tenants.contains_key(&id))
    }

    pub fn tenant(&self, id: &Id) -> Option<Tenant> {
        self.inner.read().tenants.get(id).cloned()
    }

    /// Runs `f` on an extension, if it exists.
    pub fn with_extension<R>(
        &self,
        tenant: &Id,
        ext: &Id,
        f: impl FnOnce(&Extension) -> R,
    ) -> Option<R> {
        let inner = self.inner.read();
        inner.extensions.get(&(tenant.clone(), ext.clone())).map(f)
    }

    /// Live bindings of an extension at `now_ms`, highest q first.
    pub fn bindings(&self, tenant: &Id, ext: &Id, now_ms: u64) -> Vec<Binding> {
        let inner = self.inner.read();
        let mut live: Vec<Binding> = inner
            .bindings
            .get(&(tenant.clone(), ext.clone()))
            .map(|list| list.iter().filter(|b| b.is_live(now_ms)).cloned().collect())
            .unwrap_or_default();
        live.sort_by_key(|b| std::cmp::Reverse(b.q));
        live
    }

    /// Bindings held across all tenants, in O(1): expired ones count until the
    /// leader's sweep (every second) removes them.
    pub fn binding_count(&self) -> usize {
        self.inner.read().stored_bindings
    }

    pub fn number(&self, digits: &str) -> Option<Number> {
        self.inner.read().numbers.get(digits).cloned()
    }

    pub fn hunt_group(&self, tenant: &Id, id: &Id) -> Option<HuntGroup> {
        self.inner
            .read()
            .hunt_groups
            .get(&(tenant.clone(), id.clone()))
            .cloned()
    }

    pub fn queue(&self, tenant: &Id, id: &Id) -> Option<Queue> {
        self.inner
            .read()
            .queues
            .get(&(tenant.clone(), id.clone()))
            .cloned()
    }

    pub fn agent(&self, tenant: &Id, ext: &Id) -> Option<Agent> {
        self.inner
            .read()
            .agents
            .get(&(tenant.clone(), ext.clone()))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(id: &str) -> Item {
        let id = Id::new(id).unwrap();
        Item::Tenant(
            id.clone(),
            Some(Tenant {
                id,
                name: "T".into(),
                quotas: tongdai_control_plane::model::Quotas {
                    max_concurrent_calls: 1,
                    max_call_attempts_per_sec: 1,
                    max_registrations: 1,
                },
            }),
        )
    }

    #[test]
    fn a_chunked_full_copy_counts_only_when_complete() {
        let cache = Cache::new();
        assert!(!cache.apply(WatchEvent::Reset {
            revision: 7,
            items: vec![tenant("a")],
            complete: false,
        }));
        // Cut off here, the cache has no revision: the next watch asks for a full copy.
        assert_eq!(cache.revision(), None);
        assert!(cache.apply(WatchEvent::More {
            items: vec![tenant("b")],
            complete: true,
        }));
        assert_eq!(cache.revision(), Some(7));
        assert!(cache.has_tenant("a") && cache.has_tenant("b"));
    }

    #[test]
    fn a_reset_replaces_and_deltas_update_or_delete() {
        let cache = Cache::new();
        cache.apply(WatchEvent::Reset {
            revision: 1,
            items: vec![tenant("a"), tenant("b")],
            complete: true,
        });
        cache.apply(WatchEvent::Delta {
            revision: 3,
            items: vec![Item::Tenant(Id::new("a").unwrap(), None), tenant("c")],
        });
        assert!(!cache.has_tenant("a") && cache.has_tenant("b") && cache.has_tenant("c"));
        // An older delta replayed after a reconnect does not move the revision back.
        cache.apply(WatchEvent::Delta {
            revision: 2,
            items: vec![],
        });
        assert_eq!(cache.revision(), Some(3));
        cache.apply(WatchEvent::Reset {
            revision: 4,
            items: vec![tenant("d")],
            complete: true,
        });
        assert!(!cache.has_tenant("b") && cache.has_tenant("d"));
    }
}
