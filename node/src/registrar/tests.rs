//! Registrar behaviour end to end over messages, with simulated time.

use std::sync::Arc;

use crate::sip::auth::{Algorithm, Challenge, Credentials, NonceConfig, NonceManager};
use crate::sip::{HeaderName, Message, Request, Response, SipHeaders, parse_datagram};

use super::local::LocalStore;
use super::*;

const SRC: &str = "192.0.2.10:5062";

type TestRegistrar = Registrar<LocalStore, Arc<LocalStore>>;

fn registrar() -> TestRegistrar {
    let store = LocalStore::new("demo", 100);
    store.add_user("1001", "secret1");
    store.add_user("1002", "secret2");
    Registrar::new(
        RegistrarPolicy {
            realm: "demo".into(),
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
        },
        store.clone(),
        store,
        NonceManager::with_random_secret(NonceConfig::default()),
    )
}

fn register(user: &str, cseq: u32, extra: &str) -> Request {
    let msg = format!(
        "REGISTER sip:demo SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK{cseq}\r\n\
         Max-Forwards: 70\r\nTo: <sip:{user}@demo>\r\nFrom: <sip:{user}@demo>;tag=f1\r\n\
         Call-ID: reg-{user}\r\nCSeq: {cseq} REGISTER\r\n{extra}Content-Length: 0\r\n\r\n"
    );
    match parse_datagram(msg.as_bytes()).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => unreachable!(),
    }
}

fn with_auth(
    mut req: Request,
    challenge: &Challenge,
    user: &str,
    password: &str,
    nc: u32,
) -> Request {
    let creds = Credentials::answer(
        challenge, user, password, "REGISTER", "sip:demo", "cn0nce", nc,
    );
    req.headers
        .push(HeaderName::Authorization, creds.to_string());
    req
}

fn challenges(resp: &Response) -> Vec<Challenge> {
    resp.headers
        .get_all("WWW-Authenticate")
        .map(|v| Challenge::parse(v).unwrap())
        .collect()
}

async fn call(r: &TestRegistrar, req: &Request, now_ms: u64) -> Response {
    r.handle(req, SRC.parse().unwrap(), "UDP", "tt", now_ms)
        .await
        .0
}

#[tokio::test]
async fn challenge_then_register_then_query_and_remove() {
    let r = registrar();
    let contact = "Contact: <sip:1001@192.0.2.10:5062>;expires=120\r\n";
    let first = call(&r, &register("1001", 1, contact), 0).await;
    assert_eq!(first.status, 401);
    let ch = challenges(&first);
    assert_eq!(ch.len(), 2);
    assert_eq!(ch[0].algorithm, Algorithm::Sha256);
    assert_eq!(ch[1].algorithm, Algorithm::Md5);

    // Either offered algorithm works; each answer is a fresh CSeq on the same nonce.
    for (i, c) in ch.iter().enumerate() {
        let cseq = 2 + i as u32;
        let req = with_auth(register("1001", cseq, contact), c, "1001", "secret1", cseq);
        let ok = call(&r, &req, 1000).await;
        assert_eq!(ok.status, 200, "{:?}", c.algorithm);
        assert_eq!(ok.hdr_to().unwrap().tag(), Some("tt"));
        assert_eq!(
            ok.headers.get("Contact"),
            Some("<sip:1001@192.0.2.10:5062>;expires=120")
        );
    }
    // Same Call-ID and an old CSeq with valid credentials: the store refuses it.
    let stale = with_auth(register("1001", 2, contact), &ch[0], "1001", "secret1", 9);
    assert_eq!(call(&r, &stale, 1000).await.status, 500);
    let ch = challenges(&call(&r, &register("1001", 10, ""), 2000).await);
    let query = call(
        &r,
        &with_auth(register("1001", 10, ""), &ch[0], "1001", "secret1", 1),
        2000,
    )
    .await;
    assert_eq!(query.status, 200);
    assert_eq!(query.headers.get_all("Contact").count(), 1);
    let star = "Contact: *\r\nExpires: 0\r\n";
    let gone = call(
        &r,
        &with_auth(register("1001", 11, star), &ch[0], "1001", "secret1", 2),
        3000,
    )
    .await;
    assert_eq!(gone.status, 200);
    assert_eq!(gone.headers.get("Contact"), None);
    assert_eq!(r.location().binding_count(), 0);
}

#[tokio::test]
async fn wrong_password_replay_and_foreign_aor_are_refused() {
    let r = registrar();
    let contact = "Contact: <sip:1001@192.0.2.10>\r\n";
    let ch = challenges(&call(&r, &register("1001", 1, contact), 0).await);
    let wrong = call(
        &r,
        &with_auth(register("1001", 2, contact), &ch[1], "1001", "nope", 1),
        0,
    )
    .await;
    assert_eq!(wrong.status, 403);
    let unknown = call(
        &r,
        &with_auth(register("9999", 2, contact), &ch[1], "9999", "x", 1),
        0,
    )
    .await;
    assert_eq!(unknown.status, 403);
    let good = with_auth(register("1001", 3, contact), &ch[1], "1001", "secret1", 1);
    assert_eq!(call(&r, &good, 0).await.status, 200);
    // The very same request again (a replay of captured credentials) must not succeed.
    let replay = call(&r, &good, 0).await;
    assert_eq!(replay.status, 401);
    assert!(challenges(&replay)[0].stale);
    // 1002's credentials cannot register 1001's address.
    let mut foreign = register("1001", 4, contact);
    let creds = Credentials::answer(&ch[1], "1002", "secret2", "REGISTER", "sip:demo", "c", 5);
    foreign
        .headers
        .push(HeaderName::Authorization, creds.to_string());
    assert_eq!(call(&r, &foreign, 0).await.status, 403);
    // Nonce past its lifetime with the right password: stale re-challenge.
    let late = with_auth(register("1001", 5, contact), &ch[1], "1001", "secret1", 7);
    let resp = call(&r, &late, 10 * 60 * 1000).await;
    assert_eq!(resp.status, 401);
    assert!(challenges(&resp)[0].stale);
}

#[tokio::test]
async fn expiry_policy() {
    let r = registrar();
    let ch = challenges(&call(&r, &register("1001", 1, ""), 0).await);
    let brief = with_auth(
        register("1001", 2, "Contact: <sip:a@h>;expires=10\r\n"),
        &ch[0],
        "1001",
        "secret1",
        1,
    );
    let resp = call(&r, &brief, 0).await;
    assert_eq!(resp.status, 423);
    assert_eq!(resp.headers.get("Min-Expires"), Some("60"));
    let long = with_auth(
        register(
            "1001",
            3,
            "Expires: 99999\r\nContact: <sip:a@h>;q=0.7, <sip:b@h>\r\n",
        ),
        &ch[0],
        "1001",
        "secret1",
        2,
    );
    let resp = call(&r, &long, 0).await;
    assert_eq!(resp.status, 200);
    let contacts: Vec<&str> = resp.headers.get_all("Contact").collect();
    assert_eq!(
        contacts,
        vec!["<sip:b@h>;expires=3600", "<sip:a@h>;expires=3600;q=0.700"]
    );
    let bad_star = with_auth(
        register("1001", 4, "Contact: *\r\n"),
        &ch[0],
        "1001",
        "secret1",
        3,
    );
    assert_eq!(call(&r, &bad_star, 0).await.status, 400);
}

/// The AOR's domain picks the tenant (realm); an IP domain means the default tenant; a
/// domain served by no tenant is refused before any challenge.
#[tokio::test]
async fn the_aor_domain_selects_the_realm() {
    let r = registrar();
    let with_domain = |domain: &str| {
        let msg = format!(
            "REGISTER sip:{domain} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKd\r\n\
             Max-Forwards: 70\r\nTo: <sip:1001@{domain}>\r\nFrom: <sip:1001@{domain}>;tag=f1\r\n\
             Call-ID: dom-1\r\nCSeq: 1 REGISTER\r\nContact: <sip:1001@192.0.2.10>\r\n\
             Content-Length: 0\r\n\r\n"
        );
        match parse_datagram(msg.as_bytes()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    };
    let unknown = call(&r, &with_domain("other.example"), 0).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.reason, "Unknown domain");
    for domain in ["demo", "192.0.2.1", "[2001:db8::1]"] {
        let resp = call(&r, &with_domain(domain), 0).await;
        assert_eq!(resp.status, 401, "{domain}");
        assert!(
            challenges(&resp).iter().all(|c| c.realm == "demo"),
            "{domain}: {:?}",
            challenges(&resp)
        );
    }
}
