//! API tests through the real server: the built binary, a fresh data folder, a free port.
//! With `KONTOR_DATABASE_US` (and friends) set, the same tests run on PostgreSQL.

use serde_json::{json, Value};
use std::process::Stdio;

mod common;
use common::*;

fn assert_envelope(v: &Value, category: &str) {
    assert_eq!(v["status"], "error");
    assert_eq!(v["category"], category, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(v["correlationId"].as_str().is_some_and(|c| c.len() == 36));
}

#[tokio::test]
async fn authentication_and_isolation() {
    let s = Server::start().await;
    let (_, a) = s.account("Alpha");
    let (_, b) = s.account("Beta");
    let (st, v) = s.call("", "GET", "/crm/v3/objects/contacts", None).await;
    assert_eq!(st, 401);
    assert_envelope(&v, "INVALID_AUTHENTICATION");
    // The same token with its last digit changed.
    let last = if a.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &a[..a.len() - 1]);
    assert_eq!(
        s.call(&forged, "GET", "/crm/v3/objects/contacts", None)
            .await
            .0,
        401
    );
    let (st, created) = s
        .call(
            &a,
            "POST",
            "/crm/v3/objects/contacts",
            Some(json!({"properties": {"email": "only-a@example.com"}})),
        )
        .await;
    assert_eq!(st, 201);
    let id = created["id"].as_str().unwrap();
    // B's token cannot see, change or delete A's record, and learns nothing about it.
    let (st, v) = s
        .call(&b, "GET", &format!("/crm/v3/objects/contacts/{id}"), None)
        .await;
    assert_eq!(st, 404);
    assert_envelope(&v, "OBJECT_NOT_FOUND");
    assert_eq!(
        s.call(
            &b,
            "GET",
            "/crm/v3/objects/contacts/only-a@example.com?idProperty=email",
            None
        )
        .await
        .0,
        404
    );
    assert_eq!(
        s.call(
            &b,
            "PATCH",
            &format!("/crm/v3/objects/contacts/{id}"),
            Some(json!({"properties": {"firstname": "x"}}))
        )
        .await
        .0,
        404
    );
    assert_eq!(
        s.call(
            &b,
            "DELETE",
            &format!("/crm/v3/objects/contacts/{id}"),
            None
        )
        .await
        .0,
        204
    );
    let (_, found) = s
        .call(
            &b,
            "POST",
            "/crm/v3/objects/contacts/search",
            Some(json!({})),
        )
        .await;
    assert_eq!(found["total"], 0, "B's search sees none of A's records");
    let (st, mine) = s
        .call(&a, "GET", &format!("/crm/v3/objects/contacts/{id}"), None)
        .await;
    assert_eq!(
        (st, mine["properties"]["email"].as_str()),
        (200, Some("only-a@example.com"))
    );
}

#[tokio::test]
async fn lifecycle_state_gates_the_api() {
    let s = Server::start().await;
    let (id, t) = s.account("Moving");
    assert_eq!(
        s.call(&t, "GET", "/crm/v3/objects/contacts", None).await.0,
        200
    );
    s.cli(&[
        "admin",
        "account",
        "set-state",
        "--account",
        &id,
        "--state",
        "migrating",
    ]);
    let resp = s
        .http
        .get(format!("{}/crm/v3/objects/contacts", s.base))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 477);
    assert!(resp.headers().get("retry-after").is_some_and(|v| v
        .to_str()
        .unwrap()
        .parse::<u64>()
        .is_ok()));
    assert_envelope(&resp.json().await.unwrap(), "MIGRATION_IN_PROGRESS");
    assert!(s
        .cli(&["admin", "account", "list"])
        .lines()
        .any(|l| l.starts_with(&format!("{id}\t")) && l.contains("\tmigrating\t")));
    s.cli(&[
        "admin",
        "account",
        "set-state",
        "--account",
        &id,
        "--state",
        "suspended",
    ]);
    assert_eq!(
        s.call(&t, "GET", "/crm/v3/objects/contacts", None).await.0,
        403
    );
    s.cli(&[
        "admin",
        "account",
        "set-state",
        "--account",
        &id,
        "--state",
        "active",
    ]);
    assert_eq!(
        s.call(&t, "GET", "/crm/v3/objects/contacts", None).await.0,
        200
    );
}

#[tokio::test]
async fn bad_input_gets_the_error_envelope_and_changes_nothing() {
    let s = Server::start().await;
    let (_, t) = s.account("Errors");
    let raw = s
        .http
        .post(format!("{}/crm/v3/objects/contacts", s.base))
        .bearer_auth(&t)
        .body("{\"properties\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    assert_envelope(&raw.json().await.unwrap(), "VALIDATION_ERROR");
    let cases = [
        (json!({"properties": {"nope": "x"}}), "properties.nope"),
        (
            json!({"properties": {"num_employees": "lots"}}),
            "properties.num_employees",
        ),
        (
            json!({"properties": {"lifecyclestage": "king"}}),
            "properties.lifecyclestage",
        ),
        (
            json!({"properties": {"hs_object_id": "5"}}),
            "properties.hs_object_id",
        ),
        (json!({"properties": "email"}), "properties"),
        // Instants outside years 1 to 9999 are refused, not stored as some other instant.
        (
            json!({"properties": {"notes_last_contacted": "99999999999999999"}}),
            "properties.notes_last_contacted",
        ),
        (
            json!({"properties": {"notes_last_contacted": "+10000-01-01T00:00:00Z"}}),
            "properties.notes_last_contacted",
        ),
    ];
    for (body, field) in cases {
        let (st, v) = s
            .call(&t, "POST", "/crm/v3/objects/contacts", Some(body))
            .await;
        assert_eq!(st, 400, "{v}");
        assert_envelope(&v, "VALIDATION_ERROR");
        assert_eq!(v["errors"][0]["in"], field);
    }
    let (st, v) = s.call(&t, "GET", "/crm/v3/objects/widgets", None).await;
    assert_eq!(st, 400);
    assert!(v["message"].as_str().unwrap().contains("widgets"));
    let too_many: Vec<Value> = (0..101)
        .map(|i| json!({"properties": {"email": format!("{i}@x.example")}}))
        .collect();
    let (st, v) = s
        .call(
            &t,
            "POST",
            "/crm/v3/objects/contacts/batch/create",
            Some(json!({"inputs": too_many})),
        )
        .await;
    assert_eq!((st, v["errors"][0]["in"].as_str()), (400, Some("inputs")));
    let (st, v) = s
        .call(
            &t,
            "POST",
            "/crm/v3/objects/contacts/search",
            Some(json!({"limit": 201})),
        )
        .await;
    assert_eq!((st, v["errors"][0]["in"].as_str()), (400, Some("limit")));
    assert_eq!(
        s.call(
            &t,
            "POST",
            "/crm/v3/objects/contacts",
            Some(json!({"properties": {"email": "dup@x.example"}}))
        )
        .await
        .0,
        201
    );
    let (st, v) = s
        .call(
            &t,
            "POST",
            "/crm/v3/objects/contacts",
            Some(json!({"properties": {"email": "DUP@x.example"}})),
        )
        .await;
    assert_eq!(st, 409);
    assert_envelope(&v, "CONFLICT");
    assert!(v["message"]
        .as_str()
        .unwrap()
        .starts_with("Contact already exists. Existing ID: "));
    // A batch with one bad input writes none of them.
    let (st, _) = s.call(&t, "POST", "/crm/v3/objects/contacts/batch/create", Some(json!({"inputs": [
        {"properties": {"email": "fine@x.example"}}, {"properties": {"email": "dup@x.example"}}
    ]}))).await;
    assert_eq!(st, 409);
    let (_, all) = s
        .call(
            &t,
            "POST",
            "/crm/v3/objects/contacts/search",
            Some(json!({})),
        )
        .await;
    assert_eq!(all["total"], 1);
    let big = "x".repeat(9 * 1024 * 1024);
    // The server answers before reading the whole body and closes that connection, so this
    // request gets a client of its own.
    let resp = reqwest::Client::new()
        .post(format!("{}/crm/v3/objects/contacts", s.base))
        .bearer_auth(&t)
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert_envelope(&resp.json().await.unwrap(), "VALIDATION_ERROR");
    // A path kontor does not serve says so (501), rather than that a record is missing.
    let (st, v) = s.call(&t, "GET", "/crm/v3/no/such/route", None).await;
    assert_eq!(st, 501);
    assert_envelope(&v, "NOT_IMPLEMENTED");
}

#[tokio::test]
async fn records_batches_search_and_history() {
    let s = Server::start().await;
    let (_, t) = s.account("Records");
    let (st, v) = s.call(&t, "POST", "/crm/v3/objects/contacts/batch/create", Some(json!({"inputs": [
        {"properties": {"email": "a@x.example", "firstname": "Ann", "num_employees": 5}, "objectWriteTraceId": "t1"},
        {"properties": {"email": "b@x.example", "firstname": "Bo", "num_employees": "50"}}
    ]}))).await;
    assert_eq!(st, 201);
    assert_eq!(v["status"], "COMPLETE");
    assert_eq!(v["results"][0]["objectWriteTraceId"], "t1");
    let ids: Vec<String> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let (st, v) = s
        .call(
            &t,
            "POST",
            "/crm/v3/objects/contacts/batch/read",
            Some(
                json!({"properties": ["firstname"], "inputs": [{"id": ids[0]}, {"id": "999999"}]}),
            ),
        )
        .await;
    assert_eq!(st, 207);
    assert_eq!(
        (
            v["numErrors"].as_i64(),
            v["errors"][0]["context"]["ids"][0].as_str()
        ),
        (Some(1), Some("999999"))
    );
    let (st, v) = s
        .call(
            &t,
            "PATCH",
            "/crm/v3/objects/contacts/b@x.example?idProperty=email",
            Some(json!({"properties": {"firstname": "Bob"}})),
        )
        .await;
    assert_eq!(
        (st, v["properties"]["firstname"].as_str()),
        (200, Some("Bob"))
    );
    let (_, v) = s.call(&t, "GET", &format!("/crm/v3/objects/contacts/{}?propertiesWithHistory=firstname&properties=firstname,email", ids[1]), None).await;
    let hist: Vec<&str> = v["propertiesWithHistory"]["firstname"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["value"].as_str().unwrap())
        .collect();
    assert_eq!(hist, vec!["Bob", "Bo"]);
    assert_eq!(
        v["propertiesWithHistory"]["firstname"][0]["sourceType"],
        "API"
    );
    let (st, v) = s.call(&t, "POST", "/crm/v3/objects/contacts/search", Some(json!({
        "filterGroups": [{"filters": [{"propertyName": "num_employees", "operator": "GT", "value": 9}]}],
        "sorts": ["-firstname"], "properties": ["firstname"]
    }))).await;
    assert_eq!(
        (
            st,
            v["total"].as_i64(),
            v["results"][0]["properties"]["firstname"].as_str()
        ),
        (200, Some(1), Some("Bob"))
    );
    let (st, v) = s
        .call(
            &t,
            "POST",
            "/crm/v3/objects/contacts/batch/upsert",
            Some(json!({"inputs": [
                {"id": "a@x.example", "idProperty": "email", "properties": {"lastname": "Lee"}},
                {"id": "c@x.example", "idProperty": "email", "properties": {"firstname": "Cy"}}
            ]})),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        (
            v["results"][0]["new"].as_bool(),
            v["results"][1]["new"].as_bool()
        ),
        (Some(false), Some(true))
    );
    // Paging: limit 2 over 3 contacts, then the last page has no `paging` at all.
    let (_, p1) = s
        .call(&t, "GET", "/crm/v3/objects/contacts?limit=2", None)
        .await;
    let after = p1["paging"]["next"]["after"].as_str().unwrap().to_string();
    let (_, p2) = s
        .call(
            &t,
            "GET",
            &format!("/crm/v3/objects/contacts?limit=2&after={after}"),
            None,
        )
        .await;
    assert_eq!(p2["results"].as_array().unwrap().len(), 1);
    assert!(p2.get("paging").is_none());
    assert_eq!(
        s.call(
            &t,
            "POST",
            "/crm/v3/objects/contacts/batch/archive",
            Some(json!({"inputs": [{"id": ids[0]}]}))
        )
        .await
        .0,
        204
    );
    let (_, arch) = s
        .call(
            &t,
            "GET",
            &format!("/crm/v3/objects/contacts/{}?archived=True", ids[0]),
            None,
        )
        .await;
    assert_eq!(arch["archived"], true);
    assert!(arch["archivedAt"].as_str().is_some());
    let (_, owners) = s.call(&t, "GET", "/crm/v3/owners/", None).await;
    assert!(owners["results"].as_array().is_some());
}

#[tokio::test]
async fn demo_runs_twice_without_duplicating_and_the_cli_is_scriptable() {
    let data_dir = std::env::temp_dir().join(format!("kontor-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let mut tokens: Vec<String> = Vec::new();
    for _ in 0..2 {
        let port = free_port();
        let mut child = kontor(&data_dir)
            .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines: Vec<String> = {
            use std::io::BufRead;
            let mut r = std::io::BufReader::new(stdout).lines();
            (0..5).map(|_| r.next().unwrap().unwrap()).collect()
        };
        let token = lines
            .iter()
            .find_map(|l| l.strip_prefix("API token:"))
            .unwrap()
            .trim()
            .to_string();
        assert!(
            lines.iter().any(|l| l.starts_with("super admin:"))
                && lines.iter().any(|l| l.starts_with("password:"))
        );
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let search = |t: &str| {
            let (http, base, t) = (http.clone(), base.clone(), t.to_string());
            async move {
                let r = http
                    .post(format!("{base}/crm/v3/objects/contacts/search"))
                    .bearer_auth(t)
                    .json(&json!({}))
                    .send()
                    .await
                    .unwrap();
                (
                    r.status().as_u16(),
                    r.json::<Value>().await.unwrap_or(Value::Null),
                )
            }
        };
        let (st, v) = search(&token).await;
        assert_eq!((st, v["total"].as_i64()), (200, Some(1000)));
        for t in &tokens {
            assert_eq!(
                search(t).await.0,
                401,
                "the previous demo token was revoked"
            );
        }
        let hc = kontor(&data_dir)
            .args(["healthcheck", "--listen", &format!("127.0.0.1:{port}")])
            .status()
            .unwrap();
        assert!(hc.success());
        tokens.push(token);
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let list = kontor(&data_dir)
        .args(["admin", "account", "list"])
        .output()
        .unwrap();
    let text = String::from_utf8(list.stdout).unwrap();
    assert_eq!(
        text.lines().filter(|l| l.ends_with("Demo Company")).count(),
        1
    );
    let down = kontor(&data_dir)
        .args([
            "healthcheck",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
        ])
        .status()
        .unwrap();
    assert!(!down.success(), "healthcheck fails when nothing listens");
    let bad = kontor(&data_dir)
        .args(["admin", "token", "create", "--account", "42", "--name", "x"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("account 42 does not exist"));
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test]
async fn every_answer_carries_its_correlation_id_and_unserved_paths_say_so() {
    let s = Server::start().await;
    let (_, t) = s.account("Correlation");
    let id_of = |r: &reqwest::Response| {
        r.headers()
            .get("x-hubspot-correlation-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    // A success, a refusal, and a path kontor does not serve: each carries an id of its own,
    // and an error body quotes its answer's.
    let mut seen = std::collections::HashSet::new();
    for (method, path, want) in [
        ("GET", "/crm/v3/objects/contacts", 200),
        ("GET", "/crm/v3/objects/contacts/999999", 404),
        ("GET", "/crm/v3/objects/widgets", 400),
        ("GET", "/crm/v3/no/such/endpoint", 501),
        ("POST", "/automation/v4/flows", 501),
    ] {
        let r = s
            .http
            .request(method.parse().unwrap(), format!("{}{path}", s.base))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), want, "{method} {path}");
        let id = id_of(&r).unwrap_or_else(|| panic!("{method} {path}: no correlation id"));
        assert_eq!(id.len(), 36, "{id}");
        assert!(
            seen.insert(id.clone()),
            "{method} {path}: a fresh id per request"
        );
        let body: Value = r.json().await.unwrap();
        if want >= 400 {
            assert_eq!(
                body["correlationId"],
                id.as_str(),
                "{method} {path}: {body}"
            );
        }
        if want == 501 {
            assert_envelope(&body, "NOT_IMPLEMENTED");
            let m = body["message"].as_str().unwrap();
            assert!(m.contains(path) && m.contains(method), "{m}");
        }
    }
    // Schemas are served under HubSpot's second prefix too, with the same answer.
    let (st, a) = s.call(&t, "GET", "/crm/v3/schemas", None).await;
    let (_, b) = s
        .call(&t, "GET", "/crm-object-schemas/v3/schemas", None)
        .await;
    assert_eq!((st, &a), (200, &b));
}
