//! The search index's rows: `record_values` (a key per property value), `record_tokens`
//! (the words of text values, see `kontor_domain::search::keys`) and `record_grams` (posting
//! lists of word prefixes, see `grams.rs`) of the live records. They
//! are written by the indexer (`indexer.rs`) and by builds (`build.rs`), never by the
//! writes themselves.
//!
//! Only live records are indexed. Properties without a definition (archived) are not: their
//! rows go when the property is archived, and come back by a build when it is made again.

use super::grams::GramWrite;
use crate::{Dialect, StoreResult};
use kontor_domain::property::PropertyDef;
use kontor_domain::search::keys;
use kontor_domain::PropertyType;
use std::collections::{BTreeMap, HashMap};

/// Rows per statement.
const CHUNK: usize = 2_000;

/// Index rows to add and remove, gathered over a write and flushed in its transaction. Each
/// row's count nets out what the write did to it (a value set and set back is no change).
#[derive(Default)]
pub(crate) struct IndexWrite {
    kinds: HashMap<String, PropertyType>,
    values: HashMap<(String, String, i64), i32>,
    tokens: HashMap<(String, String, i64), i32>,
    grams: GramWrite,
}

impl IndexWrite {
    pub(crate) fn new(defs: &[PropertyDef]) -> Self {
        Self::with_kinds(defs.iter().map(|d| (d.name.clone(), d.kind)).collect())
    }

    pub(crate) fn with_kinds(kinds: HashMap<String, PropertyType>) -> Self {
        Self {
            kinds,
            ..Self::default()
        }
    }

    /// A property of record `id` goes from `old` to `new` (either unset).
    pub(crate) fn change(&mut self, id: i64, prop: &str, old: Option<&str>, new: Option<&str>) {
        if old == new {
            return;
        }
        let Some(&kind) = self.kinds.get(prop) else {
            return;
        };
        for (v, by) in [(old, -1), (new, 1)] {
            let Some(v) = v else { continue };
            *self
                .values
                .entry((prop.to_string(), keys::value_key(kind, v), id))
                .or_default() += by;
            for t in keys::tokens(kind, v) {
                *self.tokens.entry((prop.to_string(), t, id)).or_default() += by;
            }
            self.grams.change(id, prop, &keys::grams(kind, v), by);
        }
    }

    /// The rows the index holds for these records go (their grams with them): with
    /// [`Self::add`] after, only the rows that differ are written.
    pub(crate) async fn remove_stored(
        &mut self,
        tx: &mut sqlx::AnyConnection,
        account: i64,
        object_type: &str,
        ids: &[i64],
    ) -> StoreResult<()> {
        // Each record's property's keys and tokens, for its grams.
        let mut held: BTreeMap<(i64, String), Vec<String>> = BTreeMap::new();
        let list = id_list(dialect(tx), 3);
        for (table, col) in [("record_values", "value_key"), ("record_tokens", "token")] {
            for chunk in ids.chunks(CHUNK) {
                let rows: Vec<(i64, String, String)> = sqlx::query_as(&format!(
                    "SELECT record_id, property, {col} FROM {table} WHERE account_id = $1 AND object_type = $2 AND record_id IN ({list})"
                ))
                .bind(account)
                .bind(object_type)
                .bind(serde_json::to_string(chunk)?)
                .fetch_all(&mut *tx)
                .await?;
                let counts = match table {
                    "record_values" => &mut self.values,
                    _ => &mut self.tokens,
                };
                for (id, prop, key) in rows {
                    *counts.entry((prop.clone(), key.clone(), id)).or_default() -= 1;
                    held.entry((id, prop)).or_default().push(key);
                }
            }
        }
        for ((id, prop), keys) in held {
            // Numbers and dates have no grams (nor tokens); a property no longer defined
            // is taken for text, its grams removed if it had any.
            if self.kinds.get(&prop).is_none_or(|k| keys::is_textual(*k)) {
                let grams = keys::grams_of_keys(keys.iter().map(String::as_str));
                self.grams.change(id, &prop, &grams, -1);
            }
        }
        Ok(())
    }

    /// A record becomes live (created, or back from the recycle bin).
    pub(crate) fn add(&mut self, id: i64, props: &BTreeMap<String, String>) {
        for (k, v) in props {
            self.change(id, k, None, Some(v));
        }
    }

    /// The rows to delete and to insert: values, then tokens.
    pub(crate) fn rows(&self) -> [(Rows, Rows); 2] {
        let split = |m: &HashMap<(String, String, i64), i32>| {
            let (mut del, mut add) = (Vec::new(), Vec::new());
            for (row, n) in m {
                match n.signum() {
                    -1 => del.push(row.clone()),
                    1 => add.push(row.clone()),
                    _ => {}
                }
            }
            (del, add)
        };
        [split(&self.values), split(&self.tokens)]
    }

    /// Writes the rows, in key order so the B-trees are written in runs.
    pub(crate) async fn flush(
        self,
        tx: &mut sqlx::AnyConnection,
        account: i64,
        object_type: &str,
    ) -> StoreResult<()> {
        let at = (account, object_type);
        let [(del_values, add_values), (del_tokens, add_tokens)] = self.rows();
        delete_rows(tx, "record_values", "value_key", at, del_values).await?;
        delete_rows(tx, "record_tokens", "token", at, del_tokens).await?;
        insert_rows(tx, "record_values", "value_key", at, add_values).await?;
        insert_rows(tx, "record_tokens", "token", at, add_tokens).await?;
        self.grams.flush(tx, account, object_type).await
    }
}

/// Index rows: property, key or token, record.
pub(crate) type Rows = Vec<(String, String, i64)>;

async fn delete_rows(
    tx: &mut sqlx::AnyConnection,
    table: &str,
    col: &str,
    at: (i64, &str),
    rows: Rows,
) -> StoreResult<()> {
    let sql = format!(
        "DELETE FROM {table} WHERE account_id = $1 AND object_type = $2 AND (property, {col}, record_id) IN ({})",
        rows_of(dialect(tx))
    );
    write_rows(tx, &sql, at, rows).await
}

/// Inserts index rows; one already there (a build and a write both made it) is kept.
pub(crate) async fn insert_rows(
    tx: &mut sqlx::AnyConnection,
    table: &str,
    col: &str,
    at: (i64, &str),
    rows: Rows,
) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO {table} (account_id, object_type, property, {col}, record_id) SELECT $1, $2, r.* FROM ({}) r WHERE 1 = 1 ON CONFLICT DO NOTHING",
        rows_of(dialect(tx))
    );
    write_rows(tx, &sql, at, rows).await
}

pub(crate) fn dialect(tx: &sqlx::AnyConnection) -> Dialect {
    match tx.backend_name() {
        "PostgreSQL" => Dialect::Postgres,
        _ => Dialect::Sqlite,
    }
}

/// The rows of `$3`, a JSON array of `[property, key, record]`, as a query. Rows travel as one
/// JSON text rather than as bound values: SQLite looks a bound value's name up among all of
/// the statement's, so a statement of thousands of values spends its time there. The casts
/// let SQLite seek a row to delete by its whole key: without them it reads every record with
/// the key (every "customer") for each.
fn rows_of(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "SELECT CAST(j.value ->> 0 AS TEXT), CAST(j.value ->> 1 AS TEXT), CAST(j.value ->> 2 AS INTEGER) FROM json_each($3) j",
        Dialect::Postgres => "SELECT e ->> 0, e ->> 1, CAST(e ->> 2 AS BIGINT) FROM json_array_elements(CAST($3 AS JSON)) e",
    }
}

async fn write_rows(
    tx: &mut sqlx::AnyConnection,
    sql: &str,
    at: (i64, &str),
    mut rows: Rows,
) -> StoreResult<()> {
    rows.sort_unstable();
    rows.dedup();
    execute_in_chunks(tx, sql, at, &rows).await
}

/// Runs `sql` (`$1` the account, `$2` the object type, `$3` a JSON array of items) over the
/// items, [`CHUNK`] at a time.
pub(crate) async fn execute_in_chunks<T: serde::Serialize>(
    tx: &mut sqlx::AnyConnection,
    sql: &str,
    (account, object_type): (i64, &str),
    items: &[T],
) -> StoreResult<()> {
    for chunk in items.chunks(CHUNK) {
        sqlx::query(sql)
            .bind(account)
            .bind(object_type)
            .bind(serde_json::to_string(chunk)?)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// The stored properties of the live records of a type among `ids`.
pub(crate) async fn props_of(
    tx: &mut sqlx::AnyConnection,
    account: i64,
    object_type: &str,
    ids: &[i64],
) -> StoreResult<Vec<(i64, BTreeMap<String, String>)>> {
    let sql = format!(
        "SELECT id, props FROM records WHERE account_id = $1 AND object_type = $2 AND archived = 0 AND id IN ({})",
        id_list(dialect(tx), 3)
    );
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let rows: Vec<(i64, String)> = sqlx::query_as(&sql)
            .bind(account)
            .bind(object_type)
            .bind(serde_json::to_string(chunk)?)
            .fetch_all(&mut *tx)
            .await?;
        for (id, props) in rows {
            out.push((id, serde_json::from_str(&props)?));
        }
    }
    Ok(out)
}

/// The ids of parameter `$n`, a JSON array of numbers, as a query of one column,
/// `record_id`.
pub(crate) fn id_list(d: Dialect, n: usize) -> String {
    match d {
        Dialect::Sqlite => format!("SELECT value AS record_id FROM json_each(${n})"),
        Dialect::Postgres => {
            format!("SELECT CAST(x AS BIGINT) AS record_id FROM json_array_elements_text(CAST(${n} AS JSON)) x")
        }
    }
}
