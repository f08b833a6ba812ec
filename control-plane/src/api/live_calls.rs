//! `/v1/tenants/{tenant}/calls/{call_id}/recording`: on-demand recording of a live call.
//!
//! Calls live on the nodes, not in the control plane: the request is committed to the
//! Raft log as a call-control message and reaches every node through its watch stream;
//! the node holding the call acts on it within a moment. So the answer is **202
//! Accepted**: the request is durable and delivered, not yet carried out. The recording
//! appears in the call's CDR (`recording_id`) and under `/recordings` when the call ends.
//! The call is named by the caller's Call-ID, as in its CDR. A tenant whose recording
//! policy is `never` gets 409 for `start` and `resume`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::cluster::Cluster;
use crate::model::{CallAction, Command};

use super::Api;
use super::auth::Principal;
use super::error::{ApiError, Ctx, ErrorBody};
use super::extract::{ApiJson, Params};

/// What to do with the call's recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordingActionBody {
    Start,
    Stop,
    Pause,
    Resume,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordingRequestBody {
    pub action: RecordingActionBody,
}

/// The accepted request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RecordingRequestAccepted {
    pub call_id: String,
    pub action: RecordingActionBody,
}

#[utoipa::path(post, path = "/v1/tenants/{tenant}/calls/{call_id}/recording", tag = "calls",
    params(("tenant" = String, Path), ("call_id" = String, Path, description = "the caller's Call-ID")),
    request_body = RecordingRequestBody,
    responses((status = 202, body = RecordingRequestAccepted), (status = "default", body = ErrorBody)))]
pub(super) async fn recording<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
    ApiJson(body): ApiJson<RecordingRequestBody>,
) -> Result<(StatusCode, Json<RecordingRequestAccepted>), ApiError> {
    let tenant = p.tenant(&who)?;
    let call_id = p.raw("call_id")?.to_owned();
    if call_id.is_empty() || call_id.len() > 256 || call_id.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_call_id",
            "call_id must be 1-256 characters without control characters",
        )
        .with_field("call_id"));
    }
    let action = match body.action {
        RecordingActionBody::Start => CallAction::StartRecording,
        RecordingActionBody::Stop => CallAction::StopRecording,
        RecordingActionBody::Pause => CallAction::PauseRecording,
        RecordingActionBody::Resume => CallAction::ResumeRecording,
    };
    api.apply(
        &who,
        &Ctx::Tenant,
        Command::ControlCall {
            tenant,
            call_id: call_id.clone(),
            action,
        },
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RecordingRequestAccepted {
            call_id,
            action: body.action,
        }),
    ))
}

/// A click-to-call request: ring the agent's phone, then dial the number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClickToCallBody {
    /// The extension rung first.
    #[schema(example = "2001")]
    pub agent: String,
    /// The customer's number (national format, or `+` and up to 15 digits), dialled
    /// through the tenant's outbound trunk once the agent answered.
    #[schema(example = "0909123456")]
    pub number: String,
}

/// A click-to-call request as the control plane holds it (for a minute).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClickToCallView {
    pub id: u64,
    pub agent: String,
    pub number: String,
    /// The node that took it (places the call); null until one did.
    pub node: Option<String>,
}

/// `POST /v1/tenants/{tenant}/calls`: click-to-call. 202: the request is committed and
/// the first node to see it places the call (its CDR shows it, destination
/// `click_to_call:<agent>`).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/calls", tag = "calls",
    params(("tenant" = String, Path)),
    request_body = ClickToCallBody,
    responses((status = 202, body = ClickToCallView), (status = "default", body = ErrorBody)))]
pub(super) async fn click_to_call<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
    ApiJson(body): ApiJson<ClickToCallBody>,
) -> Result<(StatusCode, Json<ClickToCallView>), ApiError> {
    let tenant = p.tenant(&who)?;
    let agent = crate::model::Id::new(&body.agent).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_id",
            e.to_string(),
        )
        .with_field("agent")
    })?;
    let number = crate::model::normalize_number(&body.number);
    if crate::model::check_external_number(&number).is_err() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_external_number",
            format!(
                "{:?} is not a phone number (an optional + and 3-15 digits)",
                body.number
            ),
        )
        .with_field("number"));
    }
    if !api.cluster.read(|s| s.extension(&tenant, &agent).is_some()) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_extension",
            format!("no extension {agent} in tenant {tenant}"),
        )
        .with_field("agent"));
    }
    let outcome = api
        .apply_for(
            &who,
            &Ctx::Tenant,
            Command::ClickToCall {
                tenant,
                agent: agent.clone(),
                number: number.clone(),
            },
        )
        .await?;
    let crate::model::Outcome::ClickToCallQueued { seq } = outcome else {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unexpected_outcome",
            format!("{outcome:?}"),
        ));
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(ClickToCallView {
            id: seq,
            agent: agent.to_string(),
            number,
            node: None,
        }),
    ))
}

/// `GET /v1/tenants/{tenant}/calls/{id}`: a click-to-call request (404 a minute after
/// it was made).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/calls/{id}", tag = "calls",
    params(("tenant" = String, Path), ("id" = u64, Path)),
    responses((status = 200, body = ClickToCallView), (status = "default", body = ErrorBody)))]
pub(super) async fn click_to_call_status<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<Json<ClickToCallView>, ApiError> {
    let tenant = p.tenant(&who)?;
    let raw = p.raw("id")?;
    let unknown = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_click_to_call",
            format!("no click-to-call request {raw} (they are kept for a minute)"),
        )
        .with_field("id")
    };
    let seq: u64 = raw.parse().map_err(|_| unknown())?;
    api.cluster
        .read(|s| {
            s.click_to_call_request(seq)
                .filter(|c| c.tenant == tenant)
                .map(|c| ClickToCallView {
                    id: c.seq,
                    agent: c.agent.to_string(),
                    number: c.number.clone(),
                    node: c.node.clone(),
                })
        })
        .map(Json)
        .ok_or_else(unknown)
}
