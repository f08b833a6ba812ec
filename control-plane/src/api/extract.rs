//! Request extractors whose every rejection is an [`ApiError`] naming the field:
//! JSON bodies ([`ApiJson`]) and path parameters ([`Params`]).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::model::Id;

use super::auth::Principal;
use super::error::ApiError;

/// A JSON body, parsed with the path of the failing field tracked.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .is_some_and(|m| m == "application/json" || m.ends_with("+json"));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e: BytesRejection| {
                ApiError::new(e.status(), "unreadable_body", e.body_text())
            })?;
        parse(&bytes).map(ApiJson)
    }
}

/// Parses `bytes` as `T`; a failure names the JSON path of the offending field.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde accepts an array for a struct (fields by position); every body here is an
    // object, and "expected a string at [0]" would only confuse.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong_type",
            "the body must be a JSON object",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(json_error)?;
    // Trailing characters after the value.
    de.end()
        .map_err(|e| ApiError::bad_request("malformed_json", e.to_string()))?;
    Ok(value)
}

fn json_error(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    if !matches!(inner.classify(), Category::Data) {
        return ApiError::bad_request("malformed_json", format!("malformed JSON: {inner}"));
    }
    // serde_json appends the position; the field path says more.
    let full = inner.to_string();
    let message = match full.rfind(" at line ") {
        Some(i) => full[..i].to_owned(),
        None => full,
    };
    let base = if path == "." { String::new() } else { path };
    let join = |name: &str| {
        if base.is_empty() {
            name.to_owned()
        } else {
            format!("{base}.{name}")
        }
    };
    let (code, field) = if let Some(name) = quoted(&message, "missing field `") {
        ("missing_field", join(name))
    } else if let Some(name) = quoted(&message, "unknown field `") {
        // The path already ends in the unknown key, except inside tagged enums.
        let at_key = base == name || base.ends_with(&format!(".{name}"));
        ("unknown_field", if at_key { base } else { join(name) })
    } else if message.starts_with("invalid type") || message.starts_with("invalid length") {
        ("wrong_type", base)
    } else {
        ("invalid_value", base)
    };
    let error = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message);
    if field.is_empty() {
        error
    } else {
        error.with_field(field)
    }
}

/// The name between `prefix` and the next backtick.
fn quoted<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split('`').next()
}

/// The URL's path parameters, validated by name on use.
#[derive(Debug)]
pub struct Params(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))?;
        Ok(Params(
            raw.iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        ))
    }
}

impl Params {
    pub(super) fn raw(&self, name: &str) -> Result<&str, ApiError> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| ApiError::internal(format!("route has no parameter {name}")))
    }

    /// The parameter `name` as an [`Id`] (400 naming it if malformed).
    pub fn id(&self, name: &str) -> Result<Id, ApiError> {
        let raw = self.raw(name)?;
        Id::new(raw).map_err(|e| {
            ApiError::bad_request("invalid_id", format!("{name} in the URL: {e}")).with_field(name)
        })
    }

    /// The `{tenant}` parameter, which `who` must be allowed to see.
    pub fn tenant(&self, who: &Principal) -> Result<Id, ApiError> {
        let tenant = self.id("tenant")?;
        who.require_tenant(&tenant)?;
        Ok(tenant)
    }

    /// The `{digits}` parameter: 1-15 ASCII digits.
    pub fn digits(&self) -> Result<String, ApiError> {
        let raw = self.raw("digits")?;
        if (1..=15).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_digit()) {
            Ok(raw.to_owned())
        } else {
            Err(ApiError::bad_request(
                "invalid_number",
                format!(
                    "digits in the URL: {:?} is not a number (1-15 digits)",
                    raw.chars().take(32).collect::<String>()
                ),
            )
            .with_field("digits"))
        }
    }

    /// The `{id}` parameter as a node id.
    pub fn node_id(&self) -> Result<u64, ApiError> {
        let raw = self.raw("id")?;
        raw.parse().map_err(|_| {
            ApiError::bad_request("invalid_id", "id in the URL must be a node id (a number)")
                .with_field("id")
        })
    }
}

/// `field` from the body must be absent or equal to the path's value; returns the
/// path's value.
pub fn matching<T: PartialEq + ToString>(
    field: &str,
    path: T,
    body: Option<T>,
) -> Result<T, ApiError> {
    match body {
        Some(b) if b != path => Err(ApiError::path_mismatch(
            field,
            &path.to_string(),
            &b.to_string(),
        )),
        _ => Ok(path),
    }
}
