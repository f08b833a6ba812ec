//! Tenants, their quotas (what keeps one tenant's peak from starving the others) and
//! their call settings.

use serde::{Deserialize, Serialize};

use super::calls::CallSettings;
use super::error::{CommandError, QuotaKind, TextField};
use super::id::{Id, check_text};

/// Upper bounds on quotas: far above any one tenant's real need, low enough that a
/// typo (an extra zero or three) is refused instead of disabling the protection.
pub const MAX_CONCURRENT_CALLS: u32 = 1_000_000;
pub const MAX_CALL_ATTEMPTS_PER_SEC: u32 = 100_000;
pub const MAX_REGISTRATIONS: u32 = 1_000_000;
pub const MAX_TENANT_NAME_LEN: usize = 128;

/// Per-tenant limits. Zero is allowed and means "none" (e.g. a suspended tenant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quotas {
    pub max_concurrent_calls: u32,
    pub max_call_attempts_per_sec: u32,
    /// Live registration bindings across all of the tenant's extensions. Lowering it
    /// below the current count keeps existing bindings until they expire or refresh.
    pub max_registrations: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: Id,
    pub name: String,
    pub quotas: Quotas,
    /// Codecs, recording policy, outbound trunk and caller ID.
    pub calls: CallSettings,
}

impl Tenant {
    pub(crate) fn validate(&self) -> Result<(), CommandError> {
        check_text(TextField::TenantName, &self.name, MAX_TENANT_NAME_LEN)?;
        let q = &self.quotas;
        for (quota, value, max) in [
            (
                QuotaKind::MaxConcurrentCalls,
                q.max_concurrent_calls,
                MAX_CONCURRENT_CALLS,
            ),
            (
                QuotaKind::MaxCallAttemptsPerSec,
                q.max_call_attempts_per_sec,
                MAX_CALL_ATTEMPTS_PER_SEC,
            ),
            (
                QuotaKind::MaxRegistrations,
                q.max_registrations,
                MAX_REGISTRATIONS,
            ),
        ] {
            if value > max {
                return Err(CommandError::QuotaOutOfBounds { quota, value, max });
            }
        }
        self.calls.validate()
    }
}
