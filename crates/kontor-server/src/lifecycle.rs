//! Whether an account can be reached now. Every way into an account's data — API tokens,
//! console sessions, signed download links — resolves the account in the directory and then
//! asks `admit`, so a suspended or migrating account is closed the same way everywhere. (The job
//! runner asks the directory too, before claiming an account's work.)

use crate::console::PageError;
use crate::error::ApiError;
use axum::http::StatusCode;
use kontor_store::{Account, LifecycleState};

/// Why an account is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// Its data is moving to another region: answer 477 with `Retry-After`.
    Migrating,
    Suspended,
}

/// Seconds a client is told to wait while an account migrates.
pub const MIGRATION_RETRY_AFTER_S: u64 = 3600;

/// `Ok` when the account's data may be read and written now.
pub fn admit(account: &Account) -> Result<(), Closed> {
    match account.state {
        LifecycleState::Active => Ok(()),
        LifecycleState::Migrating => Err(Closed::Migrating),
        LifecycleState::Suspended => Err(Closed::Suspended),
    }
}

/// HubSpot answers every call to a migrating account with 477.
pub fn migrating_status() -> StatusCode {
    StatusCode::from_u16(477).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
}

impl From<Closed> for ApiError {
    fn from(c: Closed) -> Self {
        match c {
            Closed::Migrating => ApiError {
                retry_after: Some(MIGRATION_RETRY_AFTER_S),
                ..ApiError::new(
                    migrating_status(),
                    "MIGRATION_IN_PROGRESS",
                    "Migration in progress: this account's data is moving to another data-hosting location. Retry later.",
                )
            },
            Closed::Suspended => ApiError::new(
                StatusCode::FORBIDDEN,
                "ACCOUNT_SUSPENDED",
                "this account is suspended",
            ),
        }
    }
}

impl From<Closed> for PageError {
    fn from(c: Closed) -> Self {
        match c {
            Closed::Migrating => PageError::new(
                migrating_status(),
                "Data transfer in progress",
                "This account's data is moving to another data-hosting location. The account is unavailable until the transfer ends; try again later.",
            ),
            Closed::Suspended => PageError::new(
                StatusCode::FORBIDDEN,
                "Account suspended",
                "This account is suspended. Contact the operator of this installation.",
            ),
        }
    }
}
