//! The catch-up: while an account is copied out ([`super::Fence::Copying`]), the capture
//! triggers note the key of every row written in `move_log` (one entry per key, with a count
//! of writes); a round replays entries into the new cell, each key's rows as they are now.
//!
//! A round reads a key's rows after reading its entry, writes them to the new cell, reads them
//! back from there, and then deletes the entry only if its count is unchanged: a write that
//! commits after the rows were read bumps the count, so its entry stays for a later round.
//! Once the account is frozen no entry is added, and rounds run until none is left: each row
//! is then in the new cell as it is in the old one.

use super::copy::{bind_values, decode, insert_rows, row_hash, select_sql, Shape, Value};
use super::Token;
use crate::{Store, StoreError, StoreResult};

/// What one round of catch-up did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    /// Keys whose rows were carried over.
    pub replayed: usize,
    /// Keys still waiting (written again meanwhile, or beyond the round's limit).
    pub pending: i64,
}

impl Store {
    /// Keys of `account` written here since its copy began and not yet carried over.
    pub async fn pending_changes(&self, account: i64) -> StoreResult<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM move_log WHERE account_id = $1")
            .bind(account)
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    /// Carries up to `limit` captured writes of `account` over to `to` (see the module's
    /// documentation), each transaction in either cell checking `token`. Fails with
    /// [`StoreError::Config`] if the new cell does not read back what was written to it.
    pub async fn catch_up_to(
        &self,
        to: &Store,
        account: i64,
        token: Token,
        limit: i64,
    ) -> StoreResult<Round> {
        let shapes = self.shapes().await?;
        let entries: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT tbl, row_key, n FROM move_log WHERE account_id = $1 ORDER BY tbl, row_key LIMIT $2",
        )
        .bind(account)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        if entries.is_empty() {
            return Ok(Round::default());
        }
        // Each key's rows here, as they are now.
        let mut work: Vec<(&Shape, Vec<Value>, Vec<Vec<Value>>)> =
            Vec::with_capacity(entries.len());
        let mut conn = self.pool.acquire().await?;
        for (table, key, _) in &entries {
            let Some(shape) = shapes.iter().find(|s| s.table == table) else {
                // A table whose rows stay behind (notifications): nothing to carry over.
                if !super::account_tables().any(|t| t == table) {
                    return Err(StoreError::Config(format!(
                        "move_log names {table}, which holds no account's rows"
                    )));
                }
                continue;
            };
            let key = shape.parse_key(key)?;
            let rows = read_key(&mut conn, shape, account, &key).await?;
            work.push((shape, key, rows));
        }
        drop(conn);
        // Into the new cell, in one transaction, each key read back as written.
        let mut tx = to.move_tx(account, token).await?;
        for (shape, key, rows) in &work {
            let delete = format!("DELETE FROM {}{}", shape.table, shape.where_key());
            bind_key(sqlx::query(&delete), shape, account, key)
                .execute(&mut *tx)
                .await?;
            insert_rows(&mut tx, shape.table, &shape.cols, rows).await?;
            let back = read_key(&mut tx, shape, account, key).await?;
            if digest(&back) != digest(rows) {
                return Err(StoreError::Config(format!(
                    "{}: the new cell does not read back the rows written to it",
                    shape.table
                )));
            }
        }
        tx.commit().await?;
        // Entries whose count is unchanged are done.
        let mut tx = self.move_tx(account, token).await?;
        for (table, key, n) in &entries {
            sqlx::query("DELETE FROM move_log WHERE account_id = $1 AND tbl = $2 AND row_key = $3 AND n = $4")
                .bind(account)
                .bind(table)
                .bind(key)
                .bind(*n)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Round {
            replayed: entries.len(),
            pending: self.pending_changes(account).await?,
        })
    }
}

fn bind_key<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    shape: &Shape,
    account: i64,
    key: &'q [Value],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    bind_values(
        q.bind(account),
        key.iter().zip(shape.key.iter().map(|&i| shape.cols[i].1)),
    )
}

async fn read_key(
    conn: &mut sqlx::AnyConnection,
    shape: &Shape,
    account: i64,
    key: &[Value],
) -> StoreResult<Vec<Vec<Value>>> {
    let base = select_sql(shape.table, &shape.cols);
    let sql = format!(
        "{}{}",
        base.split(" WHERE ").next().unwrap_or(&base),
        shape.where_key()
    );
    let rows = bind_key(sqlx::query(&sql), shape, account, key)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(|r| decode(r, &shape.cols)).collect()
}

/// Rows' digest, whatever their order.
fn digest(rows: &[Vec<Value>]) -> (usize, u128) {
    (
        rows.len(),
        rows.iter().fold(0u128, |s, r| {
            s.wrapping_add(row_hash(r.iter().map(Value::as_ref)))
        }),
    )
}
