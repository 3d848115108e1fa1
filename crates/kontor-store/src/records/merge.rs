//! Merging two records of one type into one, as HubSpot's `POST …/merge` does.

use super::{record_from, Actor, Record, RecordRow, RECORD_COLS};
use crate::objects::ObjectType;
use crate::{Store, StoreError, StoreResult};
use kontor_domain::object_type::{MERGEABLE, MERGED_IDS};
use kontor_domain::time::{iso, now_ms};
use std::collections::{BTreeMap, HashMap};

impl Store {
    /// Merges record `merged` into `primary`, in one transaction:
    /// - the primary keeps its id and its values; each property it has no value for takes the
    ///   merged record's (read-only ones excepted);
    /// - the merged record's associations move to the primary (one between the two is dropped);
    /// - the merged record's unique values (its e-mail, say) and its id now lead to the
    ///   primary, which lists the id in `hs_merged_object_ids`: reads of the old id answer
    ///   with the primary, as HubSpot's do;
    /// - the merged record's state goes; its history stays in the change log, which records the
    ///   primary's new values (`set`) and a `merge` entry for the merged record naming the
    ///   primary.
    pub async fn merge_records(
        &self,
        account: i64,
        ot: &ObjectType,
        primary: i64,
        merged: i64,
        actor: &Actor,
    ) -> StoreResult<Record> {
        if !MERGEABLE.contains(&ot.name.as_str()) {
            return Err(StoreError::validation(
                "VALIDATION_ERROR",
                format!(
                    "{} cannot be merged; contacts, companies, deals and tickets can",
                    ot.name
                ),
                Some("objectType".into()),
            ));
        }
        if primary == merged {
            return Err(StoreError::validation(
                "VALIDATION_ERROR",
                "a record cannot be merged into itself",
                Some("objectIdToMerge".into()),
            ));
        }
        let defs = self.properties(account, &ot.type_id, false).await?;
        let read_only: Vec<&str> = defs
            .iter()
            .filter(|d| d.read_only_value)
            .map(|d| d.name.as_str())
            .collect();

        let mut tx = self.write().await?;
        let lock = match self.dialect {
            crate::Dialect::Postgres => " ORDER BY id FOR UPDATE",
            crate::Dialect::Sqlite => "",
        };
        let rows: Vec<RecordRow> = sqlx::query_as(&format!(
            "SELECT {RECORD_COLS} FROM records WHERE account_id = $1 AND object_type = $2 AND archived = 0 AND id IN ($3, $4){lock}"
        ))
        .bind(account)
        .bind(&ot.type_id)
        .bind(primary)
        .bind(merged)
        .fetch_all(&mut *tx)
        .await?;
        let mut found: HashMap<i64, Record> = HashMap::new();
        for row in rows {
            let r = record_from(row)?;
            found.insert(r.id, r);
        }
        let (Some(mut keep), Some(gone)) = (found.remove(&primary), found.remove(&merged)) else {
            let missing = if found.contains_key(&primary) || !found.contains_key(&merged) {
                merged
            } else {
                primary
            };
            return Err(StoreError::not_found(format!(
                "{} {missing} does not exist",
                ot.singular
            )));
        };

        let now = now_ms();
        let mut changes: BTreeMap<String, Option<String>> = BTreeMap::new();
        for (k, v) in &gone.props {
            if read_only.contains(&k.as_str()) || v.is_empty() {
                continue;
            }
            if keep.props.get(k).is_none_or(|x| x.is_empty()) {
                changes.insert(k.clone(), Some(v.clone()));
            }
        }
        let mut ids: Vec<String> = keep
            .props
            .get(MERGED_IDS)
            .into_iter()
            .chain(gone.props.get(MERGED_IDS))
            .flat_map(|v| v.split(';'))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        ids.push(merged.to_string());
        changes.insert(MERGED_IDS.into(), Some(ids.join(";")));
        changes.insert(ot.last_modified.clone(), Some(iso(now)));
        for (k, v) in &changes {
            if let Some(v) = v {
                keep.props.insert(k.clone(), v.clone());
            }
        }
        keep.updated_at = now;

        // Unique values and ids that led to the merged record now lead to the primary.
        sqlx::query(
            "UPDATE unique_values SET record_id = $1 WHERE account_id = $2 AND record_id = $3",
        )
        .bind(primary)
        .bind(account)
        .bind(merged)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO unique_values (account_id, object_type, property, value, record_id) VALUES ($1, $2, $3, $4, $5)")
            .bind(account)
            .bind(&ot.type_id)
            .bind(MERGED_IDS)
            .bind(merged.to_string())
            .bind(primary)
            .execute(&mut *tx)
            .await?;

        // Associations move over; one between the two records has nowhere to go.
        for sql in [
            "INSERT INTO associations (account_id, from_id, to_type, to_id, type_id, category, from_type) SELECT account_id, $1, to_type, to_id, type_id, category, from_type FROM associations WHERE account_id = $2 AND from_id = $3 AND to_id <> $1 ON CONFLICT DO NOTHING",
            "INSERT INTO associations (account_id, from_id, to_type, to_id, type_id, category, from_type) SELECT account_id, from_id, to_type, $1, type_id, category, from_type FROM associations WHERE account_id = $2 AND to_id = $3 AND from_id <> $1 ON CONFLICT DO NOTHING",
        ] {
            sqlx::query(sql)
                .bind(primary)
                .bind(account)
                .bind(merged)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "DELETE FROM associations WHERE account_id = $1 AND (from_id = $2 OR to_id = $2)",
        )
        .bind(account)
        .bind(merged)
        .execute(&mut *tx)
        .await?;

        sqlx::query(
            "UPDATE records SET props = $1, updated_at = $2 WHERE account_id = $3 AND id = $4",
        )
        .bind(serde_json::to_string(&keep.props)?)
        .bind(now)
        .bind(account)
        .bind(primary)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM records WHERE account_id = $1 AND id = $2")
            .bind(account)
            .bind(merged)
            .execute(&mut *tx)
            .await?;

        // The merge entry names the primary and how many values it took from the merged
        // record (HubSpot's `numberOfPropertiesMoved`).
        let merge_entry = serde_json::json!({
            "mergedInto": primary.to_string(),
            "propertiesMoved": changes.len(),
        });
        let entries = [
            super::log::Entry::new(
                &ot.type_id,
                primary,
                "set",
                serde_json::to_string(&changes)?,
            ),
            super::log::Entry::new(&ot.type_id, merged, "merge", merge_entry.to_string()),
        ];
        super::log::append(&mut tx, account, &entries, actor, now).await?;
        tx.commit().await?;
        Ok(keep)
    }

    /// The records that ids merged away now lead to (see [`Store::merge_records`]).
    pub async fn merged_into(
        &self,
        account: i64,
        ot: &ObjectType,
        ids: &[i64],
    ) -> StoreResult<HashMap<i64, i64>> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT value, record_id FROM unique_values WHERE account_id = $1 AND object_type = $2 AND property = $3 AND value IN ({})",
                super::in_list(4, chunk.len())
            );
            let mut q = sqlx::query_as::<_, (String, i64)>(&sql)
                .bind(account)
                .bind(&ot.type_id)
                .bind(MERGED_IDS);
            for id in chunk {
                q = q.bind(id.to_string());
            }
            for (value, record_id) in q.fetch_all(&self.pool).await? {
                if let Ok(old) = value.parse() {
                    out.insert(old, record_id);
                }
            }
        }
        Ok(out)
    }
}
