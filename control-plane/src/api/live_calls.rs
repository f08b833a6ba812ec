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
