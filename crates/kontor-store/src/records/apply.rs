//! Applying writes of records: unique checks, ids, state, the change log and associations,
//! in one transaction.

use super::derived::{check_stage, line_item_amount, Stages, LINE_ITEMS};
use super::{
    erase, in_list, log, record_from, unique_key, values_clause, Actor, Record, RecordRow,
    RECORD_COLS,
};
use crate::associations::{self, AssociationInput};
use crate::objects::ObjectType;
use crate::{allocate, Store, StoreError, StoreResult};
use kontor_domain::object_type::MERGED_IDS;
use kontor_domain::property::PropertyDef;
use kontor_domain::time::{iso, now_ms};
use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Clone)]
pub(crate) enum WriteOp {
    Create {
        /// An id given by an import (a record coming back under its old id); `None` takes
        /// the next from the account's counter.
        id: Option<i64>,
        props: BTreeMap<String, Option<String>>,
        associations: Vec<AssociationInput>,
    },
    Update {
        id: i64,
        props: BTreeMap<String, Option<String>>,
    },
}

impl Store {
    /// Applies writes in one transaction: unique checks, ids, state, change log, associations.
    pub(super) async fn apply(
        &self,
        account: i64,
        ot: &ObjectType,
        defs: &[PropertyDef],
        ops: Vec<WriteOp>,
        actor: &Actor,
    ) -> StoreResult<Vec<(Record, bool)>> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let pre_allocated = self.pre_allocate(account, &ops).await?;
        let mut tx = self.write().await?;
        let out = self
            .apply_in(&mut tx, account, ot, defs, ops, actor, pre_allocated)
            .await?;
        tx.commit().await?;
        Ok(out)
    }

    /// On PostgreSQL, record ids come from a short transaction of their own so concurrent
    /// writers of one account do not queue on the counter row (a failed write leaves a gap
    /// in the ids, as in HubSpot). SQLite has a single writer anyway.
    pub(crate) async fn pre_allocate(
        &self,
        account: i64,
        ops: &[WriteOp],
    ) -> StoreResult<Option<i64>> {
        let creates = ops
            .iter()
            .filter(|o| matches!(o, WriteOp::Create { id: None, .. }))
            .count() as i64;
        if self.dialect == crate::Dialect::Postgres && creates > 0 {
            let mut t = self.pool.begin().await?;
            let first = allocate(&mut t, account, "record", creates).await?;
            t.commit().await?;
            Ok(Some(first))
        } else {
            Ok(None)
        }
    }

    /// [`Store::apply`] inside the caller's transaction.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn apply_in(
        &self,
        tx: &mut sqlx::AnyConnection,
        account: i64,
        ot: &ObjectType,
        defs: &[PropertyDef],
        ops: Vec<WriteOp>,
        actor: &Actor,
        pre_allocated: Option<i64>,
    ) -> StoreResult<Vec<(Record, bool)>> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let unique: Vec<&str> = defs
            .iter()
            .filter(|d| d.has_unique_value && d.name != "hs_object_id")
            .map(|d| d.name.as_str())
            .collect();
        let owner_prop = defs.iter().any(|d| d.name == "hubspot_owner_id");
        let now = now_ms();
        let now_iso = iso(now);
        let creates = ops
            .iter()
            .filter(|o| matches!(o, WriteOp::Create { id: None, .. }))
            .count() as i64;
        let given: Vec<i64> = ops
            .iter()
            .filter_map(|o| match o {
                WriteOp::Create { id: Some(id), .. } => Some(*id),
                _ => None,
            })
            .collect();
        check_given_ids(tx, account, ot, &given).await?;
        if ot.type_id == "0-1" {
            let emails: Vec<&str> = ops
                .iter()
                .filter_map(|op| match op {
                    WriteOp::Create { props, .. } | WriteOp::Update { props, .. } => {
                        props.get("email").and_then(|v| v.as_deref())
                    }
                })
                .collect();
            erase::check_not_erased(tx, account, ot, &emails, &given).await?;
        }

        // Owners referenced must exist in this account.
        if owner_prop {
            for op in &ops {
                let props = match op {
                    WriteOp::Create { props, .. } | WriteOp::Update { props, .. } => props,
                };
                if let Some(Some(owner)) = props.get("hubspot_owner_id") {
                    let id = owner.parse::<i64>().ok();
                    let found: Option<(i64,)> = match id {
                        Some(id) => sqlx::query_as("SELECT id FROM owners WHERE account_id = $1 AND id = $2 AND archived = 0")
                            .bind(account)
                            .bind(id)
                            .fetch_optional(&mut *tx)
                            .await?,
                        None => None,
                    };
                    if found.is_none() {
                        return Err(StoreError::validation(
                            "INVALID_OWNER_ID",
                            format!("Property values were not valid: [{{\"isValid\":false,\"message\":\"{owner} is not a valid owner id\",\"error\":\"INVALID_OWNER_ID\",\"name\":\"hubspot_owner_id\"}}]"),
                            Some("properties.hubspot_owner_id".into()),
                        ));
                    }
                }
            }
        }

        let mut next_id = match pre_allocated {
            Some(first) => first,
            None if creates > 0 => allocate(tx, account, "record", creates).await?,
            None => 0,
        };

        // Current state of updated records, read inside the transaction. On PostgreSQL the
        // rows are locked as they are read (in id order, so that two writers cannot deadlock
        // on them): a writer that read a document another then changed would write back the
        // stale copy of the other's properties. SQLite writers hold the store's write lock.
        let mut update_ids: Vec<i64> = ops
            .iter()
            .filter_map(|o| {
                if let WriteOp::Update { id, .. } = o {
                    Some(*id)
                } else {
                    None
                }
            })
            .collect();
        update_ids.sort_unstable();
        let lock = match self.dialect {
            crate::Dialect::Postgres => " ORDER BY id FOR UPDATE",
            crate::Dialect::Sqlite => "",
        };
        let mut current: HashMap<i64, Record> = HashMap::new();
        for chunk in update_ids.chunks(500) {
            let sql = format!("SELECT {RECORD_COLS} FROM records WHERE account_id = $1 AND archived = 0 AND id IN ({}){lock}", in_list(2, chunk.len()));
            let mut q = sqlx::query_as::<_, RecordRow>(&sql).bind(account);
            for id in chunk {
                q = q.bind(id);
            }
            for row in q.fetch_all(&mut *tx).await? {
                let r = record_from(row)?;
                current.insert(r.id, r);
            }
        }

        let mut results = Vec::with_capacity(ops.len());
        // Current holders of every unique value this batch writes, in one query per property.
        let mut holders: HashMap<(String, String), i64> = HashMap::new();
        for name in &unique {
            let wanted: Vec<String> = ops
                .iter()
                .filter_map(|op| match op {
                    WriteOp::Create { props, .. } | WriteOp::Update { props, .. } => {
                        props.get(*name).cloned().flatten()
                    }
                })
                .map(|v| unique_key(&v))
                .collect();
            for (value, record_id) in holders_of(tx, account, ot, name, &wanted).await? {
                holders.insert((name.to_string(), value), record_id);
            }
        }
        let stages = Stages::of(ot, defs);
        let mut claimed: HashMap<(String, String), i64> = HashMap::new();
        let mut unique_removals: Vec<(i64, String)> = Vec::new();
        let mut pending_assocs = Vec::new();
        for op in ops {
            let (id, mut changes, is_new, mut record) = match op {
                WriteOp::Create {
                    id: given,
                    props,
                    associations,
                } => {
                    let id = given.unwrap_or_else(|| {
                        next_id += 1;
                        next_id - 1
                    });
                    let mut changes: BTreeMap<String, Option<String>> =
                        props.into_iter().filter(|(_, v)| v.is_some()).collect();
                    changes.insert("hs_object_id".into(), Some(id.to_string()));
                    changes.insert(ot.create_date.clone(), Some(now_iso.clone()));
                    changes.insert(ot.last_modified.clone(), Some(now_iso.clone()));
                    if !associations.is_empty() {
                        pending_assocs.push((id, associations));
                    }
                    let record = Record {
                        id,
                        object_type: ot.type_id.clone(),
                        props: BTreeMap::new(),
                        created_at: now,
                        updated_at: now,
                        archived: false,
                        archived_at: None,
                    };
                    (id, changes, true, record)
                }
                WriteOp::Update { id, props } => {
                    let record = current.remove(&id).ok_or_else(|| {
                        StoreError::not_found(format!("{} {id} does not exist", ot.singular))
                    })?;
                    let mut changes: BTreeMap<String, Option<String>> = props
                        .into_iter()
                        .filter(|(k, v)| record.props.get(k) != v.as_ref())
                        .collect();
                    changes.insert(ot.last_modified.clone(), Some(now_iso.clone()));
                    (
                        id,
                        changes,
                        false,
                        Record {
                            updated_at: now,
                            ..record
                        },
                    )
                }
            };
            for name in &unique {
                let Some(new) = changes.get(*name) else {
                    continue;
                };
                if record.props.contains_key(*name) {
                    unique_removals.push((id, name.to_string()));
                }
                if let Some(v) = new {
                    let key = (name.to_string(), unique_key(v));
                    let holder = holders.get(&key).copied();
                    // A value that a record earlier in this batch gives up is free to take.
                    let db_holder = holder.filter(|h| {
                        *h != id && !unique_removals.iter().any(|(rid, p)| rid == h && p == name)
                    });
                    let batch_holder = claimed.get(&key).copied().filter(|h| *h != id);
                    if batch_holder.is_some() && db_holder.is_none() {
                        return Err(StoreError::Conflict {
                            message: format!("{name} {v:?} appears more than once in this request"),
                            existing_id: None,
                        });
                    }
                    if let Some(existing) = db_holder {
                        return Err(if ot.type_id == "0-1" && *name == "email" {
                            StoreError::Conflict {
                                message: format!("Contact already exists. Existing ID: {existing}"),
                                existing_id: Some(existing),
                            }
                        } else {
                            StoreError::validation("DUPLICATE_VALUE", format!("{name} {v:?} is already used by {} {existing}; the property requires unique values", ot.singular), Some(format!("properties.{name}")))
                        });
                    }
                    claimed.insert(key, id);
                }
            }
            for (k, v) in &changes {
                match v {
                    Some(v) => record.props.insert(k.clone(), v.clone()),
                    None => record.props.remove(k),
                };
            }
            if stages.touched_by(&changes) {
                check_stage(&stages, &record.props)?;
            }
            if ot.type_id == LINE_ITEMS
                && (changes.contains_key("price") || changes.contains_key("quantity"))
            {
                let amount = line_item_amount(&record.props);
                if record.props.get("amount") != amount.as_ref() {
                    match &amount {
                        Some(a) => record.props.insert("amount".into(), a.clone()),
                        None => record.props.remove("amount"),
                    };
                    changes.insert("amount".into(), amount);
                }
            }
            results.push((record, is_new, changes, 0));
        }

        // Unique index: drop old values of changed unique properties, then add the new ones.
        for (id, name) in &unique_removals {
            sqlx::query("DELETE FROM unique_values WHERE account_id = $1 AND object_type = $2 AND property = $3 AND record_id = $4")
                .bind(account)
                .bind(&ot.type_id)
                .bind(name)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let claims: Vec<(&(String, String), &i64)> = claimed.iter().collect();
        for chunk in claims.chunks(200) {
            let sql = format!("INSERT INTO unique_values (account_id, object_type, property, value, record_id) VALUES {}", values_clause(chunk.len(), 5));
            let mut q = sqlx::query(&sql);
            for ((prop, value), id) in chunk {
                q = q
                    .bind(account)
                    .bind(&ot.type_id)
                    .bind(prop)
                    .bind(value)
                    .bind(**id);
            }
            // A concurrent writer may have claimed the same value after our lookup; the
            // primary key catches it and the whole write is refused.
            q.execute(&mut *tx).await.map_err(|e| match e.as_database_error().map(|d| d.is_unique_violation()) {
                Some(true) => StoreError::Conflict {
                    message: format!("{} already exists: another request took one of its unique values at the same time", ot.singular),
                    existing_id: None,
                },
                _ => e.into(),
            })?;
        }

        // State: inserts for new records, updates for existing ones.
        let new_rows: Vec<&Record> = results.iter().filter(|r| r.1).map(|r| &r.0).collect();
        for chunk in new_rows.chunks(100) {
            let sql = format!("INSERT INTO records (account_id, id, object_type, props, created_at, updated_at, archived) VALUES {}", values_clause(chunk.len(), 7));
            let mut q = sqlx::query(&sql);
            for r in chunk {
                q = q
                    .bind(account)
                    .bind(r.id)
                    .bind(&ot.type_id)
                    .bind(serde_json::to_string(&r.props)?)
                    .bind(r.created_at)
                    .bind(r.updated_at)
                    .bind(0i64);
            }
            q.execute(&mut *tx).await?;
        }
        for (r, _, _, _) in results.iter().filter(|r| !r.1) {
            sqlx::query(
                "UPDATE records SET props = $1, updated_at = $2 WHERE account_id = $3 AND id = $4",
            )
            .bind(serde_json::to_string(&r.props)?)
            .bind(r.updated_at)
            .bind(account)
            .bind(r.id)
            .execute(&mut *tx)
            .await?;
        }

        let mut entries = Vec::with_capacity(results.len());
        for (r, _, changes, _) in &results {
            entries.push(log::Entry::new(
                &ot.type_id,
                r.id,
                "set",
                serde_json::to_string(changes)?,
            ));
        }
        for (id, assocs) in pending_assocs {
            entries.extend(
                associations::insert_for_new_record(self, tx, account, ot, id, &assocs).await?,
            );
        }
        // The change log, in the same transaction, last (see `log`).
        let first_seq = log::append(tx, account, &entries, actor, now).await?;
        for (i, r) in results.iter_mut().enumerate() {
            r.3 = first_seq + i as i64;
        }

        Ok(results.into_iter().map(|(r, new, _, _)| (r, new)).collect())
    }
}

/// Ids an import gives must have been issued by this account once (ids are never reused for
/// another record) and be free now: a record in the recycle bin comes back from there.
async fn check_given_ids(
    tx: &mut sqlx::AnyConnection,
    account: i64,
    ot: &ObjectType,
    ids: &[i64],
) -> StoreResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let issued: Option<(i64,)> =
        sqlx::query_as("SELECT value FROM counters WHERE account_id = $1 AND name = 'record'")
            .bind(account)
            .fetch_optional(&mut *tx)
            .await?;
    let issued = issued.map_or(0, |r| r.0);
    let mut seen = HashSet::new();
    for id in ids {
        if *id < 1 || *id > issued {
            return Err(StoreError::validation(
                "INVALID_OBJECT_ID",
                format!("record ID {id} was never issued in this account; leave the record ID empty to create a new record"),
                Some("hs_object_id".into()),
            ));
        }
        if !seen.insert(*id) {
            return Err(StoreError::validation(
                "DUPLICATE_ID",
                format!("record ID {id} appears more than once"),
                Some("hs_object_id".into()),
            ));
        }
    }
    let given: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
    let merged = holders_of(tx, account, ot, MERGED_IDS, &given).await?;
    if let Some((id, into)) = merged.into_iter().next() {
        return Err(StoreError::validation(
            "OBJECT_ALREADY_EXISTS",
            format!(
                "{} {id} was merged into {into}: it cannot be created again",
                ot.singular
            ),
            Some("hs_object_id".into()),
        ));
    }
    for chunk in ids.chunks(500) {
        // `created_at` is read (and dropped) so that no index covers the query: SQLite would
        // otherwise scan `records_by_type` for the whole account instead of seeking each id.
        let sql = format!(
            "SELECT id, object_type, archived, created_at FROM records WHERE account_id = $1 AND id IN ({})",
            in_list(2, chunk.len())
        );
        let mut q = sqlx::query_as::<_, (i64, String, i64, i64)>(&sql).bind(account);
        for id in chunk {
            q = q.bind(id);
        }
        if let Some((id, type_id, archived, _)) = q.fetch_all(&mut *tx).await?.into_iter().next() {
            let message = if archived != 0 && type_id == ot.type_id {
                format!(
                    "{} {id} is in the recycle bin: restore it from there",
                    ot.singular
                )
            } else if type_id == ot.type_id {
                format!("{} {id} already exists", ot.singular)
            } else {
                format!("record ID {id} belongs to a record of another object type")
            };
            return Err(StoreError::validation(
                "OBJECT_ALREADY_EXISTS",
                message,
                Some("hs_object_id".into()),
            ));
        }
    }
    Ok(())
}

/// The records holding `values` of the unique property `property` (value, record id).
async fn holders_of(
    tx: &mut sqlx::AnyConnection,
    account: i64,
    ot: &ObjectType,
    property: &str,
    values: &[String],
) -> StoreResult<Vec<(String, i64)>> {
    let mut out = Vec::new();
    for chunk in values.chunks(500) {
        let sql = format!(
            "SELECT value, record_id FROM unique_values WHERE account_id = $1 AND object_type = $2 AND property = $3 AND value IN ({})",
            in_list(4, chunk.len())
        );
        let mut q = sqlx::query_as::<_, (String, i64)>(&sql)
            .bind(account)
            .bind(&ot.type_id)
            .bind(property);
        for v in chunk {
            q = q.bind(v);
        }
        out.extend(q.fetch_all(&mut *tx).await?);
    }
    Ok(out)
}
