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

mod support;

#[path = "conformance/concurrency.rs"]
mod concurrency;
use concurrency::*;
#[path = "conformance/records.rs"]
mod records;
use records::*;
#[path = "conformance/restores.rs"]
mod restores;
use restores::*;
#[path = "conformance/schema.rs"]
mod schema;
use schema::*;
#[path = "conformance/users.rs"]
mod users;
use users::*;
#[path = "conformance/accounts.rs"]
mod accounts;
use accounts::account_names_are_one_line_of_text;
#[path = "conformance/imports.rs"]
mod imports;
use imports::{
    import_batches_need_the_lease, import_rows_are_whole_or_rejected,
    open_import_bytes_are_capped_per_account, open_imports_are_capped_per_account,
    retention_of_import_errors_files_and_notifications,
};
#[path = "conformance/moving.rs"]
mod moving;
use moving::{
    a_fenced_account_takes_no_writes, a_held_account_is_not_indexed, a_live_copy_catches_up,
    a_superseded_runner_writes_nothing, an_account_moves_whole_between_cells,
    every_table_has_a_moving_rule,
};
#[path = "conformance/searches.rs"]
mod searches;
use searches::{
    search_filters_sorts_and_pages, search_pages_equal_the_full_sort,
    searches_stop_at_their_deadline,
};
#[path = "conformance/index.rs"]
mod index;
use index::{
    indexed_searches_equal_the_matcher, query_words_over_many_blocks,
    searches_racing_writes_and_the_indexer,
};
#[path = "conformance/sso.rs"]
mod sso;
use sso::{sso_settings_and_single_use_states, sso_states_in_flight_are_bounded};
#[path = "conformance/salesforce.rs"]
mod salesforce;
use salesforce::{
    salesforce_owners_are_reassigned_reverted_and_removed,
    uninstall_excludes_restores_and_keeps_data_48_hours,
};
#[path = "conformance/webhooks.rs"]
mod webhooks;
use webhooks::webhook_events_follow_the_change_log;
#[path = "conformance/sign_in.rs"]
mod sign_in;
use sign_in::{
    attempts_are_counted_before_checking, password_reset_links_are_single_use,
    recovery_codes_spend_once_under_concurrency, sessions_and_second_factors,
};

async fn sqlite() -> (Directory, support::Scratch) {
    support::sqlite_directory("kontor-conformance").await
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
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { let (d, _scratch) = super::sqlite().await; super::$name(d).await; })*
        }
        mod on_postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { if let Some(d) = super::postgres().await { super::$name(d).await; } })*
        }
    };
}

conformance!(
    seeds_builtin_schema,
    a_held_account_is_not_indexed,
    create_read_update_archive_with_history,
    unique_values_and_atomic_batches,
    ids_are_allocated_per_account,
    accounts_are_isolated,
    account_names_are_one_line_of_text,
    search_filters_sorts_and_pages,
    search_pages_equal_the_full_sort,
    searches_stop_at_their_deadline,
    indexed_searches_equal_the_matcher,
    query_words_over_many_blocks,
    searches_racing_writes_and_the_indexer,
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
    uninstall_excludes_restores_and_keeps_data_48_hours,
    salesforce_owners_are_reassigned_reverted_and_removed,
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
