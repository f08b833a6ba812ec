//! A registrar store in this process, for tests of the registrar itself: the control
//! plane's state machine ([`State`]) applied directly, so the binding rules are the
//! same code the Raft group runs (no second copy in the node).

use std::sync::Arc;

use parking_lot::Mutex;
use tongdai_control_plane::model::{
    CallSettings, Command, Entry, Extension, Id, Quotas, State, Tenant,
};

use super::{Binding, LocationError, LocationService, RegisterRequest, UserDirectory};
use crate::cluster::store::{Change, answer, change_for, live_bindings, split_aor};
use crate::sip::auth::{Algorithm, HashFunction, ha1};

/// One tenant (its id is the realm) with extensions and their bindings.
#[derive(Debug)]
pub struct LocalStore {
    realm: String,
    state: Mutex<State>,
}

impl LocalStore {
    /// A store holding tenant `realm`; at most `max_registrations` bindings.
    pub fn new(realm: &str, max_registrations: u32) -> Arc<LocalStore> {
        let store = LocalStore {
            realm: realm.to_owned(),
            state: Mutex::new(State::new()),
        };
        store
            .apply(
                0,
                Command::CreateTenant(Tenant {
                    id: Id::new(realm).expect("valid realm"),
                    name: realm.to_owned(),
                    quotas: Quotas {
                        max_concurrent_calls: 10,
                        max_call_attempts_per_sec: 10,
                        max_registrations,
                    },
                    calls: CallSettings::default(),
                }),
            )
            .expect("tenant");
        Arc::new(store)
    }

    /// Adds an extension whose credentials are `password` (stored as HA1s).
    pub fn add_user(&self, ext: &str, password: &str) {
        let h = |a| ha1(a, ext, &self.realm, password);
        self.apply(
            0,
            Command::CreateExtension(Extension {
                tenant: Id::new(&self.realm).expect("valid realm"),
                ext: Id::new(ext).expect("valid extension"),
                display_name: ext.to_owned(),
                ha1_md5: h(Algorithm::Md5),
                ha1_sha256: h(Algorithm::Sha256),
                forward_to_mobile: None,
            }),
        )
        .expect("extension");
    }

    fn apply(
        &self,
        now_ms: u64,
        command: Command,
    ) -> Result<tongdai_control_plane::model::Outcome, tongdai_control_plane::model::CommandError>
    {
        self.state.lock().apply(&Entry {
            time_ms: now_ms,
            command,
        })
    }
}

impl LocationService for LocalStore {
    async fn register(
        &self,
        req: RegisterRequest,
        now_ms: u64,
    ) -> Result<Vec<Binding>, LocationError> {
        match change_for(req)? {
            Change::Commit { command, .. } => answer(self.apply(now_ms, *command), now_ms),
            Change::Query { aor } => Ok(self.lookup(&aor, now_ms)),
        }
    }

    fn lookup(&self, aor: &str, now_ms: u64) -> Vec<Binding> {
        let Some((tenant, ext)) = split_aor(aor) else {
            return Vec::new();
        };
        let stored = self.state.lock().stored_bindings(&tenant, &ext).to_vec();
        live_bindings(stored, now_ms)
    }

    fn sweep(&self, now_ms: u64) -> usize {
        match self.apply(now_ms, Command::SweepExpired { now_ms }) {
            Ok(tongdai_control_plane::model::Outcome::Swept { removed }) => removed,
            _ => 0,
        }
    }

    fn binding_count(&self) -> usize {
        let tenant = Id::new(&self.realm).expect("valid realm");
        self.state.lock().stored_binding_count(&tenant)
    }
}

impl UserDirectory for Arc<LocalStore> {
    fn has_realm(&self, realm: &str) -> bool {
        self.realm == realm
    }

    fn ha1(&self, realm: &str, username: &str, hash: HashFunction) -> Option<String> {
        let tenant = Id::new(realm).ok()?;
        let ext = Id::new(username).ok()?;
        let state = self.state.lock();
        let e = state.extension(&tenant, &ext)?;
        match hash {
            HashFunction::Md5 => Some(e.ha1_md5.clone()),
            HashFunction::Sha256 => Some(e.ha1_sha256.clone()),
            HashFunction::Sha512_256 => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registrar::{BindingError, ContactUpdate, RegisterOp};

    fn reg(ext: u32, uri: &str, expires: u32, cseq: u32) -> RegisterRequest {
        RegisterRequest {
            aor: format!("{ext}@demo"),
            op: RegisterOp::Update(vec![ContactUpdate {
                contact: uri.into(),
                expires_secs: expires,
                q: 1000,
                params: String::new(),
            }]),
            call_id: format!("cid-{ext}"),
            cseq,
            source: "127.0.0.1:5062".parse().unwrap(),
            transport: "UDP".into(),
        }
    }

    #[tokio::test]
    async fn count_tracks_adds_removals_sweeps_and_the_quota() {
        let store = LocalStore::new("demo", 100);
        for ext in 1000..1101 {
            store.add_user(&ext.to_string(), "secret-secret");
        }
        for i in 0..100 {
            store
                .register(reg(1000 + i, "sip:x@h", 10 + i, 1), 0)
                .await
                .unwrap();
        }
        assert_eq!(store.binding_count(), 100);
        // The tenant's quota of 100 bindings is full: refused with a reason.
        let over = store.register(reg(1100, "sip:x@h", 60, 1), 0).await;
        assert!(matches!(over, Err(LocationError::Refused(_))), "{over:?}");
        store.register(reg(1000, "sip:x@h", 0, 2), 0).await.unwrap();
        assert_eq!(store.binding_count(), 99);
        assert!(store.lookup("1000@demo", 0).is_empty());
        // Bindings 1001..=1049 expire by t = 60 s (expires = 10 + i seconds).
        assert_eq!(store.sweep(60_000), 50);
        assert_eq!(store.binding_count(), 49);
        let stale = store.register(reg(1099, "sip:x@h", 60, 1), 0).await;
        assert_eq!(stale, Err(LocationError::Binding(BindingError::StaleCseq)));
    }
}
