//! Moving an account's data from one cell to another: what each table of the cell schema does
//! in a move, a copy of everything the account owns, a digest per table to compare the two
//! cells by, and the removal of the account from a cell.
//!
//! The copy reads the source inside one read transaction (a SQLite read transaction, or a
//! PostgreSQL `REPEATABLE READ` one), so all tables describe the same instant while writers go
//! on. Rows are read and written column by column as the schema declares them (the cell schema
//! has only `BIGINT` and `TEXT` columns), so one copier serves every pair of engines.
//!
//! Every table of the schema has a rule in [`TABLES`]; a test compares it with the tables a
//! freshly migrated database has, so a table added later cannot be forgotten by the move.

use crate::{Dialect, Store, StoreError, StoreResult};
use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};
use sqlx::{Column, Row};

/// What a move does with one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The account's rows (`account_id`) are copied to the new cell and removed from the old.
    Copy,
    /// The account's rows stay behind and are removed with the old cell's copy: the new cell
    /// starts without them (the reason is shown to users).
    NotMoved(&'static str),
    /// Kept in the directory database, not in a cell: the move updates the directory itself.
    Directory,
    /// The fence itself: each cell keeps its own (see [`Store::fence_account`]).
    Fence,
}

/// Every table of the schema and its rule.
pub const TABLES: &[(&str, Rule)] = &[
    ("accounts", Rule::Directory),
    ("logins", Rule::Directory),
    ("attempts", Rule::Directory),
    ("schema_migrations", Rule::Directory),
    ("counters", Rule::Copy),
    ("records", Rule::Copy),
    ("unique_values", Rule::Copy),
    ("changes", Rule::Copy),
    ("properties", Rule::Copy),
    ("property_groups", Rule::Copy),
    ("schemas", Rule::Copy),
    ("association_types", Rule::Copy),
    ("associations", Rule::Copy),
    ("owners", Rule::Copy),
    ("users", Rule::Copy),
    ("tokens", Rule::Copy),
    ("audit_log", Rule::Copy),
    ("sessions", Rule::Copy),
    ("user_second_factors", Rule::Copy),
    (
        "notifications",
        Rule::NotMoved("In-app notifications are not carried over to the new region."),
    ),
    ("jobs", Rule::Copy),
    ("backups", Rule::Copy),
    ("imports", Rule::Copy),
    ("import_errors", Rule::Copy),
    ("restore_plans", Rule::Copy),
    ("job_outbox", Rule::Copy),
    ("password_resets", Rule::Copy),
    ("sso_configs", Rule::Copy),
    ("sso_flows", Rule::Copy),
    ("account_fences", Rule::Fence),
];

/// The tables whose rows a move copies.
pub fn copied_tables() -> impl Iterator<Item = &'static str> {
    TABLES
        .iter()
        .filter(|(_, r)| *r == Rule::Copy)
        .map(|(t, _)| *t)
}

/// The tables that hold rows of an account in a cell (copied or not): the fenced ones.
pub fn account_tables() -> impl Iterator<Item = &'static str> {
    TABLES
        .iter()
        .filter(|(_, r)| matches!(r, Rule::Copy | Rule::NotMoved(_)))
        .map(|(t, _)| *t)
}

/// What a write to a fenced account fails with, from either engine.
pub(crate) const FENCED: &str = "kontor: account fenced";

/// The fence: a trigger on each of `tables` that refuses, inside the writing transaction
/// itself, any insert or update of rows of an account in `account_fences`, and any delete
/// while the account is `frozen` (once it is `moved`, its old rows may be removed). Made at
/// open for the tables that lack it (see [`fenced_tables_sql`]): a database in use sees no DDL.
pub(crate) fn fence_ddl(dialect: Dialect, tables: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    match dialect {
        Dialect::Sqlite => {
            for t in tables {
                for (op, row, extra) in [
                    ("insert", "NEW", ""),
                    ("update", "OLD", ""),
                    ("delete", "OLD", " AND state = 'frozen'"),
                ] {
                    out.push(format!(
                        "CREATE TRIGGER IF NOT EXISTS kontor_fence_{t}_{op} BEFORE {} ON {t} \
                         WHEN EXISTS (SELECT 1 FROM account_fences WHERE account_id = {row}.account_id{extra}) \
                         BEGIN SELECT RAISE(ABORT, '{FENCED}'); END",
                        op.to_uppercase()
                    ));
                }
            }
        }
        Dialect::Postgres => {
            out.push(format!(
                "CREATE OR REPLACE FUNCTION kontor_fence() RETURNS trigger LANGUAGE plpgsql AS $f$ \
                 DECLARE acct BIGINT; st TEXT; \
                 BEGIN \
                   IF TG_OP = 'INSERT' THEN acct := NEW.account_id; ELSE acct := OLD.account_id; END IF; \
                   SELECT state INTO st FROM account_fences WHERE account_id = acct; \
                   IF st IS NOT NULL AND (TG_OP <> 'DELETE' OR st = 'frozen') THEN \
                     RAISE EXCEPTION '{FENCED} (%)', acct; \
                   END IF; \
                   IF TG_OP = 'DELETE' THEN RETURN OLD; END IF; \
                   RETURN NEW; \
                 END $f$"
            ));
            for t in tables {
                out.push(format!("DROP TRIGGER IF EXISTS kontor_fence ON {t}"));
                out.push(format!(
                    "CREATE TRIGGER kontor_fence BEFORE INSERT OR UPDATE OR DELETE ON {t} \
                     FOR EACH ROW EXECUTE PROCEDURE kontor_fence()"
                ));
            }
        }
    }
    out
}

/// The tables with the whole fence, from the catalog.
pub(crate) fn fenced_tables_sql(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "SELECT tbl_name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'kontor_fence_%' GROUP BY tbl_name HAVING COUNT(*) = 3 ORDER BY 1",
        Dialect::Postgres => "SELECT CAST(event_object_table AS TEXT) FROM information_schema.triggers WHERE trigger_schema = current_schema() AND trigger_name = 'kontor_fence' GROUP BY event_object_table HAVING COUNT(*) = 3 ORDER BY 1",
    }
}

/// Where an account stands in a cell's fence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fence {
    /// No write of the account commits here (the final catch-up of a move is underway).
    Frozen { to: String },
    /// The account now lives in `to`: nothing is written here any more; its rows may be removed.
    Moved { to: String },
}

/// A column's type as the schema declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColType {
    Int,
    Text,
}

/// One value of a row, as read from either engine.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Value {
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

fn check_name(name: &str) -> StoreResult<()> {
    // Table and column names come from the schema, but they are spliced into SQL: plain only.
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(StoreError::Config(format!(
            "unexpected name in the schema: {name:?}"
        )));
    }
    Ok(())
}

impl Store {
    /// Fences `account` in this cell: from the commit of this call on, no write of its rows
    /// commits here (a write under way when it commits fails instead). `to` is the region the
    /// account is moving to.
    pub async fn fence_account(&self, account: i64, to: &str) -> StoreResult<()> {
        self.set_fence(account, "frozen", to).await
    }

    /// Records that `account` now lives in `to`: writes stay refused here for good (a node
    /// that still routes to this cell learns that the account moved), deletes are allowed so
    /// that its rows can be removed.
    pub async fn mark_account_moved(&self, account: i64, to: &str) -> StoreResult<()> {
        self.set_fence(account, "moved", to).await
    }

    async fn set_fence(&self, account: i64, state: &str, to: &str) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM account_fences WHERE account_id = $1")
            .bind(account)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO account_fences (account_id, state, region, since) VALUES ($1, $2, $3, $4)",
        )
        .bind(account)
        .bind(state)
        .bind(to)
        .bind(kontor_domain::time::now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Lifts the fence: the move failed and the account stays here, or it is moving (back)
    /// into this cell.
    pub async fn unfence_account(&self, account: i64) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM account_fences WHERE account_id = $1")
            .bind(account)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn account_fence(&self, account: i64) -> StoreResult<Option<Fence>> {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT state, region FROM account_fences WHERE account_id = $1")
                .bind(account)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(state, to)| match state.as_str() {
            "frozen" => Fence::Frozen { to },
            _ => Fence::Moved { to },
        }))
    }

    /// The tables that have the whole fence (insert, update and delete), as the database's
    /// catalog lists them.
    pub async fn fenced_tables(&self) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(fenced_tables_sql(self.dialect))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|(t,)| t).collect())
    }

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
    async fn columns(&self, table: &str) -> StoreResult<Vec<(String, ColType)>> {
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

    /// The count and digest of `account`'s rows in each table a move copies.
    pub async fn account_digests(&self, account: i64) -> StoreResult<Vec<TableDigest>> {
        let mut out = Vec::new();
        for table in copied_tables() {
            let cols = self.columns(table).await?;
            let sql = select_sql(table, &cols);
            let mut rows = sqlx::query(&sql).bind(account).fetch(&self.pool);
            let (mut n, mut sum) = (0i64, 0u128);
            while let Some(row) = rows.try_next().await? {
                let values = decode(&row, &cols)?;
                n += 1;
                sum = sum.wrapping_add(row_hash(&values));
            }
            out.push(TableDigest {
                table,
                rows: n,
                digest: format!("{sum:032x}"),
            });
        }
        Ok(out)
    }

    /// Copies every row `account` has in the tables a move copies from this cell into `to`,
    /// as of one instant of this cell. `to` must hold nothing of the account yet.
    pub async fn copy_account_to(&self, to: &Store, account: i64) -> StoreResult<CopyReport> {
        let mut report = CopyReport::default();
        let mut snapshot = self.pool.begin().await?;
        if self.dialect == Dialect::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *snapshot)
                .await?;
        }
        for table in copied_tables() {
            let cols = self.columns(table).await?;
            let target_cols = to.columns(table).await?;
            if target_cols != cols {
                return Err(StoreError::Config(format!(
                    "{table} differs between the two cells: upgrade both to the same version first"
                )));
            }
            let per_insert = (900 / cols.len()).max(1);
            let sql = select_sql(table, &cols);
            let mut rows = sqlx::query(&sql).bind(account).fetch(&mut *snapshot);
            let mut batch: Vec<Vec<Value>> = Vec::with_capacity(per_insert);
            let mut n = 0i64;
            while let Some(row) = rows.try_next().await? {
                batch.push(decode(&row, &cols)?);
                if batch.len() == per_insert {
                    to.insert_rows(table, &cols, &batch).await?;
                    n += batch.len() as i64;
                    batch.clear();
                }
            }
            if !batch.is_empty() {
                to.insert_rows(table, &cols, &batch).await?;
                n += batch.len() as i64;
            }
            report.rows.push((table, n));
        }
        snapshot.commit().await?;
        Ok(report)
    }

    async fn insert_rows(
        &self,
        table: &str,
        cols: &[(String, ColType)],
        rows: &[Vec<Value>],
    ) -> StoreResult<()> {
        let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
        let mut sql = format!("INSERT INTO {table} ({}) VALUES ", names.join(", "));
        let mut p = 0;
        for (i, _) in rows.iter().enumerate() {
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
        let mut q = sqlx::query(&sql);
        for row in rows {
            for (v, (_, ty)) in row.iter().zip(cols) {
                q = match (v, ty) {
                    (Value::Int(i), _) => q.bind(*i),
                    (Value::Text(t), _) => q.bind(t.clone()),
                    (Value::Null, ColType::Int) => q.bind(None::<i64>),
                    (Value::Null, ColType::Text) => q.bind(None::<String>),
                };
            }
        }
        let mut tx = self.write().await?;
        q.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes every row `account` has in this cell, a table at a time (the old cell after a
    /// move, or a partial copy after a failed one). Returns how many rows went.
    pub async fn remove_account_data(&self, account: i64) -> StoreResult<u64> {
        let mut total = 0;
        for table in account_tables() {
            check_name(table)?;
            let mut tx = self.write().await?;
            total += sqlx::query(&format!("DELETE FROM {table} WHERE account_id = $1"))
                .bind(account)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
        }
        Ok(total)
    }
}

fn select_sql(table: &str, cols: &[(String, ColType)]) -> String {
    let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
    format!(
        "SELECT {} FROM {table} WHERE account_id = $1",
        names.join(", ")
    )
}

fn decode(row: &sqlx::any::AnyRow, cols: &[(String, ColType)]) -> StoreResult<Vec<Value>> {
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

/// A row's hash: its values with their kinds and lengths, so that no two rows share a form.
fn row_hash(values: &[Value]) -> u128 {
    let mut h = Sha256::new();
    for v in values {
        match v {
            Value::Null => h.update([0u8]),
            Value::Int(i) => {
                h.update([1u8]);
                h.update(i.to_be_bytes());
            }
            Value::Text(t) => {
                h.update([2u8]);
                h.update((t.len() as u64).to_be_bytes());
                h.update(t.as_bytes());
            }
        }
    }
    let d = h.finalize();
    u128::from_be_bytes(d[..16].try_into().expect("16 bytes"))
}
