//! Owners: who a record belongs to (`hubspot_owner_id`). An owner may be a user of the
//! account or come from an integration with no user here.

use crate::{allocate, Store, StoreError, StoreResult};
use kontor_domain::time::now_ms;

#[derive(Debug, Clone)]
pub struct Owner {
    pub id: i64,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub user_id: Option<i64>,
    pub archived: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

pub(crate) type OwnerRow = (i64, String, String, String, Option<i64>, i64, i64, i64);
pub(crate) const OWNER_COLS: &str =
    "id, email, first_name, last_name, user_id, archived, created_at, updated_at";

pub(crate) fn owner_from(r: OwnerRow) -> Owner {
    Owner {
        id: r.0,
        email: r.1,
        first_name: r.2,
        last_name: r.3,
        user_id: r.4,
        archived: r.5 != 0,
        created_at: r.6,
        updated_at: r.7,
    }
}

/// Owner ids are offset so they never collide visually with record or user ids.
const FIRST_OWNER_ID: i64 = 10_000_001;

impl Store {
    pub async fn create_owner(
        &self,
        account: i64,
        email: &str,
        first_name: &str,
        last_name: &str,
        user_id: Option<i64>,
    ) -> StoreResult<Owner> {
        if !email.contains('@') {
            return Err(StoreError::validation(
                "INVALID_EMAIL",
                format!("{email:?} is not an e-mail address"),
                Some("email".into()),
            ));
        }
        let now = now_ms();
        let mut tx = self.write().await?;
        let id = allocate(&mut tx, account, "owner", 1).await? + FIRST_OWNER_ID - 1;
        sqlx::query("INSERT INTO owners (account_id, id, email, first_name, last_name, user_id, archived, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $7)")
            .bind(account)
            .bind(id)
            .bind(email)
            .bind(first_name)
            .bind(last_name)
            .bind(user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Owner {
            id,
            email: email.into(),
            first_name: first_name.into(),
            last_name: last_name.into(),
            user_id,
            archived: false,
            created_at: now,
            updated_at: now,
        })
    }

    /// Owners ordered by id; `after` is the last id of the previous page.
    pub async fn owners(
        &self,
        account: i64,
        archived: bool,
        email: Option<&str>,
        after: i64,
        limit: usize,
    ) -> StoreResult<Vec<Owner>> {
        let rows: Vec<OwnerRow> = sqlx::query_as(
            "SELECT id, email, first_name, last_name, user_id, archived, created_at, updated_at FROM owners \
             WHERE account_id = $1 AND archived = $2 AND id > $3 AND ($4 = '' OR LOWER(email) = LOWER($4)) ORDER BY id LIMIT $5",
        )
        .bind(account)
        .bind(archived as i64)
        .bind(after)
        .bind(email.unwrap_or(""))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(owner_from).collect())
    }

    pub async fn owner(
        &self,
        account: i64,
        id: i64,
        by_user_id: bool,
        archived: bool,
    ) -> StoreResult<Option<Owner>> {
        let sql = if by_user_id {
            "SELECT id, email, first_name, last_name, user_id, archived, created_at, updated_at FROM owners WHERE account_id = $1 AND user_id = $2 AND archived = $3"
        } else {
            "SELECT id, email, first_name, last_name, user_id, archived, created_at, updated_at FROM owners WHERE account_id = $1 AND id = $2 AND archived = $3"
        };
        let row: Option<OwnerRow> = sqlx::query_as(sql)
            .bind(account)
            .bind(id)
            .bind(archived as i64)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(owner_from))
    }
}
