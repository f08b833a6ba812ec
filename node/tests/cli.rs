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
