//! `/v1/tenants/{tenant}/queues`: ACD queues.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::cluster::Cluster;
use crate::model::{self, Command, Id, Overflow, Queue, QueueMember, QueueStrategy};

use super::Api;
use super::auth::Principal;
use super::crud::{Editable, Scoped, everyone};
use super::error::{ApiError, Ctx, ErrorBody};
use super::extract::{ApiJson, Params};
use super::numbers::DestinationBody;

/// How the ACD picks the agent: `ring_all`, `longest_idle`, `least_calls`,
/// `round_robin` (with memory), `top_down` (linear), `random`, `skills_based` (best level
/// in the queue's `skill` first, then longest idle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueueStrategyBody {
    RingAll,
    LongestIdle,
    LeastCalls,
    RoundRobin,
    TopDown,
    Random,
    SkillsBased,
}

impl From<QueueStrategy> for QueueStrategyBody {
    fn from(s: QueueStrategy) -> QueueStrategyBody {
        match s {
            QueueStrategy::RingAll => QueueStrategyBody::RingAll,
            QueueStrategy::LongestIdle => QueueStrategyBody::LongestIdle,
            QueueStrategy::LeastCalls => QueueStrategyBody::LeastCalls,
            QueueStrategy::RoundRobin => QueueStrategyBody::RoundRobin,
            QueueStrategy::TopDown => QueueStrategyBody::TopDown,
            QueueStrategy::Random => QueueStrategyBody::Random,
            QueueStrategy::SkillsBased => QueueStrategyBody::SkillsBased,
        }
    }
}

impl From<QueueStrategyBody> for QueueStrategy {
    fn from(s: QueueStrategyBody) -> QueueStrategy {
        match s {
            QueueStrategyBody::RingAll => QueueStrategy::RingAll,
            QueueStrategyBody::LongestIdle => QueueStrategy::LongestIdle,
            QueueStrategyBody::LeastCalls => QueueStrategy::LeastCalls,
            QueueStrategyBody::RoundRobin => QueueStrategy::RoundRobin,
            QueueStrategyBody::TopDown => QueueStrategy::TopDown,
            QueueStrategyBody::Random => QueueStrategy::Random,
            QueueStrategyBody::SkillsBased => QueueStrategy::SkillsBased,
        }
    }
}

/// An agent serving the queue and their tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueMemberBody {
    /// An agent (extension) of the tenant.
    #[schema(value_type = String, example = "1001")]
    pub extension: Id,
    /// 0-9: offered calls that waited at least `penalty * tier_widen_secs`.
    #[serde(default)]
    pub penalty: u8,
}

/// Where callers go instead of waiting on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OverflowBody {
    pub destination: DestinationBody,
    /// Callers arriving while this many wait overflow (0 = never).
    #[serde(default)]
    pub at_len: u32,
    /// Callers who waited this long overflow (0 = never).
    #[serde(default)]
    pub after_wait_secs: u32,
}

fn default_ring_secs() -> u32 {
    20
}

fn default_service_level_secs() -> u32 {
    20
}

fn yes() -> bool {
    true
}

/// A queue. `tenant` and `id` may be left out where the URL names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub tenant: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "support")]
    pub id: Option<Id>,
    /// 1-128 bytes.
    pub name: String,
    pub strategy: QueueStrategyBody,
    /// 1-86400: longest a caller waits.
    pub max_wait_secs: u32,
    /// 1-10000 callers waiting at most.
    pub max_len: u32,
    /// Agents serving the queue, in member order (round robin, top down).
    #[serde(default)]
    pub members: Vec<QueueMemberBody>,
    /// 5-300 (default 20): how long one offer rings before the next agent is tried.
    #[serde(default = "default_ring_secs")]
    pub ring_secs: u32,
    /// 0-3600 (default 0): after-call work before the agent's next queue call.
    #[serde(default)]
    pub wrap_up_secs: u32,
    /// Whether callers join while no member is logged in (default true).
    #[serde(default = "yes")]
    pub join_empty: bool,
    /// Each this many seconds of waiting opens the next penalty tier (default 0: all
    /// tiers at once).
    #[serde(default)]
    pub tier_widen_secs: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overflow: Option<OverflowBody>,
    /// Pause an agent who lets an offer ring out (default false).
    #[serde(default)]
    pub auto_pause_no_answer: bool,
    /// 1-3600 (default 20): T of the service level (answered within T s / answered).
    #[serde(default = "default_service_level_secs")]
    pub service_level_secs: u32,
    /// The skill `skills_based` ranks agents by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "english")]
    pub skill: Option<Id>,
    /// Callers served first: caller number -> priority 1-9 (higher first; everyone
    /// else has 0). Numbers in national format (`0909123456`); `+84...` is converted.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub vip_callers: std::collections::BTreeMap<String, u8>,
    /// The key (0-9, `*` or `#`) a waiting caller presses to be called back (they hang
    /// up and keep their place; an agent is connected first, then the caller dialled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "1")]
    pub callback_digit: Option<char>,
    /// Waiting callers hear their position, expected wait and the callback key at entry
    /// (default true) ...
    #[serde(default = "yes")]
    pub announce: bool,
    /// ... and again every this many seconds (default 0: at entry only; else 15-3600).
    #[serde(default)]
    pub announce_every_secs: u32,
    /// `en` (default) or `vi`: the built-in voice of the announcements.
    #[serde(default)]
    pub announce_language: AnnounceLanguageBody,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnnounceLanguageBody {
    #[default]
    En,
    Vi,
}

impl From<AnnounceLanguageBody> for crate::model::AnnounceLanguage {
    fn from(l: AnnounceLanguageBody) -> Self {
        match l {
            AnnounceLanguageBody::En => Self::En,
            AnnounceLanguageBody::Vi => Self::Vi,
        }
    }
}

impl From<crate::model::AnnounceLanguage> for AnnounceLanguageBody {
    fn from(l: crate::model::AnnounceLanguage) -> Self {
        match l {
            crate::model::AnnounceLanguage::En => Self::En,
            crate::model::AnnounceLanguage::Vi => Self::Vi,
        }
    }
}

impl From<&Queue> for QueueBody {
    fn from(q: &Queue) -> QueueBody {
        QueueBody {
            tenant: Some(q.tenant.clone()),
            id: Some(q.id.clone()),
            name: q.name.clone(),
            strategy: q.strategy.into(),
            max_wait_secs: q.max_wait_secs,
            max_len: q.max_len,
            members: q
                .members
                .iter()
                .map(|m| QueueMemberBody {
                    extension: m.extension.clone(),
                    penalty: m.penalty,
                })
                .collect(),
            ring_secs: q.ring_secs,
            wrap_up_secs: q.wrap_up_secs,
            join_empty: q.join_empty,
            tier_widen_secs: q.tier_widen_secs,
            overflow: q.overflow.as_ref().map(|o| OverflowBody {
                destination: (&o.destination).into(),
                at_len: o.at_len,
                after_wait_secs: o.after_wait_secs,
            }),
            auto_pause_no_answer: q.auto_pause_no_answer,
            service_level_secs: q.service_level_secs,
            skill: q.skill.clone(),
            vip_callers: q.vip_callers.clone(),
            callback_digit: q.callback_digit,
            announce: q.announce,
            announce_every_secs: q.announce_every_secs,
            announce_language: q.announce_language.into(),
        }
    }
}

impl QueueBody {
    fn into_model(self, tenant: Id, id: Id) -> Queue {
        Queue {
            tenant,
            id,
            name: self.name,
            strategy: self.strategy.into(),
            max_wait_secs: self.max_wait_secs,
            max_len: self.max_len,
            members: self
                .members
                .into_iter()
                .map(|m| QueueMember {
                    extension: m.extension,
                    penalty: m.penalty,
                })
                .collect(),
            ring_secs: self.ring_secs,
            wrap_up_secs: self.wrap_up_secs,
            join_empty: self.join_empty,
            tier_widen_secs: self.tier_widen_secs,
            overflow: self.overflow.map(|o| Overflow {
                destination: o.destination.into(),
                at_len: o.at_len,
                after_wait_secs: o.after_wait_secs,
            }),
            auto_pause_no_answer: self.auto_pause_no_answer,
            service_level_secs: self.service_level_secs,
            skill: self.skill,
            vip_callers: self
                .vip_callers
                .into_iter()
                .map(|(number, p)| (crate::model::normalize_number(&number), p))
                .collect(),
            callback_digit: self.callback_digit,
            announce: self.announce,
            announce_every_secs: self.announce_every_secs,
            announce_language: self.announce_language.into(),
        }
    }
}

fn unknown(tenant: &Id, id: &Id) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_queue",
        format!("unknown queue {id} in tenant {tenant}"),
    )
    .with_field("id")
}

/// A tenant's queues, by id.
const QUEUES: Editable<Queue, QueueBody, QueueBody, Id> = Editable {
    scoped: Scoped {
        key: "id",
        parse: Params::id,
        all: |s, tenant| s.queues(tenant).map(QueueBody::from).collect(),
        delete: |tenant, id| (Ctx::Queue, Command::DeleteQueue { tenant, id }),
        allow: everyone,
    },
    named: |body| (body.tenant.clone(), body.id.clone()),
    find: model::State::queue,
    unknown,
    model: |body, tenant, id| Ok(body.into_model(tenant, id)),
    ctx: |_| Ctx::Queue,
    create: Command::CreateQueue,
    update: Command::UpdateQueue,
};

#[utoipa::path(get, path = "/v1/tenants/{tenant}/queues", tag = "queues",
    params(("tenant" = String, Path)),
    responses((status = 200, body = [QueueBody]), (status = "default", body = ErrorBody)))]
pub(super) async fn list<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<Json<Vec<QueueBody>>, ApiError> {
    api.list(&who, &p, &QUEUES.scoped).await
}

#[utoipa::path(post, path = "/v1/tenants/{tenant}/queues", tag = "queues",
    params(("tenant" = String, Path)), request_body = QueueBody,
    responses((status = 201, body = QueueBody), (status = "default", body = ErrorBody)))]
pub(super) async fn create<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
    ApiJson(body): ApiJson<QueueBody>,
) -> Result<(StatusCode, Json<QueueBody>), ApiError> {
    api.create(&who, &p, &QUEUES, body).await
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/queues/{id}", tag = "queues",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = QueueBody), (status = "default", body = ErrorBody)))]
pub(super) async fn get_one<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<Json<QueueBody>, ApiError> {
    api.get(&who, &p, &QUEUES).await
}

#[utoipa::path(put, path = "/v1/tenants/{tenant}/queues/{id}", tag = "queues",
    params(("tenant" = String, Path), ("id" = String, Path)), request_body = QueueBody,
    responses((status = 200, body = QueueBody), (status = "default", body = ErrorBody)))]
pub(super) async fn update<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
    ApiJson(body): ApiJson<QueueBody>,
) -> Result<Json<QueueBody>, ApiError> {
    api.update(&who, &p, &QUEUES, body).await
}

/// Deletes a queue no number or hunt group routes to.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/queues/{id}", tag = "queues",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = "default", body = ErrorBody)))]
pub(super) async fn remove<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<StatusCode, ApiError> {
    api.delete(&who, &p, &QUEUES.scoped).await
}
