//! Users, API tokens and the audit log of an account.
//!
//! Passwords are stored as argon2id hashes. API tokens carry 256 random bits, so a single
//! SHA-256 is enough to store them safely (a slow hash buys nothing against a random secret
//! and would cost every API call); lookups compare hashes, never the token itself.

use crate::{allocate, Store, StoreError, StoreResult};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use kontor_domain::time::now_ms;
use kontor_domain::Role;
use rand::RngCore;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub account_id: i64,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub role: Role,
    pub active: bool,
    pub created_at: i64,
}

#[derive(Clone)]
pub struct Token {
    pub id: i64,
    pub account_id: i64,
    pub name: String,
    /// The user who made it; `None` for a token the operator issued on the command line.
    pub created_by: Option<i64>,
    /// The role its creator held when making it. The token works only while the creator is
    /// active and still holds at least this role.
    pub created_role: Option<Role>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

impl Token {
    /// Who may revoke it: a user whose role includes the one the token was made with (the
    /// operator's tokens, made on the command line, only by super admins).
    pub fn revocable_by(&self, role: Role) -> bool {
        role.includes(self.created_role.unwrap_or(Role::SuperAdmin))
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

pub fn hash_password(password: &str) -> StoreResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Config(format!("password hashing failed: {e}")))
}

/// Checks a password off the async workers (argon2 takes tens of milliseconds of CPU). With
/// no hash (no such user) a stand-in hash is checked instead, so that the answer takes as
/// long as for a real user and timing does not tell which addresses exist.
pub async fn check_password(hash: Option<String>, password: &str) -> bool {
    static STAND_IN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let stand_in =
            STAND_IN.get_or_init(|| hash_password("a password nobody has").unwrap_or_default());
        match hash {
            Some(h) => verify_password(&h, &password),
            None => {
                verify_password(stand_in, &password);
                false
            }
        }
    })
    .await
    .unwrap_or(false)
}

/// Hashes a password off the async workers.
pub async fn hash_password_blocking(password: &str) -> StoreResult<String> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| StoreError::Config(format!("password hashing failed: {e}")))?
}

pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Tokens look like `kontor-pat-<account>-<64 hex digits>`: the account id routes the
/// request to its region before any secret is compared.
pub fn token_account(token: &str) -> Option<i64> {
    let rest = token.strip_prefix("kontor-pat-")?;
    let (account, secret) = rest.split_once('-')?;
    if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    account.parse().ok()
}

type UserRow = (i64, i64, String, String, String, String, i64, i64);

fn user_from(r: UserRow) -> User {
    User {
        id: r.0,
        account_id: r.1,
        email: r.2,
        first_name: r.3,
        last_name: r.4,
        role: Role::parse(&r.5).unwrap_or(Role::User),
        active: r.6 != 0,
        created_at: r.7,
    }
}

const FIRST_USER_ID: i64 = 1_000_001;

impl Store {
    /// Creates a user and the owner that lets records be assigned to them. Sign-in needs
    /// the e-mail in the directory too: use `Directory::create_user`.
    pub async fn create_user(
        &self,
        account: i64,
        email: &str,
        first_name: &str,
        last_name: &str,
        role: Role,
        password: &str,
    ) -> StoreResult<User> {
        let email = email.trim().to_lowercase();
        if !email.contains('@') || email.len() > 254 {
            return Err(StoreError::validation(
                "INVALID_EMAIL",
                format!("{email:?} is not an e-mail address"),
                Some("email".into()),
            ));
        }
        if password.chars().count() < 10 {
            return Err(StoreError::validation(
                "WEAK_PASSWORD",
                "a password needs at least 10 characters",
                Some("password".into()),
            ));
        }
        let hash = hash_password_blocking(password).await?;
        let now = now_ms();
        let mut tx = self.write().await?;
        let exists: Option<(i64,)> =
            sqlx::query_as("SELECT id FROM users WHERE account_id = $1 AND email = $2")
                .bind(account)
                .bind(&email)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some((id,)) = exists {
            return Err(StoreError::Conflict {
                message: format!("a user with e-mail {email} already exists (id {id})"),
                existing_id: Some(id),
            });
        }
        let id = allocate(&mut tx, account, "user", 1).await? + FIRST_USER_ID - 1;
        sqlx::query("INSERT INTO users (account_id, id, email, first_name, last_name, role, password_hash, active, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $8)")
            .bind(account)
            .bind(id)
            .bind(&email)
            .bind(first_name)
            .bind(last_name)
            .bind(role.as_str())
            .bind(&hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.create_owner(account, &email, first_name, last_name, Some(id))
            .await?;
        // The caller writes the audit entry: only it knows who acted (console user, CLI).
        Ok(User {
            id,
            account_id: account,
            email,
            first_name: first_name.into(),
            last_name: last_name.into(),
            role,
            active: true,
            created_at: now,
        })
    }

    pub async fn users(&self, account: i64) -> StoreResult<Vec<User>> {
        let rows: Vec<UserRow> = sqlx::query_as("SELECT id, account_id, email, first_name, last_name, role, active, created_at FROM users WHERE account_id = $1 ORDER BY id")
            .bind(account)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(user_from).collect())
    }

    /// Checks an e-mail and password; `None` for any mismatch (no hint which part was wrong).
    pub async fn authenticate(
        &self,
        account: i64,
        email: &str,
        password: &str,
    ) -> StoreResult<Option<User>> {
        let row: Option<(i64, String)> = sqlx::query_as("SELECT id, password_hash FROM users WHERE account_id = $1 AND email = $2 AND active = 1")
            .bind(account)
            .bind(email.trim().to_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        let (id, hash) = row.unzip();
        if !check_password(hash, password).await {
            return Ok(None);
        }
        Ok(self
            .users(account)
            .await?
            .into_iter()
            .find(|u| Some(u.id) == id))
    }

    /// Creates an API token; the secret is returned once and only its hash is kept.
    pub async fn create_token(
        &self,
        account: i64,
        name: &str,
        created_by: Option<i64>,
    ) -> StoreResult<(Token, String)> {
        let name = name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(StoreError::validation(
                "INVALID_NAME",
                "a token name must be 1 to 100 characters",
                Some("name".into()),
            ));
        }
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        let token = format!("kontor-pat-{account}-{hex}");
        let now = now_ms();
        let mut tx = self.write().await?;
        let created_role = match created_by {
            None => None,
            Some(uid) => {
                let row: Option<(String, i64)> = sqlx::query_as(
                    "SELECT role, active FROM users WHERE account_id = $1 AND id = $2",
                )
                .bind(account)
                .bind(uid)
                .fetch_optional(&mut *tx)
                .await?;
                match row {
                    Some((role, 1)) => Role::parse(&role),
                    _ => {
                        return Err(StoreError::not_found(format!(
                            "user {uid} does not exist or is deactivated"
                        )))
                    }
                }
            }
        };
        let id = allocate(&mut tx, account, "token", 1).await?;
        sqlx::query("INSERT INTO tokens (account_id, id, name, token_hash, created_by, created_at, created_role) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(account)
            .bind(id)
            .bind(name)
            .bind(token_hash(&token))
            .bind(created_by)
            .bind(now)
            .bind(created_role.map(Role::as_str))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.audit(
            account,
            created_by,
            "system",
            "token.create",
            &format!("token:{id}"),
            serde_json::json!({"name": name}),
        )
        .await?;
        Ok((
            Token {
                id,
                account_id: account,
                name: name.into(),
                created_by,
                created_role,
                created_at: now,
                revoked_at: None,
            },
            token,
        ))
    }

    /// The live token matching `token` in `account`, if any. A token made by a user lives only
    /// while that user exists, is active and still holds the role the token was made with:
    /// deactivating, demoting or removing the user ends their tokens without touching them.
    pub async fn verify_token(&self, account: i64, token: &str) -> StoreResult<Option<Token>> {
        let row: Option<(i64, i64, String, i64, Option<i64>, Option<String>, Option<String>, Option<i64>)> = sqlx::query_as(
            "SELECT t.id, t.account_id, t.name, t.created_at, t.created_by, t.created_role, u.role, u.active \
             FROM tokens t LEFT JOIN users u ON u.account_id = t.account_id AND u.id = t.created_by \
             WHERE t.token_hash = $1 AND t.account_id = $2 AND t.revoked_at IS NULL",
        )
        .bind(token_hash(token))
        .bind(account)
        .fetch_optional(&self.pool)
        .await?;
        let Some((id, account_id, name, created_at, created_by, created_role, role, active)) = row
        else {
            return Ok(None);
        };
        let created_role = created_role.as_deref().and_then(Role::parse);
        if created_by.is_some() {
            let holds = match (role.as_deref().and_then(Role::parse), created_role) {
                (Some(now), Some(made_with)) => now.includes(made_with),
                _ => false,
            };
            if active != Some(1) || !holds {
                return Ok(None);
            }
        }
        Ok(Some(Token {
            id,
            account_id,
            name,
            created_by,
            created_role,
            created_at,
            revoked_at: None,
        }))
    }

    pub async fn tokens(&self, account: i64) -> StoreResult<Vec<Token>> {
        let rows: Vec<(i64, i64, String, i64, Option<i64>, Option<i64>, Option<String>)> = sqlx::query_as("SELECT id, account_id, name, created_at, revoked_at, created_by, created_role FROM tokens WHERE account_id = $1 ORDER BY id")
            .bind(account)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, account_id, name, created_at, revoked_at, created_by, created_role)| Token {
                    id,
                    account_id,
                    name,
                    created_by,
                    created_role: created_role.as_deref().and_then(Role::parse),
                    created_at,
                    revoked_at,
                },
            )
            .collect())
    }

    pub async fn revoke_token(&self, account: i64, id: i64, by: Option<i64>) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let n = sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE account_id = $2 AND id = $3 AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(account)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        if n == 0 {
            return Err(StoreError::not_found(format!(
                "token {id} does not exist or is already revoked"
            )));
        }
        self.audit(
            account,
            by,
            "system",
            "token.revoke",
            &format!("token:{id}"),
            serde_json::json!({}),
        )
        .await
    }

    /// Appends to the account's audit log. `details` is a JSON object (prose goes in its
    /// `message`), stored as serialized JSON so that it always reads back as JSON.
    pub async fn audit(
        &self,
        account: i64,
        actor_user_id: Option<i64>,
        actor: &str,
        action: &str,
        target: &str,
        details: serde_json::Value,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        Self::audit_in(
            &mut tx,
            account,
            actor_user_id,
            actor,
            action,
            target,
            &details,
        )
        .await?;
        tx.commit().await
    }

    /// [`Store::audit`] inside the caller's transaction: the entry commits with what it tells.
    pub(crate) async fn audit_in(
        conn: &mut sqlx::AnyConnection,
        account: i64,
        actor_user_id: Option<i64>,
        actor: &str,
        action: &str,
        target: &str,
        details: &serde_json::Value,
    ) -> StoreResult<()> {
        let id = allocate(conn, account, "audit", 1).await?;
        sqlx::query("INSERT INTO audit_log (account_id, id, at, actor_user_id, actor, action, target, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(account)
            .bind(id)
            .bind(now_ms())
            .bind(actor_user_id)
            .bind(actor)
            .bind(action)
            .bind(target)
            .bind(details.to_string())
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    pub async fn audit_entries(
        &self,
        account: i64,
        limit: usize,
    ) -> StoreResult<Vec<(i64, i64, Option<i64>, String, String, String, String)>> {
        Ok(sqlx::query_as("SELECT id, at, actor_user_id, actor, action, target, details FROM audit_log WHERE account_id = $1 ORDER BY id DESC LIMIT $2")
            .bind(account)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?)
    }
}

impl Store {
    pub async fn set_password(
        &self,
        account: i64,
        user_id: i64,
        password: &str,
    ) -> StoreResult<()> {
        if password.chars().count() < 10 {
            return Err(StoreError::validation(
                "WEAK_PASSWORD",
                "a password needs at least 10 characters",
                Some("password".into()),
            ));
        }
        let hash = hash_password_blocking(password).await?;
        let mut tx = self.write().await?;
        sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE account_id = $3 AND id = $4")
            .bind(hash)
            .bind(now_ms())
            .bind(account)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.audit(
            account,
            Some(user_id),
            "system",
            "user.password_reset",
            &format!("user:{user_id}"),
            serde_json::json!({}),
        )
        .await
    }
}

/// One line of the audit log.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub actor_user_id: Option<i64>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: String,
}

impl Store {
    /// Changes a user's role; the caller has checked who may grant what.
    pub async fn set_role(&self, account: i64, user_id: i64, role: Role) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let n = sqlx::query(
            "UPDATE users SET role = $1, updated_at = $2 WHERE account_id = $3 AND id = $4",
        )
        .bind(role.as_str())
        .bind(now_ms())
        .bind(account)
        .bind(user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        if n == 0 {
            return Err(StoreError::not_found(format!(
                "user {user_id} does not exist"
            )));
        }
        Ok(())
    }

    /// Deactivates (or reactivates) a user; a deactivated user's sessions end.
    pub async fn set_active(&self, account: i64, user_id: i64, active: bool) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let n = sqlx::query(
            "UPDATE users SET active = $1, updated_at = $2 WHERE account_id = $3 AND id = $4",
        )
        .bind(active as i64)
        .bind(now_ms())
        .bind(account)
        .bind(user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if !active {
            sqlx::query("DELETE FROM sessions WHERE account_id = $1 AND user_id = $2")
                .bind(account)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if n == 0 {
            return Err(StoreError::not_found(format!(
                "user {user_id} does not exist"
            )));
        }
        Ok(())
    }

    /// The audit log, newest first, filtered by acting user, action prefix and time range.
    pub async fn audit_log(
        &self,
        account: i64,
        user_id: Option<i64>,
        action: Option<&str>,
        from: Option<i64>,
        to: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<AuditEntry>> {
        let rows: Vec<(i64, i64, Option<i64>, String, String, String, String)> = sqlx::query_as(
            "SELECT id, at, actor_user_id, actor, action, target, details FROM audit_log WHERE account_id = $1 \
             AND ($2 = 0 OR actor_user_id = $2) AND ($3 = '' OR substr(action, 1, length($3)) = $3) AND at >= $4 AND at < $5 ORDER BY id DESC LIMIT $6",
        )
        .bind(account)
        .bind(user_id.unwrap_or(0))
        .bind(action.unwrap_or(""))
        .bind(from.unwrap_or(0))
        .bind(to.unwrap_or(i64::MAX))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, at, actor_user_id, actor, action, target, details)| AuditEntry {
                    id,
                    at,
                    actor_user_id,
                    actor,
                    action,
                    target,
                    details,
                },
            )
            .collect())
    }
}
