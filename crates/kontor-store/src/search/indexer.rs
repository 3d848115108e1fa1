//! The indexer: keeps the search index behind the change log, never in a writer's way.
//!
//! Writes do not touch the index. Each account has a cursor (`index_cursors`): every change up
//! to it is in the index. The indexer reads the entries past the cursor, and for each record
//! they name takes its rows away and adds them again from what the record holds now (a record
//! gone or in the recycle bin gets none), writing only the rows that differ, then moves the
//! cursor, all in one transaction. So it is idempotent, and the order of the entries does not
//! matter; a cursor moved by another node meanwhile makes it roll back.
//!
//! A search reads the cursor first, then which records changed past it (the **delta**): their
//! rows may be stale, so the index's answer leaves them out and the matcher decides them from
//! their current values (`exec.rs`). The answer is exact however far the indexer is behind;
//! only its cost grows with the lag, and past [`MAX_DELTA`] entries a search is the matcher's
//! scan of the type.
//!
//! Batching is the point: the rows of thousands of records are written in key order in one
//! transaction, where a write's own transaction would touch a page of each B-tree for each
//! value. A request's write costs what it did without an index. On SQLite a batch holds the
//! one writer's lock, so it ends early, a step at a time, when a write waits for it. On
//! PostgreSQL one node at a time indexes an account (an advisory lock), the others pass it.
//!
//! An account a move holds in this cell is not indexed (the new cell builds its own index): a
//! batch begun before the fence rolls back at its next step, or just before it commits.

use super::index::IndexWrite;
use super::plan::Building;
use super::sort_keys::IndexAt;
use crate::{Store, StoreResult};
use kontor_domain::PropertyType;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Where a search of a type reads the index from ([`Store::index_state`]).
pub(super) struct IndexState {
    pub at: IndexAt,
    /// The change log's last entry.
    pub head: i64,
    pub building: Building,
}

/// Change-log entries read at a time.
const ENTRIES: i64 = 100_000;
/// Records indexed per transaction, at most.
const RECORDS: usize = 10_000;
/// Records indexed per step of a transaction: after each, it ends if a write is waiting for
/// the writer's lock (SQLite) or it has run for [`BATCH_TIME`].
const STEP: usize = 500;
const BATCH_TIME: std::time::Duration = std::time::Duration::from_secs(5);
/// A search whose account's index is further behind than this many entries scans instead.
pub const MAX_DELTA: i64 = 20_000;
/// The advisory lock (PostgreSQL) a node holds while it indexes an account; a build's batch
/// waits for it, since both rewrite the account's posting lists (`grams.rs`).
pub(super) const INDEX_LOCK: i32 = 7234505;

/// Where an account's index stands against its change log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexLag {
    pub account: i64,
    /// Every change up to this sequence is in the index.
    pub cursor: i64,
    /// The change log's last sequence.
    pub head: i64,
}

impl Store {
    /// The accounts of this cell whose index is behind their change log, but for those a
    /// move holds (its copy would carry the index's writes for nothing: the index is not
    /// moved, the new cell builds its own).
    pub async fn index_lags(&self) -> StoreResult<Vec<IndexLag>> {
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT c.account_id, COALESCE(i.seq, 0), c.value FROM counters c LEFT JOIN index_cursors i ON i.account_id = c.account_id WHERE c.name = 'change' AND c.value > COALESCE(i.seq, 0) AND NOT EXISTS (SELECT 1 FROM account_fences f WHERE f.account_id = c.account_id) ORDER BY c.account_id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(account, cursor, head)| IndexLag {
                account,
                cursor,
                head,
            })
            .collect())
    }

    /// An account's index cursor.
    pub(super) async fn index_cursor(&self, account: i64) -> StoreResult<i64> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT seq FROM index_cursors WHERE account_id = $1")
                .bind(account)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map_or(0, |r| r.0))
    }

    /// The change log's last sequence in an account.
    pub(super) async fn change_head(&self, account: i64) -> StoreResult<i64> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT value FROM counters WHERE account_id = $1 AND name = 'change'")
                .bind(account)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map_or(0, |r| r.0))
    }

    /// Indexes the next changes of an account: up to [`RECORDS`] records, a [`STEP`] at a
    /// time, fewer when a write waits or the batch has taken [`BATCH_TIME`]. Returns the
    /// entries it covered: 0 when there were none, or another node moved the cursor first.
    pub async fn index_changes(&self, account: i64) -> StoreResult<i64> {
        let began = std::time::Instant::now();
        let cursor = self.index_cursor(account).await?;
        let entries: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT seq, object_type, record_id FROM changes WHERE account_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(account)
        .bind(cursor)
        .bind(ENTRIES)
        .fetch_all(&self.pool)
        .await?;
        if entries.is_empty() {
            // Nothing is logged past the cursor, yet the counter says more: sequences a
            // rolled-back write took, or entries a purge removed. The cursor passes them.
            let head = self.change_head(account).await?;
            if head > cursor {
                self.move_index_cursor(account, cursor, head).await?;
            }
            return Ok(0);
        }
        // The records named, in the order they first appear, up to RECORDS of them; with
        // each, the entry before its first (where the cursor stops if the batch ends before
        // it). The whole batch ends at the last entry taken.
        let mut records: Vec<(i64, &str, i64)> = Vec::new();
        let mut seen = HashSet::new();
        let mut upto = cursor;
        for (seq, object_type, id) in &entries {
            if !seen.contains(id) {
                if seen.len() == RECORDS {
                    break;
                }
                seen.insert(*id);
                records.push((upto, object_type, *id));
            }
            upto = *seq;
        }
        let mut kinds: HashMap<&str, HashMap<String, PropertyType>> = HashMap::new();
        for (_, object_type, _) in &records {
            if !kinds.contains_key(object_type) {
                let defs = self.properties(account, object_type, false).await?;
                kinds.insert(
                    object_type,
                    defs.iter().map(|d| (d.name.clone(), d.kind)).collect(),
                );
            }
        }
        let mut tx = self.write_quietly().await?;
        if !self.claim_index(&mut tx, account).await? {
            return Ok(0);
        }
        for (n, step) in records.chunks(STEP).enumerate() {
            if Self::index_held(&mut tx, account).await? {
                return Ok(0);
            }
            let mut by_type: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
            for (_, object_type, id) in step {
                by_type.entry(object_type).or_default().push(*id);
            }
            for (object_type, ids) in by_type {
                let mut index = IndexWrite::with_kinds(kinds[object_type].clone());
                index
                    .remove_stored(&mut tx, account, object_type, &ids)
                    .await?;
                for (id, props) in
                    super::index::props_of(&mut tx, account, object_type, &ids).await?
                {
                    index.add(id, &props);
                }
                index.flush(&mut tx, account, object_type).await?;
            }
            let next = (n + 1) * STEP;
            if next < records.len() && (self.writer_waiting() || began.elapsed() > BATCH_TIME) {
                upto = records[next].0;
                break;
            }
        }
        if !self.may_commit_index(&mut tx, account).await?
            || !Self::set_index_cursor(&mut tx, account, cursor, upto).await?
        {
            return Ok(0);
        }
        tx.commit().await?;
        Ok(upto - cursor)
    }

    /// On PostgreSQL, where several nodes index a cell at once: `false` when another one is
    /// indexing the account (it would otherwise wait on that one's rows, key by key, only to
    /// find the cursor moved). SQLite has one writer at a time.
    async fn claim_index(&self, conn: &mut sqlx::AnyConnection, account: i64) -> StoreResult<bool> {
        if self.dialect != crate::Dialect::Postgres {
            return Ok(true);
        }
        let (got,): (bool,) = sqlx::query_as(&format!(
            "SELECT pg_try_advisory_xact_lock({INDEX_LOCK}, CAST($1 AS INTEGER))"
        ))
        .bind(account)
        .fetch_one(&mut *conn)
        .await?;
        Ok(got)
    }

    /// Whether a move holds the account in this cell (see [`Store::index_lags`]): a batch
    /// begun before the fence stops, rather than race the move's removal of the account's rows.
    async fn index_held(conn: &mut sqlx::AnyConnection, account: i64) -> StoreResult<bool> {
        let row: Option<(String,)> = sqlx::query_as(crate::moving::FENCE_STATE_SQL)
            .bind(account)
            .fetch_optional(&mut *conn)
            .await?;
        Ok(row.is_some())
    }

    /// Just before a batch commits: no move holds the account, nor is one raising its fence.
    /// On PostgreSQL the fence's writer takes [`crate::moving::FENCE_LOCK`] exclusively after
    /// every write under way; the batch holds it shared from here to its commit, or gives up
    /// if the fence's writer has it (the batch is then redone, or not needed).
    async fn may_commit_index(
        &self,
        conn: &mut sqlx::AnyConnection,
        account: i64,
    ) -> StoreResult<bool> {
        if self.dialect == crate::Dialect::Postgres {
            let (got,): (bool,) = sqlx::query_as(&format!(
                "SELECT pg_try_advisory_xact_lock_shared({}, CAST($1 AS INTEGER))",
                crate::moving::FENCE_LOCK
            ))
            .bind(account)
            .fetch_one(&mut *conn)
            .await?;
            if !got {
                return Ok(false);
            }
        }
        Ok(!Self::index_held(conn, account).await?)
    }

    async fn move_index_cursor(&self, account: i64, from: i64, to: i64) -> StoreResult<()> {
        let mut tx = self.write_quietly().await?;
        if Self::set_index_cursor(&mut tx, account, from, to).await? {
            tx.commit().await?;
        }
        Ok(())
    }

    /// Moves the cursor from `from` to `to`; `false` if it is no longer at `from`.
    async fn set_index_cursor(
        conn: &mut sqlx::AnyConnection,
        account: i64,
        from: i64,
        to: i64,
    ) -> StoreResult<bool> {
        let n = if from == 0 {
            // A new index, a new epoch (see `sort_keys`).
            sqlx::query("INSERT INTO index_cursors (account_id, seq, epoch) VALUES ($1, $2, $3) ON CONFLICT (account_id) DO UPDATE SET seq = $2 WHERE index_cursors.seq = 0")
                .bind(account)
                .bind(to)
                .bind(rand::random::<i64>())
                .execute(&mut *conn)
                .await?
        } else {
            sqlx::query("UPDATE index_cursors SET seq = $1 WHERE account_id = $2 AND seq = $3")
                .bind(to)
                .bind(account)
                .bind(from)
                .execute(&mut *conn)
                .await?
        };
        Ok(n.rows_affected() == 1)
    }

    /// Indexes an account's changes until its index is level with its change log (tests, and
    /// `kontor admin` after a bulk load). Returns the entries covered.
    pub async fn index_all_changes(&self, account: i64) -> StoreResult<i64> {
        let mut n = 0;
        loop {
            let done = self.index_changes(account).await?;
            n += done;
            if done == 0 {
                if self.index_cursor(account).await? >= self.change_head(account).await? {
                    return Ok(n);
                }
                // Another node has the account (PostgreSQL), or a move holds it: waits for
                // it rather than asking again at once.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }

    /// Where a search of a type reads the index from: the account's index cursor and epoch,
    /// its change log's head (one snapshot: the cursor is never past the head) and the
    /// properties of the type whose index is being built.
    pub(super) async fn index_state(
        &self,
        account: i64,
        object_type: &str,
    ) -> StoreResult<IndexState> {
        let builds = match self.dialect {
            crate::Dialect::Sqlite => "group_concat(property, ',')",
            crate::Dialect::Postgres => "string_agg(property, ',')",
        };
        type Row = (Option<i64>, Option<i64>, Option<i64>, Option<String>);
        let (cursor, epoch, head, building): Row =
            sqlx::query_as(&format!(
                "SELECT (SELECT seq FROM index_cursors WHERE account_id = $1), (SELECT epoch FROM index_cursors WHERE account_id = $1), (SELECT value FROM counters WHERE account_id = $1 AND name = 'change'), (SELECT {builds} FROM index_builds WHERE account_id = $1 AND object_type = $2)"
            ))
            .bind(account)
            .bind(object_type)
            .fetch_one(&self.pool)
            .await?;
        // Property names are letters, digits and underscores.
        let building = building
            .iter()
            .flat_map(|b| b.split(','))
            .map(str::to_string)
            .collect();
        Ok(IndexState {
            at: IndexAt {
                epoch: epoch.unwrap_or(0),
                cursor: cursor.unwrap_or(0),
            },
            head: head.unwrap_or(0),
            building: Building(building),
        })
    }

    /// The records of a type changed past the cursor (read after it).
    pub(super) async fn index_delta(
        &self,
        account: i64,
        object_type: &str,
        cursor: i64,
    ) -> StoreResult<Vec<i64>> {
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT DISTINCT record_id FROM changes WHERE account_id = $1 AND seq > $2 AND object_type = $3",
        )
        .bind(account)
        .bind(cursor)
        .bind(object_type)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(i,)| i).collect())
    }
}
