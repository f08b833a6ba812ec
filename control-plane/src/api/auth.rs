//! Bearer-token authentication: who is asking, and what they may touch.
//!
//! Two kinds of token:
//! - the **operator token**, configured per replica ([`AuthConfig`]): everything;
//! - **tenant tokens**, replicated as SHA-256 hashes ([`crate::model::ApiToken`]): only
//!   their own tenant's resources. Another tenant's resources answer 404 exactly as a
//!   tenant that does not exist would, so a tenant cannot probe for others' ids;
//!   operator-only operations (tenant creation and deletion, quotas, numbers'
//!   allocation, tokens, cluster membership, registrations of all tenants) answer 403.
//!
//! Tokens are compared as SHA-256 digests in constant time, every stored hash is
//! compared (no early exit), and the token itself is never stored or logged.

use std::fmt;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::cluster::Cluster;
use crate::model::Id;

use super::Api;
use super::error::ApiError;

/// Shortest operator token accepted: a guessable one would open the whole cluster.
pub const MIN_OPERATOR_TOKEN_LEN: usize = 16;

/// This replica's authentication settings.
#[derive(Clone, Default)]
pub struct AuthConfig {
    operator_sha256: Option<[u8; 32]>,
}

/// The operator token is too short to be safe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the operator token must be at least {MIN_OPERATOR_TOKEN_LEN} characters")]
pub struct WeakOperatorToken;

impl AuthConfig {
    /// Accepts `token` as the operator token (kept only as its SHA-256).
    pub fn with_operator_token(token: &str) -> Result<AuthConfig, WeakOperatorToken> {
        if token.len() < MIN_OPERATOR_TOKEN_LEN {
            return Err(WeakOperatorToken);
        }
        Ok(AuthConfig {
            operator_sha256: Some(Sha256::digest(token.as_bytes()).into()),
        })
    }

    /// No operator token: only tenant tokens are accepted (and so no tenant can be
    /// created through this replica).
    pub fn tenant_tokens_only() -> AuthConfig {
        AuthConfig::default()
    }

    fn is_operator(&self, digest: &[u8; 32]) -> bool {
        self.operator_sha256
            .is_some_and(|op| bool::from(op.ct_eq(digest)))
    }
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field(
                "operator_token",
                &self.operator_sha256.map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Who a request acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Operator,
    Tenant(Id),
}

impl Principal {
    /// Refuses tenant tokens (403).
    pub fn require_operator(&self, what: &str) -> Result<(), ApiError> {
        match self {
            Principal::Operator => Ok(()),
            Principal::Tenant(_) => Err(ApiError::forbidden(format!(
                "{what} needs the operator token"
            ))),
        }
    }

    /// Refuses a tenant token for another tenant with the same 404 as a tenant that
    /// does not exist.
    pub fn require_tenant(&self, tenant: &Id) -> Result<(), ApiError> {
        match self {
            Principal::Tenant(own) if own != tenant => Err(unknown_tenant(tenant)),
            _ => Ok(()),
        }
    }

    /// Whether this principal may see `tenant`.
    pub fn sees(&self, tenant: &Id) -> bool {
        match self {
            Principal::Operator => true,
            Principal::Tenant(own) => own == tenant,
        }
    }
}

pub(super) fn unknown_tenant(tenant: &Id) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_tenant",
        format!("unknown tenant {tenant}"),
    )
    .with_field("tenant")
}

/// A fresh tenant token: `td_` and 32 random bytes in hex, and its SHA-256 (hex) as
/// the model stores it.
pub(super) fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("td_{}", hex::encode(bytes));
    let hash = sha256_hex(&token);
    (token, hash)
}

pub(super) fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

impl<C: Cluster> FromRequestParts<Api<C>> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api<C>) -> Result<Self, ApiError> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("send Authorization: Bearer <token>"))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthorized("the Authorization header must be Bearer <token>"))?;
        authenticate(&api.auth, &api.cluster, token)
            .ok_or_else(|| unauthorized("unknown or revoked token"))
    }
}

fn authenticate<C: Cluster>(auth: &Arc<AuthConfig>, cluster: &C, token: &str) -> Option<Principal> {
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    if auth.is_operator(&digest) {
        return Some(Principal::Operator);
    }
    let hex = hex::encode(digest);
    cluster.read(|state| {
        let mut found = None;
        for t in state.all_api_tokens() {
            if bool::from(t.sha256.as_bytes().ct_eq(hex.as_bytes())) {
                found = Some(t.tenant.clone());
            }
        }
        found.map(Principal::Tenant)
    })
}
