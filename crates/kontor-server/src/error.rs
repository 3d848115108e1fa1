//! One error type for every handler; it renders HubSpot's error envelope.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kontor_store::StoreError;
use serde_json::{json, Value};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub category: &'static str,
    pub message: String,
    pub sub_category: Option<String>,
    /// `errors[0].in`: the field at fault.
    pub in_field: Option<String>,
    pub code: Option<String>,
    pub context: Option<Value>,
    pub retry_after: Option<u64>,
    /// The limit a refused request met (HubSpot's 429 body names it).
    pub policy: Option<crate::rate::Policy>,
}

impl ApiError {
    pub fn new(status: StatusCode, category: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            category,
            message: message.into(),
            sub_category: None,
            in_field: None,
            code: None,
            context: None,
            retry_after: None,
            policy: None,
        }
    }
    pub fn validation(message: impl Into<String>, in_field: impl Into<String>) -> Self {
        Self {
            in_field: Some(in_field.into()),
            ..Self::new(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
        }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", message)
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
        )
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", message)
    }
    /// 429 as HubSpot answers it past a rate limit.
    pub fn rate_limited(r: crate::rate::Refusal) -> Self {
        Self {
            retry_after: Some(r.retry_after.as_secs_f64().ceil().max(1.0) as u64),
            policy: Some(r.policy),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITS",
                r.policy.message(),
            )
        }
    }
    /// An object type kontor does not hold: HubSpot's answer for a portal without it (403
    /// `MISSING_SCOPES`) when HubSpot has it, and 400 "Unable to infer object type" otherwise.
    pub fn unknown_object_type(name: &str) -> Self {
        if let Some(scope) = kontor_domain::object_type::hubspot_only_scope(name) {
            return Self {
                context: Some(json!({"requiredGranularScopes": [scope]})),
                ..Self::new(
                    StatusCode::FORBIDDEN,
                    "MISSING_SCOPES",
                    format!("This app hasn't been granted all required scopes to make this call: kontor does not hold {name} (it is not in this account)."),
                )
            };
        }
        Self {
            in_field: Some("objectType".into()),
            ..Self::new(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                format!("Unable to infer object type from: {name}"),
            )
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ApiError::not_found(m),
            StoreError::Validation {
                message,
                code,
                in_field,
            } => ApiError {
                code: Some(code),
                in_field,
                ..ApiError::new(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
            },
            StoreError::Conflict {
                message,
                existing_id,
            } => ApiError {
                context: existing_id.map(|id| json!({"id": [id.to_string()]})),
                ..ApiError::new(StatusCode::CONFLICT, "CONFLICT", message)
            },
            StoreError::TooSoon { message, retry_at } => {
                let wait_s = (retry_at - kontor_domain::time::now_ms()).max(1000) / 1000;
                ApiError {
                    retry_after: Some(wait_s as u64),
                    context: Some(json!({"nextAllowedAt": [kontor_domain::time::iso(retry_at)]})),
                    ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITS", message)
                }
            }
            // The cell's fence refused a write: the account is moving, as a request admitted
            // a moment before the freeze finds out.
            StoreError::Fenced(_) => crate::lifecycle::Closed::Migrating.into(),
            StoreError::TimedOut(message) => {
                ApiError::new(StatusCode::GATEWAY_TIMEOUT, "TIMEOUT", message)
            }
            other => {
                let correlation = crate::headers::correlation_id();
                tracing::error!(%correlation, error = %other, "request failed");
                ApiError::internal(format!(
                    "internal error; quote correlation id {correlation} when reporting it"
                ))
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // The request's own id, which its answer also carries in `X-HubSpot-Correlation-Id`.
        let correlation = crate::headers::correlation_id();
        let mut body = json!({
            "status": "error",
            "message": self.message,
            "correlationId": correlation,
            "category": self.category,
        });
        if let Some(s) = &self.sub_category {
            body["subCategory"] = json!(s);
        }
        if let Some(p) = self.policy {
            body["errorType"] = json!("RATE_LIMIT");
            body["policyName"] = json!(p.name());
            body["requestId"] = json!(correlation);
        }
        if self.category == "MISSING_SCOPES" {
            // HubSpot names the scopes in the first error's context.
            body["errors"] = json!([{
                "message": "One or more of the following scopes are required.",
                "context": self.context.unwrap_or_else(|| json!({})),
            }]);
            body["links"] = json!({"scopes": "https://developers.hubspot.com/scopes"});
        } else if let Some(c) = self.context {
            body["context"] = c;
        }
        if self.in_field.is_some() || self.code.is_some() {
            let mut detail = json!({"message": self.message});
            if let Some(f) = &self.in_field {
                detail["in"] = json!(f);
            }
            if let Some(c) = &self.code {
                detail["code"] = json!(c);
            }
            body["errors"] = json!([detail]);
        }
        if self.status.is_server_error() {
            tracing::warn!(correlation, status = %self.status, message = %self.message, "error response");
        }
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                resp.headers_mut().insert("retry-after", v);
            }
        }
        resp
    }
}
