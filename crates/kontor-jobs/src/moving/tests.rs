//! A move run in-process between two SQLite cells: what it carries over (rows, files, ids
//! continuing), what it leaves behind (nothing), and a copy that does not match, which fails the
//! move and leaves the account live where it was.

use super::test_hooks::DAMAGE_ACCOUNT;
use crate::Jobs;
use kontor_domain::{ChangeSource, Region, Tier};
use kontor_store::{Actor, CreateInput, Directory, MoveState, Store};
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

async fn setup(name: &str) -> (Arc<Jobs>, std::path::PathBuf) {
    let tmp = std::env::temp_dir().join(format!(
        "kontor-move-{name}-{}-{}",
        std::process::id(),
        kontor_domain::time::now_ms()
    ));
    std::fs::create_dir_all(&tmp).unwrap();
    let url = |n: &str| format!("sqlite://{}", tmp.join(n).display());
    let dir = Arc::new(Directory {
        directory: Store::open(&url("directory.db")).await.unwrap(),
        regions: HashMap::from([
            (Region::Us, Store::open(&url("us.db")).await.unwrap()),
            (Region::Eu, Store::open(&url("eu.db")).await.unwrap()),
        ]),
    });
    let jobs = Arc::new(Jobs {
        dir,
        files: HashMap::from([
            (Region::Us, tmp.join("us-files")),
            (Region::Eu, tmp.join("eu-files")),
        ]),
        mailer: None,
        public_url: "http://127.0.0.1:1".into(),
        keys: Arc::new(crate::keys::Keyring::new([1u8; 32], vec![])),
        node: format!("{}-test", std::process::id()),
        lease_ms: 5_000,
        compression_level: 1,
        workers: 1,
        per_account: 1,
        health: Default::default(),
        policy: Default::default(),
    });
    (jobs, tmp)
}

fn actor() -> Actor {
    Actor {
        source: ChangeSource::Api,
        source_id: Some("moves".into()),
        user_id: None,
    }
}

async fn account_with_data(jobs: &Jobs, name: &str) -> (kontor_store::Account, Vec<i64>) {
    let a = jobs
        .dir
        .create_account(name, Region::Us, Tier::Enterprise)
        .await
        .unwrap();
    let s = jobs.dir.cell(&a).unwrap();
    let contacts = s.object_type(a.id, "contacts").await.unwrap().unwrap();
    let made = s
        .create_records(
            a.id,
            &contacts,
            (0..50)
                .map(|i| CreateInput {
                    properties: json!({"email": format!("m{i}@example.com")})
                        .as_object()
                        .unwrap()
                        .clone(),
                    associations: vec![],
                })
                .collect(),
            &actor(),
        )
        .await
        .unwrap();
    (a, made.iter().map(|r| r.id).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_carries_rows_and_files_and_leaves_nothing_behind() {
    let (jobs, _tmp) = setup("whole").await;
    let (a, ids) = account_with_data(&jobs, "moving whole").await;
    let archive = jobs
        .files_root(Region::Us)
        .join(crate::archive_key(a.id, 7));
    std::fs::create_dir_all(archive.parent().unwrap()).unwrap();
    std::fs::write(&archive, b"an archive").unwrap();
    let before = jobs
        .dir
        .cell(&a)
        .unwrap()
        .account_digests(a.id)
        .await
        .unwrap();

    let mv = jobs
        .dir
        .schedule_move(a.id, Region::Eu, 0, "test", false)
        .await
        .unwrap();
    assert_eq!(
        super::run_due(&jobs, Some(mv.id)).await.unwrap(),
        Some(mv.id)
    );
    let done = jobs.dir.get_move(mv.id).await.unwrap().unwrap();
    assert_eq!(done.state, MoveState::Done, "{:?}", done.error);
    assert!(done.frozen_at.is_some() && done.switched_at.is_some());

    let moved = jobs.dir.account(a.id).await.unwrap().unwrap();
    assert_eq!(moved.region, Region::Eu);
    let (us, eu) = (
        jobs.dir.region(Region::Us).unwrap(),
        jobs.dir.region(Region::Eu).unwrap(),
    );
    // The new cell has what the old one had (and the move's audit entries).
    let after = eu.account_digests(a.id).await.unwrap();
    for (b, n) in before.iter().zip(&after) {
        // The move's own audit entries (and their counter) are the difference.
        if b.table != "audit_log" && b.table != "counters" {
            assert_eq!(b, n);
        }
    }
    assert!(us
        .account_row_counts(a.id)
        .await
        .unwrap()
        .iter()
        .all(|(_, n)| *n == 0));
    // The archive moved with it, and new ids continue after the old ones.
    assert!(jobs
        .files_root(Region::Eu)
        .join(crate::archive_key(a.id, 7))
        .exists());
    assert!(!archive.exists());
    let contacts = eu.object_type(a.id, "contacts").await.unwrap().unwrap();
    let next = eu
        .create_records(
            a.id,
            &contacts,
            vec![CreateInput {
                properties: json!({"email": "after@example.com"})
                    .as_object()
                    .unwrap()
                    .clone(),
                associations: vec![],
            }],
            &actor(),
        )
        .await
        .unwrap()[0]
        .id;
    assert!(ids.iter().all(|i| *i < next));
    // The old cell refuses writes of the account for good.
    assert!(matches!(
        us.create_token(a.id, "stale", None).await,
        Err(kontor_store::StoreError::Fenced(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_that_does_not_match_fails_the_move_and_the_account_stays() {
    let (jobs, _tmp) = setup("damaged").await;
    let (a, ids) = account_with_data(&jobs, "moving damaged").await;
    let mv = jobs
        .dir
        .schedule_move(a.id, Region::Eu, 0, "test", false)
        .await
        .unwrap();
    DAMAGE_ACCOUNT.store(a.id, Ordering::SeqCst);
    super::run_due(&jobs, Some(mv.id)).await.unwrap();
    let failed = jobs.dir.get_move(mv.id).await.unwrap().unwrap();
    assert_eq!(failed.state, MoveState::Failed);
    let reason = failed.error.unwrap();
    assert!(reason.contains("tokens"), "{reason}");

    // Live where it was: readable, writable, its jobs claimable; nothing left in the other cell.
    let here = jobs.dir.account(a.id).await.unwrap().unwrap();
    assert_eq!(
        (here.region, here.state),
        (Region::Us, kontor_store::LifecycleState::Active)
    );
    let us = jobs.dir.region(Region::Us).unwrap();
    let contacts = us.object_type(a.id, "contacts").await.unwrap().unwrap();
    assert!(us
        .record(a.id, &contacts, ids[0], false)
        .await
        .unwrap()
        .is_some());
    us.create_token(a.id, "after the failure", None)
        .await
        .unwrap();
    assert_eq!(us.account_fence(a.id).await.unwrap(), None);
    let eu = jobs.dir.region(Region::Eu).unwrap();
    assert!(eu
        .account_row_counts(a.id)
        .await
        .unwrap()
        .iter()
        .all(|(_, n)| *n == 0));
    assert_eq!(eu.account_fence(a.id).await.unwrap(), None);
    let audit = us.audit_entries(a.id, 5).await.unwrap();
    assert!(audit.iter().any(|e| e.4 == "data_move.failed"));
    // It can be scheduled again.
    let again = jobs
        .dir
        .schedule_move(a.id, Region::Eu, 0, "test", false)
        .await
        .unwrap();
    super::run_due(&jobs, Some(again.id)).await.unwrap();
    assert_eq!(
        jobs.dir.get_move(again.id).await.unwrap().unwrap().state,
        MoveState::Done
    );
}

/// A runner that stops while it undoes a failing move (killed right after deciding the move
/// fails) is followed by one that goes on undoing it, not moving it: the account stays where it
/// was with its reason recorded, the partial copy goes, and the first runner's token no longer
/// writes anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_move_taken_over_is_undone_not_resumed() {
    let (jobs, _tmp) = setup("failing").await;
    let (a, ids) = account_with_data(&jobs, "failing move").await;
    let mv = jobs
        .dir
        .schedule_move(a.id, Region::Eu, 0, "test", false)
        .await
        .unwrap();
    let first = jobs
        .dir
        .claim_move(&jobs.node, jobs.lease_ms, Some(mv.id))
        .await
        .unwrap()
        .unwrap();
    let (us, eu) = (
        jobs.dir.region(Region::Us).unwrap(),
        jobs.dir.region(Region::Eu).unwrap(),
    );
    // The first runner copies (as the copy phase does), finds it must fail, and dies.
    let t = first.token();
    assert!(eu.take_move_token(a.id, t).await.unwrap());
    assert!(us.take_move_token(a.id, t).await.unwrap());
    eu.mark_incoming(a.id, "us", t).await.unwrap();
    us.start_capture(a.id, "eu", t).await.unwrap();
    us.copy_account_to(eu, a.id, t).await.unwrap();
    assert!(jobs
        .dir
        .fail_move(mv.id, &jobs.node, "the copy does not match")
        .await
        .unwrap());
    jobs.dir
        .release_move(mv.id, &jobs.node, "killed")
        .await
        .unwrap();

    super::run_due(&jobs, Some(mv.id)).await.unwrap();
    let failed = jobs.dir.get_move(mv.id).await.unwrap().unwrap();
    assert_eq!(failed.state, MoveState::Failed);
    assert_eq!(failed.error.as_deref(), Some("the copy does not match"));
    let here = jobs.dir.account(a.id).await.unwrap().unwrap();
    assert_eq!(
        (here.region, here.state),
        (Region::Us, kontor_store::LifecycleState::Active)
    );
    let contacts = us.object_type(a.id, "contacts").await.unwrap().unwrap();
    assert!(us
        .record(a.id, &contacts, ids[0], false)
        .await
        .unwrap()
        .is_some());
    assert_eq!(us.account_fence(a.id).await.unwrap(), None);
    assert_eq!(eu.account_fence(a.id).await.unwrap(), None);
    assert!(eu
        .account_row_counts(a.id)
        .await
        .unwrap()
        .iter()
        .all(|(_, n)| *n == 0));
    // The first runner's token is spent in both cells.
    assert!(matches!(
        us.fence_account(a.id, "eu", t).await,
        Err(kontor_store::StoreError::Conflict { .. })
    ));
    assert!(!eu.take_move_token(a.id, t).await.unwrap());
}
