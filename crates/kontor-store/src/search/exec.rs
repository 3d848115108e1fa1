//! Running a plan: a driving look-up per group, the group's other exact terms probed per
//! record in SQL, and either SQL's count and page, or the matcher over what was found. The
//! records changed past the index's cursor (the delta, see `indexer.rs`) are left out of every
//! look-up and decided by the matcher, then merged in by their sort keys.

use super::index::id_list;
use super::plan::{self, Arg, Building, GroupPlan, Source, Sql, Term};
use super::scan::{timed_out, Scan};
use super::sort_keys::{IndexAt, Kept};
use crate::objects::ObjectType;
use crate::{Store, StoreResult};
use kontor_domain::search::keys;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

/// The ids in both sorted lists.
fn both(a: &[i64], b: &[i64]) -> Vec<i64> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            Ordering::Less => i += 1,
            Ordering::Greater => j += 1,
            Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Whether term `i` is a word prefix that starts with the prefix of a kept list's term, in
/// the same properties (a prefix too long for a posting list after its gram's, see
/// `plan::push_prefix`): the records it finds are among that list's.
fn covers(terms: &[Term], kept: &HashMap<usize, Kept>, i: usize) -> bool {
    let Source::Prefix { props, prefix, id } = &terms[i].source else {
        return false;
    };
    kept.keys().any(|&j| {
        matches!(&terms[j].source, Source::Prefix { props: p, prefix: x, id: d }
            if p == props && d == id && prefix.starts_with(x.as_str()))
    })
}

/// The records in every one of the lists in memory, the shortest first: a long list is only
/// asked about the few records left.
fn both_kept(mut lists: Vec<Kept>) -> Vec<i64> {
    lists.sort_by_key(|k| k.len());
    let mut lists = lists.into_iter();
    let mut found = lists.next().map(|k| k.to_vec()).unwrap_or_default();
    for k in lists {
        if found.is_empty() {
            break;
        }
        found = if found.len() * 16 < k.len() {
            found.retain(|&id| k.contains(id));
            found
        } else {
            match k.parts() {
                [one] => both(&found, one),
                _ => both(&found, &k.to_vec()),
            }
        };
    }
    found
}

type Ids<'q, O> = sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>>;

fn bound<'q, O>(text: &'q str, args: &'q [Arg]) -> Ids<'q, O>
where
    O: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
{
    let mut q = sqlx::query_as::<_, O>(text);
    for a in args {
        q = match a {
            Arg::I(i) => q.bind(*i),
            Arg::S(s) => q.bind(s.as_str()),
        };
    }
    q
}

/// How cheap a term's look-up tends to be, before counting.
fn rank(t: &Term) -> u8 {
    match &t.source {
        Source::Value { cond, .. } => match cond {
            plan::Cond::Eq(_) => 0,
            plan::Cond::In(_) => 1,
            plan::Cond::Range { .. } => 3,
            plan::Cond::Any => 4,
        },
        Source::Ids(_) => 0,
        Source::Prefix { .. } => 2,
        Source::All => 5,
    }
}

/// The records the groups find, when each is a list alone (exact, nothing to probe).
fn listed_only(chosen: &[Chosen]) -> Option<Vec<i64>> {
    let mut all = Vec::new();
    for c in chosen {
        match &c.driver.source {
            Source::Ids(ids) if !c.verify && c.probes.is_empty() => all.extend_from_slice(ids),
            _ => return None,
        }
    }
    if chosen.len() > 1 {
        all.sort_unstable();
        all.dedup();
    }
    Some(all)
}

/// A page entry: its sort key (none when unset) and id.
type Keyed = (Option<String>, i64);

/// The matcher's order of entries: unset keys last, keys in the sort's direction, then ids.
fn order(desc: bool) -> impl Fn(&Keyed, &Keyed) -> Ordering {
    move |(ka, ia), (kb, ib)| {
        let o = match (ka, kb) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(a), Some(b)) if desc => b.cmp(a),
            (Some(a), Some(b)) => a.cmp(b),
        };
        o.then(ia.cmp(ib))
    }
}

/// A group's driving term, the exact terms probed per record, and whether the matcher must
/// still check what they find.
struct Chosen {
    driver: Term,
    probes: Vec<Term>,
    verify: bool,
}

impl Store {
    async fn choose(
        &self,
        account: i64,
        ot: &ObjectType,
        g: GroupPlan,
        at: IndexAt,
    ) -> StoreResult<Chosen> {
        let mut drivers: Vec<usize> = (0..g.terms.len())
            .filter(|&i| !g.terms[i].negated)
            .collect();
        drivers.sort_by_key(|&i| rank(&g.terms[i]));
        let t = self.search_tuning;
        // Look-ups kept in memory (`sort_keys.rs`) cost nothing to count or to intersect.
        let mut kept: HashMap<usize, Kept> = HashMap::new();
        if drivers.len() > 1 {
            for &i in &drivers {
                if let Some(k) = self.kept_list(account, ot, &g.terms[i], at).await? {
                    kept.insert(i, k);
                }
            }
        }
        // The others are counted, up to `estimate_cap` rows each.
        let mut best: Option<(i64, usize)> = None;
        let mut broad = drivers.len() > 1;
        let mut counted = Vec::new();
        // Longer word prefixes whose gram's list is kept (see `covers`): not counted.
        let mut covered = Vec::new();
        if drivers.len() > 1 {
            let unkept: Vec<usize> = drivers
                .iter()
                .copied()
                .filter(|i| !kept.contains_key(i))
                .collect();
            for i in unkept {
                // A short word prefix has posting lists: read whole, they cost a row per
                // 128 to 256 records, and are intersected as those in memory are.
                if let Some(ids) = self.gram_list(account, ot, &g.terms[i]).await? {
                    let n = ids.len() as i64;
                    kept.insert(i, Kept::read(ids));
                    if n < t.small {
                        break;
                    }
                    continue;
                }
                if covers(&g.terms, &kept, i) {
                    covered.push(i);
                    continue;
                }
                let mut sql = Sql::new(self.dialect, account, &ot.type_id);
                // Rows, not records: a record found twice counts twice, which only
                // overstates a look-up that is not the narrowest anyway.
                let src = sql.source_repeating(&g.terms[i].source);
                let text = format!("SELECT COUNT(*) FROM ({src} LIMIT {}) x", t.estimate_cap);
                let (n,): (i64,) = bound(&text, &sql.args).fetch_one(&self.pool).await?;
                if n >= t.estimate_cap {
                    // Broad: kept in memory from now on, if it can be.
                    if let Some(k) = self.keep_list(account, ot, &g.terms[i], at).await? {
                        kept.insert(i, k);
                        continue;
                    }
                }
                counted.push(i);
                broad &= n >= t.estimate_cap;
                if best.is_none_or(|(b, _)| n < b) {
                    best = Some((n, i));
                }
                if n < t.small {
                    break;
                }
            }
        } else if let Some(&i) = drivers.first() {
            match self.gram_list(account, ot, &g.terms[i]).await? {
                Some(ids) => {
                    kept.insert(i, Kept::read(ids));
                }
                None => best = Some((0, i)),
            }
        }
        // The group starts from the records given by `listed` (and so meeting the terms
        // `used`), or else from the look-up `best`.
        let mut listed: Option<(Vec<i64>, HashSet<usize>)> = None;
        if !kept.is_empty() {
            let used: HashSet<usize> = kept.keys().copied().collect();
            let ids = both_kept(kept.into_values().collect());
            let narrower =
                best.is_some_and(|(n, _)| n < t.estimate_cap && (n as usize) < ids.len());
            if !narrower {
                let start = (ids, used);
                let wide = start.0.len() as i64 >= t.estimate_cap;
                // Every look-up is broad, in memory or not: the others are read too. So are
                // the longer prefixes of the grams when the lists leave many records; when
                // they leave few, those are probed.
                let mut read = Vec::new();
                if wide && broad {
                    read.extend_from_slice(&counted);
                }
                if wide {
                    read.extend_from_slice(&covered);
                }
                listed = Some(match read.is_empty() {
                    false => {
                        let (ids, used) = self
                            .intersect(account, ot, &g.terms, &read, Some(start))
                            .await?;
                        (ids.unwrap_or_default(), used)
                    }
                    true => start,
                });
            }
        } else if broad {
            // Every look-up is broad: reading each one's records once, in key order, and
            // intersecting them here costs less than looking each record of one up in the
            // others.
            let (ids, used) = self
                .intersect(account, ot, &g.terms, &counted, None)
                .await?;
            // One list read is no intersection: its look-up drives as it is.
            listed = ids
                .filter(|ids| used.len() > 1 || ids.is_empty())
                .map(|ids| (ids, used));
        }
        let mut verify = g.verify;
        let mut probes = Vec::new();
        let mut driver = None;
        for (i, t) in g.terms.into_iter().enumerate() {
            let drives = match &listed {
                Some((_, used)) => used.contains(&i),
                None => best.is_some_and(|(_, b)| b == i),
            };
            if drives {
                verify |= !t.exact;
                driver.get_or_insert(t);
            } else if t.exact || matches!(t.source, Source::Value { .. }) {
                // An inexact value term (a cut key) finds a superset: as a probe it narrows
                // what the matcher checks.
                probes.push(t);
            } else {
                // A token pattern is left to the matcher.
                verify = true;
            }
        }
        if let Some((ids, _)) = listed {
            driver = Some(Term {
                source: Source::Ids(ids),
                exact: true,
                negated: false,
            });
        }
        Ok(Chosen {
            driver: driver.unwrap_or(Term {
                source: Source::All,
                exact: true,
                negated: false,
            }),
            probes,
            verify,
        })
    }

    /// A word prefix's records from its posting lists (`grams.rs`), if it has them
    /// (`keys::as_gram`).
    async fn gram_list(
        &self,
        account: i64,
        ot: &ObjectType,
        t: &Term,
    ) -> StoreResult<Option<Vec<i64>>> {
        let Source::Prefix { props, prefix, id } = &t.source else {
            return Ok(None);
        };
        let Some(gram) = keys::as_gram(prefix).filter(|_| !props.is_empty()) else {
            return Ok(None);
        };
        let mut sql = Sql::new(self.dialect, account, &ot.type_id);
        let text = sql.gram_blocks(props, gram);
        let (blocks,): (Option<Vec<u8>>,) = bound(&text, &sql.args).fetch_one(&self.pool).await?;
        let mut ids = super::grams::union_framed(blocks.as_deref().unwrap_or_default())?;
        if let Some(id) = *id {
            if let Err(at) = ids.binary_search(&id) {
                let live: Option<(i64,)> = sqlx::query_as("SELECT id FROM records WHERE account_id = $1 AND object_type = $2 AND archived = 0 AND id = $3")
                    .bind(account)
                    .bind(&ot.type_id)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                if live.is_some() {
                    ids.insert(at, id);
                }
            }
        }
        Ok(Some(ids))
    }

    /// A value look-up's records from memory, if they are kept there.
    async fn kept_list(
        &self,
        account: i64,
        ot: &ObjectType,
        t: &Term,
        at: IndexAt,
    ) -> StoreResult<Option<Kept>> {
        match &t.source {
            Source::Value { prop, cond } => {
                self.cached_list(account, &ot.type_id, prop, at, cond).await
            }
            _ => Ok(None),
        }
    }

    /// Keeps a value look-up's property in memory (in the background, unless the tuning says
    /// at once); its records if they are there now.
    async fn keep_list(
        &self,
        account: i64,
        ot: &ObjectType,
        t: &Term,
        at: IndexAt,
    ) -> StoreResult<Option<Kept>> {
        match &t.source {
            Source::Value {
                prop,
                cond: plan::Cond::Eq(_) | plan::Cond::In(_),
            } if self.sort_keys_ready(account, &ot.type_id, prop, at).await => {
                self.kept_list(account, ot, t, at).await
            }
            _ => Ok(None),
        }
    }

    /// The records that every one of the `read` look-ups finds that are narrow enough to read
    /// (`list_cap`), and `start` has (records, and the terms they meet); which terms they meet.
    /// None when there is no `start` and no look-up was narrow enough.
    async fn intersect(
        &self,
        account: i64,
        ot: &ObjectType,
        terms: &[Term],
        read: &[usize],
        start: Option<(Vec<i64>, HashSet<usize>)>,
    ) -> StoreResult<(Option<Vec<i64>>, HashSet<usize>)> {
        // Read at once, on connections of their own: each read is one statement's work for
        // one core, and the lists are many thousands of rows when this path is taken.
        let lists = futures_util::future::try_join_all(
            read.iter()
                .map(|&i| self.id_set(account, ot, &terms[i].source)),
        )
        .await?;
        let (mut found, mut used) = match start {
            Some((ids, used)) => (Some(ids), used),
            None => (None, HashSet::new()),
        };
        let mut lists: Vec<(usize, Vec<i64>)> = read
            .iter()
            .zip(lists)
            .filter_map(|(&i, ids)| ids.map(|ids| (i, ids)))
            .collect();
        // The shortest first: every step is then at most as long as it.
        lists.sort_by_key(|(_, ids)| ids.len());
        for (i, ids) in lists {
            if found.as_ref().is_some_and(|f| f.is_empty()) {
                break;
            }
            used.insert(i);
            found = Some(match found.take() {
                None => ids,
                Some(a) => both(&a, &ids),
            });
        }
        Ok((found, used))
    }

    /// The records a look-up finds, in order; `None` when they are more than `list_cap`.
    async fn id_set(
        &self,
        account: i64,
        ot: &ObjectType,
        src: &Source,
    ) -> StoreResult<Option<Vec<i64>>> {
        let mut sql = Sql::new(self.dialect, account, &ot.type_id);
        let s = sql.source_repeating(src);
        let cap = self.search_tuning.list_cap;
        let text = sql.json_array("x.record_id", &format!("({s} LIMIT {}) x", cap + 1));
        let (json,): (Option<String>,) = bound(&text, &sql.args).fetch_one(&self.pool).await?;
        let mut ids: Vec<i64> = match json {
            Some(j) => serde_json::from_str(&j)?,
            None => Vec::new(),
        };
        if ids.len() > cap {
            return Ok(None);
        }
        ids.sort_unstable();
        ids.dedup();
        Ok(Some(ids))
    }

    /// The live records among `ids`, with their properties.
    async fn live_props(
        &self,
        account: i64,
        ot: &ObjectType,
        ids: &[i64],
        deadline: Instant,
    ) -> StoreResult<Vec<(i64, BTreeMap<String, String>)>> {
        let text = format!(
            "SELECT id, props FROM records WHERE account_id = $1 AND object_type = $2 AND archived = 0 AND id IN ({})",
            id_list(self.dialect, 3)
        );
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(1_000) {
            if Instant::now() > deadline {
                return Err(timed_out());
            }
            let rows: Vec<(i64, String)> = sqlx::query_as(&text)
                .bind(account)
                .bind(&ot.type_id)
                .bind(serde_json::to_string(chunk)?)
                .fetch_all(&self.pool)
                .await?;
            for (id, props) in rows {
                out.push((id, serde_json::from_str(&props)?));
            }
        }
        Ok(out)
    }

    /// Runs the groups' plans; returns the number of matches and the page's ids in order.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_plan(
        &self,
        account: i64,
        ot: &ObjectType,
        groups: Vec<GroupPlan>,
        sort: Option<(String, bool)>,
        building: &Building,
        at: IndexAt,
        delta: Vec<i64>,
        mut scan: Scan,
    ) -> StoreResult<(usize, Vec<i64>)> {
        scan.check_deadline()?;
        let sort_ready = sort.as_ref().is_none_or(|(p, _)| building.ready(p));
        let (after, limit) = (scan.req.after, scan.req.limit);
        let desc = sort.as_ref().is_some_and(|s| s.1);
        // The delta, decided by the matcher.
        let mut changed: Vec<Keyed> = Vec::new();
        let delta_props = self.live_props(account, ot, &delta, scan.deadline).await?;
        if groups.is_empty() {
            return match sort {
                Some(sort) if sort_ready => {
                    for (id, props) in &delta_props {
                        changed.push((scan.sort_key(props), *id));
                    }
                    self.sort_walk(account, ot, sort, &delta, changed, after, limit)
                        .await
                }
                _ => self.scan(account, ot, scan).await,
            };
        }
        let mut sql = Sql::new(self.dialect, account, &ot.type_id);
        let skip = (!delta.is_empty()).then(|| {
            let n = sql.text_arg(&serde_json::to_string(&delta).unwrap_or_default());
            format!("d.record_id NOT IN ({})", id_list(self.dialect, n))
        });
        let mut chosen = Vec::with_capacity(groups.len());
        for g in groups {
            chosen.push(self.choose(account, ot, g, at).await?);
        }
        if sort.is_none() {
            if let Some(found) = listed_only(&chosen) {
                // What lists gave is the answer: counted and paged here, by id.
                let delta: HashSet<i64> = delta.iter().copied().collect();
                let mut ids: Vec<i64> = found.into_iter().filter(|i| !delta.contains(i)).collect();
                for (id, props) in &delta_props {
                    if scan.matches(*id, props) {
                        ids.push(*id);
                    }
                }
                ids.sort_unstable();
                let page = ids.iter().skip(after).take(limit).copied().collect();
                return Ok((ids.len(), page));
            }
        }
        let mut parts = Vec::new();
        let mut verify = !sort_ready;
        let mut everything = false;
        for c in chosen {
            verify |= c.verify;
            everything |= matches!(c.driver.source, Source::All);
            let d = sql.source(&c.driver.source);
            let mut conds: Vec<String> = c.probes.iter().map(|t| sql.probe(t)).collect();
            conds.extend(skip.clone());
            let cond = match conds.is_empty() {
                true => String::new(),
                false => format!(" WHERE {}", conds.join(" AND ")),
            };
            parts.push(format!("SELECT d.record_id FROM ({d}) d{cond}"));
        }
        let found = parts.join(" UNION ");
        if verify {
            // The matcher decides: over every record when some group starts from all of
            // them, else over what the look-ups found and the delta.
            if everything {
                return self.scan(account, ot, scan).await;
            }
            let text = format!("SELECT record_id FROM ({found}) m");
            let ids: Vec<(i64,)> = bound(&text, &sql.args).fetch_all(&self.pool).await?;
            let ids: Vec<i64> = ids.into_iter().map(|(i,)| i).collect();
            for (id, props) in self.live_props(account, ot, &ids, scan.deadline).await? {
                scan.offer(id, &props);
            }
            for (id, props) in &delta_props {
                scan.offer(*id, props);
            }
            return Ok(scan.page());
        }
        for (id, props) in &delta_props {
            if scan.matches(*id, props) {
                changed.push((scan.sort_key(props), *id));
            }
        }
        // The arguments of `found` alone, for a count without the page.
        let found_args = sql.args.len();
        if let Some((p, desc)) = &sort {
            let page = (after, limit);
            let sorted = self
                .sort_here(
                    account,
                    ot,
                    (p, *desc),
                    at,
                    &found,
                    &mut sql,
                    &mut changed,
                    page,
                )
                .await?;
            if let Some(sorted) = sorted {
                return Ok(sorted);
            }
            // More: the database sorts them and gives the page.
            sql.args.truncate(found_args);
        }
        let (join, key, by) = match &sort {
            None => (
                String::new(),
                "CAST(NULL AS TEXT)",
                "m.record_id".to_string(),
            ),
            Some((p, desc)) => {
                let p = sql.text_param(p);
                let dir = if *desc { " DESC" } else { "" };
                (
                    format!(" LEFT JOIN record_values s ON s.account_id = $1 AND s.object_type = $2 AND s.record_id = m.record_id AND s.property = {p}"),
                    "s.value_key",
                    format!("CASE WHEN s.value_key IS NULL THEN 1 ELSE 0 END, s.value_key{dir}, m.record_id"),
                )
            }
        };
        // Without a delta the database pages; with one, it gives the best `after + limit`
        // and the delta's matches are merged in.
        let (l, o) = match changed.is_empty() {
            true => (limit, after),
            false => (after + limit, 0),
        };
        let (l, o) = (sql.int_arg(l as i64), sql.int_arg(o as i64));
        // The count comes with the page, in one pass; only a page past the end counts anew.
        let text = format!(
            "SELECT m.record_id, {key}, COUNT(*) OVER () FROM ({found}) m{join} ORDER BY {by} LIMIT {l} OFFSET {o}"
        );
        let rows: Vec<(i64, Option<String>, i64)> =
            bound(&text, &sql.args).fetch_all(&self.pool).await?;
        let found_total = match rows.first() {
            Some(r) => r.2,
            None => {
                let text = format!("SELECT COUNT(*) FROM ({found}) m");
                let (n,): (i64,) = bound(&text, &sql.args[..found_args])
                    .fetch_one(&self.pool)
                    .await?;
                n
            }
        };
        let total = found_total as usize + changed.len();
        if changed.is_empty() {
            return Ok((total, rows.into_iter().map(|(i, _, _)| i).collect()));
        }
        changed.extend(rows.into_iter().map(|(i, k, _)| (k, i)));
        changed.sort_by(order(desc));
        let page = changed.into_iter().skip(after).take(limit).map(|(_, i)| i);
        Ok((total, page.collect()))
    }

    /// A sorted answer of a few records (`keyed_cap`), sorted here with the delta's matches
    /// (`changed`): their keys from memory (`sort_keys.rs`), else from one read. `None` when
    /// `found` has more records.
    #[allow(clippy::too_many_arguments)]
    async fn sort_here(
        &self,
        account: i64,
        ot: &ObjectType,
        (prop, desc): (&str, bool),
        at: IndexAt,
        found: &str,
        sql: &mut Sql,
        changed: &mut Vec<Keyed>,
        (after, limit): (usize, usize),
    ) -> StoreResult<Option<(usize, Vec<i64>)>> {
        let cap = self.search_tuning.keyed_cap;
        let from = format!("(SELECT f.record_id FROM ({found}) f LIMIT {}) m", cap + 1);
        let mut keyed: Option<Vec<Keyed>> = None;
        if self.sort_keys_ready(account, &ot.type_id, prop, at).await {
            let text = sql.json_array("m.record_id", &from);
            let (json,): (Option<String>,) = bound(&text, &sql.args).fetch_one(&self.pool).await?;
            let ids: Vec<i64> = match json {
                Some(j) => serde_json::from_str(&j)?,
                None => Vec::new(),
            };
            if ids.len() > cap {
                return Ok(None);
            }
            let keys = self
                .cached_sort_keys(account, &ot.type_id, prop, at, &ids)
                .await?;
            keyed = keys.map(|keys| {
                let keys = keys.into_iter().map(|k| k.map(|k| k.to_string()));
                keys.zip(ids).collect()
            });
        }
        let keyed = match keyed {
            Some(k) => k,
            None => {
                let p = sql.text_param(prop);
                // The key as a subquery per record, not a join: PostgreSQL would hash-join
                // every value of the sort property instead of looking a few up.
                let key = format!("(SELECT s.value_key FROM record_values s WHERE s.account_id = $1 AND s.object_type = $2 AND s.record_id = m.record_id AND s.property = {p})");
                let pair = sql.json_pair("m.record_id", &key);
                let text = sql.json_array(&pair, &from);
                let (json,): (Option<String>,) =
                    bound(&text, &sql.args).fetch_one(&self.pool).await?;
                let pairs: Vec<(i64, Option<String>)> = match json {
                    Some(j) => serde_json::from_str(&j)?,
                    None => Vec::new(),
                };
                if pairs.len() > cap {
                    return Ok(None);
                }
                pairs.into_iter().map(|(i, k)| (k, i)).collect()
            }
        };
        let total = keyed.len() + changed.len();
        let mut all = std::mem::take(changed);
        all.extend(keyed);
        all.sort_by(order(desc));
        let page = all.into_iter().skip(after).take(limit).map(|(_, i)| i);
        Ok(Some((total, page.collect())))
    }

    /// Every live record sorted by one property: its index in key order, then the records
    /// without a value, by id; the delta's records (`changed`, keyed) merged in.
    #[allow(clippy::too_many_arguments)]
    async fn sort_walk(
        &self,
        account: i64,
        ot: &ObjectType,
        (prop, desc): (String, bool),
        delta: &[i64],
        mut changed: Vec<Keyed>,
        after: usize,
        limit: usize,
    ) -> StoreResult<(usize, Vec<i64>)> {
        let total = self.count_records(account, ot, false).await? as usize;
        let want = after + limit;
        let dir = if desc { " DESC" } else { "" };
        let skip = id_list(self.dialect, 4);
        let args = [
            Arg::I(account),
            Arg::S(ot.type_id.clone()),
            Arg::S(prop.clone()),
            Arg::S(serde_json::to_string(delta)?),
            Arg::I(want as i64),
        ];
        let text = format!("SELECT record_id, value_key FROM record_values WHERE account_id = $1 AND object_type = $2 AND property = $3 AND record_id NOT IN ({skip}) ORDER BY value_key{dir}, record_id LIMIT $5");
        let valued: Vec<(i64, String)> = bound(&text, &args).fetch_all(&self.pool).await?;
        let have = valued.len() + changed.iter().filter(|(k, _)| k.is_some()).count();
        changed.extend(valued.into_iter().map(|(i, k)| (Some(k), i)));
        if have < want {
            // Past the values: the records without one, by id.
            let text = format!("SELECT r.id FROM records r WHERE r.account_id = $1 AND r.object_type = $2 AND r.archived = 0 AND r.id NOT IN ({skip}) AND NOT EXISTS (SELECT 1 FROM record_values v WHERE v.account_id = $1 AND v.object_type = $2 AND v.record_id = r.id AND v.property = $3) ORDER BY r.id LIMIT $5");
            let rest: Vec<(i64,)> = bound(&text, &args).fetch_all(&self.pool).await?;
            changed.extend(rest.into_iter().map(|(i,)| (None, i)));
        }
        changed.sort_by(order(desc));
        let page = changed.into_iter().skip(after).take(limit).map(|(_, i)| i);
        Ok((total, page.collect()))
    }
}
