//! Single sign-on: an account's OpenID Connect settings, and the sign-ins in flight.
//!
//! The client secret arrives sealed by the server's key (the store never sees it in clear).
//! A sign-in in flight is keyed by the SHA-256 of its `state`; taking it deletes it in the same
//! transaction, so a state (with its nonce and PKCE verifier) is used at most once.

use crate::{Store, StoreError, StoreResult};
use kontor_domain::time::now_ms;
use sha2::{Digest, Sha256};

/// How long a sign-in may take at the provider before its state expires.
pub const SSO_FLOW_TTL_MS: i64 = 10 * 60 * 1000;
/// Sign-ins in flight per account. Starting one needs no session, so without a bound anyone
/// could fill the table; beyond it new sign-ins wait until older states expire.
pub const MAX_SSO_FLOWS: i64 = 1000;
/// The purpose of a single sign-on's flow; the Salesforce connection's is `salesforce`.
const FLOW_SSO: &str = "sso";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoConfig {
    pub issuer: String,
    pub client_id: String,
    pub client_secret_sealed: String,
    /// Lower-case e-mail domains whose users may sign in this way.
    pub domains: Vec<String>,
    /// Password sign-in is refused for everyone but super admins.
    pub required: bool,
    pub updated_at: i64,
}

impl SsoConfig {
    /// Whether an e-mail address is within the allowed domains (exact domain match).
    pub fn allows(&self, email: &str) -> bool {
        let Some((_, domain)) = email.rsplit_once('@') else {
            return false;
        };
        let domain = domain.to_lowercase();
        self.domains.contains(&domain)
    }
}

#[derive(Debug, Clone)]
pub struct SsoFlow {
    pub account_id: i64,
    pub nonce: String,
    pub verifier: String,
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Store {
    pub async fn sso_config(&self, account: i64) -> StoreResult<Option<SsoConfig>> {
        let row: Option<(String, String, String, String, i64, i64)> = sqlx::query_as(
            "SELECT issuer, client_id, client_secret_sealed, domains, required, updated_at FROM sso_configs WHERE account_id = $1",
        )
        .bind(account)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(
            |(issuer, client_id, client_secret_sealed, domains, required, updated_at)| SsoConfig {
                issuer,
                client_id,
                client_secret_sealed,
                domains: domains
                    .split(',')
                    .filter(|d| !d.is_empty())
                    .map(str::to_string)
                    .collect(),
                required: required != 0,
                updated_at,
            },
        ))
    }

    /// Saves the account's settings; an empty `client_secret_sealed` keeps the stored secret.
    /// `updated_at` is set here.
    pub async fn set_sso_config(
        &self,
        account: i64,
        by: Option<i64>,
        cfg: &SsoConfig,
    ) -> StoreResult<()> {
        let client_secret_sealed =
            Some(cfg.client_secret_sealed.as_str()).filter(|s| !s.is_empty());
        let mut tx = self.write().await?;
        let existing: Option<(String,)> =
            sqlx::query_as("SELECT client_secret_sealed FROM sso_configs WHERE account_id = $1")
                .bind(account)
                .fetch_optional(&mut *tx)
                .await?;
        let secret = match (client_secret_sealed, existing) {
            (Some(s), _) => s.to_string(),
            (None, Some((s,))) => s,
            (None, None) => {
                return Err(StoreError::validation(
                    "INVALID_INPUT",
                    "the client secret is required",
                    Some("client_secret".into()),
                ))
            }
        };
        sqlx::query("DELETE FROM sso_configs WHERE account_id = $1")
            .bind(account)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO sso_configs (account_id, issuer, client_id, client_secret_sealed, domains, required, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(account)
            .bind(&cfg.issuer)
            .bind(&cfg.client_id)
            .bind(secret)
            .bind(cfg.domains.join(","))
            .bind(cfg.required as i64)
            .bind(now_ms())
            .bind(by)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    pub async fn delete_sso_config(&self, account: i64) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM sso_configs WHERE account_id = $1")
            .bind(account)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Records a sign-in sent to the provider; expired ones are dropped on the way.
    pub async fn begin_sso_flow(
        &self,
        account: i64,
        state: &str,
        nonce: &str,
        verifier: &str,
    ) -> StoreResult<()> {
        self.begin_flow(FLOW_SSO, account, state, nonce, verifier)
            .await
    }

    /// Records an authorization sent to a provider for `purpose` (`sso`, `salesforce`): its
    /// state (kept hashed), nonce and PKCE verifier, for one use within
    /// [`SSO_FLOW_TTL_MS`]. Expired ones are dropped on the way.
    pub async fn begin_flow(
        &self,
        purpose: &str,
        account: i64,
        state: &str,
        nonce: &str,
        verifier: &str,
    ) -> StoreResult<()> {
        let now = now_ms();
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM sso_flows WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let (live,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM sso_flows WHERE account_id = $1")
                .bind(account)
                .fetch_one(&mut *tx)
                .await?;
        if live >= MAX_SSO_FLOWS {
            // End the transaction here rather than by dropping it: a dropped transaction rolls
            // back only when its connection is next used, and on SQLite it would keep the
            // write lock past the in-process writer lock meanwhile.
            tx.commit().await?;
            return Err(StoreError::Conflict {
                message: "too many single sign-ons are in progress".into(),
                existing_id: None,
            });
        }
        sqlx::query("INSERT INTO sso_flows (state_hash, account_id, nonce, verifier, created_at, expires_at, purpose) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(sha256_hex(state))
            .bind(account)
            .bind(nonce)
            .bind(verifier)
            .bind(now)
            .bind(now + SSO_FLOW_TTL_MS)
            .bind(purpose)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Takes a sign-in by its state: at most once, and only before it expires.
    pub async fn take_sso_flow(&self, account: i64, state: &str) -> StoreResult<Option<SsoFlow>> {
        self.take_flow(FLOW_SSO, account, state).await
    }

    /// Takes an authorization for `purpose` by its state: at most once, only before it
    /// expires, and only for the purpose it was begun for.
    pub async fn take_flow(
        &self,
        purpose: &str,
        account: i64,
        state: &str,
    ) -> StoreResult<Option<SsoFlow>> {
        let hash = sha256_hex(state);
        let mut tx = self.write().await?;
        let row: Option<(String, String, i64)> = sqlx::query_as(
            "SELECT nonce, verifier, expires_at FROM sso_flows WHERE state_hash = $1 AND account_id = $2 AND purpose = $3",
        )
        .bind(&hash)
        .bind(account)
        .bind(purpose)
        .fetch_optional(&mut *tx)
        .await?;
        // The delete decides: of two callbacks racing with one state, one deletes the row.
        let deleted = sqlx::query(
            "DELETE FROM sso_flows WHERE state_hash = $1 AND account_id = $2 AND purpose = $3",
        )
        .bind(&hash)
        .bind(account)
        .bind(purpose)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(row
            .filter(|(_, _, expires)| deleted == 1 && *expires > now_ms())
            .map(|(nonce, verifier, _)| SsoFlow {
                account_id: account,
                nonce,
                verifier,
            }))
    }
}

impl Store {
    /// Passes every sealed value of this database (TOTP seeds, also of set-ups not yet
    /// confirmed, SSO client secrets, webhook apps' client secrets, Salesforce connections' tokens) through `reseal`, and
    /// writes back what it returns, all in one transaction. `None` means the value could not
    /// be opened: it is left as it is and counted. Returns (resealed, unreadable).
    pub async fn reseal_secrets(
        &self,
        reseal: impl Fn(&str) -> Option<String>,
    ) -> StoreResult<(usize, usize)> {
        let mut tx = self.write().await?;
        let (mut done, mut unreadable) = (0, 0);
        let factors: Vec<(i64, i64, String)> = sqlx::query_as(
            "SELECT account_id, user_id, totp_secret FROM user_second_factors ORDER BY account_id, user_id",
        )
        .fetch_all(&mut *tx)
        .await?;
        for (account, user, sealed) in factors {
            if sealed.is_empty() {
                continue;
            }
            match reseal(&sealed) {
                Some(new) => {
                    sqlx::query("UPDATE user_second_factors SET totp_secret = $1 WHERE account_id = $2 AND user_id = $3")
                        .bind(new)
                        .bind(account)
                        .bind(user)
                        .execute(&mut *tx)
                        .await?;
                    done += 1;
                }
                None => unreadable += 1,
            }
        }
        let secrets: Vec<(i64, String)> = sqlx::query_as(
            "SELECT account_id, client_secret_sealed FROM sso_configs ORDER BY account_id",
        )
        .fetch_all(&mut *tx)
        .await?;
        for (account, sealed) in secrets {
            if sealed.is_empty() {
                continue;
            }
            match reseal(&sealed) {
                Some(new) => {
                    sqlx::query(
                        "UPDATE sso_configs SET client_secret_sealed = $1 WHERE account_id = $2",
                    )
                    .bind(new)
                    .bind(account)
                    .execute(&mut *tx)
                    .await?;
                    done += 1;
                }
                None => unreadable += 1,
            }
        }
        let (d, u) = Store::reseal_webhook_secrets(&mut tx, &reseal).await?;
        done += d;
        unreadable += u;
        let (d, u) = crate::salesforce::reseal_tokens(&mut tx, &reseal).await?;
        done += d;
        unreadable += u;
        tx.commit().await?;
        Ok((done, unreadable))
    }
}
