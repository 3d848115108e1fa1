//! Records: the current state of every object, and the change log that every write appends to.
//! Applying writes is in `records/apply.rs`; archiving, the recycle bin, restoring and purging
//! are in `records/lifecycle.rs`.

use crate::associations::AssociationInput;
use crate::objects::ObjectType;
use crate::{Store, StoreError, StoreResult, WriteTx};
use kontor_domain::property::PropertyDef;
use kontor_domain::time::now_ms;
use kontor_domain::value;
use kontor_domain::ChangeSource;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

mod apply;
mod derived;
mod erase;
mod lifecycle;
pub(crate) mod log;
mod merge;
mod read;
pub(crate) use apply::WriteOp;
pub(crate) use derived::Stages;
use derived::LINE_ITEMS;
pub use erase::Erased;
pub use lifecycle::RECYCLE_BIN_DAYS;

/// Who writes, and through what.
#[derive(Debug, Clone)]
pub struct Actor {
    pub source: ChangeSource,
    /// Token name, import id, … shown as `sourceId` in property history.
    pub source_id: Option<String>,
    pub user_id: Option<i64>,
}

impl Actor {
    pub fn api(token_name: &str) -> Self {
        Self {
            source: ChangeSource::Api,
            source_id: Some(token_name.to_string()),
            user_id: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: i64,
    pub object_type: String,
    pub props: BTreeMap<String, String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub archived: bool,
    pub archived_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub value: Option<String>,
    pub timestamp: i64,
    pub source: String,
    pub source_id: Option<String>,
    pub user_id: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct CreateInput {
    pub properties: Map<String, Value>,
    pub associations: Vec<AssociationInput>,
}

#[derive(Debug, Clone)]
pub struct UpdateInput {
    pub id: i64,
    pub properties: Map<String, Value>,
}

pub struct ListPage {
    pub records: Vec<Record>,
    /// Cursor for the next page, absent on the last one.
    pub next_after: Option<String>,
}

pub(crate) type RecordRow = (i64, String, String, i64, i64, i64, Option<i64>);
pub(crate) const RECORD_COLS: &str =
    "id, object_type, props, created_at, updated_at, archived, archived_at";

pub(crate) fn record_from(row: RecordRow) -> StoreResult<Record> {
    Ok(Record {
        id: row.0,
        object_type: row.1,
        props: serde_json::from_str(&row.2)?,
        created_at: row.3,
        updated_at: row.4,
        archived: row.5 != 0,
        archived_at: row.6,
    })
}

/// Unique values are compared case-insensitively, as e-mail addresses are.
fn unique_key(v: &str) -> String {
    v.trim().to_lowercase()
}

/// `($1, $2, …), (…)` for a multi-row insert.
pub(crate) fn values_clause(rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            s.push('$');
            s.push_str(&(r * cols + c + 1).to_string());
        }
        s.push(')');
    }
    s
}

pub(crate) fn in_list(start: usize, n: usize) -> String {
    (0..n)
        .map(|i| format!("${}", start + i))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(serde::Serialize)]
struct InvalidProperty<'a> {
    #[serde(rename = "isValid")]
    is_valid: bool,
    message: String,
    error: &'a str,
    name: String,
}

/// Checks and normalises client-supplied values against the type's definitions.
pub(crate) fn normalize_properties(
    defs: &HashMap<&str, &PropertyDef>,
    props: &Map<String, Value>,
    path: &str,
) -> StoreResult<BTreeMap<String, Option<String>>> {
    let mut out = BTreeMap::new();
    let mut errors = Vec::new();
    for (name, raw) in props {
        let Some(def) = defs.get(name.as_str()) else {
            errors.push(InvalidProperty {
                is_valid: false,
                message: format!("Property \"{name}\" does not exist"),
                error: "PROPERTY_DOESNT_EXIST",
                name: name.clone(),
            });
            continue;
        };
        if def.read_only_value {
            errors.push(InvalidProperty {
                is_valid: false,
                message: format!("\"{name}\" is a read only property; its value cannot be set."),
                error: "READ_ONLY_VALUE",
                name: name.clone(),
            });
            continue;
        }
        match value::normalize(def, raw) {
            Ok(v) => {
                out.insert(name.clone(), v);
            }
            Err(e) => errors.push(InvalidProperty {
                is_valid: false,
                message: e.message,
                error: e.code,
                name: name.clone(),
            }),
        }
    }
    if let Some(first) = errors.first() {
        let in_field = format!("{path}properties.{}", first.name);
        let code = first.error.to_string();
        let list = serde_json::to_string(&errors)?;
        return Err(StoreError::Validation {
            message: format!("Property values were not valid: {list}"),
            code,
            in_field: Some(in_field),
        });
    }
    Ok(out)
}

impl Store {
    /// Creates records, all or none.
    pub async fn create_records(
        &self,
        account: i64,
        ot: &ObjectType,
        inputs: Vec<CreateInput>,
        actor: &Actor,
    ) -> StoreResult<Vec<Record>> {
        let defs = self.properties(account, &ot.type_id, false).await?;
        let by_name: HashMap<&str, &PropertyDef> =
            defs.iter().map(|d| (d.name.as_str(), d)).collect();
        let batch = inputs.len() > 1;
        let stages = Stages::of(ot, &defs);
        let mut ops = Vec::with_capacity(inputs.len());
        for (i, input) in inputs.into_iter().enumerate() {
            let path = if batch {
                format!("inputs[{i}].")
            } else {
                String::new()
            };
            let mut props = normalize_properties(&by_name, &input.properties, &path)?;
            if ot.type_id == LINE_ITEMS {
                self.fill_from_product(account, &mut props, &path).await?;
            }
            stages.fill_pipeline(&mut props);
            ot.fill_defaults(&mut props);
            for req in &ot.required {
                if props.get(req).is_none_or(|v| v.is_none()) {
                    return Err(StoreError::validation(
                        "REQUIRED_PROPERTY",
                        format!("Property values were not valid: [{{\"isValid\":false,\"message\":\"{req} is required\",\"error\":\"REQUIRED_PROPERTY\",\"name\":\"{req}\"}}]"),
                        Some(format!("{path}properties.{req}")),
                    ));
                }
            }
            ops.push(WriteOp::Create {
                id: None,
                props,
                associations: input.associations,
            });
        }
        let out = self.apply(account, ot, &defs, ops, actor).await?;
        Ok(out.into_iter().map(|(r, _)| r).collect())
    }

    /// Updates records. Validation failures reject the whole batch; ids that do not exist
    /// are returned in the second list and the rest are applied.
    pub async fn update_records(
        &self,
        account: i64,
        ot: &ObjectType,
        inputs: Vec<UpdateInput>,
        actor: &Actor,
    ) -> StoreResult<(Vec<Record>, Vec<i64>)> {
        let defs = self.properties(account, &ot.type_id, false).await?;
        let by_name: HashMap<&str, &PropertyDef> =
            defs.iter().map(|d| (d.name.as_str(), d)).collect();
        let batch = inputs.len() > 1;
        let ids: Vec<i64> = inputs.iter().map(|i| i.id).collect();
        let existing: HashSet<i64> = self
            .records_by_ids(account, ot, &ids, false)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect();
        let mut ops = Vec::new();
        let mut missing = Vec::new();
        for (i, input) in inputs.into_iter().enumerate() {
            let path = if batch {
                format!("inputs[{i}].")
            } else {
                String::new()
            };
            let props = normalize_properties(&by_name, &input.properties, &path)?;
            if existing.contains(&input.id) {
                ops.push(WriteOp::Update {
                    id: input.id,
                    props,
                });
            } else {
                missing.push(input.id);
            }
        }
        let out = self.apply(account, ot, &defs, ops, actor).await?;
        Ok((out.into_iter().map(|(r, _)| r).collect(), missing))
    }

    /// Creates or updates by a unique property value; returns each record with `true` when new.
    pub async fn upsert_records(
        &self,
        account: i64,
        ot: &ObjectType,
        id_property: &str,
        inputs: Vec<(String, Map<String, Value>)>,
        actor: &Actor,
    ) -> StoreResult<Vec<(Record, bool)>> {
        let defs = self.properties(account, &ot.type_id, false).await?;
        let by_name: HashMap<&str, &PropertyDef> =
            defs.iter().map(|d| (d.name.as_str(), d)).collect();
        let keys: Vec<String> = inputs.iter().map(|(k, _)| k.clone()).collect();
        let found = self.ids_by_unique(account, ot, id_property, &keys).await?;
        let live: HashSet<i64> = self
            .records_by_ids(
                account,
                ot,
                &found.values().copied().collect::<Vec<_>>(),
                false,
            )
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect();
        let mut ops = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, (key, props)) in inputs.into_iter().enumerate() {
            if seen.insert(unique_key(&key), i).is_some() {
                return Err(StoreError::validation(
                    "DUPLICATE_ID",
                    format!("{id_property} {key:?} appears more than once in the batch"),
                    Some(format!("inputs[{i}].id")),
                ));
            }
            let mut normalized = normalize_properties(&by_name, &props, &format!("inputs[{i}]."))?;
            match found.get(&key).filter(|id| live.contains(id)) {
                Some(id) => ops.push(WriteOp::Update {
                    id: *id,
                    props: normalized,
                }),
                None => {
                    if id_property == "hs_object_id" {
                        return Err(StoreError::validation(
                            "OBJECT_NOT_FOUND",
                            format!(
                                "record {key} does not exist; upsert by hs_object_id cannot create"
                            ),
                            Some(format!("inputs[{i}].id")),
                        ));
                    }
                    let def = by_name[id_property];
                    let v = value::normalize_str(def, &key).map_err(|e| {
                        StoreError::validation(e.code, e.message, Some(format!("inputs[{i}].id")))
                    })?;
                    normalized.insert(id_property.to_string(), v);
                    ops.push(WriteOp::Create {
                        id: None,
                        props: normalized,
                        associations: Vec::new(),
                    });
                }
            }
        }
        self.apply(account, ot, &defs, ops, actor).await
    }
}
