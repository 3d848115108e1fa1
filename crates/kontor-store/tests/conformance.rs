//! The store conformance suite: every test runs against SQLite and against PostgreSQL.
//!
//! PostgreSQL comes from `KONTOR_TEST_POSTGRES_URL` (the test script starts a throwaway
//! server). Without it the PostgreSQL half fails, unless `KONTOR_TEST_SKIP_POSTGRES=1` says
//! on purpose that this machine has none.

use kontor_domain::search::SearchRequest;
use kontor_domain::{ChangeSource, Region, Role, Tier};
use kontor_store::{
    Actor, AssociationInput, CreateInput, Directory, ObjectType, SchemaInput, Store, StoreError,
    StoreResult, UpdateInput,
};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

#[path = "conformance/accounts.rs"]
mod accounts;
use accounts::account_names_are_one_line_of_text;
#[path = "conformance/imports.rs"]
mod imports;
use imports::{
    open_import_bytes_are_capped_per_account, open_imports_are_capped_per_account,
    retention_of_import_errors_files_and_notifications,
};
#[path = "conformance/moving.rs"]
mod moving;
use moving::{
    a_fenced_account_takes_no_writes, a_live_copy_catches_up, a_superseded_runner_writes_nothing,
    an_account_moves_whole_between_cells, every_table_has_a_moving_rule,
};
#[path = "conformance/searches.rs"]
mod searches;
use searches::searches_stop_at_their_deadline;
#[path = "conformance/sso.rs"]
mod sso;
use sso::{sso_settings_and_single_use_states, sso_states_in_flight_are_bounded};
#[path = "conformance/webhooks.rs"]
mod webhooks;
use webhooks::webhook_events_follow_the_change_log;
#[path = "conformance/sign_in.rs"]
mod sign_in;
use sign_in::{
    attempts_are_counted_before_checking, password_reset_links_are_single_use,
    recovery_codes_spend_once_under_concurrency, sessions_and_second_factors,
};

static SEQ: AtomicU64 = AtomicU64::new(0);

async fn sqlite() -> Directory {
    let dir = std::env::temp_dir().join(format!(
        "kontor-conformance-{}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst),
        kontor_domain::time::now_ms()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = |name: &str| format!("sqlite://{}", dir.join(name).display());
    let directory = Store::open(&url("directory.db")).await.unwrap();
    let us = Store::open(&url("us.db")).await.unwrap();
    let eu = Store::open(&url("eu.db")).await.unwrap();
    Directory {
        directory,
        regions: HashMap::from([(Region::Us, us), (Region::Eu, eu)]),
    }
}

async fn postgres() -> Option<Directory> {
    let Ok(url) = std::env::var("KONTOR_TEST_POSTGRES_URL") else {
        assert_eq!(
            std::env::var("KONTOR_TEST_SKIP_POSTGRES").as_deref(),
            Ok("1"),
            "KONTOR_TEST_POSTGRES_URL is not set; set KONTOR_TEST_SKIP_POSTGRES=1 to skip PostgreSQL on purpose"
        );
        return None;
    };
    let store = Store::open(&url).await.unwrap();
    Some(Directory {
        directory: store.clone(),
        regions: HashMap::from([(Region::Us, store.clone()), (Region::Eu, store)]),
    })
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(super::sqlite().await).await; })*
        }
        mod on_postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { if let Some(d) = super::postgres().await { super::$name(d).await; } })*
        }
    };
}

conformance!(
    seeds_builtin_schema,
    create_read_update_archive_with_history,
    unique_values_and_atomic_batches,
    ids_are_allocated_per_account,
    accounts_are_isolated,
    account_names_are_one_line_of_text,
    search_filters_sorts_and_pages,
    search_pages_equal_the_full_sort,
    searches_stop_at_their_deadline,
    associations_both_ways,
    property_definitions,
    custom_objects,
    upsert_by_unique_property,
    users_and_tokens,
    tokens_live_only_while_their_creator_holds_the_role,
    concurrent_writers_get_distinct_ids_and_sequences,
    concurrent_duplicates_conflict_cleanly,
    concurrent_updates_of_one_record_keep_every_property,
    writers_in_two_processes_wait_for_each_other,
    recycle_bin_restore_and_purge,
    sessions_and_second_factors,
    attempts_are_counted_before_checking,
    recovery_codes_spend_once_under_concurrency,
    password_reset_links_are_single_use,
    import_rows_are_whole_or_rejected,
    import_batches_need_the_lease,
    open_imports_are_capped_per_account,
    open_import_bytes_are_capped_per_account,
    retention_of_import_errors_files_and_notifications,
    one_restore_at_a_time,
    restore_batches_read_ahead_see_later_writes,
    sso_settings_and_single_use_states,
    sso_states_in_flight_are_bounded,
    every_table_has_a_moving_rule,
    an_account_moves_whole_between_cells,
    a_fenced_account_takes_no_writes,
    a_live_copy_catches_up,
    a_superseded_runner_writes_nothing,
    webhook_events_follow_the_change_log,
);

fn actor() -> Actor {
    Actor {
        source: ChangeSource::Api,
        source_id: Some("conformance".into()),
        user_id: None,
    }
}

fn props(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

async fn account(d: &Directory, name: &str) -> (i64, Store) {
    let a = d
        .create_account(name, Region::Us, Tier::Enterprise)
        .await
        .unwrap();
    (a.id, d.cell(&a).unwrap().clone())
}

async fn ot(s: &Store, account: i64, name: &str) -> ObjectType {
    s.object_type(account, name).await.unwrap().unwrap()
}

async fn seeds_builtin_schema(d: Directory) {
    let (a, s) = account(&d, "seed").await;
    let props = s.properties(a, "0-1", false).await.unwrap();
    let email = props
        .iter()
        .find(|p| p.name == "email")
        .expect("contacts have email");
    assert!(email.has_unique_value);
    assert!(props
        .iter()
        .any(|p| p.name == "hs_object_id" && p.read_only_value));
    assert_eq!(
        s.property_groups(a, "0-1").await.unwrap()[0].name,
        "contactinformation"
    );
    for name in [
        "contacts",
        "companies",
        "deals",
        "tickets",
        "products",
        "calls",
        "conversations",
        "tasks",
        "notes",
        "meetings",
        "emails",
    ] {
        assert!(s.object_type(a, name).await.unwrap().is_some(), "{name}");
    }
    assert!(s.object_type(a, "widgets").await.unwrap().is_none());
    let listed = d.accounts().await.unwrap();
    assert!(listed
        .iter()
        .any(|x| x.id == a && x.tier == Tier::Enterprise));
}

async fn create_read_update_archive_with_history(d: Directory) {
    let (a, s) = account(&d, "crud").await;
    let contacts = ot(&s, a, "contacts").await;
    let created = s
        .create_records(
            a,
            &contacts,
            vec![CreateInput {
                properties: props(
                    json!({"email": "ada@example.com", "firstname": "Ada", "num_employees": 12}),
                ),
                associations: vec![],
            }],
            &actor(),
        )
        .await
        .unwrap();
    let r = &created[0];
    assert_eq!(r.props["email"], "ada@example.com");
    assert_eq!(r.props["hs_object_id"], r.id.to_string());
    assert!(r.props.contains_key("createdate") && r.props.contains_key("lastmodifieddate"));
    let (updated, missing) = s
        .update_records(
            a,
            &contacts,
            vec![UpdateInput {
                id: r.id,
                properties: props(json!({"firstname": "Augusta", "num_employees": ""})),
            }],
            &actor(),
        )
        .await
        .unwrap();
    assert!(missing.is_empty());
    assert_eq!(updated[0].props["firstname"], "Augusta");
    assert!(
        !updated[0].props.contains_key("num_employees"),
        "an empty string clears a value"
    );
    let stored = s.record(a, &contacts, r.id, false).await.unwrap().unwrap();
    assert_eq!(stored.props, updated[0].props);
    let h = s
        .history(a, &[r.id], &["firstname".into(), "num_employees".into()])
        .await
        .unwrap();
    let first: Vec<_> = h[&r.id]["firstname"]
        .iter()
        .map(|e| e.value.clone().unwrap())
        .collect();
    assert_eq!(first, vec!["Augusta", "Ada"], "history is newest first");
    assert_eq!(h[&r.id]["num_employees"][0].value, None);
    assert_eq!(h[&r.id]["firstname"][0].source, "API");
    let before = s.last_change_seq(a).await.unwrap();
    assert_eq!(
        s.archive_records(a, &contacts, &[r.id, 999_999], &actor())
            .await
            .unwrap(),
        vec![r.id]
    );
    assert!(s.record(a, &contacts, r.id, false).await.unwrap().is_none());
    let archived = s.record(a, &contacts, r.id, true).await.unwrap().unwrap();
    assert!(archived.archived && archived.archived_at.is_some());
    assert_eq!(
        s.last_change_seq(a).await.unwrap(),
        before + 1,
        "archiving is in the change log"
    );
    // The e-mail of an archived contact is free again.
    s.create_records(
        a,
        &contacts,
        vec![CreateInput {
            properties: props(json!({"email": "ADA@example.com"})),
            associations: vec![],
        }],
        &actor(),
    )
    .await
    .unwrap();
}

async fn unique_values_and_atomic_batches(d: Directory) {
    let (a, s) = account(&d, "unique").await;
    let contacts = ot(&s, a, "contacts").await;
    let first = s
        .create_records(
            a,
            &contacts,
            vec![CreateInput {
                properties: props(json!({"email": "grace@example.com"})),
                associations: vec![],
            }],
            &actor(),
        )
        .await
        .unwrap();
    let seq = s.last_change_seq(a).await.unwrap();
    let dup = s
        .create_records(
            a,
            &contacts,
            vec![CreateInput {
                properties: props(json!({"email": "Grace@Example.com"})),
                associations: vec![],
            }],
            &actor(),
        )
        .await;
    match dup {
        Err(StoreError::Conflict {
            existing_id,
            message,
        }) => {
            assert_eq!(existing_id, Some(first[0].id));
            assert!(message.contains("Contact already exists"));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // A batch whose second input is invalid writes nothing at all.
    let bad = s
        .create_records(
            a,
            &contacts,
            vec![
                CreateInput {
                    properties: props(json!({"email": "new@example.com"})),
                    associations: vec![],
                },
                CreateInput {
                    properties: props(json!({"lifecyclestage": "not-a-stage"})),
                    associations: vec![],
                },
            ],
            &actor(),
        )
        .await;
    match bad {
        Err(StoreError::Validation { in_field, code, .. }) => {
            assert_eq!(
                in_field.as_deref(),
                Some("inputs[1].properties.lifecyclestage")
            );
            assert_eq!(code, "INVALID_OPTION");
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
    // Two inputs of one batch with the same e-mail conflict with each other.
    let twice = s
        .create_records(
            a,
            &contacts,
            vec![
                CreateInput {
                    properties: props(json!({"email": "twin@example.com"})),
                    associations: vec![],
                },
                CreateInput {
                    properties: props(json!({"email": "twin@example.com"})),
                    associations: vec![],
                },
            ],
            &actor(),
        )
        .await;
    assert!(matches!(twice, Err(StoreError::Conflict { .. })));
    assert_eq!(s.count_records(a, &contacts, false).await.unwrap(), 1);
    assert_eq!(
        s.last_change_seq(a).await.unwrap(),
        seq,
        "failed writes leave no change"
    );
    for (value, code) in [
        (json!({"foo": "x"}), "PROPERTY_DOESNT_EXIST"),
        (json!({"num_employees": "many"}), "INVALID_INTEGER"),
        (json!({"createdate": "2024-01-01"}), "READ_ONLY_VALUE"),
    ] {
        match s
            .create_records(
                a,
                &contacts,
                vec![CreateInput {
                    properties: props(value),
                    associations: vec![],
                }],
                &actor(),
            )
            .await
        {
            Err(StoreError::Validation { code: c, .. }) => assert_eq!(c, code),
            other => panic!("expected {code}, got {other:?}"),
        }
    }
}

async fn ids_are_allocated_per_account(d: Directory) {
    let (a, s) = account(&d, "ids-a").await;
    let (b, t) = account(&d, "ids-b").await;
    let ca = ot(&s, a, "contacts").await;
    let x = s
        .create_records(
            a,
            &ca,
            vec![CreateInput::default(), CreateInput::default()],
            &actor(),
        )
        .await
        .unwrap();
    let y = t
        .create_records(b, &ca, vec![CreateInput::default()], &actor())
        .await
        .unwrap();
    assert_eq!(x.iter().map(|r| r.id).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(y[0].id, 1, "each account numbers its own records");
}

async fn accounts_are_isolated(d: Directory) {
    let (a, s) = account(&d, "iso-a").await;
    let (b, _) = account(&d, "iso-b").await;
    let contacts = ot(&s, a, "contacts").await;
    let r = s
        .create_records(
            a,
            &contacts,
            vec![CreateInput {
                properties: props(json!({"email": "secret@a.example"})),
                associations: vec![],
            }],
            &actor(),
        )
        .await
        .unwrap();
    assert!(s
        .record(b, &contacts, r[0].id, false)
        .await
        .unwrap()
        .is_none());
    assert!(s
        .ids_by_unique(b, &contacts, "email", &["secret@a.example".into()])
        .await
        .unwrap()
        .is_empty());
    let req = SearchRequest::parse(&json!({})).unwrap();
    assert_eq!(s.search(b, &contacts, &req).await.unwrap().0, 0);
    let (upd, missing) = s
        .update_records(
            b,
            &contacts,
            vec![UpdateInput {
                id: r[0].id,
                properties: props(json!({"firstname": "x"})),
            }],
            &actor(),
        )
        .await
        .unwrap();
    assert!(upd.is_empty() && missing == vec![r[0].id]);
    assert!(s
        .archive_records(b, &contacts, &[r[0].id], &actor())
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .record(a, &contacts, r[0].id, false)
        .await
        .unwrap()
        .is_some());
}

/// A search keeps only a page's worth of matches while it scans; every page must still be the
/// slice of the fully sorted result, ties broken by id.
async fn search_pages_equal_the_full_sort(d: Directory) {
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

async fn search_filters_sorts_and_pages(d: Directory) {
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

async fn associations_both_ways(d: Directory) {
    let (a, s) = account(&d, "assoc").await;
    let (contacts, companies, deals) = (
        ot(&s, a, "contacts").await,
        ot(&s, a, "companies").await,
        ot(&s, a, "deals").await,
    );
    let co = s
        .create_records(
            a,
            &companies,
            vec![CreateInput {
                properties: props(json!({"name": "Analytical Engines"})),
                associations: vec![],
            }],
            &actor(),
        )
        .await
        .unwrap()[0]
        .id;
    let c = s
        .create_records(
            a,
            &contacts,
            vec![CreateInput {
                properties: props(json!({"email": "ada@ae.example"})),
                associations: vec![AssociationInput {
                    to_id: co,
                    types: vec![("HUBSPOT_DEFINED".into(), 1)],
                }],
            }],
            &actor(),
        )
        .await
        .unwrap()[0]
        .id;
    let (found, _) = s
        .associated(a, &contacts, c, &companies, None, 10)
        .await
        .unwrap();
    let mut ids: Vec<i64> = found[0].types.iter().map(|t| t.type_id).collect();
    ids.sort_unstable();
    assert_eq!(
        (found[0].to_id, ids),
        (co, vec![1, 279]),
        "a primary association implies the default one"
    );
    let (back, _) = s
        .associated(a, &companies, co, &contacts, None, 10)
        .await
        .unwrap();
    assert_eq!(back[0].to_id, c);
    assert!(back[0].types.iter().any(|t| t.type_id == 280));
    // An association type that does not belong to the pair is refused.
    let deal = s
        .create_records(
            a,
            &deals,
            vec![CreateInput {
                properties: props(
                    json!({"dealname": "D", "pipeline": "default", "dealstage": "closedwon"}),
                ),
                associations: vec![],
            }],
            &actor(),
        )
        .await
        .unwrap()[0]
        .id;
    assert!(s
        .associate(
            a,
            &deals,
            deal,
            &contacts,
            c,
            &[("HUBSPOT_DEFINED".into(), 279)],
            &actor(),
        )
        .await
        .is_err());
    let made = s
        .associate(a, &deals, deal, &contacts, c, &[], &actor())
        .await
        .unwrap();
    assert_eq!(made[0].type_id, 3);
    let label = s
        .create_association_label(
            a,
            &contacts,
            &companies,
            "Former employee",
            "former_employee",
            Some("Former employer"),
        )
        .await
        .unwrap();
    s.associate(
        a,
        &contacts,
        c,
        &companies,
        co,
        &[("USER_DEFINED".into(), label.type_id)],
        &actor(),
    )
    .await
    .unwrap();
    let (found, _) = s
        .associated(a, &companies, co, &contacts, None, 10)
        .await
        .unwrap();
    assert!(found[0]
        .types
        .iter()
        .any(|t| t.label.as_deref() == Some("Former employer")));
    s.dissociate(a, &contacts, c, &companies, co, None, &actor())
        .await
        .unwrap();
    assert!(s
        .associated(a, &companies, co, &contacts, None, 10)
        .await
        .unwrap()
        .0
        .is_empty());
    // Associations to archived records are not shown.
    s.archive_records(a, &contacts, &[c], &actor())
        .await
        .unwrap();
    assert!(s
        .associated(a, &deals, deal, &contacts, None, 10)
        .await
        .unwrap()
        .0
        .is_empty());
}

async fn property_definitions(d: Directory) {
    let (a, s) = account(&d, "props").await;
    let input = |v: Value| serde_json::from_value::<kontor_store::PropertyInput>(v).unwrap();
    let def = s
        .create_property(a, "0-1", input(json!({"name": "favourite_colour", "label": "Favourite colour", "type": "enumeration", "fieldType": "select", "groupName": "contactinformation", "options": [{"label": "Red", "value": "red"}, {"label": "Blue", "value": "blue"}], "dataSensitivity": "sensitive"})))
        .await
        .unwrap();
    assert!(def.sensitivity.is_sensitive());
    assert!(matches!(s.create_property(a, "0-1", input(json!({"name": "favourite_colour", "label": "x", "type": "string", "groupName": "contactinformation"}))).await, Err(StoreError::Conflict { .. })));
    assert!(matches!(s.create_property(a, "0-1", input(json!({"name": "Bad Name", "label": "x", "type": "string", "groupName": "contactinformation"}))).await, Err(StoreError::Validation { .. })));
    assert!(matches!(s.create_property(a, "0-1", input(json!({"name": "n", "label": "x", "type": "number", "fieldType": "text", "groupName": "contactinformation"}))).await, Err(StoreError::Validation { .. })));
    assert!(matches!(
        s.create_property(
            a,
            "0-1",
            input(json!({"name": "n", "label": "x", "type": "string", "groupName": "nogroup"}))
        )
        .await,
        Err(StoreError::Validation { .. })
    ));
    let contacts = ot(&s, a, "contacts").await;
    assert!(s
        .create_records(
            a,
            &contacts,
            vec![CreateInput {
                properties: props(json!({"favourite_colour": "green"})),
                associations: vec![]
            }],
            &actor()
        )
        .await
        .is_err());
    s.create_records(
        a,
        &contacts,
        vec![CreateInput {
            properties: props(json!({"favourite_colour": "blue"})),
            associations: vec![],
        }],
        &actor(),
    )
    .await
    .unwrap();
    let upd = s
        .update_property(
            a,
            "0-1",
            "favourite_colour",
            input(json!({"label": "Colour"})),
        )
        .await
        .unwrap();
    assert_eq!(upd.label, "Colour");
    assert!(
        s.archive_property(a, "0-1", "email").await.is_err(),
        "built-in properties cannot be archived"
    );
    s.archive_property(a, "0-1", "favourite_colour")
        .await
        .unwrap();
    assert!(!s
        .properties(a, "0-1", false)
        .await
        .unwrap()
        .iter()
        .any(|p| p.name == "favourite_colour"));
    assert!(s
        .properties(a, "0-1", true)
        .await
        .unwrap()
        .iter()
        .any(|p| p.name == "favourite_colour" && p.archived));
    let g = kontor_store::PropertyGroup {
        name: "extra".into(),
        label: "Extra".into(),
        display_order: 3,
        archived: false,
    };
    s.create_property_group(a, "0-1", g).await.unwrap();
    assert!(s
        .property_groups(a, "0-1")
        .await
        .unwrap()
        .iter()
        .any(|g| g.name == "extra"));
    s.archive_property_group(a, "0-1", "extra").await.unwrap();
    assert!(
        s.archive_property_group(a, "0-1", "contactinformation")
            .await
            .is_err(),
        "a group with properties stays"
    );
}

async fn custom_objects(d: Directory) {
    let (a, s) = account(&d, "custom").await;
    let input: SchemaInput = serde_json::from_value(json!({
        "name": "cars", "labels": {"singular": "Car", "plural": "Cars"}, "primaryDisplayProperty": "model",
        "requiredProperties": ["model"], "searchableProperties": ["model"],
        "properties": [{"name": "model", "label": "Model", "type": "string", "fieldType": "text"}, {"name": "year", "label": "Year", "type": "number", "fieldType": "number"}],
        "associatedObjects": ["CONTACT"]
    }))
    .unwrap();
    let schema = s.create_schema(a, input.clone()).await.unwrap();
    assert_eq!(schema.object_type_id, "2-1");
    assert_eq!(schema.fully_qualified_name, format!("p{a}_cars"));
    assert!(matches!(
        s.create_schema(a, input).await,
        Err(StoreError::Conflict { .. })
    ));
    for key in ["2-1", "cars", &format!("p{a}_cars"), "p_cars"] {
        assert_eq!(
            s.object_type(a, key).await.unwrap().unwrap().type_id,
            "2-1",
            "{key}"
        );
    }
    let cars = ot(&s, a, "cars").await;
    assert!(
        s.create_records(
            a,
            &cars,
            vec![CreateInput {
                properties: props(json!({"year": 1999})),
                associations: vec![]
            }],
            &actor()
        )
        .await
        .is_err(),
        "model is required"
    );
    let car = s
        .create_records(
            a,
            &cars,
            vec![CreateInput {
                properties: props(json!({"model": "Volvo 240", "year": 1989})),
                associations: vec![],
            }],
            &actor(),
        )
        .await
        .unwrap();
    assert!(
        car[0].props.contains_key("hs_createdate")
            && car[0].props.contains_key("hs_lastmodifieddate")
    );
    let contacts = ot(&s, a, "contacts").await;
    let c = s
        .create_records(a, &contacts, vec![CreateInput::default()], &actor())
        .await
        .unwrap()[0]
        .id;
    s.associate(a, &cars, car[0].id, &contacts, c, &[], &actor())
        .await
        .unwrap();
    assert_eq!(
        s.associated(a, &contacts, c, &cars, None, 10)
            .await
            .unwrap()
            .0[0]
            .to_id,
        car[0].id
    );
    assert!(
        s.archive_schema(a, "cars").await.is_err(),
        "a schema with records stays"
    );
    s.archive_records(a, &cars, &[car[0].id], &actor())
        .await
        .unwrap();
    s.archive_schema(a, "cars").await.unwrap();
    assert!(s.object_type(a, "cars").await.unwrap().is_none());
}

async fn upsert_by_unique_property(d: Directory) {
    let (a, s) = account(&d, "upsert").await;
    let contacts = ot(&s, a, "contacts").await;
    let first = s
        .upsert_records(
            a,
            &contacts,
            "email",
            vec![("Kay@Example.com".into(), props(json!({"firstname": "Kay"})))],
            &actor(),
        )
        .await
        .unwrap();
    assert!(first[0].1, "created");
    assert_eq!(first[0].0.props["email"], "Kay@Example.com");
    let second = s
        .upsert_records(
            a,
            &contacts,
            "email",
            vec![
                (
                    "kay@example.com".into(),
                    props(json!({"lastname": "Jones"})),
                ),
                ("new@example.com".into(), props(json!({}))),
            ],
            &actor(),
        )
        .await
        .unwrap();
    assert_eq!((second[0].1, second[0].0.id), (false, first[0].0.id));
    assert_eq!(second[0].0.props["firstname"], "Kay");
    assert!(second[1].1);
    assert!(
        s.upsert_records(
            a,
            &contacts,
            "firstname",
            vec![("x".into(), props(json!({})))],
            &actor()
        )
        .await
        .is_err(),
        "only unique properties identify records"
    );
}

async fn users_and_tokens(d: Directory) {
    let (a, s) = account(&d, "auth").await;
    let u = s
        .create_user(
            a,
            "Root@Example.com",
            "Root",
            "User",
            Role::SuperAdmin,
            "correct horse battery",
        )
        .await
        .unwrap();
    assert_eq!(u.email, "root@example.com");
    assert!(s
        .authenticate(a, "root@example.com", "correct horse battery")
        .await
        .unwrap()
        .is_some());
    assert!(s
        .authenticate(a, "root@example.com", "wrong password!")
        .await
        .unwrap()
        .is_none());
    assert!(s
        .create_user(a, "x@example.com", "", "", Role::User, "short")
        .await
        .is_err());
    assert!(matches!(
        s.create_user(a, "root@example.com", "", "", Role::User, "long enough pw")
            .await,
        Err(StoreError::Conflict { .. })
    ));
    let owner = s
        .owner(a, u.id, true, false)
        .await
        .unwrap()
        .expect("a user is also an owner");
    assert_eq!(owner.email, "root@example.com");
    let (t, secret) = s.create_token(a, "ci", Some(u.id)).await.unwrap();
    assert_eq!(kontor_store::token_account(&secret), Some(a));
    assert_eq!(s.verify_token(a, &secret).await.unwrap().unwrap().id, t.id);
    let (b, _) = account(&d, "auth-b").await;
    assert!(
        s.verify_token(b, &secret).await.unwrap().is_none(),
        "a token works only for its account"
    );
    s.revoke_token(a, t.id, Some(u.id)).await.unwrap();
    assert!(s.verify_token(a, &secret).await.unwrap().is_none());
    let actions: Vec<String> = s
        .audit_entries(a, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.4)
        .collect();
    assert!(
        actions.contains(&"token.revoke".to_string())
            && actions.contains(&"token.create".to_string())
    );
}

async fn tokens_live_only_while_their_creator_holds_the_role(d: Directory) {
    let (a, s) = account(&d, "token-life").await;
    let boss = s
        .create_user(
            a,
            "boss@example.com",
            "",
            "",
            Role::SuperAdmin,
            "long enough pw",
        )
        .await
        .unwrap();
    let (t, secret) = s.create_token(a, "sync", Some(boss.id)).await.unwrap();
    assert_eq!(t.created_role, Some(Role::SuperAdmin));
    let live = |s: Store, secret: String| async move {
        s.verify_token(a, &secret).await.unwrap().is_some()
    };
    assert!(live(s.clone(), secret.clone()).await);
    s.set_role(a, boss.id, Role::Admin).await.unwrap();
    assert!(
        !live(s.clone(), secret.clone()).await,
        "demoted below the role it was made with"
    );
    s.set_role(a, boss.id, Role::SuperAdmin).await.unwrap();
    assert!(live(s.clone(), secret.clone()).await);
    s.set_active(a, boss.id, false).await.unwrap();
    assert!(
        !live(s.clone(), secret.clone()).await,
        "its creator is deactivated"
    );
    assert!(
        s.create_token(a, "again", Some(boss.id)).await.is_err(),
        "a deactivated user makes no tokens"
    );
    // An admin's token survives a promotion, and the operator's tokens have no creator.
    let admin = s
        .create_user(
            a,
            "admin@example.com",
            "",
            "",
            Role::Admin,
            "long enough pw",
        )
        .await
        .unwrap();
    let (t2, secret2) = s.create_token(a, "admin's", Some(admin.id)).await.unwrap();
    s.set_role(a, admin.id, Role::SuperAdmin).await.unwrap();
    assert!(live(s.clone(), secret2.clone()).await);
    let (op, op_secret) = s.create_token(a, "operator's", None).await.unwrap();
    assert!(live(s.clone(), op_secret).await);
    // Who may revoke: at least the role the token was made with.
    assert!(!t.revocable_by(Role::Admin) && t.revocable_by(Role::SuperAdmin));
    assert!(t2.revocable_by(Role::Admin) && !t2.revocable_by(Role::User));
    assert!(!op.revocable_by(Role::Admin) && op.revocable_by(Role::SuperAdmin));
}

async fn concurrent_writers_get_distinct_ids_and_sequences(d: Directory) {
    let (a, s) = account(&d, "concurrent").await;
    let contacts = ot(&s, a, "contacts").await;
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (s, contacts) = (s.clone(), contacts.clone());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..10 {
                let input = CreateInput {
                    properties: props(json!({"email": format!("w{w}-{i}@example.com")})),
                    associations: vec![],
                };
                ids.extend(
                    s.create_records(a, &contacts, vec![input], &actor())
                        .await
                        .unwrap()
                        .into_iter()
                        .map(|r| r.id),
                );
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    ids.sort_unstable();
    assert_eq!(ids, (1..=80).collect::<Vec<i64>>());
    assert_eq!(s.last_change_seq(a).await.unwrap(), 80);
}

/// Two writers change different properties of the same record at the same time: neither
/// writes back a stale copy of the other's property.
async fn concurrent_updates_of_one_record_keep_every_property(d: Directory) {
    let (a, s) = account(&d, "same record").await;
    four_writers_of_one_record(&[s], a).await;
}

/// Two processes writing one database (a server and a worker, say) each wait for the other's
/// write rather than fail: on SQLite a transaction that reads before it writes must not find
/// the file's write lock taken when it comes to write.
async fn writers_in_two_processes_wait_for_each_other(d: Directory) {
    let (a, s) = account(&d, "two processes").await;
    let other = s.reopen().await.unwrap();
    four_writers_of_one_record(&[s, other.clone()], a).await;
    other.close().await;
}

/// Four writers, taking turns over `stores`, each update one property of one contact 25 times
/// at once; every property ends with its last value.
async fn four_writers_of_one_record(stores: &[Store], a: i64) {
    let s = &stores[0];
    let contacts = ot(s, a, "contacts").await;
    let id = s
        .create_records(
            a,
            &contacts,
            vec![CreateInput {
                properties: props(json!({"email": "both@example.com"})),
                associations: vec![],
            }],
            &actor(),
        )
        .await
        .unwrap()[0]
        .id;
    let mut tasks = Vec::new();
    for (n, prop) in ["firstname", "lastname", "city", "jobtitle"]
        .into_iter()
        .enumerate()
    {
        let (s, contacts) = (stores[n % stores.len()].clone(), contacts.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                s.update_records(
                    a,
                    &contacts,
                    vec![UpdateInput {
                        id,
                        properties: props(json!({ prop: format!("{prop}{i}") })),
                    }],
                    &actor(),
                )
                .await
                .unwrap_or_else(|e| panic!("update {i} of {prop}: {e:?}"));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let r = &s.records_by_ids(a, &contacts, &[id], false).await.unwrap()[0];
    for prop in ["firstname", "lastname", "city", "jobtitle"] {
        assert_eq!(r.props[prop], format!("{prop}24"), "{prop}: {:?}", r.props);
    }
}

async fn concurrent_duplicates_conflict_cleanly(d: Directory) {
    let (a, s) = account(&d, "race").await;
    let contacts = ot(&s, a, "contacts").await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (s, contacts) = (s.clone(), contacts.clone());
        tasks.push(tokio::spawn(async move {
            let input = CreateInput {
                properties: props(json!({"email": "same@example.com"})),
                associations: vec![],
            };
            s.create_records(a, &contacts, vec![input], &actor()).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => panic!("a racing duplicate must be a conflict, got {e:?}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(s.count_records(a, &contacts, false).await.unwrap(), 1);
    assert_eq!(
        s.last_change_seq(a).await.unwrap(),
        1,
        "refused writes leave no change"
    );
}

async fn recycle_bin_restore_and_purge(d: Directory) {
    let (a, s) = account(&d, "bin").await;
    let contacts = ot(&s, a, "contacts").await;
    let companies = ot(&s, a, "companies").await;
    let co = s
        .create_records(
            a,
            &companies,
            vec![CreateInput {
                properties: props(json!({"name": "Keep"})),
                associations: vec![],
            }],
            &actor(),
        )
        .await
        .unwrap()[0]
        .id;
    let made = s
        .create_records(
            a,
            &contacts,
            vec![
                CreateInput {
                    properties: props(json!({"email": "back@example.com", "firstname": "Back"})),
                    associations: vec![AssociationInput {
                        to_id: co,
                        types: vec![],
                    }],
                },
                CreateInput {
                    properties: props(json!({"email": "gone@example.com"})),
                    associations: vec![],
                },
            ],
            &actor(),
        )
        .await
        .unwrap();
    let (back, gone) = (made[0].clone(), made[1].id);
    s.archive_records(a, &contacts, &[back.id, gone], &actor())
        .await
        .unwrap();
    let (n, listed) = s.recycle_bin(a, &contacts, 0, 10).await.unwrap();
    assert_eq!((n, listed.len()), (2, 2));
    // While archived, the e-mail is free; once taken, restoring the old record is refused.
    let taker = s
        .create_records(
            a,
            &contacts,
            vec![CreateInput {
                properties: props(json!({"email": "back@example.com"})),
                associations: vec![],
            }],
            &actor(),
        )
        .await
        .unwrap()[0]
        .id;
    assert!(
        matches!(s.restore_records(a, &contacts, &[back.id], &actor()).await, Err(StoreError::Conflict { existing_id: Some(x), .. }) if x == taker)
    );
    s.archive_records(a, &contacts, &[taker], &actor())
        .await
        .unwrap();
    assert_eq!(
        s.restore_records(a, &contacts, &[back.id], &actor())
            .await
            .unwrap(),
        vec![back.id]
    );
    let restored = s
        .record(a, &contacts, back.id, false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(restored.props, back.props, "same id, same values");
    assert_eq!(
        s.ids_by_unique(a, &contacts, "email", &["back@example.com".into()])
            .await
            .unwrap()["back@example.com"],
        back.id
    );
    assert_eq!(
        s.associated(a, &contacts, back.id, &companies, None, 10)
            .await
            .unwrap()
            .0
            .len(),
        1,
        "associations come back too"
    );
    // Permanent deletion removes state and history, and leaves a value-less purge entry.
    assert_eq!(
        s.purge_records(a, &contacts, &[gone, back.id], &actor())
            .await
            .unwrap(),
        vec![gone],
        "only archived records can be purged"
    );
    assert!(s.record(a, &contacts, gone, true).await.unwrap().is_none());
    assert!(!s
        .history(a, &[gone], &["email".into()])
        .await
        .unwrap()
        .contains_key(&gone));
    // Expiry: everything archived before the cut-off goes, newer deletions stay.
    let cutoff = kontor_domain::time::now_ms() + 1;
    let purged = s.purge_expired(cutoff, Some(a)).await.unwrap();
    assert!(
        purged.iter().any(|(acc, n)| *acc == a && *n == 1),
        "{purged:?}"
    );
    assert_eq!(s.recycle_bin(a, &contacts, 0, 10).await.unwrap().0, 0);
    assert!(s
        .record(a, &contacts, back.id, false)
        .await
        .unwrap()
        .is_some());
}

/// Claims the import's job as runner `owner` (a short lease).
async fn claim(s: &Store, imp: &kontor_store::Import, owner: &str) -> kontor_store::Job {
    s.claim_job(
        owner,
        60_000,
        &[kontor_store::JOB_KIND_IMPORT],
        Some((imp.account_id, imp.job_id)),
    )
    .await
    .unwrap()
    .expect("the import's job is claimable")
}

fn row(line: i64, op: kontor_store::RowOp) -> kontor_store::ImportRow {
    kontor_store::ImportRow {
        line,
        op,
        data: vec![format!("line {line}")],
    }
}

async fn new_import(
    s: &Store,
    a: i64,
    source: &str,
    plan: Option<i64>,
) -> StoreResult<kontor_store::Import> {
    new_import_of(s, a, source, plan, 0).await
}

/// [`new_import`] with a file of `file_bytes` on disk.
async fn new_import_of(
    s: &Store,
    a: i64,
    source: &str,
    plan: Option<i64>,
    file_bytes: i64,
) -> StoreResult<kontor_store::Import> {
    s.create_import(
        a,
        &kontor_store::NewImport {
            name: "test",
            source,
            object_type: "0-1",
            operation: kontor_store::Operation::Upsert,
            request: &json!({}),
            file_key: None,
            file_name: None,
            created_by: None,
            created_by_name: "tests",
            rows_total: 10,
            file_bytes,
            plan_id: plan,
        },
    )
    .await
}

async fn import_rows_are_whole_or_rejected(d: Directory) {
    use kontor_store::RowOp::{Create, Update};
    let (a, s) = account(&d, "imports").await;
    let contacts = ot(&s, a, "contacts").await;
    let defs = s.properties(a, "0-1", false).await.unwrap();
    let made = s
        .create_records(
            a,
            &contacts,
            (0..3)
                .map(|i| CreateInput {
                    properties: props(
                        json!({"email": format!("p{i}@example.com"), "firstname": "Old"}),
                    ),
                    associations: vec![],
                })
                .collect(),
            &actor(),
        )
        .await
        .unwrap();
    let ids: Vec<i64> = made.iter().map(|r| r.id).collect();
    // One record goes to the bin, another is purged: its id is free to come back.
    s.archive_records(a, &contacts, &[ids[1], ids[2]], &actor())
        .await
        .unwrap();
    s.purge_records(a, &contacts, &[ids[2]], &actor())
        .await
        .unwrap();

    let imp = new_import(&s, a, kontor_store::imports::SOURCE_API, None)
        .await
        .unwrap();
    let job = claim(&s, &imp, "runner").await;
    let rows = vec![
        row(
            2,
            Update {
                id: ids[0],
                props: props(json!({"firstname": "New", "lastname": "Both"})),
            },
        ),
        // A bad value: the whole row is rejected, its good value too.
        row(
            3,
            Update {
                id: ids[0],
                props: props(json!({"lastname": "Never", "hs_lead_status": "NOT_AN_OPTION"})),
            },
        ),
        row(
            4,
            Create {
                id: None,
                props: props(json!({"email": "fresh@example.com"})),
            },
        ),
        // The same e-mail again in the batch: only the first wins.
        row(
            5,
            Create {
                id: None,
                props: props(json!({"email": "fresh@example.com", "firstname": "Dup"})),
            },
        ),
        row(
            6,
            Create {
                id: Some(ids[2]),
                props: props(json!({"email": "back@example.com"})),
            },
        ),
        row(
            7,
            Create {
                id: Some(ids[1]),
                props: props(json!({"email": "bin@example.com"})),
            },
        ),
        row(
            8,
            Create {
                id: Some(ids[2] + 1_000_000),
                props: props(json!({"email": "never@example.com"})),
            },
        ),
        row(
            9,
            Create {
                id: None,
                props: props(json!({"email": "not an e-mail"})),
            },
        ),
    ];
    let out = s
        .import_batch(&imp, &job, "runner", &contacts, &defs, rows, 8)
        .await
        .unwrap()
        .expect("the runner holds the lease");
    assert_eq!((out.created, out.updated, out.errors), (2, 1, 5), "{out:?}");
    let r0 = s
        .record(a, &contacts, ids[0], false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r0.props["firstname"], "New");
    assert_eq!(r0.props["lastname"], "Both");
    let back = s
        .record(a, &contacts, ids[2], false)
        .await
        .unwrap()
        .expect("came back under its id");
    assert_eq!(back.props["email"], "back@example.com");
    let errors = s.import_errors(a, imp.id, 0, 100).await.unwrap();
    let lines: Vec<i64> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [3, 5, 7, 8, 9]);
    assert!(errors[2].message.contains("recycle bin"), "{:?}", errors[2]);
    assert!(
        errors[3].message.contains("never issued"),
        "{:?}",
        errors[3]
    );
    assert_eq!(errors[0].row_data, ["line 3"]);
    let now = s.import(a, imp.id).await.unwrap().unwrap();
    assert_eq!(
        (now.rows_done, now.created, now.updated, now.errors),
        (8, 2, 1, 5)
    );
    assert!(s.finish_import(&now, &job, "runner", None).await.unwrap());
    assert_eq!(s.import(a, imp.id).await.unwrap().unwrap().state, "DONE");
}

async fn import_batches_need_the_lease(d: Directory) {
    let (a, s) = account(&d, "lease").await;
    let contacts = ot(&s, a, "contacts").await;
    let defs = s.properties(a, "0-1", false).await.unwrap();
    let imp = new_import(&s, a, kontor_store::imports::SOURCE_API, None)
        .await
        .unwrap();
    let job = claim(&s, &imp, "first").await;
    let create = |e: &str| {
        row(
            2,
            kontor_store::RowOp::Create {
                id: None,
                props: props(json!({"email": e})),
            },
        )
    };
    // Another runner's batch is not applied.
    assert!(s
        .import_batch(
            &imp,
            &job,
            "second",
            &contacts,
            &defs,
            vec![create("x@example.com")],
            1
        )
        .await
        .unwrap()
        .is_none());
    assert_eq!(s.count_records(a, &contacts, false).await.unwrap(), 0);
    // Canceled: the holder's next batch is not applied either.
    s.cancel_import(a, imp.id).await.unwrap();
    assert!(s
        .import_batch(
            &imp,
            &job,
            "first",
            &contacts,
            &defs,
            vec![create("y@example.com")],
            1
        )
        .await
        .unwrap()
        .is_none());
    assert_eq!(s.count_records(a, &contacts, false).await.unwrap(), 0);
    assert_eq!(
        s.import(a, imp.id).await.unwrap().unwrap().state,
        "CANCELED"
    );
}

async fn one_restore_at_a_time(d: Directory) {
    let (a, s) = account(&d, "one restore").await;
    let (b, s2) = account(&d, "other account").await;
    let first = new_import(&s, a, kontor_store::imports::SOURCE_RESTORE, None)
        .await
        .unwrap();
    match new_import(&s, a, kontor_store::imports::SOURCE_RESTORE, None).await {
        Err(StoreError::Conflict { message, .. }) => {
            assert!(message.contains("already running"), "{message}")
        }
        other => panic!("a second restore was not refused: {other:?}"),
    }
    // Plain imports and other accounts' restores are not held up.
    new_import(&s, a, kontor_store::imports::SOURCE_API, None)
        .await
        .unwrap();
    new_import(&s2, b, kontor_store::imports::SOURCE_RESTORE, None)
        .await
        .unwrap();
    // Once the first ends, the next may start; a plan is applied once.
    s.cancel_import(a, first.id).await.unwrap();
    let plan = s
        .create_restore_plan(
            a,
            &kontor_store::NewPlan {
                kind: kontor_store::PLAN_RESTORE,
                backup_id: Some(1),
                reverts_import: None,
                object_type: "0-1",
                properties: &["firstname".to_string()],
                seq: 0,
                summary: &json!({}),
                created_by: None,
                created_by_name: "tests",
            },
        )
        .await
        .unwrap();
    let second = new_import(&s, a, kontor_store::imports::SOURCE_RESTORE, Some(plan.id))
        .await
        .unwrap();
    s.cancel_import(a, second.id).await.unwrap();
    assert!(matches!(
        new_import(&s, a, kontor_store::imports::SOURCE_RESTORE, Some(plan.id)).await,
        Err(StoreError::Conflict { .. })
    ));
}

/// A restore batch is read and decided while the one before it is written; a value someone
/// changes in between is still found (a conflict, left as it is).
async fn restore_batches_read_ahead_see_later_writes(d: Directory) {
    let (a, s) = account(&d, "read ahead").await;
    let contacts = ot(&s, a, "contacts").await;
    let inputs = (0..4)
        .map(|i| CreateInput {
            properties: props(
                json!({"email": format!("r{i}@example.com"), "firstname": format!("now{i}")}),
            ),
            associations: vec![],
        })
        .collect();
    let ids: Vec<i64> = s
        .create_records(a, &contacts, inputs, &actor())
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    let plan_seq = s
        .changes_after(a, 0, 100)
        .await
        .unwrap()
        .last()
        .unwrap()
        .seq;
    let imp = new_import(&s, a, kontor_store::imports::SOURCE_RESTORE, None)
        .await
        .unwrap();
    let job = claim(&s, &imp, "runner").await;
    let spec = kontor_store::RestoreSpec {
        properties: vec!["firstname".into()],
        plan_seq,
        overwrite_newer: false,
    };
    let items = |ids: &[i64]| -> Vec<kontor_store::RestoreItem> {
        ids.iter()
            .map(|id| kontor_store::RestoreItem {
                id: *id,
                target: vec![Some(format!("backup{id}"))],
                expected: None,
                skip: Vec::new(),
            })
            .collect()
    };
    let prepare = |items, first: i64| {
        s.prepare_restore_batch(
            &imp,
            &job,
            "runner",
            &contacts,
            &spec,
            &[false],
            items,
            first,
            first + 1,
        )
    };
    let mut own = kontor_store::OwnChanges::default();
    // Both batches are read before either is written.
    let first = prepare(items(&ids[..2]), 1).await.unwrap();
    let second = prepare(items(&ids[2..]), 3).await.unwrap();
    // Someone edits a record of the second batch after it was read.
    s.update_records(
        a,
        &contacts,
        vec![UpdateInput {
            id: ids[3],
            properties: props(json!({"firstname": "edited"})),
        }],
        &actor(),
    )
    .await
    .unwrap();
    let one = s
        .commit_restore_batch(first, &mut own)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((one.updated, one.conflicts), (2, 0));
    let two = s
        .commit_restore_batch(second, &mut own)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (two.updated, two.conflicts),
        (1, 1),
        "the edit after the read is a conflict"
    );
    let now: HashMap<i64, String> = s
        .records_by_ids(a, &contacts, &ids, false)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.id, r.props["firstname"].clone()))
        .collect();
    for id in &ids[..3] {
        assert_eq!(now[id], format!("backup{id}"));
    }
    assert_eq!(now[&ids[3]], "edited", "the later edit is kept");
}
