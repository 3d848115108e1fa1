//! Searches under load: the scan stops at its deadline.

use crate::{account, actor, ot, props};
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
