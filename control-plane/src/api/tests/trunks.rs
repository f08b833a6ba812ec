//! Trunks (write-only password, canonical trusted sources unique across tenants),
//! tenants' call settings and numbers' recording override, through the API.

use serde_json::json;

use super::*;
use crate::model::{Codec, Id, RecordingPolicy};

fn id(s: &str) -> Id {
    Id::new(s).expect("valid")
}

#[tokio::test]
async fn trunk_password_is_write_only() {
    let h = Harness::seeded().await;
    let base = "/v1/tenants/acme/trunks";
    let body = with(
        trunk("viettel"),
        json!({"trusted_sources": ["2001:DB8::7", "198.51.100.0/24"],
               "registration": registration(), "failover": "carrier", "transport": "tls"}),
    );
    let view = json!({"tenant": "acme", "id": "viettel", "address": "sip.carrier.example:5060",
        "transport": "tls", "trusted_sources": ["2001:db8::7", "198.51.100.0/24"],
        "registration": {"username": "acme-trunk", "password_set": true,
                         "domain": "sip.carrier.example", "expires_secs": 600},
        "max_concurrent_calls": 30, "failover": "carrier"});
    assert_eq!(h.op("POST", base, body).await.ok(201), &view);
    let item = format!("{base}/viettel");
    assert_eq!(h.op("GET", &item, Value::Null).await.ok(200), &view);
    let list = h.op("GET", base, Value::Null).await;
    assert_eq!(list.ok(200).as_array().map(Vec::len), Some(2));
    let stored = || {
        h.cluster
            .state()
            .trunk(&id("acme"), &id("viettel"))
            .cloned()
            .expect("stored")
    };
    // Stored in clear (the node answers the carrier's challenge with it) ...
    assert_eq!(
        stored().registration.map(|r| r.password).as_deref(),
        Some("carrier-secret-1")
    );
    // ... never returned.
    for r in [&list.body, &view] {
        assert!(!r.to_string().contains("carrier-secret"), "{r}");
    }
    // A PUT without the password keeps it; with one replaces it.
    let mut again = view.clone();
    let reg = again["registration"].as_object_mut().expect("object");
    reg.remove("password_set");
    reg.insert("expires_secs".into(), json!(3600));
    for k in ["tenant", "id"] {
        again.as_object_mut().expect("object").remove(k);
    }
    let r = h.op("PUT", &item, again.clone()).await;
    assert_eq!(r.ok(200)["registration"]["expires_secs"], 3600);
    assert!(!r.body.to_string().contains("carrier-secret"));
    assert_eq!(
        stored().registration.map(|r| r.password).as_deref(),
        Some("carrier-secret-1")
    );
    again["registration"]["password"] = json!("rotated-secret");
    h.op("PUT", &item, again.clone()).await.ok(200);
    assert_eq!(
        stored().registration.map(|r| r.password).as_deref(),
        Some("rotated-secret")
    );
    // Without a registration there is no password to keep; a new one needs it.
    again
        .as_object_mut()
        .expect("object")
        .remove("registration");
    let r = h.op("PUT", &item, again.clone()).await;
    assert!(r.ok(200).get("registration").is_none());
    assert_eq!(stored().registration, None);
    again["registration"] = json!({"username": "u", "domain": "sip.carrier.example"});
    h.op("PUT", &item, again)
        .await
        .error(422, "missing_field", Some("registration.password"));
}

#[tokio::test]
async fn trusted_sources_belong_to_one_trunk_of_one_tenant() {
    let h = Harness::seeded().await;
    // beta's carrier trusts 203.0.113.2; acme may not, in any spelling.
    for spelling in ["203.0.113.2", "::ffff:203.0.113.2"] {
        let body = with(trunk("second"), json!({"trusted_sources": [spelling]}));
        let r = h.op("POST", "/v1/tenants/acme/trunks", body).await;
        r.error(409, "trusted_source_in_use", Some("trusted_sources[0]"));
        // The operator is told who holds it.
        let message = r.body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("beta") && message.contains("carrier"),
            "{message}"
        );
    }
    // Nor a second trunk of the same tenant.
    let body = with(trunk("second"), json!({"trusted_sources": ["203.0.113.1"]}));
    h.op("POST", "/v1/tenants/acme/trunks", body).await.error(
        409,
        "trusted_source_in_use",
        Some("trusted_sources[0]"),
    );
    // The same address with a port, or a network around it, is another source.
    let body = with(
        trunk("second"),
        json!({"trusted_sources": ["203.0.113.2:5060", "203.0.113.0/24"]}),
    );
    let r = h.op("POST", "/v1/tenants/acme/trunks", body).await;
    assert_eq!(
        r.ok(201)["trusted_sources"],
        json!(["203.0.113.2:5060", "203.0.113.0/24"])
    );
}

#[tokio::test]
async fn trunks_in_use_stay() {
    let h = Harness::seeded().await;
    let a = "/v1/tenants/acme";
    h.op(
        "POST",
        &format!("{a}/trunks"),
        with(trunk("backup"), json!({"failover": "carrier"})),
    )
    .await
    .ok(201);
    let outbound = with(
        tenant("acme"),
        json!({"calls": {"outbound_trunk": "backup"}}),
    );
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        // backup fails over to carrier.
        ("DELETE", "/trunks/carrier", Value::Null, Want::Err(409, "trunk_in_use", None)),
        ("PUT", "", outbound, Want::Ok(200)),
        ("DELETE", "/trunks/backup", Value::Null, Want::Err(409, "trunk_in_use", None)),
        // carrier -> backup -> carrier.
        ("PUT", "/trunks/carrier", with(trunk("carrier"), json!({"failover": "backup"})),
            Want::Err(422, "failover_loop", Some("failover"))),
        ("PUT", "", tenant("acme"), Want::Ok(200)),
        ("DELETE", "/trunks/backup", Value::Null, Want::Ok(204)),
        ("DELETE", "/trunks/carrier", Value::Null, Want::Ok(204)),
    ];
    h.expect(OPERATOR, a, rows).await;
}

#[tokio::test]
async fn tenant_call_settings() {
    let h = Harness::seeded().await;
    let a = "/v1/tenants/acme";
    h.op(
        "POST",
        &format!("{a}/numbers"),
        json!({"digits": "02873001234", "destination": {"type": "extension", "id": "1001"}}),
    )
    .await
    .ok(201);
    // Created without `calls`: the defaults.
    let mut gamma = tenant("gamma");
    gamma.as_object_mut().expect("object").remove("calls");
    let created = h.op("POST", "/v1/tenants", gamma).await;
    assert_eq!(created.ok(201)["calls"], tenant("acme")["calls"]);

    let calls = json!({"codecs": ["pcma", "telephone_event"], "allow_other_codecs": true,
        "recording": "always", "outbound_trunk": "carrier", "caller_id": "02873001234"});
    let r = h
        .op("PUT", a, with(tenant("acme"), json!({"calls": calls})))
        .await;
    assert_eq!(r.ok(200)["calls"], calls);
    let stored = h
        .cluster
        .state()
        .tenant(&id("acme"))
        .cloned()
        .expect("acme");
    assert_eq!(stored.calls.codecs, [Codec::Pcma, Codec::TelephoneEvent]);
    assert_eq!(stored.calls.recording, RecordingPolicy::Always);
    assert_eq!(stored.calls.outbound_trunk, Some(id("carrier")));
    // A PUT without `calls` keeps them.
    let mut renamed = with(tenant("acme"), json!({"name": "ACME VN"}));
    renamed.as_object_mut().expect("object").remove("calls");
    let r = h.op("PUT", a, renamed).await;
    assert_eq!(r.ok(200)["calls"], calls);
    assert_eq!(r.body["name"], "ACME VN");
    // Fields left out of `calls` take their defaults.
    let r = h
        .op(
            "PUT",
            a,
            with(tenant("acme"), json!({"calls": {"recording": "never"}})),
        )
        .await;
    assert_eq!(
        r.ok(200)["calls"],
        json!({"codecs": ["pcmu", "pcma", "telephone_event"], "allow_other_codecs": false,
               "recording": "never"})
    );
    // 1800 and 1900 numbers are inbound only.
    let r = h
        .op(
            "PUT",
            a,
            with(tenant("acme"), json!({"calls": {"caller_id": "18001234"}})),
        )
        .await;
    r.error(422, "caller_id_inbound_only", Some("calls.caller_id"));
    assert!(
        r.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("inbound only")),
        "{}",
        r.body
    );
    // The caller ID number cannot be released while in use.
    h.op(
        "PUT",
        a,
        with(
            tenant("acme"),
            json!({"calls": {"caller_id": "02873001234"}}),
        ),
    )
    .await
    .ok(200);
    h.op("DELETE", &format!("{a}/numbers/02873001234"), Value::Null)
        .await
        .error(409, "number_in_use", None);
}

#[tokio::test]
async fn numbers_carry_a_recording_override() {
    let h = Harness::seeded().await;
    let item = "/v1/tenants/acme/numbers/18001234";
    let r = h
        .op(
            "PUT",
            item,
            with(number("18001234"), json!({"recording": "always"})),
        )
        .await;
    assert_eq!(r.ok(200)["recording"], "always");
    assert_eq!(
        h.cluster
            .state()
            .number("18001234")
            .and_then(|n| n.recording),
        Some(RecordingPolicy::Always)
    );
    // Left out: the tenant's policy applies, and nothing is shown.
    let r = h.op("PUT", item, number("18001234")).await;
    assert!(r.ok(200).get("recording").is_none(), "{}", r.body);
    assert_eq!(
        h.cluster
            .state()
            .number("18001234")
            .and_then(|n| n.recording),
        None
    );
}
