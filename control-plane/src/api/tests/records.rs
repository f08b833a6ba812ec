//! The records endpoints over an in-memory [`Records`]: tenant isolation, query checks
//! naming the field, recordings' metadata, audio and deletion, local reads on
//! followers, and a replica without records.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::Request;
use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::json;
use tower::ServiceExt as _;

use super::*;
use crate::api::records::{CdrQuery, Records, RecordsError, RecordsFuture};
use crate::api::router_with_records;
use crate::api::testing::Role;
use crate::raft::Member;

/// Records held in memory, filtered the way the real stores filter.
#[derive(Debug, Default)]
struct MemoryRecords {
    /// (tenant, cdr)
    cdrs: Vec<(String, Value)>,
    /// (tenant, metadata, audio)
    recordings: Mutex<Vec<(String, Value, Bytes)>>,
    /// The last CDR query, to check the parsed parameters.
    last_query: Mutex<Option<CdrQuery>>,
}

impl Records for MemoryRecords {
    fn cdrs(&self, tenant: String, query: CdrQuery) -> RecordsFuture<'_, Vec<Value>> {
        *self.last_query.lock() = Some(query);
        let mut found: Vec<Value> = self
            .cdrs
            .iter()
            .filter(|(t, c)| {
                *t == tenant
                    && c["setup_ms"]
                        .as_u64()
                        .is_some_and(|s| (query.since_ms..query.until_ms).contains(&s))
            })
            .map(|(_, c)| c.clone())
            .collect();
        found.sort_by_key(|c| std::cmp::Reverse(c["setup_ms"].as_u64()));
        found.truncate(query.limit);
        Box::pin(async move { Ok(found) })
    }

    fn recordings(&self, tenant: String) -> RecordsFuture<'_, Vec<Value>> {
        let list = self
            .recordings
            .lock()
            .iter()
            .filter(|(t, _, _)| *t == tenant)
            .map(|(_, m, _)| m.clone())
            .collect();
        Box::pin(async move { Ok(list) })
    }

    fn recording(&self, tenant: String, id: String) -> RecordsFuture<'_, Option<Value>> {
        let found = self
            .recordings
            .lock()
            .iter()
            .find(|(t, m, _)| *t == tenant && m["id"] == id.as_str())
            .map(|(_, m, _)| m.clone());
        Box::pin(async move { Ok(found) })
    }

    fn recording_audio(&self, tenant: String, id: String) -> RecordsFuture<'_, Option<Bytes>> {
        let found = self
            .recordings
            .lock()
            .iter()
            .find(|(t, m, _)| *t == tenant && m["id"] == id.as_str())
            .map(|(_, _, a)| a.clone());
        Box::pin(async move { Ok(found) })
    }

    fn delete_recording(&self, tenant: String, id: String) -> RecordsFuture<'_, bool> {
        let mut list = self.recordings.lock();
        let before = list.len();
        list.retain(|(t, m, _)| !(*t == tenant && m["id"] == id.as_str()));
        let deleted = list.len() < before;
        Box::pin(async move { Ok(deleted) })
    }
}

/// A store that fails every read.
#[derive(Debug)]
struct BrokenRecords;

impl Records for BrokenRecords {
    fn cdrs(&self, _: String, _: CdrQuery) -> RecordsFuture<'_, Vec<Value>> {
        Box::pin(async { Err(RecordsError::Store("disk on fire".into())) })
    }
    fn recordings(&self, _: String) -> RecordsFuture<'_, Vec<Value>> {
        Box::pin(async {
            Err(RecordsError::NotConfigured {
                what: "recordings",
                key: "records.recordings_dir",
            })
        })
    }
    fn recording(&self, _: String, _: String) -> RecordsFuture<'_, Option<Value>> {
        Box::pin(async { Err(RecordsError::Store("disk on fire".into())) })
    }
    fn recording_audio(&self, _: String, _: String) -> RecordsFuture<'_, Option<Bytes>> {
        Box::pin(async { Err(RecordsError::Store("disk on fire".into())) })
    }
    fn delete_recording(&self, _: String, _: String) -> RecordsFuture<'_, bool> {
        Box::pin(async { Err(RecordsError::Store("disk on fire".into())) })
    }
}

fn cdr(tenant: &str, id: &str, setup_ms: u64) -> (String, Value) {
    (
        tenant.to_owned(),
        json!({"id": id, "tenant": tenant, "setup_ms": setup_ms}),
    )
}

fn recording(tenant: &str, id: &str) -> (String, Value, Bytes) {
    (
        tenant.to_owned(),
        json!({"id": id, "tenant": tenant, "call_id": "c1"}),
        Bytes::from(format!("RIFF-{id}")),
    )
}

/// 2026-11-24T08:00:00Z
const T: u64 = 1_795_507_200_000;

/// The seeded tenants (acme, beta), each with three CDRs an hour apart and a recording.
async fn harness() -> (Harness, Arc<MemoryRecords>) {
    let seeded = Harness::seeded().await;
    let records = Arc::new(MemoryRecords {
        cdrs: vec![
            cdr("acme", "a1", T),
            cdr("acme", "a2", T + 3_600_000),
            cdr("acme", "a3", T + 7_200_000),
            cdr("beta", "b1", T),
        ],
        recordings: Mutex::new(vec![recording("acme", "rec-a"), recording("beta", "rec-b")]),
        last_query: Mutex::new(None),
    });
    let auth = AuthConfig::with_operator_token(OPERATOR).expect("long enough");
    let app = router_with_records(
        seeded.cluster.clone(),
        auth,
        Some(Arc::clone(&records) as Arc<dyn Records>),
    );
    (
        Harness {
            cluster: seeded.cluster,
            app,
        },
        records,
    )
}

fn ids(v: &Value) -> Vec<&str> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|c| c["id"].as_str().expect("id"))
        .collect()
}

#[tokio::test]
async fn cdrs_are_listed_newest_first_with_the_query_applied() {
    let (h, records) = harness().await;
    let r = h.op("GET", "/v1/tenants/acme/cdrs", Value::Null).await;
    assert_eq!(ids(r.ok(200)), ["a3", "a2", "a1"]);
    assert_eq!(
        *records.last_query.lock(),
        Some(CdrQuery {
            since_ms: 0,
            until_ms: u64::MAX,
            limit: 100
        })
    );
    // RFC 3339 with an offset (its + escaped), Unix ms, and a limit.
    let path = format!(
        "/v1/tenants/acme/cdrs?since=2026-11-24T16:00:00%2B07:00&until={}&limit=1",
        T + 7_200_000
    );
    let r = h.op("GET", &path, Value::Null).await;
    assert_eq!(ids(r.ok(200)), ["a2"]);
    assert_eq!(
        *records.last_query.lock(),
        Some(CdrQuery {
            since_ms: T + 3_600_000,
            until_ms: T + 7_200_000,
            limit: 1
        })
    );
    // The + of an offset left unescaped arrives as a space, and is read as +.
    let r = h
        .op(
            "GET",
            "/v1/tenants/acme/cdrs?since=2026-11-24T16:00:00+07:00",
            Value::Null,
        )
        .await;
    assert_eq!(ids(r.ok(200)), ["a3", "a2"]);
    let r = h
        .op("GET", "/v1/tenants/acme/cdrs?since=2026-11-25", Value::Null)
        .await;
    assert_eq!(ids(r.ok(200)), Vec::<&str>::new());
}

#[tokio::test]
async fn bad_query_parameters_are_400_naming_the_parameter() {
    let (h, records) = harness().await;
    let base = "/v1/tenants/acme/cdrs";
    for (query, code, field) in [
        ("since=yesterday", "invalid_query", "since"),
        ("since=2026-02-30", "invalid_query", "since"),
        ("until=2026-11-24T08:00:00", "invalid_query", "until"),
        ("since=", "invalid_query", "since"),
        ("limit=0", "invalid_query", "limit"),
        ("limit=10001", "invalid_query", "limit"),
        ("limit=ten", "invalid_query", "limit"),
        ("since=2000&until=1000", "invalid_query", "until"),
        ("since=1000&until=1000", "invalid_query", "until"),
        ("sinse=1000", "unknown_parameter", "sinse"),
    ] {
        *records.last_query.lock() = None;
        let r = h.op("GET", &format!("{base}?{query}"), Value::Null).await;
        r.error(400, code, Some(field));
        assert!(
            records.last_query.lock().is_none(),
            "{query}: the store is not asked"
        );
    }
    let r = h
        .op("GET", &format!("{base}?since=yesterday"), Value::Null)
        .await;
    let message = r.body["message"].as_str().expect("message");
    assert!(
        message.contains("RFC 3339"),
        "says what is expected: {message}"
    );
}

#[tokio::test]
async fn a_tenant_token_sees_only_its_own_records() {
    let (h, records) = harness().await;
    let acme = h.token("acme", "ci").await;
    let r = h
        .call(&acme, "GET", "/v1/tenants/acme/cdrs", Value::Null)
        .await;
    assert_eq!(ids(r.ok(200)), ["a3", "a2", "a1"]);
    let r = h
        .call(&acme, "GET", "/v1/tenants/acme/recordings", Value::Null)
        .await;
    assert_eq!(ids(r.ok(200)), ["rec-a"]);
    for (method, path) in [
        ("GET", "/v1/tenants/beta/cdrs"),
        ("GET", "/v1/tenants/beta/cdrs?since=nonsense"),
        ("GET", "/v1/tenants/beta/recordings"),
        ("GET", "/v1/tenants/beta/recordings/rec-b"),
        ("GET", "/v1/tenants/beta/recordings/rec-b/audio"),
        ("DELETE", "/v1/tenants/beta/recordings/rec-b"),
    ] {
        let r = h.call(&acme, method, path, Value::Null).await;
        // Exactly what a tenant that does not exist answers.
        r.error(404, "unknown_tenant", Some("tenant"));
        let r = h
            .call(
                &acme,
                method,
                &path.replace("/beta/", "/nope/"),
                Value::Null,
            )
            .await;
        r.error(404, "unknown_tenant", Some("tenant"));
    }
    // Another tenant's recording under one's own tenant is simply not there.
    let r = h
        .call(
            &acme,
            "GET",
            "/v1/tenants/acme/recordings/rec-b",
            Value::Null,
        )
        .await;
    r.error(404, "unknown_recording", Some("id"));
    let r = h
        .call(
            &acme,
            "DELETE",
            "/v1/tenants/acme/recordings/rec-b",
            Value::Null,
        )
        .await;
    r.error(404, "unknown_recording", Some("id"));
    assert_eq!(
        records.recordings.lock().len(),
        2,
        "nothing of beta deleted"
    );
    // The operator sees every tenant; an unknown tenant is 404 for the operator too.
    let r = h.op("GET", "/v1/tenants/beta/cdrs", Value::Null).await;
    assert_eq!(ids(r.ok(200)), ["b1"]);
    h.op("GET", "/v1/tenants/nope/cdrs", Value::Null)
        .await
        .error(404, "unknown_tenant", Some("tenant"));
}

/// Sends a request and returns status, content type and raw body.
async fn raw(h: &Harness, method: &str, path: &str) -> (u16, String, Vec<u8>, Option<String>) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {OPERATOR}"))
        .body(Body::empty())
        .expect("request");
    let res = h.app.clone().oneshot(req).await.expect("infallible");
    let status = res.status().as_u16();
    let header = |name: &str| {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header("content-type").unwrap_or_default();
    let disposition = header("content-disposition");
    let body = to_bytes(res.into_body(), 1 << 20).await.expect("body");
    (status, content_type, body.to_vec(), disposition)
}

#[tokio::test]
async fn recordings_metadata_audio_and_deletion() {
    let (h, records) = harness().await;
    let r = h
        .op("GET", "/v1/tenants/acme/recordings/rec-a", Value::Null)
        .await;
    assert_eq!(r.ok(200)["call_id"], "c1");
    let (status, content_type, body, disposition) =
        raw(&h, "GET", "/v1/tenants/acme/recordings/rec-a/audio").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "audio/wav");
    assert_eq!(body, b"RIFF-rec-a");
    assert_eq!(
        disposition.as_deref(),
        Some("attachment; filename=\"rec-a.wav\"")
    );
    let r = h
        .op("DELETE", "/v1/tenants/acme/recordings/rec-a", Value::Null)
        .await;
    assert_eq!(r.status.as_u16(), 204);
    assert_eq!(records.recordings.lock().len(), 1);
    for (method, path) in [
        ("GET", "/v1/tenants/acme/recordings/rec-a"),
        ("GET", "/v1/tenants/acme/recordings/rec-a/audio"),
        ("DELETE", "/v1/tenants/acme/recordings/rec-a"),
    ] {
        h.op(method, path, Value::Null)
            .await
            .error(404, "unknown_recording", Some("id"));
    }
    for bad in [".hidden", "a%2Fb", "a%20b", &"x".repeat(129)] {
        h.op(
            "GET",
            &format!("/v1/tenants/acme/recordings/{bad}"),
            Value::Null,
        )
        .await
        .error(400, "invalid_id", Some("id"));
    }
}

#[tokio::test]
async fn followers_answer_records_themselves() {
    let (h, _) = harness().await;
    h.cluster.set_role(Role::Follower(Some((
        2,
        Member {
            raft_addr: "10.0.0.2:7000".into(),
            api_addr: "10.0.0.2:8080".into(),
        },
    ))));
    let r = h.op("GET", "/v1/tenants/acme/cdrs", Value::Null).await;
    assert_eq!(ids(r.ok(200)), ["a3", "a2", "a1"]);
    h.cluster.set_role(Role::Unavailable);
    let r = h
        .op("GET", "/v1/tenants/acme/recordings", Value::Null)
        .await;
    assert_eq!(ids(r.ok(200)), ["rec-a"], "no quorum needed either");
}

#[tokio::test]
async fn without_records_the_endpoints_say_so() {
    let h = Harness::seeded().await;
    for (method, path) in ROUTES
        .iter()
        .filter(|(_, p)| p.contains("/cdrs") || p.contains("/recordings"))
    {
        h.op(method, path, Value::Null)
            .await
            .error(501, "records_not_configured", None);
    }
}

#[tokio::test]
async fn store_failures_are_errors_not_empty_lists() {
    let seeded = Harness::seeded().await;
    let auth = AuthConfig::with_operator_token(OPERATOR).expect("long enough");
    let h = Harness {
        app: router_with_records(seeded.cluster.clone(), auth, Some(Arc::new(BrokenRecords))),
        cluster: seeded.cluster,
    };
    let r = h.op("GET", "/v1/tenants/acme/cdrs", Value::Null).await;
    r.error(500, "records_store", None);
    assert!(
        r.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("disk on fire"))
    );
    let r = h
        .op("GET", "/v1/tenants/acme/recordings", Value::Null)
        .await;
    r.error(501, "records_not_configured", None);
    assert!(
        r.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("records.recordings_dir")),
        "{:#}",
        r.body
    );
}

#[tokio::test]
async fn openapi_describes_the_records() {
    let h = Harness::new();
    let doc = h.raw("GET", "/openapi.json", None, None, b"").await;
    let doc = doc.ok(200);
    let schemas = &doc["components"]["schemas"];
    for schema in ["CdrView", "CdrLegView", "QualityView", "RecordingView"] {
        assert!(schemas[schema].is_object(), "{schema}");
    }
    let params = doc["paths"]["/v1/tenants/{tenant}/cdrs"]["get"]["parameters"]
        .as_array()
        .expect("parameters");
    let names: Vec<&str> = params.iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, ["tenant", "since", "until", "limit"]);
    let audio = &doc["paths"]["/v1/tenants/{tenant}/recordings/{id}/audio"]["get"];
    assert!(audio["responses"]["200"]["content"]["audio/wav"].is_object());
}
