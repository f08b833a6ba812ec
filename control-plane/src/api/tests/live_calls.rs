//! On-demand recording requests for live calls.

use serde_json::json;

use crate::cluster::Cluster as _;

use super::*;

const PATH: &str = "/v1/tenants/acme/calls/a84b4c76e66710@pc33.example.com/recording";

#[tokio::test]
async fn a_recording_request_is_accepted_and_committed_for_the_nodes() {
    let h = Harness::seeded().await;
    let r = h.op("POST", PATH, json!({"action": "start"})).await;
    assert_eq!(r.ok(202)["action"], "start");
    let stored = h.cluster.read(|s| {
        s.call_control(
            &crate::model::Id::new("acme").unwrap(),
            "a84b4c76e66710@pc33.example.com",
        )
        .cloned()
    });
    let first = stored.expect("committed");
    assert_eq!(first.action, crate::model::CallAction::StartRecording);
    h.op("POST", PATH, json!({"action": "pause"})).await.ok(202);
    let second = h
        .cluster
        .read(|s| {
            s.call_control(
                &crate::model::Id::new("acme").unwrap(),
                "a84b4c76e66710@pc33.example.com",
            )
            .cloned()
        })
        .unwrap();
    assert_eq!(second.action, crate::model::CallAction::PauseRecording);
    assert!(second.seq > first.seq);
}

#[tokio::test]
async fn bad_recording_requests_name_the_field() {
    let h = Harness::seeded().await;
    h.op("POST", PATH, json!({"action": "louder"})).await.error(
        422,
        "invalid_value",
        Some("action"),
    );
    let r = h.op("POST", PATH, json!({})).await;
    assert!(r.status.is_client_error(), "{:?}", r.status);
    assert_eq!(r.body["field"], "action", "{}", r.body);
    // A tenant that never records refuses start and resume, not stop.
    let mut t = h
        .op("GET", "/v1/tenants/acme", Value::Null)
        .await
        .ok(200)
        .clone();
    t["calls"]["recording"] = json!("never");
    h.op("PUT", "/v1/tenants/acme", t).await.ok(200);
    h.op("POST", PATH, json!({"action": "start"})).await.error(
        409,
        "recording_never",
        Some("action"),
    );
    h.op("POST", PATH, json!({"action": "stop"})).await.ok(202);
}

#[tokio::test]
async fn a_tenant_token_controls_only_its_own_calls() {
    let h = Harness::seeded().await;
    let beta = h.token("beta", "crm").await;
    let r = h
        .call(&beta, "POST", PATH, json!({"action": "start"}))
        .await;
    assert!(
        r.status == StatusCode::FORBIDDEN || r.status == StatusCode::NOT_FOUND,
        "{:?}",
        r.status
    );
    let own = "/v1/tenants/beta/calls/x@y/recording";
    h.call(&beta, "POST", own, json!({"action": "start"}))
        .await
        .ok(202);
}
