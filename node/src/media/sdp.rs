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

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

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

impl fmt::Display for AddressType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IN {} {}", self.address_type(), self.address)?;
        if let Some(ttl) = self.ttl {
            write!(f, "/{ttl}")?;
        }
        if let Some(count) = self.address_count {
            write!(f, "/{count}")?;
        }
        Ok(())
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

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} IN {} {}",
            self.username, self.session_id, self.session_version, self.address_type, self.address
        )
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

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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

impl fmt::Display for MediaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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

impl fmt::Display for RtpMap<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.encoding, self.clock_rate)?;
        if let Some(channels) = self.channels {
            write!(f, "/{channels}")?;
        }
        Ok(())
    }
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

impl fmt::Display for Rtcp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.port)?;
        if let Some(addr) = self.address {
            write!(f, " IN {} {}", AddressType::of(addr), addr)?;
        }
        Ok(())
    }
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

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(value) = &self.value {
            write!(f, ":{value}")?;
        }
        Ok(())
    }
}

/// A line kept as written (`i=`, `b=`, `t=`, `k=`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    kind: u8,
    value: String,
}

/// RFC 8866 §5 order of the optional session lines; `c=` sits at [`SESSION_C_RANK`].
fn session_rank(kind: u8) -> u8 {
    match kind {
        b'i' => 0,
        b'u' => 1,
        b'e' => 2,
        b'p' => 3,
        b'b' => 5,
        // r= belongs to the t= before it, so both share a rank and keep their order.
        b't' | b'r' => 6,
        b'z' => 7,
        _ => 8, // k=
    }
}
const SESSION_C_RANK: u8 = 4;

/// RFC 8866 §5 order of the optional media lines; `c=` sits at [`MEDIA_C_RANK`].
fn media_rank(kind: u8) -> u8 {
    match kind {
        b'i' => 0,
        b'b' => 2,
        _ => 3, // k=
    }
}
const MEDIA_C_RANK: u8 = 1;

/// Writes the kept lines whose rank is below (`before == true`) or above `pivot`.
fn write_lines(
    f: &mut fmt::Formatter<'_>,
    lines: &[Line],
    rank: fn(u8) -> u8,
    pivot: u8,
    before: bool,
) -> fmt::Result {
    for line in lines.iter().filter(|l| (rank(l.kind) < pivot) == before) {
        write!(f, "{}={}\r\n", char::from(line.kind), line.value)?;
    }
    Ok(())
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

impl fmt::Display for MediaDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={} {}", self.kind, self.port)?;
        if let Some(count) = self.port_count {
            write!(f, "/{count}")?;
        }
        write!(f, " {}", self.proto)?;
        for format in &self.formats {
            write!(f, " {format}")?;
        }
        f.write_str("\r\n")?;
        write_lines(f, &self.lines, media_rank, MEDIA_C_RANK, true)?;
        if let Some(c) = &self.connection {
            write!(f, "c={c}\r\n")?;
        }
        write_lines(f, &self.lines, media_rank, MEDIA_C_RANK, false)?;
        for a in &self.attributes {
            write!(f, "a={a}\r\n")?;
        }
        Ok(())
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

impl fmt::Display for SessionDescription {
    /// Canonical SDP: RFC 8866 order, CRLF line endings.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v=0\r\no={}\r\ns={}\r\n", self.origin, self.session_name)?;
        write_lines(f, &self.lines, session_rank, SESSION_C_RANK, true)?;
        if let Some(c) = &self.connection {
            write!(f, "c={c}\r\n")?;
        }
        write_lines(f, &self.lines, session_rank, SESSION_C_RANK, false)?;
        for a in &self.attributes {
            write!(f, "a={a}\r\n")?;
        }
        for m in &self.media {
            write!(f, "{m}")?;
        }
        Ok(())
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
struct SectionState {
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
fn snippet(s: &str) -> String {
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
fn payload_type(s: &str) -> Option<u8> {
    decimal::<u8>(s).filter(|&pt| pt <= 127)
}

fn is_rtp_proto(proto: &str) -> bool {
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
fn parse_media(line: usize, value: &str) -> Result<MediaDescription, SdpError> {
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
fn check_attribute(
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

const RTPMAP_FORM: &str = "`<payload type> <encoding>/<clock rate>[/<channels>]`";

/// `a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]` (RFC 8866 §6.6).
fn parse_rtpmap(line: usize, value: &str) -> Result<(u8, RtpMap<'_>), SdpError> {
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
fn parse_fmtp(line: usize, value: &str, rtp: bool) -> Result<(&str, &str), SdpError> {
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
fn parse_rtcp(line: usize, value: &str) -> Result<Rtcp, SdpError> {
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
fn parse_ptime(line: usize, value: &str) -> Result<u32, SdpError> {
    decimal::<u32>(value)
        .filter(|&ms| ms > 0)
        .ok_or_else(|| SdpError::Field {
            line,
            field: "a=ptime",
            expected: "a whole number of milliseconds",
            found: snippet(value),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Test bodies are written with LF for readability; this gives the CRLF wire form.
    fn crlf(s: &str) -> String {
        s.replace('\n', "\r\n")
    }

    fn parse(s: &str) -> SessionDescription {
        match SessionDescription::parse(s) {
            Ok(sdp) => sdp,
            Err(e) => panic!("{e}\n{s}"),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    /// A SIPp / Asterisk style audio offer.
    const SIPP_OFFER: &str = "v=0
o=user1 53655765 2353687637 IN IP4 192.0.2.10
s=-
c=IN IP4 192.0.2.10
t=0 0
m=audio 6000 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=sendrecv
";

    /// A linphone/baresip style offer: wideband codecs, DTMF at two clock rates, RTCP on
    /// its own port, a disabled video stream, bandwidth and RTCP XR lines.
    const LINPHONE_OFFER: &str = "v=0
o=alice 2790 1374 IN IP4 198.51.100.7
s=Talk
c=IN IP4 198.51.100.7
b=AS:380
t=0 0
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
m=audio 7078 RTP/AVP 96 97 0 8 18 101 100
b=AS:80
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:97 speex/16000
a=fmtp:18 annexb=no
a=rtpmap:101 telephone-event/48000
a=rtpmap:100 telephone-event/8000
a=rtcp:7079
a=rtcp-fb:* trr-int 1000
a=rtcp-fb:96 nack
m=video 0 RTP/AVP 103
a=rtpmap:103 VP8/90000
";

    /// An IPv6 answer that only receives, with an explicit RTCP address.
    const IPV6_ANSWER: &str = "v=0
o=- 20518 0 IN IP6 2001:db8::7
s=-
c=IN IP6 2001:db8::7
t=0 0
m=audio 40000 RTP/AVP 9 0 101
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=rtcp:40001 IN IP6 2001:db8::7
a=recvonly
";

    /// A browser offer: ICE, DTLS, BUNDLE, rtcp-mux, fmtp, no session-level c=.
    const WEBRTC_OFFER: &str = "v=0
o=- 4611731400430051336 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0
a=extmap-allow-mixed
a=msid-semantic: WMS stream1
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=candidate:1467250027 1 udp 2122260223 192.168.0.196 46243 typ host generation 0
a=candidate:435653019 1 udp 1686052607 203.0.113.77 46243 typ srflx raddr 192.168.0.196 rport 46243 generation 0
a=end-of-candidates
a=ice-ufrag:Oy7q
a=ice-pwd:ZxG0wq8lRU0kxf7r3Qa5dy0G
a=ice-options:trickle
a=fingerprint:sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:4D:35:7C:1B:8A:3E:2F:B8:CA:6E:CF:D2
a=setup:actpass
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=sendrecv
a=msid:stream1 track1
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:63 red/48000/2
a=fmtp:63 111/111
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:13 CN/8000
a=rtpmap:110 telephone-event/48000
a=rtpmap:126 telephone-event/8000
a=ssrc:1001 cname:4TOk42mSjXCkVIa6
";

    #[test]
    fn realistic_offers_round_trip_exactly() {
        for text in [SIPP_OFFER, LINPHONE_OFFER, IPV6_ANSWER, WEBRTC_OFFER] {
            let wire = crlf(text);
            let sdp = parse(&wire);
            assert_eq!(sdp.to_string(), wire);
            // LF input gives the same structure and canonical CRLF output.
            let from_lf = parse(text);
            assert_eq!(from_lf, sdp);
            assert_eq!(from_lf.to_string(), wire);
            assert_eq!(wire.parse::<SessionDescription>().as_ref(), Ok(&sdp));
        }
    }

    #[test]
    fn reads_a_sipp_offer() {
        let sdp = parse(&crlf(SIPP_OFFER));
        let o = sdp.origin();
        assert_eq!(o.username(), "user1");
        assert_eq!(o.session_id(), 53_655_765);
        assert_eq!(o.session_version(), 2_353_687_637);
        assert_eq!(o.address_type(), AddressType::Ip4);
        assert_eq!(o.ip(), Some(ip("192.0.2.10")));
        assert_eq!(sdp.session_name(), "-");
        assert_eq!(sdp.other_lines().collect::<Vec<_>>(), [('t', "0 0")]);
        let m = &sdp.media()[0];
        assert_eq!(sdp.media().len(), 1);
        assert_eq!(m.kind(), &MediaKind::Audio);
        assert_eq!(
            (m.port(), m.port_count(), m.proto()),
            (6000, None, "RTP/AVP")
        );
        assert!(m.is_rtp());
        assert_eq!(m.formats(), ["0", "8", "101"]);
        assert_eq!(m.payload_types().collect::<Vec<_>>(), [0, 8, 101]);
        let pcmu = RtpMap {
            encoding: "PCMU",
            clock_rate: 8000,
            channels: None,
        };
        assert_eq!(m.rtpmap(0), Some(pcmu));
        assert_eq!(
            m.rtpmap(101).map(|r| r.to_string()).as_deref(),
            Some("telephone-event/8000")
        );
        assert_eq!(m.rtpmap(96), None);
        assert_eq!(m.fmtp(101), Some("0-16"));
        assert_eq!(m.fmtp(0), None);
        assert_eq!(m.telephone_event_pt(), Some(101));
        assert_eq!(m.ptime(), Some(20));
        assert_eq!(m.direction(), Some(Direction::SendRecv));
        assert!(!m.rtcp_mux());
        assert_eq!(m.rtcp(), None);
        assert!(!m.is_disabled());
        assert_eq!(m.connection(), None);
        let c = sdp.effective_connection(m).expect("session c=");
        assert_eq!(
            (c.address(), c.ttl(), c.address_count()),
            (ip("192.0.2.10"), None, None)
        );
    }

    #[test]
    fn reads_a_linphone_offer() {
        let sdp = parse(&crlf(LINPHONE_OFFER));
        let audio = &sdp.media()[0];
        // The 8 kHz telephone-event, not the first one listed.
        assert_eq!(audio.telephone_event_pt(), Some(100));
        assert_eq!(
            audio.rtpmap(96),
            Some(RtpMap {
                encoding: "opus",
                clock_rate: 48000,
                channels: Some(2)
            })
        );
        assert_eq!(audio.rtpmap(18).map(|r| r.encoding), Some("G729"));
        assert_eq!(audio.fmtp(18), Some("annexb=no"));
        assert_eq!(
            audio.rtcp(),
            Some(Rtcp {
                port: 7079,
                address: None
            })
        );
        assert_eq!(audio.other_lines().collect::<Vec<_>>(), [('b', "AS:80")]);
        assert_eq!(
            sdp.attribute("rtcp-xr").and_then(Attribute::value),
            Some("rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics")
        );
        let video = &sdp.media()[1];
        assert_eq!(video.kind(), &MediaKind::Video);
        assert!(video.is_disabled());
        assert_eq!(video.telephone_event_pt(), None);
    }

    #[test]
    fn reads_an_ipv6_answer() {
        let sdp = parse(&crlf(IPV6_ANSWER));
        assert_eq!(sdp.origin().address_type(), AddressType::Ip6);
        let m = &sdp.media()[0];
        let c = sdp.effective_connection(m).expect("c=");
        assert_eq!(c.address(), ip("2001:db8::7"));
        assert_eq!(c.address_type(), AddressType::Ip6);
        assert_eq!(
            m.rtcp(),
            Some(Rtcp {
                port: 40001,
                address: Some(ip("2001:db8::7"))
            })
        );
        assert_eq!(
            m.rtpmap(9).map(|r| (r.encoding, r.clock_rate)),
            Some(("G722", 8000))
        );
        assert_eq!(sdp.effective_direction(m), Direction::RecvOnly);
    }

    #[test]
    fn reads_a_webrtc_offer() {
        let sdp = parse(&crlf(WEBRTC_OFFER));
        assert_eq!(sdp.connection(), None);
        let m = &sdp.media()[0];
        assert_eq!(m.proto(), "UDP/TLS/RTP/SAVPF");
        assert!(m.is_rtp());
        assert!(m.rtcp_mux());
        assert_eq!(m.fmtp(111), Some("minptime=10;useinbandfec=1"));
        assert_eq!(m.telephone_event_pt(), Some(126));
        assert_eq!(m.rtcp().and_then(|r| r.address), Some(ip("0.0.0.0")));
        assert_eq!(
            sdp.effective_connection(m).map(Connection::address),
            Some(ip("0.0.0.0"))
        );
        assert_eq!(
            sdp.attribute("msid-semantic").and_then(Attribute::value),
            Some(" WMS stream1")
        );
        assert_eq!(
            m.attributes()
                .iter()
                .filter(|a| a.name() == "candidate")
                .count(),
            2
        );
    }

    #[test]
    fn static_payload_types_need_no_rtpmap_and_rtpmap_wins() {
        let sdp = parse(
            "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n\
             m=audio 4000 RTP/AVP 0 8 9 13 18 3 10\na=rtpmap:3 X-GSM/16000\n\
             m=image 4002 udptl t38\n",
        );
        let m = &sdp.media()[0];
        let names: Vec<_> = m
            .payload_types()
            .map(|pt| m.rtpmap(pt).map(|r| r.to_string()).unwrap_or_default())
            .collect();
        assert_eq!(
            names,
            [
                "PCMU/8000",
                "PCMA/8000",
                "G722/8000",
                "CN/8000",
                "G729/8000",
                "X-GSM/16000",
                "L16/44100/2"
            ]
        );
        let t38 = &sdp.media()[1];
        assert!(!t38.is_rtp());
        assert_eq!(t38.formats(), ["t38"]);
        assert_eq!(t38.payload_types().count(), 0);
        assert_eq!(t38.rtpmap(0), None);
    }

    #[test]
    fn trailing_blank_lines_and_mixed_endings_are_accepted() {
        let text = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\ns=-\r\nc=IN IP4 192.0.2.1\nt=0 0\r\n\r\n\n";
        let sdp = parse(text);
        assert_eq!(
            sdp.to_string(),
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
        );
        // No final line ending at all.
        assert_eq!(parse(text.trim_end()), sdp);
    }

    #[test]
    fn optional_lines_out_of_order_are_written_in_rfc_order() {
        let text = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=x\nt=0 0\nr=7d 1h 0 25h\nk=prompt\nb=CT:128\n\
                    c=IN IP4 192.0.2.1\ni=info\ne=ops@example.com\nz=2882844526 -1h\na=tool:x\nu=http://example.com\n\
                    m=audio 4000 RTP/AVP 0\na=sendonly\nb=AS:64\nc=IN IP4 192.0.2.2\ni=voice\n";
        let sdp = parse(text);
        let canonical = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=x\r\ni=info\r\nu=http://example.com\r\n\
                         e=ops@example.com\r\nc=IN IP4 192.0.2.1\r\nb=CT:128\r\nt=0 0\r\nr=7d 1h 0 25h\r\n\
                         z=2882844526 -1h\r\nk=prompt\r\na=tool:x\r\nm=audio 4000 RTP/AVP 0\r\ni=voice\r\n\
                         c=IN IP4 192.0.2.2\r\nb=AS:64\r\na=sendonly\r\n";
        assert_eq!(sdp.to_string(), canonical);
        assert_eq!(parse(canonical), sdp);
    }

    #[test]
    fn multicast_suffixes_are_kept() {
        let sdp = parse(
            "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 233.252.0.1/127/3\nt=0 0\n\
             m=audio 4000 RTP/AVP 0\nc=IN IP6 ff15::101/2\nm=audio 4002 RTP/AVP 0\nc=IN IP4 233.252.0.9/16\n",
        );
        let c = sdp.connection().expect("c=");
        assert_eq!(
            (c.address(), c.ttl(), c.address_count()),
            (ip("233.252.0.1"), Some(127), Some(3))
        );
        let c6 = sdp.media()[0].connection().expect("c=");
        assert_eq!((c6.ttl(), c6.address_count()), (None, Some(2)));
        assert_eq!(
            sdp.media()[1].connection().and_then(Connection::ttl),
            Some(16)
        );
        assert_eq!(parse(&sdp.to_string()), sdp);
        assert!(sdp.to_string().contains("c=IN IP4 233.252.0.1/127/3\r\n"));
    }

    #[test]
    fn origin_may_name_a_host() {
        let sdp = parse("v=0\no=- 1 1 IN IP4 pbx.example.com\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n");
        assert_eq!(sdp.origin().address(), "pbx.example.com");
        assert_eq!(sdp.origin().ip(), None);
    }

    #[test]
    fn numeric_formats_of_other_protos_are_not_payload_types() {
        let mut sdp = parse(&format!(
            "{BASE}m=application 9 UDP/DTLS/SCTP 5000\na=fmtp:5000 protocol=webrtc-datachannel\n"
        ));
        let m = &mut sdp.media_mut()[0];
        assert!(!m.is_rtp());
        assert_eq!(m.payload_types().count(), 0);
        assert_eq!(m.rtpmap(0), None);
        assert_eq!(m.retain_formats(|_, _| false), 1);
        assert_eq!(m.formats(), ["5000"]);
        assert!(m.attribute("fmtp").is_some());
    }

    #[test]
    fn direction_media_overrides_session_and_defaults_to_sendrecv() {
        let sdp = parse(
            "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\na=sendonly\n\
             m=audio 4000 RTP/AVP 0\nm=audio 4002 RTP/AVP 0\na=inactive\n",
        );
        assert_eq!(sdp.direction(), Some(Direction::SendOnly));
        assert_eq!(
            sdp.effective_direction(&sdp.media()[0]),
            Direction::SendOnly
        );
        assert_eq!(
            sdp.effective_direction(&sdp.media()[1]),
            Direction::Inactive
        );
        let plain = parse(&crlf(SIPP_OFFER).replace("a=sendrecv\r\n", ""));
        assert_eq!(plain.media()[0].direction(), None);
        assert_eq!(
            plain.effective_direction(&plain.media()[0]),
            Direction::SendRecv
        );
    }

    #[test]
    fn media_connection_overrides_session_connection() {
        let sdp = parse(
            "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n\
             m=audio 4000 RTP/AVP 0\nm=video 4002 RTP/AVP 31\nc=IN IP6 2001:db8::2\n",
        );
        let addrs: Vec<_> = sdp
            .media()
            .iter()
            .map(|m| sdp.effective_connection(m).map(Connection::address))
            .collect();
        assert_eq!(addrs, [Some(ip("192.0.2.1")), Some(ip("2001:db8::2"))]);
    }

    /// Five session lines before the body under test: `{BASE}` + line 6 onwards.
    const BASE: &str = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n";

    fn field(line: usize, field: &'static str, expected: &'static str, found: &str) -> SdpError {
        SdpError::Field {
            line,
            field,
            expected,
            found: found.to_owned(),
        }
    }

    #[test]
    fn each_structural_error_names_its_line() {
        let no_c = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\n";
        let cases: Vec<(String, SdpError)> = vec![
            (String::new(), SdpError::Empty),
            ("\r\n\r\n".into(), SdpError::Empty),
            (
                "o=- 1 1 IN IP4 192.0.2.1\nv=0\n".into(),
                SdpError::VersionNotFirst {
                    found: "o=- 1 1 IN IP4 192.0.2.1".into(),
                },
            ),
            (
                "v=1\n".into(),
                SdpError::UnsupportedVersion {
                    line: 1,
                    version: "1".into(),
                },
            ),
            (
                format!("{BASE}x=1\n"),
                SdpError::UnknownType { line: 6, kind: 'x' },
            ),
            (
                format!("{BASE}A=1\n"),
                SdpError::UnknownType { line: 6, kind: 'A' },
            ),
            (
                format!("{BASE}m=audio 4000 RTP/AVP 0\nq=1\n"),
                SdpError::UnknownType { line: 7, kind: 'q' },
            ),
            (
                format!("{BASE}a sendrecv\n"),
                SdpError::NotTypeValue {
                    line: 6,
                    found: "a sendrecv".into(),
                },
            ),
            (
                format!("{BASE}a =sendrecv\n"),
                SdpError::NotTypeValue {
                    line: 6,
                    found: "a =sendrecv".into(),
                },
            ),
            (
                "v=0\n\no=- 1 1 IN IP4 192.0.2.1\n".into(),
                SdpError::EmptyLine { line: 2 },
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\r\n".into(),
                SdpError::ControlCharacter { line: 3 },
            ),
            (
                format!("{BASE}i=a\0b\n"),
                SdpError::ControlCharacter { line: 6 },
            ),
            (
                format!("{BASE}v=0\n"),
                SdpError::Duplicate { line: 6, kind: 'v' },
            ),
            (
                format!("{BASE}o=- 1 1 IN IP4 192.0.2.1\n"),
                SdpError::Duplicate { line: 6, kind: 'o' },
            ),
            (
                format!("{BASE}s=again\n"),
                SdpError::Duplicate { line: 6, kind: 's' },
            ),
            (
                format!("{BASE}c=IN IP4 192.0.2.2\n"),
                SdpError::Duplicate { line: 6, kind: 'c' },
            ),
            (
                format!("{BASE}i=a\ni=b\n"),
                SdpError::Duplicate { line: 7, kind: 'i' },
            ),
            (
                format!("{BASE}m=audio 4000 RTP/AVP 0\nc=IN IP4 192.0.2.2\nc=IN IP4 192.0.2.3\n"),
                SdpError::Duplicate { line: 8, kind: 'c' },
            ),
            (
                format!("{BASE}m=audio 4000 RTP/AVP 0\nt=0 0\n"),
                SdpError::SessionLineInMedia { line: 7, kind: 't' },
            ),
            (
                format!("{BASE}m=audio 4000 RTP/AVP 0\no=- 1 1 IN IP4 192.0.2.1\n"),
                SdpError::SessionLineInMedia { line: 7, kind: 'o' },
            ),
            (
                "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nr=7d 1h 0 25h\nt=0 0\n".into(),
                SdpError::NotAfterTime { line: 4, kind: 'r' },
            ),
            (
                format!("{BASE}a=x\nr=7d 1h 0 25h\n"),
                SdpError::NotAfterTime { line: 7, kind: 'r' },
            ),
            (
                "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nz=2882844526 -1h\nt=0 0\n".into(),
                SdpError::NotAfterTime { line: 4, kind: 'z' },
            ),
            ("v=0\ns=-\nt=0 0\n".into(), SdpError::Missing { kind: 'o' }),
            (
                "v=0\no=- 1 1 IN IP4 192.0.2.1\nt=0 0\n".into(),
                SdpError::Missing { kind: 's' },
            ),
            (
                "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\n".into(),
                SdpError::Missing { kind: 't' },
            ),
            (
                format!(
                    "{no_c}m=audio 4000 RTP/AVP 0\nc=IN IP4 192.0.2.1\nm=audio 4002 RTP/AVP 0\n"
                ),
                SdpError::NoConnection { line: 7, index: 1 },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(SessionDescription::parse(&text), Err(expected), "{text:?}");
        }
    }

    #[test]
    fn each_field_error_names_its_line_and_what_was_expected() {
        let origin = |o: &str| format!("v=0\no={o}\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n");
        let conn = |c: &str| format!("v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc={c}\nt=0 0\n");
        let media = |m: &str| format!("{BASE}m={m}\n");
        let attr = |a: &str| format!("{BASE}m=audio 4000 RTP/AVP 0 96\na={a}\n");
        let cases: Vec<(String, SdpError)> = vec![
            (
                origin("- 1 1 IN IP4"),
                field(
                    2,
                    "o= line",
                    "`<username> <sess-id> <sess-version> IN IP4|IP6 <address>`",
                    "- 1 1 IN IP4",
                ),
            ),
            (
                origin("- 1 1 IN IP4 192.0.2.1 extra"),
                field(
                    2,
                    "o= line",
                    "`<username> <sess-id> <sess-version> IN IP4|IP6 <address>`",
                    "- 1 1 IN IP4 192.0.2.1 extra",
                ),
            ),
            (
                origin(" 1 1 IN IP4 192.0.2.1"),
                field(2, "o= username", "a non-empty username (`-` for none)", ""),
            ),
            (
                origin("- abc 1 IN IP4 192.0.2.1"),
                field(2, "o= session id", "a decimal number below 2^64", "abc"),
            ),
            (
                origin("- 1 +2 IN IP4 192.0.2.1"),
                field(2, "o= session version", "a decimal number below 2^64", "+2"),
            ),
            (
                origin("- 1 99999999999999999999 IN IP4 192.0.2.1"),
                field(
                    2,
                    "o= session version",
                    "a decimal number below 2^64",
                    "99999999999999999999",
                ),
            ),
            (
                origin("- 1 1 ATM IP4 192.0.2.1"),
                field(2, "o= network type", "IN", "ATM"),
            ),
            (
                origin("- 1 1 IN IP4 ???"),
                field(2, "o= address", "an IP address or a domain name", "???"),
            ),
            (
                origin("- 1 1 IN IP4 "),
                field(2, "o= address", "an IP address or a domain name", ""),
            ),
            (
                origin("- 1 1 IN IP6 192.0.2.1"),
                field(2, "o= address", "an IPv6 address after IP6", "192.0.2.1"),
            ),
            (
                conn("IN IP4"),
                field(4, "c= line", "`IN IP4|IP6 <address>`", "IN IP4"),
            ),
            (
                conn("ATM NSAP 47.0005"),
                field(4, "c= network type", "IN", "ATM"),
            ),
            (
                conn("IN IPX 192.0.2.1"),
                field(4, "c= address type", "IP4 or IP6", "IPX"),
            ),
            (
                conn("IN IP4 pbx.example.com"),
                SdpError::Hostname {
                    line: 4,
                    field: "c= address",
                    host: "pbx.example.com".into(),
                },
            ),
            (
                conn("IN IP4 2001:db8::1"),
                field(4, "c= address", "an IPv4 address after IP4", "2001:db8::1"),
            ),
            (
                conn("IN IP6 192.0.2.1"),
                field(4, "c= address", "an IPv6 address after IP6", "192.0.2.1"),
            ),
            (
                conn("IN IP4 192.0.2.256"),
                field(4, "c= address", "an IPv4 address after IP4", "192.0.2.256"),
            ),
            (
                conn("IN IP4 192.0.2.1/127"),
                field(
                    4,
                    "c= address suffix",
                    "no suffix on a unicast address",
                    "192.0.2.1/127",
                ),
            ),
            (
                conn("IN IP4 233.252.0.1/300"),
                field(
                    4,
                    "c= address suffix",
                    "a multicast TTL of 0-255",
                    "233.252.0.1/300",
                ),
            ),
            (
                conn("IN IP4 233.252.0.1/1/0"),
                field(
                    4,
                    "c= address suffix",
                    "a positive number of addresses",
                    "233.252.0.1/1/0",
                ),
            ),
            (
                conn("IN IP4 233.252.0.1/1/2/3"),
                field(
                    4,
                    "c= address suffix",
                    "at most `/<ttl>/<number of addresses>`",
                    "233.252.0.1/1/2/3",
                ),
            ),
            (
                conn("IN IP6 ff15::101/3/2"),
                field(
                    4,
                    "c= address suffix",
                    "only `/<number of addresses>` (IP6 has no TTL)",
                    "ff15::101/3/2",
                ),
            ),
            (
                conn("IN IP6 2001:db8::1/2"),
                field(
                    4,
                    "c= address suffix",
                    "no suffix on a unicast address",
                    "2001:db8::1/2",
                ),
            ),
            (
                "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0\n".into(),
                field(
                    4,
                    "t= line",
                    "`<start time> <stop time>` as decimal numbers",
                    "0",
                ),
            ),
            (
                media("audio"),
                field(6, "m= line", "`<media> <port> <proto> <fmt> ...`", "audio"),
            ),
            (
                media("audio 4000 RTP/AVP"),
                field(
                    6,
                    "m= line",
                    "at least one format after the proto",
                    "audio 4000 RTP/AVP",
                ),
            ),
            (
                media("audio 70000 RTP/AVP 0"),
                field(6, "m= port", "a port number 0-65535", "70000"),
            ),
            (
                media("audio 4000/0 RTP/AVP 0"),
                field(6, "m= number of ports", "a positive number", "0"),
            ),
            (
                media("audio 4000 RTP//AVP 0"),
                field(
                    6,
                    "m= proto",
                    "tokens separated by / such as RTP/AVP",
                    "RTP//AVP",
                ),
            ),
            (
                media("audio 4000 RTP/AVP 0 128"),
                field(6, "m= format", "an RTP payload type 0-127", "128"),
            ),
            (
                media("audio 4000 RTP/AVP 0 8 0"),
                field(6, "m= format", "each payload type listed once", "0"),
            ),
            (
                media("audio 4000 RTP/AVP 0  8"),
                field(6, "m= format", "an RTP payload type 0-127", ""),
            ),
            (
                media("au\"dio 4000 RTP/AVP 0"),
                field(6, "m= media", "a token such as audio or video", "au\"dio"),
            ),
            (attr("rtpmap"), field(7, "a=rtpmap", RTPMAP_FORM, "")),
            (attr("rtpmap:96"), field(7, "a=rtpmap", RTPMAP_FORM, "96")),
            (
                attr("rtpmap:200 opus/48000"),
                field(7, "a=rtpmap payload type", "a number 0-127", "200"),
            ),
            (
                attr("rtpmap:96 opus"),
                field(
                    7,
                    "a=rtpmap clock rate",
                    "`/<clock rate in Hz>` after the encoding",
                    "opus",
                ),
            ),
            (
                attr("rtpmap:96 opus/0"),
                field(
                    7,
                    "a=rtpmap clock rate",
                    "`/<clock rate in Hz>` after the encoding",
                    "opus/0",
                ),
            ),
            (
                attr("rtpmap:96 opus/48000/x"),
                field(7, "a=rtpmap channels", "a positive number of channels", "x"),
            ),
            (
                attr("rtpmap:96 opus/48000/2/1"),
                field(7, "a=rtpmap", RTPMAP_FORM, "96 opus/48000/2/1"),
            ),
            (
                attr("rtpmap:96 /48000"),
                field(7, "a=rtpmap encoding", "an encoding name such as PCMU", ""),
            ),
            (
                attr("fmtp:x-96 0-15"),
                field(7, "a=fmtp format", "an RTP payload type 0-127", "x-96"),
            ),
            (
                attr("fmtp"),
                field(7, "a=fmtp", "`<format> <parameters>`", ""),
            ),
            (
                attr("rtcp:abc"),
                field(7, "a=rtcp port", "a port number 0-65535", "abc"),
            ),
            (
                attr("rtcp:5001 IN IP4"),
                field(
                    7,
                    "a=rtcp",
                    "`<port> [IN IP4|IP6 <address>]`",
                    "5001 IN IP4",
                ),
            ),
            (
                attr("rtcp:5001 IN IP4 media.example.com"),
                SdpError::Hostname {
                    line: 7,
                    field: "a=rtcp address",
                    host: "media.example.com".into(),
                },
            ),
            (
                attr("ptime:20.5"),
                field(7, "a=ptime", "a whole number of milliseconds", "20.5"),
            ),
            (
                attr("ptime:0"),
                field(7, "a=ptime", "a whole number of milliseconds", "0"),
            ),
            (
                attr(":sendrecv"),
                field(7, "a= attribute name", "a token", ""),
            ),
            (
                format!(
                    "{BASE}m=audio 4000 RTP/AVP 96\na=rtpmap:96 opus/48000/2\na=rtpmap:96 PCMU/8000\n"
                ),
                SdpError::DuplicateRtpmap { line: 8, pt: 96 },
            ),
            (
                format!("{BASE}a=sendonly\nm=audio 4000 RTP/AVP 0\na=sendonly\na=recvonly\n"),
                SdpError::DuplicateDirection {
                    line: 9,
                    found: Direction::RecvOnly,
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(SessionDescription::parse(&text), Err(expected), "{text:?}");
        }
    }

    #[test]
    fn same_payload_type_may_be_mapped_in_two_sections() {
        let text = format!(
            "{BASE}m=audio 4000 RTP/AVP 96\na=rtpmap:96 opus/48000/2\na=sendonly\n\
             m=audio 4002 RTP/AVP 96\na=rtpmap:96 opus/48000/2\na=sendonly\n"
        );
        assert_eq!(parse(&text).media().len(), 2);
    }

    #[test]
    fn error_messages_say_where_and_what() {
        let e = SessionDescription::parse(&format!(
            "{BASE}m=audio 4000 RTP/AVP 0\nc=IN IP4 pbx.example.com\n"
        ))
        .expect_err("hostname");
        assert_eq!(
            e.to_string(),
            "line 7: c= address \"pbx.example.com\" is a hostname; only IP addresses are accepted (names are never resolved)"
        );
        let e = SessionDescription::parse(&format!("{BASE}m=audio 4000 RTP/AVP 0 128\n"))
            .expect_err("pt");
        assert_eq!(
            e.to_string(),
            "line 6: m= format: expected an RTP payload type 0-127, found \"128\""
        );
        let long = format!("{BASE}{}\n", "z".repeat(200));
        match SessionDescription::parse(&long) {
            Err(SdpError::NotTypeValue { line: 6, found }) => {
                assert_eq!(found.chars().count(), 65, "64 characters and an ellipsis");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn limits_size_and_media_count() {
        let mut text = String::from(BASE);
        for i in 0..MAX_MEDIA {
            text.push_str(&format!("m=audio {} RTP/AVP 0\n", 4000 + 2 * i));
        }
        assert_eq!(parse(&text).media().len(), MAX_MEDIA);
        text.push_str("m=audio 9000 RTP/AVP 0\n");
        assert_eq!(
            SessionDescription::parse(&text),
            Err(SdpError::TooManyMedia {
                line: 5 + MAX_MEDIA + 1,
                max: MAX_MEDIA
            })
        );

        let mut big = String::from(BASE);
        while big.len() <= MAX_SDP_LEN {
            big.push_str("a=x-padding:0123456789abcdef0123456789abcdef\n");
        }
        assert_eq!(
            SessionDescription::parse(&big),
            Err(SdpError::TooLarge {
                len: big.len(),
                max: MAX_SDP_LEN
            })
        );
        // Just under the limit is fine.
        let fits = format!("{BASE}a=x:{}\n", "y".repeat(MAX_SDP_LEN - BASE.len() - 5));
        assert_eq!(fits.len(), MAX_SDP_LEN);
        assert!(SessionDescription::parse(&fits).is_ok());
    }

    #[test]
    fn anchors_a_sipp_offer_with_rtcp_on_its_own_port() {
        let mut sdp = parse(&crlf(SIPP_OFFER));
        let relay = ip("203.0.113.5");
        sdp.origin_mut().set_username("tongdai").expect("username");
        sdp.origin_mut().set_address(relay);
        sdp.bump_version();
        sdp.anchor(0, relay, 30000, RtcpPlacement::Port(30001))
            .expect("anchor");
        let expected = "v=0
o=tongdai 53655765 2353687638 IN IP4 203.0.113.5
s=-
c=IN IP4 203.0.113.5
t=0 0
m=audio 30000 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=sendrecv
a=rtcp:30001
";
        assert_eq!(sdp.to_string(), crlf(expected));
        // Anchoring again (re-INVITE through the same relay port) changes nothing.
        let again = sdp.clone();
        sdp.anchor(0, relay, 30000, RtcpPlacement::Port(30001))
            .expect("anchor");
        assert_eq!(sdp, again);
    }

    #[test]
    fn anchors_a_webrtc_offer_on_ipv6_with_rtcp_mux() {
        let mut sdp = parse(&crlf(WEBRTC_OFFER));
        sdp.anchor(0, ip("2001:db8::1"), 30000, RtcpPlacement::Mux)
            .expect("anchor");
        let expected = "v=0
o=- 4611731400430051336 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0
a=extmap-allow-mixed
a=msid-semantic: WMS stream1
m=audio 30000 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126
c=IN IP6 2001:db8::1
a=fingerprint:sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:4D:35:7C:1B:8A:3E:2F:B8:CA:6E:CF:D2
a=setup:actpass
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=sendrecv
a=msid:stream1 track1
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:63 red/48000/2
a=fmtp:63 111/111
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:13 CN/8000
a=rtpmap:110 telephone-event/48000
a=rtpmap:126 telephone-event/8000
a=ssrc:1001 cname:4TOk42mSjXCkVIa6
";
        assert_eq!(sdp.to_string(), crlf(expected));
    }

    #[test]
    fn anchoring_switches_between_mux_and_rtcp_port() {
        let mut sdp = parse(&crlf(LINPHONE_OFFER));
        let relay = ip("203.0.113.5");
        sdp.anchor(0, relay, 31000, RtcpPlacement::Mux)
            .expect("anchor");
        let m = &sdp.media()[0];
        assert_eq!((m.rtcp(), m.rtcp_mux()), (None, true));
        assert_eq!(m.attributes().last().map(Attribute::name), Some("rtcp-mux"));

        sdp.media_mut()[0]
            .push_attribute("rtcp-mux-only", None)
            .expect("flag");
        sdp.anchor(0, relay, 31000, RtcpPlacement::Port(31001))
            .expect("anchor");
        let m = &sdp.media()[0];
        assert_eq!(
            m.rtcp(),
            Some(Rtcp {
                port: 31001,
                address: None
            })
        );
        assert!(!m.rtcp_mux());
        assert_eq!(m.attribute("rtcp-mux-only"), None);
    }

    #[test]
    fn anchoring_one_section_never_redirects_another() {
        let mut sdp = parse(&format!(
            "{BASE}m=audio 4000 RTP/AVP 0\nm=video 4002 RTP/AVP 31\nm=video 0 RTP/AVP 31\n\
             m=text 4004 RTP/AVP 98\nc=IN IP4 192.0.2.9\n"
        ));
        let relay = ip("203.0.113.5");
        sdp.anchor(0, relay, 30000, RtcpPlacement::Mux)
            .expect("anchor");
        let addr = |sdp: &SessionDescription, i: usize| {
            sdp.effective_connection(&sdp.media()[i])
                .map(Connection::address)
        };
        assert_eq!(addr(&sdp, 0), Some(relay));
        // The other active video keeps the far end; the disabled one does not need it.
        assert_eq!(addr(&sdp, 1), Some(ip("192.0.2.1")));
        assert_eq!(
            sdp.media()[1].connection().map(Connection::address),
            Some(ip("192.0.2.1"))
        );
        assert_eq!(sdp.media()[2].connection(), None);
        assert_eq!(addr(&sdp, 3), Some(ip("192.0.2.9")));
        // A section with its own c= is rewritten there, the session c= stays ours.
        sdp.anchor(3, relay, 30002, RtcpPlacement::Mux)
            .expect("anchor");
        assert_eq!(
            sdp.media()[3].connection().map(Connection::address),
            Some(relay)
        );
        sdp.anchor(1, relay, 30004, RtcpPlacement::Mux)
            .expect("anchor");
        assert!(
            sdp.media()
                .iter()
                .all(|m| sdp.effective_connection(m).map(Connection::address) == Some(relay))
        );
        assert!(
            !sdp.to_string().contains("192.0.2.1\r\nt="),
            "no far-end session address left"
        );
        assert_eq!(
            sdp.anchor(4, relay, 1, RtcpPlacement::Mux),
            Err(SdpError::NoSuchMedia { index: 4, count: 4 })
        );
    }

    #[test]
    fn anchoring_removes_session_level_ice() {
        let mut sdp = parse(&format!(
            "{BASE}a=ice-lite\na=ice-ufrag:abcd\na=ice-pwd:0123456789abcdefghijkl\na=tool:x\n\
             m=audio 4000 RTP/AVP 0\na=candidate:1 1 UDP 2130706431 192.0.2.1 4000 typ host\n"
        ));
        sdp.anchor(0, ip("203.0.113.5"), 30000, RtcpPlacement::Mux)
            .expect("anchor");
        let names: Vec<_> = sdp.attributes().iter().map(Attribute::name).collect();
        assert_eq!(names, ["tool"]);
        assert_eq!(sdp.media()[0].attribute("candidate"), None);
    }

    #[test]
    fn removes_every_ice_attribute() {
        let mut sdp = parse(&crlf(WEBRTC_OFFER));
        sdp.push_attribute("ice-options", Some("trickle"))
            .expect("attr");
        sdp.media_mut()[0]
            .push_attribute("remote-candidates", Some("1 192.0.2.3 45664"))
            .expect("attr");
        assert_eq!(sdp.remove_ice(), 8);
        assert_eq!(sdp.remove_ice(), 0);
        let text = sdp.to_string();
        for name in ICE_ATTRIBUTES {
            assert!(
                !text.contains(&format!("a={name}")),
                "{name} left in {text}"
            );
        }
        assert!(text.contains("a=fingerprint:"));
    }

    #[test]
    fn sets_ports_addresses_and_directions() {
        let mut sdp = parse(&crlf(SIPP_OFFER).replace("m=audio 6000 ", "m=audio 6000/2 "));
        assert_eq!(sdp.media()[0].port_count(), Some(2));
        let m = &mut sdp.media_mut()[0];
        m.set_port(7000);
        assert_eq!((m.port(), m.port_count()), (7000, None));
        m.set_connection_address(ip("2001:db8::5"));
        m.set_direction(Direction::SendOnly);
        assert_eq!(m.direction(), Some(Direction::SendOnly));
        assert_eq!(
            m.attributes().last().map(Attribute::name),
            Some("sendonly"),
            "replaced in place"
        );
        m.set_rtcp(Some(Rtcp {
            port: 7001,
            address: Some(ip("2001:db8::5")),
        }));
        sdp.set_connection_address(ip("::ffff:198.51.100.1"));
        sdp.set_direction(Direction::Inactive);
        let text = sdp.to_string();
        assert!(text.contains("\r\nc=IN IP4 198.51.100.1\r\n"), "{text}");
        assert!(
            text.contains("m=audio 7000 RTP/AVP 0 8 101\r\nc=IN IP6 2001:db8::5\r\n"),
            "{text}"
        );
        assert!(
            text.contains("a=sendonly\r\na=rtcp:7001 IN IP6 2001:db8::5\r\n"),
            "{text}"
        );
        assert!(text.contains("t=0 0\r\na=inactive\r\nm="), "{text}");
        let again = parse(&text);
        assert_eq!(again, sdp);
        assert_eq!(
            again.effective_direction(&again.media()[0]),
            Direction::SendOnly
        );

        sdp.media_mut()[0].set_rtcp(None);
        sdp.media_mut()[0].disable();
        assert!(sdp.media()[0].is_disabled());
        assert_eq!(sdp.media()[0].rtcp(), None);
        assert!(sdp.to_string().contains("m=audio 0 RTP/AVP"));
    }

    #[test]
    fn direction_setter_replaces_every_direction_attribute() {
        let mut m =
            MediaDescription::new(MediaKind::Audio, 4000, "RTP/AVP", &["0"]).expect("media");
        m.push_attribute("recvonly", None).expect("attr");
        m.push_attribute("ptime", Some("20")).expect("attr");
        m.push_attribute("inactive", None).expect("attr");
        m.set_direction(Direction::SendRecv);
        let names: Vec<_> = m.attributes().iter().map(Attribute::name).collect();
        assert_eq!(names, ["sendrecv", "ptime"]);
    }

    #[test]
    fn origin_setters_and_version_bump() {
        let mut sdp = parse(&crlf(IPV6_ANSWER));
        let o = sdp.origin_mut();
        o.set_session_id(42);
        o.set_session_version(u64::MAX - 1);
        o.set_address(ip("192.0.2.77"));
        assert_eq!(o.set_username("two words").map_err(|e| e.to_string()), Err(
            "o= username: expected a non-empty string without whitespace (`-` for none), got \"two words\"".into()
        ));
        assert!(o.set_username("").is_err());
        sdp.bump_version();
        assert_eq!(sdp.origin().session_version(), u64::MAX);
        sdp.bump_version();
        assert_eq!(sdp.origin().session_version(), u64::MAX, "saturates");
        assert!(
            sdp.to_string()
                .contains(&format!("o=- 42 {} IN IP4 192.0.2.77\r\n", u64::MAX))
        );
        sdp.origin_mut().set_address(ip("2001:db8::9"));
        assert_eq!(
            sdp.origin().to_string(),
            format!("- 42 {} IN IP6 2001:db8::9", u64::MAX)
        );
    }

    #[test]
    fn retain_formats_applies_codec_policy() {
        let mut sdp = parse(&crlf(WEBRTC_OFFER));
        let m = &mut sdp.media_mut()[0];
        // Tenant policy: G.711 and 8 kHz DTMF only.
        let remaining = m.retain_formats(|_, map| {
            map.is_some_and(|r| {
                ["PCMU", "PCMA"].contains(&r.encoding)
                    || (r.encoding.eq_ignore_ascii_case("telephone-event") && r.clock_rate == 8000)
            })
        });
        assert_eq!(remaining, 3);
        assert_eq!(m.formats(), ["0", "8", "126"]);
        let text = sdp.to_string();
        for gone in [
            "a=rtpmap:111",
            "a=fmtp:111",
            "a=rtcp-fb:111",
            "a=rtpmap:63",
            "a=fmtp:63",
            "a=rtpmap:110",
        ] {
            assert!(!text.contains(gone), "{gone} left");
        }
        assert!(text.contains("m=audio 9 UDP/TLS/RTP/SAVPF 0 8 126\r\n"));
        assert!(text.contains("a=rtpmap:126 telephone-event/8000\r\n"));
        assert_eq!(parse(&text), sdp);
    }

    #[test]
    fn retain_formats_sees_static_payload_types_and_keeps_wildcards() {
        let mut sdp = parse(&crlf(LINPHONE_OFFER));
        let m = &mut sdp.media_mut()[0];
        let mut seen = Vec::new();
        let remaining = m.retain_formats(|pt, map| {
            seen.push((pt, map.map(|r| r.encoding.to_owned())));
            pt < 96
        });
        assert_eq!(
            seen,
            [
                (96, Some("opus".into())),
                (97, Some("speex".into())),
                (0, Some("PCMU".into())),
                (8, Some("PCMA".into())),
                (18, Some("G729".into())),
                (101, Some("telephone-event".into())),
                (100, Some("telephone-event".into())),
            ]
        );
        assert_eq!(remaining, 3);
        assert_eq!(m.fmtp(18), Some("annexb=no"));
        assert_eq!(m.telephone_event_pt(), None);
        let fb: Vec<_> = m
            .attributes()
            .iter()
            .filter(|a| a.name() == "rtcp-fb")
            .filter_map(Attribute::value)
            .collect();
        assert_eq!(fb, ["* trr-int 1000"]);
        // Keeping everything touches nothing.
        let before = m.clone();
        assert_eq!(m.retain_formats(|_, _| true), 3);
        assert_eq!(*m, before);
    }

    #[test]
    fn retain_formats_with_nothing_left_disables_the_section() {
        let mut sdp = parse(&crlf(LINPHONE_OFFER));
        let m = &mut sdp.media_mut()[0];
        assert_eq!(
            m.retain_formats(|_, map| map.is_some_and(|r| r.encoding == "AMR")),
            0
        );
        assert!(m.is_disabled());
        assert_eq!(
            m.formats(),
            ["96"],
            "a rejected stream still lists one format"
        );
        assert_eq!(m.attribute("rtpmap"), None);
        assert_eq!(m.attribute("fmtp"), None);
        let text = sdp.to_string();
        assert!(text.contains("m=audio 0 RTP/AVP 96\r\nb=AS:80\r\na=rtcp:7079\r\na=rtcp-fb:* trr-int 1000\r\nm=video"), "{text}");
        assert_eq!(parse(&text), sdp);
    }

    #[test]
    fn retain_formats_keeps_non_rtp_formats() {
        let mut m =
            MediaDescription::new(MediaKind::Image, 4002, "udptl", &["t38"]).expect("media");
        assert_eq!(m.retain_formats(|_, _| false), 1);
        assert_eq!(m.formats(), ["t38"]);
        assert!(!m.is_disabled());
    }

    #[test]
    fn builds_a_description_of_our_own() {
        let relay = ip("203.0.113.5");
        let origin = Origin::new("tongdai", 7, 1, relay).expect("origin");
        let mut sdp = SessionDescription::new(origin, relay);
        let mut audio =
            MediaDescription::new(MediaKind::Audio, 30000, "RTP/AVP", &["0", "8", "101"])
                .expect("media");
        audio
            .push_attribute("rtpmap", Some("101 telephone-event/8000"))
            .expect("rtpmap");
        audio
            .push_attribute("fmtp", Some("101 0-15"))
            .expect("fmtp");
        audio.push_attribute("ptime", Some("20")).expect("ptime");
        audio.set_direction(Direction::SendOnly);
        audio.set_rtcp_mux(true);
        audio.set_rtcp_mux(true);
        sdp.push_media(audio).expect("media");
        sdp.set_session_name("tongdai").expect("name");
        let expected = "v=0
o=tongdai 7 1 IN IP4 203.0.113.5
s=tongdai
c=IN IP4 203.0.113.5
t=0 0
m=audio 30000 RTP/AVP 0 8 101
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=ptime:20
a=sendonly
a=rtcp-mux
";
        assert_eq!(sdp.to_string(), crlf(expected));
        assert_eq!(parse(expected), sdp);
        for _ in 1..MAX_MEDIA {
            let m = MediaDescription::new(MediaKind::Audio, 0, "RTP/AVP", &["0"]).expect("media");
            sdp.push_media(m).expect("below the limit");
        }
        let m = MediaDescription::new(MediaKind::Audio, 0, "RTP/AVP", &["0"]).expect("media");
        assert!(sdp.push_media(m).is_err());
    }

    #[test]
    fn constructors_and_setters_refuse_what_cannot_be_written() {
        let relay = ip("203.0.113.5");
        assert!(Origin::new("a b", 1, 1, relay).is_err());
        assert_eq!(
            MediaDescription::new(MediaKind::Audio, 1, "RTP/AVP", &["300"]),
            Err(SdpError::InvalidValue {
                field: "m= format",
                expected: "an RTP payload type 0-127",
                found: "300".into()
            })
        );
        assert!(MediaDescription::new(MediaKind::Audio, 1, "RTP/AVP", &[]).is_err());
        assert!(
            MediaDescription::new(MediaKind::Other("a b".into()), 1, "RTP/AVP", &["0"]).is_err()
        );
        assert!(MediaDescription::new(MediaKind::Audio, 1, "RTP/AVP\r\n", &["0"]).is_err());
        assert_eq!(
            MediaDescription::new(MediaKind::Audio, 1, "RTP/AVP", &["0 8"]),
            Err(SdpError::InvalidValue {
                field: "m= line",
                expected: "media, proto and formats without spaces or line breaks",
                found: "0 8".into()
            })
        );
        let mut m = MediaDescription::new(MediaKind::Audio, 1, "RTP/AVP", &["0"]).expect("media");
        assert_eq!(
            m.push_attribute("rtpmap", Some("96 opus")),
            Err(SdpError::InvalidValue {
                field: "a=rtpmap clock rate",
                expected: "`/<clock rate in Hz>` after the encoding",
                found: "opus".into()
            })
        );
        assert!(m.push_attribute("x", Some("a\r\nm=audio")).is_err());
        assert_eq!(
            m.push_attribute("rtcp", Some("4001 IN IP4 media.example.com")),
            Err(SdpError::InvalidValue {
                field: "a=rtcp address",
                expected: "an IP address, not a hostname",
                found: "media.example.com".into()
            })
        );
        assert!(m.push_attribute("bad name", None).is_err());
        assert!(m.push_attribute("ptime", None).is_err());
        assert_eq!(m.attributes().len(), 0);
        let mut sdp =
            SessionDescription::new(Origin::new("-", 1, 1, relay).expect("origin"), relay);
        assert!(sdp.set_session_name("").is_err());
        assert!(sdp.set_session_name("a\nb").is_err());
        assert!(sdp.push_attribute("tool", Some("tongdai")).is_ok());
        assert_eq!(sdp.remove_attributes("tool"), 1);
    }

    #[test]
    fn connection_from_a_mapped_address_is_ipv4() {
        let c = Connection::new(ip("::ffff:192.0.2.1"));
        assert_eq!(c.to_string(), "IN IP4 192.0.2.1");
        assert_eq!(
            Connection::new(ip("2001:db8::1")).to_string(),
            "IN IP6 2001:db8::1"
        );
    }

    // --- generated descriptions -------------------------------------------------------

    fn arb_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u8; 16]>().prop_map(IpAddr::from),
        ]
    }

    /// The text of a valid `c=` value.
    fn arb_connection() -> impl Strategy<Value = String> {
        let count = || {
            proptest::option::of(1u32..5)
                .prop_map(|n| n.map(|n| format!("/{n}")).unwrap_or_default())
        };
        prop_oneof![
            4 => arb_ip().prop_map(|a| format!("IN {} {a}", AddressType::of(a))),
            1 => (224u8..240, any::<[u8; 3]>(), any::<u8>(), count())
                .prop_map(|(a, [b, c, d], ttl, n)| format!("IN IP4 {a}.{b}.{c}.{d}/{ttl}{n}")),
            1 => (any::<[u8; 14]>(), count()).prop_map(|(rest, n)| {
                let mut b = [0xff; 16];
                b[2..].copy_from_slice(&rest);
                format!("IN IP6 {}{n}", Ipv6Addr::from(b))
            }),
        ]
    }

    /// Free text as SDP allows it, including non-ASCII.
    fn arb_text() -> impl Strategy<Value = String> {
        "[ -~àáảãạđĐ]{0,16}"
    }

    /// An attribute this module does not interpret, as `name[:value]`.
    fn arb_other_attribute() -> impl Strategy<Value = String> {
        (
            prop::sample::select(vec![
                "mid", "label", "x-tenant", "ssrc", "setup", "maxptime", "tool", "rtcp-fb",
            ]),
            proptest::option::of(arb_text()),
        )
            .prop_map(|(name, value)| match value {
                Some(v) => format!("{name}:{v}"),
                None => name.to_owned(),
            })
    }

    fn arb_direction() -> impl Strategy<Value = Option<Direction>> {
        proptest::option::of(prop::sample::select(vec![
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ]))
    }

    /// (encoding, clock rate, channels) of a generated `a=rtpmap`.
    type GenRtpMap = (&'static str, u32, Option<u16>);

    #[derive(Debug, Clone)]
    struct GenMedia {
        kind: &'static str,
        port: u16,
        port_count: Option<u16>,
        proto: &'static str,
        pts: Vec<u8>,
        /// Per payload type: its rtpmap and fmtp, if any.
        maps: Vec<(Option<GenRtpMap>, Option<String>)>,
        connection: Option<String>,
        info: Option<String>,
        bandwidths: Vec<u32>,
        direction: Option<Direction>,
        rtcp: Option<(u16, Option<IpAddr>)>,
        mux: bool,
        ptime: Option<u32>,
        others: Vec<String>,
    }

    fn arb_media() -> impl Strategy<Value = GenMedia> {
        let head = (
            prop::sample::select(vec![
                "audio",
                "video",
                "text",
                "application",
                "image",
                "x-custom",
            ]),
            any::<u16>(),
            proptest::option::of(1u16..4),
            prop::sample::select(vec![
                "RTP/AVP",
                "RTP/SAVP",
                "RTP/AVPF",
                "UDP/TLS/RTP/SAVPF",
                "udptl",
                "TCP/MSRP",
            ]),
            prop::collection::btree_set(0u8..128, 1..6).prop_shuffle_free(),
        );
        let map = (
            proptest::option::of((
                prop::sample::select(vec![
                    "PCMU",
                    "PCMA",
                    "opus",
                    "telephone-event",
                    "G722",
                    "H264",
                    "speex",
                ]),
                prop::sample::select(vec![8000u32, 16000, 48000, 90000]),
                proptest::option::of(1u16..3),
            )),
            proptest::option::of("[a-z0-9=;-]{1,12}"),
        );
        let maps = prop::collection::vec(map, 6);
        let lines = (
            proptest::option::of(arb_connection()),
            proptest::option::of(arb_text()),
            prop::collection::vec(0u32..100_000, 0..2),
        );
        let attrs = (
            arb_direction(),
            proptest::option::of((any::<u16>(), proptest::option::of(arb_ip()))),
            any::<bool>(),
            proptest::option::of(1u32..200),
            prop::collection::vec(arb_other_attribute(), 0..4),
        );
        (head, maps, lines, attrs).prop_map(
            |(
                (kind, port, port_count, proto, pts),
                maps,
                (connection, info, bandwidths),
                (direction, rtcp, mux, ptime, others),
            )| GenMedia {
                kind,
                port,
                port_count,
                proto,
                pts,
                maps,
                connection,
                info,
                bandwidths,
                direction,
                rtcp,
                mux,
                ptime,
                others,
            },
        )
    }

    /// `prop_shuffle` on the set's order so payload types come in any preference order.
    trait ShuffleFree {
        fn prop_shuffle_free(self) -> BoxedStrategy<Vec<u8>>;
    }

    impl<S: Strategy<Value = std::collections::BTreeSet<u8>> + 'static> ShuffleFree for S {
        fn prop_shuffle_free(self) -> BoxedStrategy<Vec<u8>> {
            self.prop_map(|s| s.into_iter().collect::<Vec<_>>())
                .prop_shuffle()
                .boxed()
        }
    }

    #[derive(Debug, Clone)]
    struct GenSdp {
        username: String,
        session_id: u64,
        version: u64,
        origin: IpAddr,
        name: String,
        info: Option<String>,
        emails: Vec<String>,
        connection: Option<String>,
        bandwidths: Vec<u32>,
        repeat: bool,
        direction: Option<Direction>,
        others: Vec<String>,
        media: Vec<GenMedia>,
        lf: bool,
    }

    fn arb_sdp() -> impl Strategy<Value = GenSdp> {
        let head = (
            "-|[a-zA-Z0-9_.]{1,10}",
            any::<u64>(),
            any::<u64>(),
            arb_ip(),
            arb_text(),
            proptest::option::of(arb_text()),
            prop::collection::vec("[a-z]{1,8}@example\\.com", 0..2),
        );
        let rest = (
            proptest::option::of(arb_connection()),
            prop::collection::vec(0u32..100_000, 0..2),
            any::<bool>(),
            arb_direction(),
            prop::collection::vec(arb_other_attribute(), 0..3),
            prop::collection::vec(arb_media(), 0..4),
            any::<bool>(),
        );
        (head, rest).prop_map(
            |(
                (username, session_id, version, origin, name, info, emails),
                (connection, bandwidths, repeat, direction, others, media, lf),
            )| GenSdp {
                username,
                session_id,
                version,
                origin,
                name,
                info,
                emails,
                connection,
                bandwidths,
                repeat,
                direction,
                others,
                media,
                lf,
            },
        )
    }

    impl GenSdp {
        /// Canonical text (RFC order), with LF or CRLF endings.
        fn render(&self) -> String {
            let mut l = vec![
                "v=0".to_owned(),
                format!(
                    "o={} {} {} IN {} {}",
                    self.username,
                    self.session_id,
                    self.version,
                    AddressType::of(self.origin),
                    self.origin
                ),
                format!("s={}", self.name),
            ];
            l.extend(self.info.iter().map(|i| format!("i={i}")));
            l.extend(self.emails.iter().map(|e| format!("e={e}")));
            l.extend(self.connection.iter().map(|c| format!("c={c}")));
            l.extend(self.bandwidths.iter().map(|b| format!("b=AS:{b}")));
            l.push("t=0 0".into());
            if self.repeat {
                l.push("r=604800 3600 0 90000".into());
            }
            l.extend(self.others.iter().map(|a| format!("a={a}")));
            l.extend(self.direction.iter().map(|d| format!("a={d}")));
            for m in &self.media {
                let rtp = is_rtp_proto(m.proto);
                let formats: Vec<String> = m
                    .pts
                    .iter()
                    .map(|pt| {
                        if rtp {
                            pt.to_string()
                        } else {
                            format!("f{pt}")
                        }
                    })
                    .collect();
                let count = m.port_count.map(|c| format!("/{c}")).unwrap_or_default();
                l.push(format!(
                    "m={} {}{count} {} {}",
                    m.kind,
                    m.port,
                    m.proto,
                    formats.join(" ")
                ));
                l.extend(m.info.iter().map(|i| format!("i={i}")));
                // Without a session c=, every section needs its own.
                let conn = m.connection.clone().or_else(|| {
                    self.connection
                        .is_none()
                        .then(|| "IN IP4 192.0.2.1".to_owned())
                });
                l.extend(conn.map(|c| format!("c={c}")));
                l.extend(m.bandwidths.iter().map(|b| format!("b=TIAS:{b}")));
                for (format, (map, fmtp)) in formats.iter().zip(&m.maps) {
                    if let (true, Some((enc, clock, ch))) = (rtp, map) {
                        let ch = ch.map(|c| format!("/{c}")).unwrap_or_default();
                        l.push(format!("a=rtpmap:{format} {enc}/{clock}{ch}"));
                    }
                    if let Some(params) = fmtp {
                        l.push(format!("a=fmtp:{format} {params}"));
                    }
                }
                l.extend(m.direction.iter().map(|d| format!("a={d}")));
                if let Some((port, addr)) = m.rtcp {
                    let addr = addr
                        .map(|a| format!(" IN {} {a}", AddressType::of(a)))
                        .unwrap_or_default();
                    l.push(format!("a=rtcp:{port}{addr}"));
                }
                if m.mux {
                    l.push("a=rtcp-mux".into());
                }
                l.extend(m.ptime.iter().map(|p| format!("a=ptime:{p}")));
                l.extend(m.others.iter().map(|a| format!("a={a}")));
            }
            let eol = if self.lf { "\n" } else { "\r\n" };
            let mut text = l.join(eol);
            text.push_str(eol);
            text
        }
    }

    proptest! {
        #[test]
        fn generated_descriptions_round_trip(g in arb_sdp()) {
            let text = g.render();
            let sdp = SessionDescription::parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            let written = sdp.to_string();
            prop_assert_eq!(&written, &text.replace("\r\n", "\n").replace('\n', "\r\n"));
            let again = SessionDescription::parse(&written).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&again, &sdp);

            prop_assert_eq!(sdp.origin().session_version(), g.version);
            prop_assert_eq!(sdp.session_name(), g.name.as_str());
            prop_assert_eq!(sdp.direction(), g.direction);
            prop_assert_eq!(sdp.media().len(), g.media.len());
            for (m, gm) in sdp.media().iter().zip(&g.media) {
                prop_assert_eq!(m.port(), gm.port);
                prop_assert_eq!(m.port_count(), gm.port_count);
                prop_assert_eq!(m.proto(), gm.proto);
                prop_assert_eq!(m.is_disabled(), gm.port == 0);
                prop_assert_eq!(m.rtcp_mux(), gm.mux);
                prop_assert_eq!(m.ptime(), gm.ptime);
                prop_assert_eq!(m.rtcp(), gm.rtcp.map(|(port, address)| Rtcp { port, address }));
                prop_assert_eq!(sdp.effective_direction(m), gm.direction.or(g.direction).unwrap_or(Direction::SendRecv));
                prop_assert!(sdp.effective_connection(m).is_some());
                if m.is_rtp() {
                    prop_assert_eq!(m.payload_types().collect::<Vec<_>>(), gm.pts.clone());
                    for (pt, (map, fmtp)) in gm.pts.iter().zip(&gm.maps) {
                        if let Some((enc, clock, ch)) = map {
                            prop_assert_eq!(m.rtpmap(*pt), Some(RtpMap { encoding: enc, clock_rate: *clock, channels: *ch }));
                        }
                        prop_assert_eq!(m.fmtp(*pt), fmtp.as_deref());
                    }
                }
            }
        }

        #[test]
        fn anchoring_generated_descriptions_keeps_them_valid(
            g in arb_sdp(),
            which in any::<prop::sample::Index>(),
            relay in arb_ip(),
            rtp_port in 1u16..,
            rtcp_port in proptest::option::of(any::<u16>()),
        ) {
            let mut sdp = SessionDescription::parse(&g.render()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            if sdp.media().is_empty() {
                return Ok(());
            }
            let index = which.index(sdp.media().len());
            let before: Vec<Option<IpAddr>> = sdp
                .media()
                .iter()
                .map(|m| sdp.effective_connection(m).map(Connection::address))
                .collect();
            let placement = rtcp_port.map_or(RtcpPlacement::Mux, RtcpPlacement::Port);
            sdp.anchor(index, relay, rtp_port, placement).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let sdp = SessionDescription::parse(&sdp.to_string()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let m = &sdp.media()[index];
            prop_assert_eq!(sdp.effective_connection(m).map(Connection::address), Some(relay.to_canonical()));
            prop_assert_eq!(m.port(), rtp_port);
            match placement {
                RtcpPlacement::Mux => prop_assert_eq!((m.rtcp(), m.rtcp_mux()), (None, true)),
                RtcpPlacement::Port(port) => prop_assert_eq!((m.rtcp(), m.rtcp_mux()), (Some(Rtcp { port, address: None }), false)),
            }
            for (i, (m, addr)) in sdp.media().iter().zip(before).enumerate() {
                if i != index && !m.is_disabled() {
                    prop_assert_eq!(sdp.effective_connection(m).map(Connection::address), addr);
                }
            }
        }

        #[test]
        fn damaged_descriptions_never_panic(
            g in arb_sdp(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, "[ -~]{0,8}"), 1..4),
        ) {
            let text = g.render();
            let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
            for (at, op, junk) in edits {
                if lines.is_empty() {
                    break;
                }
                let i = at.index(lines.len());
                match op {
                    0 => { lines.remove(i); }
                    1 => { let l = lines[i].clone(); lines.insert(i, l); }
                    2 => lines[i].push_str(&junk),
                    _ => { let cut = lines[i].char_indices().nth(junk.len()).map_or(lines[i].len(), |(c, _)| c); lines[i].truncate(cut); }
                }
            }
            let damaged = lines.join("\r\n");
            if let Ok(sdp) = SessionDescription::parse(&damaged) {
                let again = SessionDescription::parse(&sdp.to_string()).map_err(|e| TestCaseError::fail(format!("{e}\n{damaged}")))?;
                prop_assert_eq!(again, sdp);
            }
        }

        #[test]
        fn arbitrary_text_never_panics(text in "(v=0\r\n)?[a-z=0-9 ./:\r\n-]{0,300}") {
            if let Ok(sdp) = SessionDescription::parse(&text) {
                prop_assert_eq!(SessionDescription::parse(&sdp.to_string()), Ok(sdp));
            }
        }
    }
}
