//! The SIP torture-test fixtures (RFC 4475, RFC 5118) and their manifest, shared by the
//! integration tests that use them.
//!
//! This module knows nothing about our parser: it loads `tests/fixtures/manifest.toml`, reads
//! the fixture bytes and offers a deliberately naive, independent look at a message's framing
//! (where the header section ends, what Content-Length says) so that the manifest can be checked
//! against the bytes without trusting the code under test.

// Each test binary that includes this module uses a different part of it.
#![allow(dead_code)]

pub mod conformance;

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The whole manifest: one entry per fixture file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub message: Vec<Entry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Request,
    Response,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

/// How the declared Content-Length relates to the bytes after the header section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Framing {
    /// One Content-Length, equal to the number of bytes after the empty line.
    Exact,
    /// One Content-Length, smaller than what follows on purpose (extra datagram octets).
    Trailing,
    /// Content-Length larger than the bytes present.
    Short,
    /// A negative Content-Length.
    Negative,
    /// Several Content-Length header fields that disagree.
    Conflicting,
    /// No Content-Length: over UDP the body is the rest of the datagram.
    Absent,
    /// No empty line ends the header section.
    Unterminated,
}

/// What the RFC expects to become of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Well-formed: the parser must accept it.
    Parse,
    /// The element answers a request with an error status.
    Reject,
    /// The element discards the message.
    Drop,
}

/// Who must produce a `reject` or `drop` outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// `parse_datagram` must refuse the message.
    Parser,
    /// `parse_datagram` or `validate_request` (or, for a response, the typed header reads).
    Either,
    /// The parser must accept it; the element above acts on it.
    Application,
}

/// What `parse_stream` must do with the whole fixture as the start of a TCP stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamExpect {
    Complete,
    NeedMore,
    Error,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub name: String,
    pub rfc: u32,
    pub section: String,
    pub title: String,
    pub file: String,
    pub kind: Kind,
    pub transport: Transport,
    pub transport_basis: String,
    pub framing: Framing,
    pub outcome: Outcome,
    pub status: Option<u16>,
    #[serde(default)]
    pub alt_status: Vec<u16>,
    pub layer: Option<Layer>,
    #[serde(default)]
    pub liberal_accept: bool,
    pub app_status: Option<u16>,
    #[serde(default)]
    pub app_alt_status: Vec<u16>,
    pub stream: Option<StreamExpect>,
    pub stream_consumed: Option<usize>,
    pub rfc_says: String,
    pub note: Option<String>,
    pub facts: Option<Facts>,
}

/// What a message the parser accepts must yield.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    pub method: Option<String>,
    pub request_uri: Option<String>,
    pub uri_scheme: Option<String>,
    /// The user part as written (escapes intact).
    pub uri_user: Option<String>,
    /// The user part with %HEX HEX decoded, where it differs from `uri_user`.
    pub uri_user_unescaped: Option<String>,
    #[serde(default)]
    pub uri_user_absent: bool,
    pub uri_host: Option<String>,
    pub uri_port: Option<u16>,
    #[serde(default)]
    pub uri_port_absent: bool,
    pub status: Option<u16>,
    pub reason: Option<String>,
    pub call_id: String,
    pub cseq_seq: u32,
    pub cseq_method: String,
    pub via_count: usize,
    #[serde(default)]
    pub via_transports: Vec<String>,
    #[serde(default)]
    pub via_hosts: Vec<String>,
    /// The `received` parameter of each Via value; "" where there is none.
    #[serde(default)]
    pub via_received: Vec<String>,
    pub body_len: usize,
    /// Byte strings that must not appear when the parsed message is serialized again.
    #[serde(default)]
    pub absent_from_serialized: Vec<String>,
    #[serde(default)]
    pub header: Vec<HeaderFact>,
    #[serde(default)]
    pub header_lines: Vec<HeaderLines>,
}

/// `Headers::get(name)` must equal `value` (after [`fold_lws`] on both).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderFact {
    pub name: String,
    pub value: String,
}

/// `Headers::get_all(name)` must yield `count` header lines.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderLines {
    pub name: String,
    pub count: usize,
}

impl Entry {
    pub fn path(&self) -> PathBuf {
        fixtures_dir().join(&self.file)
    }

    pub fn bytes(&self) -> Vec<u8> {
        let path = self.path();
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Every status the RFC accepts for a `reject` outcome.
    pub fn reject_statuses(&self) -> Vec<u16> {
        self.status
            .into_iter()
            .chain(self.alt_status.iter().copied())
            .collect()
    }

    /// Every status the RFC prescribes for the element acting on a `parse` message.
    pub fn app_statuses(&self) -> Vec<u16> {
        self.app_status
            .into_iter()
            .chain(self.app_alt_status.iter().copied())
            .collect()
    }

    /// "rfc4475 3.1.1.1 wsinv", for assertion messages.
    pub fn label(&self) -> String {
        format!("rfc{} {} {}", self.rfc, self.section, self.name)
    }
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn load_manifest() -> Manifest {
    let path = fixtures_dir().join("manifest.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The manifest entries of one RFC, in manifest (= RFC section) order.
pub fn entries(rfc: u32) -> Vec<Entry> {
    load_manifest()
        .message
        .into_iter()
        .filter(|e| e.rfc == rfc)
        .collect()
}

/// Collapse every run of SP, HTAB, CR and LF into one SP and trim the ends, so that a header
/// value compares equal whether the parser kept line folding or replaced it.
pub fn fold_lws(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    for c in s.chars() {
        if matches!(c, ' ' | '\t' | '\r' | '\n') {
            pending_space = true;
        } else {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.push(c);
        }
    }
    out
}

/// An independent, naive view of a message's framing: start line, unfolded header fields and
/// where the header section ends. Good enough for the fixtures; not a SIP parser.
#[derive(Debug)]
pub struct RawMessage<'a> {
    pub start_line: &'a [u8],
    /// (lower-cased long-form name, value with folding kept)
    pub headers: Vec<(String, Vec<u8>)>,
    /// Offset of the first body byte, if the header section is terminated.
    pub body_start: Option<usize>,
}

/// RFC 3261 7.3.3 compact forms, as long forms.
pub fn long_form(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let long = match lower.as_str() {
        "a" => "accept-contact",
        "b" => "referred-by",
        "c" => "content-type",
        "e" => "content-encoding",
        "f" => "from",
        "i" => "call-id",
        "k" => "supported",
        "l" => "content-length",
        "m" => "contact",
        "o" => "event",
        "r" => "refer-to",
        "s" => "subject",
        "t" => "to",
        "u" => "allow-events",
        "v" => "via",
        _ => return lower,
    };
    long.to_owned()
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl<'a> RawMessage<'a> {
    pub fn scan(bytes: &'a [u8]) -> RawMessage<'a> {
        let end = find(bytes, b"\r\n\r\n");
        let head = match end {
            Some(e) => &bytes[..e],
            None => bytes.strip_suffix(b"\r\n").unwrap_or(bytes),
        };
        let mut lines = head
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        let start_line = lines.next().unwrap_or_default();
        let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
        for line in lines {
            if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
                if let Some((_, value)) = headers.last_mut() {
                    value.extend_from_slice(b"\r\n");
                    value.extend_from_slice(line);
                }
                continue;
            }
            let colon = line.iter().position(|&b| b == b':').unwrap_or(line.len());
            let name = String::from_utf8_lossy(&line[..colon]).trim().to_owned();
            let value = line.get(colon + 1..).unwrap_or_default().to_vec();
            headers.push((long_form(&name), value));
        }
        RawMessage {
            start_line,
            headers,
            body_start: end.map(|e| e + 4),
        }
    }

    /// Every value of a header field (by long or compact name), LWS-folded, as text.
    pub fn values(&self, name: &str) -> Vec<String> {
        let want = long_form(name);
        self.headers
            .iter()
            .filter(|(n, _)| *n == want)
            .map(|(_, v)| fold_lws(&String::from_utf8_lossy(v)))
            .collect()
    }

    /// The transport named by the topmost Via value ("SIP / 2.0 / UDP host" -> "UDP").
    pub fn top_via_transport(&self) -> Option<String> {
        let via = self.values("via").into_iter().next()?;
        let third = via.split('/').nth(2)?;
        third.split_whitespace().next().map(str::to_ascii_uppercase)
    }
}

/// The RFC 5118 archive holds bare-LF messages; this is the documented transformation to the
/// wire form kept in `rfc5118/<name>.dat` (see `tests/fixtures/README.md`): LF becomes CRLF, an
/// unterminated header section gets its empty line, and Content-Length is set to the length of
/// the body that is actually there.
pub fn rfc5118_wire_form(archive: &[u8]) -> Vec<u8> {
    let mut wire = Vec::with_capacity(archive.len() + archive.len() / 16 + 2);
    for &b in archive {
        if b == b'\n' {
            wire.push(b'\r');
        }
        wire.push(b);
    }
    let Some(end) = find(&wire, b"\r\n\r\n") else {
        wire.extend_from_slice(b"\r\n");
        return wire;
    };
    let body_len = wire.len() - (end + 4);
    let (head, body) = wire.split_at(end + 4);
    let mut out = Vec::with_capacity(wire.len());
    for line in head.split_inclusive(|&b| b == b'\n') {
        let is_cl = line
            .get(..15)
            .is_some_and(|n| n.eq_ignore_ascii_case(b"Content-Length:"));
        if is_cl {
            out.extend_from_slice(format!("Content-Length: {body_len}\r\n").as_bytes());
        } else {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(body);
    out
}
