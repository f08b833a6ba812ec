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
        ("GET", format!("{b}/trunks"), Value::Null),
        ("POST", format!("{b}/trunks"), trunk("new")),
        ("GET", format!("{b}/trunks/carrier"), Value::Null),
        ("PUT", format!("{b}/trunks/carrier"), trunk("carrier")),
        ("DELETE", format!("{b}/trunks/carrier"), Value::Null),
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
    for what in [
        "numbers",
        "extensions",
        "hunt-groups",
        "queues",
        "agents",
        "trunks",
    ] {
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
    let renamed = with(tenant("acme"), json!({"name": "ACME VN"}));
    let quotas = json!({"max_concurrent_calls": 50, "max_call_attempts_per_sec": 5,
        "max_registrations": 100_000});
    let reroute = json!({"destination": {"type": "queue", "id": "vip"}});
    let forbidden = Want::Err(403, "forbidden", None);
    let unknown_number = Want::Err(404, "unknown_number", Some("digits"));
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        ("GET", "/extensions/1001", Value::Null, Want::Ok(200)),
        ("POST", "/extensions", extension("3001"), Want::Ok(201)),
        ("PUT", "/extensions/3001", json!({"display_name": "New"}), Want::Ok(200)),
        ("POST", "/queues", queue("vip"), Want::Ok(201)),
        ("POST", "/hunt-groups", hunt_group("night"), Want::Ok(201)),
        ("POST", "/agents", agent("3001"), Want::Ok(201)),
        ("DELETE", "/agents/3001", Value::Null, Want::Ok(204)),
        ("DELETE", "/extensions/3001", Value::Null, Want::Ok(204)),
        ("GET", "/registrations", Value::Null, Want::Ok(200)),
        // Trunks yes, but which sources are trusted is the operator's.
        ("POST", "/trunks", trunk("own"), Want::Ok(201)),
        ("PUT", "/trunks/own", with(trunk("own"), json!({"failover": "carrier"})), Want::Ok(200)),
        ("POST", "/trunks", with(trunk("wide"), json!({"trusted_sources": ["198.51.100.0/24"]})),
            Want::Err(403, "forbidden", Some("trusted_sources"))),
        ("PUT", "/trunks/carrier", with(trunk("carrier"), json!({"trusted_sources": ["198.51.100.9"]})),
            Want::Err(403, "forbidden", Some("trusted_sources"))),
        // The same sources, spelled otherwise, are no change.
        ("PUT", "/trunks/carrier", with(trunk("carrier"), json!({"trusted_sources": ["::ffff:203.0.113.1"]})),
            Want::Ok(200)),
        ("DELETE", "/trunks/own", Value::Null, Want::Ok(204)),
        // Call settings are the tenant's own.
        ("PUT", "", with(tenant("acme"), json!({"calls": {"recording": "always", "outbound_trunk": "carrier"}})),
            Want::Ok(200)),
        ("PUT", "", with(tenant("acme"), json!({"calls": {"outbound_trunk": "nope"}})),
            Want::Err(422, "unknown_trunk", Some("calls.outbound_trunk"))),
        // beta's number as caller ID: unknown, as if it did not exist.
        ("PUT", "", with(tenant("acme"), json!({"calls": {"caller_id": "18005678"}})),
            Want::Err(422, "unknown_caller_id", Some("calls.caller_id"))),
        ("PUT", "/numbers/18001234", with(number("18001234"), json!({"recording": "never"})), Want::Ok(200)),
        // A rename is fine; quotas are the operator's.
        ("PUT", "", renamed.clone(), Want::Ok(200)),
        ("PUT", "", with(renamed, json!({"quotas": quotas})),
            Want::Err(403, "forbidden", Some("quotas"))),
        // Numbers: routing yes, allocation and tariffs no.
        ("PUT", "/numbers/18001234", reroute, Want::Ok(200)),
        ("PUT", "/numbers/18001234", with(number("18001234"), json!({"tariff_band": "band-a"})),
            Want::Err(403, "forbidden", Some("tariff_band"))),
        ("POST", "/numbers", number("18007777"), forbidden),
        ("DELETE", "/numbers/18001234", Value::Null, forbidden),
        // beta's number through acme's URL: not found, not "owned by beta".
        ("PUT", "/numbers/18005678", number("18005678"), unknown_number),
        ("GET", "/numbers/18005678", Value::Null, unknown_number),
    ];
    h.expect(&acme, "/v1/tenants/acme", rows).await;
}

#[tokio::test]
async fn operator_only_operations_are_forbidden() {
    let h = Harness::seeded().await;
    let acme = h.token("acme", "ci").await;
    let before = h.cluster.state();
    let forbidden = Want::Err(403, "forbidden", None);
    let learner = json!({"id": 2, "raft_addr": "h:1", "api_addr": "h:2"});
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        ("POST", "/v1/tenants", tenant("gamma"), forbidden),
        ("DELETE", "/v1/tenants/acme", Value::Null, forbidden),
        ("GET", "/v1/tenants/acme/tokens", Value::Null, forbidden),
        ("POST", "/v1/tenants/acme/tokens", json!({"id": "mine"}), forbidden),
        ("DELETE", "/v1/tenants/acme/tokens/ci", Value::Null, forbidden),
        ("GET", "/v1/registrations", Value::Null, forbidden),
        ("GET", "/v1/cluster", Value::Null, forbidden),
        ("GET", "/v1/cluster/load", Value::Null, forbidden),
        ("POST", "/v1/cluster/nodes/node-a/drain", Value::Null, forbidden),
        ("POST", "/v1/cluster/learners", learner, forbidden),
        ("POST", "/v1/cluster/voters/2", Value::Null, forbidden),
        ("DELETE", "/v1/cluster/members/1", Value::Null, forbidden),
    ];
    h.expect(&acme, "", rows).await;
    assert_eq!(h.cluster.state(), before);
}
