//! Schema migrations, applied in order at open. The same DDL serves both engines: only
//! `BIGINT` and `TEXT` columns, flags as 0/1, times as epoch milliseconds.
//!
//! A directory database and a region cell share one schema: each simply leaves the other's
//! tables empty. That keeps "the directory lives in the `us` database" a configuration choice.

use crate::{Store, StoreResult};

const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE accounts (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    region TEXT NOT NULL,
    tier TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE counters (
    account_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (account_id, name)
);
CREATE TABLE records (
    account_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    object_type TEXT NOT NULL,
    props TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    archived BIGINT NOT NULL DEFAULT 0,
    archived_at BIGINT,
    PRIMARY KEY (account_id, id)
);
CREATE INDEX records_by_type ON records (account_id, object_type, archived, id);
CREATE TABLE unique_values (
    account_id BIGINT NOT NULL,
    object_type TEXT NOT NULL,
    property TEXT NOT NULL,
    value TEXT NOT NULL,
    record_id BIGINT NOT NULL,
    PRIMARY KEY (account_id, object_type, property, value)
);
CREATE INDEX unique_values_by_record ON unique_values (account_id, record_id);
CREATE TABLE changes (
    account_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    object_type TEXT NOT NULL,
    record_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    props TEXT NOT NULL,
    source TEXT NOT NULL,
    source_id TEXT,
    actor_user_id BIGINT,
    at BIGINT NOT NULL,
    PRIMARY KEY (account_id, seq)
);
CREATE INDEX changes_by_record ON changes (account_id, record_id, seq);
CREATE TABLE properties (
    account_id BIGINT NOT NULL,
    object_type TEXT NOT NULL,
    name TEXT NOT NULL,
    def TEXT NOT NULL,
    archived BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, object_type, name)
);
CREATE TABLE property_groups (
    account_id BIGINT NOT NULL,
    object_type TEXT NOT NULL,
    name TEXT NOT NULL,
    label TEXT NOT NULL,
    display_order BIGINT NOT NULL,
    archived BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, object_type, name)
);
CREATE TABLE schemas (
    account_id BIGINT NOT NULL,
    object_type TEXT NOT NULL,
    name TEXT NOT NULL,
    def TEXT NOT NULL,
    archived BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, object_type)
);
CREATE TABLE association_types (
    account_id BIGINT NOT NULL,
    from_type TEXT NOT NULL,
    to_type TEXT NOT NULL,
    type_id BIGINT NOT NULL,
    category TEXT NOT NULL,
    label TEXT,
    name TEXT NOT NULL,
    inverse_type_id BIGINT NOT NULL,
    is_default BIGINT NOT NULL,
    PRIMARY KEY (account_id, from_type, to_type, type_id)
);
CREATE TABLE associations (
    account_id BIGINT NOT NULL,
    from_id BIGINT NOT NULL,
    to_type TEXT NOT NULL,
    to_id BIGINT NOT NULL,
    type_id BIGINT NOT NULL,
    category TEXT NOT NULL,
    from_type TEXT NOT NULL,
    PRIMARY KEY (account_id, from_id, to_type, to_id, category, type_id)
);
CREATE INDEX associations_by_target ON associations (account_id, to_id);
CREATE TABLE owners (
    account_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    email TEXT NOT NULL,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    user_id BIGINT,
    archived BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE TABLE users (
    account_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    email TEXT NOT NULL,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    active BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX users_by_email ON users (account_id, email);
CREATE TABLE tokens (
    account_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    created_by BIGINT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX tokens_by_hash ON tokens (token_hash);
CREATE TABLE audit_log (
    account_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    at BIGINT NOT NULL,
    actor_user_id BIGINT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    details TEXT NOT NULL,
    PRIMARY KEY (account_id, id)
);
"#,
    ),
    (
        2,
        r#"
CREATE TABLE logins (
    email TEXT NOT NULL,
    account_id BIGINT NOT NULL,
    PRIMARY KEY (email, account_id)
);
CREATE TABLE login_failures (
    email TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    last_failure_at BIGINT NOT NULL
);
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    account_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    csrf TEXT NOT NULL,
    auth_method TEXT NOT NULL,
    pending_second_factor BIGINT NOT NULL,
    second_factor_at BIGINT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (account_id, user_id);
CREATE TABLE user_second_factors (
    account_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    totp_secret TEXT NOT NULL,
    enabled BIGINT NOT NULL,
    recovery_codes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, user_id)
);
CREATE TABLE notifications (
    account_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    at BIGINT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    link TEXT,
    read_at BIGINT,
    PRIMARY KEY (account_id, id)
);
CREATE INDEX notifications_by_user ON notifications (account_id, user_id, id)
"#,
    ),
    (
        3,
        r#"
ALTER TABLE user_second_factors ADD COLUMN last_step BIGINT NOT NULL DEFAULT 0
"#,
    ),
    (
        4,
        r#"
CREATE TABLE jobs (
    account_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    payload TEXT NOT NULL,
    progress_done BIGINT NOT NULL DEFAULT 0,
    progress_total BIGINT NOT NULL DEFAULT 0,
    attempts BIGINT NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until BIGINT,
    error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT,
    PRIMARY KEY (account_id, id)
);
CREATE INDEX jobs_open ON jobs (state, lease_until);
CREATE TABLE backups (
    account_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    job_id BIGINT NOT NULL,
    state TEXT NOT NULL,
    requested_by BIGINT,
    requested_by_name TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    started_at BIGINT,
    completed_at BIGINT,
    snapshot_seq BIGINT,
    snapshot_at BIGINT,
    size_bytes BIGINT,
    rows_total BIGINT,
    sha256 TEXT,
    file_key TEXT,
    expires_at BIGINT,
    deleted_at BIGINT,
    error TEXT,
    PRIMARY KEY (account_id, id)
)
"#,
    ),
    (
        5,
        r#"
ALTER TABLE changes ADD COLUMN prior TEXT;
CREATE TABLE imports (
    account_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    job_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    object_type TEXT NOT NULL,
    operation TEXT NOT NULL,
    state TEXT NOT NULL,
    request TEXT NOT NULL,
    file_key TEXT,
    file_name TEXT,
    created_by BIGINT,
    created_by_name TEXT NOT NULL,
    rows_total BIGINT NOT NULL DEFAULT 0,
    rows_done BIGINT NOT NULL DEFAULT 0,
    created_count BIGINT NOT NULL DEFAULT 0,
    updated_count BIGINT NOT NULL DEFAULT 0,
    unchanged_count BIGINT NOT NULL DEFAULT 0,
    error_count BIGINT NOT NULL DEFAULT 0,
    conflict_count BIGINT NOT NULL DEFAULT 0,
    first_seq BIGINT,
    last_seq BIGINT,
    reverted_by BIGINT,
    error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT,
    PRIMARY KEY (account_id, id)
);
CREATE TABLE import_errors (
    account_id BIGINT NOT NULL,
    import_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    line BIGINT NOT NULL,
    record_id BIGINT,
    error_type TEXT NOT NULL,
    message TEXT NOT NULL,
    property TEXT,
    invalid_value TEXT,
    row_data TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, import_id, id)
);
CREATE TABLE restore_plans (
    account_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    backup_id BIGINT,
    reverts_import BIGINT,
    object_type TEXT NOT NULL,
    properties TEXT NOT NULL,
    seq BIGINT NOT NULL,
    summary TEXT NOT NULL,
    created_by BIGINT,
    created_by_name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    import_id BIGINT,
    PRIMARY KEY (account_id, id)
)
"#,
    ),
    (
        6,
        // The role a token's creator held when making it: the token works only while its
        // creator is active and still holds that role. Existing tokens take their creator's
        // present role.
        r#"
ALTER TABLE tokens ADD COLUMN created_role TEXT;
UPDATE tokens SET created_role = (SELECT role FROM users WHERE users.account_id = tokens.account_id AND users.id = tokens.created_by) WHERE created_by IS NOT NULL
"#,
    ),
    (
        7,
        // Guesses at a secret, counted per subject and factor before the secret is checked
        // (attempts.rs). It replaces the per-address failure count, which was raised only
        // after a check and cleared by any success.
        r#"
CREATE TABLE attempts (
    subject TEXT NOT NULL,
    factor TEXT NOT NULL,
    count BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    PRIMARY KEY (subject, factor)
);
DROP TABLE login_failures
"#,
    ),
    (
        8,
        // What a finished job has to tell its requester, written in the transaction that ends
        // the job; a dispatcher delivers it (in-app, then e-mail) and marks each part done.
        r#"
CREATE TABLE job_outbox (
    account_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    target_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    in_app_at BIGINT,
    mail_claimed_until BIGINT,
    mailed_at BIGINT,
    PRIMARY KEY (account_id, id)
);
CREATE INDEX job_outbox_pending ON job_outbox (mailed_at, created_at)
"#,
    ),
    (
        9,
        // Single-use links that set a new password ("forgot password", an admin's reset).
        r#"
CREATE TABLE password_resets (
    token_hash TEXT PRIMARY KEY,
    account_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX password_resets_user ON password_resets (account_id, user_id)
"#,
    ),
    (
        10,
        r#"
CREATE TABLE sso_configs (
    account_id BIGINT PRIMARY KEY,
    issuer TEXT NOT NULL,
    client_id TEXT NOT NULL,
    client_secret_sealed TEXT NOT NULL,
    domains TEXT NOT NULL,
    required BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by BIGINT
);
CREATE TABLE sso_flows (
    state_hash TEXT PRIMARY KEY,
    account_id BIGINT NOT NULL,
    nonce TEXT NOT NULL,
    verifier TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
)
"#,
    ),
    (
        11,
        r#"
CREATE TABLE account_fences (
    account_id BIGINT PRIMARY KEY,
    state TEXT NOT NULL,
    region TEXT NOT NULL,
    since BIGINT NOT NULL
)
"#,
    ),
    (
        12,
        r#"
ALTER TABLE imports ADD COLUMN file_bytes BIGINT NOT NULL DEFAULT 0
"#,
    ),
    (
        13,
        r#"
CREATE TABLE move_log (
    account_id BIGINT NOT NULL,
    tbl TEXT NOT NULL,
    row_key TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (account_id, tbl, row_key)
);
CREATE TABLE moves (
    id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL,
    from_region TEXT NOT NULL,
    to_region TEXT NOT NULL,
    state TEXT NOT NULL,
    phase TEXT NOT NULL,
    start_at BIGINT NOT NULL,
    scheduled_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    frozen_at BIGINT,
    switched_at BIGINT,
    finished_at BIGINT,
    canceled_at BIGINT,
    error TEXT,
    progress TEXT NOT NULL,
    full_verify BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    attempts BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX moves_by_account ON moves (account_id, id);
ALTER TABLE accounts ADD COLUMN flags TEXT NOT NULL DEFAULT ''
"#,
    ),
    (
        14,
        r#"
ALTER TABLE job_outbox ADD COLUMN recipient BIGINT;
CREATE UNIQUE INDEX job_outbox_once ON job_outbox (account_id, kind, target_id, recipient)
"#,
    ),
    (
        15,
        r#"
CREATE TABLE move_checklist (
    account_id BIGINT NOT NULL,
    move_id BIGINT NOT NULL,
    item TEXT NOT NULL,
    done_by TEXT NOT NULL,
    done_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, move_id, item)
)
"#,
    ),
    (
        16,
        r#"
CREATE TABLE move_tokens (
    account_id BIGINT PRIMARY KEY,
    token BIGINT NOT NULL,
    writing BIGINT NOT NULL DEFAULT 0
)
"#,
    ),
    (
        17,
        r#"
CREATE TABLE forms (
    account_id BIGINT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    fields TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    archived_at BIGINT,
    PRIMARY KEY (account_id, id)
);
CREATE TABLE form_submissions (
    account_id BIGINT NOT NULL,
    id TEXT NOT NULL,
    form_id TEXT NOT NULL,
    submitted_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    applied_at BIGINT NOT NULL,
    fields TEXT NOT NULL,
    page_uri TEXT,
    page_name TEXT,
    contact_id BIGINT,
    error TEXT,
    PRIMARY KEY (account_id, id)
);
CREATE INDEX form_submissions_by_form ON form_submissions (account_id, form_id, submitted_at);
CREATE TABLE form_queue (
    seq BIGINT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    account_id BIGINT NOT NULL,
    body TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    applied_at BIGINT
);
CREATE INDEX form_queue_waiting ON form_queue (account_id, seq) WHERE applied_at IS NULL;
CREATE INDEX form_queue_applied ON form_queue (applied_at)
"#,
    ),
    (
        19,
        r#"
CREATE TABLE erased (
    account_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    object_type TEXT NOT NULL,
    value TEXT NOT NULL,
    erased_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, kind, object_type, value)
)
"#,
    ),
    (
        20,
        r#"
CREATE TABLE webhook_apps (
    account_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    name TEXT NOT NULL,
    target_url TEXT,
    max_concurrent BIGINT NOT NULL,
    secret_sealed TEXT NOT NULL,
    cursor_seq BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE TABLE webhook_subscriptions (
    account_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    app_id BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    object_type_id TEXT,
    property_name TEXT,
    active BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE TABLE webhook_events (
    account_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    app_id BIGINT NOT NULL,
    subscription_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    object_id BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_at BIGINT NOT NULL,
    claim TEXT,
    last_status BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    done_at BIGINT,
    PRIMARY KEY (account_id, id)
);
CREATE INDEX webhook_events_pending ON webhook_events (account_id, app_id, next_at, id) WHERE state = 'pending';
CREATE INDEX webhook_events_by_app ON webhook_events (account_id, app_id, id);
CREATE INDEX webhook_events_by_object ON webhook_events (account_id, object_id);
CREATE INDEX webhook_events_done ON webhook_events (done_at) WHERE state <> 'pending'
"#,
    ),
    (
        21,
        r#"
ALTER TABLE sso_flows ADD COLUMN purpose TEXT NOT NULL DEFAULT 'sso';
CREATE TABLE salesforce_connections (
    account_id BIGINT NOT NULL,
    state TEXT NOT NULL,
    paused_reason TEXT,
    org_id TEXT NOT NULL,
    org_name TEXT NOT NULL,
    sf_user_id TEXT NOT NULL,
    username TEXT NOT NULL,
    user_email TEXT NOT NULL,
    instance_url TEXT NOT NULL,
    access_sealed TEXT NOT NULL,
    refresh_sealed TEXT NOT NULL,
    settings TEXT NOT NULL,
    push_seq BIGINT NOT NULL,
    next_at BIGINT NOT NULL,
    backoff_ms BIGINT NOT NULL,
    claim TEXT,
    claim_until BIGINT,
    calls_window_start BIGINT NOT NULL,
    calls BIGINT NOT NULL,
    org_used BIGINT,
    org_limit BIGINT,
    last_round_at BIGINT,
    last_ok_at BIGINT,
    last_error TEXT,
    connected_by BIGINT,
    connected_at BIGINT NOT NULL,
    disconnected_at BIGINT,
    keep_until BIGINT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (account_id)
);
CREATE TABLE salesforce_mappings (
    account_id BIGINT NOT NULL,
    sf_type TEXT NOT NULL,
    sf_field TEXT NOT NULL,
    property TEXT NOT NULL,
    rule TEXT NOT NULL,
    custom BIGINT NOT NULL,
    PRIMARY KEY (account_id, sf_type, sf_field)
);
CREATE TABLE salesforce_links (
    account_id BIGINT NOT NULL,
    sf_id TEXT NOT NULL,
    sf_type TEXT NOT NULL,
    object_type TEXT NOT NULL,
    record_id BIGINT NOT NULL,
    synced TEXT NOT NULL,
    synced_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, sf_id)
);
CREATE UNIQUE INDEX salesforce_links_by_record ON salesforce_links (account_id, object_type, record_id);
CREATE TABLE salesforce_cursors (
    account_id BIGINT NOT NULL,
    sf_type TEXT NOT NULL,
    modstamp TEXT NOT NULL,
    last_id TEXT NOT NULL,
    deleted_from TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, sf_type)
);
CREATE TABLE salesforce_owner_map (
    account_id BIGINT NOT NULL,
    sf_user_id TEXT NOT NULL,
    owner_id BIGINT NOT NULL,
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (account_id, sf_user_id)
);
CREATE INDEX salesforce_owner_map_by_owner ON salesforce_owner_map (account_id, owner_id);
CREATE TABLE salesforce_errors (
    account_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    direction TEXT NOT NULL,
    subject TEXT NOT NULL,
    object_type TEXT NOT NULL,
    record_id BIGINT,
    sf_type TEXT NOT NULL,
    sf_id TEXT,
    category TEXT NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    first_at BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    retry_at BIGINT,
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX salesforce_errors_by_subject ON salesforce_errors (account_id, direction, subject)
"#,
    ),
    (
        22,
        r#"
ALTER TABLE owners ADD COLUMN origin TEXT;
UPDATE owners SET origin = 'salesforce' WHERE user_id IS NULL AND EXISTS (SELECT 1 FROM salesforce_owner_map m WHERE m.account_id = owners.account_id AND m.owner_id = owners.id);
CREATE TABLE salesforce_uninstalls (
    account_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    job_id BIGINT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    pending TEXT NOT NULL,
    keep_data BIGINT NOT NULL,
    org_id TEXT NOT NULL,
    org_name TEXT NOT NULL,
    impact TEXT NOT NULL,
    outcome TEXT,
    error TEXT,
    requested_by BIGINT,
    requested_by_name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    finished_at BIGINT,
    PRIMARY KEY (account_id, id)
);
CREATE TABLE owner_reassignments (
    account_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    job_id BIGINT NOT NULL,
    state TEXT NOT NULL,
    assignments TEXT NOT NULL,
    reverts BIGINT,
    reverted_by BIGINT,
    moved BIGINT NOT NULL,
    skipped BIGINT NOT NULL,
    after_id BIGINT NOT NULL,
    error TEXT,
    created_by BIGINT,
    created_by_name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    finished_at BIGINT,
    PRIMARY KEY (account_id, id)
);
CREATE TABLE owner_reassigned (
    account_id BIGINT NOT NULL,
    reassignment_id BIGINT NOT NULL,
    record_id BIGINT NOT NULL,
    object_type TEXT NOT NULL,
    from_owner BIGINT NOT NULL,
    to_owner BIGINT NOT NULL,
    PRIMARY KEY (account_id, reassignment_id, record_id)
)
"#,
    ),
    (
        24,
        r#"
CREATE TABLE index_builds (
    account_id BIGINT NOT NULL,
    object_type TEXT NOT NULL,
    property TEXT NOT NULL,
    job_id BIGINT,
    after_id BIGINT NOT NULL,
    done BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, object_type, property)
);
CREATE TABLE index_cursors (
    account_id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL
)
"#,
    ),
    // The index's epoch (see `search::sort_keys`): changes when its rows change other than by
    // following the change log.
    (
        25,
        "ALTER TABLE index_cursors ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0",
    ),
    // No posting lists for long prefixes with a digit (`keys::grams`): the index starts
    // over, as with 26.
    (
        27,
        "DELETE FROM record_grams; DELETE FROM record_values; DELETE FROM record_tokens; DELETE FROM index_cursors",
    ),
];

/// The search index (see `search::indexer`), one migration per engine: SQLite keeps each table
/// as its key's B-tree alone (`WITHOUT ROWID`); PostgreSQL compares the keys byte by byte
/// (`COLLATE "C"`), which is the order the keys are made for.
const INDEX_TABLES: &str = r#"
CREATE TABLE record_values (
    account_id BIGINT NOT NULL,
    object_type TEXT NOT NULL,
    property TEXT NOT NULL,
    value_key TEXT{C} NOT NULL,
    record_id BIGINT NOT NULL,
    PRIMARY KEY (account_id, object_type, property, value_key, record_id)
){WITHOUT_ROWID};
CREATE INDEX record_values_by_record ON record_values (account_id, object_type, record_id, property);
CREATE TABLE record_tokens (
    account_id BIGINT NOT NULL,
    object_type TEXT NOT NULL,
    property TEXT NOT NULL,
    token TEXT{C} NOT NULL,
    record_id BIGINT NOT NULL,
    PRIMARY KEY (account_id, object_type, property, token, record_id)
){WITHOUT_ROWID};
CREATE INDEX record_tokens_by_record ON record_tokens (account_id, object_type, record_id, property)
"#;

/// The search index's posting lists of word prefixes (see `search::grams`): a row per
/// property, gram and block of up to 256 record ids (`lo` its first), holding the block's ids. The index starts
/// over with it (its rows and cursors go; the indexer makes them again from the change log),
/// so that every record has its grams.
const GRAM_TABLE: &str = r#"
CREATE TABLE record_grams (
    account_id BIGINT NOT NULL,
    object_type TEXT NOT NULL,
    property TEXT NOT NULL,
    gram TEXT{C} NOT NULL,
    lo BIGINT NOT NULL,
    ids {BLOB} NOT NULL,
    PRIMARY KEY (account_id, object_type, property, gram, lo)
){WITHOUT_ROWID};
DELETE FROM record_values;
DELETE FROM record_tokens;
DELETE FROM index_cursors
"#;

/// Migrations for SQLite alone, numbered in the same sequence as [`MIGRATIONS`] (a number is
/// used by one list only).
///
/// 18: `associations` and `unique_values` become `WITHOUT ROWID` tables. Every column of an
/// association, and all but one of a unique value, is in the primary key, so a rowid table kept
/// each row twice (the table and the key's index), written twice and read by a lookup per row
/// from the key's order; an account's rows now lie in key order in one B-tree. The tables are
/// made anew and filled from the old ones; their fence is made again just after.
const SQLITE_ONLY: &[(i64, &str)] = &[(
    18,
    r#"
CREATE TABLE associations_new (
    account_id BIGINT NOT NULL,
    from_id BIGINT NOT NULL,
    to_type TEXT NOT NULL,
    to_id BIGINT NOT NULL,
    type_id BIGINT NOT NULL,
    category TEXT NOT NULL,
    from_type TEXT NOT NULL,
    PRIMARY KEY (account_id, from_id, to_type, to_id, category, type_id)
) WITHOUT ROWID;
INSERT INTO associations_new (account_id, from_id, to_type, to_id, type_id, category, from_type)
    SELECT account_id, from_id, to_type, to_id, type_id, category, from_type FROM associations;
DROP TABLE associations;
ALTER TABLE associations_new RENAME TO associations;
CREATE INDEX associations_by_target ON associations (account_id, to_id);
CREATE TABLE unique_values_new (
    account_id BIGINT NOT NULL,
    object_type TEXT NOT NULL,
    property TEXT NOT NULL,
    value TEXT NOT NULL,
    record_id BIGINT NOT NULL,
    PRIMARY KEY (account_id, object_type, property, value)
) WITHOUT ROWID;
INSERT INTO unique_values_new (account_id, object_type, property, value, record_id)
    SELECT account_id, object_type, property, value, record_id FROM unique_values;
DROP TABLE unique_values;
ALTER TABLE unique_values_new RENAME TO unique_values;
CREATE INDEX unique_values_by_record ON unique_values (account_id, record_id)
"#,
)];

pub(crate) async fn run(store: &Store) -> StoreResult<()> {
    let mut tx = store.write().await?;
    if store.dialect == crate::Dialect::Postgres {
        // Several nodes (or a CLI command beside the server) may start at once on an empty
        // database: one migrates, the others wait and then find the work done.
        sqlx::query("SELECT pg_advisory_xact_lock(7234501)")
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
        .execute(&mut *tx)
        .await?;
    let applied: Vec<(i64,)> = sqlx::query_as("SELECT version FROM schema_migrations")
        .fetch_all(&mut *tx)
        .await?;
    let mut all: Vec<&(i64, &str)> = MIGRATIONS.iter().collect();
    if store.dialect == crate::Dialect::Sqlite {
        all.extend(SQLITE_ONLY);
    }
    let per_engine = |sql: &str| match store.dialect {
        crate::Dialect::Sqlite => sql
            .replace("{C}", "")
            .replace("{WITHOUT_ROWID}", " WITHOUT ROWID")
            .replace("{BLOB}", "BLOB"),
        crate::Dialect::Postgres => sql
            .replace("{C}", " COLLATE \"C\"")
            .replace("{WITHOUT_ROWID}", "")
            .replace("{BLOB}", "BYTEA"),
    };
    let (index_tables, gram_table) = (per_engine(INDEX_TABLES), per_engine(GRAM_TABLE));
    let index_migrations = [(23, index_tables.as_str()), (26, gram_table.as_str())];
    all.extend(&index_migrations);
    all.sort_by_key(|(version, _)| *version);
    for (version, sql) in all {
        if applied.iter().any(|(v,)| v == version) {
            continue;
        }
        for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(version)
            .bind(kontor_domain::time::now_ms())
            .execute(&mut *tx)
            .await?;
    }
    // The fence of every table that holds accounts' rows (see `moving`), made for the tables
    // that lack it, so that a table added by a later migration gets one too. Only then: DDL
    // on a table in use would wait for, and hold up, every writer of it.
    let fenced: Vec<(String,)> = sqlx::query_as(crate::moving::fenced_tables_sql(store.dialect))
        .fetch_all(&mut *tx)
        .await?;
    let mut missing = Vec::new();
    for t in crate::moving::account_tables().filter(|t| !fenced.iter().any(|(f,)| f == t)) {
        missing.push((t, primary_key(&mut tx, store.dialect, t).await?));
    }
    if !missing.is_empty() {
        for statement in crate::moving::fence_ddl(store.dialect, &missing) {
            sqlx::query(&statement).execute(&mut *tx).await?;
        }
    }
    tx.commit().await
}

/// A table's primary-key columns, in key order, from the catalog.
pub(crate) async fn primary_key(
    conn: &mut sqlx::AnyConnection,
    dialect: crate::Dialect,
    table: &str,
) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> = match dialect {
        crate::Dialect::Sqlite => {
            sqlx::query_as("SELECT name FROM pragma_table_info($1) WHERE pk > 0 ORDER BY pk")
                .bind(table)
                .fetch_all(&mut *conn)
                .await?
        }
        crate::Dialect::Postgres => sqlx::query_as(
            "SELECT CAST(k.column_name AS TEXT) FROM information_schema.table_constraints c \
             JOIN information_schema.key_column_usage k ON k.constraint_name = c.constraint_name AND k.table_schema = c.table_schema AND k.table_name = c.table_name \
             WHERE c.table_schema = current_schema() AND c.table_name = $1 AND c.constraint_type = 'PRIMARY KEY' ORDER BY k.ordinal_position",
        )
        .bind(table)
        .fetch_all(&mut *conn)
        .await?,
    };
    if rows.is_empty() {
        return Err(crate::StoreError::Config(format!(
            "{table} has no primary key: a move could not follow its rows"
        )));
    }
    Ok(rows.into_iter().map(|(c,)| c).collect())
}
