//! An internal call between two real softphones (baresip) registered to a real node:
//! each plays its own tone into the call and records what it hears; each must hear the
//! other's tone, which only gets there through the node's media relay.

use std::time::Duration;

use tongdai_tests::calls::newest_cdr;
use tongdai_tests::softphone::{Baresip, PhoneConfig, mono_samples, tone_share};
use tongdai_tests::{Node, wait_until};

/// A node whose tenant `e2e` has extensions 2000.. with passwords `pw<ext>`. MD5 is the
/// only digest challenge: baresip 1.0 (libre 1.1) refuses a 401 that also carries a
/// SHA-256 one.
fn node() -> Node {
    Node::start(
        "[registrar]\nalgorithms = [\"MD5\"]\n\
         [demo]\nrealm = \"e2e\"\nfirst_extension = 2000\ncount = 10\npassword_prefix = \"pw\"\n",
    )
}

fn phone(node: &Node, ext: &str, tone_hz: f64, answer_mode: &'static str) -> Baresip {
    Baresip::start(&PhoneConfig {
        extension: ext.to_owned(),
        password: format!("pw{ext}"),
        domain: "e2e".to_owned(),
        proxy: node.sip,
        tone_hz,
        answer_mode,
    })
}

/// The extensions the node's registrations API lists for tenant `e2e`.
fn registered(node: &Node) -> Vec<String> {
    let (code, body) = node.api("GET", "/v1/tenants/e2e/registrations", None);
    assert_eq!(code, 200, "GET registrations: {body}");
    let list: Vec<serde_json::Value> = serde_json::from_str(&body).expect("a JSON list");
    let mut exts: Vec<String> = list
        .iter()
        .filter_map(|r| r["extension"].as_str().map(str::to_owned))
        .collect();
    exts.sort();
    exts
}

#[test]
fn two_baresip_phones_talk_through_the_node_with_audio_both_ways() {
    call_then_hang_up(Side::Caller);
}

#[test]
fn the_called_baresip_phone_hangs_up() {
    call_then_hang_up(Side::Callee);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Caller,
    Callee,
}

/// 2000 (440 Hz) calls 2001 (1 kHz, auto-answer); once both have heard three seconds,
/// `hangs_up` ends the call; then the recordings and the CDR are checked.
fn call_then_hang_up(hangs_up: Side) {
    let node = node();
    let mut caller = phone(&node, "2000", 440.0, "manual");
    let mut callee = phone(&node, "2001", 1000.0, "auto");

    let both = ["2000".to_owned(), "2001".to_owned()];
    assert!(
        wait_until(Duration::from_secs(20), || registered(&node) == both),
        "registered: {:?}\ncaller:\n{}\ncallee:\n{}\nnode:\n{}",
        registered(&node),
        caller.log(),
        callee.log(),
        node.stderr()
    );

    caller
        .command("dial", "sip:2001@e2e")
        .unwrap_or_else(|e| panic!("dial: {e}"));
    let established = Duration::from_secs(15);
    callee.wait_event("CALL_ESTABLISHED", established);
    caller.wait_event("CALL_ESTABLISHED", established);

    // Keep the call until each side has heard three seconds of audio.
    assert!(
        wait_until(Duration::from_secs(20), || {
            caller.heard_secs() >= 3.0 && callee.heard_secs() >= 3.0
        }),
        "heard: caller {:.1} s, callee {:.1} s\ncaller:\n{}\ncallee:\n{}\nnode:\n{}",
        caller.heard_secs(),
        callee.heard_secs(),
        caller.log(),
        callee.log(),
        node.stderr()
    );

    let hanger = match hangs_up {
        Side::Caller => &mut caller,
        Side::Callee => &mut callee,
    };
    hanger
        .command("hangup", "")
        .unwrap_or_else(|e| panic!("hangup: {e}"));
    caller.wait_event("CALL_CLOSED", Duration::from_secs(10));
    callee.wait_event("CALL_CLOSED", Duration::from_secs(10));
    // Quitting closes the recordings for good (and unregisters).
    for p in [&mut caller, &mut callee] {
        assert!(
            p.quit(Duration::from_secs(10)),
            "{} did not quit",
            p.extension
        );
    }

    // Each side heard the other's tone, not its own.
    for (who, p, own, other) in [
        ("caller", &caller, 440.0, 1000.0),
        ("callee", &callee, 1000.0, 440.0),
    ] {
        let files = p.recordings("-dec.wav");
        assert_eq!(files.len(), 1, "{who}: one call, one recording: {files:?}");
        let samples = mono_samples(&files[0]);
        assert!(
            samples.len() >= 3 * 8000,
            "{who} heard {} samples",
            samples.len()
        );
        // Skip the first half second (jitter buffer start, codec settling).
        let heard = &samples[4000..];
        let (other_share, own_share) = (tone_share(heard, other), tone_share(heard, own));
        assert!(
            other_share > 0.5 && own_share < 0.01,
            "{who}: {other} Hz share {other_share:.3}, own {own} Hz share {own_share:.3}"
        );
    }

    let cdr = newest_cdr(&node, "e2e", 1);
    assert_eq!(cdr["disposition"], "answered", "{cdr}");
    assert_eq!(cdr["sip_status"], 200, "{cdr}");
    assert_eq!(cdr["direction"], "internal", "{cdr}");
    assert_eq!(cdr["caller"], "2000", "{cdr}");
    assert_eq!(cdr["callee"], "2001", "{cdr}");
    let by = match hangs_up {
        Side::Caller => "caller",
        Side::Callee => "callee",
    };
    assert_eq!(cdr["hangup_by"], by, "{cdr}");
    assert!(cdr["billable_secs"].as_u64().unwrap_or(0) >= 3, "{cdr}");
    // Three seconds at 50 packets/s each way, through the relay.
    for side in ["caller", "callee"] {
        let n = cdr["quality"][side]["packets"].as_u64().unwrap_or(0);
        assert!(n >= 150, "{side} sent {n} packets: {cdr}");
    }
}
