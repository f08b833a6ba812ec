//! Validated identifiers: tenant ids, extension numbers, hunt group / queue / agent ids.
//!
//! One syntax for all of them keeps them safe in URLs, metric labels and log lines.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::CommandError;

/// Longest identifier accepted.
pub const MAX_ID_LEN: usize = 64;

/// An identifier: 1 to 64 characters of `a-z`, `0-9`, `-`, `_`, `.`, starting with a
/// letter or digit (e.g. tenant `acme`, extension `1001`, hunt group `sales`).
///
/// Deserializing validates too, so a log entry can never smuggle in a bad id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Id(String);

impl Id {
    /// Validates `value` as an identifier.
    pub fn new(value: &str) -> Result<Id, CommandError> {
        let ok_first = value
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let ok_rest = value.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        });
        if ok_first && ok_rest && value.len() <= MAX_ID_LEN {
            Ok(Id(value.to_owned()))
        } else {
            Err(CommandError::InvalidId {
                value: value.chars().take(MAX_ID_LEN + 8).collect(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Id {
    type Error = CommandError;
    fn try_from(value: String) -> Result<Id, CommandError> {
        Id::new(&value)
    }
}

impl From<Id> for String {
    fn from(id: Id) -> String {
        id.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a free-text field (names, display names, reasons): not empty, at most
/// `max_len` bytes, no control characters (they end up in SIP headers and CSV exports).
pub(crate) fn check_text(
    field: super::error::TextField,
    value: &str,
    max_len: usize,
) -> Result<(), CommandError> {
    if value.is_empty() || value.len() > max_len || value.chars().any(char::is_control) {
        return Err(CommandError::InvalidText { field, max_len });
    }
    Ok(())
}

impl Id {
    /// Sorts before every valid id; only for range scans.
    pub(crate) fn min() -> Id {
        Id(String::new())
    }
}
