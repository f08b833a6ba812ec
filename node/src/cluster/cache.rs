//! The node's local copy of what it needs from the control plane, fed by a watch
//! stream ([`WatchEvent`]s): tenants (with their call settings), extensions with
//! their HA1 credentials, registration bindings, numbers, hunt groups, queues, agents,
//! trunks and the other nodes' load reports. Lookups on the SIP hot path read it without a network round trip; the
//! trunk trusting a packet's source is found through an index ([`SourceIndex`]).

use std::collections::HashMap;
use std::net::SocketAddr;

use parking_lot::RwLock;
use tongdai_control_plane::model::{
    Agent, Binding, CallControl, ClickToCall, Extension, HuntGroup, Id, NodeDrain, NodeLoad,
    Number, Queue, QueueEntry, Tenant, Trunk,
};
use tongdai_control_plane::wire::{Item, WatchEvent};

use super::load::{FRESH_MS, OthersLoad};
use super::sources::SourceIndex;

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
    trunks: HashMap<Key, Trunk>,
    /// Every node's last load report, this node's included, by node name.
    load: HashMap<String, NodeLoad>,
    /// Recent drain requests, by node name.
    drains: HashMap<String, NodeDrain>,
    /// The trunks' trusted sources, kept in step with `trunks`.
    sources: SourceIndex,
    /// Bindings held, expired ones included until the leader's sweep removes them.
    stored_bindings: usize,
    /// The revision of a full copy still arriving in chunks; `revision` stays `None`
    /// until it is complete, so a watch cut off halfway asks for a full copy again.
    pending_revision: Option<u64>,
    /// Call-control requests seen in the items being applied, handed to the B2BUA
    /// once the lock is released (they are messages, not cached).
    controls: Vec<CallControl>,
    /// Callers in queues, cluster-wide, by tenant and Call-ID.
    queue_entries: HashMap<(Id, String), QueueEntry>,
    /// Queue entries changed by the items being applied, announced once the lock is
    /// released.
    entries_changed: Vec<(Id, String)>,
    /// Untaken click-to-call requests seen in the items being applied (messages, not
    /// cached), handed to the B2BUA once the lock is released.
    click_to_calls: Vec<ClickToCall>,
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
            Item::CallControl { value, .. } => self.controls.extend(value),
            Item::Trunk { tenant, id, value } => {
                let key = (tenant, id);
                if let Some(old) = self.trunks.get(&key) {
                    self.sources.remove(&key, old);
                }
                if let Some(new) = &value {
                    self.sources.insert(&key, new);
                }
                set(&mut self.trunks, key, value);
            }
            Item::Load { node, load } => set(&mut self.load, node, load),
            Item::NodeDrain { node, value } => set(&mut self.drains, node, value),
            Item::ClickToCall { value, .. } => {
                self.click_to_calls
                    .extend(value.filter(|c| c.node.is_none()));
            }
            Item::QueueEntry {
                tenant,
                call_id,
                value,
            } => {
                self.entries_changed.push((tenant.clone(), call_id.clone()));
                set(&mut self.queue_entries, (tenant, call_id), value);
            }
        }
    }
}

/// The cache. Shared by the registrar and the watch task.
#[derive(Debug)]
pub struct Cache {
    inner: RwLock<Inner>,
    /// Call-control requests, each delivered once (by sequence number) to subscribers.
    controls: tokio::sync::broadcast::Sender<CallControl>,
    last_control: std::sync::atomic::AtomicU64,
    /// Bumped whenever a watch event was applied (wakes [`Cache::pending_drain`]).
    applied: tokio::sync::watch::Sender<u64>,
    /// Which queue entries changed (read them with [`Cache::queue_entry`]).
    entries: tokio::sync::broadcast::Sender<EntryChange>,
    /// Untaken click-to-call requests, each delivered once (by sequence number).
    click_to_calls: tokio::sync::broadcast::Sender<ClickToCall>,
    last_click_to_call: std::sync::atomic::AtomicU64,
}

/// A change of queue entries: one (tenant, Call-ID), or possibly all of them (a full
/// copy replaced the cache).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryChange {
    One(Id, String),
    All,
}

impl Default for Cache {
    fn default() -> Self {
        Cache {
            inner: RwLock::default(),
            controls: tokio::sync::broadcast::channel(1024).0,
            last_control: std::sync::atomic::AtomicU64::new(0),
            applied: tokio::sync::watch::Sender::new(0),
            entries: tokio::sync::broadcast::channel(4096).0,
            click_to_calls: tokio::sync::broadcast::channel(1024).0,
            last_click_to_call: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl Cache {
    pub fn new() -> Cache {
        Cache::default()
    }

    /// Call-control requests as they arrive, each once, in order (a resync after a
    /// reconnect re-sends recent ones; those already delivered are skipped).
    pub fn subscribe_controls(&self) -> tokio::sync::broadcast::Receiver<CallControl> {
        self.controls.subscribe()
    }

    /// Untaken click-to-call requests as they arrive, each once, in order.
    pub fn subscribe_click_to_calls(&self) -> tokio::sync::broadcast::Receiver<ClickToCall> {
        self.click_to_calls.subscribe()
    }

    /// Queue entries as they change. A subscriber that lags must treat it as
    /// [`EntryChange::All`].
    pub fn subscribe_entries(&self) -> tokio::sync::broadcast::Receiver<EntryChange> {
        self.entries.subscribe()
    }

    /// A waiting caller's place in their queue (1 = next), in service order: higher
    /// priority first, then arrival.
    pub fn queue_position(&self, tenant: &Id, queue: &Id, call_id: &str) -> Option<u32> {
        let inner = self.inner.read();
        let mut waiting: Vec<&QueueEntry> = inner
            .queue_entries
            .values()
            .filter(|e| &e.tenant == tenant && &e.queue == queue && e.exit.is_none())
            .collect();
        waiting.sort_by_key(|e| (std::cmp::Reverse(e.priority), e.seq));
        waiting
            .iter()
            .position(|e| e.call_id == call_id)
            .map(|i| i as u32 + 1)
    }

    /// A caller's queue entry, while it is in a queue.
    pub fn queue_entry(&self, tenant: &Id, call_id: &str) -> Option<QueueEntry> {
        self.inner
            .read()
            .queue_entries
            .get(&(tenant.clone(), call_id.to_owned()))
            .cloned()
    }

    /// Waits until the cache holds a pending drain request for `node` and returns it
    /// (at once when it holds one already).
    pub async fn pending_drain(&self, node: &str) -> NodeDrain {
        let mut applied = self.applied.subscribe();
        loop {
            if let Some(d) = self
                .inner
                .read()
                .drains
                .get(node)
                .filter(|d| d.is_pending())
            {
                return d.clone();
            }
            if applied.changed().await.is_err() {
                // The cache is going away: no request will come.
                std::future::pending::<()>().await;
            }
        }
    }

    fn deliver_controls(&self, mut controls: Vec<CallControl>) {
        use std::sync::atomic::Ordering;
        controls.sort_by_key(|c| c.seq);
        for c in controls {
            if self.last_control.fetch_max(c.seq, Ordering::AcqRel) < c.seq {
                let _ = self.controls.send(c);
            }
        }
    }

    /// The revision the cache is at; `None` before the first full copy arrived.
    pub fn revision(&self) -> Option<u64> {
        self.inner.read().revision
    }

    /// Applies one watch event and returns whether the cache now holds a complete
    /// copy (false in the middle of a chunked reset). A delta older than what the
    /// cache holds only re-sends current values, so applying it is harmless.
    pub fn apply(&self, event: WatchEvent) -> bool {
        let reset = matches!(event, WatchEvent::Reset { .. });
        let (complete, controls, entries, mut clicks) = {
            let mut inner = self.inner.write();
            let complete = Self::apply_locked(&mut inner, event);
            (
                complete,
                std::mem::take(&mut inner.controls),
                std::mem::take(&mut inner.entries_changed),
                std::mem::take(&mut inner.click_to_calls),
            )
        };
        clicks.sort_by_key(|c| c.seq);
        for c in clicks {
            use std::sync::atomic::Ordering;
            if self.last_click_to_call.fetch_max(c.seq, Ordering::AcqRel) < c.seq {
                let _ = self.click_to_calls.send(c);
            }
        }
        if !controls.is_empty() {
            self.deliver_controls(controls);
        }
        if reset {
            let _ = self.entries.send(EntryChange::All);
        } else {
            for (tenant, call_id) in entries {
                let _ = self.entries.send(EntryChange::One(tenant, call_id));
            }
        }
        self.applied.send_modify(|n| *n = n.wrapping_add(1));
        complete
    }

    fn apply_locked(inner: &mut Inner, event: WatchEvent) -> bool {
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

    pub fn extension(&self, tenant: &Id, ext: &Id) -> Option<Extension> {
        self.with_extension(tenant, ext, Extension::clone)
    }

    pub fn trunk(&self, tenant: &Id, id: &Id) -> Option<Trunk> {
        self.inner
            .read()
            .trunks
            .get(&(tenant.clone(), id.clone()))
            .cloned()
    }

    /// The trunk whose trusted_sources match `source` (exact IP:port beats IP beats the
    /// narrowest CIDR); None if no trunk trusts it. A few hash lookups, whatever the
    /// number of trunks.
    pub fn trunk_for_source(&self, source: SocketAddr) -> Option<Trunk> {
        let inner = self.inner.read();
        let key = inner.sources.lookup(source)?;
        inner.trunks.get(key).cloned()
    }

    /// What nodes other than `my_node` reported for `tenant` less than
    /// [`FRESH_MS`] ago by `now_ms` (this node's clock; a report stamped in the future
    /// by a leader whose clock runs ahead counts as fresh), summed.
    pub fn others_load(&self, tenant: &Id, my_node: &str, now_ms: u64) -> OthersLoad {
        let inner = self.inner.read();
        let mut sum = OthersLoad::default();
        for (node, load) in &inner.load {
            if node == my_node || now_ms.saturating_sub(load.time_ms) >= FRESH_MS {
                continue;
            }
            if let Some(t) = load.tenant(tenant) {
                sum.active_calls = sum.active_calls.saturating_add(t.active_calls);
                sum.attempts_per_sec = sum.attempts_per_sec.saturating_add(t.attempts_per_sec);
                sum.nodes += 1;
            }
        }
        sum
    }

    /// Every tenant's trunks, in no order (the trunk registrations reconcile against it).
    pub fn all_trunks(&self) -> Vec<Trunk> {
        self.inner.read().trunks.values().cloned().collect()
    }

    /// A tenant's trunks, in id order.
    pub fn trunks(&self, tenant: &Id) -> Vec<Trunk> {
        let inner = self.inner.read();
        let mut list: Vec<Trunk> = inner
            .trunks
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, v)| v.clone())
            .collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        list
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
                calls: Default::default(),
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

    fn trunk(tenant: &str, id: &str, sources: &[&str]) -> Trunk {
        Trunk {
            tenant: Id::new(tenant).unwrap(),
            id: Id::new(id).unwrap(),
            address: "sip.carrier.example:5060".into(),
            transport: tongdai_control_plane::model::Transport::Udp,
            trusted_sources: sources.iter().map(|s| (*s).to_owned()).collect(),
            registration: None,
            max_concurrent_calls: 10,
            failover: None,
        }
    }

    fn put(t: &Trunk) -> Item {
        Item::Trunk {
            tenant: t.tenant.clone(),
            id: t.id.clone(),
            value: Some(t.clone()),
        }
    }

    fn gone(tenant: &str, id: &str) -> Item {
        Item::Trunk {
            tenant: Id::new(tenant).unwrap(),
            id: Id::new(id).unwrap(),
            value: None,
        }
    }

    /// Which trunk (tenant/id) `cache` says trusts `source`.
    fn who(cache: &Cache, source: &str) -> Option<String> {
        let addr: SocketAddr = source.parse().unwrap();
        cache
            .trunk_for_source(addr)
            .map(|t| format!("{}/{}", t.tenant, t.id))
    }

    #[test]
    fn trunk_for_source_prefers_exact_then_ip_then_the_narrowest_network() {
        let cache = Cache::new();
        let wide = trunk("acme", "wide", &["10.0.0.0/8", "2001:db8::/32"]);
        let mid = trunk("beta", "mid", &["10.1.0.0/16"]);
        let narrow = trunk("acme", "narrow", &["10.1.2.0/24", "2001:db8:1::/48"]);
        let ip = trunk("beta", "ip", &["10.1.2.3", "2001:db8:1::7"]);
        let exact = trunk("gamma", "exact", &["10.1.2.3:5060", "[2001:db8:1::7]:5080"]);
        cache.apply(WatchEvent::Reset {
            revision: 1,
            items: vec![put(&wide), put(&mid), put(&narrow), put(&ip), put(&exact)],
            complete: true,
        });
        for (source, want) in [
            ("10.1.2.3:5060", Some("gamma/exact")),
            ("10.1.2.3:5061", Some("beta/ip")),
            ("10.1.2.4:5060", Some("acme/narrow")),
            ("10.1.3.4:5060", Some("beta/mid")),
            ("10.2.0.1:5060", Some("acme/wide")),
            ("11.0.0.1:5060", None),
            // IPv4 through a dual-stack socket.
            ("[::ffff:10.1.2.3]:5060", Some("gamma/exact")),
            ("[::ffff:10.2.0.1]:5060", Some("acme/wide")),
            ("[2001:db8:1::7]:5080", Some("gamma/exact")),
            ("[2001:db8:1::7]:5060", Some("beta/ip")),
            ("[2001:db8:1::8]:5060", Some("acme/narrow")),
            ("[2001:db8:2::1]:5060", Some("acme/wide")),
            ("[2001:db9::1]:5060", None),
        ] {
            assert_eq!(who(&cache, source).as_deref(), want, "{source}");
        }
        assert_eq!(
            cache
                .trunks(&Id::new("acme").unwrap())
                .iter()
                .map(|t| t.id.as_str())
                .collect::<Vec<_>>(),
            ["narrow", "wide"]
        );
        assert_eq!(
            cache.trunk(&Id::new("beta").unwrap(), &Id::new("mid").unwrap()),
            Some(mid.clone())
        );

        // Deletes and updates take effect; untouched sources stay.
        cache.apply(WatchEvent::Delta {
            revision: 2,
            items: vec![gone("gamma", "exact"), put(&trunk("acme", "narrow", &[]))],
        });
        assert_eq!(who(&cache, "10.1.2.3:5060").as_deref(), Some("beta/ip"));
        assert_eq!(who(&cache, "10.1.2.4:5060").as_deref(), Some("beta/mid"));
        assert_eq!(
            who(&cache, "[2001:db8:1::8]:5060").as_deref(),
            Some("acme/wide")
        );
        // A reset forgets everything not in it.
        cache.apply(WatchEvent::Reset {
            revision: 3,
            items: vec![put(&mid)],
            complete: true,
        });
        assert_eq!(who(&cache, "10.1.2.3:5060").as_deref(), Some("beta/mid"));
        assert_eq!(who(&cache, "10.2.0.1:5060"), None);
    }

    #[test]
    fn a_source_moving_between_trunks_in_one_delta_stays_with_its_new_trunk() {
        let cache = Cache::new();
        let a = trunk("acme", "a", &["192.0.2.1", "192.0.2.0/24"]);
        cache.apply(WatchEvent::Reset {
            revision: 1,
            items: vec![put(&a)],
            complete: true,
        });
        // The new owner's item comes first, the old owner's release second: the
        // release must not drop what now belongs to the other trunk.
        cache.apply(WatchEvent::Delta {
            revision: 3,
            items: vec![
                put(&trunk("beta", "b", &["192.0.2.1", "192.0.2.0/24"])),
                put(&trunk("acme", "a", &[])),
            ],
        });
        assert_eq!(who(&cache, "192.0.2.1:5060").as_deref(), Some("beta/b"));
        assert_eq!(who(&cache, "192.0.2.9:5060").as_deref(), Some("beta/b"));
        // And in the other order.
        cache.apply(WatchEvent::Delta {
            revision: 5,
            items: vec![put(&trunk("beta", "b", &[])), put(&a)],
        });
        assert_eq!(who(&cache, "192.0.2.1:5060").as_deref(), Some("acme/a"));
        assert_eq!(who(&cache, "192.0.2.9:5060").as_deref(), Some("acme/a"));
    }

    fn report(node: &str, time_ms: u64, tenants: &[(&str, u32, u32)]) -> Item {
        Item::Load {
            node: node.into(),
            load: Some(NodeLoad {
                time_ms,
                tenants: tenants
                    .iter()
                    .map(|(t, a, r)| tongdai_control_plane::model::TenantLoad {
                        tenant: Id::new(t).unwrap(),
                        active_calls: *a,
                        attempts_per_sec: *r,
                    })
                    .collect(),
            }),
        }
    }

    #[test]
    fn others_load_sums_fresh_reports_of_other_nodes() {
        const NOW: u64 = 1_700_000_010_000;
        let acme = Id::new("acme").unwrap();
        let cache = Cache::new();
        cache.apply(WatchEvent::Reset {
            revision: 1,
            items: vec![
                report("me", NOW, &[("acme", 100, 100)]),
                report("a", NOW - 1000, &[("acme", 3, 2), ("beta", 7, 7)]),
                report("b", NOW - FRESH_MS + 1, &[("acme", 4, 1)]),
                // Too old by this node's clock, though the control plane still has it.
                report("c", NOW - FRESH_MS, &[("acme", 50, 50)]),
                // Stamped ahead by a leader whose clock runs fast: fresh.
                report("d", NOW + 2000, &[("acme", 1, 0)]),
                report("e", NOW, &[("beta", 1, 1)]),
            ],
            complete: true,
        });
        let want = OthersLoad {
            active_calls: 8,
            attempts_per_sec: 3,
            nodes: 3,
        };
        assert_eq!(cache.others_load(&acme, "me", NOW), want);
        assert_eq!(
            cache.others_load(&Id::new("gamma").unwrap(), "me", NOW),
            OthersLoad::default()
        );
        // A removed or expired report (None) stops counting; a new one replaces.
        cache.apply(WatchEvent::Delta {
            revision: 2,
            items: vec![
                Item::Load {
                    node: "a".into(),
                    load: None,
                },
                report("b", NOW, &[("acme", 1, 1)]),
            ],
        });
        let want = OthersLoad {
            active_calls: 2,
            attempts_per_sec: 1,
            nodes: 2,
        };
        assert_eq!(cache.others_load(&acme, "me", NOW), want);
        // Sums saturate instead of wrapping.
        cache.apply(WatchEvent::Delta {
            revision: 3,
            items: vec![report("f", NOW, &[("acme", u32::MAX, u32::MAX)])],
        });
        let sum = cache.others_load(&acme, "me", NOW);
        assert_eq!(
            (sum.active_calls, sum.attempts_per_sec),
            (u32::MAX, u32::MAX)
        );
    }
}
