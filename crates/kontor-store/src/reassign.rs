//! Salesforce-only owners (owners that came from Salesforce and have no user here) and moving
//! their records to owners who are users: a reassignment is one durable job that writes each
//! record it moves, with the owner it had, beside the record's change in one transaction, so
//! that it resumes after a crash where it stopped and can be reverted exactly (a record someone
//! gave another owner since is left alone). The owner cleanup then removes the Salesforce-only
//! owners nothing references any more.

use crate::owners::{owner_from, OwnerRow, OWNER_COLS};
use crate::records::{in_list, values_clause, Actor, WriteOp};
use crate::{Owner, Store, StoreError, StoreResult};
use kontor_domain::time::now_ms;
use kontor_domain::ChangeSource;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};

pub const JOB_KIND_OWNER_REASSIGN: &str = "owner_reassign";
/// An owner that came from Salesforce (`owners.origin`).
pub const ORIGIN_SALESFORCE: &str = "salesforce";

/// A Salesforce-only owner and the records that reference it, per object type id: (live, in
/// the recycle bin).
#[derive(Debug, Clone)]
pub struct SalesforceOwner {
    pub owner: Owner,
    pub records: BTreeMap<String, (i64, i64)>,
}

impl SalesforceOwner {
    pub fn live(&self) -> i64 {
        self.records.values().map(|(l, _)| l).sum()
    }
    pub fn binned(&self) -> i64 {
        self.records.values().map(|(_, b)| b).sum()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reassignment {
    pub account_id: i64,
    pub id: i64,
    pub job_id: i64,
    /// `queued`, `running`, `done` or `failed`.
    pub state: String,
    /// (from owner, to owner).
    pub assignments: Vec<(i64, i64)>,
    /// The reassignment this one reverts.
    pub reverts: Option<i64>,
    pub reverted_by: Option<i64>,
    pub moved: i64,
    pub skipped: i64,
    pub after_id: i64,
    pub error: Option<String>,
    pub created_by: Option<i64>,
    pub created_by_name: String,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

const COLS: &str = "account_id, id, job_id, state, assignments, reverts, reverted_by, moved, skipped, after_id, error, created_by, created_by_name, created_at, finished_at";

fn reassignment_from(r: sqlx::any::AnyRow) -> StoreResult<Reassignment> {
    use sqlx::Row;
    Ok(Reassignment {
        account_id: r.try_get("account_id")?,
        id: r.try_get("id")?,
        job_id: r.try_get("job_id")?,
        state: r.try_get("state")?,
        assignments: serde_json::from_str(&r.try_get::<String, _>("assignments")?)?,
        reverts: r.try_get("reverts")?,
        reverted_by: r.try_get("reverted_by")?,
        moved: r.try_get("moved")?,
        skipped: r.try_get("skipped")?,
        after_id: r.try_get("after_id")?,
        error: r.try_get("error")?,
        created_by: r.try_get("created_by")?,
        created_by_name: r.try_get("created_by_name")?,
        created_at: r.try_get("created_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}

fn invalid(message: impl Into<String>, field: &str) -> StoreError {
    StoreError::validation("INVALID_REASSIGNMENT", message, Some(field.to_string()))
}

impl Store {
    /// Per Salesforce-only owner (not removed), the records referencing it per object type id:
    /// (live, in the recycle bin). Owners no record references are absent.
    pub async fn salesforce_only_owner_records(
        &self,
        account: i64,
    ) -> StoreResult<BTreeMap<i64, BTreeMap<String, (i64, i64)>>> {
        let sql = format!(
            "SELECT object_type, {v}, COUNT(*), CAST(COALESCE(SUM(archived), 0) AS BIGINT) FROM records WHERE account_id = $1 AND {v} IN (SELECT CAST(id AS TEXT) FROM owners WHERE account_id = $1 AND origin = $3 AND user_id IS NULL AND archived = 0) GROUP BY object_type, {v}",
            v = self.value_of(2)
        );
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(&sql)
            .bind(account)
            .bind("hubspot_owner_id")
            .bind(ORIGIN_SALESFORCE)
            .fetch_all(&self.pool)
            .await?;
        let mut out: BTreeMap<i64, BTreeMap<String, (i64, i64)>> = BTreeMap::new();
        for (t, owner, n, binned) in rows {
            if let Ok(o) = owner.parse::<i64>() {
                out.entry(o).or_default().insert(t, (n - binned, binned));
            }
        }
        Ok(out)
    }

    /// The Salesforce-only owners not removed, with what references them.
    pub async fn salesforce_only_owners(&self, account: i64) -> StoreResult<Vec<SalesforceOwner>> {
        let owners: Vec<OwnerRow> = sqlx::query_as(&format!("SELECT {OWNER_COLS} FROM owners WHERE account_id = $1 AND origin = $2 AND user_id IS NULL AND archived = 0 ORDER BY id"))
            .bind(account)
            .bind(ORIGIN_SALESFORCE)
            .fetch_all(&self.pool)
            .await?;
        let mut refs = self.salesforce_only_owner_records(account).await?;
        Ok(owners
            .into_iter()
            .map(owner_from)
            .map(|o| SalesforceOwner {
                records: refs.remove(&o.id).unwrap_or_default(),
                owner: o,
            })
            .collect())
    }

    /// Queues a reassignment of the live records of Salesforce-only owners to owners who are
    /// users (`assignments`: from → to), with its job. Refused while another one is open.
    pub async fn request_owner_reassignment(
        &self,
        account: i64,
        assignments: &[(i64, i64)],
        source: ChangeSource,
        by_user: Option<i64>,
        by_name: &str,
    ) -> StoreResult<Reassignment> {
        if assignments.is_empty() {
            return Err(invalid(
                "Choose a user for at least one Salesforce owner.",
                "assignments",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (k, (from, to)) in assignments.iter().enumerate() {
            if !seen.insert(*from) {
                return Err(invalid(
                    format!("Owner {from} is reassigned twice."),
                    &format!("assignments[{k}].fromOwnerId"),
                ));
            }
            let f: Option<(i64,)> = sqlx::query_as("SELECT id FROM owners WHERE account_id = $1 AND id = $2 AND origin = $3 AND user_id IS NULL AND archived = 0")
                .bind(account)
                .bind(*from)
                .bind(ORIGIN_SALESFORCE)
                .fetch_optional(&self.pool)
                .await?;
            if f.is_none() {
                return Err(invalid(
                    format!("Owner {from} is not a Salesforce-only owner of this account."),
                    &format!("assignments[{k}].fromOwnerId"),
                ));
            }
            let t: Option<(i64,)> = sqlx::query_as("SELECT id FROM owners WHERE account_id = $1 AND id = $2 AND user_id IS NOT NULL AND archived = 0")
                .bind(account)
                .bind(*to)
                .fetch_optional(&self.pool)
                .await?;
            if t.is_none() {
                return Err(invalid(
                    format!("Owner {to} is not an owner who is a user of this account."),
                    &format!("assignments[{k}].toOwnerId"),
                ));
            }
        }
        let message = format!(
            "Reassigning the records of {} Salesforce owner(s): {}",
            assignments.len(),
            assignments
                .iter()
                .map(|(f, t)| format!("{f} → {t}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        self.queue_reassignment(
            account,
            assignments,
            None,
            source,
            by_user,
            by_name,
            &message,
        )
        .await
    }

    /// Queues the revert of a finished reassignment: each record it moved goes back to the
    /// owner it had, unless someone gave it another owner since. The Salesforce owners it
    /// needs come back if the cleanup removed them.
    pub async fn request_reassignment_revert(
        &self,
        account: i64,
        id: i64,
        source: ChangeSource,
        by_user: Option<i64>,
        by_name: &str,
    ) -> StoreResult<Reassignment> {
        let r = self
            .reassignment(account, id)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("reassignment {id} does not exist")))?;
        if r.reverts.is_some() {
            return Err(invalid(
                format!("Reassignment {id} is itself a revert."),
                "id",
            ));
        }
        if r.state != "done" {
            return Err(invalid(
                format!(
                    "Reassignment {id} is {}: only a finished one can be reverted.",
                    r.state
                ),
                "id",
            ));
        }
        if let Some(by) = r.reverted_by {
            return Err(invalid(
                format!("Reassignment {id} was already reverted (by {by})."),
                "id",
            ));
        }
        let back: Vec<(i64, i64)> = r.assignments.iter().map(|(f, t)| (*t, *f)).collect();
        let message = format!("Reverting owner reassignment {id}");
        self.queue_reassignment(account, &back, Some(id), source, by_user, by_name, &message)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn queue_reassignment(
        &self,
        account: i64,
        assignments: &[(i64, i64)],
        reverts: Option<i64>,
        source: ChangeSource,
        by_user: Option<i64>,
        by_name: &str,
        message: &str,
    ) -> StoreResult<Reassignment> {
        let now = now_ms();
        let mut tx = self.write().await?;
        let open: Option<(i64,)> = sqlx::query_as("SELECT id FROM owner_reassignments WHERE account_id = $1 AND state IN ('queued', 'running') LIMIT 1")
            .bind(account)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some((other,)) = open {
            return Err(StoreError::Conflict {
                message: format!("Owner reassignment {other} is still running: start this one when it has finished."),
                existing_id: Some(other),
            });
        }
        if reverts.is_some() {
            // The owners the records go back to come back if the cleanup removed them.
            for (_, to) in assignments {
                sqlx::query("UPDATE owners SET archived = 0, updated_at = $1 WHERE account_id = $2 AND id = $3 AND origin = $4 AND archived = 1")
                    .bind(now)
                    .bind(account)
                    .bind(*to)
                    .bind(ORIGIN_SALESFORCE)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let id = crate::allocate(&mut tx, account, "owner_reassignment", 1).await?;
        let job_id = Self::insert_job(
            &mut tx,
            account,
            JOB_KIND_OWNER_REASSIGN,
            &json!({"reassignment": id, "source": source.as_str()}),
            now,
        )
        .await?;
        sqlx::query(&format!("INSERT INTO owner_reassignments ({COLS}) VALUES ($1, $2, $3, 'queued', $4, $5, NULL, 0, 0, 0, NULL, $6, $7, $8, NULL)"))
            .bind(account)
            .bind(id)
            .bind(job_id)
            .bind(serde_json::to_string(assignments)?)
            .bind(reverts)
            .bind(by_user)
            .bind(by_name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        Self::audit_in(
            &mut tx,
            account,
            by_user,
            by_name,
            if reverts.is_some() {
                "owners.reassign.revert"
            } else {
                "owners.reassign"
            },
            &format!("owner reassignment {id}"),
            &json!({"message": message, "assignments": assignments}),
        )
        .await?;
        tx.commit().await?;
        self.reassignment(account, id)
            .await?
            .ok_or_else(|| StoreError::not_found("reassignment"))
    }

    pub async fn reassignment(&self, account: i64, id: i64) -> StoreResult<Option<Reassignment>> {
        let row = sqlx::query(&format!(
            "SELECT {COLS} FROM owner_reassignments WHERE account_id = $1 AND id = $2"
        ))
        .bind(account)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(reassignment_from).transpose()
    }

    /// The account's reassignments, newest first.
    pub async fn reassignments(&self, account: i64, limit: i64) -> StoreResult<Vec<Reassignment>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM owner_reassignments WHERE account_id = $1 ORDER BY id DESC LIMIT $2"
        ))
        .bind(account)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(reassignment_from).collect()
    }

    /// Moves the next `limit` records (by id) of a reassignment the caller's job holds, each
    /// with its prior owner, and the reassignment's progress, in one transaction. `None`:
    /// nothing was left (the reassignment is complete); `Some(false)`: the lease was lost.
    pub async fn reassign_batch(
        &self,
        job: &crate::Job,
        owner: &str,
        r: &Reassignment,
        actor: &Actor,
        limit: i64,
    ) -> StoreResult<Option<bool>> {
        let account = r.account_id;
        let cur = self
            .reassignment(account, r.id)
            .await?
            .ok_or_else(|| StoreError::not_found("reassignment"))?;
        let map: HashMap<String, i64> = r
            .assignments
            .iter()
            .map(|(f, t)| (f.to_string(), *t))
            .collect();
        // (record, type, from, to): for a revert, what the reverted one moved (and which
        // must still have the owner it was given); else the live records of the owners.
        let todo: Vec<(i64, String, i64, i64)> = match r.reverts {
            Some(orig) => sqlx::query_as("SELECT record_id, object_type, to_owner, from_owner FROM owner_reassigned WHERE account_id = $1 AND reassignment_id = $2 AND record_id > $3 ORDER BY record_id LIMIT $4")
                .bind(account)
                .bind(orig)
                .bind(cur.after_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?,
            None => {
                let froms: Vec<String> = map.keys().cloned().collect();
                let sql = format!(
                    "SELECT id, object_type, {} FROM records WHERE account_id = $1 AND archived = 0 AND id > $3 AND {} IN ({}) ORDER BY id LIMIT $4",
                    self.value_of(2),
                    self.value_of(2),
                    in_list(5, froms.len())
                );
                let mut q = sqlx::query_as::<_, (i64, String, String)>(&sql)
                    .bind(account)
                    .bind("hubspot_owner_id")
                    .bind(cur.after_id)
                    .bind(limit);
                for f in &froms {
                    q = q.bind(f);
                }
                q.fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .filter_map(|(id, t, from)| {
                        let to = *map.get(&from)?;
                        Some((id, t, from.parse().ok()?, to))
                    })
                    .collect()
            }
        };
        let Some(last) = todo.last().map(|t| t.0) else {
            return Ok(None);
        };
        let mut by_type: BTreeMap<String, Vec<(i64, i64, i64)>> = BTreeMap::new();
        for (id, t, from, to) in todo {
            by_type.entry(t).or_default().push((id, from, to));
        }
        // Each type's schema, read before the write transaction opens.
        let mut schemas = HashMap::new();
        for t in by_type.keys() {
            if let Some(ot) = self.object_type(account, t).await? {
                let defs = self.properties(account, &ot.type_id, false).await?;
                schemas.insert(t.clone(), (ot, defs));
            }
        }
        let mut tx = self.write().await?;
        if !Self::holds_job(&mut tx, job, owner).await? {
            return Ok(Some(false));
        }
        let (mut moved, mut skipped) = (0i64, 0i64);
        for (t, items) in by_type {
            let Some((ot, defs)) = schemas.get(&t) else {
                skipped += items.len() as i64;
                continue;
            };
            // What each record's owner is now, read inside the transaction.
            let ids: Vec<i64> = items.iter().map(|(id, _, _)| *id).collect();
            let sql = format!(
                "SELECT id, {} FROM records WHERE account_id = $1 AND archived = 0 AND id IN ({})",
                self.value_of(2),
                in_list(3, ids.len())
            );
            let mut q = sqlx::query_as::<_, (i64, Option<String>)>(&sql)
                .bind(account)
                .bind("hubspot_owner_id");
            for id in &ids {
                q = q.bind(id);
            }
            let now_owner: HashMap<i64, Option<String>> =
                q.fetch_all(&mut *tx).await?.into_iter().collect();
            let mut ops = Vec::new();
            let mut rows = Vec::new();
            for (id, from, to) in items {
                if now_owner.get(&id).cloned().flatten() != Some(from.to_string()) {
                    skipped += 1;
                    continue;
                }
                let mut props = BTreeMap::new();
                props.insert("hubspot_owner_id".to_string(), Some(to.to_string()));
                ops.push(WriteOp::Update { id, props });
                rows.push((id, from, to));
            }
            if ops.is_empty() {
                continue;
            }
            self.apply_in(&mut tx, account, ot, defs, ops, actor, None)
                .await?;
            // One statement per 200 records: a round trip each on PostgreSQL.
            for chunk in rows.chunks(200) {
                let sql = format!("INSERT INTO owner_reassigned (account_id, reassignment_id, record_id, object_type, from_owner, to_owner) VALUES {} ON CONFLICT (account_id, reassignment_id, record_id) DO NOTHING", values_clause(chunk.len(), 6));
                let mut q = sqlx::query(&sql);
                for (id, from, to) in chunk {
                    q = q
                        .bind(account)
                        .bind(r.id)
                        .bind(*id)
                        .bind(&ot.type_id)
                        .bind(*from)
                        .bind(*to);
                }
                q.execute(&mut *tx).await?;
            }
            moved += rows.len() as i64;
        }
        sqlx::query("UPDATE owner_reassignments SET state = 'running', moved = moved + $1, skipped = skipped + $2, after_id = $3 WHERE account_id = $4 AND id = $5")
            .bind(moved)
            .bind(skipped)
            .bind(last)
            .bind(account)
            .bind(r.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(true))
    }

    /// Ends a reassignment the caller's job holds: done (a revert marks the one it reverted)
    /// or failed, with its audit entry.
    pub async fn finish_reassignment(
        &self,
        job: &crate::Job,
        owner: &str,
        r: &Reassignment,
        error: Option<&str>,
    ) -> StoreResult<bool> {
        let now = now_ms();
        let account = r.account_id;
        let mut tx = self.write().await?;
        if !Self::end_job(&mut tx, job, owner, error, now).await? {
            return Ok(false);
        }
        sqlx::query("UPDATE owner_reassignments SET state = $1, error = $2, finished_at = $3 WHERE account_id = $4 AND id = $5")
            .bind(if error.is_some() { "failed" } else { "done" })
            .bind(error)
            .bind(now)
            .bind(account)
            .bind(r.id)
            .execute(&mut *tx)
            .await?;
        if let (Some(orig), None) = (r.reverts, error) {
            sqlx::query(
                "UPDATE owner_reassignments SET reverted_by = $1 WHERE account_id = $2 AND id = $3",
            )
            .bind(r.id)
            .bind(account)
            .bind(orig)
            .execute(&mut *tx)
            .await?;
        }
        let done = self.reassignment(account, r.id).await?;
        let (moved, skipped) = done.map_or((0, 0), |d| (d.moved, d.skipped));
        let message = match error {
            Some(e) => format!("Owner reassignment {} failed: {e}", r.id),
            None => format!(
                "Owner reassignment {} finished: {moved} records moved, {skipped} left as they were (their owner had changed)",
                r.id
            ),
        };
        Self::audit_in(
            &mut tx,
            account,
            r.created_by,
            &r.created_by_name,
            "owners.reassign.end",
            &format!("owner reassignment {}", r.id),
            &json!({"message": message, "moved": moved, "skipped": skipped}),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Removes the Salesforce-only owners no record references (live or in the recycle bin),
    /// each checked inside the transaction that removes it. Returns the removed owners and the
    /// kept ones with the records still referencing them.
    pub async fn remove_salesforce_owners(
        &self,
        account: i64,
        by_user: Option<i64>,
        by_name: &str,
    ) -> StoreResult<(Vec<Owner>, Vec<SalesforceOwner>)> {
        let now = now_ms();
        let mut tx = self.write().await?;
        let owners: Vec<OwnerRow> = sqlx::query_as(&format!("SELECT {OWNER_COLS} FROM owners WHERE account_id = $1 AND origin = $2 AND user_id IS NULL AND archived = 0 ORDER BY id"))
            .bind(account)
            .bind(ORIGIN_SALESFORCE)
            .fetch_all(&mut *tx)
            .await?;
        let (mut removed, mut kept) = (Vec::new(), Vec::new());
        let sql = format!(
            "SELECT object_type, COUNT(*), CAST(COALESCE(SUM(archived), 0) AS BIGINT) FROM records WHERE account_id = $1 AND {} = $3 GROUP BY object_type",
            self.value_of(2)
        );
        for o in owners.into_iter().map(owner_from) {
            let refs: Vec<(String, i64, i64)> = sqlx::query_as(&sql)
                .bind(account)
                .bind("hubspot_owner_id")
                .bind(o.id.to_string())
                .fetch_all(&mut *tx)
                .await?;
            if refs.is_empty() {
                sqlx::query("UPDATE owners SET archived = 1, updated_at = $1 WHERE account_id = $2 AND id = $3")
                    .bind(now)
                    .bind(account)
                    .bind(o.id)
                    .execute(&mut *tx)
                    .await?;
                removed.push(o);
            } else {
                kept.push(SalesforceOwner {
                    owner: o,
                    records: refs.into_iter().map(|(t, n, b)| (t, (n - b, b))).collect(),
                });
            }
        }
        let message = format!(
            "Removed {} Salesforce owner(s) no record references{}",
            removed.len(),
            if kept.is_empty() {
                String::new()
            } else {
                format!(
                    "; kept {} that records still reference ({})",
                    kept.len(),
                    kept.iter()
                        .map(|k| format!(
                            "{}: {} live, {} in the recycle bin",
                            k.owner.id,
                            k.live(),
                            k.binned()
                        ))
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            }
        );
        Self::audit_in(
            &mut tx,
            account,
            by_user,
            by_name,
            "owners.salesforce.remove",
            "salesforce owners",
            &json!({"message": message, "removed": removed.iter().map(|o| o.id).collect::<Vec<_>>()}),
        )
        .await?;
        tx.commit().await?;
        Ok((removed, kept))
    }
}
