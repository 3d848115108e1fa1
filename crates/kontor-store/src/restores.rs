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
            // SQLite through its C API on a blocking thread (see `restores_sqlite.rs`), under
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

    /// PostgreSQL: the reads in one read-only snapshot, with the change log's sequence.
    async fn prepare_pg(&self, b: &Batch) -> StoreResult<(Decided, i64)> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let snap = change_seq_pg(&mut tx, b.imp.account_id, false).await?;
        let inputs = read_inputs_pg(&mut tx, b, snap).await?;
        tx.commit().await?;
        Ok((b.decide(inputs, now_ms())?, snap))
    }

    /// PostgreSQL: a few set-based statements. The records are written first, which locks
    /// their rows, then the unique values, then the change-log counter's row is locked: the
    /// order every writer takes them in, so that a restore and a user's edit of the same record
    /// cannot deadlock. From then on no other change can commit before this batch does. If one
    /// committed since the batch was read, the writes are rolled back to a savepoint; the
    /// batch's rows and the counter are locked, and the batch is read, decided and written
    /// again, now with nothing able to change under it.
    async fn commit_pg(
        &self,
        p: PreparedBatch,
        own: &mut OwnChanges,
    ) -> StoreResult<Option<BatchOutcome>> {
        let b = &p.batch;
        let account = b.imp.account_id;
        let mut tx = self.write().await?;
        let mut d = p.decided;
        sqlx::query("SAVEPOINT restore_batch")
            .execute(&mut *tx)
            .await?;
        let mut locked = false;
        let mut sep;
        loop {
            sep = separable(&d);
            write_records_pg(&mut tx, b, &d, sep).await?;
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
            let now_seq = change_seq_pg(&mut tx, account, true).await?;
            if locked || own.still_valid(b, p.snap, now_seq) {
                break;
            }
            sqlx::query("ROLLBACK TO SAVEPOINT restore_batch")
                .execute(&mut *tx)
                .await?;
            sqlx::query("SELECT id FROM records WHERE account_id = $1 AND id IN (SELECT unnest(CAST(string_to_array($2, ',') AS BIGINT[]))) ORDER BY id FOR UPDATE")
                .bind(account)
                .bind(listed(b.ids().into_iter()))
                .execute(&mut *tx)
                .await?;
            let seq = change_seq_pg(&mut tx, account, true).await?;
            d = b.decide(read_inputs_pg(&mut tx, b, seq).await?, now_ms())?;
            locked = true;
        }
        let mut seqs = None;
        if !d.writes.is_empty() {
            let first = allocate(&mut tx, account, "change", d.writes.len() as i64).await?;
            seqs = Some((first, first + d.writes.len() as i64 - 1));
            write_changes_pg(&mut tx, b, &d, first, sep).await?;
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
        if let Some(s) = seqs {
            own.push(s);
        }
        Ok(Some(d.out))
    }
}

/// PostgreSQL: how a batch's columns travel. sqlx's engine-neutral driver binds no arrays, so
/// they travel as text split on the server with `string_to_array`: ids and sequences joined by
/// commas, documents and entries by the ASCII unit separator (U+001F), which JSON never holds
/// raw (control characters are escaped in JSON strings). Should a value hold it all the same,
/// the batch travels as one JSON array (`json_to_recordset`, three times the server's parsing).
const SEP: char = '\u{1f}';

fn separable(d: &Decided) -> bool {
    d.writes
        .iter()
        .all(|w| !(w.doc.contains(SEP) || w.changes.contains(SEP) || w.prior.contains(SEP)))
}

/// One text field of every write, joined by U+001F.
fn joined<'a>(d: &'a Decided, f: impl Fn(&'a Write) -> &'a str) -> String {
    let mut out = String::with_capacity(d.writes.iter().map(|w| f(w).len() + 1).sum());
    for (i, w) in d.writes.iter().enumerate() {
        if i > 0 {
            out.push(SEP);
        }
        out.push_str(f(w));
    }
    out
}

/// Numbers joined by commas.
fn listed(values: impl Iterator<Item = i64>) -> String {
    values.map(|v| v.to_string()).collect::<Vec<_>>().join(",")
}

/// PostgreSQL: the records' new documents, in one statement over `unnest`.
async fn write_records_pg(
    tx: &mut sqlx::AnyConnection,
    b: &Batch,
    d: &Decided,
    separable: bool,
) -> StoreResult<()> {
    if d.writes.is_empty() {
        return Ok(());
    }
    let q = if separable {
        sqlx::query("UPDATE records SET props = u.doc, updated_at = $2 FROM unnest(CAST(string_to_array($3, ',') AS BIGINT[]), string_to_array($4, chr(31))) AS u(id, doc) WHERE records.account_id = $1 AND records.id = u.id")
            .bind(b.imp.account_id)
            .bind(d.now)
            .bind(listed(d.writes.iter().map(|w| w.id)))
            .bind(joined(d, |w| &w.doc))
    } else {
        let rows: Vec<Value> = d
            .writes
            .iter()
            .map(|w| serde_json::json!({"id": w.id, "doc": w.doc}))
            .collect();
        sqlx::query("UPDATE records SET props = u.doc, updated_at = $2 FROM json_to_recordset(CAST($3 AS JSON)) AS u(id BIGINT, doc TEXT) WHERE records.account_id = $1 AND records.id = u.id")
            .bind(b.imp.account_id)
            .bind(d.now)
            .bind(serde_json::to_string(&rows)?)
    };
    q.execute(&mut *tx).await?;
    Ok(())
}

/// PostgreSQL: the batch's change-log entries, with sequences from `first_seq` on.
async fn write_changes_pg(
    tx: &mut sqlx::AnyConnection,
    b: &Batch,
    d: &Decided,
    first_seq: i64,
    separable: bool,
) -> StoreResult<()> {
    let log = "INSERT INTO changes (account_id, seq, object_type, record_id, kind, props, source, source_id, actor_user_id, at, prior) SELECT $1, u.seq, $2, u.id, 'set', u.changes, $3, $4, $5, $6, u.prior FROM";
    let seq = |i: usize| first_seq + i as i64;
    let sql = if separable {
        format!("{log} unnest(CAST(string_to_array($7, ',') AS BIGINT[]), CAST(string_to_array($8, ',') AS BIGINT[]), string_to_array($9, chr(31)), string_to_array($10, chr(31))) AS u(id, seq, changes, prior)")
    } else {
        format!("{log} json_to_recordset(CAST($7 AS JSON)) AS u(id BIGINT, seq BIGINT, changes TEXT, prior TEXT)")
    };
    let mut q = sqlx::query(&sql)
        .bind(b.imp.account_id)
        .bind(&b.type_id)
        .bind(ChangeSource::Restore.as_str())
        .bind(b.imp.id.to_string())
        .bind(b.imp.created_by)
        .bind(d.now);
    if separable {
        q = q
            .bind(listed(d.writes.iter().map(|w| w.id)))
            .bind(listed((0..d.writes.len()).map(seq)))
            .bind(joined(d, |w| &w.changes))
            .bind(joined(d, |w| &w.prior));
    } else {
        let rows: Vec<serde_json::Value> = d
            .writes
            .iter()
            .enumerate()
            .map(|(i, w)| serde_json::json!({"id": w.id, "seq": seq(i), "changes": w.changes, "prior": w.prior}))
            .collect();
        q = q.bind(serde_json::to_string(&rows)?);
    }
    q.execute(&mut *tx).await?;
    Ok(())
}

/// The account's last change-log sequence; with `lock`, the counter's row stays locked until
/// the transaction ends.
async fn change_seq_pg(
    conn: &mut sqlx::AnyConnection,
    account: i64,
    lock: bool,
) -> StoreResult<i64> {
    if lock {
        sqlx::query("INSERT INTO counters (account_id, name, value) VALUES ($1, 'change', 0) ON CONFLICT (account_id, name) DO NOTHING")
            .bind(account)
            .execute(&mut *conn)
            .await?;
    }
    let sql = if lock {
        "SELECT value FROM counters WHERE account_id = $1 AND name = 'change' FOR UPDATE"
    } else {
        "SELECT value FROM counters WHERE account_id = $1 AND name = 'change'"
    };
    let v: Option<(i64,)> = sqlx::query_as(sql)
        .bind(account)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(v.map_or(0, |v| v.0))
}

/// PostgreSQL: what a batch's decisions depend on. For the newer changes the ids travel as an
/// array literal (`{1,2,3}`) and each one is looked up by index. Left to itself the planner may
/// read all changes since the plan (this restore's own among them) once per batch: `seq + 0`
/// keeps it from reading `seq > plan` off the primary key.
/// `seq` is the change log's last sequence, read in the same snapshot.
async fn read_inputs_pg(
    conn: &mut sqlx::AnyConnection,
    b: &Batch,
    seq: i64,
) -> StoreResult<Inputs> {
    let account = b.imp.account_id;
    // The batch's records with one range scan of the type's index (restore batches come in
    // ascending id order), fewer pages than a look-up per record.
    let wanted: HashSet<i64> = b.ids().into_iter().collect();
    let (lo, hi) = (
        wanted.iter().copied().min().unwrap_or(0),
        wanted.iter().copied().max().unwrap_or(-1),
    );
    let current: HashMap<i64, String> = sqlx::query_as(
        "SELECT id, props FROM records WHERE account_id = $1 AND object_type = $2 AND archived = 0 AND id BETWEEN $3 AND $4",
    )
    .bind(account)
    .bind(&b.type_id)
    .bind(lo)
    .bind(hi)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .filter(|(id, _): &(i64, String)| wanted.contains(id))
    .collect();
    let (restored,): (i64,) =
        sqlx::query_as("SELECT updated_count FROM imports WHERE account_id = $1 AND id = $2")
            .bind(account)
            .bind(b.imp.id)
            .fetch_one(&mut *conn)
            .await?;
    let newer: Vec<(i64, String, String)> = if !b.others_since_plan(seq, restored) {
        Vec::new()
    } else {
        let ids = format!(
            "{{{}}}",
            b.ids()
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        sqlx::query_as(
            "SELECT c.record_id, c.props, c.source FROM unnest(CAST($2 AS BIGINT[])) AS w(id) JOIN LATERAL (SELECT record_id, props, source, source_id, kind FROM changes WHERE account_id = $1 AND record_id = w.id AND seq + 0 > $3) c ON true WHERE c.kind = 'set' AND NOT (c.source = 'RESTORE' AND c.source_id = $4)",
        )
        .bind(account)
        .bind(&ids)
        .bind(b.spec.plan_seq)
        .bind(b.imp.id.to_string())
        .fetch_all(&mut *conn)
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
        .fetch_all(&mut *conn)
        .await?;
        for (value, record_id) in rows {
            holders.insert((k, value), record_id);
        }
    }
    let mut gone = HashMap::new();
    for id in b.ids().into_iter().filter(|id| !current.contains_key(id)) {
        let erased: Option<(String,)> = sqlx::query_as("SELECT value FROM erased WHERE account_id = $1 AND kind = 'record' AND object_type = $2 AND value = $3")
            .bind(account)
            .bind(&b.type_id)
            .bind(id.to_string())
            .fetch_optional(&mut *conn)
            .await?;
        let merged: Option<(i64,)> = sqlx::query_as("SELECT record_id FROM unique_values WHERE account_id = $1 AND object_type = $2 AND property = $3 AND value = $4")
            .bind(account)
            .bind(&b.type_id)
            .bind(kontor_domain::object_type::MERGED_IDS)
            .bind(id.to_string())
            .fetch_optional(&mut *conn)
            .await?;
        match (erased, merged) {
            (Some(_), _) => gone.insert(id, Gone::Erased),
            (None, Some((into,))) => gone.insert(id, Gone::MergedInto(into)),
            _ => None,
        };
    }
    Ok(Inputs {
        current,
        rowids: HashMap::new(),
        newer,
        holders,
        gone,
    })
}

/// A batch read and decided, waiting to be written.
pub struct PreparedBatch {
    batch: Batch,
    decided: Decided,
    /// The change log's last sequence when the batch was read.
    snap: i64,
}

impl std::fmt::Debug for PreparedBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedBatch")
            .field("first_line", &self.batch.first_line)
            .field("records", &self.batch.items.len())
            .field("snap", &self.snap)
            .finish()
    }
}

/// The change-log sequences a restore has written so far (the last few batches' ranges).
#[derive(Debug, Clone, Default)]
pub struct OwnChanges {
    ranges: Vec<(i64, i64)>,
}

impl OwnChanges {
    pub(crate) fn push(&mut self, range: (i64, i64)) {
        // A batch is read at most one commit before it is written: a few ranges suffice.
        if self.ranges.len() == 8 {
            self.ranges.remove(0);
        }
        self.ranges.push(range);
    }

    /// Whether decisions read at change-log sequence `snap` still hold at `now`: nothing
    /// entered the change log since, or only this restore's own entries, for other records
    /// (batches never share a record). With a unique property, the restore's own entries
    /// also count: an earlier batch may have taken or freed a value this one wants.
    pub(crate) fn still_valid(&self, b: &Batch, snap: i64, now: i64) -> bool {
        self.only_ours(b.unique.iter().any(|u| *u), snap, now)
    }

    fn only_ours(&self, unique: bool, snap: i64, now: i64) -> bool {
        if now == snap {
            return true;
        }
        if now < snap || unique {
            return false;
        }
        let covered: i64 = self
            .ranges
            .iter()
            .map(|&(lo, hi)| (hi.min(now) - lo.max(snap + 1) + 1).max(0))
            .sum();
        covered == now - snap
    }
}

/// What a batch's decisions depend on.
pub(crate) struct Inputs {
    /// The live records' documents.
    pub current: HashMap<i64, String>,
    /// SQLite: the live records' rowids.
    pub rowids: HashMap<i64, i64>,
    /// The change-log entries after the plan: record, changed properties, source.
    pub newer: Vec<(i64, String, String)>,
    /// The holders of the unique values the batch puts back.
    pub holders: HashMap<(usize, String), i64>,
    /// Records of the batch that are gone for a reason a restore must respect.
    pub gone: HashMap<i64, Gone>,
}

/// Why a record of a restore is no longer there, beyond a plain delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gone {
    /// Erased by a GDPR delete: never restored, and its backed-up values are not kept either
    /// (not even in the restore's error rows).
    Erased,
    /// Merged into another record.
    MergedInto(i64),
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
    /// SQLite: where the record was read (its rowid), to update it without the key lookup.
    pub rowid: Option<i64>,
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

    /// Whether anything but this restore may have entered the change log since the plan, seen
    /// at change-log sequence `seq` when the restore had written `restored` entries (its
    /// import's `updated_count`, committed with them). Each sequence is taken by exactly one
    /// entry, so when the sequences since the plan are all the restore's own, nobody else
    /// changed a value and the per-record look-ups for newer changes are skipped. An overwrite
    /// does not look at newer changes at all.
    pub(crate) fn others_since_plan(&self, seq: i64, restored: i64) -> bool {
        !self.spec.overwrite_newer && seq - self.spec.plan_seq != restored
    }

    /// Decides each record: changes (with conflicts left alone), or why it is not restored.
    pub(crate) fn decide(&self, inputs: Inputs, now: i64) -> StoreResult<Decided> {
        let Inputs {
            current,
            rowids,
            newer,
            holders,
            gone,
        } = inputs;
        let spec = &self.spec;
        let now_iso = iso(now);
        let mut changed_after: HashMap<(i64, usize), &str> = HashMap::new();
        for (id, props, source) in &newer {
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
                let (message, row) = match gone.get(&item.id) {
                    Some(Gone::Erased) => (
                        format!("{} {} was erased by a GDPR delete; it is not restored, and its values are not kept", self.singular, item.id),
                        vec![item.id.to_string()],
                    ),
                    Some(Gone::MergedInto(into)) => (
                        format!("{} {} was merged into {into} after the backup; it was not restored", self.singular, item.id),
                        data(item),
                    ),
                    None => (
                        format!("{} {} no longer exists (deleted after the backup); it was not restored: bring it back from the recycle bin, or with an import that gives its record ID", self.singular, item.id),
                        data(item),
                    ),
                };
                errors.push((
                    line,
                    Some(item.id),
                    RowError::new("OBJECT_NOT_FOUND", message),
                    row,
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
            // Borrowed from the item and the document: a record costs three allocations, the
            // new document and its two change-log texts.
            let mut changes: BTreeMap<&str, Option<&str>> = BTreeMap::new();
            let mut prior: BTreeMap<&str, Option<&str>> = BTreeMap::new();
            let mut conflicts = Vec::new();
            for (k, name) in spec.properties.iter().enumerate() {
                if item.skip.contains(&k) {
                    continue;
                }
                let target = item.target.get(k).and_then(|v| v.as_deref());
                let now_value = present[k].as_deref();
                if now_value == target {
                    continue;
                }
                let moved = item
                    .expected
                    .as_ref()
                    .is_some_and(|e| e.get(k).and_then(|v| v.as_deref()) != now_value);
                let after = changed_after.get(&(item.id, k));
                if !spec.overwrite_newer && (moved || after.is_some()) {
                    let by = after.map(|s| format!(" (by {s})")).unwrap_or_default();
                    conflicts.push(format!(
                        "{name} was changed after the plan was reviewed{by}; it is now {:?} and was left as it is",
                        now_value.unwrap_or("")
                    ));
                    continue;
                }
                changes.insert(name, target);
                prior.insert(name, now_value);
            }
            // A unique value now held by another record: the record is left as it is.
            let mut taken = None;
            for (k, name) in spec.properties.iter().enumerate() {
                if !self.unique.get(k).copied().unwrap_or(false) {
                    continue;
                }
                if let Some(Some(v)) = changes.get(name.as_str()) {
                    let key = (k, unique_key(v));
                    let other = holders.get(&key).is_some_and(|h| *h != item.id);
                    if other || claimed.contains(&key) {
                        taken = Some((name.clone(), v.to_string(), holders.get(&key).copied()));
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
                    if let Some(v) = changes.get(name.as_str()) {
                        let key = v.map(unique_key);
                        if let Some(key) = &key {
                            claimed.insert((k, key.clone()));
                        }
                        unique_moves.push((item.id, k, key));
                    }
                }
            }
            changes.insert(&self.last_modified, Some(&now_iso));
            // `changes` is ordered by name, as the splice needs.
            let set: Vec<(&str, Option<&str>)> = changes.iter().map(|(k, v)| (*k, *v)).collect();
            let doc = crate::export::splice_props(doc, &set)?;
            out.updated += 1;
            writes.push(Write {
                id: item.id,
                rowid: rowids.get(&item.id).copied(),
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

#[cfg(test)]
mod tests {
    use super::OwnChanges;

    #[test]
    fn decisions_hold_while_only_the_restore_wrote() {
        let mut own = OwnChanges::default();
        assert!(own.only_ours(false, 10, 10), "nothing written since");
        assert!(!own.only_ours(false, 10, 11), "someone else wrote seq 11");
        own.push((11, 20));
        assert!(own.only_ours(false, 10, 20), "only the restore's batch");
        assert!(
            !own.only_ours(true, 10, 20),
            "a unique property: own writes count"
        );
        assert!(!own.only_ours(false, 10, 21), "seq 21 is someone else's");
        own.push((22, 30));
        assert!(
            !own.only_ours(false, 10, 30),
            "seq 21 lies between the restore's batches"
        );
        assert!(own.only_ours(false, 21, 30));
        assert!(!own.only_ours(false, 12, 11), "a sequence never goes back");
    }
}
