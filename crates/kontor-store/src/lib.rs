#![doc = include_str!("../README.md")]

mod associations;
mod attempts;
mod auth;
mod backups;
mod board;
mod checkpoint;
mod console;
mod directory;
mod error;
mod export;
pub mod forms;
mod housekeeping;
pub use housekeeping::{
    IMPORT_ERRORS_DAYS, IMPORT_FILE_DAYS, READ_NOTIFICATION_DAYS, UNREAD_NOTIFICATION_DAYS,
};
pub mod imports;
mod jobs;
mod migrations;
pub mod moves;
pub mod moving;
mod objects;
mod outbox;
mod owners;
mod pipelines;
mod properties;
mod reassign;
mod records;
mod recovery;
mod restores;
mod salesforce;
mod schemas;
mod search;
mod sso;
mod webhooks;

pub use associations::{AssociatedRecord, AssociationInput, AssociationType};
pub use attempts::{email_subject, user_subject, Factor, ATTEMPT_WINDOW_MS, MAX_ATTEMPTS};
pub use auth::{
    check_password, hash_password, hash_password_blocking, token_account, verify_password,
    AuditEntry, Token, User,
};
pub use backups::{Backup, BackupRequest, CompletedBackup, JOB_KIND_BACKUP};
pub use board::StageTotal;
pub use console::{AuthMethod, Notification, SecondFactor, Session, SESSION_TTL_MS};
pub use directory::{Account, Directory, LifecycleState};
pub use error::{StoreError, StoreResult};
pub use export::{for_each_prop, SnapshotInfo, SnapshotSink, SnapshotType};
pub use imports::{
    BatchOutcome, Import, ImportError, ImportRow, NewImport, Operation, RowError, RowOp,
    JOB_KIND_IMPORT,
};
pub use jobs::{Change, ClaimFilter, Job, JOB_FAILED, JOB_QUEUED, JOB_RUNNING, JOB_SUCCEEDED};
pub use moves::{Move, MoveState};
pub use objects::ObjectType;
pub use outbox::{
    InApp, OutboxItem, OUTBOX_BACKUP_FAILED, OUTBOX_BACKUP_READY, OUTBOX_IMPORT_FINISHED,
    OUTBOX_MOVE_DONE, OUTBOX_MOVE_FAILED, OUTBOX_MOVE_SCHEDULED, OUTBOX_MOVE_TOMORROW,
    OUTBOX_MOVE_WEEK,
};
pub use owners::Owner;
pub use pipelines::NewIds;
pub use properties::{OptionInput, PropertyGroup, PropertyInput};
pub use reassign::{Reassignment, SalesforceOwner, JOB_KIND_OWNER_REASSIGN, ORIGIN_SALESFORCE};
pub use records::{
    Actor, CreateInput, Erased, HistoryEntry, ListPage, Record, UpdateInput, RECYCLE_BIN_DAYS,
};
pub use recovery::{SessionInfo, PASSWORD_RESET_TTL_MS};
pub use restores::{
    NewPlan, OwnChanges, PreparedBatch, RestoreChange, RestoreItem, RestorePlan, RestoreSpec,
    PLAN_RESTORE, PLAN_REVERT, PLAN_TTL_MS,
};
pub use salesforce::uninstall::{
    SalesforceUninstall, UninstallImpact, UninstallRequest, JOB_KIND_SALESFORCE_UNINSTALL,
    OUTBOX_SALESFORCE_UNINSTALLED, SF_UNINSTALLED, SF_UNINSTALLING, SYNCED_TYPES,
};
pub use salesforce::{
    ErrorReport as SalesforceErrorReport, NewConnection as NewSalesforceConnection, PullCursor,
    PullOutcome, PulledRecord, PushCandidate, PushOutcome, SalesforceConnection, SalesforceCounts,
    SalesforceError, SalesforceField, SalesforceLink, SalesforceMapping, SalesforceSettings,
    RULES as SALESFORCE_RULES, RULE_ALWAYS_SF, RULE_NONE, RULE_PREFER_SF, RULE_TWO_WAY,
    SALESFORCE_KEEP_MS, SF_ACTIVE, SF_PAUSED,
};
pub use schemas::{CustomSchema, SchemaInput};
pub use search::build::{IndexBuild, IndexStatus, JOB_KIND_INDEX_BUILD};
pub use search::{SearchTuning, SEARCH_DEADLINE};
pub use sso::{SsoConfig, SsoFlow, MAX_SSO_FLOWS, SSO_FLOW_TTL_MS};
pub use webhooks::{
    event_types_of, Attempt as WebhookAttempt, DeliveryCounts, SubscriptionInput, WebhookApp,
    WebhookEvent, WebhookSubscription, EVENT_TYPES, MAX_DELIVERY_ATTEMPTS,
};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// One database: a region cell or the directory.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    /// SQLite allows one writer; serialising writers in-process avoids busy errors.
    write_lock: Option<Arc<Mutex<()>>>,
    /// What `open` was given: snapshots open a connection of their own.
    url: Arc<str>,
    /// SQLite: the connections restore batches read and write through (see
    /// `restores/sqlite.rs`).
    sqlite_restore: restores::sqlite::Connections,
    /// The tables a move copies, as this database's catalog describes them (read once: the
    /// schema only changes at open).
    move_shapes: Arc<tokio::sync::OnceCell<Vec<moving::Shape>>>,
    /// When a write transaction last began, other than the search indexer's: the indexer
    /// gives way while writes come in.
    last_write: Arc<std::sync::atomic::AtomicI64>,
    /// Writes waiting for the writer's lock: the indexer ends its batch early for them.
    writers_waiting: Arc<std::sync::atomic::AtomicUsize>,
    /// Where searches switch strategies.
    search_tuning: search::SearchTuning,
    /// Sort keys kept in memory (see `search::sort_keys`).
    sort_keys: Arc<search::SortKeys>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dialect", &self.dialect)
            .finish_non_exhaustive()
    }
}

/// `sqlite:///path/to/file.db` or `postgres://user@host/db`.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = match (base.find("://"), base.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &base[..s], &base[at + 1..]),
        _ => base.to_string(),
    };
    if let Some(query) = query {
        // `postgres://host/db?password=...` (and `sslpassword`) carry secrets too.
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.to_ascii_lowercase().contains("password") => format!("{k}=***"),
                _ => pair.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

impl Store {
    /// Opens (creating if needed) the database at `url` and brings its schema up to date.
    pub async fn open(url: &str) -> StoreResult<Store> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Dialect::Postgres
        } else {
            return Err(StoreError::Config(format!(
                "unsupported database URL {}: use sqlite:// or postgres://",
                redact_url(url)
            )));
        };
        let given: Arc<str> = Arc::from(url);
        let url = if dialect == Dialect::Sqlite && !url.contains('?') {
            format!("{url}?mode=rwc")
        } else {
            url.to_string()
        };
        let opts = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(if dialect == Dialect::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        // The search indexer's batches touch many pages of its B-trees: room
                        // for them, so they are not spilled to the log before the commit.
                        conn.execute("PRAGMA cache_size = -32768").await?;
                        // A statement's own undo journal, sorts and temporary B-trees stay in
                        // memory: an indexer's batch journals thousands of pages.
                        conn.execute("PRAGMA temp_store = MEMORY").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(opts)
            .await?;
        let store = Store {
            pool,
            dialect,
            write_lock: (dialect == Dialect::Sqlite).then(|| Arc::new(Mutex::new(()))),
            url: given,
            sqlite_restore: Default::default(),
            move_shapes: Default::default(),
            last_write: Default::default(),
            writers_waiting: Default::default(),
            search_tuning: Default::default(),
            sort_keys: Default::default(),
        };
        migrations::run(&store).await?;
        store.reseed_builtins().await?;
        Ok(store)
    }

    /// Another handle on the same database with its own connections: what a second process
    /// sharing the database has (a worker beside the server, a mover).
    pub async fn reopen(&self) -> StoreResult<Store> {
        Store::open(&self.url).await
    }

    /// Whether both handles open the same database (a deployment may serve several regions,
    /// and the directory, from one).
    pub fn same_database(&self, other: &Store) -> bool {
        self.url == other.url
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Holds the in-process SQLite writer lock (for a single statement outside a transaction,
    /// or a write's transaction). A write waiting for it is counted: the indexer ends its
    /// batch early for it.
    async fn lock_writes(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let m = self.write_lock.as_ref()?;
        self.writers_waiting
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _waiting = Waiting(&self.writers_waiting);
        Some(m.lock().await)
    }

    /// Begins a write transaction, holding the SQLite writer lock for its whole life.
    ///
    /// On SQLite it is `BEGIN IMMEDIATE`: the database's write lock is taken up front, waiting
    /// out the busy timeout, rather than when the first write upgrades a read. An upgrade that
    /// finds the lock held fails at once (the busy handler is not used for it), and the lock can
    /// be held after our own in-process lock is free: by another process sharing the file, or by
    /// a transaction of ours whose rollback sqlx has queued on drop but not yet run.
    async fn write(&self) -> StoreResult<WriteTx<'_>> {
        self.last_write.store(
            kontor_domain::time::now_ms(),
            std::sync::atomic::Ordering::Relaxed,
        );
        let guard = self.lock_writes().await;
        self.begin_write(guard).await
    }

    /// Whether a write is waiting for the writer's lock on this handle (SQLite).
    pub(crate) fn writer_waiting(&self) -> bool {
        self.writers_waiting
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    }

    /// [`Self::write`] for the search indexer, which is not a write to give way to.
    async fn write_quietly(&self) -> StoreResult<WriteTx<'_>> {
        let guard = match &self.write_lock {
            Some(m) => Some(m.lock().await),
            None => None,
        };
        self.begin_write(guard).await
    }

    async fn begin_write<'a>(
        &'a self,
        guard: Option<tokio::sync::MutexGuard<'a, ()>>,
    ) -> StoreResult<WriteTx<'a>> {
        let tx = match self.dialect {
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Dialect::Postgres => self.pool.begin().await?,
        };
        Ok(WriteTx { tx, _guard: guard })
    }

    /// Whether a write transaction began within the last `ms` milliseconds on this handle.
    pub fn wrote_within(&self, ms: i64) -> bool {
        kontor_domain::time::now_ms() - self.last_write.load(std::sync::atomic::Ordering::Relaxed)
            < ms
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

pub(crate) struct WriteTx<'a> {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _guard: Option<tokio::sync::MutexGuard<'a, ()>>,
}

impl WriteTx<'_> {
    pub(crate) async fn commit(self) -> StoreResult<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}
impl std::ops::DerefMut for WriteTx<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// Takes `n` values from an account's counter, returning the first.
async fn allocate(
    conn: &mut sqlx::AnyConnection,
    account: i64,
    name: &str,
    n: i64,
) -> StoreResult<i64> {
    sqlx::query("INSERT INTO counters (account_id, name, value) VALUES ($1, $2, 0) ON CONFLICT (account_id, name) DO NOTHING")
        .bind(account)
        .bind(name)
        .execute(&mut *conn)
        .await?;
    let (last,): (i64,) = sqlx::query_as(
        "UPDATE counters SET value = value + $1 WHERE account_id = $2 AND name = $3 RETURNING value",
    )
    .bind(n)
    .bind(account)
    .bind(name)
    .fetch_one(&mut *conn)
    .await?;
    Ok(last - n + 1)
}

#[cfg(test)]
mod redact_tests {
    use super::redact_url;

    #[test]
    fn passwords_in_user_info_and_query_are_hidden() {
        assert_eq!(
            redact_url("postgres://u:secret@db:5432/kontor"),
            "postgres://***@db:5432/kontor"
        );
        let r = redact_url("postgres://db/kontor?user=u&password=secret&sslmode=require");
        assert_eq!(
            r,
            "postgres://db/kontor?user=u&password=***&sslmode=require"
        );
        let r = redact_url("postgresql://u:a@b@db/k?sslpassword=s3&PASSWORD=x");
        assert!(
            !r.contains("s3") && !r.contains("=x") && !r.contains(":a"),
            "{r}"
        );
        assert_eq!(
            redact_url("sqlite:///srv/kontor.db?mode=rwc"),
            "sqlite:///srv/kontor.db?mode=rwc"
        );
    }
}
