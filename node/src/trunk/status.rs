//! What an operator sees of the trunk registrations: the gauge
//! `tongdai_trunk_registered{tenant,trunk}` (1 while the carrier holds this node's
//! binding) and `GET /trunks/registrations` on the node's HTTP endpoint.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use parking_lot::RwLock;
use serde::Serialize;

use super::TrunkKey;

/// `tongdai_trunk_registered{tenant,trunk}`: 1 while the carrier holds this node's
/// registration for the trunk, else 0.
pub const TRUNK_REGISTERED: &str = "tongdai_trunk_registered";

/// One trunk's registration as last seen by the registration task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// [`super::State::name`], or `failed` for a trunk that cannot be registered at all.
    pub state: &'static str,
    /// The trunk's `address` as configured.
    pub address: String,
    /// Where REGISTERs go, once resolved.
    pub registrar: Option<std::net::SocketAddr>,
    pub aor: String,
    pub contact: Option<String>,
    pub until: Option<Instant>,
    pub retry_at: Option<Instant>,
    pub reason: Option<String>,
}

/// The registrations' current states, shared by the registration task (writer) and the
/// HTTP endpoint (reader). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct StatusBoard(Arc<RwLock<BTreeMap<TrunkKey, Entry>>>);

impl StatusBoard {
    pub fn new() -> StatusBoard {
        StatusBoard::default()
    }

    /// Sets a trunk's entry; returns whether its state or reason changed (the task logs
    /// those). Keeps the gauge in step.
    pub(super) fn set(&self, key: &TrunkKey, entry: Entry) -> bool {
        let registered = entry.state == "registered";
        let mut map = self.0.write();
        let changed = map
            .get(key)
            .is_none_or(|old| old.state != entry.state || old.reason != entry.reason);
        map.insert(key.clone(), entry);
        drop(map);
        if changed {
            metrics::gauge!(TRUNK_REGISTERED, "tenant" => key.0.to_string(), "trunk" => key.1.to_string())
                .set(if registered { 1.0 } else { 0.0 });
        }
        changed
    }

    /// Drops a trunk that no longer registers (its gauge reads 0).
    pub(super) fn remove(&self, key: &TrunkKey) {
        if self.0.write().remove(key).is_some() {
            metrics::gauge!(TRUNK_REGISTERED, "tenant" => key.0.to_string(), "trunk" => key.1.to_string())
                .set(0.0);
        }
    }

    pub fn get(&self, key: &TrunkKey) -> Option<Entry> {
        self.0.read().get(key).cloned()
    }

    /// Every entry as the endpoint shows it, times relative to `now`.
    pub fn views(&self, now: Instant) -> Vec<RegistrationView> {
        self.0
            .read()
            .iter()
            .map(|((tenant, trunk), e)| RegistrationView {
                tenant: tenant.to_string(),
                trunk: trunk.to_string(),
                state: e.state,
                address: e.address.clone(),
                registrar: e.registrar.map(|a| a.to_string()),
                aor: e.aor.clone(),
                contact: e.contact.clone(),
                expires_in_secs: e.until.map(|t| t.saturating_duration_since(now).as_secs()),
                retry_in_secs: e
                    .retry_at
                    .map(|t| t.saturating_duration_since(now).as_secs()),
                reason: e.reason.clone(),
            })
            .collect()
    }
}

/// One trunk in `GET /trunks/registrations`.
#[derive(Debug, Clone, Serialize)]
pub struct RegistrationView {
    pub tenant: String,
    pub trunk: String,
    /// `registering`, `registered`, `failed`, `unregistering`.
    pub state: &'static str,
    pub address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registrar: Option<String>,
    pub aor: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// While registered: seconds until the binding runs out unless refreshed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in_secs: Option<u64>,
    /// While failed: seconds until the next attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_in_secs: Option<u64>,
    /// While failed: why, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize)]
struct Registrations {
    registrations: Vec<RegistrationView>,
}

/// `GET /trunks/registrations`: this node's registration of each trunk that has one.
pub fn router(board: StatusBoard) -> Router {
    Router::new()
        .route("/trunks/registrations", get(list))
        .with_state(board)
}

async fn list(State(board): State<StatusBoard>) -> Json<Registrations> {
    Json(Registrations {
        registrations: board.views(Instant::now()),
    })
}
