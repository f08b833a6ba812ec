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
use super::crud::{Op, Scoped, created};
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

impl From<&ApiToken> for TokenView {
    fn from(t: &ApiToken) -> TokenView {
        TokenView {
            tenant: t.tenant.clone(),
            id: t.id.clone(),
        }
    }
}

/// A tenant's API tokens, by id; all operator only.
const TOKENS: Scoped<TokenView, Id> = Scoped {
    key: "id",
    parse: Params::id,
    all: |s, tenant| s.api_tokens(tenant).map(TokenView::from).collect(),
    delete: |tenant, id| (Ctx::Token, Command::DeleteApiToken { tenant, id }),
    allow: |who, _| who.require_operator("managing API tokens"),
};

#[utoipa::path(get, path = "/v1/tenants/{tenant}/tokens", tag = "tokens",
    params(("tenant" = String, Path)),
    responses((status = 200, body = [TokenView]), (status = "default", body = ErrorBody)))]
pub(super) async fn list<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    api.list(&who, &p, &TOKENS).await
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
    (TOKENS.allow)(&who, Op::Create)?;
    let (token, sha256) = new_token();
    let t = ApiToken {
        tenant: tenant.clone(),
        id: body.id.clone(),
        sha256,
    };
    api.apply(&who, &Ctx::Token, Command::CreateApiToken(t))
        .await?;
    Ok(created(Json(CreatedToken {
        tenant,
        id: body.id,
        token,
    })))
}

#[utoipa::path(delete, path = "/v1/tenants/{tenant}/tokens/{id}", tag = "tokens",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = "default", body = ErrorBody)))]
pub(super) async fn revoke<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<StatusCode, ApiError> {
    api.delete(&who, &p, &TOKENS).await
}
