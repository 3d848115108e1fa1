//! Building a property's index over the records that exist: a durable job
//! ([`JOB_KIND_INDEX_BUILD`]) that walks the type's live records by id, a batch per
//! transaction, and adds their rows. Meanwhile searches leave that property to the matcher
//! (`plan::Building`), and writes keep its rows as they do any other's, so when the walk ends
//! the index is whole.
//!
//! A build opens when a property is made (values it held before an archive may still be in
//! the records) or changes type (its keys change). (The records that exist when the index
//! tables first appear need no build: the indexer's cursor starts at the change log's
//! beginning.)

use super::index::IndexWrite;
use crate::{Job, Store, StoreResult};
use kontor_domain::time::now_ms;
use serde_json::json;
use std::collections::BTreeMap;

pub const JOB_KIND_INDEX_BUILD: &str = "index_build";

/// A build's progress, as the console and `kontor admin search status` show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexBuild {
    pub object_type: String,
    pub property: String,
    pub job_id: Option<i64>,
    /// Records indexed so far.
    pub done: i64,
    /// Live records of the type.
    pub total: i64,
}

/// Where an account's search index stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexStatus {
    /// The last change-log entry the index covers.
    pub cursor: i64,
    /// The last change-log entry.
    pub head: i64,
    pub builds: Vec<IndexBuild>,
}

impl IndexStatus {
    /// Change-log entries not yet indexed (searches match their records one by one).
    pub fn behind(&self) -> i64 {
        (self.head - self.cursor).max(0)
    }

    /// The build of a property under way, if any.
    pub fn build(&self, object_type: &str, property: &str) -> Option<&IndexBuild> {
        self.builds
            .iter()
            .find(|b| b.object_type == object_type && b.property == property)
    }
}

impl Store {
    /// Live records of a type (a build's total).
    pub async fn count_live(&self, account: i64, object_type: &str) -> StoreResult<i64> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM records WHERE account_id = $1 AND object_type = $2 AND archived = 0",
        )
        .bind(account)
        .bind(object_type)
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }

    /// The builds under way in an account.
    pub async fn index_builds(&self, account: i64) -> StoreResult<Vec<IndexBuild>> {
        let rows: Vec<(String, String, Option<i64>, i64, i64)> = sqlx::query_as(
            "SELECT b.object_type, b.property, b.job_id, b.done, (SELECT COUNT(*) FROM records r WHERE r.account_id = b.account_id AND r.object_type = b.object_type AND r.archived = 0) FROM index_builds b WHERE b.account_id = $1 ORDER BY b.object_type, b.property",
        )
        .bind(account)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(object_type, property, job_id, done, total)| IndexBuild {
                object_type,
                property,
                job_id,
                done,
                total,
            })
            .collect())
    }

    /// How far an account's index is behind its change log, and its builds under way.
    pub async fn index_status(&self, account: i64) -> StoreResult<IndexStatus> {
        let (cursor, head): (Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT (SELECT seq FROM index_cursors WHERE account_id = $1), (SELECT value FROM counters WHERE account_id = $1 AND name = 'change')",
        )
        .bind(account)
        .fetch_one(&self.pool)
        .await?;
        Ok(IndexStatus {
            cursor: cursor.unwrap_or(0),
            head: head.unwrap_or(0),
            builds: self.index_builds(account).await?,
        })
    }

    /// Inside a write transaction: the property's index starts over. Its rows go now; when
    /// the type has live records a build job adds theirs back (one already open restarts).
    pub(crate) async fn open_index_build(
        conn: &mut sqlx::AnyConnection,
        account: i64,
        object_type: &str,
        property: &str,
    ) -> StoreResult<()> {
        for sql in [
            "DELETE FROM record_values WHERE account_id = $1 AND object_type = $2 AND property = $3",
            "DELETE FROM record_tokens WHERE account_id = $1 AND object_type = $2 AND property = $3",
            "DELETE FROM record_grams WHERE account_id = $1 AND object_type = $2 AND property = $3",
        ] {
            sqlx::query(sql)
                .bind(account)
                .bind(object_type)
                .bind(property)
                .execute(&mut *conn)
                .await?;
        }
        Self::new_index_epoch(conn, account).await?;
        let any: Option<(i64,)> = sqlx::query_as(
            "SELECT id FROM records WHERE account_id = $1 AND object_type = $2 AND archived = 0 LIMIT 1",
        )
        .bind(account)
        .bind(object_type)
        .fetch_optional(&mut *conn)
        .await?;
        if any.is_none() {
            return Ok(());
        }
        let open = sqlx::query("UPDATE index_builds SET after_id = 0, done = 0 WHERE account_id = $1 AND object_type = $2 AND property = $3")
            .bind(account)
            .bind(object_type)
            .bind(property)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        if open == 0 {
            let now = now_ms();
            let job = Self::insert_job(
                conn,
                account,
                JOB_KIND_INDEX_BUILD,
                &json!({"objectType": object_type, "property": property}),
                now,
            )
            .await?;
            sqlx::query("INSERT INTO index_builds (account_id, object_type, property, job_id, after_id, done, created_at) VALUES ($1, $2, $3, $4, 0, 0, $5)")
                .bind(account)
                .bind(object_type)
                .bind(property)
                .bind(job)
                .bind(now)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// Queues a job for each build that has none (its last one gave up, see
    /// [`Self::fail_index_build`]). Returns how many were queued.
    pub async fn queue_index_builds(&self) -> StoreResult<usize> {
        let waiting: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT account_id, object_type, property FROM index_builds WHERE job_id IS NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut queued = 0;
        for (account, object_type, property) in waiting {
            let mut tx = self.write().await?;
            let now = now_ms();
            let job = Self::insert_job(
                &mut tx,
                account,
                JOB_KIND_INDEX_BUILD,
                &json!({"objectType": object_type, "property": property}),
                now,
            )
            .await?;
            let n = sqlx::query("UPDATE index_builds SET job_id = $1 WHERE account_id = $2 AND object_type = $3 AND property = $4 AND job_id IS NULL")
                .bind(job)
                .bind(account)
                .bind(&object_type)
                .bind(&property)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 1 {
                tx.commit().await?;
                queued += 1;
            }
        }
        Ok(queued)
    }

    /// Ends a build's job that keeps failing. The build stays open, so searches keep leaving
    /// the property to the matcher, and a new job is queued by the next sweep.
    pub async fn fail_index_build(&self, job: &Job, owner: &str, error: &str) -> StoreResult<()> {
        let mut tx = self.write().await?;
        if Self::end_job(&mut tx, job, owner, Some(error), now_ms()).await? {
            let object_type = job.payload["objectType"].as_str().unwrap_or_default();
            let property = job.payload["property"].as_str().unwrap_or_default();
            sqlx::query("UPDATE index_builds SET job_id = NULL WHERE account_id = $1 AND object_type = $2 AND property = $3 AND job_id = $4")
                .bind(job.account_id)
                .bind(object_type)
                .bind(property)
                .bind(job.id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    /// One batch of the build a job holds: the next `limit` live records get their rows.
    /// `Some(done so far)` while records remain, `None` once the build is over (its row is
    /// gone and the job ended), `Some(-1)` when the lease was lost (nothing written).
    pub async fn index_build_batch(
        &self,
        job: &Job,
        owner: &str,
        limit: i64,
    ) -> StoreResult<Option<i64>> {
        let account = job.account_id;
        let object_type = job.payload["objectType"].as_str().unwrap_or_default();
        let property = job.payload["property"].as_str().unwrap_or_default();
        let defs = self.properties(account, object_type, false).await?;
        let mut tx = self.write().await?;
        if !Self::holds_job(&mut tx, job, owner).await? {
            return Ok(Some(-1));
        }
        let build: Option<(i64, i64)> = sqlx::query_as("SELECT after_id, done FROM index_builds WHERE account_id = $1 AND object_type = $2 AND property = $3")
            .bind(account)
            .bind(object_type)
            .bind(property)
            .fetch_optional(&mut *tx)
            .await?;
        let Some((after, done)) = build else {
            Self::end_job(&mut tx, job, owner, None, now_ms()).await?;
            tx.commit().await?;
            return Ok(None);
        };
        // On PostgreSQL the batch's records are locked, as a writer locks them: a write
        // cannot commit between this read and these rows. Before that, it waits for the
        // account's indexer to commit: both read and rewrite posting lists.
        let lock = match self.dialect {
            crate::Dialect::Postgres => {
                sqlx::query(&format!(
                    "SELECT pg_advisory_xact_lock({}, CAST($1 AS INTEGER))",
                    super::indexer::INDEX_LOCK
                ))
                .bind(account)
                .execute(&mut *tx)
                .await?;
                " FOR UPDATE"
            }
            crate::Dialect::Sqlite => "",
        };
        let rows: Vec<(i64, String)> = sqlx::query_as(&format!(
            "SELECT id, props FROM records WHERE account_id = $1 AND object_type = $2 AND archived = 0 AND id > $3 ORDER BY id LIMIT $4{lock}"
        ))
        .bind(account)
        .bind(object_type)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let Some(&(last, _)) = rows.last() else {
            sqlx::query("DELETE FROM index_builds WHERE account_id = $1 AND object_type = $2 AND property = $3")
                .bind(account)
                .bind(object_type)
                .bind(property)
                .execute(&mut *tx)
                .await?;
            Self::new_index_epoch(&mut tx, account).await?;
            Self::end_job(&mut tx, job, owner, None, now_ms()).await?;
            tx.commit().await?;
            return Ok(None);
        };
        let mut index = IndexWrite::new(&defs);
        for (id, props) in &rows {
            let props: BTreeMap<String, String> = serde_json::from_str(props)?;
            if let Some(v) = props.get(property) {
                index.change(*id, property, None, Some(v));
            }
        }
        index.flush(&mut tx, account, object_type).await?;
        let done = done + rows.len() as i64;
        sqlx::query("UPDATE index_builds SET after_id = $1, done = $2 WHERE account_id = $3 AND object_type = $4 AND property = $5")
            .bind(last)
            .bind(done)
            .bind(account)
            .bind(object_type)
            .bind(property)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(done))
    }
}
