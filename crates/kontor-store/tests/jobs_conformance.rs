//! The job queue on both engines: fair claims between accounts, and a job's end (with its
//! notification in the outbox) only for the runner that holds its lease.
//!
//! PostgreSQL comes from `KONTOR_TEST_POSTGRES_URL`, as in `conformance.rs`; the database is
//! shared with other tests, so every claim here is limited to this test's accounts.

use kontor_domain::{Region, Role, Tier};
use kontor_store::{
    BackupRequest, ClaimFilter, CompletedBackup, Directory, InApp, Store, JOB_KIND_BACKUP,
    JOB_KIND_IMPORT, JOB_QUEUED, OUTBOX_BACKUP_READY,
};
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

mod support;

static SEQ: AtomicU64 = AtomicU64::new(0);

async fn sqlite() -> (Directory, support::Scratch) {
    support::sqlite_directory("kontor-jobs-conformance").await
}

async fn postgres() -> Option<Directory> {
    let Ok(url) = std::env::var("KONTOR_TEST_POSTGRES_URL") else {
        assert_eq!(
            std::env::var("KONTOR_TEST_SKIP_POSTGRES").as_deref(),
            Ok("1"),
            "KONTOR_TEST_POSTGRES_URL is not set; set KONTOR_TEST_SKIP_POSTGRES=1 to skip PostgreSQL on purpose"
        );
        return None;
    };
    let store = Store::open(&url).await.unwrap();
    Some(Directory {
        directory: store.clone(),
        regions: HashMap::from([(Region::Us, store.clone()), (Region::Eu, store)]),
    })
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { let (d, _scratch) = super::sqlite().await; super::$name(d).await; })*
        }
        mod on_postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { if let Some(d) = super::postgres().await { super::$name(d).await; } })*
        }
    };
}

conformance!(
    claims_are_fair_between_accounts,
    only_the_lease_holder_ends_a_job_and_queues_its_notification,
    a_released_job_waits_without_an_attempt,
);

async fn account(d: &Directory, name: &str) -> (i64, Store) {
    let name = format!("{name}-{}", SEQ.fetch_add(1, Ordering::SeqCst));
    let a = d
        .create_account(&name, Region::Us, Tier::Enterprise)
        .await
        .unwrap();
    (a.id, d.cell(&a).unwrap().clone())
}

async fn queue_import(s: &Store, a: i64) -> kontor_store::Import {
    s.create_import(
        a,
        &kontor_store::NewImport {
            name: "queued",
            source: "FILE",
            object_type: "0-1",
            operation: kontor_store::Operation::Upsert,
            request: &json!({}),
            file_key: None,
            file_name: None,
            created_by: None,
            created_by_name: "tests",
            rows_total: 1,
            file_bytes: 0,
            plan_id: None,
        },
    )
    .await
    .unwrap()
}

async fn queue_backup(s: &Store, a: i64, user: Option<i64>) -> kontor_store::Backup {
    s.create_backup(
        a,
        &BackupRequest {
            tier: Tier::Enterprise,
            user_id: user,
            requested_by: "tests",
            ignore_interval: true,
        },
    )
    .await
    .unwrap()
}

const KINDS: &[&str] = &[JOB_KIND_BACKUP, JOB_KIND_IMPORT];

async fn claims_are_fair_between_accounts(d: Directory) {
    let (a, s) = account(&d, "busy").await;
    let (b, _) = account(&d, "quiet").await;
    let mut a_jobs = Vec::new();
    for _ in 0..6 {
        a_jobs.push(queue_import(&s, a).await.job_id);
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let backup = queue_backup(&s, b, None).await;
    let ours = [a, b];
    // Round-robin: an account this node started a job for lately goes after the others.
    let rr = s
        .claim_fair(
            "node-0",
            60_000,
            &ClaimFilter {
                kinds: KINDS,
                recent: &[a],
                accounts: Some(&ours),
                ..ClaimFilter::default()
            },
        )
        .await
        .unwrap()
        .expect("B's job");
    assert_eq!((rr.account_id, rr.id), (b, backup.job_id));
    assert!(s.release_job(&rr, "node-0").await.unwrap());
    let claim = |skip: Vec<i64>| {
        let s = s.clone();
        async move {
            s.claim_fair(
                "node-1",
                60_000,
                &ClaimFilter {
                    kinds: KINDS,
                    skip: &skip,
                    accounts: Some(&ours),
                    ..ClaimFilter::default()
                },
            )
            .await
            .unwrap()
        }
    };
    // The longest-waiting account goes first.
    let first = claim(vec![]).await.expect("a job");
    assert_eq!((first.account_id, first.id), (a, a_jobs[0]));
    // While this node runs a job of A, B's backup is next, although A has five older jobs.
    let second = claim(vec![a]).await.expect("B's job");
    assert_eq!((second.account_id, second.id), (b, backup.job_id));
    assert_eq!(second.kind, JOB_KIND_BACKUP);
    // With B busy too, nothing else is claimable but A's (skipped): nothing.
    assert!(claim(vec![a, b]).await.is_none());
    // A job is claimed once, whoever races for it.
    let (x, y) = tokio::join!(claim(vec![]), claim(vec![]));
    let got: Vec<i64> = [x, y].into_iter().flatten().map(|j| j.id).collect();
    assert_eq!(got.len(), 2);
    assert_ne!(got[0], got[1]);
    assert!(got.iter().all(|id| a_jobs[1..].contains(id)));
}

async fn only_the_lease_holder_ends_a_job_and_queues_its_notification(d: Directory) {
    let (a, s) = account(&d, "lease").await;
    let user = s
        .create_user(
            a,
            "owner@example.com",
            "O",
            "W",
            Role::SuperAdmin,
            "password-1234",
        )
        .await
        .unwrap();
    let backup = queue_backup(&s, a, Some(user.id)).await;
    let only = Some((a, backup.job_id));
    let filter = ClaimFilter {
        kinds: KINDS,
        only,
        ..ClaimFilter::default()
    };
    // Runner 1 claims with a lease that lapses at once; runner 2 takes the job over.
    let first = s.claim_fair("runner-1", 0, &filter).await.unwrap().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let second = s
        .claim_fair("runner-2", 60_000, &filter)
        .await
        .unwrap()
        .expect("the lapsed job is claimed again");
    assert_eq!(second.attempts, 2);
    // Runner 1 fails late: nothing is recorded and nobody is told.
    assert!(!s
        .backup_failed(&first, "runner-1", backup.id, "disk full")
        .await
        .unwrap());
    assert!(!s.renew_job(&first, "runner-1", 60_000, 1, 1).await.unwrap());
    assert!(s.outbox(a).await.unwrap().is_empty());
    let done = CompletedBackup {
        backup_id: backup.id,
        snapshot_seq: 0,
        snapshot_at: 1,
        size_bytes: 10,
        rows: 0,
        sha256: "00".into(),
        file_key: "backups/x.zip".into(),
    };
    assert!(!s.backup_completed(&first, "runner-1", &done).await.unwrap());
    assert!(s.outbox(a).await.unwrap().is_empty());
    // Runner 2 completes: the backup, its job and one outbox event, together.
    assert!(s
        .backup_completed(&second, "runner-2", &done)
        .await
        .unwrap());
    assert_eq!(
        s.backup(a, backup.id).await.unwrap().unwrap().state,
        "completed"
    );
    let events = s.outbox(a).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, OUTBOX_BACKUP_READY);
    assert_eq!(events[0].target_id, backup.id);
    assert!(s
        .pending_outbox(Some(a), 10)
        .await
        .unwrap()
        .iter()
        .any(|e| e.account_id == a));
    // Delivered twice (a retry, or two nodes): one notification.
    let note = || InApp {
        user_id: user.id,
        title: "Your backup is ready",
        body: "ready",
        link: None,
    };
    assert!(s.deliver_in_app(&events[0], Some(note())).await.unwrap());
    assert!(!s.deliver_in_app(&events[0], Some(note())).await.unwrap());
    assert_eq!(s.notifications(a, user.id, 10).await.unwrap().len(), 1);
    // The e-mail is claimed by one dispatcher at a time, and not again once sent.
    assert!(s.claim_outbox_mail(&events[0], 60_000).await.unwrap());
    assert!(!s.claim_outbox_mail(&events[0], 60_000).await.unwrap());
    // While another dispatcher holds the e-mail, the event is not handed out again.
    assert!(!s
        .pending_outbox(Some(a), 10)
        .await
        .unwrap()
        .iter()
        .any(|e| e.account_id == a));
    s.outbox_mailed(&events[0]).await.unwrap();
    assert_eq!(
        s.purge_outbox(kontor_domain::time::now_ms() - 60_000)
            .await
            .unwrap(),
        0
    );
    assert!(!s
        .pending_outbox(Some(a), 10)
        .await
        .unwrap()
        .iter()
        .any(|e| e.account_id == a));
    s.purge_outbox(kontor_domain::time::now_ms() + 1)
        .await
        .unwrap();
    assert!(s.outbox(a).await.unwrap().is_empty());
}

async fn a_released_job_waits_without_an_attempt(d: Directory) {
    let (a, s) = account(&d, "paused").await;
    let imp = queue_import(&s, a).await;
    let filter = ClaimFilter {
        kinds: KINDS,
        only: Some((a, imp.job_id)),
        ..ClaimFilter::default()
    };
    let job = s
        .claim_fair("node-1", 60_000, &filter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.attempts, 1);
    assert!(s.release_job(&job, "node-1").await.unwrap());
    let back = s.job(a, job.id).await.unwrap().unwrap();
    assert_eq!(back.state, JOB_QUEUED);
    assert_eq!(back.attempts, 0);
    assert_eq!(back.error, None);
    // The released runner holds nothing any more.
    assert!(!s.renew_job(&job, "node-1", 60_000, 0, 0).await.unwrap());
    assert!(!s.release_job(&job, "node-1").await.unwrap());
    // An account that is skipped (not active) keeps its job waiting.
    let skipped = ClaimFilter {
        skip: &[a],
        ..filter
    };
    assert!(s
        .claim_fair("node-1", 60_000, &skipped)
        .await
        .unwrap()
        .is_none());
    let again = s
        .claim_fair("node-2", 60_000, &filter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.attempts, 1);
}
