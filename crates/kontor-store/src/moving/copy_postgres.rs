//! The copy between two PostgreSQL cells: `COPY (SELECT …) TO STDOUT` in one snapshot of the
//! old cell, streamed as it comes into `COPY … FROM STDIN` of the new one, a few thousand rows
//! per transaction, each a [`super::MoveTx`] in all but name (it marks the token's row as
//! `move_tx` does, on a connection of its own). Rows are never decoded: the text format one
//! server writes is the one the other reads. Row by row through the engine-neutral driver the
//! copy ran at a fraction of the speed of a backup's export, which reads with `COPY` too.

use super::copy::{pending_keys, row_hash, ColType, Leave, Shape, TableDigest, Value, ValueRef};
use super::{superseded, Token};
use crate::{Store, StoreError, StoreResult};
use futures_util::StreamExt;
use sqlx::{Connection, Executor};
use std::borrow::Cow;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Rows written per transaction of the new cell.
const ROWS_PER_TX: usize = 5000;
/// Rows handed from the reader to the writer at a time.
const ROWS_PER_BLOCK: usize = 1000;

impl Store {
    /// Copies `account`'s rows of `tables` from this PostgreSQL cell into the PostgreSQL cell
    /// `to`, adding to `copied` as it goes. Returns the rows copied per table.
    pub(super) async fn copy_postgres_to_postgres(
        &self,
        to: &Store,
        account: i64,
        token: Token,
        tables: &[(&'static str, Vec<(String, ColType)>)],
        copied: &AtomicI64,
    ) -> StoreResult<Vec<(&'static str, i64)>> {
        let source = sqlx::PgConnection::connect(&self.url).await?;
        let target = sqlx::PgConnection::connect(&to.url).await?;
        let (send, blocks) = tokio::sync::mpsc::channel::<Block>(8);
        let (read, written) = tokio::join!(
            read(source, account, tables, send),
            write(target, account, token, tables, blocks, copied)
        );
        // The writer's failure makes the reader stop at its next send; report the cause.
        let counts = written?;
        read?;
        Ok(tables.iter().map(|(t, _)| *t).zip(counts).collect())
    }
}

/// Rows of one table (by its place in the list), in `COPY`'s text format, and how many.
type Block = (usize, Vec<u8>, usize);

/// Reads the rows of `tables` in one snapshot of `source`, sending them in blocks.
async fn read(
    mut source: sqlx::PgConnection,
    account: i64,
    tables: &[(&'static str, Vec<(String, ColType)>)],
    send: tokio::sync::mpsc::Sender<Block>,
) -> StoreResult<()> {
    let mut snapshot = source.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *snapshot)
        .await?;
    for (t, (table, cols)) in tables.iter().enumerate() {
        let sql = format!(
            "COPY (SELECT {} FROM {table} WHERE account_id = {account}) TO STDOUT",
            names(cols)
        );
        let mut stream = snapshot.copy_out_raw(&sql).await?;
        let mut block = Vec::with_capacity(1 << 20);
        let mut rows = 0;
        // The server sends each row as one message, whole.
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            rows += memchr::memchr_iter(b'\n', &chunk).count();
            block.extend_from_slice(&chunk);
            if rows >= ROWS_PER_BLOCK && block.ends_with(b"\n") {
                let full = std::mem::replace(&mut block, Vec::with_capacity(1 << 20));
                if send.send((t, full, rows)).await.is_err() {
                    return Ok(());
                }
                rows = 0;
            }
        }
        drop(stream);
        if !block.is_empty() && send.send((t, block, rows)).await.is_err() {
            return Ok(());
        }
    }
    drop(send);
    snapshot.commit().await?;
    Ok(())
}

/// Writes the blocks received into `target`, a few thousand rows per transaction of the move.
/// Returns the rows written per table.
async fn write(
    mut target: sqlx::PgConnection,
    account: i64,
    token: Token,
    tables: &[(&'static str, Vec<(String, ColType)>)],
    mut blocks: tokio::sync::mpsc::Receiver<Block>,
    copied: &AtomicI64,
) -> StoreResult<Vec<i64>> {
    let mut counts = vec![0i64; tables.len()];
    let mut in_tx = 0usize;
    while let Some((t, block, rows)) = blocks.recv().await {
        let (table, cols) = &tables[t];
        if in_tx == 0 {
            begin_move(&mut target, account, token).await?;
        }
        let sql = format!("COPY {table} ({}) FROM STDIN", names(cols));
        let mut copy = target.copy_in_raw(&sql).await?;
        copy.send(block).await?;
        copy.finish().await?;
        counts[t] += rows as i64;
        in_tx += rows;
        if in_tx >= ROWS_PER_TX {
            end_move(&mut target, account).await?;
            copied.fetch_add(in_tx as i64, Ordering::Relaxed);
            in_tx = 0;
        }
    }
    if in_tx > 0 {
        end_move(&mut target, account).await?;
        copied.fetch_add(in_tx as i64, Ordering::Relaxed);
    }
    Ok(counts)
}

/// Per table of `shapes`, the count and digest of `account`'s rows in the PostgreSQL cell at
/// `url`, as of one snapshot, leaving out the rows `leave` names: the same figures as the
/// portable digest, from `COPY`'s text instead of decoded rows.
pub(super) async fn digests(
    url: &str,
    shapes: &[Shape],
    account: i64,
    leave: Leave,
) -> StoreResult<Vec<TableDigest>> {
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let mut snapshot = conn.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *snapshot)
        .await?;
    let skip = match leave {
        Leave::Keys(keys) => keys,
        Leave::Waiting(send) => {
            let rows: Vec<(String, String)> =
                sqlx::query_as("SELECT tbl, row_key FROM move_log WHERE account_id = $1")
                    .bind(account)
                    .fetch_all(&mut *snapshot)
                    .await?;
            let keys = Arc::new(pending_keys(shapes, rows)?);
            let _ = send.send(keys.clone());
            keys
        }
    };
    let mut out = Vec::with_capacity(shapes.len());
    for shape in shapes {
        let sql = format!(
            "COPY (SELECT {} FROM {} WHERE account_id = {account}) TO STDOUT",
            names(&shape.cols),
            shape.table
        );
        let skipped = skip.get(shape.table).filter(|s| !s.is_empty());
        let mut stream = snapshot.copy_out_raw(&sql).await?;
        let (mut n, mut sum) = (0i64, 0u128);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            let mut fields: Vec<Cow<'_, [u8]>> = Vec::with_capacity(shape.cols.len());
            for line in chunk.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                fields.clear();
                for field in line.split(|b| *b == b'\t') {
                    fields.push(if field == b"\\N" {
                        Cow::Borrowed(field)
                    } else {
                        match crate::export::unescape_copy(field) {
                            Ok(Cow::Borrowed(t)) => Cow::Borrowed(t.as_bytes()),
                            Ok(Cow::Owned(t)) => Cow::Owned(t.into_bytes()),
                            Err(e) => {
                                return Err(StoreError::Config(format!("{}: {e}", shape.table)))
                            }
                        }
                    });
                }
                if fields.len() != shape.cols.len() {
                    return Err(StoreError::Config(format!(
                        "{}: a row of {} fields for {} columns",
                        shape.table,
                        fields.len(),
                        shape.cols.len()
                    )));
                }
                let values = fields
                    .iter()
                    .zip(&shape.cols)
                    .map(|(f, (name, ty))| value(f, *ty, name))
                    .collect::<StoreResult<Vec<_>>>()?;
                if let Some(skipped) = skipped {
                    let key: Vec<Value> = shape.key.iter().map(|&i| values[i].owned()).collect();
                    if skipped.contains(&key) {
                        continue;
                    }
                }
                n += 1;
                sum = sum.wrapping_add(row_hash(values.iter().copied()));
            }
        }
        drop(stream);
        out.push(TableDigest {
            table: shape.table,
            rows: n,
            digest: format!("{sum:032x}"),
        });
    }
    snapshot.commit().await?;
    Ok(out)
}

/// A field of `COPY`'s text (unescaped; `\N` is null) as a value of its column's type.
fn value<'a>(field: &'a [u8], ty: ColType, name: &str) -> StoreResult<ValueRef<'a>> {
    if field == b"\\N" {
        return Ok(ValueRef::Null);
    }
    match ty {
        ColType::Text => Ok(ValueRef::Text(field)),
        ColType::Int => std::str::from_utf8(field)
            .ok()
            .and_then(|t| t.parse().ok())
            .map(ValueRef::Int)
            .ok_or_else(|| StoreError::Config(format!("{name}: not an integer"))),
    }
}

fn names(cols: &[(String, ColType)]) -> String {
    cols.iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Begins a transaction of the move on `conn` as [`Store::move_tx`] does: the token's row is
/// marked (and locked) or the runner was superseded; and the fence lets the copy's rows
/// through (see [`super::COPY_SETTING`]). On an error the connection is dropped, which rolls
/// back.
async fn begin_move(conn: &mut sqlx::PgConnection, account: i64, token: Token) -> StoreResult<()> {
    conn.execute("BEGIN").await?;
    let n = sqlx::query("UPDATE move_tokens SET writing = 1 WHERE account_id = $1 AND token = $2")
        .bind(account)
        .bind(token.0)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if n != 1 {
        let held: Option<(i64,)> =
            sqlx::query_as("SELECT token FROM move_tokens WHERE account_id = $1")
                .bind(account)
                .fetch_optional(&mut *conn)
                .await?;
        return Err(superseded(account, token, held.map(|(t,)| t)));
    }
    // What the fence triggers would check of each row, once: the account arrives here (or is
    // unknown here, before the first move marks it). Then they let the copy's rows through.
    let state: Option<(String,)> =
        sqlx::query_as("SELECT state FROM account_fences WHERE account_id = $1")
            .bind(account)
            .fetch_optional(&mut *conn)
            .await?;
    if state.is_some_and(|(s,)| s != super::INCOMING) {
        return Err(crate::StoreError::Fenced(
            crate::error::FENCED_MESSAGE.into(),
        ));
    }
    sqlx::query("SELECT set_config($1, $2, true)")
        .bind(super::COPY_SETTING)
        .bind(account.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Ends it as [`super::MoveTx::commit`] does: the mark is undone, then the commit.
async fn end_move(conn: &mut sqlx::PgConnection, account: i64) -> StoreResult<()> {
    sqlx::query("UPDATE move_tokens SET writing = 0 WHERE account_id = $1")
        .bind(account)
        .execute(&mut *conn)
        .await?;
    conn.execute("COMMIT").await?;
    Ok(())
}
