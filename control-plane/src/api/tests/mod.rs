//! Tests of the API through the real router over [`MemoryCluster`]: CRUD of every
//! entity, tenant isolation, invalid input on every endpoint, authentication, leader
//! redirects and the OpenAPI document.

mod crud;
mod invalid;
mod isolation;
mod leader;
mod live_calls;
mod nodes;
mod queue_live;
mod records;
mod trunks;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use super::testing::MemoryCluster;
use super::{AuthConfig, router};

pub(super) const OPERATOR: &str = "operator-secret-0123456789";

/// Every route, with a path that matches it.
pub(super) const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/tenants"),
    ("POST", "/v1/tenants"),
    ("GET", "/v1/tenants/acme"),
    ("PUT", "/v1/tenants/acme"),
    ("DELETE", "/v1/tenants/acme"),
    ("GET", "/v1/tenants/acme/numbers"),
    ("POST", "/v1/tenants/acme/numbers"),
    ("GET", "/v1/tenants/acme/numbers/18001234"),
    ("PUT", "/v1/tenants/acme/numbers/18001234"),
    ("DELETE", "/v1/tenants/acme/numbers/18001234"),
    ("GET", "/v1/tenants/acme/extensions"),
    ("POST", "/v1/tenants/acme/extensions"),
    ("GET", "/v1/tenants/acme/extensions/1001"),
    ("PUT", "/v1/tenants/acme/extensions/1001"),
    ("DELETE", "/v1/tenants/acme/extensions/1001"),
    ("GET", "/v1/tenants/acme/hunt-groups"),
    ("POST", "/v1/tenants/acme/hunt-groups"),
    ("GET", "/v1/tenants/acme/hunt-groups/sales"),
    ("PUT", "/v1/tenants/acme/hunt-groups/sales"),
    ("DELETE", "/v1/tenants/acme/hunt-groups/sales"),
    ("GET", "/v1/tenants/acme/queues"),
    ("POST", "/v1/tenants/acme/queues"),
    ("GET", "/v1/tenants/acme/queues/support"),
    ("GET", "/v1/tenants/acme/queues/support/live"),
    ("PUT", "/v1/tenants/acme/queues/support"),
    ("DELETE", "/v1/tenants/acme/queues/support"),
    ("GET", "/v1/tenants/acme/agents"),
    ("POST", "/v1/tenants/acme/agents"),
    ("GET", "/v1/tenants/acme/agents/1001"),
    ("PUT", "/v1/tenants/acme/agents/1001"),
    ("DELETE", "/v1/tenants/acme/agents/1001"),
    ("GET", "/v1/tenants/acme/trunks"),
    ("POST", "/v1/tenants/acme/trunks"),
    ("GET", "/v1/tenants/acme/trunks/carrier"),
    ("PUT", "/v1/tenants/acme/trunks/carrier"),
    ("DELETE", "/v1/tenants/acme/trunks/carrier"),
    ("POST", "/v1/tenants/acme/calls/call-1@192.0.2.1/recording"),
    ("GET", "/v1/tenants/acme/tokens"),
    ("POST", "/v1/tenants/acme/tokens"),
    ("DELETE", "/v1/tenants/acme/tokens/ci"),
    ("GET", "/v1/tenants/acme/registrations"),
    ("GET", "/v1/tenants/acme/cdrs"),
    ("GET", "/v1/tenants/acme/queue-log"),
    ("POST", "/v1/tenants/acme/calls"),
    ("GET", "/v1/tenants/acme/calls/1"),
    ("GET", "/v1/tenants/acme/recordings"),
    ("GET", "/v1/tenants/acme/recordings/r1"),
    ("DELETE", "/v1/tenants/acme/recordings/r1"),
    ("GET", "/v1/tenants/acme/recordings/r1/audio"),
    ("GET", "/v1/registrations"),
    ("GET", "/v1/cluster"),
    ("GET", "/v1/cluster/load"),
    ("GET", "/v1/cluster/nodes/node-a/drain"),
    ("POST", "/v1/cluster/nodes/node-a/drain"),
    ("POST", "/v1/cluster/learners"),
    ("POST", "/v1/cluster/voters/2"),
    ("DELETE", "/v1/cluster/members/2"),
];

/// A response, body parsed as JSON (`Null` when empty).
#[derive(Debug)]
pub(super) struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Resp {
    /// Asserts an error response: status, code and field.
    #[track_caller]
    pub fn error(&self, status: u16, code: &str, field: Option<&str>) {
        assert_eq!(self.status.as_u16(), status, "{:#}", self.body);
        assert_eq!(self.body["error"], code, "{:#}", self.body);
        assert!(self.body["message"].as_str().is_some_and(|m| !m.is_empty()));
        match field {
            Some(f) => assert_eq!(self.body["field"], f, "{:#}", self.body),
            None => assert!(self.body.get("field").is_none(), "{:#}", self.body),
        }
    }

    #[track_caller]
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{:#}", self.body);
        &self.body
    }
}

/// What a request in a table ([`Harness::expect`]) should get: a success status, or
/// an error's status, code and field.
#[derive(Debug, Clone, Copy)]
pub(super) enum Want {
    Ok(u16),
    Err(u16, &'static str, Option<&'static str>),
}

/// A row of such a table: method, path below a base, body, answer.
pub(super) type Row = (&'static str, &'static str, Value, Want);

/// The router over a fresh in-memory leader.
pub(super) struct Harness {
    pub cluster: MemoryCluster,
    pub app: Router,
}

impl Harness {
    pub fn new() -> Harness {
        let cluster = MemoryCluster::new();
        let auth = AuthConfig::with_operator_token(OPERATOR).expect("long enough");
        Harness {
            app: router(cluster.clone(), auth),
            cluster,
        }
    }

    /// Sends raw bytes with an optional token and content type.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Resp {
        let mut req = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).expect("method"))
            .uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let req = req.body(Body::from(body.to_vec())).expect("request");
        let res = self.app.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = to_bytes(res.into_body(), 1 << 20).await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    /// Sends `body` (JSON, or nothing for `Null`) with `token`.
    pub async fn call(&self, token: &str, method: &str, path: &str, body: Value) -> Resp {
        if body.is_null() {
            self.raw(method, path, Some(token), None, b"").await
        } else {
            let bytes = serde_json::to_vec(&body).expect("encode");
            self.raw(method, path, Some(token), Some("application/json"), &bytes)
                .await
        }
    }

    /// As the operator.
    pub async fn op(&self, method: &str, path: &str, body: Value) -> Resp {
        self.call(OPERATOR, method, path, body).await
    }

    /// Sends each row's request to `base` and its path with `token`, in order, and
    /// checks the answer.
    pub async fn expect(&self, token: &str, base: &str, rows: Vec<Row>) {
        for (method, path, body, want) in rows {
            let path = format!("{base}{path}");
            let r = self.call(token, method, &path, body).await;
            let got = (r.body["error"].as_str(), r.body.get("field"));
            let right = match want {
                Want::Ok(status) => r.status.as_u16() == status,
                Want::Err(status, code, field) => {
                    r.status.as_u16() == status
                        && got == (Some(code), field.map(Value::from).as_ref())
                        && r.body["message"].as_str().is_some_and(|m| !m.is_empty())
                }
            };
            assert!(
                right,
                "{method} {path}: want {want:?}, got {} {:#}",
                r.status, r.body
            );
        }
    }

    /// How many items `GET path` lists.
    pub async fn count(&self, path: &str) -> usize {
        let r = self.op("GET", path, Value::Null).await;
        r.ok(200).as_array().expect("array").len()
    }

    /// Creates a token for `tenant` and returns it.
    pub async fn token(&self, tenant: &str, id: &str) -> String {
        let r = self
            .op(
                "POST",
                &format!("/v1/tenants/{tenant}/tokens"),
                json!({"id": id}),
            )
            .await;
        r.ok(201)["token"].as_str().expect("token").to_owned()
    }

    /// Tenants `acme` and `beta`, each with extensions 1001 and 1002, hunt group
    /// `sales`, queue `support`, agent on 1001, a number (acme 18001234, beta
    /// 18005678) and trunk `carrier` (with a registration; trusting 203.0.113.1 for
    /// acme, 203.0.113.2 for beta).
    pub async fn seeded() -> Harness {
        let h = Harness::new();
        for (t, digits, source) in [
            ("acme", "18001234", "203.0.113.1"),
            ("beta", "18005678", "203.0.113.2"),
        ] {
            h.op("POST", "/v1/tenants", tenant(t)).await.ok(201);
            let base = format!("/v1/tenants/{t}");
            for e in ["1001", "1002"] {
                h.op("POST", &format!("{base}/extensions"), extension(e))
                    .await
                    .ok(201);
            }
            h.op("POST", &format!("{base}/hunt-groups"), hunt_group("sales"))
                .await
                .ok(201);
            h.op("POST", &format!("{base}/queues"), queue("support"))
                .await
                .ok(201);
            h.op("POST", &format!("{base}/agents"), agent("1001"))
                .await
                .ok(201);
            h.op("POST", &format!("{base}/numbers"), number(digits))
                .await
                .ok(201);
            let carrier = with(
                trunk("carrier"),
                json!({"trusted_sources": [source], "registration": registration()}),
            );
            h.op("POST", &format!("{base}/trunks"), carrier)
                .await
                .ok(201);
        }
        h
    }
}

pub(super) fn tenant(id: &str) -> Value {
    json!({
        "id": id,
        "name": format!("{id} Ltd"),
        "quotas": {"max_concurrent_calls": 50, "max_call_attempts_per_sec": 5, "max_registrations": 100},
        "calls": {"codecs": ["pcmu", "pcma", "telephone_event"], "allow_other_codecs": false, "recording": "on_demand"}
    })
}

pub(super) fn extension(ext: &str) -> Value {
    json!({"ext": ext, "display_name": format!("Agent {ext}"), "password": "correct horse battery"})
}

pub(super) fn hunt_group(id: &str) -> Value {
    json!({
        "id": id,
        "members": ["1001", "1002"],
        "strategy": "sequential",
        "ring_secs": 20,
        "no_answer": {"type": "external", "number": "+84901234567"}
    })
}

pub(super) fn queue(id: &str) -> Value {
    json!({
        "id": id, "name": "Support", "strategy": "longest_idle", "max_wait_secs": 300,
        "max_len": 50, "members": [], "ring_secs": 20, "wrap_up_secs": 0, "join_empty": true,
        "tier_widen_secs": 0, "auto_pause_no_answer": false, "service_level_secs": 20,
        "announce": true, "announce_every_secs": 0, "announce_language": "en"
    })
}

pub(super) fn agent(ext: &str) -> Value {
    json!({"extension": ext, "state": "available", "skills": {"vietnamese": 80}})
}

pub(super) fn number(digits: &str) -> Value {
    json!({"digits": digits, "destination": {"type": "hunt_group", "id": "sales"}})
}

/// A trunk without trusted sources or registration.
pub(super) fn trunk(id: &str) -> Value {
    json!({"id": id, "address": "sip.carrier.example:5060", "transport": "udp", "max_concurrent_calls": 30})
}

/// A trunk registration body, password included.
pub(super) fn registration() -> Value {
    json!({"username": "acme-trunk", "password": "carrier-secret-1", "domain": "sip.carrier.example", "expires_secs": 600})
}

/// `v` with some of its top-level fields replaced.
pub(super) fn with(mut v: Value, fields: Value) -> Value {
    for (k, x) in fields.as_object().expect("object") {
        v[k] = x.clone();
    }
    v
}
