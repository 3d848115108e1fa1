//! Running a search (`POST /crm/v3/objects/{type}/search`, the console's list filters).
//!
//! A request is bounded before it gets here (`kontor_domain::search`). Three paths:
//! nothing to filter or sort → the id index; every filter group pinned by a unique value → those
//! records only; otherwise a scan of the object type. The scan's CPU work (decoding each
//! record's properties, matching, keeping the best page) runs on a blocking thread fed by the
//! database stream, so the async workers that answer every other request are never held, and
//! the whole search stops at a deadline ([`SEARCH_DEADLINE`]) with [`StoreError::TimedOut`].

use crate::objects::ObjectType;
use crate::records::{record_from, Record, RecordRow, RECORD_COLS};
use crate::{Store, StoreError, StoreResult};
use futures_util::TryStreamExt;
use kontor_domain::search::{self, SearchRequest};
use kontor_domain::PropertyType;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

/// How long one search may take.
pub const SEARCH_DEADLINE: Duration = Duration::from_secs(10);

/// Rows handed to the matching thread at a time.
const BATCH: usize = 256;

type Entry = (Vec<Option<String>>, i64);

/// The matching half of a search: owns what it needs, so it can run on another thread.
struct Scan {
    req: SearchRequest,
    kinds: HashMap<String, PropertyType>,
    searchable: Vec<String>,
    keep: usize,
    total: usize,
    matched: Vec<Entry>,
    deadline: Instant,
}

impl Scan {
    fn matches(&self, id: i64, props: &BTreeMap<String, String>) -> bool {
        let groups_ok = self.req.filter_groups.is_empty()
            || self.req.filter_groups.iter().any(|g| {
                g.iter().all(|f| {
                    f.matches(
                        self.kinds[f.property.as_str()],
                        props.get(&f.property).map(String::as_str),
                    )
                })
            });
        groups_ok
            && self.req.query.as_deref().is_none_or(|q| {
                let id = id.to_string();
                let values = self
                    .searchable
                    .iter()
                    .filter_map(|p| props.get(p).map(String::as_str))
                    .chain(std::iter::once(id.as_str()));
                search::query_matches(q, values)
            })
    }

    fn order(&self, (ka, ia): &Entry, (kb, ib): &Entry) -> std::cmp::Ordering {
        for (i, s) in self.req.sorts.iter().enumerate() {
            let o = search::sort_order(
                self.kinds[s.property.as_str()],
                ka[i].as_deref(),
                kb[i].as_deref(),
            );
            let o = if s.descending { o.reverse() } else { o };
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        }
        ia.cmp(ib)
    }

    /// Counts a record and keeps its sort key when it matches. Only the page's worth of the
    /// best matches is kept: past twice that, the list is sorted and cut back, so a search
    /// holds at most 2 × (after + limit) sort keys however many records match.
    fn offer(&mut self, id: i64, props: &BTreeMap<String, String>) {
        if !self.matches(id, props) {
            return;
        }
        let key = self
            .req
            .sorts
            .iter()
            .map(|s| props.get(&s.property).cloned())
            .collect();
        self.total += 1;
        self.matched.push((key, id));
        if self.matched.len() >= 2 * self.keep {
            self.cut();
        }
    }

    fn cut(&mut self) {
        let mut matched = std::mem::take(&mut self.matched);
        matched.sort_by(|a, b| self.order(a, b));
        matched.truncate(self.keep);
        self.matched = matched;
    }

    fn check_deadline(&self) -> StoreResult<()> {
        if Instant::now() > self.deadline {
            return Err(timed_out());
        }
        Ok(())
    }

    /// The ids of the requested page, best first.
    fn page(mut self) -> (usize, Vec<i64>) {
        self.cut();
        let ids = self
            .matched
            .into_iter()
            .skip(self.req.after)
            .take(self.req.limit)
            .map(|(_, id)| id)
            .collect();
        (self.total, ids)
    }
}

fn timed_out() -> StoreError {
    StoreError::TimedOut(format!(
        "the search took longer than {} seconds: narrow it with filters on unique or fewer properties",
        SEARCH_DEADLINE.as_secs()
    ))
}

impl Store {
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
        if req.filter_groups.is_empty()
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
        // Index path: every group pins the record by id or by a unique value.
        let unique: HashSet<&str> = defs
            .iter()
            .filter(|d| d.has_unique_value)
            .map(|d| d.name.as_str())
            .collect();
        let mut candidates: Option<Vec<i64>> = (!req.filter_groups.is_empty()).then(Vec::new);
        for group in &req.filter_groups {
            let pin = group.iter().find(|f| {
                unique.contains(f.property.as_str())
                    && matches!(f.operator, search::Operator::Eq | search::Operator::In)
            });
            match (pin, candidates.as_mut()) {
                (Some(f), Some(c)) => {
                    let values: Vec<String> = if f.operator == search::Operator::Eq {
                        f.value.iter().cloned().collect()
                    } else {
                        f.values.clone()
                    };
                    c.extend(
                        self.lookup_unique(account, ot, &f.property, &values)
                            .await?
                            .into_values(),
                    );
                }
                _ => candidates = None,
            }
        }
        let mut scan = Scan {
            keep: req.after.saturating_add(req.limit).max(1),
            req: req.clone(),
            kinds,
            searchable: ot.searchable.clone(),
            total: 0,
            matched: Vec::new(),
            deadline,
        };
        let (total, page_ids) = match candidates {
            // A few pinned records: matched here, there is little to do.
            Some(mut ids) => {
                ids.sort_unstable();
                ids.dedup();
                for r in self.records_by_ids(account, ot, &ids, false).await? {
                    scan.offer(r.id, &r.props);
                }
                scan.page()
            }
            None => self.scan(account, ot, scan).await?,
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

    /// Streams the object type's records to `scan` running on a blocking thread.
    async fn scan(
        &self,
        account: i64,
        ot: &ObjectType,
        mut scan: Scan,
    ) -> StoreResult<(usize, Vec<i64>)> {
        let deadline = scan.deadline;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<(i64, String)>>(4);
        let matcher = tokio::task::spawn_blocking(move || -> StoreResult<(usize, Vec<i64>)> {
            while let Some(batch) = rx.blocking_recv() {
                scan.check_deadline()?;
                for (id, props) in batch {
                    let props: BTreeMap<String, String> = serde_json::from_str(&props)?;
                    scan.offer(id, &props);
                }
            }
            scan.check_deadline()?;
            Ok(scan.page())
        });
        let mut rows = sqlx::query_as::<_, (i64, String)>(
            "SELECT id, props FROM records WHERE account_id = $1 AND object_type = $2 AND archived = 0 ORDER BY id",
        )
        .bind(account)
        .bind(&ot.type_id)
        .fetch(&self.pool);
        let mut batch = Vec::with_capacity(BATCH);
        let fed: StoreResult<()> = async {
            while let Some(row) = rows.try_next().await? {
                batch.push(row);
                if batch.len() == BATCH {
                    if Instant::now() > deadline {
                        return Err(timed_out());
                    }
                    // The matcher stopped (deadline or bad data): its answer says why.
                    if tx.send(std::mem::take(&mut batch)).await.is_err() {
                        return Ok(());
                    }
                }
            }
            if !batch.is_empty() {
                let _ = tx.send(batch).await;
            }
            Ok(())
        }
        .await;
        drop(tx);
        drop(rows);
        let matched = matcher
            .await
            .map_err(|e| StoreError::Config(format!("search matcher: {e}")))?;
        fed?;
        matched
    }
}
