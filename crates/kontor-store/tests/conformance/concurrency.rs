//! Concurrent writers: distinct ids, no lost property, clean conflicts, two processes on one file.

use super::*;

pub async fn concurrent_writers_get_distinct_ids_and_sequences(d: Directory) {
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
pub async fn concurrent_updates_of_one_record_keep_every_property(d: Directory) {
    let (a, s) = account(&d, "same record").await;
    four_writers_of_one_record(&[s], a).await;
}

/// Two processes writing one database (a server and a worker, say) each wait for the other's
/// write rather than fail: on SQLite a transaction that reads before it writes must not find
/// the file's write lock taken when it comes to write.
pub async fn writers_in_two_processes_wait_for_each_other(d: Directory) {
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

pub async fn concurrent_duplicates_conflict_cleanly(d: Directory) {
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
