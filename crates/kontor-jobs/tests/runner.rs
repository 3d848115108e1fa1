//! The job runner as a node runs it: notifications survive a crash between a job's end and
//! their delivery, one account's queue does not hold up another's backup, and the jobs of an
//! account that is not active wait. Each test's runners claim every job of their databases,
//! so each test has its own (SQLite); the claim and lease statements themselves are checked on
//! both engines by the store's `jobs_conformance` suite.

use kontor_domain::{Region, Role, Tier};
use kontor_jobs::import::{request_import, ImportSpec};
use kontor_jobs::{Jobs, Requester};
use kontor_store::{
    Account, ClaimFilter, CompletedBackup, Directory, LifecycleState, Store, JOB_KIND_BACKUP,
};
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "kontor-runner-{tag}-{}-{}",
        std::process::id(),
        kontor_domain::time::now_ms()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn directory(dir: &Path) -> Directory {
    let url = |n: &str| format!("sqlite://{}", dir.join(n).display());
    let us = Store::open(&url("us.db")).await.unwrap();
    Directory {
        directory: Store::open(&url("directory.db")).await.unwrap(),
        regions: HashMap::from([(Region::Us, us.clone()), (Region::Eu, us)]),
    }
}

fn jobs(dir: &Arc<Directory>, tmp: &Path, node: &str, workers: usize, lease_ms: i64) -> Jobs {
    Jobs {
        dir: dir.clone(),
        files: HashMap::from([(Region::Us, tmp.join("files"))]),
        mailer: Some(
            kontor_mail::Mailer::new(&kontor_mail::MailConfig::outbox(tmp.join("mail"))).unwrap(),
        ),
        public_url: "http://127.0.0.1:1".into(),
        keys: Arc::new(kontor_jobs::keys::Keyring::new([1u8; 32], vec![])),
        node: node.into(),
        lease_ms,
        compression_level: 1,
        workers,
        per_account: 1,
        health: Default::default(),
        policy: Default::default(),
    }
}

fn mails(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp.join("mail"))
        .map(|d| {
            d.flatten()
                .map(|e| std::fs::read_to_string(e.path()).unwrap())
                .collect()
        })
        .unwrap_or_default()
}

async fn account(dir: &Directory, name: &str) -> (Account, Store) {
    let a = dir
        .create_account(
            &format!("{name}-{}", kontor_domain::time::now_ms()),
            Region::Us,
            Tier::Enterprise,
        )
        .await
        .unwrap();
    let s = dir.cell(&a).unwrap().clone();
    (a, s)
}

async fn queue_csv_import(jobs: &Jobs, s: &Store, a: &Account, n: usize, rows: usize) -> i64 {
    let mut text = String::from("email,firstname\n");
    for i in 0..rows {
        text.push_str(&format!("f{n}-{i}@example.com,Name {i}\n"));
    }
    queue_csv(jobs, s, a, n, text).await
}

/// Queues an import of `text` (columns `email,firstname`) into contacts.
async fn queue_csv(jobs: &Jobs, s: &Store, a: &Account, n: usize, text: String) -> i64 {
    let request = json!({
        "name": format!("bulk {n}"),
        "files": [{"fileName": "bulk.csv", "fileFormat": "CSV", "fileImportPage": {"hasHeader": true, "columnMappings": [
            {"columnName": "email", "propertyName": "email", "columnObjectTypeId": "0-1", "idColumnType": "HUBSPOT_ALTERNATE_ID"},
            {"columnName": "firstname", "propertyName": "firstname", "columnObjectTypeId": "0-1"}
        ]}}],
    });
    let spec = ImportSpec::from_request(s, a.id, &request, &["bulk.csv".into()])
        .await
        .unwrap();
    let staged = kontor_jobs::import::upload_path(jobs, a);
    std::fs::create_dir_all(staged.parent().unwrap()).unwrap();
    std::fs::write(&staged, text).unwrap();
    request_import(
        jobs,
        s,
        a,
        &spec,
        &staged,
        "CRM_UI",
        &Requester::operator(false),
    )
    .await
    .unwrap()
    .id
}

async fn until<F, Fut>(what: &str, secs: u64, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_survive_a_crash_between_completing_and_notifying() {
    let tmp = temp_dir("outbox");
    let dir = Arc::new(directory(&tmp).await);
    let (a, s) = account(&dir, "outbox").await;
    let admin = s
        .create_user(
            a.id,
            "admin@example.com",
            "A",
            "D",
            Role::SuperAdmin,
            "password-1234",
        )
        .await
        .unwrap();
    let who = Requester {
        user_id: Some(admin.id),
        name: "admin@example.com".into(),
        operator_override: false,
    };
    let backup = kontor_jobs::request_backup(&s, &a, &who).await.unwrap();
    // A runner claims the job, ends it (the outbox event commits with it) and dies before
    // it delivers anything.
    let job = s
        .claim_fair(
            "doomed",
            60_000,
            &ClaimFilter {
                kinds: &[JOB_KIND_BACKUP],
                only: Some((a.id, backup.job_id)),
                ..ClaimFilter::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    let done = CompletedBackup {
        backup_id: backup.id,
        snapshot_seq: 0,
        snapshot_at: kontor_domain::time::now_ms(),
        size_bytes: 22,
        rows: 0,
        sha256: "00".into(),
        file_key: kontor_jobs::archive_key(a.id, backup.id),
    };
    assert!(s.backup_completed(&job, "doomed", &done).await.unwrap());
    assert!(s
        .notifications(a.id, admin.id, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(mails(&tmp).is_empty());
    // Another node's dispatchers deliver it, twice over and at once: one of each.
    let one = jobs(&dir, &tmp, "node-1", 1, 30_000);
    let two = jobs(&dir, &tmp, "node-2", 1, 30_000);
    let (x, y) = tokio::join!(one.dispatch_outbox(), two.dispatch_outbox());
    x.unwrap();
    y.unwrap();
    one.dispatch_outbox().await.unwrap();
    let notes = s.notifications(a.id, admin.id, 10).await.unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].title, "Your backup is ready");
    let sent = mails(&tmp);
    assert_eq!(sent.len(), 1);
    assert!(sent[0].contains("is ready"), "{}", sent[0]);
    let events = s.outbox(a.id).await.unwrap();
    assert!(events[0].in_app_at.is_some() && events[0].mailed_at.is_some());

    // A backup run the ordinary way tells its requester once too.
    let again = kontor_jobs::request_backup(&s, &a, &Requester::operator(true)).await;
    let again = again.unwrap();
    assert!(one.run_next(Some((a.id, again.job_id))).await.unwrap());
    assert_eq!(
        s.backup(a.id, again.id).await.unwrap().unwrap().state,
        "completed"
    );
    // Requested by the operator: nobody in the account to tell, and nothing left pending.
    one.dispatch_outbox().await.unwrap();
    assert_eq!(s.notifications(a.id, admin.id, 10).await.unwrap().len(), 1);
    assert!(s
        .outbox(a.id)
        .await
        .unwrap()
        .iter()
        .all(|e| e.mailed_at.is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_accounts_queue_does_not_hold_up_anothers_backup() {
    // Two workers: one runs A's imports, the other is free for B. One worker: B's backup
    // comes right after the import that was running (round-robin between accounts).
    fair(2).await;
    fair(1).await;
}

async fn fair(workers: usize) {
    let tmp = temp_dir(&format!("fair-{workers}"));
    let dir = Arc::new(directory(&tmp).await);
    let node = Arc::new(jobs(&dir, &tmp, "fair-node", workers, 30_000));
    let (a, s) = account(&dir, "bulk").await;
    let (b, sb) = account(&dir, "small").await;
    let mut imports = Vec::new();
    for n in 0..kontor_store::imports::MAX_OPEN_IMPORTS as usize {
        imports.push(queue_csv_import(&node, &s, &a, n, 3000).await);
    }
    let backup = kontor_jobs::request_backup(&sb, &b, &Requester::operator(true))
        .await
        .unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let runner = tokio::spawn(node.clone().run(rx));
    until("B's backup", 120, || async {
        sb.backup(b.id, backup.id).await.unwrap().unwrap().state == "completed"
    })
    .await;
    let mut finished = 0;
    for id in &imports {
        if s.import(a.id, *id)
            .await
            .unwrap()
            .unwrap()
            .finished_at
            .is_some()
        {
            finished += 1;
        }
    }
    assert!(finished <= 2, "B waited for {finished} of A's imports");
    // A's imports still all run, one at a time on this node.
    until("A's imports", 300, || async {
        let mut all = true;
        for id in &imports {
            let imp = s.import(a.id, *id).await.unwrap().unwrap();
            assert_ne!(imp.state, "FAILED", "{imp:?}");
            all &= imp.state == "DONE";
        }
        all
    })
    .await;
    stop.send(true).unwrap();
    runner.await.unwrap();
    assert_eq!(node.health.status(), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_of_an_account_that_is_not_active_wait() {
    let tmp = temp_dir("paused");
    let dir = Arc::new(directory(&tmp).await);
    let node = Arc::new(jobs(&dir, &tmp, "pause-node", 1, 900));
    let (a, s) = account(&dir, "paused").await;
    // Queued while suspended: not claimed.
    dir.set_state(a.id, LifecycleState::Suspended)
        .await
        .unwrap();
    let backup = kontor_jobs::request_backup(&s, &a, &Requester::operator(true))
        .await
        .unwrap();
    assert!(!node.run_next(Some((a.id, backup.job_id))).await.unwrap());
    assert_eq!(
        s.job(a.id, backup.job_id).await.unwrap().unwrap().state,
        "queued"
    );
    dir.set_state(a.id, LifecycleState::Active).await.unwrap();
    assert!(node.run_next(Some((a.id, backup.job_id))).await.unwrap());
    assert_eq!(
        s.backup(a.id, backup.id).await.unwrap().unwrap().state,
        "completed"
    );

    // Running when the account starts migrating: the job stops at its next heartbeat, goes
    // back to the queue without failing, and finishes once the account is active again.
    let imp = queue_csv_import(&node, &s, &a, 0, 60_000).await;
    let job_id = s.import(a.id, imp).await.unwrap().unwrap().job_id;
    let (stop, rx) = tokio::sync::watch::channel(false);
    let runner = tokio::spawn(node.clone().run(rx));
    until("the import to start", 60, || async {
        s.job(a.id, job_id).await.unwrap().unwrap().progress_done > 0
    })
    .await;
    dir.set_state(a.id, LifecycleState::Migrating)
        .await
        .unwrap();
    until("the import to pause", 60, || async {
        s.job(a.id, job_id).await.unwrap().unwrap().state == "queued"
    })
    .await;
    let paused = s.import(a.id, imp).await.unwrap().unwrap();
    assert!(
        paused.finished_at.is_none() && paused.error.is_none(),
        "{paused:?}"
    );
    // It stays queued while the account is not active.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let job = s.job(a.id, job_id).await.unwrap().unwrap();
    assert_eq!(job.state, "queued");
    assert!(job.progress_done < 60_000);
    dir.set_state(a.id, LifecycleState::Active).await.unwrap();
    until("the import to finish", 300, || async {
        s.import(a.id, imp).await.unwrap().unwrap().state == "DONE"
    })
    .await;
    let done = s.import(a.id, imp).await.unwrap().unwrap();
    assert_eq!(done.created, 60_000, "{done:?}");
    assert!(s.job(a.id, job_id).await.unwrap().unwrap().attempts <= 2);
    stop.send(true).unwrap();
    runner.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_deletes_only_temporary_files_of_attempts_that_are_over() {
    let tmp = temp_dir("temp-files");
    let dir = Arc::new(directory(&tmp).await);
    let node = jobs(&dir, &tmp, "node-3", 1, 30_000);
    let (a, s) = account(&dir, "temps").await;
    let backup = kontor_jobs::request_backup(&s, &a, &Requester::operator(true))
        .await
        .unwrap();
    let folder = node
        .files_root(Region::Us)
        .join(format!("backups/{}", a.id));
    std::fs::create_dir_all(&folder).unwrap();
    // An attempt that died an hour ago, and one whose runner still writes (it lost its lease
    // a moment ago and has not noticed yet).
    let dead = folder.join(format!(".backup-{}.1-node-1.partial", backup.id));
    let live = folder.join(format!(".backup-{}.2-node-2.partial", backup.id));
    std::fs::write(&dead, b"old").unwrap();
    std::fs::write(&live, b"being written").unwrap();
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&dead)
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    assert!(node.run_next(Some((a.id, backup.job_id))).await.unwrap());
    let b = s.backup(a.id, backup.id).await.unwrap().unwrap();
    assert_eq!(b.state, "completed", "{b:?}");
    assert!(!dead.exists(), "the dead attempt's file is gone");
    assert_eq!(std::fs::read(&live).unwrap(), b"being written");
    // The finished attempt left no temporary file of its own.
    let left: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial"))
        .collect();
    assert_eq!(
        left,
        vec![live.file_name().unwrap().to_string_lossy().into_owned()]
    );
}

/// The housekeeping sweep deletes what is past its retention and keeps the rest: records in the
/// recycle bin (audited), expired sessions, expired unapplied restore plans, old sign-in failures,
/// abandoned uploads, the rejected rows of old imports, old notifications, and the files of
/// imports that ended (or that no import names); a waiting import keeps its file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_deletes_only_what_is_past_its_retention() {
    let tmp = temp_dir("sweep");
    let dir = Arc::new(directory(&tmp).await);
    let j = jobs(&dir, &tmp, "sweeper", 1, 30_000);
    let (a, s) = account(&dir, "sweep").await;
    let user = s
        .create_user(
            a.id,
            "sweep@example.com",
            "",
            "",
            Role::Admin,
            "long enough pw",
        )
        .await
        .unwrap();
    let session = s
        .create_session(a.id, user.id, kontor_store::AuthMethod::Password, false)
        .await
        .unwrap();
    let ot = s.object_type(a.id, "contacts").await.unwrap().unwrap();
    let actor = kontor_store::Actor {
        source: kontor_domain::ChangeSource::Api,
        source_id: None,
        user_id: None,
    };
    let input = |email: &str| kontor_store::CreateInput {
        properties: json!({"email": email}).as_object().unwrap().clone(),
        associations: Vec::new(),
    };
    let made = s
        .create_records(
            a.id,
            &ot,
            vec![input("gone@example.com"), input("kept@example.com")],
            &actor,
        )
        .await
        .unwrap();
    s.archive_records(a.id, &ot, &[made[0].id], &actor)
        .await
        .unwrap();
    let guessed = kontor_store::email_subject("someone@example.com");
    for _ in 0..kontor_store::MAX_ATTEMPTS {
        dir.reserve_attempt(&guessed, kontor_store::Factor::Password)
            .await
            .unwrap()
            .unwrap();
    }
    // An import that ran with a rejected row, one canceled while waiting, and one waiting.
    let bad = "email,firstname\nok@example.com,Ok\nnot an address,Bad\n".to_string();
    let ran = queue_csv(&j, &s, &a, 1, bad).await;
    assert!(j.run_next(None).await.unwrap());
    let canceled = queue_csv_import(&j, &s, &a, 2, 2).await;
    s.cancel_import(a.id, canceled).await.unwrap();
    let waiting = queue_csv_import(&j, &s, &a, 3, 2).await;
    let import = |id| {
        let s = s.clone();
        async move { s.import(a.id, id).await.unwrap().unwrap() }
    };
    assert_eq!(import(ran).await.errors, 1);
    assert_eq!(s.import_errors(a.id, ran, 0, 10).await.unwrap().len(), 1);
    let root = j.files_root(a.region);
    let file_of = |imp: kontor_store::Import| root.join(imp.file_key.unwrap());
    let (canceled_file, waiting_file) = (
        file_of(import(canceled).await),
        file_of(import(waiting).await),
    );
    // Notifications: one read, one not.
    let read = s.notify(a.id, user.id, "read", "", None).await.unwrap();
    s.mark_notifications_read(a.id, user.id, Some(read))
        .await
        .unwrap();
    s.notify(a.id, user.id, "unread", "", None).await.unwrap();
    // An API upload cut off, a console upload never taken past its mapping, and a file left
    // by a request that died before its import was recorded.
    let upload = kontor_jobs::import::upload_path(&j, &a);
    let staged = root.join(format!("staging/imports/{}/7/abc.csv", a.id));
    let orphan = root.join(kontor_jobs::import::import_key(a.id));
    for f in [&upload, &staged, &orphan] {
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, "email\nx@example.com\n").unwrap();
    }
    let now = kontor_domain::time::now_ms();
    let files = [&upload, &staged, &orphan, &canceled_file, &waiting_file];
    let notifications = || async { s.notifications(a.id, user.id, 10).await.unwrap().len() };

    // Nothing is past its retention yet.
    j.sweep(now).await.unwrap();
    assert!(files.iter().all(|f| f.exists()));
    assert_eq!(notifications().await, 2);
    assert_eq!(s.import_errors(a.id, ran, 0, 10).await.unwrap().len(), 1);

    assert!(s.session(&session).await.unwrap().is_some());
    assert!(s
        .record(a.id, &ot, made[0].id, true)
        .await
        .unwrap()
        .is_some());
    assert_eq!(dir.purge_old_attempts(now).await.unwrap(), 0);
    assert_eq!(s.purge_expired_sessions(now).await.unwrap(), 0);

    // Past the retention of read notifications and of ended imports' files, not of the rest.
    let day = 86_400_000;
    let soon =
        now + (kontor_store::IMPORT_FILE_DAYS.max(kontor_store::READ_NOTIFICATION_DAYS) + 1) * day;
    j.sweep(soon).await.unwrap();
    assert!(
        !canceled_file.exists(),
        "a canceled import's file is deleted"
    );
    assert_eq!(import(canceled).await.file_key, None);
    assert!(!orphan.exists(), "a file no import names is deleted");
    assert!(waiting_file.exists(), "a waiting import keeps its file");
    assert_eq!(notifications().await, 1, "the read notification is deleted");
    assert_eq!(s.import_errors(a.id, ran, 0, 10).await.unwrap().len(), 1);

    // Past every retention: the bin's record and the rest go; the live record stays.
    let later = now + (kontor_store::RECYCLE_BIN_DAYS + 1) * 86_400_000;
    j.sweep(later).await.unwrap();
    assert!(!upload.exists(), "an abandoned API upload is deleted");
    assert!(!staged.exists(), "an abandoned console upload is deleted");
    assert!(waiting_file.exists(), "a waiting import keeps its file");
    assert_eq!(
        s.import_errors(a.id, ran, 0, 10).await.unwrap().len(),
        0,
        "the rejected rows of an old import are deleted"
    );
    assert_eq!(import(ran).await.errors, 1, "the import keeps its counts");
    let later = later.max(now + (kontor_store::UNREAD_NOTIFICATION_DAYS + 1) * day);
    j.sweep(later).await.unwrap();
    assert_eq!(
        notifications().await,
        0,
        "an old unread notification is deleted"
    );
    assert!(s
        .record(a.id, &ot, made[0].id, true)
        .await
        .unwrap()
        .is_none());
    assert!(s
        .record(a.id, &ot, made[1].id, false)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        s.purge_expired_sessions(later).await.unwrap(),
        0,
        "already swept"
    );
    assert_eq!(
        dir.purge_old_attempts(later).await.unwrap(),
        0,
        "already swept"
    );
    let audit = s.audit_entries(a.id, 10).await.unwrap();
    assert!(
        audit.iter().any(|e| e.4 == "record.purge_expired"),
        "the purge is audited: {audit:?}"
    );
}
