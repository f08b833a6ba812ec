//! `/v1/tenants/{tenant}/hunt-groups`: extensions rung together or in turn.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::cluster::Cluster;
use crate::model::{self, Command, HuntGroup, Id, RingStrategy};

use super::Api;
use super::auth::Principal;
use super::crud::{Editable, Scoped, everyone};
use super::error::{ApiError, Ctx, ErrorBody};
use super::extract::{ApiJson, Params};
use super::numbers::DestinationBody;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RingStrategyBody {
    /// Every member at once.
    RingAll,
    /// Members in list order, `ring_secs` each.
    Sequential,
}

/// A hunt group. `tenant` and `id` may be left out where the URL names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HuntGroupBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub tenant: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "sales")]
    pub id: Option<Id>,
    /// 1-100 extensions of the tenant, in hunting order, no repeats.
    #[schema(value_type = Vec<String>)]
    pub members: Vec<Id>,
    pub strategy: RingStrategyBody,
    /// 5-300 seconds per member (for the whole group with `ring_all`).
    pub ring_secs: u32,
    /// Where unanswered calls go (not back to this group, directly or not).
    pub no_answer: DestinationBody,
}

impl From<&HuntGroup> for HuntGroupBody {
    fn from(h: &HuntGroup) -> HuntGroupBody {
        HuntGroupBody {
            tenant: Some(h.tenant.clone()),
            id: Some(h.id.clone()),
            members: h.members.clone(),
            strategy: match h.strategy {
                RingStrategy::RingAll => RingStrategyBody::RingAll,
                RingStrategy::Sequential => RingStrategyBody::Sequential,
            },
            ring_secs: h.ring_secs,
            no_answer: (&h.no_answer).into(),
        }
    }
}

impl HuntGroupBody {
    fn into_model(self, tenant: Id, id: Id) -> HuntGroup {
        HuntGroup {
            tenant,
            id,
            members: self.members,
            strategy: match self.strategy {
                RingStrategyBody::RingAll => RingStrategy::RingAll,
                RingStrategyBody::Sequential => RingStrategy::Sequential,
            },
            ring_secs: self.ring_secs,
            no_answer: self.no_answer.into(),
        }
    }
}

fn ctx(h: &HuntGroup) -> Ctx {
    Ctx::HuntGroup {
        id: h.id.clone(),
        members: h.members.clone(),
    }
}

fn unknown(tenant: &Id, id: &Id) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_hunt_group",
        format!("unknown hunt group {id} in tenant {tenant}"),
    )
    .with_field("id")
}

/// A tenant's hunt groups, by id.
const HUNT_GROUPS: Editable<HuntGroup, HuntGroupBody, HuntGroupBody, Id> = Editable {
    scoped: Scoped {
        key: "id",
        parse: Params::id,
        all: |s, tenant| s.hunt_groups(tenant).map(HuntGroupBody::from).collect(),
        delete: |tenant, id| {
            let ctx = Ctx::HuntGroup {
                id: id.clone(),
                members: Vec::new(),
            };
            (ctx, Command::DeleteHuntGroup { tenant, id })
        },
        allow: everyone,
    },
    named: |body| (body.tenant.clone(), body.id.clone()),
    find: model::State::hunt_group,
    unknown,
    model: |body, tenant, id| Ok(body.into_model(tenant, id)),
    ctx,
    create: Command::CreateHuntGroup,
    update: Command::UpdateHuntGroup,
};

#[utoipa::path(get, path = "/v1/tenants/{tenant}/hunt-groups", tag = "hunt groups",
    params(("tenant" = String, Path)),
    responses((status = 200, body = [HuntGroupBody]), (status = "default", body = ErrorBody)))]
pub(super) async fn list<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<Json<Vec<HuntGroupBody>>, ApiError> {
    api.list(&who, &p, &HUNT_GROUPS.scoped).await
}

#[utoipa::path(post, path = "/v1/tenants/{tenant}/hunt-groups", tag = "hunt groups",
    params(("tenant" = String, Path)), request_body = HuntGroupBody,
    responses((status = 201, body = HuntGroupBody), (status = "default", body = ErrorBody)))]
pub(super) async fn create<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
    ApiJson(body): ApiJson<HuntGroupBody>,
) -> Result<(StatusCode, Json<HuntGroupBody>), ApiError> {
    api.create(&who, &p, &HUNT_GROUPS, body).await
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/hunt-groups/{id}", tag = "hunt groups",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = HuntGroupBody), (status = "default", body = ErrorBody)))]
pub(super) async fn get_one<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<Json<HuntGroupBody>, ApiError> {
    api.get(&who, &p, &HUNT_GROUPS).await
}

#[utoipa::path(put, path = "/v1/tenants/{tenant}/hunt-groups/{id}", tag = "hunt groups",
    params(("tenant" = String, Path), ("id" = String, Path)), request_body = HuntGroupBody,
    responses((status = 200, body = HuntGroupBody), (status = "default", body = ErrorBody)))]
pub(super) async fn update<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
    ApiJson(body): ApiJson<HuntGroupBody>,
) -> Result<Json<HuntGroupBody>, ApiError> {
    api.update(&who, &p, &HUNT_GROUPS, body).await
}

/// Deletes a hunt group no number or other group routes to.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/hunt-groups/{id}", tag = "hunt groups",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = "default", body = ErrorBody)))]
pub(super) async fn remove<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<StatusCode, ApiError> {
    api.delete(&who, &p, &HUNT_GROUPS.scoped).await
}
