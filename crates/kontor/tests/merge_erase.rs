//! Merges and GDPR deletes against backups and restores: a restore from a backup taken before
//! never brings an erased contact back, nor keeps its values, nor re-creates a merged record;
//! and the audit log records both without the person's data.

use serde_json::{json, Value};

mod common;
use common::console::{sign_in, user};
use common::restore::*;
use common::*;

async fn contact(s: &Server, token: &str, props: Value) -> String {
    let (st, v) = s
        .call(
            token,
            "POST",
            "/crm/v3/objects/contacts",
            Some(json!({ "properties": props })),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    v["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_restore_respects_merges_and_erasures() {
    let s = Server::start().await;
    let (account, token) = s.account("Merges and erasures");
    let a = contact(
        &s,
        &token,
        json!({"email": "ada@example.com", "firstname": "Ada"}),
    )
    .await;
    let b = contact(
        &s,
        &token,
        json!({"email": "ada.l@example.com", "firstname": "Augusta", "city": "London"}),
    )
    .await;
    let c = contact(
        &s,
        &token,
        json!({"email": "erin@example.com", "firstname": "Erin", "city": "Dublin"}),
    )
    .await;
    let backup_id = backup(&s, &token).await;

    let (st, m) = s
        .call(
            &token,
            "POST",
            "/crm/v3/objects/contacts/merge",
            Some(json!({"primaryObjectId": a, "objectIdToMerge": b})),
        )
        .await;
    assert_eq!(st, 200, "{m}");
    let (st, e) = s
        .call(
            &token,
            "POST",
            "/crm/v3/objects/contacts/gdpr-delete",
            Some(json!({"objectId": c})),
        )
        .await;
    assert_eq!(st, 204, "{e}");

    // The plan counts the merged and the erased contact as missing.
    let p = plan(&s, &token, &backup_id, &["firstname", "city"]).await;
    assert_eq!(p["summary"]["recordsMissing"], 2, "{p}");
    let (st, r) = apply(&s, &token, &p, true).await;
    assert_eq!(st, 202, "{r}");
    let rid = r["id"].as_str().unwrap().to_string();
    let done = wait_restore(&s, &token, &rid).await;
    assert_eq!(done["state"], "DONE", "{done}");

    // Nothing came back: the erased contact stays gone, the merged id still leads to the
    // primary, and no third contact exists.
    let (st, _) = s
        .call(
            &token,
            "GET",
            &format!("/crm/v3/objects/contacts/{c}"),
            None,
        )
        .await;
    assert_eq!(st, 404);
    let (st, v) = s
        .call(
            &token,
            "GET",
            &format!("/crm/v3/objects/contacts/{b}?properties=firstname"),
            None,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["id"], a.as_str());
    let (_, all) = s
        .call(&token, "GET", "/crm/v3/objects/contacts?limit=100", None)
        .await;
    assert_eq!(all["results"].as_array().unwrap().len(), 1, "{all}");

    // The restore's rejected rows say why, and hold none of the erased contact's values.
    let (st, errors) = s
        .call(
            &token,
            "GET",
            &format!("/crm/v3/imports/{rid}/errors?limit=100"),
            None,
        )
        .await;
    assert_eq!(st, 200, "{errors}");
    let text = errors.to_string();
    assert!(text.contains("GDPR"), "{text}");
    assert!(text.contains(&format!("merged into {a}")), "{text}");
    assert!(
        !text.contains("Erin") && !text.contains("erin@example.com") && !text.contains("Dublin"),
        "{text}"
    );

    // The audit log has both, by id only.
    let (_, password) = user(&s, &account, "auditor@example.com", "admin");
    let session = sign_in(&s, "auditor@example.com", &password).await;
    let log = common::console::console_page(&s, &session.0, "/app/settings/audit").await;
    assert!(
        log.contains("record.merge") && log.contains("record.gdpr-delete"),
        "{log}"
    );
    assert!(
        !log.contains("erin@example.com") && !log.contains("Erin"),
        "{log}"
    );
}
