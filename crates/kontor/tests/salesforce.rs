//! The Salesforce integration against the fake Salesforce, through the real server: connecting
//! by OAuth, the initial import, incremental sync both ways, loops, owners, deletes, merges,
//! lead conversion, limits and faults, and a kill -9 in the middle of a sync.

mod common;

use common::console::console_page;
use common::salesforce::{connect, setup, status, sync};
use common::Server;
use serde_json::{json, Value};

async fn search(s: &Server, token: &str, object: &str, property: &str, value: &str) -> Vec<Value> {
    let (st, v) = s
        .call(
            token,
            "POST",
            &format!("/crm/v3/objects/{object}/search"),
            Some(json!({
                "filterGroups": [{"filters": [{"propertyName": property, "operator": "EQ", "value": value}]}],
                "properties": ["email", "firstname", "lastname", "hubspot_owner_id", "salesforcecontactid", "salesforceleadid", "salesforceaccountid", "hs_salesforceopportunityid", "dealstage", "amount", "name", "dealname", "phone", "salesforcelastsynctime"],
                "limit": 100
            })),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    v["results"].as_array().unwrap().clone()
}

async fn count(s: &Server, token: &str, object: &str) -> i64 {
    let (st, v) = s
        .call(
            token,
            "POST",
            &format!("/crm/v3/objects/{object}/search"),
            Some(json!({"limit": 1})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    v["total"].as_i64().unwrap()
}

#[tokio::test]
async fn connect_import_and_sync_both_ways() {
    let t = setup().await;
    let (s, fake, token) = (&t.server, &t.fake, t.token.as_str());
    // A Salesforce user with a kontor user's e-mail, and one with none here.
    let user_ids = fake.ada_and_rita().await;
    let accounts = fake
        .insert(
            "Account",
            json!([{"Name": "Globex", "Phone": "555-0100", "OwnerId": user_ids[1]}, {"Name": "Initech"}]),
        )
        .await;
    let contacts = fake
        .insert(
            "Contact",
            json!([
                {"FirstName": "Grace", "LastName": "Hopper", "Email": "grace@globex.test", "AccountId": accounts[0], "OwnerId": user_ids[0]},
                {"FirstName": "Alan", "LastName": "Turing", "Email": "alan@initech.test", "OwnerId": user_ids[1]}
            ]),
        )
        .await;
    let leads = fake
        .insert(
            "Lead",
            json!([{"FirstName": "Linus", "LastName": "Lead", "Company": "Kernel Ltd", "Email": "linus@kernel.test"}]),
        )
        .await;
    let opps = fake
        .insert(
            "Opportunity",
            json!([{"Name": "Globex renewal", "StageName": "Closed Won", "CloseDate": "2026-12-31", "Amount": 12000, "AccountId": accounts[0]}]),
        )
        .await;
    let tasks = fake
        .insert(
            "Task",
            json!([{"Subject": "Call Grace", "Status": "In Progress", "Priority": "High", "ActivityDate": "2026-12-24", "WhoId": contacts[0], "WhatId": opps[0]}]),
        )
        .await;
    // A kontor contact with a Salesforce contact's e-mail is linked, not duplicated.
    let (st, existing) = s
        .call(
            token,
            "POST",
            "/crm/v3/objects/contacts",
            Some(json!({"properties": {"email": "alan@initech.test", "firstname": "Al"}})),
        )
        .await;
    assert_eq!(st, 201, "{existing}");

    connect(s, &t.session, fake, token).await;
    let page = console_page(s, &t.session.0, "/app/settings/integrations/salesforce").await;
    assert!(
        page.contains("admin@example.com"),
        "the page names the Salesforce user"
    );
    let st = status(s, token).await;
    assert_eq!(st["state"], "ACTIVE");
    assert_eq!(st["user"]["username"], "admin@example.com");

    let after = sync(&t).await;
    assert!(after["health"]["lastError"].is_null(), "{after}");
    assert_eq!(after["counts"]["linked"]["contacts"], 3, "{after}");
    assert_eq!(after["counts"]["linked"]["companies"], 2, "{after}");
    assert_eq!(after["counts"]["linked"]["deals"], 1, "{after}");
    assert_eq!(after["counts"]["linked"]["tasks"], 1, "{after}");
    // Owners are made for the users records name: Rita and the org's admin (who owns the
    // records created without an owner) have no user here; Ada has.
    assert_eq!(after["counts"]["salesforceOnlyOwners"], 2, "{after}");
    // The tokens are stored sealed: none appears in the database file.
    if std::env::var("KONTOR_DATABASE_US").is_err() {
        let db = std::fs::read(s.data_dir.join("regions/us/kontor.db")).unwrap();
        let wal = std::fs::read(s.data_dir.join("regions/us/kontor.db-wal")).unwrap_or_default();
        let tokens = fake.control("GET", "tokens", None).await;
        let tokens = tokens["tokens"].as_array().unwrap();
        assert!(tokens.len() >= 2, "{tokens:?}");
        for t in tokens {
            let tok = t["token"].as_str().unwrap().as_bytes();
            for file in [&db, &wal] {
                assert!(
                    !file.windows(tok.len()).any(|w| w == tok),
                    "a Salesforce token is stored in clear"
                );
            }
        }
    }
    // Contacts: imported, the e-mail match linked to the existing record, owners mapped.
    assert_eq!(count(s, token, "contacts").await, 3);
    let grace = &search(s, token, "contacts", "email", "grace@globex.test").await[0];
    assert_eq!(
        grace["properties"]["salesforcecontactid"],
        contacts[0].as_str()
    );
    let (_, owners) = s.call(token, "GET", "/crm/v3/owners?limit=100", None).await;
    let owner_of = |email: &str| {
        owners["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["email"] == email)
            .map(|o| o["id"].as_str().unwrap().to_string())
    };
    assert_eq!(
        grace["properties"]["hubspot_owner_id"].as_str(),
        owner_of("admin@acme.test").as_deref(),
        "a Salesforce user with a kontor user's e-mail maps to that user's owner"
    );
    let alan = search(s, token, "contacts", "email", "alan@initech.test").await;
    assert_eq!(alan.len(), 1, "no duplicate of a contact matched by e-mail");
    assert_eq!(alan[0]["id"], existing["id"]);
    assert_eq!(
        alan[0]["properties"]["firstname"], "Alan",
        "two-way: Salesforce's value on a first link"
    );
    assert_eq!(
        alan[0]["properties"]["hubspot_owner_id"].as_str(),
        owner_of("rita@sf.test").as_deref(),
        "a Salesforce user with no kontor user becomes a Salesforce-only owner"
    );
    let linus = &search(s, token, "contacts", "email", "linus@kernel.test").await[0];
    assert_eq!(linus["properties"]["salesforceleadid"], leads[0].as_str());
    let deal = &search(s, token, "deals", "hs_salesforceopportunityid", &opps[0]).await[0];
    assert_eq!(deal["properties"]["dealstage"], "closedwon");
    assert_eq!(deal["properties"]["dealname"], "Globex renewal");
    assert_eq!(count(s, token, "companies").await, 2);
    // A contact's and an opportunity's account: their company.
    let globex = &search(s, token, "companies", "salesforceaccountid", &accounts[0]).await[0];
    for (object, id) in [
        ("contacts", grace["id"].as_str().unwrap()),
        ("deals", deal["id"].as_str().unwrap()),
    ] {
        let (_, assoc) = s
            .call(
                token,
                "GET",
                &format!("/crm/v4/objects/{object}/{id}/associations/companies"),
                None,
            )
            .await;
        assert_eq!(
            assoc["results"][0]["toObjectId"]
                .to_string()
                .trim_matches('"'),
            globex["id"].as_str().unwrap(),
            "{object}: {assoc}"
        );
    }

    // Tasks: their picklists translated, their WhoId and WhatId associations.
    let (_, task_list) = s
        .call(
            token,
            "GET",
            "/crm/v3/objects/tasks?properties=hs_task_subject,hs_task_status,hs_task_priority,hs_timestamp",
            None,
        )
        .await;
    let task = &task_list["results"][0];
    assert_eq!(
        task["properties"]["hs_task_subject"], "Call Grace",
        "{task_list}"
    );
    assert_eq!(task["properties"]["hs_task_status"], "IN_PROGRESS");
    assert_eq!(task["properties"]["hs_task_priority"], "HIGH");
    assert!(task["properties"]["hs_timestamp"]
        .as_str()
        .unwrap()
        .starts_with("2026-12-24"));
    let tid = task["id"].as_str().unwrap().to_string();
    for (object, want) in [
        ("contacts", grace["id"].clone()),
        ("deals", deal["id"].clone()),
    ] {
        let (_, assoc) = s
            .call(
                token,
                "GET",
                &format!("/crm/v4/objects/tasks/{tid}/associations/{object}"),
                None,
            )
            .await;
        assert_eq!(
            assoc["results"][0]["toObjectId"]
                .to_string()
                .trim_matches('"'),
            want.as_str().unwrap(),
            "{object}: {assoc}"
        );
    }
    let (st, _) = s
        .call(
            token,
            "PATCH",
            &format!("/crm/v3/objects/tasks/{tid}"),
            Some(json!({"properties": {"hs_task_status": "COMPLETED"}})),
        )
        .await;
    assert_eq!(st, 200);
    sync(&t).await;
    assert_eq!(fake.record("Task", &tasks[0]).await["Status"], "Completed");

    // Salesforce → kontor: a change there arrives, recorded with source SALESFORCE.
    let (st, _) = fake
        .rest(
            "PATCH",
            &format!("sobjects/Contact/{}", contacts[0]),
            Some(json!({"Phone": "555-0199"})),
        )
        .await;
    assert_eq!(st, 204);
    fake.control("DELETE", "requests", None).await;
    let after = sync(&t).await;
    assert!(after["health"]["lastError"].is_null(), "{after}");
    let gid = grace["id"].as_str().unwrap();
    let (_, g) = s
        .call(
            token,
            "GET",
            &format!("/crm/v3/objects/contacts/{gid}?properties=phone&propertiesWithHistory=phone"),
            None,
        )
        .await;
    assert_eq!(g["properties"]["phone"], "555-0199");
    assert_eq!(
        g["propertiesWithHistory"]["phone"][0]["sourceType"],
        "SALESFORCE"
    );
    // Nothing went back: a value Salesforce wrote is not sent to Salesforce.
    let writes: Vec<Value> = fake
        .data_requests()
        .await
        .into_iter()
        .filter(|r| r["method"] != "GET")
        .collect();
    assert!(
        writes.is_empty(),
        "no write echoes a pulled change: {writes:?}"
    );

    // kontor → Salesforce: an edit goes out, with Sforce-Auto-Assign: FALSE, and is not read
    // back as a change.
    let (st, _) = s
        .call(
            token,
            "PATCH",
            &format!("/crm/v3/objects/contacts/{gid}"),
            Some(json!({"properties": {"jobtitle": "Rear Admiral"}})),
        )
        .await;
    assert_eq!(st, 200);
    fake.control("DELETE", "requests", None).await;
    let after = sync(&t).await;
    assert!(after["health"]["lastError"].is_null(), "{after}");
    let rec = fake.record("Contact", &contacts[0]).await;
    assert_eq!(rec["Title"], "Rear Admiral");
    let writes: Vec<Value> = fake
        .data_requests()
        .await
        .into_iter()
        .filter(|r| r["method"] == "PATCH")
        .collect();
    assert_eq!(writes.len(), 1, "one collection request: {writes:?}");
    let header = writes[0]["headers"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Sforce-Auto-Assign"))
        .map(|(_, v)| v.as_str().unwrap_or_default().to_string());
    assert_eq!(header.as_deref(), Some("FALSE"));
    let (_, h) = s
        .call(
            token,
            "GET",
            &format!("/crm/v3/objects/contacts/{gid}?propertiesWithHistory=jobtitle"),
            None,
        )
        .await;
    let before_history = h["propertiesWithHistory"]["jobtitle"]
        .as_array()
        .unwrap()
        .len();
    fake.control("DELETE", "requests", None).await;
    sync(&t).await;
    let (_, h) = s
        .call(
            token,
            "GET",
            &format!("/crm/v3/objects/contacts/{gid}?propertiesWithHistory=jobtitle"),
            None,
        )
        .await;
    assert_eq!(
        h["propertiesWithHistory"]["jobtitle"]
            .as_array()
            .unwrap()
            .len(),
        before_history,
        "the echo of kontor's own write is not taken as a change"
    );
    let writes = fake
        .data_requests()
        .await
        .into_iter()
        .filter(|r| r["method"] != "GET")
        .count();
    assert_eq!(writes, 0, "and nothing is sent again");

    // A new kontor contact: without a Kontor_Id__c external-ID field nothing is created
    // there, and the sync error says why; with the field, a retry creates it as a Lead.
    let (st, new) = s
        .call(
            token,
            "POST",
            "/crm/v3/objects/contacts",
            Some(json!({"properties": {"email": "new@kontor.test", "lastname": "Newton", "company": "Apple Co"}})),
        )
        .await;
    assert_eq!(st, 201);
    let after = sync(&t).await;
    assert_eq!(after["counts"]["syncErrors"], 1, "{after}");
    let (_, errs) = s
        .call(
            token,
            "GET",
            "/kontor/v1/integrations/salesforce/errors",
            None,
        )
        .await;
    assert_eq!(
        errs["results"][0]["errorCode"], "NO_EXTERNAL_ID_FIELD",
        "{errs}"
    );
    assert_eq!(errs["results"][0]["recordId"], new["id"]);
    let page = console_page(s, &t.session.0, "/app/settings/integrations/salesforce").await;
    assert!(
        page.contains("NO_EXTERNAL_ID_FIELD"),
        "the console lists the error"
    );
    fake.control(
        "POST",
        "fields",
        Some(json!({"object": "Lead", "name": "Kontor_Id__c", "type": "string", "length": 32, "externalId": true, "unique": true})),
    )
    .await;
    let (st, r) = s
        .call(
            token,
            "POST",
            "/kontor/v1/integrations/salesforce/errors/retry",
            None,
        )
        .await;
    assert_eq!(st, 200, "{r}");
    let after = sync(&t).await;
    assert_eq!(after["counts"]["syncErrors"], 0, "{after}");
    let created = &search(s, token, "contacts", "email", "new@kontor.test").await[0];
    let lead_id = created["properties"]["salesforceleadid"]
        .as_str()
        .unwrap()
        .to_string();
    let lead = fake.record("Lead", &lead_id).await;
    assert_eq!(lead["LastName"], "Newton");
    assert_eq!(lead["Company"], "Apple Co");
    assert_eq!(lead["Kontor_Id__c"], new["id"]);
    // The inclusion list: only contacts matching it are sent.
    let (st, v) = s
        .call(
            token,
            "PATCH",
            "/kontor/v1/integrations/salesforce",
            Some(json!({"inclusionFilter": {"filterGroups": [{"filters": [{"propertyName": "jobtitle", "operator": "EQ", "value": "VIP"}]}]}})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = s
        .call(
            token,
            "PATCH",
            "/kontor/v1/integrations/salesforce",
            Some(json!({"inclusionFilter": {"filterGroups": [{"filters": [{"propertyName": "nope", "operator": "EQ", "value": "x"}]}]}})),
        )
        .await;
    assert_eq!(
        st, 400,
        "a filter on a property contacts lack is refused: {v}"
    );
    for (email, title) in [("vip@kontor.test", "VIP"), ("plain@kontor.test", "Clerk")] {
        let (st, _) = s
            .call(
                token,
                "POST",
                "/crm/v3/objects/contacts",
                Some(json!({"properties": {"email": email, "lastname": "X", "jobtitle": title}})),
            )
            .await;
        assert_eq!(st, 201);
    }
    let after = sync(&t).await;
    let (_, errs) = s
        .call(
            token,
            "GET",
            "/kontor/v1/integrations/salesforce/errors",
            None,
        )
        .await;
    assert_eq!(after["counts"]["syncErrors"], 0, "{errs}");
    let vip = &search(s, token, "contacts", "email", "vip@kontor.test").await[0];
    assert!(vip["properties"]["salesforceleadid"].is_string(), "{vip}");
    let plain = &search(s, token, "contacts", "email", "plain@kontor.test").await[0];
    assert!(plain["properties"]["salesforceleadid"].is_null(), "{plain}");
    let page = console_page(s, &t.session.0, "/app/settings/integrations/salesforce").await;
    assert!(
        page.contains("Now: contacts whose"),
        "the page shows the inclusion list"
    );

    // The operator's CLI: the same connection, paused and resumed.
    let out = s.cli(&["admin", "salesforce", "status", "--account", &t.account]);
    assert!(out.contains("state\tactive"), "{out}");
    assert!(out.contains("linked\t0-1\t"), "{out}");
    s.cli(&["admin", "salesforce", "pause", "--account", &t.account]);
    assert_eq!(status(s, token).await["state"], "PAUSED");
    s.cli(&["admin", "salesforce", "resume", "--account", &t.account]);
    assert_eq!(status(s, token).await["state"], "ACTIVE");
    let out = s.cli(&["admin", "salesforce", "errors", "--account", &t.account]);
    assert!(out.is_empty(), "no sync errors: {out}");

    let audit = console_page(s, &t.session.0, "/app/settings/audit").await;
    assert!(audit.contains("salesforce.connect"));
    assert!(audit.contains("salesforce.errors.retry"));
    assert!(audit.contains("salesforce.pause"));
}

#[tokio::test]
async fn deletes_merges_and_lead_conversion() {
    let t = setup().await;
    let (s, fake, token) = (&t.server, &t.fake, t.token.as_str());
    let contacts = fake
        .insert(
            "Contact",
            json!([
                {"LastName": "One", "Email": "one@x.test"},
                {"LastName": "Two", "Email": "two@x.test", "Phone": "555-0002"},
                {"LastName": "Three", "Email": "three@x.test"}
            ]),
        )
        .await;
    let leads = fake
        .insert(
            "Lead",
            json!([{"LastName": "Lee", "Company": "Lee Ltd", "Email": "lee@x.test"}]),
        )
        .await;
    connect(s, &t.session, fake, token).await;
    let after = sync(&t).await;
    assert_eq!(after["counts"]["linked"]["contacts"], 4, "{after}");
    let id_of = |v: &Vec<Value>| v[0]["id"].as_str().unwrap().to_string();
    let one = id_of(&search(s, token, "contacts", "email", "one@x.test").await);
    let two = id_of(&search(s, token, "contacts", "email", "two@x.test").await);
    let three = id_of(&search(s, token, "contacts", "email", "three@x.test").await);
    let lee = id_of(&search(s, token, "contacts", "email", "lee@x.test").await);

    // A delete in Salesforce sends the record to the recycle bin.
    let (st, _) = fake
        .rest("DELETE", &format!("sobjects/Contact/{}", contacts[2]), None)
        .await;
    assert_eq!(st, 204);
    // A merge there merges here: the loser into the record linked to the master.
    fake.control(
        "POST",
        "merge",
        Some(json!({"object": "Contact", "master": contacts[0], "losers": [contacts[1]]})),
    )
    .await;
    // A converted lead's link moves to its contact: no second contact.
    let converted = fake
        .control(
            "POST",
            "convert-lead",
            Some(json!({"leadId": leads[0], "createOpportunity": false})),
        )
        .await;
    let after = sync(&t).await;
    assert!(after["health"]["lastError"].is_null(), "{after}");
    let (st, _) = s
        .call(
            token,
            "GET",
            &format!("/crm/v3/objects/contacts/{three}"),
            None,
        )
        .await;
    assert_eq!(st, 404, "the deleted contact is archived");
    let (_, bin) = s
        .call(token, "GET", "/crm/v3/objects/contacts?archived=true", None)
        .await;
    assert!(
        bin["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == three.as_str()),
        "and can be restored from the recycle bin: {bin}"
    );
    let (st, merged) = s
        .call(
            token,
            "GET",
            &format!("/crm/v3/objects/contacts/{two}?properties=email,phone"),
            None,
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        merged["id"],
        one.as_str(),
        "the merged id leads to the master's record"
    );
    assert_eq!(
        merged["properties"]["phone"], "555-0002",
        "with the loser's values"
    );
    let lee_now = search(s, token, "contacts", "email", "lee@x.test").await;
    assert_eq!(lee_now.len(), 1, "conversion made no duplicate");
    assert_eq!(lee_now[0]["id"], lee.as_str());
    assert_eq!(
        lee_now[0]["properties"]["salesforcecontactid"],
        converted["contactId"]
    );
    assert_eq!(count(s, token, "contacts").await, 2);
    // The account the conversion made arrives as a company.
    assert_eq!(count(s, token, "companies").await, 1);

    // A lead with a linked contact's e-mail takes nothing from it: it is listed as a
    // duplicate, and the contact keeps its link round after round.
    let dup = fake
        .insert(
            "Lead",
            json!([{"LastName": "Again", "Company": "One Co", "Email": "one@x.test"}]),
        )
        .await;
    for _ in 0..2 {
        let after = sync(&t).await;
        assert_eq!(after["counts"]["syncErrors"], 1, "{after}");
        let now = search(s, token, "contacts", "email", "one@x.test").await;
        assert_eq!(now.len(), 1);
        assert_eq!(
            now[0]["properties"]["salesforcecontactid"],
            contacts[0].as_str()
        );
        assert!(
            now[0]["properties"]["salesforceleadid"].is_null(),
            "{now:?}"
        );
    }
    let (_, errs) = s
        .call(
            token,
            "GET",
            "/kontor/v1/integrations/salesforce/errors",
            None,
        )
        .await;
    assert_eq!(errs["results"][0]["category"], "Duplicates", "{errs}");
    assert_eq!(errs["results"][0]["salesforceId"], dup[0].as_str());
    assert_eq!(errs["results"][0]["attempts"], 1);
    // A retry reads the lead again (and, nothing having changed, fails again).
    let (st, _) = s
        .call(
            token,
            "POST",
            "/kontor/v1/integrations/salesforce/errors/retry",
            None,
        )
        .await;
    assert_eq!(st, 200);
    sync(&t).await;
    let (_, errs) = s
        .call(
            token,
            "GET",
            "/kontor/v1/integrations/salesforce/errors",
            None,
        )
        .await;
    assert_eq!(errs["results"][0]["attempts"], 2, "{errs}");
    assert_eq!(count(s, token, "contacts").await, 2);
}

#[tokio::test]
async fn limits_faults_and_a_kill_mid_sync_lose_and_duplicate_nothing() {
    let mut t = setup().await;
    let accounts: Vec<Value> = (0..12_000)
        .map(|i| json!({"Name": format!("Account {i}")}))
        .collect();
    t.fake.insert("Account", Value::Array(accounts)).await;
    connect(&t.server, &t.session, &t.fake, &t.token).await;
    // Salesforce's daily limit runs out during the initial import: the pages read so far
    // stay, the round backs off, and the next one carries on where it stopped.
    t.fake
        .control("POST", "config", Some(json!({"api_usage": 14_996})))
        .await;
    let after = sync(&t).await;
    assert!(
        after["health"]["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("REQUEST_LIMIT_EXCEEDED")),
        "{after}"
    );
    assert_eq!(after["health"]["backoffMs"], 30_000);
    let partial = count(&t.server, &t.token, "companies").await;
    assert!(partial > 0 && partial < 12_000, "{partial}");
    assert_eq!(after["counts"]["linked"]["companies"], partial);
    t.fake
        .control("POST", "config", Some(json!({"api_usage": 0})))
        .await;
    let after = sync(&t).await;
    assert!(after["health"]["lastError"].is_null(), "{after}");
    assert_eq!(count(&t.server, &t.token, "companies").await, 12_000);

    // A 503: backed off, then fine.
    t.fake
        .control(
            "POST",
            "faults",
            Some(json!({"status": 503, "count": 1, "path_contains": "/query"})),
        )
        .await;
    let after = sync(&t).await;
    assert!(
        after["health"]["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("unavailable")),
        "{after}"
    );
    let after = sync(&t).await;
    assert!(after["health"]["lastError"].is_null(), "{after}");

    // kill -9 in the middle of an import of 30,000 more; the key rotated (and the old one
    // dropped) before the restart: the tokens were sealed again.
    let more: Vec<Value> = (0..30_000)
        .map(|i| json!({"Name": format!("More {i}")}))
        .collect();
    t.fake.insert("Account", Value::Array(more)).await;
    t.fake
        .control("POST", "clock", Some(json!({"advance": 60})))
        .await;
    let (st, _) = t
        .server
        .call(
            &t.token,
            "POST",
            "/kontor/v1/integrations/salesforce/sync",
            None,
        )
        .await;
    assert_eq!(st, 202);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let n = count(&t.server, &t.token, "companies").await;
        if n > 12_000 {
            assert!(n < 42_000, "the import finished before the kill: {n}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the import never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let data_dir = t.server.data_dir.clone();
    let env = t.fake.env();
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let _ = t.server.child.kill();
    let _ = t.server.child.wait();
    let out = common::kontor(&data_dir)
        .args(["admin", "key", "rotate"])
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key_file = env
        .iter()
        .find(|(k, _)| *k == "KONTOR_SECRET_KEY_FILE")
        .map_or(data_dir.join("secret.key"), |(_, v)| v.into());
    std::fs::remove_file(format!("{}.previous", key_file.display())).unwrap();
    t.server.kill9_and_restart(&envs).await;
    let before = status(&t.server, &t.token).await["health"]["lastRoundAt"].clone();
    // The round is still due; the new node takes it up once the dead one's claim lapses.
    let after = common::salesforce::wait_round(
        &t.server,
        &t.token,
        &before,
        std::time::Duration::from_secs(120),
    )
    .await;
    assert!(after["health"]["lastError"].is_null(), "{after}");
    assert_eq!(
        count(&t.server, &t.token, "companies").await,
        42_000,
        "none lost, none twice"
    );
    assert_eq!(after["counts"]["linked"]["companies"], 42_000);

    // The integration's own budget: half of the org's daily limit, learnt from Salesforce's
    // answers. Once its calls reach it, rounds stop until the window allows more.
    t.fake
        .control(
            "POST",
            "config",
            Some(json!({"daily_limit": 40, "api_usage": 0})),
        )
        .await;
    sync(&t).await;
    let after = sync(&t).await;
    assert_eq!(after["apiCalls"]["budget"], 20, "{after}");
    assert!(
        after["health"]["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("share of Salesforce's daily API limit")),
        "{after}"
    );
    assert!(
        after["health"]["nextRoundAt"].as_str().unwrap()
            > after["health"]["lastRoundAt"].as_str().unwrap(),
        "{after}"
    );
}
