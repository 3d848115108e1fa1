//! What runs across a data move: an import under way, and a backup made before it.

use super::*;

/// Moves the account with `kontor migration run`, bounded: a move that does not end in
/// 3 minutes fails the test with what the CLI said.
async fn move_to_end(s: &Server, account: &str, to: &str) {
    let mut cli = start_move(&s.data_dir, account, to);
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Some(status) = cli.try_wait().unwrap() {
            assert!(
                status.success(),
                "{}",
                std::fs::read_to_string(cli_log(&s.data_dir)).unwrap_or_default()
            );
            return;
        }
        if Instant::now() > deadline {
            let _ = cli.kill();
            panic!(
                "the move did not end in 3 minutes; the CLI said: {}",
                std::fs::read_to_string(cli_log(&s.data_dir)).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An import running when a move starts finishes once, in the new region: every row of its
/// file becomes one contact, none twice, and the import reads DONE there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_running_during_a_move_finishes_once() {
    const ROWS: usize = 20_000;
    let s = Server::start_with(None, &ENV).await;
    let (account, token) = s.account("importing while moving");
    let mut csv = String::from("email,firstname\n");
    for i in 0..ROWS {
        csv.push_str(&format!("imp{i}@moves.test,Row {i}\n"));
    }
    let request = json!({"name": "big import", "files": [{"fileName": "big.csv", "fileFormat": "CSV", "fileImportPage": {"hasHeader": true, "columnMappings": [
        {"columnName": "email", "propertyName": "email", "columnObjectTypeId": "0-1"},
        {"columnName": "firstname", "propertyName": "firstname", "columnObjectTypeId": "0-1"}]}}]});
    let (status, imp) = post_import(&s, &token, &request, &csv).await;
    assert_eq!(status, 200, "{imp}");
    let id = imp["id"].as_str().unwrap().to_string();
    // Once it is under way, the account moves.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, r) = s
            .call(&token, "GET", &format!("/crm/v3/imports/{id}"), None)
            .await;
        if r["state"] == "PROCESSING" {
            break;
        }
        assert!(Instant::now() < deadline && r["state"] == "STARTED", "{r}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    move_to_end(&s, &account, "eu").await;
    let done = wait_import(&s, &token, &id).await;
    assert_eq!(done["state"], "DONE", "{done}");
    let (_, found) = s
        .call(
            &token,
            "POST",
            "/crm/v3/objects/contacts/search",
            Some(json!({"limit": 1})),
        )
        .await;
    assert_eq!(found["total"], ROWS, "every row once: {found}");
    let listed = s.cli(&["admin", "account", "list"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&format!("{account}\teu\t"))),
        "{listed}"
    );
}

/// A backup made before a move downloads after it, from the new region: the signed link made
/// before the move still works and gives the same archive, a new link works too, and the old
/// region's file store keeps nothing of the account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_made_before_a_move_downloads_after_it() {
    let s = Server::start_with(None, &ENV).await;
    let (account, token) = s.account("backed up, then moved");
    let inputs: Vec<_> = (0..50)
        .map(|i| json!({"properties": {"email": format!("b{i}@moves.test")}}))
        .collect();
    let (status, v) = s
        .call(
            &token,
            "POST",
            "/crm/v3/objects/contacts/batch/create",
            Some(json!({"inputs": inputs})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let (status, backup) = s.call(&token, "POST", "/kontor/v1/backups", None).await;
    assert_eq!(status, 202, "{backup}");
    let id = backup["id"].as_str().unwrap().to_string();
    wait_for_backup(&s, &token, &id, "COMPLETED").await;
    let link_path = format!("/kontor/v1/backups/{id}/download-link");
    let (_, link) = s.call(&token, "GET", &link_path, None).await;
    let before_url = link["url"].as_str().unwrap().to_string();
    let before = s.http.get(&before_url).send().await.unwrap();
    assert_eq!(before.status(), 200);
    let before = before.bytes().await.unwrap();

    move_to_end(&s, &account, "eu").await;

    let after = s.http.get(&before_url).send().await.unwrap();
    assert_eq!(after.status(), 200, "the link made before the move");
    assert_eq!(after.bytes().await.unwrap(), before, "the same archive");
    let (status, link) = s.call(&token, "GET", &link_path, None).await;
    assert_eq!(status, 200, "{link}");
    let fresh = s
        .http
        .get(link["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), 200);
    assert_eq!(fresh.bytes().await.unwrap(), before);
    let old = files_root(&s.data_dir)
        .join("us")
        .join("files")
        .join("backups")
        .join(&account);
    let kept = std::fs::read_dir(&old).map(|d| d.count()).unwrap_or(0);
    assert_eq!(
        kept,
        0,
        "{} still holds files of the account",
        old.display()
    );
}
