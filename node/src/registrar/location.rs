//! The location service: where the bindings of each address-of-record live.
//!
//! The registrar talks to it only through [`LocationService`], so the in-memory store
//! here and the Raft-backed store of the control plane are interchangeable. A store
//! applies [`super::bindings::apply`] atomically per AOR.

use std::future::Future;
use std::hash::{BuildHasher, RandomState};

// AORs enter these maps only after digest authentication, so flooding them with
// colliding keys needs valid credentials; a fast hash is fine.
type HashMap<K, V> = foldhash::HashMap<K, V>;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::bindings::{self, Binding, BindingError, RegisterRequest};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    #[error(transparent)]
    Binding(#[from] BindingError),
    /// The store refused the change for a reason the phone cannot fix by retrying
    /// (e.g. the tenant's registration quota); the registrar answers 403 with it.
    #[error("{0}")]
    Refused(String),
    /// The store cannot commit right now (e.g. no Raft leader); the registrar answers 503.
    #[error("location service unavailable: {0}")]
    Unavailable(String),
}

pub trait LocationService: Send + Sync + 'static {
    /// Applies one REGISTER atomically and returns the AOR's bindings afterwards.
    /// Must not resolve before the change is durable in this store's terms.
    fn register(
        &self,
        req: RegisterRequest,
        now_ms: u64,
    ) -> impl Future<Output = Result<Vec<Binding>, LocationError>> + Send;

    /// Current, unexpired bindings of an AOR, highest q first.
    fn lookup(&self, aor: &str, now_ms: u64) -> Vec<Binding>;

    /// Removes expired bindings everywhere; returns how many were removed.
    fn sweep(&self, now_ms: u64) -> usize;

    /// Number of live bindings (for `tongdai_registrations_active`).
    fn binding_count(&self) -> usize;
}

const SHARDS: usize = 64;

/// Bindings in process memory, sharded by AOR so concurrent REGISTERs rarely contend.
/// Lost on restart: the control plane's store replaces it in clustered deployments.
#[derive(Debug)]
pub struct MemoryLocationService {
    shards: Vec<Mutex<HashMap<String, Vec<Binding>>>>,
    hasher: RandomState,
    max_contacts: usize,
    count: AtomicUsize,
}

impl MemoryLocationService {
    pub fn new(max_contacts_per_aor: usize) -> MemoryLocationService {
        MemoryLocationService {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::default()))
                .collect(),
            hasher: RandomState::new(),
            max_contacts: max_contacts_per_aor,
            count: AtomicUsize::new(0),
        }
    }

    fn shard(&self, aor: &str) -> &Mutex<HashMap<String, Vec<Binding>>> {
        let i = self.hasher.hash_one(aor) as usize % SHARDS;
        &self.shards[i]
    }

    fn adjust(&self, before: usize, after: usize) {
        if after >= before {
            self.count.fetch_add(after - before, Ordering::Relaxed);
        } else {
            self.count.fetch_sub(before - after, Ordering::Relaxed);
        }
    }
}

impl LocationService for MemoryLocationService {
    async fn register(
        &self,
        req: RegisterRequest,
        now_ms: u64,
    ) -> Result<Vec<Binding>, LocationError> {
        let mut map = self.shard(&req.aor).lock();
        let entry = map.entry(req.aor.clone()).or_default();
        let before = entry.len();
        let result = bindings::apply(entry, &req, now_ms, self.max_contacts);
        let after = entry.len();
        let out = entry.clone();
        if after == 0 {
            map.remove(&req.aor);
        }
        drop(map);
        self.adjust(before, after);
        result?;
        Ok(out)
    }

    fn lookup(&self, aor: &str, now_ms: u64) -> Vec<Binding> {
        let map = self.shard(aor).lock();
        map.get(aor)
            .map(|b| {
                b.iter()
                    .filter(|b| b.expires_at_ms > now_ms)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    fn sweep(&self, now_ms: u64) -> usize {
        let mut removed = 0;
        for shard in &self.shards {
            let mut map = shard.lock();
            map.retain(|_, b| {
                let before = b.len();
                bindings::purge_expired(b, now_ms);
                removed += before - b.len();
                !b.is_empty()
            });
        }
        self.adjust(removed, 0);
        removed
    }

    fn binding_count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registrar::bindings::{ContactUpdate, RegisterOp};

    fn reg(aor: &str, uri: &str, expires: u32, cseq: u32) -> RegisterRequest {
        RegisterRequest {
            aor: aor.into(),
            op: RegisterOp::Update(vec![ContactUpdate {
                contact: uri.into(),
                expires_secs: expires,
                q: 1000,
                params: String::new(),
            }]),
            call_id: format!("cid-{aor}"),
            cseq,
            source: "127.0.0.1:5062".parse().unwrap(),
            transport: "UDP".into(),
        }
    }

    #[tokio::test]
    async fn count_tracks_adds_removals_and_sweeps() {
        let store = MemoryLocationService::new(10);
        for i in 0..100 {
            let aor = format!("{i}@demo");
            store
                .register(reg(&aor, "sip:x@h", 10 + i, 1), 0)
                .await
                .unwrap();
        }
        assert_eq!(store.binding_count(), 100);
        store
            .register(reg("0@demo", "sip:x@h", 0, 2), 0)
            .await
            .unwrap();
        assert_eq!(store.binding_count(), 99);
        assert!(store.lookup("0@demo", 0).is_empty());
        // Bindings 1..=49 expire by t = 60 s (expires = 10 + i seconds).
        assert_eq!(store.sweep(60_000), 50);
        assert_eq!(store.binding_count(), 49);
        let err = store.register(reg("99@demo", "sip:x@h", 60, 1), 0).await;
        assert_eq!(err, Err(LocationError::Binding(BindingError::StaleCseq)));
        assert_eq!(store.binding_count(), 49);
    }
}
