//! The JSON shapes of the HubSpot wire format.

use kontor_domain::time::{iso, now_ms};
use kontor_domain::PropertyDef;
use kontor_store::{HistoryEntry, ObjectType, Owner, Record};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashSet};

/// Which properties to put in a record's `properties`.
pub enum Selection<'a> {
    Defaults,
    /// Requested names that exist on the type (unknown names are silently ignored).
    Named(&'a [String]),
    All,
}

pub fn record(ot: &ObjectType, r: &Record, sel: &Selection<'_>) -> Value {
    let mut props = Map::new();
    let mut put = |name: &str| {
        props.insert(
            name.to_string(),
            r.props
                .get(name)
                .map_or(Value::Null, |v| Value::String(v.clone())),
        );
    };
    match sel {
        Selection::Defaults => ot.default_property_names().iter().for_each(|n| put(n)),
        Selection::Named(names) => {
            names.iter().for_each(|n| put(n));
            ot.system_property_names().iter().for_each(|n| put(n));
        }
        Selection::All => {
            for (k, v) in &r.props {
                props.insert(k.clone(), Value::String(v.clone()));
            }
        }
    }
    let mut out = json!({
        "id": r.id.to_string(),
        "properties": props,
        "createdAt": iso(r.created_at),
        "updatedAt": iso(r.updated_at),
        "archived": r.archived,
    });
    if let Some(at) = r.archived_at.filter(|_| r.archived) {
        out["archivedAt"] = json!(iso(at));
    }
    out
}

pub fn history(h: &BTreeMap<String, Vec<HistoryEntry>>) -> Value {
    let mut out = Map::new();
    for (name, entries) in h {
        let list: Vec<Value> = entries
            .iter()
            .map(|e| {
                let mut v = json!({
                    "value": e.value.clone().unwrap_or_default(),
                    "timestamp": iso(e.timestamp),
                    "sourceType": e.source,
                });
                if let Some(s) = &e.source_id {
                    v["sourceId"] = json!(s);
                }
                if let Some(u) = e.user_id {
                    v["updatedByUserId"] = json!(u);
                }
                v
            })
            .collect();
        out.insert(name.clone(), Value::Array(list));
    }
    Value::Object(out)
}

/// Keeps only requested names that are real properties of the type.
pub fn known_names(requested: &[String], defs: &[PropertyDef]) -> Vec<String> {
    let known: HashSet<&str> = defs.iter().map(|d| d.name.as_str()).collect();
    let mut seen = HashSet::new();
    requested
        .iter()
        .filter(|n| known.contains(n.as_str()) && seen.insert(n.as_str()))
        .cloned()
        .collect()
}

pub fn property(p: &PropertyDef) -> Value {
    let options: Vec<Value> = p
        .options
        .iter()
        .map(|o| json!({"label": o.label, "value": o.value, "hidden": o.hidden, "displayOrder": o.display_order, "description": o.description}))
        .collect();
    let mut v = json!({
        "name": p.name,
        "label": p.label,
        "type": p.kind.as_str(),
        "fieldType": p.field_type,
        "groupName": p.group_name,
        "description": p.description,
        "options": options,
        "displayOrder": p.display_order,
        "hidden": p.hidden,
        "formField": p.form_field,
        "hasUniqueValue": p.has_unique_value,
        "calculated": p.calculated,
        "externalOptions": false,
        "hubspotDefined": p.hubspot_defined,
        "archived": p.archived,
        "createdAt": iso(p.created_at),
        "updatedAt": iso(p.updated_at),
        "modificationMetadata": {
            "archivable": !p.hubspot_defined,
            "readOnlyDefinition": p.read_only_value,
            "readOnlyValue": p.read_only_value,
            "readOnlyOptions": p.read_only_value,
        },
        "dataSensitivity": p.sensitivity.as_str(),
        "sensitive": p.sensitivity.is_sensitive(),
    });
    if let Some(a) = p.archived_at {
        v["archivedAt"] = json!(iso(a));
    }
    v
}

pub fn owner(o: &Owner) -> Value {
    let mut v = json!({
        "id": o.id.to_string(),
        "email": o.email,
        "firstName": o.first_name,
        "lastName": o.last_name,
        "type": "PERSON",
        "teams": [],
        "createdAt": iso(o.created_at),
        "updatedAt": iso(o.updated_at),
        "archived": o.archived,
    });
    if let Some(u) = o.user_id {
        v["userId"] = json!(u);
        v["userIdIncludingInactive"] = json!(u);
    }
    v
}

/// `BatchResponse…`: 200/201 when clean, 207 with `errors` when some inputs failed.
pub fn batch(results: Vec<Value>, errors: Vec<Value>, started: i64) -> (bool, Value) {
    let mut v = json!({
        "status": "COMPLETE",
        "results": results,
        "startedAt": iso(started),
        "completedAt": iso(now_ms()),
        "links": {},
    });
    let partial = !errors.is_empty();
    if partial {
        v["numErrors"] = json!(errors.len());
        v["errors"] = Value::Array(errors);
    }
    (partial, v)
}

/// A batch answer: `ok` when every input succeeded, 207 with one `OBJECT_NOT_FOUND` error
/// naming the `missing` inputs otherwise.
pub fn batch_reply(
    results: Vec<Value>,
    missing: &[String],
    message: &str,
    ok: axum::http::StatusCode,
    started: i64,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let errors = if missing.is_empty() {
        vec![]
    } else {
        vec![standard_error("OBJECT_NOT_FOUND", message, missing)]
    };
    let (partial, v) = batch(results, errors, started);
    (
        if partial {
            axum::http::StatusCode::MULTI_STATUS
        } else {
            ok
        },
        axum::Json(v),
    )
        .into_response()
}

/// A `StandardError` for a batch response (every field the strict clients require).
pub fn standard_error(category: &str, message: &str, ids: &[String]) -> Value {
    json!({
        "status": "error",
        "category": category,
        "message": message,
        "context": {"ids": ids},
        "links": {},
        "errors": [],
    })
}

pub fn paging(next: Option<String>) -> Option<Value> {
    next.map(|after| json!({"next": {"after": after, "link": format!("?after={after}")}}))
}
