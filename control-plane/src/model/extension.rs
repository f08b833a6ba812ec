//! Extensions: one per agent phone, with digest credentials stored as HA1 only.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::error::{CommandError, Ha1Algorithm, TextField};
use super::id::{Id, check_text};
use super::number::check_external_number;

pub const MAX_DISPLAY_NAME_LEN: usize = 128;

/// When a call to the extension goes to the mobile instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ForwardCondition {
    /// No live registration binding.
    Unregistered,
    /// Rang out without an answer.
    NoAnswer,
    /// The phone answered busy.
    Busy,
    /// Every call, without ringing the phone.
    Always,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardToMobile {
    /// External number (see [`check_external_number`]).
    pub number: String,
    pub when: BTreeSet<ForwardCondition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension {
    pub tenant: Id,
    /// The extension number, also the SIP user name (e.g. `1001`).
    pub ext: Id,
    pub display_name: String,
    /// MD5(username:realm:password), 32 lowercase hex digits (RFC 2617 / 7616).
    pub ha1_md5: String,
    /// SHA-256(username:realm:password), 64 lowercase hex digits (RFC 7616).
    pub ha1_sha256: String,
    pub forward_to_mobile: Option<ForwardToMobile>,
}

impl Extension {
    pub(crate) fn validate(&self) -> Result<(), CommandError> {
        check_text(
            TextField::DisplayName,
            &self.display_name,
            MAX_DISPLAY_NAME_LEN,
        )?;
        check_ha1(Ha1Algorithm::Md5, &self.ha1_md5, 32)?;
        check_ha1(Ha1Algorithm::Sha256, &self.ha1_sha256, 64)?;
        if let Some(fwd) = &self.forward_to_mobile {
            check_external_number(&fwd.number)?;
            if fwd.when.is_empty() {
                return Err(CommandError::NoForwardCondition);
            }
        }
        Ok(())
    }
}

/// Lowercase only, so the stored form is canonical and compares byte for byte.
fn check_ha1(
    algorithm: Ha1Algorithm,
    value: &str,
    expected_len: usize,
) -> Result<(), CommandError> {
    let ok = value.len() == expected_len
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(())
    } else {
        Err(CommandError::InvalidHa1 {
            algorithm,
            expected_len,
        })
    }
}
