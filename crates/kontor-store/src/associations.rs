//! Associations between records, stored in both directions, and their types (HubSpot-defined
//! ones from the domain table, account-defined labels and generated defaults in the cell).

use crate::objects::ObjectType;
use crate::records::log::{self, Entry};
use crate::records::Actor;
use crate::{allocate, Store, StoreError, StoreResult};
use kontor_domain::association::{v3_name, HUBSPOT_DEFINED};
use kontor_domain::time::now_ms;
use kontor_domain::BuiltinObject;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociationType {
    pub type_id: i64,
    pub category: String,
    pub label: Option<String>,
    /// v3 name (`contact_to_company`).
    pub name: String,
    pub inverse_type_id: i64,
    pub is_default: bool,
}

/// `{"to": {"id"}, "types": [{associationCategory, associationTypeId}]}` on record create.
#[derive(Debug, Clone)]
pub struct AssociationInput {
    pub to_id: i64,
    pub types: Vec<(String, i64)>,
}

#[derive(Debug, Clone)]
pub struct AssociatedRecord {
    pub to_id: i64,
    pub types: Vec<AssociationType>,
}

const FIRST_ACCOUNT_TYPE_ID: i64 = 1000;

fn builtin_types(from: &ObjectType, to: &ObjectType) -> Vec<AssociationType> {
    if from.is_custom() || to.is_custom() {
        return Vec::new();
    }
    HUBSPOT_DEFINED
        .iter()
        .filter(|r| r.0 == from.singular && r.1 == to.singular)
        .map(|r| AssociationType {
            type_id: r.2,
            category: "HUBSPOT_DEFINED".into(),
            label: r.3.map(str::to_string),
            name: v3_name(r.0, r.1, r.2),
            inverse_type_id: r.4,
            is_default: r.5,
        })
        .collect()
}

type TypeRow = (i64, String, Option<String>, String, i64, i64);

impl Store {
    /// Every association type from one object type to another, the default first.
    pub async fn association_types(
        &self,
        account: i64,
        from: &ObjectType,
        to: &ObjectType,
    ) -> StoreResult<Vec<AssociationType>> {
        let mut types = builtin_types(from, to);
        let rows: Vec<TypeRow> = sqlx::query_as(
            "SELECT type_id, category, label, name, inverse_type_id, is_default FROM association_types WHERE account_id = $1 AND from_type = $2 AND to_type = $3 ORDER BY type_id",
        )
        .bind(account)
        .bind(&from.type_id)
        .bind(&to.type_id)
        .fetch_all(&self.pool)
        .await?;
        types.extend(rows.into_iter().map(|r| AssociationType {
            type_id: r.0,
            category: r.1,
            label: r.2,
            name: r.3,
            inverse_type_id: r.4,
            is_default: r.5 != 0,
        }));
        if !types.iter().any(|t| t.is_default) {
            types.insert(0, self.ensure_default_type(account, from, to).await?);
        }
        types.sort_by_key(|t| !t.is_default);
        Ok(types)
    }

    /// Pairs HubSpot defines no type for (custom objects, conversations) get a default type
    /// of the account's own, made on first use.
    async fn ensure_default_type(
        &self,
        account: i64,
        from: &ObjectType,
        to: &ObjectType,
    ) -> StoreResult<AssociationType> {
        let mut tx = self.write().await?;
        let existing: Option<TypeRow> = sqlx::query_as(
            "SELECT type_id, category, label, name, inverse_type_id, is_default FROM association_types WHERE account_id = $1 AND from_type = $2 AND to_type = $3 AND is_default = 1",
        )
        .bind(account)
        .bind(&from.type_id)
        .bind(&to.type_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(r) = existing {
            return Ok(AssociationType {
                type_id: r.0,
                category: r.1,
                label: r.2,
                name: r.3,
                inverse_type_id: r.4,
                is_default: true,
            });
        }
        let first =
            allocate(&mut tx, account, "association_type", 2).await? + FIRST_ACCOUNT_TYPE_ID - 1;
        let same = from.type_id == to.type_id;
        let (fwd, inv) = if same {
            (first, first)
        } else {
            (first, first + 1)
        };
        let name = format!("{}_to_{}", from.singular, to.singular);
        insert_type(
            &mut tx,
            account,
            &from.type_id,
            &to.type_id,
            fwd,
            "USER_DEFINED",
            None,
            &name,
            inv,
            true,
        )
        .await?;
        if !same {
            let back = format!("{}_to_{}", to.singular, from.singular);
            insert_type(
                &mut tx,
                account,
                &to.type_id,
                &from.type_id,
                inv,
                "USER_DEFINED",
                None,
                &back,
                fwd,
                true,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(AssociationType {
            type_id: fwd,
            category: "USER_DEFINED".into(),
            label: None,
            name,
            inverse_type_id: inv,
            is_default: true,
        })
    }

    /// Creates a labelled association type (and its inverse); returns the forward type.
    pub async fn create_association_label(
        &self,
        account: i64,
        from: &ObjectType,
        to: &ObjectType,
        label: &str,
        name: &str,
        inverse_label: Option<&str>,
    ) -> StoreResult<AssociationType> {
        if label.trim().is_empty() {
            return Err(StoreError::validation(
                "INVALID_LABEL",
                "label is required",
                Some("label".into()),
            ));
        }
        let existing = self.association_types(account, from, to).await?;
        if existing.iter().any(|t| t.label.as_deref() == Some(label)) {
            return Err(StoreError::Conflict {
                message: format!(
                    "An association label {label:?} already exists between these objects"
                ),
                existing_id: None,
            });
        }
        let mut tx = self.write().await?;
        let first =
            allocate(&mut tx, account, "association_type", 2).await? + FIRST_ACCOUNT_TYPE_ID - 1;
        let same = from.type_id == to.type_id;
        let inv = if same && inverse_label.is_none() {
            first
        } else {
            first + 1
        };
        insert_type(
            &mut tx,
            account,
            &from.type_id,
            &to.type_id,
            first,
            "USER_DEFINED",
            Some(label),
            name,
            inv,
            false,
        )
        .await?;
        if inv != first {
            let back_label = inverse_label.unwrap_or(label);
            insert_type(
                &mut tx,
                account,
                &to.type_id,
                &from.type_id,
                inv,
                "USER_DEFINED",
                Some(back_label),
                &format!("{name}_inverse"),
                first,
                false,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(AssociationType {
            type_id: first,
            category: "USER_DEFINED".into(),
            label: Some(label.to_string()),
            name: name.to_string(),
            inverse_type_id: inv,
            is_default: false,
        })
    }

    pub async fn update_association_label(
        &self,
        account: i64,
        from: &ObjectType,
        to: &ObjectType,
        type_id: i64,
        label: &str,
        inverse_label: Option<&str>,
    ) -> StoreResult<()> {
        let t = self
            .association_types(account, from, to)
            .await?
            .into_iter()
            .find(|t| t.type_id == type_id && t.category == "USER_DEFINED" && !t.is_default)
            .ok_or_else(|| {
                StoreError::not_found(format!("association type {type_id} does not exist"))
            })?;
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE association_types SET label = $1 WHERE account_id = $2 AND type_id = $3",
        )
        .bind(label)
        .bind(account)
        .bind(type_id)
        .execute(&mut *tx)
        .await?;
        if let (Some(il), true) = (inverse_label, t.inverse_type_id != type_id) {
            sqlx::query(
                "UPDATE association_types SET label = $1 WHERE account_id = $2 AND type_id = $3",
            )
            .bind(il)
            .bind(account)
            .bind(t.inverse_type_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }

    /// Deletes a label and every association that used it.
    pub async fn delete_association_label(
        &self,
        account: i64,
        from: &ObjectType,
        to: &ObjectType,
        type_id: i64,
    ) -> StoreResult<()> {
        let t = self
            .association_types(account, from, to)
            .await?
            .into_iter()
            .find(|t| t.type_id == type_id && t.category == "USER_DEFINED" && !t.is_default)
            .ok_or_else(|| {
                StoreError::not_found(format!("association type {type_id} does not exist"))
            })?;
        let mut tx = self.write().await?;
        for id in [type_id, t.inverse_type_id] {
            sqlx::query("DELETE FROM association_types WHERE account_id = $1 AND type_id = $2")
                .bind(account)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM associations WHERE account_id = $1 AND category = 'USER_DEFINED' AND type_id = $2").bind(account).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await
    }

    /// The object type of a live record, by id (ids are unique within an account).
    pub async fn record_type(&self, account: i64, id: i64) -> StoreResult<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT object_type FROM records WHERE account_id = $1 AND id = $2 AND archived = 0",
        )
        .bind(account)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.0))
    }

    /// Associates two records with the given types (the default type when empty).
    #[allow(clippy::too_many_arguments)]
    pub async fn associate(
        &self,
        account: i64,
        from: &ObjectType,
        from_id: i64,
        to: &ObjectType,
        to_id: i64,
        types: &[(String, i64)],
        actor: &Actor,
    ) -> StoreResult<Vec<AssociationType>> {
        for (ot, id) in [(from, from_id), (to, to_id)] {
            if self.record_type(account, id).await?.as_deref() != Some(ot.type_id.as_str()) {
                return Err(StoreError::not_found(format!(
                    "{} {id} does not exist",
                    ot.singular
                )));
            }
        }
        let available = self.association_types(account, from, to).await?;
        let chosen = resolve_types(&available, types, "types")?;
        let mut tx = self.write().await?;
        let entry = insert_pair(&mut tx, account, from, from_id, to, to_id, &chosen).await?;
        log::append(&mut tx, account, entry.as_slice(), actor, now_ms()).await?;
        tx.commit().await?;
        Ok(chosen)
    }

    /// Associates each pair of records (a `from` id, a `to` id) with the given types (the
    /// default type when empty), all in one transaction. Returns the types, and for each pair
    /// whether both its records exist, live and of their types; the others are left out.
    pub async fn associate_pairs(
        &self,
        account: i64,
        from: &ObjectType,
        to: &ObjectType,
        pairs: &[(i64, i64)],
        types: &[(String, i64)],
        actor: &Actor,
    ) -> StoreResult<(Vec<AssociationType>, Vec<bool>)> {
        let available = self.association_types(account, from, to).await?;
        let chosen = resolve_types(&available, types, "types")?;
        let mut tx = self.write().await?;
        let mut ids: Vec<i64> = pairs.iter().flat_map(|&(f, t)| [f, t]).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut live: HashMap<i64, String> = HashMap::new();
        for chunk in ids.chunks(500) {
            // `created_at` is read (and dropped) so that no index covers the query: SQLite
            // would otherwise scan `records_by_type` for the whole account instead of seeking
            // each id by the primary key.
            let sql = format!(
                "SELECT id, object_type, created_at FROM records WHERE account_id = $1 AND archived = 0 AND id IN ({})",
                crate::records::in_list(2, chunk.len())
            );
            let mut q = sqlx::query_as::<_, (i64, String, i64)>(&sql).bind(account);
            for id in chunk {
                q = q.bind(*id);
            }
            live.extend(
                q.fetch_all(&mut *tx)
                    .await?
                    .into_iter()
                    .map(|(id, t, _)| (id, t)),
            );
        }
        let mut found = Vec::with_capacity(pairs.len());
        let mut entries = Vec::new();
        for &(f, t) in pairs {
            let both = live.get(&f) == Some(&from.type_id) && live.get(&t) == Some(&to.type_id);
            if both {
                entries.extend(insert_pair(&mut tx, account, from, f, to, t, &chosen).await?);
            }
            found.push(both);
        }
        log::append(&mut tx, account, &entries, actor, now_ms()).await?;
        tx.commit().await?;
        Ok((chosen, found))
    }

    /// Removes associations between two records: the given types, or all of them.
    #[allow(clippy::too_many_arguments)]
    pub async fn dissociate(
        &self,
        account: i64,
        from: &ObjectType,
        from_id: i64,
        to: &ObjectType,
        to_id: i64,
        types: Option<&[(String, i64)]>,
        actor: &Actor,
    ) -> StoreResult<()> {
        let available = self.association_types(account, from, to).await?;
        let mut tx = self.write().await?;
        // Only the named types go (removing a label leaves the records associated), or all.
        let named = match types {
            Some(types) => exact_types(&available, types, "types")?,
            None => available.clone(),
        };
        let mut removed = Vec::new();
        for t in &named {
            let mut gone = false;
            for (a, b, tt, id) in [
                (from_id, to_id, &to.type_id, t.type_id),
                (to_id, from_id, &from.type_id, t.inverse_type_id),
            ] {
                gone |= sqlx::query("DELETE FROM associations WHERE account_id = $1 AND from_id = $2 AND to_id = $3 AND to_type = $4 AND type_id = $5 AND category = $6")
                    .bind(account).bind(a).bind(b).bind(tt).bind(id).bind(&t.category).execute(&mut *tx).await?.rows_affected() > 0;
            }
            if gone {
                removed.push(t);
            }
        }
        if types.is_none() {
            // Anything left between the two (a type this side no longer lists) goes too.
            for (a, b, t) in [
                (from_id, to_id, &to.type_id),
                (to_id, from_id, &from.type_id),
            ] {
                sqlx::query("DELETE FROM associations WHERE account_id = $1 AND from_id = $2 AND to_id = $3 AND to_type = $4")
                    .bind(account).bind(a).bind(b).bind(t).execute(&mut *tx).await?;
            }
        }
        if !removed.is_empty() {
            let entry = pair_entry(from, from_id, to, to_id, "dissociate", &removed);
            log::append(&mut tx, account, &[entry], actor, now_ms()).await?;
        }
        tx.commit().await
    }

    /// Live records associated with `from_id`, of type `to`, grouped by record, paged by id.
    pub async fn associated(
        &self,
        account: i64,
        from: &ObjectType,
        from_id: i64,
        to: &ObjectType,
        after: Option<i64>,
        limit: usize,
    ) -> StoreResult<(Vec<AssociatedRecord>, Option<i64>)> {
        let rows: Vec<(i64, i64, String)> = sqlx::query_as(
            "SELECT a.to_id, a.type_id, a.category FROM associations a JOIN records r ON r.account_id = a.account_id AND r.id = a.to_id AND r.archived = 0 \
             WHERE a.account_id = $1 AND a.from_id = $2 AND a.to_type = $3 AND a.to_id > $4 ORDER BY a.to_id, a.category, a.type_id",
        )
        .bind(account)
        .bind(from_id)
        .bind(&to.type_id)
        .bind(after.unwrap_or(0))
        .fetch_all(&self.pool)
        .await?;
        let types = self.association_types(account, from, to).await?;
        let mut grouped: BTreeMap<i64, Vec<AssociationType>> = BTreeMap::new();
        for (to_id, type_id, category) in rows {
            let t = types
                .iter()
                .find(|t| t.type_id == type_id && t.category == category)
                .cloned()
                .unwrap_or(AssociationType {
                    type_id,
                    category,
                    label: None,
                    name: format!("{}_to_{}", from.singular, to.singular),
                    inverse_type_id: type_id,
                    is_default: false,
                });
            grouped.entry(to_id).or_default().push(t);
        }
        let mut out: Vec<AssociatedRecord> = grouped
            .into_iter()
            .map(|(to_id, types)| AssociatedRecord { to_id, types })
            .collect();
        let next = if out.len() > limit {
            out.truncate(limit);
            out.last().map(|r| r.to_id)
        } else {
            None
        };
        let _ = from_id;
        Ok((out, next))
    }

    /// For many records at once: the live records of the types `to_types` associated with
    /// each of `from_ids`, whatever the association's types, as (from id, to type, to id),
    /// ordered by from id, to type and to id, each pair once.
    pub async fn associated_ids(
        &self,
        account: i64,
        from_ids: &[i64],
        to_types: &[&str],
    ) -> StoreResult<Vec<(i64, String, i64)>> {
        let mut out = Vec::new();
        if to_types.is_empty() {
            return Ok(out);
        }
        for chunk in from_ids.chunks(500) {
            let sql = format!(
                "SELECT DISTINCT a.from_id, a.to_type, a.to_id FROM associations a \
                 JOIN records r ON r.account_id = a.account_id AND r.id = a.to_id AND r.archived = 0 \
                 WHERE a.account_id = $1 AND a.from_id IN ({}) AND a.to_type IN ({}) \
                 ORDER BY a.from_id, a.to_type, a.to_id",
                crate::records::in_list(2, chunk.len()),
                crate::records::in_list(2 + chunk.len(), to_types.len()),
            );
            let mut q = sqlx::query_as::<_, (i64, String, i64)>(&sql).bind(account);
            for id in chunk {
                q = q.bind(*id);
            }
            for t in to_types {
                q = q.bind(*t);
            }
            out.extend(q.fetch_all(&self.pool).await?);
        }
        Ok(out)
    }
}

fn exact_types(
    available: &[AssociationType],
    wanted: &[(String, i64)],
    field: &str,
) -> StoreResult<Vec<AssociationType>> {
    wanted
        .iter()
        .enumerate()
        .map(|(i, (category, id))| {
            available.iter().find(|t| t.type_id == *id && t.category == *category).cloned().ok_or_else(|| {
                StoreError::validation(
                    "INVALID_ASSOCIATION_TYPE",
                    format!("association type {category}/{id} is not defined between these object types"),
                    Some(format!("{field}[{i}]")),
                )
            })
        })
        .collect()
}

fn resolve_types(
    available: &[AssociationType],
    wanted: &[(String, i64)],
    field: &str,
) -> StoreResult<Vec<AssociationType>> {
    if wanted.is_empty() {
        return Ok(available.iter().filter(|t| t.is_default).cloned().collect());
    }
    let mut chosen = Vec::new();
    for (i, (category, id)) in wanted.iter().enumerate() {
        let t = available.iter().find(|t| t.type_id == *id && t.category == *category).ok_or_else(|| {
            StoreError::validation(
                "INVALID_ASSOCIATION_TYPE",
                format!("association type {category}/{id} is not defined between these object types"),
                Some(format!("{field}[{i}]")),
            )
        })?;
        chosen.push(t.clone());
        // A labelled association implies the pair's default one, as in HubSpot.
        if let Some(d) = available.iter().find(|t| t.is_default) {
            if !chosen.contains(d) {
                chosen.push(d.clone());
            }
        }
    }
    Ok(chosen)
}

#[allow(clippy::too_many_arguments)]
async fn insert_type(
    tx: &mut sqlx::AnyConnection,
    account: i64,
    from: &str,
    to: &str,
    type_id: i64,
    category: &str,
    label: Option<&str>,
    name: &str,
    inverse: i64,
    is_default: bool,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO association_types (account_id, from_type, to_type, type_id, category, label, name, inverse_type_id, is_default) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .bind(account)
        .bind(from)
        .bind(to)
        .bind(type_id)
        .bind(category)
        .bind(label)
        .bind(name)
        .bind(inverse)
        .bind(is_default as i64)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

async fn insert_pair(
    tx: &mut sqlx::AnyConnection,
    account: i64,
    from: &ObjectType,
    from_id: i64,
    to: &ObjectType,
    to_id: i64,
    types: &[AssociationType],
) -> StoreResult<Option<Entry>> {
    let mut added = Vec::new();
    for t in types {
        let mut new = false;
        for (a, at, b, bt, id) in [
            (from_id, &from.type_id, to_id, &to.type_id, t.type_id),
            (
                to_id,
                &to.type_id,
                from_id,
                &from.type_id,
                t.inverse_type_id,
            ),
        ] {
            new |= sqlx::query("INSERT INTO associations (account_id, from_id, to_type, to_id, type_id, category, from_type) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING")
                .bind(account)
                .bind(a)
                .bind(bt)
                .bind(b)
                .bind(id)
                .bind(&t.category)
                .bind(at)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                > 0;
        }
        if new {
            added.push(t);
        }
    }
    Ok((!added.is_empty()).then(|| pair_entry(from, from_id, to, to_id, "associate", &added)))
}

/// The change-log entry of associations added or removed between two records (kept on the
/// `from` record; the webhooks tell both sides).
fn pair_entry(
    from: &ObjectType,
    from_id: i64,
    to: &ObjectType,
    to_id: i64,
    kind: &'static str,
    types: &[&AssociationType],
) -> Entry {
    let types: Vec<serde_json::Value> = types
        .iter()
        .map(|t| {
            serde_json::json!({
                "category": t.category,
                "typeId": t.type_id,
                "inverseTypeId": t.inverse_type_id,
                "label": t.label,
            })
        })
        .collect();
    let props = serde_json::json!({
        "toObjectType": to.type_id,
        "toObjectId": to_id.to_string(),
        "types": types,
    });
    Entry::new(&from.type_id, from_id, kind, props.to_string())
}

/// Associations given inline when a record is created, inside the create's transaction.
pub(crate) async fn insert_for_new_record(
    store: &Store,
    tx: &mut sqlx::AnyConnection,
    account: i64,
    from: &ObjectType,
    from_id: i64,
    inputs: &[AssociationInput],
) -> StoreResult<Vec<Entry>> {
    let mut entries = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let to_type: Option<(String,)> = sqlx::query_as(
            "SELECT object_type FROM records WHERE account_id = $1 AND id = $2 AND archived = 0",
        )
        .bind(account)
        .bind(input.to_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((to_type,)) = to_type else {
            return Err(StoreError::validation(
                "INVALID_ASSOCIATION",
                format!(
                    "associations[{i}].to.id: record {} does not exist",
                    input.to_id
                ),
                Some(format!("associations[{i}].to.id")),
            ));
        };
        let to = match BuiltinObject::by_type_id(&to_type) {
            Some(b) => ObjectType::builtin(b),
            None => store
                .custom_schema(account, &to_type)
                .await?
                .map(|s| ObjectType::custom(&s))
                .ok_or_else(|| StoreError::not_found(format!("object type {to_type}")))?,
        };
        // Types are read outside the write lock's connection; built-in and stored types only.
        let mut available = builtin_types(from, &to);
        let rows: Vec<TypeRow> = sqlx::query_as(
            "SELECT type_id, category, label, name, inverse_type_id, is_default FROM association_types WHERE account_id = $1 AND from_type = $2 AND to_type = $3",
        )
        .bind(account)
        .bind(&from.type_id)
        .bind(&to.type_id)
        .fetch_all(&mut *tx)
        .await?;
        available.extend(rows.into_iter().map(|r| AssociationType {
            type_id: r.0,
            category: r.1,
            label: r.2,
            name: r.3,
            inverse_type_id: r.4,
            is_default: r.5 != 0,
        }));
        if !available.iter().any(|t| t.is_default) {
            let first =
                allocate(tx, account, "association_type", 2).await? + FIRST_ACCOUNT_TYPE_ID - 1;
            let same = from.type_id == to.type_id;
            let inv = if same { first } else { first + 1 };
            let name = format!("{}_to_{}", from.singular, to.singular);
            insert_type(
                tx,
                account,
                &from.type_id,
                &to.type_id,
                first,
                "USER_DEFINED",
                None,
                &name,
                inv,
                true,
            )
            .await?;
            if !same {
                insert_type(
                    tx,
                    account,
                    &to.type_id,
                    &from.type_id,
                    inv,
                    "USER_DEFINED",
                    None,
                    &format!("{}_to_{}", to.singular, from.singular),
                    first,
                    true,
                )
                .await?;
            }
            available.push(AssociationType {
                type_id: first,
                category: "USER_DEFINED".into(),
                label: None,
                name,
                inverse_type_id: inv,
                is_default: true,
            });
        }
        let chosen = resolve_types(
            &available,
            &input.types,
            &format!("associations[{i}].types"),
        )?;
        entries.extend(insert_pair(tx, account, from, from_id, &to, input.to_id, &chosen).await?);
    }
    Ok(entries)
}

impl Store {
    /// Account-defined association types starting at `from_type`, with their target type.
    pub async fn association_types_from(
        &self,
        account: i64,
        from_type: &str,
    ) -> StoreResult<Vec<(String, AssociationType)>> {
        let rows: Vec<(String, i64, String, Option<String>, String, i64, i64)> = sqlx::query_as(
            "SELECT to_type, type_id, category, label, name, inverse_type_id, is_default FROM association_types WHERE account_id = $1 AND from_type = $2 ORDER BY type_id",
        )
        .bind(account)
        .bind(from_type)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    r.0,
                    AssociationType {
                        type_id: r.1,
                        category: r.2,
                        label: r.3,
                        name: r.4,
                        inverse_type_id: r.5,
                        is_default: r.6 != 0,
                    },
                )
            })
            .collect())
    }

    /// Removes an account-defined association type, its inverse and their associations.
    pub async fn delete_association_type(
        &self,
        account: i64,
        from_type: &str,
        type_id: i64,
    ) -> StoreResult<()> {
        let t = self
            .association_types_from(account, from_type)
            .await?
            .into_iter()
            .find(|(_, t)| t.type_id == type_id)
            .ok_or_else(|| {
                StoreError::not_found(format!("association definition {type_id} does not exist"))
            })?
            .1;
        let mut tx = self.write().await?;
        for id in [type_id, t.inverse_type_id] {
            sqlx::query("DELETE FROM association_types WHERE account_id = $1 AND type_id = $2")
                .bind(account)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "DELETE FROM associations WHERE account_id = $1 AND category = $2 AND type_id = $3",
            )
            .bind(account)
            .bind(&t.category)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }
}
