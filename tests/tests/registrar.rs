//! The registrar against real SIP peers: SIPp with digest authentication, sipsak OPTIONS.

use std::process::Command;
use std::time::Duration;

use tongdai_tests::{Node, require_tool, sipp_for_users, sipp_users, wait_until};

/// A node with `count` extensions from 2000 whose passwords are `pw<ext>`. SIPp 3.6 only
/// answers MD5 challenges and reads only the first one, so MD5 is offered first here.
fn node_with_users(count: u32) -> Node {
    Node::start(&format!(
        "[registrar]\nalgorithms = [\"MD5\", \"SHA-256\"]\nmin_expires = 60\n\
         [demo]\nrealm = \"e2e\"\nfirst_extension = 2000\ncount = {count}\npassword_prefix = \"pw\"\n"
    ))
}

fn registrations(node: &Node) -> f64 {
    node.metric("tongdai_registrations_active").unwrap_or(0.0)
}

#[test]
fn one_hundred_users_register_with_digest_auth_over_udp() {
    let node = node_with_users(100);
    let users = sipp_users(2000, 100, |e| format!("pw{e}"), "e2e");
    let run = sipp_for_users("register_auth.xml", &node, &users, "u1");
    assert!(
        run.status.success() && run.successful == 100 && run.failed == 0,
        "sipp: {run:?}\nnode:\n{}",
        node.stderr()
    );
    assert!(
        wait_until(Duration::from_secs(5), || registrations(&node) == 100.0),
        "registrations_active = {}",
        registrations(&node)
    );
}

#[test]
fn users_register_over_tcp() {
    let node = node_with_users(20);
    let users = sipp_users(2000, 20, |e| format!("pw{e}"), "e2e");
    let run = sipp_for_users("register_auth.xml", &node, &users, "t1");
    assert!(
        run.status.success() && run.successful == 20,
        "sipp: {run:?}"
    );
    assert!(wait_until(Duration::from_secs(5), || registrations(&node) == 20.0));
}

#[test]
fn wrong_password_is_never_accepted() {
    let node = node_with_users(10);
    let users = sipp_users(2000, 10, |_| "not-the-password".into(), "e2e");
    let run = sipp_for_users("register_wrong_password.xml", &node, &users, "u1");
    assert!(
        run.status.success() && run.successful == 10,
        "sipp: {run:?}"
    );
    assert_eq!(registrations(&node), 0.0);
    assert!(
        node.metric("tongdai_register_auth_failures_total{reason=\"wrong_password\"}")
            .unwrap_or(0.0)
            >= 10.0
    );
}

#[test]
fn refresh_then_remove_leaves_no_binding() {
    let node = node_with_users(10);
    let users = sipp_users(2000, 10, |e| format!("pw{e}"), "e2e");
    let run = sipp_for_users("register_refresh_remove.xml", &node, &users, "u1");
    assert!(
        run.status.success() && run.successful == 10,
        "sipp: {run:?}"
    );
    assert!(wait_until(Duration::from_secs(5), || registrations(&node) == 0.0));
    assert!(
        node.metric("tongdai_sip_responses_total{method=\"REGISTER\",class=\"2xx\"}")
            .unwrap_or(0.0)
            >= 30.0
    );
}

#[test]
fn sipsak_options_gets_200_over_udp_and_tcp() {
    require_tool("sipsak", "apt-get install -y sipsak");
    let node = node_with_users(1);
    for transport in ["udp", "tcp"] {
        let out = Command::new("sipsak")
            .args(["-s", &format!("sip:ping@{}", node.sip), "-E", transport])
            .args(["-vv"])
            .output()
            .expect("run sipsak");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("SIP/2.0 200 OK"),
            "sipsak over {transport}: {:?}\n{text}",
            out.status
        );
        assert!(
            text.contains("Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO, REGISTER"),
            "{text}"
        );
    }
}

/// More extensions than one watch event carries: the node's first full copy arrives in
/// chunks, and users from the first and the last chunk both register.
#[test]
fn a_tenant_larger_than_one_watch_event_is_served_whole() {
    let node = node_with_users(12_000);
    let first = sipp_users(2000, 3, |e| format!("pw{e}"), "e2e");
    let last = sipp_users(2000 + 12_000 - 3, 3, |e| format!("pw{e}"), "e2e");
    for users in [first, last] {
        let run = sipp_for_users("register_auth.xml", &node, &users, "u1");
        assert!(
            run.status.success() && run.successful == 3,
            "sipp: {run:?}\nnode:\n{}",
            node.stderr()
        );
    }
}
