//! Typed views of the headers a proxy, registrar or B2BUA needs: Via, name-addr
//! headers (From, To, Contact, Route, Record-Route), CSeq, Call-ID, Max-Forwards,
//! Expires, and comma-separated lists. Each parses a header value on demand.

use std::fmt::{self, Write as _};

use thiserror::Error;

use super::message::Method;
use super::uri::{Host, Uri, UriError, split_hostport};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HeaderError {
    #[error("Missing {0} header")]
    Missing(&'static str),
    #[error("More than one {0} header")]
    Repeated(&'static str),
    #[error("Malformed {header} header: {why}")]
    Malformed {
        header: &'static str,
        why: &'static str,
    },
    #[error("Malformed {header} header: {source}")]
    BadUri {
        header: &'static str,
        source: UriError,
    },
}

impl HeaderError {
    fn malformed(header: &'static str, why: &'static str) -> HeaderError {
        HeaderError::Malformed { header, why }
    }

    /// Names the header an error came from (name-addr parsing does not know it).
    pub fn in_header(self, name: &'static str) -> HeaderError {
        match self {
            HeaderError::Malformed { why, .. } => HeaderError::Malformed { header: name, why },
            HeaderError::BadUri { source, .. } => HeaderError::BadUri {
                header: name,
                source,
            },
            other => other,
        }
    }
}

pub(crate) fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Splits a comma-separated header value, ignoring commas inside quoted strings and
/// `<...>`. An empty value gives no elements; an empty element is an error.
pub fn split_list(value: &str) -> Result<Vec<&str>, HeaderError> {
    let mut out = Vec::new();
    if value.trim().is_empty() {
        return Ok(out);
    }
    let b = value.as_bytes();
    let (mut start, mut i) = (0, 0);
    let (mut in_quote, mut in_angle) = (false, false);
    while i < b.len() {
        match b[i] {
            b'\\' if in_quote => i += 1,
            b'"' if !in_angle => in_quote = !in_quote,
            b'<' if !in_quote => in_angle = true,
            b'>' if !in_quote => in_angle = false,
            b',' if !in_quote && !in_angle => {
                out.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if in_quote {
        return Err(HeaderError::malformed("list", "unterminated quoted string"));
    }
    out.push(value[start..].trim());
    if out.iter().any(|e| e.is_empty()) {
        return Err(HeaderError::malformed("list", "empty list element"));
    }
    Ok(out)
}

/// Header parameters (`;name[=value]`), values kept as written (quotes included).
pub type Params = Vec<(String, Option<String>)>;

/// Looks a parameter up by case-insensitive name: `Some(None)` for a flag.
pub fn param<'a>(params: &'a Params, name: &str) -> Option<Option<&'a str>> {
    params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_deref())
}

/// Removes surrounding quotes and backslash escapes from a quoted-string.
pub fn unquote(s: &str) -> String {
    match s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                } else {
                    out.push(c);
                }
            }
            out
        }
        None => s.to_owned(),
    }
}

/// Reads a quoted-string starting at `b[i] == '"'`; returns the index after the
/// closing quote.
fn quoted_end(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Parses `*( SWS ";" SWS name [ SWS "=" SWS value ] )` to the end of `s`.
pub fn parse_params(s: &str, header: &'static str) -> Result<Params, HeaderError> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Params::new();
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && is_ws(b[*i]) {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i == b.len() {
            return Ok(out);
        }
        if b[i] != b';' {
            return Err(HeaderError::malformed(
                header,
                "expected ';' before parameter",
            ));
        }
        i += 1;
        skip_ws(&mut i);
        let start = i;
        while i < b.len() && is_token_char(b[i]) {
            i += 1;
        }
        if start == i {
            return Err(HeaderError::malformed(header, "empty parameter name"));
        }
        let name = &s[start..i];
        skip_ws(&mut i);
        let mut value = None;
        if i < b.len() && b[i] == b'=' {
            i += 1;
            skip_ws(&mut i);
            let vstart = i;
            if i < b.len() && b[i] == b'"' {
                i = quoted_end(b, i)
                    .ok_or(HeaderError::malformed(header, "unterminated quoted string"))?;
            } else {
                while i < b.len() && !is_ws(b[i]) && b[i] != b';' && b[i] != b',' {
                    i += 1;
                }
            }
            if vstart == i {
                return Err(HeaderError::malformed(header, "empty parameter value"));
            }
            value = Some(s[vstart..i].to_owned());
        }
        if param(&out, name).is_some() {
            return Err(HeaderError::malformed(header, "repeated parameter"));
        }
        out.push((name.to_owned(), value));
    }
}

fn write_params(f: &mut fmt::Formatter<'_>, params: &Params) -> fmt::Result {
    for (k, v) in params {
        match v {
            Some(v) => write!(f, ";{k}={v}")?,
            None => write!(f, ";{k}")?,
        }
    }
    Ok(())
}

/// One Via entry (RFC 3261 20.42, RFC 3581 `rport`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// e.g. "SIP/2.0"
    pub protocol: String,
    /// Upper-case transport, e.g. "UDP", "TCP", "TLS".
    pub transport: String,
    pub host: Host,
    pub host_text: String,
    pub port: Option<u16>,
    pub params: Params,
}

impl Via {
    pub fn parse(s: &str) -> Result<Via, HeaderError> {
        const H: &str = "Via";
        let b = s.as_bytes();
        let mut i = 0;
        let mut parts = Vec::with_capacity(3);
        for n in 0..3 {
            while i < b.len() && is_ws(b[i]) {
                i += 1;
            }
            let start = i;
            while i < b.len() && is_token_char(b[i]) {
                i += 1;
            }
            if start == i {
                return Err(HeaderError::malformed(H, "bad sent-protocol"));
            }
            parts.push(&s[start..i]);
            while i < b.len() && is_ws(b[i]) {
                i += 1;
            }
            if n < 2 {
                if i >= b.len() || b[i] != b'/' {
                    return Err(HeaderError::malformed(H, "bad sent-protocol"));
                }
                i += 1;
            }
        }
        if !parts[0].eq_ignore_ascii_case("SIP") {
            return Err(HeaderError::malformed(H, "protocol is not SIP"));
        }
        let sent_by_start = i;
        let end = s[i..].find(';').map_or(s.len(), |p| i + p);
        if sent_by_start == end {
            return Err(HeaderError::malformed(H, "missing sent-by"));
        }
        // sent-by = host [ SWS ":" SWS port ]
        let sent_by: String = s[sent_by_start..end]
            .bytes()
            .filter(|b| !is_ws(*b))
            .map(char::from)
            .collect();
        let (host_text, port) =
            split_hostport(&sent_by).map_err(|source| HeaderError::BadUri { header: H, source })?;
        let host = Host::parse(host_text, false)
            .map_err(|source| HeaderError::BadUri { header: H, source })?;
        let params = parse_params(&s[end..], H)?;
        if let Some(Some(rport)) = param(&params, "rport")
            && rport.parse::<u16>().is_err()
        {
            return Err(HeaderError::malformed(H, "rport is not a port number"));
        }
        Ok(Via {
            protocol: format!("{}/{}", parts[0], parts[1]),
            transport: parts[2].to_ascii_uppercase(),
            host_text: host_text.to_owned(),
            host,
            port,
            params,
        })
    }

    pub fn branch(&self) -> Option<&str> {
        param(&self.params, "branch").flatten()
    }

    pub fn received(&self) -> Option<&str> {
        param(&self.params, "received").flatten()
    }

    /// `None`: no rport; `Some(None)`: rport requested (RFC 3581); `Some(Some(p))`: filled.
    pub fn rport(&self) -> Option<Option<u16>> {
        param(&self.params, "rport").map(|v| v.and_then(|p| p.parse().ok()))
    }

    /// Sets or replaces a parameter.
    pub fn set_param(&mut self, name: &str, value: Option<String>) {
        match self
            .params
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
        {
            Some(p) => p.1 = value,
            None => self.params.push((name.to_owned(), value)),
        }
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} {}", self.protocol, self.transport, self.host_text)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write_params(f, &self.params)
    }
}

/// `[display-name] <uri> *(;param)` or `addr-spec *(;param)` (From, To, Contact, Route).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name, unquoted and unescaped.
    pub display: Option<String>,
    pub uri: Uri,
    pub params: Params,
}

impl NameAddr {
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr {
            display: None,
            uri,
            params: Params::new(),
        }
    }

    pub fn parse(s: &str) -> Result<NameAddr, HeaderError> {
        const H: &str = "address";
        let s = s.trim();
        let b = s.as_bytes();
        let bad_uri = |source| HeaderError::BadUri { header: H, source };
        let (display, uri_start) = if b.first() == Some(&b'"') {
            let end =
                quoted_end(b, 0).ok_or(HeaderError::malformed(H, "unterminated quoted string"))?;
            let rest = s[end..].trim_start();
            if !rest.starts_with('<') {
                return Err(HeaderError::malformed(
                    H,
                    "display name not followed by <URI>",
                ));
            }
            (Some(unquote(&s[..end])), s.len() - rest.len())
        } else if let Some(lt) = s.find('<') {
            let name = s[..lt].trim();
            if !name
                .split([' ', '\t'])
                .filter(|w| !w.is_empty())
                .all(is_token)
            {
                return Err(HeaderError::malformed(
                    H,
                    "display name must be tokens or quoted",
                ));
            }
            ((!name.is_empty()).then(|| name.to_owned()), lt)
        } else {
            // addr-spec: parameters after ';' belong to the header (RFC 3261 20.10),
            // and the URI may not contain ',', ';' or '?'.
            let end = s.find(';').unwrap_or(s.len());
            let uri_text = s[..end].trim_end();
            if uri_text.contains(['?', ',']) {
                return Err(HeaderError::malformed(
                    H,
                    "URI with '?' or ',' must be enclosed in <>",
                ));
            }
            let uri = Uri::parse(uri_text).map_err(bad_uri)?;
            let params = parse_params(&s[end..], H)?;
            return Ok(NameAddr {
                display: None,
                uri,
                params,
            });
        };
        let gt = s[uri_start..]
            .find('>')
            .map(|p| uri_start + p)
            .ok_or(HeaderError::malformed(H, "missing '>'"))?;
        let uri = Uri::parse(&s[uri_start + 1..gt]).map_err(bad_uri)?;
        let params = parse_params(&s[gt + 1..], H)?;
        Ok(NameAddr {
            display,
            uri,
            params,
        })
    }

    pub fn tag(&self) -> Option<&str> {
        param(&self.params, "tag").flatten()
    }

    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        param(&self.params, name)
    }

    /// Contact `expires` parameter; values past 2^32-1 saturate, junk is an error.
    pub fn expires(&self) -> Result<Option<u32>, HeaderError> {
        match self.param("expires") {
            None => Ok(None),
            Some(None) => Err(HeaderError::malformed("Contact", "expires without value")),
            Some(Some(v)) => parse_delta_seconds(v, "Contact").map(Some),
        }
    }

    /// Contact `q` parameter in thousandths (0..=1000); RFC 3261 qvalue grammar.
    pub fn q(&self) -> Result<Option<u16>, HeaderError> {
        let Some(v) = self.param("q") else {
            return Ok(None);
        };
        let v = v.ok_or(HeaderError::malformed("Contact", "q without value"))?;
        parse_qvalue(v).map(Some).ok_or(HeaderError::malformed(
            "Contact",
            "q must be 0..1 with up to 3 decimals",
        ))
    }
}

fn parse_qvalue(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths = 0u16;
    for (i, d) in frac.bytes().enumerate() {
        thousandths += u16::from(d - b'0') * [100, 10, 1][i];
    }
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            f.write_char('"')?;
            for c in d.chars() {
                if c == '"' || c == '\\' {
                    f.write_char('\\')?;
                }
                f.write_char(c)?;
            }
            f.write_str("\" ")?;
        }
        write!(f, "<{}>", self.uri)?;
        write_params(f, &self.params)
    }
}

/// The Contact header set: `*` (remove all bindings) or a list of addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactList {
    Wildcard,
    Addrs(Vec<NameAddr>),
}

impl ContactList {
    pub fn parse(elements: &[&str]) -> Result<ContactList, HeaderError> {
        if elements.contains(&"*") {
            if elements.len() != 1 {
                return Err(HeaderError::malformed(
                    "Contact",
                    "'*' must be the only contact",
                ));
            }
            return Ok(ContactList::Wildcard);
        }
        elements
            .iter()
            .map(|e| NameAddr::parse(e).map_err(|e| e.in_header("Contact")))
            .collect::<Result<_, _>>()
            .map(ContactList::Addrs)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    pub fn parse(s: &str) -> Result<CSeq, HeaderError> {
        const H: &str = "CSeq";
        let s = s.trim();
        let (num, method) = s
            .split_once([' ', '\t'])
            .ok_or(HeaderError::malformed(H, "expected number and method"))?;
        let method = method.trim();
        if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
            return Err(HeaderError::malformed(H, "sequence number is not a number"));
        }
        // RFC 3261 8.1.1.5: the sequence number MUST be less than 2^31.
        let seq = num
            .parse::<u32>()
            .ok()
            .filter(|n| *n < 1 << 31)
            .ok_or(HeaderError::malformed(H, "sequence number out of range"))?;
        if !is_token(method) {
            return Err(HeaderError::malformed(H, "method is not a token"));
        }
        Ok(CSeq {
            seq,
            method: Method::from_token(method),
        })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

pub fn parse_call_id(v: &str) -> Result<&str, HeaderError> {
    let v = v.trim();
    if v.is_empty() || v.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(HeaderError::malformed(
            "Call-ID",
            "must be one word without spaces",
        ));
    }
    Ok(v)
}

pub fn parse_max_forwards(v: &str) -> Result<u8, HeaderError> {
    let v = v.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HeaderError::malformed("Max-Forwards", "not a number"));
    }
    v.parse::<u8>()
        .map_err(|_| HeaderError::malformed("Max-Forwards", "must be 0..255"))
}

/// delta-seconds; values past 2^32-1 are taken as 2^32-1 (RFC 3261 8.3 spirit).
pub fn parse_delta_seconds(v: &str, header: &'static str) -> Result<u32, HeaderError> {
    let v = v.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HeaderError::malformed(
            header,
            "expiry is not a number of seconds",
        ));
    }
    Ok(v.parse::<u64>()
        .map_or(u32::MAX, |n| n.min(u64::from(u32::MAX)) as u32))
}

/// Rewrites the first Via entry of the first Via line (for `received`/`rport`).
pub fn replace_top_via(first_line: &str, via: &Via) -> Result<String, HeaderError> {
    let elems = split_list(first_line)?;
    let mut out = String::new();
    let _ = write!(out, "{via}");
    for e in elems.iter().skip(1) {
        let _ = write!(out, ", {e}");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_with_whitespace_everywhere() {
        let v =
            Via::parse("SIP  /   2.0 /  UDP 192.0.2.2 : 5060 ;  branch = z9hG4bK390skdjuw;rport")
                .unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.port, Some(5060));
        assert_eq!(v.branch(), Some("z9hG4bK390skdjuw"));
        assert_eq!(v.rport(), Some(None));
        assert_eq!(
            v.to_string(),
            "SIP/2.0/UDP 192.0.2.2:5060;branch=z9hG4bK390skdjuw;rport"
        );
    }

    #[test]
    fn via_rejects_empty_params() {
        assert!(Via::parse("SIP/2.0/UDP 192.0.2.15;;,;,,").is_err());
        assert!(split_list("SIP/2.0/UDP a;branch=1, ,x").is_err());
        assert!(Via::parse("SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255").is_ok());
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(
            r#""J Rosenberg \\\""       <sip:jdrosen@example.com> ; tag = 98asjd8"#,
        )
        .unwrap();
        assert_eq!(n.display.as_deref(), Some("J Rosenberg \\\""));
        assert_eq!(n.tag(), Some("98asjd8"));
        let n =
            NameAddr::parse("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert_eq!(n.tag(), Some("1918181833n"));
        let n = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(n.display.as_deref(), Some("caller"));
        assert!(NameAddr::parse("Bell, Alexander <sip:a.g.bell@example.com>;tag=43").is_err());
        assert!(NameAddr::parse("\"Watson, Thomas\" < sip:t.watson@example.org >").is_err());
        assert!(NameAddr::parse("\"Mr. J. User <sip:j.user@example.com>").is_err());
        assert!(NameAddr::parse("sip:user@example.com?Route=%3Csip:sip.example.com%3E").is_err());
    }

    #[test]
    fn contact_params() {
        let n = NameAddr::parse("<sip:a@b>;expires=280297596632815;q=0.5").unwrap();
        assert_eq!(n.expires().unwrap(), Some(u32::MAX));
        assert_eq!(n.q().unwrap(), Some(500));
        assert!(NameAddr::parse("<sip:a@b>;q=1.5").unwrap().q().is_err());
        assert_eq!(ContactList::parse(&["*"]).unwrap(), ContactList::Wildcard);
        assert!(ContactList::parse(&["*", "<sip:a@b>"]).is_err());
    }

    #[test]
    fn cseq_rules() {
        assert_eq!(CSeq::parse("0009 INVITE").unwrap().seq, 9);
        assert!(CSeq::parse("36893488147419103232 INVITE").is_err());
        assert!(CSeq::parse("2147483648 INVITE").is_err());
        assert!(CSeq::parse("-1 INVITE").is_err());
    }

    #[test]
    fn list_respects_quotes_and_angles() {
        let l = split_list(r#""a,b" <sip:x@y;p=1,2>, <sip:z@w>"#).unwrap();
        assert_eq!(l.len(), 2);
        assert!(split_list("").unwrap().is_empty());
    }
}
