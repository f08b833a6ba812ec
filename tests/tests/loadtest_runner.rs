//! The load-test runner's own checks (`loadtest/run --self-test`: scenario files refused
//! with the field named, SIPp and Prometheus parsing), run with the rest of the suite.
//! The load itself is not run here: see loadtest/README.md.

use std::process::{Command, Stdio};

use tongdai_tests::{TempDir, require_tool, workspace_root};

#[test]
fn loadtest_runner_self_test_passes() {
    let python = require_tool(
        "python3",
        "apt-get install -y python3 (3.11 or newer: tomllib)",
    );
    let out = Command::new(python)
        .arg(workspace_root().join("loadtest/run"))
        .arg("--self-test")
        .stdin(Stdio::null())
        .output()
        .expect("run loadtest/run --self-test");
    assert!(
        out.status.success(),
        "loadtest/run --self-test failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // unittest reports on stderr; an empty suite would also "pass", so check it ran some.
    let report = String::from_utf8_lossy(&out.stderr);
    let ran: usize = report
        .lines()
        .find_map(|l| {
            l.strip_prefix("Ran ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .expect("unittest's 'Ran N tests' line");
    assert!(ran >= 10, "only {ran} runner tests ran:\n{report}");
}

#[test]
fn loadtest_runner_refuses_a_queue_peak_with_more_agents_than_users_before_starting_anything() {
    let python = require_tool("python3", "apt-get install -y python3");
    let dir = TempDir::new("loadtest-check");
    let scenario = dir.path().join("queue.toml");
    std::fs::write(
        &scenario,
        "[users]\ncount = 10\n[[phase]]\nkind = \"queue_peak\"\nagents = 11\nrate = 5\nduration_s = 10\n",
    )
    .expect("write scenario");
    let results = dir.path().join("results");
    let out = Command::new(python)
        .arg(workspace_root().join("loadtest/run"))
        .arg(&scenario)
        .arg("--results")
        .arg(&results)
        .arg("--no-plots")
        .stdin(Stdio::null())
        .output()
        .expect("run loadtest/run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("phase[1].agents"), "stderr: {stderr}");
    assert!(stderr.contains("more than users.count"), "stderr: {stderr}");
    assert!(!results.exists(), "a refused scenario must not start a run");
}
