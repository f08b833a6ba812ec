//! `/v1/tenants`: the operator creates and deletes tenants and sets their quotas; a
//! tenant token sees only its own tenant and may rename it and change its call
//! settings.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::cluster::Cluster;
use crate::model::{CallSettings, Command, Id, Quotas, Tenant};

use super::Api;
use super::auth::{Principal, unknown_tenant};
use super::calls::CallSettingsBody;
use super::crud::created;
use super::error::{ApiError, Ctx, ErrorBody};
use super::extract::{ApiJson, Params, matching};

/// A tenant. `id` may be left out of a PUT body (the URL names it). `calls` may be
/// left out: a POST takes the defaults, a PUT keeps the current settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "acme")]
    pub id: Option<Id>,
    /// 1-128 bytes, no control characters.
    #[schema(example = "ACME Vietnam")]
    pub name: String,
    pub quotas: QuotasBody,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls: Option<CallSettingsBody>,
}

/// Per-tenant limits; 0 means none allowed (a suspended tenant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotasBody {
    /// At most 1 000 000.
    pub max_concurrent_calls: u32,
    /// At most 100 000.
    pub max_call_attempts_per_sec: u32,
    /// Live registration bindings across the tenant; at most 1 000 000.
    pub max_registrations: u32,
}

impl From<&Tenant> for TenantBody {
    fn from(t: &Tenant) -> TenantBody {
        TenantBody {
            id: Some(t.id.clone()),
            name: t.name.clone(),
            quotas: QuotasBody {
                max_concurrent_calls: t.quotas.max_concurrent_calls,
                max_call_attempts_per_sec: t.quotas.max_call_attempts_per_sec,
                max_registrations: t.quotas.max_registrations,
            },
            calls: Some((&t.calls).into()),
        }
    }
}

impl TenantBody {
    /// The tenant described, with `current` call settings when the body has none.
    fn into_model(self, id: Id, current: CallSettings) -> Tenant {
        let q = self.quotas;
        Tenant {
            id,
            name: self.name,
            quotas: Quotas {
                max_concurrent_calls: q.max_concurrent_calls,
                max_call_attempts_per_sec: q.max_call_attempts_per_sec,
                max_registrations: q.max_registrations,
            },
            calls: self.calls.map_or(current, CallSettings::from),
        }
    }
}

/// 422 for an identifying field a POST body must have.
pub(super) fn missing(field: &str) -> ApiError {
    ApiError::invalid(field, format!("missing field `{field}`")).with_code("missing_field")
}

/// Lists tenants (a tenant token: its own only).
#[utoipa::path(get, path = "/v1/tenants", tag = "tenants",
    responses((status = 200, body = [TenantBody]), (status = "default", body = ErrorBody)))]
pub(super) async fn list<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
) -> Result<Json<Vec<TenantBody>>, ApiError> {
    let tenants = api
        .read(|s| {
            s.tenants()
                .filter(|t| who.sees(&t.id))
                .map(TenantBody::from)
                .collect()
        })
        .await?;
    Ok(Json(tenants))
}

/// Creates a tenant (operator only).
#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", request_body = TenantBody,
    responses((status = 201, body = TenantBody), (status = "default", body = ErrorBody)))]
pub(super) async fn create<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    ApiJson(body): ApiJson<TenantBody>,
) -> Result<(StatusCode, Json<TenantBody>), ApiError> {
    who.require_operator("creating a tenant")?;
    let id = body.id.clone().ok_or_else(|| missing("id"))?;
    let tenant = body.into_model(id, CallSettings::default());
    api.save(&who, &Ctx::Tenant, Command::CreateTenant, tenant)
        .await
        .map(created)
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}", tag = "tenants",
    params(("tenant" = String, Path)),
    responses((status = 200, body = TenantBody), (status = "default", body = ErrorBody)))]
pub(super) async fn get_one<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<Json<TenantBody>, ApiError> {
    let tenant = p.tenant(&who)?;
    api.read(|s| s.tenant(&tenant).map(TenantBody::from))
        .await?
        .map(Json)
        .ok_or_else(|| unknown_tenant(&tenant))
}

/// Replaces a tenant; without `calls` the call settings stay. A tenant token may change
/// the name and the call settings, not the quotas (403).
#[utoipa::path(put, path = "/v1/tenants/{tenant}", tag = "tenants",
    params(("tenant" = String, Path)), request_body = TenantBody,
    responses((status = 200, body = TenantBody), (status = "default", body = ErrorBody)))]
pub(super) async fn update<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
    ApiJson(body): ApiJson<TenantBody>,
) -> Result<Json<TenantBody>, ApiError> {
    let tenant = p.tenant(&who)?;
    let id = matching("id", tenant.clone(), body.id.clone())?;
    let current = api
        .read(|s| s.tenant(&id).cloned())
        .await?
        .ok_or_else(|| unknown_tenant(&id))?;
    let tenant = body.into_model(id, current.calls);
    if let Principal::Tenant(_) = who
        && current.quotas != tenant.quotas
    {
        return Err(
            ApiError::forbidden("a tenant's quotas are set by the operator").with_field("quotas"),
        );
    }
    api.save(&who, &Ctx::Tenant, Command::UpdateTenant, tenant)
        .await
}

/// Deletes a tenant that owns nothing any more (operator only); its tokens go with it.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}", tag = "tenants",
    params(("tenant" = String, Path)),
    responses((status = 204), (status = "default", body = ErrorBody)))]
pub(super) async fn remove<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<StatusCode, ApiError> {
    let tenant = p.tenant(&who)?;
    who.require_operator("deleting a tenant")?;
    api.apply(&who, &Ctx::Tenant, Command::DeleteTenant { tenant })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
