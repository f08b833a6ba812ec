//! Every failure the API answers, as one JSON shape:
//! `{"error": "<code>", "message": "...", "field": "<json path>"}` (`field` only when
//! one field is to blame).
//!
//! Statuses: 400 unreadable request (malformed JSON, bad path parameter), 401 no or
//! unknown token, 403 operator-only or a field a tenant token may not change, 404 the
//! resource the URL names does not exist (or belongs to another tenant, for a tenant
//! token), 409 exists / still in use, 413 body too large, 415 not JSON, 422 a value
//! the model refuses (including references in the body to things that do not exist),
//! 307 to the leader, 503 no leader or no quorum.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::cluster::ClusterError;
use crate::model::{BoundedField, CommandError, Ha1Algorithm, Id, QuotaKind, TextField};

use super::auth::Principal;

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Machine-readable code, e.g. `unknown_field`, `extension_exists`, `not_leader`.
    pub error: String,
    /// What was wrong and what to do, for people.
    pub message: String,
    /// JSON path of the offending field (e.g. `quotas.max_registrations`,
    /// `members[1]`), or the path parameter's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// A failed request: status, body, and what the response needs besides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
    /// API address (`host:port`) of the leader, for a 307; the redirect layer adds the
    /// request's path to it.
    pub leader: Option<String>,
}

/// Marks a response as a redirect to the leader; read by the redirect layer.
#[derive(Debug, Clone)]
pub(super) struct LeaderRedirect(pub String);

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                error: code.to_owned(),
                message: message.into(),
                field: None,
            },
            leader: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> ApiError {
        self.body.field = Some(field.into());
        self
    }

    pub(super) fn bad_request(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(super) fn invalid(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_value", message).with_field(field)
    }

    pub(super) fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub(super) fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// The identifying field in a body names something other than the URL.
    pub(super) fn path_mismatch(field: &str, path: &str, body: &str) -> ApiError {
        ApiError::invalid(
            field,
            format!("{field} {body:?} in the body does not match {path:?} in the URL"),
        )
        .with_code("path_mismatch")
    }

    pub(super) fn with_code(mut self, code: &str) -> ApiError {
        code.clone_into(&mut self.body.error);
        self
    }

    /// Maps a refusal of the state machine. `ctx` says what the request was about, so
    /// the right field is named; a tenant `who` never learns about other tenants.
    pub fn command(err: CommandError, who: &Principal, ctx: &Ctx) -> ApiError {
        use CommandError as E;
        use StatusCode as S;
        let message = err.to_string();
        let (status, code, field): (S, &str, Option<String>) = match &err {
            E::InvalidId { .. } => (S::UNPROCESSABLE_ENTITY, "invalid_id", None),
            E::InvalidText { field, .. } => (
                S::UNPROCESSABLE_ENTITY,
                "invalid_text",
                Some(text_field(*field).into()),
            ),
            E::UnknownTenant(_) => (S::NOT_FOUND, "unknown_tenant", Some("tenant".into())),
            E::TenantExists(_) => (S::CONFLICT, "tenant_exists", Some("id".into())),
            E::QuotaOutOfBounds { quota, .. } => (
                S::UNPROCESSABLE_ENTITY,
                "quota_out_of_bounds",
                Some(format!("quotas.{}", quota_field(*quota))),
            ),
            E::TenantNotEmpty { .. } => (S::CONFLICT, "tenant_not_empty", None),
            E::NoCodecs => (
                S::UNPROCESSABLE_ENTITY,
                "no_codecs",
                Some("calls.codecs".into()),
            ),
            E::DuplicateCodec(_) => (
                S::UNPROCESSABLE_ENTITY,
                "duplicate_codec",
                Some("calls.codecs".into()),
            ),
            E::InvalidCallerId(_) => (
                S::UNPROCESSABLE_ENTITY,
                "invalid_caller_id",
                Some("calls.caller_id".into()),
            ),
            E::UnknownCallerId { .. } => (
                S::UNPROCESSABLE_ENTITY,
                "unknown_caller_id",
                Some("calls.caller_id".into()),
            ),
            E::CallerIdInboundOnly { .. } => (
                S::UNPROCESSABLE_ENTITY,
                "caller_id_inbound_only",
                Some("calls.caller_id".into()),
            ),
            E::NumberInUse { .. } => (S::CONFLICT, "number_in_use", None),
            E::RecordingNever(_) => (S::CONFLICT, "recording_never", Some("action".into())),
            E::InvalidNumber { .. } => (
                S::UNPROCESSABLE_ENTITY,
                "invalid_number",
                Some("digits".into()),
            ),
            E::InvalidExternalNumber(_) => (
                S::UNPROCESSABLE_ENTITY,
                "invalid_external_number",
                Some(ctx.external_number_field().into()),
            ),
            E::UnknownClickToCall(_) => (S::NOT_FOUND, "unknown_click_to_call", Some("id".into())),
            E::ClickToCallTaken { .. } => (S::CONFLICT, "click_to_call_taken", None),
            E::InvalidCallbackDigit(_) => (
                S::UNPROCESSABLE_ENTITY,
                "invalid_callback_digit",
                Some("callback_digit".into()),
            ),
            E::InvalidVipCaller(_) => (
                S::UNPROCESSABLE_ENTITY,
                "invalid_vip_caller",
                Some("vip_callers".into()),
            ),
            E::NumberExists(_) => (S::CONFLICT, "number_exists", Some("digits".into())),
            E::NumberOwnedByOtherTenant { number, .. } => {
                if let Principal::Tenant(_) = who {
                    // A tenant must not learn that the number exists elsewhere.
                    return ApiError::new(
                        S::NOT_FOUND,
                        "unknown_number",
                        format!("unknown number {number}"),
                    )
                    .with_field("digits");
                }
                (
                    S::FORBIDDEN,
                    "number_owned_by_other_tenant",
                    Some("digits".into()),
                )
            }
            E::UnknownNumber(_) => (S::NOT_FOUND, "unknown_number", Some("digits".into())),
            E::MissingTariffBand(_) => (
                S::UNPROCESSABLE_ENTITY,
                "missing_tariff_band",
                Some("tariff_band".into()),
            ),
            E::UnexpectedTariffBand { .. } => (
                S::UNPROCESSABLE_ENTITY,
                "unexpected_tariff_band",
                Some("tariff_band".into()),
            ),
            E::UnknownExtension { extension, .. } => match ctx {
                Ctx::Extension => (S::NOT_FOUND, "unknown_extension", Some("ext".into())),
                _ => (
                    S::UNPROCESSABLE_ENTITY,
                    "unknown_extension",
                    Some(ctx.reference_field(extension, RefKind::Extension)),
                ),
            },
            E::ExtensionExists { .. } => (S::CONFLICT, "extension_exists", Some("ext".into())),
            E::InvalidHa1 { algorithm, .. } => (
                S::UNPROCESSABLE_ENTITY,
                "invalid_ha1",
                Some(
                    match algorithm {
                        Ha1Algorithm::Md5 => "ha1_md5",
                        Ha1Algorithm::Sha256 => "ha1_sha256",
                    }
                    .into(),
                ),
            ),
            E::NoForwardCondition => (
                S::UNPROCESSABLE_ENTITY,
                "no_forward_condition",
                Some("forward_to_mobile.when".into()),
            ),
            E::ExtensionInUse { .. } => (S::CONFLICT, "extension_in_use", None),
            E::UnknownHuntGroup { id, .. } => match ctx {
                Ctx::HuntGroup { id: target, .. } if target == id => {
                    (S::NOT_FOUND, "unknown_hunt_group", Some("id".into()))
                }
                _ => (
                    S::UNPROCESSABLE_ENTITY,
                    "unknown_hunt_group",
                    Some(ctx.reference_field(id, RefKind::HuntGroup)),
                ),
            },
            E::HuntGroupExists { .. } => (S::CONFLICT, "hunt_group_exists", Some("id".into())),
            E::EmptyHuntGroup(_) => (
                S::UNPROCESSABLE_ENTITY,
                "empty_hunt_group",
                Some("members".into()),
            ),
            E::DuplicateMember { member, .. } => (
                S::UNPROCESSABLE_ENTITY,
                "duplicate_member",
                Some(ctx.member_field(member, true)),
            ),
            E::HuntGroupLoop(_) => (
                S::UNPROCESSABLE_ENTITY,
                "hunt_group_loop",
                Some("no_answer".into()),
            ),
            E::HuntGroupInUse { .. } => (S::CONFLICT, "hunt_group_in_use", None),
            E::UnknownQueue { id, .. } => match ctx {
                Ctx::Queue => (S::NOT_FOUND, "unknown_queue", Some("id".into())),
                _ => (
                    S::UNPROCESSABLE_ENTITY,
                    "unknown_queue",
                    Some(ctx.reference_field(id, RefKind::Queue)),
                ),
            },
            E::QueueExists { .. } => (S::CONFLICT, "queue_exists", Some("id".into())),
            E::QueueInUse { .. } => (S::CONFLICT, "queue_in_use", None),
            E::UnknownTrunk { id, .. } => match ctx {
                Ctx::Trunk { id: target } if target == id => {
                    (S::NOT_FOUND, "unknown_trunk", Some("id".into()))
                }
                Ctx::Trunk { .. } => (
                    S::UNPROCESSABLE_ENTITY,
                    "unknown_trunk",
                    Some("failover".into()),
                ),
                _ => (
                    S::UNPROCESSABLE_ENTITY,
                    "unknown_trunk",
                    Some("calls.outbound_trunk".into()),
                ),
            },
            E::TrunkExists { .. } => (S::CONFLICT, "trunk_exists", Some("id".into())),
            E::InvalidTrunkAddress { .. } => (
                S::UNPROCESSABLE_ENTITY,
                "invalid_address",
                Some("address".into()),
            ),
            E::InvalidTrustedSource { index, .. } => (
                S::UNPROCESSABLE_ENTITY,
                "invalid_trusted_source",
                Some(format!("trusted_sources[{index}]")),
            ),
            E::TrustedSourceInUse {
                index,
                source_addr,
                tenant,
                ..
            } => {
                let field = format!("trusted_sources[{index}]");
                if let Principal::Tenant(own) = who
                    && own != tenant
                {
                    // Another tenant's trunk: say no more than that it is taken.
                    return ApiError::new(
                        S::CONFLICT,
                        "trusted_source_in_use",
                        format!("trusted source {source_addr} is already trusted by another trunk"),
                    )
                    .with_field(field);
                }
                (S::CONFLICT, "trusted_source_in_use", Some(field))
            }
            E::InvalidTrunkDomain(_) => (
                S::UNPROCESSABLE_ENTITY,
                "invalid_domain",
                Some("registration.domain".into()),
            ),
            E::TrunkFailoverLoop(_) => (
                S::UNPROCESSABLE_ENTITY,
                "failover_loop",
                Some("failover".into()),
            ),
            E::TrunkInUse { .. } => (S::CONFLICT, "trunk_in_use", None),
            E::UnknownAgent { .. } if *ctx == Ctx::Queue => (
                S::UNPROCESSABLE_ENTITY,
                "unknown_agent",
                Some("members".into()),
            ),
            E::UnknownAgent { .. } => (S::NOT_FOUND, "unknown_agent", Some("extension".into())),
            E::AgentExists { .. } => (S::CONFLICT, "agent_exists", Some("extension".into())),
            E::UnknownApiToken { .. } => (S::NOT_FOUND, "unknown_token", Some("id".into())),
            E::ApiTokenExists { .. } => (S::CONFLICT, "token_exists", Some("id".into())),
            E::InvalidApiTokenHash | E::ApiTokenHashInUse => {
                return ApiError::internal(format!("token generation failed: {message}"));
            }
            E::OutOfBounds { field, .. } => (
                S::UNPROCESSABLE_ENTITY,
                "out_of_bounds",
                bounded_field(*field).map(str::to_owned),
            ),
            E::StaleCseq { .. } | E::TooManyContacts { .. } => {
                (S::CONFLICT, "registration_refused", None)
            }
            E::RegistrationQuotaExceeded { .. } => (S::CONFLICT, "quota_exceeded", None),
            E::SweepInFuture { .. } => (S::UNPROCESSABLE_ENTITY, "invalid_value", None),
            // Only nodes propose load reports; the API never does.
            E::TenantReportedTwice(_) => (
                S::UNPROCESSABLE_ENTITY,
                "invalid_value",
                Some("tenants".into()),
            ),
            E::TooManyReportingNodes { .. } => (S::CONFLICT, "too_many_nodes", None),
            E::UnknownDrainRequest { .. } => {
                (S::NOT_FOUND, "unknown_drain_request", Some("seq".into()))
            }
            E::TooManyDrainRequests { .. } => (S::CONFLICT, "too_many_drain_requests", None),
            E::DuplicateQueueMember { .. } => (
                S::UNPROCESSABLE_ENTITY,
                "duplicate_member",
                Some("members".into()),
            ),
            E::QueueOverflowLoop(_) => (
                S::UNPROCESSABLE_ENTITY,
                "overflow_loop",
                Some("overflow.destination".into()),
            ),
            E::QueueHasCallers { .. } => (S::CONFLICT, "queue_has_callers", None),
            E::AgentInUse { .. } => (S::CONFLICT, "agent_in_use", None),
            E::QueueFull { .. } => (S::CONFLICT, "queue_full", None),
            E::QueueEmpty(_) => (S::CONFLICT, "queue_empty", None),
            E::AlreadyQueued { .. } => (S::CONFLICT, "already_queued", Some("call_id".into())),
            E::NotQueued { .. } => (S::NOT_FOUND, "not_queued", Some("call_id".into())),
            E::UnknownOffer { .. } => (S::CONFLICT, "unknown_offer", Some("offer".into())),
            E::NotOnQueueCall { .. } => (S::CONFLICT, "not_on_queue_call", None),
            E::TickInFuture { .. } => (S::UNPROCESSABLE_ENTITY, "tick_in_future", None),
        };
        let error = ApiError::new(status, code, message);
        match field {
            Some(f) => error.with_field(f),
            None => error,
        }
    }
}

/// What a write was about, so a refusal names the right field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ctx {
    Tenant,
    Number,
    Extension,
    HuntGroup {
        id: Id,
        members: Vec<Id>,
    },
    Queue,
    Agent,
    Token,
    Trunk {
        id: Id,
    },
    /// A request about a SIP node (drain).
    Node,
}

#[derive(Debug, Clone, Copy)]
pub enum RefKind {
    Extension,
    HuntGroup,
    Queue,
}

impl Ctx {
    fn external_number_field(&self) -> &'static str {
        match self {
            Ctx::Extension => "forward_to_mobile.number",
            Ctx::HuntGroup { .. } => "no_answer.number",
            _ => "destination.number",
        }
    }

    /// The body field that refers to `id`, which does not exist.
    fn reference_field(&self, id: &Id, kind: RefKind) -> String {
        match (self, kind) {
            (Ctx::Agent, _) => "extension".into(),
            (Ctx::HuntGroup { .. }, RefKind::Extension) => self.member_field(id, false),
            (Ctx::HuntGroup { .. }, _) => "no_answer.id".into(),
            _ => "destination.id".into(),
        }
    }

    /// `members[i]` for a member of the hunt group in `self` (the second occurrence
    /// when `duplicate`), `no_answer.id` otherwise.
    fn member_field(&self, member: &Id, duplicate: bool) -> String {
        let Ctx::HuntGroup { members, .. } = self else {
            return "members".into();
        };
        let mut found = members
            .iter()
            .enumerate()
            .filter(|(_, m)| *m == member)
            .map(|(i, _)| i);
        let first = found.next();
        let index = if duplicate { found.next() } else { first };
        match index {
            Some(i) => format!("members[{i}]"),
            None => "no_answer.id".into(),
        }
    }
}

fn text_field(field: TextField) -> &'static str {
    match field {
        TextField::TenantName | TextField::QueueName => "name",
        TextField::DisplayName => "display_name",
        TextField::PauseReason => "pause_reason",
        TextField::CallId => "call_id",
        TextField::Contact => "contact",
        TextField::ContactParams => "params",
        TextField::Source => "source",
        TextField::TrunkUsername => "registration.username",
        TextField::TrunkPassword => "registration.password",
        TextField::NodeName => "node",
        TextField::Caller => "caller",
    }
}

pub(super) fn quota_field(quota: QuotaKind) -> &'static str {
    match quota {
        QuotaKind::MaxConcurrentCalls => "max_concurrent_calls",
        QuotaKind::MaxCallAttemptsPerSec => "max_call_attempts_per_sec",
        QuotaKind::MaxRegistrations => "max_registrations",
    }
}

fn bounded_field(field: BoundedField) -> Option<&'static str> {
    Some(match field {
        BoundedField::RingSecs => "ring_secs",
        BoundedField::HuntGroupMembers => "members",
        BoundedField::MaxWaitSecs => "max_wait_secs",
        BoundedField::MaxQueueLen => "max_len",
        BoundedField::SkillLevel | BoundedField::Skills => "skills",
        BoundedField::TrustedSources => "trusted_sources",
        BoundedField::TrunkMaxCalls => "max_concurrent_calls",
        BoundedField::TrunkRegistrationExpires => "registration.expires_secs",
        BoundedField::ReportTenants => "tenants",
        BoundedField::QueueMembers => "members",
        BoundedField::Penalty => "members.penalty",
        BoundedField::OfferRingSecs => "ring_secs",
        BoundedField::WrapUpSecs => "wrap_up_secs",
        BoundedField::TierWidenSecs => "tier_widen_secs",
        BoundedField::ServiceLevelSecs => "service_level_secs",
        BoundedField::OverflowAtLen => "overflow.at_len",
        BoundedField::OverflowAfterWaitSecs => "overflow.after_wait_secs",
        BoundedField::QueuePriority => "priority",
        BoundedField::VipCallers => "vip_callers",
        BoundedField::AnnounceEverySecs => "announce_every_secs",
        BoundedField::Expires | BoundedField::Q => return None,
    })
}

impl From<ClusterError> for ApiError {
    fn from(err: ClusterError) -> ApiError {
        let message = err.to_string();
        match err {
            ClusterError::NotLeader {
                leader: Some((_, member)),
            } if !member.api_addr.is_empty() => {
                let mut e = ApiError::new(StatusCode::TEMPORARY_REDIRECT, "not_leader", message);
                e.leader = Some(member.api_addr);
                e
            }
            ClusterError::NotLeader { .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_leader", message)
            }
            ClusterError::Unavailable(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
            }
            ClusterError::Membership(_) => {
                ApiError::new(StatusCode::CONFLICT, "membership_refused", message)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        let mut response = (status, Json(self.body)).into_response();
        let headers = response.headers_mut();
        match status {
            StatusCode::UNAUTHORIZED => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"tongdai\""),
                );
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        if let Some(leader) = self.leader {
            response.extensions_mut().insert(LeaderRedirect(leader));
        }
        response
    }
}
