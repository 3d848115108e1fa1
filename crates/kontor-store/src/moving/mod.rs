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

use crate::{Dialect, Store, StoreError, StoreResult, WriteTx};

mod catch_up;
mod copy;
mod copy_postgres;
mod copy_sqlite;
pub use catch_up::Round;
pub(crate) use copy::Shape;
pub use copy::{CopyReport, Mismatch, TableDigest};

/// What a move does with one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The account's rows (`account_id`) are copied to the new cell and removed from the old.
    Copy,
    /// The account's rows stay behind and are removed with the old cell's copy: the new cell
    /// starts without them (the reason is shown to users).
    NotMoved(&'static str),
    /// Made from the account's other rows in each cell (the search index): not copied, not
    /// fenced (only a writer that skips moving accounts writes it), removed with the old
    /// cell's copy; the new cell makes its own (the reason is shown to users).
    Derived(&'static str),
    /// Kept in the directory database, not in a cell: the move updates the directory itself.
    Directory,
    /// The move's own bookkeeping in each cell (the fence, the capture log, the token).
    Fence,
}

const SEARCH_INDEX: &str = "The search index is built anew in the new region from the records; until it has caught up, searches there match records one by one and take longer.";

/// Every table of the schema and its rule.
pub const TABLES: &[(&str, Rule)] = &[
    ("accounts", Rule::Directory),
    ("logins", Rule::Directory),
    ("attempts", Rule::Directory),
    ("schema_migrations", Rule::Directory),
    ("moves", Rule::Directory),
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
    ("move_checklist", Rule::Copy),
    ("forms", Rule::Copy),
    ("form_submissions", Rule::Copy),
    ("erased", Rule::Copy),
    ("webhook_apps", Rule::Copy),
    ("webhook_subscriptions", Rule::Copy),
    ("webhook_events", Rule::Copy),
    ("salesforce_connections", Rule::Copy),
    ("salesforce_mappings", Rule::Copy),
    ("salesforce_links", Rule::Copy),
    ("salesforce_cursors", Rule::Copy),
    ("salesforce_owner_map", Rule::Copy),
    ("salesforce_errors", Rule::Copy),
    ("salesforce_uninstalls", Rule::Copy),
    ("owner_reassignments", Rule::Copy),
    ("owner_reassigned", Rule::Copy),
    // The search index is made from the records and the change log, which move: the new
    // cell builds its own rather than taking a copy three times the size of the records.
    ("record_values", Rule::Derived(SEARCH_INDEX)),
    ("record_tokens", Rule::Derived(SEARCH_INDEX)),
    ("record_grams", Rule::Derived(SEARCH_INDEX)),
    ("index_builds", Rule::Derived(SEARCH_INDEX)),
    ("index_cursors", Rule::Derived(SEARCH_INDEX)),
    ("form_queue", Rule::Directory),
    ("account_fences", Rule::Fence),
    ("move_log", Rule::Fence),
    ("move_tokens", Rule::Fence),
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

/// The tables that hold rows of an account in a cell, fenced or not: what removing an
/// account's data from a cell deletes.
pub fn removed_tables() -> impl Iterator<Item = &'static str> {
    TABLES
        .iter()
        .filter(|(_, r)| matches!(r, Rule::Copy | Rule::NotMoved(_) | Rule::Derived(_)))
        .map(|(t, _)| *t)
}

/// What a write to a fenced account fails with, from either engine.
pub(crate) const FENCED: &str = "kontor: account fenced";

/// The states of an account in a cell's `account_fences` (no row: the account lives here, or
/// not at all).
pub(crate) const COPYING: &str = "copying";
pub(crate) const FROZEN: &str = "frozen";
pub(crate) const MOVED: &str = "moved";
pub(crate) const INCOMING: &str = "incoming";

/// A condition for housekeeping and job claims: the account is settled in this cell (no move
/// holds it frozen, gone, or arriving). While it is being copied out, work goes on: every
/// write is captured and follows it.
pub(crate) const SETTLED: &str =
    "account_id NOT IN (SELECT account_id FROM account_fences WHERE state <> 'copying')";

/// The advisory lock (PostgreSQL) that orders a change of an account's fence after every write
/// of it under way: writers hold it shared, the fence's writer exclusively.
pub(crate) const FENCE_LOCK: i32 = 7234504;

/// The fence and the capture: triggers on each of `tables` that, inside the writing
/// transaction itself,
/// - refuse any insert or update of rows of an account that is `frozen` or `moved` here, and
///   any delete while it is `frozen` (once `moved`, its old rows may be removed);
/// - refuse every write of an account that is `incoming` here but the move's own (a
///   [`MoveTx`]): a node that still routes the account here from before an earlier move must
///   not write beside the copy;
/// - while it is `copying` (a move copies it out), note the key of every row written in
///   `move_log`, which the move's catch-up replays into the new cell.
///
/// Made at open for the tables that lack them (see [`fenced_tables_sql`]): a database in use
/// sees no DDL. `keys` gives each table's primary-key columns.
pub(crate) fn fence_ddl(dialect: Dialect, tables: &[(&str, Vec<String>)]) -> Vec<String> {
    let mut out = Vec::new();
    let log = |row: &str, t: &str, keys: &[String]| {
        let cols: Vec<String> = keys.iter().map(|k| format!("{row}.{k}")).collect();
        let key = match dialect {
            Dialect::Sqlite => format!("json_array({})", cols.join(", ")),
            Dialect::Postgres => format!("CAST(json_build_array({}) AS TEXT)", cols.join(", ")),
        };
        format!(
            "INSERT INTO move_log (account_id, tbl, row_key, n) VALUES ({row}.account_id, '{t}', {key}, 1) \
             ON CONFLICT (account_id, tbl, row_key) DO UPDATE SET n = move_log.n + 1"
        )
    };
    // An account arriving here takes only the move's own writes.
    let incoming = |acct: &str| {
        format!("(state = '{INCOMING}' AND NOT EXISTS (SELECT 1 FROM move_tokens WHERE account_id = {acct} AND writing = 1))")
    };
    let copying = |row: &str| {
        format!("EXISTS (SELECT 1 FROM account_fences WHERE account_id = {row}.account_id AND state = '{COPYING}')")
    };
    match dialect {
        Dialect::Sqlite => {
            for (t, keys) in tables {
                for (op, row, states) in [
                    ("insert", "NEW", "'frozen', 'moved'"),
                    ("update", "OLD", "'frozen', 'moved'"),
                    ("delete", "OLD", "'frozen'"),
                ] {
                    // (Named `kontor_fence_…` before the incoming state was refused.)
                    out.push(format!("DROP TRIGGER IF EXISTS kontor_fence_{t}_{op}"));
                    out.push(format!("DROP TRIGGER IF EXISTS kontor_refuse_{t}_{op}"));
                    out.push(format!(
                        "CREATE TRIGGER kontor_refuse_{t}_{op} BEFORE {} ON {t} \
                         WHEN EXISTS (SELECT 1 FROM account_fences WHERE account_id = {row}.account_id AND (state IN ({states}) OR {})) \
                         BEGIN SELECT RAISE(ABORT, '{FENCED}'); END",
                        op.to_uppercase(),
                        incoming(&format!("{row}.account_id")),
                    ));
                    out.push(format!(
                        "DROP TRIGGER IF EXISTS kontor_fence_{t}_capture_{op}"
                    ));
                    let body = match op {
                        "update" => format!("{}; {}", log("OLD", t, keys), log("NEW", t, keys)),
                        _ => log(row, t, keys),
                    };
                    out.push(format!(
                        "CREATE TRIGGER kontor_fence_{t}_capture_{op} AFTER {} ON {t} \
                         WHEN {} BEGIN {body}; END",
                        op.to_uppercase(),
                        copying(row)
                    ));
                }
            }
        }
        Dialect::Postgres => {
            out.push(format!(
                "CREATE OR REPLACE FUNCTION kontor_refuse() RETURNS trigger LANGUAGE plpgsql AS $f$ \
                 DECLARE acct BIGINT; st TEXT; \
                 BEGIN \
                   IF TG_OP = 'INSERT' THEN acct := NEW.account_id; ELSE acct := OLD.account_id; END IF; \
                   PERFORM pg_advisory_xact_lock_shared({FENCE_LOCK}, CAST(acct AS INTEGER)); \
                   SELECT state INTO st FROM account_fences WHERE account_id = acct; \
                   IF (st IN ('{FROZEN}', '{MOVED}') AND (TG_OP <> 'DELETE' OR st = '{FROZEN}')) \
                      OR (st = '{INCOMING}' AND NOT EXISTS (SELECT 1 FROM move_tokens WHERE account_id = acct AND writing = 1)) THEN \
                     RAISE EXCEPTION '{FENCED} (%)', acct; \
                   END IF; \
                   IF TG_OP = 'DELETE' THEN RETURN OLD; END IF; \
                   RETURN NEW; \
                 END $f$"
            ));
            // The copy's inserts pass both triggers by the transaction setting (see
            // `COPY_SETTING`), in the triggers' own condition: neither function is called, and
            // no after-trigger event is queued, for a row the copy writes.
            let not_the_copy =
                format!("current_setting('{COPY_SETTING}', true) IS DISTINCT FROM CAST(NEW.account_id AS TEXT)");
            for (t, keys) in tables {
                out.push(format!(
                    "CREATE OR REPLACE FUNCTION kontor_capture_{t}() RETURNS trigger LANGUAGE plpgsql AS $f$ \
                     BEGIN \
                       IF TG_OP <> 'INSERT' AND {} THEN {}; END IF; \
                       IF TG_OP <> 'DELETE' AND {} THEN {}; END IF; \
                       RETURN NULL; \
                     END $f$",
                    copying("OLD"),
                    log("OLD", t, keys),
                    copying("NEW"),
                    log("NEW", t, keys),
                ));
                // (Named `kontor_fence` before the incoming state was refused; `kontor_refuse`
                // and `kontor_capture` took inserts too before the copy passed them.)
                for name in [
                    "kontor_fence",
                    "kontor_refuse",
                    "kontor_refuse_insert",
                    "kontor_capture",
                    "kontor_capture_insert",
                ] {
                    out.push(format!("DROP TRIGGER IF EXISTS {name} ON {t}"));
                }
                out.push(format!(
                    "CREATE TRIGGER kontor_refuse_insert BEFORE INSERT ON {t} \
                     FOR EACH ROW WHEN ({not_the_copy}) EXECUTE PROCEDURE kontor_refuse()"
                ));
                out.push(format!(
                    "CREATE TRIGGER kontor_refuse BEFORE UPDATE OR DELETE ON {t} \
                     FOR EACH ROW EXECUTE PROCEDURE kontor_refuse()"
                ));
                out.push(format!(
                    "CREATE TRIGGER kontor_capture_insert AFTER INSERT ON {t} \
                     FOR EACH ROW WHEN ({not_the_copy}) EXECUTE PROCEDURE kontor_capture_{t}()"
                ));
                out.push(format!(
                    "CREATE TRIGGER kontor_capture AFTER UPDATE OR DELETE ON {t} \
                     FOR EACH ROW EXECUTE PROCEDURE kontor_capture_{t}()"
                ));
            }
            // The function of the triggers' earlier name, with any of them still left.
            out.push("DROP FUNCTION IF EXISTS kontor_fence() CASCADE".to_string());
        }
    }
    out
}

/// The tables with the whole fence and capture, from the catalog.
pub(crate) fn fenced_tables_sql(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "SELECT tbl_name FROM sqlite_master WHERE type = 'trigger' AND (name LIKE 'kontor_refuse_%' OR name LIKE 'kontor_fence_%capture%') GROUP BY tbl_name HAVING COUNT(*) = 6 AND SUM(name LIKE 'kontor_refuse_%') = 3 ORDER BY 1",
        // One row per trigger and event: the insert triggers (which the copy passes) and the
        // update-or-delete ones. Tables with the triggers of before (one of each for all three
        // events) are made anew.
        Dialect::Postgres => "SELECT CAST(event_object_table AS TEXT) FROM information_schema.triggers WHERE trigger_schema = current_schema() \
             AND trigger_name IN ('kontor_refuse', 'kontor_refuse_insert', 'kontor_capture', 'kontor_capture_insert') \
             GROUP BY event_object_table HAVING COUNT(*) = 6 AND SUM(CASE WHEN trigger_name IN ('kontor_refuse_insert', 'kontor_capture_insert') THEN 1 ELSE 0 END) = 2 ORDER BY 1",
    }
}

/// On PostgreSQL, the transaction setting by which the copy into a cell (checked once per
/// transaction: see `copy_postgres`) passes the fence triggers, which cost two thirds of its
/// time row by row and decide nothing for it: the account is `incoming` there and the copy is
/// the move's own write, which they let through, and a cell that receives an account captures
/// nothing of it. Set with `set_config(…, true)`, it ends with the transaction.
pub(super) const COPY_SETTING: &str = "kontor.copy";

/// Marks (and locks) the token's row at the start of each transaction of a move (`$1`: the
/// account, `$2`: the token); no row: another runner holds the move.
pub(super) const MARK_TOKEN_SQL: &str =
    "UPDATE move_tokens SET writing = 1 WHERE account_id = $1 AND token = $2";
/// The token that holds the account's moves in a cell (`$1`: the account).
pub(super) const HELD_TOKEN_SQL: &str = "SELECT token FROM move_tokens WHERE account_id = $1";
/// The account's fence state in a cell (`$1`: the account).
pub(super) const FENCE_STATE_SQL: &str = "SELECT state FROM account_fences WHERE account_id = $1";

/// What the fence triggers would check of each row a copy writes, checked once per
/// transaction by the copiers that pass them: the account arrives in this cell (or is unknown
/// here, before the first move marks it). Anywhere else (frozen or moved here, or being copied
/// out of here) no copy belongs.
pub(super) fn copy_may_write(state: Option<&str>) -> StoreResult<()> {
    match state {
        None | Some(INCOMING) => Ok(()),
        Some(_) => Err(StoreError::Fenced(crate::error::FENCED_MESSAGE.into())),
    }
}

/// Where an account stands in a cell's fence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fence {
    /// Being copied out to `to`: writes go on here, and each one is noted for the catch-up.
    Copying { to: String },
    /// No write of the account commits here (the final catch-up of a move is underway).
    Frozen { to: String },
    /// The account now lives in `to`: nothing is written here any more; its rows may be removed.
    Moved { to: String },
    /// Being copied in from `from`: only the move writes here until the directory switches;
    /// no job of the account is claimed and housekeeping leaves it alone.
    Incoming { from: String },
}

/// The fencing token of a move's runner: larger for each runner that takes a move over, and
/// for each later move. A runner takes it in both cells ([`Store::take_move_token`]) before it
/// touches either, and every transaction of the move in a cell checks, inside itself, that the
/// cell still holds that token. A runner that lost its move (its lease lapsed while it stalled,
/// and another took over) thus fails at its next write in a cell instead of writing beside the
/// runner that replaced it: the lease decides who may start; the token, in the cell itself,
/// decides whose writes commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Token(pub i64);

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A transaction of a move's runner in a cell: begun only while the cell holds the runner's
/// [`Token`], and marked for its life as the move's own (`move_tokens.writing`), so that the
/// fence lets its writes of an arriving account through and no one else's (see
/// [`fence_ddl`]). The mark is undone before the commit, and by a rollback: no other
/// transaction ever sees it. On PostgreSQL the token's row stays locked until the end, so
/// that a runner taking a larger token waits for it and then sees all it wrote.
pub(crate) struct MoveTx<'a> {
    tx: WriteTx<'a>,
    account: i64,
}

impl MoveTx<'_> {
    pub(crate) async fn commit(mut self) -> StoreResult<()> {
        sqlx::query("UPDATE move_tokens SET writing = 0 WHERE account_id = $1")
            .bind(self.account)
            .execute(&mut *self.tx)
            .await?;
        self.tx.commit().await
    }
}

impl std::ops::Deref for MoveTx<'_> {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}
impl std::ops::DerefMut for MoveTx<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

pub(super) fn superseded(account: i64, token: Token, held: Option<i64>) -> StoreError {
    StoreError::Conflict {
        message: match held {
            Some(t) => format!(
                "the move of account {account} is run by a later runner here (token {t}, not {token})"
            ),
            None => format!("no runner took the move of account {account} here (token {token})"),
        },
        existing_id: None,
    }
}

pub(super) fn check_name(name: &str) -> StoreResult<()> {
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
    /// Takes the moves of `account` in this cell for the runner with `token` (see [`Token`]):
    /// from its commit on, every transaction of a runner with a smaller token fails here, and
    /// (PostgreSQL) those under way end first. `false` if a larger token holds it already.
    pub async fn take_move_token(&self, account: i64, token: Token) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let n = sqlx::query(
            "INSERT INTO move_tokens (account_id, token) VALUES ($1, $2) \
             ON CONFLICT (account_id) DO UPDATE SET token = excluded.token WHERE move_tokens.token <= excluded.token",
        )
        .bind(account)
        .bind(token.0)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Begins a [`MoveTx`] of the runner with `token` for `account`; fails if this cell holds
    /// another token for it.
    pub(crate) async fn move_tx(&self, account: i64, token: Token) -> StoreResult<MoveTx<'_>> {
        let mut tx = self.write().await?;
        let n = sqlx::query(MARK_TOKEN_SQL)
            .bind(account)
            .bind(token.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n != 1 {
            let held: Option<(i64,)> = sqlx::query_as(HELD_TOKEN_SQL)
                .bind(account)
                .fetch_optional(&mut *tx)
                .await?;
            return Err(superseded(account, token, held.map(|(t,)| t)));
        }
        Ok(MoveTx { tx, account })
    }

    /// Runs one statement (`$1` is the account) in a [`MoveTx`]: for tests that damage a
    /// copy while it arrives.
    #[doc(hidden)]
    pub async fn execute_in_move(&self, account: i64, token: Token, sql: &str) -> StoreResult<u64> {
        let mut tx = self.move_tx(account, token).await?;
        let n = sqlx::query(sql)
            .bind(account)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// Runs statements as they are, outside any move: for tests that make a cell look like one
    /// an older version left.
    #[doc(hidden)]
    pub async fn execute_raw(&self, sql: &str) -> StoreResult<()> {
        let _guard = self.lock_writes().await;
        sqlx::raw_sql(sql).execute(&self.pool).await?;
        Ok(())
    }

    /// Starts noting every write of `account` here for a move to `to` (see [`fence_ddl`]).
    /// From the commit of this call on, each write is captured: a write under way when it
    /// commits either ends before it or is captured.
    pub async fn start_capture(&self, account: i64, to: &str, token: Token) -> StoreResult<()> {
        self.set_fence(account, COPYING, to, token).await
    }

    /// Fences `account` in this cell: from the commit of this call on, no write of its rows
    /// commits here (a write under way when it commits ends first, or fails). `to` is the
    /// region the account is moving to.
    pub async fn fence_account(&self, account: i64, to: &str, token: Token) -> StoreResult<()> {
        self.set_fence(account, FROZEN, to, token).await
    }

    /// Records that `account` now lives in `to`: writes stay refused here for good (a node
    /// that still routes to this cell learns that the account moved), deletes are allowed so
    /// that its rows can be removed.
    pub async fn mark_account_moved(
        &self,
        account: i64,
        to: &str,
        token: Token,
    ) -> StoreResult<()> {
        self.set_fence(account, MOVED, to, token).await
    }

    /// Marks `account` as arriving from `from`: the move copies it in; its jobs and
    /// housekeeping wait here until the switch lifts this with [`Store::unfence_account`].
    pub async fn mark_incoming(&self, account: i64, from: &str, token: Token) -> StoreResult<()> {
        self.set_fence(account, INCOMING, from, token).await
    }

    async fn set_fence(
        &self,
        account: i64,
        state: &str,
        region: &str,
        token: Token,
    ) -> StoreResult<()> {
        let mut tx = self.move_tx(account, token).await?;
        if self.dialect == Dialect::Postgres {
            // Every writer of the account holds this lock shared from its first write to its
            // end (see `kontor_refuse`): taking it exclusively waits for the writes under way,
            // and those that come next see the new state. (SQLite has one writer at a time.)
            sqlx::query(&format!(
                "SELECT pg_advisory_xact_lock({FENCE_LOCK}, CAST($1 AS INTEGER))"
            ))
            .bind(account)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM account_fences WHERE account_id = $1")
            .bind(account)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO account_fences (account_id, state, region, since) VALUES ($1, $2, $3, $4)",
        )
        .bind(account)
        .bind(state)
        .bind(region)
        .bind(kontor_domain::time::now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Lifts the fence: the move failed and the account stays here, or it has arrived here.
    /// Nothing more is captured.
    pub async fn unfence_account(&self, account: i64, token: Token) -> StoreResult<()> {
        let mut tx = self.move_tx(account, token).await?;
        sqlx::query("DELETE FROM account_fences WHERE account_id = $1")
            .bind(account)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM move_log WHERE account_id = $1")
            .bind(account)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Refreshes the planner's statistics of the tables that hold accounts' rows (PostgreSQL;
    /// a no-op on SQLite, whose planner goes by the indexes' shapes). A cell that has just
    /// received an account of a million rows would otherwise plan for it as if it were empty
    /// until autovacuum came by: a unique-value lookup, for one, would read every value of the
    /// property instead of seeking the few it looks for.
    pub async fn refresh_statistics(&self) -> StoreResult<()> {
        if self.dialect != Dialect::Postgres {
            return Ok(());
        }
        for table in account_tables() {
            sqlx::query(&format!("ANALYZE {table}"))
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    pub async fn account_fence(&self, account: i64) -> StoreResult<Option<Fence>> {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT state, region FROM account_fences WHERE account_id = $1")
                .bind(account)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(state, region)| match state.as_str() {
            COPYING => Fence::Copying { to: region },
            FROZEN => Fence::Frozen { to: region },
            INCOMING => Fence::Incoming { from: region },
            _ => Fence::Moved { to: region },
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
}
