//! Other users of the machine cannot read what kontor writes: databases, backup archives,
//! outbox e-mails with live download links, the server key.
#![cfg(unix)]

mod common;

use common::{wait_for_backup, Server};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Every file and folder under `root` that users other than the owner can reach.
fn open_to_others(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.permissions().mode() & 0o077 != 0 {
            found.push(format!(
                "{} {:o}",
                p.display(),
                meta.permissions().mode() & 0o777
            ));
        }
        if meta.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
    }
    found
}

fn count_files(root: &Path, suffix: &str) -> usize {
    let mut n = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else if p.to_string_lossy().ends_with(suffix) {
            n += 1;
        }
    }
    n
}

#[tokio::test]
async fn databases_archives_mail_and_the_key_are_private_to_the_server_user() {
    // A data folder an older version left open, as `mkdir` makes it.
    let data_dir = std::env::temp_dir().join(format!("kontor-private-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    std::fs::create_dir_all(&data_dir).unwrap();
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o755)).unwrap();

    let s = Server::start_with(Some(data_dir.clone()), &[]).await;
    let (_, token) = s.account("Private");
    s.call(
        &token,
        "POST",
        "/crm/v3/objects/contacts",
        Some(serde_json::json!({"properties": {"email": "a@private.example"}})),
    )
    .await;
    let (st, b) = s.call(&token, "POST", "/kontor/v1/backups", None).await;
    assert_eq!(st, 202, "{b}");
    wait_for_backup(&s, &token, b["id"].as_str().unwrap(), "COMPLETED").await;

    let files = common::files_root(&data_dir);
    assert!(count_files(&files, ".zip") >= 1, "the archive was written");
    if std::env::var("KONTOR_DATABASE_US").is_err() {
        assert!(
            count_files(&data_dir, ".db") >= 2,
            "the SQLite databases are here"
        );
    }
    assert!(data_dir.join("secret.key").exists());
    let mut open = open_to_others(&data_dir);
    if files != data_dir.join("regions") {
        open.extend(open_to_others(&files));
    }
    assert!(open.is_empty(), "open to other users: {open:#?}");

    // A key file others can read is refused, with the command that fixes it.
    let key = data_dir.join("secret.key");
    s.kill9();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = common::kontor(&data_dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "the server does not start");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("chmod 600"), "{err}");
    let _ = std::fs::remove_dir_all(&data_dir);
}
