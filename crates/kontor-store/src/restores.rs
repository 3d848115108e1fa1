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

    /// Applies one batch of a restore in one transaction (see the module's notes). `None` when
    /// the runner lost the lease or the restore was canceled: nothing was applied.
    #[allow(clippy::too_many_arguments)]
    pub async fn restore_batch(
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
    ) -> StoreResult<Option<BatchOutcome>> {
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
        if self.dialect == crate::Dialect::Sqlite {
            // SQLite through its C API on a blocking thread (see `restores_sqlite.rs`), under
            // the store's single-writer lock like every other write.
            let guard = match &self.write_lock {
                Some(m) => Some(m.clone().lock_owned().await),
                None => None,
            };
            let writer = self.sqlite_writer.clone();
            let url = self.url.clone();
            return tokio::task::spawn_blocking(move || {
                let _guard = guard;
                crate::restores_sqlite::apply(&writer, &url, &batch)
            })
            .await
            .map_err(|e| StoreError::Config(format!("restore batch thread: {e}")))?;
        }
        self.restore_batch_pg(&batch).await
    }

    /// PostgreSQL: a few set-based statements per batch. The batch's rows travel as one JSON
    /// text parameter each (`json_to_recordset`), as arrays would with `unnest`: sqlx's
    /// engine-neutral driver binds no arrays.
    async fn restore_batch_pg(&self, b: &Batch) -> StoreResult<Option<BatchOutcome>> {
        let account = b.imp.account_id;
        let source_id = b.imp.id.to_string();
        let mut tx = self.write().await?;
        // The ids as an array literal: `{1,2,3}`. Each statement walks them and looks each one
        // up by index; left to itself the planner may scan the account's records, or all
        // changes since the plan (this restore's own among them) once per batch: `seq + 0`
        // keeps it from reading `seq > plan` off the primary key.
        let ids = format!(
            "{{{}}}",
            b.ids()
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );

        let current: HashMap<i64, String> = sqlx::query_as(
            "SELECT r.id, r.props FROM unnest(CAST($3 AS BIGINT[])) AS w(id) JOIN LATERAL (SELECT id, props FROM records WHERE account_id = $1 AND id = w.id AND object_type = $2 AND archived = 0) r ON true",
        )
        .bind(account)
        .bind(&b.type_id)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        let newer: Vec<(i64, String, String)> = if b.spec.overwrite_newer {
            Vec::new()
        } else {
            sqlx::query_as(
                "SELECT c.record_id, c.props, c.source FROM unnest(CAST($2 AS BIGINT[])) AS w(id) JOIN LATERAL (SELECT record_id, props, source, source_id, kind FROM changes WHERE account_id = $1 AND record_id = w.id AND seq + 0 > $3) c ON true WHERE c.kind = 'set' AND NOT (c.source = 'RESTORE' AND c.source_id = $4)",
            )
            .bind(account)
            .bind(&ids)
            .bind(b.spec.plan_seq)
            .bind(&source_id)
            .fetch_all(&mut *tx)
            .await?
        };
        let mut holders: HashMap<(usize, String), i64> = HashMap::new();
        for (k, wanted) in b.unique_wanted() {
            let rows: Vec<(String, i64)> = sqlx::query_as(
                "SELECT value, record_id FROM unique_values WHERE account_id = $1 AND object_type = $2 AND property = $3 AND value IN (SELECT json_array_elements_text(CAST($4 AS JSON)))",
            )
            .bind(account)
            .bind(&b.type_id)
            .bind(&b.spec.properties[k])
            .bind(serde_json::to_string(&wanted)?)
            .fetch_all(&mut *tx)
            .await?;
            for (value, record_id) in rows {
                holders.insert((k, value), record_id);
            }
        }
        let d = b.decide(current, &newer, &holders, now_ms())?;

        for (id, k, v) in &d.unique_moves {
            let name = &b.spec.properties[*k];
            sqlx::query("DELETE FROM unique_values WHERE account_id = $1 AND object_type = $2 AND property = $3 AND record_id = $4")
                .bind(account)
                .bind(&b.type_id)
                .bind(name)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if let Some(v) = v {
                sqlx::query("INSERT INTO unique_values (account_id, object_type, property, value, record_id) VALUES ($1, $2, $3, $4, $5)")
                    .bind(account)
                    .bind(&b.type_id)
                    .bind(name)
                    .bind(v)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let mut seqs = None;
        if !d.writes.is_empty() {
            #[derive(serde::Serialize)]
            struct Row<'a> {
                id: i64,
                seq: i64,
                doc: &'a str,
                changes: &'a str,
                prior: &'a str,
            }
            let first = allocate(&mut tx, account, "change", d.writes.len() as i64).await?;
            seqs = Some((first, first + d.writes.len() as i64 - 1));
            let rows: Vec<Row> = d
                .writes
                .iter()
                .enumerate()
                .map(|(i, w)| Row {
                    id: w.id,
                    seq: first + i as i64,
                    doc: &w.doc,
                    changes: &w.changes,
                    prior: &w.prior,
                })
                .collect();
            let rows = serde_json::to_string(&rows)?;
            // One statement: the rows are parsed once, and both writes travel together.
            sqlx::query("WITH u AS (SELECT * FROM json_to_recordset(CAST($7 AS JSON)) AS x(id BIGINT, seq BIGINT, doc TEXT, changes TEXT, prior TEXT)), w AS (UPDATE records SET props = u.doc, updated_at = $6 FROM u WHERE records.account_id = $1 AND records.id = u.id) INSERT INTO changes (account_id, seq, object_type, record_id, kind, props, source, source_id, actor_user_id, at, prior) SELECT $1, u.seq, $2, u.id, 'set', u.changes, $3, $4, $5, $6, u.prior FROM u")
                .bind(account)
                .bind(&b.type_id)
                .bind(ChangeSource::Restore.as_str())
                .bind(&source_id)
                .bind(b.imp.created_by)
                .bind(d.now)
                .bind(&rows)
                .execute(&mut *tx)
                .await?;
        }
        record_errors(&mut tx, &b.imp, &d.errors).await?;
        if !commit_progress(
            &mut tx,
            &b.imp,
            b.job_id,
            &b.owner,
            &d.out,
            b.rows_done,
            seqs,
        )
        .await?
        {
            return Ok(None);
        }
        tx.commit().await?;
        Ok(Some(d.out))
    }
}

/// One batch of a restore, owned so that it can move to a blocking thread.
#[derive(Debug, Clone)]
pub(crate) struct Batch {
    pub imp: Import,
    pub job_id: i64,
    pub owner: String,
    pub type_id: String,
    pub singular: String,
    pub last_modified: String,
    pub spec: RestoreSpec,
    pub unique: Vec<bool>,
    pub items: Vec<RestoreItem>,
    pub first_line: i64,
    pub rows_done: i64,
}

/// A record's new state, as the batch writes it.
pub(crate) struct Write {
    pub id: i64,
    /// The whole properties document.
    pub doc: String,
    /// The change-log entry: changed properties, and the values they replaced.
    pub changes: String,
    pub prior: String,
}

/// What a batch does, decided from what the database holds.
pub(crate) struct Decided {
    pub now: i64,
    pub writes: Vec<Write>,
    /// Unique-value index moves: record, property position, new value (normalized key).
    pub unique_moves: Vec<(i64, usize, Option<String>)>,
    pub errors: Vec<Rejected>,
    pub out: BatchOutcome,
}

fn unique_key(v: &str) -> String {
    v.trim().to_lowercase()
}

impl Batch {
    pub(crate) fn ids(&self) -> Vec<i64> {
        self.items.iter().map(|i| i.id).collect()
    }

    /// The unique values the batch puts back, per property position.
    pub(crate) fn unique_wanted(&self) -> Vec<(usize, Vec<String>)> {
        (0..self.spec.properties.len())
            .filter(|k| self.unique.get(*k).copied().unwrap_or(false))
            .map(|k| {
                let wanted = self
                    .items
                    .iter()
                    .filter_map(|i| i.target.get(k).cloned().flatten())
                    .map(|v| unique_key(&v))
                    .collect();
                (k, wanted)
            })
            .collect()
    }

    /// Decides each record: changes (with conflicts left alone), or why it is not restored.
    /// `current` holds the live records' documents, `newer` the change-log entries after the
    /// plan (record, changed properties, source), `holders` the unique values' holders.
    pub(crate) fn decide(
        &self,
        current: HashMap<i64, String>,
        newer: &[(i64, String, String)],
        holders: &HashMap<(usize, String), i64>,
        now: i64,
    ) -> StoreResult<Decided> {
        let spec = &self.spec;
        let now_iso = iso(now);
        let mut changed_after: HashMap<(i64, usize), &str> = HashMap::new();
        for (id, props, source) in newer {
            let props: BTreeMap<String, Value> = serde_json::from_str(props)?;
            for (k, name) in spec.properties.iter().enumerate() {
                if props.contains_key(name) {
                    changed_after.insert((*id, k), source);
                }
            }
        }
        let mut out = BatchOutcome::default();
        let mut errors: Vec<Rejected> = Vec::new();
        let mut writes = Vec::new();
        let mut unique_moves = Vec::new();
        let mut claimed: HashSet<(usize, String)> = HashSet::new();
        let data = |item: &RestoreItem| -> Vec<String> {
            std::iter::once(item.id.to_string())
                .chain(item.target.iter().map(|v| v.clone().unwrap_or_default()))
                .collect()
        };
        for (n, item) in self.items.iter().enumerate() {
            let line = self.first_line + n as i64;
            let Some(doc) = current.get(&item.id) else {
                errors.push((
                    line,
                    Some(item.id),
                    RowError::new(
                        "OBJECT_NOT_FOUND",
                        format!("{} {} no longer exists (deleted after the backup); it was not restored: bring it back from the recycle bin, or with an import that gives its record ID", self.singular, item.id),
                    ),
                    data(item),
                ));
                continue;
            };
            // The restored properties' present values, borrowed from the document.
            let mut present: Vec<Option<std::borrow::Cow<str>>> = vec![None; spec.properties.len()];
            crate::export::for_each_prop(doc, |k, v| {
                if let Some(at) = spec.properties.iter().position(|p| *p == *k) {
                    present[at] = Some(v);
                }
            })?;
            let mut changes = BTreeMap::new();
            let mut prior = BTreeMap::new();
            let mut conflicts = Vec::new();
            for (k, name) in spec.properties.iter().enumerate() {
                if item.skip.contains(&k) {
                    continue;
                }
                let target = item.target.get(k).cloned().flatten();
                let now_value = present[k].as_deref().map(str::to_string);
                if now_value == target {
                    continue;
                }
                let moved = item
                    .expected
                    .as_ref()
                    .is_some_and(|e| e.get(k).cloned().flatten() != now_value);
                let after = changed_after.get(&(item.id, k));
                if !spec.overwrite_newer && (moved || after.is_some()) {
                    let by = after.map(|s| format!(" (by {s})")).unwrap_or_default();
                    conflicts.push(format!(
                        "{name} was changed after the plan was reviewed{by}; it is now {:?} and was left as it is",
                        now_value.as_deref().unwrap_or("")
                    ));
                    continue;
                }
                changes.insert(name.clone(), target);
                prior.insert(name.clone(), now_value);
            }
            // A unique value now held by another record: the record is left as it is.
            let mut taken = None;
            for (k, name) in spec.properties.iter().enumerate() {
                if !self.unique.get(k).copied().unwrap_or(false) {
                    continue;
                }
                if let Some(Some(v)) = changes.get(name) {
                    let key = (k, unique_key(v));
                    let other = holders.get(&key).is_some_and(|h| *h != item.id);
                    if other || claimed.contains(&key) {
                        taken = Some((name.clone(), v.clone(), holders.get(&key).copied()));
                    }
                }
            }
            if let Some((name, v, holder)) = taken {
                let mut e = RowError::new(
                    "DUPLICATE_VALUE",
                    format!(
                        "{name} {v:?} is used by {} {} now; the property requires unique values, so this record was not restored",
                        self.singular,
                        holder.map_or_else(|| "another record".into(), |h| h.to_string())
                    ),
                );
                e.property = Some(name);
                e.invalid_value = Some(v);
                errors.push((line, Some(item.id), e, data(item)));
                continue;
            }
            if !conflicts.is_empty() {
                out.conflicts += 1;
                errors.push((
                    line,
                    Some(item.id),
                    RowError::new("CONFLICT", conflicts.join("; ")),
                    data(item),
                ));
            }
            if changes.is_empty() {
                if conflicts.is_empty() {
                    out.unchanged += 1;
                }
                continue;
            }
            for (k, name) in spec.properties.iter().enumerate() {
                if self.unique.get(k).copied().unwrap_or(false) {
                    if let Some(v) = changes.get(name) {
                        let key = v.as_deref().map(unique_key);
                        if let Some(key) = &key {
                            claimed.insert((k, key.clone()));
                        }
                        unique_moves.push((item.id, k, key));
                    }
                }
            }
            changes.insert(self.last_modified.clone(), Some(now_iso.clone()));
            // `changes` is ordered by name, as the splice needs.
            let set: Vec<(&str, Option<&str>)> = changes
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_deref()))
                .collect();
            let doc = crate::export::splice_props(doc, &set)?;
            out.updated += 1;
            writes.push(Write {
                id: item.id,
                doc,
                changes: serde_json::to_string(&changes)?,
                prior: serde_json::to_string(&prior)?,
            });
        }
        out.errors = errors.len() as i64 - out.conflicts;
        Ok(Decided {
            now,
            writes,
            unique_moves,
            errors,
            out,
        })
    }
}
