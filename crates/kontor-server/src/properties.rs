//! `/crm/v3/properties/{objectType}`: property definitions and groups.

use crate::auth::Ctx;
use crate::error::ApiError;
use crate::params::{batch_inputs, from_value, JsonBody, QueryParams};
use crate::wire;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kontor_domain::time::now_ms;
use kontor_domain::Sensitivity;
use kontor_store::{PropertyGroup, PropertyInput};
use serde_json::{json, Value};

/// As in HubSpot, a listing without `dataSensitivity` shows only non-sensitive properties;
/// `dataSensitivity=sensitive|highly_sensitive` lists those, `all` lists everything (ours).
pub async fn list(
    ctx: Ctx,
    Path(object_type): Path<String>,
    q: QueryParams,
) -> Result<Json<Value>, ApiError> {
    let ot = ctx.object_type(&object_type).await?;
    let filter = match q.first("dataSensitivity") {
        None | Some("") => Some(Sensitivity::NonSensitive),
        Some("all") => None,
        Some(s) => Some(Sensitivity::parse(s).ok_or_else(|| {
            ApiError::validation(
                format!(
                    "dataSensitivity {s:?} is not non_sensitive, sensitive or highly_sensitive"
                ),
                "dataSensitivity",
            )
        })?),
    };
    let defs = ctx
        .store
        .readable_properties(ctx.id(), &ot, q.bool("archived")?)
        .await?;
    let results: Vec<Value> = defs
        .iter()
        .filter(|d| filter.is_none_or(|f| d.sensitivity == f))
        .map(wire::property)
        .collect();
    Ok(Json(json!({"results": results})))
}

pub async fn get_one(
    ctx: Ctx,
    Path((object_type, name)): Path<(String, String)>,
    q: QueryParams,
) -> Result<Json<Value>, ApiError> {
    let ot = ctx.object_type(&object_type).await?;
    let archived = q.bool("archived")?;
    let stored = ctx.store.property(ctx.id(), &ot.type_id, &name).await?;
    let calculated = match (&stored, archived) {
        (None, false) if kontor_domain::pipeline::stage_property(&name).is_some() => ctx
            .store
            .readable_properties(ctx.id(), &ot, false)
            .await?
            .into_iter()
            .find(|d| d.name == name),
        _ => None,
    };
    let def = stored
        .or(calculated)
        .filter(|d| d.archived == archived)
        .ok_or_else(|| {
            ApiError::not_found(format!("Unable to find property {name} on {}", ot.name))
        })?;
    Ok(Json(wire::property(&def)))
}

pub async fn create(
    ctx: Ctx,
    Path(object_type): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let ot = ctx.object_type(&object_type).await?;
    let input: PropertyInput = from_value(body, "body")?;
    let def = ctx
        .store
        .create_property(ctx.id(), &ot.type_id, input)
        .await?;
    Ok((StatusCode::CREATED, Json(wire::property(&def))).into_response())
}

pub async fn update(
    ctx: Ctx,
    Path((object_type, name)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let ot = ctx.object_type(&object_type).await?;
    let input: PropertyInput = from_value(body, "body")?;
    let def = ctx
        .store
        .update_property(ctx.id(), &ot.type_id, &name, input)
        .await?;
    Ok(Json(wire::property(&def)))
}

pub async fn archive(
    ctx: Ctx,
    Path((object_type, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let ot = ctx.object_type(&object_type).await?;
    ctx.store
        .archive_property(ctx.id(), &ot.type_id, &name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn batch_read(
    ctx: Ctx,
    Path(object_type): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let started = now_ms();
    let ot = ctx.object_type(&object_type).await?;
    let inputs = batch_inputs(&body, 100)?;
    let archived = body
        .get("archived")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let defs = ctx
        .store
        .properties(ctx.id(), &ot.type_id, archived)
        .await?;
    let mut results = Vec::new();
    let mut missing = Vec::new();
    for v in &inputs {
        let name = v.get("name").and_then(Value::as_str).unwrap_or_default();
        match defs.iter().find(|d| d.name == name) {
            Some(d) => results.push(wire::property(d)),
            None => missing.push(name.to_string()),
        }
    }
    Ok(wire::batch_reply(
        results,
        &missing,
        "Some properties do not exist",
        StatusCode::OK,
        started,
    ))
}

/// Creates every property or none.
pub async fn batch_create(
    ctx: Ctx,
    Path(object_type): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let started = now_ms();
    let ot = ctx.object_type(&object_type).await?;
    let inputs = batch_inputs(&body, 100)?;
    let mut defs = Vec::new();
    for (i, v) in inputs.into_iter().enumerate() {
        let input: PropertyInput = from_value(v, &format!("inputs[{i}]"))?;
        let def = ctx
            .store
            .check_new_property(ctx.id(), &ot.type_id, input)
            .await
            .map_err(|e| {
                let mut e = ApiError::from(e);
                e.in_field = Some(format!("inputs[{i}].{}", e.in_field.unwrap_or_default()));
                e
            })?;
        if defs
            .iter()
            .any(|d: &kontor_domain::PropertyDef| d.name == def.name)
        {
            return Err(ApiError::validation(
                format!("property {} appears twice in the batch", def.name),
                format!("inputs[{i}].name"),
            ));
        }
        defs.push(def);
    }
    ctx.store
        .insert_properties(ctx.id(), &ot.type_id, &defs)
        .await?;
    let (_, v) = wire::batch(defs.iter().map(wire::property).collect(), vec![], started);
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

pub async fn batch_archive(
    ctx: Ctx,
    Path(object_type): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<StatusCode, ApiError> {
    let ot = ctx.object_type(&object_type).await?;
    for v in batch_inputs(&body, 100)? {
        if let Some(name) = v.get("name").and_then(Value::as_str) {
            match ctx
                .store
                .archive_property(ctx.id(), &ot.type_id, name)
                .await
            {
                Ok(()) | Err(kontor_store::StoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

fn group_json(g: &PropertyGroup) -> Value {
    json!({"name": g.name, "label": g.label, "displayOrder": g.display_order, "archived": g.archived})
}

pub async fn groups(ctx: Ctx, Path(object_type): Path<String>) -> Result<Json<Value>, ApiError> {
    let ot = ctx.object_type(&object_type).await?;
    let groups = ctx.store.property_groups(ctx.id(), &ot.type_id).await?;
    Ok(Json(
        json!({"results": groups.iter().map(group_json).collect::<Vec<_>>()}),
    ))
}

pub async fn get_group(
    ctx: Ctx,
    Path((object_type, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let ot = ctx.object_type(&object_type).await?;
    let g = ctx
        .store
        .property_groups(ctx.id(), &ot.type_id)
        .await?
        .into_iter()
        .find(|g| g.name == name)
        .ok_or_else(|| ApiError::not_found(format!("property group {name} does not exist")))?;
    Ok(Json(group_json(&g)))
}

pub async fn create_group(
    ctx: Ctx,
    Path(object_type): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let ot = ctx.object_type(&object_type).await?;
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::validation("name is required", "name"))?;
    let label = body
        .get("label")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::validation("label is required", "label"))?;
    let display_order = body
        .get("displayOrder")
        .and_then(Value::as_i64)
        .unwrap_or(-1);
    let g = ctx
        .store
        .create_property_group(
            ctx.id(),
            &ot.type_id,
            PropertyGroup {
                name: name.into(),
                label: label.into(),
                display_order,
                archived: false,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(group_json(&g))).into_response())
}

pub async fn update_group(
    ctx: Ctx,
    Path((object_type, name)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let ot = ctx.object_type(&object_type).await?;
    let label = body
        .get("label")
        .and_then(Value::as_str)
        .map(str::to_string);
    let order = body.get("displayOrder").and_then(Value::as_i64);
    let g = ctx
        .store
        .update_property_group(ctx.id(), &ot.type_id, &name, label, order)
        .await?;
    Ok(Json(group_json(&g)))
}

pub async fn archive_group(
    ctx: Ctx,
    Path((object_type, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let ot = ctx.object_type(&object_type).await?;
    ctx.store
        .archive_property_group(ctx.id(), &ot.type_id, &name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
