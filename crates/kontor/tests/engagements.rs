//! The engagements v1 API through the real server: notes, calls, tasks, meetings and e-mails
//! made with the v3 API (with their associations), read back as v1 engagements, page by page
//! and one at a time; and one account never reaching another's. Also the contact lists v1
//! API of a portal without lists.

mod common;

use common::console::user;
use common::Server;
use kontor_domain::time::parse_instant;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// An account with a token, and the records its engagements are associated with.
struct Account {
    id: i64,
    token: String,
    owner: i64,
    contact: i64,
    company: i64,
    deal: i64,
    ticket: i64,
}

fn id_of(v: &Value) -> i64 {
    v["id"].as_str().unwrap().parse().unwrap()
}

/// Epoch milliseconds of a v3 timestamp.
fn ms(iso: &Value) -> i64 {
    parse_instant(iso.as_str().unwrap()).unwrap()
}

async fn create(s: &Server, token: &str, object_type: &str, body: Value) -> Value {
    let (st, v) = s
        .call(
            token,
            "POST",
            &format!("/crm/v3/objects/{object_type}"),
            Some(body),
        )
        .await;
    assert_eq!(st, 201, "creating {object_type}: {v}");
    v
}

async fn account(s: &Server, name: &str) -> Account {
    let (id, token) = s.account(name);
    user(s, &id, &format!("owner@{name}.example"), "user");
    let (st, owners) = s.call(&token, "GET", "/crm/v3/owners", None).await;
    assert_eq!(st, 200, "{owners}");
    let owner = owners["results"][0]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let contact = create(
        s,
        &token,
        "contacts",
        json!({"properties": {"email": format!("ada@{name}.example")}}),
    )
    .await;
    let company = create(
        s,
        &token,
        "companies",
        json!({"properties": {"name": "Analytical Engines"}}),
    )
    .await;
    let deal = create(
        s,
        &token,
        "deals",
        json!({"properties": {"dealname": "Engine", "dealstage": "appointmentscheduled"}}),
    )
    .await;
    let ticket = create(
        s,
        &token,
        "tickets",
        json!({"properties": {"subject": "Gears", "hs_pipeline_stage": "1"}}),
    )
    .await;
    Account {
        id: id.parse().unwrap(),
        token,
        owner,
        contact: id_of(&contact),
        company: id_of(&company),
        deal: id_of(&deal),
        ticket: id_of(&ticket),
    }
}

/// An inline v3 association with HubSpot's type id.
fn to(id: i64, type_id: i64) -> Value {
    json!({
        "to": {"id": id.to_string()},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
    })
}

/// `GET /engagements/v1/engagements/{id}`, which must answer 200.
async fn engagement(s: &Server, token: &str, id: i64) -> Value {
    let (st, v) = s
        .call(
            token,
            "GET",
            &format!("/engagements/v1/engagements/{id}"),
            None,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    v
}

/// Every page of `/engagements/v1/engagements/paged` at `limit`, each checked for its shape.
async fn all_pages(s: &Server, token: &str, limit: usize) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut offset: Option<i64> = None;
    loop {
        let path = match offset {
            None => format!("/engagements/v1/engagements/paged?limit={limit}"),
            Some(o) => format!("/engagements/v1/engagements/paged?limit={limit}&offset={o}"),
        };
        let (st, page) = s.call(token, "GET", &path, None).await;
        assert_eq!(st, 200, "{page}");
        assert!(page["results"].as_array().unwrap().len() <= limit);
        let more = page["hasMore"].as_bool().unwrap();
        offset = Some(page["offset"].as_i64().unwrap());
        pages.push(page);
        if !more {
            return pages;
        }
        assert!(pages.len() < 1000, "paging does not end");
    }
}

fn ids_of(pages: &[Value]) -> Vec<i64> {
    pages
        .iter()
        .flat_map(|p| p["results"].as_array().unwrap())
        .map(|e| e["engagement"]["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_engagement_reads_back_as_hubspot_shows_it() {
    let s = Server::start().await;
    let a = account(&s, "eng-a").await;
    let t = &a.token;
    let at = "2024-05-01T10:00:00.000Z";
    let at_ms = parse_instant(at).unwrap();

    let note = create(
        &s,
        t,
        "notes",
        json!({
            "properties": {
                "hs_timestamp": at,
                "hs_note_body": "<p>Spoke with   <b>Ada</b></p><p>about the engine</p>",
                "hubspot_owner_id": a.owner.to_string(),
            },
            "associations": [to(a.contact, 202), to(a.company, 190), to(a.deal, 214), to(a.ticket, 228)],
        }),
    )
    .await;
    let call = create(
        &s,
        t,
        "calls",
        json!({
            "properties": {
                "hs_timestamp": at,
                "hs_call_title": "Follow-up",
                "hs_call_body": "Left a message",
                "hs_call_duration": "95000",
                "hs_call_status": "NO_ANSWER",
                "hs_call_direction": "OUTBOUND",
            },
            "associations": [to(a.contact, 194)],
        }),
    )
    .await;
    let task = create(
        &s,
        t,
        "tasks",
        json!({
            "properties": {
                "hs_timestamp": "2024-06-01T09:00:00Z",
                "hs_task_subject": "Send the plans",
                "hs_task_body": "Both volumes",
                "hs_task_status": "NOT_STARTED",
                "hs_task_type": "EMAIL",
                "hs_task_priority": "HIGH",
            },
            "associations": [to(a.deal, 216), to(a.company, 192)],
        }),
    )
    .await;
    let meeting = create(
        &s,
        t,
        "meetings",
        json!({
            "properties": {
                "hs_timestamp": at,
                "hs_meeting_title": "Demo",
                "hs_meeting_body": "Show the mill",
                "hs_meeting_start_time": at,
                "hs_meeting_end_time": "2024-05-01T11:30:00Z",
                "hs_meeting_location": "London",
            },
            "associations": [to(a.contact, 200), to(a.ticket, 226)],
        }),
    )
    .await;
    let email = create(
        &s,
        t,
        "emails",
        json!({
            "properties": {
                "hs_timestamp": at,
                "hs_email_subject": "Re: plans",
                "hs_email_text": "Thank you for the plans.",
                "hs_email_direction": "INCOMING_EMAIL",
            },
            "associations": [to(a.contact, 198)],
        }),
    )
    .await;
    let outgoing = create(
        &s,
        t,
        "emails",
        json!({"properties": {"hs_timestamp": at, "hs_email_subject": "Plans", "hs_email_direction": "EMAIL"}}),
    )
    .await;

    // Single reads: each engagement as the v1 API shows it.
    let get = |id: i64| engagement(&s, t, id);

    let n = get(id_of(&note)).await;
    let e = &n["engagement"];
    assert_eq!(e["id"], json!(id_of(&note)));
    assert_eq!(e["portalId"], json!(a.id));
    assert_eq!(e["active"], json!(true));
    assert_eq!(e["type"], "NOTE");
    assert_eq!(e["timestamp"], json!(at_ms));
    assert_eq!(e["createdAt"], json!(ms(&note["createdAt"])));
    assert_eq!(e["lastUpdated"], json!(ms(&note["updatedAt"])));
    assert_eq!(e["ownerId"], json!(a.owner));
    assert_eq!(e["bodyPreview"], "Spoke with Ada about the engine");
    assert_eq!(
        n["metadata"],
        json!({"body": "<p>Spoke with   <b>Ada</b></p><p>about the engine</p>"})
    );
    assert_eq!(
        n["associations"],
        json!({
            "contactIds": [a.contact],
            "companyIds": [a.company],
            "dealIds": [a.deal],
            "ownerIds": [],
            "workflowIds": [],
            "ticketIds": [a.ticket],
        })
    );
    assert_eq!(n["attachments"], json!([]));

    let c = get(id_of(&call)).await;
    assert_eq!(c["engagement"]["type"], "CALL");
    assert!(c["engagement"].get("ownerId").is_none(), "{c}");
    assert_eq!(
        c["metadata"],
        json!({
            "title": "Follow-up",
            "body": "Left a message",
            "durationMilliseconds": 95000,
            "status": "NO_ANSWER",
        })
    );
    assert_eq!(c["associations"]["contactIds"], json!([a.contact]));
    assert_eq!(c["associations"]["companyIds"], json!([]));

    let k = get(id_of(&task)).await;
    assert_eq!(k["engagement"]["type"], "TASK");
    assert_eq!(
        k["engagement"]["timestamp"],
        json!(parse_instant("2024-06-01T09:00:00Z").unwrap())
    );
    assert_eq!(
        k["metadata"],
        json!({
            "subject": "Send the plans",
            "body": "Both volumes",
            "status": "NOT_STARTED",
            "taskType": "EMAIL",
            "priority": "HIGH",
        })
    );
    assert_eq!(k["associations"]["dealIds"], json!([a.deal]));
    assert_eq!(k["associations"]["companyIds"], json!([a.company]));

    let m = get(id_of(&meeting)).await;
    assert_eq!(m["engagement"]["type"], "MEETING");
    assert_eq!(
        m["metadata"],
        json!({
            "title": "Demo",
            "body": "Show the mill",
            "startTime": at_ms,
            "endTime": parse_instant("2024-05-01T11:30:00Z").unwrap(),
            "location": "London",
        })
    );
    assert_eq!(m["associations"]["ticketIds"], json!([a.ticket]));

    let x = get(id_of(&email)).await;
    assert_eq!(x["engagement"]["type"], "INCOMING_EMAIL");
    assert_eq!(x["engagement"]["bodyPreview"], "Thank you for the plans.");
    assert_eq!(
        x["metadata"],
        json!({
            "subject": "Re: plans",
            "text": "Thank you for the plans.",
            "to": [],
            "cc": [],
            "bcc": [],
        })
    );
    let o = get(id_of(&outgoing)).await;
    assert_eq!(o["engagement"]["type"], "EMAIL");
    assert!(o["engagement"].get("bodyPreview").is_none(), "{o}");

    // Changing a record shows in its engagement.
    let (st, v) = s
        .call(
            t,
            "PATCH",
            &format!("/crm/v3/objects/tasks/{}", id_of(&task)),
            Some(json!({"properties": {"hs_task_status": "COMPLETED"}})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let k = get(id_of(&task)).await;
    assert_eq!(k["metadata"]["status"], "COMPLETED");
    assert_eq!(k["engagement"]["lastUpdated"], json!(ms(&v["updatedAt"])));

    // An archived contact is no longer among the note's associations, and an archived
    // engagement is gone.
    let (st, _) = s
        .call(
            t,
            "DELETE",
            &format!("/crm/v3/objects/contacts/{}", a.contact),
            None,
        )
        .await;
    assert_eq!(st, 204);
    let n = get(id_of(&note)).await;
    assert_eq!(n["associations"]["contactIds"], json!([]));
    assert_eq!(n["associations"]["companyIds"], json!([a.company]));
    let (st, _) = s
        .call(
            t,
            "DELETE",
            &format!("/crm/v3/objects/calls/{}", id_of(&call)),
            None,
        )
        .await;
    assert_eq!(st, 204);
    let (st, v) = s
        .call(
            t,
            "GET",
            &format!("/engagements/v1/engagements/{}", id_of(&call)),
            None,
        )
        .await;
    assert_eq!(st, 404, "{v}");

    // The listing shows the same engagements as the single reads.
    let pages = all_pages(&s, t, 250).await;
    assert_eq!(pages.len(), 1);
    let listed: BTreeMap<i64, &Value> = pages[0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["engagement"]["id"].as_i64().unwrap(), e))
        .collect();
    let live = [&note, &task, &meeting, &email, &outgoing];
    assert_eq!(
        listed.keys().copied().collect::<BTreeSet<_>>(),
        live.iter().map(|r| id_of(r)).collect()
    );
    for r in live {
        assert_eq!(*listed[&id_of(r)], get(id_of(r)).await);
    }
    assert_eq!(pages[0]["total"], json!(5));

    // Writing through v1 is not served (the v3 objects API writes engagements), and leaves the
    // engagement as it was.
    let one = format!("/engagements/v1/engagements/{}", id_of(&note));
    for (method, path) in [
        ("POST", "/engagements/v1/engagements"),
        ("PUT", one.as_str()),
        ("PATCH", one.as_str()),
        ("DELETE", one.as_str()),
    ] {
        let body = json!({"engagement": {"type": "NOTE"}, "metadata": {"body": "changed"}});
        let (st, v) = s.call(t, method, path, Some(body)).await;
        assert_eq!(st, 501, "{method} {path}: {v}");
        assert_eq!(v["category"], "NOT_IMPLEMENTED");
    }
    assert_eq!(
        get(id_of(&note)).await["metadata"]["body"],
        "<p>Spoke with   <b>Ada</b></p><p>about the engine</p>"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_visits_every_engagement_exactly_once() {
    let s = Server::start().await;
    let a = account(&s, "eng-paging").await;
    let t = &a.token;
    let at = "2024-05-01T10:00:00Z";
    // Engagements of every type, made in turns with contacts, so that the ids of each type
    // interleave with the others' and with records that are not engagements.
    let mut made = BTreeMap::new();
    for i in 0..4 {
        for (object_type, props) in [
            (
                "notes",
                json!({"hs_timestamp": at, "hs_note_body": format!("note {i}")}),
            ),
            (
                "calls",
                json!({"hs_timestamp": at, "hs_call_title": format!("call {i}")}),
            ),
            (
                "tasks",
                json!({"hs_timestamp": at, "hs_task_subject": format!("task {i}")}),
            ),
            (
                "meetings",
                json!({"hs_timestamp": at, "hs_meeting_title": format!("meeting {i}")}),
            ),
            (
                "emails",
                json!({"hs_timestamp": at, "hs_email_subject": format!("email {i}")}),
            ),
        ] {
            let r = create(
                &s,
                t,
                object_type,
                json!({"properties": props, "associations": []}),
            )
            .await;
            made.insert(id_of(&r), object_type);
            create(
                &s,
                t,
                "contacts",
                json!({"properties": {"firstname": format!("between {object_type} {i}")}}),
            )
            .await;
        }
    }
    assert_eq!(made.len(), 20);

    for limit in [1, 3, 7, 20, 100] {
        let pages = all_pages(&s, t, limit).await;
        let ids = ids_of(&pages);
        assert_eq!(
            ids,
            made.keys().copied().collect::<Vec<_>>(),
            "limit {limit}: every engagement once, in id order"
        );
        assert_eq!(pages.len(), 20usize.div_ceil(limit).max(1), "limit {limit}");
        for p in &pages {
            assert_eq!(p["total"], json!(20));
        }
        for e in pages.iter().flat_map(|p| p["results"].as_array().unwrap()) {
            let want = match made[&e["engagement"]["id"].as_i64().unwrap()] {
                "notes" => "NOTE",
                "calls" => "CALL",
                "tasks" => "TASK",
                "meetings" => "MEETING",
                _ => "EMAIL",
            };
            assert_eq!(e["engagement"]["type"], want);
        }
    }

    // Past the last page: nothing, and the offset stays where it was.
    let last = *made.keys().last().unwrap();
    let (st, v) = s
        .call(
            t,
            "GET",
            &format!("/engagements/v1/engagements/paged?offset={last}"),
            None,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["results"], json!([]));
    assert_eq!(v["hasMore"], json!(false));
    assert_eq!(v["offset"], json!(last));

    // A limit that is not a positive number is refused; an offset too.
    for q in ["limit=0", "limit=ten", "offset=-1", "offset=abc"] {
        let (st, v) = s
            .call(
                t,
                "GET",
                &format!("/engagements/v1/engagements/paged?{q}"),
                None,
            )
            .await;
        assert_eq!(st, 400, "{q}: {v}");
        assert_eq!(v["category"], "VALIDATION_ERROR");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_hold_100_by_default_and_250_at_most() {
    let s = Server::start().await;
    let (_, t) = s.account("eng-limits");
    for batch in 0..3 {
        let inputs: Vec<Value> = (0..100)
            .map(|i| {
                json!({"properties": {
                    "hs_timestamp": "2024-05-01T10:00:00Z",
                    "hs_note_body": format!("note {batch}-{i}"),
                }})
            })
            .collect();
        let (st, v) = s
            .call(
                &t,
                "POST",
                "/crm/v3/objects/notes/batch/create",
                Some(json!({ "inputs": inputs })),
            )
            .await;
        assert_eq!(st, 201, "{v}");
    }
    let (st, v) = s
        .call(&t, "GET", "/engagements/v1/engagements/paged", None)
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["results"].as_array().unwrap().len(), 100);
    assert_eq!(v["hasMore"], json!(true));
    assert_eq!(v["total"], json!(300));
    let (st, v) = s
        .call(
            &t,
            "GET",
            "/engagements/v1/engagements/paged?limit=1000",
            None,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["results"].as_array().unwrap().len(), 250);
    assert_eq!(v["hasMore"], json!(true));
    let (st, rest) = s
        .call(
            &t,
            "GET",
            &format!(
                "/engagements/v1/engagements/paged?limit=1000&offset={}",
                v["offset"]
            ),
            None,
        )
        .await;
    assert_eq!(st, 200, "{rest}");
    assert_eq!(rest["results"].as_array().unwrap().len(), 50);
    assert_eq!(rest["hasMore"], json!(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_account_never_reaches_anothers_engagements() {
    let s = Server::start().await;
    let a = account(&s, "eng-mine").await;
    let b = account(&s, "eng-theirs").await;
    let at = "2024-05-01T10:00:00Z";
    let mine = create(
        &s,
        &a.token,
        "notes",
        json!({"properties": {"hs_timestamp": at, "hs_note_body": "mine"}}),
    )
    .await;
    // Ids are counted per account: the other account's note gets an id this account has
    // not used, so that a 404 below is not this account's own record answering.
    for i in 0..5 {
        create(
            &s,
            &b.token,
            "contacts",
            json!({"properties": {"firstname": format!("filler {i}")}}),
        )
        .await;
    }
    let theirs = create(
        &s,
        &b.token,
        "notes",
        json!({
            "properties": {"hs_timestamp": at, "hs_note_body": "theirs, not yours"},
            "associations": [to(b.contact, 202)],
        }),
    )
    .await;

    assert!(id_of(&theirs) > id_of(&mine), "{theirs}");
    let (st, v) = s
        .call(
            &a.token,
            "GET",
            &format!("/engagements/v1/engagements/{}", id_of(&theirs)),
            None,
        )
        .await;
    assert_eq!(st, 404, "{v}");
    assert_eq!(v["status"], "error");
    assert_eq!(v["category"], "OBJECT_NOT_FOUND");
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains(theirs["id"].as_str().unwrap()));
    assert!(v["correlationId"].is_string());
    assert!(!v.to_string().contains("not yours"));

    // Nor are this account's records that are not engagements, ids no record has, and ids
    // that are not ids.
    for id in [a.contact.to_string(), "999999999".into(), "abc".into()] {
        let (st, v) = s
            .call(
                &a.token,
                "GET",
                &format!("/engagements/v1/engagements/{id}"),
                None,
            )
            .await;
        assert_eq!(st, 404, "{id}: {v}");
    }

    let pages = all_pages(&s, &a.token, 1).await;
    assert_eq!(ids_of(&pages), vec![id_of(&mine)]);
    assert_eq!(pages[0]["total"], json!(1));
    assert!(!pages.iter().any(|p| p.to_string().contains("not yours")));

    let pages = all_pages(&s, &b.token, 10).await;
    assert_eq!(ids_of(&pages), vec![id_of(&theirs)]);
    assert_eq!(
        pages[0]["results"][0]["associations"]["contactIds"],
        json!([b.contact])
    );
    assert_eq!(
        pages[0]["results"][0]["engagement"]["portalId"],
        json!(b.id)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_without_contact_lists() {
    let s = Server::start().await;
    let (_, t) = s.account("lists");
    let (st, v) = s.call(&t, "GET", "/contacts/v1/lists", None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v, json!({"lists": [], "offset": 0, "has-more": false}));
    let (st, v) = s.call(&t, "GET", "/contacts/v1/lists/42", None).await;
    assert_eq!(st, 404, "{v}");
    assert_eq!(v["status"], "error");
    assert_eq!(v["category"], "OBJECT_NOT_FOUND");
    assert!(v["message"].as_str().unwrap().contains("42"));
}
