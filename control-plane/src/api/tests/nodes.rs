//! Node drain requests through the API: operator only, 202 pending, accepted once the
//! node says so, 404 naming the node when there is none.

use crate::model::Command;

use super::*;

const PATH: &str = "/v1/cluster/nodes/node-a/drain";

#[tokio::test]
async fn a_drain_request_is_pending_until_the_node_accepts_it() {
    let h = Harness::seeded().await;
    h.op("GET", PATH, Value::Null)
        .await
        .error(404, "no_drain_request", Some("node"));
    let r = h.op("POST", PATH, Value::Null).await;
    let body = r.ok(202).clone();
    assert_eq!(body["node"], "node-a");
    assert_eq!(body["state"], "pending");
    assert_eq!(body["accepted_at_ms"], Value::Null);
    let seq = body["seq"].as_u64().expect("seq");
    // What the node proposes when it takes the request.
    h.cluster
        .apply(Command::AcceptDrain {
            node: "node-a".into(),
            seq,
        })
        .expect("applies");
    let now = h.op("GET", PATH, Value::Null).await.ok(200).clone();
    assert_eq!(now["state"], "accepted");
    assert!(now["accepted_at_ms"].as_u64().is_some());
    // A new request replaces it, pending again.
    let again = h.op("POST", PATH, Value::Null).await.ok(202).clone();
    assert_eq!(again["state"], "pending");
    assert!(again["seq"].as_u64() > Some(seq));
}

#[tokio::test]
async fn only_the_operator_drains_and_bad_names_are_refused() {
    let h = Harness::seeded().await;
    let token = h.token("acme", "ops").await;
    let r = h.call(&token, "POST", PATH, Value::Null).await;
    assert_eq!(r.status.as_u16(), 403, "{}", r.body);
    let long = format!("/v1/cluster/nodes/{}/drain", "n".repeat(300));
    h.op("POST", &long, Value::Null)
        .await
        .error(400, "invalid_node", Some("node"));
}
