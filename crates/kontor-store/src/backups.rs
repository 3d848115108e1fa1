//! Backups: one row per backup, run by a job of kind `backup`.
//!
//! States: `queued` → `running` → `completed` → `expired` (file deleted 14 days after
//! completion), or `failed`. A request is refused while another backup of the account is
//! queued or running, and before the tier's interval has passed since the previous backup
//! (failed ones do not count) started.

use crate::jobs::Job;
use crate::{Store, StoreError, StoreResult};
use kontor_domain::time::{iso, now_ms};
use kontor_domain::{Tier, BACKUP_RETENTION_MS};

pub const JOB_KIND_BACKUP: &str = "backup";

#[derive(Debug, Clone, PartialEq)]
pub struct Backup {
    pub account_id: i64,
    pub id: i64,
    pub job_id: i64,
    /// `queued`, `running`, `completed`, `failed` or `expired`.
    pub state: String,
    pub requested_by: Option<i64>,
    /// The requester's e-mail, or `operator` for the command line.
    pub requested_by_name: String,
    pub requested_at: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub snapshot_seq: Option<i64>,
    pub snapshot_at: Option<i64>,
    pub size_bytes: Option<i64>,
    pub rows: Option<i64>,
    pub sha256: Option<String>,
    /// Where the archive is, relative to the region's file store.
    pub file_key: Option<String>,
    pub expires_at: Option<i64>,
    pub deleted_at: Option<i64>,
    pub error: Option<String>,
    /// Records written so far, of `progress_total`, while it runs.
    pub progress_done: i64,
    pub progress_total: i64,
    /// How many times a runner took the job up (more than one after a crash).
    pub attempts: i64,
}

impl Backup {
    /// The state as users should see it at `now`: a completed backup whose download period is
    /// over is expired even before the sweep deletes its file.
    pub fn effective_state(&self, now: i64) -> &str {
        match self.expires_at {
            Some(at) if self.state == "completed" && at <= now => "expired",
            _ => &self.state,
        }
    }

    /// Whether its archive may be downloaded at `now`.
    pub fn downloadable(&self, now: i64) -> bool {
        self.effective_state(now) == "completed" && self.file_key.is_some()
    }

    /// Percent done, for a progress bar.
    pub fn percent(&self) -> i64 {
        match self.state.as_str() {
            "completed" | "expired" => 100,
            _ if self.progress_total > 0 => {
                (self.progress_done * 100 / self.progress_total).clamp(0, 99)
            }
            _ => 0,
        }
    }
}

/// How a backup was asked for.
pub struct BackupRequest<'a> {
    pub tier: Tier,
    pub user_id: Option<i64>,
    pub requested_by: &'a str,
    /// The operator may skip the tier's interval (never the one-at-a-time rule).
    pub ignore_interval: bool,
}

const BACKUP_SELECT: &str = "SELECT b.account_id, b.id, b.job_id, b.state, b.requested_by, b.requested_by_name, b.requested_at, b.started_at, b.completed_at, b.snapshot_seq, b.snapshot_at, b.size_bytes, b.rows_total, b.sha256, b.file_key, b.expires_at, b.deleted_at, b.error, j.progress_done, j.progress_total, j.attempts FROM backups b LEFT JOIN jobs j ON j.account_id = b.account_id AND j.id = b.job_id";

type FlatRow = (
    i64,
    i64,
    i64,
    String,
    Option<i64>,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

fn backup_from(r: FlatRow) -> Backup {
    Backup {
        account_id: r.0,
        id: r.1,
        job_id: r.2,
        state: r.3,
        requested_by: r.4,
        requested_by_name: r.5,
        requested_at: r.6,
        started_at: r.7,
        completed_at: r.8,
        snapshot_seq: r.9,
        snapshot_at: r.10,
        size_bytes: r.11,
        rows: r.12,
        sha256: r.13,
        file_key: r.14,
        expires_at: r.15,
        deleted_at: r.16,
        error: r.17,
        progress_done: r.18.unwrap_or(0),
        progress_total: r.19.unwrap_or(0),
        attempts: r.20.unwrap_or(0),
    }
}

// `sqlx` decodes tuples of at most 16 columns; the backup row has 20, read by position.
async fn fetch_backups(
    conn: impl sqlx::Executor<'_, Database = sqlx::Any>,
    sql: &str,
    binds: &[i64],
) -> StoreResult<Vec<Backup>> {
    use sqlx::Row;
    let mut q = sqlx::query(sql);
    for b in binds {
        q = q.bind(*b);
    }
    let rows = q.fetch_all(conn).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(backup_from((
            r.try_get(0)?,
            r.try_get(1)?,
            r.try_get(2)?,
            r.try_get(3)?,
            r.try_get(4)?,
            r.try_get(5)?,
            r.try_get(6)?,
            r.try_get(7)?,
            r.try_get(8)?,
            r.try_get(9)?,
            r.try_get(10)?,
            r.try_get(11)?,
            r.try_get(12)?,
            r.try_get(13)?,
            r.try_get(14)?,
            r.try_get(15)?,
            r.try_get(16)?,
            r.try_get(17)?,
            r.try_get(18)?,
            r.try_get(19)?,
            r.try_get(20)?,
        )));
    }
    Ok(out)
}

impl Store {
    /// Queues a backup and its job, or refuses: 409 while one is queued or running, "too soon"
    /// within the tier's interval.
    pub async fn create_backup(
        &self,
        account: i64,
        req: &BackupRequest<'_>,
    ) -> StoreResult<Backup> {
        let now = now_ms();
        let mut tx = self.write().await?;
        if self.dialect == crate::Dialect::Postgres {
            // Serialises concurrent requests for one account so both cannot pass the checks.
            sqlx::query("SELECT pg_advisory_xact_lock(7234502, CAST($1 AS INTEGER))")
                .bind(account % i64::from(i32::MAX))
                .execute(&mut *tx)
                .await?;
        }
        let open: Option<(i64, String)> = sqlx::query_as(
            "SELECT id, state FROM backups WHERE account_id = $1 AND state IN ('queued', 'running') ORDER BY id LIMIT 1",
        )
        .bind(account)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((id, state)) = open {
            return Err(StoreError::Conflict {
                message: format!(
                    "Backup {id} is {state}; only one backup runs at a time in an account. Try again when it has finished."
                ),
                existing_id: Some(id),
            });
        }
        if !req.ignore_interval {
            let last: Option<(i64,)> = sqlx::query_as(
                "SELECT COALESCE(started_at, requested_at) FROM backups WHERE account_id = $1 AND state <> 'failed' ORDER BY id DESC LIMIT 1",
            )
            .bind(account)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((started,)) = last {
                let next = started + req.tier.backup_interval_ms();
                if now < next {
                    let every = match req.tier {
                        Tier::Enterprise => "once every 24 hours",
                        _ => "once per week",
                    };
                    return Err(StoreError::TooSoon {
                        message: format!(
                            "Your {} subscription allows a backup {every}. The next backup can be created from {} UTC.",
                            req.tier.as_str(),
                            iso(next)[..16].replace('T', " ")
                        ),
                        retry_at: next,
                    });
                }
            }
        }
        let id = crate::allocate(&mut tx, account, "backups", 1).await?;
        let job_id = Store::insert_job(
            &mut tx,
            account,
            JOB_KIND_BACKUP,
            &serde_json::json!({ "backupId": id }),
            now,
        )
        .await?;
        sqlx::query("INSERT INTO backups (account_id, id, job_id, state, requested_by, requested_by_name, requested_at) VALUES ($1, $2, $3, 'queued', $4, $5, $6)")
            .bind(account)
            .bind(id)
            .bind(job_id)
            .bind(req.user_id)
            .bind(req.requested_by)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.backup(account, id)
            .await?
            .ok_or_else(|| StoreError::not_found("backup vanished"))
    }

    /// An account's backups, newest first.
    pub async fn backups(&self, account: i64) -> StoreResult<Vec<Backup>> {
        fetch_backups(
            &self.pool,
            &format!("{BACKUP_SELECT} WHERE b.account_id = $1 ORDER BY b.id DESC"),
            &[account],
        )
        .await
    }

    pub async fn backup(&self, account: i64, id: i64) -> StoreResult<Option<Backup>> {
        Ok(fetch_backups(
            &self.pool,
            &format!("{BACKUP_SELECT} WHERE b.account_id = $1 AND b.id = $2"),
            &[account, id],
        )
        .await?
        .pop())
    }

    /// Marks a claimed backup running (again, after a restart: the earlier attempt's figures
    /// are cleared).
    pub async fn backup_started(&self, account: i64, id: i64) -> StoreResult<()> {
        let _w = self.lock_writes().await;
        sqlx::query("UPDATE backups SET state = 'running', started_at = COALESCE(started_at, $1), error = NULL WHERE account_id = $2 AND id = $3 AND state IN ('queued', 'running')")
            .bind(now_ms())
            .bind(account)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a published archive, ends its job and queues its notification, in one
    /// transaction. `false` if the
    /// job's lease was lost meanwhile (another runner owns the backup now).
    pub async fn backup_completed(
        &self,
        job: &Job,
        owner: &str,
        done: &CompletedBackup,
    ) -> StoreResult<bool> {
        let now = now_ms();
        let mut tx = self.write().await?;
        if !Store::end_job(&mut tx, job, owner, None, now).await? {
            return Ok(false);
        }
        sqlx::query("UPDATE backups SET state = 'completed', completed_at = $1, snapshot_seq = $2, snapshot_at = $3, size_bytes = $4, rows_total = $5, sha256 = $6, file_key = $7, expires_at = $8, error = NULL WHERE account_id = $9 AND id = $10")
            .bind(now)
            .bind(done.snapshot_seq)
            .bind(done.snapshot_at)
            .bind(done.size_bytes)
            .bind(done.rows)
            .bind(&done.sha256)
            .bind(&done.file_key)
            .bind(now + BACKUP_RETENTION_MS)
            .bind(job.account_id)
            .bind(done.backup_id)
            .execute(&mut *tx)
            .await?;
        Store::enqueue_outbox(
            &mut tx,
            job.account_id,
            crate::OUTBOX_BACKUP_READY,
            done.backup_id,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Ends a backup's job as failed, with its notification in the outbox. `false` if the
    /// job's lease was lost meanwhile. Failed backups do not count against the interval.
    pub async fn backup_failed(
        &self,
        job: &Job,
        owner: &str,
        backup_id: i64,
        error: &str,
    ) -> StoreResult<bool> {
        let now = now_ms();
        let mut tx = self.write().await?;
        if !Store::end_job(&mut tx, job, owner, Some(error), now).await? {
            return Ok(false);
        }
        sqlx::query("UPDATE backups SET state = 'failed', completed_at = $1, error = $2 WHERE account_id = $3 AND id = $4")
            .bind(now)
            .bind(error)
            .bind(job.account_id)
            .bind(backup_id)
            .execute(&mut *tx)
            .await?;
        Store::enqueue_outbox(
            &mut tx,
            job.account_id,
            crate::OUTBOX_BACKUP_FAILED,
            backup_id,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Completed backups whose download period ended by `now`, in every account.
    pub async fn backups_due_to_expire(&self, now: i64) -> StoreResult<Vec<Backup>> {
        fetch_backups(
            &self.pool,
            &format!(
                "{BACKUP_SELECT} WHERE b.state = 'completed' AND b.expires_at <= $1 AND b.{} ORDER BY b.account_id, b.id", crate::moving::SETTLED
            ),
            &[now],
        )
        .await
    }

    /// Marks a backup expired once its file is deleted.
    pub async fn backup_expired(&self, account: i64, id: i64) -> StoreResult<()> {
        let _w = self.lock_writes().await;
        sqlx::query("UPDATE backups SET state = 'expired', deleted_at = $1 WHERE account_id = $2 AND id = $3 AND state = 'completed'")
            .bind(now_ms())
            .bind(account)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// What a finished backup job reports.
#[derive(Debug, Clone)]
pub struct CompletedBackup {
    pub backup_id: i64,
    pub snapshot_seq: i64,
    pub snapshot_at: i64,
    pub size_bytes: i64,
    pub rows: i64,
    pub sha256: String,
    pub file_key: String,
}
