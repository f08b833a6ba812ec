//! What the registrar asks of its location store and gets back. The RFC 3261 10.3
//! binding rules themselves live in one place, the control plane's state machine
//! (`tongdai_control_plane::model`), which applies them atomically per AOR.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// One contact bound to an address-of-record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The Contact URI as the phone wrote it (what we send requests to).
    pub contact: String,
    /// Absolute expiry, milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
    /// q-value in thousandths (RFC 3261 qvalue), 1000 when not given.
    pub q: u16,
    pub call_id: String,
    pub cseq: u32,
    /// Where the REGISTER really came from (NAT: the contact may be unreachable).
    pub source: SocketAddr,
    /// "UDP" or "TCP".
    pub transport: String,
    /// Contact header parameters other than expires and q (e.g. +sip.instance), as written.
    pub params: String,
}

impl Binding {
    /// Seconds left before expiry at `now_ms`, at least 0.
    pub fn remaining_secs(&self, now_ms: u64) -> u32 {
        u32::try_from(self.expires_at_ms.saturating_sub(now_ms).div_ceil(1000)).unwrap_or(u32::MAX)
    }
}

/// One Contact of a REGISTER, with its expiry already resolved (param, header, default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactUpdate {
    pub contact: String,
    pub expires_secs: u32,
    pub q: u16,
    pub params: String,
}

/// What a REGISTER asks of the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegisterOp {
    /// Query (no Contact): change nothing, return the bindings.
    Fetch,
    /// `Contact: *` with `Expires: 0`: remove every binding.
    RemoveAll,
    Update(Vec<ContactUpdate>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterRequest {
    pub aor: String,
    pub op: RegisterOp,
    pub call_id: String,
    pub cseq: u32,
    pub source: SocketAddr,
    pub transport: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum BindingError {
    /// Same Call-ID with a CSeq not higher than the stored one: an old or replayed request.
    #[error("Out-of-order REGISTER (CSeq not higher than the binding's)")]
    StaleCseq,
    #[error("Too many contacts for this address-of-record (limit {0})")]
    TooManyContacts(usize),
}
