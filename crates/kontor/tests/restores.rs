//! Restores through the real server and CLI: plan counts, apply, conflicts with changes made
//! after the review, revert, one restore at a time, tampered archives, and a restore that
//! survives repeated `kill -9`.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

mod common;
use common::restore::*;
use common::*;

async fn add_contacts(s: &Server, token: &str, n: usize, tag: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for start in (0..n).step_by(100) {
        let inputs: Vec<Value> = (start..(start + 100).min(n))
            .map(|i| {
                json!({"properties": {
                    "email": format!("{tag}{i}@example.com"),
                    "firstname": format!("First {i}"),
                    "city": format!("City {}", i % 7),
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
        for r in v["results"].as_array().unwrap() {
            ids.push(r["id"].as_str().unwrap().to_string());
        }
    }
    ids.sort_by_key(|i| i.parse::<i64>().unwrap());
    ids
}

async fn update(s: &Server, token: &str, updates: Vec<(String, Value)>) {
    for chunk in updates.chunks(100) {
        let inputs: Vec<Value> = chunk
            .iter()
            .map(|(id, p)| json!({"id": id, "properties": p}))
            .collect();
        let (st, v) = s
            .call(
                token,
                "POST",
                "/crm/v3/objects/contacts/batch/update",
                Some(json!({"inputs": inputs})),
            )
            .await;
        assert_eq!(st, 200, "{v}");
    }
}

/// Every contact's given properties, by id.
async fn values(
    s: &Server,
    token: &str,
    props: &[&str],
) -> BTreeMap<String, BTreeMap<String, Option<String>>> {
    let mut out = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let mut path = format!(
            "/crm/v3/objects/contacts?limit=100&properties={}",
            props.join(",")
        );
        if let Some(a) = &after {
            path.push_str(&format!("&after={a}"));
        }
        let (st, v) = s.call(token, "GET", &path, None).await;
        assert_eq!(st, 200, "{v}");
        for r in v["results"].as_array().unwrap() {
            let mut m = BTreeMap::new();
            for p in props {
                m.insert(
                    p.to_string(),
                    r["properties"][p]
                        .as_str()
                        .filter(|s| !s.is_empty())
                        .map(str::to_string),
                );
            }
            out.insert(r["id"].as_str().unwrap().to_string(), m);
        }
        match v["paging"]["next"]["after"].as_str() {
            Some(a) => after = Some(a.to_string()),
            None => return out,
        }
    }
}

fn prop_counts(plan: &Value, name: &str) -> (i64, i64) {
    let p = plan["summary"]["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap();
    (
        p["changed"].as_i64().unwrap(),
        p["cleared"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn restore_plan_apply_conflicts_and_revert() {
    let s = Server::start().await;
    let (_account, token) = s.account("Restores");
    let ids = add_contacts(&s, &token, 300, "r").await;
    let before = values(&s, &token, &["firstname", "city", "email"]).await;
    let backup_id = backup(&s, &token).await;

    // After the backup: 100 first names changed, 50 cities cleared, 40 cities set to another
    // value, 5 contacts deleted, 10 created.
    let mut ups = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        let mut p = serde_json::Map::new();
        if n < 100 {
            p.insert("firstname".into(), json!(format!("Changed {n}")));
        }
        if (100..150).contains(&n) {
            p.insert("city".into(), json!(""));
        }
        if (150..190).contains(&n) {
            p.insert("city".into(), json!("Elsewhere"));
        }
        if !p.is_empty() {
            ups.push((id.clone(), Value::Object(p)));
        }
    }
    update(&s, &token, ups).await;
    for id in &ids[290..295] {
        let (st, _) = s
            .call(
                &token,
                "DELETE",
                &format!("/crm/v3/objects/contacts/{id}"),
                None,
            )
            .await;
        assert_eq!(st, 204);
    }
    add_contacts(&s, &token, 10, "late").await;

    // A restore is refused for properties kontor maintains, unknown ones, and types it skips.
    for (body, field) in [
        (
            json!({"backupId": backup_id, "objectType": "contacts", "properties": ["createdate"]}),
            "properties",
        ),
        (
            json!({"backupId": backup_id, "objectType": "contacts", "properties": ["nope"]}),
            "properties",
        ),
        (
            json!({"backupId": backup_id, "objectType": "conversations", "properties": ["x"]}),
            "object",
        ),
    ] {
        let (st, e) = s
            .call(&token, "POST", "/kontor/v1/restores/plans", Some(body))
            .await;
        assert_eq!(st, 400, "{e}");
        assert!(e["message"].as_str().unwrap().len() > 10, "{e} ({field})");
    }

    let p = plan(&s, &token, &backup_id, &["firstname", "city"]).await;
    let sum = &p["summary"];
    assert_eq!(prop_counts(&p, "firstname"), (100, 0), "{p}");
    // The 50 cleared come back (changed); none of the backup's cities were empty.
    assert_eq!(prop_counts(&p, "city"), (90, 0), "{p}");
    assert_eq!(sum["recordsInBackup"], 300);
    assert_eq!(sum["recordsToChange"], 190);
    assert_eq!(sum["recordsUnchanged"], 105);
    assert_eq!(sum["recordsMissing"], 5);
    assert_eq!(sum["recordsNotInBackup"], 10);
    assert!(!sum["sample"].as_array().unwrap().is_empty());

    // Someone edits a planned value after the review: a conflict, left alone.
    update(
        &s,
        &token,
        vec![(ids[0].clone(), json!({"firstname": "Edited after review"}))],
    )
    .await;
    let (st, r) = apply(&s, &token, &p, false).await;
    assert_eq!(st, 202, "{r}");
    assert_eq!(r["importName"], "Data Restore - Contact");
    let rid = r["id"].as_str().unwrap().to_string();
    // A plan is applied once.
    let (st, again) = apply(&s, &token, &p, false).await;
    assert_eq!(st, 409, "{again}");
    let done = wait_restore(&s, &token, &rid).await;
    assert_eq!(done["state"], "DONE", "{done}");
    let c = &done["metadata"]["counters"];
    // Contact 0's only planned change met the conflict: 189 records changed.
    assert_eq!(c["UPDATED_OBJECTS"], 189, "{done}");
    assert_eq!(c["CONFLICTS"], 1, "{done}");
    assert_eq!(c["ERRORS"], 5, "{done}");

    let after = values(&s, &token, &["firstname", "city", "email"]).await;
    for (n, id) in ids.iter().enumerate().take(290) {
        let want = &before[id];
        let got = &after[id];
        if n == 0 {
            assert_eq!(got["firstname"].as_deref(), Some("Edited after review"));
            assert_eq!(got["city"], want["city"]);
        } else {
            assert_eq!(got, want, "contact {id}");
        }
    }
    assert_eq!(after.len(), 300 - 5 + 10);

    // The restore's changes are in the change log with source RESTORE.
    let (_, one) = s
        .call(
            &token,
            "GET",
            &format!(
                "/crm/v3/objects/contacts/{}?propertiesWithHistory=firstname",
                ids[1]
            ),
            None,
        )
        .await;
    assert_eq!(
        one["propertiesWithHistory"]["firstname"][0]["sourceType"], "RESTORE",
        "{one}"
    );
    // The conflict is listed with its reason, as are the deleted records.
    let (st, errs) = s
        .call(
            &token,
            "GET",
            &format!("/crm/v3/imports/{rid}/errors"),
            None,
        )
        .await;
    assert_eq!(st, 200, "{errs}");
    let errs = errs["results"].as_array().unwrap();
    assert_eq!(errs.len(), 6);
    assert!(errs.iter().any(|e| e["errorMessage"]
        .as_str()
        .unwrap()
        .contains("changed after the plan was reviewed")));
    assert!(errs
        .iter()
        .any(|e| e["errorMessage"].as_str().unwrap().contains("recycle bin")));
    // It shows among the imports.
    let (_, list) = s.call(&token, "GET", "/crm/v3/imports", None).await;
    assert!(list["results"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["id"] == rid.as_str() && i["state"] == "DONE"));

    // Revert: a change made since the restore is a conflict and stays.
    update(
        &s,
        &token,
        vec![(ids[2].clone(), json!({"firstname": "Edited after restore"}))],
    )
    .await;
    let (st, rp) = s
        .call(
            &token,
            "POST",
            &format!("/kontor/v1/restores/{rid}/revert"),
            None,
        )
        .await;
    assert_eq!(st, 201, "{rp}");
    assert_eq!(rp["summary"]["recordsToChange"], 188, "{rp}");
    assert_eq!(rp["summary"]["conflicts"], 1, "{rp}");
    let (st, r2) = apply(&s, &token, &rp, false).await;
    assert_eq!(st, 202, "{r2}");
    assert_eq!(r2["importName"], "Data Restore Revert - Contact");
    let done2 = wait_restore(&s, &token, r2["id"].as_str().unwrap()).await;
    assert_eq!(done2["state"], "DONE", "{done2}");
    let reverted = values(&s, &token, &["firstname", "city"]).await;
    for (n, id) in ids.iter().enumerate().take(290) {
        let got = &reverted[id];
        match n {
            0 => assert_eq!(got["firstname"].as_deref(), Some("Edited after review")),
            2 => assert_eq!(got["firstname"].as_deref(), Some("Edited after restore")),
            n if n < 100 => assert_eq!(got["firstname"], Some(format!("Changed {n}"))),
            _ => assert_eq!(got["firstname"], before[id]["firstname"]),
        }
        match n {
            100..150 => assert_eq!(got["city"], None, "contact {id}"),
            150..190 => assert_eq!(got["city"].as_deref(), Some("Elsewhere")),
            _ => assert_eq!(got["city"], before[id]["city"]),
        }
    }
    let (_, orig) = s
        .call(&token, "GET", &format!("/kontor/v1/restores/{rid}"), None)
        .await;
    assert_eq!(orig["state"], "REVERTED", "{orig}");
    // A reverted restore cannot be reverted again.
    let (st, _) = s
        .call(
            &token,
            "POST",
            &format!("/kontor/v1/restores/{rid}/revert"),
            None,
        )
        .await;
    assert_eq!(st, 400);
}

#[tokio::test]
async fn tampered_archive_is_refused_before_a_plan() {
    let s = Server::start().await;
    let (account, token) = s.account("Tampered");
    add_contacts(&s, &token, 50, "t").await;
    let backup_id = backup(&s, &token).await;
    let path = files_root(&s.data_dir)
        .join("us/files/backups")
        .join(&account)
        .join(format!("backup-{backup_id}.zip"));
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    let (st, e) = s
        .call(
            &token,
            "POST",
            "/kontor/v1/restores/plans",
            Some(json!({"backupId": backup_id, "objectType": "contacts", "properties": ["firstname"]})),
        )
        .await;
    assert_eq!(st, 400, "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("failed its check"),
        "{e}"
    );
    // Truncated: refused as well.
    std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    let (st, e) = s
        .call(
            &token,
            "POST",
            "/kontor/v1/restores/plans",
            Some(json!({"backupId": backup_id, "objectType": "contacts", "properties": ["firstname"]})),
        )
        .await;
    assert_eq!(st, 400, "{e}");
}

#[tokio::test]
async fn a_restore_survives_repeated_kill_9() {
    // A short lease, so a restarted server takes the job over quickly; longer than a batch's
    // statement takes on a busy machine (2.5 s seen on PostgreSQL), or the runner's own lease
    // runs out under it and every attempt is taken over until the job gives up.
    let env = [("KONTOR_JOB_LEASE_SECONDS", "3")];
    let mut s = Server::start_with(None, &env).await;
    let (_account, token) = s.account("Crashy restore");
    let ids = add_contacts(&s, &token, 30_000, "k").await;
    let before = values(&s, &token, &["firstname", "city"]).await;
    let backup_id = backup(&s, &token).await;
    let ups = ids
        .iter()
        .enumerate()
        .map(|(n, id)| {
            let city = if n % 3 == 0 {
                json!("")
            } else {
                json!("Moved")
            };
            (
                id.clone(),
                json!({"firstname": format!("Renamed {n}"), "city": city}),
            )
        })
        .collect();
    update(&s, &token, ups).await;
    let p = plan(&s, &token, &backup_id, &["firstname", "city"]).await;
    assert_eq!(p["summary"]["recordsToChange"], 30_000, "{p}");
    let (st, r) = apply(&s, &token, &p, false).await;
    assert_eq!(st, 202, "{r}");
    let rid = r["id"].as_str().unwrap().to_string();

    let mut kills = 0;
    let mut seen = 0;
    for round in 0..5 {
        // Wait until the job has made progress beyond what the last runner committed, then
        // kill at once: mid-batch or between batches.
        let deadline = Instant::now() + Duration::from_secs(60);
        let now = loop {
            let (_, now) = s
                .call(&token, "GET", &format!("/kontor/v1/restores/{rid}"), None)
                .await;
            let done = now["progress"]["done"].as_i64().unwrap();
            if now["state"] == "DONE" || done > seen {
                seen = done;
                break now;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: no progress: {now}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        if now["state"] == "DONE" {
            break;
        }
        s.kill9_and_restart(&env).await;
        kills += 1;
    }
    assert!(kills >= 2, "the restore finished after {kills} kills");
    let done = wait_restore(&s, &token, &rid).await;
    assert_eq!(done["state"], "DONE", "{done}");
    let c = &done["metadata"]["counters"];
    // Each record changed exactly once, nothing reported twice.
    assert_eq!(c["UPDATED_OBJECTS"], 30_000, "{done}");
    assert_eq!(c["UNCHANGED_OBJECTS"], 0, "{done}");
    assert_eq!(c["ERRORS"], 0, "{done}");
    assert_eq!(c["CONFLICTS"], 0, "{done}");
    // The state an uninterrupted run gives: every value as in the backup.
    assert_eq!(values(&s, &token, &["firstname", "city"]).await, before);
    // One RESTORE entry per record in the change log, however often the job was cut off.
    for id in [&ids[0], &ids[12_345], &ids[29_999]] {
        let (_, one) = s
            .call(
                &token,
                "GET",
                &format!("/crm/v3/objects/contacts/{id}?propertiesWithHistory=firstname,city"),
                None,
            )
            .await;
        for p in ["firstname", "city"] {
            let restores = one["propertiesWithHistory"][p]
                .as_array()
                .unwrap()
                .iter()
                .filter(|h| h["sourceType"] == "RESTORE")
                .count();
            assert_eq!(restores, 1, "{p} of {id}: {one}");
        }
    }
}

#[tokio::test]
async fn restoring_a_unique_property_keeps_values_unique() {
    let s = Server::start().await;
    let (_account, token) = s.account("Unique restore");
    let ids = add_contacts(&s, &token, 3, "u").await;
    let backup_id = backup(&s, &token).await;
    // Contact 0 gets a new address and someone new takes its old one; contact 1 only moves.
    update(
        &s,
        &token,
        vec![
            (ids[0].clone(), json!({"email": "moved0@example.com"})),
            (ids[1].clone(), json!({"email": "moved1@example.com"})),
        ],
    )
    .await;
    let (st, taker) = s
        .call(
            &token,
            "POST",
            "/crm/v3/objects/contacts",
            Some(json!({"properties": {"email": "u0@example.com"}})),
        )
        .await;
    assert_eq!(st, 201, "{taker}");
    let p = plan(&s, &token, &backup_id, &["email"]).await;
    assert_eq!(prop_counts(&p, "email"), (2, 0), "{p}");
    let (st, r) = apply(&s, &token, &p, false).await;
    assert_eq!(st, 202, "{r}");
    let rid = r["id"].as_str().unwrap().to_string();
    let done = wait_restore(&s, &token, &rid).await;
    assert_eq!(done["metadata"]["counters"]["UPDATED_OBJECTS"], 1, "{done}");
    assert_eq!(done["metadata"]["counters"]["ERRORS"], 1, "{done}");
    let (_, errs) = s
        .call(
            &token,
            "GET",
            &format!("/crm/v3/imports/{rid}/errors"),
            None,
        )
        .await;
    let e = &errs["results"][0];
    assert_eq!(e["errorType"], "DUPLICATE_UNIQUE_PROPERTY_VALUE", "{errs}");
    assert!(e["errorMessage"]
        .as_str()
        .unwrap()
        .contains(taker["id"].as_str().unwrap()));
    let now = values(&s, &token, &["email"]).await;
    assert_eq!(now[&ids[0]]["email"].as_deref(), Some("moved0@example.com"));
    assert_eq!(now[&ids[1]]["email"].as_deref(), Some("u1@example.com"));
    // The unique index moved with the value: the old address is free, the restored one taken.
    let create = |email: &str| json!({"properties": {"email": email}});
    let (st, _) = s
        .call(
            &token,
            "POST",
            "/crm/v3/objects/contacts",
            Some(create("moved1@example.com")),
        )
        .await;
    assert_eq!(st, 201);
    let (st, e) = s
        .call(
            &token,
            "POST",
            "/crm/v3/objects/contacts",
            Some(create("U1@example.com")),
        )
        .await;
    assert_eq!(st, 409, "{e}");
}

#[tokio::test]
async fn the_operator_restores_on_the_command_line() {
    let s = Server::start().await;
    let (account, token) = s.account("CLI restore");
    let ids = add_contacts(&s, &token, 120, "cli").await;
    let before = values(&s, &token, &["firstname", "city"]).await;
    let backup_id = backup(&s, &token).await;
    update(
        &s,
        &token,
        ids.iter()
            .take(40)
            .map(|id| (id.clone(), json!({"firstname": "Oops", "city": "Nowhere"})))
            .collect(),
    )
    .await;
    let plan_id = s.cli(&[
        "restore",
        "plan",
        "--backup",
        &backup_id,
        "--object",
        "contacts",
        "--properties",
        "firstname",
        // Other tests' accounts have backups with the same id when they share a database.
        "--account",
        &account,
    ]);
    let (st, p) = s
        .call(
            &token,
            "GET",
            &format!("/kontor/v1/restores/plans/{plan_id}"),
            None,
        )
        .await;
    assert_eq!(st, 200, "{p}");
    assert_eq!(p["summary"]["recordsToChange"], 40);
    assert_eq!(p["createdBy"], "operator");
    // Without a terminal, applying needs --yes.
    let out = kontor(&s.data_dir)
        .args(["restore", "apply", &plan_id, "--account", &account])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
    let restore_id = s.cli(&["restore", "apply", &plan_id, "--account", &account, "--yes"]);
    let done = wait_restore(&s, &token, &restore_id).await;
    assert_eq!(done["state"], "DONE", "{done}");
    assert_eq!(done["createdBy"], "operator");
    assert_eq!(done["metadata"]["counters"]["UPDATED_OBJECTS"], 40);
    let now = values(&s, &token, &["firstname", "city"]).await;
    for id in &ids[..40] {
        assert_eq!(now[id]["firstname"], before[id]["firstname"]);
        assert_eq!(
            now[id]["city"].as_deref(),
            Some("Nowhere"),
            "not restored: city"
        );
    }
    let listed = s.cli(&["restore", "list", "--account", &account]);
    assert!(
        listed.starts_with(&format!("{restore_id}\tData Restore - Contact\tDONE\t40\t")),
        "{listed}"
    );
    // The revert plan, from the command line too.
    let revert_plan = s.cli(&["restore", "revert", &restore_id, "--account", &account]);
    let (_, rp) = s
        .call(
            &token,
            "GET",
            &format!("/kontor/v1/restores/plans/{revert_plan}"),
            None,
        )
        .await;
    assert_eq!(rp["kind"], "revert");
    assert_eq!(rp["summary"]["recordsToChange"], 40);
}
