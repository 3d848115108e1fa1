//! The data-hosting move of an account to another region, run like a job: a runner claims a
//! due move in the directory under a lease, drives it through its phases, and stores each phase
//! as it enters it, so that a runner that dies (or loses its lease) is followed by one that
//! resumes at the stored phase. Each phase can be run again from its start.
//!
//! 1. **copy**: the new cell is marked as receiving the account (its jobs wait there), any
//!    partial copy of an earlier attempt is removed, the old cell starts capturing the
//!    account's writes, the account's files are copied, and then its rows as of one snapshot.
//!    The account stays live throughout.
//! 2. **catch_up**: rounds replay captured writes until few are left; the two cells are then
//!    compared whole (but for the rows still to replay), and the directory closes the account
//!    (477) and records the freeze.
//! 3. **frozen**: the old cell's fence is raised (no write commits there any more), the last
//!    rounds replay what is left, new files are copied, the new cell's fence is lifted (the
//!    directory still closes the account, so nothing writes there yet), and the directory
//!    switches the account's region and opens it again in one transaction: the commit point.
//!    From it on, the new cell takes the account's writes, however soon the runner stops.
//! 4. **switched**: the old cell marks it moved (writes there stay refused for good), and its
//!    rows and files there are removed.
//!
//! A move that cannot go on before the switch (the comparison differs, it failed too often,
//! the freeze lasted too long) fails: it enters the phase `failing`, the old cell is unfenced
//! and stays authoritative, the partial copy and its files are removed, and the account opens
//! again where it was.
//!
//! The lease decides which runner starts; each runner's fencing token, taken in both cells
//! before anything else and checked by each of its transactions there, makes a runner that
//! lost the move fail at its next write (see `kontor_store::moving::Token`).

mod policy;
pub use policy::Policy;

use crate::Jobs;
use anyhow::{anyhow, Context, Result};
use kontor_domain::time::now_ms;
use kontor_store::moves::{
    PHASE_CATCH_UP, PHASE_COPY, PHASE_FAILING, PHASE_FROZEN, PHASE_SWITCHED,
};
use kontor_store::{Move, Store};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Captured writes replayed per round.
const ROUND: i64 = 2000;
/// The catch-up freezes the account once no more than this many keys wait.
const LAG_TO_FREEZE: i64 = 200;
/// Catch-up rounds stop waiting for the lag to shrink after this long, and freeze anyway.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(600);
/// A move whose attempt number this is, and which stops on an error before its switch, fails
/// for good (a crash loop): attempts count every claim, resumptions after a kill included.
const MAX_ATTEMPTS: i64 = 10;
/// A freeze longer than this (a runner dying again and again while frozen) fails the move.
const FREEZE_LIMIT_MS: i64 = 15 * 60 * 1000;

/// What a move reports while it runs (stored with its lease, shown by the CLI and the page).
#[derive(Default)]
pub struct Progress {
    pub copied: AtomicI64,
    pub total: AtomicI64,
    pub pending: AtomicI64,
    pub files: AtomicI64,
    /// How long the snapshot copy and the comparison took (ms).
    pub copy_ms: AtomicI64,
    pub verify_ms: AtomicI64,
    /// Keys the catch-up replayed while the account was frozen, and where the freeze's time
    /// went: what an operator looks at when a freeze took longer than expected.
    pub frozen_keys: AtomicI64,
    frozen_steps: Mutex<FrozenSteps>,
    step: Mutex<String>,
}

/// How long each step of the freeze took (ms), as the runner saw it.
#[derive(Default, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct FrozenSteps {
    /// Fencing the old cell (waits for the account's writes under way).
    fence_ms: i64,
    /// The last catch-up rounds.
    catch_up_ms: i64,
    /// Copying the files made since the copy.
    files_ms: i64,
    /// Opening the account in the new cell, just before the switch.
    unfence_ms: i64,
    /// Switching the directory.
    switch_ms: i64,
}

fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

impl Progress {
    /// What an earlier attempt stored, to go on from.
    fn resumed(stored: &serde_json::Value) -> Self {
        let n = |k: &str| AtomicI64::new(stored[k].as_i64().unwrap_or(0));
        Self {
            copied: n("copied"),
            total: n("total"),
            pending: n("pending"),
            files: n("files"),
            copy_ms: n("copy_ms"),
            verify_ms: n("verify_ms"),
            frozen_keys: n("frozen_keys"),
            frozen_steps: Mutex::new(
                serde_json::from_value(stored["frozen_steps"].clone()).unwrap_or_default(),
            ),
            step: Mutex::new(String::new()),
        }
    }

    fn frozen(&self, record: impl FnOnce(&mut FrozenSteps)) {
        if let Ok(mut f) = self.frozen_steps.lock() {
            record(&mut f);
        }
    }

    fn set_step(&self, step: &str) {
        if let Ok(mut s) = self.step.lock() {
            *s = step.to_string();
        }
    }
    fn json(&self) -> serde_json::Value {
        json!({
            "copied": self.copied.load(Ordering::Relaxed),
            "total": self.total.load(Ordering::Relaxed),
            "pending": self.pending.load(Ordering::Relaxed),
            "files": self.files.load(Ordering::Relaxed),
            "copy_ms": self.copy_ms.load(Ordering::Relaxed),
            "verify_ms": self.verify_ms.load(Ordering::Relaxed),
            "frozen_keys": self.frozen_keys.load(Ordering::Relaxed),
            "frozen_steps": self.frozen_steps.lock().map(|f| *f).unwrap_or_default(),
            "step": self.step.lock().map(|s| s.clone()).unwrap_or_default(),
        })
    }
}

/// Why a move stops: it must fail (the account stays where it was), or this attempt ended and
/// another resumes it.
enum Stop {
    Fail(String),
    Retry(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Stop {
    fn from(e: E) -> Self {
        Stop::Retry(e.into())
    }
}

/// Claims one due move (`only`: that one) and runs it to its end or until this runner loses
/// it. Returns the move's id if one was claimed.
pub async fn run_due(jobs: &Arc<Jobs>, only: Option<i64>) -> Result<Option<i64>> {
    let Some(mv) = jobs.dir.claim_move(&jobs.node, jobs.lease_ms, only).await? else {
        return Ok(None);
    };
    let id = mv.id;
    if mv.phase == PHASE_COPY {
        // An uninstall of the Salesforce integration runs to its end first.
        if let Some(cell) = jobs.dir.regions.get(&mv.from) {
            if let Some(u) = cell.open_salesforce_uninstall(mv.account_id).await? {
                let why = format!(
                    "The move waits for the Salesforce integration's uninstall {} to finish.",
                    u.id
                );
                tracing::info!(move_id = id, account = mv.account_id, "{why}");
                jobs.dir.defer_move(id, &jobs.node, 30_000, &why).await?;
                return Ok(Some(id));
            }
        }
    }
    tracing::info!(
        move_id = id,
        account = mv.account_id,
        phase = %mv.phase,
        attempt = mv.attempts,
        "running a data move"
    );
    let progress = Arc::new(Progress::resumed(&mv.progress));
    let (lost_tx, mut lost) = tokio::sync::watch::channel(false);
    let heartbeat = {
        let (jobs, progress) = (jobs.clone(), progress.clone());
        tokio::spawn(async move {
            let mut renewed = Instant::now();
            loop {
                tokio::time::sleep(jobs.heartbeat()).await;
                match jobs
                    .dir
                    .renew_move(id, &jobs.node, jobs.lease_ms, &progress.json())
                    .await
                {
                    Ok(true) => renewed = Instant::now(),
                    Ok(false) => {
                        let _ = lost_tx.send(true);
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(move_id = id, error = %e, "renewing a move's lease");
                        // Unrenewed for a whole lease: another runner may have taken the
                        // move over, so this one stops rather than write beside it.
                        if renewed.elapsed() >= Duration::from_millis(jobs.lease_ms.max(0) as u64) {
                            let _ = lost_tx.send(true);
                            return;
                        }
                    }
                }
            }
        })
    };
    let outcome = tokio::select! {
        r = drive_or_fail(jobs, &mv, &progress) => r,
        _ = lost.changed() => Err(anyhow!("another runner took the move over")),
    };
    heartbeat.abort();
    if let Err(e) = outcome {
        tracing::warn!(move_id = id, error = %format!("{e:#}"), "a data move stopped; it resumes");
        jobs.dir
            .release_move(id, &jobs.node, &format!("{e:#}"))
            .await?;
    }
    Ok(Some(id))
}

/// Drives the move, and fails it where it must fail (the heartbeat keeps the lease while the
/// failure is undone). An error: this attempt stopped, and another resumes the move.
async fn drive_or_fail(jobs: &Arc<Jobs>, mv: &Move, progress: &Progress) -> Result<()> {
    match drive(jobs, mv.clone(), progress).await {
        Ok(()) => Ok(()),
        Err(Stop::Fail(reason)) => {
            fail(jobs, mv, &reason).await?;
            Ok(())
        }
        Err(Stop::Retry(e)) if mv.attempts >= MAX_ATTEMPTS => {
            let reason = format!("the move stopped {MAX_ATTEMPTS} times; last: {e:#}");
            // Not once it has switched: it is then driven to its end, however often it stops.
            if fail(jobs, mv, &reason).await? {
                Ok(())
            } else {
                Err(e)
            }
        }
        Err(Stop::Retry(e)) => Err(e),
    }
}

/// The cells and file stores of a move.
struct Sides {
    from: Store,
    to: Store,
    from_files: PathBuf,
    to_files: PathBuf,
    /// Both regions are served by one database: only the directory changes.
    same: bool,
}

fn sides(jobs: &Jobs, mv: &Move) -> Result<Sides> {
    let from = jobs.dir.region(mv.from)?.clone();
    let to = jobs.dir.region(mv.to)?.clone();
    let same = from.same_database(&to);
    Ok(Sides {
        from,
        to,
        from_files: jobs.files_root(mv.from),
        to_files: jobs.files_root(mv.to),
        same,
    })
}

async fn drive(jobs: &Arc<Jobs>, mut mv: Move, progress: &Progress) -> Result<(), Stop> {
    let s = sides(jobs, &mv)?;
    let a = mv.account_id;
    let owner = jobs.node.as_str();
    let token = mv.token();
    let lost = || Stop::Retry(anyhow!("the move's lease was lost"));
    // Before anything else, both cells take this runner's token: a runner this one replaces
    // fails at its next write in either (see `kontor_store::moving::Token`).
    if !s.same && !take_tokens(&s, a, token).await? {
        return Err(lost());
    }
    loop {
        progress.set_step(&mv.phase);
        match mv.phase.as_str() {
            PHASE_COPY => {
                if !s.same {
                    s.to.mark_incoming(a, mv.from.as_str(), token).await?;
                    s.to.remove_account_data(a, token).await?;
                    s.from.start_capture(a, mv.to.as_str(), token).await?;
                    if mv.attempts == 1 {
                        s.from
                            .audit(a, None, "system", "data_move.started", &format!("move {}", mv.id), json!({
                                "message": format!("Moving this account's data to {}.", mv.to.label()),
                                "move": mv.id, "to": mv.to.as_str(),
                            }))
                            .await?;
                    }
                    let n = sync_files(&s.from_files, &s.to_files, a).await?;
                    progress.files.fetch_add(n as i64, Ordering::Relaxed);
                    let total: i64 = s
                        .from
                        .account_row_counts(a)
                        .await?
                        .iter()
                        .map(|(_, n)| n)
                        .sum();
                    progress.total.store(total, Ordering::Relaxed);
                    progress.copied.store(0, Ordering::Relaxed);
                    let began = Instant::now();
                    s.from
                        .copy_account_counting(&s.to, a, token, &progress.copied)
                        .await?;
                    progress
                        .copy_ms
                        .store(began.elapsed().as_millis() as i64, Ordering::Relaxed);
                    // The new cell's planner learns of the rows before it serves them.
                    s.to.refresh_statistics().await?;
                    test_hooks::maybe_damage(&s.to, a, token).await?;
                } else {
                    // One database serves both regions, but each has its own file store: the
                    // files are copied while the account stays open, and the freeze copies
                    // only those made since.
                    let n = sync_files(&s.from_files, &s.to_files, a).await?;
                    progress.files.fetch_add(n as i64, Ordering::Relaxed);
                }
                if !jobs
                    .dir
                    .move_phase(mv.id, owner, PHASE_COPY, PHASE_CATCH_UP)
                    .await?
                {
                    return Err(lost());
                }
            }
            PHASE_CATCH_UP => {
                if !s.same {
                    converge(jobs, &s, &mv, progress).await?;
                    progress.set_step("verify");
                    let began = Instant::now();
                    let differ = s.from.verify_copy(&s.to, a).await?;
                    progress
                        .verify_ms
                        .store(began.elapsed().as_millis() as i64, Ordering::Relaxed);
                    if !differ.is_empty() {
                        return Err(Stop::Fail(mismatch(&differ)));
                    }
                    // The writes made while the comparison ran (as many as it took long, so
                    // more the larger the account): caught up again before the freeze.
                    progress.set_step(PHASE_CATCH_UP);
                    converge(jobs, &s, &mv, progress).await?;
                }
                if !jobs.dir.freeze_move(&mv, owner).await? {
                    return Err(lost());
                }
            }
            PHASE_FROZEN => {
                if mv.frozen_at.is_some_and(|f| now_ms() - f > FREEZE_LIMIT_MS) {
                    return Err(Stop::Fail(format!(
                        "the account stayed frozen longer than {} minutes",
                        FREEZE_LIMIT_MS / 60_000
                    )));
                }
                if !s.same {
                    let began = Instant::now();
                    s.from.fence_account(a, mv.to.as_str(), token).await?;
                    let fenced = Instant::now();
                    loop {
                        still_mine(jobs, mv.id).await?;
                        let round = s.from.catch_up_to(&s.to, a, token, ROUND).await?;
                        progress.pending.store(round.pending, Ordering::Relaxed);
                        progress
                            .frozen_keys
                            .fetch_add(round.replayed as i64, Ordering::Relaxed);
                        if round.pending == 0 {
                            break;
                        }
                    }
                    progress.frozen(|f| {
                        f.fence_ms = ms(fenced - began);
                        f.catch_up_ms = ms(fenced.elapsed());
                    });
                    if mv.full_verify {
                        progress.set_step("verify");
                        let differ = s.from.verify_copy(&s.to, a).await?;
                        if !differ.is_empty() {
                            return Err(Stop::Fail(mismatch(&differ)));
                        }
                    }
                }
                // New files since the copy (each region has its own file store, even when
                // one database serves both).
                let began = Instant::now();
                let n = sync_files(&s.from_files, &s.to_files, a).await?;
                progress.files.fetch_add(n as i64, Ordering::Relaxed);
                let synced = Instant::now();
                // The new cell opens before the switch, while the directory still closes the
                // account (nothing reaches it there yet): once the switch commits, no write
                // there is refused, even if this runner dies before its next step.
                if !s.same {
                    s.to.unfence_account(a, token).await?;
                }
                let opened = Instant::now();
                if !jobs.dir.switch_move(&mv, owner).await? {
                    return Err(lost());
                }
                progress.frozen(|f| {
                    f.files_ms = ms(synced - began);
                    f.unfence_ms = ms(opened - synced);
                    f.switch_ms = ms(opened.elapsed());
                });
            }
            PHASE_SWITCHED => {
                if !s.same {
                    // Open already, but for a move switched by an older version.
                    s.to.unfence_account(a, token).await?;
                    // Fenced, it was passed over if the new cell was upgraded meanwhile.
                    s.to.reseed_account(a).await?;
                    s.from.mark_account_moved(a, mv.to.as_str(), token).await?;
                    s.from.remove_account_data(a, token).await?;
                }
                if s.from_files != s.to_files {
                    remove_files(&s.from_files, a).await?;
                }
                // Form submissions that waited through the freeze, in the new cell now (the
                // servers' housekeeping would apply them too).
                if let Err(e) = jobs.dir.apply_queued_submissions(a).await {
                    tracing::warn!(account = a, error = %e, "applying form submissions after a move");
                }
                let now = now_ms();
                let frozen = mv.frozen_ms(now).unwrap_or(0);
                s.to
                    .audit(a, None, "system", "data_move.completed", &format!("move {}", mv.id), json!({
                        "message": format!("This account's data now lives in {}. It was unavailable for {:.1} seconds.", mv.to.label(), frozen as f64 / 1000.0),
                        "move": mv.id, "from": mv.from.as_str(), "to": mv.to.as_str(),
                        "frozen_ms": frozen, "rows": progress.copied.load(Ordering::Relaxed),
                    }))
                    .await?;
                jobs.dir
                    .renew_move(mv.id, owner, jobs.lease_ms, &progress.json())
                    .await?;
                tell_super_admins(&s.to, a, kontor_store::OUTBOX_MOVE_DONE, mv.id).await?;
                if !jobs.dir.end_move(&mv, owner, None).await? {
                    return Err(lost());
                }
                tracing::info!(
                    move_id = mv.id,
                    account = a,
                    frozen_ms = frozen,
                    "data move done"
                );
                return Ok(());
            }
            PHASE_FAILING => {
                undo(jobs, &mv, token).await?;
                return Ok(());
            }
            other => return Err(Stop::Fail(format!("unknown phase {other:?}"))),
        }
        mv = jobs
            .dir
            .get_move(mv.id)
            .await?
            .ok_or_else(|| anyhow!("the move disappeared"))?;
    }
}

/// Whether this runner still holds the move: checked before each round of catch-up, so that a
/// runner that lost the move stops writing into the new cell.
/// Catch-up rounds until the lag is small and the last round was small too: what is left for
/// the freeze is then what was written during one short round, however large the account.
/// Gives up waiting after [`CATCH_UP_LIMIT`] (the writes outpace the rounds) and freezes anyway.
async fn converge(jobs: &Jobs, s: &Sides, mv: &Move, progress: &Progress) -> Result<(), Stop> {
    let began = Instant::now();
    loop {
        still_mine(jobs, mv.id).await?;
        let round = s
            .from
            .catch_up_to(&s.to, mv.account_id, mv.token(), ROUND)
            .await?;
        progress.pending.store(round.pending, Ordering::Relaxed);
        let small = |n: i64| n <= LAG_TO_FREEZE;
        if (small(round.pending) && small(round.replayed as i64))
            || began.elapsed() > CATCH_UP_LIMIT
        {
            return Ok(());
        }
    }
}

async fn still_mine(jobs: &Jobs, id: i64) -> Result<(), Stop> {
    let holds = jobs.dir.get_move(id).await?.is_some_and(|m| {
        m.state == kontor_store::MoveState::Running
            && m.lease_owner.as_deref() == Some(jobs.node.as_str())
            && m.lease_until.is_some_and(|u| u > now_ms())
    });
    if holds {
        Ok(())
    } else {
        Err(Stop::Retry(anyhow!("the move's lease was lost")))
    }
}

fn mismatch(differ: &[kontor_store::moving::Mismatch]) -> String {
    let list: Vec<String> = differ.iter().map(ToString::to_string).collect();
    format!(
        "the copy does not match the account's data: {}",
        list.join("; ")
    )
}

/// Takes `token` in both cells of a move; `false` if a later runner holds either.
async fn take_tokens(s: &Sides, account: i64, token: kontor_store::moving::Token) -> Result<bool> {
    Ok(s.to.take_move_token(account, token).await?
        && s.from.take_move_token(account, token).await?)
}

/// Fails a move before its switch, for `reason`: records that it fails (so that a runner that
/// takes over after a crash goes on undoing it), then undoes it. `false` if this runner no
/// longer holds the move, or it has switched (it cannot fail any more).
async fn fail(jobs: &Arc<Jobs>, mv: &Move, reason: &str) -> Result<bool> {
    if !jobs.dir.fail_move(mv.id, &jobs.node, reason).await? {
        return Ok(false);
    }
    undo(jobs, mv, mv.token()).await?;
    Ok(true)
}

/// Undoes a failing move: the old cell is unfenced and stays the account's home, the partial
/// copy and its files go, and the account opens again. Every step can be run again.
async fn undo(jobs: &Arc<Jobs>, claimed: &Move, token: kontor_store::moving::Token) -> Result<()> {
    let id = claimed.id;
    let mv = jobs
        .dir
        .get_move(id)
        .await?
        .context("the failed move disappeared")?;
    let reason = mv
        .error
        .clone()
        .unwrap_or_else(|| "the move failed".to_string());
    let s = sides(jobs, &mv)?;
    let a = mv.account_id;
    if !s.same {
        if !take_tokens(&s, a, token).await? {
            return Err(anyhow!("the move's lease was lost"));
        }
        s.from.unfence_account(a, token).await?;
        s.from.reseed_account(a).await?;
        s.to.mark_incoming(a, mv.from.as_str(), token).await?;
        s.to.remove_account_data(a, token).await?;
        s.to.unfence_account(a, token).await?;
    }
    if s.from_files != s.to_files {
        remove_files(&s.to_files, a).await?;
    }
    let reason = reason.as_str();
    if jobs.dir.end_move(&mv, &jobs.node, Some(reason)).await? {
        tell_super_admins(&s.from, a, kontor_store::OUTBOX_MOVE_FAILED, id).await?;
        tracing::error!(move_id = id, account = a, reason, "data move failed");
        s.from
            .audit(a, None, "system", "data_move.failed", &format!("move {id}"), json!({
                "message": format!("Moving this account's data to {} failed; it stays in {}. {reason}", mv.to.label(), mv.from.label()),
                "move": id, "reason": reason,
            }))
            .await?;
    }
    Ok(())
}

pub(crate) mod test_hooks {
    use std::sync::atomic::{AtomicI64, Ordering};

    /// The copy of this account gets a row the account does not have, once: the comparison
    /// must catch it.
    pub(crate) static DAMAGE_ACCOUNT: AtomicI64 = AtomicI64::new(0);

    pub(crate) async fn maybe_damage(
        to: &kontor_store::Store,
        account: i64,
        token: kontor_store::moving::Token,
    ) -> anyhow::Result<()> {
        if DAMAGE_ACCOUNT
            .compare_exchange(account, 0, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            // As the move itself: no one else writes an arriving account.
            to.execute_in_move(
                account,
                token,
                "INSERT INTO tokens (account_id, id, name, token_hash, created_at) \
                 VALUES ($1, 999999999, 'not in the account', 'damage', 0)",
            )
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

/// Tells every active super admin of the account about the move (once per event and person,
/// however often this runs).
pub(crate) async fn tell_super_admins(
    store: &Store,
    account: i64,
    kind: &str,
    move_id: i64,
) -> Result<()> {
    let admins: Vec<i64> = store
        .users(account)
        .await?
        .into_iter()
        .filter(|u| u.active && u.role == kontor_domain::Role::SuperAdmin)
        .map(|u| u.id)
        .collect();
    store.enqueue_once(account, kind, move_id, &admins).await?;
    Ok(())
}

/// Writes the reminders of scheduled moves that are due: on the Monday (UTC) of the week a move
/// starts, and a day before it starts. Each is written once.
pub async fn remind(jobs: &Jobs, now: i64) -> Result<()> {
    const DAY: i64 = 86_400_000;
    for mv in jobs.dir.all_moves().await? {
        if mv.state != kontor_store::MoveState::Scheduled {
            continue;
        }
        let Some(account) = jobs.dir.account(mv.account_id).await? else {
            continue;
        };
        let store = jobs.dir.cell(&account)?;
        // 1970-01-01 was a Thursday: (day + 3) mod 7 counts the days since Monday.
        let day = mv.start_at.div_euclid(DAY);
        let monday = (day - (day + 3).rem_euclid(7)) * DAY;
        if now >= monday {
            tell_super_admins(store, account.id, kontor_store::OUTBOX_MOVE_WEEK, mv.id).await?;
        }
        if now >= mv.start_at - DAY {
            tell_super_admins(store, account.id, kontor_store::OUTBOX_MOVE_TOMORROW, mv.id).await?;
        }
    }
    Ok(())
}

/// The folders of a file store that hold an account's files.
fn account_dirs(root: &Path, account: i64) -> [PathBuf; 3] {
    [
        root.join("backups").join(account.to_string()),
        root.join("imports").join(account.to_string()),
        root.join("staging")
            .join("imports")
            .join(account.to_string()),
    ]
}

/// Copies the account's finished files from one file store to another: those the other lacks
/// or holds at another size (each through a temporary name, then renamed into place). Files
/// still being written (hidden, or `.partial`) are left: their writers start again. Returns how
/// many were copied.
async fn sync_files(from: &Path, to: &Path, account: i64) -> Result<usize> {
    if from == to {
        return Ok(0);
    }
    let (from, to) = (from.to_path_buf(), to.to_path_buf());
    tokio::task::spawn_blocking(move || {
        let mut n = 0;
        for (src, dst) in account_dirs(&from, account)
            .into_iter()
            .zip(account_dirs(&to, account))
        {
            n += copy_tree(&src, &dst)?;
        }
        Ok(n)
    })
    .await?
}

fn copy_tree(src: &Path, dst: &Path) -> Result<usize> {
    let entries = match std::fs::read_dir(src) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("reading {}", src.display())),
    };
    let mut n = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name_s = name.to_string_lossy();
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            n += copy_tree(&path, &dst.join(&name))?;
            continue;
        }
        if !kind.is_file() || name_s.starts_with('.') || name_s.ends_with(".partial") {
            continue;
        }
        let target = dst.join(&name);
        let len = entry.metadata()?.len();
        if std::fs::metadata(&target).is_ok_and(|m| m.len() == len) {
            continue;
        }
        std::fs::create_dir_all(dst).with_context(|| format!("creating {}", dst.display()))?;
        let temp = dst.join(format!(".{name_s}.moving"));
        std::fs::copy(&path, &temp).with_context(|| format!("copying {}", path.display()))?;
        std::fs::File::open(&temp)?.sync_all()?;
        std::fs::rename(&temp, &target)?;
        n += 1;
    }
    Ok(n)
}

/// Deletes the account's files from a file store.
async fn remove_files(root: &Path, account: i64) -> Result<()> {
    let root = root.to_path_buf();
    tokio::task::spawn_blocking(move || {
        for dir in account_dirs(&root, account) {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("removing {}", dir.display())),
            }
        }
        Ok(())
    })
    .await?
}
