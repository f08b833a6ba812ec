//! The registration state machine with simulated time: what it sends, how it answers
//! challenges (checked by our own registrar-side digest verifier), refreshes, backs off,
//! and removes its binding. Timing (refresh, backoff, removal) is in [`timing`].

mod timing;

use std::time::{Duration, Instant};

use md5::{Digest, Md5};

use super::registration::{BACKOFF_BASE, Failure, Params, Registration, State};
use crate::sip::auth::{Algorithm, Credentials, NonceConfig, NonceManager, ha1, verify};
use crate::sip::transaction::Peer;
use crate::sip::transport::TransportKind;
use crate::sip::{HeaderName, Request, Response, SipHeaders};

pub(super) const REALM: &str = "carrier.example";
pub(super) const T0_MS: u64 = 1_700_000_000_000;

pub(super) fn params() -> Params {
    Params {
        username: "acme".into(),
        password: "s3cret".into(),
        domain: "sip.carrier.example".into(),
        expires_secs: 600,
        registrar: Peer {
            addr: "192.0.2.10:5060".parse().unwrap(),
            transport: TransportKind::Udp,
        },
        local: "198.51.100.5:5070".parse().unwrap(),
    }
}

pub(super) fn machine() -> Registration {
    Registration::with_ids(params(), "cid-1@198.51.100.5".into(), "ftag".into()).unwrap()
}

/// Starts `m` and takes its first REGISTER.
pub(super) fn started(m: &mut Registration, now: Instant) -> Request {
    m.start(now);
    sent(m)
}

/// The REGISTER the machine queued; panics when there is none.
pub(super) fn sent(m: &mut Registration) -> Request {
    let (req, peer) = m.poll_request().expect("a REGISTER to send");
    assert_eq!(peer, params().registrar);
    assert!(m.poll_request().is_none(), "one REGISTER at a time");
    req
}

pub(super) fn header(req: &Request, name: HeaderName) -> Option<&str> {
    req.headers.get_by(&name)
}

pub(super) fn cseq(req: &Request) -> u32 {
    req.cseq().unwrap().seq
}

/// The registrar's answer to `req`.
pub(super) fn answer(req: &Request, status: u16, headers: &[(HeaderName, String)]) -> Response {
    let mut r = Response::to_request(req, status, Some("rtag"));
    for (name, value) in headers {
        r.headers.push(name.clone(), value.clone());
    }
    r
}

pub(super) fn nonces() -> NonceManager {
    NonceManager::new(
        [3u8; 32],
        NonceConfig {
            allow_rfc2069: true,
            ..NonceConfig::default()
        },
    )
}

/// The registrar side: checks `req`'s credentials with our own digest verifier.
pub(super) fn registrar_accepts(
    nm: &NonceManager,
    req: &Request,
    header: HeaderName,
    password: &str,
) -> bool {
    let value = req.headers.get_by(&header).expect("credentials sent");
    let creds = Credentials::parse(value).expect("credentials parse");
    assert_eq!(creds.username(), "acme");
    assert_eq!(creds.uri(), "sip:sip.carrier.example");
    let alg = creds.algorithm().expect("a known algorithm");
    let stored = ha1(alg, "acme", REALM, password);
    verify(nm, &creds, "REGISTER", REALM, &stored, T0_MS).is_ok()
}

pub(super) fn challenge_401(nm: &NonceManager, req: &Request) -> Response {
    let ch = nm.challenge(REALM, Algorithm::Md5, false, T0_MS);
    answer(req, 401, &[(HeaderName::WwwAuthenticate, ch.to_string())])
}

/// Registers `m` through a 401 with qop=auth, granting `granted` seconds.
pub(super) fn register(
    m: &mut Registration,
    nm: &NonceManager,
    now: Instant,
    granted: u32,
) -> Request {
    let first = started(m, now);
    assert!(m.handle_response(&challenge_401(nm, &first), now));
    let second = sent(m);
    assert!(registrar_accepts(
        nm,
        &second,
        HeaderName::Authorization,
        "s3cret"
    ));
    m.handle_response(
        &answer(&second, 200, &[(HeaderName::Expires, granted.to_string())]),
        now,
    );
    second
}

#[test]
fn the_first_register_names_the_account_the_contact_and_the_expiry() {
    let now = Instant::now();
    let mut m = machine();
    assert_eq!(m.state(), &State::Unregistered);
    let req = started(&mut m, now);
    assert_eq!(m.state(), &State::Registering);
    assert_eq!(req.method.as_str(), "REGISTER");
    assert_eq!(req.uri.as_str(), "sip:sip.carrier.example");
    assert_eq!(
        req.hdr_from().unwrap().uri.as_str(),
        "sip:acme@sip.carrier.example"
    );
    assert_eq!(req.hdr_from().unwrap().tag(), Some("ftag"));
    assert_eq!(
        req.hdr_to().unwrap().uri.as_str(),
        "sip:acme@sip.carrier.example"
    );
    assert_eq!(req.hdr_to().unwrap().tag(), None);
    assert_eq!(req.call_id().unwrap(), "cid-1@198.51.100.5");
    assert_eq!(header(&req, HeaderName::CSeq), Some("1 REGISTER"));
    assert_eq!(
        header(&req, HeaderName::Contact),
        Some("<sip:acme@198.51.100.5:5070>")
    );
    assert_eq!(req.expires().unwrap(), Some(600));
    let via = req.top_via().unwrap();
    assert_eq!(via.host.to_string(), "198.51.100.5");
    assert!(via.branch().unwrap().starts_with("z9hG4bK"));
    assert!(header(&req, HeaderName::Authorization).is_none());
    // Started twice: still one REGISTER.
    m.start(now);
    assert!(m.poll_request().is_none());
}

#[test]
fn a_401_with_qop_auth_is_answered_with_cnonce_and_nc_that_our_registrar_accepts() {
    let now = Instant::now();
    let nm = nonces();
    let mut m = machine();
    let first = started(&mut m, now);
    assert!(m.handle_response(&challenge_401(&nm, &first), now));
    let second = sent(&mut m);
    assert_eq!(cseq(&second), 2);
    assert_eq!(second.call_id().unwrap(), first.call_id().unwrap());
    assert_eq!(second.hdr_from().unwrap().tag(), Some("ftag"));
    let creds = Credentials::parse(header(&second, HeaderName::Authorization).unwrap()).unwrap();
    assert_eq!(creds.qop(), Some("auth"));
    assert_eq!(creds.nc(), Some(1));
    assert!(creds.cnonce().is_some_and(|c| c.len() >= 8));
    assert!(creds.opaque().is_some(), "the challenge's opaque is echoed");
    assert!(registrar_accepts(
        &nm,
        &second,
        HeaderName::Authorization,
        "s3cret"
    ));
    assert!(!registrar_accepts(
        &nm,
        &second,
        HeaderName::Authorization,
        "other"
    ));
    assert_eq!(m.state(), &State::Registering);
}

#[test]
fn a_challenge_without_qop_gets_the_rfc_2069_response() {
    let now = Instant::now();
    let mut m = machine();
    let first = started(&mut m, now);
    let challenge = format!("Digest realm=\"{REALM}\", nonce=\"abc123\"");
    m.handle_response(
        &answer(&first, 401, &[(HeaderName::WwwAuthenticate, challenge)]),
        now,
    );
    let second = sent(&mut m);
    let creds = Credentials::parse(header(&second, HeaderName::Authorization).unwrap()).unwrap();
    assert_eq!(creds.qop(), None);
    assert_eq!(creds.cnonce(), None);
    assert_eq!(creds.nc(), None);
    // RFC 2069: MD5(HA1:nonce:HA2), computed here independently.
    let md5 = |s: String| hex::encode(Md5::digest(s.as_bytes()));
    let ha1 = md5(format!("acme:{REALM}:s3cret"));
    let ha2 = md5("REGISTER:sip:sip.carrier.example".into());
    assert_eq!(creds.response(), md5(format!("{ha1}:abc123:{ha2}")));
}

#[test]
fn a_407_is_answered_with_proxy_authorization() {
    let now = Instant::now();
    let nm = nonces();
    let mut m = machine();
    let first = started(&mut m, now);
    let ch = nm.challenge(REALM, Algorithm::Md5, false, T0_MS);
    m.handle_response(
        &answer(
            &first,
            407,
            &[(HeaderName::ProxyAuthenticate, ch.to_string())],
        ),
        now,
    );
    let second = sent(&mut m);
    assert!(header(&second, HeaderName::Authorization).is_none());
    assert!(registrar_accepts(
        &nm,
        &second,
        HeaderName::ProxyAuthorization,
        "s3cret"
    ));
}

#[test]
fn the_first_challenge_we_can_answer_is_taken() {
    let now = Instant::now();
    let nm = nonces();
    let mut m = machine();
    let first = started(&mut m, now);
    let sha = nm.challenge(REALM, Algorithm::Sha256, false, T0_MS);
    m.handle_response(
        &answer(
            &first,
            401,
            &[
                (
                    HeaderName::WwwAuthenticate,
                    "Digest realm=\"x\", nonce=\"n\", algorithm=AKAv1-MD5".into(),
                ),
                (HeaderName::WwwAuthenticate, sha.to_string()),
            ],
        ),
        now,
    );
    let second = sent(&mut m);
    let creds = Credentials::parse(header(&second, HeaderName::Authorization).unwrap()).unwrap();
    assert_eq!(creds.algorithm(), Some(Algorithm::Sha256));
    assert!(registrar_accepts(
        &nm,
        &second,
        HeaderName::Authorization,
        "s3cret"
    ));
}

#[test]
fn a_challenge_we_cannot_answer_fails_with_the_reason() {
    let now = Instant::now();
    let mut m = machine();
    let first = started(&mut m, now);
    let only_int = format!("Digest realm=\"{REALM}\", nonce=\"n\", qop=\"auth-int\"");
    m.handle_response(
        &answer(&first, 401, &[(HeaderName::WwwAuthenticate, only_int)]),
        now,
    );
    assert!(m.poll_request().is_none());
    match m.state() {
        State::Failed {
            failure: Failure::UnanswerableChallenge(why),
            ..
        } => assert!(why.contains("auth-int"), "{why}"),
        other => panic!("{other:?}"),
    }
    let mut m = machine();
    let first = started(&mut m, now);
    m.handle_response(&answer(&first, 401, &[]), now);
    assert!(matches!(
        m.state(),
        State::Failed {
            failure: Failure::UnanswerableChallenge(_),
            ..
        }
    ));
}

#[test]
fn a_reused_challenge_refused_is_answered_afresh_not_taken_for_a_wrong_password() {
    let now = Instant::now();
    let nm = nonces();
    let mut m = machine();
    register(&mut m, &nm, now, 120);
    let at = now + Duration::from_secs(60);
    m.handle_timeout(at);
    let refresh = sent(&mut m);
    // The registrar no longer knows the old nonce: a plain new challenge.
    m.handle_response(&challenge_401(&nm, &refresh), at);
    let again = sent(&mut m);
    assert_eq!(cseq(&again), cseq(&refresh) + 1);
    assert!(registrar_accepts(
        &nm,
        &again,
        HeaderName::Authorization,
        "s3cret"
    ));
    assert!(m.state().is_registered());
}

#[test]
fn a_wrong_password_fails_after_the_second_challenge_and_backs_off() {
    let now = Instant::now();
    let nm = nonces();
    let mut m = machine();
    let first = started(&mut m, now);
    m.handle_response(&challenge_401(&nm, &first), now);
    let second = sent(&mut m);
    m.handle_response(&challenge_401(&nm, &second), now);
    assert!(m.poll_request().is_none(), "no loop of challenges");
    let State::Failed { failure, retry_at } = m.state().clone() else {
        panic!("{:?}", m.state());
    };
    assert_eq!(
        failure,
        Failure::WrongCredentials {
            status: 401,
            realm: REALM.into()
        }
    );
    assert!(failure.to_string().contains("check username and password"));
    assert!(retry_at >= now + BACKOFF_BASE * 3 / 4 && retry_at <= now + BACKOFF_BASE);
    // The retry goes at retry_at, not before.
    m.handle_timeout(retry_at - Duration::from_millis(1));
    assert!(m.poll_request().is_none());
    m.handle_timeout(retry_at);
    let retry = sent(&mut m);
    assert_eq!(m.state(), &State::Registering);
    assert_eq!(retry.call_id().unwrap(), first.call_id().unwrap());
    assert_eq!(cseq(&retry), 3);
}

#[test]
fn a_stale_challenge_is_answered_again() {
    let now = Instant::now();
    let nm = nonces();
    let mut m = machine();
    let first = started(&mut m, now);
    m.handle_response(&challenge_401(&nm, &first), now);
    let second = sent(&mut m);
    let stale = nm.challenge(REALM, Algorithm::Md5, true, T0_MS);
    m.handle_response(
        &answer(
            &second,
            401,
            &[(HeaderName::WwwAuthenticate, stale.to_string())],
        ),
        now,
    );
    let third = sent(&mut m);
    assert!(registrar_accepts(
        &nm,
        &third,
        HeaderName::Authorization,
        "s3cret"
    ));
}

#[test]
fn responses_to_other_requests_are_ignored() {
    let now = Instant::now();
    let mut m = machine();
    let req = started(&mut m, now);
    let mut old = answer(&req, 200, &[]);
    old.headers.set(HeaderName::CSeq, "0 REGISTER");
    assert!(!m.handle_response(&old, now));
    let mut other = answer(&req, 200, &[]);
    other.headers.set(HeaderName::CallId, "someone-else");
    assert!(!m.handle_response(&other, now));
    let mut invite = answer(&req, 200, &[]);
    invite.headers.set(HeaderName::CSeq, "1 INVITE");
    assert!(!m.handle_response(&invite, now));
    // A provisional response is ours but changes nothing.
    assert!(m.handle_response(&answer(&req, 100, &[]), now));
    assert_eq!(m.state(), &State::Registering);
    assert!(m.handle_response(&answer(&req, 200, &[]), now));
    assert!(m.state().is_registered());
    // Once answered, a retransmitted final is no longer ours.
    assert!(!m.handle_response(&answer(&req, 200, &[]), now));
}

#[test]
fn a_domain_that_is_no_sip_host_is_refused_up_front() {
    let bad = Params {
        domain: "a b".into(),
        ..params()
    };
    assert!(Registration::new(bad).is_err());
    let good = Registration::new(params()).unwrap();
    assert!(good.call_id().ends_with("@198.51.100.5"));
}

#[test]
fn usernames_are_escaped_in_uris() {
    let p = Params {
        username: "acme corp@x".into(),
        ..params()
    };
    assert_eq!(p.contact_uri(), "sip:acme%20corp%40x@198.51.100.5:5070");
    assert_eq!(p.aor(), "sip:acme%20corp%40x@sip.carrier.example");
    let mut m = Registration::new(p).unwrap();
    let req = started(&mut m, Instant::now());
    assert!(req.hdr_to().is_ok());
}
