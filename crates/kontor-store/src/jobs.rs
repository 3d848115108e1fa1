//! Durable jobs: rows in the cell's `jobs` table, claimed with a lease.
//!
//! A runner claims a job by setting `lease_owner` and `lease_until` in one conditional
//! `UPDATE` (queued, or running with a lapsed lease), renews the lease while it works and
//! stores progress with it, and ends the job only while it still holds the lease. A runner that
//! dies (a `kill -9`) simply stops renewing: once the lease lapses another runner, or the same
//! node restarted, claims the job again and runs it from its start. The same statements serve
//! SQLite and PostgreSQL; no engine-specific locking is needed because the claim is a
//! compare-and-set on the row.

use crate::{allocate, Store, StoreResult};
use kontor_domain::time::now_ms;

#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub account_id: i64,
    pub id: i64,
    pub kind: String,
    pub state: String,
    pub payload: serde_json::Value,
    pub progress_done: i64,
    pub progress_total: i64,
    pub attempts: i64,
    pub lease_owner: Option<String>,
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

/// Which jobs a runner may claim.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClaimFilter<'a> {
    /// The kinds the runner runs.
    pub kinds: &'a [&'a str],
    /// Just this job (`account`, `id`).
    pub only: Option<(i64, i64)>,
    /// Accounts whose jobs must wait: busy on this node, or not active.
    pub skip: &'a [i64],
    /// Only these accounts' jobs (a runner bound to some accounts; tests).
    pub accounts: Option<&'a [i64]>,
    /// Accounts whose jobs this node started lately, the least recent first: they come after
    /// every other account, in this order (round-robin between accounts with queued work).
    pub recent: &'a [i64],
}

pub const JOB_QUEUED: &str = "queued";
pub const JOB_RUNNING: &str = "running";
pub const JOB_SUCCEEDED: &str = "succeeded";
pub const JOB_FAILED: &str = "failed";

type JobRow = (
    i64,
    i64,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    Option<String>,
    Option<String>,
    i64,
    i64,
    Option<i64>,
);
const JOB_COLS: &str = "account_id, id, kind, state, payload, progress_done, progress_total, attempts, lease_owner, error, created_at, updated_at, finished_at";

fn job_from(r: JobRow) -> StoreResult<Job> {
    Ok(Job {
        account_id: r.0,
        id: r.1,
        kind: r.2,
        state: r.3,
        payload: serde_json::from_str(&r.4)?,
        progress_done: r.5,
        progress_total: r.6,
        attempts: r.7,
        lease_owner: r.8,
        error: r.9,
        created_at: r.10,
        updated_at: r.11,
        finished_at: r.12,
    })
}

impl Store {
    /// Inserts a queued job inside an open write transaction.
    pub(crate) async fn insert_job(
        conn: &mut sqlx::AnyConnection,
        account: i64,
        kind: &str,
        payload: &serde_json::Value,
        now: i64,
    ) -> StoreResult<i64> {
        let id = allocate(conn, account, "jobs", 1).await?;
        sqlx::query("INSERT INTO jobs (account_id, id, kind, state, payload, created_at, updated_at) VALUES ($1, $2, $3, 'queued', $4, $5, $5)")
            .bind(account)
            .bind(id)
            .bind(kind)
            .bind(payload.to_string())
            .bind(now)
            .execute(&mut *conn)
            .await?;
        Ok(id)
    }

    /// Inside a write transaction: whether `owner` still holds the running job's lease
    /// (renewing it), so that a runner that lost it writes nothing.
    pub(crate) async fn holds_job(
        conn: &mut sqlx::AnyConnection,
        job: &Job,
        owner: &str,
    ) -> StoreResult<bool> {
        let renewed = sqlx::query("UPDATE jobs SET updated_at = $1 WHERE account_id = $2 AND id = $3 AND state = 'running' AND lease_owner = $4")
            .bind(kontor_domain::time::now_ms())
            .bind(job.account_id)
            .bind(job.id)
            .bind(owner)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        Ok(renewed == 1)
    }

    pub async fn job(&self, account: i64, id: i64) -> StoreResult<Option<Job>> {
        let row: Option<JobRow> = sqlx::query_as(&format!(
            "SELECT {JOB_COLS} FROM jobs WHERE account_id = $1 AND id = $2"
        ))
        .bind(account)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(job_from).transpose()
    }

    /// Claims one job that is queued or whose runner's lease lapsed, oldest first. `kinds`
    /// limits the claim to the kinds the caller runs; `only` to one job.
    pub async fn claim_job(
        &self,
        owner: &str,
        lease_ms: i64,
        kinds: &[&str],
        only: Option<(i64, i64)>,
    ) -> StoreResult<Option<Job>> {
        self.claim_fair(
            owner,
            lease_ms,
            &ClaimFilter {
                kinds,
                only,
                ..ClaimFilter::default()
            },
        )
        .await
    }

    /// Claims one job, fairly between accounts: accounts this node did not start a job for
    /// lately go first (`filter.recent`), then the account whose oldest claimable job has
    /// waited longest; an account in `filter.skip` (one that already runs as
    /// many jobs on this node as it may, or is not active) is passed over whatever it has
    /// queued. So one account's long queue delays another account's job by at most the jobs
    /// already running. The claim itself stays a compare-and-set on the row: of several
    /// runners (or nodes) racing for one job, exactly one gets it.
    pub async fn claim_fair(
        &self,
        owner: &str,
        lease_ms: i64,
        filter: &ClaimFilter<'_>,
    ) -> StoreResult<Option<Job>> {
        let now = now_ms();
        // Claimable jobs per account, the longest-waiting account first.
        // The account lists go into the statement as integer literals (sqlx's engine-neutral
        // driver binds no arrays), so skipped accounts never crowd others out of the limit.
        let list = |ids: &[i64]| {
            ids.iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut only_accounts: Option<Vec<i64>> = filter.accounts.map(<[i64]>::to_vec);
        if let Some((a, _)) = filter.only {
            only_accounts = Some(vec![a]);
        }
        // The jobs of an account frozen, gone or arriving wait (a frozen account's rows refuse
        // the claim anyway): they run in the cell the account moves to, or here again if the
        // move fails. An account being copied out runs its jobs: their writes follow it.
        let mut cond = format!(" AND {}", crate::moving::SETTLED);
        if !filter.skip.is_empty() {
            cond.push_str(&format!(" AND account_id NOT IN ({})", list(filter.skip)));
        }
        if let Some(ids) = &only_accounts {
            if ids.is_empty() {
                return Ok(None);
            }
            cond.push_str(&format!(" AND account_id IN ({})", list(ids)));
        }
        let accounts: Vec<(i64, i64)> = sqlx::query_as(&format!(
            "SELECT account_id, MIN(created_at) FROM jobs WHERE (state = 'queued' OR (state = 'running' AND lease_until < $1)){cond} GROUP BY account_id ORDER BY MIN(created_at), account_id LIMIT 1000",
        ))
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut accounts = accounts;
        // Stable: among accounts with no recent start, the longest-waiting stays first.
        accounts.sort_by_key(|(a, _)| filter.recent.iter().position(|r| r == a));
        for (account, _) in accounts {
            if filter.skip.contains(&account)
                || filter.only.is_some_and(|o| o.0 != account)
                || filter.accounts.is_some_and(|a| !a.contains(&account))
            {
                continue;
            }
            let only_job = match filter.only {
                Some((_, id)) => format!(" AND id = {id}"),
                None => String::new(),
            };
            let candidates: Vec<(i64, String)> = sqlx::query_as(&format!(
                "SELECT id, kind FROM jobs WHERE account_id = $1 AND (state = 'queued' OR (state = 'running' AND lease_until < $2)){only_job} ORDER BY created_at, id LIMIT 50",
            ))
            .bind(account)
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
            for (id, kind) in candidates {
                if !filter.kinds.contains(&kind.as_str())
                    || filter.only.is_some_and(|o| o != (account, id))
                {
                    continue;
                }
                let _w = self.lock_writes().await;
                let claimed = sqlx::query("UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3 WHERE account_id = $4 AND id = $5 AND (state = 'queued' OR (state = 'running' AND lease_until < $3))")
                    .bind(owner)
                    .bind(now + lease_ms)
                    .bind(now)
                    .bind(account)
                    .bind(id)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                if claimed == 1 {
                    return self.job(account, id).await;
                }
            }
        }
        Ok(None)
    }

    /// Gives a job the caller holds back to the queue without failing it and without counting
    /// the attempt (its account was suspended or is migrating: it resumes once active again).
    /// `false` if the lease was lost meanwhile.
    pub async fn release_job(&self, job: &Job, owner: &str) -> StoreResult<bool> {
        let now = now_ms();
        let _w = self.lock_writes().await;
        let n = sqlx::query("UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, updated_at = $1 WHERE account_id = $2 AND id = $3 AND state = 'running' AND lease_owner = $4")
            .bind(now)
            .bind(job.account_id)
            .bind(job.id)
            .bind(owner)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// Renews the lease and records progress. `false` means the lease was lost (another runner
    /// took the job over, or it was ended): the caller must stop.
    pub async fn renew_job(
        &self,
        job: &Job,
        owner: &str,
        lease_ms: i64,
        done: i64,
        total: i64,
    ) -> StoreResult<bool> {
        let now = now_ms();
        let _w = self.lock_writes().await;
        let n = sqlx::query("UPDATE jobs SET lease_until = $1, progress_done = $2, progress_total = $3, updated_at = $4 WHERE account_id = $5 AND id = $6 AND state = 'running' AND lease_owner = $7")
            .bind(now + lease_ms)
            .bind(done)
            .bind(total)
            .bind(now)
            .bind(job.account_id)
            .bind(job.id)
            .bind(owner)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// Ends a job the caller holds. `false` if the lease was lost meanwhile.
    pub(crate) async fn end_job(
        conn: &mut sqlx::AnyConnection,
        job: &Job,
        owner: &str,
        error: Option<&str>,
        now: i64,
    ) -> StoreResult<bool> {
        let n = sqlx::query("UPDATE jobs SET state = $1, error = $2, lease_owner = NULL, lease_until = NULL, updated_at = $3, finished_at = $3, progress_done = CASE WHEN $1 = 'succeeded' THEN progress_total ELSE progress_done END WHERE account_id = $4 AND id = $5 AND state = 'running' AND lease_owner = $6")
            .bind(if error.is_some() { JOB_FAILED } else { JOB_SUCCEEDED })
            .bind(error)
            .bind(now)
            .bind(job.account_id)
            .bind(job.id)
            .bind(owner)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// Whether any job is waiting or running (its lease may have lapsed).
    pub async fn open_jobs(&self) -> StoreResult<i64> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')")
                .fetch_one(&self.pool)
                .await?;
        Ok(n)
    }
}

/// One entry of the change log, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub seq: i64,
    pub object_type: String,
    pub record_id: i64,
    /// `set`, `archive`, `restore`, `purge`, `merge`, `erase`, `associate` or `dissociate`.
    pub kind: String,
    /// For `set`: the values written (`None` clears).
    pub props: std::collections::BTreeMap<String, Option<String>>,
    /// For the other kinds: what the entry says (`{}` for most; the primary of a merge; the
    /// other record and the types of an association).
    pub detail: serde_json::Value,
    pub source: String,
    pub at: i64,
}

impl Store {
    /// The change log of `account` after `after_seq`, in order, at most `limit` entries.
    pub async fn changes_after(
        &self,
        account: i64,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<Change>> {
        let rows: Vec<(i64, String, i64, String, String, String, i64)> = sqlx::query_as(
            "SELECT seq, object_type, record_id, kind, props, source, at FROM changes WHERE account_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(account)
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(seq, object_type, record_id, kind, props, source, at)| {
                let (props, detail) = if kind == "set" {
                    (serde_json::from_str(&props)?, serde_json::Value::Null)
                } else {
                    (Default::default(), serde_json::from_str(&props)?)
                };
                Ok(Change {
                    seq,
                    object_type,
                    record_id,
                    kind,
                    props,
                    detail,
                    source,
                    at,
                })
            })
            .collect()
    }
}
