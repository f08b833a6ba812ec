//! API tokens of tenants. Only the SHA-256 of a token is replicated: a snapshot, a log
//! entry or a backup never holds a usable credential.

use serde::{Deserialize, Serialize};

use super::error::CommandError;
use super::id::Id;

/// A tenant's API token: it acts for its tenant only (the admin API enforces that).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub tenant: Id,
    /// Chosen by the operator (e.g. `crm-sync`); names the token when listing or
    /// revoking it.
    pub id: Id,
    /// SHA-256 of the token, 64 lowercase hex digits.
    pub sha256: String,
}

impl ApiToken {
    pub(crate) fn validate(&self) -> Result<(), CommandError> {
        let ok = self.sha256.len() == 64
            && self
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if ok {
            Ok(())
        } else {
            Err(CommandError::InvalidApiTokenHash)
        }
    }
}
