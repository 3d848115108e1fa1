//! Account recovery: changing a password, the sessions a user can see and end, and the
//! single-use links that set a new password.

use crate::auth::hash_password_blocking;
use crate::console::{random_hex, sha256_hex};
use crate::{AuthMethod, Store, StoreError, StoreResult};
use kontor_domain::time::now_ms;

/// A password-reset link works this long, once.
pub const PASSWORD_RESET_TTL_MS: i64 = 60 * 60 * 1000;

/// One of a user's live sessions, as the user sees it.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// A handle for ending it: a prefix of the stored hash, never the cookie itself.
    pub id: String,
    pub auth_method: AuthMethod,
    pub created_at: i64,
    pub expires_at: i64,
}

/// Handles are this many hex digits of the session's hash (64 bits: unique in practice, and
/// useless for signing in).
const HANDLE_LEN: usize = 16;

pub(crate) fn check_password_strength(password: &str) -> StoreResult<()> {
    if password.chars().count() < 10 {
        return Err(StoreError::validation(
            "WEAK_PASSWORD",
            "a password needs at least 10 characters",
            Some("password".into()),
        ));
    }
    if password.len() > 1024 {
        return Err(StoreError::validation(
            "INVALID_PASSWORD",
            "a password may have at most 1024 bytes",
            Some("password".into()),
        ));
    }
    Ok(())
}

impl Store {
    /// A user's live sessions, newest first.
    pub async fn user_sessions(&self, account: i64, user_id: i64) -> StoreResult<Vec<SessionInfo>> {
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT token_hash, auth_method, created_at, expires_at FROM sessions \
             WHERE account_id = $1 AND user_id = $2 AND expires_at > $3 AND pending_second_factor = 0 \
             ORDER BY created_at DESC",
        )
        .bind(account)
        .bind(user_id)
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(hash, method, created_at, expires_at)| SessionInfo {
                id: hash[..HANDLE_LEN].to_string(),
                auth_method: AuthMethod::parse(&method),
                created_at,
                expires_at,
            })
            .collect())
    }

    /// The handle of the session behind a cookie value (to mark "this session").
    pub fn session_handle(token: &str) -> String {
        sha256_hex(token)[..HANDLE_LEN].to_string()
    }

    /// Ends one of the user's own sessions by its handle; false when there is no such session.
    pub async fn end_user_session(
        &self,
        account: i64,
        user_id: i64,
        handle: &str,
    ) -> StoreResult<bool> {
        if handle.len() != HANDLE_LEN || !handle.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(false);
        }
        let mut tx = self.write().await?;
        let n = sqlx::query(
            "DELETE FROM sessions WHERE account_id = $1 AND user_id = $2 AND substr(token_hash, 1, 16) = $3",
        )
        .bind(account)
        .bind(user_id)
        .bind(handle)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Sets a user's password and ends their sessions, but for `keep` (the cookie value of the
    /// session that made the change). Open reset links of the user stop working. The caller
    /// audits, knowing who acted.
    pub async fn change_password(
        &self,
        account: i64,
        user_id: i64,
        password: &str,
        keep: Option<&str>,
    ) -> StoreResult<()> {
        check_password_strength(password)?;
        let hash = hash_password_blocking(password).await?;
        let mut tx = self.write().await?;
        let n = sqlx::query(
            "UPDATE users SET password_hash = $1, updated_at = $2 WHERE account_id = $3 AND id = $4",
        )
        .bind(hash)
        .bind(now_ms())
        .bind(account)
        .bind(user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::not_found(format!(
                "user {user_id} does not exist"
            )));
        }
        end_sessions_and_links(&mut tx, account, user_id, keep).await?;
        tx.commit().await
    }

    /// Makes a user's password unusable (an admin's reset): sessions and open links end. A
    /// new password comes only through a reset link.
    pub async fn lock_password(&self, account: i64, user_id: i64) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let n = sqlx::query(
            "UPDATE users SET password_hash = '!', updated_at = $1 WHERE account_id = $2 AND id = $3",
        )
        .bind(now_ms())
        .bind(account)
        .bind(user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::not_found(format!(
                "user {user_id} does not exist"
            )));
        }
        end_sessions_and_links(&mut tx, account, user_id, None).await?;
        tx.commit().await
    }

    /// A single-use link token (`<account>.<secret>`) that sets the user's password within
    /// `PASSWORD_RESET_TTL_MS`; only its hash is kept.
    pub async fn create_password_reset(&self, account: i64, user_id: i64) -> StoreResult<String> {
        let token = format!("{account}.{}", random_hex(32));
        let now = now_ms();
        let mut tx = self.write().await?;
        sqlx::query("INSERT INTO password_resets (token_hash, account_id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(sha256_hex(&token))
            .bind(account)
            .bind(user_id)
            .bind(now)
            .bind(now + PASSWORD_RESET_TTL_MS)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(token)
    }

    /// The user a live reset link is for, without spending it (to show the form).
    pub async fn password_reset_user(&self, token: &str) -> StoreResult<Option<(i64, i64)>> {
        Ok(sqlx::query_as(
            "SELECT account_id, user_id FROM password_resets WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(sha256_hex(token))
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Spends a reset link and sets the password in one transaction: of two concurrent uses,
    /// one sets the password and the other finds the link gone. Returns the user's
    /// `(account, id)`, or `None` for a used, expired or unknown link. Every session of the
    /// user ends.
    pub async fn reset_password(
        &self,
        token: &str,
        password: &str,
    ) -> StoreResult<Option<(i64, i64)>> {
        check_password_strength(password)?;
        let hash = hash_password_blocking(password).await?;
        let mut tx = self.write().await?;
        let row: Option<(i64, i64)> = sqlx::query_as(
            "DELETE FROM password_resets WHERE token_hash = $1 AND expires_at > $2 RETURNING account_id, user_id",
        )
        .bind(sha256_hex(token))
        .bind(now_ms())
        .fetch_optional(&mut *tx)
        .await?;
        let Some((account, user_id)) = row else {
            return Ok(None);
        };
        let n = sqlx::query(
            "UPDATE users SET password_hash = $1, updated_at = $2 WHERE account_id = $3 AND id = $4 AND active = 1",
        )
        .bind(hash)
        .bind(now_ms())
        .bind(account)
        .bind(user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            tx.commit().await?;
            return Ok(None);
        }
        end_sessions_and_links(&mut tx, account, user_id, None).await?;
        tx.commit().await?;
        Ok(Some((account, user_id)))
    }

    /// Ends every session of a user (an admin's reset of the second factor).
    pub async fn end_sessions(&self, account: i64, user_id: i64) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM sessions WHERE account_id = $1 AND user_id = $2")
            .bind(account)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// The users of an account whose two-factor authentication is on.
    pub async fn users_with_second_factor(
        &self,
        account: i64,
    ) -> StoreResult<std::collections::HashSet<i64>> {
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT user_id FROM user_second_factors WHERE account_id = $1 AND enabled <> 0",
        )
        .bind(account)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Deletes reset links past their time.
    pub async fn purge_expired_password_resets(&self, now: i64) -> StoreResult<u64> {
        let mut tx = self.write().await?;
        let n = sqlx::query(&format!(
            "DELETE FROM password_resets WHERE expires_at <= $1 AND {}",
            crate::moving::SETTLED
        ))
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }
}

async fn end_sessions_and_links(
    conn: &mut sqlx::AnyConnection,
    account: i64,
    user_id: i64,
    keep: Option<&str>,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM sessions WHERE account_id = $1 AND user_id = $2 AND token_hash <> $3")
        .bind(account)
        .bind(user_id)
        .bind(keep.map(sha256_hex).unwrap_or_default())
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM password_resets WHERE account_id = $1 AND user_id = $2")
        .bind(account)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
