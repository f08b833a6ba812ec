//! Live registration bindings: `/v1/registrations` (operator, every tenant) and
//! `/v1/tenants/{tenant}/registrations`. Read-only: phones change them with REGISTER.

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::cluster::Cluster;
use crate::model::{Binding, Id, State as Model, Transport};

use super::auth::Principal;
use super::error::{ApiError, ErrorBody};
use super::extract::Params;
use super::{Api, now_ms};

/// `?local=true`: answer from this replica's own state without asking the leader
/// (possibly stale; for checking what each replica holds).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub(super) struct Consistency {
    #[serde(default)]
    local: bool,
}

impl Consistency {
    async fn read<C: Cluster, R>(
        &self,
        api: &Api<C>,
        f: impl FnOnce(&Model) -> R,
    ) -> Result<R, ApiError> {
        if self.local {
            Ok(api.cluster.read(f))
        } else {
            api.read(f).await
        }
    }
}

/// One live contact of an extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrationView {
    #[schema(value_type = String)]
    pub tenant: Id,
    #[schema(value_type = String)]
    pub extension: Id,
    pub contact: String,
    /// Milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
    /// Seconds left when this was read.
    pub expires_in_secs: u64,
    /// q-value in thousandths.
    pub q: u16,
    /// Where the REGISTER came from, `ip:port`.
    pub source: String,
    /// `udp`, `tcp` or `tls`.
    pub transport: String,
    pub call_id: String,
    pub cseq: u32,
}

fn view(tenant: &Id, extension: &Id, b: &Binding, now: u64) -> RegistrationView {
    RegistrationView {
        tenant: tenant.clone(),
        extension: extension.clone(),
        contact: b.contact.clone(),
        expires_at_ms: b.expires_at_ms,
        expires_in_secs: b.expires_at_ms.saturating_sub(now) / 1000,
        q: b.q,
        source: b.source.to_string(),
        transport: match b.transport {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
        .into(),
        call_id: b.call_id.clone(),
        cseq: b.cseq,
    }
}

fn of(s: &Model, tenant: &Id, now: u64) -> Vec<RegistrationView> {
    s.registrations(tenant, now)
        .map(|(ext, b)| view(tenant, ext, b, now))
        .collect()
}

/// Every tenant's live registrations (operator only).
#[utoipa::path(get, path = "/v1/registrations", tag = "registrations", params(Consistency),
    responses((status = 200, body = [RegistrationView]), (status = "default", body = ErrorBody)))]
pub(super) async fn all<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    Query(consistency): Query<Consistency>,
) -> Result<Json<Vec<RegistrationView>>, ApiError> {
    who.require_operator("listing every tenant's registrations")?;
    let now = now_ms();
    let list = consistency
        .read(&api, |s| {
            s.tenants().flat_map(|t| of(s, &t.id, now)).collect()
        })
        .await?;
    Ok(Json(list))
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/registrations", tag = "registrations",
    params(("tenant" = String, Path), Consistency),
    responses((status = 200, body = [RegistrationView]), (status = "default", body = ErrorBody)))]
pub(super) async fn of_tenant<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
    Query(consistency): Query<Consistency>,
) -> Result<Json<Vec<RegistrationView>>, ApiError> {
    let tenant = p.tenant(&who)?;
    let now = now_ms();
    let list = if consistency.local {
        api.cluster
            .read(|s| s.tenant(&tenant).is_some().then(|| of(s, &tenant, now)))
            .ok_or_else(|| super::auth::unknown_tenant(&tenant))?
    } else {
        api.read_tenant(&tenant, |s| of(s, &tenant, now)).await?
    };
    Ok(Json(list))
}
