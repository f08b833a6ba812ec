//! `/v1/tenants/{tenant}/queues`: ACD queues.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::cluster::Cluster;
use crate::model::{self, Command, Id, Queue, QueueStrategy};

use super::Api;
use super::auth::Principal;
use super::crud::{Editable, Scoped, everyone};
use super::error::{ApiError, Ctx, ErrorBody};
use super::extract::{ApiJson, Params};

/// How the ACD picks the next agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueueStrategyBody {
    LongestIdle,
    RoundRobin,
    FewestCalls,
    SkillsBased,
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
}

impl From<&Queue> for QueueBody {
    fn from(q: &Queue) -> QueueBody {
        QueueBody {
            tenant: Some(q.tenant.clone()),
            id: Some(q.id.clone()),
            name: q.name.clone(),
            strategy: match q.strategy {
                QueueStrategy::LongestIdle => QueueStrategyBody::LongestIdle,
                QueueStrategy::RoundRobin => QueueStrategyBody::RoundRobin,
                QueueStrategy::FewestCalls => QueueStrategyBody::FewestCalls,
                QueueStrategy::SkillsBased => QueueStrategyBody::SkillsBased,
            },
            max_wait_secs: q.max_wait_secs,
            max_len: q.max_len,
        }
    }
}

impl QueueBody {
    fn into_model(self, tenant: Id, id: Id) -> Queue {
        Queue {
            tenant,
            id,
            name: self.name,
            strategy: match self.strategy {
                QueueStrategyBody::LongestIdle => QueueStrategy::LongestIdle,
                QueueStrategyBody::RoundRobin => QueueStrategy::RoundRobin,
                QueueStrategyBody::FewestCalls => QueueStrategy::FewestCalls,
                QueueStrategyBody::SkillsBased => QueueStrategy::SkillsBased,
            },
            max_wait_secs: self.max_wait_secs,
            max_len: self.max_len,
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
