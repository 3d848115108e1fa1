//! The matcher's side of a search: a [`Scan`] matches records (from a scan of the type, or
//! the candidates an index found) and keeps the best page of them.

use super::SEARCH_DEADLINE;
use crate::objects::ObjectType;
use crate::{Store, StoreError, StoreResult};
use futures_util::TryStreamExt;
use kontor_domain::search::{self, SearchRequest};
use kontor_domain::PropertyType;
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

/// Rows handed to the matching thread at a time.
const BATCH: usize = 256;

type Entry = (Vec<Option<String>>, i64);

/// The matching half of a search: owns what it needs, so it can run on another thread.
pub(super) struct Scan {
    pub(super) req: SearchRequest,
    pub(super) kinds: HashMap<String, PropertyType>,
    pub(super) searchable: Vec<String>,
    pub(super) keep: usize,
    pub(super) total: usize,
    pub(super) matched: Vec<Entry>,
    pub(super) deadline: Instant,
}

impl Scan {
    pub(super) fn matches(&self, id: i64, props: &BTreeMap<String, String>) -> bool {
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
                let values = self
                    .searchable
                    .iter()
                    .filter_map(|p| props.get(p).map(String::as_str));
                search::query_matches(q, Some(id), values)
            })
    }

    /// A record's key under the request's sort, as the index keys it.
    pub(super) fn sort_key(&self, props: &BTreeMap<String, String>) -> Option<String> {
        let s = self.req.sorts.first()?;
        let v = props.get(&s.property)?;
        Some(search::keys::value_key(self.kinds[s.property.as_str()], v))
    }

    fn order(&self, (ka, ia): &Entry, (kb, ib): &Entry) -> std::cmp::Ordering {
        for (i, s) in self.req.sorts.iter().enumerate() {
            // Unset values come last in either direction.
            let o = match (ka[i].as_deref(), kb[i].as_deref()) {
                (Some(a), Some(b)) if s.descending => {
                    search::sort_order(self.kinds[s.property.as_str()], Some(a), Some(b)).reverse()
                }
                (a, b) => search::sort_order(self.kinds[s.property.as_str()], a, b),
            };
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        }
        ia.cmp(ib)
    }

    /// Counts a record and keeps its sort key when it matches. Only the page's worth of the
    /// best matches is kept: past twice that, the list is sorted and cut back, so a search
    /// holds at most 2 × (after + limit) sort keys however many records match.
    pub(super) fn offer(&mut self, id: i64, props: &BTreeMap<String, String>) {
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

    pub(super) fn check_deadline(&self) -> StoreResult<()> {
        if Instant::now() > self.deadline {
            return Err(timed_out());
        }
        Ok(())
    }

    /// The ids of the requested page, best first.
    pub(super) fn page(mut self) -> (usize, Vec<i64>) {
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

pub(super) fn timed_out() -> StoreError {
    StoreError::TimedOut(format!(
        "the search took longer than {} seconds: narrow it with filters on unique or fewer properties",
        SEARCH_DEADLINE.as_secs()
    ))
}

impl Store {
    /// Streams the object type's records to `scan` running on a blocking thread.
    pub(super) async fn scan(
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
