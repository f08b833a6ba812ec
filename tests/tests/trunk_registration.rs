//! Outbound trunk registration through a real `tongdai up` against a SIPp carrier
//! registrar: the digest answer checked by SIPp's `verifyauth`, the gauge and the status
//! endpoint, a wrong password refused and shown as failed, the binding removed
//! (`Expires: 0`) when the registration goes and when the node drains, and a call from
//! the carrier to the registered Contact taken as the trunk's.

use std::time::Duration;

use serde_json::Value;
use tongdai_tests::calls::{Sipp, SippPhone, free_udp_port, newest_cdr, register, ulaw_tone};
use tongdai_tests::{Node, SippRun, http_get, wait_until};

const GAUGE: &str = "tongdai_trunk_registered{tenant=\"e2e\",trunk=\"carrier\"}";

/// A node whose demo tenant `e2e` has extensions 2000.. with passwords `pw<ext>`.
fn node() -> Node {
    Node::start(
        "[registrar]\nalgorithms = [\"MD5\", \"SHA-256\"]\n\
         [demo]\nrealm = \"e2e\"\nfirst_extension = 2000\ncount = 10\npassword_prefix = \"pw\"\n",
    )
}

/// A SIPp carrier registrar on 127.0.0.1:`port` running `scenario`, whose account is
/// `acme` / `password`, granting 120 s.
fn registrar(scenario: &str, port: u16, password: &str) -> SippPhone {
    Sipp::new(scenario)
        .port(port)
        .key("user", "acme")
        .key("password", password)
        .key("expires", 120)
        .timeout(Duration::from_secs(30))
        .spawn()
}

/// The JSON of trunk `carrier` at 127.0.0.1:`port`, registering as `acme` with
/// `password` unless `None`.
fn trunk_body(port: u16, password: Option<&str>) -> String {
    let registration = match password {
        Some(pw) => format!(
            ",\"registration\":{{\"username\":\"acme\",\"password\":\"{pw}\",\
             \"domain\":\"carrier.test\",\"expires_secs\":120}}"
        ),
        None => String::new(),
    };
    format!(
        "{{\"id\":\"carrier\",\"address\":\"127.0.0.1:{port}\",\
         \"max_concurrent_calls\":10{registration}}}"
    )
}

fn create_trunk(node: &Node, port: u16, password: Option<&str>) {
    let (code, body) = node.api(
        "POST",
        "/v1/tenants/e2e/trunks",
        Some(&trunk_body(port, password)),
    );
    assert!((200..300).contains(&code), "create trunk: {code} {body}");
}

/// This node's registration of trunk `carrier`, from `GET /trunks/registrations`.
fn status(node: &Node) -> Option<Value> {
    let (code, body) = http_get(node.http, "/trunks/registrations")?;
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("JSON");
    v["registrations"]
        .as_array()
        .expect("a list")
        .iter()
        .find(|r| r["tenant"] == "e2e" && r["trunk"] == "carrier")
        .cloned()
}

/// Waits until the status of trunk `carrier` is `state`, and returns it.
fn wait_state(node: &Node, state: &str) -> Value {
    let mut last = None;
    let reached = wait_until(Duration::from_secs(15), || {
        last = status(node);
        last.as_ref().is_some_and(|s| s["state"] == state)
    });
    assert!(
        reached,
        "trunk registration never {state}: {last:?}\nnode:\n{}",
        node.stderr()
    );
    last.unwrap()
}

/// The value SIPp logged after `label` on the line starting with `prefix`.
fn logged<'a>(run: &'a SippRun, prefix: &str, label: &str) -> &'a str {
    let line = run
        .logs
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in the carrier's log: {run:?}"));
    let rest = line
        .split_once(label)
        .unwrap_or_else(|| panic!("no {label:?} in {line:?}"))
        .1;
    // Values are followed by the next label, or end the line.
    let end = [
        " from ",
        " to ",
        " contact ",
        " expires ",
        " cseq ",
        " call-id ",
        " authorization ",
    ]
    .iter()
    .filter_map(|l| rest.find(l))
    .min()
    .unwrap_or(rest.len());
    rest[..end].trim()
}

#[test]
fn a_trunk_registers_with_a_digest_answer_and_removes_its_binding_when_the_registration_goes() {
    let node = node();
    let port = free_udp_port();
    let carrier = registrar("carrier_registrar.xml", port, "s3cret");
    create_trunk(&node, port, Some("s3cret"));
    let run = carrier.wait(Duration::from_secs(40));
    assert_eq!(
        run.successful,
        1,
        "carrier: {run:?}\nnode:\n{}",
        node.stderr()
    );
    // The first REGISTER: the account at the carrier's domain, this node's Contact.
    assert_eq!(
        logged(&run, "first:", "first:"),
        "REGISTER sip:carrier.test"
    );
    assert!(logged(&run, "first:", " from ").contains("<sip:acme@carrier.test>;tag="));
    assert_eq!(logged(&run, "first:", " to "), "<sip:acme@carrier.test>");
    assert_eq!(
        logged(&run, "first:", " contact "),
        format!("<sip:acme@{}>", node.sip)
    );
    assert_eq!(logged(&run, "first:", " expires "), "120");
    assert_eq!(logged(&run, "first:", " cseq "), "1 REGISTER");
    // The answer to the 401: same Call-ID, next CSeq, MD5 with qop=auth, checked by
    // SIPp's verifyauth with the password.
    let call_id = logged(&run, "first:", " call-id ").to_owned();
    assert_eq!(logged(&run, "answer:", " call-id "), call_id);
    assert_eq!(logged(&run, "answer:", " cseq "), "2 REGISTER");
    let auth = logged(&run, "answer:", " authorization ");
    for part in [
        "Digest username=\"acme\"",
        "realm=\"carrier.test\"",
        "uri=\"sip:carrier.test\"",
        "algorithm=MD5",
        "qop=auth",
        "nc=00000001",
        "cnonce=\"",
        "opaque=\"op42\"",
    ] {
        assert!(auth.contains(part), "{part} not in {auth}");
    }
    assert!(run.logs.contains("digest: right"), "{run:?}");

    assert!(
        wait_until(Duration::from_secs(10), || node.metric(GAUGE) == Some(1.0)),
        "{GAUGE} never 1: {:?}",
        node.metric(GAUGE)
    );
    let s = wait_state(&node, "registered");
    assert_eq!(s["registrar"], format!("127.0.0.1:{port}"), "{s}");
    assert_eq!(s["aor"], "sip:acme@carrier.test", "{s}");
    assert_eq!(s["contact"], format!("sip:acme@{}", node.sip), "{s}");
    let left = s["expires_in_secs"].as_u64().unwrap();
    assert!((100..=120).contains(&left), "{s}");
    assert!(s.get("reason").is_none(), "{s}");

    // The registration goes: the binding is removed with the same Call-ID.
    let carrier = registrar("carrier_unregister.xml", port, "s3cret");
    let (code, body) = node.api(
        "PUT",
        "/v1/tenants/e2e/trunks/carrier",
        Some(&trunk_body(port, None)),
    );
    assert_eq!(code, 200, "{body}");
    let run = carrier.wait(Duration::from_secs(40));
    assert_eq!(
        run.successful,
        1,
        "carrier: {run:?}\nnode:\n{}",
        node.stderr()
    );
    assert_eq!(logged(&run, "remove:", " expires "), "0");
    assert_eq!(logged(&run, "remove:", " call-id "), call_id);
    assert_eq!(logged(&run, "remove:", " cseq "), "3 REGISTER");
    assert_eq!(
        logged(&run, "remove:", " contact "),
        format!("<sip:acme@{}>", node.sip)
    );
    assert!(run.logs.contains("digest: right"), "{run:?}");
    assert!(
        wait_until(Duration::from_secs(10), || node.metric(GAUGE) == Some(0.0)
            && status(&node).is_none()),
        "still shown: {:?} {:?}",
        node.metric(GAUGE),
        status(&node)
    );
}

#[test]
fn a_wrong_password_is_refused_with_403_and_shown_as_failed() {
    let node = node();
    let port = free_udp_port();
    let carrier = registrar("carrier_registrar.xml", port, "right");
    create_trunk(&node, port, Some("wrong"));
    let run = carrier.wait(Duration::from_secs(40));
    assert_eq!(run.successful, 1, "carrier: {run:?}");
    assert!(run.logs.contains("digest: wrong"), "{run:?}");
    let s = wait_state(&node, "failed");
    let reason = s["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("403"), "{s}");
    let retry = s["retry_in_secs"].as_u64().unwrap();
    assert!((1..=30).contains(&retry), "{s}");
    assert_eq!(node.metric(GAUGE), Some(0.0));
    // The operator sees why in the log too.
    assert!(
        node.stderr().contains("trunk registration failed: 403"),
        "{}",
        node.stderr()
    );
}

#[test]
fn a_call_from_the_carrier_to_the_registered_contact_is_the_trunks_and_drain_unregisters() {
    let mut node = node();
    let port = free_udp_port();
    let carrier = registrar("carrier_registrar.xml", port, "s3cret");
    create_trunk(&node, port, Some("s3cret"));
    let run = carrier.wait(Duration::from_secs(40));
    assert_eq!(run.successful, 1, "carrier: {run:?}");
    wait_state(&node, "registered");
    let (code, body) = node.api(
        "POST",
        "/v1/tenants/e2e/numbers",
        Some(
            "{\"digits\":\"02873009999\",\"destination\":{\"type\":\"extension\",\"id\":\"2001\"}}",
        ),
    );
    assert!((200..300).contains(&code), "number: {code} {body}");
    let phone_port = free_udp_port();
    register(&node, 2001, "e2e", phone_port);
    let phone = Sipp::new("call_uas.xml")
        .port(phone_port)
        .file("callee.ulaw", ulaw_tone(1000.0, 5.0))
        .timeout(Duration::from_secs(30))
        .spawn();
    // From the carrier's address, to the Contact it registered (the account's name in the
    // Request-URI, the number in To), without any digest.
    let call = |from_port: u16, timeout: u64| {
        Sipp::new("carrier_call.xml")
            .target(node.sip)
            .port(from_port)
            .users(vec!["0912345678;acme;carrier.test;02873009999".into()])
            .duration(Duration::from_secs(1))
            .file("caller.ulaw", ulaw_tone(440.0, 5.0))
            .timeout(Duration::from_secs(timeout))
            .run()
    };
    let run = call(port, 30);
    assert_eq!(
        run.successful,
        1,
        "carrier call: {run:?}\nnode:\n{}",
        node.stderr()
    );
    assert_eq!(phone.wait(Duration::from_secs(30)).successful, 1);
    let cdr = newest_cdr(&node, "e2e", 1);
    assert_eq!(cdr["direction"], "inbound", "{cdr}");
    assert_eq!(cdr["caller"], "0912345678", "{cdr}");
    assert_eq!(cdr["callee"], "02873009999", "{cdr}");
    assert_eq!(cdr["destination"], "extension:2001", "{cdr}");
    assert_eq!(cdr["disposition"], "answered", "{cdr}");

    // The same call from another port of the same host is not the carrier's: it is
    // taken for a phone's, whose tenant comes from the From domain (unknown here).
    let run = call(free_udp_port(), 10);
    assert_eq!(run.successful, 0, "{run:?}");
    assert!(
        run.errors.contains("received 'SIP/2.0 404 Unknown domain"),
        "taken as the trunk's: {run:?}"
    );

    // Draining (SIGTERM) removes the binding before the node exits: the carrier stops
    // sending calls to it.
    let carrier = registrar("carrier_unregister.xml", port, "s3cret");
    assert_eq!(node.terminate(Duration::from_secs(30)), Some(0));
    let run = carrier.wait(Duration::from_secs(40));
    assert_eq!(run.successful, 1, "carrier: {run:?}");
    assert_eq!(logged(&run, "remove:", " expires "), "0");
    assert!(run.logs.contains("digest: right"), "{run:?}");
}
