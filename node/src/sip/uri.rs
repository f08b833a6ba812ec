//! URIs: SIP/SIPS per RFC 3261 19.1 (with IPv6 references per RFC 5118), and any
//! other scheme (tel:, urn:, ...) kept as an opaque string.
//!
//! The original text is kept and serialized unchanged, so a URI passes through a
//! proxy byte for byte; components are parsed once for routing and comparison.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UriError {
    #[error("URI has no scheme")]
    NoScheme,
    #[error("URI scheme is not a valid token")]
    BadScheme,
    #[error("URI contains whitespace or control characters")]
    BadCharacter,
    #[error("URI has no host")]
    NoHost,
    #[error("URI host is invalid")]
    BadHost,
    #[error("URI port is invalid")]
    BadPort,
    #[error("URI has an invalid escape sequence")]
    BadEscape,
    #[error("URI parameter is empty or malformed")]
    BadParam,
    #[error("URI user part is invalid")]
    BadUser,
}

/// The host part of a SIP URI or a Via sent-by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A domain name, lower-cased.
    Domain(String),
    Ip(IpAddr),
}

impl Host {
    /// Parses a host: a domain, an IPv4 address, or an IPv6 reference in brackets.
    /// `allow_bare_v6` accepts an unbracketed IPv6 address (Via `received`, RFC 5118 4.5).
    pub fn parse(s: &str, allow_bare_v6: bool) -> Result<Host, UriError> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(UriError::BadHost)?;
            return parse_v6(inner).map(|a| Host::Ip(IpAddr::V6(a)));
        }
        if allow_bare_v6 && s.contains(':') {
            return parse_v6(s).map(|a| Host::Ip(IpAddr::V6(a)));
        }
        if s.is_empty() {
            return Err(UriError::NoHost);
        }
        if let Ok(v4) = s.parse::<Ipv4Addr>() {
            return Ok(Host::Ip(IpAddr::V4(v4)));
        }
        let valid = s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && !s.starts_with('.')
            && !s.starts_with('-');
        if !valid {
            return Err(UriError::BadHost);
        }
        Ok(Host::Domain(s.to_ascii_lowercase()))
    }
}

/// RFC 5118 4.10: an old ABNF bug let implementations emit `2001:db8:::192.0.2.1`;
/// be liberal and accept it where the standard parser refuses.
fn parse_v6(s: &str) -> Result<Ipv6Addr, UriError> {
    if let Ok(a) = s.parse::<Ipv6Addr>() {
        return Ok(a);
    }
    if s.contains(":::")
        && let Ok(a) = s.replacen(":::", "::", 1).parse::<Ipv6Addr>()
    {
        return Ok(a);
    }
    Err(UriError::BadHost)
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::Ip(IpAddr::V4(a)) => write!(f, "{a}"),
            Host::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
        }
    }
}

/// A URI. For `sip:`/`sips:` the components are parsed; for others only the scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    raw: String,
    scheme: String,
    sip: Option<SipUri>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SipUri {
    user: Option<String>,
    password: Option<String>,
    host: Host,
    host_text: String,
    port: Option<u16>,
    params: Vec<(String, Option<String>)>,
    headers: Vec<(String, String)>,
}

impl Uri {
    pub fn parse(s: &str) -> Result<Uri, UriError> {
        if s.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(UriError::BadCharacter);
        }
        let (scheme, rest) = s.split_once(':').ok_or(UriError::NoScheme)?;
        let scheme_ok = scheme
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if !scheme_ok {
            return Err(UriError::BadScheme);
        }
        let scheme = scheme.to_ascii_lowercase();
        let sip = if scheme == "sip" || scheme == "sips" {
            Some(parse_sip(rest)?)
        } else {
            if rest.is_empty() {
                return Err(UriError::NoHost);
            }
            None
        };
        Ok(Uri {
            raw: s.to_owned(),
            scheme,
            sip,
        })
    }

    /// Builds `sip:user@host[:port]`.
    pub fn sip(user: Option<&str>, host: &str, port: Option<u16>) -> Result<Uri, UriError> {
        let mut s = String::from("sip:");
        if let Some(u) = user {
            s.push_str(u);
            s.push('@');
        }
        s.push_str(host);
        if let Some(p) = port {
            s.push_str(&format!(":{p}"));
        }
        Uri::parse(&s)
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Lower-case scheme, e.g. "sip", "sips", "tel".
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    pub fn is_sip(&self) -> bool {
        self.sip.is_some()
    }

    /// User part as written (still %-escaped).
    pub fn user(&self) -> Option<&str> {
        self.sip.as_ref()?.user.as_deref()
    }

    /// User part with %-escapes decoded; `None` if absent or not UTF-8 once decoded.
    pub fn user_unescaped(&self) -> Option<String> {
        unescape(self.user()?).ok()
    }

    pub fn password(&self) -> Option<&str> {
        self.sip.as_ref()?.password.as_deref()
    }

    /// Host text as written (IPv6 with brackets); empty for non-SIP URIs.
    pub fn host(&self) -> &str {
        self.sip.as_ref().map_or("", |s| s.host_text.as_str())
    }

    pub fn host_parsed(&self) -> Option<&Host> {
        self.sip.as_ref().map(|s| &s.host)
    }

    pub fn port(&self) -> Option<u16> {
        self.sip.as_ref()?.port
    }

    pub fn params(&self) -> &[(String, Option<String>)] {
        self.sip.as_ref().map_or(&[], |s| s.params.as_slice())
    }

    /// A URI parameter by case-insensitive name: `Some(None)` for a flag like `;lr`.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params()
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    pub fn headers(&self) -> &[(String, String)] {
        self.sip.as_ref().map_or(&[], |s| s.headers.as_slice())
    }

    /// The address-of-record key: `scheme:user@host` with user unescaped, host lower-case,
    /// no port or parameters (RFC 3261 10.3 step 5 canonicalization).
    pub fn aor(&self) -> String {
        match &self.sip {
            Some(s) => {
                let user = s
                    .user
                    .as_deref()
                    .map(|u| unescape(u).unwrap_or_else(|_| u.to_owned()));
                match user {
                    Some(u) => format!("sip:{}@{}", u, s.host),
                    None => format!("sip:{}", s.host),
                }
            }
            None => self.raw.clone(),
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

fn parse_sip(rest: &str) -> Result<SipUri, UriError> {
    // '@' cannot appear unescaped in the host, parameters or headers, so the first one
    // ends the userinfo (this is what lets `semiuri`'s user part contain ';').
    let (userinfo, hostpart) = match rest.split_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    let (user, password) = match userinfo {
        Some(ui) => {
            let (u, p) = match ui.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (ui, None),
            };
            if u.is_empty() {
                return Err(UriError::BadUser);
            }
            check_escapes(u)?;
            if let Some(p) = p {
                check_escapes(p)?;
            }
            (Some(u.to_owned()), p.map(str::to_owned))
        }
        None => (None, None),
    };
    let (before_headers, headers_part) = match hostpart.split_once('?') {
        Some((a, b)) => (a, Some(b)),
        None => (hostpart, None),
    };
    let mut parts = before_headers.split(';');
    let hostport = parts.next().unwrap_or("");
    let (host_text, port) = split_hostport(hostport)?;
    let host = Host::parse(host_text, false)?;
    let mut params = Vec::new();
    for p in parts {
        if p.is_empty() {
            return Err(UriError::BadParam);
        }
        check_escapes(p)?;
        let (k, v) = match p.split_once('=') {
            Some((k, v)) => (k, Some(v.to_owned())),
            None => (p, None),
        };
        if k.is_empty() {
            return Err(UriError::BadParam);
        }
        params.push((k.to_owned(), v));
    }
    let mut headers = Vec::new();
    if let Some(hp) = headers_part {
        for h in hp.split('&') {
            check_escapes(h)?;
            let (k, v) = h.split_once('=').ok_or(UriError::BadParam)?;
            if k.is_empty() {
                return Err(UriError::BadParam);
            }
            headers.push((k.to_owned(), v.to_owned()));
        }
    }
    Ok(SipUri {
        user,
        password,
        host,
        host_text: host_text.to_owned(),
        port,
        params,
        headers,
    })
}

/// Splits `host[:port]` where host may be an IPv6 reference in brackets.
pub fn split_hostport(s: &str) -> Result<(&str, Option<u16>), UriError> {
    let (host, port) = if s.starts_with('[') {
        let end = s.find(']').ok_or(UriError::BadHost)?;
        let (h, rest) = s.split_at(end + 1);
        match rest {
            "" => (h, None),
            r => (h, Some(r.strip_prefix(':').ok_or(UriError::BadPort)?)),
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err(UriError::NoHost);
    }
    let port = match port {
        None => None,
        Some(p) => {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(UriError::BadPort);
            }
            Some(p.parse::<u16>().map_err(|_| UriError::BadPort)?)
        }
    };
    Ok((host, port))
}

fn check_escapes(s: &str) -> Result<(), UriError> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let ok = b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !ok {
                return Err(UriError::BadEscape);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// Decodes %HH escapes. Fails on a malformed escape or if the result is not UTF-8.
pub fn unescape(s: &str) -> Result<String, UriError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or(UriError::BadEscape)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| UriError::BadEscape)?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UriError::BadEscape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uri_components() {
        let u = Uri::parse("sip:alice:secret@Example.COM:5070;transport=tcp;lr?subject=x").unwrap();
        assert_eq!(u.scheme(), "sip");
        assert_eq!(u.user(), Some("alice"));
        assert_eq!(u.password(), Some("secret"));
        assert_eq!(u.host(), "Example.COM");
        assert_eq!(u.port(), Some(5070));
        assert_eq!(u.param("TRANSPORT"), Some(Some("tcp")));
        assert_eq!(u.param("lr"), Some(None));
        assert_eq!(u.headers().len(), 1);
        assert_eq!(u.aor(), "sip:alice@example.com");
    }

    #[test]
    fn semicolon_in_user_part() {
        let u = Uri::parse("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.user(), Some("user;par=u%40example.net"));
        assert_eq!(u.host(), "example.com");
    }

    #[test]
    fn ipv6_references() {
        let u = Uri::parse("sip:user@[2001:db8::10]:5070").unwrap();
        assert_eq!(u.port(), Some(5070));
        let u = Uri::parse("sip:user@[2001:db8::10:5070]").unwrap();
        assert_eq!(u.port(), None);
        assert!(Uri::parse("sip:user@2001:db8::10").is_err());
        assert!(Uri::parse("sip:[2001:db8:::192.0.2.1]").is_ok());
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape("null-%00-null").unwrap(), "null-\0-null");
        assert!(Uri::parse("sip:a%4@b").is_err());
        let u = Uri::parse("sip:sips%3Auser%40example.com@example.net").unwrap();
        assert_eq!(u.user_unescaped().unwrap(), "sips:user@example.com");
    }

    #[test]
    fn other_schemes_are_opaque() {
        let u = Uri::parse("tel:+1-201-555-0123").unwrap();
        assert_eq!(u.scheme(), "tel");
        assert!(!u.is_sip());
        assert!(Uri::parse("sip user@x").is_err());
        assert!(Uri::parse("nocolon").is_err());
    }
}
