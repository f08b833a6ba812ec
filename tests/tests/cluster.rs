//! The control plane as real processes: 3 `tongdai control-plane` replicas over QUIC
//! with mutual TLS, 2 `tongdai node`s, SIPp registering through both. The leader is
//! killed with SIGKILL under load; every REGISTER that got a 200 must be on every
//! replica afterwards.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tongdai_tests::cluster::{Cluster, OPERATOR_TOKEN};
use tongdai_tests::{http_request, run_sipp, sipp_users, wait_until};

const TENANT: &str = "acme";

fn password(ext: u32) -> String {
    format!("pw-{ext}-secret")
}

/// Creates the tenant and `count` extensions from 10000 on, through the leader's API,
/// from several threads so the replica batches the proposals.
fn provision(cluster: &Cluster, count: u32) {
    let (code, body) = cluster.api(
        "POST",
        "/v1/tenants",
        Some(&format!(
            r#"{{"id":"{TENANT}","name":"ACME","quotas":{{"max_concurrent_calls":100,"max_call_attempts_per_sec":100,"max_registrations":100000}}}}"#
        )),
    );
    assert_eq!(code, 201, "create tenant: {body}");
    std::thread::scope(|s| {
        for t in 0..8u32 {
            s.spawn(move || {
                for ext in (10_000 + t..10_000 + count).step_by(8) {
                    create_extension(cluster, ext);
                }
            });
        }
    });
}

fn create_extension(cluster: &Cluster, ext: u32) {
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

/// Extensions SIPp logged a 200 OK for.
fn registered(logs: &str) -> BTreeSet<String> {
    logs.lines()
        .filter_map(|l| l.trim().strip_prefix("registered "))
        .map(|ext| ext.trim().to_owned())
        .collect()
}

fn missing_on(cluster: &Cluster, id: u64, want: &BTreeSet<String>) -> Option<usize> {
    let have: BTreeSet<String> = cluster.registered_on(id, TENANT)?.into_iter().collect();
    Some(want.difference(&have).count())
}

#[test]
fn leader_killed_under_register_load_loses_no_registration() {
    const USERS: u32 = 2_000;
    let mut cluster = Cluster::start(3, 20_000);
    provision(&cluster, USERS);
    let node_a = cluster.start_node("node-a", TENANT);
    let node_b = cluster.start_node("node-b", TENANT);

    let users = sipp_users(10_000, USERS, password, TENANT);
    let (first, second) = users.split_at(users.len() / 2);
    let (run_a, run_b, killed, kill_at, new_leader, election) = std::thread::scope(|s| {
        let a = s.spawn(|| {
            run_sipp(
                "register_logged.xml",
                node_a.sip,
                first,
                first.len(),
                100,
                "u1",
                Duration::from_secs(120),
            )
        });
        let b = s.spawn(|| {
            run_sipp(
                "register_logged.xml",
                node_b.sip,
                second,
                second.len(),
                100,
                "u1",
                Duration::from_secs(120),
            )
        });
        // Kill the leader once a fifth of the users are in.
        let leader = cluster.wait_for_leader(Duration::from_secs(10));
        assert!(
            wait_until(Duration::from_secs(60), || cluster
                .registered_on(leader, TENANT)
                .is_some_and(|r| r.len() >= USERS as usize / 5)),
            "registrations did not start"
        );
        cluster.kill(leader);
        let kill_at = Instant::now();
        let new_leader = cluster.wait_for_leader(Duration::from_secs(30));
        let election = kill_at.elapsed();
        (
            a.join().expect("sipp a"),
            b.join().expect("sipp b"),
            leader,
            kill_at,
            new_leader,
            election,
        )
    });
    let load_after_kill = kill_at.elapsed();
    assert_ne!(new_leader, killed);

    let mut ok = registered(&run_a.logs);
    ok.extend(registered(&run_b.logs));
    let failed = run_a.failed + run_b.failed;
    println!(
        "registrations: {} got 200, {failed} failed (SIPp), of {USERS}; leader {killed} killed \
         (SIGKILL), replica {new_leader} leads {} ms later; the load ran {} ms past the kill",
        ok.len(),
        election.as_millis(),
        load_after_kill.as_millis()
    );
    println!(
        "node-a SIPp:\n{}\nnode-b SIPp errors:\n{}",
        run_a.errors, run_b.errors
    );
    assert!(
        ok.len() as u64 + failed >= u64::from(USERS),
        "SIPp lost track of users: {} ok + {failed} failed",
        ok.len()
    );
    // Failover must not turn into an outage: nearly everything still registers.
    assert!(
        ok.len() >= USERS as usize * 9 / 10,
        "only {} of {USERS} registered across the failover\nnode-a:\n{}\nnode-b:\n{}",
        ok.len(),
        node_a.stderr(),
        node_b.stderr()
    );

    // The nodes' caches still follow the cluster (their watch streams moved off the
    // killed replica): an extension created now can register through either node.
    for (node, ext) in [(&node_a, 90_001u32), (&node_b, 90_002)] {
        create_extension(&cluster, ext);
        let users = sipp_users(ext, 1, password, TENANT);
        // The watch delivers the new credentials within moments; retry until then.
        let registered_late = wait_until(Duration::from_secs(20), || {
            let run = run_sipp(
                "register_logged.xml",
                node.sip,
                &users,
                1,
                10,
                "u1",
                Duration::from_secs(10),
            );
            registered(&run.logs).contains(&ext.to_string())
        });
        assert!(
            registered_late,
            "extension {ext} created after the kill never registered"
        );
    }

    // The killed replica comes back and catches up; then every replica holds every
    // registration that was answered 200.
    cluster.start_replica(killed);
    for id in 1..=3 {
        let caught_up = wait_until(Duration::from_secs(60), || {
            missing_on(&cluster, id, &ok) == Some(0)
        });
        assert!(
            caught_up,
            "replica {id} lacks {:?} of the {} answered registrations",
            missing_on(&cluster, id, &ok),
            ok.len()
        );
    }
}

#[test]
fn replicas_restart_with_their_state_and_a_wiped_replica_catches_up_by_snapshot() {
    const USERS: u32 = 100;
    let mut cluster = Cluster::start(3, 50);
    provision(&cluster, USERS);
    let node = cluster.start_node("node-r", TENANT);
    let users = sipp_users(10_000, USERS, password, TENANT);
    let run = run_sipp(
        "register_logged.xml",
        node.sip,
        &users,
        users.len(),
        100,
        "u1",
        Duration::from_secs(60),
    );
    let ok = registered(&run.logs);
    assert_eq!(ok.len(), USERS as usize, "{}\n{}", run.output, run.errors);

    // Every replica down at once, then up again: all state intact.
    for id in 1..=3 {
        cluster.kill(id);
    }
    for id in 1..=3 {
        cluster.start_replica(id);
    }
    cluster.wait_for_leader(Duration::from_secs(30));
    for id in 1..=3 {
        assert!(
            wait_until(Duration::from_secs(30), || missing_on(&cluster, id, &ok)
                == Some(0)),
            "replica {id} lost registrations across the restart: {:?} missing; {:?}\n{}",
            missing_on(&cluster, id, &ok),
            http_request(
                cluster.replica(id).api,
                "GET",
                &format!("/v1/tenants/{TENANT}/registrations?local=true"),
                OPERATOR_TOKEN,
                None
            ),
            cluster.replica(id).stderr()
        );
    }
    let (code, body) = cluster.api("GET", &format!("/v1/tenants/{TENANT}/extensions"), None);
    assert_eq!(code, 200);
    let extensions: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(extensions.as_array().map(Vec::len), Some(USERS as usize));

    // Wipe a follower: remove it, delete its data, write more (the log before the
    // leader's next snapshot is purged), and add it back as a new member.
    let leader = cluster.wait_for_leader(Duration::from_secs(10));
    let wiped = (1..=3).find(|id| *id != leader).expect("a follower");
    let (code, body) = cluster.api("DELETE", &format!("/v1/cluster/members/{wiped}"), None);
    assert!(code == 200 || code == 204, "remove: {code} {body}");
    cluster.kill(wiped);
    std::fs::remove_dir_all(&cluster.replica(wiped).data_dir).expect("wipe data dir");
    for i in 0..120 {
        let (code, body) = cluster.api(
            "PUT",
            &format!("/v1/tenants/{TENANT}/extensions/10000"),
            Some(&format!(r#"{{"display_name":"Agent renamed {i}"}}"#)),
        );
        assert_eq!(code, 200, "update: {body}");
    }
    let leader = cluster.wait_for_leader(Duration::from_secs(10));
    assert!(
        wait_until(Duration::from_secs(20), || cluster
            .status(leader)
            .is_some_and(|s| s["purged"].as_u64().is_some())),
        "the leader never purged its log"
    );
    cluster.start_replica(wiped);
    let r = cluster.replica(wiped);
    let (code, body) = cluster.api(
        "POST",
        "/v1/cluster/learners",
        Some(&format!(
            r#"{{"id":{wiped},"raft_addr":"{}","api_addr":"{}"}}"#,
            r.quic, r.api
        )),
    );
    assert!(code == 200 || code == 204, "add learner: {code} {body}");
    let (code, body) = cluster.api("POST", &format!("/v1/cluster/voters/{wiped}"), None);
    assert!(code == 200 || code == 204, "promote: {code} {body}");
    assert!(
        wait_until(Duration::from_secs(30), || missing_on(&cluster, wiped, &ok)
            == Some(0)),
        "the wiped replica did not catch up: {:?} missing",
        missing_on(&cluster, wiped, &ok)
    );
    let status = cluster.status(wiped).expect("status");
    assert!(
        status["snapshot"].as_u64().is_some(),
        "the wiped replica caught up without a snapshot: {status}"
    );
    let (code, body) = http_request(
        cluster.replica(wiped).api,
        "GET",
        "/v1/cluster",
        OPERATOR_TOKEN,
        None,
    )
    .expect("answer");
    assert_eq!(code, 200);
    assert!(body.contains("\"voter\""), "{body}");
}
