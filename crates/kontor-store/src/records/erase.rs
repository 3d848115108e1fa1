//! Erasing a contact for good, as a GDPR delete asks (`POST …/contacts/gdpr-delete`), and the
//! blocklist that keeps it erased.
//!
//! The blocklist (`erased`) holds no personal data: an e-mail address is kept as a SHA-256 of
//! the account and the lower-cased address, enough to recognise it when it is offered again.

use super::{in_list, Actor};
use crate::objects::ObjectType;
use crate::{Store, StoreError, StoreResult};
use kontor_domain::object_type::MERGED_IDS;
use kontor_domain::time::now_ms;
use sha2::{Digest, Sha256};

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erased {
    /// The contact erased; `None` when no contact had the e-mail address (which is blocked
    /// all the same, as HubSpot does).
    pub record: Option<i64>,
}

/// How the blocklist knows an e-mail address without keeping it.
pub(crate) fn email_digest(account: i64, email: &str) -> String {
    let mut h = Sha256::new();
    h.update(account.to_string().as_bytes());
    h.update(b":");
    h.update(email.trim().to_lowercase().as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) const ERASED_EMAIL: &str = "email";
pub(crate) const ERASED_RECORD: &str = "record";

/// Refuses a write that would bring back an erased contact: an e-mail address on the blocklist,
/// or a create under an erased record id.
pub(crate) async fn check_not_erased(
    tx: &mut sqlx::AnyConnection,
    account: i64,
    ot: &ObjectType,
    emails: &[&str],
    ids: &[i64],
) -> StoreResult<()> {
    let erased = |field: &str, message: String| {
        Err(StoreError::validation(
            "VALIDATION_ERROR",
            message,
            Some(field.to_string()),
        ))
    };
    let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
    if let Some(id) = first_blocked(tx, account, ot, ERASED_RECORD, &ids).await? {
        return erased(
            "hs_object_id",
            format!(
                "{} {id} was erased for good by a GDPR delete and cannot come back",
                ot.singular
            ),
        );
    }
    let digests: Vec<String> = emails.iter().map(|e| email_digest(account, e)).collect();
    if first_blocked(tx, account, ot, ERASED_EMAIL, &digests)
        .await?
        .is_some()
    {
        return erased(
            "properties.email",
            "this e-mail address belonged to a contact erased by a GDPR delete: it is blocked and cannot be used again".into(),
        );
    }
    Ok(())
}

/// The first of `values` the blocklist holds as `kind`.
async fn first_blocked(
    tx: &mut sqlx::AnyConnection,
    account: i64,
    ot: &ObjectType,
    kind: &str,
    values: &[String],
) -> StoreResult<Option<String>> {
    for chunk in values.chunks(500) {
        let sql = format!(
            "SELECT value FROM erased WHERE account_id = $1 AND kind = $2 AND object_type = $3 AND value IN ({})",
            in_list(4, chunk.len())
        );
        let mut q = sqlx::query_as::<_, (String,)>(&sql)
            .bind(account)
            .bind(kind)
            .bind(&ot.type_id);
        for v in chunk {
            q = q.bind(v);
        }
        if let Some((v,)) = q.fetch_all(&mut *tx).await?.into_iter().next() {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

impl Store {
    /// Erases a contact for good, found by its id (or an id merged into it) or by e-mail: its
    /// state, unique values, associations, its history and that of the records merged into it
    /// in the change log, the import errors and form submissions that name it; then blocks its
    /// e-mail addresses and ids from coming back. The change log keeps one `erase` entry,
    /// without values. An e-mail address no contact has is blocked all the same.
    pub async fn gdpr_delete(
        &self,
        account: i64,
        ot: &ObjectType,
        id: Option<i64>,
        email: Option<&str>,
        actor: &Actor,
    ) -> StoreResult<Erased> {
        if ot.type_id != "0-1" {
            return Err(StoreError::validation(
                "VALIDATION_ERROR",
                "a GDPR delete erases contacts",
                Some("objectType".into()),
            ));
        }
        let now = now_ms();
        let mut tx = self.write().await?;
        let found: Option<(i64,)> = match (id, email) {
            (Some(id), _) => {
                sqlx::query_as("SELECT id FROM records WHERE account_id = $1 AND object_type = $2 AND id = $3")
                    .bind(account)
                    .bind(&ot.type_id)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .or(sqlx::query_as("SELECT record_id FROM unique_values WHERE account_id = $1 AND object_type = $2 AND property = $3 AND value = $4")
                        .bind(account)
                        .bind(&ot.type_id)
                        .bind(MERGED_IDS)
                        .bind(id.to_string())
                        .fetch_optional(&mut *tx)
                        .await?)
            }
            (None, Some(e)) => {
                sqlx::query_as("SELECT record_id FROM unique_values WHERE account_id = $1 AND object_type = $2 AND property = 'email' AND value = $3")
                    .bind(account)
                    .bind(&ot.type_id)
                    .bind(e.trim().to_lowercase())
                    .fetch_optional(&mut *tx)
                    .await?
            }
            (None, None) => {
                return Err(StoreError::validation(
                    "VALIDATION_ERROR",
                    "objectId is required",
                    Some("objectId".into()),
                ))
            }
        };
        let Some((record,)) = found else {
            let Some(e) = email else {
                return Err(StoreError::not_found(format!(
                    "{} {} does not exist",
                    ot.singular,
                    id.unwrap_or_default()
                )));
            };
            block(
                &mut tx,
                account,
                ot,
                ERASED_EMAIL,
                &email_digest(account, e),
                now,
            )
            .await?;
            tx.commit().await?;
            return Ok(Erased { record: None });
        };

        // Its e-mail addresses (its own, and those of contacts merged into it) and the ids
        // merged into it.
        let keys: Vec<(String, String)> = sqlx::query_as(
            "SELECT property, value FROM unique_values WHERE account_id = $1 AND record_id = $2",
        )
        .bind(account)
        .bind(record)
        .fetch_all(&mut *tx)
        .await?;
        let mut emails: Vec<String> = keys
            .iter()
            .filter(|(p, _)| p == "email")
            .map(|(_, v)| v.clone())
            .collect();
        if let Some(e) = email {
            emails.push(e.trim().to_lowercase());
        }
        let mut ids: Vec<i64> = keys
            .iter()
            .filter(|(p, _)| p == MERGED_IDS)
            .filter_map(|(_, v)| v.parse().ok())
            .collect();
        ids.push(record);

        for id in &ids {
            for sql in [
                "DELETE FROM records WHERE account_id = $1 AND id = $2",
                "DELETE FROM unique_values WHERE account_id = $1 AND record_id = $2",
                "DELETE FROM associations WHERE account_id = $1 AND (from_id = $2 OR to_id = $2)",
                "DELETE FROM changes WHERE account_id = $1 AND record_id = $2",
                "DELETE FROM import_errors WHERE account_id = $1 AND record_id = $2",
                "DELETE FROM form_submissions WHERE account_id = $1 AND contact_id = $2",
                // Webhook events about the contact, sent or not: their values go too (the
                // erasure's own event comes from its entry below).
                "DELETE FROM webhook_events WHERE account_id = $1 AND object_id = $2",
            ] {
                sqlx::query(sql)
                    .bind(account)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            block(&mut tx, account, ot, ERASED_RECORD, &id.to_string(), now).await?;
        }
        for e in &emails {
            // Rows of imports and form submissions that were refused carry the address too.
            let escaped = e
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            let like = format!("%{escaped}%");
            for sql in [
                "DELETE FROM import_errors WHERE account_id = $1 AND LOWER(row_data) LIKE $2 ESCAPE '\\'",
                "DELETE FROM form_submissions WHERE account_id = $1 AND LOWER(fields) LIKE $2 ESCAPE '\\'",
            ] {
                sqlx::query(sql)
                    .bind(account)
                    .bind(&like)
                    .execute(&mut *tx)
                    .await?;
            }
            block(
                &mut tx,
                account,
                ot,
                ERASED_EMAIL,
                &email_digest(account, e),
                now,
            )
            .await?;
        }
        let erase = [super::log::Entry::new(
            &ot.type_id,
            record,
            "erase",
            "{}".into(),
        )];
        super::log::append(&mut tx, account, &erase, actor, now).await?;
        tx.commit().await?;
        Ok(Erased {
            record: Some(record),
        })
    }
}

async fn block(
    tx: &mut sqlx::AnyConnection,
    account: i64,
    ot: &ObjectType,
    kind: &str,
    value: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO erased (account_id, kind, object_type, value, erased_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING")
        .bind(account)
        .bind(kind)
        .bind(&ot.type_id)
        .bind(value)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    Ok(())
}
