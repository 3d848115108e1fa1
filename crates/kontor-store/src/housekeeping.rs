//! Deleting what has outlived its use: each sweep takes `now`, so the retention rules are
//! tested without waiting. The job runner's housekeeping loop calls them.

use crate::moving::SETTLED;
use crate::{Store, StoreResult};

impl Store {
    /// Deletes sessions past their expiry (they open nothing already). Returns how many.
    pub async fn purge_expired_sessions(&self, now: i64) -> StoreResult<u64> {
        let mut tx = self.write().await?;
        let n = sqlx::query(&format!(
            "DELETE FROM sessions WHERE expires_at <= $1 AND {SETTLED}"
        ))
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// Deletes restore plans past their expiry that were never applied (an applied plan stays
    /// with its restore, which refers to it).
    pub async fn purge_expired_restore_plans(&self, now: i64) -> StoreResult<u64> {
        let mut tx = self.write().await?;
        let n = sqlx::query(&format!(
            "DELETE FROM restore_plans WHERE expires_at <= $1 AND import_id IS NULL AND {SETTLED}"
        ))
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }
}

/// How long the rejected rows of an import are kept after it ended.
pub const IMPORT_ERRORS_DAYS: i64 = 90;
/// How long a notification is kept after it was read, and an unread one after it was made.
pub const READ_NOTIFICATION_DAYS: i64 = 30;
pub const UNREAD_NOTIFICATION_DAYS: i64 = 180;
/// How long the uploaded file of an import that did not finish (failed, canceled) is kept
/// after it ended, for looking into; a finished import's file is deleted when it finishes.
pub const IMPORT_FILE_DAYS: i64 = 14;

const DAY_MS: i64 = 86_400_000;

impl Store {
    /// Deletes the rejected rows of imports that ended `IMPORT_ERRORS_DAYS` before `now` (the
    /// import keeps its counts), a few imports per transaction; of one account, or of all.
    /// Returns how many rows went.
    pub async fn purge_old_import_errors(
        &self,
        now: i64,
        account: Option<i64>,
    ) -> StoreResult<u64> {
        let before = now - IMPORT_ERRORS_DAYS * DAY_MS;
        let mut total = 0;
        loop {
            let ended: Vec<(i64, i64)> = sqlx::query_as(&format!(
                "SELECT i.account_id, i.id FROM imports i WHERE i.finished_at IS NOT NULL AND i.finished_at <= $1 \
                 AND ($2 = 0 OR i.account_id = $2) AND i.{SETTLED} AND EXISTS (SELECT 1 FROM import_errors e WHERE e.account_id = i.account_id AND e.import_id = i.id) LIMIT 20",
            ))
            .bind(before)
            .bind(account.unwrap_or(0))
            .fetch_all(&self.pool)
            .await?;
            if ended.is_empty() {
                return Ok(total);
            }
            let mut tx = self.write().await?;
            for (account, import) in ended {
                total += sqlx::query(
                    "DELETE FROM import_errors WHERE account_id = $1 AND import_id = $2",
                )
                .bind(account)
                .bind(import)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            tx.commit().await?;
        }
    }

    /// Deletes notifications read `READ_NOTIFICATION_DAYS` before `now`, and unread ones made
    /// `UNREAD_NOTIFICATION_DAYS` before it; of one account, or of all. Returns how many.
    pub async fn purge_old_notifications(
        &self,
        now: i64,
        account: Option<i64>,
    ) -> StoreResult<u64> {
        let mut tx = self.write().await?;
        let n = sqlx::query(&format!(
            "DELETE FROM notifications WHERE ($3 = 0 OR account_id = $3) \
             AND ((read_at IS NOT NULL AND read_at <= $1) OR at <= $2) AND {SETTLED}",
        ))
        .bind(now - READ_NOTIFICATION_DAYS * DAY_MS)
        .bind(now - UNREAD_NOTIFICATION_DAYS * DAY_MS)
        .bind(account.unwrap_or(0))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// Whether housekeeping may delete the import file `key` of `account` at `now`: no import
    /// names it (a file left by a request cut off before its import was recorded), or its
    /// import ended `IMPORT_FILE_DAYS` before `now`. An import waiting or running keeps it.
    pub async fn import_file_expired(
        &self,
        account: i64,
        key: &str,
        now: i64,
    ) -> StoreResult<bool> {
        if self.account_fence(account).await?.is_some() {
            // A move holds the account: its files move with it.
            return Ok(false);
        }
        let rows: Vec<(String, Option<i64>)> = sqlx::query_as(
            "SELECT state, finished_at FROM imports WHERE account_id = $1 AND file_key = $2",
        )
        .bind(account)
        .bind(key)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().all(|(state, finished)| {
            !matches!(
                state.as_str(),
                crate::imports::STARTED | crate::imports::PROCESSING
            ) && finished.is_some_and(|f| f <= now - IMPORT_FILE_DAYS * DAY_MS)
        }))
    }

    /// Records that the file `key` of `account` was deleted: imports no longer name it.
    pub async fn forget_import_file(&self, account: i64, key: &str) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE imports SET file_key = NULL WHERE account_id = $1 AND file_key = $2")
            .bind(account)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
