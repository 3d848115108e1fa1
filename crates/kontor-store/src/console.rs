//! What the web console needs from storage: sign-in lookup and throttling (directory),
//! sessions, second factors and notifications (cell).

use crate::auth::User;
use crate::{allocate, Account, Directory, Store, StoreError, StoreResult};
use kontor_domain::time::now_ms;
use kontor_domain::Role;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A session lasts this long without being renewed.
pub const SESSION_TTL_MS: i64 = 12 * 60 * 60 * 1000;

pub(crate) fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// How a session was authenticated; sensitive actions ask for a fresh second factor unless
/// the session came from single sign-on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Password,
    PasswordTotp,
    Sso,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::PasswordTotp => "password+totp",
            Self::Sso => "sso",
        }
    }
    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "password+totp" => Self::PasswordTotp,
            "sso" => Self::Sso,
            _ => Self::Password,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub account_id: i64,
    pub user: User,
    pub csrf: String,
    pub auth_method: AuthMethod,
    /// Password accepted, second factor still to come: only the code page is open.
    pub pending_second_factor: bool,
    pub second_factor_at: Option<i64>,
    pub expires_at: i64,
}

/// A user's TOTP set-up; the secret is stored sealed by the server's key.
#[derive(Debug, Clone)]
pub struct SecondFactor {
    pub sealed_secret: String,
    pub enabled: bool,
    pub recovery_codes_left: usize,
}

/// Recovery codes carry 80 random bits each (16 base-32 characters, shown in groups of four).
const RECOVERY_CODES: usize = 10;

/// A user's unused recovery codes as stored: a per-set random salt and the salted SHA-256 of
/// each code. The codes are random, so a fast hash is enough; the salt keeps equal codes of
/// two users (or a precomputed table) from matching.
struct RecoveryCodes {
    salt: String,
    hashes: Vec<String>,
}

impl RecoveryCodes {
    fn parse(stored: &str) -> Self {
        #[derive(serde::Deserialize)]
        struct Salted {
            salt: String,
            hashes: Vec<String>,
        }
        match serde_json::from_str::<Salted>(stored) {
            Ok(s) => Self {
                salt: s.salt,
                hashes: s.hashes,
            },
            // Sets made before codes were salted: a plain list of unsalted hashes.
            Err(_) => Self {
                salt: String::new(),
                hashes: serde_json::from_str(stored).unwrap_or_default(),
            },
        }
    }
    fn to_stored(&self) -> String {
        serde_json::json!({"salt": self.salt, "hashes": self.hashes}).to_string()
    }
    /// The stored form of a code as typed: case, spaces and dashes do not matter.
    fn hash(&self, code: &str) -> String {
        let code: String = code
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        sha256_hex(&format!("{}{code}", self.salt))
    }
}

/// Fresh recovery codes, and their stored form.
fn new_recovery_codes() -> (Vec<String>, String) {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut set = RecoveryCodes {
        salt: random_hex(16),
        hashes: Vec::new(),
    };
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| {
            let mut raw = [0u8; 16];
            rand::rngs::OsRng.fill_bytes(&mut raw);
            let chars: Vec<char> = raw
                .iter()
                .map(|b| ALPHABET[(*b & 31) as usize] as char)
                .collect();
            chars
                .chunks(4)
                .map(|c| c.iter().collect::<String>())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect();
    set.hashes = codes.iter().map(|c| set.hash(c)).collect();
    (codes, set.to_stored())
}

#[derive(Debug, Clone)]
pub struct Notification {
    pub id: i64,
    pub at: i64,
    pub title: String,
    pub body: String,
    pub link: Option<String>,
    pub read: bool,
}

impl Directory {
    /// Creates a user in the account's cell and makes the e-mail known to sign-in.
    pub async fn create_user(
        &self,
        account: &Account,
        email: &str,
        first: &str,
        last: &str,
        role: Role,
        password: &str,
    ) -> StoreResult<User> {
        let user = self
            .cell(account)?
            .create_user(account.id, email, first, last, role, password)
            .await?;
        let mut tx = self.directory.write().await?;
        sqlx::query(
            "INSERT INTO logins (email, account_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(&user.email)
        .bind(account.id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Accounts where this e-mail has a user.
    pub async fn accounts_for_login(&self, email: &str) -> StoreResult<Vec<i64>> {
        let rows: Vec<(i64,)> =
            sqlx::query_as("SELECT account_id FROM logins WHERE email = $1 ORDER BY account_id")
                .bind(email.trim().to_lowercase())
                .fetch_all(&self.directory.pool)
                .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }
}

type SessionRow = (i64, i64, String, String, i64, Option<i64>, i64);

impl Store {
    /// Starts a session; returns the cookie value (`<account>.<secret>`), whose hash is kept.
    pub async fn create_session(
        &self,
        account: i64,
        user_id: i64,
        method: AuthMethod,
        pending_second_factor: bool,
    ) -> StoreResult<String> {
        let token = format!("{account}.{}", random_hex(32));
        let now = now_ms();
        let mut tx = self.write().await?;
        sqlx::query("INSERT INTO sessions (token_hash, account_id, user_id, csrf, auth_method, pending_second_factor, second_factor_at, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(sha256_hex(&token))
            .bind(account)
            .bind(user_id)
            .bind(random_hex(24))
            .bind(method.as_str())
            .bind(pending_second_factor as i64)
            .bind((method == AuthMethod::PasswordTotp).then_some(now))
            .bind(now)
            .bind(now + SESSION_TTL_MS)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(token)
    }

    /// The live session behind a cookie value, with its (active) user.
    pub async fn session(&self, token: &str) -> StoreResult<Option<Session>> {
        let row: Option<SessionRow> = sqlx::query_as(
            "SELECT account_id, user_id, csrf, auth_method, pending_second_factor, second_factor_at, expires_at FROM sessions WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(sha256_hex(token))
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        let Some((account_id, user_id, csrf, method, pending, second_at, expires_at)) = row else {
            return Ok(None);
        };
        let Some(user) = self
            .users(account_id)
            .await?
            .into_iter()
            .find(|u| u.id == user_id && u.active)
        else {
            return Ok(None);
        };
        Ok(Some(Session {
            account_id,
            user,
            csrf,
            auth_method: AuthMethod::parse(&method),
            pending_second_factor: pending != 0,
            second_factor_at: second_at,
            expires_at,
        }))
    }

    /// The second factor was given: the session is complete (or refreshed for a sensitive act).
    pub async fn session_second_factor(&self, token: &str) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE sessions SET pending_second_factor = 0, auth_method = 'password+totp', second_factor_at = $1 WHERE token_hash = $2")
            .bind(now_ms())
            .bind(sha256_hex(token))
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    pub async fn delete_session(&self, token: &str) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(sha256_hex(token))
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Ends every session of a user (deactivation, password change).
    pub async fn delete_user_sessions(&self, account: i64, user_id: i64) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM sessions WHERE account_id = $1 AND user_id = $2")
            .bind(account)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    pub async fn second_factor(
        &self,
        account: i64,
        user_id: i64,
    ) -> StoreResult<Option<SecondFactor>> {
        let row: Option<(String, i64, String)> = sqlx::query_as("SELECT totp_secret, enabled, recovery_codes FROM user_second_factors WHERE account_id = $1 AND user_id = $2")
            .bind(account)
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(s, e, codes)| SecondFactor {
            sealed_secret: s,
            enabled: e != 0,
            recovery_codes_left: RecoveryCodes::parse(&codes).hashes.len(),
        }))
    }

    /// Starts (or restarts) TOTP set-up with a new sealed secret, not yet enabled.
    pub async fn begin_second_factor(
        &self,
        account: i64,
        user_id: i64,
        sealed_secret: &str,
    ) -> StoreResult<()> {
        if self
            .second_factor(account, user_id)
            .await?
            .is_some_and(|f| f.enabled)
        {
            return Err(StoreError::Conflict {
                message: "two-factor authentication is already enabled".into(),
                existing_id: None,
            });
        }
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM user_second_factors WHERE account_id = $1 AND user_id = $2")
            .bind(account)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO user_second_factors (account_id, user_id, totp_secret, enabled, recovery_codes, created_at) VALUES ($1, $2, $3, 0, '[]', $4)")
            .bind(account)
            .bind(user_id)
            .bind(sealed_secret)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Enables TOTP once a code was confirmed; returns fresh recovery codes (kept hashed).
    pub async fn enable_second_factor(
        &self,
        account: i64,
        user_id: i64,
    ) -> StoreResult<Vec<String>> {
        let (codes, stored) = new_recovery_codes();
        let mut tx = self.write().await?;
        let n = sqlx::query("UPDATE user_second_factors SET enabled = 1, recovery_codes = $1 WHERE account_id = $2 AND user_id = $3 AND enabled = 0")
            .bind(stored)
            .bind(account)
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        if n == 0 {
            return Err(StoreError::not_found(
                "no two-factor set-up is waiting for confirmation",
            ));
        }
        self.audit(
            account,
            Some(user_id),
            "user",
            "user.2fa_enabled",
            &format!("user:{user_id}"),
            serde_json::json!({}),
        )
        .await?;
        Ok(codes)
    }

    /// Turns a user's second factor off (their own choice, or an admin's reset); the caller
    /// audits it, knowing who acted.
    pub async fn remove_second_factor(&self, account: i64, user_id: i64) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let n =
            sqlx::query("DELETE FROM user_second_factors WHERE account_id = $1 AND user_id = $2")
                .bind(account)
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Records that a TOTP time step was used; false when it (or a later one) already was,
    /// so a code cannot be replayed within its validity window.
    pub async fn consume_totp_step(
        &self,
        account: i64,
        user_id: i64,
        step: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let n = sqlx::query("UPDATE user_second_factors SET last_step = $1 WHERE account_id = $2 AND user_id = $3 AND last_step < $1")
            .bind(step)
            .bind(account)
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Spends a recovery code: true when it was one of the user's unused codes. The spend is
    /// a compare-and-swap on the stored set, so one code cannot be spent twice concurrently.
    pub async fn use_recovery_code(
        &self,
        account: i64,
        user_id: i64,
        code: &str,
    ) -> StoreResult<bool> {
        loop {
            let row: Option<(String,)> = sqlx::query_as("SELECT recovery_codes FROM user_second_factors WHERE account_id = $1 AND user_id = $2 AND enabled = 1")
                .bind(account)
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
            let Some((stored,)) = row else {
                return Ok(false);
            };
            let mut set = RecoveryCodes::parse(&stored);
            let h = set.hash(code);
            let Some(i) = set.hashes.iter().position(|c| *c == h) else {
                return Ok(false);
            };
            set.hashes.remove(i);
            let mut tx = self.write().await?;
            let n = sqlx::query("UPDATE user_second_factors SET recovery_codes = $1 WHERE account_id = $2 AND user_id = $3 AND recovery_codes = $4")
                .bind(set.to_stored())
                .bind(account)
                .bind(user_id)
                .bind(&stored)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            if n == 1 {
                return Ok(true);
            }
            // Another spend changed the set first: read it again (the code may be gone).
        }
    }

    pub async fn notify(
        &self,
        account: i64,
        user_id: i64,
        title: &str,
        body: &str,
        link: Option<&str>,
    ) -> StoreResult<i64> {
        let mut tx = self.write().await?;
        let id = allocate(&mut tx, account, "notification", 1).await?;
        sqlx::query("INSERT INTO notifications (account_id, id, user_id, at, title, body, link) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(account)
            .bind(id)
            .bind(user_id)
            .bind(now_ms())
            .bind(title)
            .bind(body)
            .bind(link)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn notifications(
        &self,
        account: i64,
        user_id: i64,
        limit: usize,
    ) -> StoreResult<Vec<Notification>> {
        let rows: Vec<(i64, i64, String, String, Option<String>, Option<i64>)> = sqlx::query_as(
            "SELECT id, at, title, body, link, read_at FROM notifications WHERE account_id = $1 AND user_id = $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(account)
        .bind(user_id)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, at, title, body, link, read)| Notification {
                id,
                at,
                title,
                body,
                link,
                read: read.is_some(),
            })
            .collect())
    }

    pub async fn mark_notifications_read(
        &self,
        account: i64,
        user_id: i64,
        id: Option<i64>,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE notifications SET read_at = $1 WHERE account_id = $2 AND user_id = $3 AND read_at IS NULL AND ($4 = 0 OR id = $4)")
            .bind(now_ms())
            .bind(account)
            .bind(user_id)
            .bind(id.unwrap_or(0))
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }
}
