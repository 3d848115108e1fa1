//! Imports: a file of rows applied to one object type as a job, batch by batch. Each batch is
//! one transaction that also moves the import's counters and its job's progress, and that
//! commits only while the runner still holds the job's lease: a batch is applied exactly once
//! however often the runner dies. Each row is applied entirely or rejected with a reason.
//!
//! A restore is an import too (source `RESTORE`), whose rows are property values from a backup;
//! see `restores.rs`.

use crate::jobs::Job;
use crate::objects::ObjectType;
use crate::records::{normalize_properties, Actor, WriteOp};
use crate::{allocate, Store, StoreError, StoreResult};
use kontor_domain::property::PropertyDef;
use kontor_domain::time::now_ms;
use serde_json::{Map, Value};
use sqlx::Connection;
use std::collections::HashMap;

mod batch;
pub(crate) use batch::{commit_progress, record_errors, Rejected};

pub const JOB_KIND_IMPORT: &str = "import";

/// `importSource` of imports made through the API, the console, and of restores.
pub const SOURCE_API: &str = "API";
pub const SOURCE_UI: &str = "CRM_UI";
pub const SOURCE_RESTORE: &str = "RESTORE";

/// HubSpot's import states.
/// File imports of one account that may wait or run at once (each holds its file on disk).
pub const MAX_OPEN_IMPORTS: i64 = 10;
/// Bytes the files of one account's waiting and running imports may hold together on disk
/// (twice the largest file an import takes).
pub const MAX_OPEN_IMPORT_BYTES: i64 = 1 << 30;
pub const STARTED: &str = "STARTED";
pub const PROCESSING: &str = "PROCESSING";
pub const DONE: &str = "DONE";
pub const FAILED: &str = "FAILED";
pub const CANCELED: &str = "CANCELED";
pub const REVERTED: &str = "REVERTED";

/// What an import does with a row: only create, only update, or either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Upsert,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Upsert => "UPSERT",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "CREATE" => Some(Operation::Create),
            "UPDATE" => Some(Operation::Update),
            "UPSERT" | "CREATE_AND_UPDATE" => Some(Operation::Upsert),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Import {
    pub account_id: i64,
    pub id: i64,
    pub job_id: i64,
    pub name: String,
    pub source: String,
    /// The object type's id (`0-1`, `2-…`).
    pub object_type: String,
    pub operation: String,
    pub state: String,
    /// The import request as given (HubSpot's `importRequest`), or a restore's spec.
    pub request: Value,
    /// The uploaded file below the region's file store.
    pub file_key: Option<String>,
    pub file_name: Option<String>,
    pub created_by: Option<i64>,
    pub created_by_name: String,
    pub rows_total: i64,
    pub rows_done: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub errors: i64,
    pub conflicts: i64,
    /// The change-log range the import wrote (restores), for a revert.
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    /// The import (a revert) that undid this one.
    pub reverted_by: Option<i64>,
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

impl Import {
    pub fn is_restore(&self) -> bool {
        self.source == SOURCE_RESTORE
    }
    pub fn is_open(&self) -> bool {
        self.state == STARTED || self.state == PROCESSING
    }
    pub fn percent(&self) -> i64 {
        if self.rows_total <= 0 {
            return if self.is_open() { 0 } else { 100 };
        }
        (self.rows_done * 100 / self.rows_total).clamp(0, 100)
    }
}

const IMPORT_COLS: &str = "account_id, id, job_id, name, source, object_type, operation, state, request, file_key, file_name, created_by, created_by_name, rows_total, rows_done, created_count, updated_count, unchanged_count, error_count, conflict_count, first_seq, last_seq, reverted_by, error, created_at, updated_at, finished_at";

fn import_from(r: &sqlx::any::AnyRow) -> StoreResult<Import> {
    use sqlx::Row;
    Ok(Import {
        account_id: r.try_get(0)?,
        id: r.try_get(1)?,
        job_id: r.try_get(2)?,
        name: r.try_get(3)?,
        source: r.try_get(4)?,
        object_type: r.try_get(5)?,
        operation: r.try_get(6)?,
        state: r.try_get(7)?,
        request: serde_json::from_str(&r.try_get::<String, _>(8)?)?,
        file_key: r.try_get(9)?,
        file_name: r.try_get(10)?,
        created_by: r.try_get(11)?,
        created_by_name: r.try_get(12)?,
        rows_total: r.try_get(13)?,
        rows_done: r.try_get(14)?,
        created: r.try_get(15)?,
        updated: r.try_get(16)?,
        unchanged: r.try_get(17)?,
        errors: r.try_get(18)?,
        conflicts: r.try_get(19)?,
        first_seq: r.try_get(20)?,
        last_seq: r.try_get(21)?,
        reverted_by: r.try_get(22)?,
        error: r.try_get(23)?,
        created_at: r.try_get(24)?,
        updated_at: r.try_get(25)?,
        finished_at: r.try_get(26)?,
    })
}

/// A new import, queued with its job.
#[derive(Debug, Clone)]
pub struct NewImport<'a> {
    pub name: &'a str,
    pub source: &'a str,
    pub object_type: &'a str,
    pub operation: Operation,
    pub request: &'a Value,
    pub file_key: Option<&'a str>,
    pub file_name: Option<&'a str>,
    pub created_by: Option<i64>,
    pub created_by_name: &'a str,
    pub rows_total: i64,
    /// The size of its file on disk (0 without one).
    pub file_bytes: i64,
    /// The restore plan this import applies; a plan is applied once.
    pub plan_id: Option<i64>,
}

/// One rejected row, as the errors endpoint and the rejected-rows file show it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportError {
    pub id: i64,
    /// 1-based line of the file (the header is line 1), or the row's place for a restore.
    pub line: i64,
    pub record_id: Option<i64>,
    pub error_type: String,
    pub message: String,
    pub property: Option<String>,
    pub invalid_value: Option<String>,
    pub row_data: Vec<String>,
    pub created_at: i64,
}

/// What a row of an import asks for, decided by the job from the file and the mapping.
#[derive(Debug, Clone)]
pub enum RowOp {
    Create {
        /// A record ID given in the file: the record comes back under it.
        id: Option<i64>,
        props: Map<String, Value>,
    },
    Update {
        id: i64,
        props: Map<String, Value>,
    },
    /// Rejected before it reached the database (no match, bad id, …).
    Reject(RowError),
}

#[derive(Debug, Clone)]
pub struct RowError {
    pub error_type: String,
    pub message: String,
    pub property: Option<String>,
    pub invalid_value: Option<String>,
}

impl RowError {
    pub fn new(error_type: &str, message: impl Into<String>) -> Self {
        Self {
            error_type: error_type.into(),
            message: message.into(),
            property: None,
            invalid_value: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ImportRow {
    pub line: i64,
    pub op: RowOp,
    /// The row as read from the file, for the rejected-rows download.
    pub data: Vec<String>,
}

/// What one committed batch did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchOutcome {
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub errors: i64,
    pub conflicts: i64,
}

impl Store {
    /// Queues an import and its job. A restore is refused (409) while another restore of the
    /// account is queued or running.
    pub async fn create_import(&self, account: i64, new: &NewImport<'_>) -> StoreResult<Import> {
        let now = now_ms();
        let mut tx = self.write().await?;
        if self.dialect == crate::Dialect::Postgres {
            // Two nodes asked for a restore at once: one waits for the other's check.
            sqlx::query("SELECT pg_advisory_xact_lock(7234503, CAST($1 AS INTEGER))")
                .bind(account)
                .execute(&mut *tx)
                .await?;
        }
        if new.source == SOURCE_RESTORE {
            let running: Option<(i64, String)> = sqlx::query_as("SELECT id, name FROM imports WHERE account_id = $1 AND source = $2 AND state IN ('STARTED', 'PROCESSING') ORDER BY id LIMIT 1")
                .bind(account)
                .bind(SOURCE_RESTORE)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some((id, name)) = running {
                return Err(StoreError::Conflict {
                    message: format!("A restore is already running in this account (\"{name}\", import {id}). Only one restore may run at a time: wait until it has finished."),
                    existing_id: Some(id),
                });
            }
            let uninstalling: Option<(String,)> = sqlx::query_as("SELECT state FROM salesforce_connections WHERE account_id = $1 AND state = 'uninstalling'")
                .bind(account)
                .fetch_optional(&mut *tx)
                .await?;
            if uninstalling.is_some() {
                return Err(StoreError::Conflict {
                    message: "The Salesforce integration is being uninstalled in this account. A restore can start once the uninstall has finished.".into(),
                    existing_id: None,
                });
            }
        }
        if new.source != SOURCE_RESTORE {
            // Uploads wait on disk until their job runs: an account may have only so many, and
            // only so many bytes of them.
            let (open, bytes): (i64, i64) = sqlx::query_as("SELECT COUNT(*), CAST(COALESCE(SUM(file_bytes), 0) AS BIGINT) FROM imports WHERE account_id = $1 AND source <> $2 AND state IN ('STARTED', 'PROCESSING')")
                .bind(account)
                .bind(SOURCE_RESTORE)
                .fetch_one(&mut *tx)
                .await?;
            if open >= MAX_OPEN_IMPORTS {
                return Err(StoreError::TooSoon {
                    message: format!("{open} imports of this account are waiting or running, the most there may be: start this one when one of them has finished."),
                    retry_at: now + 60_000,
                });
            }
            if bytes + new.file_bytes > MAX_OPEN_IMPORT_BYTES {
                return Err(StoreError::TooSoon {
                    message: format!(
                        "the files of this account's waiting and running imports take {} MiB and this one {} MiB, more than the {} MiB they may take together: start it when one of them has finished.",
                        bytes >> 20,
                        new.file_bytes >> 20,
                        MAX_OPEN_IMPORT_BYTES >> 20
                    ),
                    retry_at: now + 60_000,
                });
            }
        }
        let id = allocate(&mut tx, account, "import", 1).await?;
        if let Some(plan) = new.plan_id {
            let n = sqlx::query("UPDATE restore_plans SET import_id = $1 WHERE account_id = $2 AND id = $3 AND import_id IS NULL AND expires_at > $4")
                .bind(id)
                .bind(account)
                .bind(plan)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n != 1 {
                return Err(StoreError::Conflict {
                    message: format!("Restore plan {plan} was already applied or has expired: review a new plan."),
                    existing_id: None,
                });
            }
        }
        let job_id = Store::insert_job(
            &mut tx,
            account,
            JOB_KIND_IMPORT,
            &serde_json::json!({ "importId": id }),
            now,
        )
        .await?;
        sqlx::query("INSERT INTO imports (account_id, id, job_id, name, source, object_type, operation, state, request, file_key, file_name, created_by, created_by_name, rows_total, created_at, updated_at, file_bytes) VALUES ($1, $2, $3, $4, $5, $6, $7, 'STARTED', $8, $9, $10, $11, $12, $13, $14, $14, $15)")
            .bind(account)
            .bind(id)
            .bind(job_id)
            .bind(new.name)
            .bind(new.source)
            .bind(new.object_type)
            .bind(new.operation.as_str())
            .bind(new.request.to_string())
            .bind(new.file_key)
            .bind(new.file_name)
            .bind(new.created_by)
            .bind(new.created_by_name)
            .bind(new.rows_total)
            .bind(now)
            .bind(new.file_bytes)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.import(account, id)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("import {id}")))
    }

    pub async fn import(&self, account: i64, id: i64) -> StoreResult<Option<Import>> {
        let row = sqlx::query(&format!(
            "SELECT {IMPORT_COLS} FROM imports WHERE account_id = $1 AND id = $2"
        ))
        .bind(account)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(import_from).transpose()
    }

    /// The import a job runs.
    pub async fn import_of_job(&self, account: i64, job_id: i64) -> StoreResult<Option<Import>> {
        let row = sqlx::query(&format!(
            "SELECT {IMPORT_COLS} FROM imports WHERE account_id = $1 AND job_id = $2"
        ))
        .bind(account)
        .bind(job_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(import_from).transpose()
    }

    /// Imports newest first; `before` pages on (ids below it).
    pub async fn imports(
        &self,
        account: i64,
        before: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<Import>> {
        let rows = sqlx::query(&format!(
            "SELECT {IMPORT_COLS} FROM imports WHERE account_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
        ))
        .bind(account)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(import_from).collect()
    }

    /// Whether a restore is queued or running in the account.
    pub async fn running_restore(&self, account: i64) -> StoreResult<Option<Import>> {
        let row = sqlx::query(&format!(
            "SELECT {IMPORT_COLS} FROM imports WHERE account_id = $1 AND source = $2 AND state IN ('STARTED', 'PROCESSING') ORDER BY id LIMIT 1"
        ))
        .bind(account)
        .bind(SOURCE_RESTORE)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(import_from).transpose()
    }

    /// Cancels a queued or running import: its job stops before its next batch; batches
    /// already committed stay.
    pub async fn cancel_import(&self, account: i64, id: i64) -> StoreResult<Import> {
        let now = now_ms();
        let mut tx = self.write().await?;
        // The job's row first, then the import's: the order in which a batch and the end of
        // an import lock them, so that a cancel racing either cannot deadlock on PostgreSQL.
        sqlx::query("UPDATE jobs SET state = 'canceled', lease_owner = NULL, lease_until = NULL, updated_at = $1, finished_at = $1 WHERE account_id = $2 AND id = (SELECT job_id FROM imports WHERE account_id = $2 AND id = $3 AND state IN ('STARTED', 'PROCESSING')) AND state IN ('queued', 'running')")
            .bind(now)
            .bind(account)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query("UPDATE imports SET state = 'CANCELED', updated_at = $1, finished_at = $1 WHERE account_id = $2 AND id = $3 AND state IN ('STARTED', 'PROCESSING')")
            .bind(now)
            .bind(account)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        let imp = self
            .import(account, id)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("import {id} does not exist")))?;
        if n == 0 && imp.state != CANCELED {
            return Err(StoreError::Conflict {
                message: format!("import {id} is {} and can no longer be canceled", imp.state),
                existing_id: None,
            });
        }
        Ok(imp)
    }

    /// Rejected rows of an import in file order, from `after` (an error id) on.
    pub async fn import_errors(
        &self,
        account: i64,
        import: i64,
        after: i64,
        limit: usize,
    ) -> StoreResult<Vec<ImportError>> {
        type Row = (
            i64,
            i64,
            Option<i64>,
            String,
            String,
            Option<String>,
            Option<String>,
            String,
            i64,
        );
        let rows: Vec<Row> = sqlx::query_as("SELECT id, line, record_id, error_type, message, property, invalid_value, row_data, created_at FROM import_errors WHERE account_id = $1 AND import_id = $2 AND id > $3 ORDER BY id LIMIT $4")
            .bind(account)
            .bind(import)
            .bind(after)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(ImportError {
                    id: r.0,
                    line: r.1,
                    record_id: r.2,
                    error_type: r.3,
                    message: r.4,
                    property: r.5,
                    invalid_value: r.6,
                    row_data: serde_json::from_str(&r.7)?,
                    created_at: r.8,
                })
            })
            .collect()
    }

    /// Ends an import and its job (the caller holds the lease). A finished revert marks the
    /// restore it undid as `REVERTED`.
    pub async fn finish_import(
        &self,
        imp: &Import,
        job: &Job,
        owner: &str,
        error: Option<&str>,
    ) -> StoreResult<bool> {
        let now = now_ms();
        let mut tx = self.write().await?;
        if !Store::end_job(&mut tx, job, owner, error, now).await? {
            return Ok(false);
        }
        sqlx::query("UPDATE imports SET state = $1, error = $2, updated_at = $3, finished_at = $3 WHERE account_id = $4 AND id = $5 AND state IN ('STARTED', 'PROCESSING')")
            .bind(if error.is_some() { FAILED } else { DONE })
            .bind(error)
            .bind(now)
            .bind(imp.account_id)
            .bind(imp.id)
            .execute(&mut *tx)
            .await?;
        if error.is_none() {
            if let Some(reverts) = imp.request.get("revertsImport").and_then(Value::as_i64) {
                sqlx::query("UPDATE imports SET state = 'REVERTED', reverted_by = $1, updated_at = $2 WHERE account_id = $3 AND id = $4")
                    .bind(imp.id)
                    .bind(now)
                    .bind(imp.account_id)
                    .bind(reverts)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        Store::enqueue_outbox(
            &mut tx,
            imp.account_id,
            crate::OUTBOX_IMPORT_FINISHED,
            imp.id,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Marks an import started by its runner (`PROCESSING`) with the file's row count.
    pub async fn import_started(&self, imp: &Import, rows_total: i64) -> StoreResult<()> {
        let _w = self.lock_writes().await;
        sqlx::query("UPDATE imports SET state = 'PROCESSING', rows_total = $1, updated_at = $2 WHERE account_id = $3 AND id = $4 AND state IN ('STARTED', 'PROCESSING')")
            .bind(rows_total)
            .bind(now_ms())
            .bind(imp.account_id)
            .bind(imp.id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
