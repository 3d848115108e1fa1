//! Records: create, read, update, archive, unique values, ids, isolation between accounts, upsert and the recycle bin.

use super::*;

pub async fn seeds_builtin_schema(d: Directory) {
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

pub async fn create_read_update_archive_with_history(d: Directory) {
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

pub async fn unique_values_and_atomic_batches(d: Directory) {
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

pub async fn ids_are_allocated_per_account(d: Directory) {
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

pub async fn accounts_are_isolated(d: Directory) {
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

pub async fn upsert_by_unique_property(d: Directory) {
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

pub async fn recycle_bin_restore_and_purge(d: Directory) {
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
