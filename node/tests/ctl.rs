//! The `tongdai ctl` binary against a real API server: exit codes, stdout, stderr.

use std::process::{Command, Output};

use tongdai_control_plane::api::AuthConfig;
use tongdai_control_plane::api::testing::{MemoryCluster, TestServer};
use tongdai_control_plane::model::Id;

const OPERATOR: &str = "operator-secret-0123456789";

fn ctl(server: &TestServer, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tongdai"))
        .arg("ctl")
        .args(args)
        .env_clear()
        .env("TONGDAI_API", server.url())
        .env("TONGDAI_TOKEN", OPERATOR)
        .output()
        .expect("run tongdai")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn ctl_binary_round_trip_and_exit_codes() {
    let cluster = MemoryCluster::new();
    let auth = AuthConfig::with_operator_token(OPERATOR).expect("long enough");
    let server = TestServer::start(cluster.clone(), auth).expect("server starts");

    let out = ctl(&server, &["tenant", "create", "acme", "--name", "ACME"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = ctl(
        &server,
        &[
            "--tenant",
            "acme",
            "extension",
            "create",
            "1001",
            "--name",
            "Lan",
            "--password",
            "correct horse",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = ctl(&server, &["-t", "acme", "extension", "list"]);
    assert_eq!(text(&out.stdout), "EXT   NAME  FORWARD\n1001  Lan   -\n");

    // The API refuses: its message and field on stderr, exit 1.
    let out = ctl(
        &server,
        &[
            "-t",
            "acme",
            "extension",
            "create",
            "1002",
            "--name",
            "X",
            "--password",
            "short",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("error: password must be"), "{stderr}");
    assert!(stderr.contains("(field: password)"), "{stderr}");
    assert!(out.stdout.is_empty());

    // Bad usage: exit 2.
    let out = ctl(&server, &["extension", "list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--tenant"),
        "{}",
        text(&out.stderr)
    );
    let out = ctl(
        &server,
        &[
            "-t", "acme", "number", "create", "18001234", "--dest", "nowhere",
        ],
    );
    assert_eq!(out.status.code(), Some(2));

    let out = ctl(&server, &["-t", "acme", "extension", "delete", "1001"]);
    assert_eq!(text(&out.stdout), "deleted extension 1001\n");
    let acme = Id::new("acme").expect("valid id");
    assert_eq!(cluster.state().extensions(&acme).count(), 0);
}
