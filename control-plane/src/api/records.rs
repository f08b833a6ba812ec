//! Call records through the admin API: a tenant's CDRs and recordings.
//!
//! - `GET /v1/tenants/{tenant}/cdrs?since=&until=&limit=`: CDRs whose setup time is in
//!   `[since, until)`, newest first (`since`/`until`: RFC 3339 or Unix milliseconds;
//!   `limit` 1-10000, default 100).
//! - `GET /v1/tenants/{tenant}/recordings`, `GET|DELETE .../recordings/{id}`,
//!   `GET .../recordings/{id}/audio` (`audio/wav`).
//!
//! The data is not in Raft: CDRs and recordings live in stores the nodes ship to. The
//! control-plane crate does not know them; the process serving the API passes a
//! [`Records`] implementation to [`super::router_with_records`] (the node crate's is
//! over its CDR store and recordings store). Reads are local, so followers answer them
//! too, without a redirect. A replica without one answers 501 `records_not_configured`.
//! Tenant tokens see their own tenant only (another tenant is 404, as everywhere).

mod schema;
pub mod time;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;

use crate::cluster::Cluster;
use crate::model::Id;

pub use schema::{
    CdrLegView, CdrView, QualityView, QueueEventView, QueueLogLine, QueueVisitView, RatingView,
    RecordingView, StreamQualityView,
};
pub use time::{format_time, parse_time};

use super::Api;
use super::auth::Principal;
use super::error::{ApiError, ErrorBody};
use super::extract::Params;

/// CDRs a query answers when it gives no `limit`.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `limit`.
pub const MAX_LIMIT: usize = 10_000;

/// A boxed future, so [`Records`] can be a trait object.
pub type RecordsFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, RecordsError>> + Send + 'a>>;

/// Which CDRs to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CdrQuery {
    /// Setup time at or after this (Unix ms).
    pub since_ms: u64,
    /// Setup time before this (Unix ms); `u64::MAX` for no bound.
    pub until_ms: u64,
    /// At most this many, the newest.
    pub limit: usize,
}

/// Why a records operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordsError {
    /// This replica has no store of that kind configured; names the kind (`CDRs`,
    /// `recordings`) and the config key that enables it.
    #[error("{what} are not served by this replica: set {key} in its config")]
    NotConfigured {
        what: &'static str,
        key: &'static str,
    },
    /// The store failed (I/O, a corrupt file); the message says what.
    #[error("{0}")]
    Store(String),
}

/// CDRs and recordings, as the API serves them. Values are the stores' own JSON (see
/// [`CdrView`] and [`RecordingView`] for their fields). Tenants and ids are checked
/// before these are called: tenant ids are valid [`Id`]s, recording ids are 1-128 of
/// `A-Z a-z 0-9 . _ -` not starting with a dot.
pub trait Records: fmt::Debug + Send + Sync + 'static {
    /// The tenant's CDRs matching `query`, newest first.
    fn cdrs(&self, tenant: String, query: CdrQuery) -> RecordsFuture<'_, Vec<Value>>;
    /// The tenant's recordings' metadata, oldest first.
    fn recordings(&self, tenant: String) -> RecordsFuture<'_, Vec<Value>>;
    /// One recording's metadata; `None` when the tenant has no such recording.
    fn recording(&self, tenant: String, id: String) -> RecordsFuture<'_, Option<Value>>;
    /// One recording's WAV file.
    fn recording_audio(&self, tenant: String, id: String) -> RecordsFuture<'_, Option<Bytes>>;
    /// Deletes a recording; false when the tenant had no such recording.
    fn delete_recording(&self, tenant: String, id: String) -> RecordsFuture<'_, bool>;
}

impl From<RecordsError> for ApiError {
    fn from(e: RecordsError) -> ApiError {
        match e {
            RecordsError::NotConfigured { .. } => ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                "records_not_configured",
                e.to_string(),
            ),
            RecordsError::Store(message) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "records_store",
                format!("reading the records store failed: {message}"),
            ),
        }
    }
}

/// `?since=&until=&limit=` of `GET .../cdrs`.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documentation only: the handler parses the raw pairs to name bad ones.
struct CdrParams {
    /// Calls set up at or after this: RFC 3339 (`2026-11-23T00:00:00Z`,
    /// `2026-11-23T07:00:00+07:00`), a date (`2026-11-23`, midnight UTC) or Unix ms.
    since: Option<String>,
    /// Calls set up before this; same forms as `since`.
    until: Option<String>,
    /// At most this many, the newest (1-10000, default 100).
    limit: Option<u32>,
}

/// The checks every records request makes: the principal may see the tenant, the
/// replica serves records, and the tenant exists (in this replica's state: a local
/// read, so a follower answers without asking the leader).
fn records<C: Cluster>(
    api: &Api<C>,
    who: &Principal,
    p: &Params,
) -> Result<(Id, Arc<dyn Records>), ApiError> {
    let tenant = p.tenant(who)?;
    let records = api.records.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "records_not_configured",
            "CDRs and recordings are not served by this replica: it runs without [records] \
             (use a replica started by `tongdai control-plane` or `tongdai up`)",
        )
    })?;
    if !api.cluster.read(|s| s.tenant(&tenant).is_some()) {
        return Err(super::auth::unknown_tenant(&tenant));
    }
    Ok((tenant, records))
}

/// Parses the CDR query's parameters; an unknown or malformed one is a 400 naming it.
fn cdr_query(pairs: &BTreeMap<String, String>) -> Result<CdrQuery, ApiError> {
    let bad = |field: &str, message: String| {
        ApiError::bad_request("invalid_query", message).with_field(field)
    };
    let mut query = CdrQuery {
        since_ms: 0,
        until_ms: u64::MAX,
        limit: DEFAULT_LIMIT,
    };
    for (key, value) in pairs {
        match key.as_str() {
            "since" | "until" => {
                let ms = parse_time(value).map_err(|problem| {
                    bad(
                        key,
                        format!(
                            "{key} {:?} {problem}; expected {}",
                            value.chars().take(64).collect::<String>(),
                            time::EXPECTED
                        ),
                    )
                })?;
                if key == "since" {
                    query.since_ms = ms;
                } else {
                    query.until_ms = ms;
                }
            }
            "limit" => {
                query.limit = value
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        bad(
                            "limit",
                            format!(
                                "limit {:?} is not a number from 1 to {MAX_LIMIT}",
                                value.chars().take(64).collect::<String>()
                            ),
                        )
                    })?;
            }
            other => {
                return Err(ApiError::bad_request(
                    "unknown_parameter",
                    format!(
                        "unknown query parameter {:?}; this endpoint takes since, until and limit",
                        other.chars().take(64).collect::<String>()
                    ),
                )
                .with_field(other.chars().take(64).collect::<String>()));
            }
        }
    }
    if query.since_ms >= query.until_ms {
        return Err(bad(
            "until",
            format!(
                "until ({}) must be later than since ({})",
                format_time(query.until_ms),
                format_time(query.since_ms)
            ),
        ));
    }
    Ok(query)
}

/// The `{id}` of a recording: 1-128 of `A-Z a-z 0-9 . _ -`, not starting with a dot.
fn recording_id(p: &Params) -> Result<String, ApiError> {
    let raw = p.raw("id")?;
    let ok = (1..=128).contains(&raw.len())
        && !raw.starts_with('.')
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(ApiError::bad_request(
            "invalid_id",
            format!(
                "id in the URL: {:?} is not a recording id (1-128 of A-Z a-z 0-9 . _ -)",
                raw.chars().take(64).collect::<String>()
            ),
        )
        .with_field("id"))
    }
}

fn unknown_recording(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_recording",
        format!("unknown recording {id}"),
    )
    .with_field("id")
}

/// A tenant's CDRs, newest first.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/cdrs", tag = "records",
    params(("tenant" = String, Path), CdrParams),
    responses((status = 200, body = [CdrView]), (status = "default", body = ErrorBody)))]
pub(super) async fn cdrs<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let (tenant, records) = records(&api, &who, &p)?;
    let Query(pairs) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let query = cdr_query(&pairs)?;
    Ok(Json(records.cdrs(tenant.as_str().to_owned(), query).await?))
}

/// A tenant's queue event log, oldest first: every queue event of the calls the CDR
/// query selects (`since`, `until`, `limit` as for CDRs: `limit` counts calls), with
/// `queue=ID` for one queue only. The lines come from the CDRs' `queues`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/queue-log", tag = "records",
    params(("tenant" = String, Path), CdrParams,
        ("queue" = Option<String>, Query, description = "Only this queue's events")),
    responses((status = 200, body = [QueueLogLine]), (status = "default", body = ErrorBody)))]
pub(super) async fn queue_log<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Json<Vec<QueueLogLine>>, ApiError> {
    let (tenant, records) = records(&api, &who, &p)?;
    let Query(mut pairs) =
        query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let only = pairs.remove("queue");
    let query = cdr_query(&pairs)?;
    let cdrs = records.cdrs(tenant.as_str().to_owned(), query).await?;
    Ok(Json(queue_log_lines(&cdrs, only.as_deref())))
}

/// The queue events of `cdrs`, oldest first (by time, then call and order of events).
fn queue_log_lines(cdrs: &[Value], only: Option<&str>) -> Vec<QueueLogLine> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let mut lines = Vec::new();
    for cdr in cdrs {
        let call_id = text(&cdr["call_id"]);
        for visit in cdr["queues"].as_array().into_iter().flatten() {
            let queue = text(&visit["queue"]);
            if only.is_some_and(|q| q != queue) {
                continue;
            }
            for e in visit["events"].as_array().into_iter().flatten() {
                let at_ms = e["at_ms"].as_u64().unwrap_or(0);
                lines.push(QueueLogLine {
                    at_ms,
                    time: format_time(at_ms),
                    call_id: call_id.clone(),
                    queue: queue.clone(),
                    agent: e["agent"].as_str().map(str::to_owned),
                    event: text(&e["event"]),
                    data: text(&e["data"]),
                });
            }
        }
    }
    // Stable: a call's events keep their order at equal times.
    lines.sort_by_key(|l| l.at_ms);
    lines
}

/// A tenant's recordings, oldest first.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/recordings", tag = "records",
    params(("tenant" = String, Path)),
    responses((status = 200, body = [RecordingView]), (status = "default", body = ErrorBody)))]
pub(super) async fn recordings<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<Json<Vec<Value>>, ApiError> {
    let (tenant, records) = records(&api, &who, &p)?;
    Ok(Json(records.recordings(tenant.as_str().to_owned()).await?))
}

/// One recording's metadata.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/recordings/{id}", tag = "records",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = RecordingView), (status = "default", body = ErrorBody)))]
pub(super) async fn recording<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let (tenant, records) = records(&api, &who, &p)?;
    let id = recording_id(&p)?;
    records
        .recording(tenant.as_str().to_owned(), id.clone())
        .await?
        .map(Json)
        .ok_or_else(|| unknown_recording(&id))
}

/// One recording's audio: stereo WAV, caller left, callee right.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/recordings/{id}/audio", tag = "records",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 200, content_type = "audio/wav", body = Vec<u8>),
        (status = "default", body = ErrorBody)))]
pub(super) async fn recording_audio<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<Response, ApiError> {
    let (tenant, records) = records(&api, &who, &p)?;
    let id = recording_id(&p)?;
    let audio = records
        .recording_audio(tenant.as_str().to_owned(), id.clone())
        .await?
        .ok_or_else(|| unknown_recording(&id))?;
    let mut response = Body::from(audio).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    // The id is checked to be filename-safe, so it needs no quoting beyond the quotes.
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{id}.wav\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// Deletes a recording (audio and metadata).
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/recordings/{id}", tag = "records",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = "default", body = ErrorBody)))]
pub(super) async fn delete_recording<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<StatusCode, ApiError> {
    let (tenant, records) = records(&api, &who, &p)?;
    let id = recording_id(&p)?;
    if records
        .delete_recording(tenant.as_str().to_owned(), id.clone())
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(unknown_recording(&id))
    }
}
