//! SDP session descriptions (RFC 8866, formerly RFC 4566): parse, inspect, rewrite, write.
//!
//! The B2BUA reads each leg's offer or answer (RFC 3264) through [`SessionDescription`]
//! and rewrites it so that media flows through our relay: [`SessionDescription::anchor`]
//! puts our address and port in a media section, places RTCP per RFC 3605 (`a=rtcp`) or
//! RFC 5761 (`a=rtcp-mux`) and drops the far end's ICE attributes, since the relay
//! terminates media. Codec policy per tenant goes through
//! [`MediaDescription::retain_formats`]. Sans-IO: text in, text out.
//!
//! Parsing is strict about structure: `v=0` first, `o=`, `s=` and `t=` present, lines of
//! the form `<type>=<value>` with known types, fields separated by single spaces, IP
//! addresses (never hostnames, which we would have to resolve) in `c=`, and valid values
//! for the attributes we interpret (`rtpmap`, `fmtp`, `rtcp`, `ptime`, directions). Every
//! error names the 1-based line and what was expected there. Two leniencies, because
//! real endpoints need them and they are unambiguous: LF as well as CRLF line endings,
//! and the optional session- and media-level lines in any order (they are stored, and
//! written back, in RFC 8866 order). Every line we do not interpret (`i=`, `b=`, `k=`,
//! unknown `a=` attributes, ...) is kept in order, so writing a parsed description in
//! canonical form gives back the same text.

mod parse;
mod write;

#[cfg(test)]
mod tests;

use std::net::IpAddr;

use parse::{
    check_attribute, is_rtp_proto, parse_fmtp, parse_media, parse_ptime, parse_rtcp, parse_rtpmap,
    payload_type, snippet,
};

/// Largest SDP body we parse; far above any real offer, small enough to bound the work.
pub const MAX_SDP_LEN: usize = 64 * 1024;
/// Most m= sections we accept in one description.
pub const MAX_MEDIA: usize = 64;

/// ICE attributes (RFC 8839) of the far end; meaningless once the relay terminates media.
const ICE_ATTRIBUTES: [&str; 9] = [
    "candidate",
    "remote-candidates",
    "end-of-candidates",
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
    "ice-lite",
    "ice-mismatch",
    "ice-pacing",
];

/// Why a text is not an SDP description we accept, or why a value cannot go into one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The body is larger than [`MAX_SDP_LEN`].
    #[error("SDP body of {len} bytes is larger than the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    /// More than [`MAX_MEDIA`] m= sections.
    #[error("line {line}: more than {max} m= sections")]
    TooManyMedia { line: usize, max: usize },
    /// Nothing but line endings.
    #[error("SDP body is empty")]
    Empty,
    /// The first line is not `v=`.
    #[error("line 1: SDP must start with v=0, found {found:?}")]
    VersionNotFirst { found: String },
    /// `v=` with anything but `0`.
    #[error("line {line}: SDP version {version:?} is not supported, only v=0 exists")]
    UnsupportedVersion { line: usize, version: String },
    /// A line that is not `<letter>=<value>`.
    #[error("line {line}: expected `<type>=<value>`, found {found:?}")]
    NotTypeValue { line: usize, found: String },
    /// An empty line before the end of the body.
    #[error("line {line}: empty line inside the description")]
    EmptyLine { line: usize },
    /// A CR not followed by LF, or a NUL byte, inside a line.
    #[error("line {line}: stray CR or NUL byte inside the line")]
    ControlCharacter { line: usize },
    /// A type letter RFC 8866 does not define (RFC 8866 §5: reject, not ignore).
    #[error("line {line}: unknown line type `{kind}=`")]
    UnknownType { line: usize, kind: char },
    /// A line type allowed once per section appears again.
    #[error("line {line}: a second `{kind}=` line in this section, only one is allowed")]
    Duplicate { line: usize, kind: char },
    /// A session-only line (`o=`, `t=`, ...) after the first m= line.
    #[error("line {line}: `{kind}=` belongs to the session section, not after an m= line")]
    SessionLineInMedia { line: usize, kind: char },
    /// `r=` not right after `t=`/`r=`, or `z=` before any `t=`.
    #[error("line {line}: `{kind}=` must follow a t= line")]
    NotAfterTime { line: usize, kind: char },
    /// A required session line (`o=`, `s=`, `t=`) is absent.
    #[error("no `{kind}=` line in the session section")]
    Missing { kind: char },
    /// A field does not have the expected form.
    #[error("line {line}: {field}: expected {expected}, found {found:?}")]
    Field {
        line: usize,
        field: &'static str,
        expected: &'static str,
        found: String,
    },
    /// A hostname where we need an address; we never resolve names from a peer.
    #[error(
        "line {line}: {field} {host:?} is a hostname; only IP addresses are accepted (names are never resolved)"
    )]
    Hostname {
        line: usize,
        field: &'static str,
        host: String,
    },
    /// A media section with no `c=` while the session has none either (RFC 8866 §5.7).
    #[error("line {line}: m= section {index} has no c= line and the session has none")]
    NoConnection { line: usize, index: usize },
    /// Two `a=rtpmap` lines for one payload type in one media section.
    #[error("line {line}: a second a=rtpmap for payload type {pt}")]
    DuplicateRtpmap { line: usize, pt: u8 },
    /// Two direction attributes (`a=sendonly`, ...) in one section.
    #[error("line {line}: a second direction attribute (a={found}) in this section")]
    DuplicateDirection { line: usize, found: Direction },
    /// A mutation named a media section that does not exist.
    #[error("no m= section {index}: the description has {count}")]
    NoSuchMedia { index: usize, count: usize },
    /// A value given to a constructor or setter cannot be written into SDP.
    #[error("{field}: expected {expected}, got {found:?}")]
    InvalidValue {
        field: &'static str,
        expected: &'static str,
        found: String,
    },
}

/// Turns a value error from a shared parse helper (called with line 0) into the error
/// of a setter, which has no line.
fn as_value_error(e: SdpError) -> SdpError {
    match e {
        SdpError::Field {
            field,
            expected,
            found,
            ..
        } => SdpError::InvalidValue {
            field,
            expected,
            found,
        },
        SdpError::Hostname { field, host, .. } => SdpError::InvalidValue {
            field,
            expected: "an IP address, not a hostname",
            found: host,
        },
        other => other,
    }
}

/// `IP4` or `IP6` in `o=`, `c=` and `a=rtcp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressType {
    Ip4,
    Ip6,
}

impl AddressType {
    /// The address type of `addr` as written in SDP.
    pub fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => AddressType::Ip4,
            IpAddr::V6(_) => AddressType::Ip6,
        }
    }

    /// `IP4` or `IP6`.
    pub fn as_str(self) -> &'static str {
        match self {
            AddressType::Ip4 => "IP4",
            AddressType::Ip6 => "IP6",
        }
    }

    fn expected_address(self) -> &'static str {
        match self {
            AddressType::Ip4 => "an IPv4 address after IP4",
            AddressType::Ip6 => "an IPv6 address after IP6",
        }
    }
}

/// A `c=` line: where media is sent (RFC 8866 §5.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    address: IpAddr,
    /// IPv4 multicast only.
    ttl: Option<u8>,
    /// Multicast only: how many consecutive addresses (layered encodings).
    address_count: Option<u32>,
}

impl Connection {
    /// A unicast connection to `address`. An IPv4-mapped IPv6 address (as a dual-stack
    /// socket reports IPv4 peers) is written as `IN IP4`, which is what it means.
    pub fn new(address: IpAddr) -> Self {
        Connection {
            address: address.to_canonical(),
            ttl: None,
            address_count: None,
        }
    }

    /// The (base) address.
    pub fn address(&self) -> IpAddr {
        self.address
    }

    /// `IN IP4` or `IN IP6`.
    pub fn address_type(&self) -> AddressType {
        AddressType::of(self.address)
    }

    /// The TTL of an IPv4 multicast address.
    pub fn ttl(&self) -> Option<u8> {
        self.ttl
    }

    /// The number of consecutive multicast addresses, when given.
    pub fn address_count(&self) -> Option<u32> {
        self.address_count
    }
}

/// The `o=` line: who made the description and which version of the session it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    username: String,
    session_id: u64,
    session_version: u64,
    address_type: AddressType,
    /// An IP address or, as RFC 8866 allows here (unlike in `c=`), a domain name.
    address: String,
}

impl Origin {
    /// A new origin; `username` is `-` when there is none to give.
    pub fn new(
        username: &str,
        session_id: u64,
        session_version: u64,
        address: IpAddr,
    ) -> Result<Self, SdpError> {
        let mut origin = Origin {
            username: String::new(),
            session_id,
            session_version,
            address_type: AddressType::Ip4,
            address: String::new(),
        };
        origin.set_username(username)?;
        origin.set_address(address);
        Ok(origin)
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    pub fn session_version(&self) -> u64 {
        self.session_version
    }

    pub fn address_type(&self) -> AddressType {
        self.address_type
    }

    /// The address as written: an IP address or a domain name.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The address, when it is an IP address rather than a domain name.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.parse().ok()
    }

    /// Sets the username (our leg's, to hide the far end's); no whitespace allowed.
    pub fn set_username(&mut self, username: &str) -> Result<(), SdpError> {
        if username.is_empty() || username.chars().any(|c| c.is_whitespace() || c == '\0') {
            return Err(SdpError::InvalidValue {
                field: "o= username",
                expected: "a non-empty string without whitespace (`-` for none)",
                found: snippet(username),
            });
        }
        self.username = username.to_owned();
        Ok(())
    }

    pub fn set_session_id(&mut self, session_id: u64) {
        self.session_id = session_id;
    }

    pub fn set_session_version(&mut self, session_version: u64) {
        self.session_version = session_version;
    }

    /// Sets the address and writes `IP4` or `IP6` to match it.
    pub fn set_address(&mut self, address: IpAddr) {
        let address = address.to_canonical();
        self.address_type = AddressType::of(address);
        self.address = address.to_string();
    }

    /// Raises the version by one, as RFC 3264 §8 requires of a changed offer in the same
    /// session. Saturates at `u64::MAX`, which no session reaches.
    pub fn bump_version(&mut self) {
        self.session_version = self.session_version.saturating_add(1);
    }
}

/// Media direction attribute (RFC 8866 §6.7, RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// The attribute name: `sendrecv`, `sendonly`, `recvonly` or `inactive`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction an attribute name stands for, if it is one.
    pub fn from_attribute(name: &str) -> Option<Self> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }
}

/// The `<media>` field of an m= line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Audio,
    Video,
    Text,
    Application,
    Message,
    Image,
    /// Any other token, kept as written.
    Other(String),
}

impl MediaKind {
    fn from_token(token: &str) -> Self {
        match token {
            "audio" => MediaKind::Audio,
            "video" => MediaKind::Video,
            "text" => MediaKind::Text,
            "application" => MediaKind::Application,
            "message" => MediaKind::Message,
            "image" => MediaKind::Image,
            other => MediaKind::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
            MediaKind::Text => "text",
            MediaKind::Application => "application",
            MediaKind::Message => "message",
            MediaKind::Image => "image",
            MediaKind::Other(s) => s,
        }
    }
}

/// What a payload type stands for: `a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpMap<'a> {
    /// Encoding name as written (compare case-insensitively: RFC 4855 §3).
    pub encoding: &'a str,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Audio channels when given; absent means one.
    pub channels: Option<u16>,
}

/// Static payload types of RFC 3551 §6, which need no rtpmap line.
fn static_rtpmap(pt: u8) -> Option<RtpMap<'static>> {
    let (encoding, clock_rate, channels) = match pt {
        0 => ("PCMU", 8000, None),
        3 => ("GSM", 8000, None),
        4 => ("G723", 8000, None),
        5 => ("DVI4", 8000, None),
        6 => ("DVI4", 16000, None),
        7 => ("LPC", 8000, None),
        8 => ("PCMA", 8000, None),
        // G.722 samples at 16 kHz but its RTP clock is 8000 (RFC 3551 §4.5.2).
        9 => ("G722", 8000, None),
        10 => ("L16", 44100, Some(2)),
        11 => ("L16", 44100, None),
        12 => ("QCELP", 8000, None),
        13 => ("CN", 8000, None),
        14 => ("MPA", 90000, None),
        15 => ("G728", 8000, None),
        16 => ("DVI4", 11025, None),
        17 => ("DVI4", 22050, None),
        18 => ("G729", 8000, None),
        25 => ("CelB", 90000, None),
        26 => ("JPEG", 90000, None),
        28 => ("nv", 90000, None),
        31 => ("H261", 90000, None),
        32 => ("MPV", 90000, None),
        33 => ("MP2T", 90000, None),
        34 => ("H263", 90000, None),
        _ => return None,
    };
    Some(RtpMap {
        encoding,
        clock_rate,
        channels,
    })
}

/// `a=rtcp:<port> [IN IP4|IP6 <address>]` (RFC 3605).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rtcp {
    pub port: u16,
    /// Only when RTCP goes to another address than the section's `c=`.
    pub address: Option<IpAddr>,
}

/// Where the relay takes RTCP for an anchored media section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcpPlacement {
    /// RTCP on the RTP port (RFC 5761): `a=rtcp-mux`, no `a=rtcp`.
    Mux,
    /// RTCP on this port (RFC 3605): `a=rtcp:<port>`, no `a=rtcp-mux`.
    Port(u16),
}

/// An `a=<name>[:<value>]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    name: String,
    value: Option<String>,
}

impl Attribute {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The text after the first `:`; `None` for a flag such as `a=rtcp-mux`.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    /// The first space-separated word of the value: the payload type of `rtpmap`, `fmtp`
    /// and `rtcp-fb`.
    fn format(&self) -> Option<&str> {
        self.value.as_deref().and_then(|v| v.split(' ').next())
    }
}

/// A line kept as written (`i=`, `b=`, `t=`, `k=`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    kind: u8,
    value: String,
}

/// Replaces all attributes matching `matches` by `new` at the place of the first one (or
/// at the end), so a rewrite moves as little as possible.
fn replace_attribute(
    attributes: &mut Vec<Attribute>,
    matches: impl Fn(&Attribute) -> bool,
    new: Option<Attribute>,
) -> usize {
    let first = attributes.iter().position(&matches);
    let before = attributes.len();
    attributes.retain(|a| !matches(a));
    let removed = before - attributes.len();
    if let Some(new) = new {
        match first {
            Some(i) => attributes.insert(i, new),
            None => attributes.push(new),
        }
    }
    removed
}

fn remove_ice_attributes(attributes: &mut Vec<Attribute>) -> usize {
    replace_attribute(
        attributes,
        |a| ICE_ATTRIBUTES.contains(&a.name.as_str()),
        None,
    )
}

fn direction_of(attributes: &[Attribute]) -> Option<Direction> {
    attributes
        .iter()
        .find_map(|a| Direction::from_attribute(&a.name))
}

fn set_direction_in(attributes: &mut Vec<Attribute>, direction: Direction) {
    replace_attribute(
        attributes,
        |a| Direction::from_attribute(&a.name).is_some(),
        Some(Attribute {
            name: direction.as_str().to_owned(),
            value: None,
        }),
    );
}

/// Validates a caller-given attribute and appends it.
fn push_attribute_in(
    attributes: &mut Vec<Attribute>,
    name: &str,
    value: Option<&str>,
    rtp: bool,
) -> Result<(), SdpError> {
    if value.is_some_and(|v| v.contains(['\r', '\n', '\0'])) {
        return Err(SdpError::InvalidValue {
            field: "a= value",
            expected: "text without CR, LF or NUL",
            found: snippet(value.unwrap_or_default()),
        });
    }
    check_attribute(0, name, value, rtp, None).map_err(as_value_error)?;
    attributes.push(Attribute {
        name: name.to_owned(),
        value: value.map(str::to_owned),
    });
    Ok(())
}

fn remove_attributes_in(attributes: &mut Vec<Attribute>, name: &str) -> usize {
    replace_attribute(attributes, |a| a.name == name, None)
}

/// One `m=` section and the lines under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    kind: MediaKind,
    port: u16,
    port_count: Option<u16>,
    proto: String,
    /// Never empty: RFC 8866 §5.14 requires at least one format.
    formats: Vec<String>,
    connection: Option<Connection>,
    lines: Vec<Line>,
    attributes: Vec<Attribute>,
}

impl MediaDescription {
    /// A new section with no attributes. For an RTP `proto` every format must be a
    /// payload type (0-127); add `rtpmap`/`fmtp` lines with [`Self::push_attribute`].
    pub fn new(
        kind: MediaKind,
        port: u16,
        proto: &str,
        formats: &[&str],
    ) -> Result<Self, SdpError> {
        let pieces = [kind.as_str(), proto]
            .into_iter()
            .chain(formats.iter().copied());
        for piece in pieces {
            // A space would shift the fields of the m= line, a line break start another line.
            if piece.contains([' ', '\r', '\n', '\0']) {
                return Err(SdpError::InvalidValue {
                    field: "m= line",
                    expected: "media, proto and formats without spaces or line breaks",
                    found: snippet(piece),
                });
            }
        }
        let line = format!("{kind} {port} {proto} {}", formats.join(" "));
        parse_media(0, &line).map_err(as_value_error)
    }

    pub fn kind(&self) -> &MediaKind {
        &self.kind
    }

    /// The transport port; 0 means the stream is rejected or disabled (RFC 3264 §6).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `/<number of ports>` of the m= line, when written.
    pub fn port_count(&self) -> Option<u16> {
        self.port_count
    }

    /// The transport protocol: `RTP/AVP`, `RTP/SAVP`, `UDP/TLS/RTP/SAVPF`, `udptl`, ...
    pub fn proto(&self) -> &str {
        &self.proto
    }

    /// Whether the formats are RTP payload types (the proto has an `RTP` part).
    pub fn is_rtp(&self) -> bool {
        is_rtp_proto(&self.proto)
    }

    /// The formats as written on the m= line, in the sender's order of preference.
    pub fn formats(&self) -> &[String] {
        &self.formats
    }

    /// The formats as payload types, in order; none unless [`Self::is_rtp`] (a numeric
    /// format of another proto, such as an SCTP port, is no payload type).
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        let rtp = self.is_rtp();
        self.formats
            .iter()
            .filter(move |_| rtp)
            .filter_map(|f| payload_type(f))
    }

    /// The section's own `c=`; see [`SessionDescription::effective_connection`].
    pub fn connection(&self) -> Option<&Connection> {
        self.connection.as_ref()
    }

    /// All attributes in order.
    pub fn attributes(&self) -> &[Attribute] {
        &self.attributes
    }

    /// The first attribute called `name`.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// The kept lines other than `c=` and `a=` (`i=`, `b=`, `k=`), as (type, value).
    pub fn other_lines(&self) -> impl Iterator<Item = (char, &str)> {
        self.lines
            .iter()
            .map(|l| (char::from(l.kind), l.value.as_str()))
    }

    /// What payload type `pt` stands for: its `a=rtpmap`, else the RFC 3551 static
    /// assignment (PCMU, PCMA, G722, CN, G729, ...).
    pub fn rtpmap(&self, pt: u8) -> Option<RtpMap<'_>> {
        self.attributes
            .iter()
            .filter(|a| a.name == "rtpmap")
            .filter_map(|a| parse_rtpmap(0, a.value.as_deref()?).ok())
            .find(|(p, _)| *p == pt)
            .map(|(_, map)| map)
            .or_else(|| {
                if self.is_rtp() {
                    static_rtpmap(pt)
                } else {
                    None
                }
            })
    }

    /// The format parameters of `pt` (`a=fmtp:<pt> <parameters>`).
    pub fn fmtp(&self, pt: u8) -> Option<&str> {
        self.attributes
            .iter()
            .filter(|a| a.name == "fmtp")
            .filter_map(|a| parse_fmtp(0, a.value.as_deref()?, false).ok())
            .find(|(fmt, _)| payload_type(fmt) == Some(pt))
            .map(|(_, params)| params)
    }

    /// The first listed payload type that is `telephone-event/8000` (RFC 4733 DTMF at
    /// the narrowband clock, the one our DTMF detector and the PSTN use).
    pub fn telephone_event_pt(&self) -> Option<u8> {
        self.payload_types().find(|&pt| {
            self.rtpmap(pt).is_some_and(|m| {
                m.encoding.eq_ignore_ascii_case("telephone-event") && m.clock_rate == 8000
            })
        })
    }

    /// The section's own direction attribute; see [`SessionDescription::effective_direction`].
    pub fn direction(&self) -> Option<Direction> {
        direction_of(&self.attributes)
    }

    /// Whether `a=rtcp-mux` is present (RFC 5761).
    pub fn rtcp_mux(&self) -> bool {
        self.attribute("rtcp-mux").is_some()
    }

    /// The `a=rtcp` port and address (RFC 3605).
    pub fn rtcp(&self) -> Option<Rtcp> {
        self.attributes
            .iter()
            .filter(|a| a.name == "rtcp")
            .find_map(|a| parse_rtcp(0, a.value.as_deref()?).ok())
    }

    /// `a=ptime` in milliseconds.
    pub fn ptime(&self) -> Option<u32> {
        self.attributes
            .iter()
            .filter(|a| a.name == "ptime")
            .find_map(|a| parse_ptime(0, a.value.as_deref()?).ok())
    }

    /// Port 0: the stream is rejected or disabled (RFC 3264 §6, §8.2).
    pub fn is_disabled(&self) -> bool {
        self.port == 0
    }

    /// Sets the port and drops any `/<number of ports>`: the relay hands out one port
    /// (pair) per stream.
    pub fn set_port(&mut self, port: u16) {
        self.port = port;
        self.port_count = None;
    }

    /// Rejects or disables the stream: port 0 (RFC 3264 §6).
    pub fn disable(&mut self) {
        self.set_port(0);
    }

    /// Sets the section's own `c=` to `address` (`IN IP4` or `IN IP6` to match).
    pub fn set_connection_address(&mut self, address: IpAddr) {
        self.connection = Some(Connection::new(address));
    }

    /// Replaces any direction attribute of the section by `direction`.
    pub fn set_direction(&mut self, direction: Direction) {
        set_direction_in(&mut self.attributes, direction);
    }

    /// Sets (`Some`) or removes (`None`) `a=rtcp`.
    pub fn set_rtcp(&mut self, rtcp: Option<Rtcp>) {
        let new = rtcp.map(|r| Attribute {
            name: "rtcp".to_owned(),
            value: Some(r.to_string()),
        });
        replace_attribute(&mut self.attributes, |a| a.name == "rtcp", new);
    }

    /// Adds `a=rtcp-mux` if absent, or removes it (and `a=rtcp-mux-only`, RFC 8858, which
    /// makes no sense without it).
    pub fn set_rtcp_mux(&mut self, mux: bool) {
        if mux {
            if !self.rtcp_mux() {
                self.attributes.push(Attribute {
                    name: "rtcp-mux".to_owned(),
                    value: None,
                });
            }
        } else {
            replace_attribute(
                &mut self.attributes,
                |a| a.name == "rtcp-mux" || a.name == "rtcp-mux-only",
                None,
            );
        }
    }

    /// Removes ICE attributes (`a=candidate`, `a=ice-ufrag`, `a=ice-pwd`, `a=ice-options`,
    /// `a=end-of-candidates`, `a=remote-candidates`, ...); returns how many went.
    pub fn remove_ice(&mut self) -> usize {
        remove_ice_attributes(&mut self.attributes)
    }

    /// Keeps the payload types for which `keep(pt, rtpmap)` is true, dropping the others
    /// from the m= line together with their `a=rtpmap`, `a=fmtp` and `a=rtcp-fb` lines.
    /// Formats that are not payload types (`t38`, `webrtc-datachannel`) are kept.
    ///
    /// Returns how many formats remain. If none does, the section cannot carry media:
    /// it is disabled (port 0) and keeps the first original format, since a rejected
    /// stream must still list one (RFC 3264 §6), and 0 is returned so the caller can
    /// reject the call or send the stream back rejected.
    pub fn retain_formats(
        &mut self,
        mut keep: impl FnMut(u8, Option<RtpMap<'_>>) -> bool,
    ) -> usize {
        let dropped: Vec<u8> = self
            .payload_types()
            .filter(|&pt| !keep(pt, self.rtpmap(pt)))
            .collect();
        if dropped.is_empty() {
            return self.formats.len();
        }
        let placeholder = self.formats.first().cloned();
        self.formats
            .retain(|f| payload_type(f).is_none_or(|pt| !dropped.contains(&pt)));
        self.attributes.retain(|a| {
            let names_format = matches!(a.name.as_str(), "rtpmap" | "fmtp" | "rtcp-fb");
            !(names_format
                && a.format()
                    .and_then(payload_type)
                    .is_some_and(|pt| dropped.contains(&pt)))
        });
        if self.formats.is_empty() {
            self.formats.extend(placeholder);
            self.disable();
            return 0;
        }
        self.formats.len()
    }

    /// Appends `a=<name>[:<value>]`, checking the value of the attributes this module
    /// interprets (`rtpmap`, `fmtp`, `rtcp`, `ptime`). Use the setters for directions,
    /// `rtcp` and `rtcp-mux`, which replace rather than add.
    pub fn push_attribute(&mut self, name: &str, value: Option<&str>) -> Result<(), SdpError> {
        let rtp = self.is_rtp();
        push_attribute_in(&mut self.attributes, name, value, rtp)
    }

    /// Removes every attribute called `name`; returns how many went.
    pub fn remove_attributes(&mut self, name: &str) -> usize {
        remove_attributes_in(&mut self.attributes, name)
    }
}

/// A whole SDP description: session lines and media sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    origin: Origin,
    session_name: String,
    connection: Option<Connection>,
    /// `i= u= e= p= b= t= r= z= k=`, in RFC order.
    lines: Vec<Line>,
    attributes: Vec<Attribute>,
    media: Vec<MediaDescription>,
}

impl SessionDescription {
    /// A description of our own (prompts, music on hold): `s=-`, `c=` for `address`,
    /// `t=0 0`, no media yet ([`Self::push_media`]).
    pub fn new(origin: Origin, address: IpAddr) -> Self {
        SessionDescription {
            origin,
            session_name: "-".to_owned(),
            connection: Some(Connection::new(address)),
            lines: vec![Line {
                kind: b't',
                value: "0 0".to_owned(),
            }],
            attributes: Vec::new(),
            media: Vec::new(),
        }
    }

    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    pub fn origin_mut(&mut self) -> &mut Origin {
        &mut self.origin
    }

    /// Raises the `o=` version by one (RFC 3264 §8: a changed offer in the same session).
    pub fn bump_version(&mut self) {
        self.origin.bump_version();
    }

    /// The `s=` text; empty when a peer sent a bare `s=` (common, though RFC 8866 asks
    /// for `s= ` or `s=-`), which we accept and write back as received.
    pub fn session_name(&self) -> &str {
        &self.session_name
    }

    /// Sets `s=`; RFC 8866 wants `-` or a single space rather than nothing.
    pub fn set_session_name(&mut self, name: &str) -> Result<(), SdpError> {
        if name.is_empty() || name.contains(['\r', '\n', '\0']) {
            return Err(SdpError::InvalidValue {
                field: "s= session name",
                expected: "non-empty text without CR, LF or NUL",
                found: snippet(name),
            });
        }
        self.session_name = name.to_owned();
        Ok(())
    }

    /// The session-level `c=`.
    pub fn connection(&self) -> Option<&Connection> {
        self.connection.as_ref()
    }

    /// Sets the session-level `c=` to `address` (`IN IP4` or `IN IP6` to match). Media
    /// sections with their own `c=` keep it.
    pub fn set_connection_address(&mut self, address: IpAddr) {
        self.connection = Some(Connection::new(address));
    }

    /// Session-level attributes in order.
    pub fn attributes(&self) -> &[Attribute] {
        &self.attributes
    }

    /// The first session-level attribute called `name`.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// Appends a session-level `a=<name>[:<value>]` (values checked as in
    /// [`MediaDescription::push_attribute`]).
    pub fn push_attribute(&mut self, name: &str, value: Option<&str>) -> Result<(), SdpError> {
        push_attribute_in(&mut self.attributes, name, value, false)
    }

    /// Removes every session-level attribute called `name`; returns how many went.
    pub fn remove_attributes(&mut self, name: &str) -> usize {
        remove_attributes_in(&mut self.attributes, name)
    }

    /// The kept session lines other than `v= o= s= c= a=`, as (type, value).
    pub fn other_lines(&self) -> impl Iterator<Item = (char, &str)> {
        self.lines
            .iter()
            .map(|l| (char::from(l.kind), l.value.as_str()))
    }

    /// The session-level direction attribute.
    pub fn direction(&self) -> Option<Direction> {
        direction_of(&self.attributes)
    }

    /// Replaces the session-level direction attribute; media-level ones still override it.
    pub fn set_direction(&mut self, direction: Direction) {
        set_direction_in(&mut self.attributes, direction);
    }

    pub fn media(&self) -> &[MediaDescription] {
        &self.media
    }

    pub fn media_mut(&mut self) -> &mut [MediaDescription] {
        &mut self.media
    }

    /// Appends a media section (at most [`MAX_MEDIA`]).
    pub fn push_media(&mut self, media: MediaDescription) -> Result<(), SdpError> {
        if self.media.len() >= MAX_MEDIA {
            return Err(SdpError::InvalidValue {
                field: "m= sections",
                expected: "at most 64",
                found: (self.media.len() + 1).to_string(),
            });
        }
        self.media.push(media);
        Ok(())
    }

    /// Where `media`'s stream goes: its own `c=`, else the session's.
    pub fn effective_connection<'a>(
        &'a self,
        media: &'a MediaDescription,
    ) -> Option<&'a Connection> {
        media.connection.as_ref().or(self.connection.as_ref())
    }

    /// `media`'s direction: its own attribute, else the session's, else `sendrecv`
    /// (RFC 3264 §5.1).
    pub fn effective_direction(&self, media: &MediaDescription) -> Direction {
        media
            .direction()
            .or_else(|| self.direction())
            .unwrap_or(Direction::SendRecv)
    }

    /// Removes ICE attributes at session level and in every media section; returns how
    /// many went.
    pub fn remove_ice(&mut self) -> usize {
        let session = remove_ice_attributes(&mut self.attributes);
        session
            + self
                .media
                .iter_mut()
                .map(MediaDescription::remove_ice)
                .sum::<usize>()
    }

    /// Anchors media section `index` on the relay: media to `address`:`rtp_port`, RTCP per
    /// `rtcp`, and no ICE attributes (in the section and at session level: the relay
    /// terminates media, the far end's candidates and credentials must not leak).
    ///
    /// The address goes where the section takes its address from: its own `c=` if it has
    /// one, else the session's `c=`. In the second case, other active sections that also
    /// relied on the session `c=` get the old address as their own `c=`, so anchoring one
    /// section never redirects another; anchor each active section to hide the far end
    /// entirely. The origin is left alone: rewrite it with [`Self::origin_mut`] once per
    /// leg and [`Self::bump_version`] when the leg's offer changes.
    pub fn anchor(
        &mut self,
        index: usize,
        address: IpAddr,
        rtp_port: u16,
        rtcp: RtcpPlacement,
    ) -> Result<(), SdpError> {
        let count = self.media.len();
        if index >= count {
            return Err(SdpError::NoSuchMedia { index, count });
        }
        let ours = Connection::new(address);
        let inherits = self.media[index].connection.is_none();
        match self.connection.take() {
            Some(old) if inherits => {
                if old != ours {
                    for (i, m) in self.media.iter_mut().enumerate() {
                        if i != index && m.connection.is_none() && !m.is_disabled() {
                            m.connection = Some(old.clone());
                        }
                    }
                }
                self.connection = Some(ours);
            }
            session => {
                self.connection = session;
                self.media[index].connection = Some(ours);
            }
        }
        remove_ice_attributes(&mut self.attributes);
        let media = &mut self.media[index];
        media.set_port(rtp_port);
        media.remove_ice();
        match rtcp {
            RtcpPlacement::Mux => {
                media.set_rtcp(None);
                media.set_rtcp_mux(true);
            }
            RtcpPlacement::Port(port) => {
                media.set_rtcp(Some(Rtcp {
                    port,
                    address: None,
                }));
                media.set_rtcp_mux(false);
            }
        }
        Ok(())
    }
}
