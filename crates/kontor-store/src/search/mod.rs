//! Running a search (`POST /crm/v3/objects/{type}/search`, the console's lists).
//!
//! A request is bounded before it gets here (`kontor_domain::search`). Nothing to filter or
//! sort → the id index. Otherwise the search index answers (`index.rs` what it holds,
//! `indexer.rs` how it follows the change log, `plan.rs` and `exec.rs` how a request becomes
//! look-ups), the matcher deciding the records changed since the index caught up and the
//! filters the index cannot answer; an account whose index is far behind is matched record by
//! record (`scan.rs`). The matcher's CPU work runs on a blocking thread fed by the database
//! stream, so the async workers that answer every other request are never held, and the whole
//! search stops at a deadline ([`SEARCH_DEADLINE`]) with [`StoreError::TimedOut`].

pub(crate) mod build;
mod exec;
mod grams;
pub(crate) mod index;
pub mod indexer;
mod plan;
mod scan;
mod sort_keys;
pub(crate) use sort_keys::SortKeys;

use crate::objects::ObjectType;
use crate::records::{record_from, Record, RecordRow, RECORD_COLS};
use crate::{Store, StoreError, StoreResult};
use kontor_domain::search::SearchRequest;
use kontor_domain::PropertyType;
use scan::Scan;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long one search may take.
pub const SEARCH_DEADLINE: Duration = Duration::from_secs(10);

/// The sizes at which a search changes strategy (see `exec.rs`). The defaults suit any
/// account; tests make them tiny so that a few records take every path.
#[derive(Debug, Clone, Copy)]
pub struct SearchTuning {
    /// A look-up's records are counted up to this many to choose where its group starts.
    pub estimate_cap: i64,
    /// A look-up this small starts its group without counting the others.
    pub small: i64,
    /// A look-up finding more than this many records is not read whole to be intersected.
    pub list_cap: usize,
    /// A sorted answer of up to this many records is sorted in the store, from one read of
    /// their keys; a larger one is sorted by the database.
    pub keyed_cap: usize,
    /// Bytes of property keys kept in memory, for sorts and broad filters (see
    /// `sort_keys.rs`); 0: none.
    pub sort_key_memory: usize,
    /// Whether a search that finds no sort keys in memory makes them itself, rather than in
    /// the background (tests).
    pub sort_keys_at_once: bool,
}

impl Default for SearchTuning {
    fn default() -> Self {
        Self {
            estimate_cap: 1_000,
            small: 50,
            // A `query` word of a common name finds ~50,000 rows at a million contacts (first
            // or last name, company, e-mail words); reading 200,000 ids costs ~20 ms, far less
            // than probing another list's records one by one.
            list_cap: 200_000,
            keyed_cap: 5_000,
            // A property's keys for 1,000,000 contacts take about 30 MB.
            sort_key_memory: 256 << 20,
            sort_keys_at_once: false,
        }
    }
}

impl Store {
    /// This handle with other search strategy sizes.
    pub fn with_search_tuning(&self, tuning: SearchTuning) -> Store {
        let mut s = self.clone();
        s.search_tuning = tuning;
        s
    }

    /// Runs a search. Returns the total number of matches and the requested page.
    pub async fn search(
        &self,
        account: i64,
        ot: &ObjectType,
        req: &SearchRequest,
    ) -> StoreResult<(usize, Vec<Record>)> {
        self.search_until(account, ot, req, Instant::now() + SEARCH_DEADLINE)
            .await
    }

    /// [`Self::search`] with the deadline given.
    pub async fn search_until(
        &self,
        account: i64,
        ot: &ObjectType,
        req: &SearchRequest,
        deadline: Instant,
    ) -> StoreResult<(usize, Vec<Record>)> {
        self.search_with(account, ot, req, deadline, true).await
    }

    /// The matcher alone over every record of the type, the index unused: the answer the
    /// index must give (for tests, and for checking an index by hand).
    pub async fn search_scan(
        &self,
        account: i64,
        ot: &ObjectType,
        req: &SearchRequest,
    ) -> StoreResult<(usize, Vec<Record>)> {
        self.search_with(account, ot, req, Instant::now() + SEARCH_DEADLINE, false)
            .await
    }

    async fn search_with(
        &self,
        account: i64,
        ot: &ObjectType,
        req: &SearchRequest,
        deadline: Instant,
        indexed: bool,
    ) -> StoreResult<(usize, Vec<Record>)> {
        let defs = self.properties(account, &ot.type_id, false).await?;
        let kinds: HashMap<String, PropertyType> =
            defs.iter().map(|d| (d.name.clone(), d.kind)).collect();
        for (name, field) in req.referenced_properties() {
            if !kinds.contains_key(name) {
                if kontor_domain::pipeline::stage_property(name).is_some() {
                    return Err(StoreError::validation(
                        "VALIDATION_ERROR",
                        format!("{field}: {name} is calculated from each record's history when it is read; searches cannot filter or sort by it"),
                        Some(field),
                    ));
                }
                return Err(StoreError::validation(
                    "PROPERTY_DOESNT_EXIST",
                    format!("{field}: property {name:?} does not exist on {}", ot.name),
                    Some(field),
                ));
            }
        }
        // Fast path: nothing to filter or sort, so the id index answers it.
        if indexed
            && req.filter_groups.is_empty()
            && req.query.is_none()
            && req
                .sorts
                .iter()
                .all(|s| s.property == "hs_object_id" && !s.descending)
        {
            let total = self.count_records(account, ot, false).await? as usize;
            let rows: Vec<RecordRow> = sqlx::query_as(&format!(
                "SELECT {RECORD_COLS} FROM records WHERE account_id = $1 AND object_type = $2 AND archived = 0 ORDER BY id LIMIT $3 OFFSET $4"
            ))
            .bind(account)
            .bind(&ot.type_id)
            .bind(req.limit as i64)
            .bind(req.after as i64)
            .fetch_all(&self.pool)
            .await?;
            return Ok((
                total,
                rows.into_iter()
                    .map(record_from)
                    .collect::<StoreResult<_>>()?,
            ));
        }
        // The index's cursor first, then what changed past it (see `indexer`).
        let indexer::IndexState { at, head, building } =
            self.index_state(account, &ot.type_id).await?;
        let behind = head - at.cursor;
        // Too far behind to patch: every record is matched.
        let indexed = indexed && behind <= indexer::MAX_DELTA;
        let delta = match behind {
            0 => Vec::new(),
            _ if !indexed => Vec::new(),
            _ => self.index_delta(account, &ot.type_id, at.cursor).await?,
        };
        let searchable: Vec<String> = ot
            .searchable
            .iter()
            .filter(|p| kinds.contains_key(p.as_str()))
            .cloned()
            .collect();
        let groups = plan::plan(req, &kinds, &searchable, &building);
        let sort = req
            .sorts
            .first()
            .map(|s| (s.property.clone(), s.descending));
        let scan = Scan {
            keep: req.after.saturating_add(req.limit).max(1),
            req: req.clone(),
            kinds,
            searchable,
            total: 0,
            matched: Vec::new(),
            deadline,
        };
        // A group with a filter no value can meet matches nothing.
        let filtered = !groups.is_empty();
        let groups: Vec<_> = groups.into_iter().filter(|g| !g.never).collect();
        let (total, page_ids) = if !indexed {
            self.scan(account, ot, scan).await?
        } else if filtered && groups.is_empty() {
            (0, Vec::new())
        } else {
            self.run_plan(account, ot, groups, sort, &building, at, delta, scan)
                .await?
        };
        let mut by_id: HashMap<i64, Record> = self
            .records_by_ids(account, ot, &page_ids, false)
            .await?
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
        let page = page_ids.iter().filter_map(|id| by_id.remove(id)).collect();
        Ok((total, page))
    }
}
