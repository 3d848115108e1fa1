//! A restore batch on SQLite, through `rusqlite` on blocking threads: the same reads and writes
//! as the portable path in `restores.rs`, with prepared statements one row at a time. sqlx's
//! SQLite driver hands every statement and row across a worker thread, which cost a restore of
//! a million records more than the writes themselves (see docs/architecture.md).
//!
//! Three connections, each on its own thread while a restore runs:
//! - the reader reads and decides the next batch, in a read transaction, while
//! - the writer writes the batch before it (the caller holds the store's single-writer lock),
//!   checking first that nothing but this restore entered the change log since the reader's
//!   snapshot (else it decides the batch again inside its own transaction);
//! - the checkpointer (`checkpoint.rs`) copies the write-ahead log back into the database
//!   after each commit; the writer does not checkpoint.

use super::{Batch, Decided, Gone, Inputs, OwnChanges};
use crate::checkpoint::Checkpointer;
use crate::imports::{BatchOutcome, Rejected};
use crate::{StoreError, StoreResult};
use kontor_domain::time::now_ms;
use kontor_domain::ChangeSource;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The restore connections, opened on first use and kept for the store's life.
#[derive(Clone, Default)]
pub(crate) struct Connections {
    writer: Arc<Mutex<Option<Connection>>>,
    reader: Arc<Mutex<Option<Connection>>>,
    /// The checkpointer thread; dropping the last store drops it, and the thread ends.
    checkpoints: Arc<Mutex<Option<Checkpointer>>>,
}

fn open(url: &str) -> StoreResult<Connection> {
    let path = crate::export::sqlite_path(url).map_err(|e| StoreError::Config(e.to_string()))?;
    let conn = Connection::open(&path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // A 64 MiB page cache, and reads through a memory map: a restore touches the records, the
    // change log and two indexes, more than SQLite's default 2 MiB holds, and copying pages in
    // from the kernel cost more than the writes.
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -65536; PRAGMA mmap_size = 1073741824;",
    )?;
    Ok(conn)
}

/// Runs `f` on the connection in `slot`, opening it first if needed. A connection that failed
/// mid-way is not reused.
fn with<T>(
    slot: &Mutex<Option<Connection>>,
    url: &str,
    setup: &str,
    f: impl FnOnce(&mut Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
    if slot.is_none() {
        let conn = open(url)?;
        conn.execute_batch(setup)?;
        *slot = Some(conn);
    }
    let result = f(slot.as_mut().expect("opened"));
    if result.is_err() {
        *slot = None;
    }
    result
}

impl Connections {
    /// The reader's part: the batch's inputs and decisions, and the change log's sequence they
    /// were read at.
    pub(crate) fn prepare(&self, url: &str, b: &Batch) -> StoreResult<(Decided, i64)> {
        with(&self.reader, url, "PRAGMA query_only = ON;", |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
            let snap = change_seq(&tx, b.imp.account_id)?;
            let inputs = read_inputs(&tx, b, snap)?;
            tx.commit()?;
            Ok((b.decide(inputs, now_ms())?, snap))
        })
    }

    /// The writer's part. `None` when the runner lost the lease or the import ended.
    pub(crate) fn commit(
        &self,
        url: &str,
        b: &Batch,
        prepared: (Decided, i64),
        own: &mut OwnChanges,
    ) -> StoreResult<Option<BatchOutcome>> {
        let result = with(
            &self.writer,
            url,
            "PRAGMA wal_autocheckpoint = 0;",
            |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let (mut d, snap) = prepared;
                let now = change_seq(&tx, b.imp.account_id)?;
                if !own.still_valid(b, snap, now) {
                    d = b.decide(read_inputs(&tx, b, now)?, now_ms())?;
                }
                let Some(seqs) = write(&tx, b, &d)? else {
                    // Dropping the transaction rolls the batch back.
                    return Ok(None);
                };
                tx.commit()?;
                if let Some(s) = seqs {
                    own.push(s);
                }
                Ok(Some(d.out))
            },
        );
        self.checkpoint_soon(url);
        result
    }

    /// Asks the checkpointer thread (started on first use) for a passive checkpoint.
    fn checkpoint_soon(&self, url: &str) {
        let mut slot = self.checkpoints.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            let started = crate::export::sqlite_path(url)
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|path| Checkpointer::start(&path));
            match started {
                Ok(c) => *slot = Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "could not start the checkpoint thread");
                    return;
                }
            }
        }
        if slot.as_ref().is_some_and(|c| !c.request()) {
            // The thread ended: the next commit starts another.
            *slot = None;
        }
    }
}

/// The account's last change-log sequence.
fn change_seq(conn: &Connection, account: i64) -> StoreResult<i64> {
    Ok(conn
        .prepare_cached("SELECT value FROM counters WHERE account_id = ?1 AND name = 'change'")?
        .query_row(params![account], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Takes `n` values from an account's counter, returning the first.
fn allocate(tx: &rusqlite::Transaction, account: i64, name: &str, n: i64) -> StoreResult<i64> {
    tx.prepare_cached(
        "INSERT INTO counters (account_id, name, value) VALUES (?1, ?2, 0) ON CONFLICT (account_id, name) DO NOTHING",
    )?
    .execute(params![account, name])?;
    let last: i64 = tx
        .prepare_cached(
            "UPDATE counters SET value = value + ?1 WHERE account_id = ?2 AND name = ?3 RETURNING value",
        )?
        .query_row(params![n, account, name], |r| r.get(0))?;
    Ok(last - n + 1)
}

/// What the batch's decisions depend on, read on `conn` (inside a transaction).
/// `seq` is the change log's last sequence, read in the same transaction.
fn read_inputs(conn: &Connection, b: &Batch, seq: i64) -> StoreResult<Inputs> {
    let account = b.imp.account_id;
    let source_id = b.imp.id.to_string();
    // The batch's records and their changes since the plan, each read with one range scan
    // (restore batches come in ascending id order) rather than a lookup per record.
    let ids = b.ids();
    let wanted: std::collections::HashSet<i64> = ids.iter().copied().collect();
    let (lo, hi) = (
        ids.iter().copied().min().unwrap_or(0),
        ids.iter().copied().max().unwrap_or(-1),
    );
    let mut current: HashMap<i64, String> = HashMap::with_capacity(ids.len());
    let mut rowids: HashMap<i64, i64> = HashMap::with_capacity(ids.len());
    {
        let mut q = conn.prepare_cached(
            "SELECT id, props, rowid FROM records WHERE account_id = ?1 AND object_type = ?2 AND archived = 0 AND id BETWEEN ?3 AND ?4",
        )?;
        let mut rows = q.query(params![account, b.type_id, lo, hi])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            if wanted.contains(&id) {
                current.insert(id, r.get(1)?);
                rowids.insert(id, r.get(2)?);
            }
        }
    }
    let mut newer: Vec<(i64, String, String)> = Vec::new();
    let restored: i64 = conn
        .prepare_cached("SELECT updated_count FROM imports WHERE account_id = ?1 AND id = ?2")?
        .query_row(params![account, b.imp.id], |r| r.get(0))?;
    if b.others_since_plan(seq, restored) {
        let mut q = conn.prepare_cached(
            "SELECT record_id, props, source FROM changes WHERE account_id = ?1 AND record_id BETWEEN ?2 AND ?3 AND seq > ?4 AND kind = 'set' AND NOT (source = 'RESTORE' AND source_id = ?5)",
        )?;
        let mut rows = q.query(params![account, lo, hi, b.spec.plan_seq, source_id])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            if wanted.contains(&id) {
                newer.push((id, r.get(1)?, r.get(2)?));
            }
        }
    }
    let mut holders: HashMap<(usize, String), i64> = HashMap::new();
    {
        let mut q = conn.prepare_cached(
            "SELECT record_id FROM unique_values WHERE account_id = ?1 AND object_type = ?2 AND property = ?3 AND value = ?4",
        )?;
        for (k, wanted) in b.unique_wanted() {
            for v in wanted {
                if let Some(id) = q
                    .query_row(params![account, b.type_id, b.spec.properties[k], v], |r| {
                        r.get::<_, i64>(0)
                    })
                    .optional()?
                {
                    holders.insert((k, v), id);
                }
            }
        }
    }
    let mut gone = HashMap::new();
    for id in ids.iter().filter(|id| !current.contains_key(id)) {
        let erased: Option<String> = conn
            .prepare_cached("SELECT value FROM erased WHERE account_id = ?1 AND kind = 'record' AND object_type = ?2 AND value = ?3")?
            .query_row(params![account, b.type_id, id.to_string()], |r| r.get(0))
            .optional()?;
        let merged: Option<i64> = conn
            .prepare_cached("SELECT record_id FROM unique_values WHERE account_id = ?1 AND object_type = ?2 AND property = ?3 AND value = ?4")?
            .query_row(
                params![account, b.type_id, kontor_domain::object_type::MERGED_IDS, id.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        match (erased, merged) {
            (Some(_), _) => gone.insert(*id, Gone::Erased),
            (None, Some(into)) => gone.insert(*id, Gone::MergedInto(into)),
            _ => None,
        };
    }
    Ok(Inputs {
        current,
        rowids,
        newer,
        holders,
        gone,
    })
}

/// Writes a decided batch: records, unique values, change log, rejected rows and progress.
/// `None` when the runner lost the lease or the import ended (the caller rolls back); else the
/// change-log sequences written, if any.
fn write(
    tx: &rusqlite::Transaction,
    b: &Batch,
    d: &Decided,
) -> StoreResult<Option<Option<(i64, i64)>>> {
    let account = b.imp.account_id;
    let source_id = b.imp.id.to_string();
    {
        let mut del = tx.prepare_cached(
            "DELETE FROM unique_values WHERE account_id = ?1 AND object_type = ?2 AND property = ?3 AND record_id = ?4",
        )?;
        let mut ins = tx.prepare_cached(
            "INSERT INTO unique_values (account_id, object_type, property, value, record_id) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (id, k, v) in &d.unique_moves {
            let name = &b.spec.properties[*k];
            del.execute(params![account, b.type_id, name, id])?;
            if let Some(v) = v {
                ins.execute(params![account, b.type_id, name, v, id])?;
            }
        }
    }
    {
        // By the rowid the reader found the record at, which spares a lookup in the primary
        // key's index per record; by the key if the row has moved since (a VACUUM renumbers).
        let mut at = tx.prepare_cached(
            "UPDATE records SET props = ?1, updated_at = ?2 WHERE rowid = ?5 AND account_id = ?3 AND id = ?4",
        )?;
        let mut up = tx.prepare_cached(
            "UPDATE records SET props = ?1, updated_at = ?2 WHERE account_id = ?3 AND id = ?4",
        )?;
        for w in &d.writes {
            let done = match w.rowid {
                Some(rowid) => at.execute(params![w.doc, d.now, account, w.id, rowid])?,
                None => 0,
            };
            if done == 0 {
                up.execute(params![w.doc, d.now, account, w.id])?;
            }
        }
    }
    let mut seqs = None;
    if !d.writes.is_empty() {
        let first = allocate(tx, account, "change", d.writes.len() as i64)?;
        seqs = Some((first, first + d.writes.len() as i64 - 1));
        // Several rows a statement: SQLite's cost per statement, not per row, dominates here.
        // What all rows share is bound once (?1 to ?6), four values per row after that.
        const ROWS: usize = 50;
        let insert = |n: usize| {
            let rows: Vec<String> = (0..n)
                .map(|r| {
                    let p = 7 + 4 * r;
                    format!(
                        "(?1, ?{}, ?2, ?{}, 'set', ?{}, ?3, ?4, ?5, ?6, ?{})",
                        p,
                        p + 1,
                        p + 2,
                        p + 3
                    )
                })
                .collect();
            format!(
                "INSERT INTO changes (account_id, seq, object_type, record_id, kind, props, source, source_id, actor_user_id, at, prior) VALUES {}",
                rows.join(", ")
            )
        };
        let source = ChangeSource::Restore.as_str();
        let full = insert(ROWS);
        for (c, chunk) in d.writes.chunks(ROWS).enumerate() {
            let mut stmt = if chunk.len() == ROWS {
                tx.prepare_cached(&full)?
            } else {
                tx.prepare_cached(&insert(chunk.len()))?
            };
            let seqs: Vec<i64> = (0..chunk.len())
                .map(|i| first + (c * ROWS + i) as i64)
                .collect();
            let mut p: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(6 + chunk.len() * 4);
            p.extend_from_slice(&[
                &account,
                &b.type_id,
                &source,
                &source_id,
                &b.imp.created_by,
                &d.now,
            ]);
            for (i, w) in chunk.iter().enumerate() {
                p.extend_from_slice(&[&seqs[i], &w.id, &w.changes, &w.prior]);
            }
            stmt.execute(p.as_slice())?;
        }
    }
    record_errors(tx, b, &d.errors)?;
    if !commit_progress(tx, b, &d.out, seqs)? {
        return Ok(None);
    }
    Ok(Some(seqs))
}

fn record_errors(tx: &rusqlite::Transaction, b: &Batch, errors: &[Rejected]) -> StoreResult<()> {
    if errors.is_empty() {
        return Ok(());
    }
    let account = b.imp.account_id;
    let first = allocate(
        tx,
        account,
        &format!("import_error:{}", b.imp.id),
        errors.len() as i64,
    )?;
    let now = now_ms();
    let mut ins = tx.prepare_cached(
        "INSERT INTO import_errors (account_id, import_id, id, line, record_id, error_type, message, property, invalid_value, row_data, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    for (i, (line, record_id, e, data)) in errors.iter().enumerate() {
        ins.execute(params![
            account,
            b.imp.id,
            first + i as i64,
            line,
            record_id,
            e.error_type,
            e.message,
            e.property,
            e.invalid_value,
            serde_json::to_string(data)?,
            now
        ])?;
    }
    Ok(())
}

/// As `imports::commit_progress`: `false` if the runner lost the lease or the import ended.
fn commit_progress(
    tx: &rusqlite::Transaction,
    b: &Batch,
    out: &BatchOutcome,
    seqs: Option<(i64, i64)>,
) -> StoreResult<bool> {
    let now = now_ms();
    let account = b.imp.account_id;
    let held = tx
        .prepare_cached("UPDATE jobs SET progress_done = ?1, updated_at = ?2 WHERE account_id = ?3 AND id = ?4 AND state = 'running' AND lease_owner = ?5")?
        .execute(params![b.rows_done, now, account, b.job_id, b.owner])?;
    if held != 1 {
        return Ok(false);
    }
    let (first, last) = seqs.map_or((None, None), |(a, z)| (Some(a), Some(z)));
    let n = tx
        .prepare_cached("UPDATE imports SET state = 'PROCESSING', rows_done = ?1, created_count = created_count + ?2, updated_count = updated_count + ?3, unchanged_count = unchanged_count + ?4, error_count = error_count + ?5, conflict_count = conflict_count + ?6, first_seq = COALESCE(first_seq, ?7), last_seq = COALESCE(?8, last_seq), updated_at = ?9 WHERE account_id = ?10 AND id = ?11 AND state IN ('STARTED', 'PROCESSING')")?
        .execute(params![
            b.rows_done,
            out.created,
            out.updated,
            out.unchanged,
            out.errors,
            out.conflicts,
            first,
            last,
            now,
            account,
            b.imp.id
        ])?;
    Ok(n == 1)
}
