//! Digest arithmetic (RFC 7616 §3.4.1-3.4.3, RFC 8760): HA1, HA2 and the request-digest.
//!
//! Everything is lowercase hex in and out, because that is what goes on the wire and what
//! registrars conventionally store.

use md5::Md5;
use sha2::{Digest, Sha256, Sha512_256};

/// A digest algorithm as named in the `algorithm` parameter.
///
/// The `-sess` variants fold the nonce and cnonce into HA1, so a stored HA1 serves both
/// the plain and the session variant of the same hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
    Sha512_256,
    Sha512_256Sess,
}

impl Algorithm {
    /// Every algorithm we can verify.
    pub const ALL: [Algorithm; 6] = [
        Algorithm::Md5,
        Algorithm::Md5Sess,
        Algorithm::Sha256,
        Algorithm::Sha256Sess,
        Algorithm::Sha512_256,
        Algorithm::Sha512_256Sess,
    ];

    /// The token as written in headers.
    pub fn token(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    /// Tokens are case-insensitive (RFC 7616 §3.3).
    pub fn from_token(token: &str) -> Option<Algorithm> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.token().eq_ignore_ascii_case(token))
    }

    /// Whether HA1 is re-derived per nonce/cnonce (RFC 7616 §3.4.2).
    pub fn is_session(self) -> bool {
        matches!(
            self,
            Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess
        )
    }

    /// The hash underneath; this is what selects which stored HA1 to use.
    pub fn hash(self) -> HashFunction {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => HashFunction::Md5,
            Algorithm::Sha256 | Algorithm::Sha256Sess => HashFunction::Sha256,
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => HashFunction::Sha512_256,
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.token())
    }
}

/// A hash function. A user needs one stored HA1 per hash function their phones may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashFunction {
    Md5,
    Sha256,
    Sha512_256,
}

impl HashFunction {
    /// Length of a digest of this hash in hex characters.
    pub fn hex_len(self) -> usize {
        match self {
            HashFunction::Md5 => 32,
            HashFunction::Sha256 | HashFunction::Sha512_256 => 64,
        }
    }

    /// H(part0 ":" part1 ":" ...) as lowercase hex, without building the joined string.
    pub(crate) fn hex_of_joined(self, parts: &[&str]) -> String {
        match self {
            HashFunction::Md5 => joined::<Md5>(parts),
            HashFunction::Sha256 => joined::<Sha256>(parts),
            HashFunction::Sha512_256 => joined::<Sha512_256>(parts),
        }
    }
}

fn joined<D: Digest>(parts: &[&str]) -> String {
    let mut hasher = D::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update(b":");
        }
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// HA1 = H(username ":" realm ":" password), the only form in which a password should be
/// stored. For `-sess` algorithms store the HA1 of the base hash; the session step happens
/// at verification time.
pub fn ha1(algorithm: Algorithm, username: &str, realm: &str, password: &str) -> String {
    algorithm.hash().hex_of_joined(&[username, realm, password])
}

/// The `qop`, `nc` and `cnonce` values exactly as they appear on the wire; they are hashed
/// as text, so a client's spelling (e.g. of `nc`) must be kept verbatim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QopParams<'a> {
    pub qop: &'a str,
    pub nc: &'a str,
    pub cnonce: &'a str,
}

/// The request-digest a client sends in `response=` (RFC 7616 §3.4.1; RFC 2069 form when
/// `qop` is `None`). Used by the server to check a response and by our own UAC side.
///
/// `ha1` is the stored (non-session) HA1 in hex. For a `-sess` algorithm without `qop`
/// there is no cnonce; an empty one is used and [`super::verify`] never accepts that.
pub fn compute_response(
    algorithm: Algorithm,
    ha1: &str,
    nonce: &str,
    method: &str,
    digest_uri: &str,
    qop: Option<&QopParams<'_>>,
) -> String {
    let hash = algorithm.hash();
    let session_ha1;
    let ha1 = if algorithm.is_session() {
        let cnonce = qop.map_or("", |q| q.cnonce);
        session_ha1 = hash.hex_of_joined(&[ha1, nonce, cnonce]);
        session_ha1.as_str()
    } else {
        ha1
    };
    let ha2 = hash.hex_of_joined(&[method, digest_uri]);
    match qop {
        Some(q) => hash.hex_of_joined(&[ha1, nonce, q.nc, q.cnonce, q.qop, &ha2]),
        None => hash.hex_of_joined(&[ha1, nonce, &ha2]),
    }
}

/// Compares two byte strings in time that depends only on their lengths, so a wrong
/// response leaks nothing about how many leading characters were right.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}
