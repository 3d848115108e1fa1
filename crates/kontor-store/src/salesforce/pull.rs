//! Salesforce → kontor: a page of records read from Salesforce, applied with its links and
//! its cursor in one transaction, so that a sync killed anywhere resumes at the first page it
//! had not committed and never creates a record twice. Deletes and merges from the deleted
//! feed.

use super::{
    clear_errors, links_by_sf_id, report_errors, save_link, save_links, ErrorReport,
    SalesforceLink, RULE_ALWAYS_SF, RULE_NONE, RULE_PREFER_SF,
};
use crate::objects::ObjectType;
use crate::records::{normalize_properties, Actor, WriteOp};
use crate::{Store, StoreError, StoreResult};
use kontor_domain::property::PropertyDef;
use kontor_domain::time::now_ms;
use kontor_domain::ChangeSource;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

/// Where a Salesforce object's pull stands: the last record applied, in
/// (`SystemModstamp`, `Id`) order, and where the deleted feed's next window starts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PullCursor {
    /// `…000+0000` as Salesforce wrote it; empty before the first page.
    pub modstamp: String,
    pub last_id: String,
    pub deleted_from: String,
}

/// One Salesforce record as the sync engine maps it.
#[derive(Debug, Clone)]
pub struct PulledRecord {
    pub sf_id: String,
    pub sf_type: String,
    /// Mapped values by kontor property, each with its mapping's sync rule.
    pub values: Vec<(String, Option<String>, String)>,
    /// Values set whatever the rules say: the Salesforce ids, the last sync time.
    pub system: Map<String, Value>,
    /// An unlinked record is matched to the kontor record holding this e-mail.
    pub match_email: Option<String>,
    /// For a converted lead: the Contact it became, to which its link moves.
    pub converted_to: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PullOutcome {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub failed: usize,
    /// Converted leads whose link moved to their contact.
    pub relinked: usize,
}

/// The property that tells when a record last synced.
const SYNC_TIME: &str = "salesforcelastsynctime";

fn blank(v: &Option<String>) -> bool {
    v.as_deref().is_none_or(|s| s.trim().is_empty())
}

fn salesforce_actor(org: &str) -> Actor {
    Actor {
        source: ChangeSource::Salesforce,
        source_id: Some(org.to_string()),
        user_id: None,
    }
}

/// What a page becomes before it is written.
struct Planned {
    op: WriteOp,
    sf_id: String,
    sf_type: String,
    synced: Map<String, Value>,
    /// The record it updates (`None`: a create).
    record: Option<i64>,
}

impl Store {
    /// Applies one page read from Salesforce for kontor type `ot`, then moves `cursor`, in
    /// one transaction. Records that fail (a value kontor refuses, a duplicate) are recorded
    /// as sync errors and skipped; the rest are written.
    pub async fn apply_salesforce_pull(
        &self,
        account: i64,
        org: &str,
        ot: &ObjectType,
        sf_type: &str,
        rows: Vec<PulledRecord>,
        cursor: &PullCursor,
    ) -> StoreResult<PullOutcome> {
        let now = now_ms();
        let defs = self.properties(account, &ot.type_id, false).await?;
        let by_name: HashMap<&str, &PropertyDef> =
            defs.iter().map(|d| (d.name.as_str(), d)).collect();
        let mut outcome = PullOutcome::default();
        let mut errors = Vec::new();

        // Links, by the record's own id and, for converted leads, by the contact's.
        let mut ids: Vec<&str> = rows.iter().map(|r| r.sf_id.as_str()).collect();
        ids.extend(rows.iter().filter_map(|r| r.converted_to.as_deref()));
        let links: HashMap<String, SalesforceLink> = {
            let mut c = self.pool.acquire().await?;
            links_by_sf_id(&mut c, account, &ids)
                .await?
                .into_iter()
                .map(|l| (l.sf_id.clone(), l))
                .collect()
        };
        // Unlinked records with an e-mail: the kontor record holding it, if any.
        let emails: Vec<String> = rows
            .iter()
            .filter(|r| !links.contains_key(&r.sf_id))
            .filter_map(|r| r.match_email.clone())
            .collect();
        let mut by_email = if emails.is_empty() || !by_name.contains_key("email") {
            HashMap::new()
        } else {
            self.lookup_unique(account, ot, "email", &emails).await?
        };
        // One Salesforce record per kontor record: a record already linked to another one (a
        // lead and a contact with one e-mail, say) is not matched again, or the two would
        // take the link from each other round after round. The newcomer then fails as a
        // duplicate, listed among the sync errors.
        if !by_email.is_empty() {
            let ids: Vec<i64> = by_email.values().copied().collect();
            let mut c = self.pool.acquire().await?;
            let taken: std::collections::HashSet<i64> =
                super::links_by_record(&mut c, account, &ot.type_id, &ids)
                    .await?
                    .into_iter()
                    .map(|l| l.record_id)
                    .collect();
            by_email.retain(|_, id| !taken.contains(id));
        }
        let mut record_ids: Vec<i64> = links
            .values()
            .filter(|l| l.object_type == ot.type_id)
            .map(|l| l.record_id)
            .collect();
        record_ids.extend(by_email.values());
        let current: HashMap<i64, BTreeMap<String, String>> = self
            .records_by_ids(account, ot, &record_ids, false)
            .await?
            .into_iter()
            .map(|r| (r.id, r.props))
            .collect();

        let mut plans: Vec<Planned> = Vec::new();
        let mut relinks: Vec<SalesforceLink> = Vec::new();
        let mut linked_now: HashMap<i64, usize> = HashMap::new();
        for row in rows {
            // A converted lead hands its link to the contact it became, unless that contact
            // is already linked to a record of its own.
            if let Some(contact) = &row.converted_to {
                if let Some(l) = links.get(&row.sf_id) {
                    if !links.contains_key(contact) {
                        relinks.push(SalesforceLink {
                            sf_id: contact.clone(),
                            sf_type: "Contact".into(),
                            object_type: l.object_type.clone(),
                            record_id: l.record_id,
                            synced: l.synced.clone(),
                            synced_at: now,
                        });
                        outcome.relinked += 1;
                    }
                }
                outcome.unchanged += 1;
                continue;
            }
            let link = links
                .get(&row.sf_id)
                .filter(|l| l.object_type == ot.type_id && current.contains_key(&l.record_id));
            let target = link.map(|l| l.record_id).or_else(|| {
                row.match_email
                    .as_ref()
                    .and_then(|e| by_email.get(e))
                    .copied()
                    .filter(|id| current.contains_key(id))
            });
            // Two Salesforce records of one page matched to one kontor record: the second
            // waits for the next round, when the first is linked.
            if let Some(id) = target {
                if linked_now.insert(id, plans.len()).is_some() {
                    outcome.unchanged += 1;
                    continue;
                }
            }
            let mut raw = Map::new();
            let mut synced = link.map(|l| l.synced.clone()).unwrap_or_default();
            for (prop, value, rule) in &row.values {
                if rule == RULE_NONE {
                    continue;
                }
                raw.insert(
                    prop.clone(),
                    value.clone().map(Value::String).unwrap_or(Value::Null),
                );
            }
            for (k, v) in &row.system {
                raw.insert(k.clone(), v.clone());
            }
            let normalized = match normalize_properties(&by_name, &raw, "") {
                Ok(n) => n,
                Err(e) => {
                    errors.push(pull_error(ot, &row, target, &e));
                    outcome.failed += 1;
                    continue;
                }
            };
            let mut props = BTreeMap::new();
            let had_link = link.is_some();
            let now_props = target.and_then(|id| current.get(&id));
            for (prop, _, rule) in &row.values {
                let Some(v) = normalized.get(prop) else {
                    continue;
                };
                let k = now_props.and_then(|p| p.get(prop)).cloned();
                let s = synced
                    .get(prop)
                    .and_then(|x| x.as_str())
                    .map(str::to_string);
                let differs = v.as_deref().unwrap_or("") != k.as_deref().unwrap_or("");
                let take = match rule.as_str() {
                    RULE_ALWAYS_SF => differs,
                    RULE_PREFER_SF => differs && !blank(v),
                    // Two-way: Salesforce's value when it changed there since the last sync
                    // (on a first link, when it has one).
                    _ => {
                        differs
                            && if had_link {
                                v.as_deref().unwrap_or("") != s.as_deref().unwrap_or("")
                            } else {
                                !blank(v)
                            }
                    }
                };
                if take || (target.is_none() && !blank(v)) {
                    props.insert(prop.clone(), v.clone());
                }
                synced.insert(
                    prop.clone(),
                    v.clone().map(Value::String).unwrap_or(Value::Null),
                );
            }
            for k in row.system.keys().filter(|k| *k != SYNC_TIME) {
                if let Some(v) = normalized.get(k) {
                    let cur = now_props.and_then(|p| p.get(k));
                    if cur.map(String::as_str) != v.as_deref() {
                        props.insert(k.clone(), v.clone());
                    }
                }
            }
            // The sync time moves only with a write: a record read back unchanged (the echo
            // of kontor's own push) is not written again.
            if !props.is_empty() || target.is_none() {
                if let Some(v) = normalized.get(SYNC_TIME) {
                    props.insert(SYNC_TIME.into(), v.clone());
                }
            }
            let op = match target {
                Some(id) => WriteOp::Update { id, props },
                None => WriteOp::Create {
                    id: None,
                    props,
                    associations: Vec::new(),
                },
            };
            plans.push(Planned {
                op,
                sf_id: row.sf_id,
                sf_type: row.sf_type,
                synced,
                record: target,
            });
        }

        let actor = salesforce_actor(org);
        match self
            .write_pull(
                account, ot, sf_type, &defs, &plans, &relinks, &actor, cursor, now,
            )
            .await
        {
            Ok(counts) => {
                outcome.created += counts.0;
                outcome.updated += counts.1;
                outcome.unchanged += counts.2;
                let mut tx = self.write().await?;
                report_errors(&mut tx, account, &errors, now).await?;
                tx.commit().await?;
            }
            Err(StoreError::Validation { .. } | StoreError::Conflict { .. }) => {
                // A record spoiled the page: write them one by one, record which failed, and
                // move the cursor past them all (a page of one included), so that one
                // record never holds the sync up.
                for p in plans {
                    match self
                        .write_pull(
                            account,
                            ot,
                            sf_type,
                            &defs,
                            std::slice::from_ref(&p),
                            &[],
                            &actor,
                            cursor,
                            now,
                        )
                        .await
                    {
                        Ok(c) => {
                            outcome.created += c.0;
                            outcome.updated += c.1;
                            outcome.unchanged += c.2;
                        }
                        Err(e @ (StoreError::Validation { .. } | StoreError::Conflict { .. })) => {
                            outcome.failed += 1;
                            errors.push(ErrorReport {
                                direction: "pull",
                                object_type: ot.type_id.clone(),
                                record_id: p.record,
                                sf_type: p.sf_type.clone(),
                                sf_id: Some(p.sf_id.clone()),
                                category: category_of(&e).into(),
                                code: code_of(&e),
                                message: e.to_string(),
                                retry_at: None,
                            });
                        }
                        Err(e) => return Err(e),
                    }
                }
                let mut tx = self.write().await?;
                for l in &relinks {
                    save_link(&mut tx, account, l).await?;
                }
                report_errors(&mut tx, account, &errors, now).await?;
                save_cursor(&mut tx, account, sf_type, cursor).await?;
                tx.commit().await?;
            }
            Err(e) => return Err(e),
        }
        Ok(outcome)
    }

    /// Writes planned records, their links and the cursor in one transaction; returns
    /// (created, updated, unchanged).
    #[allow(clippy::too_many_arguments)]
    async fn write_pull(
        &self,
        account: i64,
        ot: &ObjectType,
        sf_type: &str,
        defs: &[PropertyDef],
        plans: &[Planned],
        relinks: &[SalesforceLink],
        actor: &Actor,
        cursor: &PullCursor,
        now: i64,
    ) -> StoreResult<(usize, usize, usize)> {
        let ops: Vec<WriteOp> = plans
            .iter()
            .filter(|p| match &p.op {
                WriteOp::Update { props, .. } => !props.is_empty(),
                WriteOp::Create { .. } => true,
            })
            .map(|p| p.op.clone())
            .collect();
        let pre = self.pre_allocate(account, &ops).await?;
        let mut tx = self.write().await?;
        let written = self
            .apply_in(&mut tx, account, ot, defs, ops, actor, pre)
            .await?;
        // Creates come back in order, after the updates' places.
        let mut created_ids = written.iter().filter(|(_, new)| *new).map(|(r, _)| r.id);
        let (mut created, mut updated, mut unchanged) = (0, 0, 0);
        let mut cleared = Vec::new();
        let mut links = Vec::with_capacity(plans.len());
        for p in plans {
            let record_id = match (&p.op, p.record) {
                (WriteOp::Update { props, .. }, Some(id)) => {
                    if props.is_empty() {
                        unchanged += 1;
                    } else {
                        updated += 1;
                    }
                    id
                }
                _ => {
                    created += 1;
                    created_ids.next().ok_or_else(|| {
                        StoreError::Config("a created record came back without its id".into())
                    })?
                }
            };
            links.push(SalesforceLink {
                sf_id: p.sf_id.clone(),
                sf_type: p.sf_type.clone(),
                object_type: ot.type_id.clone(),
                record_id,
                synced: p.synced.clone(),
                synced_at: now,
            });
            cleared.push(p.sf_id.clone());
        }
        // A converted lead's link moves after the page's own links (one of them may be the
        // contact it moves to).
        links.extend(relinks.iter().cloned());
        save_links(&mut tx, account, &links).await?;
        clear_errors(&mut tx, account, "pull", &cleared).await?;
        save_cursor(&mut tx, account, sf_type, cursor).await?;
        tx.commit().await?;
        Ok((created, updated, unchanged))
    }

    /// Records deleted in Salesforce: a merge's loser is merged into the record linked to its
    /// master, any other linked record goes to the recycle bin; the link goes. Then the
    /// deleted feed's cursor moves. Repeating it changes nothing more.
    pub async fn apply_salesforce_deletes(
        &self,
        account: i64,
        org: &str,
        sf_type: &str,
        deleted: &[(String, Option<String>)],
        cursor: &PullCursor,
    ) -> StoreResult<(usize, usize)> {
        let actor = salesforce_actor(org);
        let mut ids: Vec<&str> = deleted.iter().map(|(id, _)| id.as_str()).collect();
        ids.extend(deleted.iter().filter_map(|(_, m)| m.as_deref()));
        let links: HashMap<String, SalesforceLink> = {
            let mut c = self.pool.acquire().await?;
            links_by_sf_id(&mut c, account, &ids)
                .await?
                .into_iter()
                .map(|l| (l.sf_id.clone(), l))
                .collect()
        };
        let (mut archived, mut merged) = (0, 0);
        let mut gone = Vec::new();
        for (id, master) in deleted {
            let Some(l) = links.get(id) else { continue };
            let Some(ot) = self.object_type(account, &l.object_type).await? else {
                continue;
            };
            let into = master
                .as_ref()
                .and_then(|m| links.get(m))
                .filter(|m| m.object_type == l.object_type && m.record_id != l.record_id);
            match into {
                Some(m) => {
                    match self
                        .merge_records(account, &ot, m.record_id, l.record_id, &actor)
                        .await
                    {
                        Ok(_) => merged += 1,
                        // Already merged or gone here: nothing left to do.
                        Err(StoreError::NotFound(_) | StoreError::Validation { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                None => {
                    archived += self
                        .archive_records(account, &ot, &[l.record_id], &actor)
                        .await?
                        .len();
                }
            }
            gone.push(id.clone());
        }
        let mut tx = self.write().await?;
        for chunk in gone.chunks(500) {
            let sql = format!(
                "DELETE FROM salesforce_links WHERE account_id = $1 AND sf_id IN ({})",
                crate::records::in_list(2, chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(account);
            for s in chunk {
                q = q.bind(s);
            }
            q.execute(&mut *tx).await?;
        }
        save_cursor(&mut tx, account, sf_type, cursor).await?;
        tx.commit().await?;
        Ok((archived, merged))
    }
}

/// Saves the cursor of one Salesforce object.
pub(crate) async fn save_cursor(
    tx: &mut sqlx::AnyConnection,
    account: i64,
    key: &str,
    c: &PullCursor,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO salesforce_cursors (account_id, sf_type, modstamp, last_id, deleted_from, updated_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account_id, sf_type) DO UPDATE SET modstamp = excluded.modstamp, last_id = excluded.last_id, deleted_from = excluded.deleted_from, updated_at = excluded.updated_at")
        .bind(account)
        .bind(key)
        .bind(&c.modstamp)
        .bind(&c.last_id)
        .bind(&c.deleted_from)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
    Ok(())
}

fn category_of(e: &StoreError) -> &'static str {
    match e {
        StoreError::Conflict { .. } => "Duplicates",
        StoreError::Validation { code, .. } if code.contains("OWNER") => "Owner",
        _ => "Property value",
    }
}

fn code_of(e: &StoreError) -> String {
    match e {
        StoreError::Validation { code, .. } => code.clone(),
        StoreError::Conflict { .. } => "DUPLICATE_VALUE".into(),
        _ => "ERROR".into(),
    }
}

fn pull_error(
    ot: &ObjectType,
    row: &PulledRecord,
    target: Option<i64>,
    e: &StoreError,
) -> ErrorReport {
    ErrorReport {
        direction: "pull",
        object_type: ot.type_id.clone(),
        record_id: target,
        sf_type: row.sf_type.clone(),
        sf_id: Some(row.sf_id.clone()),
        category: category_of(e).into(),
        code: code_of(e),
        message: e.to_string(),
        retry_at: None,
    }
}
