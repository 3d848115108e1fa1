//! Counting guesses: how many times a secret (a password, a second-factor code) may be tried
//! before its subject is locked for a while.
//!
//! An attempt is *reserved* before the secret is checked, by one conditional upsert that
//! either counts it or finds the subject locked. Checking first and counting after would let
//! concurrent guesses all be checked while the count catches up; reserving makes the count the
//! gate. Each factor has its own count, so the right password does not clear the count of
//! wrong codes, and a success clears only the count of the factor it proved.

use crate::{Directory, StoreResult};
use kontor_domain::time::now_ms;

/// What is being guessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    /// A password, counted per e-mail address (across the accounts that have it).
    Password,
    /// A TOTP or recovery code, counted per user.
    SecondFactor,
    /// A request for a password reset link, counted per e-mail address (not a guess, but
    /// each one sends an e-mail, so it is bounded the same way).
    PasswordReset,
}

/// Attempts allowed for one subject and factor within a window.
pub const MAX_ATTEMPTS: i64 = 5;
/// The window: after `MAX_ATTEMPTS` within it, the subject is locked until it ends.
pub const ATTEMPT_WINDOW_MS: i64 = 15 * 60 * 1000;

impl Factor {
    fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::SecondFactor => "second_factor",
            Self::PasswordReset => "password_reset",
        }
    }
}

/// The subject of a user's second-factor count.
pub fn user_subject(account: i64, user_id: i64) -> String {
    format!("user:{account}:{user_id}")
}

/// The subject of a password count: the e-mail address as sign-in reads it.
pub fn email_subject(email: &str) -> String {
    format!("email:{}", email.trim().to_lowercase())
}

impl Directory {
    /// Counts one attempt at `factor` for `subject`. `Ok(Err(until))` when the subject is
    /// locked: the attempt was not counted and must not be checked.
    pub async fn reserve_attempt(
        &self,
        subject: &str,
        factor: Factor,
    ) -> StoreResult<Result<(), i64>> {
        let now = now_ms();
        let mut tx = self.directory.write().await?;
        // A window that is over starts afresh; one that is full refuses (no row changes).
        let n = sqlx::query(
            "INSERT INTO attempts (subject, factor, count, window_start) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (subject, factor) DO UPDATE SET \
               count = CASE WHEN $3 - attempts.window_start >= $4 THEN 1 ELSE attempts.count + 1 END, \
               window_start = CASE WHEN $3 - attempts.window_start >= $4 THEN $3 ELSE attempts.window_start END \
             WHERE attempts.count < $5 OR $3 - attempts.window_start >= $4",
        )
        .bind(subject)
        .bind(factor.as_str())
        .bind(now)
        .bind(ATTEMPT_WINDOW_MS)
        .bind(MAX_ATTEMPTS)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 1 {
            tx.commit().await?;
            return Ok(Ok(()));
        }
        let (start,): (i64,) =
            sqlx::query_as("SELECT window_start FROM attempts WHERE subject = $1 AND factor = $2")
                .bind(subject)
                .bind(factor.as_str())
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(Err(start + ATTEMPT_WINDOW_MS))
    }

    /// When `subject` is locked for `factor`, the instant it opens again (nothing counted).
    pub async fn attempts_locked_until(
        &self,
        subject: &str,
        factor: Factor,
    ) -> StoreResult<Option<i64>> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT count, window_start FROM attempts WHERE subject = $1 AND factor = $2",
        )
        .bind(subject)
        .bind(factor.as_str())
        .fetch_optional(&self.directory.pool)
        .await?;
        let now = now_ms();
        Ok(row.and_then(|(n, start)| {
            (n >= MAX_ATTEMPTS && now - start < ATTEMPT_WINDOW_MS)
                .then_some(start + ATTEMPT_WINDOW_MS)
        }))
    }

    /// The secret was right: forget the count of this factor (only this one).
    pub async fn clear_attempts(&self, subject: &str, factor: Factor) -> StoreResult<()> {
        let mut tx = self.directory.write().await?;
        sqlx::query("DELETE FROM attempts WHERE subject = $1 AND factor = $2")
            .bind(subject)
            .bind(factor.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Deletes counts whose window is over: they neither lock nor count.
    pub async fn purge_old_attempts(&self, now: i64) -> StoreResult<u64> {
        let mut tx = self.directory.write().await?;
        let n = sqlx::query("DELETE FROM attempts WHERE window_start <= $1")
            .bind(now - ATTEMPT_WINDOW_MS)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }
}
