//! `kontor admin salesforce`: an account's Salesforce integration for the operator: its state,
//! pause and resume, a round now, and its sync errors with their retry. Changes are written to
//! the account's audit log as done by `cli`.

use anyhow::{Context, Result};
use clap::Subcommand;
use kontor_domain::time::iso;
use kontor_store::{Directory, SalesforceConnection, Store};

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
    }
    Ok(())
}
