//! The Salesforce integration's state in an account's cell: the connection (org, user, sealed
//! tokens, settings, the sync's claim and health), the field mappings, the crosswalk of linked
//! records, the owner map, the pull cursors and the open sync errors.
//!
//! Every table is keyed by account first and moves with the account. The sync engine itself
//! (kontor-server's `salesforce`) talks to Salesforce; what it reads is applied here one page
//! at a time (`pull.rs`), each page's writes, links and cursor in one transaction, and what it
//! sends is taken from the change log (`push.rs`), whose cursor moves in the transaction that
//! records Salesforce's answer.

mod pull;
mod push;
mod rows;
pub mod uninstall;

pub use pull::{PullCursor, PullOutcome, PulledRecord};
pub use push::{PushCandidate, PushOutcome};
pub(crate) use rows::*;

use crate::{Store, StoreError, StoreResult};
use kontor_domain::time::now_ms;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// How long an uninstalled integration's own data is kept, by choice, for a reconnect.
pub const SALESFORCE_KEEP_MS: i64 = 48 * 3600 * 1000;

/// Connection states.
pub const SF_ACTIVE: &str = "active";
pub const SF_PAUSED: &str = "paused";

/// Per field, which side wins (HubSpot's four sync rules).
pub const RULE_PREFER_SF: &str = "prefer_salesforce_unless_blank";
pub const RULE_ALWAYS_SF: &str = "always_salesforce";
pub const RULE_TWO_WAY: &str = "two_way";
pub const RULE_NONE: &str = "none";
pub const RULES: &[&str] = &[RULE_PREFER_SF, RULE_ALWAYS_SF, RULE_TWO_WAY, RULE_NONE];

/// The connection's settings, as an admin chooses them and as the last describe found
/// Salesforce.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct SalesforceSettings {
    /// New kontor contacts are created in Salesforce as `Lead` or `Contact`.
    pub contacts_as: String,
    /// The inclusion list: only contacts matching this filter (the search API's
    /// `{"filterGroups": …}`) are sent to Salesforce; `None`: all.
    pub inclusion: Option<Value>,
    /// The share of the org's daily API allowance the integration may use, in percent.
    pub budget_percent: i64,
    /// The deal pipeline opportunities go into.
    pub pipeline: String,
    /// Salesforce stage name → that pipeline's stage id.
    pub stages: BTreeMap<String, String>,
    /// Per Salesforce object, the external-id field that holds kontor's record id (what makes
    /// a create in Salesforce safe to repeat); absent: records are not created there.
    pub external_ids: BTreeMap<String, String>,
    /// Per Salesforce object, its fields, from the last describe.
    pub fields: BTreeMap<String, BTreeMap<String, SalesforceField>>,
    pub described_at: Option<i64>,
}

impl Default for SalesforceSettings {
    fn default() -> Self {
        Self {
            contacts_as: "Lead".into(),
            inclusion: None,
            budget_percent: 50,
            pipeline: "default".into(),
            stages: BTreeMap::new(),
            external_ids: BTreeMap::new(),
            fields: BTreeMap::new(),
            described_at: None,
        }
    }
}

/// A Salesforce field as describe tells of it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SalesforceField {
    /// `string`, `email`, `picklist`, `double`, `date`, `reference`, …
    #[serde(rename = "type")]
    pub kind: String,
    pub createable: bool,
    pub updateable: bool,
    /// For a picklist, its active values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// An account's connection to one Salesforce org.
#[derive(Debug, Clone, PartialEq)]
pub struct SalesforceConnection {
    pub account_id: i64,
    /// [`SF_ACTIVE`], [`SF_PAUSED`], or `uninstalled` (its data kept until `keep_until`).
    pub state: String,
    pub paused_reason: Option<String>,
    pub org_id: String,
    pub org_name: String,
    pub sf_user_id: String,
    pub username: String,
    pub user_email: String,
    pub instance_url: String,
    pub access_sealed: String,
    pub refresh_sealed: String,
    pub settings: SalesforceSettings,
    /// The last change-log entry considered for sending.
    pub push_seq: i64,
    /// When the next sync round is due.
    pub next_at: i64,
    /// The current back-off after a refused or failed round (0: none).
    pub backoff_ms: i64,
    /// API calls the integration made in the current 24-hour window, and when it began.
    pub calls_window_start: i64,
    pub calls: i64,
    /// The org's own count and allowance, from the last `Sforce-Limit-Info`.
    pub org_used: Option<i64>,
    pub org_limit: Option<i64>,
    pub last_round_at: Option<i64>,
    pub last_ok_at: Option<i64>,
    pub last_error: Option<String>,
    pub connected_by: Option<i64>,
    pub connected_at: i64,
    pub disconnected_at: Option<i64>,
    pub keep_until: Option<i64>,
    pub updated_at: i64,
}

const CONN_COLS: &str = "account_id, state, paused_reason, org_id, org_name, sf_user_id, username, user_email, instance_url, access_sealed, refresh_sealed, settings, push_seq, next_at, backoff_ms, calls_window_start, calls, org_used, org_limit, last_round_at, last_ok_at, last_error, connected_by, connected_at, disconnected_at, keep_until, updated_at";

fn conn_from(r: sqlx::any::AnyRow) -> StoreResult<SalesforceConnection> {
    use sqlx::Row;
    let settings: String = r.try_get("settings")?;
    Ok(SalesforceConnection {
        account_id: r.try_get("account_id")?,
        state: r.try_get("state")?,
        paused_reason: r.try_get("paused_reason")?,
        org_id: r.try_get("org_id")?,
        org_name: r.try_get("org_name")?,
        sf_user_id: r.try_get("sf_user_id")?,
        username: r.try_get("username")?,
        user_email: r.try_get("user_email")?,
        instance_url: r.try_get("instance_url")?,
        access_sealed: r.try_get("access_sealed")?,
        refresh_sealed: r.try_get("refresh_sealed")?,
        settings: serde_json::from_str(&settings)?,
        push_seq: r.try_get("push_seq")?,
        next_at: r.try_get("next_at")?,
        backoff_ms: r.try_get("backoff_ms")?,
        calls_window_start: r.try_get("calls_window_start")?,
        calls: r.try_get("calls")?,
        org_used: r.try_get("org_used")?,
        org_limit: r.try_get("org_limit")?,
        last_round_at: r.try_get("last_round_at")?,
        last_ok_at: r.try_get("last_ok_at")?,
        last_error: r.try_get("last_error")?,
        connected_by: r.try_get("connected_by")?,
        connected_at: r.try_get("connected_at")?,
        disconnected_at: r.try_get("disconnected_at")?,
        keep_until: r.try_get("keep_until")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// What an OAuth authorization gives a new (or renewed) connection.
#[derive(Debug, Clone)]
pub struct NewConnection {
    pub org_id: String,
    pub org_name: String,
    pub sf_user_id: String,
    pub username: String,
    pub user_email: String,
    pub instance_url: String,
    pub access_sealed: String,
    pub refresh_sealed: String,
    pub connected_by: Option<i64>,
}

/// A field mapping: a Salesforce object's field and the kontor property it syncs with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SalesforceMapping {
    pub sf_type: String,
    pub sf_field: String,
    pub property: String,
    pub rule: String,
    /// Added by an admin (not one of the defaults).
    pub custom: bool,
}

/// A Salesforce record linked to a kontor record, with the values last synced both ways
/// (by kontor property), which is how a value one side wrote is not taken back as a change.
#[derive(Debug, Clone, PartialEq)]
pub struct SalesforceLink {
    pub sf_id: String,
    pub sf_type: String,
    pub object_type: String,
    pub record_id: i64,
    pub synced: Map<String, Value>,
    pub synced_at: i64,
}

/// An open sync error: one record that could not be synced, why, and when it is tried again.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SalesforceError {
    pub id: i64,
    /// `pull` (Salesforce → kontor) or `push`.
    pub direction: String,
    pub object_type: String,
    pub record_id: Option<i64>,
    pub sf_type: String,
    pub sf_id: Option<String>,
    /// HubSpot's categories: `Property value`, `Duplicates`, `Permissions`, `Owner`, `Other`.
    pub category: String,
    pub code: String,
    pub message: String,
    pub attempts: i64,
    pub first_at: i64,
    pub last_at: i64,
    /// When the engine tries it again; `None`: only when an admin asks.
    pub retry_at: Option<i64>,
}

/// One error to record (or, with `None` as the error, to clear).
#[derive(Debug, Clone)]
pub struct ErrorReport {
    pub direction: &'static str,
    pub object_type: String,
    pub record_id: Option<i64>,
    pub sf_type: String,
    pub sf_id: Option<String>,
    pub category: String,
    pub code: String,
    pub message: String,
    pub retry_at: Option<i64>,
}

impl ErrorReport {
    /// The key an error is kept under: one open error per record and direction.
    fn subject(&self) -> String {
        match (self.record_id, &self.sf_id) {
            (Some(id), _) if self.direction == "push" => format!("{}:{id}", self.object_type),
            (_, Some(sf)) => sf.clone(),
            (Some(id), None) => format!("{}:{id}", self.object_type),
            (None, None) => self.sf_type.clone(),
        }
    }
}

/// Counts for the integration's page and its status API.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SalesforceCounts {
    /// Linked records per kontor object type.
    pub links: BTreeMap<String, i64>,
    pub errors: i64,
    /// Owners that came from Salesforce and have no user here.
    pub salesforce_only_owners: i64,
    /// Change-log entries not yet considered for sending.
    pub pending_changes: i64,
}

impl Store {
    pub async fn salesforce_connection(
        &self,
        account: i64,
    ) -> StoreResult<Option<SalesforceConnection>> {
        let row = sqlx::query(&format!(
            "SELECT {CONN_COLS} FROM salesforce_connections WHERE account_id = $1"
        ))
        .bind(account)
        .fetch_optional(&self.pool)
        .await?;
        row.map(conn_from).transpose()
    }

    /// Saves a connection made by OAuth. A new one starts sending the changes made from now
    /// on, with the default mappings. A renewed one (the same org) keeps its links, cursors
    /// and mappings, and so re-links rather than duplicates; one to another org starts over.
    pub async fn connect_salesforce(
        &self,
        account: i64,
        c: &NewConnection,
        default_mappings: &[SalesforceMapping],
    ) -> StoreResult<SalesforceConnection> {
        let now = now_ms();
        let mut tx = self.write().await?;
        let old: Option<(String, String)> = sqlx::query_as(
            "SELECT org_id, state FROM salesforce_connections WHERE account_id = $1",
        )
        .bind(account)
        .fetch_optional(&mut *tx)
        .await?;
        if old
            .as_ref()
            .is_some_and(|(_, state)| state == uninstall::SF_UNINSTALLING)
        {
            return Err(StoreError::Conflict {
                message: "The Salesforce integration is being uninstalled: connect again once the uninstall has finished.".into(),
                existing_id: None,
            });
        }
        let keep = old.as_ref().is_some_and(|(org, _)| *org == c.org_id);
        if !keep {
            delete_integration_data(&mut tx, account).await?;
            let (cursor,): (i64,) =
                sqlx::query_as("SELECT COALESCE(MAX(seq), 0) FROM changes WHERE account_id = $1")
                    .bind(account)
                    .fetch_one(&mut *tx)
                    .await?;
            let settings = serde_json::to_string(&SalesforceSettings::default())?;
            sqlx::query(&format!(
                "INSERT INTO salesforce_connections ({CONN_COLS}) VALUES ($1, 'active', NULL, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0, $12, 0, NULL, NULL, NULL, NULL, NULL, $13, $12, NULL, NULL, $12)"
            ))
            .bind(account)
            .bind(&c.org_id)
            .bind(&c.org_name)
            .bind(&c.sf_user_id)
            .bind(&c.username)
            .bind(&c.user_email)
            .bind(&c.instance_url)
            .bind(&c.access_sealed)
            .bind(&c.refresh_sealed)
            .bind(settings)
            .bind(cursor)
            .bind(now)
            .bind(c.connected_by)
            .execute(&mut *tx)
            .await?;
            for m in default_mappings {
                insert_mapping(&mut tx, account, m).await?;
            }
        } else {
            sqlx::query("UPDATE salesforce_connections SET state = 'active', paused_reason = NULL, org_name = $1, sf_user_id = $2, username = $3, user_email = $4, instance_url = $5, access_sealed = $6, refresh_sealed = $7, next_at = $8, backoff_ms = 0, last_error = NULL, connected_by = $9, connected_at = $8, disconnected_at = NULL, keep_until = NULL, updated_at = $8 WHERE account_id = $10")
                .bind(&c.org_name)
                .bind(&c.sf_user_id)
                .bind(&c.username)
                .bind(&c.user_email)
                .bind(&c.instance_url)
                .bind(&c.access_sealed)
                .bind(&c.refresh_sealed)
                .bind(now)
                .bind(c.connected_by)
                .bind(account)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.salesforce_connection(account)
            .await?
            .ok_or_else(|| StoreError::not_found("salesforce connection"))
    }

    /// Pauses (with the reason shown on the page) or resumes the sync. Resuming makes a round
    /// due at once and forgets any back-off.
    pub async fn set_salesforce_paused(
        &self,
        account: i64,
        reason: Option<&str>,
    ) -> StoreResult<SalesforceConnection> {
        let now = now_ms();
        let mut tx = self.write().await?;
        let n = match reason {
            Some(r) => sqlx::query("UPDATE salesforce_connections SET state = 'paused', paused_reason = $1, updated_at = $2 WHERE account_id = $3 AND state IN ('active', 'paused')")
                .bind(r)
                .bind(now)
                .bind(account)
                .execute(&mut *tx)
                .await?,
            None => sqlx::query("UPDATE salesforce_connections SET state = 'active', paused_reason = NULL, next_at = $1, backoff_ms = 0, updated_at = $1 WHERE account_id = $2 AND state IN ('active', 'paused')")
                .bind(now)
                .bind(account)
                .execute(&mut *tx)
                .await?,
        }
        .rows_affected();
        tx.commit().await?;
        if n == 0 {
            return Err(StoreError::not_found("salesforce connection"));
        }
        self.salesforce_connection(account)
            .await?
            .ok_or_else(|| StoreError::not_found("salesforce connection"))
    }

    /// Makes a round due now (an admin's "Sync now").
    pub async fn salesforce_sync_now(&self, account: i64) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let n = sqlx::query("UPDATE salesforce_connections SET next_at = $1 WHERE account_id = $2 AND state = 'active'")
            .bind(now_ms())
            .bind(account)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    pub async fn set_salesforce_settings(
        &self,
        account: i64,
        settings: &SalesforceSettings,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE salesforce_connections SET settings = $1, updated_at = $2 WHERE account_id = $3",
        )
        .bind(serde_json::to_string(settings)?)
        .bind(now_ms())
        .bind(account)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// New tokens after a refresh (the refresh token only when Salesforce rotated it).
    pub async fn set_salesforce_tokens(
        &self,
        account: i64,
        access_sealed: &str,
        refresh_sealed: Option<&str>,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE salesforce_connections SET access_sealed = $1, refresh_sealed = COALESCE($2, refresh_sealed), updated_at = $3 WHERE account_id = $4")
            .bind(access_sealed)
            .bind(refresh_sealed)
            .bind(now_ms())
            .bind(account)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Accounts settled in this cell whose sync round is due and not claimed.
    pub async fn salesforce_due(&self) -> StoreResult<Vec<i64>> {
        let now = now_ms();
        let rows: Vec<(i64,)> = sqlx::query_as(&format!(
            "SELECT account_id FROM salesforce_connections WHERE state = 'active' AND next_at <= $1 AND (claim_until IS NULL OR claim_until < $1) AND {} ORDER BY next_at",
            crate::moving::SETTLED
        ))
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(a,)| a).collect())
    }

    /// Claims a due round for `node` until `lease_ms` from now, or renews its own claim; the
    /// connection as claimed, or `None` when it is not due, paused, or claimed by another.
    pub async fn claim_salesforce(
        &self,
        account: i64,
        node: &str,
        lease_ms: i64,
        renew: bool,
    ) -> StoreResult<Option<SalesforceConnection>> {
        let now = now_ms();
        let mut tx = self.write().await?;
        let n = if renew {
            sqlx::query("UPDATE salesforce_connections SET claim_until = $1 WHERE account_id = $2 AND claim = $3 AND state IN ('active', 'uninstalling')")
                .bind(now + lease_ms)
                .bind(account)
                .bind(node)
                .execute(&mut *tx)
                .await?
        } else {
            sqlx::query("UPDATE salesforce_connections SET claim = $1, claim_until = $2 WHERE account_id = $3 AND state = 'active' AND next_at <= $4 AND (claim_until IS NULL OR claim_until < $4)")
                .bind(node)
                .bind(now + lease_ms)
                .bind(account)
                .bind(now)
                .execute(&mut *tx)
                .await?
        }
        .rows_affected();
        tx.commit().await?;
        if n == 0 {
            return Ok(None);
        }
        self.salesforce_connection(account).await
    }

    /// Ends a claimed round that began at `started_at`: its outcome for the page, when the
    /// next is due (sooner if an admin asked for one meanwhile), and the API calls it made
    /// (counted in a 24-hour window) with the org's last reported use.
    #[allow(clippy::too_many_arguments)]
    pub async fn finish_salesforce_round(
        &self,
        account: i64,
        node: &str,
        started_at: i64,
        error: Option<&str>,
        next_at: i64,
        backoff_ms: i64,
        calls: i64,
        org: Option<(i64, i64)>,
    ) -> StoreResult<()> {
        let now = now_ms();
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE salesforce_connections SET claim = NULL, claim_until = NULL, \
             next_at = CASE WHEN next_at > $10 AND next_at < $1 THEN next_at ELSE $1 END, backoff_ms = $2, \
             calls = CASE WHEN calls_window_start + 86400000 <= $3 THEN $4 ELSE calls + $4 END, \
             calls_window_start = CASE WHEN calls_window_start + 86400000 <= $3 THEN $3 ELSE calls_window_start END, \
             org_used = COALESCE($5, org_used), org_limit = COALESCE($6, org_limit), last_round_at = $3, \
             last_ok_at = CASE WHEN $7 IS NULL THEN $3 ELSE last_ok_at END, last_error = $7, updated_at = $3 \
             WHERE account_id = $8 AND claim = $9",
        )
        .bind(next_at)
        .bind(backoff_ms)
        .bind(now)
        .bind(calls)
        .bind(org.map(|o| o.0))
        .bind(org.map(|o| o.1))
        .bind(error)
        .bind(account)
        .bind(node)
        .bind(started_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    pub async fn salesforce_mappings(&self, account: i64) -> StoreResult<Vec<SalesforceMapping>> {
        let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
            "SELECT sf_type, sf_field, property, rule, custom FROM salesforce_mappings WHERE account_id = $1 ORDER BY sf_type, custom, sf_field",
        )
        .bind(account)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(sf_type, sf_field, property, rule, custom)| SalesforceMapping {
                    sf_type,
                    sf_field,
                    property,
                    rule,
                    custom: custom != 0,
                },
            )
            .collect())
    }

    /// Adds or changes a mapping (the caller has checked the types match).
    pub async fn set_salesforce_mapping(
        &self,
        account: i64,
        m: &SalesforceMapping,
    ) -> StoreResult<()> {
        if !RULES.contains(&m.rule.as_str()) {
            return Err(StoreError::validation(
                "INVALID_RULE",
                format!("{:?} is not a sync rule", m.rule),
                Some("rule".into()),
            ));
        }
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM salesforce_mappings WHERE account_id = $1 AND sf_type = $2 AND sf_field = $3")
            .bind(account)
            .bind(&m.sf_type)
            .bind(&m.sf_field)
            .execute(&mut *tx)
            .await?;
        insert_mapping(&mut tx, account, m).await?;
        tx.commit().await
    }

    pub async fn delete_salesforce_mapping(
        &self,
        account: i64,
        sf_type: &str,
        sf_field: &str,
    ) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let n = sqlx::query("DELETE FROM salesforce_mappings WHERE account_id = $1 AND sf_type = $2 AND sf_field = $3")
            .bind(account)
            .bind(sf_type)
            .bind(sf_field)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    /// The owner a Salesforce user maps to, by the user's id: an owner with that e-mail
    /// (a user's, preferably), or a new Salesforce-only owner (no user).
    pub async fn salesforce_owner(
        &self,
        account: i64,
        sf_user_id: &str,
        email: &str,
        first_name: &str,
        last_name: &str,
    ) -> StoreResult<i64> {
        if let Some((owner,)) = sqlx::query_as::<_, (i64,)>(
            "SELECT owner_id FROM salesforce_owner_map WHERE account_id = $1 AND sf_user_id = $2",
        )
        .bind(account)
        .bind(sf_user_id)
        .fetch_optional(&self.pool)
        .await?
        {
            return Ok(owner);
        }
        let found: Option<(i64,)> = sqlx::query_as(
            "SELECT id FROM owners WHERE account_id = $1 AND LOWER(email) = LOWER($2) AND archived = 0 ORDER BY (CASE WHEN user_id IS NULL THEN 1 ELSE 0 END), id LIMIT 1",
        )
        .bind(account)
        .bind(email)
        .fetch_optional(&self.pool)
        .await?;
        let (owner, made) = match found {
            Some((id,)) => (id, false),
            None => {
                let mail = if email.contains('@') {
                    email.to_string()
                } else {
                    format!("{sf_user_id}@salesforce.invalid")
                };
                let id = self
                    .create_owner(account, &mail, first_name, last_name, None)
                    .await?
                    .id;
                (id, true)
            }
        };
        let mut tx = self.write().await?;
        if made {
            // Marked for good: the owner cleanup finds it after the owner map is gone.
            sqlx::query("UPDATE owners SET origin = 'salesforce' WHERE account_id = $1 AND id = $2 AND user_id IS NULL")
                .bind(account)
                .bind(owner)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("INSERT INTO salesforce_owner_map (account_id, sf_user_id, owner_id, email, name) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id, sf_user_id) DO NOTHING")
            .bind(account)
            .bind(sf_user_id)
            .bind(owner)
            .bind(email)
            .bind(format!("{first_name} {last_name}").trim().to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(owner)
    }

    /// The owner map, both ways: Salesforce user id → owner id.
    pub async fn salesforce_owner_map(&self, account: i64) -> StoreResult<BTreeMap<String, i64>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT sf_user_id, owner_id FROM salesforce_owner_map WHERE account_id = $1",
        )
        .bind(account)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }

    pub async fn salesforce_cursor(
        &self,
        account: i64,
        sf_type: &str,
    ) -> StoreResult<Option<PullCursor>> {
        let row: Option<(String, String, String)> = sqlx::query_as(
            "SELECT modstamp, last_id, deleted_from FROM salesforce_cursors WHERE account_id = $1 AND sf_type = $2",
        )
        .bind(account)
        .bind(sf_type)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(modstamp, last_id, deleted_from)| PullCursor {
            modstamp,
            last_id,
            deleted_from,
        }))
    }

    /// Moves a cursor outside a page's writes (the deleted feed's, or a reset).
    pub async fn set_salesforce_cursor(
        &self,
        account: i64,
        sf_type: &str,
        c: &PullCursor,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        pull::save_cursor(&mut tx, account, sf_type, c).await?;
        tx.commit().await
    }

    pub async fn salesforce_errors(&self, account: i64) -> StoreResult<Vec<SalesforceError>> {
        let rows = sqlx::query(
            "SELECT id, direction, object_type, record_id, sf_type, sf_id, category, code, message, attempts, first_at, last_at, retry_at FROM salesforce_errors WHERE account_id = $1 ORDER BY last_at DESC, id DESC LIMIT 1000",
        )
        .bind(account)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                use sqlx::Row;
                Ok(SalesforceError {
                    id: r.try_get("id")?,
                    direction: r.try_get("direction")?,
                    object_type: r.try_get("object_type")?,
                    record_id: r.try_get("record_id")?,
                    sf_type: r.try_get("sf_type")?,
                    sf_id: r.try_get("sf_id")?,
                    category: r.try_get("category")?,
                    code: r.try_get("code")?,
                    message: r.try_get("message")?,
                    attempts: r.try_get("attempts")?,
                    first_at: r.try_get("first_at")?,
                    last_at: r.try_get("last_at")?,
                    retry_at: r.try_get("retry_at")?,
                })
            })
            .collect()
    }

    /// Asks for errors to be tried again in the next round, which is due now: one, or all
    /// with `None`. The round reads Salesforce's field descriptions again first, since what
    /// an admin fixed may be there (an external-id field added, say). Returns how many.
    pub async fn retry_salesforce_errors(&self, account: i64, id: Option<i64>) -> StoreResult<u64> {
        if let Some(c) = self.salesforce_connection(account).await? {
            let mut s = c.settings;
            s.described_at = None;
            self.set_salesforce_settings(account, &s).await?;
        }
        let now = now_ms();
        let mut tx = self.write().await?;
        let n =
            match id {
                Some(id) => sqlx::query(
                    "UPDATE salesforce_errors SET retry_at = $1 WHERE account_id = $2 AND id = $3",
                )
                .bind(now)
                .bind(account)
                .bind(id)
                .execute(&mut *tx)
                .await?,
                None => {
                    sqlx::query("UPDATE salesforce_errors SET retry_at = $1 WHERE account_id = $2")
                        .bind(now)
                        .bind(account)
                        .execute(&mut *tx)
                        .await?
                }
            }
            .rows_affected();
        sqlx::query("UPDATE salesforce_connections SET next_at = $1 WHERE account_id = $2 AND state = 'active'")
            .bind(now)
            .bind(account)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(n)
    }

    pub async fn salesforce_counts(&self, account: i64) -> StoreResult<SalesforceCounts> {
        let links: Vec<(String, i64)> = sqlx::query_as(
            "SELECT object_type, COUNT(*) FROM salesforce_links WHERE account_id = $1 GROUP BY object_type",
        )
        .bind(account)
        .fetch_all(&self.pool)
        .await?;
        let (errors,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM salesforce_errors WHERE account_id = $1")
                .bind(account)
                .fetch_one(&self.pool)
                .await?;
        let (sf_only,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM owners o WHERE o.account_id = $1 AND o.user_id IS NULL AND o.archived = 0 AND o.origin = 'salesforce'",
        )
        .bind(account)
        .fetch_one(&self.pool)
        .await?;
        let (pending,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM changes c WHERE c.account_id = $1 AND c.seq > (SELECT push_seq FROM salesforce_connections s WHERE s.account_id = c.account_id) AND c.source <> 'SALESFORCE' AND c.object_type IN ('0-1', '0-2', '0-3', '0-27')",
        )
        .bind(account)
        .fetch_one(&self.pool)
        .await?;
        Ok(SalesforceCounts {
            links: links.into_iter().collect(),
            errors,
            salesforce_only_owners: sf_only,
            pending_changes: pending,
        })
    }

    /// The kontor records these Salesforce ids are linked to: Salesforce id → (kontor type,
    /// record id).
    pub async fn salesforce_records(
        &self,
        account: i64,
        ids: &[&str],
    ) -> StoreResult<BTreeMap<String, (String, i64)>> {
        let mut c = self.pool.acquire().await?;
        Ok(links_by_sf_id(&mut c, account, ids)
            .await?
            .into_iter()
            .map(|l| (l.sf_id, (l.object_type, l.record_id)))
            .collect())
    }

    /// Salesforce records of `sf_type` whose pull error an admin asked to retry.
    pub async fn salesforce_pull_retries(
        &self,
        account: i64,
        sf_type: &str,
    ) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT sf_id FROM salesforce_errors WHERE account_id = $1 AND direction = 'pull' AND sf_type = $2 AND sf_id IS NOT NULL AND retry_at IS NOT NULL AND retry_at <= $3",
        )
        .bind(account)
        .bind(sf_type)
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Which of these Salesforce ids are linked.
    pub async fn salesforce_linked(&self, account: i64, ids: &[&str]) -> StoreResult<Vec<String>> {
        let mut c = self.pool.acquire().await?;
        Ok(links_by_sf_id(&mut c, account, ids)
            .await?
            .into_iter()
            .map(|l| l.sf_id)
            .collect())
    }

    /// The Salesforce ids linked to records, of one Salesforce object.
    pub async fn salesforce_links_of_type(
        &self,
        account: i64,
        sf_type: &str,
    ) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT sf_id FROM salesforce_links WHERE account_id = $1 AND sf_type = $2",
        )
        .bind(account)
        .bind(sf_type)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// The link of a kontor record, if it has one.
    pub async fn salesforce_link_of(
        &self,
        account: i64,
        object_type: &str,
        record_id: i64,
    ) -> StoreResult<Option<SalesforceLink>> {
        let row: Option<LinkRow> = sqlx::query_as(&format!(
            "SELECT {LINK_COLS} FROM salesforce_links WHERE account_id = $1 AND object_type = $2 AND record_id = $3"
        ))
        .bind(account)
        .bind(object_type)
        .bind(record_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(link_from).transpose()
    }
}
