//! Moving an account between cells: every table has a rule, a copy is whole (equal digests,
//! the same records, ids continuing without collision), a damaged copy is told apart, and the
//! account can be removed from a cell. Both directions between the engines under test.

use crate::{account, actor, ot, props};
use kontor_store::moving::{Token, TABLES};
use kontor_store::{CreateInput, Directory, Store};
use serde_json::json;

/// The schema's tables, as a freshly migrated database has them, are exactly those with a rule
/// (a table added without one fails here), and every table holding accounts' rows is fenced.
pub async fn every_table_has_a_moving_rule(d: Directory) {
    let ruled: std::collections::BTreeSet<&str> = TABLES.iter().map(|(t, _)| *t).collect();
    let mut stores = vec![&d.directory];
    stores.extend(d.regions.values());
    for s in stores {
        let have = s.schema_tables().await.unwrap();
        let have: std::collections::BTreeSet<&str> = have.iter().map(String::as_str).collect();
        let unruled: Vec<_> = have.difference(&ruled).collect();
        assert!(
            unruled.is_empty(),
            "tables without a moving rule: {unruled:?}"
        );
        let gone: Vec<_> = ruled.difference(&have).collect();
        assert!(
            gone.is_empty(),
            "rules for tables the schema no longer has: {gone:?}"
        );
        let mut want: Vec<&str> = kontor_store::moving::account_tables().collect();
        want.sort_unstable();
        assert_eq!(
            s.fenced_tables().await.unwrap(),
            want,
            "tables with the whole fence"
        );
    }

    // A cell whose triggers an older version made (on PostgreSQL, one trigger of each kind
    // for all three events, which the copy could not pass without calling it), or that lost
    // one, gets the whole fence again when opened.
    // (A cell of its own: the others' tests run meanwhile.)
    let s = &cell_like(&d.regions[&kontor_domain::Region::Us]).await;
    let older = match s.dialect() {
        kontor_store::Dialect::Sqlite => "DROP TRIGGER kontor_refuse_records_insert",
        kontor_store::Dialect::Postgres => {
            "DROP TRIGGER kontor_refuse_insert ON records; DROP TRIGGER kontor_refuse ON records; \
             DROP TRIGGER kontor_capture_insert ON records; DROP TRIGGER kontor_capture ON records; \
             CREATE TRIGGER kontor_refuse BEFORE INSERT OR UPDATE OR DELETE ON records FOR EACH ROW EXECUTE PROCEDURE kontor_refuse(); \
             CREATE TRIGGER kontor_capture AFTER INSERT OR UPDATE OR DELETE ON records FOR EACH ROW EXECUTE PROCEDURE kontor_capture_records()"
        }
    };
    s.execute_raw(older).await.unwrap();
    assert!(!s
        .fenced_tables()
        .await
        .unwrap()
        .contains(&"records".to_string()));
    let reopened = s.reopen().await.unwrap();
    assert!(reopened
        .fenced_tables()
        .await
        .unwrap()
        .contains(&"records".to_string()));
    reopened.close().await;
}

/// The token of the one runner these tests play.
const T: Token = Token(1);

/// `store` takes [`T`] for the account, as a move's runner does first in both cells.
async fn take(store: &Store, account: i64) {
    assert!(store.take_move_token(account, T).await.unwrap());
}

/// A store on a fresh SQLite database: the other side of the move.
async fn other_cell() -> Store {
    let dir = std::env::temp_dir().join(format!(
        "kontor-moving-{}-{}",
        std::process::id(),
        kontor_domain::time::now_ms()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    Store::open(&format!("sqlite://{}", dir.join("cell.db").display()))
        .await
        .unwrap()
}

/// A store on a fresh database of `home`'s engine: each pair of engines has its own copier
/// (SQLite → SQLite, PostgreSQL → PostgreSQL; any other pair the portable one).
async fn cell_like(home: &Store) -> Store {
    if home.dialect() == kontor_store::Dialect::Sqlite {
        return other_cell().await;
    }
    let url = std::env::var("KONTOR_TEST_POSTGRES_URL").expect("a PostgreSQL home has its URL");
    let (server, _) = url.rsplit_once('/').expect("a database URL");
    let name = format!(
        "kontor_cell_{}_{}",
        std::process::id(),
        CELLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    use sqlx::{Connection, Executor};
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    Store::open(&format!("{server}/{name}")).await.unwrap()
}

static CELLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// An account with records, an association, a user with a session, a token, an import with a
/// rejected row, an audit entry and a notification; moved to another cell of its engine and
/// back through a cell of the other engine (SQLite, for a PostgreSQL home).
pub async fn an_account_moves_whole_between_cells(d: Directory) {
    let (a, home) = account(&d, "moving").await;
    let contacts = ot(&home, a, "contacts").await;
    let companies = ot(&home, a, "companies").await;
    let made = home
        .create_records(
            a,
            &contacts,
            (0..50)
                .map(|i| CreateInput {
                    properties: props(json!({"email": format!("m{i}@example.com"), "firstname": format!("Ünïcode {i} \"quoted\"\n\ttab \\N back\\slash")})),
                    associations: vec![],
                })
                .collect(),
            &actor(),
        )
        .await
        .unwrap();
    let company = home
        .create_records(
            a,
            &companies,
            vec![CreateInput {
                properties: props(json!({"name": "Moving Co", "domain": "moving.example"})),
                associations: vec![],
            }],
            &actor(),
        )
        .await
        .unwrap()[0]
        .id;
    home.associate(a, &contacts, made[0].id, &companies, company, &[], &actor())
        .await
        .unwrap();
    home.archive_records(a, &contacts, &[made[1].id], &actor())
        .await
        .unwrap();
    let user = home
        .create_user(
            a,
            "mover@example.com",
            "Mo",
            "Ver",
            kontor_domain::Role::SuperAdmin,
            "long enough pw",
        )
        .await
        .unwrap();
    home.create_session(a, user.id, kontor_store::AuthMethod::Password, false)
        .await
        .unwrap();
    home.create_token(a, "integration", Some(user.id))
        .await
        .unwrap();
    home.audit(
        a,
        Some(user.id),
        "Mo Ver",
        "test.event",
        "moving",
        json!({"message": "before the move"}),
    )
    .await
    .unwrap();
    home.notify(a, user.id, "stays behind", "", None)
        .await
        .unwrap();
    let before = home.account_digests(a).await.unwrap();
    assert!(before.iter().any(|t| t.table == "records" && t.rows == 51));
    take(&home, a).await;

    // Out to another cell: the same rows, the same digests, the same records.
    let away = cell_like(&home).await;
    take(&away, a).await;
    let copied = home.copy_account_to(&away, a, T).await.unwrap();
    assert_eq!(copied.total(), before.iter().map(|t| t.rows).sum::<i64>());
    assert_eq!(away.account_digests(a).await.unwrap(), before);
    let r = away
        .record(a, &contacts, made[2].id, false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        r.props["firstname"],
        "Ünïcode 2 \"quoted\"\n\ttab \\N back\\slash"
    );
    assert!(
        away.notifications(a, user.id, 10).await.unwrap().is_empty(),
        "notifications are not moved"
    );
    // The id counters moved too: a new record continues after the old ones.
    let next = away
        .create_records(
            a,
            &contacts,
            vec![CreateInput {
                properties: props(json!({"email": "new@example.com"})),
                associations: vec![],
            }],
            &actor(),
        )
        .await
        .unwrap()[0]
        .id;
    assert!(
        made.iter().all(|m| m.id < next) && company < next,
        "ids continue without collision"
    );

    // A damaged copy is told apart by the digests.
    let damaged = cell_like(&home).await;
    take(&damaged, a).await;
    home.copy_account_to(&damaged, a, T).await.unwrap();
    damaged
        .update_records(
            a,
            &contacts,
            vec![kontor_store::UpdateInput {
                id: made[3].id,
                properties: props(json!({"firstname": "Tampered"})),
            }],
            &actor(),
        )
        .await
        .unwrap();
    let tampered = damaged.account_digests(a).await.unwrap();
    let differ: Vec<&str> = tampered
        .iter()
        .zip(&before)
        .filter(|(x, y)| x != y)
        .map(|(x, _)| x.table)
        .collect();
    assert!(
        differ.contains(&"records") && differ.contains(&"changes"),
        "{differ:?}"
    );
    assert!(damaged.remove_account_data(a, T).await.unwrap() > 0);
    assert!(
        damaged
            .account_digests(a)
            .await
            .unwrap()
            .iter()
            .all(|t| t.rows == 0),
        "nothing of the account is left"
    );

    // And back home, after the account was removed there: the same as before it left.
    away.remove_account_data(a, T).await.unwrap();
    let moved_back = other_cell().await;
    take(&moved_back, a).await;
    home.copy_account_to(&moved_back, a, T).await.unwrap();
    // Each engine's digest reads the same rows the same, escapes and all.
    assert_eq!(moved_back.account_digests(a).await.unwrap(), before);
    home.remove_account_data(a, T).await.unwrap();
    assert!(home
        .account_digests(a)
        .await
        .unwrap()
        .iter()
        .all(|t| t.rows == 0));
    moved_back.copy_account_to(&home, a, T).await.unwrap();
    assert_eq!(home.account_digests(a).await.unwrap(), before);
}

/// The fence, in the cell itself: once an account is fenced no write of its rows commits
/// (records, users, tokens, the audit log, a job's claim), reads go on, other accounts are not
/// touched; once it is marked moved its rows may be removed but nothing written; lifted, all is
/// as before. Every table that holds accounts' rows has the fence.
pub async fn a_fenced_account_takes_no_writes(d: Directory) {
    use kontor_store::moving::Fence;
    use kontor_store::StoreError;
    let (a, s) = account(&d, "fenced").await;
    let (b, other) = account(&d, "not fenced").await;
    let contacts = ot(&s, a, "contacts").await;
    let new = |e: &str| CreateInput {
        properties: props(json!({"email": e})),
        associations: vec![],
    };
    let kept = s
        .create_records(a, &contacts, vec![new("kept@example.com")], &actor())
        .await
        .unwrap()[0]
        .id;
    let job = crate::new_import(&s, a, kontor_store::imports::SOURCE_API, None)
        .await
        .unwrap()
        .job_id;
    take(&s, a).await;
    s.fence_account(a, "eu", T).await.unwrap();
    assert_eq!(
        s.account_fence(a).await.unwrap(),
        Some(Fence::Frozen { to: "eu".into() })
    );

    let fenced = |r: Result<(), StoreError>, what: &str| match r {
        Err(StoreError::Fenced(_)) => {}
        other => panic!("{what} was not refused by the fence: {other:?}"),
    };
    fenced(
        s.create_records(a, &contacts, vec![new("new@example.com")], &actor())
            .await
            .map(|_| ()),
        "a create",
    );
    fenced(
        s.update_records(
            a,
            &contacts,
            vec![kontor_store::UpdateInput {
                id: kept,
                properties: props(json!({"firstname": "X"})),
            }],
            &actor(),
        )
        .await
        .map(|_| ()),
        "an update",
    );
    fenced(
        s.archive_records(a, &contacts, &[kept], &actor())
            .await
            .map(|_| ()),
        "an archive",
    );
    fenced(
        s.create_user(
            a,
            "late@example.com",
            "",
            "",
            kontor_domain::Role::User,
            "long enough pw",
        )
        .await
        .map(|_| ()),
        "a new user",
    );
    fenced(
        s.create_token(a, "late", None).await.map(|_| ()),
        "a new token",
    );
    fenced(
        s.audit(a, None, "x", "x", "x", json!({})).await.map(|_| ()),
        "an audit entry",
    );
    // The account's queued job is not claimed while it is fenced.
    assert!(s
        .claim_job(
            "runner",
            60_000,
            &[kontor_store::JOB_KIND_IMPORT],
            Some((a, job))
        )
        .await
        .unwrap()
        .is_none());
    // Reads go on; another account writes as ever.
    assert!(s.record(a, &contacts, kept, false).await.unwrap().is_some());
    let theirs = ot(&other, b, "contacts").await;
    other
        .create_records(b, &theirs, vec![new("other@example.com")], &actor())
        .await
        .unwrap();

    // Moved: still no writes, but its rows may be removed.
    s.mark_account_moved(a, "eu", T).await.unwrap();
    fenced(
        s.create_records(a, &contacts, vec![new("late@example.com")], &actor())
            .await
            .map(|_| ()),
        "a create after the move",
    );
    // (Restore the record for the lifted fence below: copy it away first.)
    let away = other_cell().await;
    take(&away, a).await;
    s.copy_account_to(&away, a, T).await.unwrap();
    assert!(s.remove_account_data(a, T).await.unwrap() > 0);
    assert!(s.record(a, &contacts, kept, false).await.unwrap().is_none());

    // Lifted (the account comes back): writes commit again.
    s.unfence_account(a, T).await.unwrap();
    away.copy_account_to(&s, a, T).await.unwrap();
    s.create_records(a, &contacts, vec![new("after@example.com")], &actor())
        .await
        .unwrap();
    assert!(s
        .claim_job(
            "runner",
            60_000,
            &[kontor_store::JOB_KIND_IMPORT],
            Some((a, job))
        )
        .await
        .unwrap()
        .is_some());
}

/// A copy made while the account stays live catches up: writers go on (creates, updates,
/// archives, associations, tokens, audit entries) while the account is copied out and rounds
/// of catch-up run; the copy verified between rounds matches; frozen, the last rounds leave
/// both cells holding the same rows; a copy damaged behind the catch-up's back is caught.
pub async fn a_live_copy_catches_up(d: Directory) {
    use kontor_store::moving::Fence;
    let (a, home) = account(&d, "live copy").await;
    let contacts = ot(&home, a, "contacts").await;
    let companies = ot(&home, a, "companies").await;
    let new = |i: usize| CreateInput {
        properties: props(
            json!({"email": format!("live{i}@example.com"), "firstname": format!("L{i}")}),
        ),
        associations: vec![],
    };
    let first = home
        .create_records(a, &contacts, (0..300).map(new).collect(), &actor())
        .await
        .unwrap();
    let company = home
        .create_records(
            a,
            &companies,
            vec![CreateInput {
                properties: props(json!({"name": "Live Co"})),
                associations: vec![],
            }],
            &actor(),
        )
        .await
        .unwrap()[0]
        .id;
    let away = other_cell().await;
    take(&away, a).await;
    take(&home, a).await;
    away.mark_incoming(a, "us", T).await.unwrap();
    home.start_capture(a, "eu", T).await.unwrap();
    assert_eq!(
        home.account_fence(a).await.unwrap(),
        Some(Fence::Copying { to: "eu".into() })
    );

    // Writers throughout the copy and the catch-up.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (home, contacts, companies, stop) = (
            home.clone(),
            contacts.clone(),
            companies.clone(),
            stop.clone(),
        );
        let ids: Vec<i64> = first.iter().map(|r| r.id).collect();
        tokio::spawn(async move {
            let mut i = 1000;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let made = home
                    .create_records(a, &contacts, vec![new(i)], &actor())
                    .await
                    .unwrap()[0]
                    .id;
                let old = ids[i % ids.len()];
                home.update_records(
                    a,
                    &contacts,
                    vec![kontor_store::UpdateInput {
                        id: old,
                        properties: props(json!({"lastname": format!("W{i}")})),
                    }],
                    &actor(),
                )
                .await
                .unwrap();
                if i % 7 == 0 {
                    home.archive_records(a, &contacts, &[made], &actor())
                        .await
                        .unwrap();
                }
                if i % 5 == 0 {
                    home.associate(a, &contacts, old, &companies, company, &[], &actor())
                        .await
                        .unwrap();
                }
                if i % 13 == 0 {
                    // Notifications stay behind: written during the copy, they are not carried.
                    home.notify(a, 1, "during the copy", "", None)
                        .await
                        .unwrap();
                }
                if i % 11 == 0 {
                    home.create_token(a, &format!("t{i}"), None).await.unwrap();
                    home.audit(a, None, "w", "test.write", "x", json!({"i": i}))
                        .await
                        .unwrap();
                }
                tokio::task::yield_now().await;
            }
            i
        })
    };
    home.copy_account_to(&away, a, T).await.unwrap();
    let mut rounds = 0;
    loop {
        let round = home.catch_up_to(&away, a, T, 200).await.unwrap();
        rounds += 1;
        if rounds >= 3 && round.pending < 50 {
            break;
        }
        assert!(rounds < 1000, "the catch-up does not converge");
    }
    assert_eq!(
        home.verify_copy(&away, a).await.unwrap(),
        vec![],
        "the copy matches the live account but for what is still to carry over"
    );
    for _ in 0..3 {
        home.catch_up_to(&away, a, T, 200).await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let writes = writer.await.unwrap() - 1000;
    assert!(writes > 0, "the writer wrote during the move");

    // Frozen: nothing more commits; the last rounds carry over the rest.
    home.fence_account(a, "eu", T).await.unwrap();
    while home.catch_up_to(&away, a, T, 500).await.unwrap().pending > 0 {}
    assert_eq!(home.pending_changes(a).await.unwrap(), 0);
    let here = home.account_digests(a).await.unwrap();
    assert_eq!(away.account_digests(a).await.unwrap(), here);
    assert!(here.iter().any(|t| t.table == "records" && t.rows > 301));

    // A row of the copy changed behind the catch-up's back is caught by the comparison.
    home.start_capture(a, "eu", T).await.unwrap();
    away.unfence_account(a, T).await.unwrap();
    away.update_records(
        a,
        &contacts,
        vec![kontor_store::UpdateInput {
            id: first[5].id,
            properties: props(json!({"firstname": "Tampered"})),
        }],
        &actor(),
    )
    .await
    .unwrap();
    let differ: Vec<&str> = home
        .verify_copy(&away, a)
        .await
        .unwrap()
        .iter()
        .map(|m| m.table)
        .collect();
    assert!(
        differ.contains(&"records") && differ.contains(&"changes"),
        "{differ:?}"
    );
    home.unfence_account(a, T).await.unwrap();
}

/// A runner whose move another took over writes nothing more in either cell: once the later
/// token is taken, every step of the earlier runner fails (the copy on either copier, the
/// catch-up, each change of the fence, the removal), and a token never goes back down. The
/// later runner goes on as if the earlier one had never been.
pub async fn a_superseded_runner_writes_nothing(d: Directory) {
    let (a, home) = account(&d, "superseded").await;
    superseded_between(a, &home, other_cell().await).await;
    if home.dialect() == kontor_store::Dialect::Postgres {
        let (a, home) = account(&d, "superseded between two PostgreSQL cells").await;
        let away = cell_like(&home).await;
        superseded_between(a, &home, away).await;
    }
}

async fn superseded_between(a: i64, home: &Store, away: Store) {
    use kontor_store::moving::Fence;
    use kontor_store::{StoreError, StoreResult};
    let contacts = ot(home, a, "contacts").await;
    let new = |i: usize| CreateInput {
        properties: props(json!({"email": format!("s{i}@example.com")})),
        associations: vec![],
    };
    home.create_records(a, &contacts, (0..20).map(new).collect(), &actor())
        .await
        .unwrap();
    let (earlier, later) = (Token(10), Token(11));
    for s in [home, &away] {
        assert!(s.take_move_token(a, earlier).await.unwrap());
    }
    away.mark_incoming(a, "us", earlier).await.unwrap();
    home.start_capture(a, "eu", earlier).await.unwrap();
    // Only the move writes an account arriving in a cell: a node that still routes the account
    // there (from before an earlier move) is refused.
    assert!(matches!(
        away.create_token(a, "stale node", None).await,
        Err(StoreError::Fenced(_))
    ));
    home.create_records(a, &contacts, vec![new(20)], &actor())
        .await
        .unwrap();
    let captured = home.pending_changes(a).await.unwrap();
    assert!(captured > 0, "the write is captured");

    // Another runner takes the move over.
    for s in [home, &away] {
        assert!(s.take_move_token(a, later).await.unwrap());
    }
    assert!(
        !away.take_move_token(a, earlier).await.unwrap(),
        "a token never goes back down"
    );
    fn refused<T: std::fmt::Debug>(r: StoreResult<T>, what: &str) {
        match r {
            Err(StoreError::Conflict { message, .. }) => {
                assert!(message.contains("later runner"), "{what}: {message}")
            }
            other => panic!("{what} of the superseded runner was not refused: {other:?}"),
        }
    }
    refused(home.copy_account_to(&away, a, earlier).await, "the copy");
    assert!(
        away.account_digests(a)
            .await
            .unwrap()
            .iter()
            .all(|t| t.rows == 0),
        "nothing was copied"
    );
    refused(
        home.catch_up_to(&away, a, earlier, 100).await,
        "a catch-up round",
    );
    assert_eq!(
        home.pending_changes(a).await.unwrap(),
        captured,
        "nothing was carried over"
    );
    refused(home.fence_account(a, "eu", earlier).await, "freezing");
    refused(home.unfence_account(a, earlier).await, "lifting the fence");
    refused(
        away.mark_incoming(a, "us", earlier).await,
        "marking incoming",
    );
    assert_eq!(
        home.account_fence(a).await.unwrap(),
        Some(Fence::Copying { to: "eu".into() })
    );
    refused(
        home.remove_account_data(a, earlier).await,
        "removing the account",
    );
    assert_eq!(
        home.account_row_counts(a)
            .await
            .unwrap()
            .iter()
            .find(|(t, _)| *t == "records")
            .map(|(_, n)| *n),
        Some(21)
    );

    // The later runner goes on.
    home.copy_account_to(&away, a, later).await.unwrap();
    home.fence_account(a, "eu", later).await.unwrap();
    while home
        .catch_up_to(&away, a, later, 100)
        .await
        .unwrap()
        .pending
        > 0
    {}
    assert_eq!(
        away.account_digests(a).await.unwrap(),
        home.account_digests(a).await.unwrap()
    );
    assert!(matches!(
        away.audit(a, None, "x", "x", "x", json!({})).await,
        Err(StoreError::Fenced(_))
    ));
    home.unfence_account(a, later).await.unwrap();
    away.remove_account_data(a, later).await.unwrap();
    away.unfence_account(a, later).await.unwrap();
    away.create_token(a, "after the fence", None).await.unwrap();
}

/// An account a move holds in a cell is not indexed there, even by a batch asked for it
/// directly (one begun before the fence): its rows are about to leave, or to be removed. Once
/// the fence is lifted, the index catches up.
pub async fn a_held_account_is_not_indexed(d: Directory) {
    let (a, s) = account(&d, "held from the index").await;
    let contacts = ot(&s, a, "contacts").await;
    let inputs = (0..5)
        .map(|i| CreateInput {
            properties: props(json!({"email": format!("held{i}@example.com")})),
            associations: vec![],
        })
        .collect();
    s.create_records(a, &contacts, inputs, &actor())
        .await
        .unwrap();
    take(&s, a).await;
    s.start_capture(a, "eu", T).await.unwrap();
    assert!(!behind(&s, a).await, "a held account is listed to index");
    assert_eq!(
        s.index_changes(a).await.unwrap(),
        0,
        "a held account was indexed"
    );
    s.fence_account(a, "eu", T).await.unwrap();
    assert_eq!(
        s.index_changes(a).await.unwrap(),
        0,
        "a frozen account was indexed"
    );
    s.unfence_account(a, T).await.unwrap();
    assert!(behind(&s, a).await);
    assert!(s.index_all_changes(a).await.unwrap() > 0);
    assert!(!behind(&s, a).await);
}

/// Whether the account is listed among those whose index is behind.
async fn behind(s: &Store, a: i64) -> bool {
    s.index_lags().await.unwrap().iter().any(|l| l.account == a)
}
