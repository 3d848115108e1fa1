//! kontor → Salesforce: the records changed since the push cursor, read from the change log
//! (skipping what the sync itself wrote, source `SALESFORCE`), and the bookkeeping of
//! Salesforce's answer: links, the values now on both sides, errors, and the cursor, in one
//! transaction. A push cut short before that transaction is sent again; Salesforce's writes
//! are idempotent for it (updates set the same values again; creates are upserts by the
//! external-id field holding kontor's id).

use super::{clear_errors, links_by_record, report_errors, save_link, ErrorReport, SalesforceLink};
use crate::records::{Actor, Record, WriteOp};
use crate::{Store, StoreResult};
use kontor_domain::time::now_ms;
use kontor_domain::ChangeSource;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The kontor object types the integration syncs.
pub(crate) const SYNCED_TYPES: &[&str] = &["0-1", "0-2", "0-3", "0-27"];

/// A record to consider sending: its current state and its link, if any.
#[derive(Debug, Clone)]
pub struct PushCandidate {
    pub object_type: String,
    pub record: Record,
    pub link: Option<SalesforceLink>,
}

/// Salesforce's answer for one record.
#[derive(Debug, Clone)]
pub struct PushOutcome {
    pub object_type: String,
    pub record_id: i64,
    pub sf_type: String,
    /// The Salesforce record, when the write succeeded.
    pub sf_id: Option<String>,
    /// The values now in Salesforce, by kontor property (merged into the link's).
    pub synced: Map<String, Value>,
    /// Properties to set on the kontor record (its Salesforce ids, the last sync time).
    pub system: BTreeMap<String, Option<String>>,
    pub error: Option<ErrorReport>,
    /// The Salesforce record is gone: drop the link.
    pub unlink: bool,
}

impl Store {
    /// Records of the synced types changed after `after_seq` by anything but the sync (at most
    /// `limit` change-log entries read), plus those whose push error is due for a retry.
    /// Returns them with the last entry read, which [`Store::ack_salesforce_push`] makes the
    /// new cursor.
    pub async fn salesforce_push_candidates(
        &self,
        account: i64,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<(Vec<PushCandidate>, i64)> {
        let rows: Vec<(i64, String, i64, String)> = sqlx::query_as(
            "SELECT seq, object_type, record_id, source FROM changes WHERE account_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(account)
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let upto = rows.last().map_or(after_seq, |r| r.0);
        let mut wanted: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
        for (_, t, id, source) in rows {
            if source != ChangeSource::Salesforce.as_str() && SYNCED_TYPES.contains(&t.as_str()) {
                wanted.entry(t).or_default().insert(id);
            }
        }
        let due: Vec<(String, i64)> = sqlx::query_as(
            "SELECT object_type, record_id FROM salesforce_errors WHERE account_id = $1 AND direction = 'push' AND retry_at IS NOT NULL AND retry_at <= $2 AND record_id IS NOT NULL",
        )
        .bind(account)
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?;
        for (t, id) in due {
            wanted.entry(t).or_default().insert(id);
        }
        let mut out = Vec::new();
        for (t, ids) in wanted {
            let Some(ot) = self.object_type(account, &t).await? else {
                continue;
            };
            let ids: Vec<i64> = ids.into_iter().collect();
            let mut records = self.records_by_ids(account, &ot, &ids, false).await?;
            records.extend(self.records_by_ids(account, &ot, &ids, true).await?);
            let links: HashMap<i64, SalesforceLink> = {
                let mut c = self.pool.acquire().await?;
                links_by_record(&mut c, account, &t, &ids)
                    .await?
                    .into_iter()
                    .map(|l| (l.record_id, l))
                    .collect()
            };
            for r in records {
                out.push(PushCandidate {
                    object_type: t.clone(),
                    link: links.get(&r.id).cloned(),
                    record: r,
                });
            }
        }
        Ok((out, upto))
    }

    /// Records Salesforce's answers and moves the push cursor from `from_seq` to `upto_seq`,
    /// in one transaction. `false` (nothing written) when the cursor was moved meanwhile.
    pub async fn ack_salesforce_push(
        &self,
        account: i64,
        org: &str,
        from_seq: i64,
        upto_seq: i64,
        outcomes: &[PushOutcome],
    ) -> StoreResult<bool> {
        let now = now_ms();
        let actor = Actor {
            source: ChangeSource::Salesforce,
            source_id: Some(org.to_string()),
            user_id: None,
        };
        // The Salesforce ids and sync time go on the records, by type.
        let mut by_type: BTreeMap<&str, Vec<&PushOutcome>> = BTreeMap::new();
        for o in outcomes
            .iter()
            .filter(|o| o.error.is_none() && !o.system.is_empty())
        {
            by_type.entry(o.object_type.as_str()).or_default().push(o);
        }
        let mut types = Vec::new();
        for t in by_type.keys() {
            if let Some(ot) = self.object_type(account, t).await? {
                let defs = self.properties(account, t, false).await?;
                types.push((ot, defs));
            }
        }
        let mut tx = self.write().await?;
        let n = sqlx::query("UPDATE salesforce_connections SET push_seq = $1 WHERE account_id = $2 AND push_seq = $3")
            .bind(upto_seq)
            .bind(account)
            .bind(from_seq)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            tx.commit().await?;
            return Ok(false);
        }
        for (ot, defs) in &types {
            let ops: Vec<WriteOp> = by_type[ot.type_id.as_str()]
                .iter()
                .map(|o| WriteOp::Update {
                    id: o.record_id,
                    props: o.system.clone(),
                })
                .collect();
            // A record archived meanwhile is left as it is.
            let live: BTreeSet<i64> = {
                let ids: Vec<i64> = by_type[ot.type_id.as_str()]
                    .iter()
                    .map(|o| o.record_id)
                    .collect();
                let mut live = BTreeSet::new();
                for chunk in ids.chunks(500) {
                    let sql = format!(
                        "SELECT id FROM records WHERE account_id = $1 AND object_type = $2 AND archived = 0 AND id IN ({})",
                        crate::records::in_list(3, chunk.len())
                    );
                    let mut q = sqlx::query_as::<_, (i64,)>(&sql)
                        .bind(account)
                        .bind(&ot.type_id);
                    for id in chunk {
                        q = q.bind(id);
                    }
                    live.extend(q.fetch_all(&mut *tx).await?.into_iter().map(|r| r.0));
                }
                live
            };
            let ops = ops
                .into_iter()
                .filter(|op| matches!(op, WriteOp::Update { id, .. } if live.contains(id)))
                .collect();
            self.apply_in(&mut tx, account, ot, defs, ops, &actor, None)
                .await?;
        }
        let mut cleared = Vec::new();
        let mut errors = Vec::new();
        for o in outcomes {
            if o.unlink {
                sqlx::query("DELETE FROM salesforce_links WHERE account_id = $1 AND object_type = $2 AND record_id = $3")
                    .bind(account)
                    .bind(&o.object_type)
                    .bind(o.record_id)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(e) = &o.error {
                errors.push(e.clone());
                continue;
            }
            cleared.push(format!("{}:{}", o.object_type, o.record_id));
            let Some(sf_id) = &o.sf_id else { continue };
            let old: Option<(String,)> = sqlx::query_as(
                "SELECT synced FROM salesforce_links WHERE account_id = $1 AND sf_id = $2",
            )
            .bind(account)
            .bind(sf_id)
            .fetch_optional(&mut *tx)
            .await?;
            let mut synced: Map<String, Value> = match old {
                Some((s,)) => serde_json::from_str(&s)?,
                None => Map::new(),
            };
            synced.extend(o.synced.clone());
            save_link(
                &mut tx,
                account,
                &SalesforceLink {
                    sf_id: sf_id.clone(),
                    sf_type: o.sf_type.clone(),
                    object_type: o.object_type.clone(),
                    record_id: o.record_id,
                    synced,
                    synced_at: now,
                },
            )
            .await?;
        }
        clear_errors(&mut tx, account, "push", &cleared).await?;
        report_errors(&mut tx, account, &errors, now).await?;
        tx.commit().await?;
        Ok(true)
    }
}
