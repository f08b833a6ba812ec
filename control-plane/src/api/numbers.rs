//! `/v1/tenants/{tenant}/numbers`: DIDs and where their calls go.
//!
//! Numbers are allocated by the operator (the carrier owns the ranges and sets premium
//! tariffs): a tenant token may list its numbers and change where they route and
//! whether their calls are recorded, nothing else.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::cluster::Cluster;
use crate::model::{Command, Destination, Id, Number, NumberKind};

use super::Api;
use super::auth::Principal;
use super::calls::RecordingBody;
use super::crud::{Editable, Op, Scoped};
use super::error::{ApiError, Ctx, ErrorBody};
use super::extract::{ApiJson, Params};

/// Where a call goes: `{"type": "extension", "id": "1001"}`, `hunt_group`, `queue`,
/// `ivr` (by id), or `{"type": "external", "number": "+84901234567"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum DestinationBody {
    Extension {
        #[schema(value_type = String)]
        id: Id,
    },
    HuntGroup {
        #[schema(value_type = String)]
        id: Id,
    },
    Queue {
        #[schema(value_type = String)]
        id: Id,
    },
    Ivr {
        #[schema(value_type = String)]
        id: Id,
    },
    /// An optional `+` and 3-15 digits.
    External { number: String },
}

impl From<&Destination> for DestinationBody {
    fn from(d: &Destination) -> DestinationBody {
        match d.clone() {
            Destination::Extension(id) => DestinationBody::Extension { id },
            Destination::HuntGroup(id) => DestinationBody::HuntGroup { id },
            Destination::Queue(id) => DestinationBody::Queue { id },
            Destination::Ivr(id) => DestinationBody::Ivr { id },
            Destination::External(number) => DestinationBody::External { number },
        }
    }
}

impl From<DestinationBody> for Destination {
    fn from(d: DestinationBody) -> Destination {
        match d {
            DestinationBody::Extension { id } => Destination::Extension(id),
            DestinationBody::HuntGroup { id } => Destination::HuntGroup(id),
            DestinationBody::Queue { id } => Destination::Queue(id),
            DestinationBody::Ivr { id } => Destination::Ivr(id),
            DestinationBody::External { number } => Destination::External(number),
        }
    }
}

/// `toll_free_1800` (1800 + 4 or 6 digits), `premium_1900` (1900 + 4 or 6 digits,
/// needs a tariff band), `geographic` (02 + 9 digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum NumberKindBody {
    #[serde(rename = "toll_free_1800")]
    TollFree1800,
    #[serde(rename = "premium_1900")]
    Premium1900,
    #[serde(rename = "geographic")]
    Geographic,
}

impl From<NumberKind> for NumberKindBody {
    fn from(k: NumberKind) -> NumberKindBody {
        match k {
            NumberKind::TollFree1800 => NumberKindBody::TollFree1800,
            NumberKind::Premium1900 => NumberKindBody::Premium1900,
            NumberKind::Geographic => NumberKindBody::Geographic,
        }
    }
}

impl From<NumberKindBody> for NumberKind {
    fn from(k: NumberKindBody) -> NumberKind {
        match k {
            NumberKindBody::TollFree1800 => NumberKind::TollFree1800,
            NumberKindBody::Premium1900 => NumberKind::Premium1900,
            NumberKindBody::Geographic => NumberKind::Geographic,
        }
    }
}

/// A number. `digits` and `tenant` may be left out where the URL names them; `kind`
/// is inferred from the digits when left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NumberBody {
    /// National format, e.g. `18001234`, `19006868`, `02873001234`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "18001234")]
    pub digits: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub tenant: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<NumberKindBody>,
    /// Required for `premium_1900`, refused otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub tariff_band: Option<Id>,
    pub destination: DestinationBody,
    /// Overrides the tenant's recording policy for calls to this number; left out, the
    /// tenant's applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<RecordingBody>,
}

impl From<&Number> for NumberBody {
    fn from(n: &Number) -> NumberBody {
        NumberBody {
            digits: Some(n.digits.clone()),
            tenant: Some(n.tenant.clone()),
            kind: Some(n.kind.into()),
            tariff_band: n.tariff_band.clone(),
            destination: (&n.destination).into(),
            recording: n.recording.map(Into::into),
        }
    }
}

impl NumberBody {
    fn into_model(self, tenant: Id, digits: String) -> Result<Number, ApiError> {
        let kind = match self.kind {
            Some(k) => k.into(),
            None => [
                NumberKind::TollFree1800,
                NumberKind::Premium1900,
                NumberKind::Geographic,
            ]
            .into_iter()
            .find(|k| k.accepts(&digits))
            .ok_or_else(|| {
                ApiError::invalid(
                    "digits",
                    format!(
                        "{:?} is not a 1800, 1900 or geographic (02 + 9 digits) number",
                        digits.chars().take(32).collect::<String>()
                    ),
                )
                .with_code("invalid_number")
            })?,
        };
        Ok(Number {
            digits,
            kind,
            tenant,
            tariff_band: self.tariff_band,
            destination: self.destination.into(),
            recording: self.recording.map(Into::into),
        })
    }
}

fn unknown_number(digits: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_number",
        format!("unknown number {digits}"),
    )
    .with_field("digits")
}

/// A tenant's numbers, by digits. The operator allocates and releases them; a tenant
/// token may change their routing only ([`update`]).
const NUMBERS: Editable<Number, NumberBody, NumberBody, String> = Editable {
    scoped: Scoped {
        key: "digits",
        parse: |p, _| p.digits(),
        all: |s, tenant| s.numbers_of(tenant).map(NumberBody::from).collect(),
        delete: |tenant, digits| (Ctx::Number, Command::DeleteNumber { tenant, digits }),
        allow: |who, op| match op {
            Op::List => Ok(()),
            Op::Create => who.require_operator("allocating a number"),
            Op::Delete => who.require_operator("releasing a number"),
        },
    },
    named: |body| (body.tenant.clone(), body.digits.clone()),
    find: |s, tenant, digits| s.number(digits).filter(|n| &n.tenant == tenant),
    unknown: |_, digits| unknown_number(digits),
    model: NumberBody::into_model,
    ctx: |_| Ctx::Number,
    create: Command::CreateNumber,
    update: Command::UpdateNumber,
};

#[utoipa::path(get, path = "/v1/tenants/{tenant}/numbers", tag = "numbers",
    params(("tenant" = String, Path)),
    responses((status = 200, body = [NumberBody]), (status = "default", body = ErrorBody)))]
pub(super) async fn list<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<Json<Vec<NumberBody>>, ApiError> {
    api.list(&who, &p, &NUMBERS.scoped).await
}

/// Allocates a number to the tenant (operator only).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/numbers", tag = "numbers",
    params(("tenant" = String, Path)), request_body = NumberBody,
    responses((status = 201, body = NumberBody), (status = "default", body = ErrorBody)))]
pub(super) async fn create<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
    ApiJson(body): ApiJson<NumberBody>,
) -> Result<(StatusCode, Json<NumberBody>), ApiError> {
    api.create(&who, &p, &NUMBERS, body).await
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/numbers/{digits}", tag = "numbers",
    params(("tenant" = String, Path), ("digits" = String, Path)),
    responses((status = 200, body = NumberBody), (status = "default", body = ErrorBody)))]
pub(super) async fn get_one<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<Json<NumberBody>, ApiError> {
    api.get(&who, &p, &NUMBERS).await
}

/// Replaces a number. A tenant token may change `destination` and `recording` only.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/numbers/{digits}", tag = "numbers",
    params(("tenant" = String, Path), ("digits" = String, Path)), request_body = NumberBody,
    responses((status = 200, body = NumberBody), (status = "default", body = ErrorBody)))]
pub(super) async fn update<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
    ApiJson(body): ApiJson<NumberBody>,
) -> Result<Json<NumberBody>, ApiError> {
    let (tenant, digits) = NUMBERS.ids(&who, &p, &body)?;
    let number = body.into_model(tenant, digits)?;
    if let Principal::Tenant(_) = who {
        let current = api
            .read(|s| (NUMBERS.find)(s, &number.tenant, &number.digits).cloned())
            .await?
            .ok_or_else(|| unknown_number(&number.digits))?;
        for (field, same) in [
            ("kind", current.kind == number.kind),
            ("tariff_band", current.tariff_band == number.tariff_band),
        ] {
            if !same {
                return Err(ApiError::forbidden(format!(
                    "a number's {field} is set by the operator"
                ))
                .with_field(field));
            }
        }
    }
    api.save(&who, &Ctx::Number, Command::UpdateNumber, number)
        .await
}

/// Releases a number (operator only).
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/numbers/{digits}", tag = "numbers",
    params(("tenant" = String, Path), ("digits" = String, Path)),
    responses((status = 204), (status = "default", body = ErrorBody)))]
pub(super) async fn remove<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<StatusCode, ApiError> {
    api.delete(&who, &p, &NUMBERS.scoped).await
}
