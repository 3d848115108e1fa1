//! The integration's rows below the `Store` methods: links (read by Salesforce id or by record,
//! written in batches), sync errors (recorded and cleared), mappings, the clean slate a new
//! org starts from, and resealing the tokens.

use super::*;
use crate::allocate;

pub(super) type LinkRow = (String, String, String, i64, String, i64);
pub(super) const LINK_COLS: &str = "sf_id, sf_type, object_type, record_id, synced, synced_at";

pub(super) fn link_from(r: LinkRow) -> StoreResult<SalesforceLink> {
    Ok(SalesforceLink {
        sf_id: r.0,
        sf_type: r.1,
        object_type: r.2,
        record_id: r.3,
        synced: serde_json::from_str(&r.4)?,
        synced_at: r.5,
    })
}

pub(super) async fn insert_mapping(
    tx: &mut sqlx::AnyConnection,
    account: i64,
    m: &SalesforceMapping,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO salesforce_mappings (account_id, sf_type, sf_field, property, rule, custom) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(account)
        .bind(&m.sf_type)
        .bind(&m.sf_field)
        .bind(&m.property)
        .bind(&m.rule)
        .bind(m.custom as i64)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// The integration's own data, not the records it wrote: mappings, links, the owner map,
/// cursors, errors and the connection.
pub(super) async fn delete_integration_data(
    tx: &mut sqlx::AnyConnection,
    account: i64,
) -> StoreResult<()> {
    for table in [
        "salesforce_mappings",
        "salesforce_links",
        "salesforce_owner_map",
        "salesforce_cursors",
        "salesforce_errors",
        "salesforce_connections",
    ] {
        sqlx::query(&format!("DELETE FROM {table} WHERE account_id = $1"))
            .bind(account)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// Records errors and clears the ones `cleared` names, in the caller's transaction.
pub(crate) async fn report_errors(
    tx: &mut sqlx::AnyConnection,
    account: i64,
    reports: &[ErrorReport],
    now: i64,
) -> StoreResult<()> {
    for r in reports {
        let subject = r.subject();
        let n = sqlx::query("UPDATE salesforce_errors SET category = $1, code = $2, message = $3, attempts = attempts + 1, last_at = $4, retry_at = $5, sf_id = COALESCE($6, sf_id), record_id = COALESCE($7, record_id) WHERE account_id = $8 AND direction = $9 AND subject = $10")
            .bind(&r.category)
            .bind(&r.code)
            .bind(&r.message)
            .bind(now)
            .bind(r.retry_at)
            .bind(&r.sf_id)
            .bind(r.record_id)
            .bind(account)
            .bind(r.direction)
            .bind(&subject)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            let id = allocate(tx, account, "salesforce_error", 1).await?;
            sqlx::query("INSERT INTO salesforce_errors (account_id, id, direction, subject, object_type, record_id, sf_type, sf_id, category, code, message, attempts, first_at, last_at, retry_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12, $12, $13)")
                .bind(account)
                .bind(id)
                .bind(r.direction)
                .bind(&subject)
                .bind(&r.object_type)
                .bind(r.record_id)
                .bind(&r.sf_type)
                .bind(&r.sf_id)
                .bind(&r.category)
                .bind(&r.code)
                .bind(&r.message)
                .bind(now)
                .bind(r.retry_at)
                .execute(&mut *tx)
                .await?;
        }
    }
    Ok(())
}

/// Clears the open errors of these subjects (a record that synced after all).
pub(crate) async fn clear_errors(
    tx: &mut sqlx::AnyConnection,
    account: i64,
    direction: &str,
    subjects: &[String],
) -> StoreResult<()> {
    for chunk in subjects.chunks(500) {
        let sql = format!(
            "DELETE FROM salesforce_errors WHERE account_id = $1 AND direction = $2 AND subject IN ({})",
            crate::records::in_list(3, chunk.len())
        );
        let mut q = sqlx::query(&sql).bind(account).bind(direction);
        for s in chunk {
            q = q.bind(s);
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
}

/// Links of these Salesforce ids.
pub(crate) async fn links_by_sf_id(
    tx: &mut sqlx::AnyConnection,
    account: i64,
    ids: &[&str],
) -> StoreResult<Vec<SalesforceLink>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT {LINK_COLS} FROM salesforce_links WHERE account_id = $1 AND sf_id IN ({})",
            crate::records::in_list(2, chunk.len())
        );
        let mut q = sqlx::query_as::<_, LinkRow>(&sql).bind(account);
        for s in chunk {
            q = q.bind(*s);
        }
        for r in q.fetch_all(&mut *tx).await? {
            out.push(link_from(r)?);
        }
    }
    Ok(out)
}

/// Links of these kontor records of one type.
pub(crate) async fn links_by_record(
    tx: &mut sqlx::AnyConnection,
    account: i64,
    object_type: &str,
    ids: &[i64],
) -> StoreResult<Vec<SalesforceLink>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT {LINK_COLS} FROM salesforce_links WHERE account_id = $1 AND object_type = $2 AND record_id IN ({})",
            crate::records::in_list(3, chunk.len())
        );
        let mut q = sqlx::query_as::<_, LinkRow>(&sql)
            .bind(account)
            .bind(object_type);
        for id in chunk {
            q = q.bind(id);
        }
        for r in q.fetch_all(&mut *tx).await? {
            out.push(link_from(r)?);
        }
    }
    Ok(out)
}

/// Writes links (each replacing its record's or its Salesforce id's old one) with a few
/// statements per hundred: a page of the initial import writes two thousand.
pub(crate) async fn save_links(
    tx: &mut sqlx::AnyConnection,
    account: i64,
    links: &[SalesforceLink],
) -> StoreResult<()> {
    // Of links naming the same Salesforce id or the same record, the last wins.
    let mut seen_sf = std::collections::HashSet::new();
    let mut seen_record = std::collections::HashSet::new();
    let mut kept: Vec<&SalesforceLink> = links
        .iter()
        .rev()
        .filter(|l| {
            let a = seen_sf.insert(l.sf_id.as_str());
            let b = seen_record.insert((l.object_type.as_str(), l.record_id));
            a && b
        })
        .collect();
    kept.reverse();
    for chunk in kept.chunks(100) {
        let sql = format!(
            "DELETE FROM salesforce_links WHERE account_id = $1 AND sf_id IN ({})",
            crate::records::in_list(2, chunk.len())
        );
        let mut q = sqlx::query(&sql).bind(account);
        for l in chunk {
            q = q.bind(&l.sf_id);
        }
        q.execute(&mut *tx).await?;
        let mut by_type: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
        for l in chunk {
            by_type.entry(&l.object_type).or_default().push(l.record_id);
        }
        for (t, ids) in by_type {
            let sql = format!(
                "DELETE FROM salesforce_links WHERE account_id = $1 AND object_type = $2 AND record_id IN ({})",
                crate::records::in_list(3, ids.len())
            );
            let mut q = sqlx::query(&sql).bind(account).bind(t);
            for id in ids {
                q = q.bind(id);
            }
            q.execute(&mut *tx).await?;
        }
        let sql = format!(
            "INSERT INTO salesforce_links ({LINK_COLS}, account_id) VALUES {}",
            crate::records::values_clause(chunk.len(), 7)
        );
        let mut q = sqlx::query(&sql);
        for l in chunk {
            q = q
                .bind(&l.sf_id)
                .bind(&l.sf_type)
                .bind(&l.object_type)
                .bind(l.record_id)
                .bind(serde_json::to_string(&l.synced)?)
                .bind(l.synced_at)
                .bind(account);
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
}

/// Writes a link (replacing the record's or the Salesforce id's old one).
pub(crate) async fn save_link(
    tx: &mut sqlx::AnyConnection,
    account: i64,
    l: &SalesforceLink,
) -> StoreResult<()> {
    sqlx::query(
        "DELETE FROM salesforce_links WHERE account_id = $1 AND (sf_id = $2 OR (object_type = $3 AND record_id = $4))",
    )
    .bind(account)
    .bind(&l.sf_id)
    .bind(&l.object_type)
    .bind(l.record_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!(
        "INSERT INTO salesforce_links ({LINK_COLS}, account_id) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ))
    .bind(&l.sf_id)
    .bind(&l.sf_type)
    .bind(&l.object_type)
    .bind(l.record_id)
    .bind(serde_json::to_string(&l.synced)?)
    .bind(l.synced_at)
    .bind(account)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Passes the connections' sealed tokens through `reseal` (a key rotation), in the caller's
/// transaction; returns (resealed, unreadable).
pub(crate) async fn reseal_tokens(
    tx: &mut sqlx::AnyConnection,
    reseal: &impl Fn(&str) -> Option<String>,
) -> StoreResult<(usize, usize)> {
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT account_id, access_sealed, refresh_sealed FROM salesforce_connections ORDER BY account_id",
    )
    .fetch_all(&mut *tx)
    .await?;
    let (mut done, mut unreadable) = (0, 0);
    for (account, access, refresh) in rows {
        match (reseal(&access), reseal(&refresh)) {
            (Some(a), Some(r)) => {
                sqlx::query("UPDATE salesforce_connections SET access_sealed = $1, refresh_sealed = $2 WHERE account_id = $3")
                    .bind(a)
                    .bind(r)
                    .bind(account)
                    .execute(&mut *tx)
                    .await?;
                done += 2;
            }
            _ => unreadable += 2,
        }
    }
    Ok((done, unreadable))
}
