/// What can go wrong in the store; the server maps each to an HTTP status and envelope.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    /// Bad input, naming the field (`in_field`) and HubSpot's error code.
    #[error("{message}")]
    Validation {
        message: String,
        code: String,
        in_field: Option<String>,
    },
    #[error("{message}")]
    Conflict {
        message: String,
        existing_id: Option<i64>,
    },
    /// Too soon after the previous such request; `retry_at` is when the next is allowed.
    #[error("{message}")]
    TooSoon { message: String, retry_at: i64 },
    /// The work took longer than it may (a search past its deadline).
    #[error("{0}")]
    TimedOut(String),
    #[error("configuration: {0}")]
    Config(String),
    /// The account's data is moving to another cell: this cell's fence refused the write
    /// (see `moving`).
    #[error("{0}")]
    Fenced(String),
    #[error("database: {0}")]
    Db(sqlx::Error),
    /// SQLite through its C API (restores).
    #[error("database: {0}")]
    Sqlite(rusqlite::Error),
    #[error("corrupt stored data: {0}")]
    Corrupt(#[from] serde_json::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

pub(crate) const FENCED_MESSAGE: &str =
    "this account's data is moving to another region: its data cannot be changed here";

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(d) if d.message().contains(crate::moving::FENCED) => {
                StoreError::Fenced(FENCED_MESSAGE.into())
            }
            _ => StoreError::Db(e),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        if e.to_string().contains(crate::moving::FENCED) {
            StoreError::Fenced(FENCED_MESSAGE.into())
        } else {
            StoreError::Sqlite(e)
        }
    }
}

impl StoreError {
    pub fn validation(code: &str, message: impl Into<String>, in_field: Option<String>) -> Self {
        Self::Validation {
            message: message.into(),
            code: code.to_string(),
            in_field,
        }
    }
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound(what.into())
    }
    /// A transaction the database rolled back to let another go on (PostgreSQL's deadlock
    /// victim, or a serialization failure): nothing of it was kept, and the same work may
    /// run again.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Db(sqlx::Error::Database(d))
            if matches!(d.code().as_deref(), Some("40P01" | "40001")))
    }
}
