//! The copy between two SQLite cells, and the digests of a SQLite cell, through `rusqlite` on
//! a blocking thread. The copy moves the same rows as the portable one in `copy.rs`: read in
//! one read transaction of the old cell and written with one prepared statement of 64 rows
//! per table, in transactions of the new cell of about a tenth of a second each (each under
//! that store's single-writer lock), while a thread of its own checkpoints the new cell's
//! write-ahead log. sqlx's driver hands every row across a worker thread and copies it, which
//! made the portable copy and the comparison several times slower than a backup's export of
//! the same data.
use super::copy::{row_hash, ColType, Leave, Shape, TableDigest, ValueRef};
use super::{superseded, Token};
use crate::checkpoint::Checkpointer;
use crate::{Store, StoreError, StoreResult};
use rusqlite::OptionalExtension;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// How long one transaction of the new cell runs before it commits (and the cell's other
/// writers get their turn). Each commit writes every page the transaction touched to the
/// write-ahead log, and the secondary indexes (an association's target, a unique value's
/// record) are filled out of their order, so a page is written again at every commit that
/// touches it: at 1,000,000 contacts, transactions of 5,000 rows (about 30 ms) copied at
/// 204,000 rows/s and transactions of 20,000 (about 100 ms) at 235,000.
const TX_TIME: std::time::Duration = std::time::Duration::from_millis(100);
/// Rows between two looks at the clock (a multiple of `ROWS_PER_INSERT`).
const ROWS_PER_CLOCK: i64 = 256;
/// Rows per `INSERT` statement. Each run of a statement opens a cursor on the table and on each
/// of its indexes and compiles the row into a record; a statement of many rows keeps them open
/// across its rows. The rows are copied out of the read (a statement binds all its values
/// before it runs), which costs less than the cursors it saves.
const ROWS_PER_INSERT: usize = 64;

impl Store {
    /// Copies `account`'s rows of `tables` from this SQLite cell into the SQLite cell `to`,
    /// adding to `copied` as it goes. Returns the rows copied per table.
    pub(super) async fn copy_sqlite_to_sqlite(
        &self,
        to: &Store,
        account: i64,
        token: Token,
        tables: Vec<(&'static str, Vec<(String, ColType)>)>,
        copied: &AtomicI64,
    ) -> StoreResult<Vec<(&'static str, i64)>> {
        let from_path = sqlite_path(&self.url)?;
        let to_path = sqlite_path(&to.url)?;
        let lock = to.write_lock.clone();
        let progress = Arc::new(AtomicI64::new(0));
        let done = progress.clone();
        let mut task = tokio::task::spawn_blocking(move || {
            copy(
                &from_path,
                &to_path,
                account,
                token,
                &tables,
                lock.as_deref(),
                &done,
            )
        });
        // Progress is read from the thread's counter until it ends.
        let mut seen = 0;
        loop {
            tokio::select! {
                r = &mut task => {
                    let r = r.map_err(|e| StoreError::Config(format!("copy thread: {e}")))?;
                    copied.fetch_add(progress.load(Ordering::Relaxed) - seen, Ordering::Relaxed);
                    return r;
                }
                _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {
                    let now = progress.load(Ordering::Relaxed);
                    copied.fetch_add(now - seen, Ordering::Relaxed);
                    seen = now;
                }
            }
        }
    }
}

fn sqlite_path(url: &str) -> StoreResult<String> {
    crate::export::sqlite_path(url).map_err(|e| StoreError::Config(e.to_string()))
}

/// A read-only connection to the SQLite cell at `path`.
fn open_read(path: &str) -> StoreResult<rusqlite::Connection> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch("PRAGMA cache_size = -16384")?;
    Ok(conn)
}

/// Per table of `shapes`, the count and digest of `account`'s rows in the SQLite cell at
/// `path`, as of one read transaction, leaving out the rows `leave` names: the same figures as
/// the portable digest.
pub(super) fn digests(
    path: &str,
    shapes: &[Shape],
    account: i64,
    leave: Leave,
) -> StoreResult<Vec<TableDigest>> {
    let conn = open_read(path)?;
    conn.execute_batch("BEGIN")?;
    // The first read fixes the snapshot: the waiting keys and the rows are of one instant.
    let waiting = match leave.reads_waiting() {
        true => Some(
            conn.prepare(super::copy::WAITING_KEYS_SQL)?
                .query_map([account], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<(String, String)>, _>>()?,
        ),
        false => None,
    };
    let skip = leave.settle(shapes, waiting)?;
    let mut out = Vec::with_capacity(shapes.len());
    for shape in shapes {
        let names: Vec<&str> = shape.cols.iter().map(|(n, _)| n.as_str()).collect();
        let mut select = conn.prepare(&format!(
            "SELECT {} FROM {} WHERE account_id = ?1",
            names.join(", "),
            shape.table
        ))?;
        let skipped = skip.get(shape.table).filter(|s| !s.is_empty());
        let mut rows = select.query([account])?;
        let (mut n, mut sum) = (0i64, 0u128);
        while let Some(row) = rows.next()? {
            if let Some(skipped) = skipped {
                let key = shape
                    .key
                    .iter()
                    .map(|&i| value_ref(row, i, &shape.cols[i]).map(ValueRef::owned))
                    .collect::<StoreResult<Vec<_>>>()?;
                if skipped.contains(&key) {
                    continue;
                }
            }
            let mut bad = None;
            let hash = row_hash(shape.cols.iter().enumerate().map(|(i, col)| {
                value_ref(row, i, col).unwrap_or_else(|e| {
                    bad.get_or_insert(e);
                    ValueRef::Null
                })
            }));
            if let Some(e) = bad {
                return Err(e);
            }
            n += 1;
            sum = sum.wrapping_add(hash);
        }
        out.push(TableDigest {
            table: shape.table,
            rows: n,
            digest: format!("{sum:032x}"),
        });
    }
    conn.execute_batch("COMMIT")?;
    Ok(out)
}

/// Column `i` of `row`, which must be of the type the schema declares (or null).
fn value_ref<'a>(
    row: &'a rusqlite::Row<'_>,
    i: usize,
    (name, ty): &(String, ColType),
) -> StoreResult<ValueRef<'a>> {
    use rusqlite::types::ValueRef as V;
    match (row.get_ref(i)?, ty) {
        (V::Null, _) => Ok(ValueRef::Null),
        (V::Integer(v), ColType::Int) => Ok(ValueRef::Int(v)),
        (V::Text(t), ColType::Text) => Ok(ValueRef::Text(t)),
        (other, _) => Err(StoreError::Config(format!(
            "{name}: a value of type {} where the schema declares {ty:?}",
            other.data_type()
        ))),
    }
}

fn copy(
    from: &str,
    to: &str,
    account: i64,
    token: Token,
    tables: &[(&'static str, Vec<(String, ColType)>)],
    lock: Option<&tokio::sync::Mutex<()>>,
    progress: &AtomicI64,
) -> StoreResult<Vec<(&'static str, i64)>> {
    let source = open_read(from)?;
    source.execute_batch("BEGIN")?;
    let mut target = rusqlite::Connection::open(to)?;
    target.busy_timeout(std::time::Duration::from_secs(10))?;
    // 64 MiB of page cache, whatever the account's size: the secondary indexes (an
    // association's target, a unique value's record) are written out of their order, and with
    // 16 MiB a copy of a million associations spent a third more time re-reading their pages.
    target.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536;")?;
    // The write-ahead log is copied into the database by a thread of its own after each
    // commit, not by the commits of this one that find the log long (`checkpoint.rs`).
    target.execute_batch("PRAGMA wal_autocheckpoint = 0")?;
    let checkpoints = Checkpointer::start(to)
        .map_err(|e| StoreError::Config(format!("checkpoint thread: {e}")))?;
    // The fence triggers cost a third of the copy, row by row, and decide nothing for it: the
    // account is `incoming` here (or unknown, before the first move marks it) and this is the
    // move's own write, which they let through, and a cell that receives an account captures
    // nothing of it. Off on this connection only; each transaction below checks the same
    // thing once instead (`check_target`).
    target.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER,
        false,
    )?;
    let mut out = Vec::new();
    // The first read fixes the source's snapshot: every table below is read as of it.
    for (table, cols) in tables {
        let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
        let mut select = source.prepare(&format!(
            "SELECT {} FROM {table} WHERE account_id = ?1",
            names.join(", ")
        ))?;
        let insert = |rows: usize| {
            let one = |r: usize| {
                let marks: Vec<String> = (1..=cols.len())
                    .map(|i| format!("?{}", r * cols.len() + i))
                    .collect();
                format!("({})", marks.join(", "))
            };
            format!(
                "INSERT INTO {table} ({}) VALUES {}",
                names.join(", "),
                (0..rows).map(one).collect::<Vec<_>>().join(", ")
            )
        };
        let (single, multi) = (insert(1), insert(ROWS_PER_INSERT));
        let mut rows = select.query([account])?;
        let mut values: Vec<rusqlite::types::Value> =
            Vec::with_capacity(ROWS_PER_INSERT * cols.len());
        let mut n = 0i64;
        let mut more = true;
        while more {
            // One transaction of the new cell, under its writer lock.
            let _guard = lock.map(|l| l.blocking_lock());
            let began = std::time::Instant::now();
            let tx = target.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            check_target(&tx, account, token)?;
            let mut written = 0i64;
            {
                let mut many = tx.prepare_cached(&multi)?;
                let mut one = tx.prepare_cached(&single)?;
                loop {
                    let mut batch = 0;
                    while batch < ROWS_PER_INSERT {
                        let Some(row) = rows.next()? else {
                            more = false;
                            break;
                        };
                        for i in 0..cols.len() {
                            values.push(row.get_ref(i)?.into());
                        }
                        batch += 1;
                    }
                    if batch == ROWS_PER_INSERT {
                        for (i, v) in values.iter().enumerate() {
                            many.raw_bind_parameter(i + 1, v)?;
                        }
                        many.raw_execute()?;
                    } else {
                        for row in values.chunks(cols.len()) {
                            for (i, v) in row.iter().enumerate() {
                                one.raw_bind_parameter(i + 1, v)?;
                            }
                            one.raw_execute()?;
                        }
                    }
                    values.clear();
                    written += batch as i64;
                    if !more || (written % ROWS_PER_CLOCK == 0 && began.elapsed() >= TX_TIME) {
                        break;
                    }
                }
            }
            tx.execute(
                "UPDATE move_tokens SET writing = 0 WHERE account_id = ?1",
                [account],
            )?;
            tx.commit()?;
            checkpoints.request();
            n += written;
            progress.fetch_add(written, Ordering::Relaxed);
        }
        out.push((*table, n));
    }
    source.execute_batch("COMMIT")?;
    Ok(out)
}

/// What the fence triggers would check of the copy's writes, once per transaction: `token`
/// holds the account here (marked as writing, as a `MoveTx` does: a runner that lost the move
/// stops at its next transaction, even though this thread outlives the task that started it),
/// and the account is not fenced here as the side it moves out of.
fn check_target(tx: &rusqlite::Transaction<'_>, account: i64, token: Token) -> StoreResult<()> {
    if tx.execute(super::MARK_TOKEN_SQL, [account, token.0])? != 1 {
        let held: Option<i64> = tx
            .query_row(super::HELD_TOKEN_SQL, [account], |r| r.get(0))
            .optional()?;
        return Err(superseded(account, token, held));
    }
    let state: Option<String> = tx
        .query_row(super::FENCE_STATE_SQL, [account], |r| r.get(0))
        .optional()?;
    super::copy_may_write(state.as_deref())
}
