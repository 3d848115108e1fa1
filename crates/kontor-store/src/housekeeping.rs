//! Deleting what has outlived its use: each sweep takes `now`, so the retention rules are
//! tested without waiting. The job runner's housekeeping loop calls them.

use crate::{Store, StoreResult};

impl Store {
    /// Deletes sessions past their expiry (they open nothing already). Returns how many.
    pub async fn purge_expired_sessions(&self, now: i64) -> StoreResult<u64> {
        let mut tx = self.write().await?;
        let n = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
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
        let n =
            sqlx::query("DELETE FROM restore_plans WHERE expires_at <= $1 AND import_id IS NULL")
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        tx.commit().await?;
        Ok(n)
    }
}
