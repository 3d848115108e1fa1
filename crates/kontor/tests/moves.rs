//! Data moves between regions, through the server and the `kontor migration` CLI as an
//! operator and users meet them:
//! - `kills`: the lost-write checker, moves back and forth under load and `kill -9`;
//! - `scheduling`: the scheduling rules (API and CLI);
//! - `during`: what runs across a move (an import, a backup's download link).
//!
//! The cells are what the environment configures: two SQLite files by default; PostgreSQL
//! databases with `KONTOR_DATABASE_US`/`_EU` (either or both).

use serde_json::json;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::*;

#[path = "moves/during.rs"]
mod during;
#[path = "moves/kills.rs"]
mod kills;
#[path = "moves/scheduling.rs"]
mod scheduling;

/// A short lease, so that a move whose runner was killed is resumed quickly; the writers'
/// form submissions all come from one address, faster than a website's visitors would.
const ENV: [(&str, &str); 2] = [
    ("KONTOR_JOB_LEASE_SECONDS", "1"),
    ("KONTOR_FORM_SUBMISSIONS_PER_CLIENT_PER_MINUTE", "1000000"),
];

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().expect(name))
        .unwrap_or(default)
}

fn cell_url(data_dir: &std::path::Path, region: &str) -> String {
    let var = format!("KONTOR_DATABASE_{}", region.to_uppercase());
    std::env::var(var).unwrap_or_else(|_| {
        format!(
            "sqlite://{}",
            data_dir
                .join(format!("regions/{region}/kontor.db"))
                .display()
        )
    })
}

fn directory_url(data_dir: &std::path::Path) -> String {
    std::env::var("KONTOR_DATABASE_DIRECTORY").unwrap_or_else(|_| {
        if let Ok(us) = std::env::var("KONTOR_DATABASE_US") {
            us
        } else {
            format!("sqlite://{}", data_dir.join("directory.db").display())
        }
    })
}

fn start_move(data_dir: &std::path::Path, account: &str, to: &str) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(cli_log(data_dir))
        .unwrap();
    kontor(data_dir)
        .args(["migration", "run", "--account", account, "--to", to])
        .envs(ENV)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Where the `migration run` commands write their messages.
fn cli_log(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.with_extension("migration.log")
}

/// The account's open move, if any.
async fn open_move(d: &kontor_store::Directory, a: i64) -> Option<kontor_store::Move> {
    let latest = d.moves_of(a).await.unwrap();
    latest.into_iter().next().filter(|m| m.state.open())
}

const PHASES: [&str; 4] = ["copy", "catch_up", "frozen", "switched"];

/// Waits (up to 20 s) until the account's move is in `phase` or past it; `None` if it ended.
async fn wait_for_phase(
    d: &kontor_store::Directory,
    a: i64,
    phase: &str,
) -> Option<kontor_store::Move> {
    let rank = |p: &str| PHASES.iter().position(|x| *x == p);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let m = open_move(d, a).await?;
        if rank(&m.phase) >= rank(phase) {
            return Some(m);
        }
        // The freeze lasts tens of milliseconds: look again at once.
        tokio::task::yield_now().await;
    }
    None
}
