//! `kontor admin salesforce`: an account's Salesforce integration for the operator: its state,
//! pause and resume, a round now, its sync errors with their retry, the uninstall, and the
//! Salesforce-only owners' reassignment and cleanup. Changes are written to the account's audit
//! log as done by `cli`. The uninstall and the reassignment are jobs that a server node runs;
//! `--wait` follows them to their end.

use anyhow::{Context, Result};
use clap::Subcommand;
use kontor_domain::time::iso;
use kontor_domain::ChangeSource;
use kontor_server::salesforce::uninstall as un;
use kontor_store::{Account, Directory, SalesforceConnection, Store, UninstallRequest};
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum SalesforceCommand {
    /// The connection: state, org, user, last round and its problem, API calls, linked
    /// records, errors (one `key<TAB>value` a line).
    Status {
        #[arg(long)]
        account: i64,
    },
    /// Pause the sync (a region move pauses it by itself).
    Pause {
        #[arg(long)]
        account: i64,
        #[arg(long, default_value = "Paused by the operator.")]
        reason: String,
    },
    /// Resume the sync; a round starts at once.
    Resume {
        #[arg(long)]
        account: i64,
    },
    /// Start a round now.
    Sync {
        #[arg(long)]
        account: i64,
    },
    /// The sync errors: id, direction, object type, record, Salesforce id, category, code,
    /// message (tab-separated).
    Errors {
        #[arg(long)]
        account: i64,
    },
    /// Try the sync errors again in the next round (all, or one with --error).
    Retry {
        #[arg(long)]
        account: i64,
        #[arg(long)]
        error: Option<i64>,
    },
    /// What an uninstall would keep and remove now (one `key<TAB>value` a line).
    UninstallPreview {
        #[arg(long)]
        account: i64,
    },
    /// Uninstall the integration: a job that sends or discards the pending changes, revokes
    /// the token, and keeps the integration's own data 48 hours or deletes it.
    Uninstall {
        #[arg(long)]
        account: i64,
        #[arg(long)]
        reason: String,
        /// `push` (send them first) or `discard`.
        #[arg(long)]
        pending: String,
        /// `keep` (48 hours, so that a reconnect re-links) or `delete` (cannot be recovered).
        #[arg(long)]
        data: String,
        /// The words "Uninstall Salesforce".
        #[arg(long)]
        confirm: String,
        /// Wait until a server node has run it, and print its outcome.
        #[arg(long)]
        wait: bool,
    },
    /// The account's uninstalls: id, state, pending, data, created, outcome or error.
    Uninstalls {
        #[arg(long)]
        account: i64,
    },
    /// The Salesforce-only owners: id, e-mail, name, live records, records in the recycle
    /// bin, the proposed owner (a user's, by e-mail or name).
    Owners {
        #[arg(long)]
        account: i64,
    },
    /// Reassign Salesforce-only owners' records: `--owner FROM=TO` (owner ids), or
    /// `--proposed` for every owner with a proposed user.
    Reassign {
        #[arg(long)]
        account: i64,
        #[arg(long = "owner")]
        owners: Vec<String>,
        #[arg(long)]
        proposed: bool,
        #[arg(long)]
        wait: bool,
    },
    /// Revert a finished reassignment: records go back unless their owner changed since.
    RevertReassignment {
        #[arg(long)]
        account: i64,
        #[arg(long)]
        id: i64,
        #[arg(long)]
        wait: bool,
    },
    /// Remove the Salesforce-only owners no record references; prints the removed and the
    /// kept ones.
    RemoveOwners {
        #[arg(long)]
        account: i64,
        /// Confirms the removal.
        #[arg(long)]
        yes: bool,
    },
}

async fn account_store(dir: &Directory, account: i64) -> Result<(Account, Store)> {
    let a = dir
        .account(account)
        .await?
        .with_context(|| format!("account {account} does not exist"))?;
    let store = dir.cell(&a)?.clone();
    Ok((a, store))
}

/// How long `--wait` waits for a server node to run the job.
const WAIT_LIMIT: Duration = Duration::from_secs(30 * 60);

/// Polls until `done` says the job ended; its last answer.
async fn follow<T, F, Fut>(mut poll: F, done: impl Fn(&T) -> bool) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let start = std::time::Instant::now();
    loop {
        let v = poll().await?;
        if done(&v) {
            return Ok(v);
        }
        anyhow::ensure!(
            start.elapsed() < WAIT_LIMIT,
            "the job has not ended after {} minutes; a server node with job workers runs it (and, for an uninstall, with [salesforce] configured). It stays queued until one does.",
            WAIT_LIMIT.as_secs() / 60
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn connection(dir: &Directory, account: i64) -> Result<(Store, SalesforceConnection)> {
    let a = dir
        .account(account)
        .await?
        .with_context(|| format!("account {account} does not exist"))?;
    let store = dir.cell(&a)?.clone();
    let c = store
        .salesforce_connection(a.id)
        .await?
        .filter(|c| c.state != "uninstalled")
        .with_context(|| format!("account {account} has not connected Salesforce"))?;
    Ok((store, c))
}

async fn audit(
    store: &Store,
    c: &SalesforceConnection,
    action: &str,
    details: serde_json::Value,
) -> Result<()> {
    store
        .audit(
            c.account_id,
            None,
            "cli",
            action,
            &format!("salesforce:{}", c.org_id),
            details,
        )
        .await?;
    Ok(())
}

pub async fn run(dir: &Directory, command: SalesforceCommand) -> Result<()> {
    match command {
        SalesforceCommand::Status { account } => {
            let (store, c) = connection(dir, account).await?;
            let counts = store.salesforce_counts(c.account_id).await?;
            out!("state\t{}", c.state);
            if let Some(r) = &c.paused_reason {
                out!("paused_reason\t{r}");
            }
            out!("org\t{}\t{}", c.org_id, c.org_name);
            out!("user\t{}\t{}", c.username, c.user_email);
            out!("instance_url\t{}", c.instance_url);
            out!(
                "last_round\t{}",
                c.last_round_at.map(iso).unwrap_or_default()
            );
            out!(
                "last_success\t{}",
                c.last_ok_at.map(iso).unwrap_or_default()
            );
            out!("last_error\t{}", c.last_error.unwrap_or_default());
            out!("next_round\t{}", iso(c.next_at));
            out!("api_calls_24h\t{}", c.calls);
            for (t, n) in &counts.links {
                out!("linked\t{t}\t{n}");
            }
            out!("sync_errors\t{}", counts.errors);
            out!("salesforce_only_owners\t{}", counts.salesforce_only_owners);
            out!("pending_changes\t{}", counts.pending_changes);
        }
        SalesforceCommand::Pause { account, reason } => {
            let (store, c) = connection(dir, account).await?;
            store
                .set_salesforce_paused(c.account_id, Some(&reason))
                .await?;
            audit(
                &store,
                &c,
                "salesforce.pause",
                serde_json::json!({"reason": reason}),
            )
            .await?;
            out!("paused");
        }
        SalesforceCommand::Resume { account } => {
            let (store, c) = connection(dir, account).await?;
            store.set_salesforce_paused(c.account_id, None).await?;
            audit(&store, &c, "salesforce.resume", serde_json::json!({})).await?;
            out!("active");
        }
        SalesforceCommand::Sync { account } => {
            let (store, c) = connection(dir, account).await?;
            anyhow::ensure!(
                store.salesforce_sync_now(c.account_id).await?,
                "the sync is paused ({}); resume it first",
                c.paused_reason.unwrap_or_default()
            );
            out!("a round starts in a moment");
        }
        SalesforceCommand::Errors { account } => {
            let (store, c) = connection(dir, account).await?;
            for e in store.salesforce_errors(c.account_id).await? {
                out!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    e.id,
                    e.direction,
                    e.object_type,
                    e.record_id.map(|r| r.to_string()).unwrap_or_default(),
                    e.sf_id.unwrap_or_default(),
                    e.category,
                    e.code,
                    e.message
                );
            }
        }
        SalesforceCommand::Retry { account, error } => {
            let (store, c) = connection(dir, account).await?;
            let n = store.retry_salesforce_errors(c.account_id, error).await?;
            audit(
                &store,
                &c,
                "salesforce.errors.retry",
                serde_json::json!({"id": error, "count": n}),
            )
            .await?;
            out!("{n}");
        }
        SalesforceCommand::UninstallPreview { account } => {
            let (_, c) = connection(dir, account).await?;
            let (_, store) = account_store(dir, account).await?;
            let i = store.salesforce_uninstall_impact(c.account_id).await?;
            for (t, n) in &i.records {
                out!("records_stay\t{t}\t{n}");
            }
            out!("properties_stay\t{}", i.properties);
            out!("values_stay\t{}", i.values);
            out!("mappings_removed\t{}", i.mappings);
            out!("links_removed\t{}", i.links);
            out!("owner_map_removed\t{}", i.owner_map);
            out!("salesforce_only_owners\t{}", i.salesforce_only_owners);
            for (t, n) in &i.owned_by_salesforce_only {
                out!("owned_by_salesforce_only\t{t}\t{n}");
            }
            out!("pending_changes\t{}", i.pending_changes);
        }
        SalesforceCommand::Uninstall {
            account,
            reason,
            pending,
            data,
            confirm,
            wait,
        } => {
            let (a, store) = account_store(dir, account).await?;
            anyhow::ensure!(
                pending == "push" || pending == "discard",
                "--pending is push or discard"
            );
            anyhow::ensure!(
                data == "keep" || data == "delete",
                "--data is keep or delete"
            );
            let req = UninstallRequest {
                reason,
                push_pending: pending == "push",
                keep_data: data == "keep",
            };
            let u = un::start(dir, &store, &a, &req, &confirm, None, "cli").await?;
            out!("uninstall\t{}", u.id);
            if wait {
                let u = follow(
                    || async {
                        store
                            .salesforce_uninstall(a.id, u.id)
                            .await?
                            .context("the uninstall is gone")
                    },
                    |u| u.state == "done" || u.state == "failed",
                )
                .await?;
                out!("state\t{}", u.state);
                if let Some(o) = &u.outcome {
                    out!("outcome\t{}", o["summary"].as_str().unwrap_or_default());
                }
                if let Some(e) = &u.error {
                    anyhow::bail!("the uninstall stopped: {e}");
                }
            }
        }
        SalesforceCommand::Uninstalls { account } => {
            let (a, store) = account_store(dir, account).await?;
            for u in store.salesforce_uninstalls(a.id, 100).await? {
                out!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    u.id,
                    u.state,
                    u.pending,
                    if u.keep_data { "keep" } else { "delete" },
                    iso(u.created_at),
                    u.error.clone().unwrap_or_else(|| u
                        .outcome
                        .as_ref()
                        .and_then(|o| o["summary"].as_str())
                        .unwrap_or_default()
                        .to_string())
                );
            }
        }
        SalesforceCommand::Owners { account } => {
            let (a, store) = account_store(dir, account).await?;
            let users = un::user_owners(&store, a.id).await?;
            for o in store.salesforce_only_owners(a.id).await? {
                let p = un::propose(&o.owner, &users);
                out!(
                    "{}\t{}\t{} {}\t{}\t{}\t{}",
                    o.owner.id,
                    o.owner.email,
                    o.owner.first_name,
                    o.owner.last_name,
                    o.live(),
                    o.binned(),
                    p.map(|p| format!("{} {}", p.id, p.email))
                        .unwrap_or_default()
                );
            }
        }
        SalesforceCommand::Reassign {
            account,
            owners,
            proposed,
            wait,
        } => {
            let (a, store) = account_store(dir, account).await?;
            let mut pairs = Vec::new();
            for o in &owners {
                let (f, t) = o
                    .split_once('=')
                    .with_context(|| format!("--owner {o}: give FROM=TO owner ids"))?;
                pairs.push((
                    f.trim()
                        .parse::<i64>()
                        .context("--owner: FROM is an owner id")?,
                    t.trim()
                        .parse::<i64>()
                        .context("--owner: TO is an owner id")?,
                ));
            }
            if proposed {
                let users = un::user_owners(&store, a.id).await?;
                for o in store.salesforce_only_owners(a.id).await? {
                    if o.live() == 0 || pairs.iter().any(|(f, _)| *f == o.owner.id) {
                        continue;
                    }
                    if let Some(p) = un::propose(&o.owner, &users) {
                        pairs.push((o.owner.id, p.id));
                    }
                }
            }
            let r = store
                .request_owner_reassignment(a.id, &pairs, ChangeSource::Api, None, "cli")
                .await?;
            out!("reassignment\t{}", r.id);
            if wait {
                wait_reassignment(&store, a.id, r.id).await?;
            }
        }
        SalesforceCommand::RevertReassignment { account, id, wait } => {
            let (a, store) = account_store(dir, account).await?;
            let r = store
                .request_reassignment_revert(a.id, id, ChangeSource::Api, None, "cli")
                .await?;
            out!("reassignment\t{}", r.id);
            if wait {
                wait_reassignment(&store, a.id, r.id).await?;
            }
        }
        SalesforceCommand::RemoveOwners { account, yes } => {
            anyhow::ensure!(yes, "add --yes to remove the Salesforce owners");
            let (a, store) = account_store(dir, account).await?;
            let (removed, kept) = store.remove_salesforce_owners(a.id, None, "cli").await?;
            for o in removed {
                out!("removed\t{}\t{}", o.id, o.email);
            }
            for o in kept {
                out!(
                    "kept\t{}\t{}\t{}\t{}",
                    o.owner.id,
                    o.owner.email,
                    o.live(),
                    o.binned()
                );
            }
        }
    }
    Ok(())
}

async fn wait_reassignment(store: &Store, account: i64, id: i64) -> Result<()> {
    let r = follow(
        || async {
            store
                .reassignment(account, id)
                .await?
                .context("the reassignment is gone")
        },
        |r| r.state == "done" || r.state == "failed",
    )
    .await?;
    out!("state\t{}", r.state);
    out!("moved\t{}", r.moved);
    out!("skipped\t{}", r.skipped);
    if let Some(e) = r.error {
        anyhow::bail!("the reassignment failed: {e}");
    }
    Ok(())
}
