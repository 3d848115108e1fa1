//! The copy between two PostgreSQL cells: `COPY (SELECT …) TO STDOUT` in one snapshot of the
//! old cell, streamed as it comes into `COPY … FROM STDIN` of the new one, a few thousand rows
//! per transaction, each a [`super::MoveTx`] in all but name (it marks the token's row as
//! `move_tx` does, on a connection of its own). Rows are never decoded: the text format one
//! server writes is the one the other reads. Row by row through the engine-neutral driver the
//! copy ran at a fraction of the speed of a backup's export, which reads with `COPY` too.
//!
//! Several lanes copy at once, table by table from a shared list, as `pg_dump --jobs` does:
//! the first transaction exports its snapshot and each lane's reader imports it, so that every
//! table is read as of the same instant. A lane's `COPY … FROM` keeps one server process of the
//! new cell busy (its index upkeep is most of the copy's work); one lane left the other cores
//! idle.

use super::copy::{row_hash, ColType, Leave, Shape, TableDigest, Value, ValueRef};
use super::{superseded, Token};
use crate::{Store, StoreError, StoreResult};
use futures_util::StreamExt;
use sqlx::{Connection, Executor};
use std::borrow::Cow;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

/// Rows written per transaction of the new cell.
const ROWS_PER_TX: usize = 5000;
/// Rows handed from the reader to the writer at a time: one `COPY` statement each.
const ROWS_PER_BLOCK: usize = 5000;
/// Lanes at most: each takes a server process in either cell.
const MAX_LANES: usize = 4;

type Tables = [(&'static str, Vec<(String, ColType)>)];

impl Store {
    /// Copies `account`'s rows of `tables` from this PostgreSQL cell into the PostgreSQL cell
    /// `to`, adding to `copied` as it goes. Returns the rows copied per table.
    pub(super) async fn copy_postgres_to_postgres(
        &self,
        to: &Store,
        account: i64,
        token: Token,
        tables: &Tables,
        copied: &AtomicI64,
    ) -> StoreResult<Vec<(&'static str, i64)>> {
        // The snapshot every lane reads, held open until they are done.
        let mut leader = sqlx::PgConnection::connect(&self.url).await?;
        leader
            .execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await?;
        let (snapshot,): (String,) = sqlx::query_as("SELECT pg_export_snapshot()")
            .fetch_one(&mut leader)
            .await?;
        let lanes = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_LANES)
            .min(tables.len().max(1));
        // The largest tables first: the lanes then end together, rather than one copying the
        // largest alone at the end (counted in the snapshot, by the account's index).
        let mut sizes = Vec::with_capacity(tables.len());
        for (t, (table, _)) in tables.iter().enumerate() {
            let (n,): (i64,) = sqlx::query_as(&format!(
                "SELECT COUNT(*) FROM {table} WHERE account_id = $1"
            ))
            .bind(account)
            .fetch_one(&mut leader)
            .await?;
            sizes.push((n, t));
        }
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        let order: Vec<usize> = sizes.into_iter().map(|(_, t)| t).collect();
        let next = AtomicUsize::new(0);
        let lane = |_| async {
            let mut source = sqlx::PgConnection::connect(&self.url).await?;
            source
                .execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .await?;
            sqlx::query(&format!("SET TRANSACTION SNAPSHOT '{}'", quote(&snapshot)?))
                .execute(&mut source)
                .await?;
            let target = sqlx::PgConnection::connect(&to.url).await?;
            let (send, blocks) = tokio::sync::mpsc::channel::<Block>(8);
            let (read, written) = tokio::join!(
                read(source, account, tables, (&order, &next), send),
                write(target, account, token, tables, blocks, copied)
            );
            // The writer's failure makes the reader stop at its next send; report the cause.
            let counts = written?;
            read?;
            StoreResult::Ok(counts)
        };
        let per_lane = futures_util::future::try_join_all((0..lanes).map(lane)).await?;
        leader.execute("COMMIT").await?;
        let mut counts = vec![0i64; tables.len()];
        for lane in per_lane {
            for (sum, n) in counts.iter_mut().zip(lane) {
                *sum += n;
            }
        }
        Ok(tables.iter().map(|(t, _)| *t).zip(counts).collect())
    }
}

/// A snapshot's name as the server gave it, checked to be what such names are made of.
fn quote(snapshot: &str) -> StoreResult<&str> {
    if snapshot.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        Ok(snapshot)
    } else {
        Err(StoreError::Config(format!(
            "unexpected snapshot name {snapshot:?}"
        )))
    }
}

/// Rows of one table (by its place in the list), in `COPY`'s text format, and how many.
type Block = (usize, Vec<u8>, usize);

/// Reads the rows of the tables it takes, in `order`, from `next` (each table once, whichever
/// lane takes it), in the snapshot `source` holds, sending them in blocks; then ends its
/// transaction.
async fn read(
    mut source: sqlx::PgConnection,
    account: i64,
    tables: &Tables,
    (order, next): (&[usize], &AtomicUsize),
    send: tokio::sync::mpsc::Sender<Block>,
) -> StoreResult<()> {
    while let Some(&t) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
        let (table, cols) = &tables[t];
        let sql = format!(
            "COPY (SELECT {} FROM {table} WHERE account_id = {account}) TO STDOUT",
            names(cols)
        );
        let mut stream = source.copy_out_raw(&sql).await?;
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
    source.execute("COMMIT").await?;
    Ok(())
}

/// Writes the blocks received into `target`, a few thousand rows per transaction of the move.
/// Returns the rows written per table.
async fn write(
    mut target: sqlx::PgConnection,
    account: i64,
    token: Token,
    tables: &Tables,
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
            end_move(&mut target).await?;
            copied.fetch_add(in_tx as i64, Ordering::Relaxed);
            in_tx = 0;
        }
    }
    if in_tx > 0 {
        end_move(&mut target).await?;
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
    let waiting = match leave.reads_waiting() {
        true => Some(
            sqlx::query_as(super::copy::WAITING_KEYS_SQL)
                .bind(account)
                .fetch_all(&mut *snapshot)
                .await?,
        ),
        false => None,
    };
    let skip = leave.settle(shapes, waiting)?;
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

/// Begins a transaction of the copy on `conn`, with the guarantees of [`Store::move_tx`]:
/// the token still holds the account here (its row is locked, shared: a runner that takes the
/// move over waits for this transaction, and the next one fails), else the runner was
/// superseded; and the account arrives here. Then the fence triggers let the copy's rows
/// through (see [`super::COPY_SETTING`]). The lanes' transactions run side by side: unlike a
/// `MoveTx`, none marks the token's row (which would make each wait for the other), and
/// none needs to, as the mark only serves to pass the triggers. On an error the connection
/// is dropped, which rolls back.
async fn begin_move(conn: &mut sqlx::PgConnection, account: i64, token: Token) -> StoreResult<()> {
    conn.execute("BEGIN").await?;
    let held: Option<(i64,)> =
        sqlx::query_as("SELECT token FROM move_tokens WHERE account_id = $1 FOR SHARE")
            .bind(account)
            .fetch_optional(&mut *conn)
            .await?;
    if held != Some((token.0,)) {
        return Err(superseded(account, token, held.map(|(t,)| t)));
    }
    let state: Option<(String,)> = sqlx::query_as(super::FENCE_STATE_SQL)
        .bind(account)
        .fetch_optional(&mut *conn)
        .await?;
    super::copy_may_write(state.as_ref().map(|(s,)| s.as_str()))?;
    sqlx::query("SELECT set_config($1, $2, true)")
        .bind(super::COPY_SETTING)
        .bind(account.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn end_move(conn: &mut sqlx::PgConnection) -> StoreResult<()> {
    conn.execute("COMMIT").await?;
    Ok(())
}
