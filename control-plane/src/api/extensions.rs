//! `/v1/tenants/{tenant}/extensions`: phones and their digest credentials.
//!
//! A plaintext `password` is turned into the two HA1s the model stores
//! (`MD5(ext:realm:password)` and `SHA-256(ext:realm:password)`, RFC 7616) with the
//! **tenant id as the realm**, and then forgotten. Precomputed HA1s are accepted
//! instead (for another realm, or to keep a password out of the API's hands). Neither
//! the password nor the HA1s (password-equivalent for digest) are ever returned.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use md5::Md5;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use utoipa::ToSchema;

use crate::cluster::Cluster;
use crate::model::{self, Command, Extension, ForwardCondition, ForwardToMobile, Id};

use super::Api;
use super::auth::Principal;
use super::crud::{Editable, Scoped, everyone};
use super::error::{ApiError, Ctx, ErrorBody};
use super::extract::{ApiJson, Params};
use super::tenants::missing;

pub const MIN_PASSWORD_LEN: usize = 8;
pub const MAX_PASSWORD_LEN: usize = 128;

/// An extension as written: credentials as `password` or as both HA1s. On PUT,
/// leaving all three out keeps the current credentials.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionBody {
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub tenant: Option<Id>,
    /// The extension number, also the SIP user name.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "1001")]
    pub ext: Option<Id>,
    #[schema(example = "Lan Nguyen")]
    pub display_name: String,
    /// 8-128 characters; hashed with realm = tenant id, never stored.
    #[serde(default)]
    pub password: Option<String>,
    /// MD5(ext:realm:password), 32 hex digits.
    #[serde(default)]
    pub ha1_md5: Option<String>,
    /// SHA-256(ext:realm:password), 64 hex digits.
    #[serde(default)]
    pub ha1_sha256: Option<String>,
    #[serde(default)]
    pub forward_to_mobile: Option<ForwardBody>,
}

/// An extension as read back: no credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionView {
    #[schema(value_type = String)]
    pub tenant: Id,
    #[schema(value_type = String)]
    pub ext: Id,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_to_mobile: Option<ForwardBody>,
}

/// Send calls to a mobile number under some conditions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForwardBody {
    /// An optional `+` and 3-15 digits.
    pub number: String,
    /// At least one condition.
    pub when: Vec<ForwardConditionBody>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ForwardConditionBody {
    Unregistered,
    NoAnswer,
    Busy,
    Always,
}

impl From<ForwardConditionBody> for ForwardCondition {
    fn from(c: ForwardConditionBody) -> ForwardCondition {
        match c {
            ForwardConditionBody::Unregistered => ForwardCondition::Unregistered,
            ForwardConditionBody::NoAnswer => ForwardCondition::NoAnswer,
            ForwardConditionBody::Busy => ForwardCondition::Busy,
            ForwardConditionBody::Always => ForwardCondition::Always,
        }
    }
}

impl From<ForwardCondition> for ForwardConditionBody {
    fn from(c: ForwardCondition) -> ForwardConditionBody {
        match c {
            ForwardCondition::Unregistered => ForwardConditionBody::Unregistered,
            ForwardCondition::NoAnswer => ForwardConditionBody::NoAnswer,
            ForwardCondition::Busy => ForwardConditionBody::Busy,
            ForwardCondition::Always => ForwardConditionBody::Always,
        }
    }
}

impl From<&Extension> for ExtensionView {
    fn from(e: &Extension) -> ExtensionView {
        ExtensionView {
            tenant: e.tenant.clone(),
            ext: e.ext.clone(),
            display_name: e.display_name.clone(),
            forward_to_mobile: e.forward_to_mobile.as_ref().map(|f| ForwardBody {
                number: f.number.clone(),
                when: f.when.iter().map(|c| (*c).into()).collect(),
            }),
        }
    }
}

/// The two HA1s the model stores for `ext` in realm `realm`.
pub fn ha1s(ext: &str, realm: &str, password: &str) -> (String, String) {
    let input = format!("{ext}:{realm}:{password}");
    (
        hex::encode(Md5::digest(input.as_bytes())),
        hex::encode(Sha256::digest(input.as_bytes())),
    )
}

impl ExtensionBody {
    /// The credentials the body gives, as (md5, sha256) HA1s, if any.
    fn credentials(&self, tenant: &Id, ext: &Id) -> Result<Option<(String, String)>, ApiError> {
        match (&self.password, &self.ha1_md5, &self.ha1_sha256) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(ApiError::invalid(
                "password",
                "give either a password or both HA1s, not both",
            )),
            (Some(password), None, None) => {
                let len = password.chars().count();
                if !(MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&len)
                    || password.chars().any(char::is_control)
                {
                    return Err(ApiError::invalid(
                        "password",
                        format!(
                            "password must be {MIN_PASSWORD_LEN}-{MAX_PASSWORD_LEN} characters without control characters"
                        ),
                    ));
                }
                Ok(Some(ha1s(ext.as_str(), tenant.as_str(), password)))
            }
            (None, Some(md5), Some(sha)) => {
                Ok(Some((md5.to_ascii_lowercase(), sha.to_ascii_lowercase())))
            }
            (None, Some(_), None) => Err(missing("ha1_sha256")),
            (None, None, Some(_)) => Err(missing("ha1_md5")),
            (None, None, None) => Ok(None),
        }
    }

    fn into_model(self, tenant: Id, ext: Id, (ha1_md5, ha1_sha256): (String, String)) -> Extension {
        Extension {
            tenant,
            ext,
            display_name: self.display_name,
            ha1_md5,
            ha1_sha256,
            forward_to_mobile: self.forward_to_mobile.map(|f| ForwardToMobile {
                number: f.number,
                when: f.when.into_iter().map(Into::into).collect::<BTreeSet<_>>(),
            }),
        }
    }
}

fn unknown_extension(tenant: &Id, ext: &Id) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_extension",
        format!("unknown extension {ext} in tenant {tenant}"),
    )
    .with_field("ext")
}

/// A tenant's extensions, by number. A PUT may leave the credentials out ([`update`]).
const EXTENSIONS: Editable<Extension, ExtensionBody, ExtensionView, Id> = Editable {
    scoped: Scoped {
        key: "ext",
        parse: Params::id,
        all: |s, tenant| s.extensions(tenant).map(ExtensionView::from).collect(),
        delete: |tenant, ext| (Ctx::Extension, Command::DeleteExtension { tenant, ext }),
        allow: everyone,
    },
    named: |body| (body.tenant.clone(), body.ext.clone()),
    find: model::State::extension,
    unknown: unknown_extension,
    model: |body, tenant, ext| {
        let creds = body
            .credentials(&tenant, &ext)?
            .ok_or_else(|| missing("password"))?;
        Ok(body.into_model(tenant, ext, creds))
    },
    ctx: |_| Ctx::Extension,
    create: Command::CreateExtension,
    update: Command::UpdateExtension,
};

#[utoipa::path(get, path = "/v1/tenants/{tenant}/extensions", tag = "extensions",
    params(("tenant" = String, Path)),
    responses((status = 200, body = [ExtensionView]), (status = "default", body = ErrorBody)))]
pub(super) async fn list<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<Json<Vec<ExtensionView>>, ApiError> {
    api.list(&who, &p, &EXTENSIONS.scoped).await
}

/// Creates an extension; needs `password` or both HA1s.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/extensions", tag = "extensions",
    params(("tenant" = String, Path)), request_body = ExtensionBody,
    responses((status = 201, body = ExtensionView), (status = "default", body = ErrorBody)))]
pub(super) async fn create<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
    ApiJson(body): ApiJson<ExtensionBody>,
) -> Result<(StatusCode, Json<ExtensionView>), ApiError> {
    api.create(&who, &p, &EXTENSIONS, body).await
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/extensions/{ext}", tag = "extensions",
    params(("tenant" = String, Path), ("ext" = String, Path)),
    responses((status = 200, body = ExtensionView), (status = "default", body = ErrorBody)))]
pub(super) async fn get_one<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<Json<ExtensionView>, ApiError> {
    api.get(&who, &p, &EXTENSIONS).await
}

/// Replaces an extension; without `password` or HA1s the current credentials stay.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/extensions/{ext}", tag = "extensions",
    params(("tenant" = String, Path), ("ext" = String, Path)), request_body = ExtensionBody,
    responses((status = 200, body = ExtensionView), (status = "default", body = ErrorBody)))]
pub(super) async fn update<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
    ApiJson(body): ApiJson<ExtensionBody>,
) -> Result<Json<ExtensionView>, ApiError> {
    let (tenant, ext) = EXTENSIONS.ids(&who, &p, &body)?;
    let creds = match body.credentials(&tenant, &ext)? {
        Some(creds) => creds,
        None => api
            .read_tenant(&tenant, |s| {
                s.extension(&tenant, &ext)
                    .map(|e| (e.ha1_md5.clone(), e.ha1_sha256.clone()))
            })
            .await?
            .ok_or_else(|| unknown_extension(&tenant, &ext))?,
    };
    let e = body.into_model(tenant, ext, creds);
    api.save(&who, &Ctx::Extension, Command::UpdateExtension, e)
        .await
}

/// Deletes an extension that no number, hunt group or agent uses; drops its bindings.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/extensions/{ext}", tag = "extensions",
    params(("tenant" = String, Path), ("ext" = String, Path)),
    responses((status = 204), (status = "default", body = ErrorBody)))]
pub(super) async fn remove<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<StatusCode, ApiError> {
    api.delete(&who, &p, &EXTENSIONS.scoped).await
}
