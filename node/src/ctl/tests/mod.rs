//! `tongdai ctl` against a real API server on a loopback port (over the control
//! plane's in-memory cluster): round trips of every resource, errors, redirects.

mod trunks;

use clap::Parser;
use serde_json::{Value, json};
use tongdai_control_plane::api::AuthConfig;
use tongdai_control_plane::api::testing::{MemoryCluster, Role, TestServer};
use tongdai_control_plane::model::Id;
use tongdai_control_plane::raft::Member;

use super::{CtlArgs, CtlError, run};

const OPERATOR: &str = "operator-secret-0123456789";

#[derive(Debug, Parser)]
struct TestCli {
    #[command(flatten)]
    args: CtlArgs,
}

fn server(cluster: &MemoryCluster) -> TestServer {
    let auth = AuthConfig::with_operator_token(OPERATOR).expect("long enough");
    TestServer::start(cluster.clone(), auth).expect("server starts")
}

/// Runs `tongdai ctl --api <server> --token <token> <args>`; stdout on success.
fn ctl_as(api: &str, token: &str, args: &[&str]) -> Result<String, CtlError> {
    let mut argv = vec!["ctl", "--api", api, "--token", token];
    argv.extend_from_slice(args);
    let cli = TestCli::try_parse_from(argv).map_err(|e| CtlError::Usage(e.to_string()))?;
    let mut out = Vec::new();
    run(cli.args, &mut out)?;
    Ok(String::from_utf8(out).expect("UTF-8 output"))
}

fn ctl(s: &TestServer, args: &[&str]) -> String {
    ctl_as(&s.url(), OPERATOR, args).unwrap_or_else(|e| panic!("ctl {args:?}: {e}"))
}

fn ctl_json(s: &TestServer, args: &[&str]) -> Value {
    let mut with = vec!["--json"];
    with.extend_from_slice(args);
    serde_json::from_str(&ctl(s, &with)).expect("JSON output")
}

/// Command-line words, split on spaces.
fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

fn id(s: &str) -> Id {
    Id::new(s).expect("valid")
}

/// The cells of the table's lines, split on runs of two or more spaces.
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

#[test]
fn tenant_round_trip() {
    let cluster = MemoryCluster::new();
    let s = server(&cluster);
    let created = ctl(&s, &["tenant", "create", "acme", "--name", "ACME Vietnam"]);
    assert_eq!(
        rows(&created),
        [
            vec![
                "ID",
                "NAME",
                "MAX_CALLS",
                "MAX_CALL_RATE",
                "MAX_REGISTRATIONS",
                "CODECS",
                "RECORDING",
                "OUTBOUND_TRUNK",
                "CALLER_ID",
            ],
            vec![
                "acme",
                "ACME Vietnam",
                "100",
                "10",
                "100",
                "pcmu,pcma,telephone_event",
                "on_demand",
                "-",
                "-"
            ],
        ]
    );
    ctl(
        &s,
        &[
            "tenant",
            "create",
            "beta",
            "--name",
            "Beta",
            "--max-calls",
            "5",
        ],
    );
    let list = ctl(&s, &["tenant", "list"]);
    // Aligned: every column starts at the same offset on every line.
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 3, "{list}");
    let col = lines[0].find("NAME").expect("header");
    assert!(
        lines[1..]
            .iter()
            .all(|l| l[col..].starts_with(|c: char| c != ' ') && l[..col].ends_with("  ")),
        "{list}"
    );
    let got = ctl_json(&s, &["tenant", "get", "beta"]);
    assert_eq!(got["quotas"]["max_concurrent_calls"], 5);
    ctl(
        &s,
        &["tenant", "update", "beta", "--max-registrations", "7"],
    );
    let got = ctl_json(&s, &["tenant", "get", "beta"]);
    assert_eq!(got["quotas"]["max_registrations"], 7);
    assert_eq!(
        got["quotas"]["max_concurrent_calls"], 5,
        "untouched fields stay"
    );
    assert_eq!(got["name"], "Beta");
    assert_eq!(
        ctl(&s, &["tenant", "delete", "beta"]),
        "deleted tenant beta\n"
    );
    let err = ctl_as(&s.url(), OPERATOR, &["tenant", "get", "beta"]).expect_err("gone");
    assert!(
        matches!(&err, CtlError::Api { status: 404, field: Some(f), .. } if f == "tenant"),
        "{err:?}"
    );
    assert_eq!(err.exit_code(), 1);
    assert_eq!(cluster.state().tenants().count(), 1);
}

#[test]
fn tenant_resources_round_trip() {
    let cluster = MemoryCluster::new();
    let s = server(&cluster);
    ctl(&s, &["tenant", "create", "acme", "--name", "ACME"]);
    let t = ["-t", "acme"];
    let with =
        |args: &[&'static str]| -> Vec<&'static str> { t.iter().chain(args).copied().collect() };
    for ext in ["1001", "1002"] {
        ctl(
            &s,
            &with(&[
                "extension",
                "create",
                ext,
                "--name",
                "Agent",
                "--password",
                "correct horse",
            ]),
        );
    }
    let created = ctl_json(
        &s,
        &with(&[
            "extension",
            "create",
            "1003",
            "--name",
            "Lan",
            "--password",
            "correct horse",
            "--forward",
            "+84901234567",
            "--forward-when",
            "busy,no-answer",
        ]),
    );
    assert_eq!(
        created["forward_to_mobile"],
        json!({"number": "+84901234567", "when": ["no_answer", "busy"]})
    );
    let before = cluster
        .state()
        .extension(&id("acme"), &id("1003"))
        .cloned()
        .expect("stored");
    ctl(
        &s,
        &with(&[
            "extension",
            "update",
            "1003",
            "--name",
            "Lan N.",
            "--no-forward",
        ]),
    );
    let after = cluster
        .state()
        .extension(&id("acme"), &id("1003"))
        .cloned()
        .expect("stored");
    assert_eq!(
        (
            after.display_name.as_str(),
            &after.ha1_md5,
            after.forward_to_mobile.is_none()
        ),
        ("Lan N.", &before.ha1_md5, true)
    );
    let list = ctl(&s, &with(&["extension", "list"]));
    assert_eq!(rows(&list)[3], ["1003", "Lan N.", "-"]);
    assert!(!list.contains("ha1"));

    ctl(
        &s,
        &with(&[
            "hunt-group",
            "create",
            "sales",
            "--members",
            "1001,1002",
            "--no-answer",
            "external:+84901234567",
        ]),
    );
    ctl(
        &s,
        &with(&["queue", "create", "support", "--name", "Support"]),
    );
    ctl(
        &s,
        &with(&[
            "hunt-group",
            "update",
            "sales",
            "--strategy",
            "ring-all",
            "--no-answer",
            "queue:support",
        ]),
    );
    assert_eq!(
        rows(&ctl(&s, &with(&["hunt-group", "get", "sales"])))[1],
        ["sales", "ring_all", "20", "1001,1002", "queue:support"]
    );
    ctl(
        &s,
        &with(&["number", "create", "18001234", "--dest", "hunt-group:sales"]),
    );
    ctl(
        &s,
        &with(&["number", "update", "18001234", "--dest", "extension:1003"]),
    );
    assert_eq!(
        rows(&ctl(&s, &with(&["number", "list"])))[1],
        ["18001234", "toll_free_1800", "-", "extension:1003", "-"]
    );
    ctl(&s, &with(&["queue", "update", "support", "--max-len", "9"]));
    assert_eq!(
        ctl_json(&s, &with(&["queue", "get", "support"]))["max_len"],
        9
    );
    ctl(
        &s,
        &with(&[
            "agent",
            "create",
            "1001",
            "--state",
            "paused",
            "--pause-reason",
            "lunch",
            "--skill",
            "english=80",
        ]),
    );
    assert_eq!(
        rows(&ctl(&s, &with(&["agent", "list"])))[1],
        ["1001", "paused", "lunch", "english=80"]
    );
    let back = ctl_json(
        &s,
        &with(&["agent", "update", "1001", "--state", "available"]),
    );
    assert_eq!(
        back,
        json!({"tenant": "acme", "extension": "1001", "state": "available", "skills": {"english": 80}})
    );
    // Queue members are agents; the ACD settings round-trip.
    let q = ctl_json(
        &s,
        &with(&[
            "queue",
            "update",
            "support",
            "--strategy",
            "round-robin",
            "--member",
            "1001:2",
            "--wrap-up-secs",
            "15",
            "--tier-widen-secs",
            "30",
            "--overflow",
            "external:0281234567",
            "--overflow-after-secs",
            "120",
        ]),
    );
    assert_eq!(q["strategy"], "round_robin");
    assert_eq!(q["members"], json!([{"extension": "1001", "penalty": 2}]));
    assert_eq!(
        (q["wrap_up_secs"].clone(), q["tier_widen_secs"].clone()),
        (json!(15), json!(30))
    );
    assert_eq!(
        q["overflow"],
        json!({"destination": {"type": "external", "number": "0281234567"}, "at_len": 0, "after_wait_secs": 120})
    );
    let q = ctl_json(
        &s,
        &with(&[
            "queue",
            "update",
            "support",
            "--no-members",
            "--no-overflow",
        ]),
    );
    assert_eq!(q["members"], json!([]));
    assert!(q.get("overflow").is_none(), "{q}");

    for del in [
        ["agent", "delete", "1001"],
        ["number", "delete", "18001234"],
        ["hunt-group", "delete", "sales"],
        ["queue", "delete", "support"],
        ["extension", "delete", "1003"],
    ] {
        assert!(ctl(&s, &with(&del)).starts_with("deleted "));
    }
    assert_eq!(ctl_json(&s, &with(&["agent", "list"])), json!([]));
    assert_eq!(ctl_json(&s, &with(&["queue", "list"])), json!([]));
    assert_eq!(
        rows(&ctl(&s, &with(&["hunt-group", "list"]))).len(),
        1,
        "header only"
    );
}

#[test]
fn tenant_tokens_see_only_their_tenant() {
    let cluster = MemoryCluster::new();
    let s = server(&cluster);
    for t in ["acme", "beta"] {
        ctl(&s, &["tenant", "create", t, "--name", t]);
    }
    let created = ctl_json(&s, &["-t", "acme", "token", "create", "crm"]);
    let token = created["token"].as_str().expect("token").to_owned();
    assert_eq!(
        ctl(&s, &["-t", "acme", "token", "list"]),
        "TENANT  ID\nacme    crm\n"
    );
    let own = ctl_as(&s.url(), &token, &["tenant", "list"]).expect("own tenant");
    assert_eq!(rows(&own).len(), 2, "{own}");
    let err = ctl_as(&s.url(), &token, &["-t", "beta", "extension", "list"]).expect_err("not beta");
    assert!(matches!(err, CtlError::Api { status: 404, .. }), "{err}");
    let err = ctl_as(&s.url(), &token, &["cluster", "status"]).expect_err("operator only");
    assert!(matches!(err, CtlError::Api { status: 403, .. }), "{err}");
    // A token file works like --token.
    let file = std::env::temp_dir().join(format!("tongdai-ctl-token-{}", std::process::id()));
    std::fs::write(&file, format!("{token}\n")).expect("write token file");
    let cli = TestCli::try_parse_from([
        "ctl",
        "--api",
        &s.url(),
        "--token-file",
        file.to_str().expect("path"),
        "tenant",
        "list",
    ])
    .expect("parses");
    let mut out = Vec::new();
    let result = run(cli.args, &mut out);
    let _ = std::fs::remove_file(&file);
    result.expect("token file accepted");
    ctl(&s, &["-t", "acme", "token", "revoke", "crm"]);
    let err = ctl_as(&s.url(), &token, &["tenant", "list"]).expect_err("revoked");
    assert!(err.to_string().contains("TONGDAI_TOKEN"), "{err}");
}

#[test]
fn registrations_and_cluster() {
    let cluster = MemoryCluster::new();
    let s = server(&cluster);
    assert_eq!(rows(&ctl(&s, &["registration", "list"]))[0][0], "TENANT");
    let status = ctl(&s, &["cluster", "status"]);
    assert_eq!(rows(&status)[1][..2], ["1", "Leader"]);
    let added = ctl(
        &s,
        &[
            "cluster",
            "add-learner",
            "2",
            "--raft-addr",
            "10.0.0.2:7000",
            "--api-addr",
            "10.0.0.2:8080",
        ],
    );
    assert!(
        rows(&added)
            .iter()
            .any(|r| r.len() > 2 && r[..2] == ["2", "learner"]),
        "{added}"
    );
    let promoted = ctl_json(&s, &["cluster", "promote", "2"]);
    assert_eq!(promoted["members"][1]["role"], "voter");
    let removed = ctl_json(&s, &["cluster", "remove", "2"]);
    assert_eq!(removed["members"].as_array().map(Vec::len), Some(1));
}

#[test]
fn api_errors_carry_message_and_field() {
    let cluster = MemoryCluster::new();
    let s = server(&cluster);
    ctl(&s, &["tenant", "create", "acme", "--name", "ACME"]);
    let args = words("-t acme extension create 1001 --name A --password short");
    let err = ctl_as(&s.url(), OPERATOR, &args).expect_err("refused");
    let CtlError::Api { status, field, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!((*status, field.as_deref()), (422, Some("password")));
    assert!(
        err.to_string()
            .contains("(field: password) [HTTP 422 invalid_value]"),
        "{err}"
    );
    assert_eq!(err.exit_code(), 1);
    let err = ctl_as(&s.url(), "wrong-token", &["tenant", "list"]).expect_err("401");
    assert!(matches!(err, CtlError::Api { status: 401, .. }));
}

#[test]
fn usage_errors_exit_2() {
    let cluster = MemoryCluster::new();
    let s = server(&cluster);
    let usage = |r: Result<String, CtlError>| match r {
        Err(e) => assert_eq!(e.exit_code(), 2, "{e}"),
        Ok(out) => panic!("accepted: {out}"),
    };
    usage(ctl_as(&s.url(), OPERATOR, &["number", "list"])); // no tenant
    usage(ctl_as(&s.url(), "  ", &["tenant", "list"])); // no token
    usage(ctl_as("https://127.0.0.1:1", OPERATOR, &["tenant", "list"]));
    usage(ctl_as("ftp://x", OPERATOR, &["tenant", "list"]));
    // Rejected by the parser, which exits 2 itself.
    for bad in [
        "-t acme number create 18001234 --dest fax:1",
        "-t acme agent create 1001 --skill english",
        "-t acme agent create 1001 --skill english=300",
        "cluster promote two",
        "-t acme extension create 1001 --name A --password x --ha1-md5 y",
    ] {
        let mut argv = vec!["ctl"];
        argv.extend(words(bad));
        let err = TestCli::try_parse_from(argv).expect_err("usage error");
        assert_eq!(err.exit_code(), 2, "{bad:?}");
    }
    // Nobody listening: a runtime failure, not a usage error.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let err = ctl_as(&format!("http://{closed}"), OPERATOR, &["tenant", "list"])
        .expect_err("unreachable");
    assert!(matches!(err, CtlError::Transport(_)), "{err:?}");
    assert_eq!(err.exit_code(), 1);
}

#[test]
fn writes_and_reads_follow_the_redirect_to_the_leader() {
    let leader = MemoryCluster::new();
    let l = server(&leader);
    leader
        .apply(tongdai_control_plane::model::Command::CreateTenant(
            tongdai_control_plane::model::Tenant {
                id: id("acme"),
                name: "ACME".into(),
                quotas: tongdai_control_plane::model::Quotas {
                    max_concurrent_calls: 1,
                    max_call_attempts_per_sec: 1,
                    max_registrations: 1,
                },
                calls: Default::default(),
            },
        ))
        .expect("seeded");
    let member = Member {
        raft_addr: "127.0.0.1:1".into(),
        api_addr: l.addr.to_string(),
    };
    let follower = leader.replica(2, Role::Follower(Some((1, member))));
    let f = server(&follower);
    ctl(&f, &["tenant", "create", "beta", "--name", "Beta"]);
    ctl(&f, &["tenant", "update", "acme", "--name", "ACME VN"]);
    ctl(
        &f,
        &[
            "-t", "acme", "queue", "create", "support", "--name", "Support",
        ],
    );
    ctl(&f, &["-t", "acme", "queue", "delete", "support"]);
    let state = leader.state();
    assert!(state.tenant(&id("beta")).is_some());
    assert_eq!(
        state.tenant(&id("acme")).map(|t| t.name.as_str()),
        Some("ACME VN")
    );
    assert_eq!(state.queues(&id("acme")).count(), 0);
    assert_eq!(state.revision(), 5);
    assert!(
        follower.state().tenant(&id("beta")).is_none(),
        "nothing was written on the follower"
    );
    assert_eq!(ctl_json(&f, &["tenant", "get", "beta"])["name"], "Beta");
}
