//! Digest header values: parsing `Authorization`/`Proxy-Authorization` credentials and
//! `WWW-Authenticate`/`Proxy-Authenticate` challenges, and writing both.
//!
//! Input is the header *value* with line folding already undone by the message parser.
//! The grammar is RFC 3261 §25.1 (`credentials`, `challenge`): `Digest` then
//! comma-separated `name=value` pairs, values a token or a quoted string. Names are
//! case-insensitive, unknown names are ignored, a name given twice is an error (a client
//! that says two different things has no right answer).

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use super::digest::{self, Algorithm, QopParams};

/// Why a header value could not be parsed. The `Display` text is short and safe to put in
/// a SIP reason phrase (it never contains CR/LF or quotes from the input).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty value")]
    Empty,
    #[error("scheme is not Digest")]
    NotDigest,
    #[error("missing {0}")]
    MissingParam(&'static str),
    #[error("duplicate {0}")]
    DuplicateParam(String),
    #[error("expected parameter name at byte {0}")]
    ExpectedName(usize),
    #[error("expected '=' after {0}")]
    ExpectedEquals(String),
    #[error("missing value for {0}")]
    ExpectedValue(String),
    #[error("expected ',' at byte {0}")]
    ExpectedComma(usize),
    #[error("unterminated quoted string")]
    UnterminatedQuote,
    #[error("bad escape in quoted string")]
    BadEscape,
    #[error("control character in quoted string")]
    ControlCharacter,
    #[error("too many parameters")]
    TooManyParams,
    #[error("nc is not 8 hex digits")]
    InvalidNonceCount,
    #[error("response is not hex")]
    InvalidResponse,
    #[error("invalid stale flag")]
    InvalidStale,
    /// Only from [`Challenge::parse`]: a UAC skips such a challenge and tries the next.
    #[error("unsupported algorithm {0}")]
    UnsupportedAlgorithm(String),
}

impl ParseError {
    /// Reason phrase for the 400 answering a bad `Authorization` header.
    pub fn reason(&self) -> String {
        self.reason_for("Authorization")
    }

    /// Reason phrase naming the header that was bad, e.g. `Proxy-Authorization`.
    pub fn reason_for(&self, header_name: &str) -> String {
        format!("Malformed {header_name} header: {self}")
    }
}

/// Names from the input end up in reason phrases; tokens are safe characters, but keep
/// them short.
fn name_for_error(name: &str) -> String {
    let mut n = name.to_ascii_lowercase();
    n.truncate(32);
    n
}

/// A parser bound on parameters per header: real ones have about ten.
const MAX_PARAMS: usize = 32;

#[derive(Debug)]
struct Param<'a> {
    name: &'a str,
    value: Cow<'a, str>,
}

/// RFC 3261 `token` characters.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(is_token_byte) {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    /// Reads a quoted string starting at the opening quote; borrows unless an escape had
    /// to be removed.
    fn quoted(&mut self) -> Result<Cow<'a, str>, ParseError> {
        let rest = &self.s[self.pos + 1..];
        let mut owned: Option<String> = None;
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += 1 + i + 1;
                    return Ok(match owned {
                        Some(o) => Cow::Owned(o),
                        None => Cow::Borrowed(&rest[..i]),
                    });
                }
                '\\' => {
                    // quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
                    let escaped = match chars.next() {
                        Some((_, e)) if e.is_ascii() && e != '\r' && e != '\n' => e,
                        _ => return Err(ParseError::BadEscape),
                    };
                    owned
                        .get_or_insert_with(|| rest[..i].to_owned())
                        .push(escaped);
                }
                c if c.is_ascii_control() && c != '\t' => {
                    return Err(ParseError::ControlCharacter);
                }
                c => {
                    if let Some(o) = owned.as_mut() {
                        o.push(c);
                    }
                }
            }
        }
        Err(ParseError::UnterminatedQuote)
    }
}

/// Splits `Digest <params>` into its parameters, rejecting duplicates.
fn parse_digest_params(value: &str) -> Result<Vec<Param<'_>>, ParseError> {
    let mut cur = Cursor { s: value, pos: 0 };
    cur.skip_ws();
    if cur.peek().is_none() {
        return Err(ParseError::Empty);
    }
    let scheme = cur.token();
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(ParseError::NotDigest);
    }
    let before_ws = cur.pos;
    cur.skip_ws();
    let mut params: Vec<Param<'_>> = Vec::new();
    if cur.peek().is_none() {
        return Ok(params);
    }
    if cur.pos == before_ws {
        // "Digestfoo" already failed above; this is e.g. "Digest,": LWS is mandatory.
        return Err(ParseError::ExpectedName(cur.pos));
    }
    loop {
        let name = cur.token();
        if name.is_empty() {
            return Err(ParseError::ExpectedName(cur.pos));
        }
        cur.skip_ws();
        if cur.peek() != Some(b'=') {
            return Err(ParseError::ExpectedEquals(name_for_error(name)));
        }
        cur.pos += 1;
        cur.skip_ws();
        let value = if cur.peek() == Some(b'"') {
            cur.quoted()?
        } else {
            let t = cur.token();
            if t.is_empty() {
                return Err(ParseError::ExpectedValue(name_for_error(name)));
            }
            Cow::Borrowed(t)
        };
        if params.iter().any(|p| p.name.eq_ignore_ascii_case(name)) {
            return Err(ParseError::DuplicateParam(name_for_error(name)));
        }
        if params.len() == MAX_PARAMS {
            return Err(ParseError::TooManyParams);
        }
        params.push(Param { name, value });
        cur.skip_ws();
        match cur.peek() {
            None => return Ok(params),
            Some(b',') => {
                cur.pos += 1;
                cur.skip_ws();
            }
            Some(_) => return Err(ParseError::ExpectedComma(cur.pos)),
        }
    }
}

/// Takes the named parameter out of `params`, if present.
fn take(params: &mut [Param<'_>], name: &str) -> Option<String> {
    params
        .iter_mut()
        .find(|p| p.name.eq_ignore_ascii_case(name))
        .map(|p| std::mem::take(&mut p.value).into_owned())
}

fn require(params: &mut [Param<'_>], name: &'static str) -> Result<String, ParseError> {
    take(params, name).ok_or(ParseError::MissingParam(name))
}

/// Writes `name="value"` with `"` and `\` escaped.
fn write_quoted(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// The quality of protection. Only `auth` is verified; `auth-int` would need the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qop {
    Auth,
    AuthInt,
}

impl Qop {
    pub fn token(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }

    pub fn from_token(token: &str) -> Option<Qop> {
        [Qop::Auth, Qop::AuthInt]
            .into_iter()
            .find(|q| q.token().eq_ignore_ascii_case(token))
    }
}

/// Parsed digest credentials. Values the response is computed over (`qop`, `nc`) are kept
/// as the client spelled them; accessors give typed views.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    username: String,
    realm: String,
    nonce: String,
    uri: String,
    /// Lowercased: hex digits compare case-insensitively.
    response: String,
    algorithm: Option<String>,
    cnonce: Option<String>,
    opaque: Option<String>,
    qop: Option<String>,
    nc: Option<(u32, String)>,
}

impl Credentials {
    /// Parses an `Authorization` or `Proxy-Authorization` header value.
    pub fn parse(value: &str) -> Result<Credentials, ParseError> {
        let mut p = parse_digest_params(value)?;
        let username = require(&mut p, "username")?;
        let realm = require(&mut p, "realm")?;
        let nonce = require(&mut p, "nonce")?;
        let uri = require(&mut p, "uri")?;
        let response = require(&mut p, "response")?;
        if response.is_empty() || !response.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ParseError::InvalidResponse);
        }
        let qop = take(&mut p, "qop");
        let (cnonce, nc_text) = if qop.is_some() {
            (
                Some(require(&mut p, "cnonce")?),
                Some(require(&mut p, "nc")?),
            )
        } else {
            (take(&mut p, "cnonce"), take(&mut p, "nc"))
        };
        let nc = match nc_text {
            Some(text) => {
                if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(ParseError::InvalidNonceCount);
                }
                let n =
                    u32::from_str_radix(&text, 16).map_err(|_| ParseError::InvalidNonceCount)?;
                Some((n, text))
            }
            None => None,
        };
        Ok(Credentials {
            username,
            realm,
            nonce,
            uri,
            response: response.to_ascii_lowercase(),
            algorithm: take(&mut p, "algorithm"),
            cnonce,
            opaque: take(&mut p, "opaque"),
            qop,
            nc,
        })
    }

    /// Answers `challenge` as a UAC would: our trunk registrations and our tests.
    /// Uses `qop=auth` when offered, the RFC 2069 form otherwise.
    pub fn answer(
        challenge: &Challenge,
        username: &str,
        password: &str,
        method: &str,
        digest_uri: &str,
        cnonce: &str,
        nc: u32,
    ) -> Credentials {
        let algorithm = challenge.algorithm;
        let ha1 = digest::ha1(algorithm, username, &challenge.realm, password);
        let nc_text = format!("{nc:08x}");
        let qop = challenge.qop.contains(&Qop::Auth).then_some(QopParams {
            qop: Qop::Auth.token(),
            nc: &nc_text,
            cnonce,
        });
        let response = digest::compute_response(
            algorithm,
            &ha1,
            &challenge.nonce,
            method,
            digest_uri,
            qop.as_ref(),
        );
        Credentials {
            username: username.to_owned(),
            realm: challenge.realm.clone(),
            nonce: challenge.nonce.clone(),
            uri: digest_uri.to_owned(),
            response,
            algorithm: Some(algorithm.token().to_owned()),
            cnonce: qop.map(|_| cnonce.to_owned()),
            opaque: challenge.opaque.clone(),
            qop: qop.map(|q| q.qop.to_owned()),
            nc: qop.map(|_| (nc, nc_text.clone())),
        }
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// The digest-uri; a proxy may compare it with the Request-URI.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The request-digest in lowercase hex.
    pub fn response(&self) -> &str {
        &self.response
    }

    /// `None` when the client named an algorithm we do not implement. An absent
    /// `algorithm` parameter means MD5 (RFC 3261 §22.4).
    pub fn algorithm(&self) -> Option<Algorithm> {
        match &self.algorithm {
            None => Some(Algorithm::Md5),
            Some(t) => Algorithm::from_token(t),
        }
    }

    /// The algorithm as the client wrote it, for logs.
    pub fn algorithm_token(&self) -> &str {
        self.algorithm.as_deref().unwrap_or("MD5")
    }

    pub fn cnonce(&self) -> Option<&str> {
        self.cnonce.as_deref()
    }

    pub fn opaque(&self) -> Option<&str> {
        self.opaque.as_deref()
    }

    /// The raw `qop` value; `None` is the RFC 2069 form.
    pub fn qop(&self) -> Option<&str> {
        self.qop.as_deref()
    }

    /// The nonce count, present whenever `qop` is.
    pub fn nc(&self) -> Option<u32> {
        self.nc.as_ref().map(|(n, _)| *n)
    }

    /// `qop`, `nc` and `cnonce` as hashed, when a qop was given.
    pub(crate) fn qop_params(&self) -> Option<QopParams<'_>> {
        match (&self.qop, &self.nc, &self.cnonce) {
            (Some(qop), Some((_, nc)), Some(cnonce)) => Some(QopParams { qop, nc, cnonce }),
            _ => None,
        }
    }
}

/// Writes the header value, e.g. for a UAC's `Authorization` header.
impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::from("Digest ");
        write_quoted(&mut out, "username", &self.username);
        out.push_str(", ");
        write_quoted(&mut out, "realm", &self.realm);
        out.push_str(", ");
        write_quoted(&mut out, "nonce", &self.nonce);
        out.push_str(", ");
        write_quoted(&mut out, "uri", &self.uri);
        out.push_str(", ");
        write_quoted(&mut out, "response", &self.response);
        if let Some(a) = &self.algorithm {
            let _ = write!(out, ", algorithm={a}");
        }
        if let Some(c) = &self.cnonce {
            out.push_str(", ");
            write_quoted(&mut out, "cnonce", c);
        }
        if let Some(o) = &self.opaque {
            out.push_str(", ");
            write_quoted(&mut out, "opaque", o);
        }
        if let Some(q) = &self.qop {
            let _ = write!(out, ", qop={q}");
        }
        if let Some((_, nc)) = &self.nc {
            let _ = write!(out, ", nc={nc}");
        }
        f.write_str(&out)
    }
}

/// A digest challenge (`WWW-Authenticate` / `Proxy-Authenticate` value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// Offered qop values; empty means the RFC 2069 form.
    pub qop: Vec<Qop>,
    /// Tells the client its password was right but the nonce is old, so it retries
    /// without asking the user (RFC 7616 §3.3).
    pub stale: bool,
}

impl Challenge {
    /// Parses a challenge as a UAC receives it. Unknown `qop` options are dropped; an
    /// unknown algorithm is an error so the caller can move on to the next challenge.
    pub fn parse(value: &str) -> Result<Challenge, ParseError> {
        let mut p = parse_digest_params(value)?;
        let realm = require(&mut p, "realm")?;
        let nonce = require(&mut p, "nonce")?;
        let algorithm = match take(&mut p, "algorithm") {
            None => Algorithm::Md5,
            Some(t) => Algorithm::from_token(&t)
                .ok_or_else(|| ParseError::UnsupportedAlgorithm(name_for_error(&t)))?,
        };
        let qop = take(&mut p, "qop")
            .map(|q| {
                q.split(',')
                    .filter_map(|t| Qop::from_token(t.trim_matches([' ', '\t'])))
                    .collect()
            })
            .unwrap_or_default();
        let stale = match take(&mut p, "stale") {
            None => false,
            Some(s) if s.eq_ignore_ascii_case("true") => true,
            Some(s) if s.eq_ignore_ascii_case("false") => false,
            Some(_) => return Err(ParseError::InvalidStale),
        };
        Ok(Challenge {
            realm,
            nonce,
            opaque: take(&mut p, "opaque"),
            algorithm,
            qop,
            stale,
        })
    }
}

/// Writes the header value: `Digest realm="..", nonce="..", opaque="..",
/// algorithm=SHA-256, qop="auth"[, stale=true]`.
impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::from("Digest ");
        write_quoted(&mut out, "realm", &self.realm);
        out.push_str(", ");
        write_quoted(&mut out, "nonce", &self.nonce);
        if let Some(o) = &self.opaque {
            out.push_str(", ");
            write_quoted(&mut out, "opaque", o);
        }
        let _ = write!(out, ", algorithm={}", self.algorithm);
        if !self.qop.is_empty() {
            let list: Vec<&str> = self.qop.iter().map(|q| q.token()).collect();
            out.push_str(", ");
            write_quoted(&mut out, "qop", &list.join(","));
        }
        if self.stale {
            out.push_str(", stale=true");
        }
        f.write_str(&out)
    }
}
