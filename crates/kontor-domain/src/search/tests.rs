//! The search request's parser and matcher, on their own.

use super::*;
use proptest::prelude::*;
use serde_json::json;

#[test]
fn every_cap_admits_its_limit_and_refuses_one_more() {
    let ok = |v: Value| SearchRequest::parse(&v).map(|_| ()).map_err(|e| e.field);
    let words = |n: usize| vec!["w"; n].join(" ");
    let values = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>();
    let inf = |vals: Vec<String>| json!({"filterGroups": [{"filters": [{"propertyName": "a", "operator": "IN", "values": vals}]}]});
    let eqf = |v: String| json!({"filterGroups": [{"filters": [{"propertyName": "a", "operator": "EQ", "value": v}]}]});
    assert_eq!(ok(json!({"sorts": ["a"]})), Ok(()));
    assert_eq!(ok(json!({"sorts": ["a", "b"]})), Err("sorts".into()));
    assert_eq!(ok(json!({"query": words(MAX_QUERY_WORDS)})), Ok(()));
    assert_eq!(
        ok(json!({"query": words(MAX_QUERY_WORDS + 1)})),
        Err("query".into())
    );
    assert_eq!(ok(json!({"query": "x".repeat(MAX_QUERY_CHARS)})), Ok(()));
    assert_eq!(
        ok(json!({"query": "x".repeat(MAX_QUERY_CHARS + 1)})),
        Err("query".into())
    );
    assert_eq!(ok(inf(values(MAX_VALUES))), Ok(()));
    assert_eq!(
        ok(inf(values(MAX_VALUES + 1))),
        Err("filterGroups[0].filters[0].values".into())
    );
    assert_eq!(ok(eqf("é".repeat(MAX_VALUE_CHARS))), Ok(()));
    assert_eq!(
        ok(eqf("é".repeat(MAX_VALUE_CHARS + 1))),
        Err("filterGroups[0].filters[0]".into())
    );
    assert_eq!(ok(json!({"properties": vec!["p"; MAX_PROPERTIES]})), Ok(()));
    assert_eq!(
        ok(json!({"properties": vec!["p"; MAX_PROPERTIES + 1]})),
        Err("properties".into())
    );
}

#[test]
fn top_level_filters_are_anded_with_every_group() {
    let eq = |p: &str, v: &str| json!({"propertyName": p, "operator": "EQ", "value": v});
    let alone = SearchRequest::parse(&json!({"filters": [eq("a", "1"), eq("b", "2")]})).unwrap();
    assert_eq!(alone.filter_groups.len(), 1);
    assert_eq!(alone.filter_groups[0].len(), 2);
    let both = SearchRequest::parse(&json!({
        "filters": [eq("a", "1")],
        "filterGroups": [{"filters": [eq("b", "2")]}, {"filters": [eq("c", "3")]}],
    }))
    .unwrap();
    let props: Vec<Vec<&str>> = both
        .filter_groups
        .iter()
        .map(|g| g.iter().map(|f| f.property.as_str()).collect())
        .collect();
    assert_eq!(props, vec![vec!["b", "a"], vec!["c", "a"]]);
    let named: Vec<String> = both.referenced_properties().map(|(_, path)| path).collect();
    assert_eq!(
        named,
        vec![
            "filterGroups[0].filters[0].propertyName",
            "filters[0].propertyName",
            "filterGroups[1].filters[0].propertyName",
            "filters[0].propertyName",
        ]
    );
    let neither = SearchRequest::parse(&json!({"filters": [], "filterGroups": []})).unwrap();
    assert!(neither.filter_groups.is_empty());
    let bad = SearchRequest::parse(&json!({"filters": [{"propertyName": "a"}]})).unwrap_err();
    assert_eq!(bad.field, "filters[0].operator");
}

#[test]
fn an_unknown_field_is_refused_not_ignored() {
    let e = SearchRequest::parse(&json!({"filter": [], "limit": 5})).unwrap_err();
    assert_eq!(e.field, "filter");
    assert!(e.message.contains("filterGroups"), "{}", e.message);
}

#[test]
fn parses_the_three_sort_forms() {
    let r: Vec<Sort> = [
        json!("email"),
        json!("-createdate"),
        json!({"propertyName": "x", "direction": "DESCENDING"}),
    ]
    .into_iter()
    .flat_map(|s| SearchRequest::parse(&json!({"sorts": [s]})).unwrap().sorts)
    .collect();
    assert_eq!(
        r,
        vec![
            Sort {
                property: "email".into(),
                descending: false
            },
            Sort {
                property: "createdate".into(),
                descending: true
            },
            Sort {
                property: "x".into(),
                descending: true
            },
        ]
    );
}

#[test]
fn limits_are_enforced() {
    assert_eq!(
        SearchRequest::parse(&json!({"limit": 201}))
            .unwrap_err()
            .field,
        "limit"
    );
    assert_eq!(
        SearchRequest::parse(&json!({"after": 9950, "limit": 100}))
            .unwrap_err()
            .field,
        "after"
    );
    let r = SearchRequest::parse(&json!({"after": 20})).unwrap();
    assert_eq!((r.after, r.limit), (20, 10));
    let r = SearchRequest::parse(&json!({"after": "20", "limit": "5"})).unwrap();
    assert_eq!((r.after, r.limit), (20, 5));
    let err = SearchRequest::parse(&json!({"filterGroups": [{"filters": [{"propertyName": "a", "operator": "LIKE", "value": "x"}]}]})).unwrap_err();
    assert_eq!(err.field, "filterGroups[0].filters[0].operator");
}

#[test]
fn operators() {
    let f = |op: &str, v: Value| {
        Filter::parse(&json!({"propertyName": "p", "operator": op, "value": v, "highValue": "20", "values": ["a", "B"]}), "f").unwrap()
    };
    assert!(f("GTE", json!(9)).matches(PropertyType::Number, Some("10")));
    assert!(!f("GTE", json!("9")).matches(PropertyType::String, Some("10")));
    assert!(f("BETWEEN", json!("10")).matches(PropertyType::Number, Some("20")));
    assert!(f("EQ", json!("ADA@x.io")).matches(PropertyType::String, Some("ada@x.io")));
    assert!(f("IN", json!(null)).matches(PropertyType::String, Some("b")));
    assert!(f("NOT_IN", json!(null)).matches(PropertyType::String, None));
    assert!(f("LT", json!("2024-05-02"))
        .matches(PropertyType::Datetime, Some("2024-05-01T10:00:00.000Z")));
    assert!(f("LT", json!(1714608000000i64))
        .matches(PropertyType::Datetime, Some("2024-05-01T10:00:00.000Z")));
    assert!(f("CONTAINS_TOKEN", json!("*@hubspot.com"))
        .matches(PropertyType::String, Some("ada@hubspot.com")));
    assert!(
        f("CONTAINS_TOKEN", json!("lovelace")).matches(PropertyType::String, Some("Ada Lovelace"))
    );
    assert!(!f("CONTAINS_TOKEN", json!("love")).matches(PropertyType::String, Some("Ada Lovelace")));
    assert!(
        f("NOT_CONTAINS_TOKEN", json!("love")).matches(PropertyType::String, Some("Ada Lovelace"))
    );
    let has = Filter::parse(
        &json!({"propertyName": "p", "operator": "HAS_PROPERTY"}),
        "f",
    )
    .unwrap();
    assert!(
        has.matches(PropertyType::String, Some("x")) && !has.matches(PropertyType::String, None)
    );
}

#[test]
fn query_words() {
    let v = ["Ada", "Lovelace", "ada.lovelace@Example.org"];
    assert!(query_matches("ada love", None, v.into_iter()));
    assert!(!query_matches("ada grace", None, v.into_iter()));
    assert!(query_matches("example.org", None, v.into_iter()));
    assert!(!query_matches("velace", None, v.into_iter()));
    assert!(query_matches("ADA 17", Some(17), v.into_iter()));
    assert!(!query_matches("1", Some(17), v.into_iter()));
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop_oneof![
            Just("EQ"),
            Just("BETWEEN"),
            Just("IN"),
            Just("-x"),
            Just("email"),
            Just("DESCENDING"),
            Just("*")
        ]
        .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    let keys = prop_oneof![
        Just("filterGroups".to_string()),
        Just("filters".to_string()),
        Just("propertyName".to_string()),
        Just("operator".to_string()),
        Just("value".to_string()),
        Just("values".to_string()),
        Just("highValue".to_string()),
        Just("sorts".to_string()),
        Just("direction".to_string()),
        Just("limit".to_string()),
        Just("after".to_string()),
        Just("query".to_string()),
        Just("properties".to_string()),
        ".{0,6}"
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::hash_map(keys.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    /// Any JSON at all either parses into a request within the limits or is refused with
    /// a field path; matching a parsed request against any value never panics.
    #[test]
    fn parser_never_panics(body in any_json(), stored in proptest::option::of(".{0,12}")) {
        match SearchRequest::parse(&body) {
            Ok(r) => {
                prop_assert!(r.limit <= MAX_LIMIT && r.after + r.limit <= MAX_RESULTS);
                for f in r.filter_groups.iter().flatten() {
                    for kind in [PropertyType::String, PropertyType::Number, PropertyType::Datetime] {
                        let _ = f.matches(kind, stored.as_deref());
                    }
                }
            }
            Err(e) => prop_assert!(!e.field.is_empty()),
        }
    }
}
