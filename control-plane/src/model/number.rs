//! Numbers (DIDs) and where their inbound calls go.
//!
//! Numbering rule, Vietnamese national format, digits only:
//! - toll-free `1800` + 4 or 6 digits (8 or 10 digits in all, e.g. `18001234`),
//! - premium rate `1900` + 4 or 6 digits (e.g. `19006868`),
//! - geographic: `02` + 9 digits (11 in all: area code and subscriber, e.g.
//!   `02873001234` for 028 7300 1234).
//!
//! 1800 and 1900 numbers are inbound only: the state refuses them as a tenant's caller
//! ID, and the B2BUA refuses outbound calls presenting them.

use serde::{Deserialize, Serialize};

use super::calls::RecordingPolicy;
use super::error::CommandError;
use super::id::Id;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NumberKind {
    /// 1800: the business pays.
    TollFree1800,
    /// 1900: the caller pays, the business gets a revenue share; has a tariff band.
    Premium1900,
    /// A geographic DID, inbound and outbound.
    Geographic,
}

impl NumberKind {
    /// The format rule, in words, for error messages.
    pub fn rule(self) -> &'static str {
        match self {
            NumberKind::TollFree1800 => "1800 followed by 4 or 6 digits",
            NumberKind::Premium1900 => "1900 followed by 4 or 6 digits",
            NumberKind::Geographic => "02 followed by 9 digits",
        }
    }

    /// Whether `digits` is a well-formed number of this kind.
    pub fn accepts(self, digits: &str) -> bool {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        match self {
            NumberKind::TollFree1800 => {
                digits.starts_with("1800") && matches!(digits.len(), 8 | 10)
            }
            NumberKind::Premium1900 => digits.starts_with("1900") && matches!(digits.len(), 8 | 10),
            NumberKind::Geographic => digits.starts_with("02") && digits.len() == 11,
        }
    }
}

/// Where a call goes. Every target except `Ivr` and `External` must exist in the same
/// tenant as whatever points at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Destination {
    Extension(Id),
    HuntGroup(Id),
    Queue(Id),
    /// IVR menus are not modelled yet; only the id's syntax is checked.
    Ivr(Id),
    /// A number outside the platform (see [`check_external_number`]).
    External(String),
}

/// A number owned by a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Number {
    /// National-format digits (see the module doc).
    pub digits: String,
    pub kind: NumberKind,
    pub tenant: Id,
    /// Required for premium rate (1900), forbidden otherwise.
    pub tariff_band: Option<Id>,
    pub destination: Destination,
    /// Overrides the tenant's recording policy for calls to this number.
    pub recording: Option<RecordingPolicy>,
}

impl Number {
    /// Checks what needs no other entity: format and tariff band.
    pub(crate) fn validate(&self) -> Result<(), CommandError> {
        if !self.kind.accepts(&self.digits) {
            return Err(CommandError::InvalidNumber {
                number: self.digits.chars().take(32).collect(),
                kind: self.kind,
            });
        }
        match (self.kind, &self.tariff_band) {
            (NumberKind::Premium1900, None) => {
                Err(CommandError::MissingTariffBand(self.digits.clone()))
            }
            (NumberKind::Premium1900, Some(_)) | (_, None) => Ok(()),
            (kind, Some(_)) => Err(CommandError::UnexpectedTariffBand {
                number: self.digits.clone(),
                kind,
            }),
        }
    }
}

/// A dialled or presented number in national format: separators (`-`, `.`, spaces,
/// parentheses) dropped, `+84...` as `0...`.
pub fn normalize_number(user: &str) -> String {
    let digits: String = user
        .chars()
        .filter(|c| !matches!(c, '-' | '.' | ' ' | '(' | ')'))
        .collect();
    match digits.strip_prefix("+84") {
        Some(rest) if !rest.is_empty() => format!("0{rest}"),
        _ => digits,
    }
}

/// An external number (forwarding target, external destination): an optional leading
/// `+`, then 3 to 15 digits (E.164 allows at most 15; 3 covers emergency-style codes).
pub fn check_external_number(number: &str) -> Result<(), CommandError> {
    let digits = number.strip_prefix('+').unwrap_or(number);
    if (3..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(CommandError::InvalidExternalNumber(
            number.chars().take(32).collect(),
        ))
    }
}
