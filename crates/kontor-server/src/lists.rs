//! HubSpot's contact lists v1 API, as a portal without lists answers it. kontor has no lists:
//! `GET /contacts/v1/lists` answers the empty listing and `GET /contacts/v1/lists/{listId}`
//! 404, so that a sync tool that reads lists first finds none and goes on.

use crate::auth::Ctx;
use crate::error::ApiError;
use axum::extract::Path;
use axum::Json;
use serde_json::{json, Value};

/// `GET /contacts/v1/lists`: no lists, and no more to page through.
pub async fn list(_: Ctx) -> Json<Value> {
    Json(json!({ "lists": [], "offset": 0, "has-more": false }))
}

/// `GET /contacts/v1/lists/{listId}`: no list exists.
pub async fn get_one(_: Ctx, Path(id): Path<String>) -> ApiError {
    let id: String = id.chars().take(100).collect();
    ApiError::not_found(format!("list {id} does not exist"))
}
