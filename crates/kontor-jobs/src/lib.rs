//! Durable background jobs: the runner that claims them, the backup job and the sweep that
//! deletes expired backups. Jobs live in each region's database (see `kontor_store::Job`); any
//! number of runners (server nodes, or a `kontor backup create --wait`) may poll the same
//! databases: a job is run by whoever holds its lease.

pub mod backup;
pub mod import;
mod index_build;
pub mod keys;
pub mod links;
pub mod moving;
mod notify;
pub mod reassign;
pub mod restore;
mod runner;

use kontor_domain::time::now_ms;
use kontor_domain::Region;
use kontor_store::{
    ClaimFilter, Directory, Job, LifecycleState, Store, JOB_KIND_BACKUP, JOB_KIND_IMPORT,
    JOB_KIND_INDEX_BUILD, JOB_KIND_OWNER_REASSIGN,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use backup::{archive_key, archive_path, download_name, request_backup};
pub use runner::Health;

/// The kinds of job this crate runs.
const KINDS: &[&str] = &[
    JOB_KIND_BACKUP,
    JOB_KIND_IMPORT,
    JOB_KIND_OWNER_REASSIGN,
    JOB_KIND_INDEX_BUILD,
];

/// Who asks for something: a user of the account, or the operator of the installation.
#[derive(Debug, Clone)]
pub struct Requester {
    pub user_id: Option<i64>,
    /// The user's e-mail, a token's name, or `operator`.
    pub name: String,
    /// Only the operator may skip the tier's backup interval.
    pub operator_override: bool,
}

impl Requester {
    pub fn operator(override_interval: bool) -> Self {
        Self {
            user_id: None,
            name: "operator".into(),
            operator_override: override_interval,
        }
    }
}

/// What the jobs need from the installation.
#[derive(Clone)]
pub struct Jobs {
    pub dir: Arc<Directory>,
    /// Each region's file store (a local folder).
    pub files: HashMap<Region, PathBuf>,
    pub mailer: Option<kontor_mail::Mailer>,
    /// Where users reach this installation, for links in e-mails (`http://host:port`).
    pub public_url: String,
    /// The server's keys (link signatures here; sealing in the server).
    pub keys: Arc<keys::Keyring>,
    /// This runner's name in leases.
    pub node: String,
    pub lease_ms: i64,
    pub compression_level: u32,
    /// Jobs this node runs at once (`[jobs] workers`); 0 for a node that only serves
    /// requests and leaves the jobs to other nodes sharing its databases.
    pub workers: usize,
    /// Jobs of one account this node runs at once (`[jobs] per_account`).
    pub per_account: usize,
    /// Whether the runner's workers are up, for `/healthz`.
    pub health: Arc<Health>,
    /// The rules of scheduling data moves (`[moves]`).
    pub policy: moving::Policy,
}

impl Jobs {
    pub fn files_root(&self, region: Region) -> PathBuf {
        self.files
            .get(&region)
            .cloned()
            .unwrap_or_else(|| PathBuf::from(format!("regions/{}/files", region.as_str())))
    }

    /// How often a running job renews its lease and stores its progress.
    pub(crate) fn heartbeat(&self) -> Duration {
        Duration::from_millis((self.lease_ms / 3).clamp(100, 1000) as u64)
    }

    /// A download link for a completed backup, valid until its file expires.
    pub fn download_url(&self, account: i64, backup: &kontor_store::Backup) -> Option<String> {
        let expires = backup
            .expires_at
            .filter(|_| backup.downloadable(now_ms()))?;
        Some(format!(
            "{}{}&{}",
            self.public_url.trim_end_matches('/'),
            links::download_path(account, backup.id),
            links::sign(
                &self.keys.current(keys::Purpose::Links),
                account,
                backup.id,
                expires
            )
        ))
    }

    fn stores(&self) -> Vec<&Store> {
        let mut regions: Vec<_> = self.dir.regions.iter().collect();
        regions.sort_by_key(|(r, _)| r.as_str());
        regions.into_iter().map(|(_, s)| s).collect()
    }

    /// Runs this node's workers (`workers` of them, each under a supervisor that restarts it
    /// after a panic) and the housekeeping loop (outbox delivery, expiry) until `stop` fires.
    pub async fn run(self: Arc<Self>, stop: tokio::sync::watch::Receiver<bool>) {
        let node = Arc::new(runner::NodeState::default());
        let mut tasks = Vec::new();
        for w in 0..self.workers {
            let (jobs, node, stop2) = (self.clone(), node.clone(), stop.clone());
            tasks.push(tokio::spawn(runner::supervise(
                format!("worker {w}"),
                self.health.clone(),
                stop.clone(),
                move || {
                    let (jobs, node, stop) = (jobs.clone(), node.clone(), stop2.clone());
                    async move { jobs.work(&node, stop).await }
                },
            )));
        }
        if self.workers > 0 {
            let (jobs, stop2) = (self.clone(), stop.clone());
            tasks.push(tokio::spawn(runner::supervise(
                "data moves".into(),
                self.health.clone(),
                stop.clone(),
                move || {
                    let (jobs, stop) = (jobs.clone(), stop2.clone());
                    async move { moves(jobs, stop).await }
                },
            )));
        }
        if self.workers > 0 {
            let (jobs, stop2) = (self.clone(), stop.clone());
            tasks.push(tokio::spawn(runner::supervise(
                "search index".into(),
                self.health.clone(),
                stop.clone(),
                move || {
                    let (jobs, stop) = (jobs.clone(), stop2.clone());
                    async move { jobs.index(stop).await }
                },
            )));
        }
        let (jobs, stop2) = (self.clone(), stop.clone());
        tasks.push(tokio::spawn(runner::supervise(
            "housekeeping".into(),
            self.health.clone(),
            stop,
            move || {
                let (jobs, stop) = (jobs.clone(), stop2.clone());
                async move { jobs.housekeeping(stop).await }
            },
        )));
        for t in tasks {
            let _ = t.await;
        }
    }

    /// Keeps every account's search index up with its change log (see
    /// `kontor_store::search::indexer`), until `stop` fires. While requests write, it rests
    /// twice as long as each batch took, leaving them the database's writer two thirds of the
    /// time; searches stay exact meanwhile, the index just lags.
    async fn index(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            let mut busy = false;
            for store in self.stores() {
                let lags = match store.index_lags().await {
                    Ok(lags) => lags,
                    Err(e) => {
                        tracing::warn!(error = %e, "search index");
                        continue;
                    }
                };
                for lag in lags {
                    let began = std::time::Instant::now();
                    match store.index_changes(lag.account).await {
                        Ok(0) => {}
                        Ok(_) => {
                            busy = true;
                            let rest = match store.wrote_within(1_000) {
                                true => began.elapsed() * 2,
                                false => Duration::ZERO,
                            };
                            tokio::select! {
                                _ = tokio::time::sleep(rest) => {}
                                _ = stop.changed() => return,
                            }
                        }
                        // A fenced account (moving) refuses the writes; it is tried again.
                        Err(e) => {
                            tracing::debug!(account = lag.account, error = %e, "search index")
                        }
                    }
                }
            }
            if *stop.borrow() {
                return;
            }
            if !busy {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }

    /// One worker: claims and runs jobs until `stop` fires.
    async fn work(&self, node: &runner::NodeState, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            let ran = match self.run_fair(node).await {
                Ok(ran) => ran,
                Err(e) => {
                    tracing::warn!(error = %e, "job runner");
                    false
                }
            };
            if *stop.borrow() {
                return;
            }
            if !ran {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }

    /// Delivers the outbox and deletes expired backups, until `stop` fires.
    async fn housekeeping(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut last_sweep = 0i64;
        let mut last_reminders = 0i64;
        let mut last_submissions = 0i64;
        loop {
            if now_ms() - last_sweep > 5 * 60 * 1000 {
                last_sweep = now_ms();
                if let Err(e) = self.expire_backups().await {
                    tracing::warn!(error = %e, "expiring backups");
                }
                if let Err(e) = self.sweep(now_ms()).await {
                    tracing::warn!(error = %e, "housekeeping");
                }
                if let Err(e) = self
                    .dir
                    .purge_applied_submissions(now_ms() - 7 * 24 * 3600 * 1000)
                    .await
                {
                    tracing::warn!(error = %e, "purging applied form submissions");
                }
                // Delivered events are kept a while for looking into, then dropped.
                for store in self.stores() {
                    if let Err(e) = store.purge_outbox(now_ms() - 30 * 24 * 3600 * 1000).await {
                        tracing::warn!(error = %e, "purging delivered notifications");
                    }
                    // Webhook events delivered or given up: the delivery log keeps them as long.
                    if let Err(e) = store
                        .purge_webhook_events(now_ms() - 30 * 24 * 3600 * 1000)
                        .await
                    {
                        tracing::warn!(error = %e, "purging webhook events");
                    }
                }
            }
            if now_ms() - last_reminders > 60_000 {
                last_reminders = now_ms();
                if let Err(e) = moving::remind(self, now_ms()).await {
                    tracing::warn!(error = %format!("{e:#}"), "data move reminders");
                }
            }
            if now_ms() - last_submissions > 2_000 {
                last_submissions = now_ms();
                // Form submissions that waited (a data move's freeze, a refused write).
                match self.dir.accounts_with_queued_submissions().await {
                    Ok(accounts) => {
                        for a in accounts {
                            if let Err(e) = self.dir.apply_queued_submissions(a).await {
                                tracing::warn!(account = a, error = %e, "applying form submissions");
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "form submissions waiting"),
                }
            }
            if let Err(e) = self.dispatch_outbox().await {
                tracing::warn!(error = %e, "delivering notifications");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
        }
    }

    /// Deletes what is past its retention (see README, "Housekeeping"): records in the recycle
    /// bin for `RECYCLE_BIN_DAYS` (audited per account), expired sessions, restore plans that
    /// expired unapplied, password-reset links past their hour, counts of guesses whose
    /// window is over, rejected rows of imports ended `IMPORT_ERRORS_DAYS` ago, notifications
    /// read `READ_NOTIFICATION_DAYS` ago (unread: `UNREAD_NOTIFICATION_DAYS`), and the files of
    /// imports ended `IMPORT_FILE_DAYS` ago.
    pub async fn sweep(&self, now: i64) -> anyhow::Result<()> {
        let cutoff = now - kontor_store::RECYCLE_BIN_DAYS * 86_400_000;
        // Regions that share one database simply find nothing left on the second pass.
        for store in self.stores() {
            // At most 10,000 records per pass; repeat until the bin holds nothing expired.
            loop {
                let done = store.purge_expired(cutoff, None).await?;
                if done.iter().all(|(_, n)| *n == 0) {
                    break;
                }
                for (account, n) in done {
                    store
                        .audit(
                            account,
                            None,
                            "system",
                            "record.purge_expired",
                            "recycle-bin",
                            serde_json::json!({"records": n, "message": format!("{n} records had been in the recycle bin for {} days and were deleted permanently.", kontor_store::RECYCLE_BIN_DAYS)}),
                        )
                        .await?;
                }
            }
            // Index builds whose job gave up get another.
            if store.queue_index_builds().await? > 0 {
                tracing::info!("search index builds queued");
            }
            store.purge_expired_sessions(now).await?;
            store.purge_expired_restore_plans(now).await?;
            for account in store.expire_salesforce_data(now).await? {
                tracing::info!(
                    account,
                    "deleted the kept data of an uninstalled Salesforce integration"
                );
            }
            store.purge_expired_password_resets(now).await?;
            store.purge_old_import_errors(now, None).await?;
            store.purge_old_notifications(now, None).await?;
        }
        self.sweep_import_files(now).await?;
        self.dir.purge_old_attempts(now).await?;
        let roots: Vec<PathBuf> = self.files.values().cloned().collect();
        let cutoff = std::time::SystemTime::UNIX_EPOCH + Duration::from_millis(now.max(0) as u64)
            - import::UPLOAD_RETENTION;
        let swept = tokio::task::spawn_blocking(move || {
            roots
                .iter()
                .map(|r| import::sweep_uploads(r, cutoff))
                .sum::<usize>()
        })
        .await?;
        if swept > 0 {
            tracing::info!(files = swept, "deleted abandoned uploads");
        }
        Ok(())
    }

    /// Deletes the files of imports that ended `IMPORT_FILE_DAYS` ago (failed or canceled
    /// ones; a finished import's file went when it finished) and files no import names.
    async fn sweep_import_files(&self, now: i64) -> anyhow::Result<()> {
        let days = Duration::from_secs(kontor_store::IMPORT_FILE_DAYS as u64 * 86_400);
        let cutoff =
            std::time::SystemTime::UNIX_EPOCH + Duration::from_millis(now.max(0) as u64) - days;
        let mut regions: Vec<_> = self.dir.regions.iter().collect();
        regions.sort_by_key(|(r, _)| r.as_str());
        let mut deleted = 0;
        for (region, store) in regions {
            let root = self.files_root(*region);
            let old = tokio::task::spawn_blocking(move || import::old_import_files(&root, cutoff))
                .await?;
            for (account, key, path) in old {
                if !store.import_file_expired(account, &key, now).await? {
                    continue;
                }
                let file = path.clone();
                match tokio::task::spawn_blocking(move || std::fs::remove_file(file)).await? {
                    Ok(()) => deleted += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::warn!(file = %path.display(), error = %e, "deleting an import's file");
                        continue;
                    }
                }
                store.forget_import_file(account, &key).await?;
            }
        }
        if deleted > 0 {
            tracing::info!(files = deleted, "deleted the files of ended imports");
        }
        Ok(())
    }

    /// Delivers what finished jobs have to tell (see `notify`), in every account. Returns how
    /// many events were looked at.
    pub async fn dispatch_outbox(&self) -> anyhow::Result<usize> {
        self.dispatch(None).await
    }

    /// Delivers the pending events of `account`, or of every account.
    async fn dispatch(&self, account: Option<i64>) -> anyhow::Result<usize> {
        let mut n = 0;
        for store in self.stores() {
            for ev in store.pending_outbox(account, 100).await? {
                n += 1;
                if let Err(e) = notify::deliver(self, store, &ev).await {
                    tracing::warn!(account = ev.account_id, event = ev.id, error = %e, "delivering a notification");
                }
            }
        }
        Ok(n)
    }

    /// Claims one job the fair way (see `Store::claim_fair`) and runs it. `true` if a job ran.
    async fn run_fair(&self, node: &runner::NodeState) -> anyhow::Result<bool> {
        let claim = node.claim_lock.lock().await;
        let mut skip = self.dir.inactive_accounts().await?;
        skip.extend(node.busy_accounts(self.per_account.max(1)));
        let recent = node.recent();
        for store in self.stores() {
            let filter = ClaimFilter {
                kinds: KINDS,
                skip: &skip,
                recent: &recent,
                ..ClaimFilter::default()
            };
            if let Some(job) = store.claim_fair(&self.node, self.lease_ms, &filter).await? {
                // Counted before the next claim may look; uncounted even if the job panics.
                let _busy = node.enter(job.account_id);
                drop(claim);
                tracing::info!(account = job.account_id, job = job.id, kind = %job.kind, attempt = job.attempts, "job claimed");
                self.run_job(store, &job).await?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Claims one job (or the given one) and runs it. `true` if a job ran.
    pub async fn run_next(&self, only: Option<(i64, i64)>) -> anyhow::Result<bool> {
        let skip = self.dir.inactive_accounts().await?;
        for store in self.stores() {
            let filter = ClaimFilter {
                kinds: KINDS,
                only,
                skip: &skip,
                ..ClaimFilter::default()
            };
            if let Some(job) = store.claim_fair(&self.node, self.lease_ms, &filter).await? {
                tracing::info!(account = job.account_id, job = job.id, kind = %job.kind, attempt = job.attempts, "job claimed");
                self.run_job(store, &job).await?;
                // A runner for one job (`kontor backup create --wait`) tells about that
                // account's jobs; the servers' housekeeping delivers everything else.
                self.dispatch(Some(job.account_id)).await?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn run_job(&self, store: &Store, job: &Job) -> anyhow::Result<()> {
        #[cfg(test)]
        runner::test_hooks::maybe_panic(job);
        match job.kind.as_str() {
            JOB_KIND_BACKUP => {
                backup::run(self, store, job).await?;
            }
            JOB_KIND_IMPORT => import::run(self, store, job).await?,
            JOB_KIND_OWNER_REASSIGN => reassign::run(self, store, job).await?,
            JOB_KIND_INDEX_BUILD => index_build::run(self, store, job).await?,
            other => anyhow::bail!("unknown job kind {other}"),
        }
        Ok(())
    }

    /// Renews the lease of a running job and stores its progress. `false` means stop now:
    /// the lease was lost, or the account is no longer active (suspended, migrating), in which
    /// case the job goes back to the queue, not failed, and resumes once the account is active.
    pub(crate) async fn renew(
        &self,
        store: &Store,
        job: &Job,
        done: i64,
        total: i64,
    ) -> anyhow::Result<bool> {
        if let Some(a) = self.dir.account(job.account_id).await? {
            if a.state != LifecycleState::Active {
                if store.release_job(job, &self.node).await? {
                    tracing::info!(
                        account = a.id,
                        job = job.id,
                        state = a.state.as_str(),
                        "job paused: the account is not active"
                    );
                }
                return Ok(false);
            }
        }
        Ok(store
            .renew_job(job, &self.node, self.lease_ms, done, total)
            .await?)
    }

    /// Deletes the files of backups whose 14 days are over and marks them expired.
    pub async fn expire_backups(&self) -> anyhow::Result<usize> {
        let mut n = 0;
        for store in self.stores() {
            for b in store.backups_due_to_expire(now_ms()).await? {
                let Some(account) = self.dir.account(b.account_id).await? else {
                    continue;
                };
                if let Some(path) = archive_path(self, &account, &b) {
                    match std::fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            tracing::warn!(path = %path.display(), error = %e, "deleting an expired backup");
                            continue;
                        }
                    }
                }
                store.backup_expired(b.account_id, b.id).await?;
                store
                    .audit(
                        b.account_id,
                        None,
                        "kontor",
                        "backup.expire",
                        &format!("backup {}", b.id),
                        serde_json::json!({"message": "The download period of 14 days ended; the archive was deleted."}),
                    )
                    .await?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// Runs the data moves that are due, one at a time, until `stop` fires.
async fn moves(jobs: Arc<Jobs>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        let ran = match moving::run_due(&jobs, None).await {
            Ok(ran) => ran.is_some(),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "data moves");
                false
            }
        };
        if *stop.borrow() {
            return;
        }
        if !ran {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(1000)) => {}
                _ = stop.changed() => return,
            }
        }
    }
}
