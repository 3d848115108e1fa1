//! Backups through the real server and CLI: the admin API, signed downloads, the CLI, the
//! rate limit and one-at-a-time rules, and a job that survives repeated `kill -9`.

use serde_json::{json, Value};
use std::time::{Duration, Instant};

mod common;
use common::*;

async fn add_contacts(s: &Server, token: &str, n: usize, tag: &str) {
    for start in (0..n).step_by(100) {
        let inputs: Vec<Value> = (start..(start + 100).min(n))
            .map(|i| {
                json!({"properties": {
                    "email": format!("{tag}{i}@example.com"),
                    "firstname": format!("Name, \"{i}\""),
                    "city": "Köln",
                }})
            })
            .collect();
        let (st, v) = s
            .call(
                token,
                "POST",
                "/crm/v3/objects/contacts/batch/create",
                Some(json!({"inputs": inputs})),
            )
            .await;
        assert_eq!(st, 201, "{v}");
    }
}

#[tokio::test]
async fn backup_via_api_download_and_verify() {
    let s = Server::start().await;
    // The job runner's health is part of the node's.
    let health: Value = s
        .http
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health, json!({"status": "ok", "jobs": "ok"}));
    let (account, token) = s.account("Backups");
    add_contacts(&s, &token, 250, "c").await;
    // A sensitive property, flagged in the manifest.
    let (st, _) = s
        .call(&token, "POST", "/crm/v3/properties/contacts", Some(json!({
            "name": "passport_no", "label": "Passport number", "type": "string", "fieldType": "text",
            "groupName": "contactinformation", "dataSensitivity": "sensitive"
        })))
        .await;
    assert_eq!(st, 201);
    let (st, company) = s
        .call(
            &token,
            "POST",
            "/crm/v3/objects/companies",
            Some(json!({"properties": {"name": "Acme", "domain": "acme.example"}})),
        )
        .await;
    assert_eq!(st, 201);
    // Notes are activities: never in a backup.
    s.call(
        &token,
        "POST",
        "/crm/v3/objects/notes",
        Some(json!({"properties": {"hs_timestamp": "2026-01-01T00:00:00Z", "hs_note_body": "x"}})),
    )
    .await;
    let (st, archived) = s
        .call(
            &token,
            "POST",
            "/crm/v3/objects/contacts",
            Some(json!({"properties": {"email": "gone@example.com"}})),
        )
        .await;
    assert_eq!(st, 201);
    let gone = archived["id"].as_str().unwrap();
    assert_eq!(
        s.call(
            &token,
            "DELETE",
            &format!("/crm/v3/objects/contacts/{gone}"),
            None
        )
        .await
        .0,
        204
    );

    let (st, b) = s.call(&token, "POST", "/kontor/v1/backups", None).await;
    assert_eq!(st, 202, "{b}");
    assert_eq!(b["includesSensitiveData"], true);
    let id = b["id"].as_str().unwrap().to_string();
    // One at a time: a second request while this one is queued or running is refused...
    let (st, v) = s.call(&token, "POST", "/kontor/v1/backups", None).await;
    if st == 409 {
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains("one backup runs at a time"),
            "{v}"
        );
    } else {
        // ...unless it already finished, and then the tier's week applies.
        assert_eq!(st, 429, "{v}");
    }
    let done = wait_for_backup(&s, &token, &id, "COMPLETED").await;
    assert_eq!(done["records"], 251);
    assert!(done["snapshotAt"].is_string() && done["sizeBytes"].as_i64().unwrap() > 0);
    assert_eq!(done["progress"]["percent"], 100);

    // Professional: once per 7 days, counted from this backup's start.
    let (st, v) = s.call(&token, "POST", "/kontor/v1/backups", None).await;
    assert_eq!(st, 429, "{v}");
    assert_eq!(v["category"], "RATE_LIMITS");
    let next = v["context"]["nextAllowedAt"][0].as_str().unwrap();
    let shown = format!("{} UTC", next[..16].replace('T', " "));
    assert!(v["message"].as_str().unwrap().contains(&shown), "{v}");
    let started = kontor_domain::time::parse_instant(done["startedAt"].as_str().unwrap()).unwrap();
    let next_ms = kontor_domain::time::parse_instant(next).unwrap();
    assert_eq!((next_ms - started) / 1000, 7 * 24 * 3600);

    let (st, list) = s.call(&token, "GET", "/kontor/v1/backups", None).await;
    assert_eq!(st, 200);
    assert_eq!(list["results"][0]["id"], id.as_str());

    // The signed link downloads without a token; a tampered one does not.
    let (st, link) = s
        .call(
            &token,
            "GET",
            &format!("/kontor/v1/backups/{id}/download-link"),
            None,
        )
        .await;
    assert_eq!(st, 200, "{link}");
    let url = link["url"].as_str().unwrap();
    assert!(url.starts_with(&s.base));
    let resp = s.http.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/zip");
    let bytes = resp.bytes().await.unwrap();
    assert_eq!(&bytes[..2], b"PK");
    let tampered = url.replace(&format!("/backups/{id}/"), "/backups/999/");
    assert_eq!(s.http.get(&tampered).send().await.unwrap().status(), 403);
    let last = if url.ends_with('0') { '1' } else { '0' };
    let resigned = format!("{}{last}", &url[..url.len() - 1]);
    assert_eq!(s.http.get(&resigned).send().await.unwrap().status(), 403);
    // Another account's token cannot see this backup.
    let (_, other) = s.account("Other");
    assert_eq!(
        s.call(&other, "GET", &format!("/kontor/v1/backups/{id}"), None)
            .await
            .0,
        404
    );

    // The archive: contacts and companies, not notes; the archived contact is not in it.
    let file = s.data_dir.join("downloaded.zip");
    std::fs::write(&file, &bytes).unwrap();
    let out = kontor(&s.data_dir)
        .args(["backup", "verify"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verified = kontor_archive::verify(&file).unwrap();
    let names: Vec<&str> = verified
        .manifest
        .files
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(names, ["contacts.csv", "companies.csv"]);
    let contacts = &verified.manifest.files[0];
    assert_eq!(contacts.rows, 250);
    assert_eq!(contacts.properties[0].name, "hs_object_id");
    assert!(contacts
        .properties
        .iter()
        .any(|p| p.name == "passport_no" && p.sensitive));
    assert!(contacts
        .properties
        .iter()
        .any(|p| p.name == "email" && !p.sensitive));
    assert_eq!(verified.manifest.account_id.to_string(), account);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut csv_text = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("companies.csv").unwrap(), &mut csv_text)
        .unwrap();
    assert!(
        csv_text.contains(company["id"].as_str().unwrap()) && csv_text.contains("acme.example")
    );
    csv_text.clear();
    std::io::Read::read_to_string(&mut zip.by_name("contacts.csv").unwrap(), &mut csv_text)
        .unwrap();
    assert!(csv_text.contains("\"Name, \"\"7\"\"\"") && csv_text.contains("Köln"));
    assert!(!csv_text.contains("gone@example.com"));

    // A damaged copy fails verification with exit code 1.
    let mut bad = bytes.to_vec();
    let at = bad.len() / 3;
    bad[at] ^= 0xff;
    std::fs::write(&file, &bad).unwrap();
    let out = kontor(&s.data_dir)
        .args(["backup", "verify"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));

    // The CLI lists it and downloads it; the audit log has the request and the downloads.
    let list = s.cli(&["backup", "list", "--account", &account]);
    assert!(list.starts_with(&format!("{id}\tcompleted\t")), "{list}");
    let copy = s.data_dir.join("copy.zip");
    // (`--account` says whose: on a database shared with other tests, other accounts have a
    // backup of this number too, and the CLI refuses to guess.)
    s.cli(&[
        "backup",
        "download",
        &id,
        "--account",
        &account,
        "-o",
        copy.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&copy).unwrap(), bytes.to_vec());
    let audit = s.cli(&["admin", "account", "list"]);
    assert!(audit.contains("Backups"));
}

#[tokio::test]
async fn a_backup_survives_repeated_kill_9() {
    // A short lease, so a restarted server takes the job over soon; not shorter, or a
    // heartbeat late on a busy machine (the other tests run beside this one) lets the lease
    // lapse and the job is taken up again without a kill, which the count below forbids.
    let env = [("KONTOR_JOB_LEASE_SECONDS", "3")];
    let mut s = Server::start_with(None, &env).await;
    let (account, token) = s.account("Crashy");
    add_contacts(&s, &token, 30_000, "k").await;
    let published = |dir: &std::path::Path| -> Vec<String> {
        let d = files_root(dir).join(format!("us/files/backups/{account}"));
        let mut v: Vec<String> = std::fs::read_dir(d)
            .map(|r| {
                r.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.retain(|n| !n.starts_with('.'));
        v.sort();
        v
    };
    // A backup of 30,000 records can finish before the first kill lands on a busy machine
    // (on PostgreSQL it takes well under a second, and while other tests run the poll below
    // may see the job taken up only as it ends); then another backup is taken (as the
    // operator, past the interval) until one is killed while it runs.
    let mut ids = Vec::new();
    let mut landed = false;
    for backup in 0..30 {
        let id = if backup == 0 {
            let (st, b) = s.call(&token, "POST", "/kontor/v1/backups", None).await;
            assert_eq!(st, 202);
            b["id"].as_str().unwrap().to_string()
        } else {
            s.cli(&[
                "backup",
                "create",
                "--account",
                &account,
                "--ignore-interval",
            ])
            .trim()
            .to_string()
        };
        ids.push(id.clone());
        let mut kills = 0;
        for round in 0..4 {
            // Wait until a runner has taken the job up (again), then kill at a random moment
            // while it writes.
            let deadline = Instant::now() + Duration::from_secs(30);
            let now = loop {
                let (_, now) = s
                    .call(&token, "GET", &format!("/kontor/v1/backups/{id}"), None)
                    .await;
                if now["status"] == "COMPLETED" || now["attempts"].as_i64() > Some(kills) {
                    break now;
                }
                assert!(
                    Instant::now() < deadline,
                    "round {round}: not taken up: {now}"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            };
            if now["status"] == "COMPLETED" {
                break;
            }
            // At most a couple of milliseconds in: a 30,000-record backup takes longer.
            tokio::time::sleep(Duration::from_millis(rand_u64() % 3)).await;
            let dir = s.kill9();
            kills += 1;
            // Nothing half-written is ever visible under the archive's name: a file there
            // (the kill came after the rename, before the completion was recorded) is whole.
            for name in published(&dir) {
                let path = files_root(&dir).join(format!("us/files/backups/{account}/{name}"));
                assert!(
                    kontor_archive::verify(&path).is_ok(),
                    "round {round}: {name} is published but not whole"
                );
            }
            s = Server::start_with(Some(dir), &env).await;
            s.keep_dir = false;
        }
        let done = wait_for_backup(&s, &token, &id, "COMPLETED").await;
        assert_eq!(done["records"], 30_000);
        // Each kill that landed while the job ran cost one attempt.
        let attempts = done["attempts"].as_i64().unwrap();
        assert!(attempts <= kills + 1, "{done}");
        let path =
            files_root(&s.data_dir).join(format!("us/files/backups/{account}/backup-{id}.zip"));
        let verified = kontor_archive::verify(&path).unwrap();
        assert_eq!(verified.rows, 30_000);
        if attempts >= 2 {
            landed = true;
            break;
        }
    }
    assert!(
        landed,
        "no kill landed while a job ran, in {} backups",
        ids.len()
    );
    let mut want: Vec<String> = ids.iter().map(|id| format!("backup-{id}.zip")).collect();
    want.sort();
    assert_eq!(published(&s.data_dir), want);
    // Leftover temporary files of killed attempts are cleared when the job is taken up again.
    let dir = files_root(&s.data_dir).join(format!("us/files/backups/{account}"));
    let leftovers = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .count();
    assert!(leftovers <= 1, "{leftovers} temporary files left");
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}
