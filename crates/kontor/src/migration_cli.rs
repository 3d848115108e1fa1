//! `kontor migration …`: the operator's data-move commands. `schedule`, `cancel` and
//! `reschedule` follow the same rules as the console and the API; `run` starts a move now
//! (skipping the notice period and the allowed routes, for operators, tests and benchmarks)
//! and follows it to its end, running it in this process unless a server's runner has it.

use crate::config::Config;
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use kontor_domain::time::{iso, now_ms};
use kontor_domain::Region;
use kontor_store::{Move, MoveState};
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum MigrationCommand {
    /// Schedule a move of an account's data (by the rules: an available date at least the
    /// notice period ahead, an allowed route, no payments); prints the move's id.
    Schedule {
        #[arg(long)]
        account: i64,
        #[arg(long, value_parser = ["us", "eu"])]
        to: String,
        /// The day (YYYY-MM-DD); the move starts at the configured hour (UTC).
        #[arg(long)]
        at: String,
    },
    /// Move a scheduled move to another day.
    Reschedule {
        id: i64,
        #[arg(long)]
        at: String,
    },
    /// List moves (tab-separated: id, account, from, to, state, phase, start, frozen ms, error).
    List {
        #[arg(long)]
        account: Option<i64>,
    },
    /// Show one move in full.
    Show { id: i64 },
    /// Cancel a scheduled move (until 36 hours before its start, by default).
    Cancel { id: i64 },
    /// The days a move to a region can start on.
    Dates {
        #[arg(long, value_parser = ["us", "eu"])]
        to: String,
    },
    /// Start a move now and follow it to its end; exit 0 only if it succeeded.
    Run {
        #[arg(long)]
        account: i64,
        #[arg(long, value_parser = ["us", "eu"])]
        to: String,
        /// Compare every row of both cells once frozen (a freeze that grows with the account).
        #[arg(long)]
        full_verify: bool,
    },
}

fn line(m: &Move) -> String {
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
        m.id,
        m.account_id,
        m.from.as_str(),
        m.to.as_str(),
        m.state.as_str(),
        if m.phase.is_empty() { "-" } else { &m.phase },
        iso(m.start_at),
        m.frozen_ms(now_ms()).map_or("-".into(), |f| f.to_string()),
        m.error.as_deref().unwrap_or("")
    )
}

fn region(s: &str) -> Result<Region> {
    Region::parse(s).with_context(|| format!("unknown region {s}"))
}

pub async fn run(config: &Config, command: MigrationCommand) -> Result<std::process::ExitCode> {
    let dir = Arc::new(config.open().await?);
    let keys = Arc::new(crate::keyfile::load(config)?);
    let jobs = Arc::new(config.jobs(dir.clone(), keys)?);
    let account_of = |id: i64| {
        let dir = dir.clone();
        async move {
            dir.account(id)
                .await?
                .with_context(|| format!("account {id} does not exist"))
        }
    };
    let move_of = |id: i64| {
        let dir = dir.clone();
        async move {
            dir.get_move(id)
                .await?
                .with_context(|| format!("move {id} does not exist"))
        }
    };
    match command {
        MigrationCommand::Schedule { account, to, at } => {
            let a = account_of(account).await?;
            let mv = jobs
                .schedule_move(&a, region(&to)?, &at, "operator", None)
                .await?;
            out!("{}", mv.id);
        }
        MigrationCommand::Reschedule { id, at } => {
            let mv = move_of(id).await?;
            let a = account_of(mv.account_id).await?;
            let mv = jobs.reschedule_move(&a, &mv, &at, "operator", None).await?;
            out!("{}", line(&mv));
        }
        MigrationCommand::List { account } => {
            let moves = match account {
                Some(a) => dir.moves_of(a).await?,
                None => dir.all_moves().await?,
            };
            for m in moves {
                out!("{}", line(&m));
            }
        }
        MigrationCommand::Show { id } => {
            let m = move_of(id).await?;
            let t = |v: Option<i64>| v.map_or("-".to_string(), iso);
            out!("move:          {}", m.id);
            out!("account:       {}", m.account_id);
            out!("from → to:     {} → {}", m.from.as_str(), m.to.as_str());
            out!("state:         {} ({})", m.state.as_str(), m.phase);
            out!("starts:        {}", iso(m.start_at));
            out!("scheduled by:  {} at {}", m.scheduled_by, iso(m.created_at));
            out!("started:       {}", t(m.started_at));
            out!("frozen:        {}", t(m.frozen_at));
            out!("switched:      {}", t(m.switched_at));
            out!("finished:      {}", t(m.finished_at));
            if let Some(f) = m.frozen_ms(now_ms()) {
                out!("frozen for:    {f} ms");
            }
            out!("attempts:      {}", m.attempts);
            out!("progress:      {}", m.progress);
            if let Some(e) = &m.error {
                out!("error:         {e}");
            }
        }
        MigrationCommand::Cancel { id } => {
            let mv = move_of(id).await?;
            let a = account_of(mv.account_id).await?;
            jobs.cancel_move(&a, &mv, "operator", None).await?;
            out!("{}\tcanceled", mv.id);
        }
        MigrationCommand::Dates { to } => {
            for d in jobs.available_move_days(region(&to)?).await? {
                out!("{d}");
            }
        }
        MigrationCommand::Run {
            account,
            to,
            full_verify,
        } => {
            let a = account_of(account).await?;
            let to = region(&to)?;
            let mv = match jobs.open_move(a.id).await? {
                // A move already due (this command stopped and run again) is followed.
                Some(m) if m.to == to && m.start_at <= now_ms() => m,
                Some(m) => bail!(
                    "account {account} already has move {} {}",
                    m.id,
                    m.state.as_str()
                ),
                None if a.region == to => {
                    bail!("account {account}'s data is already in {}", to.as_str())
                }
                None => {
                    dir.schedule_move(a.id, to, now_ms(), "operator", full_verify)
                        .await?
                }
            };
            eprintln!("move {}: account {account} to {}", mv.id, to.as_str());
            let done = follow(&jobs, mv.id).await?;
            return Ok(if done.state == MoveState::Done {
                out!("{}", line(&done));
                std::process::ExitCode::SUCCESS
            } else {
                eprintln!(
                    "move {} {}: {}",
                    done.id,
                    done.state.as_str(),
                    done.error.as_deref().unwrap_or("")
                );
                std::process::ExitCode::FAILURE
            });
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Runs the move here whenever nobody else holds it, and shows its progress to its end.
async fn follow(jobs: &Arc<kontor_jobs::Jobs>, id: i64) -> Result<Move> {
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} rows ({eta})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar
    });
    let runner = {
        let jobs = jobs.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = kontor_jobs::moving::run_due(&jobs, Some(id)).await {
                    tracing::warn!(error = %format!("{e:#}"), "running the move");
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };
    let mut last = String::new();
    let result = loop {
        let m = jobs
            .dir
            .get_move(id)
            .await?
            .context("the move disappeared")?;
        let p = &m.progress;
        let (copied, total) = (
            p["copied"].as_i64().unwrap_or(0),
            p["total"].as_i64().unwrap_or(0),
        );
        let label = format!(
            "move {id} {}{}",
            if m.phase.is_empty() {
                m.state.as_str()
            } else {
                &m.phase
            },
            match p["pending"].as_i64() {
                Some(n) if n > 0 => format!(" ({n} changes to catch up)"),
                _ => String::new(),
            }
        );
        if let Some(bar) = &bar {
            bar.set_length(total.max(0) as u64);
            bar.set_position(copied.max(0) as u64);
            bar.set_message(label);
        } else {
            let text = format!("{label} {copied}/{total} rows");
            if text != last {
                eprintln!("{text}");
                last = text;
            }
        }
        if !m.state.open() {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    runner.abort();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(result)
}
