//! Appending to the change log. Every write of an account's records appends here, in its own
//! transaction; the sequence numbers are taken last, just before the commit, so that the
//! counter row is locked as briefly as possible and the log's order is the commit order (a
//! reader that sees entry `n` sees every entry before it: what the webhooks' fan-out relies on).

use super::Actor;
use crate::{allocate, StoreResult};

/// One entry: what happened to which record.
pub(crate) struct Entry {
    pub type_id: String,
    pub record_id: i64,
    /// `set`, `archive`, `restore`, `purge`, `merge`, `erase`, `associate`, `dissociate`.
    pub kind: &'static str,
    /// JSON: for `set` the values written; for the others what the kind needs, or `{}`.
    pub props: String,
}

impl Entry {
    pub fn new(type_id: &str, record_id: i64, kind: &'static str, props: String) -> Self {
        Self {
            type_id: type_id.to_string(),
            record_id,
            kind,
            props,
        }
    }
}

/// Appends `entries` in order; returns the first one's sequence number.
pub(crate) async fn append(
    tx: &mut sqlx::AnyConnection,
    account: i64,
    entries: &[Entry],
    actor: &Actor,
    now: i64,
) -> StoreResult<i64> {
    if entries.is_empty() {
        return Ok(0);
    }
    let first = allocate(tx, account, "change", entries.len() as i64).await?;
    for (c, chunk) in entries.chunks(100).enumerate() {
        let sql = format!(
            "INSERT INTO changes (account_id, seq, object_type, record_id, kind, props, source, source_id, actor_user_id, at) VALUES {}",
            super::values_clause(chunk.len(), 10)
        );
        let mut q = sqlx::query(&sql);
        for (i, e) in chunk.iter().enumerate() {
            q = q
                .bind(account)
                .bind(first + (c * 100 + i) as i64)
                .bind(&e.type_id)
                .bind(e.record_id)
                .bind(e.kind)
                .bind(&e.props)
                .bind(actor.source.as_str())
                .bind(actor.source_id.clone())
                .bind(actor.user_id)
                .bind(now);
        }
        q.execute(&mut *tx).await?;
    }
    Ok(first)
}
