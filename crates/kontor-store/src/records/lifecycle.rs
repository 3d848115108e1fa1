//! A record's lifecycle after it is created: archived into the recycle bin, restored from it,
//! or purged for good (by a user, or by housekeeping after `RECYCLE_BIN_DAYS`). Each step is
//! logged in the change log as a value-less entry.

use super::*;

impl Store {
    /// Moves records to the recycle bin; ids already archived or unknown are ignored.
    pub async fn archive_records(
        &self,
        account: i64,
        ot: &ObjectType,
        ids: &[i64],
        actor: &Actor,
    ) -> StoreResult<Vec<i64>> {
        let live = self.records_by_ids(account, ot, ids, false).await?;
        if live.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let mut tx = self.write().await?;
        let mut done = Vec::new();
        for r in &live {
            let n = sqlx::query("UPDATE records SET archived = 1, archived_at = $1 WHERE account_id = $2 AND id = $3 AND archived = 0")
                .bind(now)
                .bind(account)
                .bind(r.id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                continue;
            }
            sqlx::query("DELETE FROM unique_values WHERE account_id = $1 AND record_id = $2")
                .bind(account)
                .bind(r.id)
                .execute(&mut *tx)
                .await?;
            done.push(r.id);
        }
        append_lifecycle(&mut tx, account, &ot.type_id, &done, "archive", actor, now).await?;
        tx.commit().await?;
        Ok(done)
    }
}

/// Appends one value-less lifecycle entry (`archive`, `restore`, `purge`) per record.
async fn append_lifecycle(
    tx: &mut WriteTx<'_>,
    account: i64,
    type_id: &str,
    ids: &[i64],
    kind: &'static str,
    actor: &Actor,
    now: i64,
) -> StoreResult<()> {
    let entries: Vec<log::Entry> = ids
        .iter()
        .map(|&id| log::Entry::new(type_id, id, kind, "{}".into()))
        .collect();
    log::append(tx, account, &entries, actor, now).await?;
    Ok(())
}

/// How long archived records stay in the recycle bin before they are purged.
pub const RECYCLE_BIN_DAYS: i64 = 90;

impl Store {
    /// Archived records of a type, newest deletion first.
    pub async fn recycle_bin(
        &self,
        account: i64,
        ot: &ObjectType,
        offset: usize,
        limit: usize,
    ) -> StoreResult<(i64, Vec<Record>)> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM records WHERE account_id = $1 AND object_type = $2 AND archived = 1")
            .bind(account)
            .bind(&ot.type_id)
            .fetch_one(&self.pool)
            .await?;
        let rows: Vec<RecordRow> = sqlx::query_as(&format!(
            "SELECT {RECORD_COLS} FROM records WHERE account_id = $1 AND object_type = $2 AND archived = 1 ORDER BY archived_at DESC, id DESC LIMIT $3 OFFSET $4"
        ))
        .bind(account)
        .bind(&ot.type_id)
        .bind(limit as i64)
        .bind(offset as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok((
            n,
            rows.into_iter()
                .map(record_from)
                .collect::<StoreResult<_>>()?,
        ))
    }

    /// Brings archived records back with the same id and values. Refused (nothing restored)
    /// when a unique value of one of them is now used by a live record.
    pub async fn restore_records(
        &self,
        account: i64,
        ot: &ObjectType,
        ids: &[i64],
        actor: &Actor,
    ) -> StoreResult<Vec<i64>> {
        let archived = self.records_by_ids(account, ot, ids, true).await?;
        if archived.is_empty() {
            return Ok(Vec::new());
        }
        let unique: Vec<String> = self
            .properties(account, &ot.type_id, false)
            .await?
            .into_iter()
            .filter(|d| d.has_unique_value && d.name != "hs_object_id")
            .map(|d| d.name)
            .collect();
        let now = now_ms();
        let mut tx = self.write().await?;
        for r in &archived {
            for name in &unique {
                let Some(v) = r.props.get(name) else { continue };
                let holder: Option<(i64,)> = sqlx::query_as("SELECT record_id FROM unique_values WHERE account_id = $1 AND object_type = $2 AND property = $3 AND value = $4")
                    .bind(account)
                    .bind(&ot.type_id)
                    .bind(name)
                    .bind(unique_key(v))
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some((other,)) = holder.filter(|(h,)| *h != r.id) {
                    return Err(StoreError::Conflict {
                        message: format!(
                            "{} {} cannot come back: its {name} {v:?} is now used by {} {other}",
                            ot.singular, r.id, ot.singular
                        ),
                        existing_id: Some(other),
                    });
                }
                sqlx::query("INSERT INTO unique_values (account_id, object_type, property, value, record_id) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING")
                    .bind(account)
                    .bind(&ot.type_id)
                    .bind(name)
                    .bind(unique_key(v))
                    .bind(r.id)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("UPDATE records SET archived = 0, archived_at = NULL, updated_at = $1 WHERE account_id = $2 AND id = $3")
                .bind(now)
                .bind(account)
                .bind(r.id)
                .execute(&mut *tx)
                .await?;
        }
        let ids: Vec<i64> = archived.iter().map(|r| r.id).collect();
        append_lifecycle(&mut tx, account, &ot.type_id, &ids, "restore", actor, now).await?;
        tx.commit().await?;
        Ok(archived.into_iter().map(|r| r.id).collect())
    }

    /// Deletes archived records for good: state, unique values, associations and their
    /// history. The change log keeps one `purge` entry per record, without values.
    pub async fn purge_records(
        &self,
        account: i64,
        ot: &ObjectType,
        ids: &[i64],
        actor: &Actor,
    ) -> StoreResult<Vec<i64>> {
        let archived = self.records_by_ids(account, ot, ids, true).await?;
        if archived.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let mut tx = self.write().await?;
        for r in &archived {
            for sql in [
                "DELETE FROM records WHERE account_id = $1 AND id = $2 AND archived = 1",
                "DELETE FROM unique_values WHERE account_id = $1 AND record_id = $2",
                "DELETE FROM associations WHERE account_id = $1 AND (from_id = $2 OR to_id = $2)",
                "DELETE FROM changes WHERE account_id = $1 AND record_id = $2",
            ] {
                sqlx::query(sql)
                    .bind(account)
                    .bind(r.id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let ids: Vec<i64> = archived.iter().map(|r| r.id).collect();
        append_lifecycle(&mut tx, account, &ot.type_id, &ids, "purge", actor, now).await?;
        tx.commit().await?;
        Ok(archived.into_iter().map(|r| r.id).collect())
    }

    /// Purges records archived before `cutoff`, in one account or (`None`) the whole cell;
    /// returns how many per account.
    pub async fn purge_expired(
        &self,
        cutoff: i64,
        account: Option<i64>,
    ) -> StoreResult<Vec<(i64, usize)>> {
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(&format!("SELECT account_id, object_type, id FROM records WHERE archived = 1 AND archived_at < $1 AND ($2 = 0 OR account_id = $2) AND {} ORDER BY account_id, object_type LIMIT 10000", crate::moving::SETTLED))
            .bind(cutoff)
            .bind(account.unwrap_or(0))
            .fetch_all(&self.pool)
            .await?;
        let mut groups: BTreeMap<(i64, String), Vec<i64>> = BTreeMap::new();
        for (a, t, id) in rows {
            groups.entry((a, t)).or_default().push(id);
        }
        let mut out: BTreeMap<i64, usize> = BTreeMap::new();
        let actor = Actor {
            source: ChangeSource::Workflow,
            source_id: Some("recycle-bin-expiry".into()),
            user_id: None,
        };
        for ((account, type_id), ids) in groups {
            let Some(ot) = self.object_type(account, &type_id).await? else {
                continue;
            };
            let n = self.purge_records(account, &ot, &ids, &actor).await?.len();
            *out.entry(account).or_default() += n;
        }
        Ok(out.into_iter().collect())
    }
}
