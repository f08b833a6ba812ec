//! A tenant token sees and changes its own tenant only, and nothing operator-only.

use serde_json::json;

use super::*;

/// Every tenant-scoped URL of tenant `t`, with a body fit for PUT/POST.
fn scoped(t: &str) -> Vec<(&'static str, String, Value)> {
    let b = format!("/v1/tenants/{t}");
    vec![
        ("GET", b.clone(), Value::Null),
        ("PUT", b.clone(), tenant(t)),
        ("DELETE", b.clone(), Value::Null),
        ("GET", format!("{b}/numbers"), Value::Null),
        ("POST", format!("{b}/numbers"), number("18009999")),
        ("GET", format!("{b}/numbers/18005678"), Value::Null),
        ("PUT", format!("{b}/numbers/18005678"), number("18005678")),
        ("DELETE", format!("{b}/numbers/18005678"), Value::Null),
        ("GET", format!("{b}/extensions"), Value::Null),
        ("POST", format!("{b}/extensions"), extension("3001")),
        ("GET", format!("{b}/extensions/1001"), Value::Null),
        ("PUT", format!("{b}/extensions/1001"), extension("1001")),
        ("DELETE", format!("{b}/extensions/1002"), Value::Null),
        ("GET", format!("{b}/hunt-groups"), Value::Null),
        ("POST", format!("{b}/hunt-groups"), hunt_group("new")),
        ("GET", format!("{b}/hunt-groups/sales"), Value::Null),
        ("PUT", format!("{b}/hunt-groups/sales"), hunt_group("sales")),
        ("DELETE", format!("{b}/hunt-groups/sales"), Value::Null),
        ("GET", format!("{b}/queues"), Value::Null),
        ("POST", format!("{b}/queues"), queue("new")),
        ("GET", format!("{b}/queues/support"), Value::Null),
        ("PUT", format!("{b}/queues/support"), queue("support")),
        ("DELETE", format!("{b}/queues/support"), Value::Null),
        ("GET", format!("{b}/agents"), Value::Null),
        ("POST", format!("{b}/agents"), agent("1002")),
        ("GET", format!("{b}/agents/1001"), Value::Null),
        ("PUT", format!("{b}/agents/1001"), agent("1001")),
        ("DELETE", format!("{b}/agents/1001"), Value::Null),
        ("GET", format!("{b}/tokens"), Value::Null),
        ("POST", format!("{b}/tokens"), json!({"id": "x"})),
        ("DELETE", format!("{b}/tokens/ci"), Value::Null),
        ("GET", format!("{b}/registrations"), Value::Null),
    ]
}

#[tokio::test]
async fn another_tenants_resources_are_not_found_and_unchanged() {
    let h = Harness::seeded().await;
    let acme = h.token("acme", "ci").await;
    h.token("beta", "ci").await;
    let before = h.cluster.state();
    for (method, path, body) in scoped("beta") {
        let r = h.call(&acme, method, &path, body.clone()).await;
        // Exactly what a tenant that does not exist answers.
        r.error(404, "unknown_tenant", Some("tenant"));
        let nope = path.replace("/beta", "/nope");
        let r2 = h.call(&acme, method, &nope, body).await;
        assert_eq!(
            r.body["message"]
                .as_str()
                .map(|m| m.replace("beta", "nope")),
            r2.body["message"].as_str().map(str::to_owned),
            "{method} {path}"
        );
    }
    assert_eq!(h.cluster.state(), before, "nothing of beta changed");
}

#[tokio::test]
async fn lists_show_only_the_own_tenant() {
    let h = Harness::seeded().await;
    let acme = h.token("acme", "ci").await;
    let list = h.call(&acme, "GET", "/v1/tenants", Value::Null).await;
    assert_eq!(list.ok(200), &json!([tenant("acme")]));
    for what in ["numbers", "extensions", "hunt-groups", "queues", "agents"] {
        let r = h
            .call(
                &acme,
                "GET",
                &format!("/v1/tenants/acme/{what}"),
                Value::Null,
            )
            .await;
        let items = r.ok(200).as_array().expect("array");
        assert!(!items.is_empty(), "{what}");
        assert!(
            items.iter().all(|i| i["tenant"] == "acme"),
            "{what}: {items:?}"
        );
    }
}

#[tokio::test]
async fn own_tenant_is_readable_and_writable() {
    let h = Harness::seeded().await;
    let acme = h.token("acme", "ci").await;
    let b = "/v1/tenants/acme";
    h.call(&acme, "GET", &format!("{b}/extensions/1001"), Value::Null)
        .await
        .ok(200);
    h.call(&acme, "POST", &format!("{b}/extensions"), extension("3001"))
        .await
        .ok(201);
    h.call(
        &acme,
        "PUT",
        &format!("{b}/extensions/3001"),
        json!({"display_name": "New"}),
    )
    .await
    .ok(200);
    h.call(&acme, "POST", &format!("{b}/queues"), queue("vip"))
        .await
        .ok(201);
    h.call(
        &acme,
        "POST",
        &format!("{b}/hunt-groups"),
        hunt_group("night"),
    )
    .await
    .ok(201);
    h.call(&acme, "POST", &format!("{b}/agents"), agent("3001"))
        .await
        .ok(201);
    h.call(&acme, "DELETE", &format!("{b}/agents/3001"), Value::Null)
        .await
        .ok(204);
    h.call(
        &acme,
        "DELETE",
        &format!("{b}/extensions/3001"),
        Value::Null,
    )
    .await
    .ok(204);
    h.call(&acme, "GET", &format!("{b}/registrations"), Value::Null)
        .await
        .ok(200);
    // A rename is fine; quotas are the operator's.
    let mut renamed = tenant("acme");
    renamed["name"] = json!("ACME VN");
    h.call(&acme, "PUT", b, renamed.clone()).await.ok(200);
    renamed["quotas"]["max_registrations"] = json!(100_000);
    h.call(&acme, "PUT", b, renamed)
        .await
        .error(403, "forbidden", Some("quotas"));
    // Numbers: routing yes, allocation and tariffs no.
    let reroute = json!({"destination": {"type": "queue", "id": "vip"}});
    h.call(&acme, "PUT", &format!("{b}/numbers/18001234"), reroute)
        .await
        .ok(200);
    let mut retariff = number("18001234");
    retariff["tariff_band"] = json!("band-a");
    h.call(&acme, "PUT", &format!("{b}/numbers/18001234"), retariff)
        .await
        .error(403, "forbidden", Some("tariff_band"));
    h.call(&acme, "POST", &format!("{b}/numbers"), number("18007777"))
        .await
        .error(403, "forbidden", None);
    h.call(
        &acme,
        "DELETE",
        &format!("{b}/numbers/18001234"),
        Value::Null,
    )
    .await
    .error(403, "forbidden", None);
    // beta's number through acme's URL: not found, not "owned by beta".
    h.call(
        &acme,
        "PUT",
        &format!("{b}/numbers/18005678"),
        number("18005678"),
    )
    .await
    .error(404, "unknown_number", Some("digits"));
    h.call(&acme, "GET", &format!("{b}/numbers/18005678"), Value::Null)
        .await
        .error(404, "unknown_number", Some("digits"));
}

#[tokio::test]
async fn operator_only_operations_are_forbidden() {
    let h = Harness::seeded().await;
    let acme = h.token("acme", "ci").await;
    let before = h.cluster.state();
    let forbidden: &[(&str, &str, Value)] = &[
        ("POST", "/v1/tenants", tenant("gamma")),
        ("DELETE", "/v1/tenants/acme", Value::Null),
        ("GET", "/v1/tenants/acme/tokens", Value::Null),
        ("POST", "/v1/tenants/acme/tokens", json!({"id": "mine"})),
        ("DELETE", "/v1/tenants/acme/tokens/ci", Value::Null),
        ("GET", "/v1/registrations", Value::Null),
        ("GET", "/v1/cluster", Value::Null),
        (
            "POST",
            "/v1/cluster/learners",
            json!({"id": 2, "raft_addr": "h:1", "api_addr": "h:2"}),
        ),
        ("POST", "/v1/cluster/voters/2", Value::Null),
        ("DELETE", "/v1/cluster/members/1", Value::Null),
    ];
    for (method, path, body) in forbidden {
        h.call(&acme, method, path, body.clone())
            .await
            .error(403, "forbidden", None);
    }
    assert_eq!(h.cluster.state(), before);
}
