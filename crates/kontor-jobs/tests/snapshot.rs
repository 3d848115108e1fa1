//! A backup is one consistent snapshot: while writers change records as fast as they can, the
//! archive the real backup job writes must equal the change log replayed up to the archive's
//! sequence number, no more and no less. Runs on SQLite, and on PostgreSQL when
//! `KONTOR_TEST_POSTGRES_URL` is set (see the store's conformance suite).

use kontor_domain::{Region, Tier};
use kontor_jobs::{Jobs, Requester};
use kontor_store::{Actor, CreateInput, Directory, Store, UpdateInput};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "kontor-jobs-{tag}-{}-{}",
        std::process::id(),
        kontor_domain::time::now_ms()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn directory(dir: &std::path::Path, pg: Option<&str>) -> Directory {
    let (directory, us) = match pg {
        Some(url) => {
            let s = Store::open(url).await.unwrap();
            (s.clone(), s)
        }
        None => {
            let url = |n: &str| format!("sqlite://{}", dir.join(n).display());
            (
                Store::open(&url("directory.db")).await.unwrap(),
                Store::open(&url("us.db")).await.unwrap(),
            )
        }
    };
    Directory {
        directory,
        regions: HashMap::from([(Region::Us, us.clone()), (Region::Eu, us)]),
    }
}

fn props(i: usize, marker: &str) -> Map<String, Value> {
    let v = json!({
        "email": format!("p{i}-{}@example.com", kontor_domain::time::now_ms()),
        "firstname": format!("First \"{i}\", with comma"),
        "lastname": marker,
        "city": "Berlin\nMitte",
    });
    v.as_object().unwrap().clone()
}

async fn consistent_under_concurrent_writes(pg: Option<&str>) {
    let tmp = temp_dir("snapshot");
    let dir = Arc::new(directory(&tmp, pg).await);
    let account = dir
        .create_account(
            &format!("snap-{}", kontor_domain::time::now_ms()),
            Region::Us,
            Tier::Enterprise,
        )
        .await
        .unwrap();
    let store = dir.cell(&account).unwrap().clone();
    let ot = store
        .object_type(account.id, "contacts")
        .await
        .unwrap()
        .unwrap();
    let actor = Actor::api("test");
    let mut ids = Vec::new();
    for chunk in 0..40 {
        let inputs = (0..100)
            .map(|i| CreateInput {
                properties: props(chunk * 100 + i, "initial"),
                associations: vec![],
            })
            .collect();
        ids.extend(
            store
                .create_records(account.id, &ot, inputs, &actor)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.id),
        );
    }
    let jobs = Jobs {
        dir: dir.clone(),
        files: HashMap::from([(Region::Us, tmp.join("files"))]),
        mailer: None,
        public_url: "http://127.0.0.1:1".into(),
        keys: Arc::new(kontor_jobs::keys::Keyring::new([1u8; 32], vec![])),
        node: "test".into(),
        lease_ms: 30_000,
        compression_level: 1,
        workers: 1,
        per_account: 1,
        health: Default::default(),
        policy: Default::default(),
    };
    // Writers: updates of random batches, creations and archivals, as fast as they go.
    let stop = Arc::new(AtomicBool::new(false));
    // Writes each writer has begun, watched below.
    let counts: Arc<[AtomicUsize; 2]> = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let mut writers = Vec::new();
    for w in 0..2 {
        let (store, ot, stop, ids) = (store.clone(), ot.clone(), stop.clone(), ids.clone());
        let counts = counts.clone();
        writers.push(tokio::spawn(async move {
            let mut n = 0usize;
            let mut slowest = Duration::ZERO;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                counts[w].store(n, Ordering::Relaxed);
                let t = Instant::now();
                let actor = Actor::api("writer");
                match n % 5 {
                    0 => {
                        store
                            .create_records(account.id, &ot, vec![CreateInput { properties: props(100_000 + w * 1_000_000 + n, "new"), associations: vec![] }], &actor)
                            .await
                            .unwrap();
                    }
                    1 => {
                        let id = ids[(n * 7919 + w) % ids.len()];
                        store.archive_records(account.id, &ot, &[id], &actor).await.unwrap();
                    }
                    _ => {
                        let start = (n * 31 + w * 997) % (ids.len() - 50);
                        let inputs = ids[start..start + 50]
                            .iter()
                            .map(|id| UpdateInput {
                                id: *id,
                                properties: json!({"lastname": format!("w{w}-{n}"), "jobtitle": if n.is_multiple_of(2) { Value::Null } else { json!("x") }}).as_object().unwrap().clone(),
                            })
                            .collect();
                        // Some of the batch may be archived by now: that is a 404, fine.
                        let _ = store.update_records(account.id, &ot, inputs, &actor).await;
                    }
                }
                slowest = slowest.max(t.elapsed());
            }
            (n, slowest)
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Back up while they write; keep going until a backup overlapped with writes.
    let mut overlapped = false;
    let mut archive = None;
    for attempt in 0..10 {
        let b = kontor_jobs::request_backup(&store, &account, &Requester::operator(true))
            .await
            .unwrap();
        let before = store
            .changes_after(account.id, 0, i64::MAX)
            .await
            .unwrap()
            .last()
            .map_or(0, |c| c.seq);
        assert!(jobs.run_next(Some((account.id, b.job_id))).await.unwrap());
        let done = store.backup(account.id, b.id).await.unwrap().unwrap();
        assert_eq!(done.state, "completed", "{:?}", done.error);
        let seq = done.snapshot_seq.unwrap();
        let after = store
            .changes_after(account.id, 0, i64::MAX)
            .await
            .unwrap()
            .last()
            .map_or(0, |c| c.seq);
        // Writes committed both before the snapshot and after it, while the job ran.
        if seq > before && after > seq {
            overlapped = true;
            archive = Some(done);
            break;
        }
        eprintln!("attempt {attempt}: no overlap (before {before}, snapshot {seq}, after {after})");
    }
    // Each writer keeps going until it has written a fair number of times (a backup on a busy
    // machine can be done before a slow writer got far), so that their count says they ran.
    let deadline = Instant::now() + Duration::from_secs(60);
    while counts.iter().any(|c| c.load(Ordering::Relaxed) <= 10) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut slowest = Duration::ZERO;
    for w in writers {
        let (n, s) = w.await.unwrap();
        assert!(n > 10);
        slowest = slowest.max(s);
    }
    assert!(overlapped, "no backup overlapped with the writers");
    // Writers never waited on the backup for long.
    assert!(slowest < Duration::from_secs(3), "a write took {slowest:?}");
    let backup = archive.unwrap();
    let seq = backup.snapshot_seq.unwrap();
    let path = kontor_jobs::archive_path(&jobs, &account, &backup).unwrap();
    let verified = kontor_archive::verify(&path).unwrap();
    assert_eq!(verified.manifest.snapshot_seq, seq);

    // Replay the change log up to the snapshot.
    let mut state: BTreeMap<i64, (BTreeMap<String, String>, bool)> = BTreeMap::new();
    for c in store.changes_after(account.id, 0, i64::MAX).await.unwrap() {
        if c.seq > seq || c.object_type != "0-1" {
            continue;
        }
        let entry = state.entry(c.record_id).or_default();
        match c.kind.as_str() {
            "set" => {
                for (k, v) in c.props {
                    match v {
                        Some(v) => entry.0.insert(k, v),
                        None => entry.0.remove(&k),
                    };
                }
            }
            "archive" => entry.1 = true,
            "restore" => entry.1 = false,
            "purge" => {
                state.remove(&c.record_id);
            }
            other => panic!("unknown change kind {other}"),
        }
    }
    let expected: BTreeMap<i64, BTreeMap<String, String>> = state
        .into_iter()
        .filter(|(_, (_, archived))| !archived)
        .map(|(id, (p, _))| (id, p))
        .collect();

    // Read the archive's contacts.csv.
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
    let mut text = String::new();
    zip.by_name("contacts.csv")
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header[0], "hs_object_id");
    let mut actual: BTreeMap<i64, BTreeMap<String, String>> = BTreeMap::new();
    for row in r.records() {
        let row = row.unwrap();
        let id: i64 = row[0].parse().unwrap();
        let p: BTreeMap<String, String> = header
            .iter()
            .zip(row.iter())
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect();
        actual.insert(id, p);
    }
    assert_eq!(actual.len(), expected.len());
    assert_eq!(
        actual, expected,
        "the archive differs from the change log at its sequence"
    );
    assert!(zip.by_name("notes.csv").is_err() && zip.by_name("companies.csv").is_err());
    let _ = std::fs::remove_dir_all(&tmp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backup_is_consistent_under_concurrent_writes_sqlite() {
    consistent_under_concurrent_writes(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backup_is_consistent_under_concurrent_writes_postgres() {
    match std::env::var("KONTOR_TEST_POSTGRES_URL") {
        Ok(url) => consistent_under_concurrent_writes(Some(&url)).await,
        Err(_) => assert_eq!(
            std::env::var("KONTOR_TEST_SKIP_POSTGRES").as_deref(),
            Ok("1"),
            "KONTOR_TEST_POSTGRES_URL is not set; set KONTOR_TEST_SKIP_POSTGRES=1 to skip PostgreSQL on purpose"
        ),
    }
}
