//! The fault campaign. Backups, imports and restores run while the server is killed with
//! `kill -9` at random moments and restarted on the same data folder; when every job has
//! finished, each is checked: nothing lost, nothing applied twice, nothing stuck, one e-mail
//! per job a user asked for. Then the archives the server wrote get random bit flips and truncations:
//! each must be found by the check (or refused by a restore), or be harmless (it verifies and
//! reads back the very same rows). The test prints a summary and fails on any loss.
//!
//! Sizes: `KONTOR_FAULT_KILLS` (kills that land while a job is queued or running; 12 unless
//! set), `KONTOR_FAULT_FLIPS` (damaged copies; 100 unless set), `KONTOR_FAULT_SEED` (replays a
//! campaign; a random one is printed otherwise). `bash scripts/fault-campaign.sh` runs the
//! full sizes.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod common;
#[path = "faults/damage.rs"]
mod damage;
use common::console::{console_token, sign_in, user};
use common::*;

/// A short lease, so a restarted server takes the jobs of the killed one over quickly.
const ENV: [(&str, &str); 1] = [("KONTOR_JOB_LEASE_SECONDS", "1")];
const CONTACTS: usize = 2_000;
/// Kills in one round of jobs before the round is left to finish (so that jobs do finish).
const KILLS_PER_ROUND: u32 = 3;
/// How long a server holds an e-mail it is sending (`MAIL_CLAIM_MS` in `kontor_jobs`).
const MAIL_CLAIM_MS: u64 = 60_000;

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Backup,
    Import,
    Restore,
}

struct Job {
    kind: Kind,
    id: String,
    /// Imports: the rows of the file.
    rows: usize,
    /// Restores: the backup restored from, and how many values differed from it.
    backup: String,
    differing: usize,
    /// Whether a user asked for it (and is told by e-mail when it finishes).
    mailed: bool,
}

#[derive(Default)]
struct Tally {
    kills: u32,
    kills_running: u32,
    idle_kills: u32,
    backups: u32,
    imports: u32,
    restores: u32,
    verified: u32,
    lost: u64,
    twice: u64,
    mails_lost: u64,
    mails_twice: u64,
    flips: u32,
    cuts: u32,
    detected: u32,
    harmless: u32,
    cli_checked: u32,
    server_refused: u32,
    server_checked: u32,
    problems: Vec<String>,
}

struct Campaign {
    s: Server,
    rng: StdRng,
    account: String,
    /// A token the operator made on the command line (restores need no second factor).
    operator: String,
    /// A token of a super admin user, who gets the e-mails.
    admin: String,
    admin_email: String,
    contacts: Vec<i64>,
    /// Each contact's city as last seen.
    cities: BTreeMap<i64, String>,
    /// Completed backups, oldest first.
    backups: Vec<String>,
    jobs: Vec<Job>,
    imported_rows: usize,
    round: u32,
    last_kill: Instant,
    t: Tally,
}

fn archive(s: &Server, account: &str, backup: &str) -> PathBuf {
    files_root(&s.data_dir).join(format!("us/files/backups/{account}/backup-{backup}.zip"))
}

/// One property of every record of a type, by id (empty when unset).
async fn column(s: &Server, token: &str, object: &str, prop: &str) -> BTreeMap<i64, String> {
    let mut out = BTreeMap::new();
    let mut after = String::new();
    loop {
        let path = format!("/crm/v3/objects/{object}?limit=100&properties={prop}&after={after}");
        let (st, v) = s.call(token, "GET", &path, None).await;
        assert_eq!(st, 200, "{v}");
        for r in v["results"].as_array().unwrap() {
            let value = r["properties"][prop].as_str().unwrap_or("").to_string();
            out.insert(r["id"].as_str().unwrap().parse().unwrap(), value);
        }
        match v["paging"]["next"]["after"].as_str() {
            Some(a) => after = a.to_string(),
            None => return out,
        }
    }
}

/// A column of one CSV file of an archive, by record id.
fn archived(path: &Path, file: &str, prop: &str) -> BTreeMap<i64, String> {
    let mut out = BTreeMap::new();
    kontor_archive::read_rows(path, file, &[prop.to_string()], |id, v| {
        out.insert(id, v[0].to_string());
        Ok(true)
    })
    .unwrap();
    out
}

impl Campaign {
    async fn new(seed: u64) -> Campaign {
        let s = Server::start_with(None, &ENV).await;
        let (account, operator) = s.account("Fault campaign");
        let admin_email = "faults@example.com".to_string();
        let (_, password) = user(&s, &account, &admin_email, "super-admin");
        let session = sign_in(&s, &admin_email, &password).await;
        let admin = console_token(&s, &session, "faults").await;
        let mut contacts = Vec::new();
        for start in (0..CONTACTS).step_by(100) {
            let inputs: Vec<Value> = (start..(start + 100).min(CONTACTS))
                .map(|i| {
                    json!({"properties": {
                        "email": format!("f{i}@example.com"),
                        "firstname": format!("First {i}"),
                        "city": format!("City {}", i % 7),
                    }})
                })
                .collect();
            let (st, v) = s
                .call(
                    &operator,
                    "POST",
                    "/crm/v3/objects/contacts/batch/create",
                    Some(json!({"inputs": inputs})),
                )
                .await;
            assert_eq!(st, 201, "{v}");
            for r in v["results"].as_array().unwrap() {
                contacts.push(r["id"].as_str().unwrap().parse().unwrap());
            }
        }
        let cities = column(&s, &operator, "contacts", "city").await;
        Campaign {
            s,
            rng: StdRng::seed_from_u64(seed),
            account,
            operator,
            admin,
            admin_email,
            contacts,
            cities,
            backups: Vec::new(),
            jobs: Vec::new(),
            imported_rows: 0,
            round: 0,
            last_kill: Instant::now(),
            t: Tally::default(),
        }
    }

    /// The state of a job as the API shows it, whether it is still to run, and what changes
    /// as a runner works on it (state, attempts, progress).
    async fn state(&self, job: &Job) -> (String, bool, String) {
        let (path, field) = match job.kind {
            Kind::Backup => (format!("/kontor/v1/backups/{}", job.id), "status"),
            _ => (format!("/crm/v3/imports/{}", job.id), "state"),
        };
        let (st, v) = self.s.call(&self.operator, "GET", &path, None).await;
        assert_eq!(st, 200, "{v}");
        let state = v[field].as_str().unwrap().to_string();
        let open = matches!(
            state.as_str(),
            "QUEUED" | "RUNNING" | "STARTED" | "PROCESSING"
        );
        let mark = format!("{state} {} {}", v["attempts"], v["progress"]["done"]);
        (state, open, mark)
    }

    async fn marks(&self, from: usize) -> Vec<String> {
        let mut out = Vec::new();
        for job in &self.jobs[from..] {
            out.push(self.state(job).await.2);
        }
        out
    }

    /// Whether any job from `from` on is still to run, and whether this server has taken one
    /// up and runs it (it changed since `before`; a job the killed server ran shows as running
    /// until its lease lapses).
    async fn busy(&self, from: usize, before: &[String]) -> (bool, bool) {
        let (mut open, mut running) = (false, false);
        for (n, job) in self.jobs[from..].iter().enumerate() {
            let (state, still, mark) = self.state(job).await;
            open |= still;
            running |= (state == "RUNNING" || state == "PROCESSING") && mark != before[n];
        }
        (open, running)
    }

    /// Asks for the next round of jobs: a backup, one or two imports, and (once a backup is
    /// there to restore from) a restore of contacts' cities after some were changed.
    async fn start_round(&mut self) {
        self.round += 1;
        let id = if self.round == 1 {
            // The user's own backup (the tier allows one a week): mailed when ready.
            let (st, b) = self
                .s
                .call(&self.admin, "POST", "/kontor/v1/backups", None)
                .await;
            assert_eq!(st, 202, "{b}");
            b["id"].as_str().unwrap().to_string()
        } else {
            let account = self.account.clone();
            self.s.cli(&[
                "backup",
                "create",
                "--account",
                &account,
                "--ignore-interval",
            ])
        };
        self.jobs.push(Job {
            kind: Kind::Backup,
            id,
            rows: 0,
            backup: String::new(),
            differing: 0,
            mailed: self.round == 1,
        });
        for _ in 0..self.rng.gen_range(1..=2) {
            self.start_import().await;
        }
        if let Some(backup) = self.backups.last().cloned() {
            self.start_restore(backup).await;
        }
    }

    /// An import of new companies, each named by a marker number of its own.
    async fn start_import(&mut self) {
        let rows = self.rng.gen_range(50..=300);
        let first = self.imported_rows;
        self.imported_rows += rows;
        let mut csv = String::from("Name,Description\n");
        for m in first..first + rows {
            csv.push_str(&format!(
                "fm-{m},\"round {}, row {}\"\n",
                self.round,
                m - first
            ));
        }
        let request = json!({
            "name": format!("fault import {first}"),
            "importOperations": {"0-2": "CREATE"},
            "files": [{
                "fileName": "companies.csv",
                "fileFormat": "CSV",
                "fileImportPage": {"hasHeader": true, "columnMappings": [
                    {"columnObjectTypeId": "0-2", "columnName": "Name", "propertyName": "name"},
                    {"columnObjectTypeId": "0-2", "columnName": "Description", "propertyName": "description"},
                ]},
            }],
        });
        let (st, v) = post_import(&self.s, &self.admin, &request, &csv).await;
        assert_eq!(st, 200, "{v}");
        self.jobs.push(Job {
            kind: Kind::Import,
            id: v["id"].as_str().unwrap().to_string(),
            rows,
            backup: String::new(),
            differing: 0,
            mailed: true,
        });
    }

    /// Changes the city of a random share of contacts (some cleared), then restores the cities
    /// from `backup`.
    async fn start_restore(&mut self, backup: String) {
        let share = self.rng.gen_range(0.05..0.4);
        let mut ups = Vec::new();
        for (n, id) in self.contacts.iter().enumerate() {
            if self.rng.gen_bool(share) {
                let city = if self.rng.gen_bool(0.25) {
                    String::new()
                } else {
                    format!("Moved {}-{n}", self.round)
                };
                self.cities.insert(*id, city.clone());
                ups.push(json!({"id": id.to_string(), "properties": {"city": city}}));
            }
        }
        for chunk in ups.chunks(100) {
            let (st, v) = self
                .s
                .call(
                    &self.operator,
                    "POST",
                    "/crm/v3/objects/contacts/batch/update",
                    Some(json!({"inputs": chunk})),
                )
                .await;
            assert_eq!(st, 200, "{v}");
        }
        let want = archived(
            &archive(&self.s, &self.account, &backup),
            "contacts.csv",
            "city",
        );
        let differing = self
            .contacts
            .iter()
            .filter(|id| want.get(id) != self.cities.get(id))
            .count();
        let (st, plan) = self
            .s
            .call(
                &self.operator,
                "POST",
                "/kontor/v1/restores/plans",
                Some(json!({"backupId": backup, "objectType": "contacts", "properties": ["city"]})),
            )
            .await;
        assert_eq!(st, 201, "{plan}");
        assert_eq!(plan["summary"]["recordsToChange"], differing, "{plan}");
        let (st, r) = self
            .s
            .call(
                &self.operator,
                "POST",
                "/kontor/v1/restores",
                Some(json!({"planId": plan["id"], "acknowledgeChanges": true,
                    "acknowledgeRevertOnly": true})),
            )
            .await;
        assert_eq!(st, 202, "{r}");
        self.jobs.push(Job {
            kind: Kind::Restore,
            id: r["id"].as_str().unwrap().to_string(),
            rows: 0,
            backup,
            differing,
            mailed: false,
        });
    }

    /// Waits for the jobs from `from` on to finish and checks each.
    async fn finish_round(&mut self, from: usize) {
        for n in from..self.jobs.len() {
            let job = &self.jobs[n];
            let what = format!("{:?} {}", job.kind, job.id);
            match job.kind {
                Kind::Backup => {
                    let deadline = Instant::now() + Duration::from_secs(300);
                    let state = loop {
                        let (state, open, _) = self.state(job).await;
                        if !open {
                            break state;
                        }
                        assert!(Instant::now() < deadline, "{what} stuck: {state}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    };
                    if state == "COMPLETED" {
                        self.t.backups += 1;
                        self.backups.push(job.id.clone());
                    } else {
                        self.t.lost += 1;
                        self.t.problems.push(format!("{what} ended {state}"));
                    }
                }
                Kind::Import => {
                    let done = wait_import(&self.s, &self.admin, &job.id).await;
                    let c = &done["metadata"]["counters"];
                    if done["state"] == "DONE"
                        && c["CREATED_OBJECTS"] == job.rows
                        && c["UPDATED_OBJECTS"] == 0
                        && c["ERRORS"] == 0
                    {
                        self.t.imports += 1;
                    } else {
                        self.t
                            .problems
                            .push(format!("{what}: {} rows: {done}", job.rows));
                    }
                }
                Kind::Restore => {
                    let done = wait_import(&self.s, &self.operator, &job.id).await;
                    let want = archived(
                        &archive(&self.s, &self.account, &job.backup),
                        "contacts.csv",
                        "city",
                    );
                    let now = column(&self.s, &self.operator, "contacts", "city").await;
                    let wrong = self
                        .contacts
                        .iter()
                        .filter(|id| want.get(id) != now.get(id))
                        .count();
                    let c = &done["metadata"]["counters"];
                    if done["state"] == "DONE"
                        && wrong == 0
                        && c["UPDATED_OBJECTS"] == job.differing
                        && c["ERRORS"] == 0
                        && c["CONFLICTS"] == 0
                    {
                        self.t.restores += 1;
                    } else {
                        self.t.problems.push(format!(
                            "{what}: {wrong} cities differ from backup {}, {} expected changes: {done}",
                            job.backup, job.differing
                        ));
                    }
                    self.cities = now;
                }
            }
        }
    }

    /// Kills the server at random moments while the rounds' jobs run, until `kills` kills
    /// landed while a job was queued or running; then lets the last round finish.
    async fn kill_phase(&mut self, kills: u32) {
        let mut from = 0;
        let mut in_round = 0;
        while self.t.kills < kills {
            let before = self.marks(from).await;
            if in_round >= KILLS_PER_ROUND || !self.busy(from, &before).await.0 {
                self.finish_round(from).await;
                from = self.jobs.len();
                in_round = 0;
                self.start_round().await;
                continue;
            }
            if self.rng.gen_bool(0.7) {
                // While a job runs: as soon as this server has taken one up, a few
                // milliseconds in.
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    let (open, running) = self.busy(from, &before).await;
                    if running || !open {
                        break;
                    }
                    assert!(Instant::now() < deadline, "no job taken up in a minute");
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                tokio::time::sleep(Duration::from_millis(self.rng.gen_range(0..30))).await;
            } else {
                // Any moment: before the jobs are taken up again (the lease of the killed
                // server runs a second), while they run, or just after they finished.
                tokio::time::sleep(Duration::from_millis(self.rng.gen_range(0..1500))).await;
            }
            let (busy, running) = self.busy(from, &before).await;
            self.s.kill9_and_restart(&ENV).await;
            self.last_kill = Instant::now();
            if busy {
                self.t.kills += 1;
                self.t.kills_running += u32::from(running);
                in_round += 1;
            } else {
                self.t.idle_kills += 1;
            }
            assert!(
                self.t.idle_kills <= 20 + 4 * kills,
                "kills keep missing the jobs"
            );
        }
        self.finish_round(from).await;
    }

    /// Every import's rows exist once each: counted per marker among all companies.
    async fn count_markers(&mut self) {
        let names = column(&self.s, &self.operator, "companies", "name").await;
        let mut seen = vec![0u32; self.imported_rows];
        for name in names.values() {
            match name
                .strip_prefix("fm-")
                .and_then(|m| m.parse::<usize>().ok())
            {
                Some(m) if m < seen.len() => seen[m] += 1,
                _ => self
                    .t
                    .problems
                    .push(format!("a company nobody imported: {name:?}")),
            }
        }
        for (m, n) in seen.iter().enumerate() {
            match n {
                0 => self.t.lost += 1,
                1 => {}
                n => {
                    self.t.twice += u64::from(n - 1);
                    if self.t.problems.len() < 20 {
                        self.t.problems.push(format!("fm-{m} imported {n} times"));
                    }
                }
            }
        }
    }

    /// Every completed backup's archive verifies and holds the rows it says.
    async fn verify_archives(&mut self) {
        for id in self.backups.clone() {
            let (_, b) = self
                .s
                .call(
                    &self.operator,
                    "GET",
                    &format!("/kontor/v1/backups/{id}"),
                    None,
                )
                .await;
            match kontor_archive::verify(&archive(&self.s, &self.account, &id)) {
                Ok(v) if b["records"] == v.rows => self.t.verified += 1,
                Ok(v) => self
                    .t
                    .problems
                    .push(format!("backup {id}: {} rows in the archive: {b}", v.rows)),
                Err(e) => self
                    .t
                    .problems
                    .push(format!("backup {id} does not verify: {e}")),
            }
        }
    }

    /// One e-mail per job a user asked for: none lost, none twice.
    async fn count_mails(&mut self) {
        let marks: Vec<String> = self
            .jobs
            .iter()
            .filter(|j| j.mailed)
            .map(|j| match j.kind {
                Kind::Backup => format!("/kontor/v1/backups/{}/download?", j.id),
                _ => format!("/app/imports/{}\n", j.id),
            })
            .collect();
        let count = |mails: &[String], mark: &str| {
            mails
                .iter()
                .filter(|m| m.replace("\r\n", "\n").contains(mark))
                .count()
        };
        // A message whose sender was killed mid-delivery is sent when its claim lapses (a
        // minute): wait for that too.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let mails = mails_to(&self.s, &self.admin_email);
            if marks.iter().all(|m| count(&mails, m) >= 1) || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // A second copy would come when the claim of a server killed between sending and
        // recording it lapses. No API shows claims, so wait until none can be held.
        let settled = self.last_kill + Duration::from_millis(MAIL_CLAIM_MS + 3_000);
        tokio::time::sleep_until(settled.into()).await;
        let mails = mails_to(&self.s, &self.admin_email);
        for mark in &marks {
            match count(&mails, mark) {
                0 => {
                    self.t.mails_lost += 1;
                    self.t.problems.push(format!("no e-mail for {mark:?}"));
                }
                1 => {}
                n => {
                    self.t.mails_twice += n as u64 - 1;
                    self.t.problems.push(format!("{n} e-mails for {mark:?}"));
                }
            }
        }
    }
}

#[tokio::test]
async fn jobs_survive_kill_9_and_damaged_archives_are_found() {
    let started = Instant::now();
    let kills = env_u64("KONTOR_FAULT_KILLS", 12) as u32;
    let flips = env_u64("KONTOR_FAULT_FLIPS", 100) as usize;
    let seed = env_u64("KONTOR_FAULT_SEED", rand::random::<u32>() as u64);
    let db = if std::env::var("KONTOR_DATABASE_US").is_ok() {
        "postgresql"
    } else {
        "sqlite"
    };
    eprintln!("fault campaign: seed {seed} ({db}); replay with KONTOR_FAULT_SEED={seed}");
    let mut c = Campaign::new(seed).await;
    c.kill_phase(kills).await;
    c.count_markers().await;
    c.verify_archives().await;
    c.flip_phase(flips).await;
    c.count_mails().await;
    let t = &c.t;
    let summary = format!(
        "fault campaign (seed {seed}, {db}): kills landed {} ({} with a job running, the \
         others with jobs queued; {} more between jobs), jobs finished: \
         backups {}, imports {}, restores {}; archives verified {}; damage injected {} \
         (bit flips {}, truncations {}), detected {}, harmless {} ({} also checked with \
         `kontor backup verify`, {} of {} refused by a restore); e-mails lost {}, twice {}; \
         lost {}; applied twice {}; {:.0} s",
        t.kills,
        t.kills_running,
        t.idle_kills,
        t.backups,
        t.imports,
        t.restores,
        t.verified,
        t.flips + t.cuts,
        t.flips,
        t.cuts,
        t.detected,
        t.harmless,
        t.cli_checked,
        t.server_refused,
        t.server_checked,
        t.mails_lost,
        t.mails_twice,
        t.lost,
        t.twice,
        started.elapsed().as_secs_f64(),
    );
    println!("\n{summary}\n");
    assert!(t.problems.is_empty(), "{:#?}", t.problems);
    assert_eq!((t.lost, t.twice, t.mails_lost, t.mails_twice), (0, 0, 0, 0));
    assert_eq!(t.kills, kills);
    let jobs = c.jobs.iter().filter(|j| j.kind == Kind::Backup).count();
    assert_eq!(t.backups as usize, jobs);
    assert_eq!(t.verified as usize, jobs);
    assert_eq!(t.detected + t.harmless, t.flips + t.cuts);
}
