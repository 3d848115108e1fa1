//! The copy between two SQLite cells, through `rusqlite` on a blocking thread: the same rows
//! as the portable copy in `copy.rs`, read in one read transaction of the old cell and written
//! with one prepared statement per table, a few thousand rows per transaction of the new cell
//! (each under that store's single-writer lock). sqlx's driver hands every row across a worker
//! thread and binds it anew, which made the portable copy ten times slower than a backup's
//! export of the same data.

use super::copy::ColType;
use super::{superseded, Token};
use crate::{Store, StoreError, StoreResult};
use rusqlite::types::Value;
use rusqlite::OptionalExtension;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Rows written per transaction of the new cell.
const ROWS_PER_TX: usize = 5000;

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

fn copy(
    from: &str,
    to: &str,
    account: i64,
    token: Token,
    tables: &[(&'static str, Vec<(String, ColType)>)],
    lock: Option<&tokio::sync::Mutex<()>>,
    progress: &AtomicI64,
) -> StoreResult<Vec<(&'static str, i64)>> {
    let source = rusqlite::Connection::open_with_flags(
        from,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    source.busy_timeout(std::time::Duration::from_secs(10))?;
    source.execute_batch("PRAGMA cache_size = -16384; BEGIN")?;
    let mut target = rusqlite::Connection::open(to)?;
    target.busy_timeout(std::time::Duration::from_secs(10))?;
    target.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA cache_size = -16384;")?;
    let mut out = Vec::new();
    // The first read fixes the source's snapshot: every table below is read as of it.
    for (table, cols) in tables {
        let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
        let mut select = source.prepare(&format!(
            "SELECT {} FROM {table} WHERE account_id = ?1",
            names.join(", ")
        ))?;
        let insert = format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            names.join(", "),
            (1..=cols.len())
                .map(|i| format!("?{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut rows = select.query([account])?;
        let mut n = 0i64;
        let mut row_values: Vec<Value> = Vec::with_capacity(cols.len());
        loop {
            // One transaction of the new cell, under its writer lock.
            let _guard = lock.map(|l| l.blocking_lock());
            let tx = target.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            // A `MoveTx`, here: a runner that lost the move stops at its next transaction, even
            // though this thread outlives the task that started it.
            if tx.execute(
                "UPDATE move_tokens SET writing = 1 WHERE account_id = ?1 AND token = ?2",
                [account, token.0],
            )? != 1
            {
                let held: Option<i64> = tx
                    .query_row(
                        "SELECT token FROM move_tokens WHERE account_id = ?1",
                        [account],
                        |r| r.get(0),
                    )
                    .optional()?;
                return Err(superseded(account, token, held));
            }
            let mut written = 0usize;
            {
                let mut ins = tx.prepare_cached(&insert)?;
                while written < ROWS_PER_TX {
                    let Some(row) = rows.next()? else { break };
                    row_values.clear();
                    for i in 0..cols.len() {
                        row_values.push(row.get::<_, Value>(i)?);
                    }
                    ins.execute(rusqlite::params_from_iter(row_values.iter()))?;
                    written += 1;
                }
            }
            tx.execute(
                "UPDATE move_tokens SET writing = 0 WHERE account_id = ?1",
                [account],
            )?;
            tx.commit()?;
            n += written as i64;
            progress.fetch_add(written as i64, Ordering::Relaxed);
            if written < ROWS_PER_TX {
                break;
            }
        }
        out.push((*table, n));
    }
    source.execute_batch("COMMIT")?;
    Ok(out)
}
