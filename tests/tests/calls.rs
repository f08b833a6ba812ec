//! Calls through a real `tongdai up` with real SIPp phones: registration, digest-challenged
//! INVITE, media anchored on the node's relay both ways, BYE.

use std::time::Duration;

use tongdai_tests::calls::{Sipp, call_ended_lines, log_field, register, ulaw_tone};
use tongdai_tests::{Node, sipp_users, wait_until};

/// A node whose demo tenant `e2e` has extensions 2000.. with passwords `pw<ext>`; MD5 is
/// offered first because SIPp 3.6 answers only MD5 challenges.
fn node() -> Node {
    Node::start(
        "[registrar]\nalgorithms = [\"MD5\", \"SHA-256\"]\n\
         [demo]\nrealm = \"e2e\"\nfirst_extension = 2000\ncount = 10\npassword_prefix = \"pw\"\n",
    )
}

/// Injection line for a caller: extension, credentials, domain, dialled number.
fn caller(ext: u32, dialled: &str) -> Vec<String> {
    sipp_users(ext, 1, |e| format!("pw{e}"), "e2e")
        .into_iter()
        .map(|l| format!("{l};{dialled}"))
        .collect()
}

#[test]
fn internal_call_between_two_registered_phones_relays_media_both_ways() {
    let node = node();
    let callee_port = tongdai_tests::calls::free_udp_port();
    register(&node, 2001, "e2e", callee_port);
    let callee = Sipp::new("call_uas.xml")
        .port(callee_port)
        .file("callee.ulaw", ulaw_tone(1000.0, 5.0))
        .timeout(Duration::from_secs(30))
        .spawn();
    let run = Sipp::new("call_uac.xml")
        .target(node.sip)
        .users(caller(2000, "2001"))
        .duration(Duration::from_secs(2))
        .file("caller.ulaw", ulaw_tone(440.0, 5.0))
        .timeout(Duration::from_secs(30))
        .run();
    assert_eq!(run.successful, 1, "caller: {run:?}\nnode:\n{}", node.stderr());
    let callee = callee.wait(Duration::from_secs(30));
    assert_eq!(callee.successful, 1, "callee: {callee:?}");
    assert!(
        wait_until(Duration::from_secs(10), || !call_ended_lines(&node).is_empty()),
        "no call record:\n{}",
        node.stderr()
    );
    let line = call_ended_lines(&node).pop().unwrap();
    assert_eq!(log_field(&line, "status").as_deref(), Some("200"), "{line}");
    assert_eq!(log_field(&line, "hangup_by").as_deref(), Some("caller"), "{line}");
    // Two seconds at 50 packets/s each way, through the relay.
    for leg in ["caller_packets", "callee_packets"] {
        let n: u64 = log_field(&line, leg).and_then(|v| v.parse().ok()).unwrap_or(0);
        assert!(n >= 50, "{leg} = {n}: {line}");
    }
}

/// Creates hunt group `sales` (members, strategy, 15 s, then `no_answer`) and the toll-free
/// number 18001234 pointing at it.
fn hunt_group(node: &Node, members: &[&str], strategy: &str, no_answer: &str) {
    let members = members
        .iter()
        .map(|m| format!("\"{m}\""))
        .collect::<Vec<_>>()
        .join(",");
    let (code, body) = node.api(
        "POST",
        "/v1/tenants/e2e/hunt-groups",
        Some(&format!(
            "{{\"id\":\"sales\",\"members\":[{members}],\"strategy\":\"{strategy}\",\
             \"ring_secs\":5,\"no_answer\":{no_answer}}}"
        )),
    );
    assert!((200..300).contains(&code), "hunt group: {code} {body}");
    let (code, body) = node.api(
        "POST",
        "/v1/tenants/e2e/numbers",
        Some(
            "{\"digits\":\"18001234\",\"destination\":{\"type\":\"hunt_group\",\"id\":\"sales\"}}",
        ),
    );
    assert!((200..300).contains(&code), "number: {code} {body}");
}

#[test]
fn ring_all_hunt_group_first_answer_wins_and_the_other_phone_gets_cancel_with_reason() {
    let node = node();
    hunt_group(
        &node,
        &["2001", "2002"],
        "ring_all",
        "{\"type\":\"extension\",\"id\":\"2009\"}",
    );
    let answer_port = tongdai_tests::calls::free_udp_port();
    let ring_port = tongdai_tests::calls::free_udp_port();
    register(&node, 2001, "e2e", answer_port);
    register(&node, 2002, "e2e", ring_port);
    let answers = Sipp::new("call_uas.xml")
        .port(answer_port)
        .file("callee.ulaw", ulaw_tone(1000.0, 5.0))
        .timeout(Duration::from_secs(30))
        .spawn();
    let rings = Sipp::new("call_uas_ring.xml")
        .port(ring_port)
        .timeout(Duration::from_secs(30))
        .spawn();
    let run = Sipp::new("call_uac.xml")
        .target(node.sip)
        .users(caller(2000, "18001234"))
        .duration(Duration::from_secs(1))
        .file("caller.ulaw", ulaw_tone(440.0, 5.0))
        .timeout(Duration::from_secs(30))
        .run();
    assert_eq!(run.successful, 1, "caller: {run:?}\nnode:\n{}", node.stderr());
    let rang = rings.wait(Duration::from_secs(30));
    assert_eq!(rang.successful, 1, "the ringing phone: {rang:?}");
    assert!(rang.logs.contains("Call completed elsewhere"), "{rang:?}");
    let answered = answers.wait(Duration::from_secs(30));
    assert_eq!(answered.successful, 1, "the answering phone: {answered:?}");
}
