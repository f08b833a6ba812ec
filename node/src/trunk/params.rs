//! What one trunk registration is configured with: the account, the registrar it is
//! sent to and the Contact it registers, and how they are written as SIP URIs.

use std::fmt;
use std::net::SocketAddr;

use crate::sip::transaction::Peer;
use crate::sip::transport::TransportKind;

/// What a registration is configured with.
#[derive(Clone, PartialEq, Eq)]
pub struct Params {
    pub username: String,
    pub password: String,
    /// The registrar's domain: Request-URI `sip:domain`, and the AoR's host.
    pub domain: String,
    /// What we ask for, seconds.
    pub expires_secs: u32,
    /// Where the REGISTERs go (the trunk's address, resolved).
    pub registrar: Peer,
    /// This node's SIP address as the carrier reaches it (Via, Contact).
    pub local: SocketAddr,
}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Params")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("domain", &self.domain)
            .field("expires_secs", &self.expires_secs)
            .field("registrar", &self.registrar)
            .field("local", &self.local)
            .finish()
    }
}

impl Params {
    /// The Contact URI this node registers: the username at our address, so a carrier
    /// that sends calls to the Contact as registered names the account in the
    /// Request-URI.
    pub fn contact_uri(&self) -> String {
        let transport = match self.registrar.transport {
            TransportKind::Udp => "",
            TransportKind::Tcp => ";transport=tcp",
        };
        format!(
            "sip:{}@{}{transport}",
            escape_user(&self.username),
            self.local
        )
    }

    /// Whether `other` names the same binding: account, registrar and contact; only the
    /// password and expiry may differ.
    pub fn same_binding(&self, other: &Params) -> bool {
        self.username == other.username
            && self.domain == other.domain
            && self.registrar == other.registrar
            && self.local == other.local
    }

    /// The address-of-record: `sip:username@domain`.
    pub fn aor(&self) -> String {
        format!("sip:{}@{}", escape_user(&self.username), self.domain)
    }
}

/// Settings that cannot make a REGISTER (the control plane's checks make this rare).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidParams(pub String);

/// Percent-escapes what may not stand in a SIP URI's user part (RFC 3261 §25.1).
fn escape_user(user: &str) -> String {
    let mut out = String::with_capacity(user.len());
    for b in user.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'_'
                    | b'.'
                    | b'!'
                    | b'~'
                    | b'*'
                    | b'\''
                    | b'('
                    | b')'
                    | b'&'
                    | b'='
                    | b'+'
                    | b'$'
                    | b','
                    | b';'
                    | b'?'
                    | b'/'
            )
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
