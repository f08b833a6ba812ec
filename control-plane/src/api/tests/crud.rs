//! Create, read, update and delete of every entity as the operator.

use std::net::SocketAddr;

use serde_json::json;

use super::*;
use crate::api::extensions::ha1s;
use crate::model::{Command, ContactUpdate, Id, RegisterRequest, TenantLoad, Transport};

fn id(s: &str) -> Id {
    Id::new(s).expect("valid")
}

/// Per kind of entity: the collection, a new one's key and POST body, a PUT body that
/// changes it, and the code and field of the 409 for a second POST and of the 404 once
/// it is gone.
type Lifecycle = (&'static str, &'static str, Value, Value, Refusal, Refusal);
type Refusal = (&'static str, &'static str);

#[rustfmt::skip]
fn lifecycles() -> Vec<Lifecycle> {
    let hunt_group_changed = json!({"strategy": "ring_all", "members": ["1002"], "ring_secs": 30});
    let paused = json!({"state": "paused", "pause_reason": "lunch", "skills": {}});
    vec![
        ("/v1/tenants", "gamma", tenant("gamma"), with(tenant("gamma"), json!({"name": "Gamma JSC"})),
            ("tenant_exists", "id"), ("unknown_tenant", "tenant")),
        ("/v1/tenants/acme/numbers", "18007777", number("18007777"),
            json!({"destination": {"type": "queue", "id": "support"}}),
            ("number_exists", "digits"), ("unknown_number", "digits")),
        ("/v1/tenants/acme/extensions", "2001", extension("2001"), json!({"display_name": "Lan"}),
            ("extension_exists", "ext"), ("unknown_extension", "ext")),
        ("/v1/tenants/acme/hunt-groups", "overflow", hunt_group("overflow"),
            with(hunt_group("overflow"), hunt_group_changed),
            ("hunt_group_exists", "id"), ("unknown_hunt_group", "id")),
        ("/v1/tenants/acme/queues", "billing", queue("billing"),
            with(queue("billing"), json!({"strategy": "skills_based", "max_len": 10})),
            ("queue_exists", "id"), ("unknown_queue", "id")),
        ("/v1/tenants/acme/agents", "1002", agent("1002"), paused,
            ("agent_exists", "extension"), ("unknown_agent", "extension")),
        ("/v1/tenants/acme/trunks", "backup", trunk("backup"),
            with(trunk("backup"), json!({"transport": "tcp", "failover": "carrier"})),
            ("trunk_exists", "id"), ("unknown_trunk", "id")),
    ]
}

#[tokio::test]
async fn every_entity_is_created_listed_replaced_and_deleted() {
    let h = Harness::seeded().await;
    for (base, key, body, changed, exists, unknown) in lifecycles() {
        let item = format!("{base}/{key}");
        let listed = h.count(base).await;
        let created = h.op("POST", base, body.clone()).await.ok(201).clone();
        assert_eq!(h.op("GET", &item, Value::Null).await.ok(200), &created);
        h.op("POST", base, body)
            .await
            .error(409, exists.0, Some(exists.1));
        assert_eq!(h.count(base).await, listed + 1, "{item}");
        let updated = h.op("PUT", &item, changed.clone()).await.ok(200).clone();
        assert_ne!(updated, created, "{item}");
        assert_eq!(h.op("GET", &item, Value::Null).await.ok(200), &updated);
        assert_eq!(
            h.op("DELETE", &item, Value::Null).await.ok(204),
            &Value::Null
        );
        for (method, body) in [
            ("GET", Value::Null),
            ("PUT", changed),
            ("DELETE", Value::Null),
        ] {
            h.op(method, &item, body)
                .await
                .error(404, unknown.0, Some(unknown.1));
        }
        assert_eq!(h.count(base).await, listed, "{item}");
    }
}

#[tokio::test]
async fn tenant_crud() {
    let h = Harness::new();
    let created = h.op("POST", "/v1/tenants", tenant("acme")).await;
    assert_eq!(created.ok(201), &tenant("acme"));
    h.op("POST", "/v1/tenants", tenant("beta")).await.ok(201);
    let list = h.op("GET", "/v1/tenants", Value::Null).await;
    assert_eq!(list.ok(200), &json!([tenant("acme"), tenant("beta")]));
    // PUT may leave the id out; it comes from the URL.
    let renamed = with(
        tenant("acme"),
        json!({"name": "ACME Vietnam", "quotas": {"max_concurrent_calls": 50,
            "max_call_attempts_per_sec": 5, "max_registrations": 7}}),
    );
    let mut without_id = renamed.clone();
    without_id.as_object_mut().expect("object").remove("id");
    assert_eq!(
        h.op("PUT", "/v1/tenants/acme", without_id).await.ok(200),
        &renamed
    );
    assert_eq!(
        h.op("GET", "/v1/tenants/acme", Value::Null).await.ok(200),
        &renamed
    );
}

#[tokio::test]
async fn seeded_entities_read_back_as_written() {
    let h = Harness::seeded().await;
    let acme = || json!({"tenant": "acme"});
    for (path, want) in [
        ("", tenant("acme")),
        (
            "/numbers/18001234",
            json!({"digits": "18001234", "tenant": "acme", "kind": "toll_free_1800",
                "destination": {"type": "hunt_group", "id": "sales"}}),
        ),
        (
            "/extensions/1001",
            json!({"tenant": "acme", "ext": "1001", "display_name": "Agent 1001"}),
        ),
        ("/hunt-groups/sales", with(hunt_group("sales"), acme())),
        ("/queues/support", with(queue("support"), acme())),
        ("/agents/1001", with(agent("1001"), acme())),
    ] {
        let r = h
            .op("GET", &format!("/v1/tenants/acme{path}"), Value::Null)
            .await;
        assert_eq!(r.ok(200), &want, "{path}");
    }
}

/// What the model refuses of each entity besides bad values, naming the field.
#[tokio::test]
async fn entities_keep_their_rules() {
    let h = Harness::seeded().await;
    let overflow =
        json!({"strategy": "ring_all", "no_answer": {"type": "hunt_group", "id": "sales"}});
    let looping = json!({"no_answer": {"type": "hunt_group", "id": "overflow"}});
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        ("DELETE", "", Value::Null, Want::Err(409, "tenant_not_empty", None)),
        // Premium needs a tariff band.
        ("POST", "/numbers", number("19006868"),
            Want::Err(422, "missing_tariff_band", Some("tariff_band"))),
        // Another tenant's number through this tenant's URL: the operator is told why.
        ("PUT", "/numbers/18005678", number("18005678"),
            Want::Err(403, "number_owned_by_other_tenant", Some("digits"))),
        ("GET", "/numbers/18005678", Value::Null, Want::Err(404, "unknown_number", Some("digits"))),
        // In use by the hunt group and the agent.
        ("DELETE", "/extensions/1001", Value::Null, Want::Err(409, "extension_in_use", None)),
        // sales -> overflow -> sales would hunt forever.
        ("POST", "/hunt-groups", with(hunt_group("overflow"), overflow), Want::Ok(201)),
        ("PUT", "/hunt-groups/sales", with(hunt_group("sales"), looping),
            Want::Err(422, "hunt_group_loop", Some("no_answer"))),
        ("DELETE", "/hunt-groups/sales", Value::Null, Want::Err(409, "hunt_group_in_use", None)),
        ("POST", "/agents", agent("9999"), Want::Err(422, "unknown_extension", Some("extension"))),
    ];
    h.expect(OPERATOR, "/v1/tenants/acme", rows).await;
}

#[tokio::test]
async fn number_crud() {
    let h = Harness::seeded().await;
    let base = "/v1/tenants/acme/numbers";
    // The kind is inferred from the digits, or given.
    let premium = with(
        number("19006868"),
        json!({"tariff_band": "band-a", "destination": {"type": "queue", "id": "support"}}),
    );
    h.op("POST", base, premium).await.ok(201);
    let geo = json!({"digits": "02873001234", "kind": "geographic",
                     "destination": {"type": "external", "number": "0901234567"}});
    h.op("POST", base, geo).await.ok(201);
    let list = h.op("GET", base, Value::Null).await;
    let digits: Vec<_> = list
        .ok(200)
        .as_array()
        .expect("array")
        .iter()
        .map(|n| n["digits"].clone())
        .collect();
    assert_eq!(
        digits,
        [json!("02873001234"), json!("18001234"), json!("19006868")]
    );
}

#[tokio::test]
async fn extension_crud_stores_only_ha1() {
    let h = Harness::seeded().await;
    let base = "/v1/tenants/acme/extensions";
    let mut body = extension("2001");
    body["forward_to_mobile"] =
        json!({"number": "+84901234567", "when": ["busy", "unregistered", "busy"]});
    let created = h.op("POST", base, body).await;
    let view = json!({"tenant": "acme", "ext": "2001", "display_name": "Agent 2001",
        "forward_to_mobile": {"number": "+84901234567", "when": ["unregistered", "busy"]}});
    assert_eq!(created.ok(201), &view);
    let item = format!("{base}/2001");
    assert_eq!(h.op("GET", &item, Value::Null).await.ok(200), &view);
    // The realm is the tenant id; the password itself is nowhere.
    let stored = || {
        h.cluster
            .state()
            .extension(&id("acme"), &id("2001"))
            .cloned()
            .expect("stored")
    };
    let (md5, sha) = ha1s("2001", "acme", "correct horse battery");
    assert_eq!(
        (stored().ha1_md5.as_str(), stored().ha1_sha256.as_str()),
        (md5.as_str(), sha.as_str())
    );
    // Computed independently (Python hashlib).
    assert_eq!(md5, "035a0ba177ae4db0f3c5c39900597075");
    assert_eq!(
        sha,
        "c972a042f640a05e0c1a252d51729c747d5e46d3d0e17499b321d8a48530c606"
    );
    let snapshot = h.cluster.state().snapshot().expect("encode");
    assert!(!snapshot.windows(7).any(|w| w == b"correct"));
    // PUT without credentials keeps them; with HA1s replaces them.
    let r = h.op("PUT", &item, json!({"display_name": "Lan"})).await;
    assert_eq!(r.ok(200)["display_name"], "Lan");
    assert!(r.body.get("forward_to_mobile").is_none());
    assert_eq!(stored().ha1_md5, md5);
    let upper = "ABCDEF0123456789ABCDEF0123456789";
    h.op(
        "PUT",
        &item,
        json!({"display_name": "Lan", "ha1_md5": upper, "ha1_sha256": "ab".repeat(32)}),
    )
    .await
    .ok(200);
    assert_eq!(stored().ha1_md5, upper.to_ascii_lowercase());
    assert_eq!(stored().ha1_sha256, "ab".repeat(32));
    let list = h.op("GET", base, Value::Null).await;
    assert_eq!(list.ok(200).as_array().map(Vec::len), Some(3));
    assert!(!list.body.to_string().contains("ha1"));
}

#[tokio::test]
async fn a_paused_agent_reads_back_its_reason() {
    let h = Harness::seeded().await;
    let paused = json!({"state": "paused", "pause_reason": "lunch", "skills": {}});
    let r = h.op("PUT", "/v1/tenants/acme/agents/1001", paused).await;
    assert_eq!(
        r.ok(200),
        &json!({"tenant": "acme", "extension": "1001", "state": "paused", "pause_reason": "lunch", "skills": {}})
    );
}

#[tokio::test]
async fn tokens_are_shown_once_and_revocable() {
    let h = Harness::seeded().await;
    let token = h.token("acme", "ci").await;
    assert!(token.starts_with("td_") && token.len() == 67, "{token}");
    let stored = h
        .cluster
        .state()
        .api_token(&id("acme"), &id("ci"))
        .cloned()
        .expect("stored");
    assert_ne!(stored.sha256, token);
    assert!(
        !h.cluster
            .state()
            .snapshot()
            .expect("encode")
            .windows(token.len())
            .any(|w| w == token.as_bytes())
    );
    h.op("POST", "/v1/tenants/acme/tokens", json!({"id": "ci"}))
        .await
        .error(409, "token_exists", Some("id"));
    let list = h.op("GET", "/v1/tenants/acme/tokens", Value::Null).await;
    assert_eq!(list.ok(200), &json!([{"tenant": "acme", "id": "ci"}]));
    h.call(&token, "GET", "/v1/tenants/acme/extensions", Value::Null)
        .await
        .ok(200);
    h.op("DELETE", "/v1/tenants/acme/tokens/ci", Value::Null)
        .await
        .ok(204);
    h.call(&token, "GET", "/v1/tenants/acme/extensions", Value::Null)
        .await
        .error(401, "unauthorized", None);
    h.op("DELETE", "/v1/tenants/acme/tokens/ci", Value::Null)
        .await
        .error(404, "unknown_token", Some("id"));
}

#[tokio::test]
async fn registrations_are_listed_per_tenant_and_for_all() {
    let h = Harness::seeded().await;
    for (t, e) in [("acme", "1001"), ("beta", "1002")] {
        h.cluster
            .apply(Command::Register(RegisterRequest {
                tenant: id(t),
                extension: id(e),
                call_id: "c1".into(),
                cseq: 1,
                source: SocketAddr::from(([198, 51, 100, 7], 5060)),
                transport: Transport::Udp,
                contacts: vec![ContactUpdate {
                    contact: format!("sip:{e}@198.51.100.7"),
                    expires_secs: 3600,
                    q: 1000,
                    params: String::new(),
                }],
            }))
            .expect("registered");
    }
    let acme = h
        .op("GET", "/v1/tenants/acme/registrations", Value::Null)
        .await;
    let list = acme.ok(200).as_array().expect("array");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["extension"], "1001");
    assert_eq!(list[0]["transport"], "udp");
    assert_eq!(list[0]["source"], "198.51.100.7:5060");
    assert!(
        list[0]["expires_in_secs"]
            .as_u64()
            .is_some_and(|s| s > 3500)
    );
    let all = h.op("GET", "/v1/registrations", Value::Null).await;
    assert_eq!(all.ok(200).as_array().map(Vec::len), Some(2));
    h.op("GET", "/v1/tenants/nope/registrations", Value::Null)
        .await
        .error(404, "unknown_tenant", Some("tenant"));
}

#[tokio::test]
async fn cluster_status_and_membership() {
    let h = Harness::new();
    let status = h.op("GET", "/v1/cluster", Value::Null).await;
    assert_eq!(status.ok(200)["leader"], 1);
    assert_eq!(status.body["members"][0]["role"], "voter");
    let learner = json!({"id": 2, "raft_addr": "10.0.0.2:7000", "api_addr": "10.0.0.2:8080"});
    let r = h.op("POST", "/v1/cluster/learners", learner.clone()).await;
    assert_eq!(
        r.ok(200)["members"][1],
        json!({"id": 2, "role": "learner", "raft_addr": "10.0.0.2:7000", "api_addr": "10.0.0.2:8080", "lag": 0})
    );
    h.op("POST", "/v1/cluster/learners", learner)
        .await
        .error(409, "membership_refused", None);
    let r = h.op("POST", "/v1/cluster/voters/2", Value::Null).await;
    assert_eq!(r.ok(200)["members"][1]["role"], "voter");
    h.op("DELETE", "/v1/cluster/members/2", Value::Null)
        .await
        .ok(200);
    h.op("DELETE", "/v1/cluster/members/1", Value::Null)
        .await
        .error(409, "membership_refused", None);
    h.op("POST", "/v1/cluster/voters/9", Value::Null)
        .await
        .error(409, "membership_refused", None);
}

#[tokio::test]
async fn cluster_load_lists_reports_and_sums_per_tenant() {
    let h = Harness::new();
    let empty = h.op("GET", "/v1/cluster/load", Value::Null).await;
    assert_eq!(empty.ok(200), &json!({"nodes": [], "tenants": []}));
    let load = |t: &str, active_calls, attempts_per_sec| TenantLoad {
        tenant: Id::new(t).expect("valid"),
        active_calls,
        attempts_per_sec,
    };
    for (node, tenants) in [
        ("node-b", vec![load("acme", 2, 1)]),
        ("node-a", vec![load("beta", 1, 0), load("acme", 3, 2)]),
    ] {
        h.cluster
            .apply(Command::ReportLoad {
                node: node.into(),
                tenants,
            })
            .expect("applies");
    }
    let r = h.op("GET", "/v1/cluster/load", Value::Null).await;
    let body = r.ok(200);
    assert_eq!(body["nodes"][0]["node"], "node-a");
    assert!(
        body["nodes"][0]["reported_at_ms"]
            .as_u64()
            .is_some_and(|t| t > 0)
    );
    assert_eq!(
        body["nodes"][0]["tenants"],
        json!([
            {"tenant": "acme", "active_calls": 3, "attempts_per_sec": 2},
            {"tenant": "beta", "active_calls": 1, "attempts_per_sec": 0}
        ])
    );
    assert_eq!(
        body["tenants"],
        json!([
            {"tenant": "acme", "active_calls": 5, "attempts_per_sec": 3},
            {"tenant": "beta", "active_calls": 1, "attempts_per_sec": 0}
        ])
    );
}
