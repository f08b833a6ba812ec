//! Draining a node with `tongdai ctl node drain` under load: 200 carrier calls
//! established through a real `tongdai up` (SIPp carrier in, SIPp carrier out), the node
//! drained through the control plane; no call is dropped, new calls get 503 with
//! Retry-After, and the node exits 0 once the last call ended, with every CDR shipped.

use std::path::Path;
use std::time::Duration;

use tongdai_tests::calls::{Sipp, free_udp_port, post, set_calls};
use tongdai_tests::{Node, http_get, wait_until, workspace_root};

const CALLS: usize = 200;
const NODE: &str = "edge-1";

/// A signalling-only scenario of the load tests (no RTP: 200 streams would only load
/// the machine, and the drain is about calls, not packets).
fn loadtest_scenario(name: &str) -> String {
    workspace_root()
        .join("loadtest/scenarios")
        .join(name)
        .display()
        .to_string()
}

/// Answered calls among the CDRs in the store under `dir` (`<tenant>/<day>/*.jsonl`).
fn answered_cdrs(dir: &Path) -> usize {
    let mut answered = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "jsonl") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                answered += text
                    .lines()
                    .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                    .filter(|cdr| cdr["disposition"] == "answered")
                    .count();
            }
        }
    }
    answered
}

#[test]
fn ctl_node_drain_keeps_200_established_calls_and_the_node_exits_after_the_last() {
    let mut node = Node::start(&format!(
        "[node]\nname = \"{NODE}\"\n\
         [demo]\nrealm = \"e2e\"\nfirst_extension = 2000\ncount = 10\npassword_prefix = \"pw\"\n"
    ));
    // The carrier's two sides: calls come in from `uac`, leave for `uas` (the trunk
    // `out`), so every call is a full B2BUA call with its media anchored on the node.
    let uas = Sipp::new(&loadtest_scenario("call_uas.xml"))
        .calls(CALLS, 1000)
        .timeout(Duration::from_secs(120));
    let uac_port = free_udp_port();
    post(
        &node,
        "/v1/tenants/e2e/trunks",
        &format!(
            "{{\"id\":\"in\",\"address\":\"127.0.0.1:9\",\
             \"trusted_sources\":[\"127.0.0.1:{uac_port}\"],\"max_concurrent_calls\":1000}}"
        ),
    );
    post(
        &node,
        "/v1/tenants/e2e/trunks",
        &format!(
            "{{\"id\":\"out\",\"address\":\"127.0.0.1:{}\",\"max_concurrent_calls\":1000}}",
            uas.local_port()
        ),
    );
    post(
        &node,
        "/v1/tenants/e2e/numbers",
        "{\"digits\":\"02873001234\",\"destination\":{\"type\":\"extension\",\"id\":\"2000\"}}",
    );
    post(
        &node,
        "/v1/tenants/e2e/numbers",
        "{\"digits\":\"18009000\",\"destination\":{\"type\":\"external\",\"number\":\"0912000111\"}}",
    );
    set_calls(
        &node,
        "e2e",
        "{\"outbound_trunk\":\"out\",\"caller_id\":\"02873001234\"}",
    );
    let uas = uas.spawn();
    let sip = node.sip;
    let uac = std::thread::spawn(move || {
        Sipp::new(&loadtest_scenario("call_uac.xml"))
            .target(sip)
            .port(uac_port)
            .calls(CALLS, 50)
            .duration(Duration::from_secs(25))
            .key("caller", "0912345678")
            .key("dialled", "18009000")
            .key("domain", "e2e")
            .timeout(Duration::from_secs(120))
            .run()
    });
    let active = |node: &Node| {
        node.metric("tongdai_calls_active{tenant=\"e2e\"}")
            .unwrap_or(0.0)
    };
    assert!(
        wait_until(Duration::from_secs(60), || active(&node) >= CALLS as f64),
        "{} of {CALLS} calls established\nnode:\n{}",
        active(&node),
        node.stderr()
    );

    let (code, out, err) = node.ctl(&["node", "drain", NODE]);
    assert_eq!(code, 0, "ctl node drain: {out}{err}");
    assert!(out.contains(&format!("node {NODE} is draining")), "{out}");
    let (code, out, _) = node.ctl(&["--json", "node", "drain-status", NODE]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"state\": \"accepted\""), "{out}");
    // Readiness turns false; a new call is refused with a retry hint; the live ones stay.
    assert_eq!(
        http_get(node.http, "/healthz").map(|(code, _)| code),
        Some(503)
    );
    let refused = Sipp::new("call_uac_refused_early.xml")
        .target(node.sip)
        .run();
    assert!(
        refused.logs.contains("got 503, retry after 5"),
        "{refused:?}"
    );
    assert!(node.is_running(), "the node left with calls up");
    assert_eq!(
        active(&node),
        CALLS as f64,
        "a live call was dropped by the drain"
    );

    let uac = uac.join().expect("uac thread");
    assert_eq!(
        (uac.successful, uac.failed),
        (CALLS as u64, 0),
        "calls dropped by the drain: {uac:?}\nnode:\n{}",
        node.stderr()
    );
    let uas = uas.wait(Duration::from_secs(60));
    assert_eq!(uas.successful, CALLS as u64, "carrier side: {uas:?}");
    // With its last call over, the drained node exits cleanly, its records shipped.
    assert_eq!(
        node.wait_exit(Duration::from_secs(30)),
        Some(0),
        "{}",
        node.stderr()
    );
    let answered = answered_cdrs(&node.dir.path().join("data/cdrs"));
    assert_eq!(answered, CALLS, "answered CDRs in the store");
}

#[test]
fn ctl_node_drain_of_a_node_that_is_not_running_says_so() {
    let node = Node::start("[node]\nname = \"edge-2\"\n");
    let (code, out, err) = node.ctl(&["node", "drain", "edge-9", "--wait-secs", "2"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("did not take the drain request"), "{err}");
    assert!(err.contains("edge-9"), "{err}");
    // The request stays pending (and lapses after a minute); the running node serves on.
    let (code, out, _) = node.ctl(&["node", "drain-status", "edge-9"]);
    assert_eq!(code, 0);
    assert!(out.contains("is pending"), "{out}");
    assert_eq!(
        http_get(node.http, "/healthz").map(|(code, _)| code),
        Some(200)
    );
    let (code, _, err) = node.ctl(&["node", "drain-status", "edge-2"]);
    assert_eq!(code, 1);
    assert!(err.contains("no drain request"), "{err}");
}
