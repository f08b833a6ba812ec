//! `/v1/tenants/{tenant}/hunt-groups`: extensions rung together or in turn.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::cluster::Cluster;
use crate::model::{Command, HuntGroup, Id, RingStrategy};

use super::Api;
use super::auth::Principal;
use super::error::{ApiError, Ctx, ErrorBody};
use super::extract::{ApiJson, Params, matching};
use super::numbers::DestinationBody;
use super::tenants::missing;

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

#[utoipa::path(get, path = "/v1/tenants/{tenant}/hunt-groups", tag = "hunt groups",
    params(("tenant" = String, Path)),
    responses((status = 200, body = [HuntGroupBody]), (status = "default", body = ErrorBody)))]
pub(super) async fn list<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<Json<Vec<HuntGroupBody>>, ApiError> {
    let tenant = p.tenant(&who)?;
    let list = api
        .read_tenant(&tenant, |s| {
            s.hunt_groups(&tenant).map(HuntGroupBody::from).collect()
        })
        .await?;
    Ok(Json(list))
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
    let tenant = p.tenant(&who)?;
    let tenant = matching("tenant", tenant, body.tenant.clone())?;
    let id = body.id.clone().ok_or_else(|| missing("id"))?;
    let h = body.into_model(tenant, id);
    api.apply(&who, &ctx(&h), Command::CreateHuntGroup(h.clone()))
        .await?;
    Ok((StatusCode::CREATED, Json(HuntGroupBody::from(&h))))
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/hunt-groups/{id}", tag = "hunt groups",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = HuntGroupBody), (status = "default", body = ErrorBody)))]
pub(super) async fn get_one<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<Json<HuntGroupBody>, ApiError> {
    let tenant = p.tenant(&who)?;
    let id = p.id("id")?;
    api.read_tenant(&tenant, |s| {
        s.hunt_group(&tenant, &id).map(HuntGroupBody::from)
    })
    .await?
    .map(Json)
    .ok_or_else(|| unknown(&tenant, &id))
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
    let tenant = p.tenant(&who)?;
    let tenant = matching("tenant", tenant, body.tenant.clone())?;
    let id = matching("id", p.id("id")?, body.id.clone())?;
    let h = body.into_model(tenant, id);
    api.apply(&who, &ctx(&h), Command::UpdateHuntGroup(h.clone()))
        .await?;
    Ok(Json(HuntGroupBody::from(&h)))
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
    let tenant = p.tenant(&who)?;
    let id = p.id("id")?;
    let ctx = Ctx::HuntGroup {
        id: id.clone(),
        members: Vec::new(),
    };
    api.apply(&who, &ctx, Command::DeleteHuntGroup { tenant, id })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
