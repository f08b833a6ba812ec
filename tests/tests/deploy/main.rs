//! The deployment artifacts, checked with the real tools: the Helm chart (`helm lint`,
//! `helm template`, every manifest validated against the Kubernetes JSON schemas, the
//! values schema, the rendered TOML configs accepted by `tongdai config check`), the alert
//! rules (`promtool check rules`, `promtool test rules`), the Grafana dashboards (valid
//! JSON, valid PromQL, only metrics the code exports or that are listed as pending),
//! docker-compose and the Dockerfile.
//!
//! A missing tool fails the test with how to install it (`tests/run` installs them all).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tongdai_tests::deploy::{chart_dir, ci_values_files, helm_template, output, yaml_documents};
use tongdai_tests::{TempDir, tongdai_bin, workspace_root};

/// Kinds whose schemas are custom resources (not in the Kubernetes schemas):
/// prometheus-operator and cert-manager. Their shape is checked by the tests below.
const CUSTOM_KINDS: &[&str] = &["ServiceMonitor", "PrometheusRule", "Certificate", "Issuer"];

/// The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and a recent one.
const KUBERNETES_VERSIONS: &[&str] = &["1.27.0", "1.33.0"];

fn values_sets() -> Vec<(String, Option<PathBuf>)> {
    let mut sets = vec![("default values".to_owned(), None)];
    for file in ci_values_files() {
        let name = file
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        sets.push((name, Some(file)));
    }
    assert!(
        sets.len() >= 3,
        "the chart is tested with its defaults and at least two files in helm/tongdai/ci/"
    );
    sets
}

fn render(values: Option<&Path>) -> String {
    helm_template(values, &[]).unwrap_or_else(|e| panic!("helm template failed:\n{e}"))
}

fn rendered(values: Option<&Path>) -> Vec<Value> {
    yaml_documents(&render(values))
}

fn ci_file(name: &str) -> PathBuf {
    chart_dir().join("ci").join(name)
}

fn str_of<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {v}"))
}

/// The environment a pod's container gets, with Kubernetes' `$(VAR)` references and the
/// values from fields and Secrets filled in as the kubelet and the entrypoint would.
fn container_env(container: &Value, pod_ip: &str) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for var in container["env"].as_array().into_iter().flatten() {
        let name = str_of(&var["name"], "env name").to_owned();
        let value = if let Some(value) = var["value"].as_str() {
            value.replace("$(POD_IP)", pod_ip)
        } else if var["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name" {
            "tongdai-node-7d9cf".to_owned()
        } else if var["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP" {
            pod_ip.to_owned()
        } else if var["valueFrom"]["secretKeyRef"].is_object() {
            "an-operator-token-of-48-random-characters-000000".to_owned()
        } else {
            panic!("unexpected env source {var}");
        };
        env.push((name, value));
    }
    env
}

/// `tongdai config check` on a rendered config with a pod's environment: it must pass
/// without warnings (a warning is an environment variable that sets nothing).
fn config_check(what: &str, toml: &str, env: &[(String, String)]) -> String {
    let dir = TempDir::new("config-check");
    let path = dir.path().join("tongdai.toml");
    std::fs::write(&path, toml).expect("write config");
    let out = output(
        Command::new(tongdai_bin())
            .args(["config", "check", "--config"])
            .arg(&path)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v))),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "{what}: tongdai config check refused it ({}):\n{stderr}\n--- config:\n{toml}\n--- env: {env:?}",
        out.status
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

fn dashboard_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(workspace_root().join("deploy/grafana/dashboards"))
            .expect("read deploy/grafana/dashboards")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
    files.sort();
    files
}

fn dashboard(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("read dashboard");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

mod chart;
mod compose;
mod live;
mod monitoring;
