//! Create, read, update and delete of every entity as the operator.

use std::net::SocketAddr;

use serde_json::json;

use super::*;
use crate::api::extensions::ha1s;
use crate::model::{Command, ContactUpdate, Id, RegisterRequest, Transport};

fn id(s: &str) -> Id {
    Id::new(s).expect("valid")
}

#[tokio::test]
async fn tenant_crud() {
    let h = Harness::new();
    let created = h.op("POST", "/v1/tenants", tenant("acme")).await;
    assert_eq!(created.ok(201), &tenant("acme"));
    h.op("POST", "/v1/tenants", tenant("acme"))
        .await
        .error(409, "tenant_exists", Some("id"));
    h.op("POST", "/v1/tenants", tenant("beta")).await.ok(201);
    let list = h.op("GET", "/v1/tenants", Value::Null).await;
    assert_eq!(list.ok(200), &json!([tenant("acme"), tenant("beta")]));
    assert_eq!(
        h.op("GET", "/v1/tenants/acme", Value::Null).await.ok(200),
        &tenant("acme")
    );
    // PUT may leave the id out; it comes from the URL.
    let mut renamed = tenant("acme");
    renamed["name"] = json!("ACME Vietnam");
    renamed["quotas"]["max_registrations"] = json!(7);
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
    h.op("PUT", "/v1/tenants/nope", tenant("nope")).await.error(
        404,
        "unknown_tenant",
        Some("tenant"),
    );
    assert_eq!(
        h.op("DELETE", "/v1/tenants/acme", Value::Null)
            .await
            .ok(204),
        &Value::Null
    );
    h.op("GET", "/v1/tenants/acme", Value::Null)
        .await
        .error(404, "unknown_tenant", Some("tenant"));
    h.op("DELETE", "/v1/tenants/acme", Value::Null).await.error(
        404,
        "unknown_tenant",
        Some("tenant"),
    );
}

#[tokio::test]
async fn tenant_with_contents_is_not_deleted() {
    let h = Harness::seeded().await;
    h.op("DELETE", "/v1/tenants/acme", Value::Null)
        .await
        .error(409, "tenant_not_empty", None);
}

#[tokio::test]
async fn number_crud() {
    let h = Harness::seeded().await;
    let base = "/v1/tenants/acme/numbers";
    let got = h.op("GET", &format!("{base}/18001234"), Value::Null).await;
    assert_eq!(
        got.ok(200),
        &json!({"digits": "18001234", "tenant": "acme", "kind": "toll_free_1800",
                "destination": {"type": "hunt_group", "id": "sales"}})
    );
    // Premium needs a tariff band; the kind is inferred from the digits.
    let mut premium = number("19006868");
    h.op("POST", base, premium.clone()).await.error(
        422,
        "missing_tariff_band",
        Some("tariff_band"),
    );
    premium["tariff_band"] = json!("band-a");
    premium["destination"] = json!({"type": "queue", "id": "support"});
    h.op("POST", base, premium.clone()).await.ok(201);
    h.op("POST", base, premium.clone())
        .await
        .error(409, "number_exists", Some("digits"));
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
    // Update: route to an extension instead.
    let updated = json!({"destination": {"type": "extension", "id": "1002"}});
    let r = h.op("PUT", &format!("{base}/18001234"), updated).await;
    assert_eq!(
        r.ok(200)["destination"],
        json!({"type": "extension", "id": "1002"})
    );
    h.op("PUT", &format!("{base}/18009999"), number("18009999"))
        .await
        .error(404, "unknown_number", Some("digits"));
    // Another tenant's number through this tenant's URL: the operator is told why.
    h.op("PUT", &format!("{base}/18005678"), number("18005678"))
        .await
        .error(403, "number_owned_by_other_tenant", Some("digits"));
    h.op("GET", &format!("{base}/18005678"), Value::Null)
        .await
        .error(404, "unknown_number", Some("digits"));
    h.op("DELETE", &format!("{base}/19006868"), Value::Null)
        .await
        .ok(204);
    h.op("GET", &format!("{base}/19006868"), Value::Null)
        .await
        .error(404, "unknown_number", Some("digits"));
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
    assert_eq!(
        h.op("GET", &format!("{base}/2001"), Value::Null)
            .await
            .ok(200),
        &view
    );
    // The realm is the tenant id; the password itself is nowhere.
    let stored = h
        .cluster
        .state()
        .extension(&id("acme"), &id("2001"))
        .cloned()
        .expect("stored");
    let (md5, sha) = ha1s("2001", "acme", "correct horse battery");
    assert_eq!(
        (stored.ha1_md5.as_str(), stored.ha1_sha256.as_str()),
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
    let r = h
        .op(
            "PUT",
            &format!("{base}/2001"),
            json!({"display_name": "Lan"}),
        )
        .await;
    assert_eq!(r.ok(200)["display_name"], "Lan");
    assert!(r.body.get("forward_to_mobile").is_none());
    let kept = h
        .cluster
        .state()
        .extension(&id("acme"), &id("2001"))
        .cloned()
        .expect("stored");
    assert_eq!(kept.ha1_md5, md5);
    let upper = "ABCDEF0123456789ABCDEF0123456789";
    h.op(
        "PUT",
        &format!("{base}/2001"),
        json!({"display_name": "Lan", "ha1_md5": upper, "ha1_sha256": "ab".repeat(32)}),
    )
    .await
    .ok(200);
    let replaced = h
        .cluster
        .state()
        .extension(&id("acme"), &id("2001"))
        .cloned()
        .expect("stored");
    assert_eq!(replaced.ha1_md5, upper.to_ascii_lowercase());
    assert_eq!(replaced.ha1_sha256, "ab".repeat(32));
    let list = h.op("GET", base, Value::Null).await;
    assert_eq!(list.ok(200).as_array().map(Vec::len), Some(3));
    assert!(!list.body.to_string().contains("ha1"));
    h.op("POST", base, extension("2001"))
        .await
        .error(409, "extension_exists", Some("ext"));
    // In use by the hunt group and the agent.
    h.op("DELETE", &format!("{base}/1001"), Value::Null)
        .await
        .error(409, "extension_in_use", None);
    h.op("DELETE", &format!("{base}/2001"), Value::Null)
        .await
        .ok(204);
    h.op("GET", &format!("{base}/2001"), Value::Null)
        .await
        .error(404, "unknown_extension", Some("ext"));
    h.op(
        "PUT",
        &format!("{base}/2001"),
        json!({"display_name": "Lan"}),
    )
    .await
    .error(404, "unknown_extension", Some("ext"));
}

#[tokio::test]
async fn hunt_group_crud() {
    let h = Harness::seeded().await;
    let base = "/v1/tenants/acme/hunt-groups";
    let mut expected = hunt_group("sales");
    expected["tenant"] = json!("acme");
    assert_eq!(
        h.op("GET", &format!("{base}/sales"), Value::Null)
            .await
            .ok(200),
        &expected
    );
    let mut overflow = hunt_group("overflow");
    overflow["strategy"] = json!("ring_all");
    overflow["no_answer"] = json!({"type": "hunt_group", "id": "sales"});
    h.op("POST", base, overflow).await.ok(201);
    // sales -> overflow -> sales would hunt forever.
    let mut looping = hunt_group("sales");
    looping["no_answer"] = json!({"type": "hunt_group", "id": "overflow"});
    h.op("PUT", &format!("{base}/sales"), looping).await.error(
        422,
        "hunt_group_loop",
        Some("no_answer"),
    );
    let mut shorter = hunt_group("sales");
    shorter["members"] = json!(["1002"]);
    shorter["ring_secs"] = json!(30);
    assert_eq!(
        h.op("PUT", &format!("{base}/sales"), shorter).await.ok(200)["members"],
        json!(["1002"])
    );
    assert_eq!(
        h.op("GET", base, Value::Null)
            .await
            .ok(200)
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    h.op("DELETE", &format!("{base}/sales"), Value::Null)
        .await
        .error(409, "hunt_group_in_use", None);
    h.op("DELETE", &format!("{base}/overflow"), Value::Null)
        .await
        .ok(204);
    h.op("GET", &format!("{base}/overflow"), Value::Null)
        .await
        .error(404, "unknown_hunt_group", Some("id"));
    h.op("PUT", &format!("{base}/overflow"), hunt_group("overflow"))
        .await
        .error(404, "unknown_hunt_group", Some("id"));
}

#[tokio::test]
async fn queue_crud() {
    let h = Harness::seeded().await;
    let base = "/v1/tenants/acme/queues";
    h.op("POST", base, queue("billing")).await.ok(201);
    h.op("POST", base, queue("billing"))
        .await
        .error(409, "queue_exists", Some("id"));
    let mut q = queue("billing");
    q["strategy"] = json!("skills_based");
    q["max_len"] = json!(10);
    assert_eq!(
        h.op("PUT", &format!("{base}/billing"), q).await.ok(200)["strategy"],
        "skills_based"
    );
    assert_eq!(
        h.op("GET", &format!("{base}/billing"), Value::Null)
            .await
            .ok(200)["max_len"],
        10
    );
    assert_eq!(
        h.op("GET", base, Value::Null)
            .await
            .ok(200)
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    h.op("DELETE", &format!("{base}/billing"), Value::Null)
        .await
        .ok(204);
    h.op("GET", &format!("{base}/billing"), Value::Null)
        .await
        .error(404, "unknown_queue", Some("id"));
    h.op("PUT", &format!("{base}/billing"), queue("billing"))
        .await
        .error(404, "unknown_queue", Some("id"));
}

#[tokio::test]
async fn agent_crud() {
    let h = Harness::seeded().await;
    let base = "/v1/tenants/acme/agents";
    h.op("POST", base, agent("1002")).await.ok(201);
    h.op("POST", base, agent("1002"))
        .await
        .error(409, "agent_exists", Some("extension"));
    h.op("POST", base, agent("9999"))
        .await
        .error(422, "unknown_extension", Some("extension"));
    let paused = json!({"state": "paused", "pause_reason": "lunch", "skills": {}});
    let r = h.op("PUT", &format!("{base}/1002"), paused).await;
    assert_eq!(
        r.ok(200),
        &json!({"tenant": "acme", "extension": "1002", "state": "paused", "pause_reason": "lunch", "skills": {}})
    );
    assert_eq!(
        h.op("GET", base, Value::Null)
            .await
            .ok(200)
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    h.op("DELETE", &format!("{base}/1002"), Value::Null)
        .await
        .ok(204);
    h.op("GET", &format!("{base}/1002"), Value::Null)
        .await
        .error(404, "unknown_agent", Some("extension"));
    h.op("DELETE", &format!("{base}/1002"), Value::Null)
        .await
        .error(404, "unknown_agent", Some("extension"));
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
