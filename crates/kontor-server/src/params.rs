//! Request inputs the official clients send in their own ways: repeated query keys that may
//! also be comma-separated, `True`/`false` booleans, and JSON bodies with any content type.

use crate::error::ApiError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde_json::Value;

/// Parsed query string keeping every occurrence of every key.
#[derive(Debug, Default)]
pub struct QueryParams(pub Vec<(String, String)>);

impl QueryParams {
    pub fn first(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// All values of a list parameter: repeated keys, each also split on commas.
    pub fn list(&self, key: &str) -> Option<Vec<String>> {
        let v: Vec<String> = self
            .0
            .iter()
            .filter(|(k, _)| k == key)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        (!v.is_empty()).then_some(v)
    }

    pub fn bool(&self, key: &str) -> Result<bool, ApiError> {
        match self.first(key) {
            None | Some("") => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(ApiError::validation(
                format!("{key} must be true or false, got {v:?}"),
                key,
            )),
        }
    }

    pub fn limit(&self, default: usize, max: usize) -> Result<usize, ApiError> {
        match self.first("limit") {
            None | Some("") => Ok(default),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(ApiError::validation(
                    format!("limit must be an integer from 1 to {max}, got {v:?}"),
                    "limit",
                )),
            },
        }
    }

    /// `after` cursors are record ids.
    pub fn after(&self) -> Result<Option<i64>, ApiError> {
        match self.first("after") {
            None | Some("") => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                ApiError::validation(
                    format!("after {v:?} is not a cursor this server issued"),
                    "after",
                )
            }),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        Ok(QueryParams(
            form_urlencoded::parse(q.as_bytes()).into_owned().collect(),
        ))
    }
}

/// A JSON body, whatever the Content-Type says; malformed JSON and oversized bodies get the
/// error envelope (400 / 413) instead of axum's plain-text rejections.
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = bytes::Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "VALIDATION_ERROR",
                    "the request body is larger than this server accepts",
                )
            } else {
                ApiError::validation(format!("could not read the request body: {e}"), "body")
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(Value::Null));
        }
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            ApiError::validation(
                format!(
                    "Invalid input JSON on line {}, column {}: {e}",
                    e.line(),
                    e.column()
                ),
                "body",
            )
        })
    }
}

/// Deserialises part of a body into a typed input, naming the field on failure.
pub fn from_value<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> Result<T, ApiError> {
    serde_json::from_value(v)
        .map_err(|e| ApiError::validation(format!("Invalid input JSON: {e}"), what))
}

/// `inputs` of a batch body: an array of at most `max` items.
pub fn batch_inputs(body: &Value, max: usize) -> Result<Vec<Value>, ApiError> {
    let inputs = body
        .get("inputs")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::validation("inputs is required and must be an array", "inputs"))?;
    if inputs.len() > max {
        return Err(ApiError::validation(
            format!("a batch takes at most {max} inputs, got {}", inputs.len()),
            "inputs",
        ));
    }
    Ok(inputs.clone())
}

/// Ids arrive as strings (`"101"`) or numbers.
pub fn id_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
