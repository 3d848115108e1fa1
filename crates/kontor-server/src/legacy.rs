//! HubSpot's older APIs that sync tools still call, shaped as HubSpot shapes them: the v2
//! properties API (`/properties/v2/{objectType}/properties` and `…/groups`), which answers
//! bare JSON arrays with times in epoch milliseconds.

use crate::auth::Ctx;
use crate::error::ApiError;
use axum::extract::Path;
use axum::Json;
use kontor_domain::property::PropertyDef;
use kontor_store::PropertyGroup;
use serde_json::{json, Value};

/// A property as the v2 API shows it.
fn property(p: &PropertyDef) -> Value {
    let options: Vec<Value> = p
        .options
        .iter()
        .map(|o| {
            json!({
                "label": o.label,
                "value": o.value,
                "displayOrder": o.display_order,
                "hidden": o.hidden,
                "description": o.description,
                "readOnly": p.read_only_value,
                "doubleData": null,
            })
        })
        .collect();
    json!({
        "name": p.name,
        "label": p.label,
        "description": p.description,
        "groupName": p.group_name,
        "type": p.kind.as_str(),
        "fieldType": p.field_type,
        "options": options,
        "displayOrder": p.display_order,
        "calculated": p.calculated,
        "externalOptions": false,
        "deleted": p.archived,
        "hubspotDefined": p.hubspot_defined,
        "readOnlyValue": p.read_only_value,
        "readOnlyDefinition": p.hubspot_defined,
        "mutableDefinitionNotDeletable": p.hubspot_defined,
        "hidden": p.hidden,
        "formField": p.form_field,
        "hasUniqueValue": p.has_unique_value,
        "createdAt": p.created_at,
        "updatedAt": p.updated_at,
        "createdUserId": null,
        "updatedUserId": null,
        "displayMode": "current_value",
        "showCurrencySymbol": false,
        "searchableInGlobalSearch": false,
        "dataSensitivity": p.sensitivity.as_str(),
    })
}

fn group(g: &PropertyGroup, portal: i64) -> Value {
    json!({
        "name": g.name,
        "displayName": g.label,
        "displayOrder": g.display_order,
        "hubspotDefined": false,
        "portalId": portal,
    })
}

/// `GET /properties/v2/{objectType}/properties`: every property that is not archived.
pub async fn properties(
    ctx: Ctx,
    Path(object_type): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let ot = ctx.object_type(&object_type).await?;
    let defs = ctx.store.readable_properties(ctx.id(), &ot, false).await?;
    Ok(Json(Value::Array(defs.iter().map(property).collect())))
}

/// `GET /properties/v2/{objectType}/properties/named/{name}`.
pub async fn property_named(
    ctx: Ctx,
    Path((object_type, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let ot = ctx.object_type(&object_type).await?;
    let defs = ctx.store.readable_properties(ctx.id(), &ot, false).await?;
    let p = defs
        .iter()
        .find(|d| d.name == name)
        .ok_or_else(|| ApiError::not_found(format!("property {name} does not exist")))?;
    Ok(Json(property(p)))
}

/// `GET /properties/v2/{objectType}/groups`.
pub async fn groups(ctx: Ctx, Path(object_type): Path<String>) -> Result<Json<Value>, ApiError> {
    let ot = ctx.object_type(&object_type).await?;
    let groups = ctx.store.property_groups(ctx.id(), &ot.type_id).await?;
    Ok(Json(Value::Array(
        groups.iter().map(|g| group(g, ctx.id())).collect(),
    )))
}
