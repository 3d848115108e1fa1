//! Searches under load: the scan stops at its deadline.

use super::*;
use kontor_domain::search::SearchRequest;
use kontor_store::{CreateInput, Directory, StoreError};
use serde_json::json;
use std::time::{Duration, Instant};

/// A scan past its deadline ends with `TimedOut`, whether the deadline passes before the
/// first batch is matched or while rows are still streaming; in time, it answers in full.
pub async fn searches_stop_at_their_deadline(d: Directory) {
    let (a, s) = account(&d, "deadline").await;
    let contacts = ot(&s, a, "contacts").await;
    for chunk in 0..6 {
        let inputs: Vec<CreateInput> = (0..100)
            .map(|i| CreateInput {
                properties: props(json!({"firstname": format!("p{chunk}-{i}"), "city": "x"})),
                associations: vec![],
            })
            .collect();
        s.create_records(a, &contacts, inputs, &actor())
            .await
            .unwrap();
    }
    // A filter no unique property pins: the whole type is scanned.
    let req = SearchRequest::parse(&json!({
        "filterGroups": [{"filters": [{"propertyName": "city", "operator": "EQ", "value": "x"}]}],
        "sorts": ["-firstname"],
        "limit": 5
    }))
    .unwrap();
    let err = s
        .search_until(a, &contacts, &req, Instant::now())
        .await
        .expect_err("a deadline already past");
    assert!(matches!(err, StoreError::TimedOut(_)), "{err:?}");
    let (total, page) = s
        .search_until(a, &contacts, &req, Instant::now() + Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!((total, page.len()), (600, 5));
    assert_eq!(page[0].props["firstname"], "p5-99");
}

/// A search keeps only a page's worth of matches while it scans; every page must still be the
/// slice of the fully sorted result, ties broken by id.
pub async fn search_pages_equal_the_full_sort(d: Directory) {
    let (a, s) = account(&d, "top-k").await;
    let contacts = ot(&s, a, "contacts").await;
    let inputs: Vec<CreateInput> = (0..60)
        .map(|i| CreateInput {
            properties: props(json!({"firstname": format!("n{}", (i * 37) % 13), "city": if i % 4 == 0 { "" } else { "x" }})),
            associations: vec![],
        })
        .collect();
    let made = s
        .create_records(a, &contacts, inputs, &actor())
        .await
        .unwrap();
    let mut expected: Vec<(String, i64)> = made
        .iter()
        .map(|r| (r.props.get("firstname").cloned().unwrap_or_default(), r.id))
        .collect();
    expected.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
    let want: Vec<i64> = expected.iter().map(|e| e.1).collect();
    for limit in [1, 3, 7] {
        let mut got = Vec::new();
        let mut after = 0;
        while after < want.len() {
            let req = SearchRequest::parse(
                &json!({"sorts": ["-firstname"], "limit": limit, "after": after}),
            )
            .unwrap();
            let (total, page) = s.search(a, &contacts, &req).await.unwrap();
            assert_eq!(total, 60);
            got.extend(page.iter().map(|r| r.id));
            after += limit;
        }
        assert_eq!(got, want, "pages of {limit}");
    }
}

pub async fn search_filters_sorts_and_pages(d: Directory) {
    let (a, s) = account(&d, "search").await;
    let contacts = ot(&s, a, "contacts").await;
    let people = [
        ("Ada", "Lovelace", 10, "ada@calc.example"),
        ("Grace", "Hopper", 9, "grace@navy.example"),
        ("Alan", "Turing", 100, "alan@bletchley.example"),
        ("Edsger", "Dijkstra", 0, "ewd@utexas.example"),
    ];
    let inputs = people
        .iter()
        .map(|(f, l, n, e)| CreateInput {
            properties: props(
                json!({"firstname": f, "lastname": l, "num_employees": n, "email": e}),
            ),
            associations: vec![],
        })
        .collect();
    s.create_records(a, &contacts, inputs, &actor())
        .await
        .unwrap();
    let names = |req: Value| {
        let s = s.clone();
        let contacts = contacts.clone();
        async move {
            let req = SearchRequest::parse(&req).unwrap();
            let (total, rs) = s.search(a, &contacts, &req).await.unwrap();
            (
                total,
                rs.into_iter()
                    .map(|r| r.props["firstname"].clone())
                    .collect::<Vec<_>>(),
            )
        }
    };
    let f = |p: &str, op: &str, v: Value| json!({"filterGroups": [{"filters": [{"propertyName": p, "operator": op, "value": v}]}], "sorts": ["firstname"]});
    assert_eq!(
        names(f("num_employees", "GTE", json!("10"))).await.1,
        vec!["Ada", "Alan"],
        "numbers compare numerically"
    );
    assert_eq!(
        names(f("email", "EQ", json!("GRACE@navy.example"))).await.1,
        vec!["Grace"],
        "unique lookup is case-insensitive"
    );
    assert_eq!(
        names(f("lastname", "CONTAINS_TOKEN", json!("turing")))
            .await
            .1,
        vec!["Alan"]
    );
    assert_eq!(
        names(f("email", "CONTAINS_TOKEN", json!("*.example")))
            .await
            .0,
        4
    );
    assert_eq!(
        names(f("num_employees", "LT", json!(1))).await.1,
        vec!["Edsger"]
    );
    let or = json!({"filterGroups": [
        {"filters": [{"propertyName": "firstname", "operator": "EQ", "value": "ada"}]},
        {"filters": [{"propertyName": "num_employees", "operator": "BETWEEN", "value": "50", "highValue": "200"}]}
    ], "sorts": [{"propertyName": "num_employees", "direction": "DESCENDING"}]});
    assert_eq!(
        names(or).await.1,
        vec!["Alan", "Ada"],
        "groups are ORed and sorted"
    );
    assert_eq!(
        names(json!({"query": "hop", "sorts": ["-lastname"]}))
            .await
            .1,
        vec!["Grace"]
    );
    let (total, page) = names(json!({"sorts": ["-num_employees"], "limit": 2, "after": "1"})).await;
    assert_eq!(
        (total, page),
        (4, vec!["Ada".to_string(), "Grace".to_string()])
    );
    let bad = SearchRequest::parse(&json!({"filterGroups": [{"filters": [{"propertyName": "nope", "operator": "EQ", "value": "1"}]}]})).unwrap();
    assert!(matches!(
        s.search(a, &contacts, &bad).await,
        Err(StoreError::Validation { .. })
    ));
    let has = json!({"filterGroups": [{"filters": [{"propertyName": "phone", "operator": "NOT_HAS_PROPERTY"}, {"propertyName": "firstname", "operator": "IN", "values": ["ADA", "alan"]}]}], "sorts": ["firstname"]});
    assert_eq!(names(has).await.1, vec!["Ada", "Alan"]);
}
