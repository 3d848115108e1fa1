//! The notification outbox of finished jobs.
//!
//! The transaction that ends a job (and only while its runner still holds the lease) also
//! writes what the requester must be told: one `job_outbox` row naming the event and what it
//! is about. A dispatcher delivers each row later, from any node: the in-app notification is
//! inserted in the same transaction that marks the row's in-app part done, so it appears
//! exactly once however often delivery is retried. The e-mail is claimed for a while, sent,
//! then marked sent: a process that dies between sending and marking sends it again once the
//! claim lapses (at least once, documented in `docs/architecture.md`).

use crate::{allocate, Store, StoreResult};
use kontor_domain::time::now_ms;

/// A backup's archive was published.
pub const OUTBOX_BACKUP_READY: &str = "backup.ready";
/// A backup failed.
pub const OUTBOX_BACKUP_FAILED: &str = "backup.failed";
/// An import or a restore finished or failed (the import row says which).
pub const OUTBOX_IMPORT_FINISHED: &str = "import.finished";
/// A data move was scheduled, its week began, it starts tomorrow, it is done, it failed: each
/// told to every super admin (the event's `recipient`), about the move `target_id`.
pub const OUTBOX_MOVE_SCHEDULED: &str = "move.scheduled";
pub const OUTBOX_MOVE_WEEK: &str = "move.week";
pub const OUTBOX_MOVE_TOMORROW: &str = "move.tomorrow";
pub const OUTBOX_MOVE_DONE: &str = "move.done";
pub const OUTBOX_MOVE_FAILED: &str = "move.failed";

#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub account_id: i64,
    pub id: i64,
    pub kind: String,
    /// The backup or the import the event is about.
    pub target_id: i64,
    pub created_at: i64,
    pub in_app_at: Option<i64>,
    pub mailed_at: Option<i64>,
    /// The user the event is for, when the event names one (data moves).
    pub recipient: Option<i64>,
}

/// The in-app part of an event: who sees it and what.
pub struct InApp<'a> {
    pub user_id: i64,
    pub title: &'a str,
    pub body: &'a str,
    pub link: Option<&'a str>,
}

type Row = (
    i64,
    i64,
    String,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);
const COLS: &str = "account_id, id, kind, target_id, created_at, in_app_at, mailed_at, recipient";

fn item(r: Row) -> OutboxItem {
    OutboxItem {
        account_id: r.0,
        id: r.1,
        kind: r.2,
        target_id: r.3,
        created_at: r.4,
        in_app_at: r.5,
        mailed_at: r.6,
        recipient: r.7,
    }
}

impl Store {
    /// Writes an event inside the transaction that ends its job.
    pub(crate) async fn enqueue_outbox(
        conn: &mut sqlx::AnyConnection,
        account: i64,
        kind: &str,
        target: i64,
        now: i64,
    ) -> StoreResult<()> {
        let id = allocate(conn, account, "job_outbox", 1).await?;
        sqlx::query("INSERT INTO job_outbox (account_id, id, kind, target_id, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(account)
            .bind(id)
            .bind(kind)
            .bind(target)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Writes an event about `target` for each of `recipients`, once: an event already written
    /// (by an earlier attempt, or another node) is not written again.
    pub async fn enqueue_once(
        &self,
        account: i64,
        kind: &str,
        target: i64,
        recipients: &[i64],
    ) -> StoreResult<usize> {
        let mut tx = self.write().await?;
        let mut n = 0;
        for r in recipients {
            let (have,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM job_outbox WHERE account_id = $1 AND kind = $2 AND target_id = $3 AND recipient = $4")
                .bind(account)
                .bind(kind)
                .bind(target)
                .bind(*r)
                .fetch_one(&mut *tx)
                .await?;
            if have > 0 {
                continue;
            }
            let id = allocate(&mut tx, account, "job_outbox", 1).await?;
            // The unique index settles a race between two nodes: the second insert is dropped.
            n += sqlx::query("INSERT INTO job_outbox (account_id, id, kind, target_id, created_at, recipient) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account_id, kind, target_id, recipient) DO NOTHING")
                .bind(account)
                .bind(id)
                .bind(kind)
                .bind(target)
                .bind(now_ms())
                .bind(*r)
                .execute(&mut *tx)
                .await?
                .rows_affected() as usize;
        }
        tx.commit().await?;
        Ok(n)
    }

    /// Events not yet fully delivered, oldest first, in every account of this cell; an event
    /// whose e-mail another dispatcher holds (or one that failed, until its claim lapses) only
    /// if its in-app part is pending.
    /// `account` limits them to one account's.
    pub async fn pending_outbox(
        &self,
        account: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<OutboxItem>> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLS} FROM job_outbox WHERE ($1 = 0 OR account_id = $1) AND {} AND (in_app_at IS NULL OR (mailed_at IS NULL AND (mail_claimed_until IS NULL OR mail_claimed_until < $2))) ORDER BY created_at, account_id, id LIMIT $3",
            crate::moving::SETTLED
        ))
        .bind(account.unwrap_or(0))
        .bind(now_ms())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(item).collect())
    }

    /// An account's events, oldest first.
    pub async fn outbox(&self, account: i64) -> StoreResult<Vec<OutboxItem>> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLS} FROM job_outbox WHERE account_id = $1 ORDER BY id"
        ))
        .bind(account)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(item).collect())
    }

    /// Marks the event's in-app part delivered and, in the same transaction, inserts the
    /// notification (none when `note` is `None`: nobody to tell). `false` if it was already
    /// delivered, by this dispatcher earlier or by another node: nothing is inserted then.
    pub async fn deliver_in_app(
        &self,
        ev: &OutboxItem,
        note: Option<InApp<'_>>,
    ) -> StoreResult<bool> {
        let now = now_ms();
        let mut tx = self.write().await?;
        let n = sqlx::query("UPDATE job_outbox SET in_app_at = $1 WHERE account_id = $2 AND id = $3 AND in_app_at IS NULL")
            .bind(now)
            .bind(ev.account_id)
            .bind(ev.id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n != 1 {
            return Ok(false);
        }
        if let Some(note) = note {
            let id = allocate(&mut tx, ev.account_id, "notification", 1).await?;
            sqlx::query("INSERT INTO notifications (account_id, id, user_id, at, title, body, link) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(ev.account_id)
                .bind(id)
                .bind(note.user_id)
                .bind(now)
                .bind(note.title)
                .bind(note.body)
                .bind(note.link)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Claims the event's e-mail for `hold_ms`, so that two dispatchers do not send it at
    /// once. `false` if it was sent, or another dispatcher holds it.
    pub async fn claim_outbox_mail(&self, ev: &OutboxItem, hold_ms: i64) -> StoreResult<bool> {
        let now = now_ms();
        let _w = self.lock_writes().await;
        let n = sqlx::query("UPDATE job_outbox SET mail_claimed_until = $1 WHERE account_id = $2 AND id = $3 AND mailed_at IS NULL AND (mail_claimed_until IS NULL OR mail_claimed_until < $4)")
            .bind(now + hold_ms)
            .bind(ev.account_id)
            .bind(ev.id)
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// Marks the event's e-mail sent (or not to be sent).
    pub async fn outbox_mailed(&self, ev: &OutboxItem) -> StoreResult<()> {
        let _w = self.lock_writes().await;
        sqlx::query("UPDATE job_outbox SET mailed_at = $1 WHERE account_id = $2 AND id = $3")
            .bind(now_ms())
            .bind(ev.account_id)
            .bind(ev.id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes events delivered before `before`. Returns how many.
    pub async fn purge_outbox(&self, before: i64) -> StoreResult<u64> {
        let _w = self.lock_writes().await;
        Ok(sqlx::query(
            "DELETE FROM job_outbox WHERE in_app_at IS NOT NULL AND mailed_at IS NOT NULL AND mailed_at < $1",
        )
        .bind(before)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}
