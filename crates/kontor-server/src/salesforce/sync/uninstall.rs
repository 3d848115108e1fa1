//! The uninstall job, run by the sync engine (it talks to Salesforce): it waits for a round
//! in progress to end, sends the pending changes if the admin chose so, revokes the OAuth
//! token, and ends the uninstall in one transaction (see `kontor_store`'s
//! `salesforce/uninstall.rs`). A runner that dies mid-way leaves the job to be claimed again
//! once its lease lapses; each step can be run again.

use super::*;
use kontor_store::{Job, SalesforceUninstall, JOB_KIND_SALESFORCE_UNINSTALL};

/// Attempts at sending the pending changes when Salesforce refuses for a while (its limit,
/// a 5xx), with a doubling wait from `FIRST_WAIT`.
const PUSH_TRIES: u32 = 5;
const FIRST_WAIT: Duration = Duration::from_secs(5);
/// Claims of a job after which it is given up (a crash loop).
const MAX_ATTEMPTS: i64 = 10;

/// Claims and runs the queued uninstalls of one database.
pub(super) async fn run_queued(store: &Store, keys: &Keyring, policy: &Policy, node: &str) {
    let lease_ms = policy.claim.as_millis() as i64;
    loop {
        let job = match store
            .claim_job(node, lease_ms, &[JOB_KIND_SALESFORCE_UNINSTALL], None)
            .await
        {
            Ok(Some(j)) => j,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "claiming a salesforce uninstall");
                return;
            }
        };
        tracing::info!(
            account = job.account_id,
            job = job.id,
            attempt = job.attempts,
            "salesforce uninstall claimed"
        );
        // The job's lease is renewed beside the work, whatever step it is in.
        let beat = {
            let (store, job, node) = (store.clone(), job.clone(), node.to_string());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis((lease_ms / 3).max(100) as u64)).await;
                    if !matches!(store.renew_job(&job, &node, lease_ms, 0, 1).await, Ok(true)) {
                        return;
                    }
                }
            })
        };
        if let Err(e) = run(store, keys, policy, node, &job).await {
            tracing::warn!(account = job.account_id, job = job.id, error = %e, "salesforce uninstall stopped; it resumes");
        }
        beat.abort();
    }
}

async fn run(
    store: &Store,
    keys: &Keyring,
    policy: &Policy,
    node: &str,
    job: &Job,
) -> Result<(), kontor_store::StoreError> {
    let account = job.account_id;
    let id = job.payload["uninstall"].as_i64().unwrap_or_default();
    let Some(u) = store.salesforce_uninstall(account, id).await? else {
        return Ok(());
    };
    if job.attempts > MAX_ATTEMPTS {
        let msg = format!("It was tried {MAX_ATTEMPTS} times without finishing.");
        store.fail_salesforce_uninstall(job, node, &u, &msg).await?;
        return Ok(());
    }
    store.uninstall_running(account, id).await?;
    let lease_ms = policy.claim.as_millis() as i64;
    // A round under way ends first (its claim lapses at the latest).
    while !store
        .claim_salesforce_uninstalling(account, node, lease_ms)
        .await?
    {
        if store.salesforce_connection(account).await?.is_none() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let Some(conn) = store.salesforce_connection(account).await? else {
        return Ok(());
    };
    let before = store.salesforce_counts(account).await?;
    let open = |s: &str| {
        seal::open(keys, s)
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default()
    };
    let (access, refresh) = (open(&conn.access_sealed), open(&conn.refresh_sealed));
    let mut pushed = 0;
    if u.pending == "push" && before.pending_changes > 0 {
        match push_all(store, keys, policy, node, &conn, (&access, &refresh)).await {
            Ok(()) => {
                let after = store.salesforce_counts(account).await?;
                pushed = before.pending_changes - after.pending_changes;
            }
            Err(why) => {
                store.fail_salesforce_uninstall(job, node, &u, &why).await?;
                return Ok(());
            }
        }
    }
    let push_errors = store
        .salesforce_errors(account)
        .await?
        .iter()
        .filter(|e| e.direction == "push")
        .count() as i64;
    // Revoking the refresh token ends every access token of the grant.
    let token = if refresh.is_empty() {
        &access
    } else {
        &refresh
    };
    let revoke_error = match super::super::client::revoke(policy, token).await {
        Ok(()) => None,
        Err(e) => Some(e.to_string()),
    };
    let owners = store.salesforce_only_owner_records(account).await?;
    let mut owned: BTreeMap<String, i64> = BTreeMap::new();
    for per_type in owners.values() {
        for (t, (live, _)) in per_type {
            let name = kontor_store::SYNCED_TYPES
                .iter()
                .find(|(id, _)| id == t)
                .map_or(t.as_str(), |(_, n)| n);
            *owned.entry(name.to_string()).or_default() += live;
        }
    }
    let now = now_ms();
    let discarded = if u.pending == "discard" {
        before.pending_changes
    } else {
        0
    };
    let mut summary = Vec::new();
    if u.pending == "push" {
        summary.push(format!(
            "{pushed} pending change(s) were sent to Salesforce{}.",
            if push_errors > 0 {
                format!(", {push_errors} record(s) of which Salesforce refused")
            } else {
                String::new()
            }
        ));
    } else {
        summary.push(format!(
            "{discarded} pending change(s) were discarded, not sent."
        ));
    }
    summary.push(match &revoke_error {
        None => "The OAuth token was revoked in Salesforce.".to_string(),
        Some(e) => format!("The OAuth token could not be revoked ({e}): revoke it in Salesforce under Setup > Connected Apps OAuth Usage."),
    });
    summary.push(if u.keep_data {
        format!(
            "The integration's own data is kept until {}.",
            iso(now + kontor_store::SALESFORCE_KEEP_MS)
        )
    } else {
        "The integration's own data was deleted.".to_string()
    });
    let owners_with_records = owners
        .values()
        .filter(|t| t.values().any(|(l, _)| *l > 0))
        .count();
    if owners_with_records > 0 {
        summary.push(format!(
            "{owners_with_records} Salesforce-only owner(s) still own records: reassign them."
        ));
    }
    let outcome = json!({
        "summary": summary.join(" "),
        "pendingChanges": before.pending_changes,
        "pushed": pushed,
        "discarded": discarded,
        "pushErrors": push_errors,
        "tokenRevoked": revoke_error.is_none(),
        "revokeError": revoke_error,
        "keptUntil": u.keep_data.then(|| iso(now + kontor_store::SALESFORCE_KEEP_MS)),
        "salesforceOnlyOwners": owners_with_records,
        "ownedBySalesforceOnly": owned,
    });
    let notify = recipients(store, &u).await?;
    if store
        .finish_salesforce_uninstall(job, node, &u, &outcome, &notify)
        .await?
    {
        tracing::info!(
            account,
            uninstall = id,
            "salesforce integration uninstalled"
        );
    }
    Ok(())
}

/// Who is told: the admin who asked, or, when the operator did, the account's admins.
async fn recipients(
    store: &Store,
    u: &SalesforceUninstall,
) -> Result<Vec<i64>, kontor_store::StoreError> {
    use kontor_domain::Role;
    let users = store.users(u.account_id).await?;
    if let Some(by) = u
        .requested_by
        .filter(|by| users.iter().any(|x| x.id == *by && x.active))
    {
        return Ok(vec![by]);
    }
    Ok(users
        .iter()
        .filter(|x| x.active && matches!(x.role, Role::SuperAdmin | Role::Admin))
        .map(|x| x.id)
        .collect())
}

/// Sends every pending change, waiting out Salesforce's refusals a few times; the reason it
/// could not, for the admin.
async fn push_all(
    store: &Store,
    keys: &Keyring,
    policy: &Policy,
    node: &str,
    conn: &SalesforceConnection,
    (access, refresh): (&str, &str),
) -> Result<(), String> {
    let mut wait = FIRST_WAIT;
    for attempt in 1..=PUSH_TRIES {
        let mut api = Api::new(
            policy,
            &conn.instance_url,
            access.to_string(),
            refresh.to_string(),
            i64::MAX,
        )
        .map_err(|e| e.to_string())?;
        let mut engine = Engine {
            store,
            node,
            account: conn.account_id,
            conn: conn.clone(),
            owners: store
                .salesforce_owner_map(conn.account_id)
                .await
                .map_err(|e| e.to_string())?,
            lease_ms: policy.claim.as_millis() as i64,
        };
        let mappings = store
            .salesforce_mappings(conn.account_id)
            .await
            .map_err(|e| e.to_string())?;
        let result = engine.push(&mut api, &mappings).await;
        if let Some((access, refresh)) = &api.refreshed {
            let _ = store
                .set_salesforce_tokens(
                    conn.account_id,
                    &seal::seal(keys, access.as_bytes()),
                    refresh
                        .as_ref()
                        .map(|r| seal::seal(keys, r.as_bytes()))
                        .as_deref(),
                )
                .await;
        }
        match result {
            Ok(()) => return Ok(()),
            Err(Stop::Sf(SfError::Auth(m))) => {
                return Err(format!("Salesforce refused the connection's tokens ({m}), so the pending changes could not be sent."));
            }
            Err(Stop::Sf(e @ (SfError::Limit | SfError::Unavailable(_) | SfError::Budget)))
                if attempt < PUSH_TRIES =>
            {
                tracing::info!(account = conn.account_id, error = %e, "salesforce uninstall: waiting to send the pending changes");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(e) => {
                return Err(format!(
                    "The pending changes could not be sent to Salesforce: {e}."
                ));
            }
        }
    }
    Err("The pending changes could not be sent to Salesforce.".into())
}
