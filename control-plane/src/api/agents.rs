//! `/v1/tenants/{tenant}/agents`: agents, one per extension they work on, with their
//! state and skills.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::cluster::Cluster;
use crate::model::{self, Agent, AgentState, Command, Id};

use super::Api;
use super::auth::Principal;
use super::crud::{Editable, Scoped, everyone};
use super::error::{ApiError, Ctx, ErrorBody};
use super::extract::{ApiJson, Params};
use super::tenants::missing;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentStateBody {
    LoggedOut,
    Available,
    /// Needs `pause_reason`.
    Paused,
}

/// An agent. `tenant` and `extension` may be left out where the URL names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub tenant: Option<Id>,
    /// The extension the agent works on (must exist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "1001")]
    pub extension: Option<Id>,
    pub state: AgentStateBody,
    /// 1-64 bytes, with `state` `paused` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_reason: Option<String>,
    /// Skill id -> level 0-100; at most 64 skills.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, u8>)]
    pub skills: BTreeMap<Id, u8>,
}

impl From<&Agent> for AgentBody {
    fn from(a: &Agent) -> AgentBody {
        let (state, pause_reason) = match &a.state {
            AgentState::LoggedOut => (AgentStateBody::LoggedOut, None),
            AgentState::Available => (AgentStateBody::Available, None),
            AgentState::Paused { reason } => (AgentStateBody::Paused, Some(reason.clone())),
        };
        AgentBody {
            tenant: Some(a.tenant.clone()),
            extension: Some(a.extension.clone()),
            state,
            pause_reason,
            skills: a.skills.clone(),
        }
    }
}

impl AgentBody {
    fn into_model(self, tenant: Id, extension: Id) -> Result<Agent, ApiError> {
        let state = match (self.state, self.pause_reason) {
            (AgentStateBody::Paused, Some(reason)) => AgentState::Paused { reason },
            (AgentStateBody::Paused, None) => return Err(missing("pause_reason")),
            (_, Some(_)) => {
                return Err(ApiError::invalid(
                    "pause_reason",
                    "pause_reason goes with state paused only",
                ));
            }
            (AgentStateBody::LoggedOut, None) => AgentState::LoggedOut,
            (AgentStateBody::Available, None) => AgentState::Available,
        };
        Ok(Agent {
            tenant,
            extension,
            state,
            skills: self.skills,
        })
    }
}

fn unknown(tenant: &Id, extension: &Id) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_agent",
        format!("unknown agent on extension {extension} in tenant {tenant}"),
    )
    .with_field("extension")
}

/// A tenant's agents, by extension.
const AGENTS: Editable<Agent, AgentBody, AgentBody, Id> = Editable {
    scoped: Scoped {
        key: "extension",
        parse: Params::id,
        all: |s, tenant| s.agents(tenant).map(AgentBody::from).collect(),
        delete: |tenant, extension| (Ctx::Agent, Command::DeleteAgent { tenant, extension }),
        allow: everyone,
    },
    named: |body| (body.tenant.clone(), body.extension.clone()),
    find: model::State::agent,
    unknown,
    model: AgentBody::into_model,
    ctx: |_| Ctx::Agent,
    create: Command::CreateAgent,
    update: Command::UpdateAgent,
};

#[utoipa::path(get, path = "/v1/tenants/{tenant}/agents", tag = "agents",
    params(("tenant" = String, Path)),
    responses((status = 200, body = [AgentBody]), (status = "default", body = ErrorBody)))]
pub(super) async fn list<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<Json<Vec<AgentBody>>, ApiError> {
    api.list(&who, &p, &AGENTS.scoped).await
}

#[utoipa::path(post, path = "/v1/tenants/{tenant}/agents", tag = "agents",
    params(("tenant" = String, Path)), request_body = AgentBody,
    responses((status = 201, body = AgentBody), (status = "default", body = ErrorBody)))]
pub(super) async fn create<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
    ApiJson(body): ApiJson<AgentBody>,
) -> Result<(StatusCode, Json<AgentBody>), ApiError> {
    api.create(&who, &p, &AGENTS, body).await
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/agents/{extension}", tag = "agents",
    params(("tenant" = String, Path), ("extension" = String, Path)),
    responses((status = 200, body = AgentBody), (status = "default", body = ErrorBody)))]
pub(super) async fn get_one<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<Json<AgentBody>, ApiError> {
    api.get(&who, &p, &AGENTS).await
}

#[utoipa::path(put, path = "/v1/tenants/{tenant}/agents/{extension}", tag = "agents",
    params(("tenant" = String, Path), ("extension" = String, Path)), request_body = AgentBody,
    responses((status = 200, body = AgentBody), (status = "default", body = ErrorBody)))]
pub(super) async fn update<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
    ApiJson(body): ApiJson<AgentBody>,
) -> Result<Json<AgentBody>, ApiError> {
    api.update(&who, &p, &AGENTS, body).await
}

#[utoipa::path(delete, path = "/v1/tenants/{tenant}/agents/{extension}", tag = "agents",
    params(("tenant" = String, Path), ("extension" = String, Path)),
    responses((status = 204), (status = "default", body = ErrorBody)))]
pub(super) async fn remove<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<StatusCode, ApiError> {
    api.delete(&who, &p, &AGENTS.scoped).await
}
