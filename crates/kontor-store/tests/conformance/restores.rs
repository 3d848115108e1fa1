//! Restores: one at a time per account, and batches read ahead of the writes.

use super::*;

pub async fn one_restore_at_a_time(d: Directory) {
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
pub async fn restore_batches_read_ahead_see_later_writes(d: Directory) {
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
