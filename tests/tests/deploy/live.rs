//! The dashboards and alert rules against a live cluster: a real Prometheus scrapes 3
//! `tongdai control-plane` replicas, a `tongdai node` under SIPp REGISTER load that also
//! carries SIPp calls (one answered and ended, one up while Prometheus is queried, one
//! refused over the tenant's concurrent-call quota) and a `tongdai media` relaying a
//! call; every dashboard query and every alert's inputs must return data through
//! Prometheus' HTTP API, and every rule must evaluate without error. A queue call (a
//! caller dialling the queue's number, an agent's phone answering) gives the
//! contact-center panels their series.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use tongdai_tests::calls::{Sipp, SippPhone, free_udp_port, ulaw_tone};
use tongdai_tests::cluster::{Cluster, NodeProc};
use tongdai_tests::deploy::{dashboard_queries, metric_names, plain_promql, yaml_file};
use tongdai_tests::media::{MediaProc, Phone, call};
use tongdai_tests::{
    ChildGuard, SippRun, TempDir, free_tcp_port, http_get, http_request, require_tool, run_sipp,
    sipp_users, wait_until, workspace_root,
};

use super::*;

const TENANT: &str = "acme";
/// Extensions 10000.. registered by the REGISTER load.
const USERS: u32 = 40;
/// Extensions for the calls, outside the REGISTER load (whose bindings point at a SIPp
/// that has exited): a phone that answers, a caller, and a caller over the quota.
const CALLEE: u32 = 10_100;
const CALLER: u32 = 10_101;
const OVER_QUOTA: u32 = 10_102;
/// The queue's agent (available), and the number routed to the queue.
const AGENT: u32 = 10_103;
const QUEUE_NUMBER: u32 = 18_001_000;
/// The tenant's `max_concurrent_calls`: one call up, the next one is refused.
const MAX_CALLS: u32 = 1;
/// How long the call that is up while Prometheus is queried lasts: longer than the
/// queries take (a few seconds; they return data at 0 calls too, but the ratios of
/// active calls to the quota are then 0).
const LIVE_CALL: Duration = Duration::from_secs(20);
/// Alerts whose condition the calls meet: their expression must return data, not only
/// their inputs (the refusal fires TongdaiTenantAtQuota; TongdaiTenantNearQuota stays
/// pending, its `for:` being longer than the test).
const ALERTS_MET: &[&str] = &["TongdaiTenantAtQuota", "TongdaiTenantNearQuota"];

fn password(ext: u32) -> String {
    format!("pw-{ext}-secret")
}

/// A Prometheus process scraping the given targets every second, with the alert rules.
struct Prometheus {
    addr: SocketAddr,
    dir: TempDir,
    _child: ChildGuard,
}

impl Prometheus {
    fn start(replicas: &[SocketAddr], nodes: &[SocketAddr]) -> Prometheus {
        let binary = require_tool("prometheus", "apt-get install -y prometheus");
        let dir = TempDir::new("prometheus");
        let list = |addrs: &[SocketAddr]| {
            addrs
                .iter()
                .map(|a| format!("\"{a}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let rules = workspace_root().join("deploy/prometheus/rules/tongdai.rules.yml");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rules}\n\
             scrape_configs:\n\
             \x20 - job_name: tongdai-control-plane\n    static_configs:\n      - targets: [{replicas}]\n\
             \x20 - job_name: tongdai-node\n    static_configs:\n      - targets: [{nodes}]\n",
            rules = rules.display(),
            replicas = list(replicas),
            nodes = list(nodes),
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let addr = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let prometheus = Prometheus {
            addr,
            dir,
            _child: ChildGuard(child),
        };
        let ready = wait_until(Duration::from_secs(30), || {
            http_request(addr, "GET", "/-/ready", "", None).is_some_and(|(c, _)| c == 200)
        });
        assert!(ready, "prometheus not ready:\n{}", prometheus.log());
        // Its first scrapes come a few seconds after it is ready (target discovery is
        // throttled): wait for them, so the traffic's counters are seen from before it
        // (a counter first seen at 1 shows no increase).
        let targets = replicas.len() + nodes.len();
        let scraping = wait_until(Duration::from_secs(30), || {
            prometheus
                .query("up == 1")
                .is_ok_and(|r| r.len() == targets)
        });
        assert!(
            scraping,
            "prometheus does not scrape all {targets} targets:\n{}",
            prometheus.log()
        );
        prometheus
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// An instant query: `Ok(result vector)`, or the API's error.
    fn query(&self, promql: &str) -> Result<Vec<Value>, String> {
        let path = format!("/api/v1/query?query={}", percent_encode(promql));
        let (code, body) = http_request(self.addr, "GET", &path, "", None)
            .ok_or_else(|| "prometheus did not answer".to_owned())?;
        let json: Value = serde_json::from_str(&body)
            .map_err(|e| format!("HTTP {code}, not JSON ({e}): {body}"))?;
        if json["status"] != "success" {
            return Err(format!("HTTP {code}: {body}"));
        }
        Ok(json["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Creates the tenant and its extensions through the leader.
fn provision(cluster: &Cluster) {
    let (code, body) = cluster.api(
        "POST",
        "/v1/tenants",
        Some(&format!(
            r#"{{"id":"{TENANT}","name":"ACME","quotas":{{"max_concurrent_calls":{MAX_CALLS},"max_call_attempts_per_sec":100,"max_registrations":1000}}}}"#
        )),
    );
    assert_eq!(code, 201, "create tenant: {body}");
    for ext in (10_000..10_000 + USERS).chain([CALLEE, CALLER, OVER_QUOTA, AGENT]) {
        let (code, body) = cluster.api(
            "POST",
            &format!("/v1/tenants/{TENANT}/extensions"),
            Some(&format!(
                r#"{{"ext":"{ext}","display_name":"Agent {ext}","password":"{}"}}"#,
                password(ext)
            )),
        );
        assert_eq!(code, 201, "create extension {ext}: {body}");
    }
    // A queue served by two agents (one logged in), so the contact-center gauges the
    // control plane exports from its state have series.
    for (ext, state) in [(AGENT, "available"), (10_001, "logged_out")] {
        let (code, body) = cluster.api(
            "POST",
            &format!("/v1/tenants/{TENANT}/agents"),
            Some(&format!(r#"{{"extension":"{ext}","state":"{state}"}}"#)),
        );
        assert_eq!(code, 201, "create agent {ext}: {body}");
    }
    let (code, body) = cluster.api(
        "POST",
        &format!("/v1/tenants/{TENANT}/queues"),
        Some(
            r#"{"id":"support","name":"Support","strategy":"longest_idle","max_wait_secs":300,"max_len":50,"members":[{"extension":"10103"},{"extension":"10001","penalty":1}]}"#,
        ),
    );
    assert_eq!(code, 201, "create queue: {body}");
    let (code, body) = cluster.api(
        "POST",
        &format!("/v1/tenants/{TENANT}/numbers"),
        Some(&format!(
            r#"{{"digits":"{QUEUE_NUMBER}","kind":"toll_free_1800","destination":{{"type":"queue","id":"support"}}}}"#
        )),
    );
    assert_eq!(code, 201, "create the queue's number: {body}");
}

/// A phone registered as `ext` that answers `calls` calls (SIPp `call_uas.xml`, on the
/// port it registered from) until the caller hangs up, in the background.
fn answering_phone(node: &NodeProc, ext: u32, calls: usize, timeout: Duration) -> SippPhone {
    let port = free_udp_port();
    let registered = Sipp::new("register_auth.xml")
        .target(node.sip)
        .port(port)
        .users(sipp_users(ext, 1, password, TENANT))
        .run();
    assert_eq!(
        registered.successful, 1,
        "registration of {ext}: {registered:?}"
    );
    Sipp::new("call_uas.xml")
        .port(port)
        .calls(calls, 10)
        .file("callee.ulaw", ulaw_tone(1000.0, 5.0))
        .timeout(timeout)
        .spawn()
}

/// A queue call: the caller dials the queue's number and hangs up after a few seconds;
/// the agent's phone answers the offer (the queue's service level gets its first
/// answered call).
fn queue_call(node: &NodeProc) {
    let agent = answering_phone(node, AGENT, 1, Duration::from_secs(60));
    let call = Sipp::new("call_uac.xml")
        .target(node.sip)
        .users(caller(CALLER, QUEUE_NUMBER))
        .duration(Duration::from_secs(3))
        .file("caller.ulaw", ulaw_tone(440.0, 5.0))
        .timeout(Duration::from_secs(30))
        .run();
    assert_eq!(
        call.successful,
        1,
        "the queue call: {call:?}
node:
{}",
        node.stderr()
    );
    let answered = agent.wait(Duration::from_secs(30));
    assert_eq!(
        answered.successful,
        1,
        "the agent's phone: {answered:?}
node:
{}",
        node.stderr()
    );
}

/// One call through the relay: G.711 both ways for a second, a few packets from a
/// foreign source (dropped), then the session ends, which records its quality.
fn relay_a_call(media: &MediaProc) {
    let mut caller = Phone::new(0x1111);
    let mut callee = Phone::new(0x2222);
    let (id, to_caller_leg, to_callee_leg) = call(media, &caller, &callee, TENANT);
    let intruder = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let start = Instant::now();
    for n in 0..50u32 {
        caller.send(to_caller_leg, 0, &[0x55; 160], n == 0);
        callee.send(to_callee_leg, 0, &[0x2a; 160], n == 0);
        caller.tick();
        callee.tick();
        if n > 5 && n % 10 == 0 {
            let _ = intruder.send_to(&[0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9], to_caller_leg);
        }
        // Paced like a phone: packet n leaves at n * 20 ms.
        let due = start + Duration::from_millis(20 * u64::from(n + 1));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    let relayed = wait_until(Duration::from_secs(5), || {
        caller.drain().len() + callee.drain().len() > 0
    });
    assert!(relayed, "the relay forwarded nothing:\n{}", media.log());
    let (code, body) = media.api("DELETE", &format!("/v1/media/sessions/{id}"), None);
    assert!((200..300).contains(&code), "end the session: {code} {body}");
}

/// A series' value in a process' `/metrics` (`name{labels}` as exported).
fn scraped(addr: SocketAddr, series: &str) -> Option<f64> {
    let (_, body) = http_get(addr, "/metrics")?;
    body.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}

/// SIPp injection line for extension `ext` dialling `dialled`.
fn caller(ext: u32, dialled: u32) -> Vec<String> {
    sipp_users(ext, 1, password, TENANT)
        .into_iter()
        .map(|line| format!("{line};{dialled}"))
        .collect()
}

/// A call from `from` to the callee that streams a tone for `length`, then hangs up.
fn call_to_callee(node: &NodeProc, from: u32, length: Duration) -> Sipp {
    Sipp::new("call_uac.xml")
        .target(node.sip)
        .users(caller(from, CALLEE))
        .duration(length)
        .file("caller.ulaw", ulaw_tone(440.0, 5.0))
        .timeout(length + Duration::from_secs(20))
}

/// The calls still going once [`place_calls`] returns.
struct Calls {
    /// The callee's SIPp: answers two calls, then exits.
    callee: SippPhone,
    /// The call up while Prometheus is queried (SIPp in a thread).
    live: JoinHandle<SippRun>,
}

/// The traffic of the call panels and alerts, on a tenant whose quota is one call: a
/// call answered and ended (attempts, answered, billable seconds), a call left up
/// (active calls, the quota in use) and a call refused over the quota
/// (`tongdai_calls_rejected_total{reason="quota"}`).
fn place_calls(node: &NodeProc) -> Calls {
    let callee = answering_phone(node, CALLEE, 2, LIVE_CALL + Duration::from_secs(60));
    let first = call_to_callee(node, CALLER, Duration::from_secs(2)).run();
    assert_eq!(
        first.successful,
        1,
        "the first call: {first:?}\nnode:\n{}",
        node.stderr()
    );
    let sipp = call_to_callee(node, CALLER, LIVE_CALL);
    let live = std::thread::spawn(move || sipp.run());
    let active = format!("tongdai_calls_active{{tenant=\"{TENANT}\"}}");
    let up = wait_until(Duration::from_secs(20), || {
        scraped(node.http, &active).is_some_and(|n| n >= 1.0)
    });
    assert!(up, "the live call never started:\n{}", node.stderr());
    let refused = Sipp::new("call_uac_refused.xml")
        .target(node.sip)
        .users(caller(OVER_QUOTA, CALLEE))
        .run();
    assert!(
        refused
            .logs
            .contains("refused 503 Tenant call quota reached"),
        "the call over the quota: {refused:?}\nnode:\n{}",
        node.stderr()
    );
    Calls { callee, live }
}

#[test]
fn every_dashboard_and_alert_query_returns_data_from_a_live_cluster() {
    require_tool("prometheus", "apt-get install -y prometheus");
    let cluster = Cluster::start(3, 1000);
    provision(&cluster);
    let node = cluster.start_node("node-a", TENANT);
    let media = MediaProc::start(&[]);
    let replicas: Vec<SocketAddr> = cluster.replicas.iter().map(|r| r.api).collect();
    let prometheus = Prometheus::start(&replicas, &[node.http, media.control]);

    // Traffic for every metric the dashboards show today.
    let users = sipp_users(10_000, USERS, password, TENANT);
    let run = run_sipp(
        "register_logged.xml",
        node.sip,
        &users,
        users.len(),
        50,
        "u1",
        Duration::from_secs(60),
    );
    assert!(run.successful > 0, "no REGISTER succeeded: {run:?}");
    let wrong = sipp_users(10_000, 3, |_| "not-the-password".into(), TENANT);
    run_sipp(
        "register_wrong_password.xml",
        node.sip,
        &wrong,
        wrong.len(),
        10,
        "u1",
        Duration::from_secs(30),
    );
    let garbage = UdpSocket::bind("127.0.0.1:0").expect("bind");
    garbage
        .send_to(b"NOT SIP AT ALL\r\n\r\n", node.sip)
        .expect("send garbage");
    relay_a_call(&media);
    queue_call(&node);
    let calls = place_calls(&node);
    let seen = wait_until(Duration::from_secs(20), || {
        prometheus
            .query("sum(tongdai_calls_active) >= 1")
            .is_ok_and(|r| !r.is_empty())
    });
    assert!(seen, "prometheus never saw the live call");

    // Every dashboard query, and every alert's expression and inputs.
    let mut checks: Vec<(String, String)> = Vec::new();
    for path in dashboard_files() {
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        for (place, expr) in dashboard_queries(&dashboard(&path)) {
            checks.push((format!("{name} {place}"), plain_promql(&expr)));
        }
    }
    let rules = yaml_file(&workspace_root().join("deploy/prometheus/rules/tongdai.rules.yml"));
    let mut alert_exprs = Vec::new();
    for group in rules["groups"].as_array().expect("groups") {
        for rule in group["rules"].as_array().expect("rules") {
            let alert = rule["alert"].as_str().expect("alert").to_owned();
            let expr = rule["expr"].as_str().expect("expr").to_owned();
            if ALERTS_MET.contains(&alert.as_str()) {
                // First, while the live call is surely up.
                checks.insert(
                    0,
                    (format!("alert {alert}: its condition holds"), expr.clone()),
                );
            }
            for metric in metric_names(&expr) {
                let selector = if metric == "up" {
                    "up{job=~\"tongdai-.*\"}".to_owned()
                } else {
                    metric
                };
                checks.push((format!("alert {alert} input"), selector));
            }
            alert_exprs.push((alert, expr));
        }
    }
    let met = checks
        .iter()
        .filter(|(p, _)| p.ends_with("condition holds"));
    assert_eq!(met.count(), ALERTS_MET.len(), "alerts named in ALERTS_MET");
    let live = checks;
    assert!(live.len() >= 70, "only {} live queries", live.len());

    // Poll until each query has data: scrapes are every second, rates need two samples.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut empty: Vec<(String, String, String)> = Vec::new();
    for (place, expr) in &live {
        let mut last = String::new();
        let ok = loop {
            match prometheus.query(expr) {
                Ok(result) if !result.is_empty() => break true,
                Ok(_) => last = "no data".into(),
                Err(e) => last = e,
            }
            if Instant::now() >= deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(250));
        };
        if !ok {
            empty.push((place.clone(), expr.clone(), last));
        }
    }
    assert!(
        empty.is_empty(),
        "{} of {} queries return nothing from the live cluster:\n{}\nprometheus log:\n{}",
        empty.len(),
        live.len(),
        empty
            .iter()
            .map(|(p, e, why)| format!("  {p}: {e}  ({why})"))
            .collect::<Vec<_>>()
            .join("\n"),
        prometheus.log()
    );
    // The alert expressions themselves evaluate (most are rightly empty on a healthy cluster).
    for (alert, expr) in &alert_exprs {
        if let Err(e) = prometheus.query(expr) {
            panic!("alert {alert}: {e}");
        }
    }
    // And Prometheus evaluates every rule without error.
    let healthy = wait_until(Duration::from_secs(10), || {
        let Some((_, body)) = http_request(prometheus.addr, "GET", "/api/v1/rules", "", None)
        else {
            return false;
        };
        let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let rules: Vec<&Value> = json["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten())
            .collect();
        rules.len() == alert_exprs.len() && rules.iter().all(|r| r["health"] == "ok")
    });
    assert!(
        healthy,
        "prometheus reports a rule unhealthy:\n{}",
        prometheus.log()
    );
    eprintln!("{} dashboard/alert queries returned data", live.len());
    let live_call = calls.live.join().expect("the live call's thread");
    assert_eq!(
        live_call.successful,
        1,
        "the live call: {live_call:?}\nnode:\n{}",
        node.stderr()
    );
    let callee = calls.callee.wait(Duration::from_secs(30));
    assert_eq!(callee.successful, 2, "the callee: {callee:?}");
}
