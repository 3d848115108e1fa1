//! Backups and restores through the server's API: take a backup and wait for it, plan a
//! restore of contacts' properties, apply it and wait for it.

use super::Server;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Takes a backup and waits until it is complete; returns its id.
pub async fn backup(s: &Server, token: &str) -> String {
    let (st, b) = s.call(token, "POST", "/kontor/v1/backups", None).await;
    assert_eq!(st, 202, "{b}");
    let id = b["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, b) = s
            .call(token, "GET", &format!("/kontor/v1/backups/{id}"), None)
            .await;
        if b["status"] == "COMPLETED" {
            return id;
        }
        assert_ne!(b["status"], "FAILED", "{b}");
        assert!(Instant::now() < deadline, "backup stuck: {b}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until a restore has ended; returns it.
pub async fn wait_restore(s: &Server, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (st, r) = s
            .call(token, "GET", &format!("/kontor/v1/restores/{id}"), None)
            .await;
        assert_eq!(st, 200, "{r}");
        if r["state"] != "STARTED" && r["state"] != "PROCESSING" {
            return r;
        }
        assert!(Instant::now() < deadline, "restore stuck: {r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A restore plan of contacts' `props` from `backup`.
pub async fn plan(s: &Server, token: &str, backup: &str, props: &[&str]) -> Value {
    let (st, p) = s
        .call(
            token,
            "POST",
            "/kontor/v1/restores/plans",
            Some(json!({"backupId": backup, "objectType": "contacts", "properties": props})),
        )
        .await;
    assert_eq!(st, 201, "{p}");
    p
}

/// Applies a plan, acknowledging what it changes.
pub async fn apply(s: &Server, token: &str, plan: &Value, overwrite: bool) -> (u16, Value) {
    s.call(
        token,
        "POST",
        "/kontor/v1/restores",
        Some(json!({"planId": plan["id"], "acknowledgeChanges": true,
            "acknowledgeRevertOnly": true, "overwriteNewer": overwrite})),
    )
    .await
}
