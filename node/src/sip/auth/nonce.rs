//! Self-validating nonces and nonce-count replay protection.
//!
//! A nonce is `hex(issued_ms || random || tag)` where `tag` is a truncated
//! HMAC-SHA256 over the rest and the realm, keyed by a server secret. Any node holding the
//! secret can tell an authentic nonce and its age without shared state, so a phone may be
//! challenged by one node and answer another.
//!
//! **Time** is milliseconds since the Unix epoch, passed in by the caller (see
//! [`unix_millis`]). Wall-clock rather than `Instant` because the issue time travels inside
//! the nonce between nodes; [`NonceConfig::max_clock_skew`] absorbs their disagreement.
//!
//! **Replay protection** needs state: the highest `nc` seen per nonce is remembered on this
//! node, in a map bounded by [`NonceConfig::max_tracked`]. Entries leave when their nonce
//! expires. When the map is full the oldest-issued entry is evicted and every nonce issued
//! at or before it that we are not tracking is from then on answered as stale, so memory
//! pressure costs a client a re-challenge, never opens a replay window. The map is
//! per node: a request captured and replayed to a *different* node within the nonce
//! lifetime is not caught, which is why the lifetime is short.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use rand::Rng;
use sha2::{Digest, Sha256};

use super::VerifyError;
use super::digest::Algorithm;
use super::header::{Challenge, Qop};

type HmacSha256 = Hmac<Sha256>;

/// Bytes of HMAC kept in the nonce; 128 bits is ample for a value that lives minutes.
const TAG_LEN: usize = 16;
const NONCE_BYTES: usize = 8 + 8 + TAG_LEN;
/// Binds tags to this format so a future format cannot be confused with it.
const DOMAIN: &[u8] = b"tongdai digest nonce v1";

/// Milliseconds since the Unix epoch; the time unit of this module. Times before the
/// epoch read as 0.
pub fn unix_millis(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Tuning for [`NonceManager`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonceConfig {
    /// How long a nonce is accepted; afterwards a correct response gets `stale=true`.
    pub lifetime: Duration,
    /// How far in the future a nonce's issue time may be (another node's clock).
    pub max_clock_skew: Duration,
    /// Bound on nonces whose `nc` is remembered; see the module docs for what happens
    /// when it is reached.
    pub max_tracked: usize,
    /// Accept MD5 responses without `qop` (RFC 2069). Such responses carry no `nc`, so
    /// they can be replayed for the nonce lifetime; only for very old phones.
    pub allow_rfc2069: bool,
}

impl Default for NonceConfig {
    fn default() -> Self {
        NonceConfig {
            lifetime: Duration::from_secs(300),
            max_clock_skew: Duration::from_secs(5),
            max_tracked: 100_000,
            allow_rfc2069: false,
        }
    }
}

/// A nonce that passed the HMAC check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AuthenticNonce {
    issued_ms: u64,
    tag: [u8; TAG_LEN],
    /// Past its lifetime, or issued implausibly far in the future.
    pub(crate) stale: bool,
}

#[derive(Debug, Default)]
struct NcTracker {
    /// Highest nc per nonce, ordered by issue time so expiry and eviction pop the front.
    highest: BTreeMap<(u64, [u8; TAG_LEN]), u32>,
    /// Issue time of the newest entry evicted while still live.
    evicted_through: Option<u64>,
}

/// Issues and checks nonces; shared by all tasks of a node (`&self` methods, internal lock
/// only around the replay map).
#[derive(Debug)]
pub struct NonceManager {
    secret: [u8; 32],
    previous_secret: Option<[u8; 32]>,
    config: NonceConfig,
    tracker: Mutex<NcTracker>,
}

impl NonceManager {
    /// All nodes of a cluster must share `secret` for nonces to be portable.
    pub fn new(secret: [u8; 32], config: NonceConfig) -> NonceManager {
        NonceManager {
            secret,
            previous_secret: None,
            config,
            tracker: Mutex::new(NcTracker::default()),
        }
    }

    /// For a single node (`tongdai up`): nonces die with the process, which only costs
    /// phones one re-challenge.
    pub fn with_random_secret(config: NonceConfig) -> NonceManager {
        let mut secret = [0u8; 32];
        rand::rng().fill(&mut secret);
        NonceManager::new(secret, config)
    }

    pub fn config(&self) -> &NonceConfig {
        &self.config
    }

    /// Switches to a new secret; nonces made with the old one stay valid until they expire
    /// naturally, so rotation is invisible to phones. Rotate at most once per lifetime.
    pub fn rotate_secret(&mut self, secret: [u8; 32]) {
        self.previous_secret = Some(std::mem::replace(&mut self.secret, secret));
    }

    /// A fresh nonce for `realm`. Bound to the realm so one tenant's nonce is useless in
    /// another's.
    pub fn issue(&self, realm: &str, now_ms: u64) -> String {
        let random: u64 = rand::rng().random();
        let mut raw = [0u8; NONCE_BYTES];
        raw[..8].copy_from_slice(&now_ms.to_be_bytes());
        raw[8..16].copy_from_slice(&random.to_be_bytes());
        let mac = keyed_mac(&self.secret, &raw[..16], realm)
            .finalize()
            .into_bytes();
        raw[16..].copy_from_slice(&mac[..TAG_LEN]);
        hex::encode(raw)
    }

    /// The `opaque` we pair with `nonce`. It carries no security (the nonce authenticates
    /// itself); it exists because clients expect it and must echo it, and deriving it from
    /// the nonce keeps us stateless.
    pub fn opaque_for(nonce: &str) -> String {
        let digest = Sha256::new()
            .chain_update(b"tongdai opaque")
            .chain_update(nonce.as_bytes())
            .finalize();
        hex::encode(&digest[..8])
    }

    /// One challenge with a fresh nonce.
    pub fn challenge(
        &self,
        realm: &str,
        algorithm: Algorithm,
        stale: bool,
        now_ms: u64,
    ) -> Challenge {
        let nonce = self.issue(realm, now_ms);
        let opaque = Some(NonceManager::opaque_for(&nonce));
        Challenge {
            realm: realm.to_owned(),
            nonce,
            opaque,
            algorithm,
            qop: vec![Qop::Auth],
            stale,
        }
    }

    /// What a registrar puts in its 401: SHA-256 first, then MD5 for phones that only know
    /// MD5 (RFC 8760 §2.4: clients take the first algorithm they support). Both share a
    /// nonce, so whichever the phone picks counts against the same `nc`.
    pub fn challenges(&self, realm: &str, stale: bool, now_ms: u64) -> [Challenge; 2] {
        let sha = self.challenge(realm, Algorithm::Sha256, stale, now_ms);
        let md5 = Challenge {
            algorithm: Algorithm::Md5,
            ..sha.clone()
        };
        [sha, md5]
    }

    /// Checks the HMAC and age of `nonce` for `realm`.
    pub(crate) fn check(
        &self,
        nonce: &str,
        realm: &str,
        now_ms: u64,
    ) -> Result<AuthenticNonce, VerifyError> {
        let mut raw = [0u8; NONCE_BYTES];
        hex::decode_to_slice(nonce, &mut raw).map_err(|_| VerifyError::InvalidNonce)?;
        let (body, tag) = raw.split_at(16);
        let authentic = std::iter::once(&self.secret)
            .chain(self.previous_secret.as_ref())
            .any(|key| {
                keyed_mac(key, body, realm)
                    .verify_truncated_left(tag)
                    .is_ok()
            });
        if !authentic {
            return Err(VerifyError::InvalidNonce);
        }
        let mut issued = [0u8; 8];
        issued.copy_from_slice(&body[..8]);
        let issued_ms = u64::from_be_bytes(issued);
        let mut tag_arr = [0u8; TAG_LEN];
        tag_arr.copy_from_slice(tag);
        let lifetime = duration_ms(self.config.lifetime);
        let skew = duration_ms(self.config.max_clock_skew);
        let stale =
            issued_ms > now_ms.saturating_add(skew) || now_ms >= issued_ms.saturating_add(lifetime);
        Ok(AuthenticNonce {
            issued_ms,
            tag: tag_arr,
            stale,
        })
    }

    /// Records `nc` for an authentic, live nonce whose response was correct. Only
    /// authenticated requests reach here, so strangers cannot fill the map.
    pub(crate) fn record_nc(
        &self,
        nonce: &AuthenticNonce,
        nc: u32,
        now_ms: u64,
    ) -> Result<(), VerifyError> {
        if nc == 0 {
            return Err(VerifyError::Replay);
        }
        let mut t = self.tracker.lock();
        self.purge_locked(&mut t, now_ms);
        let key = (nonce.issued_ms, nonce.tag);
        if let Some(highest) = t.highest.get_mut(&key) {
            if nc <= *highest {
                return Err(VerifyError::Replay);
            }
            *highest = nc;
            return Ok(());
        }
        if t.evicted_through.is_some_and(|w| nonce.issued_ms <= w) {
            // We may have forgotten this nonce's history; make the client start over.
            return Err(VerifyError::Stale);
        }
        if self.config.max_tracked == 0 {
            return Err(VerifyError::Stale);
        }
        while t.highest.len() >= self.config.max_tracked {
            let Some(oldest) = t.highest.first_entry() else {
                break;
            };
            // The oldest-issued nonce loses its place; if that is the newcomer, it is refused.
            let newcomer_is_oldest = key < *oldest.key();
            let issued = if newcomer_is_oldest {
                nonce.issued_ms
            } else {
                oldest.remove_entry().0.0
            };
            t.evicted_through = Some(t.evicted_through.map_or(issued, |w| w.max(issued)));
            if newcomer_is_oldest {
                return Err(VerifyError::Stale);
            }
        }
        if t.evicted_through.is_some_and(|w| nonce.issued_ms <= w) {
            return Err(VerifyError::Stale);
        }
        t.highest.insert(key, nc);
        Ok(())
    }

    /// Drops replay state of expired nonces. Done on every `nc` check anyway; call it from
    /// a housekeeping tick to release memory when idle.
    pub fn purge_expired(&self, now_ms: u64) {
        let mut t = self.tracker.lock();
        self.purge_locked(&mut t, now_ms);
    }

    /// How many nonces' `nc` are remembered, for a gauge.
    pub fn tracked_nonces(&self) -> usize {
        self.tracker.lock().highest.len()
    }

    fn purge_locked(&self, t: &mut NcTracker, now_ms: u64) {
        let lifetime = duration_ms(self.config.lifetime);
        while let Some(entry) = t.highest.first_entry() {
            if now_ms >= entry.key().0.saturating_add(lifetime) {
                entry.remove();
            } else {
                break;
            }
        }
        // Once everything up to the watermark has expired it no longer matters.
        if t.evicted_through
            .is_some_and(|w| now_ms >= w.saturating_add(lifetime))
        {
            t.evicted_through = None;
        }
    }
}

fn keyed_mac(key: &[u8; 32], body: &[u8], realm: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(DOMAIN);
    mac.update(body);
    mac.update(realm.as_bytes());
    mac
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
