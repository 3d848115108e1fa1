//! The rules of scheduling a data move, the same for the console, the API and the operator's
//! CLI: a date with room at least `notice_days` ahead and not a blackout date, a route the
//! operator allows (by default `us → eu` only), no account that uses payments, one open move
//! per account, cancelling or rescheduling until `cancel_hours` before the start, and imports
//! closed from `imports_closed_hours` before it until it ends.

use crate::Jobs;
use kontor_domain::time::{date_string, iso, now_ms, parse_instant};
use kontor_domain::Region;
use kontor_store::{Account, Move, MoveState, StoreError, StoreResult};
use serde_json::json;

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// The operator's rules for data moves (`[moves]` in the configuration).
#[derive(Debug, Clone)]
pub struct Policy {
    /// The earliest start, in days from now.
    pub notice_days: i64,
    /// A move can be cancelled or rescheduled until this many hours before its start.
    pub cancel_hours: i64,
    /// Imports are refused from this many hours before the start until the move ends.
    pub imports_closed_hours: i64,
    /// Moves a day each region accepts.
    pub per_day: i64,
    /// Days (`YYYY-MM-DD`) on which no move starts.
    pub blackouts: Vec<String>,
    /// The moves allowed, from → to.
    pub routes: Vec<(Region, Region)>,
    /// The hour (UTC) at which the moves of a day start.
    pub start_hour_utc: i64,
    /// How far ahead dates are offered, in days.
    pub horizon_days: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            notice_days: 7,
            cancel_hours: 36,
            imports_closed_hours: 24,
            per_day: 10,
            blackouts: Vec::new(),
            routes: vec![(Region::Us, Region::Eu)],
            start_hour_utc: 2,
            horizon_days: 60,
        }
    }
}

fn refuse(code: &str, message: impl Into<String>) -> StoreError {
    StoreError::validation(code, message, None)
}

impl Policy {
    /// When a move on `day` (`YYYY-MM-DD`) starts.
    pub fn start_of(&self, day: &str) -> Option<i64> {
        let midnight = parse_instant(day).filter(|_| day.len() == 10)?;
        Some(midnight + self.start_hour_utc * HOUR_MS)
    }
}

impl Jobs {
    /// The days a move to `to` can start on: from the earliest allowed on, not blackout dates,
    /// with room left that day.
    pub async fn available_move_days(&self, to: Region) -> StoreResult<Vec<String>> {
        let p = &self.policy;
        let first = now_ms() + p.notice_days * DAY_MS;
        let until = first + p.horizon_days * DAY_MS;
        let taken = self
            .dir
            .moves_starting(first - DAY_MS, until + DAY_MS)
            .await?;
        let mut out = Vec::new();
        let mut day = first - first.rem_euclid(DAY_MS);
        while day < until {
            if let Some(d) = date_string(day) {
                let start = p.start_of(&d).unwrap_or(day);
                let used = taken
                    .iter()
                    .filter(|m| m.to == to && date_string(m.start_at).as_deref() == Some(&d))
                    .count() as i64;
                if start >= first && !p.blackouts.contains(&d) && used < p.per_day {
                    out.push(d);
                }
            }
            day += DAY_MS;
        }
        Ok(out)
    }

    /// Why `account` cannot be moved to `to` at all, if it cannot: the route, payments, a move
    /// already open.
    pub async fn move_refusal(
        &self,
        account: &Account,
        to: Region,
    ) -> StoreResult<Option<StoreError>> {
        if account.region == to {
            return Ok(Some(refuse(
                "ALREADY_THERE",
                format!("This account's data is already hosted in {}.", to.label()),
            )));
        }
        if !self.policy.routes.contains(&(account.region, to)) {
            return Ok(Some(refuse(
                "MOVE_NOT_OFFERED",
                format!(
                    "Moving data from {} to {} is not offered by this installation.",
                    account.region.label(),
                    to.label()
                ),
            )));
        }
        if self
            .dir
            .account_flags(account.id)
            .await?
            .iter()
            .any(|f| f == "payments")
        {
            return Ok(Some(refuse(
                "PAYMENTS_IN_USE",
                "This account uses payments, which cannot be moved to another region.",
            )));
        }
        if let Some(open) = self.open_move(account.id).await? {
            let how = if open.state == MoveState::Running {
                "running"
            } else {
                "scheduled"
            };
            return Ok(Some(refuse(
                "MOVE_ALREADY_SCHEDULED",
                format!(
                    "This account already has a data move {how} (move {}).",
                    open.id
                ),
            )));
        }
        Ok(None)
    }

    /// The account's scheduled or running move.
    pub async fn open_move(&self, account: i64) -> StoreResult<Option<Move>> {
        Ok(self
            .dir
            .moves_of(account)
            .await?
            .into_iter()
            .find(|m| m.state.open()))
    }

    /// Schedules a move of `account` to `to` on `day`, by the rules, and audits it.
    pub async fn schedule_move(
        &self,
        account: &Account,
        to: Region,
        day: &str,
        by: &str,
        by_user: Option<i64>,
    ) -> StoreResult<Move> {
        if let Some(refusal) = self.move_refusal(account, to).await? {
            return Err(refusal);
        }
        let start = self.check_day(to, day).await?;
        let mv = self
            .dir
            .schedule_move(account.id, to, start, by, false)
            .await?;
        let message = format!(
            "Scheduled a move of this account's data to {} on {day}.",
            to.label()
        );
        self.audit_move(account, by_user, by, "data_move.scheduled", &mv, message)
            .await?;
        super::tell_super_admins(
            self.dir.cell(account)?,
            account.id,
            kontor_store::OUTBOX_MOVE_SCHEDULED,
            mv.id,
        )
        .await
        .map_err(|e| StoreError::Config(format!("{e:#}")))?;
        Ok(mv)
    }

    /// Moves a scheduled move to another day, by the same rules, until `cancel_hours` before
    /// its start.
    pub async fn reschedule_move(
        &self,
        account: &Account,
        mv: &Move,
        day: &str,
        by: &str,
        by_user: Option<i64>,
    ) -> StoreResult<Move> {
        self.check_changeable(mv)?;
        let start = self.check_day(mv.to, day).await?;
        if !self.dir.reschedule_move(mv.id, start).await? {
            return Err(started());
        }
        let mv = self
            .dir
            .get_move(mv.id)
            .await?
            .ok_or_else(|| StoreError::not_found("no such move"))?;
        let message = format!("Moved the data move to {} to {day}.", mv.to.label());
        self.audit_move(account, by_user, by, "data_move.rescheduled", &mv, message)
            .await?;
        Ok(mv)
    }

    /// Cancels a scheduled move, until `cancel_hours` before its start.
    pub async fn cancel_move(
        &self,
        account: &Account,
        mv: &Move,
        by: &str,
        by_user: Option<i64>,
    ) -> StoreResult<()> {
        self.check_changeable(mv)?;
        if !self.dir.cancel_move(mv.id).await? {
            return Err(started());
        }
        let message = format!("Cancelled the data move to {}.", mv.to.label());
        self.audit_move(account, by_user, by, "data_move.canceled", mv, message)
            .await
    }

    /// The move that closes imports into `account` now, if one does: from
    /// `imports_closed_hours` before its start until it ends.
    pub async fn move_closing_imports(&self, account: i64) -> StoreResult<Option<Move>> {
        let Some(mv) = self.open_move(account).await? else {
            return Ok(None);
        };
        Ok((mv.start_at - now_ms() <= self.policy.imports_closed_hours * HOUR_MS).then_some(mv))
    }

    fn check_changeable(&self, mv: &Move) -> StoreResult<()> {
        if mv.state != MoveState::Scheduled {
            return Err(started());
        }
        if mv.start_at - now_ms() < self.policy.cancel_hours * HOUR_MS {
            return Err(refuse(
                "TOO_LATE_TO_CHANGE",
                format!(
                    "A data move can be cancelled or rescheduled until {} hours before it starts; this one starts at {}.",
                    self.policy.cancel_hours,
                    iso(mv.start_at)
                ),
            ));
        }
        Ok(())
    }

    async fn check_day(&self, to: Region, day: &str) -> StoreResult<i64> {
        let Some(start) = self.policy.start_of(day) else {
            return Err(refuse(
                "INVALID_DATE",
                format!("{day:?} is not a date (YYYY-MM-DD)."),
            ));
        };
        if start < now_ms() + self.policy.notice_days * DAY_MS {
            return Err(refuse(
                "TOO_SOON",
                format!(
                    "A data move must be scheduled at least {} days ahead.",
                    self.policy.notice_days
                ),
            ));
        }
        if !self.available_move_days(to).await?.iter().any(|d| d == day) {
            return Err(refuse(
                "DATE_UNAVAILABLE",
                format!(
                    "{day} is not available for a data move to {}: pick another date.",
                    to.label()
                ),
            ));
        }
        Ok(start)
    }

    async fn audit_move(
        &self,
        account: &Account,
        by_user: Option<i64>,
        by: &str,
        action: &str,
        mv: &Move,
        message: String,
    ) -> StoreResult<()> {
        let details = json!({
            "message": message, "move": mv.id, "to": mv.to.as_str(), "start": iso(mv.start_at),
        });
        self.dir
            .cell(account)?
            .audit(
                account.id,
                by_user,
                by,
                action,
                &format!("move {}", mv.id),
                details,
            )
            .await
    }
}

fn started() -> StoreError {
    refuse("MOVE_STARTED", "This move has already started or ended.")
}
