//! Imports waiting on disk are bounded per account (in number and in bytes), and what they
//! leave is kept only so long.

use super::*;
use kontor_store::imports::{MAX_OPEN_IMPORTS, SOURCE_API, SOURCE_RESTORE, SOURCE_UI};
use kontor_store::{Directory, Store, StoreError};

/// An account may have `MAX_OPEN_IMPORTS` file imports waiting or running; one more is
/// refused with a time to retry, until one ends. Restores and other accounts are not counted.
pub async fn open_imports_are_capped_per_account(d: Directory) {
    let (a, s) = account(&d, "many imports").await;
    let (b, s2) = account(&d, "other importer").await;
    let mut open = Vec::new();
    for i in 0..MAX_OPEN_IMPORTS {
        let source = if i % 2 == 0 { SOURCE_API } else { SOURCE_UI };
        open.push(new_import(&s, a, source, None).await.unwrap());
    }
    match new_import(&s, a, SOURCE_API, None).await {
        Err(StoreError::TooSoon { message, retry_at }) => {
            assert!(message.contains("waiting or running"), "{message}");
            assert!(retry_at > kontor_domain::time::now_ms());
        }
        other => panic!("one import over the cap was not refused: {other:?}"),
    }
    new_import(&s2, b, SOURCE_API, None)
        .await
        .expect("another account is not held up");
    new_import(&s, a, SOURCE_RESTORE, None)
        .await
        .expect("a restore is not a file upload");
    s.cancel_import(a, open[0].id).await.unwrap();
    new_import(&s, a, SOURCE_API, None)
        .await
        .expect("room again once one has ended");
}

/// Housekeeping's retention rules, asked of the store at chosen times: the rejected rows of an
/// import that ended, the file of an import that ended (and of one no import names), and
/// notifications read or old.
pub async fn retention_of_import_errors_files_and_notifications(d: Directory) {
    use kontor_store::{IMPORT_ERRORS_DAYS, IMPORT_FILE_DAYS, UNREAD_NOTIFICATION_DAYS};
    const DAY: i64 = 86_400_000;
    let (a, s) = account(&d, "retention").await;
    let user = s
        .create_user(
            a,
            "kept@example.com",
            "",
            "",
            kontor_domain::Role::Admin,
            "long enough pw",
        )
        .await
        .unwrap();
    let contacts = crate::ot(&s, a, "contacts").await;
    let defs = s.properties(a, "0-1", false).await.unwrap();
    let key = format!("imports/{a}/retention.csv");
    let imp = s
        .create_import(
            a,
            &kontor_store::NewImport {
                name: "retention",
                source: SOURCE_API,
                object_type: "0-1",
                operation: kontor_store::Operation::Create,
                request: &serde_json::json!({}),
                file_key: Some(&key),
                file_name: Some("retention.csv"),
                created_by: None,
                created_by_name: "tests",
                rows_total: 1,
                file_bytes: 0,
                plan_id: None,
            },
        )
        .await
        .unwrap();
    let now = kontor_domain::time::now_ms();
    assert!(
        !s.import_file_expired(a, &key, now + 365 * DAY)
            .await
            .unwrap(),
        "a waiting import keeps its file"
    );
    let job = crate::claim(&s, &imp, "runner").await;
    let bad = crate::row(
        2,
        kontor_store::RowOp::Create {
            id: None,
            props: crate::props(serde_json::json!({"email": "not an e-mail"})),
        },
    );
    s.import_batch(&imp, &job, "runner", &contacts, &defs, vec![bad], 1)
        .await
        .unwrap()
        .expect("the runner holds the lease");
    let imp = s.import(a, imp.id).await.unwrap().unwrap();
    assert!(s
        .finish_import(&imp, &job, "runner", Some("stopped"))
        .await
        .unwrap());
    let ended = s
        .import(a, imp.id)
        .await
        .unwrap()
        .unwrap()
        .finished_at
        .unwrap();

    assert!(!s
        .import_file_expired(a, &key, ended + (IMPORT_FILE_DAYS - 1) * DAY)
        .await
        .unwrap());
    assert!(s
        .import_file_expired(a, &key, ended + IMPORT_FILE_DAYS * DAY)
        .await
        .unwrap());
    assert!(
        s.import_file_expired(a, "imports/0/nobody.csv", now)
            .await
            .unwrap(),
        "a file no import names"
    );
    s.forget_import_file(a, &key).await.unwrap();
    assert_eq!(s.import(a, imp.id).await.unwrap().unwrap().file_key, None);

    assert_eq!(
        s.purge_old_import_errors(ended + (IMPORT_ERRORS_DAYS - 1) * DAY, Some(a))
            .await
            .unwrap(),
        0
    );
    assert_eq!(s.import_errors(a, imp.id, 0, 10).await.unwrap().len(), 1);
    assert_eq!(
        s.purge_old_import_errors(ended + IMPORT_ERRORS_DAYS * DAY, Some(a))
            .await
            .unwrap(),
        1
    );
    assert!(s.import_errors(a, imp.id, 0, 10).await.unwrap().is_empty());
    assert_eq!(
        s.import(a, imp.id).await.unwrap().unwrap().errors,
        1,
        "the import keeps its counts"
    );

    let read = s.notify(a, user.id, "read", "", None).await.unwrap();
    s.mark_notifications_read(a, user.id, Some(read))
        .await
        .unwrap();
    s.notify(a, user.id, "unread", "", None).await.unwrap();
    let left = || async { s.notifications(a, user.id, 10).await.unwrap().len() };
    s.purge_old_notifications(now, Some(a)).await.unwrap();
    assert_eq!(left().await, 2);
    s.purge_old_notifications(
        now + (kontor_store::READ_NOTIFICATION_DAYS + 1) * DAY,
        Some(a),
    )
    .await
    .unwrap();
    assert_eq!(left().await, 1, "the read one went");
    s.purge_old_notifications(now + (UNREAD_NOTIFICATION_DAYS + 1) * DAY, Some(a))
        .await
        .unwrap();
    assert_eq!(left().await, 0, "the old unread one went");
}

/// The files of an account's waiting and running imports may take `MAX_OPEN_IMPORT_BYTES`
/// together; one more file past it is refused with a time to retry, until one ends.
pub async fn open_import_bytes_are_capped_per_account(d: Directory) {
    use kontor_store::imports::MAX_OPEN_IMPORT_BYTES;
    let (a, s) = account(&d, "big files").await;
    let (b, s2) = account(&d, "other big files").await;
    let import = |s: &Store, a: i64, file_bytes: i64| {
        let s = s.clone();
        async move { crate::new_import_of(&s, a, SOURCE_API, None, file_bytes).await }
    };
    let first = import(&s, a, MAX_OPEN_IMPORT_BYTES - 1000).await.unwrap();
    import(&s, a, 1000).await.expect("up to the cap");
    match import(&s, a, 1).await {
        Err(StoreError::TooSoon { message, .. }) => assert!(message.contains("MiB"), "{message}"),
        other => panic!("a file past the cap was not refused: {other:?}"),
    }
    import(&s2, b, MAX_OPEN_IMPORT_BYTES)
        .await
        .expect("another account is not held up");
    s.cancel_import(a, first.id).await.unwrap();
    import(&s, a, 1)
        .await
        .expect("room again once one has ended");
}

pub async fn import_rows_are_whole_or_rejected(d: Directory) {
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

pub async fn import_batches_need_the_lease(d: Directory) {
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
