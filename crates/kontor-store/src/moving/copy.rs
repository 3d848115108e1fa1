//! The copy of an account into another cell, the digests two cells are compared by, and the
//! removal of an account from a cell.

use super::{check_name, copied_tables, Token};
use crate::{Dialect, Store, StoreError, StoreResult};
use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};
use sqlx::{Column, Row};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Rows the copy inserts into the new cell per transaction.
const COPY_ROWS_PER_TX: usize = 5000;
/// Rows a removal deletes per transaction.
const REMOVE_ROWS_PER_TX: usize = 5000;

/// A column's type as the schema declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColType {
    Int,
    Text,
}

/// One value of a row, as read from either engine.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Text(String),
}

/// A table's count of rows and a digest of their content, for one account: equal in two
/// cells when they hold the same rows, whatever the engines and the order of the rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDigest {
    pub table: &'static str,
    pub rows: i64,
    pub digest: String,
}

/// A table whose rows differ between the two cells: (rows, digest) on each side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub table: &'static str,
    pub here: (i64, String),
    pub there: (i64, String),
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} rows (digest {}) in the old cell, {} rows (digest {}) in the new one",
            self.table,
            self.here.0,
            &self.here.1[..8],
            self.there.0,
            &self.there.1[..8]
        )
    }
}

/// A table a move copies: its columns and which of them make its primary key.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    pub table: &'static str,
    pub cols: Vec<(String, ColType)>,
    /// Positions in `cols` of the key's columns, in key order.
    pub key: Vec<usize>,
}

impl Shape {
    /// A key as the capture trigger writes it (a JSON array of the key's values), as values
    /// of the key's columns.
    pub fn parse_key(&self, text: &str) -> StoreResult<Vec<Value>> {
        let bad = || {
            StoreError::Config(format!(
                "{}: unreadable key {text:?} in move_log",
                self.table
            ))
        };
        let items: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|_| bad())?;
        if items.len() != self.key.len() {
            return Err(bad());
        }
        items
            .into_iter()
            .zip(&self.key)
            .map(|(v, &c)| {
                Ok(match (v, self.cols[c].1) {
                    (serde_json::Value::Null, _) => Value::Null,
                    (serde_json::Value::Number(n), ColType::Int) => {
                        Value::Int(n.as_i64().ok_or_else(bad)?)
                    }
                    (serde_json::Value::String(t), ColType::Int) => {
                        Value::Int(t.parse().map_err(|_| bad())?)
                    }
                    (serde_json::Value::String(t), ColType::Text) => Value::Text(t),
                    (serde_json::Value::Number(n), ColType::Text) => Value::Text(n.to_string()),
                    _ => return Err(bad()),
                })
            })
            .collect()
    }

    /// A row's key values.
    pub fn key_of(&self, row: &[Value]) -> Vec<Value> {
        self.key.iter().map(|&i| row[i].clone()).collect()
    }

    /// `SELECT`s the rows of one key of an account: `$1` is the account, then the key.
    pub fn where_key(&self) -> String {
        let mut sql = String::from(" WHERE account_id = $1");
        for (n, &i) in self.key.iter().enumerate() {
            sql.push_str(&format!(" AND {} = ${}", self.cols[i].0, n + 2));
        }
        sql
    }
}

/// Binds values to a statement as the columns they belong to are declared.
pub(super) fn bind_values<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    values: impl IntoIterator<Item = (&'q Value, ColType)>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for (v, ty) in values {
        q = match (v, ty) {
            (Value::Int(i), _) => q.bind(*i),
            (Value::Text(t), _) => q.bind(t.clone()),
            (Value::Null, ColType::Int) => q.bind(None::<i64>),
            (Value::Null, ColType::Text) => q.bind(None::<String>),
        };
    }
    q
}

/// Rows a comparison leaves out, per table: the keys whose writes wait in `move_log`.
pub(super) type Pending = HashMap<String, HashSet<Vec<Value>>>;

/// Which rows of an account a digest leaves out.
pub(super) enum Leave {
    /// Those of these keys.
    Keys(Arc<Pending>),
    /// Those whose keys wait in the cell's `move_log` as of the digest's own snapshot, sent
    /// here as soon as read.
    Waiting(tokio::sync::oneshot::Sender<Arc<Pending>>),
}

/// The keys waiting in `move_log` (`$1`: the account), as (table, key) text.
pub(super) const WAITING_KEYS_SQL: &str = "SELECT tbl, row_key FROM move_log WHERE account_id = $1";

impl Leave {
    /// Whether the keys to leave out are to be read in the digest's snapshot (with
    /// [`WAITING_KEYS_SQL`]) and handed to [`Leave::settle`].
    pub(super) fn reads_waiting(&self) -> bool {
        matches!(self, Leave::Waiting(_))
    }

    /// The keys to leave out: those given, or the `waiting` rows read in the snapshot, which
    /// are also sent on to the other cell's digest.
    pub(super) fn settle(
        self,
        shapes: &[Shape],
        waiting: Option<Vec<(String, String)>>,
    ) -> StoreResult<Arc<Pending>> {
        match self {
            Leave::Keys(keys) => Ok(keys),
            Leave::Waiting(send) => {
                let keys = Arc::new(pending_keys(shapes, waiting.unwrap_or_default())?);
                let _ = send.send(keys.clone());
                Ok(keys)
            }
        }
    }
}

/// `move_log`'s (table, key) rows as the keys of the tables in `shapes`.
pub(super) fn pending_keys(shapes: &[Shape], rows: Vec<(String, String)>) -> StoreResult<Pending> {
    let mut out: Pending = HashMap::new();
    for (table, key) in rows {
        if let Some(shape) = shapes.iter().find(|s| s.table == table) {
            out.entry(table).or_default().insert(shape.parse_key(&key)?);
        }
    }
    Ok(out)
}

/// Per table, the count and digest of `account`'s rows read through `conn`, leaving out the
/// rows whose keys `skip` lists for their table.
async fn digests(
    conn: &mut sqlx::AnyConnection,
    shapes: &[Shape],
    account: i64,
    skip: &HashMap<String, HashSet<Vec<Value>>>,
) -> StoreResult<Vec<TableDigest>> {
    let mut out = Vec::new();
    for shape in shapes {
        let sql = select_sql(shape.table, &shape.cols);
        let skipped = skip.get(shape.table);
        let mut rows = sqlx::query(&sql).bind(account).fetch(&mut *conn);
        let (mut n, mut sum) = (0i64, 0u128);
        while let Some(row) = rows.try_next().await? {
            let values = decode(&row, &shape.cols)?;
            if skipped.is_some_and(|s| s.contains(&shape.key_of(&values))) {
                continue;
            }
            n += 1;
            sum = sum.wrapping_add(row_hash(values.iter().map(Value::as_ref)));
        }
        out.push(TableDigest {
            table: shape.table,
            rows: n,
            digest: format!("{sum:032x}"),
        });
    }
    Ok(out)
}

/// What a copy did.
#[derive(Debug, Clone, Default)]
pub struct CopyReport {
    /// Rows copied, per table.
    pub rows: Vec<(&'static str, i64)>,
}

impl CopyReport {
    pub fn total(&self) -> i64 {
        self.rows.iter().map(|(_, n)| n).sum()
    }
}

impl Store {
    /// The tables this database has (its schema, not its data).
    pub async fn schema_tables(&self) -> StoreResult<Vec<String>> {
        let sql = match self.dialect {
            Dialect::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
            Dialect::Postgres => "SELECT CAST(table_name AS TEXT) FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1",
        };
        let rows: Vec<(String,)> = sqlx::query_as(sql).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|(t,)| t).collect())
    }

    /// A table's columns in their declared order, with their types.
    pub(super) async fn columns(&self, table: &str) -> StoreResult<Vec<(String, ColType)>> {
        check_name(table)?;
        let rows: Vec<(String, String)> = match self.dialect {
            Dialect::Sqlite => {
                sqlx::query_as("SELECT name, type FROM pragma_table_info($1) ORDER BY cid")
                    .bind(table)
                    .fetch_all(&self.pool)
                    .await?
            }
            Dialect::Postgres => {
                sqlx::query_as("SELECT CAST(column_name AS TEXT), CAST(data_type AS TEXT) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position")
                    .bind(table)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        if rows.is_empty() {
            return Err(StoreError::Config(format!(
                "no table {table} in this database"
            )));
        }
        rows.into_iter()
            .map(|(name, ty)| {
                check_name(&name)?;
                let ty = match ty.to_ascii_lowercase().as_str() {
                    "bigint" | "integer" => ColType::Int,
                    "text" => ColType::Text,
                    other => {
                        return Err(StoreError::Config(format!(
                            "{table}.{name} has type {other}, which a move cannot copy"
                        )))
                    }
                };
                Ok((name, ty))
            })
            .collect()
    }

    /// The shape of every table a move copies, from this database's catalog.
    pub(super) async fn shapes(&self) -> StoreResult<Vec<Shape>> {
        let shapes = self
            .move_shapes
            .get_or_try_init(|| self.read_shapes())
            .await?;
        Ok(shapes.clone())
    }

    async fn read_shapes(&self) -> StoreResult<Vec<Shape>> {
        let mut out = Vec::new();
        for table in copied_tables() {
            let cols = self.columns(table).await?;
            let names = crate::migrations::primary_key(
                &mut *self.pool.acquire().await?,
                self.dialect,
                table,
            )
            .await?;
            let key = names
                .iter()
                .map(|k| {
                    cols.iter().position(|(c, _)| c == k).ok_or_else(|| {
                        StoreError::Config(format!("{table}: key column {k} not found"))
                    })
                })
                .collect::<StoreResult<Vec<_>>>()?;
            out.push(Shape { table, cols, key });
        }
        Ok(out)
    }

    /// The count and digest of `account`'s rows in each table a move copies.
    pub async fn account_digests(&self, account: i64) -> StoreResult<Vec<TableDigest>> {
        let shapes = Arc::new(self.shapes().await?);
        self.digests_leaving(shapes, account, Leave::Keys(Arc::default()))
            .await
    }

    /// Per table of `shapes`, the count and digest of `account`'s rows as of one snapshot of
    /// this cell, leaving out the rows `leave` names.
    async fn digests_leaving(
        &self,
        shapes: Arc<Vec<Shape>>,
        account: i64,
        leave: Leave,
    ) -> StoreResult<Vec<TableDigest>> {
        if self.dialect == Dialect::Sqlite {
            if let Ok(path) = crate::export::sqlite_path(&self.url) {
                return tokio::task::spawn_blocking(move || {
                    super::copy_sqlite::digests(&path, &shapes, account, leave)
                })
                .await
                .map_err(|e| StoreError::Config(format!("digest thread: {e}")))?;
            }
        }
        if self.dialect == Dialect::Postgres {
            return super::copy_postgres::digests(&self.url, &shapes, account, leave).await;
        }
        // An in-memory SQLite database, read through the pool. The first read fixes the
        // snapshot: the waiting keys and the rows are of one instant.
        let mut snapshot = self.pool.begin().await?;
        let waiting = match leave.reads_waiting() {
            true => Some(
                sqlx::query_as(WAITING_KEYS_SQL)
                    .bind(account)
                    .fetch_all(&mut *snapshot)
                    .await?,
            ),
            false => None,
        };
        let skip = leave.settle(&shapes, waiting)?;
        let out = digests(&mut snapshot, &shapes, account, &skip).await?;
        snapshot.commit().await?;
        Ok(out)
    }

    /// Rows of `account` per table a move copies, for a progress total.
    pub async fn account_row_counts(&self, account: i64) -> StoreResult<Vec<(&'static str, i64)>> {
        let mut out = Vec::new();
        for table in copied_tables() {
            check_name(table)?;
            let (n,): (i64,) = sqlx::query_as(&format!(
                "SELECT COUNT(*) FROM {table} WHERE account_id = $1"
            ))
            .bind(account)
            .fetch_one(&self.pool)
            .await?;
            out.push((table, n));
        }
        Ok(out)
    }

    /// Compares every table of `account` in this cell (the one it is being copied out of, in
    /// [`Fence::Copying`]) with `to`, while it stays live: as of one snapshot of this cell,
    /// the rows whose writes the catch-up has not yet carried over (those in `move_log`) are
    /// left out on both sides, and every other row must be in `to`, the same. Call it between
    /// catch-up rounds (nothing writes `to` meanwhile). Returns the tables that differ.
    pub async fn verify_copy(&self, to: &Store, account: i64) -> StoreResult<Vec<Mismatch>> {
        let shapes = Arc::new(self.shapes().await?);
        let (send, keys) = tokio::sync::oneshot::channel();
        let here = self.digests_leaving(shapes.clone(), account, Leave::Waiting(send));
        // The new cell is read beside the old one, once the old one's snapshot has given the
        // keys to leave out.
        let there = async {
            match keys.await {
                Ok(keys) => to
                    .digests_leaving(shapes.clone(), account, Leave::Keys(keys))
                    .await
                    .map(Some),
                // The old cell's side failed before: its error is the one reported.
                Err(_) => Ok(None),
            }
        };
        let (here, there) = tokio::join!(here, there);
        let (here, there) = (
            here?,
            there?.ok_or_else(|| StoreError::Config("no keys".into()))?,
        );
        Ok(here
            .into_iter()
            .zip(there)
            .filter(|(a, b)| a != b)
            .map(|(a, b)| Mismatch {
                table: a.table,
                here: (a.rows, a.digest),
                there: (b.rows, b.digest),
            })
            .collect())
    }

    /// Copies every row `account` has in the tables a move copies from this cell into `to`,
    /// as of one instant of this cell. `to` must hold nothing of the account yet, and
    /// `token` for it (each transaction there checks it: see [`super::Token`]).
    pub async fn copy_account_to(
        &self,
        to: &Store,
        account: i64,
        token: Token,
    ) -> StoreResult<CopyReport> {
        self.copy_account_counting(to, account, token, &AtomicI64::new(0))
            .await
    }

    /// [`Store::copy_account_to`], adding each batch of rows copied to `copied` as it goes.
    pub async fn copy_account_counting(
        &self,
        to: &Store,
        account: i64,
        token: Token,
        copied: &AtomicI64,
    ) -> StoreResult<CopyReport> {
        let mut tables = Vec::new();
        for table in copied_tables() {
            let cols = self.columns(table).await?;
            if to.columns(table).await? != cols {
                return Err(StoreError::Config(format!(
                    "{table} differs between the two cells: upgrade both to the same version first"
                )));
            }
            tables.push((table, cols));
        }
        if self.dialect == Dialect::Sqlite && to.dialect == Dialect::Sqlite {
            let rows = self
                .copy_sqlite_to_sqlite(to, account, token, tables, copied)
                .await?;
            return Ok(CopyReport { rows });
        }
        if self.dialect == Dialect::Postgres && to.dialect == Dialect::Postgres {
            let rows = self
                .copy_postgres_to_postgres(to, account, token, &tables, copied)
                .await?;
            return Ok(CopyReport { rows });
        }
        // The reader streams batches of rows to the writer, which inserts them into `to` a few
        // thousand rows per transaction: reading one cell and writing the other overlap.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(usize, Vec<Vec<Value>>)>(8);
        let tables_ref = &tables;
        let reader = async move {
            let mut snapshot = self.pool.begin().await?;
            if self.dialect == Dialect::Postgres {
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *snapshot)
                    .await?;
            }
            for (t, (table, cols)) in tables_ref.iter().enumerate() {
                let per_insert = (900 / cols.len()).max(1);
                let sql = select_sql(table, cols);
                let mut rows = sqlx::query(&sql).bind(account).fetch(&mut *snapshot);
                let mut batch: Vec<Vec<Value>> = Vec::with_capacity(per_insert);
                while let Some(row) = rows.try_next().await? {
                    batch.push(decode(&row, cols)?);
                    if batch.len() == per_insert {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(per_insert));
                        if tx.send((t, full)).await.is_err() {
                            return Ok(());
                        }
                    }
                }
                if !batch.is_empty() && tx.send((t, batch)).await.is_err() {
                    return Ok(());
                }
            }
            drop(tx);
            snapshot.commit().await?;
            StoreResult::Ok(())
        };
        let writer = async {
            let mut counts = vec![0i64; tables.len()];
            let mut open: Option<super::MoveTx<'_>> = None;
            let mut in_tx = 0usize;
            while let Some((t, batch)) = rx.recv().await {
                let (table, cols) = &tables[t];
                if open.is_none() {
                    open = Some(to.move_tx(account, token).await?);
                }
                let conn = open.as_mut().expect("a transaction is open");
                insert_rows(conn, table, cols, &batch).await?;
                counts[t] += batch.len() as i64;
                in_tx += batch.len();
                if in_tx >= COPY_ROWS_PER_TX {
                    if let Some(done) = open.take() {
                        done.commit().await?;
                    }
                    copied.fetch_add(in_tx as i64, Ordering::Relaxed);
                    in_tx = 0;
                }
            }
            if let Some(done) = open.take() {
                done.commit().await?;
            }
            copied.fetch_add(in_tx as i64, Ordering::Relaxed);
            StoreResult::Ok(counts)
        };
        let (read, written) = tokio::join!(reader, writer);
        // The writer's failure makes the reader stop at its next send; report the cause.
        let counts = written?;
        read?;
        Ok(CopyReport {
            rows: tables.iter().map(|(t, _)| *t).zip(counts).collect(),
        })
    }

    /// Deletes every row `account` has in this cell, a table at a time (the old cell after a
    /// move, or a partial copy after a failed one), each transaction checking `token`.
    /// Returns how many rows went.
    pub async fn remove_account_data(&self, account: i64, token: Token) -> StoreResult<u64> {
        let mut total = 0;
        for table in super::removed_tables() {
            check_name(table)?;
            let key = crate::migrations::primary_key(
                &mut *self.pool.acquire().await?,
                self.dialect,
                table,
            )
            .await?
            .join(", ");
            // A few thousand rows per transaction: other accounts' writers of this cell wait
            // for one chunk at most, never for the whole account.
            let sql = format!(
                "DELETE FROM {table} WHERE account_id = $1 AND ({key}) IN (SELECT {key} FROM {table} WHERE account_id = $1 LIMIT {REMOVE_ROWS_PER_TX})"
            );
            loop {
                let mut tx = self.move_tx(account, token).await?;
                if self.dialect == Dialect::Postgres {
                    // Planned anew each time: the generic plan PostgreSQL caches for this
                    // prepared statement, made while the table was small, joined each chunk
                    // against every row of the account by a nested loop (a minute per chunk at
                    // 75,000 index rows).
                    sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan")
                        .execute(&mut *tx)
                        .await?;
                }
                let n = sqlx::query(&sql)
                    .bind(account)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                total += n;
                if n == 0 {
                    break;
                }
            }
        }
        let mut tx = self.move_tx(account, token).await?;
        sqlx::query("DELETE FROM move_log WHERE account_id = $1")
            .bind(account)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(total)
    }
}

pub(super) fn select_sql(table: &str, cols: &[(String, ColType)]) -> String {
    let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
    format!(
        "SELECT {} FROM {table} WHERE account_id = $1",
        names.join(", ")
    )
}

pub(super) fn decode(
    row: &sqlx::any::AnyRow,
    cols: &[(String, ColType)],
) -> StoreResult<Vec<Value>> {
    let mut out = Vec::with_capacity(cols.len());
    for (i, (name, ty)) in cols.iter().enumerate() {
        let v = match ty {
            ColType::Int => row
                .try_get::<Option<i64>, _>(i)
                .map(|v| v.map_or(Value::Null, Value::Int)),
            ColType::Text => row
                .try_get::<Option<String>, _>(i)
                .map(|v| v.map_or(Value::Null, Value::Text)),
        }
        .map_err(|e| {
            StoreError::Config(format!("reading {} ({name}): {e}", row.column(i).name()))
        })?;
        out.push(v);
    }
    Ok(out)
}

/// A value as read in place, for hashing without copying it.
#[derive(Debug, Clone, Copy)]
pub(super) enum ValueRef<'a> {
    Null,
    Int(i64),
    Text(&'a [u8]),
}

impl Value {
    pub(super) fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Int(*i),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
        }
    }
}

impl ValueRef<'_> {
    pub(super) fn owned(self) -> Value {
        match self {
            ValueRef::Null => Value::Null,
            ValueRef::Int(i) => Value::Int(i),
            ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        }
    }
}

/// A row's hash: its values with their kinds and lengths, so that no two rows share a form.
pub(super) fn row_hash<'a>(values: impl IntoIterator<Item = ValueRef<'a>>) -> u128 {
    let mut h = Sha256::new();
    for v in values {
        match v {
            ValueRef::Null => h.update([0u8]),
            ValueRef::Int(i) => {
                h.update([1u8]);
                h.update(i.to_be_bytes());
            }
            ValueRef::Text(t) => {
                h.update([2u8]);
                h.update((t.len() as u64).to_be_bytes());
                h.update(t);
            }
        }
    }
    let d = h.finalize();
    u128::from_be_bytes(d[..16].try_into().expect("16 bytes"))
}

/// Inserts `rows` of `table` in one statement.
pub(super) async fn insert_rows(
    conn: &mut sqlx::AnyConnection,
    table: &str,
    cols: &[(String, ColType)],
    rows: &[Vec<Value>],
) -> StoreResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", names.join(", "));
    let mut p = 0;
    for i in 0..rows.len() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..cols.len() {
            if c > 0 {
                sql.push_str(", ");
            }
            p += 1;
            sql.push_str(&format!("${p}"));
        }
        sql.push(')');
    }
    let q = bind_values(
        sqlx::query(&sql),
        rows.iter()
            .flat_map(|row| row.iter().zip(cols.iter().map(|(_, ty)| *ty))),
    );
    q.execute(&mut *conn).await?;
    Ok(())
}
