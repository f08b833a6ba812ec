//! Followers redirect to the leader; no leader or no quorum is a 503 to retry; the
//! OpenAPI document lists every route.

use serde_json::json;

use super::*;
use crate::api::testing::Role;
use crate::raft::Member;

fn leader() -> Option<(u64, Member)> {
    Some((
        2,
        Member {
            raft_addr: "10.0.0.2:7000".into(),
            api_addr: "10.0.0.2:8080".into(),
        },
    ))
}

#[tokio::test]
async fn follower_redirects_reads_and_writes_to_the_leader() {
    let h = Harness::seeded().await;
    h.cluster.set_role(Role::Follower(leader()));
    let before = h.cluster.state();
    let cases = [
        ("GET", "/v1/tenants?x=1&y=2", Value::Null),
        ("GET", "/v1/tenants/acme/extensions/1001", Value::Null),
        ("POST", "/v1/tenants", tenant("gamma")),
        ("PUT", "/v1/tenants/acme/queues/support", queue("support")),
        ("DELETE", "/v1/tenants/acme/agents/1001", Value::Null),
        (
            "POST",
            "/v1/cluster/learners",
            json!({"id": 3, "raft_addr": "h:1", "api_addr": "h:2"}),
        ),
        ("DELETE", "/v1/cluster/members/3", Value::Null),
    ];
    for (method, path, body) in cases {
        let r = h.op(method, path, body).await;
        r.error(307, "not_leader", None);
        assert_eq!(
            r.headers.get("location").and_then(|v| v.to_str().ok()),
            Some(format!("http://10.0.0.2:8080{path}").as_str()),
            "{method} {path}"
        );
    }
    assert_eq!(h.cluster.state(), before);
    // Status is answered locally.
    let status = h.op("GET", "/v1/cluster", Value::Null).await;
    assert_eq!(status.ok(200)["state"], "Follower");
    assert_eq!(status.body["leader"], 2);
}

#[tokio::test]
async fn tenant_tokens_authenticate_on_followers_too() {
    let h = Harness::seeded().await;
    let acme = h.token("acme", "ci").await;
    h.cluster.set_role(Role::Follower(leader()));
    let r = h.call(&acme, "GET", "/v1/tenants/acme", Value::Null).await;
    r.error(307, "not_leader", None);
}

#[tokio::test]
async fn no_leader_or_no_quorum_is_a_503_to_retry() {
    let h = Harness::seeded().await;
    for (role, code) in [
        (Role::Follower(None), "no_leader"),
        (Role::Unavailable, "unavailable"),
    ] {
        h.cluster.set_role(role);
        for (method, path, body) in [
            ("GET", "/v1/tenants", Value::Null),
            ("POST", "/v1/tenants/acme/queues", queue("vip")),
        ] {
            let r = h.op(method, path, body).await;
            r.error(503, code, None);
            assert_eq!(
                r.headers.get("retry-after").and_then(|v| v.to_str().ok()),
                Some("1")
            );
        }
    }
}

#[tokio::test]
async fn openapi_lists_every_route_without_a_token() {
    let h = Harness::new();
    let r = h.raw("GET", "/openapi.json", None, None, b"").await;
    let doc = r.ok(200);
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let paths = doc["paths"].as_object().expect("paths");
    for (method, concrete) in ROUTES {
        // The documented template whose shape matches the concrete path.
        let found = paths.iter().find(|(template, _)| {
            let t: Vec<_> = template.split('/').collect();
            let c: Vec<_> = concrete.split('/').collect();
            t.len() == c.len() && t.iter().zip(&c).all(|(t, c)| t.starts_with('{') || t == c)
        });
        let (template, ops) = found.unwrap_or_else(|| panic!("{concrete} not documented"));
        assert!(
            ops.get(method.to_ascii_lowercase()).is_some(),
            "{method} {template} not documented"
        );
    }
    let operations: usize = paths
        .values()
        .map(|p| p.as_object().map_or(0, |o| o.len()))
        .sum();
    assert_eq!(
        operations,
        ROUTES.len(),
        "every documented operation is routed"
    );
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    for schema in [
        "ErrorBody",
        "TenantBody",
        "NumberBody",
        "DestinationBody",
        "ExtensionBody",
        "ExtensionView",
        "HuntGroupBody",
        "QueueBody",
        "AgentBody",
        "CreatedToken",
        "RegistrationView",
        "ClusterView",
        "LearnerBody",
        "LoadView",
        "TrunkBody",
        "TrunkView",
        "CallSettingsBody",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
}
