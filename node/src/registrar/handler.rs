//! Turns one validated REGISTER into its response: digest authentication, the
//! authorization check (a user registers only their own AOR), expiry policy (423 with
//! Min-Expires), then the binding update in the [`LocationService`].

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::sip::auth::{self, Algorithm, Credentials, HashFunction, NonceManager, VerifyError};
use crate::sip::{ContactList, HeaderName, Host, Request, Response, SipHeaders};

use super::bindings::{Binding, BindingError, ContactUpdate, RegisterOp, RegisterRequest};
use super::location::{LocationError, LocationService};

/// Registrar policy, from the `[registrar]` config section.
#[derive(Debug, Clone)]
pub struct RegistrarPolicy {
    /// The default tenant: the realm of AORs whose domain is an IP address (phones
    /// pointed at the node's address). Otherwise the AOR's domain names the tenant,
    /// and the digest realm is that tenant's id.
    pub realm: String,
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
    /// Challenges offered in a 401, in order (phones take the first they support).
    pub algorithms: Vec<Algorithm>,
}

/// Where the registrar finds users' credentials: HA1 per hash function, never passwords.
pub trait UserDirectory: Send + Sync + 'static {
    /// Whether `realm` (a tenant id) is served here.
    fn has_realm(&self, realm: &str) -> bool;
    fn ha1(&self, realm: &str, username: &str, hash: HashFunction) -> Option<String>;
}

/// Why a REGISTER was answered with an authentication failure; a bounded metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    Ok,
    Challenged,
    Stale,
    WrongCredentials,
    Forbidden,
    Malformed,
}

impl AuthOutcome {
    pub fn label(self) -> &'static str {
        match self {
            AuthOutcome::Ok => "ok",
            AuthOutcome::Challenged => "challenged",
            AuthOutcome::Stale => "stale",
            AuthOutcome::WrongCredentials => "wrong_credentials",
            AuthOutcome::Forbidden => "forbidden",
            AuthOutcome::Malformed => "malformed",
        }
    }
}

#[derive(Debug)]
pub struct Registrar<L, D> {
    policy: RegistrarPolicy,
    location: Arc<L>,
    users: D,
    nonces: NonceManager,
}

impl<L: LocationService, D: UserDirectory> Registrar<L, D> {
    pub fn new(policy: RegistrarPolicy, location: Arc<L>, users: D, nonces: NonceManager) -> Self {
        Registrar {
            policy,
            location,
            users,
            nonces,
        }
    }

    pub fn location(&self) -> &Arc<L> {
        &self.location
    }

    pub fn nonces(&self) -> &NonceManager {
        &self.nonces
    }

    /// Answers a REGISTER that passed [`crate::sip::validate_request`].
    pub async fn handle(
        &self,
        req: &Request,
        source: SocketAddr,
        transport: &str,
        to_tag: &str,
        now_ms: u64,
    ) -> (Response, AuthOutcome) {
        let reply = |status: u16, reason: &str| {
            let mut r = Response::to_request(req, status, Some(to_tag));
            r.reason = reason.to_owned();
            r
        };
        let Ok(to) = req.hdr_to() else {
            return (reply(400, "Malformed To header"), AuthOutcome::Malformed);
        };
        let Some(realm) = self.realm_for(&to.uri) else {
            return (reply(404, "Unknown domain"), AuthOutcome::Forbidden);
        };
        let username = match self.authenticate(req, &realm, now_ms) {
            Ok(u) => u,
            Err(Denied::Challenge { stale }) => {
                let outcome = if stale {
                    AuthOutcome::Stale
                } else {
                    AuthOutcome::Challenged
                };
                return (self.challenge(req, &realm, to_tag, stale, now_ms), outcome);
            }
            Err(Denied::Malformed(why)) => return (reply(400, &why), AuthOutcome::Malformed),
            Err(Denied::Wrong) => {
                return (
                    reply(403, "Wrong credentials"),
                    AuthOutcome::WrongCredentials,
                );
            }
        };
        // A user may register only their own address-of-record.
        if to.uri.user_unescaped().as_deref() != Some(username.as_str()) {
            return (
                reply(403, "Not allowed to register this address"),
                AuthOutcome::Forbidden,
            );
        }
        let op = match self.register_op(req) {
            Ok(op) => op,
            Err(resp) => return (*resp, AuthOutcome::Ok),
        };
        let request = RegisterRequest {
            aor: format!("{username}@{realm}"),
            op,
            call_id: req.call_id().unwrap_or_default().to_owned(),
            cseq: req.cseq().map(|c| c.seq).unwrap_or_default(),
            source,
            transport: transport.to_owned(),
        };
        let response = match self.location.register(request, now_ms).await {
            Ok(bindings) => {
                let mut r = reply(200, "OK");
                for b in &bindings {
                    r.headers
                        .push(HeaderName::Contact, contact_value(b, now_ms));
                }
                r.headers.push(
                    HeaderName::Date,
                    httpdate::fmt_http_date(std::time::SystemTime::now()),
                );
                r
            }
            Err(LocationError::Binding(BindingError::StaleCseq)) => reply(
                500,
                "Out-of-order REGISTER (CSeq not higher than the binding's)",
            ),
            Err(LocationError::Binding(e @ BindingError::TooManyContacts(_))) => {
                reply(403, &e.to_string())
            }
            Err(LocationError::Refused(why)) => reply(403, &why),
            Err(LocationError::Unavailable(_)) => {
                let mut r = reply(503, "Location service unavailable");
                r.headers.push(HeaderName::RetryAfter, "5");
                r
            }
        };
        (response, AuthOutcome::Ok)
    }

    /// The realm (tenant id) an AOR belongs to: its domain when that is a tenant here,
    /// the default tenant when its domain is an IP address.
    fn realm_for(&self, uri: &crate::sip::Uri) -> Option<String> {
        match uri.host_parsed()? {
            Host::Domain(d) if self.users.has_realm(d) => Some(d.clone()),
            Host::Ip(_) if self.users.has_realm(&self.policy.realm) => {
                Some(self.policy.realm.clone())
            }
            _ => None,
        }
    }

    fn challenge(
        &self,
        req: &Request,
        realm: &str,
        to_tag: &str,
        stale: bool,
        now_ms: u64,
    ) -> Response {
        self.challenge_with(req, realm, to_tag, stale, now_ms, Challenger::Registrar)
    }

    fn challenge_with(
        &self,
        req: &Request,
        realm: &str,
        to_tag: &str,
        stale: bool,
        now_ms: u64,
        who: Challenger,
    ) -> Response {
        let mut r = Response::to_request(req, who.status(), Some(to_tag));
        let first = self
            .policy
            .algorithms
            .first()
            .copied()
            .unwrap_or(Algorithm::Md5);
        let base = self.nonces.challenge(realm, first, stale, now_ms);
        // One nonce for every offered algorithm, so whichever the phone picks counts
        // against the same nc.
        for alg in &self.policy.algorithms {
            let mut c = base.clone();
            c.algorithm = *alg;
            r.headers.push(who.challenge_header(), c.to_string());
        }
        r
    }

    fn authenticate(&self, req: &Request, realm: &str, now_ms: u64) -> Result<String, Denied> {
        self.authenticate_with(req, realm, now_ms, Challenger::Registrar)
    }

    /// Authenticates a call (INVITE) from a phone: the realm (tenant) comes from the From
    /// URI as for REGISTER's To, the credentials from Proxy-Authorization (RFC 3261
    /// 22.3). `Ok((tenant, user))`, or the response to send: a 407 challenge, 403, 404.
    pub fn authenticate_call(
        &self,
        req: &Request,
        to_tag: &str,
        now_ms: u64,
    ) -> Result<(String, String), (Response, AuthOutcome)> {
        let reply = |status: u16, reason: &str| {
            let mut r = Response::to_request(req, status, Some(to_tag));
            r.reason = reason.to_owned();
            r
        };
        let Ok(from) = req.hdr_from() else {
            return Err((reply(400, "Malformed From header"), AuthOutcome::Malformed));
        };
        let Some(realm) = self.realm_for(&from.uri) else {
            return Err((reply(404, "Unknown domain"), AuthOutcome::Forbidden));
        };
        match self.authenticate_with(req, &realm, now_ms, Challenger::Proxy) {
            Ok(user) => Ok((realm, user)),
            Err(Denied::Challenge { stale }) => Err((
                self.challenge_with(req, &realm, to_tag, stale, now_ms, Challenger::Proxy),
                if stale {
                    AuthOutcome::Stale
                } else {
                    AuthOutcome::Challenged
                },
            )),
            Err(Denied::Malformed(why)) => Err((reply(400, &why), AuthOutcome::Malformed)),
            Err(Denied::Wrong) => Err((
                reply(403, "Wrong credentials"),
                AuthOutcome::WrongCredentials,
            )),
        }
    }

    fn authenticate_with(
        &self,
        req: &Request,
        realm: &str,
        now_ms: u64,
        who: Challenger,
    ) -> Result<String, Denied> {
        // Phones may carry credentials for several realms; use the one for ours.
        let mut ours = None;
        for value in req.headers.get_all_by(who.credentials_header()) {
            if !value
                .trim_start()
                .get(..6)
                .is_some_and(|s| s.eq_ignore_ascii_case("digest"))
            {
                continue; // unknown scheme: ignore and challenge (RFC 4475 regaut01)
            }
            let creds = Credentials::parse(value).map_err(|e| Denied::Malformed(e.reason()))?;
            if creds.realm() == realm {
                ours = Some(creds);
                break;
            }
        }
        let creds = ours.ok_or(Denied::Challenge { stale: false })?;
        let Some(alg) = creds.algorithm() else {
            return Err(Denied::Challenge { stale: false });
        };
        if !self
            .policy
            .algorithms
            .iter()
            .any(|a| a.hash() == alg.hash())
        {
            return Err(Denied::Challenge { stale: false });
        }
        // An unknown user gets the same answer as a wrong password: no user enumeration.
        let ha1 = self
            .users
            .ha1(realm, creds.username(), alg.hash())
            .ok_or(Denied::Wrong)?;
        let method = req.method.as_str();
        match auth::verify(&self.nonces, &creds, method, realm, &ha1, now_ms) {
            Ok(()) => Ok(creds.username().to_owned()),
            Err(VerifyError::WrongResponse) => Err(Denied::Wrong),
            Err(e) => Err(Denied::Challenge {
                stale: e.is_stale(),
            }),
        }
    }

    fn register_op(&self, req: &Request) -> Result<RegisterOp, Box<Response>> {
        let bad = |status: u16, reason: &str| {
            let mut r = Response::to_request(req, status, None);
            r.reason = reason.to_owned();
            Box::new(r)
        };
        let header_expires = req.expires().map_err(|e| bad(400, &e.to_string()))?;
        match req.contacts().map_err(|e| bad(400, &e.to_string()))? {
            ContactList::Wildcard => {
                if header_expires != Some(0) {
                    return Err(bad(400, "Contact: * requires Expires: 0"));
                }
                Ok(RegisterOp::RemoveAll)
            }
            ContactList::Addrs(list) if list.is_empty() => Ok(RegisterOp::Fetch),
            ContactList::Addrs(list) => {
                let mut updates = Vec::with_capacity(list.len());
                for c in list {
                    let asked = c
                        .expires()
                        .map_err(|e| bad(400, &e.to_string()))?
                        .or(header_expires)
                        .unwrap_or(self.policy.default_expires);
                    if asked != 0 && asked < self.policy.min_expires {
                        let mut r = bad(423, "Interval Too Brief");
                        r.headers
                            .push(HeaderName::MinExpires, self.policy.min_expires.to_string());
                        return Err(r);
                    }
                    let q = c.q().map_err(|e| bad(400, &e.to_string()))?.unwrap_or(1000);
                    let mut params = String::new();
                    for (k, v) in &c.params {
                        if k.eq_ignore_ascii_case("expires") || k.eq_ignore_ascii_case("q") {
                            continue;
                        }
                        let _ = match v {
                            Some(v) => write!(params, ";{k}={v}"),
                            None => write!(params, ";{k}"),
                        };
                    }
                    updates.push(ContactUpdate {
                        contact: c.uri.as_str().to_owned(),
                        expires_secs: asked.min(self.policy.max_expires),
                        q,
                        params,
                    });
                }
                Ok(RegisterOp::Update(updates))
            }
        }
    }
}

/// Who challenges: the registrar (401, WWW-Authenticate / Authorization) or the call
/// server acting as a proxy toward the phone (407, Proxy-Authenticate /
/// Proxy-Authorization).
#[derive(Debug, Clone, Copy)]
enum Challenger {
    Registrar,
    Proxy,
}

impl Challenger {
    fn status(self) -> u16 {
        match self {
            Challenger::Registrar => 401,
            Challenger::Proxy => 407,
        }
    }

    fn challenge_header(self) -> HeaderName {
        match self {
            Challenger::Registrar => HeaderName::WwwAuthenticate,
            Challenger::Proxy => HeaderName::ProxyAuthenticate,
        }
    }

    fn credentials_header(self) -> HeaderName {
        match self {
            Challenger::Registrar => HeaderName::Authorization,
            Challenger::Proxy => HeaderName::ProxyAuthorization,
        }
    }
}

enum Denied {
    Challenge { stale: bool },
    Malformed(String),
    Wrong,
}

fn contact_value(b: &Binding, now_ms: u64) -> String {
    let mut v = format!(
        "<{}>{};expires={}",
        b.contact,
        b.params,
        b.remaining_secs(now_ms)
    );
    if b.q != 1000 {
        let _ = write!(v, ";q={}.{:03}", b.q / 1000, b.q % 1000);
    }
    v
}
