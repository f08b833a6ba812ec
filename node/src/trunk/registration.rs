//! One trunk's outbound registration with its carrier (RFC 3261 §10.2), sans-IO.
//!
//! A [`Registration`] is fed the current [`Instant`], the final responses of the REGISTERs
//! it asked for, and transaction failures; it hands back REGISTERs to send
//! ([`Registration::poll_request`]) and when it next wants to be woken
//! ([`Registration::poll_timeout`]). The shell ([`super::service`]) sends through the
//! node's transaction layer, which does the retransmissions and Timer F.
//!
//! - One Call-ID and From tag for the binding's whole life; CSeq grows by one per request.
//! - 401/407 are answered with a digest `Authorization`/`Proxy-Authorization` (RFC 7616:
//!   MD5, SHA-256, SHA-512-256 and their `-sess` forms; `qop=auth` with a fresh cnonce
//!   and nonce count when offered, the RFC 2069 form otherwise). The last challenge is
//!   reused (nc + 1) on refreshes, saving a round trip; a registrar that refuses it just
//!   challenges again. A second challenge to credentials answering a fresh one, not
//!   `stale`, means the password is wrong: failed.
//! - The binding lasts what the 200 grants (our Contact's `expires`, else `Expires`, else
//!   what we asked for) and is refreshed [`refresh_lead`] before it runs out.
//! - 423 is retried once with the registrar's Min-Expires; other failures (403, 404,
//!   5xx, 6xx, a timeout, a transport error, a challenge we cannot answer) back off:
//!   `Retry-After` when given, else 30 s doubling to 30 min, shortened by up to a quarter
//!   (from the Call-ID) so a cluster's nodes do not retry in step.
//! - [`Registration::stop`] removes the binding (REGISTER with `Expires: 0`) when there
//!   may be one; the machine is [`State::Stopped`] once that is answered or failed.

use std::fmt;

pub use super::params::{InvalidParams, Params};
use std::time::{Duration, Instant};

use crate::sip::auth::{Challenge, Credentials, Qop};
use crate::sip::transaction::{Peer, new_branch};
use crate::sip::{HeaderName, Method, Request, Response, SipHeaders, Uri};

/// First retry delay after a failure; doubles per consecutive failure.
pub const BACKOFF_BASE: Duration = Duration::from_secs(30);
/// Longest retry delay (RFC 5626 §4.5 uses the same bound).
pub const BACKOFF_MAX: Duration = Duration::from_secs(1800);
/// Longest `Retry-After` honoured.
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(3600);

/// Why a registration is not in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A final response we do not retry at once: 403, 404, 5xx, 6xx, a 3xx (not followed).
    Rejected { status: u16, reason: String },
    /// Challenged again after answering a fresh challenge: the password (or username) is
    /// wrong for that realm.
    WrongCredentials { status: u16, realm: String },
    /// A challenge with no algorithm or qop we can answer, or none at all.
    UnanswerableChallenge(String),
    /// 423 and the registrar's Min-Expires is above what we may ask for, or missing.
    IntervalTooBrief { min_expires: Option<u32> },
    /// The 200 did not grant a binding (an expiry of 0, or none for our Contact).
    NotGranted,
    /// No final response (Timer F).
    Timeout,
    /// The transport could not send (a TCP connection refused, ...).
    Transport,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Rejected { status, reason } => write!(f, "{status} {reason}"),
            Failure::WrongCredentials { status, realm } => write!(
                f,
                "{status}: credentials refused for realm \"{realm}\" (check username and password)"
            ),
            Failure::UnanswerableChallenge(why) => write!(f, "cannot answer the challenge: {why}"),
            Failure::IntervalTooBrief { min_expires } => match min_expires {
                Some(m) => write!(
                    f,
                    "423 Interval Too Brief: the registrar wants at least {m} s"
                ),
                None => f.write_str("423 Interval Too Brief without Min-Expires"),
            },
            Failure::NotGranted => f.write_str("the registrar's 200 granted no binding"),
            Failure::Timeout => f.write_str("no answer from the registrar"),
            Failure::Transport => f.write_str("could not send to the registrar"),
        }
    }
}

/// Where a registration stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Not started.
    Unregistered,
    /// A REGISTER is out and no binding is known to hold.
    Registering,
    /// The carrier holds our binding until `until`; a refresh goes out at `refresh_at`
    /// (a refresh in flight keeps this state).
    Registered { until: Instant, refresh_at: Instant },
    /// The last attempt failed; the next one goes out at `retry_at`.
    Failed { failure: Failure, retry_at: Instant },
    /// The REGISTER with `Expires: 0` is out.
    Unregistering,
    /// Done: the binding is removed (or never was); nothing more will be sent.
    Stopped,
}

impl State {
    /// A short name for logs, metrics and the status endpoint.
    pub fn name(&self) -> &'static str {
        match self {
            State::Unregistered => "unregistered",
            State::Registering => "registering",
            State::Registered { .. } => "registered",
            State::Failed { .. } => "failed",
            State::Unregistering => "unregistering",
            State::Stopped => "stopped",
        }
    }

    pub fn is_registered(&self) -> bool {
        matches!(self, State::Registered { .. })
    }
}

/// The REGISTER out, awaiting its final response.
#[derive(Debug, Clone)]
struct Pending {
    cseq: u32,
    expires: u32,
    /// Credentials answering a challenge received for this very attempt (not reused
    /// from an earlier one): a second plain challenge then means a wrong password.
    fresh_credentials: bool,
    /// 423s retried within this attempt.
    too_brief: u8,
}

/// The challenge last answered, reused on later requests.
#[derive(Debug, Clone)]
struct Auth {
    challenge: Challenge,
    /// 401 (`Authorization`) or 407 (`Proxy-Authorization`).
    proxy: bool,
    nc: u32,
}

/// One trunk's registration. See the module documentation.
#[derive(Debug)]
pub struct Registration {
    params: Params,
    /// `sip:domain`.
    request_uri: Uri,
    call_id: String,
    from_tag: String,
    cseq: u32,
    state: State,
    pending: Option<Pending>,
    outbox: Option<Request>,
    auth: Option<Auth>,
    /// Expiry to ask for (raised by a 423's Min-Expires).
    expires: u32,
    /// Consecutive failures, for the backoff.
    failures: u32,
    /// Set by [`Self::stop`]: unregister as soon as nothing is pending.
    stopping: bool,
}

impl Registration {
    /// A registration with a random Call-ID and From tag; call [`Self::start`]. Fails
    /// when the domain or username cannot be written in a SIP URI.
    pub fn new(params: Params) -> Result<Registration, InvalidParams> {
        let call_id = format!(
            "{:016x}{:08x}@{}",
            rand::random::<u64>(),
            rand::random::<u32>(),
            params.local.ip()
        );
        let from_tag = format!("{:016x}", rand::random::<u64>());
        Registration::with_ids(params, call_id, from_tag)
    }

    /// As [`Self::new`] with the given Call-ID and From tag (tests).
    pub fn with_ids(
        params: Params,
        call_id: String,
        from_tag: String,
    ) -> Result<Registration, InvalidParams> {
        let request_uri = Uri::parse(&format!("sip:{}", params.domain))
            .ok()
            .filter(|u| u.user().is_none() && u.params().is_empty())
            .ok_or_else(|| {
                InvalidParams(format!("domain {:?} is not a SIP host", params.domain))
            })?;
        Uri::parse(&params.aor())
            .map_err(|e| InvalidParams(format!("address-of-record {}: {e}", params.aor())))?;
        Ok(Registration {
            expires: params.expires_secs,
            request_uri,
            params,
            call_id,
            from_tag,
            cseq: 0,
            state: State::Unregistered,
            pending: None,
            outbox: None,
            auth: None,
            failures: 0,
            stopping: false,
        })
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    pub fn is_stopped(&self) -> bool {
        self.state == State::Stopped
    }

    /// Sends the first REGISTER. Does nothing once started.
    pub fn start(&mut self, _now: Instant) {
        if self.state == State::Unregistered {
            self.state = State::Registering;
            self.send(self.expires);
        }
    }

    /// Takes new settings. For the same account, registrar and contact
    /// ([`Params::same_binding`]) a changed password or expiry registers again at once
    /// (unless stopping) and this returns true; for another binding it changes nothing
    /// and returns false: stop this one and start a new one.
    pub fn update(&mut self, params: Params, now: Instant) -> bool {
        if !self.params.same_binding(&params) {
            return false;
        }
        if params == self.params || self.stopping {
            return true;
        }
        self.expires = params.expires_secs;
        self.params = params;
        // The old challenge answer was computed from the old password.
        self.auth = None;
        self.failures = 0;
        match self.state {
            State::Unregistered => self.start(now),
            State::Stopped | State::Unregistering => {}
            State::Registering | State::Registered { .. } | State::Failed { .. } => {
                if matches!(self.state, State::Failed { .. }) {
                    self.state = State::Registering;
                }
                // A REGISTER already out is superseded: its answer no longer matches.
                self.send(self.expires);
            }
        }
        true
    }

    /// Removes the binding: a REGISTER with `Expires: 0` when the carrier may hold one,
    /// else straight to [`State::Stopped`].
    pub fn stop(&mut self, _now: Instant) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        match self.state {
            State::Registered { .. } | State::Registering => {
                self.state = State::Unregistering;
                self.send(0);
            }
            State::Unregistered | State::Failed { .. } => self.finish(),
            State::Unregistering | State::Stopped => {}
        }
    }

    /// The next REGISTER to send, with where it goes.
    pub fn poll_request(&mut self) -> Option<(Request, Peer)> {
        self.outbox.take().map(|r| (r, self.params.registrar))
    }

    /// When [`Self::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Registered { until, refresh_at } => Some(if self.pending.is_some() {
                *until
            } else {
                (*refresh_at).min(*until)
            }),
            State::Failed { retry_at, .. } => Some(*retry_at),
            _ => None,
        }
    }

    /// Refreshes, notices a binding that ran out, retries after a failure.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Registered { until, refresh_at } => {
                if now >= until {
                    // Our refresh is still out (or never went): the carrier has dropped us.
                    self.state = State::Registering;
                    if self.pending.is_none() {
                        self.send(self.expires);
                    }
                } else if now >= refresh_at && self.pending.is_none() {
                    self.send(self.expires);
                }
            }
            State::Failed { retry_at, .. } if now >= retry_at => {
                self.state = State::Registering;
                self.send(self.expires);
            }
            _ => {}
        }
    }

    /// A response to one of our REGISTERs. Returns false when it answers none we are
    /// waiting for (an old CSeq, another Call-ID), which is then ignored.
    pub fn handle_response(&mut self, response: &Response, now: Instant) -> bool {
        let Some(pending) = self.pending.clone() else {
            return false;
        };
        let ours = response.call_id().ok() == Some(self.call_id.as_str())
            && response
                .cseq()
                .is_ok_and(|c| c.seq == pending.cseq && c.method == Method::Register);
        if !ours {
            return false;
        }
        if response.status < 200 {
            return true;
        }
        self.pending = None;
        match response.status {
            200..=299 => self.on_success(response, &pending, now),
            401 | 407 => self.on_challenge(response, &pending, now),
            423 => self.on_too_brief(response, &pending, now),
            status => self.fail(
                Failure::Rejected {
                    status,
                    reason: response.reason.clone(),
                },
                retry_after(response),
                now,
            ),
        }
        true
    }

    /// The REGISTER out got no final response ([`Failure::Timeout`]) or could not be
    /// sent ([`Failure::Transport`]).
    pub fn handle_failure(&mut self, failure: Failure, now: Instant) {
        if self.pending.take().is_none() {
            return;
        }
        self.fail(failure, None, now);
    }

    fn on_success(&mut self, response: &Response, pending: &Pending, now: Instant) {
        if pending.expires == 0 {
            self.finish();
            return;
        }
        let granted = self.granted(response).unwrap_or(pending.expires);
        if granted == 0 {
            self.fail(Failure::NotGranted, None, now);
            return;
        }
        self.failures = 0;
        let lifetime = Duration::from_secs(granted.into());
        self.state = State::Registered {
            until: now + lifetime,
            refresh_at: now + lifetime - refresh_lead(lifetime),
        };
        if self.stopping {
            self.state = State::Unregistering;
            self.send(0);
        }
    }

    /// What the 200 grants our Contact: its `expires` parameter, else the Expires
    /// header. `None` when it says neither (we keep what we asked for).
    fn granted(&self, response: &Response) -> Option<u32> {
        let ours = Uri::parse(&self.params.contact_uri()).ok();
        if let (Ok(crate::sip::ContactList::Addrs(list)), Some(ours)) =
            (response.contacts(), ours.as_ref())
        {
            let mine = list.iter().find(|c| same_contact(&c.uri, ours));
            if let Some(e) = mine.and_then(|c| c.expires().ok().flatten()) {
                return Some(e);
            }
        }
        response.expires().ok().flatten()
    }

    fn on_challenge(&mut self, response: &Response, pending: &Pending, now: Instant) {
        let proxy = response.status == 407;
        let header = if proxy {
            HeaderName::ProxyAuthenticate
        } else {
            HeaderName::WwwAuthenticate
        };
        let challenge = match pick_challenge(response.headers.get_all_by(header)) {
            Ok(c) => c,
            Err(why) => {
                self.fail(Failure::UnanswerableChallenge(why), None, now);
                return;
            }
        };
        if pending.fresh_credentials && !challenge.stale {
            self.fail(
                Failure::WrongCredentials {
                    status: response.status,
                    realm: challenge.realm,
                },
                None,
                now,
            );
            return;
        }
        self.auth = Some(Auth {
            challenge,
            proxy,
            nc: 0,
        });
        let expires = pending.expires;
        self.send_with(expires, true, pending.too_brief);
    }

    fn on_too_brief(&mut self, response: &Response, pending: &Pending, now: Instant) {
        let min = response
            .headers
            .get_by(&HeaderName::MinExpires)
            .and_then(|v| v.trim().parse::<u32>().ok());
        match min {
            Some(m)
                if pending.too_brief == 0
                    && m > pending.expires
                    && m <= tongdai_control_plane::model::MAX_REGISTRATION_EXPIRES =>
            {
                self.expires = m;
                self.send_with(m, false, pending.too_brief + 1);
            }
            _ => self.fail(Failure::IntervalTooBrief { min_expires: min }, None, now),
        }
    }

    fn fail(&mut self, failure: Failure, retry_after: Option<Duration>, now: Instant) {
        if self.stopping {
            // Unregistering failed (or the last REGISTER did): nothing more to try.
            self.finish();
            return;
        }
        self.failures = self.failures.saturating_add(1);
        let delay = retry_after.unwrap_or_else(|| self.backoff());
        self.state = State::Failed {
            failure,
            retry_at: now + delay,
        };
    }

    /// 30 s doubling per consecutive failure up to 30 min, less up to a quarter.
    fn backoff(&self) -> Duration {
        let doublings = self.failures.saturating_sub(1).min(16);
        let full = BACKOFF_BASE.saturating_mul(1 << doublings).min(BACKOFF_MAX);
        // A spread fixed per binding and attempt: nodes registering the same trunk
        // have different Call-IDs, so they retry apart.
        let spread = (fnv1a(self.call_id.as_bytes()) ^ u64::from(self.failures)) % 250;
        full - full * spread as u32 / 1000
    }

    fn finish(&mut self) {
        self.state = State::Stopped;
        self.pending = None;
        self.outbox = None;
    }

    fn send(&mut self, expires: u32) {
        self.send_with(expires, false, 0);
    }

    /// Queues a REGISTER asking for `expires` (0 removes the binding), with credentials
    /// when a challenge is known; `fresh` says they answer a challenge just received.
    fn send_with(&mut self, expires: u32, fresh: bool, too_brief: u8) {
        self.cseq += 1;
        let p = &self.params;
        let uri = self.request_uri.clone();
        let mut req = Request::new(Method::Register, uri.clone());
        req.headers.push(
            HeaderName::Via,
            format!(
                "SIP/2.0/{} {};branch={};rport",
                p.registrar.transport.as_str(),
                p.local,
                new_branch()
            ),
        );
        req.headers.push(HeaderName::MaxForwards, "70");
        req.headers.push(
            HeaderName::From,
            format!("<{}>;tag={}", p.aor(), self.from_tag),
        );
        req.headers.push(HeaderName::To, format!("<{}>", p.aor()));
        req.headers.push(HeaderName::CallId, self.call_id.clone());
        req.headers
            .push(HeaderName::CSeq, format!("{} REGISTER", self.cseq));
        req.headers
            .push(HeaderName::Contact, format!("<{}>", p.contact_uri()));
        req.headers.push(HeaderName::Expires, expires.to_string());
        req.headers
            .push(HeaderName::Allow, crate::server::ALLOWED_METHODS);
        req.headers.push(
            HeaderName::UserAgent,
            format!("tongdai/{}", env!("CARGO_PKG_VERSION")),
        );
        if let Some(auth) = &mut self.auth {
            auth.nc += 1;
            let cnonce = format!("{:016x}", rand::random::<u64>());
            let creds = Credentials::answer(
                &auth.challenge,
                &p.username,
                &p.password,
                "REGISTER",
                uri.as_str(),
                &cnonce,
                auth.nc,
            );
            let name = if auth.proxy {
                HeaderName::ProxyAuthorization
            } else {
                HeaderName::Authorization
            };
            req.headers.push(name, creds.to_string());
        }
        self.pending = Some(Pending {
            cseq: self.cseq,
            expires,
            fresh_credentials: fresh,
            too_brief,
        });
        self.outbox = Some(req);
    }
}

/// How long before a binding of `lifetime` runs out its refresh goes: half of it, at
/// most a minute (a REGISTER with a challenge needs two round trips, Timer F is 32 s).
pub fn refresh_lead(lifetime: Duration) -> Duration {
    (lifetime / 2).min(Duration::from_secs(60))
}

/// The first digest challenge we can answer: a known algorithm, and `qop` absent
/// (RFC 2069 form) or offering `auth`. The reason in words when there is none.
fn pick_challenge<'a>(values: impl Iterator<Item = &'a str>) -> Result<Challenge, String> {
    let mut why = String::from("no digest challenge in the response");
    for value in values {
        if !value
            .trim_start()
            .get(..6)
            .is_some_and(|s| s.eq_ignore_ascii_case("digest"))
        {
            why = format!("not a digest challenge: {}", truncate(value));
            continue;
        }
        match Challenge::parse(value) {
            Ok(c) if c.qop.is_empty() || c.qop.contains(&Qop::Auth) => return Ok(c),
            Ok(_) => why = "only qop=auth-int offered".into(),
            Err(e) => why = e.reason(),
        }
    }
    Err(why)
}

/// The Retry-After of a failure response (its delta-seconds, comment ignored), bounded.
fn retry_after(response: &Response) -> Option<Duration> {
    let v = response.headers.get_by(&HeaderName::RetryAfter)?;
    let secs: u64 = v.split(['(', ';']).next()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs.max(1)).min(RETRY_AFTER_MAX))
}

/// Whether two Contact URIs name the same binding: user, host and port (5060 when
/// absent) compared, parameters ignored.
fn same_contact(a: &Uri, b: &Uri) -> bool {
    a.user() == b.user()
        && a.host().eq_ignore_ascii_case(b.host())
        && a.port().unwrap_or(5060) == b.port().unwrap_or(5060)
}

fn truncate(s: &str) -> String {
    s.chars().take(60).collect()
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
