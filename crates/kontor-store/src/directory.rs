//! The directory: which region cell holds each account, and the account's lifecycle state.

use crate::{allocate, Store, StoreError, StoreResult};
use kontor_domain::time::now_ms;
use kontor_domain::{Region, Tier};
use std::collections::HashMap;

/// Where an account is in its life; every request consults it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleState {
    Active,
    /// Being moved to another region: API calls answer 477.
    Migrating,
    Suspended,
}

impl LifecycleState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Migrating => "migrating",
            Self::Suspended => "suspended",
        }
    }
    pub fn parse(s: &str) -> Self {
        match s {
            "migrating" => Self::Migrating,
            "suspended" => Self::Suspended,
            _ => Self::Active,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Account {
    pub id: i64,
    pub name: String,
    pub region: Region,
    pub tier: Tier,
    pub state: LifecycleState,
    pub created_at: i64,
}

/// The directory database plus one store per region.
#[derive(Clone, Debug)]
pub struct Directory {
    pub directory: Store,
    pub regions: HashMap<Region, Store>,
}

/// Account ids start here so they never look like small record ids.
const FIRST_ACCOUNT_ID: i64 = 100_001;

type AccountRow = (i64, String, String, String, String, i64);

fn account_from(row: AccountRow) -> StoreResult<Account> {
    Ok(Account {
        id: row.0,
        name: row.1,
        region: Region::parse(&row.2)
            .ok_or_else(|| StoreError::Config(format!("unknown region {}", row.2)))?,
        tier: Tier::parse(&row.3)
            .ok_or_else(|| StoreError::Config(format!("unknown tier {}", row.3)))?,
        state: LifecycleState::parse(&row.4),
        created_at: row.5,
    })
}

impl Directory {
    pub fn region(&self, region: Region) -> StoreResult<&Store> {
        self.regions.get(&region).ok_or_else(|| {
            StoreError::Config(format!(
                "region {} has no database configured",
                region.as_str()
            ))
        })
    }

    /// The cell that holds an account's data.
    pub fn cell(&self, account: &Account) -> StoreResult<&Store> {
        self.region(account.region)
    }

    pub async fn account(&self, id: i64) -> StoreResult<Option<Account>> {
        let row: Option<AccountRow> = sqlx::query_as(
            "SELECT id, name, region, tier, state, created_at FROM accounts WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.directory.pool)
        .await?;
        row.map(account_from).transpose()
    }

    /// Accounts that are not active (suspended, migrating): their jobs wait.
    pub async fn inactive_accounts(&self) -> StoreResult<Vec<i64>> {
        let rows: Vec<(i64,)> =
            sqlx::query_as("SELECT id FROM accounts WHERE state <> 'active' ORDER BY id")
                .fetch_all(&self.directory.pool)
                .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    pub async fn accounts(&self) -> StoreResult<Vec<Account>> {
        let rows: Vec<AccountRow> = sqlx::query_as(
            "SELECT id, name, region, tier, state, created_at FROM accounts ORDER BY id",
        )
        .fetch_all(&self.directory.pool)
        .await?;
        rows.into_iter().map(account_from).collect()
    }

    pub async fn account_by_name(&self, name: &str) -> StoreResult<Option<Account>> {
        Ok(self.accounts().await?.into_iter().find(|a| a.name == name))
    }

    /// Creates an account in the directory and seeds its cell with the built-in schema.
    pub async fn create_account(
        &self,
        name: &str,
        region: Region,
        tier: Tier,
    ) -> StoreResult<Account> {
        let name = account_name(name)?;
        let cell = self.region(region)?.clone();
        let now = now_ms();
        let mut tx = self.directory.write().await?;
        let n = allocate(&mut tx, 0, "account", 1).await?;
        let id = FIRST_ACCOUNT_ID - 1 + n;
        sqlx::query("INSERT INTO accounts (id, name, region, tier, state, created_at, updated_at) VALUES ($1, $2, $3, $4, 'active', $5, $5)")
            .bind(id)
            .bind(name)
            .bind(region.as_str())
            .bind(tier.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        // Seed the cell before the directory entry becomes visible: a half-made account
        // is never reachable.
        cell.seed_account(id).await?;
        tx.commit().await?;
        Ok(Account {
            id,
            name: name.to_string(),
            region,
            tier,
            state: LifecycleState::Active,
            created_at: now,
        })
    }

    pub async fn set_state(&self, id: i64, state: LifecycleState) -> StoreResult<()> {
        let mut tx = self.directory.write().await?;
        sqlx::query("UPDATE accounts SET state = $1, updated_at = $2 WHERE id = $3")
            .bind(state.as_str())
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }
}

impl Directory {
    pub async fn rename_account(&self, id: i64, name: &str) -> StoreResult<()> {
        let name = account_name(name)?;
        let mut tx = self.directory.write().await?;
        sqlx::query("UPDATE accounts SET name = $1, updated_at = $2 WHERE id = $3")
            .bind(name)
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }
}

/// Account names: 1 to 200 characters of one-line text (they show in e-mail subjects).
fn account_name(name: &str) -> StoreResult<&str> {
    kontor_domain::name::check(name, 200).map_err(|e| {
        StoreError::validation(
            "INVALID_NAME",
            e.message("account name", 200),
            Some("name".into()),
        )
    })
}
