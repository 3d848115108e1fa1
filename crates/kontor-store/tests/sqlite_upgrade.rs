//! A SQLite cell made by an earlier version is brought to today's layout when opened: its
//! rows kept, its tables in their new form, and its fence made again.

use kontor_store::Store;

fn temp_db() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "kontor-sqlite-upgrade-{}-{}",
        std::process::id(),
        kontor_domain::time::now_ms()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("cell.db")
}

/// The table's definition, as SQLite keeps it.
fn definition(db: &rusqlite::Connection, table: &str) -> String {
    db.query_row(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [table],
        |r| r.get(0),
    )
    .unwrap()
}

#[tokio::test]
async fn associations_and_unique_values_become_without_rowid_tables_with_their_rows() {
    let path = temp_db();
    let url = format!("sqlite://{}", path.display());
    let store = Store::open(&url).await.unwrap();
    store.close().await;

    // Back to the layout of before (rowid tables), with rows of two accounts.
    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute_batch(
        "DROP TABLE associations;
         CREATE TABLE associations (account_id BIGINT NOT NULL, from_id BIGINT NOT NULL, to_type TEXT NOT NULL,
             to_id BIGINT NOT NULL, type_id BIGINT NOT NULL, category TEXT NOT NULL, from_type TEXT NOT NULL,
             PRIMARY KEY (account_id, from_id, to_type, to_id, category, type_id));
         CREATE INDEX associations_by_target ON associations (account_id, to_id);
         DROP TABLE unique_values;
         CREATE TABLE unique_values (account_id BIGINT NOT NULL, object_type TEXT NOT NULL, property TEXT NOT NULL,
             value TEXT NOT NULL, record_id BIGINT NOT NULL, PRIMARY KEY (account_id, object_type, property, value));
         CREATE INDEX unique_values_by_record ON unique_values (account_id, record_id);
         DELETE FROM schema_migrations WHERE version = 18;
         INSERT INTO associations VALUES (1, 10, '0-2', 20, 1, 'HUBSPOT_DEFINED', '0-1'), (1, 20, '0-1', 10, 2, 'HUBSPOT_DEFINED', '0-2'),
             (2, 11, '0-2', 21, 1, 'HUBSPOT_DEFINED', '0-1');
         INSERT INTO unique_values VALUES (1, '0-1', 'email', 'a@example.com', 10), (2, '0-1', 'email', 'a@example.com', 11);",
    )
    .unwrap();
    assert!(!definition(&db, "associations").contains("WITHOUT ROWID"));
    drop(db);

    let store = Store::open(&url).await.unwrap();
    let mut fenced = store.fenced_tables().await.unwrap();
    fenced.retain(|t| t == "associations" || t == "unique_values");
    assert_eq!(
        fenced,
        ["associations", "unique_values"],
        "the fence is made again"
    );
    store.close().await;

    let db = rusqlite::Connection::open(&path).unwrap();
    for table in ["associations", "unique_values"] {
        assert!(
            definition(&db, table).contains("WITHOUT ROWID"),
            "{table}: {}",
            definition(&db, table)
        );
    }
    let rows = |sql: &str| -> Vec<String> {
        let mut st = db.prepare(sql).unwrap();
        st.query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(
        rows("SELECT account_id || ':' || from_id || '>' || to_id || ':' || type_id FROM associations ORDER BY 1"),
        ["1:10>20:1", "1:20>10:2", "2:11>21:1"]
    );
    assert_eq!(
        rows("SELECT account_id || ':' || value || ':' || record_id FROM unique_values ORDER BY 1"),
        ["1:a@example.com:10", "2:a@example.com:11"]
    );
    let indexes = rows("SELECT name FROM sqlite_master WHERE type = 'index' AND name IN ('associations_by_target', 'unique_values_by_record') ORDER BY 1");
    assert_eq!(
        indexes,
        ["associations_by_target", "unique_values_by_record"]
    );
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test]
async fn an_account_made_before_new_builtin_properties_receives_them_and_keeps_its_own() {
    let path = temp_db();
    let url = format!("sqlite://{}", path.display());
    let store = Store::open(&url).await.unwrap();
    // The directory in a database of its own, as deployments have it.
    let directory_url = format!("sqlite://{}", path.with_file_name("directory.db").display());
    let dir = kontor_store::Directory {
        directory: Store::open(&directory_url).await.unwrap(),
        regions: std::collections::HashMap::from([(kontor_domain::Region::Us, store.clone())]),
    };
    let account = dir
        .create_account(
            "Old",
            kontor_domain::Region::Us,
            kontor_domain::Tier::Starter,
        )
        .await
        .unwrap()
        .id;
    store.close().await;
    dir.directory.close().await;

    // As an account made before line items and merges: their definitions absent, the seed
    // counter too (the cell's own as well, as in a database of that time), and a definition
    // of its own changed.
    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute_batch(&format!(
        "DELETE FROM properties WHERE account_id = {account} AND (object_type = '0-8' OR name = 'hs_merged_object_ids');
         DELETE FROM counters WHERE account_id IN (0, {account}) AND name = 'builtin_seed';
         UPDATE properties SET def = json_set(def, '$.label', 'Mail') WHERE account_id = {account} AND object_type = '0-1' AND name = 'email';"
    ))
    .unwrap();
    drop(db);

    let store = Store::open(&url).await.unwrap();
    let items = store.properties(account, "0-8", false).await.unwrap();
    assert!(items.iter().any(|p| p.name == "amount"), "{items:?}");
    let contacts = store.properties(account, "0-1", false).await.unwrap();
    assert!(contacts.iter().any(|p| p.name == "hs_merged_object_ids"));
    let email = contacts.iter().find(|p| p.name == "email").unwrap();
    assert_eq!(email.label, "Mail", "what the account holds is left alone");
    store.close().await;
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}
