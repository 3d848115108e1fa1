//! `/crm/v3/objects/{objectType}`: basic, batch and search.

use crate::auth::Ctx;
use crate::error::ApiError;
use crate::params::{batch_inputs, id_of, JsonBody, QueryParams};
use crate::wire::{self, Selection};
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kontor_domain::search::SearchRequest;
use kontor_domain::time::now_ms;
use kontor_store::{AssociationInput, CreateInput, ObjectType, Record, UpdateInput};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

pub const MAX_BATCH: usize = 100;
pub const MAX_LIST_LIMIT: usize = 100;
/// Batch reads that ask for property history take fewer inputs, as in HubSpot.
pub const MAX_HISTORY_BATCH: usize = 50;

/// What a read asks for beyond the record itself.
pub(crate) struct ReadOptions {
    properties: Option<Vec<String>>,
    with_history: Option<Vec<String>>,
    associations: Vec<String>,
}

impl ReadOptions {
    pub(crate) fn from_query(q: &QueryParams) -> Self {
        Self {
            properties: q.list("properties"),
            with_history: q.list("propertiesWithHistory"),
            associations: q.list("associations").unwrap_or_default(),
        }
    }

    fn from_body(body: &Value) -> Self {
        let list = |k: &str| {
            body.get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
                .filter(|v| !v.is_empty())
        };
        Self {
            properties: list("properties"),
            with_history: list("propertiesWithHistory"),
            associations: Vec::new(),
        }
    }
}

/// Renders records the way a read asked for them.
pub(crate) async fn render(
    ctx: &Ctx,
    ot: &ObjectType,
    records: &[Record],
    opts: &ReadOptions,
) -> Result<Vec<Value>, ApiError> {
    let defs = if opts.properties.is_some() || opts.with_history.is_some() {
        ctx.store.readable_properties(ctx.id(), ot, false).await?
    } else {
        Vec::new()
    };
    let named = opts
        .properties
        .as_ref()
        .map(|p| wire::known_names(p, &defs));
    let sel = match &named {
        Some(n) => Selection::Named(n),
        None => Selection::Defaults,
    };
    let history = match &opts.with_history {
        Some(h) => {
            let names = wire::known_names(h, &defs);
            let ids: Vec<i64> = records.iter().map(|r| r.id).collect();
            Some(ctx.store.history(ctx.id(), &ids, &names).await?)
        }
        None => None,
    };
    let stage_times = match &named {
        Some(n) => stage_times(ctx, ot, records, n).await?,
        None => HashMap::new(),
    };
    let mut assoc_types = Vec::new();
    for name in &opts.associations {
        if let Some(to) = ctx.store.object_type(ctx.id(), name).await? {
            assoc_types.push((name.clone(), to));
        }
    }
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        let mut v = wire::record(ot, r, &sel);
        if let Some(values) = stage_times.get(&r.id) {
            for (name, value) in values {
                v["properties"][name] = value.clone();
            }
        }
        if let Some(h) = &history {
            v["propertiesWithHistory"] = wire::history(h.get(&r.id).unwrap_or(&Default::default()));
        }
        if !assoc_types.is_empty() {
            let mut assoc = Map::new();
            for (name, to) in &assoc_types {
                let (found, _) = ctx
                    .store
                    .associated(ctx.id(), ot, r.id, to, None, 1000)
                    .await?;
                let results: Vec<Value> = found
                    .iter()
                    .flat_map(|a| {
                        a.types
                            .iter()
                            .map(move |t| json!({"id": a.to_id.to_string(), "type": t.name}))
                    })
                    .collect();
                if !results.is_empty() {
                    assoc.insert(name.clone(), json!({"results": results}));
                }
            }
            if !assoc.is_empty() {
                v["associations"] = Value::Object(assoc);
            }
        }
        out.push(v);
    }
    Ok(out)
}

/// The calculated stage properties among `names` (`hs_date_entered_<stage>`, …) of each
/// record, from the history of its stage property in the change log.
async fn stage_times(
    ctx: &Ctx,
    ot: &ObjectType,
    records: &[Record],
    names: &[String],
) -> Result<HashMap<i64, Vec<(String, Value)>>, ApiError> {
    use kontor_domain::pipeline::{self, DATE_ENTERED, DATE_EXITED};
    let wanted: Vec<(&String, &str, &str)> = names
        .iter()
        .filter_map(|n| pipeline::stage_property(n).map(|(kind, stage)| (n, kind, stage)))
        .collect();
    let mut out = HashMap::new();
    if wanted.is_empty() || records.is_empty() {
        return Ok(out);
    }
    let (_, stage_prop) = pipeline::property_names(&ot.name);
    let ids: Vec<i64> = records.iter().map(|r| r.id).collect();
    let history = ctx
        .store
        .history(ctx.id(), &ids, &[stage_prop.to_string()])
        .await?;
    let now = kontor_domain::time::now_ms();
    for id in ids {
        // Oldest first.
        let mut h: Vec<(Option<&str>, i64)> = history
            .get(&id)
            .and_then(|h| h.get(stage_prop))
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| (e.value.as_deref(), e.timestamp))
                    .collect()
            })
            .unwrap_or_default();
        h.reverse();
        let values = wanted
            .iter()
            .map(|(name, kind, stage)| {
                let t = pipeline::stage_times(&h, stage, now);
                let v = match *kind {
                    DATE_ENTERED => t.entered.map(kontor_domain::time::iso),
                    DATE_EXITED => t.exited.map(kontor_domain::time::iso),
                    _ => t.time_in.map(|ms| ms.to_string()),
                };
                ((*name).clone(), v.map_or(Value::Null, Value::String))
            })
            .collect();
        out.insert(id, values);
    }
    Ok(out)
}

/// Resolves a path or batch id, honouring `idProperty`.
async fn resolve_ids(
    ctx: &Ctx,
    ot: &ObjectType,
    keys: &[String],
    id_property: Option<&str>,
) -> Result<HashMap<String, i64>, ApiError> {
    match id_property.filter(|p| *p != "hs_object_id") {
        Some(p) => Ok(ctx.store.ids_by_unique(ctx.id(), ot, p, keys).await?),
        None => {
            let mut ids: HashMap<String, i64> = keys
                .iter()
                .filter_map(|k| k.trim().parse::<i64>().ok().map(|id| (k.clone(), id)))
                .collect();
            // The id of a record merged into another leads to that one, as in HubSpot.
            if kontor_domain::object_type::MERGEABLE.contains(&ot.name.as_str()) {
                let wanted: Vec<i64> = ids.values().copied().collect();
                let merged = ctx.store.merged_into(ctx.id(), ot, &wanted).await?;
                for id in ids.values_mut() {
                    if let Some(primary) = merged.get(id) {
                        *id = *primary;
                    }
                }
            }
            Ok(ids)
        }
    }
}

pub async fn get_one(
    ctx: Ctx,
    Path((object_type, id)): Path<(String, String)>,
    q: QueryParams,
) -> Result<Json<Value>, ApiError> {
    let ot = ctx.object_type(&object_type).await?;
    let archived = q.bool("archived")?;
    let ids = resolve_ids(&ctx, &ot, std::slice::from_ref(&id), q.first("idProperty")).await?;
    let not_found = || ApiError::not_found(format!("No {} with id {id} exists", ot.singular));
    let rid = *ids.get(&id).ok_or_else(not_found)?;
    let r = ctx
        .store
        .record(ctx.id(), &ot, rid, archived)
        .await?
        .ok_or_else(not_found)?;
    let mut out = render(
        &ctx,
        &ot,
        std::slice::from_ref(&r),
        &ReadOptions::from_query(&q),
    )
    .await?;
    Ok(Json(out.remove(0)))
}

pub async fn list(
    ctx: Ctx,
    Path(object_type): Path<String>,
    q: QueryParams,
) -> Result<Json<Value>, ApiError> {
    let ot = ctx.object_type(&object_type).await?;
    let limit = q.limit(10, MAX_LIST_LIMIT)?;
    let page = ctx
        .store
        .list_records(ctx.id(), &ot, q.bool("archived")?, q.after()?, limit)
        .await?;
    let results = render(&ctx, &ot, &page.records, &ReadOptions::from_query(&q)).await?;
    let mut body = json!({"results": results});
    if let Some(p) = wire::paging(page.next_after) {
        body["paging"] = p;
    }
    Ok(Json(body))
}

fn properties_of(v: &Value, path: &str) -> Result<Map<String, Value>, ApiError> {
    match v.get("properties") {
        Some(Value::Object(m)) => Ok(m.clone()),
        None | Some(Value::Null) => Err(ApiError::validation(
            format!("{path}properties is required"),
            format!("{path}properties"),
        )),
        Some(_) => Err(ApiError::validation(
            format!("{path}properties must be an object of property names to values"),
            format!("{path}properties"),
        )),
    }
}

fn associations_of(v: &Value, path: &str) -> Result<Vec<AssociationInput>, ApiError> {
    let Some(list) = v.get("associations").filter(|a| !a.is_null()) else {
        return Ok(Vec::new());
    };
    let list = list.as_array().ok_or_else(|| {
        ApiError::validation(
            format!("{path}associations must be an array"),
            format!("{path}associations"),
        )
    })?;
    let mut out = Vec::new();
    for (i, a) in list.iter().enumerate() {
        let p = format!("{path}associations[{i}]");
        let to_id = id_of(a.get("to").and_then(|t| t.get("id")))
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or_else(|| {
                ApiError::validation(
                    format!("{p}.to.id must be a record id"),
                    format!("{p}.to.id"),
                )
            })?;
        let mut types = Vec::new();
        for (j, t) in a
            .get("types")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
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
                        format!("{p}.types[{j}].associationTypeId is required"),
                        format!("{p}.types[{j}].associationTypeId"),
                    )
                })?;
            types.push((category, id));
        }
        out.push(AssociationInput { to_id, types });
    }
    Ok(out)
}

fn body_object(body: &Value) -> Result<(), ApiError> {
    if body.is_object() {
        Ok(())
    } else {
        Err(ApiError::validation(
            "the request body must be a JSON object",
            "body",
        ))
    }
}

pub async fn create(
    ctx: Ctx,
    Path(object_type): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let ot = ctx.object_type(&object_type).await?;
    body_object(&body)?;
    let input = CreateInput {
        properties: properties_of(&body, "")?,
        associations: associations_of(&body, "")?,
    };
    let created = ctx
        .store
        .create_records(ctx.id(), &ot, vec![input], &ctx.actor())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(wire::record(&ot, &created[0], &Selection::All)),
    )
        .into_response())
}

pub async fn update(
    ctx: Ctx,
    Path((object_type, id)): Path<(String, String)>,
    q: QueryParams,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let ot = ctx.object_type(&object_type).await?;
    body_object(&body)?;
    let properties = properties_of(&body, "")?;
    let ids = resolve_ids(&ctx, &ot, std::slice::from_ref(&id), q.first("idProperty")).await?;
    let not_found = || ApiError::not_found(format!("No {} with id {id} exists", ot.singular));
    let rid = *ids.get(&id).ok_or_else(not_found)?;
    let (updated, _) = ctx
        .store
        .update_records(
            ctx.id(),
            &ot,
            vec![UpdateInput {
                id: rid,
                properties,
            }],
            &ctx.actor(),
        )
        .await?;
    let r = updated.into_iter().next().ok_or_else(not_found)?;
    Ok(Json(wire::record(&ot, &r, &Selection::All)))
}

pub async fn archive(
    ctx: Ctx,
    Path((object_type, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let ot = ctx.object_type(&object_type).await?;
    if let Ok(id) = id.parse::<i64>() {
        ctx.store
            .archive_records(ctx.id(), &ot, &[id], &ctx.actor())
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

fn trace_id(v: &Value) -> Option<Value> {
    v.get("objectWriteTraceId")
        .filter(|t| !t.is_null())
        .cloned()
}

pub async fn batch_read(
    ctx: Ctx,
    Path(object_type): Path<String>,
    q: QueryParams,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let started = now_ms();
    let ot = ctx.object_type(&object_type).await?;
    body_object(&body)?;
    let with_history = body
        .get("propertiesWithHistory")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let inputs = batch_inputs(
        &body,
        if with_history {
            MAX_HISTORY_BATCH
        } else {
            MAX_BATCH
        },
    )?;
    let keys = inputs
        .iter()
        .enumerate()
        .map(|(i, v)| {
            id_of(v.get("id")).ok_or_else(|| {
                ApiError::validation(
                    format!("inputs[{i}].id is required"),
                    format!("inputs[{i}].id"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let id_property = body.get("idProperty").and_then(Value::as_str);
    let ids = resolve_ids(&ctx, &ot, &keys, id_property).await?;
    let wanted: Vec<i64> = ids.values().copied().collect();
    let found: HashMap<i64, Record> = ctx
        .store
        .records_by_ids(ctx.id(), &ot, &wanted, q.bool("archived")?)
        .await?
        .into_iter()
        .map(|r| (r.id, r))
        .collect();
    let mut ordered = Vec::new();
    let mut missing = Vec::new();
    for k in &keys {
        match ids.get(k).and_then(|id| found.get(id)) {
            Some(r) if !ordered.iter().any(|o: &Record| o.id == r.id) => ordered.push(r.clone()),
            Some(_) => {}
            None => missing.push(k.clone()),
        }
    }
    let results = render(&ctx, &ot, &ordered, &ReadOptions::from_body(&body)).await?;
    Ok(wire::batch_reply(results, &missing, &format!("Could not get some {} objects, they may be deleted or not exist. Check that ids are valid.", ot.singular.to_uppercase()), StatusCode::OK, started))
}

pub async fn batch_create(
    ctx: Ctx,
    Path(object_type): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let started = now_ms();
    let ot = ctx.object_type(&object_type).await?;
    body_object(&body)?;
    let inputs = batch_inputs(&body, MAX_BATCH)?;
    let mut creates = Vec::with_capacity(inputs.len());
    for (i, v) in inputs.iter().enumerate() {
        let path = format!("inputs[{i}].");
        creates.push(CreateInput {
            properties: properties_of(v, &path)?,
            associations: associations_of(v, &path)?,
        });
    }
    let created = ctx
        .store
        .create_records(ctx.id(), &ot, creates, &ctx.actor())
        .await?;
    let results = created
        .iter()
        .zip(&inputs)
        .map(|(r, input)| {
            let mut v = wire::record(&ot, r, &Selection::All);
            if let Some(t) = trace_id(input) {
                v["objectWriteTraceId"] = t;
            }
            v
        })
        .collect();
    let (_, v) = wire::batch(results, vec![], started);
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

pub async fn batch_update(
    ctx: Ctx,
    Path(object_type): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let started = now_ms();
    let ot = ctx.object_type(&object_type).await?;
    body_object(&body)?;
    let inputs = batch_inputs(&body, MAX_BATCH)?;
    let mut by_prop: HashMap<Option<String>, Vec<String>> = HashMap::new();
    for (i, v) in inputs.iter().enumerate() {
        let key = id_of(v.get("id")).ok_or_else(|| {
            ApiError::validation(
                format!("inputs[{i}].id is required"),
                format!("inputs[{i}].id"),
            )
        })?;
        by_prop
            .entry(
                v.get("idProperty")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            )
            .or_default()
            .push(key);
    }
    let mut resolved: HashMap<(Option<String>, String), i64> = HashMap::new();
    for (prop, keys) in &by_prop {
        for (k, id) in resolve_ids(&ctx, &ot, keys, prop.as_deref()).await? {
            resolved.insert((prop.clone(), k), id);
        }
    }
    let mut updates = Vec::new();
    let mut missing = Vec::new();
    let mut traces = HashMap::new();
    for (i, v) in inputs.iter().enumerate() {
        let key = id_of(v.get("id")).unwrap_or_default();
        let prop = v
            .get("idProperty")
            .and_then(Value::as_str)
            .map(str::to_string);
        let properties = properties_of(v, &format!("inputs[{i}]."))?;
        match resolved.get(&(prop, key.clone())) {
            Some(id) => {
                if let Some(t) = trace_id(v) {
                    traces.insert(*id, t);
                }
                updates.push(UpdateInput {
                    id: *id,
                    properties,
                });
            }
            None => missing.push(key),
        }
    }
    let (updated, not_live) = ctx
        .store
        .update_records(ctx.id(), &ot, updates, &ctx.actor())
        .await?;
    missing.extend(not_live.iter().map(i64::to_string));
    let results = updated
        .iter()
        .map(|r| {
            let mut v = wire::record(&ot, r, &Selection::All);
            if let Some(t) = traces.get(&r.id) {
                v["objectWriteTraceId"] = t.clone();
            }
            v
        })
        .collect();
    let message = format!("Could not update some {} objects, they may be deleted or not exist. Check that ids are valid.", ot.singular.to_uppercase());
    Ok(wire::batch_reply(
        results,
        &missing,
        &message,
        StatusCode::OK,
        started,
    ))
}

pub async fn batch_upsert(
    ctx: Ctx,
    Path(object_type): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let started = now_ms();
    let ot = ctx.object_type(&object_type).await?;
    body_object(&body)?;
    let inputs = batch_inputs(&body, MAX_BATCH)?;
    let mut id_property: Option<String> = None;
    let mut rows = Vec::new();
    for (i, v) in inputs.iter().enumerate() {
        let key = id_of(v.get("id")).ok_or_else(|| {
            ApiError::validation(
                format!("inputs[{i}].id is required"),
                format!("inputs[{i}].id"),
            )
        })?;
        let prop = v
            .get("idProperty")
            .and_then(Value::as_str)
            .unwrap_or("hs_object_id")
            .to_string();
        match &id_property {
            Some(p) if *p != prop => {
                return Err(ApiError::validation(
                    "every input of an upsert must use the same idProperty",
                    format!("inputs[{i}].idProperty"),
                ))
            }
            _ => id_property = Some(prop),
        }
        rows.push((key, properties_of(v, &format!("inputs[{i}]."))?));
    }
    let id_property = id_property.unwrap_or_else(|| "hs_object_id".into());
    let out = ctx
        .store
        .upsert_records(ctx.id(), &ot, &id_property, rows, &ctx.actor())
        .await?;
    let results = out
        .iter()
        .zip(&inputs)
        .map(|((r, new), input)| {
            let mut v = wire::record(&ot, r, &Selection::All);
            v["new"] = json!(new);
            if let Some(t) = trace_id(input) {
                v["objectWriteTraceId"] = t;
            }
            v
        })
        .collect();
    let (_, v) = wire::batch(results, vec![], started);
    Ok((StatusCode::OK, Json(v)).into_response())
}

pub async fn batch_archive(
    ctx: Ctx,
    Path(object_type): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<StatusCode, ApiError> {
    let ot = ctx.object_type(&object_type).await?;
    body_object(&body)?;
    let inputs = batch_inputs(&body, MAX_BATCH)?;
    let ids: Vec<i64> = inputs
        .iter()
        .filter_map(|v| id_of(v.get("id")))
        .filter_map(|s| s.parse().ok())
        .collect();
    ctx.store
        .archive_records(ctx.id(), &ot, &ids, &ctx.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn search(
    ctx: Ctx,
    Path(object_type): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let ot = ctx.object_type(&object_type).await?;
    let req =
        SearchRequest::parse(&body).map_err(|e| ApiError::validation(e.to_string(), e.field))?;
    let (total, records) = ctx.store.search(ctx.id(), &ot, &req).await?;
    let opts = ReadOptions {
        properties: req.properties.clone(),
        with_history: None,
        associations: Vec::new(),
    };
    let results = render(&ctx, &ot, &records, &opts).await?;
    let mut out = json!({"total": total, "results": results});
    let next = req.after + req.limit;
    if next < total && next < kontor_domain::search::MAX_RESULTS {
        out["paging"] =
            json!({"next": {"after": next.to_string(), "link": format!("?after={next}")}});
    }
    Ok(Json(out))
}
