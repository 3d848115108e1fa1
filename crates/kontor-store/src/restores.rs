//! Restores: property values put back from a backup (or, for a revert, from the values a restore
//! replaced), as an import whose rows are record ids and target values.
//!
//! A plan is computed once and pinned to the change-log sequence it saw. Applying it compares
//! each record's present values with that sequence: a value someone changed after the plan is a
//! conflict and stays as it is, unless the plan is applied with "overwrite newer changes". Each
//! change a restore makes enters the change log with source `RESTORE`, the import's id, and the
//! value it replaced (`prior`), which is what a revert puts back.

use crate::imports::{commit_progress, record_errors, BatchOutcome, Import, Rejected, RowError};
use crate::jobs::Job;
use crate::objects::ObjectType;
use crate::{allocate, Store, StoreError, StoreResult};
use kontor_domain::time::{iso, now_ms};
use kontor_domain::ChangeSource;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

mod batch;
mod postgres;
pub(crate) mod sqlite;
pub(crate) use batch::{Batch, Decided, Gone, Inputs, Write};
pub use batch::{OwnChanges, PreparedBatch};

/// How long a reviewed plan may be applied.
pub const PLAN_TTL_MS: i64 = 24 * 3600 * 1000;

pub const PLAN_RESTORE: &str = "restore";
pub const PLAN_REVERT: &str = "revert";

#[derive(Debug, Clone, PartialEq)]
pub struct RestorePlan {
    pub account_id: i64,
    pub id: i64,
    /// `restore` (from a backup) or `revert` (of a finished restore).
    pub kind: String,
    pub backup_id: Option<i64>,
    pub reverts_import: Option<i64>,
    /// The object type's id.
    pub object_type: String,
    pub properties: Vec<String>,
    /// The change-log sequence the plan was computed at.
    pub seq: i64,
    /// Counts and samples, as the review shows them.
    pub summary: Value,
    pub created_by: Option<i64>,
    pub created_by_name: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// The import that applied the plan.
    pub import_id: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewPlan<'a> {
    pub kind: &'a str,
    pub backup_id: Option<i64>,
    pub reverts_import: Option<i64>,
    pub object_type: &'a str,
    pub properties: &'a [String],
    pub seq: i64,
    pub summary: &'a Value,
    pub created_by: Option<i64>,
    pub created_by_name: &'a str,
}

type PlanRow = (
    i64,
    i64,
    String,
    Option<i64>,
    Option<i64>,
    String,
    String,
    i64,
    String,
    Option<i64>,
    String,
    i64,
    i64,
    Option<i64>,
);
const PLAN_COLS: &str = "account_id, id, kind, backup_id, reverts_import, object_type, properties, seq, summary, created_by, created_by_name, created_at, expires_at, import_id";

fn plan_from(r: PlanRow) -> StoreResult<RestorePlan> {
    Ok(RestorePlan {
        account_id: r.0,
        id: r.1,
        kind: r.2,
        backup_id: r.3,
        reverts_import: r.4,
        object_type: r.5,
        properties: serde_json::from_str(&r.6)?,
        seq: r.7,
        summary: serde_json::from_str(&r.8)?,
        created_by: r.9,
        created_by_name: r.10,
        created_at: r.11,
        expires_at: r.12,
        import_id: r.13,
    })
}

/// One record of a restore: the values to put back, in the order of the restore's properties
/// (`None` clears), and for a revert the values the restore left (anything else there now was
/// changed since, a conflict).
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreItem {
    pub id: i64,
    pub target: Vec<Option<String>>,
    pub expected: Option<Vec<Option<String>>>,
    /// Positions of properties this record leaves as they are.
    pub skip: Vec<usize>,
}

/// A change a restore made, as a revert reads it back.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreChange {
    pub seq: i64,
    pub record_id: i64,
    /// What the restore wrote.
    pub set: BTreeMap<String, Option<String>>,
    /// What it replaced.
    pub prior: BTreeMap<String, Option<String>>,
}

/// How a restore applies: which properties, pinned where, and whether newer changes yield.
#[derive(Debug, Clone)]
pub struct RestoreSpec {
    pub properties: Vec<String>,
    pub plan_seq: i64,
    pub overwrite_newer: bool,
}

impl Store {
    pub async fn create_restore_plan(
        &self,
        account: i64,
        new: &NewPlan<'_>,
    ) -> StoreResult<RestorePlan> {
        let now = now_ms();
        let mut tx = self.write().await?;
        let id = allocate(&mut tx, account, "restore_plan", 1).await?;
        sqlx::query("INSERT INTO restore_plans (account_id, id, kind, backup_id, reverts_import, object_type, properties, seq, summary, created_by, created_by_name, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)")
            .bind(account)
            .bind(id)
            .bind(new.kind)
            .bind(new.backup_id)
            .bind(new.reverts_import)
            .bind(new.object_type)
            .bind(serde_json::to_string(new.properties)?)
            .bind(new.seq)
            .bind(new.summary.to_string())
            .bind(new.created_by)
            .bind(new.created_by_name)
            .bind(now)
            .bind(now + PLAN_TTL_MS)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.restore_plan(account, id)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("restore plan {id}")))
    }

    pub async fn restore_plan(&self, account: i64, id: i64) -> StoreResult<Option<RestorePlan>> {
        let row: Option<PlanRow> = sqlx::query_as(&format!(
            "SELECT {PLAN_COLS} FROM restore_plans WHERE account_id = $1 AND id = $2"
        ))
        .bind(account)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(plan_from).transpose()
    }

    /// The changes a restore made, in sequence order, from `after_seq` on.
    pub async fn restore_changes(
        &self,
        imp: &Import,
        after_seq: i64,
        limit: usize,
    ) -> StoreResult<Vec<RestoreChange>> {
        let (Some(first), Some(last)) = (imp.first_seq, imp.last_seq) else {
            return Ok(Vec::new());
        };
        let rows: Vec<(i64, i64, String, Option<String>)> = sqlx::query_as("SELECT seq, record_id, props, prior FROM changes WHERE account_id = $1 AND seq >= $2 AND seq <= $3 AND seq > $4 AND source = 'RESTORE' AND source_id = $5 AND kind = 'set' ORDER BY seq LIMIT $6")
            .bind(imp.account_id)
            .bind(first)
            .bind(last)
            .bind(after_seq)
            .bind(imp.id.to_string())
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|(seq, record_id, set, prior)| {
                Ok(RestoreChange {
                    seq,
                    record_id,
                    set: serde_json::from_str(&set)?,
                    prior: match prior {
                        Some(p) => serde_json::from_str(&p)?,
                        None => BTreeMap::new(),
                    },
                })
            })
            .collect()
    }

    /// Reads and decides one batch of a restore, outside any write transaction, so that it can
    /// run while the batch before it is written. The decisions hold while nothing but this
    /// restore enters the change log; [`Store::commit_restore_batch`] checks that, and decides
    /// the batch again inside its transaction when something else did.
    #[allow(clippy::too_many_arguments)]
    pub async fn prepare_restore_batch(
        &self,
        imp: &Import,
        job: &Job,
        owner: &str,
        ot: &ObjectType,
        spec: &RestoreSpec,
        unique: &[bool],
        items: Vec<RestoreItem>,
        first_line: i64,
        rows_done: i64,
    ) -> StoreResult<PreparedBatch> {
        let batch = Batch {
            imp: imp.clone(),
            job_id: job.id,
            owner: owner.to_string(),
            type_id: ot.type_id.clone(),
            singular: ot.singular.clone(),
            last_modified: ot.last_modified.clone(),
            spec: spec.clone(),
            unique: unique.to_vec(),
            items,
            first_line,
            rows_done,
        };
        let (batch, (decided, snap)) = if self.dialect == crate::Dialect::Sqlite {
            let conns = self.sqlite_restore.clone();
            let url = self.url.clone();
            let (b, prepared) = tokio::task::spawn_blocking(move || {
                let prepared = conns.prepare(&url, &batch);
                (batch, prepared)
            })
            .await
            .map_err(|e| StoreError::Config(format!("restore reader thread: {e}")))?;
            (b, prepared?)
        } else {
            let prepared = self.prepare_pg(&batch).await?;
            (batch, prepared)
        };
        Ok(PreparedBatch {
            batch,
            decided,
            snap,
        })
    }

    /// Writes a prepared batch in one transaction (see the module's notes). `None` when the
    /// runner lost the lease or the restore was canceled: nothing was applied. `own` follows
    /// the change-log entries this restore wrote, batch after batch.
    pub async fn commit_restore_batch(
        &self,
        p: PreparedBatch,
        own: &mut OwnChanges,
    ) -> StoreResult<Option<BatchOutcome>> {
        if self.dialect == crate::Dialect::Sqlite {
            // SQLite through its C API on a blocking thread (see `restores/sqlite.rs`), under
            // the store's single-writer lock like every other write.
            let guard = match &self.write_lock {
                Some(m) => Some(m.clone().lock_owned().await),
                None => None,
            };
            let conns = self.sqlite_restore.clone();
            let url = self.url.clone();
            let mut mine = own.clone();
            let (out, mine) = tokio::task::spawn_blocking(move || {
                let _guard = guard;
                let out = conns.commit(&url, &p.batch, (p.decided, p.snap), &mut mine);
                (out, mine)
            })
            .await
            .map_err(|e| StoreError::Config(format!("restore writer thread: {e}")))?;
            *own = mine;
            return out;
        }
        self.commit_pg(p, own).await
    }
}
