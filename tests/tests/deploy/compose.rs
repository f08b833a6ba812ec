//! docker-compose and the Dockerfile.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use tongdai_tests::deploy::yaml_file;
use tongdai_tests::workspace_root;

use super::*;

fn compose_env(service: &Value, token: &str) -> Vec<(String, String)> {
    service["environment"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let v = str_of(v, k);
            let v = if v.starts_with("${TONGDAI_OPERATOR_TOKEN:?") {
                token.to_owned()
            } else {
                v.to_owned()
            };
            (k.clone(), v)
        })
        .collect()
}

#[test]
fn docker_compose_runs_three_replicas_and_two_nodes_with_valid_configs() {
    let deploy = workspace_root().join("deploy");
    let compose = yaml_file(&deploy.join("docker-compose.yml"));
    let services = compose["services"].as_object().expect("services");
    let names: BTreeSet<&str> = services.keys().map(String::as_str).collect();
    for expected in [
        "certs",
        "replica-1",
        "replica-2",
        "replica-3",
        "node-1",
        "node-2",
    ] {
        assert!(names.contains(expected), "no service {expected}: {names:?}");
    }
    // The certificate names the certs service issues (`for name in ...; do tongdai certs issue`).
    let certs_script = str_of(&services["certs"]["command"][0], "certs command");
    assert!(certs_script.contains("tongdai certs init --dir /etc/tongdai/certs"));
    assert!(certs_script.contains("tongdai certs issue --name \"$$name\""));
    let issued: BTreeSet<&str> = certs_script
        .lines()
        .filter_map(|l| l.trim().strip_prefix("for name in "))
        .flat_map(|l| l.trim_end_matches("; do").split_whitespace())
        .collect();
    let replica_toml =
        std::fs::read_to_string(deploy.join("compose/replica.toml")).expect("replica.toml");
    let node_toml = std::fs::read_to_string(deploy.join("compose/node.toml")).expect("node.toml");
    let token = "compose-operator-token-0123456789";
    for i in 1..=3 {
        let name = format!("replica-{i}");
        let service = &services[&name];
        assert_eq!(service["command"][0], "control-plane");
        assert_eq!(
            service["depends_on"]["certs"]["condition"],
            "service_completed_successfully"
        );
        // Its certificate (replica-<id>) is one the certs service issues.
        assert!(
            issued.contains(name.as_str()),
            "certs does not issue {name}"
        );
        let effective = config_check(&name, &replica_toml, &compose_env(service, token));
        assert!(effective.contains(&format!("id = {i}\n")), "{effective}");
        assert!(
            effective.contains(&format!("{i}@{name}:7100@{name}:8080")),
            "{effective}"
        );
    }
    for i in 1..=2 {
        let name = format!("node-{i}");
        let service = &services[&name];
        assert_eq!(service["command"][0], "node");
        let effective = config_check(&name, &node_toml, &compose_env(service, token));
        assert!(
            effective.contains(&format!("name = \"{name}\"")),
            "{effective}"
        );
        assert!(
            issued.contains(name.as_str()),
            "certs does not issue {name}"
        );
        assert!(effective.contains("replicas = \"replica-1:7100,replica-2:7100,replica-3:7100\""));
    }
    // The compose Prometheus scrapes every replica and node under the rules' job names.
    let prometheus = yaml_file(&deploy.join("prometheus/prometheus.yml"));
    let jobs: BTreeMap<&str, Vec<&str>> = prometheus["scrape_configs"]
        .as_array()
        .expect("scrape_configs")
        .iter()
        .map(|c| {
            (
                str_of(&c["job_name"], "job_name"),
                c["static_configs"][0]["targets"]
                    .as_array()
                    .expect("targets")
                    .iter()
                    .map(|t| str_of(t, "target"))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        jobs["tongdai-control-plane"],
        ["replica-1:8080", "replica-2:8080", "replica-3:8080"]
    );
    assert_eq!(jobs["tongdai-node"], ["node-1:9060", "node-2:9060"]);
}

#[test]
fn dockerfile_builds_one_tongdai_binary_run_by_a_non_root_user() {
    let dockerfile =
        std::fs::read_to_string(workspace_root().join("deploy/Dockerfile")).expect("Dockerfile");
    let froms: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(
        froms.len(),
        2,
        "a build stage and a runtime stage: {froms:?}"
    );
    assert!(froms[0].contains("rust:") && froms[0].ends_with(" AS build"));
    assert!(froms[1].contains("debian:") && froms[1].contains("-slim"));
    assert!(dockerfile.contains("cargo build --release --locked -p tongdai-node --bin tongdai"));
    assert!(dockerfile.contains("COPY --from=build /out/tongdai /usr/local/bin/tongdai"));
    assert!(dockerfile.contains("\nUSER 10001:10001\n"));
    assert!(dockerfile.contains("ENTRYPOINT [\"tongdai\"]"));
    // The package and binary it builds exist under those names.
    let manifest =
        std::fs::read_to_string(workspace_root().join("node/Cargo.toml")).expect("node/Cargo.toml");
    assert!(manifest.contains("name = \"tongdai-node\""));
    assert!(manifest.contains("name = \"tongdai\""));
    // Nothing in the image sets config keys behind the operator's back.
    assert!(
        !dockerfile
            .lines()
            .any(|l| l.trim_start().starts_with("ENV ")),
        "no ENV"
    );
}
