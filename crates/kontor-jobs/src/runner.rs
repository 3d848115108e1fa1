//! The node's side of the job runner: which accounts this node is busy with (fairness), the
//! supervisor that restarts a worker after a panic, and the health `/healthz` reports.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What this node's workers share.
#[derive(Default)]
pub(crate) struct NodeState {
    /// Claims on this node happen one at a time, so that the count of an account's running
    /// jobs is right when the next claim reads it.
    pub(crate) claim_lock: tokio::sync::Mutex<()>,
    /// Running jobs per account on this node.
    busy: Mutex<HashMap<i64, usize>>,
    /// Accounts in the order this node last started a job of theirs, least recent first.
    recent: Mutex<Vec<i64>>,
}

impl NodeState {
    /// Accounts that run `limit` jobs or more on this node.
    pub(crate) fn busy_accounts(&self, limit: usize) -> Vec<i64> {
        let busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        busy.iter()
            .filter(|(_, n)| **n >= limit)
            .map(|(a, _)| *a)
            .collect()
    }

    /// Accounts this node started jobs for, least recent first.
    pub(crate) fn recent(&self) -> Vec<i64> {
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Counts a job of `account` as running until the guard is dropped (also when the job's
    /// task panics and unwinds).
    pub(crate) fn enter(&self, account: i64) -> Busy<'_> {
        *self
            .busy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(account)
            .or_default() += 1;
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.retain(|a| *a != account);
        recent.push(account);
        // Only the order among accounts with queued work matters; keep the list short.
        if recent.len() > 1000 {
            recent.remove(0);
        }
        drop(recent);
        Busy {
            node: self,
            account,
        }
    }
}

pub(crate) struct Busy<'a> {
    node: &'a NodeState,
    account: i64,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        let mut busy = self.node.busy.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = busy.get_mut(&self.account) {
            *n -= 1;
            if *n == 0 {
                busy.remove(&self.account);
            }
        }
    }
}

/// Whether the runner's loops are running, for `/healthz`.
#[derive(Debug, Default)]
pub struct Health {
    /// Loops started and not yet ended; a loop that panicked is down until restarted.
    started: AtomicUsize,
    down: AtomicUsize,
    panics: AtomicU64,
}

impl Health {
    /// `ok` while every loop of the runner that was started runs (also before the runner
    /// started, and in processes that run no runner); `down` while one is waiting to be
    /// restarted after a panic.
    pub fn status(&self) -> &'static str {
        if self.down.load(Ordering::SeqCst) == 0 {
            "ok"
        } else {
            "down"
        }
    }

    /// Loops running now.
    pub fn running(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    /// Panics since the process started.
    pub fn panics(&self) -> u64 {
        self.panics.load(Ordering::SeqCst)
    }
}

/// The first wait before restarting a loop that panicked; it doubles with each panic in a
/// row, up to `MAX_BACKOFF`, and starts again once a loop ran for `MAX_BACKOFF` without one.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Runs the loop `make` builds until it returns (the runner stops) or `stop` fires; after a
/// panic it logs it, waits, and starts a new loop. The panicking loop's job keeps its lease
/// until it lapses, and is then taken up again like the job of a runner that died.
pub(crate) async fn supervise<F, Fut>(
    name: String,
    health: Arc<Health>,
    stop: tokio::sync::watch::Receiver<bool>,
    make: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut backoff = FIRST_BACKOFF;
    loop {
        health.started.fetch_add(1, Ordering::SeqCst);
        let began = Instant::now();
        let result = tokio::spawn(make()).await;
        health.started.fetch_sub(1, Ordering::SeqCst);
        match result {
            Err(e) if e.is_panic() => {
                health.panics.fetch_add(1, Ordering::SeqCst);
                health.down.fetch_add(1, Ordering::SeqCst);
                if began.elapsed() >= MAX_BACKOFF {
                    backoff = FIRST_BACKOFF;
                }
                tracing::error!(loop_name = %name, restart_in_ms = backoff.as_millis() as u64, "a job runner loop panicked; restarting it");
                let mut stop = stop.clone();
                let stopped = *stop.borrow()
                    || tokio::select! {
                        _ = tokio::time::sleep(backoff) => false,
                        _ = stop.changed() => true,
                    };
                health.down.fetch_sub(1, Ordering::SeqCst);
                if stopped {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            _ => return,
        }
    }
}

/// A real panic in the worker, for the supervision tests.
#[cfg(test)]
pub(crate) mod test_hooks {
    use std::sync::atomic::{AtomicI64, Ordering};

    /// A job of this account panics its worker, once.
    pub(crate) static PANIC_ACCOUNT: AtomicI64 = AtomicI64::new(0);

    pub(crate) fn maybe_panic(job: &kontor_store::Job) {
        if PANIC_ACCOUNT
            .compare_exchange(job.account_id, 0, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            panic!("injected panic in job {}", job.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{Jobs, Requester};
    use kontor_domain::{Region, Tier};
    use kontor_store::{Directory, Store};
    use std::collections::HashMap;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// A worker that panics is restarted, `/healthz`'s status says `down` meanwhile and `ok`
    /// again after, and the job it held is taken up again once its lease lapses.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_worker_is_restarted() {
        let tmp = std::env::temp_dir().join(format!(
            "kontor-supervise-{}-{}",
            std::process::id(),
            kontor_domain::time::now_ms()
        ));
        std::fs::create_dir_all(&tmp).unwrap();
        let url = |n: &str| format!("sqlite://{}", tmp.join(n).display());
        let us = Store::open(&url("us.db")).await.unwrap();
        let dir = Arc::new(Directory {
            directory: Store::open(&url("directory.db")).await.unwrap(),
            regions: HashMap::from([(Region::Us, us.clone()), (Region::Eu, us)]),
        });
        let a = dir
            .create_account("supervised", Region::Us, Tier::Enterprise)
            .await
            .unwrap();
        let s = dir.cell(&a).unwrap().clone();
        let jobs = Arc::new(Jobs {
            dir: dir.clone(),
            files: HashMap::from([(Region::Us, tmp.join("files"))]),
            mailer: None,
            public_url: "http://127.0.0.1:1".into(),
            keys: Arc::new(crate::keys::Keyring::new([1u8; 32], vec![])),
            node: "supervised".into(),
            lease_ms: 600,
            compression_level: 1,
            workers: 1,
            per_account: 1,
            health: Default::default(),
            policy: Default::default(),
        });
        super::test_hooks::PANIC_ACCOUNT.store(a.id, Ordering::SeqCst);
        let backup = crate::request_backup(&s, &a, &Requester::operator(true))
            .await
            .unwrap();
        let (stop, rx) = tokio::sync::watch::channel(false);
        let runner = tokio::spawn(jobs.clone().run(rx));
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut saw_down = false;
        loop {
            saw_down |= jobs.health.status() == "down";
            let b = s.backup(a.id, backup.id).await.unwrap().unwrap();
            if b.state == "completed" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the backup never finished: {b:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(saw_down, "the panic was never reported");
        assert_eq!(jobs.health.panics(), 1);
        assert_eq!(jobs.health.status(), "ok");
        // One worker, the data moves' loop, the search indexer and the housekeeping loop run
        // again.
        assert_eq!(jobs.health.running(), 4);
        let b = s.backup(a.id, backup.id).await.unwrap().unwrap();
        assert_eq!(b.attempts, 2, "{b:?}");
        stop.send(true).unwrap();
        runner.await.unwrap();
        assert_eq!(jobs.health.running(), 0);
    }
}
