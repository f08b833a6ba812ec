//! Transaction matching rules (RFC 3261 §17.1.3, §17.2.3, §9.2) on messages as parsed
//! off the wire.

use super::*;

fn parse_request(text: &str) -> Request {
    match parse_datagram(text.replace('\n', "\r\n").as_bytes()) {
        Ok(Message::Request(r)) => r,
        other => panic!("not a request: {other:?}"),
    }
}

fn req(method: &str, via: &str, extra: &str) -> Request {
    parse_request(&format!(
        "{method} sip:bob@example.com SIP/2.0\n\
         Via: {via}\n\
         Max-Forwards: 70\n\
         To: <sip:bob@example.com>{extra}\n\
         From: <sip:alice@example.com>;tag=f1\n\
         Call-ID: k1@example.com\n\
         CSeq: 4 {method}\n\
         Content-Length: 0\n\n"
    ))
}

const VIA: &str = "SIP/2.0/UDP pc33.example.com:5060;branch=z9hG4bKnashds8";

fn server_key(r: &Request) -> TransactionKey {
    TransactionKey::for_incoming_request(r).expect("keyed")
}

#[test]
fn ack_matches_its_invite_and_cancel_does_not() {
    let invite = server_key(&req("INVITE", VIA, ""));
    let ack = server_key(&req("ACK", VIA, ";tag=t9"));
    let cancel = server_key(&req("CANCEL", VIA, ""));
    assert_eq!(ack, invite);
    assert_ne!(cancel, invite);
    assert_eq!(cancel.cancelled_invite().as_ref(), Some(&invite));
    assert_eq!(invite.cancelled_invite(), None);
    assert_eq!(invite.method(), &Method::Invite);
    assert!(!invite.is_client());
}

#[test]
fn sent_by_and_branch_both_matter() {
    let base = server_key(&req("OPTIONS", VIA, ""));
    let other_host = server_key(&req(
        "OPTIONS",
        "SIP/2.0/UDP pc34.example.com:5060;branch=z9hG4bKnashds8",
        "",
    ));
    let other_port = server_key(&req(
        "OPTIONS",
        "SIP/2.0/UDP pc33.example.com:5061;branch=z9hG4bKnashds8",
        "",
    ));
    let other_branch = server_key(&req(
        "OPTIONS",
        "SIP/2.0/UDP pc33.example.com:5060;branch=z9hG4bKnashds9",
        "",
    ));
    // Host case and extra parameters do not matter.
    let same = server_key(&req(
        "OPTIONS",
        "SIP/2.0/UDP PC33.Example.COM:5060;received=192.0.2.4;branch=z9hG4bKnashds8",
        "",
    ));
    assert_ne!(base, other_host);
    assert_ne!(base, other_port);
    assert_ne!(base, other_branch);
    assert_eq!(base, same);
}

#[test]
fn rfc2543_requests_fall_back_to_dialog_fields() {
    let via = "SIP/2.0/UDP old.example.com:5060";
    let invite = server_key(&req("INVITE", via, ""));
    let again = server_key(&req("INVITE", via, ""));
    let ack = server_key(&req("ACK", via, ";tag=t9"));
    let cancel = server_key(&req("CANCEL", via, ""));
    assert_eq!(invite, again);
    assert_eq!(ack, invite);
    assert_eq!(cancel.cancelled_invite().as_ref(), Some(&invite));
    // A different CSeq is a different transaction.
    let mut next = req("INVITE", via, "");
    next.headers.set(HeaderName::CSeq, "5 INVITE");
    assert_ne!(server_key(&next), invite);
    // A branch without the magic cookie is not trusted either.
    let cookieless = server_key(&req("INVITE", "SIP/2.0/UDP old.example.com;branch=1", ""));
    assert!(cookieless.to_string().contains("rfc2543"));
}

#[test]
fn responses_match_on_branch_and_cseq_method() {
    let invite = req("INVITE", VIA, "");
    let client = TransactionKey::for_outgoing_request(&invite).expect("has branch");
    assert!(client.is_client());
    let resp = Response::to_request(&invite, 180, Some("t"));
    assert_eq!(
        TransactionKey::for_incoming_response(&resp).as_ref(),
        Ok(&client)
    );
    // A response to the CANCEL (same branch) belongs to the CANCEL's transaction.
    let cancel = cancel_for(&invite);
    let cancel_resp = Response::to_request(&cancel, 200, Some("t"));
    let cancel_key = TransactionKey::for_incoming_response(&cancel_resp).expect("keyed");
    assert_ne!(cancel_key, client);
    assert_eq!(cancel_key.cancelled_invite().as_ref(), Some(&client));
    // Server and client keys never collide, even for the same branch.
    assert_ne!(server_key(&invite), client);
}

#[test]
fn missing_via_is_an_error() {
    let mut r = req("OPTIONS", VIA, "");
    r.headers.remove(&HeaderName::Via);
    assert!(matches!(
        TransactionKey::for_incoming_request(&r),
        Err(KeyError::Header(_))
    ));
    let resp = Response::to_request(&r, 200, None);
    assert!(TransactionKey::for_incoming_response(&resp).is_err());
}

#[test]
fn new_branches_carry_the_cookie_and_differ() {
    let a = new_branch();
    let b = new_branch();
    assert!(a.starts_with(MAGIC_COOKIE));
    assert_ne!(a, b);
}

#[test]
fn cancel_copies_the_invite_identity() {
    let mut invite = req("INVITE", VIA, "");
    invite
        .headers
        .push(HeaderName::Route, "<sip:p1.example.com;lr>");
    let cancel = cancel_for(&invite);
    assert_eq!(cancel.method, Method::Cancel);
    assert_eq!(cancel.uri, invite.uri);
    assert_eq!(cancel.top_via(), invite.top_via());
    assert_eq!(cancel.hdr_to(), invite.hdr_to());
    assert_eq!(cancel.hdr_from(), invite.hdr_from());
    assert_eq!(cancel.call_id(), invite.call_id());
    assert_eq!(cancel.cseq().map(|c| c.seq), Ok(4));
    assert_eq!(cancel.route(), invite.route());
}
