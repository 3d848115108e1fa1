//! `/crm/v3/owners`.

use crate::auth::Ctx;
use crate::error::ApiError;
use crate::params::QueryParams;
use crate::wire;
use axum::extract::Path;
use axum::Json;
use serde_json::{json, Value};

pub async fn list(ctx: Ctx, q: QueryParams) -> Result<Json<Value>, ApiError> {
    let limit = q.limit(100, 500)?;
    let after = q.after()?.unwrap_or(0);
    let mut owners = ctx
        .store
        .owners(
            ctx.id(),
            q.bool("archived")?,
            q.first("email"),
            after,
            limit + 1,
        )
        .await?;
    let next = if owners.len() > limit {
        owners.truncate(limit);
        owners.last().map(|o| o.id.to_string())
    } else {
        None
    };
    let mut body = json!({"results": owners.iter().map(wire::owner).collect::<Vec<_>>()});
    if let Some(p) = wire::paging(next) {
        body["paging"] = p;
    }
    Ok(Json(body))
}

pub async fn get_one(
    ctx: Ctx,
    Path(id): Path<String>,
    q: QueryParams,
) -> Result<Json<Value>, ApiError> {
    let by_user = match q.first("idProperty") {
        None | Some("id") => false,
        Some("userId") => true,
        Some(p) => {
            return Err(ApiError::validation(
                format!("idProperty must be id or userId, got {p:?}"),
                "idProperty",
            ))
        }
    };
    let not_found = || {
        ApiError::not_found(format!(
            "No owner with {} {id} exists",
            if by_user { "userId" } else { "id" }
        ))
    };
    let n: i64 = id.parse().map_err(|_| not_found())?;
    let o = ctx
        .store
        .owner(ctx.id(), n, by_user, q.bool("archived")?)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(wire::owner(&o)))
}
