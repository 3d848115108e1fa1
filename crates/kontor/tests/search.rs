//! Search conformance through the real server: every body shape HubSpot accepts (top-level
//! `filters`, `filterGroups`, both, neither; `after` as a string and as a number), each answer
//! checked against the records as listed and the request as the domain's matcher reads it.

mod common;

use common::Server;
use kontor_domain::property::PropertyType;
use kontor_domain::search::SearchRequest;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

const PROPS: &[&str] = &[
    "firstname",
    "num_employees",
    "city",
    "lifecyclestage",
    "lastmodifieddate",
    "hs_object_id",
];

struct Account {
    s: Server,
    token: String,
    kinds: HashMap<String, PropertyType>,
    /// Every contact's values of `PROPS`, by id, as the list endpoint shows them.
    records: BTreeMap<i64, BTreeMap<String, String>>,
}

impl Account {
    async fn new() -> Self {
        let s = Server::start().await;
        let (_, token) = s.account("search");
        let names = ["Ada", "Grace", "Alan", "Emma"];
        let inputs: Vec<Value> = (0..40)
            .map(|i| {
                let mut p = json!({
                    "firstname": names[i % names.len()],
                    "num_employees": ((i * 7) % 50).to_string(),
                    "lifecyclestage": if i % 3 == 0 { "customer" } else { "lead" },
                    "email": format!("p{i}@search.example"),
                });
                if i % 4 != 0 {
                    p["city"] = json!(["London", "Berlin", "Paris"][i % 3]);
                }
                json!({ "properties": p })
            })
            .collect();
        let (st, v) = s
            .call(
                &token,
                "POST",
                "/crm/v3/objects/contacts/batch/create",
                Some(json!({ "inputs": inputs })),
            )
            .await;
        assert_eq!(st, 201, "{v}");
        let (st, v) = s
            .call(&token, "GET", "/crm/v3/properties/contacts", None)
            .await;
        assert_eq!(st, 200, "{v}");
        let kinds = v["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| {
                Some((
                    p["name"].as_str()?.to_string(),
                    PropertyType::parse(p["type"].as_str()?)?,
                ))
            })
            .collect();
        let (st, v) = s
            .call(
                &token,
                "GET",
                &format!(
                    "/crm/v3/objects/contacts?limit=100&properties={}",
                    PROPS.join(",")
                ),
                None,
            )
            .await;
        assert_eq!(st, 200, "{v}");
        let records: BTreeMap<i64, BTreeMap<String, String>> = v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let props = r["properties"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect();
                (r["id"].as_str().unwrap().parse().unwrap(), props)
            })
            .collect();
        assert_eq!(records.len(), 40);
        Self {
            s,
            token,
            kinds,
            records,
        }
    }

    /// The ids `body` must find, in the order without a sort (by id).
    fn expected(&self, body: &Value) -> Vec<i64> {
        let req = SearchRequest::parse(body).unwrap();
        self.records
            .iter()
            .filter(|(_, props)| {
                req.filter_groups.is_empty()
                    || req.filter_groups.iter().any(|g| {
                        g.iter().all(|f| {
                            f.matches(
                                self.kinds[&f.property],
                                props.get(&f.property).map(String::as_str),
                            )
                        })
                    })
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// Every page of `body`'s answer, `after` sent as a string or as a number; the ids in
    /// order, and the total each page reported.
    async fn pages(&self, body: &Value, after_as_number: bool) -> (Vec<i64>, Vec<i64>) {
        let (mut ids, mut totals) = (Vec::new(), Vec::new());
        let mut body = body.clone();
        loop {
            let (st, v) = self
                .s
                .call(
                    &self.token,
                    "POST",
                    "/crm/v3/objects/contacts/search",
                    Some(body.clone()),
                )
                .await;
            assert_eq!(st, 200, "{body}: {v}");
            totals.push(v["total"].as_i64().unwrap());
            ids.extend(
                v["results"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["id"].as_str().unwrap().parse::<i64>().unwrap()),
            );
            let Some(after) = v["paging"]["next"]["after"].as_str() else {
                break;
            };
            assert!(ids.len() <= 40, "{body}: paging does not end");
            body["after"] = match after_as_number {
                true => json!(after.parse::<u64>().unwrap()),
                false => json!(after),
            };
        }
        (ids, totals)
    }
}

fn eq(property: &str, value: &str) -> Value {
    json!({"propertyName": property, "operator": "EQ", "value": value})
}

#[tokio::test]
async fn every_body_shape_finds_what_the_matcher_finds() {
    let a = Account::new().await;
    let mid = a.records.keys().nth(15).unwrap().to_string();
    let shapes = [
        ("neither", json!({})),
        ("empty lists", json!({"filters": [], "filterGroups": []})),
        (
            "top-level filters",
            json!({"filters": [{"propertyName": "num_employees", "operator": "GTE", "value": "20"}, eq("lifecyclestage", "lead")]}),
        ),
        (
            "filter groups",
            json!({"filterGroups": [{"filters": [eq("firstname", "Ada")]}, {"filters": [eq("firstname", "grace")]}]}),
        ),
        (
            "both: the top-level filters join every group",
            json!({
                "filters": [eq("lifecyclestage", "customer")],
                "filterGroups": [{"filters": [eq("firstname", "Ada")]}, {"filters": [{"propertyName": "city", "operator": "NOT_HAS_PROPERTY"}]}],
            }),
        ),
        (
            "an incremental sync's cursor",
            json!({"filters": [
                {"propertyName": "lastmodifieddate", "operator": "GTE", "value": "0"},
                {"propertyName": "hs_object_id", "operator": "GTE", "value": mid},
            ], "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]}),
        ),
    ];
    for (name, shape) in &shapes {
        let want = a.expected(shape);
        assert!(
            name.starts_with("neither") || name.starts_with("empty") || want.len() < 40,
            "{name}: the shape narrows the answer"
        );
        assert!(!want.is_empty(), "{name}: the shape finds something");
        for after_as_number in [false, true] {
            let mut body = shape.clone();
            body["limit"] = json!(7);
            let (ids, totals) = a.pages(&body, after_as_number).await;
            assert_eq!(ids, want, "{name} (after as a number: {after_as_number})");
            assert!(
                totals.iter().all(|&t| t == want.len() as i64),
                "{name}: total {totals:?}, want {}",
                want.len()
            );
        }
    }
}

#[tokio::test]
async fn a_field_search_does_not_know_is_refused() {
    let a = Account::new().await;
    for (body, field) in [
        (json!({"filter": [eq("firstname", "Ada")]}), "filter"),
        (json!({"filterGroups": [], "archived": true}), "archived"),
        (json!({"filters": {"propertyName": "firstname"}}), "filters"),
        (
            json!({"filters": [{"propertyName": "firstname"}]}),
            "filters[0].operator",
        ),
        (
            json!({"filters": [eq("nosuchproperty", "x")]}),
            "filters[0].propertyName",
        ),
    ] {
        let (st, v) =
            a.s.call(
                &a.token,
                "POST",
                "/crm/v3/objects/contacts/search",
                Some(body.clone()),
            )
            .await;
        assert_eq!(st, 400, "{body}: {v}");
        assert_eq!(v["category"], "VALIDATION_ERROR", "{body}: {v}");
        assert!(
            v["message"].as_str().unwrap().contains(field),
            "{body}: the message names {field}: {v}"
        );
    }
}

/// A property made over existing records is indexed by a job: meanwhile `kontor admin search
/// status` and the console show how far the build has come, and searches on the property are
/// still exact; once a node with job workers runs it, both say so.
#[tokio::test]
async fn an_index_build_shows_its_progress_until_it_ends() {
    use common::console::{console_page, sign_in, user};
    // No job workers: nothing indexes or builds until the restart below.
    let mut s = Server::start_with(None, &[("KONTOR_JOB_WORKERS", "0")]).await;
    let (account, token) = s.account("builds");
    let (_, password) = user(&s, &account, "admin@builds.example", "super-admin");
    let inputs: Vec<Value> = (0..30)
        .map(|i| json!({"properties": {"firstname": format!("b{i}")}}))
        .collect();
    let (status, _) = s
        .call(
            &token,
            "POST",
            "/crm/v3/objects/contacts/batch/create",
            Some(json!({"inputs": inputs})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, body) = s
        .call(
            &token,
            "POST",
            "/crm/v3/properties/contacts",
            Some(json!({"name": "tier", "label": "Tier", "type": "string", "fieldType": "text", "groupName": "contactinformation"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let status_lines = |s: &Server| s.cli(&["admin", "search", "status", "--account", &account]);
    let before = status_lines(&s);
    let mut lines = before.lines();
    let behind: i64 = lines
        .next()
        .and_then(|l| l.strip_prefix("behind\t"))
        .unwrap()
        .parse()
        .unwrap();
    assert!(behind >= 30, "{before}");
    assert_eq!(
        lines.collect::<Vec<_>>(),
        ["building\tcontacts\ttier\t0\t30"]
    );
    let session = sign_in(&s, "admin@builds.example", &password).await.0;
    let page = console_page(&s, &session, "/app/settings/properties/contacts/tier").await;
    assert!(page.contains("Building: 0 of 30 records (0 %)"), "{page}");
    let list = console_page(&s, &session, "/app/settings/properties?type=contacts").await;
    assert!(list.contains("id=\"index-builds\""), "{list}");
    // Searches on it are exact meanwhile: the matcher answers for the property.
    let (_, body) = s
        .call(
            &token,
            "POST",
            "/crm/v3/objects/contacts/search",
            Some(json!({"filterGroups": [{"filters": [{"propertyName": "tier", "operator": "NOT_HAS_PROPERTY"}]}]})),
        )
        .await;
    assert_eq!(body["total"], 30, "{body}");

    s.kill9_and_restart(&[]).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while status_lines(&s) != "behind\t0" {
        assert!(
            std::time::Instant::now() < deadline,
            "still: {}",
            status_lines(&s)
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let session = sign_in(&s, "admin@builds.example", &password).await.0;
    let page = console_page(&s, &session, "/app/settings/properties/contacts/tier").await;
    assert!(
        page.contains("<dd id=\"search-index\">Ready</dd>"),
        "{page}"
    );
    let list = console_page(&s, &session, "/app/settings/properties?type=contacts").await;
    assert!(!list.contains("index-builds"), "{list}");
}
