//! Trusted sources of trunks: the addresses whose calls are taken as a carrier's without
//! digest authentication. Written as an exact `IP:port`, an `IP`, or a CIDR network.
//!
//! Stored in canonical form only (what [`TrustedSource`]'s `Display` writes: lowercase,
//! compressed IPv6, IPv4 instead of IPv4-mapped IPv6, no host bits in a network), so
//! two trunks claiming one source are found by comparing strings, and every replica
//! and node reads them alike. The admin API canonicalizes what it is given
//! ([`TrustedSource::canonical`]).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Shortest IPv4 prefix accepted: a wider network would trust a good part of the
/// internet (`0.0.0.0/0` trusts everyone).
pub const MIN_PREFIX_V4: u8 = 8;
/// Shortest IPv6 prefix accepted (a /32 is a whole provider's allocation).
pub const MIN_PREFIX_V6: u8 = 32;

/// One parsed trusted source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrustedSource {
    /// Exactly this address and port.
    Addr(SocketAddr),
    /// This address, any port.
    Ip(IpAddr),
    /// Any address in `network/prefix` (`network` has no host bits).
    Net { network: IpAddr, prefix: u8 },
}

/// Why a trusted source was refused, in words for the error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceError {
    Syntax,
    PortZero,
    PrefixTooLong,
    PrefixTooShort,
    HostBits,
    Unspecified,
}

impl SourceError {
    pub fn reason(self) -> &'static str {
        match self {
            SourceError::Syntax => {
                "expected an IP (203.0.113.7), an IP:port (203.0.113.7:5060, [2001:db8::7]:5060) or a CIDR network (203.0.113.0/24)"
            }
            SourceError::PortZero => "port 0 is no source port",
            SourceError::PrefixTooLong => "the prefix length is over 32 (IPv4) or 128 (IPv6)",
            SourceError::PrefixTooShort => {
                "the network is too wide: at least /8 for IPv4 and /32 for IPv6"
            }
            SourceError::HostBits => {
                "the network has host bits set: write the network address (e.g. 203.0.113.0/24)"
            }
            SourceError::Unspecified => "an unspecified (0.0.0.0 or ::) address is no source",
        }
    }
}

impl TrustedSource {
    /// Parses any accepted spelling (IPv4-mapped IPv6 becomes IPv4).
    pub fn parse(s: &str) -> Result<TrustedSource, SourceError> {
        let s = s.trim();
        let source = if let Some((net, prefix)) = s.split_once('/') {
            let ip: IpAddr = net.parse().map_err(|_| SourceError::Syntax)?;
            if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(SourceError::Syntax);
            }
            let prefix: u8 = prefix.parse().map_err(|_| SourceError::Syntax)?;
            let (ip, prefix) = match ip {
                IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                    Some(v4) if prefix >= 96 => (IpAddr::V4(v4), prefix - 96),
                    _ => (ip, prefix),
                },
                IpAddr::V4(_) => (ip, prefix),
            };
            let (max, min) = match ip {
                IpAddr::V4(_) => (32, MIN_PREFIX_V4),
                IpAddr::V6(_) => (128, MIN_PREFIX_V6),
            };
            if prefix > max {
                return Err(SourceError::PrefixTooLong);
            }
            if prefix < min {
                return Err(SourceError::PrefixTooShort);
            }
            if network_of(ip, prefix) != ip {
                return Err(SourceError::HostBits);
            }
            TrustedSource::Net {
                network: ip,
                prefix,
            }
        } else if let Ok(ip) = s.parse::<IpAddr>() {
            TrustedSource::Ip(ip.to_canonical())
        } else if let Ok(addr) = s.parse::<SocketAddr>() {
            if addr.port() == 0 {
                return Err(SourceError::PortZero);
            }
            TrustedSource::Addr(SocketAddr::new(addr.ip().to_canonical(), addr.port()))
        } else {
            return Err(SourceError::Syntax);
        };
        if source.ip().is_unspecified() {
            return Err(SourceError::Unspecified);
        }
        Ok(source)
    }

    /// The canonical spelling of `s`, if it is a valid source.
    pub fn canonical(s: &str) -> Result<String, SourceError> {
        TrustedSource::parse(s).map(|t| t.to_string())
    }

    /// The address (or network address).
    pub fn ip(&self) -> IpAddr {
        match *self {
            TrustedSource::Addr(a) => a.ip(),
            TrustedSource::Ip(ip) => ip,
            TrustedSource::Net { network, .. } => network,
        }
    }

    /// Whether a packet from `source` matches.
    pub fn matches(&self, source: SocketAddr) -> bool {
        let ip = source.ip().to_canonical();
        match *self {
            TrustedSource::Addr(a) => a.ip() == ip && a.port() == source.port(),
            TrustedSource::Ip(own) => own == ip,
            TrustedSource::Net { network, prefix } => {
                network.is_ipv4() == ip.is_ipv4() && network_of(ip, prefix) == network
            }
        }
    }
}

impl fmt::Display for TrustedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrustedSource::Addr(a) => write!(f, "{a}"),
            TrustedSource::Ip(ip) => write!(f, "{ip}"),
            TrustedSource::Net { network, prefix } => write!(f, "{network}/{prefix}"),
        }
    }
}

/// `ip` with all but its first `prefix` bits cleared (`prefix` at most the address's
/// length).
pub fn network_of(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits & m))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & m))
        }
    }
}
