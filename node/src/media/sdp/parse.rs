//! Reading SDP: [`SessionDescription::parse`] checks each line (structure, types, fields,
//! the attributes we interpret) and builds the description, naming the 1-based line of
//! any error. The value checks are shared with the setters, which call them with line 0.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::write::{media_rank, session_rank};
use super::{
    AddressType, Attribute, Connection, Direction, Line, MAX_MEDIA, MAX_SDP_LEN, MediaDescription,
    MediaKind, Origin, Rtcp, RtpMap, SdpError, SessionDescription,
};

impl SessionDescription {
    /// Parses an SDP body; see the module documentation for what is accepted.
    pub fn parse(text: &str) -> Result<Self, SdpError> {
        if text.len() > MAX_SDP_LEN {
            return Err(SdpError::TooLarge {
                len: text.len(),
                max: MAX_SDP_LEN,
            });
        }
        let mut lines: Vec<&str> = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect();
        // SIP stacks often end a body with an extra CRLF; only trailing blank lines are fine.
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        if lines.is_empty() {
            return Err(SdpError::Empty);
        }
        let mut parser = Parser::default();
        for (i, line) in lines.iter().enumerate() {
            parser.line(i + 1, line)?;
        }
        parser.finish()
    }
}

impl FromStr for SessionDescription {
    type Err = SdpError;

    fn from_str(s: &str) -> Result<Self, SdpError> {
        SessionDescription::parse(s)
    }
}

/// What one section (session or media) has seen so far.
#[derive(Debug, Default)]
pub(super) struct SectionState {
    /// One bit per type letter allowed once per section.
    seen: u32,
    /// One bit per payload type with an `a=rtpmap`.
    rtpmaps: u128,
    direction: bool,
}

impl SectionState {
    fn once(&mut self, line: usize, kind: u8) -> Result<(), SdpError> {
        let bit = 1u32 << (kind.to_ascii_lowercase() - b'a');
        if self.seen & bit != 0 {
            return Err(SdpError::Duplicate {
                line,
                kind: char::from(kind),
            });
        }
        self.seen |= bit;
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Parser {
    origin: Option<Origin>,
    session_name: Option<String>,
    connection: Option<Connection>,
    lines: Vec<Line>,
    attributes: Vec<Attribute>,
    has_time: bool,
    previous: u8,
    section: SectionState,
    media: Vec<MediaDescription>,
    /// Line number of each m= line, for errors found at the end.
    media_lines: Vec<usize>,
}

impl Parser {
    fn line(&mut self, line: usize, text: &str) -> Result<(), SdpError> {
        if line == 1 {
            let Some(version) = text.strip_prefix("v=") else {
                return Err(SdpError::VersionNotFirst {
                    found: snippet(text),
                });
            };
            if version != "0" {
                return Err(SdpError::UnsupportedVersion {
                    line,
                    version: snippet(version),
                });
            }
            self.previous = b'v';
            return Ok(());
        }
        if text.is_empty() {
            return Err(SdpError::EmptyLine { line });
        }
        if text.contains(['\r', '\0']) {
            return Err(SdpError::ControlCharacter { line });
        }
        let (kind, value) = match text.as_bytes() {
            [k, b'=', ..] if k.is_ascii_alphabetic() => (*k, text.get(2..).unwrap_or_default()),
            _ => {
                return Err(SdpError::NotTypeValue {
                    line,
                    found: snippet(text),
                });
            }
        };
        match kind {
            b'v' => {
                return Err(SdpError::Duplicate { line, kind: 'v' });
            }
            b'm' => self.media_line(line, value)?,
            _ if self.media.is_empty() => self.session_field(line, kind, value)?,
            _ => self.media_field(line, kind, value)?,
        }
        self.previous = kind;
        Ok(())
    }

    fn session_field(&mut self, line: usize, kind: u8, value: &str) -> Result<(), SdpError> {
        let st = &mut self.section;
        match kind {
            b'o' => {
                st.once(line, kind)?;
                self.origin = Some(parse_origin(line, value)?);
            }
            b's' => {
                st.once(line, kind)?;
                self.session_name = Some(value.to_owned());
            }
            b'c' => {
                st.once(line, kind)?;
                self.connection = Some(parse_connection(line, value)?);
            }
            b'a' => {
                let attribute = parse_attribute(line, value, false, st)?;
                self.attributes.push(attribute);
            }
            b'i' | b'u' | b'k' | b'e' | b'p' | b'b' | b't' | b'r' | b'z' => {
                match kind {
                    b'i' | b'u' | b'k' => st.once(line, kind)?,
                    b't' => {
                        parse_time(line, value)?;
                        self.has_time = true;
                    }
                    b'r' if !matches!(self.previous, b't' | b'r') => {
                        return Err(SdpError::NotAfterTime { line, kind: 'r' });
                    }
                    b'z' => {
                        st.once(line, kind)?;
                        if !self.has_time {
                            return Err(SdpError::NotAfterTime { line, kind: 'z' });
                        }
                    }
                    _ => {}
                }
                self.lines.push(Line {
                    kind,
                    value: value.to_owned(),
                });
            }
            _ => {
                return Err(SdpError::UnknownType {
                    line,
                    kind: char::from(kind),
                });
            }
        }
        Ok(())
    }

    fn media_line(&mut self, line: usize, value: &str) -> Result<(), SdpError> {
        if self.media.len() >= MAX_MEDIA {
            return Err(SdpError::TooManyMedia {
                line,
                max: MAX_MEDIA,
            });
        }
        self.media.push(parse_media(line, value)?);
        self.media_lines.push(line);
        self.section = SectionState::default();
        Ok(())
    }

    fn media_field(&mut self, line: usize, kind: u8, value: &str) -> Result<(), SdpError> {
        let Some(media) = self.media.last_mut() else {
            return Ok(());
        };
        let st = &mut self.section;
        match kind {
            b'c' => {
                st.once(line, kind)?;
                media.connection = Some(parse_connection(line, value)?);
            }
            b'a' => {
                let rtp = media.is_rtp();
                let attribute = parse_attribute(line, value, rtp, st)?;
                media.attributes.push(attribute);
            }
            b'i' | b'k' | b'b' => {
                if kind != b'b' {
                    st.once(line, kind)?;
                }
                media.lines.push(Line {
                    kind,
                    value: value.to_owned(),
                });
            }
            b'o' | b's' | b'u' | b'e' | b'p' | b't' | b'r' | b'z' => {
                return Err(SdpError::SessionLineInMedia {
                    line,
                    kind: char::from(kind),
                });
            }
            _ => {
                return Err(SdpError::UnknownType {
                    line,
                    kind: char::from(kind),
                });
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Result<SessionDescription, SdpError> {
        let origin = self.origin.ok_or(SdpError::Missing { kind: 'o' })?;
        let session_name = self.session_name.ok_or(SdpError::Missing { kind: 's' })?;
        if !self.has_time {
            return Err(SdpError::Missing { kind: 't' });
        }
        if self.connection.is_none() {
            let orphan = self.media.iter().position(|m| m.connection.is_none());
            if let Some(index) = orphan {
                return Err(SdpError::NoConnection {
                    line: self.media_lines.get(index).copied().unwrap_or_default(),
                    index,
                });
            }
        }
        // Out-of-order optional lines are stored in RFC order, so the structure is the
        // same whether it was parsed from a peer's text or from our canonical output.
        self.lines.sort_by_key(|l| session_rank(l.kind));
        for m in &mut self.media {
            m.lines.sort_by_key(|l| media_rank(l.kind));
        }
        Ok(SessionDescription {
            origin,
            session_name,
            connection: self.connection,
            lines: self.lines,
            attributes: self.attributes,
            media: self.media,
        })
    }
}

/// At most 64 characters of `s`, for error messages.
pub(super) fn snippet(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((end, _)) => format!("{}…", s.get(..end).unwrap_or_default()),
        None => s.to_owned(),
    }
}

/// RFC 8866 §9 `token`.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`{|}~".contains(&b))
}

/// Digits only: `u64::from_str` would also take a leading `+`.
fn decimal<T: FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// An RTP payload type: 0-127 (the 7-bit PT field).
pub(super) fn payload_type(s: &str) -> Option<u8> {
    decimal::<u8>(s).filter(|&pt| pt <= 127)
}

pub(super) fn is_rtp_proto(proto: &str) -> bool {
    proto.split('/').any(|part| part == "RTP")
}

fn parse_address_type(line: usize, field: &'static str, s: &str) -> Result<AddressType, SdpError> {
    match s {
        "IP4" => Ok(AddressType::Ip4),
        "IP6" => Ok(AddressType::Ip6),
        _ => Err(SdpError::Field {
            line,
            field,
            expected: "IP4 or IP6",
            found: snippet(s),
        }),
    }
}

fn expect_in(line: usize, field: &'static str, s: &str) -> Result<(), SdpError> {
    if s == "IN" {
        Ok(())
    } else {
        Err(SdpError::Field {
            line,
            field,
            expected: "IN",
            found: snippet(s),
        })
    }
}

/// An IP address of type `ty`; a name gets its own error since it is a common mistake.
fn parse_ip(
    line: usize,
    field: &'static str,
    ty: AddressType,
    s: &str,
) -> Result<IpAddr, SdpError> {
    let parsed = match ty {
        AddressType::Ip4 => s.parse::<Ipv4Addr>().map(IpAddr::from).ok(),
        AddressType::Ip6 => s.parse::<Ipv6Addr>().map(IpAddr::from).ok(),
    };
    if let Some(addr) = parsed {
        return Ok(addr);
    }
    let hostname = s.bytes().any(|b| b.is_ascii_alphabetic())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if hostname && s.parse::<IpAddr>().is_err() {
        return Err(SdpError::Hostname {
            line,
            field,
            host: snippet(s),
        });
    }
    Err(SdpError::Field {
        line,
        field,
        expected: ty.expected_address(),
        found: snippet(s),
    })
}

/// `c=IN IP4 <addr>[/<ttl>[/<count>]]` or `c=IN IP6 <addr>[/<count>]` (RFC 8866 §5.7).
fn parse_connection(line: usize, value: &str) -> Result<Connection, SdpError> {
    let mut parts = value.split(' ');
    let (Some(net), Some(ty), Some(addr), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SdpError::Field {
            line,
            field: "c= line",
            expected: "`IN IP4|IP6 <address>`",
            found: snippet(value),
        });
    };
    expect_in(line, "c= network type", net)?;
    let ty = parse_address_type(line, "c= address type", ty)?;
    let mut pieces = addr.split('/');
    let base = pieces.next().unwrap_or_default();
    let address = parse_ip(line, "c= address", ty, base)?;
    let (first, second) = (pieces.next(), pieces.next());
    let bad_suffix = |expected| SdpError::Field {
        line,
        field: "c= address suffix",
        expected,
        found: snippet(addr),
    };
    if pieces.next().is_some() {
        return Err(bad_suffix("at most `/<ttl>/<number of addresses>`"));
    }
    let count = |s: &str| {
        decimal::<u32>(s)
            .filter(|&n| n > 0)
            .ok_or_else(|| bad_suffix("a positive number of addresses"))
    };
    let (ttl, address_count) = match ty {
        AddressType::Ip4 => {
            let ttl = first
                .map(|t| decimal::<u8>(t).ok_or_else(|| bad_suffix("a multicast TTL of 0-255")))
                .transpose()?;
            (ttl, second.map(count).transpose()?)
        }
        AddressType::Ip6 => {
            if second.is_some() {
                return Err(bad_suffix("only `/<number of addresses>` (IP6 has no TTL)"));
            }
            (None, first.map(count).transpose()?)
        }
    };
    if (ttl.is_some() || address_count.is_some()) && !address.is_multicast() {
        return Err(bad_suffix("no suffix on a unicast address"));
    }
    Ok(Connection {
        address,
        ttl,
        address_count,
    })
}

/// `o=<username> <sess-id> <sess-version> IN IP4|IP6 <address>` (RFC 8866 §5.2).
fn parse_origin(line: usize, value: &str) -> Result<Origin, SdpError> {
    let fields: Vec<&str> = value.splitn(7, ' ').collect();
    let [username, id, version, net, ty, address] = fields[..] else {
        return Err(SdpError::Field {
            line,
            field: "o= line",
            expected: "`<username> <sess-id> <sess-version> IN IP4|IP6 <address>`",
            found: snippet(value),
        });
    };
    let number = |field, s: &str| {
        decimal::<u64>(s).ok_or_else(|| SdpError::Field {
            line,
            field,
            expected: "a decimal number below 2^64",
            found: snippet(s),
        })
    };
    if username.is_empty() {
        return Err(SdpError::Field {
            line,
            field: "o= username",
            expected: "a non-empty username (`-` for none)",
            found: String::new(),
        });
    }
    let session_id = number("o= session id", id)?;
    let session_version = number("o= session version", version)?;
    expect_in(line, "o= network type", net)?;
    let address_type = parse_address_type(line, "o= address type", ty)?;
    // RFC 8866 allows a domain name here (unlike in c=, we never send to it); an IP
    // address must match its type.
    let domain = address
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        && address.bytes().any(|b| b.is_ascii_alphabetic());
    if address.parse::<IpAddr>().is_ok() {
        parse_ip(line, "o= address", address_type, address)?;
    } else if !domain {
        return Err(SdpError::Field {
            line,
            field: "o= address",
            expected: "an IP address or a domain name",
            found: snippet(address),
        });
    }
    Ok(Origin {
        username: username.to_owned(),
        session_id,
        session_version,
        address_type,
        address: address.to_owned(),
    })
}

/// `t=<start> <stop>`, NTP seconds (RFC 8866 §5.9); only checked, kept as text.
fn parse_time(line: usize, value: &str) -> Result<(), SdpError> {
    match value.split_once(' ') {
        Some((start, stop))
            if decimal::<u64>(start).is_some() && decimal::<u64>(stop).is_some() =>
        {
            Ok(())
        }
        _ => Err(SdpError::Field {
            line,
            field: "t= line",
            expected: "`<start time> <stop time>` as decimal numbers",
            found: snippet(value),
        }),
    }
}

/// `m=<media> <port>[/<number of ports>] <proto> <fmt> ...` (RFC 8866 §5.14).
pub(super) fn parse_media(line: usize, value: &str) -> Result<MediaDescription, SdpError> {
    let mut parts = value.split(' ');
    let (Some(kind), Some(port), Some(proto)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(SdpError::Field {
            line,
            field: "m= line",
            expected: "`<media> <port> <proto> <fmt> ...`",
            found: snippet(value),
        });
    };
    let field = |field, expected, found: &str| SdpError::Field {
        line,
        field,
        expected,
        found: snippet(found),
    };
    if !is_token(kind) {
        return Err(field("m= media", "a token such as audio or video", kind));
    }
    let (port_text, count_text) = match port.split_once('/') {
        Some((p, c)) => (p, Some(c)),
        None => (port, None),
    };
    let port_number =
        decimal::<u16>(port_text).ok_or_else(|| field("m= port", "a port number 0-65535", port))?;
    let port_count = count_text
        .map(|c| {
            decimal::<u16>(c)
                .filter(|&n| n > 0)
                .ok_or_else(|| field("m= number of ports", "a positive number", c))
        })
        .transpose()?;
    if !proto.split('/').all(is_token) {
        return Err(field(
            "m= proto",
            "tokens separated by / such as RTP/AVP",
            proto,
        ));
    }
    let rtp = is_rtp_proto(proto);
    let mut formats: Vec<String> = Vec::new();
    for format in parts {
        if rtp {
            if payload_type(format).is_none() {
                return Err(field("m= format", "an RTP payload type 0-127", format));
            }
            if formats
                .iter()
                .any(|f| payload_type(f) == payload_type(format))
            {
                return Err(field("m= format", "each payload type listed once", format));
            }
        } else if !is_token(format) {
            return Err(field("m= format", "a token", format));
        }
        formats.push(format.to_owned());
    }
    if formats.is_empty() {
        return Err(field(
            "m= line",
            "at least one format after the proto",
            value,
        ));
    }
    Ok(MediaDescription {
        kind: MediaKind::from_token(kind),
        port: port_number,
        port_count,
        proto: proto.to_owned(),
        formats,
        connection: None,
        lines: Vec::new(),
        attributes: Vec::new(),
    })
}

/// `a=<name>[:<value>]`, checking the attributes we interpret.
fn parse_attribute(
    line: usize,
    text: &str,
    rtp: bool,
    st: &mut SectionState,
) -> Result<Attribute, SdpError> {
    let (name, value) = match text.split_once(':') {
        Some((name, value)) => (name, Some(value)),
        None => (text, None),
    };
    check_attribute(line, name, value, rtp, Some(st))?;
    Ok(Attribute {
        name: name.to_owned(),
        value: value.map(str::to_owned),
    })
}

/// Checks an attribute's name and, for those we interpret, its value. With a section
/// state (while parsing), also duplicates of rtpmap and direction.
pub(super) fn check_attribute(
    line: usize,
    name: &str,
    value: Option<&str>,
    rtp: bool,
    st: Option<&mut SectionState>,
) -> Result<(), SdpError> {
    if !is_token(name) {
        return Err(SdpError::Field {
            line,
            field: "a= attribute name",
            expected: "a token",
            found: snippet(name),
        });
    }
    let needs_value = |expected| SdpError::Field {
        line,
        field: match name {
            "rtpmap" => "a=rtpmap",
            "fmtp" => "a=fmtp",
            "rtcp" => "a=rtcp",
            _ => "a=ptime",
        },
        expected,
        found: String::new(),
    };
    match (name, value) {
        ("rtpmap", None) => return Err(needs_value(RTPMAP_FORM)),
        ("rtpmap", Some(v)) => {
            let (pt, _) = parse_rtpmap(line, v)?;
            if let Some(st) = st {
                let bit = 1u128 << pt;
                if st.rtpmaps & bit != 0 {
                    return Err(SdpError::DuplicateRtpmap { line, pt });
                }
                st.rtpmaps |= bit;
            }
        }
        ("fmtp", None) => return Err(needs_value("`<format> <parameters>`")),
        ("fmtp", Some(v)) => {
            parse_fmtp(line, v, rtp)?;
        }
        ("rtcp", None) => return Err(needs_value("`<port> [IN IP4|IP6 <address>]`")),
        ("rtcp", Some(v)) => {
            parse_rtcp(line, v)?;
        }
        ("ptime", None) => return Err(needs_value("a whole number of milliseconds")),
        ("ptime", Some(v)) => {
            parse_ptime(line, v)?;
        }
        _ => {
            if let (Some(found), Some(st)) = (Direction::from_attribute(name), st) {
                if st.direction {
                    return Err(SdpError::DuplicateDirection { line, found });
                }
                st.direction = true;
            }
        }
    }
    Ok(())
}

pub(super) const RTPMAP_FORM: &str = "`<payload type> <encoding>/<clock rate>[/<channels>]`";

/// `a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]` (RFC 8866 §6.6).
pub(super) fn parse_rtpmap(line: usize, value: &str) -> Result<(u8, RtpMap<'_>), SdpError> {
    let field = |field, expected, found: &str| SdpError::Field {
        line,
        field,
        expected,
        found: snippet(found),
    };
    let (pt, rest) = value
        .split_once(' ')
        .ok_or_else(|| field("a=rtpmap", RTPMAP_FORM, value))?;
    let pt =
        payload_type(pt).ok_or_else(|| field("a=rtpmap payload type", "a number 0-127", pt))?;
    let mut parts = rest.split('/');
    let encoding = parts.next().unwrap_or_default();
    if !is_token(encoding) {
        return Err(field(
            "a=rtpmap encoding",
            "an encoding name such as PCMU",
            encoding,
        ));
    }
    let clock_rate = parts
        .next()
        .and_then(decimal::<u32>)
        .filter(|&c| c > 0)
        .ok_or_else(|| {
            field(
                "a=rtpmap clock rate",
                "`/<clock rate in Hz>` after the encoding",
                rest,
            )
        })?;
    let channels = parts
        .next()
        .map(|c| {
            decimal::<u16>(c)
                .filter(|&n| n > 0)
                .ok_or_else(|| field("a=rtpmap channels", "a positive number of channels", c))
        })
        .transpose()?;
    if parts.next().is_some() {
        return Err(field("a=rtpmap", RTPMAP_FORM, value));
    }
    Ok((
        pt,
        RtpMap {
            encoding,
            clock_rate,
            channels,
        },
    ))
}

/// `a=fmtp:<format> <parameters>` (RFC 8866 §6.15); returns (format, parameters).
pub(super) fn parse_fmtp(line: usize, value: &str, rtp: bool) -> Result<(&str, &str), SdpError> {
    let (format, params) = value.split_once(' ').unwrap_or((value, ""));
    let ok = if rtp {
        payload_type(format).is_some()
    } else {
        is_token(format)
    };
    if !ok {
        return Err(SdpError::Field {
            line,
            field: "a=fmtp format",
            expected: if rtp {
                "an RTP payload type 0-127"
            } else {
                "a format token"
            },
            found: snippet(format),
        });
    }
    Ok((format, params))
}

/// `a=rtcp:<port> [IN IP4|IP6 <address>]` (RFC 3605 §2.1).
pub(super) fn parse_rtcp(line: usize, value: &str) -> Result<Rtcp, SdpError> {
    let mut parts = value.split(' ');
    let port_text = parts.next().unwrap_or_default();
    let port = decimal::<u16>(port_text).ok_or_else(|| SdpError::Field {
        line,
        field: "a=rtcp port",
        expected: "a port number 0-65535",
        found: snippet(port_text),
    })?;
    let address = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (None, ..) => None,
        (Some(net), Some(ty), Some(addr), None) => {
            expect_in(line, "a=rtcp network type", net)?;
            let ty = parse_address_type(line, "a=rtcp address type", ty)?;
            Some(parse_ip(line, "a=rtcp address", ty, addr)?)
        }
        _ => {
            return Err(SdpError::Field {
                line,
                field: "a=rtcp",
                expected: "`<port> [IN IP4|IP6 <address>]`",
                found: snippet(value),
            });
        }
    };
    Ok(Rtcp { port, address })
}

/// `a=ptime:<milliseconds>` (RFC 8866 §6.4).
pub(super) fn parse_ptime(line: usize, value: &str) -> Result<u32, SdpError> {
    decimal::<u32>(value)
        .filter(|&ms| ms > 0)
        .ok_or_else(|| SdpError::Field {
            line,
            field: "a=ptime",
            expected: "a whole number of milliseconds",
            found: snippet(value),
        })
}
