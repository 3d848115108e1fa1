//! Uninstalling the Salesforce integration against the fake Salesforce, through the real
//! server: the impact preview, the checks of the request, the job (pending changes sent or
//! discarded, the token revoked, the integration's data kept 48 hours or deleted), the notice,
//! the reassignment of the Salesforce-only owners' records and its revert, the owner cleanup,
//! and a reconnect after keeping that re-links instead of duplicating. Through the API, the
//! console's forms and the operator's CLI.

mod common;

use common::console::{console_page, console_post, user};
use common::salesforce::{connect, setup, status, sync, Setup};
use common::{mails_to, Server};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const BASE: &str = "/kontor/v1/integrations/salesforce";

/// Salesforce users: one with the kontor admin's e-mail, Rita with none here; an account and
/// contacts owned by Rita, one contact by the admin. Connected and synced once.
async fn connected_with_records(t: &Setup) -> Vec<String> {
    let ids = t.fake.ada_and_rita().await;
    let accounts = t
        .fake
        .insert("Account", json!([{"Name": "Globex", "OwnerId": ids[1]}]))
        .await;
    let contacts = t
        .fake
        .insert(
            "Contact",
            json!([
                {"FirstName": "Grace", "LastName": "Hopper", "Email": "grace@globex.test", "AccountId": accounts[0], "OwnerId": ids[1]},
                {"FirstName": "Alan", "LastName": "Turing", "Email": "alan@globex.test", "OwnerId": ids[1]},
                {"FirstName": "Edsger", "LastName": "Dijkstra", "Email": "edsger@globex.test", "OwnerId": ids[0]}
            ]),
        )
        .await;
    connect(&t.server, &t.session, &t.fake, &t.token).await;
    let after = sync(t).await;
    assert_eq!(after["counts"]["linked"]["contacts"], 3, "{after}");
    contacts
}

async fn get(s: &Server, token: &str, path: &str) -> Value {
    let (st, v) = s.call(token, "GET", path, None).await;
    assert_eq!(st, 200, "{path}: {v}");
    v
}

/// A kontor contact's properties by e-mail.
async fn contact(s: &Server, token: &str, email: &str) -> Value {
    let (st, v) = s
        .call(
            token,
            "POST",
            "/crm/v3/objects/contacts/search",
            Some(json!({
                "filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": email}]}],
                "properties": ["email", "phone", "hubspot_owner_id", "salesforcecontactid"],
            })),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["total"], 1, "one contact {email}: {v}");
    v["results"][0].clone()
}

async fn set_phone(s: &Server, token: &str, id: &str, phone: &str) {
    let (st, v) = s
        .call(
            token,
            "PATCH",
            &format!("/crm/v3/objects/contacts/{id}"),
            Some(json!({"properties": {"phone": phone}})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
}

async fn wait_uninstall(s: &Server, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let u = get(s, token, &format!("{BASE}/uninstall/{id}")).await;
        if u["state"] == "DONE" || u["state"] == "FAILED" {
            return u;
        }
        assert!(Instant::now() < deadline, "the uninstall did not end: {u}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_reassignment(s: &Server, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = get(s, token, &format!("{BASE}/owners/reassignments/{id}")).await;
        if r["state"] == "DONE" || r["state"] == "FAILED" {
            assert_eq!(r["state"], "DONE", "{r}");
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "the reassignment did not end: {r}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn owner_by_email<'a>(owners: &'a Value, email: &str) -> &'a Value {
    owners["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["email"] == email)
        .unwrap_or_else(|| panic!("no Salesforce owner {email}: {owners}"))
}

#[tokio::test]
async fn uninstall_keeping_the_data_then_reassign_clean_up_and_reconnect() {
    let t = setup().await;
    let (s, fake, token) = (&t.server, &t.fake, t.token.as_str());
    let contacts = connected_with_records(&t).await;
    let grace = contact(s, token, "grace@globex.test").await;
    let grace_id = grace["id"].as_str().unwrap().to_string();
    let rita_owner = grace["properties"]["hubspot_owner_id"]
        .as_str()
        .unwrap()
        .to_string();

    // A change not yet sent: the round that would send it has not run.
    set_phone(s, token, &grace_id, "555-0199").await;

    // The impact, before anything is done.
    let preview = get(s, token, &format!("{BASE}/uninstall")).await;
    let i = &preview["impact"];
    assert_eq!(preview["connected"], true, "{preview}");
    assert_eq!(i["records"]["contacts"], 3, "{i}");
    assert_eq!(i["records"]["companies"], 1, "{i}");
    assert!(i["properties"].as_i64().unwrap() >= 5, "{i}");
    assert!(i["values"].as_i64().unwrap() >= 4, "{i}");
    assert!(i["mappings"].as_i64().unwrap() > 0, "{i}");
    assert_eq!(i["ownedBySalesforceOnly"]["contacts"], 2, "{i}");
    assert_eq!(i["ownedBySalesforceOnly"]["companies"], 1, "{i}");
    assert!(i["pendingChanges"].as_i64().unwrap() >= 1, "{i}");
    let page = console_page(
        s,
        &t.session.0,
        "/app/settings/integrations/salesforce/uninstall",
    )
    .await;
    assert!(page.contains("not a fix for sync errors"), "{page}");
    assert!(page.contains("#sf-errors"), "the page links to the errors");

    // Bad requests change nothing.
    let body = |reason: &str, confirm: &str| json!({"reason": reason, "confirmation": confirm, "pendingChanges": "PUSH", "integrationData": "KEEP_48_HOURS"});
    let (st, v) = s
        .call(
            token,
            "POST",
            &format!("{BASE}/uninstall"),
            Some(body("", "Uninstall Salesforce")),
        )
        .await;
    assert_eq!(st, 400, "a reason is required: {v}");
    let (st, v) = s
        .call(
            token,
            "POST",
            &format!("{BASE}/uninstall"),
            Some(body("Sync errors", "uninstall salesforce")),
        )
        .await;
    assert_eq!(st, 400, "the words must be typed exactly: {v}");
    let (st, _) = s
        .call(token, "POST", &format!("{BASE}/uninstall"), Some(json!({"reason": "x", "confirmation": "Uninstall Salesforce", "pendingChanges": "LATER", "integrationData": "KEEP_48_HOURS"})))
        .await;
    assert_eq!(st, 400);
    assert_eq!(status(s, token).await["state"], "ACTIVE");
    // A user who is not an admin cannot.
    let (_, pw) = user(s, &t.account, "viewer@acme.test", "user");
    let viewer = common::console::sign_in(s, "viewer@acme.test", &pw).await;
    let (st, _) = console_post(
        s,
        &viewer,
        "/app/settings/integrations/salesforce/uninstall",
        &[
            ("reason", "Other"),
            ("pending", "push"),
            ("data", "keep"),
            ("confirmation", "Uninstall Salesforce"),
        ],
    )
    .await;
    assert_eq!(st, 403);

    // Through the console: reason, choices, the typed words.
    let (st, html) = console_post(
        s,
        &t.session,
        "/app/settings/integrations/salesforce/uninstall",
        &[
            ("reason", "We no longer use Salesforce"),
            ("pending", "push"),
            ("data", "keep"),
            ("confirmation", "Uninstall Salesforce"),
        ],
    )
    .await;
    assert_eq!(st, 303, "{html}");
    let list = get(s, token, &format!("{BASE}/uninstall")).await;
    let id = list["results"][0]["id"].as_str().unwrap().to_string();
    // Another one while it is open is refused.
    let (st, v) = s
        .call(
            token,
            "POST",
            &format!("{BASE}/uninstall"),
            Some(body("Other", "Uninstall Salesforce")),
        )
        .await;
    assert!(st == 409 || st == 404, "{st} {v}");
    let u = wait_uninstall(s, token, &id).await;
    assert_eq!(u["state"], "DONE", "{u}");
    let o = &u["outcome"];
    assert!(o["pushed"].as_i64().unwrap() >= 1, "{u}");
    assert_eq!(o["tokenRevoked"], true, "{u}");
    assert!(o["keptUntil"].is_string(), "{u}");

    // The pending change reached Salesforce before the disconnect.
    let sf = fake.record("Contact", &contacts[0]).await;
    assert_eq!(sf["Phone"], "555-0199", "{sf}");
    // Every token the integration was given is revoked.
    let tokens = fake.control("GET", "tokens", None).await;
    for tok in tokens["tokens"].as_array().unwrap() {
        assert_eq!(tok["revoked"], true, "{tok}");
    }
    // Records, the Salesforce properties and their values stay.
    let grace = contact(s, token, "grace@globex.test").await;
    assert_eq!(
        grace["properties"]["salesforcecontactid"],
        contacts[0].as_str()
    );
    let (st, _) = s.call(token, "GET", BASE, None).await;
    assert_eq!(st, 404, "the integration is no longer connected");
    let after = get(s, token, &format!("{BASE}/uninstall")).await;
    assert_eq!(after["state"], "UNINSTALLED", "{after}");
    let kept = kontor_domain::time::parse_instant(after["keptUntil"].as_str().unwrap()).unwrap();
    let hours = (kept - kontor_domain::time::now_ms()) as f64 / 3_600_000.0;
    assert!((47.9..=48.0).contains(&hours), "kept {hours} hours");
    // The admin is told, with the steps, by e-mail and in the console.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mail = loop {
        let m = mails_to(s, "admin@acme.test");
        if let Some(m) = m
            .into_iter()
            .find(|m| m.contains("Reassign contacts, companies and deals"))
        {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "no e-mail about the Salesforce owners"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(mail.contains("Go to owner cleanup page"), "{mail}");
    assert!(
        mail.contains("/app/settings/integrations/salesforce/owners"),
        "{mail}"
    );
    let audit = console_page(s, &t.session.0, "/app/settings/audit").await;
    assert!(audit.contains("salesforce.uninstall"), "audited");
    assert!(
        audit.contains("We no longer use Salesforce"),
        "with its reason"
    );

    // Rita becomes a user: she is proposed for her own records (by e-mail).
    user(s, &t.account, "rita@sf.test", "user");
    let owners = get(s, token, &format!("{BASE}/owners")).await;
    let rita = owner_by_email(&owners, "rita@sf.test");
    assert_eq!(rita["id"], rita_owner.as_str());
    assert_eq!(rita["records"]["contacts"]["live"], 2, "{rita}");
    assert_eq!(rita["records"]["companies"]["live"], 1, "{rita}");
    let rita_user_owner = rita["proposedOwnerId"]
        .as_str()
        .expect("a proposal")
        .to_string();

    // The cleanup keeps an owner records reference.
    let (st, removal) = s
        .call(
            token,
            "POST",
            &format!("{BASE}/owners/remove"),
            Some(json!({"confirm": true})),
        )
        .await;
    assert_eq!(st, 200, "{removal}");
    assert!(
        removal["kept"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == rita_owner.as_str()),
        "{removal}"
    );

    // Reassign (the console's form), then revert (the API), then again.
    let field = format!("to_{rita_owner}");
    let (st, html) = console_post(
        s,
        &t.session,
        "/app/settings/integrations/salesforce/owners",
        &[
            ("action", "reassign"),
            (field.as_str(), rita_user_owner.as_str()),
        ],
    )
    .await;
    assert_eq!(st, 303, "{html}");
    let runs = get(s, token, &format!("{BASE}/owners")).await;
    let first = runs["reassignments"][0]["id"].as_str().unwrap().to_string();
    let r = wait_reassignment(s, token, &first).await;
    assert_eq!(r["moved"], 3, "{r}");
    let grace = contact(s, token, "grace@globex.test").await;
    assert_eq!(
        grace["properties"]["hubspot_owner_id"],
        rita_user_owner.as_str()
    );
    // Someone changes one record's owner afterwards: the revert leaves that one alone.
    let alan = contact(s, token, "alan@globex.test").await;
    let edsger = contact(s, token, "edsger@globex.test").await;
    let admin_owner = edsger["properties"]["hubspot_owner_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, _) = s
        .call(
            token,
            "PATCH",
            &format!("/crm/v3/objects/contacts/{}", alan["id"].as_str().unwrap()),
            Some(json!({"properties": {"hubspot_owner_id": admin_owner}})),
        )
        .await;
    assert_eq!(st, 200);
    let (st, v) = s
        .call(
            token,
            "POST",
            &format!("{BASE}/owners/reassignments/{first}/revert"),
            None,
        )
        .await;
    assert_eq!(st, 202, "{v}");
    let back = wait_reassignment(s, token, v["id"].as_str().unwrap()).await;
    assert_eq!(back["moved"], 2, "{back}");
    assert_eq!(back["skipped"], 1, "{back}");
    let grace = contact(s, token, "grace@globex.test").await;
    assert_eq!(grace["properties"]["hubspot_owner_id"], rita_owner.as_str());
    let alan = contact(s, token, "alan@globex.test").await;
    assert_eq!(alan["properties"]["hubspot_owner_id"], admin_owner.as_str());
    let (st, v) = s
        .call(
            token,
            "POST",
            &format!("{BASE}/owners/reassignments/{first}/revert"),
            None,
        )
        .await;
    assert_eq!(st, 400, "reverted once: {v}");
    let (st, v) = s
        .call(
            token,
            "POST",
            &format!("{BASE}/owners/reassign"),
            Some(
                json!({"assignments": [{"fromOwnerId": rita_owner, "toOwnerId": rita_user_owner}]}),
            ),
        )
        .await;
    assert_eq!(st, 202, "{v}");
    wait_reassignment(s, token, v["id"].as_str().unwrap()).await;

    // The cleanup page, then its confirmation: the owners nothing references go.
    let page = console_page(
        s,
        &t.session.0,
        "/app/settings/integrations/salesforce/owners/cleanup",
    )
    .await;
    assert!(page.contains("Remove Salesforce owners"), "{page}");
    let (st, html) = console_post(
        s,
        &t.session,
        "/app/settings/integrations/salesforce/owners/cleanup",
        &[("action", "remove")],
    )
    .await;
    assert_eq!(st, 200, "asks first: {html}");
    assert!(html.contains("Remove the Salesforce owners?"));
    let (st, _) = console_post(
        s,
        &t.session,
        "/app/settings/integrations/salesforce/owners/cleanup",
        &[("action", "remove"), ("confirm", "yes")],
    )
    .await;
    assert_eq!(st, 303);
    let left = get(s, token, &format!("{BASE}/owners")).await;
    assert!(
        left["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["email"] != "rita@sf.test"),
        "{left}"
    );
    let (_, all) = s.call(token, "GET", "/crm/v3/owners?limit=100", None).await;
    assert!(
        all["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["id"] != rita_owner.as_str()),
        "{all}"
    );

    // Reconnecting the same org within the 48 hours re-links: nothing is duplicated.
    connect(s, &t.session, fake, token).await;
    fake.insert(
        "Contact",
        json!([{"FirstName": "New", "LastName": "Person", "Email": "new@globex.test"}]),
    )
    .await;
    let after = sync(&t).await;
    assert_eq!(after["state"], "ACTIVE", "{after}");
    assert_eq!(after["counts"]["linked"]["contacts"], 4, "{after}");
    let (_, n) = s
        .call(
            token,
            "POST",
            "/crm/v3/objects/contacts/search",
            Some(json!({"limit": 1})),
        )
        .await;
    assert_eq!(n["total"], 4, "three re-linked, one new: {n}");
    let (_, n) = s
        .call(
            token,
            "POST",
            "/crm/v3/objects/companies/search",
            Some(json!({"limit": 1})),
        )
        .await;
    assert_eq!(n["total"], 1, "the company re-linked, not duplicated: {n}");
}

#[tokio::test]
async fn uninstall_deleting_the_data_now_discards_pending_changes_through_the_cli() {
    let t = setup().await;
    let (s, fake, token) = (&t.server, &t.fake, t.token.as_str());
    let contacts = connected_with_records(&t).await;
    let grace = contact(s, token, "grace@globex.test").await;
    set_phone(s, token, grace["id"].as_str().unwrap(), "555-0142").await;

    let out = s.cli(&[
        "admin",
        "salesforce",
        "uninstall-preview",
        "--account",
        &t.account,
    ]);
    assert!(out.contains("records_stay\tcontacts\t3"), "{out}");
    assert!(
        out.contains("owned_by_salesforce_only\tcontacts\t2"),
        "{out}"
    );
    let out = s.cli(&[
        "admin",
        "salesforce",
        "uninstall",
        "--account",
        &t.account,
        "--reason",
        "Reconnecting to another Salesforce org",
        "--pending",
        "discard",
        "--data",
        "delete",
        "--confirm",
        "Uninstall Salesforce",
        "--wait",
    ]);
    assert!(out.contains("state\tdone"), "{out}");
    assert!(out.contains("pending change(s) were discarded"), "{out}");

    // Salesforce never got the discarded change; the token is revoked.
    let sf = fake.record("Contact", &contacts[0]).await;
    assert_ne!(sf["Phone"], "555-0142", "{sf}");
    let tokens = fake.control("GET", "tokens", None).await;
    assert!(tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["revoked"] == true));
    // Nothing of the integration is left but the records and their values.
    let after = get(s, token, &format!("{BASE}/uninstall")).await;
    assert_eq!(after["connected"], false, "{after}");
    assert!(after["state"].is_null(), "the connection is gone: {after}");
    assert!(after["keptUntil"].is_null());
    let grace = contact(s, token, "grace@globex.test").await;
    assert_eq!(
        grace["properties"]["salesforcecontactid"],
        contacts[0].as_str()
    );
    // The Salesforce-only owners are still known without the owner map.
    let out = s.cli(&["admin", "salesforce", "owners", "--account", &t.account]);
    assert!(out.contains("rita@sf.test"), "{out}");
    // Reassign by the proposals: none yet (Rita has no user); then by ids.
    let edsger = contact(s, token, "edsger@globex.test").await;
    let admin_owner = edsger["properties"]["hubspot_owner_id"]
        .as_str()
        .unwrap()
        .to_string();
    let rita_owner = grace["properties"]["hubspot_owner_id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = s.cli(&[
        "admin",
        "salesforce",
        "reassign",
        "--account",
        &t.account,
        "--owner",
        &format!("{rita_owner}={admin_owner}"),
        "--wait",
    ]);
    assert!(out.contains("moved\t3"), "{out}");
    let out = s.cli(&[
        "admin",
        "salesforce",
        "remove-owners",
        "--account",
        &t.account,
        "--yes",
    ]);
    assert!(out.contains(&format!("removed\t{rita_owner}")), "{out}");
    let audit = console_page(s, &t.session.0, "/app/settings/audit").await;
    assert!(audit.contains("owners.salesforce.remove"));
}

#[tokio::test]
async fn an_uninstall_killed_mid_way_finishes_once_after_a_restart() {
    let mut t = setup().await;
    let contacts = connected_with_records(&t).await;
    let (s, token) = (&t.server, t.token.as_str());
    let grace = contact(s, token, "grace@globex.test").await;
    set_phone(s, token, grace["id"].as_str().unwrap(), "555-0177").await;
    // Salesforce refuses the send for a while: the job waits, holding its lease, when killed.
    t.fake
        .control(
            "POST",
            "faults",
            Some(json!({"status": 503, "count": 100, "path_contains": "/composite"})),
        )
        .await;
    let (st, u) = s
        .call(
            token,
            "POST",
            &format!("{BASE}/uninstall"),
            Some(json!({"reason": "Other", "confirmation": "Uninstall Salesforce", "pendingChanges": "PUSH", "integrationData": "KEEP_48_HOURS"})),
        )
        .await;
    assert_eq!(st, 202, "{u}");
    let id = u["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(s, token, &format!("{BASE}/uninstall/{id}")).await["state"] != "RUNNING" {
        assert!(Instant::now() < deadline, "the uninstall never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let env = t.fake.env();
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    t.server.kill9_and_restart(&envs).await;
    t.fake.control("DELETE", "faults", None).await;

    // The restarted node takes the job up once the dead one's lease lapses, and ends it once.
    let u = wait_uninstall(&t.server, &t.token, &id).await;
    assert_eq!(u["state"], "DONE", "{u}");
    assert!(u["outcome"]["pushed"].as_i64().unwrap() >= 1, "{u}");
    let sf = t.fake.record("Contact", &contacts[0]).await;
    assert_eq!(sf["Phone"], "555-0177", "{sf}");
    let list = get(&t.server, &t.token, &format!("{BASE}/uninstall")).await;
    assert_eq!(list["results"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["state"], "UNINSTALLED");
    let audit = console_page(&t.server, &t.session.0, "/app/settings/audit").await;
    assert_eq!(
        audit.matches(">salesforce.uninstall<").count(),
        1,
        "the uninstall ended once"
    );
}
