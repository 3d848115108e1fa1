//! Imports waiting on disk are bounded per account (in number and in bytes), and what they
//! leave is kept only so long.

use crate::{account, new_import};
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
