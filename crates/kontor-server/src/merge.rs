//! Two operations that end records without the recycle bin: `POST …/{objectType}/merge` (two
//! contacts, companies, deals or tickets become one; see `Store::merge_records`) and
//! `POST …/contacts/gdpr-delete` (a contact erased for good; see `Store::gdpr_delete`).

use crate::auth::Ctx;
use crate::error::ApiError;
use crate::objects::{render, ReadOptions};
use crate::params::{JsonBody, QueryParams};
use axum::extract::Path;
use axum::Json;
use serde_json::{json, Value};

/// An id in a merge body: a string, as the clients send it, or a number.
fn id_in(body: &Value, field: &str) -> Result<i64, ApiError> {
    let bad = || ApiError::validation(format!("{field} must be a record id"), field);
    match body.get(field) {
        Some(Value::String(s)) => s.trim().parse().map_err(|_| bad()),
        Some(Value::Number(n)) => n.as_i64().ok_or_else(bad),
        _ => Err(bad()),
    }
}

pub async fn merge(
    ctx: Ctx,
    Path(object_type): Path<String>,
    q: QueryParams,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let ot = ctx.object_type(&object_type).await?;
    let primary = id_in(&body, "primaryObjectId")?;
    let merged = id_in(&body, "objectIdToMerge")?;
    let record = ctx
        .store
        .merge_records(ctx.id(), &ot, primary, merged, &ctx.actor())
        .await?;
    ctx.store
        .audit(
            ctx.id(),
            None,
            &format!("token:{}", ctx.token.name),
            "record.merge",
            &format!("{}:{primary}", ot.name),
            json!({ "merged": merged.to_string() }),
        )
        .await?;
    let mut out = render(
        &ctx,
        &ot,
        std::slice::from_ref(&record),
        &ReadOptions::from_query(&q),
    )
    .await?;
    Ok(Json(out.remove(0)))
}

/// `POST /crm/v3/objects/contacts/gdpr-delete`: erases a contact for good, by id or (with
/// `idProperty: email`) by e-mail address, and blocks the address (see
/// `Store::gdpr_delete`). The audit entry names the contact's id only.
pub async fn gdpr_delete(
    ctx: Ctx,
    Path(object_type): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<axum::http::StatusCode, ApiError> {
    let ot = ctx.object_type(&object_type).await?;
    let key = match body.get("objectId") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(ApiError::validation("objectId is required", "objectId")),
    };
    let (id, email) =
        match body.get("idProperty").and_then(Value::as_str) {
            None | Some("") | Some("hs_object_id") => (
                Some(key.parse::<i64>().map_err(|_| {
                    ApiError::validation("objectId must be a record id", "objectId")
                })?),
                None,
            ),
            Some("email") => (None, Some(key)),
            Some(other) => {
                return Err(ApiError::validation(
                    format!("idProperty {other:?} is not email or hs_object_id"),
                    "idProperty",
                ))
            }
        };
    let erased = ctx
        .store
        .gdpr_delete(ctx.id(), &ot, id, email.as_deref(), &ctx.actor())
        .await?;
    let target = match erased.record {
        Some(id) => format!("{}:{id}", ot.name),
        None => format!("{}:(no contact had the address)", ot.name),
    };
    ctx.store
        .audit(
            ctx.id(),
            None,
            &format!("token:{}", ctx.token.name),
            "record.gdpr-delete",
            &target,
            json!({ "message": "erased for good; its e-mail addresses are blocked" }),
        )
        .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
