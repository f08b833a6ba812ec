//! The `tongdai` binary's contract with operators: exit codes and messages for the
//! commands that need no SIP server.

use std::path::PathBuf;
use std::process::{Command, Output};

fn tongdai(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tongdai"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run tongdai")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A config file unique to this test, removed when dropped.
struct TempConfig(PathBuf);

impl TempConfig {
    fn new(name: &str, contents: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("tongdai-cli-{}-{name}.toml", std::process::id()));
        std::fs::write(&path, contents).expect("write temp config");
        TempConfig(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("UTF-8 temp path")
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn version_exits_zero() {
    let out = tongdai(&["--version"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).starts_with("tongdai "),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn usage_errors_exit_two() {
    let out = tongdai(&["node"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--config <FILE>"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(tongdai(&["frobnicate"], &[]).status.code(), Some(2));
}

#[test]
fn config_check_prints_the_effective_config() {
    let file = TempConfig::new("ok", "[sip]\nlisten_tcp = \"off\"\n");
    let out = tongdai(
        &["config", "check", "--config", file.path()],
        &[
            ("TONGDAI_SIP_UDP_WORKERS", "3"),
            ("TONGDAI_SIP_LISTN_UDP", "0.0.0.0:5060"),
        ],
    );
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("listen_tcp = \"off\""), "{stdout}");
    assert!(stdout.contains("udp_workers = 3"), "{stdout}");
    assert!(
        stderr.starts_with("warning: ignoring environment variable TONGDAI_SIP_LISTN_UDP"),
        "{stderr}"
    );
    // What it prints is itself a valid config.
    let printed = TempConfig::new("printed", &stdout);
    let again = tongdai(&["config", "check", "-c", printed.path()], &[]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
}

#[test]
fn config_errors_exit_two_with_only_the_message() {
    let file = TempConfig::new("bad", "[registrar]\nmin_expires = 30\nmax_expires = 10\n");
    for args in [
        vec!["config", "check", "--config", file.path()],
        vec!["node", "--config", file.path()],
        vec!["up", "--config", file.path()],
    ] {
        let out = tongdai(&args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(
            text(&out.stderr),
            "registrar.min_expires (30) must be <= registrar.max_expires (10)\n",
            "{args:?}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn env_errors_name_the_variable() {
    let out = tongdai(&["up"], &[("TONGDAI_SIP_LISTEN_UDP", "127.0.0.1:99999")]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "TONGDAI_SIP_LISTEN_UDP: \"127.0.0.1:99999\" is not a socket address \
         (expected IP:port, e.g. 0.0.0.0:5060 or [::]:5060, or \"off\" to disable)\n"
    );
}

#[test]
fn missing_config_file_exits_two() {
    let out = tongdai(&["node", "--config", "/nonexistent/tongdai.toml"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with("cannot read config file /nonexistent/tongdai.toml: "),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn bad_rust_log_is_a_config_error() {
    let out = tongdai(
        &["up"],
        &[
            ("RUST_LOG", "=nonsense"),
            ("TONGDAI_HTTP_LISTEN", "127.0.0.1:0"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with("RUST_LOG: \"=nonsense\" is not a valid log filter"),
        "{}",
        text(&out.stderr)
    );
}

/// A directory unique to this test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("tongdai-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("UTF-8 temp path")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn certs_init_refuses_to_replace_a_ca_and_issue_signs_with_it() {
    let dir = TempDir::new("certs");
    let init = tongdai(&["certs", "init", "--dir", dir.path()], &[]);
    let stdout = text(&init.stdout);
    assert_eq!(init.status.code(), Some(0), "{}", text(&init.stderr));
    assert!(
        stdout.contains(&format!("wrote {}/ca.pem", dir.path())),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("wrote {}/ca.key", dir.path())),
        "{stdout}"
    );
    let ca = std::fs::read(dir.0.join("ca.pem")).expect("ca.pem written");

    let again = tongdai(&["certs", "init", "--dir", dir.path()], &[]);
    let stderr = text(&again.stderr);
    assert_eq!(again.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("a CA already exists at"), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert!(again.stdout.is_empty());
    assert_eq!(std::fs::read(dir.0.join("ca.pem")).expect("ca.pem"), ca);

    let issue = tongdai(
        &[
            "certs",
            "issue",
            "--name",
            "replica-1",
            "--role",
            "replica",
            "--san",
            "10.0.0.5",
            "--dir",
            dir.path(),
        ],
        &[],
    );
    let stdout = text(&issue.stdout);
    assert_eq!(issue.status.code(), Some(0), "{}", text(&issue.stderr));
    assert!(stdout.contains("replica-1.pem"), "{stdout}");
    assert!(stdout.contains("replica-1.key"), "{stdout}");
    let identity = tongdai_control_plane::quic::Identity::from_dir(&dir.0, "replica-1")
        .expect("the issued certificate loads");
    assert_eq!(identity.name(), "replica-1");
    assert_eq!(identity.role(), tongdai_control_plane::quic::Role::Replica);

    // TONGDAI_CERTS_DIR stands in for --dir.
    let by_env = tongdai(
        &["certs", "issue", "--name", "node-1", "--role", "node"],
        &[("TONGDAI_CERTS_DIR", dir.path())],
    );
    assert_eq!(by_env.status.code(), Some(0), "{}", text(&by_env.stderr));
    assert!(dir.0.join("node-1.pem").exists() && dir.0.join("node-1.key").exists());

    let forced = tongdai(&["certs", "init", "--dir", dir.path(), "--force"], &[]);
    assert_eq!(forced.status.code(), Some(0), "{}", text(&forced.stderr));
    assert_ne!(std::fs::read(dir.0.join("ca.pem")).expect("ca.pem"), ca);
}

#[test]
fn certs_issue_errors_exit_two_and_say_what_to_do() {
    let dir = TempDir::new("certs-errors");
    let no_ca = tongdai(
        &[
            "certs",
            "issue",
            "--name",
            "node-1",
            "--role",
            "node",
            "--dir",
            dir.path(),
        ],
        &[],
    );
    let stderr = text(&no_ca.stderr);
    assert_eq!(no_ca.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("ca.pem"), "{stderr}");
    assert!(stderr.contains("tongdai certs init"), "{stderr}");

    let bad_role = tongdai(
        &[
            "certs",
            "issue",
            "--name",
            "x",
            "--role",
            "boss",
            "--dir",
            dir.path(),
        ],
        &[],
    );
    assert_eq!(bad_role.status.code(), Some(2));
    assert!(
        text(&bad_role.stderr).contains("replica, node, admin"),
        "{}",
        text(&bad_role.stderr)
    );

    assert_eq!(
        tongdai(&["certs", "init", "--dir", dir.path()], &[])
            .status
            .code(),
        Some(0)
    );
    let bad_name = tongdai(
        &[
            "certs",
            "issue",
            "--name",
            "../x",
            "--role",
            "node",
            "--dir",
            dir.path(),
        ],
        &[],
    );
    assert_eq!(bad_name.status.code(), Some(2));
    assert!(
        text(&bad_name.stderr).starts_with("invalid certificate name"),
        "{}",
        text(&bad_name.stderr)
    );
}

#[test]
fn a_node_without_control_plane_replicas_exits_two_and_says_how_to_set_them() {
    let config = TempConfig::new("no-replicas", "[sip]\nlisten_udp = \"127.0.0.1:0\"\n");
    let out = tongdai(&["node", "--config", config.path()], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("control_plane.replicas"), "{err}");
    assert!(err.contains("TONGDAI_CONTROL_PLANE_REPLICAS"), "{err}");
}

#[test]
fn replica_config_errors_name_the_key() {
    let config = TempConfig::new(
        "bad-members",
        "[replica]\ninitial_members = \"1@127.0.0.1:7100\"\nlisten = \"127.0.0.1:0\"\n\
         api_listen = \"127.0.0.1:0\"\n",
    );
    let out = tongdai(&["control-plane", "--config", config.path()], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("replica.initial_members"), "{err}");
    assert!(err.contains("id@quic_addr@api_addr"), "{err}");
}
