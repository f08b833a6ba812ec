//! A queue's live view: callers in service order with the agents ringing for them,
//! members by state, KPIs; the queue settings' validation names the field.

use serde_json::json;

use crate::model::{Command, Id, QueueArrival};

use super::*;

const QUEUE: &str = "/v1/tenants/acme/queues/support";

fn arrival(call_id: &str, priority: u8) -> Command {
    Command::QueueJoin(Box::new(QueueArrival {
        tenant: Id::new("acme").unwrap(),
        queue: Id::new("support").unwrap(),
        call_id: call_id.into(),
        node: "node-a".into(),
        caller: "0901234567".into(),
        priority,
    }))
}

#[tokio::test]
async fn the_live_view_shows_callers_in_order_offers_members_and_kpis() {
    let h = Harness::seeded().await;
    let mut q = h.op("GET", QUEUE, Value::Null).await.ok(200).clone();
    q["members"] = json!([{"extension": "1001"}]);
    q["strategy"] = json!("top_down");
    h.op("PUT", QUEUE, q).await.ok(200);
    h.cluster.apply(arrival("first@a", 0)).expect("joins");
    h.cluster.apply(arrival("second@b", 0)).expect("joins");
    h.cluster.apply(arrival("vip@c", 7)).expect("joins");
    let live = h
        .op("GET", &format!("{QUEUE}/live"), Value::Null)
        .await
        .ok(200)
        .clone();
    let calls: Vec<&str> = live["waiting"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["call_id"].as_str().unwrap())
        .collect();
    // Service order: the VIP jumps the line; the first caller (offered to 1001 before the
    // VIP came) still rings there.
    assert_eq!(calls, ["vip@c", "first@a", "second@b"]);
    assert_eq!(live["waiting"][0]["offered_to"], json!([]));
    assert_eq!(live["waiting"][1]["offered_to"], json!(["1001"]));
    assert_eq!(live["members"][0]["state"], "ringing");
    assert_eq!(live["kpis"]["calls_waiting"], 3);
    assert_eq!(live["kpis"]["agents_ringing"], 1);
    assert_eq!(live["kpis"]["joined"], 3);
    assert_eq!(live["kpis"]["service_level"], Value::Null);

    // Another tenant's token cannot see it.
    let token = h.token("beta", "ops").await;
    let r = h
        .call(&token, "GET", &format!("{QUEUE}/live"), Value::Null)
        .await;
    assert!(r.status.is_client_error(), "{:?}", r.status);
    h.op("GET", "/v1/tenants/acme/queues/nope/live", Value::Null)
        .await
        .error(404, "unknown_queue", Some("id"));
}

#[tokio::test]
async fn bad_queue_settings_name_the_field() {
    let h = Harness::seeded().await;
    let q = h.op("GET", QUEUE, Value::Null).await.ok(200).clone();
    for (patch, code, field) in [
        (
            json!({"members": [{"extension": "1002"}]}),
            "unknown_agent",
            "members",
        ),
        (
            json!({"members": [{"extension": "1001"}, {"extension": "1001"}]}),
            "duplicate_member",
            "members",
        ),
        (
            json!({"members": [{"extension": "1001", "penalty": 10}]}),
            "out_of_bounds",
            "members.penalty",
        ),
        (json!({"ring_secs": 1}), "out_of_bounds", "ring_secs"),
        (
            json!({"wrap_up_secs": 4000}),
            "out_of_bounds",
            "wrap_up_secs",
        ),
        (
            json!({"overflow": {"destination": {"type": "queue", "id": "support"}}}),
            "overflow_loop",
            "overflow.destination",
        ),
    ] {
        let r = h.op("PUT", QUEUE, with(q.clone(), patch.clone())).await;
        assert_eq!(r.status.as_u16(), 422, "{patch}: {}", r.body);
        assert_eq!(r.body["error"], code, "{patch}: {}", r.body);
        assert_eq!(r.body["field"], field, "{patch}: {}", r.body);
    }
    // An agent serving a queue cannot be deleted; a queue with callers neither.
    let mut with_member = q.clone();
    with_member["members"] = json!([{"extension": "1001"}]);
    h.op("PUT", QUEUE, with_member).await.ok(200);
    h.op("DELETE", "/v1/tenants/acme/agents/1001", Value::Null)
        .await
        .error(409, "agent_in_use", None);
    h.cluster.apply(arrival("waiting@a", 0)).expect("joins");
    h.op("DELETE", QUEUE, Value::Null)
        .await
        .error(409, "queue_has_callers", None);
}
