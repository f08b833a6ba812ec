//! Digest authentication for the registrar and proxy (RFC 3261 §22, RFC 7616, RFC 8760).
//!
//! Sans-IO: nothing here reads a clock or a socket. The flow at a registrar:
//!
//! 1. No credentials for our realm: answer 401 with both of
//!    [`NonceManager::challenges`] (SHA-256 first, then MD5).
//! 2. Credentials present: [`Credentials::parse`] the header value (a [`ParseError`] is a
//!    400 with [`ParseError::reason`]); look up the user's stored HA1 for
//!    [`Algorithm::hash`] of [`Credentials::algorithm`]; call [`verify`].
//! 3. Act on the [`VerifyError`]: each variant says what to answer.
//!
//! Passwords are never needed by the server: it stores [`ha1`] per user, realm and hash
//! function.

mod digest;
mod header;
mod nonce;

#[cfg(test)]
mod tests;

pub use digest::{Algorithm, HashFunction, QopParams, compute_response, ha1};
pub use header::{Challenge, Credentials, ParseError, Qop};
pub use nonce::{NonceConfig, NonceManager, unix_millis};

/// Why credentials were not accepted, and so what to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Credentials are for another realm: challenge for ours (401), as if none were sent.
    #[error("credentials are for another realm")]
    RealmMismatch,
    /// The client chose an algorithm we do not implement: re-challenge (401); our
    /// challenges list what we support.
    #[error("unsupported digest algorithm")]
    UnsupportedAlgorithm,
    /// `qop` other than `auth`, a missing `qop` where RFC 2069 is not allowed, or a
    /// `-sess` algorithm without `qop`: re-challenge (401).
    #[error("unsupported qop")]
    UnsupportedQop,
    /// Not a nonce we issued for this realm (forged, garbled, or from before a secret
    /// rotation): re-challenge (401) without `stale`.
    #[error("nonce was not issued by us")]
    InvalidNonce,
    /// `opaque` does not belong to the nonce: a broken client. Re-challenge (401).
    #[error("opaque does not match the nonce")]
    OpaqueMismatch,
    /// Wrong password (or HA1 for another hash): 403, or 401 to let the user retry.
    #[error("wrong digest response")]
    WrongResponse,
    /// Password right, nonce too old: 401 with `stale=true` so the phone retries silently.
    #[error("nonce is stale")]
    Stale,
    /// An `nc` not above the highest already seen for this nonce: a replayed or reordered
    /// request. Answer 401 with `stale=true`: a replayer cannot answer it without the
    /// password, a genuine client recovers without asking its user.
    #[error("nonce count replayed")]
    Replay,
}

impl VerifyError {
    /// Whether the re-challenge should carry `stale=true`.
    pub fn is_stale(self) -> bool {
        matches!(self, VerifyError::Stale | VerifyError::Replay)
    }
}

/// Checks `creds` for a request with `method` against realm `realm`.
///
/// `ha1` is the stored HA1 (hex, any case) of the user named in the credentials for the
/// hash of the algorithm the client chose. `now_ms` is Unix time in milliseconds (see
/// [`unix_millis`]). On success the request's `nc` is recorded, so the same credentials
/// are accepted once.
///
/// The digest-uri is not compared with the Request-URI here; proxies that want that check
/// compare [`Credentials::uri`] themselves.
pub fn verify(
    nonces: &NonceManager,
    creds: &Credentials,
    method: &str,
    realm: &str,
    ha1: &str,
    now_ms: u64,
) -> Result<(), VerifyError> {
    if creds.realm() != realm {
        return Err(VerifyError::RealmMismatch);
    }
    let algorithm = creds.algorithm().ok_or(VerifyError::UnsupportedAlgorithm)?;
    let qop = creds.qop_params();
    match &qop {
        Some(q) if Qop::from_token(q.qop) == Some(Qop::Auth) => {}
        Some(_) => return Err(VerifyError::UnsupportedQop),
        None if algorithm == Algorithm::Md5 && nonces.config().allow_rfc2069 => {}
        None => return Err(VerifyError::UnsupportedQop),
    }
    let nonce = nonces.check(creds.nonce(), realm, now_ms)?;
    if creds
        .opaque()
        .is_some_and(|o| o != NonceManager::opaque_for(creds.nonce()))
    {
        return Err(VerifyError::OpaqueMismatch);
    }
    let expected = compute_response(
        algorithm,
        &ha1.to_ascii_lowercase(),
        creds.nonce(),
        method,
        creds.uri(),
        qop.as_ref(),
    );
    if !digest::constant_time_eq(expected.as_bytes(), creds.response().as_bytes()) {
        return Err(VerifyError::WrongResponse);
    }
    // Stale only after the response proved the password (RFC 7616 §3.3), so a client is
    // never told to retry silently with a password that is wrong.
    if nonce.stale {
        return Err(VerifyError::Stale);
    }
    match creds.nc() {
        Some(nc) if qop.is_some() => nonces.record_nc(&nonce, nc, now_ms),
        _ => Ok(()),
    }
}
