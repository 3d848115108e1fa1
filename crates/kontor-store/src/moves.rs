//! Moves of accounts between regions, as the directory records them: scheduled, claimed by a
//! runner under a lease like a job, and driven through their phases (see `kontor_jobs::moving`).
//! The directory switch, the commit point of a move, is one transaction here.

use crate::{allocate, Directory, StoreError, StoreResult};
use kontor_domain::time::now_ms;
use kontor_domain::Region;

/// Where a move is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveState {
    Scheduled,
    Running,
    Done,
    Failed,
    Canceled,
}

impl MoveState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }
    fn parse(s: &str) -> Self {
        match s {
            "running" => Self::Running,
            "done" => Self::Done,
            "failed" => Self::Failed,
            "canceled" => Self::Canceled,
            _ => Self::Scheduled,
        }
    }
    /// Scheduled or running: an account has at most one such move.
    pub fn open(self) -> bool {
        matches!(self, Self::Scheduled | Self::Running)
    }
}

/// The phases of a running move, in order.
pub const PHASE_COPY: &str = "copy";
pub const PHASE_CATCH_UP: &str = "catch_up";
pub const PHASE_FROZEN: &str = "frozen";
pub const PHASE_SWITCHED: &str = "switched";
pub const PHASE_DONE: &str = "done";
/// A move that cannot go on before its switch is undone (the `error` says why): a runner that
/// takes it over after a crash finishes the undoing, not the move.
pub const PHASE_FAILING: &str = "failing";

#[derive(Debug, Clone)]
pub struct Move {
    pub id: i64,
    pub account_id: i64,
    pub from: Region,
    pub to: Region,
    pub state: MoveState,
    pub phase: String,
    /// When it starts (epoch ms).
    pub start_at: i64,
    pub scheduled_by: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub frozen_at: Option<i64>,
    pub switched_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub canceled_at: Option<i64>,
    pub error: Option<String>,
    /// What the runner last reported (rows copied, keys pending…).
    pub progress: serde_json::Value,
    /// Compare every row of both cells once frozen, not only what changed since the last
    /// comparison: certain, at the cost of a freeze that grows with the account.
    pub full_verify: bool,
    pub attempts: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
}

impl Move {
    /// The fencing token of the runner that claimed this move (see
    /// [`crate::moving::Token`]): each claim counts an attempt, and moves of an account start
    /// in the order of their ids, one at a time.
    pub fn token(&self) -> crate::moving::Token {
        crate::moving::Token((self.id << 20) + self.attempts)
    }

    /// How long the account was (or has been) closed, in milliseconds.
    pub fn frozen_ms(&self, now: i64) -> Option<i64> {
        let from = self.frozen_at?;
        Some(self.switched_at.or(self.finished_at).unwrap_or(now) - from)
    }
}

const MOVE_COLS: &str = "id, account_id, from_region, to_region, state, phase, start_at, scheduled_by, created_at, started_at, frozen_at, switched_at, finished_at, canceled_at, error, progress, full_verify, attempts, lease_owner, lease_until";

fn move_from(row: &sqlx::any::AnyRow) -> StoreResult<Move> {
    use sqlx::Row;
    let region = |i: usize| -> StoreResult<Region> {
        let s: String = row.try_get(i)?;
        Region::parse(&s).ok_or_else(|| StoreError::Config(format!("unknown region {s}")))
    };
    let state: String = row.try_get(4)?;
    let progress: String = row.try_get(15)?;
    Ok(Move {
        id: row.try_get(0)?,
        account_id: row.try_get(1)?,
        from: region(2)?,
        to: region(3)?,
        state: MoveState::parse(&state),
        phase: row.try_get(5)?,
        start_at: row.try_get(6)?,
        scheduled_by: row.try_get(7)?,
        created_at: row.try_get(8)?,
        started_at: row.try_get(9)?,
        frozen_at: row.try_get(10)?,
        switched_at: row.try_get(11)?,
        finished_at: row.try_get(12)?,
        canceled_at: row.try_get(13)?,
        error: row.try_get(14)?,
        progress: serde_json::from_str(&progress).unwrap_or_default(),
        full_verify: row.try_get::<i64, _>(16)? != 0,
        attempts: row.try_get(17)?,
        lease_owner: row.try_get(18)?,
        lease_until: row.try_get(19)?,
    })
}

/// Refusals of the directory itself (the scheduling policy is the caller's).
fn refused(code: &str, message: impl Into<String>) -> StoreError {
    StoreError::validation(code, message.into(), None)
}

impl Directory {
    /// Records a move of `account` to `to` starting at `start_at`. Refused while the account
    /// has another move scheduled or running, or already lives in `to`.
    pub async fn schedule_move(
        &self,
        account: i64,
        to: Region,
        start_at: i64,
        by: &str,
        full_verify: bool,
    ) -> StoreResult<Move> {
        let mut tx = self.directory.write().await?;
        // Taking the account's row for update orders two schedulers of one account.
        let row: Option<(String,)> = sqlx::query_as(
            "UPDATE accounts SET updated_at = updated_at WHERE id = $1 RETURNING region",
        )
        .bind(account)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((from,)) = row else {
            return Err(StoreError::not_found("no such account"));
        };
        if from == to.as_str() {
            return Err(refused(
                "ALREADY_THERE",
                format!("the account's data is already hosted in {}", to.label()),
            ));
        }
        let (open,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM moves WHERE account_id = $1 AND state IN ('scheduled', 'running')",
        )
        .bind(account)
        .fetch_one(&mut *tx)
        .await?;
        if open > 0 {
            return Err(refused(
                "MOVE_ALREADY_SCHEDULED",
                "this account already has a data move scheduled or running",
            ));
        }
        let id = allocate(&mut tx, 0, "move", 1).await?;
        let now = now_ms();
        sqlx::query("INSERT INTO moves (id, account_id, from_region, to_region, state, phase, start_at, scheduled_by, created_at, progress, full_verify, attempts, updated_at) VALUES ($1, $2, $3, $4, 'scheduled', '', $5, $6, $7, '{}', $8, 0, $7)")
            .bind(id)
            .bind(account)
            .bind(&from)
            .bind(to.as_str())
            .bind(start_at)
            .bind(by)
            .bind(now)
            .bind(full_verify as i64)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.get_move(id)
            .await?
            .ok_or_else(|| StoreError::not_found("no such move"))
    }

    pub async fn get_move(&self, id: i64) -> StoreResult<Option<Move>> {
        let row = sqlx::query(&format!("SELECT {MOVE_COLS} FROM moves WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.directory.pool)
            .await?;
        row.as_ref().map(move_from).transpose()
    }

    /// An account's moves, newest first.
    pub async fn moves_of(&self, account: i64) -> StoreResult<Vec<Move>> {
        let rows = sqlx::query(&format!(
            "SELECT {MOVE_COLS} FROM moves WHERE account_id = $1 ORDER BY id DESC"
        ))
        .bind(account)
        .fetch_all(&self.directory.pool)
        .await?;
        rows.iter().map(move_from).collect()
    }

    /// Every move, newest first.
    pub async fn all_moves(&self) -> StoreResult<Vec<Move>> {
        let rows = sqlx::query(&format!("SELECT {MOVE_COLS} FROM moves ORDER BY id DESC"))
            .fetch_all(&self.directory.pool)
            .await?;
        rows.iter().map(move_from).collect()
    }

    /// Scheduled moves to `to` starting in `[from, until)`, for the capacity of each day.
    pub async fn moves_starting(&self, from: i64, until: i64) -> StoreResult<Vec<Move>> {
        let rows = sqlx::query(&format!(
            "SELECT {MOVE_COLS} FROM moves WHERE state IN ('scheduled', 'running', 'done') AND start_at >= $1 AND start_at < $2 ORDER BY start_at"
        ))
        .bind(from)
        .bind(until)
        .fetch_all(&self.directory.pool)
        .await?;
        rows.iter().map(move_from).collect()
    }

    /// Cancels a scheduled move. `false` if it is no longer scheduled.
    pub async fn cancel_move(&self, id: i64) -> StoreResult<bool> {
        let mut tx = self.directory.write().await?;
        let n = sqlx::query("UPDATE moves SET state = 'canceled', canceled_at = $1, updated_at = $1 WHERE id = $2 AND state = 'scheduled'")
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Moves a scheduled move to another start. `false` if it is no longer scheduled.
    pub async fn reschedule_move(&self, id: i64, start_at: i64) -> StoreResult<bool> {
        let mut tx = self.directory.write().await?;
        let n = sqlx::query(
            "UPDATE moves SET start_at = $1, updated_at = $2 WHERE id = $3 AND state = 'scheduled'",
        )
        .bind(start_at)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Claims a move that is due (scheduled and past its start, or running with a lapsed
    /// lease: its runner died) for `owner`, counting the attempt. `only` limits it to one.
    pub async fn claim_move(
        &self,
        owner: &str,
        lease_ms: i64,
        only: Option<i64>,
    ) -> StoreResult<Option<Move>> {
        let now = now_ms();
        let due: Vec<(i64,)> = sqlx::query_as(
            "SELECT id FROM moves WHERE ((state = 'scheduled' AND start_at <= $1) OR (state = 'running' AND lease_until < $1)) AND ($2 = 0 OR id = $2) ORDER BY start_at, id LIMIT 10",
        )
        .bind(now)
        .bind(only.unwrap_or(0))
        .fetch_all(&self.directory.pool)
        .await?;
        for (id,) in due {
            let mut tx = self.directory.write().await?;
            let n = sqlx::query("UPDATE moves SET state = 'running', phase = CASE WHEN phase = '' THEN 'copy' ELSE phase END, started_at = COALESCE(started_at, $1), attempts = attempts + 1, lease_owner = $2, lease_until = $3, updated_at = $1 WHERE id = $4 AND ((state = 'scheduled' AND start_at <= $1) OR (state = 'running' AND lease_until < $1))")
                .bind(now)
                .bind(owner)
                .bind(now + lease_ms)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            if n == 1 {
                return self.get_move(id).await;
            }
        }
        Ok(None)
    }

    /// Renews the lease of a move `owner` runs and stores its progress. `false` if the lease
    /// was lost (another runner took the move over).
    pub async fn renew_move(
        &self,
        id: i64,
        owner: &str,
        lease_ms: i64,
        progress: &serde_json::Value,
    ) -> StoreResult<bool> {
        let now = now_ms();
        let mut tx = self.directory.write().await?;
        let n = sqlx::query("UPDATE moves SET lease_until = $1, progress = $2, updated_at = $3 WHERE id = $4 AND state = 'running' AND lease_owner = $5")
            .bind(now + lease_ms)
            .bind(progress.to_string())
            .bind(now)
            .bind(id)
            .bind(owner)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Moves on to `phase` from `from`. `false` if the lease was lost.
    pub async fn move_phase(
        &self,
        id: i64,
        owner: &str,
        from: &str,
        phase: &str,
    ) -> StoreResult<bool> {
        let mut tx = self.directory.write().await?;
        let n = sqlx::query("UPDATE moves SET phase = $1, updated_at = $2 WHERE id = $3 AND state = 'running' AND lease_owner = $4 AND phase = $5")
            .bind(phase)
            .bind(now_ms())
            .bind(id)
            .bind(owner)
            .bind(from)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    /// The freeze, in the directory: the account answers 477 from here on. `false` if the
    /// lease was lost.
    pub async fn freeze_move(&self, mv: &Move, owner: &str) -> StoreResult<bool> {
        let now = now_ms();
        let mut tx = self.directory.write().await?;
        let n = sqlx::query("UPDATE moves SET phase = 'frozen', frozen_at = COALESCE(frozen_at, $1), updated_at = $1 WHERE id = $2 AND state = 'running' AND lease_owner = $3 AND phase IN ('catch_up', 'frozen')")
            .bind(now)
            .bind(mv.id)
            .bind(owner)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 1 {
            sqlx::query("UPDATE accounts SET state = 'migrating', updated_at = $1 WHERE id = $2")
                .bind(now)
                .bind(mv.account_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }

    /// The switch, the commit point of a move: in one transaction the account's region
    /// becomes the new one and it opens again. `false` if the lease was lost.
    pub async fn switch_move(&self, mv: &Move, owner: &str) -> StoreResult<bool> {
        let now = now_ms();
        let mut tx = self.directory.write().await?;
        let n = sqlx::query("UPDATE moves SET phase = 'switched', switched_at = $1, updated_at = $1 WHERE id = $2 AND state = 'running' AND lease_owner = $3 AND phase = 'frozen'")
            .bind(now)
            .bind(mv.id)
            .bind(owner)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 1 {
            sqlx::query(
                "UPDATE accounts SET region = $1, state = 'active', updated_at = $2 WHERE id = $3",
            )
            .bind(mv.to.as_str())
            .bind(now)
            .bind(mv.account_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Records that the move `owner` runs fails, before its switch, for `reason`: it is undone
    /// from here on ([`PHASE_FAILING`]). `false` if the lease was lost, or the move switched.
    pub async fn fail_move(&self, id: i64, owner: &str, reason: &str) -> StoreResult<bool> {
        let mut tx = self.directory.write().await?;
        let n = sqlx::query("UPDATE moves SET phase = 'failing', error = CASE WHEN phase = 'failing' THEN error ELSE $1 END, updated_at = $2 WHERE id = $3 AND state = 'running' AND lease_owner = $4 AND phase <> 'switched'")
            .bind(reason)
            .bind(now_ms())
            .bind(id)
            .bind(owner)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Ends a move `owner` runs: done, or failed with `error` (before the switch only: the
    /// account opens again where it was). `false` if the lease was lost.
    pub async fn end_move(&self, mv: &Move, owner: &str, error: Option<&str>) -> StoreResult<bool> {
        let now = now_ms();
        let mut tx = self.directory.write().await?;
        let (state, phase_ok) = match error {
            None => ("done", "phase = 'switched'"),
            Some(_) => ("failed", "phase <> 'switched'"),
        };
        let n = sqlx::query(&format!("UPDATE moves SET state = $1, phase = CASE WHEN $1 = 'done' THEN 'done' ELSE phase END, error = $2, finished_at = $3, lease_owner = NULL, lease_until = NULL, updated_at = $3 WHERE id = $4 AND state = 'running' AND lease_owner = $5 AND {phase_ok}"))
            .bind(state)
            .bind(error)
            .bind(now)
            .bind(mv.id)
            .bind(owner)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 1 && error.is_some() {
            sqlx::query("UPDATE accounts SET state = 'active', updated_at = $1 WHERE id = $2 AND region = $3")
                .bind(now)
                .bind(mv.account_id)
                .bind(mv.from.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Lets another runner take the move over at once (this one stops, e.g. on shutdown or
    /// after an error it cannot get past).
    /// `error` is kept to show why, until the move ends (a failing move keeps its reason).
    /// Puts off a claimed move that has not left its copy phase for `wait_ms`, without
    /// counting the attempt, with the reason shown where the move is shown.
    pub async fn defer_move(
        &self,
        id: i64,
        owner: &str,
        wait_ms: i64,
        why: &str,
    ) -> StoreResult<()> {
        let mut tx = self.directory.write().await?;
        sqlx::query("UPDATE moves SET lease_until = $1, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, error = $2 WHERE id = $3 AND state = 'running' AND lease_owner = $4 AND phase = 'copy'")
            .bind(now_ms() + wait_ms)
            .bind(why)
            .bind(id)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    pub async fn release_move(&self, id: i64, owner: &str, error: &str) -> StoreResult<()> {
        let mut tx = self.directory.write().await?;
        sqlx::query("UPDATE moves SET lease_until = 0, error = CASE WHEN phase = 'failing' THEN error ELSE $3 END WHERE id = $1 AND state = 'running' AND lease_owner = $2")
            .bind(id)
            .bind(owner)
            .bind(error)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// An account's operator flags (`payments`, …).
    pub async fn account_flags(&self, account: i64) -> StoreResult<Vec<String>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT flags FROM accounts WHERE id = $1")
            .bind(account)
            .fetch_optional(&self.directory.pool)
            .await?;
        let Some((flags,)) = row else {
            return Err(StoreError::not_found("no such account"));
        };
        Ok(flags
            .split(',')
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// Sets (or clears) an operator flag of an account.
    pub async fn set_account_flag(&self, account: i64, flag: &str, on: bool) -> StoreResult<()> {
        if flag.is_empty() || !flag.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(refused("INVALID_FLAG", "a flag is lowercase letters and _"));
        }
        let mut flags = self.account_flags(account).await?;
        flags.retain(|f| f != flag);
        if on {
            flags.push(flag.to_string());
        }
        flags.sort();
        let mut tx = self.directory.write().await?;
        sqlx::query("UPDATE accounts SET flags = $1, updated_at = $2 WHERE id = $3")
            .bind(flags.join(","))
            .bind(now_ms())
            .bind(account)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }
}

impl crate::Store {
    /// The follow-up items of a move ticked off: item → (by, at).
    pub async fn move_checklist(
        &self,
        account: i64,
        move_id: i64,
    ) -> StoreResult<Vec<(String, String, i64)>> {
        Ok(sqlx::query_as("SELECT item, done_by, done_at FROM move_checklist WHERE account_id = $1 AND move_id = $2 ORDER BY item")
            .bind(account)
            .bind(move_id)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Ticks a follow-up item of a move off (`done`), or on again.
    pub async fn tick_move_item(
        &self,
        account: i64,
        move_id: i64,
        item: &str,
        by: &str,
        done: bool,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query(
            "DELETE FROM move_checklist WHERE account_id = $1 AND move_id = $2 AND item = $3",
        )
        .bind(account)
        .bind(move_id)
        .bind(item)
        .execute(&mut *tx)
        .await?;
        if done {
            sqlx::query("INSERT INTO move_checklist (account_id, move_id, item, done_by, done_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(account)
                .bind(move_id)
                .bind(item)
                .bind(by)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }
}
