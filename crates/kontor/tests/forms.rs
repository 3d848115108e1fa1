//! Forms: defined through `/marketing/v3/forms` and the console, submitted from any website
//! through HubSpot's submission endpoint without a token; each submission creates or updates
//! the contact with its e-mail and is recorded once. (Submissions during a data move: in
//! `moves.rs`.)

mod common;

use common::console::{console_page, console_post, http, sign_in, user};
use common::Server;
use reqwest::header::COOKIE;
use serde_json::{json, Value};

async fn submit(
    s: &Server,
    account: &str,
    form: &str,
    body: Value,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let resp = http()
        .post(format!(
            "{}/submissions/v3/integration/submit/{account}/{form}",
            s.base
        ))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let v = resp.json().await.unwrap_or(Value::Null);
    (status, v, headers)
}

fn fields(pairs: &[(&str, &str)]) -> Value {
    json!({
        "fields": pairs.iter().map(|(n, v)| json!({"objectTypeId": "0-1", "name": n, "value": v})).collect::<Vec<_>>(),
        "context": {"pageUri": "https://www.example.com/join", "pageName": "Join us"},
    })
}

async fn contacts_with(s: &Server, token: &str, email: &str) -> Value {
    let (status, v) = s
        .call(
            token,
            "POST",
            "/crm/v3/objects/contacts/search",
            Some(json!({
                "filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": email}]}],
                "properties": ["email", "firstname", "city"],
            })),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_take_submissions_as_hubspots_do() {
    let s = Server::start().await;
    let (account, token) = s.account("Forms");
    let (_, other_token) = s.account("Someone else");

    // A form, in HubSpot's v3 shape.
    let (status, form) = s
        .call(
            &token,
            "POST",
            "/marketing/v3/forms",
            Some(json!({
                "name": "Newsletter",
                "formType": "hubspot",
                "fieldGroups": [{"groupType": "default_group", "fields": [
                    {"objectTypeId": "0-1", "name": "email", "label": "Email", "required": true},
                    {"objectTypeId": "0-1", "name": "firstname", "label": "First name", "required": true},
                    {"objectTypeId": "0-1", "name": "city", "label": "City"},
                ]}],
                "configuration": {"postSubmitAction": {"type": "thank_you", "value": "Welcome aboard."}},
            })),
        )
        .await;
    assert_eq!(status, 201, "{form}");
    let id = form["id"].as_str().unwrap().to_string();
    let groups = form["fieldGroups"].as_array().unwrap();
    assert_eq!(groups.len(), 3);
    assert_eq!(groups[0]["fields"][0]["name"], "email");
    assert_eq!(groups[0]["fields"][0]["fieldType"], "email");
    assert_eq!(groups[1]["fields"][0]["required"], true);
    assert_eq!(groups[2]["fields"][0]["required"], false);
    assert_eq!(
        form["configuration"]["postSubmitAction"]["value"],
        "Welcome aboard."
    );

    // Definitions that cannot work are refused, saying why.
    for (body, says) in [
        (
            json!({"name": "No e-mail", "fieldGroups": [{"fields": [{"name": "firstname"}]}]}),
            "email field",
        ),
        (
            json!({"name": "Unknown", "fieldGroups": [{"fields": [{"name": "email"}, {"name": "shoe_size"}]}]}),
            "not a contact property",
        ),
        (
            json!({"name": "Companies", "fieldGroups": [{"fields": [{"objectTypeId": "0-2", "name": "name"}]}]}),
            "contact properties",
        ),
        (
            json!({"name": "", "fieldGroups": [{"fields": [{"name": "email"}]}]}),
            "name",
        ),
    ] {
        let (status, v) = s
            .call(&token, "POST", "/marketing/v3/forms", Some(body))
            .await;
        assert_eq!(status, 400, "{v}");
        assert!(v["message"].as_str().unwrap().contains(says), "{v}");
    }

    // Listed and read back; not by another account.
    let (_, list) = s.call(&token, "GET", "/marketing/v3/forms", None).await;
    assert_eq!(list["results"].as_array().unwrap().len(), 1);
    assert_eq!(list["results"][0]["id"], id.as_str());
    let (status, _) = s
        .call(
            &other_token,
            "GET",
            &format!("/marketing/v3/forms/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = s
        .call(
            &other_token,
            "GET",
            &format!("/form-integrations/v1/submissions/forms/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 404);

    // A website submits, without a token, from another origin.
    let preflight = http()
        .request(
            reqwest::Method::OPTIONS,
            format!(
                "{}/submissions/v3/integration/submit/{account}/{id}",
                s.base
            ),
        )
        .header("origin", "https://www.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status().as_u16(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    let (status, v, headers) = submit(
        &s,
        &account,
        &id,
        fields(&[
            ("email", "Ada@Example.com"),
            ("firstname", "Ada"),
            ("city", "London"),
        ]),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v, json!({"inlineMessage": "Welcome aboard."}));
    assert_eq!(headers["access-control-allow-origin"], "*");
    let found = contacts_with(&s, &token, "ada@example.com").await;
    assert_eq!(found["total"], 1, "{found}");
    let contact = &found["results"][0];
    assert_eq!(contact["properties"]["firstname"], "Ada");
    assert_eq!(contact["properties"]["city"], "London");
    let contact_id = contact["id"].as_str().unwrap().to_string();
    // The history says where the values came from.
    let (_, with_history) = s
        .call(
            &token,
            "GET",
            &format!("/crm/v3/objects/contacts/{contact_id}?propertiesWithHistory=city"),
            None,
        )
        .await;
    assert_eq!(
        with_history["propertiesWithHistory"]["city"][0]["sourceType"], "FORM",
        "{with_history}"
    );

    // The same person again: the same contact, updated.
    let (status, _, _) = submit(
        &s,
        &account,
        &id,
        fields(&[
            ("email", "ada@example.com"),
            ("firstname", "Ada"),
            ("city", "Paris"),
        ]),
    )
    .await;
    assert_eq!(status, 200);
    let found = contacts_with(&s, &token, "ada@example.com").await;
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(found["results"][0]["id"], contact_id.as_str());
    assert_eq!(found["results"][0]["properties"]["city"], "Paris");
    // A field left empty does not clear what the contact has.
    let (status, _, _) = submit(
        &s,
        &account,
        &id,
        fields(&[
            ("email", "ada@example.com"),
            ("firstname", "Ada"),
            ("city", ""),
        ]),
    )
    .await;
    assert_eq!(status, 200);
    let found = contacts_with(&s, &token, "ada@example.com").await;
    assert_eq!(
        found["results"][0]["properties"]["city"], "Paris",
        "{found}"
    );

    // What HubSpot refuses, it refuses, with its error types.
    for (body, status, error_type) in [
        (
            fields(&[("email", "bob@example.com")]),
            400,
            "REQUIRED_FIELD",
        ),
        (
            fields(&[("email", "not an address"), ("firstname", "Bob")]),
            400,
            "INVALID_EMAIL",
        ),
        (
            fields(&[
                ("email", "bob@example.com"),
                ("firstname", "Bob"),
                ("lastname", "B"),
            ]),
            400,
            "FIELD_NOT_IN_FORM_DEFINITION",
        ),
    ] {
        let (got, v, _) = submit(&s, &account, &id, body).await;
        assert_eq!(got, status, "{v}");
        assert_eq!(v["status"], "error");
        assert_eq!(v["errors"][0]["errorType"], error_type, "{v}");
    }
    let (got, v, _) = submit(
        &s,
        &account,
        "no-such-form",
        fields(&[("email", "x@example.com")]),
    )
    .await;
    assert_eq!(got, 404, "{v}");
    assert_eq!(v["errors"][0]["errorType"], "FORM_NOT_FOUND");
    let (got, _, _) = submit(&s, "999999", &id, fields(&[("email", "x@example.com")])).await;
    assert_eq!(got, 404, "a form of another portal is not found");
    let bad = http()
        .post(format!(
            "{}/submissions/v3/integration/submit/{account}/{id}",
            s.base
        ))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    assert!(
        contacts_with(&s, &token, "bob@example.com").await["total"] == 0,
        "a refused submission writes nothing"
    );

    // Every submission is recorded, newest first, with its contact.
    let (status, subs) = s
        .call(
            &token,
            "GET",
            &format!("/form-integrations/v1/submissions/forms/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{subs}");
    let results = subs["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{subs}");
    assert!(results
        .iter()
        .all(|r| r["contactId"] == contact_id.as_str()
            && r["pageUrl"] == "https://www.example.com/join"));
    assert!(results.iter().any(|r| r["values"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["name"] == "city" && f["value"] == "Paris")));

    // Renamed; archived: no more submissions.
    let (status, v) = s
        .call(
            &token,
            "PATCH",
            &format!("/marketing/v3/forms/{id}"),
            Some(json!({"name": "Newsletter (old)"})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["name"], "Newsletter (old)");
    assert_eq!(v["fieldGroups"].as_array().unwrap().len(), 3, "fields kept");
    let (status, _) = s
        .call(&token, "DELETE", &format!("/marketing/v3/forms/{id}"), None)
        .await;
    assert_eq!(status, 204);
    let (got, _, _) = submit(
        &s,
        &account,
        &id,
        fields(&[("email", "late@example.com"), ("firstname", "Late")]),
    )
    .await;
    assert_eq!(got, 404, "an archived form takes no submissions");
    let (_, list) = s.call(&token, "GET", "/marketing/v3/forms", None).await;
    assert!(list["results"].as_array().unwrap().is_empty());
    let (_, archived) = s
        .call(&token, "GET", "/marketing/v3/forms?archived=true", None)
        .await;
    assert_eq!(archived["results"][0]["archived"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_makes_forms_and_shows_their_submissions() {
    let s = Server::start().await;
    let (account, token) = s.account("Console forms");
    let (_, pw) = user(&s, &account, "admin@forms.example", "admin");
    let session = sign_in(&s, "admin@forms.example", &pw).await;
    assert!(console_page(&s, &session.0, "/app/settings/forms")
        .await
        .contains("No forms yet."));
    // Without the session's CSRF token nothing is made (the first `_csrf` sent counts).
    let (status, _) = console_post(
        &s,
        &session,
        "/app/settings/forms",
        &[("_csrf", "wrong"), ("name", "Sneaky"), ("field", "email")],
    )
    .await;
    assert_eq!(status, 403);
    let made = http()
        .post(format!("{}/app/settings/forms", s.base))
        .header(COOKIE, format!("kontor_session={}", session.0))
        .form(&[
            ("_csrf", session.1.as_str()),
            ("name", "Contact us"),
            ("field", "email"),
            ("field", "firstname"),
            ("required", "firstname"),
            ("message", "We will be in touch."),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(made.status().as_u16(), 303);
    let location = made.headers()["location"].to_str().unwrap().to_string();
    let id = location
        .trim_start_matches("/app/settings/forms/")
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let (_, list) = s.call(&token, "GET", "/marketing/v3/forms", None).await;
    assert_eq!(list["results"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["results"][0]["id"], id.as_str());
    assert_eq!(list["results"][0]["name"], "Contact us");
    assert_eq!(
        list["results"][0]["fieldGroups"][1]["fields"][0]["required"],
        true
    );
    let (status, v, _) = submit(
        &s,
        &account,
        &id,
        fields(&[("email", "grace@example.com"), ("firstname", "Grace")]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["inlineMessage"], "We will be in touch.");
    let shown = console_page(&s, &session.0, &location).await;
    assert!(
        shown.contains("grace@example.com"),
        "the submission is listed"
    );
    assert!(shown.contains(&format!(
        "/submissions/v3/integration/submit/{account}/{id}"
    )));
    // A form without a name comes back with the message next to it.
    let (status, html) = console_post(
        &s,
        &session,
        "/app/settings/forms",
        &[("name", ""), ("field", "email")],
    )
    .await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("A form needs a name"), "{html}");
}

/// The submission endpoint takes no token, so each client address may send only so many a
/// minute (`[forms] submissions_per_client_per_minute`); past it, 429 with `Retry-After`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submissions_are_limited_per_client() {
    let s = Server::start_with(
        None,
        &[("KONTOR_FORM_SUBMISSIONS_PER_CLIENT_PER_MINUTE", "3")],
    )
    .await;
    let (account, token) = s.account("Limited");
    let (status, form) = s
        .call(
            &token,
            "POST",
            "/marketing/v3/forms",
            Some(json!({"name": "Busy", "fieldGroups": [{"fields": [{"name": "email"}]}]})),
        )
        .await;
    assert_eq!(status, 201, "{form}");
    let id = form["id"].as_str().unwrap();
    for i in 0..3 {
        let (status, v, _) = submit(
            &s,
            &account,
            id,
            fields(&[("email", &format!("n{i}@example.com"))]),
        )
        .await;
        assert_eq!(status, 200, "{v}");
    }
    let (status, v, headers) =
        submit(&s, &account, id, fields(&[("email", "n3@example.com")])).await;
    assert_eq!(status, 429, "{v}");
    assert_eq!(v["errors"][0]["errorType"], "RATE_LIMIT");
    assert!(headers.contains_key("retry-after"));
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert_eq!(
        contacts_with(&s, &token, "n3@example.com").await["total"],
        0,
        "a refused submission writes nothing"
    );
}
