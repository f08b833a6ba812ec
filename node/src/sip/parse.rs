//! The SIP message parser (RFC 3261 section 7 and 25 grammar, RFC 4475 behaviour).
//!
//! Framing differs by transport: on a datagram a missing Content-Length means "the
//! rest of the datagram" and a Content-Length past its end is an error; on a stream
//! Content-Length is required and frames the message (RFC 3261 18.3).

use bytes::Bytes;
use thiserror::Error;

use super::header::is_token_char;
use super::message::{HeaderName, Headers, Message, Method, Request, Response};
use super::uri::{Uri, UriError};

/// The largest message we accept by default (RFC 3261 18.1.1 allows up to 65,535 over UDP).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 65_535;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("Message Too Large")]
    TooLarge,
    #[error("Missing blank line after headers")]
    Unterminated,
    #[error("Malformed start line")]
    BadStartLine,
    #[error("Malformed Request-Line: {0}")]
    BadRequestLine(&'static str),
    #[error("Bad Request-URI: {0}")]
    BadRequestUri(UriError),
    #[error("SIP version not supported")]
    BadVersion,
    #[error("Malformed status code")]
    BadStatus,
    #[error("Malformed header line")]
    BadHeaderLine,
    #[error("Header is not valid UTF-8")]
    NotUtf8,
    #[error("Malformed Content-Length")]
    BadContentLength,
    #[error("More than one Content-Length")]
    RepeatedContentLength,
    #[error("Content-Length larger than message")]
    ContentLengthTooLarge,
    #[error("Content-Length required on stream transports")]
    MissingContentLength,
}

impl ParseError {
    /// The status a server answers a request that failed this way with.
    pub fn status(&self) -> u16 {
        match self {
            ParseError::TooLarge => 513,
            ParseError::BadVersion => 505,
            _ => 400,
        }
    }

    /// A reason phrase for the error response: says what was wrong.
    pub fn reason(&self) -> String {
        self.to_string()
    }
}

/// Parses one message from a datagram (UDP rules).
pub fn parse_datagram(buf: &[u8]) -> Result<Message, ParseError> {
    parse_datagram_limited(buf, DEFAULT_MAX_MESSAGE_SIZE)
}

pub fn parse_datagram_limited(buf: &[u8], max_size: usize) -> Result<Message, ParseError> {
    if buf.len() > max_size {
        return Err(ParseError::TooLarge);
    }
    let buf = skip_leading_crlf(buf);
    let head_end = find_head_end(buf).ok_or(ParseError::Unterminated)?;
    let (start, headers, content_length) = parse_head(&buf[..head_end])?;
    let rest = &buf[head_end + 4..];
    let body = match content_length {
        // Extra bytes past Content-Length are discarded (RFC 3261 18.3, RFC 4475 dblreq).
        Some(n) if n <= rest.len() => &rest[..n],
        Some(_) => return Err(ParseError::ContentLengthTooLarge),
        None => rest,
    };
    Ok(build(start, headers, Bytes::copy_from_slice(body)))
}

/// Parses one message from the front of a stream buffer (TCP/TLS rules).
///
/// `Ok(None)` means more bytes are needed; `Ok(Some((msg, n)))` consumed `n` bytes.
/// Leading CRLFs (keep-alives, RFC 5626) are the caller's to strip.
pub fn parse_stream(buf: &[u8], max_size: usize) -> Result<Option<(Message, usize)>, ParseError> {
    let Some(head_end) = find_head_end(buf) else {
        if buf.len() > max_size {
            return Err(ParseError::TooLarge);
        }
        return Ok(None);
    };
    let (start, headers, content_length) = parse_head(&buf[..head_end])?;
    let n = content_length.ok_or(ParseError::MissingContentLength)?;
    // A Content-Length near usize::MAX must not wrap around (found by the fuzzer).
    let total = (head_end + 4)
        .checked_add(n)
        .filter(|t| *t <= max_size)
        .ok_or(ParseError::TooLarge)?;
    if buf.len() < total {
        return Ok(None);
    }
    let body = Bytes::copy_from_slice(&buf[head_end + 4..total]);
    Ok(Some((build(start, headers, body), total)))
}

/// RFC 3261 7.5: CRLFs before the start line are ignored.
pub fn skip_leading_crlf(mut buf: &[u8]) -> &[u8] {
    while let Some(rest) = buf.strip_prefix(b"\r\n") {
        buf = rest;
    }
    buf
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

enum StartLine {
    Request(Method, Box<Uri>),
    Response(u16, String),
}

fn build(start: StartLine, headers: Headers, body: Bytes) -> Message {
    match start {
        StartLine::Request(method, uri) => Message::Request(Request {
            method,
            uri: *uri,
            headers,
            body,
        }),
        StartLine::Response(status, reason) => Message::Response(Response {
            status,
            reason,
            headers,
            body,
        }),
    }
}

fn parse_head(head: &[u8]) -> Result<(StartLine, Headers, Option<usize>), ParseError> {
    let head = std::str::from_utf8(head).map_err(|_| ParseError::NotUtf8)?;
    let mut lines = head.split("\r\n");
    let start = parse_start_line(lines.next().unwrap_or(""))?;
    let mut headers = Headers::new();
    let mut current: Option<(HeaderName, String)> = None;
    for line in lines {
        if line.starts_with([' ', '\t']) {
            // Folded continuation: the CRLF and leading whitespace become one space.
            let (_, value) = current.as_mut().ok_or(ParseError::BadHeaderLine)?;
            let cont = line.trim_matches([' ', '\t']);
            if !cont.is_empty() {
                if !value.is_empty() {
                    value.push(' ');
                }
                value.push_str(cont);
            }
            continue;
        }
        if let Some((name, value)) = current.take() {
            headers.push(name, value);
        }
        let (name, value) = line.split_once(':').ok_or(ParseError::BadHeaderLine)?;
        // HCOLON = *( SP / HTAB ) ":" SWS
        let name = name.trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_token_char) {
            return Err(ParseError::BadHeaderLine);
        }
        let value = value.trim_matches([' ', '\t']);
        current = Some((HeaderName::parse(name), value.to_owned()));
    }
    if let Some((name, value)) = current {
        headers.push(name, value);
    }
    for h in headers.iter() {
        if has_bare_control(&h.value) {
            return Err(ParseError::BadHeaderLine);
        }
    }
    let content_length = content_length(&headers)?;
    Ok((start, headers, content_length))
}

fn content_length(headers: &Headers) -> Result<Option<usize>, ParseError> {
    let mut values = headers.get_all_by(HeaderName::ContentLength);
    let Some(v) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ParseError::RepeatedContentLength);
    }
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::BadContentLength);
    }
    // Anything past usize is certainly larger than the message.
    Ok(Some(v.parse::<usize>().unwrap_or(usize::MAX)))
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    if let Some(rest) = line.strip_prefix("SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let (version, rest) = rest.split_once(' ').ok_or(ParseError::BadStartLine)?;
        check_version(version)?;
        let (code, reason) = rest.split_once(' ').ok_or(ParseError::BadStatus)?;
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::BadStatus);
        }
        let status: u16 = code.parse().map_err(|_| ParseError::BadStatus)?;
        if !(100..=699).contains(&status) {
            return Err(ParseError::BadStatus);
        }
        return Ok(StartLine::Response(status, reason.to_owned()));
    }
    // Request-Line = Method SP Request-URI SP SIP-Version, single spaces, nothing else.
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::BadRequestLine(
            "expected METHOD SP URI SP SIP/2.0",
        ));
    };
    if method.is_empty() || !method.bytes().all(is_token_char) {
        return Err(ParseError::BadRequestLine("method is not a token"));
    }
    if uri.starts_with('<') {
        return Err(ParseError::BadRequestLine("Request-URI must not be in <>"));
    }
    let version_rest = version
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("SIP/"))
        .map(|_| &version[4..])
        .ok_or(ParseError::BadRequestLine("expected SIP/2.0"))?;
    check_version(version_rest)?;
    let uri = Uri::parse(uri).map_err(ParseError::BadRequestUri)?;
    Ok(StartLine::Request(
        Method::from_token(method),
        Box::new(uri),
    ))
}

/// Accepts "2.0"; another well-formed version is 505, anything else 400.
fn check_version(v: &str) -> Result<(), ParseError> {
    if v == "2.0" {
        return Ok(());
    }
    let well_formed = v.split_once('.').is_some_and(|(a, b)| {
        !a.is_empty()
            && !b.is_empty()
            && a.bytes().all(|c| c.is_ascii_digit())
            && b.bytes().all(|c| c.is_ascii_digit())
    });
    Err(if well_formed {
        ParseError::BadVersion
    } else {
        ParseError::BadStartLine
    })
}

/// Best-effort error response for a request that failed to parse: scans the raw lines
/// for Via, From, To, Call-ID and CSeq so the sender can match it (RFC 3261 8.2.6).
/// Returns `None` when the bytes do not look like a request or lack those headers;
/// such input is dropped.
pub fn error_response_for_raw(buf: &[u8], status: u16, reason: &str) -> Option<Response> {
    let buf = skip_leading_crlf(buf);
    let head_end = find_head_end(buf).unwrap_or(buf.len());
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let mut lines = head.split("\r\n");
    let first = lines.next()?;
    let method = first.split(' ').next()?;
    if method.is_empty() || first.starts_with("SIP/") || !method.bytes().all(is_token_char) {
        return None;
    }
    if method == "ACK" {
        return None; // never answer an ACK
    }
    let mut resp = Response::new(status);
    resp.reason = sanitize_reason(reason);
    let mut have = [false; 5];
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = HeaderName::parse(name.trim());
        let idx = match name {
            HeaderName::Via => 0,
            HeaderName::From => 1,
            HeaderName::To => 2,
            HeaderName::CallId => 3,
            HeaderName::CSeq => 4,
            _ => continue,
        };
        let value = value.trim();
        if value.bytes().any(|b| b < b' ' && b != b'\t') {
            continue;
        }
        have[idx] = true;
        resp.headers.push(name, value.to_owned());
    }
    have.iter().all(|h| *h).then_some(resp)
}

/// Reason phrases must not carry CR/LF or other controls.
pub fn sanitize_reason(reason: &str) -> String {
    reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Control characters are allowed in a header value only as a quoted-pair inside a
/// quoted string (RFC 3261 25.1; RFC 4475 `intmeth` quotes a NUL in a display name).
fn has_bare_control(value: &str) -> bool {
    let (mut in_quote, mut escaped) = (false, false);
    for b in value.bytes() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' if in_quote => escaped = true,
            b'"' => in_quote = !in_quote,
            b'\t' => {}
            b if b < b' ' || b == 0x7f => return true,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::SipHeaders;

    const REG: &str = "REGISTER sip:example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc\r\n\
        Max-Forwards: 70\r\n\
        To: <sip:1001@example.com>\r\n\
        From: <sip:1001@example.com>;tag=x1\r\n\
        Call-ID: c1@192.0.2.1\r\n\
        CSeq: 1 REGISTER\r\n\
        Contact: <sip:1001@192.0.2.1:5060>;expires=60\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn parses_a_register() {
        let m = parse_datagram(REG.as_bytes()).unwrap();
        let Message::Request(r) = &m else { panic!() };
        assert_eq!(r.method, Method::Register);
        assert_eq!(r.call_id().unwrap(), "c1@192.0.2.1");
        assert_eq!(r.cseq().unwrap().seq, 1);
        assert_eq!(r.top_via().unwrap().branch(), Some("z9hG4bKabc"));
    }

    #[test]
    fn folding_and_compact_forms() {
        let msg = "OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h\r\n ;branch=z9hG4bK1\r\ni: x\r\nCSeq:\r\n 0009\r\n  OPTIONS\r\nl: 0\r\n\r\n";
        let m = parse_datagram(msg.as_bytes()).unwrap();
        assert_eq!(m.cseq().unwrap().seq, 9);
        assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK1"));
    }

    #[test]
    fn content_length_rules() {
        let base = "OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n";
        let no_cl = format!("{base}\r\nbody");
        assert_eq!(
            &parse_datagram(no_cl.as_bytes()).unwrap().body()[..],
            b"body"
        );
        let big = format!("{base}Content-Length: 10\r\n\r\nbody");
        assert_eq!(
            parse_datagram(big.as_bytes()),
            Err(ParseError::ContentLengthTooLarge)
        );
        let neg = format!("{base}Content-Length: -1\r\n\r\n");
        assert_eq!(
            parse_datagram(neg.as_bytes()),
            Err(ParseError::BadContentLength)
        );
        assert_eq!(
            parse_stream(no_cl.as_bytes(), 65535),
            Err(ParseError::MissingContentLength)
        );
    }

    #[test]
    fn huge_content_length_on_a_stream_is_too_large_not_an_overflow() {
        let msg = "OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 99999999999999999999999\r\n\r\n";
        assert_eq!(
            parse_stream(msg.as_bytes(), 65535),
            Err(ParseError::TooLarge)
        );
        let msg = "OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 18446744073709551615\r\n\r\n";
        assert_eq!(
            parse_stream(msg.as_bytes(), 65535),
            Err(ParseError::TooLarge)
        );
    }

    #[test]
    fn stream_framing() {
        let two = format!("{REG}{REG}");
        let (_, n) = parse_stream(two.as_bytes(), 65535).unwrap().unwrap();
        assert_eq!(n, REG.len());
        assert_eq!(
            parse_stream(&two.as_bytes()[..REG.len() - 3], 65535),
            Ok(None)
        );
    }

    #[test]
    fn request_line_strictness() {
        for bad in [
            "INVITE  sip:a@b SIP/2.0",
            "INVITE sip:a@b; lr SIP/2.0",
            "INVITE sip:a@b SIP/2.0 ",
            "INVITE <sip:a@b> SIP/2.0",
        ] {
            let msg = format!("{bad}\r\nl: 0\r\n\r\n");
            assert_eq!(
                parse_datagram(msg.as_bytes()).unwrap_err().status(),
                400,
                "{bad}"
            );
        }
        let v7 = "INVITE sip:a@b SIP/7.0\r\nl: 0\r\n\r\n";
        assert_eq!(parse_datagram(v7.as_bytes()).unwrap_err().status(), 505);
    }

    #[test]
    fn error_response_from_garbage_request() {
        let bad = REG.replace("Content-Length: 0", "Content-Length: 99");
        let err = parse_datagram(bad.as_bytes()).unwrap_err();
        let r = error_response_for_raw(bad.as_bytes(), err.status(), &err.reason()).unwrap();
        assert_eq!(r.status, 400);
        assert_eq!(r.call_id().unwrap(), "c1@192.0.2.1");
        assert!(error_response_for_raw(b"\x00\x01garbage", 400, "x").is_none());
    }
}
