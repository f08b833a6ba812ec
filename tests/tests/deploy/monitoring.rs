//! The alert rules (promtool) and the Grafana dashboards (JSON, PromQL, metric names).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;
use tongdai_tests::deploy::{
    base_metric, dashboard_queries, metric_in_code, metric_names, output, plain_promql, promtool,
    run_ok, yaml_file,
};
use tongdai_tests::{TempDir, workspace_root};

use super::*;

#[test]
fn alert_rules_pass_promtool_check_and_unit_tests() {
    let dir = workspace_root().join("deploy/prometheus");
    let out = run_ok(
        Command::new(promtool())
            .args(["check", "rules"])
            .arg(dir.join("rules/tongdai.rules.yml")),
    );
    assert!(out.contains("SUCCESS"), "{out}");
    let out = run_ok(
        Command::new(promtool())
            .args(["test", "rules", "tests/tongdai.rules.test.yml"])
            .current_dir(&dir),
    );
    assert!(out.contains("SUCCESS"), "{out}");
    // Every alert has a unit test.
    let rules = yaml_file(&dir.join("rules/tongdai.rules.yml"));
    let tests = yaml_file(&dir.join("tests/tongdai.rules.test.yml"));
    let tested: BTreeSet<&str> = tests["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .flat_map(|t| t["alert_rule_test"].as_array().into_iter().flatten())
        .filter(|t| !t["exp_alerts"].as_array().expect("exp_alerts").is_empty())
        .map(|t| str_of(&t["alertname"], "alertname"))
        .collect();
    for alert in alert_rules(&rules).keys() {
        assert!(tested.contains(alert.as_str()), "no test sees {alert} fire");
    }
}

/// Alert name -> expression.
fn alert_rules(rules: &Value) -> BTreeMap<String, String> {
    rules["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules"))
        .map(|r| {
            (
                str_of(&r["alert"], "alert").to_owned(),
                str_of(&r["expr"], "expr").to_owned(),
            )
        })
        .collect()
}

#[test]
fn dashboards_are_valid_and_query_only_known_metrics() {
    let files = dashboard_files();
    assert_eq!(
        files.len(),
        4,
        "cluster overview, control plane, media, tenants/queues"
    );
    let mut uids = BTreeSet::new();
    let mut queries = Vec::new();
    for path in &files {
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let d = dashboard(path);
        assert!(
            uids.insert(d["uid"].as_str().expect("uid").to_owned()),
            "{name}: uid reused"
        );
        assert!(
            d["tags"]
                .as_array()
                .expect("tags")
                .contains(&Value::from("tongdai"))
        );
        let panels = d["panels"].as_array().expect("panels");
        let mut ids = BTreeSet::new();
        for panel in panels {
            assert!(
                ids.insert(panel["id"].as_u64().expect("panel id")),
                "{name}: panel id reused"
            );
            if panel["type"] == "row" {
                continue;
            }
            let title = panel["title"].as_str().unwrap_or("?");
            assert_eq!(
                panel["datasource"]["uid"], "${datasource}",
                "{name}: panel {title:?} must use the data source variable"
            );
            assert!(
                panel["targets"].as_array().is_some_and(|t| !t.is_empty()),
                "{name}: panel {title:?} has no query"
            );
        }
        for (place, expr) in dashboard_queries(&d) {
            queries.push((format!("{name} {place}"), expr));
        }
    }

    // PromQL syntax: every query as a recording rule through promtool.
    let check_dir = TempDir::new("dashboard-promql");
    let mut rules = String::from("groups:\n  - name: dashboards\n    rules:\n");
    for (i, (_, expr)) in queries.iter().enumerate() {
        let expr = serde_json::to_string(&plain_promql(expr)).expect("quote");
        rules.push_str(&format!(
            "      - record: dashboard:query_{i}\n        expr: {expr}\n"
        ));
    }
    let path = check_dir.path().join("dashboards.rules.yml");
    std::fs::write(&path, rules).expect("write rules");
    let out = output(Command::new(promtool()).args(["check", "rules"]).arg(&path));
    assert!(
        out.status.success(),
        "a dashboard query is not valid PromQL:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Every metric is exported by the code, or pending and listed above.
    let alert_file = yaml_file(&workspace_root().join("deploy/prometheus/rules/tongdai.rules.yml"));
    let alerts = alert_rules(&alert_file);
    let all = queries.iter().cloned().chain(
        alerts
            .iter()
            .map(|(a, e)| (format!("alert {a}"), e.clone())),
    );
    let mut used = BTreeSet::new();
    for (place, expr) in all {
        let names = metric_names(&expr);
        assert!(!names.is_empty(), "{place}: no metric in {expr:?}");
        for name in names {
            let base = base_metric(&name);
            used.insert(base.to_owned());
            assert!(
                name == "up" || metric_in_code(base),
                "{place}: metric {name} is not exported by node/src or control-plane/src: {expr}"
            );
        }
    }
}
