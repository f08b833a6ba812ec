//! The Helm chart: lint, Kubernetes schemas, what each values file renders, the values
//! schema, the rendered configs, and the dashboards and rules it ships.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use tongdai_tests::deploy::{
    chart_dir, helm, helm_template, kubernetes_validate, named, of_kind, output, run_ok,
    yaml_documents, yaml_file,
};
use tongdai_tests::{TempDir, tongdai_bin, workspace_root};

use super::*;

#[test]
fn helm_lint_accepts_the_chart_with_every_values_file() {
    for (name, file) in values_sets() {
        let mut cmd = Command::new(helm());
        cmd.args(["lint", "--strict"]).arg(chart_dir());
        if let Some(file) = &file {
            cmd.arg("--values").arg(file);
        }
        let out = output(&mut cmd);
        assert!(
            out.status.success(),
            "helm lint with {name}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn rendered_manifests_validate_against_the_kubernetes_schemas() {
    let validate = kubernetes_validate();
    let dir = TempDir::new("k8s-validate");
    for (name, file) in values_sets() {
        let manifests = render(file.as_deref());
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, &manifests).expect("write manifests");
        let docs = yaml_documents(&manifests);
        assert!(docs.len() >= 7, "{name}: only {} manifests", docs.len());
        for version in KUBERNETES_VERSIONS {
            let out = output(
                Command::new(&validate)
                    .args(["--strict", "--kubernetes-version", version])
                    .arg(&path),
            );
            let report = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.status.success() && !report.contains("ERROR"),
                "{name} against Kubernetes {version}:\n{report}"
            );
            // Every Kubernetes resource was checked; only custom resources lack a schema.
            for line in report
                .lines()
                .filter(|l| l.contains("Couldn't find schema"))
            {
                assert!(
                    CUSTOM_KINDS
                        .iter()
                        .any(|k| line.contains(&format!("for kind {k} "))),
                    "{name}: a resource was not validated: {line}"
                );
            }
            let passed = report.lines().filter(|l| l.contains(" passed ")).count();
            let custom = docs
                .iter()
                .filter(|d| CUSTOM_KINDS.contains(&str_of(&d["kind"], "kind")))
                .count();
            assert_eq!(
                passed + custom,
                docs.len(),
                "{name} against Kubernetes {version}: not every manifest was validated:\n{report}"
            );
        }
    }
}

#[test]
fn default_values_render_a_quorum_safe_control_plane_and_drainable_nodes() {
    let docs = rendered(None);
    let sts = named(&docs, "StatefulSet", "-control-plane");
    assert_eq!(sts["spec"]["replicas"], 3);
    assert_eq!(sts["spec"]["podManagementPolicy"], "Parallel");
    let claims = sts["spec"]["volumeClaimTemplates"]
        .as_array()
        .expect("PVCs");
    assert_eq!(
        claims[0]["spec"]["resources"]["requests"]["storage"],
        "10Gi"
    );
    let headless = named(&docs, "Service", "-control-plane-peers");
    assert_eq!(headless["spec"]["clusterIP"], "None");
    assert_eq!(headless["spec"]["publishNotReadyAddresses"], true);
    assert_eq!(sts["spec"]["serviceName"], headless["metadata"]["name"]);
    let pod = &sts["spec"]["template"]["spec"];
    assert_eq!(pod["enableServiceLinks"], false);
    assert!(
        pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
            .is_array()
    );
    let replica = &pod["containers"][0];
    assert_eq!(replica["readinessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let pdb = named(&docs, "PodDisruptionBudget", "-control-plane");
    assert_eq!(pdb["spec"]["minAvailable"], 2, "a majority of 3");

    let nodes = named(&docs, "DaemonSet", "-node");
    let pod = &nodes["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(pod["dnsPolicy"], "ClusterFirstWithHostNet");
    assert_eq!(pod["terminationGracePeriodSeconds"], 3600);
    let node = &pod["containers"][0];
    assert_eq!(node["readinessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(node["readinessProbe"]["httpGet"]["port"], "http");
    assert_eq!(node["livenessProbe"]["httpGet"]["path"], "/livez");
    assert_eq!(
        node["lifecycle"]["preStop"]["exec"]["command"],
        serde_json::json!(["/bin/sleep", "5"])
    );
    let ports: Vec<(&str, &str)> = node["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| {
            (
                str_of(&p["name"], "port"),
                str_of(&p["protocol"], "protocol"),
            )
        })
        .collect();
    assert_eq!(
        ports,
        [("sip-udp", "UDP"), ("sip-tcp", "TCP"), ("http", "TCP")]
    );

    // Certificates from the hook Job; no cert-manager, no prometheus-operator resources.
    let job = named(&docs, "Job", "-certs");
    let hook = str_of(&job["metadata"]["annotations"]["helm.sh/hook"], "hook");
    assert!(hook.contains("pre-install"), "{hook}");
    let script = str_of(
        &job["spec"]["template"]["spec"]["initContainers"][0]["command"][2],
        "script",
    );
    assert!(
        script.contains("tongdai certs init --dir /work/all"),
        "{script}"
    );
    assert!(
        script.contains("tongdai certs issue --name replica --role replica"),
        "{script}"
    );
    assert!(
        script.contains("tongdai certs issue --name node --role node"),
        "{script}"
    );
    for kind in CUSTOM_KINDS {
        assert!(
            of_kind(&docs, kind).is_empty(),
            "{kind} rendered by default"
        );
    }
    // The dashboards, labelled for Grafana's sidecar.
    let dashboards: Vec<&Value> = of_kind(&docs, "ConfigMap")
        .into_iter()
        .filter(|d| d["metadata"]["labels"]["grafana_dashboard"] == "1")
        .collect();
    assert_eq!(dashboards.len(), dashboard_files().len());
}

#[test]
fn the_certs_job_uses_the_real_tongdai_certs_flags() {
    // The hook Job's script, run here against the real binary, makes the files the pods mount.
    let docs = rendered(None);
    let job = named(&docs, "Job", "-certs");
    let script = str_of(
        &job["spec"]["template"]["spec"]["initContainers"][0]["command"][2],
        "script",
    );
    let dir = TempDir::new("certs-job");
    let script = script.replace("/work", &dir.path().display().to_string());
    let bin_dir = tongdai_bin().parent().expect("bin dir").to_owned();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    run_ok(
        Command::new("/bin/sh")
            .args(["-ec", &script])
            .env("PATH", path),
    );
    let secret_files = |sub: &str| -> BTreeSet<String> {
        std::fs::read_dir(dir.path().join(sub))
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect()
    };
    let pods = secret_files("certs");
    let expected: BTreeSet<String> = [
        "ca.pem",
        "replica.pem",
        "replica.key",
        "node.pem",
        "node.key",
    ]
    .map(String::from)
    .into();
    assert_eq!(pods, expected);
    assert_eq!(
        secret_files("ca"),
        ["ca.key", "ca.pem"].map(String::from).into()
    );
    // The pods mount exactly those keys.
    for (kind, role) in [("StatefulSet", "replica"), ("DaemonSet", "node")] {
        let workload = of_kind(&docs, kind)[0];
        let volume = workload["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .find(|v| v["name"] == "certs")
            .expect("certs volume");
        let keys: BTreeSet<String> = volume["projected"]["sources"][0]["secret"]["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| str_of(&i["key"], "key").to_owned())
            .collect();
        let want: BTreeSet<String> = [
            "ca.pem".to_owned(),
            format!("{role}.pem"),
            format!("{role}.key"),
        ]
        .into();
        assert_eq!(keys, want, "{kind}");
        assert!(pods.is_superset(&keys));
    }
}

#[test]
fn five_replicas_with_servicemonitor_render_as_asked() {
    let docs = rendered(Some(&ci_file("five-replicas-servicemonitor.yaml")));
    let sts = named(&docs, "StatefulSet", "-control-plane");
    assert_eq!(sts["spec"]["replicas"], 5);
    assert!(
        sts["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
            ["requiredDuringSchedulingIgnoredDuringExecution"]
            .is_array()
    );
    let env = &sts["spec"]["template"]["spec"]["containers"][0]["env"][0];
    assert_eq!(env["valueFrom"]["secretKeyRef"]["name"], "tongdai-admin");
    assert!(
        of_kind(&docs, "Secret").is_empty(),
        "no generated token Secret with existingSecret"
    );
    assert_eq!(
        named(&docs, "PodDisruptionBudget", "-control-plane")["spec"]["minAvailable"],
        3,
        "a majority of 5"
    );
    let deployment = named(&docs, "Deployment", "-node");
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(
        deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"],
        0
    );
    assert_eq!(
        named(&docs, "PodDisruptionBudget", "-node")["spec"]["maxUnavailable"],
        1
    );

    let monitors = of_kind(&docs, "ServiceMonitor");
    assert_eq!(monitors.len(), 2);
    for monitor in monitors {
        assert_eq!(monitor["spec"]["jobLabel"], "tongdai.io/job");
        assert_eq!(
            monitor["metadata"]["labels"]["release"],
            "kube-prometheus-stack"
        );
        // The Service it selects carries the job name the rules use.
        let job = str_of(
            &monitor["spec"]["selector"]["matchLabels"]["tongdai.io/job"],
            "job",
        );
        let port = str_of(&monitor["spec"]["endpoints"][0]["port"], "port");
        let service = of_kind(&docs, "Service")
            .into_iter()
            .find(|s| s["metadata"]["labels"]["tongdai.io/job"] == job)
            .unwrap_or_else(|| panic!("no Service labelled tongdai.io/job={job}"));
        assert!(
            service["spec"]["ports"]
                .as_array()
                .expect("ports")
                .iter()
                .any(|p| p["name"] == port),
            "{job}: the Service has no port {port}"
        );
    }
    // The PrometheusRule is deploy/prometheus/rules/tongdai.rules.yml.
    let rule = of_kind(&docs, "PrometheusRule")[0];
    let file = yaml_file(&workspace_root().join("deploy/prometheus/rules/tongdai.rules.yml"));
    assert_eq!(rule["spec"]["groups"], file["groups"]);
    for dashboard in of_kind(&docs, "ConfigMap")
        .into_iter()
        .filter(|d| d["metadata"]["labels"]["grafana_dashboard"] == "1")
    {
        assert_eq!(dashboard["metadata"]["namespace"], "monitoring");
        assert_eq!(
            dashboard["metadata"]["annotations"]["grafana_folder"],
            "tongdai"
        );
    }
}

#[test]
fn daemonset_with_cert_manager_issues_role_certificates() {
    let docs = rendered(Some(&ci_file("daemonset-certmanager.yaml")));
    assert!(
        of_kind(&docs, "Job").is_empty(),
        "no certificate Job with cert-manager"
    );
    let certificates = of_kind(&docs, "Certificate");
    assert_eq!(certificates.len(), 3, "the CA, replica and node");
    for role in ["replica", "node"] {
        let cert = named(&docs, "Certificate", &format!("-{role}"));
        let spec = &cert["spec"];
        // What tongdai reads from a certificate: CN = name, OU = role, SAN tongdai.cluster.
        assert_eq!(spec["commonName"], role);
        assert_eq!(spec["subject"]["organizationalUnits"][0], role);
        assert_eq!(spec["subject"]["organizations"][0], "tongdai");
        assert!(
            spec["dnsNames"]
                .as_array()
                .expect("dnsNames")
                .contains(&Value::from("tongdai.cluster"))
        );
        let usages = spec["usages"].as_array().expect("usages");
        assert_eq!(
            usages.contains(&Value::from("server auth")),
            role == "replica",
            "{role}: {usages:?}"
        );
        assert_eq!(spec["issuerRef"]["name"], "tongdai-ca");
        // The pods map cert-manager's keys to tongdai's file names.
        let secret = str_of(&spec["secretName"], "secretName");
        let kind = if role == "replica" {
            "StatefulSet"
        } else {
            "DaemonSet"
        };
        let volumes = &of_kind(&docs, kind)[0]["spec"]["template"]["spec"]["volumes"];
        let certs = volumes
            .as_array()
            .expect("volumes")
            .iter()
            .find(|v| v["name"] == "certs")
            .expect("certs volume");
        let source = &certs["projected"]["sources"][0]["secret"];
        assert_eq!(source["name"], secret);
        assert_eq!(
            source["items"],
            serde_json::json!([
                {"key": "ca.crt", "path": "ca.pem"},
                {"key": "tls.crt", "path": format!("{role}.pem")},
                {"key": "tls.key", "path": format!("{role}.key")},
            ])
        );
    }
    let ds = named(&docs, "DaemonSet", "-node");
    let env = &ds["spec"]["template"]["spec"]["containers"][0]["env"];
    let listen = env
        .as_array()
        .expect("env")
        .iter()
        .find(|e| e["name"] == "TONGDAI_SIP_LISTEN_UDP")
        .expect("UDP listen");
    assert_eq!(listen["value"], "0.0.0.0:5080");
    assert!(
        !env.as_array()
            .expect("env")
            .iter()
            .any(|e| e["name"] == "TONGDAI_SIP_LISTEN_TCP"),
        "TCP is off"
    );
}

#[test]
fn rendered_configs_pass_tongdai_config_check() {
    for (name, file) in values_sets() {
        let docs = rendered(file.as_deref());
        let config = named(&docs, "ConfigMap", "-config");
        let sts = named(&docs, "StatefulSet", "-control-plane");
        let replicas = sts["spec"]["replicas"].as_u64().expect("replicas");
        let replica = &sts["spec"]["template"]["spec"]["containers"][0];
        // The entrypoint sets the id from the pod's ordinal.
        let entry = str_of(&replica["command"][2], "command");
        assert!(
            entry.contains("TONGDAI_REPLICA_ID=$(( ${HOSTNAME##*-} + 1 ))"),
            "{entry}"
        );
        assert!(
            entry.contains("exec tongdai control-plane --config /etc/tongdai/control-plane.toml")
        );
        let mut env = container_env(replica, "10.1.2.3");
        env.push(("TONGDAI_REPLICA_ID".into(), replicas.to_string()));
        let effective = config_check(
            &format!("{name}: control-plane.toml"),
            str_of(&config["data"]["control-plane.toml"], "control-plane.toml"),
            &env,
        );
        assert!(
            effective.contains(&format!("id = {replicas}\n")),
            "{effective}"
        );
        let members = effective
            .lines()
            .find_map(|l| l.strip_prefix("initial_members = "))
            .expect("initial_members");
        assert_eq!(
            members.matches('@').count() as u64,
            2 * replicas,
            "{members}"
        );
        assert!(members.contains(&format!(
            "{replicas}@tongdai-control-plane-{}.tongdai-control-plane-peers.telco.svc.cluster.local:7100@",
            replicas - 1
        )));

        let node = of_kind(&docs, "DaemonSet")
            .into_iter()
            .chain(of_kind(&docs, "Deployment"))
            .next()
            .expect("node workload");
        let container = &node["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            container["args"],
            serde_json::json!(["node", "--config", "/etc/tongdai/node.toml"])
        );
        let env = container_env(container, "10.1.2.4");
        let effective = config_check(
            &format!("{name}: node.toml"),
            str_of(&config["data"]["node.toml"], "node.toml"),
            &env,
        );
        let addrs = effective
            .lines()
            .find_map(|l| l.strip_prefix("replicas = "))
            .expect("control_plane.replicas");
        assert_eq!(addrs.matches(":7100").count() as u64, replicas, "{addrs}");
        assert!(
            effective.contains("name = \"tongdai-node-7d9cf\""),
            "{effective}"
        );
    }
}

#[test]
fn values_schema_rejects_bad_values_naming_the_field() {
    for (set, field) in [
        ("node.kind=StatefulSet", "/node/kind"),
        ("controlPlane.replicas=0", "/controlPlane/replicas"),
        ("controlPlane.replicas=9", "/controlPlane/replicas"),
        ("controlPlane.replicaz=3", "replicaz"),
        ("certs.mode=vault", "/certs/mode"),
        ("node.sip.port=70000", "/node/sip/port"),
        (
            "controlPlane.antiAffinity=always",
            "/controlPlane/antiAffinity",
        ),
        ("log.format=xml", "/log/format"),
        (
            "controlPlane.persistence.size=lots",
            "/controlPlane/persistence/size",
        ),
        ("node.listenAddress=localhost", "/node/listenAddress"),
    ] {
        let error = helm_template(None, &[set]).expect_err(set);
        assert!(
            error.contains(field) && error.contains("schema"),
            "--set {set}: the error does not name {field}:\n{error}"
        );
    }
    // A rule the schema cannot express fails the same way, naming the key.
    let error = helm_template(None, &["certs.mode=existingSecret"]).expect_err("no secret");
    assert!(
        error.contains("certs.existingSecret is required"),
        "{error}"
    );
}

#[test]
fn the_chart_ships_the_deploy_dashboards_and_rules_unchanged() {
    let docs = rendered(Some(&ci_file("five-replicas-servicemonitor.yaml")));
    let configmaps = of_kind(&docs, "ConfigMap");
    for path in dashboard_files() {
        let file = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let shipped = configmaps
            .iter()
            .find_map(|cm| cm["data"][&file].as_str())
            .unwrap_or_else(|| panic!("no ConfigMap carries {file}"));
        let shipped: Value = serde_json::from_str(shipped).expect("dashboard JSON in ConfigMap");
        assert_eq!(shipped, dashboard(&path), "{file} differs in the chart");
    }
    // One source of truth: the chart's files are links to deploy/.
    for (link, target) in [
        ("files/dashboards", "deploy/grafana/dashboards"),
        ("files/rules", "deploy/prometheus/rules"),
    ] {
        let link = chart_dir().join(link);
        assert!(
            std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()),
            "{} is not a symlink",
            link.display()
        );
        assert_eq!(
            std::fs::canonicalize(&link).expect("resolve"),
            std::fs::canonicalize(workspace_root().join(target)).expect("resolve")
        );
    }
}

#[test]
fn install_helm_script_is_idempotent() {
    let script = workspace_root().join("helm/install-helm.sh");
    let first = run_ok(&mut Command::new(&script));
    let path = PathBuf::from(first.trim());
    let modified = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .expect("helm installed");
    let second = run_ok(&mut Command::new(&script));
    assert_eq!(first, second);
    assert_eq!(
        std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .expect("helm"),
        modified,
        "the second run replaced the binary"
    );
    let version = run_ok(Command::new(&path).args(["version", "--template", "{{.Version}}"]));
    assert_eq!(version, "v4.1.4");
}
