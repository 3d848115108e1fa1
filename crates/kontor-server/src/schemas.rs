//! `/crm-object-schemas/v3/schemas` (also served as `/crm/v3/schemas`): custom object types.

use crate::auth::Ctx;
use crate::error::ApiError;
use crate::params::{from_value, JsonBody, QueryParams};
use crate::wire;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kontor_domain::time::iso;
use kontor_store::{CustomSchema, SchemaInput};
use serde_json::{json, Value};

/// The schema routes under one prefix: the list, one schema, its associations, one of them.
pub fn routes([list, one, associations, association]: [&'static str; 4]) -> crate::Routes {
    use axum::routing::{delete, get, post};
    crate::Routes::new()
        .route(list, get(self::list).post(create))
        .route(one, get(get_one).patch(update).delete(archive))
        .route(associations, post(create_association))
        .route(association, delete(archive_association))
}

fn definition(s: &CustomSchema) -> Value {
    json!({
        "id": s.id.to_string(),
        "objectTypeId": s.object_type_id,
        "fullyQualifiedName": s.fully_qualified_name,
        "name": s.name,
        "labels": {"singular": s.label_singular, "plural": s.label_plural},
        "description": s.description,
        "primaryDisplayProperty": s.primary_display_property,
        "secondaryDisplayProperties": s.secondary_display_properties,
        "requiredProperties": s.required_properties,
        "searchableProperties": s.searchable_properties,
        "portalId": null,
        "archived": s.archived,
        "createdAt": iso(s.created_at),
        "updatedAt": iso(s.updated_at),
    })
}

async fn full(ctx: &Ctx, s: &CustomSchema) -> Result<Value, ApiError> {
    let mut v = definition(s);
    v["portalId"] = json!(ctx.id());
    let props = ctx
        .store
        .properties(ctx.id(), &s.object_type_id, false)
        .await?;
    v["properties"] = Value::Array(props.iter().map(wire::property).collect());
    let assocs = ctx
        .store
        .association_types_from(ctx.id(), &s.object_type_id)
        .await?;
    v["associations"] = Value::Array(
        assocs
            .iter()
            .map(|(to, t)| json!({"id": t.type_id.to_string(), "fromObjectTypeId": s.object_type_id, "toObjectTypeId": to, "name": t.name, "createdAt": iso(s.created_at), "updatedAt": iso(s.updated_at)}))
            .collect(),
    );
    Ok(v)
}

async fn find(ctx: &Ctx, key: &str) -> Result<CustomSchema, ApiError> {
    ctx.store
        .custom_schema(ctx.id(), key)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Unable to find object type {key}")))
}

pub async fn list(ctx: Ctx, q: QueryParams) -> Result<Json<Value>, ApiError> {
    let mut results = Vec::new();
    for s in ctx
        .store
        .custom_schemas(ctx.id(), q.bool("archived")?)
        .await?
    {
        results.push(full(&ctx, &s).await?);
    }
    Ok(Json(json!({"results": results})))
}

pub async fn get_one(ctx: Ctx, Path(key): Path<String>) -> Result<Json<Value>, ApiError> {
    let s = find(&ctx, &key).await?;
    Ok(Json(full(&ctx, &s).await?))
}

pub async fn create(ctx: Ctx, JsonBody(body): JsonBody) -> Result<Response, ApiError> {
    let input: SchemaInput = from_value(body, "body")?;
    let s = ctx.store.create_schema(ctx.id(), input).await?;
    ctx.store
        .audit(
            ctx.id(),
            None,
            &format!("token:{}", ctx.token.name),
            "schema.create",
            &s.object_type_id,
            serde_json::json!({"name": s.name}),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(full(&ctx, &s).await?)).into_response())
}

pub async fn update(
    ctx: Ctx,
    Path(key): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let input: SchemaInput = from_value(body, "body")?;
    let s = ctx.store.update_schema(ctx.id(), &key, input).await?;
    let mut v = definition(&s);
    v["portalId"] = json!(ctx.id());
    Ok(Json(v))
}

pub async fn archive(ctx: Ctx, Path(key): Path<String>) -> Result<StatusCode, ApiError> {
    let s = find(&ctx, &key).await?;
    ctx.store
        .archive_schema(ctx.id(), &s.object_type_id)
        .await?;
    ctx.store
        .audit(
            ctx.id(),
            None,
            &format!("token:{}", ctx.token.name),
            "schema.archive",
            &s.object_type_id,
            serde_json::json!({}),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn create_association(
    ctx: Ctx,
    Path(key): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let s = find(&ctx, &key).await?;
    let from_key = body
        .get("fromObjectTypeId")
        .and_then(Value::as_str)
        .unwrap_or(&s.object_type_id)
        .to_string();
    let to_key = body
        .get("toObjectTypeId")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::validation("toObjectTypeId is required", "toObjectTypeId"))?;
    let from = ctx.object_type(&from_key).await?;
    let to = ctx.object_type(to_key).await?;
    let types = ctx.store.association_types(ctx.id(), &from, &to).await?;
    let t = types
        .iter()
        .find(|t| t.is_default)
        .cloned()
        .ok_or_else(|| ApiError::internal("no default association type"))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": t.type_id.to_string(), "fromObjectTypeId": from.type_id, "toObjectTypeId": to.type_id, "name": body.get("name").and_then(Value::as_str).unwrap_or(&t.name), "createdAt": iso(s.created_at), "updatedAt": iso(s.updated_at)})),
    )
        .into_response())
}

pub async fn archive_association(
    ctx: Ctx,
    Path((key, association)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let s = find(&ctx, &key).await?;
    let id: i64 = association.parse().map_err(|_| {
        ApiError::not_found(format!(
            "association definition {association} does not exist"
        ))
    })?;
    ctx.store
        .delete_association_type(ctx.id(), &s.object_type_id, id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
