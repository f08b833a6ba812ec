//! `/v1/tenants/{tenant}/trunks`: a tenant's carrier gateways.
//!
//! The registration password is write-only: a response says `"password_set": true`
//! instead, and a PUT without it keeps the stored one. Trusted sources are taken in any
//! spelling and stored canonical (`2001:DB8::1` becomes `2001:db8::1`). They decide
//! which tenant a call arriving without authentication belongs to, so only the operator
//! sets them: a tenant token may manage its trunks but not their `trusted_sources`
//! (403).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::cluster::Cluster;
use crate::model::{self, Command, Id, Transport, Trunk, TrunkRegistration, TrustedSource};

use super::Api;
use super::auth::Principal;
use super::crud::{Editable, Scoped, everyone};
use super::error::{ApiError, Ctx, ErrorBody};
use super::extract::{ApiJson, Params};
use super::tenants::missing;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransportBody {
    #[default]
    Udp,
    Tcp,
    Tls,
}

impl From<TransportBody> for Transport {
    fn from(t: TransportBody) -> Transport {
        match t {
            TransportBody::Udp => Transport::Udp,
            TransportBody::Tcp => Transport::Tcp,
            TransportBody::Tls => Transport::Tls,
        }
    }
}

impl From<Transport> for TransportBody {
    fn from(t: Transport) -> TransportBody {
        match t {
            Transport::Udp => TransportBody::Udp,
            Transport::Tcp => TransportBody::Tcp,
            Transport::Tls => TransportBody::Tls,
        }
    }
}

/// A trunk as written. `tenant` and `id` may be left out where the URL names them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrunkBody {
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub tenant: Option<Id>,
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "viettel")]
    pub id: Option<Id>,
    /// Where calls to the carrier go: `IP:port`, `[IPv6]:port` or `host:port`.
    #[schema(example = "203.0.113.7:5060")]
    pub address: String,
    /// Default `udp`.
    #[serde(default)]
    pub transport: TransportBody,
    /// Sources whose calls are this trunk's without digest: an IP, an `IP:port` or a
    /// CIDR network (at least /8 for IPv4, /32 for IPv6); each unique across all
    /// trunks of all tenants; at most 64. Operator only.
    #[serde(default)]
    #[schema(example = json!(["203.0.113.0/24"]))]
    pub trusted_sources: Vec<String>,
    /// Outbound digest registration to the carrier.
    #[serde(default)]
    pub registration: Option<TrunkRegistrationBody>,
    /// Calls at once, both directions; 0 disables the trunk; at most 1 000 000.
    pub max_concurrent_calls: u32,
    /// Trunk of the same tenant tried when this one answers 5xx or not at all.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub failover: Option<Id>,
}

/// An outbound registration as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrunkRegistrationBody {
    /// 1-128 bytes.
    pub username: String,
    /// 1-128 bytes; never returned. A PUT may leave it out to keep the stored one.
    #[serde(default)]
    pub password: Option<String>,
    /// The registrar's domain, e.g. `sip.carrier.example`.
    pub domain: String,
    /// 60-3600 seconds; default 600.
    #[serde(default = "default_expires")]
    pub expires_secs: u32,
}

fn default_expires() -> u32 {
    600
}

/// A trunk as read back: no password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrunkView {
    #[schema(value_type = String)]
    pub tenant: Id,
    #[schema(value_type = String)]
    pub id: Id,
    pub address: String,
    pub transport: TransportBody,
    pub trusted_sources: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration: Option<TrunkRegistrationView>,
    pub max_concurrent_calls: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub failover: Option<Id>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrunkRegistrationView {
    pub username: String,
    /// Always true: a registration has a password, which is never shown.
    pub password_set: bool,
    pub domain: String,
    pub expires_secs: u32,
}

impl From<&Trunk> for TrunkView {
    fn from(t: &Trunk) -> TrunkView {
        TrunkView {
            tenant: t.tenant.clone(),
            id: t.id.clone(),
            address: t.address.clone(),
            transport: t.transport.into(),
            trusted_sources: t.trusted_sources.clone(),
            registration: t.registration.as_ref().map(|r| TrunkRegistrationView {
                username: r.username.clone(),
                password_set: !r.password.is_empty(),
                domain: r.domain.clone(),
                expires_secs: r.expires_secs,
            }),
            max_concurrent_calls: t.max_concurrent_calls,
            failover: t.failover.clone(),
        }
    }
}

impl TrunkBody {
    /// The trunk described; `stored_password` fills a registration without one.
    fn into_model(
        self,
        tenant: Id,
        id: Id,
        stored_password: Option<String>,
    ) -> Result<Trunk, ApiError> {
        let mut trusted_sources = Vec::with_capacity(self.trusted_sources.len());
        for (i, s) in self.trusted_sources.iter().enumerate() {
            let canonical = TrustedSource::canonical(s).map_err(|e| {
                ApiError::invalid(
                    &format!("trusted_sources[{i}]"),
                    format!(
                        "trusted source {:?} is not valid: {}",
                        s.chars().take(64).collect::<String>(),
                        e.reason()
                    ),
                )
                .with_code("invalid_trusted_source")
            })?;
            trusted_sources.push(canonical);
        }
        let registration = match self.registration {
            None => None,
            Some(r) => {
                let password = r
                    .password
                    .or(stored_password)
                    .ok_or_else(|| missing("registration.password"))?;
                Some(TrunkRegistration {
                    username: r.username,
                    password,
                    domain: r.domain,
                    expires_secs: r.expires_secs,
                })
            }
        };
        Ok(Trunk {
            tenant,
            id,
            address: self.address,
            transport: self.transport.into(),
            trusted_sources,
            registration,
            max_concurrent_calls: self.max_concurrent_calls,
            failover: self.failover,
        })
    }
}

fn unknown(tenant: &Id, id: &Id) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_trunk",
        format!("unknown trunk {id} in tenant {tenant}"),
    )
    .with_field("id")
}

fn ctx(t: &Trunk) -> Ctx {
    Ctx::Trunk { id: t.id.clone() }
}

/// 403 when a tenant token would set trusted sources other than `current`.
fn check_sources(who: &Principal, wanted: &[String], current: &[String]) -> Result<(), ApiError> {
    if let Principal::Tenant(_) = who
        && wanted != current
    {
        return Err(ApiError::forbidden(
            "a trunk's trusted sources are set by the operator: they decide which tenant unauthenticated calls belong to",
        )
        .with_field("trusted_sources"));
    }
    Ok(())
}

/// A tenant's trunks, by id.
const TRUNKS: Editable<Trunk, TrunkBody, TrunkView, Id> = Editable {
    scoped: Scoped {
        key: "id",
        parse: Params::id,
        all: |s, tenant| s.trunks(tenant).map(TrunkView::from).collect(),
        delete: |tenant, id| {
            let ctx = Ctx::Trunk { id: id.clone() };
            (ctx, Command::DeleteTrunk { tenant, id })
        },
        allow: everyone,
    },
    named: |body| (body.tenant.clone(), body.id.clone()),
    find: model::State::trunk,
    unknown,
    model: |body, tenant, id| body.into_model(tenant, id, None),
    ctx,
    create: |t| Command::CreateTrunk(Box::new(t)),
    update: |t| Command::UpdateTrunk(Box::new(t)),
};

#[utoipa::path(get, path = "/v1/tenants/{tenant}/trunks", tag = "trunks",
    params(("tenant" = String, Path)),
    responses((status = 200, body = [TrunkView]), (status = "default", body = ErrorBody)))]
pub(super) async fn list<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<Json<Vec<TrunkView>>, ApiError> {
    api.list(&who, &p, &TRUNKS.scoped).await
}

/// Creates a trunk; a registration needs its password.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/trunks", tag = "trunks",
    params(("tenant" = String, Path)), request_body = TrunkBody,
    responses((status = 201, body = TrunkView), (status = "default", body = ErrorBody)))]
pub(super) async fn create<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
    ApiJson(body): ApiJson<TrunkBody>,
) -> Result<(StatusCode, Json<TrunkView>), ApiError> {
    p.tenant(&who)?;
    check_sources(&who, &body.trusted_sources, &[])?;
    api.create(&who, &p, &TRUNKS, body).await
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/trunks/{id}", tag = "trunks",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = TrunkView), (status = "default", body = ErrorBody)))]
pub(super) async fn get_one<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<Json<TrunkView>, ApiError> {
    api.get(&who, &p, &TRUNKS).await
}

/// Replaces a trunk; a registration without `password` keeps the stored one.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/trunks/{id}", tag = "trunks",
    params(("tenant" = String, Path), ("id" = String, Path)), request_body = TrunkBody,
    responses((status = 200, body = TrunkView), (status = "default", body = ErrorBody)))]
pub(super) async fn update<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
    ApiJson(body): ApiJson<TrunkBody>,
) -> Result<Json<TrunkView>, ApiError> {
    let (tenant, id) = TRUNKS.ids(&who, &p, &body)?;
    let current = api
        .read_tenant(&tenant, |s| s.trunk(&tenant, &id).cloned())
        .await?
        .ok_or_else(|| unknown(&tenant, &id))?;
    let stored_password = current.registration.map(|r| r.password);
    let trunk = body.into_model(tenant, id, stored_password)?;
    check_sources(&who, &trunk.trusted_sources, &current.trusted_sources)?;
    api.save(&who, &ctx(&trunk), TRUNKS.update, trunk).await
}

/// Deletes a trunk that is neither the tenant's outbound trunk nor another's failover.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/trunks/{id}", tag = "trunks",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = "default", body = ErrorBody)))]
pub(super) async fn remove<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<StatusCode, ApiError> {
    api.delete(&who, &p, &TRUNKS.scoped).await
}
