//! `kontor backup …`: the operator's backup commands. They act on the databases and file
//! stores directly, so they work with or without a running server; `create --wait` runs the
//! job in this process unless a server's runner claimed it first, and then follows it.

use crate::config::Config;
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use kontor_domain::time::iso;
use kontor_jobs::Requester;
use kontor_store::{Account, Backup, Directory};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Ask for a backup of an account; prints its id (and with --wait, the archive's path last).
    Create {
        #[arg(long)]
        account: i64,
        /// Wait for the backup to finish, showing progress.
        #[arg(long)]
        wait: bool,
        /// Skip the tier's interval between backups (never the one-at-a-time rule).
        #[arg(long)]
        ignore_interval: bool,
    },
    /// List an account's backups (tab-separated: id, status, requested by, requested, completed,
    /// data as of, records, bytes).
    List {
        #[arg(long)]
        account: i64,
    },
    /// Copy a completed backup's archive to a file.
    Download {
        /// The backup's id.
        id: i64,
        /// The account, when backups of several accounts share the id.
        #[arg(long)]
        account: Option<i64>,
        #[arg(short = 'o', long)]
        output: PathBuf,
    },
    /// Check an archive completely; exit 0 only if it is intact.
    Verify { file: PathBuf },
}

pub async fn run(config: &Config, command: BackupCommand) -> Result<std::process::ExitCode> {
    if let BackupCommand::Verify { file } = &command {
        let file = file.clone();
        let result = tokio::task::spawn_blocking(move || kontor_archive::verify(&file)).await?;
        return Ok(match result {
            Ok(v) => {
                let m = &v.manifest;
                out!(
                    "ok: backup {} of account {} ({}), {} records as of change {} ({})",
                    m.backup_id,
                    m.account_id,
                    m.account_name,
                    v.rows,
                    m.snapshot_seq,
                    m.snapshot_at
                );
                for f in &m.files {
                    out!(
                        "  {}\t{} rows\t{} columns\tsha256 {}",
                        f.name,
                        f.rows,
                        f.properties.len(),
                        f.sha256
                    );
                }
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("damaged: {e}");
                std::process::ExitCode::FAILURE
            }
        });
    }
    let dir = Arc::new(config.open().await?);
    let keys = Arc::new(crate::keyfile::load(config)?);
    let jobs = config.jobs(dir.clone(), keys)?;
    match command {
        BackupCommand::Verify { .. } => unreachable!("handled above"),
        BackupCommand::Create {
            account,
            wait,
            ignore_interval,
        } => {
            let a = account_of(&dir, account).await?;
            let store = dir.cell(&a)?;
            let b = kontor_jobs::request_backup(store, &a, &Requester::operator(ignore_interval))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            out!("{}", b.id);
            if !wait {
                eprintln!(
                    "backup {} queued; a running `kontor serve` runs it (or use --wait)",
                    b.id
                );
                return Ok(std::process::ExitCode::SUCCESS);
            }
            let done = follow(&jobs, &a, b).await?;
            if done.state != "completed" {
                bail!(
                    "backup {} {}: {}",
                    done.id,
                    done.state,
                    done.error.unwrap_or_default()
                );
            }
            let path = kontor_jobs::archive_path(&jobs, &a, &done).context("archive path")?;
            out!("{}", path.display());
        }
        BackupCommand::List { account } => {
            let a = account_of(&dir, account).await?;
            for b in dir.cell(&a)?.backups(a.id).await? {
                let t = |v: Option<i64>| v.map(iso).unwrap_or_else(|| "-".into());
                out!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    b.id,
                    b.state,
                    b.requested_by_name,
                    iso(b.requested_at),
                    t(b.completed_at),
                    t(b.snapshot_at),
                    b.rows.map_or("-".into(), |n| n.to_string()),
                    b.size_bytes.map_or("-".into(), |n| n.to_string()),
                );
            }
        }
        BackupCommand::Download {
            id,
            account,
            output,
        } => {
            let (a, b) = find_backup(&dir, id, account).await?;
            let path = kontor_jobs::archive_path(&jobs, &a, &b).with_context(|| {
                format!("backup {id} is {} and has no file to download", b.state)
            })?;
            let tmp = output.with_extension("partial");
            std::fs::copy(&path, &tmp)
                .with_context(|| format!("copying {} to {}", path.display(), tmp.display()))?;
            std::fs::rename(&tmp, &output)?;
            dir.cell(&a)?
                .audit(
                    a.id,
                    None,
                    "operator",
                    "backup.download",
                    &format!("backup {id}"),
                    serde_json::json!({"message": "Copied by the operator on the command line (sensitive property values included)."}),
                )
                .await?;
            eprintln!(
                "wrote {} (sensitive property values included)",
                output.display()
            );
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

pub(crate) async fn account_of(dir: &Directory, id: i64) -> Result<Account> {
    dir.account(id)
        .await?
        .with_context(|| format!("account {id} does not exist"))
}

pub(crate) async fn find_backup(
    dir: &Directory,
    id: i64,
    account: Option<i64>,
) -> Result<(Account, Backup)> {
    let accounts = match account {
        Some(a) => vec![account_of(dir, a).await?],
        None => dir.accounts().await?,
    };
    let mut found = Vec::new();
    for a in accounts {
        if let Some(b) = dir.cell(&a)?.backup(a.id, id).await? {
            found.push((a, b));
        }
    }
    match found.len() {
        0 => bail!("backup {id} does not exist"),
        1 => Ok(found.remove(0)),
        _ => bail!("several accounts have a backup {id}: say which with --account"),
    }
}

fn summary(b: &Backup) -> String {
    format!(
        "backup {} {}{}",
        b.id,
        b.state,
        b.size_bytes
            .map(|s| format!(": {} records, {s} bytes", b.rows.unwrap_or(0)))
            .unwrap_or_default()
    )
}

/// Runs the backup's job here if nobody has claimed it, and follows its progress until it ends.
async fn follow(jobs: &kontor_jobs::Jobs, a: &Account, b: Backup) -> Result<Backup> {
    let store = jobs.dir.cell(a)?.clone();
    let look = || async {
        let now = store
            .backup(a.id, b.id)
            .await?
            .context("the backup vanished")?;
        Ok(crate::follow::Look {
            label: format!("backup {} {}", now.id, now.state),
            done: now.progress_done,
            total: now.progress_total,
            finished: matches!(now.state.as_str(), "completed" | "failed" | "expired"),
            value: now,
        })
    };
    crate::follow::follow(jobs, (a.id, b.job_id), look, summary).await
}
