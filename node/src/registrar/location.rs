//! The location service: where the bindings of each address-of-record live.
//!
//! The registrar talks to it only through [`LocationService`]: the node's is the
//! control plane ([`crate::cluster::ClusterStore`]); tests of the registrar use
//! [`super::local::LocalStore`]. Both apply the control plane's state machine, so the
//! binding rules exist once.

use std::future::Future;

use super::bindings::{Binding, BindingError, RegisterRequest};

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
