//! Contact-center queues end to end: a real control plane (replica processes), two
//! `tongdai node`s, customers calling a toll-free number through a trusted trunk (SIPp)
//! on both nodes, and agents' phones (SIPp) registered on both nodes. The ACD in the
//! Raft state machine decides; the tests check what the phones saw.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use tongdai_tests::calls::{Sipp, SippPhone, ulaw_tone};
use tongdai_tests::cluster::{Cluster, NodeProc};
use tongdai_tests::{sipp_users, wait_until};

const TENANT: &str = "acme";
const NUMBER: &str = "18001000";

fn password(ext: u32) -> String {
    format!("pw-{ext}-secret")
}

fn api_ok(cluster: &Cluster, method: &str, path: &str, body: &str) -> String {
    let (code, answer) = cluster.api(method, path, Some(body));
    assert!(
        (200..300).contains(&code),
        "{method} {path}: {code} {answer}"
    );
    answer
}

/// The tenant, its agents' extensions (agents paused), a trunk trusting the callers'
/// ports, and the toll-free number routed to queue `support` (created by the test).
fn provision(cluster: &Cluster, agents: &[u32], caller_ports: &[u16]) {
    api_ok(
        cluster,
        "POST",
        "/v1/tenants",
        &format!(
            r#"{{"id":"{TENANT}","name":"ACME","quotas":{{"max_concurrent_calls":500,"max_call_attempts_per_sec":100,"max_registrations":1000}}}}"#
        ),
    );
    let sources: Vec<String> = caller_ports
        .iter()
        .map(|p| format!("\"127.0.0.1:{p}\""))
        .collect();
    api_ok(
        cluster,
        "POST",
        &format!("/v1/tenants/{TENANT}/trunks"),
        &format!(
            r#"{{"id":"carrier","address":"127.0.0.1:9","trusted_sources":[{}],"max_concurrent_calls":200}}"#,
            sources.join(",")
        ),
    );
    for ext in agents {
        api_ok(
            cluster,
            "POST",
            &format!("/v1/tenants/{TENANT}/extensions"),
            &format!(
                r#"{{"ext":"{ext}","display_name":"Agent {ext}","password":"{}"}}"#,
                password(*ext)
            ),
        );
        api_ok(
            cluster,
            "POST",
            &format!("/v1/tenants/{TENANT}/agents"),
            &format!(r#"{{"extension":"{ext}","state":"paused","pause_reason":"setup"}}"#),
        );
    }
}

fn create_queue(cluster: &Cluster, body: &str) {
    api_ok(
        cluster,
        "POST",
        &format!("/v1/tenants/{TENANT}/queues"),
        body,
    );
    api_ok(
        cluster,
        "POST",
        &format!("/v1/tenants/{TENANT}/numbers"),
        &format!(
            r#"{{"digits":"{NUMBER}","kind":"toll_free_1800","destination":{{"type":"queue","id":"support"}}}}"#
        ),
    );
}

fn set_agent(cluster: &Cluster, ext: u32, state: &str) {
    let body = match state {
        "paused" => r#"{"state":"paused","pause_reason":"break"}"#.to_owned(),
        s => format!(r#"{{"state":"{s}"}}"#),
    };
    api_ok(
        cluster,
        "PUT",
        &format!("/v1/tenants/{TENANT}/agents/{ext}"),
        &body,
    );
}

fn agent(cluster: &Cluster, ext: u32) -> Value {
    let (code, body) = cluster.api("GET", &format!("/v1/tenants/{TENANT}/agents/{ext}"), None);
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("json")
}

/// The queue now (`GET .../live`).
fn live(cluster: &Cluster, queue: &str) -> Value {
    let (code, body) = cluster.api(
        "GET",
        &format!("/v1/tenants/{TENANT}/queues/{queue}/live"),
        None,
    );
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("json")
}

fn waiting_callers(cluster: &Cluster, queue: &str) -> Vec<String> {
    live(cluster, queue)["waiting"]
        .as_array()
        .expect("waiting")
        .iter()
        .map(|w| w["caller"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// An agent's phone: registered on `node`, then answering `calls` calls with
/// `scenario` (talking `talk` each), in the background.
fn agent_phone(
    node: &NodeProc,
    ext: u32,
    scenario: &str,
    calls: usize,
    talk: Duration,
) -> SippPhone {
    let phone = Sipp::new(scenario)
        .calls(calls, 10)
        .duration(talk)
        .timeout(Duration::from_secs(120))
        .file("callee.ulaw", ulaw_tone(1000.0, 1.0));
    let run = Sipp::new("register_auth.xml")
        .target(node.sip)
        .port(phone.local_port())
        .users(sipp_users(ext, 1, password, TENANT))
        .run();
    assert_eq!(
        run.successful,
        1,
        "registration of {ext}: {run:?}\n{}",
        node.stderr()
    );
    phone.spawn()
}

/// A customer calling the number from `number`, through `node`, in the background;
/// waits in the queue until an agent hangs up.
fn customer(sipp: Sipp, node: &NodeProc, number: &str) -> SippPhone {
    sipp.target(node.sip)
        .users(vec![format!("{number};-;127.0.0.1;{NUMBER}")])
        .file("caller.ulaw", ulaw_tone(440.0, 1.0))
        .timeout(Duration::from_secs(120))
        .spawn()
}

/// `(event, caller)` pairs from an agent phone's log, in order.
fn events(logs: &str) -> Vec<(String, String)> {
    logs.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some((words.next()?.to_owned(), words.next()?.to_owned()))
        })
        .filter(|(e, _)| matches!(e.as_str(), "offered" | "answered" | "ended"))
        .collect()
}

/// The callers an agent answered, in order, after checking it never had two calls at
/// once: each offer is answered and ended before the next offer.
fn served_one_at_a_time(logs: &str) -> Vec<String> {
    let events = events(logs);
    let mut served = Vec::new();
    for call in events.chunks(3) {
        let [(o, a), (an, b), (e, c)] = call else {
            panic!("an unfinished call in the agent's log:\n{logs}");
        };
        assert_eq!(
            (o.as_str(), an.as_str(), e.as_str()),
            ("offered", "answered", "ended"),
            "two calls overlapped on one agent:\n{logs}"
        );
        assert!(
            a == b && b == c,
            "two calls overlapped on one agent:\n{logs}"
        );
        served.push(a.clone());
    }
    served
}

/// A `tongdai up` with the demo tenant `e2e` (extensions 2000-2009, passwords
/// `pw<ext>`), whose admin API also serves the records.
fn up() -> tongdai_tests::Node {
    tongdai_tests::Node::start(
        "[registrar]\nalgorithms = [\"MD5\", \"SHA-256\"]\n\
         [demo]\nrealm = \"e2e\"\nfirst_extension = 2000\ncount = 10\npassword_prefix = \"pw\"\n",
    )
}

/// An admin API POST on a `tongdai up` that must succeed; its answer.
fn up_post(node: &tongdai_tests::Node, path: &str, body: &str) -> String {
    let (code, answer) = node.api("POST", path, Some(body));
    assert!((200..300).contains(&code), "POST {path}: {code} {answer}");
    answer
}

fn caller(n: u32) -> String {
    format!("09000000{n:02}")
}

/// Callers arriving through both nodes wait in one queue in arrival order; a VIP caller
/// (the queue's VIP list) goes first; one agent on node A then serves them all, one at
/// a time, in that order, callers of node B included.
#[test]
fn callers_through_two_nodes_are_served_in_order_and_a_vip_goes_first() {
    const REGULAR: u32 = 6;
    let vip = caller(99);
    let sipps: Vec<Sipp> = (0..=REGULAR)
        .map(|_| Sipp::new("queue_caller.xml"))
        .collect();
    let ports: Vec<u16> = sipps.iter().map(Sipp::local_port).collect();
    let cluster = Cluster::start(1, 10_000);
    provision(&cluster, &[2001, 2002], &ports);
    create_queue(
        &cluster,
        &format!(
            r#"{{"id":"support","name":"Support","strategy":"longest_idle","max_wait_secs":300,"max_len":50,
               "members":[{{"extension":"2001"}},{{"extension":"2002"}}],"ring_secs":15,
               "vip_callers":{{"{vip}":5}}}}"#
        ),
    );
    let node_a = cluster.start_node("node-a", TENANT);
    let node_b = cluster.start_node("node-b", TENANT);
    let phone = agent_phone(
        &node_a,
        2001,
        "queue_agent.xml",
        REGULAR as usize + 1,
        Duration::from_millis(300),
    );

    let mut customers = Vec::new();
    let mut sipps = sipps.into_iter();
    for n in 1..=REGULAR {
        let node = if n % 2 == 1 { &node_a } else { &node_b };
        customers.push(customer(sipps.next().expect("sipp"), node, &caller(n)));
        assert!(
            wait_until(Duration::from_secs(20), || waiting_callers(
                &cluster, "support"
            )
            .len()
                == n as usize),
            "caller {n} not queued: {:?}\nnode A:\n{}\nnode B:\n{}",
            live(&cluster, "support"),
            node_a.stderr(),
            node_b.stderr()
        );
    }
    customers.push(customer(sipps.next().expect("sipp"), &node_b, &vip));
    let mut expected: Vec<String> = vec![vip.clone()];
    expected.extend((1..=REGULAR).map(caller));
    assert!(
        wait_until(Duration::from_secs(20), || waiting_callers(
            &cluster, "support"
        ) == expected),
        "queue order: {:?}",
        waiting_callers(&cluster, "support")
    );
    let view = live(&cluster, "support");
    let nodes: Vec<&str> = view["waiting"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["node"].as_str().unwrap())
        .collect();
    assert!(
        nodes.contains(&"node-a") && nodes.contains(&"node-b"),
        "{view}"
    );

    set_agent(&cluster, 2001, "available");
    let run = phone.wait(Duration::from_secs(90));
    let served = served_one_at_a_time(&run.logs);
    assert_eq!(served, expected, "service order; agent log:\n{}", run.logs);
    for c in customers {
        let r = c.wait(Duration::from_secs(30));
        assert_eq!(r.successful, 1, "customer: {r:?}");
    }
    let view = live(&cluster, "support");
    assert_eq!(view["kpis"]["answered"], REGULAR as u64 + 1, "{view}");
    assert_eq!(view["kpis"]["calls_waiting"], 0, "{view}");
    assert!(wait_until(Duration::from_secs(10), || {
        let v = live(&cluster, "support");
        v["members"][0]["state"] == "available" && v["kpis"]["aht_secs"].is_number()
    }));
}

/// An agent who lets an offer ring out is paused ("no answer") and the caller goes to
/// the next agent, on the other node.
#[test]
fn an_agent_who_does_not_answer_is_skipped_and_paused() {
    let sipp = Sipp::new("queue_caller.xml");
    let cluster = Cluster::start(1, 10_000);
    provision(&cluster, &[2001, 2002], &[sipp.local_port()]);
    create_queue(
        &cluster,
        r#"{"id":"support","name":"Support","strategy":"top_down","max_wait_secs":120,"max_len":10,
            "members":[{"extension":"2001"},{"extension":"2002"}],"ring_secs":5,
            "auto_pause_no_answer":true}"#,
    );
    let node_a = cluster.start_node("node-a", TENANT);
    let node_b = cluster.start_node("node-b", TENANT);
    let silent = agent_phone(
        &node_a,
        2001,
        "call_uas_noanswer.xml",
        1,
        Duration::from_millis(100),
    );
    let answers = agent_phone(
        &node_b,
        2002,
        "queue_agent.xml",
        1,
        Duration::from_millis(300),
    );
    set_agent(&cluster, 2001, "available");
    set_agent(&cluster, 2002, "available");
    let customer = customer(sipp, &node_a, &caller(1));
    let run = answers.wait(Duration::from_secs(60));
    assert_eq!(served_one_at_a_time(&run.logs), [caller(1)], "{}", run.logs);
    let silent = silent.wait(Duration::from_secs(30));
    assert_eq!(
        silent.successful, 1,
        "the unanswered phone was cancelled: {silent:?}"
    );
    let a = agent(&cluster, 2001);
    assert_eq!(a["state"], "paused", "{a}");
    assert_eq!(a["pause_reason"], "no answer", "{a}");
    assert_eq!(customer.wait(Duration::from_secs(30)).successful, 1);
}

/// A caller arriving when the queue holds its overflow length goes to the overflow
/// destination (an extension here) instead of waiting.
#[test]
fn overflow_triggers_at_the_length_threshold() {
    let sipps: Vec<Sipp> = (0..3).map(|_| Sipp::new("queue_caller.xml")).collect();
    let ports: Vec<u16> = sipps.iter().map(Sipp::local_port).collect();
    let cluster = Cluster::start(1, 10_000);
    provision(&cluster, &[2001, 2009], &ports);
    create_queue(
        &cluster,
        r#"{"id":"support","name":"Support","strategy":"longest_idle","max_wait_secs":120,"max_len":10,
            "members":[{"extension":"2001"}],"ring_secs":10,
            "overflow":{"destination":{"type":"extension","id":"2009"},"at_len":2}}"#,
    );
    let node_a = cluster.start_node("node-a", TENANT);
    let node_b = cluster.start_node("node-b", TENANT);
    let overflow = agent_phone(
        &node_b,
        2009,
        "queue_agent.xml",
        1,
        Duration::from_millis(300),
    );
    let mut sipps = sipps.into_iter();
    let mut waiting = Vec::new();
    for n in 1..=2u32 {
        waiting.push(customer(sipps.next().unwrap(), &node_a, &caller(n)));
        assert!(wait_until(Duration::from_secs(20), || {
            waiting_callers(&cluster, "support").len() == n as usize
        }));
    }
    let third = customer(sipps.next().unwrap(), &node_b, &caller(3));
    let run = overflow.wait(Duration::from_secs(60));
    assert_eq!(served_one_at_a_time(&run.logs), [caller(3)], "{}", run.logs);
    assert_eq!(third.wait(Duration::from_secs(30)).successful, 1);
    let view = live(&cluster, "support");
    assert_eq!(view["kpis"]["overflowed"], 1, "{view}");
    assert_eq!(
        waiting_callers(&cluster, "support"),
        [caller(1), caller(2)],
        "{view}"
    );
    drop(waiting);
}

/// Callers waiting on a node that dies leave the queue (their calls are gone with it);
/// the others keep their order and are served.
#[test]
fn a_dead_nodes_callers_leave_the_queue_and_the_rest_keep_their_order() {
    let sipps: Vec<Sipp> = (0..4).map(|_| Sipp::new("queue_caller.xml")).collect();
    let ports: Vec<u16> = sipps.iter().map(Sipp::local_port).collect();
    let cluster = Cluster::start(1, 10_000);
    provision(&cluster, &[2001], &ports);
    create_queue(
        &cluster,
        r#"{"id":"support","name":"Support","strategy":"longest_idle","max_wait_secs":300,"max_len":10,
            "members":[{"extension":"2001"}],"ring_secs":10}"#,
    );
    let node_a = cluster.start_node("node-a", TENANT);
    let node_b = cluster.start_node("node-b", TENANT);
    let phone = agent_phone(
        &node_a,
        2001,
        "queue_agent.xml",
        2,
        Duration::from_millis(300),
    );
    let mut customers = BTreeMap::new();
    for (n, sipp) in (1..=4u32).zip(sipps) {
        let node = if n % 2 == 1 { &node_a } else { &node_b };
        customers.insert(n, customer(sipp, node, &caller(n)));
        assert!(wait_until(Duration::from_secs(20), || {
            waiting_callers(&cluster, "support").len() == n as usize
        }));
    }
    drop(node_b); // SIGKILL: callers 2 and 4 are gone with it.
    let gone = wait_until(Duration::from_secs(40), || {
        waiting_callers(&cluster, "support") == [caller(1), caller(3)]
    });
    assert!(gone, "queue: {:?}", live(&cluster, "support"));
    set_agent(&cluster, 2001, "available");
    let run = phone.wait(Duration::from_secs(60));
    assert_eq!(
        served_one_at_a_time(&run.logs),
        [caller(1), caller(3)],
        "{}",
        run.logs
    );
    let view = live(&cluster, "support");
    assert_eq!(view["kpis"]["abandoned"], 2, "{view}");
    assert_eq!(view["kpis"]["calls_waiting"], 0, "{view}");
    for n in [1, 3] {
        let c = customers.remove(&n).unwrap();
        assert_eq!(c.wait(Duration::from_secs(30)).successful, 1);
    }
}

/// Callers keep arriving through both nodes while the control-plane leader is killed
/// (SIGKILL): every caller is served exactly once, and no agent ever has two calls.
#[test]
fn leader_killed_mid_load_loses_no_caller_and_offers_none_twice() {
    const PER_NODE: u32 = 12;
    let sipp_a = Sipp::new("queue_caller.xml");
    let sipp_b = Sipp::new("queue_caller.xml");
    let ports = [sipp_a.local_port(), sipp_b.local_port()];
    let mut cluster = Cluster::start(3, 10_000);
    provision(&cluster, &[2001, 2002], &ports);
    create_queue(
        &cluster,
        r#"{"id":"support","name":"Support","strategy":"longest_idle","max_wait_secs":300,"max_len":100,
            "members":[{"extension":"2001"},{"extension":"2002"}],"ring_secs":15}"#,
    );
    let node_a = cluster.start_node("node-a", TENANT);
    let node_b = cluster.start_node("node-b", TENANT);
    let total = (2 * PER_NODE) as usize;
    // Each agent answers what it is offered; together they take every caller.
    let phone_a = agent_phone(
        &node_a,
        2001,
        "queue_agent.xml",
        total,
        Duration::from_millis(700),
    );
    let phone_b = agent_phone(
        &node_b,
        2002,
        "queue_agent.xml",
        total,
        Duration::from_millis(700),
    );
    set_agent(&cluster, 2001, "available");
    set_agent(&cluster, 2002, "available");
    let numbers = |first: u32| -> Vec<String> {
        (first..first + PER_NODE)
            .map(|n| format!("{};-;127.0.0.1;{NUMBER}", caller(n)))
            .collect()
    };
    let callers = |sipp: Sipp, node: &NodeProc, first: u32| {
        sipp.target(node.sip)
            .users(numbers(first))
            .calls(PER_NODE as usize, 3)
            .file("caller.ulaw", ulaw_tone(440.0, 1.0))
            .timeout(Duration::from_secs(150))
            .spawn()
    };
    let customers_a = callers(sipp_a, &node_a, 1);
    let customers_b = callers(sipp_b, &node_b, 51);
    // Kill the leader once callers are waiting.
    assert!(wait_until(Duration::from_secs(30), || {
        live(&cluster, "support")["kpis"]["joined"].as_u64() >= Some(8)
    }));
    let leader = cluster.leader().expect("a leader");
    cluster.kill(leader);
    let new_leader = cluster.wait_for_leader(Duration::from_secs(20));
    assert_ne!(new_leader, leader);

    let a = customers_a.wait(Duration::from_secs(170));
    let b = customers_b.wait(Duration::from_secs(170));
    assert_eq!(
        (a.successful, b.successful),
        (PER_NODE as u64, PER_NODE as u64),
        "customers served: A {a:?}\nB {b:?}\nnode A:\n{}\nnode B:\n{}",
        node_a.stderr(),
        node_b.stderr()
    );
    // The agents' phones wait for more calls than come: stop them and read their logs.
    let logs_a = phone_a.stop().logs;
    let logs_b = phone_b.stop().logs;
    let mut served = served_one_at_a_time(&logs_a);
    served.extend(served_one_at_a_time(&logs_b));
    served.sort();
    let mut expected: Vec<String> = (1..=PER_NODE)
        .chain(51..51 + PER_NODE)
        .map(caller)
        .collect();
    expected.sort();
    assert_eq!(
        served, expected,
        "each caller once:\nA:\n{logs_a}\nB:\n{logs_b}"
    );
    let view = live(&cluster, "support");
    assert_eq!(view["kpis"]["answered"], total as u64, "{view}");
    assert_eq!(view["kpis"]["calls_waiting"], 0, "{view}");
}

/// An agent logs in, pauses and logs out from the phone with feature codes (`*50`,
/// `*52`, `*51`): each call is answered with beeps and hung up, and the agent's
/// presence in the control plane follows. An extension that is not an agent gets 404.
#[test]
fn agents_change_presence_with_feature_codes() {
    let cluster = Cluster::start(1, 10_000);
    provision(&cluster, &[2001, 2002], &[]);
    api_ok(
        &cluster,
        "DELETE",
        &format!("/v1/tenants/{TENANT}/agents/2002"),
        "",
    );
    let node = cluster.start_node("node-a", TENANT);
    let dial = |code: &str| {
        Sipp::new("call_uac_wait_bye.xml")
            .target(node.sip)
            .users(
                sipp_users(2001, 1, password, TENANT)
                    .into_iter()
                    .map(|l| format!("{l};{code}"))
                    .collect(),
            )
            .file("caller.ulaw", ulaw_tone(440.0, 1.0))
            .timeout(Duration::from_secs(20))
            .run()
    };
    for (code, state, reason) in [
        ("*50", "available", None),
        ("*52", "paused", Some("phone")),
        ("*53", "available", None),
        ("*51", "logged_out", None),
    ] {
        let run = dial(code);
        assert_eq!(
            run.successful,
            1,
            "{code}: {run:?}\nnode:\n{}",
            node.stderr()
        );
        let a = agent(&cluster, 2001);
        assert_eq!(a["state"], state, "after {code}: {a}");
        assert_eq!(a["pause_reason"].as_str(), reason, "after {code}: {a}");
    }
    let refused = Sipp::new("call_uac_refused.xml")
        .target(node.sip)
        .users(
            sipp_users(2002, 1, password, TENANT)
                .into_iter()
                .map(|l| format!("{l};*50"))
                .collect(),
        )
        .run();
    assert!(
        refused
            .logs
            .contains("refused 404 Extension 2002 is not an agent"),
        "{refused:?}"
    );
}

/// A waiting caller presses the queue's callback key (in-band DTMF), hears the beeps and
/// is hung up, but keeps their place; when the agent becomes available the agent's phone
/// rings first, then the caller's number is dialled through the outbound trunk, and the
/// two are connected.
#[test]
fn a_caller_who_asks_for_a_callback_is_called_back_when_an_agent_is_free() {
    let sipp = Sipp::new("queue_callback_caller.xml");
    let carrier = Sipp::new("callback_carrier.xml")
        .timeout(Duration::from_secs(90))
        .file("callee.ulaw", ulaw_tone(1000.0, 1.0));
    let cluster = Cluster::start(1, 10_000);
    provision(&cluster, &[2001], &[sipp.local_port()]);
    api_ok(
        &cluster,
        "POST",
        &format!("/v1/tenants/{TENANT}/trunks"),
        &format!(
            r#"{{"id":"out","address":"127.0.0.1:{}","trusted_sources":[],"max_concurrent_calls":10}}"#,
            carrier.local_port()
        ),
    );
    api_ok(
        &cluster,
        "POST",
        &format!("/v1/tenants/{TENANT}/numbers"),
        r#"{"digits":"02873001234","kind":"geographic","destination":{"type":"extension","id":"2001"}}"#,
    );
    let (code, body) = cluster.api("GET", &format!("/v1/tenants/{TENANT}"), None);
    assert_eq!(code, 200, "{body}");
    let mut tenant: Value = serde_json::from_str(&body).unwrap();
    tenant["calls"]["outbound_trunk"] = "out".into();
    tenant["calls"]["caller_id"] = "02873001234".into();
    api_ok(
        &cluster,
        "PUT",
        &format!("/v1/tenants/{TENANT}"),
        &tenant.to_string(),
    );
    create_queue(
        &cluster,
        r#"{"id":"support","name":"Support","strategy":"longest_idle","max_wait_secs":300,"max_len":10,
            "members":[{"extension":"2001"}],"ring_secs":15,"callback_digit":"1"}"#,
    );
    let node_a = cluster.start_node("node-a", TENANT);
    let node_b = cluster.start_node("node-b", TENANT);
    let phone = agent_phone(
        &node_b,
        2001,
        "queue_agent.xml",
        1,
        Duration::from_millis(800),
    );
    let carrier = carrier.spawn();
    // A second of silence, the key `1` (697 + 1209 Hz) for a quarter second, silence.
    let mut audio = ulaw_tone(0.0, 1.0);
    audio.extend(tongdai_tests::calls::ulaw_dual_tone(697.0, 1209.0, 0.25));
    audio.extend(ulaw_tone(0.0, 1.0));
    let customer = sipp
        .target(node_a.sip)
        .users(vec![format!("{};-;127.0.0.1;{NUMBER}", caller(1))])
        .file("caller.ulaw", audio)
        .timeout(Duration::from_secs(30))
        .run();
    assert_eq!(
        customer.successful,
        1,
        "the caller was not hung up after the key: {customer:?}\nnode A:\n{}",
        node_a.stderr()
    );
    assert_eq!(
        waiting_callers(&cluster, "support"),
        [caller(1)],
        "the caller keeps their place"
    );
    set_agent(&cluster, 2001, "available");
    let run = phone.wait(Duration::from_secs(60));
    assert_eq!(served_one_at_a_time(&run.logs), [caller(1)], "{}", run.logs);
    let called = carrier.wait(Duration::from_secs(30));
    assert_eq!(
        called.successful,
        1,
        "the callback: {called:?}\nnode A:\n{}",
        node_a.stderr()
    );
    assert!(
        called.logs.contains(&format!("called {}", caller(1))),
        "{}",
        called.logs
    );
    let view = live(&cluster, "support");
    assert_eq!(view["kpis"]["answered"], 1, "{view}");
    assert_eq!(view["kpis"]["abandoned"], 0, "{view}");
}

/// The queue event log (`GET /v1/tenants/{t}/queue-log`), from the CDRs: a caller who
/// gives up (ENTERQUEUE, ABANDON) and one an agent takes (ENTERQUEUE, CONNECT,
/// COMPLETEAGENT), on a `tongdai up` node whose API serves the records.
#[test]
fn the_queue_log_shows_what_happened_to_each_caller() {
    // Not the demo tenant's own toll-free number.
    const LOG_NUMBER: &str = "18005555";
    let gives_up = Sipp::new("call_trunk_uac.xml");
    let served = Sipp::new("queue_caller.xml");
    let node = up();
    let post = |path: &str, body: String| up_post(&node, path, &body);
    post(
        "/v1/tenants/e2e/trunks",
        format!(
            r#"{{"id":"carrier","address":"127.0.0.1:9","trusted_sources":["127.0.0.1:{}","127.0.0.1:{}"],"max_concurrent_calls":10}}"#,
            gives_up.local_port(),
            served.local_port()
        ),
    );
    post(
        "/v1/tenants/e2e/agents",
        r#"{"extension":"2001","state":"paused","pause_reason":"setup"}"#.into(),
    );
    post(
        "/v1/tenants/e2e/queues",
        r#"{"id":"support","name":"Support","strategy":"longest_idle","max_wait_secs":120,"max_len":10,"members":[{"extension":"2001"}]}"#.into(),
    );
    post(
        "/v1/tenants/e2e/numbers",
        format!(
            r#"{{"digits":"{LOG_NUMBER}","kind":"toll_free_1800","destination":{{"type":"queue","id":"support"}}}}"#
        ),
    );
    let phone = Sipp::new("queue_agent.xml")
        .duration(Duration::from_millis(500))
        .timeout(Duration::from_secs(60));
    tongdai_tests::calls::register(&node, 2001, "e2e", phone.local_port());
    let phone = phone.spawn();
    let run = gives_up
        .target(node.sip)
        .users(vec![format!("{};-;127.0.0.1;{LOG_NUMBER}", caller(1))])
        .duration(Duration::from_secs(2))
        .file("caller.ulaw", ulaw_tone(440.0, 1.0))
        .timeout(Duration::from_secs(20))
        .run();
    assert_eq!(run.successful, 1, "{run:?}\n{}", node.stderr());
    let customer = served
        .target(node.sip)
        .users(vec![format!("{};-;127.0.0.1;{LOG_NUMBER}", caller(2))])
        .file("caller.ulaw", ulaw_tone(440.0, 1.0))
        .timeout(Duration::from_secs(60))
        .spawn();
    let (code, body) = node.api(
        "PUT",
        "/v1/tenants/e2e/agents/2001",
        Some(r#"{"state":"available"}"#),
    );
    assert_eq!(code, 200, "{body}");
    let answered = phone.wait(Duration::from_secs(60));
    assert_eq!(
        served_one_at_a_time(&answered.logs),
        [caller(2)],
        "{}",
        answered.logs
    );
    assert_eq!(customer.wait(Duration::from_secs(30)).successful, 1);

    let mut log = Vec::new();
    let complete = wait_until(Duration::from_secs(20), || {
        let (code, body) = node.api("GET", "/v1/tenants/e2e/queue-log?queue=support", None);
        assert_eq!(code, 200, "{body}");
        log = serde_json::from_str::<Vec<Value>>(&body).expect("json");
        log.len() >= 5
    });
    assert!(complete, "queue log: {log:?}");
    let line = |v: &Value| {
        (
            v["event"].as_str().unwrap_or_default().to_owned(),
            v["agent"].as_str().map(str::to_owned),
        )
    };
    let by_call = |event: &str| -> String {
        log.iter()
            .find(|l| l["event"] == event)
            .map(|l| l["call_id"].as_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let abandoned = by_call("ABANDON");
    let taken = by_call("CONNECT");
    assert!(
        !abandoned.is_empty() && !taken.is_empty() && abandoned != taken,
        "{log:?}"
    );
    let of = |call: &str| -> Vec<(String, Option<String>)> {
        log.iter()
            .filter(|l| l["call_id"] == call)
            .map(line)
            .collect()
    };
    assert_eq!(
        of(&abandoned),
        [("ENTERQUEUE".into(), None), ("ABANDON".into(), None)],
        "{log:?}"
    );
    assert_eq!(
        of(&taken),
        [
            ("ENTERQUEUE".into(), None),
            ("CONNECT".into(), Some("2001".into())),
            ("COMPLETEAGENT".into(), Some("2001".into()))
        ],
        "{log:?}"
    );
    assert!(
        log.iter()
            .all(|l| l["queue"] == "support" && l["time"].is_string()),
        "{log:?}"
    );
}

/// A caller entering a queue hears the announcement first (built-in voice, English or
/// Vietnamese as the queue says: "You are caller number one" / "Quý khách là người gọi thứ
/// một", then the callback key), then the music on hold: the RTP the node sends the
/// caller carries the prompts' exact audio, in that order.
#[test]
fn a_waiting_caller_hears_their_position_and_the_callback_key() {
    let listeners = [
        Sipp::new("queue_listener.xml"),
        Sipp::new("queue_listener.xml"),
    ];
    let node = up();
    let post = |path: &str, body: String| up_post(&node, path, &body);
    post(
        "/v1/tenants/e2e/trunks",
        format!(
            r#"{{"id":"carrier","address":"127.0.0.1:9","trusted_sources":["127.0.0.1:{}","127.0.0.1:{}"],"max_concurrent_calls":10}}"#,
            listeners[0].local_port(),
            listeners[1].local_port()
        ),
    );
    post(
        "/v1/tenants/e2e/agents",
        r#"{"extension":"2001","state":"paused","pause_reason":"setup"}"#.into(),
    );
    for (listener, (lang, number)) in listeners
        .into_iter()
        .zip([("en", "18006666"), ("vi", "18006667")])
    {
        post(
            "/v1/tenants/e2e/queues",
            format!(
                r#"{{"id":"q{lang}","name":"Support","strategy":"longest_idle","max_wait_secs":120,"max_len":10,
                    "members":[{{"extension":"2001"}}],"callback_digit":"1","announce_language":"{lang}"}}"#
            ),
        );
        post(
            "/v1/tenants/e2e/numbers",
            format!(
                r#"{{"digits":"{number}","kind":"toll_free_1800","destination":{{"type":"queue","id":"q{lang}"}}}}"#
            ),
        );
        let heard = listen(&node, listener, number);
        announced_in_order(&heard, lang, &node);
    }
}

/// What a caller of `number` hears for about ten seconds (u-law payloads, in order).
fn listen(node: &tongdai_tests::Node, listener: Sipp, number: &str) -> Vec<u8> {
    use tongdai_tests::media::{Phone, payloads};
    let ear = Phone::new(0x5151);
    let call = listener
        .target(node.sip)
        .users(vec![format!("{};-;127.0.0.1;{number}", caller(1))])
        .key("audio_port", ear.port())
        .duration(Duration::from_secs(9))
        .timeout(Duration::from_secs(30))
        .spawn();
    let mut packets = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(12);
    while std::time::Instant::now() < deadline {
        packets.extend(ear.drain());
        std::thread::sleep(Duration::from_millis(20));
    }
    let run = call.wait(Duration::from_secs(30));
    assert_eq!(run.successful, 1, "{run:?}\n{}", node.stderr());
    payloads(&packets, 0).concat()
}

/// `heard` starts with the announcement in `lang` for position one and callback key 1,
/// followed by more audio (the music).
fn announced_in_order(heard: &[u8], lang: &str, node: &tongdai_tests::Node) {
    let prompt = |name: &str| {
        std::fs::read(
            tongdai_tests::workspace_root().join(format!("node/prompts/{lang}/{name}.ulaw")),
        )
        .expect("prompt file")
    };
    let find = |needle: &[u8], from: usize| -> Option<usize> {
        heard[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|i| i + from)
    };
    let first = find(&prompt("caller_number"), 0).unwrap_or_else(|| {
        panic!(
            "{lang}: \"caller number\" not heard in {} bytes of audio\n{}",
            heard.len(),
            node.stderr()
        )
    });
    assert!(
        first < 8000,
        "{lang}: the announcement comes first (at byte {first})"
    );
    let one = find(&prompt("n1"), first).expect("\"one\" after it");
    let key = find(&prompt("press_for_callback"), one).expect("the callback key after it");
    assert!(
        find(&prompt("n1"), key).is_some(),
        "{lang}: the key's digit"
    );
    // The music follows: audio after the announcement.
    let announced = key + prompt("press_for_callback").len() + prompt("n1").len();
    assert!(
        heard.len() > announced + 8000,
        "{lang}: nothing after the announcement ({announced} of {} bytes)",
        heard.len()
    );
}

/// Click-to-call through the API: the agent's phone rings first; once the agent answers,
/// the customer's number is dialled through the outbound trunk and the two are
/// connected. Bad requests are refused naming the field.
#[test]
fn click_to_call_rings_the_agent_then_dials_the_customer() {
    let customer = "0909123456";
    let carrier = Sipp::new("callback_carrier.xml")
        .timeout(Duration::from_secs(60))
        .file("callee.ulaw", ulaw_tone(1000.0, 1.0));
    let node = up();
    let post = |path: &str, body: String| up_post(&node, path, &body);
    post(
        "/v1/tenants/e2e/trunks",
        format!(
            r#"{{"id":"out","address":"127.0.0.1:{}","trusted_sources":[],"max_concurrent_calls":10}}"#,
            carrier.local_port()
        ),
    );
    post(
        "/v1/tenants/e2e/numbers",
        r#"{"digits":"02873009999","kind":"geographic","destination":{"type":"extension","id":"2001"}}"#.into(),
    );
    let (code, body) = node.api("GET", "/v1/tenants/e2e", None);
    assert_eq!(code, 200, "{body}");
    let mut tenant: Value = serde_json::from_str(&body).unwrap();
    tenant["calls"]["outbound_trunk"] = "out".into();
    tenant["calls"]["caller_id"] = "02873009999".into();
    let (code, body) = node.api("PUT", "/v1/tenants/e2e", Some(&tenant.to_string()));
    assert_eq!(code, 200, "{body}");
    let phone = Sipp::new("queue_agent.xml")
        .duration(Duration::from_secs(1))
        .timeout(Duration::from_secs(60));
    tongdai_tests::calls::register(&node, 2001, "e2e", phone.local_port());
    let phone = phone.spawn();
    let carrier = carrier.spawn();

    for (body, field) in [
        (r#"{"agent":"2001","number":"not a number"}"#, "number"),
        (r#"{"agent":"2999","number":"0909123456"}"#, "agent"),
        (r#"{"agent":"2001"}"#, "number"),
    ] {
        let (code, answer) = node.api("POST", "/v1/tenants/e2e/calls", Some(body));
        let v: Value = serde_json::from_str(&answer).unwrap_or_default();
        assert!((400..500).contains(&code), "{body}: {code} {answer}");
        assert_eq!(v["field"], field, "{body}: {answer}");
    }
    let accepted: Value = serde_json::from_str(&post(
        "/v1/tenants/e2e/calls",
        format!(r#"{{"agent":"2001","number":"{customer}"}}"#),
    ))
    .unwrap();
    let id = accepted["id"].as_u64().expect("an id");
    let run = phone.wait(Duration::from_secs(60));
    assert_eq!(
        served_one_at_a_time(&run.logs),
        [customer],
        "the agent's phone shows the customer: {}\n{}",
        run.logs,
        node.stderr()
    );
    let called = carrier.wait(Duration::from_secs(30));
    assert_eq!(called.successful, 1, "{called:?}\n{}", node.stderr());
    assert!(
        called.logs.contains(&format!("called {customer}")),
        "{}",
        called.logs
    );
    let (code, body) = node.api("GET", &format!("/v1/tenants/e2e/calls/{id}"), None);
    assert_eq!(code, 200, "{body}");
    let status: Value = serde_json::from_str(&body).unwrap();
    assert!(status["node"].is_string(), "taken by a node: {status}");
    let cdr = tongdai_tests::calls::newest_cdr(&node, "e2e", 1);
    assert_eq!(cdr["destination"], "click_to_call:2001", "{cdr}");
    assert_eq!(cdr["disposition"], "answered", "{cdr}");
}
