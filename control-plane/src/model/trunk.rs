//! Trunks: a tenant's carrier gateways. Calls from a trunk's trusted sources are taken
//! as the carrier's without digest authentication; outbound calls go to its address,
//! after an optional digest registration; a per-trunk limit bounds calls at once, and
//! a failover trunk takes the calls this one refuses with 5xx or does not answer.
//!
//! Rules that need other entities (trusted sources unique across every tenant, the
//! failover trunk in the same tenant and no failover cycle, no deletion while the
//! tenant's call settings or another trunk use it) are the state's
//! ([`super::State::put_trunk`], [`super::State::delete_trunk`]).

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::{BoundedField, CommandError, TextField};
use super::id::{Id, check_text};
use super::queue::check_range;
use super::registration::Transport;
use super::source::TrustedSource;

/// Longest `address` (a DNS name is at most 253 bytes, plus `:65535`).
pub const MAX_ADDRESS_LEN: usize = 260;
pub const MAX_TRUSTED_SOURCES: usize = 64;
pub const MAX_TRUNK_CALLS: u32 = 1_000_000;
pub const MAX_USERNAME_LEN: usize = 128;
pub const MAX_PASSWORD_LEN: usize = 128;
pub const MAX_DOMAIN_LEN: usize = 253;
pub const MIN_REGISTRATION_EXPIRES: u32 = 60;
pub const MAX_REGISTRATION_EXPIRES: u32 = 3600;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trunk {
    pub tenant: Id,
    pub id: Id,
    /// Where calls to the carrier go: "IP:port" or "host:port" (port required).
    pub address: String,
    pub transport: Transport,
    /// Calls from these sources are trusted as this trunk's (no digest): entries are an IP
    /// ("203.0.113.7"), a CIDR ("203.0.113.0/24", v4 or v6) or an "IP:port" (exact source),
    /// in canonical form (see [`super::TrustedSource`]).
    pub trusted_sources: Vec<String>,
    /// Outbound digest registration to the carrier, when it wants one.
    pub registration: Option<TrunkRegistration>,
    /// Calls at once through this trunk, both directions; 0 = no calls (disabled).
    pub max_concurrent_calls: u32,
    /// Tried instead when this trunk answers 5xx or does not answer (same tenant, not itself;
    /// no cycles in the failover chain).
    pub failover: Option<Id>,
}

/// An outbound digest registration to a carrier.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrunkRegistration {
    pub username: String,
    /// Needed in clear to answer the carrier's digest challenge. The API accepts it but never
    /// returns it (responses show `"password_set": true`); `Debug` does not print it.
    pub password: String,
    /// The registrar's domain (Request-URI / To domain), e.g. "sip.carrier.example".
    pub domain: String,
    /// 60..=3600.
    pub expires_secs: u32,
}

impl fmt::Debug for TrunkRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrunkRegistration")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("domain", &self.domain)
            .field("expires_secs", &self.expires_secs)
            .finish()
    }
}

impl Trunk {
    /// Checks what needs no other entity.
    pub(crate) fn validate(&self) -> Result<(), CommandError> {
        check_host_port(&self.address).map_err(|reason| CommandError::InvalidTrunkAddress {
            value: self.address.chars().take(MAX_ADDRESS_LEN + 8).collect(),
            reason: reason.into(),
        })?;
        check_range(
            BoundedField::TrustedSources,
            self.trusted_sources.len() as u64,
            0,
            MAX_TRUSTED_SOURCES as u64,
        )?;
        let mut seen = BTreeSet::new();
        for (index, s) in self.trusted_sources.iter().enumerate() {
            let invalid = |reason: &str| CommandError::InvalidTrustedSource {
                index,
                value: s.chars().take(64).collect(),
                reason: reason.into(),
            };
            let parsed = TrustedSource::parse(s).map_err(|e| invalid(e.reason()))?;
            let canonical = parsed.to_string();
            if &canonical != s {
                return Err(invalid(&format!("write it as {canonical}")));
            }
            if !seen.insert(s) {
                return Err(invalid("listed twice"));
            }
        }
        check_range(
            BoundedField::TrunkMaxCalls,
            self.max_concurrent_calls.into(),
            0,
            MAX_TRUNK_CALLS.into(),
        )?;
        if self.failover.as_ref() == Some(&self.id) {
            return Err(CommandError::TrunkFailoverLoop(self.id.clone()));
        }
        if let Some(r) = &self.registration {
            r.validate()?;
        }
        Ok(())
    }

    /// The parsed trusted sources (all valid in a stored trunk).
    pub fn sources(&self) -> impl Iterator<Item = TrustedSource> + '_ {
        self.trusted_sources
            .iter()
            .filter_map(|s| TrustedSource::parse(s).ok())
    }
}

impl TrunkRegistration {
    fn validate(&self) -> Result<(), CommandError> {
        check_text(TextField::TrunkUsername, &self.username, MAX_USERNAME_LEN)?;
        check_text(TextField::TrunkPassword, &self.password, MAX_PASSWORD_LEN)?;
        if self.domain.len() > MAX_DOMAIN_LEN || !is_host(&self.domain) {
            return Err(CommandError::InvalidTrunkDomain(
                self.domain.chars().take(MAX_DOMAIN_LEN + 8).collect(),
            ));
        }
        check_range(
            BoundedField::TrunkRegistrationExpires,
            self.expires_secs.into(),
            MIN_REGISTRATION_EXPIRES.into(),
            MAX_REGISTRATION_EXPIRES.into(),
        )
    }
}

/// `host:port`: an IPv4 address, a bracketed IPv6 address or a DNS name, then a port
/// 1-65535. The reason in words when not.
pub fn check_host_port(s: &str) -> Result<(), &'static str> {
    const SYNTAX: &str =
        "expected host:port, e.g. 203.0.113.7:5060, [2001:db8::7]:5060 or sip.carrier.example:5060";
    if s.len() > MAX_ADDRESS_LEN {
        return Err("longer than 260 bytes");
    }
    let (host, port) = s.rsplit_once(':').ok_or(SYNTAX)?;
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the port is missing or not a number 1-65535");
    }
    match port.parse::<u32>() {
        Ok(1..=65535) => {}
        _ => return Err("the port must be 1-65535"),
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6
            .parse::<std::net::Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| "the bracketed host is not an IPv6 address");
    }
    if host.contains(':') {
        return Err("an IPv6 address needs brackets: [2001:db8::7]:5060");
    }
    if is_host(host) { Ok(()) } else { Err(SYNTAX) }
}

/// An IPv4 address or a DNS name (labels of letters, digits and `-`, not starting or
/// ending with `-`, 1-63 bytes each, at most 253 in all).
pub fn is_host(host: &str) -> bool {
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return true;
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    !host.is_empty()
        && host.len() <= MAX_DOMAIN_LEN
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
        // All digits and dots, yet no IPv4 address: a mistyped address, not a name.
        && !host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}
