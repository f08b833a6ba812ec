//! SIP message model: requests, responses, their headers, and the serializer.
//!
//! Header lines are kept as written (after line unfolding), in order, so unknown
//! headers pass through verbatim; typed views ([`super::header`]) parse on demand.
//! The body is a zero-copy slice of the received buffer.

use std::fmt::{self, Write as _};

use bytes::Bytes;

use super::header::{self, CSeq, ContactList, HeaderError, NameAddr, Via};
use super::uri::Uri;

/// A SIP method. Unknown methods are kept verbatim (RFC 3261 allows extension methods).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Register,
    Options,
    Info,
    Update,
    Prack,
    Subscribe,
    Notify,
    Refer,
    Message,
    Publish,
    Extension(String),
}

impl Method {
    /// Methods are case-sensitive (RFC 3261 7.1): `invite` is an extension method.
    pub fn from_token(s: &str) -> Method {
        match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other => Method::Extension(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Extension(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Header names we know, with their compact forms (RFC 3261 7.3.3 and later RFCs).
/// Unknown names are kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HeaderName {
    Accept,
    AcceptEncoding,
    Allow,
    Authorization,
    CallId,
    Contact,
    ContentEncoding,
    ContentLength,
    ContentType,
    CSeq,
    Date,
    Event,
    Expires,
    From,
    MaxForwards,
    MinExpires,
    ProxyAuthenticate,
    ProxyAuthorization,
    ProxyRequire,
    Reason,
    RecordRoute,
    ReferTo,
    Require,
    RetryAfter,
    Route,
    Server,
    Subject,
    Supported,
    To,
    Unsupported,
    UserAgent,
    Via,
    Warning,
    WwwAuthenticate,
    Other(String),
}

const KNOWN: &[(&str, Option<&str>, HeaderName)] = &[
    ("Accept", None, HeaderName::Accept),
    ("Accept-Encoding", None, HeaderName::AcceptEncoding),
    ("Allow", None, HeaderName::Allow),
    ("Authorization", None, HeaderName::Authorization),
    ("Call-ID", Some("i"), HeaderName::CallId),
    ("Contact", Some("m"), HeaderName::Contact),
    ("Content-Encoding", Some("e"), HeaderName::ContentEncoding),
    ("Content-Length", Some("l"), HeaderName::ContentLength),
    ("Content-Type", Some("c"), HeaderName::ContentType),
    ("CSeq", None, HeaderName::CSeq),
    ("Date", None, HeaderName::Date),
    ("Event", Some("o"), HeaderName::Event),
    ("Expires", None, HeaderName::Expires),
    ("From", Some("f"), HeaderName::From),
    ("Max-Forwards", None, HeaderName::MaxForwards),
    ("Min-Expires", None, HeaderName::MinExpires),
    ("Proxy-Authenticate", None, HeaderName::ProxyAuthenticate),
    ("Proxy-Authorization", None, HeaderName::ProxyAuthorization),
    ("Proxy-Require", None, HeaderName::ProxyRequire),
    ("Reason", None, HeaderName::Reason),
    ("Record-Route", None, HeaderName::RecordRoute),
    ("Refer-To", Some("r"), HeaderName::ReferTo),
    ("Require", None, HeaderName::Require),
    ("Retry-After", None, HeaderName::RetryAfter),
    ("Route", None, HeaderName::Route),
    ("Server", None, HeaderName::Server),
    ("Subject", Some("s"), HeaderName::Subject),
    ("Supported", Some("k"), HeaderName::Supported),
    ("To", Some("t"), HeaderName::To),
    ("Unsupported", None, HeaderName::Unsupported),
    ("User-Agent", None, HeaderName::UserAgent),
    ("Via", Some("v"), HeaderName::Via),
    ("Warning", None, HeaderName::Warning),
    ("WWW-Authenticate", None, HeaderName::WwwAuthenticate),
];

impl HeaderName {
    /// Header names are case-insensitive; compact forms equal their long forms.
    pub fn parse(name: &str) -> HeaderName {
        for (long, compact, known) in KNOWN {
            if name.eq_ignore_ascii_case(long)
                || compact.is_some_and(|c| name.eq_ignore_ascii_case(c))
            {
                return known.clone();
            }
        }
        HeaderName::Other(name.to_owned())
    }

    pub fn as_str(&self) -> &str {
        if let HeaderName::Other(s) = self {
            return s;
        }
        KNOWN
            .iter()
            .find(|(_, _, k)| k == self)
            .map_or("", |(long, _, _)| long)
    }

    fn matches(&self, other: &HeaderName) -> bool {
        match (self, other) {
            (HeaderName::Other(a), HeaderName::Other(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => a == b,
        }
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One header line: its name and its value with folding replaced by single spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: HeaderName,
    pub value: String,
}

/// The header lines of a message, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<Header>,
}

impl Headers {
    pub fn new() -> Headers {
        Headers::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.entries.iter()
    }

    /// Value of the first header line with this name (case-insensitive, compact forms too).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_by(&HeaderName::parse(name))
    }

    pub fn get_by(&self, name: &HeaderName) -> Option<&str> {
        self.entries
            .iter()
            .find(|h| h.name.matches(name))
            .map(|h| h.value.as_str())
    }

    /// Values of every header line with this name, in order.
    pub fn get_all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.get_all_by(HeaderName::parse(name))
    }

    pub fn get_all_by(&self, name: HeaderName) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .filter(move |h| h.name.matches(&name))
            .map(|h| h.value.as_str())
    }

    pub fn count(&self, name: &HeaderName) -> usize {
        self.entries.iter().filter(|h| h.name.matches(name)).count()
    }

    pub fn push(&mut self, name: HeaderName, value: impl Into<String>) {
        self.entries.push(Header {
            name,
            value: value.into(),
        });
    }

    /// Inserts before every other header line (used for Via).
    pub fn push_front(&mut self, name: HeaderName, value: impl Into<String>) {
        self.entries.insert(
            0,
            Header {
                name,
                value: value.into(),
            },
        );
    }

    /// Replaces every line of this name by one line, keeping the first one's position.
    pub fn set(&mut self, name: HeaderName, value: impl Into<String>) {
        let value = value.into();
        match self.entries.iter().position(|h| h.name.matches(&name)) {
            Some(i) => {
                self.entries[i].value = value;
                let mut idx = 0;
                self.entries.retain(|h| {
                    let keep = idx <= i || !h.name.matches(&name);
                    idx += 1;
                    keep
                });
            }
            None => self.push(name, value),
        }
    }

    pub fn remove(&mut self, name: &HeaderName) {
        self.entries.retain(|h| !h.name.matches(name));
    }

    /// Removes the first line of this name and returns its value.
    pub fn remove_first(&mut self, name: &HeaderName) -> Option<String> {
        let i = self.entries.iter().position(|h| h.name.matches(name))?;
        Some(self.entries.remove(i).value)
    }

    /// Mutable access to the first line of this name.
    pub fn first_mut(&mut self, name: &HeaderName) -> Option<&mut String> {
        self.entries
            .iter_mut()
            .find(|h| h.name.matches(name))
            .map(|h| &mut h.value)
    }

    /// Every element of a comma-separated list header, across all its lines.
    pub fn list(&self, name: HeaderName) -> Result<Vec<&str>, HeaderError> {
        let mut out = Vec::new();
        for v in self.get_all_by(name) {
            out.extend(header::split_list(v)?);
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: Headers,
    pub body: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

/// The canonical reason phrase for a status code.
pub fn default_reason(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        _ => "Unknown",
    }
}

impl Request {
    pub fn new(method: Method, uri: Uri) -> Request {
        Request {
            method,
            uri,
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response {
            status,
            reason: default_reason(status).to_owned(),
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }

    /// A response to `req` per RFC 3261 8.2.6: Via lines, From, To, Call-ID and CSeq
    /// copied; a To tag added (when `to_tag` is given and To has none) for non-100.
    pub fn to_request(req: &Request, status: u16, to_tag: Option<&str>) -> Response {
        let mut resp = Response::new(status);
        for h in req.headers.iter() {
            match h.name {
                HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                    resp.headers.push(h.name.clone(), h.value.clone())
                }
                HeaderName::To => {
                    let mut value = h.value.clone();
                    if let (Some(tag), true) = (to_tag, status > 100) {
                        let has_tag = NameAddr::parse(&value).is_ok_and(|n| n.tag().is_some());
                        if !has_tag {
                            let _ = write!(value, ";tag={tag}");
                        }
                    }
                    resp.headers.push(HeaderName::To, value);
                }
                _ => {}
            }
        }
        resp
    }

    /// The status class as Prometheus label text: "1xx" .. "6xx".
    pub fn class(&self) -> &'static str {
        match self.status / 100 {
            1 => "1xx",
            2 => "2xx",
            3 => "3xx",
            4 => "4xx",
            5 => "5xx",
            _ => "6xx",
        }
    }
}

impl Message {
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    pub fn headers_mut(&mut self) -> &mut Headers {
        match self {
            Message::Request(r) => &mut r.headers,
            Message::Response(r) => &mut r.headers,
        }
    }

    pub fn body(&self) -> &Bytes {
        match self {
            Message::Request(r) => &r.body,
            Message::Response(r) => &r.body,
        }
    }

    pub fn is_request(&self) -> bool {
        matches!(self, Message::Request(_))
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
}

/// Typed access to the headers a proxy, registrar or B2BUA needs. Each parses on demand.
pub trait SipHeaders {
    fn hdrs(&self) -> &Headers;

    fn call_id(&self) -> Result<&str, HeaderError> {
        let v = single(self.hdrs(), HeaderName::CallId)?;
        header::parse_call_id(v)
    }

    fn cseq(&self) -> Result<CSeq, HeaderError> {
        CSeq::parse(single(self.hdrs(), HeaderName::CSeq)?)
    }

    fn hdr_from(&self) -> Result<NameAddr, HeaderError> {
        NameAddr::parse(single(self.hdrs(), HeaderName::From)?)
    }

    fn hdr_to(&self) -> Result<NameAddr, HeaderError> {
        NameAddr::parse(single(self.hdrs(), HeaderName::To)?)
    }

    /// All Via entries, top first.
    fn via(&self) -> Result<Vec<Via>, HeaderError> {
        let list = self.hdrs().list(HeaderName::Via)?;
        if list.is_empty() {
            return Err(HeaderError::Missing("Via"));
        }
        list.into_iter().map(Via::parse).collect()
    }

    fn top_via(&self) -> Result<Via, HeaderError> {
        let first = self
            .hdrs()
            .get_by(&HeaderName::Via)
            .ok_or(HeaderError::Missing("Via"))?;
        let top = header::split_list(first)?
            .into_iter()
            .next()
            .ok_or(HeaderError::Missing("Via"))?;
        Via::parse(top)
    }

    fn contacts(&self) -> Result<ContactList, HeaderError> {
        ContactList::parse(&self.hdrs().list(HeaderName::Contact)?)
    }

    fn route(&self) -> Result<Vec<NameAddr>, HeaderError> {
        name_addr_list(self.hdrs(), HeaderName::Route)
    }

    fn record_route(&self) -> Result<Vec<NameAddr>, HeaderError> {
        name_addr_list(self.hdrs(), HeaderName::RecordRoute)
    }

    /// Max-Forwards, `None` when absent.
    fn max_forwards(&self) -> Result<Option<u8>, HeaderError> {
        optional_single(self.hdrs(), HeaderName::MaxForwards)?
            .map(header::parse_max_forwards)
            .transpose()
    }

    /// Expires header in seconds, `None` when absent; values past 2^32-1 saturate.
    fn expires(&self) -> Result<Option<u32>, HeaderError> {
        optional_single(self.hdrs(), HeaderName::Expires)?
            .map(|v| header::parse_delta_seconds(v, "Expires"))
            .transpose()
    }

    fn content_type(&self) -> Result<Option<&str>, HeaderError> {
        optional_single(self.hdrs(), HeaderName::ContentType)
    }

    /// Option tags of Supported (or Require, Proxy-Require, Unsupported).
    fn option_tags(&self, name: HeaderName) -> Result<Vec<&str>, HeaderError> {
        self.hdrs().list(name)
    }
}

impl SipHeaders for Request {
    fn hdrs(&self) -> &Headers {
        &self.headers
    }
}

impl SipHeaders for Response {
    fn hdrs(&self) -> &Headers {
        &self.headers
    }
}

impl SipHeaders for Message {
    fn hdrs(&self) -> &Headers {
        self.headers()
    }
}

fn single(h: &Headers, name: HeaderName) -> Result<&str, HeaderError> {
    optional_single(h, name.clone())?.ok_or(HeaderError::Missing(static_name(&name)))
}

fn optional_single(h: &Headers, name: HeaderName) -> Result<Option<&str>, HeaderError> {
    let mut it = h.get_all_by(name.clone());
    let first = it.next();
    if it.next().is_some() {
        return Err(HeaderError::Repeated(static_name(&name)));
    }
    Ok(first)
}

fn name_addr_list(h: &Headers, name: HeaderName) -> Result<Vec<NameAddr>, HeaderError> {
    h.list(name)?.into_iter().map(NameAddr::parse).collect()
}

fn static_name(name: &HeaderName) -> &'static str {
    KNOWN
        .iter()
        .find(|(_, _, k)| k == name)
        .map_or("header", |(long, _, _)| long)
}

fn write_headers(out: &mut Vec<u8>, headers: &Headers, body: &[u8]) {
    for h in headers.iter() {
        if h.name == HeaderName::ContentLength {
            continue;
        }
        out.extend_from_slice(h.name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    // Content-Length is always recomputed so a serialized message can never lie about it.
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
}

impl Request {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512 + self.body.len());
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.uri.as_str().as_bytes());
        out.extend_from_slice(b" SIP/2.0\r\n");
        write_headers(&mut out, &self.headers, &self.body);
        out
    }
}

impl Response {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512 + self.body.len());
        out.extend_from_slice(format!("SIP/2.0 {} {}\r\n", self.status, self.reason).as_bytes());
        write_headers(&mut out, &self.headers, &self.body);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_long_names_match() {
        let mut h = Headers::new();
        h.push(HeaderName::parse("v"), "SIP/2.0/UDP a");
        h.push(HeaderName::parse("VIA"), "SIP/2.0/UDP b");
        h.push(HeaderName::parse("X-Custom"), "1");
        assert_eq!(h.get_all("Via").count(), 2);
        assert_eq!(h.get("x-custom"), Some("1"));
        assert_eq!(HeaderName::parse("i"), HeaderName::CallId);
    }

    #[test]
    fn set_replaces_all_lines() {
        let mut h = Headers::new();
        h.push(HeaderName::Expires, "1");
        h.push(HeaderName::To, "x");
        h.push(HeaderName::Expires, "2");
        h.set(HeaderName::Expires, "3");
        assert_eq!(h.get_all("Expires").collect::<Vec<_>>(), vec!["3"]);
        assert_eq!(h.len(), 2);
    }
}
