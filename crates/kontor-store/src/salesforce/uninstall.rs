//! Uninstalling the integration: what it would touch (the impact an admin reviews), the
//! request (which stops the sync and queues one durable job), and its end, in one transaction:
//! the integration's own data kept for 48 hours or deleted, the job ended, the audit entry and
//! the notices written. Records, the Salesforce properties and their values always stay.
//!
//! The job itself (send the pending changes or not, revoke the token) runs in the server's
//! sync engine, which talks to Salesforce; while it runs the connection is `uninstalling`: no
//! round starts, a restore is refused, and a region move waits.

use super::delete_integration_data;
use crate::imports::SOURCE_RESTORE;
use crate::{Store, StoreError, StoreResult};
use kontor_domain::time::now_ms;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The job kind of an uninstall.
pub const JOB_KIND_SALESFORCE_UNINSTALL: &str = "salesforce_uninstall";
/// The connection's state while its uninstall runs, and after it when the data is kept.
pub const SF_UNINSTALLING: &str = "uninstalling";
pub const SF_UNINSTALLED: &str = "uninstalled";
/// The uninstall's notice to the admin (e-mail and in-app).
pub const OUTBOX_SALESFORCE_UNINSTALLED: &str = "salesforce.uninstalled";

/// The kontor object types the integration syncs, with their names.
pub const SYNCED_TYPES: &[(&str, &str)] = &[
    ("0-1", "contacts"),
    ("0-2", "companies"),
    ("0-3", "deals"),
    ("0-27", "tasks"),
];

/// What an uninstall would keep and remove, counted now.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UninstallImpact {
    /// Records linked to Salesforce records, per object (they all stay).
    pub records: BTreeMap<String, i64>,
    /// The "Salesforce information" properties, and the values they hold (they stay).
    pub properties: i64,
    pub values: i64,
    /// The integration's own data (removed now, or kept 48 hours).
    pub mappings: i64,
    pub links: i64,
    pub owner_map: i64,
    pub errors: i64,
    /// Owners that came from Salesforce and have no user here, and the live records they own
    /// per object.
    pub salesforce_only_owners: i64,
    pub owned_by_salesforce_only: BTreeMap<String, i64>,
    /// kontor changes not yet sent to Salesforce.
    pub pending_changes: i64,
}

/// What the admin chose.
#[derive(Debug, Clone, PartialEq)]
pub struct UninstallRequest {
    pub reason: String,
    /// Send the pending changes first (`true`) or discard them.
    pub push_pending: bool,
    /// Keep the integration's own data 48 hours (`true`) or delete it at once.
    pub keep_data: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SalesforceUninstall {
    pub account_id: i64,
    pub id: i64,
    pub job_id: i64,
    /// `queued`, `running`, `done` or `failed`.
    pub state: String,
    pub reason: String,
    /// `push` or `discard`.
    pub pending: String,
    pub keep_data: bool,
    pub org_id: String,
    pub org_name: String,
    pub impact: Value,
    pub outcome: Option<Value>,
    pub error: Option<String>,
    pub requested_by: Option<i64>,
    pub requested_by_name: String,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

const COLS: &str = "account_id, id, job_id, state, reason, pending, keep_data, org_id, org_name, impact, outcome, error, requested_by, requested_by_name, created_at, finished_at";

fn uninstall_from(r: sqlx::any::AnyRow) -> StoreResult<SalesforceUninstall> {
    use sqlx::Row;
    let outcome: Option<String> = r.try_get("outcome")?;
    Ok(SalesforceUninstall {
        account_id: r.try_get("account_id")?,
        id: r.try_get("id")?,
        job_id: r.try_get("job_id")?,
        state: r.try_get("state")?,
        reason: r.try_get("reason")?,
        pending: r.try_get("pending")?,
        keep_data: r.try_get::<i64, _>("keep_data")? != 0,
        org_id: r.try_get("org_id")?,
        org_name: r.try_get("org_name")?,
        impact: serde_json::from_str(&r.try_get::<String, _>("impact")?)?,
        outcome: outcome.map(|o| serde_json::from_str(&o)).transpose()?,
        error: r.try_get("error")?,
        requested_by: r.try_get("requested_by")?,
        requested_by_name: r.try_get("requested_by_name")?,
        created_at: r.try_get("created_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}

fn type_name(type_id: &str) -> String {
    SYNCED_TYPES
        .iter()
        .find(|(t, _)| *t == type_id)
        .map_or(type_id, |(_, n)| n)
        .to_string()
}

fn refused(message: impl Into<String>) -> StoreError {
    StoreError::Conflict {
        message: message.into(),
        existing_id: None,
    }
}

impl Store {
    /// Counts what an uninstall would keep and remove.
    pub async fn salesforce_uninstall_impact(&self, account: i64) -> StoreResult<UninstallImpact> {
        let counts = self.salesforce_counts(account).await?;
        let mut impact = UninstallImpact {
            records: counts
                .links
                .iter()
                .map(|(t, n)| (type_name(t), *n))
                .collect(),
            links: counts.links.values().sum(),
            errors: counts.errors,
            salesforce_only_owners: counts.salesforce_only_owners,
            pending_changes: counts.pending_changes,
            ..UninstallImpact::default()
        };
        let (mappings,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM salesforce_mappings WHERE account_id = $1")
                .bind(account)
                .fetch_one(&self.pool)
                .await?;
        let (owner_map,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM salesforce_owner_map WHERE account_id = $1")
                .bind(account)
                .fetch_one(&self.pool)
                .await?;
        impact.mappings = mappings;
        impact.owner_map = owner_map;
        for (type_id, _) in SYNCED_TYPES {
            let names: Vec<String> = self
                .properties(account, type_id, false)
                .await?
                .into_iter()
                .filter(|d| d.group_name == "salesforceinformation")
                .map(|d| d.name)
                .collect();
            impact.properties += names.len() as i64;
            if names.is_empty() {
                continue;
            }
            // One pass over the type's records counts every property's values.
            let sums: Vec<String> = (0..names.len())
                .map(|k| {
                    format!(
                        "SUM(CASE WHEN COALESCE({}, '') <> '' THEN 1 ELSE 0 END)",
                        self.value_of(k + 3)
                    )
                })
                .collect();
            let sql = format!(
                "SELECT CAST(COALESCE({}, 0) AS BIGINT) FROM records WHERE account_id = $1 AND object_type = $2",
                sums.join(" + ")
            );
            let mut q = sqlx::query_as::<_, (i64,)>(&sql)
                .bind(account)
                .bind(*type_id);
            for n in &names {
                q = q.bind(n);
            }
            impact.values += q.fetch_one(&self.pool).await?.0;
        }
        for (owner, per_type) in self.salesforce_only_owner_records(account).await? {
            let _ = owner;
            for (t, (live, _)) in per_type {
                *impact
                    .owned_by_salesforce_only
                    .entry(type_name(&t))
                    .or_default() += live;
            }
        }
        Ok(impact)
    }

    /// Starts an uninstall: the sync stops (`uninstalling`), and the job and its row are
    /// queued, in one transaction. Refused while a restore runs or another uninstall is open.
    pub async fn begin_salesforce_uninstall(
        &self,
        account: i64,
        req: &UninstallRequest,
        impact: &UninstallImpact,
        by_user: Option<i64>,
        by_name: &str,
    ) -> StoreResult<SalesforceUninstall> {
        let now = now_ms();
        let mut tx = self.write().await?;
        if self.dialect == crate::Dialect::Postgres {
            // The same lock a restore's start takes: one of the two waits for the other.
            sqlx::query("SELECT pg_advisory_xact_lock(7234503, CAST($1 AS INTEGER))")
                .bind(account)
                .execute(&mut *tx)
                .await?;
        }
        let running: Option<(i64, String)> = sqlx::query_as("SELECT id, name FROM imports WHERE account_id = $1 AND source = $2 AND state IN ('STARTED', 'PROCESSING') ORDER BY id LIMIT 1")
            .bind(account)
            .bind(SOURCE_RESTORE)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some((id, name)) = running {
            return Err(refused(format!("A restore is running in this account (\"{name}\", import {id}). The integration can be uninstalled once it has finished.")));
        }
        let conn: Option<(String, String, String)> = sqlx::query_as(
            "SELECT state, org_id, org_name FROM salesforce_connections WHERE account_id = $1",
        )
        .bind(account)
        .fetch_optional(&mut *tx)
        .await?;
        let (org_id, org_name) = match conn {
            Some((state, org, name)) if state == super::SF_ACTIVE || state == super::SF_PAUSED => {
                (org, name)
            }
            Some((state, _, _)) if state == SF_UNINSTALLING => {
                return Err(refused(
                    "The Salesforce integration is already being uninstalled.",
                ))
            }
            _ => {
                return Err(StoreError::not_found(
                    "Salesforce is not connected to this account.",
                ))
            }
        };
        sqlx::query("UPDATE salesforce_connections SET state = $1, next_at = $2, updated_at = $2 WHERE account_id = $3")
            .bind(SF_UNINSTALLING)
            .bind(now)
            .bind(account)
            .execute(&mut *tx)
            .await?;
        let id = crate::allocate(&mut tx, account, "salesforce_uninstall", 1).await?;
        let job_id = Self::insert_job(
            &mut tx,
            account,
            JOB_KIND_SALESFORCE_UNINSTALL,
            &json!({"uninstall": id}),
            now,
        )
        .await?;
        let pending = if req.push_pending { "push" } else { "discard" };
        let impact = serde_json::to_value(impact)?;
        sqlx::query(&format!("INSERT INTO salesforce_uninstalls ({COLS}) VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8, $9, NULL, NULL, $10, $11, $12, NULL)"))
            .bind(account)
            .bind(id)
            .bind(job_id)
            .bind(&req.reason)
            .bind(pending)
            .bind(req.keep_data as i64)
            .bind(&org_id)
            .bind(&org_name)
            .bind(impact.to_string())
            .bind(by_user)
            .bind(by_name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let message = format!(
            "Started uninstalling the Salesforce integration (org {org_name}, {org_id}): pending changes are {}; the integration's own data is {}. Reason: {}",
            if req.push_pending { "sent first" } else { "discarded" },
            if req.keep_data { "kept for 48 hours" } else { "deleted at once" },
            req.reason
        );
        Self::audit_in(
            &mut tx,
            account,
            by_user,
            by_name,
            "salesforce.uninstall.start",
            &format!("salesforce uninstall {id}"),
            &json!({"message": message, "impact": impact}),
        )
        .await?;
        tx.commit().await?;
        self.salesforce_uninstall(account, id)
            .await?
            .ok_or_else(|| StoreError::not_found("salesforce uninstall"))
    }

    pub async fn salesforce_uninstall(
        &self,
        account: i64,
        id: i64,
    ) -> StoreResult<Option<SalesforceUninstall>> {
        let row = sqlx::query(&format!(
            "SELECT {COLS} FROM salesforce_uninstalls WHERE account_id = $1 AND id = $2"
        ))
        .bind(account)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(uninstall_from).transpose()
    }

    /// The account's uninstalls, newest first.
    pub async fn salesforce_uninstalls(
        &self,
        account: i64,
        limit: i64,
    ) -> StoreResult<Vec<SalesforceUninstall>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM salesforce_uninstalls WHERE account_id = $1 ORDER BY id DESC LIMIT $2"
        ))
        .bind(account)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(uninstall_from).collect()
    }

    /// The uninstall queued or running now, if any.
    pub async fn open_salesforce_uninstall(
        &self,
        account: i64,
    ) -> StoreResult<Option<SalesforceUninstall>> {
        Ok(self
            .salesforce_uninstalls(account, 1)
            .await?
            .into_iter()
            .find(|u| u.state == "queued" || u.state == "running"))
    }

    /// Marks the uninstall of a claimed job running.
    pub async fn uninstall_running(&self, account: i64, id: i64) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE salesforce_uninstalls SET state = 'running' WHERE account_id = $1 AND id = $2 AND state = 'queued'")
            .bind(account)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Claims the connection for its uninstall once no round holds it; `false` while one does.
    pub async fn claim_salesforce_uninstalling(
        &self,
        account: i64,
        node: &str,
        lease_ms: i64,
    ) -> StoreResult<bool> {
        let now = now_ms();
        let mut tx = self.write().await?;
        let n = sqlx::query("UPDATE salesforce_connections SET claim = $1, claim_until = $2 WHERE account_id = $3 AND state = $4 AND (claim_until IS NULL OR claim_until < $5 OR claim = $1)")
            .bind(node)
            .bind(now + lease_ms)
            .bind(account)
            .bind(SF_UNINSTALLING)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Ends an uninstall the caller's job holds, in one transaction: the integration's own
    /// data kept 48 hours (the tokens are dropped, and discarded changes are skipped for good)
    /// or deleted; the row, the job, the audit entry, and the notices to `notify`.
    pub async fn finish_salesforce_uninstall(
        &self,
        job: &crate::Job,
        owner: &str,
        u: &SalesforceUninstall,
        outcome: &Value,
        notify: &[i64],
    ) -> StoreResult<bool> {
        let now = now_ms();
        let account = u.account_id;
        let mut tx = self.write().await?;
        if !Self::end_job(&mut tx, job, owner, None, now).await? {
            return Ok(false);
        }
        if u.keep_data {
            let skip_to = if u.pending == "discard" {
                "(SELECT COALESCE(MAX(seq), 0) FROM changes WHERE account_id = $3)"
            } else {
                "push_seq"
            };
            sqlx::query(&format!("UPDATE salesforce_connections SET state = $1, paused_reason = NULL, access_sealed = '', refresh_sealed = '', claim = NULL, claim_until = NULL, disconnected_at = $2, keep_until = $4, push_seq = {skip_to}, updated_at = $2 WHERE account_id = $3"))
                .bind(SF_UNINSTALLED)
                .bind(now)
                .bind(account)
                .bind(now + super::SALESFORCE_KEEP_MS)
                .execute(&mut *tx)
                .await?;
        } else {
            delete_integration_data(&mut tx, account).await?;
        }
        sqlx::query("UPDATE salesforce_uninstalls SET state = 'done', outcome = $1, finished_at = $2 WHERE account_id = $3 AND id = $4")
            .bind(outcome.to_string())
            .bind(now)
            .bind(account)
            .bind(u.id)
            .execute(&mut *tx)
            .await?;
        let message = format!(
            "Uninstalled the Salesforce integration (org {}): {}",
            u.org_name,
            outcome["summary"].as_str().unwrap_or_default()
        );
        Self::audit_in(
            &mut tx,
            account,
            u.requested_by,
            &u.requested_by_name,
            "salesforce.uninstall",
            &format!("salesforce uninstall {}", u.id),
            &json!({"message": message, "reason": u.reason, "outcome": outcome}),
        )
        .await?;
        for r in notify {
            let id = crate::allocate(&mut tx, account, "job_outbox", 1).await?;
            sqlx::query("INSERT INTO job_outbox (account_id, id, kind, target_id, created_at, recipient) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account_id, kind, target_id, recipient) DO NOTHING")
                .bind(account)
                .bind(id)
                .bind(OUTBOX_SALESFORCE_UNINSTALLED)
                .bind(u.id)
                .bind(now)
                .bind(*r)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Ends an uninstall that could not be done: the integration stays connected, paused with
    /// the reason, and nothing of its data is removed.
    pub async fn fail_salesforce_uninstall(
        &self,
        job: &crate::Job,
        owner: &str,
        u: &SalesforceUninstall,
        error: &str,
    ) -> StoreResult<bool> {
        let now = now_ms();
        let account = u.account_id;
        let mut tx = self.write().await?;
        if !Self::end_job(&mut tx, job, owner, Some(error), now).await? {
            return Ok(false);
        }
        let reason = format!("The uninstall stopped: {error} The integration is still connected and paused: resume it, or uninstall again.");
        sqlx::query("UPDATE salesforce_connections SET state = 'paused', paused_reason = $1, claim = NULL, claim_until = NULL, updated_at = $2 WHERE account_id = $3 AND state = $4")
            .bind(&reason)
            .bind(now)
            .bind(account)
            .bind(SF_UNINSTALLING)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE salesforce_uninstalls SET state = 'failed', error = $1, finished_at = $2 WHERE account_id = $3 AND id = $4")
            .bind(error)
            .bind(now)
            .bind(account)
            .bind(u.id)
            .execute(&mut *tx)
            .await?;
        Self::audit_in(
            &mut tx,
            account,
            u.requested_by,
            &u.requested_by_name,
            "salesforce.uninstall.failed",
            &format!("salesforce uninstall {}", u.id),
            &json!({"message": reason}),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes the kept data of integrations uninstalled more than 48 hours before `now`
    /// (a sweep of the housekeeping loop). Returns the accounts whose data went.
    pub async fn expire_salesforce_data(&self, now: i64) -> StoreResult<Vec<i64>> {
        let due: Vec<(i64,)> = sqlx::query_as(&format!(
            "SELECT account_id FROM salesforce_connections WHERE state = $1 AND keep_until <= $2 AND {}",
            crate::moving::SETTLED
        ))
        .bind(SF_UNINSTALLED)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut gone = Vec::new();
        for (account,) in due {
            let mut tx = self.write().await?;
            // Checked again inside: a reconnect in between keeps the data.
            let still: Option<(i64,)> = sqlx::query_as("SELECT account_id FROM salesforce_connections WHERE account_id = $1 AND state = $2 AND keep_until <= $3")
                .bind(account)
                .bind(SF_UNINSTALLED)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
            if still.is_none() {
                continue;
            }
            delete_integration_data(&mut tx, account).await?;
            Self::audit_in(
                &mut tx,
                account,
                None,
                "kontor",
                "salesforce.data.expire",
                "salesforce integration",
                &json!({"message": "The 48 hours the uninstalled Salesforce integration's data was kept for ended; its settings, mappings, id crosswalk, owner map and sync state were deleted."}),
            )
            .await?;
            tx.commit().await?;
            gone.push(account);
        }
        Ok(gone)
    }
}
