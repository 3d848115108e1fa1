//! Reading records: by id, by unique value, by page, counted, and their history from the
//! change log.

use super::{
    in_list, record_from, unique_key, HistoryEntry, ListPage, Record, RecordRow, RECORD_COLS,
};
use crate::objects::ObjectType;
use crate::{Store, StoreError, StoreResult};
use std::collections::{BTreeMap, HashMap};

impl Store {
    pub async fn record(
        &self,
        account: i64,
        ot: &ObjectType,
        id: i64,
        archived: bool,
    ) -> StoreResult<Option<Record>> {
        let row: Option<RecordRow> = sqlx::query_as(&format!(
            "SELECT {RECORD_COLS} FROM records WHERE account_id = $1 AND id = $2 AND object_type = $3 AND archived = $4"
        ))
        .bind(account)
        .bind(id)
        .bind(&ot.type_id)
        .bind(archived as i64)
        .fetch_optional(&self.pool)
        .await?;
        row.map(record_from).transpose()
    }

    /// Resolves `idProperty` values (e-mail, …) to record ids.
    pub async fn ids_by_unique(
        &self,
        account: i64,
        ot: &ObjectType,
        property: &str,
        values: &[String],
    ) -> StoreResult<HashMap<String, i64>> {
        if property == "hs_object_id" {
            return self.lookup_unique(account, ot, property, values).await;
        }
        let def = self.property(account, &ot.type_id, property).await?;
        if !def.is_some_and(|d| d.has_unique_value && !d.archived) {
            return Err(StoreError::validation(
                "INVALID_ID_PROPERTY",
                format!(
                    "{property} is not a unique-value property of {}; it cannot be an idProperty",
                    ot.name
                ),
                Some("idProperty".into()),
            ));
        }
        self.lookup_unique(account, ot, property, values).await
    }

    /// `ids_by_unique` for a property already known to be unique.
    pub(crate) async fn lookup_unique(
        &self,
        account: i64,
        ot: &ObjectType,
        property: &str,
        values: &[String],
    ) -> StoreResult<HashMap<String, i64>> {
        let mut out = HashMap::new();
        if property == "hs_object_id" {
            for v in values {
                if let Ok(id) = v.trim().parse::<i64>() {
                    out.insert(v.clone(), id);
                }
            }
            return Ok(out);
        }
        for chunk in values.chunks(500) {
            let keys: Vec<String> = chunk.iter().map(|v| unique_key(v)).collect();
            let sql = format!(
                "SELECT value, record_id FROM unique_values WHERE account_id = $1 AND object_type = $2 AND property = $3 AND value IN ({})",
                in_list(4, keys.len())
            );
            let mut q = sqlx::query_as::<_, (String, i64)>(&sql)
                .bind(account)
                .bind(&ot.type_id)
                .bind(property);
            for k in &keys {
                q = q.bind(k);
            }
            let found: HashMap<String, i64> = q.fetch_all(&self.pool).await?.into_iter().collect();
            for (v, k) in chunk.iter().zip(keys) {
                if let Some(id) = found.get(&k) {
                    out.insert(v.clone(), *id);
                }
            }
        }
        Ok(out)
    }

    pub async fn records_by_ids(
        &self,
        account: i64,
        ot: &ObjectType,
        ids: &[i64],
        archived: bool,
    ) -> StoreResult<Vec<Record>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT {RECORD_COLS} FROM records WHERE account_id = $1 AND object_type = $2 AND archived = $3 AND id IN ({})",
                in_list(4, chunk.len())
            );
            let mut q = sqlx::query_as::<_, RecordRow>(&sql)
                .bind(account)
                .bind(&ot.type_id)
                .bind(archived as i64);
            for id in chunk {
                q = q.bind(id);
            }
            for row in q.fetch_all(&self.pool).await? {
                out.push(record_from(row)?);
            }
        }
        Ok(out)
    }

    pub async fn list_records(
        &self,
        account: i64,
        ot: &ObjectType,
        archived: bool,
        after: Option<i64>,
        limit: usize,
    ) -> StoreResult<ListPage> {
        let rows: Vec<RecordRow> = sqlx::query_as(&format!(
            "SELECT {RECORD_COLS} FROM records WHERE account_id = $1 AND object_type = $2 AND archived = $3 AND id > $4 ORDER BY id LIMIT $5"
        ))
        .bind(account)
        .bind(&ot.type_id)
        .bind(archived as i64)
        .bind(after.unwrap_or(0))
        .bind(limit as i64 + 1)
        .fetch_all(&self.pool)
        .await?;
        let mut records = rows
            .into_iter()
            .map(record_from)
            .collect::<StoreResult<Vec<_>>>()?;
        let next_after = if records.len() > limit {
            records.truncate(limit);
            records.last().map(|r| r.id.to_string())
        } else {
            None
        };
        Ok(ListPage {
            records,
            next_after,
        })
    }

    pub async fn count_records(
        &self,
        account: i64,
        ot: &ObjectType,
        archived: bool,
    ) -> StoreResult<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM records WHERE account_id = $1 AND object_type = $2 AND archived = $3")
            .bind(account)
            .bind(&ot.type_id)
            .bind(archived as i64)
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    /// Property history from the change log, newest first, for the given records and names.
    pub async fn history(
        &self,
        account: i64,
        ids: &[i64],
        names: &[String],
    ) -> StoreResult<HashMap<i64, BTreeMap<String, Vec<HistoryEntry>>>> {
        let mut out: HashMap<i64, BTreeMap<String, Vec<HistoryEntry>>> = HashMap::new();
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT record_id, props, source, source_id, actor_user_id, at FROM changes WHERE account_id = $1 AND kind = 'set' AND record_id IN ({}) ORDER BY seq DESC",
                in_list(2, chunk.len())
            );
            let mut q =
                sqlx::query_as::<_, (i64, String, String, Option<String>, Option<i64>, i64)>(&sql)
                    .bind(account);
            for id in chunk {
                q = q.bind(id);
            }
            for (record_id, props, source, source_id, user_id, at) in
                q.fetch_all(&self.pool).await?
            {
                let props: BTreeMap<String, Option<String>> = serde_json::from_str(&props)?;
                let entry = out.entry(record_id).or_default();
                for name in names {
                    if let Some(v) = props.get(name) {
                        entry.entry(name.clone()).or_default().push(HistoryEntry {
                            value: v.clone(),
                            timestamp: at,
                            source: source.clone(),
                            source_id: source_id.clone(),
                            user_id,
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    /// The newest change-log sequence number of an account (0 before any write).
    pub async fn last_change_seq(&self, account: i64) -> StoreResult<i64> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COALESCE(MAX(seq), 0) FROM changes WHERE account_id = $1")
                .bind(account)
                .fetch_one(&self.pool)
                .await?;
        Ok(n)
    }
}
