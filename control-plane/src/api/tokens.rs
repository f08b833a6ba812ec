//! `/v1/tenants/{tenant}/tokens`: tenants' API tokens (operator only). The token is
//! shown once, in the answer to its creation; the cluster keeps only its SHA-256.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::cluster::Cluster;
use crate::model::{ApiToken, Command, Id};

use super::Api;
use super::auth::{Principal, new_token};
use super::error::{ApiError, Ctx, ErrorBody};
use super::extract::{ApiJson, Params};

/// A token to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTokenBody {
    /// Names the token for listing and revoking, e.g. `crm-sync`.
    #[schema(value_type = String, example = "crm-sync")]
    pub id: Id,
}

/// A token as listed: no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenView {
    #[schema(value_type = String)]
    pub tenant: Id,
    #[schema(value_type = String)]
    pub id: Id,
}

/// A token just created: `token` is shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatedToken {
    #[schema(value_type = String)]
    pub tenant: Id,
    #[schema(value_type = String)]
    pub id: Id,
    /// `td_` and 64 hex digits; send as `Authorization: Bearer <token>`.
    pub token: String,
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/tokens", tag = "tokens",
    params(("tenant" = String, Path)),
    responses((status = 200, body = [TokenView]), (status = "default", body = ErrorBody)))]
pub(super) async fn list<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    let tenant = p.tenant(&who)?;
    who.require_operator("managing API tokens")?;
    let list = api
        .read_tenant(&tenant, |s| {
            s.api_tokens(&tenant)
                .map(|t| TokenView {
                    tenant: t.tenant.clone(),
                    id: t.id.clone(),
                })
                .collect()
        })
        .await?;
    Ok(Json(list))
}

#[utoipa::path(post, path = "/v1/tenants/{tenant}/tokens", tag = "tokens",
    params(("tenant" = String, Path)), request_body = NewTokenBody,
    responses((status = 201, body = CreatedToken), (status = "default", body = ErrorBody)))]
pub(super) async fn create<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
    ApiJson(body): ApiJson<NewTokenBody>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let tenant = p.tenant(&who)?;
    who.require_operator("managing API tokens")?;
    let (token, sha256) = new_token();
    let t = ApiToken {
        tenant: tenant.clone(),
        id: body.id.clone(),
        sha256,
    };
    api.apply(&who, &Ctx::Token, Command::CreateApiToken(t))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            tenant,
            id: body.id,
            token,
        }),
    ))
}

#[utoipa::path(delete, path = "/v1/tenants/{tenant}/tokens/{id}", tag = "tokens",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = "default", body = ErrorBody)))]
pub(super) async fn revoke<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<StatusCode, ApiError> {
    let tenant = p.tenant(&who)?;
    let id = p.id("id")?;
    who.require_operator("managing API tokens")?;
    api.apply(&who, &Ctx::Token, Command::DeleteApiToken { tenant, id })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
