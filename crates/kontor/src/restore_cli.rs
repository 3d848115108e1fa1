//! `kontor restore …`: the operator's restore commands. Like `kontor backup`, they act on the
//! databases and file stores directly, with or without a running server, and everything they
//! do is in the account's audit log as done by `operator`.

use crate::backup_cli::{account_of, find_backup};
use crate::config::Config;
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use kontor_domain::time::iso;
use kontor_jobs::restore::{apply_plan, describe_plan, plan_restore, plan_revert};
use kontor_jobs::Requester;
use kontor_store::{Account, Directory, Import, RestorePlan};
use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

#[derive(Debug, Subcommand)]
pub enum RestoreCommand {
    /// Compute the plan of restoring properties of one object type from a backup; prints what
    /// would change, and the plan's id last.
    Plan {
        /// The backup to restore from.
        #[arg(long)]
        backup: i64,
        /// The object type: companies, contacts, deals, tickets, products, calls, tasks, or a
        /// custom object's name.
        #[arg(long)]
        object: String,
        /// The properties to restore, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        properties: Vec<String>,
        /// The account, when backups of several accounts share the id.
        #[arg(long)]
        account: Option<i64>,
    },
    /// Apply a reviewed plan (a restore, or the revert of one) and follow it to its end.
    Apply {
        /// The plan's id.
        plan: i64,
        #[arg(long)]
        account: Option<i64>,
        /// Overwrite values changed after the plan was computed (by default they are kept and
        /// reported as conflicts).
        #[arg(long)]
        overwrite_newer: bool,
        /// Confirm without a prompt that the restore changes data and that the overwritten
        /// values come back only by reverting it.
        #[arg(long)]
        yes: bool,
        /// Queue the restore for a running server and return at once.
        #[arg(long)]
        no_wait: bool,
    },
    /// Compute the plan that reverts a finished restore (apply it with `restore apply`).
    Revert {
        /// The restore's id (an import id).
        restore: i64,
        #[arg(long)]
        account: Option<i64>,
    },
    /// List an account's restores (tab-separated: id, name, state, changed, unchanged,
    /// conflicts, rejected, started, finished).
    List {
        #[arg(long)]
        account: i64,
    },
}

pub async fn run(config: &Config, command: RestoreCommand) -> Result<std::process::ExitCode> {
    let dir = Arc::new(config.open().await?);
    let keys = Arc::new(crate::keyfile::load(config)?);
    let jobs = config.jobs(dir.clone(), keys)?;
    let operator = Requester::operator(false);
    match command {
        RestoreCommand::Plan {
            backup,
            object,
            properties,
            account,
        } => {
            let (a, _) = find_backup(&dir, backup, account).await?;
            let store = dir.cell(&a)?;
            let plan = plan_restore(&jobs, store, &a, backup, &object, &properties, &operator)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            print_plan(&plan);
        }
        RestoreCommand::Revert { restore, account } => {
            let a = find_account(&dir, account, |store, a| async move {
                Ok(store
                    .import(a, restore)
                    .await?
                    .is_some_and(|i| i.is_restore()))
            })
            .await
            .with_context(|| format!("restore {restore}"))?;
            let plan = plan_revert(dir.cell(&a)?, &a, restore, &operator)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            print_plan(&plan);
        }
        RestoreCommand::Apply {
            plan,
            account,
            overwrite_newer,
            yes,
            no_wait,
        } => {
            let a = find_account(&dir, account, |store, a| async move {
                Ok(store.restore_plan(a, plan).await?.is_some())
            })
            .await
            .with_context(|| format!("restore plan {plan}"))?;
            let store = dir.cell(&a)?;
            let p = store
                .restore_plan(a.id, plan)
                .await?
                .context("the plan vanished")?;
            eprint!("{}", describe_plan(&p));
            if !yes && !confirm()? {
                bail!("not confirmed: nothing was changed");
            }
            let imp = apply_plan(store, &a, plan, overwrite_newer, &operator)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            out!("{}", imp.id);
            if no_wait {
                eprintln!(
                    "restore {} queued; a running `kontor serve` runs it",
                    imp.id
                );
                return Ok(std::process::ExitCode::SUCCESS);
            }
            let done = follow(&jobs, &a, imp).await?;
            if done.state != kontor_store::imports::DONE {
                bail!(
                    "restore {} {}: {}",
                    done.id,
                    done.state,
                    done.error.unwrap_or_default()
                );
            }
        }
        RestoreCommand::List { account } => {
            let a = account_of(&dir, account).await?;
            let store = dir.cell(&a)?;
            let mut before = None;
            loop {
                let page = store.imports(a.id, before, 500).await?;
                let Some(last) = page.last() else { break };
                before = Some(last.id);
                for i in page.iter().filter(|i| i.is_restore()) {
                    out!(
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        i.id,
                        i.name,
                        i.state,
                        i.updated,
                        i.unchanged,
                        i.conflicts,
                        i.errors,
                        iso(i.created_at),
                        i.finished_at.map(iso).unwrap_or_else(|| "-".into())
                    );
                }
            }
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn print_plan(plan: &RestorePlan) {
    eprint!("{}", describe_plan(plan));
    if let Some(sample) = plan.summary["sample"].as_array().filter(|s| !s.is_empty()) {
        eprintln!("  for example:");
        for s in sample.iter().take(10) {
            eprintln!(
                "    {} {}: {:?} -> {:?}",
                s["id"].as_str().unwrap_or(""),
                s["property"].as_str().unwrap_or(""),
                s["before"].as_str().unwrap_or(""),
                s["after"].as_str().unwrap_or("")
            );
        }
    }
    eprintln!(
        "apply it with: kontor restore apply {} --account {}",
        plan.id, plan.account_id
    );
    out!("{}", plan.id);
}

fn confirm() -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("confirm with --yes: this restore changes data, and the values it overwrites come back only by reverting it");
    }
    eprint!("This changes data; the values it overwrites come back only by reverting this restore. Type yes to go on: ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().eq_ignore_ascii_case("yes"))
}

/// The one account (of `account`, or all) for which `has` holds.
async fn find_account<F, Fut>(dir: &Directory, account: Option<i64>, has: F) -> Result<Account>
where
    F: Fn(kontor_store::Store, i64) -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let accounts = match account {
        Some(a) => vec![account_of(dir, a).await?],
        None => dir.accounts().await?,
    };
    let mut found = Vec::new();
    for a in accounts {
        if has(dir.cell(&a)?.clone(), a.id).await? {
            found.push(a);
        }
    }
    match found.len() {
        0 => bail!("does not exist"),
        1 => Ok(found.remove(0)),
        _ => bail!("exists in several accounts: say which with --account"),
    }
}

/// Runs the restore's job here unless a server's runner has it, and follows it to its end.
async fn follow(jobs: &kontor_jobs::Jobs, a: &Account, imp: Import) -> Result<Import> {
    let store = jobs.dir.cell(a)?.clone();
    let look = || async {
        let now = store
            .import(a.id, imp.id)
            .await?
            .context("the restore vanished")?;
        Ok(crate::follow::Look {
            label: format!("restore {} {}", now.id, now.state),
            done: now.rows_done,
            total: now.rows_total,
            finished: !now.is_open(),
            value: now,
        })
    };
    crate::follow::follow(jobs, (a.id, imp.job_id), look, summary).await
}

fn summary(i: &Import) -> String {
    format!(
        "{} ({}) {}: {} records changed, {} unchanged, {} conflicts left as they are, {} not restored",
        i.name, i.id, i.state, i.updated, i.unchanged, i.conflicts, i.errors
    )
}
