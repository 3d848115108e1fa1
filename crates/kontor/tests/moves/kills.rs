//! Data moves between regions under load and under `kill -9`. Writers (creates, updates,
//! archives, associations, form submissions without a token) record every result while an
//! account is moved back and forth between the two regions' cells with `kontor migration run`,
//! and the CLI and the server are killed at random moments and started again. After the moves:
//! every acknowledged write is in the account's cell, nothing is there that was never
//! attempted, ids are unchanged, 477 (with `Retry-After`) was answered only while a move was
//! frozen, every form submission was accepted (frozen or not) and became its contact exactly
//! once, and the old cell holds nothing of the account.
//!
//! The cells are what the environment configures: two SQLite files by default; PostgreSQL
//! databases with `KONTOR_DATABASE_US`/`_EU` (either or both). `KONTOR_MOVE_KILLS` sets how
//! many kills must land while a move runs (20 unless set); `KONTOR_MOVE_SEED` replays a run.

use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

const SEEDED: usize = 3_000;
const WRITERS: usize = 3;

#[derive(Default)]
struct Log {
    /// Acknowledged creates: e-mail → id.
    created: Vec<(String, i64)>,
    attempted: HashSet<String>,
    /// Per updated record, each value sent and whether it was acknowledged.
    updates: HashMap<i64, Vec<(String, bool)>>,
    archived: HashSet<i64>,
    associated: HashSet<i64>,
    /// When the request answered 477 was sent and when its answer came, and whether it
    /// carried Retry-After.
    closed: Vec<(i64, i64, bool)>,
    /// Answers neither acknowledged nor refused (a server killed mid-request).
    unknown: u64,
    acknowledged: u64,
    /// Acknowledged form submissions (each with its own e-mail), and how many of them were
    /// answered "processing may take up to a day" (kept through a freeze).
    submitted: Vec<String>,
    delayed: u64,
    /// Form submissions refused (a 4xx): a form must accept them even while frozen.
    refused_submissions: Vec<String>,
}

struct Shared {
    base: RwLock<String>,
    token: String,
    /// Where the account's form is submitted (no token).
    form_path: String,
    stop: AtomicBool,
    log: Mutex<Log>,
    http: reqwest::Client,
}

enum Outcome {
    Ok(Value),
    Closed,
    Unknown,
}

impl Shared {
    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> Outcome {
        let base = self.base.read().unwrap().clone();
        let sent = kontor_domain::time::now_ms();
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{base}{path}"))
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(20));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let Ok(resp) = req.send().await else {
            return Outcome::Unknown;
        };
        let status = resp.status().as_u16();
        if status == 477 {
            let retry = resp.headers().get("retry-after").is_some();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            assert_eq!(body["category"], "MIGRATION_IN_PROGRESS", "{body}");
            self.log
                .lock()
                .unwrap()
                .closed
                .push((sent, kontor_domain::time::now_ms(), retry));
            return Outcome::Closed;
        }
        match status {
            200..=299 => Outcome::Ok(resp.json().await.unwrap_or(Value::Null)),
            _ => Outcome::Unknown,
        }
    }
}

impl Shared {
    /// Submits the account's form as a website does (no token); records the answer.
    async fn submit(&self, email: String, w: usize) {
        self.log.lock().unwrap().attempted.insert(email.clone());
        let base = self.base.read().unwrap().clone();
        let body = json!({
            "fields": [{"objectTypeId": "0-1", "name": "email", "value": email}, {"name": "firstname", "value": format!("F{w}")}],
            "context": {"pageName": "moves"},
        });
        let resp = self
            .http
            .post(format!("{base}{}", self.form_path))
            .json(&body)
            .timeout(Duration::from_secs(20))
            .send()
            .await;
        let Ok(resp) = resp else {
            self.log.lock().unwrap().unknown += 1;
            return;
        };
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let mut log = self.log.lock().unwrap();
        match status {
            200 => {
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                let message = v["inlineMessage"].as_str().unwrap_or("");
                assert!(message.starts_with("Thanks"), "{text}");
                if message.contains("up to a day") {
                    log.delayed += 1;
                }
                log.submitted.push(email);
                log.acknowledged += 1;
            }
            400..=499 => log.refused_submissions.push(format!("{status} {text}")),
            _ => log.unknown += 1,
        }
    }
}

async fn writer(s: Arc<Shared>, w: usize, seeded: Vec<i64>, company: i64) {
    let mut n = 0usize;
    let mut mine: Vec<i64> = Vec::new();
    while !s.stop.load(Ordering::Relaxed) {
        n += 1;
        // Create.
        let email = format!("w{w}-{n}@moves.test");
        s.log.lock().unwrap().attempted.insert(email.clone());
        match s
            .send(
                "POST",
                "/crm/v3/objects/contacts",
                Some(json!({"properties": {"email": email, "firstname": format!("W{w}")}})),
            )
            .await
        {
            Outcome::Ok(v) => {
                let id: i64 = v["id"].as_str().unwrap().parse().unwrap();
                mine.push(id);
                let mut log = s.log.lock().unwrap();
                log.created.push((email, id));
                log.acknowledged += 1;
            }
            Outcome::Closed => {}
            Outcome::Unknown => s.log.lock().unwrap().unknown += 1,
        }
        // Submit the form, every other round.
        if n.is_multiple_of(2) {
            s.submit(format!("f{w}-{n}@moves.test"), w).await;
        }
        // Update a seeded record.
        let id = seeded[(n * WRITERS + w) % seeded.len()];
        let value = format!("u{w}-{n}");
        s.log
            .lock()
            .unwrap()
            .updates
            .entry(id)
            .or_default()
            .push((value.clone(), false));
        let path = format!("/crm/v3/objects/contacts/{id}");
        if let Outcome::Ok(_) = s
            .send(
                "PATCH",
                &path,
                Some(json!({"properties": {"lastname": value}})),
            )
            .await
        {
            let mut log = s.log.lock().unwrap();
            log.acknowledged += 1;
            if let Some(last) = log.updates.get_mut(&id).and_then(|v| v.last_mut()) {
                last.1 = true;
            }
        }
        // Archive one of this writer's records now and then.
        if n.is_multiple_of(5) {
            if let Some(id) = mine.pop() {
                let path = format!("/crm/v3/objects/contacts/{id}");
                if let Outcome::Ok(_) = s.send("DELETE", &path, None).await {
                    let mut log = s.log.lock().unwrap();
                    log.archived.insert(id);
                    log.acknowledged += 1;
                }
            }
        }
        // Associate a seeded record with the company.
        if n.is_multiple_of(3) {
            let id = seeded[(n * 7 + w) % seeded.len()];
            let path =
                format!("/crm/v4/objects/contacts/{id}/associations/default/companies/{company}");
            if let Outcome::Ok(_) = s.send("PUT", &path, None).await {
                let mut log = s.log.lock().unwrap();
                log.associated.insert(id);
                log.acknowledged += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moves_lose_no_acknowledged_write_under_kills() {
    let kills_wanted = env_u64("KONTOR_MOVE_KILLS", 20) as u32;
    let seed = env_u64("KONTOR_MOVE_SEED", rand::random::<u32>() as u64);
    eprintln!("moves: seed {seed} (KONTOR_MOVE_SEED={seed} replays it)");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut server = Server::start_with(None, &ENV).await;
    let (account, token) = server.account("moving");
    let a: i64 = account.parse().unwrap();
    // A super admin, who is told of each move by e-mail.
    common::console::user(&server, &account, "boss@moves.test", "super-admin");

    // An account with some data.
    let mut seeded = Vec::new();
    for chunk in 0..SEEDED / 100 {
        let inputs: Vec<Value> = (0..100)
            .map(|i| json!({"properties": {"email": format!("s{}@moves.test", chunk * 100 + i), "firstname": "Seed"}}))
            .collect();
        let (status, v) = server
            .call(
                &token,
                "POST",
                "/crm/v3/objects/contacts/batch/create",
                Some(json!({"inputs": inputs})),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        for r in v["results"].as_array().unwrap() {
            seeded.push(r["id"].as_str().unwrap().parse::<i64>().unwrap());
        }
    }
    let (status, v) = server
        .call(
            &token,
            "POST",
            "/crm/v3/objects/companies",
            Some(json!({"properties": {"name": "Moving Co"}})),
        )
        .await;
    assert_eq!(status, 201);
    let company: i64 = v["id"].as_str().unwrap().parse().unwrap();
    let (status, form) = server
        .call(
            &token,
            "POST",
            "/marketing/v3/forms",
            Some(json!({"name": "Sign-up", "fieldGroups": [{"fields": [
                {"objectTypeId": "0-1", "name": "email", "label": "Email", "required": true},
                {"objectTypeId": "0-1", "name": "firstname", "label": "First name"},
            ]}]})),
        )
        .await;
    assert_eq!(status, 201, "{form}");
    let form_id = form["id"].as_str().unwrap().to_string();

    let shared = Arc::new(Shared {
        base: RwLock::new(server.base.clone()),
        token: token.clone(),
        form_path: format!("/submissions/v3/integration/submit/{account}/{form_id}"),
        stop: AtomicBool::new(false),
        log: Mutex::new(Log::default()),
        http: reqwest::Client::new(),
    });
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(writer(shared.clone(), w, seeded.clone(), company)))
        .collect();

    let dir = kontor_store::Store::open(&directory_url(&server.data_dir))
        .await
        .unwrap();
    let directory = kontor_store::Directory {
        directory: dir,
        regions: Default::default(),
    };
    let mut kills = 0u32;
    let mut by_phase: HashMap<String, u32> = HashMap::new();
    let mut moves = 0;
    let mut region = "us";
    let began = Instant::now();
    while kills < kills_wanted || moves < 2 {
        assert!(
            began.elapsed() < Duration::from_secs(600),
            "{kills} kills in {moves} moves after 10 minutes"
        );
        let to = if region == "us" { "eu" } else { "us" };
        let mut cli = start_move(&server.data_dir, &account, to);
        // The command schedules the move first thing.
        while open_move(&directory, a).await.is_none() && cli.try_wait().unwrap().is_none() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut kills_this = if kills < kills_wanted {
            rng.gen_range(1..=4)
        } else {
            0
        };
        let moved = loop {
            if kills_this > 0 {
                kills_this -= 1;
                // Half the kills land at a random moment, the others as soon as the move
                // enters a phase (the freeze lasts a few tens of milliseconds).
                let phase = ["", "catch_up", "frozen", "switched"][rng.gen_range(0..4)];
                let open = if phase.is_empty() {
                    tokio::time::sleep(Duration::from_millis(rng.gen_range(30..900))).await;
                    open_move(&directory, a).await
                } else {
                    wait_for_phase(&directory, a, phase).await
                };
                let Some(m) = open else { continue };
                // Kill the process running the move (its lease names it), else either.
                let owner_pid = m
                    .lease_owner
                    .as_deref()
                    .and_then(|o| o.split('-').next())
                    .and_then(|p| p.parse::<u32>().ok());
                let kill_cli = match owner_pid {
                    Some(pid) if pid == cli.id() => true,
                    Some(pid) if pid == server.child.id() => false,
                    _ => rng.gen_bool(0.5),
                };
                *by_phase.entry(m.phase.clone()).or_default() += 1;
                kills += 1;
                if kill_cli {
                    let _ = cli.kill();
                    let _ = cli.wait();
                    cli = start_move(&server.data_dir, &account, to);
                } else {
                    server.kill9_and_restart(&ENV).await;
                    *shared.base.write().unwrap() = server.base.clone();
                }
                continue;
            }
            match cli.try_wait().unwrap() {
                Some(status) => {
                    let latest = directory.moves_of(a).await.unwrap();
                    let m = latest.first().unwrap().clone();
                    assert!(
                        status.success(),
                        "the move failed: {:?} {:?}; the CLI said: {}",
                        m.state,
                        m.error,
                        std::fs::read_to_string(cli_log(&server.data_dir)).unwrap_or_default()
                    );
                    break m;
                }
                None => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        assert_eq!(
            moved.state,
            kontor_store::MoveState::Done,
            "{:?}",
            moved.error
        );
        moves += 1;
        region = to;
        eprintln!(
            "moves: move {} to {to} done in {:?}, frozen {} ms, {} attempts",
            moved.id,
            moved.finished_at.unwrap() - moved.started_at.unwrap(),
            moved.frozen_ms(0).unwrap_or(-1),
            moved.attempts
        );
    }
    // Writes go on a little in the final region, then stop.
    tokio::time::sleep(Duration::from_millis(500)).await;
    shared.stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }

    let log = std::mem::take(&mut *shared.log.lock().unwrap());
    let all_moves = directory.moves_of(a).await.unwrap();
    eprintln!(
        "moves: {moves} moves, {kills} kills landed ({by_phase:?}); {} writes acknowledged, {} answered 477, {} unknown; {} form submissions acknowledged, {} of them kept through a freeze",
        log.acknowledged,
        log.closed.len(),
        log.unknown,
        log.submitted.len(),
        log.delayed,
    );
    assert!(log.acknowledged > 100, "the writers wrote during the moves");
    assert!(
        log.refused_submissions.is_empty(),
        "form submissions were refused: {:?}",
        log.refused_submissions
    );

    // Every acknowledged submission became its contact, once: those kept through a freeze
    // are applied after the switch (by the mover, or any server's housekeeping).
    let deadline = Instant::now() + Duration::from_secs(60);
    while !directory
        .accounts_with_queued_submissions()
        .await
        .unwrap()
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "form submissions still wait a minute after the last move"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut recorded: HashMap<String, u32> = HashMap::new();
    let mut after = String::new();
    loop {
        let (status, v) = server
            .call(
                &token,
                "GET",
                &format!("/form-integrations/v1/submissions/forms/{form_id}?limit=50{after}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{v}");
        for r in v["results"].as_array().unwrap() {
            let email = r["values"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["name"] == "email")
                .and_then(|f| f["value"].as_str())
                .unwrap_or("")
                .to_string();
            assert!(
                r["contactId"].is_string(),
                "a submission made no contact: {r}"
            );
            *recorded.entry(email).or_default() += 1;
        }
        match v["paging"]["next"]["after"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    for email in &log.submitted {
        assert_eq!(
            recorded.get(email).copied(),
            Some(1),
            "acknowledged submission {email} recorded {:?} times",
            recorded.get(email)
        );
        let (status, v) = server
            .call(
                &token,
                "POST",
                "/crm/v3/objects/contacts/search",
                Some(json!({"filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": email}]}]})),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(v["total"], 1, "the contact of submission {email}: {v}");
    }
    assert!(
        recorded.values().all(|n| *n == 1),
        "a submission was applied twice"
    );

    // 477 only while a move was frozen (the request under way at some moment of a freeze,
    // which ends at the switch, or when a move that failed opened the account again), always
    // with Retry-After. A second either side: a freeze's times are taken just before the
    // directory's transaction commits it.
    for (sent, answered, retry) in &log.closed {
        assert!(retry, "a 477 without Retry-After");
        let frozen = all_moves.iter().any(|m| {
            let end = m.switched_at.or(m.finished_at);
            m.frozen_at.is_some_and(|f| f - 1000 <= *answered)
                && end.is_some_and(|e| *sent <= e + 1000)
        });
        let windows: Vec<_> = all_moves
            .iter()
            .map(|m| (m.id, m.frozen_at, m.switched_at, m.finished_at))
            .collect();
        assert!(
            frozen,
            "a 477 to a request sent at {sent} and answered at {answered} outside every freeze (move, frozen, switched, finished): {windows:?}"
        );
    }

    // Every acknowledged create is there (or in the recycle bin, if its archive was).
    for (email, id) in &log.created {
        let (status, v) = server
            .call(
                &token,
                "GET",
                &format!("/crm/v3/objects/contacts/{id}?properties=email"),
                None,
            )
            .await;
        if log.archived.contains(id) {
            assert_eq!(status, 404, "contact {id} was archived: {v}");
        } else {
            assert_eq!(
                status, 200,
                "acknowledged contact {id} ({email}) is lost: {v}"
            );
            assert_eq!(v["properties"]["email"], email.as_str());
        }
    }
    // Every update: the last acknowledged value, or one sent after it.
    for (id, values) in &log.updates {
        let (status, v) = server
            .call(
                &token,
                "GET",
                &format!("/crm/v3/objects/contacts/{id}?properties=lastname"),
                None,
            )
            .await;
        assert_eq!(status, 200);
        let have = v["properties"]["lastname"].as_str().unwrap_or("");
        let last_ack = values.iter().rposition(|(_, acked)| *acked);
        let allowed: Vec<&str> = values[last_ack.unwrap_or(0)..]
            .iter()
            .map(|(v, _)| v.as_str())
            .collect();
        assert!(
            allowed.contains(&have) || (last_ack.is_none() && have.is_empty()),
            "contact {id} has lastname {have:?}; acknowledged or later: {allowed:?}"
        );
    }
    // Every acknowledged association.
    for id in &log.associated {
        let (status, v) = server
            .call(
                &token,
                "GET",
                &format!("/crm/v4/objects/contacts/{id}/associations/companies"),
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert!(
            v["results"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["toObjectId"].as_i64() == Some(company)
                    || r["toObjectId"].as_str() == Some(&company.to_string())),
            "contact {id} lost its association: {v}"
        );
    }
    // Nothing that was never attempted.
    let mut after = String::new();
    let mut seen = 0;
    loop {
        let (status, v) = server
            .call(
                &token,
                "GET",
                &format!("/crm/v3/objects/contacts?limit=100&properties=email{after}"),
                None,
            )
            .await;
        assert_eq!(status, 200);
        for r in v["results"].as_array().unwrap() {
            let email = r["properties"]["email"].as_str().unwrap_or("");
            assert!(
                email.starts_with('s') || log.attempted.contains(email),
                "contact {email:?} was never written"
            );
            seen += 1;
        }
        match v["paging"]["next"]["after"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    assert!(seen >= SEEDED);

    // One e-mail per move that ended, to the super admin, however often the processes died.
    // A server killed while it held an e-mail to send leaves it claimed for a minute
    // (`MAIL_CLAIM_MS` in `kontor_jobs`); another node sends it after that.
    let deadline = Instant::now() + Duration::from_secs(100);
    loop {
        let done = mails_to(&server, "boss@moves.test")
            .iter()
            .filter(|m| m.contains("now lives in"))
            .count();
        if done == moves {
            break;
        }
        assert!(
            done < moves && Instant::now() < deadline,
            "{done} e-mails for {moves} moves"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The account lives in its last region; the other cell holds nothing of it.
    let acct = directory.account(a).await.unwrap().unwrap();
    assert_eq!(acct.region.as_str(), region);
    let old = if region == "us" { "eu" } else { "us" };
    let (old_url, new_url) = (
        cell_url(&server.data_dir, old),
        cell_url(&server.data_dir, region),
    );
    if old_url != new_url {
        let old_cell = kontor_store::Store::open(&old_url).await.unwrap();
        let left: i64 = old_cell
            .account_row_counts(a)
            .await
            .unwrap()
            .iter()
            .map(|(_, n)| n)
            .sum();
        assert_eq!(left, 0, "the old cell still holds rows of the account");
        assert!(matches!(
            old_cell.account_fence(a).await.unwrap(),
            Some(kontor_store::moving::Fence::Moved { .. })
        ));
    }
}
