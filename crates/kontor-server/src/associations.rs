//! Associations: `/crm/v4/objects/…/associations`, `/crm/v4/associations/…` and the v3 batch API.

use crate::auth::Ctx;
use crate::error::ApiError;
use crate::params::{batch_inputs, id_of, JsonBody, QueryParams};
use crate::wire;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kontor_domain::time::now_ms;
use kontor_store::{AssociationType, ObjectType, StoreError};
use serde_json::{json, Value};

fn record_id(s: &str, what: &str) -> Result<i64, ApiError> {
    s.trim()
        .parse()
        .map_err(|_| ApiError::not_found(format!("{what} {s} does not exist")))
}

fn type_specs(v: &Value, path: &str) -> Result<Vec<(String, i64)>, ApiError> {
    let list = v.as_array().ok_or_else(|| {
        ApiError::validation(
            format!("{path} must be an array of association specs"),
            path,
        )
    })?;
    list.iter()
        .enumerate()
        .map(|(i, t)| {
            let category = t
                .get("associationCategory")
                .and_then(Value::as_str)
                .unwrap_or("HUBSPOT_DEFINED")
                .to_string();
            let id = t
                .get("associationTypeId")
                .and_then(|v| {
                    v.as_i64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                })
                .ok_or_else(|| {
                    ApiError::validation(
                        format!("{path}[{i}].associationTypeId is required"),
                        format!("{path}[{i}].associationTypeId"),
                    )
                })?;
            Ok((category, id))
        })
        .collect()
}

fn type_json(t: &AssociationType) -> Value {
    json!({"category": t.category, "typeId": t.type_id, "label": t.label})
}

fn labels_between(
    from: &ObjectType,
    from_id: i64,
    to: &ObjectType,
    to_id: i64,
    types: &[AssociationType],
) -> Value {
    let labels: Vec<&str> = types.iter().filter_map(|t| t.label.as_deref()).collect();
    json!({"fromObjectTypeId": from.type_id, "fromObjectId": from_id, "toObjectTypeId": to.type_id, "toObjectId": to_id, "labels": labels})
}

fn default_result(from_id: i64, to_id: i64, types: &[AssociationType]) -> Vec<Value> {
    types
        .iter()
        .map(|t| json!({"from": {"id": from_id.to_string()}, "to": {"id": to_id.to_string()}, "associationSpec": {"associationCategory": t.category, "associationTypeId": t.type_id}}))
        .collect()
}

pub async fn create_labelled(
    ctx: Ctx,
    Path((from_type, from_id, to_type, to_id)): Path<(String, String, String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let (from, to) = (
        ctx.object_type(&from_type).await?,
        ctx.object_type(&to_type).await?,
    );
    let (fid, tid) = (
        record_id(&from_id, &from.singular)?,
        record_id(&to_id, &to.singular)?,
    );
    let specs = type_specs(&body, "body")?;
    if specs.is_empty() {
        return Err(ApiError::validation(
            "at least one association spec is required",
            "body",
        ));
    }
    let types = ctx
        .store
        .associate(ctx.id(), &from, fid, &to, tid, &specs, &ctx.actor())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(labels_between(&from, fid, &to, tid, &types)),
    )
        .into_response())
}

pub async fn create_default(
    ctx: Ctx,
    Path((from_type, from_id, to_type, to_id)): Path<(String, String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let started = now_ms();
    let (from, to) = (
        ctx.object_type(&from_type).await?,
        ctx.object_type(&to_type).await?,
    );
    let (fid, tid) = (
        record_id(&from_id, &from.singular)?,
        record_id(&to_id, &to.singular)?,
    );
    let types = ctx
        .store
        .associate(ctx.id(), &from, fid, &to, tid, &[], &ctx.actor())
        .await?;
    let (_, v) = wire::batch(default_result(fid, tid, &types), vec![], started);
    Ok(Json(v))
}

pub async fn archive_pair(
    ctx: Ctx,
    Path((from_type, from_id, to_type, to_id)): Path<(String, String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let (from, to) = (
        ctx.object_type(&from_type).await?,
        ctx.object_type(&to_type).await?,
    );
    let (fid, tid) = (
        record_id(&from_id, &from.singular)?,
        record_id(&to_id, &to.singular)?,
    );
    ctx.store
        .dissociate(ctx.id(), &from, fid, &to, tid, None, &ctx.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn get_page(
    ctx: Ctx,
    Path((from_type, from_id, to_type)): Path<(String, String, String)>,
    q: QueryParams,
) -> Result<Json<Value>, ApiError> {
    let (from, to) = (
        ctx.object_type(&from_type).await?,
        ctx.object_type(&to_type).await?,
    );
    let fid = record_id(&from_id, &from.singular)?;
    if ctx.store.record_type(ctx.id(), fid).await?.as_deref() != Some(from.type_id.as_str()) {
        return Err(ApiError::not_found(format!(
            "{} {fid} does not exist",
            from.singular
        )));
    }
    let limit = q.limit(500, 500)?;
    let (found, next) = ctx
        .store
        .associated(ctx.id(), &from, fid, &to, q.after()?, limit)
        .await?;
    let results: Vec<Value> = found.iter().map(|a| json!({"toObjectId": a.to_id, "associationTypes": a.types.iter().map(type_json).collect::<Vec<_>>()})).collect();
    let mut body = json!({"results": results});
    if let Some(p) = wire::paging(next.map(|n| n.to_string())) {
        body["paging"] = p;
    }
    Ok(Json(body))
}

struct Pair {
    from: i64,
    to: i64,
}

fn pair_of(v: &Value, i: usize) -> Result<Pair, ApiError> {
    let get = |k: &str| {
        id_of(v.get(k).and_then(|x| x.get("id")))
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or_else(|| {
                ApiError::validation(
                    format!("inputs[{i}].{k}.id is required"),
                    format!("inputs[{i}].{k}.id"),
                )
            })
    };
    Ok(Pair {
        from: get("from")?,
        to: get("to")?,
    })
}

fn not_found_error(e: &StoreError) -> bool {
    matches!(e, StoreError::NotFound(_))
}

pub async fn v4_batch_create(
    ctx: Ctx,
    Path((from_type, to_type)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let started = now_ms();
    let (from, to) = (
        ctx.object_type(&from_type).await?,
        ctx.object_type(&to_type).await?,
    );
    let inputs = batch_inputs(&body, 100)?;
    let mut results = Vec::new();
    let mut missing = Vec::new();
    for (i, v) in inputs.iter().enumerate() {
        let p = pair_of(v, i)?;
        let specs = type_specs(
            v.get("types").unwrap_or(&json!([])),
            &format!("inputs[{i}].types"),
        )?;
        match ctx
            .store
            .associate(ctx.id(), &from, p.from, &to, p.to, &specs, &ctx.actor())
            .await
        {
            Ok(types) => results.push(labels_between(&from, p.from, &to, p.to, &types)),
            Err(e) if not_found_error(&e) => missing.push(format!("{}->{}", p.from, p.to)),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(wire::batch_reply(
        results,
        &missing,
        "Some records do not exist",
        StatusCode::CREATED,
        started,
    ))
}

pub async fn v4_batch_default(
    ctx: Ctx,
    Path((from_type, to_type)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let started = now_ms();
    let (from, to) = (
        ctx.object_type(&from_type).await?,
        ctx.object_type(&to_type).await?,
    );
    let pairs = batch_inputs(&body, 100)?
        .iter()
        .enumerate()
        .map(|(i, v)| pair_of(v, i).map(|p| (p.from, p.to)))
        .collect::<Result<Vec<_>, _>>()?;
    // One transaction for the batch: a sync tool sends thousands of these.
    let (types, found) = ctx
        .store
        .associate_pairs(ctx.id(), &from, &to, &pairs, &[], &ctx.actor())
        .await?;
    let mut results = Vec::new();
    let mut missing = Vec::new();
    for (&(f, t), found) in pairs.iter().zip(found) {
        if found {
            results.extend(default_result(f, t, &types));
        } else {
            missing.push(format!("{f}->{t}"));
        }
    }
    Ok(wire::batch_reply(
        results,
        &missing,
        "Some records do not exist",
        StatusCode::OK,
        started,
    ))
}

pub async fn v4_batch_read(
    ctx: Ctx,
    Path((from_type, to_type)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let started = now_ms();
    let (from, to) = (
        ctx.object_type(&from_type).await?,
        ctx.object_type(&to_type).await?,
    );
    let inputs = batch_inputs(&body, 1000)?;
    let mut results = Vec::new();
    let mut missing = Vec::new();
    for (i, v) in inputs.iter().enumerate() {
        let key = id_of(v.get("id")).ok_or_else(|| {
            ApiError::validation(
                format!("inputs[{i}].id is required"),
                format!("inputs[{i}].id"),
            )
        })?;
        let Ok(fid) = key.parse::<i64>() else {
            missing.push(key);
            continue;
        };
        if ctx.store.record_type(ctx.id(), fid).await?.as_deref() != Some(from.type_id.as_str()) {
            missing.push(key);
            continue;
        }
        let after = id_of(v.get("after")).and_then(|s| s.parse().ok());
        let (found, next) = ctx
            .store
            .associated(ctx.id(), &from, fid, &to, after, 500)
            .await?;
        let mut r = json!({
            "from": {"id": key},
            "to": found.iter().map(|a| json!({"toObjectId": a.to_id, "associationTypes": a.types.iter().map(type_json).collect::<Vec<_>>()})).collect::<Vec<_>>(),
        });
        if let Some(p) = wire::paging(next.map(|n| n.to_string())) {
            r["paging"] = p;
        }
        results.push(r);
    }
    Ok(wire::batch_reply(
        results,
        &missing,
        &format!(
            "Could not get some {} objects, they may be deleted or not exist.",
            from.singular.to_uppercase()
        ),
        StatusCode::OK,
        started,
    ))
}

pub async fn v4_batch_archive(
    ctx: Ctx,
    Path((from_type, to_type)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<StatusCode, ApiError> {
    let (from, to) = (
        ctx.object_type(&from_type).await?,
        ctx.object_type(&to_type).await?,
    );
    for (i, v) in batch_inputs(&body, 100)?.iter().enumerate() {
        let fid = id_of(v.get("from").and_then(|f| f.get("id")))
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or_else(|| {
                ApiError::validation(
                    format!("inputs[{i}].from.id is required"),
                    format!("inputs[{i}].from.id"),
                )
            })?;
        for t in v
            .get("to")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            if let Some(tid) = id_of(t.get("id")).and_then(|s| s.parse::<i64>().ok()) {
                ctx.store
                    .dissociate(ctx.id(), &from, fid, &to, tid, None, &ctx.actor())
                    .await?;
            }
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn v4_batch_labels_archive(
    ctx: Ctx,
    Path((from_type, to_type)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<StatusCode, ApiError> {
    let (from, to) = (
        ctx.object_type(&from_type).await?,
        ctx.object_type(&to_type).await?,
    );
    for (i, v) in batch_inputs(&body, 100)?.iter().enumerate() {
        let p = pair_of(v, i)?;
        let specs = type_specs(
            v.get("types").unwrap_or(&json!([])),
            &format!("inputs[{i}].types"),
        )?;
        ctx.store
            .dissociate(
                ctx.id(),
                &from,
                p.from,
                &to,
                p.to,
                Some(&specs),
                &ctx.actor(),
            )
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn labels(
    ctx: Ctx,
    Path((from_type, to_type)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (from, to) = (
        ctx.object_type(&from_type).await?,
        ctx.object_type(&to_type).await?,
    );
    let types = ctx.store.association_types(ctx.id(), &from, &to).await?;
    Ok(Json(
        json!({"results": types.iter().map(type_json).collect::<Vec<_>>()}),
    ))
}

pub async fn create_label(
    ctx: Ctx,
    Path((from_type, to_type)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let (from, to) = (
        ctx.object_type(&from_type).await?,
        ctx.object_type(&to_type).await?,
    );
    let label = body
        .get("label")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::validation("label is required", "label"))?;
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::validation("name is required", "name"))?;
    let inverse = body.get("inverseLabel").and_then(Value::as_str);
    ctx.store
        .create_association_label(ctx.id(), &from, &to, label, name, inverse)
        .await?;
    let types = ctx.store.association_types(ctx.id(), &from, &to).await?;
    Ok(Json(
        json!({"results": types.iter().map(type_json).collect::<Vec<_>>()}),
    ))
}

pub async fn update_label(
    ctx: Ctx,
    Path((from_type, to_type)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<StatusCode, ApiError> {
    let (from, to) = (
        ctx.object_type(&from_type).await?,
        ctx.object_type(&to_type).await?,
    );
    let id = body
        .get("associationTypeId")
        .and_then(Value::as_i64)
        .ok_or_else(|| {
            ApiError::validation("associationTypeId is required", "associationTypeId")
        })?;
    let label = body
        .get("label")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::validation("label is required", "label"))?;
    ctx.store
        .update_association_label(
            ctx.id(),
            &from,
            &to,
            id,
            label,
            body.get("inverseLabel").and_then(Value::as_str),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_label(
    ctx: Ctx,
    Path((from_type, to_type, type_id)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let (from, to) = (
        ctx.object_type(&from_type).await?,
        ctx.object_type(&to_type).await?,
    );
    let id: i64 = type_id
        .parse()
        .map_err(|_| ApiError::not_found(format!("association type {type_id} does not exist")))?;
    ctx.store
        .delete_association_label(ctx.id(), &from, &to, id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// v3 names a type by its string name; resolve it to a spec.
fn v3_spec(
    types: &[AssociationType],
    name: Option<&str>,
    i: usize,
) -> Result<Vec<(String, i64)>, ApiError> {
    match name {
        None | Some("") => Ok(Vec::new()),
        Some(n) => types
            .iter()
            .find(|t| t.name == n || t.type_id.to_string() == n)
            .map(|t| vec![(t.category.clone(), t.type_id)])
            .ok_or_else(|| {
                ApiError::validation(
                    format!("association type {n:?} is not defined between these object types"),
                    format!("inputs[{i}].type"),
                )
            }),
    }
}

pub async fn v3_batch_create(
    ctx: Ctx,
    Path((from_type, to_type)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let started = now_ms();
    let (from, to) = (
        ctx.object_type(&from_type).await?,
        ctx.object_type(&to_type).await?,
    );
    let types = ctx.store.association_types(ctx.id(), &from, &to).await?;
    let mut results = Vec::new();
    let mut missing = Vec::new();
    for (i, v) in batch_inputs(&body, 100)?.iter().enumerate() {
        let p = pair_of(v, i)?;
        let spec = v3_spec(&types, v.get("type").and_then(Value::as_str), i)?;
        match ctx
            .store
            .associate(ctx.id(), &from, p.from, &to, p.to, &spec, &ctx.actor())
            .await
        {
            Ok(made) => {
                let name = made.first().map(|t| t.name.clone()).unwrap_or_default();
                results.push(json!({"from": {"id": p.from.to_string()}, "to": {"id": p.to.to_string()}, "type": name}));
            }
            Err(e) if not_found_error(&e) => missing.push(format!("{}->{}", p.from, p.to)),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(wire::batch_reply(
        results,
        &missing,
        "Some records do not exist",
        StatusCode::CREATED,
        started,
    ))
}

pub async fn v3_batch_read(
    ctx: Ctx,
    Path((from_type, to_type)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let started = now_ms();
    let (from, to) = (
        ctx.object_type(&from_type).await?,
        ctx.object_type(&to_type).await?,
    );
    let mut results = Vec::new();
    let mut missing = Vec::new();
    for (i, v) in batch_inputs(&body, 1000)?.iter().enumerate() {
        let key = id_of(v.get("id")).ok_or_else(|| {
            ApiError::validation(
                format!("inputs[{i}].id is required"),
                format!("inputs[{i}].id"),
            )
        })?;
        let fid = key.parse::<i64>().ok();
        let live = match fid {
            Some(f) => {
                ctx.store.record_type(ctx.id(), f).await?.as_deref() == Some(from.type_id.as_str())
            }
            None => false,
        };
        if !live {
            missing.push(key);
            continue;
        }
        let (found, _) = ctx
            .store
            .associated(ctx.id(), &from, fid.unwrap_or_default(), &to, None, 10_000)
            .await?;
        let to_list: Vec<Value> = found
            .iter()
            .flat_map(|a| {
                a.types
                    .iter()
                    .map(move |t| json!({"id": a.to_id.to_string(), "type": t.name}))
            })
            .collect();
        results.push(json!({"from": {"id": key}, "to": to_list}));
    }
    Ok(wire::batch_reply(
        results,
        &missing,
        "Some records do not exist",
        StatusCode::OK,
        started,
    ))
}

/// Archives the pair outright: a v3 caller who archives with the body they created with
/// expects the records no longer associated, whatever types joined them.
pub async fn v3_batch_archive(
    ctx: Ctx,
    Path((from_type, to_type)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<StatusCode, ApiError> {
    let (from, to) = (
        ctx.object_type(&from_type).await?,
        ctx.object_type(&to_type).await?,
    );
    for (i, v) in batch_inputs(&body, 100)?.iter().enumerate() {
        let p = pair_of(v, i)?;
        ctx.store
            .dissociate(ctx.id(), &from, p.from, &to, p.to, None, &ctx.actor())
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn v3_types(
    ctx: Ctx,
    Path((from_type, to_type)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (from, to) = (
        ctx.object_type(&from_type).await?,
        ctx.object_type(&to_type).await?,
    );
    let types = ctx.store.association_types(ctx.id(), &from, &to).await?;
    Ok(Json(
        json!({"results": types.iter().map(|t| json!({"id": t.type_id.to_string(), "name": t.name})).collect::<Vec<_>>()}),
    ))
}
